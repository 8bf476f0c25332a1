#include "controller/consensus/fsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>
#include <uv.h>

#include "common/errors.h"
#include "common/vlog.h"
#include "controller/metrics/metrics.h"

#define FSM__MAGIC "VGC1"
/* Version 2 adds the index the leader appended the entry at (u64 after the length). */
#define FSM__MAGIC_AT "VGC2"
#define FSM__HEADER_AT 16
/* Version 3 adds the entry's id (u64 after the index): the proposer's unique tag. */
#define FSM__MAGIC_ID "VGC3"
#define FSM__HEADER_ID 24

int fsm_encode(json_t *cmd, struct raft_buffer *buf)
{
    return fsm_encode_at(cmd, 0, buf);
}

/* Lays out header (magic, length, index when not 0, entry id when not 0) and the PARTS of
 * the JSON text into a new padded raft buffer. */
static int fsm__encode_parts(const char *const parts[], const size_t lens[], unsigned n,
                             uint64_t index, uint64_t entry_id, struct raft_buffer *buf)
{
    size_t header = index == 0 ? FSM_HEADER_SIZE : entry_id == 0 ? FSM__HEADER_AT
                                                                 : FSM__HEADER_ID;
    size_t len = 0, padded, at;
    unsigned char *p;

    for (unsigned i = 0; i < n; i++)
        len += lens[i];
    if (len > UINT32_MAX)
        return VIGIL_ETOOBIG;
    padded = (header + len + 7) & ~(size_t)7;
    p = raft_calloc(1, padded);
    if (p == NULL)
        return VIGIL_ENOMEM;
    memcpy(p, header == FSM__HEADER_ID ? FSM__MAGIC_ID
              : header == FSM__HEADER_AT ? FSM__MAGIC_AT
                                         : FSM__MAGIC, 4);
    p[4] = (unsigned char)(len & 0xff);
    p[5] = (unsigned char)((len >> 8) & 0xff);
    p[6] = (unsigned char)((len >> 16) & 0xff);
    p[7] = (unsigned char)((len >> 24) & 0xff);
    for (int i = 0; index != 0 && i < 8; i++)
        p[8 + i] = (unsigned char)((index >> (8 * i)) & 0xff);
    for (int i = 0; header == FSM__HEADER_ID && i < 8; i++)
        p[16 + i] = (unsigned char)((entry_id >> (8 * i)) & 0xff);
    at = header;
    for (unsigned i = 0; i < n; i++) {
        memcpy(p + at, parts[i], lens[i]);
        at += lens[i];
    }
    buf->base = p;
    buf->len = padded;
    return 0;
}

int fsm_encode_at(json_t *cmd, uint64_t index, struct raft_buffer *buf)
{
    char *text = json_dumps(cmd, JSON_COMPACT);
    const char *parts[1];
    size_t lens[1];
    int rv;

    if (text == NULL)
        return VIGIL_ENOMEM;
    parts[0] = text;
    lens[0] = strlen(text);
    rv = fsm__encode_parts(parts, lens, 1, index, 0, buf);
    free(text);
    return rv;
}

int fsm_encode_batch_at(const char *const texts[], const size_t lens[], unsigned n,
                        uint64_t index, struct raft_buffer *buf)
{
    return fsm_encode_batch_id(texts, lens, n, index, 0, buf);
}

int fsm_encode_batch_id(const char *const texts[], const size_t lens[], unsigned n,
                        uint64_t index, uint64_t entry_id, struct raft_buffer *buf)
{
    const char *parts[2 * FSM_BATCH_MAX + 1];
    size_t plens[2 * FSM_BATCH_MAX + 1];
    unsigned k = 0;

    if (n == 0 || n > FSM_BATCH_MAX)
        return VIGIL_EINVAL;
    if (n == 1)
        return fsm__encode_parts(texts, lens, 1, index, entry_id, buf);
    for (unsigned i = 0; i < n; i++) {
        parts[k] = i == 0 ? "{\"op\":\"batch\",\"cmds\":[" : ",";
        plens[k] = strlen(parts[k]);
        k++;
        parts[k] = texts[i];
        plens[k++] = lens[i];
    }
    parts[k] = "]}";
    plens[k++] = 2;
    return fsm__encode_parts(parts, plens, k, index, entry_id, buf);
}

/* Makes the entry's outcome one refusal (a damaged entry, skipped on every node alike). */
static void fsm__refuse_entry(struct fsm_state *c, const char *why)
{
    c->results[0].outcome = STORE_INVALID;
    snprintf(c->results[0].error, sizeof c->results[0].error, "%s", why);
    c->last.n = 1;
}

