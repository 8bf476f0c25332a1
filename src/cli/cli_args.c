/* cli_args.c: parsing and checking the `vigil` command line. */
#include "cli/cli_args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

#define CLI_ARGS__MAX_WORDS 4
#define CLI_ARGS__MAX_TIMEOUT_S 3600

static const char *const cli_args__object_types[] = {
    "pool", "healthmonitor", "virtualservice", "serviceengine",
};

static const char cli_args__usage[] =
    "usage: vigil [--controller URL] [--json] [--token T] [--cacert FILE] [--insecure]\n"
    "             [--timeout S] COMMAND ...   (vigil --help lists the commands)";

static const char cli_args__help[] =
    "vigil: the command-line client of a Vigil cluster (speaks its REST API).\n"
    "\n"
    "usage:\n"
    "  vigil [OPTIONS] cluster status        nodes, roles, states, leader, status and its history\n"
    "  vigil [OPTIONS] cluster known-hosts   an OpenSSH known_hosts file for Service Engines\n"
    "  vigil [OPTIONS] events [--type EVENT_ID] [--since TIME]\n"
    "  vigil [OPTIONS] logs VS_NAME [--since TIME] [--status-class 5xx]   (newest first)\n"
    "  vigil [OPTIONS] analytics VS_NAME\n"
    "  vigil [OPTIONS] TYPE list\n"
    "  vigil [OPTIONS] TYPE show NAME        (NAME may also be the object's uuid)\n"
    "  vigil [OPTIONS] TYPE create --file F  (F holds the object's JSON; - reads stdin)\n"
    "  vigil [OPTIONS] TYPE delete NAME\n"
    "  TYPE is pool, healthmonitor, virtualservice or serviceengine.\n"
    "  vigil [OPTIONS] serviceengine list    also each SE's state, controller node,\n"
    "                        heartbeat age and config version (\"-\": not reported)\n"
    "  vigil [OPTIONS] login [--username U]  asks for U's password (default user: "
    CLI_DEFAULT_USERNAME ";\n"
    "                        read from stdin when it is not a terminal), gets an API token\n"
    "                        and keeps it in $XDG_CONFIG_HOME/vigil/token or\n"
    "                        ~/.config/vigil/token (mode 0600) for the next commands\n"
    "  vigil [OPTIONS] logout                revokes the kept token and deletes the file\n"
    "\n"
    "authentication: --token T, else $VIGIL_TOKEN, else the token `vigil login` kept.\n"
    "\n"
    "options (before or after the command):\n"
    "  --controller URL  the controller's REST API (default: $VIGIL_CONTROLLER, then\n"
    "                    " CLI_DEFAULT_CONTROLLER ")\n"
    "  --json            print the API's JSON instead of tables (cluster status: the\n"
    "                    node's /api/cluster/runtime; list and events: every page\n"
    "                    merged into one {\"count\", \"results\"})\n"
    "  --token T         send `Authorization: Bearer T` (default: $VIGIL_TOKEN, then\n"
    "                    the token kept by `vigil login`)\n"
    "  --cacert FILE     trust the CA certificate(s) in FILE for https controllers\n"
    "  --insecure        do not check the controller's TLS certificate\n"
    "  --timeout S       seconds each request may take (default 10)\n"
    "  --help, --version\n"
    "\n"
    "exit status: 0 success, 1 API error or unreachable controller, 2 bad usage.\n";

const char *cli_args_usage(void)
{
    return cli_args__usage;
}

const char *cli_args_help(void)
{
    return cli_args__help;
}

static int cli_args__fail(char *error, size_t error_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cli_args__fail(char *error, size_t error_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error, error_size, fmt, ap);
    va_end(ap);
    return VIGIL_EINVAL;
}

static int cli_args__is_object_type(const char *word)
{
    size_t i;
    for (i = 0; i < sizeof cli_args__object_types / sizeof cli_args__object_types[0]; i++)
        if (strcmp(word, cli_args__object_types[i]) == 0)
            return 1;
    return 0;
}

