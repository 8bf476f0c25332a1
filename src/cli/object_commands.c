/* object_commands.c: list / show / create / delete of the config objects. */
#include "cli/object_commands.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/table.h"
#include "common/errors.h"
#include "common/timeutil.h"

#define OBJECT_COMMANDS__CELL 512
#define OBJECT_COMMANDS__MAX_COLUMNS 8

/* How a list column gets its text from an object. */
enum object_commands__kind {
    OBJECT_COMMANDS__VALUE,     /* the field's value (table_json_text) */
    OBJECT_COMMANDS__SUBFIELD,  /* FIELD.SUBFIELD */
    OBJECT_COMMANDS__PORTS,     /* services[].port joined by "," */
    OBJECT_COMMANDS__AGE,       /* the time since the RFC 3339 time in the field */
};

struct object_commands__column {
    const char *header;
    enum object_commands__kind kind;
    const char *field;
    const char *subfield;
};

struct object_commands__type {
    const char *name;
    size_t ncolumns;
    struct object_commands__column columns[OBJECT_COMMANDS__MAX_COLUMNS];
};

/* The list table of each type: NAME and UUID, then a few key fields. */
static const struct object_commands__type object_commands__types[] = {
    {"pool", 5, {
        {"NAME", OBJECT_COMMANDS__VALUE, "name", NULL},
        {"UUID", OBJECT_COMMANDS__VALUE, "uuid", NULL},
        {"LB_ALGORITHM", OBJECT_COMMANDS__VALUE, "lb_algorithm", NULL},
        {"SERVERS", OBJECT_COMMANDS__VALUE, "servers", NULL},
        {"HEALTH_MONITORS", OBJECT_COMMANDS__VALUE, "health_monitor_refs", NULL},
    }},
    {"healthmonitor", 6, {
        {"NAME", OBJECT_COMMANDS__VALUE, "name", NULL},
        {"UUID", OBJECT_COMMANDS__VALUE, "uuid", NULL},
        {"TYPE", OBJECT_COMMANDS__VALUE, "type", NULL},
        {"INTERVAL", OBJECT_COMMANDS__VALUE, "send_interval", NULL},
        {"TIMEOUT", OBJECT_COMMANDS__VALUE, "receive_timeout", NULL},
        {"UP/DOWN_CHECKS", OBJECT_COMMANDS__VALUE, NULL, NULL}, /* filled specially */
    }},
    {"virtualservice", 7, {
        {"NAME", OBJECT_COMMANDS__VALUE, "name", NULL},
        {"UUID", OBJECT_COMMANDS__VALUE, "uuid", NULL},
        {"ENABLED", OBJECT_COMMANDS__VALUE, "enabled", NULL},
        {"VIP", OBJECT_COMMANDS__VALUE, "vip", NULL},
        {"PORTS", OBJECT_COMMANDS__PORTS, "services", NULL},
        {"APPLICATION", OBJECT_COMMANDS__VALUE, "application", NULL},
        {"POOL_REF", OBJECT_COMMANDS__VALUE, "pool_ref", NULL},
    }},
    /* The runtime fields (contract: state, controller node, heartbeat age, config
     * version); any the API does not give shows as "-". */
    {"serviceengine", 7, {
        {"NAME", OBJECT_COMMANDS__VALUE, "name", NULL},
        {"UUID", OBJECT_COMMANDS__VALUE, "uuid", NULL},
        {"SE_STATE", OBJECT_COMMANDS__VALUE, "se_state", NULL},
        {"OPER_STATE", OBJECT_COMMANDS__SUBFIELD, "oper_status", "state"},
        {"CONTROLLER_NODE", OBJECT_COMMANDS__VALUE, "controller_node", NULL},
        {"HEARTBEAT_AGE", OBJECT_COMMANDS__AGE, "last_heartbeat", NULL},
        {"CONFIG_VERSION", OBJECT_COMMANDS__VALUE, "config_version", NULL},
    }},
};

