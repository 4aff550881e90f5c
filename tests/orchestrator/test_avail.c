/* Availability, promises, checkout holds and node pauses in the engine (contract section 10):
 * - over the example day, with holds placed, consumed, released and expired and nodes paused
 *   and resumed at random, every promise equals the decision of the order that follows it, an
 *   order naming a hold gets the hold's plan, and after every kind of event each record's ATP
 *   is on hand - reserved - held - safety with held counted independently from the holds;
 * - holds keep their units from others, give them back when they end, and retry backorders;
 * - a paused node takes nothing, explain names the pause, resource moves its shipments;
 * - promises from several threads at once give the serial answers. */
#include "engine.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static omo_network *net;
static omo_rules *rules;
static omo_engine *eng;
static char *last_alloc; /* the latest revision the sink saw, as JSON */
static char *buf;
static size_t cap;

static void on_alloc(void *ctx, const omo_allocation *a)
{
    (void)ctx;
    size_t n = omo_allocation_json(a, net, &buf, &cap);
    free(last_alloc);
    last_alloc = strndup(buf, n - 1);
}

static void open_world(const char *network, size_t nlen, const char *routing, size_t rlen)
{
    omo_diag diag = {0};
    net = nlen ? omo_network_parse("net.yaml", network, nlen, &diag)
               : omo_network_load(network, &diag);
    cr_assert_not_null(net, "%s", diag.count ? diag.lines[0] : "");
    rules = rlen ? omo_rules_parse("rules.yaml", routing, rlen, net, &diag)
                 : omo_rules_load(routing, net, &diag);
    cr_assert_not_null(rules, "%s", diag.count ? diag.lines[0] : "");
    eng = omo_engine_create(net, rules, on_alloc, NULL);
}

static void teardown(void)
{
    omo_engine_destroy(eng);
    omo_rules_destroy(rules);
    omo_network_destroy(net);
    free(buf);
    free(last_alloc);
    buf = last_alloc = NULL;
    cap = 0;
}

static omo_apply_result apply(const char *json)
{
    omo_event ev;
    omo_event_error err;
    cr_assert(omo_event_parse(json, strlen(json), net, &ev, &err), "%s: %s", json, err.message);
    return omo_engine_apply(eng, &ev, &err);
}

/* An allocation as a promise states it: no order id, revision, rules version or shipment ids. */
static json_t *as_option(const char *alloc_json)
{
    json_t *j = json_loads(alloc_json, 0, NULL);
    cr_assert_not_null(j);
    json_object_del(j, "order_id");
    json_object_del(j, "revision");
    json_object_del(j, "rules_version");
    json_object_del(j, "promised_hours");
    json_object_del(j, "promised_by");
    size_t i;
    json_t *sh;
    json_array_foreach(json_object_get(j, "shipments"), i, sh) json_object_del(sh, "shipment_id");
    return j;
}

static char *promise(omo_reader *rd, const omo_event *ev)
{
    char *out = NULL;
    size_t ocap = 0;
    omo_alloc_status st;
    int64_t obj;
    size_t n = omo_engine_promise(eng, rd, ev, ev->at_ms, &out, &ocap, &st, &obj);
    cr_assert_gt(n, 0);
    return out;
}

static int64_t stock_atp(const char *node, const char *sku, int64_t *held)
{
    int sk = omo_inventory_sku(omo_engine_inventory(eng), sku, false);
    const omo_stock *st = sk < 0 ? NULL
                                 : omo_inventory_get(omo_engine_inventory(eng),
                                                     omo_network_find(net, node), sk, false);
    if (!st)
        return *held = 0, 0;
    omo_avail a;
    omo_engine_avail(eng, st, NULL, &a);
    *held = a.held;
    return a.atp;
}

/* ---- the example day ---------------------------------------------------------------------- */

typedef struct live_hold {
    char id[32];
    int node[16], sku[16];
    int64_t qty[16];
    int n;
    bool live;
} live_hold;

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The independent count of held units, per node and SKU: what the live holds' options say. */
#define MAX_SKUS 4096
static int64_t *held_count;

static void count_hold(live_hold *h, int sign)
{
    for (int k = 0; k < h->n; k++)
        held_count[(size_t)h->node[k] * MAX_SKUS + (size_t)h->sku[k]] += sign * h->qty[k];
    h->live = sign > 0;
}

