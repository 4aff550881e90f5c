/* A store's pick list: the walk through the store and its renderings (contract section 7). */
#include "picklist.h"

#include "strbuf.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows per printed page: the sheet an associate carries holds this many lines. */
#define ROWS_PER_PAGE 30
/* Tote labels per printed page (two columns of four). */
#define TOTES_PER_PAGE 8
/* Width of the text rendering. */
#define TEXT_COLS 80

/* ---- a growing string ------------------------------------------------------------------ */

/* ---- bins and the walk ----------------------------------------------------------------- */

/* One number of a bin: 1 to 9 digits, so it always fits an int. */
static const char *bin_number(const char *s, int *out)
{
    int v = 0, digits = 0;
    while (*s >= '0' && *s <= '9') {
        if (++digits > 9)
            return NULL;
        v = v * 10 + (*s++ - '0');
    }
    if (!digits)
        return NULL;
    *out = v;
    return s;
}

bool omo_bin_parse(const char *bin, int *aisle, int *bay, int *shelf)
{
    int v[3];
    const char *s = bin;
    if (!s)
        return false;
    for (int i = 0; i < 3; i++) {
        s = bin_number(s, &v[i]);
        if (!s || *s != (i < 2 ? '-' : '\0'))
            return false;
        s++;
    }
    if (aisle)
        *aisle = v[0];
    if (bay)
        *bay = v[1];
    if (shelf)
        *shelf = v[2];
    return true;
}

static const omo_tote *row_tote(const omo_picklist *pl, const omo_pick_row *row)
{
    return row->tote >= 0 && (size_t)row->tote < pl->ntotes ? &pl->totes[row->tote] : NULL;
}

/* The older order first; a row whose tote is missing comes after every real one. */
static int tote_age_cmp(const omo_tote *a, const omo_tote *b)
{
    if (!a || !b)
        return (a == NULL) - (b == NULL);
    if (a->created_ms != b->created_ms)
        return a->created_ms < b->created_ms ? -1 : 1;
    return strcmp(a->shipment_id, b->shipment_id);
}

typedef struct walk_key {
    const omo_picklist *pl;
    const omo_pick_row *row;
    size_t idx; /* the row's place before sorting: the last tie-break keeps qsort stable */
    bool binned;
    int aisle, bay, shelf; /* bay negated in aisles walked downwards */
} walk_key;

static int int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int walk_cmp(const void *va, const void *vb)
{
    const walk_key *a = va, *b = vb;
    int c;
    if (a->binned != b->binned)
        return a->binned ? -1 : 1;
    if (a->binned) {
        if ((c = int_cmp(&a->aisle, &b->aisle)) || (c = int_cmp(&a->bay, &b->bay)) ||
            (c = int_cmp(&a->shelf, &b->shelf)))
            return c;
    } else if ((c = strcmp(a->row->sku, b->row->sku))) {
        return c;
    }
    if ((c = tote_age_cmp(row_tote(a->pl, a->row), row_tote(b->pl, b->row))))
        return c;
    if ((c = strcmp(a->row->line_id, b->row->line_id)))
        return c;
    return (a->idx > b->idx) - (a->idx < b->idx);
}

static int tote_index_age_cmp(const void *va, const void *vb, void *arg)
{
    const omo_picklist *pl = arg;
    int a = *(const int *)va, b = *(const int *)vb;
    int c = tote_age_cmp(&pl->totes[a], &pl->totes[b]);
    return c ? c : (a > b) - (a < b);
}

void omo_picklist_sort(omo_picklist *pl)
{
    if (!pl)
        return;
    walk_key *keys = omo_xcalloc(pl->nrows ? pl->nrows : 1, sizeof *keys);
    int *aisles = omo_xcalloc(pl->nrows ? pl->nrows : 1, sizeof *aisles);
    size_t naisles = 0;
    for (size_t i = 0; i < pl->nrows; i++) {
        walk_key *k = &keys[i];
        k->pl = pl;
        k->row = &pl->rows[i];
        k->idx = i;
        k->binned = omo_bin_parse(pl->rows[i].bin, &k->aisle, &k->bay, &k->shelf);
        if (k->binned)
            aisles[naisles++] = k->aisle;
    }
    /* Serpentine: the direction alternates with the aisles actually walked, so an aisle with
     * nothing to pick does not flip the ones after it. */
    if (naisles)
        qsort(aisles, naisles, sizeof *aisles, int_cmp);
    size_t nwalked = 0;
    for (size_t i = 0; i < naisles; i++)
        if (!nwalked || aisles[nwalked - 1] != aisles[i])
            aisles[nwalked++] = aisles[i];
    for (size_t i = 0; i < pl->nrows; i++) {
        walk_key *k = &keys[i];
        if (!k->binned)
            continue;
        const int *at = bsearch(&k->aisle, aisles, nwalked, sizeof *aisles, int_cmp);
        size_t walked = (size_t)(at - aisles); /* 0-based: even is the 1st, 3rd, ... */
        if (walked % 2)
            k->bay = -k->bay;
    }
    if (pl->nrows)
        qsort(keys, pl->nrows, sizeof *keys, walk_cmp);

    omo_pick_row *sorted = omo_xcalloc(pl->nrows ? pl->nrows : 1, sizeof *sorted);
    for (size_t i = 0; i < pl->nrows; i++)
        sorted[i] = *keys[i].row;
    if (pl->nrows)
        memcpy(pl->rows, sorted, pl->nrows * sizeof *sorted);
    free(sorted);
    free(keys);
    free(aisles);

    int next = 1;
    for (size_t t = 0; t < pl->ntotes; t++)
        pl->totes[t].number = 0;
    for (size_t i = 0; i < pl->nrows; i++) {
        omo_tote *tote = (omo_tote *)row_tote(pl, &pl->rows[i]);
        if (tote && !tote->number)
            tote->number = next++;
    }
    /* A tote with nothing left to pick still gets a number, after the walked ones, oldest
     * order first, so every label on the list is distinct. */
    int *idle = omo_xcalloc(pl->ntotes ? pl->ntotes : 1, sizeof *idle);
    size_t nidle = 0;
    for (size_t t = 0; t < pl->ntotes; t++)
        if (!pl->totes[t].number)
            idle[nidle++] = (int)t;
    if (nidle)
        qsort_r(idle, nidle, sizeof *idle, tote_index_age_cmp, pl);
    for (size_t i = 0; i < nidle; i++)
        pl->totes[idle[i]].number = next++;
    free(idle);
}

