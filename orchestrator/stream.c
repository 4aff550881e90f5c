#include "stream.h"

#include "diff.h"
#include "engine.h"
#include "event.h"
#include "picklist.h"
#include "strbuf.h"
#include "yamldoc.h"

#include <jansson.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LATENCY_BUCKETS 12
static const double latency_bounds[LATENCY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                       0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
#define BATCH_BUCKETS 8
static const double batch_bounds[BATCH_BUCKETS] = {1, 10, 50, 100, 500, 1000, 2000, 5000};

/* Events that come through the HTTP API (pick confirmations, ships, collections) are applied and
 * recorded like input events, under this pseudo-topic, so that a replay repeats them. */
#define TOPIC_API ((omo_topic)OMO_TOPICS)

/* A queued HTTP request, answered by the service thread. */
typedef struct http_job {
    const omo_http_request *req;
    omo_http_response *resp;
    bool done;
    struct http_job *next;
} http_job;

/* Counters for /metrics, by label. */
typedef struct counter {
    char labels[160];
    uint64_t value;
} counter;

typedef struct counter_set {
    counter *v;
    size_t n, cap;
} counter_set;

typedef struct histogram {
    uint64_t buckets[16];
    uint64_t count;
    double sum;
} histogram;

/* A message the broker confirmed without saying where it stored it: librdkafka's idempotent
 * producer reports a retried write that the broker had already stored (duplicate sequence
 * number) as delivered with an invalid offset. */
typedef struct unplaced_delivery {
    int64_t seq;
    omo_topic topic;
    int32_t partition;
    bool placed;
} unplaced_delivery;

/* Seqs of the messages produced and not yet confirmed, ascending (a confirmed one is negated
 * until it reaches the front): the lowest is where a successor would have to start looking
 * for what to send again. Messages go out in seq order but for adopted ones, so adding is
 * nearly always appending. */
typedef struct seq_set {
    int64_t *v;
    size_t head, n, cap;
} seq_set;

static void seqs_add(seq_set *s, int64_t seq)
{
    if (s->n == s->cap) { /* squeeze the confirmed out before growing: one may stay unconfirmed */
        size_t k = 0;
        for (size_t i = s->head; i < s->n; i++)
            if (s->v[i] > 0)
                s->v[k++] = s->v[i];
        s->head = 0;
        s->n = k;
    }
    omo_grow((void **)&s->v, &s->cap, s->n + 1, sizeof *s->v);
    size_t i = s->n++;
    for (; i > s->head && llabs(s->v[i - 1]) > seq; i--)
        s->v[i] = s->v[i - 1];
    s->v[i] = seq;
}

static void seqs_remove(seq_set *s, int64_t seq)
{
    size_t lo = s->head, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (llabs(s->v[mid]) < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n && s->v[lo] == seq)
        s->v[lo] = -seq;
    while (s->head < s->n && s->v[s->head] < 0)
        s->head++;
}

/* The lowest unconfirmed seq, or limit when none is lower. */
static int64_t seqs_low(const seq_set *s, int64_t limit)
{
    return s->head < s->n && s->v[s->head] < limit ? s->v[s->head] : limit;
}

/* A batch handed to the commit thread: its arrays belong to it until it is finished. */
typedef struct flight {
    bool active, threaded;
    atomic_bool done; /* the commit thread has finished: the batch can be sent */
    pthread_t thread;
    omo_stream *svc;
    omo_batch b;
    omo_applied_event *events;
    omo_out_msg *outbox;
    omo_stock_row *stock;
    omo_delivery *delivered;
    omo_position *positions;
    int rc;
} flight;

struct omo_stream {
    flight fl; /* the batch being committed while the next one is applied */
    const omo_svcconf *conf;
    omo_network *net;
    omo_rules *rules;
    omo_engine *eng;
    omo_bus bus;
    omo_bus_events bus_events;
    omo_store store;
    omo_stream_opts opts;
    int32_t out_parts[OMO_TOPICS];
    omo_rules **versions; /* every rules version loaded, the live one included; owned */
    size_t nversions, capversions;
    bool replaying;
    const omo_rules *replay_rules; /* the rules the replaying engine decides under */
    bool failed;                   /* a change could not be committed: the loop must stop */

    int64_t next_applied_seq, next_outbox_seq;

    /* Several processes (see "several processes" below) */
    int32_t instance;         /* this process's instance in the store */
    bool lease;               /* it holds the apply lease */
    bool behind;              /* with the lease, but the others' latest events not applied */
    double lease_since;       /* when it took the lease */
    int others;               /* other instances alive when last looked */
    double next_housekeeping; /* when to say it is alive and look for gone instances again */
    omo_position *positions;
    size_t npositions, cappositions;
    bool *position_dirty;

    /* the batch in hand */
    omo_applied_event *events;
    size_t nevents, capevents;
    omo_out_msg *outbox;
    size_t noutbox, capoutbox;
    omo_stock_row *stock;
    size_t nstock, capstock;
    omo_delivery *delivered;
    size_t ndelivered, capdelivered;
    seq_set unconfirmed;         /* produced, not yet confirmed (with an offset) */
    unplaced_delivery *unplaced; /* confirmed without an offset: placed before the commit */
    size_t nunplaced, capunplaced;
    char *json;
    size_t capjson;
    omo_event ev;
    omo_in_msg msgs[4096];
    double batch_arrival; /* when the batch's first message was read */
    size_t inflight;      /* produced, not yet confirmed */

    /* metrics */
    counter_set events_by, decisions_by, ships_by, dead_by, statuses_by, reloads_by;
    histogram latency, batch_sizes;
    omo_stream_stats stats;
    double started;

    /* HTTP jobs */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    http_job *jobs;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *topic_label(omo_topic t)
{
    static const char *names[] = {"orders",    "stock",       "allocations",
                                  "shipments", "dead_letter", "api"};
    return names[t];
}

static const char *topic_name(const omo_stream *svc, omo_topic t)
{
    const omo_svcconf *c = svc->conf;
    const char *names[] = {c->topic_orders, c->topic_stock, c->topic_allocations,
                           c->topic_shipments, c->topic_dead_letter};
    return names[t];
}

static void count(counter_set *cs, const char *labels, uint64_t by)
{
    for (size_t i = 0; i < cs->n; i++)
        if (!strcmp(cs->v[i].labels, labels)) {
            cs->v[i].value += by;
            return;
        }
    omo_grow((void **)&cs->v, &cs->cap, cs->n + 1, sizeof(counter));
    snprintf(cs->v[cs->n].labels, sizeof cs->v[cs->n].labels, "%s", labels);
    cs->v[cs->n++].value = by;
}

static void observe(histogram *h, const double *bounds, int nb, double v)
{
    for (int i = 0; i < nb; i++)
        if (v <= bounds[i])
            h->buckets[i]++;
    h->count++;
    h->sum += v;
}

/* ---- positions ------------------------------------------------------------------------- */

static omo_position *position_of(omo_stream *svc, omo_topic t, int32_t p, bool create)
{
    for (size_t i = 0; i < svc->npositions; i++)
        if (svc->positions[i].topic == t && svc->positions[i].partition == p)
            return &svc->positions[i];
    if (!create)
        return NULL;
    if (svc->npositions + 1 > svc->cappositions) {
        svc->cappositions = svc->cappositions ? svc->cappositions * 2 : 16;
        svc->positions = omo_xrealloc(svc->positions, sizeof(omo_position) * svc->cappositions);
        svc->position_dirty = omo_xrealloc(svc->position_dirty, sizeof(bool) * svc->cappositions);
    }
    svc->position_dirty[svc->npositions] = false;
    svc->positions[svc->npositions] = (omo_position){t, p, -1};
    return &svc->positions[svc->npositions++];
}

static int64_t bus_position(void *ctx, omo_topic t, int32_t p)
{
    omo_position *pos = position_of(ctx, t, p, false);
    return pos ? pos->next_offset : -1;
}

static void bus_revoked(void *ctx, omo_topic t, int32_t p)
{
    (void)ctx;
    logf_("[service] partition %s[%d] revoked", topic_label(t), p);
}

static void bus_delivered(void *ctx, int64_t seq, omo_topic t, int32_t p, int64_t offset, bool ok,
                          const char *err)
{
    omo_stream *svc = ctx;
    if (svc->inflight)
        svc->inflight--;
    if (!ok) {
        /* Left in the outbox: sent again at the next start. */
        logf_("[kafka:%s] delivery of seq=%lld failed: %s", topic_label(t), (long long)seq,
              err ? err : "?");
        return;
    }
    svc->stats.delivered++;
    if (offset < 0) { /* unconfirmed until placed */
        omo_grow((void **)&svc->unplaced, &svc->capunplaced, svc->nunplaced + 1,
                 sizeof(unplaced_delivery));
        svc->unplaced[svc->nunplaced++] = (unplaced_delivery){seq, t, p, false};
        return;
    }
    omo_grow((void **)&svc->delivered, &svc->capdelivered, svc->ndelivered + 1,
             sizeof(omo_delivery));
    svc->delivered[svc->ndelivered++] = (omo_delivery){seq, t, p, offset};
    seqs_remove(&svc->unconfirmed, seq);
}

/* ---- the batch ------------------------------------------------------------------------- */

static char *dup_bytes(const char *s, size_t n)
{
    char *d = omo_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static void add_out(omo_stream *svc, omo_topic t, const char *key, size_t key_len,
                    const char *value, size_t value_len)
{
    omo_grow((void **)&svc->outbox, &svc->capoutbox, svc->noutbox + 1, sizeof(omo_out_msg));
    omo_out_msg *m = &svc->outbox[svc->noutbox++];
    memset(m, 0, sizeof *m);
    m->seq = svc->next_outbox_seq++;
    m->topic = t;
    m->partition = omo_bus_partition(key, key_len, svc->out_parts[t]);
    m->key = dup_bytes(key, key_len);
    m->key_len = key_len;
    m->value = dup_bytes(value, value_len);
    m->value_len = value_len;
}

static void add_header(omo_out_msg *m, const char *name, const char *value)
{
    if (m->nheaders < OMO_MAX_HEADERS)
        m->headers[m->nheaders++] = (omo_header){omo_xstrdup(name), omo_xstrdup(value)};
}

static void free_out(omo_out_msg *m)
{
    free((char *)m->key);
    free((char *)m->value);
    for (int h = 0; h < m->nheaders; h++) {
        free((char *)m->headers[h].name);
        free((char *)m->headers[h].value);
    }
}

/* Engine sink: every revision becomes an outbox message (GET /orders/{id} reads it there). */
static void on_allocation(void *ctx, const omo_allocation *a)
{
    omo_stream *svc = ctx;
    if (svc->replaying)
        return;
    size_t n = omo_allocation_json(a, svc->net, &svc->json, &svc->capjson);
    add_out(svc, OMO_TOPIC_ALLOCATIONS, a->order_id, strlen(a->order_id), svc->json, n - 1);
    char labels[160];
    snprintf(labels, sizeof labels, "status=\"%s\"", omo_alloc_status_name(a->status));
    count(&svc->decisions_by, labels, 1);
    for (int s = 0; s < a->nships; s++) {
        snprintf(labels, sizeof labels, "method=\"%s\"", omo_method_name(a->ships[s].method));
        count(&svc->ships_by, labels, 1);
    }
    if (a->revision == 1)
        observe(&svc->latency, latency_bounds, LATENCY_BUCKETS, now_s() - svc->batch_arrival);
}

/* Engine status sink: every shipment status becomes an outbox message. */
static void on_status(void *ctx, const omo_shipment_status *st)
{
    omo_stream *svc = ctx;
    if (svc->replaying)
        return;
    size_t n = omo_shipment_status_json(st, svc->net, &svc->json, &svc->capjson);
    add_out(svc, OMO_TOPIC_SHIPMENTS, st->order_id, strlen(st->order_id), svc->json, n - 1);
    char labels[160];
    snprintf(labels, sizeof labels, "status=\"%s\"", omo_ship_state_name(st->status));
    count(&svc->statuses_by, labels, 1);
}

static void dead_letter(omo_stream *svc, const omo_in_msg *m, const omo_event_error *err)
{
    add_out(svc, OMO_TOPIC_DEAD_LETTER, m->key ? m->key : "", m->key ? m->key_len : 0,
            m->value ? m->value : "", m->value ? m->value_len : 0);
    omo_out_msg *o = &svc->outbox[svc->noutbox - 1];
    char num[32];
    add_header(o, "omo.error.reason", err->reason);
    add_header(o, "omo.error.field", err->field);
    add_header(o, "omo.source.topic", topic_name(svc, m->topic));
    snprintf(num, sizeof num, "%d", m->partition);
    add_header(o, "omo.source.partition", num);
    snprintf(num, sizeof num, "%lld", (long long)m->offset);
    add_header(o, "omo.source.offset", num);
    char labels[160];
    snprintf(labels, sizeof labels, "reason=\"%s\"", err->reason);
    count(&svc->dead_by, labels, 1);
    svc->stats.dead_letters++;
    logf_("[service] dead letter %s[%d]@%lld: %s", topic_label(m->topic), m->partition,
          (long long)m->offset, err->message);
}

/* Applies one event (live or replayed). Returns the result label. */
static const char *apply_value(omo_stream *svc, const char *value, size_t len, omo_event_error *err,
                               omo_event_type *type)
{
    memset(err, 0, sizeof *err);
    if (!omo_event_parse(value, len, svc->net, &svc->ev, err))
        return "invalid";
    *type = svc->ev.type;
    switch (omo_engine_apply(svc->eng, &svc->ev, err)) {
    case OMO_APPLY_OK:
        return "applied";
    case OMO_APPLY_DUPLICATE:
        return "duplicate";
    case OMO_APPLY_CONFLICT:
        return "conflict";
    default:
        return "invalid";
    }
}

static void take_message(omo_stream *svc, const omo_in_msg *m)
{
    omo_position *pos = position_of(svc, m->topic, m->partition, true);
    if (pos->next_offset >= 0 && m->offset < pos->next_offset)
        return; /* delivered again after a rebalance or restart: already applied */
    svc->stats.events_in++;
    omo_event_error err;
    omo_event_type type = OMO_EV_ORDER_CREATED;
    const char *result = apply_value(svc, m->value ? m->value : "", m->value_len, &err, &type);
    char labels[160];
    snprintf(labels, sizeof labels, "topic=\"%s\",type=\"%s\",result=\"%s\"", topic_label(m->topic),
             strcmp(result, "invalid") ? omo_event_type_name(type) : "?", result);
    count(&svc->events_by, labels, 1);
    if (!strcmp(result, "invalid") || !strcmp(result, "conflict"))
        dead_letter(svc, m, &err);
    else if (!strcmp(result, "duplicate"))
        svc->stats.duplicates++;
    else
        svc->stats.applied++;

    omo_grow((void **)&svc->events, &svc->capevents, svc->nevents + 1, sizeof(omo_applied_event));
    svc->events[svc->nevents++] =
        (omo_applied_event){svc->next_applied_seq++,
                            m->topic,
                            m->partition,
                            m->offset,
                            dup_bytes(m->value ? m->value : "", m->value_len),
                            m->value_len,
                            svc->rules->version_hash};
    pos->next_offset = m->offset + 1;
    svc->position_dirty[pos - svc->positions] = true;
}

static void stock_row(void *ctx, const omo_stock *st)
{
    omo_stream *svc = ctx;
    omo_grow((void **)&svc->stock, &svc->capstock, svc->nstock + 1, sizeof(omo_stock_row));
    svc->stock[svc->nstock++] =
        (omo_stock_row){svc->net->nodes[st->node].id,
                        omo_inventory_sku_name(omo_engine_inventory(svc->eng), st->sku),
                        st->on_hand, st->reserved, st->bin};
}

static void clear_batch(omo_stream *svc)
{
    for (size_t i = 0; i < svc->nevents; i++)
        free((char *)svc->events[i].value);
    svc->nevents = 0;
    for (size_t i = 0; i < svc->noutbox; i++)
        free_out(&svc->outbox[i]);
    svc->noutbox = 0;
    svc->nstock = 0;
}

/* Retries fn's outside-system call with backoff within the budget. */
#define WITH_RETRY(svc, what, call)                                                                \
    ({                                                                                             \
        omo_io io_;                                                                                \
        int delay_ = 50;                                                                           \
        double until_ = now_s() + (svc)->opts.retry_budget_ms / 1000.0;                            \
        for (;;) {                                                                                 \
            char err[512] = "";                                                                    \
            io_ = (call);                                                                          \
            if (io_ == OMO_IO_OK)                                                                  \
                break;                                                                             \
            if (io_ == OMO_IO_FATAL || now_s() > until_) {                                         \
                logf_("[service] %s failed for good: %s", what, err);                              \
                break;                                                                             \
            }                                                                                      \
            logf_("[service] %s failed, retrying in %d ms: %s", what, delay_, err);                \
            usleep((useconds_t)delay_ * 1000);                                                     \
            delay_ = delay_ < 2000 ? delay_ * 2 : 2000;                                            \
        }                                                                                          \
        io_;                                                                                       \
    })

typedef struct place_ctx {
    omo_stream *svc;
    omo_topic topic;
    int32_t partition;
} place_ctx;

static void place_cb(void *ctx, int64_t seq, int64_t offset)
{
    place_ctx *pc = ctx;
    omo_stream *svc = pc->svc;
    for (size_t i = 0; i < svc->nunplaced; i++) {
        unplaced_delivery *u = &svc->unplaced[i];
        if (u->seq == seq && u->topic == pc->topic && u->partition == pc->partition && !u->placed) {
            u->placed = true;
            omo_grow((void **)&svc->delivered, &svc->capdelivered, svc->ndelivered + 1,
                     sizeof(omo_delivery));
            svc->delivered[svc->ndelivered++] = (omo_delivery){seq, u->topic, u->partition, offset};
            seqs_remove(&svc->unconfirmed, seq);
            return;
        }
    }
}

/* Finds where the messages confirmed without an offset are, by reading their partitions back
 * from the confirmed end in the store: every confirmation committed so far was reported before
 * them, so they lie beyond it. This must happen before any later confirmation of the same
 * partition is committed, or the confirmed end would pass them and a read-back after a crash
 * would not find them, and send them twice. Returns 0, or 1 on a fault beyond the budget. */
/* Reads a partition back from where an instance's confirmations end on it: what that
 * instance sent and has not seen confirmed lies beyond. Returns 0, or 1 on a fault beyond the
 * budget. */
static int read_back(omo_stream *svc, int32_t instance, omo_topic topic, int32_t partition,
                     void (*cb)(void *ctx, int64_t seq, int64_t offset), void *ctx)
{
    int64_t from = 0;
    return WITH_RETRY(svc, "[postgres] confirmed end",
                      svc->store.ops->confirmed_end(svc->store.self, instance, topic, partition,
                                                    &from, err, sizeof err)) != OMO_IO_OK ||
           WITH_RETRY(svc, "[kafka] read back",
                      svc->bus.ops->scan(svc->bus.self, topic, partition, from, cb, ctx, err,
                                         sizeof err)) != OMO_IO_OK;
}

static int place_unplaced(omo_stream *svc)
{
    for (size_t i = 0; i < svc->nunplaced; i++) {
        unplaced_delivery *u = &svc->unplaced[i];
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            if (svc->unplaced[j].topic == u->topic && svc->unplaced[j].partition == u->partition)
                first = false;
        if (!first)
            continue;
        place_ctx pc = {svc, u->topic, u->partition};
        if (read_back(svc, svc->instance, u->topic, u->partition, place_cb, &pc))
            return 1;
    }
    size_t placed = 0;
    for (size_t i = 0; i < svc->nunplaced; i++) {
        const unplaced_delivery *u = &svc->unplaced[i];
        if (u->placed)
            placed++;
        else /* not on the topic after all: left in the outbox, sent again at the next start */
            logf_("[kafka:%s] seq=%lld was confirmed but is not on partition %d",
                  topic_label(u->topic), (long long)u->seq, u->partition);
    }
    logf_("[kafka] %zu messages confirmed without an offset, %zu found by reading back",
          svc->nunplaced, placed);
    svc->nunplaced = 0;
    return 0;
}

static int produce_all(omo_stream *svc, const omo_out_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        omo_io io = WITH_RETRY(svc, "[kafka] produce",
                               svc->bus.ops->produce(svc->bus.self, &msgs[i], err, sizeof err));
        if (io != OMO_IO_OK)
            return 1;
        seqs_add(&svc->unconfirmed, msgs[i].seq);
        svc->inflight++;
        svc->stats.produced++;
    }
    return 0;
}

/* ---- committing one batch while applying the next ------------------------------------------
 *
 * The database commit of batch N runs on a thread of its own while batch N+1 is polled and
 * applied; N's messages are still sent only once N is committed, so nothing changes for
 * exactly-once. They go out as soon as the commit is done (the applying loop looks every 64
 * messages), not after N+1: a batch waits for one commit, and the next batch is what arrived
 * meanwhile, so batches stay small when the load is. */

static void *flight_run(void *arg)
{
    flight *fl = arg;
    omo_stream *svc = fl->svc;
    omo_io io = WITH_RETRY(svc, "[postgres] commit",
                           svc->store.ops->commit(svc->store.self, &fl->b, err, sizeof err));
    fl->rc = io != OMO_IO_OK;
    atomic_store(&fl->done, true);
    return NULL;
}

/* Hands the batch in hand to a commit, on the commit thread when threaded, else at once; the
 * next batch fills fresh arrays. */
static int flight_start(omo_stream *svc, bool threaded)
{
    if (svc->nunplaced && place_unplaced(svc))
        return 1;
    omo_inventory_drain_dirty(omo_engine_inventory(svc->eng), stock_row, svc);
    if (!svc->nevents && !svc->noutbox && !svc->ndelivered && !svc->nstock)
        return 0;
    flight *fl = &svc->fl;
    fl->svc = svc;
    fl->positions = omo_xmalloc(sizeof(omo_position) * (svc->npositions + 1));
    size_t npos = 0;
    for (size_t i = 0; i < svc->npositions; i++)
        if (svc->position_dirty[i]) {
            fl->positions[npos++] = svc->positions[i];
            svc->position_dirty[i] = false;
        }
    /* A bin points into the inventory's records, which the next batch may move. */
    for (size_t i = 0; i < svc->nstock; i++)
        svc->stock[i].bin = omo_xstrdup(svc->stock[i].bin ? svc->stock[i].bin : "");
    fl->b = (omo_batch){
        .events = svc->events,
        .nevents = svc->nevents,
        .positions = fl->positions,
        .npositions = npos,
        .outbox = svc->outbox,
        .noutbox = svc->noutbox,
        .stock = svc->stock,
        .nstock = svc->nstock,
        .delivered = svc->delivered,
        .ndelivered = svc->ndelivered,
        .unconfirmed_from =
            seqs_low(&svc->unconfirmed, svc->noutbox ? svc->outbox[0].seq : svc->next_outbox_seq)};
    fl->events = svc->events, fl->outbox = svc->outbox;
    fl->stock = svc->stock, fl->delivered = svc->delivered;
    svc->events = NULL, svc->nevents = svc->capevents = 0;
    svc->outbox = NULL, svc->noutbox = svc->capoutbox = 0;
    svc->stock = NULL, svc->nstock = svc->capstock = 0;
    svc->delivered = NULL, svc->ndelivered = svc->capdelivered = 0;
    atomic_store(&fl->done, false);
    fl->threaded = threaded && pthread_create(&fl->thread, NULL, flight_run, fl) == 0;
    if (!fl->threaded)
        flight_run(fl);
    fl->active = true;
    return 0;
}

/* Waits for the batch being committed, then sends what it produced. */
static int flight_finish(omo_stream *svc)
{
    flight *fl = &svc->fl;
    if (!fl->active)
        return 0;
    if (fl->threaded)
        pthread_join(fl->thread, NULL);
    fl->threaded = false;
    fl->active = false;
    const omo_batch *b = &fl->b;
    int rc = fl->rc;
    if (!rc) {
        if (b->npositions && svc->bus.ops && svc->bus.ops->committed)
            svc->bus.ops->committed(svc->bus.self, b->positions, b->npositions);
        if (b->nevents) {
            svc->stats.batches++;
            observe(&svc->batch_sizes, batch_bounds, BATCH_BUCKETS, (double)b->nevents);
        }
        rc = produce_all(svc, b->outbox, b->noutbox);
    }
    for (size_t i = 0; i < b->nevents; i++)
        free((char *)b->events[i].value);
    for (size_t i = 0; i < b->noutbox; i++)
        free_out(&fl->outbox[i]);
    for (size_t i = 0; i < b->nstock; i++)
        free((char *)b->stock[i].bin);
    free(fl->events);
    free(fl->outbox);
    free(fl->stock);
    free(fl->delivered);
    free(fl->positions);
    memset(&fl->b, 0, sizeof fl->b);
    return rc;
}

/* Commits the batch in hand now and sends what it produced. */
static int commit_batch(omo_stream *svc)
{
    return flight_finish(svc) || flight_start(svc, false) || flight_finish(svc);
}

/* Keeps a rules version for as long as the stream lives: applied events in a batch and replays
 * point at its hash. Returns the kept one (an equal version already kept wins). */
static omo_rules *keep_version(omo_stream *svc, omo_rules *rules)
{
    for (size_t i = 0; i < svc->nversions; i++)
        if (svc->versions[i] == rules)
            return rules;
    omo_grow((void **)&svc->versions, &svc->capversions, svc->nversions + 1, sizeof(omo_rules *));
    svc->versions[svc->nversions++] = rules;
    return rules;
}

static omo_rules *find_version(omo_stream *svc, const char *hash)
{
    for (size_t i = 0; i < svc->nversions; i++)
        if (!strcmp(svc->versions[i]->version_hash, hash))
            return svc->versions[i];
    return NULL;
}

typedef struct history_ctx {
    omo_stream *svc;
    char **hashes;
    size_t n, cap;
} history_ctx;

static void history_hash_cb(void *ctx, const char *hash, const char *went_live, const char *by)
{
    (void)went_live, (void)by;
    history_ctx *hc = ctx;
    omo_grow((void **)&hc->hashes, &hc->cap, hc->n + 1, sizeof(char *));
    hc->hashes[hc->n++] = omo_xstrdup(hash);
}

typedef struct text_ctx {
    char *text;
    size_t len;
} text_ctx;

static void rules_text_cb(void *ctx, const char *text, size_t len)
{
    text_ctx *tc = ctx;
    tc->text = text ? dup_bytes(text, len) : NULL;
    tc->len = len;
}

/* Loads every rules version that was ever live, so that a replay decides each event under the
 * rules it was decided under. */
static int load_versions(omo_stream *svc)
{
    history_ctx hc = {svc, NULL, 0, 0};
    if (WITH_RETRY(svc, "[postgres] rules history",
                   svc->store.ops->rules_history(svc->store.self, history_hash_cb, &hc, err,
                                                 sizeof err)) != OMO_IO_OK)
        return 1;
    int rc = 0;
    for (size_t i = 0; i < hc.n; i++) {
        if (!rc && !find_version(svc, hc.hashes[i])) {
            text_ctx tc = {0};
            if (WITH_RETRY(svc, "[postgres] rules text",
                           svc->store.ops->rules_text(svc->store.self, hc.hashes[i], rules_text_cb,
                                                      &tc, err, sizeof err)) != OMO_IO_OK) {
                rc = 1;
            } else if (tc.text) {
                omo_diag diag = {0};
                char name[64];
                snprintf(name, sizeof name, "rules %s", hc.hashes[i]);
                omo_rules *r = omo_rules_parse(name, tc.text, tc.len, svc->net, &diag);
                if (r)
                    keep_version(svc, r);
                else
                    logf_("[service] rules version %s no longer loads against the network",
                          hc.hashes[i]);
                omo_diag_clear(&diag);
                free(tc.text);
            }
        }
        free(hc.hashes[i]);
    }
    free(hc.hashes);
    return rc;
}

/* Sets eng's rules to the version an applied event was decided under, when it is known. */
static void follow_version(omo_stream *svc, omo_engine *eng, const omo_rules **current,
                           const omo_applied_event *ev)
{
    if (!ev->rules_version || !strcmp((*current)->version_hash, ev->rules_version))
        return;
    const omo_rules *r = find_version(svc, ev->rules_version);
    if (r) {
        omo_engine_set_rules(eng, r);
        *current = r;
    }
}

/* ---- HTTP ------------------------------------------------------------------------------ */

static void respond(omo_http_response *resp, int status, const char *type, const char *body)
{
    resp->status = status;
    snprintf(resp->content_type, sizeof resp->content_type, "%s", type);
    resp->body = omo_xstrdup(body);
    resp->body_len = strlen(body);
}

static void metrics_counters(omo_strbuf *t, const char *name, const char *help,
                             const counter_set *cs)
{
    omo_strbuf_printf(t, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < cs->n; i++)
        omo_strbuf_printf(t, "%s{%s} %llu\n", name, cs->v[i].labels,
                          (unsigned long long)cs->v[i].value);
}

static void metrics_histogram(omo_strbuf *t, const char *name, const char *help, const histogram *h,
                              const double *bounds, int nb)
{
    omo_strbuf_printf(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < nb; i++)
        omo_strbuf_printf(t, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
                          (unsigned long long)h->buckets[i]);
    omo_strbuf_printf(t, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %g\n%s_count %llu\n", name,
                      (unsigned long long)h->count, name, h->sum, name,
                      (unsigned long long)h->count);
}

static void handle_metrics(omo_stream *svc, omo_http_response *resp)
{
    omo_strbuf t = {0};
    metrics_counters(&t, "omo_events_total", "Input events by topic, type and result.",
                     &svc->events_by);
    metrics_counters(&t, "omo_decisions_total", "Allocation revisions by status.",
                     &svc->decisions_by);
    metrics_counters(&t, "omo_shipments_total", "Shipments in allocation revisions by method.",
                     &svc->ships_by);
    metrics_counters(&t, "omo_dead_letters_total", "Messages sent to the dead-letter topic.",
                     &svc->dead_by);
    metrics_counters(&t, "omo_shipment_statuses_total", "Shipment status messages by status.",
                     &svc->statuses_by);
    metrics_counters(&t, "omo_rules_reloads_total", "Rules reloads by result.", &svc->reloads_by);
    metrics_histogram(&t, "omo_decision_latency_seconds",
                      "From an order's arrival to its first allocation being queued.",
                      &svc->latency, latency_bounds, LATENCY_BUCKETS);
    metrics_histogram(&t, "omo_batch_size", "Events per committed batch.", &svc->batch_sizes,
                      batch_bounds, BATCH_BUCKETS);
    omo_strbuf_printf(&t,
                      "# HELP omo_decisions_unproven_total Decisions whose solver budget ran out "
                      "before the plan was proven optimal.\n"
                      "# TYPE omo_decisions_unproven_total counter\nomo_decisions_unproven_total "
                      "%llu\n",
                      (unsigned long long)omo_engine_stats_get(svc->eng)->unproven);
    int64_t lag = svc->bus.ops->lag ? svc->bus.ops->lag(svc->bus.self) : -1;
    omo_strbuf_printf(&t,
                      "# HELP omo_consumer_lag Messages behind the input topics' ends.\n"
                      "# TYPE omo_consumer_lag gauge\nomo_consumer_lag %lld\n",
                      (long long)lag);
    omo_strbuf_printf(
        &t,
        "# HELP omo_rules_version_info The rules in force.\n"
        "# TYPE omo_rules_version_info gauge\nomo_rules_version_info{version=\"%s\"} 1\n",
        svc->rules->version_hash);
    omo_strbuf_printf(&t,
                      "# HELP omo_outbox_inflight Messages produced and not yet confirmed.\n"
                      "# TYPE omo_outbox_inflight gauge\nomo_outbox_inflight %zu\n",
                      svc->inflight);
    resp->status = 200;
    snprintf(resp->content_type, sizeof resp->content_type, "text/plain; version=0.0.4");
    resp->body = t.p ? t.p : omo_xstrdup("");
    resp->body_len = t.len;
}

/* Appends a JSON value to a comma-separated list. */
static void list_cb(void *ctx, const char *body, size_t len)
{
    omo_strbuf *t = ctx;
    omo_strbuf_printf(t, "%s%.*s", t->len ? "," : "", (int)len, body);
}

/* GET /orders/{id}: every revision and every shipment status of the order. */
static void handle_order(omo_stream *svc, const char *order_id, omo_http_response *resp)
{
    omo_strbuf revs = {0}, statuses = {0};
    char err[512] = "";
    if (svc->store.ops->order_messages(svc->store.self, OMO_TOPIC_ALLOCATIONS, order_id, list_cb,
                                       &revs, err, sizeof err) != OMO_IO_OK ||
        svc->store.ops->order_messages(svc->store.self, OMO_TOPIC_SHIPMENTS, order_id, list_cb,
                                       &statuses, err, sizeof err) != OMO_IO_OK) {
        free(revs.p);
        free(statuses.p);
        respond(resp, 503, "application/json", "{\"error\":\"database unavailable\"}");
        return;
    }
    if (!revs.len) {
        free(revs.p);
        free(statuses.p);
        respond(resp, 404, "application/json", "{\"error\":\"no such order\"}");
        return;
    }
    json_t *idj = json_string(order_id);
    char *ids = json_dumps(idj, JSON_ENCODE_ANY);
    json_decref(idj);
    omo_strbuf t = {0};
    omo_strbuf_printf(&t, "{\"order_id\":%s,\"revisions\":[%.*s],\"shipment_statuses\":[%.*s]}",
                      ids ? ids : "\"\"", (int)revs.len, revs.p ? revs.p : "", (int)statuses.len,
                      statuses.p ? statuses.p : "");
    free(ids);
    free(revs.p);
    free(statuses.p);
    resp->status = 200;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->body = t.p;
    resp->body_len = t.len;
}

static void respond_json(omo_http_response *resp, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    resp->status = status;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->body = text ? text : omo_xstrdup("{}");
    resp->body_len = strlen(resp->body);
}

static void respond_error(omo_http_response *resp, int status, const char *error, const char *key,
                          const char *value)
{
    json_t *body = json_pack("{s:s}", "error", error);
    if (key)
        json_object_set_new(body, key, json_string(value ? value : ""));
    respond_json(resp, status, body);
}

static int lease_take(omo_stream *svc);

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Applies an event from the HTTP API like an input event, then commits and sends what it
 * produced before answering. Nothing of a refused event is kept. */
static omo_apply_result apply_api(omo_stream *svc, json_t *event, omo_event_error *err)
{
    /* One commit at a time on the store's connection, and in order, under the lease. */
    if (flight_finish(svc) || lease_take(svc)) {
        svc->failed = true;
        json_decref(event);
        memset(err, 0, sizeof *err);
        snprintf(err->message, sizeof err->message, "the database did not take the change");
        return OMO_APPLY_INVALID;
    }
    char *text = json_dumps(event, JSON_COMPACT);
    json_decref(event);
    memset(err, 0, sizeof *err);
    if (!omo_event_parse(text, strlen(text), svc->net, &svc->ev, err)) {
        free(text);
        return OMO_APPLY_INVALID;
    }
    omo_apply_result r = omo_engine_apply(svc->eng, &svc->ev, err);
    if (r != OMO_APPLY_OK) {
        free(text);
        return r;
    }
    omo_grow((void **)&svc->events, &svc->capevents, svc->nevents + 1, sizeof(omo_applied_event));
    svc->events[svc->nevents++] = (omo_applied_event){
        svc->next_applied_seq++, TOPIC_API, 0, 0, text, strlen(text), svc->rules->version_hash};
    count(&svc->events_by, "topic=\"api\",type=\"store\",result=\"applied\"", 1);
    if (commit_batch(svc)) {
        /* The view is ahead of the database: only a restart (a replay) can set it right. */
        svc->failed = true;
        snprintf(err->message, sizeof err->message, "the database did not take the change");
        return OMO_APPLY_INVALID;
    }
    return OMO_APPLY_OK;
}

/* The caller may act for this store: an ops token, or the store's own token. */
static bool may_act_for(const omo_token *tok, const char *store_id)
{
    return tok->role == OMO_ROLE_OPS || (tok->store && !strcmp(tok->store, store_id));
}

/* Saves a validated rules version and swaps it in: between two decisions, since requests and
 * signals are handled between batches. Returns false (old rules still live) when the version
 * cannot be recorded. */
static bool swap_rules(omo_stream *svc, omo_rules *next, const char *text, size_t len,
                       const char *by)
{
    char *copy = dup_bytes(text, len);
    omo_io io = WITH_RETRY(
        svc, "[postgres] save rules",
        svc->store.ops->save_rules(svc->store.self, next->version_hash, copy, by, err, sizeof err));
    free(copy);
    if (io != OMO_IO_OK) {
        omo_rules_destroy(next);
        return false;
    }
    omo_rules *kept = find_version(svc, next->version_hash);
    if (kept)
        omo_rules_destroy(next);
    else
        kept = keep_version(svc, next);
    svc->rules = kept;
    omo_engine_set_rules(svc->eng, kept);
    count(&svc->reloads_by, "result=\"ok\"", 1);
    logf_("[service] rules version %s is live (by %s)", kept->version_hash, by);
    return true;
}

/* Reads and validates rules text; returns the rules, or NULL with every error in diag. */
static omo_rules *parse_rules(omo_stream *svc, const char *name, const char *text, size_t len,
                              omo_diag *diag)
{
    omo_rules *r = omo_rules_parse(name, text, len, svc->net, diag);
    if (!r) {
        count(&svc->reloads_by, "result=\"invalid\"", 1);
        for (size_t i = 0; i < diag->count; i++)
            logf_("[service] rules refused: %s", diag->lines[i]);
    }
    return r;
}

/* Re-reads the routing file. Returns 0, 1 (invalid: diag says why) or 2 (not recorded). */
static int reload_file(omo_stream *svc, const char *by, omo_diag *diag)
{
    char *text = NULL;
    size_t len = 0;
    if (!omo_yaml_read_file(svc->conf->routing_path, &text, &len, diag))
        return 1;
    omo_rules *next = parse_rules(svc, svc->conf->routing_path, text, len, diag);
    int rc = !next ? 1 : swap_rules(svc, next, text, len, by) ? 0 : 2;
    free(text);
    return rc;
}

/* Who changed the rules: the role and a fingerprint of the token, never the token. */
static void token_by(const omo_token *tok, const char *how, char *by, size_t len)
{
    snprintf(by, len, "%s by %s token %08llx", how, tok->role == OMO_ROLE_OPS ? "ops" : "store",
             (unsigned long long)(omo_hash_str(tok->token) & 0xffffffffULL));
}

static json_t *diag_json(const omo_diag *diag)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < diag->count; i++)
        json_array_append_new(arr, json_string(diag->lines[i]));
    return arr;
}

