/* http_chunked.c: strict chunked framing (see http_chunked.h). */
#include "se/http_chunked.h"

#include <stdbool.h>
#include <string.h>

enum {
    HC_SIZE_FIRST = 0, /* a chunk line's first byte: a hex digit */
    HC_SIZE,           /* more hex digits, whitespace, ';' or CR */
    HC_SIZE_WS,        /* whitespace after the size: more, ';' or CR */
    HC_EXT,            /* an extension, up to CR */
    HC_SIZE_LF,        /* the chunk line's LF */
    HC_DATA,           /* LEFT data bytes */
    HC_DATA_CR,        /* the CRLF after the data */
    HC_DATA_LF,
    HC_TRAILER_FIRST,  /* a trailer line's first byte, or the final CR */
    HC_TRAILER_NAME,   /* token bytes up to ':' */
    HC_TRAILER_VALUE,  /* value bytes up to CR */
    HC_TRAILER_LF,
    HC_END_LF,         /* the final LF */
    HC_DONE,
    HC_BAD
};

void http_chunked_init(struct http_chunked *c)
{
    memset(c, 0, sizeof *c);
}

static int http_chunked__hex(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
        return (ch | 0x20) - 'a' + 10;
    return -1;
}

static bool http_chunked__tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* HTAB, SP, VCHAR, obs-text (RFC 9110 5.5). */
static bool http_chunked__text(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

/* The state after byte CH in state S of C, or HC_BAD. */
static uint8_t http_chunked__step(struct http_chunked *c, uint8_t s, unsigned char ch)
{
    int d;

    switch (s) {
    case HC_SIZE_FIRST:
    case HC_SIZE:
        if ((d = http_chunked__hex(ch)) >= 0) {
            if (c->digits == 16)
                return HC_BAD; /* over 64 bits */
            c->left = c->left * 16 + (uint64_t)d;
            c->digits += c->left != 0;
            c->zero = c->left == 0;
            return HC_SIZE;
        }
        if (s == HC_SIZE_FIRST)
            return HC_BAD;
        /* fall through - the size is read */
    case HC_SIZE_WS:
        return ch == ' ' || ch == '\t' ? HC_SIZE_WS : ch == ';' ? HC_EXT : ch == '\r' ? HC_SIZE_LF
                                                                               : HC_BAD;
    case HC_EXT:
        return ch == '\r' ? HC_SIZE_LF : http_chunked__text(ch) ? HC_EXT : HC_BAD;
    case HC_SIZE_LF:
        if (ch != '\n')
            return HC_BAD;
        c->digits = 0;
        return c->zero ? HC_TRAILER_FIRST : HC_DATA;
    case HC_DATA_CR:
        return ch == '\r' ? HC_DATA_LF : HC_BAD;
    case HC_DATA_LF:
        if (ch != '\n')
            return HC_BAD;
        c->left = 0;
        c->zero = 0;
        return HC_SIZE_FIRST;
    case HC_TRAILER_FIRST:
        return ch == '\r' ? HC_END_LF : http_chunked__tchar(ch) ? HC_TRAILER_NAME : HC_BAD;
    case HC_TRAILER_NAME:
        return ch == ':' ? HC_TRAILER_VALUE : http_chunked__tchar(ch) ? HC_TRAILER_NAME : HC_BAD;
    case HC_TRAILER_VALUE:
        return ch == '\r' ? HC_TRAILER_LF : http_chunked__text(ch) ? HC_TRAILER_VALUE : HC_BAD;
    case HC_TRAILER_LF:
        return ch == '\n' ? HC_TRAILER_FIRST : HC_BAD;
    case HC_END_LF:
        return ch == '\n' ? HC_DONE : HC_BAD;
    default:
        return HC_BAD; /* a byte after the end, or after a refusal */
    }
}

int http_chunked_scan(struct http_chunked *c, const char *p, size_t len, size_t *used)
{
    size_t i = 0;

    while (i < len) {
        if (c->state == HC_DATA) {
            size_t take = len - i < c->left ? len - i : (size_t)c->left;
            c->left -= take;
            i += take;
            if (c->left == 0)
                c->state = HC_DATA_CR;
            continue;
        }
        c->state = http_chunked__step(c, c->state, (unsigned char)p[i]);
        if (c->state == HC_BAD) {
            *used = i;
            return -1;
        }
        i++;
        if (c->state == HC_DONE) {
            *used = i;
            return 1;
        }
    }
    *used = i;
    return 0;
}
