/* network.yaml: values, defaults, ordering, and every error at its exact place. */
#include "network.h"
#include "yamldoc.h"

#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

/* Fixture paths are relative to the source tree, as users see them in error lines. */
static void in_source_dir(void)
{
    cr_assert_eq(chdir(OMO_SOURCE_DIR), 0);
}

TestSuite(network, .init = in_source_dir);

static void assert_diag(const omo_diag *diag, size_t count, const char *const *lines)
{
    for (size_t i = 0; i < diag->count; i++)
        cr_log_info("diag: %s", diag->lines[i]);
    cr_assert_eq(diag->count, count, "expected %zu error lines, got %zu", count, diag->count);
    for (size_t i = 0; i < count; i++)
        cr_assert_str_eq(diag->lines[i], lines[i]);
}

/* Loads a broken fixture, which must fail with exactly these lines. */
static void expect_errors(const char *path, size_t count, const char *const *lines)
{
    omo_diag diag = {0};
    omo_network *net = omo_network_load(path, &diag);
    cr_assert_null(net, "%s loaded although it is broken", path);
    assert_diag(&diag, count, lines);
    omo_diag_clear(&diag);
}

/* Parses a buffer that must fail; the first error line must start with `prefix` and contain
 * `part`. */
static void expect_buffer_error(const char *yaml, size_t count, const char *prefix,
                                const char *part)
{
    omo_diag diag = {0};
    omo_network *net = omo_network_parse("net.yaml", yaml, strlen(yaml), &diag);
    for (size_t i = 0; i < diag.count; i++)
        cr_log_info("diag: %s", diag.lines[i]);
    cr_assert_null(net);
    cr_assert_eq(diag.count, count, "expected %zu error lines, got %zu", count, diag.count);
    cr_assert(!strncmp(diag.lines[0], prefix, strlen(prefix)), "'%s' does not start with '%s'",
              diag.lines[0], prefix);
    cr_assert(strstr(diag.lines[0], part), "'%s' does not contain '%s'", diag.lines[0], part);
    omo_diag_clear(&diag);
}

Test(network, small_network_loads_sorted_with_exact_values)
{
    omo_diag diag = {0};
    omo_network *net = omo_network_load("tests/fixtures/network_small.yaml", &diag);
    cr_assert_not_null(net);
    cr_assert_eq(diag.count, 0);
    cr_assert_str_eq(net->path, "tests/fixtures/network_small.yaml");

    const char *ids[] = {"DC-EAST", "DC-WEST", "S-001", "S-002", "S-010"};
    cr_assert_eq(net->nnodes, 5);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(net->nodes[i].id, ids[i]);
        cr_assert_eq(omo_network_find(net, ids[i]), (int)i);
        cr_assert_eq(net->nodes[i].loc.file, net->path);
    }
    cr_assert_eq(omo_network_find(net, "S-999"), -1);

    const omo_node *s2 = &net->nodes[3];
    cr_assert_eq(s2->type, OMO_NODE_STORE);
    cr_assert_float_eq(s2->lat, 40.7306, 1e-12);
    cr_assert_float_eq(s2->lon, -73.9866, 1e-12);
    cr_assert_str_eq(s2->timezone, "America/New_York");
    cr_assert(s2->ship && s2->pickup);
    cr_assert_eq(s2->pick_cost_per_unit, 550000);
    cr_assert_eq(s2->handling_cost, 1250000);
    cr_assert_eq(s2->handling_hours, 2500);
    cr_assert_eq(s2->daily_capacity, 200);
    cr_assert_eq(s2->safety_stock, 2);
    cr_assert_eq(s2->loc.line, 3);
    cr_assert_eq(s2->loc.col, 5);

    const omo_node *dc = &net->nodes[0];
    cr_assert_eq(dc->type, OMO_NODE_WAREHOUSE);
    cr_assert(dc->ship && !dc->pickup);
    cr_assert_eq(dc->pick_cost_per_unit, 400000);
    cr_assert_eq(dc->handling_cost, OMO_MICRO);
    cr_assert_eq(dc->handling_hours, 24 * OMO_MILLI);
    cr_assert_eq(dc->daily_capacity, 50000);
    cr_assert_eq(dc->tz, s2->tz);

    /* S-001 leaves timezone, ship, capacity and safety stock to their defaults. */
    const omo_node *s1 = &net->nodes[2];
    cr_assert_str_eq(s1->timezone, "UTC");
    cr_assert_geq(s1->tz, 0);
    cr_assert(s1->ship && s1->pickup);
    cr_assert_eq(s1->daily_capacity, -1);
    cr_assert_eq(s1->safety_stock, 0);
    cr_assert_eq(s1->handling_hours, 2 * OMO_MILLI);

    /* DC-WEST leaves pickup to its default. */
    cr_assert(net->nodes[1].ship && !net->nodes[1].pickup);
    cr_assert_neq(net->nodes[1].tz, dc->tz);
    /* S-010 is written as a flow mapping. */
    cr_assert(!net->nodes[4].ship && net->nodes[4].pickup);
    cr_assert_str_eq(net->nodes[4].timezone, "Europe/London");

    cr_assert_eq(net->nskus, 2);
    cr_assert(omo_network_sku_has_tag(net, "SKU-00042", "hazmat"));
    cr_assert(omo_network_sku_has_tag(net, "SKU-00007", "oversize"));
    cr_assert(!omo_network_sku_has_tag(net, "SKU-00007", "hazmat"));
    cr_assert(!omo_network_sku_has_tag(net, "SKU-99999", "hazmat"));
    cr_assert_str_eq(omo_node_type_name(OMO_NODE_STORE), "store");
    cr_assert_str_eq(omo_node_type_name(OMO_NODE_WAREHOUSE), "warehouse");

    omo_network_destroy(net);
    omo_diag_clear(&diag);
}