void omo_picklist_free(omo_picklist *pl)
{
    if (!pl)
        return;
    free(pl->totes);
    free(pl->rows);
    pl->totes = NULL;
    pl->rows = NULL;
    pl->ntotes = pl->nrows = 0;
}

/* ---- shared pieces of the renderings --------------------------------------------------- */

/* The number printed for a tote: its walk number, or its place when the list is unsorted. */
static int tote_number(const omo_picklist *pl, const omo_tote *tote)
{
    return tote->number > 0 ? tote->number : (int)(tote - pl->totes) + 1;
}

static int tote_number_cmp(const void *va, const void *vb, void *arg)
{
    const omo_picklist *pl = arg;
    int a = *(const int *)va, b = *(const int *)vb;
    int na = tote_number(pl, &pl->totes[a]), nb = tote_number(pl, &pl->totes[b]);
    return na != nb ? (na > nb) - (na < nb) : (a > b) - (a < b);
}

/* Tote indices in label order. Caller frees. */
static int *totes_by_number(const omo_picklist *pl)
{
    int *order = omo_xcalloc(pl->ntotes ? pl->ntotes : 1, sizeof *order);
    for (size_t t = 0; t < pl->ntotes; t++)
        order[t] = (int)t;
    if (pl->ntotes)
        qsort_r(order, pl->ntotes, sizeof *order, tote_number_cmp, (void *)pl);
    return order;
}

static bool is_pickup(const omo_tote *tote)
{
    return tote->method == OMO_METHOD_CLICK_AND_COLLECT;
}

static int64_t total_units(const omo_picklist *pl)
{
    int64_t units = 0;
    for (size_t i = 0; i < pl->nrows; i++)
        units += pl->rows[i].qty;
    return units;
}

/* ---- text ------------------------------------------------------------------------------ */

/* Writes s in exactly `width` columns (one per code point): cut with an ellipsis when longer,
 * padded with spaces when shorter (on the left when `right`). Control characters and bytes
 * that are not UTF-8 print as '?', so an id can never break a line. */
static void text_cell(omo_strbuf *sb, const char *s, int width, bool right)
{
    const unsigned char *p = (const unsigned char *)s;
    int cols = 0;
    for (const unsigned char *q = p; *q;) {
        size_t n = omo_utf8_seq(q);
        q += n ? n : 1;
        cols++;
    }
    bool cut = cols > width;
    int shown = cut ? width - 1 : cols;
    if (right && !cut)
        for (int i = cols; i < width; i++)
            omo_strbuf_putc(sb, ' ');
    for (int i = 0; i < shown; i++) {
        size_t n = omo_utf8_seq(p);
        if (!n || *p < 0x20 || *p == 0x7F)
            omo_strbuf_putc(sb, '?');
        else
            omo_strbuf_put(sb, (const char *)p, n);
        p += n ? n : 1;
    }
    if (cut && width > 0)
        omo_strbuf_puts(sb, "\xE2\x80\xA6"); /* U+2026 */
    if (!right && !cut)
        for (int i = cols; i < width; i++)
            omo_strbuf_putc(sb, ' ');
}

/* Drops the padding a line ends with. */
static void text_endline(omo_strbuf *sb)
{
    while (sb->len && sb->p[sb->len - 1] == ' ')
        sb->p[--sb->len] = 0;
    omo_strbuf_putc(sb, '\n');
}

static void text_rule(omo_strbuf *sb)
{
    for (int i = 0; i < TEXT_COLS; i++)
        omo_strbuf_putc(sb, '-');
    omo_strbuf_putc(sb, '\n');
}

/* STEP(5) BIN(10) SKU(*) QTY(6) TOTE(4), two spaces apart: the SKU takes what is left. */
enum { T_STEP = 5, T_BIN = 10, T_QTY = 6, T_TOTE = 4, T_GAP = 2 };
#define T_SKU (TEXT_COLS - T_STEP - T_BIN - T_QTY - T_TOTE - 4 * T_GAP)

static void text_row(omo_strbuf *sb, const char *step, const char *bin, const char *sku,
                     const char *qty, const char *tote)
{
    text_cell(sb, step, T_STEP, true);
    omo_strbuf_puts(sb, "  ");
    text_cell(sb, bin, T_BIN, false);
    omo_strbuf_puts(sb, "  ");
    text_cell(sb, sku, T_SKU, false);
    omo_strbuf_puts(sb, "  ");
    text_cell(sb, qty, T_QTY, true);
    omo_strbuf_puts(sb, "  ");
    text_cell(sb, tote, T_TOTE, true);
    text_endline(sb);
}

/* TOTE(4) SHIPMENT(24) ORDER(24) METHOD(17): 75 columns. */
enum { L_NUM = 4, L_SHIP = 24, L_ORDER = 24, L_METHOD = 17 };

static void text_legend_row(omo_strbuf *sb, const char *num, const char *ship, const char *order,
                            const char *method)
{
    text_cell(sb, num, L_NUM, true);
    omo_strbuf_puts(sb, "  ");
    text_cell(sb, ship, L_SHIP, false);
    omo_strbuf_puts(sb, "  ");
    text_cell(sb, order, L_ORDER, false);
    omo_strbuf_puts(sb, "  ");
    text_cell(sb, method, L_METHOD, false);
    text_endline(sb);
}

