/* A growing string, for the renderings (reports, pick lists, explanations, HTTP bodies). */
#ifndef OMO_STRBUF_H
#define OMO_STRBUF_H

#include <stddef.h>

typedef struct omo_strbuf {
    char *p; /* NUL-terminated once anything is written; the owner frees it */
    size_t len, cap;
} omo_strbuf;

void omo_strbuf_put(omo_strbuf *sb, const char *s, size_t n);
void omo_strbuf_puts(omo_strbuf *sb, const char *s);
void omo_strbuf_putc(omo_strbuf *sb, char c);
void omo_strbuf_printf(omo_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Length of the valid UTF-8 sequence at s, or 0 when the byte there starts none. */
size_t omo_utf8_seq(const unsigned char *s);

#endif
