/* cli_args.h: the `vigil` command line, parsed and checked before any request is made
 * (contract "vigil (CLI)"). A usage error is found here or nowhere: the commands only
 * see a complete, valid request. */
#ifndef VIGIL_CLI_ARGS_H
#define VIGIL_CLI_ARGS_H

#include <stddef.h>

/* The controller used without --controller and $VIGIL_CONTROLLER (the contract's default:
 * the API speaks HTTPS unless vigild runs with --no-tls). This is the only place that
 * names it. */
#define CLI_DEFAULT_CONTROLLER "https://127.0.0.1:8080"

/* The user `vigil login` logs in as without --username. */
#define CLI_DEFAULT_USERNAME "admin"

/* Seconds a request may take from connect to last byte, unless --timeout says otherwise. */
#define CLI_DEFAULT_TIMEOUT_S 10

enum cli_command {
    CLI_COMMAND_HELP,
    CLI_COMMAND_VERSION,
    CLI_COMMAND_CLUSTER_STATUS,
    CLI_COMMAND_CLUSTER_KNOWN_HOSTS,
    CLI_COMMAND_EVENTS,
    CLI_COMMAND_LOGS,
    CLI_COMMAND_ANALYTICS,
    CLI_COMMAND_OBJECT_LIST,
    CLI_COMMAND_OBJECT_SHOW,
    CLI_COMMAND_OBJECT_CREATE,
    CLI_COMMAND_OBJECT_DELETE,
    CLI_COMMAND_LOGIN,
    CLI_COMMAND_LOGOUT,
};

/* Where the token sent as `Authorization: Bearer` comes from, in this order. */
enum cli_token_source {
    CLI_TOKEN_NONE = 0,
    CLI_TOKEN_FLAG,   /* --token */
    CLI_TOKEN_ENV,    /* $VIGIL_TOKEN */
    CLI_TOKEN_STORED, /* the file `vigil login` wrote (set by main, not by the parser) */
};

/* Every string is borrowed from argv, the environment or a static constant. */
struct cli_args {
    enum cli_command command;
    const char *controller;   /* base URL, http:// or https:// */
    int controller_given;     /* 1: from --controller or $VIGIL_CONTROLLER, not the default */
    const char *token;        /* --token or $VIGIL_TOKEN; NULL for none */
    enum cli_token_source token_source;
    const char *username;     /* login --username U (CLI_DEFAULT_USERNAME without it) */
    const char *cacert;       /* --cacert FILE; NULL for the system CAs */
    int insecure;             /* --insecure: no TLS certificate or host name check */
    int json;                 /* --json: print the API's JSON */
    long timeout_s;           /* per-request deadline in seconds */
    const char *object_type;  /* "pool", "healthmonitor", "virtualservice", "serviceengine" */
    const char *name;         /* show / delete: the object's name (or uuid) */
    const char *file;         /* create --file F ("-" is stdin) */
    const char *event_type;   /* events --type X; NULL for every type */
    const char *since;        /* events, logs --since TIME; NULL for no lower bound */
    const char *status_class; /* logs --status-class 2xx|3xx|4xx|5xx; NULL for every one */
};

/* Parses argv (borrowed; the strings are kept in ARGS) and the environment
 * ($VIGIL_CONTROLLER, $VIGIL_TOKEN) into ARGS. Options may come before or after the
 * command words, as `--opt VALUE` or `--opt=VALUE`; `--` ends the options.
 * Returns 0, or VIGIL_EINVAL with a one-line message naming the bad part in ERROR
 * (ERROR_SIZE bytes, always NUL-terminated). Runs on any thread; no side effects. */
int cli_args_parse(int argc, char **argv, struct cli_args *args, char *error,
                   size_t error_size);

/* The one-line usage summary (static). */
const char *cli_args_usage(void);

/* The full --help text (static). */
const char *cli_args_help(void);

#endif
