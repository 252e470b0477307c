/* handles.h: the launcher's side of user handles (see kpa/handle.h for the
 * application's side). */
#ifndef KPA_HANDLES_H
#define KPA_HANDLES_H

#include <stddef.h>

#include "kpa/error.h"

/* "LISTEN_FDNAMES=a:b:c" for NAMES (newly allocated), or NULL with ERR
 * filled when a name is invalid (naming it and the rule). */
char *kpa_handles_fdnames_env(const char *const *names, size_t n, kpa_error *err);

/* May FD be handed to an application as the handle NAME? Not when it is a
 * directory (also an O_PATH one): openat() relative to it would reach host
 * files outside the application's private root. 0, or -EISDIR (or -errno
 * of fstat) with ERR naming the handle. */
int kpa_handle_fd_check(int fd, const char *name, kpa_error *err);

/* In the child, just before exec (no malloc, async-signal-safe): put FDS[i]
 * at fd 3+i (coping with any overlap between the two ranges), clear
 * FD_CLOEXEC on them, and close every fd >= 3+N. fds 0-2 are untouched.
 * Returns 0 or -errno. */
int kpa_handles_install(const int *fds, size_t n);

#endif
