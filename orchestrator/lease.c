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
 * once: the second holder knows the position from the first one's events. */
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
        if (omo_outbox_flight_finish(svc) ||
            WITH_RETRY(svc, "[postgres] apply lease",
                       svc->store.ops->lease(svc->store.self, true, err, sizeof err)) != OMO_IO_OK)
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
