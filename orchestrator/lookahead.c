/* Look-ahead sourcing: the forecast file, the transportation LP whose supply duals price each
 * unit, and the refresh cycle that keeps an engine's prices deterministic. */
#include "lookahead.h"

#include "inventory.h"
#include "rules.h"

#include <errno.h>
#include <glpk.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the forecast file ----------------------------------------------------------------- */

static bool plain_decimal(const char *s)
{
    size_t digits = 0;
    if (*s == '-' || *s == '+')
        s++;
    for (; *s >= '0' && *s <= '9'; s++)
        digits++;
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++)
            digits++;
    return digits > 0 && !*s;
}

typedef struct raw_row {
    char sku[OMO_ID_MAX + 1];
    omo_forecast_point pt;
    size_t order;
} raw_row;

static int cmp_raw(const void *a, const void *b)
{
    const raw_row *x = a, *y = b;
    int c = strcmp(x->sku, y->sku);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Reads one number field; reports at (line, col) when it is not a decimal in [lo, hi]. */
static bool read_number(const char *field, const char *name, double lo, double hi, omo_loc *loc,
                        double *out, omo_diag *diag)
{
    if (!plain_decimal(field)) {
        omo_diag_error(diag, loc, "expected a number for %s, got '%s'", name, field);
        return false;
    }
    *out = strtod(field, NULL);
    if (lo == 0 && *out < 0) {
        omo_diag_error(diag, loc, "%s must not be negative, got %s", name, field);
        return false;
    }
    if (!isfinite(*out) || *out < lo || *out > hi) {
        omo_diag_error(diag, loc, "%s %s is out of range (%g to %g)", name, field, lo, hi);
        return false;
    }
    return true;
}

bool omo_lookahead_read_forecast(omo_lookahead *la, const char *path, omo_diag *diag)
{
    static const char *const cols[4] = {"sku", "lat", "lon", "units_per_day"};
    size_t start = diag->count;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false; /* errno says why; the caller names the key that gave the path */
    raw_row *rows = NULL;
    size_t nrows = 0, cap = 0;
    char *line = NULL;
    size_t linecap = 0;
    ssize_t got;
    int lineno = 0;
    bool header = false;
    while ((got = getline(&line, &linecap, f)) >= 0) {
        lineno++;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (got == 0)
            continue;
        /* Split on commas, remembering where each field starts. */
        char *field[5];
        int col[5], nf = 0;
        char *p = line;
        for (;;) {
            if (nf < 5) {
                field[nf] = p;
                col[nf] = (int)(p - line) + 1;
            }
            nf++;
            char *comma = strchr(p, ',');
            if (!comma)
                break;
            *comma = '\0';
            p = comma + 1;
        }
        omo_loc loc = {path, lineno, 1};
        if (!header) {
            header = true;
            bool ok = nf == 4;
            for (int i = 0; i < 4 && ok; i++)
                ok = !strcmp(field[i], cols[i]);
            if (!ok) {
                omo_diag_error(diag, &loc,
                               "the forecast's header must be sku,lat,lon,units_per_day");
                break;
            }
            continue;
        }
        if (nf != 4) {
            if (nf > 4)
                loc.col = col[4] - 1;
            omo_diag_error(diag, &loc, "expected 4 fields (sku,lat,lon,units_per_day), got %d", nf);
            continue;
        }
        raw_row r = {.order = nrows};
        bool ok = true;
        loc.col = col[0];
        if (!omo_id_valid(field[0])) {
            omo_diag_error(diag, &loc,
                           "invalid sku '%s': 1 to %d characters of A-Z a-z 0-9 _ . - expected",
                           field[0], OMO_ID_MAX);
            ok = false;
        } else {
            snprintf(r.sku, sizeof r.sku, "%s", field[0]);
        }
        loc.col = col[1];
        ok &= read_number(field[1], "lat", -90, 90, &loc, &r.pt.lat, diag);
        loc.col = col[2];
        ok &= read_number(field[2], "lon", -180, 180, &loc, &r.pt.lon, diag);
        loc.col = col[3];
        ok &= read_number(field[3], "units_per_day", 0, 1e9, &loc, &r.pt.units_per_day, diag);
        if (!ok)
            continue;
        omo_grow((void **)&rows, &cap, nrows + 1, sizeof *rows);
        rows[nrows++] = r;
    }
    free(line);
    fclose(f);
    if (!header) {
        omo_loc loc = {path, 1, 1};
        omo_diag_error(diag, &loc,
                       "the forecast is empty: it needs the header "
                       "sku,lat,lon,units_per_day");
    }
    if (diag->count > start) {
        free(rows);
        return false;
    }
    qsort(rows, nrows, sizeof *rows, cmp_raw);
    la->points = omo_xcalloc(nrows ? nrows : 1, sizeof *la->points);
    la->skus = omo_xcalloc(nrows ? nrows : 1, sizeof *la->skus);
    for (size_t i = 0; i < nrows; i++) {
        if (!la->nskus || strcmp(la->skus[la->nskus - 1].sku, rows[i].sku)) {
            omo_forecast_sku *s = &la->skus[la->nskus];
            memcpy(s->sku, rows[i].sku, sizeof s->sku);
            s->first = i;
            if (!omo_strmap_put(&la->sku_index, s->sku, (int)la->nskus))
                abort();
            la->nskus++;
        }
        la->skus[la->nskus - 1].n++;
        la->points[i] = rows[i].pt;
    }
    la->npoints = nrows;
    free(rows);
    return true;
}

void omo_lookahead_free(omo_lookahead *la)
{
    if (!la)
        return;
    free(la->forecast);
    free(la->points);
    free(la->skus);
    omo_strmap_free(&la->sku_index);
}

/* ---- the LP ---------------------------------------------------------------------------- */

/* One SKU's part of a problem: its supply rows (nodes holding ATP), demand rows (its points),
 * and which arcs are columns so far. */
typedef struct block {
    size_t f;
    int row0;      /* its first row, 1-based */
    int nh, np;    /* supply rows, demand rows */
    int *holders;  /* [nh] nodes */
    int64_t *cost; /* [j * nh + h]: one unit from holder h to point j, micro; INT64_MAX: none */
    bool *in_lp;   /* [j * nh + h]: the arc is a column */
} block;

struct omo_price_lp {
    const omo_network *net;
    const omo_rules *rules;
    const omo_lookahead *la;
    int64_t unserved; /* micro: what an unserved unit of demand costs in the LP */
    double hours;     /* of demand counted */
    /* Arc costs under the rules that name no SKU, per (node, distinct forecast location), when
     * the table is of a sane size; SKUs some rule names get theirs computed. */
    size_t nloc;
    int *loc_of; /* per forecast point */
    int64_t *generic;
    bool *rule_ok; /* per rule: its when can match the SKU at hand */
    bool *rule_generic;
    int *order; /* scratch: holders by cost */
    /* omo_price_lp_solve_warm: each SKU's last problem, solved again from its last basis */
    glp_prob **warm;
    block *warm_block;
    bool *mark; /* scratch: per node */
};

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* Rules whose `when` the LP can decide for a SKU: no channel (orders of any channel are
 * forecast), and the SKU's own keys matching (sku NULL: the rules that name no SKU). Service is
 * decided per service by arc_cost. */
static void rules_for_sku(const omo_price_lp *lp, const char *sku, bool *ok)
{
    const omo_rules *R = lp->rules;
    for (size_t r = 0; r < R->nrules; r++) {
        const omo_rule *ru = &R->rules[r];
        ok[r] = !ru->channel &&
                (sku ? (!ru->sku || !strcmp(ru->sku, sku)) &&
                           (!ru->sku_tag || omo_network_sku_has_tag(lp->net, sku, ru->sku_tag))
                     : !ru->sku && !ru->sku_tag);
    }
}

/* The cheapest objective of a one-unit order from node n to a point km away, over the ship
 * services that may serve it under the rules ok[] says apply; INT64_MAX when none may. */
static int64_t arc_cost(const omo_price_lp *lp, const bool *rule_ok, int n, double km)
{
    const omo_rules *R = lp->rules;
    const omo_node *nd = &lp->net->nodes[n];
    if (!nd->ship)
        return INT64_MAX;
    omo_method method =
        nd->type == OMO_NODE_WAREHOUSE ? OMO_METHOD_WAREHOUSE : OMO_METHOD_SHIP_FROM_STORE;
    int64_t best = INT64_MAX;
    for (size_t s = 0; s < R->nservices; s++) {
        const omo_service *svc = &R->services[s];
        if (!(svc->from_mask & OMO_TYPE_BIT(nd->type)))
            continue;
        const omo_zone *z = NULL;
        for (size_t i = 0; i < svc->nzones && !z; i++)
            if (km <= svc->zones[i].max_km)
                z = &svc->zones[i];
        if (!z)
            continue;
        bool ok = true;
        for (size_t r = 0; r < R->nrules && ok; r++) {
            const omo_rule *ru = &R->rules[r];
            if (!rule_ok[r] || (ru->service && strcmp(ru->service, svc->name)) ||
                (ru->node >= 0 && ru->node != n) ||
                (ru->node_type >= 0 && ru->node_type != (int)nd->type))
                continue;
            if (ru->allow_node_types && !(ru->allow_node_types & OMO_TYPE_BIT(nd->type)))
                ok = false;
            for (size_t d = 0; d < ru->ndeny_nodes; d++)
                ok &= ru->deny_nodes[d] != n;
            ok &= !(ru->deny_methods & OMO_METHOD_BIT(method));
        }
        if (!ok)
            continue;
        int64_t c = z->cost + nd->handling_cost + nd->pick_cost_per_unit +
                    R->hour_cost * (nd->handling_hours + z->hours) / 1000;
        if (c < best)
            best = c;
    }
    return best;
}

static int cmp_point(const void *a, const void *b, void *ctx)
{
    const omo_forecast_point *p = ctx;
    const omo_forecast_point *x = &p[*(const int *)a], *y = &p[*(const int *)b];
    if (x->lat != y->lat)
        return x->lat < y->lat ? -1 : 1;
    if (x->lon != y->lon)
        return x->lon < y->lon ? -1 : 1;
    return *(const int *)a - *(const int *)b;
}

omo_price_lp *omo_price_lp_create(const omo_network *net, const omo_rules *rules)
{
    omo_price_lp *lp = omo_xcalloc(1, sizeof *lp);
    const omo_lookahead *la = rules->lookahead;
    lp->net = net;
    lp->rules = rules;
    lp->la = la;
    lp->hours = la->horizon_hours;
    /* An unserved unit costs twice the dearest one-unit shipment the rules allow, and one
     * more: the LP serves all the demand it can, and prices scarce units above any shipping
     * saving. */
    int64_t zone = 0, zhours = 0, handling = 0, hhours = 0, pick = 0;
    for (size_t s = 0; s < rules->nservices; s++)
        for (size_t z = 0; z < rules->services[s].nzones; z++) {
            zone = max64(zone, rules->services[s].zones[z].cost);
            zhours = max64(zhours, rules->services[s].zones[z].hours);
        }
    for (size_t n = 0; n < net->nnodes; n++) {
        handling = max64(handling, net->nodes[n].handling_cost);
        hhours = max64(hhours, net->nodes[n].handling_hours);
        pick = max64(pick, net->nodes[n].pick_cost_per_unit);
    }
    lp->unserved =
        2 * (zone + handling + pick + rules->hour_cost * (zhours + hhours) / 1000) + OMO_MICRO;
    size_t nn = net->nnodes ? net->nnodes : 1;
    lp->order = omo_xmalloc(sizeof(int) * nn);
    lp->rule_ok = omo_xcalloc(rules->nrules + 1, sizeof(bool));
    lp->rule_generic = omo_xcalloc(rules->nrules + 1, sizeof(bool));
    rules_for_sku(lp, NULL, lp->rule_generic);

    /* Distinct locations of the forecast, each point's index among them. */
    size_t np = la->npoints;
    lp->loc_of = omo_xcalloc(np ? np : 1, sizeof(int));
    int *byloc = omo_xmalloc(sizeof(int) * (np ? np : 1));
    for (size_t i = 0; i < np; i++)
        byloc[i] = (int)i;
    qsort_r(byloc, np, sizeof(int), cmp_point, la->points);
    for (size_t i = 0; i < np; i++) {
        const omo_forecast_point *p = &la->points[byloc[i]], *q = &la->points[byloc[i ? i - 1 : 0]];
        if (i == 0 || p->lat != q->lat || p->lon != q->lon)
            lp->nloc++;
        lp->loc_of[byloc[i]] = (int)lp->nloc - 1;
    }
    size_t cells = net->nnodes * lp->nloc;
    if (cells <= ((size_t)1 << 22)) {
        lp->generic = omo_xmalloc(sizeof(int64_t) * (cells > 0 ? cells : 1));
        for (size_t i = 0; i < np; i++) {
            if (i && lp->loc_of[byloc[i]] == lp->loc_of[byloc[i - 1]])
                continue;
            const omo_forecast_point *p = &la->points[byloc[i]];
            for (size_t n = 0; n < net->nnodes; n++)
                lp->generic[n * lp->nloc + (size_t)lp->loc_of[byloc[i]]] =
                    arc_cost(lp, lp->rule_generic, (int)n,
                             omo_distance_km(net->nodes[n].lat, net->nodes[n].lon, p->lat, p->lon));
        }
    }
    free(byloc);
    return lp;
}

void omo_price_lp_set_hours(omo_price_lp *lp, double hours)
{
    lp->hours = hours;
}

void omo_price_lp_destroy(omo_price_lp *lp)
{
    if (!lp)
        return;
    free(lp->order);
    free(lp->rule_ok);
    free(lp->rule_generic);
    free(lp->loc_of);
    free(lp->generic);
    omo_price_lp_drop_warm(lp);
    free(lp->warm);
    free(lp->warm_block);
    free(lp->mark);
    free(lp);
}

static int cmp_by_cost(const void *a, const void *b, void *ctx)
{
    const int64_t *cost = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    if (cost[x] != cost[y])
        return cost[x] < cost[y] ? -1 : 1;
    return x - y;
}

static void add_arc(glp_prob *P, const block *b, int h, int j)
{
    int ind[3] = {0, b->row0 + h, b->row0 + b->nh + j};
    double val[3] = {0, 1.0, 1.0};
    int col = glp_add_cols(P, 1);
    glp_set_col_bnds(P, col, GLP_LO, 0.0, 0.0);
    glp_set_obj_coef(P, col, (double)b->cost[(size_t)j * b->nh + h] / OMO_MICRO);
    glp_set_mat_col(P, col, 2, ind, val);
    b->in_lp[(size_t)j * b->nh + h] = true;
}

/* Adds SKU f's rows and first columns to P: a supply row per node holding ATP, a demand row
 * per point (its units per day over the horizon) with a column for what is left unserved, and
 * for each point its cheapest arcs until they could carry the SKU's whole demand: a farther
 * node serves the point only when all of those are full, which they cannot all be unless they
 * carry all the demand, so these are usually all the arcs the optimum needs. Any other comes
 * in as a column when its reduced cost says so (price_out). Returns false when the SKU has no
 * holder or no demand, and leaves P as it was. */
static bool build_block(omo_price_lp *lp, glp_prob *P, size_t f, const int64_t *atp, block *b)
{
    const omo_network *net = lp->net;
    const omo_lookahead *la = lp->la;
    const omo_forecast_sku *fs = &la->skus[f];
    size_t nn = net->nnodes;
    const int64_t *a = atp + f * nn;
    double scale = lp->hours / 24.0, demand = 0;
    memset(b, 0, sizeof *b);
    b->f = f;
    for (size_t j = 0; j < fs->n; j++)
        demand += la->points[fs->first + j].units_per_day;
    int nh = 0;
    for (size_t n = 0; n < nn; n++)
        nh += a[n] > 0;
    if (nh == 0 || demand <= 0)
        return false;
    b->nh = nh;
    b->np = (int)fs->n;
    b->holders = omo_xmalloc(sizeof(int) * (size_t)nh);
    b->cost = omo_xmalloc(sizeof(int64_t) * (size_t)nh * fs->n);
    b->in_lp = omo_xcalloc((size_t)nh * fs->n, sizeof(bool));
    nh = 0;
    for (size_t n = 0; n < nn; n++)
        if (a[n] > 0)
            b->holders[nh++] = (int)n;
    rules_for_sku(lp, fs->sku, lp->rule_ok);
    bool generic = lp->generic && !memcmp(lp->rule_ok, lp->rule_generic, lp->rules->nrules);

    b->row0 = glp_get_num_rows(P) + 1;
    glp_add_rows(P, b->nh + b->np);
    for (int h = 0; h < b->nh; h++)
        glp_set_row_bnds(P, b->row0 + h, GLP_UP, 0.0, (double)a[b->holders[h]]);
    for (int j = 0; j < b->np; j++) {
        size_t pi = fs->first + (size_t)j;
        const omo_forecast_point *pt = &la->points[pi];
        double d = pt->units_per_day * scale;
        int drow = b->row0 + b->nh + j;
        glp_set_row_bnds(P, drow, GLP_FX, d, d);
        int ind[2] = {0, drow};
        double val[2] = {0, 1.0};
        int col = glp_add_cols(P, 1);
        glp_set_col_bnds(P, col, GLP_LO, 0.0, 0.0);
        glp_set_obj_coef(P, col, (double)lp->unserved / OMO_MICRO);
        glp_set_mat_col(P, col, 1, ind, val);
        /* The first basis leaves all demand unserved: feasible, so no phase 1. */
        glp_set_row_stat(P, drow, GLP_NS);
        glp_set_col_stat(P, col, GLP_BS);

        int64_t *c = b->cost + (size_t)j * (size_t)b->nh;
        int k = 0;
        for (int h = 0; h < b->nh; h++) {
            int n = b->holders[h];
            c[h] = generic ? lp->generic[(size_t)n * lp->nloc + (size_t)lp->loc_of[pi]]
                           : arc_cost(lp, lp->rule_ok, n,
                                      omo_distance_km(net->nodes[n].lat, net->nodes[n].lon, pt->lat,
                                                      pt->lon));
            if (c[h] != INT64_MAX)
                lp->order[k++] = h;
        }
        qsort_r(lp->order, (size_t)k, sizeof(int), cmp_by_cost, c);
        double covered = 0;
        for (int i = 0; i < k && covered < demand * scale; i++) {
            add_arc(P, b, lp->order[i], j);
            covered += (double)a[b->holders[lp->order[i]]];
        }
    }
    return true;
}

/* Adds every arc of b left out whose reduced cost is negative at P's duals; returns how many. */
static int price_out(glp_prob *P, block *b)
{
    int added = 0;
    for (int j = 0; j < b->np; j++) {
        double v = glp_get_row_dual(P, b->row0 + b->nh + j);
        for (int h = 0; h < b->nh; h++) {
            size_t k = (size_t)j * b->nh + h;
            if (b->in_lp[k] || b->cost[k] == INT64_MAX)
                continue;
            double rc = (double)b->cost[k] / OMO_MICRO - glp_get_row_dual(P, b->row0 + h) - v;
            if (rc < -1e-9) {
                add_arc(P, b, h, j);
                added++;
            }
        }
    }
    return added;
}

/* Solves P to the optimum of the whole LP, arcs left out included: after each solve, the arcs
 * whose reduced cost is negative become columns, until none is (then the duals are feasible
 * for every arc, and the solution is optimal for the whole LP). Writes the prices. */
static bool solve_blocks(glp_prob *P, block *blocks, size_t nb, size_t nn, int64_t *price,
                         double *flow, bool warm)
{
    if (nb == 0)
        return true;
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    /* From the last optimum after new bounds, the basis is still dual feasible. */
    parm.meth = warm ? GLP_DUALP : GLP_PRIMAL;
    for (;;) {
        if (glp_simplex(P, &parm) != 0 || glp_get_status(P) != GLP_OPT)
            return false;       /* no prices rather than wrong ones */
        parm.meth = GLP_PRIMAL; /* new columns keep the basis primal feasible */
        int added = 0;
        for (size_t i = 0; i < nb; i++)
            added += price_out(P, &blocks[i]);
        if (!added)
            break;
    }
    for (size_t i = 0; i < nb; i++) {
        const block *b = &blocks[i];
        for (int h = 0; h < b->nh; h++) {
            double d = -glp_get_row_dual(P, b->row0 + h);
            price[b->f * nn + (size_t)b->holders[h]] = d > 0 ? llround(d * OMO_MICRO) : 0;
            if (flow)
                flow[b->f * nn + (size_t)b->holders[h]] = glp_get_row_prim(P, b->row0 + h);
        }
    }
    return true;
}

static void free_block(block *b)
{
    free(b->holders);
    free(b->cost);
    free(b->in_lp);
}

void omo_price_lp_solve_sku(omo_price_lp *lp, const int64_t *atp, size_t f, int64_t *price,
                            double *flow)
{
    size_t nn = lp->net->nnodes;
    memset(price + f * nn, 0, sizeof(int64_t) * nn);
    if (flow)
        memset(flow + f * nn, 0, sizeof(double) * nn);
    glp_prob *P = glp_create_prob();
    glp_set_obj_dir(P, GLP_MIN);
    block b;
    if (build_block(lp, P, f, atp, &b)) {
        solve_blocks(P, &b, 1, nn, price, flow, false);
        free_block(&b);
    }
    glp_delete_prob(P);
}

void omo_price_lp_solve(omo_price_lp *lp, const int64_t *atp, bool joint, int64_t *price)
{
    size_t nn = lp->net->nnodes, nf = lp->la->nskus;
    if (!joint) {
        for (size_t f = 0; f < nf; f++)
            omo_price_lp_solve_sku(lp, atp, f, price, NULL);
        return;
    }
    memset(price, 0, sizeof(int64_t) * nn * nf);
    block *blocks = omo_xcalloc(nf ? nf : 1, sizeof *blocks);
    size_t nb = 0;
    glp_prob *P = glp_create_prob();
    glp_set_obj_dir(P, GLP_MIN);
    for (size_t f = 0; f < nf; f++)
        nb += build_block(lp, P, f, atp, &blocks[nb]);
    solve_blocks(P, blocks, nb, nn, price, NULL, false);
    glp_delete_prob(P);
    for (size_t i = 0; i < nb; i++)
        free_block(&blocks[i]);
    free(blocks);
}

void omo_price_lp_drop_warm(omo_price_lp *lp)
{
    for (size_t f = 0; lp->warm && f < lp->la->nskus; f++)
        if (lp->warm[f]) {
            glp_delete_prob(lp->warm[f]);
            free_block(&lp->warm_block[f]);
            lp->warm[f] = NULL;
        }
}

void omo_price_lp_solve_warm(omo_price_lp *lp, const int64_t *atp, size_t f, int64_t *price,
                             double *flow)
{
    size_t nn = lp->net->nnodes;
    const int64_t *a = atp + f * nn;
    if (!lp->warm) {
        lp->warm = omo_xcalloc(lp->la->nskus, sizeof *lp->warm);
        lp->warm_block = omo_xcalloc(lp->la->nskus, sizeof *lp->warm_block);
        lp->mark = omo_xcalloc(nn ? nn : 1, sizeof(bool));
    }
    glp_prob *P = lp->warm[f];
    block *b = &lp->warm_block[f];
    if (P) {
        /* Usable when every node holding ATP has its row: then new bounds are all it takes. */
        for (int h = 0; h < b->nh; h++)
            lp->mark[b->holders[h]] = true;
        bool fits = true;
        for (size_t n = 0; n < nn && fits; n++)
            fits = a[n] <= 0 || lp->mark[n];
        for (int h = 0; h < b->nh; h++)
            lp->mark[b->holders[h]] = false;
        if (fits) {
            const omo_forecast_sku *fs = &lp->la->skus[f];
            for (int h = 0; h < b->nh; h++)
                glp_set_row_bnds(P, b->row0 + h, GLP_UP, 0.0, (double)a[b->holders[h]]);
            for (int j = 0; j < b->np; j++) {
                double d = lp->la->points[fs->first + (size_t)j].units_per_day * lp->hours / 24.0;
                glp_set_row_bnds(P, b->row0 + b->nh + j, GLP_FX, d, d);
            }
            memset(price + f * nn, 0, sizeof(int64_t) * nn);
            memset(flow + f * nn, 0, sizeof(double) * nn);
            if (solve_blocks(P, b, 1, nn, price, flow, true))
                return;
        }
        glp_delete_prob(P);
        free_block(b);
        lp->warm[f] = NULL;
    }
    memset(price + f * nn, 0, sizeof(int64_t) * nn);
    memset(flow + f * nn, 0, sizeof(double) * nn);
    P = glp_create_prob();
    glp_set_obj_dir(P, GLP_MIN);
    if (build_block(lp, P, f, atp, b) && solve_blocks(P, b, 1, nn, price, flow, false)) {
        lp->warm[f] = P;
        return;
    }
    if (b->holders)
        free_block(b);
    memset(b, 0, sizeof *b);
    glp_delete_prob(P);
}

void omo_price_lp_snapshot(const omo_price_lp *lp, omo_inventory *inv, int64_t *atp)
{
    const omo_network *net = lp->net;
    const omo_rules *R = lp->rules;
    size_t nn = net->nnodes;
    memset(atp, 0, sizeof(int64_t) * nn * lp->la->nskus);
    for (size_t f = 0; f < lp->la->nskus; f++) {
        const char *name = lp->la->skus[f].sku;
        int sku = omo_inventory_sku(inv, name, false);
        if (sku < 0)
            continue;
        size_t nrec;
        const int *recs = omo_inventory_records_of(inv, sku, &nrec);
        for (size_t i = 0; i < nrec; i++) {
            const omo_stock *st = omo_inventory_at(inv, recs[i]);
            const omo_node *nd = &net->nodes[st->node];
            int64_t safety = nd->safety_stock;
            for (size_t r = 0; r < R->nrules; r++) {
                const omo_rule *ru = &R->rules[r];
                if (ru->safety_stock < 0 || ru->channel || ru->service ||
                    (ru->sku && strcmp(ru->sku, name)) ||
                    (ru->sku_tag && !omo_network_sku_has_tag(net, name, ru->sku_tag)) ||
                    (ru->node >= 0 && ru->node != st->node) ||
                    (ru->node_type >= 0 && ru->node_type != (int)nd->type))
                    continue;
                safety = ru->safety_stock;
            }
            int64_t a = st->on_hand - st->reserved - safety;
            atp[f * nn + (size_t)st->node] = a > 0 ? a : 0;
        }
    }
}

/* ---- prices in a running engine -------------------------------------------------------- */

struct omo_lookahead_run {
    const omo_lookahead *la;
    omo_price_lp *lp;
    size_t nn, nf;
    int64_t weight_micro; /* weight in millionths */
    /* in effect */
    int64_t *price; /* [f * nn + n], unweighted micro; NULL until the first prices take effect */
    /* being computed, by a thread of the run's own (GLPK's problems live in the thread that
     * made them, and each SKU's is kept for the next refresh) */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool threaded;  /* the thread is there; else the engine's thread computes */
    bool job, quit; /* under mu: a snapshot to price; the run is ending */
    bool pending;   /* a snapshot was taken; its prices take effect at due */
    uint64_t due;   /* the applied count at which the prices being computed take effect */
    int64_t *atp;   /* the snapshot */
    int64_t *next;  /* the result */
    int64_t *last_atp, *last_price; /* the previous snapshot and its prices */
    double *last_flow;              /* what each node shipped in the solution they came from */
    bool have_last;
    double last_hours;
};

static size_t cells(const omo_lookahead_run *run)
{
    return run->nn * run->nf > 0 ? run->nn * run->nf : 1;
}

/* Whether the last solution of SKU f is still optimal, with the same duals, for ATP a: the
 * demand is the same, and every node's ATP either is unchanged, or changed where the last
 * solution left room (so its dual was 0) and still covers what it shipped. */
static bool still_optimal(const omo_lookahead_run *run, size_t f, const int64_t *a)
{
    size_t nn = run->nn;
    const int64_t *was = run->last_atp + f * nn, *p = run->last_price + f * nn;
    const double *fl = run->last_flow + f * nn;
    if (!run->have_last || run->last_hours != run->lp->hours)
        return false;
    for (size_t n = 0; n < nn; n++)
        if (a[n] != was[n] &&
            !(p[n] == 0 && fl[n] < (double)was[n] - 1e-9 && (double)a[n] >= fl[n] - 1e-9))
            return false;
    return true;
}

/* The next prices: a SKU whose last solution is still optimal keeps its prices (and what each
 * node shipped in it), the others are solved again from their last basis. */
static void compute(omo_lookahead_run *run)
{
    size_t nn = run->nn;
    for (size_t f = 0; f < run->nf; f++) {
        const int64_t *a = run->atp + f * nn;
        if (still_optimal(run, f, a))
            memcpy(run->next + f * nn, run->last_price + f * nn, sizeof(int64_t) * nn);
        else
            omo_price_lp_solve_warm(run->lp, run->atp, f, run->next, run->last_flow);
    }
    memcpy(run->last_atp, run->atp, sizeof(int64_t) * cells(run));
    memcpy(run->last_price, run->next, sizeof(int64_t) * cells(run));
    run->have_last = true;
    run->last_hours = run->lp->hours;
}

static void *price_thread(void *arg)
{
    omo_lookahead_run *run = arg;
    pthread_mutex_lock(&run->mu);
    for (;;) {
        while (!run->job && !run->quit)
            pthread_cond_wait(&run->cv, &run->mu);
        if (!run->job)
            break;
        pthread_mutex_unlock(&run->mu);
        compute(run);
        pthread_mutex_lock(&run->mu);
        run->job = false;
        pthread_cond_broadcast(&run->cv);
    }
    pthread_mutex_unlock(&run->mu);
    omo_price_lp_drop_warm(run->lp);
    glp_free_env(); /* GLPK's memory of this thread */
    return NULL;
}

/* Waits until the snapshot in hand is priced. */
static void finish(omo_lookahead_run *run)
{
    if (!run->threaded)
        return;
    pthread_mutex_lock(&run->mu);
    while (run->job)
        pthread_cond_wait(&run->cv, &run->mu);
    pthread_mutex_unlock(&run->mu);
}

omo_lookahead_run *omo_lookahead_run_create(const omo_network *net, const omo_rules *rules)
{
    if (!rules->lookahead || rules->lookahead->weight <= 0 || rules->lookahead->nskus == 0)
        return NULL;
    omo_lookahead_run *run = omo_xcalloc(1, sizeof *run);
    run->la = rules->lookahead;
    run->lp = omo_price_lp_create(net, rules);
    run->nn = net->nnodes;
    run->nf = run->la->nskus;
    run->weight_micro = llround(run->la->weight * OMO_MICRO);
    run->atp = omo_xmalloc(sizeof(int64_t) * cells(run));
    run->next = omo_xmalloc(sizeof(int64_t) * cells(run));
    run->last_atp = omo_xmalloc(sizeof(int64_t) * cells(run));
    run->last_price = omo_xmalloc(sizeof(int64_t) * cells(run));
    run->last_flow = omo_xcalloc(cells(run), sizeof(double));
    pthread_mutex_init(&run->mu, NULL);
    pthread_cond_init(&run->cv, NULL);
    /* Without a thread to be had, the engine's computes the same prices at the same events. */
    run->threaded = pthread_create(&run->thread, NULL, price_thread, run) == 0;
    return run;
}

void omo_lookahead_run_destroy(omo_lookahead_run *run)
{
    if (!run)
        return;
    if (run->threaded) {
        pthread_mutex_lock(&run->mu);
        run->quit = true;
        pthread_cond_broadcast(&run->cv);
        pthread_mutex_unlock(&run->mu);
        pthread_join(run->thread, NULL);
    }
    pthread_mutex_destroy(&run->mu);
    pthread_cond_destroy(&run->cv);
    omo_price_lp_destroy(run->lp);
    free(run->price);
    free(run->atp);
    free(run->next);
    free(run->last_atp);
    free(run->last_price);
    free(run->last_flow);
    free(run);
}

void omo_lookahead_run_applied(omo_lookahead_run *run, uint64_t applied, omo_inventory *inv,
                               int64_t now_ms)
{
    if (!run)
        return;
    uint64_t every = (uint64_t)run->la->refresh_events;
    if (run->pending && applied >= run->due) {
        finish(run);
        int64_t *t = run->price;
        run->price = run->next;
        run->next = t ? t : omo_xmalloc(sizeof(int64_t) * cells(run));
        run->pending = false;
    }
    if (applied % every == 0 && !run->pending) {
        omo_price_lp_snapshot(run->lp, inv, run->atp);
        double hours = run->la->horizon_hours;
        if (run->la->horizon_end_ms) {
            double left = (double)(run->la->horizon_end_ms - now_ms) / 3.6e6;
            hours = left < 0 ? 0 : left < hours ? left : hours;
        }
        omo_price_lp_set_hours(run->lp, hours);
        run->due = applied + every;
        run->pending = true;
        if (run->threaded) {
            pthread_mutex_lock(&run->mu);
            run->job = true;
            pthread_cond_broadcast(&run->cv);
            pthread_mutex_unlock(&run->mu);
        } else {
            compute(run);
        }
    }
}

int omo_lookahead_run_sku(const omo_lookahead_run *run, const char *sku)
{
    return run && run->price ? omo_strmap_get(&run->la->sku_index, sku) : -1;
}

int64_t omo_lookahead_run_price(const omo_lookahead_run *run, int fsku, int node)
{
    if (!run || !run->price || fsku < 0)
        return 0;
    int64_t p = run->price[(size_t)fsku * run->nn + (size_t)node];
    /* weight x price, rounded half away from zero */
    return p ? (int64_t)llround((double)p * (double)run->weight_micro / OMO_MICRO) : 0;
}
