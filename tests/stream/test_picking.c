/* Store picking against the running service: `omo run` with a real PostgreSQL and the mock
 * Kafka cluster, driven over HTTP like a store's handheld would. The fixture puts nine orders on
 * known stores (tests/fixtures/pick_events.jsonl): on S-1 O-SFS-1 (ship from store, SKU-A x2 +
 * SKU-C x1), O-CC-1 (click-and-collect, SKU-B), O-SHORT-NF/-DM/-MM (to be short), O-REF (for the
 * refused calls) and line 1 of O-CANCEL; on S-2 line 2 of O-CANCEL, O-S2 and O-CC-2. */
#include "stream_env.h"

static env E;
static bool passed;

static void setup(void)
{
    passed = false;
}

static void teardown(void)
{
    int rc = env_stop(&E);
    if (passed && rc == 0) {
        env_remove_dir(&E);
    } else {
        env_log_tail(&E, 30);
        fprintf(stderr, "kept %s\n", E.dir);
    }
    /* A clean drain: the service exits 0 on SIGTERM, without leaks under ASan. */
    cr_expect_eq(rc, 0, "omo run exited %d on SIGTERM", rc);
    cr_expect(E.outputs_valid, "allocations or shipment statuses that do not validate against "
                               "config/schema (see the [schema] lines above)");
}

/* Sends a request and checks the answer's status and, when key is given, a JSON member. */
static json_t *call(const char *method, const char *path, const char *token, const char *body,
                    int want_status, const char *key, const char *want)
{
    env_resp r = env_http(&E, method, path, token, body);
    json_t *j = env_resp_json(&r);
    cr_expect_eq(r.status, want_status, "%s %s (body %s): status %d, expected %d: %s", method, path,
                 body ? body : "-", r.status, want_status, r.body);
    if (key)
        cr_expect_str_eq(env_json_str(j, key), want, "%s %s (body %s): %s is \"%s\" in %s", method,
                         path, body ? body : "-", key, env_json_str(j, key), r.body);
    env_resp_free(&r);
    return j;
}

static void call_ok(const char *method, const char *path, const char *token, const char *body,
                    int want_status, const char *key, const char *want)
{
    json_decref(call(method, path, token, body, want_status, key, want));
}

/* The node of an order's shipment in its latest revision, or "". */
static void node_of(const char *order_id, const char *shipment_id, char *node, size_t len)
{
    json_t *rev = env_latest_revision(&E, order_id);
    snprintf(node, len, "%s", "");
    size_t i;
    json_t *sh;
    json_array_foreach(json_object_get(rev, "shipments"), i, sh)
    {
        if (!strcmp(env_json_str(sh, "shipment_id"), shipment_id))
            snprintf(node, len, "%s", env_json_str(sh, "node_id"));
    }
    json_decref(rev);
}

/* Units of line_id in the latest revision: allocated at `node` (NULL: at any node) and
 * backordered. */
static void units_of(const char *order_id, const char *line_id, const char *node,
                     long long *allocated, long long *backordered)
{
    json_t *rev = env_latest_revision(&E, order_id);
    *allocated = *backordered = 0;
    size_t i, k;
    json_t *sh, *ln;
    json_array_foreach(json_object_get(rev, "shipments"), i, sh)
    {
        if (node && strcmp(env_json_str(sh, "node_id"), node))
            continue;
        json_array_foreach(json_object_get(sh, "lines"), k, ln)
        {
            if (!strcmp(env_json_str(ln, "line_id"), line_id))
                *allocated += json_integer_value(json_object_get(ln, "qty"));
        }
    }
    json_array_foreach(json_object_get(rev, "backordered"), i, ln)
    {
        if (!strcmp(env_json_str(ln, "line_id"), line_id))
            *backordered += json_integer_value(json_object_get(ln, "qty"));
    }
    json_decref(rev);
}

/* The pick list of a store as JSON (fails the test when it cannot be read). */
static json_t *picklist(const char *store, const char *token, const char *extra)
{
    char path[256];
    snprintf(path, sizeof path, "/stores/%s/picklist?format=json%s", store, extra ? extra : "");
    json_t *j = call("GET", path, token, NULL, 200, NULL, NULL);
    cr_assert_not_null(j, "GET %s: not JSON", path);
    return j;
}

