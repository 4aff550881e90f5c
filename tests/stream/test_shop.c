/* The read side against the running service (contract section 10): `omo run` with the
 * availability feed on, a real PostgreSQL and the mock Kafka cluster, over HTTP.
 * - GET /availability: every node's numbers are the database's stock rows, ATP is on hand -
 *   reserved - held - safety, filters by node and distance, errors name their parameter;
 * - POST /promise: options for several deliveries, sorted, and the order that follows a promise
 *   gets the promised plan;
 * - holds: placed (201), asked again (200, the same hold), expired by the clock, released,
 *   consumed by their order;
 * - pauses: a store token pauses its own store only; a paused node shows paused and promises
 *   nothing;
 * - the feed: after SIGKILLs at random moments while stock changes, each record on the topic
 *   is an outbox row once (no omo.seq twice) and validates against config/schema, and the last
 *   value per key equals GET /availability. */
#define ENV_KAFKA_EXTRA "  topics: {availability: omo.availability}\n"
#include "stream_env.h"
#include "util.h"

static uint64_t rng_state = 4242;

static double rng_unit(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}

static env E;
static bool passed;

static void teardown(void)
{
    int rc = env_stop(&E);
    if (passed && rc == 0) {
        env_remove_dir(&E);
    } else {
        env_log_tail(&E, 40);
        fprintf(stderr, "kept %s\n", E.dir);
    }
    cr_expect_eq(rc, 0, "omo run exited %d on SIGTERM", rc);
}

static json_t *call(const char *method, const char *path, const char *token, const char *body,
                    int want_status)
{
    env_resp r = env_http(&E, method, path, token, body);
    json_t *j = env_resp_json(&r);
    cr_assert_eq(r.status, want_status, "%s %s (body %s): status %d, expected %d: %s", method, path,
                 body ? body : "-", r.status, want_status, r.body);
    env_resp_free(&r);
    return j;
}

static long long num(json_t *j, const char *key)
{
    return (long long)json_integer_value(json_object_get(j, key));
}

static const char *const SKUS = "sku=SKU-A&sku=SKU-B&sku=SKU-C&sku=SKU-SN&sku=SKU-SD&sku=SKU-SE&"
                                "sku=SKU-SM&sku=SKU-R1&sku=SKU-R2&sku=SKU-X1&sku=SKU-X2&sku=SKU-P2";

/* Every node of every SKU: the database's numbers, and ATP as the contract computes it. */
static void check_availability(void)
{
    char path[512];
    snprintf(path, sizeof path, "/availability?%s", SKUS);
    json_t *j = call("GET", path, ENV_S2_TOKEN, NULL, 200);
    size_t i, k;
    json_t *s, *n;
    json_array_foreach(json_object_get(j, "skus"), i, s)
    {
        long long sum = 0;
        json_array_foreach(json_object_get(s, "nodes"), k, n)
        {
            const char *node = env_json_str(n, "node_id"), *sku = env_json_str(s, "sku");
            cr_assert_eq(num(n, "on_hand"), env_on_hand(&E, node, sku), "%s/%s", node, sku);
            cr_assert_eq(num(n, "reserved"), env_reserved(&E, node, sku), "%s/%s", node, sku);
            long long atp =
                num(n, "on_hand") - num(n, "reserved") - num(n, "held") - num(n, "safety_stock");
            if (atp < 0 || json_is_true(json_object_get(n, "paused")))
                atp = 0;
            cr_assert_eq(num(n, "atp"), atp, "%s/%s", node, sku);
            sum += atp;
        }
        cr_assert_eq(num(s, "atp"), sum);
    }
    json_decref(j);
}

