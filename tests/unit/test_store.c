/* test_store.c: the config database and its commands (controller/store.c and the
 * command modules under it), driven through store.h; the statement cache through
 * store_db.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/errors.h"
#include "common/objects.h"
#include "common/timeutil.h"
#include "common/vlog.h"
#include "controller/store/store.h"
#include "controller/store/store-int.h" /* the statement cache (store_db.h) */

#define HM1 "10000000-0000-4000-8000-000000000001"
#define HM2 "10000000-0000-4000-8000-000000000002"
#define P1 "20000000-0000-4000-8000-000000000001"
#define P2 "20000000-0000-4000-8000-000000000002"
#define VS1 "30000000-0000-4000-8000-000000000001"
#define SE1 "40000000-0000-4000-8000-000000000001"
#define SE2 "40000000-0000-4000-8000-000000000002"
#define MISSING "99999999-9999-4999-8999-999999999999"
#define KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDOQAI4qMERkzpvA7qss0VckZtLcEcGGhGiPbZBz8Vbq"

#define HM_BODY(name) "{\"name\": \"" name "\", \"type\": \"HEALTH_MONITOR_TCP\"}"
#define POOL_BODY(name, refs)                                                                  \
    "{\"name\": \"" name "\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 9001}],"         \
    " \"health_monitor_refs\": [" refs "]}"
#define VS_BODY(name, pool, ses)                                                               \
    "{\"name\": \"" name "\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 10080}],"      \
    " \"pool_ref\": \"" pool "\", \"se_refs\": [" ses "]}"
#define SE_BODY(name) "{\"name\": \"" name "\", \"public_key\": \"" KEY "\"}"

#define T0 1795845600123LL /* 2026-11-28T06:00:00.123Z */


/* ---------------------------------------------------------------------------------- */
/* Helpers                                                                             */

static char last_error[512];

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        fail_msg("test JSON does not parse: %s: %s", jerr.text, text);
    return j;
}

static struct store *open_store(void)
{
    struct store *s = NULL;
    assert_int_equal(store_open(&s), 0);
    assert_non_null(s);
    return s;
}

static int setup(void **state)
{
    *state = open_store();
    return 0;
}

static int teardown(void **state)
{
    store_close(*state);
    return 0;
}

/* Applies the command (printf format), asserts it is a known command with outcome
 * EXPECT, keeps its error text in last_error and returns its body (caller owns). */
