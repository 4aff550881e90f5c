/* `omo rules diff`: the same events decided under two rule sets, compared. */
#include "diff.h"
#include "replay.h"
#include "strbuf.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NANO 1000000000LL

/* ---- a growing string ------------------------------------------------------------------ */

/* A JSON string. File names may hold any bytes: invalid UTF-8 becomes U+FFFD so the output
 * always parses. */
static void sb_json(omo_strbuf *sb, const char *s)
{
    omo_strbuf_puts(sb, "\"");
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p == '"' || *p == '\\') {
            omo_strbuf_put(sb, "\\", 1);
            omo_strbuf_put(sb, (const char *)p++, 1);
        } else if (*p < 0x20) {
            omo_strbuf_printf(sb, "\\u%04x", *p++);
        } else {
            size_t n = omo_utf8_seq(p);
            if (n) {
                omo_strbuf_put(sb, (const char *)p, n);
                p += n;
            } else {
                omo_strbuf_puts(sb, "\\ufffd");
                p++;
            }
        }
    }
    omo_strbuf_puts(sb, "\"");
}

/* Text for HTML element content and attribute values alike. */
static void sb_html(omo_strbuf *sb, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc;
        switch (*s) {
        case '&':
            esc = "&amp;";
            break;
        case '<':
            esc = "&lt;";
            break;
        case '>':
            esc = "&gt;";
            break;
        case '"':
            esc = "&quot;";
            break;
        case '\'':
            esc = "&#39;";
            break;
        default:
            continue;
        }
        omo_strbuf_put(sb, run, (size_t)(s - run));
        omo_strbuf_puts(sb, esc);
        run = s + 1;
    }
    omo_strbuf_put(sb, run, (size_t)(s - run));
}

/* ---- numbers --------------------------------------------------------------------------- */

enum { NUM_SIGN = 1, NUM_GROUP = 2 };

/* v/scale with exactly `decimals` places (rounded half away from zero); NUM_GROUP adds
 * thousands separators, NUM_SIGN a '+' before positive values. */
