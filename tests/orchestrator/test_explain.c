/* `omo explain` on fixtures where every exclusion is known by hand: one order per kind.
 *
 * tests/fixtures/explain_network.yaml puts customers at (40.0, -74.0), S-1 there, S-2 11.12 km
 * away, S-3 22.24 km, DC-A, DC-CAP and DC-NOSHIP 111.19 km, DC-FAR 3335.85 km. Each order uses
 * its own SKU, so only the nodes stocked with it are considered. Under explain_rules.yaml
 * (hour_cost 0.10, split_penalty 3.00, max_shipments 2; standard zones <=50 km 4.00/24 h and
 * <=500 km 6.00/48 h) the single-shipment objective of q units is:
 *   S-1, S-3  5 + 0.5q + 2.6 = 7.6 + 0.5q      S-2    6 + 0.5q + 2.6 = 8.6 + 0.5q
 *   DC-A      7 + 0.4q + 7.2 = 14.2 + 0.4q     DC-CAP 7 + 0.3q + 7.2 = 14.2 + 0.3q
 * By hand, order by order:
 *   Z-1     1u; DC-FAR beyond the last zone. S-1 8.1, runner-up DC-A 14.6.
 *   SD-1    same_day (from [store], <=15 km 8.00/3 h): DC-A's type is not in `from`, S-3 is
 *           22.2 km out. S-1 9 + 0.5 + 0.5 = 10.0, runner-up S-2 10 + 0.5 + 0.5 = 11.0.
 *   NS-1    2u; DC-NOSHIP has ship: false. DC-A 15.0, no runner-up.
 *   CAP-1/2 take DC-CAP's 3 units of 2026-11-23 in New York. CAP-3 at 23:00 New York time
 *           (already the 24th in UTC) finds it full: DC-A 14.6. CAP-4 at 01:00 on the 24th in
 *           New York: DC-CAP again (3 left) 14.5, runner-up DC-A 14.6.
 *   SS-1    S-2 holds 2 and keeps 2 (its own safety stock). S-3 8.1, runner-up DC-A 14.6.
 *   SAFE-1  S-1 holds 3, a rule keeps 3. S-3 8.1, runner-up DC-A 14.6.
 *   DN-1    partner channel: deny_nodes [S-1]. S-2 9.1 (atp 5 - 2), runner-up DC-A 14.6.
 *   DM-1    marketplace: deny_methods [ship_from_store] shuts S-1 out. DC-A 14.6.
 *   HAZ-1   hazmat SKU: allow_node_types [warehouse] shuts S-1 out. DC-A 14.6.
 *   PU-1    pickup at S-1 of 2u, S-1 holds 1: transfer from DC-A (<=300 km 2.00/48 h) gives
 *           2u at 3 + 0.8 + 7.2 = 11.0; the runner-up is S-1 itself, 1u at 1 + 0.5 + 0.2 = 1.7.
 *           S-3 is a store (transfer from [warehouse]); DC-FAR is 3335.8 km from S-1. Without a
 *           pickup block (explain_rules_notransfer.yaml) only S-1 serves: 1u, 1.7.
 *   NO-0/1  S-1 holds 1 unit that NO-0 reserves; NO-1 finds nothing to promise there: DC-A.
 *   MS-1    1u at S-1, 2u at S-3, 3u at DC-A, one SKU each, max 2 shipments: DC-A + S-3, 5u,
 *           7 + 1.2 + 5 + 1.0 + 7.2 + 3 = 24.4; runner-up DC-A + S-1, 4u, 23.9.
 *   MIX-1   a hazmat line and a line S-1 has none of: S-1 is excluded for two reasons.
 *   REJ-1   pickup at S-2, which takes no pickups; REJ-2 names an unknown service. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIX        "tests/fixtures/"
#define NETWORK    FIX "explain_network.yaml"
#define RULES      FIX "explain_rules.yaml"
#define NOTRANSFER FIX "explain_rules_notransfer.yaml"
#define EVENTS     FIX "explain_events.jsonl"

static void in_source_dir(void)
{
    cr_assert_eq(chdir(OMO_SOURCE_DIR), 0);
}

TestSuite(explain, .init = in_source_dir);

/* ---- running omo ----------------------------------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t cap = 1 << 14, n = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = 0;
    return buf;
}

typedef struct run_result {
    int code;
    char *out, *err;
} run_result;

static run_result run_omo(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static run_result run_omo(const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char outpath[] = "/tmp/omo-explain-out-XXXXXX", errpath[] = "/tmp/omo-explain-err-XXXXXX";
    int ofd = mkstemp(outpath), efd = mkstemp(errpath);
    cr_assert(ofd >= 0 && efd >= 0);
    close(ofd);
    close(efd);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s >%s 2>%s", OMO_BINARY, args, outpath, errpath);
    int status = system(cmd);
    cr_assert(WIFEXITED(status), "omo did not exit normally: %s", args);
    run_result r = {WEXITSTATUS(status), slurp(outpath), slurp(errpath)};
    unlink(outpath);
    unlink(errpath);
    return r;
}

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

/* The explanation of order_id as JSON and as text, both asserted to succeed. */
typedef struct explained {
    json_t *root;
    char *text;
} explained;

