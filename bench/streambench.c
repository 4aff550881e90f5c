/* streambench: omo's streaming service end to end, through a mock Kafka cluster and a durable
 * PostgreSQL, against a floor that moves the same messages through the same cluster untouched.
 *
 *   streambench --day DIR [--omo PATH] [--out DIR] [--partitions N] [--fetch-wait-ms N]
 *               [--rate ORDERS_PER_S] [--perf FILE] [--no-floor] [--no-latency]
 *               [--latency-only --rate ORDERS_PER_S] [--readers P,A]
 *   streambench relay BOOTSTRAPS GROUP IN_TOPIC IN_TOPIC OUT_TOPIC   (the floor's process)
 *
 * DIR holds gen's network.yaml, routing.yaml and events.jsonl: the opening stock snapshots,
 * then the day. Three phases, each on its own cluster topics:
 *
 *  throughput  a private PostgreSQL (fsync on, synchronous_commit on), a mock cluster, and
 *              `omo run` as a child process. The opening stock is produced (paced to the
 *              service, so that the mock's per-partition retention never drops an unread
 *              record) and applied; then the rest of the day is produced as fast as possible,
 *              in file order. Time: from the first message produced to the last order's first
 *              allocation read back from omo.allocations.
 *  floor       on the same cluster, fresh topics, and a relay process (below) in omo's place:
 *              the same Kafka client settings as the service, every message consumed is
 *              produced again with its key, nothing parsed, nothing stored. Same timing.
 *  latency     a new cluster, database and service; after the opening, the day is produced
 *              paced at half the measured rate (or --rate); for each order, the time from just
 *              before it is produced to its first allocation being read back.
 *
 *  readers     with --readers P,A: the latency phase again, on a new cluster, database and
 *              service, with P client threads sending POST /promise and A sending
 *              GET /availability back to back while the day streams; their requests/s, p50 and
 *              p99, and the stream's p99 against the phase without them (bench/promise.sh).
 *
 * The mock cluster answers a fetch that finds no data only after the consumer's full
 * fetch.wait.max.ms (a real broker answers as soon as data arrives); with librdkafka's default
 * of 500 ms every idle moment of a consumer would cost up to half a second. The service, the
 * relay and the bench's own reader are therefore all given fetch.wait.max.ms = --fetch-wait-ms
 * (default 10), the service through kafka.properties in its omo.yaml. */
#include "kafka/mock.h"
#include "postgres/local.h"
#include "postgres/pg.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TARGET_ORDERS_S 20000.0
#define TARGET_P99_MS   100.0
#define QUIET_S         2.0  /* all applied and no new allocation for this long: done */
#define STALL_S         60.0 /* no progress for this long: the phase failed */
/* Opening records produced ahead of the service at most: the mock keeps 5 MB per partition and
 * drops the oldest records beyond that, read or not. */
#define OPENING_AHEAD   80000
#define OPENING_CHUNK   10000
#define RELAY_MAX_BATCH 2000

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static bool conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "streambench: kafka property %s: %s\n", name, why);
        return false;
    }
    return true;
}

/* ---- the day ------------------------------------------------------------------------------ */

enum { IN_ORDERS = 0, IN_STOCK = 1 };

typedef struct day {
    char **lines;
    size_t n, opening; /* opening: the leading stock snapshots */
    uint8_t *topic;    /* IN_ORDERS or IN_STOCK */
    char **keys;
    int *order; /* index of the order an order.created line creates, else -1 */
    size_t norders, nstock, ncancel;
    omo_strmap ids; /* order_id -> index */
} day;

/* Copies the string value of "field" in a flat JSON line (gen's output) into out. */
static bool field(const char *line, const char *name, char *out, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = strstr(line, pat);
    if (!p)
        return false;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= len)
        return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return true;
}

static void day_free(day *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->lines[i]);
        free(d->keys[i]);
    }
    free(d->lines);
    free(d->keys);
    free(d->topic);
    free(d->order);
    omo_strmap_free(&d->ids);
    memset(d, 0, sizeof *d);
}

/* Reads events.jsonl and routes every line as the web shop and the stores would: orders and
 * cancellations to the orders topic keyed by order_id, stock events to the stock topic keyed by
 * node/sku. */
static bool day_load(const char *path, day *d)
{
    memset(d, 0, sizeof *d);
    FILE *in = fopen(path, "r");
    if (!in) {
        fprintf(stderr, "streambench: %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    bool opening = true, ok = true;
    while ((len = getline(&line, &lcap, in)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (!len)
            continue;
        if (d->n + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 16;
            d->lines = omo_xrealloc(d->lines, cap * sizeof *d->lines);
            d->keys = omo_xrealloc(d->keys, cap * sizeof *d->keys);
            d->topic = omo_xrealloc(d->topic, cap);
            d->order = omo_xrealloc(d->order, cap * sizeof *d->order);
        }
        size_t i = d->n++;
        char type[64] = "", a[128] = "", b[128] = "", key[260];
        field(line, "type", type, sizeof type);
        d->lines[i] = omo_xstrdup(line);
        d->order[i] = -1;
        if (!strncmp(type, "stock.", 6)) {
            field(line, "node_id", a, sizeof a);
            field(line, "sku", b, sizeof b);
            snprintf(key, sizeof key, "%s/%s", a, b);
            d->topic[i] = IN_STOCK;
            if (opening && !strcmp(type, "stock.snapshot"))
                d->opening = d->n;
            else
                d->nstock++;
        } else {
            field(line, "order_id", key, sizeof key);
            d->topic[i] = IN_ORDERS;
            if (!strcmp(type, "order.created")) {
                bool added;
                int idx = omo_strmap_add(&d->ids, key, (int)d->norders, &added);
                if (idx < 0) {
                    ok = false;
                    break;
                }
                if (added)
                    d->order[i] = (int)d->norders++;
            } else {
                d->ncancel++;
            }
        }
        if (strcmp(type, "stock.snapshot"))
            opening = false;
        d->keys[i] = omo_xstrdup(key);
    }
    free(line);
    fclose(in);
    if (ok && d->norders == 0) {
        fprintf(stderr, "streambench: %s holds no orders\n", path);
        ok = false;
    }
    if (!ok)
        day_free(d);
    return ok;
}

/* ---- the bench's producer ----------------------------------------------------------------- */

typedef struct feeder {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt[2];
    atomic_size_t failed;
} feeder;

static void feeder_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    feeder *f = opaque;
    if (rkm->err && f->failed++ == 0)
        fprintf(stderr, "streambench: delivery failed: %s\n", rd_kafka_err2str(rkm->err));
}

static bool feeder_open(feeder *f, const char *bootstraps, const char *orders, const char *stock,
                        const char *linger_ms)
{
    memset(f, 0, sizeof *f);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];
    if (!conf_set(conf, "bootstrap.servers", bootstraps) || !conf_set(conf, "acks", "all") ||
        !conf_set(conf, "linger.ms", linger_ms) ||
        !conf_set(conf, "queue.buffering.max.messages", "2000000") ||
        !conf_set(conf, "batch.num.messages", "10000") || !conf_set(conf, "log_level", "3")) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_conf_set_opaque(conf, f);
    rd_kafka_conf_set_dr_msg_cb(conf, feeder_delivery);
    f->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!f->rk) {
        fprintf(stderr, "streambench: producer: %s\n", why);
        rd_kafka_conf_destroy(conf);
        return false;
    }
    f->rkt[IN_ORDERS] = rd_kafka_topic_new(f->rk, orders, NULL);
    f->rkt[IN_STOCK] = rd_kafka_topic_new(f->rk, stock, NULL);
    return f->rkt[0] && f->rkt[1];
}

