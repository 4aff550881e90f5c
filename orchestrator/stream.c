#include "stream_state.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const double omo_stream_latency_bounds[LATENCY_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                           0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
const double omo_stream_batch_bounds[BATCH_BUCKETS] = {1, 10, 50, 100, 500, 1000, 2000, 5000};

double omo_stream_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void omo_stream_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *omo_stream_topic_label(omo_topic t)
{
    static const char *names[] = {"orders",      "stock",        "allocations", "shipments",
                                  "dead_letter", "availability", "api"};
    return names[t];
}

const char *omo_stream_topic_name(const omo_stream *svc, omo_topic t)
{
    const omo_svcconf *c = svc->conf;
    const char *names[] = {c->topic_orders,    c->topic_stock,       c->topic_allocations,
                           c->topic_shipments, c->topic_dead_letter, c->topic_availability};
    return names[t];
}

void omo_stream_count(counter_set *cs, const char *labels, uint64_t by)
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

void omo_stream_observe(histogram *h, const double *bounds, int nb, double v)
{
    for (int i = 0; i < nb; i++)
        if (v <= bounds[i])
            h->buckets[i]++;
    h->count++;
    h->sum += v;
}

/* ---- positions ------------------------------------------------------------------------- */

omo_position *omo_stream_position(omo_stream *svc, omo_topic t, int32_t p, bool create)
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
    omo_position *pos = omo_stream_position(ctx, t, p, false);
    return pos ? pos->next_offset : -1;
}

static void bus_revoked(void *ctx, omo_topic t, int32_t p)
{
    (void)ctx;
    omo_stream_log("[service] partition %s[%d] revoked", omo_stream_topic_label(t), p);
}

char *omo_stream_dup(const char *s, size_t n)
{
    char *d = omo_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* Engine sink: every revision becomes an outbox message (GET /orders/{id} reads it there). */
static void on_allocation(void *ctx, const omo_allocation *a)
{
    omo_stream *svc = ctx;
    if (svc->replaying)
        return;
    size_t n = omo_allocation_json(a, svc->net, &svc->json, &svc->capjson);
    omo_outbox_add(svc, OMO_TOPIC_ALLOCATIONS, a->order_id, strlen(a->order_id), svc->json, n - 1);
    char labels[160];
    snprintf(labels, sizeof labels, "status=\"%s\"", omo_alloc_status_name(a->status));
    omo_stream_count(&svc->decisions_by, labels, 1);
    for (int s = 0; s < a->nships; s++) {
        snprintf(labels, sizeof labels, "method=\"%s\"", omo_method_name(a->ships[s].method));
        omo_stream_count(&svc->ships_by, labels, 1);
    }
    if (a->revision == 1)
        omo_stream_observe(&svc->latency, omo_stream_latency_bounds, LATENCY_BUCKETS,
                           omo_stream_now() - svc->batch_arrival);
}

/* Engine status sink: every shipment status becomes an outbox message. */
static void on_status(void *ctx, const omo_shipment_status *st)
{
    omo_stream *svc = ctx;
    if (svc->replaying)
        return;
    size_t n = omo_shipment_status_json(st, svc->net, &svc->json, &svc->capjson);
    omo_outbox_add(svc, OMO_TOPIC_SHIPMENTS, st->order_id, strlen(st->order_id), svc->json, n - 1);
    char labels[160];
    snprintf(labels, sizeof labels, "status=\"%s\"", omo_ship_state_name(st->status));
    omo_stream_count(&svc->statuses_by, labels, 1);
}

static void dead_letter(omo_stream *svc, const omo_in_msg *m, const omo_event_error *err)
{
    omo_outbox_add(svc, OMO_TOPIC_DEAD_LETTER, m->key ? m->key : "", m->key ? m->key_len : 0,
                   m->value ? m->value : "", m->value ? m->value_len : 0);
    omo_out_msg *o = &svc->outbox[svc->noutbox - 1];
    char num[32];
    omo_outbox_header(o, "omo.error.reason", err->reason);
    omo_outbox_header(o, "omo.error.field", err->field);
    omo_outbox_header(o, "omo.source.topic", omo_stream_topic_name(svc, m->topic));
    snprintf(num, sizeof num, "%d", m->partition);
    omo_outbox_header(o, "omo.source.partition", num);
    snprintf(num, sizeof num, "%lld", (long long)m->offset);
    omo_outbox_header(o, "omo.source.offset", num);
    char labels[160];
    snprintf(labels, sizeof labels, "reason=\"%s\"", err->reason);
    omo_stream_count(&svc->dead_by, labels, 1);
    svc->stats.dead_letters++;
    omo_stream_log("[service] dead letter %s[%d]@%lld: %s", omo_stream_topic_label(m->topic),
                   m->partition, (long long)m->offset, err->message);
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
    omo_position *pos = omo_stream_position(svc, m->topic, m->partition, true);
    if (pos->next_offset >= 0 && m->offset < pos->next_offset)
        return; /* delivered again after a rebalance or restart: already applied */
    svc->stats.events_in++;
    omo_event_error err;
    omo_event_type type = OMO_EV_ORDER_CREATED;
    const char *result = apply_value(svc, m->value ? m->value : "", m->value_len, &err, &type);
    char labels[160];
    snprintf(labels, sizeof labels, "topic=\"%s\",type=\"%s\",result=\"%s\"",
             omo_stream_topic_label(m->topic),
             strcmp(result, "invalid") ? omo_event_type_name(type) : "?", result);
    omo_stream_count(&svc->events_by, labels, 1);
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
                            omo_stream_dup(m->value ? m->value : "", m->value_len),
                            m->value_len,
                            svc->rules->version_hash};
    pos->next_offset = m->offset + 1;
    svc->position_dirty[pos - svc->positions] = true;
}

