/* The composition root: builds the connectors that omo.yaml names and hands them to the core.
 * The core never sees a connector's header; this is the one place that knows them all. */
#ifndef OMO_WIRING_H
#define OMO_WIRING_H

#include "stream.h"

#include <signal.h>

/* Flags set by signal handlers; the stream reads them between batches. */
extern volatile sig_atomic_t omo_stop_requested, omo_reload_requested;
/* SIGTERM and SIGINT ask for a drain, SIGHUP for a rules reload. */
void omo_install_signals(void);

typedef struct omo_running {
    omo_svcconf *conf;
    omo_stream *stream;
    struct omo_http_server *http;
    struct omo_notify *notify; /* the service manager, when NOTIFY_SOCKET names one */
} omo_running;

/* Loads conf_path, opens PostgreSQL and Kafka, starts HTTP, rebuilds the view, then marks the
 * service ready (/readyz, and READY=1 to $NOTIFY_SOCKET when set). Returns 0, or
 * the exit code (2 invalid configuration, 1 outside system unreachable) after printing why. */
int omo_running_open(const char *conf_path, const omo_stream_opts *opts, omo_running *out);
void omo_running_close(omo_running *r);

#endif
