/* `omo rules ...`: checking routing rules, and their effect, before they go live. */
#include "commands.h"
#include "diff.h"
#include "rules.h"

#include <stdio.h>
#include <string.h>

static int usage(void)
{
    fputs("usage: omo rules check R.yaml [--network N.yaml]\n"
          "       omo rules diff --network N.yaml --events E.jsonl OLD.yaml NEW.yaml "
          "[--format text|json|html] [--out FILE]\n",
          stderr);
    return 2;
}

static int rules_check(int argc, char **argv)
{
    const char *rules_path = NULL, *net_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--network")) {
            if (++i == argc || net_path)
                return usage();
            net_path = argv[i];
        } else if (!strncmp(argv[i], "--network=", 10)) {
            if (net_path)
                return usage();
            net_path = argv[i] + 10;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "omo rules check: unknown option '%s'\n", argv[i]);
            return usage();
        } else if (!rules_path) {
            rules_path = argv[i];
        } else {
            return usage();
        }
    }
    if (!rules_path)
        return usage();

    omo_diag diag = {0};
    omo_network *net = NULL;
    omo_rules *rules = NULL;
    int rc = 2;
    if (net_path) {
        net = omo_network_load(net_path, &diag);
        if (!net)
            goto done;
    }
    rules = omo_rules_load(rules_path, net, &diag);
    if (!rules)
        goto done;
    printf("%s: ok (version %lld, %zu service%s, %zu rule%s, hash %s)\n", rules_path,
           (long long)rules->version, rules->nservices, rules->nservices == 1 ? "" : "s",
           rules->nrules, rules->nrules == 1 ? "" : "s", rules->version_hash);
    rc = 0;

done:
    omo_diag_print(&diag, stderr);
    omo_diag_clear(&diag);
    omo_rules_destroy(rules);
    omo_network_destroy(net);
    return rc;
}

int omo_cmd_rules(int argc, char **argv)
{
    if (argc < 1)
        return usage();
    if (!strcmp(argv[0], "check"))
        return rules_check(argc, argv);
    if (!strcmp(argv[0], "diff"))
        return omo_cmd_rules_diff(argc, argv);
    fprintf(stderr, "omo rules: unknown subcommand '%s'\n", argv[0]);
    return usage();
}
