/* event_commands.c: `vigil events`. */
#include "cli/event_commands.h"

#include <stdlib.h>
#include <string.h>

#include "cli/table.h"
#include "common/errors.h"

#define EVENT_COMMANDS__CELL 512

/* "event_id=X&since=T" (each escaped), or "" without filters; malloc'ed, NULL when out of
 * memory. */
static char *event_commands__query(struct command_context *ctx)
{
    char *type = NULL, *since = NULL, *query;
    size_t size;

    if (ctx->args->event_type != NULL &&
        (type = rest_client_escape(ctx->client, ctx->args->event_type)) == NULL)
        return NULL;
    if (ctx->args->since != NULL &&
        (since = rest_client_escape(ctx->client, ctx->args->since)) == NULL) {
        free(type);
        return NULL;
    }
    size = (type ? strlen(type) : 0) + (since ? strlen(since) : 0) + 32;
    query = malloc(size);
    if (query != NULL)
        snprintf(query, size, "%s%s%s%s%s", type ? "event_id=" : "", type ? type : "",
                 type && since ? "&" : "", since ? "since=" : "", since ? since : "");
    free(type);
    free(since);
    return query;
}

/* The OBJECT cell: "obj_type obj_name", or whichever of them is there. */
static const char *event_commands__object(json_t *event, char *buffer, size_t size)
{
    const char *type = json_string_value(json_object_get(event, "obj_type"));
    const char *name = json_string_value(json_object_get(event, "obj_name"));
    if (type != NULL && name != NULL)
        snprintf(buffer, size, "%s %s", type, name);
    else
        snprintf(buffer, size, "%s", name ? name : type ? type : "-");
    return buffer;
}

int event_commands_list(struct command_context *ctx)
{
    static const char *const headers[] = {"TIME", "EVENT", "MODULE", "OBJECT", "DESCRIPTION"};
    json_t *events = NULL, *event;
    json_int_t count = 0;
    struct table *table;
    char *query = event_commands__query(ctx);
    size_t i;
    int rv;

    if (query == NULL)
        return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
    rv = rest_client_get_all(ctx->client, "/api/event", query, EVENT_COMMANDS_PAGE_SIZE,
                             &events, &count);
    free(query);
    if (rv != 0)
        return command_context_client_failed(ctx, rv);

    if (ctx->args->json) {
        json_t *doc = json_pack("{s:I, s:O}", "count", (json_int_t)json_array_size(events),
                                "results", events);
        rv = doc ? command_context_print_json(ctx, doc, 0)
                 : command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
        json_decref(doc);
        json_decref(events);
        return rv;
    }

    table = table_create(5, headers);
    if (table == NULL) {
        json_decref(events);
        return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
    }
    json_array_foreach(events, i, event) {
        char time[64], id[128], module[64], object[EVENT_COMMANDS__CELL],
            description[EVENT_COMMANDS__CELL * 2];
        const char *cells[5];
        cells[0] = table_json_text(json_object_get(event, "report_timestamp"), time,
                                   sizeof time);
        cells[1] = table_json_text(json_object_get(event, "event_id"), id, sizeof id);
        cells[2] = table_json_text(json_object_get(event, "module"), module, sizeof module);
        cells[3] = event_commands__object(event, object, sizeof object);
        cells[4] = table_json_text(json_object_get(event, "event_description"), description,
                                   sizeof description);
        rv = table_add_row(table, cells);
        if (rv != 0)
            break;
    }
    if (rv == 0)
        rv = table_print(table, ctx->out);
    if (rv == 0 && table_row_count(table) == 0)
        fprintf(ctx->out, "(no events%s%s)\n", ctx->args->event_type ? " of type " : "",
                ctx->args->event_type ? ctx->args->event_type : "");
    table_free(table);
    json_decref(events);
    return rv == 0 ? 0 : command_context_fail(ctx, rv, "%s", vigil_strerror(rv));
}
