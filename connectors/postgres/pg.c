/* The state store on PostgreSQL.
 *
 * A batch is one pipeline: up to six set-based statements, each taking its rows as binary
 * arrays (no escaping, no parsing of numbers on either side) and unnesting them, then one
 * Sync. Between two Syncs the statements form one implicit transaction, so a batch costs a
 * single round trip and commits whole or not at all. Reads that may be long (replay, the
 * outbox) go through a cursor in a read-only snapshot, FETCH_ROWS at a time. */
#include "pg.h"

#include "strbuf.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Generated from sql/ at build time, in name order, ending with {NULL, NULL}. */
extern const struct omo_migration {
    const char *name;
    const char *sql;
} omo_migrations[];

#define FETCH_ROWS        10000
#define FETCH_SQL         "FETCH FORWARD 10000 FROM omo_cursor" /* FETCH_ROWS */
#define CONNECT_TIMEOUT_S "10"
#define READY_TIMEOUT_MS  2000
#define MIGRATE_LOCK_KEY  0x6f6d6f2e6d696772LL /* "omo.migr" */
/* Several processes share the database. Each instance holds the lock (INSTANCE_LOCK_CLASS, id)
 * for its session's life; the apply lease is held by one instance at a time while it applies
 * events (see orchestrator/stream.c). */
#define INSTANCE_LOCK_CLASS 7302511              /* "omo" */
#define LEASE_LOCK_KEY      0x6f6d6f2e6c656173LL /* "omo.leas" */
/* Waiting for a lock held by another session gives up after this long (lease, adoption). */
#define LOCK_WAIT_MS "1000"
/* A claimed instance's session was told to end: its lock is free within this long. */
#define CLAIM_WAIT_MS "10000"
/* Heartbeats on a connection of their own: connecting may take this long. */
#define BEAT_CONNECT_S "2"

/* Type OIDs of pg_type.dat, stable across versions. */
enum {
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_BYTEA_ARRAY = 1001,
    OID_INT2_ARRAY = 1005,
    OID_INT4_ARRAY = 1007,
    OID_TEXT_ARRAY = 1009,
    OID_INT8_ARRAY = 1016,
};

/* A one-dimensional array in PostgreSQL's binary format (array_recv), built in place. */
typedef struct pg_array {
    char *buf;
    size_t len, cap;
    int32_t count;
    bool nulls;
    uint32_t elem_oid;
} pg_array;

enum { MAX_PARAMS = 6 };

typedef struct pg_stmt {
    const char *sql;
    int nparams;
    uint32_t elem_oids[MAX_PARAMS];
    bool instance; /* one more parameter, after the arrays: this instance's id */
} pg_stmt;

typedef struct pg_store {
    char *dsn;
    PGconn *conn;
    /* A commit lost its connection after the whole batch was sent: it may have committed. */
    bool unsure;
    bool registered; /* instance is ours: its lock is taken again on every new connection */
    int32_t instance;
    bool lease;        /* this session holds the apply lease */
    bool adopted;      /* another instance took this one for gone and adopted its messages */
    PGconn *beat_conn; /* heartbeats only, from the one thread that sends them */
    pg_array arrays[MAX_PARAMS];
    char *scratch; /* headers of the outbox row being handed out */
    size_t scratch_cap;
    pthread_mutex_t ready_lock;
    PGconn *ready_conn;
} pg_store;

/* ---- errors ---- */

/* Copies msg into err as one line: libpq's messages carry newlines and tabs. */
static void set_err(char *err, size_t errlen, const char *what, const char *msg)
{
    if (!err || errlen == 0)
        return;
    int n = snprintf(err, errlen, "postgres: %s: ", what);
    size_t at = n < 0 ? 0 : (size_t)n < errlen ? (size_t)n : errlen - 1;
    bool space = true;
    for (const char *p = msg ? msg : "unknown error"; *p && at + 1 < errlen; p++) {
        if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
            if (!space)
                err[at++] = ' ';
            space = true;
        } else {
            err[at++] = *p;
            space = false;
        }
    }
    while (at > 0 && err[at - 1] == ' ')
        at--;
    err[at] = '\0';
}

/* The server's message, with its detail when there is one. */
static void set_result_err(char *err, size_t errlen, const char *what, PGconn *conn,
                           const PGresult *res)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!primary) {
        const char *msg = res ? PQresultErrorMessage(res) : "";
        set_err(err, errlen, what, *msg ? msg : PQerrorMessage(conn));
        return;
    }
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s%s%s", primary, detail ? " (" : "", detail ? detail : "",
             detail ? ")" : "");
    set_err(err, errlen, what, buf);
}

/* Whether trying again later can help: a lost connection, a server going down or starting
 * up, a serialization failure or deadlock, exhausted resources. Anything else is a mistake in
 * a statement or in the data, and repeating it would fail the same way. */
static omo_io classify(PGconn *conn, const PGresult *res)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return OMO_IO_RETRY;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state || strlen(state) != 5)
        return OMO_IO_RETRY; /* libpq's own trouble; the connection is dropped */
    static const char *const retry_classes[] = {"08", "53", "57", "58"};
    for (size_t i = 0; i < sizeof retry_classes / sizeof *retry_classes; i++)
        if (strncmp(state, retry_classes[i], 2) == 0)
            return OMO_IO_RETRY;
    static const char *const retry_states[] = {"40001", "40P01", "40003", "55P03"};
    for (size_t i = 0; i < sizeof retry_states / sizeof *retry_states; i++)
        if (strcmp(state, retry_states[i]) == 0)
            return OMO_IO_RETRY;
    return OMO_IO_FATAL;
}

/* ---- connections ---- */

static void quiet_notices(void *arg, const char *message)
{
    (void)arg, (void)message;
}

/* Connects with our defaults; whatever dsn says wins over them. */
static PGconn *connect_dsn(const char *dsn, const char *timeout_s)
{
    const char *keys[] = {
        "connect_timeout",     "application_name", "client_encoding", "keepalives_idle",
        "keepalives_interval", "keepalives_count", "dbname",          NULL};
    const char *vals[] = {timeout_s, "omo", "UTF8", "10", "5", "3", dsn, NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn)
        PQsetNoticeProcessor(conn, quiet_notices, NULL);
    return conn;
}

static void drop_conn(pg_store *st)
{
    PQfinish(st->conn);
    st->conn = NULL;
}

static omo_io rejoin(pg_store *st, char *err, size_t errlen);

/* Makes st->conn a live connection, idle outside any transaction, reconnecting when the last
 * call lost it. */
static omo_io ensure_conn(pg_store *st, char *err, size_t errlen)
{
    if (st->adopted) {
        set_err(err, errlen, "instance",
                "another omo process took this one for gone while it was cut off from the "
                "database and adopted its messages: it must stop");
        return OMO_IO_FATAL;
    }
    if (st->conn && PQstatus(st->conn) == CONNECTION_OK &&
        PQtransactionStatus(st->conn) == PQTRANS_IDLE &&
        PQpipelineStatus(st->conn) == PQ_PIPELINE_OFF)
        return OMO_IO_OK;
    drop_conn(st);
    st->conn = connect_dsn(st->dsn, CONNECT_TIMEOUT_S);
    if (!st->conn) {
        set_err(err, errlen, "connect", "out of memory");
        return OMO_IO_RETRY;
    }
    if (PQstatus(st->conn) != CONNECTION_OK) {
        set_err(err, errlen, "connect", PQerrorMessage(st->conn));
        drop_conn(st);
        return OMO_IO_RETRY;
    }
    st->lease = false; /* a session's locks end with it */
    if (st->registered) {
        omo_io io = rejoin(st, err, errlen);
        if (io != OMO_IO_OK) {
            drop_conn(st);
            return io;
        }
    }
    return OMO_IO_OK;
}

