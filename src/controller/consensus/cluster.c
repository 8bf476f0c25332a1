#include "controller/consensus/cluster.h"

#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "common/errors.h"
#include "common/vlog.h"
#include "controller/metrics/metrics.h"
#include "controller/consensus/disk_guard.h"
#include "controller/consensus/fsm.h"
#include "controller/consensus/raft_log_check.h"
#include "controller/consensus/raft_log_mark.h"
#include "controller/consensus/raft_send_guard.h"
#include "controller/consensus/raft_transport.h"

#define CLUSTER__WATCH_MS 20
/* How often the durable-end mark (raft_log_mark.h) is fsynced. */
#define CLUSTER__MARK_SYNC_MS 1000
/* A batch entry stops growing at this many bytes of commands (objects are up to 1 MiB). */
#define CLUSTER__BATCH_BYTES ((size_t)1 << 20)
/* Raft log segment size (libraft's default, set so that the disk guard knows it). */
#define CLUSTER__SEGMENT_BYTES ((size_t)8 << 20)

struct cluster {
    uv_loop_t *loop;
    struct raft raft;
    struct raft_io io;
    struct raft_transport transport;
    struct raft_fsm fsm;
    struct raft_log_mark log_mark; /* wraps io: the log's durable end, DIR/raft/log-end */
    uint64_t mark_synced_ms;
    struct store *store;
    struct fsm_state fsm_state;
    struct disk_guard *guard;    /* refuses or holds log writes while the disk is full */
    uint64_t last_entry_id;      /* the id given to the latest entry proposed (random start) */
    uv_timer_t watch_timer;
    int seen_state;
    uint64_t seen_leader;
    uint64_t seen_term;
    cluster_watch_cb watch_cb;
    void *watch_data;
    int closing;
    unsigned pending;            /* proposals whose callback has not run */
    uv_check_t batch_check;      /* runs after the loop's I/O: sends the queue as entries */
    struct cluster__queued *queue_head, *queue_tail;
    /* Failed request callbacks (a barrier's or an entry's) running now: raft fails them
     * while it steps down, its leader state half torn down; see cluster_barrier. */
    unsigned failing_cbs;
    uint64_t quorum_seen_ms;     /* loop time a majority's contact was last seen (leader) */
    uint64_t quorum_seen_term;
    /* The slow-disk fault knob (cluster_set_apply_delay). */
    unsigned append_delay_ms;
    uint64_t append_release_ms;  /* when the last delayed append completes (loop time) */
    struct cluster__slow_append *slow_held; /* stored appends whose completion is held back */
    bool slow_released;          /* raft is closing: appends complete as they are stored */
    int (*append_orig)(struct raft_io *io, struct raft_io_append *req,
                       const struct raft_entry entries[], unsigned n, raft_io_append_cb cb);
    int64_t drain_deadline_ms;   /* clean stop: wait for pending proposals until then */
    struct raft_transfer transfer;
    /* Waits for an applied index (cluster_wait_applied), woken after each apply. */
    struct cluster__waiter *waiters;
    uv_idle_t applied_idle;
    int (*fsm_apply)(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result);
    int (*fsm_restore)(struct raft_fsm *fsm, struct raft_buffer *buf);
    void (*done)(void *data);
    void *done_data;
};

/* A proposal waiting for the end of the loop iteration (see cluster_propose). */
struct cluster__queued {
    struct cluster__queued *next;
    char *text;                  /* the command's JSON text, owned */
    size_t len;
    cluster_propose_cb cb;
    void *data;
    uint64_t since_ns;           /* uv_hrtime() at cluster_propose */
};

/* One raft entry carrying N proposals, in order. */
struct cluster__batch {
    struct raft_apply req;
    struct cluster *c;
    uint64_t entry_id;           /* this entry's unique tag (fsm_encode_batch_id) */
    unsigned n;
    struct {
        cluster_propose_cb cb;
        void *data;
        uint64_t since_ns;       /* uv_hrtime() at cluster_propose (write latency) */
    } items[];
};

/* One cluster_wait_applied. */
struct cluster__waiter {
    struct cluster__waiter *next;
    uint64_t index;
    cluster_wait_cb cb;
    void *data;
};

struct cluster__barrier {
    struct raft_barrier req;
    struct cluster *c;
    void (*cb)(void *data, int status);
    void *data;
};

/* --- watching role, leader and term ------------------------------------------------ */

