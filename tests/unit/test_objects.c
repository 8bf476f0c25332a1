/* test_objects.c: the config object model (common/objects.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/objects.h"

#define UUID_A "0b6f1c2e-5a4d-4e3f-9a1b-2c3d4e5f6a7b"
#define UUID_B "11111111-2222-4333-8444-555555555555"
#define UUID_C "abcdefab-cdef-4abc-8def-abcdefabcdef"
#define KEY_B64 "AAAAC3NzaC1lZDI1NTE5AAAAIDOQAI4qMERkzpvA7qss0VckZtLcEcGGhGiPbZBz8Vbq"
#define KEY "ssh-ed25519 " KEY_B64

/* ---------------------------------------------------------------------------------- */
/* Helpers                                                                             */

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        fail_msg("test JSON does not parse: %s: %s", jerr.text, text);
    return j;
}

/* Validates TEXT as type T and asserts it succeeds; returns the normalised object. */
static json_t *good(enum obj_type t, int flags, const char *text)
{
    char err[256] = "untouched";
    json_t *in = parse(text);
    json_t *out = obj_validate(t, in, flags, err, sizeof err);
    if (out == NULL)
        fail_msg("%s refused: %s\n  body: %s", obj_type_name(t), err, text);
    json_decref(in);
    return out;
}

/* Asserts that TEXT is refused as type T with a message that begins with EXPECT. */
static void bad(enum obj_type t, int flags, const char *text, const char *expect)
{
    char err[256] = "untouched";
    json_t *in = parse(text);
    json_t *out = obj_validate(t, in, flags, err, sizeof err);
    if (out != NULL) {
        char *dump = json_dumps(out, JSON_COMPACT);
        fail_msg("%s accepted: %s\n  normalised: %s", obj_type_name(t), text, dump);
    }
    if (strncmp(err, expect, strlen(expect)) != 0)
        fail_msg("%s: error \"%s\" does not begin with \"%s\"\n  body: %s", obj_type_name(t),
                 err, expect, text);
    json_decref(in);
}

static const char *str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static json_int_t integer(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void assert_json(const json_t *actual, const char *expect_text)
{
    json_t *expect = parse(expect_text);
    if (!json_equal((json_t *)actual, expect)) {
        char *dump = json_dumps(actual, JSON_COMPACT);
        fail_msg("got %s\nwanted %s", dump, expect_text);
    }
    json_decref(expect);
}

/* ---------------------------------------------------------------------------------- */
/* Types and uuids                                                                     */

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(obj_type_name(OBJ_HEALTHMONITOR), "healthmonitor");
    assert_string_equal(obj_type_name(OBJ_POOL), "pool");
    assert_string_equal(obj_type_name(OBJ_VIRTUALSERVICE), "virtualservice");
    assert_string_equal(obj_type_name(OBJ_SERVICEENGINE), "serviceengine");
    for (int t = 0; t < OBJ__COUNT; t++)
        assert_int_equal(obj_type_from_name(obj_type_name((enum obj_type)t)), t);
    assert_null(obj_type_name(OBJ__COUNT));
    assert_int_equal(obj_type_from_name("Pool"), -1);
    assert_int_equal(obj_type_from_name("pools"), -1);
    assert_int_equal(obj_type_from_name(""), -1);
    assert_int_equal(obj_type_from_name(NULL), -1);
}

static void test_uuid_valid(void **state)
{
    (void)state;
    assert_true(obj_uuid_valid(UUID_A));
    assert_true(obj_uuid_valid("00000000-0000-0000-0000-000000000000"));
    assert_false(obj_uuid_valid("0B6F1C2E-5A4D-4E3F-9A1B-2C3D4E5F6A7B")); /* upper case */
    assert_false(obj_uuid_valid("0b6f1c2e5a4d4e3f9a1b2c3d4e5f6a7b"));     /* no dashes */
    assert_false(obj_uuid_valid("{0b6f1c2e-5a4d-4e3f-9a1b-2c3d4e5f6a7b}"));
    assert_false(obj_uuid_valid("0b6f1c2e-5a4d-4e3f-9a1b-2c3d4e5f6a7"));  /* short */
    assert_false(obj_uuid_valid("0b6f1c2e-5a4d-4e3f-9a1b-2c3d4e5f6a7b0")); /* long */
    assert_false(obj_uuid_valid("0b6f1c2e-5a4d-4e3f-9a1b-2c3d4e5f6a7g"));
    assert_false(obj_uuid_valid("0b6f1c2e-5a4d-4e3f-9a1b+2c3d4e5f6a7b"));
    assert_false(obj_uuid_valid("0b6f1c2e-5a4d-4e3f-9a1b-2c3d4e5f6a7 "));
    assert_false(obj_uuid_valid(""));
    assert_false(obj_uuid_valid(NULL));
}

static void test_uuid_generate(void **state)
{
    char a[OBJ_UUID_LEN + 1], b[OBJ_UUID_LEN + 1];
    (void)state;
    for (int i = 0; i < 200; i++) {
        memset(a, 'x', sizeof a);
        obj_uuid_generate(a);
        assert_int_equal(strlen(a), OBJ_UUID_LEN);
        assert_true(obj_uuid_valid(a));
        assert_int_equal(a[14], '4');                 /* version 4 */
        assert_non_null(strchr("89ab", a[19]));       /* RFC 4122 variant */
    }
    obj_uuid_generate(b);
    assert_string_not_equal(a, b);
}

/* ---------------------------------------------------------------------------------- */
/* healthmonitor                                                                       */

