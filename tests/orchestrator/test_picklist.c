/* The store pick list: bins, the serpentine walk, tote numbers, the four renderings, the
 * Code 128 labels, and the page as a browser draws it on a phone and on paper. */
#include "picklist.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define T0 1795428900000LL /* 2026-11-23T10:15:00Z */

/* ---- building lists by hand ------------------------------------------------------------ */

static int add_tote(omo_picklist *pl, const char *shipment, const char *order, omo_method method,
                    const char *pickup, int64_t promised_ms, int64_t created_ms)
{
    pl->totes = omo_xrealloc(pl->totes, (pl->ntotes + 1) * sizeof *pl->totes);
    omo_tote *t = &pl->totes[pl->ntotes];
    memset(t, 0, sizeof *t);
    snprintf(t->shipment_id, sizeof t->shipment_id, "%s", shipment);
    snprintf(t->order_id, sizeof t->order_id, "%s", order);
    t->method = method;
    snprintf(t->pickup_store, sizeof t->pickup_store, "%s", pickup ? pickup : "");
    t->promised_ms = promised_ms;
    t->created_ms = created_ms;
    return (int)pl->ntotes++;
}

static void add_row(omo_picklist *pl, const char *bin, const char *sku, const char *line,
                    int64_t qty, int tote)
{
    pl->rows = omo_xrealloc(pl->rows, (pl->nrows + 1) * sizeof *pl->rows);
    omo_pick_row *r = &pl->rows[pl->nrows++];
    memset(r, 0, sizeof *r);
    snprintf(r->bin, sizeof r->bin, "%s", bin);
    snprintf(r->sku, sizeof r->sku, "%s", sku);
    snprintf(r->line_id, sizeof r->line_id, "%s", line);
    r->qty = qty;
    r->tote = tote;
}

static omo_picklist new_list(const char *store)
{
    omo_picklist pl = {0};
    snprintf(pl.store_id, sizeof pl.store_id, "%s", store);
    pl.generated_ms = T0;
    return pl;
}

