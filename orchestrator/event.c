/* Input events (contract section 4): one JSON object in, one validated omo_event out. */
#include "event.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Every key is a literal: its length is known at compile time, so lookups need no strlen. */
#define K(lit) lit, sizeof(lit) - 1

/* Where a field sits in the message, rendered into a JSON path only when reporting an error:
 * top level ("on_hand"), inside an object ("delivery.store_id") or inside an array element
 * ("lines[2].qty"). */
typedef struct scope {
    const char *name; /* NULL at the top level */
    long index;       /* -1 when name is not an array */
} scope;

static const scope TOP = {NULL, -1};

/* The outcome of reading one field. */
enum { GOT_ERROR = -1, GOT_ABSENT = 0, GOT_VALUE = 1 };

static void path_format(char *buf, size_t len, const scope *sc, const char *key)
{
    if (!sc || !sc->name)
        snprintf(buf, len, "%s", key);
    else if (!key || !*key)
        snprintf(buf, len, sc->index >= 0 ? "%s[%ld]" : "%s", sc->name, sc->index);
    else if (sc->index >= 0)
        snprintf(buf, len, "%s[%ld].%s", sc->name, sc->index, key);
    else
        snprintf(buf, len, "%s.%s", sc->name, key);
}

/* Fills err with reason, the field's path and "PATH: WHAT" (or WHAT alone for the whole
 * message). Always returns false, so callers can `return refuse(...)`. */
__attribute__((format(printf, 5, 6))) static bool refuse(omo_event_error *err, const char *reason,
                                                         const scope *sc, const char *key,
                                                         const char *fmt, ...)
{
    if (!err)
        return false;
    path_format(err->field, sizeof err->field, sc, key);
    snprintf(err->reason, sizeof err->reason, "%s", reason);
    int n = 0;
    if (err->field[0])
        n = snprintf(err->message, sizeof err->message, "%s: ", err->field);
    if (n < 0 || (size_t)n >= sizeof err->message)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message + n, sizeof err->message - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

/* A short human rendering of a value that had the wrong type or range: numbers as themselves,
 * anything else by its kind. */
static const char *describe(const json_t *v, char *buf, size_t len)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    case JSON_REAL:
        snprintf(buf, len, "%g", json_real_value(v));
        return buf;
    case JSON_STRING:
        return "a string";
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "null";
    }
    return "an unknown value";
}

/* Looks key up in obj. JSON null counts as absent, so producers may send optional fields as
 * null; a required field that is absent is refused as missing_field. */
static int lookup(const json_t *obj, const char *key, size_t keylen, bool required, const scope *sc,
                  omo_event_error *err, json_t **out)
{
    json_t *v = json_object_getn(obj, key, keylen);
    if (!v || json_is_null(v)) {
        if (required) {
            refuse(err, "missing_field", sc, key, "is required");
            return GOT_ERROR;
        }
        return GOT_ABSENT;
    }
    *out = v;
    return GOT_VALUE;
}

/* What a string field must look like. */
typedef enum str_kind {
    STR_TEXT,    /* anything that fits the buffer, "" included */
    STR_ID,      /* omo_id_valid: node, SKU, line ids */
    STR_LONG_ID, /* order and event ids: 1..OMO_LONG_ID_MAX bytes */
} str_kind;

/* Reads a string field into out (cap bytes, NUL included); out is "" when absent. */
static int get_str(const json_t *obj, const char *key, size_t keylen, bool required, str_kind kind,
                   char *out, size_t cap, const scope *sc, omo_event_error *err)
{
    json_t *v = NULL;
    out[0] = '\0';
    int got = lookup(obj, key, keylen, required, sc, err, &v);
    if (got != GOT_VALUE)
        return got;
    char what[32];
    if (!json_is_string(v)) {
        refuse(err, "wrong_type", sc, key, "must be a string, got %s",
               describe(v, what, sizeof what));
        return GOT_ERROR;
    }
    /* jansson refuses \u0000 unless asked not to, so the length is also the C length. */
    size_t len = json_string_length(v);
    const char *s = json_string_value(v);
    if (len >= cap) {
        refuse(err, "too_long", sc, key, "longer than %zu bytes (%zu)", cap - 1, len);
        return GOT_ERROR;
    }
    if (kind == STR_ID && !omo_id_valid(s)) {
        refuse(err, "bad_id", sc, key,
               "must be 1 to %d characters of A-Z a-z 0-9 _ . -, got \"%.40s\"", OMO_ID_MAX, s);
        return GOT_ERROR;
    }
    if (kind == STR_LONG_ID && len == 0) {
        refuse(err, "bad_id", sc, key, "must not be empty");
        return GOT_ERROR;
    }
    memcpy(out, s, len + 1);
    return GOT_VALUE;
}

