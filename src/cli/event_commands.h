/* event_commands.h: `vigil events [--type X] [--since TIME]`. Runs on the calling thread,
 * blocking on its requests, and prints on CTX->out. */
#ifndef VIGIL_CLI_EVENT_COMMANDS_H
#define VIGIL_CLI_EVENT_COMMANDS_H

#include "cli/command_context.h"

/* Page size used to read /api/event (the API's maximum). */
#define EVENT_COMMANDS_PAGE_SIZE 1000

/* Reads every page of GET /api/event (event_id and since from the command line) and
 * prints a table, oldest first: TIME, EVENT, MODULE, OBJECT, DESCRIPTION. With --json
 * it prints {"count", "results"} with every page's results. Returns 0 or a negative
 * VIGIL_E* with CTX->error set. */
int event_commands_list(struct command_context *ctx);

#endif
