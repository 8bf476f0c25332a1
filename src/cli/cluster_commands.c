/* cluster_commands.c: `vigil cluster status` and `vigil cluster known-hosts`. */
#include "cli/cluster_commands.h"

#include <stdlib.h>
#include <string.h>

#include "cli/table.h"
#include "common/errors.h"

/* Status moves shown by `cluster status` (the newest ones); --json has them all. */
#define CLUSTER_COMMANDS__HISTORY_ROWS 10

#define CLUSTER_COMMANDS__CELL 512

/* The node with "id" ID in the array NODES (borrowed), or NULL. */
static json_t *cluster_commands__find_node(json_t *nodes, json_int_t id)
{
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node) {
        json_t *node_id = json_object_get(node, "id");
        if (json_is_integer(node_id) && json_integer_value(node_id) == id)
            return node;
    }
    return NULL;
}

/* "NAME (id N)" for node ID, the name taken from either list; "-" for a null id. */
static const char *cluster_commands__node_label(json_t *id, json_t *members, json_t *states,
                                                char *buffer, size_t size)
{
    json_t *node, *name = NULL;
    if (!json_is_integer(id))
        return table_json_text(id, buffer, size);
    node = cluster_commands__find_node(members, json_integer_value(id));
    if (node != NULL)
        name = json_object_get(node, "name");
    if (!json_is_string(name)) {
        node = cluster_commands__find_node(states, json_integer_value(id));
        name = node != NULL ? json_object_get(node, "name") : NULL;
    }
    if (json_is_string(name)) {
        char clean[256];
        snprintf(buffer, size, "%s (id %lld)",
                 table_sanitize(clean, sizeof clean, json_string_value(name)),
                 (long long)json_integer_value(id));
    } else {
        snprintf(buffer, size, "id %lld", (long long)json_integer_value(id));
    }
    return buffer;
}

static void cluster_commands__field(struct command_context *ctx, const char *label,
                                    const char *value)
{
    char clean[CLUSTER_COMMANDS__CELL];
    fprintf(ctx->out, "%-10s%s\n", label, table_sanitize(clean, sizeof clean, value));
}

/* One row of the nodes table for MEMBER (from /api/cluster, may be NULL) and STATE (from
 * the runtime's node_states, may be NULL). */
static int cluster_commands__node_row(struct table *table, json_t *member, json_t *state)
{
    char id[32], name[CLUSTER_COMMANDS__CELL], role[64], node_state[64], applied[32],
        api[CLUSTER_COMMANDS__CELL];
    json_t *either = member != NULL ? member : state;
    json_t *name_value = member != NULL ? json_object_get(member, "name") : NULL;
    const char *cells[6];

    if (!json_is_string(name_value) && state != NULL)
        name_value = json_object_get(state, "name");
    cells[0] = table_json_text(json_object_get(either, "id"), id, sizeof id);
    cells[1] = table_json_text(name_value, name, sizeof name);
    cells[2] = table_json_text(state ? json_object_get(state, "role") : NULL, role, sizeof role);
    cells[3] = state ? table_json_text(json_object_get(state, "state"), node_state,
                                       sizeof node_state)
                     : "(not in this node's view)";
    cells[4] = table_json_text(state ? json_object_get(state, "applied_index") : NULL, applied,
                               sizeof applied);
    cells[5] = table_json_text(member ? json_object_get(member, "api_address") : NULL, api,
                               sizeof api);
    return table_add_row(table, cells);
}

static int cluster_commands__print_nodes(struct command_context *ctx, json_t *members,
                                         json_t *states)
{
    static const char *const headers[] = {"ID", "NAME", "ROLE", "STATE", "APPLIED", "API"};
    struct table *table = table_create(6, headers);
    size_t i;
    json_t *node;
    int rv = 0;

    if (table == NULL)
        return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
    /* Membership order first, then any node only the runtime knows. */
    json_array_foreach(members, i, node) {
        json_t *id = json_object_get(node, "id");
        json_t *state = json_is_integer(id)
                            ? cluster_commands__find_node(states, json_integer_value(id))
                            : NULL;
        if (rv == 0)
            rv = cluster_commands__node_row(table, node, state);
    }
    json_array_foreach(states, i, node) {
        json_t *id = json_object_get(node, "id");
        if (json_is_integer(id) &&
            cluster_commands__find_node(members, json_integer_value(id)) != NULL)
            continue;
        if (rv == 0)
            rv = cluster_commands__node_row(table, NULL, node);
    }
    if (rv == 0)
        rv = table_print(table, ctx->out);
    table_free(table);
    return rv == 0 ? 0 : command_context_fail(ctx, rv, "%s", vigil_strerror(rv));
}

