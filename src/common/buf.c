/* buf.c: a growable byte buffer (see buf.h). */
#include "common/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (len > SIZE_MAX - b->len)
        return VIGIL_ENOMEM;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
        char *p;
        while (cap < b->len + len) {
            if (cap > SIZE_MAX / 2)
                return VIGIL_ENOMEM;
            cap *= 2;
        }
        p = realloc(b->data, cap);
        if (p == NULL)
            return VIGIL_ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int buf_append_text(struct buf *b, const void *data, size_t len)
{
    size_t before = b->len;
    int rv = buf_append(b, data, len);
    if (rv != 0)
        return rv;
    rv = buf_append(b, "", 1); /* room for the NUL, then not counted */
    if (rv != 0) {
        b->len = before;
        return rv;
    }
    b->len--;
    return 0;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void buf_trim(struct buf *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep)
        buf_free(b);
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}
