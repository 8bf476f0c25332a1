/* objects.c: validation and normalisation of the four config object types (contract
 * "Config objects"). Every check writes a message that starts with the field's path. */
#include "common/objects.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* --- Types and uuids --------------------------------------------------------------------- */

static const char *const objects__type_names[OBJ__COUNT] = {
    [OBJ_HEALTHMONITOR] = "healthmonitor",
    [OBJ_POOL] = "pool",
    [OBJ_VIRTUALSERVICE] = "virtualservice",
    [OBJ_SERVICEENGINE] = "serviceengine",
};

const char *obj_type_name(enum obj_type t)
{
    if ((int)t < 0 || t >= OBJ__COUNT)
        return NULL;
    return objects__type_names[t];
}

int obj_type_from_name(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < OBJ__COUNT; i++)
        if (strcmp(name, objects__type_names[i]) == 0)
            return i;
    return -1;
}

static bool objects__is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool obj_uuid_valid(const char *s)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < OBJ_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!objects__is_lower_hex(s[i])) {
            return false; /* also stops at a NUL before the end */
        }
    }
    return s[OBJ_UUID_LEN] == '\0';
}

void obj_uuid_generate(char out[OBJ_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t o = 0;

    /* Idempotent. On failure (no entropy source at all) randombytes_buf still aborts
     * rather than return predictable bytes, so there is nothing else to do here. */
    if (sodium_init() < 0)
        randombytes_stir();
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
}

/* --- Validation context and generic field checks ----------------------------------------- */

struct objects__ctx {
    int flags;
    char *err;
    size_t errlen;
};

/* Paths are short ("servers[1023].hostname"); keys in messages are cut to this. */
#define OBJECTS__PATH_MAX 128
#define OBJECTS__KEY_SHOWN 64

__attribute__((format(printf, 3, 4)))
static int objects__fail(struct objects__ctx *c, const char *path, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (c->err == NULL || c->errlen == 0)
        return -1;
    n = snprintf(c->err, c->errlen, "%s: ", path);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int objects__oom(struct objects__ctx *c)
{
    return objects__fail(c, "(body)", "out of memory");
}

/* Read-only fields of every type, dropped without a word (uuid is handled by obj_validate). */
static const char *const objects__read_only[] = {"uuid", NULL};

/* Writes PREFIX KEY into BUF (PREFIX is "" or ends with '.'). */
static const char *objects__path(char *buf, const char *prefix, const char *key)
{
    int n = snprintf(buf, OBJECTS__PATH_MAX, "%s%s", prefix, key);
    if (n < 0)
        buf[0] = '\0';
    return buf; /* a longer path (not produced by this file) is cut */
}

/* Sets KEY in OUT to VALUE (stolen). Returns 0 or -1 with the error written. */
static int objects__set(struct objects__ctx *c, json_t *out, const char *key, json_t *value)
{
    if (value == NULL || json_object_set_new(out, key, value) != 0)
        return objects__oom(c);
    return 0;
}

static bool objects__in_list(const char *key, const char *const *list)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++)
        if (strcmp(key, list[i]) == 0)
            return true;
    return false;
}

/* Refuses keys of IN that are neither in ALLOWED nor in IGNORED. */
static int objects__check_keys(struct objects__ctx *c, const json_t *in, const char *prefix,
                               const char *const *allowed, const char *const *ignored)
{
    const char *key;
    json_t *value;
    char path[OBJECTS__PATH_MAX];
    char shown[OBJECTS__KEY_SHOWN + 4];

    json_object_foreach((json_t *)in, key, value) {
        (void)value;
        if (objects__in_list(key, allowed) || objects__in_list(key, ignored))
            continue;
        /* Cut a long key and hide its control characters in the message. */
        size_t n = 0;
        for (; key[n] != '\0' && n < OBJECTS__KEY_SHOWN; n++)
            shown[n] = ((unsigned char)key[n] < 0x20 || key[n] == 0x7f) ? '?' : key[n];
        if (key[n] != '\0') {
            memcpy(shown + n, "...", 3);
            n += 3;
        }
        shown[n] = '\0';
        return objects__fail(c, objects__path(path, prefix, shown), "unknown field");
    }
    return 0;
}

enum {
    OBJECTS__STR_NO_CONTROL = 1 << 0,   /* refuse all control characters */
    OBJECTS__STR_NO_EDGE_SPACE = 1 << 1,/* refuse leading and trailing white space */
};

/* Checks that V is a JSON string of MIN..MAX bytes without NUL (and, per FLAGS, without
 * control characters or edge spaces). */
