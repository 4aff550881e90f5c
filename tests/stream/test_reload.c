/* Rules reloaded under load: while `omo run` decides a generated retail day, the test swaps the
 * routing rules back and forth through every door (PUT /rules, POST /rules/reload after
 * rewriting the file, SIGHUP after rewriting it), with broken files in between.
 *
 * The rule sets: A is gen's routing.yaml; B is A plus a rule that keeps standard parcels out of
 * stores (deny_methods: [ship_from_store]); A2 and B2 are A and B with a trailing comment, so
 * they decide alike but are versions of their own, each first made live by another door. X1 is
 * B followed by a rule naming an unknown node and method (a set that would deny stores if it
 * were half loaded), X2 is not YAML at all.
 *
 * Afterwards, from PostgreSQL and the topics:
 * - every applied event and every allocation names A, A2, B or B2: never X1, X2 or anything else;
 * - each applied event was decided under the version live at that moment: its commit time lies
 *   between the swap that made its version live and the next one, and the versions follow one
 *   another in the order they were made live;
 * - no decision used a partial set: replaying the applied events through an engine that takes,
 *   for each event, the whole rule set its version names reproduces every allocation on the
 *   topic byte for byte; no order decided under B or B2 has a standard parcel from a store, and
 *   under A or A2 some do;
 * - GET /rules lists each version once, with how it first went live (file, PUT, reload,
 *   SIGHUP), and never a broken one;
 * - a refused file changes nothing: after each 422 or refused SIGHUP the live version and its
 *   text are unchanged, and a refused PUT leaves the file as it was. */
#include "engine.h"
#include "kafka.h"
#include "service.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { SWAPS = 42 };
#define TOKEN "reload-test-ops-token"

static omo_test_service *svc;
static bool passed;
static int port;

static void teardown(void)
{
    omo_test_service_teardown(svc, passed);
    svc = NULL;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *buf = omo_xmalloc(cap);
    while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n + 1 == cap)
            buf = omo_xrealloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* Writes the routing file whole, so the service never reads a file half written. */
static void write_routing(const char *text)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.test-tmp", svc->routing);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, svc->routing), 0);
}

/* ---- the rule sets ----------------------------------------------------------------------- */

typedef enum text_id { A, A2, B, B2, X1, X2, NTEXTS } text_id;
static const char *const text_names[NTEXTS] = {"A", "A2", "B", "B2", "X1", "X2"};
static char *texts[NTEXTS];
static char versions[NTEXTS][17];
static omo_rules *rule_sets[NTEXTS];

static text_id text_of_version(const char *version)
{
    for (int t = 0; t < NTEXTS; t++)
        if (version && !strcmp(versions[t], version))
            return (text_id)t;
    return NTEXTS;
}

static char *concat(const char *a, const char *b)
{
    char *s = omo_xmalloc(strlen(a) + strlen(b) + 1);
    strcpy(s, a);
    strcat(s, b);
    return s;
}

static void make_texts(const omo_network *net)
{
    texts[A] = read_all(svc->routing, NULL);
    cr_assert_not_null(texts[A]);
    size_t n = strlen(texts[A]);
    cr_assert(n > 0 && texts[A][n - 1] == '\n');
    /* gen's file ends with its rules list, so a rule appended is one more rule. */
    texts[B] = concat(texts[A], "  - name: parcels leave from warehouses only\n"
                                "    when: {service: standard}\n"
                                "    deny_methods: [ship_from_store]\n");
    texts[A2] = concat(texts[A], "# the same rules, saved again\n");
    texts[B2] = concat(texts[B], "# the same rules, saved again\n");
    texts[X1] = concat(texts[B], "  - name: a rule with typos\n"
                                 "    when: {node: S-NOWHERE}\n"
                                 "    deny_methods: [teleport]\n");
    texts[X2] = omo_xstrdup("version: 1\nobjective: {hour_cost: [0.10\nmax_shipments: 3\n");
    for (int t = 0; t < NTEXTS; t++) {
        snprintf(versions[t], sizeof versions[t], "%016" PRIx64,
                 omo_hash_bytes(texts[t], strlen(texts[t])));
        for (int u = 0; u < t; u++)
            cr_assert_str_neq(versions[t], versions[u]);
        omo_diag diag = {0};
        rule_sets[t] = omo_rules_parse(text_names[t], texts[t], strlen(texts[t]), net, &diag);
        if (t == X1 || t == X2) {
            cr_assert_null(rule_sets[t], "%s should not load", text_names[t]);
        } else {
            cr_assert_not_null(rule_sets[t], "%s does not load: %s", text_names[t],
                               diag.count ? diag.lines[0] : "");
            cr_assert_str_eq(rule_sets[t]->version_hash, versions[t]);
        }
        omo_diag_clear(&diag);
    }
}

