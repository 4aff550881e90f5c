/* `omo rules diff`: a change whose effect is computed by hand, totals checked against
 * `omo solve` run on each rule set, the three formats, and the exit codes.
 *
 * The fixtures: stores S-1 and S-2 sit next to the customers (first standard zone), DC-A is
 * 111 km away (second zone). OLD lets stores ship parcels; NEW denies ship_from_store for
 * every standard order. By hand, with hour_cost 0.10:
 *   O-1  2u  OLD S-1 (5 + 1.0 + 2.6 = 8.6)     NEW DC-A (7 + 0.8 + 7.2 = 15.0)
 *   O-2  3u  OLD S-1 (5 + 1.5 + 2.6 = 9.1)     NEW DC-A (7 + 1.2 + 7.2 = 15.4)
 *   O-3  2u  OLD S-2, S-1 is empty (9.6)       NEW DC-A (15.0)
 *   O-4  pickup at S-2, 1u: S-2 itself under both (2 + 0.5 + 0.2 = 2.7)
 *   O-5  1u, then cancelled under both
 *   O-6  10u of SKU-2, only S-2 has 4: OLD partial (S-2 4u, 6 backordered, 10.6),
 *        NEW backordered 10u (0)
 * so four orders change; units move S-1 5 -> 0, S-2 7 -> 1, DC-A 0 -> 7. */
#include "diff.h"
#include "replay.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NETWORK "tests/fixtures/diff_network.yaml"
#define OLD     "tests/fixtures/diff_old.yaml"
#define NEW     "tests/fixtures/diff_new.yaml"
#define BROKEN  "tests/fixtures/diff_broken.yaml"
#define EVENTS  "tests/fixtures/diff_events.jsonl"
#define DIFF    "rules diff --network " NETWORK " --events " EVENTS " "

static void in_source_dir(void)
{
    cr_assert_eq(chdir(OMO_SOURCE_DIR), 0);
}

TestSuite(diff, .init = in_source_dir);

/* ---- helpers --------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

typedef struct run_result {
    int code;
    char *out, *err;
} run_result;

/* Runs the built omo with args (a shell fragment) and collects its exit code and output. */
static run_result run_omo(const char *args)
{
    char outpath[] = "/tmp/omo-diff-out-XXXXXX", errpath[] = "/tmp/omo-diff-err-XXXXXX";
    int ofd = mkstemp(outpath), efd = mkstemp(errpath);
    cr_assert(ofd >= 0 && efd >= 0);
    close(ofd);
    close(efd);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s >%s 2>%s", OMO_BINARY, args, outpath, errpath);
    int status = system(cmd);
    cr_assert(WIFEXITED(status), "omo did not exit normally: %s", args);
    run_result r = {WEXITSTATUS(status), slurp(outpath, NULL), slurp(errpath, NULL)};
    unlink(outpath);
    unlink(errpath);
    return r;
}

static void run_free(run_result *r)
{
    free(r->out);
    free(r->err);
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

typedef struct side_data {
    omo_network *net;
    omo_rules *rules[2];
    omo_diff *diff;
    omo_diff_report rep;
    omo_replay_stats stats[2];
} side_data;

static void build(side_data *d, const char *old_path, const char *new_path)
{
    omo_diag diag = {0};
    d->net = omo_network_load(NETWORK, &diag);
    cr_assert_not_null(d->net);
    d->rules[0] = omo_rules_load(old_path, d->net, &diag);
    d->rules[1] = omo_rules_load(new_path, d->net, &diag);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "diag: %s\n", diag.lines[i]);
    cr_assert(d->rules[0] && d->rules[1]);
    omo_diag_clear(&diag);
    d->diff = omo_diff_create(d->net, d->rules[0], d->rules[1]);
    cr_assert_not_null(d->diff);
    for (int k = 0; k < 2; k++)
        cr_assert_eq(omo_replay_file(EVENTS, d->net, omo_diff_engine(d->diff, (omo_diff_side)k),
                                     NULL, NULL, &d->stats[k]),
                     OMO_REPLAY_OK);
    omo_diff_report_build(d->diff, &d->rep);
}

