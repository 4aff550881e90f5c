/* Test harness: `omo run` as a child process over a generated day of events. The test process
 * owns the Kafka cluster (the product's mock cluster, reached over TCP) and a private
 * PostgreSQL, so the service can be killed at any instant and started again while its outside
 * systems live on. Also: feeding the day's events in file order, watching the service's log,
 * and the end-to-end checks that nothing was lost or doubled.
 *
 * Functions returning bool say why in err on failure; none of them aborts the test. */
#ifndef OMO_TEST_SERVICE_H
#define OMO_TEST_SERVICE_H

#include "bus.h"
#include "kafka/mock.h"
#include "postgres/local.h"

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct omo_test_service_opts {
    const char *name;              /* a short label for the directory and the consumer group */
    const char *omo_binary;        /* `gen` is expected beside it */
    int stores, skus, orders, bad; /* gen's --stores, --skus, --orders, --bad */
    int seed;                      /* gen's --seed */
    int brokers, partitions;       /* the mock cluster */
    const char *env[4];            /* NAME=VALUE settings for the service, NULL-terminated */
} omo_test_service_opts;

/* One input message: a line of the generated events.jsonl, in file order. */
typedef struct omo_test_input {
    omo_topic topic; /* OMO_TOPIC_ORDERS (order.*) or OMO_TOPIC_STOCK (stock.*) */
    char *key;       /* order_id, or node_id/sku */
    char *value;
    size_t line;      /* 1-based */
    char *order_id;   /* of a valid order.created, else NULL: it must reach the output */
    char *bad_reason; /* the reason code `omo solve` gave when it refused the line, else NULL */
} omo_test_input;

/* How many `omo run` processes one test can run at once, all with the one omo.yaml and so in
 * the one consumer group. Slot 0 is the process the single-process functions act on. */
enum { OMO_TEST_SLOTS = 6 };

/* A process slot other than slot 0 (whose state is kept in omo_test_service itself). */
typedef struct omo_test_proc {
    pid_t pid;               /* the running process, or 0 */
    long log_mark;           /* where the running process's log begins */
    char log[PATH_MAX + 16]; /* service-N.log for slot N */
} omo_test_proc;

typedef struct omo_test_service {
    char dir[PATH_MAX]; /* the test's directory: generated files, omo.yaml, service.log */
    char config[PATH_MAX + 16], log[PATH_MAX + 16], events[PATH_MAX + 16];
    char network[PATH_MAX + 16], routing[PATH_MAX + 16];
    char omo_binary[PATH_MAX];
    char slot_config[OMO_TEST_SLOTS][PATH_MAX + 16]; /* a slot's own omo.yaml, or "" */
    char group[96];
    const char *env[4];
    omo_kafka_mock *kafka;
    omo_pg_local *pg;

    omo_test_input *inputs;
    size_t ninputs;
    size_t nopening;  /* the leading stock.snapshot lines: the opening stock */
    size_t nbad;      /* inputs with a bad_reason */
    size_t nproduced; /* inputs[0..nproduced) are on their topics */

    pid_t pid;                              /* the running service (slot 0), or 0 */
    long log_mark;                          /* where the running service's log begins (slot 0) */
    int starts;                             /* processes started, in all slots */
    omo_test_proc more[OMO_TEST_SLOTS - 1]; /* slots 1, 2, ... */
    bool feeding;                           /* a feeder thread is running */
    bool feed_ok;                           /* every chunk it produced was acknowledged */
    pthread_t feeder;
    size_t feed_to, feed_chunk;
    int feed_pause_ms;
    bool feed_cancel; /* teardown: the feeder stops after its chunk in hand */
} omo_test_service;

/* Makes a directory, starts the cluster and the database, generates the day with gen, learns
 * from `omo solve` which lines are bad, writes omo.yaml (a fresh consumer group, no HTTP) and
 * runs `omo db migrate`. Returns NULL on failure (the reason is printed). */
omo_test_service *omo_test_service_setup(const omo_test_service_opts *opts);

/* Kills the running processes, stops the cluster and the database and frees svc. When passed, the
 * directory is removed; otherwise it is kept and its path and the tail of each slot's log are
 * printed. Accepts NULL. */
void omo_test_service_teardown(omo_test_service *svc, bool passed);

/* Produces inputs [nproduced, upto) in file order (each topic in file order) and waits until the
 * cluster acknowledged them. */
bool omo_test_service_produce(omo_test_service *svc, size_t upto, char *err, size_t errlen);
/* The same from a background thread, `chunk` inputs at a time with pause_ms between chunks. */
bool omo_test_service_feed(omo_test_service *svc, size_t upto, size_t chunk, int pause_ms);
/* Waits for the feeder thread; true when all it produced was acknowledged. */
bool omo_test_service_feed_wait(omo_test_service *svc);

