/* log_seq.h: the sequence numbers of log records, never reused across restarts.
 *
 * Numbers are reserved in blocks: the file (DIR/log.seq for the access-log records,
 * DIR/metrics.seq for the per-second metrics) holds the first number not yet
 * reserved, written (and fsynced) before any number of a block is handed out. A clean
 * stop writes the exact next number, so a restart continues without a gap; after a crash
 * the numbers left in the reserved block are skipped, never reused. Loop thread only. */
#ifndef VIGIL_SE_LOG_SEQ_H
#define VIGIL_SE_LOG_SEQ_H

#include <stdint.h>

#define LOG_SEQ_BLOCK 4096

struct log_seq;

/* Opens (creating) DIR/FILE (both borrowed) and reserves the first block. Returns 0 and the new
 * sequence in *OUT (caller frees with log_seq_close), VIGIL_ECORRUPT when the file holds
 * no number, or VIGIL_EIO. */
int log_seq_open(const char *dir, const char *file, struct log_seq **out);

/* The next number (the first is 1). Reserves a new block when needed; if that write fails
 * the number is still unique within this run, and the failure is logged. */
uint64_t log_seq_next(struct log_seq *seq);

/* Writes the exact next number and frees SEQ. */
void log_seq_close(struct log_seq *seq);

#endif
