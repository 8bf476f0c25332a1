/* http_hop.c: the hop-by-hop lines of a rebuilt HTTP/1.x head (see http_hop.h). */
#include "se/http_hop.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "common/errors.h"

/* The names a head's Connection lines list, copied (the lines move while they are used). */
struct http_hop__names {
    char bytes[HTTP_HOP_NAMES_BYTES];
    uint16_t off[HTTP_HOP_NAMES_MAX];
    uint16_t len[HTTP_HOP_NAMES_MAX];
    unsigned n;
    uint32_t used;
};

/* One header line: its name at start (name_len bytes), its value (without the spaces
 * after the colon), and end, the offset just after its CRLF. */
struct http_hop__line {
    uint32_t start, name_len, value_off, value_len, end;
};

static bool http_hop__is(const char *name, size_t len, const char *lit)
{
    return len == strlen(lit) && strncasecmp(name, lit, len) == 0;
}

/* Reads the header line at HEAD[AT, LEN) into *L. Returns false at the end, or on text
 * that is not a "Name: value\r\n" line (the rebuild makes none; what follows is kept). */
static bool http_hop__line_at(const char *head, uint32_t len, uint32_t at,
                              struct http_hop__line *l)
{
    const char *p = head + at, *cr, *colon;

    if (at >= len)
        return false;
    cr = memchr(p, '\r', len - at);
    colon = memchr(p, ':', len - at);
    if (cr == NULL || colon == NULL || colon > cr || cr + 1 >= head + len || cr[1] != '\n')
        return false;
    l->start = at;
    l->name_len = (uint32_t)(colon - p);
    l->value_off = (uint32_t)(colon + 1 - head);
    while (head + l->value_off < cr && (head[l->value_off] == ' ' || head[l->value_off] == '\t'))
        l->value_off++;
    l->value_len = (uint32_t)(cr - head) - l->value_off;
    l->end = (uint32_t)(cr + 2 - head);
    return true;
}

/* What a line's name alone decides under FLAGS: 1 the line goes, 0 it stays, -1 it goes
 * only when a Connection line names it. */
static int http_hop__by_name(unsigned flags, const char *name, size_t len)
{
    if (http_hop__is(name, len, "connection") || http_hop__is(name, len, "keep-alive") ||
        http_hop__is(name, len, "proxy-connection") || http_hop__is(name, len, "te") ||
        http_hop__is(name, len, "upgrade"))
        return 1;
    if (http_hop__is(name, len, "content-length") || http_hop__is(name, len, "transfer-encoding"))
        return (flags & HTTP_HOP_FRAMING) != 0;
    if (http_hop__is(name, len, "host"))
        return (flags & HTTP_HOP_HOST) != 0;
    return -1;
}

/* Adds to *NAMES the comma-separated names of a Connection value V (LEN bytes) that
 * matter: not the ones decided by name alone, nor "close". Returns 0 or VIGIL_EINVAL (over
 * HTTP_HOP_NAMES_MAX names or HTTP_HOP_NAMES_BYTES bytes). */
static int http_hop__collect(struct http_hop__names *names, unsigned flags, const char *v,
                             size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t start, end;
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        start = i;
        while (i < len && v[i] != ',')
            i++;
        end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end == start || http_hop__by_name(flags, v + start, end - start) != -1 ||
            http_hop__is(v + start, end - start, "close"))
            continue;
        if (names->n == HTTP_HOP_NAMES_MAX || names->used + (end - start) > HTTP_HOP_NAMES_BYTES)
            return VIGIL_EINVAL;
        memcpy(names->bytes + names->used, v + start, end - start);
        names->off[names->n] = (uint16_t)names->used;
        names->len[names->n] = (uint16_t)(end - start);
        names->used += (uint32_t)(end - start);
        names->n++;
    }
    return 0;
}

static bool http_hop__named(const struct http_hop__names *names, const char *name, size_t len)
{
    for (unsigned i = 0; i < names->n; i++)
        if (names->len[i] == len && strncasecmp(names->bytes + names->off[i], name, len) == 0)
            return true;
    return false;
}

/* One pass over HEAD[FROM, *LEN): drops the lines that go by name or by the NAMES known so
 * far, moving TRACK; with COLLECT, first adds each Connection line's names to NAMES (a
 * named line before its Connection line stays: a second pass takes it). Lines only move
 * towards the start, so a line is read before anything is written over it. Returns 0 or
 * VIGIL_EINVAL (too many names; HEAD is then half done). */
