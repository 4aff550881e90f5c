/* `omo config check`: everything `omo run` reads before it connects, read the same way. */
#include "commands.h"
#include "network.h"
#include "rules.h"
#include "svcconf.h"
#include "yamldoc.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static int usage(void)
{
    fputs("usage: omo config check --config omo.yaml\n", stderr);
    return 2;
}

/* A store token must name a store of the network: another node, or none, would never match a
 * pick list or a shipment. */
static void check_tokens(const omo_svcconf *conf, const omo_network *net, omo_diag *diag)
{
    for (size_t i = 0; i < conf->ntokens; i++) {
        const omo_token *tok = &conf->tokens[i];
        if (tok->role != OMO_ROLE_STORE)
            continue;
        int n = omo_network_find(net, tok->store);
        if (n < 0)
            omo_diag_error(diag, &tok->store_loc, "store '%s' is not a node of %s", tok->store,
                           conf->network_path);
        else if (net->nodes[n].type != OMO_NODE_STORE)
            omo_diag_error(diag, &tok->store_loc, "node '%s' is a warehouse, not a store",
                           tok->store);
    }
}

int omo_cmd_config(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, 0, 'c'}, {0, 0, 0, 0}};
    if (argc < 1 || strcmp(argv[0], "check"))
        return usage();
    const char *path = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c != 'c')
            return usage();
        path = optarg;
    }
    if (!path || optind != argc)
        return usage();

    omo_diag diag = {0};
    omo_network *net = NULL;
    omo_rules *rules = NULL;
    int rc = 2;
    omo_svcconf *conf = omo_svcconf_load(path, &diag);
    if (!conf)
        goto done;
    net = omo_network_load(conf->network_path, &diag);
    if (!net)
        goto done;
    rules = omo_rules_load(conf->routing_path, net, &diag);
    size_t before = diag.count;
    check_tokens(conf, net, &diag);
    omo_yaml_diag_sort(&diag, before, conf->path);
    if (!rules || diag.count)
        goto done;
    printf("%s: ok (brokers %s, group %s; network %s: %zu nodes; rules %s: version %s; http %s, "
           "%zu token%s)\n",
           path, conf->brokers, conf->group, conf->network_path, net->nnodes, conf->routing_path,
           rules->version_hash, conf->listen && *conf->listen ? conf->listen : "off", conf->ntokens,
           conf->ntokens == 1 ? "" : "s");
    rc = 0;

done:
    omo_diag_print(&diag, stderr);
    omo_diag_clear(&diag);
    omo_rules_destroy(rules);
    omo_network_destroy(net);
    omo_svcconf_destroy(conf);
    return rc;
}