static int fsm__apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct fsm_state *c = fsm->data;
    const unsigned char *p = buf->base;
    uint32_t len;
    unsigned n = 0;
    int rv;

    size_t header = FSM_HEADER_SIZE;

    for (unsigned i = 0; i < c->last.n; i++)
        store_result_clear(&c->results[i]);
    c->last.n = 0;
    c->last.results = c->results;
    *result = &c->last;
    if ((buf->len >= FSM__HEADER_AT && memcmp(p, FSM__MAGIC_AT, 4) == 0) ||
        (buf->len >= FSM__HEADER_ID && memcmp(p, FSM__MAGIC_ID, 4) == 0)) {
        uint64_t written_at = 0, entry_id = 0;
        header = memcmp(p, FSM__MAGIC_ID, 4) == 0 ? FSM__HEADER_ID : FSM__HEADER_AT;
        for (int i = 0; i < 8; i++)
            written_at |= (uint64_t)p[8 + i] << (8 * i);
        for (int i = 0; header == FSM__HEADER_ID && i < 8; i++)
            entry_id |= (uint64_t)p[16 + i] << (8 * i);
        c->applied_ids[written_at % FSM_ID_RING].index = written_at;
        c->applied_ids[written_at % FSM_ID_RING].id = entry_id;
        /* An entry found at another index than the one it was appended at means the log
         * lost entries before it (e.g. a deleted segment file): stop, never apply it. */
        if (c->raft != NULL && written_at != raft_last_applied(c->raft) + 1) {
            vlog_error("fsm: damaged raft log: the entry at index %llu was appended at index "
                       "%llu (entries are missing); stopping",
                       (unsigned long long)(raft_last_applied(c->raft) + 1),
                       (unsigned long long)written_at);
            fprintf(stderr, "vigild: damaged raft log in the data dir: entries are missing before "
                            "index %llu; start it with --rebuild to take the leader's state\n",
                    (unsigned long long)written_at);
            exit(2);
        }
    } else if (buf->len < FSM_HEADER_SIZE || memcmp(p, FSM__MAGIC, 4) != 0) {
        vlog_error("fsm: skipping an entry without our header (%zu bytes)", buf->len);
        fsm__refuse_entry(c, "malformed entry");
        return 0;
    }
    len = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
    if (len > buf->len - header) {
        vlog_error("fsm: skipping a truncated entry (%u of %zu bytes)", len, buf->len);
        fsm__refuse_entry(c, "truncated entry");
        return 0;
    }
    rv = store_apply_entry(c->store, (const char *)p + header, len, c->results, FSM_BATCH_MAX,
                           &n);
    c->last.n = n;
    if (rv == VIGIL_EINVAL) {
        fsm__refuse_entry(c, "unknown command");
        return 0;
    }
    if (rv != 0) {
        /* A committed entry that cannot be applied: continuing would diverge from the
         * other replicas. Stop; a restart rebuilds the store from snapshot + log. */
        vlog_error("fsm: cannot apply a committed entry (%s); stopping", vigil_strerror(rv));
        abort();
    }
    return 0;
}

/* A snapshot is our header, then the SQLite database: "VGSNAP01", the database's length
 * (u64, little endian), its BLAKE2b-256 hash. Restore refuses any mismatch, so a damaged
 * snapshot file is never loaded as if it were whole.
 *
 * Taking one (FSM version 3): fsm__snapshot runs on the loop and only copies the database
 * (sqlite3_serialize), which must not change while it is read; fsm__snapshot_async runs
 * in a libuv worker (raft's io->async_work) and hashes that private copy into the header,
 * the slow part, which stalled the loop (and every write's answer) for tens of
 * milliseconds on a large store; raft then writes the buffers and fsm__snapshot_finalize
 * frees them on the loop. */
#define FSM__SNAP_MAGIC "VGSNAP01"
#define FSM__SNAP_HEADER (8 + 8 + crypto_generichash_BYTES)

/* Fills H with the magic and LEN; the hash is left zero. */
static void fsm__snap_header_start(unsigned char *h, size_t len)
{
    memset(h, 0, FSM__SNAP_HEADER);
    memcpy(h, FSM__SNAP_MAGIC, 8);
    for (int i = 0; i < 8; i++)
        h[8 + i] = (unsigned char)(((uint64_t)len >> (8 * i)) & 0xff);
}

/* The full header of DATA (LEN bytes) into H. Touches only its arguments: safe off the
 * loop. */
static void fsm__snap_header(unsigned char *h, const void *data, size_t len)
{
    fsm__snap_header_start(h, len);
    crypto_generichash(h + 16, crypto_generichash_BYTES, data, len, NULL, 0);
}