static void render_text(omo_strbuf *sb, const omo_picklist *pl)
{
    char when[40], buf[64], buf2[64], buf3[32];
    omo_time_format(pl->generated_ms, when, sizeof when);

    omo_strbuf_puts(sb, "PICK LIST  store ");
    text_cell(sb, pl->store_id, TEXT_COLS - 17 - 2 - 30, false);
    omo_strbuf_puts(sb, "  ");
    snprintf(buf, sizeof buf, "generated %s", when);
    text_cell(sb, buf, 30, true);
    text_endline(sb);
    snprintf(buf, sizeof buf, "%zu line%s, %lld unit%s, %zu tote%s", pl->nrows,
             pl->nrows == 1 ? "" : "s", (long long)total_units(pl), total_units(pl) == 1 ? "" : "s",
             pl->ntotes, pl->ntotes == 1 ? "" : "s");
    text_cell(sb, buf, TEXT_COLS, false);
    text_endline(sb);
    text_rule(sb);
    if (!pl->nrows) {
        omo_strbuf_puts(sb, "No open picks.\n");
    } else {
        text_row(sb, "STEP", "BIN", "SKU", "QTY", "TOTE");
        for (size_t i = 0; i < pl->nrows; i++) {
            const omo_pick_row *row = &pl->rows[i];
            const omo_tote *tote = row_tote(pl, row);
            snprintf(buf, sizeof buf, "%zu", i + 1);
            snprintf(buf2, sizeof buf2, "%lld", (long long)row->qty);
            if (tote)
                snprintf(buf3, sizeof buf3, "%d", tote_number(pl, tote));
            else
                snprintf(buf3, sizeof buf3, "-");
            text_row(sb, buf, row->bin[0] ? row->bin : "-", row->sku, buf2, buf3);
        }
    }
    if (!pl->ntotes)
        return;
    text_rule(sb);
    text_legend_row(sb, "TOTE", "SHIPMENT", "ORDER", "METHOD");
    int *order = totes_by_number(pl);
    for (size_t i = 0; i < pl->ntotes; i++) {
        const omo_tote *tote = &pl->totes[order[i]];
        snprintf(buf, sizeof buf, "%d", tote_number(pl, tote));
        text_legend_row(sb, buf, tote->shipment_id, tote->order_id, omo_method_name(tote->method));
        if (is_pickup(tote)) {
            /* Indented under the shipment column: pickup store, then when it is promised. */
            omo_strbuf_puts(sb, "        pickup at ");
            text_cell(sb, tote->pickup_store[0] ? tote->pickup_store : "?", 24, false);
            if (tote->promised_ms) {
                omo_time_format(tote->promised_ms, when, sizeof when);
                omo_strbuf_puts(sb, "  ready by ");
                text_cell(sb, when, 24, false);
            }
            text_endline(sb);
        }
    }
    free(order);
}

/* ---- csv ------------------------------------------------------------------------------- */

/* One RFC 4180 field: quoted only when it holds a comma, a quote or a line break. */
static void csv_field(omo_strbuf *sb, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        omo_strbuf_puts(sb, s);
        return;
    }
    omo_strbuf_putc(sb, '"');
    for (; *s; s++) {
        if (*s == '"')
            omo_strbuf_putc(sb, '"');
        omo_strbuf_putc(sb, *s);
    }
    omo_strbuf_putc(sb, '"');
}

static void render_csv(omo_strbuf *sb, const omo_picklist *pl)
{
    omo_strbuf_puts(
        sb, "step,bin,sku,qty,tote,shipment_id,order_id,method,pickup_store,promised_at\r\n");
    for (size_t i = 0; i < pl->nrows; i++) {
        const omo_pick_row *row = &pl->rows[i];
        const omo_tote *tote = row_tote(pl, row);
        omo_strbuf_printf(sb, "%zu,", i + 1);
        csv_field(sb, row->bin);
        omo_strbuf_putc(sb, ',');
        csv_field(sb, row->sku);
        omo_strbuf_printf(sb, ",%lld,", (long long)row->qty);
        if (tote) {
            omo_strbuf_printf(sb, "%d,", tote_number(pl, tote));
            csv_field(sb, tote->shipment_id);
            omo_strbuf_putc(sb, ',');
            csv_field(sb, tote->order_id);
            omo_strbuf_printf(sb, ",%s,", omo_method_name(tote->method));
            if (is_pickup(tote)) {
                csv_field(sb, tote->pickup_store);
                if (tote->promised_ms) {
                    char when[40];
                    omo_strbuf_putc(sb, ',');
                    omo_strbuf_puts(sb, omo_time_format(tote->promised_ms, when, sizeof when));
                } else {
                    omo_strbuf_putc(sb, ',');
                }
            } else {
                omo_strbuf_putc(sb, ',');
            }
        } else {
            omo_strbuf_puts(sb, ",,,,,");
        }
        omo_strbuf_puts(sb, "\r\n");
    }
}

/* ---- json ------------------------------------------------------------------------------ */

/* A JSON string from any bytes: invalid UTF-8 becomes U+FFFD, so the output always parses. */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    omo_strbuf clean = {0};
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = omo_utf8_seq(p);
        if (n) {
            omo_strbuf_put(&clean, (const char *)p, n);
            p += n;
        } else {
            omo_strbuf_puts(&clean, "\xEF\xBF\xBD");
            p++;
        }
    }
    j = json_string(clean.p ? clean.p : "");
    free(clean.p);
    return j;
}

static json_t *jtime(int64_t ms)
{
    char when[40];
    return json_string(omo_time_format(ms, when, sizeof when));
}

static bool render_json(omo_strbuf *sb, const omo_picklist *pl)
{
    json_t *root = json_object(), *totes = json_array(), *rows = json_array();
    json_object_set_new(root, "store_id", jstr(pl->store_id));
    json_object_set_new(root, "generated_at", jtime(pl->generated_ms));
    int *order = totes_by_number(pl);
    for (size_t i = 0; i < pl->ntotes; i++) {
        const omo_tote *tote = &pl->totes[order[i]];
        json_t *jt = json_object();
        json_object_set_new(jt, "number", json_integer(tote_number(pl, tote)));
        json_object_set_new(jt, "shipment_id", jstr(tote->shipment_id));
        json_object_set_new(jt, "order_id", jstr(tote->order_id));
        json_object_set_new(jt, "method", json_string(omo_method_name(tote->method)));
        if (is_pickup(tote)) {
            json_object_set_new(jt, "pickup_store_id", jstr(tote->pickup_store));
            if (tote->promised_ms)
                json_object_set_new(jt, "promised_at", jtime(tote->promised_ms));
        }
        json_array_append_new(totes, jt);
    }
    free(order);
    for (size_t i = 0; i < pl->nrows; i++) {
        const omo_pick_row *row = &pl->rows[i];
        const omo_tote *tote = row_tote(pl, row);
        json_t *jr = json_object();
        json_object_set_new(jr, "step", json_integer((json_int_t)(i + 1)));
        json_object_set_new(jr, "bin", row->bin[0] ? jstr(row->bin) : json_null());
        json_object_set_new(jr, "sku", jstr(row->sku));
        json_object_set_new(jr, "line_id", jstr(row->line_id));
        json_object_set_new(jr, "qty", json_integer(row->qty));
        json_object_set_new(jr, "tote", tote ? json_integer(tote_number(pl, tote)) : json_null());
        json_array_append_new(rows, jr);
    }
    json_object_set_new(root, "totes", totes);
    json_object_set_new(root, "rows", rows);
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!text)
        return false;
    omo_strbuf_puts(sb, text);
    omo_strbuf_putc(sb, '\n');
    free(text);
    return true;
}

