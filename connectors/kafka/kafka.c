#include "kafka.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(intptr_t) >= sizeof(int64_t), "an outbox seq travels as a message opaque");

/* How long produce waits for queue space, how long metadata and watermark requests may take,
 * how long a read-back may go without progress, and how long closing waits for a first
 * assignment (longer once the member has joined: the window librdkafka 2.0.2 aborts in). */
#define KAFKA_QUEUE_WAIT_MS   500
#define KAFKA_METADATA_MS     5000
#define KAFKA_READY_MS        2000
#define KAFKA_SCAN_STALL_MS   30000
#define KAFKA_ERROR_REPEAT_MS 10000
#define KAFKA_CLOSE_WAIT_MS   5000
#define KAFKA_CLOSE_JOINED_MS 20000
#define KAFKA_LOG_PARTITIONS  16

static const char *const default_topics[OMO_TOPICS] = {
    [OMO_TOPIC_ORDERS] = "omo.orders",           [OMO_TOPIC_STOCK] = "omo.stock",
    [OMO_TOPIC_ALLOCATIONS] = "omo.allocations", [OMO_TOPIC_SHIPMENTS] = "omo.shipments",
    [OMO_TOPIC_DEAD_LETTER] = "omo.dead-letter", [OMO_TOPIC_AVAILABILITY] = NULL,
};

/* A delivery report that arrived outside poll and flush, held for the next one. */
typedef struct kafka_report {
    int64_t seq;
    int topic;
    int32_t partition;
    int64_t offset;
    rd_kafka_resp_err_t err;
} kafka_report;

typedef struct kafka_tp {
    int topic;
    int32_t partition;
} kafka_tp;

/* Repeated identical errors (a broker down is reported at every reconnect) are logged once per
 * KAFKA_ERROR_REPEAT_MS. */
typedef struct kafka_limiter {
    char last[256];
    int64_t at_ms;
} kafka_limiter;

typedef struct omo_kafka {
    omo_bus_events events;
    char *brokers, *group;
    char *topics[OMO_TOPICS];
    omo_kv *props;
    size_t nprops;

    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    rd_kafka_topic_t *rkt[OMO_TOPICS]; /* producer topic handles, made on first use */

    /* The messages handed out by the last poll: their payloads back the omo_in_msg pointers,
     * so they live until the next poll. During a poll, held[i] is behind batch[i]. */
    rd_kafka_message_t **held;
    size_t nheld, capheld;
    omo_in_msg *batch;

    bool serving; /* inside poll or flush: reports go straight to the core */
    bool closing; /* inside destroy: the core hears nothing more */
    kafka_report *deferred;
    size_t ndeferred, capdeferred;

    kafka_tp *assigned; /* this member's input partitions, as the rebalance callback saw them */
    bool ever_assigned; /* the group gave this member an assignment (maybe empty) once */
    size_t nassigned, capassigned;

    /* A broker-side error met during the current poll, for OMO_IO_RETRY when nothing came. */
    bool transient;
    char transient_msg[640];

    kafka_limiter consumer_errors, producer_errors;
} omo_kafka;

static const omo_bus_ops kafka_ops;

