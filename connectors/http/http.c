/* HTTP on libmicrohttpd: a thread per connection, each request collected whole (line, headers,
 * body) and answered by the core's handler in one call. */
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
#include <time.h>
#include <unistd.h>

/* A chunked upload that keeps going past the limit is read and dropped up to this much, so the
 * client still gets its 413; beyond it the connection is cut. */
#define DISCARD_MAX (16u * OMO_HTTP_MAX_BODY)

struct omo_http_server {
    struct MHD_Daemon *daemon;
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
    (void)conn;
    (void)toe;
    omo_http_server *srv = cls;
    http_req *req = *con_cls;
    if (!req)
        return;
    *con_cls = NULL;
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
    (void)version;
    omo_http_server *srv = cls;
    http_req *req = *con_cls;
    if (!req)
        return MHD_NO;

    if (!req->started) {
        /* Headers are in, the body is not: refusing now spares reading a body that is too
         * large, and a client that sent `Expect: 100-continue` never sends it. */
        req->started = true;
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
    return answer(srv, conn, method, req);
}

omo_http_server *omo_http_start(const char *listen, omo_http_handler handler, void *ctx, char *err,
                                size_t errlen)
{
    struct sockaddr_in sa;
    if (!parse_listen(listen, &sa, err, errlen))
        return NULL;
    omo_http_server *srv = omo_xcalloc(1, sizeof *srv);
    srv->handler = handler;
    srv->ctx = ctx;
    atomic_init(&srv->active, 0);
    pthread_mutex_init(&srv->log_lock, NULL);

    /* A thread per connection: handlers may block (database calls, waiting for the engine).
     * ITC lets stop quiesce the listener; poll has no FD_SETSIZE limit. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    srv->daemon = MHD_start_daemon(
        flags, ntohs(sa.sin_port), NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, log_mhd,
        srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)OMO_HTTP_TIMEOUT, MHD_OPTION_END);
    if (!srv->daemon) {
        pthread_mutex_lock(&srv->log_lock);
        snprintf(err, errlen, "cannot listen on %s: %s", listen,
                 srv->last_log[0] ? srv->last_log : "the HTTP server did not start");
        pthread_mutex_unlock(&srv->log_lock);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info && info->port ? info->port : ntohs(sa.sin_port);
    fprintf(stderr, "[http] listening on %s port=%d\n", listen, srv->port);
    return srv;

fail:
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
    MHD_stop_daemon(srv->daemon);
    /* a quiesced listening socket is ours to close, and only after the daemon's threads end */
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    pthread_mutex_destroy(&srv->log_lock);
    free(srv);
}