/* Reads an RFC 3339 time field as milliseconds since the epoch. */
static int get_time(const json_t *obj, const char *key, size_t keylen, bool required, int64_t *ms,
                    const scope *sc, omo_event_error *err)
{
    json_t *v = NULL;
    int got = lookup(obj, key, keylen, required, sc, err, &v);
    if (got != GOT_VALUE)
        return got;
    char what[32];
    if (!json_is_string(v)) {
        refuse(err, "wrong_type", sc, key, "must be an RFC 3339 time string, got %s",
               describe(v, what, sizeof what));
        return GOT_ERROR;
    }
    if (!omo_time_parse(json_string_value(v), ms)) {
        refuse(err, "bad_time", sc, key, "not an RFC 3339 time: \"%.40s\"", json_string_value(v));
        return GOT_ERROR;
    }
    return GOT_VALUE;
}

/* Reads a JSON integer (not a real, even a whole one: quantities are counted, not measured).
 * `what` names the expected value in the message ("a positive integer"). */
static int get_int(const json_t *obj, const char *key, size_t keylen, bool required,
                   const char *what, int64_t *out, const scope *sc, omo_event_error *err)
{
    json_t *v = NULL;
    int got = lookup(obj, key, keylen, required, sc, err, &v);
    if (got != GOT_VALUE)
        return got;
    char desc[32];
    if (!json_is_integer(v)) {
        refuse(err, "wrong_type", sc, key, "must be %s, got %s", what,
               describe(v, desc, sizeof desc));
        return GOT_ERROR;
    }
    *out = (int64_t)json_integer_value(v);
    return GOT_VALUE;
}

/* Reads a number (integer or real) that must lie in [lo, hi]. */
static int get_coord(const json_t *obj, const char *key, size_t keylen, double lo, double hi,
                     double *out, const scope *sc, omo_event_error *err)
{
    json_t *v = NULL;
    int got = lookup(obj, key, keylen, true, sc, err, &v);
    if (got != GOT_VALUE)
        return got;
    char desc[32];
    if (!json_is_number(v)) {
        refuse(err, "wrong_type", sc, key, "must be a number, got %s",
               describe(v, desc, sizeof desc));
        return GOT_ERROR;
    }
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) {
        refuse(err, "out_of_range", sc, key, "must be between %g and %g, got %g", lo, hi, d);
        return GOT_ERROR;
    }
    *out = d;
    return GOT_VALUE;
}

/* Reads an object-valued field; *out is left alone when absent. */
static int get_object(const json_t *obj, const char *key, size_t keylen, bool required,
                      json_t **out, const scope *sc, omo_event_error *err)
{
    json_t *v = NULL;
    int got = lookup(obj, key, keylen, required, sc, err, &v);
    if (got != GOT_VALUE)
        return got;
    char desc[32];
    if (!json_is_object(v)) {
        refuse(err, "wrong_type", sc, key, "must be an object, got %s",
               describe(v, desc, sizeof desc));
        return GOT_ERROR;
    }
    *out = v;
    return GOT_VALUE;
}

/* Reads a node id that must name a node of the network; *node is its index. */
static int get_node(const json_t *obj, const char *key, size_t keylen, const omo_network *net,
                    int *node, const scope *sc, omo_event_error *err)
{
    char id[OMO_ID_MAX + 1];
    int got = get_str(obj, key, keylen, true, STR_ID, id, sizeof id, sc, err);
    if (got != GOT_VALUE)
        return got;
    int idx = net ? omo_network_find(net, id) : -1;
    if (idx < 0) {
        refuse(err, "unknown_node", sc, key, "no node \"%s\" in the network", id);
        return GOT_ERROR;
    }
    *node = idx;
    return GOT_VALUE;
}

/* Pick lists parse each part as an int: at most 9 digits keeps every part in range. */
#define BIN_PART_MAX_DIGITS 9

