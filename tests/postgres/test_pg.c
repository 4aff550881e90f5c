/* The PostgreSQL store against a real server: migrations, a batch and everything that reads it
 * back, all-or-nothing batches, streaming replay, restarts and cut connections. */
#include "postgres/local.h"
#include "postgres/pg.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern const struct omo_migration {
    const char *name;
    const char *sql;
} omo_migrations[];

static omo_pg_local *pg;
static omo_store store;
static int32_t me; /* the store's instance */
static char err[1024];

static int migration_count(void)
{
    int n = 0;
    while (omo_migrations[n].name)
        n++;
    return n;
}

static void start_server(void)
{
    char err[512];
    pg = omo_pg_local_start(NULL, false, err, sizeof err);
    cr_assert_not_null(pg, "could not start PostgreSQL: %s", err);
}

static void stop_server(void)
{
    omo_pg_local_stop(pg);
    pg = NULL;
}

static void open_store(void)
{
    start_server();
    int applied = -1;
    cr_assert_eq(omo_pg_migrate_dsn(omo_pg_local_dsn(pg), &applied, err, sizeof err), OMO_IO_OK,
                 "%s", err);
    cr_assert_eq(applied, migration_count());
    cr_assert_eq(omo_pg_store_open(omo_pg_local_dsn(pg), &store, err, sizeof err), OMO_IO_OK, "%s",
                 err);
    cr_assert_eq(store.ops->register_instance(store.self, &me, err, sizeof err), OMO_IO_OK, "%s",
                 err);
    cr_assert_geq(me, 1);
}

static void close_store(void)
{
    if (store.ops)
        store.ops->destroy(store.self);
    store = (omo_store){0};
    stop_server();
}

/* A direct connection for looking at tables the store does not read back. */
static long long sql_int(const char *query)
{
    PGconn *conn = PQconnectdb(omo_pg_local_dsn(pg));
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, query);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", query, PQerrorMessage(conn));
    cr_assert_eq(PQntuples(res), 1);
    long long v = PQgetisnull(res, 0, 0) ? -1 : atoll(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
    return v;
}

static char *sql_text(const char *query)
{
    PGconn *conn = PQconnectdb(omo_pg_local_dsn(pg));
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, query);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", query, PQerrorMessage(conn));
    cr_assert_eq(PQntuples(res), 1);
    char *v = PQgetisnull(res, 0, 0) ? strdup("NULL") : strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(conn);
    return v;
}

/* ---- collectors ---- */

typedef struct collected {
    int n;
    int64_t seq[64];
    omo_topic topic[64];
    int32_t partition[64];
    int64_t offset[64];
    char *value[64];
    size_t value_len[64];
    bool value_null[64];
    char *key[64];
    size_t key_len[64];
    char *text[64]; /* rules version, or headers joined as name=value; */
} collected;

static void collected_free(collected *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->value[i]);
        free(c->key[i]);
        free(c->text[i]);
    }
    *c = (collected){0};
}

