/* buf.h: a growable byte buffer. The struct is embedded by its owner (no allocation until
 * the first append); its storage belongs to it and is freed by buf_free. Not thread-safe:
 * one owner, one thread. */
#ifndef VIGIL_COMMON_BUF_H
#define VIGIL_COMMON_BUF_H

#include <stddef.h>

/* The first storage an append allocates; it then doubles. */
#define BUF_MIN_CAP 4096

struct buf {
    char *data; /* LEN bytes in use, CAP allocated; NULL while CAP is 0 */
    size_t len;
    size_t cap;
};

/* An empty buffer (same as zeroing it). */
void buf_init(struct buf *b);

/* Appends LEN bytes of DATA (borrowed; not inside B's own storage), growing the storage
 * (BUF_MIN_CAP, then doubling). Returns 0, or VIGIL_ENOMEM (then B is unchanged). */
int buf_append(struct buf *b, const void *data, size_t len);

/* Like buf_append, and keeps a NUL byte after the data (not counted in LEN), so that
 * B->data reads as a C string (bodies handed to JSON parsers). Returns 0, or VIGIL_ENOMEM
 * (then B is unchanged). */
int buf_append_text(struct buf *b, const void *data, size_t len);

/* Drops the first N bytes (N <= len; more drops everything); the rest moves to the front. */
void buf_consume(struct buf *b, size_t n);

/* When B is empty and holds more than KEEP bytes of storage, frees the storage (a burst of
 * input does not pin memory). */
void buf_trim(struct buf *b, size_t keep);

/* Frees the storage; B is empty afterwards and may be used again. */
void buf_free(struct buf *b);

#endif
