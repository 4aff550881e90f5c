/* Checkpoints of the service's view: when and how they are taken, and loading one on start.
 *
 * Taking one must not pause consumption. At a batch boundary, when one is due (every
 * state.checkpoint_events applied events, and at least every state.checkpoint_seconds while
 * events arrive), the service forks: the child has the view frozen at that boundary, copy on
 * write, serialises it (snapshot.c) and writes it through a database connection of its own,
 * while the parent goes on polling and applying. The pause is the fork itself (copying page
 * tables), measured and shown in /metrics.
 *
 * The view may hold a batch not committed yet (commits are pipelined). The child writes only
 * once the parent tells it, over a pipe, that every event the checkpoint covers is committed;
 * if the parent dies first the child reads end-of-file and writes nothing. So a checkpoint in
 * the database never covers an event that was not committed, and a kill -9 of either process
 * at any point leaves at most a checkpoint missing (the next start then replays a little
 * more). The row is written in one statement: whole or absent. After it the child runs the
 * janitor (retention, janitor.c) on the same frozen view. */
#include "stream_state.h"

#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* In the child: serialise, wait for the parent's word, write. Never returns. */
static void child_write(omo_stream *svc, int pipe_fd, int64_t seq)
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_IGN); /* Ctrl-C is the parent's to handle */
    signal(SIGHUP, SIG_IGN);
    omo_snapshot_meta meta = {
        .applied_seq = seq,
        .outbox_seq = svc->next_outbox_seq - 1,
        .taken_ms = wall_ms(),
        .event_ms = omo_engine_clock(svc->eng),
        .positions = svc->positions,
        .npositions = svc->npositions,
    };
    snprintf(meta.rules_version, sizeof meta.rules_version, "%s", svc->rules->version_hash);
    size_t len = 0;
    char *data = omo_snapshot_write(svc->eng, &meta, &len);
    char word = 0;
    ssize_t r;
    do
        r = read(pipe_fd, &word, 1);
    while (r < 0 && errno == EINTR);
    if (r != 1 || word != 'C')
        _exit(3); /* the parent is gone, or gave up on the batch */
    int64_t keep_after = meta.event_ms - svc->conf->retain_days * 86400000LL;
    for (int attempt = 0; attempt < 20; attempt++) {
        char err[512] = "";
        omo_store mine = {0};
        omo_io io = svc->store.ops->clone(svc->store.self, &mine, err, sizeof err);
        if (io == OMO_IO_OK) {
            io = mine.ops->save_checkpoint(mine.self, seq, meta.outbox_seq, meta.event_ms, data,
                                           len, keep_after, err, sizeof err);
            if (io == OMO_IO_OK) {
                free(data);
                int rc = omo_janitor_run(svc, &mine, seq, meta.event_ms);
                mine.ops->destroy(mine.self);
                _exit(rc ? 4 : 0);
            }
            mine.ops->destroy(mine.self);
        }
        omo_stream_log("[checkpoint] writing seq %lld failed: %s", (long long)seq, err);
        if (io == OMO_IO_FATAL)
            break;
        usleep(500 * 1000);
    }
    _exit(1);
}

static void reap(omo_stream *svc, bool wait)
{
    if (!svc->ckpt_pid)
        return;
    int status = 0;
    pid_t r = waitpid(svc->ckpt_pid, &status, wait ? 0 : WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR))
        return;
    /* 4: written, but the janitor failed (it says why) */
    bool ok = r > 0 && WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 4);
    if (ok)
        svc->ckpts_written++;
    else
        svc->ckpts_failed++;
    omo_stream_log("[checkpoint] seq %lld %s", (long long)svc->ckpt_seq,
                   ok ? "written" : "not written");
    svc->ckpt_pid = 0;
}

static void tell_committed(omo_stream *svc)
{
    if (svc->ckpt_pipe < 0 || svc->committed_seq < svc->ckpt_seq)
        return;
    char word = 'C';
    ssize_t r;
    do
        r = write(svc->ckpt_pipe, &word, 1);
    while (r < 0 && errno == EINTR);
    close(svc->ckpt_pipe);
    svc->ckpt_pipe = -1;
}

