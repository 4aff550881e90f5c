/* labound: the figures of the look-ahead benchmark for one generated week (gen --demand).
 *
 *   labound DIR MYOPIC.jsonl LOOKAHEAD.jsonl
 *
 * Prints one line: for each allocation file (the final revision of every order) the total
 * objective, shipping cost, split orders and backordered units, then the clairvoyant bound.
 *
 * The bound is the LP relaxation (GLPK) of deciding all the week's orders knowing them in
 * advance, under DIR/network.yaml and DIR/routing.yaml: per order, units x[line, node] of each
 * line from each node, shipment openings z[node] in [0, 1] with x <= qty z, the slowest
 * shipment's hours H >= hours[node] z[node], splits S >= sum z - 1, at most max_shipments
 * openings; objective sum fixed z + pick x + hour_cost H + split_penalty S, and a backordered
 * unit costs 1000. Stores can give at most their opening stock over the week (gen's stores get
 * nothing more); warehouses are not limited (gen replenishes them daily far beyond demand),
 * which can only lower the bound. Nodes that a warehouse beats on fixed cost, hours and pick
 * cost alike are left out of an order: with warehouses unlimited, an integer plan never
 * needs them, so the LP of the rest still bounds every integer plan from below.
 *
 *   labound --lp-time DIR [REPEAT]
 *
 * Times the look-ahead LP of DIR/routing_lookahead.yaml over the view after the opening stock:
 * one LP per SKU against one LP for all SKUs. */
#include "engine.h"
#include "lookahead.h"
#include "rules.h"