typedef struct history_json_ctx {
    json_t *arr;
} history_json_ctx;

static void history_json_cb(void *ctx, const char *hash, const char *went_live, const char *by)
{
    json_array_append_new(
        ((history_json_ctx *)ctx)->arr,
        json_pack("{s:s,s:s,s:s}", "version", hash, "went_live", went_live, "by", by));
}

static void handle_rules(omo_stream *svc, const omo_http_request *req, const omo_token *tok,
                         omo_http_response *resp)
{
    bool get = !strcmp(req->method, "GET"), put = !strcmp(req->method, "PUT");
    bool reload = !strcmp(req->method, "POST") && !strcmp(req->path, "/rules/reload");
    char err[512] = "", by[96];
    omo_diag diag = {0};
    if (get && !strcmp(req->path, "/rules")) {
        history_json_ctx hc = {json_array()};
        text_ctx tc = {0};
        if (svc->store.ops->rules_history(svc->store.self, history_json_cb, &hc, err, sizeof err) !=
                OMO_IO_OK ||
            svc->store.ops->rules_text(svc->store.self, svc->rules->version_hash, rules_text_cb,
                                       &tc, err, sizeof err) != OMO_IO_OK) {
            json_decref(hc.arr);
            free(tc.text);
            respond_error(resp, 503, "database unavailable", NULL, NULL);
            return;
        }
        json_t *live = json_pack("{s:s,s:s}", "version", svc->rules->version_hash, "path",
                                 svc->conf->routing_path);
        if (tc.text)
            json_object_set_new(live, "text", json_stringn(tc.text, tc.len));
        free(tc.text);
        respond_json(resp, 200, json_pack("{s:o,s:o}", "live", live, "history", hc.arr));
        return;
    }
    if (put && !strcmp(req->path, "/rules")) {
        token_by(tok, "PUT /rules", by, sizeof by);
        omo_rules *next =
            parse_rules(svc, "PUT /rules", req->body ? req->body : "", req->body_len, &diag);
        if (!next) {
            respond_json(
                resp, 422,
                json_pack("{s:s,s:o}", "error", "invalid rules", "errors", diag_json(&diag)));
        } else if (!swap_rules(svc, next, req->body ? req->body : "", req->body_len, by)) {
            respond_error(resp, 503, "the database did not record the rules", NULL, NULL);
        } else {
            /* The file follows, so that a reload or a restart keeps these rules. */
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s.tmp", svc->conf->routing_path);
            FILE *f = fopen(tmp, "w");
            bool written = f && fwrite(req->body, 1, req->body_len, f) == req->body_len;
            written = f && !fclose(f) && written && !rename(tmp, svc->conf->routing_path);
            if (!written)
                logf_("[service] rules are live but %s could not be written",
                      svc->conf->routing_path);
            respond_json(resp, 200,
                         json_pack("{s:s,s:b}", "version", svc->rules->version_hash, "file_written",
                                   written));
        }
        omo_diag_clear(&diag);
        return;
    }
    if (reload) {
        token_by(tok, "POST /rules/reload", by, sizeof by);
        int rc = reload_file(svc, by, &diag);
        if (rc == 1)
            respond_json(
                resp, 422,
                json_pack("{s:s,s:o}", "error", "invalid rules", "errors", diag_json(&diag)));
        else if (rc == 2)
            respond_error(resp, 503, "the database did not record the rules", NULL, NULL);
        else
            respond_json(resp, 200, json_pack("{s:s}", "version", svc->rules->version_hash));
        omo_diag_clear(&diag);
        return;
    }
    respond_error(resp, 405, "GET or PUT /rules, POST /rules/reload or /rules/diff", NULL, NULL);
}

