/* The HTTP connector against real sockets: a handler that echoes what it was given, and a small
 * HTTP/1.1 client written here. Also omo_query_param. */
#include "api.h"
#include "http/http.h"
#include "util.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the echoing handler ---- */

typedef struct echo_ctx {
    atomic_int calls;
    atomic_int inflight, max_inflight;
} echo_ctx;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Answers a JSON object with what it received; /sleep?ms=N waits first, /status0 answers
 * nothing, /teapot answers 418 in plain text. */
static void echo(void *ctxp, const omo_http_request *req, omo_http_response *resp)
{
    echo_ctx *ctx = ctxp;
    atomic_fetch_add(&ctx->calls, 1);
    int now = atomic_fetch_add(&ctx->inflight, 1) + 1;
    int max = atomic_load(&ctx->max_inflight);
    while (now > max && !atomic_compare_exchange_weak(&ctx->max_inflight, &max, now))
        ;

    char buf[32];
    if (!strcmp(req->path, "/sleep"))
        sleep_ms(omo_query_param(req->query, "ms", buf, sizeof buf) ? atol(buf) : 100);
    if (!strcmp(req->path, "/status0")) {
        resp->body = strdup("ignored");
        resp->body_len = 7;
        goto done;
    }
    if (!strcmp(req->path, "/teapot")) {
        resp->status = 418;
        snprintf(resp->content_type, sizeof resp->content_type, "text/plain");
        resp->body = strdup("short and stout");
        resp->body_len = strlen(resp->body);
        goto done;
    }

    char hash[17];
    snprintf(hash, sizeof hash, "%016llx",
             (unsigned long long)omo_hash_bytes(req->body ? req->body : "", req->body_len));
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:b}", "method", req->method, "path",
                          req->path, "query", req->query, "bearer",
                          req->bearer ? json_string(req->bearer) : json_null(), "body_len",
                          (json_int_t)req->body_len, "body_hash", hash, "body_null", !req->body);
    if (req->body && req->body_len <= 1024)
        json_object_set_new(o, "body", json_stringn(req->body, req->body_len));
    resp->status = 200;
    snprintf(resp->content_type, sizeof resp->content_type, "application/json");
    resp->body = json_dumps(o, JSON_COMPACT);
    resp->body_len = strlen(resp->body);
    json_decref(o);
done:
    atomic_fetch_sub(&ctx->inflight, 1);
}

/* ---- a tiny HTTP/1.1 client ---- */

typedef struct reply {
    int status;
    char *head; /* status line and headers */
    char *body;
    size_t body_len;
    json_t *json; /* the body parsed, when it is JSON */
} reply;

static void reply_free(reply *r)
{
    free(r->head);
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends everything it can; a server that answers early and closes may refuse the rest. */
static bool send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

/* The value of header `name` in r's head, copied into buf, or NULL. */
static const char *header(const reply *r, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line && line[2];
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (!strncasecmp(h, name, n) && h[n] == ':') {
            h += n + 1;
            while (*h == ' ')
                h++;
            size_t vlen = strcspn(h, "\r");
            snprintf(buf, len, "%.*s", (int)vlen, h);
            return buf;
        }
    }
    return NULL;
}

/* Reads one whole response (head, then Content-Length bytes of body). False when the
 * connection ends first. */
static bool read_reply(int fd, reply *r)
{
    memset(r, 0, sizeof *r);
    size_t cap = 65536, used = 0;
    char *buf = malloc(cap);
    char *end = NULL;
    while (!end) {
        if (used + 1 >= cap)
            buf = realloc(buf, cap *= 2);
        /* one byte at a time until the head ends, so a second response stays in the socket */
        ssize_t n = recv(fd, buf + used, 1, 0);
        if (n <= 0) {
            free(buf);
            return false;
        }
        used += (size_t)n;
        buf[used] = '\0';
        end = used >= 4 ? strstr(buf + used - 4, "\r\n\r\n") : NULL;
    }
    r->head = buf;
    end[2] = '\0';
    cr_assert_eq(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1, "bad status line: %s", r->head);
    char cl[32];
    cr_assert_not_null(header(r, "Content-Length", cl, sizeof cl), "no Content-Length: %s",
                       r->head);
    r->body_len = strtoul(cl, NULL, 10);
    r->body = malloc(r->body_len + 1);
    for (size_t got = 0; got < r->body_len;) {
        ssize_t n = recv(fd, r->body + got, r->body_len - got, 0);
        if (n <= 0) {
            reply_free(r);
            return false;
        }
        got += (size_t)n;
    }
    r->body[r->body_len] = '\0';
    r->json = json_loadb(r->body, r->body_len, 0, NULL);
    return true;
}

