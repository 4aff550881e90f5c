/* Property test: `omo solve` against an independent model of the contract.
 *
 * Random small networks, rule files and event streams are generated from a seed; omo decides
 * them; this file replays the same stream on its own model of the decision semantics
 * (CONTRACT.md sections 2-5, README "Decision semantics, pinned down") and checks every
 * allocation omo printed: that it is feasible at that moment (ATP, capacity, eligibility,
 * shipment count, line splitting, partial deny), that it is the optimum found by plain
 * enumeration of every plan, and that the revisions come exactly when the semantics say
 * (re-sourcing, retries, cancellations). Plans that tie on every compared key are all
 * accepted; the model then continues from the plan omo chose.
 *
 * Nothing here uses the solver's code: the model, the enumeration and the event semantics
 * are written from the specification alone. Money is held in millionths and hours in
 * thousandths; instances use at most 2 decimals so every objective is exact.
 *
 * Replay one instance: OMO_PROP_SEED=<seed> OMO_PROP_COUNT=1 test_property --filter
 * 'property/<family>'. A failing instance is also written to tests/artifacts/.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAXN  6  /* nodes */
#define MAXS  5  /* SKUs */
#define MAXL  3  /* lines per order */
#define MAXO  10 /* orders */
#define MAXZ  3  /* zones per service */
#define MAXR  6  /* rules */
#define MAXE  96 /* events */
#define MAXSV 2  /* services */
#define NTAGS 2
#define NCHAN 3
#define BIG   (INT64_C(1) << 40)

#define MICRO_PER_CENT INT64_C(10000)
#define DAY_MS         INT64_C(86400000)

enum { WH = 0, ST = 1 };
enum { M_WH = 0, M_SFS = 1, M_CC = 2 };
enum { EV_SNAP, EV_DELTA, EV_ORDER, EV_CANCEL };
#define SVC_PICKUP 9 /* a rule's `service: pickup` */

static const char *const type_names[] = {"warehouse", "store"};
static const char *const method_names[] = {"warehouse", "ship_from_store", "click_and_collect"};
static const char *const tag_names[NTAGS] = {"hazmat", "fragile"};
static const char *const chan_names[NCHAN] = {"web", "marketplace", "app"};
static const char *const svc_names[MAXSV] = {"standard", "same_day"};
static const struct {
    const char *name;
    int offset_min; /* local = UTC + offset */
} tz_table[] = {{"UTC", 0}, {"Etc/GMT+5", -300}, {"Etc/GMT-3", 180}};
static const char *const node_id_pool[] = {"DC-EAST", "DC-WEST", "S-001", "S-010", "S-1",
                                           "S-2",     "STORE_9", "W.2",   "Wh-1",  "a0",
                                           "b-1",     "Z9",      "S-01",  "zz"};
static const char *const sku_id_pool[] = {"SKU-1", "SKU-2", "sku.3", "SKU_4", "X5", "SKU-10"};

/* ---------------------------------------------------------------- random numbers */

typedef struct prng {
    uint64_t s;
} prng;

