/* `omo run` killed with SIGKILL at random instants while a retail day streams through it, and
 * restarted each time: in the end every input event has had exactly one effect and every
 * allocation revision is on its topic exactly once, as `omo solve` decides it from the events in
 * the order the service applied them.
 *
 * The kill schedule is random but seeded (OMO_CRASH_SEED overrides the seed); each kill comes
 * 0.3 to 4 s after the process started or after it was assigned its partitions, some of them
 * then at the next batch commit, so kills land during the rebuild from PostgreSQL, during the
 * outbox reconciliation, while joining the group, and while batches are applied, committed and
 * sent, and while a checkpoint is being taken (checkpoints every 2,000 events or second). A
 * restart loads the newest checkpoint and replays only what follows it, so the end-to-end check
 * (the output is what `omo solve` decides over every applied event) also shows that checkpoint
 * plus tail decide as the whole history does. What is asserted holds for every schedule. */
#include "service.h"

#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { KILLS = 12 };

static omo_test_service *svc;
static bool passed;

static void teardown(void)
{
    omo_test_service_teardown(svc, passed);
    svc = NULL;
}

/* The schedule follows from the seed alone. */
static uint64_t rng_state;

/* When a kill comes: a delay after the process started, or after it was assigned its
 * partitions, or that delay and then the moment a batch commit shows in PostgreSQL, or the
 * moment the service starts taking a checkpoint (its child is then serialising the view,
 * waiting for the batch to be committed, or writing). */
enum anchor { FROM_START, FROM_ASSIGNMENT, AT_NEXT_COMMIT, AT_CHECKPOINT };
static const char *const anchor_names[] = {"the start", "the assignment",
                                           "the assignment, at the next commit",
                                           "the assignment, at the next checkpoint"};

/* Where the service was when it was killed, as its log tells. */
enum phase { PHASE_REBUILD, PHASE_JOIN, PHASE_STREAM, PHASE_COMMITTED, PHASE_CHECKPOINT, PHASES };
static const char *const phase_names[PHASES] = {"rebuilding", "joining", "streaming",
                                                "sending a committed batch", "taking a checkpoint"};

/* The process of the last checkpoint the log says was begun, or 0. */
static pid_t checkpoint_child(void)
{
    FILE *f = fopen(omo_test_service_slot_log(svc, 0), "r");
    if (!f)
        return 0;
    char line[512];
    long pid = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "[checkpoint] taking seq");
        if (p && (p = strstr(p, " in process ")))
            pid = strtol(p + 12, NULL, 10);
    }
    fclose(f);
    return (pid_t)pid;
}

static int children_killed;

/* A checkpoint taken since the start and not yet reported written or not. */
static bool checkpoint_open(void)
{
    size_t taking = omo_test_service_slot_log_count(svc, 0, "[checkpoint] taking seq");
    size_t done = omo_test_service_slot_log_count(svc, 0, " written");
    return taking > done;
}

static long long applied_count(void)
{
    return omo_test_service_sql_count(svc, "SELECT count(*) FROM applied_events");
}

