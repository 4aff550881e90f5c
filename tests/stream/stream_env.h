/* The store-picking component tests' world: `omo run` as a child process, beside a mock Kafka
 * cluster and a private PostgreSQL owned by the test process, loaded with the pick_* fixtures
 * (stock with bins, then nine orders on known stores). Also a tiny HTTP/1.1 client over a
 * socket, SQL probes and readers of the output topics.
 *
 * Header-only (static inline) so that each test program takes what it uses. */
#ifndef OMO_TEST_STREAM_ENV_H
#define OMO_TEST_STREAM_ENV_H

#include "kafka.h"
#include "kafka/mock.h"
#include "postgres/local.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <libpq-fe.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ENV_OPS_TOKEN "ops-3f1c9a"
#define ENV_S1_TOKEN  "store-s1-77ab"
#define ENV_S2_TOKEN  "store-s2-51de"
#define ENV_EVENTS    OMO_SOURCE_DIR "/tests/fixtures/pick_events.jsonl"
#define ENV_NORDERS   9
/* More of omo.yaml's kafka section (a test program may define it before including this). */
#ifndef ENV_KAFKA_EXTRA
#define ENV_KAFKA_EXTRA ""
#endif

typedef struct env {
    char dir[PATH_MAX];
    char config[PATH_MAX + 16], log[PATH_MAX + 16];
    omo_kafka_mock *kafka;
    omo_pg_local *pg;
    PGconn *db;
    int port;
    pid_t pid;
    char **orders, **stock; /* the fixture's lines, by topic */
    char **order_keys, **stock_keys;
    size_t norders, nstock;
    bool outputs_valid; /* env_stop: every output message validated against config/schema */
} env;

static inline double env_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void env_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A port nobody listens on now (the service binds it a moment later). */
static inline int env_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* ---- HTTP ------------------------------------------------------------------------------ */

typedef struct env_resp {
    int status; /* 0: no answer */
    char *body; /* heap, NUL-terminated */
    size_t len;
    char type[128];
} env_resp;

static inline void env_resp_free(env_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* One request with `Connection: close`; token NULL sends no Authorization header. */
static inline env_resp env_http(const env *e, const char *method, const char *path,
                                const char *token, const char *body)
{
    env_resp r = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)e->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        if (fd >= 0)
            close(fd);
        r.body = strdup("");
        return r;
    }
    size_t blen = body ? strlen(body) : 0;
    char auth[300] = "";
    if (token)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    char *req = NULL;
    int n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     method, path, e->port, auth, blen, body ? body : "");
    for (ssize_t off = 0, w; n > 0 && off < n; off += w)
        if ((w = write(fd, req + off, (size_t)(n - off))) <= 0)
            break;
    free(req);
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    for (ssize_t k;; got += (size_t)k) {
        if (got + 1024 > cap)
            buf = realloc(buf, cap *= 2);
        k = read(fd, buf + got, cap - got - 1);
        if (k <= 0)
            break;
    }
    close(fd);
    buf[got] = 0;
    char *hdr_end = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) || !hdr_end) {
        free(buf);
        r.body = strdup("");
        return r;
    }
    r.status = atoi(buf + 9);
    *hdr_end = 0;
    const char *ct = strcasestr(buf, "\r\nContent-Type:");
    if (ct) {
        ct += 15;
        while (*ct == ' ')
            ct++;
        size_t k = strcspn(ct, "\r\n");
        snprintf(r.type, sizeof r.type, "%.*s", (int)k, ct);
    }
    r.len = got - (size_t)(hdr_end + 4 - buf);
    r.body = malloc(r.len + 1);
    memcpy(r.body, hdr_end + 4, r.len);
    r.body[r.len] = 0;
    free(buf);
    return r;
}

/* The answer as JSON (NULL when it is none). */
static inline json_t *env_resp_json(const env_resp *r)
{
    return json_loadb(r->body, r->len, 0, NULL);
}

