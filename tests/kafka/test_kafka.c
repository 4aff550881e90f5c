/* Component tests of the Kafka bus against librdkafka's mock cluster, reached over TCP. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"
#include "kafka/kafka.h"

#define MAXP 16

typedef struct shared_positions {
    int64_t next[OMO_TOPICS][MAXP]; /* 0 = nothing read yet */
} shared_positions;

/* What the bus told one test's core. */
typedef struct bus_log {
    int64_t start_at[OMO_TOPICS][MAXP]; /* what position() answers; -1 = beginning */
    shared_positions *shared;           /* when set, position() answers from here */
    int positions[OMO_TOPICS][MAXP];    /* position() calls per partition */
    bool owned[OMO_TOPICS][MAXP];
    int revoked;

    size_t cap, ndelivered, nfailed;
    int64_t *dseq, *doff;
    int32_t *dpart;
    omo_topic *dtopic;
} bus_log;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t ev_position(void *ctx, omo_topic topic, int32_t partition)
{
    bus_log *log = ctx;
    cr_assert(partition >= 0 && partition < MAXP);
    cr_assert(topic == OMO_TOPIC_ORDERS || topic == OMO_TOPIC_STOCK, "position for topic %d",
              (int)topic);
    log->positions[topic][partition]++;
    cr_assert_not(log->owned[topic][partition], "assigned twice without a revocation");
    log->owned[topic][partition] = true;
    if (log->shared)
        return log->shared->next[topic][partition] > 0 ? log->shared->next[topic][partition] : -1;
    return log->start_at[topic][partition];
}

static void ev_revoked(void *ctx, omo_topic topic, int32_t partition)
{
    bus_log *log = ctx;
    cr_assert(log->owned[topic][partition], "revoked a partition never assigned");
    log->owned[topic][partition] = false;
    log->revoked++;
}

static void ev_delivered(void *ctx, int64_t seq, omo_topic topic, int32_t partition, int64_t offset,
                         bool ok, const char *err)
{
    bus_log *log = ctx;
    if (!ok) {
        fprintf(stderr, "delivery of seq %" PRId64 " failed: %s\n", seq, err ? err : "?");
        log->nfailed++;
        return;
    }
    if (log->ndelivered == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 1024;
        log->dseq = realloc(log->dseq, log->cap * sizeof *log->dseq);
        log->doff = realloc(log->doff, log->cap * sizeof *log->doff);
        log->dpart = realloc(log->dpart, log->cap * sizeof *log->dpart);
        log->dtopic = realloc(log->dtopic, log->cap * sizeof *log->dtopic);
    }
    log->dseq[log->ndelivered] = seq;
    log->doff[log->ndelivered] = offset;
    log->dpart[log->ndelivered] = partition;
    log->dtopic[log->ndelivered] = topic;
    log->ndelivered++;
}

static void log_init(bus_log *log)
{
    memset(log, 0, sizeof *log);
    for (int t = 0; t < OMO_TOPICS; t++)
        for (int p = 0; p < MAXP; p++)
            log->start_at[t][p] = -1;
}

static void log_free(bus_log *log)
{
    free(log->dseq);
    free(log->doff);
    free(log->dpart);
    free(log->dtopic);
}

static int owned_count(const bus_log *log)
{
    int n = 0;
    for (int t = 0; t < OMO_TOPICS; t++)
        for (int p = 0; p < MAXP; p++)
            n += log->owned[t][p];
    return n;
}

/* A mock cluster with the five default topics of `partitions` partitions each. */
static omo_kafka_mock *start_cluster(int brokers, int partitions)
{
    char err[256];
    omo_kafka_mock *mk = omo_kafka_mock_start(brokers, partitions, err, sizeof err);
    cr_assert_not_null(mk, "mock cluster: %s", err);
    return mk;
}

static void fresh_group(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "test-%s-%d-%" PRId64, what, (int)getpid(), now_ms());
}

static omo_bus open_bus(omo_kafka_mock *mk, const char *group, bus_log *log, const omo_kv *props,
                        size_t nprops)
{
    omo_kafka_conf conf = {
        .brokers = omo_kafka_mock_bootstraps(mk), .group = group, .props = props, .nprops = nprops};
    omo_bus_events events = {
        .ctx = log, .position = ev_position, .revoked = ev_revoked, .delivered = ev_delivered};
    omo_bus bus = {0};
    char err[512] = "";
    omo_io io = omo_kafka_open(&conf, &events, &bus, err, sizeof err);
    cr_assert_eq(io, OMO_IO_OK, "open: %s", err);
    cr_assert_not_null(bus.ops);
    return bus;
}

/* Produces output message seq to topic, partition seq % partitions. */
static void produce_one(omo_bus *bus, omo_topic topic, int64_t seq, int32_t partitions)
{
    char key[32], value[64], rev[16];
    char err[512];
    snprintf(key, sizeof key, "order-%" PRId64, seq);
    snprintf(value, sizeof value, "{\"seq\":%" PRId64 "}", seq);
    snprintf(rev, sizeof rev, "%" PRId64, seq % 7);
    omo_out_msg msg = {
        .seq = seq,
        .topic = topic,
        .partition = (int32_t)(seq % partitions),
        .key = key,
        .key_len = strlen(key),
        .value = value,
        .value_len = strlen(value),
        .headers = {{"content-type", "application/json"}, {"omo.revision", rev}},
        .nheaders = 2,
    };
    omo_io io;
    while ((io = bus->ops->produce(bus->self, &msg, err, sizeof err)) == OMO_IO_RETRY) {
        size_t n_in;
        cr_assert_eq(bus->ops->poll(bus->self, NULL, 0, &n_in, 10, err, sizeof err) != OMO_IO_FATAL,
                     1, "%s", err);
    }
    cr_assert_eq(io, OMO_IO_OK, "produce seq %" PRId64 ": %s", seq, err);
}