/* True when s is AISLE-BAY-SHELF, three runs of 1..9 decimal digits joined by '-'. */
static bool bin_valid(const char *s)
{
    for (int part = 0; part < 3; part++) {
        int digits = 0;
        while (*s >= '0' && *s <= '9') {
            s++;
            digits++;
        }
        if (digits == 0 || digits > BIN_PART_MAX_DIGITS)
            return false;
        if (part < 2 && *s++ != '-')
            return false;
    }
    return *s == '\0';
}

static bool parse_customer(const json_t *root, bool required, omo_event *ev, omo_event_error *err)
{
    json_t *cust = NULL;
    int got = get_object(root, K("customer"), required, &cust, &TOP, err);
    if (got != GOT_VALUE)
        return got == GOT_ABSENT;
    const scope sc = {"customer", -1};
    return get_coord(cust, K("lat"), -90.0, 90.0, &ev->cust_lat, &sc, err) == GOT_VALUE &&
           get_coord(cust, K("lon"), -180.0, 180.0, &ev->cust_lon, &sc, err) == GOT_VALUE;
}

static bool parse_delivery(const json_t *root, const omo_network *net, omo_event *ev,
                           omo_event_error *err)
{
    json_t *dl = NULL;
    if (get_object(root, K("delivery"), true, &dl, &TOP, err) != GOT_VALUE)
        return false;
    const scope sc = {"delivery", -1};
    json_t *m = NULL;
    if (lookup(dl, K("method"), true, &sc, err, &m) != GOT_VALUE)
        return false;
    char desc[32];
    if (!json_is_string(m))
        return refuse(err, "wrong_type", &sc, "method", "must be a string, got %s",
                      describe(m, desc, sizeof desc));
    const char *method = json_string_value(m);
    size_t len = json_string_length(m);
    if (len == 4 && !memcmp(method, "ship", 4)) {
        ev->pickup = false;
        return get_str(dl, K("service"), true, STR_ID, ev->service, sizeof ev->service, &sc, err) ==
               GOT_VALUE;
    }
    if (len == 6 && !memcmp(method, "pickup", 6)) {
        ev->pickup = true;
        return get_node(dl, K("store_id"), net, &ev->store, &sc, err) == GOT_VALUE;
    }
    return refuse(err, "out_of_range", &sc, "method",
                  "must be \"ship\" or \"pickup\", got \"%.40s\"", method);
}

static bool parse_lines(const json_t *root, omo_event *ev, omo_event_error *err)
{
    json_t *arr = NULL;
    if (lookup(root, K("lines"), true, &TOP, err, &arr) != GOT_VALUE)
        return false;
    char desc[32];
    if (!json_is_array(arr))
        return refuse(err, "wrong_type", &TOP, "lines", "must be an array, got %s",
                      describe(arr, desc, sizeof desc));
    size_t n = json_array_size(arr);
    if (n == 0)
        return refuse(err, "out_of_range", &TOP, "lines", "must hold at least one line");
    if (n > OMO_MAX_LINES)
        return refuse(err, "out_of_range", &TOP, "lines", "at most %d lines, got %zu",
                      OMO_MAX_LINES, n);
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *lj = json_array_get(arr, i);
        const scope sc = {"lines", (long)i};
        if (!json_is_object(lj))
            return refuse(err, "wrong_type", &sc, "", "must be an object, got %s",
                          describe(lj, desc, sizeof desc));
        omo_line *line = &ev->lines[i];
        if (get_str(lj, K("line_id"), true, STR_ID, line->line_id, sizeof line->line_id, &sc,
                    err) != GOT_VALUE)
            return false;
        /* Orders hold a handful of lines: a linear scan beats any index here. */
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ev->lines[j].line_id, line->line_id))
                return refuse(err, "duplicate_line", &sc, "line_id",
                              "\"%s\" already used by lines[%zu]", line->line_id, j);
        if (get_str(lj, K("sku"), true, STR_ID, line->sku, sizeof line->sku, &sc, err) != GOT_VALUE)
            return false;
        if (get_int(lj, K("qty"), true, "a positive integer", &line->qty, &sc, err) != GOT_VALUE)
            return false;
        if (line->qty <= 0)
            return refuse(err, "out_of_range", &sc, "qty",
                          "must be a positive integer, got %" PRId64, line->qty);
        if (line->qty > OMO_MAX_QTY - total)
            return refuse(err, "out_of_range", &sc, "qty",
                          "the order's units may total at most %d, got %" PRId64 " more",
                          OMO_MAX_QTY, line->qty);
        total += line->qty;
    }
    ev->nlines = n;
    return true;
}

