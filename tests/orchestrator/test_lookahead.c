/* Look-ahead: the forecast and its checks, the LP's duals on networks small enough to price by
 * hand, the per-order step against a brute force of the augmented objective, and `omo solve`
 * with weight 0 against no block. */
#include "lookahead.h"
#include "rules.h"
#include "solver.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FIX "tests/fixtures/"

static void in_source_dir(void)
{
    cr_assert_eq(chdir(OMO_SOURCE_DIR), 0);
}

TestSuite(lookahead, .init = in_source_dir);

static omo_network *load_network(const char *path)
{
    omo_diag diag = {0};
    omo_network *net = omo_network_load(path, &diag);
    omo_diag_print(&diag, stderr);
    cr_assert_not_null(net);
    omo_diag_clear(&diag);
    return net;
}

static omo_rules *load_rules(const char *path, const omo_network *net)
{
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_load(path, net, &diag);
    omo_diag_print(&diag, stderr);
    cr_assert_not_null(rules, "%s does not load", path);
    omo_diag_clear(&diag);
    return rules;
}

static void expect_errors(const char *path, size_t count, const char *const *lines)
{
    omo_network *net = load_network(FIX "lookahead_network.yaml");
    omo_diag diag = {0};
    omo_rules *rules = omo_rules_load(path, net, &diag);
    for (size_t i = 0; i < diag.count; i++)
        fprintf(stderr, "diag: %s\n", diag.lines[i]);
    cr_assert_null(rules, "%s loaded although it is broken", path);
    cr_assert_eq(diag.count, count, "expected %zu error lines, got %zu", count, diag.count);
    for (size_t i = 0; i < count; i++)
        cr_assert_str_eq(diag.lines[i], lines[i]);
    omo_diag_clear(&diag);
    omo_network_destroy(net);
}

Test(lookahead, the_block_loads_with_its_forecast)
{
    omo_network *net = load_network(FIX "lookahead_network.yaml");
    omo_rules *rules = load_rules(FIX "lookahead_rules.yaml", net);
    const omo_lookahead *la = rules->lookahead;
    cr_assert_not_null(la);
    cr_assert_str_eq(la->forecast, FIX "lookahead_forecast.csv");
    cr_assert_float_eq(la->horizon_hours, 24.0, 1e-12);
    cr_assert_eq(la->refresh_events, 3);
    cr_assert_float_eq(la->weight, 0.8, 1e-12);
    cr_assert_eq(la->horizon_end_ms, 0);
    /* SKUs sorted, points grouped by SKU in file order. */
    cr_assert_eq(la->nskus, 2);
    cr_assert_str_eq(la->skus[0].sku, "SKU-A");
    cr_assert_eq(la->skus[0].n, 2);
    cr_assert_str_eq(la->skus[1].sku, "SKU-H");
    cr_assert_float_eq(la->points[0].units_per_day, 1.5, 1e-12);
    cr_assert_float_eq(la->points[1].lon, -80.0, 1e-12);
    omo_rules_destroy(rules);
    omo_network_destroy(net);
}

Test(lookahead, broken_blocks_and_forecasts_name_file_line_and_column)
{
    const char *block[] = {
        FIX "broken_lookahead_block.yaml:12:3: error: unknown key 'refresh' (valid keys: "
            "forecast, horizon_hours, horizon_end, refresh_events, weight)",
        FIX "broken_lookahead_block.yaml:13:11: error: weight must not be negative",
        FIX "broken_lookahead_block.yaml:14:18: error: horizon_hours must be greater than 0",
        FIX "broken_lookahead_block.yaml:15:16: error: horizon_end must be an RFC 3339 time like "
            "2026-11-30T00:00:00Z",
    };
    expect_errors(FIX "broken_lookahead_block.yaml", 4, block);
    const char *missing[] = {
        FIX "broken_lookahead_missing.yaml:11:13: error: cannot read the forecast " FIX
            "no_such_forecast.csv: No such file or directory",
    };
    expect_errors(FIX "broken_lookahead_missing.yaml", 1, missing);
    const char *csv[] = {
        FIX "broken_forecast.csv:2:1: error: invalid sku 'SKU A': 1 to 64 characters of A-Z a-z "
            "0-9 _ . - expected",
        FIX "broken_forecast.csv:3:7: error: lat 91 is out of range (-90 to 90)",
        FIX "broken_forecast.csv:4:12: error: expected a number for lon, got '0x10'",
        FIX "broken_forecast.csv:5:1: error: expected 4 fields (sku,lat,lon,units_per_day), got 3",
        FIX "broken_forecast.csv:6:18: error: units_per_day must not be negative, got -2",
    };
    expect_errors(FIX "broken_lookahead_csv.yaml", 5, csv);
    const char *header[] = {
        FIX "broken_forecast_header.csv:1:1: error: the forecast's header must be "
            "sku,lat,lon,units_per_day",
    };
    expect_errors(FIX "broken_lookahead_header.yaml", 1, header);
}