static void clear_batch(omo_stream *svc)
{
    for (size_t i = 0; i < svc->nevents; i++)
        free((char *)svc->events[i].value);
    svc->nevents = 0;
    for (size_t i = 0; i < svc->noutbox; i++)
        omo_outbox_free_msg(&svc->outbox[i]);
    svc->noutbox = 0;
    svc->nstock = 0;
}

/* ---- life ------------------------------------------------------------------------------ */

omo_stream *omo_stream_create(const omo_svcconf *conf, omo_network *net, omo_rules *rules,
                              omo_store store, const omo_stream_opts *opts)
{
    omo_stream *svc = omo_xcalloc(1, sizeof *svc);
    svc->conf = conf;
    svc->net = net;
    svc->rules = rules;
    omo_versions_keep(svc, rules);
    svc->store = store;
    svc->bus_events = (omo_bus_events){svc, bus_position, bus_revoked, omo_outbox_delivered};
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
    if (svc->opts.lease_ms <= 0)
        svc->opts.lease_ms = 15000;
    svc->eng = omo_engine_create(net, rules, on_allocation, svc);
    omo_engine_set_status_sink(svc->eng, on_status, svc);
    /* Writer-preferring: a stream of readers never keeps the service thread from applying. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&svc->view_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&svc->readers_mu, NULL);
    pthread_cond_init(&svc->readers_cv, NULL);
    pthread_cond_init(&svc->readers_done, NULL);
    pthread_mutex_init(&svc->mu, NULL);
    pthread_cond_init(&svc->cv, NULL);
    pthread_mutex_init(&svc->fence_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&svc->fence_cv, &ca);
    pthread_condattr_destroy(&ca);
    svc->beat_ok = 1e300; /* no time bound until heartbeats start */
    svc->started = omo_stream_now();
    return svc;
}

void omo_stream_destroy(omo_stream *svc)
{
    if (!svc)
        return;
    omo_lease_beat_stop(svc);
    (void)omo_outbox_flight_finish(svc);
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
    omo_avail_destroy(svc);
    omo_engine_destroy(svc->eng);
    pthread_rwlock_destroy(&svc->view_lock);
    pthread_mutex_destroy(&svc->readers_mu);
    pthread_cond_destroy(&svc->readers_cv);
    pthread_cond_destroy(&svc->readers_done);
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
    pthread_mutex_destroy(&svc->fence_mu);
    pthread_cond_destroy(&svc->fence_cv);
    free(svc);
}

void omo_stream_write_lock(omo_stream *svc)
{
    pthread_rwlock_wrlock(&svc->view_lock);
}

