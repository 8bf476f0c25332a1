/* analytics_commands.c: `vigil logs` and `vigil analytics`. */
#include "cli/analytics_commands.h"

#include <stdlib.h>
#include <string.h>

#include "cli/object_commands.h"
#include "cli/table.h"
#include "common/errors.h"

#define ANALYTICS_COMMANDS__CELL 512

/* GET /api/analytics/WHAT/virtualservice/<uuid>?QUERY (escaped, may be ""): the answer's
 * JSON into *DOC (owned by the caller). Returns 0 or a negative VIGIL_E* (CTX->error set). */
static int analytics_commands__get(struct command_context *ctx, const char *what,
                                   const char *query, json_t **doc)
{
    char uuid[256], path[1024 + 256];
    struct rest_response response = {0};
    int rv = object_commands_find(ctx, uuid, sizeof uuid);

    if (rv != 0)
        return rv;
    if (strlen(query) > 512)
        return command_context_fail(ctx, VIGIL_EINVAL, "the query is too long");
    snprintf(path, sizeof path, "/api/analytics/%s/virtualservice/%s%s%s", what, uuid,
             query[0] ? "?" : "", query);
    rv = rest_client_call(ctx->client, "GET", path, NULL, 1, &response);
    if (rv != 0)
        return command_context_client_failed(ctx, rv);
    *doc = json_incref(response.json);
    rest_response_clear(&response);
    return 0;
}

/* "Nodes that did not answer: 2, 3" when the answer names any. */
static void analytics_commands__unreachable(struct command_context *ctx, const json_t *doc)
{
    const json_t *nodes = json_object_get(doc, "unreachable");
    size_t i;
    json_t *id;

    if (json_array_size(nodes) == 0)
        return;
    fprintf(ctx->out, "nodes that did not answer (their records are missing above):");
    json_array_foreach(nodes, i, id)
        fprintf(ctx->out, "%s %lld", i ? "," : "", (long long)json_integer_value(id));
    fprintf(ctx->out, "\n");
}

/* "since=T&status_class=C&page_size=N" from the command line; malloc'ed or NULL. */
static char *analytics_commands__logs_query(struct command_context *ctx)
{
    char *since = NULL, *query;
    size_t size;

    if (ctx->args->since != NULL &&
        (since = rest_client_escape(ctx->client, ctx->args->since)) == NULL)
        return NULL;
    size = (since ? strlen(since) : 0) + 96;
    query = malloc(size);
    if (query != NULL)
        snprintf(query, size, "page_size=%d%s%s%s%s", ANALYTICS_COMMANDS_PAGE_SIZE,
                 since ? "&since=" : "", since ? since : "",
                 ctx->args->status_class ? "&status_class=" : "",
                 ctx->args->status_class ? ctx->args->status_class : "");
    free(since);
    return query;
}

int analytics_commands_logs(struct command_context *ctx)
{
    static const char *const headers[] = {"TIME", "SE", "SEQ", "CLIENT", "METHOD", "URI",
                                          "STATUS", "MS"};
    char *query = analytics_commands__logs_query(ctx);
    json_t *doc = NULL, *record;
    struct table *table;
    size_t i;
    int rv;

    if (query == NULL)
        return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
    rv = analytics_commands__get(ctx, "logs", query, &doc);
    free(query);
    if (rv != 0)
        return rv;
    if (ctx->args->json) {
        rv = command_context_print_json(ctx, doc, 0);
        json_decref(doc);
        return rv;
    }
    table = table_create(8, headers);
    if (table == NULL) {
        json_decref(doc);
        return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
    }
    json_array_foreach(json_object_get(doc, "results"), i, record) {
        char time[64], se[128], seq[32], client[80], method[32], uri[ANALYTICS_COMMANDS__CELL],
            status[16], ms[32];
        const char *cells[8];
        snprintf(client, sizeof client, "%s:%lld",
                 json_string_value(json_object_get(record, "client_ip")) ?: "-",
                 (long long)json_integer_value(json_object_get(record, "client_port")));
        cells[0] = table_json_text(json_object_get(record, "timestamp"), time, sizeof time);
        cells[1] = table_json_text(json_object_get(record, "se_name"), se, sizeof se);
        cells[2] = table_json_text(json_object_get(record, "seq"), seq, sizeof seq);
        cells[3] = table_sanitize(client, sizeof client, client);
        cells[4] = table_json_text(json_object_get(record, "method"), method, sizeof method);
        cells[5] = table_json_text(json_object_get(record, "uri"), uri, sizeof uri);
        cells[6] = table_json_text(json_object_get(record, "status"), status, sizeof status);
        cells[7] = table_json_text(json_object_get(record, "total_ms"), ms, sizeof ms);
        rv = table_add_row(table, cells);
        if (rv != 0)
            break;
    }
    if (rv == 0)
        rv = table_print(table, ctx->out);
    if (rv == 0 && table_row_count(table) == 0)
        fprintf(ctx->out, "(no log records)\n");
    if (rv == 0)
        analytics_commands__unreachable(ctx, doc);
    table_free(table);
    json_decref(doc);
    return rv == 0 ? 0 : command_context_fail(ctx, rv, "%s", vigil_strerror(rv));
}

/* One "LABEL: value" line for the member KEY of OBJ (and of SUB inside it, when given). */
static void analytics_commands__line(struct command_context *ctx, const char *label,
                                     const json_t *obj, const char *key, const char *sub)
{
    char text[128];
    const json_t *v = json_object_get(obj, key);
    if (sub != NULL)
        v = json_object_get(v, sub);
    fprintf(ctx->out, "%-16s %s\n", label, table_json_text(v, text, sizeof text));
}

int analytics_commands_metrics(struct command_context *ctx)
{
    json_t *doc = NULL;
    int rv = analytics_commands__get(ctx, "metrics", "", &doc);

    if (rv != 0)
        return rv;
    if (ctx->args->json) {
        rv = command_context_print_json(ctx, doc, 0);
        json_decref(doc);
        return rv;
    }
    analytics_commands__line(ctx, "since:", doc, "since", NULL);
    analytics_commands__line(ctx, "until:", doc, "until", NULL);
    analytics_commands__line(ctx, "requests:", doc, "requests", NULL);
    analytics_commands__line(ctx, "errors 4xx:", doc, "errors", "4xx");
    analytics_commands__line(ctx, "errors 5xx:", doc, "errors", "5xx");
    analytics_commands__line(ctx, "bytes in:", doc, "bytes_in", NULL);
    analytics_commands__line(ctx, "bytes out:", doc, "bytes_out", NULL);
    analytics_commands__line(ctx, "latency p50 ms:", doc, "latency_ms", "p50");
    analytics_commands__line(ctx, "latency p90 ms:", doc, "latency_ms", "p90");
    analytics_commands__line(ctx, "latency p99 ms:", doc, "latency_ms", "p99");
    analytics_commands__unreachable(ctx, doc);
    json_decref(doc);
    return 0;
}
