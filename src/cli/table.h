/* table.h: plain-text tables for the CLI's human output, and the sanitising of text that
 * came from a controller before it reaches a terminal. Single-threaded; no I/O except
 * table_print. */
#ifndef VIGIL_CLI_TABLE_H
#define VIGIL_CLI_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

struct table;

/* A table with NCOLUMNS (1..16) columns headed by HEADERS (borrowed, copied). Returns NULL
 * when out of memory or NCOLUMNS is out of range; the caller frees it with table_free. */
struct table *table_create(size_t ncolumns, const char *const *headers);

/* Frees TABLE (owned by the caller); NULL is fine. */
void table_free(struct table *table);

/* Appends a row of the table's column count of CELLS (borrowed; each is sanitised and
 * copied; NULL prints as "-"). Returns 0 or VIGIL_ENOMEM. */
int table_add_row(struct table *table, const char *const *cells);

/* Rows appended so far. */
size_t table_row_count(const struct table *table);

/* Writes TABLE to OUT: the header line, then one line per row, columns left-aligned and
 * separated by two spaces, no trailing blanks. Returns 0 or VIGIL_EIO on a write error. */
int table_print(const struct table *table, FILE *out);

/* Copies TEXT (borrowed, NULL gives "") into BUFFER (SIZE > 0 bytes, always
 * NUL-terminated, cut at SIZE - 1 on a character boundary) with every control character
 * (C0, DEL, and C1 in UTF-8) replaced by '?', so that a name from the API cannot drive
 * the terminal or forge a line. Returns BUFFER. */
char *table_sanitize(char *buffer, size_t size, const char *text);

/* The text of a JSON scalar for a cell, in BUFFER (SIZE bytes): a string as is, an
 * integer in decimal, a real with up to 6 significant digits, true/false, and "-" for
 * null or a missing value (VALUE NULL); an array gives its length and an object "{...}".
 * Returns BUFFER. */
const char *table_json_text(const json_t *value, char *buffer, size_t size);

#endif
