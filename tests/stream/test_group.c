/* Several `omo run` processes in one consumer group while a retail day streams through them:
 * they share the input partitions, and SIGKILL at random instants, restarts, a fourth process
 * joining and one leaving on SIGTERM move the partitions between them in both directions. In the
 * end every input event has had exactly one effect, every allocation revision is on its topic
 * exactly once and no stock row is oversold, as `omo solve` decides it from the events in the
 * order the group applied them; and the work was shared, not done by one process at a time.
 *
 * The schedule is random but seeded (OMO_GROUP_SEED overrides the seed). Kills land at random
 * instants (some on a process still rebuilding or joining after its restart) or right after a
 * batch commit shows in PostgreSQL; every third kill waits for the survivors to take the dead
 * process's partitions over before it is restarted, and the last killed process stays dead, so
 * the survivors must also send what it left unsent. What is asserted holds for every schedule. */
#include "service.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    BASE = 3,        /* processes from the start: slots 0, 1, 2 */
    EXTRA = BASE,    /* the fourth process's slot */
    USED = BASE + 1, /* slots the test uses */
    KILLS = 8,       /* SIGKILLs over the run */
    TAKEOVER_EVERY = 3,
};

_Static_assert((int)USED <= (int)OMO_TEST_SLOTS, "the harness has slots enough");

static omo_test_service *svc;
static bool passed;
static char err[2048];

static void teardown(void)
{
    omo_test_service_teardown(svc, passed);
    svc = NULL;
}

/* The schedule follows from the seed alone. */
static uint64_t rng_state;

static long long applied_count(void)
{
    return omo_test_service_sql_count(svc, "SELECT count(*) FROM applied_events");
}

/* What the test expects of each slot; a process that exits unasked fails the test. */
static bool running[USED];
static double started_at[USED]; /* when the slot's process was last started */
static double restart_at[USED]; /* when a killed process comes back; 0: it does not */

static int running_count(void)
{
    int n = 0;
    for (int s = 0; s < USED; s++)
        n += running[s];
    return n;
}

static void start_slot(int slot)
{
    cr_assert(omo_test_service_slot_start(svc, slot, err, sizeof err), "%s", err);
    running[slot] = true;
    started_at[slot] = omo_test_now();
    restart_at[slot] = 0;
}

/* Restarts the processes whose time has come and asserts that none exited by itself. */
static void tick(bool restarts)
{
    double now = omo_test_now();
    for (int s = 0; s < USED; s++) {
        if (running[s])
            cr_assert(omo_test_service_slot_alive(svc, s), "slot %d exited by itself", s);
        else if (restarts && restart_at[s] > 0 && now >= restart_at[s])
            start_slot(s);
    }
}

/* Waits until `until`, restarting processes when their time comes. */
static void wait_until(double until, bool restarts)
{
    for (;;) {
        tick(restarts);
        double left = until - omo_test_now();
        if (left <= 0)
            return;
        omo_test_sleep(left < 0.05 ? left : 0.05);
    }
}

/* A random running slot, or -1. */
static int pick_running(void)
{
    int cand[USED], n = 0;
    for (int s = 0; s < USED; s++)
        if (running[s])
            cand[n++] = s;
    if (n == 0)
        return -1;
    int i = (int)(omo_test_rng_unit(&rng_state) * n);
    return cand[i < n ? i : n - 1];
}

/* When a kill comes: at a random instant, right after a batch commit shows in PostgreSQL, or
 * shortly after the next restart, on the process just started. */
enum anchor { ANCHOR_RANDOM, ANCHOR_COMMIT, ANCHOR_YOUNG };

/* Where the victim was when it was killed, as its log tells. */
enum phase { PHASE_REBUILD, PHASE_JOIN, PHASE_STREAM, PHASE_COMMITTED, PHASES };
static const char *const phase_names[PHASES] = {"rebuilding", "joining", "streaming",
                                                "right after a batch commit"};

static const char *const assigned = "rebalance: assigned";

