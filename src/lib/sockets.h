/* sockets.h: the listening sockets that extensions.KPA_sockets declares:
 * creating them, keeping them in a controller (kpa-execd keeps them across
 * the instances' restarts, kpa-run for as long as it runs), and passing them to a start as named handles.
 * Internal: kpa-run and kpa-execd link libkpa-core. */
#ifndef KPA_SOCKETS_H
#define KPA_SOCKETS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kpa/manifest.h"
#include "kpa/process.h"

/* One socket a controller holds: the declaration's (APP_ID, RC_ID, NAME,
 * LISTEN) and its listening fd. */
typedef struct declared_socket {
        char *app_id, *rc_id, *name, *listen;
        int fd;
        bool activate;
        /* kpa-execd's bookkeeping */
        bool watched;              /* in its epoll set, for activation */
        bool live;                 /* its run configuration ran at the last look */
        uint64_t pending_since_ms; /* connections have waited since (0: none) */
        bool warned;               /* the never-accepted warning was logged */
        uint64_t activate_after_ms; /* a failed activation: not before then */
        struct declared_socket *next;
} declared_socket;

/* $KPA_SOCKETS_DIR; else, not root, $XDG_RUNTIME_DIR/kpa-sockets; else
 * KPA_SOCKETS_DIR (/run/kpa/sockets). */
const char *kpa_sockets_dir(void);

/* Create the listening socket D of APP_ID: TCP with SO_REUSEADDR; a unix
 * socket at DIR/APP_ID/PATH (directories made 0755, a stale socket file
 * replaced), owned by UID/GID and mode 0666. The fd, or -errno with ERR
 * naming the socket and the address. */
int kpa_socket_open_declared(const char *app_id, const char *rc_id, const kpa_socket_decl *d,
                             uid_t uid, gid_t gid, kpa_error *err);

/* Remove DIR/APP_ID and the socket files in it (a package removed). */
void kpa_sockets_remove_dir(const char *app_id);

/* Whether the listening socket FD has connections waiting to be accepted. */
KPA_PUBLIC bool kpa_socket_has_pending(int fd); /* kpa/handle.h */

/* "127.0.0.1:40123", "[::1]:80" or the unix path FD listens on; -errno. */
KPA_PUBLIC int kpa_socket_address(int fd, char *buf, size_t len,
                              kpa_error *err); /* kpa/handle.h */

/* The handles of a start of RC: its declared sockets (after the grant
 * check) first, then OPTS's own. CTL keeps the sockets (made on first use),
 * so that every start of RC in CTL's life gets the same ones: kpa-execd's
 * for its whole life, kpa-run's for one start. *OUT is OPTS with the
 * handles replaced; *HANDLES its array, the caller's to free. N_DECLARED:
 * how many come first. */
int sockets_for_start(kpa_control *ctl, const kpa_manifest *m, const kpa_run_config *rc,
                      const kpa_start_options *opts, kpa_start_options *out,
                      kpa_user_handle **handles, size_t *n_declared, kpa_error *err);

/* kpa-execd: make CTL's sockets of APP_ID match its installed manifest
 * (create the missing ones of autorun run configurations and of those
 * started by activation, close the ones no longer declared; all of them
 * and its socket directory when it is not installed). The sockets of other
 * run configurations are made by their first start, and kept. Sockets that cannot be
 * made (not granted, address in use) are reported in ERR, the first of
 * them; the others are still made. 0 or the first -errno. */
int kpa_control_sockets_sync(kpa_control *ctl, const char *app_id, kpa_error *err);
/* The list CTL holds (kpa-execd walks it for activation and warnings). */
declared_socket *kpa_control_sockets(kpa_control *ctl);
/* Put FD (taken back from an adopted instance) into CTL's list, unless one
 * is kept for that declaration already; FD is CTL's either way. */
void sockets_adopt(kpa_control *ctl, const char *app_id, const char *rc_id, const char *name,
                   const char *listen, int fd);
void sockets_free_all(kpa_control *ctl);
/* The epoll set where kpa-execd watches sockets (their "watched" flag): a
 * socket dropped from a list leaves it first. */
void kpa_sockets_set_watch_epoll(int epfd);

#endif