void omo_stream_write_unlock(omo_stream *svc)
{
    pthread_rwlock_unlock(&svc->view_lock);
}

/* What a replay changed was published by whoever applied it first. */
static void replayed_stock(void *ctx, omo_stock *st)
{
    omo_avail_feed(ctx, st, false);
}

void omo_stream_replay_cb(void *ctx, const omo_applied_event *ev)
{
    omo_stream *svc = ctx;
    omo_event_error err;
    omo_event_type type;
    omo_versions_follow(svc, svc->eng, &svc->replay_rules, ev);
    (void)apply_value(svc, ev->value, ev->value_len, &err, &type);
    if (ev->seq >= svc->next_applied_seq)
        svc->next_applied_seq = ev->seq + 1;
}

static void position_cb(void *ctx, const omo_position *p)
{
    omo_stream *svc = ctx;
    omo_stream_position(svc, p->topic, p->partition, true)->next_offset = p->next_offset;
}

/* Replays into the engine, each under its rules, the applied events after the last one applied
 * here (a retry goes on from where it stopped). Their stock rows are stored already. */
omo_io omo_stream_replay_applied(omo_stream *svc, const char *what,
                                 void (*cb)(void *ctx, const omo_applied_event *ev))
{
    omo_stream_write_lock(svc);
    svc->replaying = true;
    svc->replay_rules = svc->rules;
    omo_io io = WITH_RETRY(svc, what,
                           svc->store.ops->replay(svc->store.self, svc->next_applied_seq - 1, cb,
                                                  svc, err, sizeof err));
    svc->replaying = false;
    omo_inventory_drain_dirty(omo_engine_inventory(svc->eng), replayed_stock, svc);
    omo_stream_write_unlock(svc);
    return io;
}

int omo_stream_rebuild(omo_stream *svc, char *errout, size_t errlen)
{
    double t0 = omo_stream_now();
    int64_t applied = 0, outbox = 0;
    if (WITH_RETRY(svc, "[postgres] read sequences",
                   svc->store.ops->max_seqs(svc->store.self, &applied, &outbox, err, sizeof err)) !=
        OMO_IO_OK) {
        snprintf(errout, errlen, "cannot read the database");
        return 1;
    }
    svc->next_applied_seq = 1;
    svc->next_outbox_seq = outbox + 1;

    if (omo_versions_load(svc)) {
        snprintf(errout, errlen, "cannot read the rules versions");
        return 1;
    }
    /* The view: every applied event again, in the order it was applied, under its rules. */
    omo_io io = omo_stream_replay_applied(svc, "[postgres] replay", omo_stream_replay_cb);
    omo_stream_write_lock(svc);
    omo_engine_set_rules(svc->eng, svc->rules);
    omo_stream_write_unlock(svc);
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
    omo_stream_log("[service] rebuilt the view from %lld applied events (%llu orders) in %.2f s",
                   (long long)(svc->next_applied_seq - 1), (unsigned long long)es->orders,
                   omo_stream_now() - t0);
    return 0;
}

int omo_stream_start(omo_stream *svc, char *errout, size_t errlen)
{
    for (int t = OMO_TOPIC_ALLOCATIONS; t < OMO_TOPICS; t++) {
        if (!omo_stream_topic_name(svc, (omo_topic)t))
            continue; /* an optional topic not configured */
        char err[512] = "";
        int32_t n = svc->bus.ops->partitions(svc->bus.self, (omo_topic)t, err, sizeof err);
        if (n < 1) {
            snprintf(errout, errlen, "topic %s: %s", omo_stream_topic_name(svc, (omo_topic)t), err);
            return 1;
        }
        svc->out_parts[t] = n;
    }
    double registering = 0;
    if (WITH_RETRY(svc, "[postgres] register",
                   (registering = omo_stream_now(),
                    svc->store.ops->register_instance(svc->store.self, &svc->instance, err,
                                                      sizeof err))) != OMO_IO_OK) {
        snprintf(errout, errlen, "cannot register in the database");
        return 1;
    }
    omo_stream_log("[service] instance %d", svc->instance);
    /* Registering recorded a first heartbeat, after `registering`. */
    omo_lease_beat_start(svc, registering);
    if (omo_stream_rebuild(svc, errout, errlen))
        return 1;
    /* What the others applied meanwhile, and the messages a previous run left unconfirmed. */
    svc->next_housekeeping = omo_stream_now() + HOUSEKEEPING_S;
    if (omo_lease_take(svc) || omo_outbox_commit(svc)) {
        snprintf(errout, errlen, "cannot reconcile the outbox");
        return 1;
    }
    return 0;
}

