/* The state store as the core sees it: PostgreSQL is the source of truth. Every batch of
 * applied events is committed in one transaction together with the input positions it came
 * from, the messages it produced (the outbox) and the rows it changed. Implemented by
 * connectors/postgres. */
#ifndef OMO_STORE_H
#define OMO_STORE_H

#include "bus.h"

typedef struct omo_position {
    omo_topic topic;
    int32_t partition;
    int64_t next_offset; /* the next offset to read */
} omo_position;

/* An input event as applied, in apply order (seq). Replaying these through an engine rebuilds
 * the in-memory view exactly. */
typedef struct omo_applied_event {
    int64_t seq;
    omo_topic topic;
    int32_t partition;
    int64_t offset;
    const char *value;
    size_t value_len;
    const char *rules_version; /* rules in force when it was applied */
} omo_applied_event;

typedef struct omo_stock_row {
    const char *node_id, *sku;
    int64_t on_hand, reserved;
    const char *bin; /* "" when none */
} omo_stock_row;

/* An outbox message confirmed written to its topic. */
typedef struct omo_delivery {
    int64_t seq;
    omo_topic topic;
    int32_t partition;
    int64_t offset;
} omo_delivery;

typedef struct omo_batch {
    const omo_applied_event *events;
    size_t nevents;
    const omo_position *positions; /* input positions after this batch */
    size_t npositions;
    const omo_out_msg *outbox; /* new output messages (allocation revisions among them) */
    size_t noutbox;
    const omo_stock_row *stock; /* stock rows changed by this batch */
    size_t nstock;
    const omo_delivery *delivered; /* earlier outbox messages now confirmed */
    size_t ndelivered;
    /* Every message of this instance with a lower seq is confirmed (0: not known). */
    int64_t unconfirmed_from;
} omo_batch;

typedef struct omo_store_ops {
    /* Commits the whole batch in one transaction, or nothing of it. */
    omo_io (*commit)(void *self, const omo_batch *batch, char *err, size_t errlen);
    /* Every stored input position. */
    omo_io (*positions)(void *self, void (*cb)(void *ctx, const omo_position *pos), void *ctx,
                        char *err, size_t errlen);
    /* Every applied event with seq > after, in seq order, streamed (not all in memory). */
    omo_io (*replay)(void *self, int64_t after, void (*cb)(void *ctx, const omo_applied_event *ev),
                     void *ctx, char *err, size_t errlen);
    /* An instance's outbox messages not yet confirmed delivered, in seq order. */
    omo_io (*pending)(void *self, int32_t instance, void (*cb)(void *ctx, const omo_out_msg *msg),
                      void *ctx, char *err, size_t errlen);
    /* For an output partition, one past the highest offset confirmed to an instance (0 when
     * none): where reading back its unconfirmed messages starts. */
    omo_io (*confirmed_end)(void *self, int32_t instance, omo_topic topic, int32_t partition,
                            int64_t *next, char *err, size_t errlen);

    /* Several processes share the store. Each registers as a new instance, alive for as long
     * as its database session (taken up again on a new connection, unless another instance
     * adopted this one meanwhile: then every call fails for good). Its outbox rows and
     * confirmations are its own. */
    omo_io (*register_instance)(void *self, int32_t *id, char *err, size_t errlen);
    /* Takes or gives back the apply lease: one instance at a time applies events and commits
     * them. Taking it waits a second at most (then OMO_IO_RETRY): its holder may be cut off. A
     * commit of events after a lost connection takes it again. */
    omo_io (*lease)(void *self, bool take, char *err, size_t errlen);
    /* Records that this instance is alive (OMO_IO_FATAL once another one claimed it). */
    omo_io (*heartbeat)(void *self, char *err, size_t errlen);
    /* The same on a connection of its own, waiting timeout_ms at most (then OMO_IO_RETRY): for
     * one other thread, while the service thread makes the other calls. */
    omo_io (*beat)(void *self, int timeout_ms, char *err, size_t errlen);
    /* Finds the instances that are gone: whose last heartbeat is older than stale_ms by the
     * database's clock, or whose process is seen to have ended. Each is claimed for adoption
     * (it can never say it is alive again; a session of it still open is ended) and locked
     * before cb gets its id. *alive: how many others are alive. */
    omo_io (*gone_instances)(void *self, int64_t stale_ms, int *alive,
                             void (*cb)(void *ctx, int32_t id), void *ctx, char *err,
                             size_t errlen);
    /* Ends the sessions that unclaimed instances whose last heartbeat is older than stale_ms
     * still have (cut off, they may hold the apply lease), claiming and locking nothing. */
    omo_io (*end_stale)(void *self, int64_t stale_ms, char *err, size_t errlen);
    /* Takes a gone instance over: `found` (its messages read back from their topics) are
     * marked delivered, its other unconfirmed messages become this instance's, and it is
     * forgotten. */
    omo_io (*adopt)(void *self, int32_t gone, const omo_delivery *found, size_t nfound, char *err,
                    size_t errlen);
    /* Highest applied event seq and outbox seq (0 when empty). */
    omo_io (*max_seqs)(void *self, int64_t *applied, int64_t *outbox, char *err, size_t errlen);
    /* Records that a rules version went live (hash, who): the text is kept once per hash, the
     * activation every time. */
    omo_io (*save_rules)(void *self, const char *hash, const char *text, const char *by, char *err,
                         size_t errlen);
    /* Every message of one order on an output topic (allocation revisions, shipment
     * statuses), in the order sent, as JSON bodies. */
    omo_io (*order_messages)(void *self, omo_topic topic, const char *order_id,
                             void (*cb)(void *ctx, const char *body, size_t len), void *ctx,
                             char *err, size_t errlen);
    /* The text of a rules version that was live (NULL to cb when unknown). */
    omo_io (*rules_text)(void *self, const char *hash,
                         void (*cb)(void *ctx, const char *text, size_t len), void *ctx, char *err,
                         size_t errlen);
    /* Every activation of a rules version, oldest first. */
    omo_io (*rules_history)(void *self,
                            void (*cb)(void *ctx, const char *hash, const char *went_live,
                                       const char *by),
                            void *ctx, char *err, size_t errlen);
    /* True when the database answers (for /readyz). */
    bool (*ready)(void *self);
    void (*destroy)(void *self);
} omo_store_ops;

typedef struct omo_store {
    const omo_store_ops *ops;
    void *self;
} omo_store;

#endif