const char *omo_kafka_default_topic(omo_topic topic)
{
    return (unsigned)topic < OMO_TOPICS ? default_topics[topic] : NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line per event, written with one stdio call so that lines from librdkafka's threads do not
 * interleave. */
static void kafka_log(const char *client, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void kafka_log(const char *client, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[kafka:%s] %s\n", client, line);
}

static void kafka_log_limited(kafka_limiter *lim, const char *client, const char *msg)
{
    int64_t now = now_ms();
    if (strncmp(lim->last, msg, sizeof lim->last - 1) == 0 &&
        now - lim->at_ms < KAFKA_ERROR_REPEAT_MS)
        return;
    snprintf(lim->last, sizeof lim->last, "%s", msg);
    lim->at_ms = now;
    kafka_log(client, "error: %s", msg);
}

static const char *level_name(int level)
{
    if (level <= 3)
        return "error";
    if (level == 4)
        return "warning";
    if (level == 5)
        return "notice";
    if (level == 6)
        return "info";
    return "debug";
}

/* Connection failures and fatal errors reach error_cb as well: logged once, from there. */
static bool reported_by_error_cb(const char *fac)
{
    return strcmp(fac, "FAIL") == 0 || strcmp(fac, "FATAL") == 0;
}

/* log_cb runs on librdkafka's threads: it touches nothing but stderr. */
static void log_consumer(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (!reported_by_error_cb(fac))
        kafka_log("consumer", "%s: %s: %s", level_name(level), fac, buf);
}

static void log_producer(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (!reported_by_error_cb(fac))
        kafka_log("producer", "%s: %s: %s", level_name(level), fac, buf);
}

static void log_scan(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    kafka_log("scan", "%s: %s: %s", level_name(level), fac, buf);
}

static int topic_of(const omo_kafka *k, const char *name)
{
    for (int t = 0; t < OMO_TOPICS; t++)
        if (k->topics[t] && strcmp(k->topics[t], name) == 0)
            return t;
    return -1;
}

static bool is_input(int topic)
{
    return topic == OMO_TOPIC_ORDERS || topic == OMO_TOPIC_STOCK;
}

/* OMO_IO_FATAL with the reason when either client has raised a fatal error. */
static omo_io fatal_check(const omo_kafka *k, char *err, size_t errlen)
{
    char reason[512];
    rd_kafka_t *clients[2] = {k->producer, k->consumer};
    for (int i = 0; i < 2; i++) {
        if (clients[i] && rd_kafka_fatal_error(clients[i], reason, sizeof reason)) {
            snprintf(err, errlen, "kafka %s: fatal: %s", i == 0 ? "producer" : "consumer", reason);
            return OMO_IO_FATAL;
        }
    }
    return OMO_IO_OK;
}

static void on_error(omo_kafka *k, rd_kafka_t *rk, kafka_limiter *lim, const char *client, int err,
                     const char *reason)
{
    char msg[512];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[256];
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        snprintf(msg, sizeof msg, "fatal: %s", fatal);
        kafka_log(client, "error: %s", msg);
        return;
    }
    snprintf(msg, sizeof msg, "%s", reason);
    kafka_log_limited(lim, client, msg);
    k->transient = true;
    snprintf(k->transient_msg, sizeof k->transient_msg, "kafka %s: %s", client, reason);
}

static void error_consumer(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    omo_kafka *k = opaque;
    on_error(k, rk, &k->consumer_errors, "consumer", err, reason);
}

static void error_producer(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    omo_kafka *k = opaque;
    on_error(k, rk, &k->producer_errors, "producer", err, reason);
}

static void report(omo_kafka *k, const kafka_report *r)
{
    if (!k->events.delivered || r->topic < 0)
        return;
    k->events.delivered(k->events.ctx, r->seq, (omo_topic)r->topic, r->partition, r->offset,
                        r->err == RD_KAFKA_RESP_ERR_NO_ERROR,
                        r->err ? rd_kafka_err2str(r->err) : NULL);
}

static void dispatch_deferred(omo_kafka *k)
{
    /* A report may lead the core to produce, which may defer more: take the list first. */
    while (k->ndeferred > 0) {
        kafka_report *list = k->deferred;
        size_t n = k->ndeferred;
        k->deferred = NULL;
        k->ndeferred = k->capdeferred = 0;
        for (size_t i = 0; i < n; i++)
            report(k, &list[i]);
        free(list);
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    omo_kafka *k = opaque;
    if (k->closing)
        return;
    kafka_report r = {
        .seq = (int64_t)(intptr_t)rkm->_private,
        .topic = topic_of(k, rd_kafka_topic_name(rkm->rkt)),
        .partition = rkm->partition,
        .offset = rkm->offset,
        .err = rkm->err,
    };
    if (r.err)
        kafka_log_limited(&k->producer_errors, "producer",
                          rd_kafka_err2str(r.err)); /* one line per cause, not per message */
    if (k->serving) {
        report(k, &r);
        return;
    }
    omo_grow((void **)&k->deferred, &k->capdeferred, k->ndeferred + 1, sizeof *k->deferred);
    k->deferred[k->ndeferred++] = r;
}

static bool assigned_has(const omo_kafka *k, int topic, int32_t partition)
{
    for (size_t i = 0; i < k->nassigned; i++)
        if (k->assigned[i].topic == topic && k->assigned[i].partition == partition)
            return true;
    return false;
}

static void assigned_remove(omo_kafka *k, int topic, int32_t partition)
{
    for (size_t i = 0; i < k->nassigned; i++) {
        if (k->assigned[i].topic == topic && k->assigned[i].partition == partition) {
            k->assigned[i] = k->assigned[--k->nassigned];
            return;
        }
    }
}

/* Takes a revoked partition's messages out of the batch being filled: the core must not apply
 * records of a partition it no longer owns. */
static void batch_drop(omo_kafka *k, int topic, int32_t partition)
{
    if (!k->batch)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < k->nheld; i++) {
        if ((int)k->batch[i].topic == topic && k->batch[i].partition == partition) {
            rd_kafka_message_destroy(k->held[i]);
            continue;
        }
        k->held[kept] = k->held[i];
        k->batch[kept] = k->batch[i];
        kept++;
    }
    k->nheld = kept;
}

static void describe(const rd_kafka_topic_partition_list_t *parts, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && used < len; i++) {
        if (i == KAFKA_LOG_PARTITIONS) {
            snprintf(buf + used, len - used, " ...");
            break;
        }
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int w;
        if (p->offset >= 0)
            w = snprintf(buf + used, len - used, " %s/%" PRId32 "@%" PRId64, p->topic, p->partition,
                         p->offset);
        else
            w = snprintf(buf + used, len - used, " %s/%" PRId32, p->topic, p->partition);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    omo_kafka *k = opaque;
    char list[1024];
    rd_kafka_error_t *error = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        k->ever_assigned = true;
        /* The list belongs to librdkafka: the start offsets go on a copy. */
        rd_kafka_topic_partition_list_t *start = rd_kafka_topic_partition_list_copy(parts);
        for (int i = 0; i < start->cnt; i++) {
            rd_kafka_topic_partition_t *p = &start->elems[i];
            int topic = topic_of(k, p->topic);
            int64_t pos = -1;
            if (topic >= 0 && !k->closing && k->events.position)
                pos = k->events.position(k->events.ctx, (omo_topic)topic, p->partition);
            p->offset = pos >= 0 ? pos : RD_KAFKA_OFFSET_BEGINNING;
            if (topic >= 0 && !assigned_has(k, topic, p->partition)) {
                omo_grow((void **)&k->assigned, &k->capassigned, k->nassigned + 1,
                         sizeof *k->assigned);
                k->assigned[k->nassigned++] = (kafka_tp){topic, p->partition};
            }
        }
        error = rd_kafka_incremental_assign(rk, start);
        if (start->cnt > 0) { /* cooperative rounds often add nothing: not worth a line */
            describe(start, list, sizeof list);
            kafka_log("consumer", "rebalance: assigned %d partitions:%s", start->cnt, list);
        }
        rd_kafka_topic_partition_list_destroy(start);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool lost = rd_kafka_assignment_lost(rk);
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &parts->elems[i];
            int topic = topic_of(k, p->topic);
            if (topic < 0)
                continue;
            batch_drop(k, topic, p->partition);
            assigned_remove(k, topic, p->partition);
            if (!k->closing && k->events.revoked)
                k->events.revoked(k->events.ctx, (omo_topic)topic, p->partition);
        }
        error = rd_kafka_incremental_unassign(rk, parts);
        describe(parts, list, sizeof list);
        kafka_log("consumer", "rebalance: %s %d partitions:%s", lost ? "lost" : "revoked",
                  parts->cnt, list);
    } else {
        kafka_log("consumer", "rebalance: error: %s", rd_kafka_err2str(err));
    }
    if (error) {
        kafka_log("consumer", "rebalance: error: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    }
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    (void)rk;
    (void)offsets;
    omo_kafka *k = opaque;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        kafka_log_limited(&k->consumer_errors, "consumer", rd_kafka_err2str(err));
}

static bool conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                     size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka property %s: %s", name, why);
        return false;
    }
    return true;
}

