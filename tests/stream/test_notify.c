/* The service manager's notify protocol, heard on a datagram socket of the test's own (in the
 * abstract namespace, as NOTIFY_SOCKET=@NAME says), with `omo run` started as systemd would
 * start a Type=notify unit with WatchdogSec:
 * - a first run over an empty database: STATUS= lines, then READY=1 once, then WATCHDOG=1 at
 *   about half of WATCHDOG_USEC and never before READY=1; SIGTERM gives STOPPING=1 and exit 0;
 * - a second run rebuilds its view from the events the first applied: READY=1 comes after the
 *   rebuild (the log says it rebuilt them all), after a STATUS= line saying it rebuilds, and
 *   /readyz, polled all along, answers 503 until READY=1 and 200 from the moment it is heard. */
#include "service.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define WATCHDOG_USEC 400000 /* pings due every 0.2 s */

static omo_test_service *svc;
static bool passed;
static int port, sock = -1;
static char notify_env[128], watchdog_env[64];

static void teardown(void)
{
    if (sock >= 0)
        close(sock);
    omo_test_service_teardown(svc, passed);
}

/* Binds the abstract datagram socket NAME (NOTIFY_SOCKET=@NAME). */
static int bind_notify(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    cr_assert_lt(len + 1, sizeof sa.sun_path);
    memcpy(sa.sun_path + 1, name, len); /* sun_path[0] == 0: abstract */
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, alen), 0, "bind %s: %m", name);
    return fd;
}

/* One datagram within timeout_ms, NUL-terminated in buf; false when none came. */
static bool recv_msg(char *buf, size_t len, int timeout_ms)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    if (timeout_ms == 0)
        tv.tv_usec = 1; /* 0 would mean forever */
    setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recv(sock, buf, len - 1, 0);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* The status of GET path, or 0 when nobody answers. */
