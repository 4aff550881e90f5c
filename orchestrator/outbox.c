/* Messages out: each batch's outbox, committed on a thread of its own while the next batch is
 * applied, then sent; delivery confirmations, committed with the next batch; messages
 * confirmed without an offset, placed by reading their partition back. */
#include "stream_state.h"

#include <stdlib.h>
#include <string.h>

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

void omo_outbox_delivered(void *ctx, int64_t seq, omo_topic t, int32_t p, int64_t offset, bool ok,
                          const char *err)
{
    omo_stream *svc = ctx;
    if (svc->inflight)
        svc->inflight--;
    if (!ok) {
        /* Left in the outbox: sent again at the next start. */
        omo_stream_log("[kafka:%s] delivery of seq=%lld failed: %s", omo_stream_topic_label(t),
                       (long long)seq, err ? err : "?");
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

void omo_outbox_add(omo_stream *svc, omo_topic t, const char *key, size_t key_len,
                    const char *value, size_t value_len)
{
    omo_grow((void **)&svc->outbox, &svc->capoutbox, svc->noutbox + 1, sizeof(omo_out_msg));
    omo_out_msg *m = &svc->outbox[svc->noutbox++];
    memset(m, 0, sizeof *m);
    m->seq = svc->next_outbox_seq++;
    m->topic = t;
    m->partition = omo_bus_partition(key, key_len, svc->out_parts[t]);
    m->key = omo_stream_dup(key, key_len);
    m->key_len = key_len;
    m->value = omo_stream_dup(value, value_len);
    m->value_len = value_len;
}

void omo_outbox_header(omo_out_msg *m, const char *name, const char *value)
{
    if (m->nheaders < OMO_MAX_HEADERS)
        m->headers[m->nheaders++] = (omo_header){omo_xstrdup(name), omo_xstrdup(value)};
}

void omo_outbox_free_msg(omo_out_msg *m)
{
    free((char *)m->key);
    free((char *)m->value);
    for (int h = 0; h < m->nheaders; h++) {
        free((char *)m->headers[h].name);
        free((char *)m->headers[h].value);
    }
}

static void stock_row(void *ctx, omo_stock *st)
{
    omo_stream *svc = ctx;
    omo_grow((void **)&svc->stock, &svc->capstock, svc->nstock + 1, sizeof(omo_stock_row));
    svc->stock[svc->nstock++] =
        (omo_stock_row){svc->net->nodes[st->node].id,
                        omo_inventory_sku_name(omo_engine_inventory(svc->eng), st->sku),
                        st->on_hand, st->reserved, st->bin};
    omo_avail_feed(svc, st, true);
}

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
int omo_outbox_read_back(omo_stream *svc, int32_t instance, omo_topic topic, int32_t partition,
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
        if (omo_outbox_read_back(svc, svc->instance, u->topic, u->partition, place_cb, &pc))
            return 1;
    }
    size_t placed = 0;
    for (size_t i = 0; i < svc->nunplaced; i++) {
        const unplaced_delivery *u = &svc->unplaced[i];
        if (u->placed)
            placed++;
        else /* not on the topic after all: left in the outbox, sent again at the next start */
            omo_stream_log("[kafka:%s] seq=%lld was confirmed but is not on partition %d",
                           omo_stream_topic_label(u->topic), (long long)u->seq, u->partition);
    }
    omo_stream_log("[kafka] %zu messages confirmed without an offset, %zu found by reading back",
                   svc->nunplaced, placed);
    svc->nunplaced = 0;
    return 0;
}

/* Hands one message to the producer, only while the lease's time bound allows (the heartbeat
 * thread's fence and this check exclude each other), retrying within the budget. */
static int produce_one(omo_stream *svc, const omo_out_msg *m)
{
    int delay = 50;
    double until = omo_stream_now() + svc->opts.retry_budget_ms / 1000.0;
    for (bool said = false;;) {
        char err[512] = "";
        pthread_mutex_lock(&svc->fence_mu);
        bool may = omo_lease_may_send(svc);
        omo_io io = may ? svc->bus.ops->produce(svc->bus.self, m, err, sizeof err) : OMO_IO_RETRY;
        pthread_mutex_unlock(&svc->fence_mu);
        if (io == OMO_IO_OK)
            return 0;
        if (!may) {
            if (omo_lease_lost(svc))
                return 1;
            snprintf(err, sizeof err, "no heartbeat recorded for %d ms", svc->opts.lease_ms);
        }
        if (io == OMO_IO_FATAL || omo_stream_now() > until) {
            omo_stream_log("[service] [kafka] produce failed for good: %s", err);
            return 1;
        }
        if (may || !said)
            omo_stream_log("[service] [kafka] produce failed, retrying in %d ms: %s", delay, err);
        said = !may;
        usleep((useconds_t)delay * 1000);
        delay = delay < 2000 ? delay * 2 : 2000;
    }
}

int omo_outbox_produce(omo_stream *svc, const omo_out_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (produce_one(svc, &msgs[i]))
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
int omo_outbox_flight_start(omo_stream *svc, bool threaded)
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
int omo_outbox_flight_finish(omo_stream *svc)
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
            omo_stream_observe(&svc->batch_sizes, omo_stream_batch_bounds, BATCH_BUCKETS,
                               (double)b->nevents);
        }
        rc = omo_outbox_produce(svc, b->outbox, b->noutbox);
    }
    for (size_t i = 0; i < b->nevents; i++)
        free((char *)b->events[i].value);
    for (size_t i = 0; i < b->noutbox; i++)
        omo_outbox_free_msg(&fl->outbox[i]);
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
int omo_outbox_commit(omo_stream *svc)
{
    return omo_outbox_flight_finish(svc) || omo_outbox_flight_start(svc, false) ||
           omo_outbox_flight_finish(svc);
}