static void feeder_close(feeder *f)
{
    for (int t = 0; t < 2; t++)
        if (f->rkt[t])
            rd_kafka_topic_destroy(f->rkt[t]);
    if (f->rk) {
        rd_kafka_flush(f->rk, 10000);
        rd_kafka_destroy(f->rk);
    }
    memset(f, 0, sizeof *f);
}

/* Queues line i of the day; waits for queue space when the queue is full. */
static bool feeder_send(feeder *f, const day *d, size_t i)
{
    for (;;) {
        const char *key = d->keys[i];
        rd_kafka_resp_err_t e = rd_kafka_producev(
            f->rk, RD_KAFKA_V_RKT(f->rkt[d->topic[i]]), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(d->lines[i], strlen(d->lines[i])),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return true;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "streambench: produce: %s\n", rd_kafka_err2str(e));
            return false;
        }
        rd_kafka_poll(f->rk, 5);
    }
}

/* ---- the bench's reader: first output per order ------------------------------------------- */

typedef struct tracker {
    rd_kafka_t *rk;
    pthread_t thread;
    bool started;
    atomic_bool stop;
    const day *d;
    double *seen;        /* per order: when its first output was read; 0 until then */
    atomic_size_t nseen; /* orders seen */
    atomic_size_t msgs;  /* every message read */
    _Atomic double last; /* when the last message was read */
} tracker;

