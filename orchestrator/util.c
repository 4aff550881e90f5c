#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

void *omo_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("omo: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *omo_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fputs("omo: out of memory\n", stderr);
        abort();
    }
    return p;
}

void *omo_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fputs("omo: out of memory\n", stderr);
        abort();
    }
    return q;
}

char *omo_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = omo_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

void omo_grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    *arr = omo_xrealloc(*arr, ncap * size);
    *cap = ncap;
}

void omo_diag_add(omo_diag *diag, const char *line)
{
    omo_grow((void **)&diag->lines, &diag->cap, diag->count + 1, sizeof(char *));
    diag->lines[diag->count++] = omo_xstrdup(line);
}

/* Control characters of the input (a quoted scalar may hold a newline) are written as \n, \t,
 * \r or \xHH: an error stays one line. */
static void escape_controls(const char *in, char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 5 < len; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            out[o++] = (char)*p;
            continue;
        }
        out[o++] = '\\';
        if (*p == '\n' || *p == '\t' || *p == '\r') {
            out[o++] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
        } else {
            out[o++] = 'x';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
}

void omo_diag_error(omo_diag *diag, const omo_loc *loc, const char *fmt, ...)
{
    char raw[512], what[512], line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    escape_controls(raw, what, sizeof what);
    if (loc && loc->file)
        snprintf(line, sizeof line, "%s:%d:%d: error: %s", loc->file, loc->line, loc->col, what);
    else
        snprintf(line, sizeof line, "error: %s", what);
    omo_diag_add(diag, line);
}

void omo_diag_print(const omo_diag *diag, void *file)
{
    for (size_t i = 0; i < diag->count; i++)
        fprintf((FILE *)file, "%s\n", diag->lines[i]);
}

void omo_diag_clear(omo_diag *diag)
{
    for (size_t i = 0; i < diag->count; i++)
        free(diag->lines[i]);
    free(diag->lines);
    diag->lines = NULL;
    diag->count = diag->cap = 0;
}

bool omo_fixed_parse(const char *s, int64_t scale, int64_t *out)
{
    /* Decimal digits only: exact, whatever the double would have rounded to. */
    const char *p = s;
    bool neg = false;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return false;
    int64_t ip = 0;
    while (isdigit((unsigned char)*p)) {
        if (ip > (INT64_MAX / 10 - 9) / scale)
            return false;
        ip = ip * 10 + (*p++ - '0');
    }
    int64_t frac = 0, fscale = 1;
    int round = 0;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (fscale < scale) {
                frac = frac * 10 + (*p - '0');
                fscale *= 10;
            } else if (fscale == scale && round == 0) {
                round = *p >= '5' ? 1 : -1;
            }
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (*end || errno || !isfinite(d) || fabs(d) * (double)scale > 9e18)
            return false;
        *out = omo_fixed_from_double(d, scale);
        return true;
    }
    if (*p)
        return false;
    int64_t v = ip * scale + frac * (scale / fscale) + (round > 0);
    *out = neg ? -v : v;
    return true;
}

int64_t omo_fixed_from_double(double v, int64_t scale)
{
    return (int64_t)llround(v * (double)scale);
}

/* Writes the decimal digits of u, at least `width` of them, ending at end; returns the start. */
static char *put_digits(char *end, uint64_t u, int width)
{
    char *p = end;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
        width--;
    } while (u || width > 0);
    return p;
}

char *omo_fixed_format(int64_t v, int64_t scale, int decimals, char *buf, size_t len)
{
    int64_t div = 1;
    int sdig = 0;
    for (int64_t s = scale; s > 1; s /= 10)
        sdig++;
    if (decimals > sdig)
        decimals = sdig;
    for (int i = decimals; i < sdig; i++)
        div *= 10;
    /* Round to `decimals` places, half away from zero. */
    bool neg = v < 0;
    uint64_t a = neg ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
    a = (a + (uint64_t)div / 2) / (uint64_t)div;
    uint64_t unit = (uint64_t)(scale / div);
    uint64_t ip = a / unit, fp = a % unit;
    /* Formatted by hand: this runs for every number of every allocation. */
    char tmp[48], *end = tmp + sizeof tmp, *p = end;
    if (fp) {
        int d = decimals;
        while (fp % 10 == 0) {
            fp /= 10;
            d--;
        }
        p = put_digits(p, fp, d);
        *--p = '.';
    }
    p = put_digits(p, ip, 1);
    if (neg && a)
        *--p = '-';
    size_t n = (size_t)(end - p);
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = 0;
    return buf;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

bool omo_time_parse(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, se;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &se))
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
        return false;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    const char *p = s + 19;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            n++;
            p++;
        }
        for (; n < 3; n++)
            frac_ms *= 10;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        off = (oh * 60 + om) * 60;
        if (*p == '-')
            off = -off;
        p += 6;
    } else {
        return false;
    }
    if (*p)
        return false;
    int64_t secs =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off;
    *ms = secs * 1000 + frac_ms;
    return true;
}

