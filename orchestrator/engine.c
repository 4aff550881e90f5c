#include "engine.h"

#include "lookahead.h"
#include "solver.h"
#include "strbuf.h"
#include "tz.h"

#include <jansson.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct order_rec {
    char *id;
    int64_t created_ms;
    char channel[OMO_ID_MAX + 1];
    char service[OMO_ID_MAX + 1]; /* "pickup" for pickup orders */
    bool pickup;
    int store;
    double lat, lon;
    int nlines;
    omo_line *lines;
    int *sku;   /* per line: interned SKU */
    int *group; /* per line: index of its SKU group */
    int ngroups;
    int *group_line; /* per group: its first line */

    omo_alloc_status status;
    const char *reason;
    int revision;
    int64_t objective;
    int64_t decided_ms;
    bool unproven;              /* the solver's budget ran out: bounds below */
    int64_t bound, units_bound; /* nano; units */
    omo_shipment *ships;
    int nships;
    size_t capships;
    int next_seq;
    int64_t *backordered; /* per line */
    unsigned stamp;
} order_rec;

/* A saved allocation, to put back when a retry gains nothing. */
typedef struct saved_alloc {
    omo_alloc_status status;
    const char *reason;
    int64_t objective, decided_ms;
    bool unproven;
    int64_t bound, units_bound;
    omo_shipment *ships;
    int nships;
    int64_t *backordered;
} saved_alloc;

typedef struct int_vec {
    int *v;
    size_t n, cap;
} int_vec;

/* Everything one decision writes while it builds and solves its problem. The service thread
 * has one in the engine; every reader has its own, so that promises run beside each other. */
typedef struct scratch {
    unsigned stamp;
    unsigned *node_stamp; /* per node */
    int *node_cand;       /* per node */
    omo_cand *cands;
    size_t capcands;
    int64_t *atp_pool;
    int64_t *price_pool;
    unsigned char *ok_pool;
    size_t cap_atp, cap_ok, cap_price;
    int64_t *safety_pool;
    size_t cap_safety;
    unsigned char *rule_order_ok;
    unsigned char *rule_line_ok;
    size_t cap_rule_order, cap_rule_line;
    int64_t qty[OMO_MAX_LINES];
    omo_method *methods; /* per candidate */
    size_t capmethods;
    unsigned *region_stamp; /* per region: decision that listed it */
    int *region_pass;       /* per region: the gathering pass that takes it */
    int64_t *region_lb;     /* per region: lower bound of any plan using one of its nodes */
    int *region_order;      /* the listed regions */
    double target[3];
    double *zone_cos; /* per zone of the service in use: cos(max_km / R), and its sine */
    double *zone_sin;
    size_t cap_zone_cos, cap_zone_sin;
    unsigned tz_stamp[256]; /* local day per time zone, for the decision being made */
    int64_t tz_day[256];
    omo_solver *sv;
} scratch;

static void scratch_init(scratch *sc, size_t nnodes, size_t nregions)
{
    memset(sc, 0, sizeof *sc);
    nnodes = nnodes ? nnodes : 1;
    nregions = nregions ? nregions : 1;
    sc->node_stamp = omo_xcalloc(nnodes, sizeof(unsigned));
    sc->node_cand = omo_xcalloc(nnodes, sizeof(int));
    sc->region_stamp = omo_xcalloc(nregions, sizeof(unsigned));
    sc->region_pass = omo_xcalloc(nregions, sizeof(int));
    sc->region_lb = omo_xcalloc(nregions, sizeof(int64_t));
    sc->region_order = omo_xcalloc(nregions, sizeof(int));
    sc->sv = omo_solver_create();
}

static void scratch_free(scratch *sc)
{
    free(sc->node_stamp);
    free(sc->node_cand);
    free(sc->cands);
    free(sc->atp_pool);
    free(sc->price_pool);
    free(sc->ok_pool);
    free(sc->safety_pool);
    free(sc->rule_order_ok);
    free(sc->rule_line_ok);
    free(sc->methods);
    free(sc->region_stamp);
    free(sc->region_pass);
    free(sc->region_lb);
    free(sc->region_order);
    free(sc->zone_cos);
    free(sc->zone_sin);
    omo_solver_destroy(sc->sv);
}

/* ---- holds and pauses: state of their own, applied as events ---------------------------- */

/* Units a hold keeps from everyone else at one node. */
typedef struct hold_unit {
    int node, sku;
    int64_t qty;
} hold_unit;

/* A checkout hold (hold.placed): the plan decided for its basket, its units counted as held at
 * their nodes until it is released, expires, or an order naming it arrives. */
typedef struct hold_rec {
    char *id;
    int64_t placed_ms, expires_ms;
    hold_unit *units;
    int nunits;
    char *option; /* the plan as JSON (an option of POST /promise), for repeated requests */
    bool live;
} hold_rec;

typedef struct holds_state {
    hold_rec *v;
    size_t n, cap;
    omo_strmap ids; /* hold id -> index into v (gone ones stay, not live) */
    size_t live;
} holds_state;

/* A node closed for new units (node.paused). */
typedef struct pause_rec {
    bool on;
    char reason[OMO_PAUSE_REASON_MAX + 1];
    int64_t until_ms; /* when to resume by itself, or 0 */
} pause_rec;

struct omo_engine {
    const omo_network *net;
    const omo_rules *rules;
    omo_sink_fn sink;
    void *sink_ctx;
    omo_status_fn status_sink;
    void *status_ctx;
    omo_inventory *inv;
    omo_solver *sv;
    omo_lookahead_run *la; /* look-ahead prices, NULL when the rules have none */
    uint64_t applied;      /* events that took effect: the clock of price refreshes */
    omo_solver *sv_myopic; /* explanations: the choice without prices */

    order_rec *orders;
    size_t norders, caporders;
    omo_strmap order_ids;
    omo_hashset event_ids;
    int_vec *backlog; /* per SKU: orders that had units of it backordered */
    size_t capbacklog;

    /* The service thread's scratch; a reader (omo_reader) decides with its own. */
    scratch sc;
    /* While re-sourcing a short pick: that node is not asked again for the SKUs it lacked. */
    int avoid_node;
    int avoid_skus[OMO_MAX_LINES];
    int navoid;
    omo_shipment *emit_ships; /* the shipments with units, for the revision being emitted */
    size_t cap_emit_ships;
    int *prev_node, *prev_seq; /* shipment ids of the allocation being replaced */
    int nprev;
    size_t capprev;
    int_vec retry;

    double *unit; /* per node: position on the unit sphere (x, y, z) */
    /* Regions: nodes grouped by a 5-degree grid, each with a centre and a radius (the largest
     * angle from the centre to a member), so that a whole region's holders can be skipped when
     * no node in it can beat the plan in hand. */
    int nregions;
    int *region_of;        /* per node */
    double *region_centre; /* per region: unit vector */
    double *region_rho;    /* per region: radians */
    double *region_cos_rho, *region_sin_rho;
    int64_t *region_handling; /* per region: least handling cost, micro */
    int64_t *region_hours;    /* per region: least handling hours, milli */
    int64_t *region_pick;     /* per region: least pick cost, micro */
    uint64_t regions_skipped;
    bool exhaustive; /* look at every region: for checking that skipping changes nothing */
    uint64_t search_budget, mip_budget; /* the solver's budgets; 0: its defaults */
    /* A copy of the engine a reader decides in (omo_engine_promise): it reserves nothing and
     * writes nothing shared. */
    bool view;

    holds_state holds;
    pause_rec *paused; /* per node */

    /* explanations */
    char *explain_id;
    omo_explain_fn explain_fn;
    void *explain_ctx;
    omo_explanation *pending_ex; /* built by decide, handed over when the decision is emitted */
    int pending_ex_order;

    int64_t clock_ms;
    omo_engine_stats stats;
};

static void drop_explanation(omo_engine *eng);

const char *omo_ship_state_name(omo_ship_state s)
{
    static const char *names[] = {"allocated", "picked",    "short",
                                  "shipped",   "collected", "cancelled"};
    return names[s];
}

/* The one place a shipment changes state: refuses every move the life cycle does not have. */
static bool ship_move(omo_shipment *sh, omo_ship_state to, int64_t units)
{
    bool ok;
    switch (sh->state) {
    case OMO_SHIP_ALLOCATED:
        ok = to == OMO_SHIP_PICKED || to == OMO_SHIP_SHORT || to == OMO_SHIP_CANCELLED;
        break;
    case OMO_SHIP_PICKED:
        ok = to == OMO_SHIP_SHIPPED || to == OMO_SHIP_COLLECTED || to == OMO_SHIP_CANCELLED;
        break;
    case OMO_SHIP_SHORT:
        ok = ((to == OMO_SHIP_SHIPPED || to == OMO_SHIP_COLLECTED) && units > 0) ||
             to == OMO_SHIP_CANCELLED;
        break;
    default:
        ok = false;
    }
    if (ok)
        sh->state = to;
    return ok;
}

/* A shipment whose units may no longer move to another node: picked, or partly fulfilled. */
static bool ship_locked(const omo_shipment *sh, int nlines)
{
    if (sh->state != OMO_SHIP_ALLOCATED)
        return true;
    for (int l = 0; l < nlines; l++)
        if (sh->done[l])
            return true;
    return false;
}

const char *omo_alloc_status_name(omo_alloc_status s)
{
    static const char *names[] = {"allocated", "partial", "backordered", "rejected", "cancelled"};
    return names[s];
}

#define EARTH_KM 6371.0

static void unit_vector(double lat, double lon, double *v)
{
    const double rad = M_PI / 180.0;
    v[0] = cos(lat * rad) * cos(lon * rad);
    v[1] = cos(lat * rad) * sin(lon * rad);
    v[2] = sin(lat * rad);
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static double angle_between(const double *a, const double *b)
{
    double dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    return acos(dot > 1.0 ? 1.0 : dot < -1.0 ? -1.0 : dot);
}

/* Groups the nodes into regions of a 5-degree grid and tells the inventory. */
static void build_regions(omo_engine *eng)
{
    const omo_network *net = eng->net;
    size_t nn = net->nnodes ? net->nnodes : 1;
    eng->region_of = omo_xmalloc(sizeof(int) * nn);
    int *cell_region = omo_xmalloc(sizeof(int) * 36 * 72);
    for (int i = 0; i < 36 * 72; i++)
        cell_region[i] = -1;
    for (size_t n = 0; n < net->nnodes; n++) {
        int row = (int)((net->nodes[n].lat + 90.0) / 5.0),
            col = (int)((net->nodes[n].lon + 180.0) / 5.0);
        row = row < 0 ? 0 : row > 35 ? 35 : row;
        col = col < 0 ? 0 : col > 71 ? 71 : col;
        int *cell = &cell_region[row * 72 + col];
        if (*cell < 0)
            *cell = eng->nregions++;
        eng->region_of[n] = *cell;
    }
    free(cell_region);
    size_t nr = (size_t)(eng->nregions ? eng->nregions : 1);
    eng->region_centre = omo_xcalloc(3 * nr, sizeof(double));
    eng->region_rho = omo_xcalloc(nr, sizeof(double));
    eng->region_handling = omo_xmalloc(sizeof(int64_t) * nr);
    eng->region_hours = omo_xmalloc(sizeof(int64_t) * nr);
    eng->region_pick = omo_xmalloc(sizeof(int64_t) * nr);
    for (size_t r = 0; r < nr; r++)
        eng->region_handling[r] = eng->region_hours[r] = eng->region_pick[r] = INT64_MAX;
    for (size_t n = 0; n < net->nnodes; n++) {
        int r = eng->region_of[n];
        const omo_node *nd = &net->nodes[n];
        for (int k = 0; k < 3; k++)
            eng->region_centre[3 * r + k] += eng->unit[3 * n + k];
        eng->region_handling[r] = min64(eng->region_handling[r], nd->handling_cost);
        eng->region_hours[r] = min64(eng->region_hours[r], nd->handling_hours);
        eng->region_pick[r] = min64(eng->region_pick[r], nd->pick_cost_per_unit);
    }
    for (size_t r = 0; r < nr; r++) {
        double *c = &eng->region_centre[3 * r];
        double len = sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]);
        for (int k = 0; k < 3 && len > 0; k++)
            c[k] /= len;
    }
    for (size_t n = 0; n < net->nnodes; n++) {
        int r = eng->region_of[n];
        double a = angle_between(&eng->region_centre[3 * r], &eng->unit[3 * n]);
        if (a > eng->region_rho[r])
            eng->region_rho[r] = a;
    }
    eng->region_cos_rho = omo_xmalloc(sizeof(double) * nr);
    eng->region_sin_rho = omo_xmalloc(sizeof(double) * nr);
    for (size_t r = 0; r < nr; r++) {
        eng->region_rho[r] += 1e-9; /* rounding must not make a member look nearer */
        eng->region_cos_rho[r] = cos(eng->region_rho[r]);
        eng->region_sin_rho[r] = sin(eng->region_rho[r]);
    }
    omo_inventory_set_regions(eng->inv, eng->region_of, net->nnodes);
}

