/* Time zones: which names are accepted, and local days checked against the C library. */
#include "tz.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOUR_MS (3600 * 1000LL)

static int64_t day_of(int y, int m, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
    return (int64_t)timegm(&tm) / 86400;
}

static int64_t utc_ms(int y, int m, int d, int hh, int mm, int ss)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = m - 1,
                    .tm_mday = d,
                    .tm_hour = hh,
                    .tm_min = mm,
                    .tm_sec = ss};
    return (int64_t)timegm(&tm) * 1000;
}

Test(tz, names)
{
    int utc = omo_tz_intern("UTC");
    cr_assert_geq(utc, 0);
    cr_assert_eq(omo_tz_intern("UTC"), utc);
    int ny = omo_tz_intern("America/New_York");
    cr_assert_geq(ny, 0);
    cr_assert_neq(ny, utc);
    cr_assert_eq(omo_tz_intern("America/New_York"), ny);
    cr_assert_geq(omo_tz_intern("Europe/London"), 0);

    cr_assert_eq(omo_tz_intern("America/Gotham"), -1);
    cr_assert_eq(omo_tz_intern(""), -1);
    cr_assert_eq(omo_tz_intern("America"), -1);         /* a directory */
    cr_assert_eq(omo_tz_intern("zone.tab"), -1);        /* a file, but not TZif */
    cr_assert_eq(omo_tz_intern("/etc/localtime"), -1);  /* absolute */
    cr_assert_eq(omo_tz_intern("../zoneinfo/UTC"), -1); /* escapes */
    cr_assert_eq(omo_tz_intern("America/../Etc/UTC"), -1);
    cr_assert_eq(omo_tz_intern(NULL), -1);
}

Test(tz, utc_days_and_negative_instants)
{
    int utc = omo_tz_intern("UTC");
    cr_assert_eq(omo_tz_local_day(utc, 0), 0);
    cr_assert_eq(omo_tz_local_day(utc, 86400 * 1000LL - 1), 0);
    cr_assert_eq(omo_tz_local_day(utc, 86400 * 1000LL), 1);
    cr_assert_eq(omo_tz_local_day(utc, -1), -1);
    cr_assert_eq(omo_tz_local_day(utc, utc_ms(2026, 11, 23, 10, 15, 0)), day_of(2026, 11, 23));
}

Test(tz, new_york_across_daylight_saving)
{
    int ny = omo_tz_intern("America/New_York");
    cr_assert_geq(ny, 0);
    /* 03:00 UTC on Nov 23 is still Nov 22 in New York (EST, UTC-5). */
    cr_assert_eq(omo_tz_local_day(ny, utc_ms(2026, 11, 23, 3, 0, 0)), day_of(2026, 11, 22));
    cr_assert_eq(omo_tz_local_day(ny, utc_ms(2026, 11, 23, 4, 59, 59)), day_of(2026, 11, 22));
    cr_assert_eq(omo_tz_local_day(ny, utc_ms(2026, 11, 23, 5, 0, 0)), day_of(2026, 11, 23));
    /* In July (EDT, UTC-4) the day starts an hour earlier in UTC. */
    cr_assert_eq(omo_tz_local_day(ny, utc_ms(2026, 7, 1, 3, 59, 59)), day_of(2026, 6, 30));
    cr_assert_eq(omo_tz_local_day(ny, utc_ms(2026, 7, 1, 4, 0, 0)), day_of(2026, 7, 1));
    /* Mid-March, just after the switch on Sunday March 8, 2026. */
    cr_assert_eq(omo_tz_local_day(ny, utc_ms(2026, 3, 9, 3, 59, 59)), day_of(2026, 3, 8));
    cr_assert_eq(omo_tz_local_day(ny, utc_ms(2026, 3, 9, 4, 0, 0)), day_of(2026, 3, 9));
    /* Long after the last transition in the file, the footer's rule applies. */
    cr_assert_eq(omo_tz_local_day(ny, utc_ms(2091, 7, 1, 3, 59, 59)), day_of(2091, 6, 30));
    cr_assert_eq(omo_tz_local_day(ny, utc_ms(2091, 12, 1, 4, 59, 59)), day_of(2091, 11, 30));
    cr_assert_eq(omo_tz_local_day(ny, utc_ms(2091, 12, 1, 5, 0, 0)), day_of(2091, 12, 1));
}

