#include "controller/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

/* One setting: how it is named on the command line and in the INI file, and how its
 * value is read into the options. */
struct options__entry {
    const char *name;
    int (*set)(struct vigild_options *o, const char *v, char *err, size_t errlen);
    int takes_value;
    /* For --help (and so the man page, checked against it by tests/system/test_manpages.py):
     * the value's placeholder, its default ("" for none), and one line saying what it does.
     * help == NULL: a hidden setting, not part of the contract (benchmarks' and tests'). */
    const char *value_name;
    const char *default_text;
    const char *help;
};

static int options__uint(const char *name, const char *v, unsigned long min, unsigned long max,
                         unsigned long *out, char *err, size_t errlen)
{
    char *end;
    unsigned long x;
    errno = 0;
    if (v[0] == '-' || v[0] == '\0')
        goto bad;
    x = strtoul(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < min || x > max)
        goto bad;
    *out = x;
    return 0;
bad:
    snprintf(err, errlen, "--%s: '%s' is not a whole number from %lu to %lu", name, v, min, max);
    return VIGIL_EINVAL;
}

static int options__addr(const char *name, const char *v, struct netaddr *out, char *err,
                         size_t errlen)
{
    if (netaddr_parse(v, out) != 0) {
        snprintf(err, errlen, "--%s: '%s' is not an IPv4 HOST:PORT", name, v);
        return VIGIL_EINVAL;
    }
    return 0;
}

static int options__text(const char *name, const char *v, char *out, size_t outlen, char *err,
                         size_t errlen)
{
    size_t n = strlen(v);
    if (n == 0 || n >= outlen) {
        snprintf(err, errlen, "--%s: must be 1 to %zu characters", name, outlen - 1);
        return VIGIL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)v[i] < 0x20) {
            snprintf(err, errlen, "--%s: control characters are not allowed", name);
            return VIGIL_EINVAL;
        }
    }
    memcpy(out, v, n + 1);
    return 0;
}

static int set_data_dir(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__text("data-dir", v, o->data_dir, sizeof o->data_dir, e, n);
}

static int set_id(struct vigild_options *o, const char *v, char *e, size_t n)
{
    unsigned long x = 0;
    int rv = options__uint("id", v, 1, 1000000, &x, e, n);
    o->id = x;
    o->id_set = 1;
    return rv;
}

static int set_raft(struct vigild_options *o, const char *v, char *e, size_t n)
{
    o->raft_set = 1;
    return options__addr("raft", v, &o->raft, e, n);
}

static int set_api(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__addr("api", v, &o->api, e, n);
}

static int set_se_listen(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__addr("se-listen", v, &o->se_listen, e, n);
}

static int set_name(struct vigild_options *o, const char *v, char *e, size_t n)
{
    o->name_set = 1;
    return options__text("name", v, o->name, sizeof o->name, e, n);
}

static int set_cluster_name(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__text("cluster-name", v, o->cluster_name, sizeof o->cluster_name, e, n);
}

