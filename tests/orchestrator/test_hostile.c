/* Hostile inputs every parser meets with a clear error, never a crash: YAML aliases that expand
 * to a billion nodes, 10,000-deep nesting, 1 MB strings, 2^63 and 1e308; inputs the fuzz
 * targets of tests/fuzz found wrong are kept here too. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "network.h"
#include "rules.h"
#include "svcconf.h"
#include "tz.h"

static omo_network *net;

static void setup(void)
{
    cr_assert_eq(chdir(OMO_SOURCE_DIR), 0);
    omo_diag diag = {0};
    net = omo_network_load("tests/fixtures/pick_network.yaml", &diag);
    cr_assert_not_null(net);
}

static void teardown(void)
{
    omo_network_destroy(net);
}

TestSuite(hostile, .init = setup, .fini = teardown);

/* Every line of diag is one `NAME:LINE:COL: error: ...` line; one of them holds want. */
static void assert_errors(const omo_diag *diag, const char *name, const char *want)
{
    bool found = false;
    cr_assert_gt(diag->count, 0, "no error");
    for (size_t i = 0; i < diag->count; i++) {
        const char *l = diag->lines[i];
        cr_assert_eq(strncmp(l, name, strlen(name)), 0, "%s", l);
        cr_assert_not_null(strstr(l, ": error: "), "%s", l);
        cr_assert_null(strchr(l, '\n'), "an error of two lines: %s", l);
        cr_assert_lt(strlen(l), 600, "an error of %zu bytes", strlen(l));
        found |= strstr(l, want) != NULL;
    }
    if (!found) {
        omo_diag_print(diag, stderr);
        cr_assert_fail("no error says '%s'", want);
    }
}

static void assert_rules_refused(const char *text, size_t len, const char *want)
{
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_parse("routing.yaml", text, len, net, &diag);
    cr_assert_null(rules);
    assert_errors(&diag, "routing.yaml:", want);
    omo_diag_clear(&diag);
}

static void assert_event_refused(const char *text, size_t len, const char *reason,
                                 const char *field)
{
    static omo_event ev;
    omo_event_error err;
    cr_assert_not(omo_event_parse(text, len, net, &ev, &err), "accepted");
    cr_assert_str_eq(err.reason, reason, "%s: %s", err.field, err.message);
    cr_assert_str_eq(err.field, field, "%s", err.message);
    cr_assert_lt(strlen(err.message), sizeof err.message - 1);
}

Test(hostile, billion_laughs)
{
    omo_diag diag = {0};
    cr_assert_null(omo_rules_load("tests/fixtures/hostile_aliases.yaml", net, &diag));
    assert_errors(&diag, "tests/fixtures/hostile_aliases.yaml:13:", "document too large");
    omo_diag_clear(&diag);
    cr_assert_null(omo_network_load("tests/fixtures/hostile_aliases.yaml", &diag));
    assert_errors(&diag, "tests/fixtures/hostile_aliases.yaml:", "document too large");
    omo_diag_clear(&diag);
}

static char *nested(const char *head, const char *open, const char *mid, const char *close,
                    int depth)
{
    size_t n = strlen(head) + depth * (strlen(open) + strlen(close)) + strlen(mid) + 2;
    char *s = malloc(n), *p = s;
    p += sprintf(p, "%s", head);
    for (int i = 0; i < depth; i++)
        p += sprintf(p, "%s", open);
    p += sprintf(p, "%s", mid);
    for (int i = 0; i < depth; i++)
        p += sprintf(p, "%s", close);
    sprintf(p, "\n");
    return s;
}

Test(hostile, ten_thousand_deep)
{
    char *seqs = nested("version: 1\nservices: ", "[", "", "]", 10000);
    assert_rules_refused(seqs, strlen(seqs), "expected a mapping for 'services', got a list");
    free(seqs);
    char *maps = nested("version: 1\nservices: ", "{a: ", "1", "}", 10000);
    assert_rules_refused(maps, strlen(maps), "unknown key 'a'");
    free(maps);

    omo_diag diag = {0};
    char *nodes = nested("nodes: ", "[", "", "]", 10000);
    cr_assert_null(omo_network_parse("network.yaml", nodes, strlen(nodes), &diag));
    assert_errors(&diag, "network.yaml:", "error");
    omo_diag_clear(&diag);
    cr_assert_null(omo_svcconf_parse("omo.yaml", nodes, strlen(nodes), &diag));
    assert_errors(&diag, "omo.yaml:", "unknown key 'nodes'");
    omo_diag_clear(&diag);
    free(nodes);

    char *json = nested("{\"type\":\"order.created\",\"x\":", "[", "", "]", 10000);
    json[strlen(json) - 1] = '}';
    assert_event_refused(json, strlen(json), "malformed_json", "");
    free(json);
}

Test(hostile, one_megabyte_strings)
{
    size_t big = 1 << 20;
    char *s = malloc(big + 256);
    int n = sprintf(s, "version: 1\nservices:\n  ");
    memset(s + n, 'x', big);
    sprintf(s + n + big, ":\n    zones: [{max_km: 50, cost: 4, hours: 24}]\n");
    assert_rules_refused(s, strlen(s), "error");
    free(s);

    s = malloc(big + 256);
    n = sprintf(s, "{\"type\":\"order.cancelled\",\"order_id\":\"");
    memset(s + n, 'O', big);
    sprintf(s + n + big, "\"}");
    assert_event_refused(s, strlen(s), "too_long", "order_id");
    free(s);
}