/* Replays every applied event into eng (or into both engines of a diff). */
typedef struct replay_ctx {
    omo_stream *svc;
    omo_engine *eng[2];
    const omo_rules *rules; /* follow the versions, for eng[0] only */
    bool follow;
    omo_event ev;
    uint64_t events;
    int64_t latest_ms; /* the latest event time replayed */
} replay_ctx;

static void replay_into_cb(void *ctx, const omo_applied_event *ae)
{
    replay_ctx *rc = ctx;
    omo_event_error err;
    rc->events++;
    if (rc->follow)
        follow_version(rc->svc, rc->eng[0], &rc->rules, ae);
    if (!omo_event_parse(ae->value, ae->value_len, rc->svc->net, &rc->ev, &err))
        return;
    if (rc->ev.has_at && rc->ev.at_ms > rc->latest_ms)
        rc->latest_ms = rc->ev.at_ms;
    for (int i = 0; i < 2; i++)
        if (rc->eng[i])
            (void)omo_engine_apply(rc->eng[i], &rc->ev, &err);
}

static bool replay_into(omo_stream *svc, replay_ctx *rc)
{
    rc->svc = svc;
    char err[512] = "";
    return svc->store.ops->replay(svc->store.self, 0, replay_into_cb, rc, err, sizeof err) ==
           OMO_IO_OK;
}