/* Whether a store's pick list holds a tote of the order. */
static bool lists_order(const char *store, const char *order_id)
{
    json_t *pl = picklist(store, ENV_OPS_TOKEN, NULL);
    bool found = false;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(pl, "totes"), i, t)
    {
        found |= !strcmp(env_json_str(t, "order_id"), order_id);
    }
    json_decref(pl);
    return found;
}

TestSuite(picking, .init = setup, .fini = teardown, .timeout = 110);

/* The walk through S-1: aisles 01, 03, 04 are walked (none in 02), so 03 is the second aisle
 * walked and goes down its bays; rows without a bin come last by SKU. */
Test(picking, walk_formats_and_batches)
{
    env_start(&E, "walk");
    static const char *const bins[] = {"01-02-1", "01-05-2", "01-09-1", "03-08-1", "03-08-3",
                                       "03-02-1", "04-01-1", "04-06-2", NULL,      NULL};
    static const char *const skus[] = {"SKU-B",  "SKU-A",  "SKU-R1", "SKU-SE", "SKU-SD",
                                       "SKU-SN", "SKU-SM", "SKU-X1", "SKU-C",  "SKU-R2"};
    json_t *pl = picklist("S-1", ENV_S1_TOKEN, NULL);
    json_t *rows = json_object_get(pl, "rows"), *totes = json_object_get(pl, "totes");
    cr_assert_eq(json_array_size(rows), 10, "S-1 rows: %zu", json_array_size(rows));
    cr_assert_eq(json_array_size(totes), 7, "S-1 totes: %zu", json_array_size(totes));
    int last_tote = 0;
    for (size_t i = 0; i < 10; i++) {
        json_t *row = json_array_get(rows, i);
        json_t *bin = json_object_get(row, "bin");
        if (bins[i])
            cr_expect_str_eq(json_string_value(bin) ? json_string_value(bin) : "(null)", bins[i],
                             "row %zu", i + 1);
        else
            cr_expect(json_is_null(bin), "row %zu has a bin", i + 1);
        cr_expect_str_eq(env_json_str(row, "sku"), skus[i], "row %zu", i + 1);
        /* Totes are numbered in the order the walk first reaches them. */
        int tote = (int)json_integer_value(json_object_get(row, "tote"));
        cr_expect(tote <= last_tote + 1, "row %zu: tote %d after %d", i + 1, tote, last_tote);
        if (tote > last_tote)
            last_tote = tote;
    }
    /* The tote of the pickup names the pickup store and a promised time. */
    size_t i;
    json_t *t;
    int pickups = 0;
    json_array_foreach(totes, i, t)
    {
        if (!strcmp(env_json_str(t, "order_id"), "O-CC-1")) {
            pickups++;
            cr_expect_str_eq(env_json_str(t, "method"), "click_and_collect");
            cr_expect_str_eq(env_json_str(t, "pickup_store_id"), "S-1");
            cr_expect(env_json_str(t, "promised_at")[0], "no promised time");
        }
    }
    cr_expect_eq(pickups, 1);
    json_decref(pl);

    /* S-2: its own bins, the older order's tote first on a shared bin. */
    pl = picklist("S-2", ENV_S2_TOKEN, NULL);
    rows = json_object_get(pl, "rows");
    cr_assert_eq(json_array_size(rows), 3);
    cr_expect_str_eq(env_json_str(json_array_get(rows, 0), "bin"), "02-01-1");
    cr_expect_str_eq(env_json_str(json_array_get(rows, 1), "bin"), "05-01-1");
    cr_expect_str_eq(env_json_str(json_array_get(rows, 2), "bin"), "05-01-1");
    json_t *first = NULL, *second = NULL;
    json_array_foreach(json_object_get(pl, "totes"), i, t)
    {
        int n = (int)json_integer_value(json_object_get(t, "number"));
        if (n == (int)json_integer_value(json_object_get(json_array_get(rows, 1), "tote")))
            first = t;
        if (n == (int)json_integer_value(json_object_get(json_array_get(rows, 2), "tote")))
            second = t;
    }
    cr_assert(first && second);
    cr_expect_str_eq(env_json_str(first, "order_id"), "O-S2");
    cr_expect_str_eq(env_json_str(second, "order_id"), "O-CC-2");
    json_decref(pl);

    /* A batch of the oldest order only. */
    pl = picklist("S-1", ENV_OPS_TOKEN, "&max_orders=1");
    cr_expect_eq(json_array_size(json_object_get(pl, "totes")), 1);
    cr_expect_eq(json_array_size(json_object_get(pl, "rows")), 2);
    cr_expect_str_eq(env_json_str(json_array_get(json_object_get(pl, "totes"), 0), "order_id"),
                     "O-SFS-1");
    json_decref(pl);
    call_ok("GET", "/stores/S-1/picklist?max_orders=0", ENV_OPS_TOKEN, NULL, 400, "field",
            "max_orders");
    call_ok("GET", "/stores/S-1/picklist?format=pdf", ENV_OPS_TOKEN, NULL, 400, "field", "format");
    call_ok("GET", "/stores/S-9/picklist", ENV_OPS_TOKEN, NULL, 404, NULL, NULL);

    /* The other renderings; a browser link carries the token in the query. */
    env_resp r =
        env_http(&E, "GET", "/stores/S-1/picklist?format=text&token=" ENV_S1_TOKEN, NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.type, "text/plain") != NULL, "type %s", r.type);
    cr_expect(strstr(r.body, "03-08-1") && strstr(r.body, "03-02-1") &&
                  strstr(r.body, "03-08-1") < strstr(r.body, "03-02-1"),
              "text list out of walking order:\n%s", r.body);
    /* Columns are characters: UTF-8 continuation bytes take none. */
    int col = 0;
    for (const char *c = r.body; *c; c++) {
        if (*c == '\n')
            col = 0;
        else if (((unsigned char)*c & 0xC0) != 0x80)
            cr_expect_leq(++col, 80, "a text line is wider than 80 columns:\n%s", r.body);
    }
    env_resp_free(&r);
    r = env_http(&E, "GET", "/stores/S-1/picklist?format=csv", ENV_S1_TOKEN, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.type, "text/csv") != NULL, "type %s", r.type);
    int lines = 0;
    for (const char *c = r.body; *c; c++)
        lines += *c == '\n';
    cr_expect_eq(lines, 11, "csv: a header and 10 rows, got %d lines:\n%s", lines, r.body);
    env_resp_free(&r);
    r = env_http(&E, "GET", "/stores/S-1/picklist?format=html&token=" ENV_S1_TOKEN, NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.type, "text/html") != NULL, "type %s", r.type);
    cr_expect(strstr(r.body, "class=\"confirm\" data-shipment=\"O-SFS-1/1\"") != NULL,
              "no confirm button for O-SFS-1/1");
    env_resp_free(&r);

    /* Reading a list changes nothing. */
    cr_expect_eq(env_sql(&E, "SELECT count(*) FROM order_revisions", NULL), ENV_NORDERS);
    cr_expect(env_wait_statuses(&E, 0, 0));
    passed = true;
}