static void assert_bins(const omo_picklist *pl, const char *const *want, size_t n)
{
    cr_assert_eq(pl->nrows, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(pl->rows[i].bin, want[i], "step %zu: %s, expected %s", i + 1,
                         pl->rows[i].bin, want[i]);
}

static size_t occurrences(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- bins ------------------------------------------------------------------------------ */

Test(picklist, bin_parse_valid)
{
    int a = -1, b = -1, s = -1;
    cr_assert(omo_bin_parse("07-12-3", &a, &b, &s));
    cr_assert_eq(a, 7);
    cr_assert_eq(b, 12);
    cr_assert_eq(s, 3);
    cr_assert(omo_bin_parse("0-0-0", &a, &b, &s));
    cr_assert(a == 0 && b == 0 && s == 0);
    cr_assert(omo_bin_parse("123-4567-89", &a, &b, &s));
    cr_assert(a == 123 && b == 4567 && s == 89);
}

Test(picklist, bin_parse_invalid)
{
    static const char *const bad[] = {
        "7-12",     "a-b-c",           "07-12-3-1", "",       "07-12-",  "-12-3",   "07--3",
        " 07-12-3", "07-12-3 ",        "7-12-x",    "7_12_3", "+7-12-3", "7-1a2-3", "7-12-3-",
        "7.1-2-3",  "99999999999-1-1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int a = -5, b = -5, s = -5;
        cr_assert_not(omo_bin_parse(bad[i], &a, &b, &s), "\"%s\" parsed", bad[i]);
        cr_assert(a == -5 && b == -5 && s == -5, "\"%s\" touched the outputs", bad[i]);
    }
    cr_assert_not(omo_bin_parse(NULL, NULL, NULL, NULL));
}

/* ---- the walk -------------------------------------------------------------------------- */

/* Aisles 1, 3 and 4: 3 is the 2nd aisle walked (bays down) though its number is odd, 4 the 3rd
 * (bays up) though even. */
Test(picklist, serpentine_by_aisles_walked)
{
    omo_picklist pl = new_list("S-1");
    int t = add_tote(&pl, "W-1/1", "W-1", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0);
    const char *input[] = {"04-03-1", "03-01-1", "01-05-1", "03-04-1", "01-02-1",
                           "04-01-1", "01-01-1", "03-02-1", "04-10-1"};
    for (size_t i = 0; i < sizeof input / sizeof *input; i++) {
        char line[8];
        snprintf(line, sizeof line, "%zu", i + 1);
        add_row(&pl, input[i], "SKU", line, 1, t);
    }
    omo_picklist_sort(&pl);
    static const char *const want[] = {"01-01-1", "01-02-1", "01-05-1", "03-04-1", "03-02-1",
                                       "03-01-1", "04-01-1", "04-03-1", "04-10-1"};
    assert_bins(&pl, want, sizeof want / sizeof *want);
    omo_picklist_free(&pl);
}

Test(picklist, shelves_ascend_within_a_bay_both_ways)
{
    omo_picklist pl = new_list("S-1");
    int t = add_tote(&pl, "W-1/1", "W-1", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0);
    const char *input[] = {"2-5-3", "2-5-1", "1-1-2", "2-7-2", "1-1-10",
                           "2-5-2", "1-1-1", "2-7-1", "1-2-1"};
    for (size_t i = 0; i < sizeof input / sizeof *input; i++) {
        char line[8];
        snprintf(line, sizeof line, "%zu", i + 1);
        add_row(&pl, input[i], "SKU", line, 1, t);
    }
    omo_picklist_sort(&pl);
    /* Aisle 2 is walked second: bays 7 then 5, shelves still 1, 2, 3; numbers, not text. */
    static const char *const want[] = {"1-1-1", "1-1-2", "1-1-10", "1-2-1", "2-7-1",
                                       "2-7-2", "2-5-1", "2-5-2",  "2-5-3"};
    assert_bins(&pl, want, sizeof want / sizeof *want);
    omo_picklist_free(&pl);
}

Test(picklist, rows_without_a_bin_come_last_by_sku)
{
    omo_picklist pl = new_list("S-1");
    int t = add_tote(&pl, "W-1/1", "W-1", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0);
    add_row(&pl, "", "sku-a", "1", 1, t);
    add_row(&pl, "BACKROOM", "SKU-B", "2", 1, t); /* not a bin: walked with the binless */
    add_row(&pl, "09-01-1", "SKU-Z", "3", 1, t);
    add_row(&pl, "", "SKU-A", "4", 1, t);
    add_row(&pl, "7-12", "SKU-C", "5", 1, t);
    add_row(&pl, "02-01-1", "SKU-Y", "6", 1, t);
    omo_picklist_sort(&pl);
    static const char *const skus[] = {"SKU-Y", "SKU-Z", "SKU-A", "SKU-B", "SKU-C", "sku-a"};
    for (size_t i = 0; i < 6; i++)
        cr_assert_str_eq(pl.rows[i].sku, skus[i], "step %zu", i + 1);
    cr_assert_str_eq(pl.rows[3].bin, "BACKROOM", "the bin text is kept for display");
    omo_picklist_free(&pl);
}

Test(picklist, ties_by_order_age_then_line)
{
    omo_picklist pl = new_list("S-1");
    int young = add_tote(&pl, "W-3/1", "W-3", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0 + 300);
    int old_b = add_tote(&pl, "W-9/1", "W-9", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0 + 100);
    int old_a = add_tote(&pl, "W-2/1", "W-2", OMO_METHOD_CLICK_AND_COLLECT, "S-1", T0, T0 + 100);
    add_row(&pl, "05-05-5", "SKU-1", "1", 1, young);
    add_row(&pl, "05-05-5", "SKU-1", "2", 1, old_b);
    add_row(&pl, "05-05-5", "SKU-1", "1", 1, old_b);
    add_row(&pl, "05-05-5", "SKU-2", "7", 1, old_a);
    add_row(&pl, "", "SKU-X", "4", 1, young);
    add_row(&pl, "", "SKU-X", "3", 1, old_a);
    omo_picklist_sort(&pl);
    struct {
        int tote;
        const char *line;
    } want[] = {{old_a, "7"}, {old_b, "1"}, {old_b, "2"}, {young, "1"}, {old_a, "3"}, {young, "4"}};
    for (size_t i = 0; i < 6; i++) {
        cr_assert_eq(pl.rows[i].tote, want[i].tote, "step %zu", i + 1);
        cr_assert_str_eq(pl.rows[i].line_id, want[i].line, "step %zu", i + 1);
    }
    omo_picklist_free(&pl);
}

Test(picklist, totes_numbered_by_first_row_in_the_walk)
{
    omo_picklist pl = new_list("S-1");
    int a = add_tote(&pl, "A/1", "A", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0);
    int idle_new = add_tote(&pl, "I/2", "I2", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0 + 9);
    int b = add_tote(&pl, "B/1", "B", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0);
    int c = add_tote(&pl, "C/1", "C", OMO_METHOD_CLICK_AND_COLLECT, "S-9", T0 + 5, T0);
    int idle_old = add_tote(&pl, "I/1", "I1", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0 + 1);
    add_row(&pl, "", "SKU-0", "1", 1, a);
    add_row(&pl, "03-01-1", "SKU-1", "1", 1, b);
    add_row(&pl, "01-04-1", "SKU-2", "1", 1, c);
    add_row(&pl, "01-01-1", "SKU-3", "2", 1, b);
    pl.totes[a].number = 42; /* stale numbers are replaced */
    omo_picklist_sort(&pl);
    cr_assert_eq(pl.totes[b].number, 1);
    cr_assert_eq(pl.totes[c].number, 2);
    cr_assert_eq(pl.totes[a].number, 3);
    cr_assert_eq(pl.totes[idle_old].number, 4, "a tote with no rows comes after, oldest first");
    cr_assert_eq(pl.totes[idle_new].number, 5);
    cr_assert_eq(pl.rows[0].tote, b, "the walk starts in aisle 1");
    omo_picklist_free(&pl);
    omo_picklist_free(&pl); /* a freed list is empty: freeing again is harmless */
    omo_picklist_free(NULL);
}

Test(picklist, empty_list_sorts_and_renders)
{
    omo_picklist pl = new_list("S-1");
    omo_picklist_sort(&pl);
    static const char *const formats[] = {"text", "csv", "json", "html"};
    for (size_t i = 0; i < 4; i++) {
        size_t len = 0;
        char *out = omo_picklist_render(&pl, formats[i], true, "t", &len);
        cr_assert_not_null(out, "%s", formats[i]);
        cr_assert_gt(len, 0);
        cr_assert_eq(strlen(out), len);
        free(out);
    }
    cr_assert_null(omo_picklist_render(&pl, "xml", false, NULL, NULL));
    omo_picklist_free(&pl);
}

/* ---- a realistic list for the renderings ----------------------------------------------- */

static const char long_sku[] = "SKU-0123456789-0123456789-0123456789-0123456789-0123456789-ABC";

/* Three totes: a ship-from-store order, a pickup with a promise, and one whose ids are as long
 * as ids get. */
static omo_picklist sample(void)
{
    omo_picklist pl = new_list("S-012");
    int w = add_tote(&pl, "W-1001/1", "W-1001", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0);
    int p = add_tote(&pl, "W-1002/2", "W-1002", OMO_METHOD_CLICK_AND_COLLECT, "S-012",
                     T0 + 2 * 3600 * 1000, T0 + 60000);
    char longid[OMO_LONG_ID_MAX + 1];
    memset(longid, 'X', OMO_LONG_ID_MAX);
    longid[OMO_LONG_ID_MAX] = 0;
    char longship[OMO_LONG_ID_MAX + 16];
    snprintf(longship, sizeof longship, "%s/12", longid);
    int l = add_tote(&pl, longship, longid, OMO_METHOD_CLICK_AND_COLLECT, "S-0123456789-FAR-AWAY",
                     T0 + 86400000, T0 + 120000);
    add_row(&pl, "07-12-3", "SKU-00042", "1", 2, w);
    add_row(&pl, "", "SKU,42 \"quoted\"", "2", 1, w);
    add_row(&pl, "02-01-1", long_sku, "1", 12, p);
    add_row(&pl, "07-03-2", "SKU-00007", "1", 1, l);
    omo_picklist_sort(&pl);
    return pl;
}

Test(picklist, text_fits_80_columns)
{
    omo_picklist pl = sample();
    size_t len;
    char *text = omo_picklist_render(&pl, "text", false, NULL, &len);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    size_t lines = 0;
    for (const char *line = text; *line; lines++) {
        const char *end = strchr(line, '\n');
        cr_assert_not_null(end, "the text ends with a newline");
        size_t cols = 0;
        for (const char *p = line; p < end; p++)
            cols += ((unsigned char)*p & 0xC0) != 0x80; /* code points */
        cr_assert_leq(cols, 80, "%zu columns: %.*s", cols, (int)(end - line), line);
        line = end + 1;
    }
    cr_assert_gt(lines, 10);
    cr_assert(strstr(text, "S-012"));
    cr_assert(strstr(text, "2026-11-23T10:15:00Z"), "generated time:\n%s", text);
    cr_assert(strstr(text, "4 lines, 16 units, 3 totes"), "%s", text);
    /* Walk: aisle 2, then aisle 7 (walked second: bays down), then no bin. */
    const char *r1 = strstr(text, "02-01-1"), *r2 = strstr(text, "07-12-3"),
               *r3 = strstr(text, "07-03-2"), *r4 = strstr(text, "SKU,42");
    cr_assert(r1 && r2 && r3 && r4 && r1 < r2 && r2 < r3 && r3 < r4, "%s", text);
    cr_assert(strstr(text, "\xE2\x80\xA6"), "long ids are cut with an ellipsis");
    cr_assert_null(strstr(text, long_sku), "the long SKU is cut");
    cr_assert(strstr(text, "W-1002/2"));
    cr_assert(strstr(text, "click_and_collect"));
    cr_assert(strstr(text, "ship_from_store"));
    cr_assert(strstr(text, "pickup at S-012"), "%s", text);
    cr_assert(strstr(text, "2026-11-23T12:15:00Z"), "promised time:\n%s", text);
    free(text);
    omo_picklist_free(&pl);
}

/* ---- csv ------------------------------------------------------------------------------- */

/* An RFC 4180 reader: records of fields, for checking what was written. */
typedef struct csv_doc {
    char *fields[64][16];
    int nfields[64];
    int nrecords;
} csv_doc;

static void csv_read(const char *s, csv_doc *doc)
{
    memset(doc, 0, sizeof *doc);
    char field[512];
    size_t n = 0;
    int r = 0, f = 0;
    while (*s) {
        if (*s == '"') {
            for (s++;; s++) {
                cr_assert(*s, "unterminated quote");
                if (*s == '"' && s[1] == '"') {
                    field[n++] = '"';
                    s++;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    field[n++] = *s;
                }
            }
            cr_assert(*s == ',' || *s == '\r', "text after a closing quote");
        }
        if (*s == ',' || *s == '\r') {
            field[n] = 0;
            doc->fields[r][f++] = strdup(field);
            n = 0;
            if (*s == '\r') {
                cr_assert_eq(s[1], '\n', "records end with CRLF");
                doc->nfields[r++] = f;
                f = 0;
                s++;
            }
            s++;
            continue;
        }
        cr_assert(*s != '"' && *s != '\n', "a bare quote or line feed inside a field");
        field[n++] = *s++;
    }
    cr_assert_eq(f, 0, "the last record ends with CRLF");
    doc->nrecords = r;
}

static void csv_free(csv_doc *doc)
{
    for (int r = 0; r < doc->nrecords; r++)
        for (int f = 0; f < doc->nfields[r]; f++)
            free(doc->fields[r][f]);
}

Test(picklist, csv_has_a_header_and_quotes_fields)
{
    omo_picklist pl = sample();
    char *csv = omo_picklist_render(&pl, "csv", false, NULL, NULL);
    cr_assert_not_null(csv);
    csv_doc doc;
    csv_read(csv, &doc);
    cr_assert_eq(doc.nrecords, 5);
    static const char *const header[] = {"step",         "bin",         "sku",      "qty",
                                         "tote",         "shipment_id", "order_id", "method",
                                         "pickup_store", "promised_at"};
    for (int r = 0; r < doc.nrecords; r++)
        cr_assert_eq(doc.nfields[r], 10, "record %d", r);
    for (int f = 0; f < 10; f++)
        cr_assert_str_eq(doc.fields[0][f], header[f]);
    /* step 1: 02-01-1, the pickup tote (numbered 1: first in the walk) */
    char **row = doc.fields[1];
    cr_assert_str_eq(row[0], "1");
    cr_assert_str_eq(row[1], "02-01-1");
    cr_assert_str_eq(row[2], long_sku);
    cr_assert_str_eq(row[3], "12");
    cr_assert_str_eq(row[4], "1");
    cr_assert_str_eq(row[5], "W-1002/2");
    cr_assert_str_eq(row[6], "W-1002");
    cr_assert_str_eq(row[7], "click_and_collect");
    cr_assert_str_eq(row[8], "S-012");
    cr_assert_str_eq(row[9], "2026-11-23T12:15:00Z");
    row = doc.fields[4];
    cr_assert_str_eq(row[0], "4");
    cr_assert_str_eq(row[1], "");
    cr_assert_str_eq(row[2], "SKU,42 \"quoted\"");
    cr_assert_str_eq(row[4], "2");
    cr_assert_str_eq(row[7], "ship_from_store");
    cr_assert_str_eq(row[8], "");
    cr_assert_str_eq(row[9], "");
    cr_assert(strstr(csv, "\"SKU,42 \"\"quoted\"\"\""), "%s", csv);
    csv_free(&doc);
    free(csv);
    omo_picklist_free(&pl);
}

/* ---- json ------------------------------------------------------------------------------ */

Test(picklist, json_parses_and_matches)
{
    omo_picklist pl = sample();
    size_t len;
    char *text = omo_picklist_render(&pl, "json", false, NULL, &len);
    cr_assert_not_null(text);
    json_error_t err;
    json_t *root = json_loadb(text, len, 0, &err);
    cr_assert_not_null(root, "%s: %s", err.text, text);
    cr_assert_str_eq(json_string_value(json_object_get(root, "store_id")), "S-012");
    cr_assert_str_eq(json_string_value(json_object_get(root, "generated_at")),
                     "2026-11-23T10:15:00Z");
    json_t *totes = json_object_get(root, "totes"), *rows = json_object_get(root, "rows");
    cr_assert_eq(json_array_size(totes), 3);
    cr_assert_eq(json_array_size(rows), 4);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(totes, i), "number")),
                     (json_int_t)i + 1, "totes in number order");
    json_t *t1 = json_array_get(totes, 0), *t2 = json_array_get(totes, 1);
    cr_assert_str_eq(json_string_value(json_object_get(t1, "shipment_id")), "W-1002/2");
    cr_assert_str_eq(json_string_value(json_object_get(t1, "order_id")), "W-1002");
    cr_assert_str_eq(json_string_value(json_object_get(t1, "method")), "click_and_collect");
    cr_assert_str_eq(json_string_value(json_object_get(t1, "pickup_store_id")), "S-012");
    cr_assert_str_eq(json_string_value(json_object_get(t1, "promised_at")), "2026-11-23T12:15:00Z");
    cr_assert_str_eq(json_string_value(json_object_get(t2, "method")), "ship_from_store");
    cr_assert_null(json_object_get(t2, "pickup_store_id"));
    cr_assert_null(json_object_get(t2, "promised_at"));
    json_t *r1 = json_array_get(rows, 0), *r4 = json_array_get(rows, 3);
    cr_assert_eq(json_integer_value(json_object_get(r1, "step")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(r1, "bin")), "02-01-1");
    cr_assert_str_eq(json_string_value(json_object_get(r1, "sku")), long_sku);
    cr_assert_str_eq(json_string_value(json_object_get(r1, "line_id")), "1");
    cr_assert_eq(json_integer_value(json_object_get(r1, "qty")), 12);
    cr_assert_eq(json_integer_value(json_object_get(r1, "tote")), 1);
    cr_assert(json_is_null(json_object_get(r4, "bin")), "no bin is null");
    cr_assert_str_eq(json_string_value(json_object_get(r4, "sku")), "SKU,42 \"quoted\"");
    cr_assert_eq(json_integer_value(json_object_get(r4, "tote")), 2);
    json_decref(root);
    free(text);
    omo_picklist_free(&pl);
}