/* A client configuration: the brokers, the client's own settings, then kafka.properties, so
 * that an operator can override any of ours. */
static rd_kafka_conf_t *client_conf(const omo_kafka *k, const char *group,
                                    const char *const (*settings)[2], size_t nsettings, char *err,
                                    size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf_set(conf, "bootstrap.servers", k->brokers, err, errlen) ||
        !conf_set(conf, "log_level", "4", err, errlen) ||
        (group && !conf_set(conf, "group.id", group, err, errlen)))
        goto fail;
    for (size_t i = 0; i < nsettings; i++)
        if (!conf_set(conf, settings[i][0], settings[i][1], err, errlen))
            goto fail;
    for (size_t i = 0; i < k->nprops; i++)
        if (!conf_set(conf, k->props[i].key, k->props[i].value, err, errlen))
            goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void release_held(omo_kafka *k)
{
    for (size_t i = 0; i < k->nheld; i++)
        rd_kafka_message_destroy(k->held[i]);
    k->nheld = 0;
}

static omo_io kafka_poll(void *self, omo_in_msg *msgs, size_t max, size_t *n, int timeout_ms,
                         char *err, size_t errlen)
{
    omo_kafka *k = self;
    omo_io io;

    *n = 0;
    release_held(k);
    if ((io = fatal_check(k, err, errlen)) != OMO_IO_OK)
        return io;
    omo_grow((void **)&k->held, &k->capheld, max, sizeof *k->held);

    k->serving = true;
    k->transient = false;
    k->batch = msgs;
    dispatch_deferred(k);
    rd_kafka_poll(k->producer, 0);

    int wait = timeout_ms;
    while (k->nheld < max) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(k->consumer, wait);
        if (!rkm)
            break;
        wait = 0; /* after the first, take only what is already here */
        if (rkm->err) {
            if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                char msg[512];
                if (rkm->rkt)
                    snprintf(msg, sizeof msg, "%s/%" PRId32 ": %s", rd_kafka_topic_name(rkm->rkt),
                             rkm->partition, rd_kafka_message_errstr(rkm));
                else
                    snprintf(msg, sizeof msg, "%s", rd_kafka_message_errstr(rkm));
                kafka_log_limited(&k->consumer_errors, "consumer", msg);
                k->transient = true;
                snprintf(k->transient_msg, sizeof k->transient_msg, "kafka consumer: %s", msg);
            }
            rd_kafka_message_destroy(rkm);
            continue;
        }
        int topic = topic_of(k, rd_kafka_topic_name(rkm->rkt));
        if (!is_input(topic)) {
            rd_kafka_message_destroy(rkm);
            continue;
        }
        msgs[k->nheld] = (omo_in_msg){
            .topic = (omo_topic)topic,
            .partition = rkm->partition,
            .offset = rkm->offset,
            .key = rkm->key,
            .key_len = rkm->key_len,
            .value = rkm->payload,
            .value_len = rkm->len,
        };
        k->held[k->nheld++] = rkm;
    }

    rd_kafka_poll(k->producer, 0);
    k->batch = NULL;
    k->serving = false;
    *n = k->nheld;

    if ((io = fatal_check(k, err, errlen)) != OMO_IO_OK)
        return io;
    if (*n == 0 && k->transient) {
        snprintf(err, errlen, "%s", k->transient_msg);
        return OMO_IO_RETRY;
    }
    return OMO_IO_OK;
}

