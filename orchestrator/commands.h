/* The `omo` sub-commands. Each takes the arguments after its name and returns the exit code:
 * 0 ok, 1 runtime failure, 2 bad usage or invalid configuration. */
#ifndef OMO_COMMANDS_H
#define OMO_COMMANDS_H

int omo_cmd_solve(int argc, char **argv);
/* `omo rules check R.yaml [--network N.yaml]` (argv[0] is "check"). */
int omo_cmd_rules(int argc, char **argv);
/* `omo explain --network N --rules R --events E [--json] ORDER_ID`. */
int omo_cmd_explain(int argc, char **argv);
/* `omo config check --config omo.yaml` (argv[0] is "check"): the service configuration, the
 * network and rules it names, and the stores its tokens name, without connecting to anything. */
int omo_cmd_config(int argc, char **argv);
/* `omo run --config omo.yaml` and `omo db migrate --config omo.yaml` (connectors/wiring). */
int omo_cmd_run(int argc, char **argv);
int omo_cmd_db(int argc, char **argv);
/* `omo demo [--keep]` (connectors/wiring). */
int omo_cmd_demo(int argc, char **argv);
/* `omo stock import-bins --config omo.yaml FILE.csv` and `omo picklist --config omo.yaml
 * --store ID [--format F] [--max-orders N]` (connectors/wiring). */
int omo_cmd_stock(int argc, char **argv);
int omo_cmd_picklist(int argc, char **argv);

#endif