static void cluster__check(struct cluster *c)
{
    int state = raft_state(&c->raft);
    uint64_t leader = cluster_leader(c, NULL);
    uint64_t term = c->raft.current_term;

    /* libraft 0.15 turns a node RAFT_UNAVAILABLE for good when tick() or a message's
     * handling fails (tick.c, recv.c), and may leave raft.configuration freed on the way
     * (seen at 1000 SEs: configuration.servers overwritten). Nothing can be read of it any
     * more: stop as a crash would (no acknowledged write is lost) so a restart recovers
     * from disk, with the reason, instead of reading freed memory later. */
    if (state == RAFT_UNAVAILABLE && !c->closing) {
        vlog_error("cluster: raft became unavailable outside a shutdown (%s): exiting so "
                   "a restart recovers from disk",
                   raft_errmsg(&c->raft));
        fprintf(stderr, "vigild: raft became unavailable (%s); stopping: start the node "
                        "again\n", raft_errmsg(&c->raft));
        exit(3);
    }
    disk_guard_set_snapshot_bytes(c->guard, c->fsm_state.snapshot_bytes);
    if (state == c->seen_state && leader == c->seen_leader && term == c->seen_term)
        return;
    if (leader != c->seen_leader && leader != 0)
        metrics_count_leader_change();
    if (state != c->seen_state || leader != c->seen_leader)
        vlog_info("cluster: role %s, leader %llu, term %llu",
                  state == RAFT_LEADER      ? "leader"
                  : state == RAFT_CANDIDATE ? "candidate"
                  : state == RAFT_FOLLOWER  ? "follower"
                                            : "unavailable",
                  (unsigned long long)leader, (unsigned long long)term);
    c->seen_state = state;
    c->seen_leader = leader;
    c->seen_term = term;
    if (c->watch_cb != NULL)
        c->watch_cb(c->watch_data);
}

/* --- waiting for an applied index ------------------------------------------------ */

/* Unlinks and returns the first waiter whose index is at most APPLIED, or NULL. */
static struct cluster__waiter *cluster__take_waiter(struct cluster *c, uint64_t applied)
{
    for (struct cluster__waiter **w = &c->waiters; *w != NULL; w = &(*w)->next) {
        if ((*w)->index <= applied) {
            struct cluster__waiter *found = *w;
            *w = found->next;
            return found;
        }
    }
    return NULL;
}

/* Runs, one at a time (a callback may cancel or add waits), every wait for an index at
 * most APPLIED with STATUS. */
static void cluster__wake_waiters(struct cluster *c, uint64_t applied, int status)
{
    struct cluster__waiter *w;
    while ((w = cluster__take_waiter(c, applied)) != NULL) {
        w->cb(w->data, status);
        free(w);
    }
}

/* After the apply (raft sets its applied index once apply returns). */
static void cluster__on_applied_idle(uv_idle_t *h)
{
    struct cluster *c = h->data;
    uv_idle_stop(h);
    cluster__wake_waiters(c, raft_last_applied(&c->raft), 0);
}

static struct cluster *cluster__of_fsm(struct raft_fsm *fsm)
{
    return (struct cluster *)((char *)fsm - offsetof(struct cluster, fsm));
}

static int cluster__apply_and_wake(struct raft_fsm *fsm, const struct raft_buffer *buf,
                                   void **result)
{
    struct cluster *c = cluster__of_fsm(fsm);
    uint64_t start = uv_hrtime();
    int rv;
    if (c->waiters != NULL)
        uv_idle_start(&c->applied_idle, cluster__on_applied_idle);
    rv = c->fsm_apply(fsm, buf, result);
    metrics_observe(METRICS_APPLY, metrics_seconds_since(start));
    return rv;
}

static int cluster__restore_and_wake(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct cluster *c = cluster__of_fsm(fsm);
    uint64_t start = uv_hrtime();
    int rv;
    if (c->waiters != NULL)
        uv_idle_start(&c->applied_idle, cluster__on_applied_idle);
    rv = c->fsm_restore(fsm, buf);
    if (rv == 0)
        metrics_observe(METRICS_SNAPSHOT_RESTORE, metrics_seconds_since(start));
    return rv;
}

int cluster_wait_applied(struct cluster *c, uint64_t index, cluster_wait_cb cb, void *data)
{
    struct cluster__waiter *w;

    if (c->closing)
        return VIGIL_ESHUTDOWN;
    if (raft_last_applied(&c->raft) >= index) {
        cb(data, 0);
        return 0;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL)
        return VIGIL_ENOMEM;
    w->index = index;
    w->cb = cb;
    w->data = data;
    w->next = c->waiters;
    c->waiters = w;
    return 0;
}

