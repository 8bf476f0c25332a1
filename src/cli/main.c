/* main.c: `vigil`, the command-line client of the REST API (contract "vigil (CLI)").
 * Exit status: 0 success, 1 an API error or an unreachable controller (the reason on
 * stderr), 2 bad usage (with the usage line). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/cli_args.h"
#include "cli/cluster_commands.h"
#include "cli/command_context.h"
#include "cli/analytics_commands.h"
#include "cli/event_commands.h"
#include "cli/login_commands.h"
#include "cli/object_commands.h"
#include "cli/rest_client.h"
#include "cli/token_store.h"
#include "common/errors.h"
#include "common/version.h"
#include "common/vlog.h"

enum { MAIN_EXIT_OK = 0, MAIN_EXIT_FAILED = 1, MAIN_EXIT_USAGE = 2 };

/* The line printed after a 401: how to get credentials the controller accepts. */
static void main__unauthorized_hint(const struct cli_args *args, const char *token_path)
{
    switch (args->token_source) {
    case CLI_TOKEN_FLAG:
        fprintf(stderr, "vigil: hint: the token given with --token was refused (expired or "
                        "revoked?); run `vigil login`, or pass another token\n");
        break;
    case CLI_TOKEN_ENV:
        fprintf(stderr, "vigil: hint: the token in $VIGIL_TOKEN was refused (expired or "
                        "revoked?); run `vigil login`, or set another token\n");
        break;
    case CLI_TOKEN_STORED:
        fprintf(stderr, "vigil: hint: the token kept in %s was refused (expired, revoked, or "
                        "from another cluster?); run `vigil login` again\n", token_path);
        break;
    default:
        fprintf(stderr, "vigil: hint: the controller wants credentials: run `vigil login` "
                        "(or pass --token T, or set $VIGIL_TOKEN)\n");
        break;
    }
}

