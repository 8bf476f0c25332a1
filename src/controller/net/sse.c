/* sse.c: Server-Sent Events framing (sse.h). */
#include "controller/net/sse.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/errors.h"

/* Appends LEN bytes of TEXT to OUT, remembering the first failure in *ERR. */
static void sse__put(struct buf *out, const char *text, size_t len, int *err)
{
    if (*err == 0 && len > 0)
        *err = buf_append(out, text, len);
}

static int sse__one_line(const char *text)
{
    return strpbrk(text, "\r\n") == NULL;
}

int sse_append_message(struct buf *out, const char *event, uint64_t id, const char *data,
                       size_t len)
{
    size_t start = out->len, pos = 0;
    int err = 0;

    if (event != NULL && !sse__one_line(event))
        return VIGIL_EINVAL;
    if (event != NULL) {
        sse__put(out, "event: ", 7, &err);
        sse__put(out, event, strlen(event), &err);
        sse__put(out, "\n", 1, &err);
    }
    if (id != 0) {
        char line[40];
        int n = snprintf(line, sizeof line, "id: %" PRIu64 "\n", id);
        sse__put(out, line, (size_t)n, &err);
    }
    /* One data line per line of DATA; a line ends at \n, \r\n or \r. */
    do {
        size_t end = pos;
        while (end < len && data[end] != '\n' && data[end] != '\r')
            end++;
        sse__put(out, "data: ", 6, &err);
        sse__put(out, data + pos, end - pos, &err);
        sse__put(out, "\n", 1, &err);
        if (end < len && data[end] == '\r' && end + 1 < len && data[end + 1] == '\n')
            end++;
        pos = end + 1;
    } while (pos <= len); /* pos == len: DATA ended with a line end, an empty line follows */
    sse__put(out, "\n", 1, &err);
    if (err != 0)
        out->len = start;
    return err;
}

int sse_append_comment(struct buf *out, const char *text)
{
    size_t start = out->len;
    int err = 0;

    if (!sse__one_line(text))
        return VIGIL_EINVAL;
    sse__put(out, ": ", 2, &err);
    sse__put(out, text, strlen(text), &err);
    sse__put(out, "\n\n", 2, &err);
    if (err != 0)
        out->len = start;
    return err;
}
