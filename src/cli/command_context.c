/* command_context.c: shared output and failure helpers of the CLI's commands. */
#include "cli/command_context.h"

#include <stdarg.h>
#include <string.h>

#include "common/errors.h"

int command_context_fail(struct command_context *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
    return code;
}

int command_context_client_failed(struct command_context *ctx, int code)
{
    const char *message = rest_client_error(ctx->client);
    snprintf(ctx->error, sizeof ctx->error, "%s", message[0] ? message : vigil_strerror(code));
    return code;
}

int command_context_print_json(struct command_context *ctx, const json_t *json, int pretty)
{
    size_t flags = JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
    if (json_dumpf(json, ctx->out, flags) != 0 || fputc('\n', ctx->out) == EOF)
        return command_context_fail(ctx, VIGIL_EIO, "cannot write the output");
    return 0;
}

int command_context_print_raw(struct command_context *ctx, const char *text)
{
    size_t len = strlen(text);
    if (fputs(text, ctx->out) == EOF && len > 0)
        return command_context_fail(ctx, VIGIL_EIO, "cannot write the output");
    if ((len == 0 || text[len - 1] != '\n') && fputc('\n', ctx->out) == EOF)
        return command_context_fail(ctx, VIGIL_EIO, "cannot write the output");
    return 0;
}