static int objects__check_string(struct objects__ctx *c, const char *path, const json_t *v,
                                 size_t min, size_t max, int flags)
{
    const char *s;
    size_t len;

    if (!json_is_string(v))
        return objects__fail(c, path, "must be a string");
    s = json_string_value(v);
    len = json_string_length(v);
    if (len < min)
        return objects__fail(c, path, min == 1 ? "must not be empty"
                                               : "must be at least %zu bytes long", min);
    if (len > max)
        return objects__fail(c, path, "must be at most %zu bytes long", max);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == 0)
            return objects__fail(c, path, "must not contain NUL characters");
        if ((flags & OBJECTS__STR_NO_CONTROL) && (ch < 0x20 || ch == 0x7f))
            return objects__fail(c, path, "must not contain control characters");
    }
    if ((flags & OBJECTS__STR_NO_EDGE_SPACE) && len > 0 && (s[0] == ' ' || s[len - 1] == ' '))
        return objects__fail(c, path, "must not begin or end with a space");
    return 0;
}

static int objects__check_name_value(struct objects__ctx *c, const char *path, const json_t *v)
{
    return objects__check_string(c, path, v, 1, OBJ_NAME_MAX,
                                 OBJECTS__STR_NO_CONTROL | OBJECTS__STR_NO_EDGE_SPACE);
}

/* "name": required everywhere. */
static int objects__copy_name(struct objects__ctx *c, const json_t *in, json_t *out)
{
    const json_t *v = json_object_get(in, "name");

    if (v == NULL)
        return objects__fail(c, "name", "required");
    if (objects__check_name_value(c, "name", v) != 0)
        return -1;
    return objects__set(c, out, "name", json_string(json_string_value(v)));
}

/* "description": optional everywhere, free text, no default. */
static int objects__copy_description(struct objects__ctx *c, const json_t *in, json_t *out)
{
    const json_t *v = json_object_get(in, "description");

    if (v == NULL)
        return 0;
    if (objects__check_string(c, "description", v, 0, OBJ_DESCRIPTION_MAX, 0) != 0)
        return -1;
    return objects__set(c, out, "description", json_string(json_string_value(v)));
}

/* An optional (HAS_DEFAULT) or required integer in LO..HI. */
static int objects__copy_int(struct objects__ctx *c, const json_t *in, json_t *out,
                             const char *prefix, const char *key, json_int_t lo, json_int_t hi,
                             bool has_default, json_int_t def, bool required)
{
    char path[OBJECTS__PATH_MAX];
    const json_t *v = json_object_get(in, key);
    json_int_t n;

    objects__path(path, prefix, key);
    if (v == NULL) {
        if (required)
            return objects__fail(c, path, "required");
        return has_default ? objects__set(c, out, key, json_integer(def)) : 0;
    }
    if (!json_is_integer(v))
        return objects__fail(c, path, "must be an integer %lld-%lld", (long long)lo,
                             (long long)hi);
    n = json_integer_value(v);
    if (n < lo || n > hi)
        return objects__fail(c, path, "must be an integer %lld-%lld", (long long)lo,
                             (long long)hi);
    return objects__set(c, out, key, json_integer(n));
}

static int objects__copy_bool(struct objects__ctx *c, const json_t *in, json_t *out,
                              const char *prefix, const char *key, bool def)
{
    char path[OBJECTS__PATH_MAX];
    const json_t *v = json_object_get(in, key);

    if (v == NULL)
        return objects__set(c, out, key, json_boolean(def));
    if (!json_is_boolean(v))
        return objects__fail(c, objects__path(path, prefix, key), "must be true or false");
    return objects__set(c, out, key, json_boolean(json_is_true(v)));
}

