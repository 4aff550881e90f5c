/* The streaming service's state, shared by its modules (nothing outside orchestrator/stream*.c,
 * outbox.c, versions.c, lease.c and routes.c includes this):
 *   stream.c    the poll-apply-commit loop, the engine's sinks, rebuild and start;
 *   outbox.c    messages out: the outbox of a batch, the commit thread, delivery confirmations,
 *               reading partitions back;
 *   versions.c  rules versions: kept, loaded, followed in replays, swapped in on reload;
 *   lease.c     several processes: the apply lease, catching up, adopting gone instances;
 *   routes.c    every HTTP route.
 * Every function here runs on the service thread unless it says otherwise. */
#ifndef OMO_STREAM_STATE_H
#define OMO_STREAM_STATE_H

#include "stream.h"

#include "engine.h"
#include "event.h"
#include "strbuf.h"
#include "yamldoc.h"

#include <jansson.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#define LATENCY_BUCKETS 12
extern const double omo_stream_latency_bounds[LATENCY_BUCKETS];
#define BATCH_BUCKETS 8
extern const double omo_stream_batch_bounds[BATCH_BUCKETS];

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
    flight fl;         /* the batch being committed while the next one is applied */
    atomic_bool ready; /* rebuilt and consuming: /readyz may answer 200 (omo_stream_set_ready) */
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

    /* The lease's time bound (see lease.c): under fence_mu, shared with the heartbeat thread. */
    pthread_mutex_t fence_mu;
    pthread_cond_t fence_cv;
    pthread_t beater;
    bool beating;     /* the heartbeat thread runs */
    bool beater_stop; /* it is asked to end */
    double beat_ok;   /* when the last heartbeat the database recorded was sent */
    bool fenced;      /* no heartbeat for the lease's length: nothing may be sent */
    size_t dropped;   /* messages the producer held when fenced: this process must stop */
    bool adopted;     /* another process claimed this one: it must stop */

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

    /* Reads beside the stream (avail.c): the engine is guarded by a writer-preferring rwlock,
     * written only while events are applied to it; availability and promises read it on reader
     * threads of their own, for the HTTP threads. */
    pthread_rwlock_t view_lock;
    pthread_mutex_t readers_mu;
    pthread_cond_t readers_cv, readers_done;
    struct read_job *read_jobs; /* waiting for a reader thread */
    pthread_t *reader_threads;
    int nreader_threads;
    bool readers_stop;
    double next_due; /* when to look for expired holds and pauses again */
    atomic_uint_fast64_t promises, availability_reads;
};

/* Retries an outside-system call (which may write its reason into `err`) with backoff within
 * the retry budget. Evaluates to the last omo_io. */
#define WITH_RETRY(svc, what, call)                                                                \
    ({                                                                                             \
        omo_io io_;                                                                                \
        int delay_ = 50;                                                                           \
        double until_ = omo_stream_now() + (svc)->opts.retry_budget_ms / 1000.0;                   \
        for (;;) {                                                                                 \
            char err[512] = "";                                                                    \
            io_ = (call);                                                                          \
            if (io_ == OMO_IO_OK)                                                                  \
                break;                                                                             \
            if (io_ == OMO_IO_FATAL || omo_stream_now() > until_) {                                \
                omo_stream_log("[service] %s failed for good: %s", what, err);                     \
                break;                                                                             \
            }                                                                                      \
            omo_stream_log("[service] %s failed, retrying in %d ms: %s", what, delay_, err);       \
            usleep((useconds_t)delay_ * 1000);                                                     \
            delay_ = delay_ < 2000 ? delay_ * 2 : 2000;                                            \
        }                                                                                          \
        io_;                                                                                       \
    })

/* ---- stream.c ---- */
double omo_stream_now(void);
void omo_stream_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *omo_stream_topic_label(omo_topic t);
const char *omo_stream_topic_name(const omo_stream *svc, omo_topic t);
void omo_stream_count(counter_set *cs, const char *labels, uint64_t by);
void omo_stream_observe(histogram *h, const double *bounds, int nb, double v);
char *omo_stream_dup(const char *s, size_t n);
/* The input position of (t, p), created (offset -1) when asked. */
omo_position *omo_stream_position(omo_stream *svc, omo_topic t, int32_t p, bool create);
/* Applies one replayed event to the service's engine under the rules it was decided by. */
void omo_stream_replay_cb(void *ctx, const omo_applied_event *ev);
/* Replays into the engine, each under its rules, the applied events after the last one
 * applied here. */
omo_io omo_stream_replay_applied(omo_stream *svc, const char *what,
                                 void (*cb)(void *ctx, const omo_applied_event *ev));

/* ---- outbox.c ---- */
void omo_outbox_delivered(void *ctx, int64_t seq, omo_topic t, int32_t p, int64_t offset, bool ok,
                          const char *err);
/* Queues a message of the batch in hand (copies key and value) with the next outbox seq. */
void omo_outbox_add(omo_stream *svc, omo_topic t, const char *key, size_t key_len,
                    const char *value, size_t value_len);
void omo_outbox_header(omo_out_msg *m, const char *name, const char *value);
void omo_outbox_free_msg(omo_out_msg *m);
/* Reads a partition back from where an instance's confirmations end. Returns 0 or 1. */
int omo_outbox_read_back(omo_stream *svc, int32_t instance, omo_topic topic, int32_t partition,
                         void (*cb)(void *ctx, int64_t seq, int64_t offset), void *ctx);
