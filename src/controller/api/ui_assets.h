/* ui_assets.h: the web UI's files, built ahead of time (ui/, by esbuild) and compiled into
 * vigild (scripts/embed_files.py writes the table at build time). Read-only data. */
#ifndef VIGIL_UI_ASSETS_H
#define VIGIL_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *name;         /* the file's name under /ui/ ("app.js") */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const char *etag;         /* a quoted hash of the bytes */
    const unsigned char *data;
    size_t len;
};

/* Every file, ended by an entry whose name is NULL. */
extern const struct ui_asset ui_assets[];

#endif