/* Starts `omo run --config omo.yaml` with its output appended to service.log. */
bool omo_test_service_start(omo_test_service *svc, char *err, size_t errlen);
/* True while the started service has not exited. */
bool omo_test_service_alive(omo_test_service *svc);
/* Sends sig (0: none) and waits up to timeout_ms for the service to exit. Returns its exit code,
 * 128 + the signal that ended it, or -1 when it outlived the timeout (it is then killed). */
int omo_test_service_stop(omo_test_service *svc, int sig, int timeout_ms);
/* True when the running service's log (since its start) holds text. */
bool omo_test_service_log_has(omo_test_service *svc, const char *text);
/* Waits until the running service's log holds text; false at the timeout or when the service
 * exits first. */
bool omo_test_service_wait_log(omo_test_service *svc, const char *text, int timeout_ms);
/* Prints the last `lines` lines of service.log to stderr. */
void omo_test_service_log_tail(omo_test_service *svc, int lines);

/* Makes the slot's processes reach PostgreSQL at dsn (e.g. through a proxy) with an omo.yaml of
 * their own, the same in all else. */
bool omo_test_service_slot_dsn(omo_test_service *svc, int slot, const char *dsn, char *err,
                               size_t errlen);

/* Several processes in the one consumer group. slot is 0 .. OMO_TEST_SLOTS - 1; slot 0 is the
 * process of the functions above (its log is service.log, slot N's is service-N.log). Each
 * function behaves as its single-process counterpart, for that slot. */
bool omo_test_service_slot_start(omo_test_service *svc, int slot, char *err, size_t errlen);
bool omo_test_service_slot_alive(omo_test_service *svc, int slot);
int omo_test_service_slot_stop(omo_test_service *svc, int slot, int sig, int timeout_ms);
bool omo_test_service_slot_log_has(omo_test_service *svc, int slot, const char *text);
bool omo_test_service_slot_wait_log(omo_test_service *svc, int slot, const char *text,
                                    int timeout_ms);
void omo_test_service_slot_log_tail(omo_test_service *svc, int slot, int lines);
/* How often text occurs in the slot's log since its running process started (its whole log
 * when none runs). */
size_t omo_test_service_slot_log_count(omo_test_service *svc, int slot, const char *text);
/* The path of the slot's log file (which exists once the slot was started). */
const char *omo_test_service_slot_log(omo_test_service *svc, int slot);
/* The pid of the slot's running process, or 0. */
pid_t omo_test_service_slot_pid(omo_test_service *svc, int slot);
/* How many slots have a process that has not exited. */
int omo_test_service_running(omo_test_service *svc);

/* The single number a query returns, or -1 when the database cannot answer. */
long long omo_test_service_sql_count(omo_test_service *svc, const char *query);
/* Waits until applied_events holds n rows. False at the timeout or when no process is left
 * running. */
bool omo_test_service_wait_applied(omo_test_service *svc, long long n, int timeout_ms, char *err,
                                   size_t errlen);

/* After a clean stop: no outbox row unconfirmed, each input partition applied from offset 0
 * without a gap or a repeat, and its stored position just past the last applied offset. */
bool omo_test_service_check_drained(omo_test_service *svc, char *err, size_t errlen);

/* What the end-to-end check saw. */
typedef struct omo_test_check {
    size_t applied, orders, revisions, shipment_statuses, dead_letters, stock_rows;
} omo_test_check;

/* After a drain, with every input produced: the whole story is consistent.
 * - omo_test_service_check_drained holds;
 * - inputs: every message on the input topics was applied exactly once (applied_events holds
 *   each topic, partition and offset once, with the message's bytes), nothing else was;
 * - allocations, read back with a plain read_uncommitted consumer: no (order_id, revision)
 *   twice, each order's revisions 1..max without a gap and in order on its partition, keyed by
 *   order_id, and every valid input order present and no other;
 * - `omo solve` on the applied events in apply order writes exactly the same messages, byte for
 *   byte (a multiset keyed by order_id and revision);
 * - the outbox is fully confirmed, and each output record is the outbox row its omo.seq names,
 *   at the offset the row recorded; no omo.seq twice on a topic;
 * - stock: no row with reserved > on_hand or reserved < 0;
 * - dead letters: exactly the bad input messages, each once, with their key and value and the
 *   headers omo.error.reason (as `omo solve` reported), omo.error.field and omo.source.*;
 * - every allocation and shipment status validates against the JSON Schemas of config/schema/. */
bool omo_test_service_check(omo_test_service *svc, omo_test_check *out, char *err, size_t errlen);

/* Seconds on a monotonic clock. */
double omo_test_now(void);
/* Sleeps s seconds, signals or not. */
void omo_test_sleep(double s);
/* A uniform number in [0, 1) from *state (splitmix64): a schedule follows from its seed alone. */
double omo_test_rng_unit(uint64_t *state);

#endif