static void test_healthmonitor_good(void **state)
{
    json_t *o;
    (void)state;

    /* TCP: contract defaults, no HTTP fields; uuid dropped. */
    o = good(OBJ_HEALTHMONITOR, 0,
             "{\"uuid\": \"" UUID_A "\", \"name\": \"tcp-check\", \"type\": \"HEALTH_MONITOR_TCP\"}");
    assert_json(o, "{\"name\": \"tcp-check\", \"type\": \"HEALTH_MONITOR_TCP\","
                   " \"send_interval\": 5, \"receive_timeout\": 4,"
                   " \"successful_checks\": 2, \"failed_checks\": 2}");
    json_decref(o);

    /* HTTP: request and codes defaulted. */
    o = good(OBJ_HEALTHMONITOR, 0, "{\"name\": \"web\", \"type\": \"HEALTH_MONITOR_HTTP\"}");
    assert_json(o, "{\"name\": \"web\", \"type\": \"HEALTH_MONITOR_HTTP\","
                   " \"send_interval\": 5, \"receive_timeout\": 4,"
                   " \"successful_checks\": 2, \"failed_checks\": 2,"
                   " \"http_request\": \"GET / HTTP/1.0\", \"http_response_codes\": [\"HTTP_2XX\"]}");
    json_decref(o);

    /* Fractions; a short interval gets a default timeout below it. */
    o = good(OBJ_HEALTHMONITOR, 0,
             "{\"name\": \"fast\", \"type\": \"HEALTH_MONITOR_TCP\", \"send_interval\": 0.5}");
    assert_true(json_is_real(json_object_get(o, "send_interval")));
    assert_true(json_real_value(json_object_get(o, "send_interval")) == 0.5);
    assert_true(json_real_value(json_object_get(o, "receive_timeout")) < 0.5);
    assert_true(json_real_value(json_object_get(o, "receive_timeout")) > 0.3);
    json_decref(o);
    o = good(OBJ_HEALTHMONITOR, 0,
             "{\"name\": \"fast\", \"type\": \"HEALTH_MONITOR_TCP\", \"send_interval\": 2}");
    assert_true(json_number_value(json_object_get(o, "receive_timeout")) < 2);
    json_decref(o);
    /* An integral real is stored as an integer. */
    o = good(OBJ_HEALTHMONITOR, 0,
             "{\"name\": \"x\", \"type\": \"HEALTH_MONITOR_TCP\", \"send_interval\": 10.0,"
             " \"receive_timeout\": 0.25}");
    assert_int_equal(integer(o, "send_interval"), 10);
    assert_true(json_real_value(json_object_get(o, "receive_timeout")) == 0.25);
    json_decref(o);

    /* Everything given. */
    o = good(OBJ_HEALTHMONITOR, 0,
             "{\"name\": \"full\", \"description\": \"checks /health\","
             " \"type\": \"HEALTH_MONITOR_HTTP\", \"send_interval\": 10, \"receive_timeout\": 3,"
             " \"successful_checks\": 1, \"failed_checks\": 50, \"monitor_port\": 8080,"
             " \"http_request\": \"HEAD /health HTTP/1.1\\r\\nHost: example.com\","
             " \"http_response_codes\": [\"HTTP_2XX\", \"HTTP_3XX\"]}");
    assert_json(o, "{\"name\": \"full\", \"description\": \"checks /health\","
                   " \"type\": \"HEALTH_MONITOR_HTTP\", \"send_interval\": 10, \"receive_timeout\": 3,"
                   " \"successful_checks\": 1, \"failed_checks\": 50, \"monitor_port\": 8080,"
                   " \"http_request\": \"HEAD /health HTTP/1.1\\r\\nHost: example.com\","
                   " \"http_response_codes\": [\"HTTP_2XX\", \"HTTP_3XX\"]}");
    json_decref(o);

    /* Request without version; a name of exactly OBJ_NAME_MAX bytes; UTF-8 names. */
    {
        char text[512], name[OBJ_NAME_MAX + 1];
        memset(name, 'n', OBJ_NAME_MAX);
        name[OBJ_NAME_MAX] = '\0';
        snprintf(text, sizeof text,
                 "{\"name\": \"%s\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_request\": \"GET /\"}",
                 name);
        o = good(OBJ_HEALTHMONITOR, 0, text);
        assert_string_equal(str(o, "name"), name);
        assert_string_equal(str(o, "http_request"), "GET /");
        json_decref(o);
    }
    o = good(OBJ_HEALTHMONITOR, 0, "{\"name\": \"pr\\u00fcfung\", \"type\": \"HEALTH_MONITOR_TCP\"}");
    json_decref(o);
}