static void free_texts(void)
{
    for (int t = 0; t < NTEXTS; t++) {
        free(texts[t]);
        omo_rules_destroy(rule_sets[t]);
        texts[t] = NULL;
        rule_sets[t] = NULL;
    }
}

/* ---- HTTP -------------------------------------------------------------------------------- */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

typedef struct reply {
    int status; /* 0: no answer */
    char *body;
    json_t *json;
} reply;

static void reply_free(reply *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* One request on its own connection, read to its end. */
static reply http(const char *method, const char *path, const char *body)
{
    reply r = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return r;
    }
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t blen = body ? strlen(body) : 0;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " TOKEN
                     "\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n",
                     method, path, blen);
    bool sent = send(fd, head, (size_t)n, MSG_NOSIGNAL) == n;
    for (size_t off = 0; sent && off < blen;) {
        ssize_t k = send(fd, body + off, blen - off, MSG_NOSIGNAL);
        sent = k > 0;
        off += sent ? (size_t)k : 0;
    }
    size_t cap = 1 << 14, used = 0;
    char *buf = omo_xmalloc(cap);
    ssize_t k;
    while (sent && (k = recv(fd, buf + used, cap - used - 1, 0)) > 0) {
        used += (size_t)k;
        if (used + 1 == cap)
            buf = omo_xrealloc(buf, cap *= 2);
    }
    buf[used] = '\0';
    close(fd);
    char *split = strstr(buf, "\r\n\r\n");
    if (!split || sscanf(buf, "HTTP/1.1 %d", &r.status) != 1) {
        free(buf);
        r.status = 0;
        return r;
    }
    r.body = omo_xstrdup(split + 4);
    free(buf);
    r.json = json_loads(r.body, 0, NULL);
    return r;
}

static const char *jstr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    cr_assert_not_null(s, "no string '%s'", key);
    return s;
}

/* The live version and its text, per GET /rules. */
static void live_version(char *version, size_t len, char **text)
{
    reply r = http("GET", "/rules", NULL);
    cr_assert_eq(r.status, 200, "GET /rules: %d %s", r.status, r.body ? r.body : "");
    json_t *live = json_object_get(r.json, "live");
    snprintf(version, len, "%s", jstr(live, "version"));
    if (text)
        *text = omo_xstrdup(jstr(live, "text"));
    reply_free(&r);
}

static void assert_live(text_id expected, const char *when)
{
    char version[32];
    char *text;
    live_version(version, sizeof version, &text);
    cr_assert_str_eq(version, versions[expected], "%s: version %s live, expected %s (%s)", when,
                     version, text_names[expected], versions[expected]);
    cr_assert_str_eq(text, texts[expected], "%s: the live text is not %s's", when,
                     text_names[expected]);
    free(text);
}

/* ---- swapping ---------------------------------------------------------------------------- */

typedef enum door { BY_PUT, BY_RELOAD, BY_SIGHUP } door;
static const char *const door_names[] = {"PUT /rules", "POST /rules/reload", "SIGHUP"};

typedef struct swap {
    door how;
    text_id text;
    bool valid;
    double t_req, t_resp; /* wall clock, around the moment the swap took effect (or not) */
} swap;

static size_t count_in_log(const char *needle)
{
    char *log = read_all(svc->log, NULL);
    size_t n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(log);
    return n;
}

static void assert_errors(const reply *r, const char *prefix, const char *what)
{
    json_t *errors = json_object_get(r->json, "errors");
    cr_assert(json_array_size(errors) > 0, "%s: 422 without errors: %s", what, r->body);
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *line = json_string_value(e);
        cr_assert(line && !strncmp(line, prefix, strlen(prefix)) && strstr(line, ": error: "),
                  "%s: error line '%s' is not '%sLINE:COL: error: ...'", what, line, prefix);
    }
}