/* A JSON string member, or "" when absent; valid while j lives. */
static inline const char *env_json_str(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

/* ---- SQL ------------------------------------------------------------------------------- */

/* The first column of the first row as a number; -1 without a row or on error. Parameters are
 * text, NULL-terminated. */
static inline long long env_sql(env *e, const char *query, ...)
{
    const char *params[8];
    int n = 0;
    va_list ap;
    va_start(ap, query);
    for (const char *p; n < 8 && (p = va_arg(ap, const char *));)
        params[n++] = p;
    va_end(ap);
    PGresult *res = PQexecParams(e->db, query, n, NULL, params, NULL, NULL, 0);
    long long v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        v = atoll(PQgetvalue(res, 0, 0));
    else if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "sql: %s: %s", query, PQerrorMessage(e->db));
    PQclear(res);
    return v;
}

static inline long long env_on_hand(env *e, const char *node, const char *sku)
{
    return env_sql(e, "SELECT on_hand FROM stock WHERE node_id = $1 AND sku = $2", node, sku, NULL);
}

static inline long long env_reserved(env *e, const char *node, const char *sku)
{
    return env_sql(e, "SELECT reserved FROM stock WHERE node_id = $1 AND sku = $2", node, sku,
                   NULL);
}

/* Status messages of an order kept in the outbox (topic 3: shipments). */
static inline long long env_outbox_statuses(env *e, const char *order_id)
{
    return env_sql(e,
                   "SELECT count(*) FROM outbox WHERE topic = 3 AND key = convert_to($1, 'UTF8')",
                   order_id, NULL);
}

static inline long long env_revisions(env *e, const char *order_id)
{
    return env_sql(e, "SELECT count(*) FROM order_revisions WHERE order_id = $1", order_id, NULL);
}

/* The latest revision of an order as JSON, or NULL. */
static inline json_t *env_latest_revision(env *e, const char *order_id)
{
    const char *params[1] = {order_id};
    PGresult *res = PQexecParams(e->db,
                                 "SELECT body::text FROM order_revisions WHERE order_id = $1 "
                                 "ORDER BY revision DESC LIMIT 1",
                                 1, NULL, params, NULL, NULL, 0);
    json_t *j = NULL;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        j = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    return j;
}

/* Waits until order_id has at least n revisions. */
static inline bool env_wait_revisions(env *e, const char *order_id, long long n, int timeout_ms)
{
    double until = env_now() + timeout_ms / 1000.0;
    while (env_revisions(e, order_id) < n) {
        if (env_now() > until)
            return false;
        env_sleep_ms(50);
    }
    return true;
}

/* ---- output topics ----------------------------------------------------------------------- */

/* Messages on a topic (every partition, high minus low watermark), or -1. */
static inline long long env_topic_count(env *e, const char *topic)
{
    char why[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", omo_kafka_mock_bootstraps(e->kafka), why,
                          sizeof why) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    long long total = 0;
    for (int32_t p = 0; p < 4 && total >= 0; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000))
            total = -1;
        else
            total += hi - lo;
    }
    rd_kafka_destroy(rk);
    return total;
}

/* How often (shipment_id, status) appears on omo.shipments, and how many status messages there
 * are in all (in *total). */
static inline int env_status_count(env *e, const char *shipment_id, const char *status,
                                   size_t *total)
{
    long long size = env_topic_count(e, "omo.shipments");
    if (total)
        *total = size > 0 ? (size_t)size : 0;
    if (size <= 0)
        return size < 0 ? -1 : 0;
    omo_test_records recs = {0};
    if (!omo_test_kafka_read_all(omo_kafka_mock_bootstraps(e->kafka), "omo.shipments", &recs))
        return -1;
    int n = 0;
    for (size_t i = 0; i < recs.n; i++) {
        json_t *j = json_loads(recs.recs[i].value, 0, NULL);
        if (j && !strcmp(env_json_str(j, "shipment_id"), shipment_id) &&
            !strcmp(env_json_str(j, "status"), status))
            n++;
        json_decref(j);
    }
    if (total)
        *total = recs.n;
    omo_test_records_free(&recs);
    return n;
}

