/* `omo demo`: the service on embedded defaults. An in-process Kafka (librdkafka's mock cluster)
 * and a private PostgreSQL, the example network and rules of config/, and a generated retail
 * day streamed through the topics, with a progress line and a summary at the end. */
#include "wiring.h"

#include "commands.h"
#include "engine.h"
#include "http/http.h"
#include "kafka/mock.h"
#include "postgres/local.h"
#include "postgres/pg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct feed {
    omo_kafka_mock *mock;
    char **lines;
    size_t n;
    size_t opening; /* the leading stock snapshots: the stock at the start of the day */
    atomic_bool go; /* set once the opening stock is applied */
    int rate;       /* events per second; 0 = as fast as possible */
    atomic_size_t sent;
    atomic_bool done, failed;
} feed;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The topic and key a line goes to, as the web shop and the stores would send it. */
static void route(const char *line, const char **topic, char *key, size_t keylen)
{
    *topic = "omo.orders";
    key[0] = 0;
    json_t *j = json_loads(line, 0, NULL);
    const char *type = j ? json_string_value(json_object_get(j, "type")) : NULL;
    if (type && !strncmp(type, "stock.", 6)) {
        *topic = "omo.stock";
        const char *node = json_string_value(json_object_get(j, "node_id"));
        const char *sku = json_string_value(json_object_get(j, "sku"));
        snprintf(key, keylen, "%s/%s", node ? node : "", sku ? sku : "");
    } else if (j) {
        const char *id = json_string_value(json_object_get(j, "order_id"));
        snprintf(key, keylen, "%s", id ? id : "");
    }
    json_decref(j);
}

static void *feeder(void *arg)
{
    feed *f = arg;
    double start = now_s();
    const size_t chunk = 200;
    size_t m;
    for (size_t i = 0; i < f->n && !omo_stop_requested; i += m) {
        m = f->n - i < chunk ? f->n - i : chunk;
        if (i < f->opening && i + m > f->opening)
            m = f->opening - i;
        /* The day starts once the opening stock is in the view. */
        while (i >= f->opening && !f->go && !omo_stop_requested)
            usleep(10000);
        if (i == f->opening)
            start = now_s();
        for (size_t j = i; j < i + m; j++) {
            const char *topic;
            char key[256];
            route(f->lines[j], &topic, key, sizeof key);
            const char *keys[1] = {key[0] ? key : NULL};
            const char *values[1] = {f->lines[j]};
            if (!omo_kafka_mock_produce(f->mock, topic, -1, keys, values, 1)) {
                f->failed = true;
                f->done = true;
                return NULL;
            }
        }
        f->sent = i + m;
        if (f->rate > 0 && i >= f->opening) {
            double due = start + (double)(i + m - f->opening) / f->rate;
            double wait = due - now_s();
            if (wait > 0)
                usleep((useconds_t)(wait * 1e6));
        }
    }
    f->done = true;
    return NULL;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static char **read_lines(const char *path, size_t *n)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return NULL;
    char **v = NULL, *line = NULL;
    size_t cap = 0, lcap = 0;
    ssize_t len;
    *n = 0;
    while ((len = getline(&line, &lcap, in)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!len)
            continue;
        omo_grow((void **)&v, &cap, *n + 1, sizeof(char *));
        v[(*n)++] = omo_xstrdup(line);
    }
    free(line);
    fclose(in);
    return v;
}

static int port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    socklen_t sl = sizeof sa;
    if (ok && port == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return ok ? port : -1;
}

static void random_token(char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    FILE *r = fopen("/dev/urandom", "r");
    unsigned char b[16] = {0};
    if (r) {
        if (fread(b, 1, sizeof b, r) != sizeof b)
            memset(b, 7, sizeof b);
        fclose(r);
    }
    size_t i = 0;
    for (; i < sizeof b && 2 * i + 2 < len; i++) {
        buf[2 * i] = hex[b[i] >> 4];
        buf[2 * i + 1] = hex[b[i] & 15];
    }
    buf[2 * i] = 0;
}