Test(hostile, numbers_beyond_range)
{
    omo_diag diag = {0};
    cr_assert_null(omo_rules_load("tests/fixtures/hostile_numbers.yaml", net, &diag));
    assert_errors(&diag, "tests/fixtures/hostile_numbers.yaml:", "max_shipments is out of range");
    assert_errors(&diag, "tests/fixtures/hostile_numbers.yaml:",
                  "expected a number for 'hour_cost', got '1e308'");
    assert_errors(&diag, "tests/fixtures/hostile_numbers.yaml:", "split_penalty is out of range");
    omo_diag_clear(&diag);
    cr_assert_null(omo_network_load("tests/fixtures/hostile_network_numbers.yaml", &diag));
    const char *nf = "tests/fixtures/hostile_network_numbers.yaml:";
    assert_errors(&diag, nf, "expected a number for 'lat', got '1e308'");
    assert_errors(&diag, nf, "daily_capacity is out of range");
    assert_errors(&diag, nf, "safety_stock is out of range");
    assert_errors(&diag, nf, "handling_cost is out of range");
    omo_diag_clear(&diag);

    FILE *f = fopen("tests/fixtures/hostile_events.jsonl", "r");
    cr_assert_not_null(f);
    static const char *const want[][2] = {
        {"malformed_json", ""},           {"malformed_json", ""},
        {"out_of_range", "customer.lat"}, {"out_of_range", "lines[0].qty"},
        {"wrong_type", "on_hand"},        {"out_of_range", "delta"},
    };
    char line[4096];
    size_t i = 0;
    while (fgets(line, sizeof line, f)) {
        cr_assert_lt(i, sizeof want / sizeof want[0]);
        assert_event_refused(line, strlen(line), want[i][0], want[i][1]);
        i++;
    }
    fclose(f);
    cr_assert_eq(i, sizeof want / sizeof want[0]);
}

/* Found by fuzz_rules: a quoted scalar holding a newline made an error of two lines. */
Test(hostile, errors_stay_one_line)
{
    const char text[] = "version: 1\n\"max\\nshipments\": 3\nservices: \"a\\tb\\u0001\"\n";
    omo_diag diag = {0};
    cr_assert_null(omo_rules_parse("routing.yaml", text, sizeof text - 1, net, &diag));
    assert_errors(&diag, "routing.yaml:", "unknown key 'max\\nshipments'");
    assert_errors(&diag, "routing.yaml:", "got 'a\\tb\\x01'");
    omo_diag_clear(&diag);
}

/* Found while bounding the solver's arithmetic: 2^63 - 1 units overflowed the objective. */
Test(hostile, quantities_are_bounded)
{
    const char order[] = "{\"type\":\"order.created\",\"order_id\":\"O-9\",\"created_at\":"
                         "\"2025-03-03T09:00:00Z\",\"customer\":{\"lat\":40,\"lon\":-73},"
                         "\"delivery\":{\"method\":\"ship\",\"service\":\"standard\"},\"lines\":["
                         "{\"line_id\":\"1\",\"sku\":\"SKU-A\",\"qty\":600000},"
                         "{\"line_id\":\"2\",\"sku\":\"SKU-B\",\"qty\":400001}]}";
    assert_event_refused(order, sizeof order - 1, "out_of_range", "lines[1].qty");
    const char snap[] = "{\"type\":\"stock.snapshot\",\"event_id\":\"e\",\"node_id\":\"S-1\","
                        "\"sku\":\"SKU-A\",\"on_hand\":1000000001}";
    assert_event_refused(snap, sizeof snap - 1, "out_of_range", "on_hand");
}

/* A TZif file of one type, UT offset `off` seconds. */
static size_t tzif_one_type(unsigned char *buf, int32_t off)
{
    memset(buf, 0, 50);
    memcpy(buf, "TZif", 4);
    buf[39] = 1; /* typecnt */
    buf[43] = 4; /* charcnt */
    uint32_t u = (uint32_t)off;
    buf[44] = (unsigned char)(u >> 24);
    buf[45] = (unsigned char)(u >> 16);
    buf[46] = (unsigned char)(u >> 8);
    buf[47] = (unsigned char)u;
    memcpy(buf + 50, "XXX", 4);
    return 54;
}

Test(hostile, tzif_offsets)
{
    unsigned char buf[64];
    int64_t ms = 1795392000000LL + 23 * 3600 * 1000LL, day;
    size_t n = tzif_one_type(buf, 3600);
    cr_assert(omo_tz_parse_check(buf, n, &ms, &day, 1));
    cr_assert_eq(day, 1795392000000LL / 86400000 + 1);
    n = tzif_one_type(buf, 100000);
    cr_assert_not(omo_tz_parse_check(buf, n, &ms, &day, 1), "an offset of 27.8 hours");
    n = tzif_one_type(buf, INT32_MIN);
    cr_assert_not(omo_tz_parse_check(buf, n, &ms, &day, 1));
    cr_assert_not(omo_tz_parse_check(buf, 43, &ms, &day, 1), "a truncated header");
}