static void vec_push(int_vec *v, int x)
{
    omo_grow((void **)&v->v, &v->cap, v->n + 1, sizeof(int));
    v->v[v->n++] = x;
}

omo_engine *omo_engine_create(const omo_network *net, const omo_rules *rules, omo_sink_fn sink,
                              void *sink_ctx)
{
    omo_engine *eng = omo_xcalloc(1, sizeof *eng);
    eng->net = net;
    eng->rules = rules;
    eng->sink = sink;
    eng->sink_ctx = sink_ctx;
    eng->inv = omo_inventory_create();
    eng->avoid_node = -1;
    eng->unit = omo_xmalloc(sizeof(double) * 3 * (net->nnodes ? net->nnodes : 1));
    for (size_t n = 0; n < net->nnodes; n++)
        unit_vector(net->nodes[n].lat, net->nodes[n].lon, &eng->unit[3 * n]);
    build_regions(eng);
    scratch_init(&eng->sc, net->nnodes, (size_t)eng->nregions);
    eng->la = omo_lookahead_run_create(net, rules);
    eng->paused = omo_xcalloc(net->nnodes ? net->nnodes : 1, sizeof(pause_rec));
    return eng;
}

static void free_ships(omo_shipment *ships, int n)
{
    for (int s = 0; s < n; s++) {
        free(ships[s].qty); /* done lives in the same block */
    }
}

void omo_engine_destroy(omo_engine *eng)
{
    if (!eng)
        return;
    for (size_t i = 0; i < eng->norders; i++) {
        order_rec *o = &eng->orders[i];
        free(o->lines); /* the order's id and arrays: one block */
        free_ships(o->ships, o->nships);
        free(o->ships);
    }
    free(eng->orders);
    for (size_t i = 0; i < eng->capbacklog; i++)
        free(eng->backlog[i].v);
    free(eng->backlog);
    free(eng->retry.v);
    free(eng->emit_ships);
    free(eng->prev_node);
    free(eng->prev_seq);
    omo_strmap_free(&eng->order_ids);
    omo_hashset_free(&eng->event_ids);
    omo_inventory_destroy(eng->inv);
    scratch_free(&eng->sc);
    omo_solver_destroy(eng->sv_myopic);
    omo_lookahead_run_destroy(eng->la);
    for (size_t i = 0; i < eng->holds.n; i++) {
        free(eng->holds.v[i].id);
        free(eng->holds.v[i].units);
        free(eng->holds.v[i].option);
    }
    free(eng->holds.v);
    omo_strmap_free(&eng->holds.ids);
    free(eng->paused);
    free(eng->unit);
    free(eng->region_of);
    free(eng->region_centre);
    free(eng->region_rho);
    free(eng->region_cos_rho);
    free(eng->region_sin_rho);
    free(eng->region_handling);
    free(eng->region_hours);
    free(eng->region_pick);
    free(eng->explain_id);
    drop_explanation(eng);
    free(eng);
}

void omo_engine_set_rules(omo_engine *eng, const omo_rules *rules)
{
    if (rules == eng->rules)
        return;
    /* Prices belong to the rules' forecast and weight: new rules start their own cycle. */
    omo_lookahead_run_destroy(eng->la);
    eng->la = omo_lookahead_run_create(eng->net, rules);
    eng->rules = rules;
}

const omo_engine_stats *omo_engine_stats_get(const omo_engine *eng)
{
    return &eng->stats;
}

omo_inventory *omo_engine_inventory(omo_engine *eng)
{
    return eng->inv;
}

/* Prepares zone_for for the service's zones and the point the distances are measured to. */
static void zones_prepare(omo_engine *eng, const omo_service *svc, double lat, double lon)
{
    unit_vector(lat, lon, eng->sc.target);
    if (!svc)
        return;
    omo_grow((void **)&eng->sc.zone_cos, &eng->sc.cap_zone_cos, svc->nzones + 1, sizeof(double));
    omo_grow((void **)&eng->sc.zone_sin, &eng->sc.cap_zone_sin, svc->nzones + 1, sizeof(double));
    for (size_t z = 0; z < svc->nzones; z++) {
        double ang = svc->zones[z].max_km / EARTH_KM;
        eng->sc.zone_cos[z] = ang >= M_PI ? -2.0 : cos(ang);
        eng->sc.zone_sin[z] = ang >= M_PI ? 0.0 : sin(ang);
    }
}

/* The first zone covering the great-circle distance from node n to the prepared point. The dot
 * product of unit vectors decides; only within rounding of a zone's edge is the distance itself
 * computed, so the answer is the one the haversine distance gives. */
static const omo_zone *zone_for(const omo_engine *eng, const omo_service *svc, int n, double lat,
                                double lon)
{
    const double *u = &eng->unit[3 * n];
    double dot = u[0] * eng->sc.target[0] + u[1] * eng->sc.target[1] + u[2] * eng->sc.target[2];
    for (size_t z = 0; z < svc->nzones; z++) {
        double c = eng->sc.zone_cos[z];
        if (dot > c + 1e-9)
            return &svc->zones[z];
        if (dot >= c - 1e-9) {
            const omo_node *nd = &eng->net->nodes[n];
            if (omo_distance_km(nd->lat, nd->lon, lat, lon) <= svc->zones[z].max_km)
                return &svc->zones[z];
        }
    }
    return NULL;
}

/* The local day of now at node n, cached per time zone for the decision being made. */
static int64_t local_day(omo_engine *eng, int n, int64_t now)
{
    int tz = eng->net->nodes[n].tz;
    if (tz < 0 || tz >= 256)
        return omo_tz_local_day(tz, now);
    if (eng->sc.tz_stamp[tz] != eng->sc.stamp) {
        eng->sc.tz_stamp[tz] = eng->sc.stamp;
        eng->sc.tz_day[tz] = omo_tz_local_day(tz, now);
    }
    return eng->sc.tz_day[tz];
}

/* Units node n took on its local day. A reader must not touch the inventory's cache. */
static int64_t day_used(const omo_engine *eng, int n, int64_t day)
{
    return eng->view ? omo_inventory_day_peek(eng->inv, n, day)
                     : omo_inventory_day_used(eng->inv, n, day);
}

/* ---- reservations ---------------------------------------------------------------------- */

static int64_t ship_units(const omo_shipment *sh, int nlines)
{
    int64_t u = 0;
    for (int l = 0; l < nlines; l++)
        u += sh->qty[l];
    return u;
}

/* Reserves the unfulfilled units of the order's shipments and counts them against capacity. */
/* Shipments that hold units (a short one may hold none). */
static int parcels(const order_rec *o)
{
    int n = 0;
    for (int s = 0; s < o->nships; s++)
        n += ship_units(&o->ships[s], o->nlines) > 0;
    return n;
}

static bool ship_open(const omo_shipment *sh)
{
    return sh->state == OMO_SHIP_ALLOCATED || sh->state == OMO_SHIP_PICKED ||
           sh->state == OMO_SHIP_SHORT;
}

/* Adds (sign 1) or removes (sign -1) a shipment's open units to the reservations and to its
 * node's capacity on its day. */
static void account_ship(omo_engine *eng, int oi, omo_shipment *sh, int sign)
{
    order_rec *o = &eng->orders[oi];
    int64_t open = 0;
    for (int l = 0; l < o->nlines; l++) {
        int64_t u = sh->qty[l] - sh->done[l];
        if (u <= 0)
            continue;
        omo_stock *st = omo_inventory_get(eng->inv, sh->node, o->sku[l], true);
        st->reserved += sign * u;
        if (sign > 0)
            omo_stock_hold(st, oi);
        else
            omo_stock_unhold(st, oi);
        omo_inventory_touch(eng->inv, st);
        open += u;
    }
    if (open)
        omo_inventory_day_add(eng->inv, sh->node, sh->day, sign * open);
    sh->reserved = sign > 0;
}

/* Reserves the open units of the order's shipments not yet reserved. */
static void reserve_order(omo_engine *eng, int oi)
{
    order_rec *o = &eng->orders[oi];
    for (int s = 0; s < o->nships; s++)
        if (!o->ships[s].reserved && ship_open(&o->ships[s]))
            account_ship(eng, oi, &o->ships[s], 1);
}

/* Releases the reservations (and capacity) of the shipments that may move, and drops them;
 * locked shipments stay as they are. With everything, releases every open shipment too and
 * marks it cancelled (the order is cancelled), emitting its status. */
static void release_order(omo_engine *eng, int oi, bool everything, int64_t now);

static void emit_status(omo_engine *eng, int oi, const omo_shipment *sh, int64_t now)
{
    order_rec *o = &eng->orders[oi];
    if (!eng->status_sink)
        return;
    omo_shipment_status st = {o->id, sh->seq,  sh->node, sh->state,
                              now,   o->lines, sh->qty,  o->nlines};
    eng->status_sink(eng->status_ctx, &st);
}

static void release_order(omo_engine *eng, int oi, bool everything, int64_t now)
{
    order_rec *o = &eng->orders[oi];
    int keep = 0;
    if ((size_t)o->nships + 1 > eng->capprev) {
        eng->capprev = (size_t)o->nships * 2 + 2;
        eng->prev_node = omo_xrealloc(eng->prev_node, sizeof(int) * eng->capprev);
        eng->prev_seq = omo_xrealloc(eng->prev_seq, sizeof(int) * eng->capprev);
    }
    eng->nprev = 0;
    for (int s = 0; s < o->nships; s++) {
        omo_shipment *sh = &o->ships[s];
        bool locked = ship_locked(sh, o->nlines);
        if (everything && ship_open(sh)) {
            if (sh->reserved)
                account_ship(eng, oi, sh, -1);
            ship_move(sh, OMO_SHIP_CANCELLED, 0);
            emit_status(eng, oi, sh, now);
        } else if (!everything && !locked) {
            if (sh->reserved)
                account_ship(eng, oi, sh, -1);
            /* Its id goes to the next shipment at the same node. */
            eng->prev_node[eng->nprev] = sh->node;
            eng->prev_seq[eng->nprev++] = sh->seq;
            free_ships(sh, 1);
            continue;
        }
        o->ships[keep++] = *sh;
    }
    o->nships = keep;
}

static void copy_ships(omo_shipment *dst, const omo_shipment *src, int n, int nlines)
{
    for (int s = 0; s < n; s++) {
        dst[s] = src[s];
        dst[s].qty = omo_xmalloc(2 * sizeof(int64_t) * (size_t)nlines);
        dst[s].done = dst[s].qty + nlines;
        memcpy(dst[s].qty, src[s].qty, sizeof(int64_t) * (size_t)nlines);
        memcpy(dst[s].done, src[s].done, sizeof(int64_t) * (size_t)nlines);
    }
}

static void save_alloc(const order_rec *o, saved_alloc *sa)
{
    sa->status = o->status;
    sa->reason = o->reason;
    sa->objective = o->objective;
    sa->decided_ms = o->decided_ms;
    sa->unproven = o->unproven;
    sa->bound = o->bound;
    sa->units_bound = o->units_bound;
    sa->nships = o->nships;
    sa->ships = omo_xmalloc(sizeof(omo_shipment) * (size_t)(o->nships ? o->nships : 1));
    copy_ships(sa->ships, o->ships, o->nships, o->nlines);
    sa->backordered = omo_xmalloc(sizeof(int64_t) * (size_t)o->nlines);
    memcpy(sa->backordered, o->backordered, sizeof(int64_t) * (size_t)o->nlines);
}

static void restore_alloc(order_rec *o, saved_alloc *sa)
{
    free_ships(o->ships, o->nships);
    o->nships = 0;
    omo_grow((void **)&o->ships, &o->capships, (size_t)sa->nships, sizeof(omo_shipment));
    if (sa->nships)
        memcpy(o->ships, sa->ships, sizeof(omo_shipment) * (size_t)sa->nships);
    o->nships = sa->nships;
    /* Locked shipments were never released; the others are reserved again by the caller. */
    for (int s = 0; s < o->nships; s++)
        o->ships[s].reserved = ship_locked(&o->ships[s], o->nlines);
    free(sa->ships);
    o->status = sa->status;
    o->reason = sa->reason;
    o->objective = sa->objective;
    o->decided_ms = sa->decided_ms;
    o->unproven = sa->unproven;
    o->bound = sa->bound;
    o->units_bound = sa->units_bound;
    memcpy(o->backordered, sa->backordered, sizeof(int64_t) * (size_t)o->nlines);
    free(sa->backordered);
}

static void drop_saved(saved_alloc *sa)
{
    free_ships(sa->ships, sa->nships);
    free(sa->ships);
    free(sa->backordered);
}

/* ---- deciding -------------------------------------------------------------------------- */

static bool rule_matches_order(const omo_rule *r, const order_rec *o)
{
    if (r->channel && strcmp(r->channel, o->channel))
        return false;
    if (r->service && strcmp(r->service, o->service))
        return false;
    return true;
}

