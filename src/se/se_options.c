/* se_options.c: command-line parsing for vigil-se. */
#include "se/se_options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

static int se_options__uint(const char *flag, const char *v, uint32_t min, uint32_t max,
                            uint32_t *out, char *err, size_t errlen)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*v == '\0' || *end != '\0' || v[0] == '-' || n < min || n > max) {
        snprintf(err, errlen, "%s: must be an integer from %u to %u, not \"%s\"", flag, min,
                 max, v);
        return VIGIL_EINVAL;
    }
    *out = (uint32_t)n;
    return 0;
}

static int se_options__controllers(struct se_options *o, const char *v, char *err,
                                   size_t errlen)
{
    const char *p = v;

    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon;
        char *end;
        long port;

        if (o->n_controllers == SE_OPTIONS_CONTROLLERS_MAX) {
            snprintf(err, errlen, "--controllers: at most %d addresses",
                     SE_OPTIONS_CONTROLLERS_MAX);
            return VIGIL_EINVAL;
        }
        if (len == 0 || len >= sizeof o->controllers[0]) {
            snprintf(err, errlen, "--controllers: bad address list \"%s\"", v);
            return VIGIL_EINVAL;
        }
        memcpy(o->controllers[o->n_controllers], p, len);
        o->controllers[o->n_controllers][len] = '\0';
        colon = strrchr(o->controllers[o->n_controllers], ':');
        port = colon ? strtol(colon + 1, &end, 10) : 0;
        if (colon == NULL || colon == o->controllers[o->n_controllers] || colon[1] == '\0' ||
            *end != '\0' || port < 1 || port > 65535) {
            snprintf(err, errlen, "--controllers: \"%s\" is not HOST:PORT",
                     o->controllers[o->n_controllers]);
            return VIGIL_EINVAL;
        }
        o->n_controllers++;
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* The flags: what se_options_parse accepts and what --help lists (the man page vigil-se(8)
 * is checked against --help by tests/system/test_manpages.py). */
struct se_options__flag {
    const char *flag;
    const char *value_name;
    const char *default_text; /* "" for none */
    const char *help;
};

static const struct se_options__flag se_options__flags[] = {
    {"--name", "NAME", "", "this SE's name: its serviceengine object's name; required"},
    {"--data-dir", "DIR", "", "state: the last good config, the log spool; required"},
    {"--controllers", "HOST:PORT,...", "", "the controllers' SSH addresses (their se-listen)"},
    {"--key", "FILE", "", "the SE's OpenSSH ed25519 private key"},
    {"--known-hosts", "FILE", "", "the controllers' host keys (known_hosts format)"},
    {"--admin", "HOST:PORT", "", "admin HTTP: GET /status and /metrics; required"},
    {"--heartbeat-ms", "N", "1000", "heartbeat interval to each controller"},
    {"--miss-limit", "N", "3", "missed heartbeats before a controller counts as lost"},
    {"--config-file", "FILE", "", "standalone: serve this JSON config, no controller"},
    {"--spool-cap-mb", "N", "1024", "size cap of the access log spool"},
};

#define SE_OPTIONS__N_FLAGS (sizeof se_options__flags / sizeof se_options__flags[0])

void se_options_print_help(FILE *out)
{
    fputs("usage: vigil-se --name NAME --data-dir DIR --admin HOST:PORT\n"
          "                (--controllers HOST:PORT,... --key FILE --known-hosts FILE\n"
          "                 | --config-file FILE) [OPTIONS]\n"
          "The Vigil Service Engine: the data plane (virtual services, pools, health\n"
          "monitors), configured by the controllers or by a file. SIGHUP reloads the file.\n"
          "\n"
          "options (--flag VALUE or --flag=VALUE):\n",
          out);
    for (size_t i = 0; i < SE_OPTIONS__N_FLAGS; i++) {
        const struct se_options__flag *f = &se_options__flags[i];
        char left[64];
        snprintf(left, sizeof left, "%s %s", f->flag, f->value_name);
        fprintf(out, "  %-30s %s", left, f->help);
        if (f->default_text[0] != '\0')
            fprintf(out, " (default %s)", f->default_text);
        fputc('\n', out);
    }
    fprintf(out, "  %-30s %s\n", "--config FILE",
            "read options from an INI file ('name = value'); flags win");
    fprintf(out, "  %-30s %s\n", "--help", "print this text and exit");
    fprintf(out, "  %-30s %s\n", "--version", "print the name and version and exit");
    fputs("\nexit status: 0 after a clean stop (SIGTERM), 2 on bad options.\n", out);
}

/* Sets FLAG (one of the table's) to VALUE (borrowed: O points into it). */
static int se_options__set(struct se_options *o, const char *flag, const char *value,
                           char *err, size_t errlen)
{
    if (strcmp(flag, "--admin") != 0 && strcmp(flag, "--heartbeat-ms") != 0 &&
        strcmp(flag, "--miss-limit") != 0 && strcmp(flag, "--controllers") != 0 &&
        strcmp(flag, "--spool-cap-mb") != 0 && *value == '\0') {
        snprintf(err, errlen, "%s: must not be empty", flag);
        return VIGIL_EINVAL;
    }
    if (strcmp(flag, "--name") == 0) {
        o->name = value;
        if (strlen(value) > 255) {
            snprintf(err, errlen, "--name: at most 255 bytes");
            return VIGIL_EINVAL;
        }
        for (const char *c = value; *c; c++) {
            if ((unsigned char)*c < 0x20 || *c == 0x7f) {
                snprintf(err, errlen, "--name: must not contain control characters");
                return VIGIL_EINVAL;
            }
        }
    } else if (strcmp(flag, "--data-dir") == 0) {
        o->data_dir = value;
    } else if (strcmp(flag, "--key") == 0) {
        o->key = value;
    } else if (strcmp(flag, "--known-hosts") == 0) {
        o->known_hosts = value;
    } else if (strcmp(flag, "--config-file") == 0) {
        o->config_file = value;
    } else if (strcmp(flag, "--admin") == 0) {
        if (netaddr_parse(value, &o->admin) != 0) {
            snprintf(err, errlen, "--admin: \"%s\" is not IPV4:PORT", value);
            return VIGIL_EINVAL;
        }
        o->have_admin = 1;
    } else if (strcmp(flag, "--controllers") == 0) {
        o->n_controllers = 0;
        return se_options__controllers(o, value, err, errlen);
    } else if (strcmp(flag, "--heartbeat-ms") == 0) {
        return se_options__uint(flag, value, 10, 600000, &o->heartbeat_ms, err, errlen);
    } else if (strcmp(flag, "--miss-limit") == 0) {
        return se_options__uint(flag, value, 1, 1000, &o->miss_limit, err, errlen);
    } else if (strcmp(flag, "--spool-cap-mb") == 0) {
        return se_options__uint(flag, value, 1, 1u << 20, &o->spool_cap_mb, err, errlen);
    }
    return 0;
}

/* Applies ARGV[1..ARGC-1] ("--flag VALUE" or "--flag=VALUE"; --config FILE is skipped: read
 * before). */
static int se_options__args(struct se_options *o, int argc, char **argv, char *err,
                            size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value, *eq;
        char flag[32];
        size_t flen;
        int k;

        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\"", arg);
            return VIGIL_EINVAL;
        }
        eq = strchr(arg, '=');
        flen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (flen >= sizeof flag) {
            snprintf(err, errlen, "unknown flag \"%.40s\"", arg);
            return VIGIL_EINVAL;
        }
        memcpy(flag, arg, flen);
        flag[flen] = '\0';
        for (k = 0; k < (int)SE_OPTIONS__N_FLAGS && strcmp(se_options__flags[k].flag, flag) != 0;
             k++)
            ;
        if (k == (int)SE_OPTIONS__N_FLAGS && strcmp(flag, "--config") != 0) {
            snprintf(err, errlen, "unknown flag \"%s\"", flag);
            return VIGIL_EINVAL;
        }
        if (eq) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "%s: needs a value", flag);
                return VIGIL_EINVAL;
            }
            value = argv[++i];
        }
        if (strcmp(flag, "--config") != 0 && se_options__set(o, flag, value, err, errlen) != 0)
            return VIGIL_EINVAL;
    }
    return 0;
}

