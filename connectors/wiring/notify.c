/* sd_notify by hand: a few lines of datagram, no libsystemd. */
#include "notify.h"

#include "util.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct omo_notify {
    int fd;
    struct sockaddr_un addr;
    socklen_t addrlen;
    double watchdog_s; /* the ping interval: half of WATCHDOG_USEC; 0 = no watchdog */
    double last_ping;
};

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Half of WATCHDOG_USEC when the watchdog is meant for this process, else 0. */
static double watchdog_interval(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (!usec || !*usec)
        return 0;
    char *end;
    if (pid && *pid && (strtol(pid, &end, 10) != (long)getpid() || *end))
        return 0;
    unsigned long long us = strtoull(usec, &end, 10);
    if (*end || us == 0)
        return 0;
    return (double)us / 2e6;
}

omo_notify *omo_notify_open(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return NULL;
    size_t len = strlen(path);
    omo_notify *n = omo_xcalloc(1, sizeof *n);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof n->addr.sun_path) {
        fprintf(stderr, "[notify] NOTIFY_SOCKET '%s' is not a socket path: ignored\n", path);
        free(n);
        return NULL;
    }
    n->addr.sun_family = AF_UNIX;
    memcpy(n->addr.sun_path, path, len);
    if (path[0] == '@')
        n->addr.sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL, unpadded */
    n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (n->fd < 0) {
        fprintf(stderr, "[notify] socket: %m\n");
        free(n);
        return NULL;
    }
    n->watchdog_s = watchdog_interval();
    n->last_ping = mono_s();
    return n;
}

void omo_notify_close(omo_notify *n)
{
    if (!n)
        return;
    close(n->fd);
    free(n);
}

bool omo_notify_send(omo_notify *n, const char *fmt, ...)
{
    if (!n)
        return true;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (len < 0)
        return false;
    if ((size_t)len >= sizeof msg)
        len = (int)sizeof msg - 1;
    if (sendto(n->fd, msg, (size_t)len, MSG_NOSIGNAL, (struct sockaddr *)&n->addr, n->addrlen) !=
        len)
        return false;
    if (strstr(msg, "READY=1") || strstr(msg, "WATCHDOG=1"))
        n->last_ping = mono_s();
    return true;
}

void omo_notify_watchdog(omo_notify *n)
{
    if (n && n->watchdog_s > 0 && mono_s() - n->last_ping >= n->watchdog_s)
        (void)omo_notify_send(n, "WATCHDOG=1");
}

bool omo_notify_watchdog_enabled(const omo_notify *n)
{
    return n && n->watchdog_s > 0;
}