static void test_healthmonitor_bad(void **state)
{
    static const struct {
        const char *body, *expect;
    } cases[] = {
        {"[]", "(body): must be a JSON object"},
        {"\"x\"", "(body): must be a JSON object"},
        {"{\"type\": \"HEALTH_MONITOR_TCP\"}", "name: required"},
        {"{\"name\": \"\", \"type\": \"HEALTH_MONITOR_TCP\"}", "name: must not be empty"},
        {"{\"name\": 7, \"type\": \"HEALTH_MONITOR_TCP\"}", "name: must be a string"},
        {"{\"name\": null, \"type\": \"HEALTH_MONITOR_TCP\"}", "name: must be a string"},
        {"{\"name\": \"a\\nb\", \"type\": \"HEALTH_MONITOR_TCP\"}", "name: must not contain control"},
        {"{\"name\": \"a\\u0000b\", \"type\": \"HEALTH_MONITOR_TCP\"}", "name: must not contain NUL"},
        {"{\"name\": \"a\\u007fb\", \"type\": \"HEALTH_MONITOR_TCP\"}", "name: must not contain control"},
        {"{\"name\": \" a\", \"type\": \"HEALTH_MONITOR_TCP\"}", "name: must not begin or end"},
        {"{\"name\": \"a \", \"type\": \"HEALTH_MONITOR_TCP\"}", "name: must not begin or end"},
        {"{\"name\": \"m\"}", "type: required"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_UDP\"}", "type: must be one of HEALTH_MONITOR_TCP, HEALTH_MONITOR_HTTP"},
        {"{\"name\": \"m\", \"type\": \"health_monitor_tcp\"}", "type: must be one of"},
        {"{\"name\": \"m\", \"type\": 1}", "type: must be one of"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"foo\": 1}", "foo: unknown field"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"oper_status\": {}}", "oper_status: unknown field"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"send_interval\": 0}", "send_interval: must be a number"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"send_interval\": -1}", "send_interval: must be a number"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"send_interval\": 3601}", "send_interval: must be a number"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"send_interval\": \"5\"}", "send_interval: must be a number"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"send_interval\": true}", "send_interval: must be a number"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"receive_timeout\": 0}", "receive_timeout: must be a number"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"receive_timeout\": 5}", "receive_timeout: must be less than send_interval"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"receive_timeout\": 6}", "receive_timeout: must be less than send_interval"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"send_interval\": 1, \"receive_timeout\": 1}", "receive_timeout: must be less than send_interval"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"successful_checks\": 0}", "successful_checks: must be an integer 1-50"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"successful_checks\": 51}", "successful_checks: must be an integer"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"successful_checks\": 2.5}", "successful_checks: must be an integer"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"failed_checks\": -3}", "failed_checks: must be an integer"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"failed_checks\": \"2\"}", "failed_checks: must be an integer"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"monitor_port\": 0}", "monitor_port: must be an integer 1-65535"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"monitor_port\": 65536}", "monitor_port: must be an integer 1-65535"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"description\": 5}", "description: must be a string"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"http_request\": \"GET / HTTP/1.0\"}", "http_request: only for type HEALTH_MONITOR_HTTP"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"http_response_codes\": [\"HTTP_2XX\"]}", "http_response_codes: only for type"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_request\": \"\"}", "http_request: must not be empty"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_request\": 1}", "http_request: must be a string"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_request\": \"get /\"}", "http_request: must look like"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_request\": \"GET\"}", "http_request: must look like"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_request\": \"GET  /\"}", "http_request: must look like"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_request\": \"GET / HTTP/2\"}", "http_request: must look like"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_request\": \"GET / HTTP/1.0\\nHost: x\"}", "http_request: must look like"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_request\": \"GET / HTTP/1.0\\r\\nHost: \\u0001\"}", "http_request: must look like"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_response_codes\": []}", "http_response_codes: must not be empty"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_response_codes\": \"HTTP_2XX\"}", "http_response_codes: must be an array"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_response_codes\": [\"HTTP_2XX\", \"HTTP_6XX\"]}", "http_response_codes[1]: must be one of"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_response_codes\": [200]}", "http_response_codes[0]: must be one of"},
        {"{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_response_codes\": [\"HTTP_2XX\", \"HTTP_2XX\"]}", "http_response_codes[1]: duplicate of http_response_codes[0]"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad(OBJ_HEALTHMONITOR, 0, cases[i].body, cases[i].expect);

    /* Length limits. */
    {
        size_t n = OBJ_NAME_MAX + 1 + OBJ_DESCRIPTION_MAX + OBJ_HTTP_REQUEST_MAX + 256;
        char *text = malloc(n), *longname = malloc(OBJ_NAME_MAX + 2);
        char *longdesc = malloc(OBJ_DESCRIPTION_MAX + 2), *longreq = malloc(OBJ_HTTP_REQUEST_MAX + 2);
        assert_non_null(text);
        memset(longname, 'n', OBJ_NAME_MAX + 1);
        longname[OBJ_NAME_MAX + 1] = '\0';
        snprintf(text, n, "{\"name\": \"%s\", \"type\": \"HEALTH_MONITOR_TCP\"}", longname);
        bad(OBJ_HEALTHMONITOR, 0, text, "name: must be at most 255 bytes");
        memset(longdesc, 'd', OBJ_DESCRIPTION_MAX + 1);
        longdesc[OBJ_DESCRIPTION_MAX + 1] = '\0';
        snprintf(text, n, "{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"description\": \"%s\"}",
                 longdesc);
        bad(OBJ_HEALTHMONITOR, 0, text, "description: must be at most");
        memcpy(longreq, "GET /", 5);
        memset(longreq + 5, 'p', OBJ_HTTP_REQUEST_MAX - 4);
        longreq[OBJ_HTTP_REQUEST_MAX + 1] = '\0';
        snprintf(text, n, "{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_HTTP\", \"http_request\": \"%s\"}",
                 longreq);
        bad(OBJ_HEALTHMONITOR, 0, text, "http_request: must be at most");
        /* A long unknown key is cut in the message. */
        snprintf(text, n, "{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\", \"%s\": 1}", longname);
        bad(OBJ_HEALTHMONITOR, 0, text, "nnnnnnnnnnnnnnnn");
        free(text);
        free(longname);
        free(longdesc);
        free(longreq);
    }
}

/* ---------------------------------------------------------------------------------- */
/* pool                                                                                */

static void test_pool_good(void **state)
{
    json_t *o;
    (void)state;

    o = good(OBJ_POOL, 0, "{\"name\": \"empty\", \"uuid\": \"" UUID_A "\"}");
    assert_json(o, "{\"name\": \"empty\", \"lb_algorithm\": \"LB_ALGORITHM_ROUND_ROBIN\","
                   " \"servers\": [], \"health_monitor_refs\": []}");
    json_decref(o);

    o = good(OBJ_POOL, 0,
             "{\"name\": \"web\", \"lb_algorithm\": \"LB_ALGORITHM_LEAST_CONNECTIONS\","
             " \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 9001},"
             "               {\"ip\": \"127.0.0.1\", \"port\": 9002, \"enabled\": false, \"ratio\": 3,"
             "                \"hostname\": \"backend-2.example.com\"},"
             "               {\"ip\": \"10.0.0.1\", \"port\": 9001}],"
             " \"health_monitor_refs\": [\"" UUID_A "\", \"" UUID_B "\"]}");
    assert_json(o, "{\"name\": \"web\", \"lb_algorithm\": \"LB_ALGORITHM_LEAST_CONNECTIONS\","
                   " \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 9001, \"enabled\": true},"
                   "  {\"ip\": \"127.0.0.1\", \"port\": 9002, \"enabled\": false, \"ratio\": 3,"
                   "   \"hostname\": \"backend-2.example.com\"},"
                   "  {\"ip\": \"10.0.0.1\", \"port\": 9001, \"enabled\": true}],"
                   " \"health_monitor_refs\": [\"" UUID_A "\", \"" UUID_B "\"]}");
    json_decref(o);

    o = good(OBJ_POOL, 0,
             "{\"name\": \"ch\", \"lb_algorithm\": \"LB_ALGORITHM_CONSISTENT_HASH\","
             " \"servers\": [{\"ip\": \"198.18.0.1\", \"port\": 1}, {\"ip\": \"198.18.0.2\", \"port\": 65535}]}");
    assert_string_equal(str(o, "lb_algorithm"), "LB_ALGORITHM_CONSISTENT_HASH");
    assert_null(json_object_get(o, "consistent_hash_header")); /* no default */
    json_decref(o);

    /* Hash on a request header: kept as given (names match case-insensitively). */
    o = good(OBJ_POOL, 0,
             "{\"name\": \"ch\", \"lb_algorithm\": \"LB_ALGORITHM_CONSISTENT_HASH\","
             " \"consistent_hash_header\": \"X-User\"}");
    assert_json(o, "{\"name\": \"ch\", \"lb_algorithm\": \"LB_ALGORITHM_CONSISTENT_HASH\","
                   " \"consistent_hash_header\": \"X-User\", \"servers\": [],"
                   " \"health_monitor_refs\": []}");
    json_decref(o);
    o = good(OBJ_POOL, 0,
             "{\"name\": \"ch\", \"lb_algorithm\": \"LB_ALGORITHM_CONSISTENT_HASH\","
             " \"consistent_hash_header\": \"x\"}");
    assert_string_equal(str(o, "consistent_hash_header"), "x");
    json_decref(o);
    o = good(OBJ_POOL, 0,
             "{\"name\": \"ch\", \"lb_algorithm\": \"LB_ALGORITHM_CONSISTENT_HASH\","
             " \"consistent_hash_header\": \"!#$%&'*+-.^_`|~09azAZ\"}");
    assert_string_equal(str(o, "consistent_hash_header"), "!#$%&'*+-.^_`|~09azAZ");
    json_decref(o);
    /* 64 bytes is the limit. */
    o = good(OBJ_POOL, 0,
             "{\"name\": \"ch\", \"lb_algorithm\": \"LB_ALGORITHM_CONSISTENT_HASH\","
             " \"consistent_hash_header\": "
             "\"X-01234567890123456789012345678901234567890123456789012345678901\"}");
    assert_int_equal(strlen(str(o, "consistent_hash_header")), OBJ_HASH_HEADER_MAX);
    json_decref(o);

    /* By name (SE config file). */
    o = good(OBJ_POOL, OBJ_VALIDATE_REFS_BY_NAME,
             "{\"name\": \"p\", \"health_monitor_refs\": [\"tcp-check\", \"" UUID_A "\"]}");
    assert_json(json_object_get(o, "health_monitor_refs"), "[\"tcp-check\", \"" UUID_A "\"]");
    json_decref(o);
}

static void test_pool_bad(void **state)
{
    static const struct {
        const char *body, *expect;
    } cases[] = {
        {"{}", "name: required"},
        {"{\"name\": \"p\", \"lb_algorithm\": \"LB_ALGORITHM_RANDOM\"}", "lb_algorithm: must be one of LB_ALGORITHM_ROUND_ROBIN"},
        {"{\"name\": \"p\", \"lb_algorithm\": null}", "lb_algorithm: must be one of"},
        {"{\"name\": \"p\", \"servers\": {}}", "servers: must be an array"},
        {"{\"name\": \"p\", \"servers\": [\"127.0.0.1:80\"]}", "servers[0]: must be an object"},
        {"{\"name\": \"p\", \"servers\": [{\"port\": 80}]}", "servers[0].ip: required"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\"}]}", "servers[0].port: required"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80}, {\"ip\": \"127.0.0.1\", \"port\": 0}]}", "servers[1].port: must be an integer 1-65535"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80}, {\"ip\": \"127.0.0.1\", \"port\": 65536}]}", "servers[1].port: must be an integer 1-65535"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": -80}]}", "servers[0].port: must be an integer 1-65535"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": \"80\"}]}", "servers[0].port: must be an integer 1-65535"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80.5}]}", "servers[0].port: must be an integer 1-65535"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"localhost\", \"port\": 80}]}", "servers[0].ip: must be a dotted IPv4 address"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"256.0.0.1\", \"port\": 80}]}", "servers[0].ip: must be a dotted IPv4 address"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.1\", \"port\": 80}]}", "servers[0].ip: must be a dotted IPv4 address"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.01\", \"port\": 80}]}", "servers[0].ip: must be a dotted IPv4 address"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \" 127.0.0.1\", \"port\": 80}]}", "servers[0].ip: must be a dotted IPv4 address"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"::1\", \"port\": 80}]}", "servers[0].ip: must be a dotted IPv4 address"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": 2130706433, \"port\": 80}]}", "servers[0].ip: must be a dotted IPv4 address"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"0.0.0.0\", \"port\": 80}]}", "servers[0].ip: must be a unicast IPv4 address"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"224.0.0.1\", \"port\": 80}]}", "servers[0].ip: must be a unicast IPv4 address"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"255.255.255.255\", \"port\": 80}]}", "servers[0].ip: must be a unicast"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"enabled\": 1}]}", "servers[0].enabled: must be true or false"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"enabled\": \"yes\"}]}", "servers[0].enabled: must be true or false"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"ratio\": 0}]}", "servers[0].ratio: must be an integer 1-20"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"ratio\": 21}]}", "servers[0].ratio: must be an integer 1-20"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"hostname\": \"\"}]}", "servers[0].hostname: must not be empty"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"hostname\": \"bad_host\"}]}", "servers[0].hostname: must be a DNS host name"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"hostname\": \"-a.example\"}]}", "servers[0].hostname: must be a DNS host name"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"hostname\": \"a..b\"}]}", "servers[0].hostname: must be a DNS host name"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"hostname\": \"a-.b\"}]}", "servers[0].hostname: must be a DNS host name"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"hostname\": 5}]}", "servers[0].hostname: must be a string"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"weight\": 5}]}", "servers[0].weight: unknown field"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"uuid\": \"" UUID_A "\"}]}", "servers[0].uuid: unknown field"},
        {"{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80}, {\"ip\": \"127.0.0.2\", \"port\": 80},"
         " {\"ip\": \"127.0.0.1\", \"port\": 80, \"enabled\": false}]}", "servers[2]: duplicate of servers[0] (127.0.0.1:80)"},
        {"{\"name\": \"p\", \"health_monitor_refs\": \"" UUID_A "\"}", "health_monitor_refs: must be an array"},
        {"{\"name\": \"p\", \"health_monitor_refs\": [\"tcp-check\"]}", "health_monitor_refs[0]: must be a uuid"},
        {"{\"name\": \"p\", \"health_monitor_refs\": [\"" UUID_A "\", \"0B6F1C2E-5A4D-4E3F-9A1B-2C3D4E5F6A7B\"]}", "health_monitor_refs[1]: must be a uuid"},
        {"{\"name\": \"p\", \"health_monitor_refs\": [null]}", "health_monitor_refs[0]: must be a uuid"},
        {"{\"name\": \"p\", \"health_monitor_refs\": [\"" UUID_A "\", \"" UUID_A "\"]}", "health_monitor_refs[1]: duplicate of health_monitor_refs[0]"},
        {"{\"name\": \"p\", \"vip\": \"127.0.0.1\"}", "vip: unknown field"},
#define CH_POOL "{\"name\": \"p\", \"lb_algorithm\": \"LB_ALGORITHM_CONSISTENT_HASH\", "
        {"{\"name\": \"p\", \"consistent_hash_header\": \"X-User\"}",
         "consistent_hash_header: only for lb_algorithm LB_ALGORITHM_CONSISTENT_HASH"},
        {"{\"name\": \"p\", \"lb_algorithm\": \"LB_ALGORITHM_LEAST_CONNECTIONS\", \"consistent_hash_header\": \"X-User\"}",
         "consistent_hash_header: only for lb_algorithm LB_ALGORITHM_CONSISTENT_HASH"},
        {"{\"name\": \"p\", \"lb_algorithm\": \"LB_ALGORITHM_ROUND_ROBIN\", \"consistent_hash_header\": null}",
         "consistent_hash_header: only for lb_algorithm LB_ALGORITHM_CONSISTENT_HASH"},
        {CH_POOL "\"consistent_hash_header\": \"\"}", "consistent_hash_header: must not be empty"},
        {CH_POOL "\"consistent_hash_header\": null}", "consistent_hash_header: must be a string"},
        {CH_POOL "\"consistent_hash_header\": 5}", "consistent_hash_header: must be a string"},
        {CH_POOL "\"consistent_hash_header\": [\"X-User\"]}", "consistent_hash_header: must be a string"},
        {CH_POOL "\"consistent_hash_header\": \"X-012345678901234567890123456789012345678901234567890123456789012\"}",
         "consistent_hash_header: must be at most 64 bytes long"},
        {CH_POOL "\"consistent_hash_header\": \"X-User:\"}", "consistent_hash_header: must be an HTTP header name"},
        {CH_POOL "\"consistent_hash_header\": \"X User\"}", "consistent_hash_header: must be an HTTP header name"},
        {CH_POOL "\"consistent_hash_header\": \" X-User\"}", "consistent_hash_header: must be an HTTP header name"},
        {CH_POOL "\"consistent_hash_header\": \"X-User\\r\\n\"}", "consistent_hash_header: must be an HTTP header name"},
        {CH_POOL "\"consistent_hash_header\": \"X-\\u0000User\"}", "consistent_hash_header: must not contain NUL"},
        {CH_POOL "\"consistent_hash_header\": \"X-Us\u00e9r\"}", "consistent_hash_header: must be an HTTP header name"},
        {CH_POOL "\"consistent_hash_header\": \"X(User)\"}", "consistent_hash_header: must be an HTTP header name"},
        {CH_POOL "\"consistent_hash_header\": \"X-User\", \"hash_header\": \"X\"}", "hash_header: unknown field"},
#undef CH_POOL
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad(OBJ_POOL, 0, cases[i].body, cases[i].expect);

    bad(OBJ_POOL, OBJ_VALIDATE_REFS_BY_NAME, "{\"name\": \"p\", \"health_monitor_refs\": [\"\"]}",
        "health_monitor_refs[0]: must not be empty");
    bad(OBJ_POOL, OBJ_VALIDATE_REFS_BY_NAME, "{\"name\": \"p\", \"health_monitor_refs\": [3]}",
        "health_monitor_refs[0]: must be a uuid or a name");
    bad(OBJ_POOL, OBJ_VALIDATE_REFS_BY_NAME, "{\"name\": \"p\", \"health_monitor_refs\": [\"a\\tb\"]}",
        "health_monitor_refs[0]: must not contain control");

    /* Too many servers. */
    {
        json_t *body = json_pack("{s:s}", "name", "big"), *servers = json_array();
        char err[256];
        for (int i = 0; i < OBJ_POOL_SERVERS_MAX + 1; i++)
            json_array_append_new(servers, json_pack("{s:s,s:i}", "ip", "127.0.0.1", "port", i + 1));
        json_object_set_new(body, "servers", servers);
        assert_null(obj_validate(OBJ_POOL, body, 0, err, sizeof err));
        assert_string_equal(err, "servers: must have at most 1024 entries");
        json_array_remove(servers, 0);
        json_t *o = obj_validate(OBJ_POOL, body, 0, err, sizeof err);
        assert_non_null(o);
        assert_int_equal(json_array_size(json_object_get(o, "servers")), OBJ_POOL_SERVERS_MAX);
        json_decref(o);
        json_decref(body);
    }
}

