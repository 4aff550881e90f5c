/* Checkpoints as bytes: the engine's whole view (stock, reservations, capacity used, orders
 * and their shipments, the duplicate index, backlogs, clock) with the positions and sequence
 * numbers it covers, in a versioned format with a checksum (README "Checkpoint format").
 *
 * The format is a header, tagged sections and a checksum. Each module writes and reads the
 * sections of its own data (the engine's in engine.c, the inventory's in inventory.c) with the
 * primitives below; this module frames them. Adding state means adding a section: a reader
 * refuses a checkpoint with a section it does not know (it would lose that state) and reads a
 * section that is absent as empty. */
#ifndef OMO_SNAPSHOT_H
#define OMO_SNAPSHOT_H

#include "engine.h"
#include "store.h"
#include "strbuf.h"

#define OMO_SNAPSHOT_VERSION 1u

/* Section tags: four characters, as a little-endian u32. */
#define OMO_SNAP_TAG(a, b, c, d)                                                                   \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/* Appends to a growing buffer; sections are opened and closed around their contents. */
typedef struct omo_snap_w {
    omo_strbuf buf;
    size_t section; /* where the open section's length goes */
} omo_snap_w;

void omo_snap_begin(omo_snap_w *w, uint32_t tag);
void omo_snap_end(omo_snap_w *w);
void omo_snap_u8(omo_snap_w *w, uint8_t v);
void omo_snap_u32(omo_snap_w *w, uint32_t v);
void omo_snap_i64(omo_snap_w *w, int64_t v);
void omo_snap_f64(omo_snap_w *w, double v);
/* A length (u32) and the bytes; NULL is written as length 0xffffffff. */
void omo_snap_str(omo_snap_w *w, const char *s);

/* Reads one section's payload. Any read past its end, or any content a loader finds
 * impossible, sets bad; reads then return zeros, so loaders check bad once at the end. */
typedef struct omo_snap_r {
    const unsigned char *p;
    size_t len, at;
    bool bad;
    char why[128];
} omo_snap_r;

uint8_t omo_snap_r_u8(omo_snap_r *r);
uint32_t omo_snap_r_u32(omo_snap_r *r);
int64_t omo_snap_r_i64(omo_snap_r *r);
double omo_snap_r_f64(omo_snap_r *r);
/* A count of elements of at least `unit` bytes each still in the section, or 0 (and bad). */
size_t omo_snap_r_count(omo_snap_r *r, size_t unit);
/* Copies a string into buf (cap bytes, NUL-terminated). Returns false for NULL (or bad). */
bool omo_snap_r_str(omo_snap_r *r, char *buf, size_t cap);
/* Marks the section bad with a reason. */
void omo_snap_r_fail(omo_snap_r *r, const char *why);

/* What a checkpoint covers besides the view. */
typedef struct omo_snapshot_meta {
    int64_t applied_seq; /* the view is every applied event up to this seq, and none after */
    int64_t outbox_seq;  /* the outbox seqs these events produced end here */
    char rules_version[OMO_ID_MAX + 1];
    int64_t taken_ms;        /* wall clock when it was taken */
    int64_t event_ms;        /* the engine's clock: the latest event time applied */
    omo_position *positions; /* input positions after applied_seq (owned by whoever filled it) */
    size_t npositions;
} omo_snapshot_meta;

/* Serialises the engine and meta. Returns a malloc'd buffer the caller frees; *len its size.
 * @locality any thread, while nothing changes the engine (the service calls it in a forked
 * child, where nothing else runs). */
char *omo_snapshot_write(const omo_engine *eng, const omo_snapshot_meta *meta, size_t *len);

/* Checks the header, version and checksum of data and loads it into eng, which must be fresh
 * (created over the same network, nothing applied). Fills *meta (positions malloc'd: free
 * them with omo_snapshot_meta_clear). Returns false with err saying why (eng is then to be
 * destroyed). */
OMO_MUST_CHECK bool omo_snapshot_read(const void *data, size_t len, omo_engine *eng,
                                      omo_snapshot_meta *meta, char *err, size_t errlen);
void omo_snapshot_meta_clear(omo_snapshot_meta *meta);

#endif
