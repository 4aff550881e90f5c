/* bench/history: days of the national network streamed through `omo run` (a mock Kafka cluster
 * and a private PostgreSQL, from the test harness), with a SIGKILL and a restart before each
 * day. Per day: the time from the process's start to its first decision, the view's rebuild
 * time (its log), the database's size, the service's RSS, explain latency (10 calls), and the
 * stream's decision latency p99 (the service's histogram, so the figure is its bucket's bound)
 * over a paced slice of the day without ops calls and over one as long at whose start 10
 * explain and 2 rules diff calls are made at once.
 *
 *   history --omo PATH [--days N] [--stores N] [--skus N] [--orders N] [--retain N] */
#include "service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOKEN "ops-history"

static omo_test_service *svc;
static int port;

/* One HTTP/1.1 request; returns the status (0: no answer) and the body in *body (may be NULL). */
static int http(const char *method, const char *path, const char *payload, char **body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    char *req = NULL;
    size_t plen = payload ? strlen(payload) : 0;
    int n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                     "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     method, path, plen, payload ? payload : "");
    for (ssize_t off = 0, w; off < n; off += w)
        if ((w = write(fd, req + off, (size_t)(n - off))) <= 0)
            break;
    free(req);
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    for (ssize_t k; (k = read(fd, buf + got, cap - got - 1)) > 0;)
        if ((got += (size_t)k) + 1024 > cap)
            buf = realloc(buf, cap *= 2);
    close(fd);
    buf[got] = 0;
    int status = got > 12 && !strncmp(buf, "HTTP/1.", 7) ? atoi(buf + 9) : 0;
    if (body)
        *body = buf;
    else
        free(buf);
    return status;
}

static long long sqlv(const char *q)
{
    return omo_test_service_sql_count(svc, q);
}

static bool wait_applied(long long n, int timeout_s)
{
    double until = omo_test_now() + timeout_s;
    while (sqlv("SELECT COALESCE(max(seq), 0) FROM applied_events") < n) {
        if (omo_test_now() > until || !omo_test_service_alive(svc))
            return false;
        omo_test_sleep(0.05);
    }
    return true;
}

/* The decision latency histogram: cumulative counts per bound. */
typedef struct hist {
    double le[16];
    double count[16];
    int n;
} hist;

static hist read_hist(void)
{
    hist h = {0};
    char *body = NULL;
    if (http("GET", "/metrics", NULL, &body) == 200)
        for (char *p = body; (p = strstr(p, "omo_decision_latency_seconds_bucket{le=\"")); p++) {
            p += strlen("omo_decision_latency_seconds_bucket{le=\"");
            if (h.n < 16) {
                h.le[h.n] = strncmp(p, "+Inf", 4) ? atof(p) : 1e9;
                h.count[h.n++] = atof(strchr(p, '}') + 1);
            }
        }
    free(body);
    return h;
}

/* The bound under which 99% of the decisions between a and b fell. */
static double p99(const hist *a, const hist *b)
{
    if (!b->n)
        return -1;
    double total = b->count[b->n - 1] - (a->n ? a->count[a->n - 1] : 0);
    for (int i = 0; i < b->n; i++)
        if (b->count[i] - (a->n ? a->count[i] : 0) >= 0.99 * total)
            return b->le[i];
    return -1;
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            v = atol(line + 6);
    if (f)
        fclose(f);
    return v;
}

/* The rebuild's seconds as the last start logged them. */
static double rebuild_s(void)
{
    FILE *f = fopen(svc->log, "r");
    char line[512];
    double s = -1;
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "rebuilt the view");
        if (p && (p = strstr(p, ") in ")))
            s = atof(p + 5);
    }
    if (f)
        fclose(f);
    return s;
}

static char *rules_text;
static const char **day_orders;
static size_t nday_orders;

/* One ops call: 2 of the 12 threads ask for a rules diff, the others explain an order. */
static void *ops_thread(void *arg)
{
    long k = (long)arg;
    if (k < 2)
        http("POST", "/rules/diff?format=json", rules_text, NULL);
    else {
        char path[256];
        snprintf(path, sizeof path, "/orders/%s/explain",
                 day_orders[(size_t)k * 7919 % nday_orders]);
        http("GET", path, NULL, NULL);
    }
    return NULL;
}

/* Produces inputs up to `upto` at most 60,000 ahead of what the service applied: the mock
 * cluster keeps only 5 MB per partition, read or not. */
static bool produce(size_t upto)
{
    char err[512];
    while (svc->nproduced < upto) {
        long long applied = sqlv("SELECT COALESCE(max(seq), 0) FROM applied_events");
        size_t next = (size_t)(applied > 0 ? applied : 0) + 60000;
        if (next > upto)
            next = upto;
        if (next <= svc->nproduced) {
            if (!omo_test_service_alive(svc))
                return false;
            omo_test_sleep(0.05);
            continue;
        }
        if (!omo_test_service_produce(svc, next, err, sizeof err)) {
            fprintf(stderr, "[history] %s\n", err);
            return false;
        }
    }
    return true;
}

/* Produces inputs up to `upto` in chunks, paced at about `per_s` inputs a second. */
static bool paced(size_t upto, double per_s)
{
    char err[512];
    while (svc->nproduced < upto) {
        size_t next = svc->nproduced + 100 < upto ? svc->nproduced + 100 : upto;
        double t0 = omo_test_now();
        if (!omo_test_service_produce(svc, next, err, sizeof err))
            return false;
        double left = 100 / per_s - (omo_test_now() - t0);
        if (left > 0)
            omo_test_sleep(left);
    }
    return true;
}