Test(picklist, json_survives_bytes_that_are_not_utf8)
{
    omo_picklist pl = new_list("S-\xff");
    int t = add_tote(&pl, "W-\xc3/1", "W-\xc3", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0);
    add_row(&pl, "1-1-1", "SKU-\x80", "1", 1, t);
    size_t len;
    char *text = omo_picklist_render(&pl, "json", false, NULL, &len);
    cr_assert_not_null(text);
    json_t *root = json_loadb(text, len, 0, NULL);
    cr_assert_not_null(root, "%s", text);
    cr_assert_str_eq(json_string_value(json_object_get(root, "store_id")), "S-\xEF\xBF\xBD");
    json_decref(root);
    free(text);
    omo_picklist_free(&pl);
}

/* ---- html ------------------------------------------------------------------------------ */

Test(picklist, html_controls_only_with_actions)
{
    omo_picklist pl = sample();
    char *page = omo_picklist_render(&pl, "html", true, "tok-123", NULL);
    cr_assert_not_null(page);
    cr_assert(strstr(page, "<button type=\"button\" class=\"confirm\" "
                           "data-shipment=\"W-1002/2\">"),
              "confirm button");
    cr_assert(strstr(page, "class=\"short\" aria-expanded=\"false\" data-shipment=\"W-1001/1\""));
    cr_assert(strstr(page, "class=\"submit-short\" data-shipment=\"W-1001/1\""));
    cr_assert(strstr(page, "<section class=\"tote\" id=\"tote-1\" data-tote=\"1\" "
                           "data-shipment=\"W-1002/2\">"));
    cr_assert(strstr(page, "<input class=\"picked\" type=\"number\""));
    cr_assert(strstr(page, "data-line=\"2\" data-qty=\"1\""), "line 2 of W-1001/1");
    cr_assert(strstr(page, "<select class=\"reason\" data-line=\"1\""));
    cr_assert(strstr(page, "<option value=\"not_found\">"));
    cr_assert(strstr(page, "<option value=\"damaged\">"));
    cr_assert(strstr(page, "<option value=\"mismatch\">"));
    cr_assert_eq(occurrences(page, "class=\"result\""), 3, "one result per card");
    cr_assert(strstr(page, "Order W-1001</div><div class=\"sub\">2 lines, 3 units</div>"));
    cr_assert(strstr(page, "Order W-1002</div><div class=\"sub\">1 line, 12 units</div>"));
    cr_assert_eq(occurrences(page, "<button type=\"button\" class=\"confirm\""), 3);
    cr_assert(strstr(page, "var TOKEN=\"tok-123\";"));
    cr_assert(strstr(page, "encodeURIComponent(card.getAttribute('data-shipment'))"));
    cr_assert(strstr(page, "'/picks/'"));
    cr_assert(strstr(page, "'Bearer '+TOKEN"));
    cr_assert(strstr(page, "@media print"));
    cr_assert_eq(occurrences(page, "http://"), occurrences(page, "http://www.w3.org/2000/svg"),
                 "no external resources");
    cr_assert_null(strstr(page, "https://"), "no external resources");
    cr_assert_null(strstr(page, " src="), "no external resources");
    free(page);

    page = omo_picklist_render(&pl, "html", false, "tok-123", NULL);
    cr_assert_not_null(page);
    cr_assert_null(strstr(page, "<button"), "no controls on a printable list");
    cr_assert_null(strstr(page, "<input"));
    cr_assert_null(strstr(page, "<select"));
    cr_assert_null(strstr(page, "<script"));
    cr_assert_null(strstr(page, "tok-123"), "no token on a printable list");
    cr_assert(strstr(page, "data-shipment=\"W-1002/2\""), "cards still carry their shipment");
    free(page);
    omo_picklist_free(&pl);
}

