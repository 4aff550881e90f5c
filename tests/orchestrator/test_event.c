/* Parsing and validation of input events (contract section 4). */
#include "event.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static const char NETWORK_YAML[] = "nodes:\n"
                                   "  - id: DC-EAST\n"
                                   "    type: warehouse\n"
                                   "    lat: 40.71\n"
                                   "    lon: -74.00\n"
                                   "    ship: true\n"
                                   "    pickup: false\n"
                                   "    pick_cost_per_unit: 0.40\n"
                                   "    handling_cost: 1.00\n"
                                   "    handling_hours: 24\n"
                                   "  - id: S-012\n"
                                   "    type: store\n"
                                   "    lat: 40.75\n"
                                   "    lon: -73.98\n"
                                   "    ship: true\n"
                                   "    pickup: true\n"
                                   "    pick_cost_per_unit: 0.80\n"
                                   "    handling_cost: 0.50\n"
                                   "    handling_hours: 2\n"
                                   "    safety_stock: 1\n";

static omo_network *net;
static omo_event ev;
static omo_event_error err;

static void setup(void)
{
    omo_diag diag = {0};
    net = omo_network_parse("network.yaml", NETWORK_YAML, sizeof NETWORK_YAML - 1, &diag);
    if (!net)
        omo_diag_print(&diag, stderr);
    omo_diag_clear(&diag);
    cr_assert_not_null(net, "the test network must load");
    memset(&ev, 0, sizeof ev);
    memset(&err, 0, sizeof err);
}

static void teardown(void)
{
    omo_network_destroy(net);
    net = NULL;
}

TestSuite(event, .init = setup, .fini = teardown);

static bool parse(const char *json)
{
    return omo_event_parse(json, strlen(json), net, &ev, &err);
}

#define ORDER_SHIP                                                                                 \
    "{\"type\":\"order.created\",\"order_id\":\"W-1001\",\"created_at\":\"2026-11-23T10:15:00Z\"," \
    "\"channel\":\"web\",\"customer\":{\"lat\":40.73,\"lon\":-73.99},"                             \
    "\"delivery\":{\"method\":\"ship\",\"service\":\"standard\"},"                                 \
    "\"lines\":[{\"line_id\":\"1\",\"sku\":\"SKU-00042\",\"qty\":2},"                              \
    "{\"line_id\":\"2\",\"sku\":\"SKU-00007\",\"qty\":5}]}"

/* 2026-11-23T10:15:00Z: 20780 days after the epoch plus 36900 s (checked with date -u). */
#define AT_2026_11_23_1015 1795428900000LL

Test(event, order_created_ship)
{
    cr_assert(parse(ORDER_SHIP), "%s: %s", err.reason, err.message);
    cr_expect_eq(ev.type, OMO_EV_ORDER_CREATED);
    cr_expect_str_eq(ev.order_id, "W-1001");
    cr_expect_str_eq(ev.event_id, "");
    cr_expect(ev.has_at);
    cr_expect_eq(ev.at_ms, AT_2026_11_23_1015);
    cr_expect_str_eq(ev.channel, "web");
    cr_expect_not(ev.pickup);
    cr_expect_str_eq(ev.service, "standard");
    cr_expect_float_eq(ev.cust_lat, 40.73, 1e-12);
    cr_expect_float_eq(ev.cust_lon, -73.99, 1e-12);
    cr_assert_eq(ev.nlines, 2);
    cr_expect_str_eq(ev.lines[0].line_id, "1");
    cr_expect_str_eq(ev.lines[0].sku, "SKU-00042");
    cr_expect_eq(ev.lines[0].qty, 2);
    cr_expect_str_eq(ev.lines[1].line_id, "2");
    cr_expect_str_eq(ev.lines[1].sku, "SKU-00007");
    cr_expect_eq(ev.lines[1].qty, 5);
}

