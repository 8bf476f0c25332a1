/* vlog.h: one-line log records on stderr: "2026-11-28T06:00:00.123Z vigild[1] INFO: text". */
#ifndef VIGIL_VLOG_H
#define VIGIL_VLOG_H

enum vlog_level { VLOG_DEBUG = 0, VLOG_INFO, VLOG_WARN, VLOG_ERROR };

/* Sets the program tag (borrowed, must outlive all logging) and the minimum level. */
void vlog_init(const char *tag, enum vlog_level min_level);

/* Makes S (owned by the caller, NUL-terminated) printable on one line, in place: every
 * control byte (newline, tab, escape, DEL...) becomes '?'. Error texts that quote damaged
 * input (a parser's "near '...'") would otherwise split a one-line message. Returns S. */
char *vlog_one_line(char *s);

void vlog(enum vlog_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define vlog_debug(...) vlog(VLOG_DEBUG, __VA_ARGS__)
#define vlog_info(...) vlog(VLOG_INFO, __VA_ARGS__)
#define vlog_warn(...) vlog(VLOG_WARN, __VA_ARGS__)
#define vlog_error(...) vlog(VLOG_ERROR, __VA_ARGS__)

#endif
