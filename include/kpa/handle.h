/* kpa/handle.h: the application's side of user handles. kpa passes each
 * handle as an fd (3, 4, ...) with the sd_listen_fds(3) protocol:
 * LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID. */
#ifndef KPA_HANDLE_H
#define KPA_HANDLE_H

#include <stdbool.h>
#include <stddef.h>

#include <kpa/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The fd of the handle called NAME, or -1 with errno ENOENT. The Linux form
 * of KosTaskLookupResource. Does not change the environment. */
KPA_PUBLIC int kpa_lookup_handle(const char *name);

/* Is NAME a valid handle name (1-255 printable ASCII characters, no ':')? */
KPA_PUBLIC int kpa_handle_name_valid(const char *name);

/* ---- launcher side: turning command-line handle specs into fds ---- */

/* Open the fd that SPEC describes and return it (O_CLOEXEC, >= 3), or a
 * negative errno with ERR naming SPEC and the cause. -EINVAL means SPEC
 * itself is malformed. SPEC is one of:
 *   fd:N                    duplicate fd N, inherited by the caller
 *   file:PATH               open PATH read-only (not a directory)
 *   file+rw:PATH            open an existing PATH read-write
 *   file+a:PATH             open PATH for appending, creating it (0644)
 *   listen:tcp:HOST:PORT    a listening TCP socket; HOST is an IPv4 literal,
 *                           [IPv6] literal, a name, or empty/'*' for any;
 *                           PORT 0..65535 (0: the kernel picks one)
 *   listen:unix:PATH        a listening Unix stream socket at PATH (a stale
 *                           socket there is replaced; '@NAME': abstract)
 *   connect:unix:PATH       a Unix stream socket connected to PATH
 *   connect:tcp:HOST:PORT   a TCP socket connected to HOST:PORT */
KPA_PUBLIC int kpa_handle_open_spec(const char *spec, kpa_error *err);

/* Where the socket FD is bound, as text: "127.0.0.1:40123", "[::1]:80" or
 * a unix path; -errno (-EAFNOSUPPORT for another family) with ERR filled. */
KPA_PUBLIC int kpa_socket_address(int fd, char *buf, size_t len, kpa_error *err);
/* Whether the listening socket FD has connections waiting to be accepted. */
KPA_PUBLIC bool kpa_socket_has_pending(int fd);

/* Split ARG, written "NAME=SPEC", into newly allocated *NAME and *SPEC
 * (free() both). -EINVAL with ERR filled when there is no '=', NAME is not
 * a valid handle name or SPEC is empty. SPEC is not opened here. */
KPA_PUBLIC int kpa_handle_parse_arg(const char *arg, char **name, char **spec, kpa_error *err);

#ifdef __cplusplus
}
#endif
#endif