static int cluster_commands__print_history(struct command_context *ctx, json_t *history)
{
    static const char *const headers[] = {"TIME", "STATUS", "REASON"};
    size_t total = json_is_array(history) ? json_array_size(history) : 0;
    size_t first = total > CLUSTER_COMMANDS__HISTORY_ROWS
                       ? total - CLUSTER_COMMANDS__HISTORY_ROWS : 0;
    struct table *table;
    size_t i;
    int rv = 0;

    if (total == first) {
        fprintf(ctx->out, "\nStatus history: (empty)\n");
        return 0;
    }
    fprintf(ctx->out, "\nStatus history (%s%zu of %zu, oldest first):\n",
            first > 0 ? "last " : "", total - first, total);
    table = table_create(3, headers);
    if (table == NULL)
        return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
    for (i = first; i < total && rv == 0; i++) {
        json_t *move = json_array_get(history, i);
        char time[64], status[64], reason[CLUSTER_COMMANDS__CELL];
        const char *cells[3];
        cells[0] = table_json_text(json_object_get(move, "time"), time, sizeof time);
        cells[1] = table_json_text(json_object_get(move, "status"), status, sizeof status);
        cells[2] = table_json_text(json_object_get(move, "reason"), reason, sizeof reason);
        rv = table_add_row(table, cells);
    }
    if (rv == 0)
        rv = table_print(table, ctx->out);
    table_free(table);
    return rv == 0 ? 0 : command_context_fail(ctx, rv, "%s", vigil_strerror(rv));
}

int cluster_commands_status(struct command_context *ctx)
{
    struct rest_response runtime = {0}, cluster = {0};
    json_t *members, *states, *cluster_state;
    char text[CLUSTER_COMMANDS__CELL], a[64], b[CLUSTER_COMMANDS__CELL];
    int rv;

    rv = rest_client_call(ctx->client, "GET", "/api/cluster/runtime", NULL, 1, &runtime);
    if (rv != 0)
        return command_context_client_failed(ctx, rv);
    if (ctx->args->json) {
        rv = command_context_print_raw(ctx, runtime.body);
        rest_response_clear(&runtime);
        return rv;
    }
    if (!json_is_object(runtime.json)) {
        rest_response_clear(&runtime);
        return command_context_fail(ctx, VIGIL_EIO,
                                    "GET /api/cluster/runtime: the answer is not an object");
    }

    /* Names and addresses; the status is still worth showing without them. */
    rv = rest_client_call(ctx->client, "GET", "/api/cluster", NULL, 1, &cluster);
    if (rv != 0)
        fprintf(stderr, "vigil: warning: %s (showing the runtime view only)\n",
                rest_client_error(ctx->client));
    members = json_object_get(cluster.json, "nodes");
    if (!json_is_array(members))
        members = NULL;
    states = json_object_get(runtime.json, "node_states");
    if (!json_is_array(states))
        states = NULL;
    cluster_state = json_object_get(runtime.json, "cluster_state");

    if (json_is_object(cluster.json)) {
        snprintf(text, sizeof text, "%s (uuid %s)",
                 table_json_text(json_object_get(cluster.json, "name"), a, sizeof a),
                 table_json_text(json_object_get(cluster.json, "uuid"), b, sizeof b));
        cluster_commands__field(ctx, "Cluster:", text);
    }
    cluster_commands__field(ctx, "Status:", table_json_text(json_object_get(cluster_state,
                                                            "status"), text, sizeof text));
    cluster_commands__field(ctx, "State:", table_json_text(json_object_get(cluster_state,
                                                           "state"), text, sizeof text));
    cluster_commands__field(ctx, "Since:", table_json_text(json_object_get(cluster_state,
                                                           "since"), text, sizeof text));
    cluster_commands__field(ctx, "Reason:", table_json_text(json_object_get(cluster_state,
                                                            "reason"), text, sizeof text));
    cluster_commands__field(ctx, "Leader:",
                            cluster_commands__node_label(json_object_get(runtime.json,
                                                                         "leader_id"),
                                                         members, states, text, sizeof text));
    cluster_commands__field(ctx, "Term:", table_json_text(json_object_get(runtime.json, "term"),
                                                          text, sizeof text));
    cluster_commands__field(ctx, "Answered:",
                            cluster_commands__node_label(json_object_get(runtime.json,
                                                                         "node_id"),
                                                         members, states, text, sizeof text));
    fputc('\n', ctx->out);

    rv = cluster_commands__print_nodes(ctx, members, states);
    if (rv == 0)
        rv = cluster_commands__print_history(ctx, json_object_get(runtime.json,
                                                                  "status_history"));
    rest_response_clear(&runtime);
    rest_response_clear(&cluster);
    if (rv == 0 && ferror(ctx->out))
        rv = command_context_fail(ctx, VIGIL_EIO, "cannot write the output");
    return rv;
}

/* Characters allowed in a known_hosts host name or address (no spaces, commas, wildcards,
 * negation or comment marks). */
static int cluster_commands__host_ok(const char *host, size_t len)
{
    size_t i;
    if (len == 0)
        return 0;
    for (i = 0; i < len; i++) {
        char c = host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '_' || c == '%'))
            return 0;
    }
    return 1;
}