static json_t *run(struct store *s, enum store_outcome expect, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *run(struct store *s, enum store_outcome expect, const char *fmt, ...)
{
    struct store_result res;
    char text[8192];
    va_list ap;
    json_t *body;
    int rv;

    va_start(ap, fmt);
    assert_true((size_t)vsnprintf(text, sizeof text, fmt, ap) < sizeof text);
    va_end(ap);
    memset(&res, 0x5a, sizeof res); /* apply zeroes it */
    rv = store_apply(s, text, strlen(text), &res);
    if (rv != 0)
        fail_msg("store_apply returned %d (%s) for %s", rv, vigil_strerror(rv), text);
    if (res.outcome != expect)
        fail_msg("outcome %s (error '%s'), expected %s, for %s", store_outcome_name(res.outcome),
                 res.error, store_outcome_name(expect), text);
    if (store_outcome_refused(expect)) {
        assert_null(res.body);
        assert_true(res.error[0] != '\0');
    }
    snprintf(last_error, sizeof last_error, "%s", res.error);
    body = res.body;
    res.body = NULL;
    store_result_clear(&res);
    return body;
}

#define RUN(s, expect, ...) json_decref(run(s, expect, __VA_ARGS__))

static json_t *create(struct store *s, enum store_outcome expect, const char *type, const char *uuid,
                      const char *body)
{
    return run(s, expect, "{\"op\": \"object_create\", \"type\": \"%s\", \"uuid\": \"%s\", \"object\": %s}",
               type, uuid, body);
}

static json_t *update(struct store *s, enum store_outcome expect, const char *type, const char *uuid,
                      const char *body)
{
    return run(s, expect, "{\"op\": \"object_update\", \"type\": \"%s\", \"uuid\": \"%s\", \"object\": %s}",
               type, uuid, body);
}

static void delete(struct store *s, enum store_outcome expect, const char *type, const char *uuid)
{
    RUN(s, expect, "{\"op\": \"object_delete\", \"type\": \"%s\", \"uuid\": \"%s\"}", type, uuid);
}

static void assert_error_has(const char *part)
{
    if (strstr(last_error, part) == NULL)
        fail_msg("error '%s' does not mention '%s'", last_error, part);
}

static void assert_json_eq(json_t *actual, json_t *expect)
{
    if (!json_equal(actual, expect)) {
        char *a = json_dumps(actual, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        char *e = json_dumps(expect, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        fail_msg("JSON differs\n  actual: %s\n  expect: %s", a ? a : "(null)", e ? e : "(null)");
    }
}

static void assert_json_text(json_t *actual, const char *expect_text)
{
    json_t *expect = parse(expect_text);
    assert_json_eq(actual, expect);
    json_decref(expect);
}

/* Everything the store answers through its public queries. */
static json_t *dump(struct store *s)
{
    static const char *const meta[] = {"cluster_uuid", "cluster_name", "leader", "schema_version"};
    static const char *const ses[] = {SE1, SE2, MISSING};
    json_t *d = json_object(), *m = json_object(), *rt = json_object();
    int64_t total;

    for (int t = 0; t < OBJ__COUNT; t++) {
        json_t *list = store_object_list(s, (enum obj_type)t, 0, 1000000, &total);
        assert_int_equal(json_array_size(list), total);
        json_object_set_new(d, obj_type_name((enum obj_type)t), list);
    }
    json_object_set_new(d, "nodes", store_nodes(s));
    json_object_set_new(d, "events", store_events_list(s, NULL, 0, 0, 1000000, &total));
    json_object_set_new(d, "se_connected", store_se_connected(s));
    for (size_t i = 0; i < sizeof meta / sizeof meta[0]; i++) {
        char *v = store_meta_get(s, meta[i]);
        json_object_set_new(m, meta[i], v != NULL ? json_string(v) : json_null());
        free(v);
    }
    json_object_set_new(d, "meta", m);
    for (size_t i = 0; i < sizeof ses / sizeof ses[0]; i++) {
        json_t *r = store_se_runtime(s, ses[i]);
        json_object_set_new(rt, ses[i], r != NULL ? r : json_null());
    }
    json_object_set_new(d, "se_runtime", rt);
    return d;
}

static void assert_same_dump(json_t *before, struct store *s)
{
    json_t *now = dump(s);
    assert_json_eq(now, before);
    json_decref(now);
}

static void register_node(struct store *s, int id, const char *name, const char *ip)
{
    RUN(s, STORE_OK,
        "{\"op\": \"node_register\", \"node\": {\"id\": %d, \"name\": \"%s\","
        " \"raft_address\": \"%s:7000\", \"api_address\": \"%s:8080\","
        " \"se_address\": \"%s:5098\", \"se_host_key\": \"" KEY "\"}}",
        id, name, ip, ip, ip);
}

static void presence(struct store *s, int joined, int id, const char *boot, int64_t time_ms,
                     const char *role)
{
    RUN(s, STORE_OK, "{\"op\": \"%s\", \"id\": %d, \"boot\": \"%s\", \"time\": %lld, \"role\": \"%s\"}",
        joined ? "node_joined" : "node_left", id, boot, (long long)time_ms, role);
}

static void leader(struct store *s, int id, const char *boot, int term, int64_t time_ms)
{
    RUN(s, STORE_OK, "{\"op\": \"leader_elected\", \"leader\": %d, \"boot\": \"%s\", \"term\": %d, \"time\": %lld}",
        id, boot, term, (long long)time_ms);
}

static void record_event(struct store *s, const char *key, const char *event_id, int64_t time_ms,
                         const char *name)
{
    RUN(s, STORE_OK,
        "{\"op\": \"event_record\", \"key\": \"%s\", \"event_id\": \"%s\", \"time\": %lld,"
        " \"module\": \"CLUSTERMGR\", \"obj_type\": \"CLUSTER\", \"obj_name\": \"%s\","
        " \"description\": \"d %s\", \"details\": {\"k\": \"%s\"}}",
        key, event_id, (long long)time_ms, name, key, key);
}

static json_t *events(struct store *s, const char *event_id, int64_t *total)
{
    return store_events_list(s, event_id, 0, 0, 1000, total);
}

/* A store with one object of each type, references between them, nodes, events. */
static void populate(struct store *s)
{
    RUN(s, STORE_OK, "{\"op\": \"cluster_init\", \"uuid\": \"" MISSING "\", \"name\": \"vigil\"}");
    register_node(s, 1, "node-1", "127.0.0.1");
    register_node(s, 2, "node-2", "127.0.0.2");
    json_decref(create(s, STORE_CREATED, "healthmonitor", HM1, HM_BODY("hm1")));
    json_decref(create(s, STORE_CREATED, "healthmonitor", HM2, HM_BODY("hm2")));
    json_decref(create(s, STORE_CREATED, "pool", P1, POOL_BODY("p1", "\"" HM1 "\"")));
    json_decref(create(s, STORE_CREATED, "serviceengine", SE1, SE_BODY("se-1")));
    json_decref(create(s, STORE_CREATED, "virtualservice", VS1, VS_BODY("vs1", P1, "\"" SE1 "\"")));
    record_event(s, "k1", "SE_UP", T0, "se-1");
    presence(s, 1, 2, "boot-a", T0, "CLUSTER_FOLLOWER");
    presence(s, 0, 2, "boot-a", T0 + 10, "CLUSTER_FOLLOWER");
    leader(s, 1, "boot-1", 2, T0 + 20);
    RUN(s, STORE_OK, "{\"op\": \"se_runtime\", \"uuid\": \"" SE1 "\", \"connected\": true,"
                " \"controller_node\": 1, \"time\": %lld, \"se_state\": \"CONNECTED\"}",
        (long long)T0);
}

/* ---------------------------------------------------------------------------------- */
/* Objects                                                                             */

static void test_empty(void **state)
{
    struct store *s = *state;
    int64_t total = -1;
    json_t *l;

    for (int t = 0; t < OBJ__COUNT; t++) {
        l = store_object_list(s, (enum obj_type)t, 0, 100, &total);
        assert_int_equal(json_array_size(l), 0);
        assert_int_equal(total, 0);
        json_decref(l);
    }
    assert_null(store_object_get(s, OBJ_POOL, P1));
    assert_null(store_object_get_by_name(s, OBJ_POOL, "p1"));
    assert_null(store_meta_get(s, "cluster_uuid"));
    l = store_nodes(s);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    l = events(s, NULL, &total);
    assert_int_equal(total, 0);
    json_decref(l);
    assert_null(store_se_runtime(s, SE1));
    l = store_se_connected(s);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
}

static void test_create_every_type(void **state)
{
    struct store *s = *state;
    static const struct {
        enum obj_type type;
        const char *uuid, *name, *body, *stored;
    } cases[] = {
        {OBJ_HEALTHMONITOR, HM1, "hm1", HM_BODY("hm1"),
         "{\"uuid\": \"" HM1 "\", \"name\": \"hm1\", \"type\": \"HEALTH_MONITOR_TCP\", \"send_interval\": 5,"
         " \"receive_timeout\": 4, \"successful_checks\": 2, \"failed_checks\": 2}"},
        {OBJ_POOL, P1, "p1", POOL_BODY("p1", "\"" HM1 "\""),
         "{\"uuid\": \"" P1 "\", \"name\": \"p1\", \"lb_algorithm\": \"LB_ALGORITHM_ROUND_ROBIN\","
         " \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 9001, \"enabled\": true}],"
         " \"health_monitor_refs\": [\"" HM1 "\"]}"},
        {OBJ_SERVICEENGINE, SE1, "se-1", SE_BODY("se-1"),
         "{\"uuid\": \"" SE1 "\", \"name\": \"se-1\", \"public_key\": \"" KEY "\"}"},
        {OBJ_VIRTUALSERVICE, VS1, "vs1", VS_BODY("vs1", P1, "\"" SE1 "\""),
         "{\"uuid\": \"" VS1 "\", \"name\": \"vs1\", \"enabled\": true, \"vip\": \"127.0.0.1\","
         " \"services\": [{\"port\": 10080}], \"application\": \"http\","
         " \"x_forwarded_for\": \"replace\", \"pool_ref\": \"" P1 "\","
         " \"se_refs\": [\"" SE1 "\"]}"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *body = create(s, STORE_CREATED, obj_type_name(cases[i].type), cases[i].uuid, cases[i].body);
        json_t *got;
        int64_t total;
        assert_json_text(body, cases[i].stored);
        json_decref(body);
        got = store_object_get(s, cases[i].type, cases[i].uuid);
        assert_json_text(got, cases[i].stored);
        json_decref(got);
        got = store_object_get_by_name(s, cases[i].type, cases[i].name);
        assert_json_text(got, cases[i].stored);
        json_decref(got);
        got = store_object_list(s, cases[i].type, 0, 10, &total);
        assert_int_equal(total, 1);
        assert_json_text(json_array_get(got, 0), cases[i].stored);
        json_decref(got);
        /* Another type does not see it. */
        assert_null(store_object_get(s, (enum obj_type)((cases[i].type + 1) % OBJ__COUNT),
                                     cases[i].uuid));
    }
}

/* A "uuid" inside the body never overrides the command's. */
static void test_create_body_uuid_ignored(void **state)
{
    struct store *s = *state;
    json_t *b = create(s, STORE_CREATED, "healthmonitor", HM1,
                       "{\"uuid\": \"" HM2 "\", \"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\"}");
    assert_string_equal(json_string_value(json_object_get(b, "uuid")), HM1);
    json_decref(b);
    assert_null(store_object_get(s, OBJ_HEALTHMONITOR, HM2));
    b = store_object_get_by_name(s, OBJ_HEALTHMONITOR, "m");
    assert_string_equal(json_string_value(json_object_get(b, "uuid")), HM1);
    json_decref(b);
}

static void test_unique_names(void **state)
{
    struct store *s = *state;
    json_t *before;

    json_decref(create(s, STORE_CREATED, "healthmonitor", HM1, HM_BODY("same")));
    before = dump(s);
    json_decref(create(s, STORE_CONFLICT, "healthmonitor", HM2, HM_BODY("same")));
    assert_error_has("name");
    assert_error_has("same");
    assert_same_dump(before, s);
    json_decref(before);
    /* The same name in another type is fine. */
    json_decref(create(s, STORE_CREATED, "pool", P1, POOL_BODY("same", "")));
    json_decref(create(s, STORE_CREATED, "serviceengine", SE1, SE_BODY("same")));
    json_decref(create(s, STORE_CREATED, "virtualservice", VS1, VS_BODY("same", P1, "")));
    /* Names are compared exactly (case matters). */
    json_decref(create(s, STORE_CREATED, "healthmonitor", HM2, HM_BODY("Same")));
}

static void test_create_existing_uuid(void **state)
{
    struct store *s = *state;
    json_t *before, *got;

    json_decref(create(s, STORE_CREATED, "healthmonitor", HM1, HM_BODY("hm1")));
    json_decref(create(s, STORE_CREATED, "healthmonitor", HM2, HM_BODY("hm2")));
    json_decref(create(s, STORE_CREATED, "pool", P1, POOL_BODY("p1", "\"" HM1 "\"")));
    before = dump(s);
    /* Another name, and references to something else: refused, nothing changed (not even
     * the references of the existing object). */
    json_decref(create(s, STORE_CONFLICT, "pool", P1, POOL_BODY("other", "\"" HM2 "\"")));
    assert_error_has(P1);
    assert_same_dump(before, s);
    /* Same uuid and same name: refused too. */
    json_decref(create(s, STORE_CONFLICT, "pool", P1, POOL_BODY("p1", "")));
    assert_same_dump(before, s);
    json_decref(before);
    /* The references of P1 are still exactly HM1. */
    delete(s, STORE_CONFLICT, "healthmonitor", HM1);
    delete(s, STORE_REMOVED, "healthmonitor", HM2);
    got = store_object_get(s, OBJ_POOL, P1);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "p1");
    json_decref(got);
    /* The same uuid in another type is another object. */
    json_decref(create(s, STORE_CREATED, "serviceengine", P1, SE_BODY("se-same-uuid")));
}

static void test_invalid_body(void **state)
{
    struct store *s = *state;
    json_t *before;

    json_decref(create(s, STORE_CREATED, "healthmonitor", HM1, HM_BODY("hm1")));
    before = dump(s);
    json_decref(create(s, STORE_INVALID, "healthmonitor", HM2, "{\"name\": \"x\", \"type\": \"BOGUS\"}"));
    assert_error_has("type");
    json_decref(create(s, STORE_INVALID, "pool", P1,
                       "{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 0}]}"));
    assert_error_has("servers[0].port");
    json_decref(create(s, STORE_INVALID, "pool", P1, "{\"name\": \"p\", \"unknown_field\": 1}"));
    assert_error_has("unknown_field");
    json_decref(create(s, STORE_INVALID, "pool", P1, "\"not an object\""));
    json_decref(update(s, STORE_INVALID, "healthmonitor", HM1, "{\"name\": \"\", \"type\": \"HEALTH_MONITOR_TCP\"}"));
    assert_error_has("name");
    assert_same_dump(before, s);
    json_decref(before);
}

static void test_missing_references(void **state)
{
    struct store *s = *state;
    json_t *before;

    json_decref(create(s, STORE_CREATED, "healthmonitor", HM1, HM_BODY("hm1")));
    before = dump(s);
    json_decref(create(s, STORE_INVALID, "pool", P1, POOL_BODY("p1", "\"" HM1 "\", \"" MISSING "\"")));
    assert_error_has("health_monitor_refs");
    assert_error_has(MISSING);
    json_decref(create(s, STORE_INVALID, "virtualservice", VS1, VS_BODY("vs1", MISSING, "")));
    assert_error_has("pool_ref");
    assert_same_dump(before, s);
    json_decref(before);

    json_decref(create(s, STORE_CREATED, "pool", P1, POOL_BODY("p1", "\"" HM1 "\"")));
    json_decref(create(s, STORE_INVALID, "virtualservice", VS1, VS_BODY("vs1", P1, "\"" MISSING "\"")));
    assert_error_has("se_refs");
    /* A reference must point at the right type: a pool uuid is no healthmonitor. */
    json_decref(create(s, STORE_INVALID, "pool", P2, POOL_BODY("p2", "\"" P1 "\"")));
    assert_error_has("health_monitor_refs");

    /* An update adding a missing reference is refused and keeps the old references. */
    before = dump(s);
    json_decref(update(s, STORE_INVALID, "pool", P1, POOL_BODY("p1-renamed", "\"" MISSING "\"")));
    assert_error_has("health_monitor_refs");
    assert_same_dump(before, s);
    json_decref(before);
    delete(s, STORE_CONFLICT, "healthmonitor", HM1);
}

static void test_update(void **state)
{
    struct store *s = *state;
    json_t *b, *before;

    json_decref(create(s, STORE_CREATED, "healthmonitor", HM1, HM_BODY("hm1")));
    json_decref(create(s, STORE_CREATED, "healthmonitor", HM2, HM_BODY("hm2")));
    json_decref(create(s, STORE_CREATED, "pool", P1, POOL_BODY("p1", "\"" HM1 "\"")));
    json_decref(create(s, STORE_CREATED, "pool", P2, POOL_BODY("p2", "")));

    /* PUT replaces the whole object: fields not given fall back to their defaults. */
    b = update(s, STORE_OK, "pool", P1,
               "{\"name\": \"p1\", \"lb_algorithm\": \"LB_ALGORITHM_LEAST_CONNECTIONS\"}");
    assert_json_text(b, "{\"uuid\": \"" P1 "\", \"name\": \"p1\", \"lb_algorithm\": "
                        "\"LB_ALGORITHM_LEAST_CONNECTIONS\", \"servers\": [], \"health_monitor_refs\": []}");
    json_decref(b);
    b = store_object_get(s, OBJ_POOL, P1);
    assert_json_text(b, "{\"uuid\": \"" P1 "\", \"name\": \"p1\", \"lb_algorithm\": "
                        "\"LB_ALGORITHM_LEAST_CONNECTIONS\", \"servers\": [], \"health_monitor_refs\": []}");
    json_decref(b);
    /* Its old reference is gone with it: HM1 can be deleted now. */
    delete(s, STORE_REMOVED, "healthmonitor", HM1);

    /* Updating a missing object: not found, nothing created. */
    before = dump(s);
    json_decref(update(s, STORE_NOT_FOUND, "pool", MISSING, POOL_BODY("ghost", "")));
    assert_error_has(MISSING);
    /* Renaming onto a taken name: a conflict. */
    json_decref(update(s, STORE_CONFLICT, "pool", P1, POOL_BODY("p2", "")));
    assert_error_has("p2");
    assert_same_dump(before, s);
    json_decref(before);

    /* Keeping its own name is fine; renaming frees the old name. */
    json_decref(update(s, STORE_OK, "pool", P1, POOL_BODY("p1", "\"" HM2 "\"")));
    json_decref(update(s, STORE_OK, "pool", P1, POOL_BODY("p1-new", "\"" HM2 "\"")));
    assert_null(store_object_get_by_name(s, OBJ_POOL, "p1"));
    b = store_object_get_by_name(s, OBJ_POOL, "p1-new");
    assert_string_equal(json_string_value(json_object_get(b, "uuid")), P1);
    json_decref(b);
    json_decref(create(s, STORE_CREATED, "pool", MISSING, POOL_BODY("p1", "")));
    delete(s, STORE_CONFLICT, "healthmonitor", HM2);
}

static void test_delete(void **state)
{
    struct store *s = *state;
    json_t *before;

    json_decref(create(s, STORE_CREATED, "healthmonitor", HM1, HM_BODY("hm1")));
    json_decref(create(s, STORE_CREATED, "pool", P1, POOL_BODY("p1", "\"" HM1 "\"")));
    json_decref(create(s, STORE_CREATED, "serviceengine", SE1, SE_BODY("se-1")));
    json_decref(create(s, STORE_CREATED, "virtualservice", VS1, VS_BODY("vs1", P1, "\"" SE1 "\"")));

    before = dump(s);
    delete(s, STORE_NOT_FOUND, "pool", MISSING);
    assert_error_has(MISSING);
    /* The right type only: P1 is no healthmonitor. */
    delete(s, STORE_NOT_FOUND, "healthmonitor", P1);
    /* Every kind of reference holds its target. */
    delete(s, STORE_CONFLICT, "healthmonitor", HM1);
    assert_error_has("pool 'p1'");
    delete(s, STORE_CONFLICT, "pool", P1);
    assert_error_has("virtualservice 'vs1'");
    delete(s, STORE_CONFLICT, "serviceengine", SE1);
    assert_error_has("virtualservice 'vs1'");
    assert_same_dump(before, s);
    json_decref(before);

    /* Deleting the referrer releases its targets, in order. */
    delete(s, STORE_REMOVED, "virtualservice", VS1);
    assert_null(store_object_get(s, OBJ_VIRTUALSERVICE, VS1));
    delete(s, STORE_REMOVED, "serviceengine", SE1);
    delete(s, STORE_REMOVED, "pool", P1);
    delete(s, STORE_REMOVED, "healthmonitor", HM1);
    delete(s, STORE_NOT_FOUND, "healthmonitor", HM1);
    assert_null(store_object_get_by_name(s, OBJ_HEALTHMONITOR, "hm1"));
    /* The names are free again. */
    json_decref(create(s, STORE_CREATED, "healthmonitor", HM2, HM_BODY("hm1")));
}

static int config_watch_calls;

static void on_config_change(void *data)
{
    (void)data;
    config_watch_calls++;
}

/* config_version counts the applied object writes (refusals and other commands do not
 * count), survives a snapshot and restore, and the config watch hears of every entry that
 * ran an object command, after it ran. */
static void test_config_version(void **state)
{
    struct store *s = *state, *copy = open_store();
    void *data;
    size_t len;

    store_set_config_watch(s, on_config_change, NULL);
    config_watch_calls = 0;
    assert_int_equal(store_config_version(s), 0);
    json_decref(create(s, STORE_CREATED, "healthmonitor", HM1, HM_BODY("hm1")));
    assert_int_equal(store_config_version(s), 1);
    assert_int_equal(config_watch_calls, 1);
    json_decref(create(s, STORE_CONFLICT, "healthmonitor", HM2, HM_BODY("hm1")));
    assert_int_equal(store_config_version(s), 1);
    json_decref(create(s, STORE_CREATED, "pool", P1, POOL_BODY("p1", "\"" HM1 "\"")));
    json_decref(update(s, STORE_OK, "pool", P1, POOL_BODY("p1", "")));
    delete(s, STORE_REMOVED, "healthmonitor", HM1);
    assert_int_equal(store_config_version(s), 4);
    register_node(s, 1, "n1", "127.0.0.1");
    assert_int_equal(store_config_version(s), 4);
    assert_int_equal(config_watch_calls, 5); /* the refused one too; not node_register */

    assert_int_equal(store_snapshot(s, &data, &len), 0);
    store_set_config_watch(copy, on_config_change, NULL);
    assert_int_equal(store_restore(copy, data, len), 0);
    assert_int_equal(store_config_version(copy), 4);
    assert_int_equal(config_watch_calls, 6);
    store_snapshot_done(s, data);
    store_set_config_watch(s, NULL, NULL);
    json_decref(create(s, STORE_CREATED, "healthmonitor", HM2, HM_BODY("hm2")));
    assert_int_equal(config_watch_calls, 6);
    assert_int_equal(store_config_version(s), 5);
    store_close(copy);
}

/* Creation order, paging, totals; an update keeps the place, a new object goes last. */
static void test_list_paging(void **state)
{
    struct store *s = *state;
    char uuids[25][37], names[25][16], body[512];
    int64_t total;
    json_t *l;

    for (int i = 0; i < 25; i++) {
        /* uuids and names both run against creation order */
        snprintf(uuids[i], sizeof uuids[i], "20000000-0000-4000-8000-0000000000%02d", 99 - i);
        snprintf(names[i], sizeof names[i], "pool-%02d", 50 - i);
        snprintf(body, sizeof body, "{\"name\": \"%s\"}", names[i]);
        json_decref(create(s, STORE_CREATED, "pool", uuids[i], body));
    }
    l = store_object_list(s, OBJ_POOL, 0, 10, &total);
    assert_int_equal(total, 25);
    assert_int_equal(json_array_size(l), 10);
    for (int i = 0; i < 10; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(l, i), "uuid")), uuids[i]);
    json_decref(l);
    l = store_object_list(s, OBJ_POOL, 20, 10, &total);
    assert_int_equal(total, 25);
    assert_int_equal(json_array_size(l), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "name")), names[20]);
    json_decref(l);
    l = store_object_list(s, OBJ_POOL, 25, 10, &total);
    assert_int_equal(total, 25);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    l = store_object_list(s, OBJ_POOL, 3, 0, &total);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    /* Other types see none of them. */
    l = store_object_list(s, OBJ_HEALTHMONITOR, 0, 10, &total);
    assert_int_equal(total, 0);
    json_decref(l);

    /* Update (with a rename) keeps the place; delete + create puts the new one last. */
    json_decref(update(s, STORE_OK, "pool", uuids[3], "{\"name\": \"renamed\"}"));
    delete(s, STORE_REMOVED, "pool", uuids[0]);
    json_decref(create(s, STORE_CREATED, "pool", uuids[0], "{\"name\": \"again\"}"));
    l = store_object_list(s, OBJ_POOL, 0, 100, &total);
    assert_int_equal(total, 25);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "uuid")), uuids[1]);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 2), "name")), "renamed");
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 24), "name")), "again");
    json_decref(l);
}