void cluster_wait_cancel(struct cluster *c, cluster_wait_cb cb, void *data)
{
    struct cluster__waiter **w = &c->waiters;
    while (*w != NULL) {
        if ((*w)->cb == cb && (*w)->data == data) {
            struct cluster__waiter *gone = *w;
            *w = gone->next;
            free(gone);
        } else {
            w = &(*w)->next;
        }
    }
}

static void cluster__on_watch_timer(uv_timer_t *t)
{
    struct cluster *c = t->data;
    cluster__check(c);
    /* A backstop for applied indexes that no apply announced. */
    if (c->waiters != NULL)
        cluster__wake_waiters(c, raft_last_applied(&c->raft), 0);
    if (uv_now(c->loop) - c->mark_synced_ms >= CLUSTER__MARK_SYNC_MS) {
        raft_log_mark_sync(&c->log_mark);
        c->mark_synced_ms = uv_now(c->loop);
    }
}

/* --- start -------------------------------------------------------------------------- */

int cluster_start(uv_loop_t *loop, const struct cluster_config *cfg, struct store *store,
                  struct cluster **out, char *err, size_t errlen)
{
    struct cluster *c = calloc(1, sizeof *c);
    struct raft_configuration conf;
    int rv;

    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return VIGIL_ENOMEM;
    }
    /* libraft 0.15 silently cuts an open segment at its first bad batch: damage is found
     * (and refused) before libraft loads, and renames, anything. */
    rv = raft_log_check_dir(cfg->raft_dir, err, errlen);
    if (rv != 0) {
        size_t used = strlen(err);
        if (rv == VIGIL_ECORRUPT && used < errlen)
            snprintf(err + used, errlen - used,
                     "; start it with --rebuild to take the leader's state (this is kept "
                     "in DIR/damaged-<time>/)");
        free(c);
        return rv;
    }
    c->loop = loop;
    c->store = store;
    c->seen_state = -1;
    fsm_init(&c->fsm, &c->fsm_state, store);
    c->fsm_state.raft = &c->raft;
    c->fsm_apply = c->fsm.apply;
    c->fsm.apply = cluster__apply_and_wake;
    c->fsm_restore = c->fsm.restore;
    c->fsm.restore = cluster__restore_and_wake;

    rv = raft_transport_init(&c->transport, loop);
    if (rv != 0) {
        snprintf(err, errlen, "raft transport: %s", raft_strerror(rv));
        free(c);
        return VIGIL_EIO;
    }
    rv = raft_uv_init(&c->io, loop, cfg->raft_dir, raft_transport_uv(&c->transport));
    if (rv != 0) {
        snprintf(err, errlen, "raft storage in %s: %s", cfg->raft_dir,
                 c->io.errmsg[0] ? c->io.errmsg : raft_strerror(rv));
        raft_transport_close(&c->transport);
        free(c);
        return VIGIL_EIO;
    }
    rv = raft_log_mark_open(&c->log_mark, &c->io, cfg->raft_dir, err, errlen);
    if (rv == 0 && (rv = raft_send_guard_install(&c->io)) != 0)
        snprintf(err, errlen, "raft send guard: too many raft ios");
    if (rv != 0) {
        raft_uv_close(&c->io);
        raft_transport_close(&c->transport);
        free(c);
        return rv;
    }
    /* Damaged state is reported, never dropped silently. */
    raft_uv_set_auto_recovery(&c->io, false);
    raft_uv_set_connect_retry_delay(&c->io, 100);
    /* libraft 0.15 loops forever decompressing a truncated LZ4 snapshot at start; an
     * uncompressed one is checked against its size and checksum and refused. */
    raft_uv_set_snapshot_compression(&c->io, false);
    raft_uv_set_segment_size(&c->io, CLUSTER__SEGMENT_BYTES);
    /* libraft 0.15's uv backend has async_work but reports io version 1, and raft_init
     * refuses an FSM with snapshot_async (version 3, fsm.c: the snapshot's hash is
     * computed off the loop) unless the io says version 2. */
    if (c->io.async_work != NULL && c->io.version < 2)
        c->io.version = 2;
    rv = raft_init(&c->raft, &c->io, &c->fsm, cfg->id, cfg->raft_address);
    if (rv != 0) {
        snprintf(err, errlen, "raft: %s", raft_errmsg(&c->raft));
        goto fail_io;
    }
    raft_set_election_timeout(&c->raft, cfg->election_timeout_ms);
    raft_set_heartbeat_timeout(&c->raft, cfg->heartbeat_ms);
    raft_set_pre_vote(&c->raft, true);
    raft_set_snapshot_threshold(&c->raft, cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing);
    raft_set_install_snapshot_timeout(&c->raft, CLUSTER_INSTALL_TIMEOUT_MS);

    raft_configuration_init(&conf);
    for (unsigned i = 0; i < cfg->n_voters; i++) {
        rv = raft_configuration_add(&conf, cfg->voters[i].id, cfg->voters[i].address, RAFT_VOTER);
        if (rv != 0) {
            snprintf(err, errlen, "cluster member %llu@%s: %s",
                     (unsigned long long)cfg->voters[i].id, cfg->voters[i].address,
                     raft_strerror(rv));
            raft_configuration_close(&conf);
            goto fail_raft;
        }
    }
    /* A rebuilt node (an emptied raft_dir) takes its configuration from the leader. */
    rv = cfg->rebuilding ? RAFT_CANTBOOTSTRAP : raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
        snprintf(err, errlen, "raft bootstrap in %s: %s", cfg->raft_dir, raft_errmsg(&c->raft));
        goto fail_raft;
    }
    rv = raft_start(&c->raft);
    if (rv != 0) {
        const char *why = raft_errmsg(&c->raft);
        if (why == NULL || why[0] == '\0')
            why = rv == RAFT_CORRUPT ? "a snapshot or log segment is damaged" : raft_strerror(rv);
        if (rv == RAFT_CORRUPT || rv == RAFT_MALFORMED || strstr(why, "corrupt") ||
            strstr(why, "checksum") || strstr(why, "load"))
            snprintf(err, errlen, "damaged raft state in %s: %s; start it with --rebuild to "
                     "take the leader's state", cfg->raft_dir, why);
        else
            snprintf(err, errlen, "raft start: %s", why);
        rv = (rv == RAFT_CORRUPT || rv == RAFT_MALFORMED) ? VIGIL_ECORRUPT : VIGIL_EIO;
        /* The process exits right after; raft's memory goes with it. */
        *out = NULL;
        return rv;
    }
    /* A log shorter than what this node had durably stored lost entries it may have
     * acknowledged: never run (and so never win an election) with it. */
    rv = raft_log_mark_check(&c->log_mark, cfg->raft_dir, err, errlen);
    if (rv != 0) {
        *out = NULL;
        return rv;
    }
    c->mark_synced_ms = uv_now(loop);
    c->guard = disk_guard_start(loop, &c->raft, &c->io, cfg->raft_dir, CLUSTER__SEGMENT_BYTES);
    if (c->guard == NULL) {
        snprintf(err, errlen, "out of memory");
        *out = NULL;
        return VIGIL_ENOMEM;
    }
    randombytes_buf(&c->last_entry_id, sizeof c->last_entry_id);
    uv_timer_init(loop, &c->watch_timer);
    c->watch_timer.data = c;
    uv_check_init(loop, &c->batch_check);
    c->batch_check.data = c;
    uv_idle_init(loop, &c->applied_idle);
    c->applied_idle.data = c;
    uv_timer_start(&c->watch_timer, cluster__on_watch_timer, 0, CLUSTER__WATCH_MS);
    *out = c;
    return 0;