static rd_kafka_topic_t *topic_handle(omo_kafka *k, omo_topic topic, char *err, size_t errlen)
{
    if (!k->topics[topic]) {
        snprintf(err, errlen, "kafka: topic %d has no name in the configuration", (int)topic);
        return NULL;
    }
    if (!k->rkt[topic]) {
        k->rkt[topic] = rd_kafka_topic_new(k->producer, k->topics[topic], NULL);
        if (!k->rkt[topic])
            snprintf(err, errlen, "kafka topic %s: %s", k->topics[topic],
                     rd_kafka_err2str(rd_kafka_last_error()));
    }
    return k->rkt[topic];
}

static omo_io kafka_produce(void *self, const omo_out_msg *msg, char *err, size_t errlen)
{
    omo_kafka *k = self;
    omo_io io;

    if ((unsigned)msg->topic >= OMO_TOPICS || msg->nheaders < 0 ||
        msg->nheaders > OMO_MAX_HEADERS) {
        snprintf(err, errlen, "kafka produce: bad message (topic %d, %d headers)", (int)msg->topic,
                 msg->nheaders);
        return OMO_IO_FATAL;
    }
    if ((io = fatal_check(k, err, errlen)) != OMO_IO_OK)
        return io;
    rd_kafka_topic_t *rkt = topic_handle(k, msg->topic, err, errlen);
    if (!rkt)
        return OMO_IO_FATAL;

    char seq[24];
    snprintf(seq, sizeof seq, "%" PRId64, msg->seq);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new((size_t)msg->nheaders + 1);
    for (int i = 0; i < msg->nheaders; i++)
        rd_kafka_header_add(hdrs, msg->headers[i].name, -1, msg->headers[i].value,
                            msg->headers[i].value ? -1 : 0);
    rd_kafka_header_add(hdrs, OMO_SEQ_HEADER, -1, seq, -1);

    int64_t deadline = now_ms() + KAFKA_QUEUE_WAIT_MS;
    rd_kafka_resp_err_t e;
    for (;;) {
        e = rd_kafka_producev(
            k->producer, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(msg->partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(msg->key, msg->key_len),
            RD_KAFKA_V_VALUE((void *)(uintptr_t)msg->value, msg->value_len),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)(intptr_t)msg->seq),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return OMO_IO_OK; /* hdrs now owned by the message */
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || now_ms() >= deadline)
            break;
        /* Queue space comes back only as delivery reports are served; they wait in deferred
         * for the next poll or flush. */
        rd_kafka_poll(k->producer, 10);
    }
    rd_kafka_headers_destroy(hdrs);

    snprintf(err, errlen, "kafka produce to %s/%" PRId32 ": %s", k->topics[msg->topic],
             msg->partition, rd_kafka_err2str(e));
    switch (e) {
    case RD_KAFKA_RESP_ERR__FATAL:
        (void)fatal_check(k, err, errlen);
        return OMO_IO_FATAL;
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return OMO_IO_FATAL; /* retrying cannot help this message */
    default:
        return OMO_IO_RETRY;
    }
}

