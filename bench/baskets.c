/* baskets: decision time of big baskets on a loaded network.
 *
 *   baskets --network N.yaml --rules R.yaml --stock E.jsonl --lines L [--orders N] [--seed S]
 *           [--write FILE]
 *
 * Applies the opening stock of E (its stock.snapshot lines up to the first other event), then
 * decides N orders (default 2,000) of exactly L lines each, timing every decision. A line's SKU
 * is one of the basket's earlier SKUs one time in five (a second line of the same SKU), else a
 * popular SKU (drawn in proportion to how many nodes hold it) or a long-tail one (drawn
 * uniformly from the catalogue) with even odds; quantities 1-3. Customers are placed around
 * random stores (so by population); 85% ship standard, 5% same_day, 10% pickup at that store.
 * The orders follow from the seed alone. With --write they are also written as JSON lines.
 *
 * Prints one line: lines, orders, p50/p99/max decision time in ms, how many first decisions
 * were proven optimal and how many there were (rejections aside), the largest reported gap
 * (objective over proven bound, in percent), and how many unproven plans might miss units
 * (their units bound exceeds what they allocate). */
#include "engine.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

static int64_t rng_below(rng *r, int64_t n)
{
    return (int64_t)(rng_unit(r) * (double)n);
}

typedef struct tally {
    uint64_t decisions, proven, units_open;
    double worst_gap; /* percent */
} tally;