static explained explain_with(const char *rules, const char *order_id)
{
    explained e;
    run_result r = run_omo("explain --network " NETWORK " --rules %s --events " EVENTS " --json %s",
                           rules, order_id);
    cr_assert_eq(r.code, 0, "omo explain --json %s: exit %d: %s", order_id, r.code, r.err);
    json_error_t jerr;
    e.root = json_loads(r.out, 0, &jerr);
    cr_assert_not_null(e.root, "explain %s: not JSON (%s): %s", order_id, jerr.text, r.out);
    run_free(&r);
    r = run_omo("explain --network " NETWORK " --rules %s --events " EVENTS " %s", rules, order_id);
    cr_assert_eq(r.code, 0, "omo explain %s: exit %d: %s", order_id, r.code, r.err);
    e.text = r.out;
    free(r.err);
    cr_assert_str_eq(json_string_value(json_object_get(e.root, "order_id")), order_id);
    return e;
}

static explained explain(const char *order_id)
{
    return explain_with(RULES, order_id);
}

static void explained_free(explained *e)
{
    json_decref(e->root);
    free(e->text);
}

/* ---- reading the explanation ------------------------------------------------------------ */

static json_t *node_of(const explained *e, const char *id)
{
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(e->root, "nodes"), i, n)
    {
        if (!strcmp(json_string_value(json_object_get(n, "node_id")), id))
            return n;
    }
    cr_assert_fail("node %s is not in the explanation of %s", id,
                   json_string_value(json_object_get(e->root, "order_id")));
    return NULL;
}

static json_t *line_of(const explained *e, const char *id, size_t line)
{
    json_t *l = json_array_get(json_object_get(node_of(e, id), "lines"), line);
    cr_assert_not_null(l, "node %s has no line %zu", id, line);
    return l;
}

static void assert_has(const char *hay, const char *needle, const char *what)
{
    cr_assert(hay && strstr(hay, needle), "%s: expected '%s' in:\n%s", what, needle,
              hay ? hay : "(null)");
}

static void assert_lacks(const char *hay, const char *needle, const char *what)
{
    cr_assert(!strstr(hay, needle), "%s: did not expect '%s' in:\n%s", what, needle, hay);
}

/* The node is excluded for the whole order, the reason holding every needle (NULL-ended). */
static void assert_node_excluded(const explained *e, const char *id, ...)
{
    const char *why = json_string_value(json_object_get(node_of(e, id), "excluded"));
    cr_assert_not_null(why, "node %s should be excluded", id);
    va_list ap;
    va_start(ap, id);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        assert_has(why, needle, id);
    va_end(ap);
}

static void assert_line_excluded(const explained *e, const char *id, size_t line, ...)
{
    const char *why = json_string_value(json_object_get(line_of(e, id, line), "excluded"));
    cr_assert_not_null(why, "node %s line %zu should be excluded", id, line);
    va_list ap;
    va_start(ap, line);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        assert_has(why, needle, id);
    va_end(ap);
}