/* An enum given as one of VALUES (NULL-terminated); DEF NULL means required. */
static int objects__copy_enum(struct objects__ctx *c, const json_t *in, json_t *out,
                              const char *key, const char *const *values, const char *def,
                              const char **chosen)
{
    const json_t *v = json_object_get(in, key);
    const char *s;
    char list[256];
    size_t o = 0;

    if (v == NULL) {
        if (def == NULL)
            return objects__fail(c, key, "required");
        *chosen = def;
        return objects__set(c, out, key, json_string(def));
    }
    if (json_is_string(v)) {
        s = json_string_value(v);
        for (size_t i = 0; values[i] != NULL; i++) {
            if (strcmp(s, values[i]) == 0 && strlen(s) == json_string_length(v)) {
                *chosen = values[i];
                return objects__set(c, out, key, json_string(values[i]));
            }
        }
    }
    list[0] = '\0';
    for (size_t i = 0; values[i] != NULL && o < sizeof list; i++) {
        int n = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", values[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
    return objects__fail(c, key, "must be one of %s", list);
}

/* A number of seconds (integer or fraction) in LO..HI. Integral values are stored as
 * JSON integers, others as reals. Writes the value into *VALUE. */
static int objects__copy_seconds(struct objects__ctx *c, const json_t *in, json_t *out,
                                 const char *key, double lo, double hi, double def,
                                 double *value)
{
    const json_t *v = json_object_get(in, key);
    double d;

    if (v == NULL) {
        d = def;
    } else {
        if (!json_is_number(v))
            return objects__fail(c, key, "must be a number of seconds %g-%g", lo, hi);
        d = json_number_value(v);
        if (!isfinite(d) || d < lo || d > hi)
            return objects__fail(c, key, "must be a number of seconds %g-%g", lo, hi);
    }
    *value = d;
    if (d == (double)(json_int_t)d) /* |d| <= 3600: the cast is safe */
        return objects__set(c, out, key, json_integer((json_int_t)d));
    return objects__set(c, out, key, json_real(d));
}

/* Parses a strict dotted-quad IPv4 address. */
static bool objects__parse_ipv4(const json_t *v, uint32_t *addr)
{
    struct in_addr ia;
    const char *s;

    if (!json_is_string(v))
        return false;
    s = json_string_value(v);
    if (json_string_length(v) > 15 || strlen(s) != json_string_length(v))
        return false;
    if (inet_pton(AF_INET, s, &ia) != 1) /* only a.b.c.d, no leading zeros */
        return false;
    *addr = ntohl(ia.s_addr);
    return true;
}

/* 0.0.0.0/8, 224.0.0.0/4 (multicast) and 240.0.0.0/4 (reserved, broadcast) are no unicast
 * host addresses. */
static bool objects__is_unicast(uint32_t a)
{
    return (a >> 24) != 0 && (a >> 28) < 0xe;
}

/* An IPv4 address under KEY; WILDCARD_OK allows 0.0.0.0. Required. */
static int objects__copy_ipv4(struct objects__ctx *c, const json_t *in, json_t *out,
                              const char *prefix, const char *key, bool wildcard_ok,
                              uint32_t *addr)
{
    char path[OBJECTS__PATH_MAX];
    const json_t *v = json_object_get(in, key);

    objects__path(path, prefix, key);
    if (v == NULL)
        return objects__fail(c, path, "required");
    if (!objects__parse_ipv4(v, addr))
        return objects__fail(c, path, "must be a dotted IPv4 address (a.b.c.d)");
    if (!objects__is_unicast(*addr) && !(wildcard_ok && *addr == 0))
        return objects__fail(c, path, "must be a unicast IPv4 address%s",
                             wildcard_ok ? " or 0.0.0.0" : "");
    return objects__set(c, out, key, json_string(json_string_value(v)));
}

/* Checks one reference value at PATH. */
static int objects__check_ref(struct objects__ctx *c, const char *path, const json_t *v)
{
    if (c->flags & OBJ_VALIDATE_REFS_BY_NAME) {
        if (!json_is_string(v))
            return objects__fail(c, path, "must be a uuid or a name (string)");
        return objects__check_string(c, path, v, 1, OBJ_NAME_MAX, OBJECTS__STR_NO_CONTROL);
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        !obj_uuid_valid(json_string_value(v)))
        return objects__fail(c, path, "must be a uuid (lower-case 8-4-4-4-12 hex)");
    return 0;
}

static int objects__copy_ref(struct objects__ctx *c, const json_t *in, json_t *out,
                             const char *key)
{
    const json_t *v = json_object_get(in, key);

    if (v == NULL)
        return objects__fail(c, key, "required");
    if (objects__check_ref(c, key, v) != 0)
        return -1;
    return objects__set(c, out, key, json_string(json_string_value(v)));
}

/* An optional array (default []) of at most MAX distinct references. */
static int objects__copy_ref_array(struct objects__ctx *c, const json_t *in, json_t *out,
                                   const char *key, size_t max)
{
    char path[OBJECTS__PATH_MAX];
    const json_t *v = json_object_get(in, key);
    json_t *arr;
    size_t i, j;

    if (v == NULL)
        return objects__set(c, out, key, json_array());
    if (!json_is_array(v))
        return objects__fail(c, key, "must be an array");
    if (json_array_size(v) > max)
        return objects__fail(c, key, "must have at most %zu entries", max);
    arr = json_array();
    if (arr == NULL)
        return objects__oom(c);
    for (i = 0; i < json_array_size(v); i++) {
        const json_t *r = json_array_get(v, i);
        snprintf(path, sizeof path, "%s[%zu]", key, i);
        if (objects__check_ref(c, path, r) != 0)
            goto fail;
        for (j = 0; j < i; j++) {
            if (json_equal((json_t *)r, json_array_get(v, j))) {
                objects__fail(c, path, "duplicate of %s[%zu]", key, j);
                goto fail;
            }
        }
        if (json_array_append_new(arr, json_string(json_string_value(r))) != 0) {
            objects__oom(c);
            goto fail;
        }
    }
    return objects__set(c, out, key, arr);
fail:
    json_decref(arr);
    return -1;
}

/* --- healthmonitor ----------------------------------------------------------------------- */

#define OBJECTS__SEND_INTERVAL_MIN 0.05
#define OBJECTS__TIMEOUT_MIN 0.01
#define OBJECTS__INTERVAL_MAX 3600.0
#define OBJECTS__CHECKS_MAX 50

static const char *const objects__hm_types[] = {"HEALTH_MONITOR_TCP", "HEALTH_MONITOR_HTTP",
                                                NULL};
static const char *const objects__hm_codes[] = {"HTTP_ANY", "HTTP_1XX", "HTTP_2XX", "HTTP_3XX",
                                                "HTTP_4XX", "HTTP_5XX", NULL};

/* "METHOD SP TARGET [SP HTTP/1.x]" optionally followed by "\r\n" and header lines; no
 * control characters other than CR LF pairs. */
static bool objects__http_request_ok(const char *s, size_t len)
{
    size_t i = 0, start;

    while (i < len && s[i] >= 'A' && s[i] <= 'Z')
        i++;
    if (i == 0 || i == len || s[i] != ' ')
        return false;
    start = ++i;
    while (i < len && (unsigned char)s[i] > 0x20 && s[i] != 0x7f)
        i++;
    if (i == start)
        return false;
    if (i < len && s[i] == ' ') {
        if (len - i < 9 || (memcmp(s + i, " HTTP/1.0", 9) != 0 &&
                            memcmp(s + i, " HTTP/1.1", 9) != 0))
            return false;
        i += 9;
    }
    if (i == len)
        return true;
    if (s[i] != '\r' || i + 1 >= len || s[i + 1] != '\n')
        return false;
    for (; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r') {
            if (i + 1 >= len || s[i + 1] != '\n')
                return false;
            i++;
        } else if (ch < 0x20 || ch == 0x7f) {
            if (ch != '\t')
                return false;
        }
    }
    return true;
}

