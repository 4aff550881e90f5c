/* PostgreSQL: the state store of store.h, and the schema migrations compiled in from sql/. */
#ifndef OMO_PG_H
#define OMO_PG_H

#include "store.h"

/* libpq's connection, named here so that includers need not include libpq. */
typedef struct pg_conn PGconn;

/* Opens the store on dsn (a libpq URI or key=value string): connects and checks that every
 * migration compiled into this binary has been applied. Returns OMO_IO_RETRY when the database
 * cannot be reached, OMO_IO_FATAL for a malformed dsn or a schema behind this binary (err then
 * says to run `omo db migrate`). On success *out owns the connection until
 * out->ops->destroy(out->self).
 * @locality every op from one thread at a time, except ready(), which has a connection of its
 * own and may be called from any thread. Rows handed to callbacks are valid during the call
 * only, and a callback must not call back into the store. After OMO_IO_RETRY the next call
 * reconnects; a commit retried after its connection was cut is recognised when the first one
 * did reach the database, and then returns OMO_IO_OK without writing anything twice. */
OMO_MUST_CHECK omo_io omo_pg_store_open(const char *dsn, omo_store *out, char *err, size_t errlen);

/* Applies, in name order, every compiled-in migration not yet recorded in schema_migrations,
 * each in its own transaction, holding an advisory lock so that concurrent migrators wait for
 * one another. Calls applied(ctx, name) after each one commits (applied may be NULL). Returns
 * how many were applied, or -1 with err set. */
OMO_MUST_CHECK int omo_pg_migrate_report(PGconn *conn, void (*applied)(void *ctx, const char *name),
                                         void *ctx, char *err, size_t errlen);
/* omo_pg_migrate_report without the report. */
OMO_MUST_CHECK int omo_pg_migrate(PGconn *conn, char *err, size_t errlen);
/* Connects to dsn and migrates. Sets *applied (may be NULL) to how many were applied. Returns
 * OMO_IO_RETRY when the database cannot be reached, OMO_IO_FATAL when a migration fails. */
OMO_MUST_CHECK omo_io omo_pg_migrate_dsn(const char *dsn, int *applied, char *err, size_t errlen);

/* The body of `omo db migrate`: prints "applied NAME" for each migration applied, or
 * "up to date", to stdout; errors to stderr. Returns the exit code: 0, or 1 when the database
 * is unreachable or a migration fails. */
int omo_pg_cmd_migrate(const char *dsn);

#endif
