/* The read side of the service (contract section 10): availability and promises, answered on the
 * HTTP threads beside the stream; holds and node pauses, which change the view, applied as API
 * events on the service thread; expiries; the availability feed.
 *
 * Reads and the stream: the engine is guarded by a writer-preferring rwlock. The service thread
 * takes it for writing only while it applies a batch (or an API event, or swaps rules), never
 * while it polls or commits; a read takes it for reading, so it sees the view as of the last
 * applied event and never waits for a commit. Promises decide through the engine's own decision
 * code in a copy of the engine that writes only into a reader's scratch (omo_engine_promise);
 * readers come from a pool, one per request in flight. */
#include "stream_state.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>

/* ---- readers ------------------------------------------------------------------------------
 *
 * The part of a read that needs the engine runs on a reader thread (OMO_READERS of them, one per
 * core by default), each with its own omo_reader, under the read lock; the HTTP connection threads
 * parse requests and write answers around it. Two things keep a flood of reads from delaying
 * decisions on a small machine: the reads in the engine are bounded by the reader threads (the
 * applying thread, when it wants the write lock, waits for at most that many to finish), and
 * the connection threads run at a lower priority (nice +10, on the thread only) while the reader
 * threads run at nice +READER_NICE, above them: a reader holding the lock is never stuck behind
 * the connection threads, and neither takes CPU the stream wants. */
#define CONNECTION_NICE 19
#define READER_NICE     10

typedef struct read_job {
    void (*fn)(omo_stream *svc, omo_reader *rd, void *ctx);
    void *ctx;
    bool done;
    struct read_job *next;
} read_job;

static void *reader_main(void *arg)
{
    omo_stream *svc = arg;
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), READER_NICE);
    omo_reader *rd = omo_reader_create(svc->eng);
    pthread_mutex_lock(&svc->readers_mu);
    for (;;) {
        while (!svc->read_jobs && !svc->readers_stop)
            pthread_cond_wait(&svc->readers_cv, &svc->readers_mu);
        if (svc->readers_stop)
            break;
        read_job *job = svc->read_jobs;
        svc->read_jobs = job->next;
        pthread_mutex_unlock(&svc->readers_mu);
        pthread_rwlock_rdlock(&svc->view_lock);
        job->fn(svc, rd, job->ctx);
        pthread_rwlock_unlock(&svc->view_lock);
        pthread_mutex_lock(&svc->readers_mu);
        job->done = true;
        pthread_cond_broadcast(&svc->readers_done);
    }
    pthread_mutex_unlock(&svc->readers_mu);
    omo_reader_destroy(rd);
    return NULL;
}

/* Runs fn on a reader thread under the read lock and waits for it (HTTP threads). */
static void run_read(omo_stream *svc, void (*fn)(omo_stream *, omo_reader *, void *), void *ctx)
{
    static _Thread_local bool yielded;
    if (!yielded) {
        yielded = true;
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CONNECTION_NICE);
    }
    read_job job = {fn, ctx, false, NULL};
    pthread_mutex_lock(&svc->readers_mu);
    if (!svc->nreader_threads) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int n = getenv("OMO_READERS") ? atoi(getenv("OMO_READERS")) : cores > 0 ? (int)cores : 1;
        n = n < 1 ? 1 : n > 64 ? 64 : n;
        svc->reader_threads = omo_xcalloc((size_t)n, sizeof(pthread_t));
        for (int i = 0; i < n; i++)
            if (pthread_create(&svc->reader_threads[svc->nreader_threads], NULL, reader_main,
                               svc) == 0)
                svc->nreader_threads++;
    }
    read_job **tail = &svc->read_jobs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = &job;
    pthread_cond_signal(&svc->readers_cv);
    while (!job.done)
        pthread_cond_wait(&svc->readers_done, &svc->readers_mu);
    pthread_mutex_unlock(&svc->readers_mu);
}

void omo_avail_destroy(omo_stream *svc)
{
    pthread_mutex_lock(&svc->readers_mu);
    svc->readers_stop = true;
    pthread_cond_broadcast(&svc->readers_cv);
    pthread_mutex_unlock(&svc->readers_mu);
    for (int i = 0; i < svc->nreader_threads; i++)
        pthread_join(svc->reader_threads[i], NULL);
    free(svc->reader_threads);
    svc->reader_threads = NULL;
    svc->nreader_threads = 0;
}

/* ---- queries ------------------------------------------------------------------------------ */

/* Calls fn for every key=value of a query string, both percent-decoded; stops when fn returns
 * false. */
