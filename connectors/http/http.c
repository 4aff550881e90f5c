/* HTTP on libmicrohttpd: a pool of threads over all connections, each request collected whole
 * (line, headers, body) and answered by the core's handler in one call; a janitor thread closes
 * connections that take too long to send a request. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A chunked upload that keeps going past the limit is read and dropped up to this much, so the
 * client still gets its 413; beyond it the connection is cut. */
#define DISCARD_MAX (16u * OMO_HTTP_MAX_BODY)

/* One TCP connection, from accept to close: what the janitor needs to cut it. */
typedef struct http_conn {
    int fd;
    int64_t deadline_ms; /* 0: none (a handler is answering) */
    bool cut;
    struct http_conn *prev, *next;
} http_conn;

struct omo_http_server {
    struct MHD_Daemon *daemon;
    int head_ms, body_ms;
    /* every open connection, for the janitor; the lock guards the list and the deadlines */
    pthread_mutex_t conns_lock;
    http_conn *conns;
    pthread_t janitor;
    bool janitor_started;
    atomic_bool stopping;
    size_t cut_since_log;
    int64_t last_cut_log_ms;
    omo_http_handler handler;
    void *ctx;
    int port;
    /* requests whose request line has arrived and whose answer is not yet sent */
    atomic_int active;
    pthread_mutex_t log_lock;
    char last_log[512]; /* libmicrohttpd's last complaint, for start's error */
};

/* One request, from its request line to its completion. */
typedef struct http_req {
    char *uri; /* as sent, still percent-encoded: the query must reach the core raw */
    char *body;
    size_t len, cap;
    size_t discarded;
    bool started, too_big;
} http_req;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static http_conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* Sets when the connection must have sent what it is sending now; 0 for no limit. */
static void conn_deadline(omo_http_server *srv, struct MHD_Connection *conn, int ms)
{
    http_conn *c = conn_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&srv->conns_lock);
    c->deadline_ms = ms ? mono_ms() + ms : 0;
    pthread_mutex_unlock(&srv->conns_lock);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    omo_http_server *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        http_conn *c = omo_xcalloc(1, sizeof *c);
        c->fd = info ? info->connect_fd : -1;
        c->deadline_ms = mono_ms() + srv->head_ms;
        pthread_mutex_lock(&srv->conns_lock);
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        pthread_mutex_unlock(&srv->conns_lock);
        *socket_context = c;
        return;
    }
    /* MHD_CONNECTION_NOTIFY_CLOSED: libmicrohttpd closes the socket only after this returns, so
     * the janitor never shuts down a descriptor that was reused. */
    http_conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&srv->conns_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&srv->conns_lock);
    *socket_context = NULL;
    free(c);
}

/* Closes the connections past their deadline (slow clients: "slowloris"). shutdown() rather
 * than close(): libmicrohttpd sees the end of the stream and cleans up as for any client that
 * went away. */
static void *janitor_main(void *arg)
{
    omo_http_server *srv = arg;
    struct timespec tick = {0, 100 * 1000 * 1000};
    while (!atomic_load(&srv->stopping)) {
        nanosleep(&tick, NULL);
        int64_t now = mono_ms();
        size_t cut = 0;
        pthread_mutex_lock(&srv->conns_lock);
        for (http_conn *c = srv->conns; c; c = c->next) {
            if (!c->cut && c->deadline_ms && now > c->deadline_ms && c->fd >= 0) {
                (void)shutdown(c->fd, SHUT_RDWR);
                c->cut = true;
                cut++;
            }
        }
        pthread_mutex_unlock(&srv->conns_lock);
        srv->cut_since_log += cut;
        if (srv->cut_since_log && now - srv->last_cut_log_ms >= 10000) {
            fprintf(stderr,
                    "[http] closed %zu connections that sent no whole request in time (head %d "
                    "ms, body %d ms)\n",
                    srv->cut_since_log, srv->head_ms, srv->body_ms);
            srv->cut_since_log = 0;
            srv->last_cut_log_ms = now;
        }
    }
    return NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    omo_http_server *srv = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    fprintf(stderr, "[http] %s\n", line);
    pthread_mutex_lock(&srv->log_lock);
    snprintf(srv->last_log, sizeof srv->last_log, "%s", line);
    pthread_mutex_unlock(&srv->log_lock);
}