/* Writes the demo's omo.yaml; returns its path (static) or NULL. */
static const char *write_config(const char *state, const char *bootstraps, const char *dsn,
                                const char *net_path, const char *rules_path, const char *host,
                                int port, const omo_network *net, char *ops_token,
                                char (*store_tokens)[40])
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/omo.yaml", state);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fprintf(f,
            "# Written by omo demo: the mock cluster, the private PostgreSQL and the examples.\n"
            "kafka:\n  brokers: \"%s\"\n  group: omo-demo\n"

            "postgres:\n  dsn: \"%s\"\nnetwork: \"%s\"\nrouting: \"%s\"\n"
            "http:\n  listen: \"%s:%d\"\n  tokens:\n    - {token: \"%s\", role: ops}\n",
            bootstraps, dsn, net_path, rules_path, host, port, ops_token);
    for (size_t i = 0; i < net->nnodes; i++)
        if (net->nodes[i].type == OMO_NODE_STORE)
            fprintf(f, "    - {token: \"%s\", role: store, store: %s}\n", store_tokens[i],
                    net->nodes[i].id);
    return fclose(f) == 0 ? path : NULL;
}

static void progress(const feed *f, const omo_stream_stats *st, double t0, bool final)
{
    double secs = now_s() - t0;
    bool tty = isatty(STDERR_FILENO);
    fprintf(stderr,
            "%s[demo] sent %zu/%zu  applied %llu  orders %llu  revisions %llu  dead letters %llu  "
            "%.0f events/s   %s",
            tty ? "\r" : "", (size_t)f->sent, f->n, (unsigned long long)st->events_in,
            (unsigned long long)st->orders, (unsigned long long)st->revisions,
            (unsigned long long)st->dead_letters, secs > 0 ? (double)st->events_in / secs : 0.0,
            final || !tty ? "\n" : "");
}

static int cmp_units_desc(const void *a, const void *b, void *ctx)
{
    const int64_t *u = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    if (u[x] != u[y])
        return u[x] < u[y] ? 1 : -1;
    return x - y;
}

static double pct(uint64_t a, uint64_t total)
{
    return total ? 100.0 * (double)a / (double)total : 0.0;
}

static void summary(omo_stream *stream, const omo_network *net, const omo_stream_stats *st,
                    double secs)
{
    omo_summary s;
    omo_engine *eng = omo_stream_engine(stream);
    omo_engine_summary(eng, &s);
    uint64_t ships = s.ships_by_method[0] + s.ships_by_method[1] + s.ships_by_method[2];
    printf("\nomo demo: one retail day through Kafka and PostgreSQL\n");
    printf("  events       %llu applied, %llu dead letters, %llu duplicates\n",
           (unsigned long long)(st->events_in - st->dead_letters),
           (unsigned long long)st->dead_letters, (unsigned long long)st->duplicates);
    printf("  orders       %llu: allocated %llu, partial %llu, backordered %llu, rejected %llu, "
           "cancelled %llu\n",
           (unsigned long long)s.orders, (unsigned long long)s.by_status[OMO_ALLOC_ALLOCATED],
           (unsigned long long)s.by_status[OMO_ALLOC_PARTIAL],
           (unsigned long long)s.by_status[OMO_ALLOC_BACKORDERED],
           (unsigned long long)s.by_status[OMO_ALLOC_REJECTED],
           (unsigned long long)s.by_status[OMO_ALLOC_CANCELLED]);
    printf("  methods      warehouse %llu (%.0f%%), ship-from-store %llu (%.0f%%), "
           "click-and-collect %llu (%.0f%%) shipments\n",
           (unsigned long long)s.ships_by_method[0], pct(s.ships_by_method[0], ships),
           (unsigned long long)s.ships_by_method[1], pct(s.ships_by_method[1], ships),
           (unsigned long long)s.ships_by_method[2], pct(s.ships_by_method[2], ships));
    double served = s.hours_orders ? (double)s.hours_orders : 1.0;
    printf("  cost         mean shipping cost %.2f, mean objective %.2f per order served\n",
           (double)s.ship_cost / 1e6 / served, (double)s.objective / 1e9 / served);
    printf("  promised     mean %.1f hours\n", (double)s.hours_sum / 1000.0 / served);
    printf("  units        %lld ordered, %lld allocated, %lld backordered\n",
           (long long)s.units_ordered, (long long)s.units_allocated,
           (long long)s.units_backordered);
    printf("  splits       %llu orders in more than one shipment\n",
           (unsigned long long)s.split_orders);
    printf("  re-sourcing  %llu revisions after stock loss, %llu backorders filled\n",
           (unsigned long long)st->resourced, (unsigned long long)st->retried);
    int64_t *units = omo_xcalloc(net->nnodes, sizeof(int64_t));
    int *idx = omo_xmalloc(sizeof(int) * net->nnodes);
    omo_engine_node_units(eng, units);
    for (size_t i = 0; i < net->nnodes; i++)
        idx[i] = (int)i;
    qsort_r(idx, net->nnodes, sizeof(int), cmp_units_desc, units);
    printf("  busiest      ");
    for (size_t i = 0; i < net->nnodes && i < 5; i++)
        printf("%s%s %lld units", i ? ", " : "", net->nodes[idx[i]].id, (long long)units[idx[i]]);
    printf("\n  throughput   %llu events in %.1f s (%.0f events/s, %.0f orders/s)\n",
           (unsigned long long)st->events_in, secs, secs > 0 ? (double)st->events_in / secs : 0,
           secs > 0 ? (double)s.orders / secs : 0);
    free(units);
    free(idx);
}

