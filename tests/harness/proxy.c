#include "proxy.h"

#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { PROXY_BUF = 64 * 1024 };

/* One direction of a connection: bytes read from `from`, not yet written to `to`. */
typedef struct pipe_dir {
    int from, to;
    char buf[PROXY_BUF];
    size_t len, off;
} pipe_dir;

typedef struct proxy_conn {
    pipe_dir dir[2]; /* client to server, server to client */
    bool closed;
} proxy_conn;

struct omo_test_proxy {
    int listen_fd, port;
    struct sockaddr_in target;
    pthread_t thread;
    pthread_mutex_t mu; /* held while bytes move; freeze takes it to wait for a pass to end */
    bool frozen, stop;
    proxy_conn **conns;
    size_t nconns, capconns, accepted;
};

static void set_nonblocking(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void conn_close(proxy_conn *c)
{
    if (c->closed)
        return;
    close(c->dir[0].from);
    close(c->dir[0].to);
    c->closed = true;
}

static void accept_one(omo_test_proxy *p)
{
    int client = accept(p->listen_fd, NULL, NULL);
    if (client < 0)
        return;
    int server = socket(AF_INET, SOCK_STREAM, 0);
    if (server < 0 || connect(server, (struct sockaddr *)&p->target, sizeof p->target) != 0) {
        close(client);
        if (server >= 0)
            close(server);
        return;
    }
    set_nonblocking(client);
    set_nonblocking(server);
    proxy_conn *c = omo_xcalloc(1, sizeof *c);
    c->dir[0].from = client, c->dir[0].to = server;
    c->dir[1].from = server, c->dir[1].to = client;
    omo_grow((void **)&p->conns, &p->capconns, p->nconns + 1, sizeof *p->conns);
    p->conns[p->nconns++] = c;
    p->accepted++;
}

/* Moves what it can in one direction; false when the connection ended. */
static bool pump(pipe_dir *d, short revents_from, short revents_to)
{
    if (d->len == 0 && (revents_from & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = read(d->from, d->buf, sizeof d->buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return false;
        if (n > 0)
            d->len = (size_t)n, d->off = 0;
    }
    (void)revents_to; /* writes are tried whenever bytes wait: a full socket says EAGAIN */
    if (d->len > 0) {
        ssize_t n = send(d->to, d->buf + d->off, d->len, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return false;
        if (n > 0)
            d->off += (size_t)n, d->len -= (size_t)n;
    }
    return true;
}

static void *proxy_main(void *arg)
{
    omo_test_proxy *p = arg;
    struct pollfd *fds = NULL;
    size_t capfds = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        if (p->frozen) {
            pthread_mutex_unlock(&p->mu);
            usleep(10000);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        /* fds: the listener, then two per connection (its client and server sockets). */
        omo_grow((void **)&fds, &capfds, 1 + 2 * p->nconns, sizeof *fds);
        fds[0] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
        for (size_t i = 0; i < p->nconns; i++) {
            proxy_conn *c = p->conns[i];
            for (int d = 0; d < 2; d++) {
                /* a socket is read when its direction's buffer is empty, written when the
                 * other direction has bytes for it */
                short ev = 0;
                if (!c->closed && c->dir[d].len == 0)
                    ev |= POLLIN;
                if (!c->closed && c->dir[1 - d].len > 0)
                    ev |= POLLOUT;
                fds[1 + 2 * i + d] =
                    (struct pollfd){.fd = c->closed ? -1 : c->dir[d].from, .events = ev};
            }
        }
        size_t nfds = 1 + 2 * p->nconns;
        pthread_mutex_unlock(&p->mu);
        int r = poll(fds, (nfds_t)nfds, 20);
        pthread_mutex_lock(&p->mu);
        if (r <= 0 || p->frozen || p->stop)
            continue;
        if (fds[0].revents & POLLIN)
            accept_one(p);
        for (size_t i = 0; i < p->nconns && 1 + 2 * i + 1 < nfds; i++) {
            proxy_conn *c = p->conns[i];
            if (c->closed)
                continue;
            short rc = fds[1 + 2 * i].revents, rs = fds[1 + 2 * i + 1].revents;
            if (!pump(&c->dir[0], rc, rs) || !pump(&c->dir[1], rs, rc))
                conn_close(c);
        }
    }
    pthread_mutex_unlock(&p->mu);
    free(fds);
    return NULL;
}

omo_test_proxy *omo_test_proxy_start(const char *host, int port, char *err, size_t errlen)
{
    omo_test_proxy *p = omo_xcalloc(1, sizeof *p);
    p->target.sin_family = AF_INET;
    p->target.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &p->target.sin_addr) != 1) {
        snprintf(err, errlen, "proxy: bad address %s", host);
        free(p);
        return NULL;
    }
    p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(p->listen_fd, 64) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&addr, &len) != 0) {
        snprintf(err, errlen, "proxy: listen: %s", strerror(errno));
        if (p->listen_fd >= 0)
            close(p->listen_fd);
        free(p);
        return NULL;
    }
    set_nonblocking(p->listen_fd);
    p->port = ntohs(addr.sin_port);
    pthread_mutex_init(&p->mu, NULL);
    if (pthread_create(&p->thread, NULL, proxy_main, p) != 0) {
        snprintf(err, errlen, "proxy: thread: %s", strerror(errno));
        close(p->listen_fd);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    return p;
}

int omo_test_proxy_port(const omo_test_proxy *proxy)
{
    return proxy->port;
}

void omo_test_proxy_freeze(omo_test_proxy *proxy, bool frozen)
{
    pthread_mutex_lock(&proxy->mu); /* the pass in progress ends first */
    proxy->frozen = frozen;
    pthread_mutex_unlock(&proxy->mu);
}

size_t omo_test_proxy_connections(const omo_test_proxy *proxy)
{
    pthread_mutex_lock((pthread_mutex_t *)&proxy->mu);
    size_t n = proxy->accepted;
    pthread_mutex_unlock((pthread_mutex_t *)&proxy->mu);
    return n;
}

void omo_test_proxy_stop(omo_test_proxy *proxy)
{
    if (!proxy)
        return;
    pthread_mutex_lock(&proxy->mu);
    proxy->stop = true;
    pthread_mutex_unlock(&proxy->mu);
    pthread_join(proxy->thread, NULL);
    for (size_t i = 0; i < proxy->nconns; i++) {
        conn_close(proxy->conns[i]);
        free(proxy->conns[i]);
    }
    free(proxy->conns);
    close(proxy->listen_fd);
    pthread_mutex_destroy(&proxy->mu);
    free(proxy);
}