/* What an order, a promise and a hold share: channel, delivery, customer and lines. */
static bool parse_basket(const json_t *root, const omo_network *net, omo_event *ev,
                         omo_event_error *err)
{
    if (get_str(root, K("channel"), false, STR_TEXT, ev->channel, sizeof ev->channel, &TOP, err) ==
        GOT_ERROR)
        return false;
    if (!parse_delivery(root, net, ev, err))
        return false;
    /* Ship orders are routed by distance to the customer; pickups by the store. */
    if (!parse_customer(root, !ev->pickup, ev, err))
        return false;
    return parse_lines(root, ev, err);
}

static bool parse_order_created(const json_t *root, const omo_network *net, omo_event *ev,
                                omo_event_error *err)
{
    if (get_str(root, K("order_id"), true, STR_LONG_ID, ev->order_id, sizeof ev->order_id, &TOP,
                err) != GOT_VALUE)
        return false;
    if (get_time(root, K("created_at"), true, &ev->at_ms, &TOP, err) != GOT_VALUE)
        return false;
    ev->has_at = true;
    if (get_str(root, K("hold_id"), false, STR_LONG_ID, ev->hold_id, sizeof ev->hold_id, &TOP,
                err) == GOT_ERROR)
        return false;
    return parse_basket(root, net, ev, err);
}

/* `at` is optional on everything but order.created. */
static bool parse_optional_at(const json_t *root, omo_event *ev, omo_event_error *err)
{
    int got = get_time(root, K("at"), false, &ev->at_ms, &TOP, err);
    ev->has_at = got == GOT_VALUE;
    return got != GOT_ERROR;
}

static bool parse_order_cancelled(const json_t *root, omo_event *ev, omo_event_error *err)
{
    return get_str(root, K("order_id"), true, STR_LONG_ID, ev->order_id, sizeof ev->order_id, &TOP,
                   err) == GOT_VALUE &&
           parse_optional_at(root, ev, err);
}

/* The fields stock.snapshot and stock.delta share. */
static bool parse_stock_common(const json_t *root, const omo_network *net, omo_event *ev,
                               omo_event_error *err)
{
    return get_str(root, K("event_id"), true, STR_LONG_ID, ev->event_id, sizeof ev->event_id, &TOP,
                   err) == GOT_VALUE &&
           get_node(root, K("node_id"), net, &ev->node, &TOP, err) == GOT_VALUE &&
           get_str(root, K("sku"), true, STR_ID, ev->sku, sizeof ev->sku, &TOP, err) == GOT_VALUE;
}

/* The bin of a snapshot (optional) or of a stock.bin (required). */
static bool parse_bin(const json_t *root, bool required, omo_event *ev, omo_event_error *err)
{
    int got = get_str(root, K("bin"), required, STR_TEXT, ev->bin, sizeof ev->bin, &TOP, err);
    if (got == GOT_ERROR)
        return false;
    if (got == GOT_VALUE && !bin_valid(ev->bin))
        return refuse(err, "bad_bin", &TOP, "bin",
                      "must be AISLE-BAY-SHELF in decimal numbers like \"07-12-3\", got \"%.40s\"",
                      ev->bin);
    return got == GOT_VALUE || !required;
}

/* stock.bin: node_id, sku and bin; no event_id (setting a bin twice changes nothing). */
static bool parse_stock_bin(const json_t *root, const omo_network *net, omo_event *ev,
                            omo_event_error *err)
{
    return get_node(root, K("node_id"), net, &ev->node, &TOP, err) == GOT_VALUE &&
           get_str(root, K("sku"), true, STR_ID, ev->sku, sizeof ev->sku, &TOP, err) == GOT_VALUE &&
           parse_bin(root, true, ev, err) && parse_optional_at(root, ev, err);
}