/* ---- the LP's duals, by hand ---------------------------------------------------------- */

/* The network of lookahead_network.yaml: W (warehouse, lon -77), S-A (store, lon -74) and
 * S-B (store, lon -80), all at lat 40; no handling, pick or hour costs, so a unit costs its
 * zone: 4.00 within 50 km, 6.50 within 500 km, 9.00 within 5000 km. W is about 255 km from
 * either store; the stores about 510 km apart. */
typedef struct lp_case {
    omo_network *net;
    omo_rules *rules;
    omo_price_lp *lp;
    int64_t *atp, *price;
    size_t nn, nf;
    int w, a, b;
} lp_case;

static void lp_open(lp_case *c, const char *rules)
{
    c->net = load_network(FIX "lookahead_network.yaml");
    c->rules = load_rules(rules, c->net);
    c->lp = omo_price_lp_create(c->net, c->rules);
    c->nn = c->net->nnodes;
    c->nf = c->rules->lookahead->nskus;
    c->atp = calloc(c->nn * c->nf, sizeof(int64_t));
    c->price = calloc(c->nn * c->nf, sizeof(int64_t));
    c->w = omo_network_find(c->net, "W");
    c->a = omo_network_find(c->net, "S-A");
    c->b = omo_network_find(c->net, "S-B");
}

static void lp_close(lp_case *c)
{
    free(c->atp);
    free(c->price);
    omo_price_lp_destroy(c->lp);
    omo_rules_destroy(c->rules);
    omo_network_destroy(c->net);
}

#define AT(arr, f, n) (arr)[(size_t)(f)*c.nn + (size_t)(n)]

Test(lookahead, duals_of_a_tiny_network_are_the_hand_computed_prices)
{
    lp_case c;
    lp_open(&c, FIX "lookahead_rules.yaml");
    /* SKU-A: demand 1.5 a day at each store's city; one unit in each store, plenty at W.
     * Each store's unit serves its own city at 4.00 and W the rest at 6.50, so W has room
     * (its price is 0), each city's marginal unit costs 6.50, and a store unit saves
     * 6.50 - 4.00 = 2.50. SKU-H (hazmat: warehouses only) has no arc from a store: 0. */
    AT(c.atp, 0, c.w) = 10;
    AT(c.atp, 0, c.a) = 1;
    AT(c.atp, 0, c.b) = 1;
    AT(c.atp, 1, c.w) = 10;
    AT(c.atp, 1, c.a) = 3;
    for (int joint = 0; joint < 2; joint++) {
        omo_price_lp_solve(c.lp, c.atp, joint, c.price);
        cr_assert_eq(AT(c.price, 0, c.a), 2500000, "joint %d: %lld", joint,
                     (long long)AT(c.price, 0, c.a));
        cr_assert_eq(AT(c.price, 0, c.b), 2500000);
        cr_assert_eq(AT(c.price, 0, c.w), 0);
        cr_assert_eq(AT(c.price, 1, c.a), 0);
        cr_assert_eq(AT(c.price, 1, c.w), 0);
    }
    /* Ample store stock: each city needs 1.5 and its store has 5: nothing is scarce. */
    AT(c.atp, 0, c.a) = 5;
    AT(c.atp, 0, c.b) = 5;
    omo_price_lp_solve(c.lp, c.atp, false, c.price);
    cr_assert_eq(AT(c.price, 0, c.a), 0);
    cr_assert_eq(AT(c.price, 0, c.b), 0);
    /* No warehouse stock: each store serves its own city, each city is left 0.5 short at the
     * unserved cost U = 2 x 9.00 + 1 = 19.00 (the dearest one-unit shipment, twice, plus one),
     * which prices each city; a store unit saves U - 4.00 = 15.00. (The other store's unit
     * at 9.00 would cost 9.00 + 15.00 > U: the reduced costs hold.) */
    AT(c.atp, 0, c.w) = 0;
    AT(c.atp, 0, c.a) = 1;
    AT(c.atp, 0, c.b) = 1;
    omo_price_lp_solve(c.lp, c.atp, false, c.price);
    cr_assert_eq(AT(c.price, 0, c.a), 15000000, "%lld", (long long)AT(c.price, 0, c.a));
    cr_assert_eq(AT(c.price, 0, c.b), 15000000, "%lld", (long long)AT(c.price, 0, c.b));
    lp_close(&c);
}

