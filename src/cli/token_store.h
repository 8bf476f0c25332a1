/* token_store.h: the API token `vigil login` keeps for later commands (contract "vigil
 * (CLI)": ~/.config/vigil/token, mode 0600, in a directory of mode 0700).
 *
 * The file's first line is the token alone (so `head -n1` gives something usable as
 * $VIGIL_TOKEN); the lines after it are `key=value` facts about it: `id` (what `vigil
 * logout` revokes with DELETE /api/token/<id>), `username`, `controller` (where it was
 * issued) and `expires`. Its directory is $XDG_CONFIG_HOME/vigil when XDG_CONFIG_HOME is
 * an absolute path, else $HOME/.config/vigil (the password database's home when HOME is
 * unset).
 *
 * A file that is not a regular file owned by the caller, or that others may read or
 * write, is refused rather than used. Single-threaded; plain blocking file I/O. */
#ifndef VIGIL_CLI_TOKEN_STORE_H
#define VIGIL_CLI_TOKEN_STORE_H

#include <stddef.h>

/* Room for a path, and the largest file read. */
#define TOKEN_STORE_PATH_MAX 4096
#define TOKEN_STORE_MAX_FILE 8192

struct token_store_entry {
    char token[512];
    char id[128];
    char username[128];
    char controller[1024];
    char expires[64];
};

/* The token file's path into PATH (SIZE bytes). Returns 0, or VIGIL_EINVAL with a
 * one-line reason in ERROR (ERROR_SIZE bytes) when no home directory is known. */
int token_store_path(char *path, size_t size, char *error, size_t error_size);

/* Reads the file at PATH into ENTRY (owned by the caller, zeroed first). Returns 0;
 * VIGIL_ENOTFOUND when there is no file (ERROR untouched); VIGIL_EINVAL when it exists
 * but is unsafe (mode, owner, not a regular file) or holds no token; VIGIL_EIO when it
 * cannot be read; with the reason, naming PATH, in ERROR. */
int token_store_read(const char *path, struct token_store_entry *entry, char *error,
                     size_t error_size);

/* Writes ENTRY (borrowed) to PATH atomically (a 0600 temporary file, synced, renamed over
 * PATH), creating the missing directories with mode 0700 and setting PATH's own directory
 * to 0700. Returns 0, or VIGIL_EIO / VIGIL_EINVAL with the reason in ERROR. */
int token_store_write(const char *path, const struct token_store_entry *entry, char *error,
                      size_t error_size);

/* Removes PATH. Returns 0 (also when it was not there) or VIGIL_EIO with the reason in
 * ERROR. */
int token_store_remove(const char *path, char *error, size_t error_size);

/* Overwrites ENTRY's bytes with zeros (the token is a secret). */
void token_store_clear(struct token_store_entry *entry);

#endif