fail_raft:
fail_io:
    /* Nothing was started: exiting releases the rest. */
    *out = NULL;
    return VIGIL_EIO;
}

/* --- proposals ------------------------------------------------------------------- */

static void cluster__on_applied(struct raft_apply *req, int status, void *result)
{
    struct cluster__batch *b = req->data;
    struct fsm_result *out = result;
    struct store_result empty;

    memset(&empty, 0, sizeof empty);
    b->c->pending -= b->n;
    for (unsigned i = 0; i < b->n; i++) {
        struct store_result *res = status == 0 && out != NULL && i < out->n ? &out->results[i]
                                                                            : NULL;
        if (res != NULL) {
            metrics_count_proposal(METRICS_PROPOSAL_COMMITTED);
            metrics_observe(METRICS_WRITE, metrics_seconds_since(b->items[i].since_ns));
            res->index = req->index;
            res->entry_id = b->entry_id;
            if (b->items[i].cb != NULL)
                b->items[i].cb(b->items[i].data, 0, res);
            store_result_clear(res);
        } else {
            metrics_count_proposal(METRICS_PROPOSAL_FAILED);
            if (b->items[i].cb != NULL) {
                b->c->failing_cbs++;
                b->items[i].cb(b->items[i].data, VIGIL_ETIMEDOUT, &empty);
                b->c->failing_cbs--;
            }
        }
    }
    free(b);
}