static int http_status(const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int status = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char req[256], resp[512];
        int n = snprintf(req, sizeof req,
                         "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
        ssize_t k = 0;
        if (send(fd, req, (size_t)n, MSG_NOSIGNAL) == n &&
            (k = recv(fd, resp, sizeof resp - 1, 0)) > 0) {
            resp[k] = '\0';
            if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
                status = 0;
        }
    }
    close(fd);
    return status;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* What one run said, in order. */
typedef struct heard {
    int statuses, readies, pings, pings_before_ready, readyz_503;
    bool status_rebuilding, stopping;
    double ready_at, first_ping, last_ping;
} heard;

static void take(heard *h, const char *msg)
{
    cr_log_info("notify: %s", msg);
    for (const char *line = msg; *line;) {
        if (!strncmp(line, "READY=1", 7)) {
            h->readies++;
            h->ready_at = omo_test_now();
        } else if (!strncmp(line, "WATCHDOG=1", 10)) {
            h->pings++;
            h->pings_before_ready += h->readies == 0;
            if (!h->first_ping)
                h->first_ping = omo_test_now();
            h->last_ping = omo_test_now();
        } else if (!strncmp(line, "STATUS=", 7)) {
            h->statuses++;
            h->status_rebuilding |= !!strstr(line, "rebuilding") && h->readies == 0;
        } else if (!strncmp(line, "STOPPING=1", 10)) {
            h->stopping = true;
        }
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : line + strlen(line);
    }
}

/* Starts the service and follows it until READY=1, polling /readyz all along: until READY=1 is
 * heard it must not be 200 (but for the instant between the flag and the datagram: a 200 is
 * then followed by READY=1 within 100 ms); once heard it must be 200 at once. */
static void start_until_ready(heard *h)
{
    memset(h, 0, sizeof *h);
    char msg[1024], err[2048];
    cr_assert(omo_test_service_start(svc, err, sizeof err), "%s", err);
    for (double until = omo_test_now() + 90; h->readies == 0;) {
        cr_assert(omo_test_now() < until, "no READY=1 within 90 s");
        cr_assert(omo_test_service_alive(svc), "the service exited before READY=1");
        while (h->readies == 0 && recv_msg(msg, sizeof msg, 0))
            take(h, msg);
        if (h->readies)
            break;
        int status = http_status("/readyz");
        if (status == 503)
            h->readyz_503++;
        if (status == 200) {
            bool heard_it = false;
            while (!heard_it && recv_msg(msg, sizeof msg, 100)) {
                take(h, msg);
                heard_it = h->readies > 0;
            }
            cr_assert(heard_it, "/readyz answered 200 and no READY=1 followed");
            break;
        }
        cr_assert(status == 0 || status == 503, "/readyz answered %d before READY=1", status);
        omo_test_sleep(0.001);
    }
    cr_assert_eq(http_status("/readyz"), 200, "READY=1 was sent while /readyz was not 200");
    cr_assert_eq(http_status("/healthz"), 200);
}

/* Listens for a second after READY=1: pings at about half of WATCHDOG_USEC; no second READY. */
static void listen_for_pings(heard *h)
{
    char msg[1024];
    for (double until = omo_test_now() + 1.2; omo_test_now() < until;)
        if (recv_msg(msg, sizeof msg, 50))
            take(h, msg);
    cr_assert_eq(h->readies, 1, "READY=1 %d times", h->readies);
    cr_assert_eq(h->pings_before_ready, 0, "WATCHDOG=1 before READY=1");
    cr_assert_geq(h->pings, 3, "%d WATCHDOG=1 in 1.2 s with WATCHDOG_USEC=%d", h->pings,
                  WATCHDOG_USEC);
    double mean = (h->last_ping - h->first_ping) / (h->pings - 1);
    cr_assert(mean > 0.15 && mean < 0.3, "WATCHDOG=1 every %.3f s, not every 0.2 s", mean);
}

/* SIGTERM: STOPPING=1, then a clean exit. */
static void stop(heard *h)
{
    cr_assert_eq(kill(svc->pid, SIGTERM), 0);
    char msg[1024];
    for (double until = omo_test_now() + 10; !h->stopping && omo_test_now() < until;)
        if (recv_msg(msg, sizeof msg, 100))
            take(h, msg);
    cr_assert(h->stopping, "no STOPPING=1 after SIGTERM");
    cr_assert_eq(omo_test_service_stop(svc, 0, 30000), 0, "the service did not drain cleanly");
}

Test(notify, ready_after_rebuild_and_readyz_agrees, .fini = teardown, .timeout = 300)
{
    omo_test_service_opts opts = {.name = "notify",
                                  .omo_binary = OMO_BINARY,
                                  .stores = 30,
                                  .skus = 60,
                                  .orders = 1000,
                                  .bad = 0,
                                  .seed = 11,
                                  .brokers = 1,
                                  .partitions = 2};
    svc = omo_test_service_setup(&opts);
    cr_assert_not_null(svc, "setup failed");
    port = free_port();
    FILE *conf = fopen(svc->config, "a");
    cr_assert_not_null(conf);
    fprintf(conf, "http:\n  listen: \"127.0.0.1:%d\"\n", port);
    cr_assert_eq(fclose(conf), 0);

    char name[64];
    snprintf(name, sizeof name, "omo-test-notify-%d", (int)getpid());
    sock = bind_notify(name);
    snprintf(notify_env, sizeof notify_env, "NOTIFY_SOCKET=@%s", name);
    snprintf(watchdog_env, sizeof watchdog_env, "WATCHDOG_USEC=%d", WATCHDOG_USEC);
    svc->env[0] = notify_env;
    svc->env[1] = watchdog_env;
    svc->env[2] = NULL;

    /* First run: nothing to rebuild; it applies the whole day. */
    char err[2048];
    heard first;
    start_until_ready(&first);
    cr_assert_geq(first.statuses, 1, "no STATUS= line before READY=1");
    listen_for_pings(&first);
    cr_assert(omo_test_service_produce(svc, svc->ninputs, err, sizeof err), "%s", err);
    cr_assert(omo_test_service_wait_applied(svc, (long long)svc->ninputs, 120000, err, sizeof err),
              "%s", err);
    stop(&first);

    /* Second run: READY=1 only once the whole day is replayed into the view. */
    heard second;
    start_until_ready(&second);
    char rebuilt[96];
    snprintf(rebuilt, sizeof rebuilt, "[service] rebuilt the view from %zu applied events",
             svc->ninputs);
    cr_assert(omo_test_service_log_has(svc, rebuilt), "READY=1 before '%s' was logged", rebuilt);
    cr_assert(second.status_rebuilding, "no STATUS= saying it rebuilds before READY=1");
    cr_assert_geq(second.readyz_503, 1, "/readyz never answered 503 while the view was rebuilt");
    cr_log_info("/readyz answered 503 %d times before READY=1", second.readyz_503);
    listen_for_pings(&second);
    stop(&second);
    passed = true;
}
