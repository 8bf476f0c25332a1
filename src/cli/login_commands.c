/* login_commands.c: `vigil login` and `vigil logout`. */
#include "cli/login_commands.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/table.h"
#include "common/errors.h"

/* The terminal's settings while echo is off, restored by a signal that ends the program. */
static struct termios login_commands__saved_termios;
static volatile sig_atomic_t login_commands__echo_off;

static const int login_commands__signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define LOGIN_COMMANDS__NSIGNALS (sizeof login_commands__signals / sizeof login_commands__signals[0])

static void login_commands__restore_terminal(void)
{
    if (login_commands__echo_off) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &login_commands__saved_termios);
        login_commands__echo_off = 0;
    }
}

static void login_commands__on_signal(int sig)
{
    /* tcsetattr, signal and raise are async-signal-safe. */
    login_commands__restore_terminal();
    ssize_t ignored = write(STDERR_FILENO, "\n", 1);
    (void)ignored;
    signal(sig, SIG_DFL);
    raise(sig);
}

static int login_commands__fail(char *error, size_t error_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int login_commands__fail(char *error, size_t error_size, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error, error_size, fmt, ap);
    va_end(ap);
    return code;
}

/* Reads one line from FD into OUT (SIZE bytes) a byte at a time (nothing after the line
 * is consumed). Returns its length, -1 on a read error, -2 when it does not fit; *EOF_SEEN
 * tells whether the input ended before a newline. */
static long login_commands__read_line(int fd, char *out, size_t size, int *eof_seen)
{
    size_t len = 0;
    int too_long = 0;
    char c;
    ssize_t n;

    *eof_seen = 0;
    for (;;) {
        n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            *eof_seen = 1;
            break;
        }
        if (c == '\n')
            break;
        if (len + 1 >= size) {
            too_long = 1; /* keep reading to the end of the line, then refuse */
            continue;
        }
        out[len++] = c;
    }
    if (len > 0 && out[len - 1] == '\r')
        len--;
    out[len] = '\0';
    c = 0;
    return too_long ? -2 : (long)len;
}

int login_commands_read_password(const char *prompt, char *password, size_t size,
                                 char *error, size_t error_size)
{
    struct sigaction action, old[LOGIN_COMMANDS__NSIGNALS];
    struct termios quiet;
    int tty = isatty(STDIN_FILENO), eof_seen = 0;
    long len;
    size_t i;

    password[0] = '\0';
    if (!tty) {
        len = login_commands__read_line(STDIN_FILENO, password, size, &eof_seen);
    } else {
        if (tcgetattr(STDIN_FILENO, &login_commands__saved_termios) != 0)
            return login_commands__fail(error, error_size, VIGIL_EIO,
                                        "cannot read the terminal's settings: %s",
                                        strerror(errno));
        memset(&action, 0, sizeof action);
        action.sa_handler = login_commands__on_signal;
        sigemptyset(&action.sa_mask);
        for (i = 0; i < LOGIN_COMMANDS__NSIGNALS; i++)
            sigaction(login_commands__signals[i], &action, &old[i]);
        quiet = login_commands__saved_termios;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
        quiet.c_lflag |= ICANON;
        login_commands__echo_off = 1;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) {
            login_commands__echo_off = 0;
            for (i = 0; i < LOGIN_COMMANDS__NSIGNALS; i++)
                sigaction(login_commands__signals[i], &old[i], NULL);
            return login_commands__fail(error, error_size, VIGIL_EIO,
                                        "cannot turn the terminal's echo off: %s",
                                        strerror(errno));
        }
        /* The prompt only once echo is off: what is typed after it is never shown. */
        fputs(prompt, stderr);
        fflush(stderr);
        len = login_commands__read_line(STDIN_FILENO, password, size, &eof_seen);
        login_commands__restore_terminal();
        for (i = 0; i < LOGIN_COMMANDS__NSIGNALS; i++)
            sigaction(login_commands__signals[i], &old[i], NULL);
        fputc('\n', stderr);
    }
    if (len == -1) {
        memset(password, 0, size);
        return login_commands__fail(error, error_size, VIGIL_EIO, "cannot read the password: %s",
                                    strerror(errno));
    }
    if (len == -2) {
        memset(password, 0, size);
        return login_commands__fail(error, error_size, VIGIL_EINVAL,
                                    "the password is longer than %zu characters", size - 1);
    }
    if (len == 0)
        return login_commands__fail(error, error_size, VIGIL_EINVAL,
                                    eof_seen && !tty ? "no password on stdin"
                                                     : "empty password");
    return 0;
}

/* A JSON string member of OBJ, or "". */
static const char *login_commands__text(json_t *obj, const char *key)
{
    const char *value = json_string_value(json_object_get(obj, key));
    return value != NULL ? value : "";
}