/* Unlinks and returns the oldest queued proposal (the queue must not be empty). */
static struct cluster__queued *cluster__dequeue(struct cluster *c)
{
    struct cluster__queued *q = c->queue_head;
    c->queue_head = q->next;
    if (c->queue_head == NULL)
        c->queue_tail = NULL;
    return q;
}

/* Counts a proposal refused before the log with STATUS (a VIGIL_E* code). */
static void cluster__count_refusal(int status)
{
    metrics_count_proposal(status == VIGIL_ENOTLEADER ? METRICS_PROPOSAL_NOT_LEADER
                           : status == VIGIL_ENOSPC   ? METRICS_PROPOSAL_NO_SPACE
                           : status == VIGIL_ENOQUORUM ? METRICS_PROPOSAL_NO_QUORUM
                           : status == VIGIL_ESHUTDOWN ? METRICS_PROPOSAL_SHUTDOWN
                                                       : METRICS_PROPOSAL_OTHER);
}

/* Answers every queued proposal with STATUS (they never entered the log) and empties the
 * queue. */
static void cluster__fail_queued(struct cluster *c, int status)
{
    struct store_result empty;

    memset(&empty, 0, sizeof empty);
    while (c->queue_head != NULL) {
        struct cluster__queued *q = cluster__dequeue(c);
        c->pending--;
        cluster__count_refusal(status);
        if (q->cb != NULL)
            q->cb(q->data, status, &empty);
        free(q->text);
        free(q);
    }
}

/* The VIGIL_E* "refused before the log" code for raft_apply's or raft_barrier's RV. */
static int cluster__refusal(int rv)
{
    return rv == RAFT_NOTLEADER ? VIGIL_ENOTLEADER
           : rv == RAFT_NOSPACE ? VIGIL_ENOSPC
                                : VIGIL_ENOQUORUM;
}

/* Sends up to FSM_BATCH_MAX queued proposals (and at most CLUSTER__BATCH_BYTES of them,
 * unless the first alone is larger) as one raft entry, and takes them off the queue. Returns
 * 0, or a VIGIL_E* code with the queue as it was. */
static int cluster__send_batch(struct cluster *c)
{
    const char *texts[FSM_BATCH_MAX];
    size_t lens[FSM_BATCH_MAX], bytes = 0;
    struct cluster__queued *q = c->queue_head;
    struct cluster__batch *b;
    struct raft_buffer buf;
    unsigned n = 0;
    int rv;

    for (; q != NULL && n < FSM_BATCH_MAX; q = q->next) {
        if (n > 0 && bytes + q->len > CLUSTER__BATCH_BYTES)
            break;
        texts[n] = q->text;
        lens[n] = q->len;
        bytes += q->len;
        n++;
    }
    b = malloc(sizeof *b + n * sizeof b->items[0]);
    if (b == NULL)
        return VIGIL_ENOMEM;
    if (++c->last_entry_id == 0)
        c->last_entry_id = 1;
    /* raft_apply appends at the log's last index + 1, now, on this thread. */
    rv = fsm_encode_batch_id(texts, lens, n, raft_last_index(&c->raft) + 1, c->last_entry_id,
                             &buf);
    if (rv != 0) {
        free(b);
        return rv;
    }
    b->entry_id = c->last_entry_id;
    b->c = c;
    b->n = n;
    b->req.data = b;
    rv = raft_apply(&c->raft, &b->req, &buf, 1, cluster__on_applied);
    if (rv != 0) {
        /* libraft 0.15: a raft_apply that fails synchronously discards the entry without
         * freeing it (logDiscard): BUF is still ours. Later failures are the callback's,
         * and the buffer is then libraft's. */
        raft_free(buf.base);
        free(b);
        return cluster__refusal(rv);
    }
    for (unsigned i = 0; i < n; i++) {
        q = cluster__dequeue(c);
        b->items[i].cb = q->cb;
        b->items[i].data = q->data;
        b->items[i].since_ns = q->since_ns;
        free(q->text);
        free(q);
    }
    return 0;
}

static void cluster__on_batch_check(uv_check_t *h)
{
    struct cluster *c = h->data;
    int rv = 0;

    uv_check_stop(h);
    while (c->queue_head != NULL && rv == 0) {
        rv = raft_state(&c->raft) == RAFT_LEADER ? cluster__send_batch(c) : VIGIL_ENOTLEADER;
        /* Never in the log: proposers see one of the documented "refused" outcomes. */
        if (rv != 0)
            cluster__fail_queued(c, rv == VIGIL_ENOTLEADER || rv == VIGIL_ENOSPC ? rv
                                                                                : VIGIL_ENOQUORUM);
    }
}