static uint64_t rnd_next(prng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static int rnd_int(prng *r, int lo, int hi)
{
    return lo + (int)(rnd_next(r) % (uint64_t)(hi - lo + 1));
}

static double rnd_unit(prng *r)
{
    return (double)(rnd_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

static bool rnd_p(prng *r, double p)
{
    return rnd_unit(r) < p;
}

static double rnd_real(prng *r, double lo, double hi)
{
    return lo + (hi - lo) * rnd_unit(r);
}

/* ---------------------------------------------------------------- the instance model */

typedef struct pnode {
    char id[16];
    int type;
    double lat, lon;
    int tzi;
    bool tz_written;
    bool ship, pickup;
    int64_t pc, hc; /* micro */
    int64_t hh;     /* milli-hours */
    int64_t cap;    /* -1 unlimited */
    int64_t safety;
} pnode;

typedef struct pzone {
    double max_km;
    int64_t cost, hours;
} pzone;

typedef struct pservice {
    unsigned from; /* bit per node type */
    bool from_given;
    pzone z[MAXZ];
    int nz;
} pservice;

typedef struct prule {
    int node, type, sku, tag, chan, svc; /* when; -1 absent */
    unsigned allow;                      /* type bits; 0 absent */
    unsigned deny_nodes;                 /* node bits */
    unsigned deny_methods;               /* method bits */
    int64_t safety;                      /* -1 absent */
} prule;

typedef struct porder {
    char id[16];
    int chan;
    bool pickup;
    int svc; /* ship: service index, -1 = a service the rules do not define */
    int store;
    double clat, clon;
    int nl;
    char lid[MAXL][8];
    int sku[MAXL];
    int qty[MAXL];
} porder;

typedef struct pevent {
    int kind;
    int64_t at;
    int node, sku;
    int64_t val;
    int order;
    int id;     /* event_id number (stock events) */
    bool no_at; /* written without `at`: it takes the latest time seen */
} pevent;

typedef struct pfamily {
    const char *name;
    int min_nodes, max_nodes;
    int max_qty;
    double p_pickup_order, p_transfer, p_split, p_deny, p_cap, p_tz;
    int max_rules;
    double p_walkin, p_receipt, p_snapdown, p_cancel, p_dup;
    int min_orders, max_orders;
    int max_gap_min;
    double p_reject;
    double p_stock;   /* a (node, SKU) starts with a snapshot */
    int stock_max;    /* of that snapshot */
    double p_uniform; /* every node has the same costs and hours */
    double p_no_at;   /* a stock event or cancellation has no `at` */
} pfamily;

typedef struct pinst {
    const pfamily *fam;
    uint64_t seed;
    int nn;
    pnode n[MAXN];
    int rank[MAXN]; /* position of the node's id in byte order */
    int ns;
    char sku[MAXS][16];
    unsigned skutags[MAXS];
    int64_t hour_cost, split_pen; /* micro */
    int max_ship;
    bool split, deny;
    int nsv;
    pservice sv[MAXSV];
    bool has_transfer;
    pservice transfer;
    int nr;
    prule r[MAXR];
    int no;
    porder o[MAXO];
    int ne;
    pevent e[MAXE];
} pinst;

static double dist_km(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    return 2.0 * 6371.0 * asin(sqrt(a));
}

/* The first zone covering d, or NULL. */
static const pzone *zone_for(const pservice *sv, double d)
{
    for (int i = 0; i < sv->nz; i++)
        if (d <= sv->z[i].max_km)
            return &sv->z[i];
    return NULL;
}

/* Distances this close to a zone edge are avoided: formulas may differ in the last bits. */
static bool near_edge(const pservice *sv, double d)
{
    for (int i = 0; i < sv->nz; i++)
        if (fabs(d - sv->z[i].max_km) < 0.5)
            return true;
    return false;
}

/* ---------------------------------------------------------------- generation */

static int64_t cents(prng *r, int lo, int hi)
{
    return (int64_t)rnd_int(r, lo, hi) * MICRO_PER_CENT;
}

static void gen_service(prng *r, pservice *sv, int nz_max, double first_lo, double first_hi)
{
    sv->nz = rnd_int(r, 1, nz_max);
    /* a lone zone is drawn wider, so that most orders still find a node or two */
    double km =
        sv->nz == 1 ? rnd_real(r, first_hi * 0.6, first_hi * 1.6) : rnd_real(r, first_lo, first_hi);
    for (int i = 0; i < sv->nz; i++) {
        sv->z[i].max_km = round(km);
        sv->z[i].cost = cents(r, 0, 999);
        sv->z[i].hours = (int64_t)rnd_int(r, 1, 96) * 1000 + (rnd_p(r, 0.2) ? 500 : 0);
        km = sv->z[i].max_km + rnd_real(r, 100, 400);
    }
    sv->from = 3;
    sv->from_given = false;
}

static void gen_rule(prng *r, pinst *I, prule *ru)
{
    ru->node = ru->type = ru->sku = ru->tag = ru->chan = ru->svc = -1;
    ru->allow = ru->deny_nodes = ru->deny_methods = 0;
    ru->safety = -1;
    int nkeys = rnd_int(r, 1, 2);
    for (int k = 0; k < nkeys; k++) {
        switch (rnd_int(r, 0, 5)) {
        case 0:
            ru->node = rnd_int(r, 0, I->nn - 1);
            break;
        case 1:
            ru->type = rnd_int(r, 0, 1);
            break;
        case 2:
            ru->sku = rnd_int(r, 0, I->ns - 1);
            break;
        case 3:
            ru->tag = rnd_int(r, 0, NTAGS - 1);
            break;
        case 4:
            ru->chan = rnd_int(r, 0, NCHAN - 1);
            break;
        default:
            ru->svc = rnd_p(r, 0.4) ? SVC_PICKUP : rnd_int(r, 0, I->nsv - 1);
            break;
        }
    }
    int nact = rnd_p(r, 0.2) ? 2 : 1;
    for (int k = 0; k < nact; k++) {
        switch (rnd_int(r, 0, 3)) {
        case 0:
            ru->allow = rnd_p(r, 0.5) ? 1u : 2u;
            break;
        case 1:
            ru->deny_nodes |= 1u << rnd_int(r, 0, I->nn - 1);
            if (rnd_p(r, 0.3))
                ru->deny_nodes |= 1u << rnd_int(r, 0, I->nn - 1);
            break;
        case 2:
            ru->deny_methods |= 1u << rnd_int(r, 0, 2);
            break;
        default:
            ru->safety = rnd_int(r, 0, 3);
            break;
        }
    }
}

static void gen_instance(const pfamily *f, uint64_t seed, pinst *I)
{
    prng rs = {seed * 0x2545F4914F6CDD1Dull + 0x1234567ull}, *r = &rs;
    memset(I, 0, sizeof *I);
    I->fam = f;
    I->seed = seed;

    I->split = rnd_p(r, f->p_split);
    I->deny = rnd_p(r, f->p_deny);
    int max_nodes = I->split && f->max_nodes > 4 ? 4 : f->max_nodes;
    int max_qty = I->split && f->max_qty > 3 ? 3 : f->max_qty;
    I->hour_cost = rnd_p(r, 0.2) ? 0 : cents(r, 0, 500);
    I->split_pen = rnd_p(r, 0.2) ? 0 : cents(r, 0, 500);
    I->max_ship = rnd_int(r, 1, 3);

    I->nsv = rnd_p(r, 0.5) ? 2 : 1;
    gen_service(r, &I->sv[0], 3, 40, 250);
    if (I->nsv == 2) {
        gen_service(r, &I->sv[1], 1, 40, 250);
        static const unsigned froms[] = {2, 2, 1, 3};
        I->sv[1].from = froms[rnd_int(r, 0, 3)];
        I->sv[1].from_given = true;
    }
    I->has_transfer = rnd_p(r, f->p_transfer);
    if (I->has_transfer) {
        gen_service(r, &I->transfer, 2, 50, 250);
        static const unsigned froms[] = {1, 1, 2, 3};
        I->transfer.from = froms[rnd_int(r, 0, 3)];
        I->transfer.from_given = true;
    }

    /* nodes */
    I->nn = rnd_int(r, f->min_nodes, max_nodes);
    int pool = (int)(sizeof node_id_pool / sizeof *node_id_pool);
    int picked[MAXN];
    for (int i = 0; i < I->nn; i++) {
        bool dup;
        do {
            picked[i] = rnd_int(r, 0, pool - 1);
            dup = false;
            for (int j = 0; j < i; j++)
                dup |= picked[j] == picked[i];
        } while (dup);
        pnode *n = &I->n[i];
        snprintf(n->id, sizeof n->id, "%s", node_id_pool[picked[i]]);
        n->type = rnd_p(r, 0.4) ? WH : ST;
        for (int tries = 0; tries < 100; tries++) {
            n->lat = round(rnd_real(r, 44.0, 46.5) * 1e4) / 1e4;
            n->lon = round(rnd_real(r, 3.0, 7.0) * 1e4) / 1e4;
            bool bad = false;
            for (int j = 0; j < i && I->has_transfer; j++)
                bad |= near_edge(&I->transfer, dist_km(n->lat, n->lon, I->n[j].lat, I->n[j].lon));
            if (!bad)
                break;
        }
        n->tzi = rnd_p(r, f->p_tz) ? rnd_int(r, 1, 2) : 0;
        n->tz_written = n->tzi != 0 || rnd_p(r, 0.3);
        n->ship = n->type == WH ? rnd_p(r, 0.9) : rnd_p(r, 0.7);
        n->pickup = n->type == ST && rnd_p(r, 0.65);
        n->pc = cents(r, 0, 99);
        n->hc = cents(r, 0, 500);
        n->hh = (int64_t)(n->type == WH ? rnd_int(r, 4, 48) : rnd_int(r, 0, 8)) * 1000;
        n->cap = rnd_p(r, f->p_cap) ? rnd_int(r, 1, 6) : -1;
        n->safety = rnd_p(r, 0.25) ? rnd_int(r, 1, 2) : 0;
    }
    /* Identical nodes make objectives tie, so that the node-id order decides. */
    if (rnd_p(r, f->p_uniform))
        for (int i = 1; i < I->nn; i++) {
            I->n[i].pc = I->n[0].pc;
            I->n[i].hc = I->n[0].hc;
            I->n[i].hh = I->n[0].hh;
        }
    for (int i = 0; i < I->nn; i++) {
        I->rank[i] = 0;
        for (int j = 0; j < I->nn; j++)
            if (strcmp(I->n[j].id, I->n[i].id) < 0)
                I->rank[i]++;
    }

    /* SKUs */
    I->ns = rnd_int(r, 1, MAXS);
    int spool = (int)(sizeof sku_id_pool / sizeof *sku_id_pool);
    int off = rnd_int(r, 0, spool - 1);
    for (int s = 0; s < I->ns; s++) {
        snprintf(I->sku[s], sizeof I->sku[s], "%s", sku_id_pool[(off + s) % spool]);
        for (int t = 0; t < NTAGS; t++)
            if (rnd_p(r, 0.3))
                I->skutags[s] |= 1u << t;
    }

    /* rules */
    I->nr = f->max_rules ? rnd_int(r, 0, f->max_rules) : 0;
    for (int i = 0; i < I->nr; i++)
        gen_rule(r, I, &I->r[i]);

    /* events */
    int64_t onhand[MAXN][MAXS] = {{0}};
    int64_t t = 1795392000000LL; /* 2026-11-23T00:00:00Z */
    int next_ev_id = 1;
    bool rejected[MAXO] = {false}, cancelled[MAXO] = {false};
#define ADD_EVENT(...)                                                                             \
    do {                                                                                           \
        if (I->ne < MAXE)                                                                          \
            I->e[I->ne++] = (pevent){__VA_ARGS__};                                                 \
    } while (0)
#define STEP() (t += (int64_t)rnd_int(r, 0, f->max_gap_min) * 60000)

    for (int n = 0; n < I->nn; n++)
        for (int s = 0; s < I->ns; s++)
            if (rnd_p(r, f->p_stock)) {
                onhand[n][s] = rnd_int(r, 0, f->stock_max);
                ADD_EVENT(.kind = EV_SNAP, .at = t, .node = n, .sku = s, .val = onhand[n][s],
                          .id = next_ev_id++);
            }

    int nstores = 0, stores[MAXN], npickup = 0, pickups[MAXN];
    for (int n = 0; n < I->nn; n++) {
        if (I->n[n].type == ST)
            stores[nstores++] = n;
        if (I->n[n].pickup)
            pickups[npickup++] = n;
    }

    I->no = rnd_int(r, f->min_orders, f->max_orders);
    for (int oi = 0; oi < I->no; oi++) {
        porder *o = &I->o[oi];
        snprintf(o->id, sizeof o->id, "O-%d", oi + 1);
        o->chan = rnd_int(r, 0, NCHAN - 1);
        o->pickup = nstores > 0 && rnd_p(r, f->p_pickup_order);
        if (o->pickup) {
            if (rnd_p(r, f->p_reject)) {
                o->store = stores[rnd_int(r, 0, nstores - 1)];
            } else if (npickup > 0) {
                o->store = pickups[rnd_int(r, 0, npickup - 1)];
            } else {
                o->pickup = false;
            }
            rejected[oi] = o->pickup && !I->n[o->store].pickup;
        }
        if (!o->pickup) {
            o->svc = rnd_p(r, f->p_reject / 2) ? -1 : rnd_int(r, 0, I->nsv - 1);
            rejected[oi] = o->svc < 0;
            for (int tries = 0; tries < 100; tries++) {
                o->clat = round(rnd_real(r, 44.0, 46.5) * 1e4) / 1e4;
                o->clon = round(rnd_real(r, 3.0, 7.0) * 1e4) / 1e4;
                bool bad = false;
                for (int n = 0; n < I->nn && o->svc >= 0; n++)
                    bad |= near_edge(&I->sv[o->svc],
                                     dist_km(I->n[n].lat, I->n[n].lon, o->clat, o->clon));
                if (!bad)
                    break;
            }
        }
        o->nl = rnd_int(r, 1, MAXL);
        for (int l = 0; l < o->nl; l++) {
            snprintf(o->lid[l], sizeof o->lid[l], rnd_p(r, 0.8) ? "%d" : "L%d", l + 1);
            o->sku[l] = rnd_int(r, 0, I->ns - 1);
            o->qty[l] = rnd_int(r, 1, max_qty);
        }
        STEP();
        ADD_EVENT(.kind = EV_ORDER, .at = t, .order = oi);

        /* what happens before the next order */
        if (rnd_p(r, f->p_walkin)) {
            int n = rnd_int(r, 0, I->nn - 1), s = rnd_int(r, 0, I->ns - 1);
            int d = -rnd_int(r, 1, 3);
            onhand[n][s] = onhand[n][s] + d < 0 ? 0 : onhand[n][s] + d;
            STEP();
            ADD_EVENT(.kind = EV_DELTA, .at = t, .node = n, .sku = s, .val = d, .id = next_ev_id++);
        }
        if (rnd_p(r, f->p_snapdown)) {
            int n = rnd_int(r, 0, I->nn - 1), s = rnd_int(r, 0, I->ns - 1);
            for (int tries = 0; tries < 10 && onhand[n][s] == 0; tries++) {
                n = rnd_int(r, 0, I->nn - 1);
                s = rnd_int(r, 0, I->ns - 1);
            }
            onhand[n][s] = onhand[n][s] > 0 ? rnd_int(r, 0, (int)onhand[n][s] - 1) : 0;
            STEP();
            ADD_EVENT(.kind = EV_SNAP, .at = t, .node = n, .sku = s, .val = onhand[n][s],
                      .id = next_ev_id++);
        }
        if (rnd_p(r, f->p_receipt)) {
            int n = rnd_int(r, 0, I->nn - 1), s = o->sku[rnd_int(r, 0, o->nl - 1)];
            if (rnd_p(r, 0.3))
                s = rnd_int(r, 0, I->ns - 1);
            STEP();
            if (rnd_p(r, 0.5)) {
                int d = rnd_int(r, 1, 4);
                onhand[n][s] += d;
                ADD_EVENT(.kind = EV_DELTA, .at = t, .node = n, .sku = s, .val = d,
                          .id = next_ev_id++);
            } else {
                onhand[n][s] += rnd_int(r, 0, 3);
                ADD_EVENT(.kind = EV_SNAP, .at = t, .node = n, .sku = s, .val = onhand[n][s],
                          .id = next_ev_id++);
            }
        }
        if (rnd_p(r, f->p_cancel)) {
            int c = rnd_int(r, 0, oi);
            if (!rejected[c] && !cancelled[c]) {
                cancelled[c] = true;
                STEP();
                ADD_EVENT(.kind = EV_CANCEL, .at = t, .order = c);
            }
        }
        if (rnd_p(r, f->p_dup) && I->ne > 0) {
            pevent dup = I->e[rnd_int(r, 0, I->ne - 1)];
            if (!(dup.kind == EV_CANCEL && rnd_p(r, 0.5)))
                ADD_EVENT(dup.kind, dup.at, dup.node, dup.sku, dup.val, dup.order, dup.id, false);
        }
    }
#undef ADD_EVENT
#undef STEP
    for (int i = 0; i < I->ne; i++)
        if (I->e[i].kind != EV_ORDER && rnd_p(r, f->p_no_at))
            I->e[i].no_at = true;
}

/* ---------------------------------------------------------------- writing the files */

static void put_money(FILE *f, int64_t micro)
{
    fprintf(f, "%" PRId64 ".%02" PRId64, micro / 1000000, (micro % 1000000) / MICRO_PER_CENT);
}

static void put_hours(FILE *f, int64_t milli)
{
    if (milli % 1000)
        fprintf(f, "%" PRId64 ".%" PRId64, milli / 1000, (milli % 1000) / 100);
    else
        fprintf(f, "%" PRId64, milli / 1000);
}

static void put_types(FILE *f, unsigned mask)
{
    fprintf(f, "[");
    bool first = true;
    for (int t = 0; t < 2; t++)
        if (mask & (1u << t)) {
            fprintf(f, "%s%s", first ? "" : ", ", type_names[t]);
            first = false;
        }
    fprintf(f, "]");
}

static void put_zones(FILE *f, const pservice *sv, const char *indent)
{
    fprintf(f, "%szones:\n", indent);
    for (int i = 0; i < sv->nz; i++) {
        fprintf(f, "%s  - {max_km: %.0f, cost: ", indent, sv->z[i].max_km);
        put_money(f, sv->z[i].cost);
        fprintf(f, ", hours: ");
        put_hours(f, sv->z[i].hours);
        fprintf(f, "}\n");
    }
}

static char *write_network(const pinst *I)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fprintf(f, "nodes:\n");
    for (int i = 0; i < I->nn; i++) {
        const pnode *n = &I->n[i];
        fprintf(f, "  - id: %s\n    type: %s\n    lat: %.4f\n    lon: %.4f\n", n->id,
                type_names[n->type], n->lat, n->lon);
        if (n->tz_written)
            fprintf(f, "    timezone: %s\n", tz_table[n->tzi].name);
        fprintf(f, "    ship: %s\n    pickup: %s\n", n->ship ? "true" : "false",
                n->pickup ? "true" : "false");
        fprintf(f, "    pick_cost_per_unit: ");
        put_money(f, n->pc);
        fprintf(f, "\n    handling_cost: ");
        put_money(f, n->hc);
        fprintf(f, "\n    handling_hours: ");
        put_hours(f, n->hh);
        fprintf(f, "\n");
        if (n->cap >= 0)
            fprintf(f, "    daily_capacity: %" PRId64 "\n", n->cap);
        fprintf(f, "    safety_stock: %" PRId64 "\n", n->safety);
    }
    bool any_tags = false;
    for (int s = 0; s < I->ns; s++)
        any_tags |= I->skutags[s] != 0;
    if (any_tags) {
        fprintf(f, "skus:\n");
        for (int s = 0; s < I->ns; s++) {
            if (!I->skutags[s])
                continue;
            fprintf(f, "  - {sku: %s, tags: [", I->sku[s]);
            bool first = true;
            for (int t = 0; t < NTAGS; t++)
                if (I->skutags[s] & (1u << t)) {
                    fprintf(f, "%s%s", first ? "" : ", ", tag_names[t]);
                    first = false;
                }
            fprintf(f, "]}\n");
        }
    }
    fclose(f);
    return buf;
}

static char *write_rules(const pinst *I)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fprintf(f, "version: 1\nobjective:\n  hour_cost: ");
    put_money(f, I->hour_cost);
    fprintf(f, "\n  split_penalty: ");
    put_money(f, I->split_pen);
    fprintf(f, "\nmax_shipments: %d\nsplit_lines: %s\npartial: %s\nservices:\n", I->max_ship,
            I->split ? "true" : "false", I->deny ? "deny" : "allow");
    for (int i = 0; i < I->nsv; i++) {
        fprintf(f, "  %s:\n", svc_names[i]);
        if (I->sv[i].from_given) {
            fprintf(f, "    from: ");
            put_types(f, I->sv[i].from);
            fprintf(f, "\n");
        }
        put_zones(f, &I->sv[i], "    ");
    }
    if (I->has_transfer) {
        fprintf(f, "pickup:\n  transfer:\n    from: ");
        put_types(f, I->transfer.from);
        fprintf(f, "\n");
        put_zones(f, &I->transfer, "    ");
    }
    if (I->nr > 0)
        fprintf(f, "rules:\n");
    for (int i = 0; i < I->nr; i++) {
        const prule *ru = &I->r[i];
        fprintf(f, "  - name: rule %d\n    when: {", i + 1);
        const char *sep = "";
        if (ru->node >= 0) {
            fprintf(f, "%snode: %s", sep, I->n[ru->node].id);
            sep = ", ";
        }
        if (ru->type >= 0) {
            fprintf(f, "%snode_type: %s", sep, type_names[ru->type]);
            sep = ", ";
        }
        if (ru->sku >= 0) {
            fprintf(f, "%ssku: %s", sep, I->sku[ru->sku]);
            sep = ", ";
        }
        if (ru->tag >= 0) {
            fprintf(f, "%ssku_tag: %s", sep, tag_names[ru->tag]);
            sep = ", ";
        }
        if (ru->chan >= 0) {
            fprintf(f, "%schannel: %s", sep, chan_names[ru->chan]);
            sep = ", ";
        }
        if (ru->svc >= 0)
            fprintf(f, "%sservice: %s", sep, ru->svc == SVC_PICKUP ? "pickup" : svc_names[ru->svc]);
        fprintf(f, "}\n");
        if (ru->allow) {
            fprintf(f, "    allow_node_types: ");
            put_types(f, ru->allow);
            fprintf(f, "\n");
        }
        if (ru->deny_nodes) {
            fprintf(f, "    deny_nodes: [");
            const char *s2 = "";
            for (int n = 0; n < I->nn; n++)
                if (ru->deny_nodes & (1u << n)) {
                    fprintf(f, "%s%s", s2, I->n[n].id);
                    s2 = ", ";
                }
            fprintf(f, "]\n");
        }
        if (ru->deny_methods) {
            fprintf(f, "    deny_methods: [");
            const char *s2 = "";
            for (int m = 0; m < 3; m++)
                if (ru->deny_methods & (1u << m)) {
                    fprintf(f, "%s%s", s2, method_names[m]);
                    s2 = ", ";
                }
            fprintf(f, "]\n");
        }
        if (ru->safety >= 0)
            fprintf(f, "    safety_stock: %" PRId64 "\n", ru->safety);
    }
    fclose(f);
    return buf;
}

static void fmt_time(int64_t ms, char *buf, size_t len)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static char *write_events(const pinst *I)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    for (int i = 0; i < I->ne; i++) {
        const pevent *e = &I->e[i];
        char at[48] = "";
        if (!e->no_at) {
            char ts[32];
            fmt_time(e->at, ts, sizeof ts);
            snprintf(at, sizeof at, ",\"at\":\"%s\"", ts);
        }
        switch (e->kind) {
        case EV_SNAP:
            fprintf(f,
                    "{\"type\":\"stock.snapshot\",\"event_id\":\"ev-%d\",\"node_id\":\"%s\","
                    "\"sku\":\"%s\",\"on_hand\":%" PRId64 "%s}\n",
                    e->id, I->n[e->node].id, I->sku[e->sku], e->val, at);
            break;
        case EV_DELTA:
            fprintf(f,
                    "{\"type\":\"stock.delta\",\"event_id\":\"ev-%d\",\"node_id\":\"%s\","
                    "\"sku\":\"%s\",\"delta\":%" PRId64 ",\"reason\":\"%s\"%s}\n",
                    e->id, I->n[e->node].id, I->sku[e->sku], e->val,
                    e->val < 0 ? "pos_sale" : "receipt", at);
            break;
        case EV_CANCEL:
            fprintf(f, "{\"type\":\"order.cancelled\",\"order_id\":\"%s\"%s}\n", I->o[e->order].id,
                    at);
            break;
        default: {
            const porder *o = &I->o[e->order];
            fmt_time(e->at, at, sizeof at);
            fprintf(f,
                    "{\"type\":\"order.created\",\"order_id\":\"%s\",\"created_at\":\"%s\","
                    "\"channel\":\"%s\",",
                    o->id, at, chan_names[o->chan]);
            if (o->pickup)
                fprintf(f, "\"delivery\":{\"method\":\"pickup\",\"store_id\":\"%s\"},",
                        I->n[o->store].id);
            else
                fprintf(f,
                        "\"customer\":{\"lat\":%.4f,\"lon\":%.4f},"
                        "\"delivery\":{\"method\":\"ship\",\"service\":\"%s\"},",
                        o->clat, o->clon, o->svc >= 0 ? svc_names[o->svc] : "express");
            fprintf(f, "\"lines\":[");
            for (int l = 0; l < o->nl; l++)
                fprintf(f, "%s{\"line_id\":\"%s\",\"sku\":\"%s\",\"qty\":%d}", l ? "," : "",
                        o->lid[l], I->sku[o->sku[l]], o->qty[l]);
            fprintf(f, "]}\n");
            break;
        }
        }
    }
    fclose(f);
    return buf;
}

