/* store.h: the config database, SQLite in memory, used as the raft state machine.
 *
 * Every change arrives as a command (a JSON object, see docs/architecture.md "The store")
 * that store_apply() runs as one transaction. Apply is deterministic: the same commands
 * in the same order give the same database on every node. Business refusals (a name
 * taken, a missing reference) are results, not errors, and change nothing.
 *
 * The database lives in memory: durability comes from the raft log and snapshots, and a
 * restart rebuilds it from the latest snapshot (store_restore) plus the log.
 * All functions run on the loop thread. */
#ifndef VIGIL_STORE_H
#define VIGIL_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "common/objects.h"

struct store;

/* What became of one command: done (the first three) or refused (the rest, which
 * changed nothing). The API layer turns it into an answer (api_status_of). */
enum store_outcome {
    STORE_OK = 0,    /* done: changed, or found done already */
    STORE_CREATED,   /* done: a new object, user or token */
    STORE_REMOVED,   /* done: deleted or revoked; no body */
    STORE_INVALID,   /* refused: a bad value or reference, or an unknown command */
    STORE_NOT_FOUND, /* refused: what it names does not exist */
    STORE_CONFLICT,  /* refused: a name taken, something still in use, a lost race */
    STORE_OUTCOME_COUNT
};

/* "ok", "created", ... (static strings, for logs and tests). */
const char *store_outcome_name(enum store_outcome outcome);

/* True if OUTCOME is a refusal (the command changed nothing). */
int store_outcome_refused(enum store_outcome outcome);

/* The outcome of one command, handed to whoever proposed it. */
struct store_result {
    enum store_outcome outcome;
    json_t *body;    /* owned: the stored object (uuid included), or NULL */
    char error[512]; /* when the outcome is a refusal: what was wrong */
    uint64_t index;  /* the raft index of the entry (set by cluster.c) */
    uint64_t entry_id; /* the entry's unique tag (set by cluster.c) */
};

/* Releases what RES owns and zeroes it. */
void store_result_clear(struct store_result *res);

/* Opens an empty store. Returns 0 and *OUT (owned by the caller, released with
 * store_close), or VIGIL_EIO / VIGIL_ENOMEM. */
int store_open(struct store **out);

void store_close(struct store *store);

/* Runs command CMD (LEN bytes of JSON text, borrowed) as one transaction. RES (owned by
 * the caller, zeroed by this call) receives the outcome. Returns 0, including for refused
 * commands; VIGIL_EINVAL when CMD is not a command this version knows (the entry is
 * skipped and logged); VIGIL_EIO when SQLite failed, after which the store must not be
 * used further. */
int store_apply(struct store *store, const char *cmd, size_t len, struct store_result *res);

/* Runs raft entry CMD (LEN bytes, borrowed): one command as store_apply does, or a batch
 * {"op": "batch", "cmds": [command, ...]} of at most CAP commands, run in order in one
 * transaction, each in its own savepoint (a refused or unknown command changes nothing,
 * the others stand). RES (CAP results owned by the caller) receives one outcome per
 * command, *N of them; an unknown command's is STORE_INVALID "unknown command". Returns 0;
 * VIGIL_EINVAL when CMD is neither (*N is 1 for a single unknown command, 0 for a
 * malformed batch: nothing ran); VIGIL_EIO as store_apply. */
int store_apply_entry(struct store *store, const char *cmd, size_t len,
                      struct store_result *res, unsigned cap, unsigned *n);

/* The most commands one {"op": "observations", "cmds": [command, ...]} command holds: a
 * node's queued observations sent to the leader as one command (events.h). Each runs as
 * if sent alone (a refused one changes nothing, the others stand); the group's outcome is
 * STORE_OK with the body {"applied": N, "refused": M}. */
#define STORE_OBSERVATIONS_MAX 256

/* The commands this version knows, as the store's command table lists them: how many,
 * and the "op" of the Ith (a static string; NULL when I is not below the count). */
size_t store_command_count(void);
const char *store_command_op(size_t i);

/* Serialises the whole database into *DATA (*LEN bytes), a copy owned by the caller that
 * later writes to the store do not change: hand it back with store_snapshot_done (or free
 * it with store_snapshot_free). Quick enough for the loop (one memcpy into a reused
 * buffer). Returns 0, VIGIL_ENOMEM or VIGIL_EIO. */
int store_snapshot(struct store *store, void **data, size_t *len);

/* Hands DATA from store_snapshot of STORE back; the store keeps the buffer for its next
 * snapshot (or frees it). Call it before store_close. */
void store_snapshot_done(struct store *store, void *data);

/* Frees what store_snapshot returned. */
void store_snapshot_free(void *data);

/* Replaces the whole database with a serialised one (borrowed, copied). Returns 0, or
 * VIGIL_ECORRUPT when DATA is not a database of ours; the store is then unchanged. */
int store_restore(struct store *store, const void *data, size_t len);

/* Queries. Returned JSON is a new reference owned by the caller. */
json_t *store_object_get(struct store *store, enum obj_type type, const char *uuid);
json_t *store_object_get_by_name(struct store *store, enum obj_type type, const char *name);
/* Objects of TYPE in creation order, OFFSET/LIMIT applied; *TOTAL = how many in all. */
json_t *store_object_list(struct store *store, enum obj_type type, int64_t offset,
                          int64_t limit, int64_t *total);
