/* Ops calls beside the stream: GET /orders/{id}/explain, POST /rules/diff. Each runs on the
 * thread of its HTTP request, never on the service thread: it opens a store of its own, loads
 * the nearest checkpoint before what it looks at into engines of its own (the checkpoint before
 * the order's first decision; for a diff, the one before the last day's window) and replays the
 * applied events after it, each under the rules version it was decided by (parsed here from
 * the database, not shared with the service). So the stream never waits for one, and one costs
 * what the events since that checkpoint cost, not the history. Only the network and the service
 * configuration, which never change, are read from the service. One replay runs at a time, at
 * a lower priority than the stream. */
#include "stream_state.h"

#include "diff.h"
#include "snapshot.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* One replay at a time, at a lower priority than the stream: on a machine of two cores the
 * service thread and its database keep theirs, and memory holds one private view, not one per
 * caller. Later callers wait their turn on their own threads. */
static pthread_mutex_t turn = PTHREAD_MUTEX_INITIALIZER;

static void take_turn(void)
{
    pthread_mutex_lock(&turn);
    /* Linux: a thread's nice value is its own. */
    (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
}

static void give_turn(void)
{
    pthread_mutex_unlock(&turn);
}

typedef struct ops_replay {
    omo_stream *svc;
    omo_store store; /* its own connection */
    omo_rules **versions;
    size_t nversions, capversions;
    /* Fresh engines, made again when a checkpoint fails to load into them. */
    void (*reset)(struct ops_replay *op);
    void *ctx;
    omo_engine *eng[2];
    bool follow; /* eng[0] follows the rules versions of the events */
    const omo_rules *current;
    int64_t after; /* the events after this seq are replayed */
    omo_event ev;
    uint64_t events;
    int64_t latest_ms;
} ops_replay;

static void text_cb(void *ctx, const char *text, size_t len)
{
    omo_versions_text_cb(ctx, text, len);
}

/* A rules version by hash, parsed once per call. NULL when unknown or no longer valid. */
static const omo_rules *version(ops_replay *op, const char *hash)
{
    for (size_t i = 0; i < op->nversions; i++)
        if (!strcmp(op->versions[i]->version_hash, hash))
            return op->versions[i];
    omo_rules_text tc = {0};
    char err[512];
    if (op->store.ops->rules_text(op->store.self, hash, text_cb, &tc, err, sizeof err) !=
            OMO_IO_OK ||
        !tc.text)
        return NULL;
    omo_diag diag = {0};
    char name[64];
    snprintf(name, sizeof name, "rules %s", hash);
    omo_rules *r = omo_rules_parse(name, tc.text, tc.len, op->svc->net, &diag);
    omo_diag_clear(&diag);
    free(tc.text);
    if (r) {
        omo_grow((void **)&op->versions, &op->capversions, op->nversions + 1, sizeof(omo_rules *));
        op->versions[op->nversions++] = r;
    }
    return r;
}

static void last_cb(void *ctx, const char *hash, const char *went_live, const char *by)
{
    (void)went_live, (void)by;
    snprintf(ctx, OMO_ID_MAX + 1, "%s", hash);
}

/* The version live last, whichever process put it live. */
static const omo_rules *live_version(ops_replay *op)
{
    char last[OMO_ID_MAX + 1] = "", err[512];
    if (op->store.ops->rules_history(op->store.self, last_cb, last, err, sizeof err) != OMO_IO_OK ||
        !*last)
        return NULL;
    return version(op, last);
}

static bool open_store(ops_replay *op, omo_stream *svc)
{
    char err[512] = "";
    op->svc = svc;
    if (svc->store.ops->clone(svc->store.self, &op->store, err, sizeof err) == OMO_IO_OK)
        return true;
    omo_stream_log("[ops] cannot open a database connection: %s", err);
    return false;
}

static void close_store(ops_replay *op)
{
    if (op->store.ops)
        op->store.ops->destroy(op->store.self);
    for (size_t i = 0; i < op->nversions; i++)
        omo_rules_destroy(op->versions[i]);
    free(op->versions);
}

static bool load_cb(void *ctx, int64_t applied_seq, const void *data, size_t len)
{
    ops_replay *op = ctx;
    char err[256] = "";
    for (int i = 0; i < 2; i++) {
        omo_snapshot_meta meta;
        bool ok = !op->eng[i] || omo_snapshot_read(data, len, op->eng[i], &meta, err, sizeof err);
        if (op->eng[i])
            omo_snapshot_meta_clear(&meta);
        if (!ok) {
            omo_stream_log("[ops] checkpoint seq %lld refused: %s; trying an older one",
                           (long long)applied_seq, err);
            op->reset(op);
            return false;
        }
    }
    op->after = applied_seq;
    return true;
}

static void replay_cb(void *ctx, const omo_applied_event *ae)
{
    ops_replay *op = ctx;
    omo_event_error err;
    op->events++;
    if (op->follow && ae->rules_version && strcmp(op->current->version_hash, ae->rules_version)) {
        const omo_rules *r = version(op, ae->rules_version);
        if (r) {
            omo_engine_set_rules(op->eng[0], r);
            op->current = r;
        }
    }
    if (!omo_event_parse(ae->value, ae->value_len, op->svc->net, &op->ev, &err))
        return;
    if (op->ev.has_at && op->ev.at_ms > op->latest_ms)
        op->latest_ms = op->ev.at_ms;
    for (int i = 0; i < 2; i++)
        if (op->eng[i])
            (void)omo_engine_apply(op->eng[i], &op->ev, &err);
}

/* The nearest checkpoint within the bounds (none: from the first event retained), then the
 * events after it. Returns false when the database failed. */
static bool replay(ops_replay *op, int64_t max_outbox, int64_t max_event_ms)
{
    char err[512] = "";
    op->after = 0;
    if (op->store.ops->checkpoints(op->store.self, max_outbox, max_event_ms, load_cb, op, err,
                                   sizeof err) != OMO_IO_OK ||
        op->store.ops->replay(op->store.self, op->after, replay_cb, op, err, sizeof err) !=
            OMO_IO_OK) {
        omo_stream_log("[ops] replay failed: %s", err);
        return false;
    }
    return true;
}

/* ---- explain ---- */

typedef struct explain_ctx {
    const omo_network *net;
    const char *order_id;
    bool json;
    char *latest;
} explain_ctx;

static void keep_explanation(void *ctx, const omo_explanation *ex)
{
    explain_ctx *ec = ctx;
    free(ec->latest);
    ec->latest = ec->json ? omo_explain_json(ex, ec->net) : omo_explain_text(ex, ec->net);
}

static void explain_reset(ops_replay *op)
{
    explain_ctx *ec = op->ctx;
    omo_engine_destroy(op->eng[0]);
    op->eng[0] = omo_engine_create(op->svc->net, op->current, NULL, NULL);
    omo_engine_explain(op->eng[0], ec->order_id, keep_explanation, ec);
}

static int explain(omo_stream *svc, const char *order_id, bool json, char **out);

int omo_ops_explain(omo_stream *svc, const char *order_id, bool json, char **out)
{
    take_turn();
    int rc = explain(svc, order_id, json, out);
    give_turn();
    return rc;
}

static int explain(omo_stream *svc, const char *order_id, bool json, char **out)
{
    *out = NULL;
    ops_replay op = {0};
    explain_ctx ec = {svc->net, order_id, json, NULL};
    if (!open_store(&op, svc))
        return 2;
    int64_t first = 0;
    char err[512];
    int rc = 2;
    if (op.store.ops->order_seq(op.store.self, order_id, &first, err, sizeof err) != OMO_IO_OK)
        goto done;
    rc = 1;
    if (!first)
        goto done; /* never decided, or pruned away */
    rc = 2;
    op.current = live_version(&op);
    if (!op.current)
        goto done;
    op.reset = explain_reset;
    op.ctx = &ec;
    op.follow = true;
    explain_reset(&op);
    /* A checkpoint taken before the order's first revision was produced. */
    if (!replay(&op, first - 1, INT64_MAX))
        goto done;
    omo_stream_log("[ops] explain %s: from checkpoint seq %lld, %llu events replayed", order_id,
                   (long long)op.after, (unsigned long long)op.events);
    rc = ec.latest ? 0 : 1;
    *out = ec.latest;
    ec.latest = NULL;
done:
    free(ec.latest);
    omo_engine_destroy(op.eng[0]);
    close_store(&op);
    return rc;
}

/* ---- rules diff ---- */

typedef struct diff_ctx {
    const omo_rules *old_rules, *new_rules;
    omo_diff *diff;
} diff_ctx;

static void diff_reset(ops_replay *op)
{
    diff_ctx *dc = op->ctx;
    omo_diff_destroy(dc->diff);
    dc->diff = omo_diff_create(op->svc->net, dc->old_rules, dc->new_rules);
    op->eng[0] = omo_diff_engine(dc->diff, OMO_DIFF_OLD);
    op->eng[1] = omo_diff_engine(dc->diff, OMO_DIFF_NEW);
}

static int diff(omo_stream *svc, const char *text, size_t len, int format, omo_diag *diag,
                char **out, size_t *outlen);

int omo_ops_diff(omo_stream *svc, const char *text, size_t len, int format, omo_diag *diag,
                 char **out, size_t *outlen)
{
    take_turn();
    int rc = diff(svc, text, len, format, diag, out, outlen);
    give_turn();
    return rc;
}

static int diff(omo_stream *svc, const char *text, size_t len, int format, omo_diag *diag,
                char **out, size_t *outlen)
{
    *out = NULL;
    omo_rules *proposed = omo_rules_parse("POST /rules/diff", text, len, svc->net, diag);
    if (!proposed)
        return 1;
    ops_replay op = {0};
    diff_ctx dc = {.new_rules = proposed};
    int rc = 2;
    if (!open_store(&op, svc))
        goto done;
    dc.old_rules = live_version(&op);
    if (!dc.old_rules)
        goto done;
    op.reset = diff_reset;
    op.ctx = &dc;
    diff_reset(&op);
    /* The report speaks of the orders of the day before the latest event: every one of them
     * is decided again when the replay starts from a checkpoint before that day. */
    int64_t latest = atomic_load(&svc->latest_event_ms);
    if (!replay(&op, INT64_MAX, latest - 24LL * 3600 * 1000 - 1))
        goto done;
    omo_stream_log("[ops] rules diff: from checkpoint seq %lld, %llu events replayed",
                   (long long)op.after, (unsigned long long)op.events);
    omo_diff_since(dc.diff, op.latest_ms - 24LL * 3600 * 1000);
    omo_diff_report rep;
    omo_diff_report_build(dc.diff, &rep);
    omo_diff_info info = {.network_path = svc->conf->network_path,
                          .events_path = "applied events",
                          .events = op.events};
    *out = omo_diff_render(dc.diff, &rep, &info, (omo_diff_format)format, outlen);
    omo_diff_report_clear(&rep);
    rc = 0;
done:
    omo_diff_destroy(dc.diff);
    close_store(&op);
    omo_rules_destroy(proposed);
    return rc;
}
