/* TZif files (RFC 8536) as the zone database holds them: read or refused, and every instant
 * gets a local day within a day of its UTC day. */
#include "fuzz.h"
#include "tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t ms[] = {
        INT64_C(-62135596800000), INT64_C(-2208988800000), INT64_C(0),
        INT64_C(1795392000000),   INT64_C(4102444800000),  INT64_C(253402300799000),
    };
    int64_t days[sizeof ms / sizeof ms[0]];
    if (!omo_tz_parse_check(data, size, ms, days, sizeof ms / sizeof ms[0]))
        return 0;
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        int64_t utc_day = ms[i] / 86400000 - (ms[i] % 86400000 < 0);
        if (days[i] < utc_day - 2 || days[i] > utc_day + 2) {
            fprintf(stderr, "instant %lld: local day %lld, UTC day %lld\n", (long long)ms[i],
                    (long long)days[i], (long long)utc_day);
            abort();
        }
    }
    return 0;
}