Test(event, order_created_pickup_without_customer_or_channel)
{
    cr_assert(parse(ORDER_SHIP), "%s", err.message);
    cr_assert(parse("{\"type\":\"order.created\",\"order_id\":\"C-7\","
                    "\"created_at\":\"2026-11-23T11:15:00+01:00\","
                    "\"delivery\":{\"method\":\"pickup\",\"store_id\":\"S-012\"},"
                    "\"lines\":[{\"line_id\":\"a\",\"sku\":\"SKU-1\",\"qty\":1}]}"),
              "%s: %s", err.reason, err.message);
    cr_expect_eq(ev.type, OMO_EV_ORDER_CREATED);
    cr_expect_str_eq(ev.order_id, "C-7");
    cr_expect_eq(ev.at_ms, AT_2026_11_23_1015, "the offset must be applied");
    cr_expect(ev.pickup);
    cr_expect_eq(ev.store, omo_network_find(net, "S-012"));
    cr_expect_geq(ev.store, 0);
    /* Nothing of the previous ship order may survive. */
    cr_expect_str_eq(ev.channel, "");
    cr_expect_str_eq(ev.service, "");
    cr_expect_eq(ev.nlines, 1);
}

Test(event, integer_coordinates_and_extra_fields_are_accepted)
{
    cr_assert(parse("{\"type\":\"order.created\",\"order_id\":\"W-2\",\"future\":{\"x\":[1]},"
                    "\"created_at\":\"2026-11-23T10:15:00.250Z\",\"customer\":{\"lat\":-90,"
                    "\"lon\":180,\"name\":\"Ada\"},\"delivery\":{\"method\":\"ship\","
                    "\"service\":\"same_day\",\"note\":\"door\"},\"lines\":[{\"line_id\":\"1\","
                    "\"sku\":\"X\",\"qty\":1,\"price\":9.5}]}"),
              "%s: %s", err.reason, err.message);
    cr_expect_float_eq(ev.cust_lat, -90.0, 1e-12);
    cr_expect_float_eq(ev.cust_lon, 180.0, 1e-12);
    cr_expect_eq(ev.at_ms, AT_2026_11_23_1015 + 250);
    cr_expect_str_eq(ev.service, "same_day");
}

Test(event, order_cancelled_with_and_without_at)
{
    cr_assert(parse("{\"type\":\"order.cancelled\",\"order_id\":\"W-1001\","
                    "\"at\":\"2026-11-23T10:15:00Z\"}"),
              "%s", err.message);
    cr_expect_eq(ev.type, OMO_EV_ORDER_CANCELLED);
    cr_expect_str_eq(ev.order_id, "W-1001");
    cr_expect(ev.has_at);
    cr_expect_eq(ev.at_ms, AT_2026_11_23_1015);

    cr_assert(parse("{\"type\":\"order.cancelled\",\"order_id\":\"W-1002\"}"), "%s", err.message);
    cr_expect_str_eq(ev.order_id, "W-1002");
    cr_expect_not(ev.has_at);
}

Test(event, stock_snapshot)
{
    cr_assert(parse("{\"type\":\"stock.snapshot\",\"event_id\":\"rfid-S-012-77\","
                    "\"node_id\":\"S-012\",\"sku\":\"SKU-00042\",\"on_hand\":7,"
                    "\"bin\":\"07-12-3\",\"at\":\"2026-11-23T10:15:00Z\"}"),
              "%s: %s", err.reason, err.message);
    cr_expect_eq(ev.type, OMO_EV_STOCK_SNAPSHOT);
    cr_expect_str_eq(ev.event_id, "rfid-S-012-77");
    cr_expect_str_eq(ev.order_id, "");
    cr_expect_eq(ev.node, omo_network_find(net, "S-012"));
    cr_expect_geq(ev.node, 0);
    cr_expect_str_eq(ev.sku, "SKU-00042");
    cr_expect_eq(ev.on_hand, 7);
    cr_expect_str_eq(ev.bin, "07-12-3");
    cr_expect(ev.has_at);
    cr_expect_eq(ev.at_ms, AT_2026_11_23_1015);

    /* Zero is a valid count; a snapshot without a bin must not inherit the last one's. */
    cr_assert(parse("{\"type\":\"stock.snapshot\",\"event_id\":\"e2\",\"node_id\":\"DC-EAST\","
                    "\"sku\":\"SKU-1\",\"on_hand\":0}"),
              "%s", err.message);
    cr_expect_eq(ev.node, omo_network_find(net, "DC-EAST"));
    cr_expect_eq(ev.on_hand, 0);
    cr_expect_str_eq(ev.bin, "");
    cr_expect_not(ev.has_at);
}