/* Sends messages (after their commit), counting them unconfirmed. Returns 0 or 1. */
int omo_outbox_produce(omo_stream *svc, const omo_out_msg *msgs, size_t n);
/* Hands the batch in hand to a commit (on the commit thread when threaded). Returns 0 or 1. */
int omo_outbox_flight_start(omo_stream *svc, bool threaded);
/* Waits for the batch being committed, then sends what it produced. Returns 0 or 1. */
int omo_outbox_flight_finish(omo_stream *svc);
/* Commits the batch in hand now and sends what it produced. Returns 0 or 1. */
int omo_outbox_commit(omo_stream *svc);

/* ---- versions.c ---- */
typedef struct omo_rules_text {
    char *text;
    size_t len;
} omo_rules_text;
void omo_versions_text_cb(void *ctx, const char *text, size_t len);
omo_rules *omo_versions_keep(omo_stream *svc, omo_rules *rules);
omo_rules *omo_versions_find(omo_stream *svc, const char *hash);
/* Loads every rules version that was ever live. Returns 0 or 1. */
int omo_versions_load(omo_stream *svc);
void omo_versions_follow(omo_stream *svc, omo_engine *eng, const omo_rules **current,
                         const omo_applied_event *ev);
/* The rules version put live last, by whichever process, is made live here. Returns 0 or 1. */
int omo_versions_follow_live(omo_stream *svc);
bool omo_versions_swap(omo_stream *svc, omo_rules *next, const char *text, size_t len,
                       const char *by);
omo_rules *omo_versions_parse(omo_stream *svc, const char *name, const char *text, size_t len,
                              omo_diag *diag);
/* Re-reads the routing file. Returns 0, 1 (invalid: diag says why) or 2 (not recorded). */
int omo_versions_reload(omo_stream *svc, const char *by, omo_diag *diag);

/* ---- lease.c ---- */
/* The longest a process keeps the lease while others wait; how often it says it is alive. */
#define LEASE_SLICE_S  0.2
#define HOUSEKEEPING_S 2.0
/* Starts the heartbeat thread; `since` is a time before the instance was registered. */
void omo_lease_beat_start(omo_stream *svc, double since);
void omo_lease_beat_stop(omo_stream *svc);
/* Whether a message may be sent now (with fence_mu held): the last heartbeat the database
 * recorded was sent less than the lease's length ago. */
bool omo_lease_may_send(const omo_stream *svc);
/* 1 (with its reason logged) when this process must stop: another one claimed it, or it was
 * fenced while the producer held messages. */
int omo_lease_lost(omo_stream *svc);
typedef struct omo_out_msgs {
    omo_out_msg *v;
    size_t n, cap;
} omo_out_msgs;
void omo_out_msgs_cb(void *ctx, const omo_out_msg *m);
/* Takes the apply lease unless held (adopting gone instances) and catches the view up with
 * what the others applied. Returns 0 or 1. */
int omo_lease_take(omo_stream *svc);
/* Gives the lease back once everything committed is confirmed. Returns 0 or 1. */
int omo_lease_give(omo_stream *svc);
/* Between batches: says this process is alive, looks for gone instances. Returns 0 or 1. */
int omo_lease_housekeeping(omo_stream *svc);

/* The engine's write lock, held only while events are applied to it (or its rules swapped). */
void omo_stream_write_lock(omo_stream *svc);
void omo_stream_write_unlock(omo_stream *svc);

/* ---- routes.c ---- */
/* Answers the HTTP requests queued since the last call. */
void omo_routes_serve(omo_stream *svc);
/* Applies an event from the HTTP API like an input event, then commits and sends what it
 * produced. Nothing of a refused event is kept. Takes event. */
omo_apply_result omo_routes_apply_api(omo_stream *svc, json_t *event, omo_event_error *err);
void omo_routes_respond_json(omo_http_response *resp, int status, json_t *body);
void omo_routes_respond_error(omo_http_response *resp, int status, const char *error,
                              const char *key, const char *value);
/* The token of a request (the bearer, or ?token= on a GET), or NULL. */
const omo_token *omo_routes_token(omo_stream *svc, const omo_http_request *req);
int64_t omo_routes_wall_ms(void);

/* ---- avail.c ---- */
/* GET /availability and POST /promise, on the calling HTTP thread under the read lock. Returns
 * false when the request is not one of them. */
bool omo_avail_read(omo_stream *svc, const omo_http_request *req, omo_http_response *resp);
/* POST /holds, GET and DELETE /holds/{id}, POST /nodes/{id}/pause and /resume, on the service
 * thread. Returns false when the request is not one of them. */
bool omo_avail_serve(omo_stream *svc, const omo_http_request *req, const omo_token *tok,
                     omo_http_response *resp);
/* Applies hold.expired for every hold past its expiry and node.resumed for every pause past its
 * `until`, by the wall clock, as API events. Service thread. */
void omo_avail_due(omo_stream *svc);
/* The availability feed: queues a message for a changed record when its values differ from
 * what was last published (with publish false, only notes them as published). */
void omo_avail_feed(omo_stream *svc, omo_stock *st, bool publish);
void omo_avail_destroy(omo_stream *svc);

#endif