static omo_io kafka_flush(void *self, int timeout_ms, char *err, size_t errlen)
{
    omo_kafka *k = self;
    omo_io io;

    k->serving = true;
    dispatch_deferred(k);
    rd_kafka_resp_err_t e = rd_kafka_flush(k->producer, timeout_ms);
    dispatch_deferred(k);
    k->serving = false;
    if ((io = fatal_check(k, err, errlen)) != OMO_IO_OK)
        return io;
    if (e) {
        snprintf(err, errlen, "kafka flush: %d messages not delivered after %d ms: %s",
                 rd_kafka_outq_len(k->producer), timeout_ms, rd_kafka_err2str(e));
        return OMO_IO_RETRY;
    }
    return OMO_IO_OK;
}

static int32_t kafka_partitions(void *self, omo_topic topic, char *err, size_t errlen)
{
    omo_kafka *k = self;
    const struct rd_kafka_metadata *md = NULL;

    if ((unsigned)topic >= OMO_TOPICS) {
        snprintf(err, errlen, "kafka partitions: bad topic %d", (int)topic);
        return -1;
    }
    rd_kafka_topic_t *rkt = topic_handle(k, topic, err, errlen);
    if (!rkt)
        return -1;
    rd_kafka_resp_err_t e = rd_kafka_metadata(k->producer, 0, rkt, &md, KAFKA_METADATA_MS);
    if (e) {
        snprintf(err, errlen, "kafka metadata for %s: %s", k->topics[topic], rd_kafka_err2str(e));
        return -1;
    }
    int32_t n = -1;
    if (md->topic_cnt != 1)
        snprintf(err, errlen, "kafka metadata for %s: no such topic", k->topics[topic]);
    else if (md->topics[0].err)
        snprintf(err, errlen, "kafka metadata for %s: %s", k->topics[topic],
                 rd_kafka_err2str(md->topics[0].err));
    else if (md->topics[0].partition_cnt < 1)
        snprintf(err, errlen, "kafka metadata for %s: no partitions", k->topics[topic]);
    else
        n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

static int64_t header_seq(const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs;
    const void *val;
    size_t size;
    char buf[24];

    if (rd_kafka_message_headers(rkm, &hdrs) ||
        rd_kafka_header_get_last(hdrs, OMO_SEQ_HEADER, &val, &size) || !val || size == 0 ||
        size >= sizeof buf)
        return -1;
    memcpy(buf, val, size);
    buf[size] = '\0';
    char *end;
    long long seq = strtoll(buf, &end, 10);
    return *end == '\0' && seq >= 0 ? (int64_t)seq : -1;
}

/* A read-back uses librdkafka's simple consumer: it needs no consumer group (assign() does in
 * 2.0.2), so it joins nothing and commits nothing. */
static omo_io kafka_scan(void *self, omo_topic topic, int32_t partition, int64_t from,
                         void (*cb)(void *ctx, int64_t seq, int64_t offset), void *ctx, char *err,
                         size_t errlen)
{
    static const char *const settings[][2] = {
        {"client.id", "omo-scan"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", "earliest"},
        /* the output is written without transactions: read it as any consumer would */
        {"isolation.level", "read_uncommitted"},
    };
    omo_kafka *k = self;
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    bool started = false;
    omo_io io = OMO_IO_RETRY;
    char why[512];

    if ((unsigned)topic >= OMO_TOPICS) {
        snprintf(err, errlen, "kafka scan: bad topic %d", (int)topic);
        return OMO_IO_FATAL;
    }
    const char *name = k->topics[topic];
    if (!name) {
        snprintf(err, errlen, "kafka scan: topic %d has no name in the configuration", (int)topic);
        return OMO_IO_FATAL;
    }
    rd_kafka_conf_t *conf =
        client_conf(k, NULL, settings, sizeof settings / sizeof settings[0], err, errlen);
    if (!conf)
        return OMO_IO_FATAL;
    rd_kafka_conf_set_log_cb(conf, log_scan);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "kafka scan client: %s", why);
        return OMO_IO_FATAL;
    }
    conf = NULL; /* now owned by rk */

    int64_t low, high;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(rk, name, partition, &low, &high, KAFKA_METADATA_MS);
    if (e) {
        snprintf(err, errlen, "kafka scan %s/%" PRId32 ": watermarks: %s", name, partition,
                 rd_kafka_err2str(e));
        goto fail;
    }
    if (from < low)
        from = low; /* older records are gone (retention): nothing to report for them */
    if (from >= high) {
        io = OMO_IO_OK;
        goto done;
    }

    rkt = rd_kafka_topic_new(rk, name, NULL);
    if (!rkt || rd_kafka_consume_start(rkt, partition, from) == -1) {
        snprintf(err, errlen, "kafka scan %s/%" PRId32 ": %s", name, partition,
                 rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    started = true;

    int64_t next = from;
    int64_t stall = now_ms() + KAFKA_SCAN_STALL_MS;
    char last_error[256] = "no data";
    while (next < high) {
        rd_kafka_message_t *rkm = rd_kafka_consume(rkt, partition, 100);
        rd_kafka_poll(rk, 0); /* logs */
        if (!rkm) {
            if (now_ms() > stall) {
                snprintf(err, errlen,
                         "kafka scan %s/%" PRId32 ": stalled at offset %" PRId64 " of %" PRId64
                         ": %s",
                         name, partition, next, high, last_error);
                goto fail;
            }
            continue;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* gaps (transaction markers, compaction) end the read short of `high` */
            if (rkm->offset >= high)
                next = high;
        } else if (rkm->err) {
            snprintf(last_error, sizeof last_error, "%s", rd_kafka_message_errstr(rkm));
            kafka_log("scan", "error: %s/%" PRId32 ": %s", name, partition, last_error);
        } else if (rkm->offset < high) {
            cb(ctx, header_seq(rkm), rkm->offset);
            next = rkm->offset + 1;
            stall = now_ms() + KAFKA_SCAN_STALL_MS;
        } else {
            next = high;
        }
        rd_kafka_message_destroy(rkm);
    }
    io = OMO_IO_OK;
    goto done;

fail:
    if (fatal_check(k, err, errlen) == OMO_IO_FATAL)
        io = OMO_IO_FATAL;
done:
    if (started)
        rd_kafka_consume_stop(rkt, partition);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return io;
}

static bool kafka_ready(void *self)
{
    omo_kafka *k = self;
    const struct rd_kafka_metadata *md = NULL;
    char reason[256];

    if (rd_kafka_fatal_error(k->producer, reason, sizeof reason) ||
        rd_kafka_fatal_error(k->consumer, reason, sizeof reason))
        return false;
    if (rd_kafka_metadata(k->producer, 0, NULL, &md, KAFKA_READY_MS))
        return false;
    rd_kafka_metadata_destroy(md);
    return true;
}

static int64_t kafka_lag(void *self)
{
    omo_kafka *k = self;
    rd_kafka_topic_partition_list_t *parts = NULL;

    if (rd_kafka_assignment(k->consumer, &parts))
        return -1;
    rd_kafka_position(k->consumer, parts);
    int64_t sum = 0;
    bool known = false;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int64_t low, high;
        if (p->offset < 0 ||
            rd_kafka_get_watermark_offsets(k->consumer, p->topic, p->partition, &low, &high) ||
            high < 0)
            continue;
        sum += high > p->offset ? high - p->offset : 0;
        known = true;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    return known ? sum : -1;
}

/* A member id comes with a successful JoinGroup, the assignment later with SyncGroup: a
 * coordinator that went away in between (or a slow machine) makes that gap seconds long. */
static bool has_joined(rd_kafka_t *consumer)
{
    char *id = rd_kafka_memberid(consumer);
    bool joined = id && *id;
    if (id)
        rd_kafka_mem_free(consumer, id);
    return joined;
}

static void kafka_destroy(void *self)
{
    omo_kafka *k = self;
    if (!k)
        return;
    k->closing = true;
    /* Messages hold references into the client: they go before it. */
    release_held(k);
    if (k->consumer) {
        /* librdkafka 2.0 aborts when a cooperative-sticky member is closed after joining and
         * before its first assignment (its issue 4312, fixed in 2.3): then wait for that
         * assignment, up to 5 s when the member has not joined, 20 s when it has. What arrives
         * meanwhile is not applied. */
        for (int64_t start = now_ms(); !k->ever_assigned;) {
            int64_t waited = now_ms() - start;
            if (waited >= KAFKA_CLOSE_JOINED_MS ||
                (waited >= KAFKA_CLOSE_WAIT_MS && !has_joined(k->consumer)))
                break;
            rd_kafka_message_t *rkm = rd_kafka_consumer_poll(k->consumer, 100);
            if (rkm)
                rd_kafka_message_destroy(rkm);
        }
        rd_kafka_consumer_close(k->consumer);
        rd_kafka_destroy(k->consumer);
    }
    for (int t = 0; t < OMO_TOPICS; t++)
        if (k->rkt[t])
            rd_kafka_topic_destroy(k->rkt[t]);
    if (k->producer) {
        /* What is not yet delivered stays in the outbox and is sent again after a restart. */
        rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(k->producer, 0);
        rd_kafka_destroy(k->producer);
    }
    free(k->held);
    free(k->deferred);
    free(k->assigned);
    for (int t = 0; t < OMO_TOPICS; t++)
        free(k->topics[t]);
    for (size_t i = 0; i < k->nprops; i++) {
        free(k->props[i].key);
        free(k->props[i].value);
    }
    free(k->props);
    free(k->brokers);
    free(k->group);
    free(k);
}

/* librdkafka's calls are thread-safe: this one comes from the service's heartbeat thread. */
static size_t kafka_purge(void *self)
{
    omo_kafka *k = self;
    int n = rd_kafka_outq_len(k->producer);
    rd_kafka_resp_err_t e =
        rd_kafka_purge(k->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    if (e)
        kafka_log("producer", "error: purge: %s", rd_kafka_err2str(e));
    return n > 0 ? (size_t)n : 0;
}

static void kafka_committed(void *self, const omo_position *pos, size_t n);

static const omo_bus_ops kafka_ops = {
    .poll = kafka_poll,
    .produce = kafka_produce,
    .flush = kafka_flush,
    .partitions = kafka_partitions,
    .scan = kafka_scan,
    .ready = kafka_ready,
    .lag = kafka_lag,
    .destroy = kafka_destroy,
    .purge = kafka_purge,
    .committed = kafka_committed,
};

omo_io omo_kafka_open(const omo_kafka_conf *conf, const omo_bus_events *events, omo_bus *out,
                      char *err, size_t errlen)
{
    static const char *const consumer_settings[][2] = {
        {"client.id", "omo-consumer"},
        {"partition.assignment.strategy", "cooperative-sticky"},
        /* positions of record live in the state store; commits to Kafka are for show */
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        {"session.timeout.ms", "6000"},
        {"isolation.level", "read_committed"},
    };
    static const char *const producer_settings[][2] = {
        {"client.id", "omo-producer"},
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"batch.num.messages", "100000"},
        {"queue.buffering.max.messages", "1000000"},
    };
    omo_kafka *k = NULL;
    rd_kafka_conf_t *rkconf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    char why[512];

    if (!conf->brokers || !*conf->brokers) {
        snprintf(err, errlen, "kafka: no brokers given");
        return OMO_IO_FATAL;
    }
    k = omo_xcalloc(1, sizeof *k);
    k->events = *events;
    k->brokers = omo_xstrdup(conf->brokers);
    k->group = omo_xstrdup(conf->group ? conf->group : "omo");
    for (int t = 0; t < OMO_TOPICS; t++)
        k->topics[t] = conf->topics[t]     ? omo_xstrdup(conf->topics[t])
                       : default_topics[t] ? omo_xstrdup(default_topics[t])
                                           : NULL;
    if (conf->nprops) {
        k->props = omo_xcalloc(conf->nprops, sizeof *k->props);
        for (size_t i = 0; i < conf->nprops; i++) {
            k->props[i].key = omo_xstrdup(conf->props[i].key);
            k->props[i].value = omo_xstrdup(conf->props[i].value);
        }
        k->nprops = conf->nprops;
    }

    rkconf = client_conf(k, k->group, consumer_settings,
                         sizeof consumer_settings / sizeof consumer_settings[0], err, errlen);
    if (!rkconf)
        goto fail;
    rd_kafka_conf_set_opaque(rkconf, k);
    rd_kafka_conf_set_rebalance_cb(rkconf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(rkconf, on_commit);
    rd_kafka_conf_set_error_cb(rkconf, error_consumer);
    rd_kafka_conf_set_log_cb(rkconf, log_consumer);
    k->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, rkconf, why, sizeof why);
    if (!k->consumer) {
        snprintf(err, errlen, "kafka consumer: %s", why);
        goto fail;
    }
    rkconf = NULL; /* now owned by the consumer */
    /* errors and commit results come out of consumer_poll, on the core's thread */
    rd_kafka_poll_set_consumer(k->consumer);

    rkconf = client_conf(k, NULL, producer_settings,
                         sizeof producer_settings / sizeof producer_settings[0], err, errlen);
    if (!rkconf)
        goto fail;
    rd_kafka_conf_set_opaque(rkconf, k);
    rd_kafka_conf_set_dr_msg_cb(rkconf, on_delivery);
    rd_kafka_conf_set_error_cb(rkconf, error_producer);
    rd_kafka_conf_set_log_cb(rkconf, log_producer);
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, why, sizeof why);
    if (!k->producer) {
        snprintf(err, errlen, "kafka producer: %s", why);
        goto fail;
    }
    rkconf = NULL; /* now owned by the producer */

    subs = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(subs, k->topics[OMO_TOPIC_ORDERS], RD_KAFKA_PARTITION_UA);
    rd_kafka_topic_partition_list_add(subs, k->topics[OMO_TOPIC_STOCK], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(k->consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (e) {
        snprintf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(e));
        goto fail;
    }
    kafka_log("consumer", "subscribed: group=%s topics=%s,%s brokers=%s", k->group,
              k->topics[OMO_TOPIC_ORDERS], k->topics[OMO_TOPIC_STOCK], k->brokers);

    out->ops = &kafka_ops;
    out->self = k;
    return OMO_IO_OK;

fail:
    if (rkconf)
        rd_kafka_conf_destroy(rkconf);
    kafka_destroy(k);
    return OMO_IO_FATAL;
}

void omo_kafka_commit_positions(omo_bus *bus, const omo_position *pos, size_t n)
{
    if (bus && bus->ops == &kafka_ops)
        kafka_committed(bus->self, pos, n);
}

static void kafka_committed(void *self, const omo_position *pos, size_t n)
{
    omo_kafka *k = self;
    if (n == 0)
        return;
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        int topic = (int)pos[i].topic;
        if (!is_input(topic) || pos[i].next_offset < 0 || !assigned_has(k, topic, pos[i].partition))
            continue;
        rd_kafka_topic_partition_list_add(offsets, k->topics[topic], pos[i].partition)->offset =
            pos[i].next_offset;
    }
    if (offsets->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(k->consumer, offsets, 1);
        if (e)
            kafka_log_limited(&k->consumer_errors, "consumer", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(offsets);
}