/* Runs the command of ARGS (may be updated: the stored token, logout's controller). */
static int main__run(struct cli_args *args)
{
    struct rest_client_options options = {
        .controller_url = args->controller,
        .cacert = args->cacert,
        .insecure = args->insecure,
        .timeout_s = args->timeout_s,
    };
    struct command_context ctx = {.args = args, .out = stdout};
    struct token_store_entry stored;
    char token_path[TOKEN_STORE_PATH_MAX], password[LOGIN_COMMANDS_PASSWORD_MAX + 2];
    char prompt[1400];
    int have_path, rv = VIGIL_EINVAL;

    memset(&stored, 0, sizeof stored);
    password[0] = '\0';
    have_path = token_store_path(token_path, sizeof token_path, ctx.error, sizeof ctx.error) == 0;
    if (have_path)
        ctx.token_path = token_path;

    switch (args->command) {
    case CLI_COMMAND_LOGIN:
        if (!have_path)
            goto failed;
        snprintf(prompt, sizeof prompt, "Password for %.200s at %.1000s: ", args->username,
                 args->controller);
        rv = login_commands_read_password(prompt, password, sizeof password, ctx.error,
                                          sizeof ctx.error);
        if (rv != 0)
            goto failed;
        options.basic_user = args->username;
        options.basic_password = password;
        break;
    case CLI_COMMAND_LOGOUT:
        if (!have_path)
            goto failed;
        rv = token_store_read(token_path, &stored, ctx.error, sizeof ctx.error);
        if (rv == VIGIL_ENOTFOUND) {
            printf("Not logged in (no token in %s).\n", token_path);
            return fflush(stdout) == 0 ? MAIN_EXIT_OK : MAIN_EXIT_FAILED;
        }
        if (rv != 0)
            goto failed;
        /* The token lives on the controller that issued it. */
        if (!args->controller_given && (strncmp(stored.controller, "http://", 7) == 0 ||
                                        strncmp(stored.controller, "https://", 8) == 0))
            args->controller = stored.controller;
        options.controller_url = args->controller;
        options.token = stored.token;
        args->token_source = CLI_TOKEN_STORED;
        ctx.stored = &stored;
        break;
    default:
        if (args->token == NULL && have_path) {
            rv = token_store_read(token_path, &stored, ctx.error, sizeof ctx.error);
            if (rv == 0) {
                args->token = stored.token;
                args->token_source = CLI_TOKEN_STORED;
            } else if (rv != VIGIL_ENOTFOUND) {
                goto failed;
            }
        }
        options.token = args->token;
        break;
    }
    ctx.error[0] = '\0';

    ctx.client = rest_client_create(&options);
    memset(password, 0, sizeof password);
    if (ctx.client == NULL) {
        token_store_clear(&stored);
        fprintf(stderr, "vigil: cannot start the HTTP client (out of memory?)\n");
        return MAIN_EXIT_FAILED;
    }
    switch (args->command) {
    case CLI_COMMAND_CLUSTER_STATUS:
        rv = cluster_commands_status(&ctx);
        break;
    case CLI_COMMAND_CLUSTER_KNOWN_HOSTS:
        rv = cluster_commands_known_hosts(&ctx);
        break;
    case CLI_COMMAND_EVENTS:
        rv = event_commands_list(&ctx);
        break;
    case CLI_COMMAND_LOGS:
        rv = analytics_commands_logs(&ctx);
        break;
    case CLI_COMMAND_ANALYTICS:
        rv = analytics_commands_metrics(&ctx);
        break;
    case CLI_COMMAND_OBJECT_LIST:
        rv = object_commands_list(&ctx);
        break;
    case CLI_COMMAND_OBJECT_SHOW:
        rv = object_commands_show(&ctx);
        break;
    case CLI_COMMAND_OBJECT_CREATE:
        rv = object_commands_create(&ctx);
        break;
    case CLI_COMMAND_OBJECT_DELETE:
        rv = object_commands_delete(&ctx);
        break;
    case CLI_COMMAND_LOGIN:
        rv = login_commands_login(&ctx);
        break;
    case CLI_COMMAND_LOGOUT:
        rv = login_commands_logout(&ctx);
        break;
    default:
        rv = command_context_fail(&ctx, VIGIL_EINVAL, "internal error: command %d",
                                  (int)args->command);
        break;
    }
    if (fflush(stdout) != 0 && rv == 0)
        rv = command_context_fail(&ctx, VIGIL_EIO, "cannot write the output");
    if (rv != 0) {
        fprintf(stderr, "vigil: %s\n", ctx.error[0] ? vlog_one_line(ctx.error) : vigil_strerror(rv));
        if (rest_client_last_status(ctx.client) == 401 && args->command != CLI_COMMAND_LOGIN &&
            args->command != CLI_COMMAND_LOGOUT)
            main__unauthorized_hint(args, token_path);
    }
    rest_client_free(ctx.client);
    token_store_clear(&stored);
    return rv != 0 ? MAIN_EXIT_FAILED : MAIN_EXIT_OK;

failed:
    memset(password, 0, sizeof password);
    token_store_clear(&stored);
    fprintf(stderr, "vigil: %s\n", ctx.error[0] ? vlog_one_line(ctx.error) : vigil_strerror(rv));
    return MAIN_EXIT_FAILED;
}

int main(int argc, char **argv)
{
    struct cli_args args;
    char error[512];
    int status;

    if (cli_args_parse(argc, argv, &args, error, sizeof error) != 0) {
        fprintf(stderr, "vigil: %s\n%s\n", error, cli_args_usage());
        return MAIN_EXIT_USAGE;
    }
    if (args.command == CLI_COMMAND_HELP) {
        fputs(cli_args_help(), stdout);
        return fflush(stdout) == 0 ? MAIN_EXIT_OK : MAIN_EXIT_FAILED;
    }
    if (args.command == CLI_COMMAND_VERSION) {
        printf("vigil %s\n", VIGIL_VERSION);
        return fflush(stdout) == 0 ? MAIN_EXIT_OK : MAIN_EXIT_FAILED;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "vigil: cannot initialise libcurl\n");
        return MAIN_EXIT_FAILED;
    }
    status = main__run(&args);
    curl_global_cleanup();
    return status;
}
