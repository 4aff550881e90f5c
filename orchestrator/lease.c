/* Several `omo run` processes may share one consumer group and one database. Each keeps the
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
 * once: the second holder knows the position from the first one's events.
 *
 * Being alive has a time bound, so that no message of a process cut off from the database (but
 * not from Kafka) can land after another process adopted it and read its partitions back. A
 * thread of each process sends a heartbeat every fifth of the lease (L) on a connection of its
 * own; once none has been recorded for L (counted on this process's monotonic clock from the
 * moment the last recorded one was sent), the process sends nothing more and purges its
 * producer's queue. Another process takes it for gone only when its last heartbeat is 2L + 2 s
 * old by the database's clock: the purge comes by then (a heartbeat waits L/4 at most, a
 * connection 2 s), and what was in flight has landed. The adopter claims the instance in the
 * same row the heartbeats write (so either the heartbeat or the claim wins) and ends its
 * session if it lives on, which frees the apply lease too. A process on the same machine whose
 * process is seen to have ended is adopted at once. */
#include "stream_state.h"

#include <stdlib.h>
#include <string.h>

#define LEASE_DRAIN_MS 2000
/* A process just gone may have left writes on their way to the broker: they land within this
 * time, and are then found by reading back rather than sent twice. */
#define ADOPT_SETTLE_MS 1000

void omo_out_msgs_cb(void *ctx, const omo_out_msg *m)
{
    omo_out_msgs *ps = ctx;
    omo_grow((void **)&ps->v, &ps->cap, ps->n + 1, sizeof(omo_out_msg));
    omo_out_msg *c = &ps->v[ps->n++];
    *c = *m;
    c->key = omo_stream_dup(m->key, m->key_len);
    c->value = omo_stream_dup(m->value, m->value_len);
    for (int h = 0; h < m->nheaders; h++)
        c->headers[h] =
            (omo_header){omo_xstrdup(m->headers[h].name), omo_xstrdup(m->headers[h].value)};
}