static bool rule_matches_sku(const omo_engine *eng, const omo_rule *r, const char *sku)
{
    if (r->sku && strcmp(r->sku, sku))
        return false;
    if (r->sku_tag && !omo_network_sku_has_tag(eng->net, sku, r->sku_tag))
        return false;
    return true;
}

/* Terms of node n for order o (method, fixed cost, hours), or false when its method, service
 * or zone rules it out. */
/* Terms of node n for order o (method, fixed cost, hours), or false when its method, service
 * or zone rules it out; then *why (when asked for) says which. */
static bool node_terms(const omo_engine *eng, const order_rec *o, int n, const omo_service *svc,
                       omo_method *method, int64_t *fixed, int64_t *hours, const omo_zone **zone,
                       const char **why)
{
    const omo_rules *R = eng->rules;
    const omo_node *nd = &eng->net->nodes[n];
    const omo_zone *z;
    *zone = NULL;
    if (o->pickup) {
        *method = OMO_METHOD_CLICK_AND_COLLECT;
        if (n == o->store) {
            *fixed = nd->handling_cost;
            *hours = nd->handling_hours;
            return true;
        }
        if (!R->has_transfer || !(R->transfer.from_mask & OMO_TYPE_BIT(nd->type))) {
            if (why)
                *why = R->has_transfer ? "pickup.transfer.from does not list its type"
                                       : "no pickup.transfer: only the pickup store serves";
            return false;
        }
        const omo_node *p = &eng->net->nodes[o->store];
        z = zone_for(eng, &R->transfer, n, p->lat, p->lon);
    } else {
        *method =
            nd->type == OMO_NODE_WAREHOUSE ? OMO_METHOD_WAREHOUSE : OMO_METHOD_SHIP_FROM_STORE;
        if (!nd->ship || !(svc->from_mask & OMO_TYPE_BIT(nd->type))) {
            if (why)
                *why = !nd->ship ? "ship: false" : "the service's `from` does not list its type";
            return false;
        }
        z = zone_for(eng, svc, n, o->lat, o->lon);
    }
    if (!z) {
        if (why)
            *why = "zone: beyond the last zone";
        return false;
    }
    *zone = z;
    *fixed = z->cost + nd->handling_cost;
    *hours = nd->handling_hours + z->hours;
    return true;
}

/* What the rules said about one (order, node, line), for explanations. */
typedef struct rule_verdict {
    const omo_rule *blocked_by;
    const char *action; /* allow_node_types, deny_nodes or deny_methods */
    const omo_rule *safety_from;
} rule_verdict;

/* The rules' verdict on (order, node, line): eligible or not, and the safety stock. */
static bool rules_allow(const omo_engine *eng, int n, omo_method method, int l, int64_t *safety,
                        rule_verdict *v)
{
    const omo_rules *R = eng->rules;
    const omo_node *nd = &eng->net->nodes[n];
    bool ok = true;
    *safety = nd->safety_stock;
    for (size_t r = 0; r < R->nrules; r++) {
        const omo_rule *ru = &R->rules[r];
        if (!eng->sc.rule_order_ok[r] || !eng->sc.rule_line_ok[(size_t)l * R->nrules + r])
            continue;
        if ((ru->node >= 0 && ru->node != n) ||
            (ru->node_type >= 0 && ru->node_type != (int)nd->type))
            continue;
        const char *action = NULL;
        if (ru->allow_node_types && !(ru->allow_node_types & OMO_TYPE_BIT(nd->type)))
            action = "allow_node_types";
        for (size_t d = 0; d < ru->ndeny_nodes; d++)
            if (ru->deny_nodes[d] == n)
                action = "deny_nodes";
        if (ru->deny_methods & OMO_METHOD_BIT(method))
            action = "deny_methods";
        if (action && ok && v) {
            v->blocked_by = ru;
            v->action = action;
        }
        ok &= !action;
        if (ru->safety_stock >= 0) {
            *safety = ru->safety_stock;
            if (v)
                v->safety_from = ru;
        }
    }
    return ok;
}

static int cmp_ship_node(const void *a, const void *b)
{
    return ((const omo_shipment *)a)->node - ((const omo_shipment *)b)->node;
}

static int64_t order_units(const order_rec *o)
{
    int64_t u = 0;
    for (int s = 0; s < o->nships; s++)
        u += ship_units(&o->ships[s], o->nlines);
    return u;
}

static void backlog_add(omo_engine *eng, int sku, int oi)
{
    if ((size_t)sku >= eng->capbacklog) {
        size_t ncap = eng->capbacklog ? eng->capbacklog : 64;
        while (ncap <= (size_t)sku)
            ncap *= 2;
        eng->backlog = omo_xrealloc(eng->backlog, sizeof(int_vec) * ncap);
        memset(eng->backlog + eng->capbacklog, 0, sizeof(int_vec) * (ncap - eng->capbacklog));
        eng->capbacklog = ncap;
    }
    int_vec *v = &eng->backlog[sku];
    if (v->n && v->v[v->n - 1] == oi)
        return;
    vec_push(v, oi);
}

/* Numbers the shipments, computes objective, backorders and status, and reserves. */
static void finish_decision(omo_engine *eng, order_rec *o, int oi)
{
    const omo_rules *R = eng->rules;
    if (o->nships > 1)
        qsort(o->ships, (size_t)o->nships, sizeof(omo_shipment), cmp_ship_node);
    for (int s = 0; s < o->nships; s++) {
        omo_shipment *sh = &o->ships[s];
        if (sh->seq)
            continue;
        for (int p = 0; p < eng->nprev; p++)
            if (eng->prev_node[p] == sh->node)
                sh->seq = eng->prev_seq[p];
        if (!sh->seq)
            sh->seq = ++o->next_seq;
    }
    eng->nprev = 0;
    /* A short shipment left with no units is no parcel: it counts for nothing. */
    int64_t obj = 0, maxh = 0, units = 0, total = 0;
    int parcels = 0;
    for (int s = 0; s < o->nships; s++) {
        const omo_shipment *sh = &o->ships[s];
        int64_t u = ship_units(sh, o->nlines);
        if (!u)
            continue;
        obj += sh->cost * 1000 + u * eng->net->nodes[sh->node].pick_cost_per_unit * 1000;
        maxh = max64(maxh, sh->hours);
        units += u;
        parcels++;
    }
    if (parcels)
        obj += R->hour_cost * maxh + R->split_penalty * 1000 * (parcels - 1);
    o->objective = obj;
    for (int l = 0; l < o->nlines; l++) {
        int64_t got = 0;
        for (int s = 0; s < o->nships; s++)
            got += o->ships[s].qty[l];
        o->backordered[l] = o->lines[l].qty - got;
        total += o->lines[l].qty;
        if (o->backordered[l] > 0 && oi >= 0)
            backlog_add(eng, o->sku[l], oi);
    }
    o->status = units == total ? OMO_ALLOC_ALLOCATED
                : units > 0    ? OMO_ALLOC_PARTIAL
                               : OMO_ALLOC_BACKORDERED;
    if (oi >= 0)
        reserve_order(eng, oi);
}

/* ---- explanations --------------------------------------------------------------------- */

static void drop_explanation(omo_engine *eng)
{
    omo_explanation *ex = eng->pending_ex;
    if (!ex)
        return;
    for (int i = 0; i < ex->nnodes; i++) {
        for (int l = 0; l < ex->nlines; l++)
            free((char *)ex->nodes[i].lines[l].excluded);
        free(ex->nodes[i].lines);
        free((char *)ex->nodes[i].excluded);
    }
    free((omo_explain_node *)ex->nodes);
    free(ex);
    eng->pending_ex = NULL;
}