/* ---------------------------------------------------------------------------------- */
/* Nodes and cluster                                                                   */

static void test_node_register(void **state)
{
    struct store *s = *state;
    json_t *l;

    register_node(s, 3, "node-3", "127.0.0.3");
    register_node(s, 1, "node-1", "127.0.0.1");
    l = store_nodes(s);
    assert_json_text(l, "[{\"id\": 1, \"name\": \"node-1\", \"raft_address\": \"127.0.0.1:7000\","
                        " \"api_address\": \"127.0.0.1:8080\", \"se_address\": \"127.0.0.1:5098\","
                        " \"se_host_key\": \"" KEY "\"},"
                        " {\"id\": 3, \"name\": \"node-3\", \"raft_address\": \"127.0.0.3:7000\","
                        " \"api_address\": \"127.0.0.3:8080\", \"se_address\": \"127.0.0.3:5098\","
                        " \"se_host_key\": \"" KEY "\"}]");
    json_decref(l);
    /* Registering again replaces the record. */
    register_node(s, 3, "renamed", "127.0.0.9");
    l = store_nodes(s);
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "name")), "renamed");
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "raft_address")),
                        "127.0.0.9:7000");
    json_decref(l);
}

static void test_cluster_init_first_wins(void **state)
{
    struct store *s = *state;
    char *v;

    RUN(s, STORE_OK, "{\"op\": \"cluster_init\", \"uuid\": \"" HM1 "\", \"name\": \"first\"}");
    RUN(s, STORE_OK, "{\"op\": \"cluster_init\", \"uuid\": \"" HM2 "\", \"name\": \"second\"}");
    v = store_meta_get(s, "cluster_uuid");
    assert_string_equal(v, HM1);
    free(v);
    v = store_meta_get(s, "cluster_name");
    assert_string_equal(v, "first");
    free(v);
    assert_null(store_meta_get(s, "no_such_key"));
}

/* ---------------------------------------------------------------------------------- */
/* Events                                                                              */

static void test_event_record_dedupe(void **state)
{
    struct store *s = *state;
    int64_t total;
    json_t *l, *e;
    char ts[TIME_RFC3339_LEN];

    record_event(s, "key-1", "SE_UP", T0, "first");
    /* The same key again, even with other content: recorded once, the first kept. */
    record_event(s, "key-1", "SE_DOWN", T0 + 5, "second");
    l = events(s, NULL, &total);
    assert_int_equal(total, 1);
    assert_int_equal(json_array_size(l), 1);
    e = json_array_get(l, 0);
    time_format_rfc3339(T0, ts);
    assert_int_equal(json_object_size(e), 8);
    assert_true(obj_uuid_valid(json_string_value(json_object_get(e, "uuid"))));
    assert_string_equal(json_string_value(json_object_get(e, "event_id")), "SE_UP");
    assert_string_equal(json_string_value(json_object_get(e, "report_timestamp")), ts);
    assert_string_equal(json_string_value(json_object_get(e, "module")), "CLUSTERMGR");
    assert_string_equal(json_string_value(json_object_get(e, "obj_type")), "CLUSTER");
    assert_string_equal(json_string_value(json_object_get(e, "obj_name")), "first");
    assert_string_equal(json_string_value(json_object_get(e, "event_description")), "d key-1");
    assert_json_text(json_object_get(e, "event_details"), "{\"k\": \"key-1\"}");
    json_decref(l);
}

/* The event uuid depends on the key only: every replica names an event the same. */
static void test_event_uuid_deterministic(void **state)
{
    struct store *s = *state, *other = open_store();
    int64_t total;
    json_t *a, *b;

    record_event(s, "key-x", "SE_UP", T0, "n");
    record_event(other, "key-x", "SE_UP", T0, "n");
    record_event(s, "key-y", "SE_UP", T0, "n");
    a = events(s, NULL, &total);
    b = events(other, NULL, &total);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "uuid")),
                        json_string_value(json_object_get(json_array_get(b, 0), "uuid")));
    assert_string_not_equal(json_string_value(json_object_get(json_array_get(a, 0), "uuid")),
                            json_string_value(json_object_get(json_array_get(a, 1), "uuid")));
    json_decref(a);
    json_decref(b);
    store_close(other);
}

