/* sandbox-priv.h: what the files of the sandbox share and nothing else
 * sees. The API is sandbox.h.
 *
 *   sandbox.c       the parent's side: the description, tracing, the clone,
 *                   the setup messages it sends, the cgroup, the reports
 *   sandbox-root.c  the new root: made by the parent as detached mounts,
 *                   attached, bound and pivoted into by the child
 *   sandbox-init.c  the child after the clone: namespaces, the setup it
 *                   receives, the init (PID 1) and the application's last
 *                   steps before exec */
#ifndef KPA_SANDBOX_PRIV_H
#define KPA_SANDBOX_PRIV_H

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include "sandbox.h"

/* ---- the child's context ---- */

typedef struct child_ctx {
        const kpa_instance_spec *spec;
        const int *trees; /* per mount op: a detached mount tree from the parent, or -1 */
        int report_fd;
        int death_fd;
        int sync_fd;  /* rootless: one byte once the parent has written the id maps */
        int setup_fd; /* the parent's setup message (see send_setup), or -1 */
        int root_fd;  /* the new root, or -1: the child makes it (rootless) */
        int dev_fd;   /* its /dev, likewise */
        const cpu_set_t *cpus; /* the CPUs the caller may run on (NULL: unknown) */
        const kpa_seccomp_prog *seccomp; /* built by the parent: the child only installs it */
        int tty_slave; /* spec->tty: the pty's slave, the application's stdio; else -1 */
        int start_fd; /* OCI: the start FIFO, read side (-1: no wait) */
        int netns_fd; /* a prepared network namespace (lo up) to enter, or -1 */
} child_ctx;

#define CHECK(c, step, expr)                                                                       \
        do {                                                                                       \
                if ((expr) < 0)                                                                    \
                        child_fail((c), (step), errno);                                            \
        } while (0)

/* ---- the setup messages ----
 * The parent clones the child first. While the child makes its network
 * namespace on the other CPU, the parent makes the new root and its /dev
 * as detached mounts (but rootless), and sends them (SETUP_ROOT); the child
 * attaches them, binds what the spec says, and mounts /proc. Meanwhile the
 * parent builds the seccomp filter and makes the cgroup (libcgroup: about a
 * millisecond in a fresh process), and sends both (SETUP_CGROUP): the
 * filter as data, the cgroup's attach files as SCM_RIGHTS, on the same
 * SOCK_SEQPACKET pair. The child waits for that once its root is built; it
 * joins the cgroup and only then unshares its cgroup namespace (so that
 * its root is the instance's own group). */
#define SETUP_MAX_FDS 8

typedef enum { SETUP_ROOT = 1, SETUP_CGROUP, SETUP_TTY } setup_kind;

typedef struct setup_hdr {
        uint32_t kind;
        uint32_t n_fds;
        uint32_t filter_len; /* instructions */
        uint32_t oom_fd;     /* SETUP_CGROUP: 1 if the last fd is the OOM counters' */
} setup_hdr;

/* ---- sandbox-init.c ---- */

/* Report STEP's failure (ERR: an errno) through the report pipe and exit. */
_Noreturn void child_fail(const child_ctx *c, kpa_sandbox_step step, int err);
_Noreturn void child_main(const child_ctx *c);
/* SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2: the init forwards them
 * (the size is checked against the definition's) */
extern const int forwarded_signals[6];
/* The argv area of this process, found once (pthread_once) by the parent
 * before the clone: every init is a copy of it, and names itself there. */

/* ---- sandbox.c ---- */

void trace_to(int fd, const char *step);
int send_root(int sock, int root, int dev);
int loopback_up(void);

/* ---- sandbox-root.c ---- */

void build_root(const child_ctx *c);
void build_oci_root(const child_ctx *c);
int detached_copy(const kpa_mount_op *op, bool by_fd);
int child_tree(const child_ctx *c, const kpa_mount_op *op);
int hand_over_root(const kpa_instance_spec *spec, int setup_fd, kpa_error *err);

#endif
