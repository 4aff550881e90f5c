/* omo.yaml: values, environment expansion, defaults, paths, tokens, and every error at its
 * exact place. */
#include "svcconf.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void setup(void)
{
    /* Fixture paths are relative to the source tree, as users see them in error lines. */
    cr_assert_eq(chdir(OMO_SOURCE_DIR), 0);
    cr_assert_eq(setenv("OMO_TEST_BROKERS", "k1:9092,k2:9092", 1), 0);
    cr_assert_eq(setenv("OMO_TEST_SECRET", "s3cr3t", 1), 0);
    cr_assert_eq(setenv("OMO_TEST_OPS_TOKEN", "ops-1", 1), 0);
    cr_assert_eq(setenv("OMO_TEST_STORE_TOKEN", "store-2", 1), 0);
    cr_assert_eq(setenv("OMO_TEST_STORE", "S-001", 1), 0);
    cr_assert_eq(setenv("OMO_TEST_EMPTY", "", 1), 0);
    const char *unset[] = {"OMO_TEST_UNSET_A", "OMO_TEST_UNSET_B", "OMO_TEST_UNSET_C",
                           "OMO_TEST_UNSET_D"};
    for (size_t i = 0; i < sizeof unset / sizeof *unset; i++)
        cr_assert_eq(unsetenv(unset[i]), 0);
}

TestSuite(svcconf, .init = setup);

static void assert_diag(const omo_diag *diag, size_t count, const char *const *lines)
{
    for (size_t i = 0; i < diag->count; i++)
        cr_log_info("diag: %s", diag->lines[i]);
    cr_assert_eq(diag->count, count, "expected %zu error lines, got %zu", count, diag->count);
    for (size_t i = 0; i < count; i++)
        cr_assert_str_eq(diag->lines[i], lines[i]);
}

/* Loads a broken file, which must fail with exactly these lines. */
static void expect_errors(const char *path, size_t count, const char *const *lines)
{
    omo_diag diag = {0};
    omo_svcconf *conf = omo_svcconf_load(path, &diag);
    cr_assert_null(conf, "%s loaded although it is broken", path);
    assert_diag(&diag, count, lines);
    omo_diag_clear(&diag);
}

#define EXPECT_ERRORS(path, ...)                                                                   \
    do {                                                                                           \
        const char *const lines_[] = {__VA_ARGS__};                                                \
        expect_errors(path, sizeof lines_ / sizeof *lines_, lines_);                               \
    } while (0)

/* Writes text to a fresh temporary omo.yaml; returns its path in buf. */
static const char *temp_conf(const char *text, char *buf, size_t len)
{
    char dir[] = "/tmp/omo-svcconf-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(buf, len, "%s/omo.yaml", dir);
    FILE *f = fopen(buf, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fputs(text, f) >= 0, true);
    cr_assert_eq(fclose(f), 0);
    return buf;
}

static void remove_temp_conf(const char *path)
{
    cr_assert_eq(unlink(path), 0);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    cr_assert_eq(rmdir(dir), 0);
}

#define BASE                                                                                       \
    "kafka: {brokers: localhost:9092}\n"                                                           \
    "postgres: {dsn: postgresql://omo@localhost/omo}\n"                                            \
    "network: n.yaml\n"                                                                            \
    "routing: r.yaml\n"