static void *tracker_run(void *arg)
{
    tracker *t = arg;
    char key[256];
    while (!t->stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(t->rk, 50);
        if (!m)
            continue;
        if (!m->err) {
            double now = now_s();
            t->last = now;
            if (m->key && m->key_len < sizeof key) {
                memcpy(key, m->key, m->key_len);
                key[m->key_len] = 0;
                int idx = omo_strmap_get(&t->d->ids, key);
                if (idx >= 0 && t->seen[idx] == 0) {
                    t->seen[idx] = now;
                    t->nseen++;
                }
            }
            t->msgs++;
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            fprintf(stderr, "streambench: reader: %s\n", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

/* Reads every partition of topic from its beginning, without joining a group. */
static bool tracker_start(tracker *t, const day *d, const char *bootstraps, const char *topic,
                          int partitions, int fetch_wait_ms)
{
    memset(t, 0, sizeof *t);
    t->d = d;
    t->seen = omo_xcalloc(d->norders, sizeof *t->seen);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512], wait[16];
    snprintf(wait, sizeof wait, "%d", fetch_wait_ms);
    if (!conf_set(conf, "bootstrap.servers", bootstraps) ||
        !conf_set(conf, "group.id", "streambench-reader") ||
        !conf_set(conf, "enable.auto.commit", "false") ||
        !conf_set(conf, "fetch.wait.max.ms", wait) || !conf_set(conf, "fetch.min.bytes", "1") ||
        !conf_set(conf, "isolation.level", "read_uncommitted") ||
        !conf_set(conf, "log_level", "3")) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    t->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!t->rk) {
        fprintf(stderr, "streambench: reader: %s\n", why);
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_poll_set_consumer(t->rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(t->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        fprintf(stderr, "streambench: reader assign: %s\n", rd_kafka_err2str(e));
        return false;
    }
    if (pthread_create(&t->thread, NULL, tracker_run, t))
        return false;
    t->started = true;
    return true;
}

static void tracker_stop(tracker *t)
{
    t->stop = true;
    if (t->started)
        pthread_join(t->thread, NULL);
    if (t->rk) {
        rd_kafka_consumer_close(t->rk);
        rd_kafka_destroy(t->rk);
    }
    free(t->seen);
    memset(t, 0, sizeof *t);
}

/* ---- child processes ---------------------------------------------------------------------- */

/* Starts argv with stdout and stderr to log (appended), or stdout to a pipe (*out_fd) when
 * out_fd is given. The child dies with this process. */
static pid_t spawn(char *const argv[], const char *log, int *out_fd)
{
    int pfd[2] = {-1, -1};
    if (out_fd && pipe(pfd))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(out_fd ? pfd[1] : fd, STDOUT_FILENO);
            close(fd);
        }
        if (out_fd) {
            close(pfd[0]);
            close(pfd[1]);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (out_fd) {
        close(pfd[1]);
        *out_fd = pfd[0];
    }
    return pid;
}

/* Asks the child to stop (sig), waits up to timeout_s, then kills it. Returns its exit code
 * (128 + signal when killed by one), or -1. */
static int reap(pid_t pid, int sig, double timeout_s)
{
    if (pid <= 0)
        return -1;
    int status;
    kill(pid, sig);
    double until = now_s() + timeout_s;
    while (now_s() < until) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        sleep_s(0.02);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static bool alive(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

/* ---- readers beside the stream (bench/promise.sh) ------------------------------------------
 *
 * Client threads, each on one keep-alive HTTP/1.1 connection, sending requests back to back:
 * POST /promise with the basket of a random order of the day (its lines, 1 to 4, and its
 * delivery, ship or pickup), or GET /availability for a random SKU of one. */

#define BENCH_TOKEN "streambench"

typedef struct loader {
    pthread_t thread;
    int port;
    bool promise;
    const day *d;
    const size_t *lines; /* order.created lines of at most 4 lines */
    size_t nlines;
    uint64_t rng;
    atomic_bool *stop;
    double *lat; /* ms */
    size_t n, cap;
    uint64_t errors;
    double t0, t1;
} loader;

static uint64_t loader_rand(loader *l)
{
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return l->rng;
}

static int loader_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* One request and its whole answer on a kept-alive connection; the status, or -1. */
static int loader_call(int fd, const char *head, const char *body, size_t blen, char **buf,
                       size_t *cap)
{
    /* One write: a head and a body in two would wait for the delayed ACK (Nagle). */
    size_t hlen = strlen(head);
    if (hlen + blen + 1 > *cap) {
        *cap = hlen + blen + 65536;
        *buf = omo_xrealloc(*buf, *cap);
    }
    memcpy(*buf, head, hlen);
    if (blen)
        memcpy(*buf + hlen, body, blen);
    if (write(fd, *buf, hlen + blen) != (ssize_t)(hlen + blen))
        return -1;
    size_t used = 0;
    char *end = NULL;
    for (;;) {
        if (used + 4096 > *cap) {
            *cap = *cap ? *cap * 2 : 65536;
            *buf = omo_xrealloc(*buf, *cap);
        }
        ssize_t r = read(fd, *buf + used, *cap - used - 1);
        if (r <= 0)
            return -1;
        used += (size_t)r;
        (*buf)[used] = 0;
        if (!end && (end = strstr(*buf, "\r\n\r\n"))) {
            const char *cl = strcasestr(*buf, "content-length:");
            size_t want = (size_t)(end - *buf) + 4 + (cl ? strtoul(cl + 15, NULL, 10) : 0);
            while (used < want) {
                if (want + 1 > *cap) {
                    *cap = want + 1;
                    *buf = omo_xrealloc(*buf, *cap);
                }
                r = read(fd, *buf + used, want - used);
                if (r <= 0)
                    return -1;
                used += (size_t)r;
            }
            return atoi(*buf + 9);
        }
    }
}

static void *loader_run(void *arg)
{
    loader *l = arg;
    /* The clients would be elsewhere: here they take only what omo leaves of the two cores. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    char *buf = NULL, head[512], path[160];
    size_t cap = 0;
    int fd = -1;
    l->t0 = now_s();
    while (!atomic_load(l->stop)) {
        if (fd < 0 && (fd = loader_connect(l->port)) < 0) {
            l->errors++;
            sleep_s(0.01);
            continue;
        }
        const char *line = l->d->lines[l->lines[loader_rand(l) % l->nlines]];
        const char *body = NULL;
        size_t blen = 0;
        if (l->promise) {
            /* An order.created is a promise body: its id and type are ignored, its created_at
             * is the decision's time. */
            body = line;
            blen = strlen(line);
            snprintf(head, sizeof head,
                     "POST /promise HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                     "%s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     BENCH_TOKEN, blen);
        } else {
            char sku[96] = "";
            field(line, "sku", sku, sizeof sku);
            snprintf(path, sizeof path, "/availability?sku=%s", sku);
            snprintf(head, sizeof head,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n", path,
                     BENCH_TOKEN);
        }
        double t = now_s();
        int status = loader_call(fd, head, body, blen, &buf, &cap);
        double ms = (now_s() - t) * 1000.0;
        if (status != 200) {
            l->errors++;
            close(fd);
            fd = -1;
            continue;
        }
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 1 << 16;
            l->lat = omo_xrealloc(l->lat, l->cap * sizeof *l->lat);
        }
        l->lat[l->n++] = ms;
    }
    l->t1 = now_s();
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

/* What one kind of reader did: requests/s over the run, p50 and p99 in ms. */
typedef struct load_result {
    double per_s, p50, p99;
    size_t n;
    uint64_t errors;
} load_result;

static int cmp_double(const void *a, const void *b);
static double percentile(const double *v, size_t n, double p);

static load_result load_summary(loader *ls, int from, int to)
{
    load_result r = {0};
    size_t n = 0;
    double secs = 0;
    for (int i = from; i < to; i++) {
        n += ls[i].n;
        r.errors += ls[i].errors;
        secs = fmax(secs, ls[i].t1 - ls[i].t0);
    }
    double *all = omo_xmalloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    for (int i = from; i < to; i++)
        for (size_t j = 0; j < ls[i].n; j++)
            all[k++] = ls[i].lat[j];
    if (n) {
        qsort(all, n, sizeof *all, cmp_double);
        r.p50 = percentile(all, n, 0.50);
        r.p99 = percentile(all, n, 0.99);
    }
    r.n = n;
    r.per_s = secs > 0 ? (double)n / secs : 0;
    free(all);
    return r;
}

/* ---- the service -------------------------------------------------------------------------- */

typedef struct opts {
    const char *day_dir, *omo, *out, *perf;
    int partitions, fetch_wait_ms, tick_ms;
    double rate;
    bool throughput, floor, latency;
    int promise_threads, avail_threads; /* --readers P,A: client threads beside the stream */
} opts;

typedef struct service {
    omo_pg_local *pg;
    omo_kafka_mock *mock;
    PGconn *conn; /* the bench's own, for progress */
    pid_t pid;
    int http_port;
    char dir[PATH_MAX], conf[PATH_MAX + 16], log[PATH_MAX + 16];
} service;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* GET path from the service's HTTP listener into buf; returns the body or NULL. */
static char *http_get(int port, const char *path, char *buf, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    size_t used = 0;
    if (write(fd, req, (size_t)n) == n) {
        ssize_t r;
        while (used + 1 < len && (r = read(fd, buf + used, len - 1 - used)) > 0)
            used += (size_t)r;
    }
    close(fd);
    buf[used] = 0;
    char *body = strstr(buf, "\r\n\r\n");
    return body ? body + 4 : NULL;
}

/* A metric's value in a Prometheus text body, or NAN. */
static double metric(const char *body, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = body; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return NAN;
}

static int64_t pg_int(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int64_t v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

static void pg_show(PGconn *conn, const char *name, char *out, size_t len)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SHOW %s", name);
    PGresult *res = PQexec(conn, sql);
    snprintf(out, len, "%s",
             PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 ? PQgetvalue(res, 0, 0)
                                                                           : "?");
    PQclear(res);
}

static void service_stop(service *s)
{
    if (s->pid > 0) {
        int rc = reap(s->pid, SIGTERM, 30);
        if (rc != 0)
            fprintf(stderr, "streambench: omo run exited with %d (see %s)\n", rc, s->log);
        s->pid = 0;
    }
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
    omo_kafka_mock_stop(s->mock);
    s->mock = NULL;
    omo_pg_local_stop(s->pg);
    s->pg = NULL;
}

/* A private durable PostgreSQL, a mock cluster, omo.yaml, `omo db migrate`, `omo run`. */
static bool service_start(service *s, const opts *o, const char *name, const day *d)
{
    (void)d;
    memset(s, 0, sizeof *s);
    char err[512] = "", path[PATH_MAX + 64];
    snprintf(s->dir, sizeof s->dir, "%s/%s", o->out, name);
    mkdir(s->dir, 0755);
    snprintf(s->log, sizeof s->log, "%s/omo.log", s->dir);
    unlink(s->log);
    /* the server first: it forks, and is better forked before librdkafka's threads exist */
    s->pg = omo_pg_local_start(NULL, true, err, sizeof err);
    if (!s->pg) {
        fprintf(stderr, "streambench: PostgreSQL: %s\n", err);
        return false;
    }
    s->conn = PQconnectdb(omo_pg_local_dsn(s->pg));
    if (PQstatus(s->conn) != CONNECTION_OK) {
        fprintf(stderr, "streambench: PostgreSQL: %s", PQerrorMessage(s->conn));
        return false;
    }
    s->mock = omo_kafka_mock_start(3, o->partitions, err, sizeof err);
    if (!s->mock) {
        fprintf(stderr, "streambench: mock cluster: %s\n", err);
        return false;
    }
    s->http_port = free_port();
    char net[PATH_MAX], rules[PATH_MAX];
    snprintf(path, sizeof path, "%s/network.yaml", o->day_dir);
    if (!realpath(path, net))
        return false;
    snprintf(path, sizeof path, "%s/routing.yaml", o->day_dir);
    if (!realpath(path, rules))
        return false;
    snprintf(s->conf, sizeof s->conf, "%s/omo.yaml", s->dir);
    FILE *f = fopen(s->conf, "w");
    if (!f)
        return false;
    fprintf(f,
            "# Written by streambench.\n"
            "kafka:\n"
            "  brokers: \"%s\"\n"
            "  group: streambench-%s\n"
            "  properties:\n"
            "    # the mock cluster holds an empty fetch for the whole wait\n"
            "    fetch.wait.max.ms: \"%d\"\n"
            "postgres:\n  dsn: \"%s\"\n"
            "network: \"%s\"\nrouting: \"%s\"\n"
            "http:\n  listen: 127.0.0.1:%d\n  tokens:\n    - {token: " BENCH_TOKEN ", role: ops}\n",
            omo_kafka_mock_bootstraps(s->mock), name, o->fetch_wait_ms, omo_pg_local_dsn(s->pg),
            net, rules, s->http_port);
    if (fclose(f))
        return false;
    char *migrate[] = {(char *)o->omo, "db", "migrate", "--config", s->conf, NULL};
    pid_t pid = spawn(migrate, s->log, NULL);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fprintf(stderr, "streambench: omo db migrate failed (see %s)\n", s->log);
        return false;
    }
    char *run[] = {(char *)o->omo, "run", "--config", s->conf, NULL};
    s->pid = spawn(run, s->log, NULL);
    if (s->pid < 0) {
        fprintf(stderr, "streambench: cannot start %s\n", o->omo);
        return false;
    }
    return true;
}

static int64_t service_applied(service *s)
{
    return pg_int(s->conn, "SELECT coalesce(max(seq), 0) FROM applied_events");
}

/* Produces the opening stock, never more than OPENING_AHEAD records ahead of the service, and
 * waits until the service has applied all of it. */
static bool service_opening(service *s, feeder *f, const day *d)
{
    double t0 = now_s(), progress_at = t0;
    int64_t applied = 0, last = -1;
    size_t sent = 0;
    while (applied < (int64_t)d->opening) {
        if (stop_requested || !alive(s->pid)) {
            fprintf(stderr, "streambench: omo run stopped during the opening (see %s)\n", s->log);
            return false;
        }
        while (sent < d->opening && (int64_t)sent - applied < OPENING_AHEAD) {
            size_t end = sent + OPENING_CHUNK < d->opening ? sent + OPENING_CHUNK : d->opening;
            for (; sent < end; sent++)
                if (!feeder_send(f, d, sent))
                    return false;
            rd_kafka_poll(f->rk, 0);
        }
        rd_kafka_poll(f->rk, 20);
        applied = service_applied(s);
        if (applied < 0) {
            fprintf(stderr, "streambench: PostgreSQL: %s", PQerrorMessage(s->conn));
            return false;
        }
        if (applied != last) {
            last = applied;
            progress_at = now_s();
        } else if (now_s() - progress_at > STALL_S) {
            fprintf(stderr, "streambench: the service applied nothing for %.0f s (see %s)\n",
                    STALL_S, s->log);
            return false;
        }
    }
    rd_kafka_flush(f->rk, 10000);
    double secs = now_s() - t0;
    fprintf(stderr, "[streambench] opening: %zu snapshots applied in %.1f s (%.0f events/s)\n",
            d->opening, secs, (double)d->opening / secs);
    return f->failed == 0;
}

/* Waits until the tracker has seen every order (or nothing comes for STALL_S, or the process
 * behind it died). */
/* Waits until the tracker has seen every order, or, with a service, until the service has
 * applied every event and nothing more has come for QUIET_S (orders it refused, e.g. gen's
 * --bad lines, never get an allocation). Fails when nothing comes for STALL_S or the process
 * behind the output died. */
static bool wait_all(tracker *t, const day *d, pid_t pid, const char *what, service *s)
{
    size_t last = 0;
    double progress_at = now_s(), checked = 0;
    bool applied_all = false;
    while (t->nseen < d->norders) {
        if (stop_requested)
            return false;
        if (pid > 0 && !alive(pid)) {
            fprintf(stderr, "streambench: %s stopped\n", what);
            return false;
        }
        size_t n = t->nseen;
        double now = now_s();
        if (n != last) {
            last = n;
            progress_at = now;
        } else if (now - progress_at > STALL_S) {
            fprintf(stderr, "streambench: %s: %zu of %zu orders came out; nothing for %.0f s\n",
                    what, n, d->norders, STALL_S);
            return false;
        }
        if (s && !applied_all && now - checked > 0.1) {
            checked = now;
            applied_all = service_applied(s) >= (int64_t)d->n;
        }
        if (applied_all && now - progress_at > QUIET_S) {
            fprintf(stderr, "[streambench] %zu orders got no allocation (see %s)\n", d->norders - n,
                    s->log);
            return true;
        }
        sleep_s(0.002);
    }
    return true;
}

static double last_seen(const tracker *t, const day *d)
{
    double m = 0;
    for (size_t i = 0; i < d->norders; i++)
        if (t->seen[i] > m)
            m = t->seen[i];
    return m;
}

/* Produces the day after the opening as fast as possible. Returns the start time, or 0. */
static double blast(feeder *f, const day *d)
{
    double t0 = now_s();
    for (size_t i = d->opening; i < d->n; i++) {
        if (!feeder_send(f, d, i))
            return 0;
        if ((i & 1023) == 0)
            rd_kafka_poll(f->rk, 0);
    }
    return t0;
}

/* PostgreSQL's own counters, for where the commit time goes. */
typedef struct pg_stats {
    double wal_bytes, wal_fpi, wal_buffers_full, wal_write, wal_sync, checkpoints, commits;
} pg_stats;

static bool pg_stats_get(PGconn *conn, pg_stats *st)
{
    PGresult *res =
        PQexec(conn, "SELECT w.wal_bytes, w.wal_fpi, w.wal_buffers_full, w.wal_write, w.wal_sync, "
                     "b.checkpoints_timed + b.checkpoints_req, d.xact_commit "
                     "FROM pg_stat_wal w, pg_stat_bgwriter b, pg_stat_database d "
                     "WHERE d.datname = current_database()");
    bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok) {
        double *v[] = {&st->wal_bytes, &st->wal_fpi,     &st->wal_buffers_full, &st->wal_write,
                       &st->wal_sync,  &st->checkpoints, &st->commits};
        for (int i = 0; i < 7; i++)
            *v[i] = strtod(PQgetvalue(res, 0, i), NULL);
    }
    PQclear(res);
    return ok;
}

typedef struct result {
    bool ok;
    pg_stats pg; /* during the measured part */
    double secs, orders_s, events_s, msgs_s;
    double p50, p99, pmax, rate;
    bool floor_ok; /* the relay's latency at the same rate */
    double floor_p50, floor_p99, floor_max;
    size_t batches, orders; /* orders: those that got an allocation */
    double mean_batch;
} result;

static pid_t perf_start(const char *out)
{
    /* Flat profile of the whole machine: omo, PostgreSQL and the cluster share its cores. A
     * Release build has no frame pointers, so call chains would be guesswork. */
    char *argv[] = {"/usr/bin/perf", "record",  "-a", "-F", "499", "-o",
                    (char *)out,     "--quiet", NULL};
    char log[PATH_MAX + 8];
    snprintf(log, sizeof log, "%s.log", out);
    return spawn(argv, log, NULL);
}

static result phase_throughput(const opts *o, const day *d, service *s)
{
    result r = {0};
    feeder f = {0};
    tracker t = {0};
    pid_t perf = 0;
    char buf[1 << 16];
    fprintf(stderr, "[streambench] throughput: starting PostgreSQL, the cluster and omo run\n");
    if (!service_start(s, o, "throughput", d))
        goto done;
    const char *bs = omo_kafka_mock_bootstraps(s->mock);
    if (!feeder_open(&f, bs, "omo.orders", "omo.stock", "5") ||
        !tracker_start(&t, d, bs, "omo.allocations", o->partitions, o->fetch_wait_ms))
        goto done;
    char fs[32], sc[32], ws[32];
    pg_show(s->conn, "fsync", fs, sizeof fs);
    pg_show(s->conn, "synchronous_commit", sc, sizeof sc);
    pg_show(s->conn, "wal_sync_method", ws, sizeof ws);
    fprintf(stderr, "[streambench] PostgreSQL: fsync=%s synchronous_commit=%s wal_sync_method=%s\n",
            fs, sc, ws);
    if (strcmp(fs, "on") || strcmp(sc, "on")) {
        fprintf(stderr, "streambench: PostgreSQL is not durable\n");
        goto done;
    }
    if (!service_opening(s, &f, d))
        goto done;
    char *body = http_get(s->http_port, "/metrics", buf, sizeof buf);
    double batches0 = body ? metric(body, "omo_batch_size_count") : NAN;
    double events0 = body ? metric(body, "omo_batch_size_sum") : NAN;
    /* a backend publishes its statistics at most once a second: let the opening's settle */
    sleep_s(1.2);
    PQclear(PQexec(s->conn, "SELECT pg_stat_clear_snapshot()"));
    pg_stats pg0 = {0}, pg1 = {0};
    pg_stats_get(s->conn, &pg0);
    if (o->perf) {
        perf = perf_start(o->perf);
        sleep_s(0.5); /* perf record takes a moment to attach */
        printf("perf: omo pid %d\n", (int)s->pid);
        PGresult *res = PQexec(s->conn, "SELECT string_agg(pid::text, ',') FROM pg_stat_activity "
                                        "WHERE backend_type = 'client backend' AND "
                                        "pid <> pg_backend_pid()");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            printf("perf: postgres pids %s\n", PQgetvalue(res, 0, 0));
        PQclear(res);
        fflush(stdout);
    }
    fprintf(stderr, "[streambench] throughput: producing %zu events as fast as possible\n",
            d->n - d->opening);
    double t0 = blast(&f, d);
    if (!t0 || !wait_all(&t, d, s->pid, "omo run", s))
        goto done;
    double t1 = last_seen(&t, d);
    if (perf > 0)
        reap(perf, SIGINT, 60);
    perf = 0;
    r.secs = t1 - t0;
    r.orders = t.nseen;
    r.orders_s = (double)r.orders / r.secs;
    r.events_s = (double)(d->n - d->opening) / r.secs;
    body = http_get(s->http_port, "/metrics", buf, sizeof buf);
    if (body) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/metrics.txt", s->dir);
        FILE *mf = fopen(path, "w");
        if (mf) {
            fputs(body, mf);
            fclose(mf);
        }
        double batches = metric(body, "omo_batch_size_count") - batches0;
        r.batches = (size_t)batches;
        r.mean_batch = (metric(body, "omo_batch_size_sum") - events0) / batches;
    }
    sleep_s(1.0);
    PQclear(PQexec(s->conn, "SELECT pg_stat_clear_snapshot()"));
    if (pg_stats_get(s->conn, &pg1))
        r.pg = (pg_stats){pg1.wal_bytes - pg0.wal_bytes,
                          pg1.wal_fpi - pg0.wal_fpi,
                          pg1.wal_buffers_full - pg0.wal_buffers_full,
                          pg1.wal_write - pg0.wal_write,
                          pg1.wal_sync - pg0.wal_sync,
                          pg1.checkpoints - pg0.checkpoints,
                          pg1.commits - pg0.commits};
    r.ok = f.failed == 0;
done:
    if (perf > 0)
        reap(perf, SIGINT, 60);
    tracker_stop(&t);
    feeder_close(&f);
    return r;
}

/* Creates the floor's topics on the service's cluster: before any client names them, or the
 * mock creates them with its default partition count. */
static bool floor_topics(const opts *o, service *s)
{
    static const char *const topics[] = {"floor.orders", "floor.stock", "floor.out"};
    for (int i = 0; i < 3; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(omo_kafka_mock_cluster(s->mock),
                                                           topics[i], o->partitions, 3);
        if (e) {
            fprintf(stderr, "streambench: topic %s: %s\n", topics[i], rd_kafka_err2str(e));
            return false;
        }
    }
    return true;
}

/* Starts the relay on the floor's topics; returns once it holds every input partition. */
static bool relay_start(const opts *o, service *s, const char *self, pid_t *relay, FILE **in)
{
    char log[PATH_MAX + 16], wait[16], parts[16], line[64] = "";
    snprintf(log, sizeof log, "%s/relay.log", s->dir);
    snprintf(wait, sizeof wait, "%d", o->fetch_wait_ms);
    snprintf(parts, sizeof parts, "%d", 2 * o->partitions);
    char *argv[] = {(char *)self,
                    "relay",
                    (char *)omo_kafka_mock_bootstraps(s->mock),
                    "streambench-floor",
                    "floor.orders",
                    "floor.stock",
                    "floor.out",
                    wait,
                    parts,
                    NULL};
    int fd = -1;
    *relay = spawn(argv, log, &fd);
    *in = *relay > 0 ? fdopen(fd, "r") : NULL;
    if (!*in || !fgets(line, sizeof line, *in) || strncmp(line, "ready", 5)) {
        fprintf(stderr, "streambench: the relay did not start (see %s)\n", log);
        return false;
    }
    return true;
}

/* Sends a few messages through the relay and waits until they come out, so that no client's
 * start-up (metadata, producer id, first offsets) lands in a measurement: the service's clients
 * are warm by the end of the opening. */
static bool relay_warm(feeder *f, tracker *t)
{
    enum { WARM = 64 };
    for (int i = 0; i < 2 * WARM; i++) {
        char key[32];
        snprintf(key, sizeof key, "warm-up-%d", i);
        if (rd_kafka_producev(
                f->rk, RD_KAFKA_V_RKT(f->rkt[i % 2]), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE("{}", 2), RD_KAFKA_V_END))
            return false;
    }
    rd_kafka_flush(f->rk, 10000);
    double until = now_s() + 30;
    while (t->msgs < 2 * WARM && now_s() < until)
        sleep_s(0.01);
    if (t->msgs < 2 * WARM) {
        fprintf(stderr, "streambench: the relay passed %zu of %d warm-up messages\n",
                (size_t)t->msgs, 2 * WARM);
        return false;
    }
    sleep_s(0.2);
    t->msgs = 0;
    return true;
}

static void relay_stop(pid_t relay, FILE *in)
{
    if (relay > 0)
        reap(relay, SIGTERM, 10);
    if (in)
        fclose(in);
}

static result phase_floor(const opts *o, const day *d, service *s, const char *self)
{
    result r = {0};
    feeder f = {0};
    tracker t = {0};
    pid_t relay = 0;
    FILE *in = NULL;
    const char *bs = omo_kafka_mock_bootstraps(s->mock);
    fprintf(stderr, "[streambench] floor: relay process on the same cluster\n");
    if (!floor_topics(o, s) || !feeder_open(&f, bs, "floor.orders", "floor.stock", "5") ||
        !tracker_start(&t, d, bs, "floor.out", o->partitions, o->fetch_wait_ms) ||
        !relay_start(o, s, self, &relay, &in) || !relay_warm(&f, &t))
        goto done;
    double t0 = blast(&f, d);
    if (!t0 || !wait_all(&t, d, relay, "the relay", NULL))
        goto done;
    double t1 = last_seen(&t, d);
    while (t.msgs < d->n - d->opening && now_s() - t1 < 10)
        sleep_s(0.01);
    r.secs = t1 - t0;
    r.orders_s = (double)d->norders / r.secs;
    r.msgs_s = (double)t.msgs / (t.last - t0);
    r.ok = f.failed == 0;
done:
    relay_stop(relay, in);
    tracker_stop(&t);
    feeder_close(&f);
    return r;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *v, size_t n, double p)
{
    if (!n)
        return NAN;
    size_t i = (size_t)ceil(p * (double)n);
    return v[i ? i - 1 : 0];
}

/* Produces the day after the opening at orders_s orders per second, in ticks of tick_ms, in
 * file order; sent[order] is when each order was handed to the producer. Returns false on a
 * failure or a stop. */
static bool paced(feeder *f, const day *d, double orders_s, int tick_ms, double *sent)
{
    size_t nday = d->n - d->opening;
    double events_s = orders_s * (double)nday / (double)d->norders;
    double t0 = now_s();
    for (size_t k = 0; k < nday;) {
        if (stop_requested)
            return false;
        size_t due = (size_t)((now_s() - t0) * events_s) + 1;
        if (due > nday)
            due = nday;
        for (; k < due; k++) {
            size_t i = d->opening + k;
            if (d->order[i] >= 0)
                sent[d->order[i]] = now_s();
            if (!feeder_send(f, d, i))
                return false;
        }
        rd_kafka_poll(f->rk, 0);
        sleep_s(t0 + (double)(k + 1) / events_s + tick_ms / 1000.0 - now_s());
    }
    return true;
}

/* p50, p99 and max of the orders that came out, into r; every latency into path. */
static bool latencies(const tracker *t, const day *d, const double *sent, const char *path,
                      double *p50, double *p99, double *pmax, size_t *n)
{
    double *lat = omo_xmalloc(d->norders * sizeof *lat);
    *n = 0;
    for (size_t i = 0; i < d->norders; i++)
        if (t->seen[i] > 0)
            lat[(*n)++] = (t->seen[i] - sent[i]) * 1000.0;
    FILE *lf = fopen(path, "w");
    if (lf) {
        for (size_t i = 0; i < *n; i++)
            fprintf(lf, "%.3f\n", lat[i]);
        fclose(lf);
    }
    if (*n) {
        qsort(lat, *n, sizeof *lat, cmp_double);
        *p50 = percentile(lat, *n, 0.50);
        *p99 = percentile(lat, *n, 0.99);
        *pmax = lat[*n - 1];
    }
    free(lat);
    return *n > 0;
}

static result phase_latency(const opts *o, const day *d, service *s, double orders_s,
                            const char *self, int readers, load_result *promises,
                            load_result *reads)
{
    result r = {.rate = orders_s};
    loader *ls = omo_xcalloc((size_t)readers + 1, sizeof *ls);
    atomic_bool stop_readers = false;
    size_t *baskets = omo_xmalloc((d->n + 1) * sizeof *baskets), nbaskets = 0;
    for (size_t i = 0; i < d->n; i++) {
        int nl = 0;
        for (const char *p = d->lines[i]; (p = strstr(p, "\"line_id\"")); p++)
            nl++;
        if (d->order[i] >= 0 && nl >= 1 && nl <= 4)
            baskets[nbaskets++] = i;
    }
    int started = 0;
    feeder f = {0};
    tracker t = {0};
    pid_t relay = 0;
    FILE *in = NULL;
    double *sent = omo_xcalloc(d->norders, sizeof *sent);
    char path[PATH_MAX + 32];
    fprintf(stderr, "[streambench] latency: a new database, cluster and omo run\n");
    if (!service_start(s, o, "latency", d))
        goto done;
    const char *bs = omo_kafka_mock_bootstraps(s->mock);
    if (!feeder_open(&f, bs, "omo.orders", "omo.stock", "5") ||
        !tracker_start(&t, d, bs, "omo.allocations", o->partitions, o->fetch_wait_ms))
        goto done;
    if (!service_opening(s, &f, d))
        goto done;
    /* linger 0 for the day: every message goes out at once, so that its stamp is its send time */
    feeder_close(&f);
    if (!feeder_open(&f, bs, "omo.orders", "omo.stock", "0"))
        goto done;
    for (; started < readers && nbaskets; started++) {
        loader *l = &ls[started];
        *l = (loader){.port = s->http_port,
                      .promise = started < o->promise_threads,
                      .d = d,
                      .lines = baskets,
                      .nlines = nbaskets,
                      .rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(started + 1),
                      .stop = &stop_readers};
        if (pthread_create(&l->thread, NULL, loader_run, l))
            break;
    }
    fprintf(stderr, "[streambench] latency: producing %zu events paced at %.0f orders/s%s\n",
            d->n - d->opening, orders_s, started ? ", readers on" : "");
    bool streamed = paced(&f, d, orders_s, o->tick_ms, sent);
    atomic_store(&stop_readers, true);
    for (int i = 0; i < started; i++)
        pthread_join(ls[i].thread, NULL);
    if (started && promises && reads) {
        *promises =
            load_summary(ls, 0, o->promise_threads < started ? o->promise_threads : started);
        *reads =
            load_summary(ls, o->promise_threads < started ? o->promise_threads : started, started);
    }
    if (!streamed || !wait_all(&t, d, s->pid, "omo run", s))
        goto done;
    snprintf(path, sizeof path, "%s/latency_ms.txt", s->dir);
    if (!latencies(&t, d, sent, path, &r.p50, &r.p99, &r.pmax, &r.orders))
        goto done;
    r.ok = f.failed == 0;
    if (!o->floor)
        goto done;

    /* The same, through the relay on fresh topics of the same cluster: what the cluster and the
     * clients alone take. */
    int rc = reap(s->pid, SIGTERM, 30);
    s->pid = 0;
    if (rc != 0)
        fprintf(stderr, "streambench: omo run exited with %d (see %s)\n", rc, s->log);
    tracker_stop(&t);
    feeder_close(&f);
    memset(sent, 0, d->norders * sizeof *sent);
    fprintf(stderr, "[streambench] latency floor: the relay at %.0f orders/s\n", orders_s);
    if (!floor_topics(o, s) || !feeder_open(&f, bs, "floor.orders", "floor.stock", "0") ||
        !tracker_start(&t, d, bs, "floor.out", o->partitions, o->fetch_wait_ms) ||
        !relay_start(o, s, self, &relay, &in) || !relay_warm(&f, &t) ||
        !paced(&f, d, orders_s, o->tick_ms, sent) || !wait_all(&t, d, relay, "the relay", NULL))
        goto done;
    snprintf(path, sizeof path, "%s/floor_latency_ms.txt", s->dir);
    r.floor_ok =
        latencies(&t, d, sent, path, &r.floor_p50, &r.floor_p99, &r.floor_max, &(size_t){0});
done:
    atomic_store(&stop_readers, true);
    relay_stop(relay, in);
    tracker_stop(&t);
    feeder_close(&f);
    free(sent);
    for (int i = 0; i <= readers; i++)
        free(ls[i].lat);
    free(ls);
    free(baskets);
    return r;
}

/* ---- the floor's relay process ------------------------------------------------------------ */

static void relay_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk, (void)opaque;
    if (rkm->err)
        fprintf(stderr, "relay: delivery failed: %s\n", rd_kafka_err2str(rkm->err));
}

