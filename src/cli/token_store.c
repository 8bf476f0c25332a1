/* token_store.c: the file `vigil login` keeps its API token in. */
#include "cli/token_store.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/errors.h"

static int token_store__fail(char *error, size_t error_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int token_store__fail(char *error, size_t error_size, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error, error_size, fmt, ap);
    va_end(ap);
    return code;
}

void token_store_clear(struct token_store_entry *entry)
{
    volatile unsigned char *p = (volatile unsigned char *)entry;
    size_t i;
    for (i = 0; i < sizeof *entry; i++)
        p[i] = 0;
}

int token_store_path(char *path, size_t size, char *error, size_t error_size)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;

    if (xdg != NULL && xdg[0] == '/') {
        n = snprintf(path, size, "%s/vigil/token", xdg);
    } else {
        if (home == NULL || home[0] != '/') {
            struct passwd *pw = getpwuid(geteuid());
            home = pw != NULL ? pw->pw_dir : NULL;
        }
        if (home == NULL || home[0] != '/')
            return token_store__fail(error, error_size, VIGIL_EINVAL,
                                     "no home directory to keep the token in (set HOME or "
                                     "XDG_CONFIG_HOME)");
        n = snprintf(path, size, "%s/.config/vigil/token", home);
    }
    if (n < 0 || (size_t)n >= size)
        return token_store__fail(error, error_size, VIGIL_EINVAL,
                                 "the token file's path is too long");
    return 0;
}

/* Copies VALUE (LEN bytes) into OUT (SIZE bytes); 0, or -1 when it does not fit. */
static int token_store__copy(char *out, size_t size, const char *value, size_t len)
{
    if (len >= size)
        return -1;
    memcpy(out, value, len);
    out[len] = '\0';
    return 0;
}

