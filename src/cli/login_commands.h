/* login_commands.h: `vigil login [--username U]` and `vigil logout` (contract
 * "Authentication and TLS": the CLI keeps an API token in ~/.config/vigil/token). Each
 * runs on the calling thread, blocking on its requests, and prints on CTX->out. */
#ifndef VIGIL_CLI_LOGIN_COMMANDS_H
#define VIGIL_CLI_LOGIN_COMMANDS_H

#include <stddef.h>

#include "cli/command_context.h"

/* The longest password read (the API refuses longer ones). */
#define LOGIN_COMMANDS_PASSWORD_MAX 255

/* Reads a password for the login into PASSWORD (SIZE bytes): from the terminal without
 * echo, after PROMPT on stderr, when stdin is a terminal; else the first line of stdin
 * (its line end removed). Returns 0, or VIGIL_EINVAL (empty, too long, no input) /
 * VIGIL_EIO with the reason in ERROR. */
int login_commands_read_password(const char *prompt, char *password, size_t size,
                                 char *error, size_t error_size);

/* Logs CTX->args->username in with PASSWORD (borrowed) over HTTP Basic, which CTX->client
 * was made with: POST /api/token, then keeps the new token, its id, the user and the
 * controller in CTX->token_path. Prints who is logged in where (with --json the token's
 * id, user, expiry and file, never the token). Returns 0 or a negative VIGIL_E* with
 * CTX->error set (a refused password says so). */
int login_commands_login(struct command_context *ctx);

/* Revokes the token in CTX->stored (DELETE /api/token/<id>, authenticated by that token,
 * which CTX->client was made with) and removes CTX->token_path. A token the controller
 * no longer accepts (401, 404) is only removed. When the controller cannot be reached or
 * refuses otherwise, the file is kept and the failure returned (CTX->error set). */
int login_commands_logout(struct command_context *ctx);

#endif
