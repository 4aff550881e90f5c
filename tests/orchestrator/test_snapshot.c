/* Checkpoints as bytes: a checkpoint of the view plus the events after it decide exactly as
 * the whole history does, on a day with every event kind (orders, cancellations, snapshots,
 * deltas, bins, picks with short lines, ships, collections, duplicates); a checkpoint that
 * fails its check (a flipped byte, an unknown version or section, cut short) is refused. */
#include "engine.h"
#include "snapshot.h"

#include "strbuf.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static omo_network *net;
static omo_rules *rules;

typedef struct lines {
    char **v;
    size_t n, cap;
} lines;

static void push(lines *l, const char *s, size_t n)
{
    omo_grow((void **)&l->v, &l->cap, l->n + 1, sizeof(char *));
    l->v[l->n] = omo_xmalloc(n + 1);
    memcpy(l->v[l->n], s, n);
    l->v[l->n++][n] = 0;
}

static void lines_free(lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Every revision and shipment status, as the service would send them. */
static char *json;
static size_t capjson;

static void on_alloc(void *ctx, const omo_allocation *a)
{
    size_t n = omo_allocation_json(a, net, &json, &capjson);
    if (ctx)
        push(ctx, json, n - 1);
}

static void on_status(void *ctx, const omo_shipment_status *st)
{
    size_t n = omo_shipment_status_json(st, net, &json, &capjson);
    if (ctx)
        push(ctx, json, n - 1);
}

static omo_engine *new_engine(lines *out)
{
    omo_engine *eng = omo_engine_create(net, rules, on_alloc, out);
    omo_engine_set_status_sink(eng, on_status, out);
    return eng;
}

static void apply(omo_engine *eng, const char *s)
{
    static omo_event ev;
    omo_event_error err;
    if (omo_event_parse(s, strlen(s), net, &ev, &err))
        (void)omo_engine_apply(eng, &ev, &err);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = omo_xmalloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* The example day, with store-side steps woven in from the view as it goes: every tenth
 * order's first shipment is picked (every third of them short on its first line), then
 * shipped or collected; a bin is set now and then; some events come twice. */
/* The example day again `d` days later, with ids of its own. */
static char *shift_day(const char *day, int d)
{
    omo_strbuf out = {0};
    char date[16], oid[24], eid[24];
    snprintf(date, sizeof date, "2026-11-%02d", 23 + d);
    snprintf(oid, sizeof oid, "\"order_id\":\"d%d-", d);
    snprintf(eid, sizeof eid, "\"event_id\":\"d%d-", d);
    for (const char *p = day; *p;) {
        if (!strncmp(p, "2026-11-23", 10)) {
            omo_strbuf_puts(&out, date);
            p += 10;
        } else if (!strncmp(p, "\"order_id\":\"", 12)) {
            omo_strbuf_puts(&out, oid);
            p += 12;
        } else if (!strncmp(p, "\"event_id\":\"", 12)) {
            omo_strbuf_puts(&out, eid);
            p += 12;
        } else
            omo_strbuf_putc(&out, *p++);
    }
    return out.p;
}

/* hold.placed for the basket of an order.created line. */
static char *hold_of(const char *order, const char *id)
{
    json_t *j = json_loads(order, 0, NULL);
    char hid[160];
    snprintf(hid, sizeof hid, "h-%s", id);
    json_object_set_new(j, "type", json_string("hold.placed"));
    json_object_set_new(j, "hold_id", json_string(hid));
    json_object_set_new(j, "ttl_seconds", json_integer(600));
    json_object_set(j, "at", json_object_get(j, "created_at"));
    json_object_del(j, "created_at");
    json_object_del(j, "order_id");
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static void build_days(lines *events, int ndays)
{
    size_t len;
    char *one = slurp(OMO_SOURCE_DIR "/config/day.jsonl", &len);
    omo_strbuf all = {0};
    for (int d = 0; d < ndays; d++) {
        char *shifted = d ? shift_day(one, d) : omo_xstrdup(one);
        if (d) /* an event id of the day before, again: a duplicate within the retention */
            omo_strbuf_put(&all, one, (size_t)(strchr(one, '\n') + 1 - one));
        omo_strbuf_puts(&all, shifted);
        free(shifted);
    }
    free(one);
    char *day = all.p;
    omo_engine *eng = new_engine(NULL);
    lines picked = {0};
    char buf[512];
    int orders = 0;
    for (char *p = day, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl)
            nl = p + strlen(p);
        push(events, p, (size_t)(nl - p));
        const char *line = events->v[events->n - 1];
        apply(eng, line);
        json_t *j = json_loads(line, 0, NULL);
        const char *type = j ? json_string_value(json_object_get(j, "type")) : NULL;
        const char *at = j ? json_string_value(json_object_get(j, "created_at")) : NULL;
        if (type && !strcmp(type, "stock.snapshot") && events->n % 97 == 0) {
            snprintf(
                buf, sizeof buf,
                "{\"type\":\"stock.bin\",\"node_id\":\"%s\",\"sku\":\"%s\",\"bin\":\"%02zu-01-1\"}",
                json_string_value(json_object_get(j, "node_id")),
                json_string_value(json_object_get(j, "sku")), events->n % 90);
            push(events, buf, strlen(buf));
            apply(eng, buf);
        }
        if (type && !strcmp(type, "order.created") && ++orders % 10 == 0) {
            const char *id = json_string_value(json_object_get(j, "order_id"));
            char sid[160];
            snprintf(sid, sizeof sid, "%s/1", id);
            omo_ship_state state;
            int pickup = -1;
            if (omo_engine_find_shipment(eng, sid, &state, &pickup) >= 0 &&
                state == OMO_SHIP_ALLOCATED) {
                if (orders % 30 == 0)
                    snprintf(
                        buf, sizeof buf,
                        "{\"type\":\"pick.confirmed\",\"shipment_id\":\"%s\",\"at\":\"%s\","
                        "\"lines\":[{\"line_id\":\"1\",\"picked\":0,\"reason\":\"not_found\"}]}",
                        sid, at);
                else
                    snprintf(buf, sizeof buf,
                             "{\"type\":\"pick.confirmed\",\"shipment_id\":\"%s\",\"at\":\"%s\"}",
                             sid, at);
                push(events, buf, strlen(buf));
                apply(eng, buf);
                if (orders % 30 != 0)
                    push(&picked, sid, strlen(sid));
            }
            if (orders % 20 == 0)
                push(events, line, strlen(line)); /* a duplicate order */
            /* A checkout hold on the same basket, released now and then; a node paused for a
             * while. */
            if (orders % 30 == 0) {
                char *hold = hold_of(line, id);
                push(events, hold, strlen(hold));
                static omo_event hev;
                omo_event_error herr;
                cr_assert(omo_event_parse(hold, strlen(hold), net, &hev, &herr), "%s: %s", hold,
                          herr.message);
                apply(eng, hold);
                free(hold);
            }
            if (orders % 60 == 0) {
                snprintf(buf, sizeof buf,
                         "{\"type\":\"hold.released\",\"hold_id\":\"h-%s\",\"at\":\"%s\"}", id, at);
                push(events, buf, strlen(buf));
                apply(eng, buf);
            }
            if (orders % 400 == 100 || orders % 400 == 300) {
                snprintf(buf, sizeof buf,
                         "{\"type\":\"node.%s\",\"node_id\":\"DC-OAK4\",\"at\":\"%s\"%s}",
                         orders % 400 == 100 ? "paused" : "resumed", at,
                         orders % 400 == 100 ? ",\"reason\":\"count\"" : "");
                push(events, buf, strlen(buf));
                apply(eng, buf);
            }
            /* Ship or collect what was picked a while ago. */
            if (picked.n > 3) {
                const char *old = picked.v[picked.n - 4];
                if (omo_engine_find_shipment(eng, old, &state, &pickup) >= 0 &&
                    state == OMO_SHIP_PICKED) {
                    snprintf(buf, sizeof buf,
                             "{\"type\":\"shipment.%s\",\"shipment_id\":\"%s\",\"at\":\"%s\"}",
                             pickup >= 0 ? "collected" : "shipped", old, at);
                    push(events, buf, strlen(buf));
                    apply(eng, buf);
                }
            }
        }
        json_decref(j);
        if (!*nl)
            break;
    }
    omo_engine_destroy(eng);
    lines_free(&picked);
    free(day);
}

static void build_day(lines *events)
{
    build_days(events, 1);
}

static void setup(void)
{
    omo_diag diag = {0};
    size_t len;
    char *text = slurp(OMO_SOURCE_DIR "/config/network.yaml", &len);
    net = omo_network_parse("network.yaml", text, len, &diag);
    free(text);
    cr_assert_not_null(net);
    text = slurp(OMO_SOURCE_DIR "/config/routing.yaml", &len);
    rules = omo_rules_parse("routing.yaml", text, len, net, &diag);
    free(text);
    cr_assert_not_null(rules);
}

static void teardown(void)
{
    omo_rules_destroy(rules);
    omo_network_destroy(net);
    free(json);
    json = NULL;
    capjson = 0;
}

/* The views compared through the inventory's own interface, not through the checkpoint
 * writer: every record, its stock, reservations, bin and holders in order. */
static void same_view(omo_engine *a, omo_engine *b, size_t cut)
{
    omo_inventory *x = omo_engine_inventory(a), *y = omo_engine_inventory(b);
    cr_assert_eq(omo_inventory_nrecords(x), omo_inventory_nrecords(y), "cut %zu", cut);
    cr_assert_eq(omo_inventory_nskus(x), omo_inventory_nskus(y), "cut %zu", cut);
    size_t held = 0;
    for (size_t r = 0; r < omo_inventory_nrecords(x); r++) {
        const omo_stock *s = omo_inventory_at(x, (int)r), *t = omo_inventory_at(y, (int)r);
        cr_assert(s->node == t->node && s->sku == t->sku && s->on_hand == t->on_hand &&
                      s->reserved == t->reserved && !strcmp(s->bin, t->bin) &&
                      s->nholders == t->nholders && s->slot == t->slot && s->rlist == t->rlist &&
                      s->rpos == t->rpos,
                  "cut %zu: record %zu differs", cut, r);
        for (size_t h = 0; h < s->nholders; h++)
            cr_assert_eq(s->holders[h], t->holders[h], "cut %zu: record %zu holders", cut, r);
        held += s->nholders;
    }
    cr_assert_gt(held, 0);
    int64_t *u = omo_xcalloc(net->nnodes, sizeof(int64_t)), *v = omo_xcalloc(net->nnodes, 8);
    omo_engine_node_units(a, u);
    omo_engine_node_units(b, v);
    cr_assert(!memcmp(u, v, sizeof(int64_t) * net->nnodes), "cut %zu: units per node", cut);
    for (size_t r = 0; r < omo_inventory_nrecords(x); r++)
        cr_assert_eq(omo_inventory_at(x, (int)r)->held, omo_inventory_at(y, (int)r)->held,
                     "cut %zu: units held at record %zu", cut, r);
    int64_t used = 0;
    for (size_t n = 0; n < net->nnodes; n++)
        for (int64_t day = 20779; day <= 20781; day++) { /* around 2026-11-23 */
            cr_assert_eq(omo_inventory_day_used(x, (int)n, day),
                         omo_inventory_day_used(y, (int)n, day), "cut %zu: capacity used", cut);
            used += omo_inventory_day_used(x, (int)n, day);
        }
    cr_assert_gt(used, 0);
    free(u);
    free(v);
}

static char *snapshot(const omo_engine *eng, int64_t seq, size_t *len)
{
    omo_snapshot_meta meta = {.applied_seq = seq, .outbox_seq = 7, .taken_ms = 1};
    snprintf(meta.rules_version, sizeof meta.rules_version, "%s", rules->version_hash);
    omo_position pos[2] = {{OMO_TOPIC_ORDERS, 0, 10}, {OMO_TOPIC_STOCK, 3, 99}};
    meta.positions = pos;
    meta.npositions = 2;
    return omo_snapshot_write(eng, &meta, len);
}

TestSuite(snapshot, .init = setup, .fini = teardown);

Test(snapshot, checkpoint_plus_tail_equals_full_replay)
{
    lines events = {0}, full = {0};
    build_day(&events);
    size_t kinds = 0;
    const char *want[] = {
        "order.created",  "order.cancelled",  "stock.snapshot",     "stock.delta",  "stock.bin",
        "pick.confirmed", "shipment.shipped", "shipment.collected", "\"picked\":0", "hold.placed",
        "hold.released",  "node.paused",      "node.resumed"};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        for (size_t i = 0; i < events.n; i++)
            if (strstr(events.v[i], want[k])) {
                kinds++;
                break;
            }
    cr_assert_eq(kinds, sizeof want / sizeof want[0], "the day lacks an event kind");

    /* The whole history, once. */
    omo_engine *ref = new_engine(&full);
    size_t *out_at = omo_xcalloc(events.n + 1, sizeof(size_t)); /* outputs before event i */
    for (size_t i = 0; i < events.n; i++) {
        out_at[i] = full.n;
        apply(ref, events.v[i]);
    }
    out_at[events.n] = full.n;
    size_t ref_len;
    char *ref_bytes = snapshot(ref, (int64_t)events.n, &ref_len);

    /* A checkpoint at several points, then the tail. */
    const size_t cuts[] = {0, 1, events.n / 3, events.n / 2 + 17, events.n - 5, events.n};
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        size_t k = cuts[c];
        omo_engine *head = new_engine(NULL);
        for (size_t i = 0; i < k; i++)
            apply(head, events.v[i]);
        size_t len;
        char *bytes = snapshot(head, (int64_t)k, &len);
        omo_engine_destroy(head);

        lines tail = {0};
        omo_engine *eng = new_engine(&tail);
        omo_snapshot_meta meta;
        char err[256];
        cr_assert(omo_snapshot_read(bytes, len, eng, &meta, err, sizeof err), "cut %zu: %s", k,
                  err);
        cr_assert_eq(meta.applied_seq, (int64_t)k);
        cr_assert_eq(meta.npositions, 2);
        cr_assert_eq(meta.positions[1].next_offset, 99);
        cr_assert_str_eq(meta.rules_version, rules->version_hash);
        omo_snapshot_meta_clear(&meta);
        free(bytes);
        for (size_t i = k; i < events.n; i++)
            apply(eng, events.v[i]);

        /* The same messages after the cut, byte for byte, and the same view at the end. */
        cr_assert_eq(tail.n, full.n - out_at[k], "cut %zu: %zu messages, want %zu", k, tail.n,
                     full.n - out_at[k]);
        for (size_t i = 0; i < tail.n; i++)
            cr_assert_str_eq(tail.v[i], full.v[out_at[k] + i], "cut %zu, message %zu", k, i);
        same_view(eng, ref, k);
        cr_assert_eq(omo_engine_live_holds(eng), omo_engine_live_holds(ref), "cut %zu", k);
        char *end = snapshot(eng, (int64_t)events.n, &len);
        cr_assert_eq(len, ref_len, "cut %zu", k);
        cr_assert(!memcmp(end, ref_bytes, len), "cut %zu: the views differ", k);
        omo_summary a, b;
        omo_engine_summary(eng, &a);
        omo_engine_summary(ref, &b);
        cr_assert(!memcmp(&a, &b, sizeof a));
        free(end);
        omo_engine_destroy(eng);
        lines_free(&tail);
    }
    cr_assert_gt(full.n, 2000);
    cr_assert_gt(omo_engine_live_holds(ref), 0, "no hold holds units at the end");
    const omo_engine_stats *st = omo_engine_stats_get(ref);
    cr_assert(st->resourced > 0 && st->retried > 0 && st->duplicates > 0,
              "the day re-sources, retries and repeats nothing");
    free(ref_bytes);
    free(out_at);
    omo_engine_destroy(ref);
    lines_free(&events);
    lines_free(&full);
}

/* A small view's checkpoint, for the refusals. */
static char *small(size_t *len)
{
    lines events = {0};
    size_t dlen;
    char *day = slurp(OMO_SOURCE_DIR "/config/day.jsonl", &dlen);
    omo_engine *eng = new_engine(NULL);
    char *p = day;
    for (int i = 0; i < 7000 && *p; i++) {
        char *nl = strchr(p, '\n');
        push(&events, p, (size_t)(nl - p));
        apply(eng, events.v[events.n - 1]);
        p = nl + 1;
    }
    char *bytes = snapshot(eng, 7000, len);
    omo_engine_destroy(eng);
    lines_free(&events);
    free(day);
    return bytes;
}

static void fix_checksum(char *bytes, size_t len)
{
    uint64_t sum = omo_hash_bytes(bytes, len - 8);
    for (int i = 0; i < 8; i++)
        bytes[len - 8 + (size_t)i] = (char)(sum >> (8 * i));
}

static void refused(const char *bytes, size_t len, const char *why)
{
    omo_engine *eng = new_engine(NULL);
    omo_snapshot_meta meta;
    char err[256] = "";
    cr_assert(!omo_snapshot_read(bytes, len, eng, &meta, err, sizeof err), "accepted: %s", why);
    cr_assert(strstr(err, why), "refused for '%s', expected '%s'", err, why);
    omo_snapshot_meta_clear(&meta);
    omo_engine_destroy(eng);
}

Test(snapshot, refuses_what_fails_its_check)
{
    size_t len;
    char *bytes = small(&len);
    {
        omo_engine *eng = new_engine(NULL);
        omo_snapshot_meta meta;
        char err[256];
        cr_assert(omo_snapshot_read(bytes, len, eng, &meta, err, sizeof err), "%s", err);
        omo_snapshot_meta_clear(&meta);
        omo_engine_destroy(eng);
    }
    /* Every flipped byte is seen, wherever it is. */
    for (size_t at = 0; at < len; at += len / 97 + 1) {
        bytes[at] ^= 0x10;
        refused(bytes, len, at < 8 ? "not a checkpoint" : at < 12 ? "version" : "checksum");
        bytes[at] ^= 0x10;
    }
    refused(bytes, len - 1, "checksum");
    refused(bytes, 5, "not a checkpoint");

    /* An unknown version, with a right checksum. */
    bytes[8] = 2;
    fix_checksum(bytes, len);
    refused(bytes, len, "format version 2");
    bytes[8] = 1;
    fix_checksum(bytes, len);

    /* A section this binary does not know: refused rather than read without it. */
    char *more = omo_xmalloc(len + 13);
    memcpy(more, bytes, len - 8);
    memcpy(more + len - 8, "ZZZZ\1\0\0\0\0\0\0\0\0", 13);
    fix_checksum(more, len + 13);
    refused(more, len + 13, "unknown section 'ZZZZ'");

    /* A count beyond its section, checksum right: refused, not read past the end. */
    memcpy(more, bytes, len);
    size_t at = 12; /* META */
    at += 12 + (size_t)((unsigned char)more[16] | (unsigned char)more[17] << 8);
    memset(more + at + 12, 0xff, 4); /* SKUS: its count */
    fix_checksum(more, len);
    refused(more, len, "count larger than its section");
    free(more);
    free(bytes);
}

/* Three days with a retention of one: the finished orders of the first days leave memory,
 * and no decision changes; a checkpoint with pruned history plus its tail decides as the
 * whole history does; an event id of the day before is still a duplicate. */
Test(snapshot, retention_forgets_finished_orders_and_changes_nothing)
{
    lines events = {0}, full = {0}, pruned = {0};
    build_days(&events, 3);
    omo_engine *ref = new_engine(&full), *eng = new_engine(&pruned);
    omo_engine_set_retention(eng, 1);
    size_t *out_at = omo_xcalloc(events.n + 1, sizeof(size_t));
    for (size_t i = 0; i < events.n; i++) {
        out_at[i] = pruned.n;
        apply(ref, events.v[i]);
        apply(eng, events.v[i]);
    }
    for (size_t i = 0; i < full.n && i < pruned.n; i++)
        cr_assert_str_eq(pruned.v[i], full.v[i], "message %zu: %s\nwant %s", i, pruned.v[i],
                         full.v[i]);
    cr_assert_eq(pruned.n, full.n);
    omo_summary a, b;
    omo_engine_summary(ref, &a);
    omo_engine_summary(eng, &b);
    cr_assert_gt(a.orders, 5000);
    cr_assert_lt(b.orders, a.orders, "nothing was pruned");
    const omo_engine_stats *sa = omo_engine_stats_get(ref), *sb = omo_engine_stats_get(eng);
    cr_assert_eq(sa->duplicates, sb->duplicates);
    cr_assert_geq(sa->duplicates, 2);

    /* A checkpoint on the last day, after pruning, then the tail. */
    size_t k = events.n - events.n / 5;
    omo_engine *head = new_engine(NULL);
    omo_engine_set_retention(head, 1);
    for (size_t i = 0; i < k; i++)
        apply(head, events.v[i]);
    size_t len;
    char *bytes = snapshot(head, (int64_t)k, &len);
    omo_engine_destroy(head);
    lines tail = {0};
    omo_engine *restored = new_engine(&tail);
    omo_engine_set_retention(restored, 1);
    omo_snapshot_meta meta;
    char err[256];
    cr_assert(omo_snapshot_read(bytes, len, restored, &meta, err, sizeof err), "%s", err);
    omo_snapshot_meta_clear(&meta);
    free(bytes);
    for (size_t i = k; i < events.n; i++)
        apply(restored, events.v[i]);
    cr_assert_eq(tail.n, full.n - out_at[k]);
    for (size_t i = 0; i < tail.n; i++)
        cr_assert_str_eq(tail.v[i], full.v[out_at[k] + i], "message %zu after the cut", i);
    same_view(restored, eng, k);
    char *x = snapshot(restored, 1, &len), *y;
    size_t ylen;
    y = snapshot(eng, 1, &ylen);
    cr_assert(len == ylen && !memcmp(x, y, len), "the views differ");
    free(x);
    free(y);
    free(out_at);
    omo_engine_destroy(restored);
    omo_engine_destroy(eng);
    omo_engine_destroy(ref);
    lines_free(&tail);
    lines_free(&events);
    lines_free(&full);
    lines_free(&pruned);
}