int cluster_propose(struct cluster *c, json_t *cmd, cluster_propose_cb cb, void *data)
{
    struct cluster__queued *q;
    int refused = c->closing                             ? VIGIL_ESHUTDOWN
                  : raft_state(&c->raft) != RAFT_LEADER ? VIGIL_ENOTLEADER
                  : disk_guard_is_full(c->guard)         ? VIGIL_ENOSPC
                                                         : 0;

    if (refused == 0) {
        q = calloc(1, sizeof *q);
        if (q == NULL || (q->text = json_dumps(cmd, JSON_COMPACT)) == NULL) {
            free(q);
            refused = VIGIL_ENOMEM;
        }
    }
    if (refused != 0) {
        cluster__count_refusal(refused);
        return refused;
    }
    q->since_ns = uv_hrtime();
    q->len = strlen(q->text);
    q->cb = cb;
    q->data = data;
    if (c->queue_tail != NULL)
        c->queue_tail->next = q;
    else
        c->queue_head = q;
    c->queue_tail = q;
    c->pending++;
    uv_check_start(&c->batch_check, cluster__on_batch_check);
    return 0;
}

static void cluster__on_barrier(struct raft_barrier *req, int status)
{
    struct cluster__barrier *b = req->data;
    struct cluster *c = b->c;
    if (status != 0)
        c->failing_cbs++;
    b->cb(b->data, status == 0 ? 0 : status == RAFT_NOSPACE ? VIGIL_ENOSPC : VIGIL_ENOQUORUM);
    if (status != 0)
        c->failing_cbs--;
    free(b);
}

int cluster_barrier(struct cluster *c, void (*cb)(void *data, int status), void *data)
{
    struct cluster__barrier *b;
    int rv;

    if (c->closing)
        return VIGIL_ESHUTDOWN;
    if (raft_state(&c->raft) != RAFT_LEADER)
        return VIGIL_ENOTLEADER;
    /* Not from inside a failed request's callback: raft runs those while it steps down,
     * still RAFT_LEADER but its followers' progress array gone, and a barrier then
     * replicates through that array (a SIGSEGV in libraft 0.15's progressState, seen when a
     * leader stepped down right after a whole cluster's restart under 500 SEs, the status
     * driver asking again from its failed barrier's callback). The caller tries later. */
    if (c->failing_cbs > 0)
        return VIGIL_ENOTLEADER;
    b = calloc(1, sizeof *b);
    if (b == NULL)
        return VIGIL_ENOMEM;
    b->c = c;
    b->cb = cb;
    b->data = data;
    b->req.data = b;
    /* raft_barrier frees its own entry buffer on a synchronous failure. */
    rv = raft_barrier(&c->raft, &b->req, cluster__on_barrier);
    if (rv != 0) {
        free(b);
        return cluster__refusal(rv);
    }
    return 0;
}

/* --- views ------------------------------------------------------------------------- */

bool cluster_is_leader(struct cluster *c)
{
    return raft_state(&c->raft) == RAFT_LEADER;
}

bool cluster_leader_has_quorum(struct cluster *c)
{
    struct raft *r = &c->raft;
    unsigned voters = 0, contacts = 0;
    uint64_t now = uv_now(c->loop);

    /* While raft closes or steps down it frees the followers' progress before it fails
     * the pending requests, whose callbacks may ask this: no quorum then. */
    if (c->closing || raft_state(r) != RAFT_LEADER || r->leader_state.progress == NULL)
        return false;
    /* Winning the election was a majority's contact: from the first time this node sees
     * itself lead in this term it counts until the followers' first answers (raft clears
     * recent_recv for all of them at the election, and right after a whole cluster's
     * restart they may take a while to answer), for at most an election timeout, as raft's
     * own quorum check allows before it steps down. */
    if (c->quorum_seen_term != r->current_term) {
        c->quorum_seen_ms = now;
        c->quorum_seen_term = r->current_term;
    }
    /* recent_recv is set when a follower answers and cleared by raft's own quorum check
     * once per election timeout; the public header exposes it, no function does. */
    for (unsigned i = 0; i < r->configuration.n; i++) {
        const struct raft_server *s = &r->configuration.servers[i];
        if (s->role != RAFT_VOTER)
            continue;
        voters++;
        if (s->id == r->id || r->leader_state.progress[i].recent_recv)
            contacts++;
    }
    if (contacts > voters / 2) {
        c->quorum_seen_ms = now;
        c->quorum_seen_term = r->current_term;
        return true;
    }
    /* raft clears the flags at each of its own quorum checks; they are set again within a
     * heartbeat. A majority seen within the last election timeout still counts (raft
     * itself steps down when none answers for that long). */
    return c->quorum_seen_term == r->current_term &&
           now - c->quorum_seen_ms <= r->election_timeout;
}

