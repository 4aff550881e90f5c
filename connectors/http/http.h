/* The HTTP side of the service on libmicrohttpd: parses requests off the wire and hands each
 * one, whole, to the core's omo_http_handler (api.h), then sends back what the handler answers.
 *
 * Threads: one listening thread and one thread per connection, so a handler may block without
 * holding up other clients; the handler is called concurrently from those threads. start, port
 * and stop belong to the thread that owns the server. */
#ifndef OMO_HTTP_H
#define OMO_HTTP_H

#include "api.h"
#include "util.h"

/* Largest request body accepted; beyond it the answer is 413 and the handler is not called. */
#define OMO_HTTP_MAX_BODY (1024u * 1024u)
/* Seconds a connection may stay idle before it is closed. */
#define OMO_HTTP_TIMEOUT 30u

typedef struct omo_http_server omo_http_server;

/* Starts serving on `listen`, "HOST:PORT" with HOST an IPv4 address or `localhost`; port 0 takes
 * any free port (see omo_http_port). handler and ctx must outlive the server. Returns NULL with
 * err filled when the address is malformed or cannot be bound. */
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
