/* se_config.c: validated, resolved, reference-counted configuration generations. */
#include "se/se_config.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/objects.h"
#include "common/vlog.h"

static char *se_config__dup(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? strdup(s) : NULL;
}

static uint32_t se_config__ms(const json_t *obj, const char *key, double dflt)
{
    const json_t *v = json_object_get(obj, key);
    double s = json_is_number(v) ? json_number_value(v) : dflt;
    double ms = s * 1000.0;
    if (ms < 1)
        ms = 1;
    if (ms > 3600e3)
        ms = 3600e3;
    return (uint32_t)llround(ms);
}

static uint32_t se_config__uint(const json_t *obj, const char *key, uint32_t dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (uint32_t)json_integer_value(v) : dflt;
}

static void se_config__free(struct se_config *c)
{
    for (size_t i = 0; i < c->n_monitors; i++) {
        free(c->monitors[i].name);
        free(c->monitors[i].uuid);
        free(c->monitors[i].http_request);
    }
    for (size_t i = 0; i < c->n_pools; i++) {
        free(c->pools[i].name);
        free(c->pools[i].uuid);
        free(c->pools[i].hash_header);
        free(c->pools[i].servers);
        free(c->pools[i].monitors);
    }
    for (size_t i = 0; i < c->n_vs; i++) {
        free(c->vs[i].name);
        free(c->vs[i].uuid);
        free(c->vs[i].ports);
    }
    free(c->monitors);
    free(c->pools);
    free(c->vs);
    json_decref(c->source);
    free(c);
}

struct se_config *se_config_ref(struct se_config *c)
{
    c->refs++;
    return c;
}

void se_config_unref(struct se_config *c)
{
    if (c != NULL && --c->refs == 0)
        se_config__free(c);
}

bool se_monitor_config_equal(const struct se_monitor_config *a,
                             const struct se_monitor_config *b)
{
    return a->type == b->type && a->interval_ms == b->interval_ms &&
           a->timeout_ms == b->timeout_ms && a->rise == b->rise && a->fall == b->fall &&
           a->port == b->port && a->codes == b->codes &&
           strcmp(a->http_request ? a->http_request : "",
                  b->http_request ? b->http_request : "") == 0;
}

/* Finds the object of LIST (validated objects) that REF names: uuid first, then name. */
static long se_config__resolve(json_t *list, const char *ref)
{
    size_t i;
    json_t *o;

    json_array_foreach(list, i, o) {
        const char *uuid = json_string_value(json_object_get(o, "uuid"));
        if (uuid && strcmp(uuid, ref) == 0)
            return (long)i;
    }
    json_array_foreach(list, i, o) {
        if (strcmp(json_string_value(json_object_get(o, "name")), ref) == 0)
            return (long)i;
    }
    return -1;
}