/* The options that take no value. */
static int cli_args__is_flag(const char *name)
{
    static const char *const flags[] = {"--help", "-h", "--version", "--json", "--insecure",
                                        "-k"};
    size_t i;
    for (i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (strcmp(name, flags[i]) == 0)
            return 1;
    return 0;
}

/* The options that take a value, and where each one's value goes. */
static const char **cli_args__value_slot(struct cli_args *args, const char *name,
                                         const char **timeout_text)
{
    if (strcmp(name, "--controller") == 0)
        return &args->controller;
    if (strcmp(name, "--token") == 0)
        return &args->token;
    if (strcmp(name, "--cacert") == 0)
        return &args->cacert;
    if (strcmp(name, "--file") == 0)
        return &args->file;
    if (strcmp(name, "--type") == 0)
        return &args->event_type;
    if (strcmp(name, "--since") == 0)
        return &args->since;
    if (strcmp(name, "--status-class") == 0)
        return &args->status_class;
    if (strcmp(name, "--username") == 0)
        return &args->username;
    if (strcmp(name, "--timeout") == 0)
        return timeout_text;
    return NULL;
}

static int cli_args__check_controller(const char *url, char *error, size_t error_size)
{
    const char *host;
    const char *p;

    if (strncmp(url, "http://", 7) == 0)
        host = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        host = url + 8;
    else
        return cli_args__fail(error, error_size,
                              "--controller %s: must start with http:// or https://", url);
    if (*host == '\0' || *host == '/')
        return cli_args__fail(error, error_size, "--controller %s: no host", url);
    for (p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '?' || *p == '#')
            return cli_args__fail(error, error_size,
                                  "--controller: the URL must not hold spaces, control "
                                  "characters, a query or a fragment");
    return 0;
}

static int cli_args__parse_timeout(const char *text, long *out, char *error, size_t error_size)
{
    char *end;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno != 0 || value < 1 ||
        value > CLI_ARGS__MAX_TIMEOUT_S)
        return cli_args__fail(error, error_size,
                              "--timeout %s: must be a whole number of seconds from 1 to %d",
                              text, CLI_ARGS__MAX_TIMEOUT_S);
    *out = value;
    return 0;
}