Test(picking, confirm_ship_and_collect)
{
    env_start(&E, "confirm");
    char node[16];
    node_of("O-SFS-1", "O-SFS-1/1", node, sizeof node);
    cr_assert_str_eq(node, "S-1");
    node_of("O-CC-1", "O-CC-1/1", node, sizeof node);
    cr_assert_str_eq(node, "S-1");

    /* Confirm: every line picked whole (lines not listed count as picked whole). */
    call_ok("POST", "/picks/O-SFS-1%2F1/confirm", ENV_S1_TOKEN,
            "{\"lines\":[{\"line_id\":\"1\",\"picked\":2}]}", 200, "status", "picked");
    json_t *j = call("POST", "/picks/O-SFS-1%2F1/confirm", ENV_S1_TOKEN,
                     "{\"lines\":[{\"line_id\":\"1\",\"picked\":2}]}", 409, "state", "picked");
    cr_expect(env_json_str(j, "error")[0], "a 409 says why");
    json_decref(j);
    cr_expect(!lists_order("S-1", "O-SFS-1"), "a picked shipment stays on the pick list");
    /* Picked is not yet gone: the units stay reserved on the shelf's count. */
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-A"), 10);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-A"), 2);

    /* A ship-from-store shipment is shipped, not collected: refused, and nothing moves. */
    call_ok("POST", "/shipments/O-SFS-1%2F1/collect", ENV_S1_TOKEN, NULL, 400, "field",
            "shipment_id");
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-A"), 10);
    call_ok("POST", "/shipments/O-SFS-1%2F1/ship", ENV_S1_TOKEN, NULL, 200, "status", "shipped");
    call_ok("POST", "/shipments/O-SFS-1%2F1/ship", ENV_S1_TOKEN, NULL, 409, "state", "shipped");
    call_ok("GET", "/picks/O-SFS-1%2F1/confirm", ENV_S1_TOKEN, NULL, 405, NULL, NULL);
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-A"), 8);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-A"), 0);
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-C"), 9);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-C"), 0);

    /* Click-and-collect: not collected before it is picked; then picked (empty body) and
     * collected. */
    call_ok("POST", "/shipments/O-CC-1%2F1/collect", ENV_S1_TOKEN, NULL, 409, "state", "allocated");
    call_ok("POST", "/shipments/O-CC-1%2F1/ship", ENV_S1_TOKEN, NULL, 409, "state", "allocated");
    call_ok("POST", "/picks/O-CC-1%2F1/confirm", ENV_OPS_TOKEN, NULL, 200, "status", "picked");
    call_ok("POST", "/shipments/O-CC-1%2F1/collect", ENV_S1_TOKEN, NULL, 200, "status",
            "collected");
    call_ok("POST", "/shipments/O-CC-1%2F1/collect", ENV_S1_TOKEN, NULL, 409, "state", "collected");
    call_ok("POST", "/picks/O-CC-1%2F1/confirm", ENV_S1_TOKEN, NULL, 409, "state", "collected");
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-B"), 9);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-B"), 0);

    /* No re-sourcing for whole picks: one revision each. */
    cr_expect_eq(env_revisions(&E, "O-SFS-1"), 1);
    cr_expect_eq(env_revisions(&E, "O-CC-1"), 1);

    /* GET /orders shows the statuses in order. */
    j = call("GET", "/orders/O-SFS-1", ENV_OPS_TOKEN, NULL, 200, "order_id", "O-SFS-1");
    json_t *st = json_object_get(j, "shipment_statuses");
    cr_expect_eq(json_array_size(st), 2);
    cr_expect_str_eq(env_json_str(json_array_get(st, 0), "status"), "picked");
    cr_expect_str_eq(env_json_str(json_array_get(st, 1), "status"), "shipped");
    cr_expect_str_eq(env_json_str(json_array_get(st, 1), "node_id"), "S-1");
    cr_expect_eq(json_array_size(json_object_get(j, "revisions")), 1);
    json_decref(j);

    cr_expect_eq(env_outbox_statuses(&E, "O-SFS-1"), 2);
    cr_expect_eq(env_outbox_statuses(&E, "O-CC-1"), 2);
    cr_assert(env_wait_statuses(&E, 4, 15000));
    static const char *const expected[] = {"O-SFS-1/1 picked", "O-SFS-1/1 shipped",
                                           "O-CC-1/1 picked", "O-CC-1/1 collected", NULL};
    cr_expect(env_statuses_exactly(&E, expected));
    passed = true;
}