static bool each_param(const char *query, bool (*fn)(void *ctx, const char *k, const char *v),
                       void *ctx)
{
    char key[64], val[256];
    const char *p = query ? query : "";
    while (*p) {
        char *dst = key;
        size_t cap = sizeof key, n = 0;
        bool in_val = false;
        for (; *p && *p != '&'; p++) {
            char c = *p;
            if (c == '=' && !in_val) {
                dst[n] = 0;
                dst = val, cap = sizeof val, n = 0, in_val = true;
                continue;
            }
            if (c == '+')
                c = ' ';
            else if (c == '%' && omo_hex_value(p[1]) >= 0 && omo_hex_value(p[2]) >= 0) {
                c = (char)(omo_hex_value(p[1]) * 16 + omo_hex_value(p[2]));
                p += 2;
            }
            if (n + 1 < cap)
                dst[n++] = c;
        }
        dst[n] = 0;
        if (!in_val)
            val[0] = 0;
        if (*p == '&')
            p++;
        if (key[0] && !fn(ctx, key, val))
            return false;
    }
    return true;
}

#define AVAIL_MAX_SKUS  100
#define AVAIL_MAX_NODES 100

typedef struct avail_query {
    char skus[AVAIL_MAX_SKUS][OMO_ID_MAX + 1];
    int nskus;
    int nodes[AVAIL_MAX_NODES];
    int nnodes;
    bool near;
    double lat, lon, radius_km;
    bool has_radius;
    char channel[OMO_ID_MAX + 1];
    const omo_network *net;
    const char *bad, *why; /* the field refused, and why */
    char badval[80];
} avail_query;

static bool parse_number(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return *s && !*end && isfinite(*out);
}

static bool avail_param(void *ctx, const char *k, const char *v)
{
    avail_query *q = ctx;
    snprintf(q->badval, sizeof q->badval, "%s", v);
    if (!strcmp(k, "sku")) {
        if (!omo_id_valid(v))
            return q->bad = "sku", q->why = "not a valid SKU id", false;
        if (q->nskus == AVAIL_MAX_SKUS)
            return q->bad = "sku", q->why = "at most 100 SKUs per request", false;
        snprintf(q->skus[q->nskus++], sizeof q->skus[0], "%s", v);
    } else if (!strcmp(k, "node")) {
        int n = omo_network_find(q->net, v);
        if (n < 0)
            return q->bad = "node", q->why = "no such node", false;
        if (q->nnodes == AVAIL_MAX_NODES)
            return q->bad = "node", q->why = "at most 100 nodes per request", false;
        q->nodes[q->nnodes++] = n;
    } else if (!strcmp(k, "near")) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", v);
        char *comma = strchr(buf, ',');
        if (!comma)
            return q->bad = "near", q->why = "LAT,LON expected", false;
        *comma = 0;
        if (!parse_number(buf, &q->lat) || !parse_number(comma + 1, &q->lon) || q->lat < -90 ||
            q->lat > 90 || q->lon < -180 || q->lon > 180)
            return q->bad = "near", q->why = "LAT,LON in degrees expected", false;
        q->near = true;
    } else if (!strcmp(k, "radius_km")) {
        if (!parse_number(v, &q->radius_km) || q->radius_km <= 0)
            return q->bad = "radius_km", q->why = "a positive number of km expected", false;
        q->has_radius = true;
    } else if (!strcmp(k, "channel")) {
        if (strlen(v) > OMO_ID_MAX)
            return q->bad = "channel", q->why = "longer than 64 bytes", false;
        snprintf(q->channel, sizeof q->channel, "%s", v);
    }
    /* token and unknown parameters are left alone, as unknown event fields are */
    return true;
}

typedef struct avail_row {
    int node;
    double km;
    omo_avail a;
} avail_row;

static int cmp_row(const void *x, const void *y)
{
    const avail_row *a = x, *b = y;
    if (a->km != b->km)
        return a->km < b->km ? -1 : 1;
    return a->node - b->node;
}