static void check_every_record(const char *after)
{
    omo_inventory *inv = omo_engine_inventory(eng);
    size_t n = omo_inventory_nrecords(inv);
    for (size_t i = 0; i < n; i++) {
        const omo_stock *st = omo_inventory_at(inv, (int)i);
        omo_avail a;
        omo_engine_avail(eng, st, NULL, &a);
        cr_assert_lt(st->sku, MAX_SKUS);
        int64_t held = held_count[(size_t)st->node * MAX_SKUS + (size_t)st->sku];
        cr_assert_eq(a.held, held, "after %s: %s/%s holds %lld, the holds say %lld", after,
                     net->nodes[st->node].id, omo_inventory_sku_name(inv, st->sku),
                     (long long)a.held, (long long)held);
        int64_t safety = net->nodes[st->node].safety_stock;
        for (size_t r = 0; r < rules->nrules; r++)
            if (rules->rules[r].safety_stock >= 0 && rules->rules[r].node == st->node &&
                !rules->rules[r].channel && !rules->rules[r].service && !rules->rules[r].sku &&
                !rules->rules[r].sku_tag)
                safety = rules->rules[r].safety_stock;
        int64_t want = st->on_hand - st->reserved - held - safety;
        if (want < 0 || omo_engine_node_paused(eng, st->node, NULL))
            want = 0;
        cr_assert_eq(a.atp, want, "after %s: %s/%s atp %lld, expected %lld", after,
                     net->nodes[st->node].id, omo_inventory_sku_name(inv, st->sku),
                     (long long)a.atp, (long long)want);
        cr_assert_eq(a.safety, safety);
    }
}

static void note_hold(live_hold *h, const char *id)
{
    bool live = false;
    char *j = omo_engine_hold_json(eng, id, &live);
    cr_assert_not_null(j);
    json_t *root = json_loads(j, 0, NULL);
    free(j);
    memset(h, 0, sizeof *h);
    snprintf(h->id, sizeof h->id, "%s", id);
    h->live = live;
    size_t i, l;
    json_t *sh, *line;
    json_array_foreach(json_object_get(json_object_get(root, "option"), "shipments"), i, sh)
    {
        int node = omo_network_find(net, json_string_value(json_object_get(sh, "node_id")));
        json_array_foreach(json_object_get(sh, "lines"), l, line)
        {
            int sku = omo_inventory_sku(omo_engine_inventory(eng),
                                        json_string_value(json_object_get(line, "sku")), false);
            int k = 0;
            while (k < h->n && (h->node[k] != node || h->sku[k] != sku))
                k++;
            if (k == h->n) {
                cr_assert_lt(h->n, 16);
                h->node[k] = node, h->sku[k] = sku, h->qty[k] = 0, h->n++;
            }
            h->qty[k] += json_integer_value(json_object_get(line, "qty"));
        }
    }
    json_decref(root);
}

