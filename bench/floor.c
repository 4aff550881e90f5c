/* floor: the cost of just reading a day of events, as a yardstick for `omo solve`.
 *
 * Parses every line of an events file with jansson and, for every order.created, writes one
 * allocation-sized JSON line (one shipment carrying all the order's lines), so that reading,
 * parsing and writing are paid exactly as omo pays them, and deciding is not. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An output line under construction; grows as needed. */
typedef struct outbuf {
    char *data;
    size_t len, cap;
} outbuf;

static bool out_printf(outbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool out_printf(outbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return false;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return true;
        }
        size_t cap = 2 * b->cap + (size_t)n;
        char *data = realloc(b->data, cap);
        if (!data)
            return false;
        b->data = data;
        b->cap = cap;
    }
}

static const char *str_field(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Builds the allocation line for one order.created. Returns false when the order lacks
 * what an allocation needs. */
static bool write_allocation(outbuf *b, const json_t *order)
{
    const char *order_id = str_field(order, "order_id");
    const char *created_at = str_field(order, "created_at");
    const json_t *lines = json_object_get(order, "lines");
    if (!order_id || !created_at || !json_is_array(lines))
        return false;

    b->len = 0;
    if (!out_printf(b,
                    "{\"type\":\"allocation\",\"order_id\":\"%s\",\"revision\":1,"
                    "\"status\":\"allocated\",\"decided_at\":\"%s\","
                    "\"rules_version\":\"0000000000000000\",\"objective\":21.4,"
                    "\"shipments\":[{\"shipment_id\":\"%s/1\",\"node_id\":\"DC-OAK4\","
                    "\"method\":\"warehouse\",\"service\":\"standard\",\"lines\":[",
                    order_id, created_at, order_id))
        return false;
    size_t i;
    const json_t *line;
    json_array_foreach(lines, i, line)
    {
        const char *line_id = str_field(line, "line_id");
        const char *sku = str_field(line, "sku");
        const json_t *qty = json_object_get(line, "qty");
        if (!line_id || !sku || !json_is_integer(qty))
            return false;
        if (!out_printf(b, "%s{\"line_id\":\"%s\",\"sku\":\"%s\",\"qty\":%" JSON_INTEGER_FORMAT "}",
                        i ? "," : "", line_id, sku, json_integer_value(qty)))
            return false;
    }
    return out_printf(b, "],\"cost\":10,\"hours\":72}],\"backordered\":[]}\n");
}

static void usage(FILE *f)
{
    fputs("usage: floor --events E.jsonl [--out A.jsonl]\n"
          "Parses every event and writes one allocation-sized line per order (to A or stdout);\n"
          "a summary goes to stderr.\n",
          f);
}

int main(int argc, char **argv)
{
    const char *events_path = NULL, *out_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc) {
            events_path = argv[++i];
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out_path = argv[++i];
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!events_path) {
        usage(stderr);
        return 2;
    }

    int rc = 1;
    FILE *in = NULL, *out = NULL;
    char *text = NULL;
    size_t text_cap = 0;
    outbuf b = {0};
    int64_t nlines = 0, norders = 0, nbad = 0;

    in = fopen(events_path, "r");
    if (!in) {
        fprintf(stderr, "floor: %s: %s\n", events_path, strerror(errno));
        goto fail;
    }
    out = out_path ? fopen(out_path, "w") : stdout;
    if (!out) {
        fprintf(stderr, "floor: %s: %s\n", out_path, strerror(errno));
        goto fail;
    }
    b.cap = 4096;
    b.data = malloc(b.cap);
    if (!b.data)
        goto fail;

    ssize_t len;
    while ((len = getline(&text, &text_cap, in)) != -1) {
        nlines++;
        if (len > 0 && text[len - 1] == '\n')
            len--;
        if (len == 0)
            continue;
        json_error_t jerr;
        json_t *ev = json_loadb(text, (size_t)len, 0, &jerr);
        if (!json_is_object(ev)) {
            nbad++;
            json_decref(ev);
            continue;
        }
        const char *type = str_field(ev, "type");
        if (type && !strcmp(type, "order.created")) {
            if (write_allocation(&b, ev)) {
                fwrite(b.data, 1, b.len, out);
                norders++;
            } else {
                nbad++;
            }
        }
        json_decref(ev);
    }
    if (ferror(in)) {
        fprintf(stderr, "floor: %s: read failed\n", events_path);
        goto fail;
    }
    if (fflush(out) != 0 || ferror(out)) {
        fprintf(stderr, "floor: %s: write failed\n", out_path ? out_path : "stdout");
        goto fail;
    }
    fprintf(stderr, "floor: %" PRId64 " lines, %" PRId64 " orders, %" PRId64 " bad\n", nlines,
            norders, nbad);
    rc = 0;
fail:
    free(b.data);
    free(text);
    if (in)
        fclose(in);
    if (out && out != stdout && fclose(out) != 0 && rc == 0) {
        fprintf(stderr, "floor: %s: write failed\n", out_path);
        rc = 1;
    }
    return rc;
}
