/* log_file.h: the standalone log sink: records as JSON lines in DIR/access.log, written
 * in batches (when the buffer fills, and every 100 ms), rotated by size into
 * access.log.1 .. access.log.N. Loop thread only. */
#ifndef VIGIL_SE_LOG_FILE_H
#define VIGIL_SE_LOG_FILE_H

#include <stdint.h>
#include <uv.h>

#include "se/log_sink.h"

struct log_file_options {
    uint64_t rotate_bytes; /* rotate when the file reaches this size (0: 100 MB) */
    unsigned keep;         /* rotated files kept (0: 5) */
};

/* Opens DIR/access.log for appending, on LOOP. SE_NAME (borrowed, must outlive the sink)
 * goes into each record. Returns 0 and the sink in *OUT (freed by log_sink_close) or
 * VIGIL_EIO / VIGIL_ENOMEM. */
int log_file_open(uv_loop_t *loop, const char *dir, const char *se_name,
                  const struct log_file_options *opts, struct log_sink **out);

#endif