Test(avail, promise_is_the_decision_over_a_day, .fini = teardown, .timeout = 120)
{
    open_world(OMO_SOURCE_DIR "/config/network.yaml", 0, OMO_SOURCE_DIR "/config/routing.yaml", 0);
    FILE *f = fopen(OMO_SOURCE_DIR "/config/day.jsonl", "r");
    cr_assert_not_null(f);
    omo_reader *rd = omo_reader_create(eng);
    static live_hold holds[512];
    held_count = calloc(net->nnodes * MAX_SKUS, sizeof(int64_t));
    int nholds = 0, paused = -1, compared = 0, via_hold = 0, pauses = 0, expired = 0, events = 0;
    char *line = NULL, json[4096];
    size_t lcap = 0;
    ssize_t len;
    omo_event ev;
    omo_event_error err;
    while ((len = getline(&line, &lcap, f)) > 0) {
        line[strcspn(line, "\n")] = 0;
        if (!omo_event_parse(line, strlen(line), net, &ev, &err))
            continue; /* the day's malformed lines */
        events++;
        if (ev.type == OMO_EV_ORDER_CREATED && next_rand() % 6 == 0 && nholds < 512) {
            /* An abandoned cart: a hold on the same basket that no order follows, placed before
             * the promise, so that both see it. */
            char hold_id[32];
            snprintf(hold_id, sizeof hold_id, "gone-%d", nholds);
            json_t *o = json_loads(line, 0, NULL);
            json_object_set_new(o, "type", json_string("hold.placed"));
            json_object_set_new(o, "hold_id", json_string(hold_id));
            json_object_set(o, "at", json_object_get(o, "created_at"));
            char *h = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            cr_assert_eq(apply(h), OMO_APPLY_OK);
            free(h);
            note_hold(&holds[nholds], hold_id);
            count_hold(&holds[nholds++], 1);
            cr_assert(omo_event_parse(line, strlen(line), net, &ev, &err));
        }
        if (ev.type == OMO_EV_ORDER_CREATED) {
            char *opt = promise(rd, &ev);
            /* Some orders go through a checkout hold first: placed, then consumed. */
            bool held = next_rand() % 9 == 0 && nholds < 512;
            char hold_id[32] = "";
            if (held) {
                snprintf(hold_id, sizeof hold_id, "cart-%d", nholds);
                json_t *o = json_loads(line, 0, NULL);
                json_object_set_new(o, "type", json_string("hold.placed"));
                json_object_set_new(o, "hold_id", json_string(hold_id));
                json_object_set(o, "at", json_object_get(o, "created_at"));
                json_object_del(o, "order_id");
                json_object_del(o, "created_at");
                char *h = json_dumps(o, JSON_COMPACT);
                cr_assert_eq(apply(h), OMO_APPLY_OK);
                cr_assert_eq(apply(h), OMO_APPLY_DUPLICATE, "a repeated hold id changes nothing");
                free(h);
                note_hold(&holds[nholds], hold_id);
                count_hold(&holds[nholds++], 1);
                check_every_record("hold.placed");
                /* The hold's plan is the promise. */
                char *hj = omo_engine_hold_json(eng, hold_id, NULL);
                json_t *hr = json_loads(hj, 0, NULL), *po = json_loads(opt, 0, NULL);
                free(hj);
                json_object_del(po, "promised_hours");
                json_object_del(po, "promised_by");
                json_t *ho = json_object_get(hr, "option");
                json_object_del(ho, "promised_hours");
                json_object_del(ho, "promised_by");
                cr_assert(json_equal(po, ho), "hold %s: %s", hold_id, opt);
                json_decref(hr);
                json_decref(po);
                json_object_set_new(o, "type", json_string("order.created"));
                json_object_set(o, "created_at", json_object_get(o, "at"));
                json_object_set_new(o, "order_id", json_string(ev.order_id));
                json_object_del(o, "at");
                char *oj = json_dumps(o, JSON_COMPACT);
                json_decref(o);
                cr_assert(omo_event_parse(oj, strlen(oj), net, &ev, &err));
                free(oj);
            }
            free(last_alloc);
            last_alloc = NULL;
            cr_assert_eq(omo_engine_apply(eng, &ev, &err), OMO_APPLY_OK);
            cr_assert_not_null(last_alloc);
            /* The first revision is the order's decision: the promise made just before it. */
            json_t *a =
                json_loads(strstr(last_alloc, "\"revision\":1,") ? last_alloc : "null", 0, NULL);
            cr_assert_not_null(a, "order %s: its first revision is not the last one", ev.order_id);
            json_decref(a);
            json_t *got = as_option(last_alloc), *want = as_option(opt);
            char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS),
                 *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
            cr_assert_str_eq(g, w, "order %s%s%s: promised %s, decided %s", ev.order_id,
                             held ? " after hold " : "", hold_id, w, g);
            free(g);
            free(w);
            json_decref(got);
            json_decref(want);
            free(opt);
            compared++;
            if (held) {
                count_hold(&holds[nholds - 1], -1); /* consumed by its order */
                via_hold++;
            }
        } else {
            cr_assert_neq(omo_engine_apply(eng, &ev, &err), OMO_APPLY_INVALID, "%s", line);
        }
        /* Now and then a hold ends on its own, or a node is paused and later resumed. */
        uint64_t r = next_rand() % 100;
        if (r < 2) {
            for (int i = 0; i < nholds; i++)
                if (holds[i].live) {
                    snprintf(json, sizeof json, "{\"type\":\"hold.%s\",\"hold_id\":\"%s\"}",
                             r ? "expired" : "released", holds[i].id);
                    cr_assert_eq(apply(json), OMO_APPLY_OK);
                    cr_assert_eq(apply(json), OMO_APPLY_DUPLICATE);
                    count_hold(&holds[i], -1);
                    expired++;
                    check_every_record("hold.expired");
                    break;
                }
        } else if (r < 4 && ev.type != OMO_EV_STOCK_SNAPSHOT) {
            if (paused < 0) {
                paused = (int)(next_rand() % net->nnodes);
                snprintf(json, sizeof json,
                         "{\"type\":\"node.paused\",\"node_id\":\"%s\",\"reason\":\"count\","
                         "\"resource\":%s}",
                         net->nodes[paused].id, next_rand() % 2 ? "true" : "false");
                pauses++;
            } else {
                snprintf(json, sizeof json, "{\"type\":\"node.resumed\",\"node_id\":\"%s\"}",
                         net->nodes[paused].id);
                paused = -1;
            }
            cr_assert_eq(apply(json), OMO_APPLY_OK, "%s", json);
            check_every_record(json);
        }
        if (events % 25 == 0)
            check_every_record(line);
    }
    check_every_record("the day");
    free(line);
    fclose(f);
    omo_reader_destroy(rd);
    free(held_count);
    cr_assert_geq(compared, 2000);
    cr_assert_geq(via_hold, 100);
    cr_assert_geq(pauses, 10);
    cr_assert_geq(expired, 10);
    fprintf(stderr,
            "avail/day: %d promises equal to their decisions (%d through a hold), %d pauses, %d "
            "holds ended early\n",
            compared, via_hold, pauses, expired);
}

