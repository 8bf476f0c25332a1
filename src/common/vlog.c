#include "common/vlog.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/timeutil.h"

static const char *vlog__tag = "vigil";
static enum vlog_level vlog__min = VLOG_INFO;

void vlog_init(const char *tag, enum vlog_level min_level)
{
    vlog__tag = tag;
    vlog__min = min_level;
}

char *vlog_one_line(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
    return s;
}

void vlog(enum vlog_level level, const char *fmt, ...)
{
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    char ts[TIME_RFC3339_LEN];
    char line[2048];
    va_list ap;

    if (level < vlog__min)
        return;
    time_format_rfc3339(time_now_ms(), ts);
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    vlog_one_line(line);
    /* One fprintf per record so concurrent writers do not interleave within a line. */
    fprintf(stderr, "%s %s %s: %s\n", ts, vlog__tag, names[level], line);
}