static void handle_diff(omo_stream *svc, const omo_http_request *req, omo_http_response *resp)
{
    omo_diag diag = {0};
    omo_rules *proposed =
        parse_rules(svc, "POST /rules/diff", req->body ? req->body : "", req->body_len, &diag);
    if (!proposed) {
        respond_json(resp, 422,
                     json_pack("{s:s,s:o}", "error", "invalid rules", "errors", diag_json(&diag)));
        omo_diag_clear(&diag);
        return;
    }
    char fmt[16] = "json";
    omo_query_param(req->query, "format", fmt, sizeof fmt);
    omo_diff_format format = !strcmp(fmt, "text")   ? OMO_DIFF_TEXT
                             : !strcmp(fmt, "html") ? OMO_DIFF_HTML
                                                    : OMO_DIFF_JSON;
    omo_diff *diff = omo_diff_create(svc->net, svc->rules, proposed);
    replay_ctx *rc = omo_xcalloc(1, sizeof *rc);
    rc->eng[0] = omo_diff_engine(diff, OMO_DIFF_OLD);
    rc->eng[1] = omo_diff_engine(diff, OMO_DIFF_NEW);
    if (!replay_into(svc, rc)) {
        respond_error(resp, 503, "database unavailable", NULL, NULL);
    } else {
        /* The last day: every event replays, so the day starts from the right state, and
         * the report speaks of the orders of the day before the latest event. */
        omo_diff_since(diff, rc->latest_ms - 24LL * 3600 * 1000);
        omo_diff_report rep;
        omo_diff_report_build(diff, &rep);
        omo_diff_info info = {.network_path = svc->conf->network_path,
                              .events_path = "applied events",
                              .events = rc->events};
        size_t len = 0;
        char *body = omo_diff_render(diff, &rep, &info, format, &len);
        omo_diff_report_clear(&rep);
        resp->status = 200;
        snprintf(resp->content_type, sizeof resp->content_type, "%s",
                 format == OMO_DIFF_HTML   ? "text/html; charset=utf-8"
                 : format == OMO_DIFF_TEXT ? "text/plain; charset=utf-8"
                                           : "application/json");
        resp->body = body;
        resp->body_len = len;
    }
    free(rc);
    omo_diff_destroy(diff);
    omo_rules_destroy(proposed);
    omo_diag_clear(&diag);
}