/* ---- holds and pauses on a small network ---------------------------------------------------- */

static const char NETWORK[] =
    "nodes:\n"
    "  - {id: DC-1, type: warehouse, lat: 40.5, lon: -75.0, pick_cost_per_unit: 0.40,\n"
    "     handling_cost: 1.00, handling_hours: 24}\n"
    "  - {id: S-1, type: store, lat: 40.01, lon: -75.01, pickup: true,\n"
    "     pick_cost_per_unit: 0.10, handling_cost: 0.50, handling_hours: 4}\n";

static const char RULES[] = "version: 1\n"
                            "objective: {hour_cost: 0.10, split_penalty: 3.00}\n"
                            "services:\n"
                            "  standard:\n"
                            "    zones: [{max_km: 100, cost: 4.00, hours: 24}]\n";

static void small_world(void)
{
    open_world(NETWORK, strlen(NETWORK), RULES, strlen(RULES));
}

#define ORDER(id, qty, extra)                                                                      \
    "{\"type\":\"order.created\",\"order_id\":\"" id "\",\"created_at\":\"2026-11-23T10:00:00Z\"," \
    "\"customer\":{\"lat\":40.0,\"lon\":-75.0},\"delivery\":{\"method\":\"ship\",\"service\":"     \
    "\"standard\"},\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":" #qty "}]" extra "}"
#define HOLD(id, qty)                                                                              \
    "{\"type\":\"hold.placed\",\"hold_id\":\"" id "\",\"ttl_seconds\":60,"                         \
    "\"at\":\"2026-11-23T09:59:00Z\",\"customer\":{\"lat\":40.0,\"lon\":-75.0},"                   \
    "\"delivery\":{\"method\":\"ship\",\"service\":\"standard\"},"                                 \
    "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":" #qty "}]}"