/* ---- Code 128 -------------------------------------------------------------------------- */

/* Bar and space widths in modules of the 106 Code 128 symbols (values 0..105, bar first), from
 * the public symbology specification. Each symbol is 11 modules: three bars, three spaces. */
static const char code128_patterns[106][7] = {
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212",
    "221213", "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221",
    "223211", "221132", "221231", "213212", "223112", "312131", "311222", "321122", "321221",
    "312212", "322112", "322211", "212123", "212321", "232121", "111323", "131123", "131321",
    "112313", "132113", "132311", "211313", "231113", "231311", "112133", "112331", "132131",
    "113123", "113321", "133121", "313121", "211331", "231131", "213113", "213311", "213131",
    "311123", "311321", "331121", "312113", "312311", "332111", "314111", "221411", "431111",
    "111224", "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
    "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", "111242",
    "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311",
    "113141", "114131", "311141", "411131", "211412", "211214", "211232",
};
/* The stop symbol with its final bar: 13 modules. */
static const char code128_stop[] = "2331112";
enum { CODE128_START_B = 104, CODE128_QUIET = 10 };

/* Appends the widths of one symbol (as digits) to widths. */
static void code128_symbol(omo_strbuf *widths, int value)
{
    omo_strbuf_puts(widths, code128_patterns[value]);
}

/* The module widths of s in code set B, from the start symbol to the stop bar, as digits
 * alternating bar and space. Characters outside code set B (control and non-ASCII bytes)
 * are drawn as '?' so the label still scans as something an associate can compare. */
static void code128_encode(omo_strbuf *widths, const char *s)
{
    int sum = CODE128_START_B;
    code128_symbol(widths, CODE128_START_B);
    int pos = 1;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, pos++) {
        int value = (*p >= 32 && *p <= 126 ? *p : '?') - 32;
        code128_symbol(widths, value);
        sum += pos * value;
    }
    code128_symbol(widths, sum % 103);
    omo_strbuf_puts(widths, code128_stop);
}

/* The barcode as inline SVG: one <rect> per bar, x and width in modules, with a quiet zone of
 * ten modules either side. CSS sizes it from --m (the total modules). */
static void html_code128(omo_strbuf *sb, const char *s)
{
    omo_strbuf widths = {0};
    code128_encode(&widths, s);
    int modules = CODE128_QUIET * 2;
    for (size_t i = 0; i < widths.len; i++)
        modules += widths.p[i] - '0';
    omo_strbuf_printf(
        sb,
        "<svg class=\"code128\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d 40\" "
        "preserveAspectRatio=\"none\" shape-rendering=\"crispEdges\" style=\"--m:%d\" "
        "role=\"img\" aria-label=\"Code 128\"><rect width=\"%d\" height=\"40\" "
        "fill=\"#fff\"/><g fill=\"#000\">",
        modules, modules, modules);
    int x = CODE128_QUIET;
    for (size_t i = 0; i < widths.len; i++) {
        int w = widths.p[i] - '0';
        if (i % 2 == 0)
            omo_strbuf_printf(sb, "<rect x=\"%d\" y=\"0\" width=\"%d\" height=\"40\"/>", x, w);
        x += w;
    }
    omo_strbuf_puts(sb, "</g></svg>");
    free(widths.p);
}

/* ---- html ------------------------------------------------------------------------------ */

/* Text for HTML element content and attribute values alike; invalid UTF-8 becomes U+FFFD. */
static void html_esc(omo_strbuf *sb, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        switch (*p) {
        case '&':
            omo_strbuf_puts(sb, "&amp;");
            break;
        case '<':
            omo_strbuf_puts(sb, "&lt;");
            break;
        case '>':
            omo_strbuf_puts(sb, "&gt;");
            break;
        case '"':
            omo_strbuf_puts(sb, "&quot;");
            break;
        case '\'':
            omo_strbuf_puts(sb, "&#39;");
            break;
        default: {
            size_t n = omo_utf8_seq(p);
            if (!n || (*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7F) {
                omo_strbuf_puts(sb, "\xEF\xBF\xBD");
                p++;
            } else {
                omo_strbuf_put(sb, (const char *)p, n);
                p += n;
            }
            continue;
        }
        }
        p++;
    }
}

/* A JavaScript string literal safe inside a <script> element: besides quotes and
 * backslashes, '<', '>', '&' and the JS line separators are written as escapes, so no value
 * can close the element or the literal. */
static void js_string(omo_strbuf *sb, const char *s)
{
    omo_strbuf_putc(sb, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = omo_utf8_seq(p);
        if (!n) {
            omo_strbuf_puts(sb, "\\ufffd");
            p++;
        } else if (*p == '"' || *p == '\\') {
            omo_strbuf_putc(sb, '\\');
            omo_strbuf_putc(sb, (char)*p++);
        } else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&' || *p == '\'' || *p == 0x7F) {
            omo_strbuf_printf(sb, "\\u%04x", *p++);
        } else if (n == 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
            omo_strbuf_printf(sb, "\\u%04x", p[2] == 0xA8 ? 0x2028 : 0x2029);
            p += 3;
        } else {
            omo_strbuf_put(sb, (const char *)p, n);
            p += n;
        }
    }
    omo_strbuf_putc(sb, '"');
}

/* Display form of a time: "2026-11-23 12:00 UTC" (seconds only when not whole minutes). */
static void html_time(omo_strbuf *sb, int64_t ms)
{
    char iso[40];
    omo_time_format(ms, iso, sizeof iso);
    char shown[40];
    snprintf(shown, sizeof shown, "%s", iso);
    char *t = strchr(shown, 'T');
    if (t)
        *t = ' ';
    size_t n = strlen(shown);
    if (n && shown[n - 1] == 'Z')
        shown[--n] = 0;
    if (n == 19 && !strcmp(shown + 16, ":00"))
        shown[16] = 0;
    omo_strbuf_printf(sb, "<time datetime=\"%s\">%s UTC</time>", iso, shown);
}