Test(svcconf, full_file_with_environment)
{
    omo_diag diag = {0};
    omo_svcconf *conf = omo_svcconf_load("tests/fixtures/omo_full.yaml", &diag);
    assert_diag(&diag, 0, NULL);
    cr_assert_not_null(conf);
    cr_assert_str_eq(conf->path, "tests/fixtures/omo_full.yaml");
    cr_assert_str_eq(conf->brokers, "k1:9092,k2:9092");
    cr_assert_str_eq(conf->group, "omo-test");
    cr_assert_str_eq(conf->topic_orders, "t.orders");
    cr_assert_str_eq(conf->topic_stock, "t.stock");
    cr_assert_str_eq(conf->topic_allocations, "t.allocations");
    cr_assert_str_eq(conf->topic_shipments, "t.shipments");
    cr_assert_str_eq(conf->topic_dead_letter, "t.dead-letter");

    const char *props[][2] = {
        {"security.protocol", "SASL_SSL"},
        {"sasl.username", "omo"},
        {"sasl.password", "pre-s3cr3t-s3cr3t-post"},
        {"linger.ms", "5"},
        {"enable.idempotence", "true"},
        /* only a whole `${NAME}` is replaced; anything else stays as written */
        {"client.id", "a$b ${ } ${1X} ${OMO_TEST_BROKERS"},
    };
    cr_assert_eq(conf->nkafka_props, 6);
    for (size_t i = 0; i < 6; i++) {
        cr_assert_str_eq(conf->kafka_props[i].key, props[i][0]);
        cr_assert_str_eq(conf->kafka_props[i].value, props[i][1]);
    }

    cr_assert_str_eq(conf->dsn, "postgresql://omo:s3cr3t@db.internal/omo");
    cr_assert_str_eq(conf->network_path, "tests/fixtures/network_small.yaml");
    cr_assert_str_eq(conf->routing_path, "/etc/omo/routing.yaml");
    cr_assert_str_eq(conf->listen, "127.0.0.1:8080");

    cr_assert_eq(conf->ntokens, 3);
    cr_assert_str_eq(conf->tokens[0].token, "ops-1");
    cr_assert_eq(conf->tokens[0].role, OMO_ROLE_OPS);
    cr_assert_null(conf->tokens[0].store);
    cr_assert_str_eq(conf->tokens[1].token, "store-2");
    cr_assert_eq(conf->tokens[1].role, OMO_ROLE_STORE);
    cr_assert_str_eq(conf->tokens[1].store, "S-002");
    cr_assert_str_eq(conf->tokens[2].token, "s001-token");
    cr_assert_eq(conf->tokens[2].role, OMO_ROLE_STORE);
    cr_assert_str_eq(conf->tokens[2].store, "S-001");
    cr_assert_eq(conf->checkpoint_events, 50000);
    cr_assert_eq(conf->checkpoint_seconds, 60);
    cr_assert_eq(conf->retain_days, 30);
    omo_svcconf_destroy(conf);
}

Test(svcconf, token_lookup)
{
    omo_diag diag = {0};
    omo_svcconf *conf = omo_svcconf_load("tests/fixtures/omo_full.yaml", &diag);
    cr_assert_not_null(conf);
    cr_assert_eq(omo_svcconf_token(conf, "ops-1"), &conf->tokens[0]);
    cr_assert_eq(omo_svcconf_token(conf, "store-2"), &conf->tokens[1]);
    cr_assert_eq(omo_svcconf_token(conf, "s001-token"), &conf->tokens[2]);
    const char *wrong[] = {
        "", "ops-", "ops-12", "OPS-1", "ops-2", "s001-token ", "${OMO_TEST_OPS_TOKEN}"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++)
        cr_assert_null(omo_svcconf_token(conf, wrong[i]), "'%s' was accepted", wrong[i]);
    cr_assert_null(omo_svcconf_token(conf, NULL));
    cr_assert_null(omo_svcconf_token(NULL, "ops-1"));
    omo_svcconf_destroy(conf);
    omo_svcconf_destroy(NULL);
}

