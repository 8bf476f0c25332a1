/* store_se.c: the replicated SE runtime record built from the nodes' session reports
 * (store_se.h; docs/architecture.md, "The SE runtime record"). Each report is one change
 * of one node's session with one SE; the aggregate (se_runtime) and the SE events are
 * derived here, inside the report's transaction, so that they are the same on every
 * replica and a report applied twice changes nothing the second time. */
#include "controller/store/store_se.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"
#include "common/timeutil.h"
#include "controller/store/store_events.h"

#define STORE_SE__HEADLESS "HEADLESS"
#define STORE_SE__HB_FAILED "CONTROLLER_HEARTBEAT_FAILED"

/* One report, as the command carries it. */
struct store_se__report {
    const char *uuid;
    const char *change; /* "up", "down", "state" */
    const char *se_state; /* NULL: not said */
    json_int_t node, since, time, missed;
    json_int_t state_since; /* when the SE entered se_state (its clock), 0: not said */
    json_int_t spooled_logs; /* up: the log records it had spooled at HELLO, 0: not said */
    char name[160];     /* the SE's object name */
};

static int store_se__sessions(struct store_db *db, const char *uuid)
{
    return (int)store_db_int64(db, "SELECT count(*) FROM se_session WHERE uuid=?",
                               STORE_DB_BIND(STORE_DB_TEXT(uuid)), 0);
}

/* One SEMGR event of R's SE; KEY_TAG makes the key of this occurrence. DETAILS stolen. */
static int store_se__event(struct store_db *db, const struct store_se__report *r,
                           const char *event_id, const char *key_tag, const char *description,
                           json_t *details)
{
    char key[300], desc[300];
    int err;
    snprintf(key, sizeof key, "%s:%s:%s", event_id, r->uuid, key_tag);
    snprintf(desc, sizeof desc, "Service Engine %s %s", r->name, description);
    err = store_events_insert(db, key, event_id, r->time, "SEMGR", "SERVICEENGINE", r->name,
                              desc, details);
    json_decref(details);
    return err;
}

/* The state R says its SE is in, into the aggregate: SE_HEARTBEAT_FAILURE when it becomes
 * CONTROLLER_HEARTBEAT_FAILED, SE_HEADLESS_RECOVERED at a report of HEADLESS (a session
 * opened by an SE that ran headless), once per headless period. */
static int store_se__state(struct store_db *db, const struct store_se__report *r)
{
    char *old = store_db_text(db, "SELECT se_state FROM se_runtime WHERE uuid=?",
                              STORE_DB_BIND(STORE_DB_TEXT(r->uuid)));
    int64_t headless_since =
        store_db_int64(db, "SELECT headless_since_ms FROM se_runtime WHERE uuid=?",
                       STORE_DB_BIND(STORE_DB_TEXT(r->uuid)), 0);
    int64_t last = store_db_int64(db, "SELECT last_heartbeat_ms FROM se_runtime WHERE uuid=?",
                                  STORE_DB_BIND(STORE_DB_TEXT(r->uuid)), 0);
    int err = 0, same = old != NULL && strcmp(old, r->se_state) == 0;
    char tag[64];

    free(old);
    snprintf(tag, sizeof tag, "%lld:%lld", (long long)r->node, (long long)r->since);
    if (!same && strcmp(r->se_state, STORE_SE__HB_FAILED) == 0)
        err = store_se__event(db, r, "SE_HEARTBEAT_FAILURE", tag,
                              "reports it stopped hearing its controllers",
                              json_pack("{s:s, s:I}", "se_name", r->name, "missed", r->missed));
    /* The SE's own state_since names the headless period, the same in the HELLO to every
     * node: the event's key dedupes it exactly. Without it, the marker does. */
    if (err == 0 && strcmp(r->se_state, STORE_SE__HEADLESS) == 0 &&
        (r->state_since > 0 || headless_since == 0)) {
        int64_t since = r->state_since > 0 ? r->state_since : last > 0 ? last : r->time;
        char from[TIME_RFC3339_LEN], until[TIME_RFC3339_LEN];
        time_format_rfc3339(since, from);
        time_format_rfc3339(r->time, until);
        snprintf(tag, sizeof tag, "%lld", (long long)since);
        err = store_se__event(db, r, "SE_HEADLESS_RECOVERED", tag, "ran headless and reconnected",
                              json_pack("{s:s, s:s, s:s, s:I}", "se_name", r->name,
                                        "headless_since", from, "headless_until", until,
                                        "spooled_logs", r->spooled_logs));
        headless_since = since;
    } else if (strcmp(r->se_state, STORE_SE__HEADLESS) != 0) {
        headless_since = 0;
    }
    if (err != 0)
        return err;
    return store_db_write(db, "UPDATE se_runtime SET se_state=?2, headless_since_ms=?3, "
                              "last_heartbeat_ms=max(coalesce(last_heartbeat_ms, 0), ?4) "
                              "WHERE uuid=?1",
                          STORE_DB_BIND(STORE_DB_TEXT(r->uuid), STORE_DB_TEXT(r->se_state),
                                        STORE_DB_INT(headless_since), STORE_DB_INT(r->time)));
}