/* Turns a failed result into a status and err, and forgets a connection that cannot go on. */
static omo_io fail_result(pg_store *st, const char *what, PGresult *res, char *err, size_t errlen)
{
    set_result_err(err, errlen, what, st->conn, res);
    omo_io io = classify(st->conn, res);
    if (io == OMO_IO_RETRY && st->conn &&
        (PQstatus(st->conn) != CONNECTION_OK || !res || !PQresultErrorField(res, PG_DIAG_SQLSTATE)))
        drop_conn(st);
    return io;
}

/* Runs one statement and checks its status; *out (may be NULL) receives the result. Params
 * are binary when lens is given, text otherwise. */
static omo_io run(pg_store *st, const char *what, const char *sql, int nparams, const Oid *types,
                  const char *const *vals, const int *lens, int result_binary, PGresult **out,
                  char *err, size_t errlen)
{
    int formats[MAX_PARAMS];
    for (int i = 0; i < nparams && i < MAX_PARAMS; i++)
        formats[i] = lens ? 1 : 0;
    PGresult *res = PQexecParams(st->conn, sql, nparams, types, vals, lens,
                                 nparams > 0 ? formats : NULL, result_binary);
    ExecStatusType status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        omo_io io = fail_result(st, what, res, err, errlen);
        PQclear(res);
        return io;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return OMO_IO_OK;
}

/* Leaves a transaction that a failed call may have left open. */
static void rollback(pg_store *st)
{
    if (st->conn && PQstatus(st->conn) == CONNECTION_OK &&
        PQtransactionStatus(st->conn) != PQTRANS_IDLE)
        PQclear(PQexec(st->conn, "ROLLBACK"));
}

/* Runs sql with integer parameters, sent as text; results come in binary. */
static omo_io run_ints(pg_store *st, const char *what, const char *sql, int n, const int64_t *ints,
                       PGresult **out, char *err, size_t errlen)
{
    char bufs[MAX_PARAMS][24];
    const char *vals[MAX_PARAMS];
    for (int i = 0; i < n && i < MAX_PARAMS; i++) {
        snprintf(bufs[i], sizeof bufs[i], "%lld", (long long)ints[i]);
        vals[i] = bufs[i];
    }
    return run(st, what, sql, n, NULL, vals, NULL, 1, out, err, errlen);
}

/* ---- binary values ---- */

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24), p[1] = (char)(v >> 16), p[2] = (char)(v >> 8), p[3] = (char)v;
}

static uint64_t get_be(const char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | (unsigned char)p[i];
    return v;
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
    return PQgetlength(res, row, col) == 8 ? (int64_t)get_be(PQgetvalue(res, row, col), 8) : 0;
}

static int32_t col_i32(const PGresult *res, int row, int col)
{
    return PQgetlength(res, row, col) == 4 ? (int32_t)get_be(PQgetvalue(res, row, col), 4) : 0;
}

static int16_t col_i16(const PGresult *res, int row, int col)
{
    return PQgetlength(res, row, col) == 2 ? (int16_t)get_be(PQgetvalue(res, row, col), 2) : 0;
}

/* Header: ndim, flags (has nulls), element type, then length and lower bound of the one
 * dimension. */
#define ARRAY_HEADER 20

static void array_reset(pg_array *a, uint32_t elem_oid)
{
    omo_grow((void **)&a->buf, &a->cap, 4096, 1);
    a->len = ARRAY_HEADER;
    a->count = 0;
    a->nulls = false;
    a->elem_oid = elem_oid;
}

static char *array_reserve(pg_array *a, size_t n)
{
    omo_grow((void **)&a->buf, &a->cap, a->len + n, 1);
    char *p = a->buf + a->len;
    a->len += n;
    return p;
}

static void array_put(pg_array *a, const void *data, size_t len)
{
    char *p = array_reserve(a, 4 + len);
    put_be32(p, (uint32_t)len);
    if (len)
        memcpy(p + 4, data, len);
    a->count++;
}

static void array_null(pg_array *a)
{
    put_be32(array_reserve(a, 4), UINT32_MAX); /* length -1 */
    a->nulls = true;
    a->count++;
}

static void array_i64(pg_array *a, int64_t v)
{
    char *p = array_reserve(a, 12);
    put_be32(p, 8);
    put_be32(p + 4, (uint32_t)((uint64_t)v >> 32));
    put_be32(p + 8, (uint32_t)v);
    a->count++;
}

static void array_i32(pg_array *a, int32_t v)
{
    char *p = array_reserve(a, 8);
    put_be32(p, 4);
    put_be32(p + 4, (uint32_t)v);
    a->count++;
}

static void array_i16(pg_array *a, int16_t v)
{
    char *p = array_reserve(a, 6);
    put_be32(p, 2);
    p[4] = (char)((uint16_t)v >> 8), p[5] = (char)v;
    a->count++;
}

static void array_str(pg_array *a, const char *s)
{
    array_put(a, s ? s : "", s ? strlen(s) : 0);
}

static void array_bytes_or_null(pg_array *a, const char *data, size_t len)
{
    if (data)
        array_put(a, data, len);
    else
        array_null(a);
}

static void append_quoted(pg_array *a, const char *s)
{
    size_t n = 2;
    for (const char *p = s; *p; p++)
        n += (*p == '"' || *p == '\\') ? 2 : 1;
    char *out = array_reserve(a, n);
    *out++ = '"';
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            *out++ = '\\';
        *out++ = *p;
    }
    *out = '"';
}

/* One outbox row's headers as the text of a text[] literal, {"name","value",...}: every
 * element quoted, so only quote and backslash need escaping. The statement casts it. */
static void array_headers(pg_array *a, const omo_out_msg *msg)
{
    size_t start = a->len;
    array_reserve(a, 4);
    *array_reserve(a, 1) = '{';
    for (int i = 0; i < msg->nheaders && i < OMO_MAX_HEADERS; i++) {
        if (i > 0)
            *array_reserve(a, 1) = ',';
        append_quoted(a, msg->headers[i].name ? msg->headers[i].name : "");
        *array_reserve(a, 1) = ',';
        append_quoted(a, msg->headers[i].value ? msg->headers[i].value : "");
    }
    *array_reserve(a, 1) = '}';
    put_be32(a->buf + start, (uint32_t)(a->len - start - 4));
    a->count++;
}

static void array_finish(pg_array *a)
{
    put_be32(a->buf, 1);
    put_be32(a->buf + 4, a->nulls ? 1 : 0);
    put_be32(a->buf + 8, a->elem_oid);
    put_be32(a->buf + 12, (uint32_t)a->count);
    put_be32(a->buf + 16, 1);
}

static Oid array_type(uint32_t elem_oid)
{
    switch (elem_oid) {
    case OID_INT8:
        return OID_INT8_ARRAY;
    case OID_INT4:
        return OID_INT4_ARRAY;
    case OID_INT2:
        return OID_INT2_ARRAY;
    case OID_BYTEA:
        return OID_BYTEA_ARRAY;
    default:
        return OID_TEXT_ARRAY;
    }
}

/* ---- commit ---- */

static const pg_stmt STMT_EVENTS = {
    "INSERT INTO applied_events (seq, topic, partition, \"offset\", value, rules_version) "
    "SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::integer[], $4::bigint[], "
    "$5::bytea[], $6::text[])",
    6,
    {OID_INT8, OID_INT2, OID_INT4, OID_INT8, OID_BYTEA, OID_TEXT},
    false};

static const pg_stmt STMT_OUTBOX = {
    "INSERT INTO outbox (seq, topic, partition, key, value, headers, instance) "
    "SELECT s, t, p, k, v, h::text[], $7 FROM unnest($1::bigint[], $2::smallint[], "
    "$3::integer[], $4::bytea[], $5::bytea[], $6::text[]) AS u(s, t, p, k, v, h)",
    6,
    {OID_INT8, OID_INT2, OID_INT4, OID_BYTEA, OID_BYTEA, OID_TEXT},
    true};