int main(int argc, char **argv)
{
    const char *omo = NULL;
    int days = 14, stores = 1000, skus = 5000, orders = 50000, retain = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--omo"))
            omo = argv[i + 1];
        else if (!strcmp(argv[i], "--days"))
            days = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--stores"))
            stores = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--skus"))
            skus = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--orders"))
            orders = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--retain"))
            retain = atoi(argv[i + 1]);
    }
    if (!omo || days < 1) {
        fputs("usage: history --omo PATH [--days N] [--stores N] [--skus N] [--orders N] "
              "[--retain N]\n",
              stderr);
        return 2;
    }
    port = 20000 + (int)(getpid() % 20000);
    char extra[512];
    snprintf(extra, sizeof extra,
             "state:\n  retain_days: %d\nhttp:\n  listen: 127.0.0.1:%d\n  tokens:\n"
             "    - {token: " TOKEN ", role: ops}\n",
             retain, port);
    omo_test_service_opts opts = {.name = "history",
                                  .omo_binary = omo,
                                  .stores = stores,
                                  .skus = skus,
                                  .orders = orders,
                                  .seed = 7,
                                  .brokers = 1,
                                  .partitions = 4,
                                  .config_extra = extra,
                                  .days = days};
    fprintf(stderr, "[history] generating %d days of %d orders (%d stores, %d SKUs)\n", days,
            orders, stores, skus);
    svc = omo_test_service_setup(&opts);
    if (!svc)
        return 1;
    FILE *rf = fopen(svc->routing, "r");
    rules_text = calloc(1, 1 << 20);
    if (rf) {
        size_t n = fread(rules_text, 1, (1 << 20) - 1, rf);
        rules_text[n] = 0;
        fclose(rf);
    }
    /* Where each day begins: the order inputs' created_at dates. */
    size_t *day_start = calloc((size_t)days + 2, sizeof(size_t));
    int d = -1;
    char date[11] = "";
    for (size_t i = svc->nopening; i < svc->ninputs; i++) {
        const char *p =
            svc->inputs[i].order_id ? strstr(svc->inputs[i].value, "\"created_at\":\"") : NULL;
        if (p && strncmp(p + 14, date, 10)) {
            memcpy(date, p + 14, 10);
            if (d + 1 <= days)
                day_start[++d] = i;
        }
    }
    day_start[0] = 0;
    for (int k = d + 1; k <= days; k++)
        day_start[k] = svc->ninputs;
    day_orders = calloc(svc->ninputs, sizeof(char *));

    char err[2048];
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%4s %10s %10s %9s %8s %11s %11s %11s\n", "day", "restart s", "rebuild s", "db MiB",
           "rss MiB", "explain ms", "p99 ms", "p99 ops ms");
    for (int day = 0; day < days; day++) {
        size_t from = day_start[day], to = day_start[day + 1];
        double restart = -1;
        if (day > 0)
            omo_test_service_stop(svc, SIGKILL, 10000);
        long long before = sqlv("SELECT COALESCE(max(seq), 0) FROM outbox");
        double t0 = omo_test_now();
        if (!omo_test_service_start(svc, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (day == 0) {
            /* The opening stock first; the first decision is then the day's first order's. */
            if (!produce(svc->nopening) || !wait_applied((long long)svc->nopening, 900))
                return 1;
            from = svc->nopening;
        }
        /* The day's first orders wait for it: the time to the first decision. */
        if (!produce(from + (to - from) / 50 + 1))
            return 1;
        while (sqlv("SELECT COALESCE(max(seq), 0) FROM outbox WHERE topic = 2") <= before &&
               omo_test_now() - t0 < 600)
            omo_test_sleep(0.01);
        restart = omo_test_now() - t0;
        /* Most of the day at full speed, then two paced slices for latency. */
        size_t bulk = from + (to - from) * 8 / 10, mid = from + (to - from) * 9 / 10;
        if (!produce(bulk) || !wait_applied((long long)bulk, 900))
            return 1;
        nday_orders = 0;
        for (size_t i = from; i < bulk; i++)
            if (svc->inputs[i].order_id)
                day_orders[nday_orders++] = svc->inputs[i].order_id;
        hist h0 = read_hist();
        paced(mid, 4000);
        wait_applied((long long)mid, 300);
        hist h1 = read_hist();
        pthread_t th[12];
        for (long k = 0; k < 12; k++)
            pthread_create(&th[k], NULL, ops_thread, (void *)k);
        paced(to, 4000);
        wait_applied((long long)to, 300);
        hist h2 = read_hist();
        for (int k = 0; k < 12; k++)
            pthread_join(th[k], NULL);
        double worst = 0;
        for (int k = 0; k < 10; k++) {
            char path[256];
            snprintf(path, sizeof path, "/orders/%s/explain",
                     day_orders[(size_t)rand() % nday_orders]);
            double e0 = omo_test_now();
            int status = http("GET", path, NULL, NULL);
            double e = omo_test_now() - e0;
            if (status != 200)
                fprintf(stderr, "[history] %s: status %d\n", path, status);
            if (e > worst)
                worst = e;
        }
        long long db = sqlv("SELECT pg_database_size(current_database())");
        long rss = rss_kib(omo_test_service_slot_pid(svc, 0));
        printf("%4d %10.2f %10.2f %9.1f %8.1f %11.1f %11.1f %11.1f\n", day + 1, restart,
               rebuild_s(), db / 1048576.0, rss / 1024.0, worst * 1000, p99(&h0, &h1) * 1000,
               p99(&h1, &h2) * 1000);
        fflush(stdout);
    }
    omo_test_service_stop(svc, SIGTERM, 60000);
    omo_test_service_teardown(svc, false); /* keeps the logs */
    return 0;
}
