#include "common/errors.h"

#include <string.h>

static const char *const vigil__messages[] = {
    "out of memory",
    "invalid input",
    "I/O or database failure",
    "not found",
    "conflict",
    "not the leader",
    "no leader with quorum",
    "damaged state on disk",
    "shutting down",
    "input too large",
    "timed out",
    "disk full",
};

/* One message per code from VIGIL_ENOMEM down to VIGIL__ELAST (excluded): a code added to
 * errors.h without its message here fails the build. */
_Static_assert(sizeof vigil__messages / sizeof vigil__messages[0] ==
                   (size_t)(VIGIL_ENOMEM - VIGIL__ELAST),
               "vigil__messages must have one message per VIGIL_E* code");

const char *vigil_strerror(int code)
{
    if (code == 0)
        return "success";
    if (code <= VIGIL_ENOMEM && code > VIGIL__ELAST)
        return vigil__messages[VIGIL_ENOMEM - code];
    if (code < 0 && code > -4096)
        return strerror(-code);
    return "unknown error";
}
