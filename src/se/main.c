/* main.c: vigil-se, the Service Engine. Standalone (--config-file) it serves the file's
 * virtual services; SIGHUP re-reads the file. With --controllers it serves the last good
 * pushed config in DIR at once, and the controller link applies what the controllers push
 * through the same path. SIGTERM / SIGINT stop cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "common/errors.h"
#include "common/fileutil.h"
#include "common/sd_notify.h"
#include "common/timeutil.h"
#include "common/version.h"
#include "common/vlog.h"
#include "se/admin.h"
#include "se/controller_link.h"
#include "se/engine.h"
#include "se/http_msg.h"
#include "se/http_proxy.h"
#include "se/listener.h"
#include "se/log_file.h"
#include "se/log_seq.h"
#include "se/log_spool.h"
#include "se/vs_metrics.h"
#include "se/se_config.h"
#include "se/se_options.h"
#include "se/se_state.h"
#include "se/tcp_proxy.h"

/* How long a stop waits for requests in flight before cutting them off. */
#define SE_DRAIN_MS 5000
/* After the drain: the loop ends once the last handles closed, or after this. */
#define SE_EXIT_GRACE_MS 1000
/* In DIR: the last good config a controller pushed (the CONFIG payload, with its
 * config_version), served at start before any controller answers. */
#define SE_PUSHED_CONFIG_NAME "controller-config.json"

struct se_main {
    struct se_options opts;
    uv_loop_t *loop;
    struct se_engine engine;
    struct log_sink *sink;
    struct log_spool *spool; /* with --controllers: the sink is its log_spool_sink */
    struct log_seq *seq;
    /* With --controllers: the per-second metrics (vs_metrics.h), numbered from
     * DIR/metrics.seq, spooled in DIR/spool-metrics; NULL standalone. */
    struct vs_metrics *metrics;
    struct log_seq *metrics_seq;
    struct log_spool *metrics_spool;
    struct admin *admin;
    uv_signal_t sighup, sigterm, sigint;
    uv_timer_t drain_timer;
    bool stopping;
    struct se_state_machine state;
    struct controller_link *link; /* NULL standalone */
    char last_config_path[4096];
};

/* The /status "controllers" list: the link's, or the flag's addresses before it runs. */
static json_t *se__controllers(void *arg)
{
    struct se_main *m = arg;
    json_t *list;

    if (m->link)
        return controller_link_status_json(m->link);
    list = json_array();
    for (size_t i = 0; i < m->opts.n_controllers; i++)
        json_array_append_new(list, json_pack("{sssbsn}", "address", m->opts.controllers[i],
                                              "connected", 0, "last_heartbeat"));
    return list;
}

static uint64_t se__config_version(void *arg)
{
    struct se_main *m = arg;
    return m->engine.config ? m->engine.config_version : 0;
}

/* Builds and applies CONFIG (borrowed: the CONFIG payload shape) as config_version VERSION.
 * Returns 0, VIGIL_EINVAL (refused: the reason in ERR, nothing changed) or VIGIL_ENOMEM. */
static int se__apply_objects(struct se_main *m, const json_t *config, uint64_t version, char *err,
                             size_t errlen)
{
    json_t *objects = json_deep_copy(config);
    struct se_config *gen;
    int failed = 0;

    if (objects == NULL) {
        snprintf(err, errlen, "out of memory");
        return VIGIL_ENOMEM;
    }
    json_object_del(objects, "config_version");
    gen = se_config_from_json(objects, err, errlen);
    json_decref(objects);
    if (gen == NULL)
        return VIGIL_EINVAL;
    gen->version = version;
    if (engine_apply_config(&m->engine, gen, &failed) != 0) {
        snprintf(err, errlen, "out of memory applying it");
        return VIGIL_ENOMEM;
    }
    if (failed)
        vlog_warn("se: config_version %llu: %d listener(s) could not open (see above)",
                  (unsigned long long)version, failed);
    return 0;
}