static const char html_css[] =
    "*{box-sizing:border-box}"
    "html{-webkit-text-size-adjust:100%;text-size-adjust:100%}"
    "body{margin:0;font:16px/1.35 system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',"
    "'DejaVu Sans',sans-serif;color:#14181f;background:#eef0f3}"
    ".mono,.bin,.hr{font-family:ui-monospace,'SFMono-Regular',Menlo,Consolas,'DejaVu Sans Mono',"
    "monospace}"
    "header.top{background:#1b2a41;color:#fff;padding:14px 16px 12px}"
    "header.top h1{font-size:21px;margin:0;overflow-wrap:anywhere}"
    "header.top .meta{font-size:14px;color:#c9d3e3;margin-top:3px}"
    "time{white-space:nowrap}"
    "main{max-width:760px;margin:0 auto;padding:4px 10px 24px}"
    "h2{font-size:15px;text-transform:uppercase;letter-spacing:.06em;color:#4a5566;"
    "margin:18px 4px 6px}"
    ".empty{background:#fff;border-radius:12px;padding:24px;text-align:center;color:#4a5566}"
    ".phead,.cols,.box{display:none}"
    ".row{display:grid;grid-template-columns:30px minmax(0,1fr) auto 48px;"
    "grid-template-areas:'n bin qty tote' 'n sku sku tote';align-items:center;gap:2px 10px;"
    "background:#fff;border-radius:12px;padding:10px 10px 10px 6px;margin:8px 0;"
    "box-shadow:0 1px 2px rgba(20,24,31,.12);min-height:68px}"
    ".row .n{grid-area:n;color:#6b7585;font-size:14px;text-align:right;align-self:start;"
    "padding-top:6px}"
    ".row .bin{grid-area:bin;font-weight:700;font-size:27px;line-height:1.1;"
    "letter-spacing:.02em;overflow-wrap:anywhere}"
    ".row .bin.none{font-family:inherit;font-size:15px;font-weight:600;color:#9a3412;"
    "text-transform:uppercase;letter-spacing:.05em}"
    ".row .sku{grid-area:sku;font-size:16px;color:#39424f;overflow-wrap:anywhere}"
    ".row .qty{grid-area:qty;font-weight:800;font-size:24px;white-space:nowrap}"
    ".row .qty small{font-size:15px;font-weight:500;color:#6b7585;margin-right:2px}"
    ".badge{grid-area:tote;display:flex;align-items:center;justify-content:center;width:48px;"
    "height:48px;border-radius:12px;color:#fff;font-weight:800;font-size:20px;"
    "text-decoration:none;flex:none}"
    ".c0{background:#1d4ed8}.c1{background:#b45309}.c2{background:#047857}"
    ".c3{background:#7e22ce}.c4{background:#be123c}.c5{background:#0e7490}"
    ".c6{background:#4d7c0f}.c7{background:#475569}"
    ".tote{background:#fff;border-radius:14px;padding:14px;margin:12px 0;"
    "box-shadow:0 1px 2px rgba(20,24,31,.12);border:2px solid transparent}"
    ".tote:target{border-color:#1d4ed8}"
    ".tote .label{display:flex;gap:12px;align-items:flex-start}"
    ".tote .who{min-width:0;flex:1}"
    ".tote .order{font-weight:700;font-size:19px;overflow-wrap:anywhere}"
    ".tote .sub{font-size:14px;color:#4a5566;overflow-wrap:anywhere}"
    ".method{display:inline-block;font-size:13px;font-weight:600;padding:2px 9px;"
    "border-radius:999px;background:#e0e7ff;color:#1e3a8a;margin-top:4px}"
    ".method.click_and_collect{background:#fef3c7;color:#78350f}"
    ".pickup{margin-top:8px;font-size:15px;background:#fffbeb;border-radius:8px;"
    "padding:6px 10px;overflow-wrap:anywhere}"
    ".barcode{margin-top:10px;display:table;max-width:100%}"
    ".barcode svg{display:block;height:52px;width:calc(var(--m) * 2px);max-width:100%}"
    ".barcode .hr{font-size:14px;overflow-wrap:anywhere;margin-top:2px;text-align:center}"
    ".controls{display:flex;gap:10px;margin-top:12px}"
    "button{min-height:52px;min-width:44px;padding:0 16px;font:inherit;font-size:17px;"
    "font-weight:700;border-radius:12px;border:0;flex:1;cursor:pointer}"
    "button.confirm{background:#15803d;color:#fff}"
    "button.short{background:#fff;color:#9a3412;border:2px solid #ea580c}"
    "button.submit-short{background:#c2410c;color:#fff;width:100%;margin-top:8px}"
    "button:disabled{opacity:.45;cursor:default}"
    ".shortform{margin-top:12px;border-top:1px solid #dde2e8;padding-top:6px}"
    ".shortform[hidden]{display:none}"
    ".hint{font-size:14px;color:#4a5566;margin:4px 0 2px}"
    ".sline{display:grid;grid-template-columns:minmax(0,1fr) 86px;grid-template-areas:"
    "'what what' 'reason picked';gap:6px 10px;padding:8px 0;border-bottom:1px solid #eef0f3}"
    ".sline .what{grid-area:what;font-size:15px;overflow-wrap:anywhere}"
    ".sline .what b{font-family:ui-monospace,Menlo,Consolas,monospace}"
    "input.picked{grid-area:picked;height:52px;font:inherit;font-size:22px;font-weight:700;"
    "text-align:center;width:100%;border:2px solid #9aa4b2;border-radius:10px}"
    "select.reason{grid-area:reason;height:52px;font:inherit;font-size:16px;width:100%;"
    "border:2px solid #9aa4b2;border-radius:10px;background:#fff;padding:0 8px}"
    ".result{margin-top:10px;font-weight:700;font-size:17px;min-height:1.35em}"
    ".result:empty{display:none}"
    ".result.ok{color:#15803d}.result.warn{color:#9a3412}.result.err{color:#b91c1c}"
    ".tote.done{border-color:#15803d}.tote.done.short-done{border-color:#ea580c}"
    "@page{margin:12mm}"
    "@media print{"
    "body{background:#fff;color:#000;font-size:10pt}"
    "header.top,h2,.controls,.shortform,.result{display:none!important}"
    "main{max-width:none;margin:0;padding:0}"
    ".block{break-after:page;page-break-after:always}"
    ".block.last{break-after:auto;page-break-after:auto}"
    ".phead{display:flex;justify-content:space-between;gap:4mm;align-items:baseline;"
    "border-bottom:1.5pt solid #000;padding-bottom:1.5mm;margin-bottom:1mm;font-size:10pt}"
    ".phead b{font-size:12pt}"
    ".cols,.row{display:grid;grid-template-columns:9mm 30mm minmax(0,1fr) 13mm 13mm 8mm;"
    "grid-template-areas:'n bin sku qty tote box';gap:0 2.5mm;align-items:center}"
    ".cols{font-size:8pt;font-weight:700;text-transform:uppercase;height:6mm;"
    "border-bottom:.75pt solid #000}"
    ".cols .q,.cols .t{text-align:right}"
    ".row{height:7.4mm;min-height:0;margin:0;padding:0;border-radius:0;box-shadow:none;"
    "background:none;border-bottom:.5pt solid #888;break-inside:avoid}"
    ".row .n{color:#000;font-size:9pt;padding:0;align-self:center}"
    ".row .bin{font-size:12pt;white-space:nowrap;overflow:hidden}"
    ".row .bin.none{font-size:8pt;color:#000}"
    ".row .sku,.row .bin,.row .qty{color:#000}"
    ".row .sku{font-size:10pt;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}"
    ".row .qty{font-size:12pt;text-align:right}"
    ".row .qty small{display:none}"
    ".badge,.tote .badge{width:auto;height:auto;min-width:9mm;background:none!important;"
    "color:#000;border:1pt solid #000;border-radius:1.5mm;font-size:10pt;padding:0 1mm;"
    "justify-self:end}"
    ".row .box{display:block;grid-area:box;width:4.5mm;height:4.5mm;border:1pt solid #000;"
    "justify-self:center}"
    ".cards{display:grid;grid-template-columns:1fr 1fr;gap:4mm;margin-top:3mm}"
    ".tote{margin:0;padding:3mm;border:1pt solid #000!important;border-radius:2mm;"
    "box-shadow:none;break-inside:avoid;height:56mm;overflow:hidden}"
    ".tote .order{font-size:13pt}"
    ".tote .label .badge{font-size:16pt;min-width:11mm;padding:.5mm 1.5mm;border-width:1.5pt}"
    ".tote .sub,.method,.pickup{color:#000;background:none;font-size:9pt}"
    ".method,.method.click_and_collect{padding:0;border-radius:0;font-weight:700;"
    "background:none;color:#000}"
    ".pickup{padding:0;margin-top:1.5mm}"
    ".barcode{margin-top:3mm}"
    ".barcode svg{width:calc(var(--m) * .4mm);height:15mm;max-width:100%}"
    ".barcode .hr{font-size:10pt}"
    "a{color:#000;text-decoration:none}"
    "}";

