/* stream_write.h: the proxies' one way of writing to a libuv stream: what the kernel takes
 * now is written at once (uv_try_write, no copy), the rest is copied into a write request.
 * Loop thread only. */
#ifndef VIGIL_SE_STREAM_WRITE_H
#define VIGIL_SE_STREAM_WRITE_H

#include <uv.h>

/* Writes the NBUFS buffers BUFS (borrowed, needed only during the call) to STREAM, in
 * order after the writes still pending (*PENDING counts them: direct writes happen only
 * while it is 0). What is left is copied into a write request: *PENDING goes up and CB
 * runs when it is done; CB must call stream_write_done. Returns 0, UV_ENOMEM, or the
 * error of uv_try_write / uv_write (e.g. UV_EPIPE; then nothing is pending for it). */
int stream_write(uv_stream_t *stream, const uv_buf_t *bufs, unsigned nbufs, int *pending,
                 uv_write_cb cb, void *owner);

/* In the write callback: frees REQ's copy and returns the OWNER given to stream_write. The
 * caller decrements its pending count. */
void *stream_write_done(uv_write_t *req);

#endif