/* Kills one running process (never the last one) and schedules its restart, unless last. */
static enum phase kill_one(int k, enum anchor an, bool takeover, bool last)
{
    int victim = -1;
    if (an == ANCHOR_YOUNG) {
        for (int s = 0; s < USED; s++)
            if (!running[s] && restart_at[s] > 0 &&
                (victim < 0 || restart_at[s] < restart_at[victim]))
                victim = s;
        if (victim >= 0) {
            while (!running[victim])
                wait_until(omo_test_now() + 0.05, true);
            wait_until(started_at[victim] + 0.05 + 1.2 * omo_test_rng_unit(&rng_state), true);
        } else {
            an = ANCHOR_RANDOM; /* nothing is about to start */
        }
    }
    if (victim < 0)
        victim = pick_running();
    cr_assert(victim >= 0 && running_count() >= 2, "kill %d: fewer than two processes run", k + 1);
    size_t before_assigned[USED] = {0};
    for (int s = 0; s < USED; s++)
        if (running[s] && s != victim)
            before_assigned[s] = omo_test_service_slot_log_count(svc, s, assigned);

    bool committed = false;
    if (an == ANCHOR_COMMIT) {
        /* Right after a batch is committed its messages are being sent: the outbox holds rows
         * that may or may not have reached their topics. Which process committed is not known;
         * the victim is killed at that instant, whatever it was doing. */
        long long before = applied_count();
        double until = omo_test_now() + 10;
        while (!committed && omo_test_now() < until)
            committed = applied_count() != before;
    }
    cr_assert(omo_test_service_slot_alive(svc, victim), "slot %d exited by itself", victim);
    enum phase ph = committed ? PHASE_COMMITTED
                    : !omo_test_service_slot_log_has(svc, victim, "rebuilt the view")
                        ? PHASE_REBUILD
                    : !omo_test_service_slot_log_has(svc, victim, assigned) ? PHASE_JOIN
                                                                            : PHASE_STREAM;
    double age = omo_test_now() - started_at[victim];
    int rc = omo_test_service_slot_stop(svc, victim, SIGKILL, 10000);
    cr_assert_eq(rc, 128 + SIGKILL, "kill %d: slot %d exit status %d", k + 1, victim, rc);
    running[victim] = false;
    double t_kill = omo_test_now();

    char how[64] = "";
    if (takeover) {
        /* The survivors are given the dead process's partitions once its session expires. */
        bool taken = false;
        while (!taken && omo_test_now() < t_kill + 45) {
            tick(false);
            for (int s = 0; s < USED && !taken; s++)
                taken = running[s] &&
                        omo_test_service_slot_log_count(svc, s, assigned) > before_assigned[s];
            if (!taken)
                omo_test_sleep(0.05);
        }
        cr_assert(taken, "kill %d: no survivor took over slot %d's partitions within 45 s", k + 1,
                  victim);
        snprintf(how, sizeof how, "; the survivors took over in %.1f s", omo_test_now() - t_kill);
    }
    fprintf(stderr,
            "[group] kill %d: slot %d, %.2f s after its start, while %s; %lld events applied; "
            "%d running%s%s\n",
            k + 1, victim, age, phase_names[ph], applied_count(), running_count(), how,
            last ? "; not restarted" : "");
    restart_at[victim] = last ? 0 : omo_test_now() + 0.3 + 2.7 * omo_test_rng_unit(&rng_state);
    return ph;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0)
        if ((n += k) == cap - 1) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* One process's life, as its slot's log tells: from one "==== test: start" line to the next. */
typedef struct life {
    int slot;
    long instance;   /* from "[service] instance N", or -1 */
    int catch_ups;   /* "caught up on N events applied by other processes" */
    long adopted;    /* unconfirmed messages it took over from gone instances */
    bool partitions; /* it was given partitions */
} life;

enum { MAX_LIVES = 64 };
static life lives[MAX_LIVES];
static int nlives;

