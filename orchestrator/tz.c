/* Time zones from the system's TZif files (RFC 8536), read once and then only looked up.
 *
 * Each zone keeps its transition table and the POSIX TZ rule of the file's footer, which
 * covers instants after the last transition. A lookup is a binary search, with no global
 * state touched (no TZ variable, no localtime), so any thread may call omo_tz_local_day once
 * the zones it uses are interned. */
#include "tz.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TZ_DIR       "/usr/share/zoneinfo"
#define TZ_MAX_ZONES 2048
#define TZ_MAX_FILE  (1 << 20)
#define DAY_SECONDS  86400
/* POSIX offsets are hours 0..24 (with minutes and seconds); only rule times may go to 167 h */
#define TZ_MAX_OFFSET (24 * 3600 + 59 * 60 + 59)

/* One rule date of a POSIX TZ string: Jn, n or Mm.w.d, at `time` seconds local. */
typedef struct tz_date {
    char kind; /* 'J', 'D' (zero-based day) or 'M' */
    int day, month, week, wday;
    int32_t time;
} tz_date;

typedef struct tz_rule {
    bool valid;
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    tz_date start, end;
} tz_rule;

typedef struct tz_zone {
    char *name;
    int64_t *trans; /* transition instants, UTC seconds, ascending */
    int32_t *offs;  /* offset in effect from trans[i] on */
    size_t ntrans;
    int32_t first_off; /* before the first transition */
    tz_rule rule;      /* after the last transition, when valid */
} tz_zone;

/* Fixed slots so a zone never moves once interned, even while another is being added. */
static tz_zone *zones[TZ_MAX_ZONES];
static int nzones;

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t year_of_day(int64_t days)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    return yoe + era * 400 + (m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return days[m - 1] + (m == 2 && is_leap(y));
}

/* Local seconds since the epoch (in the offset then in effect) of a rule date in year y. */
static int64_t rule_local(const tz_date *date, int64_t y)
{
    int64_t day;
    if (date->kind == 'J') {
        day = days_from_civil(y, 1, 1) + date->day - 1;
        if (is_leap(y) && date->day >= 60)
            day++;
    } else if (date->kind == 'D') {
        day = days_from_civil(y, 1, 1) + date->day;
    } else {
        int64_t first = days_from_civil(y, date->month, 1);
        int wd_first = (int)((first % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
        day = first + (date->wday - wd_first + 7) % 7 + 7 * (date->week - 1);
        while (day - first >= month_days(y, date->month))
            day -= 7;
    }
    return day * DAY_SECONDS + date->time;
}

static int32_t rule_offset(const tz_rule *rule, int64_t t)
{
    if (!rule->has_dst)
        return rule->std_off;
    int64_t y = year_of_day(floor_div(t + rule->std_off, DAY_SECONDS));
    int64_t start = rule_local(&rule->start, y) - rule->std_off;
    int64_t end = rule_local(&rule->end, y) - rule->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? rule->dst_off : rule->std_off;
}

static int32_t zone_offset(const tz_zone *zone, int64_t t)
{
    if (zone->ntrans == 0 || t < zone->trans[0])
        return zone->ntrans == 0 && zone->rule.valid ? rule_offset(&zone->rule, t)
                                                     : zone->first_off;
    size_t lo = 0, hi = zone->ntrans; /* trans[lo] <= t < trans[hi] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (zone->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    if (lo == zone->ntrans - 1 && zone->rule.valid)
        return rule_offset(&zone->rule, t);
    return zone->offs[lo];
}

/* --- POSIX TZ strings ("EST5EDT,M3.2.0,M11.1.0", "<+0330>-3:30") ------------------------ */

static bool parse_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        while (*s && *s != '>')
            s++;
        if (*s != '>')
            return false;
        *p = s + 1;
        return true;
    }
    while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
        s++;
    if (s - *p < 3)
        return false;
    *p = s;
    return true;
}

static bool parse_num(const char **p, int max, int *out)
{
    const char *s = *p;
    int v = 0;
    if (*s < '0' || *s > '9')
        return false;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (v > max)
            return false;
    }
    *p = s;
    *out = v;
    return true;
}