/* The allocation fields a promise shares with the decision. */
static char *comparable(json_t *a)
{
    json_t *c = json_deep_copy(a);
    const char *drop[] = {"order_id",    "revision", "rules_version", "promised_hours",
                          "promised_by", "delivery", "decided_at"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        json_object_del(c, drop[i]);
    size_t i;
    json_t *sh;
    json_array_foreach(json_object_get(c, "shipments"), i, sh) json_object_del(sh, "shipment_id");
    char *text = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(c);
    return text;
}

static void produce_order(const char *id, const char *created_at, const char *basket,
                          const char *hold_id)
{
    char value[1024];
    snprintf(value, sizeof value,
             "{\"type\":\"order.created\",\"order_id\":\"%s\",\"created_at\":\"%s\"%s%s%s,%s", id,
             created_at, hold_id ? ",\"hold_id\":\"" : "", hold_id ? hold_id : "",
             hold_id ? "\"" : "", basket + 1);
    cr_assert(env_produce(&E, "omo.orders", id, value));
    cr_assert(env_wait_revisions(&E, id, 1, 30000), "order %s was not decided", id);
}

static void wait_ready(void)
{
    double until = env_now() + 60;
    for (;;) {
        env_resp r = env_http(&E, "GET", "/readyz", NULL, NULL);
        int st = r.status;
        env_resp_free(&r);
        if (st == 200)
            return;
        cr_assert(env_now() < until && env_wait_pid(E.pid, 0) < 0, "the service did not come back");
        env_sleep_ms(100);
    }
}

#define BASKET_A                                                                                   \
    "{\"customer\":{\"lat\":40.76,\"lon\":-73.98},\"delivery\":{\"method\":\"ship\","              \
    "\"service\":\"standard\"},\"lines\":[{\"line_id\":\"1\",\"sku\":\"SKU-A\",\"qty\":1}]}"
#define BASKET_SN                                                                                  \
    "{\"customer\":{\"lat\":40.76,\"lon\":-73.98},\"delivery\":{\"method\":\"ship\","              \
    "\"service\":\"standard\"},\"lines\":[{\"line_id\":\"1\",\"sku\":\"SKU-SN\",\"qty\":2}]}"

Test(shop, read_side_end_to_end, .timeout = 300, .fini = teardown)
{
    env_start(&E, "avail");
    check_availability();

    /* Errors name their parameter; every token may read; none may not. */
    json_decref(call("GET", "/availability?sku=SKU-A", NULL, NULL, 401));
    json_decref(call("GET", "/availability?node=S-1", ENV_OPS_TOKEN, NULL, 400));
    json_t *j = call("GET", "/availability?sku=SKU-A&near=abc", ENV_OPS_TOKEN, NULL, 400);
    cr_assert_str_eq(env_json_str(j, "field"), "near");
    json_decref(j);
    /* Near S-1, within 10 km: DC-EAST (80 km off) is left out, and km is given. */
    j = call("GET", "/availability?sku=SKU-SN&near=40.76,-73.98&radius_km=10", ENV_S1_TOKEN, NULL,
             200);
    json_t *nodes = json_object_get(json_array_get(json_object_get(j, "skus"), 0), "nodes");
    cr_assert_eq(json_array_size(nodes), 1, "%s", json_dumps(j, 0));
    cr_assert_str_eq(env_json_str(json_array_get(nodes, 0), "node_id"), "S-1");
    cr_assert(json_is_number(json_object_get(json_array_get(nodes, 0), "km")));
    json_decref(j);
    j = call("GET", "/availability?sku=SKU-SN&node=DC-EAST", ENV_S1_TOKEN, NULL, 200);
    nodes = json_object_get(json_array_get(json_object_get(j, "skus"), 0), "nodes");
    cr_assert_eq(json_array_size(nodes), 1);
    cr_assert_str_eq(env_json_str(json_array_get(nodes, 0), "node_id"), "DC-EAST");
    json_decref(j);

    /* A promise for several deliveries, then the order that follows the first: the same plan. */
    j = call("POST", "/promise", ENV_S1_TOKEN,
             "{\"customer\":{\"lat\":40.76,\"lon\":-73.98},\"lines\":[{\"line_id\":\"1\","
             "\"sku\":\"SKU-A\",\"qty\":1}],\"services\":[\"standard\",\"express\"],"
             "\"pickup_near\":{\"radius_km\":10,\"max\":2}}",
             200);
    json_t *opts = json_object_get(j, "options");
    cr_assert_eq(json_array_size(opts), 4, "standard, express (unknown), S-1, S-2");
    cr_assert_str_eq(env_json_str(json_array_get(opts, 3), "status"), "rejected");
    cr_assert(json_is_number(json_object_get(json_array_get(opts, 0), "promised_hours")));
    cr_assert_str_eq(env_json_str(json_array_get(opts, 0), "status"), "allocated");
    json_decref(j);
    j = call("POST", "/promise", ENV_S1_TOKEN, BASKET_A, 200);
    char as_of[40];
    snprintf(as_of, sizeof as_of, "%s", env_json_str(j, "as_of"));
    char *want = comparable(json_array_get(json_object_get(j, "options"), 0));
    json_decref(j);
    produce_order("O-P1", as_of, BASKET_A, NULL);
    json_t *rev = env_latest_revision(&E, "O-P1");
    char *got = comparable(rev);
    cr_assert_str_eq(got, want, "promised %s, decided %s", want, got);
    free(got);
    free(want);
    json_decref(rev);
    check_availability();

    /* Holds: ops only; a repeated id answers the same hold; one expires by the clock. */
    const char *h1 = "{\"hold_id\":\"cart-1\",\"ttl_seconds\":1,\"customer\":{\"lat\":40.76,"
                     "\"lon\":-73.98},\"delivery\":{\"method\":\"ship\",\"service\":\"standard\"},"
                     "\"lines\":[{\"line_id\":\"1\",\"sku\":\"SKU-SN\",\"qty\":2}]}";
    json_decref(call("POST", "/holds", ENV_S1_TOKEN, h1, 403));
    j = call("POST", "/holds", ENV_OPS_TOKEN, h1, 201);
    char expires[40];
    snprintf(expires, sizeof expires, "%s", env_json_str(j, "expires_at"));
    json_decref(j);
    j = call("POST", "/holds", ENV_OPS_TOKEN, h1, 200);
    cr_assert_str_eq(env_json_str(j, "expires_at"), expires);
    json_decref(j);
    check_availability();
    double until = env_now() + 10;
    for (;;) {
        j = call("GET", "/holds/cart-1", ENV_OPS_TOKEN, NULL, 200);
        bool live = json_is_true(json_object_get(j, "live"));
        json_decref(j);
        if (!live)
            break;
        cr_assert_lt(env_now(), until, "cart-1 did not expire");
        env_sleep_ms(100);
    }
    check_availability();
    /* Released by DELETE; consumed by the order naming it. */
    const char *h2 = "{\"hold_id\":\"cart-2\",\"customer\":{\"lat\":40.76,\"lon\":-73.98},"
                     "\"delivery\":{\"method\":\"ship\",\"service\":\"standard\"},"
                     "\"lines\":[{\"line_id\":\"1\",\"sku\":\"SKU-SN\",\"qty\":2}]}";
    json_decref(call("POST", "/holds", ENV_OPS_TOKEN, h2, 201));
    j = call("DELETE", "/holds/cart-2", ENV_OPS_TOKEN, NULL, 200);
    cr_assert(json_is_false(json_object_get(j, "live")));
    json_decref(j);
    const char *h3 = "{\"hold_id\":\"cart-3\",\"customer\":{\"lat\":40.76,\"lon\":-73.98},"
                     "\"delivery\":{\"method\":\"ship\",\"service\":\"standard\"},"
                     "\"lines\":[{\"line_id\":\"1\",\"sku\":\"SKU-SN\",\"qty\":2}]}";
    j = call("POST", "/holds", ENV_OPS_TOKEN, h3, 201);
    want = comparable(json_object_get(j, "option"));
    json_decref(j);
    check_availability();
    produce_order("O-H3", "2025-03-03T12:00:00Z", BASKET_SN, "cart-3");
    rev = env_latest_revision(&E, "O-H3");
    got = comparable(rev);
    cr_assert_str_eq(got, want, "held %s, decided %s", want, got);
    free(got);
    free(want);
    json_decref(rev);
    j = call("GET", "/holds/cart-3", ENV_OPS_TOKEN, NULL, 200);
    cr_assert(json_is_false(json_object_get(j, "live")), "consumed by O-H3");
    json_decref(j);
    check_availability();

    /* Pauses: a store pauses itself, not another; paused, it promises nothing. */
    json_decref(call("POST", "/nodes/S-1/pause", ENV_S2_TOKEN, "{\"reason\":\"count\"}", 403));
    j = call("POST", "/nodes/S-1/pause", ENV_S1_TOKEN, "{\"reason\":\"stock count\"}", 200);
    cr_assert(json_is_true(json_object_get(j, "paused")));
    cr_assert_str_eq(env_json_str(j, "reason"), "stock count");
    json_decref(j);
    j = call("GET", "/availability?sku=SKU-A&node=S-1", ENV_S1_TOKEN, NULL, 200);
    json_t *n =
        json_array_get(json_object_get(json_array_get(json_object_get(j, "skus"), 0), "nodes"), 0);
    cr_assert(json_is_true(json_object_get(n, "paused")));
    cr_assert_eq(num(n, "atp"), 0);
    json_decref(j);
    j = call("POST", "/promise", ENV_S1_TOKEN, BASKET_A, 200);
    char *text = json_dumps(j, 0);
    cr_assert_null(strstr(text, "\"S-1\""), "a paused node takes nothing: %s", text);
    free(text);
    json_decref(j);
    check_availability();
    j = call("POST", "/nodes/S-1/resume", ENV_S1_TOKEN, NULL, 200);
    cr_assert(json_is_false(json_object_get(j, "paused")));
    json_decref(j);

    /* The feed across SIGKILLs: stock keeps changing while the service is killed and started
     * again at random moments. */
    static const char *const pairs[][2] = {{"S-1", "SKU-A"},  {"S-1", "SKU-B"},
                                           {"S-1", "SKU-C"},  {"DC-EAST", "SKU-SN"},
                                           {"S-2", "SKU-X2"}, {"S-2", "SKU-P2"}};
    int ev = 0;
    for (int kill_no = 0; kill_no < 3; kill_no++) {
        int burst = 20 + (int)(rng_unit() * 40);
        for (int i = 0; i < burst; i++, ev++) {
            const char *const *p = pairs[ev % 6];
            char key[64], value[512];
            snprintf(key, sizeof key, "%s/%s", p[0], p[1]);
            snprintf(value, sizeof value,
                     "{\"type\":\"stock.delta\",\"event_id\":\"feed-%d\",\"node_id\":\"%s\","
                     "\"sku\":\"%s\",\"delta\":%d,\"reason\":\"recount\"}",
                     ev, p[0], p[1], ev % 3 ? 1 : -1);
            cr_assert(env_produce(&E, "omo.stock", key, value));
        }
        env_sleep_ms(50 + (int)(rng_unit() * 400));
        kill(E.pid, SIGKILL);
        cr_assert_eq(env_wait_pid(E.pid, 10000), 128 + SIGKILL);
        char *run[] = {OMO_BINARY, "run", "--config", E.config, NULL};
        E.pid = env_spawn(&E, run);
        wait_ready();
    }
    /* Everything applied and confirmed. */
    until = env_now() + 60;
    while (env_sql(&E, "SELECT count(*) FROM applied_events WHERE topic = 1", NULL) <
               (long long)E.nstock + ev ||
           env_sql(&E,
                   "SELECT count(*) FROM outbox o WHERE topic = 5 AND NOT EXISTS "
                   "(SELECT 1 FROM deliveries d WHERE d.seq = o.seq)",
                   NULL) > 0) {
        cr_assert_lt(env_now(), until, "the feed was not confirmed whole");
        env_sleep_ms(100);
    }
    omo_test_records recs = {0};
    cr_assert(
        omo_test_kafka_read_all(omo_kafka_mock_bootstraps(E.kafka), "omo.availability", &recs));
    const omo_test_records *sets[] = {&recs};
    char verr[2048] = "";
    cr_assert(omo_test_records_valid(E.dir, sets, 1, verr, sizeof verr), "%s", verr);
    long long rows = env_sql(&E, "SELECT count(*) FROM outbox WHERE topic = 5", NULL);
    cr_assert_eq((long long)recs.n, rows, "each outbox row once on the topic");
    omo_strmap seqs = {0}, last = {0};
    for (size_t i = 0; i < recs.n; i++) {
        char s[32];
        snprintf(s, sizeof s, "%lld", (long long)recs.recs[i].seq);
        bool added;
        cr_assert_geq(omo_strmap_add(&seqs, s, (int)i, &added), 0);
        cr_assert(added, "omo.seq %s twice on the feed", s);
        /* Keys land on one partition each: the last record of a key is its latest. */
        cr_assert_geq(omo_strmap_add(&last, recs.recs[i].key, (int)i, &added), 0);
        if (!added)
            cr_assert(omo_strmap_put(&last, recs.recs[i].key, (int)i));
    }
    char path[512];
    snprintf(path, sizeof path, "/availability?%s", SKUS);
    j = call("GET", path, ENV_OPS_TOKEN, NULL, 200);
    size_t i, k;
    json_t *s;
    int matched = 0;
    json_array_foreach(json_object_get(j, "skus"), i, s)
    {
        json_array_foreach(json_object_get(s, "nodes"), k, n)
        {
            char key[128];
            snprintf(key, sizeof key, "%s/%s", env_json_str(n, "node_id"), env_json_str(s, "sku"));
            int at = omo_strmap_get(&last, key);
            cr_assert_geq(at, 0, "%s is not on the feed", key);
            json_t *f = json_loads(recs.recs[at].value, 0, NULL);
            cr_assert_str_eq(env_json_str(f, "type"), "availability");
            const char *fields[] = {"atp", "on_hand", "reserved", "held"};
            for (int fi = 0; fi < 4; fi++)
                cr_assert_eq(num(f, fields[fi]), num(n, fields[fi]), "%s: %s feed %lld, now %lld",
                             key, fields[fi], num(f, fields[fi]), num(n, fields[fi]));
            json_decref(f);
            matched++;
        }
    }
    json_decref(j);
    cr_assert_geq(matched, 10, "%d pairs on the feed and in /availability", matched);
    fprintf(stderr, "shop: %zu feed records, %d pairs equal to /availability\n", recs.n, matched);
    omo_strmap_free(&seqs);
    omo_strmap_free(&last);
    omo_test_records_free(&recs);
    check_availability();
    passed = true;
}
