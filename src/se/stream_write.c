/* stream_write.c: direct writes first, a copy for the rest (see stream_write.h). */
#include "se/stream_write.h"

#include <stdlib.h>
#include <string.h>

struct stream_write__req {
    uv_write_t req; /* first: the uv_write_t the callback gets is this struct */
    void *owner;
    char data[];
};

int stream_write(uv_stream_t *stream, const uv_buf_t *bufs, unsigned nbufs, int *pending,
                 uv_write_cb cb, void *owner)
{
    size_t total = 0, skip, off = 0;
    struct stream_write__req *w;
    uv_buf_t rest;
    int n, err;

    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    n = *pending == 0 ? uv_try_write(stream, bufs, nbufs) : UV_EAGAIN;
    if (n < 0 && n != UV_EAGAIN)
        return n;
    if (n < 0)
        n = 0;
    if ((size_t)n == total)
        return 0;
    w = malloc(sizeof *w + total - (size_t)n);
    if (w == NULL)
        return UV_ENOMEM;
    skip = (size_t)n;
    for (unsigned i = 0; i < nbufs; i++) {
        if (skip >= bufs[i].len) {
            skip -= bufs[i].len;
            continue;
        }
        memcpy(w->data + off, bufs[i].base + skip, bufs[i].len - skip);
        off += bufs[i].len - skip;
        skip = 0;
    }
    w->owner = owner;
    rest = uv_buf_init(w->data, (unsigned)off);
    err = uv_write(&w->req, stream, &rest, 1, cb);
    if (err != 0) {
        free(w);
        return err;
    }
    (*pending)++;
    return 0;
}

void *stream_write_done(uv_write_t *req)
{
    struct stream_write__req *w = (struct stream_write__req *)req;
    void *owner = w->owner;
    free(w);
    return owner;
}
