/* Retention in PostgreSQL, apart from the hot path: after state.retain_days (by event time)
 * applied events, delivered messages and finished orders leave the database.
 *
 * It runs in the checkpoint's child (checkpoint.c), right after the checkpoint is written,
 * on the child's own connection and with the view frozen at the checkpoint's batch boundary:
 * the service thread never waits for it. What may go is bounded by the newest checkpoint
 * older than the window: the applied events it covers (a start loads it or a newer one and
 * replays only what follows) and the messages before the outbox seq it covers that every
 * instance has confirmed. Those leave as whole partitions (sql/0010_retention.sql); the
 * messages of orders still open in the frozen view are first kept aside, so GET /orders/{id}
 * answers for an open order however old, and 404 for a finished one pruned away. Memory is
 * pruned by the engine itself, by event time (engine.c, omo_engine_set_retention). A kill at
 * any point leaves each step done or not: nothing lost, nothing doubled. */
#include "stream_state.h"

#include <stdlib.h>

typedef struct open_list {
    const char **v;
    size_t n, cap;
} open_list;

static void open_cb(void *ctx, const char *order_id)
{
    open_list *l = ctx;
    omo_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(char *));
    l->v[l->n++] = order_id;
}

int omo_janitor_run(omo_stream *svc, omo_store *store, int64_t applied_seq, int64_t event_ms)
{
    open_list open = {0};
    omo_engine_each_open(svc->eng, open_cb, &open);
    omo_prune p = {.before_ms = event_ms - svc->conf->retain_days * 24LL * 3600 * 1000,
                   .applied_seq = applied_seq,
                   .outbox_seq = svc->next_outbox_seq - 1,
                   /* the seqs in use by the next checkpoints, a few times over */
                   .ahead = 4 * svc->conf->checkpoint_events,
                   .open_orders = open.v,
                   .nopen = open.n};
    omo_pruned done;
    char err[512] = "";
    double t0 = omo_stream_now();
    omo_io io = store->ops->prune(store->self, &p, &done, err, sizeof err);
    free(open.v);
    if (io != OMO_IO_OK) {
        omo_stream_log("[janitor] pruning failed (tried again after the next checkpoint): %s", err);
        return 1;
    }
    if (done.partitions_dropped || done.partitions_made || done.messages_kept)
        omo_stream_log("[janitor] events up to seq %lld and messages up to seq %lld may go: "
                       "%d partitions dropped, %d made, %lld messages of open orders kept "
                       "(%.2f s)",
                       (long long)done.applied_below, (long long)done.outbox_below,
                       done.partitions_dropped, done.partitions_made, (long long)done.messages_kept,
                       omo_stream_now() - t0);
    return 0;
}

int omo_janitor_prepare(omo_stream *svc)
{
    omo_prune p = {.applied_seq = svc->next_applied_seq - 1,
                   .outbox_seq = svc->next_outbox_seq - 1,
                   .ahead = 4 * svc->conf->checkpoint_events,
                   .ensure_only = true};
    omo_pruned done;
    return WITH_RETRY(svc, "[postgres] partitions",
                      svc->store.ops->prune(svc->store.self, &p, &done, err, sizeof err)) !=
           OMO_IO_OK;
}