/* ---------------------------------------------------------------- decision model */

/* Everything one decision of one order depends on, at one instant. */
typedef struct pctx {
    int order;
    bool elig[MAXN][MAXL];
    int64_t atp[MAXN][MAXS];
    int64_t cap[MAXN]; /* units still free on the decision's local day */
    int64_t cost[MAXN], hours[MAXN];
    int method[MAXN];
    int64_t day[MAXN];
} pctx;

typedef struct pkey {
    int64_t units, obj;
    int nship;
    int ranks[MAXN]; /* ascending */
} pkey;

/* < 0 when a is the better plan. */
static int key_cmp(const pkey *a, const pkey *b)
{
    if (a->units != b->units)
        return a->units > b->units ? -1 : 1;
    if (a->obj != b->obj)
        return a->obj < b->obj ? -1 : 1;
    if (a->nship != b->nship)
        return a->nship < b->nship ? -1 : 1;
    for (int i = 0; i < a->nship; i++)
        if (a->ranks[i] != b->ranks[i])
            return a->ranks[i] < b->ranks[i] ? -1 : 1;
    return 0;
}

/* The key of the plan taking u[n] units from each node. */
static void plan_key(const pinst *I, const pctx *c, const int64_t u[MAXN], pkey *k)
{
    memset(k, 0, sizeof *k);
    int64_t maxh = 0;
    for (int n = 0; n < I->nn; n++) {
        if (u[n] <= 0)
            continue;
        k->units += u[n];
        k->obj += c->cost[n] + u[n] * I->n[n].pc;
        if (c->hours[n] > maxh)
            maxh = c->hours[n];
        k->ranks[k->nship++] = I->rank[n];
    }
    if (k->nship > 0)
        k->obj += I->hour_cost * maxh / 1000 + I->split_pen * (k->nship - 1);
    for (int i = 1; i < k->nship; i++)
        for (int j = i; j > 0 && k->ranks[j - 1] > k->ranks[j]; j--) {
            int tmp = k->ranks[j];
            k->ranks[j] = k->ranks[j - 1];
            k->ranks[j - 1] = tmp;
        }
}