Test(tz, half_hour_zones)
{
    int kolkata = omo_tz_intern("Asia/Kolkata");
    cr_assert_geq(kolkata, 0);
    cr_assert_eq(omo_tz_local_day(kolkata, utc_ms(2026, 1, 1, 18, 29, 59)), day_of(2026, 1, 1));
    cr_assert_eq(omo_tz_local_day(kolkata, utc_ms(2026, 1, 1, 18, 30, 0)), day_of(2026, 1, 2));
}

/* The C library's answer, for the zone TZ names: local day of t. */
static int64_t libc_day(time_t t)
{
    struct tm tm;
    cr_assert_not_null(localtime_r(&t, &tm));
    int64_t local = (int64_t)t + tm.tm_gmtoff;
    return local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
}

Test(tz, agrees_with_the_c_library)
{
    const char *names[] = {"America/New_York",    "Europe/London",     "Europe/Dublin",
                           "Australia/Lord_Howe", "Australia/Sydney",  "Pacific/Chatham",
                           "America/Sao_Paulo",   "Africa/Casablanca", "Antarctica/Troll",
                           "Asia/Kathmandu",      "America/St_Johns",  "Pacific/Apia",
                           "Etc/GMT+5",           "Asia/Tokyo",        "America/Santiago"};
    char *saved = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    uint64_t seed = 88172645463325252ULL;
    size_t checked = 0;
    for (size_t z = 0; z < sizeof names / sizeof *names; z++) {
        int tz = omo_tz_intern(names[z]);
        cr_assert_geq(tz, 0, "%s", names[z]);
        char env[128];
        snprintf(env, sizeof env, ":%s", names[z]);
        setenv("TZ", env, 1);
        tzset();
        /* Random instants from 1970 to 2100, and every quarter hour around each transition
         * hour of 2025-2027 and 2095, where mistakes would show. */
        for (int i = 0; i < 20000; i++) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            int64_t t = (int64_t)(seed % 4102444800ULL);
            int64_t ms = t * 1000 + (int64_t)(seed % 1000);
            cr_assert_eq(omo_tz_local_day(tz, ms), libc_day((time_t)t), "%s at %lld", names[z],
                         (long long)t);
            checked++;
        }
        const int years[] = {2025, 2026, 2027, 2095};
        for (size_t y = 0; y < 4; y++) {
            int64_t start = utc_ms(years[y], 1, 1, 0, 0, 0) / 1000;
            int64_t end = utc_ms(years[y] + 1, 1, 1, 0, 0, 0) / 1000;
            for (int64_t t = start; t < end; t += 900) {
                cr_assert_eq(omo_tz_local_day(tz, t * 1000), libc_day((time_t)t), "%s at %lld",
                             names[z], (long long)t);
                cr_assert_eq(omo_tz_local_day(tz, t * 1000 - 1), libc_day((time_t)(t - 1)),
                             "%s at %lld - 1ms", names[z], (long long)t);
                checked++;
            }
        }
    }
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
    cr_assert_gt(checked, 1000000);
}

Test(tz, lookups_are_fast)
{
    int ny = omo_tz_intern("America/New_York");
    cr_assert_geq(ny, 0);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int64_t base = utc_ms(2026, 11, 23, 0, 0, 0), sum = 0;
    for (int i = 0; i < 1000000; i++)
        sum += omo_tz_local_day(ny, base + (int64_t)i * 997);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    cr_assert_gt(sum, 0);
    /* The hot path needs ~100k lookups a second; this asks for ten times that even under
     * the sanitizers. */
    cr_assert_lt(secs, 1.0, "1M lookups took %.3f s", secs);
}
