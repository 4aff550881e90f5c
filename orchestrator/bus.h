/* The event bus as the core sees it: messages in from the input topics, messages out to the
 * output topics. Implemented by connectors/kafka. The core decides output partitions and
 * carries an outbox sequence number in every output message, so that after a crash it can read
 * back what already reached a topic and send nothing twice. */
#ifndef OMO_BUS_H
#define OMO_BUS_H

#include "util.h"

/* Outside-system results: the core owns retry and backoff. */
typedef enum omo_io { OMO_IO_OK = 0, OMO_IO_RETRY, OMO_IO_FATAL } omo_io;

typedef enum omo_topic {
    OMO_TOPIC_ORDERS = 0,
    OMO_TOPIC_STOCK,
    OMO_TOPIC_ALLOCATIONS,
    OMO_TOPIC_SHIPMENTS,
    OMO_TOPIC_DEAD_LETTER,
    OMO_TOPIC_AVAILABILITY, /* optional: no name, no feed */
    OMO_TOPICS
} omo_topic;

typedef struct omo_header {
    const char *name;
    const char *value;
} omo_header;

#define OMO_MAX_HEADERS 8
#define OMO_SEQ_HEADER  "omo.seq"

/* A message read from an input topic; valid until the next poll. */
typedef struct omo_in_msg {
    omo_topic topic;
    int32_t partition;
    int64_t offset;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} omo_in_msg;

/* A message for an output topic. The bus adds header OMO_SEQ_HEADER = seq in decimal. */
typedef struct omo_out_msg {
    int64_t seq; /* outbox sequence, unique and increasing */
    omo_topic topic;
    int32_t partition;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    omo_header headers[OMO_MAX_HEADERS];
    int nheaders;
} omo_out_msg;

/* What the bus calls back into the core (from inside poll or flush, on the core's thread). */
typedef struct omo_bus_events {
    void *ctx;
    /* Where to resume a newly assigned input partition: the next offset to read, or -1 for the
     * beginning. */
    int64_t (*position)(void *ctx, omo_topic topic, int32_t partition);
    /* The partition was taken away (rebalance). */
    void (*revoked)(void *ctx, omo_topic topic, int32_t partition);
    /* An output message was written at offset (ok), or failed for good (!ok, err says why). */
    void (*delivered)(void *ctx, int64_t seq, omo_topic topic, int32_t partition, int64_t offset,
                      bool ok, const char *err);
} omo_bus_events;

struct omo_position; /* store.h */

typedef struct omo_bus_ops {
    /* Reads up to max input messages, waiting at most timeout_ms for the first. */
    omo_io (*poll)(void *self, omo_in_msg *msgs, size_t max, size_t *n, int timeout_ms, char *err,
                   size_t errlen);
    /* Queues one output message; delivery is reported through omo_bus_events.delivered. */
    omo_io (*produce)(void *self, const omo_out_msg *msg, char *err, size_t errlen);
    /* Waits until every queued output message is reported delivered, or timeout_ms passes
     * (then OMO_IO_RETRY). */
    omo_io (*flush)(void *self, int timeout_ms, char *err, size_t errlen);
    /* Number of partitions of an output topic (>= 1), or -1 on error. */
    int32_t (*partitions)(void *self, omo_topic topic, char *err, size_t errlen);
    /* Reads output partition from offset `from` to its current end and reports, per message,
     * its OMO_SEQ_HEADER value (or -1 when absent) and offset. */
    omo_io (*scan)(void *self, omo_topic topic, int32_t partition, int64_t from,
                   void (*cb)(void *ctx, int64_t seq, int64_t offset), void *ctx, char *err,
                   size_t errlen);
    /* True when the brokers answer (for /readyz). */
    bool (*ready)(void *self);
    /* Consumer lag of the assigned input partitions, or -1 when unknown (for /metrics). */
    int64_t (*lag)(void *self);
    void (*destroy)(void *self);
    /* Drops every output message queued or in flight (their deliveries are reported failed) and
     * returns how many the producer still held, reports not yet handed out included. Any
     * thread may call it. */
    size_t (*purge)(void *self);
    /* Optional (may be NULL): input positions the core has just committed to its store (the
     * positions of record). The bus may publish them, asynchronously and for information only
     * (Kafka: the group's committed offsets, so that its tools show the lag). */
    void (*committed)(void *self, const struct omo_position *pos, size_t n);
} omo_bus_ops;

typedef struct omo_bus {
    const omo_bus_ops *ops;
    void *self;
} omo_bus;

/* The output partition of a key: murmur2 as Kafka's Java client, so other producers agree. */
int32_t omo_bus_partition(const char *key, size_t len, int32_t partitions);

#endif
