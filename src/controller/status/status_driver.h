/* status_driver.h: decides this node's cluster status from what it observes (raft role,
 * leader and term; the peers' reachability and applied indexes; the SEs) and moves the
 * status machine (status.h) accordingly. The leader drives the contract's sequence; a
 * follower mirrors the leader's status from the leader's peer report.
 * All on the loop thread. */
#ifndef VIGIL_STATUS_DRIVER_H
#define VIGIL_STATUS_DRIVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "controller/consensus/cluster.h"
#include "controller/consensus/peers.h"
#include "controller/status/status.h"
#include "controller/store/store.h"

struct status_driver;

/* Called after every move of this node's status. AS_LEADER: the move is the leader's own
 * (this node leads, or led until this move), not a follower's mirror of it. */
typedef void (*status_driver_move_cb)(void *data, enum cluster_status from,
                                      enum cluster_status to, const char *reason, bool as_leader);

/* Starts driving. CLUSTER, PEERS and STORE are borrowed and must outlive the driver.
 * Returns an object owned by the caller (status_driver_close), or NULL. */
struct status_driver *status_driver_start(uv_loop_t *loop, struct cluster *cluster,
                                          struct peers *peers, struct store *store,
                                          uint64_t self_id, unsigned se_wait_s);

void status_driver_set_move_cb(struct status_driver *d, status_driver_move_cb cb, void *data);

/* This node's status machine (borrowed). */
const struct status_machine *status_driver_status(struct status_driver *d);

/* When this node became leader in the current term (epoch ms), or 0 if it does not lead. */
int64_t status_driver_led_since_ms(struct status_driver *d);

/* Re-evaluates now (after a change of role, leader or reachability). */
void status_driver_poke(struct status_driver *d);

/* Tells the driver that member ID just became reachable again (a rejoin). */
void status_driver_member_rejoined(struct status_driver *d, uint64_t id);

void status_driver_close(struct status_driver *d);

#endif
