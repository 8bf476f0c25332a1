/* health_probe.h: active health checks of one server under one monitor (TCP connect, or
 * an HTTP request whose status class must be among the monitor's codes), every
 * send_interval, each bounded by receive_timeout. Results feed the probe's struct health
 * (health.h); a change of state calls the probe's callback. Loop thread only. */
#ifndef VIGIL_SE_HEALTH_PROBE_H
#define VIGIL_SE_HEALTH_PROBE_H

#include <uv.h>

#include "se/health.h"
#include "se/se_config.h"

struct probe;

/* Called when the probe's health changed (probe_health tells the new one). */
typedef void probe_change_fn(void *arg);

/* Starts checking the server at ADDR (copied; the monitor's port, when set, replaces its
 * port) with a copy of monitor M; LABEL and POOL_KEY (borrowed, must outlive the probe)
 * name it in log lines; ON_CHANGE(ARG) is called on every change of health. The first
 * check starts at once. Returns the probe (stopped and freed by probe_stop) or NULL when
 * out of memory. */
struct probe *probe_start(uv_loop_t *loop, const struct sockaddr_in *addr, const char *label,
                          const char *pool_key, const struct se_monitor_config *m,
                          probe_change_fn *on_change, void *arg);

/* The probe's current health (borrowed, valid until probe_stop). */
const struct health *probe_health(const struct probe *p);

/* The monitor's name (borrowed, valid until probe_stop). */
const char *probe_monitor_name(const struct probe *p);

/* Stops P; a check in flight is abandoned; memory goes once the handles closed. */
void probe_stop(struct probe *p);

#endif