static void release(side_data *d)
{
    omo_diff_report_clear(&d->rep);
    omo_diff_destroy(d->diff);
    omo_rules_destroy(d->rules[0]);
    omo_rules_destroy(d->rules[1]);
    omo_network_destroy(d->net);
}

/* ---- the comparison, by hand ----------------------------------------------------------- */

Test(diff, store_ban_moves_store_orders_to_the_warehouse)
{
    side_data d = {0};
    build(&d, OLD, NEW);
    const omo_diff_report *rep = &d.rep;
    cr_assert_eq(d.stats[0].lines, 12);
    cr_assert_eq(d.stats[0].bad, 1);

    cr_assert_eq(rep->changed_orders, 4);
    cr_assert_eq(rep->nexamples, 4);
    static const char *const ids[] = {"O-1", "O-2", "O-3", "O-6"};
    static const char *const plans[4][2] = {{"S-1 2u", "DC-A 2u"},
                                            {"S-1 3u", "DC-A 3u"},
                                            {"S-2 2u", "DC-A 2u"},
                                            {"S-2 4u, 6u backordered", "backordered 10u"}};
    static const int64_t objectives[4][2] = {{8600000000LL, 15000000000LL},
                                             {9100000000LL, 15400000000LL},
                                             {9600000000LL, 15000000000LL},
                                             {10600000000LL, 0}};
    for (size_t i = 0; i < 4; i++) {
        const omo_diff_example *ex = &rep->examples[i];
        cr_assert_str_eq(ex->order_id, ids[i]);
        cr_assert_str_eq(ex->plan[0], plans[i][0]);
        cr_assert_str_eq(ex->plan[1], plans[i][1]);
        cr_assert_eq(ex->objective[0], objectives[i][0], "%s old objective %lld", ids[i],
                     (long long)ex->objective[0]);
        cr_assert_eq(ex->objective[1], objectives[i][1], "%s new objective %lld", ids[i],
                     (long long)ex->objective[1]);
    }
    cr_assert_eq(rep->examples[3].status[0], OMO_ALLOC_PARTIAL);
    cr_assert_eq(rep->examples[3].status[1], OMO_ALLOC_BACKORDERED);

    cr_assert_eq(rep->nmoves, 3);
    static const char *const nodes[] = {"DC-A", "S-2", "S-1"};
    static const int64_t units[3][2] = {{0, 7}, {7, 1}, {5, 0}};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(d.net->nodes[rep->moves[i].node].id, nodes[i]);
        cr_assert_eq(rep->moves[i].units[0], units[i][0]);
        cr_assert_eq(rep->moves[i].units[1], units[i][1]);
    }

    const omo_diff_totals *o = &rep->side[OMO_DIFF_OLD], *w = &rep->side[OMO_DIFF_NEW];
    cr_assert_eq(o->orders, 6);
    cr_assert_eq(o->by_status[OMO_ALLOC_ALLOCATED], 4);
    cr_assert_eq(o->by_status[OMO_ALLOC_PARTIAL], 1);
    cr_assert_eq(o->by_status[OMO_ALLOC_CANCELLED], 1);
    cr_assert_eq(o->objective, 40600000000LL);
    cr_assert_eq(o->shipping_cost, 24 * OMO_MICRO);
    cr_assert_eq(o->served, 5);
    cr_assert_eq(o->shipments, 5);
    cr_assert_eq(o->by_method[OMO_METHOD_WAREHOUSE], 0);
    cr_assert_eq(o->by_method[OMO_METHOD_SHIP_FROM_STORE], 4);
    cr_assert_eq(o->by_method[OMO_METHOD_CLICK_AND_COLLECT], 1);
    cr_assert_eq(o->units_allocated, 12);
    cr_assert_eq(o->units_backordered, 6);
    cr_assert_eq(o->hours_mean, 21200); /* (4 x 26 + 2) / 5 */
    cr_assert_eq(o->hours_p95, 26000);

    cr_assert_eq(w->orders, 6);
    cr_assert_eq(w->by_status[OMO_ALLOC_ALLOCATED], 4);
    cr_assert_eq(w->by_status[OMO_ALLOC_BACKORDERED], 1);
    cr_assert_eq(w->by_status[OMO_ALLOC_CANCELLED], 1);
    cr_assert_eq(w->objective, 48100000000LL);
    cr_assert_eq(w->shipping_cost, 23 * OMO_MICRO);
    cr_assert_eq(w->served, 4);
    cr_assert_eq(w->by_method[OMO_METHOD_WAREHOUSE], 3);
    cr_assert_eq(w->by_method[OMO_METHOD_SHIP_FROM_STORE], 0);
    cr_assert_eq(w->by_method[OMO_METHOD_CLICK_AND_COLLECT], 1);
    cr_assert_eq(w->units_allocated, 8);
    cr_assert_eq(w->units_backordered, 10);
    cr_assert_eq(w->hours_mean, 54500); /* (3 x 72 + 2) / 4 */
    cr_assert_eq(w->hours_p95, 72000);

    /* 2, 26 and 72 hours in bins of 8 hours. */
    cr_assert_eq(rep->hist_width, 8000);
    cr_assert_eq(rep->hist_bins, 10);
    cr_assert_eq(rep->hist[0][0], 1);
    cr_assert_eq(rep->hist[0][3], 4);
    cr_assert_eq(rep->hist[1][0], 1);
    cr_assert_eq(rep->hist[1][9], 3);
    release(&d);
}