static int set_cluster(struct vigild_options *o, const char *v, char *e, size_t n)
{
    char buf[1024];
    char *save = NULL, *item;

    if (strlen(v) >= sizeof buf) {
        snprintf(e, n, "--cluster: too long");
        return VIGIL_EINVAL;
    }
    strcpy(buf, v);
    o->n_cluster = 0;
    for (item = strtok_r(buf, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *at = strchr(item, '@');
        unsigned long id;
        struct netaddr a;
        if (o->n_cluster == CLUSTER_MAX_NODES) {
            snprintf(e, n, "--cluster: at most %d members", CLUSTER_MAX_NODES);
            return VIGIL_EINVAL;
        }
        if (at == NULL) {
            snprintf(e, n, "--cluster: '%s' is not ID@HOST:PORT", item);
            return VIGIL_EINVAL;
        }
        *at = '\0';
        if (options__uint("cluster", item, 1, 1000000, &id, e, n) != 0 ||
            options__addr("cluster", at + 1, &a, e, n) != 0)
            return VIGIL_EINVAL;
        for (unsigned i = 0; i < o->n_cluster; i++) {
            if (o->cluster[i].id == id) {
                snprintf(e, n, "--cluster: id %lu is listed twice", id);
                return VIGIL_EINVAL;
            }
        }
        o->cluster[o->n_cluster].id = id;
        snprintf(o->cluster[o->n_cluster].address, sizeof o->cluster[0].address, "%s", at + 1);
        o->n_cluster++;
    }
    if (o->n_cluster == 0) {
        snprintf(e, n, "--cluster: empty");
        return VIGIL_EINVAL;
    }
    return 0;
}

#define OPTIONS__UINT_SETTER(fn, flag, field, lo, hi)                                    \
    static int fn(struct vigild_options *o, const char *v, char *e, size_t n)           \
    {                                                                                    \
        unsigned long x = 0;                                                             \
        int rv = options__uint(flag, v, lo, hi, &x, e, n);                               \
        o->field = (unsigned)x;                                                          \
        return rv;                                                                       \
    }

OPTIONS__UINT_SETTER(set_heartbeat, "heartbeat-ms", heartbeat_ms, 5, 60000)
OPTIONS__UINT_SETTER(set_election, "election-timeout-ms", election_timeout_ms, 20, 600000)
OPTIONS__UINT_SETTER(set_se_wait, "se-wait-s", se_wait_s, 0, 86400)
OPTIONS__UINT_SETTER(set_snap_threshold, "snapshot-threshold", snapshot_threshold, 4, 10000000)
OPTIONS__UINT_SETTER(set_snap_trailing, "snapshot-trailing", snapshot_trailing, 1, 10000000)
/* The log store's retention (docs/architecture.md, "Access logs"): 1 MiB to 16 TiB, 1 hour
 * to 10 years. */
OPTIONS__UINT_SETTER(set_log_retention_mb, "log-retention-mb", log_retention_mb, 1, 16777216)
OPTIONS__UINT_SETTER(set_log_retention_hours, "log-retention-hours", log_retention_hours, 1, 87600)

static int set_vip(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__text("vip", v, o->vip, sizeof o->vip, e, n);
}

static int set_vip_dev(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__text("vip-dev", v, o->vip_dev, sizeof o->vip_dev, e, n);
}

static int set_tls_cert(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__text("tls-cert", v, o->tls_cert, sizeof o->tls_cert, e, n);
}

static int set_tls_key(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__text("tls-key", v, o->tls_key, sizeof o->tls_key, e, n);
}

static int set_admin_password_file(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__text("admin-password-file", v, o->admin_password_file,
                         sizeof o->admin_password_file, e, n);
}

/* Boolean flags take no value on the command line; in the INI file "true"/"false". */
static int options__bool(const char *name, const char *v, int *out, char *e, size_t n)
{
    if (v[0] == '\0' || strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0) {
        *out = 1;
        return 0;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0) {
        *out = 0;
        return 0;
    }
    snprintf(e, n, "--%s: '%s' is not true or false", name, v);
    return VIGIL_EINVAL;
}

static int set_rebuild(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__bool("rebuild", v, &o->rebuild, e, n);
}

static int set_no_tls(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__bool("no-tls", v, &o->no_tls, e, n);
}

#ifdef VIGIL_TEST_KNOBS
/* Test-only knobs: compiled in only with meson's -Dtest_knobs=true (docs/hacking.md), so an
 * installed vigild refuses them as unknown flags. */
OPTIONS__UINT_SETTER(set_apply_delay, "test-apply-delay-ms", test_apply_delay_ms, 0, 60000)
OPTIONS__UINT_SETTER(set_se_max_sessions, "test-se-max-sessions", test_se_max_sessions, 1, 4096)
OPTIONS__UINT_SETTER(set_log_commit_delay, "test-log-commit-delay-ms", test_log_commit_delay_ms, 1,
                     600000)
OPTIONS__UINT_SETTER(set_events_keep, "test-events-keep", test_events_keep, 1, 100000)

static int set_fast_hash(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__bool("test-fast-password-hash", v, &o->test_fast_password_hash, e, n);
}

static int set_wrong_index(struct vigild_options *o, const char *v, char *e, size_t n)
{
    return options__bool("test-wrong-answer-index", v, &o->test_wrong_answer_index, e, n);
}
#endif

static int set_verbose(struct vigild_options *o, const char *v, char *e, size_t n)
{
    o->verbose = 1;
    return 0;
}

static const struct options__entry options__table[] = {
    {"data-dir", set_data_dir, 1, "DIR", "", "the node's state (raft log, snapshots, store); required"},
    {"id", set_id, 1, "N", "1", "this node's raft id"},
    {"raft", set_raft, 1, "HOST:PORT", "127.0.0.1:7000", "raft address, told to the other nodes"},
    {"api", set_api, 1, "HOST:PORT", "127.0.0.1:8080", "REST API (0.0.0.0:PORT: every address)"},
    {"se-listen", set_se_listen, 1, "HOST:PORT", "127.0.0.1:5098", "SSH channel for Service Engines"},
    {"name", set_name, 1, "NAME", "node-ID", "this node's name"},
    {"cluster", set_cluster, 1, "ID@HOST:PORT,...", "", "initial voters (used only while DIR is empty)"},
    {"cluster-name", set_cluster_name, 1, "NAME", "vigil", "the cluster's name, set at bootstrap"},
    {"heartbeat-ms", set_heartbeat, 1, "N", "50", "raft heartbeat interval"},
    {"election-timeout-ms", set_election, 1, "N", "300", "raft election timeout"},
    {"se-wait-s", set_se_wait, 1, "N", "30", "how long a new leader waits for its SEs"},
    {"vip", set_vip, 1, "ADDR/PREFIX", "", "the cluster IP, held by the leader (with --vip-dev)"},
    {"vip-dev", set_vip_dev, 1, "IFACE", "", "the interface the cluster IP goes on"},
    {"snapshot-threshold", set_snap_threshold, 1, NULL, NULL, NULL},
    {"snapshot-trailing", set_snap_trailing, 1, NULL, NULL, NULL},
    {"log-retention-mb", set_log_retention_mb, 1, "N", "1024", "access log store's size bound"},
    {"log-retention-hours", set_log_retention_hours, 1, "N", "168", "access log store's age bound"},
    {"tls-cert", set_tls_cert, 1, "FILE", "", "API certificate (PEM; default: the cluster's own)"},
    {"tls-key", set_tls_key, 1, "FILE", "", "its private key (PEM)"},
    {"no-tls", set_no_tls, 0, NULL, "false", "serve the API as plain HTTP (tests, loopback demos)"},
    {"rebuild", set_rebuild, 0, NULL, "false",
     "set damaged local state aside and rejoin from the leader's snapshot"},
    {"admin-password-file", set_admin_password_file, 1, "FILE", "",
     "the first admin password (default: DIR/initial-admin-password)"},
#ifdef VIGIL_TEST_KNOBS
    {"test-apply-delay-ms", set_apply_delay, 1, NULL, NULL, NULL},
    {"test-fast-password-hash", set_fast_hash, 0, NULL, NULL, NULL},
    {"test-wrong-answer-index", set_wrong_index, 0, NULL, NULL, NULL},
    {"test-se-max-sessions", set_se_max_sessions, 1, NULL, NULL, NULL},
    {"test-log-commit-delay-ms", set_log_commit_delay, 1, NULL, NULL, NULL},
    {"test-events-keep", set_events_keep, 1, NULL, NULL, NULL},
#endif
    {"verbose", set_verbose, 0, NULL, "false", "debug logging"},
};

static const struct options__entry *options__find(const char *name)
{
    for (size_t i = 0; i < sizeof options__table / sizeof options__table[0]; i++)
        if (strcmp(options__table[i].name, name) == 0)
            return &options__table[i];
    return NULL;
}

static char *options__trim(char *s)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        *--end = '\0';
    return s;
}