/* Matches the command words to a command; checks which options it may take. */
static int cli_args__resolve(struct cli_args *args, const char *const *words, int nwords,
                             char *error, size_t error_size)
{
    const char *first = nwords > 0 ? words[0] : NULL;
    int takes_file = 0, takes_events = 0, takes_username = 0, takes_since = 0, takes_class = 0;

    if (first == NULL)
        return cli_args__fail(error, error_size, "no command given");

    if (strcmp(first, "cluster") == 0) {
        if (nwords < 2)
            return cli_args__fail(error, error_size,
                                  "cluster: say `cluster status` or `cluster known-hosts`");
        if (strcmp(words[1], "status") == 0)
            args->command = CLI_COMMAND_CLUSTER_STATUS;
        else if (strcmp(words[1], "known-hosts") == 0)
            args->command = CLI_COMMAND_CLUSTER_KNOWN_HOSTS;
        else
            return cli_args__fail(error, error_size,
                                  "cluster %s: unknown (say `status` or `known-hosts`)",
                                  words[1]);
        if (nwords > 2)
            return cli_args__fail(error, error_size, "cluster %s: unexpected argument %s",
                                  words[1], words[2]);
    } else if (strcmp(first, "events") == 0) {
        args->command = CLI_COMMAND_EVENTS;
        takes_events = 1;
        if (nwords > 1)
            return cli_args__fail(error, error_size, "events: unexpected argument %s",
                                  words[1]);
    } else if (strcmp(first, "logs") == 0 || strcmp(first, "analytics") == 0) {
        args->command = first[1] == 'o' ? CLI_COMMAND_LOGS : CLI_COMMAND_ANALYTICS;
        takes_since = takes_class = args->command == CLI_COMMAND_LOGS;
        if (nwords < 2 || words[1][0] == '\0')
            return cli_args__fail(error, error_size, "%s: VS_NAME is missing", first);
        if (nwords > 2)
            return cli_args__fail(error, error_size, "%s: unexpected argument %s", first,
                                  words[2]);
        args->object_type = "virtualservice";
        args->name = words[1];
    } else if (strcmp(first, "login") == 0 || strcmp(first, "logout") == 0) {
        args->command = first[5] == '\0' ? CLI_COMMAND_LOGIN : CLI_COMMAND_LOGOUT;
        takes_username = args->command == CLI_COMMAND_LOGIN;
        if (nwords > 1)
            return cli_args__fail(error, error_size, "%s: unexpected argument %s", first,
                                  words[1]);
    } else if (strcmp(first, "help") == 0) {
        args->command = CLI_COMMAND_HELP;
        return 0;
    } else if (cli_args__is_object_type(first)) {
        const char *verb = nwords > 1 ? words[1] : NULL;
        args->object_type = first;
        if (verb == NULL)
            return cli_args__fail(error, error_size,
                                  "%s: say list, show NAME, create --file F or delete NAME",
                                  first);
        if (strcmp(verb, "list") == 0) {
            args->command = CLI_COMMAND_OBJECT_LIST;
            if (nwords > 2)
                return cli_args__fail(error, error_size, "%s list: unexpected argument %s",
                                      first, words[2]);
        } else if (strcmp(verb, "show") == 0 || strcmp(verb, "delete") == 0) {
            args->command = verb[0] == 's' ? CLI_COMMAND_OBJECT_SHOW : CLI_COMMAND_OBJECT_DELETE;
            if (nwords < 3 || words[2][0] == '\0')
                return cli_args__fail(error, error_size, "%s %s: NAME is missing", first, verb);
            if (nwords > 3)
                return cli_args__fail(error, error_size, "%s %s: unexpected argument %s",
                                      first, verb, words[3]);
            args->name = words[2];
        } else if (strcmp(verb, "create") == 0) {
            args->command = CLI_COMMAND_OBJECT_CREATE;
            takes_file = 1;
            if (nwords > 2)
                return cli_args__fail(error, error_size,
                                      "%s create: unexpected argument %s (the object comes "
                                      "from --file F)", first, words[2]);
            if (args->file == NULL || args->file[0] == '\0')
                return cli_args__fail(error, error_size, "%s create: --file F is missing",
                                      first);
        } else {
            return cli_args__fail(error, error_size,
                                  "%s %s: unknown (say list, show, create or delete)", first,
                                  verb);
        }
    } else {
        return cli_args__fail(error, error_size,
                              "%s: unknown command (cluster, events, logs, analytics, pool, "
                              "healthmonitor, virtualservice, serviceengine, login, logout)", first);
    }

    if (args->file != NULL && !takes_file)
        return cli_args__fail(error, error_size, "--file: only `TYPE create` takes it");
    if (args->event_type != NULL && !takes_events)
        return cli_args__fail(error, error_size, "--type: only `events` takes it");
    if (args->since != NULL && !takes_events && !takes_since)
        return cli_args__fail(error, error_size, "--since: only `events` and `logs` take it");
    if (args->status_class != NULL && !takes_class)
        return cli_args__fail(error, error_size, "--status-class: only `logs` takes it");
    if (args->status_class != NULL && strcmp(args->status_class, "2xx") != 0 &&
        strcmp(args->status_class, "3xx") != 0 && strcmp(args->status_class, "4xx") != 0 &&
        strcmp(args->status_class, "5xx") != 0)
        return cli_args__fail(error, error_size, "--status-class %s: say 2xx, 3xx, 4xx or 5xx",
                              args->status_class);
    if (args->event_type != NULL && args->event_type[0] == '\0')
        return cli_args__fail(error, error_size, "--type: empty event id");
    if (args->since != NULL && args->since[0] == '\0')
        return cli_args__fail(error, error_size, "--since: empty time");
    if (args->username != NULL && !takes_username)
        return cli_args__fail(error, error_size, "--username: only `login` takes it");
    if (args->username != NULL) {
        const char *p;
        if (args->username[0] == '\0')
            return cli_args__fail(error, error_size, "--username: empty");
        if (strlen(args->username) > 127)
            return cli_args__fail(error, error_size, "--username: longer than 127 characters");
        for (p = args->username; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == ':')
                return cli_args__fail(error, error_size,
                                      "--username: must not hold spaces, ':' or control "
                                      "characters");
    }
    if (args->command == CLI_COMMAND_LOGIN && args->username == NULL)
        args->username = CLI_DEFAULT_USERNAME;
    return 0;
}