/* Delegated handlers: a card is found from the control that was pressed, so the page needs no
 * per-tote code and stays the same size however many totes there are. */
static const char html_js[] =
    "(function(){'use strict';"
    "function ctl(card,on){card.querySelectorAll('button,input,select').forEach("
    "function(e){e.disabled=!on;});}"
    "function say(card,text,cls){var r=card.querySelector('.result');r.textContent=text;"
    "r.className='result '+cls;}"
    "function send(card,lines){"
    "ctl(card,false);say(card,'Sending\\u2026','');"
    "fetch('/picks/'+encodeURIComponent(card.getAttribute('data-shipment'))+'/confirm',"
    "{method:'POST',headers:{'Content-Type':'application/json',"
    "'Authorization':'Bearer '+TOKEN},body:JSON.stringify({lines:lines})})"
    ".then(function(r){return r.text().then(function(t){var j={};"
    "try{j=JSON.parse(t)||{};}catch(e){}return{code:r.status,body:j};});})"
    ".then(function(x){"
    "if(x.code===200){var s=x.body.status||'picked';"
    "say(card,s,s==='short'?'warn':'ok');"
    "card.classList.add('done');if(s==='short')card.classList.add('short-done');"
    "card.querySelector('.shortform').hidden=true;return;}"
    "ctl(card,true);"
    "if(x.code===409)say(card,'already '+(x.body.state||'changed'),'warn');"
    "else say(card,x.body.error||('HTTP '+x.code),'err');"
    "},function(e){ctl(card,true);say(card,'Network error: '+e.message,'err');});}"
    "function lines(card,full){var out=[],bad=null;"
    "card.querySelectorAll('input.picked').forEach(function(inp){"
    "var id=inp.getAttribute('data-line'),want=Number(inp.getAttribute('data-qty'));"
    "var got=full?want:Number(inp.value);"
    "if(!full&&(inp.value===''||!Number.isInteger(got)||got<0||got>want)){"
    "if(!bad)bad='Line '+id+': enter 0 to '+want;return;}"
    "var l={line_id:id,picked:got};"
    "if(got<want){var sel=card.querySelector('select.reason[data-line=\"'+CSS.escape(id)+"
    "'\"]');l.reason=sel?sel.value:'not_found';}"
    "out.push(l);});"
    "if(bad){say(card,bad,'err');return null;}return out;}"
    "document.addEventListener('click',function(ev){"
    "var b=ev.target.closest('button');if(!b)return;var card=b.closest('.tote');if(!card)return;"
    "if(b.classList.contains('confirm')){var l=lines(card,true);if(l)send(card,l);}"
    "else if(b.classList.contains('short')){var f=card.querySelector('.shortform');"
    "f.hidden=!f.hidden;b.setAttribute('aria-expanded',String(!f.hidden));"
    "if(!f.hidden){var i=f.querySelector('input.picked');if(i)i.focus();}}"
    "else if(b.classList.contains('submit-short')){var s=lines(card,false);"
    "if(s)send(card,s);}});"
    "})();";

static void html_head_meta(omo_strbuf *sb, const omo_picklist *pl, const char *label, size_t sheet,
                           size_t sheets)
{
    omo_strbuf_puts(sb, "<div class=\"phead\"><span><b>Pick list ");
    html_esc(sb, pl->store_id);
    omo_strbuf_puts(sb, "</b> &middot; ");
    omo_strbuf_puts(sb, label);
    omo_strbuf_puts(sb, "</span><span>generated ");
    html_time(sb, pl->generated_ms);
    omo_strbuf_printf(sb, " &middot; sheet %zu/%zu</span></div>", sheet, sheets);
}

static void html_badge(omo_strbuf *sb, int number, bool link)
{
    if (link)
        omo_strbuf_printf(sb,
                          "<a class=\"badge c%d\" href=\"#tote-%d\" aria-label=\"tote %d\">%d</a>",
                          (number - 1) % 8, number, number, number);
    else
        omo_strbuf_printf(sb, "<span class=\"badge c%d\" aria-label=\"tote %d\">%d</span>",
                          (number - 1) % 8, number, number);
}

