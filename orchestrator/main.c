/* omo: omnichannel inventory and fulfilment orchestrator. */
#include "commands.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: omo COMMAND [ARGS]\n"
          "\n"
          "  solve --network N.yaml --rules R.yaml --events E.jsonl [--out A.jsonl] [--strict]\n"
          "  rules check R.yaml [--network N.yaml]\n"
          "  explain --network N.yaml --rules R.yaml --events E.jsonl [--json] ORDER_ID\n"
          "  demo [--keep] [--rate N] [--config-dir DIR] [--state DIR] [--host ADDR] [--port N]\n"
          "  run --config omo.yaml\n"
          "  config check --config omo.yaml\n"
          "  db migrate --config omo.yaml\n"
          "  picklist --config omo.yaml --store ID [--format text|csv|json|html] [--max-orders N]\n"
          "  stock import-bins --config omo.yaml FILE.csv\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "solve"))
        return omo_cmd_solve(argc - 2, argv + 2);
    if (!strcmp(cmd, "rules"))
        return omo_cmd_rules(argc - 2, argv + 2);
    if (!strcmp(cmd, "explain"))
        return omo_cmd_explain(argc - 2, argv + 2);
    if (!strcmp(cmd, "run"))
        return omo_cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "config"))
        return omo_cmd_config(argc - 2, argv + 2);
    if (!strcmp(cmd, "db"))
        return omo_cmd_db(argc - 2, argv + 2);
    if (!strcmp(cmd, "demo"))
        return omo_cmd_demo(argc - 2, argv + 2);
    if (!strcmp(cmd, "stock"))
        return omo_cmd_stock(argc - 2, argv + 2);
    if (!strcmp(cmd, "picklist"))
        return omo_cmd_picklist(argc - 2, argv + 2);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "omo: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