Test(event, stock_delta)
{
    cr_assert(parse("{\"type\":\"stock.delta\",\"event_id\":\"pick-W-1001-1\","
                    "\"node_id\":\"S-012\",\"sku\":\"SKU-00042\",\"delta\":-2,"
                    "\"reason\":\"fulfilled\",\"order_id\":\"W-1001\","
                    "\"at\":\"2026-11-23T10:15:00Z\"}"),
              "%s: %s", err.reason, err.message);
    cr_expect_eq(ev.type, OMO_EV_STOCK_DELTA);
    cr_expect_str_eq(ev.event_id, "pick-W-1001-1");
    cr_expect_eq(ev.node, omo_network_find(net, "S-012"));
    cr_expect_str_eq(ev.sku, "SKU-00042");
    cr_expect_eq(ev.delta, -2);
    cr_expect_str_eq(ev.reason, "fulfilled");
    cr_expect_str_eq(ev.order_id, "W-1001");
    cr_expect_eq(ev.at_ms, AT_2026_11_23_1015);

    /* A delta without an order or reason must not keep the previous event's. */
    cr_assert(parse("{\"type\":\"stock.delta\",\"event_id\":\"rcv-1\",\"node_id\":\"DC-EAST\","
                    "\"sku\":\"SKU-00042\",\"delta\":0}"),
              "%s", err.message);
    cr_expect_eq(ev.delta, 0);
    cr_expect_str_eq(ev.order_id, "");
    cr_expect_str_eq(ev.reason, "");
    cr_expect_not(ev.has_at);
    cr_expect_eq(ev.node, omo_network_find(net, "DC-EAST"));
}

Test(event, order_after_stock_event_has_no_stock_fields)
{
    cr_assert(parse("{\"type\":\"stock.snapshot\",\"event_id\":\"e1\",\"node_id\":\"S-012\","
                    "\"sku\":\"SKU-1\",\"on_hand\":3,\"bin\":\"1-2-3\"}"),
              "%s", err.message);
    cr_assert(parse("{\"type\":\"order.cancelled\",\"order_id\":\"W-1\"}"), "%s", err.message);
    cr_expect_str_eq(ev.event_id, "");
    cr_expect_str_eq(ev.sku, "");
    cr_expect_str_eq(ev.bin, "");
    cr_expect_eq(ev.node, -1);
    cr_expect_eq(ev.nlines, 0);
}

Test(event, stock_event_after_order_has_no_order_fields)
{
    cr_assert(parse(ORDER_SHIP), "%s", err.message);
    cr_assert(parse("{\"type\":\"stock.snapshot\",\"event_id\":\"e1\",\"node_id\":\"S-012\","
                    "\"sku\":\"SKU-1\",\"on_hand\":3}"),
              "%s", err.message);
    cr_expect_str_eq(ev.order_id, "");
    cr_expect_str_eq(ev.channel, "");
    cr_expect_str_eq(ev.service, "");
    cr_expect_eq(ev.nlines, 0);
    cr_expect_eq(ev.store, -1);
    cr_expect_not(ev.has_at);
}