Test(diff, same_rules_change_nothing)
{
    side_data d = {0};
    build(&d, OLD, OLD);
    cr_assert_eq(d.rep.changed_orders, 0);
    cr_assert_eq(d.rep.nexamples, 0);
    cr_assert_eq(d.rep.nmoves, 0);
    cr_assert_eq(memcmp(&d.rep.side[0], &d.rep.side[1], sizeof d.rep.side[0]), 0);
    char *text = omo_diff_render(d.diff, &d.rep, NULL, OMO_DIFF_TEXT, NULL);
    cr_assert(strstr(text, "0 of 6 orders decided differently"), "%s", text);
    cr_assert(strstr(text, "none: every node allocates the same units"), "%s", text);
    free(text);
    release(&d);
}

/* ---- against omo solve ----------------------------------------------------------------- */

typedef struct solve_totals {
    long orders, served, shipments, by_method[OMO_METHODS], by_status[5];
    long units, backordered;
    double objective, shipping_cost;
} solve_totals;

static long line_units(json_t *lines)
{
    long n = 0;
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line) n += (long)json_integer_value(json_object_get(line, "qty"));
    return n;
}

/* Runs `omo solve` on rules and sums the final allocation of every order. */
static void solve_totals_of(const char *rules, solve_totals *t)
{
    char args[1024];
    snprintf(args, sizeof args, "solve --network %s --rules %s --events %s", NETWORK, rules,
             EVENTS);
    run_result r = run_omo(args);
    cr_assert_eq(r.code, 0, "omo solve failed: %s", r.err);

    json_t *latest = json_object(); /* order_id -> its latest allocation */
    for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *a = json_loads(line, 0, &jerr);
        cr_assert_not_null(a, "omo solve wrote a line that is not JSON: %s", line);
        const char *id = json_string_value(json_object_get(a, "order_id"));
        json_t *prev = json_object_get(latest, id);
        cr_assert(!prev || json_integer_value(json_object_get(prev, "revision")) <
                               json_integer_value(json_object_get(a, "revision")));
        json_object_set_new(latest, id, a);
    }
    memset(t, 0, sizeof *t);
    const char *id;
    json_t *a;
    json_object_foreach(latest, id, a)
    {
        t->orders++;
        const char *status = json_string_value(json_object_get(a, "status"));
        for (int s = 0; s < 5; s++)
            if (!strcmp(status, omo_alloc_status_name((omo_alloc_status)s)))
                t->by_status[s]++;
        t->objective += json_number_value(json_object_get(a, "objective"));
        json_t *ships = json_object_get(a, "shipments");
        if (json_array_size(ships))
            t->served++;
        size_t i;
        json_t *sh;
        json_array_foreach(ships, i, sh)
        {
            t->shipments++;
            const char *m = json_string_value(json_object_get(sh, "method"));
            for (int k = 0; k < OMO_METHODS; k++)
                if (!strcmp(m, omo_method_name((omo_method)k)))
                    t->by_method[k]++;
            t->shipping_cost += json_number_value(json_object_get(sh, "cost"));
            t->units += line_units(json_object_get(sh, "lines"));
        }
        t->backordered += line_units(json_object_get(a, "backordered"));
    }
    json_decref(latest);
    run_free(&r);
}