static void html_row(omo_strbuf *sb, const omo_picklist *pl, size_t i)
{
    const omo_pick_row *row = &pl->rows[i];
    const omo_tote *tote = row_tote(pl, row);
    omo_strbuf_printf(sb, "<div class=\"row\" data-step=\"%zu\"><span class=\"n\">%zu</span>",
                      i + 1, i + 1);
    if (row->bin[0]) {
        omo_strbuf_puts(sb, "<span class=\"bin\">");
        html_esc(sb, row->bin);
    } else {
        omo_strbuf_puts(sb, "<span class=\"bin none\">no bin");
    }
    omo_strbuf_puts(sb, "</span><span class=\"sku\">");
    html_esc(sb, row->sku);
    omo_strbuf_printf(sb, "</span><span class=\"qty\"><small>&times;</small>%lld</span>",
                      (long long)row->qty);
    if (tote)
        html_badge(sb, tote_number(pl, tote), true);
    else
        omo_strbuf_puts(sb, "<span class=\"badge c7\">?</span>");
    omo_strbuf_puts(sb, "<span class=\"box\"></span></div>\n");
}

/* The rows of every tote, in walking order: tote t's are idx[start[t] .. start[t + 1]). Built
 * once, so a page for a busy store costs time in proportion to its rows. */
typedef struct tote_rows {
    size_t *idx;
    size_t *start;
} tote_rows;

static tote_rows tote_rows_build(const omo_picklist *pl)
{
    tote_rows tr;
    tr.idx = omo_xcalloc(pl->nrows ? pl->nrows : 1, sizeof *tr.idx);
    tr.start = omo_xcalloc(pl->ntotes + 2, sizeof *tr.start);
    for (size_t i = 0; i < pl->nrows; i++)
        if (row_tote(pl, &pl->rows[i]))
            tr.start[pl->rows[i].tote + 2]++;
    for (size_t t = 2; t < pl->ntotes + 2; t++)
        tr.start[t] += tr.start[t - 1];
    /* start[t + 1] is tote t's write position while filling; it ends as tote t's end. */
    for (size_t i = 0; i < pl->nrows; i++)
        if (row_tote(pl, &pl->rows[i]))
            tr.idx[tr.start[pl->rows[i].tote + 1]++] = i;
    return tr;
}

static void tote_rows_free(tote_rows *tr)
{
    free(tr->idx);
    free(tr->start);
}

/* The short form of one tote: one entry per distinct line, its quantity summed over rows. */
static void html_short_form(omo_strbuf *sb, const omo_picklist *pl, const tote_rows *tr, int t)
{
    const omo_tote *tote = &pl->totes[t];
    const size_t *mine = tr->idx + tr->start[t];
    size_t nmine = tr->start[t + 1] - tr->start[t];
    omo_strbuf_puts(
        sb, "<div class=\"shortform\" hidden><p class=\"hint\">Enter the units picked per line; "
            "a line with fewer than asked needs a reason.</p>");
    for (size_t i = 0; i < nmine; i++) {
        const omo_pick_row *row = &pl->rows[mine[i]];
        bool seen = false;
        int64_t qty = 0;
        for (size_t j = 0; j < nmine && !seen; j++) {
            if (strcmp(pl->rows[mine[j]].line_id, row->line_id))
                continue;
            if (j < i)
                seen = true;
            else
                qty += pl->rows[mine[j]].qty;
        }
        if (seen)
            continue;
        omo_strbuf_puts(sb, "<div class=\"sline\"><span class=\"what\">Line ");
        html_esc(sb, row->line_id);
        omo_strbuf_puts(sb, " &middot; <b>");
        html_esc(sb, row->bin[0] ? row->bin : "no bin");
        omo_strbuf_puts(sb, "</b> &middot; ");
        html_esc(sb, row->sku);
        omo_strbuf_printf(sb, " &middot; asked %lld</span>", (long long)qty);
        omo_strbuf_puts(sb, "<select class=\"reason\" data-line=\"");
        html_esc(sb, row->line_id);
        omo_strbuf_puts(sb,
                        "\" aria-label=\"reason\"><option value=\"not_found\">not found</option>"
                        "<option value=\"damaged\">damaged</option>"
                        "<option value=\"mismatch\">mismatch</option></select>");
        omo_strbuf_puts(sb,
                        "<input class=\"picked\" type=\"number\" inputmode=\"numeric\" min=\"0\" "
                        "step=\"1\" data-line=\"");
        html_esc(sb, row->line_id);
        omo_strbuf_printf(sb,
                          "\" data-qty=\"%lld\" max=\"%lld\" value=\"%lld\" aria-label=\"picked\">",
                          (long long)qty, (long long)qty, (long long)qty);
        omo_strbuf_puts(sb, "</div>");
    }
    omo_strbuf_puts(sb, "<button type=\"button\" class=\"submit-short\" data-shipment=\"");
    html_esc(sb, tote->shipment_id);
    omo_strbuf_puts(sb, "\">Submit short pick</button></div>");
}

static void html_card(omo_strbuf *sb, const omo_picklist *pl, const tote_rows *tr, int t,
                      bool actions)
{
    const omo_tote *tote = &pl->totes[t];
    int number = tote_number(pl, tote);
    int64_t lines = (int64_t)(tr->start[t + 1] - tr->start[t]), units = 0;
    for (size_t k = tr->start[t]; k < tr->start[t + 1]; k++)
        units += pl->rows[tr->idx[k]].qty;
    omo_strbuf_printf(sb,
                      "<section class=\"tote\" id=\"tote-%d\" data-tote=\"%d\" data-shipment=\"",
                      number, number);
    html_esc(sb, tote->shipment_id);
    omo_strbuf_puts(sb, "\"><div class=\"label\">");
    html_badge(sb, number, false);
    omo_strbuf_puts(sb, "<div class=\"who\"><div class=\"order\">Order ");
    html_esc(sb, tote->order_id);
    omo_strbuf_printf(sb, "</div><div class=\"sub\">%lld line%s, %lld unit%s</div>",
                      (long long)lines, lines == 1 ? "" : "s", (long long)units,
                      units == 1 ? "" : "s");
    omo_strbuf_printf(sb, "<span class=\"method %s\">%s</span></div></div>",
                      omo_method_name(tote->method),
                      is_pickup(tote)                              ? "click &amp; collect"
                      : tote->method == OMO_METHOD_SHIP_FROM_STORE ? "ship from store"
                                                                   : omo_method_name(tote->method));
    if (is_pickup(tote)) {
        omo_strbuf_puts(sb, "<div class=\"pickup\">Pickup at <b>");
        html_esc(sb, tote->pickup_store[0] ? tote->pickup_store : "?");
        omo_strbuf_puts(sb, "</b>");
        if (tote->promised_ms) {
            omo_strbuf_puts(sb, " &middot; ready by <b>");
            html_time(sb, tote->promised_ms);
            omo_strbuf_puts(sb, "</b>");
        }
        omo_strbuf_puts(sb, "</div>");
    }
    omo_strbuf_puts(sb, "<div class=\"barcode\">");
    html_code128(sb, tote->shipment_id);
    omo_strbuf_puts(sb, "<div class=\"hr\">");
    html_esc(sb, tote->shipment_id);
    omo_strbuf_puts(sb, "</div></div>");
    if (actions) {
        omo_strbuf_puts(sb, "<div class=\"controls\"><button type=\"button\" class=\"confirm\" "
                            "data-shipment=\"");
        html_esc(sb, tote->shipment_id);
        omo_strbuf_puts(sb, "\">Confirm</button><button type=\"button\" class=\"short\" "
                            "aria-expanded=\"false\" data-shipment=\"");
        html_esc(sb, tote->shipment_id);
        omo_strbuf_puts(sb, "\">Short\xE2\x80\xA6</button></div>");
        html_short_form(sb, pl, tr, t);
        omo_strbuf_puts(sb, "<div class=\"result\" role=\"status\" aria-live=\"polite\"></div>");
    }
    omo_strbuf_puts(sb, "</section>\n");
}

