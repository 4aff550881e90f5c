/* librdkafka's mock cluster: the real Kafka protocol, in process. `omo demo` runs on one and the
 * tests start one each; other processes reach it over TCP at its bootstrap address. */
#ifndef OMO_KAFKA_MOCK_H
#define OMO_KAFKA_MOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct omo_kafka_mock omo_kafka_mock;
struct rd_kafka_mock_cluster_s;

/* Starts a cluster of `brokers` brokers and creates the five default topics (omo.orders,
 * omo.stock, omo.allocations, omo.shipments, omo.dead-letter) with `partitions` partitions
 * each. Returns NULL with err filled on failure. */
omo_kafka_mock *omo_kafka_mock_start(int brokers, int partitions, char *err, size_t errlen);
const char *omo_kafka_mock_bootstraps(const omo_kafka_mock *mk);
/* For fault injection (rd_kafka_mock_broker_set_down, ...). */
struct rd_kafka_mock_cluster_s *omo_kafka_mock_cluster(omo_kafka_mock *mk);
/* Produces n messages (keys may be NULL, or hold NULL entries) to topic, to `partition` or, when
 * it is -1, to the partition the default partitioner picks for the key; waits until all are
 * acknowledged. Thread-safe. Returns false on any failure (printed to stderr). */
bool omo_kafka_mock_produce(omo_kafka_mock *mk, const char *topic, int32_t partition,
                            const char *const *keys, const char *const *values, size_t n);
/* Stops the cluster; accepts NULL. */
void omo_kafka_mock_stop(omo_kafka_mock *mk);

#endif