/* The store keeps the newest STORE_EVENTS_KEEP events: each one recorded past the cap
 * deletes the oldest (by record order), on every replica alike. Written in batches of 128,
 * as the leader's entries carry them. */
static void test_events_cap(void **state)
{
    enum { BATCH = 128, OVER = 3 };
    struct store *s = *state;
    struct store_result res[BATCH];
    const unsigned n_events = STORE_EVENTS_KEEP + OVER;
    size_t cap = (size_t)BATCH * 300 + 64;
    char *text = malloc(cap);
    int64_t total;
    json_t *l;

    assert_non_null(text);
    for (unsigned first = 0; first < n_events; first += BATCH) {
        size_t len = (size_t)snprintf(text, cap, "{\"op\": \"batch\", \"cmds\": [");
        unsigned n = 0, in_batch = n_events - first < BATCH ? n_events - first : BATCH;
        for (unsigned i = first; i < first + in_batch; i++)
            len += (size_t)snprintf(
                text + len, cap - len,
                "%s{\"op\": \"event_record\", \"key\": \"cap-%06u\", \"event_id\": \"SE_UP\","
                " \"time\": %lld, \"module\": \"CLUSTERMGR\", \"obj_type\": \"CLUSTER\","
                " \"obj_name\": \"n\", \"description\": \"d\", \"details\": {\"i\": %u}}",
                i == first ? "" : ",", i, (long long)(T0 + i), i);
        len += (size_t)snprintf(text + len, cap - len, "]}");
        assert_true(len < cap);
        assert_int_equal(store_apply_entry(s, text, len, res, BATCH, &n), 0);
        assert_int_equal(n, in_batch);
        for (unsigned i = 0; i < n; i++)
            assert_int_equal(res[i].outcome, STORE_OK);
    }
    free(text);

    l = store_events_list(s, NULL, 0, 0, 1, &total);
    assert_int_equal(total, STORE_EVENTS_KEEP);
    /* The OVER oldest are gone; the oldest kept is the next one. */
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(l, 0), "event_details"), "i")),
                     OVER);
    json_decref(l);
    l = store_events_list(s, NULL, 0, STORE_EVENTS_KEEP - 1, 10, &total);
    assert_int_equal(json_array_size(l), 1);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(l, 0), "event_details"), "i")),
                     n_events - 1);
    json_decref(l);
    /* One more, of another kind: still the cap, and the next oldest went. */
    record_event(s, "cap-last", "SE_DOWN", T0 + n_events, "n");
    l = store_events_list(s, NULL, 0, 0, 1, &total);
    assert_int_equal(total, STORE_EVENTS_KEEP);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_array_get(l, 0), "event_details"), "i")),
                     OVER + 1);
    json_decref(l);
}

static void test_events_list(void **state)
{
    struct store *s = *state;
    int64_t total;
    json_t *l;
    char ts[TIME_RFC3339_LEN];

    /* Recorded out of time order (an observation made without quorum arrives late). */
    record_event(s, "a", "SE_UP", T0 + 300, "a");
    record_event(s, "b", "SE_DOWN", T0 + 100, "b");
    record_event(s, "c", "SE_UP", T0 + 200, "c");
    record_event(s, "d", "SE_UP", T0 + 200, "d");
    record_event(s, "e", "SE_DOWN", T0 + 400, "e");

    /* Oldest first; equal times in recording order. */
    l = events(s, NULL, &total);
    assert_int_equal(total, 5);
    {
        static const char *const order[] = {"b", "c", "d", "a", "e"};
        for (int i = 0; i < 5; i++)
            assert_string_equal(json_string_value(json_object_get(json_array_get(l, i), "obj_name")),
                                order[i]);
    }
    json_decref(l);

    l = events(s, "SE_UP", &total);
    assert_int_equal(total, 3);
    assert_int_equal(json_array_size(l), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "obj_name")), "c");
    json_decref(l);

    l = events(s, "NO_SUCH_EVENT", &total);
    assert_int_equal(total, 0);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);

    /* since is inclusive */
    l = store_events_list(s, NULL, T0 + 200, 0, 100, &total);
    assert_int_equal(total, 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "obj_name")), "c");
    json_decref(l);
    l = store_events_list(s, "SE_DOWN", T0 + 101, 0, 100, &total);
    assert_int_equal(total, 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "obj_name")), "e");
    time_format_rfc3339(T0 + 400, ts);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "report_timestamp")), ts);
    json_decref(l);

    /* Paging: total counts every match, the page only its part. */
    l = store_events_list(s, NULL, 0, 1, 2, &total);
    assert_int_equal(total, 5);
    assert_int_equal(json_array_size(l), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "obj_name")), "c");
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "obj_name")), "d");
    json_decref(l);
    l = store_events_list(s, "SE_UP", 0, 2, 2, &total);
    assert_int_equal(total, 3);
    assert_int_equal(json_array_size(l), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "obj_name")), "a");
    json_decref(l);
    l = store_events_list(s, NULL, 0, 5, 2, &total);
    assert_int_equal(total, 5);
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
}

/* The one event of EVENT_ID; asserts there is exactly one. */
static json_t *only_event(struct store *s, const char *event_id)
{
    int64_t total;
    json_t *l = events(s, event_id, &total), *e;
    if (total != 1)
        fail_msg("%lld %s events, expected 1", (long long)total, event_id);
    e = json_incref(json_array_get(l, 0));
    json_decref(l);
    return e;
}

static int64_t count(struct store *s, const char *event_id)
{
    int64_t total;
    json_decref(events(s, event_id, &total));
    return total;
}

/* An observer's report of a leave waited for quorum, and the restarted node's join of its
 * new incarnation was applied first: the leave is still recorded, with its real time, once. */
static void test_presence_late_left(void **state)
{
    struct store *s = *state;

    register_node(s, 3, "node-3", "127.0.0.3");
    presence(s, 1, 3, "boot-a", T0, "CLUSTER_FOLLOWER");            /* formation */
    presence(s, 1, 3, "boot-b", T0 + 5000, "CLUSTER_FOLLOWER");     /* restarted, unseen */
    assert_int_equal(count(s, "CONTROLLER_NODE_JOINED"), 1);
    presence(s, 0, 3, "boot-a", T0 + 1000, "CLUSTER_FOLLOWER");     /* seen leaving, late */
    presence(s, 0, 3, "boot-a", T0 + 1100, "CLUSTER_FOLLOWER");     /* a second observer */
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 1);
    /* A leave of boot-a said to happen after boot-b joined is nonsense: ignored. */
    presence(s, 0, 3, "boot-c", T0 + 9000, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 1);
    /* boot-b is still present and can leave. */
    presence(s, 0, 3, "boot-b", T0 + 9500, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 2);
}

static void test_presence(void **state)
{
    struct store *s = *state;
    json_t *e;
    char ts[TIME_RFC3339_LEN];

    register_node(s, 2, "node-2", "127.0.0.2");

    /* First appearance (cluster formation): silent. Repeated: still silent. */
    presence(s, 1, 2, "boot-a", T0, "CLUSTER_FOLLOWER");
    presence(s, 1, 2, "boot-a", T0 + 1, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, NULL), 0);

    /* Another incarnation cannot leave; the present one can, once. */
    presence(s, 0, 2, "boot-old", T0 + 2, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, NULL), 0);
    presence(s, 0, 2, "boot-a", T0 + 3, "CLUSTER_LEADER");
    presence(s, 0, 2, "boot-a", T0 + 4, "CLUSTER_FOLLOWER"); /* reported by another node */
    assert_int_equal(count(s, NULL), 1);
    e = only_event(s, "CONTROLLER_NODE_LEFT");
    time_format_rfc3339(T0 + 3, ts);
    assert_string_equal(json_string_value(json_object_get(e, "report_timestamp")), ts);
    assert_string_equal(json_string_value(json_object_get(e, "module")), "CLUSTERMGR");
    assert_string_equal(json_string_value(json_object_get(e, "obj_type")), "CONTROLLER_NODE");
    assert_string_equal(json_string_value(json_object_get(e, "obj_name")), "node-2");
    assert_string_equal(json_string_value(json_object_get(e, "event_description")),
                        "Controller node node-2 left the cluster");
    assert_json_text(json_object_get(e, "event_details"),
                     "{\"node_name\": \"node-2\", \"ip\": \"127.0.0.2\", \"role\": \"CLUSTER_LEADER\"}");
    json_decref(e);

    /* A new boot joins (after having left). */
    presence(s, 1, 2, "boot-b", T0 + 10, "CLUSTER_FOLLOWER");
    presence(s, 1, 2, "boot-b", T0 + 11, "CLUSTER_FOLLOWER");
    e = only_event(s, "CONTROLLER_NODE_JOINED");
    assert_string_equal(json_string_value(json_object_get(e, "event_description")),
                        "Controller node node-2 joined the cluster");
    assert_json_text(json_object_get(e, "event_details"),
                     "{\"node_name\": \"node-2\", \"ip\": \"127.0.0.2\", \"role\": \"CLUSTER_FOLLOWER\"}");
    json_decref(e);

    /* A node restarted unseen: a new boot while present gives JOINED, without LEFT. */
    presence(s, 1, 2, "boot-c", T0 + 20, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_JOINED"), 2);
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 1);
    /* The stale incarnation leaving now is not news. */
    presence(s, 0, 2, "boot-b", T0 + 21, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 1);

    /* Left and back with the same boot (a partition, no restart): JOINED. (Node 3, whose
     * boot has not joined before: see test_presence_repeated_partition.) */
    register_node(s, 3, "node-3", "127.0.0.3");
    presence(s, 1, 3, "boot-p", T0 + 30, "CLUSTER_FOLLOWER");
    presence(s, 0, 3, "boot-p", T0 + 31, "CLUSTER_FOLLOWER");
    presence(s, 1, 3, "boot-p", T0 + 32, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 2);
    assert_int_equal(count(s, "CONTROLLER_NODE_JOINED"), 3);

    /* A leave that comes again after the rejoin another observer reported (an outbox's
     * resend, or a late observer): older than the rejoin, so no move, not a second leave;
     * a join older than a recorded leave neither. A newer leave is one. */
    presence(s, 0, 3, "boot-p", T0 + 31, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 2);
    presence(s, 0, 3, "boot-p", T0 + 35, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 3);
    presence(s, 1, 3, "boot-p", T0 + 33, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_JOINED"), 3);

    /* A node that never registered: named by its id, no ip. */
    presence(s, 1, 7, "x", T0 + 40, "CLUSTER_FOLLOWER");
    presence(s, 0, 7, "x", T0 + 41, "CLUSTER_FOLLOWER");
    {
        int64_t total;
        json_t *l = store_events_list(s, "CONTROLLER_NODE_LEFT", T0 + 41, 0, 10, &total);
        assert_int_equal(total, 1);
        assert_json_text(json_object_get(json_array_get(l, 0), "event_details"),
                         "{\"node_name\": \"node-7\", \"ip\": \"\", \"role\": \"CLUSTER_FOLLOWER\"}");
        assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "obj_name")),
                            "node-7");
        json_decref(l);
    }
    /* A node whose first report is a leave: nothing. */
    presence(s, 0, 8, "y", T0 + 50, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 4);
}