/* Waits until omo.shipments holds exactly `want` status messages in all. */
static inline bool env_wait_statuses(env *e, long long want, int timeout_ms)
{
    double until = env_now() + timeout_ms / 1000.0;
    for (;;) {
        long long total = env_topic_count(e, "omo.shipments");
        if (total == want)
            return true;
        if (total > want || env_now() > until) {
            fprintf(stderr, "omo.shipments holds %lld status messages, expected %lld\n", total,
                    want);
            return false;
        }
        env_sleep_ms(100);
    }
}

/* Every status message on omo.shipments: each (shipment_id, status) exactly once, keyed by the
 * order id, and the set is exactly `expected` (pairs "SHIPMENT_ID status", NULL-terminated). */
static inline bool env_statuses_exactly(env *e, const char *const *expected)
{
    omo_test_records recs = {0};
    if (env_topic_count(e, "omo.shipments") > 0 &&
        !omo_test_kafka_read_all(omo_kafka_mock_bootstraps(e->kafka), "omo.shipments", &recs))
        return false;
    size_t nexp = 0;
    while (expected[nexp])
        nexp++;
    int *seen = calloc(nexp + 1, sizeof *seen);
    bool ok = true;
    for (size_t i = 0; i < recs.n; i++) {
        json_t *j = json_loads(recs.recs[i].value, 0, NULL);
        char pair[300];
        snprintf(pair, sizeof pair, "%s %s", env_json_str(j, "shipment_id"),
                 env_json_str(j, "status"));
        const char *order = env_json_str(j, "order_id");
        if (!j || strcmp(env_json_str(j, "type"), "shipment.status") || !recs.recs[i].key ||
            strcmp(recs.recs[i].key, order) ||
            strncmp(env_json_str(j, "shipment_id"), order, strlen(order))) {
            fprintf(stderr, "omo.shipments: bad record key=%s value=%s\n",
                    recs.recs[i].key ? recs.recs[i].key : "(null)", recs.recs[i].value);
            ok = false;
        }
        size_t k = 0;
        while (k < nexp && strcmp(expected[k], pair))
            k++;
        if (k == nexp) {
            fprintf(stderr, "omo.shipments: unexpected status %s\n", pair);
            ok = false;
        } else if (++seen[k] > 1) {
            fprintf(stderr, "omo.shipments: %s appears more than once\n", pair);
            ok = false;
        }
        json_decref(j);
    }
    for (size_t k = 0; k < nexp; k++)
        if (!seen[k]) {
            fprintf(stderr, "omo.shipments: %s is missing\n", expected[k]);
            ok = false;
        }
    free(seen);
    omo_test_records_free(&recs);
    return ok;
}

/* ---- the service ------------------------------------------------------------------------- */

/* Runs argv with its output appended to the service log; returns the pid, or -1. */
static inline pid_t env_spawn(const env *e, char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        /* A test that fails midway must not leave a service behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* waitpid with a timeout: the exit code, 128 + signal, or -1 when it did not end in time. */
static inline int env_wait_pid(pid_t pid, int timeout_ms)
{
    double until = env_now() + timeout_ms / 1000.0;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (r < 0 || env_now() > until)
            return -1;
        env_sleep_ms(20);
    }
}

static inline void env_log_tail(const env *e, int lines)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "tail -n %d '%s' >&2", lines, e->log);
    fprintf(stderr, "---- %s ----\n", e->log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
}

/* Reads the fixture's events and splits them by topic, with their keys. */
static inline bool env_load_events(env *e)
{
    FILE *f = fopen(ENV_EVENTS, "r");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (!n)
            continue;
        json_t *j = json_loads(line, 0, NULL);
        if (!j)
            continue;
        char key[256];
        bool order = !strncmp(env_json_str(j, "type"), "order.", 6);
        if (order)
            snprintf(key, sizeof key, "%s", env_json_str(j, "order_id"));
        else
            snprintf(key, sizeof key, "%s/%s", env_json_str(j, "node_id"), env_json_str(j, "sku"));
        json_decref(j);
        char ***vals = order ? &e->orders : &e->stock,
             ***keys = order ? &e->order_keys : &e->stock_keys;
        size_t *cnt = order ? &e->norders : &e->nstock;
        *vals = realloc(*vals, sizeof(char *) * (*cnt + 1));
        *keys = realloc(*keys, sizeof(char *) * (*cnt + 1));
        (*vals)[*cnt] = strdup(line);
        (*keys)[*cnt] = strdup(key);
        (*cnt)++;
    }
    free(line);
    fclose(f);
    return e->norders && e->nstock;
}