/* A JSON string (ids are plain, so this rarely escapes anything). */
static void put_string(omo_strbuf *t, const char *s)
{
    char buf[2 * OMO_LONG_ID_MAX + 8], *o = buf;
    *o++ = '"';
    for (; *s && o < buf + sizeof buf - 8; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            o += snprintf(o, 7, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = 0;
    omo_strbuf_printf(t, "%s", buf);
}

typedef struct avail_job {
    const avail_query *q;
    omo_strbuf *t;
} avail_job;

static void availability_job(omo_stream *svc, omo_reader *rd, void *ctx);

/* GET /availability: per SKU, the nodes holding any of it, their numbers and ATP. */
static void handle_availability(omo_stream *svc, const omo_http_request *req,
                                omo_http_response *resp)
{
    avail_query *q = omo_xcalloc(1, sizeof *q);
    q->net = svc->net;
    if (!each_param(req->query, avail_param, q) || !q->nskus || (q->has_radius && !q->near)) {
        char msg[200];
        if (!q->bad)
            snprintf(msg, sizeof msg, "%s",
                     q->nskus ? "radius_km needs near=LAT,LON" : "sku is required");
        else
            snprintf(msg, sizeof msg, "%s: %s (got \"%.60s\")", q->bad, q->why, q->badval);
        omo_routes_respond_error(resp, 400, msg, "field",
                                 q->bad     ? q->bad
                                 : q->nskus ? "radius_km"
                                            : "sku");
        free(q);
        return;
    }
    omo_strbuf t = {0};
    char tbuf[40];
    omo_strbuf_printf(&t, "{\"as_of\":\"%s\",\"skus\":[",
                      omo_time_format(omo_routes_wall_ms(), tbuf, sizeof tbuf));
    avail_job job = {q, &t};
    run_read(svc, availability_job, &job);
    omo_strbuf_printf(&t, "]}");
    free(q);
    atomic_fetch_add(&svc->availability_reads, 1);
    resp->status = 200;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->body = t.p;
    resp->body_len = t.len;
}

/* The engine's part of GET /availability, on a reader thread. */
static void availability_job(omo_stream *svc, omo_reader *rd, void *ctx)
{
    (void)rd;
    avail_job *job = ctx;
    const avail_query *q = job->q;
    omo_strbuf *tp = job->t;
    avail_row *rows = NULL;
    size_t caprows = 0;
    omo_inventory *inv = omo_engine_inventory(svc->eng);
    for (int s = 0; s < q->nskus; s++) {
        int sku = omo_inventory_sku(inv, q->skus[s], false);
        size_t nrec = 0, nrows = 0;
        const int *recs = sku >= 0 ? omo_inventory_records_of(inv, sku, &nrec) : NULL;
        int64_t atp = 0, on_hand = 0, reserved = 0, held = 0;
        for (size_t i = 0; i < nrec; i++) {
            const omo_stock *st = omo_inventory_at(inv, recs[i]);
            if (!st->on_hand && !st->reserved && !st->held)
                continue; /* holding nothing of it */
            bool listed = q->nnodes == 0;
            for (int k = 0; k < q->nnodes && !listed; k++)
                listed = q->nodes[k] == st->node;
            if (!listed)
                continue;
            const omo_node *nd = &svc->net->nodes[st->node];
            double km = q->near ? omo_distance_km(q->lat, q->lon, nd->lat, nd->lon) : 0.0;
            if (q->has_radius && km > q->radius_km)
                continue;
            omo_grow((void **)&rows, &caprows, nrows + 1, sizeof *rows);
            avail_row *r = &rows[nrows++];
            r->node = st->node;
            r->km = km;
            omo_engine_avail(svc->eng, st, q->channel[0] ? q->channel : NULL, &r->a);
            atp += r->a.atp;
            on_hand += r->a.on_hand;
            reserved += r->a.reserved;
            held += r->a.held;
        }
        if (nrows > 1)
            qsort(rows, nrows, sizeof *rows, cmp_row);
        omo_strbuf_printf(tp, "%s{\"sku\":", s ? "," : "");
        put_string(tp, q->skus[s]);
        omo_strbuf_printf(tp,
                          ",\"atp\":%lld,\"on_hand\":%lld,\"reserved\":%lld,\"held\":%lld,"
                          "\"nodes\":[",
                          (long long)atp, (long long)on_hand, (long long)reserved, (long long)held);
        for (size_t i = 0; i < nrows; i++) {
            const avail_row *r = &rows[i];
            const omo_node *nd = &svc->net->nodes[r->node];
            omo_strbuf_printf(tp, "%s{\"node_id\":", i ? "," : "");
            put_string(tp, nd->id);
            omo_strbuf_printf(tp,
                              ",\"type\":\"%s\",\"on_hand\":%lld,\"reserved\":%lld,\"held\":%lld,"
                              "\"safety_stock\":%lld,\"atp\":%lld",
                              nd->type == OMO_NODE_STORE ? "store" : "warehouse",
                              (long long)r->a.on_hand, (long long)r->a.reserved,
                              (long long)r->a.held, (long long)r->a.safety, (long long)r->a.atp);
            if (q->near)
                omo_strbuf_printf(tp, ",\"km\":%.1f", r->km);
            if (r->a.paused)
                omo_strbuf_printf(tp, ",\"paused\":true");
            omo_strbuf_printf(tp, "}");
        }
        omo_strbuf_printf(tp, "]}");
    }
    free(rows);
}

/* ---- promises ----------------------------------------------------------------------------- */

/* One delivery a promise asks about. */
typedef struct promise_ask {
    bool pickup;
    int store;
    char service[OMO_ID_MAX + 1];
} promise_ask;

typedef struct promise_option {
    omo_alloc_status status;
    int64_t objective;
    int index;
    char *json;
} promise_option;

static int cmp_option(const void *x, const void *y)
{
    const promise_option *a = x, *b = y;
    if (a->status != b->status)
        return a->status < b->status ? -1 : 1;
    if (a->objective != b->objective)
        return a->objective < b->objective ? -1 : 1;
    return a->index - b->index;
}

#define PROMISE_MAX_OPTIONS 32

typedef struct pickup_cand {
    int node;
    double km;
} pickup_cand;

static int cmp_pickup(const void *x, const void *y)
{
    const pickup_cand *a = x, *b = y;
    if (a->km != b->km)
        return a->km < b->km ? -1 : 1;
    return a->node - b->node;
}

/* Reads a promise (or hold) body into ev (as an order.created) and the deliveries it asks about.
 * Returns 0, or the HTTP status of the error written into resp. A hold asks about one delivery
 * (services and pickup_near are refused). */
static int read_basket(omo_stream *svc, const omo_http_request *req, bool hold, omo_event *ev,
                       promise_ask *asks, int *nasks, json_t **bodyout, omo_http_response *resp)
{
    json_error_t jerr;
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, &jerr) : NULL;
    if (!body || !json_is_object(body)) {
        json_decref(body);
        omo_routes_respond_error(resp, 400,
                                 !req->body_len ? "a JSON body is required"
                                 : body         ? "the body must be a JSON object"
                                                : jerr.text,
                                 "field", "");
        return 400;
    }
    json_t *services = json_object_get(body, "services");
    json_t *near = json_object_get(body, "pickup_near");
    bool has_delivery = json_object_get(body, "delivery") != NULL;
    if (hold && (services || near)) {
        json_decref(body);
        omo_routes_respond_error(resp, 400, "a hold has one delivery: no services or pickup_near",
                                 "field", services ? "services" : "pickup_near");
        return 400;
    }
    if (services && (!json_is_array(services) || !json_array_size(services))) {
        json_decref(body);
        omo_routes_respond_error(resp, 400, "services: a list of service names expected", "field",
                                 "services");
        return 400;
    }
    if (near && !json_is_object(near)) {
        json_decref(body);
        omo_routes_respond_error(resp, 400, "pickup_near: {\"radius_km\",\"max\"} expected",
                                 "field", "pickup_near");
        return 400;
    }
    /* Parsed as the order it would be, so that every field is checked as an order's is. */
    json_t *ord = json_deep_copy(body);
    json_object_del(ord, "services");
    json_object_del(ord, "pickup_near");
    json_object_del(ord, "hold_id");
    json_object_del(ord, "ttl_seconds");
    json_object_set_new(ord, "type", json_string("order.created"));
    json_object_set_new(ord, "order_id", json_string("promise"));
    if (!json_object_get(ord, "created_at")) {
        char tbuf[40];
        json_object_set_new(ord, "created_at",
                            json_string(omo_time_format(omo_routes_wall_ms(), tbuf, sizeof tbuf)));
    }
    if (!has_delivery)
        json_object_set_new(ord, "delivery",
                            json_pack("{s:s,s:s}", "method", "ship", "service", "standard"));
    char *text = json_dumps(ord, JSON_COMPACT);
    json_decref(ord);
    omo_event_error err;
    memset(&err, 0, sizeof err);
    bool parsed = omo_event_parse(text, strlen(text), svc->net, ev, &err);
    free(text);
    if (!parsed) {
        json_decref(body);
        omo_routes_respond_error(resp, 400, err.message, "field", err.field);
        return 400;
    }
    *nasks = 0;
    if (has_delivery)
        asks[(*nasks)++] = (promise_ask){ev->pickup, ev->store, ""};
    if (has_delivery && !ev->pickup)
        snprintf(asks[0].service, sizeof asks[0].service, "%s", ev->service);
    for (size_t i = 0; services && i < json_array_size(services); i++) {
        json_t *sv = json_array_get(services, i);
        if (!json_is_string(sv) || !omo_id_valid(json_string_value(sv))) {
            json_decref(body);
            char field[32];
            snprintf(field, sizeof field, "services[%zu]", i);
            omo_routes_respond_error(resp, 400, "a service name expected", "field", field);
            return 400;
        }
        bool dup = false;
        for (int k = 0; k < *nasks; k++)
            dup |= !asks[k].pickup && !strcmp(asks[k].service, json_string_value(sv));
        if (!dup && *nasks < PROMISE_MAX_OPTIONS) {
            asks[*nasks] = (promise_ask){false, -1, ""};
            snprintf(asks[*nasks].service, sizeof asks[0].service, "%s", json_string_value(sv));
            (*nasks)++;
        }
    }
    if (near) {
        json_t *rk = json_object_get(near, "radius_km"), *mx = json_object_get(near, "max");
        double radius = rk && json_is_number(rk) ? json_number_value(rk) : 25.0;
        json_int_t max = mx && json_is_integer(mx) ? json_integer_value(mx) : 5;
        if ((rk && (!json_is_number(rk) || radius <= 0)) ||
            (mx && (!json_is_integer(mx) || max < 1 || max > 20))) {
            json_decref(body);
            omo_routes_respond_error(
                resp, 400, "pickup_near: radius_km > 0 and max 1 to 20 expected", "field",
                rk && (!json_is_number(rk) || radius <= 0) ? "pickup_near.radius_km"
                                                           : "pickup_near.max");
            return 400;
        }
        if (!json_object_get(body, "customer")) {
            json_decref(body);
            omo_routes_respond_error(resp, 400, "pickup_near needs the customer's lat and lon",
                                     "field", "customer");
            return 400;
        }
        pickup_cand *c = omo_xmalloc(sizeof *c * (svc->net->nnodes + 1));
        size_t nc = 0;
        for (size_t n = 0; n < svc->net->nnodes; n++) {
            const omo_node *nd = &svc->net->nodes[n];
            if (nd->type != OMO_NODE_STORE || !nd->pickup)
                continue;
            double km = omo_distance_km(ev->cust_lat, ev->cust_lon, nd->lat, nd->lon);
            if (km <= radius)
                c[nc++] = (pickup_cand){(int)n, km};
        }
        qsort(c, nc, sizeof *c, cmp_pickup);
        for (size_t i = 0; i < nc && (json_int_t)i < max && *nasks < PROMISE_MAX_OPTIONS; i++) {
            bool dup = false;
            for (int k = 0; k < *nasks; k++)
                dup |= asks[k].pickup && asks[k].store == c[i].node;
            if (!dup)
                asks[(*nasks)++] = (promise_ask){true, c[i].node, "pickup"};
        }
        free(c);
    }
    if (!*nasks) {
        json_decref(body);
        omo_routes_respond_error(resp, 400, "delivery, services or pickup_near is required",
                                 "field", "delivery");
        return 400;
    }
    if (bodyout)
        *bodyout = body;
    else
        json_decref(body);
    return 0;
}

typedef struct promise_job {
    omo_event *ev;
    const promise_ask *asks;
    int nasks;
    promise_option *opts;
} promise_job;

/* The engine's part of POST /promise, on a reader thread: each option decided, as JSON. */
static void promise_job_run(omo_stream *svc, omo_reader *rd, void *ctx)
{
    promise_job *job = ctx;
    omo_event *ev = job->ev;
    char *buf = NULL;
    size_t cap = 0;
    for (int i = 0; i < job->nasks; i++) {
        const promise_ask *ask = &job->asks[i];
        promise_option *opt = &job->opts[i];
        ev->pickup = ask->pickup;
        ev->store = ask->store;
        if (!ev->pickup)
            snprintf(ev->service, sizeof ev->service, "%s", ask->service);
        size_t n = omo_engine_promise(svc->eng, rd, ev, ev->at_ms, &buf, &cap, &opt->status,
                                      &opt->objective);
        /* Which delivery the option is for, before its closing brace. */
        omo_strbuf t = {0};
        omo_strbuf_printf(&t, "%.*s,\"delivery\":", (int)n - 1, buf);
        if (ev->pickup) {
            omo_strbuf_printf(&t, "{\"method\":\"pickup\",\"store_id\":");
            put_string(&t, svc->net->nodes[ev->store].id);
        } else {
            omo_strbuf_printf(&t, "{\"method\":\"ship\",\"service\":");
            put_string(&t, ev->service);
        }
        omo_strbuf_printf(&t, "}}");
        opt->json = t.p;
        opt->index = i;
    }
    free(buf);
}

/* POST /promise: for each delivery asked about, the allocation omo would decide now. */
static void handle_promise(omo_stream *svc, const omo_http_request *req, omo_http_response *resp)
{
    omo_event *ev = omo_xmalloc(sizeof *ev);
    promise_ask asks[PROMISE_MAX_OPTIONS];
    int nasks = 0;
    if (read_basket(svc, req, false, ev, asks, &nasks, NULL, resp)) {
        free(ev);
        return;
    }
    promise_option opts[PROMISE_MAX_OPTIONS];
    promise_job job = {ev, asks, nasks, opts};
    run_read(svc, promise_job_run, &job);
    qsort(opts, (size_t)nasks, sizeof *opts, cmp_option);
    omo_strbuf t = {0};
    char tbuf[40];
    omo_strbuf_printf(&t, "{\"as_of\":\"%s\",\"options\":[",
                      omo_time_format(ev->at_ms, tbuf, sizeof tbuf));
    for (int i = 0; i < nasks; i++) {
        omo_strbuf_printf(&t, "%s%s", i ? "," : "", opts[i].json);
        free(opts[i].json);
    }
    omo_strbuf_printf(&t, "]}");
    free(ev);
    atomic_fetch_add(&svc->promises, 1);
    resp->status = 200;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->body = t.p;
    resp->body_len = t.len;
}

bool omo_avail_read(omo_stream *svc, const omo_http_request *req, omo_http_response *resp)
{
    bool availability = !strcmp(req->path, "/availability");
    bool promise = !strcmp(req->path, "/promise");
    if (!availability && !promise)
        return false;

    if (!omo_routes_token(svc, req)) {
        omo_routes_respond_error(resp, 401, "missing or unknown bearer token", NULL, NULL);
        return true;
    }
    if (!atomic_load(&svc->ready)) { /* the view is still being rebuilt: nothing true to say */
        omo_routes_respond_error(resp, 503, "starting: the view is being rebuilt", NULL, NULL);
        return true;
    }
    if (availability && !strcmp(req->method, "GET"))
        handle_availability(svc, req, resp);
    else if (promise && !strcmp(req->method, "POST"))
        handle_promise(svc, req, resp);
    else
        omo_routes_respond_error(resp, 405, availability ? "use GET" : "use POST", NULL, NULL);
    return true;
}

/* ---- holds and pauses, on the service thread ---------------------------------------------- */

static bool may_act_for(const omo_token *tok, const char *store_id)
{
    return tok->role == OMO_ROLE_OPS || (tok->store && !strcmp(tok->store, store_id));
}

static void respond_hold(omo_stream *svc, const char *hold_id, int status, omo_http_response *resp)
{
    char *json = omo_engine_hold_json(svc->eng, hold_id, NULL);
    if (!json) {
        omo_routes_respond_error(resp, 404, "no such hold", "hold_id", hold_id);
        return;
    }
    resp->status = status;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->body = json;
    resp->body_len = strlen(json);
}

static void respond_applied(omo_stream *svc, omo_apply_result r, const omo_event_error *err,
                            omo_http_response *resp)
{
    if (r == OMO_APPLY_CONFLICT)
        omo_routes_respond_error(resp, 409, err->message, "state", err->field);
    else
        omo_routes_respond_error(resp, svc->failed ? 503 : 400, err->message, "field", err->field);
}

static void handle_hold_post(omo_stream *svc, const omo_http_request *req, omo_http_response *resp)
{
    omo_event *ev = omo_xmalloc(sizeof *ev);
    promise_ask ask;
    int nasks = 0;
    json_t *body = NULL;
    int rc = read_basket(svc, req, true, ev, &ask, &nasks, &body, resp);
    free(ev);
    if (rc)
        return;
    json_t *id = json_object_get(body, "hold_id");
    if (!id || !json_is_string(id) || !json_string_length(id) ||
        json_string_length(id) > OMO_LONG_ID_MAX) {
        json_decref(body);
        omo_routes_respond_error(resp, 400, "hold_id: 1 to 128 bytes expected", "field", "hold_id");
        return;
    }
    char hold_id[OMO_LONG_ID_MAX + 1];
    snprintf(hold_id, sizeof hold_id, "%s", json_string_value(id));
    char *existing = omo_engine_hold_json(svc->eng, hold_id, NULL);
    if (existing) { /* the same hold asked for again: the one there is */
        free(existing);
        json_decref(body);
        respond_hold(svc, hold_id, 200, resp);
        return;
    }
    char tbuf[40];
    json_object_del(body, "created_at");
    json_object_set_new(body, "type", json_string("hold.placed"));
    json_object_set_new(body, "at",
                        json_string(omo_time_format(omo_routes_wall_ms(), tbuf, sizeof tbuf)));
    omo_event_error err;
    omo_apply_result r = omo_routes_apply_api(svc, body, &err);
    if (r == OMO_APPLY_OK || r == OMO_APPLY_DUPLICATE)
        respond_hold(svc, hold_id, r == OMO_APPLY_OK ? 201 : 200, resp);
    else
        respond_applied(svc, r, &err, resp);
}

static void handle_hold_id(omo_stream *svc, const omo_http_request *req, const char *hold_id,
                           omo_http_response *resp)
{
    bool live = false;
    char *json = omo_engine_hold_json(svc->eng, hold_id, &live);
    bool known = json != NULL;
    free(json);
    if (!known) {
        omo_routes_respond_error(resp, 404, "no such hold", "hold_id", hold_id);
        return;
    }
    if (!strcmp(req->method, "GET") || !live) {
        respond_hold(svc, hold_id, 200, resp);
        return;
    }
    if (strcmp(req->method, "DELETE")) {
        omo_routes_respond_error(resp, 405, "GET or DELETE /holds/{id}", NULL, NULL);
        return;
    }
    char tbuf[40];
    json_t *event = json_pack("{s:s,s:s,s:s}", "type", "hold.released", "hold_id", hold_id, "at",
                              omo_time_format(omo_routes_wall_ms(), tbuf, sizeof tbuf));
    omo_event_error err;
    omo_apply_result r = omo_routes_apply_api(svc, event, &err);
    if (r == OMO_APPLY_OK || r == OMO_APPLY_DUPLICATE)
        respond_hold(svc, hold_id, 200, resp);
    else
        respond_applied(svc, r, &err, resp);
}

static void handle_pause(omo_stream *svc, const omo_http_request *req, const omo_token *tok,
                         const char *node_id, bool pause, omo_http_response *resp)
{
    int node = omo_network_find(svc->net, node_id);
    if (node < 0) {
        omo_routes_respond_error(resp, 404, "no such node", "node_id", node_id);
        return;
    }
    if (!may_act_for(tok, node_id)) {
        omo_routes_respond_error(resp, 403, "this token may not pause another node", "node_id",
                                 node_id);
        return;
    }
    json_t *event = NULL;
    if (pause && req->body_len) {
        json_error_t jerr;
        event = json_loadb(req->body, req->body_len, 0, &jerr);
        if (!event || !json_is_object(event)) {
            omo_routes_respond_error(
                resp, 400, event ? "the body must be a JSON object" : jerr.text, "field", "");
            json_decref(event);
            return;
        }
    }
    if (!event)
        event = json_object();
    char tbuf[40];
    json_object_set_new(event, "type", json_string(pause ? "node.paused" : "node.resumed"));
    json_object_set_new(event, "node_id", json_string(node_id));
    json_object_set_new(event, "at",
                        json_string(omo_time_format(omo_routes_wall_ms(), tbuf, sizeof tbuf)));
    omo_event_error err;
    omo_apply_result r = omo_routes_apply_api(svc, event, &err);
    if (r != OMO_APPLY_OK && r != OMO_APPLY_DUPLICATE) {
        respond_applied(svc, r, &err, resp);
        return;
    }
    const char *reason = "";
    bool paused = omo_engine_node_paused(svc->eng, node, &reason);
    json_t *out = json_pack("{s:s,s:b}", "node_id", node_id, "paused", paused);
    if (paused)
        json_object_set_new(out, "reason", json_string(reason));
    omo_routes_respond_json(resp, 200, out);
}

/* The id between prefix and suffix of path, or false. */
static bool path_id(const char *path, const char *prefix, const char *suffix, char *id, size_t cap)
{
    size_t plen = strlen(path), a = strlen(prefix), b = strlen(suffix);
    if (strncmp(path, prefix, a) || plen <= a + b || strcmp(path + plen - b, suffix) ||
        plen - a - b >= cap)
        return false;
    memcpy(id, path + a, plen - a - b);
    id[plen - a - b] = 0;
    return !b || !strchr(id, '/');
}

bool omo_avail_serve(omo_stream *svc, const omo_http_request *req, const omo_token *tok,
                     omo_http_response *resp)
{
    char id[OMO_LONG_ID_MAX + 1];
    bool post = !strcmp(req->method, "POST");
    if (!strcmp(req->path, "/holds") || !strncmp(req->path, "/holds/", 7)) {
        if (tok->role != OMO_ROLE_OPS)
            omo_routes_respond_error(resp, 403, "ops token required", NULL, NULL);
        else if (!strcmp(req->path, "/holds") && post)
            handle_hold_post(svc, req, resp);
        else if (!strcmp(req->path, "/holds"))
            omo_routes_respond_error(resp, 405, "use POST", NULL, NULL);
        else if (path_id(req->path, "/holds/", "", id, sizeof id))
            handle_hold_id(svc, req, id, resp);
        else
            omo_routes_respond_error(resp, 404, "no such hold", NULL, NULL);
        return true;
    }
    bool pause = path_id(req->path, "/nodes/", "/pause", id, sizeof id);
    if (pause || path_id(req->path, "/nodes/", "/resume", id, sizeof id)) {
        if (!post)
            omo_routes_respond_error(resp, 405, "use POST", NULL, NULL);
        else
            handle_pause(svc, req, tok, id, pause, resp);
        return true;
    }
    return false;
}

/* ---- expiries ----------------------------------------------------------------------------- */

typedef struct due_list {
    json_t *events;
    int64_t now;
    const omo_network *net;
} due_list;

static void due_cb(void *ctx, omo_event_type type, const char *hold_id, int node)
{
    due_list *d = ctx;
    char tbuf[40];
    const char *at = omo_time_format(d->now, tbuf, sizeof tbuf);
    if (type == OMO_EV_HOLD_EXPIRED)
        json_array_append_new(d->events, json_pack("{s:s,s:s,s:s}", "type", "hold.expired",
                                                   "hold_id", hold_id, "at", at));
    else
        json_array_append_new(d->events, json_pack("{s:s,s:s,s:s}", "type", "node.resumed",
                                                   "node_id", d->net->nodes[node].id, "at", at));
}

void omo_avail_due(omo_stream *svc)
{
    double t = omo_stream_now();
    if (t < svc->next_due)
        return;
    svc->next_due = t + 0.25;
    due_list d = {json_array(), omo_routes_wall_ms(), svc->net};
    omo_engine_due(svc->eng, d.now, due_cb, &d);
    for (size_t i = 0; i < json_array_size(d.events) && !svc->failed; i++) {
        omo_event_error err;
        json_t *ev = json_array_get(d.events, i);
        json_incref(ev);
        if (omo_routes_apply_api(svc, ev, &err) == OMO_APPLY_INVALID && !svc->failed)
            omo_stream_log("[service] expiry refused: %s", err.message);
    }
    json_decref(d.events);
}

/* ---- the availability feed ---------------------------------------------------------------- */

static uint64_t mix64(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

void omo_avail_feed(omo_stream *svc, omo_stock *st, bool publish)
{
    if (!svc->conf->topic_availability)
        return;
    omo_avail a;
    omo_engine_avail(svc->eng, st, NULL, &a);
    uint64_t h =
        mix64(mix64(mix64(mix64(1, (uint64_t)a.atp), (uint64_t)a.on_hand), (uint64_t)a.reserved),
              (uint64_t)a.held);
    h = mix64(h, a.paused) | 1; /* never 0: 0 is "never published" */
    if (h == st->fed)
        return;
    st->fed = h;
    if (!publish)
        return;
    const omo_node *nd = &svc->net->nodes[st->node];
    const char *sku = omo_inventory_sku_name(omo_engine_inventory(svc->eng), st->sku);
    omo_strbuf key = {0}, t = {0};
    omo_strbuf_printf(&key, "%s/%s", nd->id, sku);
    char tbuf[40];
    omo_strbuf_printf(&t, "{\"type\":\"availability\",\"node_id\":");
    put_string(&t, nd->id);
    omo_strbuf_printf(&t, ",\"sku\":");
    put_string(&t, sku);
    omo_strbuf_printf(
        &t, ",\"atp\":%lld,\"on_hand\":%lld,\"reserved\":%lld,\"held\":%lld%s,\"at\":\"%s\"}",
        (long long)a.atp, (long long)a.on_hand, (long long)a.reserved, (long long)a.held,
        a.paused ? ",\"paused\":true" : "",
        omo_time_format(omo_engine_clock(svc->eng), tbuf, sizeof tbuf));
    omo_outbox_add(svc, OMO_TOPIC_AVAILABILITY, key.p, key.len, t.p, t.len);
    free(key.p);
    free(t.p);
}