/* The same incarnation partitioned away twice leaves twice and rejoins twice. */
static void test_presence_repeated_partition(void **state)
{
    struct store *s = *state;

    register_node(s, 2, "node-2", "127.0.0.2");
    /* Restarted: left as boot-a, back as boot-b. */
    presence(s, 1, 2, "boot-a", T0, "CLUSTER_FOLLOWER");
    presence(s, 0, 2, "boot-a", T0 + 10, "CLUSTER_FOLLOWER");
    presence(s, 1, 2, "boot-b", T0 + 20, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 1);
    assert_int_equal(count(s, "CONTROLLER_NODE_JOINED"), 1);
    /* Later partitioned away and healed, twice, without restarting. */
    presence(s, 0, 2, "boot-b", T0 + 30, "CLUSTER_FOLLOWER");
    presence(s, 1, 2, "boot-b", T0 + 40, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 2);
    assert_int_equal(count(s, "CONTROLLER_NODE_JOINED"), 2);
    presence(s, 0, 2, "boot-b", T0 + 50, "CLUSTER_FOLLOWER");
    presence(s, 1, 2, "boot-b", T0 + 60, "CLUSTER_FOLLOWER");
    assert_int_equal(count(s, "CONTROLLER_NODE_LEFT"), 3);
    assert_int_equal(count(s, "CONTROLLER_NODE_JOINED"), 3);
}

static void test_leader_elected(void **state)
{
    struct store *s = *state;
    json_t *e;
    char ts[TIME_RFC3339_LEN];

    register_node(s, 1, "node-1", "127.0.0.1");
    register_node(s, 2, "node-2", "127.0.0.2");

    /* The first leader ever: no failover. Reported twice: nothing. */
    leader(s, 1, "boot-1", 2, T0);
    leader(s, 1, "boot-1", 2, T0 + 1);
    assert_int_equal(count(s, NULL), 0);

    /* Another node in a new term: one failover, also when reported again. */
    leader(s, 2, "boot-2", 3, T0 + 100);
    leader(s, 2, "boot-2", 3, T0 + 101);
    e = only_event(s, "CONTROLLER_LEADER_FAILOVER");
    time_format_rfc3339(T0 + 100, ts);
    assert_string_equal(json_string_value(json_object_get(e, "report_timestamp")), ts);
    assert_string_equal(json_string_value(json_object_get(e, "module")), "CLUSTERMGR");
    assert_string_equal(json_string_value(json_object_get(e, "obj_type")), "CONTROLLER_NODE");
    assert_string_equal(json_string_value(json_object_get(e, "obj_name")), "node-2");
    assert_string_equal(json_string_value(json_object_get(e, "event_description")),
                        "Controller node node-2 took over as leader from node-1");
    assert_json_text(json_object_get(e, "event_details"),
                     "{\"leader_node\": \"node-2\", \"previous_leader_node\": \"node-1\"}");
    json_decref(e);

    /* The same node in a new term (quorum was lost since): a failover. */
    leader(s, 2, "boot-2", 4, T0 + 200);
    assert_int_equal(count(s, "CONTROLLER_LEADER_FAILOVER"), 2);
    /* The same node after a restart (new boot): a failover. */
    leader(s, 2, "boot-2b", 4, T0 + 300);
    assert_int_equal(count(s, "CONTROLLER_LEADER_FAILOVER"), 3);
    leader(s, 2, "boot-2b", 4, T0 + 301);
    assert_int_equal(count(s, "CONTROLLER_LEADER_FAILOVER"), 3);
    assert_int_equal(count(s, NULL), 3);
    {
        char *rec = store_meta_get(s, "leader");
        json_t *j = parse(rec);
        assert_json_text(j, "{\"leader\": 2, \"boot\": \"boot-2b\", \"term\": 4}");
        json_decref(j);
        free(rec);
    }
}

/* A report from an older term that arrives late (forwarded from an outbox after a newer
 * leader was recorded) is no failover and does not replace the newer record. */
static void test_leader_elected_stale_term(void **state)
{
    struct store *s = *state;
    char *rec;
    json_t *j;

    register_node(s, 1, "node-1", "127.0.0.1");
    register_node(s, 2, "node-2", "127.0.0.2");
    leader(s, 1, "boot-1", 2, T0);
    leader(s, 2, "boot-2", 3, T0 + 100);
    leader(s, 1, "boot-1", 2, T0 + 5); /* late */
    assert_int_equal(count(s, "CONTROLLER_LEADER_FAILOVER"), 1);
    rec = store_meta_get(s, "leader");
    j = parse(rec);
    assert_json_text(j, "{\"leader\": 2, \"boot\": \"boot-2\", \"term\": 3}");
    json_decref(j);
    free(rec);
}

/* ---------------------------------------------------------------------------------- */
/* SE runtime                                                                          */

static void se_runtime(struct store *s, const char *uuid, int connected, int node,
                       int64_t time_ms, const char *se_state)
{
    char state_field[64] = "";
    if (se_state != NULL)
        snprintf(state_field, sizeof state_field, ", \"se_state\": \"%s\"", se_state);
    RUN(s, STORE_OK,
        "{\"op\": \"se_runtime\", \"uuid\": \"%s\", \"connected\": %s, \"controller_node\": %d,"
        " \"time\": %lld%s}",
        uuid, connected ? "true" : "false", node, (long long)time_ms, state_field);
}

static void test_se_runtime(void **state)
{
    struct store *s = *state;
    json_t *j;

    json_decref(create(s, STORE_CREATED, "serviceengine", SE1, SE_BODY("se-b")));
    json_decref(create(s, STORE_CREATED, "serviceengine", SE2, SE_BODY("se-a")));

    assert_null(store_se_runtime(s, SE1));
    se_runtime(s, SE1, 1, 2, T0, "CONNECTED");
    j = store_se_runtime(s, SE1);
    assert_json_text(j, "{\"connected\": true, \"controller_node\": 2, \"since_ms\": 1795845600123,"
                        " \"last_heartbeat_ms\": 1795845600123, \"se_state\": \"CONNECTED\", \"sessions\": 0}");
    json_decref(j);

    /* Connected SEs by name; an SE without an object is named by its uuid. */
    se_runtime(s, SE2, 1, 3, T0 + 5, NULL);
    se_runtime(s, MISSING, 1, 1, T0 + 6, "CONNECTED");
    j = store_se_connected(s);
    assert_json_text(j, "[{\"uuid\": \"" MISSING "\", \"name\": \"" MISSING "\", \"since_ms\": 1795845600129, \"controller_node\": 1},"
                        " {\"uuid\": \"" SE2 "\", \"name\": \"se-a\", \"since_ms\": 1795845600128, \"controller_node\": 3},"
                        " {\"uuid\": \"" SE1 "\", \"name\": \"se-b\", \"since_ms\": 1795845600123, \"controller_node\": 2}]");
    json_decref(j);
    j = store_se_runtime(s, SE2);
    assert_true(json_is_null(json_object_get(j, "se_state")));
    json_decref(j);

    /* A disconnect reported by another controller node than the SE's is ignored. */
    se_runtime(s, SE1, 0, 3, T0 + 50, "HEADLESS");
    j = store_se_runtime(s, SE1);
    assert_true(json_is_true(json_object_get(j, "connected")));
    json_decref(j);
    /* By its own node: disconnected, last heartbeat and state kept. */
    se_runtime(s, SE1, 0, 2, T0 + 60, "CONTROLLER_HEARTBEAT_FAILED");
    j = store_se_runtime(s, SE1);
    assert_json_text(j, "{\"connected\": false, \"controller_node\": 2, \"since_ms\": 1795845600123,"
                        " \"last_heartbeat_ms\": 1795845600183, \"se_state\": \"CONTROLLER_HEARTBEAT_FAILED\", \"sessions\": 0}");
    json_decref(j);
    /* Node 0 means any node. */
    se_runtime(s, SE2, 0, 0, T0 + 70, "HEADLESS");
    j = store_se_connected(s);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "uuid")), MISSING);
    json_decref(j);
    /* A disconnect of an SE never recorded creates nothing. */
    se_runtime(s, HM1, 0, 0, T0, NULL);
    assert_null(store_se_runtime(s, HM1));

    /* Reconnecting (to another node) starts a new since. */
    se_runtime(s, SE1, 1, 1, T0 + 1000, "CONNECTED");
    j = store_se_runtime(s, SE1);
    assert_json_text(j, "{\"connected\": true, \"controller_node\": 1, \"since_ms\": 1795845601123,"
                        " \"last_heartbeat_ms\": 1795845601123, \"se_state\": \"CONNECTED\", \"sessions\": 0}");
    json_decref(j);
}

/* A node's report of one of its SE sessions. */
static void se_session(struct store *s, const char *uuid, const char *change, int node,
                       int64_t since, int64_t time_ms, const char *se_state, const char *extra)
{
    RUN(s, STORE_OK,
        "{\"op\": \"se_session\", \"uuid\": \"%s\", \"change\": \"%s\", \"node\": %d,"
        " \"since\": %lld, \"time\": %lld, \"se_state\": \"%s\"%s}",
        uuid, change, node, (long long)since, (long long)time_ms, se_state, extra);
}

/* How many events of EVENT_ID are recorded. */
static int64_t event_count(struct store *s, const char *event_id)
{
    int64_t total = 0;
    json_decref(store_events_list(s, event_id, 0, 0, 1000, &total));
    return total;
}

/* How many SEs are recorded as connected. */
static size_t connected_count(struct store *s)
{
    json_t *j = store_se_connected(s);
    size_t n = json_array_size(j);
    json_decref(j);
    return n;
}

/* Session reports of three nodes: the aggregate and each SE event once per occurrence;
 * a reset node's sessions go without an SE_DOWN; a deleted SE's record goes with it. */
