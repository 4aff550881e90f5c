#include "strbuf.h"

#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void omo_strbuf_put(omo_strbuf *sb, const char *s, size_t n)
{
    omo_grow((void **)&sb->p, &sb->cap, sb->len + n + 1, 1);
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    sb->p[sb->len] = 0;
}

void omo_strbuf_puts(omo_strbuf *sb, const char *s)
{
    omo_strbuf_put(sb, s, strlen(s));
}

void omo_strbuf_putc(omo_strbuf *sb, char c)
{
    omo_strbuf_put(sb, &c, 1);
}

void omo_strbuf_printf(omo_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    omo_grow((void **)&sb->p, &sb->cap, sb->len + (size_t)n + 1, 1);
    va_start(ap, fmt);
    vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

size_t omo_utf8_seq(const unsigned char *s)
{
    size_t n;
    unsigned min, cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0)
        n = 2, min = 0x80, cp = s[0] & 0x1F;
    else if ((s[0] & 0xF0) == 0xE0)
        n = 3, min = 0x800, cp = s[0] & 0x0F;
    else if ((s[0] & 0xF8) == 0xF0)
        n = 4, min = 0x10000, cp = s[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}
