/* Test harness: an in-process Kafka cluster (librdkafka's mock cluster) that clients reach over
 * TCP, with the five default omo topics, plus helpers to write input and read output.
 *
 * Mind the mock's retention: librdkafka 2.0.2 keeps at most 5 MB (or 100,000 batches) per
 * partition and drops the oldest beyond that, so a test that must read everything back keeps
 * each partition well under 5 MB. Each partition's leader is picked at random among its
 * replicas: a test that takes a broker down sets leaders first
 * (rd_kafka_mock_partition_set_leader). */
#ifndef OMO_TEST_KAFKA_H
#define OMO_TEST_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct omo_test_kafka omo_test_kafka;

/* Starts a cluster of `brokers` brokers and creates omo.orders, omo.stock, omo.allocations,
 * omo.shipments and omo.dead-letter with `partitions` partitions each. NULL on failure (the
 * reason is printed). */
omo_test_kafka *omo_test_kafka_start(int brokers, int partitions);
/* Stops the cluster; accepts NULL. */
void omo_test_kafka_stop(omo_test_kafka *tk);

/* The bootstrap.servers string for clients. */
const char *omo_test_kafka_bootstraps(const omo_test_kafka *tk);
/* The mock cluster, for fault injection (rd_kafka_mock_broker_set_down, ...). */
rd_kafka_mock_cluster_t *omo_test_kafka_mock(omo_test_kafka *tk);

/* Produces n messages (keys[i] may be NULL) to topic and waits until all are written. partition
 * -1 lets the key choose (librdkafka's default partitioner). Returns false on any failure. */
bool omo_test_kafka_produce(omo_test_kafka *tk, const char *topic, int32_t partition,
                            const char *const *keys, const char *const *values, size_t n);

/* One record read back. */
typedef struct omo_test_record {
    char *key; /* NULL when the record had none; NUL-terminated copies */
    char *value;
    size_t key_len, value_len;
    int32_t partition;
    int64_t offset;
    int64_t seq; /* header omo.seq, or -1 */
    int nheaders;
    char **hname, **hvalue; /* every header in order; a NULL value stays NULL */
} omo_test_record;

typedef struct omo_test_records {
    omo_test_record *recs;
    size_t n;
} omo_test_records;

/* Reads every partition of topic from its beginning to its current end with a plain
 * (read_uncommitted, group-less) consumer. Records are in partition order, then offset order.
 * Returns false on failure. Free with omo_test_records_free. */
bool omo_test_kafka_read_all(omo_test_kafka *tk, const char *topic, omo_test_records *out);
void omo_test_records_free(omo_test_records *recs);

/* Header `name` of a record, or NULL (absent or null). */
const char *omo_test_record_header(const omo_test_record *rec, const char *name);

#endif