static void test_se_sessions(void **state)
{
    struct store *s = *state;
    json_t *j;

    json_decref(create(s, STORE_CREATED, "serviceengine", SE1, SE_BODY("se-1")));
    se_session(s, SE1, "up", 2, T0, T0, "CONNECTING", "");
    se_session(s, SE1, "up", 1, T0 + 1, T0 + 1, "CONNECTING", "");
    se_session(s, SE1, "up", 1, T0 + 1, T0 + 1, "CONNECTING", ""); /* applied twice */
    se_session(s, SE1, "up", 3, T0 + 2, T0 + 2, "CONNECTING", "");
    assert_int_equal(event_count(s, "SE_UP"), 1);
    se_session(s, SE1, "state", 1, T0 + 1, T0 + 5, "CONNECTED", "");
    se_session(s, SE1, "state", 2, T0, T0 + 5, "CONNECTED", "");
    j = store_se_runtime(s, SE1);
    assert_json_text(j, "{\"connected\": true, \"controller_node\": 2, \"since_ms\": 1795845600123,"
                        " \"last_heartbeat_ms\": 1795845600128, \"se_state\": \"CONNECTED\", \"sessions\": 3}");
    json_decref(j);
    /* The SE's heartbeats fail: one event for every node's report of it. */
    se_session(s, SE1, "state", 1, T0 + 1, T0 + 10, "CONTROLLER_HEARTBEAT_FAILED", "");
    se_session(s, SE1, "state", 3, T0 + 2, T0 + 10, "CONTROLLER_HEARTBEAT_FAILED", "");
    assert_int_equal(event_count(s, "SE_HEARTBEAT_FAILURE"), 1);
    /* Node 2 closes its session for silence; node 3 restarts (no SE_DOWN); node 1's is
     * the last: SE_DOWN once, the SE no longer counts as connected. */
    se_session(s, SE1, "up", 4, T0 + 3, T0 + 3, "CONTROLLER_HEARTBEAT_FAILED", "");
    se_session(s, SE1, "down", 2, T0, T0 + 20, "CONTROLLER_HEARTBEAT_FAILED", ", \"missed\": 3");
    assert_int_equal(event_count(s, "SE_HEARTBEAT_FAILURE"), 2);
    /* Another node closing its session for the same silence: the same occurrence. */
    se_session(s, SE1, "down", 4, T0 + 3, T0 + 20, "CONTROLLER_HEARTBEAT_FAILED", ", \"missed\": 3");
    assert_int_equal(event_count(s, "SE_HEARTBEAT_FAILURE"), 2);
    RUN(s, STORE_OK, "{\"op\": \"se_sessions_reset\", \"node\": 3}");
    se_session(s, SE1, "down", 3, T0 + 2, T0 + 21, "HEADLESS", ""); /* gone already */
    assert_int_equal(event_count(s, "SE_DOWN"), 0);
    assert_int_equal(connected_count(s), 1);
    se_session(s, SE1, "down", 1, T0 + 1, T0 + 30, "HEADLESS", "");
    se_session(s, SE1, "down", 1, T0 + 1, T0 + 30, "HEADLESS", "");
    assert_int_equal(event_count(s, "SE_DOWN"), 1);
    assert_int_equal(connected_count(s), 0);
    /* Back from headless, through every node: SE_UP and SE_HEADLESS_RECOVERED once. */
    se_session(s, SE1, "up", 1, T0 + 100, T0 + 100, "HEADLESS", ", \"state_since\": 1795845600150");
    se_session(s, SE1, "up", 2, T0 + 101, T0 + 101, "HEADLESS", ", \"state_since\": 1795845600150");
    se_session(s, SE1, "state", 1, T0 + 100, T0 + 102, "CONNECTED", "");
    se_session(s, SE1, "up", 3, T0 + 103, T0 + 103, "HEADLESS", ", \"state_since\": 1795845600150");
    assert_int_equal(event_count(s, "SE_UP"), 2);
    assert_int_equal(event_count(s, "SE_HEADLESS_RECOVERED"), 1);
    j = store_se_connected(s);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "since_ms")), T0 + 103);
    json_decref(j);
    /* Deleted: the record goes in the same command; later reports make none. */
    RUN(s, STORE_REMOVED, "{\"op\": \"object_delete\", \"type\": \"serviceengine\", \"uuid\": \"" SE1 "\"}");
    assert_null(store_se_runtime(s, SE1));
    se_session(s, SE1, "up", 2, T0 + 200, T0 + 200, "CONNECTED", "");
    assert_null(store_se_runtime(s, SE1));
    assert_int_equal(connected_count(s), 0);
}

/* An object of another type with the SE's uuid (uuids are unique per type only) does not
 * change how the connected SE is listed. */
static void test_se_connected_other_type_same_uuid(void **state)
{
    struct store *s = *state;
    json_t *j;

    json_decref(create(s, STORE_CREATED, "serviceengine", SE1, SE_BODY("se-1")));
    json_decref(create(s, STORE_CREATED, "pool", SE1, POOL_BODY("a-pool", "")));
    se_runtime(s, SE1, 1, 2, T0, "CONNECTED");
    j = store_se_connected(s);
    assert_int_equal(json_array_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "name")), "se-1");
    json_decref(j);
}

/* ---------------------------------------------------------------------------------- */
/* Malformed commands                                                                  */

static void test_malformed(void **state)
{
    struct store *s = *state;
    static const char *const cmds[] = {
        "",
        "not json",
        "{\"op\": \"object_create\"",
        "[1, 2]",
        "\"object_create\"",
        "{}",
        "{\"op\": 5}",
        "{\"op\": null}",
        "{\"op\": \"bogus\"}",
        "{\"op\": \"OBJECT_CREATE\", \"type\": \"pool\", \"uuid\": \"" P2 "\", \"object\": {\"name\": \"z\"}}",
        "{\"op\": \"cluster_init\", \"uuid\": \"x\", \"name\": \"n\"} trailing",
        /* object commands */
        "{\"op\": \"object_create\", \"uuid\": \"" P2 "\", \"object\": {\"name\": \"z\"}}",
        "{\"op\": \"object_create\", \"type\": \"pool\", \"object\": {\"name\": \"z\"}}",
        "{\"op\": \"object_create\", \"type\": \"pool\", \"uuid\": \"" P2 "\"}",
        "{\"op\": \"object_create\", \"type\": \"widget\", \"uuid\": \"" P2 "\", \"object\": {\"name\": \"z\"}}",
        "{\"op\": \"object_create\", \"type\": 1, \"uuid\": \"" P2 "\", \"object\": {\"name\": \"z\"}}",
        "{\"op\": \"object_create\", \"type\": \"pool\", \"uuid\": \"not-a-uuid\", \"object\": {\"name\": \"z\"}}",
        "{\"op\": \"object_create\", \"type\": \"pool\", \"uuid\": \"20000000-0000-4000-8000-00000000000A\", \"object\": {\"name\": \"z\"}}",
        "{\"op\": \"object_create\", \"type\": \"pool\", \"uuid\": 7, \"object\": {\"name\": \"z\"}}",
        "{\"op\": \"object_update\", \"type\": \"pool\", \"uuid\": \"" P1 "\"}",
        "{\"op\": \"object_update\", \"type\": \"pool\", \"object\": {\"name\": \"z\"}}",
        "{\"op\": \"object_delete\", \"type\": \"pool\"}",
        "{\"op\": \"object_delete\", \"uuid\": \"" P1 "\"}",
        "{\"op\": \"object_delete\", \"type\": \"pools\", \"uuid\": \"" P1 "\"}",
        /* nodes and cluster */
        "{\"op\": \"node_register\"}",
        "{\"op\": \"node_register\", \"node\": {\"id\": 5, \"name\": \"n\", \"raft_address\": \"a\","
        " \"api_address\": \"b\", \"se_address\": \"c\"}}",
        "{\"op\": \"node_register\", \"node\": {\"id\": \"5\", \"name\": \"n\", \"raft_address\": \"a\","
        " \"api_address\": \"b\", \"se_address\": \"c\", \"se_host_key\": \"k\"}}",
        "{\"op\": \"cluster_init\", \"uuid\": \"" HM1 "\"}",
        "{\"op\": \"cluster_init\", \"name\": \"n\"}",
        /* events */
        "{\"op\": \"event_record\", \"key\": \"kk\", \"event_id\": \"SE_UP\", \"time\": 1,"
        " \"module\": \"m\", \"obj_type\": \"o\", \"obj_name\": \"n\", \"description\": \"d\"}",
        "{\"op\": \"event_record\", \"key\": \"kk\", \"event_id\": \"SE_UP\", \"time\": \"1\","
        " \"module\": \"m\", \"obj_type\": \"o\", \"obj_name\": \"n\", \"description\": \"d\", \"details\": {}}",
        "{\"op\": \"event_record\", \"event_id\": \"SE_UP\", \"time\": 1,"
        " \"module\": \"m\", \"obj_type\": \"o\", \"obj_name\": \"n\", \"description\": \"d\", \"details\": {}}",
        "{\"op\": \"node_joined\", \"id\": 2, \"time\": 1, \"role\": \"r\"}",
        "{\"op\": \"node_joined\", \"id\": 2, \"boot\": \"b\", \"time\": 1}",
        "{\"op\": \"node_left\", \"id\": 2, \"boot\": \"boot-a\", \"role\": \"r\"}",
        "{\"op\": \"node_left\", \"id\": \"2\", \"boot\": \"boot-a\", \"time\": 1, \"role\": \"r\"}",
        "{\"op\": \"leader_elected\", \"leader\": 2, \"boot\": \"b\", \"time\": 1}",
        "{\"op\": \"leader_elected\", \"leader\": 2, \"term\": 9, \"time\": 1}",
        "{\"op\": \"se_runtime\", \"uuid\": \"" SE1 "\", \"time\": 1}",
        "{\"op\": \"se_runtime\", \"uuid\": \"" SE1 "\", \"connected\": \"yes\", \"time\": 1}",
        "{\"op\": \"se_runtime\", \"connected\": false, \"time\": 1}",
        "{\"op\": \"se_runtime\", \"uuid\": \"" SE1 "\", \"connected\": false}",
    };
    json_t *before;

    populate(s);
    before = dump(s);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        struct store_result res;
        int rv;
        memset(&res, 0x5a, sizeof res);
        rv = store_apply(s, cmds[i], strlen(cmds[i]), &res);
        if (rv != VIGIL_EINVAL)
            fail_msg("command %zu gave %d (outcome %s), expected VIGIL_EINVAL: %s", i, rv,
                     store_outcome_name(res.outcome), cmds[i]);
        assert_null(res.body);
        store_result_clear(&res);
        assert_same_dump(before, s);
    }
    /* LEN is honoured: a valid command cut short is malformed. */
    {
        const char *good = "{\"op\": \"cluster_init\", \"uuid\": \"" HM1 "\", \"name\": \"n\"}";
        struct store_result res;
        assert_int_equal(store_apply(s, good, strlen(good) - 1, &res), VIGIL_EINVAL);
        store_result_clear(&res);
    }
    assert_same_dump(before, s);
    json_decref(before);
    /* And the store still works. */
    json_decref(create(s, STORE_CREATED, "pool", P2, POOL_BODY("p2", "")));
}

/* ---------------------------------------------------------------------------------- */
/* Snapshots                                                                           */