static void assert_side_matches(json_t *side, const solve_totals *t, const char *name)
{
    cr_assert_eq(json_integer_value(json_object_get(side, "orders")), t->orders, "%s", name);
    cr_assert_eq(json_integer_value(json_object_get(side, "orders_with_shipments")), t->served,
                 "%s", name);
    cr_assert_eq(json_integer_value(json_object_get(side, "shipments")), t->shipments, "%s", name);
    cr_assert_eq(json_integer_value(json_object_get(side, "units_allocated")), t->units, "%s",
                 name);
    cr_assert_eq(json_integer_value(json_object_get(side, "backordered_units")), t->backordered,
                 "%s", name);
    cr_assert(fabs(json_number_value(json_object_get(side, "objective")) - t->objective) < 1e-6,
              "%s objective: diff %f, solve %f", name,
              json_number_value(json_object_get(side, "objective")), t->objective);
    cr_assert(fabs(json_number_value(json_object_get(side, "shipping_cost")) - t->shipping_cost) <
                  1e-6,
              "%s shipping cost", name);
    json_t *methods = json_object_get(side, "methods");
    for (int k = 0; k < OMO_METHODS; k++)
        cr_assert_eq(json_integer_value(json_object_get(
                         json_object_get(methods, omo_method_name((omo_method)k)), "shipments")),
                     t->by_method[k], "%s %s", name, omo_method_name((omo_method)k));
    json_t *by_status = json_object_get(side, "by_status");
    for (int s = 0; s < 5; s++)
        cr_assert_eq(json_integer_value(
                         json_object_get(by_status, omo_alloc_status_name((omo_alloc_status)s))),
                     t->by_status[s], "%s %s", name, omo_alloc_status_name((omo_alloc_status)s));
}

static void check_against_solve(const char *old_rules, const char *new_rules)
{
    char args[1024];
    snprintf(args, sizeof args, DIFF "%s %s --format json", old_rules, new_rules);
    run_result r = run_omo(args);
    cr_assert_eq(r.code, 0, "omo rules diff failed: %s", r.err);
    json_error_t jerr;
    json_t *doc = json_loads(r.out, 0, &jerr);
    cr_assert_not_null(doc, "not JSON (%s): %s", jerr.text, r.out);

    solve_totals t;
    solve_totals_of(old_rules, &t);
    cr_assert_gt(t.orders, 0);
    assert_side_matches(json_object_get(doc, "old"), &t, "old");
    solve_totals_of(new_rules, &t);
    assert_side_matches(json_object_get(doc, "new"), &t, "new");
    json_decref(doc);
    run_free(&r);
}