/* The link's apply function: applies a pushed config, then keeps it in DIR (atomically:
 * temp file, fsync, rename) as the last good one. */
static int se__apply_pushed(void *arg, const json_t *config, uint64_t version, char *err,
                            size_t errlen)
{
    struct se_main *m = arg;
    char *text;
    int rc = se__apply_objects(m, config, version, err, errlen);

    if (rc != 0)
        return rc;
    text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
    rc = text ? file_write_atomic(m->opts.data_dir, SE_PUSHED_CONFIG_NAME, text) : VIGIL_ENOMEM;
    if (rc != 0)
        vlog_warn("se: config_version %llu is served but cannot be kept in %s/%s: %s",
                  (unsigned long long)version, m->opts.data_dir, SE_PUSHED_CONFIG_NAME,
                  vigil_strerror(rc));
    free(text);
    return 0;
}

/* At start with --controllers: serves the last good pushed config in DIR, if any. */
static void se__load_last_pushed(struct se_main *m)
{
    char path[4200], err[1024];
    json_error_t jerr;
    json_t *config, *v;

    snprintf(path, sizeof path, "%s/%s", m->opts.data_dir, SE_PUSHED_CONFIG_NAME);
    if (access(path, F_OK) != 0)
        return;
    config = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    v = json_object_get(config, "config_version");
    if (config == NULL || !json_is_integer(v) || json_integer_value(v) <= 0) {
        vlog_error("se: %s: not a saved config (%s); waiting for a controller", path,
                   config ? "no config_version" : jerr.text);
        json_decref(config);
        return;
    }
    if (se__apply_objects(m, config, (uint64_t)json_integer_value(v), err, sizeof err) != 0)
        vlog_error("se: %s refused: %s; waiting for a controller", path, vlog_one_line(err));
    else
        vlog_info("se: serving the last good config_version %lld (%s) until a controller answers",
                  (long long)json_integer_value(v), path);
    json_decref(config);
}

static const char *se__state(void *arg)
{
    return se_state_name(se_state_current(&((struct se_main *)arg)->state));
}

/* A listener accepted FD: the proxy of its service's application takes it. */
static void se__accept(void *engine, struct se_listener *l, int fd, const struct sockaddr_in *peer)
{
    if (l->vs->cfg->app == SE_APP_TCP)
        tcp_proxy_accept(engine, l, fd, peer);
    else
        http_proxy_accept(engine, l, fd, peer);
}

