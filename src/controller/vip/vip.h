/* vip.h: the cluster IP (--vip ADDR/PREFIX --vip-dev IFACE). Only the leader holds it.
 *
 * The module adds and removes the address with rtnetlink (RTM_NEWADDR / RTM_DELADDR
 * through libmnl) and announces it with gratuitous ARP (an AF_PACKET socket) when it
 * takes it. It decides on its own, from the cluster's views, on every vip_update() and on
 * a short timer of its own:
 *   - it takes the address only when this node leads with quorum
 *     (cluster_is_leader() && cluster_leader_has_quorum()), an entry of the current term
 *     is committed (cluster_barrier() succeeded in that term), and the node has led for at
 *     least one election timeout plus two heartbeats in that term (by then an isolated
 *     old leader has certainly seen that it lost its majority and dropped the address);
 *   - it drops the address at once when raft says this node does not lead or the term
 *     changes, when cluster_leader_has_quorum() has stayed false for two heartbeats (it
 *     reads false for up to a heartbeat after each of raft's contact checks, so one false
 *     reading is not a loss), or when the loop stalled (a paused process cannot trust
 *     its view); it then needs a fresh barrier (and, after a new term, the hold-off).
 *     An isolated leader thus drops it at most about one election timeout plus three
 *     heartbeats after it was cut off; the earliest a new leader takes it is two election
 *     timeouts plus two heartbeats after the cut (its election timer, then the hold-off);
 *   - at start it removes a copy left on the device (a crash left it);
 *   - vip_close() removes it (a clean stop, called before raft closes).
 * IPv4 only. Netlink requests are blocking but answered by the kernel within
 * microseconds (with a 1 s receive timeout as a guard).
 * Missing CAP_NET_ADMIN or a missing device: one error line in the log, the module stays
 * inert (never holds the address) and the rest of the node works as usual.
 * All functions run on the loop thread. */
#ifndef VIGIL_VIP_H
#define VIGIL_VIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "controller/consensus/cluster.h"

struct vip;

struct vip_config {
    const char *cidr;      /* "ADDR/PREFIX" (IPv4, prefix 1-32); borrowed for vip_open only */
    const char *dev;       /* interface name; borrowed for vip_open only */
    unsigned election_timeout_ms; /* raft's (--election-timeout-ms) */
    unsigned heartbeat_ms;        /* raft's (--heartbeat-ms) */
};

/* Parses "ADDR/PREFIX" into *ADDR (network byte order) and *PREFIX. Returns 0, or
 * VIGIL_EINVAL with a one-line reason in ERR. Pure function, any thread. */
int vip_parse(const char *cidr, uint32_t *addr, unsigned *prefix, char *err, size_t errlen);

/* Starts managing the cluster IP for this node. CLUSTER is borrowed and must outlive the
 * returned object (close it with vip_close before cluster_close). Removes a stale copy of
 * the address from the device at once.
 * Returns 0 and *OUT (owned by the caller, released by vip_close), also when the address
 * cannot be managed (no CAP_NET_ADMIN, no such device): that is logged once and the
 * object stays inert. Returns VIGIL_EINVAL with a reason in ERR for a malformed CIDR or
 * device name, VIGIL_ENOMEM when out of memory. */
int vip_open(uv_loop_t *loop, struct cluster *cluster, const struct vip_config *cfg,
             struct vip **out, char *err, size_t errlen);

/* Re-evaluates now (call it on every change of role, leader or term). Takes or drops the
 * address as described above. */
void vip_update(struct vip *v);

/* True while this node holds the address (V may be NULL: false). */
bool vip_held(const struct vip *v);

/* Removes the address if held, stops the timers, and frees V once its handles are closed
 * (V must not be used after this call). */
void vip_close(struct vip *v);

#endif
