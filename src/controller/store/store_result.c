/* store_result.c: the outcome of a command (store.h) and how a handler refuses one
 * (store-int.h): below every command handler, so that none calls back into another. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "controller/store/store-int.h"

static const char *const store__outcome_names[] = {
    [STORE_OK] = "ok",
    [STORE_CREATED] = "created",
    [STORE_REMOVED] = "removed",
    [STORE_INVALID] = "invalid",
    [STORE_NOT_FOUND] = "not found",
    [STORE_CONFLICT] = "conflict",
};

/* An outcome added to store.h without its name here fails the build. */
_Static_assert(sizeof store__outcome_names / sizeof store__outcome_names[0] ==
                   STORE_OUTCOME_COUNT,
               "store__outcome_names must have one name per enum store_outcome value");

const char *store_outcome_name(enum store_outcome outcome)
{
    if ((unsigned)outcome >= STORE_OUTCOME_COUNT)
        return "unknown outcome";
    return store__outcome_names[outcome];
}

int store_outcome_refused(enum store_outcome outcome)
{
    return outcome >= STORE_INVALID;
}

void store_result_clear(struct store_result *res)
{
    json_decref(res->body);
    memset(res, 0, sizeof *res);
}

void store__refuse(struct store_result *res, enum store_outcome refusal, const char *fmt, ...)
{
    va_list ap;
    res->outcome = refusal;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
}
