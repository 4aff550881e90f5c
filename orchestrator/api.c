/* HTTP requests as the core sees them: helpers over omo_http_request. */
#include "api.h"

#include <stdbool.h>
#include <string.h>

int omo_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the form-encoded byte at src[*i] ('+' is a space, %XX a byte, a stray '%' stays),
 * advancing *i past it. */
static char form_byte(const char *src, size_t n, size_t *i)
{
    char c = src[*i];
    int hi, lo;
    if (c == '+') {
        c = ' ';
    } else if (c == '%' && *i + 2 < n && (hi = omo_hex_value(src[*i + 1])) >= 0 &&
               (lo = omo_hex_value(src[*i + 2])) >= 0) {
        c = (char)(hi * 16 + lo);
        *i += 2;
    }
    (*i)++;
    return c;
}

/* True when the n form-encoded bytes of src decode to name. */
static bool form_equals(const char *src, size_t n, const char *name)
{
    size_t i = 0;
    while (i < n) {
        char c = form_byte(src, n, &i);
        if (!c || c != *name++)
            return false;
    }
    return !*name;
}

/* Decodes n form-encoded bytes of src into buf. False when the result does not fit or holds a
 * NUL byte. */
static bool form_decode(const char *src, size_t n, char *buf, size_t len)
{
    size_t o = 0, i = 0;
    while (i < n) {
        char c = form_byte(src, n, &i);
        if (!c || o + 1 >= len)
            return false;
        buf[o++] = c;
    }
    buf[o] = '\0';
    return true;
}

/* The first `name` wins; `name` alone (no '=') has the empty value. A value that does not fit
 * in buf, or that decodes to a NUL byte, counts as absent rather than being cut short. */
const char *omo_query_param(const char *query, const char *name, char *buf, size_t len)
{
    if (!query || !name || !*name || !buf || !len)
        return NULL;
    for (const char *p = query; *p;) {
        size_t pair_len = strcspn(p, "&");
        const char *eq = memchr(p, '=', pair_len);
        size_t key_len = eq ? (size_t)(eq - p) : pair_len;
        if (form_equals(p, key_len, name)) {
            const char *value = eq ? eq + 1 : p + pair_len;
            size_t value_len = (size_t)(p + pair_len - value);
            return form_decode(value, value_len, buf, len) ? buf : NULL;
        }
        p += pair_len;
        if (*p == '&')
            p++;
    }
    return NULL;
}