typedef struct explain_ctx {
    const omo_network *net;
    bool json;
    char *latest;
} explain_ctx;

static void keep_explanation(void *ctx, const omo_explanation *ex)
{
    explain_ctx *ec = ctx;
    free(ec->latest);
    ec->latest = ec->json ? omo_explain_json(ex, ec->net) : omo_explain_text(ex, ec->net);
}

/* GET /orders/{id}/explain: the decisions replayed under the rules they were made under. */
static void handle_explain(omo_stream *svc, const omo_http_request *req, const char *order_id,
                           omo_http_response *resp)
{
    char fmt[16] = "text";
    omo_query_param(req->query, "format", fmt, sizeof fmt);
    explain_ctx ec = {svc->net, !strcmp(fmt, "json"), NULL};
    const omo_rules *first = svc->nversions ? svc->versions[0] : svc->rules;
    replay_ctx *rc = omo_xcalloc(1, sizeof *rc);
    rc->eng[0] = omo_engine_create(svc->net, first, NULL, NULL);
    rc->rules = first;
    rc->follow = true;
    omo_engine_explain(rc->eng[0], order_id, keep_explanation, &ec);
    if (!replay_into(svc, rc))
        respond_error(resp, 503, "database unavailable", NULL, NULL);
    else if (!ec.latest)
        respond_error(resp, 404, "no such order", "order_id", order_id);
    else {
        resp->status = 200;
        snprintf(resp->content_type, sizeof resp->content_type, "%s",
                 ec.json ? "application/json" : "text/plain; charset=utf-8");
        resp->body = ec.latest;
        resp->body_len = strlen(ec.latest);
        ec.latest = NULL;
    }
    free(ec.latest);
    omo_engine_destroy(rc->eng[0]);
    free(rc);
}