static char *dup_bytes(const char *p, size_t len)
{
    char *s = malloc(len + 1);
    if (len)
        memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

static void on_position(void *ctx, const omo_position *pos)
{
    collected *c = ctx;
    cr_assert_lt(c->n, 64);
    c->topic[c->n] = pos->topic;
    c->partition[c->n] = pos->partition;
    c->offset[c->n] = pos->next_offset;
    c->n++;
}

static void on_event(void *ctx, const omo_applied_event *ev)
{
    collected *c = ctx;
    cr_assert_lt(c->n, 64);
    int i = c->n++;
    c->seq[i] = ev->seq;
    c->topic[i] = ev->topic;
    c->partition[i] = ev->partition;
    c->offset[i] = ev->offset;
    c->value_null[i] = ev->value == NULL;
    c->value[i] = dup_bytes(ev->value, ev->value_len);
    c->value_len[i] = ev->value_len;
    c->text[i] = ev->rules_version ? strdup(ev->rules_version) : NULL;
}

static void on_msg(void *ctx, const omo_out_msg *msg)
{
    collected *c = ctx;
    cr_assert_lt(c->n, 64);
    int i = c->n++;
    c->seq[i] = msg->seq;
    c->topic[i] = msg->topic;
    c->partition[i] = msg->partition;
    c->value_null[i] = msg->value == NULL;
    c->value[i] = dup_bytes(msg->value, msg->value_len);
    c->value_len[i] = msg->value_len;
    c->key[i] = msg->key ? dup_bytes(msg->key, msg->key_len) : NULL;
    c->key_len[i] = msg->key_len;
    char buf[1024] = "";
    for (int h = 0; h < msg->nheaders; h++) {
        strcat(buf, msg->headers[h].name);
        strcat(buf, "=");
        strcat(buf, msg->headers[h].value);
        strcat(buf, ";");
    }
    c->text[i] = strdup(buf);
}

static void on_body(void *ctx, const char *body, size_t len)
{
    collected *c = ctx;
    cr_assert_lt(c->n, 64);
    int i = c->n++;
    c->value[i] = dup_bytes(body, len);
    c->value_len[i] = len;
}

/* ---- batches ---- */

static omo_applied_event event(int64_t seq, int32_t partition, int64_t offset, const char *value)
{
    return (omo_applied_event){.seq = seq,
                               .topic = OMO_TOPIC_ORDERS,
                               .partition = partition,
                               .offset = offset,
                               .value = value,
                               .value_len = value ? strlen(value) : 0,
                               .rules_version = "r1"};
}

static omo_out_msg message(int64_t seq, int32_t partition, const char *key, const char *value)
{
    return (omo_out_msg){.seq = seq,
                         .topic = OMO_TOPIC_ALLOCATIONS,
                         .partition = partition,
                         .key = key,
                         .key_len = key ? strlen(key) : 0,
                         .value = value,
                         .value_len = value ? strlen(value) : 0};
}

static omo_io commit(const omo_batch *b)
{
    err[0] = '\0';
    return store.ops->commit(store.self, b, err, sizeof err);
}

static int64_t applied_max(void)
{
    int64_t applied = -1, outbox = -1;
    cr_assert_eq(store.ops->max_seqs(store.self, &applied, &outbox, err, sizeof err), OMO_IO_OK,
                 "%s", err);
    return applied;
}

/* ---- migrations ---- */

TestSuite(pg_migrate, .init = start_server, .fini = stop_server, .timeout = 120);

Test(pg_migrate, twice_applies_once)
{
    int applied = -1;
    cr_assert_eq(omo_pg_migrate_dsn(omo_pg_local_dsn(pg), &applied, err, sizeof err), OMO_IO_OK,
                 "%s", err);
    cr_assert_eq(applied, migration_count());
    cr_assert_eq(sql_int("SELECT count(*) FROM schema_migrations"), migration_count());
    cr_assert_eq(sql_int("SELECT count(*) FROM applied_events"), 0);

    cr_assert_eq(omo_pg_migrate_dsn(omo_pg_local_dsn(pg), &applied, err, sizeof err), OMO_IO_OK,
                 "%s", err);
    cr_assert_eq(applied, 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM schema_migrations"), migration_count());
}

/* The suite's init starts the server; the test's own runs as well. */
Test(pg_migrate, command_output, .init = cr_redirect_stdout)
{
    cr_assert_eq(omo_pg_cmd_migrate(omo_pg_local_dsn(pg)), 0);
    cr_assert_eq(omo_pg_cmd_migrate(omo_pg_local_dsn(pg)), 0);
    fflush(stdout);
    char expect[4096] = "";
    for (int i = 0; omo_migrations[i].name; i++) {
        strcat(expect, "applied ");
        strcat(expect, omo_migrations[i].name);
        strcat(expect, "\n");
    }
    strcat(expect, "up to date\n");
    cr_assert_stdout_eq_str(expect);
}

Test(pg_migrate, unreachable_database_exits_1, .init = cr_redirect_stderr)
{
    /* Port 1 on the loopback: nobody listens there. */
    cr_assert_eq(omo_pg_cmd_migrate("postgresql://postgres@127.0.0.1:1/postgres"), 1);
    int applied;
    cr_assert_eq(
        omo_pg_migrate_dsn("postgresql://postgres@127.0.0.1:1/postgres", &applied, err, sizeof err),
        OMO_IO_RETRY);
    cr_assert_neq(strstr(err, "connect"), NULL, "%s", err);
}

static void *migrate_thread(void *arg)
{
    int *applied = arg;
    char e[512];
    if (omo_pg_migrate_dsn(omo_pg_local_dsn(pg), applied, e, sizeof e) != OMO_IO_OK)
        *applied = -100;
    return NULL;
}

Test(pg_migrate, concurrent_migrators_apply_once)
{
    int applied[4] = {-1, -1, -1, -1};
    pthread_t threads[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, migrate_thread, &applied[i]), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    int total = 0;
    for (int i = 0; i < 4; i++) {
        cr_assert_geq(applied[i], 0, "migrator %d failed", i);
        total += applied[i];
    }
    cr_assert_eq(total, migration_count());
    cr_assert_eq(sql_int("SELECT count(*) FROM schema_migrations"), migration_count());
}

Test(pg_migrate, store_refuses_unmigrated_database)
{
    omo_store s;
    cr_assert_eq(omo_pg_store_open(omo_pg_local_dsn(pg), &s, err, sizeof err), OMO_IO_FATAL);
    cr_assert_neq(strstr(err, "omo db migrate"), NULL, "%s", err);
    cr_assert_eq(omo_pg_store_open("postgresql://[oops", &s, err, sizeof err), OMO_IO_FATAL);
    cr_assert_eq(
        omo_pg_store_open("postgresql://postgres@127.0.0.1:1/postgres", &s, err, sizeof err),
        OMO_IO_RETRY);
}

/* ---- the store ---- */

TestSuite(pg_store, .init = open_store, .fini = close_store, .timeout = 300);

Test(pg_store, batch_reads_back)
{
    /* Values with bytes that are not UTF-8, NUL included; a message without key or value. */
    static const char raw[] = {'{', '\0', '\xff', '"', '\\', '}'};
    omo_applied_event events[3] = {event(1, 0, 10, "{\"type\":\"order.created\"}"),
                                   event(2, 1, 7, NULL), event(3, 0, 11, NULL)};
    events[1].rules_version = NULL;
    events[2].value = raw;
    events[2].value_len = sizeof raw;
    omo_position positions[3] = {{OMO_TOPIC_ORDERS, 0, 5},
                                 {OMO_TOPIC_ORDERS, 1, 8},
                                 {OMO_TOPIC_ORDERS, 0, 12}}; /* the last for a key wins */
    omo_out_msg outbox[4] = {
        message(1, 2, "W-1", "{\"order_id\":\"W-1\", \"revision\":1,\"status\":\"allocated\"}"),
        message(2, 0, "W-2", "{\"revision\":1}"), message(3, 2, NULL, NULL),
        message(4, 2, "W-1", "{\"order_id\":\"W-1\",\"revision\":2,\"status\":\"cancelled\"}")};
    outbox[1].headers[0] = (omo_header){"omo.error.reason", "missing_field"};
    outbox[1].headers[1] = (omo_header){"quote\"comma,brace}", "back\\slash {x} NULL"};
    outbox[1].headers[2] = (omo_header){"empty", ""};
    outbox[1].nheaders = 3;
    omo_stock_row stock[3] = {{"S-1", "SKU-1", 5, 1, "07-12-3"},
                              {"S-1", "SKU-2", 3, 0, ""},
                              {"S-1", "SKU-1", 4, 2, "07-12-4"}};
    omo_batch batch = {.events = events,
                       .nevents = 3,
                       .positions = positions,
                       .npositions = 3,
                       .outbox = outbox,
                       .noutbox = 4,
                       .stock = stock,
                       .nstock = 3};
    cr_assert_eq(commit(&batch), OMO_IO_OK, "%s", err);

    collected c = {0};
    cr_assert_eq(store.ops->positions(store.self, on_position, &c, err, sizeof err), OMO_IO_OK,
                 "%s", err);
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.topic[0], OMO_TOPIC_ORDERS);
    cr_assert_eq(c.partition[0], 0);
    cr_assert_eq(c.offset[0], 12);
    cr_assert_eq(c.partition[1], 1);
    cr_assert_eq(c.offset[1], 8);
    collected_free(&c);

    cr_assert_eq(store.ops->replay(store.self, 0, on_event, &c, err, sizeof err), OMO_IO_OK, "%s",
                 err);
    cr_assert_eq(c.n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(c.seq[i], i + 1);
        cr_assert_eq(c.partition[i], events[i].partition);
        cr_assert_eq(c.offset[i], events[i].offset);
    }
    cr_assert_str_eq(c.value[0], "{\"type\":\"order.created\"}");
    cr_assert(c.value_null[1]);
    cr_assert_null(c.text[1]);
    cr_assert_str_eq(c.text[0], "r1");
    cr_assert_eq(c.value_len[2], sizeof raw);
    cr_assert_eq(memcmp(c.value[2], raw, sizeof raw), 0);
    collected_free(&c);

    cr_assert_eq(store.ops->replay(store.self, 2, on_event, &c, err, sizeof err), OMO_IO_OK, "%s",
                 err);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.seq[0], 3);
    collected_free(&c);

    cr_assert_eq(store.ops->pending(store.self, me, on_msg, &c, err, sizeof err), OMO_IO_OK, "%s",
                 err);
    cr_assert_eq(c.n, 4);
    cr_assert_eq(c.seq[0], 1);
    cr_assert_eq(c.topic[0], OMO_TOPIC_ALLOCATIONS);
    cr_assert_eq(c.partition[0], 2);
    cr_assert_str_eq(c.key[0], "W-1");
    cr_assert_str_eq(c.value[0], outbox[0].value);
    cr_assert_str_eq(c.text[0], "");
    cr_assert_str_eq(c.text[1], "omo.error.reason=missing_field;quote\"comma,brace}=back\\slash "
                                "{x} NULL;empty=;");
    cr_assert_null(c.key[2]);
    cr_assert(c.value_null[2]);
    collected_free(&c);

    int64_t applied = 0, out = 0;
    cr_assert_eq(store.ops->max_seqs(store.self, &applied, &out, err, sizeof err), OMO_IO_OK);
    cr_assert_eq(applied, 3);
    cr_assert_eq(out, 4);

    /* An order's revisions are its messages on the allocations topic, in the order sent. */
    cr_assert_eq(store.ops->order_messages(store.self, OMO_TOPIC_ALLOCATIONS, "W-1", on_body, &c,
                                           err, sizeof err),
                 OMO_IO_OK, "%s", err);
    cr_assert_eq(c.n, 2);
    cr_assert_str_eq(c.value[0], outbox[0].value); /* byte for byte, spacing kept */
    cr_assert_str_eq(c.value[1], outbox[3].value);
    collected_free(&c);
    cr_assert_eq(store.ops->order_messages(store.self, OMO_TOPIC_ALLOCATIONS, "W-9", on_body, &c,
                                           err, sizeof err),
                 OMO_IO_OK);
    cr_assert_eq(c.n, 0);
    cr_assert_eq(store.ops->order_messages(store.self, OMO_TOPIC_SHIPMENTS, "W-1", on_body, &c, err,
                                           sizeof err),
                 OMO_IO_OK);
    cr_assert_eq(c.n, 0);
    /* For operators, order_revisions shows them as rows. */
    cr_assert_eq(sql_int("SELECT count(*) FROM order_revisions WHERE order_id = 'W-1' AND "
                         "status = 'cancelled' AND revision = 2"),
                 1);

    cr_assert_eq(sql_int("SELECT on_hand * 10 + reserved FROM stock WHERE sku = 'SKU-1'"), 42);
    char *bin = sql_text("SELECT bin FROM stock WHERE sku = 'SKU-1'");
    cr_assert_str_eq(bin, "07-12-4");
    free(bin);
    bin = sql_text("SELECT bin FROM stock WHERE sku = 'SKU-2'");
    cr_assert_str_eq(bin, "NULL");
    free(bin);

    /* Deliveries: confirmed rows leave pending, and set where each partition's read-back
     * starts. Positions and stock move on. */
    int64_t next = -1;
    cr_assert_eq(
        store.ops->confirmed_end(store.self, me, OMO_TOPIC_ALLOCATIONS, 2, &next, err, sizeof err),
        OMO_IO_OK);
    cr_assert_eq(next, 0);
    omo_delivery delivered[2] = {{1, OMO_TOPIC_ALLOCATIONS, 2, 40},
                                 {3, OMO_TOPIC_ALLOCATIONS, 2, 41}};
    omo_position moved = {OMO_TOPIC_ORDERS, 1, 20};
    omo_stock_row sold = {"S-1", "SKU-2", 2, 0, "01-01-1"};
    omo_batch second = {.delivered = delivered,
                        .ndelivered = 2,
                        .positions = &moved,
                        .npositions = 1,
                        .stock = &sold,
                        .nstock = 1};
    cr_assert_eq(commit(&second), OMO_IO_OK, "%s", err);
    cr_assert_eq(commit(&second), OMO_IO_OK, "%s", err); /* marks are kept once */
    cr_assert_eq(sql_int("SELECT count(*) FROM deliveries"), 2);
    cr_assert_eq(store.ops->pending(store.self, me, on_msg, &c, err, sizeof err), OMO_IO_OK);
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.seq[0], 2);
    cr_assert_eq(c.seq[1], 4);
    collected_free(&c);
    /* Where the instance's unconfirmed messages begin bounds what is looked at. */
    omo_batch third = {.unconfirmed_from = 3};
    cr_assert_eq(commit(&third), OMO_IO_OK, "%s", err);
    cr_assert_eq(store.ops->pending(store.self, me, on_msg, &c, err, sizeof err), OMO_IO_OK);
    cr_assert_eq(c.n, 1);
    cr_assert_eq(c.seq[0], 4);
    collected_free(&c);
    cr_assert_eq(
        store.ops->confirmed_end(store.self, me, OMO_TOPIC_ALLOCATIONS, 2, &next, err, sizeof err),
        OMO_IO_OK);
    cr_assert_eq(next, 42);
    cr_assert_eq(
        store.ops->confirmed_end(store.self, me, OMO_TOPIC_ALLOCATIONS, 0, &next, err, sizeof err),
        OMO_IO_OK);
    cr_assert_eq(next, 0);
    cr_assert_eq(store.ops->positions(store.self, on_position, &c, err, sizeof err), OMO_IO_OK);
    cr_assert_eq(c.n, 2);
    cr_assert_eq(c.offset[0], 12);
    cr_assert_eq(c.offset[1], 20);
    collected_free(&c);
    cr_assert_eq(sql_int("SELECT on_hand FROM stock WHERE sku = 'SKU-2'"), 2);
}