/* Performs one swap and checks its immediate outcome. Returns the live version after it. */
static text_id do_swap(swap *s, text_id live)
{
    char what[96];
    snprintf(what, sizeof what, "%s %s", door_names[s->how], text_names[s->text]);
    const char *text = texts[s->text];
    if (s->how != BY_PUT)
        write_routing(text);
    char *file_before = read_all(svc->routing, NULL);
    s->t_req = wall_now();
    if (s->how == BY_PUT || s->how == BY_RELOAD) {
        reply r =
            s->how == BY_PUT ? http("PUT", "/rules", text) : http("POST", "/rules/reload", NULL);
        s->t_resp = wall_now();
        if (s->valid) {
            cr_assert_eq(r.status, 200, "%s: %d %s", what, r.status, r.body ? r.body : "");
            cr_assert_str_eq(jstr(r.json, "version"), versions[s->text], "%s", what);
            if (s->how == BY_PUT)
                cr_assert(json_is_true(json_object_get(r.json, "file_written")), "%s", what);
        } else {
            cr_assert_eq(r.status, 422, "%s: %d %s", what, r.status, r.body ? r.body : "");
            char prefix[PATH_MAX + 16];
            snprintf(prefix, sizeof prefix, "%s:", s->how == BY_PUT ? "PUT /rules" : svc->routing);
            assert_errors(&r, prefix, what);
        }
        reply_free(&r);
    } else {
        const char *refused = "SIGHUP: the rules in";
        size_t before = count_in_log(refused);
        cr_assert_eq(kill(svc->pid, SIGHUP), 0);
        double until = s->t_req + 30;
        for (;;) {
            cr_assert(wall_now() < until, "%s: no effect within 30 s", what);
            cr_assert(omo_test_service_alive(svc), "%s: the service exited", what);
            if (s->valid) {
                char version[32];
                live_version(version, sizeof version, NULL);
                if (!strcmp(version, versions[s->text]))
                    break;
            } else if (count_in_log(refused) > before) {
                break;
            }
            sleep_ms(5);
        }
        s->t_resp = wall_now();
    }
    text_id now = s->valid ? s->text : live;
    assert_live(now, what);
    char *file_after = read_all(svc->routing, NULL);
    if (s->how == BY_PUT)
        cr_assert_str_eq(file_after, s->valid ? text : file_before,
                         "%s: the routing file is not what it should be", what);
    free(file_before);
    free(file_after);
    return now;
}

/* ---- reading back ------------------------------------------------------------------------ */

typedef struct applied {
    char *value;
    size_t len;
    text_id version;
    double at; /* commit time, epoch seconds */
} applied;

static applied *read_applied(size_t *n)
{
    PGconn *conn = PQconnectdb(omo_pg_local_dsn(svc->pg));
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    /* Binary results keep the bytea value as it is; the other columns are text. */
    PGresult *res = PQexecParams(conn,
                                 "SELECT value, coalesce(rules_version, ''), "
                                 "extract(epoch FROM applied_at)::text "
                                 "FROM applied_events ORDER BY seq",
                                 0, NULL, NULL, NULL, NULL, 1);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(conn));
    *n = (size_t)PQntuples(res);
    applied *v = omo_xcalloc(*n + 1, sizeof *v);
    for (size_t i = 0; i < *n; i++) {
        v[i].len = (size_t)PQgetlength(res, (int)i, 0);
        v[i].value = omo_xmalloc(v[i].len + 1);
        memcpy(v[i].value, PQgetvalue(res, (int)i, 0), v[i].len);
        v[i].value[v[i].len] = '\0';
        const char *version = PQgetvalue(res, (int)i, 1);
        v[i].version = text_of_version(version);
        cr_assert(v[i].version < NTEXTS && rule_sets[v[i].version],
                  "applied event %zu was decided under '%s', not A, A2, B or B2", i + 1, version);
        v[i].at = strtod(PQgetvalue(res, (int)i, 2), NULL);
    }
    PQclear(res);
    PQfinish(conn);
    return v;
}

/* What the engine decides on the applied events, each under the whole rule set it names. */
typedef struct replayed {
    const omo_network *net;
    omo_strmap index; /* "order_id#revision" -> position */
    char **values;
    size_t n, cap;
    char *buf;
    size_t bufcap;
} replayed;

