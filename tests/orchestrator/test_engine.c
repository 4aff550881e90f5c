/* The engine's store-side life of a shipment: the state machine, short picks re-sourced,
 * ship and collect, cancellation during picking, fulfilment deltas. */
#include "engine.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static const char NETWORK[] =
    "nodes:\n"
    "  - {id: DC-1, type: warehouse, lat: 40.0, lon: -75.0, pick_cost_per_unit: 0.40,\n"
    "     handling_cost: 1.00, handling_hours: 24}\n"
    "  - {id: S-1, type: store, lat: 40.01, lon: -75.01, pickup: true,\n"
    "     pick_cost_per_unit: 0.50, handling_cost: 1.50, handling_hours: 4}\n"
    "  - {id: S-2, type: store, lat: 40.02, lon: -75.02, pickup: true,\n"
    "     pick_cost_per_unit: 0.50, handling_cost: 1.50, handling_hours: 4}\n";

static const char RULES[] = "version: 1\n"
                            "objective: {hour_cost: 0.10, split_penalty: 3.00}\n"
                            "services:\n"
                            "  standard:\n"
                            "    zones: [{max_km: 50, cost: 4.00, hours: 24}]\n"
                            "pickup:\n"
                            "  transfer:\n"
                            "    from: [warehouse]\n"
                            "    zones: [{max_km: 300, cost: 2.00, hours: 48}]\n";

typedef struct seen {
    char allocs[32][2048];
    int nallocs;
    char statuses[32][512];
    int nstatuses;
} seen;

static omo_network *net;
static omo_rules *rules;
static omo_engine *eng;
static seen out;
static char *buf;
static size_t cap;

static void on_alloc(void *ctx, const omo_allocation *a)
{
    (void)ctx;
    size_t n = omo_allocation_json(a, net, &buf, &cap);
    cr_assert_lt(out.nallocs, 32);
    snprintf(out.allocs[out.nallocs++], sizeof out.allocs[0], "%.*s", (int)n - 1, buf);
}

static void on_status(void *ctx, const omo_shipment_status *st)
{
    (void)ctx;
    size_t n = omo_shipment_status_json(st, net, &buf, &cap);
    cr_assert_lt(out.nstatuses, 32);
    snprintf(out.statuses[out.nstatuses++], sizeof out.statuses[0], "%.*s", (int)n - 1, buf);
}

static void setup(void)
{
    omo_diag diag = {0};
    net = omo_network_parse("net.yaml", NETWORK, strlen(NETWORK), &diag);
    cr_assert_not_null(net);
    rules = omo_rules_parse("rules.yaml", RULES, strlen(RULES), net, &diag);
    cr_assert_not_null(rules);
    eng = omo_engine_create(net, rules, on_alloc, NULL);
    omo_engine_set_status_sink(eng, on_status, NULL);
    memset(&out, 0, sizeof out);
}

static void teardown(void)
{
    omo_engine_destroy(eng);
    omo_rules_destroy(rules);
    omo_network_destroy(net);
    free(buf);
    buf = NULL;
    cap = 0;
}

/* Applies one JSON event; returns the result and fills err. */
static omo_apply_result apply(const char *json, omo_event_error *err)
{
    static omo_event ev;
    memset(err, 0, sizeof *err);
    cr_assert(omo_event_parse(json, strlen(json), net, &ev, err), "%s: %s", json, err->message);
    return omo_engine_apply(eng, &ev, err);
}

static void ok(const char *json)
{
    omo_event_error err;
    cr_assert_eq(apply(json, &err), OMO_APPLY_OK, "%s: %s", json, err.message);
}

static int64_t on_hand(const char *node, const char *sku)
{
    omo_inventory *inv = omo_engine_inventory(eng);
    const omo_stock *st = omo_inventory_get(inv, omo_network_find(net, node),
                                            omo_inventory_sku(inv, sku, false), false);
    return st ? st->on_hand : -1;
}

static int64_t reserved(const char *node, const char *sku)
{
    omo_inventory *inv = omo_engine_inventory(eng);
    const omo_stock *st = omo_inventory_get(inv, omo_network_find(net, node),
                                            omo_inventory_sku(inv, sku, false), false);
    return st ? st->reserved : -1;
}

