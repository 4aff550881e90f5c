/* `omo solve`: offline, deterministic replay of an event file. */
#include "commands.h"
#include "engine.h"
#include "replay.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct solve_out {
    FILE *out;
    const omo_network *net;
    char *buf;
    size_t cap;
} solve_out;

static void write_alloc(void *ctx, const omo_allocation *a)
{
    solve_out *so = ctx;
    size_t n = omo_allocation_json(a, so->net, &so->buf, &so->cap);
    fwrite(so->buf, 1, n, so->out);
}

static void usage(void)
{
    fputs("usage: omo solve --network N.yaml --rules R.yaml --events E.jsonl [--out A.jsonl] "
          "[--strict]\n",
          stderr);
}

static double money(int64_t nano)
{
    return (double)nano / 1e9;
}

static void print_summary(const omo_engine *eng, uint64_t bad, double secs)
{
    omo_summary s;
    omo_engine_summary(eng, &s);
    const omo_engine_stats *st = omo_engine_stats_get(eng);
    uint64_t decided = s.orders - s.by_status[OMO_ALLOC_REJECTED];
    fprintf(stderr, "omo solve: %llu orders from %llu events in %.2f s (%.0f orders/s)\n",
            (unsigned long long)s.orders, (unsigned long long)(st->events + bad), secs,
            secs > 0 ? (double)s.orders / secs : 0.0);
    fprintf(stderr,
            "  status     allocated %llu, partial %llu, backordered %llu, rejected %llu, "
            "cancelled %llu\n",
            (unsigned long long)s.by_status[OMO_ALLOC_ALLOCATED],
            (unsigned long long)s.by_status[OMO_ALLOC_PARTIAL],
            (unsigned long long)s.by_status[OMO_ALLOC_BACKORDERED],
            (unsigned long long)s.by_status[OMO_ALLOC_REJECTED],
            (unsigned long long)s.by_status[OMO_ALLOC_CANCELLED]);
    fprintf(stderr, "  units      %lld ordered, %lld allocated, %lld backordered\n",
            (long long)s.units_ordered, (long long)s.units_allocated,
            (long long)s.units_backordered);
    fprintf(stderr,
            "  shipments  warehouse %llu, ship_from_store %llu, click_and_collect %llu; "
            "%llu orders split\n",
            (unsigned long long)s.ships_by_method[OMO_METHOD_WAREHOUSE],
            (unsigned long long)s.ships_by_method[OMO_METHOD_SHIP_FROM_STORE],
            (unsigned long long)s.ships_by_method[OMO_METHOD_CLICK_AND_COLLECT],
            (unsigned long long)s.split_orders);
    fprintf(stderr, "  objective  total %.2f, mean %.2f per order served\n", money(s.objective),
            s.hours_orders ? money(s.objective) / (double)s.hours_orders : 0.0);
    fprintf(stderr, "  promised   mean %.1f hours\n",
            s.hours_orders ? (double)s.hours_sum / 1000.0 / (double)s.hours_orders : 0.0);
    fprintf(stderr, "  revisions  %llu (%llu re-sourced, %llu backorders filled)\n",
            (unsigned long long)st->revisions, (unsigned long long)st->resourced,
            (unsigned long long)st->retried);
    fprintf(stderr, "  skipped    %llu bad events, %llu duplicates\n",
            (unsigned long long)(bad + st->invalid), (unsigned long long)st->duplicates);
    (void)decided;
}

int omo_cmd_solve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"network", required_argument, 0, 'n'}, {"rules", required_argument, 0, 'r'},
        {"events", required_argument, 0, 'e'},  {"out", required_argument, 0, 'o'},
        {"strict", no_argument, 0, 's'},        {0, 0, 0, 0}};
    const char *net_path = NULL, *rules_path = NULL, *events_path = NULL, *out_path = NULL;
    bool strict = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            net_path = optarg;
            break;
        case 'r':
            rules_path = optarg;
            break;
        case 'e':
            events_path = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 's':
            strict = true;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (!net_path || !rules_path || !events_path || optind != argc + 1) {
        usage();
        return 2;
    }

    int rc = 2;
    omo_diag diag = {0};
    omo_network *net = NULL;
    omo_rules *rules = NULL;
    omo_engine *eng = NULL;
    solve_out so = {0};

    net = omo_network_load(net_path, &diag);
    if (net)
        rules = omo_rules_load(rules_path, net, &diag);
    if (!net || !rules) {
        omo_diag_print(&diag, stderr);
        goto done;
    }
    /* Refuse a missing event file before --out truncates anything. */
    if (access(events_path, R_OK) != 0) {
        fprintf(stderr, "%s: error: cannot open: %m\n", events_path);
        goto done;
    }
    so.net = net;
    so.out = out_path ? fopen(out_path, "w") : stdout;
    if (!so.out) {
        fprintf(stderr, "%s: error: cannot write: %m\n", out_path);
        so.out = NULL;
        rc = 1;
        goto done;
    }
    setvbuf(so.out, NULL, _IOFBF, 1 << 20);
    eng = omo_engine_create(net, rules, write_alloc, &so);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    omo_replay_stats rs;
    omo_replay_result rr =
        omo_replay_file(events_path, net, eng, omo_replay_report_stderr, NULL, &rs);
    int replay_errno = errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    errno = replay_errno;
    if (rr == OMO_REPLAY_CANNOT_OPEN) {
        fprintf(stderr, "%s: error: cannot open: %m\n", events_path);
        goto done;
    }
    if (rr == OMO_REPLAY_READ_ERROR) {
        fprintf(stderr, "%s: error: read failed: %m\n", events_path);
        rc = 1;
        goto done;
    }
    if (fflush(so.out) != 0 || ferror(so.out)) {
        fprintf(stderr, "%s: error: write failed\n", out_path ? out_path : "stdout");
        rc = 1;
        goto done;
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_summary(eng, rs.bad, secs);
    rc = strict && (rs.bad || rs.invalid) ? 2 : 0;

done:
    if (so.out && so.out != stdout)
        fclose(so.out);
    free(so.buf);
    omo_engine_destroy(eng);
    omo_rules_destroy(rules);
    omo_network_destroy(net);
    omo_diag_clear(&diag);
    return rc;
}