Test(diff, totals_equal_omo_solve_on_each_side)
{
    check_against_solve(OLD, NEW);
    check_against_solve(NEW, OLD);
}

/* ---- formats --------------------------------------------------------------------------- */

Test(diff, json_parses_and_holds_the_comparison)
{
    run_result r = run_omo(DIFF OLD " " NEW " --format json");
    cr_assert_eq(r.code, 0, "%s", r.err);
    json_error_t jerr;
    json_t *doc = json_loads(r.out, 0, &jerr);
    cr_assert_not_null(doc, "not JSON (%s): %s", jerr.text, r.out);
    cr_assert_eq(json_integer_value(json_object_get(doc, "changed_orders")), 4);
    cr_assert_eq(json_integer_value(json_object_get(doc, "events")), 12);
    cr_assert_eq(json_integer_value(json_object_get(doc, "skipped")), 1);
    json_t *old = json_object_get(doc, "old"), *new = json_object_get(doc, "new");
    cr_assert_str_eq(json_string_value(json_object_get(old, "file")), OLD);
    cr_assert_eq(strlen(json_string_value(json_object_get(new, "rules_version"))), 16);
    cr_assert_str_neq(json_string_value(json_object_get(old, "rules_version")),
                      json_string_value(json_object_get(new, "rules_version")));
    cr_assert_float_eq(json_number_value(json_object_get(old, "objective")), 40.6, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(new, "objective")), 48.1, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(new, "promised_hours_mean")), 54.5, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(old, "promised_hours_p95")), 26, 1e-9);
    cr_assert_float_eq(json_number_value(json_object_get(
                           json_object_get(json_object_get(new, "methods"), "warehouse"), "share")),
                       0.75, 1e-9);

    json_t *ex = json_object_get(doc, "examples");
    cr_assert_eq(json_array_size(ex), 4);
    json_t *first = json_array_get(ex, 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "order_id")), "O-1");
    json_t *first_new = json_object_get(first, "new");
    cr_assert_str_eq(json_string_value(json_object_get(first_new, "plan")), "DC-A 2u");
    json_t *ship = json_array_get(json_object_get(first_new, "shipments"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(ship, "node_id")), "DC-A");
    cr_assert_str_eq(json_string_value(json_object_get(ship, "method")), "warehouse");
    cr_assert_eq(json_integer_value(json_object_get(ship, "units")), 2);
    cr_assert_float_eq(json_number_value(json_object_get(ship, "hours")), 72, 1e-9);

    json_t *nodes = json_object_get(doc, "nodes");
    cr_assert_eq(json_array_size(nodes), 3);
    json_t *top = json_array_get(nodes, 0);
    cr_assert_str_eq(json_string_value(json_object_get(top, "node_id")), "DC-A");
    cr_assert_eq(json_integer_value(json_object_get(top, "delta")), 7);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(nodes, 1), "delta")), -6);
    json_decref(doc);
    run_free(&r);
}

Test(diff, text_is_a_side_by_side_table_within_100_columns)
{
    run_result r = run_omo(DIFF OLD " " NEW);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, "4 of 6 orders decided differently (66.7%)"), "%s", r.out);
    cr_assert(strstr(r.out, "OLD"), "%s", r.out);
    /* Rows carry OLD, NEW and the change. */
    const char *at = strstr(r.out, "\ntotal objective");
    cr_assert_not_null(at, "%s", r.out);
    char row[128];
    snprintf(row, sizeof row, "%.*s", (int)strcspn(at + 1, "\n"), at + 1);
    const char *o = strstr(row, " 40.60 "), *n = strstr(row, " 48.10 "),
               *c = strstr(row, " +7.50 (+18.5%)");
    cr_assert(o && n && c && o < n && n < c, "OLD | NEW | change expected: '%s'", row);
    cr_assert(strstr(r.out, "S-2 4u, 6u backordered"));
    size_t width = 0, col = 0;
    for (const char *p = r.out; *p; p++) {
        col = *p == '\n' ? 0 : col + 1;
        if (col > width)
            width = col;
    }
    cr_assert_leq(width, 100, "a line is %zu columns wide:\n%s", width, r.out);
    /* Bad lines are reported once, though both sides read them. */
    cr_assert_eq(occurrences(r.err, EVENTS ":7: error:"), 1, "%s", r.err);
    run_free(&r);
}