/* A session opened: SE_UP when it is the SE's first (no other node has one). */
static int store_se__up(struct store_db *db, const struct store_se__report *r)
{
    int before = store_se__sessions(db, r->uuid), err;
    char tag[64];

    err = store_db_write(db, "INSERT OR REPLACE INTO se_session(uuid, node, since_ms, se_state) "
                             "VALUES(?1, ?2, ?3, ?4)",
                         STORE_DB_BIND(STORE_DB_TEXT(r->uuid), STORE_DB_INT(r->node),
                                       STORE_DB_INT(r->since), STORE_DB_TEXT(r->se_state)));
    /* The SE is heard again: a later silence is another occurrence. */
    if (err == 0)
        err = store_db_write(db, "UPDATE se_runtime SET silence_reported=0 WHERE uuid=?",
                             STORE_DB_BIND(STORE_DB_TEXT(r->uuid)));
    if (err != 0 || before > 0)
        return err != 0 ? err : (r->se_state != NULL ? store_se__state(db, r) : 0);
    err = store_db_write(db, "INSERT INTO se_runtime(uuid, connected, controller_node, since_ms,"
                             " last_heartbeat_ms) VALUES(?1, 1, ?2, ?3, ?3) ON CONFLICT(uuid) DO "
                             "UPDATE SET connected=1, controller_node=?2, since_ms=?3, "
                             "last_heartbeat_ms=?3",
                         STORE_DB_BIND(STORE_DB_TEXT(r->uuid), STORE_DB_INT(r->node),
                                       STORE_DB_INT(r->since)));
    snprintf(tag, sizeof tag, "%lld:%lld", (long long)r->node, (long long)r->since);
    if (err == 0)
        err = store_se__event(db, r, "SE_UP", tag, "connected",
                              json_pack("{s:s, s:I}", "se_name", r->name, "controller_node",
                                        r->node));
    if (err == 0 && r->se_state != NULL)
        err = store_se__state(db, r);
    return err;
}

/* A session closed: SE_HEARTBEAT_FAILURE when the node closed it for silence (the first
 * such close since a session of the SE last opened: an SE that stalls is closed by every
 * node, one occurrence), SE_DOWN when it was the SE's last. A report of a session already
 * gone changes nothing. */
static int store_se__down(struct store_db *db, const struct store_se__report *r)
{
    char tag[64];
    int err = store_db_write(db, "DELETE FROM se_session WHERE uuid=? AND node=? AND since_ms=?",
                             STORE_DB_BIND(STORE_DB_TEXT(r->uuid), STORE_DB_INT(r->node),
                                           STORE_DB_INT(r->since)));
    if (err != 0 || store_db_changes(db) == 0)
        return err;
    snprintf(tag, sizeof tag, "%lld:%lld", (long long)r->node, (long long)r->since);
    if (r->missed > 0 &&
        store_db_int64(db, "SELECT silence_reported FROM se_runtime WHERE uuid=?",
                       STORE_DB_BIND(STORE_DB_TEXT(r->uuid)), 1) == 0) {
        err = store_db_write(db, "UPDATE se_runtime SET silence_reported=1 WHERE uuid=?",
                             STORE_DB_BIND(STORE_DB_TEXT(r->uuid)));
        if (err == 0)
            err = store_se__event(db, r, "SE_HEARTBEAT_FAILURE", tag,
                                  "went silent on a controller node",
                                  json_pack("{s:s, s:I}", "se_name", r->name, "missed",
                                            r->missed));
    }
    if (err != 0 || store_se__sessions(db, r->uuid) > 0)
        return err;
    err = store_db_write(db, "UPDATE se_runtime SET connected=0, last_heartbeat_ms=max("
                             "coalesce(last_heartbeat_ms, 0), ?2) WHERE uuid=?1",
                         STORE_DB_BIND(STORE_DB_TEXT(r->uuid), STORE_DB_INT(r->time)));
    if (err == 0)
        err = store_se__event(db, r, "SE_DOWN", tag, "is down",
                              json_pack("{s:s}", "se_name", r->name));
    return err;
}