Test(avail, holds_keep_units_and_give_them_back, .fini = teardown)
{
    small_world();
    cr_assert_eq(apply("{\"type\":\"stock.snapshot\",\"event_id\":\"s1\",\"node_id\":\"S-1\","
                       "\"sku\":\"A\",\"on_hand\":5}"),
                 OMO_APPLY_OK);
    int64_t held;
    cr_assert_eq(stock_atp("S-1", "A", &held), 5);
    cr_assert_eq(apply(HOLD("H1", 4)), OMO_APPLY_OK);
    cr_assert_eq(stock_atp("S-1", "A", &held), 1);
    cr_assert_eq(held, 4);
    char *hj = omo_engine_hold_json(eng, "H1", NULL);
    cr_assert(strstr(hj, "\"expires_at\":\"2026-11-23T10:00:00Z\""), "%s", hj);
    free(hj);
    /* Someone else's order finds only what the hold left. */
    cr_assert_eq(apply(ORDER("O1", 2, "")), OMO_APPLY_OK);
    cr_assert(strstr(last_alloc, "\"status\":\"partial\""), "%s", last_alloc);
    /* The hold expires: its units go back, and the backorder takes them. */
    cr_assert_eq(apply("{\"type\":\"hold.expired\",\"hold_id\":\"H1\","
                       "\"at\":\"2026-11-23T10:01:00Z\"}"),
                 OMO_APPLY_OK);
    cr_assert(strstr(last_alloc, "\"revision\":2,\"status\":\"allocated\""), "%s", last_alloc);
    cr_assert_eq(stock_atp("S-1", "A", &held), 3);
    cr_assert_eq(held, 0);
    cr_assert_eq(apply("{\"type\":\"hold.released\",\"hold_id\":\"H1\"}"), OMO_APPLY_DUPLICATE);
    omo_event ev;
    omo_event_error err;
    const char *unknown = "{\"type\":\"hold.released\",\"hold_id\":\"nope\"}";
    cr_assert(omo_event_parse(unknown, strlen(unknown), net, &ev, &err));
    cr_assert_eq(omo_engine_apply(eng, &ev, &err), OMO_APPLY_INVALID);
    cr_assert_str_eq(err.reason, "unknown_hold");
    /* A hold consumed by its order: the order gets the held units, nothing stays held. */
    cr_assert_eq(apply(HOLD("H2", 3)), OMO_APPLY_OK);
    cr_assert_eq(stock_atp("S-1", "A", &held), 0);
    cr_assert_eq(apply(ORDER("O2", 3, ",\"hold_id\":\"H2\"")), OMO_APPLY_OK);
    cr_assert(strstr(last_alloc, "\"status\":\"allocated\""), "%s", last_alloc);
    cr_assert(strstr(last_alloc, "\"node_id\":\"S-1\""), "%s", last_alloc);
    cr_assert_eq(stock_atp("S-1", "A", &held), 0);
    cr_assert_eq(held, 0);
    cr_assert_eq(omo_engine_live_holds(eng), 0);
    /* A SKU nobody ever held is promised as a backorder, and nothing is interned for it. */
    const char *unknown_sku =
        "{\"type\":\"order.created\",\"order_id\":\"P\",\"created_at\":\"2026-11-23T10:00:00Z\","
        "\"customer\":{\"lat\":40.0,\"lon\":-75.0},\"delivery\":{\"method\":\"ship\","
        "\"service\":\"standard\"},\"lines\":[{\"line_id\":\"1\",\"sku\":\"NEVER\",\"qty\":1},"
        "{\"line_id\":\"2\",\"sku\":\"A\",\"qty\":1}]}";
    cr_assert(omo_event_parse(unknown_sku, strlen(unknown_sku), net, &ev, &err));
    omo_reader *rd = omo_reader_create(eng);
    char *p = promise(rd, &ev);
    omo_reader_destroy(rd);
    cr_assert(strstr(p, "\"status\":\"backordered\""), "%s", p);
    cr_assert(strstr(p, "\"sku\":\"NEVER\",\"qty\":1"), "%s", p);
    free(p);
    cr_assert_lt(omo_inventory_sku(omo_engine_inventory(eng), "NEVER", false), 0);
    /* Out of range TTLs are refused where they are. */
    const char *bad = "{\"type\":\"hold.placed\",\"hold_id\":\"x\",\"ttl_seconds\":14401,"
                      "\"customer\":{\"lat\":40,\"lon\":-75},\"delivery\":{\"method\":\"ship\","
                      "\"service\":\"standard\"},\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\","
                      "\"qty\":1}]}";
    cr_assert_not(omo_event_parse(bad, strlen(bad), net, &ev, &err));
    cr_assert_str_eq(err.field, "ttl_seconds");
}

typedef struct explained {
    char *text;
} explained;

static void keep_explanation(void *ctx, const omo_explanation *ex)
{
    explained *e = ctx;
    free(e->text);
    e->text = omo_explain_text(ex, net);
}