/* A line found in two bins is one entry of the short form, asking for both rows' units. */
Test(picklist, html_short_form_has_one_entry_per_line)
{
    omo_picklist pl = new_list("S-1");
    int t = add_tote(&pl, "W-5/1", "W-5", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0);
    int u = add_tote(&pl, "W-6/1", "W-6", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0 + 1);
    add_row(&pl, "3-1-1", "SKU-A", "1", 2, t);
    add_row(&pl, "1-1-1", "SKU-A", "1", 3, t);
    add_row(&pl, "2-1-1", "SKU-B", "2", 1, t);
    add_row(&pl, "2-2-1", "SKU-A", "1", 7, u);
    omo_picklist_sort(&pl);
    char *page = omo_picklist_render(&pl, "html", true, "", NULL);
    cr_assert_not_null(page);
    const char *card = strstr(page, "data-shipment=\"W-5/1\"><div class=\"label\">");
    const char *other = strstr(page, "data-shipment=\"W-6/1\"><div class=\"label\">");
    cr_assert(card && other && card < other);
    cr_assert_eq(occurrences(page, "<input class=\"picked\""), 3);
    const char *line1 = strstr(card, "data-line=\"1\" data-qty=\"");
    cr_assert(line1 && line1 < other);
    cr_assert(!strncmp(line1, "data-line=\"1\" data-qty=\"5\"", 25), "%.40s", line1);
    cr_assert(strstr(other, "data-line=\"1\" data-qty=\"7\""));
    cr_assert(strstr(card, "3 lines, 6 units"));
    free(page);
    omo_picklist_free(&pl);
}