static int options__load_ini(struct vigild_options *o, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char line[2048];
    int lineno = 0;

    if (f == NULL) {
        snprintf(err, errlen, "--config: cannot read %s: %s", path, strerror(errno));
        return VIGIL_EINVAL;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *s = options__trim(line), *eq, *key, *value;
        const struct options__entry *entry;
        char why[400];
        lineno++;
        if (*s == '\0' || *s == '#' || *s == ';' || *s == '[')
            continue;
        eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
            goto fail;
        }
        *eq = '\0';
        key = options__trim(s);
        value = options__trim(eq + 1);
        entry = options__find(key);
        if (entry == NULL || strcmp(key, "config") == 0) {
            snprintf(err, errlen, "%s:%d: unknown setting '%s'", path, lineno, key);
            goto fail;
        }
        if (entry->set(o, value, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            goto fail;
        }
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    return VIGIL_EINVAL;
}

void options_print_help(FILE *out)
{
    fputs("usage: vigild --data-dir DIR [OPTIONS]\n"
          "The Vigil controller: one node of the cluster (raft + SQLite) and its REST API.\n"
          "Every option can also be set in the INI file given with --config, as\n"
          "'name = value' (the option without its dashes); options on the command line win.\n"
          "\n"
          "options:\n",
          out);
    for (size_t i = 0; i < sizeof options__table / sizeof options__table[0]; i++) {
        const struct options__entry *e = &options__table[i];
        char left[64];
        if (e->help == NULL)
            continue;
        snprintf(left, sizeof left, "--%s%s%s", e->name, e->value_name ? " " : "",
                 e->value_name ? e->value_name : "");
        fprintf(out, "  %-32s %s", left, e->help);
        if (e->default_text[0] != '\0' && e->value_name != NULL)
            fprintf(out, " (default %s)", e->default_text);
        fputc('\n', out);
    }
    fprintf(out, "  %-32s %s\n", "--config FILE", "read options from an INI file");
    fprintf(out, "  %-32s %s\n", "--help", "print this text and exit");
    fprintf(out, "  %-32s %s\n", "--version", "print the name and version and exit");
    fputs("\nexit status: 0 after a clean stop, 2 on bad options or an unusable data dir,\n"
          "3 when the node had to stop (a failed disk write).\n",
          out);
}

int options_parse(struct vigild_options *o, int argc, char **argv, char *err, size_t errlen)
{
    const char *config = NULL;

    memset(o, 0, sizeof *o);
    o->id = 1;
    netaddr_parse("127.0.0.1:7000", &o->raft);
    netaddr_parse("127.0.0.1:8080", &o->api);
    netaddr_parse("127.0.0.1:5098", &o->se_listen);
    strcpy(o->cluster_name, "vigil");
    o->heartbeat_ms = 50;
    o->election_timeout_ms = 300;
    o->se_wait_s = 30;
    o->snapshot_threshold = 4096;
    o->snapshot_trailing = 1024;
    o->log_retention_mb = 1024;
    o->log_retention_hours = 168;

    /* The file first, so that flags win. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config = argv[i] + 9;
    }
    if (config != NULL && options__load_ini(o, config, err, errlen) != 0)
        return VIGIL_EINVAL;

    for (int i = 1; i < argc; i++) {
        char name[64];
        const char *arg = argv[i], *value = NULL, *eq;
        const struct options__entry *entry;

        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", arg);
            return VIGIL_EINVAL;
        }
        arg += 2;
        eq = strchr(arg, '=');
        if (eq != NULL) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - arg), arg);
            value = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", arg);
        }
        if (strcmp(name, "config") == 0) {
            if (value == NULL)
                i++;
            if (i >= argc) {
                snprintf(err, errlen, "--config needs a value");
                return VIGIL_EINVAL;
            }
            continue;
        }
        entry = options__find(name);
        if (entry == NULL) {
            snprintf(err, errlen, "unknown flag --%s", name);
            return VIGIL_EINVAL;
        }
        if (entry->takes_value && value == NULL) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", name);
                return VIGIL_EINVAL;
            }
            value = argv[++i];
        }
        if (entry->set(o, value != NULL ? value : "", err, errlen) != 0)
            return VIGIL_EINVAL;
    }

    if (o->data_dir[0] == '\0') {
        snprintf(err, errlen, "--data-dir is required");
        return VIGIL_EINVAL;
    }
    if (o->heartbeat_ms * 2 > o->election_timeout_ms) {
        snprintf(err, errlen, "--heartbeat-ms (%u) must be at most half of --election-timeout-ms (%u)",
                 o->heartbeat_ms, o->election_timeout_ms);
        return VIGIL_EINVAL;
    }
    if ((o->tls_cert[0] != '\0') != (o->tls_key[0] != '\0')) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return VIGIL_EINVAL;
    }
    if (o->no_tls && o->tls_cert[0] != '\0') {
        snprintf(err, errlen, "--no-tls and --tls-cert exclude each other");
        return VIGIL_EINVAL;
    }
    if ((o->vip[0] != '\0') != (o->vip_dev[0] != '\0')) {
        snprintf(err, errlen, "--vip and --vip-dev go together");
        return VIGIL_EINVAL;
    }
    if (o->snapshot_trailing > o->snapshot_threshold)
        o->snapshot_trailing = o->snapshot_threshold;
    if (o->n_cluster > 0) {
        int found = 0;
        for (unsigned i = 0; i < o->n_cluster; i++) {
            if (o->cluster[i].id == o->id) {
                char mine[80];
                snprintf(mine, sizeof mine, "%s:%u", o->raft.host, o->raft.port);
                if (strcmp(mine, o->cluster[i].address) != 0) {
                    snprintf(err, errlen, "--cluster lists %llu@%s but --raft is %s",
                             (unsigned long long)o->id, o->cluster[i].address, mine);
                    return VIGIL_EINVAL;
                }
                found = 1;
            }
        }
        if (!found) {
            snprintf(err, errlen, "--cluster does not list this node's --id %llu",
                     (unsigned long long)o->id);
            return VIGIL_EINVAL;
        }
    }
    if (!o->name_set)
        snprintf(o->name, sizeof o->name, "node-%llu", (unsigned long long)o->id);
    return 0;
}
