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

#endif