Test(picklist, html_escapes_every_string)
{
    static const char evil[] = "<b>&\"'";
    omo_picklist pl = new_list("S-<i>");
    int t = add_tote(&pl, "W-\"x'/1", "W-<script>", OMO_METHOD_CLICK_AND_COLLECT, "S-&",
                     T0 + 3600000, T0);
    add_row(&pl, "1-1-1", evil, "<l>", 1, t);
    add_row(&pl, "", "SKU</script>", "2", 1, t);
    char *page = omo_picklist_render(&pl, "html", true, "a\"b</script><img src=x>\\'\n", NULL);
    cr_assert_not_null(page);
    cr_assert(strstr(page, "&lt;b&gt;&amp;&quot;&#39;"), "the SKU is escaped");
    cr_assert_null(strstr(page, evil));
    cr_assert_null(strstr(page, "<b>&"));
    cr_assert_null(strstr(page, "<i>"));
    cr_assert_null(strstr(page, "<l>"));
    cr_assert_null(strstr(page, "W-<script>"));
    cr_assert_null(strstr(page, "SKU</script>"));
    cr_assert_null(strstr(page, "<img"));
    cr_assert(strstr(page, "data-shipment=\"W-&quot;x&#39;/1\""));
    cr_assert(strstr(page, "S-&amp;"));
    cr_assert(strstr(page, "var TOKEN=\"a\\\"b\\u003c/script\\u003e\\u003cimg src=x\\u003e\\\\"
                           "\\u0027\\u000a\";"),
              "the token is a JS string");
    cr_assert_eq(occurrences(page, "<script"), 1);
    cr_assert_eq(occurrences(page, "</script>"), 1);
    free(page);
    omo_picklist_free(&pl);
}