/* ---------------------------------------------------------------------------------- */
/* virtualservice                                                                      */

static void test_virtualservice_good(void **state)
{
    json_t *o;
    (void)state;

    o = good(OBJ_VIRTUALSERVICE, 0,
             "{\"uuid\": \"" UUID_C "\", \"name\": \"vs\", \"vip\": \"127.0.0.1\","
             " \"services\": [{\"port\": 10080}], \"pool_ref\": \"" UUID_A "\"}");
    assert_json(o, "{\"name\": \"vs\", \"enabled\": true, \"vip\": \"127.0.0.1\","
                   " \"services\": [{\"port\": 10080}], \"application\": \"http\","
                   " \"x_forwarded_for\": \"replace\","
                   " \"pool_ref\": \"" UUID_A "\", \"se_refs\": []}");
    json_decref(o);

    o = good(OBJ_VIRTUALSERVICE, 0,
             "{\"name\": \"vs2\", \"description\": \"\", \"enabled\": false, \"vip\": \"0.0.0.0\","
             " \"services\": [{\"port\": 1}, {\"port\": 65535}], \"application\": \"tcp\","
             " \"x_forwarded_for\": \"append\","
             " \"pool_ref\": \"" UUID_A "\", \"se_refs\": [\"" UUID_B "\", \"" UUID_C "\"]}");
    assert_json(o, "{\"name\": \"vs2\", \"description\": \"\", \"enabled\": false, \"vip\": \"0.0.0.0\","
                   " \"services\": [{\"port\": 1}, {\"port\": 65535}], \"application\": \"tcp\","
                   " \"x_forwarded_for\": \"append\","
                   " \"pool_ref\": \"" UUID_A "\", \"se_refs\": [\"" UUID_B "\", \"" UUID_C "\"]}");
    json_decref(o);

    o = good(OBJ_VIRTUALSERVICE, OBJ_VALIDATE_REFS_BY_NAME,
             "{\"name\": \"vs3\", \"vip\": \"198.18.0.10\", \"services\": [{\"port\": 80}],"
             " \"pool_ref\": \"web pool\", \"se_refs\": [\"se-1\"]}");
    assert_string_equal(str(o, "pool_ref"), "web pool");
    json_decref(o);
}

