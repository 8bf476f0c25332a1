/* api_outcome.h: where the store's outcomes become HTTP. */
#ifndef VIGIL_API_OUTCOME_H
#define VIGIL_API_OUTCOME_H

#include "controller/store/store.h"

/* The HTTP status that answers a command with OUTCOME: 200, 201, 204 (no body), 400, 404,
 * 409; 500 for a value that is no outcome. The one place outcomes become HTTP. */
unsigned api_status_of(enum store_outcome outcome);

#endif
