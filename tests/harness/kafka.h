/* Test harness for Kafka: reading a topic back whole, with headers, from any cluster (clusters
 * themselves come from connectors/kafka/mock.h, the product's mock cluster).
 *
 * Mind the mock's retention: librdkafka 2.0.2 keeps at most 5 MB (or 100,000 batches) per
 * partition and drops the oldest beyond that, so a test that must read everything back keeps
 * each partition well under 5 MB. Each partition's leader is picked at random among its
 * replicas: a test that takes a broker down sets leaders first
 * (rd_kafka_mock_partition_set_leader). */
#ifndef OMO_TEST_KAFKA_H
#define OMO_TEST_KAFKA_H

#include "kafka/mock.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 * (read_uncommitted, group-less) consumer of the cluster at bootstraps. Records are in partition
 * order, then offset order. Returns false on failure (printed to stderr). Free with
 * omo_test_records_free. */
bool omo_test_kafka_read_all(const char *bootstraps, const char *topic, omo_test_records *out);
/* Frees the records and empties recs; accepts NULL. */
void omo_test_records_free(omo_test_records *recs);

/* Header `name` of a record (the last one of that name), or NULL (absent or null). */
const char *omo_test_record_header(const omo_test_record *rec, const char *name);

/* Writes the values of every record of the nsets sets, one a line, to DIR/outputs.jsonl and
 * validates them against the JSON Schemas of config/schema/ (tests/schema/validate.py, with
 * Debian's python3 and python3-jsonschema). Returns false with the first lines of the report in
 * err when any does not validate. */
bool omo_test_records_valid(const char *dir, const omo_test_records *const *sets, size_t nsets,
                            char *err, size_t errlen);

#endif