/* Reads the INI file PATH ("name = value" lines, the flag without its dashes; # and ;
 * comments, [sections] ignored) into O. The values are kept in O->config_text (owned). */
static int se_options__ini(struct se_options *o, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int lineno = 0, rv = 0;

    if (f == NULL) {
        snprintf(err, errlen, "--config: cannot read %s: %s", path, strerror(errno));
        return VIGIL_EINVAL;
    }
    while (rv == 0 && fgets(line, sizeof line, f) != NULL) {
        char *s = line, *eq, *end, flag[40], why[400];
        size_t k;
        lineno++;
        s[strcspn(s, "\r\n")] = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#' || *s == ';' || *s == '[')
            continue;
        eq = strchr(s, '=');
        for (end = eq ? eq : s; end > s && (end[-1] == ' ' || end[-1] == '\t'); end--)
            ;
        snprintf(flag, sizeof flag, "--%.*s", (int)(end - s), s);
        for (k = 0; eq != NULL && k < SE_OPTIONS__N_FLAGS; k++)
            if (strcmp(se_options__flags[k].flag, flag) == 0)
                break;
        if (eq == NULL || k == SE_OPTIONS__N_FLAGS || o->n_config_text == SE_OPTIONS_CONFIG_MAX) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno,
                     eq == NULL                 ? "expected 'name = value'"
                     : k == SE_OPTIONS__N_FLAGS ? "unknown setting"
                                                : "too many settings");
            rv = VIGIL_EINVAL;
            break;
        }
        for (s = eq + 1; *s == ' ' || *s == '\t'; s++)
            ;
        for (end = s + strlen(s); end > s && (end[-1] == ' ' || end[-1] == '\t'); end--)
            *--end = '\0';
        o->config_text[o->n_config_text] = strdup(s);
        if (o->config_text[o->n_config_text] == NULL) {
            snprintf(err, errlen, "--config: out of memory");
            rv = VIGIL_ENOMEM;
        } else if (se_options__set(o, flag, o->config_text[o->n_config_text++], why,
                                   sizeof why) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            rv = VIGIL_EINVAL;
        }
    }
    fclose(f);
    return rv;
}