/* A temporary directory holding a copy of NEW under a name that needs escaping. */
static char *odd_rules_copy(char *dir, const char **name)
{
    cr_assert_not_null(mkdtemp(dir));
    static const char odd[] = "new <rules> & \"x\".yaml";
    char *path = malloc(strlen(dir) + sizeof odd + 2);
    sprintf(path, "%s/%s", dir, odd);
    size_t len;
    char *text = slurp(NEW, &len);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    free(text);
    *name = odd;
    return path;
}

static void remove_dir(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(diff, html_is_one_page_with_charts_and_escaped_names)
{
    char dir[] = "/tmp/omo-diff-html-XXXXXX";
    const char *odd;
    char *new_path = odd_rules_copy(dir, &odd);
    char args[2048], out_path[512];
    snprintf(out_path, sizeof out_path, "%s/page.html", dir);
    snprintf(args, sizeof args, DIFF OLD " '%s' --format html --out '%s'", new_path, out_path);
    run_result r = run_omo(args);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert_str_eq(r.out, "", "--out must leave stdout empty");
    char *html = slurp(out_path, NULL);

    cr_assert(!strncmp(html, "<!DOCTYPE html>", 15));
    cr_assert(strstr(html, "</html>"));
    cr_assert_geq(occurrences(html, "<svg"), 3, "method mix, histogram and moved nodes");
    cr_assert(strstr(html, "<style>"));
    /* Self-contained: nothing fetched, nothing scripted. */
    cr_assert_null(strstr(html, "http://"));
    cr_assert_null(strstr(html, "https://"));
    cr_assert_null(strstr(html, "<script"));
    cr_assert_null(strstr(html, "<link"));
    cr_assert_null(strstr(html, "src="));
    /* The odd file name appears only escaped. */
    cr_assert(strstr(html, "new &lt;rules&gt; &amp; &quot;x&quot;.yaml"), "escaped name missing");
    cr_assert_null(strstr(html, "<rules>"));
    cr_assert_null(strstr(html, odd));
    /* Header and content. */
    cr_assert(strstr(html, "12 events (1 skipped)"));
    side_data d = {0};
    build(&d, OLD, NEW);
    cr_assert(strstr(html, d.rules[0]->version_hash));
    cr_assert(strstr(html, d.rules[1]->version_hash));
    release(&d);
    cr_assert(strstr(html, ">DC-A<"));
    cr_assert(strstr(html, "+18.5%"), "objective change tile");
    cr_assert(strstr(html, "S-2 4u, 6u backordered"));
    free(html);
    free(new_path);
    run_free(&r);
    remove_dir(dir);
}

Test(diff, html_renders_in_a_browser)
{
    const char *chromium = "/usr/bin/chromium";
    if (access(chromium, X_OK) != 0)
        cr_skip_test("%s is not installed: the page is not rendered", chromium);
    cr_assert_eq(mkdir("tests/artifacts", 0755) == 0 || access("tests/artifacts", W_OK) == 0, 1);
    const char *html = "tests/artifacts/rules_diff.html", *png = "tests/artifacts/rules_diff.png";
    unlink(png);
    run_result r = run_omo(DIFF OLD " " NEW " --format html --out "
                                    "tests/artifacts/rules_diff.html");
    cr_assert_eq(r.code, 0, "%s", r.err);
    run_free(&r);

    char profile[] = "/tmp/omo-diff-chromium-XXXXXX", cmd[2048];
    cr_assert_not_null(mkdtemp(profile));
    snprintf(cmd, sizeof cmd,
             "%s --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
             "--disable-background-networking --disable-component-update --disable-sync "
             "--user-data-dir=%s --screenshot=%s/%s --window-size=1200,1600 file://%s/%s "
             ">/dev/null 2>&1",
             chromium, profile, OMO_SOURCE_DIR, png, OMO_SOURCE_DIR, html);
    int status = system(cmd);
    remove_dir(profile);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "chromium failed: %s", cmd);
    size_t len;
    char *img = slurp(png, &len);
    cr_assert(len > 20000, "the screenshot is only %zu bytes", len);
    cr_assert(!memcmp(img, "\x89PNG\r\n\x1a\n", 8), "not a PNG");
    free(img);
}