static void usage(void)
{
    fputs("usage: omo demo [--keep] [--config-dir DIR] [--state DIR] [--rate EVENTS_PER_S] "
          "[--host ADDR] [--port N]\n",
          stderr);
}

int omo_cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {{"keep", no_argument, 0, 'k'},
                                         {"config-dir", required_argument, 0, 'c'},
                                         {"state", required_argument, 0, 's'},
                                         {"rate", required_argument, 0, 'r'},
                                         {"host", required_argument, 0, 'h'},
                                         {"port", required_argument, 0, 'p'},
                                         {0, 0, 0, 0}};
    /* The examples of the working directory (a clone), else the installed ones. */
    const char *config_dir = access("config/day.jsonl", R_OK) ? OMO_DATADIR "/config" : "config";
    const char *state = "state/demo", *host = "127.0.0.1";
    bool keep = false;
    int rate = 20000, want_port = 8080, c;
    optind = 0;
    while ((c = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            keep = true;
            break;
        case 'c':
            config_dir = optarg;
            break;
        case 's':
            state = optarg;
            break;
        case 'r':
            rate = atoi(optarg);
            break;
        case 'h':
            host = optarg;
            break;
        case 'p':
            want_port = atoi(optarg);
            break;
        default:
            usage();
            return 2;
        }
    }
    if (optind != argc + 1) {
        usage();
        return 2;
    }
    omo_install_signals();

    char net_path[PATH_MAX], rules_path[PATH_MAX], day_path[PATH_MAX], err[512] = "";
    char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
    snprintf(p1, sizeof p1, "%s/network.yaml", config_dir);
    snprintf(p2, sizeof p2, "%s/routing.yaml", config_dir);
    snprintf(p3, sizeof p3, "%s/day.jsonl", config_dir);
    if (!realpath(p1, net_path) || !realpath(p2, rules_path) || !realpath(p3, day_path)) {
        fprintf(stderr,
                "omo demo: cannot find the examples in %s/ (network.yaml, routing.yaml, "
                "day.jsonl): %s; run it from the repository or pass --config-dir\n",
                config_dir, strerror(errno));
        return 2;
    }
    omo_diag diag = {0};
    omo_network *net = omo_network_load(net_path, &diag);
    if (!net) {
        omo_diag_print(&diag, stderr);
        omo_diag_clear(&diag);
        return 2;
    }
    size_t nlines = 0;
    char **lines = read_lines(day_path, &nlines);

    int rc = 1;
    omo_pg_local *pg = NULL;
    omo_kafka_mock *mock = NULL;
    omo_running run = {0};
    char(*store_tokens)[40] = omo_xcalloc(net->nnodes, sizeof *store_tokens);
    char ops_token[40];
    pthread_t thread;
    bool thread_started = false;
    feed f = {.lines = lines, .n = nlines, .rate = rate};
    while (f.opening < nlines && strstr(lines[f.opening], "\"stock.snapshot\""))
        f.opening++;

    char state_abs[PATH_MAX];
    mkdir("state", 0755);
    if (mkdir(state, 0755) && errno != EEXIST) {
        fprintf(stderr, "omo demo: cannot create %s: %s\n", state, strerror(errno));
        goto done;
    }
    if (!realpath(state, state_abs)) {
        fprintf(stderr, "omo demo: %s: %s\n", state, strerror(errno));
        goto done;
    }
    char pgdir[PATH_MAX + 16];
    snprintf(pgdir, sizeof pgdir, "%s/postgres", state_abs);
    /* Every demo is a new day: the Kafka cluster is new, so is the database. */
    nftw(pgdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    fprintf(stderr, "[demo] starting a private PostgreSQL in %s\n", pgdir);
    pg = omo_pg_local_start(pgdir, true, err, sizeof err);
    if (!pg) {
        fprintf(stderr, "omo demo: PostgreSQL: %s\n", err);
        goto done;
    }
    int applied = 0;
    if (omo_pg_migrate_dsn(omo_pg_local_dsn(pg), &applied, err, sizeof err) != OMO_IO_OK) {
        fprintf(stderr, "omo demo: migrate: %s\n", err);
        goto done;
    }
    mock = omo_kafka_mock_start(3, 4, err, sizeof err);
    if (!mock) {
        fprintf(stderr, "omo demo: Kafka mock cluster: %s\n", err);
        goto done;
    }
    f.mock = mock;
    fprintf(stderr, "[demo] Kafka mock cluster at %s, PostgreSQL at %s\n",
            omo_kafka_mock_bootstraps(mock), omo_pg_local_dsn(pg));
    int port = port_free(want_port) > 0 ? want_port : port_free(0);
    random_token(ops_token, sizeof ops_token);
    for (size_t i = 0; i < net->nnodes; i++)
        random_token(store_tokens[i], sizeof store_tokens[i]);
    const char *conf =
        write_config(state_abs, omo_kafka_mock_bootstraps(mock), omo_pg_local_dsn(pg), net_path,
                     rules_path, host, port, net, ops_token, store_tokens);
    if (!conf) {
        fprintf(stderr, "omo demo: cannot write the configuration in %s\n", state_abs);
        goto done;
    }
    omo_stream_opts sopts = {
        .stop = &omo_stop_requested, .reload = &omo_reload_requested, .pipeline = true};
    rc = omo_running_open(conf, &sopts, &run);
    if (rc)
        goto done;
    rc = 1;

    printf("omo demo: the service is up\n");
    printf("  health   http://127.0.0.1:%d/healthz   metrics http://127.0.0.1:%d/metrics\n", port,
           port);
    printf("  ops      curl -H 'Authorization: Bearer %s' http://127.0.0.1:%d/orders/ORDER_ID\n",
           ops_token, port);
    printf("  config   %s\n", conf);
    printf(
        "\nPick lists (one per store, each with that store's token; open on a phone or print):\n");
    for (size_t i = 0; i < net->nnodes; i++)
        if (net->nodes[i].type == OMO_NODE_STORE)
            printf("  %-8s http://127.0.0.1:%d/stores/%s/picklist?format=html&token=%s\n",
                   net->nodes[i].id, port, net->nodes[i].id, store_tokens[i]);
    printf("Ops: GET /rules, POST /rules/diff, GET /orders/ID/explain with the ops token above.\n");
    printf("\n");
    fflush(stdout);

    double t0 = now_s(), last = 0;
    if (pthread_create(&thread, NULL, feeder, &f) == 0)
        thread_started = true;
    omo_stream_stats st;
    for (;;) {
        if (omo_stream_step(run.stream))
            goto done;
        omo_stream_stats_get(run.stream, &st);
        if (!f.go && st.events_in >= f.opening)
            f.go = true;
        if (now_s() - last > (isatty(STDERR_FILENO) ? 0.2 : 2.0)) {
            progress(&f, &st, t0, false);
            last = now_s();
        }
        if (omo_stop_requested || f.failed || (f.done && st.events_in >= f.n))
            break;
    }
    if (omo_stream_flush(run.stream, 10000))
        goto done;
    omo_stream_stats_get(run.stream, &st);
    progress(&f, &st, t0, true);
    if (f.failed) {
        fprintf(stderr, "omo demo: could not send the day's events to Kafka\n");
        goto done;
    }
    summary(run.stream, net, &st, now_s() - t0);
    rc = 0;
    if (!keep)
        printf("\nThe service stopped with the day; `scripts/demo.sh --keep` keeps it and the "
               "links above running.\n");
    if (keep && !omo_stop_requested) {
        printf("\nLeft running (--keep); Ctrl-C stops it.\n");
        fflush(stdout);
        rc = omo_stream_run(run.stream);
    }
done:
    omo_stop_requested = 1;
    if (thread_started)
        pthread_join(thread, NULL);
    omo_running_close(&run);
    omo_kafka_mock_stop(mock);
    omo_pg_local_stop(pg);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
    free(store_tokens);
    omo_network_destroy(net);
    omo_diag_clear(&diag);
    return rc;
}