static const struct object_commands__type *object_commands__type(const char *name)
{
    size_t i;
    for (i = 0; i < sizeof object_commands__types / sizeof object_commands__types[0]; i++)
        if (strcmp(object_commands__types[i].name, name) == 0)
            return &object_commands__types[i];
    return NULL;
}

/* "4.2s", "3m05s", "2h07m" or "5d03h" for AGE_MS (negative, from a clock ahead of
 * ours, counts as 0), in BUFFER (SIZE bytes). */
static const char *object_commands__age(int64_t age_ms, char *buffer, size_t size)
{
    int64_t s;
    if (age_ms < 0)
        age_ms = 0;
    s = age_ms / 1000;
    if (s < 60)
        snprintf(buffer, size, "%lld.%llds", (long long)s, (long long)(age_ms % 1000 / 100));
    else if (s < 3600)
        snprintf(buffer, size, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(buffer, size, "%lldh%02lldm", (long long)(s / 3600),
                 (long long)(s % 3600 / 60));
    else
        snprintf(buffer, size, "%lldd%02lldh", (long long)(s / 86400),
                 (long long)(s % 86400 / 3600));
    return buffer;
}

static const char *object_commands__cell(const struct object_commands__column *column,
                                         json_t *object, char *buffer, size_t size)
{
    json_t *value;
    size_t i, used = 0;
    json_t *service;

    if (column->field == NULL) {
        /* healthmonitor UP/DOWN_CHECKS: successful_checks/failed_checks */
        char up[32], down[32];
        snprintf(buffer, size, "%s/%s",
                 table_json_text(json_object_get(object, "successful_checks"), up, sizeof up),
                 table_json_text(json_object_get(object, "failed_checks"), down, sizeof down));
        return buffer;
    }
    value = json_object_get(object, column->field);
    switch (column->kind) {
    case OBJECT_COMMANDS__SUBFIELD:
        return table_json_text(json_object_get(value, column->subfield), buffer, size);
    case OBJECT_COMMANDS__AGE: {
        int64_t ms;
        if (json_is_string(value) && time_parse_rfc3339(json_string_value(value), &ms) == 0)
            return object_commands__age(time_now_ms() - ms, buffer, size);
        return table_json_text(value, buffer, size); /* "-", or what came, as it came */
    }
    case OBJECT_COMMANDS__PORTS:
        buffer[0] = '\0';
        json_array_foreach(value, i, service) {
            char port[32];
            int n = snprintf(buffer + used, size - used, "%s%s", used ? "," : "",
                             table_json_text(json_object_get(service, "port"), port,
                                             sizeof port));
            if (n < 0 || (size_t)n >= size - used)
                break;
            used += (size_t)n;
        }
        return used ? buffer : "-";
    case OBJECT_COMMANDS__VALUE:
    default:
        return table_json_text(value, buffer, size);
    }
}

int object_commands_list(struct command_context *ctx)
{
    const struct object_commands__type *type = object_commands__type(ctx->args->object_type);
    const char *headers[OBJECT_COMMANDS__MAX_COLUMNS];
    char path[64];
    json_t *objects = NULL, *object;
    json_int_t count = 0;
    struct table *table;
    size_t i, c;
    int rv;

    if (type == NULL)
        return command_context_fail(ctx, VIGIL_EINVAL, "%s: unknown type",
                                    ctx->args->object_type);
    snprintf(path, sizeof path, "/api/%s", type->name);
    rv = rest_client_get_all(ctx->client, path, NULL, OBJECT_COMMANDS_PAGE_SIZE, &objects,
                             &count);
    if (rv != 0)
        return command_context_client_failed(ctx, rv);

    if (ctx->args->json) {
        json_t *doc = json_pack("{s:I, s:O}", "count", (json_int_t)json_array_size(objects),
                                "results", objects);
        rv = doc ? command_context_print_json(ctx, doc, 0)
                 : command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
        json_decref(doc);
        json_decref(objects);
        return rv;
    }

    for (c = 0; c < type->ncolumns; c++)
        headers[c] = type->columns[c].header;
    table = table_create(type->ncolumns, headers);
    if (table == NULL) {
        json_decref(objects);
        return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
    }
    json_array_foreach(objects, i, object) {
        char cells_text[OBJECT_COMMANDS__MAX_COLUMNS][OBJECT_COMMANDS__CELL];
        const char *cells[OBJECT_COMMANDS__MAX_COLUMNS];
        for (c = 0; c < type->ncolumns; c++)
            cells[c] = object_commands__cell(&type->columns[c], object, cells_text[c],
                                             sizeof cells_text[c]);
        rv = table_add_row(table, cells);
        if (rv != 0)
            break;
    }
    if (rv == 0)
        rv = table_print(table, ctx->out);
    table_free(table);
    json_decref(objects);
    return rv == 0 ? 0 : command_context_fail(ctx, rv, "%s", vigil_strerror(rv));
}

int object_commands_find(struct command_context *ctx, char *uuid, size_t size)
{
    const char *name = ctx->args->name;
    char path[64], clean[256];
    json_t *objects = NULL, *object, *by_uuid = NULL, *found = NULL;
    json_int_t count;
    char *escaped;
    size_t i;
    int rv;

    snprintf(path, sizeof path, "/api/%s", ctx->args->object_type);
    rv = rest_client_get_all(ctx->client, path, NULL, OBJECT_COMMANDS_PAGE_SIZE, &objects,
                             &count);
    if (rv != 0)
        return command_context_client_failed(ctx, rv);
    json_array_foreach(objects, i, object) {
        const char *object_name = json_string_value(json_object_get(object, "name"));
        const char *object_uuid = json_string_value(json_object_get(object, "uuid"));
        if (object_name != NULL && strcmp(object_name, name) == 0) {
            found = object;
            break;
        }
        if (by_uuid == NULL && object_uuid != NULL && strcmp(object_uuid, name) == 0)
            by_uuid = object;
    }
    if (found == NULL)
        found = by_uuid;
    if (found == NULL) {
        json_decref(objects);
        return command_context_fail(ctx, VIGIL_ENOTFOUND, "no %s named %s",
                                    ctx->args->object_type,
                                    table_sanitize(clean, sizeof clean, name));
    }
    if (!json_is_string(json_object_get(found, "uuid"))) {
        json_decref(objects);
        return command_context_fail(ctx, VIGIL_EIO, "%s %s: the API lists it without a uuid",
                                    ctx->args->object_type,
                                    table_sanitize(clean, sizeof clean, name));
    }
    escaped = rest_client_escape(ctx->client,
                                 json_string_value(json_object_get(found, "uuid")));
    json_decref(objects);
    if (escaped == NULL)
        return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
    if (strlen(escaped) + 1 > size) {
        free(escaped);
        return command_context_fail(ctx, VIGIL_EIO, "%s %s: the uuid is too long",
                                    ctx->args->object_type,
                                    table_sanitize(clean, sizeof clean, name));
    }
    snprintf(uuid, size, "%s", escaped);
    free(escaped);
    return 0;
}

int object_commands_show(struct command_context *ctx)
{
    struct rest_response response = {0};
    char uuid[256], path[400];
    int rv = object_commands_find(ctx, uuid, sizeof uuid);

    if (rv != 0)
        return rv;
    snprintf(path, sizeof path, "/api/%s/%s", ctx->args->object_type, uuid);
    rv = rest_client_call(ctx->client, "GET", path, NULL, 1, &response);
    if (rv != 0)
        return command_context_client_failed(ctx, rv);
    rv = ctx->args->json ? command_context_print_raw(ctx, response.body)
                         : command_context_print_json(ctx, response.json, 1);
    rest_response_clear(&response);
    return rv;
}

/* Reads FILE_NAME ("-": stdin) into a new NUL-terminated buffer (the caller frees it).
 * Returns 0 or a negative code with CTX->error set. */
static int object_commands__read_file(struct command_context *ctx, const char *file_name,
                                      char **text_out)
{
    FILE *file = strcmp(file_name, "-") == 0 ? stdin : fopen(file_name, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;
    char clean[256];

    table_sanitize(clean, sizeof clean, file_name);
    if (file == NULL)
        return command_context_fail(ctx, VIGIL_EINVAL, "--file %s: %s", clean, strerror(errno));
    for (;;) {
        size_t n;
        if (len + 4096 + 1 > cap) {
            char *grown;
            cap = cap ? cap * 2 : 8192;
            grown = realloc(text, cap);
            if (grown == NULL) {
                free(text);
                if (file != stdin)
                    fclose(file);
                return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
            }
            text = grown;
        }
        n = fread(text + len, 1, cap - len - 1, file);
        len += n;
        if (len > OBJECT_COMMANDS_MAX_FILE) {
            free(text);
            if (file != stdin)
                fclose(file);
            return command_context_fail(ctx, VIGIL_ETOOBIG, "--file %s: larger than %d bytes",
                                        clean, OBJECT_COMMANDS_MAX_FILE);
        }
        if (n == 0)
            break;
    }
    if (ferror(file)) {
        int saved = errno;
        free(text);
        if (file != stdin)
            fclose(file);
        return command_context_fail(ctx, VIGIL_EINVAL, "--file %s: %s", clean,
                                    strerror(saved));
    }
    if (file != stdin)
        fclose(file);
    text[len] = '\0';
    *text_out = text;
    return 0;
}

int object_commands_create(struct command_context *ctx)
{
    struct rest_response response = {0};
    json_error_t error;
    json_t *object;
    char *text = NULL;
    char path[64], clean[256], name[256], uuid[128];
    int rv;

    rv = object_commands__read_file(ctx, ctx->args->file, &text);
    if (rv != 0)
        return rv;
    table_sanitize(clean, sizeof clean, ctx->args->file);
    object = json_loads(text, 0, &error);
    if (object == NULL) {
        free(text);
        return command_context_fail(ctx, VIGIL_EINVAL,
                                    "--file %s: invalid JSON at line %d column %d: %s", clean,
                                    error.line, error.column, error.text);
    }
    if (!json_is_object(object)) {
        json_decref(object);
        free(text);
        return command_context_fail(ctx, VIGIL_EINVAL, "--file %s: a JSON object is required",
                                    clean);
    }
    json_decref(object);

    /* The file's JSON goes to the API as written; the API validates it. */
    snprintf(path, sizeof path, "/api/%s", ctx->args->object_type);
    rv = rest_client_call(ctx->client, "POST", path, text, 0, &response);
    free(text);
    if (rv != 0)
        return command_context_client_failed(ctx, rv);
    if (ctx->args->json) {
        rv = command_context_print_raw(ctx, response.body);
    } else {
        fprintf(ctx->out, "created %s %s (uuid %s)\n", ctx->args->object_type,
                table_sanitize(name, sizeof name,
                               json_string_value(json_object_get(response.json, "name"))),
                table_sanitize(uuid, sizeof uuid,
                               json_string_value(json_object_get(response.json, "uuid"))));
        rv = ferror(ctx->out) ? command_context_fail(ctx, VIGIL_EIO, "cannot write the output")
                              : 0;
    }
    rest_response_clear(&response);
    return rv;
}

int object_commands_delete(struct command_context *ctx)
{
    struct rest_response response = {0};
    char uuid[256], path[400], clean[256];
    int rv = object_commands_find(ctx, uuid, sizeof uuid);

    if (rv != 0)
        return rv;
    snprintf(path, sizeof path, "/api/%s/%s", ctx->args->object_type, uuid);
    rv = rest_client_call(ctx->client, "DELETE", path, NULL, 0, &response);
    if (rv != 0)
        return command_context_client_failed(ctx, rv);
    rest_response_clear(&response);
    if (!ctx->args->json)
        fprintf(ctx->out, "deleted %s %s (uuid %s)\n", ctx->args->object_type,
                table_sanitize(clean, sizeof clean, ctx->args->name), uuid);
    return ferror(ctx->out) ? command_context_fail(ctx, VIGIL_EIO, "cannot write the output")
                            : 0;
}