/* An eligible node: its terms, and the units the chosen plan and the runner-up take there. */
static void assert_eligible(const explained *e, const char *id, double cost, double hours,
                            double zone_max_km, long long chosen, long long runner_up)
{
    json_t *n = node_of(e, id);
    cr_assert(json_is_null(json_object_get(n, "excluded")), "node %s excluded: %s", id,
              json_string_value(json_object_get(n, "excluded")));
    cr_assert_float_eq(json_real_value(json_object_get(n, "cost")), cost, 1e-9, "%s cost", id);
    cr_assert_float_eq(json_real_value(json_object_get(n, "hours")), hours, 1e-9, "%s hours", id);
    json_t *zone = json_object_get(n, "zone_max_km");
    if (zone_max_km < 0)
        cr_assert(json_is_null(zone), "%s: no zone expected", id);
    else
        cr_assert_float_eq(json_real_value(zone), zone_max_km, 1e-9, "%s zone", id);
    long long c = 0, r = 0;
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(n, "lines"), i, l)
    {
        c += json_integer_value(json_object_get(l, "chosen"));
        r += json_integer_value(json_object_get(l, "runner_up"));
    }
    cr_assert_eq(c, chosen, "%s: chosen takes %lld units, expected %lld", id, c, chosen);
    cr_assert_eq(r, runner_up, "%s: runner-up takes %lld units, expected %lld", id, r, runner_up);
}

/* Plan "chosen" or "runner_up": units, objective and its nodes in order (NULL-ended). */
static void assert_plan(const explained *e, const char *which, long long units, double objective,
                        ...)
{
    json_t *p = json_object_get(e->root, which);
    cr_assert(json_is_object(p), "%s: no plan", which);
    cr_assert_eq(json_integer_value(json_object_get(p, "units")), units, "%s units", which);
    cr_assert_float_eq(json_real_value(json_object_get(p, "objective")), objective, 1e-9,
                       "%s objective", which);
    json_t *nodes = json_object_get(p, "nodes");
    va_list ap;
    va_start(ap, objective);
    size_t k = 0;
    for (const char *id; (id = va_arg(ap, const char *)); k++)
        cr_assert_str_eq(json_string_value(json_array_get(nodes, k)), id, "%s node %zu", which, k);
    va_end(ap);
    cr_assert_eq(json_array_size(nodes), k, "%s has %zu nodes", which, json_array_size(nodes));
    cr_assert_eq(json_integer_value(json_object_get(p, "shipments")), (json_int_t)k);
}

static void assert_no_runner_up(const explained *e)
{
    cr_assert(json_is_null(json_object_get(e->root, "runner_up")), "unexpected runner-up");
    assert_has(e->text, "Runner-up: none\n", "text");
}

/* The text line of node id in the node table. */
static char *text_row(const explained *e, const char *id)
{
    const char *p = e->text;
    size_t n = strlen(id);
    while ((p = strstr(p, id))) {
        if ((p == e->text || p[-1] == '\n') && p[n] == ' ') {
            const char *end = strchr(p, '\n');
            return strndup(p, end ? (size_t)(end - p) : strlen(p));
        }
        p += n;
    }
    cr_assert_fail("no row for %s in:\n%s", id, e->text);
    return NULL;
}

static void assert_row_has(const explained *e, const char *id, const char *needle)
{
    char *row = text_row(e, id);
    assert_has(row, needle, id);
    free(row);
}

/* ---- one kind of exclusion per test ----------------------------------------------------- */

Test(explain, zone_beyond_the_last)
{
    explained e = explain("Z-1");
    assert_node_excluded(&e, "DC-FAR", "zone", "3335.8 km", "500 km", NULL);
    assert_eligible(&e, "S-1", 5, 26, 50, 1, 0);
    assert_eligible(&e, "DC-A", 7, 72, 500, 0, 1);
    assert_plan(&e, "chosen", 1, 8.1, "S-1", NULL);
    assert_plan(&e, "runner_up", 1, 14.6, "DC-A", NULL);
    cr_assert_eq(json_integer_value(json_object_get(e.root, "nodes_without_stock")), 4);
    cr_assert_str_eq(json_string_value(json_object_get(e.root, "service")), "standard");
    assert_has(e.text, "Chosen:    S-1 1u; 1 unit, objective 8.1\n", "text");
    assert_has(e.text, "Runner-up: DC-A 1u; 1 unit, objective 14.6 (+6.5)\n", "text");
    assert_row_has(&e, "DC-FAR", "excluded: zone: 3335.8 km is beyond the last zone (500 km)");
    assert_row_has(&e, "S-1", "chosen 1");
    assert_row_has(&e, "DC-A", "runner-up 1");
    assert_lacks(e.text, "Limit:", "text");
    explained_free(&e);
}

