/* kpa/execd.h: the supervising ExecutionManager service (kpa-execd) as one
 * library call. kpa_execd_run() listens on a socket, speaks kpa-execd's
 * protocol (the one kpa_control_connect() and kpa-run --socket use) and
 * supervises the instances it starts until SIGTERM or SIGINT. kpa-execd(8)
 * is this call behind option parsing; a C program can embed the same
 * service (DESIGN.md section 6). */
#ifndef KPA_EXECD_H
#define KPA_EXECD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kpa/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KPA_EXECD_STATE_DIR_DEFAULT "/run/kpa"
#define KPA_EXECD_GROUP_DEFAULT "kpa"
#define KPA_EXECD_MAX_CONNECTIONS_DEFAULT 1024
#define KPA_EXECD_MAX_CONNECTIONS_PER_USER_DEFAULT 32
#define KPA_EXECD_IDLE_TIMEOUT_DEFAULT 60
#define KPA_EXECD_NETNS_POOL_DEFAULT 4
#define KPA_EXECD_NETNS_POOL_MAX 64

/* What SIGTERM and SIGINT do to the instances (kpa-execd --on-exit). */
typedef enum kpa_execd_on_exit {
        KPA_EXECD_ON_EXIT_AUTO, /* KEEP when systemd is PID 1, else STOP */
        KPA_EXECD_ON_EXIT_KEEP, /* exit, leave them running for the next service to adopt */
        KPA_EXECD_ON_EXIT_STOP, /* stop them all (Normal; a second signal: Forced), then exit */
} kpa_execd_on_exit;

typedef enum kpa_execd_log_level {
        KPA_EXECD_LOG_ERROR,
        KPA_EXECD_LOG_WARNING,
        KPA_EXECD_LOG_INFO,
        KPA_EXECD_LOG_DEBUG,
} kpa_execd_log_level;

/* A message of LEVEL (one line, no newline) for the caller to log. */
typedef void (*kpa_execd_log_fn)(kpa_execd_log_level level, const char *message, void *userdata);
/* A change of the service's life: kpa_execd_run() calls it with "READY=1"
 * once it listens and has adopted and autorun what it should, and with
 * "STOPPING=1" when a signal makes it stop (the sd_notify(3) words). */
typedef void (*kpa_execd_notify_fn)(const char *state, void *userdata);

typedef struct kpa_execd_config {
        size_t struct_size; /* sizeof, set by kpa_execd_config_init() (see kpa/error.h) */
        /* where to listen: LISTEN_FD when >= 0 (a listening SOCK_SEQPACKET
         * socket, e.g. systemd's; taken over, closed at the end, never
         * unlinked), else SOCKET_PATH (NULL: $KPA_EXECD_SOCKET, else
         * KPA_EXECD_SOCKET_DEFAULT), made and removed again at the end */
        const char *socket_path;
        int listen_fd;
        const char *root;      /* the store; NULL: kpa_store_default_root(NULL) */
        const char *state_dir; /* records, exit statuses, logs; one service each */
        const char *group;     /* its members may start processes */
        kpa_execd_on_exit on_exit;
        bool autorun;             /* start the autorun run configurations (and on SIGHUP) */
        unsigned keep_ended;      /* contexts of ended instances kept per owner; 0: 1000 */
        unsigned keep_ended_s;    /* and for at most this long; 0: 3600 */
        uint64_t log_max;         /* rotate an instance's log at this size; 0: 1 MiB */
        unsigned max_connections; /* from users other than root, in all */
        unsigned max_connections_per_user; /* of one user other than root */
        unsigned idle_timeout_s;           /* a silent connection of such a user is closed */
        unsigned netns_pool;               /* network namespaces made ahead (root; at most _MAX) */
        kpa_execd_log_level log_level;     /* messages above it are not passed on */
        kpa_execd_log_fn log;              /* NULL: "kpa-execd: LEVEL: MESSAGE" on stderr */
        void *log_userdata;
        kpa_execd_notify_fn notify; /* NULL: none */
        void *notify_userdata;
} kpa_execd_config;

/* Set CFG's struct_size and every default (the ones above; listen_fd -1,
 * autorun on, log level info, on-exit auto). */
KPA_PUBLIC void kpa_execd_config_init(kpa_execd_config *cfg);

/* Get this process ready to be the supervisor: the cgroup driver must work
 * (kpa_cgroup_driver_set() chose it, or auto), and with cgroup v2 and no
 * systemd the process moves into a leaf of its cgroup so that the instances'
 * cgroups can be made below it. Call it as root, before any fork that is
 * to leave the cgroup too (kpa-execd calls it before it detaches). 0 or
 * -errno with ERR naming the cause. kpa_execd_run() calls it if it was not. */
KPA_PUBLIC int kpa_execd_prepare(kpa_error *err);

/* Serve: open the store and the state directory (adopting the instances a
 * previous service left running), listen, autorun, and answer until SIGTERM
 * or SIGINT, then stop the instances or leave them as CFG->on_exit says.
 * It blocks SIGTERM, SIGINT and SIGHUP (read through a signalfd), ignores
 * SIGPIPE, and runs once per process. Returns 0 when it stopped, or -errno
 * with ERR naming the cause (no such store, a socket path too long, another
 * service on the state directory...). When it leaves instances running
 * (KEEP) it ends the process with _exit(0) instead of returning: a
 * controller cannot be freed without stopping its instances. */
KPA_PUBLIC int kpa_execd_run(const kpa_execd_config *cfg, kpa_error *err);

/* The protocol version kpa_execd_run() speaks (kpa-execd --version). */
KPA_PUBLIC int kpa_execd_protocol_version(void);

#ifdef __cplusplus
}
#endif
#endif
