/* Checkpoint framing: header, tagged sections, checksum (see snapshot.h and README
 * "Checkpoint format"). Numbers are little-endian and fixed width, so a checkpoint reads the
 * same on any machine; doubles are their IEEE-754 bits. */
#include "snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char MAGIC[8] = {'O', 'M', 'O', 'C', 'K', 'P', 'T', '\n'};
#define TAG_META OMO_SNAP_TAG('M', 'E', 'T', 'A')

/* ---- writing ---- */

static void put_le(omo_snap_w *w, uint64_t v, int bytes)
{
    unsigned char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    omo_strbuf_put(&w->buf, (const char *)b, (size_t)bytes);
}

void omo_snap_u8(omo_snap_w *w, uint8_t v)
{
    put_le(w, v, 1);
}

void omo_snap_u32(omo_snap_w *w, uint32_t v)
{
    put_le(w, v, 4);
}

void omo_snap_i64(omo_snap_w *w, int64_t v)
{
    put_le(w, (uint64_t)v, 8);
}

void omo_snap_f64(omo_snap_w *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_le(w, bits, 8);
}

void omo_snap_str(omo_snap_w *w, const char *s)
{
    if (!s) {
        omo_snap_u32(w, UINT32_MAX);
        return;
    }
    size_t n = strlen(s);
    omo_snap_u32(w, (uint32_t)n);
    omo_strbuf_put(&w->buf, s, n);
}

void omo_snap_begin(omo_snap_w *w, uint32_t tag)
{
    omo_snap_u32(w, tag);
    w->section = w->buf.len;
    omo_snap_i64(w, 0); /* the length, set by omo_snap_end */
}

void omo_snap_end(omo_snap_w *w)
{
    uint64_t n = w->buf.len - w->section - 8;
    for (int i = 0; i < 8; i++)
        w->buf.p[w->section + (size_t)i] = (char)(n >> (8 * i));
}

/* ---- reading ---- */

static uint64_t get_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

void omo_snap_r_fail(omo_snap_r *r, const char *why)
{
    if (!r->bad)
        snprintf(r->why, sizeof r->why, "%s", why);
    r->bad = true;
}

static const unsigned char *take(omo_snap_r *r, size_t n)
{
    if (r->bad || r->len - r->at < n) {
        omo_snap_r_fail(r, "section ends early");
        return NULL;
    }
    const unsigned char *p = r->p + r->at;
    r->at += n;
    return p;
}

uint8_t omo_snap_r_u8(omo_snap_r *r)
{
    const unsigned char *p = take(r, 1);
    return p ? p[0] : 0;
}

uint32_t omo_snap_r_u32(omo_snap_r *r)
{
    const unsigned char *p = take(r, 4);
    return p ? (uint32_t)get_le(p, 4) : 0;
}

int64_t omo_snap_r_i64(omo_snap_r *r)
{
    const unsigned char *p = take(r, 8);
    return p ? (int64_t)get_le(p, 8) : 0;
}