/* DISTINCT ON keeps the last row for a key: an upsert may not touch a row twice. */
static const pg_stmt STMT_POSITIONS = {
    "INSERT INTO input_positions (topic, partition, next_offset) "
    "SELECT DISTINCT ON (t, p) t, p, o FROM unnest($1::smallint[], $2::integer[], $3::bigint[]) "
    "WITH ORDINALITY AS u(t, p, o, i) ORDER BY t, p, i DESC "
    "ON CONFLICT (topic, partition) DO UPDATE "
    "SET next_offset = EXCLUDED.next_offset, updated_at = now()",
    3,
    {OID_INT2, OID_INT4, OID_INT8},
    false};

/* Rows there are updated, the others inserted: cheaper than an upsert, which locks each row
 * first (a WAL record of its own). Only the lease holder writes stock, so nothing comes
 * between the two. */
static const pg_stmt STMT_STOCK = {
    "WITH u AS (SELECT DISTINCT ON (n, k) n, k, h, r, NULLIF(b, '') AS b FROM "
    "unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) "
    "WITH ORDINALITY AS u(n, k, h, r, b, i) ORDER BY n, k, i DESC), "
    "changed AS (UPDATE stock s SET on_hand = u.h, reserved = u.r, bin = u.b, updated_at = now() "
    "FROM u WHERE s.node_id = u.n AND s.sku = u.k RETURNING s.node_id, s.sku) "
    "INSERT INTO stock (node_id, sku, on_hand, reserved, bin) SELECT n, k, h, r, b FROM u "
    "WHERE NOT EXISTS (SELECT 1 FROM changed c WHERE c.node_id = u.n AND c.sku = u.k)",
    5,
    {OID_TEXT, OID_TEXT, OID_INT8, OID_INT8, OID_TEXT},
    false};

/* Each confirmed message gets its narrow row (a batch run again marks nothing twice: checked
 * first, not by an insert that may conflict, which costs WAL for every row); each partition's
 * end moves for this instance, which sent them. */
static const pg_stmt STMT_DELIVERED = {
    "WITH u AS (SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::integer[], $4::bigint[]) "
    "AS u(s, t, p, f)), "
    "d AS (INSERT INTO deliveries (seq, \"offset\") SELECT s, f FROM u "
    "WHERE NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.seq = u.s)) "
    "INSERT INTO output_positions (instance, topic, partition, confirmed_end) "
    "SELECT $5, t, p, max(f) + 1 FROM u GROUP BY t, p "
    "ON CONFLICT (instance, topic, partition) DO UPDATE SET confirmed_end = "
    "GREATEST(output_positions.confirmed_end, EXCLUDED.confirmed_end), updated_at = now()",
    4,
    {OID_INT8, OID_INT2, OID_INT4, OID_INT8},
    true};

/* Where this instance's unconfirmed messages begin; saying so says it is alive, too. */
static const char *const SQL_UNCONFIRMED_FROM =
    "UPDATE instances SET unconfirmed_from = $1::bigint, seen_at = now() WHERE id = $2::integer";

static void stmt_begin(pg_store *st, const pg_stmt *stmt)
{
    for (int i = 0; i < stmt->nparams; i++)
        array_reset(&st->arrays[i], stmt->elem_oids[i]);
}

/* Queues stmt with the arrays built for it. */
static bool stmt_send(pg_store *st, const pg_stmt *stmt)
{
    Oid types[MAX_PARAMS + 1];
    const char *vals[MAX_PARAMS + 1];
    int lens[MAX_PARAMS + 1], formats[MAX_PARAMS + 1];
    for (int i = 0; i < stmt->nparams; i++) {
        pg_array *a = &st->arrays[i];
        array_finish(a);
        types[i] = array_type(a->elem_oid);
        vals[i] = a->buf;
        lens[i] = (int)a->len;
        formats[i] = 1;
    }
    int n = stmt->nparams;
    char instance_be[4];
    if (stmt->instance) {
        put_be32(instance_be, (uint32_t)st->instance);
        types[n] = OID_INT4;
        vals[n] = instance_be;
        lens[n] = 4;
        formats[n++] = 1;
    }
    return PQsendQueryParams(st->conn, stmt->sql, n, types, vals, lens, formats, 0) == 1;
}

static int send_batch(pg_store *st, const omo_batch *b)
{
    pg_array *a = st->arrays;
    int sent = 0;
    if (b->nevents > 0) {
        stmt_begin(st, &STMT_EVENTS);
        for (size_t i = 0; i < b->nevents; i++) {
            const omo_applied_event *ev = &b->events[i];
            array_i64(&a[0], ev->seq);
            array_i16(&a[1], (int16_t)ev->topic);
            array_i32(&a[2], ev->partition);
            array_i64(&a[3], ev->offset);
            array_bytes_or_null(&a[4], ev->value, ev->value_len);
            if (ev->rules_version)
                array_str(&a[5], ev->rules_version);
            else
                array_null(&a[5]);
        }
        if (!stmt_send(st, &STMT_EVENTS))
            return -1;
        sent++;
    }
    if (b->noutbox > 0) {
        stmt_begin(st, &STMT_OUTBOX);
        for (size_t i = 0; i < b->noutbox; i++) {
            const omo_out_msg *msg = &b->outbox[i];
            array_i64(&a[0], msg->seq);
            array_i16(&a[1], (int16_t)msg->topic);
            array_i32(&a[2], msg->partition);
            array_bytes_or_null(&a[3], msg->key, msg->key_len);
            array_bytes_or_null(&a[4], msg->value, msg->value_len);
            array_headers(&a[5], msg);
        }
        if (!stmt_send(st, &STMT_OUTBOX))
            return -1;
        sent++;
    }
    if (b->npositions > 0) {
        stmt_begin(st, &STMT_POSITIONS);
        for (size_t i = 0; i < b->npositions; i++) {
            array_i16(&a[0], (int16_t)b->positions[i].topic);
            array_i32(&a[1], b->positions[i].partition);
            array_i64(&a[2], b->positions[i].next_offset);
        }
        if (!stmt_send(st, &STMT_POSITIONS))
            return -1;
        sent++;
    }
    if (b->nstock > 0) {
        stmt_begin(st, &STMT_STOCK);
        for (size_t i = 0; i < b->nstock; i++) {
            const omo_stock_row *s = &b->stock[i];
            array_str(&a[0], s->node_id);
            array_str(&a[1], s->sku);
            array_i64(&a[2], s->on_hand);
            array_i64(&a[3], s->reserved);
            array_str(&a[4], s->bin);
        }
        if (!stmt_send(st, &STMT_STOCK))
            return -1;
        sent++;
    }
    if (b->ndelivered > 0) {
        stmt_begin(st, &STMT_DELIVERED);
        for (size_t i = 0; i < b->ndelivered; i++) {
            array_i64(&a[0], b->delivered[i].seq);
            array_i16(&a[1], (int16_t)b->delivered[i].topic);
            array_i32(&a[2], b->delivered[i].partition);
            array_i64(&a[3], b->delivered[i].offset);
        }
        if (!stmt_send(st, &STMT_DELIVERED))
            return -1;
        sent++;
    }
    if (b->unconfirmed_from > 0 && st->registered) {
        char from[24], id[24];
        snprintf(from, sizeof from, "%lld", (long long)b->unconfirmed_from);
        snprintf(id, sizeof id, "%d", (int)st->instance);
        const char *vals[2] = {from, id};
        if (PQsendQueryParams(st->conn, SQL_UNCONFIRMED_FROM, 2, NULL, vals, NULL, NULL, 0) != 1)
            return -1;
        sent++;
    }
    return sent;
}

/* After a commit whose outcome is unknown: whether this batch is the one that did commit.
 * Its rows commit together, so one of them tells. A batch of upserts and delivery marks only
 * is simply run again: doing so twice is harmless. */