/* Each reason: the missing units leave S-1's on hand, and the order's next revision re-sources
 * them (to DC-EAST, which holds spare SKU-SN and SKU-SD; SKU-SM has none anywhere, so that
 * unit is backordered). */
Test(picking, short_with_each_reason)
{
    env_start(&E, "short");
    char node[16];
    node_of("O-SHORT-NF", "O-SHORT-NF/1", node, sizeof node);
    cr_assert_str_eq(node, "S-1");
    long long dc_sn = env_reserved(&E, "DC-EAST", "SKU-SN");
    cr_assert_eq(dc_sn, 0);

    /* not_found: 1 of 3 picked. */
    call_ok("POST", "/picks/O-SHORT-NF%2F1/confirm", ENV_S1_TOKEN,
            "{\"lines\":[{\"line_id\":\"1\",\"picked\":1,\"reason\":\"not_found\"}]}", 200,
            "status", "short");
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-SN"), 1);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-SN"), 1);
    cr_expect_eq(env_revisions(&E, "O-SHORT-NF"), 2);
    long long at_s1, at_dc, back;
    units_of("O-SHORT-NF", "1", "S-1", &at_s1, &back);
    units_of("O-SHORT-NF", "1", "DC-EAST", &at_dc, &back);
    cr_expect_eq(at_s1, 1, "the picked unit stays in its shipment");
    cr_expect_eq(at_dc, 2, "the missing units are re-sourced to DC-EAST");
    cr_expect_eq(back, 0);
    cr_expect_eq(env_reserved(&E, "DC-EAST", "SKU-SN"), 2);
    json_t *rev = env_latest_revision(&E, "O-SHORT-NF");
    cr_expect_eq(json_integer_value(json_object_get(rev, "revision")), 2);
    cr_expect_str_eq(env_json_str(rev, "status"), "allocated");
    json_decref(rev);

    /* damaged: line 1 none of 2; line 2 not listed, so picked whole. */
    call_ok("POST", "/picks/O-SHORT-DM%2F1/confirm", ENV_S1_TOKEN,
            "{\"lines\":[{\"line_id\":\"1\",\"picked\":0,\"reason\":\"damaged\"}]}", 200, "status",
            "short");
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-SD"), 0);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-SD"), 0);
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-SE"), 4, "the whole line's stock is untouched");
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-SE"), 1);
    cr_expect_eq(env_revisions(&E, "O-SHORT-DM"), 2);
    units_of("O-SHORT-DM", "1", "DC-EAST", &at_dc, &back);
    cr_expect_eq(at_dc, 2);
    cr_expect_eq(back, 0);
    units_of("O-SHORT-DM", "2", "S-1", &at_s1, &back);
    cr_expect_eq(at_s1, 1);

    /* mismatch: 1 of 2, nowhere else to take the other from. */
    call_ok("POST", "/picks/O-SHORT-MM%2F1/confirm", ENV_OPS_TOKEN,
            "{\"lines\":[{\"line_id\":\"1\",\"picked\":1,\"reason\":\"mismatch\"}]}", 200, "status",
            "short");
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-SM"), 1);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-SM"), 1);
    cr_expect_eq(env_revisions(&E, "O-SHORT-MM"), 2);
    units_of("O-SHORT-MM", "1", NULL, &at_s1, &back);
    cr_expect_eq(at_s1, 1);
    cr_expect_eq(back, 1);
    rev = env_latest_revision(&E, "O-SHORT-MM");
    cr_expect_str_eq(env_json_str(rev, "status"), "partial");
    json_decref(rev);

    /* A short shipment is no longer an open pick, cannot be confirmed again, and still ships
     * what it holds. */
    cr_expect(!lists_order("S-1", "O-SHORT-NF"));
    cr_expect(!lists_order("S-1", "O-SHORT-DM"));
    cr_expect(!lists_order("S-1", "O-SHORT-MM"));
    call_ok("POST", "/picks/O-SHORT-NF%2F1/confirm", ENV_S1_TOKEN, NULL, 409, "state", "short");
    call_ok("POST", "/shipments/O-SHORT-NF%2F1/ship", ENV_S1_TOKEN, NULL, 200, "status", "shipped");
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-SN"), 0);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-SN"), 0);
    cr_expect_eq(env_revisions(&E, "O-SHORT-NF"), 2);

    /* Each short status carries the units actually in the tote. */
    json_t *j = call("GET", "/orders/O-SHORT-NF", ENV_OPS_TOKEN, NULL, 200, NULL, NULL);
    json_t *st = json_array_get(json_object_get(j, "shipment_statuses"), 0);
    cr_expect_str_eq(env_json_str(st, "status"), "short");
    json_t *line0 = json_array_get(json_object_get(st, "lines"), 0);
    cr_expect_eq(json_integer_value(json_object_get(line0, "qty")), 1, "short status lines: %s",
                 json_dumps(st, JSON_COMPACT));
    cr_expect_eq(json_array_size(json_object_get(j, "revisions")), 2);
    json_decref(j);

    cr_assert(env_wait_statuses(&E, 4, 15000));
    static const char *const expected[] = {"O-SHORT-NF/1 short", "O-SHORT-NF/1 shipped",
                                           "O-SHORT-DM/1 short", "O-SHORT-MM/1 short", NULL};
    cr_expect(env_statuses_exactly(&E, expected));

    /* After a restart the view, rebuilt from the applied events (the store's calls among them),
     * is the same, and nothing is sent twice. */
    env_restart(&E);
    cr_expect(!lists_order("S-1", "O-SHORT-DM"));
    cr_expect(lists_order("S-1", "O-REF"));
    call_ok("POST", "/picks/O-SHORT-MM%2F1/confirm", ENV_S1_TOKEN, NULL, 409, "state", "short");
    call_ok("POST", "/shipments/O-SHORT-NF%2F1/ship", ENV_S1_TOKEN, NULL, 409, "state", "shipped");
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-SM"), 1);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-SM"), 1);
    cr_expect_eq(env_reserved(&E, "DC-EAST", "SKU-SD"), 2);
    call_ok("POST", "/shipments/O-SHORT-DM%2F1/ship", ENV_S1_TOKEN, NULL, 200, "status", "shipped");
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-SE"), 3);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-SE"), 0);
    cr_expect_eq(env_revisions(&E, "O-SHORT-DM"), 2);
    cr_assert(env_wait_statuses(&E, 5, 15000));
    static const char *const after[] = {"O-SHORT-NF/1 short",   "O-SHORT-NF/1 shipped",
                                        "O-SHORT-DM/1 short",   "O-SHORT-MM/1 short",
                                        "O-SHORT-DM/1 shipped", NULL};
    cr_expect(env_statuses_exactly(&E, after));
    /* Each revision reached omo.allocations once. */
    omo_test_records recs = {0};
    cr_assert(
        omo_test_kafka_read_all(omo_kafka_mock_bootstraps(E.kafka), "omo.allocations", &recs));
    int second = 0;
    for (size_t i = 0; i < recs.n; i++) {
        json_t *a = json_loads(recs.recs[i].value, 0, NULL);
        if (json_integer_value(json_object_get(a, "revision")) == 2)
            second++;
        json_decref(a);
    }
    cr_expect_eq(recs.n, ENV_NORDERS + 3, "allocations: %zu", recs.n);
    cr_expect_eq(second, 3);
    omo_test_records_free(&recs);
    passed = true;
}