/* Sends one request on fd: the request line, `extra` headers (each ending in CRLF), and a body
 * with its Content-Length when body is not NULL. */
static bool send_request(int fd, const char *method, const char *target, const char *extra,
                         const char *body, size_t body_len)
{
    char head[4096];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s", method, target,
                     extra ? extra : "");
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", body_len);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    return send_all(fd, head, (size_t)n) && (!body || send_all(fd, body, body_len));
}

/* One request on its own connection; the reply is asserted to arrive. */
static reply call(int port, const char *method, const char *target, const char *extra,
                  const char *body, size_t body_len)
{
    int fd = connect_to(port);
    cr_assert_geq(fd, 0, "cannot connect to port %d", port);
    char headers[1024];
    snprintf(headers, sizeof headers, "Connection: close\r\n%s", extra ? extra : "");
    (void)send_request(fd, method, target, headers, body, body_len);
    reply r;
    cr_assert(read_reply(fd, &r), "no reply to %s %s", method, target);
    close(fd);
    return r;
}

static const char *jstr(const reply *r, const char *key)
{
    cr_assert_not_null(r->json, "not JSON: %s", r->body);
    json_t *v = json_object_get(r->json, key);
    cr_assert_not_null(v, "no %s in %s", key, r->body);
    return json_is_null(v) ? NULL : json_string_value(v);
}

static long long jint(const reply *r, const char *key)
{
    cr_assert_not_null(r->json, "not JSON: %s", r->body);
    json_t *v = json_object_get(r->json, key);
    cr_assert(json_is_integer(v), "no integer %s in %s", key, r->body);
    return json_integer_value(v);
}

/* ---- a server per test ---- */

static echo_ctx ctx;
static omo_http_server *srv;
static int port;

static void start(void)
{
    memset(&ctx, 0, sizeof ctx);
    char err[256];
    srv = omo_http_start("127.0.0.1:0", echo, &ctx, err, sizeof err);
    cr_assert_not_null(srv, "%s", err);
    port = omo_http_port(srv);
    cr_assert_gt(port, 0);
}

static void stop(void)
{
    omo_http_stop(srv);
    srv = NULL;
}

TestSuite(http, .init = start, .fini = stop, .timeout = 60);

Test(http, get_with_query_and_bearer)
{
    reply r = call(port, "GET", "/orders/W-1001?format=html&max_orders=3&x=a%20b+c",
                   "Authorization: Bearer tok-123\r\n", NULL, 0);
    cr_assert_eq(r.status, 200, "%s", r.head);
    cr_assert_str_eq(jstr(&r, "method"), "GET");
    cr_assert_str_eq(jstr(&r, "path"), "/orders/W-1001");
    cr_assert_str_eq(jstr(&r, "query"), "format=html&max_orders=3&x=a%20b+c");
    cr_assert_str_eq(jstr(&r, "bearer"), "tok-123");
    cr_assert_eq(jint(&r, "body_len"), 0);
    cr_assert(json_is_true(json_object_get(r.json, "body_null")));
    char buf[64];
    cr_assert_str_eq(header(&r, "Content-Type", buf, sizeof buf), "application/json");
    cr_assert_str_eq(header(&r, "Cache-Control", buf, sizeof buf), "no-store");
    reply_free(&r);

    r = call(port, "GET", "/healthz", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(jstr(&r, "path"), "/healthz");
    cr_assert_str_eq(jstr(&r, "query"), "");
    cr_assert_null(jstr(&r, "bearer"));
    reply_free(&r);
    cr_assert_eq(atomic_load(&ctx.calls), 2);
}

Test(http, bearer_forms)
{
    struct {
        const char *header, *want;
    } cases[] = {
        {"Authorization: bearer abc\r\n", "abc"},
        {"AUTHORIZATION: BEARER   a.b-c_d~e+f/g==  \r\n", "a.b-c_d~e+f/g=="},
        {"Authorization: Basic dXNlcjpwYXNz\r\n", NULL},
        {"Authorization: Bearer\r\n", NULL},
        {"Authorization: Bearerabc\r\n", NULL},
        {"Authorization: Bearer   \r\n", NULL},
        {"X-Other: 1\r\n", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        reply r = call(port, "GET", "/x", cases[i].header, NULL, 0);
        cr_assert_eq(r.status, 200);
        const char *got = jstr(&r, "bearer");
        if (cases[i].want)
            cr_assert(got && !strcmp(got, cases[i].want), "%s gave %s", cases[i].header,
                      got ? got : "NULL");
        else
            cr_assert_null(got, "%s gave %s", cases[i].header, got);
        reply_free(&r);
    }
}

/* Printable, varied bytes, so a misplaced chunk changes the hash. */
static char *make_body(size_t n)
{
    char *b = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        b[i] = (char)('!' + (x >> 16) % 90);
    }
    return b;
}

static void assert_body_echoed(const reply *r, const char *body, size_t n)
{
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)omo_hash_bytes(body, n));
    cr_assert_eq(jint(r, "body_len"), (long long)n);
    cr_assert_str_eq(jstr(r, "body_hash"), hash);
}

