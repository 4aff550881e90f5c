#include "send.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (rkm->err && rkm->_private)
        atomic_fetch_add((atomic_long *)rkm->_private, 1);
}

rd_kafka_t *omo_kafka_producer_new(const char *brokers, const omo_kv *props, size_t nprops,
                                   char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, errlen) ||
        rd_kafka_conf_set(conf, "acks", "all", err, errlen) ||
        rd_kafka_conf_set(conf, "linger.ms", "2", err, errlen) ||
        rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, errlen) ||
        rd_kafka_conf_set(conf, "log_level", "3", err, errlen))
        goto fail;
    for (size_t i = 0; i < nprops; i++)
        if (rd_kafka_conf_set(conf, props[i].key, props[i].value, err, errlen) != RD_KAFKA_CONF_OK)
            goto fail;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (p)
        return p; /* conf now owned by p */
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

void omo_kafka_producer_destroy(rd_kafka_t *p)
{
    if (p)
        rd_kafka_destroy(p);
}

/* Waits for every queued message; past the timeout, purges the rest and serves their reports,
 * since those point at the caller's counter and none may come after it returns. Returns true
 * when it had to purge. */
static bool drain(rd_kafka_t *p, int timeout_ms)
{
    if (!rd_kafka_flush(p, timeout_ms))
        return false;
    rd_kafka_purge(p, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    while (rd_kafka_outq_len(p) > 0)
        rd_kafka_poll(p, 100);
    return true;
}

long omo_kafka_produce_wait(rd_kafka_t *p, const char *topic, int32_t partition,
                            const char *const *keys, const char *const *values, size_t n,
                            int timeout_ms, char *err, size_t errlen)
{
    atomic_long failed = 0;
    for (size_t i = 0; i < n; i++) {
        const char *key = keys ? keys[i] : NULL;
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(
                    p, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                    RD_KAFKA_V_VALUE((void *)values[i], strlen(values[i])),
                    RD_KAFKA_V_OPAQUE(&failed), RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 10);
        if (e) {
            snprintf(err, errlen, "produce to %s: %s", topic, rd_kafka_err2str(e));
            drain(p, timeout_ms);
            return -1;
        }
    }
    if (drain(p, timeout_ms)) {
        snprintf(err, errlen, "%s: not every message was acknowledged in %d ms", topic, timeout_ms);
        return (long)n;
    }
    if (failed)
        snprintf(err, errlen, "%s: %ld messages failed", topic, (long)failed);
    return (long)failed;
}