static void test_virtualservice_bad(void **state)
{
#define VS_OK_POOL ", \"pool_ref\": \"" UUID_A "\""
    static const struct {
        const char *body, *expect;
    } cases[] = {
        {"{\"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}]" VS_OK_POOL "}", "name: required"},
        {"{\"name\": \"v\", \"services\": [{\"port\": 80}]" VS_OK_POOL "}", "vip: required"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\"" VS_OK_POOL "}", "services: required"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}]}", "pool_ref: required"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": []" VS_OK_POOL "}", "services: must have at least one entry"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": {\"port\": 80}" VS_OK_POOL "}", "services: must be an array"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [80]" VS_OK_POOL "}", "services[0]: must be an object"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{}]" VS_OK_POOL "}", "services[0].port: required"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}, {\"port\": 0}]" VS_OK_POOL "}", "services[1].port: must be an integer 1-65535"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 70000}]" VS_OK_POOL "}", "services[0].port: must be an integer 1-65535"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": \"80\"}]" VS_OK_POOL "}", "services[0].port: must be an integer 1-65535"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80, \"ssl\": true}]" VS_OK_POOL "}", "services[0].ssl: unknown field"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}, {\"port\": 81}, {\"port\": 80}]" VS_OK_POOL "}", "services[2].port: duplicate of services[0].port"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1/24\", \"services\": [{\"port\": 80}]" VS_OK_POOL "}", "vip: must be a dotted IPv4 address"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1:80\", \"services\": [{\"port\": 80}]" VS_OK_POOL "}", "vip: must be a dotted IPv4 address"},
        {"{\"name\": \"v\", \"vip\": [\"127.0.0.1\"], \"services\": [{\"port\": 80}]" VS_OK_POOL "}", "vip: must be a dotted IPv4 address"},
        {"{\"name\": \"v\", \"vip\": \"239.1.1.1\", \"services\": [{\"port\": 80}]" VS_OK_POOL "}", "vip: must be a unicast IPv4 address or 0.0.0.0"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"enabled\": \"true\"" VS_OK_POOL "}", "enabled: must be true or false"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"application\": \"https\"" VS_OK_POOL "}", "application: must be one of http, tcp"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"application\": \"HTTP\"" VS_OK_POOL "}", "application: must be one of http, tcp"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"x_forwarded_for\": \"keep\"" VS_OK_POOL "}", "x_forwarded_for: must be one of replace, append"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"pool_ref\": \"web\"}", "pool_ref: must be a uuid"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"pool_ref\": [\"" UUID_A "\"]}", "pool_ref: must be a uuid"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"pool_ref\": null}", "pool_ref: must be a uuid"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"se_refs\": [\"" UUID_B "\", \"se-1\"]" VS_OK_POOL "}", "se_refs[1]: must be a uuid"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"se_refs\": [\"" UUID_B "\", \"" UUID_B "\"]" VS_OK_POOL "}", "se_refs[1]: duplicate of se_refs[0]"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"se_refs\": null" VS_OK_POOL "}", "se_refs: must be an array"},
        {"{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"pool\": \"x\"" VS_OK_POOL "}", "pool: unknown field"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad(OBJ_VIRTUALSERVICE, 0, cases[i].body, cases[i].expect);
    bad(OBJ_VIRTUALSERVICE, OBJ_VALIDATE_REFS_BY_NAME,
        "{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"pool_ref\": \"\"}",
        "pool_ref: must not be empty");
#undef VS_OK_POOL
}

