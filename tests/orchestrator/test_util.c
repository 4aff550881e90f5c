/* Exact numbers and times, and the string map. */
#include "util.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *fixed(int64_t v, int64_t scale, int decimals)
{
    static char buf[48];
    return omo_fixed_format(v, scale, decimals, buf, sizeof buf);
}

Test(util, fixed_point_parses_exactly_and_rounds_half_away)
{
    int64_t v;
    cr_assert(omo_fixed_parse("12.34", OMO_MICRO, &v));
    cr_assert_eq(v, 12340000);
    cr_assert(omo_fixed_parse("0.1234565", OMO_MICRO, &v));
    cr_assert_eq(v, 123457, "rounded half away from zero");
    cr_assert(omo_fixed_parse("-0.5", OMO_MILLI, &v));
    cr_assert_eq(v, -500);
    cr_assert(omo_fixed_parse(".25", OMO_MILLI, &v));
    cr_assert_eq(v, 250);
    cr_assert_not(omo_fixed_parse("12.3.4", OMO_MICRO, &v));
    cr_assert_not(omo_fixed_parse("abc", OMO_MICRO, &v));
    cr_assert_not(omo_fixed_parse("", OMO_MICRO, &v));
}

Test(util, fixed_point_formats_without_trailing_zeros)
{
    cr_assert_str_eq(fixed(12340000, OMO_MICRO, 6), "12.34");
    cr_assert_str_eq(fixed(26000, OMO_MILLI, 3), "26");
    cr_assert_str_eq(fixed(-500, OMO_MILLI, 3), "-0.5");
    cr_assert_str_eq(fixed(0, OMO_MICRO, 6), "0");
    cr_assert_str_eq(fixed(5, OMO_MICRO, 6), "0.000005");
    cr_assert_str_eq(fixed(1234567891LL, 1000000000LL, 6), "1.234568");
    cr_assert_str_eq(fixed(1234567891LL, 1000000000LL, 2), "1.23");
    cr_assert_str_eq(fixed(-4, OMO_MICRO, 5), "0", "rounds to zero without a sign");
    cr_assert_str_eq(fixed(INT64_MAX, OMO_MICRO, 6), "9223372036854.775807");
}

Test(util, times_parse_and_format_round_trip)
{
    int64_t ms;
    char buf[40];
    cr_assert(omo_time_parse("2026-11-23T10:15:00Z", &ms));
    cr_assert_eq(ms, 1795428900000LL);
    cr_assert_str_eq(omo_time_format(ms, buf, sizeof buf), "2026-11-23T10:15:00Z");
    cr_assert(omo_time_parse("2026-11-23T10:15:00.25+01:00", &ms));
    cr_assert_str_eq(omo_time_format(ms, buf, sizeof buf), "2026-11-23T09:15:00.250Z");
    cr_assert_str_eq(omo_time_format(0, buf, sizeof buf), "1970-01-01T00:00:00Z");
    cr_assert_str_eq(omo_time_format(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
    cr_assert(omo_time_parse("2024-02-29T23:59:59Z", &ms));
    cr_assert_str_eq(omo_time_format(ms, buf, sizeof buf), "2024-02-29T23:59:59Z");
    cr_assert_not(omo_time_parse("2025-02-29T00:00:00Z", &ms), "not a leap year");
    cr_assert_not(omo_time_parse("2026-11-23 10:15:00", &ms), "no zone");
    /* Every day of four centuries formats as gmtime would. */
    for (int64_t day = -40000; day < 110000; day += 7) {
        time_t t = (time_t)(day * 86400 + 3723);
        struct tm tm;
        gmtime_r(&t, &tm);
        char want[40];
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
        cr_assert_str_eq(omo_time_format((int64_t)t * 1000, buf, sizeof buf), want);
    }
}

Test(util, string_map_adds_once_and_grows)
{
    omo_strmap m = {0};
    bool added;
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "event-%d", i);
        cr_assert_eq(omo_strmap_add(&m, key, i, &added), i);
        cr_assert(added);
    }
    cr_assert_eq(omo_strmap_add(&m, "event-42", 7, &added), 42, "the first value stays");
    cr_assert_not(added);
    cr_assert(omo_strmap_put(&m, "event-42", 7));
    cr_assert_eq(omo_strmap_get(&m, "event-42"), 7);
    cr_assert_eq(omo_strmap_get(&m, "event-5000"), -1);
    cr_assert_eq(m.count, 5000);
    omo_strmap_free(&m);
}

Test(util, great_circle_distance)
{
    /* New York to Los Angeles on a sphere of 6371 km. */
    double km = omo_distance_km(40.7128, -74.0060, 34.0522, -118.2437);
    cr_assert(km > 3935.0 && km < 3937.0, "%f", km);
    cr_assert_eq(omo_distance_km(10, 20, 10, 20), 0.0);
}