static void handle_picklist(omo_stream *svc, const omo_http_request *req, const omo_token *tok,
                            const char *bearer, const char *store_id, omo_http_response *resp)
{
    int node = omo_network_find(svc->net, store_id);
    if (node < 0 || svc->net->nodes[node].type != OMO_NODE_STORE) {
        respond_error(resp, 404, "no such store", "store_id", store_id);
        return;
    }
    if (!may_act_for(tok, store_id)) {
        respond_error(resp, 403, "this token may not see another store's picks", "store_id",
                      store_id);
        return;
    }
    char format[16] = "json", maxbuf[16];
    if (omo_query_param(req->query, "format", format, sizeof format) == NULL)
        snprintf(format, sizeof format, "json");
    int max_orders = 0;
    if (omo_query_param(req->query, "max_orders", maxbuf, sizeof maxbuf)) {
        char *end;
        long v = strtol(maxbuf, &end, 10);
        if (*end || v < 1 || v > 100000) {
            respond_error(resp, 400, "max_orders must be a positive integer", "field",
                          "max_orders");
            return;
        }
        max_orders = (int)v;
    }
    omo_picklist pl;
    omo_engine_picklist(svc->eng, node, max_orders, wall_ms(), &pl);
    omo_picklist_sort(&pl);
    size_t len = 0;
    char *body = omo_picklist_render(&pl, format, true, bearer, &len);
    omo_picklist_free(&pl);
    if (!body) {
        respond_error(resp, 400, "format must be text, csv, json or html", "field", "format");
        return;
    }
    static const struct {
        const char *format, *type;
    } types[] = {{"text", "text/plain; charset=utf-8"},
                 {"csv", "text/csv; charset=utf-8"},
                 {"json", "application/json"},
                 {"html", "text/html; charset=utf-8"}};
    resp->status = 200;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(types[i].format, format))
            snprintf(resp->content_type, sizeof resp->content_type, "%s", types[i].type);
    resp->body = body;
    resp->body_len = len;
}

/* POST /picks/{id}/confirm, /shipments/{id}/ship, /shipments/{id}/collect. */
static void handle_store_step(omo_stream *svc, const omo_http_request *req, const omo_token *tok,
                              const char *shipment_id, omo_event_type type, omo_http_response *resp)
{
    omo_ship_state state;
    int pickup = -1;
    int node = omo_engine_find_shipment(svc->eng, shipment_id, &state, &pickup);
    if (node < 0) {
        respond_error(resp, 404, "no such shipment", "shipment_id", shipment_id);
        return;
    }
    /* The pickup store hands a transfer-fed order to its customer: it may mark it collected. */
    bool at_pickup = type == OMO_EV_SHIPMENT_COLLECTED && pickup >= 0 &&
                     may_act_for(tok, svc->net->nodes[pickup].id);
    if (!at_pickup && !may_act_for(tok, svc->net->nodes[node].id)) {
        respond_error(resp, 403, "this token may not act on another store's shipments",
                      "shipment_id", shipment_id);
        return;
    }
    char at[40];
    json_t *event = json_pack("{s:s,s:s,s:s}", "type", omo_event_type_name(type), "shipment_id",
                              shipment_id, "at", omo_time_format(wall_ms(), at, sizeof at));
    if (type == OMO_EV_PICK_CONFIRMED && req->body_len) {
        json_error_t jerr;
        json_t *body = json_loadb(req->body, req->body_len, 0, &jerr);
        if (!body || !json_is_object(body)) {
            json_decref(body);
            json_decref(event);
            respond_error(resp, 400, body ? "the body must be a JSON object" : jerr.text, "field",
                          "");
            return;
        }
        json_t *lines = json_object_get(body, "lines");
        if (lines)
            json_object_set(event, "lines", lines);
        json_decref(body);
    }
    omo_event_error err;
    switch (apply_api(svc, event, &err)) {
    case OMO_APPLY_OK:
        omo_engine_find_shipment(svc->eng, shipment_id, &state, NULL);
        respond_json(resp, 200,
                     json_pack("{s:s,s:s}", "shipment_id", shipment_id, "status",
                               omo_ship_state_name(state)));
        return;
    case OMO_APPLY_CONFLICT:
        respond_error(resp, 409, err.message, "state", err.field);
        return;
    default:
        respond_error(resp, svc->failed ? 503 : 400, err.message, "field", err.field);
        return;
    }
}

static void handle_request(omo_stream *svc, const omo_http_request *req, omo_http_response *resp)
{
    bool get = !strcmp(req->method, "GET");
    if (get && !strcmp(req->path, "/readyz")) {
        bool ok = svc->bus.ops->ready(svc->bus.self) && svc->store.ops->ready(svc->store.self);
        respond(resp, ok ? 200 : 503, "text/plain", ok ? "ready\n" : "not ready\n");
        return;
    }
    if (get && !strcmp(req->path, "/metrics")) {
        handle_metrics(svc, resp);
        return;
    }
    /* A browser following a link cannot send a header: GETs may carry ?token= instead. */
    char qtoken[256];
    const char *bearer = req->bearer;
    if (!bearer && get)
        bearer = omo_query_param(req->query, "token", qtoken, sizeof qtoken);
    const omo_token *tok = bearer ? omo_svcconf_token(svc->conf, bearer) : NULL;
    if (!tok) {
        respond(resp, 401, "application/json", "{\"error\":\"missing or unknown bearer token\"}");
        return;
    }
    bool post = !strcmp(req->method, "POST");
    const char *p = req->path;
    size_t plen = strlen(p);
    if (get && !strncmp(p, "/stores/", 8) && plen > 19 && !strcmp(p + plen - 9, "/picklist")) {
        char store[OMO_ID_MAX + 1];
        size_t n = plen - 8 - 9;
        if (n < sizeof store) {
            memcpy(store, p + 8, n);
            store[n] = 0;
            handle_picklist(svc, req, tok, bearer, store, resp);
            return;
        }
    }
    static const struct {
        const char *prefix, *suffix;
        omo_event_type type;
    } steps[] = {{"/picks/", "/confirm", OMO_EV_PICK_CONFIRMED},
                 {"/shipments/", "/ship", OMO_EV_SHIPMENT_SHIPPED},
                 {"/shipments/", "/collect", OMO_EV_SHIPMENT_COLLECTED}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t a = strlen(steps[i].prefix), b = strlen(steps[i].suffix);
        if (!strncmp(p, steps[i].prefix, a) && plen > a + b &&
            !strcmp(p + plen - b, steps[i].suffix)) {
            if (!post) {
                respond_error(resp, 405, "use POST", NULL, NULL);
                return;
            }
            char id[OMO_LONG_ID_MAX + 16];
            size_t n = plen - a - b;
            if (n >= sizeof id) {
                respond_error(resp, 404, "no such shipment", NULL, NULL);
                return;
            }
            memcpy(id, p + a, n);
            id[n] = 0;
            handle_store_step(svc, req, tok, id, steps[i].type, resp);
            return;
        }
    }
    if (!strcmp(p, "/rules") || !strncmp(p, "/rules/", 7)) {
        if (tok->role != OMO_ROLE_OPS) {
            respond_error(resp, 403, "ops token required", NULL, NULL);
            return;
        }
        if (post && !strcmp(p, "/rules/diff"))
            handle_diff(svc, req, resp);
        else
            handle_rules(svc, req, tok, resp);
        return;
    }
    if (get && !strncmp(p, "/orders/", 8) && plen > 16 && !strcmp(p + plen - 8, "/explain")) {
        if (tok->role != OMO_ROLE_OPS) {
            respond_error(resp, 403, "ops token required", NULL, NULL);
            return;
        }
        char id[OMO_LONG_ID_MAX + 1];
        size_t n = plen - 8 - 8;
        if (n < sizeof id) {
            memcpy(id, p + 8, n);
            id[n] = 0;
            handle_explain(svc, req, id, resp);
            return;
        }
    }
    if (get && !strncmp(req->path, "/orders/", 8) && req->path[8] && !strchr(req->path + 8, '/')) {
        if (tok->role != OMO_ROLE_OPS) {
            respond(resp, 403, "application/json", "{\"error\":\"ops token required\"}");
            return;
        }
        handle_order(svc, req->path + 8, resp);
        return;
    }
    respond(resp, 404, "application/json", "{\"error\":\"no such resource\"}");
}

void omo_stream_http(void *ctx, const omo_http_request *req, omo_http_response *resp)
{
    omo_stream *svc = ctx;
    if (!strcmp(req->method, "GET") && !strcmp(req->path, "/healthz")) {
        respond(resp, 200, "text/plain", "ok\n");
        return;
    }
    http_job job = {req, resp, false, NULL};
    pthread_mutex_lock(&svc->mu);
    job.next = svc->jobs;
    svc->jobs = &job;
    while (!job.done)
        pthread_cond_wait(&svc->cv, &svc->mu);
    pthread_mutex_unlock(&svc->mu);
}

static void serve_jobs(omo_stream *svc)
{
    pthread_mutex_lock(&svc->mu);
    http_job *jobs = svc->jobs;
    svc->jobs = NULL;
    pthread_mutex_unlock(&svc->mu);
    if (!jobs)
        return;
    /* The store's connection is free (no commit on its thread), and the view has what the
     * other processes applied, unless all that is asked is how the service is. */
    bool view = false;
    for (http_job *j = jobs; j && !view; j = j->next)
        view = strcmp(j->req->method, "GET") ||
               (strcmp(j->req->path, "/metrics") && strcmp(j->req->path, "/readyz"));
    if (flight_finish(svc) || (view && lease_take(svc)))
        svc->failed = true;
    for (http_job *j = jobs; j; j = j->next)
        handle_request(svc, j->req, j->resp);
    pthread_mutex_lock(&svc->mu);
    for (http_job *j = jobs; j; j = j->next)
        j->done = true;
    pthread_cond_broadcast(&svc->cv);
    pthread_mutex_unlock(&svc->mu);
}

/* ---- life ------------------------------------------------------------------------------ */

