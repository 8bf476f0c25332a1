/* options.h: vigild's settings from the command line and the --config INI file
 * (contract "vigild"). Flags win over the file. */
#ifndef VIGIL_OPTIONS_H
#define VIGIL_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

#include "common/netaddr.h"
#include "controller/consensus/cluster.h"

struct vigild_options {
    char data_dir[512];
    uint64_t id;
    struct netaddr raft;
    struct netaddr api;
    struct netaddr se_listen;
    char name[128];
    char cluster_name[128];
    struct cluster_member cluster[CLUSTER_MAX_NODES]; /* --cluster; n_cluster == 0: none */
    unsigned n_cluster;
    unsigned heartbeat_ms;
    unsigned election_timeout_ms;
    unsigned se_wait_s;
    char vip[64];
    char vip_dev[64];
    char tls_cert[512];          /* PEM file, or "" for the cluster's self-signed one */
    char tls_key[512];
    int no_tls;                  /* serve plain HTTP */
    int rebuild;                 /* --rebuild: set damaged raft state aside, take the leader's */
    char admin_password_file[512];
    unsigned log_retention_mb;    /* the log store's size bound (DIR/logs.db) */
    unsigned log_retention_hours; /* ... and its age bound */
    /* Which of the identity flags were given explicitly. */
    int id_set, raft_set, name_set;
    /* Hidden, for tests and benchmarks: not part of the contract. */
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    /* Test-only knobs: settable only in a build with -Dtest_knobs=true (VIGIL_TEST_KNOBS);
     * elsewhere they stay 0 and their flags are unknown. */
    unsigned test_apply_delay_ms;
    int test_fast_password_hash; /* Argon2id at its minimum limits (tests only) */
    /* The leader answers writes with the index before the entry's own (tests only: a
     * forwarding node must then not relay 201, the entry there is another write). */
    int test_wrong_answer_index;
    /* The SE channel's session bound, lower than its 4,096 (tests only; 0: the default). */
    unsigned test_se_max_sessions;
    /* The log store's writer waits this long before each commit (tests only: a batch stays
     * unacknowledged that long; 0: none). */
    unsigned test_log_commit_delay_ms;
    /* The events the store keeps, fewer than its 100,000 (tests only; 0: the default). */
    unsigned test_events_keep;
    int verbose;
};

/* Fills OPTS from ARGV (and the INI file named by --config). Returns 0, or VIGIL_EINVAL
 * with a one-line reason in ERR (the caller prints it and exits 2). */
int options_parse(struct vigild_options *opts, int argc, char **argv, char *err, size_t errlen);

/* Writes the --help text to OUT (borrowed), made from the option table that options_parse
 * reads, so that the flags it lists are the ones accepted (hidden and test-only ones left
 * out). The man page vigild(8) is checked against it (tests/system/test_manpages.py). */
void options_print_help(FILE *out);

#endif
