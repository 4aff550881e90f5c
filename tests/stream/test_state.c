/* State across restarts (contract section 11), against `omo run` with a real PostgreSQL and the
 * mock cluster: checkpoints are taken while a day streams; explain answers from the checkpoint
 * before the order, as `omo explain` does over the whole history; a restart refuses a checkpoint
 * with a flipped byte and one of an unknown version and starts from the older one; the rest of
 * the day streamed after it ends exactly as `omo solve` decides the whole day. */
#include "service.h"
#include "stream_env.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPS_TOKEN "ops-state-5e1f"

static omo_test_service *svc;
static bool passed;

static void teardown(void)
{
    omo_test_service_teardown(svc, passed);
    svc = NULL;
}

/* The applied events, in apply order, as an events file for the offline commands. */
static void export_applied(const char *path)
{
    PGconn *db = PQconnectdb(omo_pg_local_dsn(svc->pg));
    cr_assert_eq(PQstatus(db), CONNECTION_OK);
    PGresult *res = PQexec(db, "SELECT convert_from(value, 'UTF8') FROM applied_events "
                               "WHERE value IS NOT NULL ORDER BY seq");
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(db));
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < PQntuples(res); i++)
        fprintf(f, "%s\n", PQgetvalue(res, i, 0));
    fclose(f);
    PQclear(res);
    PQfinish(db);
}

/* What a command prints to stdout. */
static char *run_output(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (size_t k; (k = fread(buf + n, 1, cap - n - 1, p)) > 0; n += k)
        if (n + k + 1 >= cap)
            buf = realloc(buf, cap *= 2);
    buf[n] = 0;
    cr_assert_eq(pclose(p), 0, "%s failed", cmd);
    return buf;
}

static long long sql(const char *q)
{
    return omo_test_service_sql_count(svc, q);
}

static void exec_sql(const char *q)
{
    PGconn *db = PQconnectdb(omo_pg_local_dsn(svc->pg));
    PGresult *res = PQexec(db, q);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s: %s", q, PQerrorMessage(db));
    PQclear(res);
    PQfinish(db);
}

