/* Abusive HTTP clients against the running service: while `omo run` decides a generated day,
 * hundreds of connections from three other addresses are held open, half of them idle and half
 * sending a request head a byte a second ("slowloris"; those cut by the service are opened
 * again). Health must answer within a second throughout, the day must be decided whole and
 * exactly once, and the service's threads must stay as many as before the crowd came. */
#include "service.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { CROWD = 300 };
#define TOKEN "abuse-test-ops-token"

static omo_test_service *svc;
static bool passed;
static int port;
static int crowd[CROWD];

static void teardown(void)
{
    for (int i = 0; i < CROWD; i++)
        if (crowd[i] > 0)
            close(crowd[i]);
    omo_test_service_teardown(svc, passed);
    svc = NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* A non-blocking connection from 127.0.0.SRC, or -1. */
static int connect_from(int src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in me = {.sin_family = AF_INET};
    me.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&me, sizeof me) ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* GET /healthz on a connection of its own: the status (0 for none) and the time it took. */
static int healthz(double *took)
{
    double t0 = omo_test_now();
    int status = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[512];
    ssize_t n;
    if (!connect(fd, (struct sockaddr *)&sa, sizeof sa) &&
        send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1) &&
        (n = recv(fd, buf, sizeof buf - 1, 0)) > 0) {
        buf[n] = '\0';
        if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
            status = 0;
    }
    close(fd);
    *took = omo_test_now() - t0;
    return status;
}

static int threads_of(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "%s: %s", path, strerror(errno));
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Keeps the crowd up: a closed connection is opened again; the slow half gets one byte more of
 * a head that never ends. Returns how many were found closed. */
static int tend_crowd(void)
{
    static const char head[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    static size_t sent[CROWD];
    int reopened = 0;
    for (int i = 0; i < CROWD; i++) {
        char c;
        if (crowd[i] > 0 && recv(crowd[i], &c, 1, MSG_DONTWAIT) == 0) {
            close(crowd[i]);
            crowd[i] = -1;
        }
        if (crowd[i] <= 0) {
            crowd[i] = connect_from(2 + i % 3);
            sent[i] = 0;
            reopened++;
            continue;
        }
        if (i % 2) {
            char b = sent[i] < sizeof head - 1 ? head[sent[i]] : 'a';
            if (send(crowd[i], &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
                sent[i]++;
        }
    }
    return reopened;
}

Test(stream, abusive_clients_while_a_day_streams, .timeout = 600, .fini = teardown)
{
    double t0 = omo_test_now();
    omo_test_service_opts opts = {.name = "abuse",
                                  .omo_binary = OMO_BINARY,
                                  .stores = 30,
                                  .skus = 80,
                                  .orders = 1500,
                                  .bad = 5,
                                  .seed = 11,
                                  .brokers = 3,
                                  .partitions = 4};
    svc = omo_test_service_setup(&opts);
    cr_assert_not_null(svc, "setup failed");
    port = free_port();
    FILE *conf = fopen(svc->config, "a");
    cr_assert_not_null(conf);
    fprintf(conf, "http:\n  listen: \"127.0.0.1:%d\"\n  tokens:\n    - {token: %s, role: ops}\n",
            port, TOKEN);
    cr_assert_eq(fclose(conf), 0);

    char err[2048];
    cr_assert(omo_test_service_start(svc, err, sizeof err), "%s", err);
    double took;
    for (double until = omo_test_now() + 60; healthz(&took) != 200; omo_test_sleep(0.05)) {
        cr_assert(omo_test_service_alive(svc), "the service exited while starting");
        cr_assert(omo_test_now() < until, "no HTTP within 60 s");
    }
    /* The opening stock first: the service's clients are all connected when it is applied. */
    cr_assert(omo_test_service_produce(svc, svc->nopening, err, sizeof err), "%s", err);
    cr_assert(omo_test_service_wait_applied(svc, (long long)svc->nopening, 120000, err, sizeof err),
              "%s", err);
    int before = threads_of(svc->pid);

    for (int i = 0; i < CROWD; i++)
        crowd[i] = -1;
    tend_crowd();
    /* about 25 s of stream: longer than the 10 s a request head may take */
    cr_assert(omo_test_service_feed(svc, svc->ninputs, 20, 200));
    double worst = 0;
    int checks = 0, most_threads = 0, reopened = 0, answered = 0;
    long long applied = 0;
    for (double next_tend = 0;
         (applied = omo_test_service_sql_count(svc, "SELECT count(*) FROM applied_events")) <
         (long long)svc->ninputs;
         omo_test_sleep(0.2)) {
        cr_assert(omo_test_service_alive(svc), "the service died under the crowd");
        cr_assert(omo_test_now() - t0 < 400, "the day stalled at %lld of %zu events", applied,
                  svc->ninputs);
        if (omo_test_now() >= next_tend) {
            reopened += tend_crowd();
            next_tend = omo_test_now() + 1.0;
        }
        int status = healthz(&took);
        checks++;
        answered += status == 200;
        cr_assert_eq(status, 200, "healthz answered %d after %.3f s (check %d)", status, took,
                     checks);
        cr_assert_lt(took, 1.0, "healthz took %.3f s (check %d)", took, checks);
        worst = took > worst ? took : worst;
        int n = threads_of(svc->pid);
        most_threads = n > most_threads ? n : most_threads;
    }
    cr_assert(omo_test_service_feed_wait(svc), "feeding the inputs failed");
    int open = 0;
    for (int i = 0; i < CROWD; i++)
        open += crowd[i] > 0;
    fprintf(stderr,
            "[abuse] %d connections held (%d opened again after being cut), %d health checks, "
            "slowest %.1f ms; threads %d before the crowd, at most %d with it; %zu events in "
            "%.1f s\n",
            open, reopened, checks, worst * 1000, before, most_threads, svc->ninputs,
            omo_test_now() - t0);
    cr_assert_gt(checks, 5, "the day went by before the crowd was tested");
    cr_assert_gt(reopened, 0, "no slow connection was cut");
    /* librdkafka may add a thread for a broker it connects to late: a little room, not one
     * thread per connection */
    cr_assert_leq(most_threads, before + 2, "threads grew from %d to %d with the crowd", before,
                  most_threads);

    for (int i = 0; i < CROWD; i++) {
        if (crowd[i] > 0)
            close(crowd[i]);
        crowd[i] = -1;
    }
    int rc = omo_test_service_stop(svc, SIGTERM, 60000);
    cr_assert_eq(rc, 0, "the drain ended with exit status %d", rc);
    omo_test_check check;
    cr_assert(omo_test_service_check(svc, &check, err, sizeof err), "%s", err);
    cr_assert_gt(check.orders, 1000);
    passed = true;
}