Test(lookahead, the_horizon_scales_the_demand)
{
    lp_case c;
    lp_open(&c, FIX "lookahead_rules_short.yaml");
    /* horizon_hours 12: each city expects 0.75 units; its store's one unit covers them. */
    AT(c.atp, 0, c.w) = 10;
    AT(c.atp, 0, c.a) = 1;
    AT(c.atp, 0, c.b) = 1;
    omo_price_lp_solve(c.lp, c.atp, false, c.price);
    cr_assert_eq(AT(c.price, 0, c.a), 0);
    cr_assert_eq(AT(c.price, 0, c.b), 0);
    /* Without W, each city still has its store's unit for its 0.75: no price. */
    /* 48 hours (as horizon_end may leave): 3 units per city, W serves what the store cannot at
     * 6.50, so the store's unit is worth 2.50 again. */
    omo_price_lp_set_hours(c.lp, 48);
    omo_price_lp_solve(c.lp, c.atp, false, c.price);
    cr_assert_eq(AT(c.price, 0, c.a), 2500000, "%lld", (long long)AT(c.price, 0, c.a));
    omo_price_lp_set_hours(c.lp, 12);
    AT(c.atp, 0, c.w) = 0;
    omo_price_lp_solve(c.lp, c.atp, false, c.price);
    cr_assert_eq(AT(c.price, 0, c.a), 0);
    lp_close(&c);
}

/* ---- the per-order step: exact for the augmented objective ------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int64_t range(rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next(r) % (uint64_t)(hi - lo + 1));
}

#define BN 4 /* candidates */
#define BL 3 /* lines */

typedef struct bf {
    const omo_problem *p;
    int64_t take[BN][BL];
    bool found;
    int64_t units, obj;
    int nships;
    int nodes[BN];
} bf;

/* The augmented key of the plan in b->take, when feasible: units, objective + prices. */
static void bf_offer(bf *b)
{
    const omo_problem *p = b->p;
    int64_t units = 0, obj = 0, maxh = 0, priced = 0;
    int nships = 0, nodes[BN];
    for (int c = 0; c < p->ncands; c++) {
        const omo_cand *cd = &p->cands[c];
        int64_t u = 0, g[BL] = {0};
        for (int l = 0; l < p->nlines; l++) {
            u += b->take[c][l];
            g[p->group[l]] += b->take[c][l];
            if (b->take[c][l] && !cd->ok[l])
                return;
            priced += b->take[c][l] * (cd->price ? cd->price[p->group[l]] : 0);
        }
        for (int k = 0; k < p->ngroups; k++)
            if (g[k] > cd->atp[k])
                return;
        if (u > cd->capacity)
            return;
        if (!u)
            continue;
        obj += cd->fixed * 1000 + u * cd->pick * 1000;
        maxh = cd->hours > maxh ? cd->hours : maxh;
        nodes[nships++] = cd->node;
        units += u;
    }
    if (nships > p->max_shipments || (p->partial_deny && units && units < 0))
        return;
    if (nships)
        obj += p->hour_cost * maxh + p->split_penalty * 1000 * (nships - 1);
    obj += priced * 1000;
    /* node ids ascending */
    for (int i = 1; i < nships; i++)
        for (int j = i; j > 0 && nodes[j] < nodes[j - 1]; j--) {
            int t = nodes[j];
            nodes[j] = nodes[j - 1];
            nodes[j - 1] = t;
        }
    bool better = !b->found || units > b->units ||
                  (units == b->units && (obj < b->obj || (obj == b->obj && nships < b->nships)));
    if (!better && b->found && units == b->units && obj == b->obj && nships == b->nships) {
        for (int i = 0; i < nships; i++)
            if (nodes[i] != b->nodes[i]) {
                better = nodes[i] < b->nodes[i];
                break;
            }
    }
    if (better) {
        b->found = true;
        b->units = units;
        b->obj = obj;
        b->nships = nships;
        memcpy(b->nodes, nodes, sizeof nodes);
    }
}