/* [+-]hh[:mm[:ss]] in seconds, hours up to 167 (RFC 8536 allows that much for rule times). */
static bool parse_hms(const char **p, int32_t *out)
{
    int sign = 1, h = 0, m = 0, sec = 0;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    if (!parse_num(p, 167, &h))
        return false;
    if (**p == ':') {
        (*p)++;
        if (!parse_num(p, 59, &m))
            return false;
        if (**p == ':') {
            (*p)++;
            if (!parse_num(p, 59, &sec))
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
}

static bool parse_date(const char **p, tz_date *date)
{
    date->time = 7200;
    if (**p == 'J') {
        (*p)++;
        date->kind = 'J';
        if (!parse_num(p, 365, &date->day) || date->day < 1)
            return false;
    } else if (**p == 'M') {
        (*p)++;
        date->kind = 'M';
        if (!parse_num(p, 12, &date->month) || date->month < 1 || *(*p)++ != '.' ||
            !parse_num(p, 5, &date->week) || date->week < 1 || *(*p)++ != '.' ||
            !parse_num(p, 6, &date->wday))
            return false;
    } else {
        date->kind = 'D';
        if (!parse_num(p, 365, &date->day))
            return false;
    }
    if (**p == '/') {
        (*p)++;
        if (!parse_hms(p, &date->time))
            return false;
    }
    return true;
}

static bool parse_rule(const char *s, tz_rule *rule)
{
    int32_t off;
    memset(rule, 0, sizeof *rule);
    if (!parse_name(&s) || !parse_hms(&s, &off) || off < -TZ_MAX_OFFSET || off > TZ_MAX_OFFSET)
        return false;
    rule->std_off = -off; /* POSIX counts west of Greenwich */
    if (*s) {
        rule->has_dst = true;
        if (!parse_name(&s))
            return false;
        rule->dst_off = rule->std_off + 3600;
        if (*s && *s != ',') {
            if (!parse_hms(&s, &off) || off < -TZ_MAX_OFFSET || off > TZ_MAX_OFFSET)
                return false;
            rule->dst_off = -off;
        }
        if (*s == ',') {
            s++;
            if (!parse_date(&s, &rule->start) || *s++ != ',' || !parse_date(&s, &rule->end))
                return false;
        } else {
            /* POSIX leaves the default to the implementation; this is the US rule. */
            const char *us = "M3.2.0,M11.1.0";
            if (!parse_date(&us, &rule->start) || *us++ != ',' || !parse_date(&us, &rule->end))
                return false;
        }
    }
    rule->valid = *s == '\0';
    return rule->valid;
}

/* --- TZif files -------------------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_header {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_header;

static bool read_header(const unsigned char *p, size_t len, tzif_header *h)
{
    if (len < 44 || memcmp(p, "TZif", 4))
        return false;
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return h->typecnt >= 1 && h->typecnt <= 256 && h->timecnt <= 100000 && h->leapcnt <= 100000 &&
           h->charcnt <= 100000 && h->isutcnt <= 256 && h->isstdcnt <= 256;
}

static size_t block_size(const tzif_header *h, size_t tsize)
{
    return h->timecnt * tsize + h->timecnt + h->typecnt * 6 + h->charcnt +
           h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static bool parse_tzif(const unsigned char *p, size_t len, tz_zone *zone)
{
    tzif_header h;
    if (!read_header(p, len, &h))
        return false;
    size_t tsize = 4;
    const unsigned char *data = p + 44;
    size_t size = block_size(&h, 4);
    if (size > len - 44)
        return false;
    const unsigned char *footer = NULL;
    if (p[4] >= '2') {
        /* Version 2+ repeats the data with 64-bit times, then a POSIX TZ string footer. */
        const unsigned char *p2 = data + size;
        size_t len2 = len - 44 - size;
        if (!read_header(p2, len2, &h))
            return false;
        tsize = 8;
        data = p2 + 44;
        size = block_size(&h, 8);
        if (size > len2 - 44)
            return false;
        footer = data + size;
    }

    const unsigned char *times = data;
    const unsigned char *idx = times + h.timecnt * tsize;
    const unsigned char *types = idx + h.timecnt;
    for (uint32_t i = 0; i < h.timecnt; i++) {
        if (idx[i] >= h.typecnt)
            return false;
    }
    for (uint32_t i = 0; i < h.typecnt; i++) {
        /* RFC 8536: a UT offset is within -25 and +26 hours (the range of every real zone) */
        int32_t utoff = (int32_t)be32(types + 6 * i);
        if (utoff < -89999 || utoff > 93599)
            return false;
    }
    zone->trans = omo_xcalloc(h.timecnt ? h.timecnt : 1, sizeof *zone->trans);
    zone->offs = omo_xcalloc(h.timecnt ? h.timecnt : 1, sizeof *zone->offs);
    zone->ntrans = h.timecnt;
    for (uint32_t i = 0; i < h.timecnt; i++) {
        zone->trans[i] = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        zone->offs[i] = (int32_t)be32(types + 6 * idx[i]);
        if (i > 0 && zone->trans[i] <= zone->trans[i - 1])
            return false;
    }
    zone->first_off = (int32_t)be32(types);

    if (footer && footer < p + len && *footer == '\n') {
        const unsigned char *end = memchr(footer + 1, '\n', (size_t)(p + len - footer - 1));
        if (end && end > footer + 1) {
            char tzstr[128];
            size_t n = (size_t)(end - footer - 1);
            if (n < sizeof tzstr) {
                memcpy(tzstr, footer + 1, n);
                tzstr[n] = '\0';
                if (!parse_rule(tzstr, &zone->rule))
                    memset(&zone->rule, 0, sizeof zone->rule);
            }
        }
    }
    return true;
}