static bool rule_matches(const pinst *I, const prule *ru, const porder *o, int n, int s)
{
    if (ru->node >= 0 && ru->node != n)
        return false;
    if (ru->type >= 0 && ru->type != I->n[n].type)
        return false;
    if (ru->sku >= 0 && ru->sku != s)
        return false;
    if (ru->tag >= 0 && !(I->skutags[s] & (1u << ru->tag)))
        return false;
    if (ru->chan >= 0 && ru->chan != o->chan)
        return false;
    if (ru->svc >= 0 && ru->svc != (o->pickup ? SVC_PICKUP : o->svc))
        return false;
    return true;
}

/* ---------------------------------------------------------------- simulation state */

typedef struct pship {
    int node;
    int64_t day;
    int qty[MAXL];
    char sid[48];
} pship;

typedef struct psorder {
    bool known, cancelled, rejected;
    int rev;
    int nsh;
    pship sh[MAXN];
} psorder;

typedef struct psim {
    int64_t onhand[MAXN][MAXS];
    psorder o[MAXO];
    bool seen_ev[4 * MAXE];
} psim;

static bool order_active(const psim *S, int oi)
{
    return S->o[oi].known && !S->o[oi].cancelled && !S->o[oi].rejected;
}

static int64_t order_units(const psorder *so, int nl)
{
    int64_t u = 0;
    for (int i = 0; i < so->nsh; i++)
        for (int l = 0; l < nl; l++)
            u += so->sh[i].qty[l];
    return u;
}

static int64_t line_alloc(const psorder *so, int l)
{
    int64_t u = 0;
    for (int i = 0; i < so->nsh; i++)
        u += so->sh[i].qty[l];
    return u;
}