static void test_snapshot_restore(void **state)
{
    struct store *s = *state, *fresh = open_store();
    void *data = NULL;
    size_t len = 0;
    json_t *a, *b;

    populate(s);
    assert_int_equal(store_snapshot(s, &data, &len), 0);
    assert_non_null(data);
    assert_true(len >= 100);
    assert_int_equal(store_restore(fresh, data, len), 0);
    store_snapshot_free(data);

    a = dump(s);
    assert_same_dump(a, fresh);
    json_decref(a);

    /* Both keep going the same way: dedupe keys, presence, leader record, creation order,
     * references all came across. */
    for (int round = 0; round < 2; round++) {
        struct store *t = round == 0 ? s : fresh;
        record_event(t, "k1", "SE_DOWN", T0 + 1, "again");     /* deduped */
        presence(t, 1, 2, "boot-a", T0 + 50, "CLUSTER_FOLLOWER"); /* rejoin */
        leader(t, 1, "boot-1", 2, T0 + 60);                     /* repeated */
        leader(t, 2, "boot-2", 3, T0 + 70);                     /* failover */
        delete(t, STORE_CONFLICT, "pool", P1);
        json_decref(create(t, STORE_CREATED, "pool", P2, POOL_BODY("p2", "\"" HM2 "\"")));
    }
    a = dump(s);
    b = dump(fresh);
    assert_json_eq(b, a);
    assert_int_equal(count(s, NULL), 4);
    json_decref(a);
    json_decref(b);
    store_close(fresh);
}

/* A restore replaces everything, including objects the target had. */
static void test_restore_replaces(void **state)
{
    struct store *s = *state, *other = open_store();
    void *data;
    size_t len;
    json_t *a;

    json_decref(create(other, STORE_CREATED, "healthmonitor", HM1, HM_BODY("only-here")));
    assert_int_equal(store_snapshot(other, &data, &len), 0);
    populate(s);
    assert_int_equal(store_restore(s, data, len), 0);
    store_snapshot_free(data);
    a = dump(other);
    assert_same_dump(a, s);
    json_decref(a);
    store_close(other);
}