void omo_checkpoint_tick(omo_stream *svc)
{
    tell_committed(svc);
    reap(svc, false);
    if (svc->ckpt_pid || svc->ckpt_pipe >= 0 || svc->events_since_ckpt == 0 || !svc->lease)
        return;
    /* Look-ahead prices come from LPs warm-started from their last bases, which a checkpoint
     * does not hold: once a version with a `lookahead:` block was live, starts replay the
     * history (and nothing is pruned, since the janitor runs after a checkpoint). */
    for (size_t i = 0; i < svc->nversions; i++)
        if (svc->versions[i]->lookahead)
            return;
    double now = omo_stream_now();
    if (svc->events_since_ckpt < svc->conf->checkpoint_events &&
        now - svc->last_ckpt < (double)svc->conf->checkpoint_seconds)
        return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) {
        omo_stream_log("[checkpoint] pipe: %s", strerror(errno));
        return;
    }
    int64_t seq = svc->next_applied_seq - 1;
    double t0 = omo_stream_now();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[1]);
        child_write(svc, fds[0], seq);
    }
    double pause = omo_stream_now() - t0;
    close(fds[0]);
    if (pid < 0) {
        omo_stream_log("[checkpoint] fork: %s", strerror(errno));
        close(fds[1]);
        return;
    }
    svc->ckpt_pid = pid;
    svc->ckpt_pipe = fds[1];
    svc->ckpt_seq = seq;
    svc->ckpt_pause_last = pause;
    if (pause > svc->ckpt_pause_max)
        svc->ckpt_pause_max = pause;
    svc->events_since_ckpt = 0;
    svc->last_ckpt = now;
    omo_stream_log("[checkpoint] taking seq %lld in process %d (fork %.2f ms)", (long long)seq,
                   (int)pid, pause * 1000);
    tell_committed(svc);
}

void omo_checkpoint_finish(omo_stream *svc)
{
    if (svc->ckpt_pipe >= 0 && svc->committed_seq < svc->ckpt_seq) {
        close(svc->ckpt_pipe); /* its batch was never committed: the child writes nothing */
        svc->ckpt_pipe = -1;
    }
    tell_committed(svc);
    reap(svc, true);
}

typedef struct restore_ctx {
    omo_stream *svc;
    omo_engine *eng;
    int64_t after, seq;
    size_t refused;
} restore_ctx;

static bool restore_cb(void *ctx, int64_t applied_seq, const void *data, size_t len)
{
    restore_ctx *rc = ctx;
    if (applied_seq <= rc->after)
        return true; /* no newer than the view in hand: nothing to gain */
    char err[256] = "";
    omo_snapshot_meta meta;
    omo_engine *eng = omo_stream_engine_new(rc->svc);
    bool ok = omo_snapshot_read(data, len, eng, &meta, err, sizeof err);
    if (ok && meta.applied_seq != applied_seq) {
        snprintf(err, sizeof err, "covers seq %lld, stored as %lld", (long long)meta.applied_seq,
                 (long long)applied_seq);
        ok = false;
    }
    omo_snapshot_meta_clear(&meta);
    if (!ok) {
        omo_stream_log("[checkpoint] seq %lld refused: %s; trying an older one",
                       (long long)applied_seq, err);
        omo_engine_destroy(eng);
        rc->refused++;
        return false;
    }
    rc->eng = eng;
    rc->seq = applied_seq;
    return true;
}

int omo_checkpoint_restore(omo_stream *svc, int64_t after, bool *loaded)
{
    *loaded = false;
    restore_ctx rc = {.svc = svc, .after = after};
    double t0 = omo_stream_now();
    if (WITH_RETRY(svc, "[postgres] checkpoints",
                   svc->store.ops->checkpoints(svc->store.self, INT64_MAX, INT64_MAX, restore_cb,
                                               &rc, err, sizeof err)) != OMO_IO_OK) {
        omo_engine_destroy(rc.eng);
        return 1;
    }
    if (!rc.eng || rc.seq <= after) {
        omo_engine_destroy(rc.eng);
        return 0;
    }
    /* Readers on other threads see one engine or the other, never half of one. */
    omo_stream_write_lock(svc);
    omo_engine *old = svc->eng;
    svc->eng = rc.eng;
    /* What the availability feed last said of each record, as a replay would know it. */
    omo_inventory *inv = omo_engine_inventory(svc->eng);
    for (size_t i = 0, n = omo_inventory_nrecords(inv); i < n; i++)
        omo_avail_feed(svc, omo_inventory_at(inv, (int)i), false);
    omo_stream_write_unlock(svc);
    omo_engine_destroy(old);
    svc->next_applied_seq = rc.seq + 1;
    svc->committed_seq = rc.seq;
    svc->events_since_ckpt = 0;
    svc->last_ckpt = omo_stream_now();
    *loaded = true;
    omo_stream_log("[checkpoint] loaded seq %lld in %.2f s (%zu refused)", (long long)rc.seq,
                   omo_stream_now() - t0, rc.refused);
    return 0;
}