static int64_t reserved_at(const pinst *I, const psim *S, int n, int s, int except)
{
    int64_t res = 0;
    for (int j = 0; j < I->no; j++) {
        if (j == except || !order_active(S, j))
            continue;
        const psorder *so = &S->o[j];
        for (int i = 0; i < so->nsh; i++)
            if (so->sh[i].node == n)
                for (int l = 0; l < I->o[j].nl; l++)
                    if (I->o[j].sku[l] == s)
                        res += so->sh[i].qty[l];
    }
    return res;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The decision context of order oi at time t, the order's own allocation released. */
static void build_ctx(const pinst *I, const psim *S, int oi, int64_t t, pctx *c)
{
    const porder *o = &I->o[oi];
    memset(c, 0, sizeof *c);
    c->order = oi;
    int64_t used[MAXN] = {0};
    for (int n = 0; n < I->nn; n++)
        c->day[n] = floor_div(t + (int64_t)tz_table[I->n[n].tzi].offset_min * 60000, DAY_MS);
    for (int j = 0; j < I->no; j++) {
        if (j == oi || !order_active(S, j))
            continue;
        const psorder *so = &S->o[j];
        for (int i = 0; i < so->nsh; i++)
            if (so->sh[i].day == c->day[so->sh[i].node])
                for (int l = 0; l < I->o[j].nl; l++)
                    used[so->sh[i].node] += so->sh[i].qty[l];
    }
    for (int n = 0; n < I->nn; n++) {
        const pnode *nd = &I->n[n];
        bool ok;
        const pzone *z;
        if (o->pickup) {
            c->method[n] = M_CC;
            if (n == o->store) {
                ok = nd->pickup;
                c->cost[n] = nd->hc;
                c->hours[n] = nd->hh;
            } else {
                z = I->has_transfer
                        ? zone_for(&I->transfer, dist_km(nd->lat, nd->lon, I->n[o->store].lat,
                                                         I->n[o->store].lon))
                        : NULL;
                ok = z && (I->transfer.from & (1u << nd->type));
                c->cost[n] = nd->hc + (z ? z->cost : 0);
                c->hours[n] = nd->hh + (z ? z->hours : 0);
            }
        } else {
            c->method[n] = nd->type == WH ? M_WH : M_SFS;
            const pservice *sv = &I->sv[o->svc];
            z = zone_for(sv, dist_km(nd->lat, nd->lon, o->clat, o->clon));
            ok = nd->ship && (sv->from & (1u << nd->type)) && z;
            c->cost[n] = nd->hc + (z ? z->cost : 0);
            c->hours[n] = nd->hh + (z ? z->hours : 0);
        }
        c->cap[n] = nd->cap < 0 ? BIG : (nd->cap > used[n] ? nd->cap - used[n] : 0);
        for (int s = 0; s < I->ns; s++) {
            int64_t safety = nd->safety;
            for (int i = 0; i < I->nr; i++)
                if (I->r[i].safety >= 0 && rule_matches(I, &I->r[i], o, n, s))
                    safety = I->r[i].safety;
            int64_t a = S->onhand[n][s] - reserved_at(I, S, n, s, oi) - safety;
            c->atp[n][s] = a > 0 ? a : 0;
        }
        for (int l = 0; l < o->nl; l++) {
            bool e = ok;
            for (int i = 0; i < I->nr && e; i++) {
                const prule *ru = &I->r[i];
                if (!rule_matches(I, ru, o, n, o->sku[l]))
                    continue;
                if (ru->allow && !(ru->allow & (1u << nd->type)))
                    e = false;
                if (ru->deny_nodes & (1u << n))
                    e = false;
                if (ru->deny_methods & (1u << c->method[n]))
                    e = false;
            }
            c->elig[n][l] = e;
        }
    }
}

/* ---------------------------------------------------------------- brute force */

typedef struct bf {
    const pinst *I;
    const pctx *c;
    const porder *o;
    pkey best;
    bool have;
    int assign[MAXL];
    /* split lines: units of distinct SKU u from node n */
    int nu;
    int usku[MAXL];
    int64_t udemand[MAXL];
    int64_t nodeuse[MAXN];
    int nused;
    int64_t cur_units;
} bf;

static void bf_offer(bf *b, const int64_t u[MAXN])
{
    pkey k;
    plan_key(b->I, b->c, u, &k);
    if (k.nship > b->I->max_ship)
        return;
    if (!b->have || key_cmp(&k, &b->best) < 0) {
        b->best = k;
        b->have = true;
    }
}

/* Every line to one node or none; for a fixed assignment the most units each node can give
 * is taken (plans with fewer units are beaten by it on the first key). */
static void bf_lines(bf *b, int l)
{
    const pinst *I = b->I;
    const pctx *c = b->c;
    const porder *o = b->o;
    if (l >= o->nl || l >= MAXL) { /* nl <= MAXL: the second says so to the optimiser */
        int64_t d[MAXN][MAXS] = {{0}}, u[MAXN] = {0};
        int nassigned = 0;
        for (int i = 0; i < o->nl; i++) {
            if (b->assign[i] < 0)
                continue;
            nassigned++;
            d[b->assign[i]][o->sku[i]] += o->qty[i];
        }
        /* partial: deny takes every line or none */
        if (I->deny && nassigned != 0 && nassigned != o->nl)
            return;
        for (int n = 0; n < I->nn; n++) {
            for (int s = 0; s < I->ns; s++) {
                if (I->deny && d[n][s] > c->atp[n][s])
                    return;
                u[n] += d[n][s] < c->atp[n][s] ? d[n][s] : c->atp[n][s];
            }
            if (I->deny && u[n] > c->cap[n])
                return;
            if (u[n] > c->cap[n])
                u[n] = c->cap[n];
        }
        bf_offer(b, u);
        return;
    }
    b->assign[l] = -1;
    bf_lines(b, l + 1);
    for (int n = 0; n < I->nn; n++)
        if (c->elig[n][l]) {
            b->assign[l] = n;
            bf_lines(b, l + 1);
        }
}

/* split_lines: every vector of units per (node, SKU). */
static void bf_split(bf *b, int ui, int n, int64_t rem)
{
    const pinst *I = b->I;
    const pctx *c = b->c;
    if (ui == b->nu) {
        bf_offer(b, b->nodeuse);
        return;
    }
    if (n == I->nn) {
        if (I->deny && rem > 0)
            return;
        bf_split(b, ui + 1, 0, ui + 1 < b->nu ? b->udemand[ui + 1] : 0);
        return;
    }
    if (b->have) {
        int64_t ub = b->cur_units + rem;
        for (int k = ui + 1; k < b->nu; k++)
            ub += b->udemand[k];
        if (ub < b->best.units)
            return;
    }
    int s = b->usku[ui];
    bool el = false;
    for (int l = 0; l < b->o->nl; l++)
        if (b->o->sku[l] == s)
            el = c->elig[n][l];
    int64_t maxx = el ? rem : 0;
    if (c->atp[n][s] < maxx)
        maxx = c->atp[n][s];
    if (c->cap[n] - b->nodeuse[n] < maxx)
        maxx = c->cap[n] - b->nodeuse[n];
    for (int64_t x = maxx; x >= 0; x--) {
        bool opens = x > 0 && b->nodeuse[n] == 0;
        if (opens && b->nused + 1 > I->max_ship)
            continue;
        b->nodeuse[n] += x;
        b->cur_units += x;
        b->nused += opens;
        bf_split(b, ui, n + 1, rem - x);
        b->nused -= opens;
        b->cur_units -= x;
        b->nodeuse[n] -= x;
    }
}

/* The best key over every feasible plan of the context's order. */
static pkey brute_best(const pinst *I, const pctx *c)
{
    bf b;
    memset(&b, 0, sizeof b);
    b.I = I;
    b.c = c;
    b.o = &I->o[c->order];
    if (!I->split) {
        bf_lines(&b, 0);
    } else {
        for (int l = 0; l < b.o->nl; l++) {
            int k = 0;
            while (k < b.nu && b.usku[k] != b.o->sku[l])
                k++;
            if (k == b.nu)
                b.usku[b.nu++] = b.o->sku[l];
            b.udemand[k] += b.o->qty[l];
        }
        bf_split(&b, 0, 0, b.udemand[0]);
    }
    /* the empty plan is always feasible */
    int64_t none[MAXN] = {0};
    bf_offer(&b, none);
    return b.best;
}

/* How many plans (distinct units per node and line) reach the best key; only for the ties
 * statistic, so plain lines only (split plans are counted as one). */
static int count_best_rec(const pinst *I, const pctx *c, const pkey *best, int l, int q[MAXL],
                          int at[MAXL])
{
    const porder *o = &I->o[c->order];
    if (l >= o->nl || l >= MAXL) { /* nl <= MAXL: the second says so to the optimiser */
        int64_t u[MAXN] = {0}, per[MAXN][MAXS] = {{0}}, total = 0;
        for (int i = 0; i < o->nl; i++)
            if (q[i] > 0) {
                u[at[i]] += q[i];
                per[at[i]][o->sku[i]] += q[i];
                total += q[i];
            }
        for (int n = 0; n < I->nn; n++) {
            if (u[n] > c->cap[n])
                return 0;
            for (int s = 0; s < I->ns; s++)
                if (per[n][s] > c->atp[n][s])
                    return 0;
        }
        pkey k;
        plan_key(I, c, u, &k);
        return k.nship <= I->max_ship && key_cmp(&k, best) == 0;
    }
    q[l] = 0;
    int count = count_best_rec(I, c, best, l + 1, q, at);
    for (int n = 0; n < I->nn; n++)
        if (c->elig[n][l])
            for (q[l] = 1; q[l] <= o->qty[l]; q[l]++) {
                at[l] = n;
                count += count_best_rec(I, c, best, l + 1, q, at);
            }
    return count;
}

static int count_best(const pinst *I, const pctx *c, const pkey *best)
{
    if (I->split || I->deny || best->units == 0)
        return 1;
    int q[MAXL], at[MAXL];
    return count_best_rec(I, c, best, 0, q, at);
}

static void key_str(const pinst *I, const pkey *k, char *buf, size_t len)
{
    int w = snprintf(buf, len,
                     "units=%" PRId64 " objective=%" PRId64 ".%06" PRId64 " shipments=%d nodes=[",
                     k->units, k->obj / 1000000, k->obj % 1000000, k->nship);
    for (int i = 0; i < k->nship && w > 0 && (size_t)w < len; i++)
        for (int n = 0; n < I->nn; n++)
            if (I->rank[n] == k->ranks[i])
                w += snprintf(buf + w, len - (size_t)w, "%s%s", i ? "," : "", I->n[n].id);
    if (w > 0 && (size_t)w < len)
        snprintf(buf + w, len - (size_t)w, "]");
}

/* ---------------------------------------------------------------- checking one allocation */

static bool failf(char *why, size_t wl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool failf(char *why, size_t wl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, wl, fmt, ap);
    va_end(ap);
    return false;
}

static int node_by_id(const pinst *I, const char *id)
{
    for (int n = 0; n < I->nn; n++)
        if (strcmp(I->n[n].id, id) == 0)
            return n;
    return -1;
}

static bool json_fixed(json_t *v, int64_t scale, int64_t *out)
{
    if (!json_is_number(v))
        return false;
    *out = llround(json_number_value(v) * (double)scale);
    return true;
}

static const char *status_for(int64_t units, int64_t demand)
{
    return units == 0 ? "backordered" : units == demand ? "allocated" : "partial";
}

/* Checks that allocation j is a feasible plan for the context and has the best key; fills
 * the plan (nsh shipments in sh) on success. */
static bool check_plan(const pinst *I, const pctx *c, const pkey *best, json_t *j, pship *sh,
                       int *nsh, char *why, size_t wl)
{
    const porder *o = &I->o[c->order];
    int64_t q[MAXN][MAXL] = {{0}};
    bool used[MAXN] = {false};
    int lines_in[MAXL] = {0};
    int64_t demand = 0;
    for (int l = 0; l < o->nl; l++)
        demand += o->qty[l];

    json_t *ships = json_object_get(j, "shipments");
    if (!json_is_array(ships))
        return failf(why, wl, "no shipments array");
    *nsh = 0;
    size_t i;
    json_t *js;
    json_array_foreach(ships, i, js)
    {
        const char *nid = json_string_value(json_object_get(js, "node_id"));
        int n = nid ? node_by_id(I, nid) : -1;
        if (n < 0)
            return failf(why, wl, "shipment %zu: unknown node_id", i);
        if (used[n])
            return failf(why, wl, "two shipments from node %s", nid);
        used[n] = true;
        const char *meth = json_string_value(json_object_get(js, "method"));
        if (!meth || strcmp(meth, method_names[c->method[n]]) != 0)
            return failf(why, wl, "shipment from %s: method %s, want %s", nid,
                         meth ? meth : "(none)", method_names[c->method[n]]);
        const char *svc = json_string_value(json_object_get(js, "service"));
        const char *want_svc = o->pickup ? "pickup" : svc_names[o->svc];
        if (!svc || strcmp(svc, want_svc) != 0)
            return failf(why, wl, "shipment from %s: service %s, want %s", nid,
                         svc ? svc : "(none)", want_svc);
        if (o->pickup) {
            const char *ps = json_string_value(json_object_get(js, "pickup_store_id"));
            if (!ps || strcmp(ps, I->n[o->store].id) != 0)
                return failf(why, wl, "shipment from %s: pickup_store_id %s, want %s", nid,
                             ps ? ps : "(none)", I->n[o->store].id);
        }
        int64_t cost = -1, hours = -1;
        if (!json_fixed(json_object_get(js, "cost"), 1000000, &cost) || cost != c->cost[n])
            return failf(why, wl, "shipment from %s: cost %" PRId64 " micro, want %" PRId64, nid,
                         cost, c->cost[n]);
        if (!json_fixed(json_object_get(js, "hours"), 1000, &hours) || hours != c->hours[n])
            return failf(why, wl, "shipment from %s: hours %" PRId64 " milli, want %" PRId64, nid,
                         hours, c->hours[n]);
        pship *p = &sh[(*nsh)++];
        memset(p, 0, sizeof *p);
        p->node = n;
        p->day = c->day[n];
        const char *sid = json_string_value(json_object_get(js, "shipment_id"));
        snprintf(p->sid, sizeof p->sid, "%s", sid ? sid : "");
        json_t *lines = json_object_get(js, "lines"), *jl;
        size_t k;
        if (!json_is_array(lines) || json_array_size(lines) == 0)
            return failf(why, wl, "shipment from %s: no lines", nid);
        json_array_foreach(lines, k, jl)
        {
            const char *lid = json_string_value(json_object_get(jl, "line_id"));
            const char *sku = json_string_value(json_object_get(jl, "sku"));
            json_t *jq = json_object_get(jl, "qty");
            int l = -1;
            for (int x = 0; lid && x < o->nl; x++)
                if (strcmp(o->lid[x], lid) == 0)
                    l = x;
            if (l < 0)
                return failf(why, wl, "shipment from %s: unknown line_id", nid);
            if (!sku || strcmp(sku, I->sku[o->sku[l]]) != 0)
                return failf(why, wl, "shipment from %s line %s: wrong sku", nid, lid);
            if (!json_is_integer(jq) || json_integer_value(jq) < 1)
                return failf(why, wl, "shipment from %s line %s: bad qty", nid, lid);
            if (q[n][l] > 0)
                return failf(why, wl, "shipment from %s: line %s listed twice", nid, lid);
            if (!c->elig[n][l])
                return failf(why, wl, "line %s is not eligible at %s", lid, nid);
            q[n][l] = json_integer_value(jq);
            p->qty[l] = (int)q[n][l];
            lines_in[l]++;
        }
    }
    if (*nsh > I->max_ship)
        return failf(why, wl, "%d shipments > max_shipments %d", *nsh, I->max_ship);
    int64_t u[MAXN] = {0}, total = 0;
    for (int l = 0; l < o->nl; l++) {
        int64_t t = 0;
        for (int n = 0; n < I->nn; n++)
            t += q[n][l];
        if (t > o->qty[l])
            return failf(why, wl, "line %s: %" PRId64 " units > qty %d", o->lid[l], t, o->qty[l]);
        if (!I->split && lines_in[l] > 1)
            return failf(why, wl, "line %s split over %d nodes with split_lines false", o->lid[l],
                         lines_in[l]);
    }
    for (int n = 0; n < I->nn; n++) {
        int64_t per_sku[MAXS] = {0};
        for (int l = 0; l < o->nl; l++) {
            per_sku[o->sku[l]] += q[n][l];
            u[n] += q[n][l];
        }
        for (int s = 0; s < I->ns; s++)
            if (per_sku[s] > c->atp[n][s])
                return failf(why, wl, "%s: %" PRId64 " units of %s > ATP %" PRId64, I->n[n].id,
                             per_sku[s], I->sku[s], c->atp[n][s]);
        if (u[n] > c->cap[n])
            return failf(why, wl,
                         "%s: %" PRId64 " units > capacity left %" PRId64 " on day %" PRId64,
                         I->n[n].id, u[n], c->cap[n], c->day[n]);
        total += u[n];
    }
    if (I->deny && total != 0 && total != demand)
        return failf(why, wl, "partial: deny but %" PRId64 " of %" PRId64 " units", total, demand);

    pkey k;
    plan_key(I, c, u, &k);
    int64_t obj = -1;
    if (!json_fixed(json_object_get(j, "objective"), 1000000, &obj) || llabs(obj - k.obj) > 1)
        return failf(why, wl, "objective printed %" PRId64 " micro, its plan costs %" PRId64, obj,
                     k.obj);
    const char *st = json_string_value(json_object_get(j, "status"));
    if (!st || strcmp(st, status_for(total, demand)) != 0)
        return failf(why, wl, "status %s, want %s", st ? st : "(none)", status_for(total, demand));

    json_t *bo = json_object_get(j, "backordered"), *jb;
    if (!json_is_array(bo))
        return failf(why, wl, "no backordered array");
    int64_t bo_total = 0;
    size_t bi;
    json_array_foreach(bo, bi, jb)
    {
        const char *lid = json_string_value(json_object_get(jb, "line_id"));
        json_t *jq = json_object_get(jb, "qty");
        int l = -1;
        for (int x = 0; lid && x < o->nl; x++)
            if (strcmp(o->lid[x], lid) == 0)
                l = x;
        if (l < 0 || !json_is_integer(jq))
            return failf(why, wl, "backordered entry %zu malformed", bi);
        int64_t alloc = 0;
        for (int n = 0; n < I->nn; n++)
            alloc += q[n][l];
        if (json_integer_value(jq) != o->qty[l] - alloc)
            return failf(why, wl, "backordered line %s: %" PRId64 ", want %" PRId64, lid,
                         (int64_t)json_integer_value(jq), o->qty[l] - alloc);
        bo_total += json_integer_value(jq);
    }
    if (bo_total != demand - total)
        return failf(why, wl, "backordered %" PRId64 " units, want %" PRId64, bo_total,
                     demand - total);

    if (key_cmp(&k, best) != 0) {
        char a[256], b[256];
        key_str(I, &k, a, sizeof a);
        key_str(I, best, b, sizeof b);
        return failf(why, wl, "not optimal: omo's plan %s; best plan %s", a, b);
    }
    return true;
}

/* ---------------------------------------------------------------- replaying the stream */

/* What the instances of a family exercised, to show the generator reaches every case. */
typedef struct pstats {
    long instances, allocations, first, resourced, retried, retries_idle, cancelled, rejected;
    long allocated, partial, backordered, multi_ship, split_line, ties;
} pstats;

static pstats stats;

typedef struct preplay {
    const pinst *I;
    psim S;
    json_t **out;
    size_t nout, cursor;
    int ev;        /* index of the event being applied */
    int64_t clock; /* latest `at` seen */
    char *why;
    size_t wl;
} preplay;

static const char *ev_kind_name(int kind)
{
    static const char *const names[] = {"stock.snapshot", "stock.delta", "order.created",
                                        "order.cancelled"};
    return names[kind];
}

static bool replay_fail(preplay *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool replay_fail(preplay *R, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char *line = NULL;
    if (R->cursor < R->nout)
        line = json_dumps(R->out[R->cursor], JSON_COMPACT);
    snprintf(R->why, R->wl, "event #%d (%s, line %d of the events file): %s\n  omo's line %zu: %s",
             R->ev, ev_kind_name(R->I->e[R->ev].kind), R->ev + 1, msg, R->cursor + 1,
             line ? line : "(none)");
    free(line);
    return false;
}

/* Takes omo's next allocation, which must be order oi's next revision. */
static json_t *next_alloc(preplay *R, int oi, const char *cause)
{
    const psorder *so = &R->S.o[oi];
    if (R->cursor >= R->nout) {
        replay_fail(R, "expected %s of %s revision %d, omo printed nothing more", cause,
                    R->I->o[oi].id, so->rev + 1);
        return NULL;
    }
    json_t *j = R->out[R->cursor];
    const char *id = json_string_value(json_object_get(j, "order_id"));
    json_t *rev = json_object_get(j, "revision");
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type || strcmp(type, "allocation") != 0 || !id || strcmp(id, R->I->o[oi].id) != 0 ||
        !json_is_integer(rev) || json_integer_value(rev) != so->rev + 1) {
        replay_fail(R, "expected %s of %s revision %d", cause, R->I->o[oi].id, so->rev + 1);
        return NULL;
    }
    return j;
}

/* The decision's time: the order's created_at, or the time of the event that caused it. */
static bool check_decided_at(preplay *R, json_t *j, int64_t t)
{
    char want[32];
    fmt_time(t, want, sizeof want);
    const char *got = json_string_value(json_object_get(j, "decided_at"));
    if (!got || strcmp(got, want) != 0)
        return replay_fail(R, "decided_at %s, want %s", got ? got : "(none)", want);
    return true;
}

/* Shipment ids: ORDER/N, and a node kept from the previous revision keeps its id. */
static bool check_shipment_ids(preplay *R, int oi, const pship *sh, int nsh)
{
    const psorder *so = &R->S.o[oi];
    const char *oid = R->I->o[oi].id;
    size_t olen = strlen(oid);
    for (int i = 0; i < nsh; i++) {
        if (strncmp(sh[i].sid, oid, olen) != 0 || sh[i].sid[olen] != '/' ||
            atoi(sh[i].sid + olen + 1) < 1)
            return replay_fail(R, "shipment id '%s' is not %s/N", sh[i].sid, oid);
        for (int k = 0; k < i; k++)
            if (strcmp(sh[i].sid, sh[k].sid) == 0)
                return replay_fail(R, "shipment id %s used twice", sh[i].sid);
        for (int k = 0; k < so->nsh; k++)
            if (so->sh[k].node == sh[i].node && strcmp(so->sh[k].sid, sh[i].sid) != 0)
                return replay_fail(R, "shipment at %s changed id from %s to %s",
                                   R->I->n[sh[i].node].id, so->sh[k].sid, sh[i].sid);
    }
    return true;
}

/* Decides order oi at time t. A retry prints a revision only when it gains units. */
static bool decide(preplay *R, int oi, int64_t t, const char *cause, bool retry)
{
    const pinst *I = R->I;
    psorder *so = &R->S.o[oi];
    pctx c;
    build_ctx(I, &R->S, oi, t, &c);
    pkey best = brute_best(I, &c);
    if (retry && best.units <= order_units(so, I->o[oi].nl)) {
        stats.retries_idle++;
        return true;
    }
    json_t *j = next_alloc(R, oi, cause);
    if (!j || !check_decided_at(R, j, t))
        return false;
    pship sh[MAXN];
    int nsh = 0;
    char why[768];
    if (!check_plan(I, &c, &best, j, sh, &nsh, why, sizeof why))
        return replay_fail(R, "%s of %s revision %d: %s", cause, I->o[oi].id, so->rev + 1, why);
    if (!check_shipment_ids(R, oi, sh, nsh))
        return false;
    memcpy(so->sh, sh, sizeof sh);
    so->nsh = nsh;
    so->rev++;
    R->cursor++;
    stats.allocations++;
    if (retry)
        stats.retried++;
    else if (so->rev == 1)
        stats.first++;
    else
        stats.resourced++;
    int64_t units = order_units(so, I->o[oi].nl), demand = 0;
    for (int l = 0; l < I->o[oi].nl; l++) {
        demand += I->o[oi].qty[l];
        int from = 0;
        for (int i = 0; i < nsh; i++)
            from += sh[i].qty[l] > 0;
        stats.split_line += from > 1;
    }
    if (units == 0)
        stats.backordered++;
    else if (units == demand)
        stats.allocated++;
    else
        stats.partial++;
    stats.multi_ship += nsh > 1;
    stats.ties += count_best(I, &c, &best) > 1;
    return true;
}

/* Orders with backordered units of an affected SKU, oldest first. */
static bool retry_all(preplay *R, const bool affected[MAXS], int64_t t)
{
    const pinst *I = R->I;
    for (int oi = 0; oi < I->no; oi++) {
        if (!order_active(&R->S, oi))
            continue;
        bool want = false;
        for (int l = 0; l < I->o[oi].nl; l++)
            want |= affected[I->o[oi].sku[l]] && line_alloc(&R->S.o[oi], l) < I->o[oi].qty[l];
        if (want && !decide(R, oi, t, "retry", true))
            return false;
    }
    return true;
}

static bool resource(preplay *R, int n, int s, int64_t t)
{
    const pinst *I = R->I;
    for (int guard = 0; guard < 4 * MAXO; guard++) {
        if (R->S.onhand[n][s] >= reserved_at(I, &R->S, n, s, -1))
            return true;
        int victim = -1;
        for (int oi = I->no - 1; oi >= 0 && victim < 0; oi--) {
            if (!order_active(&R->S, oi))
                continue;
            const psorder *so = &R->S.o[oi];
            for (int i = 0; i < so->nsh; i++)
                if (so->sh[i].node == n)
                    for (int l = 0; l < I->o[oi].nl; l++)
                        if (I->o[oi].sku[l] == s && so->sh[i].qty[l] > 0)
                            victim = oi;
        }
        if (victim < 0)
            return replay_fail(R, "model error: on hand below reserved with no holder");
        if (!decide(R, victim, t, "re-sourcing", false))
            return false;
    }
    return replay_fail(R, "model error: re-sourcing does not end");
}

static bool apply_event(preplay *R, const pevent *e)
{
    const pinst *I = R->I;
    psim *S = &R->S;
    if (!e->no_at && e->at > R->clock)
        R->clock = e->at;
    int64_t t = e->no_at ? R->clock : e->at;
    switch (e->kind) {
    case EV_ORDER: {
        psorder *so = &S->o[e->order];
        const porder *o = &I->o[e->order];
        if (so->known)
            return true; /* a repeated order.created */
        so->known = true;
        const char *reason = NULL;
        if (o->pickup && !I->n[o->store].pickup)
            reason = "pickup_not_accepted";
        else if (!o->pickup && o->svc < 0)
            reason = "unknown_service";
        if (!reason)
            return decide(R, e->order, t, "first decision", false);
        json_t *j = next_alloc(R, e->order, "rejection");
        if (!j || !check_decided_at(R, j, t))
            return false;
        const char *st = json_string_value(json_object_get(j, "status"));
        const char *rs = json_string_value(json_object_get(j, "reason"));
        if (!st || strcmp(st, "rejected") != 0 || !rs || strcmp(rs, reason) != 0)
            return replay_fail(R, "expected status rejected with reason %s", reason);
        if (json_array_size(json_object_get(j, "shipments")) != 0)
            return replay_fail(R, "a rejected order has shipments");
        so->rejected = true;
        stats.rejected++;
        so->rev++;
        R->cursor++;
        return true;
    }
    case EV_CANCEL: {
        psorder *so = &S->o[e->order];
        if (!so->known || so->cancelled)
            return true;
        bool affected[MAXS] = {false};
        for (int i = 0; i < so->nsh; i++)
            for (int l = 0; l < I->o[e->order].nl; l++)
                if (so->sh[i].qty[l] > 0)
                    affected[I->o[e->order].sku[l]] = true;
        json_t *j = next_alloc(R, e->order, "cancellation");
        if (!j || !check_decided_at(R, j, t))
            return false;
        const char *st = json_string_value(json_object_get(j, "status"));
        if (!st || strcmp(st, "cancelled") != 0)
            return replay_fail(R, "expected status cancelled");
        if (json_array_size(json_object_get(j, "shipments")) != 0)
            return replay_fail(R, "a cancelled order has shipments");
        so->cancelled = true;
        stats.cancelled++;
        so->nsh = 0;
        so->rev++;
        R->cursor++;
        return retry_all(R, affected, t);
    }
    default: {
        if (S->seen_ev[e->id])
            return true;
        S->seen_ev[e->id] = true;
        int64_t old = S->onhand[e->node][e->sku];
        int64_t now = e->kind == EV_SNAP ? e->val : old + e->val;
        if (now < 0)
            now = 0;
        S->onhand[e->node][e->sku] = now;
        if (now > old) {
            bool affected[MAXS] = {false};
            affected[e->sku] = true;
            return retry_all(R, affected, t);
        }
        if (now < old)
            return resource(R, e->node, e->sku, t);
        return true;
    }
    }
}

static bool replay(const pinst *I, json_t **out, size_t nout, char *why, size_t wl)
{
    preplay *R = calloc(1, sizeof *R);
    R->I = I;
    R->out = out;
    R->nout = nout;
    R->why = why;
    R->wl = wl;
    bool ok = true;
    for (R->ev = 0; R->ev < I->ne && ok; R->ev++)
        ok = apply_event(R, &I->e[R->ev]);
    if (ok && R->cursor != R->nout) {
        char *line = json_dumps(out[R->cursor], JSON_COMPACT);
        snprintf(why, wl, "omo printed %zu allocations, the model expects %zu; first extra: %s",
                 nout, R->cursor, line ? line : "?");
        free(line);
        ok = false;
    }
    free(R);
    return ok;
}

/* ---------------------------------------------------------------- running omo */

static bool write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, got, m);
    fclose(f);
    fclose(m);
    return buf;
}

