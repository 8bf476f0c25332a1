/* table.c: column-aligned text tables and terminal-safe text. */
#include "cli/table.h"

#include <stdlib.h>
#include <string.h>

#include "common/errors.h"

#define TABLE__MAX_COLUMNS 16
#define TABLE__MAX_CELL 1024

struct table {
    size_t ncolumns;
    size_t nrows;
    size_t cap_rows;
    char **cells;     /* (nrows + 1) * ncolumns: row 0 is the header */
};

/* Display width of UTF-8 TEXT: one column per code point (good enough for names). */
static size_t table__width(const char *text)
{
    size_t width = 0;
    for (; *text; text++)
        if (((unsigned char)*text & 0xC0) != 0x80)
            width++;
    return width;
}

char *table_sanitize(char *buffer, size_t size, const char *text)
{
    size_t out = 0;
    const unsigned char *p = (const unsigned char *)(text ? text : "");

    while (*p && out + 1 < size) {
        unsigned char c = *p;
        if (c < 0x20 || c == 0x7f) {
            buffer[out++] = '?';
            p++;
        } else if (c == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F) {
            buffer[out++] = '?'; /* a C1 control character */
            p += 2;
        } else if (c < 0x80) {
            buffer[out++] = (char)c;
            p++;
        } else {
            /* Copy one whole UTF-8 sequence or nothing; bytes that are not valid
             * UTF-8 are shown as '?'. */
            size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
            size_t k;
            for (k = 1; k < len; k++)
                if ((p[k] & 0xC0) != 0x80)
                    len = 0;
            if (len == 0 || c > 0xF4) {
                buffer[out++] = '?';
                p++;
                continue;
            }
            if (out + len + 1 > size)
                break;
            memcpy(buffer + out, p, len);
            out += len;
            p += len;
        }
    }
    buffer[out] = '\0';
    return buffer;
}

const char *table_json_text(const json_t *value, char *buffer, size_t size)
{
    if (value == NULL || json_is_null(value))
        snprintf(buffer, size, "-");
    else if (json_is_string(value))
        snprintf(buffer, size, "%s", json_string_value(value));
    else if (json_is_integer(value))
        snprintf(buffer, size, "%lld", (long long)json_integer_value(value));
    else if (json_is_real(value))
        snprintf(buffer, size, "%g", json_real_value(value));
    else if (json_is_true(value))
        snprintf(buffer, size, "true");
    else if (json_is_false(value))
        snprintf(buffer, size, "false");
    else if (json_is_array(value))
        snprintf(buffer, size, "%zu", json_array_size(value));
    else
        snprintf(buffer, size, "{...}");
    return buffer;
}

static int table__append(struct table *table, const char *const *cells)
{
    size_t i, base;

    if (table->nrows + 1 >= table->cap_rows) {
        size_t cap = table->cap_rows ? table->cap_rows * 2 : 16;
        char **grown = realloc(table->cells, cap * table->ncolumns * sizeof *grown);
        if (grown == NULL)
            return VIGIL_ENOMEM;
        table->cells = grown;
        table->cap_rows = cap;
    }
    base = table->nrows * table->ncolumns;
    for (i = 0; i < table->ncolumns; i++) {
        char clean[TABLE__MAX_CELL];
        const char *cell = cells[i] != NULL && cells[i][0] != '\0' ? cells[i] : "-";
        table->cells[base + i] = strdup(table_sanitize(clean, sizeof clean, cell));
        if (table->cells[base + i] == NULL) {
            while (i-- > 0)
                free(table->cells[base + i]);
            return VIGIL_ENOMEM;
        }
    }
    table->nrows++;
    return 0;
}

struct table *table_create(size_t ncolumns, const char *const *headers)
{
    struct table *table;

    if (ncolumns == 0 || ncolumns > TABLE__MAX_COLUMNS)
        return NULL;
    table = calloc(1, sizeof *table);
    if (table == NULL)
        return NULL;
    table->ncolumns = ncolumns;
    if (table__append(table, headers) != 0) {
        table_free(table);
        return NULL;
    }
    return table;
}

void table_free(struct table *table)
{
    size_t i;
    if (table == NULL)
        return;
    for (i = 0; i < table->nrows * table->ncolumns; i++)
        free(table->cells[i]);
    free(table->cells);
    free(table);
}

int table_add_row(struct table *table, const char *const *cells)
{
    return table__append(table, cells);
}

size_t table_row_count(const struct table *table)
{
    return table->nrows - 1;
}

int table_print(const struct table *table, FILE *out)
{
    size_t widths[TABLE__MAX_COLUMNS] = {0};
    size_t row, col;

    for (row = 0; row < table->nrows; row++)
        for (col = 0; col < table->ncolumns; col++) {
            size_t w = table__width(table->cells[row * table->ncolumns + col]);
            if (w > widths[col])
                widths[col] = w;
        }
    for (row = 0; row < table->nrows; row++) {
        for (col = 0; col < table->ncolumns; col++) {
            const char *cell = table->cells[row * table->ncolumns + col];
            fputs(cell, out);
            if (col + 1 < table->ncolumns)
                fprintf(out, "%*s", (int)(widths[col] - table__width(cell) + 2), "");
        }
        fputc('\n', out);
    }
    return ferror(out) ? VIGIL_EIO : 0;
}