Test(state, checkpoints_explain_and_refused_checkpoints, .timeout = 300, .fini = teardown)
{
    int port = env_free_port();
    char extra[512];
    snprintf(extra, sizeof extra,
             "state:\n  checkpoint_events: 1500\n  checkpoint_seconds: 1\n"
             "http:\n  listen: 127.0.0.1:%d\n  tokens:\n    - {token: %s, role: ops}\n",
             port, OPS_TOKEN);
    omo_test_service_opts opts = {.name = "state",
                                  .omo_binary = OMO_BINARY,
                                  .stores = 30,
                                  .skus = 150,
                                  .orders = 4000,
                                  .bad = 3,
                                  .seed = 11,
                                  .brokers = 1,
                                  .partitions = 2,
                                  .config_extra = extra};
    svc = omo_test_service_setup(&opts);
    cr_assert_not_null(svc, "setup failed");
    env e = {.port = port};
    char err[2048];

    /* The opening stock, then three quarters of the day streamed in small chunks (so that
     * checkpoints fall between orders), then a clean stop. */
    size_t first = svc->nopening + (svc->ninputs - svc->nopening) * 3 / 4;
    cr_assert(omo_test_service_produce(svc, svc->nopening, err, sizeof err), "%s", err);
    cr_assert(omo_test_service_start(svc, err, sizeof err), "%s", err);
    cr_assert(omo_test_service_feed(svc, first, 150, 80));
    cr_assert(omo_test_service_feed_wait(svc));
    cr_assert(omo_test_service_wait_applied(svc, (long long)first, 120000, err, sizeof err), "%s",
              err);
    double until = omo_test_now() + 30;
    while (sql("SELECT count(*) FROM checkpoints") < 3 && omo_test_now() < until)
        omo_test_sleep(0.1);
    cr_assert_geq(sql("SELECT count(*) FROM checkpoints"), 3, "fewer than 3 checkpoints");

    /* Explain: the same text as `omo explain` over the whole history, from a checkpoint. */
    char events[PATH_MAX + 32];
    snprintf(events, sizeof events, "%s/applied.jsonl", svc->dir);
    export_applied(events);
    /* The order decided last, and the checkpoint nearest before its first decision. */
    char late[160] = "";
    {
        PGconn *db = PQconnectdb(omo_pg_local_dsn(svc->pg));
        PGresult *res = PQexec(db, "SELECT convert_from(key, 'UTF8') FROM outbox WHERE topic = 2 "
                                   "GROUP BY key ORDER BY min(seq) DESC LIMIT 1");
        cr_assert_eq(PQntuples(res), 1);
        snprintf(late, sizeof late, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        PQfinish(db);
    }
    char q[512];
    snprintf(q, sizeof q,
             "SELECT max(applied_seq) FROM checkpoints WHERE outbox_seq < (SELECT min(seq) FROM "
             "outbox WHERE topic = 2 AND key = convert_to('%s', 'UTF8'))",
             late);
    long long nearest = sql(q);
    cr_assert_gt(nearest, 1, "no checkpoint before %s but the first", late);
    char path[256], cmd[4 * PATH_MAX];
    snprintf(path, sizeof path, "/orders/%s/explain", late);
    env_resp r = env_http(&e, "GET", path, OPS_TOKEN, NULL);
    cr_assert_eq(r.status, 200, "%s: %d %s", path, r.status, r.body);
    snprintf(cmd, sizeof cmd, "%s explain --network %s --rules %s --events %s %s", OMO_BINARY,
             svc->network, svc->routing, events, late);
    char *offline = run_output(cmd);
    cr_assert_str_eq(r.body, offline, "explain differs from omo explain");
    free(offline);
    env_resp_free(&r);
    char want[160];
    snprintf(want, sizeof want, "[ops] explain %s: from checkpoint seq %lld,", late, nearest);
    cr_assert(omo_test_service_log_has(svc, want), "no '%s'", want);
    r = env_http(&e, "GET", "/orders/NO-SUCH-ORDER/explain", OPS_TOKEN, NULL);
    cr_assert_eq(r.status, 404);
    env_resp_free(&r);

    /* The diff of the live rules against themselves: every order of the day, none changed, and
     * the same totals as `omo rules diff` over the whole history. */
    size_t rlen;
    FILE *rf = fopen(svc->routing, "r");
    cr_assert_not_null(rf);
    char rules_text[1 << 16];
    rlen = fread(rules_text, 1, sizeof rules_text - 1, rf);
    rules_text[rlen] = 0;
    fclose(rf);
    r = env_http(&e, "POST", "/rules/diff?format=json", OPS_TOKEN, rules_text);
    cr_assert_eq(r.status, 200, "%d %s", r.status, r.body);
    json_t *online = json_loads(r.body, 0, NULL);
    cr_assert_not_null(online);
    snprintf(cmd, sizeof cmd, "%s rules diff --network %s --events %s %s %s --format json",
             OMO_BINARY, svc->network, events, svc->routing, svc->routing);
    offline = run_output(cmd);
    json_t *whole = json_loads(offline, 0, NULL);
    cr_assert_not_null(whole);
    cr_assert_eq(json_integer_value(json_object_get(online, "changed_orders")), 0);
    json_object_del(json_object_get(online, "old"), "file");
    json_object_del(json_object_get(whole, "old"), "file");
    cr_assert(json_equal(json_object_get(online, "old"), json_object_get(whole, "old")),
              "the diff's totals differ from omo rules diff: %s", r.body);
    json_decref(online);
    json_decref(whole);
    free(offline);
    env_resp_free(&r);

    cr_assert_eq(omo_test_service_stop(svc, SIGTERM, 60000), 0);

    /* The newest checkpoint gets a flipped byte, the one before an unknown version: the
     * restart refuses both and starts from the third. */
    long long seqs[3];
    for (int i = 0; i < 3; i++) {
        char q[160];
        snprintf(q, sizeof q,
                 "SELECT applied_seq FROM checkpoints ORDER BY applied_seq DESC OFFSET %d LIMIT 1",
                 i);
        seqs[i] = sql(q);
    }
    snprintf(q, sizeof q,
             "UPDATE checkpoints SET body = set_byte(body, length(body) / 2, "
             "get_byte(body, length(body) / 2) # 16) WHERE applied_seq = %lld",
             seqs[0]);
    exec_sql(q);
    snprintf(q, sizeof q,
             "UPDATE checkpoints SET body = set_byte(body, 8, 9) WHERE applied_seq = %lld",
             seqs[1]);
    exec_sql(q);
    cr_assert(omo_test_service_start(svc, err, sizeof err), "%s", err);
    cr_assert(omo_test_service_wait_log(svc, "rebuilt the view", 60000));
    snprintf(want, sizeof want, "seq %lld refused: checksum mismatch", seqs[0]);
    cr_assert(omo_test_service_log_has(svc, want), "no '%s'", want);
    snprintf(want, sizeof want, "seq %lld refused: format version 9", seqs[1]);
    cr_assert(omo_test_service_log_has(svc, want), "no '%s'", want);
    snprintf(want, sizeof want, "[checkpoint] loaded seq %lld ", seqs[2]);
    cr_assert(omo_test_service_log_has(svc, want), "no '%s'", want);

    /* The rest of the day, decided from that view. */
    cr_assert(omo_test_service_produce(svc, svc->ninputs, err, sizeof err), "%s", err);
    cr_assert(omo_test_service_wait_applied(svc, (long long)svc->ninputs, 120000, err, sizeof err),
              "%s", err);
    cr_assert_eq(omo_test_service_stop(svc, SIGTERM, 60000), 0);
    omo_test_check check;
    cr_assert(omo_test_service_check(svc, &check, err, sizeof err), "%s", err);
    passed = true;
}