Test(explain, service_from_and_its_zone)
{
    explained e = explain("SD-1");
    assert_node_excluded(&e, "DC-A", "`from`", NULL);
    assert_node_excluded(&e, "S-3", "zone", "22.2 km", "(15 km)", NULL);
    assert_eligible(&e, "S-1", 9, 5, 15, 1, 0);
    assert_eligible(&e, "S-2", 10, 5, 15, 0, 1);
    cr_assert_eq(json_integer_value(json_object_get(line_of(&e, "S-2", 0), "atp")), 8);
    assert_plan(&e, "chosen", 1, 10.0, "S-1", NULL);
    assert_plan(&e, "runner_up", 1, 11.0, "S-2", NULL);
    cr_assert_str_eq(json_string_value(json_object_get(e.root, "service")), "same_day");
    assert_has(e.text, "Ship, service same_day", "text");
    assert_has(e.text, "Runner-up: S-2 1u; 1 unit, objective 11 (+1)\n", "text");
    assert_row_has(&e, "DC-A", "excluded: the service's `from` does not list its type");
    assert_row_has(&e, "S-3", "beyond the last zone (15 km)");
    explained_free(&e);
}

Test(explain, ship_false)
{
    explained e = explain("NS-1");
    assert_node_excluded(&e, "DC-NOSHIP", "ship: false", NULL);
    assert_eligible(&e, "DC-A", 7, 72, 500, 2, 0);
    assert_plan(&e, "chosen", 2, 15.0, "DC-A", NULL);
    assert_no_runner_up(&e);
    assert_has(e.text, "Chosen:    DC-A 2u; 2 units, objective 15\n", "text");
    assert_row_has(&e, "DC-NOSHIP", "excluded: ship: false");
    explained_free(&e);
}

Test(explain, capacity_used_up_on_the_local_day)
{
    explained e = explain("CAP-3");
    json_t *cap = node_of(&e, "DC-CAP");
    assert_node_excluded(&e, "DC-CAP", "capacity", "3 of 3", NULL);
    cr_assert_eq(json_integer_value(json_object_get(cap, "capacity_left")), 0);
    assert_eligible(&e, "DC-A", 7, 72, 500, 1, 0);
    assert_plan(&e, "chosen", 1, 14.6, "DC-A", NULL);
    assert_no_runner_up(&e);
    assert_row_has(&e, "DC-CAP", "excluded: capacity: 3 of 3 units used today");
    explained_free(&e);

    /* Two hours later it is the next day in New York: DC-CAP has its 3 units again. */
    e = explain("CAP-4");
    cap = node_of(&e, "DC-CAP");
    cr_assert_eq(json_integer_value(json_object_get(cap, "capacity_left")), 3);
    assert_eligible(&e, "DC-CAP", 7, 72, 500, 1, 0);
    assert_eligible(&e, "DC-A", 7, 72, 500, 0, 1);
    assert_plan(&e, "chosen", 1, 14.5, "DC-CAP", NULL);
    assert_plan(&e, "runner_up", 1, 14.6, "DC-A", NULL);
    assert_has(e.text, "Runner-up: DC-A 1u; 1 unit, objective 14.6 (+0.1)\n", "text");
    explained_free(&e);
}

Test(explain, node_safety_stock)
{
    explained e = explain("SS-1");
    json_t *l = line_of(&e, "S-2", 0);
    cr_assert_eq(json_integer_value(json_object_get(l, "on_hand")), 2);
    cr_assert_eq(json_integer_value(json_object_get(l, "safety_stock")), 2);
    cr_assert_eq(json_integer_value(json_object_get(l, "atp")), 0);
    cr_assert(json_is_null(json_object_get(l, "safety_stock_rule")));
    assert_line_excluded(&e, "S-2", 0, "safety stock 2", NULL);
    assert_node_excluded(&e, "S-2", "safety stock 2", NULL);
    cr_assert_null(strstr(json_string_value(json_object_get(l, "excluded")), "rule"));
    assert_plan(&e, "chosen", 1, 8.1, "S-3", NULL);
    assert_plan(&e, "runner_up", 1, 14.6, "DC-A", NULL);
    assert_row_has(&e, "S-2", "excluded: safety stock 2 leaves nothing to promise");
    explained_free(&e);
}