Test(network, latitude_out_of_range)
{
    const char *lines[] = {
        "tests/fixtures/broken_latitude.yaml:7:10: error: lat must be between -90 and 90"};
    expect_errors("tests/fixtures/broken_latitude.yaml", 1, lines);
}

Test(network, unknown_key_lists_valid_keys)
{
    const char *lines[] = {"tests/fixtures/broken_unknown_key.yaml:6:5: error: unknown key "
                           "'capacity' (valid keys: id, type, lat, lon, timezone, ship, pickup, "
                           "pick_cost_per_unit, handling_cost, handling_hours, daily_capacity, "
                           "safety_stock)"};
    expect_errors("tests/fixtures/broken_unknown_key.yaml", 1, lines);
}

Test(network, yaml_syntax_error)
{
    const char *lines[] = {"tests/fixtures/broken_syntax.yaml:6:7: error: did not find expected "
                           "',' or ']' (while parsing a flow sequence at line 5, column 10)"};
    expect_errors("tests/fixtures/broken_syntax.yaml", 1, lines);
}

Test(network, wrong_types_are_all_reported)
{
    const char *lines[] = {
        "tests/fixtures/broken_wrong_type.yaml:4:10: error: expected a number for 'lat', got "
        "'north'",
        "tests/fixtures/broken_wrong_type.yaml:6:11: error: expected true or false for 'ship', got "
        "'maybe'",
        "tests/fixtures/broken_wrong_type.yaml:7:21: error: expected an integer for "
        "'daily_capacity', got '1.5'",
        "tests/fixtures/broken_wrong_type.yaml:8:20: error: expected a number for 'handling_cost', "
        "got a list",
    };
    expect_errors("tests/fixtures/broken_wrong_type.yaml", 4, lines);
}

Test(network, negative_cost)
{
    const char *lines[] = {
        "tests/fixtures/broken_negative_cost.yaml:6:20: error: handling_cost must not be negative"};
    expect_errors("tests/fixtures/broken_negative_cost.yaml", 1, lines);
}

Test(network, unknown_node_type)
{
    const char *lines[] = {"tests/fixtures/broken_node_type.yaml:3:11: error: unknown node type "
                           "'depot' (valid: warehouse, store)"};
    expect_errors("tests/fixtures/broken_node_type.yaml", 1, lines);
}

Test(network, duplicate_node_id_names_the_first)
{
    const char *lines[] = {"tests/fixtures/broken_duplicate_node.yaml:10:9: error: duplicate node "
                           "id 'DC-EAST' (first at line 2)"};
    expect_errors("tests/fixtures/broken_duplicate_node.yaml", 1, lines);
}