Test(svcconf, defaults_and_paths_next_to_the_file)
{
    omo_diag diag = {0};
    omo_svcconf *conf = omo_svcconf_load("tests/fixtures/omo_minimal.yaml", &diag);
    assert_diag(&diag, 0, NULL);
    cr_assert_not_null(conf);
    cr_assert_str_eq(conf->brokers, "localhost:9092");
    cr_assert_str_eq(conf->group, "omo");
    cr_assert_str_eq(conf->topic_orders, "omo.orders");
    cr_assert_str_eq(conf->topic_stock, "omo.stock");
    cr_assert_str_eq(conf->topic_allocations, "omo.allocations");
    cr_assert_str_eq(conf->topic_shipments, "omo.shipments");
    cr_assert_str_eq(conf->topic_dead_letter, "omo.dead-letter");
    cr_assert_eq(conf->nkafka_props, 0);
    cr_assert_str_eq(conf->dsn, "postgresql://omo@localhost/omo");
    cr_assert_str_eq(conf->network_path, "tests/fixtures/network_small.yaml");
    cr_assert_str_eq(conf->routing_path, "tests/fixtures/../fixtures/routing_small.yaml");
    cr_assert_null(conf->listen);
    cr_assert_eq(conf->ntokens, 0);
    cr_assert_null(omo_svcconf_token(conf, "anything"));
    cr_assert_eq(conf->checkpoint_events, 100000);
    cr_assert_eq(conf->checkpoint_seconds, 300);
    cr_assert_eq(conf->retain_days, 7);
    /* the resolved paths name files that exist, wherever the process was started */
    cr_assert_eq(access(conf->network_path, R_OK), 0);
    cr_assert_eq(access(conf->routing_path, R_OK), 0);
    omo_svcconf_destroy(conf);

    /* a file in the working directory: paths stay as written */
    cr_assert_eq(chdir("tests/fixtures"), 0);
    conf = omo_svcconf_load("omo_minimal.yaml", &diag);
    cr_assert_not_null(conf);
    cr_assert_str_eq(conf->network_path, "network_small.yaml");
    cr_assert_str_eq(conf->routing_path, "../fixtures/routing_small.yaml");
    omo_svcconf_destroy(conf);

    /* an absolute configuration path gives absolute file paths */
    conf = omo_svcconf_load(OMO_SOURCE_DIR "/tests/fixtures/omo_minimal.yaml", &diag);
    cr_assert_not_null(conf);
    cr_assert_str_eq(conf->network_path, OMO_SOURCE_DIR "/tests/fixtures/network_small.yaml");
    omo_svcconf_destroy(conf);
    assert_diag(&diag, 0, NULL);
}

Test(svcconf, empty_properties_and_disabled_http)
{
    char path[PATH_MAX];
    temp_conf("kafka: {brokers: b:1, properties: }\n"
              "postgres: {dsn: x}\n"
              "network: n.yaml\n"
              "routing: r.yaml\n"
              "http: {listen: \"\", tokens: []}\n",
              path, sizeof path);
    omo_diag diag = {0};
    omo_svcconf *conf = omo_svcconf_load(path, &diag);
    assert_diag(&diag, 0, NULL);
    cr_assert_not_null(conf);
    cr_assert_eq(conf->nkafka_props, 0);
    cr_assert_str_eq(conf->listen, "");
    cr_assert_eq(conf->ntokens, 0);
    omo_svcconf_destroy(conf);
    remove_temp_conf(path);
}

Test(svcconf, listen_forms)
{
    const char *good[] = {"127.0.0.1:8080", "localhost:0", "0.0.0.0:65535", "10.1.2.3:1"};
    const char *bad[] = {
        "8080",         ":8080",      "127.0.0.1:",     "127.0.0.1:65536", "127.0.0.1:80a",
        "256.1.1.1:80", "[::1]:8080", "example.com:80", "127.0.0.1:-1",    "127.0.0.1:0080000"};
    char text[512], path[PATH_MAX];
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        snprintf(text, sizeof text, BASE "http: {listen: \"%s\"}\n", good[i]);
        temp_conf(text, path, sizeof path);
        omo_diag diag = {0};
        omo_svcconf *conf = omo_svcconf_load(path, &diag);
        assert_diag(&diag, 0, NULL);
        cr_assert_not_null(conf, "%s refused", good[i]);
        cr_assert_str_eq(conf->listen, good[i]);
        omo_svcconf_destroy(conf);
        remove_temp_conf(path);
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text, BASE "http: {listen: \"%s\"}\n", bad[i]);
        temp_conf(text, path, sizeof path);
        char want[PATH_MAX + 512];
        snprintf(want, sizeof want,
                 "%s:5:16: error: invalid listen address '%s': HOST:PORT expected, HOST an IPv4 "
                 "address or localhost, PORT 0 to 65535",
                 path, bad[i]);
        const char *const lines[] = {want};
        expect_errors(path, 1, lines);
        remove_temp_conf(path);
    }
}