/* Produces n output messages, seq first_seq.., to topic, partition seq % partitions. */
static void produce_outputs(omo_bus *bus, omo_topic topic, int64_t first_seq, size_t n,
                            int32_t partitions)
{
    for (size_t i = 0; i < n; i++)
        produce_one(bus, topic, first_seq + (int64_t)i, partitions);
}

typedef struct place_ctx {
    bus_log *log;
    int32_t partition;
} place_ctx;

static void on_place(void *ctx, int64_t seq, int64_t offset)
{
    place_ctx *pc = ctx;
    for (size_t i = 0; i < pc->log->ndelivered; i++)
        if (pc->log->dseq[i] == seq && pc->log->dpart[i] == pc->partition && pc->log->doff[i] < 0)
            pc->log->doff[i] = offset;
}

/* What the service does with a delivery confirmed without an offset (librdkafka confirms a
 * batch that way when it failed and a later batch of its partition then succeeded: the broker
 * must have it, having checked the producer's sequence numbers): finds it by reading its
 * partition back, and sends again what is not there (2.0.2's mock checks no sequence numbers
 * but a transactional producer's, so it may take the later batch without the earlier one).
 * Returns how many were sent again. */
static size_t place_unplaced(omo_bus *bus, bus_log *log, omo_topic topic, int32_t partitions)
{
    char err[512];
    for (int32_t p = 0; p < partitions; p++) {
        bool any = false;
        for (size_t i = 0; i < log->ndelivered && !any; i++)
            any = log->dpart[i] == p && log->doff[i] < 0;
        if (!any)
            continue;
        place_ctx pc = {log, p};
        cr_assert_eq(bus->ops->scan(bus->self, topic, p, 0, on_place, &pc, err, sizeof err),
                     OMO_IO_OK, "%s", err);
    }
    size_t kept = 0, nresend = 0;
    int64_t *resend = calloc(log->ndelivered + 1, sizeof *resend);
    for (size_t i = 0; i < log->ndelivered; i++) {
        if (log->doff[i] < 0) { /* not on its partition */
            resend[nresend++] = log->dseq[i];
            continue;
        }
        log->dseq[kept] = log->dseq[i];
        log->doff[kept] = log->doff[i];
        log->dpart[kept] = log->dpart[i];
        log->dtopic[kept] = log->dtopic[i];
        kept++;
    }
    log->ndelivered = kept;
    for (size_t i = 0; i < nresend; i++)
        produce_one(bus, topic, resend[i], partitions);
    if (nresend)
        cr_assert_eq(bus->ops->flush(bus->self, 30000, err, sizeof err), OMO_IO_OK, "%s", err);
    free(resend);
    return nresend;
}

/* Every seq first_seq..first_seq+n-1 is on the topic exactly once, at the partition and offset
 * its delivery report gave, with its key, value and headers. */
static void check_outputs(omo_kafka_mock *mk, const char *topic, const bus_log *log,
                          int64_t first_seq, size_t n, int32_t partitions)
{
    cr_assert_eq(log->nfailed, 0);
    cr_assert_eq(log->ndelivered, n, "%zu delivery reports for %zu messages", log->ndelivered, n);
    int64_t *offset_of = calloc(n, sizeof *offset_of);
    for (size_t i = 0; i < n; i++)
        offset_of[i] = -1;
    int64_t last[MAXP];
    for (int p = 0; p < MAXP; p++)
        last[p] = -1;
    for (size_t i = 0; i < log->ndelivered; i++) {
        int64_t idx = log->dseq[i] - first_seq;
        cr_assert(idx >= 0 && (size_t)idx < n, "report for unknown seq %" PRId64, log->dseq[i]);
        cr_assert_eq(offset_of[idx], -1, "seq %" PRId64 " reported twice", log->dseq[i]);
        cr_assert_eq(log->dpart[i], (int32_t)(log->dseq[i] % partitions));
        cr_assert_gt(log->doff[i], last[log->dpart[i]], "offsets must increase per partition");
        last[log->dpart[i]] = log->doff[i];
        offset_of[idx] = log->doff[i];
    }

    omo_test_records recs;
    cr_assert(omo_test_kafka_read_all(omo_kafka_mock_bootstraps(mk), topic, &recs));
    bool *seen = calloc(n, sizeof *seen);
    for (size_t i = 0; i < recs.n; i++) {
        const omo_test_record *r = &recs.recs[i];
        int64_t idx = r->seq - first_seq;
        cr_assert(idx >= 0 && (size_t)idx < n, "record with seq %" PRId64, r->seq);
        cr_assert_not(seen[idx], "seq %" PRId64 " is on the topic twice", r->seq);
        seen[idx] = true;
        cr_assert_eq(r->partition, (int32_t)(r->seq % partitions));
        cr_assert_eq(r->offset, offset_of[idx],
                     "seq %" PRId64 " at offset %" PRId64 ", reported %" PRId64, r->seq, r->offset,
                     offset_of[idx]);
        char want[64];
        snprintf(want, sizeof want, "order-%" PRId64, r->seq);
        cr_assert_str_eq(r->key, want);
        snprintf(want, sizeof want, "{\"seq\":%" PRId64 "}", r->seq);
        cr_assert_str_eq(r->value, want);
        cr_assert_eq(r->nheaders, 3);
        cr_assert_str_eq(r->hname[0], "content-type");
        cr_assert_str_eq(r->hvalue[0], "application/json");
        snprintf(want, sizeof want, "%" PRId64, r->seq % 7);
        cr_assert_str_eq(omo_test_record_header(r, "omo.revision"), want);
        snprintf(want, sizeof want, "%" PRId64, r->seq);
        cr_assert_str_eq(omo_test_record_header(r, OMO_SEQ_HEADER), want);
    }
    cr_assert_eq(recs.n, n, "%zu records on the topic for %zu messages", recs.n, n);
    omo_test_records_free(&recs);
    free(seen);
    free(offset_of);
}

