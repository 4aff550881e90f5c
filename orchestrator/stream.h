/* The streaming service: input events from the bus are applied to the engine in batches; each
 * batch is committed to the store in one transaction with its input positions and the messages
 * it produced (the outbox); only then are those messages sent. After a crash the service
 * rebuilds the engine by replaying the applied events, resumes from the stored positions, reads
 * back what already reached the output topics and sends only the rest: every input event has
 * one effect and every output message appears once.
 *
 * One thread drives the service; HTTP requests from other threads are queued to it. */
#ifndef OMO_STREAM_H
#define OMO_STREAM_H

#include "api.h"
#include "network.h"
#include "rules.h"
#include "store.h"
#include "svcconf.h"

#include <signal.h>

typedef struct omo_stream_stats {
    uint64_t events_in, applied, duplicates, dead_letters;
    uint64_t orders, revisions, resourced, retried;
    uint64_t batches, produced, delivered;
    int64_t lag;
    double uptime_s;
} omo_stream_stats;

typedef struct omo_stream_opts {
    int max_batch;       /* events per batch; default 2000 */
    int poll_ms;         /* longest wait for input; default 20 */
    int retry_budget_ms; /* how long outside-system retries may go on; default 60000 */
    /* The lease's time bound: a process whose heartbeats have not reached the store for this
     * long sends nothing more, and another takes it for gone twice this long plus 2 s after
     * its last heartbeat; default 15000. */
    int lease_ms;
    volatile sig_atomic_t *stop;   /* set to drain and stop */
    volatile sig_atomic_t *reload; /* set to re-read the rules file */
    /* Commit each batch on a thread of its own while the next one is applied (its messages
     * still go out only once it is committed). */
    bool pipeline;
    /* Called after every batch from the service thread (progress lines). */
    void (*on_batch)(void *ctx, const omo_stream_stats *stats);
    void *on_batch_ctx;
} omo_stream_opts;

typedef struct omo_stream omo_stream;

/* Creates the service. Takes ownership of net, rules and store; conf is borrowed. */
omo_stream *omo_stream_create(const omo_svcconf *conf, omo_network *net, omo_rules *rules,
                              omo_store store, const omo_stream_opts *opts);
/* What the bus must call back into (stable for the stream's life): open the bus with it, then
 * attach the bus, whose ownership passes to the stream. */
const omo_bus_events *omo_stream_bus_events(omo_stream *svc);
void omo_stream_attach_bus(omo_stream *svc, omo_bus bus);
void omo_stream_destroy(omo_stream *svc);

/* Rebuilds the in-memory view from the store alone (no bus needed): replays every applied
 * event under the rules it was decided by, and reads the input positions. Returns 0 or 1. */
int omo_stream_rebuild(omo_stream *svc, char *err, size_t errlen);

/* Rebuilds the in-memory view from the store and sends what the outbox still holds. Returns 0,
 * or 1 when an outside system fails beyond the retry budget (err says why). */
int omo_stream_start(omo_stream *svc, char *err, size_t errlen);

/* From now on /readyz answers 200 whenever the bus and the store answer; before, 503. Call once
 * the view is rebuilt (omo_stream_start) and the service is about to consume. Any thread. */
void omo_stream_set_ready(omo_stream *svc);

/* Runs until *opts.stop is set (then drains: finishes the batch in hand, commits, waits for
 * deliveries) or a fault outlasts the retry budget. Returns the process exit code: 0 or 1. */
int omo_stream_run(omo_stream *svc);

/* One cycle: poll, apply, commit, produce, answer queued requests. Returns 0, or 1 on a fault
 * beyond the retry budget. */
int omo_stream_step(omo_stream *svc);

/* Waits until every produced message is confirmed (or timeout_ms) and commits the
 * confirmations. Returns 0 or 1. */
int omo_stream_flush(omo_stream *svc, int timeout_ms);

void omo_stream_stats_get(omo_stream *svc, omo_stream_stats *out);

/* The HTTP handler (any thread): queues the request to the service thread and waits. */
void omo_stream_http(void *svc, const omo_http_request *req, omo_http_response *resp);

/* The engine's view, for summaries (service thread only). */
struct omo_engine *omo_stream_engine(omo_stream *svc);

#endif