/* The civil date of a day count since 1970-01-01 (proleptic Gregorian). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

char *omo_time_format(int64_t ms, char *buf, size_t len)
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t sod = secs - days * 86400, y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    if (y < 0 || y > 9999 || len < 25) {
        snprintf(buf, len, "%lld", (long long)ms);
        return buf;
    }
    /* "YYYY-MM-DDTHH:MM:SS[.mmm]Z", by hand: one per allocation. */
    char *p = buf;
    put_digits(p + 4, (uint64_t)y, 4);
    p[4] = '-';
    put_digits(p + 7, mo, 2);
    p[7] = '-';
    put_digits(p + 10, d, 2);
    p[10] = 'T';
    put_digits(p + 13, (uint64_t)(sod / 3600), 2);
    p[13] = ':';
    put_digits(p + 16, (uint64_t)(sod / 60 % 60), 2);
    p[16] = ':';
    put_digits(p + 19, (uint64_t)(sod % 60), 2);
    p += 19;
    if (frac) {
        *p = '.';
        put_digits(p + 4, (uint64_t)frac, 3);
        p += 4;
    }
    p[0] = 'Z';
    p[1] = 0;
    return buf;
}

double omo_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    if (a > 1.0)
        a = 1.0;
    return 2.0 * 6371.0 * asin(sqrt(a));
}

uint64_t omo_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t omo_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

bool omo_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!(isalnum(c) || c == '_' || c == '.' || c == '-') || n >= OMO_ID_MAX)
            return false;
    }
    return n > 0;
}

static size_t strmap_slot(const omo_strmap *map, const char *key, uint64_t h)
{
    size_t mask = map->cap - 1, i = (size_t)h & mask;
    while (map->slots[i].key && (map->slots[i].hash != h || strcmp(map->slots[i].key, key)))
        i = (i + 1) & mask;
    return i;
}

int omo_strmap_get(const omo_strmap *map, const char *key)
{
    if (!map->cap)
        return -1;
    size_t i = strmap_slot(map, key, omo_hash_str(key));
    return map->slots[i].key ? map->slots[i].val : -1;
}

/* Copies key into the map's chunks. */
static char *strmap_keep(omo_strmap *map, const char *key)
{
    size_t n = strlen(key) + 1;
    enum { CHUNK = 1 << 16 };
    if (!map->nchunks || map->chunk_used + n > CHUNK) {
        if (map->nchunks == map->capchunks) {
            size_t ncap = map->capchunks ? map->capchunks * 2 : 8;
            char **nc = realloc(map->chunks, sizeof(char *) * ncap);
            if (!nc)
                return NULL;
            map->chunks = nc;
            map->capchunks = ncap;
        }
        char *chunk = malloc(n > CHUNK ? n : CHUNK);
        if (!chunk)
            return NULL;
        map->chunks[map->nchunks++] = chunk;
        map->chunk_used = 0;
    }
    char *k = map->chunks[map->nchunks - 1] + map->chunk_used;
    memcpy(k, key, n);
    map->chunk_used += n;
    return k;
}

int omo_strmap_add(omo_strmap *map, const char *key, int val, bool *added)
{
    if ((map->count + 1) * 2 > map->cap) {
        size_t ncap = map->cap ? map->cap * 2 : 16;
        omo_strmap_slot *slots = calloc(ncap, sizeof *slots);
        if (!slots)
            return -1;
        omo_strmap old = *map;
        map->slots = slots;
        map->cap = ncap;
        for (size_t i = 0; i < old.cap; i++)
            if (old.slots[i].key)
                map->slots[strmap_slot(map, old.slots[i].key, old.slots[i].hash)] = old.slots[i];
        free(old.slots);
    }
    uint64_t h = omo_hash_str(key);
    omo_strmap_slot *s = &map->slots[strmap_slot(map, key, h)];
    *added = !s->key;
    if (*added) {
        s->key = strmap_keep(map, key);
        if (!s->key)
            return -1;
        s->hash = h;
        s->val = val;
        map->count++;
    }
    return s->val;
}

