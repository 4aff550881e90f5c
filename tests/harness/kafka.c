#include "kafka.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const omo_topics[] = {"omo.orders", "omo.stock", "omo.allocations",
                                         "omo.shipments", "omo.dead-letter"};

struct omo_test_kafka {
    rd_kafka_t *rk; /* hosts the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    char *bootstraps;
    rd_kafka_t *producer; /* for omo_test_kafka_produce, made on first use */
    size_t failed;        /* delivery failures seen by that producer */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char why[256];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "test kafka: %s: %s\n", name, why);
        return false;
    }
    return true;
}

omo_test_kafka *omo_test_kafka_start(int brokers, int partitions)
{
    char why[256];
    omo_test_kafka *tk = calloc(1, sizeof *tk);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (!tk || !set(conf, "log_level", "3"))
        goto fail;
    tk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!tk->rk) {
        fprintf(stderr, "test kafka: %s\n", why);
        goto fail;
    }
    conf = NULL; /* now owned by tk->rk */
    tk->mcluster = rd_kafka_mock_cluster_new(tk->rk, brokers);
    if (!tk->mcluster) {
        fprintf(stderr, "test kafka: cannot create a mock cluster\n");
        goto fail;
    }
    int replicas = brokers < 3 ? brokers : 3;
    for (size_t i = 0; i < sizeof omo_topics / sizeof omo_topics[0]; i++) {
        rd_kafka_resp_err_t e =
            rd_kafka_mock_topic_create(tk->mcluster, omo_topics[i], partitions, replicas);
        if (e) {
            fprintf(stderr, "test kafka: topic %s: %s\n", omo_topics[i], rd_kafka_err2str(e));
            goto fail;
        }
    }
    tk->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(tk->mcluster));
    return tk;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    omo_test_kafka_stop(tk);
    return NULL;
}

void omo_test_kafka_stop(omo_test_kafka *tk)
{
    if (!tk)
        return;
    if (tk->producer)
        rd_kafka_destroy(tk->producer);
    if (tk->mcluster)
        rd_kafka_mock_cluster_destroy(tk->mcluster);
    if (tk->rk)
        rd_kafka_destroy(tk->rk);
    free(tk->bootstraps);
    free(tk);
}

const char *omo_test_kafka_bootstraps(const omo_test_kafka *tk)
{
    return tk->bootstraps;
}

rd_kafka_mock_cluster_t *omo_test_kafka_mock(omo_test_kafka *tk)
{
    return tk->mcluster;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    omo_test_kafka *tk = opaque;
    if (rkm->err) {
        fprintf(stderr, "test kafka: delivery: %s\n", rd_kafka_err2str(rkm->err));
        tk->failed++;
    }
}

bool omo_test_kafka_produce(omo_test_kafka *tk, const char *topic, int32_t partition,
                            const char *const *keys, const char *const *values, size_t n)
{
    char why[256];
    if (!tk->producer) {
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (!set(conf, "bootstrap.servers", tk->bootstraps) || !set(conf, "acks", "all") ||
            !set(conf, "linger.ms", "1") || !set(conf, "queue.buffering.max.messages", "1000000")) {
            rd_kafka_conf_destroy(conf);
            return false;
        }
        rd_kafka_conf_set_opaque(conf, tk);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        tk->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
        if (!tk->producer) {
            fprintf(stderr, "test kafka: %s\n", why);
            rd_kafka_conf_destroy(conf);
            return false;
        }
    }
    tk->failed = 0;
    for (size_t i = 0; i < n; i++) {
        const char *key = keys ? keys[i] : NULL;
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(
                    tk->producer, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                    RD_KAFKA_V_VALUE((void *)(uintptr_t)values[i], strlen(values[i])),
                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(tk->producer, 10);
        if (e) {
            fprintf(stderr, "test kafka: produce: %s\n", rd_kafka_err2str(e));
            return false;
        }
    }
    if (rd_kafka_flush(tk->producer, 30000)) {
        fprintf(stderr, "test kafka: flush timed out\n");
        return false;
    }
    return tk->failed == 0;
}

static char *dup_bytes(const void *p, size_t len)
{
    if (!p)
        return NULL;
    char *s = malloc(len + 1);
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

static void record_fill(omo_test_record *rec, const rd_kafka_message_t *rkm)
{
    memset(rec, 0, sizeof *rec);
    rec->key = dup_bytes(rkm->key, rkm->key_len);
    rec->key_len = rkm->key_len;
    rec->value = dup_bytes(rkm->payload ? rkm->payload : "", rkm->len);
    rec->value_len = rkm->len;
    rec->partition = rkm->partition;
    rec->offset = rkm->offset;
    rec->seq = -1;

    rd_kafka_headers_t *hdrs;
    if (rd_kafka_message_headers(rkm, &hdrs))
        return;
    size_t cnt = rd_kafka_header_cnt(hdrs);
    rec->hname = calloc(cnt ? cnt : 1, sizeof *rec->hname);
    rec->hvalue = calloc(cnt ? cnt : 1, sizeof *rec->hvalue);
    for (size_t i = 0; i < cnt; i++) {
        const char *name;
        const void *val;
        size_t size;
        if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size))
            break;
        rec->hname[i] = strdup(name);
        rec->hvalue[i] = dup_bytes(val, size);
        rec->nheaders++;
    }
    const char *seq = omo_test_record_header(rec, "omo.seq");
    if (seq) {
        char *end;
        long long v = strtoll(seq, &end, 10);
        if (*seq && *end == '\0')
            rec->seq = v;
    }
}