Test(explain, rule_safety_stock)
{
    explained e = explain("SAFE-1");
    json_t *l = line_of(&e, "S-1", 0);
    cr_assert_eq(json_integer_value(json_object_get(l, "on_hand")), 3);
    cr_assert_eq(json_integer_value(json_object_get(l, "safety_stock")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(l, "safety_stock_rule")),
                     "keep S-1 display stock");
    assert_line_excluded(&e, "S-1", 0, "safety stock 3", "keep S-1 display stock", NULL);
    assert_node_excluded(&e, "S-1", "safety stock 3", "keep S-1 display stock", NULL);
    /* The rule names S-1 only: S-3 keeps its own (none). */
    cr_assert_eq(json_integer_value(json_object_get(line_of(&e, "S-3", 0), "safety_stock")), 0);
    assert_plan(&e, "chosen", 1, 8.1, "S-3", NULL);
    assert_plan(&e, "runner_up", 1, 14.6, "DC-A", NULL);
    assert_row_has(&e, "S-1", "safety stock 3 (rule 'keep S-1 display stock')");
    explained_free(&e);
}

Test(explain, deny_nodes)
{
    explained e = explain("DN-1");
    assert_line_excluded(&e, "S-1", 0, "deny_nodes", "no parcels from S-1 for partners", NULL);
    assert_node_excluded(&e, "S-1", "deny_nodes", "no parcels from S-1 for partners", NULL);
    /* The rule, not the stock: S-1 has 5 to promise. */
    cr_assert_eq(json_integer_value(json_object_get(line_of(&e, "S-1", 0), "atp")), 5);
    assert_eligible(&e, "S-2", 6, 26, 50, 1, 0);
    assert_plan(&e, "chosen", 1, 9.1, "S-2", NULL);
    assert_plan(&e, "runner_up", 1, 14.6, "DC-A", NULL);
    assert_row_has(&e, "S-1", "rule 'no parcels from S-1 for partners' (deny_nodes)");
    explained_free(&e);
}

Test(explain, deny_methods)
{
    explained e = explain("DM-1");
    assert_line_excluded(&e, "S-1", 0, "deny_methods", "marketplace orders never ship from stores",
                         NULL);
    assert_node_excluded(&e, "S-1", "deny_methods", "marketplace orders never ship from stores",
                         NULL);
    cr_assert_str_eq(json_string_value(json_object_get(node_of(&e, "S-1"), "method")),
                     "ship_from_store");
    assert_plan(&e, "chosen", 1, 14.6, "DC-A", NULL);
    assert_no_runner_up(&e);
    assert_row_has(&e, "S-1", "rule 'marketplace orders never ship from stores' (deny_methods)");
    explained_free(&e);
}

Test(explain, allow_node_types)
{
    explained e = explain("HAZ-1");
    assert_line_excluded(&e, "S-1", 0, "allow_node_types", "hazmat ships only from warehouses",
                         NULL);
    assert_node_excluded(&e, "S-1", "allow_node_types", NULL);
    assert_plan(&e, "chosen", 1, 14.6, "DC-A", NULL);
    assert_no_runner_up(&e);
    assert_row_has(&e, "S-1", "rule 'hazmat ships only from warehouses' (allow_node_types)");
    explained_free(&e);
}

/* Two lines, two reasons: the node is out, and the text says why for each line. */
Test(explain, two_reasons_for_one_node)
{
    explained e = explain("MIX-1");
    assert_line_excluded(&e, "S-1", 0, "allow_node_types", "hazmat ships only from warehouses",
                         NULL);
    assert_line_excluded(&e, "S-1", 1, "no stock to promise", "on hand 0", NULL);
    assert_node_excluded(&e, "S-1", "no line", NULL);
    assert_eligible(&e, "DC-A", 7, 72, 500, 2, 0);
    assert_plan(&e, "chosen", 2, 15.0, "DC-A", NULL);
    assert_row_has(&e, "S-1", "1: rule 'hazmat ships only from warehouses' (allow_node_types)");
    assert_row_has(&e, "S-1", "2: no stock to promise (on hand 0, reserved 0)");
    explained_free(&e);
}