static bool parse_listen(const char *listen, struct sockaddr_in *sa, char *err, size_t errlen)
{
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    char host[64];
    size_t hlen = colon ? (size_t)(colon - listen) : 0;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    if (!colon || hlen == 0 || hlen >= sizeof host || !colon[1])
        goto fail;
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    if (!strcmp(host, "localhost"))
        snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        goto fail;
    unsigned long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || p - colon > 5)
            goto fail;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
        goto fail;
    sa->sin_port = htons((uint16_t)port);
    return true;

fail:
    snprintf(err, errlen,
             "invalid listen address '%s': HOST:PORT expected, HOST an IPv4 address or localhost",
             listen ? listen : "(null)");
    return false;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    omo_http_server *srv = cls;
    http_req *req = omo_xcalloc(1, sizeof *req);
    req->uri = omo_xstrdup(uri ? uri : "");
    atomic_fetch_add(&srv->active, 1);
    return req;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    omo_http_server *srv = cls;
    http_req *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
    conn_deadline(srv, conn, srv->head_ms); /* the next request on a kept-alive connection */
    free(req->uri);
    free(req->body);
    free(req);
    atomic_fetch_sub(&srv->active, 1);
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Percent-decodes n bytes of src into a new string; a '%' not followed by two hex digits stays
 * as it is. NULL for an encoded NUL, which no path may hold. */
static char *decode_path(const char *src, size_t n)
{
    char *out = omo_xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (src[i] == '%' && i + 2 < n && (hi = omo_hex_value(src[i + 1])) >= 0 &&
            (lo = omo_hex_value(src[i + 2])) >= 0) {
            if (hi == 0 && lo == 0) {
                free(out);
                return NULL;
            }
            *o++ = (char)(hi * 16 + lo);
            i += 2;
        } else {
            *o++ = src[i];
        }
    }
    *o = '\0';
    return out;
}

/* The token of `Authorization: Bearer TOKEN` (scheme in any case), as a new string, or NULL. */
static char *bearer_token(const char *auth)
{
    static const char scheme[] = "Bearer";
    if (!auth || strncasecmp(auth, scheme, sizeof scheme - 1) ||
        (auth[sizeof scheme - 1] != ' ' && auth[sizeof scheme - 1] != '\t'))
        return NULL;
    const char *t = auth + sizeof scheme - 1;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (!n)
        return NULL;
    char *out = omo_xmalloc(n + 1);
    memcpy(out, t, n);
    out[n] = '\0';
    return out;
}