/* Runs `omo solve` in dir; returns its wait status, or -1 when it could not be started. */
static int run_omo(const char *dir)
{
    char net[512], rules[512], events[512], out[512], so[512], se[512];
    snprintf(net, sizeof net, "%s/network.yaml", dir);
    snprintf(rules, sizeof rules, "%s/routing.yaml", dir);
    snprintf(events, sizeof events, "%s/events.jsonl", dir);
    snprintf(out, sizeof out, "%s/allocations.jsonl", dir);
    snprintf(so, sizeof so, "%s/stdout.txt", dir);
    snprintf(se, sizeof se, "%s/stderr.txt", dir);
    char *argv[] = {(char *)OMO_BINARY, "solve", "--network", net, "--rules",  rules,
                    "--events",         events,  "--out",     out, "--strict", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, so, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, se, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, OMO_BINARY, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

static void save_artifact(const pinst *I, const char *net, const char *rules, const char *events,
                          const char *allocs, const char *err, const char *why)
{
    char dir[512], path[640];
    snprintf(dir, sizeof dir, "%s/tests/artifacts", OMO_SOURCE_DIR);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/tests/artifacts/property-%s-%" PRIu64, OMO_SOURCE_DIR,
             I->fam->name, I->seed);
    mkdir(dir, 0755);
    const struct {
        const char *name, *text;
    } files[] = {{"network.yaml", net},         {"routing.yaml", rules}, {"events.jsonl", events},
                 {"allocations.jsonl", allocs}, {"stderr.txt", err},     {"failure.txt", why}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        if (!write_file(path, files[i].text ? files[i].text : ""))
            fprintf(stderr, "cannot write %s\n", path);
    }
    fprintf(stderr, "instance saved in %s\n", dir);
}

/* Generates, solves with omo and replays one instance. Returns false with a report. */
static bool run_instance(const pfamily *f, uint64_t seed, char *why_out, size_t why_len)
{
    pinst *I = malloc(sizeof *I);
    gen_instance(f, seed, I);
    char *net = write_network(I), *rules = write_rules(I), *events = write_events(I);
    char *allocs = NULL, *err = NULL;
    char why[2048] = "";
    json_t **out = NULL;
    size_t nout = 0;
    bool ok = false;

    char dir[] = "/tmp/omo-prop-XXXXXX";
    char path[512];
    bool have_dir = false;
    if (!mkdtemp(dir)) {
        snprintf(why, sizeof why, "mkdtemp: %s", strerror(errno));
        goto report;
    }
    have_dir = true;
    const char *names[] = {"network.yaml", "routing.yaml", "events.jsonl"};
    const char *texts[] = {net, rules, events};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!write_file(path, texts[i])) {
            snprintf(why, sizeof why, "cannot write %s", path);
            goto report;
        }
    }
    int status = run_omo(dir);
    snprintf(path, sizeof path, "%s/allocations.jsonl", dir);
    allocs = read_file(path);
    snprintf(path, sizeof path, "%s/stderr.txt", dir);
    err = read_file(path);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, sizeof why, "omo solve did not exit 0 (wait status %d)", status);
        goto report;
    }
    if (!allocs) {
        snprintf(why, sizeof why, "omo solve wrote no output file");
        goto report;
    }
    for (char *line = allocs, *end; *line; line = end) {
        end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        end = end ? end + 1 : line + len;
        if (len == 0)
            continue;
        json_error_t jerr;
        json_t *j = json_loadb(line, len, 0, &jerr);
        if (!j) {
            snprintf(why, sizeof why, "output line %zu is not JSON: %s", nout + 1, jerr.text);
            goto report;
        }
        out = realloc(out, (nout + 1) * sizeof *out);
        out[nout++] = j;
    }
    ok = replay(I, out, nout, why, sizeof why);

