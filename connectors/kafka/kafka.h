/* The event bus on Kafka (librdkafka): one group consumer for the input topics, one idempotent
 * producer for the output topics, and short-lived group-less consumers for read-backs.
 *
 * Threads: poll, produce, flush, scan, partitions, omo_kafka_commit_positions and destroy belong
 * to the core's thread; every omo_bus_events callback runs on that thread, from inside poll or
 * flush only (delivery reports that librdkafka hands over at another moment, e.g. while produce
 * waits for queue space, are held and passed on at the next poll or flush). ready and lag may be
 * called from any thread.
 *
 * Topics are not created here: whoever runs the cluster creates them with the partition counts
 * it wants. A broker with automatic topic creation creates a missing topic with its default
 * partition count when the producer first asks about it (librdkafka producers allow automatic
 * creation by default, consumers do not); `allow.auto.create.topics: false` in kafka.properties
 * makes partitions() report a missing output topic as an error instead. librdkafka 2.0.2's mock
 * cluster creates any topic a metadata request names, with 4 partitions (its default), whatever
 * the client allows (it advertises a Metadata version too old to carry the flag): the producer's
 * first look at a missing output topic creates it so, and the consumer does too for missing
 * input topics.
 *
 * Rebalances (cooperative-sticky): events->position is asked for each newly assigned partition
 * before it is fetched; events->revoked is called for each partition taken away before it is
 * released to the group, so the core may commit its work inside the callback. Messages of a
 * revoked partition still in the batch being filled are dropped. destroy leaves the group
 * without calling revoked. */
#ifndef OMO_KAFKA_H
#define OMO_KAFKA_H

#include "bus.h"
#include "store.h"
#include "svcconf.h"

typedef struct omo_kafka_conf {
    const char *brokers; /* bootstrap.servers */
    const char *group;   /* consumer group id; NULL = "omo" */
    /* Topic names by omo_topic; a NULL entry takes the default name ("omo.orders", ...). */
    const char *topics[OMO_TOPICS];
    /* From omo.yaml's kafka.properties: librdkafka properties applied last, to every client. */
    const omo_kv *props;
    size_t nprops;
} omo_kafka_conf;

/* Creates the clients and subscribes to the orders and stock topics. Nothing is awaited: the
 * group assignment arrives during later polls (events->position is asked for each partition
 * then). conf and events are copied. On error returns OMO_IO_FATAL (bad configuration) with
 * err filled, and *out is untouched. */
OMO_MUST_CHECK omo_io omo_kafka_open(const omo_kafka_conf *conf, const omo_bus_events *events,
                                     omo_bus *out, char *err, size_t errlen);

/* Commits input positions to the consumer group, asynchronously, so that Kafka tools show the
 * group's lag. The positions of record live in the state store: call this after the store's
 * commit. Positions of partitions not assigned to this member are skipped. Failures are logged,
 * never returned. The same as bus->ops->committed; does nothing for a bus not from
 * omo_kafka_open. */
void omo_kafka_commit_positions(omo_bus *bus, const omo_position *pos, size_t n);

/* The default name of a topic ("omo.orders", ...). */
const char *omo_kafka_default_topic(omo_topic topic);

#endif