int omo_stream_step(omo_stream *svc)
{
    if (svc->failed || omo_lease_lost(svc))
        return 1;
    if (svc->opts.reload && *svc->opts.reload) {
        *svc->opts.reload = 0;
        if (omo_outbox_flight_finish(svc))
            return 1;
        omo_diag diag = {0};
        if (omo_versions_reload(svc, "SIGHUP", &diag))
            omo_stream_log("[service] SIGHUP: the rules in %s were refused; version %s stays live",
                           svc->conf->routing_path, svc->rules->version_hash);
        omo_diag_clear(&diag);
    }
    size_t n = 0;
    char err[512] = "";
    /* With a batch being committed, take what is there and go on applying. */
    omo_io io = svc->bus.ops->poll(svc->bus.self, svc->msgs, (size_t)svc->opts.max_batch, &n,
                                   svc->fl.active ? 0 : svc->opts.poll_ms, err, sizeof err);
    if (io == OMO_IO_FATAL) {
        omo_stream_log("[kafka] fatal: %s", err);
        return 1;
    }
    if (io == OMO_IO_RETRY)
        omo_stream_log("[kafka] poll: %s", err);
    svc->batch_arrival = omo_stream_now();
    if (n && omo_lease_take(svc))
        return 1;
    /* Readers wait only while the batch is applied, never for its commit or the poll. */
    omo_stream_write_lock(svc);
    for (size_t i = 0; i < n; i++) {
        take_message(svc, &svc->msgs[i]);
        /* The batch before is sent as soon as it is committed, not after this one. */
        if (i % 64 == 63 && svc->fl.active && atomic_load(&svc->fl.done)) {
            omo_stream_write_unlock(svc);
            if (omo_outbox_flight_finish(svc))
                return 1;
            omo_stream_write_lock(svc);
        }
    }
    omo_stream_write_unlock(svc);
    if (omo_outbox_flight_finish(svc) || omo_lease_housekeeping(svc))
        return 1;
    bool threaded = svc->opts.pipeline && n > 0;
    if (omo_outbox_flight_start(svc, threaded) || (!threaded && omo_outbox_flight_finish(svc)))
        return 1;
    omo_routes_serve(svc);
    omo_avail_due(svc);
    if (svc->failed)
        return 1;
    /* Other processes wait for the lease: give it when idle, or after a slice of its own. */
    if (svc->lease && svc->others > 0 &&
        (n == 0 || omo_stream_now() - svc->lease_since > LEASE_SLICE_S) && omo_lease_give(svc))
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
    if (omo_outbox_flight_finish(svc))
        return 1;
    char err[512] = "";
    double until = omo_stream_now() + timeout_ms / 1000.0;
    while (svc->inflight && omo_stream_now() < until) {
        omo_io io = svc->bus.ops->flush(svc->bus.self, 100, err, sizeof err);
        if (io == OMO_IO_FATAL)
            return 1;
        omo_routes_serve(svc);
    }
    return omo_outbox_commit(svc);
}

int omo_stream_run(omo_stream *svc)
{
    while (!(svc->opts.stop && *svc->opts.stop))
        if (omo_stream_step(svc))
            return 1;
    omo_stream_log("[service] draining: waiting for %zu messages to be confirmed", svc->inflight);
    int rc = omo_stream_flush(svc, 10000);
    omo_stream_log("[service] stopped");
    return rc;
}

void omo_stream_stats_get(omo_stream *svc, omo_stream_stats *out)
{
    const omo_engine_stats *es = omo_engine_stats_get(svc->eng);
    svc->stats.orders = es->orders;
    svc->stats.revisions = es->revisions;
    svc->stats.resourced = es->resourced;
    svc->stats.retried = es->retried;
    svc->stats.uptime_s = omo_stream_now() - svc->started;
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

void omo_stream_set_ready(omo_stream *svc)
{
    atomic_store(&svc->ready, true);
}
