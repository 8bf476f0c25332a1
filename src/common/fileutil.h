/* fileutil.h: small file helpers. */
#ifndef VIGIL_FILEUTIL_H
#define VIGIL_FILEUTIL_H

/* Writes TEXT to DIR/NAME atomically and durably: a temporary file (mode 0600), fsync,
 * rename over NAME, fsync of DIR. A crash leaves the old file or the new one, never a
 * mix. Returns 0 or a negative errno. */
int file_write_atomic(const char *dir, const char *name, const char *text);

#endif