Test(http, post_bodies_small_large_and_too_large)
{
    const char *json = "{\"lines\":[{\"line_id\":\"1\",\"picked\":1,\"reason\":\"not_found\"}]}";
    reply r = call(port, "POST", "/picks/W-1001%2F1/confirm", "Content-Type: application/json\r\n",
                   json, strlen(json));
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(jstr(&r, "method"), "POST");
    cr_assert_str_eq(jstr(&r, "path"), "/picks/W-1001/1/confirm");
    cr_assert_str_eq(jstr(&r, "body"), json);
    cr_assert(json_is_false(json_object_get(r.json, "body_null")));
    reply_free(&r);

    size_t big = 200 * 1024;
    char *body = make_body(OMO_HTTP_MAX_BODY + 1);
    r = call(port, "POST", "/big", NULL, body, big);
    cr_assert_eq(r.status, 200);
    assert_body_echoed(&r, body, big);
    reply_free(&r);

    /* the limit itself is allowed */
    r = call(port, "POST", "/big", NULL, body, OMO_HTTP_MAX_BODY);
    cr_assert_eq(r.status, 200);
    assert_body_echoed(&r, body, OMO_HTTP_MAX_BODY);
    reply_free(&r);
    cr_assert_eq(atomic_load(&ctx.calls), 3);

    /* one byte more is refused before the handler sees it */
    r = call(port, "POST", "/big", NULL, body, OMO_HTTP_MAX_BODY + 1);
    cr_assert_eq(r.status, 413, "%s", r.head);
    char buf[64];
    cr_assert_str_eq(header(&r, "Cache-Control", buf, sizeof buf), "no-store");
    reply_free(&r);
    cr_assert_eq(atomic_load(&ctx.calls), 3);
    free(body);
}

Test(http, too_large_with_expect_continue_and_chunked)
{
    /* announced too large: the answer comes without the body ever being sent */
    int fd = connect_to(port);
    cr_assert_geq(fd, 0);
    char head[256];
    snprintf(head, sizeof head,
             "PUT /rules HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %u\r\n\r\n",
             OMO_HTTP_MAX_BODY * 4);
    cr_assert(send_all(fd, head, strlen(head)));
    reply r;
    cr_assert(read_reply(fd, &r));
    cr_assert_eq(r.status, 413);
    reply_free(&r);
    close(fd);

    /* chunked, so the size is only known as it arrives: read, dropped, then refused */
    fd = connect_to(port);
    cr_assert_geq(fd, 0);
    const char *h = "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    "Connection: close\r\n\r\n";
    cr_assert(send_all(fd, h, strlen(h)));
    size_t chunk = 64 * 1024;
    char *body = make_body(chunk);
    for (size_t sent = 0; sent < OMO_HTTP_MAX_BODY * 3 / 2; sent += chunk) {
        char size[32];
        snprintf(size, sizeof size, "%zx\r\n", chunk);
        cr_assert(send_all(fd, size, strlen(size)) && send_all(fd, body, chunk) &&
                  send_all(fd, "\r\n", 2));
    }
    cr_assert(send_all(fd, "0\r\n\r\n", 5));
    cr_assert(read_reply(fd, &r));
    cr_assert_eq(r.status, 413);
    reply_free(&r);
    close(fd);
    free(body);
    cr_assert_eq(atomic_load(&ctx.calls), 0);

    /* a chunked body within the limit arrives whole */
    fd = connect_to(port);
    cr_assert_geq(fd, 0);
    h = "POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    cr_assert(send_all(fd, h, strlen(h)));
    cr_assert(read_reply(fd, &r));
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(jstr(&r, "body"), "hello world");
    reply_free(&r);
    close(fd);
}