Test(pg_store, batch_is_all_or_nothing)
{
    omo_applied_event events[2] = {event(1, 0, 0, "a"), event(2, 0, 1, "b")};
    omo_out_msg outbox[1] = {message(1, 0, "k", "v")};
    omo_position pos = {OMO_TOPIC_ORDERS, 0, 2};
    omo_batch first = {.events = events,
                       .nevents = 2,
                       .outbox = outbox,
                       .noutbox = 1,
                       .positions = &pos,
                       .npositions = 1};
    cr_assert_eq(commit(&first), OMO_IO_OK, "%s", err);

    /* New events go in first; then the outbox repeats seq 1 and fails: nothing may stay. */
    omo_applied_event more[2] = {event(3, 0, 2, "c"), event(4, 0, 3, "d")};
    omo_out_msg again[2] = {message(2, 0, "k", "v2"), message(1, 0, "k", "v")};
    omo_position moved = {OMO_TOPIC_ORDERS, 0, 4};
    omo_stock_row row = {"S-1", "SKU-1", 1, 0, ""};
    omo_delivery d = {1, OMO_TOPIC_ALLOCATIONS, 0, 0};
    omo_batch bad = {.events = more,
                     .nevents = 2,
                     .outbox = again,
                     .noutbox = 2,
                     .positions = &moved,
                     .npositions = 1,
                     .stock = &row,
                     .nstock = 1,
                     .delivered = &d,
                     .ndelivered = 1};
    cr_assert_eq(commit(&bad), OMO_IO_FATAL);
    cr_assert_neq(strstr(err, "duplicate key"), NULL, "%s", err);
    cr_assert_neq(strstr(err, "outbox_pkey"), NULL, "%s", err);

    int64_t applied = 0, out = 0;
    cr_assert_eq(store.ops->max_seqs(store.self, &applied, &out, err, sizeof err), OMO_IO_OK);
    cr_assert_eq(applied, 2);
    cr_assert_eq(out, 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM applied_events"), 2);
    cr_assert_eq(sql_int("SELECT next_offset FROM input_positions"), 2);
    cr_assert_eq(sql_int("SELECT count(*) FROM stock"), 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM deliveries"), 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM output_positions"), 0);

    /* A delivery mark that breaks a constraint fails the same way, and the store carries on. */
    omo_delivery broken = {9, OMO_TOPIC_ALLOCATIONS, 0, -1};
    omo_batch bad_mark = {.delivered = &broken, .ndelivered = 1};
    cr_assert_eq(commit(&bad_mark), OMO_IO_FATAL);
    cr_assert_neq(strstr(err, "check constraint"), NULL, "%s", err);

    again[1].seq = 3;
    cr_assert_eq(commit(&bad), OMO_IO_OK, "%s", err);
    cr_assert_eq(applied_max(), 4);
    cr_assert_eq(sql_int("SELECT next_offset FROM input_positions"), 4);
    cr_assert_eq(sql_int("SELECT count(*) FROM deliveries"), 1);
}