/* Validates every object of section TYPE into a new array in *OUT. */
static int se_config__validate_section(json_t *root, enum obj_type type, json_t **out,
                                       char *err, size_t errlen)
{
    const char *section = obj_type_name(type);
    json_t *in = json_object_get(root, section);
    json_t *list = json_array();
    size_t i;
    json_t *o;

    *out = list;
    if (list == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (in == NULL)
        return 0;
    if (!json_is_array(in)) {
        snprintf(err, errlen, "%s: must be an array", section);
        return -1;
    }
    json_array_foreach(in, i, o) {
        char why[512];
        json_t *valid;
        const char *name;

        why[0] = '\0';
        valid = obj_validate(type, o, OBJ_VALIDATE_REFS_BY_NAME | OBJ_VALIDATE_KEEP_UUID, why,
                             sizeof why);
        name = json_is_object(o) ? json_string_value(json_object_get(o, "name")) : NULL;
        if (valid == NULL) {
            if (name)
                snprintf(err, errlen, "%s[%zu] (%s): %s", section, i, name, why);
            else
                snprintf(err, errlen, "%s[%zu]: %s", section, i, why);
            return -1;
        }
        name = json_string_value(json_object_get(valid, "name"));
        for (size_t j = 0; j < i; j++) {
            json_t *prev = json_array_get(list, j);
            const char *u1 = json_string_value(json_object_get(prev, "uuid"));
            const char *u2 = json_string_value(json_object_get(valid, "uuid"));
            if (strcmp(json_string_value(json_object_get(prev, "name")), name) == 0) {
                snprintf(err, errlen, "%s[%zu] (%s): name: already used by %s[%zu]", section,
                         i, name, section, j);
                json_decref(valid);
                return -1;
            }
            if (u1 && u2 && strcmp(u1, u2) == 0) {
                snprintf(err, errlen, "%s[%zu] (%s): uuid: already used by %s[%zu]", section,
                         i, name, section, j);
                json_decref(valid);
                return -1;
            }
        }
        json_array_append_new(list, valid);
    }
    return 0;
}

static int se_config__monitor(struct se_monitor_config *m, json_t *o)
{
    const char *type = json_string_value(json_object_get(o, "type"));
    json_t *codes = json_object_get(o, "http_response_codes");
    size_t i;
    json_t *c;

    m->name = se_config__dup(o, "name");
    m->uuid = se_config__dup(o, "uuid");
    m->type = type && strcmp(type, "HEALTH_MONITOR_HTTP") == 0 ? SE_MONITOR_HTTP : SE_MONITOR_TCP;
    m->interval_ms = se_config__ms(o, "send_interval", 5);
    m->timeout_ms = se_config__ms(o, "receive_timeout", 4);
    m->rise = se_config__uint(o, "successful_checks", 2);
    m->fall = se_config__uint(o, "failed_checks", 2);
    m->port = (uint16_t)se_config__uint(o, "monitor_port", 0);
    if (m->rise == 0)
        m->rise = 1;
    if (m->fall == 0)
        m->fall = 1;
    if (m->type == SE_MONITOR_HTTP) {
        const char *req = json_string_value(json_object_get(o, "http_request"));
        m->http_request = strdup(req ? req : "GET / HTTP/1.0");
        if (m->http_request == NULL)
            return -1;
        m->codes = 0;
        json_array_foreach(codes, i, c) {
            const char *s = json_string_value(c);
            if (s == NULL)
                continue;
            if (strcmp(s, "HTTP_ANY") == 0)
                m->codes |= SE_CODES_ANY;
            else if (strlen(s) == 8 && strncmp(s, "HTTP_", 5) == 0 && s[5] >= '1' && s[5] <= '5')
                m->codes |= 1u << (s[5] - '0');
        }
        if (m->codes == 0)
            m->codes = 1u << 2;
    }
    return m->name ? 0 : -1;
}

static int se_config__pool(struct se_config *c, struct se_pool_config *p, json_t *o,
                           json_t *monitors, char *err, size_t errlen, size_t index)
{
    const char *lb = json_string_value(json_object_get(o, "lb_algorithm"));
    json_t *servers = json_object_get(o, "servers");
    json_t *refs = json_object_get(o, "health_monitor_refs");
    size_t i;
    json_t *s;

    p->name = se_config__dup(o, "name");
    p->uuid = se_config__dup(o, "uuid");
    p->lb = SE_LB_ROUND_ROBIN;
    if (lb && strcmp(lb, "LB_ALGORITHM_LEAST_CONNECTIONS") == 0)
        p->lb = SE_LB_LEAST_CONNECTIONS;
    else if (lb && strcmp(lb, "LB_ALGORITHM_CONSISTENT_HASH") == 0)
        p->lb = SE_LB_CONSISTENT_HASH;
    if (p->lb == SE_LB_CONSISTENT_HASH && json_object_get(o, "consistent_hash_header")) {
        p->hash_header = se_config__dup(o, "consistent_hash_header");
        if (p->hash_header == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    p->n_servers = json_array_size(servers);
    p->servers = calloc(p->n_servers ? p->n_servers : 1, sizeof *p->servers);
    p->n_monitors = json_array_size(refs);
    p->monitors = calloc(p->n_monitors ? p->n_monitors : 1, sizeof *p->monitors);
    if (p->name == NULL || p->servers == NULL || p->monitors == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_array_foreach(servers, i, s) {
        struct se_server_config *sc = &p->servers[i];
        const char *ip = json_string_value(json_object_get(s, "ip"));
        sc->port = (uint16_t)se_config__uint(s, "port", 0);
        sc->enabled = !json_is_false(json_object_get(s, "enabled"));
        sc->ratio = se_config__uint(s, "ratio", 1);
        if (sc->ratio == 0)
            sc->ratio = 1;
        sc->addr.sin_family = AF_INET;
        sc->addr.sin_port = htons(sc->port);
        if (ip == NULL || inet_pton(AF_INET, ip, &sc->addr.sin_addr) != 1 || sc->port == 0) {
            snprintf(err, errlen, "pool[%zu] (%s): servers[%zu]: needs an IPv4 ip and a port",
                     index, p->name, i);
            return -1;
        }
        snprintf(sc->ip, sizeof sc->ip, "%s", ip);
        for (size_t j = 0; j < i; j++) {
            if (p->servers[j].port == sc->port && strcmp(p->servers[j].ip, sc->ip) == 0) {
                snprintf(err, errlen, "pool[%zu] (%s): servers[%zu]: same ip and port as "
                         "servers[%zu]", index, p->name, i, j);
                return -1;
            }
        }
    }
    json_array_foreach(refs, i, s) {
        long m = se_config__resolve(monitors, json_string_value(s));
        if (m < 0) {
            snprintf(err, errlen, "pool[%zu] (%s): health_monitor_refs[%zu]: no healthmonitor "
                     "\"%s\"", index, p->name, i, json_string_value(s));
            return -1;
        }
        p->monitors[i] = (size_t)m;
    }
    (void)c;
    return 0;
}

static int se_config__vs(struct se_vs_config *v, json_t *o, json_t *pools, char *err,
                         size_t errlen, size_t index)
{
    const char *vip = json_string_value(json_object_get(o, "vip"));
    const char *app = json_string_value(json_object_get(o, "application"));
    const char *pool = json_string_value(json_object_get(o, "pool_ref"));
    json_t *services = json_object_get(o, "services");
    size_t i;
    json_t *s;
    long p;

    v->name = se_config__dup(o, "name");
    v->uuid = se_config__dup(o, "uuid");
    v->enabled = !json_is_false(json_object_get(o, "enabled"));
    v->app = app && strcmp(app, "tcp") == 0 ? SE_APP_TCP : SE_APP_HTTP;
    v->xff_append = json_is_string(json_object_get(o, "x_forwarded_for")) &&
                    strcmp(json_string_value(json_object_get(o, "x_forwarded_for")), "append") == 0;
    v->n_ports = json_array_size(services);
    v->ports = calloc(v->n_ports ? v->n_ports : 1, sizeof *v->ports);
    if (v->name == NULL || v->ports == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    v->vip.sin_family = AF_INET;
    if (vip == NULL || inet_pton(AF_INET, vip, &v->vip.sin_addr) != 1) {
        snprintf(err, errlen, "virtualservice[%zu] (%s): vip: must be an IPv4 address", index,
                 v->name);
        return -1;
    }
    snprintf(v->vip_text, sizeof v->vip_text, "%s", vip);
    json_array_foreach(services, i, s) {
        v->ports[i] = (uint16_t)se_config__uint(s, "port", 0);
    }
    p = pool ? se_config__resolve(pools, pool) : -1;
    if (p < 0) {
        snprintf(err, errlen, "virtualservice[%zu] (%s): pool_ref: no pool \"%s\"", index,
                 v->name, pool ? pool : "");
        return -1;
    }
    v->pool = (size_t)p;
    return 0;
}

/* Two enabled services may not take the same address (a wildcard VIP overlaps all). */
static int se_config__check_listeners(struct se_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->n_vs; i++) {
        for (size_t j = 0; j < i; j++) {
            const struct se_vs_config *a = &c->vs[i], *b = &c->vs[j];
            if (!a->enabled || !b->enabled)
                continue;
            if (a->vip.sin_addr.s_addr != b->vip.sin_addr.s_addr &&
                a->vip.sin_addr.s_addr != 0 && b->vip.sin_addr.s_addr != 0)
                continue;
            for (size_t x = 0; x < a->n_ports; x++) {
                for (size_t y = 0; y < b->n_ports; y++) {
                    if (a->ports[x] == b->ports[y]) {
                        snprintf(err, errlen, "virtualservice[%zu] (%s): services: %s:%u is "
                                 "also used by virtualservice[%zu] (%s)", i, a->name,
                                 a->vip_text, a->ports[x], j, b->name);
                        return -1;
                    }
                }
            }
        }
    }
    return 0;
}

struct se_config *se_config_from_json(json_t *root, char *err, size_t errlen)
{
    json_t *monitors = NULL, *pools = NULL, *vss = NULL;
    struct se_config *c;
    const char *key;
    json_t *v;
    size_t i;

    if (!json_is_object(root)) {
        snprintf(err, errlen, "the configuration must be a JSON object");
        return NULL;
    }
    json_object_foreach(root, key, v) {
        if (strcmp(key, "healthmonitor") != 0 && strcmp(key, "pool") != 0 &&
            strcmp(key, "virtualservice") != 0) {
            snprintf(err, errlen, "%s: unknown section (expected healthmonitor, pool, "
                     "virtualservice)", key);
            return NULL;
        }
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->refs = 1;
    if (se_config__validate_section(root, OBJ_HEALTHMONITOR, &monitors, err, errlen) != 0 ||
        se_config__validate_section(root, OBJ_POOL, &pools, err, errlen) != 0 ||
        se_config__validate_section(root, OBJ_VIRTUALSERVICE, &vss, err, errlen) != 0)
        goto fail;
    c->source = json_pack("{sOsOsO}", "healthmonitor", monitors, "pool", pools,
                          "virtualservice", vss);
    c->n_monitors = json_array_size(monitors);
    c->n_pools = json_array_size(pools);
    c->n_vs = json_array_size(vss);
    c->monitors = calloc(c->n_monitors + 1, sizeof *c->monitors);
    c->pools = calloc(c->n_pools + 1, sizeof *c->pools);
    c->vs = calloc(c->n_vs + 1, sizeof *c->vs);
    if (c->source == NULL || c->monitors == NULL || c->pools == NULL || c->vs == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    json_array_foreach(monitors, i, v) {
        if (se_config__monitor(&c->monitors[i], v) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
    }
    json_array_foreach(pools, i, v) {
        if (se_config__pool(c, &c->pools[i], v, monitors, err, errlen, i) != 0)
            goto fail;
    }
    json_array_foreach(vss, i, v) {
        if (se_config__vs(&c->vs[i], v, pools, err, errlen, i) != 0)
            goto fail;
    }
    if (se_config__check_listeners(c, err, errlen) != 0)
        goto fail;
    json_decref(monitors);
    json_decref(pools);
    json_decref(vss);
    return c;
fail:
    json_decref(monitors);
    json_decref(pools);
    json_decref(vss);
    se_config__free(c);
    return NULL;
}

struct se_config *se_config_load_file(const char *path, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    struct se_config *c;

    if (root == NULL) {
        if (jerr.line <= 0)
            snprintf(err, errlen, "%s: %s", path, jerr.text);
        else
            snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    c = se_config_from_json(root, err, errlen);
    json_decref(root);
    return c;
}