static void replay_sink(void *ctx, const omo_allocation *a)
{
    replayed *rp = ctx;
    size_t len = omo_allocation_json(a, rp->net, &rp->buf, &rp->bufcap);
    while (len && rp->buf[len - 1] == '\n')
        len--;
    char key[OMO_LONG_ID_MAX + 32];
    snprintf(key, sizeof key, "%s#%d", a->order_id, a->revision);
    bool added;
    cr_assert_geq(omo_strmap_add(&rp->index, key, (int)rp->n, &added), 0);
    cr_assert(added, "replay: %s decided twice", key);
    omo_grow((void **)&rp->values, &rp->cap, rp->n + 1, sizeof(char *));
    rp->values[rp->n] = omo_xmalloc(len + 1);
    memcpy(rp->values[rp->n], rp->buf, len);
    rp->values[rp->n++][len] = '\0';
}

static void replay(const omo_network *net, const applied *ev, size_t n, replayed *rp)
{
    rp->net = net;
    omo_engine *eng = omo_engine_create(net, rule_sets[A], replay_sink, rp);
    text_id current = A;
    omo_event *parsed = omo_xmalloc(sizeof *parsed);
    for (size_t i = 0; i < n; i++) {
        if (ev[i].version != current) {
            current = ev[i].version;
            omo_engine_set_rules(eng, rule_sets[current]);
        }
        omo_event_error err = {0};
        if (!omo_event_parse(ev[i].value, ev[i].len, net, parsed, &err))
            continue;
        (void)omo_engine_apply(eng, parsed, &err);
    }
    free(parsed);
    omo_engine_destroy(eng);
}

/* ---- the test ---------------------------------------------------------------------------- */