Test(event, at_most_max_lines)
{
    char buf[8192];
    size_t n = (size_t)snprintf(buf, sizeof buf,
                                "{\"type\":\"order.created\",\"order_id\":\"W-9\","
                                "\"created_at\":\"2026-11-23T10:15:00Z\","
                                "\"delivery\":{\"method\":\"pickup\",\"store_id\":\"S-012\"},"
                                "\"lines\":[");
    for (int i = 0; i < OMO_MAX_LINES; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "%s{\"line_id\":\"%d\",\"sku\":\"S\",\"qty\":%d}", i ? "," : "", i,
                              i + 1);
    snprintf(buf + n, sizeof buf - n, "]}");
    cr_assert(parse(buf), "%s: %s", err.reason, err.message);
    cr_expect_eq(ev.nlines, OMO_MAX_LINES);
    cr_expect_str_eq(ev.lines[OMO_MAX_LINES - 1].line_id, "63");
    cr_expect_eq(ev.lines[OMO_MAX_LINES - 1].qty, OMO_MAX_LINES);

    snprintf(buf + n, sizeof buf - n, ",{\"line_id\":\"x\",\"sku\":\"S\",\"qty\":1}]}");
    cr_assert_not(parse(buf));
    cr_expect_str_eq(err.field, "lines");
    cr_expect_str_eq(err.reason, "out_of_range");
}

Test(event, type_names)
{
    cr_expect_str_eq(omo_event_type_name(OMO_EV_ORDER_CREATED), "order.created");
    cr_expect_str_eq(omo_event_type_name(OMO_EV_ORDER_CANCELLED), "order.cancelled");
    cr_expect_str_eq(omo_event_type_name(OMO_EV_STOCK_SNAPSHOT), "stock.snapshot");
    cr_expect_str_eq(omo_event_type_name(OMO_EV_STOCK_DELTA), "stock.delta");
}

Test(event, malformed_json_reports_position)
{
    const char *json = "{\"type\":\"order.cancelled\",\n\"order_id\": W-1}";
    cr_assert_not(parse(json));
    cr_expect_str_eq(err.reason, "malformed_json");
    cr_expect_str_eq(err.field, "");
    cr_expect(strstr(err.message, "line 2") != NULL, "message: %s", err.message);
    cr_expect(strstr(err.message, "column") != NULL, "message: %s", err.message);
    cr_expect(strstr(err.message, "invalid token") != NULL, "message: %s", err.message);
}

Test(event, messages_are_human)
{
    cr_assert_not(parse("{\"type\":\"order.created\",\"order_id\":\"W-1\","
                        "\"created_at\":\"2026-11-23T10:15:00Z\","
                        "\"delivery\":{\"method\":\"pickup\",\"store_id\":\"S-012\"},\"lines\":["
                        "{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":1},"
                        "{\"line_id\":\"2\",\"sku\":\"A\",\"qty\":1},"
                        "{\"line_id\":\"3\",\"sku\":\"A\",\"qty\":-1}]}"));
    cr_expect_str_eq(err.field, "lines[2].qty");
    cr_expect_str_eq(err.reason, "out_of_range");
    cr_expect_str_eq(err.message, "lines[2].qty: must be a positive integer, got -1");

    cr_assert_not(parse("{\"type\":\"stock.snapshot\",\"event_id\":\"e\",\"node_id\":\"S-012\","
                        "\"sku\":\"A\",\"on_hand\":-3}"));
    cr_expect_str_eq(err.field, "on_hand");
    cr_expect_str_eq(err.reason, "out_of_range");
    cr_expect(strstr(err.message, "negative quantity") != NULL, "message: %s", err.message);

    cr_assert_not(parse("{\"type\":\"stock.delta\",\"event_id\":\"e\",\"node_id\":\"S-999\","
                        "\"sku\":\"A\",\"delta\":1}"));
    cr_expect_str_eq(err.message, "node_id: no node \"S-999\" in the network");
}

/* Every refusal: the event, the field it names and the reason. */
typedef struct bad_case {
    const char *json;
    const char *field;
    const char *reason;
} bad_case;

#define OC_HEAD                                                                                    \
    "{\"type\":\"order.created\",\"order_id\":\"W-1\",\"created_at\":\"2026-11-23T10:15:00Z\","