Test(kafka, poll_reads_inputs_from_assigned_positions, .timeout = 60)
{
    omo_kafka_mock *mk = start_cluster(3, 3);

    enum { NORDERS = 300, NSTOCK = 90 };
    char *keys[NORDERS], *values[NORDERS];
    for (int i = 0; i < NORDERS; i++) {
        cr_assert(asprintf(&keys[i], "W-%d", i) > 0);
        cr_assert(asprintf(&values[i], "{\"type\":\"order.created\",\"n\":%d}", i) > 0);
    }
    cr_assert(omo_kafka_mock_produce(mk, "omo.orders", -1, (const char *const *)keys,
                                     (const char *const *)values, NORDERS));
    for (int p = 0; p < 3; p++)
        cr_assert(omo_kafka_mock_produce(mk, "omo.stock", p, (const char *const *)keys,
                                         (const char *const *)values, NSTOCK / 3));
    for (int i = 0; i < NORDERS; i++) {
        free(keys[i]);
        free(values[i]);
    }

    omo_test_records orders, stock;
    cr_assert(omo_test_kafka_read_all(omo_kafka_mock_bootstraps(mk), "omo.orders", &orders));
    cr_assert(omo_test_kafka_read_all(omo_kafka_mock_bootstraps(mk), "omo.stock", &stock));
    cr_assert_eq(orders.n, NORDERS);
    cr_assert_eq(stock.n, NSTOCK);

    /* Resume the fullest orders partition in its middle. */
    size_t per[3] = {0};
    for (size_t i = 0; i < orders.n; i++)
        per[orders.recs[i].partition]++;
    int32_t mid_p = 0;
    for (int32_t p = 1; p < 3; p++)
        if (per[p] > per[mid_p])
            mid_p = p;
    int64_t mid = (int64_t)per[mid_p] / 2;
    cr_assert_gt(mid, 0);

    bus_log log;
    log_init(&log);
    log.start_at[OMO_TOPIC_ORDERS][mid_p] = mid;
    char group[96];
    fresh_group(group, sizeof group, "poll");
    omo_bus bus = open_bus(mk, group, &log, NULL, 0);

    omo_test_records *src[2] = {&orders, &stock};
    bool *seen[2] = {calloc(orders.n, 1), calloc(stock.n, 1)};
    size_t expected = (size_t)(NORDERS - mid + NSTOCK), got = 0;
    omo_in_msg msgs[64];
    char err[512];
    int64_t deadline = now_ms() + 30000;
    while (got < expected && now_ms() < deadline) {
        size_t n = 0;
        omo_io io = bus.ops->poll(bus.self, msgs, 64, &n, 200, err, sizeof err);
        cr_assert_neq(io, OMO_IO_FATAL, "%s", err);
        for (size_t i = 0; i < n; i++) {
            const omo_in_msg *m = &msgs[i];
            cr_assert(m->topic == OMO_TOPIC_ORDERS || m->topic == OMO_TOPIC_STOCK);
            cr_assert(log.owned[m->topic][m->partition], "message of a partition not owned");
            if (m->topic == OMO_TOPIC_ORDERS && m->partition == mid_p)
                cr_assert_geq(m->offset, mid, "offset %" PRId64 " precedes the position",
                              m->offset);
            /* find the record read by the harness */
            omo_test_records *r = src[m->topic];
            size_t j = 0;
            while (j < r->n &&
                   (r->recs[j].partition != m->partition || r->recs[j].offset != m->offset))
                j++;
            cr_assert_lt(j, r->n, "unknown message %d/%d@%" PRId64, (int)m->topic, m->partition,
                         m->offset);
            cr_assert_not(seen[m->topic][j], "message delivered twice");
            seen[m->topic][j] = true;
            cr_assert_eq(m->key_len, r->recs[j].key_len);
            cr_assert_eq(memcmp(m->key, r->recs[j].key, m->key_len), 0);
            cr_assert_eq(m->value_len, r->recs[j].value_len);
            cr_assert_eq(memcmp(m->value, r->recs[j].value, m->value_len), 0);
            got++;
        }
        /* the previous batch stays readable until the next poll: check the last one */
        if (n > 0)
            cr_assert_eq(memcmp(msgs[n - 1].value, "{\"type\"", 7), 0);
    }
    cr_assert_eq(got, expected, "read %zu of %zu messages", got, expected);
    for (int t = 0; t < 2; t++)
        for (int p = 0; p < 3; p++)
            cr_assert_eq(log.positions[t][p], 1, "position asked %d times for %d/%d",
                         log.positions[t][p], t, p);
    for (size_t j = 0; j < orders.n; j++)
        cr_assert_eq(seen[0][j],
                     !(orders.recs[j].partition == mid_p && orders.recs[j].offset < mid));

    /* Everything is read: the lag drops to 0 once positions and watermarks are known. */
    int64_t lag = -1;
    deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        size_t n;
        cr_assert_eq(bus.ops->poll(bus.self, msgs, 64, &n, 100, err, sizeof err), OMO_IO_OK, "%s",
                     err);
        cr_assert_eq(n, 0);
        lag = bus.ops->lag(bus.self);
        if (lag == 0)
            break;
    }
    cr_assert_eq(lag, 0);

    /* Positions reach the group's committed offsets; unassigned partitions are skipped. */
    omo_position pos[] = {
        {OMO_TOPIC_ORDERS, 0, 5}, {OMO_TOPIC_ORDERS, 1, 6},      {OMO_TOPIC_STOCK, 2, 7},
        {OMO_TOPIC_ORDERS, 9, 8}, {OMO_TOPIC_ALLOCATIONS, 0, 9},
    };
    cr_assert_not_null(bus.ops->committed);
    bus.ops->committed(bus.self, pos, 3);
    omo_kafka_commit_positions(&bus, pos + 3, sizeof pos / sizeof pos[0] - 3);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[256];
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", omo_kafka_mock_bootstraps(mk), why,
                                   sizeof why),
                 RD_KAFKA_CONF_OK);
    cr_assert_eq(rd_kafka_conf_set(conf, "group.id", group, why, sizeof why), RD_KAFKA_CONF_OK);
    rd_kafka_t *checker = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    cr_assert_not_null(checker, "%s", why);
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_new(3);
    rd_kafka_topic_partition_list_add(c, "omo.orders", 0);
    rd_kafka_topic_partition_list_add(c, "omo.orders", 1);
    rd_kafka_topic_partition_list_add(c, "omo.stock", 2);
    bool committed = false;
    deadline = now_ms() + 10000;
    while (!committed && now_ms() < deadline) {
        size_t n;
        cr_assert_eq(bus.ops->poll(bus.self, msgs, 64, &n, 100, err, sizeof err), OMO_IO_OK);
        cr_assert_eq(rd_kafka_committed(checker, c, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
        committed = c->elems[0].offset == 5 && c->elems[1].offset == 6 && c->elems[2].offset == 7;
    }
    cr_assert(committed, "committed %" PRId64 " %" PRId64 " %" PRId64, c->elems[0].offset,
              c->elems[1].offset, c->elems[2].offset);
    rd_kafka_topic_partition_list_destroy(c);
    rd_kafka_destroy(checker);

    bus.ops->destroy(bus.self);
    omo_test_records_free(&orders);
    omo_test_records_free(&stock);
    free(seen[0]);
    free(seen[1]);
    log_free(&log);
    omo_kafka_mock_stop(mk);
}

Test(kafka, produce_writes_each_seq_once_with_headers, .timeout = 60)
{
    omo_kafka_mock *mk = start_cluster(3, 3);
    bus_log log;
    log_init(&log);
    char group[96], err[512];
    fresh_group(group, sizeof group, "produce");
    omo_bus bus = open_bus(mk, group, &log, NULL, 0);

    cr_assert_eq(bus.ops->partitions(bus.self, OMO_TOPIC_ALLOCATIONS, err, sizeof err), 3, "%s",
                 err);
    produce_outputs(&bus, OMO_TOPIC_ALLOCATIONS, 1000, 10000, 3);
    cr_assert_eq(bus.ops->flush(bus.self, 30000, err, sizeof err), OMO_IO_OK, "%s", err);
    for (size_t i = 0; i < log.ndelivered; i++)
        cr_assert_eq(log.dtopic[i], OMO_TOPIC_ALLOCATIONS);
    check_outputs(mk, "omo.allocations", &log, 1000, 10000, 3);

    bus.ops->destroy(bus.self);
    log_free(&log);
    omo_kafka_mock_stop(mk);
}

typedef struct scan_log {
    size_t n;
    int64_t seq[256], offset[256];
} scan_log;

static void on_scan(void *ctx, int64_t seq, int64_t offset)
{
    scan_log *s = ctx;
    cr_assert_lt(s->n, 256);
    s->seq[s->n] = seq;
    s->offset[s->n] = offset;
    s->n++;
}

Test(kafka, scan_reports_the_messages_after_an_offset, .timeout = 60)
{
    omo_kafka_mock *mk = start_cluster(1, 2);
    bus_log log;
    log_init(&log);
    char group[96], err[512];
    fresh_group(group, sizeof group, "scan");
    omo_bus bus = open_bus(mk, group, &log, NULL, 0);

    /* seq 0, 2, 4, ... 198 go to partition 0 at offsets 0..99; then one foreign record */
    produce_outputs(&bus, OMO_TOPIC_SHIPMENTS, 0, 200, 2);
    cr_assert_eq(bus.ops->flush(bus.self, 30000, err, sizeof err), OMO_IO_OK, "%s", err);
    const char *keys[] = {"other"}, *values[] = {"{}"};
    cr_assert(omo_kafka_mock_produce(mk, "omo.shipments", 0, keys, values, 1));

    scan_log s = {0};
    cr_assert_eq(bus.ops->scan(bus.self, OMO_TOPIC_SHIPMENTS, 0, 40, on_scan, &s, err, sizeof err),
                 OMO_IO_OK, "%s", err);
    cr_assert_eq(s.n, 61, "scan reported %zu messages", s.n);
    for (size_t i = 0; i < 60; i++) {
        cr_assert_eq(s.offset[i], 40 + (int64_t)i);
        cr_assert_eq(s.seq[i], 2 * (40 + (int64_t)i));
    }
    cr_assert_eq(s.offset[60], 100);
    cr_assert_eq(s.seq[60], -1, "a record without omo.seq reports -1");

    /* from the end, and on the other partition from its last record */
    memset(&s, 0, sizeof s);
    cr_assert_eq(bus.ops->scan(bus.self, OMO_TOPIC_SHIPMENTS, 0, 101, on_scan, &s, err, sizeof err),
                 OMO_IO_OK, "%s", err);
    cr_assert_eq(s.n, 0);
    cr_assert_eq(bus.ops->scan(bus.self, OMO_TOPIC_SHIPMENTS, 1, 99, on_scan, &s, err, sizeof err),
                 OMO_IO_OK, "%s", err);
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.offset[0], 99);
    cr_assert_eq(s.seq[0], 199);
    /* an empty partition of another topic */
    memset(&s, 0, sizeof s);
    cr_assert_eq(bus.ops->scan(bus.self, OMO_TOPIC_DEAD_LETTER, 1, 0, on_scan, &s, err, sizeof err),
                 OMO_IO_OK, "%s", err);
    cr_assert_eq(s.n, 0);

    bus.ops->destroy(bus.self);
    log_free(&log);
    omo_kafka_mock_stop(mk);
}