/* Every node record, by id: [{"id", "name", "raft_address", "api_address", "se_address",
 * "se_host_key"}]. */
json_t *store_nodes(struct store *store);
/* Node ID's API address ("HOST:PORT") into OUT; 1 if the store has its record, else 0. */
int store_node_api_address(struct store *store, uint64_t id, char *out, size_t len);

/* The config's version: how many changes of config objects (object_create, _update,
 * _delete that were applied, not refused) the replicated state holds, counted in meta
 * "config_version" inside each command's transaction. The same on every replica at the
 * same applied index; it only grows (0: no object was ever written). */
uint64_t store_config_version(struct store *store);

/* Sets the one config watch: CB(DATA) is called (on the loop thread, from store_apply,
 * store_apply_entry or store_restore, after the entry's transaction ended) after every
 * entry that ran a command that may change config objects, and after a restore; refused
 * commands may call it too (compare store_config_version). CB must not call store_apply.
 * CB NULL removes it. */
void store_set_config_watch(struct store *store, void (*cb)(void *data), void *data);

/* A cluster-wide setting ("cluster_uuid", "cluster_name"); malloc'd copy or NULL. */
char *store_meta_get(struct store *store, const char *key);

/* How many events the store keeps: recording one more deletes the oldest. */
#define STORE_EVENTS_KEEP 100000

/* Keeps KEEP events instead (0: STORE_EVENTS_KEEP). The test build's --test-events-keep
 * only: every replica must keep the same number, or their event logs differ. */
void store_set_events_keep(struct store *store, int64_t keep);

/* The longest a session lives from its issue (auth.h's AUTH_SESSION_MAX_MS): a session
 * revocation is kept until the session would have expired anyway. Here because the store
 * prunes revocations and calls nothing of the auth layer above it. */
#define STORE_SESSION_MAX_MS (12LL * 3600 * 1000)

/* Events, oldest first: EVENT_ID (NULL = all) at or after SINCE_MS, paged. Each is the
 * contract's event object. *TOTAL = how many match. */
json_t *store_events_list(struct store *store, const char *event_id, int64_t since_ms,
                          int64_t offset, int64_t limit, int64_t *total);

/* The events' sequence numbers: seq numbers each event as this store recorded it, in
 * apply order (1, 2, ...; never reused, since only the oldest are pruned). Apply is
 * deterministic, so an event has the same seq on every replica at the same applied
 * index, and a seq names the same event on every node (the live stream's event ids).
 *
 * store_events_newest_seq: the seq of the newest event kept (0: none yet).
 * store_events_after: the events after SEQ, oldest first, at most LIMIT:
 * [{"seq": N, "event": <the contract's event object, as store_events_list gives it>}].
 * Owned by the caller; [] when there are none (or SQLite failed). */
uint64_t store_events_newest_seq(struct store *store);
json_t *store_events_after(struct store *store, uint64_t seq, int64_t limit);

/* Sets the one event watch: CB(DATA) is called on the loop thread once after each entry
 * (store_apply, store_apply_entry) that recorded one or more events, after the entry's
 * transaction committed (so store_events_after sees them), and after a store_restore
 * that changed the newest seq (a snapshot install: whole runs of events at once). CB
 * must not call store_apply; it may read the store. CB NULL removes it. Costs one
 * indexed lookup per entry while set, none when not. */
void store_set_event_watch(struct store *store, void (*cb)(void *data), void *data);

/* SEs recorded as connected: [{"uuid", "name", "since_ms", "controller_node"}], by name.
 * SINCE_MS is the latest of the record's connect and its sessions' opening (store_se.h):
 * it moves when the SE opens a session with any node. */
json_t *store_se_connected(struct store *store);

/* The runtime record of SE UUID: {"connected", "controller_node", "since_ms",
 * "last_heartbeat_ms", "se_state", "sessions"}, or NULL. CONTROLLER_NODE is the node of
 * its oldest open session (the one that brought it up, while it lasts), else the node
 * recorded at its last connect; SESSIONS counts the nodes reporting an open session;
 * LAST_HEARTBEAT_MS is the latest change a node reported (heartbeats are not
 * replicated: the API adds what this node heard itself). Owned by the caller. */
json_t *store_se_runtime(struct store *store, const char *uuid);

/* True if the replicated state holds the session of SE UUID on node NODE that opened at
 * SINCE_MS (as that node reported it). */
bool store_se_session_recorded(struct store *store, const char *uuid, uint64_t node,
                               int64_t since_ms);

/* Users: {"username", "role", "hash"} or NULL; the list omits the hash. */
json_t *store_user_get(struct store *store, const char *name);
json_t *store_users_list(struct store *store, int64_t offset, int64_t limit, int64_t *total);
int64_t store_users_count(struct store *store);

/* A number that changes whenever users or tokens may have changed (an auth command was
 * applied, or a snapshot restored): what was read of them under one value stays true
 * while it is unchanged, so callers may cache it (auth.c does, per request). */
uint64_t store_auth_generation(const struct store *store);

/* The token whose keyed hash is MAC: {"id", "user", "role", "expires_ms", "revoked"} or NULL. */
json_t *store_token_find(struct store *store, const char *mac);
/* Tokens (no secrets) of USER, or of everyone when USER is NULL. */
json_t *store_tokens_list(struct store *store, const char *user);

/* True if session SID was revoked (logout). */
int store_session_revoked(struct store *store, const char *sid);

#endif