static void render_html(omo_strbuf *sb, const omo_picklist *pl, bool actions, const char *token)
{
    size_t walk_sheets = (pl->nrows + ROWS_PER_PAGE - 1) / ROWS_PER_PAGE;
    size_t tote_sheets = (pl->ntotes + TOTES_PER_PAGE - 1) / TOTES_PER_PAGE;
    size_t sheets = walk_sheets + tote_sheets, sheet = 0;
    if (!sheets)
        sheets = 1;

    omo_strbuf_puts(sb,
                    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                    "style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'\">"
                    "<title>Pick list ");
    html_esc(sb, pl->store_id);
    omo_strbuf_puts(sb, "</title><style>");
    omo_strbuf_puts(sb, html_css);
    omo_strbuf_puts(sb, "</style></head><body>\n<header class=\"top\"><h1>Pick list &middot; ");
    html_esc(sb, pl->store_id);
    omo_strbuf_printf(sb,
                      "</h1><div class=\"meta\">%zu line%s &middot; %lld unit%s &middot; %zu tote%s"
                      " &middot; generated ",
                      pl->nrows, pl->nrows == 1 ? "" : "s", (long long)total_units(pl),
                      total_units(pl) == 1 ? "" : "s", pl->ntotes, pl->ntotes == 1 ? "" : "s");
    html_time(sb, pl->generated_ms);
    omo_strbuf_puts(sb, "</div></header>\n<main>\n");

    if (!pl->nrows && !pl->ntotes) {
        omo_strbuf_puts(sb, "<section class=\"block last\">");
        html_head_meta(sb, pl, "no open picks", 1, 1);
        omo_strbuf_puts(sb, "<p class=\"empty\">No open picks.</p></section>\n");
    }
    if (pl->nrows)
        omo_strbuf_puts(sb, "<h2>Walk</h2>\n");
    for (size_t start = 0; start < pl->nrows; start += ROWS_PER_PAGE) {
        size_t end = start + ROWS_PER_PAGE < pl->nrows ? start + ROWS_PER_PAGE : pl->nrows;
        char label[64];
        snprintf(label, sizeof label, "steps %zu&ndash;%zu of %zu", start + 1, end, pl->nrows);
        sheet++;
        omo_strbuf_printf(sb, "<section class=\"block walk%s\">", sheet == sheets ? " last" : "");
        html_head_meta(sb, pl, label, sheet, sheets);
        omo_strbuf_puts(sb, "<div class=\"cols\"><span>#</span><span>Bin</span><span>SKU</span>"
                            "<span class=\"q\">Qty</span><span class=\"t\">Tote</span><span></span>"
                            "</div>\n");
        for (size_t i = start; i < end; i++)
            html_row(sb, pl, i);
        omo_strbuf_puts(sb, "</section>\n");
    }
    if (pl->ntotes)
        omo_strbuf_puts(sb, "<h2>Totes</h2>\n");
    int *order = totes_by_number(pl);
    tote_rows tr = tote_rows_build(pl);
    for (size_t start = 0; start < pl->ntotes; start += TOTES_PER_PAGE) {
        size_t end = start + TOTES_PER_PAGE < pl->ntotes ? start + TOTES_PER_PAGE : pl->ntotes;
        char label[64];
        snprintf(label, sizeof label, "totes %zu&ndash;%zu of %zu", start + 1, end, pl->ntotes);
        sheet++;
        omo_strbuf_printf(sb, "<section class=\"block totes%s\">", sheet == sheets ? " last" : "");
        html_head_meta(sb, pl, label, sheet, sheets);
        omo_strbuf_puts(sb, "<div class=\"cards\">\n");
        for (size_t i = start; i < end; i++)
            html_card(sb, pl, &tr, order[i], actions);
        omo_strbuf_puts(sb, "</div></section>\n");
    }
    tote_rows_free(&tr);
    free(order);
    omo_strbuf_puts(sb, "</main>\n");
    if (actions) {
        omo_strbuf_puts(sb, "<script>var TOKEN=");
        js_string(sb, token ? token : "");
        omo_strbuf_puts(sb, ";\n");
        omo_strbuf_puts(sb, html_js);
        omo_strbuf_puts(sb, "</script>\n");
    }
    omo_strbuf_puts(sb, "</body></html>\n");
}

/* ---- entry ----------------------------------------------------------------------------- */

char *omo_picklist_render(const omo_picklist *pl, const char *format, bool actions,
                          const char *token, size_t *len)
{
    omo_strbuf sb = {0};
    if (!pl || !format)
        return NULL;
    if (!strcmp(format, "text")) {
        render_text(&sb, pl);
    } else if (!strcmp(format, "csv")) {
        render_csv(&sb, pl);
    } else if (!strcmp(format, "json")) {
        if (!render_json(&sb, pl))
            goto fail;
    } else if (!strcmp(format, "html")) {
        render_html(&sb, pl, actions, token);
    } else {
        return NULL;
    }
    if (!sb.p)
        omo_strbuf_puts(&sb, "");
    if (len)
        *len = sb.len;
    return sb.p;
fail:
    free(sb.p);
    return NULL;
}