#include <glpk.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *what)
{
    fprintf(stderr, "labound: %s\n", what);
    exit(1);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "labound: %s: cannot open\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        die("read failed");
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* ---- the allocations' figures --------------------------------------------------------- */

typedef struct figures {
    double objective, ship_cost;
    long splits, backordered;
} figures;

static void figures_of(const char *path, figures *out)
{
    size_t len;
    char *buf = slurp(path, &len);
    /* The last revision of each order wins: keep them by order id. */
    json_t *last = json_object();
    for (char *line = buf, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            nl = line + strlen(line) - 1;
        json_t *a = json_loadb(line, (size_t)(nl - line + 1), 0, NULL);
        if (a && json_is_string(json_object_get(a, "order_id")))
            json_object_set_new(last, json_string_value(json_object_get(a, "order_id")), a);
        else
            json_decref(a);
        if (!nl[1])
            break;
    }
    memset(out, 0, sizeof *out);
    const char *key;
    json_t *a;
    json_object_foreach(last, key, a)
    {
        out->objective += json_number_value(json_object_get(a, "objective"));
        json_t *ships = json_object_get(a, "shipments");
        out->splits += json_array_size(ships) > 1;
        size_t i;
        json_t *s;
        json_array_foreach(ships, i, s) out->ship_cost +=
            json_number_value(json_object_get(s, "cost"));
        json_t *bo = json_object_get(a, "backordered");
        json_array_foreach(bo, i, s) out->backordered +=
            (long)json_integer_value(json_object_get(s, "qty"));
    }
    json_decref(last);
    free(buf);
}

/* ---- the clairvoyant bound ------------------------------------------------------------ */

typedef struct cand {
    int node;
    int64_t fixed, hours, pick; /* micro, milli, micro */
} cand;

static const omo_zone *zone_at(const omo_service *svc, double km)
{
    for (size_t z = 0; z < svc->nzones; z++)
        if (km <= svc->zones[z].max_km)
            return &svc->zones[z];
    return NULL;
}

/* Whether the rules let node n serve sku for a ship order of service svc. */
static bool eligible(const omo_rules *R, const omo_network *net, int n, const char *sku,
                     const omo_service *svc)
{
    const omo_node *nd = &net->nodes[n];
    omo_method m =
        nd->type == OMO_NODE_WAREHOUSE ? OMO_METHOD_WAREHOUSE : OMO_METHOD_SHIP_FROM_STORE;
    if (!nd->ship || !(svc->from_mask & OMO_TYPE_BIT(nd->type)))
        return false;
    for (size_t r = 0; r < R->nrules; r++) {
        const omo_rule *ru = &R->rules[r];
        if ((ru->sku && strcmp(ru->sku, sku)) ||
            (ru->sku_tag && !omo_network_sku_has_tag(net, sku, ru->sku_tag)) ||
            (ru->service && strcmp(ru->service, svc->name)) || (ru->node >= 0 && ru->node != n) ||
            (ru->node_type >= 0 && ru->node_type != (int)nd->type))
            continue;
        if (ru->allow_node_types && !(ru->allow_node_types & OMO_TYPE_BIT(nd->type)))
            return false;
        for (size_t d = 0; d < ru->ndeny_nodes; d++)
            if (ru->deny_nodes[d] == n)
                return false;
        if (ru->deny_methods & OMO_METHOD_BIT(m))
            return false;
    }
    return true;
}

typedef struct col {
    int *ind;
    double *val;
    int n, cap;
} col;

static void col_add(col *c, int row, double v)
{
    if (c->n + 2 > c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->ind = realloc(c->ind, sizeof(int) * (size_t)c->cap);
        c->val = realloc(c->val, sizeof(double) * (size_t)c->cap);
        if (!c->ind || !c->val)
            die("out of memory");
    }
    c->n++;
    c->ind[c->n] = row;
    c->val[c->n] = v;
}

static double bound(const char *dir, double *backordered)
{
    char path[4096];
    omo_diag diag = {0};
    snprintf(path, sizeof path, "%s/network.yaml", dir);
    omo_network *net = omo_network_load(path, &diag);
    snprintf(path, sizeof path, "%s/routing.yaml", dir);
    omo_rules *R = net ? omo_rules_load(path, net, &diag) : NULL;
    if (!R) {
        omo_diag_print(&diag, stderr);
        die("bad network or rules");
    }
    size_t nn = net->nnodes;
    /* Opening store stock per (store, SKU): the snapshots, SKUs interned by name. */
    omo_strmap skus = {0};
    size_t nskus = 0;
    int64_t *stock = NULL; /* [sku * nn + node] */
    size_t len;
    snprintf(path, sizeof path, "%s/events.jsonl", dir);
    char *buf = slurp(path, &len);
    omo_event ev;
    omo_event_error err;

    glp_prob *P = glp_create_prob();
    glp_set_obj_dir(P, GLP_MIN);
    /* Supply rows per (store, SKU) are made as orders first need them. */
    int *supply_row = NULL;
    size_t cap_supply = 0;
    col *cols = NULL;
    size_t ncols = 0, capcols = 0;
    double *obj = NULL;
    double *ub = NULL;
    int nbo = 0;
    int *bo_cols = NULL;

#define NEW_COL(cost, upper)                                                                       \
    do {                                                                                           \
        if (ncols == capcols) {                                                                    \
            capcols = capcols ? 2 * capcols : 1024;                                                \
            cols = realloc(cols, sizeof *cols * capcols);                                          \
            obj = realloc(obj, sizeof *obj * capcols);                                             \
            ub = realloc(ub, sizeof *ub * capcols);                                                \
            if (!cols || !obj || !ub)                                                              \
                die("out of memory");                                                              \
        }                                                                                          \
        memset(&cols[ncols], 0, sizeof cols[ncols]);                                               \
        obj[ncols] = (cost);                                                                       \
        ub[ncols] = (upper);                                                                       \
        ncols++;                                                                                   \
    } while (0)

    for (char *line = buf, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        if (!omo_event_parse(line, (size_t)(nl - line), net, &ev, &err))
            continue;
        if (ev.type == OMO_EV_STOCK_SNAPSHOT && net->nodes[ev.node].type == OMO_NODE_STORE) {
            bool added;
            int s = omo_strmap_add(&skus, ev.sku, (int)nskus, &added);
            if (added) {
                nskus++;
                stock = realloc(stock, sizeof(int64_t) * nskus * nn);
                supply_row = realloc(supply_row, sizeof(int) * nskus * nn);
                if (!stock || !supply_row)
                    die("out of memory");
                memset(stock + (size_t)s * nn, 0, sizeof(int64_t) * nn);
                memset(supply_row + (size_t)s * nn, 0, sizeof(int) * nn);
                cap_supply = nskus * nn;
            }
            stock[(size_t)s * nn + (size_t)ev.node] = ev.on_hand;
            continue;
        }
        if (ev.type != OMO_EV_ORDER_CREATED || ev.pickup)
            continue;
        int si = omo_rules_find_service(R, ev.service);
        if (si < 0)
            continue;
        const omo_service *svc = &R->services[si];
        /* Per unit of line l from node n, the order pays at least
         * c(n) = (fixed[n] + hour_cost x hours[n]) / Q + pick[n], Q its units: a shipment's
         * fixed cost is at least its units' share of it, the slowest shipment's hours at least
         * the units' average, and splits at least 0. An order of one line pays exactly that. */
        int64_t Q = 0, L = (int64_t)ev.nlines;
        for (int64_t l = 0; l < L; l++)
            Q += ev.lines[l].qty;
        for (int64_t l = 0; l < L; l++) {
            int s = omo_strmap_get(&skus, ev.lines[l].sku);
            double best_wh = INFINITY;
            int nc = 0;
            double ccost[64];
            int cnode[64];
            for (size_t n = 0; n < nn; n++) {
                const omo_node *nd = &net->nodes[n];
                bool wh = nd->type == OMO_NODE_WAREHOUSE;
                if (!wh && (s < 0 || stock[(size_t)s * nn + n] <= 0))
                    continue;
                const omo_zone *z =
                    zone_at(svc, omo_distance_km(nd->lat, nd->lon, ev.cust_lat, ev.cust_lon));
                if (!z || !eligible(R, net, (int)n, ev.lines[l].sku, svc))
                    continue;
                double c = ((double)(z->cost + nd->handling_cost) / 1e6 +
                            (double)R->hour_cost / 1e6 *
                                ((double)(nd->handling_hours + z->hours) / 1000.0)) /
                               (double)Q +
                           (double)nd->pick_cost_per_unit / 1e6;
                if (wh) {
                    if (c < best_wh) {
                        best_wh = c;
                        cnode[0] = (int)n;
                        ccost[0] = c;
                        if (!nc)
                            nc = 1;
                    }
                } else if (nc < 64) {
                    if (!nc) { /* slot 0 is the best warehouse's */
                        cnode[0] = -1;
                        ccost[0] = INFINITY;
                        nc = 1;
                    }
                    cnode[nc] = (int)n;
                    ccost[nc++] = c;
                }
            }
            /* Warehouses are not limited: a node dearer than the best of them is never needed. */
            int row = glp_add_rows(P, 1);
            glp_set_row_bnds(P, row, GLP_FX, (double)ev.lines[l].qty, (double)ev.lines[l].qty);
            for (int i = 0; i < nc; i++) {
                if (cnode[i] < 0 || (i > 0 && ccost[i] >= best_wh))
                    continue;
                NEW_COL(ccost[i], INFINITY);
                col *c = &cols[ncols - 1];
                col_add(c, row, 1.0);
                int n = cnode[i];
                if (net->nodes[n].type == OMO_NODE_STORE) {
                    int *srow = &supply_row[(size_t)s * nn + (size_t)n];
                    if (!*srow) {
                        *srow = glp_add_rows(P, 1);
                        glp_set_row_bnds(P, *srow, GLP_UP, 0,
                                         (double)stock[(size_t)s * nn + (size_t)n]);
                    }
                    col_add(c, *srow, 1.0);
                }
            }
            NEW_COL(1000.0, INFINITY); /* backordered units */
            col_add(&cols[ncols - 1], row, 1.0);
            bo_cols = realloc(bo_cols, sizeof(int) * (size_t)(nbo + 1));
            bo_cols[nbo++] = (int)ncols; /* 1-based column */
        }
    }
    (void)cap_supply;
    glp_add_cols(P, (int)ncols);
    for (size_t i = 0; i < ncols; i++) {
        int j = (int)i + 1;
        glp_set_obj_coef(P, j, obj[i]);
        glp_set_col_bnds(P, j, isinf(ub[i]) ? GLP_LO : GLP_DB, 0, isinf(ub[i]) ? 0 : ub[i]);
        glp_set_mat_col(P, j, cols[i].n, cols[i].ind, cols[i].val);
        free(cols[i].ind);
        free(cols[i].val);
    }
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_ON;
    if (glp_simplex(P, &parm) != 0 || glp_get_status(P) != GLP_OPT)
        die("the bound's LP has no optimum");
    double bo = 0;
    for (int i = 0; i < nbo; i++)
        bo += glp_get_col_prim(P, bo_cols[i]);
    *backordered = bo;
    double value = glp_get_obj_val(P) - 1000.0 * bo;
    glp_delete_prob(P);
    free(cols);
    free(obj);
    free(ub);
    free(bo_cols);
    free(stock);
    free(supply_row);
    free(buf);
    omo_strmap_free(&skus);
    omo_rules_destroy(R);
    omo_network_destroy(net);
    return value;
}

/* ---- the look-ahead LP's time --------------------------------------------------------- */

static void ignore(void *ctx, const omo_allocation *a)
{
    (void)ctx;
    (void)a;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int lp_time(const char *dir, int repeat)
{
    char path[4096];
    omo_diag diag = {0};
    snprintf(path, sizeof path, "%s/network.yaml", dir);
    omo_network *net = omo_network_load(path, &diag);
    snprintf(path, sizeof path, "%s/routing_lookahead.yaml", dir);
    omo_rules *R = net ? omo_rules_load(path, net, &diag) : NULL;
    if (!R || !R->lookahead) {
        omo_diag_print(&diag, stderr);
        die("bad network or rules");
    }
    /* The view after the opening stock: every event before the first order, applied under
     * the rules without the block (no prices being computed beside the timing). */
    snprintf(path, sizeof path, "%s/routing.yaml", dir);
    omo_rules *plain = omo_rules_load(path, net, &diag);
    if (!plain)
        die("bad rules");
    omo_engine *eng = omo_engine_create(net, plain, ignore, NULL);
    size_t len;
    snprintf(path, sizeof path, "%s/events.jsonl", dir);
    char *buf = slurp(path, &len);
    omo_event ev;
    omo_event_error err;
    for (char *line = buf, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl || !omo_event_parse(line, (size_t)(nl - line), net, &ev, &err))
            break;
        if (ev.type == OMO_EV_ORDER_CREATED)
            break;
        (void)omo_engine_apply(eng, &ev, &err);
    }
    omo_price_lp *lp = omo_price_lp_create(net, R);
    size_t cells = net->nnodes * R->lookahead->nskus;
    int64_t *atp = malloc(sizeof(int64_t) * cells), *p1 = malloc(sizeof(int64_t) * cells),
            *p2 = malloc(sizeof(int64_t) * cells);
    omo_price_lp_snapshot(lp, omo_engine_inventory(eng), atp);
    double t[2] = {0, 0};
    /* One LP for all is far slower (108x on the default tight week): measured on request. */
    int modes = getenv("LABOUND_JOINT") ? 2 : 1;
    for (int joint = 0; joint < modes; joint++) {
        double t0 = now_s();
        for (int i = 0; i < repeat; i++)
            omo_price_lp_solve(lp, atp, joint, joint ? p2 : p1);
        t[joint] = (now_s() - t0) / repeat;
    }
    size_t differ = 0, priced = 0;
    for (size_t i = 0; i < cells; i++) {
        differ += p1[i] != p2[i];
        priced += p1[i] > 0;
    }
    printf("look-ahead LP over %zu SKUs x %zu nodes (%zu units priced above 0): one LP per SKU "
           "%.1f ms",
           R->lookahead->nskus, net->nnodes, priced, t[0] * 1e3);
    if (modes == 2)
        printf(", one LP for all %.1f ms (ratio %.2f); prices differing %zu", t[1] * 1e3,
               t[1] / t[0], differ);
    printf("\n");
    free(atp);
    free(p1);
    free(p2);
    free(buf);
    omo_price_lp_destroy(lp);
    omo_engine_destroy(eng);
    omo_rules_destroy(plain);
    omo_rules_destroy(R);
    omo_network_destroy(net);
    glp_free_env();
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--lp-time"))
        return lp_time(argv[2], argc >= 4 ? atoi(argv[3]) : 3);
    if (argc != 4) {
        fputs("usage: labound DIR MYOPIC.jsonl LOOKAHEAD.jsonl | labound --lp-time DIR [N]\n",
              stderr);
        return 2;
    }
    figures a, b;
    figures_of(argv[2], &a);
    figures_of(argv[3], &b);
    double bo;
    double lb = bound(argv[1], &bo);
    printf("%.2f %.2f %ld %ld %.2f %.2f %ld %ld %.2f %.1f\n", a.objective, a.ship_cost, a.splits,
           a.backordered, b.objective, b.ship_cost, b.splits, b.backordered, lb, bo);
    glp_free_env();
    return 0;
}