#define SHIP   "\"delivery\":{\"method\":\"ship\",\"service\":\"standard\"},"
#define CUST   "\"customer\":{\"lat\":40.7,\"lon\":-74},"
#define LINE   "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":1}]"
#define PICKUP "\"delivery\":{\"method\":\"pickup\",\"store_id\":\"S-012\"},"
#define SNAP   "{\"type\":\"stock.snapshot\",\"event_id\":\"e\",\"node_id\":\"S-012\",\"sku\":\"A\","
#define DELTA  "{\"type\":\"stock.delta\",\"event_id\":\"e\",\"node_id\":\"S-012\",\"sku\":\"A\","
#define X65    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define X129   X65 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static const bad_case BAD[] = {
    /* the envelope */
    {"", "", "malformed_json"},
    {"{\"type\":", "", "malformed_json"},
    {"{\"type\":\"order.cancelled\",\"order_id\":\"W\"} trailing", "", "malformed_json"},
    {"42", "", "malformed_json"},
    {"[1,2]", "type", "wrong_type"},
    {"{}", "type", "missing_field"},
    {"{\"type\":null}", "type", "missing_field"},
    {"{\"type\":7}", "type", "wrong_type"},
    {"{\"type\":\"order.updated\"}", "type", "unknown_type"},
    /* order.created */
    {"{\"type\":\"order.created\"}", "order_id", "missing_field"},
    {"{\"type\":\"order.created\",\"order_id\":12}", "order_id", "wrong_type"},
    {"{\"type\":\"order.created\",\"order_id\":\"\"}", "order_id", "bad_id"},
    {"{\"type\":\"order.created\",\"order_id\":\"" X129 "\"}", "order_id", "too_long"},
    {"{\"type\":\"order.created\",\"order_id\":\"W\"}", "created_at", "missing_field"},
    {"{\"type\":\"order.created\",\"order_id\":\"W\",\"created_at\":\"yesterday\"}", "created_at",
     "bad_time"},
    {"{\"type\":\"order.created\",\"order_id\":\"W\",\"created_at\":1795428900}", "created_at",
     "wrong_type"},
    {OC_HEAD "\"channel\":\"" X65 "\"," SHIP CUST LINE "}", "channel", "too_long"},
    {OC_HEAD "\"channel\":[]," SHIP CUST LINE "}", "channel", "wrong_type"},
    {OC_HEAD CUST LINE "}", "delivery", "missing_field"},
    {OC_HEAD "\"delivery\":\"ship\"," CUST LINE "}", "delivery", "wrong_type"},
    {OC_HEAD "\"delivery\":{}," CUST LINE "}", "delivery.method", "missing_field"},
    {OC_HEAD "\"delivery\":{\"method\":\"drone\"}," CUST LINE "}", "delivery.method",
     "out_of_range"},
    {OC_HEAD "\"delivery\":{\"method\":true}," CUST LINE "}", "delivery.method", "wrong_type"},
    {OC_HEAD "\"delivery\":{\"method\":\"ship\"}," CUST LINE "}", "delivery.service",
     "missing_field"},
    {OC_HEAD "\"delivery\":{\"method\":\"ship\",\"service\":\"next day\"}," CUST LINE "}",
     "delivery.service", "bad_id"},
    {OC_HEAD "\"delivery\":{\"method\":\"pickup\"}," LINE "}", "delivery.store_id",
     "missing_field"},
    {OC_HEAD "\"delivery\":{\"method\":\"pickup\",\"store_id\":\"S-404\"}," LINE "}",
     "delivery.store_id", "unknown_node"},
    {OC_HEAD "\"delivery\":{\"method\":\"pickup\",\"store_id\":\"" X65 "\"}," LINE "}",
     "delivery.store_id", "too_long"},
    {OC_HEAD SHIP LINE "}", "customer", "missing_field"},
    {OC_HEAD SHIP "\"customer\":[40,-74]," LINE "}", "customer", "wrong_type"},
    {OC_HEAD SHIP "\"customer\":{\"lon\":-74}," LINE "}", "customer.lat", "missing_field"},
    {OC_HEAD SHIP "\"customer\":{\"lat\":\"40.7\",\"lon\":-74}," LINE "}", "customer.lat",
     "wrong_type"},
    {OC_HEAD SHIP "\"customer\":{\"lat\":90.5,\"lon\":-74}," LINE "}", "customer.lat",
     "out_of_range"},
    {OC_HEAD SHIP "\"customer\":{\"lat\":40.7}," LINE "}", "customer.lon", "missing_field"},
    {OC_HEAD SHIP "\"customer\":{\"lat\":40.7,\"lon\":-180.01}," LINE "}", "customer.lon",
     "out_of_range"},
    {OC_HEAD PICKUP "\"customer\":{\"lat\":40.7,\"lon\":200}," LINE "}", "customer.lon",
     "out_of_range"},
    {OC_HEAD SHIP CUST "\"x\":1}", "lines", "missing_field"},
    {OC_HEAD SHIP CUST "\"lines\":{}}", "lines", "wrong_type"},
    {OC_HEAD SHIP CUST "\"lines\":[]}", "lines", "out_of_range"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":1},7]}", "lines[1]",
     "wrong_type"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"sku\":\"A\",\"qty\":1}]}", "lines[0].line_id",
     "missing_field"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":1,\"sku\":\"A\",\"qty\":1}]}", "lines[0].line_id",
     "wrong_type"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"a/b\",\"sku\":\"A\",\"qty\":1}]}",
     "lines[0].line_id", "bad_id"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":1},"
                       "{\"line_id\":\"2\",\"sku\":\"B\",\"qty\":1},"
                       "{\"line_id\":\"1\",\"sku\":\"C\",\"qty\":1}]}",
     "lines[2].line_id", "duplicate_line"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"qty\":1}]}", "lines[0].sku",
     "missing_field"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"sku\":\"\",\"qty\":1}]}", "lines[0].sku",
     "bad_id"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"sku\":\"" X65 "\",\"qty\":1}]}",
     "lines[0].sku", "too_long"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\"}]}", "lines[0].qty",
     "missing_field"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":0}]}", "lines[0].qty",
     "out_of_range"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":1.5}]}", "lines[0].qty",
     "wrong_type"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":2.0}]}", "lines[0].qty",
     "wrong_type"},
    {OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":\"2\"}]}",
     "lines[0].qty", "wrong_type"},
    /* order.cancelled */
    {"{\"type\":\"order.cancelled\"}", "order_id", "missing_field"},
    {"{\"type\":\"order.cancelled\",\"order_id\":\"W\",\"at\":\"2026-13-01T00:00:00Z\"}", "at",
     "bad_time"},
    {"{\"type\":\"order.cancelled\",\"order_id\":\"W\",\"at\":false}", "at", "wrong_type"},
    /* stock.snapshot */
    {"{\"type\":\"stock.snapshot\",\"node_id\":\"S-012\",\"sku\":\"A\",\"on_hand\":1}", "event_id",
     "missing_field"},
    {"{\"type\":\"stock.snapshot\",\"event_id\":\"" X129
     "\",\"node_id\":\"S-012\",\"sku\":\"A\",\"on_hand\":1}",
     "event_id", "too_long"},
    {"{\"type\":\"stock.snapshot\",\"event_id\":\"e\",\"sku\":\"A\",\"on_hand\":1}", "node_id",
     "missing_field"},
    {"{\"type\":\"stock.snapshot\",\"event_id\":\"e\",\"node_id\":\"S-013\",\"sku\":\"A\","
     "\"on_hand\":1}",
     "node_id", "unknown_node"},
    {"{\"type\":\"stock.snapshot\",\"event_id\":\"e\",\"node_id\":\"S 012\",\"sku\":\"A\","
     "\"on_hand\":1}",
     "node_id", "bad_id"},
    {"{\"type\":\"stock.snapshot\",\"event_id\":\"e\",\"node_id\":\"S-012\",\"on_hand\":1}", "sku",
     "missing_field"},
    {SNAP "\"sku2\":1}", "on_hand", "missing_field"},
    {SNAP "\"on_hand\":-1}", "on_hand", "out_of_range"},
    {SNAP "\"on_hand\":\"7\"}", "on_hand", "wrong_type"},
    {SNAP "\"on_hand\":7,\"bin\":\"07-12\"}", "bin", "bad_bin"},
    {SNAP "\"on_hand\":7,\"bin\":\"07-12-3-1\"}", "bin", "bad_bin"},
    {SNAP "\"on_hand\":7,\"bin\":\"A7-12-3\"}", "bin", "bad_bin"},
    {SNAP "\"on_hand\":7,\"bin\":\"07--3\"}", "bin", "bad_bin"},
    {SNAP "\"on_hand\":7,\"bin\":\"07-12-3 \"}", "bin", "bad_bin"},
    {SNAP "\"on_hand\":7,\"bin\":\"\"}", "bin", "bad_bin"},
    {SNAP "\"on_hand\":7,\"bin\":\"1234567890-1-1\"}", "bin", "bad_bin"},
    {SNAP "\"on_hand\":7,\"bin\":7}", "bin", "wrong_type"},
    {SNAP "\"on_hand\":7,\"at\":\"2026-11-23\"}", "at", "bad_time"},
    /* stock.delta */
    {DELTA "\"reason\":\"pos_sale\"}", "delta", "missing_field"},
    {DELTA "\"delta\":-1.5}", "delta", "wrong_type"},
    {DELTA "\"delta\":-1,\"reason\":5}", "reason", "wrong_type"},
    {DELTA "\"delta\":-1,\"reason\":\"" X65 "\"}", "reason", "too_long"},
    {DELTA "\"delta\":-1,\"order_id\":\"\"}", "order_id", "bad_id"},
    {DELTA "\"delta\":-1,\"order_id\":\"" X129 "\"}", "order_id", "too_long"},
    {DELTA "\"delta\":-1,\"at\":\"noon\"}", "at", "bad_time"},
};