static void catchup_cb(void *ctx, const omo_applied_event *ev)
{
    omo_stream *svc = ctx;
    omo_stream_replay_cb(ctx, ev);
    if (ev->topic < OMO_TOPICS) {
        omo_position *pos = omo_stream_position(svc, ev->topic, ev->partition, true);
        if (ev->offset + 1 > pos->next_offset)
            pos->next_offset = ev->offset + 1;
    }
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
    if (omo_versions_load(svc))
        return 1;
    if (omo_stream_replay_applied(svc, "[postgres] catch up", catchup_cb) != OMO_IO_OK ||
        omo_versions_follow_live(svc))
        return 1;
    omo_stream_log("[service] caught up on %lld events applied by other processes",
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
    omo_out_msgs *ps;
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
    omo_out_msgs ps = {0};
    if (WITH_RETRY(svc, "[postgres] outbox",
                   svc->store.ops->pending(svc->store.self, gone, omo_out_msgs_cb, &ps, err,
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
        rc = omo_outbox_read_back(svc, gone, sc.topic, sc.partition, scan_cb, &sc);
    }
    size_t resend = 0;
    for (size_t i = 0; i < ps.n && !rc; i++)
        if (!sc.seen[i]) {
            rc = omo_outbox_produce(svc, &ps.v[i], 1);
            resend++;
        }
    if (!rc && WITH_RETRY(svc, "[postgres] adopt",
                          svc->store.ops->adopt(svc->store.self, gone, sc.found, sc.nfound, err,
                                                sizeof err)) != OMO_IO_OK)
        rc = 1;
    if (!rc && gone != svc->instance)
        omo_stream_log(
            "[service] instance %d is gone: %zu unconfirmed messages, %zu found on their "
            "topics, %zu sent again",
            gone, ps.n, ps.n - resend, resend);
    for (size_t i = 0; i < ps.n; i++)
        omo_outbox_free_msg(&ps.v[i]);
    free(ps.v);
    free(sc.seen);
    free(sc.found);
    return rc;
}

/* How old an instance's last heartbeat must be, by the database's clock, for it to be gone. */
static int64_t stale_ms(const omo_stream *svc)
{
    return 2 * (int64_t)svc->opts.lease_ms + 2000;
}

/* Claims the gone instances (cb gets each), and counts the others. */
static int find_gone(omo_stream *svc, void (*cb)(void *ctx, int32_t id), void *ctx)
{
    return WITH_RETRY(svc, "[postgres] instances",
                      svc->store.ops->gone_instances(svc->store.self, stale_ms(svc), &svc->others,
                                                     cb, ctx, err, sizeof err)) != OMO_IO_OK;
}

/* Adopts every gone instance, and counts the others. */
static int adopt_gone(omo_stream *svc)
{
    id_list gone = {0};
    if (find_gone(svc, gone_cb, &gone)) {
        free(gone.v);
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < gone.n && !rc; i++)
        rc = adopt(svc, gone.v[i]);
    free(gone.v);
    return rc;
}

/* Waits for the apply lease. While another holds it, the sessions of instances gone silent are
 * ended: the holder may be one, cut off, whose session lives on. They are claimed and adopted
 * only under the lease (claiming takes their locks, which the holder may be waiting for). */
static int take_lease(omo_stream *svc)
{
    double since = omo_stream_now(), said = since;
    for (;;) {
        char err[512] = "";
        double t = omo_stream_now();
        omo_io io = svc->store.ops->lease(svc->store.self, true, err, sizeof err);
        if (io == OMO_IO_OK)
            return 0;
        if (io == OMO_IO_FATAL || omo_lease_lost(svc)) {
            omo_stream_log("[service] apply lease failed for good: %s", err);
            return 1;
        }
        if (omo_stream_now() - said > 10) { /* the holder may be busy for a while */
            omo_stream_log("[service] waiting for the apply lease: %s", err);
            said = omo_stream_now();
        }
        if (omo_stream_now() - t < 0.5)
            usleep(100 * 1000); /* not a wait for the lock: the connection failed */
        /* This retries within the budget when the database is away. */
        if (WITH_RETRY(svc, "[postgres] instances",
                       svc->store.ops->end_stale(svc->store.self, stale_ms(svc), err,
                                                 sizeof err)) != OMO_IO_OK)
            return 1;
    }
}

/* Takes the apply lease unless held, adopting gone instances first; with view, the view is
 * then caught up with what the others applied (not needed just to look for gone ones). */
static int lease_take_for(omo_stream *svc, bool view)
{
    if (!svc->lease) {
        if (omo_outbox_flight_finish(svc) || take_lease(svc))
            return 1;
        svc->lease = true;
        svc->behind = true;
        svc->lease_since = omo_stream_now();
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

int omo_lease_take(omo_stream *svc)
{
    return lease_take_for(svc, true);
}

/* Gives the lease back once everything committed is confirmed; keeps it while not. */
int omo_lease_give(omo_stream *svc)
{
    if (!svc->lease)
        return 0;
    if (omo_outbox_flight_finish(svc))
        return 1;
    char err[512] = "";
    double until = omo_stream_now() + LEASE_DRAIN_MS / 1000.0;
    while (svc->inflight && omo_stream_now() < until)
        if (svc->bus.ops->flush(svc->bus.self, 50, err, sizeof err) == OMO_IO_FATAL)
            return 1;
    if (svc->inflight)
        return 0;
    if (omo_outbox_commit(svc))
        return 1;
    if (WITH_RETRY(svc, "[postgres] apply lease",
                   svc->store.ops->lease(svc->store.self, false, err, sizeof err)) != OMO_IO_OK)
        return 1;
    svc->lease = false;
    return 0;
}

/* Between batches: says this process is alive, and looks for gone instances under the lease. */
int omo_lease_housekeeping(omo_stream *svc)
{
    if (omo_stream_now() < svc->next_housekeeping)
        return 0;
    svc->next_housekeeping = omo_stream_now() + HOUSEKEEPING_S;
    if (omo_outbox_flight_finish(svc) ||
        WITH_RETRY(svc, "[postgres] heartbeat",
                   svc->store.ops->heartbeat(svc->store.self, err, sizeof err)) != OMO_IO_OK)
        return 1;
    /* Idle, it takes the lease only to look: the step gives it back when others are alive. */
    return svc->lease ? adopt_gone(svc) : lease_take_for(svc, false);
}

/* ---- the lease's time bound ------------------------------------------------------------- */

bool omo_lease_may_send(const omo_stream *svc)
{
    return !svc->fenced && omo_stream_now() < svc->beat_ok + svc->opts.lease_ms / 1000.0;
}

int omo_lease_lost(omo_stream *svc)
{
    pthread_mutex_lock(&svc->fence_mu);
    bool adopted = svc->adopted, dropped = svc->fenced && svc->dropped;
    pthread_mutex_unlock(&svc->fence_mu);
    if (adopted)
        omo_stream_log("[service] another omo process took this one for gone and adopted its "
                       "messages: stopping");
    else if (dropped)
        omo_stream_log("[service] fenced with messages unconfirmed: stopping, so that they are "
                       "read back and sent again by whichever process adopts this one");
    return adopted || dropped;
}

static struct timespec after_s(double s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long ns = ts.tv_nsec + (long)(s * 1e9);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    return ts;
}

/* The heartbeat thread: beats every fifth of the lease; fences this process (nothing more is
 * sent, the producer's queue is purged) once no beat has been recorded for the lease's length,
 * and lifts the fence when beats are recorded again if the producer held nothing. */
static void *beat_main(void *arg)
{
    omo_stream *svc = arg;
    double lease = svc->opts.lease_ms / 1000.0, said = 0;
    int timeout_ms = svc->opts.lease_ms / 4;
    pthread_mutex_lock(&svc->fence_mu);
    while (!svc->beater_stop) {
        struct timespec until = after_s(lease / 5);
        while (!svc->beater_stop &&
               pthread_cond_timedwait(&svc->fence_cv, &svc->fence_mu, &until) == 0)
            ;
        if (svc->beater_stop)
            break;
        pthread_mutex_unlock(&svc->fence_mu);
        char err[512] = "";
        double t = omo_stream_now();
        omo_io io = svc->store.ops->beat(svc->store.self, timeout_ms, err, sizeof err);
        if (io != OMO_IO_OK && omo_stream_now() - said > lease / 2) {
            omo_stream_log("[service] heartbeat: %s", err);
            said = omo_stream_now();
        }
        pthread_mutex_lock(&svc->fence_mu);
        if (io == OMO_IO_OK && t > svc->beat_ok)
            svc->beat_ok = t;
        if (io == OMO_IO_FATAL)
            svc->adopted = true;
        bool late = omo_stream_now() >= svc->beat_ok + lease;
        if (late && !svc->fenced) {
            svc->fenced = true;
            svc->dropped =
                svc->bus.ops && svc->bus.ops->purge ? svc->bus.ops->purge(svc->bus.self) : 0;
            omo_stream_log("[service] no heartbeat recorded for %d ms: sending stopped, %zu "
                           "messages purged from the producer",
                           svc->opts.lease_ms, svc->dropped);
        } else if (!late && svc->fenced && !svc->dropped && !svc->adopted) {
            svc->fenced = false;
            omo_stream_log("[service] heartbeats recorded again: sending resumes");
        }
    }
    pthread_mutex_unlock(&svc->fence_mu);
    return NULL;
}

void omo_lease_beat_start(omo_stream *svc, double since)
{
    if (svc->beating || !svc->store.ops->beat)
        return; /* a store without heartbeats: no time bound */
    pthread_mutex_lock(&svc->fence_mu);
    svc->beat_ok = since;
    pthread_mutex_unlock(&svc->fence_mu);
    svc->beating = pthread_create(&svc->beater, NULL, beat_main, svc) == 0;
}

void omo_lease_beat_stop(omo_stream *svc)
{
    if (!svc->beating)
        return;
    pthread_mutex_lock(&svc->fence_mu);
    svc->beater_stop = true;
    pthread_cond_signal(&svc->fence_cv);
    pthread_mutex_unlock(&svc->fence_mu);
    pthread_join(svc->beater, NULL);
    svc->beating = false;
}