report:
    if (!ok) {
        fprintf(stderr,
                "property/%s seed %" PRIu64 " FAILED: %s\n--- network.yaml\n%s--- routing.yaml\n%s"
                "--- events.jsonl\n%s--- omo output\n%s--- omo stderr\n%s---\n",
                f->name, seed, why, net, rules, events, allocs ? allocs : "", err ? err : "");
        save_artifact(I, net, rules, events, allocs, err, why);
    }
    const char *all[] = {"network.yaml",      "routing.yaml", "events.jsonl",
                         "allocations.jsonl", "stdout.txt",   "stderr.txt"};
    for (size_t i = 0; i < sizeof all / sizeof *all && have_dir; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, all[i]);
        unlink(path);
    }
    if (have_dir)
        rmdir(dir);
    for (size_t i = 0; i < nout; i++)
        json_decref(out[i]);
    free(out);
    free(net);
    free(rules);
    free(events);
    free(allocs);
    free(err);
    free(I);
    snprintf(why_out, why_len, "%s", why);
    return ok;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : dflt;
}

/* Runs `count` instances of a family (OMO_PROP_COUNT overrides); stops at the first failure. */
static void run_family(const pfamily *f, uint64_t base, int count)
{
    uint64_t seed0 = env_u64("OMO_PROP_SEED", base);
    int n = (int)env_u64("OMO_PROP_COUNT", (uint64_t)count);
    memset(&stats, 0, sizeof stats);
    for (int i = 0; i < n; i++) {
        stats.instances++;
        uint64_t seed = seed0 + (uint64_t)i;
        char why[2048];
        if (!run_instance(f, seed, why, sizeof why))
            cr_assert_fail("property/%s seed %" PRIu64 ": %s\n(instance and output above; replay "
                           "with OMO_PROP_SEED=%" PRIu64 " OMO_PROP_COUNT=1)",
                           f->name, seed, why, seed);
    }
    fprintf(stderr,
            "property/%s: %ld instances, %ld allocations checked (%ld first, %ld re-sourced, "
            "%ld retried, %ld idle retries, %ld cancelled, %ld rejected); %ld allocated, %ld "
            "partial, %ld backordered; %ld with several shipments, %ld split lines, %ld with "
            "tied optima (counted on unsplit lines)\n",
            f->name, stats.instances, stats.allocations, stats.first, stats.resourced,
            stats.retried, stats.retries_idle, stats.cancelled, stats.rejected, stats.allocated,
            stats.partial, stats.backordered, stats.multi_ship, stats.split_line, stats.ties);
    cr_expect(n == 0 || stats.allocations > 0, "the family produced no allocations");
}

/* ---------------------------------------------------------------- families */

/* Unset fields are 0: no pickups, no transfer, no rules, and so on. */
static const pfamily fam_plain = {
    .name = "plain_ship",
    .min_nodes = 2,
    .max_nodes = 6,
    .max_qty = 4,
    .p_walkin = 0.15,
    .p_receipt = 0.15,
    .p_snapdown = 0.05,
    .p_cancel = 0.1,
    .p_dup = 0.05,
    .min_orders = 3,
    .max_orders = 8,
    .max_gap_min = 120,
    .p_stock = 0.8,
    .stock_max = 8,
    .p_uniform = 0.25,
    .p_no_at = 0.15,
};

static const pfamily fam_pickup = {
    .name = "pickup_transfer",
    .min_nodes = 2,
    .max_nodes = 6,
    .max_qty = 4,
    .p_pickup_order = 0.7,
    .p_transfer = 0.7,
    .p_cap = 0.2,
    .max_rules = 2,
    .p_walkin = 0.15,
    .p_receipt = 0.2,
    .p_snapdown = 0.1,
    .p_cancel = 0.1,
    .p_dup = 0.05,
    .min_orders = 3,
    .max_orders = 8,
    .max_gap_min = 120,
    .p_reject = 0.05,
    .p_stock = 0.8,
    .stock_max = 8,
    .p_uniform = 0.25,
    .p_no_at = 0.15,
};

static const pfamily fam_split = {
    .name = "split_lines",
    .min_nodes = 2,
    .max_nodes = 4,
    .max_qty = 3,
    .p_pickup_order = 0.3,
    .p_transfer = 0.5,
    .p_split = 1.0,
    .p_deny = 0.2,
    .p_cap = 0.3,
    .max_rules = 2,
    .p_walkin = 0.2,
    .p_receipt = 0.2,
    .p_snapdown = 0.1,
    .p_cancel = 0.15,
    .p_dup = 0.05,
    .min_orders = 3,
    .max_orders = 8,
    .max_gap_min = 120,
    .p_stock = 0.8,
    .stock_max = 4,
    .p_uniform = 0.25,
    .p_no_at = 0.15,
};

static const pfamily fam_caprules = {
    .name = "capacity_rules",
    .min_nodes = 2,
    .max_nodes = 6,
    .max_qty = 4,
    .p_pickup_order = 0.3,
    .p_transfer = 0.5,
    .p_split = 0.2,
    .p_deny = 0.1,
    .p_cap = 0.7,
    .p_tz = 0.5,
    .max_rules = 5,
    .p_walkin = 0.15,
    .p_receipt = 0.2,
    .p_snapdown = 0.1,
    .p_cancel = 0.15,
    .p_dup = 0.05,
    .min_orders = 3,
    .max_orders = 8,
    .max_gap_min = 600,
    .p_reject = 0.03,
    .p_stock = 0.8,
    .stock_max = 8,
    .p_uniform = 0.25,
    .p_no_at = 0.15,
};

static const pfamily fam_resource = {
    .name = "resourcing_retries",
    .min_nodes = 2,
    .max_nodes = 6,
    .max_qty = 4,
    .p_pickup_order = 0.3,
    .p_transfer = 0.5,
    .p_split = 0.3,
    .p_deny = 0.1,
    .p_cap = 0.3,
    .p_tz = 0.2,
    .max_rules = 2,
    .p_walkin = 0.6,
    .p_receipt = 0.5,
    .p_snapdown = 0.6,
    .p_cancel = 0.4,
    .p_dup = 0.2,
    .min_orders = 4,
    .max_orders = 8,
    .max_gap_min = 180,
    .p_reject = 0.02,
    .p_stock = 0.8,
    .stock_max = 5,
    .p_uniform = 0.25,
    .p_no_at = 0.15,
};