typedef struct replay_check {
    int64_t n, last;
    bool in_order, values_ok;
} replay_check;

static void on_replayed(void *ctx, const omo_applied_event *ev)
{
    replay_check *rc = ctx;
    if (ev->seq != rc->last + 1)
        rc->in_order = false;
    char expect[160];
    int len = snprintf(expect, sizeof expect,
                       "{\"type\":\"order.created\",\"order_id\":\"W-%lld\",\"lines\":[]}",
                       (long long)ev->seq);
    if (ev->value_len != (size_t)len || memcmp(ev->value, expect, (size_t)len) != 0 ||
        ev->offset != ev->seq - 1 || ev->partition != (int32_t)(ev->seq % 3))
        rc->values_ok = false;
    rc->last = ev->seq;
    rc->n++;
}

Test(pg_store, replay_streams_50000_events)
{
    enum { TOTAL = 50000, BATCH = 2000 };
    omo_applied_event *events = calloc(BATCH, sizeof *events);
    char(*values)[96] = calloc(BATCH, sizeof *values);
    double slowest = 0;
    for (int64_t start = 1; start <= TOTAL; start += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            int64_t seq = start + i;
            snprintf(values[i], sizeof values[i],
                     "{\"type\":\"order.created\",\"order_id\":\"W-%lld\",\"lines\":[]}",
                     (long long)seq);
            events[i] = event(seq, (int32_t)(seq % 3), seq - 1, values[i]);
        }
        omo_batch b = {.events = events, .nevents = BATCH};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cr_assert_eq(commit(&b), OMO_IO_OK, "%s", err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (ms > slowest)
            slowest = ms;
    }
    free(events);
    free(values);
    cr_log_info("slowest commit of %d events: %.1f ms", BATCH, slowest);

    replay_check rc = {.in_order = true, .values_ok = true};
    cr_assert_eq(store.ops->replay(store.self, 0, on_replayed, &rc, err, sizeof err), OMO_IO_OK,
                 "%s", err);
    cr_assert_eq(rc.n, TOTAL);
    cr_assert(rc.in_order);
    cr_assert(rc.values_ok);

    rc = (replay_check){.last = TOTAL - 10, .in_order = true, .values_ok = true};
    cr_assert_eq(store.ops->replay(store.self, TOTAL - 10, on_replayed, &rc, err, sizeof err),
                 OMO_IO_OK);
    cr_assert_eq(rc.n, 10);
    cr_assert(rc.in_order);
    /* Exactly a multiple of the fetch size: the last, empty FETCH ends it. */
    rc = (replay_check){.last = TOTAL - 20000, .in_order = true, .values_ok = true};
    cr_assert_eq(store.ops->replay(store.self, TOTAL - 20000, on_replayed, &rc, err, sizeof err),
                 OMO_IO_OK);
    cr_assert_eq(rc.n, 20000);
    cr_assert(rc.in_order && rc.values_ok);
}