Test(kafka, broker_down_and_up_loses_and_doubles_nothing, .timeout = 60)
{
    omo_kafka_mock *mk = start_cluster(3, 3);
    rd_kafka_mock_cluster_t *mock = omo_kafka_mock_cluster(mk);
    bus_log log;
    log_init(&log);
    char group[96], err[512];
    fresh_group(group, sizeof group, "down");
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(rd_kafka_mock_partition_set_leader(mock, "omo.allocations", p, p + 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    /* The group's coordinator stays up: a member closed between joining and its first
     * assignment aborts in librdkafka 2.0.2, and this test is about producing. */
    cr_assert_eq(rd_kafka_mock_coordinator_set(mock, "group", group, 1),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    omo_bus bus = open_bus(mk, group, &log, NULL, 0);

    /* Each broker leads one partition. The first messages are all confirmed before the leader
     * of partition 1 goes away: the mock does not deduplicate an idempotent producer's retries,
     * so a request it had appended when its connection closed would be on the log twice (a
     * broker would drop the copy). */
    produce_outputs(&bus, OMO_TOPIC_ALLOCATIONS, 1, 3000, 3);
    cr_assert_eq(bus.ops->flush(bus.self, 30000, err, sizeof err), OMO_IO_OK, "%s", err);
    cr_assert_eq(rd_kafka_mock_broker_set_down(mock, 2), RD_KAFKA_RESP_ERR_NO_ERROR);
    /* Messages in flight while it is away, and answers to produce requests that fail
     * transiently besides. */
    produce_outputs(&bus, OMO_TOPIC_ALLOCATIONS, 3001, 3000, 3);
    rd_kafka_mock_push_request_errors(
        mock, 0 /* Produce */, 4, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    int64_t until = now_ms() + 1500;
    while (now_ms() < until) {
        size_t n;
        omo_io io = bus.ops->flush(bus.self, 100, err, sizeof err);
        cr_assert_neq(io, OMO_IO_FATAL, "%s", err);
        cr_assert_eq(bus.ops->poll(bus.self, NULL, 0, &n, 0, err, sizeof err) != OMO_IO_FATAL, 1);
    }
    cr_assert_lt(log.ndelivered, 6000, "a partition led by the down broker cannot be written");
    cr_assert_eq(rd_kafka_mock_broker_set_up(mock, 2), RD_KAFKA_RESP_ERR_NO_ERROR);
    produce_outputs(&bus, OMO_TOPIC_ALLOCATIONS, 6001, 4000, 3);
    cr_assert_eq(bus.ops->flush(bus.self, 40000, err, sizeof err), OMO_IO_OK, "%s", err);
    size_t unplaced = 0;
    for (size_t i = 0; i < log.ndelivered; i++)
        unplaced += log.doff[i] < 0;
    size_t resent = 0;
    for (size_t r; (r = place_unplaced(&bus, &log, OMO_TOPIC_ALLOCATIONS, 3)) > 0;)
        resent += r;
    cr_log_info("%zu confirmed without an offset, %zu of them sent again", unplaced, resent);
    check_outputs(mk, "omo.allocations", &log, 1, 10000, 3);

    bus.ops->destroy(bus.self);
    log_free(&log);
    omo_kafka_mock_stop(mk);
}

static void on_count(void *ctx, int64_t seq, int64_t offset)
{
    (void)seq, (void)offset;
    ++*(size_t *)ctx;
}

Test(kafka, purge_drops_what_the_producer_holds_and_none_of_it_lands, .timeout = 60)
{
    omo_kafka_mock *mk = start_cluster(3, 3);
    rd_kafka_mock_cluster_t *mock = omo_kafka_mock_cluster(mk);
    bus_log log;
    log_init(&log);
    char group[96], err[512];
    fresh_group(group, sizeof group, "purge");
    for (int32_t p = 0; p < 3; p++)
        cr_assert_eq(rd_kafka_mock_partition_set_leader(mock, "omo.shipments", p, p + 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    omo_bus bus = open_bus(mk, group, &log, NULL, 0);
    /* The producer knows the leaders, then partition 1's goes away: what is sent to it waits. */
    produce_outputs(&bus, OMO_TOPIC_SHIPMENTS, 1, 30, 3);
    cr_assert_eq(bus.ops->flush(bus.self, 10000, err, sizeof err), OMO_IO_OK, "%s", err);
    cr_assert_eq(log.ndelivered, 30);
    cr_assert_eq(rd_kafka_mock_broker_set_down(mock, 2), RD_KAFKA_RESP_ERR_NO_ERROR);
    for (int64_t seq = 101; seq < 3101; seq += 3)
        produce_outputs(&bus, OMO_TOPIC_SHIPMENTS, seq, 1, 3); /* seq % 3 == 2: partition 2 */
    for (int64_t seq = 4; seq < 3004; seq += 3)
        produce_outputs(&bus, OMO_TOPIC_SHIPMENTS, seq + 3000, 1, 3); /* partition 1 */
    (void)bus.ops->flush(bus.self, 1000, err, sizeof err);

    /* Purged: every message still held is reported failed, and once the leader is back none
     * of them reaches its partition. */
    size_t held = bus.ops->purge(bus.self);
    cr_assert_geq(held, 1000, "the producer held %zu messages", held);
    cr_assert_eq(bus.ops->flush(bus.self, 5000, err, sizeof err), OMO_IO_OK, "%s", err);
    cr_assert_eq(log.ndelivered + log.nfailed, 30 + 2000);
    cr_assert_geq(log.nfailed, 1000);
    cr_assert_eq(rd_kafka_mock_broker_set_up(mock, 2), RD_KAFKA_RESP_ERR_NO_ERROR);
    usleep(1500 * 1000);
    size_t on_partition_1 = 0, records = 0;
    for (size_t i = 0; i < log.ndelivered; i++)
        on_partition_1 += log.dpart[i] == 1;
    cr_assert_eq(
        bus.ops->scan(bus.self, OMO_TOPIC_SHIPMENTS, 1, 0, on_count, &records, err, sizeof err),
        OMO_IO_OK, "%s", err);
    cr_assert_eq(records, on_partition_1, "%zu records on partition 1, %zu reported delivered",
                 records, on_partition_1);

    bus.ops->destroy(bus.self);
    log_free(&log);
    omo_kafka_mock_stop(mk);
}

typedef struct picked {
    int32_t *partition; /* by message index */
} picked;

static void on_picked(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    picked *pk = opaque;
    cr_assert_eq(rkm->err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(rkm->err));
    pk->partition[(intptr_t)rkm->_private] = rkm->partition;
}

Test(kafka, partition_agrees_with_librdkafka_murmur2, .timeout = 60)
{
    /* Kafka's own reference values (the Java client's murmur2 test vectors). */
    static const struct {
        const char *key;
        int32_t hash;
    } vectors[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        int32_t want = (int32_t)((uint32_t)vectors[i].hash & 0x7fffffffu);
        cr_assert_eq(omo_bus_partition(vectors[i].key, strlen(vectors[i].key), INT32_MAX),
                     want % INT32_MAX, "key %s", vectors[i].key);
    }

    omo_kafka_mock *mk = start_cluster(1, 1);
    static const int counts[] = {3, 7, 64};
    enum { NKEYS = 1500 };
    char keys[NKEYS][48];
    size_t lens[NKEYS];
    srand(42);
    for (int i = 0; i < NKEYS; i++) {
        lens[i] = 1 + (size_t)(i % 47); /* every tail length, bytes of all values */
        for (size_t b = 0; b < lens[i]; b++)
            keys[i][b] = (char)(rand() % 255 + 1);
    }
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        char topic[32];
        snprintf(topic, sizeof topic, "murmur-%d", counts[c]);
        cr_assert_eq(rd_kafka_mock_topic_create(omo_kafka_mock_cluster(mk), topic, counts[c], 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        picked pk = {calloc(NKEYS, sizeof(int32_t))};
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();
        char why[256];
        cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", omo_kafka_mock_bootstraps(mk),
                                       why, sizeof why),
                     RD_KAFKA_CONF_OK);
        cr_assert_eq(rd_kafka_topic_conf_set(tconf, "partitioner", "murmur2", why, sizeof why),
                     RD_KAFKA_CONF_OK, "%s", why);
        rd_kafka_conf_set_default_topic_conf(conf, tconf);
        rd_kafka_conf_set_opaque(conf, &pk);
        rd_kafka_conf_set_dr_msg_cb(conf, on_picked);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
        cr_assert_not_null(rk, "%s", why);
        for (int i = 0; i < NKEYS; i++)
            cr_assert_eq(
                rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(keys[i], lens[i]),
                                  RD_KAFKA_V_VALUE("v", 1), RD_KAFKA_V_OPAQUE((void *)(intptr_t)i),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                RD_KAFKA_RESP_ERR_NO_ERROR);
        cr_assert_eq(rd_kafka_flush(rk, 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
        int used = 0;
        bool *hit = calloc((size_t)counts[c], 1);
        for (int i = 0; i < NKEYS; i++) {
            cr_assert_eq(omo_bus_partition(keys[i], lens[i], counts[c]), pk.partition[i],
                         "key %d (%zu bytes) of %d partitions", i, lens[i], counts[c]);
            if (!hit[pk.partition[i]]) {
                hit[pk.partition[i]] = true;
                used++;
            }
        }
        cr_assert_eq(used, counts[c], "the keys reach every partition");
        free(hit);
        rd_kafka_destroy(rk);
        free(pk.partition);
    }
    omo_kafka_mock_stop(mk);
}

Test(kafka, partitions_ready_and_unreachable_brokers, .timeout = 60)
{
    omo_kafka_mock *mk = start_cluster(1, 5);
    bus_log log;
    log_init(&log);
    char group[96], err[512];
    fresh_group(group, sizeof group, "meta");
    omo_bus bus = open_bus(mk, group, &log, NULL, 0);
    cr_assert(bus.ops->ready(bus.self));
    cr_assert_eq(bus.ops->partitions(bus.self, OMO_TOPIC_DEAD_LETTER, err, sizeof err), 5, "%s",
                 err);
    cr_assert_eq(bus.ops->lag(bus.self), -1, "nothing assigned yet: unknown");
    bus.ops->destroy(bus.self);

    /* A topic nobody created: the mock creates it with its default of 4 partitions when the
     * producer asks (it does even when the client refuses automatic creation: it advertises a
     * Metadata version too old to carry the flag). */
    omo_kafka_conf conf = {.brokers = omo_kafka_mock_bootstraps(mk), .group = group};
    conf.topics[OMO_TOPIC_ALLOCATIONS] = "created-on-demand";
    omo_bus_events events = {
        .ctx = &log, .position = ev_position, .revoked = ev_revoked, .delivered = ev_delivered};
    cr_assert_eq(omo_kafka_open(&conf, &events, &bus, err, sizeof err), OMO_IO_OK, "%s", err);
    cr_assert_eq(bus.ops->partitions(bus.self, OMO_TOPIC_ALLOCATIONS, err, sizeof err), 4, "%s",
                 err);
    bus.ops->destroy(bus.self);

    /* a bad property is refused at open */
    omo_kv bad[] = {{"no.such.property", "1"}};
    conf.props = bad;
    conf.nprops = 1;
    omo_bus untouched = {0};
    cr_assert_eq(omo_kafka_open(&conf, &events, &untouched, err, sizeof err), OMO_IO_FATAL);
    cr_assert(strstr(err, "no.such.property") != NULL, "%s", err);
    cr_assert_null(untouched.ops);
    omo_kafka_mock_stop(mk);

    /* Nobody listens: not ready, and production cannot complete. */
    conf = (omo_kafka_conf){.brokers = "127.0.0.1:1", .group = group};
    cr_assert_eq(omo_kafka_open(&conf, &events, &bus, err, sizeof err), OMO_IO_OK, "%s", err);
    cr_assert_not(bus.ops->ready(bus.self));
    omo_out_msg msg = {
        .seq = 1, .topic = OMO_TOPIC_ALLOCATIONS, .partition = 0, .value = "x", .value_len = 1};
    cr_assert_eq(bus.ops->produce(bus.self, &msg, err, sizeof err), OMO_IO_OK, "%s", err);
    cr_assert_eq(bus.ops->flush(bus.self, 300, err, sizeof err), OMO_IO_RETRY);
    cr_assert(strstr(err, "not delivered") != NULL, "%s", err);
    size_t n = 0;
    omo_in_msg msgs[4];
    omo_io io = OMO_IO_OK;
    int64_t deadline = now_ms() + 5000;
    while (io == OMO_IO_OK && now_ms() < deadline)
        io = bus.ops->poll(bus.self, msgs, 4, &n, 100, err, sizeof err);
    cr_assert_eq(io, OMO_IO_RETRY, "poll reports the unreachable brokers");
    cr_assert_eq(n, 0);
    cr_assert(strstr(err, "kafka") != NULL, "%s", err);
    bus.ops->destroy(bus.self);
    cr_assert_eq(log.ndelivered, 0);
    log_free(&log);
}

Test(kafka, fatal_producer_error_is_fatal, .timeout = 60)
{
    omo_kafka_mock *mk = start_cluster(1, 1);
    /* The idempotent producer cannot get a producer id: librdkafka raises a fatal error. */
    rd_kafka_mock_push_request_errors(omo_kafka_mock_cluster(mk), 22 /* InitProducerId */, 1,
                                      RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED);
    bus_log log;
    log_init(&log);
    char group[96], err[512];
    fresh_group(group, sizeof group, "fatal");
    omo_bus bus = open_bus(mk, group, &log, NULL, 0);
    omo_out_msg msg = {
        .seq = 7, .topic = OMO_TOPIC_ALLOCATIONS, .partition = 0, .value = "x", .value_len = 1};
    omo_io io = bus.ops->produce(bus.self, &msg, err, sizeof err);
    int64_t deadline = now_ms() + 10000;
    while (io != OMO_IO_FATAL && now_ms() < deadline)
        io = bus.ops->flush(bus.self, 200, err, sizeof err);
    cr_assert_eq(io, OMO_IO_FATAL);
    cr_assert(strstr(err, "fatal") != NULL, "%s", err);
    cr_assert_eq(bus.ops->produce(bus.self, &msg, err, sizeof err), OMO_IO_FATAL);
    size_t n;
    omo_in_msg msgs[4];
    cr_assert_eq(bus.ops->poll(bus.self, msgs, 4, &n, 0, err, sizeof err), OMO_IO_FATAL);
    cr_assert_not(bus.ops->ready(bus.self));
    cr_assert_eq(log.ndelivered, 0);
    bus.ops->destroy(bus.self);
    log_free(&log);
    omo_kafka_mock_stop(mk);
}

/* Two members of one group, with positions kept where both see them (as the state store does):
 * when the second joins, partitions move between them and no message is applied twice or
 * skipped. */
static void poll_member(omo_bus *bus, bus_log *log, shared_positions *sh, bool *seen, size_t nseen,
                        size_t *got)
{
    omo_in_msg msgs[64];
    char err[512];
    size_t n = 0;
    omo_io io = bus->ops->poll(bus->self, msgs, 64, &n, 50, err, sizeof err);
    cr_assert_neq(io, OMO_IO_FATAL, "%s", err);
    for (size_t i = 0; i < n; i++) {
        const omo_in_msg *m = &msgs[i];
        cr_assert_eq(m->topic, OMO_TOPIC_ORDERS);
        cr_assert(log->owned[m->topic][m->partition], "message of a partition not owned");
        cr_assert_eq(m->offset, sh->next[m->topic][m->partition], "gap or repeat at %d@%" PRId64,
                     m->partition, m->offset);
        sh->next[m->topic][m->partition] = m->offset + 1;
        char num[16] = "";
        memcpy(num, m->value, m->value_len < 15 ? m->value_len : 15);
        int idx = atoi(num);
        cr_assert(idx >= 0 && (size_t)idx < nseen);
        cr_assert_not(seen[idx], "message %d applied twice", idx);
        seen[idx] = true;
        (*got)++;
    }
}

Test(kafka, rebalance_moves_partitions_without_loss_or_repeat, .timeout = 60)
{
    omo_kafka_mock *mk = start_cluster(1, 4);
    enum { TOTAL = 4000, CHUNK = 100 };
    char *values[CHUNK], *keys[CHUNK];
    bool *seen = calloc(TOTAL, 1);
    shared_positions sh = {0};
    bus_log a, b;
    log_init(&a);
    log_init(&b);
    a.shared = b.shared = &sh;
    char group[96];
    fresh_group(group, sizeof group, "rebalance");
    omo_bus bus_a = open_bus(mk, group, &a, NULL, 0);
    omo_bus bus_b = {0};
    size_t produced = 0, got = 0;
    int64_t deadline = now_ms() + 45000;
    while ((got < TOTAL || owned_count(&b) < 8) && now_ms() < deadline) {
        if (produced < TOTAL) {
            for (int i = 0; i < CHUNK; i++) {
                cr_assert(asprintf(&values[i], "%zu", produced + (size_t)i) > 0);
                cr_assert(asprintf(&keys[i], "k%zu", produced + (size_t)i) > 0);
            }
            cr_assert(omo_kafka_mock_produce(mk, "omo.orders", -1, (const char *const *)keys,
                                             (const char *const *)values, CHUNK));
            for (int i = 0; i < CHUNK; i++) {
                free(values[i]);
                free(keys[i]);
            }
            produced += CHUNK;
        }
        if (bus_a.ops)
            poll_member(&bus_a, &a, &sh, seen, TOTAL, &got);
        if (!bus_b.ops && bus_a.ops && owned_count(&a) == 8 && got > TOTAL / 4)
            bus_b = open_bus(mk, group, &b, NULL, 0);
        if (bus_b.ops)
            poll_member(&bus_b, &b, &sh, seen, TOTAL, &got);
        /* once both share the work, the first leaves: the second takes everything over */
        if (bus_a.ops && owned_count(&a) > 0 && owned_count(&b) > 0 &&
            owned_count(&a) + owned_count(&b) == 8 && got > TOTAL / 2) {
            bus_a.ops->destroy(bus_a.self);
            bus_a.ops = NULL;
            memset(a.owned, 0, sizeof a.owned);
        }
    }
    cr_assert_not_null(bus_b.ops, "the second member never started");
    cr_assert_gt(a.revoked, 0, "the first member gave partitions up");
    cr_assert_eq(got, TOTAL, "applied %zu of %d messages", got, TOTAL);
    cr_assert_eq(owned_count(&b), 8);
    for (size_t i = 0; i < TOTAL; i++)
        cr_assert(seen[i]);
    if (bus_a.ops)
        bus_a.ops->destroy(bus_a.self);
    bus_b.ops->destroy(bus_b.self);
    free(seen);
    log_free(&a);
    log_free(&b);
    omo_kafka_mock_stop(mk);
}