/* Consumes two topics in a group and produces every message again, key and value, to a third:
 * omo's consumer and producer settings, omo's poll loop, and nothing else. Prints "ready" once
 * it holds all `partitions` input partitions. */
static int relay_main(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: streambench relay BOOTSTRAPS GROUP IN IN OUT FETCH_WAIT_MS "
                        "PARTITIONS\n");
        return 2;
    }
    const char *bs = argv[1], *group = argv[2], *out = argv[5], *wait = argv[6];
    int want = atoi(argv[7]);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    char why[512];
    rd_kafka_conf_t *cc = rd_kafka_conf_new(), *pc = rd_kafka_conf_new();
    static const char *const consumer_settings[][2] = {
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"session.timeout.ms", "6000"},
        {"isolation.level", "read_committed"},
        {"log_level", "4"},
    };
    static const char *const producer_settings[][2] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"batch.num.messages", "100000"},
        {"queue.buffering.max.messages", "1000000"},
        {"log_level", "4"},
    };
    bool ok = conf_set(cc, "bootstrap.servers", bs) && conf_set(cc, "group.id", group) &&
              conf_set(cc, "fetch.wait.max.ms", wait) && conf_set(pc, "bootstrap.servers", bs);
    for (size_t i = 0; ok && i < sizeof consumer_settings / sizeof consumer_settings[0]; i++)
        ok = conf_set(cc, consumer_settings[i][0], consumer_settings[i][1]);
    for (size_t i = 0; ok && i < sizeof producer_settings / sizeof producer_settings[0]; i++)
        ok = conf_set(pc, producer_settings[i][0], producer_settings[i][1]);
    if (!ok)
        return 2;
    rd_kafka_conf_set_dr_msg_cb(pc, relay_delivery);
    rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, why, sizeof why);
    rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, why, sizeof why);
    if (!consumer || !producer) {
        fprintf(stderr, "relay: %s\n", why);
        return 1;
    }
    rd_kafka_poll_set_consumer(consumer);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(producer, out, NULL);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(subs, argv[3], RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(subs, argv[4], RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    bool ready = false;
    rd_kafka_message_t *batch[RELAY_MAX_BATCH];
    uint64_t relayed = 0;
    while (!stop_requested) {
        size_t n = 0;
        int wait_ms = 20;
        while (n < RELAY_MAX_BATCH) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, wait_ms);
            if (!m)
                break;
            wait_ms = 0;
            if (m->err) {
                rd_kafka_message_destroy(m);
                continue;
            }
            batch[n++] = m;
        }
        for (size_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            while (rd_kafka_producev(
                       producer, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                       RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
                       RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(producer, 10);
            rd_kafka_message_destroy(m);
            relayed++;
        }
        rd_kafka_poll(producer, 0);
        if (!ready) {
            rd_kafka_topic_partition_list_t *as = NULL;
            if (!rd_kafka_assignment(consumer, &as) && as->cnt >= want) {
                ready = true;
                printf("ready\n");
                fflush(stdout);
            }
            if (as)
                rd_kafka_topic_partition_list_destroy(as);
        }
    }
    rd_kafka_flush(producer, 10000);
    fprintf(stderr, "relay: %llu messages relayed\n", (unsigned long long)relayed);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_destroy(producer);
    return 0;
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage(void)
{
    fputs("usage: streambench --day DIR [--omo PATH] [--out DIR] [--partitions N]\n"
          "                   [--fetch-wait-ms N] [--rate ORDERS_PER_S] [--perf FILE]\n"
          "                   [--no-floor] [--no-latency] [--latency-only --rate R]\n"
          "                   [--readers PROMISE_THREADS,AVAILABILITY_THREADS]\n",
          stderr);
}

static const char *mark(bool ok)
{
    return ok ? "PASS" : "MISS";
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "relay"))
        return relay_main(argc - 1, argv + 1);
    static const struct option longopts[] = {{"day", required_argument, 0, 'd'},
                                             {"omo", required_argument, 0, 'o'},
                                             {"out", required_argument, 0, 'w'},
                                             {"partitions", required_argument, 0, 'p'},
                                             {"fetch-wait-ms", required_argument, 0, 'f'},
                                             {"rate", required_argument, 0, 'r'},
                                             {"perf", required_argument, 0, 'P'},
                                             {"no-floor", no_argument, 0, 'F'},
                                             {"no-latency", no_argument, 0, 'L'},
                                             {"latency-only", no_argument, 0, 'T'},
                                             {"tick-ms", required_argument, 0, 't'},
                                             {"readers", required_argument, 0, 'R'},
                                             {0, 0, 0, 0}};
    opts o = {.out = "bench/out/stream",
              .partitions = 8,
              .fetch_wait_ms = 10,
              .tick_ms = 10,
              .throughput = true,
              .floor = true,
              .latency = true};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.day_dir = optarg;
            break;
        case 'o':
            o.omo = optarg;
            break;
        case 'w':
            o.out = optarg;
            break;
        case 'p':
            o.partitions = atoi(optarg);
            break;
        case 'f':
            o.fetch_wait_ms = atoi(optarg);
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case 'P':
            o.perf = optarg;
            break;
        case 'F':
            o.floor = false;
            break;
        case 'L':
            o.latency = false;
            break;
        case 'T':
            o.throughput = false;
            break;
        case 't':
            o.tick_ms = atoi(optarg);
            break;
        case 'R':
            if (sscanf(optarg, "%d,%d", &o.promise_threads, &o.avail_threads) != 2 ||
                o.promise_threads < 0 || o.avail_threads < 0) {
                usage();
                return 2;
            }
            break;
        default:
            usage();
            return 2;
        }
    }
    if (!o.day_dir || optind != argc || o.partitions < 1 || o.fetch_wait_ms < 0 || o.tick_ms < 0 ||
        (!o.throughput && o.rate <= 0)) {
        usage();
        return 2;
    }
    char self[PATH_MAX], omo_path[PATH_MAX + 8];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0)
        return 1;
    self[sl] = 0;
    if (!o.omo) {
        snprintf(omo_path, sizeof omo_path, "%s", self);
        char *slash = strrchr(omo_path, '/');
        snprintf(slash + 1, sizeof omo_path - (size_t)(slash + 1 - omo_path), "omo");
        o.omo = omo_path;
    }
    if (access(o.omo, X_OK)) {
        fprintf(stderr, "streambench: %s: %s\n", o.omo, strerror(errno));
        return 1;
    }
    mkdir(o.out, 0755);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    day d;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/events.jsonl", o.day_dir);
    if (!day_load(path, &d))
        return 1;
    size_t nday = d.n - d.opening;
    fprintf(stderr,
            "[streambench] day: %zu opening snapshots, then %zu events: %zu orders, %zu stock "
            "events, %zu cancellations\n",
            d.opening, nday, d.norders, d.nstock, d.ncancel);

    int rc = 1;
    service s = {0};
    result a = {0}, fl = {0}, b = {0};
    if (o.throughput) {
        a = phase_throughput(&o, &d, &s);
        if (s.pid > 0) {
            int status = reap(s.pid, SIGTERM, 30);
            if (status != 0)
                fprintf(stderr, "streambench: omo run exited with %d (see %s)\n", status, s.log);
            s.pid = 0;
        }
        if (a.ok && o.floor && s.mock && !stop_requested)
            fl = phase_floor(&o, &d, &s, self);
        service_stop(&s);
    }
    double rate = o.rate > 0 ? o.rate : a.orders_s / 2;
    if ((a.ok || !o.throughput) && o.latency && !stop_requested) {
        b = phase_latency(&o, &d, &s, rate, self, 0, NULL, NULL);
        service_stop(&s);
    }
    int readers = o.promise_threads + o.avail_threads;
    result withr = {0};
    load_result promises = {0}, reads = {0};
    if (readers && b.ok && !stop_requested) {
        opts with = o;
        with.floor = false;
        withr = phase_latency(&with, &d, &s, rate, self, readers, &promises, &reads);
        service_stop(&s);
    }

    printf("\nstreambench: omo run end to end (mock Kafka 3 brokers x %d partitions, "
           "PostgreSQL fsync=on synchronous_commit=on)\n",
           o.partitions);
    printf("  day          %zu events after %zu opening snapshots: %zu orders, %zu stock events, "
           "%zu cancellations\n",
           nday, d.opening, d.norders, d.nstock, d.ncancel);
    if (o.throughput && !a.ok) {
        printf("  throughput   FAILED (see %s/throughput/omo.log)\n", o.out);
        goto out;
    }
    if (o.throughput)
        printf("  omo          %.2f s  %.0f orders/s  %.0f events/s  (%zu batches, mean %.0f "
               "events)\n",
               a.secs, a.orders_s, a.events_s, a.batches, a.mean_batch);
    if (o.throughput && a.batches)
        printf("  postgres     per batch: %.2f MB WAL (%.0f full-page images), %.1f WAL writes, "
               "%.1f syncs; wal buffers full %.0f times, %.0f checkpoints, %.0f commits in all\n",
               a.pg.wal_bytes / 1e6 / (double)a.batches, a.pg.wal_fpi / (double)a.batches,
               a.pg.wal_write / (double)a.batches, a.pg.wal_sync / (double)a.batches,
               a.pg.wal_buffers_full, a.pg.checkpoints, a.pg.commits);
    if (o.throughput && o.floor) {
        if (fl.ok)
            printf("  floor        %.2f s  %.0f orders/s  %.0f msgs/s\n"
                   "  ratio        omo/floor time %.2f (omo runs at %.1f%% of the floor's rate)\n",
                   fl.secs, fl.orders_s, fl.msgs_s, a.secs / fl.secs,
                   100.0 * a.orders_s / fl.orders_s);
        else
            printf("  floor        FAILED (see %s/throughput/relay.log)\n", o.out);
    }
    if (o.latency) {
        if (b.ok)
            printf("  latency      at %.0f orders/s: p50 %.1f ms  p99 %.1f ms  max %.1f ms "
                   "(%zu orders)\n",
                   b.rate, b.p50, b.p99, b.pmax, b.orders);
        else
            printf("  latency      FAILED (see %s/latency/omo.log)\n", o.out);
        if (b.ok && o.floor && b.floor_ok)
            printf("  floor        at %.0f orders/s: p50 %.1f ms  p99 %.1f ms  max %.1f ms\n",
                   b.rate, b.floor_p50, b.floor_p99, b.floor_max);
        else if (b.ok && o.floor)
            printf("  floor        FAILED (see %s/latency/relay.log)\n", o.out);
    }
    if (o.throughput && a.orders < d.norders)
        printf("  refused      %zu orders got no allocation (dead letters)\n",
               d.norders - a.orders);
    if (readers) {
        if (!withr.ok) {
            printf("  readers      FAILED (see %s/latency/omo.log)\n", o.out);
        } else {
            printf("  readers      %d POST /promise and %d GET /availability client threads "
                   "beside the stream at %.0f orders/s:\n",
                   o.promise_threads, o.avail_threads, withr.rate);
            printf("  promise      %.0f requests/s  p50 %.2f ms  p99 %.2f ms  (%zu, %llu "
                   "errors)\n",
                   promises.per_s, promises.p50, promises.p99, promises.n,
                   (unsigned long long)promises.errors);
            printf("  availability %.0f requests/s  p50 %.2f ms  p99 %.2f ms  (%zu, %llu "
                   "errors)\n",
                   reads.per_s, reads.p50, reads.p99, reads.n, (unsigned long long)reads.errors);
            printf("  stream       p99 %.1f ms with readers, %.1f ms without: ratio %.2f  (p50 "
                   "%.1f / %.1f ms)\n",
                   withr.p99, b.p99, withr.p99 / b.p99, withr.p50, b.p50);
            printf("  target       promise >= 10000/s p99 <= 20 ms: %s; availability >= 20000/s "
                   "p99 <= 5 ms: %s; stream p99 within 20%%: %s\n",
                   mark(promises.per_s >= 10000 && promises.p99 <= 20),
                   mark(reads.per_s >= 20000 && reads.p99 <= 5), mark(withr.p99 <= 1.2 * b.p99));
        }
    }
    printf("  target      ");
    if (o.throughput)
        printf(" >= %.0f orders/s: %s;", TARGET_ORDERS_S, mark(a.orders_s >= TARGET_ORDERS_S));
    if (o.latency && b.ok)
        printf(" p99 <= %.0f ms at %s rate: %s", TARGET_P99_MS, o.rate > 0 ? "the given" : "half",
               mark(b.p99 <= TARGET_P99_MS));
    printf("\n");
    rc = (o.throughput && o.floor && !fl.ok) || (o.latency && !b.ok) ||
                 (o.latency && o.floor && !b.floor_ok)
             ? 1
             : 0;
out:
    fflush(stdout);
    day_free(&d);
    return rc;
}
