/* routing.yaml: values, defaults, references to the network, errors, and `omo rules check`. */
#include "rules.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NETWORK "tests/fixtures/network_small.yaml"
#define ROUTING "tests/fixtures/routing_small.yaml"

static void in_source_dir(void)
{
    cr_assert_eq(chdir(OMO_SOURCE_DIR), 0);
}

TestSuite(rules, .init = in_source_dir);

static omo_network *small_network(void)
{
    omo_diag diag = {0};
    omo_network *net = omo_network_load(NETWORK, &diag);
    cr_assert_not_null(net);
    omo_diag_clear(&diag);
    return net;
}

static void assert_diag(const omo_diag *diag, size_t count, const char *const *lines)
{
    for (size_t i = 0; i < diag->count; i++)
        fprintf(stderr, "diag: %s\n", diag->lines[i]);
    cr_assert_eq(diag->count, count, "expected %zu error lines, got %zu", count, diag->count);
    for (size_t i = 0; i < count; i++)
        cr_assert_str_eq(diag->lines[i], lines[i]);
}

static void expect_errors(const char *path, size_t count, const char *const *lines)
{
    omo_network *net = small_network();
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_load(path, net, &diag);
    cr_assert_null(rules, "%s loaded although it is broken", path);
    assert_diag(&diag, count, lines);
    omo_diag_clear(&diag);
    omo_network_destroy(net);
}

