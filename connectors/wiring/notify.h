/* The service manager's notify protocol (sd_notify(3)), spoken by hand: one datagram per
 * message to the unix socket $NOTIFY_SOCKET (a leading `@` names the abstract namespace).
 * Without NOTIFY_SOCKET every call does nothing, so `omo run` behaves the same under systemd,
 * in a container or in a terminal. */
#ifndef OMO_NOTIFY_H
#define OMO_NOTIFY_H

#include <stdbool.h>

typedef struct omo_notify omo_notify;

/* Reads NOTIFY_SOCKET, and WATCHDOG_USEC with WATCHDOG_PID (the watchdog is ours when
 * WATCHDOG_PID is unset or names this process). Returns NULL when there is nobody to tell; every
 * function below accepts NULL. */
omo_notify *omo_notify_open(void);
void omo_notify_close(omo_notify *n);

/* Sends `fmt` (printf-style; newline-separated VAR=VALUE assignments) as one datagram. Returns
 * false when the datagram could not be sent (the manager went away: nothing else to do). */
bool omo_notify_send(omo_notify *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sends WATCHDOG=1 when half of WATCHDOG_USEC has passed since the last one (or READY=1);
 * call it from the loop whose liveness it vouches for. */
void omo_notify_watchdog(omo_notify *n);

/* True when the watchdog is enabled (for logs). */
bool omo_notify_watchdog_enabled(const omo_notify *n);

#endif