static int objects__validate_healthmonitor(struct objects__ctx *c, const json_t *in,
                                           json_t *out)
{
    static const char *const allowed[] = {
        "name", "description", "type", "send_interval", "receive_timeout",
        "successful_checks", "failed_checks", "monitor_port", "http_request",
        "http_response_codes", NULL};
    const char *type = NULL;
    double send_interval, receive_timeout, timeout_default;
    const json_t *v;
    bool http;

    if (objects__check_keys(c, in, "", allowed, objects__read_only) != 0 ||
        objects__copy_name(c, in, out) != 0 || objects__copy_description(c, in, out) != 0 ||
        objects__copy_enum(c, in, out, "type", objects__hm_types, NULL, &type) != 0)
        return -1;
    http = strcmp(type, "HEALTH_MONITOR_HTTP") == 0;

    if (objects__copy_seconds(c, in, out, "send_interval", OBJECTS__SEND_INTERVAL_MIN,
                              OBJECTS__INTERVAL_MAX, 5, &send_interval) != 0)
        return -1;
    /* The default timeout stays below a shorter interval: 4 s, or 0.8 * send_interval. */
    timeout_default = send_interval >= 5 ? 4 : send_interval * 0.8;
    if (objects__copy_seconds(c, in, out, "receive_timeout", OBJECTS__TIMEOUT_MIN,
                              OBJECTS__INTERVAL_MAX, timeout_default, &receive_timeout) != 0)
        return -1;
    if (receive_timeout >= send_interval)
        return objects__fail(c, "receive_timeout", "must be less than send_interval (%g)",
                             send_interval);
    if (objects__copy_int(c, in, out, "", "successful_checks", 1, OBJECTS__CHECKS_MAX, true, 2,
                          false) != 0 ||
        objects__copy_int(c, in, out, "", "failed_checks", 1, OBJECTS__CHECKS_MAX, true, 2,
                          false) != 0 ||
        objects__copy_int(c, in, out, "", "monitor_port", 1, 65535, false, 0, false) != 0)
        return -1;

    v = json_object_get(in, "http_request");
    if (v != NULL && !http)
        return objects__fail(c, "http_request", "only for type HEALTH_MONITOR_HTTP");
    if (http) {
        if (v == NULL) {
            if (objects__set(c, out, "http_request", json_string("GET / HTTP/1.0")) != 0)
                return -1;
        } else {
            if (objects__check_string(c, "http_request", v, 1, OBJ_HTTP_REQUEST_MAX, 0) != 0)
                return -1;
            if (!objects__http_request_ok(json_string_value(v), json_string_length(v)))
                return objects__fail(c, "http_request",
                                     "must look like \"GET /path HTTP/1.0\" (headers after "
                                     "\\r\\n allowed)");
            if (objects__set(c, out, "http_request", json_string(json_string_value(v))) != 0)
                return -1;
        }
    }

    v = json_object_get(in, "http_response_codes");
    if (v != NULL && !http)
        return objects__fail(c, "http_response_codes", "only for type HEALTH_MONITOR_HTTP");
    if (http) {
        json_t *codes;
        if (v == NULL) {
            codes = json_pack("[s]", "HTTP_2XX");
        } else {
            char path[OBJECTS__PATH_MAX];
            if (!json_is_array(v))
                return objects__fail(c, "http_response_codes", "must be an array");
            if (json_array_size(v) == 0)
                return objects__fail(c, "http_response_codes", "must not be empty");
            codes = json_array();
            if (codes == NULL)
                return objects__oom(c);
            for (size_t i = 0; i < json_array_size(v); i++) {
                const json_t *code = json_array_get(v, i);
                const char *match = NULL;
                snprintf(path, sizeof path, "http_response_codes[%zu]", i);
                for (size_t k = 0; json_is_string(code) && objects__hm_codes[k] != NULL; k++)
                    if (strcmp(json_string_value(code), objects__hm_codes[k]) == 0 &&
                        strlen(objects__hm_codes[k]) == json_string_length(code))
                        match = objects__hm_codes[k];
                if (match == NULL) {
                    json_decref(codes);
                    return objects__fail(c, path, "must be one of HTTP_ANY, HTTP_1XX, "
                                                  "HTTP_2XX, HTTP_3XX, HTTP_4XX, HTTP_5XX");
                }
                for (size_t j = 0; j < i; j++) {
                    if (json_equal((json_t *)code, json_array_get(v, j))) {
                        json_decref(codes);
                        return objects__fail(c, path, "duplicate of http_response_codes[%zu]",
                                             j);
                    }
                }
                if (json_array_append_new(codes, json_string(match)) != 0) {
                    json_decref(codes);
                    return objects__oom(c);
                }
            }
        }
        if (objects__set(c, out, "http_response_codes", codes) != 0)
            return -1;
    }
    return 0;
}