#define SNAP(id, node, sku, n)                                                                     \
    "{\"type\":\"stock.snapshot\",\"event_id\":\"" id "\",\"node_id\":\"" node "\",\"sku\":\"" sku \
    "\",\"on_hand\":" #n ",\"at\":\"2026-11-23T08:00:00Z\"}"

static const char SHIP_ORDER[] =
    "{\"type\":\"order.created\",\"order_id\":\"W-1\",\"created_at\":\"2026-11-23T10:00:00Z\","
    "\"customer\":{\"lat\":40.0,\"lon\":-75.0},\"delivery\":{\"method\":\"ship\","
    "\"service\":\"standard\"},\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":2},"
    "{\"line_id\":\"2\",\"sku\":\"B\",\"qty\":1}]}";

/* S-1 is the cheapest node for W-1: it holds both SKUs, close and quick. */
static void stock_and_order(void)
{
    ok(SNAP("s1", "S-1", "A", 5));
    ok(SNAP("s2", "S-1", "B", 5));
    ok(SNAP("s3", "S-2", "A", 5));
    ok(SNAP("s4", "DC-1", "B", 50));
    ok(SHIP_ORDER);
    cr_assert_eq(out.nallocs, 1);
    cr_assert(strstr(out.allocs[0], "\"node_id\":\"S-1\""), "%s", out.allocs[0]);
    cr_assert_eq(reserved("S-1", "A"), 2);
}

TestSuite(engine, .init = setup, .fini = teardown);

Test(engine, confirm_then_ship_consumes_stock_and_reservation)
{
    stock_and_order();
    ok("{\"type\":\"pick.confirmed\",\"shipment_id\":\"W-1/1\",\"at\":\"2026-11-23T11:00:00Z\"}");
    cr_assert_eq(out.nstatuses, 1);
    cr_assert(strstr(out.statuses[0], "\"status\":\"picked\""), "%s", out.statuses[0]);
    cr_assert_eq(on_hand("S-1", "A"), 5, "picking moves nothing off the books");
    ok("{\"type\":\"shipment.shipped\",\"shipment_id\":\"W-1/1\"}");
    cr_assert(strstr(out.statuses[1], "\"status\":\"shipped\""), "%s", out.statuses[1]);
    cr_assert_eq(on_hand("S-1", "A"), 3);
    cr_assert_eq(reserved("S-1", "A"), 0);
    cr_assert_eq(on_hand("S-1", "B"), 4);
    cr_assert_eq(out.nallocs, 1, "no new revision for a pick or a ship");
}

Test(engine, impossible_moves_are_refused_with_the_state)
{
    stock_and_order();
    omo_event_error err;
    cr_assert_eq(apply("{\"type\":\"shipment.shipped\",\"shipment_id\":\"W-1/1\"}", &err),
                 OMO_APPLY_CONFLICT, "ship before pick");
    cr_assert_str_eq(err.field, "allocated");
    ok("{\"type\":\"pick.confirmed\",\"shipment_id\":\"W-1/1\"}");
    cr_assert_eq(apply("{\"type\":\"pick.confirmed\",\"shipment_id\":\"W-1/1\"}", &err),
                 OMO_APPLY_CONFLICT, "double confirm");
    cr_assert_str_eq(err.field, "picked");
    cr_assert_eq(apply("{\"type\":\"shipment.collected\",\"shipment_id\":\"W-1/1\"}", &err),
                 OMO_APPLY_INVALID, "a ship-from-store shipment is not collected");
    ok("{\"type\":\"shipment.shipped\",\"shipment_id\":\"W-1/1\"}");
    cr_assert_eq(apply("{\"type\":\"shipment.shipped\",\"shipment_id\":\"W-1/1\"}", &err),
                 OMO_APPLY_CONFLICT, "ship twice");
    cr_assert_str_eq(err.field, "shipped");
    cr_assert_eq(apply("{\"type\":\"pick.confirmed\",\"shipment_id\":\"W-1/9\"}", &err),
                 OMO_APPLY_INVALID, "unknown shipment");
    cr_assert_str_eq(err.field, "shipment_id");
    cr_assert_eq(out.nstatuses, 2, "refused moves emit nothing");
}