Test(network, unknown_time_zone)
{
    const char *lines[] = {"tests/fixtures/broken_timezone.yaml:6:15: error: unknown time zone "
                           "'America/Gotham'"};
    expect_errors("tests/fixtures/broken_timezone.yaml", 1, lines);
}

Test(network, three_errors_give_three_lines)
{
    const char *lines[] = {
        "tests/fixtures/broken_three_errors.yaml:5:10: error: lon must be between -180 and 180",
        "tests/fixtures/broken_three_errors.yaml:10:19: error: safety_stock must not be negative",
        "tests/fixtures/broken_three_errors.yaml:11:9: error: invalid node id 'S 002': 1 to 64 "
        "characters of A-Z a-z 0-9 _ . - expected",
    };
    expect_errors("tests/fixtures/broken_three_errors.yaml", 3, lines);
}

Test(network, missing_file)
{
    omo_diag diag = {0};
    cr_assert_null(omo_network_load("tests/fixtures/no_such_network.yaml", &diag));
    cr_assert_eq(diag.count, 1);
    cr_assert_str_eq(diag.lines[0], "tests/fixtures/no_such_network.yaml: error: cannot read: No "
                                    "such file or directory");
    omo_diag_clear(&diag);
}

Test(network, missing_required_keys_at_the_node)
{
    expect_buffer_error("nodes:\n  - id: A\n    type: store\n    lat: 1\n", 1,
                        "net.yaml:2:5: ", "error: missing required key 'lon'");
    expect_buffer_error("nodes:\n  - {lat: 1, lon: 2}\n", 2,
                        "net.yaml:2:5: ", "missing required key 'id'");
    expect_buffer_error("skus: []\n", 1, "net.yaml:1:1: ", "missing required key 'nodes'");
}

Test(network, duplicate_key_in_a_node)
{
    expect_buffer_error("nodes:\n  - id: A\n    type: store\n    lat: 1\n    lon: 2\n    lat: 3\n",
                        1, "net.yaml:6:5: ", "error: duplicate key 'lat' (first at line 4)");
}

Test(network, structure_errors)
{
    expect_buffer_error("", 1, "net.yaml:1:1: ", "empty");
    expect_buffer_error("- 1\n- 2\n", 1, "net.yaml:1:1: ", "expected a mapping");
    expect_buffer_error("nodes: 3\n", 1, "net.yaml:1:8: ", "expected a list for 'nodes'");
    expect_buffer_error("nodes: []\n", 1, "net.yaml:1:8: ", "at least one node");
    expect_buffer_error("nodes:\n  - 3\n", 1, "net.yaml:2:5: ", "expected a mapping");
    expect_buffer_error("nodes: [{id: A, type: store, lat: 1, lon: 2}]\n---\nnodes: []\n", 1,
                        "net.yaml:2:1: ", "only one YAML document");
    expect_buffer_error(
        "nodes: [{id: A, type: store, lat: 1, lon: 2, timezone: ../../etc/passwd}]\n", 1,
        "net.yaml:1:56: ", "unknown time zone");
}

Test(network, quoted_numbers_and_booleans_are_strings)
{
    expect_buffer_error("nodes: [{id: A, type: store, lat: '1', lon: 2}]\n", 1,
                        "net.yaml:1:35: ", "expected a number for 'lat', got '1'");
    expect_buffer_error("nodes: [{id: A, type: store, lat: 1, lon: 2, ship: \"true\"}]\n", 1,
                        "net.yaml:1:52: ", "expected true or false");
    expect_buffer_error("nodes: [{id: A, type: store, lat: 1, lon: 0x10}]\n", 1,
                        "net.yaml:1:43: ", "expected a number");
    expect_buffer_error("nodes: [{id: A, type: store, lat: 1, lon: 2, daily_capacity: ~}]\n", 1,
                        "net.yaml:1:62: ", "got nothing");
}

Test(network, sku_errors)
{
    expect_buffer_error("nodes: [{id: A, type: store, lat: 1, lon: 2}]\n"
                        "skus:\n  - {sku: X, tags: [a]}\n  - {sku: X}\n",
                        1, "net.yaml:4:11: ", "duplicate sku 'X' (first at line 3)");
    expect_buffer_error("nodes: [{id: A, type: store, lat: 1, lon: 2}]\n"
                        "skus:\n  - {sku: X, tags: hazmat}\n",
                        1, "net.yaml:3:20: ", "expected a list for 'tags'");
}