/* --- pool -------------------------------------------------------------------------------- */

#define OBJECTS__RATIO_MAX 20

static const char *const objects__lb_algorithms[] = {
    "LB_ALGORITHM_ROUND_ROBIN", "LB_ALGORITHM_LEAST_CONNECTIONS",
    "LB_ALGORITHM_CONSISTENT_HASH", NULL};

/* RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
static bool objects__hostname_ok(const char *s, size_t len)
{
    size_t label = 0;

    if (len == 0 || len > OBJ_HOSTNAME_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char ch = i < len ? s[i] : '.';
        if (ch == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || (ch == '-' && label > 0)) {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

static int objects__copy_server(struct objects__ctx *c, const json_t *in, size_t index,
                                json_t *out, uint32_t *ip, json_int_t *port)
{
    static const char *const allowed[] = {"ip", "port", "enabled", "ratio", "hostname", NULL};
    char prefix[OBJECTS__PATH_MAX], path[OBJECTS__PATH_MAX];
    const json_t *v;

    snprintf(prefix, sizeof prefix, "servers[%zu].", index);
    if (!json_is_object(in)) {
        snprintf(path, sizeof path, "servers[%zu]", index);
        return objects__fail(c, path, "must be an object");
    }
    if (objects__check_keys(c, in, prefix, allowed, NULL) != 0 ||
        objects__copy_ipv4(c, in, out, prefix, "ip", false, ip) != 0 ||
        objects__copy_int(c, in, out, prefix, "port", 1, 65535, false, 0, true) != 0 ||
        objects__copy_bool(c, in, out, prefix, "enabled", true) != 0 ||
        objects__copy_int(c, in, out, prefix, "ratio", 1, OBJECTS__RATIO_MAX, false, 0,
                          false) != 0)
        return -1;
    *port = json_integer_value(json_object_get(out, "port"));
    v = json_object_get(in, "hostname");
    if (v != NULL) {
        objects__path(path, prefix, "hostname");
        if (objects__check_string(c, path, v, 1, OBJ_HOSTNAME_MAX, OBJECTS__STR_NO_CONTROL) != 0)
            return -1;
        if (!objects__hostname_ok(json_string_value(v), json_string_length(v)))
            return objects__fail(c, path, "must be a DNS host name (letters, digits, '-', '.')");
        if (objects__set(c, out, "hostname", json_string(json_string_value(v))) != 0)
            return -1;
    }
    return 0;
}

/* RFC 9110 token characters (header field names). */
static bool objects__is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* "consistent_hash_header": optional, an HTTP header name, only with consistent hash. */
static int objects__copy_hash_header(struct objects__ctx *c, const json_t *in, json_t *out,
                                     const char *algorithm)
{
    const char *key = "consistent_hash_header";
    const json_t *v = json_object_get(in, key);
    const char *s;
    size_t len;

    if (v == NULL)
        return 0;
    if (strcmp(algorithm, "LB_ALGORITHM_CONSISTENT_HASH") != 0)
        return objects__fail(c, key, "only for lb_algorithm LB_ALGORITHM_CONSISTENT_HASH");
    if (objects__check_string(c, key, v, 1, OBJ_HASH_HEADER_MAX, 0) != 0)
        return -1;
    s = json_string_value(v);
    len = json_string_length(v);
    for (size_t i = 0; i < len; i++)
        if (!objects__is_tchar((unsigned char)s[i]))
            return objects__fail(c, key, "must be an HTTP header name (letters, digits and "
                                         "!#$%%&'*+-.^_`|~)");
    return objects__set(c, out, key, json_string(s));
}