/* Keeps the last good configuration in DIR/config.json (written atomically). */
static void se__save_config(struct se_main *m, const struct se_config *gen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", m->last_config_path);
    if (json_dump_file(gen->source, tmp, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 ||
        rename(tmp, m->last_config_path) != 0)
        vlog_warn("se: cannot save the configuration to %s: %s", m->last_config_path,
                  strerror(errno));
}

/* Loads PATH and applies it. Returns 0, or VIGIL_EINVAL (bad file: nothing changed) /
 * VIGIL_EIO (some listener could not open). */
static int se__load(struct se_main *m, const char *path)
{
    char err[1024];
    struct se_config *gen = se_config_load_file(path, err, sizeof err);
    int failed = 0;

    if (gen == NULL) {
        vlog_error("se: configuration %s refused, the running one stays: %s", path, err);
        fprintf(stderr, "vigil-se: %s: %s\n", path, vlog_one_line(err));
        return VIGIL_EINVAL;
    }
    se_config_ref(gen);
    if (engine_apply_config(&m->engine, gen, &failed) != 0) {
        se_config_unref(gen);
        vlog_error("se: out of memory applying %s", path);
        return VIGIL_ENOMEM;
    }
    se__save_config(m, gen);
    se_config_unref(gen);
    return failed ? VIGIL_EIO : 0;
}

/* Tells systemd STATE (Type=notify units); a failure is logged, never fatal. */
static void se__notify(const char *state)
{
    int rv = sd_notify_send(state);
    if (rv < 0)
        vlog_warn("se: cannot notify systemd (%s): %s", state, strerror(-rv));
}

static void se__on_sighup(uv_signal_t *h, int signum)
{
    struct se_main *m = h->data;
    if (m->opts.config_file == NULL) {
        vlog_info("se: SIGHUP ignored (no --config-file)");
        return;
    }
    vlog_info("se: SIGHUP: reloading %s", m->opts.config_file);
    se__notify("RELOADING=1");
    se__load(m, m->opts.config_file);
    se__notify("READY=1");
}

static void se__on_exit_grace(uv_timer_t *t)
{
    vlog_warn("se: handles still open %d ms after the drain; leaving the loop", SE_EXIT_GRACE_MS);
    uv_stop(t->loop);
}

/* Every connection is gone (drained or cut off): flush the log, close what is left; the loop
 * then ends and main returns 0. */
static void se__on_drained(void *arg)
{
    struct se_main *m = arg;

    vlog_info("se: drained; flushing the access log and exiting");
    uv_timer_stop(&m->drain_timer);
    uv_close((uv_handle_t *)&m->drain_timer, NULL);
    uv_close((uv_handle_t *)&m->sighup, NULL);
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    if (m->metrics != NULL) {
        engine_set_metrics(&m->engine, NULL);
        vs_metrics_close(m->metrics); /* spools the second in progress */
        log_seq_close(m->metrics_seq);
        log_sink_close(log_spool_sink(m->metrics_spool));
        m->metrics = NULL;
        m->metrics_seq = NULL;
        m->metrics_spool = NULL;
    }
    log_sink_flush(m->sink);
    log_seq_close(m->seq);
    m->seq = NULL;
    log_sink_close(m->sink);
    m->sink = NULL;
    m->spool = NULL;
    fflush(stderr);
    {
        static uv_timer_t grace; /* unreferenced: it never keeps the loop alive by itself */
        uv_timer_init(m->loop, &grace);
        uv_timer_start(&grace, se__on_exit_grace, SE_EXIT_GRACE_MS, 0);
        uv_unref((uv_handle_t *)&grace);
    }
}

static void se__on_drain_deadline(uv_timer_t *t)
{
    struct se_main *m = t->data;

    vlog_warn("se: drain deadline (%d ms) passed; closing %llu connections still open",
              SE_DRAIN_MS, (unsigned long long)m->engine.n_conns);
    engine_abort(&m->engine);
}

/* SIGTERM / SIGINT: stop accepting, let requests in flight finish (up to SE_DRAIN_MS), then
 * flush the log and exit 0. A second signal cuts the drain short. */
static void se__on_stop(uv_signal_t *h, int signum)
{
    struct se_main *m = h->data;

    if (m->stopping) {
        vlog_info("se: signal %d again: closing the connections in flight now", signum);
        engine_abort(&m->engine);
        return;
    }
    m->stopping = true;
    se__notify("STOPPING=1");
    vlog_info("se: signal %d: stopping; no new connections, %llu in flight get up to %d ms",
              signum, (unsigned long long)m->engine.n_conns, SE_DRAIN_MS);
    engine_stop(&m->engine);
    if (m->link)
        controller_link_close(m->link);
    m->link = NULL;
    if (m->admin)
        admin_close(m->admin);
    m->admin = NULL;
    uv_timer_start(&m->drain_timer, se__on_drain_deadline, SE_DRAIN_MS, 0);
    engine_drain(&m->engine, se__on_drained, m);
}

static int se__mkdirs(const char *path)
{
    char tmp[4096];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -1;
    return access(tmp, W_OK | X_OK);
}

static json_t *se__vs_runtime(void *arg)
{
    struct se_main *m = arg;
    return engine_vs_runtime(&m->engine);
}

/* The access-log sink: DIR/access.log standalone, the spool DIR/spool (capped by
 * --spool-cap-mb, delivered by the controller link) with --controllers. Returns 0, or -1
 * after one line on stderr. */
static int se__open_sink(struct se_main *m)
{
    struct log_spool_options so = {.cap_bytes = (uint64_t)m->opts.spool_cap_mb << 20};
    int rc;

    if (m->opts.config_file != NULL) {
        if (log_file_open(m->loop, m->opts.data_dir, m->opts.name, NULL, &m->sink) == 0)
            return 0;
        fprintf(stderr, "vigil-se: %s/access.log: cannot open it\n", m->opts.data_dir);
        return -1;
    }
    rc = log_spool_open(m->loop, m->opts.data_dir, m->opts.name, &so, &m->spool);
    if (rc != 0) {
        fprintf(stderr, "vigil-se: %s/spool: %s\n", m->opts.data_dir,
                rc == VIGIL_ECORRUPT ? "damaged (its ack mark holds no number)"
                                     : vigil_strerror(rc));
        return -1;
    }
    m->sink = log_spool_sink(m->spool);
    return 0;
}

/* With --controllers: the per-second metrics, their seq file DIR/metrics.seq and their
 * spool DIR/spool-metrics, capped at a sixteenth of --spool-cap-mb (at least 1 MiB; one
 * virtual service's second is ~0.3-8 KB). Returns 0, or -1 after one line on stderr. */
static int se__open_metrics(struct se_main *m)
{
    uint64_t cap = ((uint64_t)m->opts.spool_cap_mb << 20) / 16;
    struct log_spool_options so = {.cap_bytes = cap < (1u << 20) ? (1u << 20) : cap,
                                   .subdir = VS_METRICS_SPOOL_DIR};
    int rc = log_seq_open(m->opts.data_dir, "metrics.seq", &m->metrics_seq);

    if (rc != 0) {
        fprintf(stderr, "vigil-se: %s/metrics.seq: %s\n", m->opts.data_dir,
                rc == VIGIL_ECORRUPT ? "damaged (holds no sequence number)" : "cannot write it");
        return -1;
    }
    rc = log_spool_open(m->loop, m->opts.data_dir, m->opts.name, &so, &m->metrics_spool);
    if (rc != 0) {
        fprintf(stderr, "vigil-se: %s/%s: %s\n", m->opts.data_dir, VS_METRICS_SPOOL_DIR,
                rc == VIGIL_ECORRUPT ? "damaged (its ack mark holds no number)"
                                     : vigil_strerror(rc));
        return -1;
    }
    if (vs_metrics_create(m->loop, m->opts.name, m->metrics_seq, m->metrics_spool,
                          &m->metrics) != 0) {
        fprintf(stderr, "vigil-se: out of memory\n");
        return -1;
    }
    engine_set_metrics(&m->engine, m->metrics);
    return 0;
}

static void se__raise_fd_limit(struct se_main *m)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        m->engine.max_connections = rl.rlim_cur > 256 ? rl.rlim_cur - 128 : rl.rlim_cur / 2;
    }
}

