/* Writing a few messages to a topic and waiting for them: for command-line tools (omo stock
 * import-bins) and the mock cluster's feeder. */
#ifndef OMO_KAFKA_SEND_H
#define OMO_KAFKA_SEND_H

#include "svcconf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rd_kafka_s rd_kafka_t;

/* A producer for brokers with extra librdkafka properties (may be NULL); NULL with err filled
 * on a configuration error. Destroy with omo_kafka_producer_destroy. */
rd_kafka_t *omo_kafka_producer_new(const char *brokers, const omo_kv *props, size_t nprops,
                                   char *err, size_t errlen);

void omo_kafka_producer_destroy(rd_kafka_t *producer);

/* Produces n messages (keys may be NULL or hold NULL entries) to topic, to `partition` or, when
 * it is -1, to the partition the key picks; waits until every one is acknowledged or failed.
 * Returns how many failed (0 on success), or -1 when they could not even be queued. */
long omo_kafka_produce_wait(rd_kafka_t *producer, const char *topic, int32_t partition,
                            const char *const *keys, const char *const *values, size_t n,
                            int timeout_ms, char *err, size_t errlen);

#endif