static void zone_free(tz_zone *zone)
{
    if (!zone)
        return;
    free(zone->name);
    free(zone->trans);
    free(zone->offs);
    free(zone);
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || name[0] == '/' || strstr(name, ".."))
        return false;
    for (const char *s = name; *s; s++) {
        if ((unsigned char)*s < 0x20)
            return false;
    }
    return true;
}

static tz_zone *zone_load(const char *name)
{
    char path[512];
    unsigned char *buf = NULL;
    tz_zone *zone = NULL;
    int fd = -1;
    struct stat st;

    snprintf(path, sizeof path, "%s/%s", TZ_DIR, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 44 ||
        st.st_size > TZ_MAX_FILE)
        goto fail;
    size_t len = (size_t)st.st_size;
    buf = omo_xmalloc(len);
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0)
            goto fail;
        got += (size_t)r;
    }
    zone = omo_xcalloc(1, sizeof *zone);
    if (!parse_tzif(buf, len, zone))
        goto fail;
    zone->name = omo_xstrdup(name);
    close(fd);
    free(buf);
    return zone;

fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    zone_free(zone);
    return NULL;
}

int omo_tz_intern(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < nzones; i++) {
        if (!strcmp(zones[i]->name, name))
            return i;
    }
    if (nzones == TZ_MAX_ZONES)
        return -1;
    tz_zone *zone = NULL;
    if (!strcmp(name, "UTC")) {
        /* Valid whether or not the system has a zone database. */
        zone = omo_xcalloc(1, sizeof *zone);
        zone->name = omo_xstrdup(name);
    } else {
        if (!name_ok(name))
            return -1;
        zone = zone_load(name);
        if (!zone)
            return -1;
    }
    zones[nzones] = zone;
    return nzones++;
}

int64_t omo_tz_local_day(int tz, int64_t ms)
{
    int64_t t = floor_div(ms, 1000);
    if (tz >= 0 && tz < nzones)
        t += zone_offset(zones[tz], t);
    return floor_div(t, DAY_SECONDS);
}

bool omo_tz_parse_check(const void *buf, size_t len, const int64_t *ms, int64_t *days, size_t n)
{
    tz_zone zone = {0};
    bool ok = len >= 44 && len <= TZ_MAX_FILE && parse_tzif(buf, len, &zone);
    for (size_t i = 0; ok && i < n; i++) {
        int64_t t = floor_div(ms[i], 1000);
        days[i] = floor_div(t + zone_offset(&zone, t), DAY_SECONDS);
    }
    free(zone.trans);
    free(zone.offs);
    return ok;
}