/* Produces one input message. */
static inline bool env_produce(env *e, const char *topic, const char *key, const char *value)
{
    const char *keys[1] = {key}, *values[1] = {value};
    return omo_kafka_mock_produce(e->kafka, topic, -1, keys, values, 1);
}

static inline bool env_write_config(env *e, const char *name)
{
    FILE *f = fopen(e->config, "w");
    if (!f)
        return false;
    fprintf(f,
            "kafka:\n  brokers: \"%s\"\n  group: ptest-%s-%d\n" ENV_KAFKA_EXTRA
            "postgres:\n  dsn: \"%s\"\n"
            "network: %s/tests/fixtures/pick_network.yaml\n"
            "routing: %s/tests/fixtures/pick_routing.yaml\n"
            "http:\n  listen: 127.0.0.1:%d\n  tokens:\n"
            "    - {token: %s, role: ops}\n"
            "    - {token: %s, role: store, store: S-1}\n"
            "    - {token: %s, role: store, store: S-2}\n",
            omo_kafka_mock_bootstraps(e->kafka), name, (int)getpid(), omo_pg_local_dsn(e->pg),
            OMO_SOURCE_DIR, OMO_SOURCE_DIR, e->port, ENV_OPS_TOKEN, ENV_S1_TOKEN, ENV_S2_TOKEN);
    return fclose(f) == 0;
}

/* Everything up and every fixture order decided: the cluster, the database (migrated), the
 * opening stock applied by the running service, then the orders. Fails the test otherwise. */
static inline void env_start(env *e, const char *name)
{
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "/tmp/omo-ptest-%s-XXXXXX", name);
    cr_assert_not_null(mkdtemp(e->dir), "mkdtemp: %s", strerror(errno));
    snprintf(e->config, sizeof e->config, "%s/omo.yaml", e->dir);
    snprintf(e->log, sizeof e->log, "%s/service.log", e->dir);
    cr_assert(env_load_events(e), "cannot read %s", ENV_EVENTS);

    char err[512] = "";
    e->kafka = omo_kafka_mock_start(3, 4, err, sizeof err);
    cr_assert_not_null(e->kafka, "mock cluster: %s", err);
    e->pg = omo_pg_local_start(NULL, false, err, sizeof err);
    cr_assert_not_null(e->pg, "postgres: %s", err);
    e->db = PQconnectdb(omo_pg_local_dsn(e->pg));
    cr_assert_eq(PQstatus(e->db), CONNECTION_OK, "connect: %s", PQerrorMessage(e->db));
    e->port = env_free_port();
    cr_assert_gt(e->port, 0);
    cr_assert(env_write_config(e, name));

    char *migrate[] = {OMO_BINARY, "db", "migrate", "--config", e->config, NULL};
    pid_t pid = env_spawn(e, migrate);
    int rc = env_wait_pid(pid, 60000);
    if (rc)
        env_log_tail(e, 30);
    cr_assert_eq(rc, 0, "omo db migrate exited %d", rc);

    /* The opening stock goes first and is applied before any order: an order never races the
     * stock it is meant to find. */
    for (size_t i = 0; i < e->nstock; i++)
        cr_assert(env_produce(e, "omo.stock", e->stock_keys[i], e->stock[i]));
    char *run[] = {OMO_BINARY, "run", "--config", e->config, NULL};
    e->pid = env_spawn(e, run);
    cr_assert_gt(e->pid, 0);
    double until = env_now() + 60;
    for (;;) {
        env_resp r = env_http(e, "GET", "/readyz", NULL, NULL);
        int st = r.status;
        env_resp_free(&r);
        if (st == 200)
            break;
        if (env_now() > until || env_wait_pid(e->pid, 0) >= 0) {
            env_log_tail(e, 40);
            cr_assert_fail("the service did not become ready");
        }
        env_sleep_ms(100);
    }
    while (env_sql(e, "SELECT count(*) FROM applied_events", NULL) < (long long)e->nstock) {
        if (env_now() > until) {
            env_log_tail(e, 40);
            cr_assert_fail("the opening stock was not applied");
        }
        env_sleep_ms(100);
    }
    for (size_t i = 0; i < e->norders; i++)
        cr_assert(env_produce(e, "omo.orders", e->order_keys[i], e->orders[i]));
    for (size_t i = 0; i < e->norders; i++)
        if (!env_wait_revisions(e, e->order_keys[i], 1, 30000)) {
            env_log_tail(e, 40);
            cr_assert_fail("order %s was not decided", e->order_keys[i]);
        }
}

