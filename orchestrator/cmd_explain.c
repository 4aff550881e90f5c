/* `omo explain`: why an order went where it went. */
#include "commands.h"
#include "replay.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct explain_out {
    const omo_network *net;
    bool json;
    char *latest; /* the rendering of the order's latest decision */
} explain_out;

static void keep_latest(void *ctx, const omo_explanation *ex)
{
    explain_out *eo = ctx;
    free(eo->latest);
    eo->latest = eo->json ? omo_explain_json(ex, eo->net) : omo_explain_text(ex, eo->net);
}

static void usage(void)
{
    fputs("usage: omo explain --network N.yaml --rules R.yaml --events E.jsonl [--json] "
          "ORDER_ID\n",
          stderr);
}

int omo_cmd_explain(int argc, char **argv)
{
    static const struct option opts[] = {{"network", required_argument, 0, 'n'},
                                         {"rules", required_argument, 0, 'r'},
                                         {"events", required_argument, 0, 'e'},
                                         {"json", no_argument, 0, 'j'},
                                         {0, 0, 0, 0}};
    const char *net_path = NULL, *rules_path = NULL, *events_path = NULL;
    explain_out eo = {0};
    int c;
    optind = 0;
    while ((c = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            net_path = optarg;
            break;
        case 'r':
            rules_path = optarg;
            break;
        case 'e':
            events_path = optarg;
            break;
        case 'j':
            eo.json = true;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (!net_path || !rules_path || !events_path || optind != argc) {
        usage();
        return 2;
    }
    const char *order_id = argv[optind - 1];

    int rc = 2;
    omo_diag diag = {0};
    omo_rules *rules = NULL;
    omo_engine *eng = NULL;
    omo_network *net = omo_network_load(net_path, &diag);
    if (net)
        rules = omo_rules_load(rules_path, net, &diag);
    if (!net || !rules) {
        omo_diag_print(&diag, stderr);
        goto done;
    }
    eo.net = net;
    eng = omo_engine_create(net, rules, NULL, NULL);
    omo_engine_explain(eng, order_id, keep_latest, &eo);
    omo_replay_stats st;
    if (omo_replay_file(events_path, net, eng, NULL, NULL, &st) != OMO_REPLAY_OK) {
        fprintf(stderr, "%s: error: cannot read: %m\n", events_path);
        rc = 1;
        goto done;
    }
    if (!eo.latest) {
        fprintf(stderr, "omo explain: order '%s' is not in %s\n", order_id, events_path);
        rc = 1;
        goto done;
    }
    fputs(eo.latest, stdout);
    if (eo.json)
        fputc('\n', stdout);
    rc = 0;
done:
    free(eo.latest);
    omo_engine_destroy(eng);
    omo_rules_destroy(rules);
    omo_network_destroy(net);
    omo_diag_clear(&diag);
    return rc;
}