void omo_strmap_reserve(omo_strmap *map, size_t n)
{
    if (map->count || n * 2 <= map->cap)
        return;
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    omo_strmap_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return;
    free(map->slots);
    map->slots = slots;
    map->cap = cap;
}

bool omo_strmap_put(omo_strmap *map, const char *key, int val)
{
    bool added;
    if (omo_strmap_add(map, key, val, &added) < 0)
        return false;
    map->slots[strmap_slot(map, key, omo_hash_str(key))].val = val;
    return true;
}

void omo_strmap_free(omo_strmap *map)
{
    for (size_t i = 0; i < map->nchunks; i++)
        free(map->chunks[i]);
    free(map->chunks);
    free(map->slots);
    memset(map, 0, sizeof *map);
}

/* A second, independent 64-bit hash: a multiply-xorshift over 8-byte words. */
static uint64_t hash2(const char *s, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    uint64_t w = 0;
    memcpy(&w, s + i, len - i);
    h = (h ^ w) * 0x94d049bb133111ebULL;
    return h ^ (h >> 29);
}

/* Large tables come straight from the kernel: zero pages without a memset, on huge pages where
 * it allows (a probe lands anywhere, and 4 KiB pages would cost a TLB miss on nearly every one). */
void *omo_table_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fputs("omo: out of memory\n", stderr);
        abort();
    }
    if (bytes >= (2u << 20))
        madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

void omo_table_free(void *p, size_t bytes)
{
    if (p)
        munmap(p, bytes);
}

static void hashset_grow(omo_hashset *set, size_t cap)
{
    uint64_t *slots = omo_table_alloc(cap * 2 * sizeof(uint64_t));
    for (size_t i = 0; i < set->cap; i++) {
        uint64_t a = set->slots[2 * i], b = set->slots[2 * i + 1];
        if (!a && !b)
            continue;
        size_t j = (size_t)a & (cap - 1);
        while (slots[2 * j] || slots[2 * j + 1])
            j = (j + 1) & (cap - 1);
        slots[2 * j] = a;
        slots[2 * j + 1] = b;
    }
    omo_table_free(set->slots, set->cap * 2 * sizeof(uint64_t));
    set->slots = slots;
    set->cap = cap;
}

static void hashset_hashes(const char *s, uint64_t *a, uint64_t *b)
{
    size_t len = strlen(s);
    *a = omo_hash_bytes(s, len);
    *b = hash2(s, len);
    if (!*a && !*b)
        *b = 1; /* (0, 0) marks an empty slot */
}

bool omo_hashset_has(const omo_hashset *set, const char *s)
{
    if (!set->count)
        return false;
    uint64_t a, b;
    hashset_hashes(s, &a, &b);
    for (size_t i = (size_t)a & (set->cap - 1); set->slots[2 * i] || set->slots[2 * i + 1];
         i = (i + 1) & (set->cap - 1))
        if (set->slots[2 * i] == a && set->slots[2 * i + 1] == b)
            return true;
    return false;
}

bool omo_hashset_add(omo_hashset *set, const char *s)
{
    uint64_t a, b;
    hashset_hashes(s, &a, &b);
    return omo_hashset_add_pair(set, a, b);
}

bool omo_hashset_add_pair(omo_hashset *set, uint64_t a, uint64_t b)
{
    if ((set->count + 1) * 4 > set->cap * 3) /* up to three quarters full */
        hashset_grow(set, set->cap ? set->cap * 2 : 1024);
    size_t i = (size_t)a & (set->cap - 1);
    while (set->slots[2 * i] || set->slots[2 * i + 1]) {
        if (set->slots[2 * i] == a && set->slots[2 * i + 1] == b)
            return false;
        i = (i + 1) & (set->cap - 1);
    }
    set->slots[2 * i] = a;
    set->slots[2 * i + 1] = b;
    set->count++;
    return true;
}

void omo_hashset_reserve(omo_hashset *set, size_t n)
{
    size_t cap = set->cap ? set->cap : 1024;
    while (cap * 3 < n * 4)
        cap *= 2;
    if (cap > set->cap)
        hashset_grow(set, cap);
}

void omo_hashset_free(omo_hashset *set)
{
    omo_table_free(set->slots, set->cap * 2 * sizeof(uint64_t));
    memset(set, 0, sizeof *set);
}