int cli_args_parse(int argc, char **argv, struct cli_args *args, char *error,
                   size_t error_size)
{
    const char *words[CLI_ARGS__MAX_WORDS];
    const char *timeout_text = NULL;
    const char *env;
    int nwords = 0, options_done = 0, help = 0, version = 0;
    int i, rv;

    memset(args, 0, sizeof *args);
    if (error_size > 0)
        error[0] = '\0';

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && arg[0] == '-' && arg[1] == '-' && arg[2] == '\0') {
            options_done = 1;
            continue;
        }
        if (!options_done && arg[0] == '-' && arg[1] != '\0' && strcmp(arg, "-") != 0) {
            char name[64];
            const char *value = NULL;
            const char *eq = strchr(arg, '=');
            const char **slot;
            size_t len = eq ? (size_t)(eq - arg) : strlen(arg);

            if (len >= sizeof name)
                return cli_args__fail(error, error_size, "%.40s...: unknown option", arg);
            memcpy(name, arg, len);
            name[len] = '\0';
            if (eq != NULL)
                value = eq + 1;

            if (cli_args__is_flag(name)) {
                if (value != NULL)
                    return cli_args__fail(error, error_size, "%s takes no value", name);
                if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
                    help = 1;
                else if (strcmp(name, "--version") == 0)
                    version = 1;
                else if (strcmp(name, "--json") == 0)
                    args->json = 1;
                else
                    args->insecure = 1; /* --insecure, -k */
                continue;
            }
            slot = cli_args__value_slot(args, name, &timeout_text);
            if (slot == NULL)
                return cli_args__fail(error, error_size, "%s: unknown option", name);
            if (value == NULL) {
                if (i + 1 >= argc)
                    return cli_args__fail(error, error_size, "%s: a value is missing", name);
                value = argv[++i];
            }
            if (*slot != NULL)
                return cli_args__fail(error, error_size, "%s: given twice", name);
            *slot = value;
            continue;
        }
        if (nwords >= CLI_ARGS__MAX_WORDS)
            return cli_args__fail(error, error_size, "%s: unexpected argument", arg);
        words[nwords++] = arg;
    }

    if (help) {
        args->command = CLI_COMMAND_HELP;
        return 0;
    }
    if (version) {
        args->command = CLI_COMMAND_VERSION;
        return 0;
    }

    if (args->controller == NULL) {
        env = getenv("VIGIL_CONTROLLER");
        args->controller_given = env != NULL && env[0] != '\0';
        args->controller = args->controller_given ? env : CLI_DEFAULT_CONTROLLER;
    } else {
        args->controller_given = 1;
    }
    rv = cli_args__check_controller(args->controller, error, error_size);
    if (rv != 0)
        return rv;
    if (args->token != NULL) {
        args->token_source = CLI_TOKEN_FLAG;
    } else {
        env = getenv("VIGIL_TOKEN");
        if (env != NULL && env[0] != '\0') {
            args->token = env;
            args->token_source = CLI_TOKEN_ENV;
        }
    }
    if (args->token != NULL) {
        const char *p;
        if (args->token[0] == '\0')
            return cli_args__fail(error, error_size, "--token: empty");
        for (p = args->token; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f)
                return cli_args__fail(error, error_size,
                                      "--token: must not hold spaces or control characters");
    }
    if (args->cacert != NULL && args->cacert[0] == '\0')
        return cli_args__fail(error, error_size, "--cacert: empty file name");
    args->timeout_s = CLI_DEFAULT_TIMEOUT_S;
    if (timeout_text != NULL) {
        rv = cli_args__parse_timeout(timeout_text, &args->timeout_s, error, error_size);
        if (rv != 0)
            return rv;
    }
    return cli_args__resolve(args, words, nwords, error, error_size);
}
