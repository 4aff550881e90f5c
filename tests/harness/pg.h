/* A private PostgreSQL for tests: initdb into a temporary directory, a server on a free port of
 * 127.0.0.1, removed again when the test ends (or when the test process dies). */
#ifndef OMO_TEST_PG_H
#define OMO_TEST_PG_H

typedef struct omo_test_pg omo_test_pg;

/* Creates and starts a cluster (as the `postgres` user when run as root). Returns NULL, after
 * printing why and the server log to stderr, when it cannot. */
omo_test_pg *omo_test_pg_start(void);
/* "postgresql://postgres@127.0.0.1:PORT/postgres"; owned by pg. */
const char *omo_test_pg_dsn(const omo_test_pg *pg);
/* The server's TCP port. */
int omo_test_pg_port(const omo_test_pg *pg);
/* Fast shutdown then start again, on the same port: every open connection is cut. Returns 0,
 * or -1 when the server did not come back. */
int omo_test_pg_restart(omo_test_pg *pg);
/* Stops the server (fast) and removes its directory. Accepts NULL. */
void omo_test_pg_stop(omo_test_pg *pg);

#endif
