/* sd_notify.h: systemd's readiness protocol, without libsystemd: one datagram with
 * "READY=1" (or "STOPPING=1", "RELOADING=1", "STATUS=...") to the AF_UNIX socket named by
 * $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Under a unit of
 * Type=notify, systemd considers the service started once READY=1 arrives. */
#ifndef VIGIL_SD_NOTIFY_H
#define VIGIL_SD_NOTIFY_H

/* Sends STATE (borrowed; newline-separated KEY=VALUE lines) to $NOTIFY_SOCKET. Returns 1
 * when sent, 0 when the variable is unset (not under systemd: nothing to do), or a negative
 * errno when it could not be sent (the caller logs it; never fatal). Any thread; does not
 * block (a datagram to a local socket). */
int sd_notify_send(const char *state);

#endif
