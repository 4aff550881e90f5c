/* A private PostgreSQL started from the installed server binaries: `omo demo` runs on one, and
 * the tests start one each. As root the server runs as the `postgres` user (PostgreSQL refuses
 * root), from a clean environment. */
#ifndef OMO_PG_LOCAL_H
#define OMO_PG_LOCAL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct omo_pg_local omo_pg_local;

/* Starts a server on a free port of 127.0.0.1. With dir, the cluster lives there (made by
 * initdb when missing, reused when present) and stays after stop; with dir NULL, a temporary
 * directory is used and removed at stop, also when the calling process dies first. durable:
 * fsync on (benchmarks, demos); off is for tests. Returns NULL with err filled on failure. */
omo_pg_local *omo_pg_local_start(const char *dir, bool durable, char *err, size_t errlen);
/* "postgresql://postgres@127.0.0.1:PORT/postgres" */
const char *omo_pg_local_dsn(const omo_pg_local *pg);
int omo_pg_local_port(const omo_pg_local *pg);
/* Restarts the server in place (fast shutdown): for fault tests. Returns 0 or -1. */
int omo_pg_local_restart(omo_pg_local *pg);
/* Stops the server (fast shutdown); accepts NULL. */
void omo_pg_local_stop(omo_pg_local *pg);

#endif