static int objects__validate_pool(struct objects__ctx *c, const json_t *in, json_t *out)
{
    static const char *const allowed[] = {"name", "description", "lb_algorithm",
                                          "consistent_hash_header", "servers",
                                          "health_monitor_refs", NULL};
    const char *algorithm;
    const json_t *v;
    json_t *servers = NULL;
    uint32_t *ips = NULL;
    json_int_t *ports = NULL;
    size_t n;

    if (objects__check_keys(c, in, "", allowed, objects__read_only) != 0 ||
        objects__copy_name(c, in, out) != 0 || objects__copy_description(c, in, out) != 0 ||
        objects__copy_enum(c, in, out, "lb_algorithm", objects__lb_algorithms,
                           "LB_ALGORITHM_ROUND_ROBIN", &algorithm) != 0 ||
        objects__copy_hash_header(c, in, out, algorithm) != 0)
        return -1;

    v = json_object_get(in, "servers");
    if (v != NULL && !json_is_array(v))
        return objects__fail(c, "servers", "must be an array");
    n = v != NULL ? json_array_size(v) : 0;
    if (n > OBJ_POOL_SERVERS_MAX)
        return objects__fail(c, "servers", "must have at most %d entries", OBJ_POOL_SERVERS_MAX);
    servers = json_array();
    ips = calloc(n + 1, sizeof *ips);
    ports = calloc(n + 1, sizeof *ports);
    if (servers == NULL || ips == NULL || ports == NULL) {
        objects__oom(c);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *server = json_object();
        if (server == NULL || json_array_append_new(servers, server) != 0) {
            objects__oom(c);
            goto fail;
        }
        if (objects__copy_server(c, json_array_get(v, i), i, server, &ips[i], &ports[i]) != 0)
            goto fail;
        for (size_t j = 0; j < i; j++) {
            if (ips[j] == ips[i] && ports[j] == ports[i]) {
                char path[OBJECTS__PATH_MAX];
                snprintf(path, sizeof path, "servers[%zu]", i);
                objects__fail(c, path, "duplicate of servers[%zu] (%s:%lld)", j,
                              json_string_value(json_object_get(server, "ip")),
                              (long long)ports[i]);
                goto fail;
            }
        }
    }
    free(ips);
    free(ports);
    if (objects__set(c, out, "servers", servers) != 0)
        return -1;
    return objects__copy_ref_array(c, in, out, "health_monitor_refs", OBJ_POOL_MONITORS_MAX);
fail:
    json_decref(servers);
    free(ips);
    free(ports);
    return -1;
}

/* --- virtualservice ---------------------------------------------------------------------- */

static const char *const objects__applications[] = {"http", "tcp", NULL};
/* X-Forwarded-For: "replace" (default, at the edge) or "append" (docs/api.md). */
static const char *const objects__xff_modes[] = {"replace", "append", NULL};