static int http_hop__pass(char *head, uint32_t *len, uint32_t from, unsigned flags,
                          struct http_hop__names *names, bool collect,
                          struct http_hop_span *track)
{
    struct http_hop__line l;
    uint32_t at, out = from;

    for (at = from; http_hop__line_at(head, *len, at, &l); at = l.end) {
        const char *name = head + l.start;
        int verdict = http_hop__by_name(flags, name, l.name_len);
        bool tracked = track != NULL && track->len > 0 && track->off >= l.start &&
                       track->off < l.end;
        if (collect && verdict == 1 && http_hop__is(name, l.name_len, "connection") &&
            http_hop__collect(names, flags, head + l.value_off, l.value_len) != 0)
            return VIGIL_EINVAL;
        if (verdict == 1 || (verdict == -1 && http_hop__named(names, name, l.name_len))) {
            if (tracked)
                track->off = track->len = 0;
            continue;
        }
        if (tracked)
            track->off -= at - out;
        if (out != at)
            memmove(head + out, head + at, l.end - at);
        out += l.end - at;
    }
    if (at < *len) {
        memmove(head + out, head + at, *len - at);
        out += *len - at;
    }
    *len = out;
    head[out] = '\0';
    return 0;
}

int http_hop_strip(char *head, uint32_t *len, uint32_t from, unsigned flags,
                   struct http_hop_span *track)
{
    struct http_hop__names names;

    names.n = 0;
    names.used = 0;
    if (track != NULL && track->len == 0)
        track->off = 0; /* none: its offset may be past the head's new end */
    if (http_hop__pass(head, len, from, flags, &names, true, track) != 0)
        return VIGIL_EINVAL;
    /* Most heads name nothing that matters ("keep-alive", "close"): one pass. */
    if (names.n > 0)
        (void)http_hop__pass(head, len, from, flags, &names, false, track);
    return 0;
}

bool http_hop_host_valid(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("-._~%!$&'()*+,;=:[]", ch) != NULL) || ch == '\0')
            return false;
    }
    return true;
}

int http_hop_absolute(const char *t, size_t len, struct http_hop_span *authority,
                      uint32_t *path_off)
{
    size_t scheme, end;

    if (len == 0 || t[0] == '/' || (len == 1 && t[0] == '*'))
        return 0;
    if (len >= 7 && strncasecmp(t, "http://", 7) == 0)
        scheme = 7;
    else if (len >= 8 && strncasecmp(t, "https://", 8) == 0)
        scheme = 8;
    else
        return VIGIL_EINVAL;
    end = scheme;
    while (end < len && t[end] != '/' && t[end] != '?' && t[end] != '#')
        end++;
    if (end == scheme || !http_hop_host_valid(t + scheme, end - scheme))
        return VIGIL_EINVAL; /* empty, or not a host[:port] (userinfo's '@' included) */
    authority->off = (uint32_t)scheme;
    authority->len = (uint32_t)(end - scheme);
    *path_off = (uint32_t)end;
    return 1;
}

unsigned http_hop_take(char *head, uint32_t *len, uint32_t from, const char *name,
                       char *values, size_t cap, struct http_hop_span *track)
{
    struct http_hop__line l;
    uint32_t at, out = from;
    size_t used = 0;
    unsigned taken = 0;

    if (cap > 0)
        values[0] = '\0';
    for (at = from; http_hop__line_at(head, *len, at, &l); at = l.end) {
        bool tracked = track != NULL && track->len > 0 && track->off >= l.start &&
                       track->off < l.end;
        if (http_hop__is(head + l.start, l.name_len, name)) {
            uint32_t n = l.value_len;
            while (n > 0 && (head[l.value_off + n - 1] == ' ' || head[l.value_off + n - 1] == '\t'))
                n--;
            if (n > 0 && used + (used ? 2 : 0) + n < cap) {
                if (used) {
                    memcpy(values + used, ", ", 2);
                    used += 2;
                }
                memcpy(values + used, head + l.value_off, n);
                used += n;
                values[used] = '\0';
            }
            if (tracked)
                track->off = track->len = 0;
            taken++;
            continue;
        }
        if (tracked)
            track->off -= at - out;
        if (out != at)
            memmove(head + out, head + at, l.end - at);
        out += l.end - at;
    }
    if (at < *len) {
        memmove(head + out, head + at, *len - at);
        out += *len - at;
    }
    *len = out;
    head[out] = '\0';
    return taken;
}