/* Serialises a copy of SNAP after running SQL on it. */
static void *rewrite_snapshot(const void *snap, size_t len, const char *sql, size_t *out_len)
{
    sqlite3 *db;
    unsigned char *copy = sqlite3_malloc64(len), *out;
    sqlite3_int64 size = 0;

    assert_non_null(copy);
    memcpy(copy, snap, len);
    assert_int_equal(sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_deserialize(db, "main", copy, (sqlite3_int64)len, (sqlite3_int64)len,
                                         SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    out = sqlite3_serialize(db, "main", &size, 0);
    assert_non_null(out);
    sqlite3_close(db);
    *out_len = (size_t)size;
    return out;
}

static void assert_restore_refused(struct store *s, json_t *before, const void *data, size_t len,
                                   const char *what)
{
    int rv = store_restore(s, data, len);
    if (rv != VIGIL_ECORRUPT)
        fail_msg("restore of %s gave %d, expected VIGIL_ECORRUPT", what, rv);
    assert_same_dump(before, s);
}

static void test_restore_damaged(void **state)
{
    struct store *s = *state, *big = open_store();
    void *snap, *bad;
    size_t len, bad_len;
    json_t *before;
    unsigned char *buf;

    /* A snapshot of several pages. */
    for (int i = 0; i < 400; i++) {
        char uuid[37], body[128];
        snprintf(uuid, sizeof uuid, "20000000-0000-4000-8000-%012d", i);
        snprintf(body, sizeof body, "{\"name\": \"pool-%d-with-a-longer-name-to-fill-pages\"}", i);
        json_decref(create(big, STORE_CREATED, "pool", uuid, body));
    }
    assert_int_equal(store_snapshot(big, &snap, &len), 0);
    assert_true(len > 8 * 4096);

    populate(s);
    before = dump(s);

    assert_restore_refused(s, before, "garbage", 7, "7 bytes of garbage");
    assert_restore_refused(s, before, snap, 0, "nothing");
    assert_restore_refused(s, before, snap, 99, "99 bytes");
    buf = calloc(1, len);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    assert_restore_refused(s, before, buf, len, "noise");
    /* Noise behind a valid SQLite header. */
    memcpy(buf, "SQLite format 3", 16);
    assert_restore_refused(s, before, buf, len, "noise with a header");
    /* A valid first page, the rest noise. */
    memcpy(buf, snap, 4096);
    assert_restore_refused(s, before, buf, len, "first page then noise");
    free(buf);
    /* Truncated snapshots. */
    assert_restore_refused(s, before, snap, len / 2, "half a snapshot");
    assert_restore_refused(s, before, snap, 4096, "first page only");
    assert_restore_refused(s, before, snap, len - 4096, "all but the last page");

    /* Valid SQLite databases that are not ours: the schema version just below and above
     * this build's (whatever it is), or not a number. */
    {
        char *version = store_meta_get(big, "schema_version");
        char sql[128], what[64];
        long v;
        assert_non_null(version);
        v = strtol(version, NULL, 10);
        assert_true(v >= 1);
        free(version);
        for (long other = v - 1; other <= v + 1; other += 2) {
            snprintf(sql, sizeof sql, "UPDATE meta SET value='%ld' WHERE key='schema_version'", other);
            snprintf(what, sizeof what, "schema version %ld (this build: %ld)", other, v);
            bad = rewrite_snapshot(snap, len, sql, &bad_len);
            assert_restore_refused(s, before, bad, bad_len, what);
            sqlite3_free(bad);
        }
    }
    bad = rewrite_snapshot(snap, len, "UPDATE meta SET value='x' WHERE key='schema_version'", &bad_len);
    assert_restore_refused(s, before, bad, bad_len, "schema version x");
    sqlite3_free(bad);
    bad = rewrite_snapshot(snap, len, "DELETE FROM meta WHERE key='schema_version'", &bad_len);
    assert_restore_refused(s, before, bad, bad_len, "no schema version");
    sqlite3_free(bad);
    bad = rewrite_snapshot(snap, len, "DROP TABLE meta", &bad_len);
    assert_restore_refused(s, before, bad, bad_len, "no meta table");
    sqlite3_free(bad);
    {
        /* An empty database. */
        sqlite3 *db;
        sqlite3_int64 size;
        unsigned char *out;
        assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
        out = sqlite3_serialize(db, "main", &size, 0);
        sqlite3_close(db);
        assert_restore_refused(s, before, out, (size_t)size, "someone else's database");
        sqlite3_free(out);
    }

    /* After all that the store still answers and works, and a good snapshot restores. */
    json_decref(create(s, STORE_CREATED, "pool", P2, POOL_BODY("p2", "")));
    assert_int_equal(store_restore(s, snap, len), 0);
    json_decref(before);
    before = dump(big);
    assert_same_dump(before, s);
    json_decref(before);
    store_snapshot_free(snap);
    store_close(big);
}

/* A snapshot handed back (store_snapshot_done) lends its buffer to the next one; each
 * snapshot is a copy that later writes do not change, and the reused buffer holds the
 * newer database. */
static void test_snapshot_buffer_reused(void **state)
{
    struct store *s = *state, *fresh = open_store();
    void *first, *second;
    size_t len1, len2;
    json_t *at_first, *now;

    populate(s);
    assert_int_equal(store_snapshot(s, &first, &len1), 0);
    at_first = dump(s);
    json_decref(create(s, STORE_CREATED, "pool", P2, POOL_BODY("after-first", "")));
    assert_int_equal(store_restore(fresh, first, len1), 0);
    assert_same_dump(at_first, fresh); /* the copy did not see the later write */
    store_snapshot_done(s, first);
    assert_int_equal(store_snapshot(s, &second, &len2), 0);
    assert_ptr_equal(second, first); /* the buffer came back */
    now = dump(s);
    assert_int_equal(store_restore(fresh, second, len2), 0);
    assert_same_dump(now, fresh);
    store_snapshot_done(s, second);
    store_snapshot_done(s, NULL);
    json_decref(at_first);
    json_decref(now);
    store_close(fresh);
}

/* The statement cache hands a statement in use to no one else: a nested use of the same
 * SQL gets a statement of its own (finalized on release); a released one is reused. */
static void test_statement_cache_nested(void **state)
{
    static const char sql[] = "SELECT count(*) FROM objects WHERE type=?";
    struct store *s = *state;
    sqlite3_stmt *outer, *inner, *again;
    json_t *a, *b;

    populate(s);
    outer = store_db_statement(&s->db, sql, NULL);
    inner = store_db_statement(&s->db, sql, NULL);
    assert_non_null(outer);
    assert_non_null(inner);
    assert_ptr_not_equal(outer, inner);
    sqlite3_bind_int(outer, 1, OBJ_HEALTHMONITOR);
    assert_int_equal(sqlite3_step(outer), SQLITE_ROW);
    sqlite3_bind_int(inner, 1, OBJ_POOL);
    assert_int_equal(sqlite3_step(inner), SQLITE_ROW);
    assert_true(sqlite3_column_int(outer, 0) > 0);
    store_db_release(&s->db, inner);
    store_db_release(&s->db, outer);
    again = store_db_statement(&s->db, sql, STORE_DB_BIND(STORE_DB_INT(OBJ_POOL)));
    assert_ptr_equal(again, outer);
    assert_int_equal(sqlite3_step(again), SQLITE_ROW);
    store_db_release(&s->db, again);
    for (int i = 0; i < 3; i++) {
        a = store_object_get(s, OBJ_HEALTHMONITOR, HM1);
        b = store_object_get(s, OBJ_HEALTHMONITOR, HM1);
        assert_non_null(a);
        assert_true(json_equal(a, b));
        json_decref(a);
        json_decref(b);
    }
    /* Many distinct statements and a restore (the cache is emptied with the connection). */
    {
        void *data;
        size_t len;
        assert_int_equal(store_snapshot(s, &data, &len), 0);
        assert_int_equal(store_restore(s, data, len), 0);
        store_snapshot_free(data);
    }
    a = store_object_get(s, OBJ_HEALTHMONITOR, HM1);
    assert_non_null(a);
    json_decref(a);
    json_decref(create(s, STORE_CREATED, "pool", P2, POOL_BODY("after-restore", "")));
}

/* One valid command of each op, in an order that runs on an empty store, with the outcome
 * it has there (a refusal shows it reached its handler too: an unknown op is refused as
 * "unknown command", and store_apply returns VIGIL_EINVAL for it) and whether it moves the
 * auth generation. */
static const struct {
    const char *op;
    enum store_outcome outcome;
    int changes_auth;
    const char *text;
} every_command[] = {
    {"cluster_init", STORE_OK, 0,
     "{\"op\": \"cluster_init\", \"uuid\": \"" MISSING "\", \"name\": \"vigil\"}"},
    {"node_register", STORE_OK, 0,
     "{\"op\": \"node_register\", \"node\": {\"id\": 1, \"name\": \"n1\", \"raft_address\":"
     " \"10.0.0.1:7000\", \"api_address\": \"10.0.0.1:8080\", \"se_address\": \"10.0.0.1:5098\","
     " \"se_host_key\": \"" KEY "\"}}"},
    {"tls_cert_renew", STORE_CONFLICT, 0,
     "{\"op\": \"tls_cert_renew\", \"previous\": \"old\", \"tls_leaf\": \"new\"}"},
    {"object_create", STORE_CREATED, 0,
     "{\"op\": \"object_create\", \"type\": \"healthmonitor\", \"uuid\": \"" HM1 "\","
     " \"object\": " HM_BODY("hm1") "}"},
    {"object_update", STORE_OK, 0,
     "{\"op\": \"object_update\", \"type\": \"healthmonitor\", \"uuid\": \"" HM1 "\","
     " \"object\": " HM_BODY("hm1-renamed") "}"},
    {"object_delete", STORE_REMOVED, 0,
     "{\"op\": \"object_delete\", \"type\": \"healthmonitor\", \"uuid\": \"" HM1 "\"}"},
    {"event_record", STORE_OK, 0,
     "{\"op\": \"event_record\", \"key\": \"k\", \"event_id\": \"SE_UP\", \"time\": 1,"
     " \"module\": \"CLUSTERMGR\", \"obj_type\": \"CLUSTER\", \"obj_name\": \"c\","
     " \"description\": \"d\", \"details\": {}}"},
    {"node_joined", STORE_OK, 0,
     "{\"op\": \"node_joined\", \"id\": 1, \"boot\": \"b1\", \"time\": 1, \"role\": \"leader\"}"},
    {"node_left", STORE_OK, 0,
     "{\"op\": \"node_left\", \"id\": 1, \"boot\": \"b1\", \"time\": 2, \"role\": \"leader\"}"},
    {"leader_elected", STORE_OK, 0,
     "{\"op\": \"leader_elected\", \"leader\": 1, \"boot\": \"b1\", \"term\": 1, \"time\": 1}"},
    {"se_runtime", STORE_OK, 0,
     "{\"op\": \"se_runtime\", \"uuid\": \"" SE1 "\", \"connected\": true,"
     " \"controller_node\": 1, \"time\": 1}"},
    {"se_session", STORE_OK, 0,
     "{\"op\": \"se_session\", \"uuid\": \"" SE1 "\", \"change\": \"up\", \"node\": 1,"
     " \"since\": 1, \"time\": 1}"},
    {"se_sessions_reset", STORE_OK, 0, "{\"op\": \"se_sessions_reset\", \"node\": 1}"},
    {"user_put", STORE_CREATED, 1,
     "{\"op\": \"user_put\", \"name\": \"alice\", \"role\": \"admin\", \"hash\": \"h\","
     " \"create\": true}"},
    {"token_create", STORE_CREATED, 1,
     "{\"op\": \"token_create\", \"id\": \"t1\", \"user\": \"alice\", \"mac\": \"m1\","
     " \"expires\": 9, \"time\": 1}"},
    {"token_revoke", STORE_REMOVED, 1, "{\"op\": \"token_revoke\", \"id\": \"t1\"}"},
    {"session_revoke", STORE_REMOVED, 1,
     "{\"op\": \"session_revoke\", \"sid\": \"s1\", \"expires\": 9}"},
    {"user_delete", STORE_NOT_FOUND, 1, "{\"op\": \"user_delete\", \"name\": \"nobody\"}"},
    {"observations", STORE_OK, 1,
     "{\"op\": \"observations\", \"cmds\": [{\"op\": \"session_revoke\", \"sid\": \"s9\","
     " \"expires\": 9}]}"},
};

#define EVERY_COMMAND_COUNT (sizeof every_command / sizeof every_command[0])

/* Every op of the store's command table reaches its handler (known, with the outcome it
 * should have, moving the auth generation when it should); an unknown op is refused. */
static void test_command_table(void **state)
{
    struct store *s = *state;
    struct store_result res[2];
    unsigned n;
    uint64_t generation;
    static const char unknown[] = "{\"op\": \"no_such_op\"}";
    static const char batch[] =
        "{\"op\": \"batch\", \"cmds\": [{\"op\": \"no_such_op\"}, {\"op\": \"session_revoke\","
        " \"sid\": \"s2\", \"expires\": 9}]}";

    assert_int_equal(store_command_count(), EVERY_COMMAND_COUNT);
    assert_null(store_command_op(store_command_count()));
    for (size_t i = 0; i < store_command_count(); i++) {
        const char *op = store_command_op(i);
        size_t k = 0;
        while (k < EVERY_COMMAND_COUNT && strcmp(every_command[k].op, op) != 0)
            k++;
        if (k == EVERY_COMMAND_COUNT)
            fail_msg("op '%s' of the command table has no case in every_command", op);
    }
    for (size_t k = 0; k < EVERY_COMMAND_COUNT; k++) {
        generation = store_auth_generation(s);
        json_decref(run(s, every_command[k].outcome, "%s", every_command[k].text));
        assert_int_equal(store_auth_generation(s) != generation, every_command[k].changes_auth);
    }

    /* Unknown: VIGIL_EINVAL alone; in a batch, refused while the others stand. */
    generation = store_auth_generation(s);
    assert_int_equal(store_apply(s, unknown, strlen(unknown), &res[0]), VIGIL_EINVAL);
    assert_int_equal(store_auth_generation(s), generation);
    store_result_clear(&res[0]);
    assert_int_equal(store_apply_entry(s, batch, strlen(batch), res, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(res[0].outcome, STORE_INVALID);
    assert_string_equal(res[0].error, "unknown command");
    assert_null(res[0].body);
    assert_int_equal(res[1].outcome, STORE_REMOVED);
    assert_true(store_session_revoked(s, "s2"));
    store_result_clear(&res[0]);
    store_result_clear(&res[1]);
}

#define EVENT_TEXT(key, id)                                                                \
    "{\"op\": \"event_record\", \"key\": \"" key "\", \"event_id\": \"" id "\", \"time\": 1,"    \
    " \"module\": \"SEMGR\", \"obj_type\": \"SE\", \"obj_name\": \"se\", \"description\": \"d\","  \
    " \"details\": {}}"

/* An "observations" command runs each of its commands as if sent alone: a duplicate event
 * is dropped, a refused command and a nested group change nothing, the others stand; the
 * body counts them. A group without commands, or with too many, is not a command. */
static void test_observations_group(void **state)
{
    struct store *s = *state;
    struct store_result res;
    int64_t total;
    json_t *body, *l;
    char *big;
    size_t len, at;

    body = run(s, STORE_OK,
               "{\"op\": \"observations\", \"cmds\": [" EVENT_TEXT("ob-1", "SE_UP") ","
               EVENT_TEXT("ob-1", "SE_DOWN") ", {\"op\": \"user_delete\", \"name\": \"nobody\"},"
               " {\"op\": \"batch\", \"cmds\": [" EVENT_TEXT("ob-3", "SE_UP") "]},"
               " {\"op\": \"no_such_op\"}, {\"op\": \"session_revoke\", \"sid\": \"s7\","
               " \"expires\": 9}," EVENT_TEXT("ob-2", "SE_DOWN") "]}");
    assert_json_text(body, "{\"applied\": 4, \"refused\": 3}");
    json_decref(body);
    assert_true(store_session_revoked(s, "s7"));
    l = events(s, NULL, &total);
    assert_int_equal(total, 2); /* ob-1 once (the first kept), ob-2; ob-3 never */
    json_decref(l);
    l = events(s, "SE_UP", &total);
    assert_int_equal(total, 1);
    json_decref(l);

    static const char empty[] = "{\"op\": \"observations\", \"cmds\": []}";
    assert_int_equal(store_apply(s, empty, strlen(empty), &res), VIGIL_EINVAL);
    store_result_clear(&res);
    len = 64 + (STORE_OBSERVATIONS_MAX + 1) * 64;
    big = malloc(len);
    assert_non_null(big);
    at = (size_t)snprintf(big, len, "{\"op\": \"observations\", \"cmds\": [");
    for (unsigned i = 0; i <= STORE_OBSERVATIONS_MAX; i++)
        at += (size_t)snprintf(big + at, len - at, "%s{\"op\": \"session_revoke\", \"sid\": \"x%u\","
                               " \"expires\": 9}", i ? "," : "", i);
    snprintf(big + at, len - at, "]}");
    assert_int_equal(store_apply(s, big, strlen(big), &res), VIGIL_EINVAL);
    store_result_clear(&res);
    assert_false(store_session_revoked(s, "x0"));
    free(big);
}

/* Every outcome has a name; the refusals are the last three. */
static void test_outcome_names(void **state)
{
    (void)state;
    for (int o = 0; o < STORE_OUTCOME_COUNT; o++) {
        assert_non_null(store_outcome_name((enum store_outcome)o));
        assert_string_not_equal(store_outcome_name((enum store_outcome)o), "unknown outcome");
    }
    assert_string_equal(store_outcome_name(STORE_OUTCOME_COUNT), "unknown outcome");
    assert_false(store_outcome_refused(STORE_OK));
    assert_false(store_outcome_refused(STORE_CREATED));
    assert_false(store_outcome_refused(STORE_REMOVED));
    assert_true(store_outcome_refused(STORE_INVALID));
    assert_true(store_outcome_refused(STORE_NOT_FOUND));
    assert_true(store_outcome_refused(STORE_CONFLICT));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_empty),
        T(test_create_every_type),
        T(test_create_body_uuid_ignored),
        T(test_unique_names),
        T(test_create_existing_uuid),
        T(test_invalid_body),
        T(test_missing_references),
        T(test_update),
        T(test_delete),
        T(test_config_version),
        T(test_list_paging),
        T(test_node_register),
        T(test_cluster_init_first_wins),
        T(test_event_record_dedupe),
        T(test_event_uuid_deterministic),
        T(test_events_list),
        T(test_events_cap),
        T(test_presence),
        T(test_presence_late_left),
        T(test_presence_repeated_partition),
        T(test_leader_elected),
        T(test_leader_elected_stale_term),
        T(test_se_runtime),
        T(test_se_connected_other_type_same_uuid),
        T(test_se_sessions),
        T(test_malformed),
        T(test_snapshot_restore),
        T(test_restore_replaces),
        T(test_restore_damaged),
        T(test_snapshot_buffer_reused),
        T(test_statement_cache_nested),
        T(test_command_table),
        T(test_observations_group),
        T(test_outcome_names),
    };
    vlog_init("test_store", (enum vlog_level)(VLOG_ERROR + 1)); /* refusals are expected */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
