/* The HTTP side of the service on libmicrohttpd: parses requests off the wire and hands each
 * one, whole, to the core's omo_http_handler (api.h), then sends back what the handler answers.
 *
 * Threads: a fixed pool of OMO_HTTP_THREADS, each serving many connections, so that neither
 * idle nor slow clients cost a thread; a handler may block, holding up the connections of its
 * own thread only (new connections go to the threads that are free). The handler is called
 * concurrently from the pool. start, port and stop belong to the thread that owns the server.
 *
 * Abusive clients: at most OMO_HTTP_MAX_CONNECTIONS connections, OMO_HTTP_MAX_PER_IP from one
 * address (more are closed at once); a connection that has not sent a whole request head
 * within OMO_HTTP_HEAD_MS of connecting or of its previous answer, or a whole body within
 * OMO_HTTP_BODY_MS of its head, is closed; so is one idle for OMO_HTTP_TIMEOUT. A body beyond
 * OMO_HTTP_MAX_BODY gets 413, a request target beyond OMO_HTTP_MAX_URI 414, a request head
 * that does not parse 400. */
#ifndef OMO_HTTP_H
#define OMO_HTTP_H

#include "api.h"
#include "util.h"

/* Largest request body accepted; beyond it the answer is 413 and the handler is not called. */
#define OMO_HTTP_MAX_BODY (1024u * 1024u)
/* Largest request target (path and query); beyond it the answer is 414. */
#define OMO_HTTP_MAX_URI 8192u
/* Seconds a connection may stay idle before it is closed. */
#define OMO_HTTP_TIMEOUT         10u
#define OMO_HTTP_HEAD_MS         10000
#define OMO_HTTP_BODY_MS         30000
#define OMO_HTTP_THREADS         16u
#define OMO_HTTP_MAX_CONNECTIONS 512u
#define OMO_HTTP_MAX_PER_IP      128u

/* How to serve. Zero limits take the defaults above. */
typedef struct omo_http_conf {
    const char *listen;   /* "HOST:PORT", HOST an IPv4 address or `localhost`; port 0: any */
    const char *tls_cert; /* PEM files: HTTPS when both are set */
    const char *tls_key;
    unsigned threads, max_connections, max_per_ip;
    int head_ms, body_ms;
} omo_http_conf;

typedef struct omo_http_server omo_http_server;

/* Starts serving as conf says. handler and ctx must outlive the server. Returns NULL with err
 * filled when the address is malformed or cannot be bound, or a TLS file cannot be read or
 * used. */
OMO_MUST_CHECK omo_http_server *omo_http_start_conf(const omo_http_conf *conf,
                                                    omo_http_handler handler, void *ctx, char *err,
                                                    size_t errlen);

/* omo_http_start_conf with the defaults, in clear. */
OMO_MUST_CHECK omo_http_server *omo_http_start(const char *listen, omo_http_handler handler,
                                               void *ctx, char *err, size_t errlen);

/* The port the server is bound to. */
int omo_http_port(const omo_http_server *srv);

/* Stops accepting connections, lets the requests in progress finish and send their answers
 * (for up to OMO_HTTP_STOP_GRACE_MS), then closes every connection and frees the server.
 * Accepts NULL. */
void omo_http_stop(omo_http_server *srv);

#define OMO_HTTP_STOP_GRACE_MS 10000

#endif