/* ---------------------------------------------------------------------------------- */
/* serviceengine                                                                       */

/* Builds "ssh-ed25519 BASE64" for a fresh key pair into OUT. */
static void fresh_public_key(char *out, size_t outlen)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char blob[4 + 11 + 4 + 32] = {0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd',
                                           '2', '5', '5', '1', '9', 0, 0, 0, 32};
    char b64[128];

    assert_true(sodium_init() >= 0);
    crypto_sign_keypair(pk, sk);
    memcpy(blob + 19, pk, 32);
    sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, outlen, "ssh-ed25519 %s", b64);
}

static void test_serviceengine_good(void **state)
{
    char text[512], key[200];
    json_t *o;
    (void)state;

    /* Runtime fields and uuid are dropped. */
    o = good(OBJ_SERVICEENGINE, 0,
             "{\"uuid\": \"" UUID_B "\", \"name\": \"se-1\", \"public_key\": \"" KEY "\","
             " \"oper_status\": {\"state\": \"OPER_UP\"}, \"controller_node\": 2,"
             " \"connected_since\": \"2026-11-28T06:00:00.123Z\","
             " \"last_heartbeat\": \"2026-11-28T06:00:01.123Z\", \"se_state\": \"CONNECTED\"}");
    assert_json(o, "{\"name\": \"se-1\", \"public_key\": \"" KEY "\"}");
    json_decref(o);

    /* A pasted .pub line: comment and newline dropped. */
    o = good(OBJ_SERVICEENGINE, 0,
             "{\"name\": \"se-2\", \"description\": \"rack 4\","
             " \"public_key\": \"" KEY " se-1@test\\n\"}");
    assert_json(o, "{\"name\": \"se-2\", \"description\": \"rack 4\", \"public_key\": \"" KEY "\"}");
    json_decref(o);

    fresh_public_key(key, sizeof key);
    snprintf(text, sizeof text, "{\"name\": \"se-3\", \"public_key\": \"%s\"}", key);
    o = good(OBJ_SERVICEENGINE, 0, text);
    assert_string_equal(str(o, "public_key"), key);
    json_decref(o);
}

