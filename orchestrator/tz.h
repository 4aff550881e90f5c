/* Time zones: node-local calendar days for daily capacity. */
#ifndef OMO_TZ_H
#define OMO_TZ_H

#include "util.h"

/* Returns a stable index for the IANA zone name (e.g. "America/New_York", "UTC"), or -1
 * when the system's zone database does not know it. Not thread-safe: call while loading
 * configuration. */
int omo_tz_intern(const char *name);

/* The local calendar day (days since 1970-01-01 in that zone) of the instant ms. */
int64_t omo_tz_local_day(int tz, int64_t ms);

/* Reads len bytes as a TZif file, as omo_tz_intern reads one from the zone database, and gives
 * the local day of each of the n instants ms[i] in days[i]. False when the bytes are not a TZif
 * file omo accepts. For tests and fuzzing: nothing is interned. */
bool omo_tz_parse_check(const void *buf, size_t len, const int64_t *ms, int64_t *days, size_t n);

#endif