Test(svcconf, unset_environment_variables)
{
#define F "tests/fixtures/broken_omo_unset_env.yaml"
    EXPECT_ERRORS(F, F ":2:12: error: environment variable OMO_TEST_UNSET_A is not set",
                  F ":4:20: error: environment variable OMO_TEST_UNSET_B is not set",
                  F ":6:8: error: environment variable OMO_TEST_UNSET_A is not set",
                  F ":6:8: error: environment variable OMO_TEST_UNSET_C is not set",
                  F ":11:15: error: environment variable OMO_TEST_UNSET_D is not set");
#undef F
}

Test(svcconf, unknown_keys_list_the_valid_ones)
{
#define F "tests/fixtures/broken_omo_unknown_key.yaml"
    EXPECT_ERRORS(F,
                  F ":3:23: error: unknown key 'stocks' (valid keys: orders, stock, allocations, "
                    "shipments, dead_letter, availability)",
                  F ":4:3: error: unknown key 'propertys' (valid keys: brokers, group, topics, "
                    "properties)",
                  F ":7:3: error: unknown key 'password' (valid keys: dsn)",
                  F ":10:1: error: unknown key 'rules' (valid keys: kafka, postgres, network, "
                    "routing, http, state)",
                  F ":14:31: error: unknown key 'scope' (valid keys: token, role, store)");
#undef F
}

Test(svcconf, duplicate_keys)
{
#define F "tests/fixtures/broken_omo_duplicate_key.yaml"
    EXPECT_ERRORS(F, F ":4:3: error: duplicate key 'group' (first at line 3)",
                  F ":9:1: error: duplicate key 'network' (first at line 7)");
#undef F
}

Test(svcconf, missing_required_keys)
{
#define F "tests/fixtures/broken_omo_missing.yaml"
    EXPECT_ERRORS(F, F ":1:1: error: missing required key 'network'",
                  F ":1:1: error: missing required key 'routing'",
                  F ":2:3: error: missing required key 'brokers'",
                  F ":3:11: error: missing required key 'dsn'",
                  F ":6:7: error: missing required key 'token'",
                  F ":7:7: error: missing required key 'role'");
#undef F
}

Test(svcconf, token_errors)
{
#define F "tests/fixtures/broken_omo_tokens.yaml"
    /* duplicates name lines, never the secret itself */
    EXPECT_ERRORS(F, F ":10:15: error: duplicate token (first at line 8)",
                  F ":11:15: error: duplicate token (first at line 8)",
                  F ":12:25: error: unknown role 'admin' (valid: ops, store)",
                  F ":13:7: error: a token with role store needs 'store': the store's id",
                  F ":14:37: error: 'store' is only for tokens with role store",
                  F ":15:39: error: invalid store id 'S 001': 1 to 64 characters of A-Z a-z 0-9 "
                    "_ . - expected",
                  F ":16:15: error: token must not be empty",
                  F ":17:15: error: token must not be empty");
#undef F
}

Test(svcconf, wrong_values)
{
#define F "tests/fixtures/broken_omo_values.yaml"
    EXPECT_ERRORS(
        F, F ":2:12: error: brokers must not be empty",
        F ":3:10: error: expected a string for 'group', got nothing",
        F ":4:20: error: invalid topic name 'bad topic': 1 to 249 characters of A-Z a-z 0-9 . _ "
          "- expected",
        F ":4:40: error: expected a string for 'stock', got a list",
        F ":4:61: error: invalid topic name '..': 1 to 249 characters of A-Z a-z 0-9 . _ - "
          "expected",
        F ":6:16: error: expected a string for kafka property 'linger.ms', got a mapping",
        F ":7:11: error: expected a string for kafka property 'acks', got nothing",
        F ":9:8: error: expected a string for 'dsn', got a list",
        F ":10:10: error: network must not be empty",
        F ":11:10: error: expected a string for 'routing', got a mapping",
        F ":13:11: error: invalid listen address '8080': HOST:PORT expected, HOST an IPv4 address "
          "or localhost, PORT 0 to 65535",
        F ":14:11: error: expected a list for 'tokens', got a mapping");
#undef F
}

