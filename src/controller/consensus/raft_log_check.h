/* raft_log_check.h: checks libraft 0.15's segment files before libraft loads them.
 *
 * libraft 0.15 (also with auto-recovery off) stops loading an open segment at its first
 * batch that fails to decode or whose checksum is wrong, truncates the file there and
 * reports nothing: a flipped byte in the middle of an open segment silently cuts off every
 * entry after it. This module reads the segments itself and tells the two cases apart:
 *   - a torn tail: the last batch of the last written open segment was cut by a crash, and
 *     no valid batch follows it (only the zeros of the preallocated file, or the rest of
 *     the cut write). Normal after kill -9 or a power loss; accepted (libraft drops it).
 *   - damage: a bad batch with a valid batch after it (in the same open segment or a later
 *     one), a closed segment with any bad batch or another entry count than its name says,
 *     an unknown format version, a file shorter than its header. Refused.
 * Whether a torn tail took away an entry that had been durably appended is not visible in
 * the segment; raft_log_mark.h catches that.
 *
 * Segment format (libraft 0.15, little endian): u64 format version (1); then batches, each
 * u32 header CRC, u32 data CRC, u64 entry count N, N entry headers (u64 term, u8 type, 3
 * unused bytes, u32 size), then the entries' data. Both CRCs are libraft's CRC-32 (poly
 * 0x04C11DB7, MSB first, initial 0, no final xor) over the batch header (count included) and
 * over the data. Closed segments are named "%016llu-%016llu" (first-last index), open ones
 * "open-%llu" (loaded in counter order). Blocking file I/O: call before the loop runs. */
#ifndef VIGIL_RAFT_LOG_CHECK_H
#define VIGIL_RAFT_LOG_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one segment holds, as raft_log_check_segment found it. */
struct raft_log_check_result {
    uint64_t entries;   /* entries in the valid batches */
    size_t valid_end;   /* byte offset just past the last valid batch (8 for none) */
    bool torn;          /* open segment: a cut batch at valid_end, nothing valid after it */
};

/* Checks the bytes DATA[0..LEN) (borrowed) of one segment. NAME (borrowed) is the file's
 * name, used in messages and, for a closed segment, for its entry count. OPEN says whether
 * it is an open segment (a torn tail is accepted) or a closed one (every byte must be in a
 * valid batch). Returns 0 and fills *OUT, or VIGIL_ECORRUPT with a one-line reason in ERR
 * naming NAME and the byte offset of the damage (OUT then undefined). An empty or all-zero
 * open segment (preallocated, never written) is valid and holds no entries. */
int raft_log_check_segment(const char *name, const unsigned char *data, size_t len, bool open,
                           struct raft_log_check_result *out, char *err, size_t errlen);

/* Checks every segment file in DIR (borrowed; files that are not segments are ignored),
 * closed ones and open ones in counter order; a torn tail is accepted only in the last open
 * segment that holds entries. Returns 0 (also for a missing or empty DIR), VIGIL_ECORRUPT
 * with "damaged raft log: DIR/FILE: ... at byte N ..." in ERR, VIGIL_EIO when a file
 * cannot be read, or VIGIL_ENOMEM. ERR is one line. */
int raft_log_check_dir(const char *dir, char *err, size_t errlen);

/* libraft's CRC-32 of DATA[0..LEN) (borrowed), continued from CRC (0 to start). */
uint32_t raft_log_check_crc32(const void *data, size_t len, uint32_t crc);

#endif
