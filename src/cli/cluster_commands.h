/* cluster_commands.h: `vigil cluster status` and `vigil cluster known-hosts`. Each runs
 * on the calling thread, blocking on its requests, and prints on CTX->out. */
#ifndef VIGIL_CLI_CLUSTER_COMMANDS_H
#define VIGIL_CLI_CLUSTER_COMMANDS_H

#include "cli/command_context.h"

/* Prints the cluster's status from GET /api/cluster/runtime (plus GET /api/cluster for
 * the cluster's name and the nodes' addresses): a summary, a table of the nodes (id,
 * name, role, state, applied index, API address) and the last status moves. With --json
 * it prints the runtime answer as received. Returns 0 or a negative VIGIL_E* with
 * CTX->error set. */
int cluster_commands_status(struct command_context *ctx);

/* Prints an OpenSSH known_hosts file from GET /api/cluster: a comment line, then
 * `[host]:port KEYTYPE BASE64` for every node with an `se_address` and `se_host_key`
 * (a node without them is left out with a warning on stderr). With --json it prints the
 * /api/cluster answer as received. Returns 0, or VIGIL_ENOTFOUND when no node could be
 * listed, or another negative VIGIL_E*, with CTX->error set. */
int cluster_commands_known_hosts(struct command_context *ctx);

#endif