/* Calls the handler with the whole request and queues its answer. */
static enum MHD_Result answer(omo_http_server *srv, struct MHD_Connection *conn, const char *method,
                              http_req *req)
{
    const char *uri = req->uri;
    /* absolute-form targets ("http://host/path") name the same resource as "/path" */
    if (!strncasecmp(uri, "http://", 7) || !strncasecmp(uri, "https://", 8)) {
        const char *slash = strchr(strstr(uri, "://") + 3, '/');
        uri = slash ? slash : "/";
    }
    size_t path_len = strcspn(uri, "?#");
    char *query = NULL;
    if (uri[path_len] == '?') {
        const char *q = uri + path_len + 1;
        size_t qlen = strcspn(q, "#");
        query = omo_xmalloc(qlen + 1);
        memcpy(query, q, qlen);
        query[qlen] = '\0';
    }
    char *path = decode_path(uri, path_len);
    if (!path) {
        free(query);
        return send_text(conn, MHD_HTTP_BAD_REQUEST, "bad request: NUL in the path\n");
    }
    char *bearer = bearer_token(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));

    omo_http_request hreq = {
        .method = method,
        .path = path,
        .query = query ? query : "",
        .bearer = bearer,
        .body = req->len ? req->body : NULL,
        .body_len = req->len,
    };
    omo_http_response hresp;
    memset(&hresp, 0, sizeof hresp);
    srv->handler(srv->ctx, &hreq, &hresp);
    free(path);
    free(query);
    free(bearer);

    if (hresp.status < 100 || hresp.status > 599) {
        if (hresp.status != 0)
            fprintf(stderr, "[http] handler answered %s %.200s with status %d: sending 500\n",
                    method, req->uri, hresp.status);
        free(hresp.body);
        return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal server error\n");
    }

    struct MHD_Response *resp;
    if (hresp.body && hresp.body_len) {
        resp = MHD_create_response_from_buffer(hresp.body_len, hresp.body, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(hresp.body);
        hresp.body = NULL; /* now owned by the response */
    } else {
        free(hresp.body);
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    hresp.content_type[sizeof hresp.content_type - 1] = '\0';
    if (hresp.content_type[0] &&
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, hresp.content_type) != MHD_YES)
        fprintf(stderr, "[http] refused content type for %s %.200s\n", method, req->uri);
    (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)hresp.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* True when a Content-Length header announces more than the limit (or is not a number, which
 * libmicrohttpd refuses anyway). */
static bool declared_too_big(const char *content_length, size_t *declared)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(content_length, &end, 10);
    if (errno || end == content_length)
        return true;
    *declared = (size_t)n;
    return n > OMO_HTTP_MAX_BODY;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)url; /* decoded by libmicrohttpd, query cut off: the raw uri is kept instead */
    omo_http_server *srv = cls;
    http_req *req = *con_cls;
    if (!req)
        return MHD_NO;

    if (!req->started) {
        /* Headers are in, the body is not: refusing now spares reading a body that is too
         * large, and a client that sent `Expect: 100-continue` never sends it. */
        req->started = true;
        conn_deadline(srv, conn, srv->body_ms);
        if (strlen(req->uri) > OMO_HTTP_MAX_URI)
            return send_text(conn, MHD_HTTP_URI_TOO_LONG, "request target too long\n");
        if (!strcmp(version, MHD_HTTP_VERSION_1_1) &&
            !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST))
            return send_text(conn, MHD_HTTP_BAD_REQUEST, "bad request: no Host header\n");
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        size_t declared = 0;
        if (cl && declared_too_big(cl, &declared))
            return send_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
        if (declared)
            omo_grow((void **)&req->body, &req->cap, declared, 1);
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!req->too_big && n <= OMO_HTTP_MAX_BODY - req->len) {
            omo_grow((void **)&req->body, &req->cap, req->len + n, 1);
            memcpy(req->body + req->len, upload_data, n);
            req->len += n;
            return MHD_YES;
        }
        req->too_big = true;
        req->discarded += n;
        return req->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
    }

    if (req->too_big)
        return send_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large\n");
    conn_deadline(srv, conn, 0); /* the handler may take its time */
    return answer(srv, conn, method, req);
}