static void read_lives(int slot)
{
    char *log = read_text(omo_test_service_slot_log(svc, slot));
    life *cur = NULL;
    for (char *line = log; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (!strncmp(line, "==== test: start", 16)) {
            cr_assert_lt(nlives, MAX_LIVES);
            cur = &lives[nlives++];
            *cur = (life){.slot = slot, .instance = -1};
        } else if (cur && !strncmp(line, "[service] instance ", 19)) {
            char *end;
            long id = strtol(line + 19, &end, 10);
            if (end == line + 19)
                ;
            else if (*end == '\0')
                cur->instance = id;
            else if (!strncmp(end, " is gone: ", 10))
                cur->adopted += strtol(end + 10, NULL, 10);
        } else if (cur && strstr(line, "caught up on ") &&
                   strstr(line, "events applied by other processes")) {
            cur->catch_ups++;
        } else if (cur && strstr(line, assigned)) {
            cur->partitions = true;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(log);
}

/* Outbox rows per instance, as the database holds them at the end. */
static long outbox_rows_of(PGresult *res, long instance)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (atol(PQgetvalue(res, i, 0)) == instance)
            return atol(PQgetvalue(res, i, 1));
    return 0;
}

Test(stream, consumer_group_shares_partitions_and_takes_over, .timeout = 600, .fini = teardown)
{
    double t0 = omo_test_now();
    uint64_t seed = 20261125;
    if (getenv("OMO_GROUP_SEED"))
        seed = strtoull(getenv("OMO_GROUP_SEED"), NULL, 10);
    rng_state = seed;

    omo_test_service_opts opts = {.name = "group",
                                  .omo_binary = OMO_BINARY,
                                  .stores = 60,
                                  .skus = 300,
                                  .orders = 12000,
                                  .bad = 8,
                                  .seed = 7,
                                  .brokers = 3,
                                  .partitions = 8};
    svc = omo_test_service_setup(&opts);
    cr_assert_not_null(svc, "setup failed");
    cr_assert_geq(svc->nbad, 8, "gen's bad lines are refused by omo solve");
    size_t norders = 0;
    for (size_t i = 0; i < svc->ninputs; i++)
        norders += svc->inputs[i].order_id != NULL;
    cr_assert_geq(norders, 10000);

    /* The opening stock first; then three processes join the group and share its partitions
     * before the day streams in over about 80 s. */
    cr_assert(omo_test_service_produce(svc, svc->nopening, err, sizeof err), "%s", err);
    for (int s = 0; s < BASE; s++)
        start_slot(s);
    for (int s = 0; s < BASE; s++)
        cr_assert(omo_test_service_slot_wait_log(svc, s, assigned, 60000),
                  "slot %d got no partitions within 60 s", s);
    size_t rest = svc->ninputs - svc->nopening;
    cr_assert(omo_test_service_feed(svc, svc->ninputs, rest / 1000 + 1, 75));

    /* K: a SIGKILL; X: a fourth process joins; T: one process leaves on SIGTERM. */
    static const char plan[] = "KKXKKKTKKK";
    int kills = 0, phases[PHASES] = {0}, young = 0, extra_at = -1, term_slot = -1;
    for (size_t a = 0; plan[a]; a++) {
        wait_until(omo_test_now() + 2 + 3 * omo_test_rng_unit(&rng_state), true);
        while (plan[a] != 'X' && running_count() < 2)
            wait_until(omo_test_now() + 0.5, true); /* the last process is not touched */
        if (plan[a] == 'K') {
            double r = omo_test_rng_unit(&rng_state);
            enum anchor an = kills == 1 || r < 0.3 ? ANCHOR_COMMIT
                             : r < 0.6             ? ANCHOR_YOUNG
                                                   : ANCHOR_RANDOM;
            young += an == ANCHOR_YOUNG;
            phases[kill_one(kills, an, kills % TAKEOVER_EVERY == 0, kills == KILLS - 1)]++;
            kills++;
        } else if (plan[a] == 'X') {
            start_slot(EXTRA);
            extra_at = kills;
            fprintf(stderr, "[group] slot %d joins; %d running\n", EXTRA, running_count());
        } else {
            term_slot = pick_running();
            int rc = omo_test_service_slot_stop(svc, term_slot, SIGTERM, 60000);
            cr_assert_eq(rc, 0, "SIGTERM mid-stream: slot %d exit status %d", term_slot, rc);
            running[term_slot] = false;
            restart_at[term_slot] = 0;
            fprintf(stderr, "[group] slot %d left on SIGTERM; %lld events applied; %d running\n",
                    term_slot, applied_count(), running_count());
        }
    }
    cr_assert_eq(kills, KILLS);
    cr_assert_geq(phases[PHASE_COMMITTED], 1, "no kill came right after a batch commit");
    cr_assert_geq(extra_at, 0);
    cr_assert_geq(term_slot, 0);

    /* The day ends: all but one process leave on SIGTERM, the last drains it all. */
    cr_assert(omo_test_service_feed_wait(svc), "feeding the inputs failed");
    tick(false);
    int last = pick_running();
    cr_assert_geq(last, 0);
    for (int s = 0; s < USED; s++) {
        restart_at[s] = 0;
        if (!running[s] || s == last)
            continue;
        int rc = omo_test_service_slot_stop(svc, s, SIGTERM, 60000);
        cr_assert_eq(rc, 0, "the end: slot %d exit status %d on SIGTERM", s, rc);
        running[s] = false;
    }
    cr_assert(omo_test_service_wait_applied(svc, (long long)svc->ninputs, 180000, err, sizeof err),
              "%s", err);
    int rc = omo_test_service_slot_stop(svc, last, SIGTERM, 60000);
    cr_assert_eq(rc, 0, "the drain of slot %d ended with exit status %d", last, rc);
    running[last] = false;

    omo_test_check check;
    bool ok = omo_test_service_check(svc, &check, err, sizeof err);
    cr_assert(ok, "%s", err);
    cr_assert_eq(check.dead_letters, svc->nbad);

    /* The work was shared: processes applied events of their own while others applied theirs.
     * A process's life shows it when it caught up on events the others applied meanwhile and
     * the outbox holds messages of its instance beyond those it adopted from gone ones. */
    for (int s = 0; s < USED; s++)
        read_lives(s);
    PGconn *conn = PQconnectdb(omo_pg_local_dsn(svc->pg));
    cr_assert_eq(PQstatus(conn), CONNECTION_OK, "%s", PQerrorMessage(conn));
    PGresult *res = PQexec(conn, "SELECT instance, count(*) FROM outbox GROUP BY instance");
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK,
                 "which process applied what: reading outbox instances: %s", PQerrorMessage(conn));
    int instances = PQntuples(res), with_partitions = 0, sharing = 0;
    bool slot_shared[USED] = {false}, slot_partitions[USED] = {false};
    for (int i = 0; i < nlives; i++) {
        life *l = &lives[i];
        slot_partitions[l->slot] |= l->partitions;
        long own = l->instance >= 0 ? outbox_rows_of(res, l->instance) - l->adopted : 0;
        if (l->catch_ups > 0 && own > 0) {
            sharing++;
            slot_shared[l->slot] = true;
        }
    }
    PQclear(res);
    PQfinish(conn);
    int slots_shared = 0;
    for (int s = 0; s < USED; s++) {
        slots_shared += slot_shared[s];
        with_partitions += slot_partitions[s];
    }
    cr_assert_geq(with_partitions, 2, "only %d of %d slots were ever given partitions",
                  with_partitions, USED);
    cr_assert_geq(instances, 2, "the outbox names %d instances", instances);
    cr_assert(sharing >= 2 && slots_shared >= 2,
              "the work was not shared: %d of %d processes (in %d slots) applied events while "
              "others did",
              sharing, nlives, slots_shared);
    long long runs = omo_test_service_sql_count(
        svc, "SELECT count(*) FROM (SELECT instance, lag(instance) OVER (ORDER BY seq) AS p "
             "FROM outbox) x WHERE p IS DISTINCT FROM instance");

    fprintf(stderr,
            "[group] seed %" PRIu64 ": %d kills (%d rebuilding, %d joining, %d streaming, %d right "
            "after a commit; %d aimed at a fresh start), slot %d joined after kill %d, slot %d "
            "left on SIGTERM, %d processes over %d slots (%d given partitions), %d applied while "
            "others did (in %d slots); %d instances and %lld runs of one instance in the outbox; "
            "%zu events in "
            "(%zu bad), %zu orders, %zu revisions and %zu shipment statuses out, %zu stock rows; "
            "%.1f s\n",
            seed, kills, phases[PHASE_REBUILD], phases[PHASE_JOIN], phases[PHASE_STREAM],
            phases[PHASE_COMMITTED], young, EXTRA, extra_at, term_slot, nlives, USED,
            with_partitions, sharing, slots_shared, instances, runs, check.applied,
            check.dead_letters, check.orders, check.revisions, check.shipment_statuses,
            check.stock_rows, omo_test_now() - t0);
    passed = true;
}