/* order.cancelled after one of the order's two shipments was picked: both are cancelled, the
 * other leaves S-2's pick list, and the reservations are released. */
Test(picking, cancel_during_picking)
{
    env_start(&E, "cancel");
    char n1[16], n2[16];
    node_of("O-CANCEL", "O-CANCEL/1", n1, sizeof n1);
    node_of("O-CANCEL", "O-CANCEL/2", n2, sizeof n2);
    cr_assert_str_eq(n1, "S-1");
    cr_assert_str_eq(n2, "S-2");
    cr_assert(lists_order("S-1", "O-CANCEL"));
    cr_assert(lists_order("S-2", "O-CANCEL"));

    call_ok("POST", "/picks/O-CANCEL%2F1/confirm", ENV_S1_TOKEN, NULL, 200, "status", "picked");
    cr_expect(!lists_order("S-1", "O-CANCEL"));
    cr_expect(lists_order("S-2", "O-CANCEL"));

    cr_assert(env_produce(&E, "omo.orders", "O-CANCEL",
                          "{\"type\":\"order.cancelled\",\"order_id\":\"O-CANCEL\"}"));
    cr_assert(env_wait_revisions(&E, "O-CANCEL", 2, 20000), "the cancellation was not applied");
    json_t *rev = env_latest_revision(&E, "O-CANCEL");
    cr_expect_str_eq(env_json_str(rev, "status"), "cancelled");
    cr_expect_eq(json_array_size(json_object_get(rev, "shipments")), 0);
    json_decref(rev);

    cr_expect(!lists_order("S-2", "O-CANCEL"), "a cancelled shipment is still on S-2's list");
    cr_expect(!lists_order("S-1", "O-CANCEL"));
    cr_expect(lists_order("S-2", "O-S2"), "the other orders stay");
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-X1"), 0);
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-X1"), 1);
    cr_expect_eq(env_reserved(&E, "S-2", "SKU-X2"), 0);
    cr_expect_eq(env_on_hand(&E, "S-2", "SKU-X2"), 1);

    /* Nothing moves a cancelled shipment. */
    call_ok("POST", "/picks/O-CANCEL%2F2/confirm", ENV_S2_TOKEN, NULL, 409, "state", "cancelled");
    call_ok("POST", "/shipments/O-CANCEL%2F1/ship", ENV_S1_TOKEN, NULL, 409, "state", "cancelled");
    cr_expect_eq(env_revisions(&E, "O-CANCEL"), 2);

    json_t *j = call("GET", "/orders/O-CANCEL", ENV_OPS_TOKEN, NULL, 200, NULL, NULL);
    cr_expect_eq(json_array_size(json_object_get(j, "revisions")), 2);
    cr_expect_eq(json_array_size(json_object_get(j, "shipment_statuses")), 3);
    json_decref(j);

    cr_assert(env_wait_statuses(&E, 3, 15000));
    static const char *const expected[] = {"O-CANCEL/1 picked", "O-CANCEL/1 cancelled",
                                           "O-CANCEL/2 cancelled", NULL};
    cr_expect(env_statuses_exactly(&E, expected));
    passed = true;
}

