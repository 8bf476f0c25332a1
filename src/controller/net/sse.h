/* sse.h: Server-Sent Events framing (the WHATWG "text/event-stream" format): messages and
 * comments appended to a buffer, ready to send. A message's data is split into one
 * "data:" line per line of it, on every line end the format knows (\n, \r\n and a lone
 * \r), so that no payload can end its message early or slip in a field of its own
 * ("id:", "event:", "retry:"). Pure functions, no I/O; any thread. */
#ifndef VIGIL_SSE_H
#define VIGIL_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Appends one message to OUT: "event: EVENT" (when EVENT is not NULL), "id: ID" (when ID is
 * not 0), one "data: ..." line per line of DATA (LEN bytes, borrowed; an empty DATA is one
 * empty data line), then the blank line that ends it. EVENT must be one line (no CR or LF;
 * VIGIL_EINVAL otherwise). Returns 0, VIGIL_EINVAL or VIGIL_ENOMEM; on an error OUT is
 * unchanged. */
int sse_append_message(struct buf *out, const char *event, uint64_t id, const char *data,
                       size_t len);

/* Appends the comment ": TEXT" and a blank line (a keep-alive ping that clients ignore)
 * to OUT. TEXT must be one line (VIGIL_EINVAL otherwise). Returns 0, VIGIL_EINVAL or
 * VIGIL_ENOMEM; on an error OUT is unchanged. */
int sse_append_comment(struct buf *out, const char *text);

#endif