static const pfamily fam_deny = {
    .name = "partial_deny",
    .min_nodes = 2,
    .max_nodes = 6,
    .max_qty = 4,
    .p_pickup_order = 0.3,
    .p_transfer = 0.5,
    .p_split = 0.3,
    .p_deny = 1.0,
    .p_cap = 0.3,
    .p_tz = 0.2,
    .max_rules = 2,
    .p_walkin = 0.3,
    .p_receipt = 0.4,
    .p_snapdown = 0.3,
    .p_cancel = 0.3,
    .p_dup = 0.1,
    .min_orders = 3,
    .max_orders = 8,
    .max_gap_min = 180,
    .p_stock = 0.8,
    .stock_max = 5,
    .p_uniform = 0.25,
    .p_no_at = 0.15,
};

static const pfamily fam_mixed = {
    .name = "mixed",
    .min_nodes = 2,
    .max_nodes = 6,
    .max_qty = 4,
    .p_pickup_order = 0.4,
    .p_transfer = 0.5,
    .p_split = 0.3,
    .p_deny = 0.3,
    .p_cap = 0.4,
    .p_tz = 0.3,
    .max_rules = 4,
    .p_walkin = 0.3,
    .p_receipt = 0.3,
    .p_snapdown = 0.3,
    .p_cancel = 0.25,
    .p_dup = 0.1,
    .min_orders = 3,
    .max_orders = 8,
    .max_gap_min = 300,
    .p_reject = 0.03,
    .p_stock = 0.8,
    .stock_max = 5,
    .p_uniform = 0.25,
    .p_no_at = 0.15,
};

/* The CI size: 100 instances of each family. bench/property.sh runs the long size (500 each, or
 * what it is given) through OMO_PROP_COUNT; OMO_PROP_SEED moves the window of seeds. */
#define PER_FAMILY 100

Test(property, plain_ship)
{
    run_family(&fam_plain, 1000000, PER_FAMILY);
}

Test(property, pickup_transfer)
{
    run_family(&fam_pickup, 2000000, PER_FAMILY);
}

Test(property, split_lines)
{
    run_family(&fam_split, 3000000, PER_FAMILY);
}

Test(property, capacity_rules)
{
    run_family(&fam_caprules, 4000000, PER_FAMILY);
}

Test(property, resourcing_retries)
{
    run_family(&fam_resource, 5000000, PER_FAMILY);
}

Test(property, partial_deny)
{
    run_family(&fam_deny, 6000000, PER_FAMILY);
}

Test(property, mixed)
{
    run_family(&fam_mixed, 7000000, PER_FAMILY);
}

/* ---------------------------------------------------------------- the checker can fail */

/* Two warehouses, one near the customer and cheap, one far: one unit of one SKU. */
static void tiny_instance(pinst *I, psim *S)
{
    memset(I, 0, sizeof *I);
    memset(S, 0, sizeof *S);
    I->fam = &fam_plain;
    I->nn = 2;
    const char *ids[] = {"W-A", "W-B"};
    for (int n = 0; n < 2; n++) {
        pnode *nd = &I->n[n];
        snprintf(nd->id, sizeof nd->id, "%s", ids[n]);
        nd->type = WH;
        nd->lat = 45.0;
        nd->lon = n == 0 ? 5.0 : 7.0;
        nd->ship = true;
        nd->hc = 100 * MICRO_PER_CENT;
        nd->hh = 24000;
        nd->cap = -1;
        I->rank[n] = n;
    }
    I->ns = 1;
    snprintf(I->sku[0], sizeof I->sku[0], "SKU-1");
    I->max_ship = 3;
    I->hour_cost = 10 * MICRO_PER_CENT;
    I->nsv = 1;
    I->sv[0] = (pservice){.from = 3, .nz = 2};
    I->sv[0].z[0] = (pzone){50, 400 * MICRO_PER_CENT, 24000};
    I->sv[0].z[1] = (pzone){300, 650 * MICRO_PER_CENT, 48000};
    I->no = 1;
    porder *o = &I->o[0];
    snprintf(o->id, sizeof o->id, "O-1");
    o->clat = 45.0;
    o->clon = 5.1;
    o->nl = 1;
    snprintf(o->lid[0], sizeof o->lid[0], "1");
    o->qty[0] = 1;
    S->onhand[0][0] = 3;
    S->onhand[1][0] = 3;
    S->o[0].known = true;
}

static bool check_text(const pinst *I, const psim *S, const char *text, char *why, size_t wl)
{
    pctx c;
    build_ctx(I, S, 0, 1795392000000LL, &c);
    pkey best = brute_best(I, &c);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    cr_assert_not_null(j, "bad test JSON: %s", jerr.text);
    pship sh[MAXN];
    int nsh;
    bool ok = check_plan(I, &c, &best, j, sh, &nsh, why, wl);
    json_decref(j);
    return ok;
}

Test(property, checker_rejects_wrong_plans)
{
    pinst *I = malloc(sizeof *I);
    psim *S = malloc(sizeof *S);
    tiny_instance(I, S);
    char why[512];
    /* near: zone 1 (4.00 + 1.00, 48 h); far: zone 2 (6.50 + 1.00, 72 h) */
    const char *good = "{\"type\":\"allocation\",\"order_id\":\"O-1\",\"revision\":1,"
                       "\"status\":\"allocated\",\"objective\":9.8,\"shipments\":[{\"shipment_id\":"
                       "\"O-1/1\",\"node_id\":\"W-A\",\"method\":\"warehouse\",\"service\":"
                       "\"standard\",\"lines\":[{\"line_id\":\"1\",\"sku\":\"SKU-1\",\"qty\":1}],"
                       "\"cost\":5,\"hours\":48}],\"backordered\":[]}";
    const char *far = "{\"type\":\"allocation\",\"order_id\":\"O-1\",\"revision\":1,"
                      "\"status\":\"allocated\",\"objective\":14.7,\"shipments\":[{\"shipment_id\":"
                      "\"O-1/1\",\"node_id\":\"W-B\",\"method\":\"warehouse\",\"service\":"
                      "\"standard\",\"lines\":[{\"line_id\":\"1\",\"sku\":\"SKU-1\",\"qty\":1}],"
                      "\"cost\":7.5,\"hours\":72}],\"backordered\":[]}";
    const char *none = "{\"type\":\"allocation\",\"order_id\":\"O-1\",\"revision\":1,"
                       "\"status\":\"backordered\",\"objective\":0,\"shipments\":[],"
                       "\"backordered\":[{\"line_id\":\"1\",\"sku\":\"SKU-1\",\"qty\":1}]}";
    cr_expect(check_text(I, S, good, why, sizeof why), "the optimal plan was refused: %s", why);
    cr_expect_not(check_text(I, S, far, why, sizeof why), "a suboptimal plan was accepted");
    cr_expect(strstr(why, "not optimal") != NULL, "refused for another reason: %s", why);
    cr_expect_not(check_text(I, S, none, why, sizeof why), "backordering everything was accepted");
    /* with no stock at W-A the same plan takes more than ATP */
    S->onhand[0][0] = 0;
    cr_expect_not(check_text(I, S, good, why, sizeof why), "a plan above ATP was accepted");
    cr_expect(strstr(why, "ATP") != NULL, "refused for another reason: %s", why);
    /* and then the far warehouse is the optimum */
    cr_expect(check_text(I, S, far, why, sizeof why), "the far plan was refused: %s", why);
    /* a capacity of zero left at W-B */
    S->onhand[0][0] = 3;
    I->n[0].cap = 0;
    cr_expect(check_text(I, S, far, why, sizeof why), "capacity ignored: %s", why);
    cr_expect_not(check_text(I, S, good, why, sizeof why), "a plan above capacity was accepted");
    free(I);
    free(S);
}

static json_t *alloc_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    cr_assert_not_null(j, "bad test JSON: %s", jerr.text);
    return j;
}

Test(property, replay_rejects_wrong_streams)
{
    pinst *I = malloc(sizeof *I);
    psim *S = malloc(sizeof *S);
    tiny_instance(I, S);
    /* 00:00 stock at W-A, 01:00 the order, 02:00 its cancellation */
    const int64_t t0 = 1795392000000LL, hour = 3600000;
    I->ne = 3;
    I->e[0] = (pevent){.kind = EV_SNAP, .at = t0, .node = 0, .sku = 0, .val = 3, .id = 1};
    I->e[1] = (pevent){.kind = EV_ORDER, .at = t0 + hour, .order = 0};
    I->e[2] = (pevent){.kind = EV_CANCEL, .at = t0 + 2 * hour, .order = 0};
    json_t *out[2];
    out[0] = alloc_json("{\"type\":\"allocation\",\"order_id\":\"O-1\",\"revision\":1,"
                        "\"status\":\"allocated\",\"decided_at\":\"2026-11-23T01:00:00Z\","
                        "\"objective\":9.8,\"shipments\":[{\"shipment_id\":\"O-1/1\",\"node_id\":"
                        "\"W-A\",\"method\":\"warehouse\",\"service\":\"standard\",\"lines\":[{"
                        "\"line_id\":\"1\",\"sku\":\"SKU-1\",\"qty\":1}],\"cost\":5,\"hours\":48}],"
                        "\"backordered\":[]}");
    out[1] = alloc_json("{\"type\":\"allocation\",\"order_id\":\"O-1\",\"revision\":2,"
                        "\"status\":\"cancelled\",\"decided_at\":\"2026-11-23T02:00:00Z\","
                        "\"objective\":0,\"shipments\":[],\"backordered\":[]}");
    char why[2048];
    cr_expect(replay(I, out, 2, why, sizeof why), "the right stream was refused: %s", why);
    cr_expect_not(replay(I, out, 1, why, sizeof why), "a missing cancellation was accepted");
    cr_expect(strstr(why, "cancellation") != NULL, "refused for another reason: %s", why);
    json_t *twice[3] = {out[0], out[1], out[1]};
    cr_expect_not(replay(I, twice, 3, why, sizeof why), "an extra revision was accepted");
    /* the cancellation decided at the wrong time */
    I->e[2].at += hour;
    cr_expect_not(replay(I, out, 2, why, sizeof why), "a wrong decided_at was accepted");
    cr_expect(strstr(why, "decided_at") != NULL, "refused for another reason: %s", why);
    json_decref(out[0]);
    json_decref(out[1]);
    free(I);
    free(S);
}