static int record_cmp(const void *a, const void *b)
{
    const omo_test_record *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

bool omo_test_kafka_read_all(omo_test_kafka *tk, const char *topic, omo_test_records *out)
{
    char why[256];
    bool ok = false;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_queue_t *rkq = NULL;
    int started = 0;
    int64_t *next = NULL, *high = NULL;
    size_t cap = 0;

    out->recs = NULL;
    out->n = 0;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!set(conf, "bootstrap.servers", tk->bootstraps) ||
        !set(conf, "isolation.level", "read_uncommitted") ||
        !set(conf, "enable.auto.commit", "false") || !set(conf, "log_level", "3")) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        fprintf(stderr, "test kafka: %s\n", why);
        rd_kafka_conf_destroy(conf);
        return false;
    }
    /* the simple consumer: assign() needs a group in librdkafka 2.0.2 */
    rkq = rd_kafka_queue_new(rk);
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "test kafka: metadata for %s: %s\n", topic,
                rd_kafka_err2str(e               ? e
                                 : md->topic_cnt ? md->topics[0].err
                                                 : e));
        goto done;
    }
    int np = md->topics[0].partition_cnt;
    next = calloc((size_t)np, sizeof *next);
    high = calloc((size_t)np, sizeof *high);
    int pending = 0;
    for (int p = 0; p < np; p++) {
        int64_t low;
        if ((e = rd_kafka_query_watermark_offsets(rk, topic, p, &low, &high[p], 10000))) {
            fprintf(stderr, "test kafka: watermarks: %s\n", rd_kafka_err2str(e));
            goto done;
        }
        next[p] = low;
        if (low < high[p])
            pending++;
    }
    for (; started < np; started++) {
        if (rd_kafka_consume_start_queue(rkt, started, RD_KAFKA_OFFSET_BEGINNING, rkq) == -1) {
            fprintf(stderr, "test kafka: consume_start: %s\n",
                    rd_kafka_err2str(rd_kafka_last_error()));
            goto done;
        }
    }
    int64_t deadline = now_ms() + 60000;
    while (pending > 0) {
        if (now_ms() > deadline) {
            fprintf(stderr, "test kafka: reading %s timed out\n", topic);
            goto done;
        }
        rd_kafka_message_t *rkm = rd_kafka_consume_queue(rkq, 100);
        if (!rkm)
            continue;
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "test kafka: consume: %s\n", rd_kafka_message_errstr(rkm));
        } else if (rkm->partition >= 0 && rkm->partition < np &&
                   rkm->offset < high[rkm->partition]) {
            if (out->n == cap) {
                cap = cap ? cap * 2 : 1024;
                out->recs = realloc(out->recs, cap * sizeof *out->recs);
            }
            record_fill(&out->recs[out->n++], rkm);
            int32_t p = rkm->partition;
            bool was_pending = next[p] < high[p];
            next[p] = rkm->offset + 1;
            if (was_pending && next[p] >= high[p])
                pending--;
        }
        rd_kafka_message_destroy(rkm);
    }
    qsort(out->recs, out->n, sizeof *out->recs, record_cmp);
    ok = true;
done:
    if (!ok)
        omo_test_records_free(out);
    for (int p = 0; p < started; p++)
        rd_kafka_consume_stop(rkt, p);
    if (rkq)
        rd_kafka_queue_destroy(rkq);
    if (md)
        rd_kafka_metadata_destroy(md);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    free(next);
    free(high);
    rd_kafka_destroy(rk);
    return ok;
}

void omo_test_records_free(omo_test_records *recs)
{
    if (!recs)
        return;
    for (size_t i = 0; i < recs->n; i++) {
        omo_test_record *r = &recs->recs[i];
        free(r->key);
        free(r->value);
        for (int h = 0; h < r->nheaders; h++) {
            free(r->hname[h]);
            free(r->hvalue[h]);
        }
        free(r->hname);
        free(r->hvalue);
    }
    free(recs->recs);
    recs->recs = NULL;
    recs->n = 0;
}

const char *omo_test_record_header(const omo_test_record *rec, const char *name)
{
    const char *found = NULL;
    for (int h = 0; h < rec->nheaders; h++)
        if (strcmp(rec->hname[h], name) == 0)
            found = rec->hvalue[h];
    return found;
}