static int fsm__snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    struct fsm_state *c = fsm->data;
    void *data;
    size_t len;
    unsigned char *header;
    uint64_t start = uv_hrtime();
    int rv = store_snapshot(c->store, &data, &len);

    /* libraft 0.15 touches nothing of a failed fsm->snapshot (we free what we took) and
     * retries RAFT_BUSY at the next threshold; any other code travels up to the receive
     * path on a leader, which then goes unavailable for good. */
    if (rv != 0)
        return RAFT_BUSY;
    *bufs = raft_malloc(2 * sizeof **bufs);
    header = malloc(FSM__SNAP_HEADER);
    if (*bufs == NULL || header == NULL) {
        raft_free(*bufs);
        *bufs = NULL;
        free(header);
        store_snapshot_done(c->store, data);
        return RAFT_BUSY;
    }
    fsm__snap_header_start(header, len); /* hashed by fsm__snapshot_async */
    c->snapshot_bytes = len + FSM__SNAP_HEADER;
    c->snapshot_started_ns = start;
    (*bufs)[0].base = header;
    (*bufs)[0].len = FSM__SNAP_HEADER;
    (*bufs)[1].base = data;
    (*bufs)[1].len = len;
    *n = 2;
    return 0;
}

/* In a worker thread, between fsm__snapshot and fsm__snapshot_finalize: BUFS are this
 * snapshot's own copy, so nothing here touches the store or the loop. */
static int fsm__snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    (void)fsm;
    if (*bufs == NULL || *n != 2)
        return RAFT_INVALID;
    fsm__snap_header((*bufs)[0].base, (*bufs)[1].base, (*bufs)[1].len);
    return 0;
}

static int fsm__snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                                  unsigned *n)
{
    struct fsm_state *c = fsm->data;

    if (*bufs != NULL && *n == 2) {
        free((*bufs)[0].base);
        store_snapshot_done(c->store, (*bufs)[1].base);
    }
    if (c->snapshot_started_ns != 0)
        metrics_observe(METRICS_SNAPSHOT_TAKE, metrics_seconds_since(c->snapshot_started_ns));
    c->snapshot_started_ns = 0;
    raft_free(*bufs);
    *bufs = NULL;
    *n = 0;
    return 0;
}

static int fsm__restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct fsm_state *c = fsm->data;
    const unsigned char *p = buf->base;
    unsigned char expect[FSM__SNAP_HEADER];
    uint64_t len = 0;
    int rv = VIGIL_ECORRUPT;

    if (buf->len >= FSM__SNAP_HEADER && memcmp(p, FSM__SNAP_MAGIC, 8) == 0) {
        for (int i = 0; i < 8; i++)
            len |= (uint64_t)p[8 + i] << (8 * i);
        if (len == buf->len - FSM__SNAP_HEADER) {
            fsm__snap_header(expect, p + FSM__SNAP_HEADER, (size_t)len);
            if (sodium_memcmp(expect, p, FSM__SNAP_HEADER) == 0)
                rv = store_restore(c->store, p + FSM__SNAP_HEADER, (size_t)len);
        }
    }
    if (rv != 0) {
        /* On failure libraft 0.15 frees the buffer itself. */
        vlog_error("fsm: the snapshot is damaged (%s)", vigil_strerror(rv));
        return RAFT_CORRUPT;
    }
    raft_free(buf->base);
    vlog_info("fsm: database restored from a snapshot (%zu bytes)", buf->len);
    return 0;
}

void fsm_init(struct raft_fsm *fsm, struct fsm_state *state, struct store *store)
{
    memset(state, 0, sizeof *state);
    state->store = store;
    memset(fsm, 0, sizeof *fsm);
    fsm->version = 3;
    fsm->data = state;
    fsm->apply = fsm__apply;
    fsm->snapshot = fsm__snapshot;
    fsm->snapshot_async = fsm__snapshot_async;
    fsm->snapshot_finalize = fsm__snapshot_finalize;
    fsm->restore = fsm__restore;
}

int fsm_applied_entry_id(const struct fsm_state *state, uint64_t index, uint64_t *entry_id)
{
    const struct fsm__applied_id *a = &state->applied_ids[index % FSM_ID_RING];
    if (index == 0 || a->index != index)
        return VIGIL_ENOTFOUND;
    *entry_id = a->id;
    return 0;
}

void fsm_close(struct fsm_state *state)
{
    for (unsigned i = 0; i < FSM_BATCH_MAX; i++)
        store_result_clear(&state->results[i]);
    state->last.n = 0;
}