Test(engine, a_short_line_leaves_on_hand_and_is_resourced)
{
    stock_and_order();
    ok("{\"type\":\"pick.confirmed\",\"shipment_id\":\"W-1/1\",\"at\":\"2026-11-23T11:00:00Z\","
       "\"lines\":[{\"line_id\":\"1\",\"picked\":0,\"reason\":\"damaged\"}]}");
    cr_assert(strstr(out.statuses[0], "\"status\":\"short\""), "%s", out.statuses[0]);
    cr_assert_eq(on_hand("S-1", "A"), 3, "the two missing units left S-1");
    cr_assert_eq(reserved("S-1", "A"), 0);
    cr_assert_eq(out.nallocs, 2);
    /* The next revision keeps the tote at S-1 (line 2) and takes line 1 from S-2. */
    const char *rev = out.allocs[1];
    cr_assert(strstr(rev, "\"revision\":2"), "%s", rev);
    cr_assert(strstr(rev, "\"shipment_id\":\"W-1/1\",\"node_id\":\"S-1\""), "%s", rev);
    cr_assert(strstr(rev, "\"node_id\":\"S-2\""), "%s", rev);
    cr_assert(strstr(rev, "\"status\":\"allocated\""), "%s", rev);
    cr_assert_eq(reserved("S-2", "A"), 2);
    /* The short shipment still goes out with what was picked. */
    ok("{\"type\":\"shipment.shipped\",\"shipment_id\":\"W-1/1\"}");
    cr_assert_eq(on_hand("S-1", "B"), 4);
}

Test(engine, short_without_a_reason_or_over_picked_is_refused_whole)
{
    stock_and_order();
    omo_event_error err;
    cr_assert_eq(apply("{\"type\":\"pick.confirmed\",\"shipment_id\":\"W-1/1\",\"lines\":"
                       "[{\"line_id\":\"1\",\"picked\":1}]}",
                       &err),
                 OMO_APPLY_INVALID);
    cr_assert_str_eq(err.field, "lines[0]");
    cr_assert_eq(apply("{\"type\":\"pick.confirmed\",\"shipment_id\":\"W-1/1\",\"lines\":"
                       "[{\"line_id\":\"1\",\"picked\":3}]}",
                       &err),
                 OMO_APPLY_INVALID);
    cr_assert_eq(apply("{\"type\":\"pick.confirmed\",\"shipment_id\":\"W-1/1\",\"lines\":"
                       "[{\"line_id\":\"9\",\"picked\":0,\"reason\":\"not_found\"}]}",
                       &err),
                 OMO_APPLY_INVALID);
    cr_assert_eq(on_hand("S-1", "A"), 5, "nothing half-applied");
    cr_assert_eq(reserved("S-1", "A"), 2);
    cr_assert_eq(out.nstatuses, 0);
    cr_assert_eq(out.nallocs, 1);
}

Test(engine, cancel_during_picking_cancels_open_shipments_and_frees_stock)
{
    stock_and_order();
    ok("{\"type\":\"pick.confirmed\",\"shipment_id\":\"W-1/1\"}");
    ok("{\"type\":\"order.cancelled\",\"order_id\":\"W-1\",\"at\":\"2026-11-23T12:00:00Z\"}");
    cr_assert_eq(out.nstatuses, 2);
    cr_assert(strstr(out.statuses[1], "\"status\":\"cancelled\""), "%s", out.statuses[1]);
    cr_assert(strstr(out.allocs[1], "\"status\":\"cancelled\""), "%s", out.allocs[1]);
    cr_assert_eq(reserved("S-1", "A"), 0);
    cr_assert_eq(on_hand("S-1", "A"), 5);
    omo_picklist pl;
    cr_assert(omo_engine_picklist(eng, omo_network_find(net, "S-1"), 0, 0, &pl));
    cr_assert_eq(pl.ntotes, 0, "a cancelled order's picks leave the list");
    omo_picklist_free(&pl);
    omo_event_error err;
    cr_assert_eq(apply("{\"type\":\"shipment.shipped\",\"shipment_id\":\"W-1/1\"}", &err),
                 OMO_APPLY_CONFLICT);
    cr_assert_str_eq(err.field, "cancelled");
}

