/* Offline replay: feeds the events of a JSON-lines file, in file order, to one engine. */
#ifndef OMO_REPLAY_H
#define OMO_REPLAY_H

#include "engine.h"

#include <stdint.h>

typedef enum omo_replay_result {
    OMO_REPLAY_OK = 0,
    OMO_REPLAY_CANNOT_OPEN, /* errno says why */
    OMO_REPLAY_READ_ERROR   /* the file could not be read to its end; errno says why */
} omo_replay_result;

typedef struct omo_replay_stats {
    uint64_t lines;   /* non-empty lines read */
    uint64_t bad;     /* lines that did not parse as a valid event */
    uint64_t invalid; /* parsed events the engine refused */
} omo_replay_stats;

/* Called for every line that is skipped: one that does not parse (a bad event), or an event
 * the engine refuses. lineno is 1-based; err says why. */
typedef void (*omo_bad_line_fn)(void *ctx, const char *path, uint64_t lineno,
                                const omo_event_error *err);

/* Applies every event of the file at path to eng, in file order, skipping bad lines after
 * reporting each to on_bad (may be NULL). Empty lines are ignored; a trailing '\r' is
 * dropped. stats (may be NULL) is filled even on failure, with what was read so far. */
OMO_MUST_CHECK omo_replay_result omo_replay_file(const char *path, const omo_network *net,
                                                 omo_engine *eng, omo_bad_line_fn on_bad, void *ctx,
                                                 omo_replay_stats *stats);

/* Prints a skipped line as `PATH:LINE: error: MESSAGE [reason]` on stderr; ctx is unused. */
void omo_replay_report_stderr(void *ctx, const char *path, uint64_t lineno,
                              const omo_event_error *err);

#endif
