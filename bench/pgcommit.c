/* pgcommit: how long the store takes to commit a service-sized batch.
 *
 *   pgcommit DSN [BATCHES] [basic]
 *
 * Migrates DSN, then commits BATCHES (default 200) batches, each of 2,000 applied events,
 * 2,000 outbox messages (each an allocation revision), 500 stock rows, 12 input positions, the
 * delivery marks of the previous batch's 2,000 messages and where the instance's unconfirmed
 * messages begin, as the service would after deciding 2,000 orders; `basic` leaves out the
 * delivery marks. Prints the commit time
 * per batch (mean, median, 99th percentile, slowest) and the rows per second. Continues after
 * whatever seqs the database already holds. */
#include "postgres/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EVENTS = 2000, STOCK = 500, POSITIONS = 12 };

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: pgcommit DSN [BATCHES] [basic]\n");
        return 2;
    }
    int batches = argc > 2 ? atoi(argv[2]) : 200;
    bool basic = argc > 3 && strcmp(argv[3], "basic") == 0;
    if (batches < 1)
        batches = 1;
    char err[1024];
    int applied;
    if (omo_pg_migrate_dsn(argv[1], &applied, err, sizeof err) != OMO_IO_OK) {
        fprintf(stderr, "pgcommit: %s\n", err);
        return 1;
    }
    omo_store store;
    if (omo_pg_store_open(argv[1], &store, err, sizeof err) != OMO_IO_OK) {
        fprintf(stderr, "pgcommit: %s\n", err);
        return 1;
    }
    int32_t instance;
    if (store.ops->register_instance(store.self, &instance, err, sizeof err) != OMO_IO_OK) {
        fprintf(stderr, "pgcommit: %s\n", err);
        store.ops->destroy(store.self);
        return 1;
    }
    int64_t seq = 0, out_seq = 0;
    if (store.ops->max_seqs(store.self, &seq, &out_seq, err, sizeof err) != OMO_IO_OK) {
        fprintf(stderr, "pgcommit: %s\n", err);
        store.ops->destroy(store.self);
        return 1;
    }

    omo_applied_event *events = calloc(EVENTS, sizeof *events);
    omo_out_msg *outbox = calloc(EVENTS, sizeof *outbox);
    omo_delivery *delivered = calloc(EVENTS, sizeof *delivered);
    omo_stock_row *stock = calloc(STOCK, sizeof *stock);
    omo_position positions[POSITIONS];
    char(*values)[192] = calloc(EVENTS, sizeof *values);
    char(*bodies)[320] = calloc(EVENTS, sizeof *bodies);
    char(*ids)[32] = calloc(EVENTS, sizeof *ids);
    char(*skus)[16] = calloc(STOCK, sizeof *skus);
    double *ms = calloc((size_t)batches, sizeof *ms);
    size_t ndelivered = 0;
    int64_t offset = 0, rows = 0;

    for (int b = 0; b < batches; b++) {
        for (int i = 0; i < EVENTS; i++) {
            int64_t s = ++seq;
            snprintf(ids[i], sizeof ids[i], "W-%lld", (long long)s);
            int vlen = snprintf(values[i], sizeof values[i],
                                "{\"type\":\"order.created\",\"order_id\":\"%s\",\"channel\":"
                                "\"web\",\"created_at\":\"2026-11-23T10:15:00Z\",\"lines\":"
                                "[{\"line_id\":\"1\",\"sku\":\"SKU-00042\",\"qty\":2}]}",
                                ids[i]);
            events[i] = (omo_applied_event){.seq = s,
                                            .topic = OMO_TOPIC_ORDERS,
                                            .partition = (int32_t)(s % POSITIONS),
                                            .offset = offset++,
                                            .value = values[i],
                                            .value_len = (size_t)vlen,
                                            .rules_version = "5f1d0c8a9e2b4c71"};
            int blen = snprintf(bodies[i], sizeof bodies[i],
                                "{\"type\":\"allocation\",\"order_id\":\"%s\",\"revision\":1,"
                                "\"status\":\"allocated\",\"shipments\":[{\"shipment_id\":"
                                "\"%s/1\",\"node_id\":\"S-012\",\"lines\":[{\"line_id\":\"1\","
                                "\"sku\":\"SKU-00042\",\"qty\":2}],\"cost\":5.80,\"hours\":26}],"
                                "\"backordered\":[]}",
                                ids[i], ids[i]);
            outbox[i] = (omo_out_msg){.seq = ++out_seq,
                                      .topic = OMO_TOPIC_ALLOCATIONS,
                                      .partition = (int32_t)(s % POSITIONS),
                                      .key = ids[i],
                                      .key_len = strlen(ids[i]),
                                      .value = bodies[i],
                                      .value_len = (size_t)blen,
                                      .nheaders = 1};
            outbox[i].headers[0] = (omo_header){"content-type", "application/json"};
        }
        for (int i = 0; i < STOCK; i++) {
            snprintf(skus[i], sizeof skus[i], "SKU-%05d", (b * STOCK + i) % 20000);
            stock[i] = (omo_stock_row){"S-012", skus[i], 100, b % 50, "07-12-3"};
        }
        for (int p = 0; p < POSITIONS; p++)
            positions[p] = (omo_position){OMO_TOPIC_ORDERS, p, offset};
        omo_batch batch = {.events = events,
                           .nevents = EVENTS,
                           .positions = positions,
                           .npositions = POSITIONS,
                           .outbox = outbox,
                           .noutbox = EVENTS,
                           .stock = stock,
                           .nstock = STOCK,
                           .delivered = delivered,
                           .ndelivered = basic ? 0 : ndelivered,
                           .unconfirmed_from = outbox[0].seq};
        double t0 = now_ms();
        omo_io io = store.ops->commit(store.self, &batch, err, sizeof err);
        ms[b] = now_ms() - t0;
        if (io != OMO_IO_OK) {
            fprintf(stderr, "pgcommit: batch %d: %s\n", b, err);
            batches = b;
            break;
        }
        rows += (int64_t)EVENTS * 2 + STOCK + POSITIONS + (basic ? 0 : (int64_t)ndelivered);
        /* This batch's messages are confirmed in the next one, as the bus reports them. */
        for (int i = 0; i < EVENTS; i++)
            delivered[i] =
                (omo_delivery){outbox[i].seq, outbox[i].topic, outbox[i].partition, outbox[i].seq};
        ndelivered = EVENTS;
    }

    if (batches > 0) {
        double total = 0;
        for (int b = 0; b < batches; b++)
            total += ms[b];
        qsort(ms, (size_t)batches, sizeof *ms, cmp_double);
        if (basic)
            printf("pgcommit: %d batches of %d events + %d outbox + %d stock\n", batches, EVENTS,
                   EVENTS, STOCK);
        else
            printf("pgcommit: %d batches of %d events + %d outbox + %d stock + %d delivered\n",
                   batches, EVENTS, EVENTS, STOCK, EVENTS);
        printf("  commit ms  mean %.1f  median %.1f  p99 %.1f  max %.1f\n", total / batches,
               ms[batches / 2], ms[(batches * 99) / 100], ms[batches - 1]);
        printf("  events/s   %.0f\n", EVENTS * batches / (total / 1e3));
        printf("  rows/s     %.0f\n", rows / (total / 1e3));
    }
    store.ops->destroy(store.self);
    free(events);
    free(outbox);
    free(delivered);
    free(stock);
    free(values);
    free(bodies);
    free(ids);
    free(skus);
    free(ms);
    return batches > 0 ? 0 : 1;
}