Test(picklist, html_has_a_barcode_per_tote_and_pages_of_30_rows)
{
    omo_picklist pl = new_list("S-1");
    int totes[9];
    for (int i = 0; i < 9; i++) {
        char ship[32], order[32];
        snprintf(order, sizeof order, "W-%d", 100 + i);
        snprintf(ship, sizeof ship, "W-%d/1", 100 + i);
        totes[i] = add_tote(&pl, ship, order, OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0 + i);
    }
    for (int i = 0; i < 61; i++) {
        char bin[16], sku[16], line[8];
        snprintf(bin, sizeof bin, "%02d-%02d-%d", 1 + i / 12, 1 + i % 12, 1 + i % 3);
        snprintf(sku, sizeof sku, "SKU-%05d", i);
        snprintf(line, sizeof line, "%d", 1 + i / 9);
        add_row(&pl, bin, sku, line, 1 + i % 4, totes[i % 9]);
    }
    omo_picklist_sort(&pl);
    char *page = omo_picklist_render(&pl, "html", false, NULL, NULL);
    cr_assert_not_null(page);
    cr_assert_eq(occurrences(page, "<svg class=\"code128\""), 9);
    cr_assert_eq(occurrences(page, "<div class=\"row\""), 61);
    /* 61 rows: three walk sheets (30, 30, 1), then two sheets of tote labels (8, 1). */
    cr_assert_eq(occurrences(page, "<section class=\"block walk"), 3);
    cr_assert_eq(occurrences(page, "<section class=\"block totes"), 2);
    cr_assert_eq(occurrences(page, "class=\"phead\""), 5, "a print header on every sheet");
    cr_assert_eq(occurrences(page, " last\""), 1, "only the last sheet has no page break");
    cr_assert(strstr(page, "page-break-after:always"));
    cr_assert(strstr(page, "sheet 5/5"));
    const char *second = strstr(page, "steps 31&ndash;60 of 61");
    cr_assert_not_null(second);
    /* Each block holds the steps it names: step 30 before the second header, 31 after. */
    cr_assert(strstr(page, "data-step=\"30\"") < second);
    cr_assert(strstr(page, "data-step=\"31\"") > second);
    free(page);
    omo_picklist_free(&pl);
}

/* ---- Code 128 -------------------------------------------------------------------------- */

/* The bar and space widths drawn in the first barcode of page, as digits. */
static void drawn_widths(const char *page, char *out, size_t cap, int *total, int *first_x)
{
    const char *svg = strstr(page, "<svg class=\"code128\"");
    cr_assert_not_null(svg);
    const char *vb = strstr(svg, "viewBox=\"0 0 ");
    cr_assert_not_null(vb);
    *total = atoi(vb + strlen("viewBox=\"0 0 "));
    const char *p = strstr(svg, "<g fill=\"#000\">"), *end = strstr(svg, "</g>");
    cr_assert(p && end);
    size_t n = 0;
    int prev_end = -1;
    *first_x = -1;
    while ((p = strstr(p, "<rect x=\"")) && p < end) {
        int x, w;
        cr_assert_eq(sscanf(p, "<rect x=\"%d\" y=\"0\" width=\"%d\"", &x, &w), 2);
        if (*first_x < 0)
            *first_x = x;
        if (prev_end >= 0) {
            cr_assert(x - prev_end >= 1 && x - prev_end <= 4, "space of %d", x - prev_end);
            out[n++] = (char)('0' + x - prev_end);
        }
        cr_assert(w >= 1 && w <= 4, "bar of %d", w);
        out[n++] = (char)('0' + w);
        cr_assert_lt(n, cap);
        prev_end = x + w;
        p++;
    }
    out[n] = 0;
}

/* "W-1/1" in code set B, by hand:
 *   values: W = 87-32 = 55, '-' = 13, '1' = 17, '/' = 15, '1' = 17
 *   checksum = (104 + 1*55 + 2*13 + 3*17 + 4*15 + 5*17) mod 103 = 381 mod 103 = 72
 *   start B 104 = 211214, 55 = 311321, 13 = 122132, 17 = 123221, 15 = 113222,
 *   17 = 123221, check 72 = 122411, stop = 2331112. */