static bool parse_stock_snapshot(const json_t *root, const omo_network *net, omo_event *ev,
                                 omo_event_error *err)
{
    if (!parse_stock_common(root, net, ev, err))
        return false;
    if (get_int(root, K("on_hand"), true, "a non-negative integer", &ev->on_hand, &TOP, err) !=
        GOT_VALUE)
        return false;
    if (ev->on_hand < 0)
        return refuse(err, "out_of_range", &TOP, "on_hand", "negative quantity, got %" PRId64,
                      ev->on_hand);
    if (ev->on_hand > OMO_MAX_STOCK)
        return refuse(err, "out_of_range", &TOP, "on_hand", "must be at most %d, got %" PRId64,
                      OMO_MAX_STOCK, ev->on_hand);
    return parse_bin(root, false, ev, err) && parse_optional_at(root, ev, err);
}

static bool parse_stock_delta(const json_t *root, const omo_network *net, omo_event *ev,
                              omo_event_error *err)
{
    if (!parse_stock_common(root, net, ev, err) ||
        get_int(root, K("delta"), true, "an integer", &ev->delta, &TOP, err) != GOT_VALUE)
        return false;
    if (ev->delta < -OMO_MAX_STOCK || ev->delta > OMO_MAX_STOCK)
        return refuse(err, "out_of_range", &TOP, "delta",
                      "must be between -%d and %d, got %" PRId64, OMO_MAX_STOCK, OMO_MAX_STOCK,
                      ev->delta);
    return get_str(root, K("reason"), false, STR_TEXT, ev->reason, sizeof ev->reason, &TOP, err) !=
               GOT_ERROR &&
           get_str(root, K("order_id"), false, STR_LONG_ID, ev->order_id, sizeof ev->order_id, &TOP,
                   err) != GOT_ERROR &&
           parse_optional_at(root, ev, err);
}

static int get_bool(const json_t *obj, const char *key, size_t keylen, bool *out,
                    omo_event_error *err)
{
    json_t *v = NULL;
    int got = lookup(obj, key, keylen, false, &TOP, err, &v);
    if (got != GOT_VALUE)
        return got;
    char desc[32];
    if (!json_is_boolean(v)) {
        refuse(err, "wrong_type", &TOP, key, "must be true or false, got %s",
               describe(v, desc, sizeof desc));
        return GOT_ERROR;
    }
    *out = json_is_true(v);
    return GOT_VALUE;
}

static bool parse_hold_id(const json_t *root, omo_event *ev, omo_event_error *err)
{
    return get_str(root, K("hold_id"), true, STR_LONG_ID, ev->hold_id, sizeof ev->hold_id, &TOP,
                   err) == GOT_VALUE &&
           parse_optional_at(root, ev, err);
}

/* hold.placed: a hold id, a time to live and a basket, as an order without its id. */
static bool parse_hold_placed(const json_t *root, const omo_network *net, omo_event *ev,
                              omo_event_error *err)
{
    if (!parse_hold_id(root, ev, err))
        return false;
    int64_t ttl = OMO_HOLD_TTL_DEFAULT_S;
    if (get_int(root, K("ttl_seconds"), false, "an integer of seconds", &ttl, &TOP, err) ==
        GOT_ERROR)
        return false;
    if (ttl < 1 || ttl > OMO_HOLD_TTL_MAX_S)
        return refuse(err, "out_of_range", &TOP, "ttl_seconds",
                      "must be 1 to %d seconds, got %" PRId64, OMO_HOLD_TTL_MAX_S, ttl);
    ev->ttl_ms = ttl * 1000;
    return parse_basket(root, net, ev, err);
}

static bool parse_node_paused(const json_t *root, const omo_network *net, omo_event *ev,
                              omo_event_error *err)
{
    if (get_node(root, K("node_id"), net, &ev->node, &TOP, err) != GOT_VALUE ||
        get_str(root, K("reason"), false, STR_TEXT, ev->pause_reason, sizeof ev->pause_reason, &TOP,
                err) == GOT_ERROR ||
        get_bool(root, K("resource"), &ev->resource, err) == GOT_ERROR)
        return false;
    if (get_time(root, K("until"), false, &ev->until_ms, &TOP, err) == GOT_ERROR)
        return false;
    return parse_optional_at(root, ev, err);
}