double omo_snap_r_f64(omo_snap_r *r)
{
    const unsigned char *p = take(r, 8);
    uint64_t bits = p ? get_le(p, 8) : 0;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

size_t omo_snap_r_count(omo_snap_r *r, size_t unit)
{
    uint32_t n = omo_snap_r_u32(r);
    if (r->bad || (unit && (uint64_t)n * unit > r->len - r->at)) {
        omo_snap_r_fail(r, "a count larger than its section");
        return 0;
    }
    return n;
}

bool omo_snap_r_str(omo_snap_r *r, char *buf, size_t cap)
{
    buf[0] = 0;
    uint32_t n = omo_snap_r_u32(r);
    if (n == UINT32_MAX || r->bad)
        return false;
    if (n >= cap) {
        omo_snap_r_fail(r, "a string longer than allowed");
        return false;
    }
    const unsigned char *p = take(r, n);
    if (!p)
        return false;
    memcpy(buf, p, n);
    buf[n] = 0;
    return true;
}

/* ---- whole checkpoints ---- */

char *omo_snapshot_write(const omo_engine *eng, const omo_snapshot_meta *meta, size_t *len)
{
    omo_snap_w w = {0};
    omo_strbuf_put(&w.buf, MAGIC, sizeof MAGIC);
    omo_snap_u32(&w, OMO_SNAPSHOT_VERSION);

    omo_snap_begin(&w, TAG_META);
    omo_snap_i64(&w, meta->applied_seq);
    omo_snap_i64(&w, meta->outbox_seq);
    omo_snap_str(&w, meta->rules_version);
    omo_snap_i64(&w, meta->taken_ms);
    omo_snap_i64(&w, meta->event_ms);
    omo_snap_u32(&w, (uint32_t)meta->npositions);
    for (size_t i = 0; i < meta->npositions; i++) {
        omo_snap_u32(&w, (uint32_t)meta->positions[i].topic);
        omo_snap_u32(&w, (uint32_t)meta->positions[i].partition);
        omo_snap_i64(&w, meta->positions[i].next_offset);
    }
    omo_snap_end(&w);

    omo_engine_save(eng, &w);

    omo_snap_i64(&w, (int64_t)omo_hash_bytes(w.buf.p, w.buf.len));
    *len = w.buf.len;
    return w.buf.p;
}

static bool read_meta(omo_snap_r *r, omo_snapshot_meta *meta)
{
    meta->applied_seq = omo_snap_r_i64(r);
    meta->outbox_seq = omo_snap_r_i64(r);
    (void)omo_snap_r_str(r, meta->rules_version, sizeof meta->rules_version);
    meta->taken_ms = omo_snap_r_i64(r);
    meta->event_ms = omo_snap_r_i64(r);
    size_t n = omo_snap_r_count(r, 16);
    meta->positions = omo_xcalloc(n ? n : 1, sizeof(omo_position));
    for (size_t i = 0; i < n && !r->bad; i++) {
        omo_position *p = &meta->positions[meta->npositions++];
        p->topic = (omo_topic)omo_snap_r_u32(r);
        p->partition = (int32_t)omo_snap_r_u32(r);
        p->next_offset = omo_snap_r_i64(r);
    }
    if (meta->applied_seq < 0 || meta->outbox_seq < 0)
        omo_snap_r_fail(r, "negative sequence numbers");
    return !r->bad;
}

bool omo_snapshot_read(const void *data, size_t len, omo_engine *eng, omo_snapshot_meta *meta,
                       char *err, size_t errlen)
{
    const unsigned char *p = data;
    memset(meta, 0, sizeof *meta);
    if (len < sizeof MAGIC + 4 + 8 || memcmp(p, MAGIC, sizeof MAGIC)) {
        snprintf(err, errlen, "not a checkpoint (no header)");
        return false;
    }
    uint32_t version = (uint32_t)get_le(p + sizeof MAGIC, 4);
    if (version != OMO_SNAPSHOT_VERSION) {
        snprintf(err, errlen, "format version %u, this binary reads version %u", version,
                 OMO_SNAPSHOT_VERSION);
        return false;
    }
    uint64_t sum = get_le(p + len - 8, 8);
    if (sum != omo_hash_bytes(p, len - 8)) {
        snprintf(err, errlen, "checksum mismatch");
        return false;
    }
    size_t at = sizeof MAGIC + 4, end = len - 8;
    bool have_meta = false;
    while (at < end) {
        if (end - at < 12) {
            snprintf(err, errlen, "section header cut at byte %zu", at);
            return false;
        }
        uint32_t tag = (uint32_t)get_le(p + at, 4);
        uint64_t n = get_le(p + at + 4, 8);
        at += 12;
        if (n > end - at) {
            snprintf(err, errlen, "section at byte %zu longer than the checkpoint", at - 12);
            return false;
        }
        omo_snap_r r = {.p = p + at, .len = (size_t)n};
        char name[5] = {(char)tag, (char)(tag >> 8), (char)(tag >> 16), (char)(tag >> 24), 0};
        if (tag == TAG_META) {
            have_meta = read_meta(&r, meta);
        } else if (!omo_engine_load_section(eng, tag, &r)) {
            snprintf(err, errlen, "unknown section '%s'", name);
            return false;
        }
        if (!r.bad && r.at != r.len)
            omo_snap_r_fail(&r, "bytes left over");
        if (r.bad) {
            snprintf(err, errlen, "section '%s': %s", name, r.why);
            return false;
        }
        at += (size_t)n;
    }
    if (!have_meta) {
        snprintf(err, errlen, "no META section");
        return false;
    }
    return omo_engine_load_finish(eng, err, errlen);
}

void omo_snapshot_meta_clear(omo_snapshot_meta *meta)
{
    free(meta->positions);
    meta->positions = NULL;
    meta->npositions = 0;
}