Test(avail, a_paused_node_takes_nothing, .fini = teardown)
{
    small_world();
    cr_assert_eq(apply("{\"type\":\"stock.snapshot\",\"event_id\":\"s1\",\"node_id\":\"S-1\","
                       "\"sku\":\"A\",\"on_hand\":5}"),
                 OMO_APPLY_OK);
    cr_assert_eq(apply("{\"type\":\"stock.snapshot\",\"event_id\":\"d1\",\"node_id\":\"DC-1\","
                       "\"sku\":\"A\",\"on_hand\":1}"),
                 OMO_APPLY_OK);
    cr_assert_eq(apply(ORDER("O1", 2, "")), OMO_APPLY_OK);
    cr_assert(strstr(last_alloc, "\"node_id\":\"S-1\""), "the cheap store first: %s", last_alloc);
    /* Paused with its shipments re-sourced: O1 moves to what DC-1 has. */
    cr_assert_eq(apply("{\"type\":\"node.paused\",\"node_id\":\"S-1\",\"reason\":\"stock count\","
                       "\"resource\":true}"),
                 OMO_APPLY_OK);
    cr_assert(strstr(last_alloc, "\"revision\":2,\"status\":\"partial\""), "%s", last_alloc);
    cr_assert_null(strstr(last_alloc, "\"node_id\":\"S-1\""), "%s", last_alloc);
    int64_t held;
    cr_assert_eq(stock_atp("S-1", "A", &held), 0, "a paused node promises nothing");
    explained ex = {0};
    omo_engine_explain(eng, "O2", keep_explanation, &ex);
    cr_assert_eq(apply(ORDER("O2", 1, "")), OMO_APPLY_OK);
    cr_assert(strstr(last_alloc, "\"status\":\"backordered\""), "%s", last_alloc);
    cr_assert_not_null(ex.text);
    cr_assert(strstr(ex.text, "paused: stock count"), "%s", ex.text);
    free(ex.text);
    omo_engine_explain(eng, NULL, NULL, NULL);
    /* Resumed: its stock is there again, for the backorders first. */
    cr_assert_eq(apply("{\"type\":\"node.resumed\",\"node_id\":\"S-1\"}"), OMO_APPLY_OK);
    cr_assert_eq(apply("{\"type\":\"node.resumed\",\"node_id\":\"S-1\"}"), OMO_APPLY_DUPLICATE);
    cr_assert(strstr(last_alloc, "\"status\":\"allocated\""), "%s", last_alloc);
    cr_assert_eq(stock_atp("S-1", "A", &held), 2); /* 5 - O1 back at S-1 (2) - O2 (1) */
}

/* ---- several readers at once ------------------------------------------------------------- */

#define PAR_ORDERS  300
#define PAR_THREADS 4

static omo_event par_orders[PAR_ORDERS];
static char *par_serial[PAR_ORDERS];
static int par_n;

static void *par_run(void *arg)
{
    (void)arg;
    omo_reader *rd = omo_reader_create(eng);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < par_n; i++) {
            char *p = promise(rd, &par_orders[i]);
            if (strcmp(p, par_serial[i])) {
                fprintf(stderr, "reader: %s\nserial: %s\n", p, par_serial[i]);
                abort();
            }
            free(p);
        }
    omo_reader_destroy(rd);
    return NULL;
}

Test(avail, promises_side_by_side_answer_as_one, .fini = teardown, .timeout = 120)
{
    open_world(OMO_SOURCE_DIR "/config/network.yaml", 0, OMO_SOURCE_DIR "/config/routing.yaml", 0);
    FILE *f = fopen(OMO_SOURCE_DIR "/config/day.jsonl", "r");
    cr_assert_not_null(f);
    char *line = NULL;
    size_t lcap = 0;
    omo_event_error err;
    while (getline(&line, &lcap, f) > 0) {
        omo_event *ev = &par_orders[par_n < PAR_ORDERS ? par_n : PAR_ORDERS - 1];
        if (!omo_event_parse(line, strlen(line), net, ev, &err))
            continue;
        if (ev->type == OMO_EV_ORDER_CREATED) {
            if (par_n < PAR_ORDERS)
                par_n++;
            continue;
        }
        (void)omo_engine_apply(eng, ev, &err); /* the stock, orders left undecided */
    }
    free(line);
    fclose(f);
    omo_reader *rd = omo_reader_create(eng);
    for (int i = 0; i < par_n; i++)
        par_serial[i] = promise(rd, &par_orders[i]);
    omo_reader_destroy(rd);
    pthread_t t[PAR_THREADS];
    for (int i = 0; i < PAR_THREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, par_run, NULL), 0);
    for (int i = 0; i < PAR_THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < par_n; i++)
        free(par_serial[i]);
    cr_assert_eq(par_n, PAR_ORDERS);
}