Test(pg_store, restart_gives_retry_once_then_reconnects)
{
    omo_applied_event ev = event(1, 0, 0, "a");
    omo_batch b = {.events = &ev, .nevents = 1};
    cr_assert_eq(commit(&b), OMO_IO_OK, "%s", err);
    cr_assert(store.ops->ready(store.self));

    cr_assert_eq(omo_pg_local_restart(pg), 0);
    int64_t applied = 0, out = 0;
    err[0] = '\0';
    cr_assert_eq(store.ops->max_seqs(store.self, &applied, &out, err, sizeof err), OMO_IO_RETRY);
    cr_assert_neq(err[0], '\0');
    cr_assert_eq(store.ops->max_seqs(store.self, &applied, &out, err, sizeof err), OMO_IO_OK, "%s",
                 err);
    cr_assert_eq(applied, 1);
    cr_assert(store.ops->ready(store.self), "ready() after a restart");

    /* The same with a commit as the first call after the restart. */
    cr_assert_eq(omo_pg_local_restart(pg), 0);
    ev = event(2, 0, 1, "b");
    cr_assert_eq(commit(&b), OMO_IO_RETRY);
    cr_assert_neq(err[0], '\0');
    cr_assert_eq(commit(&b), OMO_IO_OK, "%s", err);
    cr_assert_eq(applied_max(), 2);
    cr_assert_eq(sql_int("SELECT count(*) FROM applied_events"), 2);

    /* The same with a streaming read. */
    cr_assert_eq(omo_pg_local_restart(pg), 0);
    collected c = {0};
    cr_assert_eq(store.ops->replay(store.self, 0, on_event, &c, err, sizeof err), OMO_IO_RETRY);
    collected_free(&c);
    cr_assert_eq(store.ops->replay(store.self, 0, on_event, &c, err, sizeof err), OMO_IO_OK, "%s",
                 err);
    cr_assert_eq(c.n, 2);
    collected_free(&c);
}

Test(pg_store, server_gone_is_retry_and_not_ready)
{
    stop_server();
    cr_assert_not(store.ops->ready(store.self));
    omo_applied_event ev = event(1, 0, 0, "a");
    omo_batch b = {.events = &ev, .nevents = 1};
    cr_assert_eq(commit(&b), OMO_IO_RETRY);
    cr_assert_eq(commit(&b), OMO_IO_RETRY); /* reconnecting fails too */
    cr_assert_neq(strstr(err, "connect"), NULL, "%s", err);
    int64_t next;
    cr_assert_eq(
        store.ops->confirmed_end(store.self, me, OMO_TOPIC_ALLOCATIONS, 0, &next, err, sizeof err),
        OMO_IO_RETRY);
}