/* The flags a run needs: --name, --data-dir, --admin, and the controllers' three or a
 * --config-file. */
static int se_options__required(const struct se_options *o, char *err, size_t errlen)
{
    if (o->name == NULL) {
        snprintf(err, errlen, "--name is required");
        return VIGIL_EINVAL;
    }
    if (o->data_dir == NULL) {
        snprintf(err, errlen, "--data-dir is required");
        return VIGIL_EINVAL;
    }
    if (!o->have_admin) {
        snprintf(err, errlen, "--admin is required");
        return VIGIL_EINVAL;
    }
    if (o->config_file == NULL) {
        if (o->n_controllers == 0) {
            snprintf(err, errlen, "--controllers is required (or --config-file for standalone)");
            return VIGIL_EINVAL;
        }
        if (o->key == NULL) {
            snprintf(err, errlen, "--key is required (or --config-file for standalone)");
            return VIGIL_EINVAL;
        }
        if (o->known_hosts == NULL) {
            snprintf(err, errlen,
                     "--known-hosts is required (or --config-file for standalone)");
            return VIGIL_EINVAL;
        }
    }
    return 0;
}

void se_options_free(struct se_options *o)
{
    for (size_t i = 0; i < o->n_config_text; i++)
        free(o->config_text[i]);
    o->n_config_text = 0;
}

int se_options_parse(int argc, char **argv, struct se_options *o, char *err, size_t errlen)
{
    const char *config = NULL;

    memset(o, 0, sizeof *o);
    o->heartbeat_ms = 1000;
    o->miss_limit = 3;
    o->spool_cap_mb = 1024; /* LOG_SPOOL_DEFAULT_CAP_MB: fits a small disk */
    /* The file first, so that flags win. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
    }
    if ((config != NULL && se_options__ini(o, config, err, errlen) != 0) ||
        se_options__args(o, argc, argv, err, errlen) != 0 ||
        se_options__required(o, err, errlen) != 0) {
        se_options_free(o);
        return VIGIL_EINVAL;
    }
    return 0;
}