Test(event, every_refusal_names_field_and_reason)
{
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        memset(&err, 0, sizeof err);
        bool ok = parse(BAD[i].json);
        cr_expect_not(ok, "case %zu must be refused: %s", i, BAD[i].json);
        if (ok)
            continue;
        cr_expect_str_eq(err.field, BAD[i].field, "case %zu: %s (%s)", i, BAD[i].json, err.message);
        cr_expect_str_eq(err.reason, BAD[i].reason, "case %zu: %s (%s)", i, BAD[i].json,
                         err.message);
        cr_expect_neq(err.message[0], '\0', "case %zu has no message", i);
    }
}

/* A refused event leaves the struct reusable: the next good one parses cleanly. */
Test(event, reuse_after_refusal)
{
    cr_assert_not(parse(OC_HEAD SHIP CUST "\"lines\":[{\"line_id\":\"1\",\"sku\":\"A\",\"qty\":1},"
                                          "{\"line_id\":\"1\",\"sku\":\"B\",\"qty\":1}]}"));
    cr_assert(parse(ORDER_SHIP), "%s", err.message);
    cr_expect_eq(ev.nlines, 2);
    cr_expect_str_eq(ev.lines[1].sku, "SKU-00007");
}

/* Without a network every node reference is unknown, and nothing crashes. */
Test(event, no_network)
{
    cr_assert_not(
        omo_event_parse(SNAP "\"on_hand\":1}", strlen(SNAP "\"on_hand\":1}"), NULL, &ev, &err));
    cr_expect_str_eq(err.reason, "unknown_node");
    const char *cancel = "{\"type\":\"order.cancelled\",\"order_id\":\"W\"}";
    cr_assert(omo_event_parse(cancel, strlen(cancel), NULL, &ev, &err), "%s", err.message);
}