Test(explain, pickup_transfer_from)
{
    explained e = explain("PU-1");
    cr_assert_str_eq(json_string_value(json_object_get(e.root, "pickup_store_id")), "S-1");
    assert_node_excluded(&e, "S-3", "pickup.transfer.from", NULL);
    assert_node_excluded(&e, "DC-FAR", "zone", "3335.8 km", "(300 km)", NULL);
    assert_eligible(&e, "DC-A", 3, 72, 300, 2, 0);
    assert_eligible(&e, "S-1", 1, 2, -1, 0, 1);
    cr_assert_str_eq(json_string_value(json_object_get(node_of(&e, "DC-A"), "method")),
                     "click_and_collect");
    /* More units beat a smaller objective. */
    assert_plan(&e, "chosen", 2, 11.0, "DC-A", NULL);
    assert_plan(&e, "runner_up", 1, 1.7, "S-1", NULL);
    assert_has(e.text, "Pickup at S-1", "text");
    assert_has(e.text, "Chosen:    DC-A 2u; 2 units, objective 11\n", "text");
    assert_has(e.text, "Runner-up: S-1 1u; 1 unit, objective 1.7 (-9.3; 1 unit fewer)\n", "text");
    assert_row_has(&e, "S-3", "excluded: pickup.transfer.from does not list its type");
    assert_row_has(&e, "S-1", "store");
    explained_free(&e);
}

Test(explain, no_transfer_block)
{
    explained e = explain_with(NOTRANSFER, "PU-1");
    assert_node_excluded(&e, "DC-A", "no pickup.transfer", NULL);
    assert_node_excluded(&e, "S-3", "no pickup.transfer", NULL);
    assert_node_excluded(&e, "DC-FAR", "no pickup.transfer", NULL);
    assert_eligible(&e, "S-1", 1, 2, -1, 1, 0);
    assert_plan(&e, "chosen", 1, 1.7, "S-1", NULL);
    assert_no_runner_up(&e);
    /* The other rules file is another version. */
    explained with = explain("PU-1");
    cr_assert_str_neq(json_string_value(json_object_get(e.root, "rules_version")),
                      json_string_value(json_object_get(with.root, "rules_version")));
    assert_row_has(&e, "DC-A", "excluded: no pickup.transfer: only the pickup store serves");
    explained_free(&with);
    explained_free(&e);
}

Test(explain, no_stock_to_promise)
{
    explained e = explain("NO-1");
    json_t *l = line_of(&e, "S-1", 0);
    cr_assert_eq(json_integer_value(json_object_get(l, "on_hand")), 1);
    cr_assert_eq(json_integer_value(json_object_get(l, "reserved")), 1);
    assert_line_excluded(&e, "S-1", 0, "no stock to promise", "reserved 1", NULL);
    assert_node_excluded(&e, "S-1", "no stock to promise", NULL);
    assert_plan(&e, "chosen", 1, 14.6, "DC-A", NULL);
    assert_no_runner_up(&e);
    assert_row_has(&e, "S-1", "excluded: no stock to promise (on hand 1, reserved 1)");
    explained_free(&e);
}

Test(explain, max_shipments_limits_the_plan)
{
    explained e = explain("MS-1");
    cr_assert_eq(json_integer_value(json_object_get(e.root, "max_shipments")), 2);
    assert_eligible(&e, "DC-A", 7, 72, 500, 3, 3);
    assert_eligible(&e, "S-3", 5, 26, 50, 2, 0);
    assert_eligible(&e, "S-1", 5, 26, 50, 0, 1);
    assert_plan(&e, "chosen", 5, 24.4, "DC-A", "S-3", NULL);
    assert_plan(&e, "runner_up", 4, 23.9, "DC-A", "S-1", NULL);
    assert_has(e.text, "Chosen:    DC-A 3u + S-3 2u; 5 units, objective 24.4\n", "text");
    assert_has(e.text,
               "Runner-up: DC-A 3u + S-1 1u; 4 units, objective 23.9 (-0.5; 1 unit fewer)\n",
               "text");
    assert_has(e.text, "Limit: max_shipments 2 is reached with units still backordered\n", "text");
    explained_free(&e);
    /* Two shipments that serve the whole order hit no limit. */
    e = explain("MIX-1");
    assert_lacks(e.text, "Limit:", "text");
    explained_free(&e);
}