void cluster_set_install_timeout(struct cluster *c, unsigned ms)
{
    raft_set_install_snapshot_timeout(&c->raft, ms);
}

void cluster_peer_back(struct cluster *c, uint64_t id)
{
    unsigned ended = raft_transport_kick(&c->transport, id);
    if (ended > 0)
        vlog_info("cluster: node %llu is reachable again: ended %u raft stream(s) with it so "
                  "that they connect again", (unsigned long long)id, ended);
}

uint64_t cluster_leader(struct cluster *c, const char **address)
{
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&c->raft, &id, &addr);
    if (address != NULL)
        *address = addr;
    return id;
}

uint64_t cluster_term(struct cluster *c) { return c->raft.current_term; }
uint64_t cluster_applied_index(struct cluster *c) { return raft_last_applied(&c->raft); }
uint64_t cluster_commit_index(struct cluster *c) { return c->raft.commit_index; }

const char *cluster_role_name(struct cluster *c)
{
    switch (raft_state(&c->raft)) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_FOLLOWER:
        return "follower";
    default:
        return "unavailable";
    }
}

void cluster_log_size(struct cluster *c, uint64_t *entries, uint64_t *bytes,
                      uint64_t *snapshot_index)
{
    const struct raft_log *log = &c->raft.log;
    size_t n = 0;

    *bytes = 0;
    if (log->size > 0) {
        n = log->back >= log->front ? log->back - log->front : log->size - log->front + log->back;
        for (size_t i = 0; i < n; i++)
            *bytes += log->entries[(log->front + i) % log->size].buf.len;
    }
    *entries = n;
    *snapshot_index = log->snapshot.last_index;
}

int cluster_applied_entry_id(struct cluster *c, uint64_t index, uint64_t *entry_id)
{
    return fsm_applied_entry_id(&c->fsm_state, index, entry_id);
}

unsigned cluster_members(struct cluster *c, struct cluster_member *out, unsigned max)
{
    unsigned n = 0;
    /* An unavailable raft's configuration may be freed (see cluster__check). */
    if (raft_state(&c->raft) == RAFT_UNAVAILABLE)
        return 0;
    for (unsigned i = 0; i < c->raft.configuration.n && n < max; i++) {
        const struct raft_server *s = &c->raft.configuration.servers[i];
        if (s->role != RAFT_VOTER)
            continue;
        out[n].id = s->id;
        snprintf(out[n].address, sizeof out[n].address, "%s", s->address);
        n++;
    }
    return n;
}

void cluster_set_watch(struct cluster *c, cluster_watch_cb cb, void *data)
{
    c->watch_cb = cb;
    c->watch_data = data;
}

/* One append held back by the slow-disk knob. */
struct cluster__slow_append {
    struct raft_io_append inner;   /* handed to the real backend */
    struct raft_io_append *outer;  /* raft's own request */
    raft_io_append_cb outer_cb;
    int status;
    uv_timer_t timer;
    struct cluster *c;
    struct cluster__slow_append *next; /* c->slow_held, while held */
};

static void cluster__slow_closed(uv_handle_t *h)
{
    free(h->data);
}

static void cluster__slow_release(uv_timer_t *t)
{
    struct cluster__slow_append *a = t->data, **link = &a->c->slow_held;
    while (*link != a)
        link = &(*link)->next;
    *link = a->next;
    a->outer_cb(a->outer, a->status);
    uv_close((uv_handle_t *)&a->timer, cluster__slow_closed);
}

/* Completes every held append now, oldest first (as they were stored): raft is about to close, and a completion after
 * raft_close finished would call into a freed raft. */
static void cluster__slow_release_all(struct cluster *c)
{
    c->slow_released = true;
    while (c->slow_held != NULL) {
        struct cluster__slow_append *oldest = c->slow_held; /* the list is newest first */
        while (oldest->next != NULL)
            oldest = oldest->next;
        uv_timer_stop(&oldest->timer);
        cluster__slow_release(&oldest->timer);
    }
}

static void cluster__slow_stored(struct raft_io_append *inner, int status)
{
    struct cluster__slow_append *a = inner->data;
    struct cluster *c = a->c;
    uint64_t now = uv_now(c->loop);
    uint64_t at = (c->append_release_ms > now ? c->append_release_ms : now) + c->append_delay_ms;

    if (c->slow_released) { /* raft is closing: nothing is held any more */
        a->outer_cb(a->outer, status);
        free(a);
        return;
    }
    c->append_release_ms = at;
    a->status = status;
    uv_timer_init(c->loop, &a->timer);
    a->timer.data = a;
    a->next = c->slow_held;
    c->slow_held = a;
    uv_timer_start(&a->timer, cluster__slow_release, at - now, 0);
}

