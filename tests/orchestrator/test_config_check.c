/* `omo config check`: omo.yaml, the network and rules it names and the stores its tokens name,
 * checked without connecting to anything; exit 0 with a summary, or 2 with every error at its
 * FILE:LINE:COL. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs `omo ARGS` in the source tree; returns its exit code and its stdout and stderr. */
static int run(const char *args, char *out, size_t len)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", OMO_SOURCE_DIR, OMO_BINARY, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(config_check, a_good_file_passes_with_a_summary)
{
    char out[4096];
    int rc = run("config check --config tests/fixtures/omo_minimal.yaml", out, sizeof out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_str_eq(out, "tests/fixtures/omo_minimal.yaml: ok (brokers localhost:9092, group omo; "
                          "network tests/fixtures/network_small.yaml: 5 nodes; rules "
                          "tests/fixtures/../fixtures/routing_small.yaml: version "
                          "99d716f696fef562; http off, 0 tokens)\n");
}

Test(config_check, rules_and_tokens_against_the_network)
{
    char out[4096];
    int rc = run("config check --config tests/fixtures/broken_omo_check.yaml", out, sizeof out);
    cr_assert_eq(rc, 2, "%s", out);
#define R "tests/fixtures/broken_rule_refs.yaml"
#define O "tests/fixtures/broken_omo_check.yaml"
    cr_assert_str_eq(
        out, R ":7:21: error: unknown service 'express' (valid: standard, pickup)\n" R
               ":11:37: error: unknown method 'drone' (valid: warehouse, ship_from_store, "
               "click_and_collect)\n" R
               ":12:5: error: rule 'nothing to do' has no action (allow_node_types, deny_nodes, "
               "deny_methods or safety_stock)\n" O
               ":10:38: error: node 'DC-EAST' is a warehouse, not a store\n" O
               ":11:38: error: store 'S-404' is not a node of tests/fixtures/network_small.yaml\n");
#undef R
#undef O
}

Test(config_check, unset_variables_and_bad_usage)
{
    char out[4096];
    unsetenv("OMO_TEST_BROKERS");
    int rc = run("config check --config tests/fixtures/omo_full.yaml", out, sizeof out);
    cr_assert_eq(rc, 2, "%s", out);
    cr_assert(strstr(out, "tests/fixtures/omo_full.yaml:3:12: error: environment variable "
                          "OMO_TEST_BROKERS is not set\n"),
              "%s", out);
    cr_assert_eq(run("config check", out, sizeof out), 2);
    cr_assert_str_eq(out, "usage: omo config check --config omo.yaml\n");
    cr_assert_eq(run("config lint --config tests/fixtures/omo_minimal.yaml", out, sizeof out), 2);
    cr_assert_eq(run("config check --config tests/fixtures/no_such.yaml", out, sizeof out), 2);
    cr_assert(strstr(out, "tests/fixtures/no_such.yaml: error: cannot read"), "%s", out);
}