static const char *const TYPE_NAMES[] = {
    [OMO_EV_ORDER_CREATED] = "order.created",
    [OMO_EV_ORDER_CANCELLED] = "order.cancelled",
    [OMO_EV_STOCK_SNAPSHOT] = "stock.snapshot",
    [OMO_EV_STOCK_DELTA] = "stock.delta",
    [OMO_EV_PICK_CONFIRMED] = "pick.confirmed",
    [OMO_EV_SHIPMENT_SHIPPED] = "shipment.shipped",
    [OMO_EV_SHIPMENT_COLLECTED] = "shipment.collected",
    [OMO_EV_STOCK_BIN] = "stock.bin",
    [OMO_EV_HOLD_PLACED] = "hold.placed",
    [OMO_EV_HOLD_RELEASED] = "hold.released",
    [OMO_EV_HOLD_EXPIRED] = "hold.expired",
    [OMO_EV_NODE_PAUSED] = "node.paused",
    [OMO_EV_NODE_RESUMED] = "node.resumed",
};
#define NTYPES (sizeof TYPE_NAMES / sizeof TYPE_NAMES[0])

/* shipment_id ("ORDER/N") and the optional time of the store-side step. */
static bool parse_shipment_event(const json_t *root, omo_event *ev, omo_event_error *err)
{
    if (get_str(root, K("shipment_id"), true, STR_LONG_ID, ev->shipment_id, sizeof ev->shipment_id,
                &TOP, err) != GOT_VALUE)
        return false;
    const char *slash = strrchr(ev->shipment_id, '/');
    if (!slash || slash == ev->shipment_id || !slash[1] ||
        strspn(slash + 1, "0123456789") != strlen(slash + 1))
        return refuse(err, "bad_id", &TOP, "shipment_id", "must be ORDER_ID/NUMBER, got \"%.60s\"",
                      ev->shipment_id);
    return parse_optional_at(root, ev, err);
}

static const char *const SHORT_REASONS[] = {"not_found", "damaged", "mismatch"};

/* lines: [{line_id, picked, reason}]: optional; a line not listed was picked whole. */
static bool parse_picked_lines(const json_t *root, omo_event *ev, omo_event_error *err)
{
    json_t *arr = NULL;
    int got = lookup(root, K("lines"), false, &TOP, err, &arr);
    if (got == GOT_ERROR)
        return false;
    if (got != GOT_VALUE)
        return true;
    char desc[32];
    if (!json_is_array(arr))
        return refuse(err, "wrong_type", &TOP, "lines", "must be an array, got %s",
                      describe(arr, desc, sizeof desc));
    size_t n = json_array_size(arr);
    if (n > OMO_MAX_LINES)
        return refuse(err, "out_of_range", &TOP, "lines", "at most %d lines, got %zu",
                      OMO_MAX_LINES, n);
    for (size_t i = 0; i < n; i++) {
        const json_t *lj = json_array_get(arr, i);
        const scope sc = {"lines", (long)i};
        if (!json_is_object(lj))
            return refuse(err, "wrong_type", &sc, "", "must be an object, got %s",
                          describe(lj, desc, sizeof desc));
        omo_line *line = &ev->lines[i];
        line->sku[0] = '\0';
        if (get_str(lj, K("line_id"), true, STR_ID, line->line_id, sizeof line->line_id, &sc,
                    err) != GOT_VALUE)
            return false;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ev->lines[j].line_id, line->line_id))
                return refuse(err, "duplicate_line", &sc, "line_id",
                              "\"%s\" already used by lines[%zu]", line->line_id, j);
        if (get_int(lj, K("picked"), true, "a non-negative integer", &line->qty, &sc, err) !=
            GOT_VALUE)
            return false;
        if (line->qty < 0 || line->qty > OMO_MAX_QTY)
            return refuse(err, "out_of_range", &sc, "picked",
                          "must be an integer from 0 to %d, got %" PRId64, OMO_MAX_QTY, line->qty);
        char reason[32];
        if (get_str(lj, K("reason"), false, STR_TEXT, reason, sizeof reason, &sc, err) == GOT_ERROR)
            return false;
        ev->pick_reason[i][0] = '\0';
        if (reason[0]) {
            bool known = false;
            for (size_t r = 0; r < sizeof SHORT_REASONS / sizeof SHORT_REASONS[0]; r++)
                known |= !strcmp(reason, SHORT_REASONS[r]);
            if (!known)
                return refuse(err, "out_of_range", &sc, "reason",
                              "must be not_found, damaged or mismatch, got \"%.20s\"", reason);
            snprintf(ev->pick_reason[i], sizeof ev->pick_reason[i], "%s", reason);
        }
    }
    ev->nlines = n;
    return true;
}

const char *omo_event_type_name(omo_event_type t)
{
    if ((size_t)t >= NTYPES)
        return "unknown";
    return TYPE_NAMES[t];
}