/* The first error line for yaml must start with prefix and contain part. */
static void expect_buffer_error(const char *yaml, size_t count, const char *prefix,
                                const char *part)
{
    omo_network *net = small_network();
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_parse("r.yaml", yaml, strlen(yaml), net, &diag);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "diag: %s\n", diag.lines[i]);
    cr_assert_null(rules);
    cr_assert_eq(diag.count, count, "expected %zu error lines, got %zu", count, diag.count);
    cr_assert(!strncmp(diag.lines[0], prefix, strlen(prefix)), "'%s' does not start with '%s'",
              diag.lines[0], prefix);
    cr_assert(strstr(diag.lines[0], part), "'%s' does not contain '%s'", diag.lines[0], part);
    omo_diag_clear(&diag);
    omo_network_destroy(net);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    char *buf = calloc(1, 1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

Test(rules, small_routing_loads_with_exact_values)
{
    omo_network *net = small_network();
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_load(ROUTING, net, &diag);
    cr_assert_not_null(rules);
    cr_assert_eq(diag.count, 0);

    cr_assert_eq(rules->version, 1);
    cr_assert_eq(rules->hour_cost, 100000);
    cr_assert_eq(rules->split_penalty, 3 * OMO_MICRO);
    cr_assert_eq(rules->max_shipments, 3);
    cr_assert(!rules->split_lines);
    cr_assert(!rules->partial_deny);

    cr_assert_eq(rules->nservices, 2);
    const omo_service *std = &rules->services[0];
    cr_assert_str_eq(std->name, "standard");
    cr_assert_eq(std->from_mask, OMO_TYPE_BIT(OMO_NODE_WAREHOUSE) | OMO_TYPE_BIT(OMO_NODE_STORE));
    cr_assert_eq(std->nzones, 3);
    cr_assert_float_eq(std->zones[0].max_km, 50.0, 1e-12);
    cr_assert_eq(std->zones[0].cost, 4 * OMO_MICRO);
    cr_assert_eq(std->zones[0].hours, 24 * OMO_MILLI);
    cr_assert_float_eq(std->zones[1].max_km, 500.0, 1e-12);
    cr_assert_eq(std->zones[1].cost, 6500000);
    cr_assert_eq(std->zones[2].hours, 96 * OMO_MILLI);
    cr_assert_eq(std->zones[2].loc.line, 13);
    cr_assert_eq(std->zones[2].loc.col, 9);
    cr_assert_eq(std->zones[2].loc.file, rules->path);

    const omo_service *sd = &rules->services[1];
    cr_assert_str_eq(sd->name, "same_day");
    cr_assert_eq(sd->from_mask, OMO_TYPE_BIT(OMO_NODE_STORE));
    cr_assert_eq(sd->nzones, 1);
    cr_assert_eq(sd->zones[0].cost, 8 * OMO_MICRO);
    cr_assert_eq(sd->zones[0].hours, 3 * OMO_MILLI);
    cr_assert_eq(omo_rules_find_service(rules, "same_day"), 1);
    cr_assert_eq(omo_rules_find_service(rules, "standard"), 0);
    cr_assert_eq(omo_rules_find_service(rules, "express"), -1);

    cr_assert(rules->has_transfer);
    cr_assert_eq(rules->transfer.from_mask, OMO_TYPE_BIT(OMO_NODE_WAREHOUSE));
    cr_assert_eq(rules->transfer.nzones, 1);
    cr_assert_eq(rules->transfer.zones[0].cost, 2 * OMO_MICRO);
    cr_assert_eq(rules->transfer.zones[0].hours, 48 * OMO_MILLI);

    cr_assert_eq(rules->nrules, 3);
    const omo_rule *r0 = &rules->rules[0], *r1 = &rules->rules[1], *r2 = &rules->rules[2];
    cr_assert_str_eq(r0->name, "hazmat ships only from warehouses");
    cr_assert_str_eq(r0->sku_tag, "hazmat");
    cr_assert_null(r0->node_id);
    cr_assert_eq(r0->node, -1);
    cr_assert_eq(r0->node_type, -1);
    cr_assert_eq(r0->allow_node_types, OMO_TYPE_BIT(OMO_NODE_WAREHOUSE));
    cr_assert_eq(r0->safety_stock, -1);
    cr_assert_eq(r0->deny_methods, 0);
    cr_assert_eq(r0->loc.line, 22);

    cr_assert_str_eq(r1->node_id, "S-001");
    cr_assert_eq(r1->node, omo_network_find(net, "S-001"));
    cr_assert_geq(r1->node, 0);
    cr_assert_eq(r1->safety_stock, 3);
    cr_assert_eq(r1->allow_node_types, 0);

    cr_assert_str_eq(r2->channel, "marketplace");
    cr_assert_eq(r2->deny_methods, OMO_METHOD_BIT(OMO_METHOD_SHIP_FROM_STORE));
    cr_assert_null(r2->service);

    /* The version is the FNV-1a 64 hash of the file's bytes. */
    size_t len;
    char *buf = slurp(ROUTING, &len);
    char want[17];
    snprintf(want, sizeof want, "%016" PRIx64, omo_hash_bytes(buf, len));
    cr_assert_str_eq(rules->version_hash, want);
    cr_assert_eq(strlen(rules->version_hash), 16);
    for (const char *p = rules->version_hash; *p; p++)
        cr_assert((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
    free(buf);

    omo_rules_destroy(rules);
    omo_network_destroy(net);
}

Test(rules, without_a_network_node_ids_stay_unresolved)
{
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_load(ROUTING, NULL, &diag);
    cr_assert_not_null(rules);
    cr_assert_str_eq(rules->rules[1].node_id, "S-001");
    cr_assert_eq(rules->rules[1].node, -1);
    omo_rules_destroy(rules);

    /* Unknown nodes only show up once the network is known. */
    rules = omo_rules_load("tests/fixtures/broken_unknown_node.yaml", NULL, &diag);
    cr_assert_not_null(rules);
    cr_assert_eq(diag.count, 0);
    cr_assert_eq(rules->rules[1].ndeny_nodes, 2);
    cr_assert_str_eq(rules->rules[1].deny_node_ids[1], "S-404");
    cr_assert_eq(rules->rules[1].deny_nodes[0], -1);
    omo_rules_destroy(rules);
}

Test(rules, defaults_and_a_buffer)
{
    const char *yaml = "version: 7\n"
                       "services:\n"
                       "  ground: {zones: [{max_km: 12.5, cost: 0.000001, hours: 0.001}]}\n"
                       "rules:\n"
                       "  - name: pickup orders never from DC-WEST\n"
                       "    when: {service: pickup, node_type: warehouse}\n"
                       "    deny_nodes: [DC-WEST]\n"
                       "    deny_methods: [click_and_collect, warehouse]\n";
    omo_network *net = small_network();
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_parse("inline", yaml, strlen(yaml), net, &diag);
    cr_assert_not_null(rules);
    cr_assert_str_eq(rules->path, "inline");
    cr_assert_eq(rules->version, 7);
    cr_assert_eq(rules->max_shipments, 3);
    cr_assert(!rules->split_lines);
    cr_assert(!rules->partial_deny);
    cr_assert_eq(rules->hour_cost, 0);
    cr_assert_eq(rules->split_penalty, 0);
    cr_assert(!rules->has_transfer);
    cr_assert_eq(rules->services[0].zones[0].cost, 1);
    cr_assert_eq(rules->services[0].zones[0].hours, 1);
    const omo_rule *r = &rules->rules[0];
    cr_assert_str_eq(r->service, "pickup");
    cr_assert_eq(r->node_type, OMO_NODE_WAREHOUSE);
    cr_assert_eq(r->ndeny_nodes, 1);
    cr_assert_eq(r->deny_nodes[0], omo_network_find(net, "DC-WEST"));
    cr_assert_eq(r->deny_methods, OMO_METHOD_BIT(OMO_METHOD_CLICK_AND_COLLECT) |
                                      OMO_METHOD_BIT(OMO_METHOD_WAREHOUSE));
    omo_rules_destroy(rules);

    const char *strict = "version: 1\nmax_shipments: 1\nsplit_lines: true\npartial: deny\n"
                         "services: {s: {zones: [{max_km: 1, cost: 0, hours: 0}]}}\n";
    rules = omo_rules_parse("inline", strict, strlen(strict), net, &diag);
    cr_assert_not_null(rules);
    cr_assert_eq(rules->max_shipments, 1);
    cr_assert(rules->split_lines);
    cr_assert(rules->partial_deny);
    cr_assert_eq(rules->nrules, 0);
    cr_assert_eq(diag.count, 0);
    omo_rules_destroy(rules);
    omo_network_destroy(net);

    cr_assert_str_eq(omo_method_name(OMO_METHOD_SHIP_FROM_STORE), "ship_from_store");
    cr_assert_str_eq(omo_method_name(OMO_METHOD_CLICK_AND_COLLECT), "click_and_collect");
}

Test(rules, duplicate_key)
{
    const char *lines[] = {"tests/fixtures/broken_duplicate_key.yaml:6:1: error: duplicate key "
                           "'max_shipments' (first at line 2)"};
    expect_errors("tests/fixtures/broken_duplicate_key.yaml", 1, lines);
}

Test(rules, zones_must_increase)
{
    const char *lines[] = {"tests/fixtures/broken_zones_order.yaml:7:18: error: zone max_km must "
                           "increase (previous zone: 500 km)"};
    expect_errors("tests/fixtures/broken_zones_order.yaml", 1, lines);
}

Test(rules, unknown_nodes_in_rules)
{
    const char *lines[] = {
        "tests/fixtures/broken_unknown_node.yaml:7:18: error: unknown node 'S-999' (not in "
        "tests/fixtures/network_small.yaml)",
        "tests/fixtures/broken_unknown_node.yaml:10:25: error: unknown node 'S-404' (not in "
        "tests/fixtures/network_small.yaml)",
    };
    expect_errors("tests/fixtures/broken_unknown_node.yaml", 2, lines);
}

Test(rules, unknown_service_method_and_missing_action)
{
    const char *lines[] = {
        "tests/fixtures/broken_rule_refs.yaml:7:21: error: unknown service 'express' (valid: "
        "standard, pickup)",
        "tests/fixtures/broken_rule_refs.yaml:11:37: error: unknown method 'drone' (valid: "
        "warehouse, ship_from_store, click_and_collect)",
        "tests/fixtures/broken_rule_refs.yaml:12:5: error: rule 'nothing to do' has no action "
        "(allow_node_types, deny_nodes, deny_methods or safety_stock)",
    };
    expect_errors("tests/fixtures/broken_rule_refs.yaml", 3, lines);
}

#define SVC "services: {s: {zones: [{max_km: 10, cost: 1, hours: 1}]}}\n"

Test(rules, value_errors)
{
    expect_buffer_error("services: {s: {zones: [{max_km: 10, cost: 1, hours: 1}]}}\n", 1,
                        "r.yaml:1:1: ", "missing required key 'version'");
    expect_buffer_error("version: one\n" SVC, 1,
                        "r.yaml:1:10: ", "expected an integer for 'version', got 'one'");
    expect_buffer_error("version: 1\nmax_shipments: 0\n" SVC, 1,
                        "r.yaml:2:16: ", "max_shipments must be between 1 and 2147483647");
    expect_buffer_error("version: 1\npartial: maybe\n" SVC, 1,
                        "r.yaml:2:10: ", "unknown partial mode 'maybe' (valid: allow, deny)");
    expect_buffer_error("version: 1\nsplit_lines: 1\n" SVC, 1,
                        "r.yaml:2:14: ", "expected true or false for 'split_lines'");
    expect_buffer_error("version: 1\nobjective: {hour_cost: -0.5}\n" SVC, 1,
                        "r.yaml:2:24: ", "hour_cost must not be negative");
    expect_buffer_error("version: 1\nobjective: {hours_cost: 0.5}\n" SVC, 1, "r.yaml:2:13: ",
                        "unknown key 'hours_cost' (valid keys: hour_cost, split_penalty)");
    expect_buffer_error("version: 1\nobjective: [1]\n" SVC, 1,
                        "r.yaml:2:12: ", "expected a mapping for 'objective', got a list");
}

Test(rules, service_errors)
{
    expect_buffer_error("version: 1\n", 1, "r.yaml:1:1: ", "missing required key 'services'");
    expect_buffer_error("version: 1\nservices: {}\n", 1, "r.yaml:2:11: ", "at least one service");
    expect_buffer_error("version: 1\nservices: {s: {zones: []}}\n", 1,
                        "r.yaml:2:23: ", "zones must list at least one zone");
    expect_buffer_error("version: 1\nservices: {s: {from: [depot], zones: [{max_km: 1, cost: 1, "
                        "hours: 1}]}}\n",
                        1, "r.yaml:2:23: ", "unknown node type 'depot'");
    expect_buffer_error("version: 1\nservices: {s: {zones: [{max_km: 0, cost: 1, hours: 1}]}}\n", 1,
                        "r.yaml:2:33: ", "max_km must be greater than 0");
    expect_buffer_error("version: 1\nservices: {s: {zones: [{max_km: 5, cost: -1, hours: 1}]}}\n",
                        1, "r.yaml:2:42: ", "cost must not be negative");
    expect_buffer_error("version: 1\nservices: {s: {zones: [{max_km: 5, hours: 1}]}}\n", 1,
                        "r.yaml:2:24: ", "missing required key 'cost'");
    expect_buffer_error("version: 1\nservices: {pickup: {zones: [{max_km: 5, cost: 1, hours: 1}]}}"
                        "\n",
                        1, "r.yaml:2:12: ", "reserved");
    expect_buffer_error("version: 1\nservices: {s: {zone: [{max_km: 5, cost: 1, hours: 1}]}}\n", 2,
                        "r.yaml:2:15: ", "missing required key 'zones'");
    expect_buffer_error("version: 1\n" SVC "pickup: {transfer: {zones: [{max_km: 5, cost: 1, "
                        "hours: 1}]}, own: true}\n",
                        1, "r.yaml:3:63: ", "unknown key 'own' (valid keys: transfer)");
}

Test(rules, rule_errors)
{
    expect_buffer_error("version: 1\n" SVC
                        "rules:\n  - when: {channel: web}\n    safety_stock: 1\n",
                        1, "r.yaml:4:5: ", "missing required key 'name'");
    expect_buffer_error("version: 1\n" SVC "rules:\n  - {name: a, when: {store: S-001}, "
                        "safety_stock: 1}\n",
                        1, "r.yaml:4:22: ",
                        "unknown key 'store' (valid keys: node, node_type, "
                        "sku, sku_tag, channel, service)");
    expect_buffer_error("version: 1\n" SVC "rules:\n  - {name: a, allow_node_types: []}\n", 1,
                        "r.yaml:4:33: ", "allow_node_types must name at least one node type");
    expect_buffer_error("version: 1\n" SVC "rules:\n  - {name: a, safety_stock: -1}\n", 1,
                        "r.yaml:4:29: ", "safety_stock must not be negative");
    expect_buffer_error("version: 1\n" SVC "rules:\n  - {name: a, deny_nodes: [S-001, [x]]}\n", 1,
                        "r.yaml:4:35: ", "expected a string for a node id, got a list");
    expect_buffer_error("version: 1\n" SVC "rules: {name: a}\n", 1,
                        "r.yaml:3:8: ", "expected a list for 'rules'");
}

/* Runs `omo ARGS`; returns the exit code, with stdout and stderr in out/err. */
static int run_omo(const char *args, char *out, size_t outlen, char *err, size_t errlen)
{
    char outpath[] = "/tmp/omo-rules-out-XXXXXX", errpath[] = "/tmp/omo-rules-err-XXXXXX";
    int ofd = mkstemp(outpath), efd = mkstemp(errpath);
    cr_assert(ofd >= 0 && efd >= 0);
    close(ofd);
    close(efd);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s >%s 2>%s", OMO_BINARY, args, outpath, errpath);
    int status = system(cmd);
    cr_assert(WIFEXITED(status), "omo did not exit normally");
    FILE *f = fopen(outpath, "r");
    size_t n = fread(out, 1, outlen - 1, f);
    out[n] = '\0';
    fclose(f);
    f = fopen(errpath, "r");
    n = fread(err, 1, errlen - 1, f);
    err[n] = '\0';
    fclose(f);
    unlink(outpath);
    unlink(errpath);
    return WEXITSTATUS(status);
}

Test(rules, cli_check_ok)
{
    char out[4096], err[4096], want[256];
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_load(ROUTING, NULL, &diag);
    cr_assert_not_null(rules);
    snprintf(want, sizeof want, "%s: ok (version 1, 2 services, 3 rules, hash %s)\n", ROUTING,
             rules->version_hash);
    omo_rules_destroy(rules);

    cr_assert_eq(
        run_omo("rules check " ROUTING " --network " NETWORK, out, sizeof out, err, sizeof err), 0,
        "stderr: %s", err);
    cr_assert_str_eq(out, want);
    cr_assert_str_eq(err, "");

    cr_assert_eq(
        run_omo("rules check --network=" NETWORK " " ROUTING, out, sizeof out, err, sizeof err), 0);
    cr_assert_str_eq(out, want);
    cr_assert_eq(run_omo("rules check " ROUTING, out, sizeof out, err, sizeof err), 0);
    cr_assert_str_eq(out, want);
}

Test(rules, cli_check_reports_every_error)
{
    char out[4096], err[4096];
    cr_assert_eq(run_omo("rules check tests/fixtures/broken_rule_refs.yaml --network " NETWORK, out,
                         sizeof out, err, sizeof err),
                 2);
    cr_assert_str_eq(out, "");
    cr_assert_str_eq(err, "tests/fixtures/broken_rule_refs.yaml:7:21: error: unknown service "
                          "'express' (valid: standard, pickup)\n"
                          "tests/fixtures/broken_rule_refs.yaml:11:37: error: unknown method "
                          "'drone' (valid: warehouse, ship_from_store, click_and_collect)\n"
                          "tests/fixtures/broken_rule_refs.yaml:12:5: error: rule 'nothing to do' "
                          "has no action (allow_node_types, deny_nodes, deny_methods or "
                          "safety_stock)\n");

    /* A broken network stops the check before the rules. */
    cr_assert_eq(run_omo("rules check " ROUTING " --network tests/fixtures/broken_latitude.yaml",
                         out, sizeof out, err, sizeof err),
                 2);
    cr_assert_str_eq(err, "tests/fixtures/broken_latitude.yaml:7:10: error: lat must be between "
                          "-90 and 90\n");

    cr_assert_eq(run_omo("rules check tests/fixtures/broken_unknown_node.yaml --network " NETWORK,
                         out, sizeof out, err, sizeof err),
                 2);
    cr_assert(strstr(err, "broken_unknown_node.yaml:7:18: error: unknown node 'S-999'"), "%s", err);
}

Test(rules, cli_usage)
{
    char out[4096], err[4096];
    const char *bad[] = {"rules",
                         "rules check",
                         "rules check " ROUTING " --network",
                         "rules check " ROUTING " extra.yaml",
                         "rules check " ROUTING " --verbose",
                         "rules frobnicate " ROUTING};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cr_assert_eq(run_omo(bad[i], out, sizeof out, err, sizeof err), 2, "omo %s", bad[i]);
        cr_assert(strstr(err, "usage: omo rules check R.yaml [--network N.yaml]"), "omo %s: %s",
                  bad[i], err);
        cr_assert_str_eq(out, "");
    }
    cr_assert_eq(
        run_omo("rules check tests/fixtures/no_such_rules.yaml", out, sizeof out, err, sizeof err),
        2);
    cr_assert(strstr(err, "no_such_rules.yaml: error: cannot read"), "%s", err);
}