Test(pg_store, save_rules_keeps_each_text_once_and_every_activation)
{
    cr_assert_eq(store.ops->save_rules(store.self, "abc", "rules: []\n", "ops", err, sizeof err),
                 OMO_IO_OK, "%s", err);
    cr_assert_eq(store.ops->save_rules(store.self, "abc", "rules: []\n", "ops", err, sizeof err),
                 OMO_IO_OK, "%s", err);
    cr_assert_eq(store.ops->save_rules(store.self, "abc", "changed", "someone", err, sizeof err),
                 OMO_IO_OK, "%s", err);
    cr_assert_eq(sql_int("SELECT count(*) FROM rules_versions"), 1);
    char *text = sql_text("SELECT text || '|' || \"by\" FROM rules_versions WHERE hash = 'abc'");
    cr_assert_str_eq(text, "rules: []\n|ops");
    free(text);
    cr_assert_eq(store.ops->save_rules(store.self, "def", "max_shipments: 2\n", "'; DROP TABLE x",
                                       err, sizeof err),
                 OMO_IO_OK, "%s", err);
    cr_assert_eq(sql_int("SELECT count(*) FROM rules_versions"), 2);
    cr_assert_eq(sql_int("SELECT count(*) FROM rules_versions WHERE went_live <= now()"), 2);
    /* Each going-live is an activation of its own: the audit trail. */
    cr_assert_eq(sql_int("SELECT count(*) FROM rules_activations"), 4);
    cr_assert_eq(sql_int("SELECT count(*) FROM rules_activations WHERE hash = 'abc'"), 3);
}

/* ---- a commit cut off in flight ---- */

typedef struct commit_job {
    const omo_batch *batch;
    omo_io io;
    char err[512];
} commit_job;

static void *commit_thread(void *arg)
{
    commit_job *job = arg;
    job->io = store.ops->commit(store.self, job->batch, job->err, sizeof job->err);
    return NULL;
}

static PGresult *must_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType s = PQresultStatus(res);
    cr_assert(s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(conn));
    return res;
}

/* Commits b while another session holds the events table, so that the commit waits inside
 * the server, and cuts the commit's connection there: the commit must say OMO_IO_RETRY. */
static void cut_commit_in_flight(const omo_batch *b)
{
    PGconn *locker = PQconnectdb(omo_pg_local_dsn(pg));
    cr_assert_eq(PQstatus(locker), CONNECTION_OK);
    PQclear(must_exec(locker, "BEGIN"));
    PQclear(must_exec(locker, "LOCK TABLE applied_events IN ACCESS EXCLUSIVE MODE"));
    commit_job job = {.batch = b};
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, commit_thread, &job), 0);
    int cut = 0;
    for (int i = 0; i < 500 && cut == 0; i++) {
        PGresult *res = must_exec(locker, "SELECT count(pg_terminate_backend(pid)) FROM "
                                          "pg_stat_activity WHERE application_name = 'omo' "
                                          "AND wait_event_type = 'Lock'");
        cut = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        if (cut == 0)
            usleep(10000);
    }
    PQclear(must_exec(locker, "ROLLBACK"));
    PQfinish(locker);
    pthread_join(thread, NULL);
    cr_assert_eq(cut, 1);
    cr_assert_eq(job.io, OMO_IO_RETRY, "%s", job.err);
}