Test(picklist, code128_of_a_shipment_id)
{
    omo_picklist pl = new_list("S-1");
    int t = add_tote(&pl, "W-1/1", "W-1", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0);
    add_row(&pl, "1-1-1", "SKU", "1", 1, t);
    omo_picklist_sort(&pl);
    char *page = omo_picklist_render(&pl, "html", false, NULL, NULL);
    cr_assert_not_null(page);
    char widths[512];
    int total, first_x;
    drawn_widths(page, widths, sizeof widths, &total, &first_x);
    static const char want[] = "211214"
                               "311321"
                               "122132"
                               "123221"
                               "113222"
                               "123221"
                               "122411" /* checksum 72 */
                               "2331112";
    cr_assert_str_eq(widths, want);
    cr_assert_str_eq(widths + 6 * 6, "1224112331112", "the check symbol is value 72");
    cr_assert_eq(first_x, 10, "quiet zone of ten modules before");
    cr_assert_eq(total, 10 + 8 * 11 + 2 + 10, "and after: 13 modules of stop, 11 per symbol");
    cr_assert(strstr(page, "<div class=\"hr\">W-1/1</div>"), "human-readable id under it");
    free(page);
    omo_picklist_free(&pl);
}

/* Every symbol drawn is a valid Code 128 pattern: 11 modules, bars of even total. */
Test(picklist, code128_symbols_are_well_formed)
{
    omo_picklist pl = new_list("S-1");
    char all[128];
    size_t n = 0;
    for (int c = 32; c < 127 && n < 95; c++)
        all[n++] = (char)c;
    all[n] = 0;
    /* Keep it within an id's length: the first 80 printable characters. */
    all[80] = 0;
    int t = add_tote(&pl, all, "W-1", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0);
    add_row(&pl, "1-1-1", "SKU", "1", 1, t);
    char *page = omo_picklist_render(&pl, "html", false, NULL, NULL);
    cr_assert_not_null(page);
    char widths[2048];
    int total, first_x;
    drawn_widths(page, widths, sizeof widths, &total, &first_x);
    size_t len = strlen(widths);
    cr_assert_eq(len, (80 + 2) * 6 + 7);
    for (size_t s = 0; s + 7 < len; s += 6) {
        int sum = 0, bars = 0;
        for (int k = 0; k < 6; k++) {
            sum += widths[s + k] - '0';
            if (k % 2 == 0)
                bars += widths[s + k] - '0';
        }
        cr_assert_eq(sum, 11, "symbol %zu", s / 6);
        cr_assert_eq(bars % 2, 0, "symbol %zu has odd bar parity", s / 6);
        for (size_t o = 0; o < s; o += 6)
            if (o / 6 >= 1 && o / 6 <= 80 && s / 6 >= 1 && s / 6 <= 80)
                cr_assert(memcmp(widths + o, widths + s, 6) != 0,
                          "characters %zu and %zu share a pattern", o / 6, s / 6);
    }
    free(page);
    omo_picklist_free(&pl);
}

/* ---- in a browser ---------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *len = 0;
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    *len = fread(buf, 1, (size_t)size, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

/* 45 rows over 9 totes in 4 aisles, a third of them pickups, a few without bins. */
static omo_picklist browser_sample(void)
{
    omo_picklist pl = new_list("S-012");
    int totes[9];
    for (int i = 0; i < 9; i++) {
        char ship[32], order[32];
        snprintf(order, sizeof order, "W-%d", 1001 + i);
        snprintf(ship, sizeof ship, "W-%d/%d", 1001 + i, 1 + i % 2);
        bool pickup = i % 3 == 1;
        totes[i] = add_tote(&pl, ship, order,
                            pickup ? OMO_METHOD_CLICK_AND_COLLECT : OMO_METHOD_SHIP_FROM_STORE,
                            pickup ? (i == 4 ? "S-007" : "S-012") : NULL,
                            pickup ? T0 + (3 + i) * 3600000LL : 0, T0 - (9 - i) * 60000LL);
    }
    static const int aisles[] = {2, 3, 5, 8};
    for (int i = 0; i < 45; i++) {
        char bin[16], sku[40], line[8];
        if (i % 11 == 10)
            bin[0] = 0;
        else
            snprintf(bin, sizeof bin, "%02d-%02d-%d", aisles[i % 4], 1 + (i * 5) % 13,
                     1 + (i / 4) % 4);
        if (i == 5)
            snprintf(sku, sizeof sku, "SKU-%05d-LONG-DESCRIPTIVE-NAME-X", i * 37);
        else
            snprintf(sku, sizeof sku, "SKU-%05d", i * 37);
        snprintf(line, sizeof line, "%d", 1 + i / 9);
        add_row(&pl, bin, sku, line, 1 + (i * 5) % 4, totes[i % 9]);
    }
    omo_picklist_sort(&pl);
    return pl;
}

