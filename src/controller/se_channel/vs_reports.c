/* vs_reports.c: the SEs' reports of their virtual services, and the runtime made of them
 * (vs_reports.h). */
#include "controller/se_channel/vs_reports.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/objects.h"

/* One SE's last two reports. */
struct vs_reports__se {
    char uuid[OBJ_UUID_LEN + 1];
    json_t *now, *before; /* its "vs" lists (owned), BEFORE may be NULL */
    int64_t now_ms, before_ms;
};

struct vs_reports {
    struct vs_reports__se *ses;
    size_t n, cap;
};

struct vs_reports *vs_reports_new(void)
{
    return calloc(1, sizeof(struct vs_reports));
}

void vs_reports_free(struct vs_reports *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        json_decref(r->ses[i].now);
        json_decref(r->ses[i].before);
    }
    free(r->ses);
    free(r);
}

static struct vs_reports__se *vs_reports__find(const struct vs_reports *r, const char *se_uuid)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->ses[i].uuid, se_uuid) == 0)
            return &r->ses[i];
    return NULL;
}

void vs_reports_put(struct vs_reports *r, const char *se_uuid, const json_t *list,
                    int64_t now_ms)
{
    struct vs_reports__se *se = vs_reports__find(r, se_uuid);

    if (!json_is_array(list) || strlen(se_uuid) > OBJ_UUID_LEN)
        return;
    if (se == NULL) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 16;
            struct vs_reports__se *ses = realloc(r->ses, cap * sizeof *ses);
            if (ses == NULL)
                return;
            r->ses = ses;
            r->cap = cap;
        }
        se = &r->ses[r->n++];
        memset(se, 0, sizeof *se);
        strcpy(se->uuid, se_uuid);
    }
    json_decref(se->before);
    se->before = se->now;
    se->before_ms = se->now_ms;
    se->now = json_deep_copy(list);
    se->now_ms = now_ms;
}

void vs_reports_forget(struct vs_reports *r, const char *se_uuid)
{
    struct vs_reports__se *se = vs_reports__find(r, se_uuid);

    if (se == NULL)
        return;
    json_decref(se->now);
    json_decref(se->before);
    *se = r->ses[--r->n];
}

/* The entry of LIST (a "vs" list) for VS_UUID, or NULL. */
static const json_t *vs_reports__entry(const json_t *list, const char *vs_uuid)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *u = json_string_value(json_object_get(e, "uuid"));
        if (u != NULL && strcmp(u, vs_uuid) == 0)
            return e;
    }
    return NULL;
}

/* FIELD's growth per second from BEFORE to NOW (DT_MS apart) into *SUM; 0 when it cannot
 * be told (a counter gone back: the SE restarted). */
static int vs_reports__rate(const json_t *now, const json_t *before, int64_t dt_ms,
                            const char *field, double *sum)
{
    json_int_t a = json_integer_value(json_object_get(before, field));
    json_int_t b = json_integer_value(json_object_get(now, field));
    if (before == NULL || dt_ms <= 0 || b < a)
        return 0;
    *sum += (double)(b - a) * 1000.0 / (double)dt_ms;
    return 1;
}

/* Adds one SE's view of its servers (its entry's "server_states") to MERGED, an object
 * keyed "ip:port" of {"ip", "port", "reported_by", "up_on", "disabled_on"}. */
