/* Unit tests of se_config.c and se_options.c: validation, reference resolution, errors
 * that name the bad part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "common/errors.h"
#include "se/se_config.h"
#include "se/se_options.h"

static struct se_config *parse(const char *text, char *err, size_t errlen)
{
    json_t *root = json_loads(text, 0, NULL);
    struct se_config *c;
    assert_non_null(root);
    c = se_config_from_json(root, err, errlen);
    json_decref(root);
    return c;
}

static const char good[] =
    "{\"healthmonitor\": [{\"name\": \"hm\", \"type\": \"HEALTH_MONITOR_HTTP\","
    "  \"send_interval\": 0.5, \"receive_timeout\": 0.25, \"successful_checks\": 3,"
    "  \"failed_checks\": 4, \"http_response_codes\": [\"HTTP_2XX\", \"HTTP_3XX\"]}],"
    " \"pool\": [{\"name\": \"p\", \"lb_algorithm\": \"LB_ALGORITHM_CONSISTENT_HASH\","
    "  \"consistent_hash_header\": \"X-User\","
    "  \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 9001},"
    "              {\"ip\": \"127.0.0.2\", \"port\": 9002, \"enabled\": false}],"
    "  \"health_monitor_refs\": [\"hm\"]},"
    "  {\"name\": \"q\", \"uuid\": \"0b3a2e8e-7c65-4c2a-9d8f-1e2f3a4b5c6d\", \"servers\": []}],"
    " \"virtualservice\": [{\"name\": \"web\", \"vip\": \"127.0.0.1\","
    "  \"services\": [{\"port\": 8080}, {\"port\": 8081}], \"pool_ref\": \"p\"},"
    "  {\"name\": \"db\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 5432}],"
    "   \"application\": \"tcp\", \"pool_ref\": \"0b3a2e8e-7c65-4c2a-9d8f-1e2f3a4b5c6d\"}]}";

static void resolves_references_by_name_and_uuid(void **state)
{
    char err[256] = "";
    struct se_config *c = parse(good, err, sizeof err);

    assert_non_null(c);
    assert_int_equal(c->n_monitors, 1);
    assert_int_equal(c->monitors[0].type, SE_MONITOR_HTTP);
    assert_int_equal(c->monitors[0].interval_ms, 500);
    assert_int_equal(c->monitors[0].timeout_ms, 250);
    assert_int_equal(c->monitors[0].rise, 3);
    assert_int_equal(c->monitors[0].fall, 4);
    assert_int_equal(c->monitors[0].codes, (1u << 2) | (1u << 3));
    assert_int_equal(c->pools[0].lb, SE_LB_CONSISTENT_HASH);
    assert_string_equal(c->pools[0].hash_header, "X-User");
    assert_null(c->pools[1].hash_header);
    assert_int_equal(c->pools[0].n_servers, 2);
    assert_false(c->pools[0].servers[1].enabled);
    assert_int_equal(c->pools[0].n_monitors, 1);
    assert_int_equal(c->vs[0].pool, 0);
    assert_int_equal(c->vs[0].n_ports, 2);
    assert_int_equal(c->vs[1].pool, 1);
    assert_int_equal(c->vs[1].app, SE_APP_TCP);
    se_config_ref(c);
    se_config_unref(c);
    se_config_unref(c);
}

static void refuses_with_a_message_naming_the_part(void **state)
{
    static const struct {
        const char *text;
        const char *expect;
    } cases[] = {
        {"[]", "must be a JSON object"},
        {"{\"pools\": []}", "pools: unknown section"},
        {"{\"pool\": {}}", "pool: must be an array"},
        {"{\"pool\": [{\"name\": \"p\", \"consistent_hash_header\": \"X-User\"}]}",
         "pool[0] (p): consistent_hash_header: only for lb_algorithm LB_ALGORITHM_CONSISTENT_HASH"},
        {"{\"pool\": [{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 0}]}]}",
         "pool[0] (p): servers[0].port"},
        {"{\"pool\": [{\"name\": \"p\", \"servers\": []}, {\"name\": \"p\", \"servers\": []}]}",
         "pool[1] (p): name: already used"},
        {"{\"pool\": [{\"name\": \"p\", \"servers\": [], \"health_monitor_refs\": [\"nope\"]}]}",
         "health_monitor_refs[0]: no healthmonitor \"nope\""},
        {"{\"virtualservice\": [{\"name\": \"v\", \"vip\": \"127.0.0.1\","
         " \"services\": [{\"port\": 80}], \"pool_ref\": \"missing\"}]}",
         "virtualservice[0] (v): pool_ref: no pool \"missing\""},
        {"{\"pool\": [{\"name\": \"p\", \"servers\": []}], \"virtualservice\": ["
         "{\"name\": \"a\", \"vip\": \"127.0.0.1\", \"services\": [{\"port\": 80}], \"pool_ref\": \"p\"},"
         "{\"name\": \"b\", \"vip\": \"0.0.0.0\", \"services\": [{\"port\": 80}], \"pool_ref\": \"p\"}]}",
         "also used by virtualservice[0] (a)"},
        {"{\"pool\": [{\"name\": \"p\", \"servers\": [{\"ip\": \"127.0.0.1\", \"port\": 1},"
         "{\"ip\": \"127.0.0.1\", \"port\": 1}]}]}",
         "servers[1]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        struct se_config *c = parse(cases[i].text, err, sizeof err);
        if (c != NULL || strstr(err, cases[i].expect) == NULL)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].expect);
    }
}

static void options_parse_and_refuse(void **state)
{
    struct se_options o;
    char err[256];
    char *ok[] = {"vigil-se", "--name", "se1", "--data-dir", "/tmp/x", "--admin",
                  "127.0.0.1:9000", "--config-file=/tmp/c.json", "--miss-limit", "5"};
    char *ctl[] = {"vigil-se", "--name", "se1", "--data-dir", "/tmp/x", "--admin",
                   "127.0.0.1:9000", "--controllers", "127.0.0.1:5098,10.0.0.2:5098",
                   "--key", "k", "--known-hosts", "kh"};
    char *no_key[] = {"vigil-se", "--name", "se1", "--data-dir", "/tmp/x", "--admin",
                      "127.0.0.1:9000", "--controllers", "127.0.0.1:5098"};
    char *bad_ctl[] = {"vigil-se", "--name", "se1", "--data-dir", "/tmp/x", "--admin",
                       "127.0.0.1:9000", "--controllers", "127.0.0.1", "--key", "k",
                       "--known-hosts", "kh"};
    char *bad_hb[] = {"vigil-se", "--name", "se1", "--data-dir", "/tmp/x", "--admin",
                      "127.0.0.1:9000", "--config-file", "c", "--heartbeat-ms", "-5"};
    char *cap[] = {"vigil-se", "--name", "se1", "--data-dir", "/tmp/x", "--admin",
                   "127.0.0.1:9000", "--config-file", "c", "--spool-cap-mb=64"};
    char *bad_cap[] = {"vigil-se", "--name", "se1", "--data-dir", "/tmp/x", "--admin",
                       "127.0.0.1:9000", "--config-file", "c", "--spool-cap-mb", "0"};

    assert_int_equal(se_options_parse(10, ok, &o, err, sizeof err), 0);
    assert_string_equal(o.config_file, "/tmp/c.json");
    assert_int_equal(o.miss_limit, 5);
    assert_int_equal(o.heartbeat_ms, 1000);
    assert_int_equal(o.admin.port, 9000);
    assert_int_equal(o.spool_cap_mb, 1024); /* the default */
    assert_int_equal(se_options_parse(13, ctl, &o, err, sizeof err), 0);
    assert_int_equal(o.n_controllers, 2);
    assert_string_equal(o.controllers[1], "10.0.0.2:5098");
    assert_int_equal(se_options_parse(9, no_key, &o, err, sizeof err), VIGIL_EINVAL);
    assert_non_null(strstr(err, "--key"));
    assert_int_equal(se_options_parse(13, bad_ctl, &o, err, sizeof err), VIGIL_EINVAL);
    assert_non_null(strstr(err, "--controllers"));
    assert_int_equal(se_options_parse(11, bad_hb, &o, err, sizeof err), VIGIL_EINVAL);
    assert_non_null(strstr(err, "--heartbeat-ms"));
    assert_int_equal(se_options_parse(10, cap, &o, err, sizeof err), 0);
    assert_int_equal(o.spool_cap_mb, 64);
    assert_int_equal(se_options_parse(11, bad_cap, &o, err, sizeof err), VIGIL_EINVAL);
    assert_non_null(strstr(err, "--spool-cap-mb"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(resolves_references_by_name_and_uuid),
        cmocka_unit_test(refuses_with_a_message_naming_the_part),
        cmocka_unit_test(options_parse_and_refuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