/* Splits "host:port" or "[v6]:port" into the known_hosts host pattern: "[host]:port", or
 * the bare host for port 22 (OpenSSH's own form). Returns 0 or VIGIL_EINVAL. */
static int cluster_commands__host_pattern(const char *address, char *out, size_t size)
{
    const char *host = address, *host_end, *port;
    char *end;
    long port_number;

    if (address[0] == '[') {
        host = address + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end[1] != ':')
            return VIGIL_EINVAL;
        port = host_end + 2;
    } else {
        host_end = strrchr(address, ':');
        if (host_end == NULL)
            return VIGIL_EINVAL;
        port = host_end + 1;
    }
    if (!cluster_commands__host_ok(host, (size_t)(host_end - host)))
        return VIGIL_EINVAL;
    port_number = strtol(port, &end, 10);
    if (*port == '\0' || *end != '\0' || port_number < 1 || port_number > 65535)
        return VIGIL_EINVAL;
    if (port_number == 22)
        snprintf(out, size, "%.*s", (int)(host_end - host), host);
    else
        snprintf(out, size, "[%.*s]:%ld", (int)(host_end - host), host, port_number);
    return 0;
}

/* Checks KEY ("TYPE BASE64 [comment]") and writes "TYPE BASE64" to OUT. Returns 0 or
 * VIGIL_EINVAL. */
static int cluster_commands__host_key(const char *key, char *out, size_t size)
{
    const char *p = key, *type_end, *blob, *blob_end;

    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '@' ||
           *p == '.')
        p++;
    type_end = p;
    if (type_end == key || *p != ' ')
        return VIGIL_EINVAL;
    blob = ++p;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
           *p == '+' || *p == '/' || *p == '=')
        p++;
    blob_end = p;
    if (blob_end - blob < 16 || (*p != '\0' && *p != ' '))
        return VIGIL_EINVAL;
    if ((size_t)(blob_end - key) + 1 > size)
        return VIGIL_EINVAL;
    snprintf(out, size, "%.*s", (int)(blob_end - key), key);
    return 0;
}

int cluster_commands_known_hosts(struct command_context *ctx)
{
    struct rest_response cluster = {0};
    json_t *nodes, *node;
    char a[256], b[256];
    size_t i, listed = 0, skipped = 0;
    int rv;

    rv = rest_client_call(ctx->client, "GET", "/api/cluster", NULL, 1, &cluster);
    if (rv != 0)
        return command_context_client_failed(ctx, rv);
    if (ctx->args->json) {
        rv = command_context_print_raw(ctx, cluster.body);
        rest_response_clear(&cluster);
        return rv;
    }
    nodes = json_object_get(cluster.json, "nodes");
    if (!json_is_array(nodes)) {
        rest_response_clear(&cluster);
        return command_context_fail(ctx, VIGIL_EIO, "GET /api/cluster: the answer has no "
                                    "\"nodes\" list");
    }

    fprintf(ctx->out, "# known_hosts for the SEs of Vigil cluster %s (uuid %s)\n",
            table_sanitize(a, sizeof a, json_string_value(json_object_get(cluster.json,
                                                                          "name"))),
            table_sanitize(b, sizeof b, json_string_value(json_object_get(cluster.json,
                                                                          "uuid"))));
    json_array_foreach(nodes, i, node) {
        const char *address = json_string_value(json_object_get(node, "se_address"));
        const char *key = json_string_value(json_object_get(node, "se_host_key"));
        char pattern[300], key_text[4096], label[300];

        cluster_commands__node_label(json_object_get(node, "id"), nodes, NULL, label,
                                     sizeof label);
        if (address == NULL || key == NULL) {
            fprintf(stderr, "vigil: warning: node %s has no %s yet; left out\n", label,
                    address == NULL ? "se_address" : "se_host_key");
            skipped++;
            continue;
        }
        if (cluster_commands__host_pattern(address, pattern, sizeof pattern) != 0) {
            fprintf(stderr, "vigil: warning: node %s: se_address %s is not HOST:PORT; "
                    "left out\n", label, table_sanitize(a, sizeof a, address));
            skipped++;
            continue;
        }
        if (cluster_commands__host_key(key, key_text, sizeof key_text) != 0) {
            fprintf(stderr, "vigil: warning: node %s: se_host_key is not \"TYPE BASE64\"; "
                    "left out\n", label);
            skipped++;
            continue;
        }
        fprintf(ctx->out, "%s %s\n", pattern, key_text);
        listed++;
    }
    rest_response_clear(&cluster);
    if (ferror(ctx->out))
        return command_context_fail(ctx, VIGIL_EIO, "cannot write the output");
    if (listed == 0)
        return command_context_fail(ctx, VIGIL_ENOTFOUND,
                                    "no node has a usable se_address and se_host_key "
                                    "(%zu left out)", skipped);
    return 0;
}