static int objects__copy_services(struct objects__ctx *c, const json_t *in, json_t *out)
{
    static const char *const allowed[] = {"port", NULL};
    const json_t *v = json_object_get(in, "services");
    char prefix[OBJECTS__PATH_MAX];
    json_t *services;
    size_t n;

    if (v == NULL)
        return objects__fail(c, "services", "required");
    if (!json_is_array(v))
        return objects__fail(c, "services", "must be an array");
    n = json_array_size(v);
    if (n == 0)
        return objects__fail(c, "services", "must have at least one entry");
    if (n > OBJ_VS_SERVICES_MAX)
        return objects__fail(c, "services", "must have at most %d entries", OBJ_VS_SERVICES_MAX);
    services = json_array();
    if (services == NULL)
        return objects__oom(c);
    for (size_t i = 0; i < n; i++) {
        const json_t *s = json_array_get(v, i);
        json_t *service = json_object();
        snprintf(prefix, sizeof prefix, "services[%zu]", i);
        if (service == NULL || json_array_append_new(services, service) != 0) {
            objects__oom(c);
            goto fail;
        }
        if (!json_is_object(s)) {
            objects__fail(c, prefix, "must be an object");
            goto fail;
        }
        strcat(prefix, ".");
        if (objects__check_keys(c, s, prefix, allowed, NULL) != 0 ||
            objects__copy_int(c, s, service, prefix, "port", 1, 65535, false, 0, true) != 0)
            goto fail;
        for (size_t j = 0; j < i; j++) {
            if (json_equal(json_object_get(service, "port"),
                           json_object_get(json_array_get(services, j), "port"))) {
                char path[OBJECTS__PATH_MAX];
                objects__fail(c, objects__path(path, prefix, "port"),
                              "duplicate of services[%zu].port", j);
                goto fail;
            }
        }
    }
    return objects__set(c, out, "services", services);
fail:
    json_decref(services);
    return -1;
}

static int objects__validate_virtualservice(struct objects__ctx *c, const json_t *in,
                                            json_t *out)
{
    static const char *const allowed[] = {"name", "description", "enabled", "vip", "services",
                                          "application", "pool_ref", "se_refs",
                                          "x_forwarded_for", NULL};
    /* what a GET shows besides the config: a client may PUT it back as it got it */
    static const char *const runtime[] = {"uuid", "runtime", NULL};
    const char *application, *xff;
    uint32_t vip;

    if (objects__check_keys(c, in, "", allowed, runtime) != 0 ||
        objects__copy_name(c, in, out) != 0 || objects__copy_description(c, in, out) != 0 ||
        objects__copy_bool(c, in, out, "", "enabled", true) != 0 ||
        objects__copy_ipv4(c, in, out, "", "vip", true, &vip) != 0 ||
        objects__copy_services(c, in, out) != 0 ||
        objects__copy_enum(c, in, out, "application", objects__applications, "http",
                           &application) != 0 ||
        objects__copy_enum(c, in, out, "x_forwarded_for", objects__xff_modes, "replace",
                           &xff) != 0 ||
        objects__copy_ref(c, in, out, "pool_ref") != 0 ||
        objects__copy_ref_array(c, in, out, "se_refs", OBJ_VS_SE_REFS_MAX) != 0)
        return -1;
    return 0;
}

/* --- serviceengine ----------------------------------------------------------------------- */

#define OBJECTS__ED25519_PREFIX "ssh-ed25519 "

/* Checks "ssh-ed25519 BASE64 [comment]" and that BASE64 is an ed25519 public key blob
 * (string "ssh-ed25519", string of 32 bytes). Writes the normalised form (no comment) into
 * OUT (OBJ_PUBLIC_KEY_MAX + 1 bytes). */