static omo_io batch_committed(pg_store *st, const omo_batch *b, bool *done, char *err,
                              size_t errlen)
{
    *done = false;
    const char *sql;
    const char *vals[3];
    int lens[3] = {0, 0, 0};
    Oid types[3] = {OID_INT8, OID_INT4, OID_INT8};
    char seq_be[8], second_be[4], off_be[8];
    int nparams = 1;
    if (b->nevents > 0 || b->noutbox > 0) {
        /* Another instance may have committed the same seq: the row must be this batch's. */
        const omo_applied_event *ev = b->nevents > 0 ? &b->events[b->nevents - 1] : NULL;
        int64_t seq = ev ? ev->seq : b->outbox[b->noutbox - 1].seq;
        int64_t second = ev ? ev->partition : st->instance;
        sql = ev ? "SELECT 1 FROM applied_events WHERE seq = $1 AND partition = $2 "
                   "AND \"offset\" = $3"
                 : "SELECT 1 FROM outbox WHERE seq = $1 AND instance = $2";
        put_be32(seq_be, (uint32_t)((uint64_t)seq >> 32));
        put_be32(seq_be + 4, (uint32_t)seq);
        put_be32(second_be, (uint32_t)second);
        vals[0] = seq_be, lens[0] = 8;
        vals[1] = second_be, lens[1] = 4;
        nparams = 2;
        if (ev) {
            put_be32(off_be, (uint32_t)((uint64_t)ev->offset >> 32));
            put_be32(off_be + 4, (uint32_t)ev->offset);
            vals[2] = off_be, lens[2] = 8;
            nparams = 3;
        }
    } else {
        return OMO_IO_OK;
    }
    PGresult *res = NULL;
    omo_io io = run(st, "commit", sql, nparams, types, vals, lens, 1, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    *done = PQntuples(res) > 0;
    PQclear(res);
    return OMO_IO_OK;
}

static omo_io store_commit(void *self, const omo_batch *b, char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    if (st->unsure) {
        bool done;
        io = batch_committed(st, b, &done, err, errlen);
        if (io != OMO_IO_OK)
            return io;
        st->unsure = false;
        if (done)
            return OMO_IO_OK;
    }

    /* Events are applied under the lease; a new connection holds it no more. Should another
     * instance have applied events meanwhile, their seqs are taken and the insert fails. */
    if (b->nevents > 0 && st->registered && !st->lease) {
        int64_t key = LEASE_LOCK_KEY;
        io = run_ints(st, "lease",
                      "SELECT set_config('lock_timeout', '" LOCK_WAIT_MS
                      "', true), pg_advisory_lock($1::bigint)",
                      1, &key, NULL, err, errlen);
        if (io != OMO_IO_OK)
            return io;
        st->lease = true;
    }
    if (!PQenterPipelineMode(st->conn)) {
        set_err(err, errlen, "commit", PQerrorMessage(st->conn));
        drop_conn(st);
        return OMO_IO_RETRY;
    }
    int sent = send_batch(st, b);
    if (sent < 0 || !PQpipelineSync(st->conn)) {
        /* Without its Sync the server commits nothing of it. */
        set_err(err, errlen, "commit", PQerrorMessage(st->conn));
        drop_conn(st);
        return OMO_IO_RETRY;
    }

    PGresult *failed = NULL;
    bool lost = false;
    for (int nulls = 0;;) {
        PGresult *res = PQgetResult(st->conn);
        if (!res) {
            if (PQstatus(st->conn) != CONNECTION_OK || ++nulls > 1) {
                lost = true;
                break;
            }
            continue;
        }
        nulls = 0;
        ExecStatusType status = PQresultStatus(res);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        if (status == PGRES_FATAL_ERROR && !failed)
            failed = res;
        else
            PQclear(res);
        if (PQstatus(st->conn) != CONNECTION_OK) {
            lost = true;
            break;
        }
    }
    if (lost || !PQexitPipelineMode(st->conn)) {
        if (failed)
            set_result_err(err, errlen, "commit", st->conn, failed);
        else
            set_err(err, errlen, "commit", PQerrorMessage(st->conn));
        PQclear(failed);
        st->unsure = true;
        drop_conn(st);
        return OMO_IO_RETRY;
    }
    if (failed) {
        io = fail_result(st, "commit", failed, err, errlen);
        const char *state = PQresultErrorField(failed, PG_DIAG_SQLSTATE);
        const char *constraint = PQresultErrorField(failed, PG_DIAG_CONSTRAINT_NAME);
        if (state && !strcmp(state, "23505") && constraint &&
            (!strcmp(constraint, "applied_events_pkey") || !strcmp(constraint, "outbox_pkey"))) {
            size_t n = strlen(err);
            snprintf(err + n, errlen > n ? errlen - n : 0, "%s",
                     "; another omo process applied events while this one was cut off from the "
                     "database: this process's view is stale and it must start again");
        }
        PQclear(failed);
        return io;
    }
    return OMO_IO_OK;
}

/* ---- reads ---- */

/* Where streamed rows go: one of the callbacks, with its context. */
typedef struct pg_sink {
    void *ctx;
    void (*position)(void *ctx, const omo_position *pos);
    void (*event)(void *ctx, const omo_applied_event *ev);
    void (*msg)(void *ctx, const omo_out_msg *msg);
} pg_sink;

typedef void (*row_fn)(pg_store *st, const PGresult *res, int row, const pg_sink *sink);

/* Runs query (with at most one bigint parameter) through a cursor in a read-only snapshot,
 * handing each row to row(). Rows come in binary. */
static omo_io stream(pg_store *st, const char *what, const char *query, const int64_t *param,
                     row_fn row, const pg_sink *sink, char *err, size_t errlen)
{
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    io = run(st, what, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0, NULL, NULL, NULL, 0,
             NULL, err, errlen);
    if (io != OMO_IO_OK)
        goto fail;
    char be[8];
    const char *vals[1] = {be};
    int lens[1] = {8};
    Oid types[1] = {OID_INT8};
    if (param) {
        put_be32(be, (uint32_t)((uint64_t)*param >> 32));
        put_be32(be + 4, (uint32_t)*param);
    }
    io = run(st, what, query, param ? 1 : 0, param ? types : NULL, param ? vals : NULL,
             param ? lens : NULL, 0, NULL, err, errlen);
    if (io != OMO_IO_OK)
        goto fail;
    for (;;) {
        PGresult *res = NULL;
        io = run(st, what, FETCH_SQL, 0, NULL, NULL, NULL, 1, &res, err, errlen);
        if (io != OMO_IO_OK)
            goto fail;
        int n = PQntuples(res);
        for (int i = 0; i < n; i++)
            row(st, res, i, sink);
        PQclear(res);
        if (n < FETCH_ROWS)
            break;
    }
    io = run(st, what, "COMMIT", 0, NULL, NULL, NULL, 0, NULL, err, errlen);
    if (io != OMO_IO_OK)
        goto fail;
    return OMO_IO_OK;

fail:
    rollback(st);
    return io;
}

static void position_row(pg_store *st, const PGresult *res, int row, const pg_sink *sink)
{
    (void)st;
    omo_position pos = {.topic = (omo_topic)col_i16(res, row, 0),
                        .partition = col_i32(res, row, 1),
                        .next_offset = col_i64(res, row, 2)};
    sink->position(sink->ctx, &pos);
}

static omo_io store_positions(void *self, void (*cb)(void *ctx, const omo_position *pos), void *ctx,
                              char *err, size_t errlen)
{
    return stream(self, "positions",
                  "DECLARE omo_cursor NO SCROLL CURSOR FOR SELECT topic, partition, next_offset "
                  "FROM input_positions ORDER BY topic, partition",
                  NULL, position_row, &(pg_sink){.ctx = ctx, .position = cb}, err, errlen);
}

static void event_row(pg_store *st, const PGresult *res, int row, const pg_sink *sink)
{
    (void)st;
    bool null_value = PQgetisnull(res, row, 4);
    omo_applied_event ev = {
        .seq = col_i64(res, row, 0),
        .topic = (omo_topic)col_i16(res, row, 1),
        .partition = col_i32(res, row, 2),
        .offset = col_i64(res, row, 3),
        .value = null_value ? NULL : PQgetvalue(res, row, 4),
        .value_len = null_value ? 0 : (size_t)PQgetlength(res, row, 4),
        .rules_version = PQgetisnull(res, row, 5) ? NULL : PQgetvalue(res, row, 5),
    };
    sink->event(sink->ctx, &ev);
}

static omo_io store_replay(void *self, int64_t after,
                           void (*cb)(void *ctx, const omo_applied_event *ev), void *ctx, char *err,
                           size_t errlen)
{
    return stream(self, "replay",
                  "DECLARE omo_cursor NO SCROLL CURSOR FOR SELECT seq, topic, partition, "
                  "\"offset\", value, rules_version FROM applied_events WHERE seq > $1 "
                  "ORDER BY seq",
                  &after, event_row, &(pg_sink){.ctx = ctx, .event = cb}, err, errlen);
}

/* Reads a text[] in binary form into name/value pairs, copied NUL-terminated into scratch. */
static int decode_headers(pg_store *st, const char *p, size_t len, omo_header *headers)
{
    if (len < 12 || get_be(p, 4) != 1 || len < ARRAY_HEADER)
        return 0;
    size_t n = get_be(p + 12, 4);
    omo_grow((void **)&st->scratch, &st->scratch_cap, len + n + 1, 1);
    char *out = st->scratch;
    size_t at = ARRAY_HEADER;
    int count = 0;
    const char *pending_name = NULL;
    for (size_t i = 0; i < n && at + 4 <= len; i++) {
        uint32_t elen = (uint32_t)get_be(p + at, 4);
        at += 4;
        const char *s = out;
        if (elen != UINT32_MAX && at + elen <= len) {
            memcpy(out, p + at, elen);
            out += elen;
            at += elen;
        }
        *out++ = '\0';
        if (!pending_name) {
            pending_name = s;
        } else {
            if (count < OMO_MAX_HEADERS)
                headers[count++] = (omo_header){pending_name, s};
            pending_name = NULL;
        }
    }
    return count;
}

static void outbox_row(pg_store *st, const PGresult *res, int row, const pg_sink *sink)
{
    omo_out_msg msg = {.seq = col_i64(res, row, 0),
                       .topic = (omo_topic)col_i16(res, row, 1),
                       .partition = col_i32(res, row, 2)};
    if (!PQgetisnull(res, row, 3)) {
        msg.key = PQgetvalue(res, row, 3);
        msg.key_len = (size_t)PQgetlength(res, row, 3);
    }
    if (!PQgetisnull(res, row, 4)) {
        msg.value = PQgetvalue(res, row, 4);
        msg.value_len = (size_t)PQgetlength(res, row, 4);
    }
    msg.nheaders =
        decode_headers(st, PQgetvalue(res, row, 5), (size_t)PQgetlength(res, row, 5), msg.headers);
    sink->msg(sink->ctx, &msg);
}

static omo_io store_pending(void *self, int32_t instance,
                            void (*cb)(void *ctx, const omo_out_msg *msg), void *ctx, char *err,
                            size_t errlen)
{
    int64_t id = instance;
    return stream(self, "pending",
                  "DECLARE omo_cursor NO SCROLL CURSOR FOR SELECT seq, topic, partition, key, "
                  "value, headers FROM outbox o WHERE seq >= (SELECT unconfirmed_from FROM "
                  "instances WHERE id = $1) AND instance = $1 AND NOT EXISTS (SELECT 1 FROM "
                  "deliveries d WHERE d.seq = o.seq) ORDER BY seq",
                  &id, outbox_row, &(pg_sink){.ctx = ctx, .msg = cb}, err, errlen);
}

static omo_io store_confirmed_end(void *self, int32_t instance, omo_topic topic, int32_t partition,
                                  int64_t *next, char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    int64_t ints[3] = {instance, topic, partition};
    PGresult *res = NULL;
    io = run_ints(st, "confirmed_end",
                  "SELECT COALESCE((SELECT confirmed_end FROM output_positions "
                  "WHERE instance = $1::integer AND topic = $2::smallint "
                  "AND partition = $3::integer), 0)::bigint",
                  3, ints, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    *next = col_i64(res, 0, 0);
    PQclear(res);
    return OMO_IO_OK;
}

static omo_io store_max_seqs(void *self, int64_t *applied, int64_t *outbox, char *err,
                             size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    PGresult *res = NULL;
    io = run(st, "max_seqs",
             "SELECT COALESCE((SELECT max(seq) FROM applied_events), 0), "
             "COALESCE((SELECT max(seq) FROM outbox), 0)",
             0, NULL, NULL, NULL, 1, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    *applied = col_i64(res, 0, 0);
    *outbox = col_i64(res, 0, 1);
    PQclear(res);
    return OMO_IO_OK;
}

/* ---- instances ---- */

/* Which machine and process namespace this process runs in (host name, boot id, pid
 * namespace): a process with the same node can tell whether an instance's pid still runs. Empty
 * when unknown: such an instance is never taken for dead by its pid. */
static void node_identity(char *buf, size_t len)
{
    char host[256] = "", boot[64] = "", ns[64] = "";
    gethostname(host, sizeof host - 1);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(boot, sizeof boot, f))
            boot[0] = '\0';
        fclose(f);
        boot[strcspn(boot, "\n")] = '\0';
    }
    ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
    ns[n > 0 ? n : 0] = '\0';
    if (boot[0] && ns[0])
        snprintf(buf, len, "%s/%s/%s", host, boot, ns);
    else if (len)
        buf[0] = '\0';
}

static const char *const SQL_SAY_ALIVE = "UPDATE instances SET seen_at = now() WHERE id = "
                                         "$1::integer AND adopted_by IS NULL RETURNING id";

/* Records that this instance is alive, unless another one claimed it. */
static omo_io say_alive(pg_store *st, const char *what, char *err, size_t errlen)
{
    int64_t id = st->instance;
    PGresult *res = NULL;
    omo_io io = run_ints(st, what, SQL_SAY_ALIVE, 1, &id, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    bool there = PQntuples(res) > 0;
    PQclear(res);
    if (!there) {
        st->adopted = true;
        return ensure_conn(st, err, errlen); /* says why */
    }
    return OMO_IO_OK;
}

/* Takes an instance's lock (7302511 is INSTANCE_LOCK_CLASS) unless this session holds it
 * already (locks nest: holding it twice would outlive the one unlock). With wait, waits up to
 * CLAIM_WAIT_MS (then RETRY); *got says whether this session holds it now. */
static omo_io lock_instance(pg_store *st, const char *what, int32_t id, bool wait, bool *got,
                            char *err, size_t errlen)
{
    int64_t k = id;
    PGresult *res = NULL;
    omo_io io = run_ints(
        st, what,
        wait ? "SELECT set_config('lock_timeout', '" CLAIM_WAIT_MS "', true), CASE WHEN EXISTS "
               "(SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 7302511 AND "
               "objid = $1::integer AND objsubid = 2 AND granted AND pid = pg_backend_pid()) "
               "THEN true ELSE pg_advisory_lock(7302511, $1::integer)::text = '' END"
             : "SELECT '', CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
               "AND classid = 7302511 AND objid = $1::integer AND objsubid = 2 AND granted AND "
               "pid = pg_backend_pid()) THEN true ELSE pg_try_advisory_lock(7302511, "
               "$1::integer) END",
        1, &k, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    *got = PQgetlength(res, 0, 1) == 1 && PQgetvalue(res, 0, 1)[0];
    PQclear(res);
    return OMO_IO_OK;
}

/* On a new connection: takes this instance's lock again and says it is alive, unless another
 * instance claimed it meanwhile (asked first: the claimer holds the lock while it adopts). */
static omo_io rejoin(pg_store *st, char *err, size_t errlen)
{
    bool got = false;
    omo_io io = say_alive(st, "rejoin", err, errlen);
    if (io == OMO_IO_OK)
        io = lock_instance(st, "rejoin", st->instance, true, &got, err, errlen);
    return io == OMO_IO_OK ? say_alive(st, "rejoin", err, errlen) : io;
}

static omo_io store_register(void *self, int32_t *id, char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    char host[256] = "", node[512];
    gethostname(host, sizeof host - 1);
    node_identity(node, sizeof node);
    char pid[24];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    const char *vals[3] = {host, pid, node};
    PGresult *res = NULL;
    io = run(st, "register",
             "INSERT INTO instances (host, pid, node) VALUES ($1, $2, $3) RETURNING id", 3, NULL,
             vals, NULL, 1, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    st->instance = col_i32(res, 0, 0);
    PQclear(res);
    bool got = false;
    io = lock_instance(st, "register", st->instance, true, &got, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    st->registered = true;
    *id = st->instance;
    return OMO_IO_OK;
}

/* Taking the lease waits LOCK_WAIT_MS at most: the holder may be a process cut off from the
 * database, whose session lives on until another process claims it. */
static omo_io store_lease(void *self, bool take, char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK || take == st->lease)
        return io;
    int64_t key = LEASE_LOCK_KEY;
    io = run_ints(st, "lease",
                  take ? "SELECT set_config('lock_timeout', '" LOCK_WAIT_MS
                         "', true), pg_advisory_lock($1::bigint)"
                       : "SELECT pg_advisory_unlock($1::bigint)",
                  1, &key, NULL, err, errlen);
    if (io == OMO_IO_OK)
        st->lease = take;
    return io;
}

static omo_io store_heartbeat(void *self, char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK || !st->registered)
        return io;
    return say_alive(st, "heartbeat", err, errlen);
}

/* Waits for the answer to what conn was sent, until deadline (ms on now_ms's clock). */
static bool await_result(PGconn *conn, int64_t deadline);
static int64_t now_ms(void);

/* Heartbeats on a connection of their own, sent by one thread that must never wait long. */
static omo_io store_beat(void *self, int timeout_ms, char *err, size_t errlen)
{
    pg_store *st = self;
    if (!st->registered)
        return OMO_IO_OK;
    int64_t deadline = now_ms() + timeout_ms;
    if (!st->beat_conn || PQstatus(st->beat_conn) != CONNECTION_OK) {
        PQfinish(st->beat_conn);
        st->beat_conn = connect_dsn(st->dsn, BEAT_CONNECT_S);
        if (!st->beat_conn || PQstatus(st->beat_conn) != CONNECTION_OK) {
            set_err(err, errlen, "beat", st->beat_conn ? PQerrorMessage(st->beat_conn) : "");
            PQfinish(st->beat_conn);
            st->beat_conn = NULL;
            return OMO_IO_RETRY;
        }
    }
    char id[24];
    snprintf(id, sizeof id, "%d", (int)st->instance);
    const char *vals[1] = {id};
    bool there = false, answered = false;
    if (PQsendQueryParams(st->beat_conn, SQL_SAY_ALIVE, 1, NULL, vals, NULL, NULL, 0) &&
        await_result(st->beat_conn, deadline)) {
        PGresult *res;
        while ((res = PQgetResult(st->beat_conn)) != NULL) {
            if (PQresultStatus(res) == PGRES_TUPLES_OK) {
                answered = true;
                there = PQntuples(res) > 0;
            } else {
                set_result_err(err, errlen, "beat", st->beat_conn, res);
            }
            PQclear(res);
            if (!await_result(st->beat_conn, deadline))
                break;
        }
    }
    if (!answered) {
        if (!*err)
            set_err(err, errlen, "beat", "no answer in time");
        PQfinish(st->beat_conn); /* a late answer must not be taken for the next one's */
        st->beat_conn = NULL;
        return OMO_IO_RETRY;
    }
    if (!there) {
        set_err(err, errlen, "instance",
                "another omo process took this one for gone while it was cut off from the "
                "database and adopted its messages: it must stop");
        return OMO_IO_FATAL;
    }
    return OMO_IO_OK;
}

/* Ends the sessions of unclaimed instances whose last heartbeat is older than stale_ms: cut
 * off, they may hold the apply lease. Nothing is claimed or locked: that waits for the lease. */
static omo_io store_end_stale(void *self, int64_t stale_ms, char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    int64_t p[2] = {st->registered ? st->instance : -1, stale_ms};
    return run_ints(st, "instances",
                    "SELECT count(pg_terminate_backend(l.pid)) FROM instances i JOIN pg_locks l "
                    "ON l.locktype = 'advisory' AND l.classid = 7302511 AND l.objid = i.id AND "
                    "l.objsubid = 2 AND l.granted WHERE i.id <> $1::integer AND i.adopted_by IS "
                    "NULL AND i.seen_at < now() - $2::bigint * interval '1 millisecond' AND l.pid "
                    "<> pg_backend_pid()",
                    2, p, NULL, err, errlen);
}

/* Which instances an adopter may claim: not claimed, claimed by itself, or claimed by one that
 * is itself claimed or forgotten. */
#define CLAIMABLE                                                                                  \
    "(adopted_by IS NULL OR adopted_by = $1::integer OR NOT EXISTS (SELECT 1 FROM instances c "    \
    "WHERE c.id = i.adopted_by AND c.adopted_by IS NULL))"

/* An instance is gone when its last heartbeat is older than stale_ms by the server's clock (its
 * session, if it lives on, cut off, is ended), or when its lock is free and it ran on this node
 * in a process that has ended. Each is claimed and its lock taken before cb hears of it. */
static omo_io store_gone_instances(void *self, int64_t stale_ms, int *alive,
                                   void (*cb)(void *ctx, int32_t id), void *ctx, char *err,
                                   size_t errlen)
{
    pg_store *st = self;
    *alive = 0;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    char me[24], stale[24], node[512];
    snprintf(me, sizeof me, "%d", st->registered ? (int)st->instance : -1);
    snprintf(stale, sizeof stale, "%lld", (long long)stale_ms);
    node_identity(node, sizeof node);
    const char *vals[3] = {me, stale, node};
    PGresult *res = NULL;
    io = run(st, "instances",
             "SELECT id, pid, node <> '' AND node = $3, seen_at < now() - $2::bigint * interval "
             "'1 millisecond' FROM instances i WHERE id <> $1::integer AND " CLAIMABLE
             " ORDER BY id",
             3, NULL, vals, NULL, 0, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    int n = PQntuples(res);
    int32_t *gone = omo_xcalloc((size_t)n + 1, sizeof(int32_t));
    int ngone = 0;
    for (int i = 0; i < n && io == OMO_IO_OK; i++) {
        int32_t id = atoi(PQgetvalue(res, i, 0));
        pid_t pid = (pid_t)atoi(PQgetvalue(res, i, 1));
        bool here = PQgetvalue(res, i, 2)[0] == 't', is_stale = PQgetvalue(res, i, 3)[0] == 't';
        char idv[24];
        snprintf(idv, sizeof idv, "%d", (int)id);
        const char *cv[3] = {me, idv, stale};
        PGresult *cr = NULL;
        bool got = false, claimed = false;
        if (is_stale) {
            /* Its session may live on, cut off from its process, holding its locks (the apply
             * lease among them) and maybe, mid-commit, its row: it is ended first. Then the
             * claim, which checks the staleness again in the same statement: should the
             * process have come back meanwhile, its heartbeat wins. From the claim on it can
             * never say it is alive again. */
            io = run(st, "claim",
                     "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = "
                     "'advisory' AND classid = 7302511 AND objid = $2::integer AND objsubid = 2 "
                     "AND granted AND pid <> pg_backend_pid() AND $1::integer IS NOT NULL",
                     2, NULL, cv, NULL, 0, NULL, err, errlen);
            if (io == OMO_IO_OK)
                io = run(st, "claim",
                         "UPDATE instances i SET adopted_by = $1::integer WHERE id = $2::integer "
                         "AND seen_at < now() - $3::bigint * interval '1 millisecond' "
                         "AND " CLAIMABLE " RETURNING id",
                         3, NULL, cv, NULL, 0, &cr, err, errlen);
            claimed = io == OMO_IO_OK && PQntuples(cr) > 0;
            PQclear(cr);
            if (claimed)
                io = lock_instance(st, "claim", id, true, &got, err, errlen);
        } else if (here && pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) {
            /* Its process has ended here; the lock being free says its session has too. */
            io = lock_instance(st, "instances", id, false, &got, err, errlen);
            if (io == OMO_IO_OK && got) {
                io = run(st, "claim",
                         "UPDATE instances i SET adopted_by = $1::integer WHERE id = $2::integer "
                         "AND " CLAIMABLE " AND $3::bigint IS NOT NULL RETURNING id",
                         3, NULL, cv, NULL, 0, &cr, err, errlen);
                claimed = io == OMO_IO_OK && PQntuples(cr) > 0;
                PQclear(cr);
                if (io == OMO_IO_OK && !claimed) {
                    int64_t k[2] = {INSTANCE_LOCK_CLASS, id};
                    io = run_ints(st, "instances",
                                  "SELECT pg_advisory_unlock($1::integer, $2::integer)", 2, k, NULL,
                                  err, errlen);
                    got = false;
                }
            }
        }
        if (io == OMO_IO_OK && claimed && got)
            gone[ngone++] = id;
        else if (io == OMO_IO_OK && !claimed)
            ++*alive;
    }
    PQclear(res);
    for (int i = 0; i < ngone && io == OMO_IO_OK; i++)
        cb(ctx, gone[i]);
    free(gone);
    return io;
}

static omo_io store_adopt(void *self, int32_t gone, const omo_delivery *found, size_t nfound,
                          char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    /* The found rows as two array literals: seqs and offsets. */
    omo_strbuf seqs = {0}, offsets = {0};
    omo_strbuf_putc(&seqs, '{');
    omo_strbuf_putc(&offsets, '{');
    for (size_t i = 0; i < nfound; i++) {
        omo_strbuf_printf(&seqs, "%s%lld", i ? "," : "", (long long)found[i].seq);
        omo_strbuf_printf(&offsets, "%s%lld", i ? "," : "", (long long)found[i].offset);
    }
    omo_strbuf_putc(&seqs, '}');
    omo_strbuf_putc(&offsets, '}');
    char ids[2][24];
    snprintf(ids[0], sizeof ids[0], "%d", (int)gone);
    snprintf(ids[1], sizeof ids[1], "%d", (int)st->instance);
    const char *vals[4] = {seqs.p, offsets.p, ids[0], ids[1]};
    /* One statement, so one transaction: found messages marked, the rest taken over (where
     * this instance's unconfirmed messages begin moves down to them), the gone instance
     * forgotten. */
    io = run(
        st, "adopt",
        "WITH found AS (INSERT INTO deliveries (seq, \"offset\") "
        "SELECT s, f FROM unnest($1::bigint[], $2::bigint[]) AS u(s, f) "
        "ON CONFLICT (seq) DO NOTHING), "
        "rest AS (SELECT seq FROM outbox o WHERE seq >= (SELECT unconfirmed_from FROM "
        "instances WHERE id = $3::integer) AND instance = $3::integer AND NOT EXISTS "
        "(SELECT 1 FROM deliveries d WHERE d.seq = o.seq) AND seq <> ALL($1::bigint[])), "
        "taken AS (UPDATE outbox SET instance = $4::integer WHERE seq IN (SELECT seq FROM rest)), "
        "mine AS (UPDATE instances SET unconfirmed_from = LEAST(unconfirmed_from, "
        "(SELECT min(seq) FROM rest)) WHERE id = $4::integer), "
        "ends AS (DELETE FROM output_positions WHERE instance = $3::integer) "
        "DELETE FROM instances WHERE id = $3::integer",
        4, NULL, vals, NULL, 0, NULL, err, errlen);
    free(seqs.p);
    free(offsets.p);
    if (io != OMO_IO_OK)
        return io;
    int64_t k[2] = {INSTANCE_LOCK_CLASS, gone};
    return run_ints(st, "adopt", "SELECT pg_advisory_unlock($1::integer, $2::integer)", 2, k, NULL,
                    err, errlen);
}

static omo_io store_save_rules(void *self, const char *hash, const char *text, const char *by,
                               char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    const char *vals[3] = {hash, text ? text : "", by ? by : ""};
    /* The text once per version; an activation each time it goes live. */
    return run(st, "save_rules",
               "WITH version AS (INSERT INTO rules_versions (hash, text, \"by\") "
               "VALUES ($1, $2, $3) ON CONFLICT (hash) DO NOTHING) "
               "INSERT INTO rules_activations (hash, \"by\") VALUES ($1, $3)",
               3, NULL, vals, NULL, 0, NULL, err, errlen);
}

static omo_io store_order_messages(void *self, omo_topic topic, const char *order_id,
                                   void (*cb)(void *ctx, const char *body, size_t len), void *ctx,
                                   char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    char t[8];
    snprintf(t, sizeof t, "%d", (int)topic);
    const char *vals[2] = {order_id, t};
    PGresult *res = NULL;
    /* Planned with the values (an unnamed statement): each topic read here has a partial
     * index on (key, seq). */
    io = run(st, "order_messages",
             "SELECT value FROM outbox WHERE topic = $2::smallint "
             "AND key = convert_to($1, 'UTF8') ORDER BY seq",
             2, NULL, vals, NULL, 1, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    for (int i = 0, n = PQntuples(res); i < n; i++)
        cb(ctx, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    PQclear(res);
    return OMO_IO_OK;
}

static omo_io store_rules_text(void *self, const char *hash,
                               void (*cb)(void *ctx, const char *text, size_t len), void *ctx,
                               char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    const char *vals[1] = {hash};
    PGresult *res = NULL;
    io = run(st, "rules_text", "SELECT text FROM rules_versions WHERE hash = $1", 1, NULL, vals,
             NULL, 0, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    if (PQntuples(res) > 0)
        cb(ctx, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    else
        cb(ctx, NULL, 0);
    PQclear(res);
    return OMO_IO_OK;
}

static omo_io store_rules_history(void *self,
                                  void (*cb)(void *ctx, const char *hash, const char *went_live,
                                             const char *by),
                                  void *ctx, char *err, size_t errlen)
{
    pg_store *st = self;
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    PGresult *res = NULL;
    io = run(st, "rules_history",
             "SELECT hash, to_char(went_live AT TIME ZONE 'UTC', "
             "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \"by\" FROM rules_activations "
             "ORDER BY id",
             0, NULL, NULL, NULL, 0, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    for (int i = 0, n = PQntuples(res); i < n; i++)
        cb(ctx, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    PQclear(res);
    return OMO_IO_OK;
}

/* ---- readiness ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool await_result(PGconn *conn, int64_t deadline)
{
    while (PQisBusy(conn)) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        if (poll(&pfd, 1, (int)left) < 0 || !PQconsumeInput(conn))
            return false;
    }
    return true;
}

/* Runs SELECT 1 on conn, giving up after deadline. */
static bool answers(PGconn *conn, int64_t deadline)
{
    if (!PQsendQuery(conn, "SELECT 1"))
        return false;
    bool ok = false;
    for (;;) {
        if (!await_result(conn, deadline))
            return false;
        PGresult *res = PQgetResult(conn);
        if (!res)
            return ok;
        ok = PQresultStatus(res) == PGRES_TUPLES_OK;
        PQclear(res);
    }
}

static bool store_ready(void *self)
{
    pg_store *st = self;
    pthread_mutex_lock(&st->ready_lock);
    int64_t deadline = now_ms() + READY_TIMEOUT_MS;
    bool ok = false;
    /* A kept connection may have been cut since (a server restart): then one fresh try. */
    for (int attempt = 0; attempt < 2 && !ok && now_ms() < deadline; attempt++) {
        bool fresh = !st->ready_conn;
        if (fresh)
            st->ready_conn = connect_dsn(st->dsn, "2");
        ok = st->ready_conn && PQstatus(st->ready_conn) == CONNECTION_OK &&
             answers(st->ready_conn, deadline);
        if (!ok) {
            PQfinish(st->ready_conn);
            st->ready_conn = NULL;
            if (fresh)
                break;
        }
    }
    pthread_mutex_unlock(&st->ready_lock);
    return ok;
}

static void store_destroy(void *self)
{
    pg_store *st = self;
    if (!st)
        return;
    PQfinish(st->conn);
    PQfinish(st->ready_conn);
    PQfinish(st->beat_conn);
    pthread_mutex_destroy(&st->ready_lock);
    for (int i = 0; i < MAX_PARAMS; i++)
        free(st->arrays[i].buf);
    free(st->scratch);
    free(st->dsn);
    free(st);
}

static const omo_store_ops pg_store_ops = {
    .commit = store_commit,
    .positions = store_positions,
    .replay = store_replay,
    .pending = store_pending,
    .register_instance = store_register,
    .lease = store_lease,
    .heartbeat = store_heartbeat,
    .beat = store_beat,
    .gone_instances = store_gone_instances,
    .end_stale = store_end_stale,
    .adopt = store_adopt,
    .confirmed_end = store_confirmed_end,
    .max_seqs = store_max_seqs,
    .save_rules = store_save_rules,
    .order_messages = store_order_messages,
    .rules_text = store_rules_text,
    .rules_history = store_rules_history,
    .ready = store_ready,
    .destroy = store_destroy,
};

/* Refuses to run on a schema older than this binary. */
static omo_io check_schema(pg_store *st, char *err, size_t errlen)
{
    PGresult *res = NULL;
    omo_io io = run(st, "schema", "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL,
                    NULL, NULL, 0, &res, err, errlen);
    if (io != OMO_IO_OK)
        return io;
    bool exists = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists) {
        set_err(err, errlen, "schema", "the database has no omo schema: run 'omo db migrate'");
        return OMO_IO_FATAL;
    }
    io = run(st, "schema", "SELECT name FROM schema_migrations", 0, NULL, NULL, NULL, 0, &res, err,
             errlen);
    if (io != OMO_IO_OK)
        return io;
    for (const struct omo_migration *m = omo_migrations; m->name; m++) {
        bool found = false;
        for (int i = 0, n = PQntuples(res); i < n && !found; i++)
            found = strcmp(PQgetvalue(res, i, 0), m->name) == 0;
        if (!found) {
            char msg[256];
            snprintf(msg, sizeof msg, "migration %s is not applied: run 'omo db migrate'", m->name);
            set_err(err, errlen, "schema", msg);
            PQclear(res);
            return OMO_IO_FATAL;
        }
    }
    PQclear(res);
    return OMO_IO_OK;
}

omo_io omo_pg_store_open(const char *dsn, omo_store *out, char *err, size_t errlen)
{
    if (!dsn) {
        set_err(err, errlen, "dsn", "none given");
        return OMO_IO_FATAL;
    }
    /* A bare word is a database name; anything else must parse as a connection string. */
    if (strchr(dsn, '=') || strstr(dsn, "://")) {
        char *parse_err = NULL;
        PQconninfoOption *opts = PQconninfoParse(dsn, &parse_err);
        if (!opts) {
            set_err(err, errlen, "dsn", parse_err ? parse_err : "out of memory");
            PQfreemem(parse_err);
            return OMO_IO_FATAL;
        }
        PQconninfoFree(opts);
    }

    pg_store *st = omo_xcalloc(1, sizeof *st);
    st->dsn = omo_xstrdup(dsn);
    pthread_mutex_init(&st->ready_lock, NULL);
    omo_io io = ensure_conn(st, err, errlen);
    if (io != OMO_IO_OK)
        goto fail;
    io = check_schema(st, err, errlen);
    if (io != OMO_IO_OK)
        goto fail;
    out->ops = &pg_store_ops;
    out->self = st;
    return OMO_IO_OK;

fail:
    store_destroy(st);
    return io;
}

/* ---- migrations ---- */

/* Runs sql on conn; on failure writes "what: message" to err. */
static bool migrate_exec(PGconn *conn, const char *what, const char *sql, int nparams,
                         const char *const *vals, char *err, size_t errlen)
{
    PGresult *res = nparams > 0 ? PQexecParams(conn, sql, nparams, NULL, vals, NULL, NULL, 0)
                                : PQexec(conn, sql);
    ExecStatusType status = PQresultStatus(res);
    bool ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (!ok)
        set_result_err(err, errlen, what, conn, res);
    PQclear(res);
    return ok;
}

int omo_pg_migrate_report(PGconn *conn, void (*applied)(void *ctx, const char *name), void *ctx,
                          char *err, size_t errlen)
{
    char key[24];
    snprintf(key, sizeof key, "%lld", MIGRATE_LOCK_KEY);
    const char *key_vals[1] = {key};
    if (!migrate_exec(conn, "migrate", "SELECT pg_advisory_lock($1::bigint)", 1, key_vals, err,
                      errlen))
        return -1;

    int count = -1;
    PGresult *done = PQexec(conn, "SELECT name FROM schema_migrations");
    if (PQresultStatus(done) != PGRES_TUPLES_OK) {
        /* No table yet: nothing is applied. 0001 creates it. */
        const char *state = PQresultErrorField(done, PG_DIAG_SQLSTATE);
        if (!state || strcmp(state, "42P01") != 0) {
            set_result_err(err, errlen, "migrate", conn, done);
            goto out;
        }
        PQclear(done);
        done = NULL;
    }
    count = 0;
    for (const struct omo_migration *m = omo_migrations; m->name; m++) {
        bool found = false;
        for (int i = 0, n = done ? PQntuples(done) : 0; i < n && !found; i++)
            found = strcmp(PQgetvalue(done, i, 0), m->name) == 0;
        if (found)
            continue;
        const char *name_vals[1] = {m->name};
        if (!migrate_exec(conn, m->name, "BEGIN", 0, NULL, err, errlen) ||
            !migrate_exec(conn, m->name, m->sql, 0, NULL, err, errlen) ||
            !migrate_exec(conn, m->name, "INSERT INTO schema_migrations (name) VALUES ($1)", 1,
                          name_vals, err, errlen) ||
            !migrate_exec(conn, m->name, "COMMIT", 0, NULL, err, errlen)) {
            if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
                PQclear(PQexec(conn, "ROLLBACK"));
            count = -1;
            goto out;
        }
        count++;
        if (applied)
            applied(ctx, m->name);
    }

out:
    PQclear(done);
    if (PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexecParams(conn, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, key_vals, NULL,
                             NULL, 0));
    return count;
}

int omo_pg_migrate(PGconn *conn, char *err, size_t errlen)
{
    return omo_pg_migrate_report(conn, NULL, NULL, err, errlen);
}

static omo_io migrate_dsn(const char *dsn, void (*applied)(void *ctx, const char *name), void *ctx,
                          int *count, char *err, size_t errlen)
{
    PGconn *conn = connect_dsn(dsn, CONNECT_TIMEOUT_S);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
        set_err(err, errlen, "connect", conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        return OMO_IO_RETRY;
    }
    int n = omo_pg_migrate_report(conn, applied, ctx, err, errlen);
    omo_io io = n >= 0 ? OMO_IO_OK : PQstatus(conn) == CONNECTION_OK ? OMO_IO_FATAL : OMO_IO_RETRY;
    PQfinish(conn);
    if (count)
        *count = n;
    return io;
}

omo_io omo_pg_migrate_dsn(const char *dsn, int *applied, char *err, size_t errlen)
{
    return migrate_dsn(dsn, NULL, NULL, applied, err, errlen);
}

static void print_applied(void *ctx, const char *name)
{
    (void)ctx;
    printf("applied %s\n", name);
    fflush(stdout);
}

int omo_pg_cmd_migrate(const char *dsn)
{
    char err[1024];
    int count = 0;
    omo_io io = migrate_dsn(dsn, print_applied, NULL, &count, err, sizeof err);
    if (io != OMO_IO_OK) {
        fprintf(stderr, "omo db migrate: %s\n", err);
        return 1;
    }
    if (count == 0)
        puts("up to date");
    return 0;
}