omo_stream *omo_stream_create(const omo_svcconf *conf, omo_network *net, omo_rules *rules,
                              omo_store store, const omo_stream_opts *opts)
{
    omo_stream *svc = omo_xcalloc(1, sizeof *svc);
    svc->conf = conf;
    svc->net = net;
    svc->rules = rules;
    keep_version(svc, rules);
    svc->store = store;
    svc->bus_events = (omo_bus_events){svc, bus_position, bus_revoked, bus_delivered};
    if (opts)
        svc->opts = *opts;
    if (svc->opts.max_batch <= 0)
        svc->opts.max_batch = 2000;
    if (svc->opts.max_batch > (int)(sizeof svc->msgs / sizeof svc->msgs[0]))
        svc->opts.max_batch = (int)(sizeof svc->msgs / sizeof svc->msgs[0]);
    if (svc->opts.poll_ms <= 0)
        svc->opts.poll_ms = 20;
    if (svc->opts.retry_budget_ms <= 0)
        svc->opts.retry_budget_ms = 60000;
    svc->eng = omo_engine_create(net, rules, on_allocation, svc);
    omo_engine_set_status_sink(svc->eng, on_status, svc);
    pthread_mutex_init(&svc->mu, NULL);
    pthread_cond_init(&svc->cv, NULL);
    svc->started = now_s();
    return svc;
}

void omo_stream_destroy(omo_stream *svc)
{
    if (!svc)
        return;
    (void)flight_finish(svc);
    clear_batch(svc);
    free(svc->events);
    free(svc->outbox);
    free(svc->stock);
    free(svc->delivered);
    free(svc->unplaced);
    free(svc->unconfirmed.v);
    free(svc->json);
    free(svc->positions);
    free(svc->position_dirty);
    free(svc->events_by.v);
    free(svc->decisions_by.v);
    free(svc->ships_by.v);
    free(svc->dead_by.v);
    free(svc->statuses_by.v);
    free(svc->reloads_by.v);
    omo_engine_destroy(svc->eng);
    if (svc->bus.ops)
        svc->bus.ops->destroy(svc->bus.self);
    if (svc->store.ops)
        svc->store.ops->destroy(svc->store.self);
    for (size_t i = 0; i < svc->nversions; i++)
        omo_rules_destroy(svc->versions[i]);
    free(svc->versions);
    omo_network_destroy(svc->net);
    pthread_mutex_destroy(&svc->mu);
    pthread_cond_destroy(&svc->cv);
    free(svc);
}

static void replay_cb(void *ctx, const omo_applied_event *ev)
{
    omo_stream *svc = ctx;
    omo_event_error err;
    omo_event_type type;
    follow_version(svc, svc->eng, &svc->replay_rules, ev);
    (void)apply_value(svc, ev->value, ev->value_len, &err, &type);
    if (ev->seq >= svc->next_applied_seq)
        svc->next_applied_seq = ev->seq + 1;
}

static void position_cb(void *ctx, const omo_position *p)
{
    omo_stream *svc = ctx;
    position_of(svc, p->topic, p->partition, true)->next_offset = p->next_offset;
}

typedef struct pending_set {
    omo_out_msg *v;
    size_t n, cap;
} pending_set;

static void pending_cb(void *ctx, const omo_out_msg *m)
{
    pending_set *ps = ctx;
    omo_grow((void **)&ps->v, &ps->cap, ps->n + 1, sizeof(omo_out_msg));
    omo_out_msg *c = &ps->v[ps->n++];
    *c = *m;
    c->key = dup_bytes(m->key, m->key_len);
    c->value = dup_bytes(m->value, m->value_len);
    for (int h = 0; h < m->nheaders; h++)
        c->headers[h] =
            (omo_header){omo_xstrdup(m->headers[h].name), omo_xstrdup(m->headers[h].value)};
}

/* ---- several processes -----------------------------------------------------------------
 *
 * Several `omo run` processes may share one consumer group and one database. Each keeps the
 * whole view in memory, so each must see every event any of them applied, in one order:
 * applying events takes the apply lease, a lock in the database that one process holds at a
 * time. On taking it a process first applies (as a replay) what the others applied since it
 * last held it, so its view is the database's; then it applies and commits its own batches.
 * It gives the lease back when it has nothing to do, or after LEASE_SLICE_S when others wait,
 * and only once everything it committed is confirmed on its topics: the messages of one
 * holder are on their partitions before the next holder's, so an order's revisions arrive in
 * order whichever process decided them. Messages still unconfirmed when a process dies are
 * adopted by the next one to take the lease: read back from the topics, sent when not found.
 * A message delivered twice by Kafka to two processes (a partition changing hands) is applied
 * once: the second holder knows the position from the first one's events. */

#define LEASE_SLICE_S  0.2
#define HOUSEKEEPING_S 2.0
#define LEASE_DRAIN_MS 2000
/* A process just gone may have left writes on their way to the broker: they land within this
 * time, and are then found by reading back rather than sent twice. */
#define ADOPT_SETTLE_MS 1000

/* Replays into the engine, each under its rules, the applied events after the last one applied
 * here (a retry goes on from where it stopped). Their stock rows are stored already. */
static omo_io replay_applied(omo_stream *svc, const char *what,
                             void (*cb)(void *ctx, const omo_applied_event *ev))
{
    svc->replaying = true;
    svc->replay_rules = svc->rules;
    omo_io io = WITH_RETRY(svc, what,
                           svc->store.ops->replay(svc->store.self, svc->next_applied_seq - 1, cb,
                                                  svc, err, sizeof err));
    svc->replaying = false;
    omo_inventory_drain_dirty(omo_engine_inventory(svc->eng), NULL, NULL);
    return io;
}

static void catchup_cb(void *ctx, const omo_applied_event *ev)
{
    omo_stream *svc = ctx;
    replay_cb(ctx, ev);
    if (ev->topic < OMO_TOPICS) {
        omo_position *pos = position_of(svc, ev->topic, ev->partition, true);
        if (ev->offset + 1 > pos->next_offset)
            pos->next_offset = ev->offset + 1;
    }
}

static void last_hash_cb(void *ctx, const char *hash, const char *went_live, const char *by)
{
    (void)went_live, (void)by;
    snprintf(ctx, OMO_ID_MAX + 1, "%s", hash);
}

/* The rules version put live last, by whichever process, is the live one here too. */
static int follow_live_rules(omo_stream *svc)
{
    char last[OMO_ID_MAX + 1] = "";
    if (WITH_RETRY(svc, "[postgres] rules history",
                   svc->store.ops->rules_history(svc->store.self, last_hash_cb, last, err,
                                                 sizeof err)) != OMO_IO_OK)
        return 1;
    omo_rules *r = *last ? find_version(svc, last) : NULL;
    if (r && r != svc->rules) {
        svc->rules = r;
        logf_("[service] rules version %s is live (put live by another process)", r->version_hash);
    }
    omo_engine_set_rules(svc->eng, svc->rules);
    return 0;
}

/* Applies what the other processes applied since this one last held the lease. */
static int catch_up(omo_stream *svc)
{
    int64_t applied = 0, outbox = 0;
    if (WITH_RETRY(svc, "[postgres] read sequences",
                   svc->store.ops->max_seqs(svc->store.self, &applied, &outbox, err, sizeof err)) !=
        OMO_IO_OK)
        return 1;
    if (outbox >= svc->next_outbox_seq)
        svc->next_outbox_seq = outbox + 1;
    if (applied < svc->next_applied_seq)
        return 0;
    int64_t from = svc->next_applied_seq;
    /* Versions put live elsewhere are needed to replay what was decided under them. */
    if (load_versions(svc))
        return 1;
    if (replay_applied(svc, "[postgres] catch up", catchup_cb) != OMO_IO_OK ||
        follow_live_rules(svc))
        return 1;
    logf_("[service] caught up on %lld events applied by other processes",
          (long long)(svc->next_applied_seq - from));
    return 0;
}

typedef struct id_list {
    int32_t *v;
    size_t n, cap;
} id_list;

static void gone_cb(void *ctx, int32_t id)
{
    id_list *l = ctx;
    omo_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(int32_t));
    l->v[l->n++] = id;
}

typedef struct scan_ctx {
    pending_set *ps;
    bool *seen;
    omo_topic topic;
    int32_t partition;
    omo_delivery *found;
    size_t nfound;
} scan_ctx;

static void scan_cb(void *ctx, int64_t seq, int64_t offset)
{
    scan_ctx *sc = ctx;
    for (size_t i = 0; i < sc->ps->n; i++)
        if (sc->ps->v[i].seq == seq && !sc->seen[i]) {
            sc->seen[i] = true;
            sc->found[sc->nfound++] = (omo_delivery){seq, sc->topic, sc->partition, offset};
            return;
        }
}

/* Takes over a gone instance's unconfirmed messages: those found on their topics (read back
 * from where its confirmations end) are marked delivered, the rest are sent again, as this
 * instance's. A previous run of this process is such an instance. */
static int adopt(omo_stream *svc, int32_t gone)
{
    pending_set ps = {0};
    if (WITH_RETRY(svc, "[postgres] outbox",
                   svc->store.ops->pending(svc->store.self, gone, pending_cb, &ps, err,
                                           sizeof err)) != OMO_IO_OK)
        return 1;
    if (ps.n)
        usleep(ADOPT_SETTLE_MS * 1000);
    scan_ctx sc = {.ps = &ps,
                   .seen = omo_xcalloc(ps.n + 1, sizeof(bool)),
                   .found = omo_xcalloc(ps.n + 1, sizeof(omo_delivery))};
    int rc = 0;
    for (size_t i = 0; i < ps.n && !rc; i++) {
        bool first = true;
        for (size_t j = 0; j < i && first; j++)
            if (ps.v[j].topic == ps.v[i].topic && ps.v[j].partition == ps.v[i].partition)
                first = false;
        if (!first)
            continue;
        sc.topic = ps.v[i].topic;
        sc.partition = ps.v[i].partition;
        rc = read_back(svc, gone, sc.topic, sc.partition, scan_cb, &sc);
    }
    size_t resend = 0;
    for (size_t i = 0; i < ps.n && !rc; i++)
        if (!sc.seen[i]) {
            rc = produce_all(svc, &ps.v[i], 1);
            resend++;
        }
    if (!rc && WITH_RETRY(svc, "[postgres] adopt",
                          svc->store.ops->adopt(svc->store.self, gone, sc.found, sc.nfound, err,
                                                sizeof err)) != OMO_IO_OK)
        rc = 1;
    if (!rc && gone != svc->instance)
        logf_("[service] instance %d is gone: %zu unconfirmed messages, %zu found on their "
              "topics, %zu sent again",
              gone, ps.n, ps.n - resend, resend);
    for (size_t i = 0; i < ps.n; i++)
        free_out(&ps.v[i]);
    free(ps.v);
    free(sc.seen);
    free(sc.found);
    return rc;
}