Test(svcconf, state_values)
{
#define F "tests/fixtures/broken_omo_state.yaml"
    EXPECT_ERRORS(F, F ":6:22: error: checkpoint_events must be between 1 and 1000000000",
                  F ":7:23: error: expected an integer for 'checkpoint_seconds', got '5m'",
                  F ":8:16: error: retain_days must be between 1 and 3650",
                  F ":9:3: error: unknown key 'retain' (valid keys: checkpoint_events, "
                    "checkpoint_seconds, retain_days)");
#undef F
}

Test(svcconf, properties_must_be_a_mapping)
{
#define F "tests/fixtures/broken_omo_listen.yaml"
    EXPECT_ERRORS(F, F ":1:46: error: expected a mapping for 'properties', got a list",
                  F ":6:11: error: invalid listen address 'example.com:8080': HOST:PORT "
                    "expected, HOST an IPv4 address or localhost, PORT 0 to 65535");
#undef F
}

Test(svcconf, empty_file_wrong_root_missing_file)
{
    EXPECT_ERRORS("tests/fixtures/broken_omo_empty.yaml",
                  "tests/fixtures/broken_omo_empty.yaml:1:1: error: the service configuration is "
                  "empty: it needs kafka, postgres, network and routing");
    EXPECT_ERRORS("tests/fixtures/broken_omo_root.yaml",
                  "tests/fixtures/broken_omo_root.yaml:1:1: error: expected a mapping for the "
                  "service configuration, got a list");
    EXPECT_ERRORS("tests/fixtures/no_such_omo.yaml",
                  "tests/fixtures/no_such_omo.yaml: error: cannot read: No such file or directory");
}

Test(svcconf, errors_are_added_after_existing_lines)
{
    omo_diag diag = {0};
    omo_diag_add(&diag, "earlier: error: something else");
    omo_svcconf *conf = omo_svcconf_load("tests/fixtures/broken_omo_duplicate_key.yaml", &diag);
    cr_assert_null(conf);
    cr_assert_eq(diag.count, 3);
    cr_assert_str_eq(diag.lines[0], "earlier: error: something else");
    omo_diag_clear(&diag);
}

Test(svcconf, tls_files)
{
    /* both, relative to omo.yaml: resolved and checked readable */
    char path[PATH_MAX];
    temp_conf(BASE "http: {listen: \"127.0.0.1:0\", tls_cert: omo.yaml, "
                   "tls_key: omo.yaml}\n",
              path, sizeof path);
    omo_diag diag = {0};
    omo_svcconf *conf = omo_svcconf_load(path, &diag);
    assert_diag(&diag, 0, NULL);
    cr_assert_not_null(conf);
    cr_assert_str_eq(conf->tls_cert, path);
    cr_assert_str_eq(conf->tls_key, path);
    omo_svcconf_destroy(conf);
    remove_temp_conf(path);

    /* one without the other, and a file that is not there */
    temp_conf(BASE "http:\n  tls_cert: omo.yaml\n", path, sizeof path);
    conf = omo_svcconf_load(path, &diag);
    cr_assert_null(conf);
    char want[PATH_MAX + 128];
    snprintf(want, sizeof want, "%s:6:13: error: tls_cert needs tls_key too", path);
    assert_diag(&diag, 1, (const char *const[]){want});
    omo_diag_clear(&diag);
    remove_temp_conf(path);

    temp_conf(BASE "http:\n  tls_cert: omo.yaml\n  tls_key: /nonexistent/k.pem\n", path,
              sizeof path);
    conf = omo_svcconf_load(path, &diag);
    cr_assert_null(conf);
    snprintf(want, sizeof want,
             "%s:7:12: error: cannot read tls_key '/nonexistent/k.pem': No such file or directory",
             path);
    assert_diag(&diag, 1, (const char *const[]){want});
    omo_diag_clear(&diag);
    remove_temp_conf(path);
}
