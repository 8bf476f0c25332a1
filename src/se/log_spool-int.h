/* log_spool-int.h: the spool's private state, shared by its parts: log_spool.c (the sink,
 * writing, fsync, ack, cap) and log_spool_read.c (the frame reader, recovery, peek). */
#ifndef VIGIL_SE_LOG_SPOOL_INT_H
#define VIGIL_SE_LOG_SPOOL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "se/log_spool.h"

#define LOG_SPOOL__HEADER 20 /* magic, length, seq, crc */
#define LOG_SPOOL__FRAME_MAX (LOG_SPOOL__HEADER + LOG_RECORD_LINE_MAX)
#define LOG_SPOOL__WINDOW (256 * 1024) /* the reader's buffer, above one frame */

extern const unsigned char log_spool__magic[4];

/* One segment file, as far as it was written. */
struct log_spool__segment {
    uint64_t number;
    uint64_t first_seq; /* 0 while it holds no record */
    uint64_t last_seq;
    uint64_t records;
    uint64_t acked;     /* records in it at or below the ack mark */
    uint64_t bytes;     /* bytes of valid frames and damage: the reader's end */
};

/* A reader over one segment: frames from POS on, read through a window buffer. */
struct log_spool__reader {
    int fd;
    uint64_t end;       /* stop here (the segment's bytes) */
    uint64_t pos;       /* next byte to parse */
    char *window;       /* borrowed from the spool */
    uint64_t window_at; /* file offset of window[0] */
    size_t window_len;
};

/* A valid frame the reader found; PAYLOAD points into the window. */
struct log_spool__frame {
    uint64_t at; /* file offset of its header */
    uint64_t seq;
    const char *payload;
    size_t len;
    uint64_t skipped; /* bad bytes before it (damage), 0 normally */
};

struct log_spool {
    struct log_sink base;
    uv_loop_t *loop;
    const char *se_name;
    char *dir; /* DIR/spool */
    struct log_spool_options opts;

    struct log_spool__segment *segments; /* oldest first; the last one is written to */
    size_t segment_count;
    size_t segment_alloc;
    uint64_t next_number;
    int fd;                   /* the newest segment, -1 when none is open */
    uint64_t ack_offset;      /* in segments[0]: frames before it are acked */
    uint64_t acked_through;   /* the ack mark */
    uint64_t last_seq;        /* highest seq appended */
    uint64_t bytes;           /* segment bytes on disk plus the batch */
    uint64_t unsynced;        /* bytes written since the last fsync started */
    bool dir_unsynced;        /* a segment was created since the last fsync started */
    uint64_t read_hint_number; /* where the last peek stopped: segment, offset, and */
    uint64_t read_hint_offset; /* every frame before it there has a seq below */
    uint64_t read_hint_below;

    struct buf batch;         /* frames not written yet */
    uint64_t batch_records;
    uint64_t batch_first_seq;

    uv_check_t check;         /* writes the batch at the end of the iteration */
    uv_idle_t idle;           /* active while a batch waits: the poll does not block */
    uv_timer_t sync_timer;    /* one shot: the fsync LOG_SPOOL__SYNC_MS after the first
                               * unsynced write (none runs while nothing is written) */
    unsigned handles_open;
    unsigned syncs_in_flight;
    bool closing;
    void (*on_written)(void *arg); /* log_spool_set_on_written's */
    void *on_written_arg;

    bool in_drop_episode;
    uint64_t drop_episodes;
    uint64_t episode_drops;
    uint64_t newest_episode_drops; /* episode_drops of the newest episode, kept after it ends */
    struct log_sink_stats stats; /* spooled is computed */
    uint64_t unacked;            /* records written, above the ack mark */
    struct log_spool_recovery recovery;
    char *scratch;               /* LOG_SPOOL__FRAME_MAX bytes: one frame being encoded */
    char *window;                /* LOG_SPOOL__WINDOW + LOG_SPOOL__FRAME_MAX bytes */
};

/* Fills PATH (CAP bytes) with the file name of segment NUMBER. */
void log_spool__segment_path(const struct log_spool *s, uint64_t number, char *path, size_t cap);

/* Starts a reader on segment SEG from offset FROM (open fd; the caller closes R->fd).
 * Returns 0 or VIGIL_EIO. */
int log_spool__reader_open(struct log_spool *s, const struct log_spool__segment *seg,
                           uint64_t from, struct log_spool__reader *r);

/* The next valid frame at or after R->pos, resynchronising over bad bytes. Returns 1 and
 * *F (R->pos then points after it), 0 at the end (R->pos is where valid data stopped: the
 * bytes from there to R->end are a tail with no valid frame), or VIGIL_EIO. */
int log_spool__reader_next(struct log_spool__reader *r, struct log_spool__frame *f);

/* Reads DIR/spool at open: the ack mark, every segment (truncating a torn tail of the newest
 * one, logging damage), deleting the ones wholly acked. Fills S's segment list, counters and
 * recovery report. Returns 0, VIGIL_ECORRUPT, VIGIL_EIO or VIGIL_ENOMEM. */
int log_spool__recover(struct log_spool *s);

/* Writes the pending batch to the newest segment (starting one when none is open); a
 * failed write drops the batch (counted, logged) and cuts the segment back. */
void log_spool__write_batch(struct log_spool *s);

/* Appends a segment entry for NUMBER to S's list. Returns 0 or VIGIL_ENOMEM. */
int log_spool__add_segment(struct log_spool *s, uint64_t number);

#endif