/* Every plan: each line's units spread over the candidates (split) or from one (unsplit),
 * any number of units from 0 to the line's quantity. */
static void bf_line(bf *b, int l)
{
    const omo_problem *p = b->p;
    if (l == p->nlines) {
        bf_offer(b);
        return;
    }
    if (!p->split_lines) {
        bf_line(b, l + 1); /* none of it */
        for (int c = 0; c < p->ncands; c++)
            for (int64_t u = 1; u <= p->qty[l]; u++) {
                b->take[c][l] = u;
                bf_line(b, l + 1);
                b->take[c][l] = 0;
            }
        return;
    }
    /* split: every vector of units per candidate with sum <= qty */
    int64_t u[BN] = {0};
    for (;;) {
        int64_t sum = 0;
        for (int c = 0; c < p->ncands; c++)
            sum += u[c];
        if (sum <= p->qty[l]) {
            for (int c = 0; c < p->ncands; c++)
                b->take[c][l] = u[c];
            bf_line(b, l + 1);
        }
        int c = 0;
        while (c < p->ncands && ++u[c] > p->qty[l])
            u[c++] = 0;
        if (c == p->ncands)
            break;
    }
    for (int c = 0; c < p->ncands; c++)
        b->take[c][l] = 0;
}

Test(lookahead, the_per_order_step_is_the_brute_force_optimum_with_prices)
{
    omo_solver *sv = omo_solver_create();
    rng r = {20261202};
    int64_t atp[BN][BL], price[BN][BL];
    unsigned char ok[BN][BL];
    int64_t qty[BL];
    int group[BL];
    omo_cand cands[BN];
    int checked = 0, moved = 0;
    for (int iter = 0; iter < 3000; iter++) {
        int n = (int)range(&r, 1, BN), L = (int)range(&r, 1, BL);
        int G = (int)range(&r, 1, L);
        for (int l = 0; l < L; l++) {
            qty[l] = range(&r, 1, 3);
            group[l] = l < G ? l : (int)range(&r, 0, G - 1);
        }
        bool with_prices = range(&r, 0, 3) > 0;
        for (int c = 0; c < n; c++) {
            for (int g = 0; g < G; g++) {
                atp[c][g] = range(&r, 0, 3);
                price[c][g] = range(&r, 0, 2) ? range(&r, 0, 8) * 750000 : 0;
            }
            for (int l = 0; l < L; l++)
                ok[c][l] = range(&r, 0, 5) > 0;
            cands[c] = (omo_cand){.node = c,
                                  .fixed = range(&r, 0, 12) * 500000,
                                  .hours = range(&r, 1, 4) * 12000,
                                  .pick = range(&r, 0, 4) * 100000,
                                  .capacity = range(&r, 0, 3) ? INT64_MAX : range(&r, 1, 4),
                                  .atp = atp[c],
                                  .ok = ok[c],
                                  .price = with_prices ? price[c] : NULL};
        }
        omo_problem p = {.nlines = L,
                         .qty = qty,
                         .group = group,
                         .ngroups = G,
                         .cands = cands,
                         .ncands = n,
                         .hour_cost = range(&r, 0, 2) * 50000,
                         .split_penalty = range(&r, 0, 2) * 1500000,
                         .max_shipments = (int)range(&r, 1, 3),
                         .split_lines = range(&r, 0, 2) == 0,
                         .partial_deny = false};
        const omo_plan *plan = omo_solver_solve(sv, &p);
        bf b = {.p = &p};
        bf_line(&b, 0);
        cr_assert(b.found);
        cr_assert_eq(plan->units, b.units, "iter %d: units %lld, brute force %lld", iter,
                     (long long)plan->units, (long long)b.units);
        cr_assert_eq(plan->objective, b.obj, "iter %d: objective %lld, brute force %lld", iter,
                     (long long)plan->objective, (long long)b.obj);
        cr_assert_eq(plan->nships, b.nships, "iter %d", iter);
        /* The real objective is the augmented one less the prices of the units taken. */
        int64_t per[OMO_PLAN_MAX_SHIP], priced = 0;
        for (int s = 0; s < plan->nships; s++) {
            const omo_cand *cd = &cands[plan->cand[s]];
            cr_assert_eq(cd->node, b.nodes[s], "iter %d: shipment %d", iter, s);
            per[s] = 0;
            for (int l = 0; l < L; l++) {
                int64_t t = plan->take[(size_t)s * L + l];
                per[s] += t;
                priced += t * (cd->price ? cd->price[group[l]] : 0) * 1000;
            }
        }
        cr_assert_eq(plan->priced, priced, "iter %d", iter);
        cr_assert_eq(plan->objective - plan->priced,
                     omo_objective(&p, plan->nships, plan->cand, per), "iter %d", iter);
        /* Whether the prices moved the choice: solved again without them. */
        if (with_prices && plan->priced) {
            int first = plan->nships ? cands[plan->cand[0]].node : -1;
            for (int c = 0; c < n; c++)
                cands[c].price = NULL;
            const omo_plan *plain = omo_solver_solve(sv, &p);
            moved += plain->nships && cands[plain->cand[0]].node != first;
        }
        checked++;
    }
    cr_assert_eq(checked, 3000);
    cr_assert(moved > 20, "the prices changed only %d choices: the test would not see them", moved);
    omo_solver_destroy(sv);
}

