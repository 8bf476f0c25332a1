/* health_probe.h: active health checks of one server under one monitor (TCP connect, or
 * an HTTP request whose status class must be among the monitor's codes), every
 * send_interval, each bounded by receive_timeout. Results feed the server's struct health
 * (health.h); a change of state calls engine_server_health_changed. Loop thread only. */
#ifndef VIGIL_SE_HEALTH_PROBE_H
#define VIGIL_SE_HEALTH_PROBE_H

#include <uv.h>

#include "se/health.h"
#include "se/se_config.h"

struct se_server;
struct probe;

/* Starts checking server SRV (borrowed; it must stop the probe before going) with a copy
 * of monitor M. The first check starts at once. Returns the probe (stopped and freed by
 * probe_stop) or NULL when out of memory. */
struct probe *probe_start(uv_loop_t *loop, struct se_server *srv, const struct se_monitor_config *m);

/* The probe's current health (borrowed, valid until probe_stop). */
const struct health *probe_health(const struct probe *p);

/* The monitor's name (borrowed, valid until probe_stop). */
const char *probe_monitor_name(const struct probe *p);

/* Stops P; a check in flight is abandoned; memory goes once the handles closed. */
void probe_stop(struct probe *p);

#endif
