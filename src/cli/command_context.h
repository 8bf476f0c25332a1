/* command_context.h: what every `vigil` command gets (the client, the parsed command
 * line, where to print) and the helpers they share for printing JSON and failing with a
 * message. Single-threaded. */
#ifndef VIGIL_CLI_COMMAND_CONTEXT_H
#define VIGIL_CLI_COMMAND_CONTEXT_H

#include <stdio.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/rest_client.h"
#include "cli/token_store.h"

/* Owned by main(), on its stack, for one run. */
struct command_context {
    struct rest_client *client;  /* borrowed */
    const struct cli_args *args; /* borrowed */
    FILE *out;                   /* the command's output (stdout) */
    const char *token_path;      /* login / logout: the token file (borrowed), or NULL */
    struct token_store_entry *stored; /* logout: what the token file holds (borrowed) */
    char error[1200];            /* the failure's message, without the "vigil: " prefix */
};

/* Sets CTX's message from FMT and returns CODE (a negative VIGIL_E*), for
 * `return command_context_fail(ctx, VIGIL_EIO, "...")`. */
int command_context_fail(struct command_context *ctx, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies the client's last message into CTX and returns CODE (negative). */
int command_context_client_failed(struct command_context *ctx, int code);

/* Prints JSON (borrowed) on CTX's output followed by a newline: indented by 2 when
 * PRETTY, else compact; keys in the order received. Returns 0 or VIGIL_EIO. */
int command_context_print_json(struct command_context *ctx, const json_t *json, int pretty);

/* Prints TEXT (borrowed, a body received from the API) as is, with a final newline added
 * when it has none. Returns 0 or VIGIL_EIO. */
int command_context_print_raw(struct command_context *ctx, const char *text);

#endif
