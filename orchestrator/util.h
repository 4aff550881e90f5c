/* Small shared pieces: diagnostics, fixed-point numbers, time, hashing, a string map. */
#ifndef OMO_UTIL_H
#define OMO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OMO_MUST_CHECK __attribute__((warn_unused_result))

/* Money is held in millionths, hours in thousandths: every objective is exact integer math. */
#define OMO_MICRO 1000000LL
#define OMO_MILLI 1000LL

/* Identifiers (node, SKU, line ids): at most this many bytes. Order and event ids: twice. */
#define OMO_ID_MAX      64
#define OMO_LONG_ID_MAX 128

/* Where a configuration value came from. */
typedef struct omo_loc {
    const char *file; /* not owned: points into the owning document */
    int line, col;    /* 1-based */
} omo_loc;

/* A list of `FILE:LINE:COL: error: WHAT` lines. */
typedef struct omo_diag {
    char **lines;
    size_t count, cap;
} omo_diag;

/* Appends one formatted error at loc (or at `file` alone when loc is NULL). */
void omo_diag_error(omo_diag *diag, const omo_loc *loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends an already formatted line. */
void omo_diag_add(omo_diag *diag, const char *line);
void omo_diag_print(const omo_diag *diag, void *file /* FILE * */);
void omo_diag_clear(omo_diag *diag);

/* Parses a decimal number string into fixed point with `scale` (OMO_MICRO, OMO_MILLI),
 * rounding half away from zero. Returns false for non-numbers or overflow. */
OMO_MUST_CHECK bool omo_fixed_parse(const char *s, int64_t scale, int64_t *out);
/* Fixed point from a double (JSON numbers). */
int64_t omo_fixed_from_double(double v, int64_t scale);
/* Writes v/scale as the shortest decimal that is exact up to `decimals` places ("12.34",
 * "26", "-0.5"). Returns buf. */
char *omo_fixed_format(int64_t v, int64_t scale, int decimals, char *buf, size_t len);

/* RFC 3339 timestamp ("2026-11-23T10:15:00Z", fractions and offsets allowed) to
 * milliseconds since the epoch. */
OMO_MUST_CHECK bool omo_time_parse(const char *s, int64_t *ms);
/* Milliseconds since the epoch to "2026-11-23T10:15:00Z" (".123" added when not whole). */
char *omo_time_format(int64_t ms, char *buf, size_t len);

/* Great-circle distance in km on a sphere of radius 6371.0 km. */
double omo_distance_km(double lat1, double lon1, double lat2, double lon2);

uint64_t omo_hash_bytes(const void *data, size_t len); /* FNV-1a 64 */
uint64_t omo_hash_str(const char *s);

/* True when s is 1..OMO_ID_MAX bytes of [A-Za-z0-9_.-]. */
bool omo_id_valid(const char *s);

/* Bounds on the numbers of configuration and events, so that every objective (money in
 * millionths times hours in thousandths) fits in 64 bits: units per order line and per order,
 * stock and capacity, money per unit picked, other money, hours. */
#define OMO_MAX_QTY       1000000
#define OMO_MAX_STOCK     1000000000
#define OMO_MAX_PICK_COST 1000
#define OMO_MAX_COST      10000
#define OMO_MAX_HOURS     10000

/* Open-addressing map from strings to non-negative ints; keys are copied. */
typedef struct omo_strmap_slot {
    uint64_t hash;
    char *key; /* NULL: empty; points into chunks */
    int val;
} omo_strmap_slot;

typedef struct omo_strmap {
    omo_strmap_slot *slots; /* one array, so that a probe touches one cache line */
    size_t cap, count;
    char **chunks; /* key storage, freed together */
    size_t nchunks, capchunks, chunk_used;
} omo_strmap;

/* Returns the value for key, or -1. */
int omo_strmap_get(const omo_strmap *map, const char *key);
/* Sets key to val (val >= 0). Returns false only when out of memory. */
OMO_MUST_CHECK bool omo_strmap_put(omo_strmap *map, const char *key, int val);
/* Adds key with val unless present. Returns the key's value (val when added; *added says
 * which), or -1 when out of memory. */
int omo_strmap_add(omo_strmap *map, const char *key, int val, bool *added);
/* Makes room for n keys at once (an empty map only), sparing the growth on the way. */
void omo_strmap_reserve(omo_strmap *map, size_t n);
void omo_strmap_free(omo_strmap *map);

/* A set of strings kept as two independent 64-bit hashes each (16 bytes a member, no copy of
 * the string): two different strings are taken for one with a chance of about n^2 / 2^129, that
 * is never in practice. For the duplicate checks of event ids, where members are only added. */
typedef struct omo_hashset {
    uint64_t *slots; /* pairs (h1, h2); (0, 0) is empty */
    size_t cap, count;
} omo_hashset;

/* True when s is a member. */
bool omo_hashset_has(const omo_hashset *set, const char *s);
/* Adds s; returns false when it was a member already. */
bool omo_hashset_add(omo_hashset *set, const char *s);
/* Adds a member by its two hashes (as kept in slots; not both 0), as checkpoints restore it. */
bool omo_hashset_add_pair(omo_hashset *set, uint64_t h1, uint64_t h2);
void omo_hashset_reserve(omo_hashset *set, size_t n);
void omo_hashset_free(omo_hashset *set);

/* Zeroed memory for a large hash table (huge pages where the kernel allows). */
void *omo_table_alloc(size_t bytes);
void omo_table_free(void *p, size_t bytes);

void *omo_xmalloc(size_t n);
void *omo_xcalloc(size_t n, size_t size);
void *omo_xrealloc(void *p, size_t n);
char *omo_xstrdup(const char *s);

/* Grows *arr (of elements `size` bytes, capacity *cap) to hold at least need elements. */
void omo_grow(void **arr, size_t *cap, size_t need, size_t size);

#endif