static char *fmt_reason(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_reason(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return omo_xstrdup(buf);
}

static void plan_summary(const omo_engine *eng, const omo_plan *plan, omo_explain_plan *out)
{
    memset(out, 0, sizeof *out);
    if (!plan)
        return;
    out->present = true;
    out->units = plan->units;
    out->objective = plan->objective - plan->priced;
    out->priced = plan->priced;
    out->nships = plan->nships < 16 ? plan->nships : 16;
    for (int s = 0; s < out->nships; s++)
        out->nodes[s] = eng->sc.cands[plan->cand[s]].node;
}

static int64_t plan_units_at(const omo_engine *eng, const omo_plan *plan, int node, int l, int L)
{
    if (!plan)
        return 0;
    for (int s = 0; s < plan->nships; s++)
        if (eng->sc.cands[plan->cand[s]].node == node)
            return plan->take[(size_t)s * L + l];
    return 0;
}

/* Looks again, reasons kept, at every node holding one of the order's SKUs: what the solver was
 * given, and why each node or line was left out. */
static void build_explanation(omo_engine *eng, int oi, int64_t now, const omo_service *svc,
                              const omo_plan *plan, const omo_plan *runner, const omo_plan *myopic)
{
    const order_rec *o = &eng->orders[oi];
    const omo_network *net = eng->net;
    const omo_rules *R = eng->rules;
    int L = o->nlines;
    drop_explanation(eng);
    omo_explanation *ex = omo_xcalloc(1, sizeof *ex);
    eng->pending_ex = ex;
    eng->pending_ex_order = oi;
    ex->order_id = o->id;
    ex->revision = o->revision + 1;
    ex->decided_at_ms = now;
    ex->rules_version = R->version_hash;
    ex->service = o->service;
    ex->pickup_store = o->pickup ? o->store : -1;
    ex->lines = o->lines;
    ex->nlines = L;
    ex->max_shipments = R->max_shipments;
    ex->split_lines = R->split_lines;
    ex->partial_deny = R->partial_deny;
    ex->rejected = o->reason;
    plan_summary(eng, plan, &ex->chosen);
    plan_summary(eng, runner, &ex->runner_up);
    if (myopic) {
        ex->lookahead = true;
        ex->weight = R->lookahead->weight;
        plan_summary(eng, myopic, &ex->myopic);
    }
    if (o->reason)
        return;

    omo_explain_node *nodes = NULL;
    size_t nn = 0, cap = 0;
    unsigned stamp = ++eng->sc.stamp;
    for (int g = 0; g < o->ngroups; g++) {
        size_t nrec;
        const int *hnodes;
        const int64_t *hfree;
        omo_inventory_holders(eng->inv, o->sku[o->group_line[g]], &hnodes, &hfree, &nrec);
        for (size_t i = 0; i < nrec; i++) {
            int n = hnodes[i];
            if (eng->sc.node_stamp[n] == stamp)
                continue;
            eng->sc.node_stamp[n] = stamp;
            const omo_node *nd = &net->nodes[n];
            omo_grow((void **)&nodes, &cap, nn + 1, sizeof *nodes);
            omo_explain_node *en = &nodes[nn++];
            memset(en, 0, sizeof *en);
            en->node = n;
            en->zone = -1;
            en->pick = nd->pick_cost_per_unit;
            en->capacity_left = -1;
            en->lines = omo_xcalloc((size_t)L, sizeof(omo_explain_line));
            const omo_node *target = o->pickup ? &net->nodes[o->store] : NULL;
            en->km = o->pickup ? (n == o->store
                                      ? 0.0
                                      : omo_distance_km(nd->lat, nd->lon, target->lat, target->lon))
                               : omo_distance_km(nd->lat, nd->lon, o->lat, o->lon);
            const omo_zone *zone = NULL;
            const char *why = NULL;
            int64_t fixed = 0, hours = 0;
            bool terms = node_terms(eng, o, n, svc, &en->method, &fixed, &hours, &zone, &why);
            const omo_service *zs = o->pickup ? &R->transfer : svc;
            if (zone) {
                en->zone = (int)(zone - zs->zones);
                en->zone_max_km = zone->max_km;
            }
            en->cost = fixed;
            en->hours = hours;
            if (!terms) {
                if (why && !strncmp(why, "zone:", 5))
                    en->excluded = fmt_reason("zone: %.1f km is beyond the last zone (%g km)",
                                              en->km, zs->zones[zs->nzones - 1].max_km);
                else
                    en->excluded = omo_xstrdup(why ? why : "not eligible");
            }
            if (eng->paused[n].on) {
                free((char *)en->excluded);
                en->excluded =
                    fmt_reason("paused: %s", eng->paused[n].reason[0] ? eng->paused[n].reason
                                                                      : "no reason given");
            } else if (nd->daily_capacity >= 0) {
                int64_t used = day_used(eng, n, local_day(eng, n, now));
                en->capacity_left = max64(0, nd->daily_capacity - used);
                if (terms && en->capacity_left == 0)
                    en->excluded = fmt_reason("capacity: %lld of %lld units used today",
                                              (long long)used, (long long)nd->daily_capacity);
            }
            bool any = false;
            for (int l = 0; l < L; l++) {
                omo_explain_line *el = &en->lines[l];
                omo_stock *st = omo_inventory_get(eng->inv, n, o->sku[l], false);
                el->on_hand = st ? st->on_hand : 0;
                el->reserved = st ? st->reserved : 0;
                rule_verdict v = {0};
                bool ok = rules_allow(eng, n, en->method, l, &el->safety, &v);
                el->safety_from = v.safety_from ? v.safety_from->name : NULL;
                el->atp = max64(0, el->on_hand - el->reserved - (st ? st->held : 0) - el->safety);
                el->chosen = plan_units_at(eng, plan, n, l, L);
                el->runner_up = plan_units_at(eng, runner, n, l, L);
                el->price = omo_lookahead_run_price(
                    eng->la, omo_lookahead_run_sku(eng->la, o->lines[l].sku), n);
                if (!ok)
                    el->excluded = fmt_reason("rule '%s' (%s)", v.blocked_by->name, v.action);
                else if (el->atp == 0 && el->safety > 0 && el->on_hand > el->reserved)
                    el->excluded = fmt_reason(
                        "safety stock %lld%s%s%s leaves nothing to promise", (long long)el->safety,
                        el->safety_from ? " (rule '" : "", el->safety_from ? el->safety_from : "",
                        el->safety_from ? "')" : "");
                else if (el->atp == 0)
                    el->excluded = fmt_reason("no stock to promise (on hand %lld, reserved %lld)",
                                              (long long)el->on_hand, (long long)el->reserved);
                any |= ok && el->atp > 0;
            }
            if (!en->excluded && !any) {
                /* One reason shared by every line is the node's reason: say it, rather than
                 * leave the reader to find it line by line. */
                bool same = L > 0;
                for (int l = 1; l < L && same; l++)
                    same = !strcmp(en->lines[l].excluded, en->lines[0].excluded);
                en->excluded = omo_xstrdup(same ? en->lines[0].excluded
                                                : "no line it may serve has units to promise");
            }
        }
    }
    ex->nodes = nodes;
    ex->nnodes = (int)nn;
    ex->nodes_without_stock = (int)net->nnodes - (int)nn;
}

/* What gathering candidates for one decision needs. */
typedef struct gather_ctx {
    const order_rec *o;
    const omo_service *svc;
    int64_t now;
    unsigned stamp;
    int G, L, nc;
    bool ruled[OMO_MAX_LINES];
    int fsku[OMO_MAX_LINES]; /* per group: its forecast SKU for look-ahead prices, or -1 */
} gather_ctx;

/* Makes the holder at slot of group g a candidate, or adds the group's ATP to its candidate. */
static void gather_holder(omo_engine *eng, gather_ctx *gc, int g, int n, int64_t free_units)
{
    const order_rec *o = gc->o;
    const omo_network *net = eng->net;
    int G = gc->G, L = gc->L;
    if (free_units <= 0 || eng->paused[n].on)
        return; /* nothing to promise whatever the safety stock; or it takes nothing new */
    if (eng->sc.node_stamp[n] != gc->stamp) {
        eng->sc.node_stamp[n] = gc->stamp;
        eng->sc.node_cand[n] = -1;
        omo_method method;
        int64_t fixed, hours;
        const omo_zone *zone;
        if (!node_terms(eng, o, n, gc->svc, &method, &fixed, &hours, &zone, NULL))
            return;
        const omo_node *nd = &net->nodes[n];
        int64_t capacity = INT64_MAX;
        if (nd->daily_capacity >= 0)
            capacity = max64(0, nd->daily_capacity - day_used(eng, n, local_day(eng, n, gc->now)));
        if (capacity == 0)
            return;
        int c = gc->nc++;
        eng->sc.cands[c] = (omo_cand){.node = n,
                                      .fixed = fixed,
                                      .hours = hours,
                                      .pick = nd->pick_cost_per_unit,
                                      .capacity = capacity,
                                      .atp = eng->sc.atp_pool + (size_t)c * G,
                                      .ok = eng->sc.ok_pool + (size_t)c * L};
        eng->sc.methods[c] = method;
        memset(eng->sc.cands[c].atp, 0, sizeof(int64_t) * (size_t)G);
        if (eng->la)
            memset(eng->sc.price_pool + (size_t)c * G, 0, sizeof(int64_t) * (size_t)G);
        memset(eng->sc.cands[c].ok, 0, (size_t)L);
        eng->sc.node_cand[n] = c;
    }
    int c = eng->sc.node_cand[n];
    if (c < 0)
        return;
    if (n == eng->avoid_node)
        for (int i = 0; i < eng->navoid; i++)
            if (eng->avoid_skus[i] == o->sku[o->group_line[g]])
                return;
    int64_t safety = 0;
    bool any = false;
    for (int l = 0; l < L; l++) {
        if (o->group[l] != g)
            continue;
        int64_t sl = net->nodes[n].safety_stock;
        if (!gc->ruled[l] || rules_allow(eng, n, eng->sc.methods[c], l, &sl, NULL)) {
            eng->sc.cands[c].ok[l] = 1;
            any = true;
        }
        safety = sl; /* same SKU, same rules: the same safety for every line */
    }
    if (!any)
        return;
    eng->sc.cands[c].atp[g] = max64(0, free_units - safety);
    /* A candidate carries prices only when one of them is not 0, so that a decision without
     * any is the plain one, bit for bit. */
    int64_t price = omo_lookahead_run_price(eng->la, gc->fsku[g], n);
    if (price) {
        eng->sc.price_pool[(size_t)c * G + g] = price;
        eng->sc.cands[c].price = eng->sc.price_pool + (size_t)c * G;
    }
}

/* Gathers the holders of every region whose pass is `pass`. */
static void gather_pass(omo_engine *eng, gather_ctx *gc, int pass)
{
    const order_rec *o = gc->o;
    for (int g = 0; g < gc->G; g++) {
        int sku = o->sku[o->group_line[g]];
        if (sku < 0)
            continue; /* never seen: nobody holds it */
        size_t nreg;
        const omo_region_slots *regs = omo_inventory_regions_of(eng->inv, sku, &nreg);
        for (size_t r = 0; r < nreg; r++) {
            if (eng->sc.region_stamp[regs[r].region] != gc->stamp ||
                eng->sc.region_pass[regs[r].region] != pass)
                continue;
            for (size_t i = 0; i < regs[r].n; i++)
                gather_holder(eng, gc, g, regs[r].nodes[i], regs[r].free[i]);
        }
    }
}

/* The least zone cost and zone hours of the zones that could cover a node of region r. A zone of
 * angle a reaches some member only if the angle to the centre is at most a + rho: on cosines,
 * cos(angle) >= cos(a + rho) = cos a cos rho - sin a sin rho, with no inverse cosine. */
static bool zone_floor(const omo_engine *eng, const omo_service *zs, int r, double dot,
                       int64_t *cost, int64_t *hours)
{
    *cost = *hours = INT64_MAX;
    for (size_t z = 0; z < zs->nzones; z++) {
        double a = zs->zones[z].max_km / EARTH_KM;
        /* zones_prepare computed this service's cosines and sines. */
        bool reach = a + eng->region_rho[r] >= M_PI ||
                     dot >= eng->sc.zone_cos[z] * eng->region_cos_rho[r] -
                                eng->sc.zone_sin[z] * eng->region_sin_rho[r] - 1e-12;
        if (reach) {
            *cost = min64(*cost, zs->zones[z].cost);
            *hours = min64(*hours, zs->zones[z].hours);
        }
    }
    return *cost != INT64_MAX;
}

/* Lists the regions that hold the order's SKUs, with a lower bound on the objective of any plan
 * that uses one of their nodes, and puts the most promising in pass 0, the rest in pass 1.
 * Returns how many were listed (in eng->sc.region_order, by ascending bound). */
static int list_regions(omo_engine *eng, gather_ctx *gc, const omo_service *zs)
{
    const order_rec *o = gc->o;
    const omo_rules *R = eng->rules;
    int n = 0;
    for (int g = 0; g < gc->G; g++) {
        size_t nreg = 0;
        const omo_region_slots *regs =
            o->sku[o->group_line[g]] < 0
                ? NULL
                : omo_inventory_regions_of(eng->inv, o->sku[o->group_line[g]], &nreg);
        for (size_t i = 0; i < nreg; i++) {
            int r = regs[i].region;
            if (eng->sc.region_stamp[r] == gc->stamp)
                continue;
            eng->sc.region_stamp[r] = gc->stamp;
            /* On a sphere, no member is nearer than the centre's angle less the radius. */
            const double *c = &eng->region_centre[3 * r];
            double dot =
                eng->sc.target[0] * c[0] + eng->sc.target[1] * c[1] + eng->sc.target[2] * c[2];
            int64_t zc, zh;
            if (!zs || !zone_floor(eng, zs, r, dot, &zc, &zh)) {
                eng->sc.region_lb[r] = INT64_MAX;
            } else {
                eng->sc.region_lb[r] = (eng->region_handling[r] + zc) * 1000 +
                                       R->hour_cost * (eng->region_hours[r] + zh) +
                                       eng->region_pick[r] * 1000;
            }
            /* The pickup store itself pays no zone: its region is always looked at. */
            if (o->pickup && eng->region_of[o->store] == r)
                eng->sc.region_lb[r] = INT64_MIN;
            int j = n++;
            while (j > 0 && eng->sc.region_lb[eng->sc.region_order[j - 1]] > eng->sc.region_lb[r]) {
                eng->sc.region_order[j] = eng->sc.region_order[j - 1];
                j--;
            }
            eng->sc.region_order[j] = r;
        }
    }
    for (int i = 0; i < n; i++) {
        int r = eng->sc.region_order[i];
        eng->sc.region_pass[r] = eng->sc.region_lb[r] == INT64_MAX ? -1 : i < 3 ? 0 : 1;
    }
    return n;
}

/* Decides order oi at time now from scratch (its unfulfilled reservations must be released).
 * Fills its shipments, backorders, status and objective, and reserves what it takes. */
static void decide(omo_engine *eng, order_rec *o, int oi, int64_t now)
{
    const omo_rules *R = eng->rules;
    const omo_network *net = eng->net;
    int L = o->nlines, G = o->ngroups;
    o->decided_ms = now;
    o->reason = NULL;

    const omo_service *svc = NULL;
    if (o->pickup) {
        if (!net->nodes[o->store].pickup)
            o->reason = "pickup_not_accepted";
    } else {
        int si = omo_rules_find_service(R, o->service);
        if (si < 0)
            o->reason = "unknown_service";
        else
            svc = &R->services[si];
    }
    bool explaining = oi >= 0 && eng->explain_fn && !strcmp(o->id, eng->explain_id);
    if (o->reason) {
        if (explaining)
            build_explanation(eng, oi, now, NULL, NULL, NULL, NULL);
        eng->nprev = 0;
        o->status = OMO_ALLOC_REJECTED;
        o->objective = 0;
        o->unproven = false;
        for (int l = 0; l < L; l++)
            o->backordered[l] = 0;
        return;
    }

    /* Units still to place: those of locked shipments stay where they are. */
    for (int l = 0; l < L; l++) {
        int64_t kept = 0;
        for (int s = 0; s < o->nships; s++)
            kept += o->ships[s].qty[l];
        eng->sc.qty[l] = o->lines[l].qty - kept;
    }

    size_t nr = R->nrules;
    omo_grow((void **)&eng->sc.rule_order_ok, &eng->sc.cap_rule_order, nr + 1, 1);
    omo_grow((void **)&eng->sc.rule_line_ok, &eng->sc.cap_rule_line, nr * (size_t)L + 1, 1);
    for (size_t r = 0; r < nr; r++) {
        eng->sc.rule_order_ok[r] = rule_matches_order(&R->rules[r], o);
        for (int l = 0; l < L; l++)
            eng->sc.rule_line_ok[(size_t)l * nr + r] =
                eng->sc.rule_order_ok[r] && rule_matches_sku(eng, &R->rules[r], o->lines[l].sku);
    }

    /* Candidates: nodes that hold a record of one of the order's SKUs. */
    unsigned stamp = ++eng->sc.stamp;
    if (o->pickup)
        zones_prepare(eng, R->has_transfer ? &R->transfer : NULL, net->nodes[o->store].lat,
                      net->nodes[o->store].lon);
    else
        zones_prepare(eng, svc, o->lat, o->lon);
    /* Room for every node as a candidate, once per decision rather than per candidate. */
    size_t most = net->nnodes ? net->nnodes : 1;
    omo_grow((void **)&eng->sc.cands, &eng->sc.capcands, most, sizeof(omo_cand));
    omo_grow((void **)&eng->sc.methods, &eng->sc.capmethods, most, sizeof(omo_method));
    omo_grow((void **)&eng->sc.atp_pool, &eng->sc.cap_atp, most * (size_t)G, sizeof(int64_t));
    omo_grow((void **)&eng->sc.ok_pool, &eng->sc.cap_ok, most * (size_t)L, 1);
    gather_ctx gc = {.o = o, .svc = svc, .now = now, .stamp = stamp, .G = G, .L = L};
    if (eng->la) {
        omo_grow((void **)&eng->sc.price_pool, &eng->sc.cap_price, most * (size_t)G,
                 sizeof(int64_t));
        for (int g = 0; g < G; g++)
            gc.fsku[g] = omo_lookahead_run_sku(eng->la, o->lines[o->group_line[g]].sku);
    }
    /* Lines no rule can touch need no rule check at any node. */
    for (int l = 0; l < L; l++) {
        gc.ruled[l] = false;
        for (size_t r = 0; r < nr && !gc.ruled[l]; r++)
            gc.ruled[l] = eng->sc.rule_line_ok[(size_t)l * nr + r];
    }
    int64_t want = 0;
    for (int l = 0; l < L; l++)
        want += eng->sc.qty[l];
    int nlisted = list_regions(eng, &gc, o->pickup ? (R->has_transfer ? &R->transfer : NULL) : svc);
    gather_pass(eng, &gc, 0);
    omo_problem prob = {.nlines = L,
                        .qty = eng->sc.qty,
                        .group = o->group,
                        .ngroups = G,
                        .cands = eng->sc.cands,
                        .ncands = gc.nc,
                        .hour_cost = R->hour_cost,
                        .split_penalty = R->split_penalty,
                        .max_shipments = R->max_shipments - parcels(o),
                        .split_lines = R->split_lines,
                        .partial_deny = R->partial_deny,
                        .explain = explaining,
                        .budget = eng->search_budget,
                        .mip_budget = eng->mip_budget};
    if (prob.max_shipments < 1)
        prob.max_shipments = 0;
    uint64_t before = omo_solver_evaluated(eng->sc.sv);
    const omo_plan *plan = omo_solver_solve(eng->sc.sv, &prob);
    /* The regions left: all of them unless the plan in hand allocates every unit; then only
     * those whose lower bound does not exceed its objective. */
    bool full = plan->units == want && !explaining && !eng->exhaustive;
    int more = 0;
    for (int i = 0; i < nlisted; i++) {
        int r = eng->sc.region_order[i];
        if (eng->sc.region_pass[r] != 1)
            continue;
        if (full && eng->sc.region_lb[r] > plan->objective) {
            eng->regions_skipped++;
            continue;
        }
        eng->sc.region_pass[r] = 2;
        more++;
    }
    if (more) {
        gather_pass(eng, &gc, 2);
        prob.ncands = gc.nc;
        plan = omo_solver_solve(eng->sc.sv, &prob);
    }
    eng->stats.solver_sets += omo_solver_evaluated(eng->sc.sv) - before;
    if (explaining) {
        /* With prices, how much of the choice they made: the plan the decision takes without. */
        const omo_plan *myopic = NULL;
        bool priced = false;
        for (int c = 0; c < gc.nc; c++)
            priced |= eng->sc.cands[c].price != NULL;
        if (priced) {
            const int64_t **keep = omo_xmalloc(sizeof *keep * (size_t)gc.nc);
            for (int c = 0; c < gc.nc; c++) {
                keep[c] = eng->sc.cands[c].price;
                eng->sc.cands[c].price = NULL;
            }
            if (!eng->sv_myopic)
                eng->sv_myopic = omo_solver_create();
            omo_problem plain = prob;
            plain.explain = false;
            myopic = omo_solver_solve(eng->sv_myopic, &plain);
            for (int c = 0; c < gc.nc; c++)
                eng->sc.cands[c].price = keep[c];
            free(keep);
        }
        build_explanation(eng, oi, now, svc, plan, omo_solver_runner_up(eng->sc.sv), myopic);
        if (myopic) /* what its units would have been priced */
            for (int s = 0; s < myopic->nships; s++) {
                const omo_cand *c = &eng->sc.cands[myopic->cand[s]];
                for (int l = 0; l < L && c->price; l++)
                    eng->pending_ex->myopic.priced +=
                        myopic->take[(size_t)s * L + l] * c->price[o->group[l]] * 1000;
            }
    }

    /* The plan's shipments, beside the locked ones: a picked tote takes no more units. */
    for (int s = 0; s < plan->nships; s++) {
        const omo_cand *c = &eng->sc.cands[plan->cand[s]];
        omo_grow((void **)&o->ships, &o->capships, (size_t)o->nships + 1, sizeof(omo_shipment));
        omo_shipment *sh = &o->ships[o->nships++];
        *sh = (omo_shipment){.seq = 0, .node = c->node};
        sh->qty = omo_xcalloc(2 * (size_t)L, sizeof(int64_t));
        sh->done = sh->qty + L;
        sh->method = eng->sc.methods[plan->cand[s]];
        sh->cost = c->fixed;
        sh->hours = c->hours;
        sh->day = local_day(eng, c->node, now);
        for (int l = 0; l < L; l++)
            sh->qty[l] += plan->take[(size_t)s * L + l];
    }
    finish_decision(eng, o, oi);
    /* Bounds on the solver's part of the plan, shifted by what locked shipments hold. */
    int64_t units_bound, bound;
    o->unproven = !omo_solver_proven(eng->sc.sv, &units_bound, &bound);
    if (o->unproven) {
        int64_t held = 0;
        for (int l = 0; l < L; l++)
            held += o->lines[l].qty - o->backordered[l];
        o->units_bound = held - plan->units + units_bound;
        o->bound = o->objective - (plan->objective - bound);
        eng->stats.unproven++;
    }
}

static void emit(omo_engine *eng, int oi)
{
    order_rec *o = &eng->orders[oi];
    o->revision++;
    eng->stats.revisions++;
    if (eng->pending_ex && eng->pending_ex_order == oi) {
        eng->pending_ex->revision = o->revision;
        eng->explain_fn(eng->explain_ctx, eng->pending_ex);
        drop_explanation(eng);
    }
    if (!eng->sink)
        return;
    omo_allocation a = {.order_id = o->id,
                        .revision = o->revision,
                        .status = o->status,
                        .reason = o->reason,
                        .decided_at_ms = o->decided_ms,
                        .rules_version = eng->rules->version_hash,
                        .objective = o->objective,
                        .lines = o->lines,
                        .nlines = o->nlines,
                        .service = o->service,
                        .pickup_store = o->pickup ? o->store : -1,
                        .ships = eng->emit_ships,
                        .nships = 0,
                        .backordered = o->backordered,
                        .unproven = o->unproven,
                        .bound = o->bound,
                        .units_bound = o->units_bound};
    omo_grow((void **)&eng->emit_ships, &eng->cap_emit_ships, (size_t)o->nships + 1,
             sizeof(omo_shipment));
    a.ships = eng->emit_ships;
    for (int s = 0; s < o->nships && o->status != OMO_ALLOC_CANCELLED; s++)
        if (ship_units(&o->ships[s], o->nlines))
            eng->emit_ships[a.nships++] = o->ships[s];
    eng->sink(eng->sink_ctx, &a);
}

static bool open_order(const order_rec *o)
{
    return o->status != OMO_ALLOC_CANCELLED && o->status != OMO_ALLOC_REJECTED;
}

/* Decides an order again at time now. A re-sourcing always becomes a revision; a retry only
 * when it allocates more units than before, else the old allocation is put back. */
static void redecide(omo_engine *eng, int oi, int64_t now, bool retry)
{
    order_rec *o = &eng->orders[oi];
    saved_alloc old;
    int64_t before = order_units(o);
    if (retry)
        save_alloc(o, &old);
    release_order(eng, oi, false, now);
    decide(eng, &eng->orders[oi], oi, now);
    o = &eng->orders[oi];
    if (retry) {
        if (order_units(o) <= before) {
            drop_explanation(eng);
            release_order(eng, oi, false, now);
            free_ships(o->ships, o->nships);
            o->nships = 0;
            restore_alloc(o, &old);
            reserve_order(eng, oi);
            return;
        }
        drop_saved(&old);
        eng->stats.retried++;
    } else {
        eng->stats.resourced++;
    }
    emit(eng, oi);
}

/* While on hand at the record is below what is reserved there, re-sources the newest order
 * holding a reservation of it. */
static void settle_oversell(omo_engine *eng, int node, int sku, int64_t now)
{
    for (;;) {
        omo_stock *st = omo_inventory_get(eng->inv, node, sku, false);
        if (!st || st->on_hand >= st->reserved || st->nholders == 0)
            return;
        int newest = st->holders[0];
        for (size_t i = 1; i < st->nholders; i++)
            if (st->holders[i] > newest)
                newest = st->holders[i];
        redecide(eng, newest, now, false);
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Retries, oldest first, the orders with units of the skus backordered. */
static void retry_backorders(omo_engine *eng, const int *skus, int nskus, int64_t now)
{
    int_vec *rv = &eng->retry;
    rv->n = 0;
    unsigned stamp = ++eng->sc.stamp;
    for (int i = 0; i < nskus; i++) {
        if ((size_t)skus[i] >= eng->capbacklog)
            continue;
        int_vec *bl = &eng->backlog[skus[i]];
        size_t keep = 0;
        for (size_t j = 0; j < bl->n; j++) {
            order_rec *o = &eng->orders[bl->v[j]];
            bool still = false;
            if (open_order(o))
                for (int l = 0; l < o->nlines && !still; l++)
                    still = o->sku[l] == skus[i] && o->backordered[l] > 0;
            if (!still)
                continue;
            bl->v[keep++] = bl->v[j];
            if (o->stamp != stamp) {
                o->stamp = stamp;
                vec_push(rv, bl->v[j]);
            }
        }
        bl->n = keep;
    }
    if (rv->n > 1)
        qsort(rv->v, rv->n, sizeof(int), cmp_int);
    /* redecide may push to the backlog but never to rv: copy rv out first. */
    size_t n = rv->n;
    int *list = omo_xmalloc(sizeof(int) * (n ? n : 1));
    if (n)
        memcpy(list, rv->v, sizeof(int) * n);
    for (size_t i = 0; i < n; i++)
        redecide(eng, list[i], now, true);
    free(list);
}

static void set_error(omo_event_error *err, const char *field, const char *reason, const char *fmt,
                      const char *arg)
{
    if (!err)
        return;
    snprintf(err->field, sizeof err->field, "%s", field);
    snprintf(err->reason, sizeof err->reason, "%s", reason);
    snprintf(err->message, sizeof err->message, fmt, arg);
}

/* Fills o (zeroed by the caller) from an order-like event: the basket, its delivery and id.
 * SKUs never seen are interned only when intern (a reader may not): else they are -1, which no
 * node holds. */
static void order_fill(omo_inventory *inv, order_rec *o, const omo_event *ev, const char *id,
                       bool intern)
{
    int L = (int)ev->nlines;
    o->created_ms = ev->at_ms;
    memcpy(o->channel, ev->channel, sizeof o->channel);
    memcpy(o->service, ev->pickup ? "pickup" : ev->service,
           ev->pickup ? sizeof "pickup" : sizeof o->service);
    o->pickup = ev->pickup;
    o->store = ev->pickup ? ev->store : -1;
    o->lat = ev->cust_lat;
    o->lon = ev->cust_lon;
    o->nlines = L;
    /* One block for the id and the per-line arrays: an order is one allocation. */
    size_t idlen = strlen(id) + 1;
    char *block = omo_xmalloc(sizeof(omo_line) * (size_t)L + sizeof(int64_t) * (size_t)L +
                              3 * sizeof(int) * (size_t)L + idlen);
    o->lines = (omo_line *)block;
    o->backordered = (int64_t *)(block + sizeof(omo_line) * (size_t)L);
    o->sku = (int *)(o->backordered + L);
    o->group = o->sku + L;
    o->group_line = o->group + L;
    o->id = (char *)(o->group_line + L);
    memcpy(o->id, id, idlen);
    memset(o->backordered, 0, sizeof(int64_t) * (size_t)L);
    memcpy(o->lines, ev->lines, sizeof(omo_line) * (size_t)L);
    for (int l = 0; l < L; l++) {
        o->sku[l] = omo_inventory_sku(inv, ev->lines[l].sku, intern);
        o->group[l] = -1;
        for (int j = 0; j < l; j++)
            if (!strcmp(o->lines[j].sku, o->lines[l].sku))
                o->group[l] = o->group[j];
        if (o->group[l] < 0) {
            o->group_line[o->ngroups] = l;
            o->group[l] = o->ngroups++;
        }
    }
}

static void hold_release(omo_engine *eng, const char *hold_id, int *skus, int *nskus);

static omo_apply_result order_created(omo_engine *eng, const omo_event *ev)
{
    int oi = (int)eng->norders;
    bool added;
    if (omo_strmap_add(&eng->order_ids, ev->order_id, oi, &added) < 0)
        abort();
    if (!added)
        return OMO_APPLY_DUPLICATE;
    omo_grow((void **)&eng->orders, &eng->caporders, eng->norders + 1, sizeof(order_rec));
    order_rec *o = &eng->orders[eng->norders++];
    memset(o, 0, sizeof *o);
    order_fill(eng->inv, o, ev, ev->order_id, true);
    /* The hold it follows gives its units back just before the order is decided. */
    int freed[OMO_MAX_LINES], nfreed = 0;
    if (ev->hold_id[0])
        hold_release(eng, ev->hold_id, freed, &nfreed);
    eng->stats.orders++;
    eng->stats.decisions++;
    eng->nprev = 0;
    decide(eng, &eng->orders[oi], oi, ev->at_ms);
    emit(eng, oi);
    if (nfreed)
        retry_backorders(eng, freed, nfreed, ev->at_ms);
    return OMO_APPLY_OK;
}

static omo_apply_result order_cancelled(omo_engine *eng, const omo_event *ev, int64_t now,
                                        omo_event_error *err)
{
    int oi = omo_strmap_get(&eng->order_ids, ev->order_id);
    if (oi < 0) {
        set_error(err, "order_id", "unknown_order", "order_id: no order '%s' was created",
                  ev->order_id);
        return OMO_APPLY_INVALID;
    }
    order_rec *o = &eng->orders[oi];
    if (o->status == OMO_ALLOC_CANCELLED)
        return OMO_APPLY_DUPLICATE;
    /* What it releases, for the retries. */
    int skus[OMO_MAX_LINES], n = 0;
    for (int s = 0; s < o->nships; s++)
        for (int l = 0; l < o->nlines; l++)
            if (ship_open(&o->ships[s]) && o->ships[s].qty[l] > o->ships[s].done[l]) {
                bool seen = false;
                for (int i = 0; i < n; i++)
                    seen |= skus[i] == o->sku[l];
                if (!seen)
                    skus[n++] = o->sku[l];
            }
    release_order(eng, oi, true, now);
    eng->nprev = 0;
    o = &eng->orders[oi];
    o->status = OMO_ALLOC_CANCELLED;
    o->reason = NULL;
    o->objective = 0;
    o->decided_ms = now;
    for (int l = 0; l < o->nlines; l++)
        o->backordered[l] = 0;
    emit(eng, oi);
    retry_backorders(eng, skus, n, now);
    return OMO_APPLY_OK;
}

static void consume(omo_engine *eng, order_rec *o, int oi, int node, int sku, int64_t units)
{
    for (int s = 0; s < o->nships && units > 0; s++) {
        omo_shipment *sh = &o->ships[s];
        if (sh->node != node)
            continue;
        for (int l = 0; l < o->nlines && units > 0; l++) {
            if (o->sku[l] != sku)
                continue;
            int64_t c = min64(units, sh->qty[l] - sh->done[l]);
            if (c <= 0)
                continue;
            sh->done[l] += c;
            units -= c;
            omo_stock *st = omo_inventory_get(eng->inv, node, sku, false);
            st->reserved -= c;
            omo_inventory_touch(eng->inv, st);
        }
        bool open = false;
        for (int l = 0; l < o->nlines; l++)
            open |= o->sku[l] == sku && sh->qty[l] > sh->done[l];
        if (!open)
            omo_stock_unhold(omo_inventory_get(eng->inv, node, sku, false), oi);
    }
}

/* Bins are short: copied without a formatted print, since every store snapshot may carry one. */
static void copy_bin(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

static omo_apply_result stock_event(omo_engine *eng, const omo_event *ev, int64_t now)
{
    if (ev->type == OMO_EV_STOCK_BIN) {
        omo_stock *st =
            omo_inventory_get(eng->inv, ev->node, omo_inventory_sku(eng->inv, ev->sku, true), true);
        copy_bin(st->bin, sizeof st->bin, ev->bin);
        omo_inventory_touch(eng->inv, st);
        return OMO_APPLY_OK;
    }
    if (!omo_hashset_add(&eng->event_ids, ev->event_id))
        return OMO_APPLY_DUPLICATE;
    int sku = omo_inventory_sku(eng->inv, ev->sku, true);
    omo_stock *st = omo_inventory_get(eng->inv, ev->node, sku, true);
    int64_t before = st->on_hand;
    if (ev->type == OMO_EV_STOCK_SNAPSHOT) {
        st->on_hand = ev->on_hand;
        if (ev->bin[0])
            copy_bin(st->bin, sizeof st->bin, ev->bin);
    } else {
        st->on_hand = max64(0, st->on_hand + ev->delta);
        if (ev->order_id[0] && ev->delta < 0) {
            int oi = omo_strmap_get(&eng->order_ids, ev->order_id);
            if (oi >= 0)
                consume(eng, &eng->orders[oi], oi, ev->node, sku, before - st->on_hand);
        }
    }
    st = omo_inventory_get(eng->inv, ev->node, sku, false);
    omo_inventory_touch(eng->inv, st);
    if (st->on_hand < before)
        settle_oversell(eng, ev->node, sku, now);
    else if (st->on_hand > before)
        retry_backorders(eng, &sku, 1, now);
    return OMO_APPLY_OK;
}

/* The order and shipment named by "ORDER/N", or -1. */
static int find_shipment(omo_engine *eng, const char *shipment_id, int *ship)
{
    const char *slash = strrchr(shipment_id, '/');
    if (!slash)
        return -1;
    char order_id[OMO_LONG_ID_MAX + 1];
    size_t n = (size_t)(slash - shipment_id);
    if (n >= sizeof order_id)
        return -1;
    memcpy(order_id, shipment_id, n);
    order_id[n] = 0;
    int oi = omo_strmap_get(&eng->order_ids, order_id);
    if (oi < 0)
        return -1;
    int seq = atoi(slash + 1);
    order_rec *o = &eng->orders[oi];
    for (int s = 0; s < o->nships; s++)
        if (o->ships[s].seq == seq) {
            *ship = s;
            return oi;
        }
    return -1;
}

static omo_apply_result no_shipment(omo_event_error *err, const char *id)
{
    set_error(err, "shipment_id", "unknown_shipment", "shipment_id: no shipment '%s'", id);
    return OMO_APPLY_INVALID;
}

static omo_apply_result conflict(omo_event_error *err, const omo_shipment *sh, const char *id,
                                 const char *what)
{
    if (err) {
        snprintf(err->field, sizeof err->field, "%s", omo_ship_state_name(sh->state));
        snprintf(err->reason, sizeof err->reason, "invalid_state");
        snprintf(err->message, sizeof err->message, "shipment %s is %s: it cannot be %s", id,
                 omo_ship_state_name(sh->state), what);
    }
    return OMO_APPLY_CONFLICT;
}

/* pick.confirmed: the tote holds what was picked; a short line's missing units leave the node's
 * on hand and the order's missing units are re-sourced as its next revision. */
static omo_apply_result pick_confirmed(omo_engine *eng, const omo_event *ev, int64_t now,
                                       omo_event_error *err)
{
    int s;
    int oi = find_shipment(eng, ev->shipment_id, &s);
    if (oi < 0)
        return no_shipment(err, ev->shipment_id);
    order_rec *o = &eng->orders[oi];
    omo_shipment *sh = &o->ships[s];
    int64_t picked[OMO_MAX_LINES];
    for (int l = 0; l < o->nlines; l++)
        picked[l] = sh->qty[l];
    for (size_t i = 0; i < ev->nlines; i++) {
        int l = 0;
        while (l < o->nlines && strcmp(o->lines[l].line_id, ev->lines[i].line_id))
            l++;
        char field[64];
        snprintf(field, sizeof field, "lines[%zu]", i);
        if (l == o->nlines || sh->qty[l] == 0) {
            set_error(err, field, "unknown_line", "line '%s' is not in this shipment",
                      ev->lines[i].line_id);
            return OMO_APPLY_INVALID;
        }
        if (ev->lines[i].qty > sh->qty[l]) {
            set_error(err, field, "out_of_range", "%s: more units picked than the shipment holds",
                      field);
            return OMO_APPLY_INVALID;
        }
        if (ev->lines[i].qty < sh->qty[l] && !ev->pick_reason[i][0]) {
            set_error(err, field, "missing_field", "%s: a short line needs a reason", field);
            return OMO_APPLY_INVALID;
        }
        picked[l] = ev->lines[i].qty;
    }
    bool short_pick = false;
    for (int l = 0; l < o->nlines; l++)
        short_pick |= picked[l] < sh->qty[l];
    if (!ship_move(sh, short_pick ? OMO_SHIP_SHORT : OMO_SHIP_PICKED, 1))
        return conflict(err, sh, ev->shipment_id, "picked");
    if (!short_pick) {
        emit_status(eng, oi, sh, now);
        return OMO_APPLY_OK;
    }
    /* The missing units are gone from the shelf: from on hand, the reservation and the day. */
    int short_skus[OMO_MAX_LINES], nshort = 0;
    int64_t missing_total = 0;
    for (int l = 0; l < o->nlines; l++) {
        int64_t missing = sh->qty[l] - picked[l];
        if (missing <= 0)
            continue;
        omo_stock *st = omo_inventory_get(eng->inv, sh->node, o->sku[l], true);
        st->on_hand = max64(0, st->on_hand - missing);
        st->reserved -= missing;
        sh->qty[l] = picked[l];
        missing_total += missing;
        bool open = false;
        for (int j = 0; j < o->nlines; j++)
            open |= o->sku[j] == o->sku[l] && sh->qty[j] > sh->done[j];
        if (!open)
            omo_stock_unhold(st, oi);
        omo_inventory_touch(eng->inv, st);
        short_skus[nshort++] = o->sku[l];
    }
    omo_inventory_day_add(eng->inv, sh->node, sh->day, -missing_total);
    emit_status(eng, oi, sh, now);
    int node = sh->node;
    eng->avoid_node = node;
    eng->navoid = nshort;
    memcpy(eng->avoid_skus, short_skus, sizeof(int) * (size_t)nshort);
    redecide(eng, oi, now, false);
    eng->avoid_node = -1;
    eng->navoid = 0;
    for (int i = 0; i < nshort; i++)
        settle_oversell(eng, node, short_skus[i], now);
    return OMO_APPLY_OK;
}

/* shipment.shipped / shipment.collected: the units leave the node, reservation and stock. */
static omo_apply_result shipment_handed(omo_engine *eng, const omo_event *ev, int64_t now,
                                        omo_event_error *err)
{
    int s;
    int oi = find_shipment(eng, ev->shipment_id, &s);
    if (oi < 0)
        return no_shipment(err, ev->shipment_id);
    order_rec *o = &eng->orders[oi];
    omo_shipment *sh = &o->ships[s];
    bool collect = ev->type == OMO_EV_SHIPMENT_COLLECTED;
    if (collect && sh->method != OMO_METHOD_CLICK_AND_COLLECT) {
        set_error(err, "shipment_id", "wrong_method",
                  "shipment %s is not click-and-collect: it is shipped, not collected",
                  ev->shipment_id);
        return OMO_APPLY_INVALID;
    }
    if (!ship_move(sh, collect ? OMO_SHIP_COLLECTED : OMO_SHIP_SHIPPED, ship_units(sh, o->nlines)))
        return conflict(err, sh, ev->shipment_id, collect ? "collected" : "shipped");
    for (int l = 0; l < o->nlines; l++) {
        int64_t u = sh->qty[l] - sh->done[l];
        if (u <= 0)
            continue;
        omo_stock *st = omo_inventory_get(eng->inv, sh->node, o->sku[l], true);
        st->on_hand = max64(0, st->on_hand - u);
        st->reserved -= u;
        sh->done[l] = sh->qty[l];
        omo_stock_unhold(st, oi);
        omo_inventory_touch(eng->inv, st);
    }
    emit_status(eng, oi, sh, now);
    return OMO_APPLY_OK;
}

int omo_engine_find_shipment(omo_engine *eng, const char *shipment_id, omo_ship_state *state,
                             int *pickup_store)
{
    int s;
    int oi = find_shipment(eng, shipment_id, &s);
    if (oi < 0)
        return -1;
    if (state)
        *state = eng->orders[oi].ships[s].state;
    if (pickup_store)
        *pickup_store = eng->orders[oi].pickup ? eng->orders[oi].store : -1;
    return eng->orders[oi].ships[s].node;
}

void omo_engine_set_status_sink(omo_engine *eng, omo_status_fn fn, void *ctx)
{
    eng->status_sink = fn;
    eng->status_ctx = ctx;
}

/* ---- checkout holds and node pauses ----------------------------------------------------- */

/* Adds (sign 1) or takes back (sign -1) a hold's units at their nodes. */
static void hold_count(omo_engine *eng, const hold_rec *h, int sign)
{
    for (int i = 0; i < h->nunits; i++) {
        omo_stock *st = omo_inventory_get(eng->inv, h->units[i].node, h->units[i].sku, true);
        st->held += sign * h->units[i].qty;
        omo_inventory_touch(eng->inv, st);
    }
}

/* Gives a live hold's units back; the SKUs freed are added to skus (OMO_MAX_LINES of room). */
static void hold_release(omo_engine *eng, const char *hold_id, int *skus, int *nskus)
{
    int hi = omo_strmap_get(&eng->holds.ids, hold_id);
    if (hi < 0 || !eng->holds.v[hi].live)
        return;
    hold_rec *h = &eng->holds.v[hi];
    hold_count(eng, h, -1);
    h->live = false;
    eng->holds.live--;
    for (int i = 0; i < h->nunits; i++) {
        bool seen = false;
        for (int k = 0; k < *nskus; k++)
            seen |= skus[k] == h->units[i].sku;
        if (!seen && *nskus < OMO_MAX_LINES)
            skus[(*nskus)++] = h->units[i].sku;
    }
}

static void free_order(order_rec *o)
{
    free(o->lines);
    free_ships(o->ships, o->nships);
    free(o->ships);
}

static size_t option_json(const omo_engine *eng, const order_rec *o, char **buf, size_t *cap);

/* hold.placed: the basket decided as an order arriving now would be, and its units held. */
static omo_apply_result hold_placed(omo_engine *eng, const omo_event *ev, int64_t now)
{
    bool added;
    int hi = (int)eng->holds.n;
    if (omo_strmap_add(&eng->holds.ids, ev->hold_id, hi, &added) < 0)
        abort();
    if (!added)
        return OMO_APPLY_DUPLICATE; /* a repeated hold id answers the hold it names */
    order_rec o = {0};
    order_fill(eng->inv, &o, ev, ev->hold_id, true);
    eng->nprev = 0;
    decide(eng, &o, -1, now);
    omo_grow((void **)&eng->holds.v, &eng->holds.cap, eng->holds.n + 1, sizeof(hold_rec));
    hold_rec *h = &eng->holds.v[eng->holds.n++];
    *h = (hold_rec){.id = omo_xstrdup(ev->hold_id),
                    .placed_ms = now,
                    .expires_ms = now + ev->ttl_ms,
                    .live = true};
    h->units = omo_xmalloc(sizeof(hold_unit) * (size_t)(o.nships * o.nlines + 1));
    for (int s = 0; s < o.nships; s++)
        for (int l = 0; l < o.nlines; l++) {
            int64_t q = o.ships[s].qty[l];
            if (q <= 0)
                continue;
            int k = 0;
            while (k < h->nunits &&
                   (h->units[k].node != o.ships[s].node || h->units[k].sku != o.sku[l]))
                k++;
            if (k == h->nunits)
                h->units[h->nunits++] = (hold_unit){o.ships[s].node, o.sku[l], 0};
            h->units[k].qty += q;
        }
    char *json = NULL;
    size_t cap = 0;
    option_json(eng, &o, &json, &cap);
    h->option = json;
    free_order(&o);
    hold_count(eng, h, 1);
    eng->holds.live++;
    return OMO_APPLY_OK;
}

/* hold.released and hold.expired: the units go back, and the backorders of their SKUs are
 * retried. */
static omo_apply_result hold_ended(omo_engine *eng, const omo_event *ev, int64_t now,
                                   omo_event_error *err)
{
    int hi = omo_strmap_get(&eng->holds.ids, ev->hold_id);
    if (hi < 0) {
        set_error(err, "hold_id", "unknown_hold", "hold_id: no hold '%s' was placed", ev->hold_id);
        return OMO_APPLY_INVALID;
    }
    if (!eng->holds.v[hi].live)
        return OMO_APPLY_DUPLICATE;
    int skus[OMO_MAX_LINES], n = 0;
    hold_release(eng, ev->hold_id, skus, &n);
    retry_backorders(eng, skus, n, now);
    return OMO_APPLY_OK;
}

/* Marks every record of the node changed: its ATP changed for every SKU it holds. */
static void touch_node(omo_engine *eng, int node, int *skus, int *nskus)
{
    size_t nrec = omo_inventory_nrecords(eng->inv);
    for (size_t i = 0; i < nrec; i++) {
        omo_stock *st = omo_inventory_at(eng->inv, (int)i);
        if (st->node != node)
            continue;
        omo_inventory_touch(eng->inv, st);
        if (skus && st->on_hand - st->reserved - st->held > 0)
            skus[(*nskus)++] = st->sku;
    }
}

static omo_apply_result node_paused(omo_engine *eng, const omo_event *ev, int64_t now)
{
    pause_rec *p = &eng->paused[ev->node];
    p->on = true;
    snprintf(p->reason, sizeof p->reason, "%s", ev->pause_reason);
    p->until_ms = ev->until_ms;
    touch_node(eng, ev->node, NULL, NULL);
    if (!ev->resource)
        return OMO_APPLY_OK;
    /* Its shipments not yet picked go elsewhere, oldest order first. */
    for (size_t oi = 0; oi < eng->norders; oi++) {
        const order_rec *o = &eng->orders[oi];
        if (!open_order(o))
            continue;
        bool movable = false;
        for (int s = 0; s < o->nships && !movable; s++)
            movable = o->ships[s].node == ev->node && o->ships[s].state == OMO_SHIP_ALLOCATED &&
                      !ship_locked(&o->ships[s], o->nlines) &&
                      ship_units(&o->ships[s], o->nlines) > 0;
        if (movable)
            redecide(eng, (int)oi, now, false);
    }
    return OMO_APPLY_OK;
}

static omo_apply_result node_resumed(omo_engine *eng, const omo_event *ev, int64_t now)
{
    pause_rec *p = &eng->paused[ev->node];
    if (!p->on)
        return OMO_APPLY_DUPLICATE;
    memset(p, 0, sizeof *p);
    /* Its stock is there to take again: for backorders too. */
    size_t nrec = omo_inventory_nrecords(eng->inv);
    int *skus = omo_xmalloc(sizeof(int) * (nrec ? nrec : 1));
    int n = 0;
    touch_node(eng, ev->node, skus, &n);
    retry_backorders(eng, skus, n, now);
    free(skus);
    return OMO_APPLY_OK;
}

bool omo_engine_node_paused(const omo_engine *eng, int node, const char **reason)
{
    if (reason)
        *reason = eng->paused[node].reason;
    return eng->paused[node].on;
}

void omo_engine_due(const omo_engine *eng, int64_t now, omo_due_fn fn, void *ctx)
{
    for (size_t i = 0; i < eng->holds.n; i++)
        if (eng->holds.v[i].live && eng->holds.v[i].expires_ms <= now)
            fn(ctx, OMO_EV_HOLD_EXPIRED, eng->holds.v[i].id, -1);
    for (size_t n = 0; n < eng->net->nnodes; n++)
        if (eng->paused[n].on && eng->paused[n].until_ms && eng->paused[n].until_ms <= now)
            fn(ctx, OMO_EV_NODE_RESUMED, NULL, (int)n);
}

char *omo_engine_hold_json(const omo_engine *eng, const char *hold_id, bool *live)
{
    int hi = omo_strmap_get(&eng->holds.ids, hold_id);
    if (hi < 0)
        return NULL;
    const hold_rec *h = &eng->holds.v[hi];
    if (live)
        *live = h->live;
    omo_strbuf t = {0};
    char tbuf[40];
    json_t *id = json_string(h->id);
    char *ids = json_dumps(id, JSON_ENCODE_ANY);
    json_decref(id);
    omo_strbuf_printf(&t, "{\"hold_id\":%s,\"expires_at\":\"%s\",\"live\":%s,\"option\":%s}", ids,
                      omo_time_format(h->expires_ms, tbuf, sizeof tbuf), h->live ? "true" : "false",
                      h->option);
    free(ids);
    return t.p;
}

int64_t omo_engine_clock(const omo_engine *eng)
{
    return eng->clock_ms;
}

size_t omo_engine_live_holds(const omo_engine *eng)
{
    return eng->holds.live;
}

/* ---- reads beside the stream: availability and promises --------------------------------- */

/* The safety stock of (node, SKU) under the rules a query can decide: a rule naming a service
 * never applies, one naming a channel only when the query gives that channel. */
static int64_t query_safety(const omo_engine *eng, int n, const char *sku, const char *channel)
{
    const omo_rules *R = eng->rules;
    const omo_node *nd = &eng->net->nodes[n];
    int64_t safety = nd->safety_stock;
    for (size_t r = 0; r < R->nrules; r++) {
        const omo_rule *ru = &R->rules[r];
        if (ru->safety_stock < 0 || ru->service ||
            (ru->channel && (!channel || strcmp(ru->channel, channel))) ||
            (ru->node >= 0 && ru->node != n) ||
            (ru->node_type >= 0 && ru->node_type != (int)nd->type) ||
            !rule_matches_sku(eng, ru, sku))
            continue;
        safety = ru->safety_stock;
    }
    return safety;
}

void omo_engine_avail(const omo_engine *eng, const omo_stock *st, const char *channel,
                      omo_avail *out)
{
    out->on_hand = st->on_hand;
    out->reserved = st->reserved;
    out->held = st->held;
    out->safety = query_safety(eng, st->node, omo_inventory_sku_name(eng->inv, st->sku), channel);
    out->paused = eng->paused[st->node].on;
    out->atp = out->paused ? 0 : max64(0, st->on_hand - st->reserved - st->held - out->safety);
}

struct omo_reader {
    omo_engine view; /* the engine copied, with this reader's scratch */
    scratch sc;
};

omo_reader *omo_reader_create(const omo_engine *eng)
{
    omo_reader *rd = omo_xcalloc(1, sizeof *rd);
    scratch_init(&rd->sc, eng->net->nnodes, (size_t)eng->nregions);
    return rd;
}

void omo_reader_destroy(omo_reader *rd)
{
    if (!rd)
        return;
    scratch_free(&rd->sc);
    free(rd);
}

size_t omo_engine_promise(const omo_engine *eng, omo_reader *rd, const omo_event *ev, int64_t now,
                          char **buf, size_t *cap, omo_alloc_status *status, int64_t *objective)
{
    /* The very decision an order would get, in a copy of the engine that writes only into this
     * reader's scratch and into an order of its own, never into the view. */
    omo_engine *view = &rd->view;
    *view = *eng;
    view->sc = rd->sc;
    view->view = true;
    view->explain_fn = NULL;
    view->pending_ex = NULL;
    order_rec o = {0};
    order_fill(view->inv, &o, ev, "", false);
    view->nprev = 0;
    decide(view, &o, -1, now);
    rd->sc = view->sc; /* what grew is kept for the next call */
    size_t n = option_json(view, &o, buf, cap);
    *status = o.status;
    *objective = o.objective;
    free_order(&o);
    return n;
}

omo_apply_result omo_engine_apply(omo_engine *eng, const omo_event *ev, omo_event_error *err)
{
    eng->stats.events++;
    if (ev->has_at && ev->at_ms > eng->clock_ms)
        eng->clock_ms = ev->at_ms;
    int64_t now = ev->has_at ? ev->at_ms : eng->clock_ms;
    omo_apply_result r;
    switch (ev->type) {
    case OMO_EV_ORDER_CREATED:
        r = order_created(eng, ev);
        break;
    case OMO_EV_ORDER_CANCELLED:
        r = order_cancelled(eng, ev, now, err);
        break;
    case OMO_EV_PICK_CONFIRMED:
        r = pick_confirmed(eng, ev, now, err);
        break;
    case OMO_EV_SHIPMENT_SHIPPED:
    case OMO_EV_SHIPMENT_COLLECTED:
        r = shipment_handed(eng, ev, now, err);
        break;
    case OMO_EV_HOLD_PLACED:
        r = hold_placed(eng, ev, now);
        break;
    case OMO_EV_HOLD_RELEASED:
    case OMO_EV_HOLD_EXPIRED:
        r = hold_ended(eng, ev, now, err);
        break;
    case OMO_EV_NODE_PAUSED:
        r = node_paused(eng, ev, now);
        break;
    case OMO_EV_NODE_RESUMED:
        r = node_resumed(eng, ev, now);
        break;
    default:
        r = stock_event(eng, ev, now);
        break;
    }
    if (r == OMO_APPLY_OK)
        omo_lookahead_run_applied(eng->la, ++eng->applied, eng->inv, eng->clock_ms);
    if (r == OMO_APPLY_DUPLICATE)
        eng->stats.duplicates++;
    else if (r == OMO_APPLY_INVALID || r == OMO_APPLY_CONFLICT)
        eng->stats.invalid++;
    return r;
}

void omo_engine_summary(const omo_engine *eng, omo_summary *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < eng->norders; i++) {
        const order_rec *o = &eng->orders[i];
        out->orders++;
        out->by_status[o->status]++;
        for (int l = 0; l < o->nlines; l++) {
            out->units_ordered += o->lines[l].qty;
            out->units_backordered += o->backordered[l];
        }
        if (o->status == OMO_ALLOC_CANCELLED || o->status == OMO_ALLOC_REJECTED)
            continue;
        int64_t maxh = 0;
        int n = parcels(o);
        for (int s = 0; s < o->nships; s++) {
            if (!ship_units(&o->ships[s], o->nlines))
                continue;
            out->ships_by_method[o->ships[s].method]++;
            out->units_allocated += ship_units(&o->ships[s], o->nlines);
            out->ship_cost += o->ships[s].cost;
            maxh = max64(maxh, o->ships[s].hours);
        }
        if (n > 1)
            out->split_orders++;
        if (n) {
            out->hours_sum += maxh;
            out->hours_orders++;
        }
        out->objective += o->objective;
    }
}

void omo_engine_node_units(const omo_engine *eng, int64_t *units)
{
    memset(units, 0, sizeof(int64_t) * eng->net->nnodes);
    for (size_t i = 0; i < eng->norders; i++) {
        const order_rec *o = &eng->orders[i];
        if (!open_order(o))
            continue;
        for (int s = 0; s < o->nships; s++)
            units[o->ships[s].node] += ship_units(&o->ships[s], o->nlines);
    }
}

/* ---- JSON output ----------------------------------------------------------------------- */

typedef struct sbuf {
    char **buf;
    size_t *cap;
    size_t len;
} sbuf;

static void sb_put(sbuf *sb, const char *s, size_t n)
{
    if (sb->len + n + 1 > *sb->cap) {
        size_t ncap = *sb->cap ? *sb->cap * 2 : 1024;
        while (ncap < sb->len + n + 1)
            ncap *= 2;
        *sb->buf = omo_xrealloc(*sb->buf, ncap);
        *sb->cap = ncap;
    }
    memcpy(*sb->buf + sb->len, s, n);
    sb->len += n;
    (*sb->buf)[sb->len] = 0;
}

static void sb_lit(sbuf *sb, const char *s)
{
    sb_put(sb, s, strlen(s));
}

static void sb_str(sbuf *sb, const char *s)
{
    sb_put(sb, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_put(sb, run, (size_t)(s - run));
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else
            snprintf(esc, sizeof esc, "\\u%04x", c);
        sb_lit(sb, esc);
        run = s + 1;
    }
    sb_put(sb, run, (size_t)(s - run));
    sb_put(sb, "\"", 1);
}

static void sb_int(sbuf *sb, int64_t v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    sb_put(sb, p, (size_t)(tmp + sizeof tmp - p));
}

static void sb_fixed(sbuf *sb, int64_t v, int64_t scale, int decimals)
{
    char tmp[48];
    sb_lit(sb, omo_fixed_format(v, scale, decimals, tmp, sizeof tmp));
}

static void sb_lines(sbuf *sb, const omo_allocation *a, const int64_t *qty)
{
    sb_lit(sb, "[");
    bool first = true;
    for (int l = 0; l < a->nlines; l++) {
        if (qty[l] <= 0)
            continue;
        sb_lit(sb, first ? "{\"line_id\":" : ",{\"line_id\":");
        first = false;
        sb_str(sb, a->lines[l].line_id);
        sb_lit(sb, ",\"sku\":");
        sb_str(sb, a->lines[l].sku);
        sb_lit(sb, ",\"qty\":");
        sb_int(sb, qty[l]);
        sb_lit(sb, "}");
    }
    sb_lit(sb, "]");
}

size_t omo_allocation_json(const omo_allocation *a, const omo_network *net, char **buf, size_t *cap)
{
    sbuf sb = {buf, cap, 0};
    char tbuf[40];
    bool option = !a->order_id; /* a promise's option: no order, revision or rules version */
    if (option) {
        sb_lit(&sb, "{\"type\":\"allocation\",\"status\":\"");
    } else {
        sb_lit(&sb, "{\"type\":\"allocation\",\"order_id\":");
        sb_str(&sb, a->order_id);
        sb_lit(&sb, ",\"revision\":");
        sb_int(&sb, a->revision);
        sb_lit(&sb, ",\"status\":\"");
    }
    sb_lit(&sb, omo_alloc_status_name(a->status));
    sb_lit(&sb, "\"");
    if (a->reason) {
        sb_lit(&sb, ",\"reason\":");
        sb_str(&sb, a->reason);
    }
    sb_lit(&sb, ",\"decided_at\":\"");
    sb_lit(&sb, omo_time_format(a->decided_at_ms, tbuf, sizeof tbuf));
    sb_lit(&sb, "\"");
    if (!option) {
        sb_lit(&sb, ",\"rules_version\":");
        sb_str(&sb, a->rules_version);
    }
    sb_lit(&sb, ",\"objective\":");
    sb_fixed(&sb, a->objective, 1000000000LL, 6);
    if (a->unproven) {
        sb_lit(&sb, ",\"optimal\":false,\"bound\":");
        sb_fixed(&sb, a->bound, 1000000000LL, 6);
        sb_lit(&sb, ",\"units_bound\":");
        sb_int(&sb, a->units_bound);
    }
    sb_lit(&sb, ",\"shipments\":[");
    for (int s = 0; s < a->nships; s++) {
        const omo_shipment *sh = &a->ships[s];
        if (option) {
            sb_lit(&sb, s ? ",{\"node_id\":" : "{\"node_id\":");
        } else {
            sb_lit(&sb, s ? ",{\"shipment_id\":" : "{\"shipment_id\":");
            sb_str(&sb, a->order_id);
            sb.len--; /* reopen the string for "/seq" */
            sb_lit(&sb, "/");
            sb_int(&sb, sh->seq);
            sb_lit(&sb, "\",\"node_id\":");
        }
        sb_str(&sb, net->nodes[sh->node].id);
        sb_lit(&sb, ",\"method\":\"");
        sb_lit(&sb, omo_method_name(sh->method));
        sb_lit(&sb, "\"");
        if (a->pickup_store >= 0) {
            sb_lit(&sb, ",\"pickup_store_id\":");
            sb_str(&sb, net->nodes[a->pickup_store].id);
        }
        sb_lit(&sb, ",\"service\":");
        sb_str(&sb, a->service);
        sb_lit(&sb, ",\"lines\":");
        sb_lines(&sb, a, sh->qty);
        sb_lit(&sb, ",\"cost\":");
        sb_fixed(&sb, sh->cost, OMO_MICRO, 6);
        sb_lit(&sb, ",\"hours\":");
        sb_fixed(&sb, sh->hours, OMO_MILLI, 3);
        sb_lit(&sb, "}");
    }
    sb_lit(&sb, "],\"backordered\":");
    sb_lines(&sb, a, a->backordered);
    if (option && a->nships) {
        int64_t hours = 0;
        for (int s = 0; s < a->nships; s++)
            hours = max64(hours, a->ships[s].hours);
        sb_lit(&sb, ",\"promised_hours\":");
        sb_fixed(&sb, hours, OMO_MILLI, 3);
        sb_lit(&sb, ",\"promised_by\":\"");
        /* hours are thousandths of an hour: 3,600 ms each */
        sb_lit(&sb, omo_time_format(a->decided_at_ms + hours * 3600, tbuf, sizeof tbuf));
        sb_lit(&sb, "\"");
    }
    sb_lit(&sb, option ? "}" : "}\n");
    return sb.len;
}

/* The decision in o as an option of POST /promise (no order id, revision or rules version). */
static size_t option_json(const omo_engine *eng, const order_rec *o, char **buf, size_t *cap)
{
    omo_shipment ships[OMO_PLAN_MAX_SHIP];
    int n = 0;
    for (int s = 0; s < o->nships && n < OMO_PLAN_MAX_SHIP; s++)
        if (ship_units(&o->ships[s], o->nlines))
            ships[n++] = o->ships[s];
    omo_allocation a = {.order_id = NULL,
                        .status = o->status,
                        .reason = o->reason,
                        .decided_at_ms = o->decided_ms,
                        .objective = o->objective,
                        .lines = o->lines,
                        .nlines = o->nlines,
                        .service = o->service,
                        .pickup_store = o->pickup ? o->store : -1,
                        .ships = ships,
                        .nships = n,
                        .backordered = o->backordered,
                        .unproven = o->unproven,
                        .bound = o->bound,
                        .units_bound = o->units_bound};
    return omo_allocation_json(&a, eng->net, buf, cap);
}

void omo_engine_explain(omo_engine *eng, const char *order_id, omo_explain_fn fn, void *ctx)
{
    free(eng->explain_id);
    eng->explain_id = order_id && fn ? omo_xstrdup(order_id) : NULL;
    eng->explain_fn = eng->explain_id ? fn : NULL;
    eng->explain_ctx = ctx;
}

bool omo_engine_picklist(const omo_engine *eng, int node, int max_orders, int64_t now,
                         omo_picklist *out)
{
    memset(out, 0, sizeof *out);
    if (node < 0 || (size_t)node >= eng->net->nnodes ||
        eng->net->nodes[node].type != OMO_NODE_STORE)
        return false;
    snprintf(out->store_id, sizeof out->store_id, "%s", eng->net->nodes[node].id);
    out->generated_ms = now;
    size_t captotes = 0, caprows = 0;
    /* Orders arrive in stream order; the batch takes the oldest by created_at. */
    int *picked_orders = NULL;
    size_t norders = 0, caporders = 0;
    for (size_t i = 0; i < eng->norders; i++) {
        const order_rec *o = &eng->orders[i];
        if (!open_order(o))
            continue;
        for (int s = 0; s < o->nships; s++)
            if (o->ships[s].node == node && o->ships[s].state == OMO_SHIP_ALLOCATED) {
                omo_grow((void **)&picked_orders, &caporders, norders + 1, sizeof(int));
                picked_orders[norders++] = (int)i;
                break;
            }
    }
    /* Oldest first: a stable selection by created_at (arrival breaks ties). */
    for (size_t i = 1; i < norders; i++)
        for (size_t j = i; j > 0 && eng->orders[picked_orders[j]].created_ms <
                                        eng->orders[picked_orders[j - 1]].created_ms;
             j--) {
            int t = picked_orders[j];
            picked_orders[j] = picked_orders[j - 1];
            picked_orders[j - 1] = t;
        }
    if (max_orders > 0 && norders > (size_t)max_orders)
        norders = (size_t)max_orders;
    for (size_t k = 0; k < norders; k++) {
        const order_rec *o = &eng->orders[picked_orders[k]];
        for (int s = 0; s < o->nships; s++) {
            const omo_shipment *sh = &o->ships[s];
            if (sh->node != node || sh->state != OMO_SHIP_ALLOCATED)
                continue;
            omo_grow((void **)&out->totes, &captotes, out->ntotes + 1, sizeof(omo_tote));
            omo_tote *t = &out->totes[out->ntotes];
            memset(t, 0, sizeof *t);
            snprintf(t->shipment_id, sizeof t->shipment_id, "%s/%d", o->id, sh->seq);
            snprintf(t->order_id, sizeof t->order_id, "%s", o->id);
            t->method = sh->method;
            if (o->pickup) {
                snprintf(t->pickup_store, sizeof t->pickup_store, "%s",
                         eng->net->nodes[o->store].id);
                t->promised_ms = o->decided_ms + sh->hours * 3600;
            }
            t->created_ms = o->created_ms;
            for (int l = 0; l < o->nlines; l++) {
                if (sh->qty[l] <= 0)
                    continue;
                omo_grow((void **)&out->rows, &caprows, out->nrows + 1, sizeof(omo_pick_row));
                omo_pick_row *r = &out->rows[out->nrows++];
                memset(r, 0, sizeof *r);
                const omo_stock *st =
                    omo_inventory_get((omo_inventory *)eng->inv, node, o->sku[l], false);
                snprintf(r->bin, sizeof r->bin, "%s", st ? st->bin : "");
                snprintf(r->sku, sizeof r->sku, "%s", o->lines[l].sku);
                snprintf(r->line_id, sizeof r->line_id, "%s", o->lines[l].line_id);
                r->qty = sh->qty[l];
                r->tote = (int)out->ntotes;
            }
            out->ntotes++;
        }
    }
    free(picked_orders);
    return true;
}

size_t omo_shipment_status_json(const omo_shipment_status *st, const omo_network *net, char **buf,
                                size_t *cap)
{
    sbuf sb = {buf, cap, 0};
    char tbuf[40];
    sb_lit(&sb, "{\"type\":\"shipment.status\",\"shipment_id\":");
    sb_str(&sb, st->order_id);
    sb.len--;
    sb_lit(&sb, "/");
    sb_int(&sb, st->seq);
    sb_lit(&sb, "\",\"order_id\":");
    sb_str(&sb, st->order_id);
    sb_lit(&sb, ",\"node_id\":");
    sb_str(&sb, net->nodes[st->node].id);
    sb_lit(&sb, ",\"status\":\"");
    sb_lit(&sb, omo_ship_state_name(st->status));
    sb_lit(&sb, "\",\"at\":\"");
    sb_lit(&sb, omo_time_format(st->at_ms, tbuf, sizeof tbuf));
    sb_lit(&sb, "\",\"lines\":");
    omo_allocation a = {.lines = st->lines, .nlines = st->nlines};
    sb_lines(&sb, &a, st->qty);
    sb_lit(&sb, "}\n");
    return sb.len;
}

void omo_engine_expect(omo_engine *eng, size_t events)
{
    omo_hashset_reserve(&eng->event_ids, events);
    omo_inventory_reserve(eng->inv, events);
}

void omo_engine_set_exhaustive(omo_engine *eng, bool exhaustive)
{
    eng->exhaustive = exhaustive;
}

void omo_engine_set_budgets(omo_engine *eng, uint64_t search, uint64_t mip)
{
    eng->search_budget = search;
    eng->mip_budget = mip;
}

uint64_t omo_engine_regions_skipped(const omo_engine *eng)
{
    return eng->regions_skipped;
}