static void on_alloc(void *ctx, const omo_allocation *a)
{
    tally *t = ctx;
    if (a->revision != 1 || a->status == OMO_ALLOC_REJECTED)
        return;
    t->decisions++;
    if (!a->unproven) {
        t->proven++;
        return;
    }
    int64_t units = 0;
    for (int l = 0; l < a->nlines; l++)
        units += a->lines[l].qty - a->backordered[l];
    if (a->units_bound > units)
        t->units_open++; /* some plan might allocate more: no gap on the objective to speak of */
    double gap = a->bound > 0 ? 100.0 * (double)(a->objective - a->bound) / (double)a->bound : 0;
    if (gap > t->worst_gap)
        t->worst_gap = gap;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double nearest_rank(const double *sorted, size_t n, double p)
{
    size_t k = (size_t)ceil(p * (double)n);
    return n ? sorted[k ? k - 1 : 0] : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"network", required_argument, 0, 'n'}, {"rules", required_argument, 0, 'r'},
        {"stock", required_argument, 0, 'e'},   {"lines", required_argument, 0, 'l'},
        {"orders", required_argument, 0, 'o'},  {"seed", required_argument, 0, 's'},
        {"write", required_argument, 0, 'w'},   {0, 0, 0, 0}};
    const char *net_path = NULL, *rules_path = NULL, *stock_path = NULL, *write_path = NULL;
    long lines = 0, orders = 2000;
    uint64_t seed = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            net_path = optarg;
            break;
        case 'r':
            rules_path = optarg;
            break;
        case 'e':
            stock_path = optarg;
            break;
        case 'l':
            lines = strtol(optarg, NULL, 10);
            break;
        case 'o':
            orders = strtol(optarg, NULL, 10);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            write_path = optarg;
            break;
        default:
            return 2;
        }
    }
    if (!net_path || !rules_path || !stock_path || lines < 1 || lines > OMO_MAX_LINES ||
        orders < 1) {
        fputs("usage: baskets --network N.yaml --rules R.yaml --stock E.jsonl --lines 1..64 "
              "[--orders N] [--seed S] [--write FILE]\n",
              stderr);
        return 2;
    }
    omo_diag diag = {0};
    omo_network *net = omo_network_load(net_path, &diag);
    omo_rules *rules = net ? omo_rules_load(rules_path, net, &diag) : NULL;
    if (!rules) {
        omo_diag_print(&diag, stderr);
        return 2;
    }
    tally t = {0};
    omo_engine *eng = omo_engine_create(net, rules, on_alloc, &t);
    FILE *in = fopen(stock_path, "r");
    if (!in) {
        fprintf(stderr, "%s: %s\n", stock_path, strerror(errno));
        return 1;
    }
    /* The opening stock, and the catalogue with how many nodes hold each SKU. */
    omo_event *ev = omo_xcalloc(1, sizeof *ev);
    omo_event_error err;
    char *line = NULL;
    size_t cap = 0, nskus = 0, capskus = 0;
    ssize_t len;
    struct {
        char id[OMO_ID_MAX + 1];
        int64_t holders, upto; /* nodes holding it; and the SKUs before it */
    } *cat = NULL;
    int64_t total_holders = 0;
    omo_strmap index = {0};
    while ((len = getline(&line, &cap, in)) > 0) {
        if (!omo_event_parse(line, (size_t)len, net, ev, &err)) {
            fprintf(stderr, "%s: %s\n", stock_path, err.message);
            return 1;
        }
        if (ev->type != OMO_EV_STOCK_SNAPSHOT)
            break;
        if (omo_engine_apply(eng, ev, &err) != OMO_APPLY_OK)
            continue;
        bool added;
        int k = omo_strmap_add(&index, ev->sku, (int)nskus, &added);
        if (k < 0) {
            fputs("baskets: out of memory\n", stderr);
            return 1;
        }
        if (added) {
            omo_grow((void **)&cat, &capskus, nskus + 1, sizeof *cat);
            nskus++;
            strcpy(cat[k].id, ev->sku);
            cat[k].holders = 0;
        }
        cat[k].holders++;
        total_holders++;
    }
    fclose(in);
    for (size_t k = 0, acc = 0; k < nskus; k++)
        cat[k].upto = (int64_t)(acc += (size_t)cat[k].holders);
    FILE *out = write_path ? fopen(write_path, "w") : NULL;
    if (write_path && !out) {
        fprintf(stderr, "%s: %s\n", write_path, strerror(errno));
        return 1;
    }

    size_t nstores = 0;
    int *stores = omo_xmalloc(sizeof(int) * net->nnodes);
    for (size_t i = 0; i < net->nnodes; i++)
        if (net->nodes[i].type == OMO_NODE_STORE && net->nodes[i].pickup)
            stores[nstores++] = (int)i;
    rng r = {seed * 1000003 + (uint64_t)lines};
    double *ms = omo_xmalloc(sizeof(double) * (size_t)orders);
    char *text = omo_xmalloc(16384);
    /* 2026-11-23T08:00:00Z, one order every 20 s. */
    int64_t t0 = 1795420800;
    for (long i = 0; i < orders; i++) {
        const omo_node *st = &net->nodes[stores[rng_below(&r, (int64_t)nstores)]];
        double lat = st->lat + (rng_unit(&r) - 0.5) * 0.5;
        double lon = st->lon + (rng_unit(&r) - 0.5) * 0.5;
        double u = rng_unit(&r);
        time_t at = (time_t)(t0 + i * 20);
        struct tm tm;
        gmtime_r(&at, &tm);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        int n = snprintf(text, 16384,
                         "{\"type\":\"order.created\",\"order_id\":\"B%ld-%07ld\",\"created_at\":"
                         "\"%s\",\"channel\":\"web\",\"customer\":{\"lat\":%.4f,\"lon\":%.4f},",
                         lines, i + 1, when, lat, lon);
        if (u < 0.90)
            n += snprintf(text + n, 16384 - (size_t)n,
                          "\"delivery\":{\"method\":\"ship\",\"service\":\"%s\"},",
                          u < 0.85 ? "standard" : "same_day");
        else
            n += snprintf(text + n, 16384 - (size_t)n,
                          "\"delivery\":{\"method\":\"pickup\",\"store_id\":\"%s\"},", st->id);
        n += snprintf(text + n, 16384 - (size_t)n, "\"lines\":[");
        int64_t chosen[OMO_MAX_LINES];
        for (long l = 0; l < lines; l++) {
            int64_t k;
            if (l > 0 && rng_unit(&r) < 0.2) {
                k = chosen[rng_below(&r, l)];
            } else if (rng_unit(&r) < 0.5) {
                int64_t x = rng_below(&r, total_holders), lo = 0, hi = (int64_t)nskus - 1;
                while (lo < hi) { /* the first SKU whose cumulative count exceeds x */
                    int64_t mid = (lo + hi) / 2;
                    if (cat[mid].upto > x)
                        hi = mid;
                    else
                        lo = mid + 1;
                }
                k = lo;
            } else {
                k = rng_below(&r, (int64_t)nskus);
            }
            chosen[l] = k;
            double q = rng_unit(&r);
            n += snprintf(text + n, 16384 - (size_t)n,
                          "%s{\"line_id\":\"%ld\",\"sku\":\"%s\",\"qty\":%d}", l ? "," : "", l + 1,
                          cat[k].id,
                          q < 0.7   ? 1
                          : q < 0.9 ? 2
                                    : 3);
        }
        n += snprintf(text + n, 16384 - (size_t)n, "]}\n");
        if (out)
            fwrite(text, 1, (size_t)n, out);
        if (!omo_event_parse(text, (size_t)n, net, ev, &err)) {
            fprintf(stderr, "baskets: generated a bad order: %s\n", err.message);
            return 1;
        }
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        omo_apply_result res = omo_engine_apply(eng, ev, &err);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (res != OMO_APPLY_OK) {
            fprintf(stderr, "baskets: order refused: %s\n", err.message);
            return 1;
        }
        ms[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    }
    if (out)
        fclose(out);
    qsort(ms, (size_t)orders, sizeof(double), cmp_double);
    printf("%6ld %7ld %9.3f %9.3f %9.3f %8" PRIu64 " %9" PRIu64 " %8.3f %10" PRIu64 "\n", lines,
           orders, nearest_rank(ms, (size_t)orders, 0.50), nearest_rank(ms, (size_t)orders, 0.99),
           ms[orders - 1], t.proven, t.decisions, t.worst_gap, t.units_open);
    free(ms);
    free(text);
    free(stores);
    free(line);
    free(cat);
    free(ev);
    omo_strmap_free(&index);
    omo_engine_destroy(eng);
    omo_rules_destroy(rules);
    omo_network_destroy(net);
    return 0;
}