int main(int argc, char **argv)
{
    static struct se_main m;
    struct se_limits limits;
    struct admin_source src;
    char err[512];
    int rc;

    vlog_init("vigil-se", getenv("VIGIL_SE_DEBUG") ? VLOG_DEBUG : VLOG_INFO);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            se_options_print_help(stdout);
            return fflush(stdout) == 0 ? 0 : 1;
        }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--version") == 0) { /* contract: one line, exit 0 */
            printf("vigil-se %s\n", VIGIL_VERSION);
            return 0;
        }
    if (se_options_parse(argc, argv, &m.opts, err, sizeof err) != 0) {
        fprintf(stderr, "vigil-se: %s\n", vlog_one_line(err));
        return 2;
    }
    if (engine_limits_default(&limits, err, sizeof err) != 0) {
        fprintf(stderr, "vigil-se: %s\n", vlog_one_line(err));
        return 2;
    }
    if (m.opts.config_file == NULL &&
        controller_link_check_files(m.opts.key, m.opts.known_hosts, err, sizeof err) != 0) {
        fprintf(stderr, "vigil-se: %s\n", vlog_one_line(err));
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (se__mkdirs(m.opts.data_dir) != 0) {
        fprintf(stderr, "vigil-se: --data-dir %s: cannot create or write it: %s\n",
                m.opts.data_dir, strerror(errno));
        return 2;
    }
    snprintf(m.last_config_path, sizeof m.last_config_path, "%s/config.json", m.opts.data_dir);
    m.loop = uv_default_loop();
    rc = log_seq_open(m.opts.data_dir, "log.seq", &m.seq);
    if (rc != 0) {
        fprintf(stderr, "vigil-se: %s/log.seq: %s\n", m.opts.data_dir,
                rc == VIGIL_ECORRUPT ? "damaged (holds no sequence number)" : "cannot write it");
        return 2;
    }
    if (se__open_sink(&m) != 0)
        return 2; /* the message is on stderr */
    engine_init(&m.engine, m.loop, m.opts.name, m.sink, m.seq, &limits, se__accept);
    se__raise_fd_limit(&m);
    if (m.opts.config_file != NULL)
        se_state_init(&m.state, SE_STATE_STANDALONE, "--config-file given", time_now_ms());
    else
        se_state_init(&m.state, SE_STATE_CONNECTING, "no controller answered yet", time_now_ms());
    src.engine = &m.engine;
    src.state = se__state;
    src.arg = &m;
    src.controllers = se__controllers;
    rc = admin_start(&m.engine, &m.opts.admin, &src, &m.admin);
    if (rc != 0) {
        fprintf(stderr, "vigil-se: --admin %s:%u: %s\n", m.opts.admin.host, m.opts.admin.port,
                uv_strerror(rc));
        return 2;
    }
    if (m.opts.config_file != NULL) {
        rc = se__load(&m, m.opts.config_file);
        if (rc == VIGIL_EINVAL || rc == VIGIL_ENOMEM)
            return 2; /* the message is on stderr */
        if (rc == VIGIL_EIO) {
            fprintf(stderr, "vigil-se: some virtual services cannot listen (see the log)\n");
            return 2;
        }
    } else {
        if (se__open_metrics(&m) != 0)
            return 2; /* the message is on stderr */
        struct controller_link_params lp = {
            .name = m.opts.name, .key_path = m.opts.key, .known_hosts = m.opts.known_hosts,
            .controllers = (const char (*)[72])m.opts.controllers,
            .n_controllers = m.opts.n_controllers, .heartbeat_ms = m.opts.heartbeat_ms,
            .miss_limit = m.opts.miss_limit, .state = &m.state,
            .apply_config = se__apply_pushed, .config_version = se__config_version,
            .vs_runtime = se__vs_runtime, .arg = &m,
            .spool = m.spool, .metrics_spool = m.metrics_spool};
        se__load_last_pushed(&m);
        if (controller_link_start(m.loop, &lp, &m.link) != 0) {
            fprintf(stderr, "vigil-se: --controllers: cannot start the controller sessions\n");
            return 2;
        }
    }
    uv_signal_init(m.loop, &m.sighup);
    uv_signal_init(m.loop, &m.sigterm);
    uv_signal_init(m.loop, &m.sigint);
    uv_timer_init(m.loop, &m.drain_timer);
    m.sighup.data = m.sigterm.data = m.sigint.data = m.drain_timer.data = &m;
    uv_signal_start(&m.sighup, se__on_sighup, SIGHUP);
    uv_signal_start(&m.sigterm, se__on_stop, SIGTERM);
    uv_signal_start(&m.sigint, se__on_stop, SIGINT);
    vlog_info("se: %s running (%s), admin on %s:%u", m.opts.name, se__state(&m), m.opts.admin.host,
              m.opts.admin.port);
    se__notify("READY=1"); /* the admin endpoint and the config's listeners serve */
    uv_run(m.loop, UV_RUN_DEFAULT);
    http_msg_free_cache();
    se_options_free(&m.opts);
    return 0;
}
