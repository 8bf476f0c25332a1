/* main.c: `vigil`, the command-line client of the REST API (contract "vigil (CLI)").
 * Exit status: 0 success, 1 an API error or an unreachable controller (the reason on
 * stderr), 2 bad usage (with the usage line). */
#include <stdio.h>
#include <stdlib.h>

#include <curl/curl.h>

#include "cli/cli_args.h"
#include "cli/cluster_commands.h"
#include "cli/command_context.h"
#include "cli/event_commands.h"
#include "cli/object_commands.h"
#include "cli/rest_client.h"
#include "common/errors.h"

#ifndef VIGIL_VERSION
#define VIGIL_VERSION "unknown"
#endif

enum { MAIN_EXIT_OK = 0, MAIN_EXIT_FAILED = 1, MAIN_EXIT_USAGE = 2 };

static int main__run(const struct cli_args *args)
{
    struct rest_client_options options = {
        .controller_url = args->controller,
        .token = args->token,
        .cacert = args->cacert,
        .insecure = args->insecure,
        .timeout_s = args->timeout_s,
    };
    struct command_context ctx = {.args = args, .out = stdout};
    int rv;

    ctx.client = rest_client_create(&options);
    if (ctx.client == NULL) {
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
    default:
        rv = command_context_fail(&ctx, VIGIL_EINVAL, "internal error: command %d",
                                  (int)args->command);
        break;
    }
    rest_client_free(ctx.client);
    if (fflush(stdout) != 0 && rv == 0)
        rv = command_context_fail(&ctx, VIGIL_EIO, "cannot write the output");
    if (rv != 0) {
        fprintf(stderr, "vigil: %s\n", ctx.error[0] ? ctx.error : vigil_strerror(rv));
        return MAIN_EXIT_FAILED;
    }
    return MAIN_EXIT_OK;
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