/* What a refused call leaves behind: nothing. */
typedef struct snapshot {
    long long on_hand1, reserved1, on_hand2, reserved2, revisions, applied, outbox;
} snapshot;

static snapshot take_snapshot(void)
{
    return (snapshot){env_on_hand(&E, "S-1", "SKU-R1"),
                      env_reserved(&E, "S-1", "SKU-R1"),
                      env_on_hand(&E, "S-1", "SKU-R2"),
                      env_reserved(&E, "S-1", "SKU-R2"),
                      env_revisions(&E, "O-REF"),
                      env_sql(&E, "SELECT count(*) FROM applied_events", NULL),
                      env_sql(&E, "SELECT count(*) FROM outbox", NULL)};
}

Test(picking, refused_calls_change_nothing)
{
    env_start(&E, "refused");
    char node[16];
    node_of("O-REF", "O-REF/1", node, sizeof node);
    cr_assert_str_eq(node, "S-1");
    snapshot before = take_snapshot();
    cr_assert_eq(before.on_hand1, 5);
    cr_assert_eq(before.reserved1, 2);
    cr_assert_eq(before.reserved2, 1);
    const char *confirm = "/picks/O-REF%2F1/confirm";
    const char *whole = "{\"lines\":[{\"line_id\":\"1\",\"picked\":2}]}";

    /* Tokens: none, unknown, in the query of a POST, another store's. */
    call_ok("POST", confirm, NULL, whole, 401, NULL, NULL);
    call_ok("POST", confirm, "not-a-token", whole, 401, NULL, NULL);
    call_ok("POST", "/picks/O-REF%2F1/confirm?token=" ENV_S1_TOKEN, NULL, whole, 401, NULL, NULL);
    call_ok("GET", "/stores/S-1/picklist", NULL, NULL, 401, NULL, NULL);
    call_ok("GET", "/stores/S-1/picklist?token=wrong", NULL, NULL, 401, NULL, NULL);
    call_ok("POST", confirm, ENV_S2_TOKEN, whole, 403, "shipment_id", "O-REF/1");
    call_ok("POST", "/shipments/O-REF%2F1/ship", ENV_S2_TOKEN, NULL, 403, NULL, NULL);
    call_ok("POST", "/picks/O-S2%2F1/confirm", ENV_S1_TOKEN, NULL, 403, NULL, NULL);
    call_ok("GET", "/stores/S-1/picklist", ENV_S2_TOKEN, NULL, 403, "store_id", "S-1");
    call_ok("GET", "/orders/O-REF", ENV_S1_TOKEN, NULL, 403, NULL, NULL);

    /* Unknown shipments. */
    call_ok("POST", "/picks/O-NOPE%2F1/confirm", ENV_OPS_TOKEN, whole, 404, "shipment_id",
            "O-NOPE/1");
    call_ok("POST", "/picks/O-REF%2F9/confirm", ENV_OPS_TOKEN, whole, 404, NULL, NULL);
    call_ok("POST", "/shipments/O-REF%2F9/ship", ENV_OPS_TOKEN, NULL, 404, NULL, NULL);

    /* Malformed bodies: 400 naming the field. */
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"lines\":[{\"line_id\":\"1\"}]}", "lines[0].picked"},
        {"{\"lines\":[{\"line_id\":\"1\",\"picked\":\"two\"}]}", "lines[0].picked"},
        {"{\"lines\":[{\"line_id\":\"1\",\"picked\":-1,\"reason\":\"damaged\"}]}",
         "lines[0].picked"},
        {"{\"lines\":[{\"line_id\":\"1\",\"picked\":1,\"reason\":\"lost\"}]}", "lines[0].reason"},
        {"{\"lines\":[{\"picked\":1,\"reason\":\"damaged\"}]}", "lines[0].line_id"},
        {"{\"lines\":[{\"line_id\":\"1\",\"picked\":2},{\"line_id\":\"1\",\"picked\":2}]}",
         "lines[1].line_id"},
        {"{\"lines\":{\"line_id\":\"1\",\"picked\":2}}", "lines"},
        /* short without a reason */
        {"{\"lines\":[{\"line_id\":\"1\",\"picked\":1}]}", "lines[0]"},
        /* more than the tote holds, after a valid short of line 2: neither is applied */
        {"{\"lines\":[{\"line_id\":\"2\",\"picked\":0,\"reason\":\"damaged\"},"
         "{\"line_id\":\"1\",\"picked\":3}]}",
         "lines[1]"},
        {"{\"lines\":[{\"line_id\":\"7\",\"picked\":0,\"reason\":\"damaged\"}]}", "lines[0]"},
        {"{\"lines\":[{\"line_id\":\"1\",\"picked\":1", ""},
        {"[1,2]", ""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = call("POST", confirm, ENV_S1_TOKEN, bad[i].body, 400, "field", bad[i].field);
        cr_expect(env_json_str(j, "error")[0], "400 without an error text for %s", bad[i].body);
        json_decref(j);
    }
    /* Steps out of turn. */
    call_ok("POST", "/shipments/O-REF%2F1/ship", ENV_S1_TOKEN, NULL, 409, "state", "allocated");
    call_ok("POST", "/shipments/O-REF%2F1/collect", ENV_S1_TOKEN, NULL, 400, "field",
            "shipment_id");

    snapshot after = take_snapshot();
    cr_expect_eq(after.on_hand1, before.on_hand1);
    cr_expect_eq(after.reserved1, before.reserved1);
    cr_expect_eq(after.on_hand2, before.on_hand2);
    cr_expect_eq(after.reserved2, before.reserved2);
    cr_expect_eq(after.revisions, before.revisions);
    cr_expect_eq(after.applied, before.applied, "a refused call was recorded as applied");
    cr_expect_eq(after.outbox, before.outbox, "a refused call produced output");
    cr_expect(lists_order("S-1", "O-REF"), "a refused call took the tote off the list");
    size_t total = 0;
    cr_expect_eq(env_status_count(&E, "O-REF/1", "picked", &total), 0);
    cr_expect_eq(total, 0);

    /* And the shipment is as good as new: a plain confirm goes through, once. */
    call_ok("POST", confirm, ENV_S1_TOKEN, whole, 200, "status", "picked");
    call_ok("POST", confirm, ENV_S1_TOKEN, whole, 409, "state", "picked");
    cr_expect_eq(env_on_hand(&E, "S-1", "SKU-R1"), 5);
    cr_expect_eq(env_reserved(&E, "S-1", "SKU-R1"), 2);
    cr_expect_eq(env_revisions(&E, "O-REF"), 1);
    cr_assert(env_wait_statuses(&E, 1, 15000));
    static const char *const expected[] = {"O-REF/1 picked", NULL};
    cr_expect(env_statuses_exactly(&E, expected));
    passed = true;
}