Test(network, invalid_utf8_is_located)
{
    expect_buffer_error("nodes:\n  - id: \xff\n", 1, "net.yaml:2:9: ", "invalid leading UTF-8");
}

Test(network, aliases_share_values)
{
    const char *yaml = "nodes:\n"
                       "  - &base {id: A, type: store, lat: 1.5, lon: 2, handling_cost: 0.25}\n"
                       "  - {id: B, type: warehouse, lat: 3, lon: 4, handling_cost: 0.25}\n";
    omo_diag diag = {0};
    omo_network *net = omo_network_parse("net.yaml", yaml, strlen(yaml), &diag);
    cr_assert_not_null(net);
    cr_assert_eq(net->nnodes, 2);
    omo_network_destroy(net);

    const char *recursive = "nodes: &n\n  - *n\n";
    cr_assert_null(omo_network_parse("net.yaml", recursive, strlen(recursive), &diag));
    cr_assert_eq(diag.count, 1);
    cr_assert_str_eq(diag.lines[0],
                     "net.yaml:2:5: error: alias '*n' refers to a node that contains it");
    omo_diag_clear(&diag);

    const char *unknown = "nodes: *nope\n";
    cr_assert_null(omo_network_parse("net.yaml", unknown, strlen(unknown), &diag));
    cr_assert_eq(diag.count, 1);
    cr_assert_str_eq(diag.lines[0], "net.yaml:1:8: error: unknown alias '*nope'");
    omo_diag_clear(&diag);
}

Test(network, alias_bombs_are_refused)
{
    const char *yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                       "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                       "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
    omo_diag diag = {0};
    cr_assert_null(omo_network_parse("net.yaml", yaml, strlen(yaml), &diag));
    cr_assert_eq(diag.count, 1);
    cr_assert(strstr(diag.lines[0], "document too large"), "%s", diag.lines[0]);
    omo_diag_clear(&diag);
}

Test(network, key_map_reads_fixed_point_exactly)
{
    const char *yaml = "a: 0.1\nb: 123456.789999\nc: 2.0005\nd: -0\n";
    omo_diag diag = {0};
    omo_ydoc *doc = omo_ydoc_parse("k.yaml", yaml, strlen(yaml), &diag);
    cr_assert_not_null(doc);
    const omo_ykey keys[] = {
        {"a", OMO_YT_MONEY, OMO_YK_REQUIRED, 0, 0},
        {"b", OMO_YT_MONEY, 0, 0, 0},
        {"c", OMO_YT_HOURS, 0, 0, 0},
        {"d", OMO_YT_INT, OMO_YK_MIN, 0, 0},
    };
    omo_yval v[4];
    cr_assert_eq(omo_ymap_read(omo_ydoc_root(doc), "the file", keys, 4, v, &diag), 0);
    cr_assert_eq(v[0].i, 100000);
    cr_assert_eq(v[1].i, 123456789999LL);
    cr_assert_eq(v[2].i, 2001); /* half away from zero */
    cr_assert_eq(v[3].i, 0);
    cr_assert_eq(v[0].node->loc.line, 1);
    cr_assert_eq(v[0].node->loc.col, 4);
    cr_assert_eq(diag.count, 0);
    omo_ydoc_destroy(doc);
}

Test(network, errors_come_in_file_order)
{
    /* The duplicate key is found while parsing, the latitude while validating afterwards. */
    const char *yaml = "nodes:\n"
                       "  - {id: A, type: store, lat: 95, lon: 2}\n"
                       "  - {id: B, type: store, lat: 1, lon: 2, lon: 3}\n";
    omo_diag diag = {0};
    cr_assert_null(omo_network_parse("net.yaml", yaml, strlen(yaml), &diag));
    const char *lines[] = {
        "net.yaml:2:31: error: lat must be between -90 and 90",
        "net.yaml:3:42: error: duplicate key 'lon' (first at line 3)",
    };
    assert_diag(&diag, 2, lines);
    omo_diag_clear(&diag);
}