/* The whole of a PEM file, as a string. */
static char *read_pem(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
        snprintf(err, errlen, "cannot read %s %s: %s", what, path,
                 f ? "not a regular file of at most 1 MB" : strerror(errno));
        if (f)
            fclose(f);
        return NULL;
    }
    char *text = omo_xmalloc((size_t)st.st_size + 1);
    size_t n = fread(text, 1, (size_t)st.st_size, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

omo_http_server *omo_http_start(const char *listen, omo_http_handler handler, void *ctx, char *err,
                                size_t errlen)
{
    omo_http_conf conf = {.listen = listen};
    return omo_http_start_conf(&conf, handler, ctx, err, errlen);
}

omo_http_server *omo_http_start_conf(const omo_http_conf *conf, omo_http_handler handler, void *ctx,
                                     char *err, size_t errlen)
{
    struct sockaddr_in sa;
    char *cert = NULL, *key = NULL;
    if (!parse_listen(conf->listen, &sa, err, errlen))
        return NULL;
    bool tls = conf->tls_cert && *conf->tls_cert && conf->tls_key && *conf->tls_key;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errlen, "cannot serve HTTPS: libmicrohttpd is built without TLS");
        return NULL;
    }
    if (tls && (!(cert = read_pem("tls_cert", conf->tls_cert, err, errlen)) ||
                !(key = read_pem("tls_key", conf->tls_key, err, errlen)))) {
        free(cert);
        return NULL;
    }
    omo_http_server *srv = omo_xcalloc(1, sizeof *srv);
    srv->handler = handler;
    srv->ctx = ctx;
    srv->head_ms = conf->head_ms > 0 ? conf->head_ms : OMO_HTTP_HEAD_MS;
    srv->body_ms = conf->body_ms > 0 ? conf->body_ms : OMO_HTTP_BODY_MS;
    atomic_init(&srv->active, 0);
    atomic_init(&srv->stopping, false);
    pthread_mutex_init(&srv->log_lock, NULL);
    pthread_mutex_init(&srv->conns_lock, NULL);

    /* A fixed pool of threads, each polling many connections: threads stay bounded however
     * many clients connect. poll() rather than epoll: a thread then accepts one connection per
     * wake-up, so that connections spread over the threads (a handler that blocks holds up
     * only its own thread's). ITC lets stop quiesce the listener. */
    unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (tls)
        flags |= MHD_USE_TLS;
    unsigned threads = conf->threads ? conf->threads : OMO_HTTP_THREADS;
    unsigned max_conns = conf->max_connections ? conf->max_connections : OMO_HTTP_MAX_CONNECTIONS;
    unsigned per_ip = conf->max_per_ip ? conf->max_per_ip : OMO_HTTP_MAX_PER_IP;
    struct MHD_OptionItem tls_opts[] = {
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
        {MHD_OPTION_END, 0, NULL},
    };
    srv->daemon = MHD_start_daemon(
        flags, ntohs(sa.sin_port), NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, log_mhd,
        srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)OMO_HTTP_TIMEOUT,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    /* libmicrohttpd keeps its own copies of the certificate and key */
    free(cert);
    free(key);
    if (!srv->daemon) {
        pthread_mutex_lock(&srv->log_lock);
        snprintf(err, errlen, "cannot listen on %s: %s", conf->listen,
                 srv->last_log[0] ? srv->last_log : "the HTTP server did not start");
        pthread_mutex_unlock(&srv->log_lock);
        goto fail;
    }
    if (pthread_create(&srv->janitor, NULL, janitor_main, srv) != 0) {
        snprintf(err, errlen, "cannot start the HTTP janitor thread: %s", strerror(errno));
        MHD_stop_daemon(srv->daemon);
        goto fail;
    }
    srv->janitor_started = true;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info && info->port ? info->port : ntohs(sa.sin_port);
    fprintf(stderr, "[http] listening on %s port=%d%s threads=%u max_connections=%u per_ip=%u\n",
            conf->listen, srv->port, tls ? " tls" : "", threads, max_conns, per_ip);
    return srv;

fail:
    pthread_mutex_destroy(&srv->conns_lock);
    pthread_mutex_destroy(&srv->log_lock);
    free(srv);
    return NULL;
}

int omo_http_port(const omo_http_server *srv)
{
    return srv->port;
}

void omo_http_stop(omo_http_server *srv)
{
    if (!srv)
        return;
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    struct timespec tick = {0, 10 * 1000 * 1000};
    for (int waited = 0; atomic_load(&srv->active) > 0 && waited < OMO_HTTP_STOP_GRACE_MS;
         waited += 10)
        nanosleep(&tick, NULL);
    if (atomic_load(&srv->active) > 0)
        fprintf(stderr, "[http] stopping with %d requests unfinished\n", atomic_load(&srv->active));
    atomic_store(&srv->stopping, true);
    if (srv->janitor_started)
        pthread_join(srv->janitor, NULL);
    MHD_stop_daemon(srv->daemon); /* closes every connection: the list empties */
    /* a quiesced listening socket is ours to close, and only after the daemon's threads end */
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    pthread_mutex_destroy(&srv->conns_lock);
    pthread_mutex_destroy(&srv->log_lock);
    free(srv);
}
