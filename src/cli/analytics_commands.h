/* analytics_commands.h: `vigil logs VS_NAME [--since TIME] [--status-class C]` and
 * `vigil analytics VS_NAME`, over GET /api/analytics/... Run on the calling thread, blocking
 * on their requests, and print on CTX->out. */
#ifndef VIGIL_CLI_ANALYTICS_COMMANDS_H
#define VIGIL_CLI_ANALYTICS_COMMANDS_H

#include "cli/command_context.h"

/* Records asked for by `vigil logs` (the API's largest page). */
#define ANALYTICS_COMMANDS_PAGE_SIZE 1000

/* The access-log records of the virtual service named CTX->args->name, newest first, at
 * most ANALYTICS_COMMANDS_PAGE_SIZE: a table TIME, SE, SEQ, CLIENT, METHOD, URI, STATUS,
 * MS (or the API's JSON with --json), then a line naming the nodes that did not answer.
 * Returns 0 or a negative VIGIL_E* with CTX->error set. */
int analytics_commands_logs(struct command_context *ctx);

/* The metrics of that virtual service (requests, errors by class, bytes, latency
 * percentiles), one "name: value" line each (or the API's JSON). Same outcomes. */
int analytics_commands_metrics(struct command_context *ctx);

#endif