Test(pg_store, commit_retried_after_a_cut_connection_writes_once)
{
    omo_applied_event ev = event(1, 0, 0, "a");
    omo_out_msg msg = message(1, 0, "k", "v");
    omo_batch b = {.events = &ev, .nevents = 1, .outbox = &msg, .noutbox = 1};

    cut_commit_in_flight(&b);

    /* Meanwhile another process commits that very batch (as if the first had reached the
     * database): the retry must see it and write nothing. */
    omo_store other;
    cr_assert_eq(omo_pg_store_open(omo_pg_local_dsn(pg), &other, err, sizeof err), OMO_IO_OK);
    cr_assert_eq(other.ops->commit(other.self, &b, err, sizeof err), OMO_IO_OK, "%s", err);
    other.ops->destroy(other.self);
    cr_assert_eq(commit(&b), OMO_IO_OK, "%s", err);
    cr_assert_eq(sql_int("SELECT count(*) FROM applied_events"), 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM outbox"), 1);

    /* Once that is settled, the same batch again is an error as always. */
    cr_assert_eq(commit(&b), OMO_IO_FATAL);
    cr_assert_neq(strstr(err, "view is stale"), NULL, "%s", err);
}

Test(pg_store, commit_retried_after_a_cut_connection_that_did_not_commit)
{
    omo_applied_event ev = event(1, 0, 0, "a");
    omo_batch b = {.events = &ev, .nevents = 1};
    cut_commit_in_flight(&b);
    cr_assert_eq(sql_int("SELECT count(*) FROM applied_events"), 0);
    cr_assert_eq(commit(&b), OMO_IO_OK, "%s", err);
    cr_assert_eq(sql_int("SELECT count(*) FROM applied_events"), 1);
}

/* ---- several processes ---- */

typedef struct id_list {
    int32_t v[8];
    int n;
} id_list;

static void on_gone(void *ctx, int32_t id)
{
    id_list *l = ctx;
    if (l->n < 8)
        l->v[l->n++] = id;
}

static omo_store open_other(int32_t *id)
{
    omo_store other;
    cr_assert_eq(omo_pg_store_open(omo_pg_local_dsn(pg), &other, err, sizeof err), OMO_IO_OK, "%s",
                 err);
    cr_assert_eq(other.ops->register_instance(other.self, id, err, sizeof err), OMO_IO_OK, "%s",
                 err);
    return other;
}

static int pending_count(int32_t instance)
{
    collected c = {0};
    cr_assert_eq(store.ops->pending(store.self, instance, on_msg, &c, err, sizeof err), OMO_IO_OK,
                 "%s", err);
    int n = c.n;
    collected_free(&c);
    return n;
}

Test(pg_store, one_lease_at_a_time)
{
    cr_assert_eq(store.ops->lease(store.self, true, err, sizeof err), OMO_IO_OK, "%s", err);
    /* Another session cannot have it now... */
    cr_assert_eq(sql_int("SELECT pg_try_advisory_lock(x'6f6d6f2e6c656173'::bigint)::int"), 0);
    cr_assert_eq(store.ops->lease(store.self, false, err, sizeof err), OMO_IO_OK, "%s", err);
    /* ...and can once it is given back. */
    cr_assert_eq(sql_int("SELECT pg_try_advisory_lock(x'6f6d6f2e6c656173'::bigint)::int"), 1);
}

Test(pg_store, a_gone_instance_is_adopted)
{
    /* What was written before instances existed belongs to instance 0, never alive. */
    id_list gone = {0};
    int alive = -1;
    cr_assert_eq(
        store.ops->gone_instances(store.self, 60000, &alive, on_gone, &gone, err, sizeof err),
        OMO_IO_OK, "%s", err);
    cr_assert_eq(gone.n, 1);
    cr_assert_eq(gone.v[0], 0);
    cr_assert_eq(alive, 0);
    cr_assert_eq(store.ops->adopt(store.self, 0, NULL, 0, err, sizeof err), OMO_IO_OK, "%s", err);

    /* Another process commits three messages and dies before any is confirmed. */
    int32_t id2 = 0;
    omo_store other = open_other(&id2);
    cr_assert_neq(id2, me);
    omo_out_msg msgs[3] = {message(1, 0, "a", "1"), message(2, 1, "b", "2"),
                           message(3, 0, "c", "3")};
    omo_batch b = {.outbox = msgs, .noutbox = 3};
    cr_assert_eq(other.ops->commit(other.self, &b, err, sizeof err), OMO_IO_OK, "%s", err);
    gone.n = 0;
    cr_assert_eq(
        store.ops->gone_instances(store.self, 60000, &alive, on_gone, &gone, err, sizeof err),
        OMO_IO_OK, "%s", err);
    cr_assert_eq(gone.n, 0, "an instance whose session lives is not gone");
    cr_assert_eq(alive, 1);
    cr_assert_eq(pending_count(id2), 3);
    cr_assert_eq(pending_count(me), 0);
    other.ops->destroy(other.self);

    /* Its session ended and its heartbeat is old: it is gone (its process, this one, runs on).
     * One of its messages was found on its topic. */
    for (int i = 0; i < 100 && gone.n == 0; i++) {
        cr_assert_eq(
            store.ops->gone_instances(store.self, 200, &alive, on_gone, &gone, err, sizeof err),
            OMO_IO_OK, "%s", err);
        if (gone.n == 0)
            usleep(20000);
    }
    cr_assert_eq(gone.n, 1);
    cr_assert_eq(gone.v[0], id2);
    cr_assert_eq(alive, 0);
    int64_t next = -1;
    cr_assert_eq(
        store.ops->confirmed_end(store.self, id2, OMO_TOPIC_ALLOCATIONS, 0, &next, err, sizeof err),
        OMO_IO_OK);
    cr_assert_eq(next, 0);
    omo_batch mine = {.unconfirmed_from = 10}; /* everything of this instance is confirmed */
    cr_assert_eq(commit(&mine), OMO_IO_OK, "%s", err);
    omo_delivery found = {2, OMO_TOPIC_ALLOCATIONS, 1, 17};
    cr_assert_eq(store.ops->adopt(store.self, id2, &found, 1, err, sizeof err), OMO_IO_OK, "%s",
                 err);
    cr_assert_eq(pending_count(id2), 0);
    cr_assert_eq(pending_count(me), 2, "the messages not found are this instance's to send");
    cr_assert_eq(sql_int("SELECT \"offset\" FROM deliveries WHERE seq = 2"), 17);
    cr_assert_eq(sql_int("SELECT unconfirmed_from FROM instances"), 1,
                 "the taken over are looked at");
    cr_assert_eq(sql_int("SELECT count(*) FROM instances"), 1);
    gone.n = 0;
    cr_assert_eq(
        store.ops->gone_instances(store.self, 60000, &alive, on_gone, &gone, err, sizeof err),
        OMO_IO_OK, "%s", err);
    cr_assert_eq(gone.n, 0);
}

Test(pg_store, an_instance_adopted_while_cut_off_must_stop)
{
    int32_t id2 = 0;
    omo_store other = open_other(&id2);
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' "
             "AND objsubid = 2 AND classid = 7302511 AND objid = %d",
             (int)id2);
    cr_assert_eq(sql_int(q), 1);
    id_list gone = {0};
    int alive = -1;
    for (int i = 0; i < 100 && gone.n < 2; i++) {
        gone.n = 0;
        cr_assert_eq(
            store.ops->gone_instances(store.self, 200, &alive, on_gone, &gone, err, sizeof err),
            OMO_IO_OK, "%s", err);
        if (gone.n < 2)
            usleep(20000);
    }
    cr_assert_eq(gone.n, 2); /* instance 0 and the one cut off */
    for (int i = 0; i < gone.n; i++)
        cr_assert_eq(store.ops->adopt(store.self, gone.v[i], NULL, 0, err, sizeof err), OMO_IO_OK,
                     "%s", err);
    /* Back in touch, it learns it was taken for gone, and every call fails for good. */
    omo_io io = OMO_IO_RETRY;
    for (int i = 0; i < 3 && io == OMO_IO_RETRY; i++) /* the first call finds the cut */
        io = other.ops->heartbeat(other.self, err, sizeof err);
    cr_assert_eq(io, OMO_IO_FATAL, "%s", err);
    cr_assert_neq(strstr(err, "must stop"), NULL, "%s", err);
    omo_applied_event ev = event(1, 0, 0, "a");
    omo_batch b = {.events = &ev, .nevents = 1};
    cr_assert_eq(other.ops->commit(other.self, &b, err, sizeof err), OMO_IO_FATAL);
    other.ops->destroy(other.self);
    cr_assert_eq(sql_int("SELECT count(*) FROM applied_events"), 0);
    cr_assert_eq(store.ops->heartbeat(store.self, err, sizeof err), OMO_IO_OK, "%s", err);
}

