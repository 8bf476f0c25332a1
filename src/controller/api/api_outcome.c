/* api_outcome.c: what the REST API answers for each outcome of a store command. */
#include "controller/api/api_outcome.h"

static const unsigned api__status_of_outcome[] = {
    [STORE_OK] = 200,
    [STORE_CREATED] = 201,
    [STORE_REMOVED] = 204,
    [STORE_INVALID] = 400,
    [STORE_NOT_FOUND] = 404,
    [STORE_CONFLICT] = 409,
};

/* An outcome added to store.h without its status here fails the build. */
_Static_assert(sizeof api__status_of_outcome / sizeof api__status_of_outcome[0] ==
                   STORE_OUTCOME_COUNT,
               "api__status_of_outcome must have one status per enum store_outcome value");

unsigned api_status_of(enum store_outcome outcome)
{
    if ((unsigned)outcome >= STORE_OUTCOME_COUNT)
        return 500;
    return api__status_of_outcome[outcome];
}