Test(stream, kill_nine_loses_and_doubles_nothing, .timeout = 600, .fini = teardown)
{
    double t0 = omo_test_now();
    uint64_t seed = 20261123;
    if (getenv("OMO_CRASH_SEED"))
        seed = strtoull(getenv("OMO_CRASH_SEED"), NULL, 10);
    rng_state = seed;

    omo_test_service_opts opts = {.name = "crash",
                                  .omo_binary = OMO_BINARY,
                                  .stores = 60,
                                  .skus = 300,
                                  .orders = 20000,
                                  .bad = 8,
                                  .seed = 5,
                                  .brokers = 3,
                                  .partitions = 4,
                                  /* Checkpoints all the time, so that kills land in them. */
                                  .config_extra = "state:\n  checkpoint_events: 2000\n"
                                                  "  checkpoint_seconds: 1\n",
                                  /* partitions made all along, in the checkpoints' children */
                                  .partition_rows = 3000};
    svc = omo_test_service_setup(&opts);
    cr_assert_not_null(svc, "setup failed");
    cr_assert_geq(svc->nbad, 8, "gen's bad lines are refused by omo solve");
    size_t norders = 0;
    for (size_t i = 0; i < svc->ninputs; i++)
        norders += svc->inputs[i].order_id != NULL;
    cr_assert_geq(norders, 20000);

    /* The opening stock first, then the day in file order: a third of it waiting before the
     * first start (a backlog read in full batches, committed while the next is applied), the
     * rest streamed while the service is killed and restarted. */
    char err[2048];
    cr_assert(omo_test_service_produce(svc, svc->nopening, err, sizeof err), "%s", err);
    cr_assert(omo_test_service_produce(svc, svc->nopening + (svc->ninputs - svc->nopening) / 3, err,
                                       sizeof err),
              "%s", err);
    cr_assert(omo_test_service_feed(svc, svc->ninputs, 12, 75));

    int kills[PHASES] = {0};
    for (int k = 0; k < KILLS; k++) {
        cr_assert(omo_test_service_start(svc, err, sizeof err), "%s", err);
        double delay = 0.3 + 3.7 * omo_test_rng_unit(&rng_state), r = omo_test_rng_unit(&rng_state);
        enum anchor an = r < 0.25   ? FROM_START
                         : r < 0.5  ? FROM_ASSIGNMENT
                         : r < 0.75 ? AT_NEXT_COMMIT
                                    : AT_CHECKPOINT;
        if (an != FROM_START)
            cr_assert(omo_test_service_wait_log(svc, "rebalance: assigned", 30000),
                      "start %d: no partitions assigned within 30 s", svc->starts);
        omo_test_sleep(delay);
        bool committed = false;
        if (an == AT_CHECKPOINT) {
            /* The child writing the checkpoint (and then pruning) is killed too, a moment
             * after it began. */
            size_t before = omo_test_service_slot_log_count(svc, 0, "[checkpoint] taking seq");
            double until = omo_test_now() + 5;
            while (omo_test_now() < until &&
                   omo_test_service_slot_log_count(svc, 0, "[checkpoint] taking seq") == before)
                omo_test_sleep(0.001);
            omo_test_sleep(0.05 * omo_test_rng_unit(&rng_state));
            pid_t child = checkpoint_child();
            if (child > 0 && kill(child, SIGKILL) == 0)
                children_killed++;
        }
        if (an == AT_NEXT_COMMIT) {
            /* Right after a batch is committed its messages are being sent: the outbox holds
             * rows that may or may not have reached their topics. */
            long long before = applied_count();
            double until = omo_test_now() + 5;
            while (!committed && omo_test_now() < until)
                committed = applied_count() != before;
        }
        cr_assert(omo_test_service_alive(svc), "start %d: the service exited by itself",
                  svc->starts);
        enum phase ph = checkpoint_open()                                       ? PHASE_CHECKPOINT
                        : committed                                             ? PHASE_COMMITTED
                        : !omo_test_service_log_has(svc, "rebuilt the view")    ? PHASE_REBUILD
                        : !omo_test_service_log_has(svc, "rebalance: assigned") ? PHASE_JOIN
                                                                                : PHASE_STREAM;
        int rc = omo_test_service_stop(svc, SIGKILL, 10000);
        cr_assert_eq(rc, 128 + SIGKILL, "kill %d: exit status %d", k + 1, rc);
        kills[ph]++;
        fprintf(stderr, "[crash] kill %d: %.2f s after %s, while %s; %lld events applied\n", k + 1,
                delay, anchor_names[an], phase_names[ph], applied_count());
    }

    /* The last run finishes the day and drains on SIGTERM. */
    cr_assert(omo_test_service_start(svc, err, sizeof err), "%s", err);
    cr_assert(omo_test_service_wait_log(svc, "rebalance: assigned", 60000),
              "the last start got no partitions within 60 s");
    cr_assert(omo_test_service_feed_wait(svc), "feeding the inputs failed");
    cr_assert(omo_test_service_wait_applied(svc, (long long)svc->ninputs, 180000, err, sizeof err),
              "%s", err);
    int rc = omo_test_service_stop(svc, SIGTERM, 60000);
    cr_assert_eq(rc, 0, "the drain ended with exit status %d", rc);

    omo_test_check check;
    bool ok = omo_test_service_check(svc, &check, err, sizeof err);
    cr_assert(ok, "%s", err);
    cr_assert_eq(check.dead_letters, svc->nbad);
    cr_assert_gt(kills[PHASE_CHECKPOINT], 0, "no kill landed in a checkpoint");
    cr_assert_gt(children_killed, 0, "no checkpoint's child was killed");
    cr_assert_gt(omo_test_service_sql_count(svc, "SELECT count(*) FROM seq_partitions WHERE "
                                                 "tbl = 'applied_events'"),
                 (long long)svc->ninputs / 3000, "partitions were not made along");
    cr_assert_gt(omo_test_service_sql_count(svc, "SELECT count(*) FROM checkpoints"), 0);
    cr_assert_gt(omo_test_service_slot_log_count(svc, 0, "[checkpoint] loaded seq"), 0,
                 "no restart started from a checkpoint");

    fprintf(stderr,
            "[crash] seed %" PRIu64 ": %d kills (%d rebuilding, %d joining, %d streaming, "
            "%d sending, %d in a checkpoint, %d checkpoint children killed), "
            "%d restarts; %zu events in (%zu bad), %zu orders, %zu revisions and %zu shipment "
            "statuses out, "
            "%zu stock rows; "
            "%.1f s\n",
            seed, KILLS, kills[PHASE_REBUILD], kills[PHASE_JOIN], kills[PHASE_STREAM],
            kills[PHASE_COMMITTED], kills[PHASE_CHECKPOINT], children_killed, svc->starts - 1,
            check.applied, check.dead_letters, check.orders, check.revisions,
            check.shipment_statuses, check.stock_rows, omo_test_now() - t0);
    passed = true;
}