Test(pg_store, a_silent_instance_is_claimed_and_its_session_ended)
{
    /* Instance 0 is gone from the start. */
    id_list gone = {0};
    int alive = -1;
    cr_assert_eq(
        store.ops->gone_instances(store.self, 60000, &alive, on_gone, &gone, err, sizeof err),
        OMO_IO_OK, "%s", err);
    cr_assert_eq(store.ops->adopt(store.self, 0, NULL, 0, err, sizeof err), OMO_IO_OK, "%s", err);

    /* Another instance holds the apply lease; its session lives on. While it beats, its
     * heartbeats are younger than the bound and it is alive. */
    int32_t id2 = 0;
    omo_store other = open_other(&id2);
    char q[256]; /* sessions holding its lock */
    snprintf(q, sizeof q,
             "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND "
             "classid = 7302511 AND objid = %d AND granted",
             (int)id2);
    cr_assert_eq(other.ops->lease(other.self, true, err, sizeof err), OMO_IO_OK, "%s", err);
    cr_assert_eq(store.ops->lease(store.self, true, err, sizeof err), OMO_IO_RETRY,
                 "the lease is held: taking it gives up after a while");
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(other.ops->beat(other.self, 1000, err, sizeof err), OMO_IO_OK, "%s", err);
        gone.n = 0;
        cr_assert_eq(
            store.ops->gone_instances(store.self, 400, &alive, on_gone, &gone, err, sizeof err),
            OMO_IO_OK, "%s", err);
        cr_assert_eq(gone.n, 0, "an instance that beats is not gone");
        cr_assert_eq(alive, 1);
        cr_assert_eq(store.ops->end_stale(store.self, 400, err, sizeof err), OMO_IO_OK, "%s", err);
        cr_assert_eq(sql_int(q), 1, "the session of an instance that beats lives on");
        usleep(150000);
    }

    /* Then it falls silent (cut off: its session stays open): once its last heartbeat is older
     * than the bound its session is ended, which frees the lease, and it is claimed. */
    usleep(500000);
    cr_assert_eq(store.ops->end_stale(store.self, 400, err, sizeof err), OMO_IO_OK, "%s", err);
    for (int i = 0; i < 100 && sql_int(q) > 0; i++)
        usleep(20000);
    cr_assert_eq(sql_int(q), 0, "the session of a silent instance is ended");
    cr_assert_eq(store.ops->lease(store.self, true, err, sizeof err), OMO_IO_OK, "%s", err);
    gone.n = 0;
    cr_assert_eq(
        store.ops->gone_instances(store.self, 400, &alive, on_gone, &gone, err, sizeof err),
        OMO_IO_OK, "%s", err);
    cr_assert_eq(gone.n, 1);
    cr_assert_eq(gone.v[0], id2);
    cr_assert_eq(alive, 0);
    cr_assert_eq(sql_int("SELECT count(*) FROM instances WHERE adopted_by IS NOT NULL"), 1);
    /* Claimed, it can never say it is alive again, on any connection. */
    cr_assert_eq(other.ops->beat(other.self, 1000, err, sizeof err), OMO_IO_FATAL, "%s", err);
    cr_assert_neq(strstr(err, "must stop"), NULL, "%s", err);
    omo_io io = OMO_IO_RETRY;
    for (int i = 0; i < 3 && io == OMO_IO_RETRY; i++) /* the first call finds its session ended */
        io = other.ops->heartbeat(other.self, err, sizeof err);
    cr_assert_eq(io, OMO_IO_FATAL, "%s", err);
    cr_assert_eq(store.ops->adopt(store.self, id2, NULL, 0, err, sizeof err), OMO_IO_OK, "%s", err);
    cr_assert_eq(sql_int("SELECT count(*) FROM instances"), 1);
    cr_assert_eq(store.ops->lease(store.self, false, err, sizeof err), OMO_IO_OK, "%s", err);
    other.ops->destroy(other.self);
}