/* Stops the service with SIGTERM (it must exit 0) and starts it again on the same database and
 * cluster; returns once it answers /readyz. */
static inline void env_restart(env *e)
{
    kill(e->pid, SIGTERM);
    int rc = env_wait_pid(e->pid, 30000);
    e->pid = 0;
    cr_assert_eq(rc, 0, "omo run exited %d on SIGTERM", rc);
    char *run[] = {OMO_BINARY, "run", "--config", e->config, NULL};
    e->pid = env_spawn(e, run);
    cr_assert_gt(e->pid, 0);
    double until = env_now() + 60;
    for (;;) {
        env_resp r = env_http(e, "GET", "/readyz", NULL, NULL);
        int st = r.status;
        env_resp_free(&r);
        if (st == 200)
            return;
        if (env_now() > until || env_wait_pid(e->pid, 0) >= 0) {
            env_log_tail(e, 40);
            cr_assert_fail("the service did not come back");
        }
        env_sleep_ms(100);
    }
}

/* Every allocation and shipment status on the topics validates against config/schema. */
static inline bool env_outputs_valid(env *e)
{
    omo_test_records recs[2] = {{0}};
    const char *topics[] = {"omo.allocations", "omo.shipments"};
    bool ok = true;
    for (int t = 0; t < 2; t++)
        ok =
            ok && omo_test_kafka_read_all(omo_kafka_mock_bootstraps(e->kafka), topics[t], &recs[t]);
    char err[1024] = "cannot read the output topics back";
    const omo_test_records *sets[] = {&recs[0], &recs[1]};
    ok = ok && omo_test_records_valid(e->dir, sets, 2, err, sizeof err);
    if (!ok)
        fprintf(stderr, "%s\n", err);
    omo_test_records_free(&recs[0]);
    omo_test_records_free(&recs[1]);
    return ok;
}

/* Stops the service (SIGTERM: it drains and exits 0, leak-free under ASan), checks its outputs
 * against the schemas (e->outputs_valid), and stops everything else. Returns the service's exit
 * code. The caller removes the directory when the test passed; otherwise keeps it. */
static inline int env_stop(env *e)
{
    int rc = 0;
    e->outputs_valid = false;
    if (e->pid > 0) {
        kill(e->pid, SIGTERM);
        rc = env_wait_pid(e->pid, 30000);
        if (rc < 0) {
            kill(e->pid, SIGKILL);
            env_wait_pid(e->pid, 5000);
        }
        e->pid = 0;
    }
    if (e->kafka)
        e->outputs_valid = env_outputs_valid(e);
    if (e->db)
        PQfinish(e->db);
    e->db = NULL;
    omo_pg_local_stop(e->pg);
    e->pg = NULL;
    omo_kafka_mock_stop(e->kafka);
    e->kafka = NULL;
    for (size_t i = 0; i < e->norders; i++) {
        free(e->orders[i]);
        free(e->order_keys[i]);
    }
    for (size_t i = 0; i < e->nstock; i++) {
        free(e->stock[i]);
        free(e->stock_keys[i]);
    }
    free(e->orders);
    free(e->order_keys);
    free(e->stock);
    free(e->stock_keys);
    e->orders = e->order_keys = e->stock = e->stock_keys = NULL;
    e->norders = e->nstock = 0;
    return rc;
}

/* Removes the test's directory (after a passing test). */
static inline void env_remove_dir(const env *e)
{
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", e->dir);
}

#endif
