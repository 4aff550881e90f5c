#include "mock.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const default_topics[] = {"omo.orders", "omo.stock", "omo.allocations",
                                             "omo.shipments", "omo.dead-letter"};

struct omo_kafka_mock {
    rd_kafka_t *rk; /* hosts the cluster */
    rd_kafka_mock_cluster_t *mcluster;
    char *bootstraps;
    pthread_mutex_t mu; /* guards producer creation */
    rd_kafka_t *producer;
    atomic_size_t failed;
};

static bool set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                size_t errlen)
{
    return rd_kafka_conf_set(conf, name, value, err, errlen) == RD_KAFKA_CONF_OK;
}

omo_kafka_mock *omo_kafka_mock_start(int brokers, int partitions, char *err, size_t errlen)
{
    omo_kafka_mock *mk = calloc(1, sizeof *mk);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!mk || !set(conf, "log_level", "3", err, errlen))
        goto fail;
    pthread_mutex_init(&mk->mu, NULL);
    mk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!mk->rk)
        goto fail;
    conf = NULL; /* now owned by mk->rk */
    mk->mcluster = rd_kafka_mock_cluster_new(mk->rk, brokers);
    if (!mk->mcluster) {
        snprintf(err, errlen, "cannot create a mock cluster");
        goto fail;
    }
    int replicas = brokers < 3 ? brokers : 3;
    for (size_t i = 0; i < sizeof default_topics / sizeof default_topics[0]; i++) {
        rd_kafka_resp_err_t e =
            rd_kafka_mock_topic_create(mk->mcluster, default_topics[i], partitions, replicas);
        if (e) {
            snprintf(err, errlen, "topic %s: %s", default_topics[i], rd_kafka_err2str(e));
            goto fail;
        }
    }
    mk->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(mk->mcluster));
    return mk;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    omo_kafka_mock_stop(mk);
    return NULL;
}

void omo_kafka_mock_stop(omo_kafka_mock *mk)
{
    if (!mk)
        return;
    if (mk->producer)
        rd_kafka_destroy(mk->producer);
    if (mk->mcluster)
        rd_kafka_mock_cluster_destroy(mk->mcluster);
    if (mk->rk) {
        rd_kafka_destroy(mk->rk);
        pthread_mutex_destroy(&mk->mu);
    }
    free(mk->bootstraps);
    free(mk);
}

const char *omo_kafka_mock_bootstraps(const omo_kafka_mock *mk)
{
    return mk->bootstraps;
}

struct rd_kafka_mock_cluster_s *omo_kafka_mock_cluster(omo_kafka_mock *mk)
{
    return mk->mcluster;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    omo_kafka_mock *mk = opaque;
    if (rkm->err) {
        fprintf(stderr, "[kafka:mock] delivery failed: %s\n", rd_kafka_err2str(rkm->err));
        mk->failed++;
    }
}

static rd_kafka_t *producer(omo_kafka_mock *mk)
{
    pthread_mutex_lock(&mk->mu);
    if (!mk->producer) {
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (set(conf, "bootstrap.servers", mk->bootstraps, err, sizeof err) &&
            set(conf, "acks", "all", err, sizeof err) &&
            set(conf, "linger.ms", "2", err, sizeof err) &&
            set(conf, "queue.buffering.max.messages", "1000000", err, sizeof err)) {
            rd_kafka_conf_set_opaque(conf, mk);
            rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
            mk->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
        }
        if (!mk->producer) {
            fprintf(stderr, "[kafka:mock] producer: %s\n", err);
            rd_kafka_conf_destroy(conf);
        }
    }
    pthread_mutex_unlock(&mk->mu);
    return mk->producer;
}

bool omo_kafka_mock_produce(omo_kafka_mock *mk, const char *topic, int32_t partition,
                            const char *const *keys, const char *const *values, size_t n)
{
    rd_kafka_t *p = producer(mk);
    if (!p)
        return false;
    size_t failed_before = mk->failed;
    for (size_t i = 0; i < n; i++) {
        const char *key = keys ? keys[i] : NULL;
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(
                    p, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                    RD_KAFKA_V_VALUE((void *)(uintptr_t)values[i], strlen(values[i])),
                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 10);
        if (e) {
            fprintf(stderr, "[kafka:mock] produce to %s: %s\n", topic, rd_kafka_err2str(e));
            return false;
        }
    }
    if (rd_kafka_flush(p, 60000)) {
        fprintf(stderr, "[kafka:mock] flush timed out\n");
        return false;
    }
    return mk->failed == failed_before;
}