Test(http, put_with_body)
{
    const char *yaml = "version: 1\nservices:\n  standard:\n    zones: [{max_km: 50}]\n";
    reply r = call(port, "PUT", "/rules", "Content-Type: application/yaml\r\n", yaml, strlen(yaml));
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(jstr(&r, "method"), "PUT");
    cr_assert_str_eq(jstr(&r, "path"), "/rules");
    cr_assert_str_eq(jstr(&r, "body"), yaml);
    reply_free(&r);
}

Test(http, percent_encoded_path_and_raw_query)
{
    reply r = call(port, "GET", "/orders/W%2D1001%2F1/explain%20it?q=%2F&a+b=c%26d", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(jstr(&r, "path"), "/orders/W-1001/1/explain it");
    cr_assert_str_eq(jstr(&r, "query"), "q=%2F&a+b=c%26d");
    reply_free(&r);

    /* '+' is a plus in a path; broken escapes stay as they are */
    r = call(port, "GET", "/a+b/%zz/%4", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(jstr(&r, "path"), "/a+b/%zz/%4");
    reply_free(&r);

    /* an encoded NUL cannot be passed on as a C string */
    int calls = atomic_load(&ctx.calls);
    r = call(port, "GET", "/orders/W%00x", NULL, NULL, 0);
    cr_assert_eq(r.status, 400);
    reply_free(&r);
    cr_assert_eq(atomic_load(&ctx.calls), calls);
}

Test(http, handler_status_and_content_type)
{
    reply r = call(port, "GET", "/status0", NULL, NULL, 0);
    cr_assert_eq(r.status, 500);
    cr_assert_null(strstr(r.body, "ignored"));
    reply_free(&r);

    r = call(port, "POST", "/teapot", NULL, "", 0);
    cr_assert_eq(r.status, 418);
    char buf[64];
    cr_assert_str_eq(header(&r, "Content-Type", buf, sizeof buf), "text/plain");
    cr_assert_str_eq(header(&r, "Cache-Control", buf, sizeof buf), "no-store");
    cr_assert_str_eq(r.body, "short and stout");
    reply_free(&r);
}

Test(http, keep_alive_serves_requests_in_turn)
{
    int fd = connect_to(port);
    cr_assert_geq(fd, 0);
    for (int i = 0; i < 3; i++) {
        char target[32];
        snprintf(target, sizeof target, "/n/%d?i=%d", i, i);
        cr_assert(send_request(fd, i == 1 ? "POST" : "GET", target, NULL, i == 1 ? "xy" : NULL, 2));
        reply r;
        cr_assert(read_reply(fd, &r));
        cr_assert_eq(r.status, 200);
        char path[16], query[16];
        snprintf(path, sizeof path, "/n/%d", i);
        snprintf(query, sizeof query, "i=%d", i);
        cr_assert_str_eq(jstr(&r, "path"), path);
        cr_assert_str_eq(jstr(&r, "query"), query);
        cr_assert_eq(jint(&r, "body_len"), i == 1 ? 2 : 0);
        reply_free(&r);
    }
    close(fd);
    cr_assert_eq(atomic_load(&ctx.calls), 3);
}

typedef struct sleeper {
    int port;
    int ms;
    reply r;
    bool ok;
} sleeper;

static void *sleeper_main(void *arg)
{
    sleeper *s = arg;
    int fd = connect_to(s->port);
    if (fd < 0)
        return NULL;
    char target[32];
    snprintf(target, sizeof target, "/sleep?ms=%d", s->ms);
    s->ok =
        send_request(fd, "GET", target, "Connection: close\r\n", NULL, 0) && read_reply(fd, &s->r);
    close(fd);
    return NULL;
}

Test(http, requests_are_served_concurrently)
{
    enum { N = 8 };
    sleeper s[N];
    pthread_t t[N];
    double t0 = now_ms();
    for (int i = 0; i < N; i++) {
        s[i] = (sleeper){.port = port, .ms = 100};
        cr_assert_eq(pthread_create(&t[i], NULL, sleeper_main, &s[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    double elapsed = now_ms() - t0;
    for (int i = 0; i < N; i++) {
        cr_assert(s[i].ok, "request %d got no reply", i);
        cr_assert_eq(s[i].r.status, 200);
        reply_free(&s[i].r);
    }
    cr_log_info("%d requests of 100 ms in %.0f ms, at most %d at once", N, elapsed,
                atomic_load(&ctx.max_inflight));
    cr_assert_lt(elapsed, N * 100 / 2, "took %.0f ms: requests did not overlap", elapsed);
    cr_assert_geq(atomic_load(&ctx.max_inflight), N / 2);
}

Test(http, stop_waits_for_requests_in_progress)
{
    sleeper s = {.port = port, .ms = 300};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, sleeper_main, &s), 0);
    for (int i = 0; i < 500 && atomic_load(&ctx.inflight) == 0; i++)
        sleep_ms(2);
    cr_assert_eq(atomic_load(&ctx.inflight), 1);
    double t0 = now_ms();
    stop();
    double elapsed = now_ms() - t0;
    pthread_join(t, NULL);
    cr_assert(s.ok, "the request in progress lost its answer");
    cr_assert_eq(s.r.status, 200);
    cr_assert_str_eq(jstr(&s.r, "path"), "/sleep");
    reply_free(&s.r);
    cr_assert_gt(elapsed, 100, "stop returned after %.0f ms, before the handler ended", elapsed);
    cr_assert_eq(connect_to(port), -1, "still accepting connections after stop");
}

Test(http, stop_while_idle)
{
    /* an idle keep-alive connection does not hold stop up */
    int fd = connect_to(port);
    cr_assert_geq(fd, 0);
    cr_assert(send_request(fd, "GET", "/x", NULL, NULL, 0));
    reply r;
    cr_assert(read_reply(fd, &r));
    cr_assert_eq(r.status, 200);
    reply_free(&r);

    double t0 = now_ms();
    stop();
    double elapsed = now_ms() - t0;
    cr_assert_lt(elapsed, 2000, "stop took %.0f ms", elapsed);
    char c;
    cr_assert_leq(recv(fd, &c, 1, 0), 0, "the connection stayed open");
    close(fd);
    cr_assert_eq(connect_to(port), -1);

    omo_http_stop(NULL);
}

Test(http_start, bad_addresses_and_busy_port)
{
    echo_ctx c = {0};
    char err[256];
    const char *bad[] = {"8080",         ":8080",          "127.0.0.1:", "127.0.0.1:70000",
                         "127.0.0.1:8x", "example.com:80", "[::1]:80",   ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        omo_http_server *s = omo_http_start(bad[i], echo, &c, err, sizeof err);
        cr_assert_null(s, "'%s' accepted", bad[i]);
        cr_assert(strstr(err, "invalid listen address"), "'%s': %s", bad[i], err);
    }

    omo_http_server *a = omo_http_start("localhost:0", echo, &c, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    char addr[64], want[96];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", omo_http_port(a));
    omo_http_server *b = omo_http_start(addr, echo, &c, err, sizeof err);
    cr_assert_null(b, "two servers on %s", addr);
    snprintf(want, sizeof want, "cannot listen on %s: ", addr);
    cr_assert(!strncmp(err, want, strlen(want)), "%s", err);
    cr_log_info("%s", err);
    omo_http_stop(a);
}

/* ---- omo_query_param ---- */

Test(query_param, finds_and_decodes)
{
    char buf[64];
    const char *q = "format=html&max_orders=3&name=a%20b+c%2Bd&empty=&flag&x%5Fy=1&format=csv";
    cr_assert_str_eq(omo_query_param(q, "format", buf, sizeof buf), "html");
    cr_assert_str_eq(omo_query_param(q, "max_orders", buf, sizeof buf), "3");
    cr_assert_str_eq(omo_query_param(q, "name", buf, sizeof buf), "a b c+d");
    cr_assert_str_eq(omo_query_param(q, "empty", buf, sizeof buf), "");
    cr_assert_str_eq(omo_query_param(q, "flag", buf, sizeof buf), "");
    cr_assert_str_eq(omo_query_param(q, "x_y", buf, sizeof buf), "1");
    cr_assert_eq(omo_query_param(q, "format", buf, sizeof buf), buf);
    cr_assert_null(omo_query_param(q, "form", buf, sizeof buf));
    cr_assert_null(omo_query_param(q, "formats", buf, sizeof buf));
    cr_assert_null(omo_query_param(q, "missing", buf, sizeof buf));
    cr_assert_null(omo_query_param("", "format", buf, sizeof buf));
    cr_assert_null(omo_query_param(NULL, "format", buf, sizeof buf));
    cr_assert_null(omo_query_param(q, "", buf, sizeof buf));
}

Test(query_param, odd_input)
{
    char buf[8];
    /* broken escapes stay as written; uppercase and lowercase hex both decode */
    cr_assert_str_eq(omo_query_param("a=%zz%4", "a", buf, sizeof buf), "%zz%4");
    cr_assert_str_eq(omo_query_param("a=%2f%2F", "a", buf, sizeof buf), "//");
    cr_assert_str_eq(omo_query_param("&&a=1&&", "a", buf, sizeof buf), "1");
    cr_assert_str_eq(omo_query_param("a=b=c", "a", buf, sizeof buf), "b=c");
    cr_assert_str_eq(omo_query_param("=x&a=2", "a", buf, sizeof buf), "2");
    /* seven bytes fit in eight; eight do not, and are not cut short */
    cr_assert_str_eq(omo_query_param("a=1234567", "a", buf, sizeof buf), "1234567");
    cr_assert_null(omo_query_param("a=12345678", "a", buf, sizeof buf));
    cr_assert_str_eq(omo_query_param("a=%41%42%43%44%45%46%47", "a", buf, sizeof buf), "ABCDEFG");
    /* a NUL byte is refused */
    cr_assert_null(omo_query_param("a=x%00y", "a", buf, sizeof buf));
    /* a long name compares whole even when buf is small */
    cr_assert_str_eq(omo_query_param("a_rather_long_name=1", "a_rather_long_name", buf, sizeof buf),
                     "1");
    cr_assert_null(omo_query_param("a=1", "a", buf, 0));
}

/* ---- abusive clients ---- */

/* A connection from source address 127.0.0.SRC (any of 127/8 is this host). */
static int connect_from(int src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in me = {.sin_family = AF_INET};
    me.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
    cr_assert_eq(bind(fd, (struct sockaddr *)&me, sizeof me), 0, "bind 127.0.0.%d: %s", src,
                 strerror(errno));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* True when the server closed fd (without answering) within ms. */
static bool closed_within(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static int get_status(int fd, const char *target)
{
    reply r;
    if (!send_request(fd, "GET", target, NULL, NULL, 0) || !read_reply(fd, &r))
        return -1;
    int status = r.status;
    reply_free(&r);
    return status;
}

static omo_http_server *start_conf(omo_http_conf conf, echo_ctx *c, int *port_out)
{
    char err[256];
    conf.listen = "127.0.0.1:0";
    omo_http_server *s = omo_http_start_conf(&conf, echo, c, err, sizeof err);
    cr_assert_not_null(s, "%s", err);
    *port_out = omo_http_port(s);
    return s;
}

static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(http_abuse, connections_are_bounded_per_address_and_in_all)
{
    echo_ctx c = {0};
    int p;
    /* libmicrohttpd splits the limit of all connections among its threads: two of three */
    omo_http_server *s =
        start_conf((omo_http_conf){.max_per_ip = 4, .max_connections = 6, .threads = 2}, &c, &p);
    int fds[6];
    for (int i = 0; i < 4; i++) {
        fds[i] = connect_from(2, p);
        cr_assert_geq(fds[i], 0);
    }
    cr_assert_eq(get_status(fds[0], "/x"), 200, "a connection within the limits is served");
    int over = connect_from(2, p);
    cr_assert(over < 0 || closed_within(over, 2000), "a fifth connection from one address");
    if (over >= 0)
        close(over);
    /* another address still gets in, up to the limit of all connections */
    fds[4] = connect_from(3, p);
    fds[5] = connect_from(3, p);
    cr_assert_eq(get_status(fds[4], "/x"), 200);
    /* a seventh in all waits unserved (libmicrohttpd stops accepting at the limit) until a
     * place is free */
    int seventh = connect_from(4, p);
    cr_assert_geq(seventh, 0);
    cr_assert(send_request(seventh, "GET", "/x", NULL, NULL, 0));
    struct timeval tv = {1, 0};
    setsockopt(seventh, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char ch;
    cr_assert_lt(recv(seventh, &ch, 1, MSG_PEEK), 0, "a seventh connection was served");
    close(fds[5]);
    fds[5] = -1;
    reply r;
    cr_assert(read_reply(seventh, &r), "the seventh connection was not served once a place freed");
    cr_assert_eq(r.status, 200);
    reply_free(&r);
    close(seventh);
    /* a freed place can be taken again */
    close(fds[1]);
    sleep_ms(200);
    int again = connect_from(2, p);
    cr_assert_geq(again, 0);
    cr_assert_eq(get_status(again, "/x"), 200);
    close(again);
    for (int i = 0; i < 6; i++)
        if (i != 1 && fds[i] >= 0)
            close(fds[i]);
    omo_http_stop(s);
}

Test(http_abuse, slow_heads_and_bodies_are_cut)
{
    echo_ctx c = {0};
    int p;
    omo_http_server *s = start_conf((omo_http_conf){.head_ms = 400, .body_ms = 400}, &c, &p);
    /* a head sent a byte every 100 ms (never idle, never whole): cut after about 400 ms */
    int slow = connect_to(p);
    const char head[] = "GET /x HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    double t0 = now_ms();
    bool cut = false;
    for (size_t i = 0; i < sizeof head - 1 && !cut; i++) {
        cut = !send_all(slow, head + i, 1) || closed_within(slow, 100);
    }
    double took = now_ms() - t0;
    cr_assert(cut, "a head that never ends was not cut in %.0f ms", took);
    cr_assert(took >= 350 && took < 2000, "cut after %.0f ms", took);
    close(slow);

    /* a body trickled in: cut as well, without calling the handler */
    int trickle = connect_to(p);
    const char post[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789";
    cr_assert(send_all(trickle, post, sizeof post - 1));
    cut = false;
    for (int i = 0; i < 30 && !cut; i++)
        cut = !send_all(trickle, "x", 1) || closed_within(trickle, 100);
    cr_assert(cut, "a trickled body was not cut");
    close(trickle);
    cr_assert_eq(atomic_load(&c.calls), 0);

    /* an idle kept-alive connection is closed too, after its answer */
    int idle = connect_to(p);
    cr_assert_eq(get_status(idle, "/x"), 200);
    cr_assert(closed_within(idle, 2000), "an idle connection stayed open");
    close(idle);
    /* and whoever sends a whole request in time is served */
    int fd = connect_to(p);
    cr_assert_eq(get_status(fd, "/x"), 200);
    close(fd);
    omo_http_stop(s);
}

Test(http_abuse, long_targets_and_malformed_heads)
{
    echo_ctx c = {0};
    int p;
    omo_http_server *s = start_conf((omo_http_conf){0}, &c, &p);
    size_t sizes[] = {OMO_HTTP_MAX_URI + 1, 100000};
    for (size_t i = 0; i < 2; i++) {
        char *target = malloc(sizes[i] + 1);
        target[0] = '/';
        memset(target + 1, 'a', sizes[i] - 1);
        target[sizes[i]] = '\0';
        size_t len = sizes[i] + 64;
        char *req = malloc(len);
        int n = snprintf(req, len, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", target);
        int fd = connect_to(p);
        reply r;
        cr_assert(send_all(fd, req, (size_t)n) && read_reply(fd, &r), "no answer");
        cr_assert_eq(r.status, 414, "%d for a target of %zu bytes", r.status, sizes[i]);
        reply_free(&r);
        close(fd);
        free(req);
        free(target);
    }
    /* not HTTP at all: libmicrohttpd closes without a word */
    int fd = connect_to(p);
    cr_assert(send_all(fd, "GARBAGE\r\n\r\n", 11));
    cr_assert(closed_within(fd, 2000));
    close(fd);
    const char *bad[] = {
        "GET /x\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n",
        "GET /x HTTP/1.1\r\n\r\n", /* HTTP/1.1 without Host */
        "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fd = connect_to(p);
        cr_assert(send_all(fd, bad[i], strlen(bad[i])));
        reply r;
        cr_assert(read_reply(fd, &r), "no answer to %s", bad[i]);
        cr_assert_eq(r.status, 400, "%d for %s", r.status, bad[i]);
        reply_free(&r);
        close(fd);
    }
    cr_assert_eq(atomic_load(&c.calls), 0, "the handler saw a malformed request");
    omo_http_stop(s);
}

Test(http_abuse, hundreds_of_idle_connections_cost_no_thread)
{
    echo_ctx c = {0};
    int p;
    omo_http_server *s = start_conf((omo_http_conf){0}, &c, &p);
    int before = thread_count();
    enum { IDLE = 300 };
    int fds[IDLE];
    for (int i = 0; i < IDLE; i++) {
        fds[i] = connect_from(2 + i % 3, p);
        cr_assert_geq(fds[i], 0);
        if (i % 2)
            cr_assert(send_all(fds[i], "GET /x HT", 9)); /* half of them mid-request */
    }
    sleep_ms(200);
    int during = thread_count();
    double t0 = now_ms();
    int fd = connect_to(p);
    cr_assert_eq(get_status(fd, "/x"), 200);
    double took = now_ms() - t0;
    close(fd);
    cr_log_info("threads %d before, %d with %d connections open; answered in %.1f ms", before,
                during, IDLE, took);
    cr_assert_leq(during, before, "connections cost threads: %d before, %d after", before, during);
    cr_assert_lt(took, 1000);
    for (int i = 0; i < IDLE; i++)
        close(fds[i]);
    omo_http_stop(s);
}

/* ---- HTTPS ---- */

static bool make_cert(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/omo-tls-XXXXXX");
    if (!mkdtemp(dir))
        return false;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             dir, dir);
    return system(cmd) == 0;
}

Test(http_tls, serves_https_with_the_given_files)
{
    char dir[64], cert[128], key[128];
    cr_assert(make_cert(dir, sizeof dir), "openssl could not make a certificate");
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    echo_ctx c = {0};
    int p;
    omo_http_server *s = start_conf((omo_http_conf){.tls_cert = cert, .tls_key = key}, &c, &p);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "curl -sS --max-time 10 --cacert %s -H 'Authorization: Bearer t0k' "
             "https://127.0.0.1:%d/tls?x=1",
             cert, p);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    char out[2048] = "";
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    cr_assert_eq(pclose(f), 0, "curl failed: %s", out);
    cr_assert(strstr(out, "\"path\":\"/tls\"") && strstr(out, "\"bearer\":\"t0k\""), "%s", out);
    /* in clear, the same port answers nothing a client could read */
    int fd = connect_to(p);
    reply r;
    cr_assert(!send_request(fd, "GET", "/x", NULL, NULL, 0) || !read_reply(fd, &r) ||
              r.status == 0 || r.status == 400);
    close(fd);
    omo_http_stop(s);

    /* a key that does not exist: start says which */
    char err[256];
    omo_http_conf bad = {.listen = "127.0.0.1:0", .tls_cert = cert, .tls_key = "/nonexistent.pem"};
    cr_assert_null(omo_http_start_conf(&bad, echo, &c, err, sizeof err));
    cr_assert(strstr(err, "tls_key /nonexistent.pem"), "%s", err);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