Test(explain, rejected_orders)
{
    explained e = explain("REJ-1");
    cr_assert_str_eq(json_string_value(json_object_get(e.root, "rejected")), "pickup_not_accepted");
    cr_assert(json_is_null(json_object_get(e.root, "chosen")));
    cr_assert_eq(json_array_size(json_object_get(e.root, "nodes")), 0);
    assert_has(e.text, "Pickup at S-2", "text");
    assert_has(e.text, "Rejected: pickup_not_accepted\n", "text");
    assert_lacks(e.text, "Chosen:", "text");
    explained_free(&e);
    e = explain("REJ-2");
    cr_assert_str_eq(json_string_value(json_object_get(e.root, "rejected")), "unknown_service");
    assert_has(e.text, "Rejected: unknown_service\n", "text");
    explained_free(&e);
}

/* Every order's explanation agrees with the allocation `omo solve` writes for it. */
Test(explain, chosen_plans_are_the_allocations)
{
    run_result r = run_omo("solve --network " NETWORK " --rules " RULES " --events " EVENTS);
    cr_assert_eq(r.code, 0, "%s", r.err);
    int orders = 0;
    for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *a = json_loads(line, 0, NULL);
        cr_assert_not_null(a);
        const char *id = json_string_value(json_object_get(a, "order_id"));
        explained e = explain(id);
        cr_assert_str_eq(json_string_value(json_object_get(e.root, "rules_version")),
                         json_string_value(json_object_get(a, "rules_version")));
        cr_assert_eq(json_integer_value(json_object_get(e.root, "revision")),
                     json_integer_value(json_object_get(a, "revision")));
        json_t *ships = json_object_get(a, "shipments");
        json_t *chosen = json_object_get(e.root, "chosen");
        if (!strcmp(json_string_value(json_object_get(a, "status")), "rejected")) {
            cr_assert(json_is_null(chosen), "%s", id);
        } else {
            cr_assert_float_eq(json_real_value(json_object_get(chosen, "objective")),
                               json_number_value(json_object_get(a, "objective")), 1e-9, "%s", id);
            json_t *nodes = json_object_get(chosen, "nodes");
            cr_assert_eq(json_array_size(nodes), json_array_size(ships), "%s", id);
            long long units = 0;
            size_t s;
            json_t *sh;
            json_array_foreach(ships, s, sh)
            {
                const char *node = json_string_value(json_object_get(sh, "node_id"));
                cr_assert_str_eq(json_string_value(json_array_get(nodes, s)), node, "%s", id);
                size_t k;
                json_t *l;
                long long at = 0;
                json_array_foreach(json_object_get(sh, "lines"), k, l)
                {
                    at += json_integer_value(json_object_get(l, "qty"));
                }
                /* The node's terms and the units the explanation says it gives. */
                json_t *n = node_of(&e, node);
                cr_assert(json_is_null(json_object_get(n, "excluded")), "%s: %s", id, node);
                cr_assert_float_eq(json_real_value(json_object_get(n, "cost")),
                                   json_number_value(json_object_get(sh, "cost")), 1e-9, "%s", id);
                cr_assert_float_eq(json_real_value(json_object_get(n, "hours")),
                                   json_number_value(json_object_get(sh, "hours")), 1e-9, "%s", id);
                long long given = 0;
                json_array_foreach(json_object_get(n, "lines"), k, l)
                {
                    given += json_integer_value(json_object_get(l, "chosen"));
                }
                cr_assert_eq(given, at, "%s at %s: %lld units explained, %lld allocated", id, node,
                             given, at);
                units += at;
            }
            cr_assert_eq(json_integer_value(json_object_get(chosen, "units")), units, "%s", id);
        }
        explained_free(&e);
        json_decref(a);
        orders++;
    }
    cr_assert_eq(orders, 19);
    run_free(&r);
}

Test(explain, unknown_order_and_bad_usage)
{
    run_result r =
        run_omo("explain --network " NETWORK " --rules " RULES " --events " EVENTS " NOPE-1");
    cr_assert_eq(r.code, 1);
    assert_has(r.err, "NOPE-1", "stderr");
    cr_assert_str_eq(r.out, "");
    run_free(&r);
    r = run_omo("explain --network " NETWORK " --events " EVENTS " Z-1");
    cr_assert_eq(r.code, 2);
    assert_has(r.err, "usage", "stderr");
    run_free(&r);
    r = run_omo("explain --network " NETWORK " --rules " FIX "broken_syntax.yaml --events " EVENTS
                " Z-1");
    cr_assert_eq(r.code, 2);
    assert_has(r.err, "error:", "stderr");
    run_free(&r);
}
