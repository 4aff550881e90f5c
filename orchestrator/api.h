/* HTTP requests as the core sees them. The HTTP connector parses the wire and calls a handler
 * the core provides; the core answers with a status, a content type and a body. */
#ifndef OMO_API_H
#define OMO_API_H

#include <stddef.h>

typedef struct omo_http_request {
    const char *method; /* "GET", "POST", "PUT", ... */
    const char *path;   /* percent-decoded, without the query: "/orders/W-1001" */
    const char *query;  /* the raw query string without '?', "" when none */
    const char *bearer; /* the token of `Authorization: Bearer TOKEN`, or NULL */
    const char *body;   /* request body (not NUL-terminated), NULL when empty */
    size_t body_len;
} omo_http_request;

typedef struct omo_http_response {
    int status;
    char content_type[64];
    char *body; /* heap memory; the connector frees it */
    size_t body_len;
} omo_http_response;

/* Called on the connector's threads, one request at a time per connection; may block. */
typedef void (*omo_http_handler)(void *ctx, const omo_http_request *req, omo_http_response *resp);

/* The value of a hexadecimal digit, or -1 (for percent-decoding). */
int omo_hex_value(char c);

/* Returns the value of `name` in a query string ("format=html&max_orders=3"), percent-decoded
 * into buf, or NULL when absent. */
const char *omo_query_param(const char *query, const char *name, char *buf, size_t len);

#endif