/* ---- end to end ------------------------------------------------------------------------- */

static char *run_solve(const char *rules, const char *out)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s solve --network " FIX "lookahead_network.yaml --rules %s --events " FIX
             "lookahead_events.jsonl --out %s 2>/dev/null",
             OMO_BINARY, rules, out);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    /* Without rules_version, which is the hash of each rules file. */
    snprintf(cmd, sizeof cmd, "sed 's/\"rules_version\":\"[0-9a-f]*\"//' %s", out);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    pclose(f);
    unlink(out);
    return buf;
}

Test(lookahead, weight_0_decides_byte_for_byte_as_without_the_block)
{
    char *none = run_solve(FIX "lookahead_rules_none.yaml", "/tmp/omo_la_none.jsonl");
    char *zero = run_solve(FIX "lookahead_rules_zero.yaml", "/tmp/omo_la_zero.jsonl");
    char *on = run_solve(FIX "lookahead_rules.yaml", "/tmp/omo_la_on.jsonl");
    cr_assert(strlen(none) > 100);
    cr_assert_str_eq(zero, none);
    /* ... and the look-ahead does change a decision on the same day (so the test can fail):
     * an order from between the stores takes the warehouse, keeping S-A's last unit for
     * S-A's own city, which then ships it from 4.00 instead of from W at 6.50. */
    cr_assert_str_neq(on, none);
    char *again = run_solve(FIX "lookahead_rules.yaml", "/tmp/omo_la_again.jsonl");
    cr_assert_str_eq(again, on, "look-ahead decisions are not repeatable");
    free(none);
    free(zero);
    free(on);
    free(again);
}

Test(lookahead, explain_shows_the_prices_and_the_myopic_choice)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s explain --network " FIX "lookahead_network.yaml --rules " FIX
             "lookahead_rules.yaml --events " FIX "lookahead_events.jsonl O-1",
             OMO_BINARY);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    cr_assert_eq(pclose(f), 0);
    /* O-1 went to W; S-A, as near, was the myopic choice: its unit is priced 0.8 x 2.50. */
    cr_assert(strstr(buf, "Chosen:    W 1u; 1 unit, objective 6.5\n"), "%s", buf);
    cr_assert(strstr(buf, "Look-ahead: weight 0.8; the chosen units are priced 0\n"), "%s", buf);
    cr_assert(strstr(buf, "Myopic:    S-A; objective 6.5, prices 2: the prices made the choice, 0 "
                          "more now to keep units priced 2\n"),
              "%s", buf);
    cr_assert(strstr(buf, "1: atp 1, runner-up 1, price 2\n"), "%s", buf);
    free(buf);
}
