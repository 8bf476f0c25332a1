/* se_options.h: the vigil-se command line (contract "vigil-se"). */
#ifndef VIGIL_SE_OPTIONS_H
#define VIGIL_SE_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/netaddr.h"

#define SE_OPTIONS_CONTROLLERS_MAX 16
#define SE_OPTIONS_CONFIG_MAX 64 /* settings in a --config file */

struct se_options {
    const char *name;        /* borrowed from argv */
    const char *data_dir;
    const char *key;         /* NULL when not given */
    const char *known_hosts;
    const char *config_file; /* NULL: controller mode */
    struct netaddr admin;
    size_t n_controllers;
    char controllers[SE_OPTIONS_CONTROLLERS_MAX][NETADDR_HOST_MAX + 8]; /* "HOST:PORT" */
    uint32_t heartbeat_ms;
    uint32_t miss_limit;
    uint32_t spool_cap_mb;   /* --spool-cap-mb: the log spool's size cap in MiB (1024) */
    int have_admin;          /* --admin was given */
    /* The values read from --config FILE (owned, for the process's life: the fields above
     * may point into them). */
    char *config_text[SE_OPTIONS_CONFIG_MAX];
    size_t n_config_text;
};

/* Parses ARGV (borrowed: OUT points into it) into OUT, after the INI file named by
 * --config FILE if any ("name = value", the flag without its dashes; flags win). Flags take
 * "--flag VALUE" or "--flag=VALUE". Returns 0, or VIGIL_EINVAL with a one-line message naming the bad flag in
 * ERR (ERRLEN bytes). */
int se_options_parse(int argc, char **argv, struct se_options *out, char *err, size_t errlen);

/* Frees what se_options_parse kept of the --config file (the fields pointing into it must
 * not be used after). Also after a failed parse (then a no-op). */
void se_options_free(struct se_options *o);

/* Writes the --help text to OUT (borrowed): the flags se_options_parse accepts, from the
 * same table, with their defaults. */
void se_options_print_help(FILE *out);

#endif