static int cluster__slow_append(struct raft_io *io, struct raft_io_append *req,
                                const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    struct cluster *c = (struct cluster *)((char *)io - offsetof(struct cluster, io));
    struct cluster__slow_append *a;
    int rv;
    if (c->append_delay_ms == 0 || c->closing)
        return c->append_orig(io, req, entries, n, cb);
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return RAFT_NOMEM;
    a->outer = req;
    a->outer_cb = cb;
    a->c = c;
    a->inner.data = a;
    rv = c->append_orig(io, &a->inner, entries, n, cluster__slow_stored);
    if (rv != 0)
        free(a);
    return rv;
}

void cluster_set_apply_delay(struct cluster *c, unsigned ms)
{
    c->append_delay_ms = ms;
    if (ms > 0 && c->append_orig == NULL) {
        c->append_orig = c->io.append;
        c->io.append = cluster__slow_append;
    }
}

/* --- stop ------------------------------------------------------------------------- */

static void cluster__on_timer_closed(uv_handle_t *h)
{
    struct cluster *c = h->data;
    void (*done)(void *) = c->done;
    void *data = c->done_data;
    fsm_close(&c->fsm_state);
    free(c);
    if (done != NULL)
        done(data);
}

static void cluster__on_idle_closed(uv_handle_t *h)
{
    struct cluster *c = h->data;
    uv_close((uv_handle_t *)&c->watch_timer, cluster__on_timer_closed);
}

static void cluster__on_check_closed(uv_handle_t *h)
{
    struct cluster *c = h->data;
    uv_close((uv_handle_t *)&c->applied_idle, cluster__on_idle_closed);
}

static void cluster__on_raft_closed(struct raft *r)
{
    struct cluster *c = r->data;
    raft_send_guard_remove(&c->io);
    raft_uv_close(&c->io);
    raft_log_mark_close(&c->log_mark);
    raft_transport_close(&c->transport);
    uv_close((uv_handle_t *)&c->batch_check, cluster__on_check_closed);
}

static void cluster__close_raft(struct cluster *c)
{
    /* Proposals still queued never reach the log. */
    uv_check_stop(&c->batch_check);
    cluster__fail_queued(c, VIGIL_ESHUTDOWN);
    disk_guard_close(c->guard);
    c->guard = NULL;
    cluster__slow_release_all(c);
    c->raft.data = c;
    raft_close(&c->raft, cluster__on_raft_closed);
}

static void cluster__on_transferred(struct raft_transfer *req)
{
    struct cluster *c = req->data;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(&c->raft, &leader, &addr);
    vlog_info("cluster: leadership handed over to node %llu", (unsigned long long)leader);
    cluster__close_raft(c);
}

/* Clean stop of a leader, step 2: hand leadership over, then close. */
static void cluster__hand_over(struct cluster *c)
{
    if (raft_state(&c->raft) == RAFT_LEADER && c->raft.configuration.n > 1) {
        c->transfer.data = c;
        if (raft_transfer(&c->raft, &c->transfer, 0, cluster__on_transferred) == 0)
            return;
    }
    cluster__close_raft(c);
}

/* Step 1: no new proposals are taken (closing); those in flight get to commit first, so a
 * planned stop fails no write (bounded by one election timeout). */
static void cluster__on_drain_timer(uv_timer_t *t)
{
    struct cluster *c = t->data;
    if (c->pending > 0 && raft_state(&c->raft) == RAFT_LEADER && uv_now(c->loop) < (uint64_t)c->drain_deadline_ms)
        return;
    uv_timer_stop(t);
    cluster__hand_over(c);
}

void cluster_close(struct cluster *c, void (*done)(void *data), void *data)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->done = done;
    c->done_data = data;
    uv_timer_stop(&c->watch_timer);
    uv_idle_stop(&c->applied_idle);
    cluster__wake_waiters(c, UINT64_MAX, VIGIL_ESHUTDOWN);
    if (c->pending > 0 && raft_state(&c->raft) == RAFT_LEADER) {
        c->drain_deadline_ms = (int64_t)uv_now(c->loop) + c->raft.election_timeout;
        uv_timer_start(&c->watch_timer, cluster__on_drain_timer, 2, 2);
        return;
    }
    cluster__hand_over(c);
}
