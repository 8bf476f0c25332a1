/* errors.h: the project's error codes. Every function that can fail returns 0 or one of
 * these (negative); vigil_strerror() gives the message. Negative errno values from libuv
 * or libc may also be returned where a comment says so. */
#ifndef VIGIL_ERRORS_H
#define VIGIL_ERRORS_H

enum {
    VIGIL_OK = 0,
    VIGIL_ENOMEM = -1000,   /* out of memory */
    VIGIL_EINVAL = -1001,   /* invalid argument or input */
    VIGIL_EIO = -1002,      /* I/O or database failure */
    VIGIL_ENOTFOUND = -1003,/* no such object */
    VIGIL_ECONFLICT = -1004,/* name taken, or object still referenced */
    VIGIL_ENOTLEADER = -1005,/* this node is not the leader */
    VIGIL_ENOQUORUM = -1006,/* no leader with quorum */
    VIGIL_ECORRUPT = -1007, /* damaged state on disk */
    VIGIL_ESHUTDOWN = -1008,/* the node is stopping */
    VIGIL_ETOOBIG = -1009,  /* input over a size limit */
    VIGIL_ETIMEDOUT = -1010,/* a deadline passed */
    VIGIL_ENOSPC = -1011,   /* the disk is full (under the data dir's free-space reserve) */
    VIGIL__ELAST = -1012
};

/* Static message for CODE (a VIGIL_E* or a negative errno). */
const char *vigil_strerror(int code);

#endif