/* ---- exit codes ------------------------------------------------------------------------ */

Test(diff, bad_usage_exits_2)
{
    static const char *const cases[] = {
        "rules diff",
        "rules diff --network " NETWORK " " OLD " " NEW,
        "rules diff --events " EVENTS " " OLD " " NEW,
        DIFF OLD,
        DIFF OLD " " NEW " " NEW,
        DIFF OLD " " NEW " --format pdf",
        DIFF OLD " " NEW " --colour",
        DIFF OLD " " NEW " --format",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        run_result r = run_omo(cases[i]);
        cr_assert_eq(r.code, 2, "'%s' exited %d", cases[i], r.code);
        cr_assert(strstr(r.err, "usage: omo rules"), "'%s': %s", cases[i], r.err);
        cr_assert_str_eq(r.out, "");
        run_free(&r);
    }
}

Test(diff, broken_rules_exit_2_with_every_error_line)
{
    run_result r = run_omo(DIFF OLD " " BROKEN);
    cr_assert_eq(r.code, 2);
    cr_assert_str_eq(r.out, "");
    cr_assert(strstr(r.err, BROKEN ":3:1: error: unknown key 'max_shipment'"), "%s", r.err);
    cr_assert(strstr(r.err, BROKEN ":10:18: error: unknown node 'S-9'"), "%s", r.err);
    run_free(&r);

    /* Errors of both files, OLD's first. */
    r = run_omo(DIFF BROKEN " " BROKEN);
    cr_assert_eq(r.code, 2);
    cr_assert_eq(occurrences(r.err, BROKEN ":10:18: error:"), 2, "%s", r.err);
    run_free(&r);
}

Test(diff, missing_inputs_and_unwritable_output)
{
    run_result r =
        run_omo("rules diff --network " NETWORK " --events /nonexistent/e.jsonl " OLD " " NEW);
    cr_assert_eq(r.code, 2);
    cr_assert(strstr(r.err, "/nonexistent/e.jsonl: error: cannot open"), "%s", r.err);
    run_free(&r);

    r = run_omo("rules diff --network /nonexistent/n.yaml --events " EVENTS " " OLD " " NEW);
    cr_assert_eq(r.code, 2);
    cr_assert(strstr(r.err, "/nonexistent/n.yaml"), "%s", r.err);
    run_free(&r);

    r = run_omo(DIFF OLD " " NEW " --out /nonexistent/report.txt");
    cr_assert_eq(r.code, 1);
    cr_assert(strstr(r.err, "/nonexistent/report.txt: error: cannot write"), "%s", r.err);
    run_free(&r);
}

Test(diff, rules_check_still_works)
{
    run_result r = run_omo("rules check " OLD " --network " NETWORK);
    cr_assert_eq(r.code, 0, "%s", r.err);
    cr_assert(strstr(r.out, OLD ": ok"), "%s", r.out);
    run_free(&r);
    r = run_omo("rules frobnicate");
    cr_assert_eq(r.code, 2);
    cr_assert(strstr(r.err, "omo rules diff --network"), "usage lists diff: %s", r.err);
    run_free(&r);
}