/* Fills ENTRY from the file's TEXT (NUL-terminated). */
static int token_store__parse(const char *path, char *text, struct token_store_entry *entry,
                              char *error, size_t error_size)
{
    char *line = text, *next, *eq;
    size_t len;
    int first = 1;
    const char *p;

    for (; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (first) {
            first = 0;
            if (token_store__copy(entry->token, sizeof entry->token, line, len) != 0)
                return token_store__fail(error, error_size, VIGIL_EINVAL,
                                         "%s: the token is too long", path);
            continue;
        }
        eq = strchr(line, '=');
        if (eq == NULL)
            continue; /* not ours: ignored */
        *eq++ = '\0';
        len = strlen(eq);
        if (strcmp(line, "id") == 0)
            token_store__copy(entry->id, sizeof entry->id, eq, len);
        else if (strcmp(line, "username") == 0)
            token_store__copy(entry->username, sizeof entry->username, eq, len);
        else if (strcmp(line, "controller") == 0)
            token_store__copy(entry->controller, sizeof entry->controller, eq, len);
        else if (strcmp(line, "expires") == 0)
            token_store__copy(entry->expires, sizeof entry->expires, eq, len);
    }
    if (entry->token[0] == '\0')
        return token_store__fail(error, error_size, VIGIL_EINVAL,
                                 "%s holds no token (run `vigil login`)", path);
    for (p = entry->token; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return token_store__fail(error, error_size, VIGIL_EINVAL,
                                     "%s: the token holds spaces or control characters", path);
    /* A controller URL or id with control characters would reach a request line. */
    for (p = entry->id; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '/' || *p == '?' || *p == '#' || *p == '%')
            return token_store__fail(error, error_size, VIGIL_EINVAL,
                                     "%s: the token id is malformed", path);
    for (p = entry->controller; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            break;
    if (*p != '\0')
        entry->controller[0] = '\0'; /* not a usable URL: forgotten */
    return 0;
}

int token_store_read(const char *path, struct token_store_entry *entry, char *error,
                     size_t error_size)
{
    char text[TOKEN_STORE_MAX_FILE + 1];
    struct stat st;
    size_t have = 0;
    ssize_t n;
    int fd, rv;

    memset(entry, 0, sizeof *entry);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return VIGIL_ENOTFOUND;
        if (errno == ELOOP)
            return token_store__fail(error, error_size, VIGIL_EINVAL,
                                     "%s is a symbolic link: not used (run `vigil login`)",
                                     path);
        return token_store__fail(error, error_size, VIGIL_EIO, "cannot read %s: %s", path,
                                 strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        rv = token_store__fail(error, error_size, VIGIL_EIO, "cannot read %s: %s", path,
                               strerror(errno));
        close(fd);
        return rv;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
        close(fd);
        return token_store__fail(error, error_size, VIGIL_EINVAL,
                                 "%s is not a regular file of yours: not used", path);
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return token_store__fail(error, error_size, VIGIL_EINVAL,
                                 "%s may be read by others (mode %04o): not used; run `chmod "
                                 "600 %s`, or `vigil login` again", path,
                                 (unsigned)(st.st_mode & 07777), path);
    }
    while (have < sizeof text - 1) {
        n = read(fd, text + have, sizeof text - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rv = token_store__fail(error, error_size, VIGIL_EIO, "cannot read %s: %s", path,
                                   strerror(errno));
            close(fd);
            memset(text, 0, sizeof text);
            return rv;
        }
        if (n == 0)
            break;
        have += (size_t)n;
    }
    close(fd);
    text[have] = '\0';
    if (have >= sizeof text - 1) {
        memset(text, 0, sizeof text);
        return token_store__fail(error, error_size, VIGIL_EINVAL,
                                 "%s is larger than %d bytes: not used", path,
                                 TOKEN_STORE_MAX_FILE);
    }
    rv = token_store__parse(path, text, entry, error, error_size);
    memset(text, 0, sizeof text);
    if (rv != 0)
        token_store_clear(entry);
    return rv;
}

/* mkdir DIR with mode 0700 unless it is there; with PRIVATE, a directory that is there
 * must be ours and is set to 0700. */
static int token_store__directory(const char *dir, int private_dir, char *error,
                                  size_t error_size)
{
    struct stat st;

    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return token_store__fail(error, error_size, VIGIL_EIO, "cannot create %s: %s", dir,
                                 strerror(errno));
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return token_store__fail(error, error_size, VIGIL_EIO, "%s is not a directory", dir);
    if (!private_dir)
        return 0;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
        return token_store__fail(error, error_size, VIGIL_EINVAL,
                                 "%s is not a directory of yours: the token is not kept there",
                                 dir);
    if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0)
        return token_store__fail(error, error_size, VIGIL_EIO, "cannot chmod 700 %s: %s", dir,
                                 strerror(errno));
    return 0;
}

/* Creates every missing directory above PATH's file (0700); PATH's own directory is made
 * private. */
static int token_store__directories(const char *path, char *error, size_t error_size)
{
    char dir[TOKEN_STORE_PATH_MAX];
    char *slash, *p;
    int rv;

    if (strlen(path) >= sizeof dir)
        return token_store__fail(error, error_size, VIGIL_EINVAL, "path too long");
    strcpy(dir, path);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return token_store__fail(error, error_size, VIGIL_EINVAL, "%s: no directory", path);
    *slash = '\0';
    for (p = dir + 1; *p; p++) {
        struct stat st;
        if (*p != '/')
            continue;
        *p = '\0';
        if (stat(dir, &st) != 0) {
            rv = token_store__directory(dir, 0, error, error_size);
            if (rv != 0)
                return rv;
        }
        *p = '/';
    }
    return token_store__directory(dir, 1, error, error_size);
}

int token_store_write(const char *path, const struct token_store_entry *entry, char *error,
                      size_t error_size)
{
    char tmp[TOKEN_STORE_PATH_MAX + 32];
    char text[TOKEN_STORE_MAX_FILE];
    size_t len, done = 0;
    ssize_t n;
    int fd, rv, len_i;

    rv = token_store__directories(path, error, error_size);
    if (rv != 0)
        return rv;
    len_i = snprintf(text, sizeof text, "%s\nid=%s\nusername=%s\ncontroller=%s\nexpires=%s\n",
                     entry->token, entry->id, entry->username, entry->controller,
                     entry->expires);
    if (len_i < 0 || (size_t)len_i >= sizeof text)
        return token_store__fail(error, error_size, VIGIL_EINVAL, "the token is too long");
    len = (size_t)len_i;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    unlink(tmp); /* a leftover of an interrupted login of this pid */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        memset(text, 0, sizeof text);
        return token_store__fail(error, error_size, VIGIL_EIO, "cannot create %s: %s", tmp,
                                 strerror(errno));
    }
    rv = 0;
    if (fchmod(fd, 0600) != 0)
        rv = token_store__fail(error, error_size, VIGIL_EIO, "cannot chmod %s: %s", tmp,
                               strerror(errno));
    while (rv == 0 && done < len) {
        n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rv = token_store__fail(error, error_size, VIGIL_EIO, "cannot write %s: %s", tmp,
                                   strerror(errno));
        else
            done += (size_t)n;
    }
    memset(text, 0, sizeof text);
    if (rv == 0 && fsync(fd) != 0)
        rv = token_store__fail(error, error_size, VIGIL_EIO, "cannot write %s: %s", tmp,
                               strerror(errno));
    if (close(fd) != 0 && rv == 0)
        rv = token_store__fail(error, error_size, VIGIL_EIO, "cannot write %s: %s", tmp,
                               strerror(errno));
    if (rv == 0 && rename(tmp, path) != 0)
        rv = token_store__fail(error, error_size, VIGIL_EIO, "cannot rename %s to %s: %s", tmp,
                               path, strerror(errno));
    if (rv != 0)
        unlink(tmp);
    return rv;
}

int token_store_remove(const char *path, char *error, size_t error_size)
{
    if (unlink(path) != 0 && errno != ENOENT)
        return token_store__fail(error, error_size, VIGIL_EIO, "cannot remove %s: %s", path,
                                 strerror(errno));
    return 0;
}