int login_commands_login(struct command_context *ctx)
{
    const struct cli_args *args = ctx->args;
    struct rest_response response = {0};
    struct token_store_entry entry;
    char host[256] = "", description[400], user[256], expires[80], role[64] = "",
         token_id[128];
    json_t *body;
    char *text;
    const char *token, *id;
    int rv;

    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    table_sanitize(user, sizeof user, args->username);
    snprintf(description, sizeof description, "vigil login on %.100s", host[0] ? host : "?");
    body = json_pack("{s:s}", "description", description);
    text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
    rv = rest_client_request(ctx->client, "POST", "/api/token", text, &response);
    free(text);
    if (rv != 0)
        return command_context_client_failed(ctx, rv);
    if (response.status == 401) {
        rest_response_clear(&response);
        return command_context_fail(ctx, VIGIL_EIO,
                                    "login failed: bad username or password for %s at %s", user,
                                    args->controller);
    }
    if (response.status < 200 || response.status > 299) {
        json_t *error = json_is_object(response.json) ? json_object_get(response.json, "error")
                                                      : NULL;
        char why[600];
        table_sanitize(why, sizeof why,
                       json_is_string(error) ? json_string_value(error) : response.body);
        rv = command_context_fail(ctx, VIGIL_EIO, "login failed: POST /api/token: HTTP %ld: %s",
                                  response.status, why);
        rest_response_clear(&response);
        return rv;
    }
    token = json_string_value(json_object_get(response.json, "token"));
    id = json_string_value(json_object_get(response.json, "id"));
    if (token == NULL || id == NULL) {
        rest_response_clear(&response);
        return command_context_fail(ctx, VIGIL_EIO,
                                    "login: POST /api/token answered HTTP %ld without a token "
                                    "and its id", response.status);
    }
    memset(&entry, 0, sizeof entry);
    if (strlen(token) >= sizeof entry.token || strlen(id) >= sizeof entry.id) {
        rest_response_clear(&response);
        return command_context_fail(ctx, VIGIL_EIO, "login: the controller's token is too long");
    }
    strcpy(entry.token, token);
    table_sanitize(entry.id, sizeof entry.id, id);
    table_sanitize(entry.username, sizeof entry.username,
                   json_is_string(json_object_get(response.json, "username"))
                       ? login_commands__text(response.json, "username")
                       : args->username);
    snprintf(entry.controller, sizeof entry.controller, "%s", args->controller);
    table_sanitize(entry.expires, sizeof entry.expires,
                   login_commands__text(response.json, "expires"));
    snprintf(expires, sizeof expires, "%s", entry.expires);
    snprintf(token_id, sizeof token_id, "%s", entry.id);
    {
        /* The token the controller showed once is a secret: no copy stays behind. */
        char *t = (char *)json_string_value(json_object_get(response.json, "token"));
        memset(t, 0, strlen(t));
        memset(response.body, 0, response.body_len);
    }
    rest_response_clear(&response);

    rv = token_store_write(ctx->token_path, &entry, ctx->error, sizeof ctx->error);
    token_store_clear(&entry);
    if (rv != 0)
        return rv; /* the token stays valid until it expires: it was never shown */

    /* What the new token may do (and a check that it works). */
    if (rest_client_call(ctx->client, "GET", "/api/session", NULL, 1, &response) == 0)
        table_sanitize(role, sizeof role, login_commands__text(response.json, "role"));
    rest_response_clear(&response);

    if (args->json) {
        json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "username", user, "role", role,
                                "id", token_id, "expires", expires, "token_file",
                                ctx->token_path);
        if (out == NULL)
            return command_context_fail(ctx, VIGIL_ENOMEM, "out of memory");
        rv = command_context_print_json(ctx, out, 1);
        json_decref(out);
        return rv;
    }
    fprintf(ctx->out, "Logged in to %s as %s%s%s%s.\n", args->controller, user,
            role[0] ? " (" : "", role, role[0] ? ")" : "");
    fprintf(ctx->out, "The API token expires %s; it is kept in %s.\n",
            expires[0] ? expires : "(unknown)", ctx->token_path);
    return 0;
}

int login_commands_logout(struct command_context *ctx)
{
    const struct token_store_entry *stored = ctx->stored;
    struct rest_response response = {0};
    char path[256], error[sizeof ctx->error];
    const char *url = ctx->args->controller;
    int rv;

    if (stored->id[0] == '\0') {
        rv = token_store_remove(ctx->token_path, ctx->error, sizeof ctx->error);
        if (rv != 0)
            return rv;
        fprintf(stderr, "vigil: warning: %s named no token id, so the token was not revoked "
                "(it stays valid until it expires); the file is removed\n", ctx->token_path);
        return 0;
    }
    snprintf(path, sizeof path, "/api/token/%s", stored->id);
    rv = rest_client_request(ctx->client, "DELETE", path, NULL, &response);
    if (rv != 0) {
        command_context_client_failed(ctx, rv);
        snprintf(error, sizeof error, "%s", ctx->error);
        return command_context_fail(ctx, rv, "%.900s (the token was not revoked and is kept in %s)",
                                    error, ctx->token_path);
    }
    if (response.status == 401 || response.status == 404) {
        rest_response_clear(&response);
        rv = token_store_remove(ctx->token_path, ctx->error, sizeof ctx->error);
        if (rv != 0)
            return rv;
        fprintf(ctx->out, "Logged out (%s no longer accepted the token); removed %s.\n", url,
                ctx->token_path);
        return 0;
    }
    if (response.status < 200 || response.status > 299) {
        json_t *err = json_is_object(response.json) ? json_object_get(response.json, "error")
                                                    : NULL;
        char why[600];
        table_sanitize(why, sizeof why, json_is_string(err) ? json_string_value(err) : response.body);
        rv = command_context_fail(ctx, VIGIL_EIO,
                                  "DELETE %s: HTTP %ld: %s (the token was not revoked and is "
                                  "kept in %s)", path, response.status, why, ctx->token_path);
        rest_response_clear(&response);
        return rv;
    }
    rest_response_clear(&response);
    rv = token_store_remove(ctx->token_path, ctx->error, sizeof ctx->error);
    if (rv != 0)
        return rv;
    fprintf(ctx->out, "Logged out: token %s revoked on %s; removed %s.\n", stored->id, url,
            ctx->token_path);
    return 0;
}