/* Clears what any event type reads, so nothing of the previous event survives into this one,
 * without touching the large line array (nlines bounds it). */
static void event_reset(omo_event *ev)
{
    ev->event_id[0] = '\0';
    ev->order_id[0] = '\0';
    ev->at_ms = 0;
    ev->has_at = false;
    ev->channel[0] = '\0';
    ev->cust_lat = 0.0;
    ev->cust_lon = 0.0;
    ev->pickup = false;
    ev->service[0] = '\0';
    ev->store = -1;
    ev->nlines = 0;
    ev->node = -1;
    ev->sku[0] = '\0';
    ev->on_hand = 0;
    ev->delta = 0;
    ev->reason[0] = '\0';
    ev->bin[0] = '\0';
    ev->shipment_id[0] = '\0';
    ev->hold_id[0] = '\0';
    ev->ttl_ms = 0;
    ev->pause_reason[0] = '\0';
    ev->until_ms = 0;
    ev->resource = false;
}

static bool parse_type(const json_t *root, omo_event_type *type, omo_event_error *err)
{
    json_t *v = NULL;
    if (lookup(root, K("type"), true, &TOP, err, &v) != GOT_VALUE)
        return false;
    char desc[32];
    if (!json_is_string(v))
        return refuse(err, "wrong_type", &TOP, "type", "must be a string, got %s",
                      describe(v, desc, sizeof desc));
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    for (size_t t = 0; t < NTYPES; t++) {
        if (len == strlen(TYPE_NAMES[t]) && !memcmp(s, TYPE_NAMES[t], len)) {
            *type = (omo_event_type)t;
            return true;
        }
    }
    return refuse(err, "unknown_type", &TOP, "type", "unknown event type \"%.40s\"", s);
}

bool omo_event_parse(const char *text, size_t len, const omo_network *net, omo_event *ev,
                     omo_event_error *err)
{
    json_error_t jerr;
    /* Without JSON_DECODE_ANY a bare scalar is refused by the parser itself. */
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root)
        return refuse(err, "malformed_json", &TOP, "", "malformed JSON at line %d, column %d: %s",
                      jerr.line, jerr.column, jerr.text);
    bool ok = false;
    if (!json_is_object(root)) {
        char desc[32];
        refuse(err, "wrong_type", &TOP, "type", "%s", "");
        if (err)
            snprintf(err->message, sizeof err->message, "the event must be a JSON object, got %s",
                     describe(root, desc, sizeof desc));
        goto done;
    }
    omo_event_type type = OMO_EV_ORDER_CREATED;
    if (!parse_type(root, &type, err))
        goto done;
    event_reset(ev);
    ev->type = type;
    switch (type) {
    case OMO_EV_ORDER_CREATED:
        ok = parse_order_created(root, net, ev, err);
        break;
    case OMO_EV_ORDER_CANCELLED:
        ok = parse_order_cancelled(root, ev, err);
        break;
    case OMO_EV_STOCK_SNAPSHOT:
        ok = parse_stock_snapshot(root, net, ev, err);
        break;
    case OMO_EV_STOCK_DELTA:
        ok = parse_stock_delta(root, net, ev, err);
        break;
    case OMO_EV_PICK_CONFIRMED:
        ok = parse_shipment_event(root, ev, err) && parse_picked_lines(root, ev, err);
        break;
    case OMO_EV_SHIPMENT_SHIPPED:
    case OMO_EV_SHIPMENT_COLLECTED:
        ok = parse_shipment_event(root, ev, err);
        break;
    case OMO_EV_STOCK_BIN:
        ok = parse_stock_bin(root, net, ev, err);
        break;
    case OMO_EV_HOLD_PLACED:
        ok = parse_hold_placed(root, net, ev, err);
        break;
    case OMO_EV_HOLD_RELEASED:
    case OMO_EV_HOLD_EXPIRED:
        ok = parse_hold_id(root, ev, err);
        break;
    case OMO_EV_NODE_PAUSED:
        ok = parse_node_paused(root, net, ev, err);
        break;
    case OMO_EV_NODE_RESUMED:
        ok = get_node(root, K("node_id"), net, &ev->node, &TOP, err) == GOT_VALUE &&
             parse_optional_at(root, ev, err);
        break;
    }
done:
    json_decref(root);
    return ok;
}
