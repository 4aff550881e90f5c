#include "mock.h"

#include "send.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const default_topics[] = {"omo.orders",      "omo.stock",
                                             "omo.allocations", "omo.shipments",
                                             "omo.dead-letter", "omo.availability"};

struct omo_kafka_mock {
    rd_kafka_t *rk; /* hosts the cluster */
    rd_kafka_mock_cluster_t *mcluster;
    char *bootstraps;
    pthread_mutex_t mu; /* guards producer creation */
    rd_kafka_t *producer;
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

static rd_kafka_t *producer(omo_kafka_mock *mk)
{
    pthread_mutex_lock(&mk->mu);
    if (!mk->producer) {
        char err[256];
        mk->producer = omo_kafka_producer_new(mk->bootstraps, NULL, 0, err, sizeof err);
        if (!mk->producer)
            fprintf(stderr, "[kafka:mock] producer: %s\n", err);
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
    char err[256];
    if (omo_kafka_produce_wait(p, topic, partition, keys, values, n, 60000, err, sizeof err)) {
        fprintf(stderr, "[kafka:mock] %s\n", err);
        return false;
    }
    return true;
}
