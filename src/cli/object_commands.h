/* object_commands.h: `vigil TYPE list|show NAME|create --file F|delete NAME` for the
 * config object types (pool, healthmonitor, virtualservice, serviceengine). Each runs on
 * the calling thread, blocking on its requests, and prints on CTX->out. The type is
 * CTX->args->object_type, already checked by cli_args_parse. */
#ifndef VIGIL_CLI_OBJECT_COMMANDS_H
#define VIGIL_CLI_OBJECT_COMMANDS_H

#include "cli/command_context.h"

/* Page size used to read the collections (the API's maximum). */
#define OBJECT_COMMANDS_PAGE_SIZE 1000

/* Largest --file accepted by create. */
#define OBJECT_COMMANDS_MAX_FILE (16 * 1024 * 1024)

/* Every object of the type (all pages): a table of NAME, UUID and a few fields of the
 * type; with --json {"count", "results"} with every page's results. Returns 0 or a
 * negative VIGIL_E* with CTX->error set. */
int object_commands_list(struct command_context *ctx);

/* The uuid of the object of CTX->args->object_type named CTX->args->name, or failing that
 * with that uuid, found by paging through the collection. Writes it (escaped for a path)
 * into UUID (SIZE bytes). Returns 0, VIGIL_ENOTFOUND, or another negative VIGIL_E*, with
 * CTX->error set. */
int object_commands_find(struct command_context *ctx, char *uuid, size_t size);

/* The object named CTX->args->name (or, when no name matches, with that uuid), from
 * GET /api/TYPE/UUID: indented JSON, or with --json the answer as received. Returns 0,
 * VIGIL_ENOTFOUND when there is no such object, or another negative VIGIL_E*, with
 * CTX->error set. */
int object_commands_show(struct command_context *ctx);

/* POSTs the JSON object in CTX->args->file ("-": stdin) to /api/TYPE and prints
 * "created TYPE NAME (uuid U)", or with --json the stored object as received. Returns 0,
 * VIGIL_EINVAL for an unreadable file or one that is not a JSON object, VIGIL_EIO with
 * the API's error text when the API refused it, or another negative VIGIL_E*; CTX->error
 * says which. */
int object_commands_create(struct command_context *ctx);

/* Finds CTX->args->name like show and DELETEs it; prints "deleted TYPE NAME (uuid U)"
 * (nothing with --json). Returns 0, VIGIL_ENOTFOUND, or another negative VIGIL_E* with
 * CTX->error set (a 409 "still referenced" carries the API's text). */
int object_commands_delete(struct command_context *ctx);

#endif