Test(engine, pickup_collected_at_the_store)
{
    ok(SNAP("s1", "S-1", "A", 5));
    ok("{\"type\":\"order.created\",\"order_id\":\"C-1\",\"created_at\":\"2026-11-23T10:00:00Z\","
       "\"delivery\":{\"method\":\"pickup\",\"store_id\":\"S-1\"},"
       "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":1}]}");
    cr_assert(strstr(out.allocs[0], "\"method\":\"click_and_collect\""), "%s", out.allocs[0]);
    omo_picklist pl;
    cr_assert(omo_engine_picklist(eng, omo_network_find(net, "S-1"), 0, 0, &pl));
    cr_assert_eq(pl.ntotes, 1);
    cr_assert_str_eq(pl.totes[0].pickup_store, "S-1");
    cr_assert_eq(pl.totes[0].promised_ms, 1795428000000LL + 4 * 3600 * 1000,
                 "ready at decision time plus the store's handling hours");
    omo_picklist_free(&pl);
    ok("{\"type\":\"pick.confirmed\",\"shipment_id\":\"C-1/1\"}");
    ok("{\"type\":\"shipment.collected\",\"shipment_id\":\"C-1/1\"}");
    cr_assert(strstr(out.statuses[1], "\"status\":\"collected\""), "%s", out.statuses[1]);
    cr_assert_eq(on_hand("S-1", "A"), 4);
}

Test(engine, a_fulfilment_delta_consumes_the_reservation)
{
    stock_and_order();
    ok("{\"type\":\"stock.delta\",\"event_id\":\"f1\",\"node_id\":\"S-1\",\"sku\":\"A\","
       "\"delta\":-2,\"reason\":\"fulfilled\",\"order_id\":\"W-1\"}");
    cr_assert_eq(on_hand("S-1", "A"), 3);
    cr_assert_eq(reserved("S-1", "A"), 0);
    cr_assert_eq(out.nallocs, 1, "consuming a reservation is no new decision");
    ok("{\"type\":\"order.cancelled\",\"order_id\":\"W-1\"}");
    cr_assert_eq(on_hand("S-1", "A"), 3, "fulfilled units are never released");
    cr_assert_eq(reserved("S-1", "B"), 0);
}

/* Skipping regions by their bound is an optimisation only: on the example day (120 stores and
 * 10 warehouses across the country) it must decide exactly as looking at every node does. */
typedef struct capture {
    char *text;
    size_t len, cap;
    char *buf;
    size_t bufcap;
    const omo_network *net;
} capture;

static void capture_alloc(void *ctx, const omo_allocation *a)
{
    capture *c = ctx;
    size_t n = omo_allocation_json(a, c->net, &c->buf, &c->bufcap);
    if (c->len + n + 1 > c->cap) {
        c->cap = (c->len + n + 1) * 2;
        c->text = realloc(c->text, c->cap);
    }
    memcpy(c->text + c->len, c->buf, n);
    c->len += n;
    c->text[c->len] = 0;
}

#include "replay.h"

Test(engine_regions, skipping_regions_decides_as_looking_everywhere)
{
    omo_diag diag = {0};
    omo_network *n = omo_network_load(OMO_SOURCE_DIR "/config/network.yaml", &diag);
    cr_assert_not_null(n);
    omo_rules *r = omo_rules_load(OMO_SOURCE_DIR "/config/routing.yaml", n, &diag);
    cr_assert_not_null(r);
    capture c[2] = {{.net = n}, {.net = n}};
    uint64_t skipped[2];
    for (int i = 0; i < 2; i++) {
        omo_engine *e = omo_engine_create(n, r, capture_alloc, &c[i]);
        omo_engine_set_exhaustive(e, i == 1);
        omo_replay_stats st;
        cr_assert_eq(omo_replay_file(OMO_SOURCE_DIR "/config/day.jsonl", n, e, NULL, NULL, &st),
                     OMO_REPLAY_OK);
        skipped[i] = omo_engine_regions_skipped(e);
        omo_engine_destroy(e);
    }
    cr_assert_gt(skipped[0], 1000, "the example skips regions (%llu)",
                 (unsigned long long)skipped[0]);
    cr_assert_eq(skipped[1], 0);
    cr_assert_eq(c[0].len, c[1].len);
    cr_assert(!memcmp(c[0].text, c[1].text, c[0].len), "the decisions differ");
    for (int i = 0; i < 2; i++) {
        free(c[i].text);
        free(c[i].buf);
    }
    omo_rules_destroy(r);
    omo_network_destroy(n);
}