static void vs_reports__add_servers(json_t *merged, const json_t *entry)
{
    const json_t *s;
    size_t i;
    json_array_foreach(json_object_get(entry, "server_states"), i, s)
    {
        const char *ip = json_string_value(json_object_get(s, "ip"));
        const char *state = json_string_value(json_object_get(s, "state"));
        json_int_t port = json_integer_value(json_object_get(s, "port"));
        char key[80];
        json_t *have;
        if (ip == NULL || state == NULL || strlen(ip) > 64)
            continue;
        snprintf(key, sizeof key, "%s:%lld", ip, (long long)port);
        have = json_object_get(merged, key);
        if (have == NULL) {
            have = json_pack("{s:s, s:I, s:I, s:I, s:I}", "ip", ip, "port", port, "reported_by",
                             (json_int_t)0, "up_on", (json_int_t)0, "disabled_on", (json_int_t)0);
            json_object_set_new(merged, key, have);
        }
        json_object_set_new(have, "reported_by",
                            json_integer(json_integer_value(json_object_get(have, "reported_by")) + 1));
        if (strcmp(state, "UP") == 0)
            json_object_set_new(have, "up_on",
                                json_integer(json_integer_value(json_object_get(have, "up_on")) + 1));
        if (strcmp(state, "DISABLED") == 0)
            json_object_set_new(have, "disabled_on",
                                json_integer(json_integer_value(json_object_get(have, "disabled_on")) + 1));
    }
}

/* MERGED (vs_reports__add_servers') as the runtime's "server_states": each server with
 * its "state": UP when every reporting SE sees it up, DOWN when none does, DEGRADED in
 * between, DISABLED when disabled; and how many SEs reported it and saw it up. */
static json_t *vs_reports__server_states(json_t *merged)
{
    json_t *out = json_array(), *s;
    const char *key;
    json_object_foreach(merged, key, s)
    {
        json_int_t by = json_integer_value(json_object_get(s, "reported_by"));
        json_int_t up = json_integer_value(json_object_get(s, "up_on"));
        json_int_t disabled = json_integer_value(json_object_get(s, "disabled_on"));
        json_object_set_new(s, "state", json_string(disabled == by ? "DISABLED"
                                                    : up == by     ? "UP"
                                                    : up == 0      ? "DOWN"
                                                                   : "DEGRADED"));
        json_object_del(s, "disabled_on");
        json_array_append(out, s);
    }
    return out;
}

json_t *vs_reports_runtime(const struct vs_reports *r, const char *vs_uuid)
{
    json_t *servers_merged = json_object();
    unsigned reporting = 0, up = 0, down = 0, disabled = 0, rated = 0;
    json_int_t servers_up = 0, servers = 0;
    double requests = 0, errors = 0;
    const char *health;
    json_t *out;

    for (size_t i = 0; i < r->n; i++) {
        const struct vs_reports__se *se = &r->ses[i];
        const json_t *now = vs_reports__entry(se->now, vs_uuid), *before;
        const char *h;
        if (now == NULL)
            continue;
        reporting++;
        h = json_string_value(json_object_get(now, "health"));
        h = h != NULL ? h : "DOWN";
        up += strcmp(h, "UP") == 0;
        disabled += strcmp(h, "DISABLED") == 0;
        down += strcmp(h, "DOWN") == 0;
        vs_reports__add_servers(servers_merged, now);
        servers_up += json_integer_value(json_object_get(now, "servers_up"));
        servers += json_integer_value(json_object_get(now, "servers"));
        before = vs_reports__entry(se->before, vs_uuid);
        if (vs_reports__rate(now, before, se->now_ms - se->before_ms, "requests", &requests) &&
            vs_reports__rate(now, before, se->now_ms - se->before_ms, "errors", &errors))
            rated++;
    }
    if (reporting == 0) {
        json_decref(servers_merged);
        return NULL;
    }
    health = up == reporting         ? "UP"
             : disabled == reporting ? "DISABLED"
             : down == reporting     ? "DOWN"
                                     : "DEGRADED";
    out = json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:o}", "health", health, "service_engines",
                    (json_int_t)reporting, "servers_up", servers_up, "servers", servers,
                    "requests_per_s", rated ? json_real(round(requests * 100) / 100) : json_null(),
                    "errors_per_s", rated ? json_real(round(errors * 100) / 100) : json_null(),
                    "server_states", vs_reports__server_states(servers_merged));
    json_decref(servers_merged);
    return out;
}