static char *num(int64_t v, int64_t scale, int decimals, unsigned flags, char *buf, size_t len)
{
    char raw[48];
    omo_fixed_format(v, scale, decimals, raw, sizeof raw);
    const char *p = raw;
    bool neg = *p == '-';
    if (neg)
        p++;
    const char *dot = strchr(p, '.');
    size_t ilen = dot ? (size_t)(dot - p) : strlen(p);
    const char *frac = dot ? dot + 1 : "";
    size_t flen = strlen(frac);
    char out[96];
    size_t o = 0;
    if (neg)
        out[o++] = '-';
    else if ((flags & NUM_SIGN) && (ilen > 1 || p[0] != '0' || flen))
        out[o++] = '+';
    for (size_t i = 0; i < ilen; i++) {
        if ((flags & NUM_GROUP) && i && (ilen - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = p[i];
    }
    if (decimals > 0) {
        out[o++] = '.';
        for (int i = 0; i < decimals; i++)
            out[o++] = (size_t)i < flen ? frac[i] : '0';
    }
    out[o] = 0;
    snprintf(buf, len, "%s", out);
    return buf;
}

static char *count(int64_t v, unsigned flags, char *buf, size_t len)
{
    return num(v, 1, 0, flags | NUM_GROUP, buf, len);
}

/* num / den in fixed point with `scale`, rounded half up; 0 when den is 0. Both >= 0. */
static int64_t ratio(int64_t n, int64_t den, int64_t scale)
{
    if (den <= 0)
        return 0;
    return (int64_t)(((__int128)n * scale * 2 + den) / ((__int128)den * 2));
}

/* The relative change as "+5.3%", or "" when old is 0 (no base to compare with). */
static char *pct(int64_t old, int64_t new, char *buf, size_t len)
{
    if (old == 0) {
        snprintf(buf, len, "%s", "");
        return buf;
    }
    double p = (double)(new - old) * 100.0 / fabs((double)old);
    if (fabs(p) < 0.05)
        snprintf(buf, len, "0.0%%");
    else
        snprintf(buf, len, "%+.1f%%", p);
    return buf;
}

/* ---- what each side decided ------------------------------------------------------------ */

typedef struct diff_ship {
    int node;
    omo_method method;
    int64_t cost;  /* micro */
    int64_t hours; /* milli */
    int64_t units;
} diff_ship;

/* The latest allocation of one order. */
typedef struct diff_order {
    char *order_id;
    omo_alloc_status status;
    int64_t objective;   /* nano */
    int64_t backordered; /* units */
    int64_t hours;       /* milli, slowest shipment */
    diff_ship *ships;    /* by node index, so by node id */
    size_t nships, capships;
    int64_t first_ms; /* when it was first decided: its created_at */
} diff_order;

typedef struct diff_side {
    const omo_rules *rules;
    omo_engine *eng;
    omo_strmap index; /* order id -> index into orders */
    diff_order *orders;
    size_t norders, caporders;
} diff_side;

struct omo_diff {
    const omo_network *net;
    diff_side side[2];
    int64_t since_ms; /* orders first decided before this are left out of the report */
};

/* The orders the report speaks of. */
static bool in_window(const omo_diff *diff, const diff_order *o)
{
    return o->first_ms >= diff->since_ms;
}

static void capture(void *ctx, const omo_allocation *a)
{
    diff_side *side = ctx;
    bool added;
    int oi = omo_strmap_add(&side->index, a->order_id, (int)side->norders, &added);
    if (oi < 0) {
        fputs("omo: out of memory\n", stderr);
        abort();
    }
    if (added) {
        omo_grow((void **)&side->orders, &side->caporders, side->norders + 1, sizeof *side->orders);
        side->orders[side->norders++] =
            (diff_order){.order_id = omo_xstrdup(a->order_id), .first_ms = a->decided_at_ms};
    }
    diff_order *o = &side->orders[oi];
    o->status = a->status;
    o->objective = a->objective;
    o->backordered = 0;
    for (int l = 0; a->backordered && l < a->nlines; l++)
        o->backordered += a->backordered[l];
    o->hours = 0;
    o->nships = 0;
    omo_grow((void **)&o->ships, &o->capships, (size_t)a->nships, sizeof *o->ships);
    for (int s = 0; s < a->nships; s++) {
        const omo_shipment *sh = &a->ships[s];
        diff_ship ds = {sh->node, sh->method, sh->cost, sh->hours, 0};
        for (int l = 0; l < a->nlines; l++)
            ds.units += sh->qty[l];
        if (ds.hours > o->hours)
            o->hours = ds.hours;
        size_t at = o->nships++;
        while (at > 0 && o->ships[at - 1].node > ds.node) {
            o->ships[at] = o->ships[at - 1];
            at--;
        }
        o->ships[at] = ds;
    }
}

omo_diff *omo_diff_create(const omo_network *net, const omo_rules *old_rules,
                          const omo_rules *new_rules)
{
    omo_diff *diff = omo_xcalloc(1, sizeof *diff);
    diff->net = net;
    diff->since_ms = INT64_MIN;
    diff->side[OMO_DIFF_OLD].rules = old_rules;
    diff->side[OMO_DIFF_NEW].rules = new_rules;
    for (int k = 0; k < 2; k++) {
        diff->side[k].eng = omo_engine_create(net, diff->side[k].rules, capture, &diff->side[k]);
        if (!diff->side[k].eng)
            goto fail;
    }
    return diff;

fail:
    omo_diff_destroy(diff);
    return NULL;
}

void omo_diff_destroy(omo_diff *diff)
{
    if (!diff)
        return;
    for (int k = 0; k < 2; k++) {
        diff_side *side = &diff->side[k];
        omo_engine_destroy(side->eng);
        for (size_t i = 0; i < side->norders; i++) {
            free(side->orders[i].order_id);
            free(side->orders[i].ships);
        }
        free(side->orders);
        omo_strmap_free(&side->index);
    }
    free(diff);
}

omo_engine *omo_diff_engine(omo_diff *diff, omo_diff_side side)
{
    return diff->side[side].eng;
}

/* ---- the comparison -------------------------------------------------------------------- */

static bool same_decision(const diff_order *a, const diff_order *b)
{
    if (a->status != b->status || a->nships != b->nships)
        return false;
    for (size_t s = 0; s < a->nships; s++)
        if (a->ships[s].node != b->ships[s].node || a->ships[s].units != b->ships[s].units)
            return false;
    return true;
}

/* "DC-X 2u + S-0001 1u, 1u backordered"; the status alone when nothing ships. */
static char *plan_text(const omo_network *net, const diff_order *o)
{
    omo_strbuf sb = {0};
    if (!o) {
        omo_strbuf_puts(&sb, "not decided");
        return sb.p;
    }
    for (size_t s = 0; s < o->nships; s++)
        omo_strbuf_printf(&sb, "%s%s %lldu", s ? " + " : "", net->nodes[o->ships[s].node].id,
                          (long long)o->ships[s].units);
    if (o->nships && o->backordered > 0)
        omo_strbuf_printf(&sb, ", %lldu backordered", (long long)o->backordered);
    if (!o->nships) {
        omo_strbuf_puts(&sb, omo_alloc_status_name(o->status));
        if (o->backordered > 0)
            omo_strbuf_printf(
                &sb, o->status == OMO_ALLOC_BACKORDERED ? " %lldu" : " (%lldu backordered)",
                (long long)o->backordered);
    }
    return sb.p;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_move(const void *a, const void *b)
{
    const omo_diff_move *x = a, *y = b;
    int64_t dx = llabs(x->units[1] - x->units[0]), dy = llabs(y->units[1] - y->units[0]);
    if (dx != dy)
        return dx > dy ? -1 : 1;
    return (x->node > y->node) - (x->node < y->node);
}

/* Sums one side into t; fills units per node and the promised hours of served orders. */
static size_t side_totals(const omo_diff *diff, const diff_side *side, omo_diff_totals *t,
                          int64_t *node_units, int64_t *hours)
{
    size_t nh = 0;
    int64_t hsum = 0;
    for (size_t i = 0; i < side->norders; i++) {
        const diff_order *o = &side->orders[i];
        if (!in_window(diff, o))
            continue;
        t->orders++;
        t->by_status[o->status]++;
        t->objective += o->objective;
        t->units_backordered += o->backordered;
        for (size_t s = 0; s < o->nships; s++) {
            const diff_ship *sh = &o->ships[s];
            t->shipments++;
            t->by_method[sh->method]++;
            t->shipping_cost += sh->cost;
            t->units_allocated += sh->units;
            node_units[sh->node] += sh->units;
        }
        if (o->nships) {
            t->served++;
            hours[nh++] = o->hours;
            hsum += o->hours;
        }
    }
    if (nh) {
        qsort(hours, nh, sizeof *hours, cmp_i64);
        t->hours_mean = ratio(hsum, (int64_t)nh, 1);
        t->hours_p95 = hours[(95 * nh + 99) / 100 - 1];
    }
    return nh;
}

static void add_example(const omo_diff *diff, omo_diff_report *rep, const char *order_id, int oi,
                        int ni)
{
    rep->changed_orders++;
    if (rep->nexamples == OMO_DIFF_TOP)
        return;
    omo_diff_example *ex = &rep->examples[rep->nexamples++];
    ex->order_id = order_id;
    ex->order[0] = oi;
    ex->order[1] = ni;
    for (int k = 0; k < 2; k++) {
        int i = ex->order[k];
        const diff_order *o = i >= 0 ? &diff->side[k].orders[i] : NULL;
        ex->plan[k] = plan_text(diff->net, o);
        ex->status[k] = o ? o->status : OMO_ALLOC_REJECTED;
        ex->objective[k] = o ? o->objective : 0;
    }
}

/* Bin widths a planner reads without arithmetic, in hours. */
static const int64_t nice_hours[] = {1, 2, 3, 4, 6, 8, 12, 24, 48, 72, 96, 168, 336, 720, 2160};

static void histogram(omo_diff_report *rep, int64_t *const hours[2], const size_t nh[2])
{
    int64_t maxh = -1;
    for (int k = 0; k < 2; k++)
        if (nh[k] && hours[k][nh[k] - 1] > maxh)
            maxh = hours[k][nh[k] - 1]; /* sorted */
    if (maxh < 0)
        return;
    int64_t width = 0;
    for (size_t i = 0; i < sizeof nice_hours / sizeof *nice_hours && !width; i++)
        if (maxh / (nice_hours[i] * OMO_MILLI) < OMO_DIFF_HIST_BINS)
            width = nice_hours[i] * OMO_MILLI;
    if (!width)
        width = (maxh / OMO_DIFF_HIST_BINS / OMO_MILLI + 1) * OMO_MILLI;
    rep->hist_width = width;
    rep->hist_bins = (size_t)(maxh / width) + 1;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < nh[k]; i++)
            rep->hist[k][hours[k][i] / width]++;
}

void omo_diff_report_build(const omo_diff *diff, omo_diff_report *rep)
{
    memset(rep, 0, sizeof *rep);
    size_t nn = diff->net->nnodes;
    int64_t *units[2], *hours[2];
    size_t nh[2];
    for (int k = 0; k < 2; k++) {
        units[k] = omo_xcalloc(nn ? nn : 1, sizeof(int64_t));
        hours[k] = omo_xcalloc(diff->side[k].norders + 1, sizeof(int64_t));
        nh[k] = side_totals(diff, &diff->side[k], &rep->side[k], units[k], hours[k]);
    }

    rep->examples = omo_xcalloc(OMO_DIFF_TOP, sizeof *rep->examples);
    const diff_side *old = &diff->side[OMO_DIFF_OLD], *new = &diff->side[OMO_DIFF_NEW];
    for (size_t i = 0; i < old->norders; i++) {
        const diff_order *o = &old->orders[i];
        if (!in_window(diff, o))
            continue;
        int j = omo_strmap_get(&new->index, o->order_id);
        if (j < 0 || !same_decision(o, &new->orders[j]))
            add_example(diff, rep, o->order_id, (int)i, j);
    }
    for (size_t j = 0; j < new->norders; j++)
        if (in_window(diff, &new->orders[j]) &&
            omo_strmap_get(&old->index, new->orders[j].order_id) < 0)
            add_example(diff, rep, new->orders[j].order_id, -1, (int)j);

    omo_diff_move *moves = omo_xcalloc(nn ? nn : 1, sizeof *moves);
    size_t nmoves = 0;
    for (size_t n = 0; n < nn; n++)
        if (units[0][n] != units[1][n])
            moves[nmoves++] = (omo_diff_move){(int)n, {units[0][n], units[1][n]}};
    qsort(moves, nmoves, sizeof *moves, cmp_move);
    rep->moves = moves;
    rep->nmoves = nmoves < OMO_DIFF_TOP ? nmoves : OMO_DIFF_TOP;

    histogram(rep, hours, nh);
    for (int k = 0; k < 2; k++) {
        free(units[k]);
        free(hours[k]);
    }
}

void omo_diff_report_clear(omo_diff_report *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->nexamples; i++) {
        free(rep->examples[i].plan[0]);
        free(rep->examples[i].plan[1]);
    }
    free(rep->examples);
    free(rep->moves);
    memset(rep, 0, sizeof *rep);
}

/* ---- the side-by-side figures ---------------------------------------------------------- */

enum { BETTER_NEITHER = 0, BETTER_LOWER, BETTER_HIGHER };

typedef struct figure {
    char label[40];
    bool sub;          /* a breakdown of the figure above */
    char cell[2][40];  /* OLD, NEW */
    char change[48];   /* "+6.55 (+5.3%)" */
    int direction;     /* sign of NEW - OLD */
    int better;        /* which direction is an improvement */
    char json_key[40]; /* "" when the figure is not a top-level JSON field */
} figure;

#define MAX_FIGURES 24

static figure *fig_add(figure *f, size_t *n, const char *label, bool sub, int better)
{
    figure *x = &f[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->label, sizeof x->label, "%s", label);
    x->sub = sub;
    x->better = better;
    return x;
}

/* A figure held as fixed point with `scale`, shown with `decimals` places. */
static void fig_fixed(figure *f, size_t *n, const char *label, bool sub, int better, int64_t old,
                      int64_t new, int64_t scale, int decimals, bool with_pct)
{
    figure *x = fig_add(f, n, label, sub, better);
    unsigned g = NUM_GROUP;
    num(old, scale, decimals, g, x->cell[0], sizeof x->cell[0]);
    num(new, scale, decimals, g, x->cell[1], sizeof x->cell[1]);
    char d[40], p[24];
    num(new - old, scale, decimals, g | NUM_SIGN, d, sizeof d);
    pct(old, new, p, sizeof p);
    if (with_pct && *p && new != old)
        snprintf(x->change, sizeof x->change, "%s (%s)", d, p);
    else
        snprintf(x->change, sizeof x->change, "%s", d);
    x->direction = (new > old) - (new < old);
}

static void fig_count(figure *f, size_t *n, const char *label, bool sub, int better, int64_t old,
                      int64_t new)
{
    fig_fixed(f, n, label, sub, better, old, new, 1, 0, false);
}

/* A count with its share of a total, and the change in both. */
static void fig_share(figure *f, size_t *n, const char *label, int64_t old, int64_t old_total,
                      int64_t new, int64_t new_total)
{
    figure *x = fig_add(f, n, label, true, BETTER_NEITHER);
    int64_t so = ratio(old, old_total, 1000), sn = ratio(new, new_total, 1000); /* per mille */
    char c[32], s[32];
    snprintf(x->cell[0], sizeof x->cell[0], "%s (%s%%)", count(old, 0, c, sizeof c),
             num(so, 10, 1, 0, s, sizeof s));
    snprintf(x->cell[1], sizeof x->cell[1], "%s (%s%%)", count(new, 0, c, sizeof c),
             num(sn, 10, 1, 0, s, sizeof s));
    snprintf(x->change, sizeof x->change, "%s (%s pts)", count(new - old, NUM_SIGN, c, sizeof c),
             num(sn - so, 10, 1, NUM_SIGN, s, sizeof s));
    x->direction = (new > old) - (new < old);
}

static size_t figures(const omo_diff_report *rep, figure *f)
{
    const omo_diff_totals *o = &rep->side[OMO_DIFF_OLD], *w = &rep->side[OMO_DIFF_NEW];
    size_t n = 0;
    fig_count(f, &n, "orders", false, BETTER_NEITHER, (int64_t)o->orders, (int64_t)w->orders);
    for (int s = 0; s < 5; s++)
        fig_count(f, &n, omo_alloc_status_name((omo_alloc_status)s), true,
                  s == OMO_ALLOC_ALLOCATED                               ? BETTER_HIGHER
                  : s == OMO_ALLOC_PARTIAL || s == OMO_ALLOC_BACKORDERED ? BETTER_LOWER
                                                                         : BETTER_NEITHER,
                  (int64_t)o->by_status[s], (int64_t)w->by_status[s]);
    fig_fixed(f, &n, "total objective", false, BETTER_LOWER, o->objective, w->objective, NANO, 2,
              true);
    fig_fixed(f, &n, "shipping cost", false, BETTER_LOWER, o->shipping_cost, w->shipping_cost,
              OMO_MICRO, 2, true);
    fig_fixed(f, &n, "promised hours, mean", false, BETTER_LOWER, o->hours_mean, w->hours_mean,
              OMO_MILLI, 1, true);
    fig_fixed(f, &n, "promised hours, p95", false, BETTER_LOWER, o->hours_p95, w->hours_p95,
              OMO_MILLI, 1, true);
    fig_count(f, &n, "orders with shipments", false, BETTER_HIGHER, (int64_t)o->served,
              (int64_t)w->served);
    fig_fixed(f, &n, "shipments per order", false, BETTER_LOWER,
              ratio((int64_t)o->shipments, (int64_t)o->served, 1000),
              ratio((int64_t)w->shipments, (int64_t)w->served, 1000), 1000, 2, false);
    fig_count(f, &n, "shipments", false, BETTER_NEITHER, (int64_t)o->shipments,
              (int64_t)w->shipments);
    for (int m = 0; m < OMO_METHODS; m++)
        fig_share(f, &n, omo_method_name((omo_method)m), (int64_t)o->by_method[m],
                  (int64_t)o->shipments, (int64_t)w->by_method[m], (int64_t)w->shipments);
    fig_count(f, &n, "units allocated", false, BETTER_HIGHER, o->units_allocated,
              w->units_allocated);
    fig_count(f, &n, "backordered units", false, BETTER_LOWER, o->units_backordered,
              w->units_backordered);
    return n;
}

/* ---- text ------------------------------------------------------------------------------ */

#define TEXT_WIDTH 100

/* s shortened to at most width bytes, keeping its start (or its end, for file names). */
static const char *fit(const char *s, size_t width, bool keep_end, char *buf, size_t len)
{
    size_t n = strlen(s);
    if (n <= width || width < 4) {
        snprintf(buf, len, "%s", s);
    } else if (keep_end) {
        snprintf(buf, len, "...%s", s + n - (width - 3));
    } else {
        snprintf(buf, len, "%.*s...", (int)(width - 3), s);
    }
    return buf;
}

static void text_rules_line(omo_strbuf *sb, const char *tag, const omo_rules *rules)
{
    char suffix[96], path[TEXT_WIDTH + 8];
    snprintf(suffix, sizeof suffix, "  (version %lld, rules_version %s)", (long long)rules->version,
             rules->version_hash);
    size_t room = TEXT_WIDTH - 11 - strlen(suffix);
    omo_strbuf_printf(sb, "  %-8s %s%s\n", tag, fit(rules->path, room, true, path, sizeof path),
                      suffix);
}

static void render_text(omo_strbuf *sb, const omo_diff *diff, const omo_diff_report *rep,
                        const omo_diff_info *info)
{
    char a[TEXT_WIDTH + 8], b[TEXT_WIDTH + 8], c[48];
    const omo_diff_totals *old = &rep->side[OMO_DIFF_OLD];
    omo_strbuf_puts(sb, "omo rules diff: the same events decided under OLD and NEW rules\n");
    omo_strbuf_printf(sb, "  %-8s %s\n", "network",
                      fit(info->network_path ? info->network_path : diff->net->path,
                          TEXT_WIDTH - 11, true, a, sizeof a));
    char e[32], k[32];
    snprintf(c, sizeof c, "  (%s events, %s skipped)", count((int64_t)info->events, 0, e, sizeof e),
             count((int64_t)info->skipped, 0, k, sizeof k));
    omo_strbuf_printf(sb, "  %-8s %s%s\n", "events",
                      fit(info->events_path ? info->events_path : "-", TEXT_WIDTH - 11 - strlen(c),
                          true, a, sizeof a),
                      c);
    text_rules_line(sb, "OLD", diff->side[OMO_DIFF_OLD].rules);
    text_rules_line(sb, "NEW", diff->side[OMO_DIFF_NEW].rules);

    uint64_t total = old->orders > rep->side[1].orders ? old->orders : rep->side[1].orders;
    omo_strbuf_printf(sb, "\n%s of %s orders decided differently",
                      count((int64_t)rep->changed_orders, 0, a, sizeof a),
                      count((int64_t)total, 0, b, sizeof b));
    if (total)
        omo_strbuf_printf(
            sb, " (%s%%)",
            num(ratio((int64_t)rep->changed_orders, (int64_t)total, 1000), 10, 1, 0, c, sizeof c));
    omo_strbuf_puts(sb, "\n\n");

    figure f[MAX_FIGURES];
    size_t nf = figures(rep, f);
    omo_strbuf_printf(sb, "%-26s  %20s  %20s  %24s\n", "", "OLD", "NEW", "CHANGE");
    for (size_t i = 0; i < nf; i++) {
        snprintf(a, sizeof a, "%s%s", f[i].sub ? "  " : "", f[i].label);
        omo_strbuf_printf(sb, "%-26s  %20s  %20s  %24s\n", a, f[i].cell[0], f[i].cell[1],
                          f[i].change);
    }

    omo_strbuf_puts(sb, "\nNodes whose allocated units moved most\n");
    if (!rep->nmoves) {
        omo_strbuf_puts(sb, "  none: every node allocates the same units\n");
    } else {
        omo_strbuf_printf(sb, "  %-40s  %12s  %12s  %12s\n", "NODE", "OLD", "NEW", "CHANGE");
        for (size_t i = 0; i < rep->nmoves; i++) {
            const omo_diff_move *m = &rep->moves[i];
            char u0[32], u1[32], d[32];
            omo_strbuf_printf(sb, "  %-40s  %12s  %12s  %12s\n",
                              fit(diff->net->nodes[m->node].id, 40, false, a, sizeof a),
                              count(m->units[0], 0, u0, sizeof u0),
                              count(m->units[1], 0, u1, sizeof u1),
                              count(m->units[1] - m->units[0], NUM_SIGN, d, sizeof d));
        }
    }

    omo_strbuf_puts(sb, "\nOrders decided differently");
    if (!rep->changed_orders) {
        omo_strbuf_puts(sb, ": none\n");
        return;
    }
    if (rep->changed_orders > rep->nexamples)
        omo_strbuf_printf(sb, " (first %zu of %llu)", rep->nexamples,
                          (unsigned long long)rep->changed_orders);
    omo_strbuf_puts(sb, "\n");
    for (size_t i = 0; i < rep->nexamples; i++) {
        const omo_diff_example *ex = &rep->examples[i];
        char o0[40], o1[40], d[40], obj[120];
        snprintf(
            obj, sizeof obj, "objective %s -> %s (%s)",
            num(ex->objective[0], NANO, 2, NUM_GROUP, o0, sizeof o0),
            num(ex->objective[1], NANO, 2, NUM_GROUP, o1, sizeof o1),
            num(ex->objective[1] - ex->objective[0], NANO, 2, NUM_GROUP | NUM_SIGN, d, sizeof d));
        omo_strbuf_printf(sb, "  %s  %s\n",
                          fit(ex->order_id, TEXT_WIDTH - 4 - strlen(obj), false, a, sizeof a), obj);
        omo_strbuf_printf(sb, "    OLD  %s\n",
                          fit(ex->plan[0], TEXT_WIDTH - 9, false, a, sizeof a));
        omo_strbuf_printf(sb, "    NEW  %s\n",
                          fit(ex->plan[1], TEXT_WIDTH - 9, false, b, sizeof b));
    }
}

/* ---- JSON ------------------------------------------------------------------------------ */

static void json_fixed(omo_strbuf *sb, const char *key, int64_t v, int64_t scale, int decimals)
{
    char buf[48];
    omo_strbuf_printf(sb, "\"%s\":%s", key, omo_fixed_format(v, scale, decimals, buf, sizeof buf));
}

static void json_totals(omo_strbuf *sb, const omo_rules *rules, const omo_diff_totals *t,
                        const uint64_t *hist, size_t nbins)
{
    omo_strbuf_puts(sb, "{\"file\":");
    sb_json(sb, rules->path);
    omo_strbuf_puts(sb, ",\"rules_version\":");
    sb_json(sb, rules->version_hash);
    omo_strbuf_printf(sb, ",\"version\":%lld,\"orders\":%llu,\"by_status\":{",
                      (long long)rules->version, (unsigned long long)t->orders);
    for (int s = 0; s < 5; s++)
        omo_strbuf_printf(sb, "%s\"%s\":%llu", s ? "," : "",
                          omo_alloc_status_name((omo_alloc_status)s),
                          (unsigned long long)t->by_status[s]);
    omo_strbuf_puts(sb, "},");
    json_fixed(sb, "objective", t->objective, NANO, 9);
    omo_strbuf_puts(sb, ",");
    json_fixed(sb, "shipping_cost", t->shipping_cost, OMO_MICRO, 6);
    omo_strbuf_puts(sb, ",");
    json_fixed(sb, "promised_hours_mean", t->hours_mean, OMO_MILLI, 3);
    omo_strbuf_puts(sb, ",");
    json_fixed(sb, "promised_hours_p95", t->hours_p95, OMO_MILLI, 3);
    omo_strbuf_printf(sb, ",\"orders_with_shipments\":%llu,\"shipments\":%llu,",
                      (unsigned long long)t->served, (unsigned long long)t->shipments);
    json_fixed(sb, "shipments_per_order",
               ratio((int64_t)t->shipments, (int64_t)t->served, OMO_MICRO), OMO_MICRO, 6);
    omo_strbuf_puts(sb, ",\"methods\":{");
    for (int m = 0; m < OMO_METHODS; m++) {
        omo_strbuf_printf(sb, "%s\"%s\":{\"shipments\":%llu,", m ? "," : "",
                          omo_method_name((omo_method)m), (unsigned long long)t->by_method[m]);
        json_fixed(sb, "share", ratio((int64_t)t->by_method[m], (int64_t)t->shipments, OMO_MICRO),
                   OMO_MICRO, 6);
        omo_strbuf_puts(sb, "}");
    }
    omo_strbuf_printf(sb, "},\"units_allocated\":%lld,\"backordered_units\":%lld",
                      (long long)t->units_allocated, (long long)t->units_backordered);
    omo_strbuf_puts(sb, ",\"promised_hours_histogram\":[");
    for (size_t i = 0; i < nbins; i++)
        omo_strbuf_printf(sb, "%s%llu", i ? "," : "", (unsigned long long)hist[i]);
    omo_strbuf_puts(sb, "]}");
}

static void json_plan(omo_strbuf *sb, const omo_diff *diff, const omo_diff_example *ex, int k)
{
    if (ex->order[k] < 0) {
        omo_strbuf_puts(sb, "null");
        return;
    }
    const diff_order *o = &diff->side[k].orders[ex->order[k]];
    omo_strbuf_printf(sb, "{\"status\":\"%s\",", omo_alloc_status_name(o->status));
    json_fixed(sb, "objective", o->objective, NANO, 9);
    omo_strbuf_puts(sb, ",\"plan\":");
    sb_json(sb, ex->plan[k]);
    omo_strbuf_puts(sb, ",\"shipments\":[");
    for (size_t s = 0; s < o->nships; s++) {
        const diff_ship *sh = &o->ships[s];
        omo_strbuf_puts(sb, s ? ",{\"node_id\":" : "{\"node_id\":");
        sb_json(sb, diff->net->nodes[sh->node].id);
        omo_strbuf_printf(sb, ",\"method\":\"%s\",\"units\":%lld,", omo_method_name(sh->method),
                          (long long)sh->units);
        json_fixed(sb, "cost", sh->cost, OMO_MICRO, 6);
        omo_strbuf_puts(sb, ",");
        json_fixed(sb, "hours", sh->hours, OMO_MILLI, 3);
        omo_strbuf_puts(sb, "}");
    }
    omo_strbuf_printf(sb, "],\"backordered_units\":%lld}", (long long)o->backordered);
}

static void render_json(omo_strbuf *sb, const omo_diff *diff, const omo_diff_report *rep,
                        const omo_diff_info *info)
{
    omo_strbuf_puts(sb, "{\"network\":");
    sb_json(sb, info->network_path ? info->network_path : diff->net->path);
    omo_strbuf_puts(sb, ",\"events_file\":");
    if (info->events_path)
        sb_json(sb, info->events_path);
    else
        omo_strbuf_puts(sb, "null");
    omo_strbuf_printf(sb, ",\"events\":%llu,\"skipped\":%llu,\"old\":",
                      (unsigned long long)info->events, (unsigned long long)info->skipped);
    json_totals(sb, diff->side[0].rules, &rep->side[0], rep->hist[0], rep->hist_bins);
    omo_strbuf_puts(sb, ",\"new\":");
    json_totals(sb, diff->side[1].rules, &rep->side[1], rep->hist[1], rep->hist_bins);
    omo_strbuf_puts(sb, ",");
    json_fixed(sb, "histogram_bin_hours", rep->hist_width, OMO_MILLI, 3);
    omo_strbuf_printf(sb, ",\"changed_orders\":%llu,\"examples\":[",
                      (unsigned long long)rep->changed_orders);
    for (size_t i = 0; i < rep->nexamples; i++) {
        const omo_diff_example *ex = &rep->examples[i];
        omo_strbuf_puts(sb, i ? ",{\"order_id\":" : "{\"order_id\":");
        sb_json(sb, ex->order_id);
        omo_strbuf_puts(sb, ",\"old\":");
        json_plan(sb, diff, ex, 0);
        omo_strbuf_puts(sb, ",\"new\":");
        json_plan(sb, diff, ex, 1);
        omo_strbuf_puts(sb, "}");
    }
    omo_strbuf_puts(sb, "],\"nodes\":[");
    for (size_t i = 0; i < rep->nmoves; i++) {
        const omo_diff_move *m = &rep->moves[i];
        omo_strbuf_puts(sb, i ? ",{\"node_id\":" : "{\"node_id\":");
        sb_json(sb, diff->net->nodes[m->node].id);
        omo_strbuf_printf(sb, ",\"old\":%lld,\"new\":%lld,\"delta\":%lld}", (long long)m->units[0],
                          (long long)m->units[1], (long long)(m->units[1] - m->units[0]));
    }
    omo_strbuf_puts(sb, "]}\n");
}

/* ---- HTML ------------------------------------------------------------------------------ */

static const char html_style[] =
    ":root{--ink:#1f2933;--muted:#52606d;--line:#d9e2ec;--soft:#f0f4f8;--old:#7b8794;"
    "--new:#1f5fbf;--gain:#0e7c6b;--loss:#c0462b}"
    "*{box-sizing:border-box}"
    "html{-webkit-print-color-adjust:exact;print-color-adjust:exact}"
    "body{margin:0;background:var(--soft);color:var(--ink);font:15px/1.45 system-ui,"
    "-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,'Noto Sans',sans-serif}"
    "main{max-width:1120px;margin:0 auto;padding:28px 24px 40px}"
    "h1{font-size:24px;margin:0 0 2px;letter-spacing:-.01em}"
    "h2{font-size:16px;margin:0 0 10px}"
    ".lede{margin:0;color:var(--muted)}"
    "code{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace;font-size:13px;"
    "overflow-wrap:anywhere}"
    ".meta{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:14px 0 0;"
    "font-size:14px}"
    ".meta dt{color:var(--muted)}.meta dd{margin:0}"
    ".tag{display:inline-block;min-width:38px;padding:0 6px;border-radius:4px;color:#fff;"
    "font-size:12px;font-weight:600;text-align:center}"
    ".tag.old{background:#616e7c}.tag.new{background:var(--new)}"
    ".tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:12px;"
    "margin:20px 0}"
    ".tile{background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 16px}"
    ".tile .k{font-size:13px;color:var(--muted)}"
    ".tile .v{font-size:28px;font-weight:700;line-height:1.2;margin:2px 0}"
    ".tile .s{font-size:13px;color:var(--muted);font-variant-numeric:tabular-nums}"
    ".up-bad,.down-bad{color:#b03a1e}.up-good,.down-good{color:#0b6b5c}"
    ".card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:16px 18px;"
    "margin:0 0 16px;break-inside:avoid}"
    ".grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}"
    ".grid .card{margin:0}"
    ".note{color:var(--muted);font-size:13px;margin:6px 0 0}"
    "table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums;font-size:14px}"
    "th,td{padding:5px 10px;border-bottom:1px solid #e4e7eb;text-align:right;"
    "vertical-align:top}"
    "th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}"
    "th:first-child,td:first-child{text-align:left}"
    "td.sub{padding-left:28px;color:var(--muted)}"
    "tr.top td{border-top:1px solid #cbd2d9}"
    "td.plan{text-align:left;overflow-wrap:anywhere}"
    "svg{display:block;width:100%;height:auto}"
    "svg text{fill:var(--ink);font-size:12px}"
    "svg .axis{fill:var(--muted);font-size:11px}"
    "svg .grid{stroke:#e4e7eb}"
    "footer{color:var(--muted);font-size:12px;margin-top:18px}"
    "@media (max-width:820px){.grid{grid-template-columns:1fr}}"
    /* A printed page is narrower than the one-column breakpoint: keep two columns there. */
    "@media print{body{background:#fff;font-size:11px}main{max-width:none;padding:0}"
    ".tile,.card{border-color:#bcccdc}.tiles{grid-template-columns:repeat(5,1fr);gap:8px;"
    "margin:14px 0}.tile{padding:8px 10px}.tile .k,.tile .s{font-size:10px}"
    ".tile .v{font-size:19px}.grid{grid-template-columns:1fr 1fr;gap:10px}"
    ".card{padding:10px 12px;margin-bottom:10px}table{font-size:11px}th,td{padding:3px 8px}"
    "h1{font-size:20px}h2{font-size:14px}.note{font-size:10px}code{font-size:10px}}"
    "@page{margin:12mm}";

/* Smallest "nice" value (1, 2 or 5 times a power of ten) at least v / 4, for axis steps. */
static int64_t nice_step(int64_t v)
{
    int64_t step = 1;
    for (;;) {
        for (int m = 0; m < 3; m++) {
            int64_t s = step * (m == 0 ? 1 : m == 1 ? 2 : 5);
            if (s * 4 >= v)
                return s;
        }
        step *= 10;
    }
}

static void svg_legend(omo_strbuf *sb, double x, double y)
{
    omo_strbuf_printf(
        sb,
        "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" rx=\"2\" fill=\"#7b8794\"/>"
        "<text x=\"%.1f\" y=\"%.1f\">OLD</text>"
        "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" rx=\"2\" fill=\"#1f5fbf\"/>"
        "<text x=\"%.1f\" y=\"%.1f\">NEW</text>",
        x, y, x + 17, y + 10.5, x + 56, y, x + 73, y + 10.5);
}

/* Grouped bars, OLD beside NEW, one group per category, with a y axis of counts. Categories
 * are named under their bars, or, for a histogram, edges (ncat + 1 of them) mark the bin
 * boundaries. */
static void svg_grouped(omo_strbuf *sb, const char *title, size_t ncat, const char *const *labels,
                        const char *const *edges, const uint64_t *vals_old,
                        const uint64_t *vals_new, const char *xcaption)
{
    const double W = 520, H = 270, L = 48, R = 12, T = 34, B = xcaption ? 52 : 34;
    const double pw = W - L - R, ph = H - T - B;
    uint64_t maxv = 0;
    for (size_t i = 0; i < ncat; i++) {
        if (vals_old[i] > maxv)
            maxv = vals_old[i];
        if (vals_new[i] > maxv)
            maxv = vals_new[i];
    }
    int64_t step = nice_step((int64_t)maxv);
    int64_t top = ((int64_t)maxv + step - 1) / step * step;
    if (top == 0)
        top = step;
    omo_strbuf_printf(sb, "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"", W, H);
    sb_html(sb, title);
    omo_strbuf_puts(sb, "\"><title>");
    sb_html(sb, title);
    omo_strbuf_puts(sb, "</title>");
    svg_legend(sb, W - R - 100, 6);
    char n1[32];
    for (int64_t t = 0; t <= top; t += step) {
        double y = T + ph - ph * (double)t / (double)top;
        omo_strbuf_printf(
            sb,
            "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
            "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
            L, W - R, y, y, L - 6, y + 4, count(t, 0, n1, sizeof n1));
    }
    double gw = pw / (double)ncat;
    double bw = gw * 0.34 > 56 ? 56 : gw * 0.34;
    bool values = gw >= 64;
    for (size_t i = 0; i < ncat; i++) {
        double cx = L + gw * ((double)i + 0.5);
        for (int k = 0; k < 2; k++) {
            uint64_t v = k ? vals_new[i] : vals_old[i];
            double h = ph * (double)v / (double)top;
            double x = k ? cx + 1.5 : cx - 1.5 - bw;
            omo_strbuf_printf(
                sb,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                "<title>%s ",
                x, T + ph - h, bw, h, k ? "#1f5fbf" : "#7b8794", k ? "NEW" : "OLD");
            sb_html(sb, labels[i]);
            count((int64_t)v, 0, n1, sizeof n1);
            omo_strbuf_printf(sb, ": %s</title></rect>", n1);
            if (values)
                omo_strbuf_printf(sb,
                                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>",
                                  x + bw / 2, T + ph - h - 4, n1);
        }
        if (edges)
            continue;
        omo_strbuf_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", cx,
                          T + ph + 17);
        sb_html(sb, labels[i]);
        omo_strbuf_puts(sb, "</text>");
    }
    for (size_t i = 0; edges && i <= ncat; i++) {
        double x = L + gw * (double)i;
        omo_strbuf_printf(
            sb,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#9aa5b1\"/>"
            "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
            x, x, T + ph, T + ph + 4, x, T + ph + 16);
        sb_html(sb, edges[i]);
        omo_strbuf_puts(sb, "</text>");
    }
    omo_strbuf_printf(sb,
                      "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#9aa5b1\"/>",
                      L, W - R, T + ph, T + ph);
    if (xcaption) {
        omo_strbuf_printf(sb, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">",
                          L + pw / 2, H - 8);
        sb_html(sb, xcaption);
        omo_strbuf_puts(sb, "</text>");
    }
    omo_strbuf_puts(sb, "</svg>");
}

/* Horizontal bars from a zero line: units a node lost to the left, gained to the right. */
static void svg_moves(omo_strbuf *sb, const omo_diff *diff, const omo_diff_report *rep)
{
    const double W = 900, rowh = 26, T = 30, LBL = 170, RCOL = 130;
    const double H = T + rowh * (double)rep->nmoves + 10;
    const double x0 = LBL + 10, x1 = W - RCOL, cx = (x0 + x1) / 2, half = (x1 - x0) / 2 - 44;
    int64_t maxd = 1;
    for (size_t i = 0; i < rep->nmoves; i++) {
        int64_t d = llabs(rep->moves[i].units[1] - rep->moves[i].units[0]);
        if (d > maxd)
            maxd = d;
    }
    omo_strbuf_printf(
        sb,
        "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"Allocated units by node, "
        "NEW minus OLD\"><title>Allocated units by node, NEW minus OLD</title>",
        W, H);
    omo_strbuf_printf(
        sb,
        "<text class=\"axis\" x=\"%.1f\" y=\"14\" text-anchor=\"end\">&#9664; fewer units "
        "under NEW</text><text class=\"axis\" x=\"%.1f\" y=\"14\">more units under NEW "
        "&#9654;</text><text class=\"axis\" x=\"%.1f\" y=\"14\">OLD &#8594; NEW units</text>",
        cx - 8, cx + 8, x1 + 16);
    for (size_t i = 0; i < rep->nmoves; i++) {
        const omo_diff_move *m = &rep->moves[i];
        int64_t d = m->units[1] - m->units[0];
        double y = T + rowh * (double)i, w = half * (double)llabs(d) / (double)maxd;
        if (w < 2)
            w = 2;
        char ds[32], id[72], u0[32], u1[32];
        if (i % 2 == 0)
            omo_strbuf_printf(
                sb, "<rect x=\"0\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"#f5f7fa\"/>", y,
                W, rowh);
        omo_strbuf_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", LBL, y + 17.5);
        sb_html(sb, fit(diff->net->nodes[m->node].id, 28, false, id, sizeof id));
        omo_strbuf_puts(sb, "<title>");
        sb_html(sb, diff->net->nodes[m->node].id);
        omo_strbuf_puts(sb, "</title></text>");
        omo_strbuf_printf(sb,
                          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"16\" rx=\"2\" "
                          "fill=\"%s\"/>",
                          d > 0 ? cx : cx - w, y + 5, w, d > 0 ? "#0e7c6b" : "#c0462b");
        omo_strbuf_printf(
            sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-weight=\"600\">%s</text>",
            d > 0 ? cx + w + 6 : cx - w - 6, y + 17.5, d > 0 ? "start" : "end",
            count(d, NUM_SIGN, ds, sizeof ds));
        omo_strbuf_printf(sb, "<text class=\"axis\" x=\"%.1f\" y=\"%.1f\">%s &#8594; %s</text>",
                          x1 + 16, y + 17.5, count(m->units[0], 0, u0, sizeof u0),
                          count(m->units[1], 0, u1, sizeof u1));
    }
    omo_strbuf_printf(sb,
                      "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#52606d\"/>",
                      cx, cx, T - 4, H - 6);
    omo_strbuf_puts(sb, "</svg>");
}

/* A key figure: its change, big, with the values it moved between. lower_is_better decides
 * the colour; the arrow and sign carry the direction without it. */
static void html_tile(omo_strbuf *sb, const char *key, const char *value, int direction, int better,
                      const char *detail)
{
    const char *cls = "";
    if (direction && better != BETTER_NEITHER) {
        bool good = (direction < 0) == (better == BETTER_LOWER);
        cls = direction > 0 ? (good ? "up-good" : "up-bad") : (good ? "down-good" : "down-bad");
    }
    omo_strbuf_puts(sb, "<div class=\"tile\"><div class=\"k\">");
    sb_html(sb, key);
    omo_strbuf_printf(sb, "</div><div class=\"v %s\">", cls);
    if (direction)
        omo_strbuf_puts(sb, direction > 0 ? "&#9650;&#8202;" : "&#9660;&#8202;");
    sb_html(sb, value);
    omo_strbuf_puts(sb, "</div><div class=\"s\">");
    sb_html(sb, detail);
    omo_strbuf_puts(sb, "</div></div>");
}

static void html_tile_fixed(omo_strbuf *sb, const char *key, int64_t old, int64_t new,
                            int64_t scale, int decimals, const char *unit, int better)
{
    char p[32], a[48], b[48], d[64], detail[128];
    num(old, scale, decimals, NUM_GROUP, a, sizeof a);
    num(new, scale, decimals, NUM_GROUP, b, sizeof b);
    snprintf(detail, sizeof detail, "%s%s \xe2\x86\x92 %s%s", a, unit, b, unit);
    pct(old, new, p, sizeof p);
    if (!*p) {
        num(new - old, scale, decimals, NUM_GROUP | NUM_SIGN, d, sizeof d);
        snprintf(p, sizeof p, "%s", d);
    }
    int dir = (new > old) - (new < old);
    html_tile(sb, key, dir ? p : "no change", dir, better, detail);
}

static void html_rules_row(omo_strbuf *sb, const char *tag, const char *cls, const omo_rules *rules)
{
    omo_strbuf_printf(sb, "<dt><span class=\"tag %s\">%s</span></dt><dd><code>", cls, tag);
    sb_html(sb, rules->path);
    omo_strbuf_printf(sb, "</code> &middot; version %lld &middot; rules_version <code>",
                      (long long)rules->version);
    sb_html(sb, rules->version_hash);
    omo_strbuf_puts(sb, "</code></dd>");
}

static void render_html(omo_strbuf *sb, const omo_diff *diff, const omo_diff_report *rep,
                        const omo_diff_info *info)
{
    const omo_rules *ro = diff->side[0].rules, *rn = diff->side[1].rules;
    const omo_diff_totals *o = &rep->side[0], *w = &rep->side[1];
    char a[64], b[64], c[64];

    omo_strbuf_puts(sb, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                        "<title>Rules diff: ");
    sb_html(sb, ro->path);
    omo_strbuf_puts(sb, " \xe2\x86\x92 ");
    sb_html(sb, rn->path);
    omo_strbuf_printf(sb, "</title><style>%s</style></head><body><main>\n", html_style);

    omo_strbuf_puts(
        sb, "<header><h1>Routing rules: what changes</h1><p class=\"lede\">The same events "
            "decided under the OLD and the NEW rules, order by order.</p><dl class=\"meta\">");
    html_rules_row(sb, "OLD", "old", ro);
    html_rules_row(sb, "NEW", "new", rn);
    omo_strbuf_puts(sb, "<dt>network</dt><dd><code>");
    sb_html(sb, info->network_path ? info->network_path : diff->net->path);
    omo_strbuf_printf(sb, "</code> &middot; %zu nodes</dd><dt>events</dt><dd><code>",
                      diff->net->nnodes);
    sb_html(sb, info->events_path ? info->events_path : "-");
    omo_strbuf_printf(sb, "</code> &middot; %s events",
                      count((int64_t)info->events, 0, a, sizeof a));
    if (info->skipped)
        omo_strbuf_printf(sb, " (%s skipped)", count((int64_t)info->skipped, 0, a, sizeof a));
    omo_strbuf_puts(sb, "</dd></dl></header>\n");

    /* Key figures. */
    uint64_t total = o->orders > w->orders ? o->orders : w->orders;
    omo_strbuf_puts(sb, "<section class=\"tiles\" aria-label=\"Key figures\">");
    snprintf(c, sizeof c, "of %s orders (%s%%)", count((int64_t)total, 0, a, sizeof a),
             num(ratio((int64_t)rep->changed_orders, (int64_t)total, 1000), 10, 1, 0, b, sizeof b));
    html_tile(sb, "Orders decided differently", count((int64_t)rep->changed_orders, 0, a, sizeof a),
              0, BETTER_NEITHER, c);
    html_tile_fixed(sb, "Total objective", o->objective, w->objective, NANO, 2, "", BETTER_LOWER);
    html_tile_fixed(sb, "Shipping cost", o->shipping_cost, w->shipping_cost, OMO_MICRO, 2, "",
                    BETTER_LOWER);
    html_tile_fixed(sb, "Mean promised time", o->hours_mean, w->hours_mean, OMO_MILLI, 1, " h",
                    BETTER_LOWER);
    html_tile_fixed(sb, "Backordered units", o->units_backordered, w->units_backordered, 1, 0, "",
                    BETTER_LOWER);
    omo_strbuf_puts(sb, "</section>\n");

    /* Charts. */
    omo_strbuf_puts(sb, "<div class=\"grid\"><section class=\"card\"><h2>Shipments by method</h2>");
    static const char *const method_labels[OMO_METHODS] = {"warehouse", "ship from store",
                                                           "click & collect"};
    svg_grouped(sb, "Shipments by method, OLD and NEW", OMO_METHODS, method_labels, NULL,
                o->by_method, w->by_method, NULL);
    omo_strbuf_puts(sb, "<p class=\"note\">Share of shipments: ");
    for (int m = 0; m < OMO_METHODS; m++) {
        omo_strbuf_puts(sb, m ? "; " : "");
        sb_html(sb, method_labels[m]);
        omo_strbuf_printf(sb, " %s%% \xe2\x86\x92 ",
                          num(ratio((int64_t)o->by_method[m], (int64_t)o->shipments, 1000), 10, 1,
                              0, a, sizeof a));
        omo_strbuf_printf(sb, "%s%%",
                          num(ratio((int64_t)w->by_method[m], (int64_t)w->shipments, 1000), 10, 1,
                              0, a, sizeof a));
    }
    omo_strbuf_puts(sb, ".</p>");
    omo_strbuf_puts(sb, "</section><section class=\"card\"><h2>Promised hours per order</h2>");
    if (rep->hist_bins) {
        char labels[OMO_DIFF_HIST_BINS][48], edges[OMO_DIFF_HIST_BINS + 1][24];
        const char *lp[OMO_DIFF_HIST_BINS], *ep[OMO_DIFF_HIST_BINS + 1];
        for (size_t i = 0; i <= rep->hist_bins; i++) {
            num((int64_t)i * rep->hist_width, OMO_MILLI, 0, NUM_GROUP, edges[i], sizeof edges[i]);
            ep[i] = edges[i];
        }
        for (size_t i = 0; i < rep->hist_bins; i++) {
            snprintf(labels[i], sizeof labels[i], "%s\xe2\x80\x93%s h", edges[i], edges[i + 1]);
            lp[i] = labels[i];
        }
        svg_grouped(sb, "Orders by promised hours, OLD and NEW", rep->hist_bins, lp, ep,
                    rep->hist[0], rep->hist[1], "promised hours");
        omo_strbuf_printf(
            sb, "<p class=\"note\">Orders with at least one shipment; an order's promised "
                "time is its slowest shipment.</p>");
    } else {
        omo_strbuf_puts(sb, "<p class=\"note\">No order has a shipment under either rule set.</p>");
    }
    omo_strbuf_puts(sb,
                    "</section></div>\n<section class=\"card\" style=\"margin-top:16px\"><h2>Nodes "
                    "whose allocated units moved most</h2>");
    if (rep->nmoves)
        svg_moves(sb, diff, rep);
    else
        omo_strbuf_puts(sb, "<p class=\"note\">Every node allocates the same units under both rule "
                            "sets.</p>");
    omo_strbuf_puts(sb, "</section>\n");

    /* The figures side by side. */
    figure f[MAX_FIGURES];
    size_t nf = figures(rep, f);
    omo_strbuf_puts(
        sb, "<section class=\"card\"><h2>Side by side</h2><table><thead><tr><th>Figure</th>"
            "<th><span class=\"tag old\">OLD</span></th><th><span class=\"tag new\">NEW</span>"
            "</th><th>Change</th></tr></thead><tbody>");
    for (size_t i = 0; i < nf; i++) {
        const char *cls = "";
        if (f[i].direction && f[i].better != BETTER_NEITHER)
            cls = (f[i].direction < 0) == (f[i].better == BETTER_LOWER) ? "up-good" : "up-bad";
        omo_strbuf_printf(sb, "<tr%s><td%s>", !f[i].sub && i ? " class=\"top\"" : "",
                          f[i].sub ? " class=\"sub\"" : "");
        sb_html(sb, f[i].label);
        omo_strbuf_puts(sb, "</td><td>");
        sb_html(sb, f[i].cell[0]);
        omo_strbuf_puts(sb, "</td><td>");
        sb_html(sb, f[i].cell[1]);
        omo_strbuf_printf(sb, "</td><td class=\"%s\">", cls);
        sb_html(sb, f[i].change);
        omo_strbuf_puts(sb, "</td></tr>");
    }
    omo_strbuf_puts(sb, "</tbody></table></section>\n");

    /* Examples. */
    omo_strbuf_puts(sb, "<section class=\"card\"><h2>Orders decided differently</h2>");
    if (!rep->changed_orders) {
        omo_strbuf_puts(sb, "<p class=\"note\">None: every order is decided the same way.</p>");
    } else {
        if (rep->changed_orders > rep->nexamples)
            omo_strbuf_printf(sb, "<p class=\"note\">The first %zu of %s, in stream order.</p>",
                              rep->nexamples, count((int64_t)rep->changed_orders, 0, a, sizeof a));
        omo_strbuf_puts(
            sb, "<table><thead><tr><th>Order</th><th style=\"text-align:left\">OLD plan</th>"
                "<th style=\"text-align:left\">NEW plan</th><th>Objective</th></tr></thead>"
                "<tbody>");
        for (size_t i = 0; i < rep->nexamples; i++) {
            const omo_diff_example *ex = &rep->examples[i];
            omo_strbuf_puts(sb, "<tr><td><code>");
            sb_html(sb, ex->order_id);
            omo_strbuf_puts(sb, "</code></td><td class=\"plan\">");
            sb_html(sb, ex->plan[0]);
            omo_strbuf_puts(sb, "</td><td class=\"plan\">");
            sb_html(sb, ex->plan[1]);
            omo_strbuf_printf(sb, "</td><td>%s \xe2\x86\x92 %s</td></tr>",
                              num(ex->objective[0], NANO, 2, NUM_GROUP, a, sizeof a),
                              num(ex->objective[1], NANO, 2, NUM_GROUP, b, sizeof b));
        }
        omo_strbuf_puts(sb, "</tbody></table>");
    }
    omo_strbuf_puts(sb, "</section>\n<footer>omo rules diff &middot; money in the rules' currency, "
                        "time in hours</footer>\n</main></body></html>\n");
}

char *omo_diff_render(const omo_diff *diff, const omo_diff_report *rep, const omo_diff_info *info,
                      omo_diff_format format, size_t *len)
{
    omo_strbuf sb = {0};
    omo_diff_info none = {0};
    if (!info)
        info = &none;
    switch (format) {
    case OMO_DIFF_JSON:
        render_json(&sb, diff, rep, info);
        break;
    case OMO_DIFF_HTML:
        render_html(&sb, diff, rep, info);
        break;
    default:
        render_text(&sb, diff, rep, info);
        break;
    }
    if (len)
        *len = sb.len;
    return sb.p;
}

/* ---- the command ----------------------------------------------------------------------- */

static int usage(void)
{
    fputs("usage: omo rules diff --network N.yaml --events E.jsonl OLD.yaml NEW.yaml "
          "[--format text|json|html] [--out FILE]\n",
          stderr);
    return 2;
}

int omo_cmd_rules_diff(int argc, char **argv)
{
    static const struct option opts[] = {{"network", required_argument, 0, 'n'},
                                         {"events", required_argument, 0, 'e'},
                                         {"format", required_argument, 0, 'f'},
                                         {"out", required_argument, 0, 'o'},
                                         {0, 0, 0, 0}};
    const char *net_path = NULL, *events_path = NULL, *out_path = NULL;
    omo_diff_format format = OMO_DIFF_TEXT;
    int c;
    optind = 0;
    opterr = 0; /* reported below, under the command's name */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            net_path = optarg;
            break;
        case 'e':
            events_path = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'f':
            if (!strcmp(optarg, "text"))
                format = OMO_DIFF_TEXT;
            else if (!strcmp(optarg, "json"))
                format = OMO_DIFF_JSON;
            else if (!strcmp(optarg, "html"))
                format = OMO_DIFF_HTML;
            else {
                fprintf(stderr, "omo rules diff: unknown format '%s'\n", optarg);
                return usage();
            }
            break;
        default:
            fprintf(stderr, "omo rules diff: bad option '%s'\n", argv[optind - 1]);
            return usage();
        }
    }
    if (!net_path || !events_path || argc - optind != 2)
        return usage();
    const char *old_path = argv[optind], *new_path = argv[optind + 1];

    int rc = 2;
    omo_diag diag = {0};
    omo_network *net = NULL;
    omo_rules *old_rules = NULL, *new_rules = NULL;
    omo_diff *diff = NULL;
    omo_diff_report rep = {0};
    char *text = NULL;
    FILE *out = NULL;

    net = omo_network_load(net_path, &diag);
    if (net) {
        /* Both files are checked, so one run lists every error of either. */
        old_rules = omo_rules_load(old_path, net, &diag);
        new_rules = omo_rules_load(new_path, net, &diag);
    }
    if (!net || !old_rules || !new_rules) {
        omo_diag_print(&diag, stderr);
        goto done;
    }

    diff = omo_diff_create(net, old_rules, new_rules);
    if (!diff) {
        fputs("omo rules diff: error: cannot create the engines\n", stderr);
        rc = 1;
        goto done;
    }
    omo_replay_stats rs[2];
    for (int k = 0; k < 2; k++) {
        /* Both sides read the same lines: report the bad ones once. */
        omo_replay_result rr =
            omo_replay_file(events_path, net, omo_diff_engine(diff, (omo_diff_side)k),
                            k == 0 ? omo_replay_report_stderr : NULL, NULL, &rs[k]);
        if (rr == OMO_REPLAY_CANNOT_OPEN) {
            fprintf(stderr, "%s: error: cannot open: %s\n", events_path, strerror(errno));
            goto done;
        }
        if (rr == OMO_REPLAY_READ_ERROR) {
            fprintf(stderr, "%s: error: read failed: %s\n", events_path, strerror(errno));
            rc = 1;
            goto done;
        }
    }

    omo_diff_report_build(diff, &rep);
    omo_diff_info info = {.network_path = net_path,
                          .events_path = events_path,
                          .events = rs[0].lines,
                          .skipped = rs[0].bad + rs[0].invalid};
    size_t len;
    text = omo_diff_render(diff, &rep, &info, format, &len);
    out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) {
        fprintf(stderr, "%s: error: cannot write: %s\n", out_path, strerror(errno));
        rc = 1;
        goto done;
    }
    fwrite(text, 1, len, out);
    if (fflush(out) != 0 || ferror(out)) {
        fprintf(stderr, "%s: error: write failed\n", out_path ? out_path : "stdout");
        rc = 1;
        goto done;
    }
    fprintf(stderr, "omo rules diff: %llu orders from %llu events, %llu decided differently\n",
            (unsigned long long)rep.side[OMO_DIFF_OLD].orders, (unsigned long long)info.events,
            (unsigned long long)rep.changed_orders);
    rc = 0;

done:
    if (out && out != stdout && fclose(out) != 0 && rc == 0) {
        fprintf(stderr, "%s: error: write failed\n", out_path);
        rc = 1;
    }
    free(text);
    omo_diff_report_clear(&rep);
    omo_diff_destroy(diff);
    omo_rules_destroy(new_rules);
    omo_rules_destroy(old_rules);
    omo_network_destroy(net);
    omo_diag_clear(&diag);
    return rc;
}

void omo_diff_since(omo_diff *diff, int64_t since_ms)
{
    diff->since_ms = since_ms;
}