static int run_chromium(const char *chromium, const char *what, const char *html)
{
    char profile[] = "/tmp/omo-picklist-chromium-XXXXXX", cmd[4096];
    cr_assert_not_null(mkdtemp(profile));
    snprintf(cmd, sizeof cmd,
             "%s --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
             "--disable-background-networking --disable-component-update --disable-sync "
             "--user-data-dir=%s %s file://%s >/dev/null 2>&1",
             chromium, profile, what, html);
    int status = system(cmd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", profile);
    cr_assert_eq(system(cmd), 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(picklist, html_renders_on_a_phone_and_on_paper, .timeout = 240)
{
    const char *chromium = "/usr/bin/chromium";
    if (access(chromium, X_OK) != 0)
        cr_skip_test("%s is not installed: the page is not rendered", chromium);
    const char *dir = OMO_SOURCE_DIR "/tests/artifacts";
    cr_assert(mkdir(dir, 0755) == 0 || access(dir, W_OK) == 0);
    const char *html = OMO_SOURCE_DIR "/tests/artifacts/picklist.html",
               *png = OMO_SOURCE_DIR "/tests/artifacts/picklist_phone.png",
               *pdf = OMO_SOURCE_DIR "/tests/artifacts/picklist_print.pdf";
    unlink(png);
    unlink(pdf);

    omo_picklist pl = browser_sample();
    size_t len;
    char *page = omo_picklist_render(&pl, "html", true, "store-token", &len);
    cr_assert_not_null(page);
    FILE *f = fopen(html, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(page, 1, len, f), len);
    fclose(f);
    free(page);
    omo_picklist_free(&pl);

    char what[1024];
    snprintf(what, sizeof what, "--screenshot=%s --window-size=390,1600 --hide-scrollbars", png);
    cr_assert_eq(run_chromium(chromium, what, html), 0, "chromium --screenshot failed");
    snprintf(what, sizeof what, "--print-to-pdf=%s --no-pdf-header-footer", pdf);
    cr_assert_eq(run_chromium(chromium, what, html), 0, "chromium --print-to-pdf failed");

    char *img = slurp(png, &len);
    cr_assert_not_null(img, "no screenshot");
    cr_assert(len > 20000, "the screenshot is only %zu bytes", len);
    cr_assert(!memcmp(img, "\x89PNG\r\n\x1a\n", 8), "not a PNG");
    /* IHDR: the page is drawn at the phone's width. */
    unsigned width = (unsigned char)img[16] << 24 | (unsigned char)img[17] << 16 |
                     (unsigned char)img[18] << 8 | (unsigned char)img[19];
    cr_assert_eq(width, 390);
    free(img);

    char *doc = slurp(pdf, &len);
    cr_assert_not_null(doc, "no PDF");
    cr_assert(len > 10000, "the PDF is only %zu bytes", len);
    cr_assert(!memcmp(doc, "%PDF-", 5), "not a PDF");
    /* 45 rows: two walk sheets (30 + 15), and two sheets of tote labels (8 + 1). */
    /* Skia writes one page tree: its root's /Count is the number of pages. */
    const char *count = memmem(doc, len, "/Count ", 7); /* binary: not strstr */
    cr_assert_not_null(count, "no page tree");
    int pages = atoi(count + strlen("/Count "));
    cr_assert_eq(pages, 4, "the PDF has %d pages", pages);
    free(doc);
}

/* The labels scan: a barcode reader, given the page as drawn, reads back every shipment id. */
Test(picklist, code128_labels_scan, .timeout = 240)
{
    const char *chromium = "/usr/bin/chromium", *zbarimg = "/usr/bin/zbarimg";
    if (access(chromium, X_OK) != 0 || access(zbarimg, X_OK) != 0)
        cr_skip_test("%s or %s is not installed: nothing to draw or read the labels", chromium,
                     zbarimg);
    static const char *const ids[] = {"W-1/1", "Q-7 {x}|~^_`/3", "ORD-2026-000123/2"};
    omo_picklist pl = new_list("S-1");
    for (int i = 0; i < 3; i++) {
        int t = add_tote(&pl, ids[i], "O", OMO_METHOD_SHIP_FROM_STORE, NULL, 0, T0 + i);
        add_row(&pl, "1-1-1", "SKU", "1", 1, t);
    }
    omo_picklist_sort(&pl);
    size_t len;
    char *page = omo_picklist_render(&pl, "html", false, NULL, &len);
    cr_assert_not_null(page);
    omo_picklist_free(&pl);
    char dir[] = "/tmp/omo-picklist-scan-XXXXXX", html[128], png[128], what[512], cmd[512];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(html, sizeof html, "%s/labels.html", dir);
    snprintf(png, sizeof png, "%s/labels.png", dir);
    FILE *f = fopen(html, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(page, 1, len, f), len);
    fclose(f);
    free(page);
    /* Wide enough that every module is a whole number of pixels. */
    snprintf(what, sizeof what, "--screenshot=%s --window-size=800,1400 --hide-scrollbars", png);
    cr_assert_eq(run_chromium(chromium, what, html), 0, "chromium --screenshot failed");
    snprintf(cmd, sizeof cmd, "%s -q --raw '%s' 2>/dev/null", zbarimg, png);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char line[256];
    bool seen[3] = {false, false, false};
    int reads = 0;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        reads++;
        for (int i = 0; i < 3; i++)
            if (!strcmp(line, ids[i]))
                seen[i] = true;
    }
    pclose(p);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    for (int i = 0; i < 3; i++)
        cr_assert(seen[i], "\"%s\" did not scan (%d codes read)", ids[i], reads);
    cr_assert_eq(reads, 3);
}