Test(stream, rules_swapped_under_load, .timeout = 600, .fini = teardown)
{
    double t0 = omo_test_now();
    omo_test_service_opts opts = {.name = "reload",
                                  .omo_binary = OMO_BINARY,
                                  .stores = 40,
                                  .skus = 100,
                                  .orders = 3000,
                                  .bad = 0,
                                  .seed = 3,
                                  .brokers = 3,
                                  .partitions = 4};
    svc = omo_test_service_setup(&opts);
    cr_assert_not_null(svc, "setup failed");
    omo_diag diag = {0};
    omo_network *net = omo_network_load(svc->network, &diag);
    cr_assert_not_null(net);
    make_texts(net);

    port = free_port();
    FILE *conf = fopen(svc->config, "a");
    cr_assert_not_null(conf);
    fprintf(conf, "http:\n  listen: \"127.0.0.1:%d\"\n  tokens:\n    - {token: %s, role: ops}\n",
            port, TOKEN);
    cr_assert_eq(fclose(conf), 0);

    char err[2048];
    cr_assert(omo_test_service_start(svc, err, sizeof err), "%s", err);
    for (double until = omo_test_now() + 60;; sleep_ms(50)) {
        cr_assert(omo_test_service_alive(svc), "the service exited while starting");
        reply r = http("GET", "/healthz", NULL);
        int status = r.status;
        reply_free(&r);
        if (status == 200)
            break;
        cr_assert(omo_test_now() < until, "no HTTP within 60 s");
    }
    assert_live(A, "at start");

    /* The opening stock, then the day streamed while the rules change. */
    cr_assert(omo_test_service_produce(svc, svc->nopening, err, sizeof err), "%s", err);
    cr_assert(omo_test_service_feed(svc, svc->ninputs, 25, 100));

    /* Doors in turn, each with a good file then a bad one; the good files cycle through B, A2,
     * B2, A so that each version first goes live through another door. */
    static const text_id good[] = {B, A2, B2, A};
    swap swaps[SWAPS];
    text_id live = A;
    int ngood = 0, nbad = 0;
    size_t rest = svc->ninputs - svc->nopening;
    for (int i = 0; i < SWAPS; i++) {
        /* Spread over the stream: swap i once its share of the day has been applied. */
        long long due = (long long)(svc->nopening + rest * (size_t)(i + 1) / (SWAPS + 1));
        for (double until = omo_test_now() + 60;
             omo_test_service_sql_count(svc, "SELECT count(*) FROM applied_events") < due;
             sleep_ms(10))
            cr_assert(omo_test_now() < until, "the stream stalled before swap %d", i + 1);
        swap *s = &swaps[i];
        s->how = (door)(i / 2 % 3);
        s->valid = i % 2 == 0;
        s->text = s->valid ? good[ngood++ % 4] : (nbad++ % 2 ? X2 : X1);
        live = do_swap(s, live);
    }
    long long applied_after_swaps =
        omo_test_service_sql_count(svc, "SELECT count(*) FROM applied_events");
    cr_assert(omo_test_service_feed_wait(svc), "feeding the inputs failed");
    cr_assert(omo_test_service_wait_applied(svc, (long long)svc->ninputs, 120000, err, sizeof err),
              "%s", err);

    /* The history: every activation in order, each with the door it came through. */
    reply r = http("GET", "/rules", NULL);
    cr_assert_eq(r.status, 200);
    json_t *history = json_object_get(r.json, "history");
    cr_assert_eq(json_array_size(history), (size_t)ngood + 1, "history: %s", r.body);
    char put_by[96], reload_by[96];
    unsigned long long fp = (unsigned long long)(omo_hash_str(TOKEN) & 0xffffffffULL);
    snprintf(put_by, sizeof put_by, "PUT /rules by ops token %08llx", fp);
    snprintf(reload_by, sizeof reload_by, "POST /rules/reload by ops token %08llx", fp);
    const char *door_by[] = {[BY_PUT] = put_by, [BY_RELOAD] = reload_by, [BY_SIGHUP] = "SIGHUP"};
    size_t i, k = 0;
    json_t *h;
    json_array_foreach(history, i, h)
    {
        text_id want = A;
        const char *by = "file";
        if (i > 0) {
            while (!swaps[k].valid)
                k++;
            want = swaps[k].text;
            by = door_by[swaps[k].how];
            k++;
        }
        text_id t = text_of_version(jstr(h, "version"));
        cr_assert_eq(t, want, "history entry %zu is %s, not %s", i,
                     t < NTEXTS ? text_names[t] : "unknown", text_names[want]);
        cr_assert_str_eq(jstr(h, "by"), by, "history entry %zu went live by '%s'", i,
                         jstr(h, "by"));
        cr_assert_eq(strlen(jstr(h, "went_live")), 20, "went_live '%s'", jstr(h, "went_live"));
    }
    reply_free(&r);

    /* Every reload counted by its result. */
    r = http("GET", "/metrics", NULL);
    cr_assert_eq(r.status, 200);
    char line[128];
    snprintf(line, sizeof line, "omo_rules_reloads_total{result=\"ok\"} %d\n", ngood);
    cr_assert(strstr(r.body, line), "metrics lack '%s'", line);
    snprintf(line, sizeof line, "omo_rules_reloads_total{result=\"invalid\"} %d\n", nbad);
    cr_assert(strstr(r.body, line), "metrics lack '%s'", line);
    reply_free(&r);

    int rc = omo_test_service_stop(svc, SIGTERM, 60000);
    cr_assert_eq(rc, 0, "the drain ended with exit status %d", rc);

    /* The live sequence: A from the start, then each good swap's version. */
    text_id seq_text[SWAPS + 1];
    double seq_from[SWAPS + 1], seq_until[SWAPS + 1];
    int nseq = 1;
    seq_text[0] = A;
    seq_from[0] = 0;
    for (int k = 0; k < SWAPS; k++) {
        if (!swaps[k].valid)
            continue;
        seq_until[nseq - 1] = swaps[k].t_resp;
        seq_text[nseq] = swaps[k].text;
        seq_from[nseq++] = swaps[k].t_req;
    }
    seq_until[nseq - 1] = 1e18;

    /* Applied events: each under a version live at its commit, in the order they went live. */
    size_t nev;
    applied *ev = read_applied(&nev);
    cr_assert_eq(nev, svc->ninputs);
    int at = 0, runs = 0;
    for (size_t e = 0; e < nev; e++) {
        if (e == 0 || ev[e].version != ev[e - 1].version)
            runs++;
        while (at < nseq && (seq_text[at] != ev[e].version || ev[e].at >= seq_until[at] + 0.002))
            at++;
        cr_assert(at < nseq,
                  "applied event %zu (committed at %.6f) names %s, which was not live then, or "
                  "not after the version before it",
                  e + 1, ev[e].at, text_names[ev[e].version]);
        cr_assert(ev[e].at > seq_from[at] - 0.002,
                  "applied event %zu committed at %.6f under %s, made live at %.6f", e + 1,
                  ev[e].at, text_names[ev[e].version], seq_from[at]);
    }
    /* The swaps really happened under load. */
    cr_assert_geq(runs, 15, "only %d runs of versions over the applied events", runs);

    /* Allocations: only good versions; B keeps standard parcels out of stores, A does not;
     * each is what the whole rule set its version names decides. */
    replayed rp = {0};
    replay(net, ev, nev, &rp);
    omo_test_records alloc = {0};
    cr_assert(
        omo_test_kafka_read_all(omo_kafka_mock_bootstraps(svc->kafka), "omo.allocations", &alloc));
    cr_assert_eq(alloc.n, rp.n, "%zu allocations on the topic, %zu decided by the replay", alloc.n,
                 rp.n);
    char serr[1024];
    const omo_test_records *sets[] = {&alloc};
    cr_assert(omo_test_records_valid(svc->dir, sets, 1, serr, sizeof serr), "%s", serr);
    size_t under[NTEXTS] = {0}, store_parcels[NTEXTS] = {0};
    bool *seen = omo_xcalloc(rp.n + 1, sizeof(bool));
    for (size_t k = 0; k < alloc.n; k++) {
        const char *value = alloc.recs[k].value;
        json_t *a = json_loads(value, 0, NULL);
        cr_assert_not_null(a, "allocation %zu is not JSON", k);
        const char *version = jstr(a, "rules_version");
        text_id t = text_of_version(version);
        cr_assert(t < NTEXTS && rule_sets[t], "allocation %s#%lld names rules '%s'",
                  jstr(a, "order_id"),
                  (long long)json_integer_value(json_object_get(a, "revision")), version);
        under[t]++;
        size_t s;
        json_t *sh;
        json_array_foreach(json_object_get(a, "shipments"), s, sh)
        {
            if (!strcmp(jstr(sh, "method"), "ship_from_store") &&
                !strcmp(jstr(sh, "service"), "standard"))
                store_parcels[t]++;
        }
        char key[OMO_LONG_ID_MAX + 32];
        snprintf(key, sizeof key, "%s#%lld", jstr(a, "order_id"),
                 (long long)json_integer_value(json_object_get(a, "revision")));
        int pos = omo_strmap_get(&rp.index, key);
        cr_assert_geq(pos, 0, "%s is on the topic but not decided by the replay", key);
        cr_assert(!seen[pos], "%s is on the topic twice", key);
        seen[pos] = true;
        cr_assert_str_eq(value, rp.values[pos], "%s differs from the replay under %s", key,
                         text_names[t]);
        json_decref(a);
    }
    cr_assert_eq(store_parcels[B] + store_parcels[B2], 0);
    cr_assert_gt(store_parcels[A] + store_parcels[A2], 0);
    cr_assert_gt(under[B] + under[B2], 100, "few decisions under B: %zu", under[B] + under[B2]);
    cr_assert_gt(under[A] + under[A2], 100, "few decisions under A: %zu", under[A] + under[A2]);

    fprintf(stderr,
            "[reload] %d swaps (%d good, %d refused), %d live versions, %d runs over %zu applied "
            "events (%lld before the last swap ended); allocations under A %zu, A2 %zu, B %zu, B2 "
            "%zu (store parcels %zu, %zu, "
            "%zu, %zu); %.1f s\n",
            SWAPS, ngood, nbad, nseq, runs, nev, applied_after_swaps, under[A], under[A2], under[B],
            under[B2], store_parcels[A], store_parcels[A2], store_parcels[B], store_parcels[B2],
            omo_test_now() - t0);

    free(seen);
    omo_test_records_free(&alloc);
    for (size_t k = 0; k < rp.n; k++)
        free(rp.values[k]);
    free(rp.values);
    free(rp.buf);
    omo_strmap_free(&rp.index);
    for (size_t e = 0; e < nev; e++)
        free(ev[e].value);
    free(ev);
    free_texts();
    omo_network_destroy(net);
    omo_diag_clear(&diag);
    passed = true;
}