static const char *objects__public_key(const char *s, size_t len, char *out)
{
    static const unsigned char head[] = {0, 0, 0, 11, 's', 's', 'h', '-', 'e', 'd', '2',
                                         '5', '5', '1', '9', 0, 0, 0, 32};
    const size_t plen = sizeof OBJECTS__ED25519_PREFIX - 1;
    unsigned char blob[128];
    size_t blob_len = 0, b64_len = 0;
    const char *b64, *end = NULL;

    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
        len--; /* a pasted .pub file ends with a newline */
    if (len < plen || memcmp(s, OBJECTS__ED25519_PREFIX, plen) != 0)
        return "must begin with \"ssh-ed25519 \"";
    b64 = s + plen;
    while (b64_len < len - plen && b64[b64_len] != ' ')
        b64_len++;
    if (b64_len == 0)
        return "must have the key in base64 after \"ssh-ed25519 \"";
    for (size_t i = plen + b64_len; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "must not contain control characters";
    if (sodium_base642bin(blob, sizeof blob, b64, b64_len, NULL, &blob_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != b64 + b64_len)
        return "the key is not valid base64";
    if (blob_len != sizeof head + 32 || memcmp(blob, head, sizeof head) != 0)
        return "the key is not an ed25519 public key";
    memcpy(out, s, plen + b64_len);
    out[plen + b64_len] = '\0';
    return NULL;
}

static int objects__validate_serviceengine(struct objects__ctx *c, const json_t *in,
                                           json_t *out)
{
    static const char *const allowed[] = {"name", "description", "public_key", NULL};
    static const char *const runtime[] = {"uuid", "oper_status", "controller_node", "connected_since",
                                          "last_heartbeat", "se_state", "config_version", "logs", NULL};
    char key[OBJ_PUBLIC_KEY_MAX + 1];
    const json_t *v;
    const char *problem;

    if (objects__check_keys(c, in, "", allowed, runtime) != 0 ||
        objects__copy_name(c, in, out) != 0 || objects__copy_description(c, in, out) != 0)
        return -1;
    v = json_object_get(in, "public_key");
    if (v == NULL)
        return objects__fail(c, "public_key", "required");
    if (objects__check_string(c, "public_key", v, 1, OBJ_PUBLIC_KEY_MAX, 0) != 0)
        return -1;
    problem = objects__public_key(json_string_value(v), json_string_length(v), key);
    if (problem != NULL)
        return objects__fail(c, "public_key", "%s", problem);
    return objects__set(c, out, "public_key", json_string(key));
}

/* --- Entry points ------------------------------------------------------------------------ */

json_t *obj_validate(enum obj_type t, json_t *body, int flags, char *err, size_t errlen)
{
    struct objects__ctx c = {.flags = flags, .err = err, .errlen = errlen};
    json_t *out;
    const json_t *uuid;
    int rc = -1;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if ((int)t < 0 || t >= OBJ__COUNT) {
        objects__fail(&c, "(type)", "unknown object type");
        return NULL;
    }
    if (!json_is_object(body)) {
        objects__fail(&c, "(body)", "must be a JSON object");
        return NULL;
    }
    out = json_object();
    if (out == NULL) {
        objects__oom(&c);
        return NULL;
    }
    uuid = json_object_get(body, "uuid");
    if (uuid != NULL && (flags & OBJ_VALIDATE_KEEP_UUID)) {
        if (!json_is_string(uuid) || strlen(json_string_value(uuid)) != json_string_length(uuid) ||
            !obj_uuid_valid(json_string_value(uuid))) {
            objects__fail(&c, "uuid", "must be a uuid (lower-case 8-4-4-4-12 hex)");
            goto done;
        }
        if (objects__set(&c, out, "uuid", json_string(json_string_value(uuid))) != 0)
            goto done;
    }

    switch (t) {
    case OBJ_HEALTHMONITOR:
        rc = objects__validate_healthmonitor(&c, body, out);
        break;
    case OBJ_POOL:
        rc = objects__validate_pool(&c, body, out);
        break;
    case OBJ_VIRTUALSERVICE:
        rc = objects__validate_virtualservice(&c, body, out);
        break;
    case OBJ_SERVICEENGINE:
        rc = objects__validate_serviceengine(&c, body, out);
        break;
    default:
        objects__fail(&c, "(type)", "unknown object type");
        break;
    }
done:
    if (rc != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

size_t obj_refs(enum obj_type t, const json_t *obj, struct obj_ref *refs, size_t max)
{
    size_t n = 0;
    const json_t *v;

#define OBJECTS__ADD(type_, field_, value_)                                                  \
    do {                                                                                     \
        if (json_is_string(value_)) {                                                        \
            if (n < max && refs != NULL)                                                     \
                refs[n] = (struct obj_ref){.type = (type_), .field = (field_),               \
                                           .target = json_string_value(value_)};             \
            n++;                                                                             \
        }                                                                                    \
    } while (0)

    if (!json_is_object(obj))
        return 0;
    switch (t) {
    case OBJ_POOL:
        v = json_object_get(obj, "health_monitor_refs");
        for (size_t i = 0; i < json_array_size(v); i++)
            OBJECTS__ADD(OBJ_HEALTHMONITOR, "health_monitor_refs", json_array_get(v, i));
        break;
    case OBJ_VIRTUALSERVICE:
        OBJECTS__ADD(OBJ_POOL, "pool_ref", json_object_get(obj, "pool_ref"));
        v = json_object_get(obj, "se_refs");
        for (size_t i = 0; i < json_array_size(v); i++)
            OBJECTS__ADD(OBJ_SERVICEENGINE, "se_refs", json_array_get(v, i));
        break;
    default:
        break;
    }
#undef OBJECTS__ADD
    return n;
}