/* Adopts every gone instance, and counts the others. */
static int adopt_gone(omo_stream *svc)
{
    id_list gone = {0};
    if (WITH_RETRY(svc, "[postgres] instances",
                   svc->store.ops->gone_instances(svc->store.self, &svc->others, gone_cb, &gone,
                                                  err, sizeof err)) != OMO_IO_OK) {
        free(gone.v);
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < gone.n && !rc; i++)
        rc = adopt(svc, gone.v[i]);
    free(gone.v);
    return rc;
}

/* Takes the apply lease unless held, adopting gone instances first; with view, the view is
 * then caught up with what the others applied (not needed just to look for gone ones). */
static int lease_take_for(omo_stream *svc, bool view)
{
    if (!svc->lease) {
        if (flight_finish(svc) ||
            WITH_RETRY(svc, "[postgres] apply lease",
                       svc->store.ops->lease(svc->store.self, true, err, sizeof err)) != OMO_IO_OK)
            return 1;
        svc->lease = true;
        svc->behind = true;
        svc->lease_since = now_s();
        if (adopt_gone(svc))
            return 1;
    }
    if (view && svc->behind) {
        if (catch_up(svc))
            return 1;
        svc->behind = false;
    }
    return 0;
}

static int lease_take(omo_stream *svc)
{
    return lease_take_for(svc, true);
}

/* Gives the lease back once everything committed is confirmed; keeps it while not. */
static int lease_give(omo_stream *svc)
{
    if (!svc->lease)
        return 0;
    if (flight_finish(svc))
        return 1;
    char err[512] = "";
    double until = now_s() + LEASE_DRAIN_MS / 1000.0;
    while (svc->inflight && now_s() < until)
        if (svc->bus.ops->flush(svc->bus.self, 50, err, sizeof err) == OMO_IO_FATAL)
            return 1;
    if (svc->inflight)
        return 0;
    if (commit_batch(svc))
        return 1;
    if (WITH_RETRY(svc, "[postgres] apply lease",
                   svc->store.ops->lease(svc->store.self, false, err, sizeof err)) != OMO_IO_OK)
        return 1;
    svc->lease = false;
    return 0;
}

/* Between batches: says this process is alive, and looks for gone instances under the lease. */
static int housekeeping(omo_stream *svc)
{
    if (now_s() < svc->next_housekeeping)
        return 0;
    svc->next_housekeeping = now_s() + HOUSEKEEPING_S;
    if (flight_finish(svc) ||
        WITH_RETRY(svc, "[postgres] heartbeat",
                   svc->store.ops->heartbeat(svc->store.self, err, sizeof err)) != OMO_IO_OK)
        return 1;
    /* Idle, it takes the lease only to look: the step gives it back when others are alive. */
    return svc->lease ? adopt_gone(svc) : lease_take_for(svc, false);
}

int omo_stream_rebuild(omo_stream *svc, char *errout, size_t errlen)
{
    double t0 = now_s();
    int64_t applied = 0, outbox = 0;
    if (WITH_RETRY(svc, "[postgres] read sequences",
                   svc->store.ops->max_seqs(svc->store.self, &applied, &outbox, err, sizeof err)) !=
        OMO_IO_OK) {
        snprintf(errout, errlen, "cannot read the database");
        return 1;
    }
    svc->next_applied_seq = 1;
    svc->next_outbox_seq = outbox + 1;

    if (load_versions(svc)) {
        snprintf(errout, errlen, "cannot read the rules versions");
        return 1;
    }
    /* The view: every applied event again, in the order it was applied, under its rules. */
    omo_io io = replay_applied(svc, "[postgres] replay", replay_cb);
    omo_engine_set_rules(svc->eng, svc->rules);
    if (io != OMO_IO_OK) {
        snprintf(errout, errlen, "cannot replay the applied events");
        return 1;
    }
    if (WITH_RETRY(svc, "[postgres] positions",
                   svc->store.ops->positions(svc->store.self, position_cb, svc, err, sizeof err)) !=
        OMO_IO_OK) {
        snprintf(errout, errlen, "cannot read the input positions");
        return 1;
    }
    const omo_engine_stats *es = omo_engine_stats_get(svc->eng);
    logf_("[service] rebuilt the view from %lld applied events (%llu orders) in %.2f s",
          (long long)(svc->next_applied_seq - 1), (unsigned long long)es->orders, now_s() - t0);
    return 0;
}

int omo_stream_start(omo_stream *svc, char *errout, size_t errlen)
{
    for (int t = OMO_TOPIC_ALLOCATIONS; t < OMO_TOPICS; t++) {
        char err[512] = "";
        int32_t n = svc->bus.ops->partitions(svc->bus.self, (omo_topic)t, err, sizeof err);
        if (n < 1) {
            snprintf(errout, errlen, "topic %s: %s", topic_name(svc, (omo_topic)t), err);
            return 1;
        }
        svc->out_parts[t] = n;
    }
    if (WITH_RETRY(svc, "[postgres] register",
                   svc->store.ops->register_instance(svc->store.self, &svc->instance, err,
                                                     sizeof err)) != OMO_IO_OK) {
        snprintf(errout, errlen, "cannot register in the database");
        return 1;
    }
    logf_("[service] instance %d", svc->instance);
    if (omo_stream_rebuild(svc, errout, errlen))
        return 1;
    /* What the others applied meanwhile, and the messages a previous run left unconfirmed. */
    svc->next_housekeeping = now_s() + HOUSEKEEPING_S;
    if (lease_take(svc) || commit_batch(svc)) {
        snprintf(errout, errlen, "cannot reconcile the outbox");
        return 1;
    }
    return 0;
}

int omo_stream_step(omo_stream *svc)
{
    if (svc->failed)
        return 1;
    if (svc->opts.reload && *svc->opts.reload) {
        *svc->opts.reload = 0;
        if (flight_finish(svc))
            return 1;
        omo_diag diag = {0};
        if (reload_file(svc, "SIGHUP", &diag))
            logf_("[service] SIGHUP: the rules in %s were refused; version %s stays live",
                  svc->conf->routing_path, svc->rules->version_hash);
        omo_diag_clear(&diag);
    }
    size_t n = 0;
    char err[512] = "";
    /* With a batch being committed, take what is there and go on applying. */
    omo_io io = svc->bus.ops->poll(svc->bus.self, svc->msgs, (size_t)svc->opts.max_batch, &n,
                                   svc->fl.active ? 0 : svc->opts.poll_ms, err, sizeof err);
    if (io == OMO_IO_FATAL) {
        logf_("[kafka] fatal: %s", err);
        return 1;
    }
    if (io == OMO_IO_RETRY)
        logf_("[kafka] poll: %s", err);
    svc->batch_arrival = now_s();
    if (n && lease_take(svc))
        return 1;
    for (size_t i = 0; i < n; i++) {
        take_message(svc, &svc->msgs[i]);
        /* The batch before is sent as soon as it is committed, not after this one. */
        if (i % 64 == 63 && svc->fl.active && atomic_load(&svc->fl.done) && flight_finish(svc))
            return 1;
    }
    if (flight_finish(svc) || housekeeping(svc))
        return 1;
    bool threaded = svc->opts.pipeline && n > 0;
    if (flight_start(svc, threaded) || (!threaded && flight_finish(svc)))
        return 1;
    serve_jobs(svc);
    if (svc->failed)
        return 1;
    /* Other processes wait for the lease: give it when idle, or after a slice of its own. */
    if (svc->lease && svc->others > 0 && (n == 0 || now_s() - svc->lease_since > LEASE_SLICE_S) &&
        lease_give(svc))
        return 1;
    if (svc->opts.on_batch && n) {
        omo_stream_stats st;
        omo_stream_stats_get(svc, &st);
        svc->opts.on_batch(svc->opts.on_batch_ctx, &st);
    }
    return 0;
}

int omo_stream_flush(omo_stream *svc, int timeout_ms)
{
    if (flight_finish(svc))
        return 1;
    char err[512] = "";
    double until = now_s() + timeout_ms / 1000.0;
    while (svc->inflight && now_s() < until) {
        omo_io io = svc->bus.ops->flush(svc->bus.self, 100, err, sizeof err);
        if (io == OMO_IO_FATAL)
            return 1;
        serve_jobs(svc);
    }
    return commit_batch(svc);
}

int omo_stream_run(omo_stream *svc)
{
    while (!(svc->opts.stop && *svc->opts.stop))
        if (omo_stream_step(svc))
            return 1;
    logf_("[service] draining: waiting for %zu messages to be confirmed", svc->inflight);
    int rc = omo_stream_flush(svc, 10000);
    logf_("[service] stopped");
    return rc;
}

void omo_stream_stats_get(omo_stream *svc, omo_stream_stats *out)
{
    const omo_engine_stats *es = omo_engine_stats_get(svc->eng);
    svc->stats.orders = es->orders;
    svc->stats.revisions = es->revisions;
    svc->stats.resourced = es->resourced;
    svc->stats.retried = es->retried;
    svc->stats.uptime_s = now_s() - svc->started;
    *out = svc->stats;
}

struct omo_engine *omo_stream_engine(omo_stream *svc)
{
    return svc->eng;
}

const omo_bus_events *omo_stream_bus_events(omo_stream *svc)
{
    return &svc->bus_events;
}

void omo_stream_attach_bus(omo_stream *svc, omo_bus bus)
{
    svc->bus = bus;
}