int store_se_session(struct store_db *db, json_t *cmd, struct store_result *res)
{
    struct store_se__report r = {0};
    char *name;

    if (json_unpack(cmd, "{s:s, s:s, s:I, s:I, s:I, s?s, s?I, s?I, s?I}", "uuid", &r.uuid,
                    "change", &r.change, "node", &r.node, "since", &r.since, "time", &r.time,
                    "se_state", &r.se_state, "missed", &r.missed, "state_since",
                    &r.state_since, "spooled_logs", &r.spooled_logs) != 0)
        return VIGIL_EINVAL;
    res->outcome = STORE_OK;
    name = store_db_text(db, "SELECT name FROM objects WHERE type=? AND uuid=?",
                         STORE_DB_BIND(STORE_DB_INT(OBJ_SERVICEENGINE), STORE_DB_TEXT(r.uuid)));
    if (name == NULL)
        return 0; /* its object is gone: so is its record */
    snprintf(r.name, sizeof r.name, "%s", name);
    free(name);
    if (strcmp(r.change, "up") == 0)
        return store_se__up(db, &r);
    if (strcmp(r.change, "down") == 0)
        return store_se__down(db, &r);
    if (strcmp(r.change, "state") == 0 && r.se_state != NULL) {
        if (!store_db_has_row(db, "SELECT 1 FROM se_session WHERE uuid=? AND node=? AND "
                                  "since_ms=?",
                              STORE_DB_BIND(STORE_DB_TEXT(r.uuid), STORE_DB_INT(r.node),
                                            STORE_DB_INT(r.since))))
            return 0;
        if (store_db_write(db, "UPDATE se_session SET se_state=? WHERE uuid=? AND node=?",
                           STORE_DB_BIND(STORE_DB_TEXT(r.se_state), STORE_DB_TEXT(r.uuid),
                                         STORE_DB_INT(r.node))) != 0)
            return VIGIL_EIO;
        return store_se__state(db, &r);
    }
    return VIGIL_EINVAL;
}

int store_se_sessions_reset(struct store_db *db, json_t *cmd, struct store_result *res)
{
    json_int_t node;
    if (json_unpack(cmd, "{s:I}", "node", &node) != 0)
        return VIGIL_EINVAL;
    res->outcome = STORE_OK;
    return store_db_write(db, "DELETE FROM se_session WHERE node=?",
                          STORE_DB_BIND(STORE_DB_INT(node)));
}

int store_se_node_left(struct store_db *db, json_t *cmd, struct store_result *res)
{
    json_int_t id, time_ms;
    const char *boot;
    sqlite3_stmt *st;
    json_t *rows, *row;
    size_t i;
    int err = store_events_node_left(db, cmd, res);

    if (err != 0 || json_unpack(cmd, "{s:I, s:s, s:I}", "id", &id, "boot", &boot, "time",
                                &time_ms) != 0)
        return err;
    if (!store_db_has_row(db, "SELECT 1 FROM presence WHERE id=? AND present=0 AND boot=?",
                          STORE_DB_BIND(STORE_DB_INT(id), STORE_DB_TEXT(boot))))
        return 0; /* no move recorded: a stale or repeated report */
    st = store_db_statement(db, "SELECT uuid, since_ms FROM se_session WHERE node=?",
                            STORE_DB_BIND(STORE_DB_INT(id)));
    if (st == NULL)
        return VIGIL_EIO;
    rows = json_array();
    while (sqlite3_step(st) == SQLITE_ROW)
        json_array_append_new(rows, json_pack("{s:s, s:s, s:I, s:I, s:I}", "uuid",
                                              (const char *)sqlite3_column_text(st, 0), "change",
                                              "down", "node", id, "since",
                                              (json_int_t)sqlite3_column_int64(st, 1), "time",
                                              time_ms));
    store_db_release(db, st);
    json_array_foreach(rows, i, row) {
        if ((err = store_se_session(db, row, res)) != 0)
            break;
    }
    json_decref(rows);
    res->outcome = STORE_OK;
    return err;
}

int store_se_forget(struct store_db *db, const char *uuid)
{
    if (store_db_write(db, "DELETE FROM se_session WHERE uuid=?",
                       STORE_DB_BIND(STORE_DB_TEXT(uuid))) != 0)
        return VIGIL_EIO;
    return store_db_write(db, "DELETE FROM se_runtime WHERE uuid=?",
                          STORE_DB_BIND(STORE_DB_TEXT(uuid)));
}