static void test_serviceengine_bad(void **state)
{
    static const struct {
        const char *body, *expect;
    } cases[] = {
        {"{\"public_key\": \"" KEY "\"}", "name: required"},
        {"{\"name\": \"se\"}", "public_key: required"},
        {"{\"name\": \"se\", \"public_key\": \"\"}", "public_key: must not be empty"},
        {"{\"name\": \"se\", \"public_key\": 42}", "public_key: must be a string"},
        {"{\"name\": \"se\", \"public_key\": \"" KEY_B64 "\"}", "public_key: must begin with \"ssh-ed25519 \""},
        {"{\"name\": \"se\", \"public_key\": \"ssh-rsa " KEY_B64 "\"}", "public_key: must begin with \"ssh-ed25519 \""},
        {"{\"name\": \"se\", \"public_key\": \"ssh-ed25519\"}", "public_key: must begin with"},
        {"{\"name\": \"se\", \"public_key\": \"ssh-ed25519 \"}", "public_key: must begin with"},
        {"{\"name\": \"se\", \"public_key\": \"ssh-ed25519  " KEY_B64 "\"}", "public_key: must have the key in base64"},
        {"{\"name\": \"se\", \"public_key\": \"ssh-ed25519 AAAA!!!!\"}", "public_key: the key is not valid base64"},
        {"{\"name\": \"se\", \"public_key\": \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDOQAI4qMERkzpvA7qss0VckZtLcEcGGhGiPbZBz8Vb\"}", "public_key: the key is not valid base64"},
        /* Valid base64 of something else: "hello world". */
        {"{\"name\": \"se\", \"public_key\": \"ssh-ed25519 aGVsbG8gd29ybGQ=\"}", "public_key: the key is not an ed25519 public key"},
        /* An RSA key blob under an ed25519 label. */
        {"{\"name\": \"se\", \"public_key\": \"ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAAAgQD4bB4dsAYyMXkOLR14fXpr\"}", "public_key: the key is not"},
        {"{\"name\": \"se\", \"public_key\": \"" KEY " comment\\u0001\"}", "public_key: must not contain control"},
        {"{\"name\": \"se\", \"public_key\": \"" KEY "\", \"state\": \"OPER_UP\"}", "state: unknown field"},
        {"{\"name\": \"se\", \"public_key\": \"" KEY "\", \"address\": \"127.0.0.1\"}", "address: unknown field"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad(OBJ_SERVICEENGINE, 0, cases[i].body, cases[i].expect);
}

/* ---------------------------------------------------------------------------------- */
/* Flags, references, error buffers                                                    */

static void test_keep_uuid(void **state)
{
    json_t *o;
    (void)state;

    o = good(OBJ_POOL, OBJ_VALIDATE_KEEP_UUID | OBJ_VALIDATE_REFS_BY_NAME,
             "{\"uuid\": \"" UUID_A "\", \"name\": \"p\"}");
    assert_string_equal(str(o, "uuid"), UUID_A);
    json_decref(o);
    o = good(OBJ_POOL, OBJ_VALIDATE_KEEP_UUID, "{\"name\": \"p\"}");
    assert_null(json_object_get(o, "uuid"));
    json_decref(o);
    o = good(OBJ_SERVICEENGINE, OBJ_VALIDATE_KEEP_UUID,
             "{\"uuid\": \"" UUID_B "\", \"name\": \"se\", \"public_key\": \"" KEY "\", \"se_state\": \"HEADLESS\"}");
    assert_json(o, "{\"uuid\": \"" UUID_B "\", \"name\": \"se\", \"public_key\": \"" KEY "\"}");
    json_decref(o);
    bad(OBJ_POOL, OBJ_VALIDATE_KEEP_UUID, "{\"uuid\": \"x\", \"name\": \"p\"}", "uuid: must be a uuid");
    bad(OBJ_POOL, OBJ_VALIDATE_KEEP_UUID, "{\"uuid\": 1, \"name\": \"p\"}", "uuid: must be a uuid");
    /* Without the flag a bad uuid is dropped like any uuid. */
    o = good(OBJ_POOL, 0, "{\"uuid\": 1, \"name\": \"p\"}");
    assert_null(json_object_get(o, "uuid"));
    json_decref(o);
}

static void test_refs(void **state)
{
    struct obj_ref refs[8];
    json_t *o;
    (void)state;

    o = good(OBJ_POOL, 0, "{\"name\": \"p\", \"health_monitor_refs\": [\"" UUID_A "\", \"" UUID_B "\"]}");
    assert_int_equal(obj_refs(OBJ_POOL, o, refs, 8), 2);
    assert_int_equal(refs[0].type, OBJ_HEALTHMONITOR);
    assert_string_equal(refs[0].field, "health_monitor_refs");
    assert_string_equal(refs[0].target, UUID_A);
    assert_int_equal(refs[1].type, OBJ_HEALTHMONITOR);
    assert_string_equal(refs[1].target, UUID_B);
    /* Borrowed from the object. */
    assert_ptr_equal(refs[0].target,
                     json_string_value(json_array_get(json_object_get(o, "health_monitor_refs"), 0)));
    json_decref(o);

    o = good(OBJ_POOL, 0, "{\"name\": \"p\"}");
    assert_int_equal(obj_refs(OBJ_POOL, o, refs, 8), 0);
    json_decref(o);

    o = good(OBJ_VIRTUALSERVICE, 0,
             "{\"name\": \"v\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}],"
             " \"pool_ref\": \"" UUID_A "\", \"se_refs\": [\"" UUID_B "\", \"" UUID_C "\"]}");
    assert_int_equal(obj_refs(OBJ_VIRTUALSERVICE, o, refs, 8), 3);
    assert_int_equal(refs[0].type, OBJ_POOL);
    assert_string_equal(refs[0].field, "pool_ref");
    assert_string_equal(refs[0].target, UUID_A);
    assert_int_equal(refs[1].type, OBJ_SERVICEENGINE);
    assert_string_equal(refs[1].field, "se_refs");
    assert_string_equal(refs[1].target, UUID_B);
    assert_int_equal(refs[2].type, OBJ_SERVICEENGINE);
    assert_string_equal(refs[2].target, UUID_C);

    /* More than MAX: the count is still right, only MAX written. */
    memset(refs, 0, sizeof refs);
    assert_int_equal(obj_refs(OBJ_VIRTUALSERVICE, o, refs, 1), 3);
    assert_string_equal(refs[0].target, UUID_A);
    assert_null(refs[1].target);
    assert_int_equal(obj_refs(OBJ_VIRTUALSERVICE, o, NULL, 0), 3);
    json_decref(o);

    o = good(OBJ_HEALTHMONITOR, 0, "{\"name\": \"m\", \"type\": \"HEALTH_MONITOR_TCP\"}");
    assert_int_equal(obj_refs(OBJ_HEALTHMONITOR, o, refs, 8), 0);
    json_decref(o);
    o = good(OBJ_SERVICEENGINE, 0, "{\"name\": \"se\", \"public_key\": \"" KEY "\"}");
    assert_int_equal(obj_refs(OBJ_SERVICEENGINE, o, refs, 8), 0);
    json_decref(o);
    assert_int_equal(obj_refs(OBJ_POOL, NULL, refs, 8), 0);
}

static void test_error_buffers(void **state)
{
    json_t *in = parse("{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 0}]}");
    char small[8];
    (void)state;

    /* No buffer: still refused, no crash. */
    assert_null(obj_validate(OBJ_POOL, in, 0, NULL, 0));
    /* A short buffer holds a cut, terminated message. */
    memset(small, 'x', sizeof small);
    assert_null(obj_validate(OBJ_POOL, in, 0, small, sizeof small));
    assert_string_equal(small, "servers");
    json_decref(in);

    /* Bad type, NULL body. */
    {
        char err[128];
        json_t *o = parse("{\"name\": \"p\"}");
        assert_null(obj_validate(OBJ__COUNT, o, 0, err, sizeof err));
        assert_string_equal(err, "(type): unknown object type");
        assert_null(obj_validate(OBJ_POOL, NULL, 0, err, sizeof err));
        assert_string_equal(err, "(body): must be a JSON object");
        json_decref(o);
    }
}

/* The input is borrowed: validation leaves it unchanged. */
static void test_input_untouched(void **state)
{
    const char *text = "{\"uuid\": \"" UUID_A "\", \"name\": \"se\", \"public_key\": \"" KEY " c\","
                       " \"se_state\": \"HEADLESS\"}";
    json_t *in = parse(text), *copy = parse(text);
    char err[128];
    json_t *o;
    (void)state;

    o = obj_validate(OBJ_SERVICEENGINE, in, 0, err, sizeof err);
    assert_non_null(o);
    assert_true(json_equal(in, copy));
    assert_int_equal(in->refcount, 1);
    json_decref(o);
    json_decref(in);
    json_decref(copy);
}

/* Every field of a good body of every type, replaced by hostile values: never a crash, and
 * a refusal always names that field. */
static void check_field_errors(enum obj_type t, int flags, json_t *root, json_t *parent,
                               const char *path)
{
    static const char *const hostile[] = {
        "null", "true", "0", "-1", "65536", "1e300", "0.5", "\"\"", "\"x\"", "\"\\u0000\"",
        "[]", "[null]", "[1, 1]", "{}", "{\"a\": 1}", "\"0b6f1c2e-5a4d-4e3f-9a1b-2c3d4e5f6a7b\"",
    };
    const char *key;
    json_t *value, *tmp;
    void *iter;

    for (iter = json_object_iter(parent); iter != NULL; iter = json_object_iter_next(parent, iter)) {
        char sub[128], err[256];
        key = json_object_iter_key(iter);
        value = json_incref(json_object_iter_value(iter));
        snprintf(sub, sizeof sub, "%s%s", path, key);
        for (size_t h = 0; h < sizeof hostile / sizeof hostile[0]; h++) {
            json_t *o;
            json_object_set_new(parent, key, parse(hostile[h]));
            err[0] = '\0';
            o = obj_validate(t, root, flags, err, sizeof err);
            if (o == NULL) {
                size_t n = strlen(sub);
                bool cross = strcmp(sub, "send_interval") == 0 &&
                             strncmp(err, "receive_timeout: must be less than send_interval", 48) == 0;
                if (!cross && (strncmp(err, sub, n) != 0 || strchr(":[.", err[n]) == NULL))
                    fail_msg("%s with %s = %s: error \"%s\" does not name it", obj_type_name(t),
                             sub, hostile[h], err);
            }
            json_decref(o);
        }
        json_object_set_new(parent, key, value);
        /* Into the first entry of an array of objects (servers[0], services[0]). */
        tmp = json_array_get(value, 0);
        if (json_is_object(tmp)) {
            snprintf(sub, sizeof sub, "%s%s[0].", path, key);
            check_field_errors(t, flags, root, tmp, sub);
        }
    }
}

static void test_hostile_fields(void **state)
{
    static const struct {
        enum obj_type type;
        const char *body;
    } bodies[] = {
        {OBJ_HEALTHMONITOR, "{\"name\": \"m\", \"description\": \"d\", \"type\": \"HEALTH_MONITOR_HTTP\","
                            " \"send_interval\": 5, \"receive_timeout\": 4, \"successful_checks\": 2,"
                            " \"failed_checks\": 2, \"monitor_port\": 80, \"http_request\": \"GET /\","
                            " \"http_response_codes\": [\"HTTP_2XX\"]}"},
        {OBJ_POOL, "{\"name\": \"p\", \"description\": \"d\", \"lb_algorithm\": \"LB_ALGORITHM_ROUND_ROBIN\","
                   " \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80, \"enabled\": true, \"ratio\": 2,"
                   " \"hostname\": \"a.example\"}], \"health_monitor_refs\": [\"" UUID_A "\"]}"},
        {OBJ_POOL, "{\"name\": \"p\", \"lb_algorithm\": \"LB_ALGORITHM_CONSISTENT_HASH\","
                   " \"consistent_hash_header\": \"X-User\","
                   " \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 80}]}"},
        {OBJ_VIRTUALSERVICE, "{\"name\": \"v\", \"description\": \"d\", \"enabled\": true, \"vip\": \"127.0.0.1\","
                             " \"services\": [{\"port\": 80}], \"application\": \"http\","
                             " \"pool_ref\": \"" UUID_A "\", \"se_refs\": [\"" UUID_B "\"]}"},
        {OBJ_SERVICEENGINE, "{\"name\": \"se\", \"description\": \"d\", \"public_key\": \"" KEY "\"}"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        for (int flags = 0; flags <= OBJ_VALIDATE_REFS_BY_NAME; flags += OBJ_VALIDATE_REFS_BY_NAME) {
            json_t *root = parse(bodies[i].body);
            json_decref(good(bodies[i].type, flags, bodies[i].body));
            check_field_errors(bodies[i].type, flags, root, root, "");
            json_decref(root);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_uuid_valid),
        cmocka_unit_test(test_uuid_generate),
        cmocka_unit_test(test_healthmonitor_good),
        cmocka_unit_test(test_healthmonitor_bad),
        cmocka_unit_test(test_pool_good),
        cmocka_unit_test(test_pool_bad),
        cmocka_unit_test(test_virtualservice_good),
        cmocka_unit_test(test_virtualservice_bad),
        cmocka_unit_test(test_serviceengine_good),
        cmocka_unit_test(test_serviceengine_bad),
        cmocka_unit_test(test_keep_uuid),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_error_buffers),
        cmocka_unit_test(test_input_untouched),
        cmocka_unit_test(test_hostile_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
