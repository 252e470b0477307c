/* sandbox.h: one instance, described as plain data, and the code that
 * turns the description into a running, isolated process.
 *
 * kpa_instance_spec is the single description the sandbox reads (DESIGN.md
 * section 8): binary, argv, env, mounts, namespaces, cgroup limits, handles
 * and ids. It is built from a manifest plus start options today (spec.c) and
 * can be built from an OCI config.json later; nothing in sandbox*.c reads
 * a manifest.
 *
 * kpa_sandbox_spawn() clones the instance's init (PID 1 of a new PID
 * namespace), which sets up the sandbox step by step, forks the application
 * as PID 2, reaps every zombie, forwards signals, and reports each stage and
 * the final wait status through a pipe as fixed-size kpa_report records. */
#ifndef KPA_SANDBOX_H
#define KPA_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "caps.h"
#include "cgroup.h"
#include "kpa/error.h"
#include "kpa/instance.h"
#include "seccomp-filter.h"

typedef enum kpa_mount_kind {
        KPA_MOUNT_BIND_RO = 0, /* SOURCE_FD (or SOURCE path) read-only at TARGET */
        KPA_MOUNT_BIND_RW,
        KPA_MOUNT_SYMLINK,     /* TARGET -> SOURCE */
        KPA_MOUNT_COPY,        /* copy the small host file SOURCE to TARGET (in /etc) */
        /* OCI (spec->rootfs set; done in order, inside the new root): */
        KPA_MOUNT_FS,          /* a new FSTYPE file system (SOURCE its name) at TARGET */
        KPA_MOUNT_MASK,        /* /dev/null over a file, an empty read-only tmpfs over a dir */
        KPA_MOUNT_READONLY,    /* TARGET bound onto itself, read-only */
        KPA_MOUNT_DEVICE,      /* a node at TARGET: MODE, RDEV, owned by UID:GID */
} kpa_mount_kind;

typedef struct kpa_mount_op {
        kpa_mount_kind kind;
        char *source;   /* host path, or the symlink's target */
        int source_fd;  /* O_PATH fd of the source opened by the parent, or -1 */
        char *target;   /* absolute path inside the new root */
        bool optional;  /* a missing source is skipped */
        bool detached;  /* SOURCE_FD is a detached mount (fsmount), moved as it is */
        /* OCI: KPA_MOUNT_FS's type, MS_* flags and data; BIND_*: extra MS_*
         * flags (MS_NOEXEC; nosuid and nodev are always set) */
        char *fstype;
        unsigned long flags;
        char *data;
        /* OCI: KPA_MOUNT_DEVICE's node (linux.devices) */
        mode_t mode; /* its type (S_IFCHR, S_IFBLK, S_IFIFO) and permissions */
        dev_t rdev;
        uid_t uid;
        gid_t gid;
} kpa_mount_op;

typedef struct kpa_instance_spec {
        char *app_id;
        char *instance_id;   /* unique; names the cgroup */
        char *hostname;
        char *exec_path;     /* inside the new root */
        char **argv;         /* NULL-terminated */
        char **envp;         /* NULL-terminated */
        bool new_net;        /* a new network namespace (loopback only) */
        kpa_mount_op *mounts;
        size_t n_mounts;
        int *handle_fds;     /* owned; arrive at 3, 4, ... */
        size_t n_handles;
        int stdio[3];        /* -1: /dev/null */
        uid_t uid;
        gid_t gid;
        kpa_cgroup_limits limits;
        char *cgroup_parent; /* NULL: the caller's own cgroup */
        kpa_seccomp_policy seccomp; /* relaxations of the default filter */
        /* Supervised instances (kpa-execd): they outlive whoever started
         * them, so no PDEATHSIG; the init writes "exited STATUS\n" (the
         * application's wait status) to EXIT_RECORD_FD before it leaves, and
         * holds INIT_KEEP_FD (e.g. the read end of the log pipe, so that a
         * restarted supervisor can take it back with pidfd_getfd) until then.
         * Both fds stay the caller's; -1: none. */
        bool detached;
        int exit_record_fd;
        int init_keep_fd;
        /* Rootless (the caller is not root): a new user namespace too, in
         * which uid and gid 0 are the caller's own (UID and GID above must
         * be 0 then); mounts are made from source paths in the child; a
         * cgroup is made only when limits or a parent are asked for. */
        bool userns;
        char *init_name; /* what the init calls itself in ps ("kpa-init APP_ID/RUNCONFIG"),
                            in the argv area it inherits, cut to its size; NULL: unchanged */
        char *cwd; /* inside the new root; NULL: / */
        /* A pseudo-terminal of the instance's own devpts (/dev/pts/N
         * inside) as the application's stdin, stdout, stderr and
         * controlling terminal, of TTY_ROWS x TTY_COLS (0: the kernel's
         * default); its master comes back in kpa_sandbox.tty_fd. STDIO is
         * not used then. */
        bool tty;
        unsigned short tty_rows, tty_cols;
        size_t n_init_kept_handles; /* the first N handles stay open in a detached
                                       instance's init too (declared sockets, for a
                                       restarted kpa-execd to take back); 0: none */
        /* OCI (oci-config.c): the container's own root. ROOTFS (a host
         * directory) is bound as the new root instead of kpa's tmpfs with
         * /usr and /etc, and MOUNTS are then made in their order inside it
         * (no /proc, /tmp, /run of kpa's own: the mounts say); /dev gets
         * kpa's device nodes and links where they are missing. */
        char *rootfs;        /* NULL: kpa's own root */
        bool rootfs_readonly;
        char *netns_path;    /* join this network namespace (NULL: NEW_NET decides) */
        /* The init waits before it starts the application until a byte
         * arrives on this FIFO (OCI create/start); NULL: no wait. */
        char *start_fifo;
        /* OCI (a pod's containers): join these IPC and UTS namespaces
         * (NULL: new ones); HOSTNAME NULL then keeps the joined one's */
        char *ipcns_path;
        char *utsns_path;
        /* OCI (a pod that shares its process namespace): the init is born
         * in this PID namespace, not as PID 1 of a new one, and forwards
         * signals to the application's process group alone (NULL: new) */
        char *pidns_path;
        /* OCI: linux.seccomp's filter, installed instead of the default
         * one that SECCOMP relaxes (NULL: the default); owned */
        kpa_seccomp_prog *seccomp_prog;
        /* OCI: process.capabilities and process.noNewPrivileges, the
         * orchestrator's grant (caps.h), owned; with no_new_privs off, the
         * filter is installed before the ids change, as runc does (it
         * needs CAP_SYS_ADMIN then). NULL (kpa's packages, spec.c): every
         * capability dropped and no_new_privs set. */
        kpa_caps_keep *keep_caps;
        char *run_config_id; /* the manifest's run configuration (spec.c); NULL: none (OCI) */
} kpa_instance_spec;

/* kpa_instance_spec_free(), kpa_instance_spec_freep(): kpa/instance.h */
/* Append a mount operation (strings copied). */
void kpa_instance_spec_add_mount(kpa_instance_spec *spec, kpa_mount_kind kind, const char *source,
                                 int source_fd, const char *target, bool optional);

/* What the instance's init reports, in order. */
typedef enum kpa_report_type {
        KPA_REPORT_PREPARED = 1, /* sandbox set up; only exec left */
        KPA_REPORT_RUNNING,      /* exec succeeded; VALUE = app pid inside */
        KPA_REPORT_FAILED,       /* STEP failed with ERR */
        KPA_REPORT_EXITED,       /* the application ended; VALUE = its wait status */
} kpa_report_type;

typedef struct kpa_report {
        int32_t type;
        int32_t step; /* kpa_sandbox_step, for FAILED */
        int32_t err;  /* errno, for FAILED; KPA_EXIT_OOM or 0, for EXITED */
        int32_t value;
} kpa_report;

/* In an EXITED report's ERR: the application was killed by SIGKILL and the
 * group's OOM counter says the kernel killed for memory (read by the init,
 * which the group still holds; the exit record then ends in " oom"). */
#define KPA_EXIT_OOM 1

/* The sandbox steps, named in failure messages. */
typedef enum kpa_sandbox_step {
        KPA_STEP_NONE = 0,
        KPA_STEP_CLONE,
        KPA_STEP_CGROUP,
        KPA_STEP_CGROUP_NS,
        KPA_STEP_HOSTNAME,
        KPA_STEP_MOUNT_PRIVATE,
        KPA_STEP_ROOT,
        KPA_STEP_MOUNTS,
        KPA_STEP_PROC,
        KPA_STEP_DEV,
        KPA_STEP_PIVOT_ROOT,
        KPA_STEP_LOOPBACK,
        KPA_STEP_INIT,
        KPA_STEP_FORK,
        KPA_STEP_SETSID,
        KPA_STEP_STDIO,
        KPA_STEP_HANDLES,
        KPA_STEP_PRIVILEGES,
        KPA_STEP_EXEC,
        KPA_STEP_SECCOMP, /* after PRIVILEGES; last so that the ids above stay */
        KPA_STEP_KEYRING,
        KPA_STEP_TTY,
        KPA_STEP_CWD,
        KPA_STEP_NETNS,     /* OCI: join spec->netns_path (ipcns_path, utsns_path) */
        KPA_STEP_START_WAIT, /* OCI: wait on spec->start_fifo */
        KPA_STEP_MAX,
} kpa_sandbox_step;
const char *kpa_sandbox_step_name(kpa_sandbox_step step);

typedef struct kpa_sandbox {
        pid_t pid;         /* host pid of the instance's init */
        int pidfd;         /* of init */
        int report_fd;     /* read end: kpa_report records, EOF when init is gone */
        kpa_cgroup *cgroup;
        int tty_fd;        /* the pty's master (spec->tty), the caller's; else -1 */
} kpa_sandbox;

/* KPA_TRACE_START set in the environment: write "kpa-trace MICROSECONDS PID
 * STEP" (CLOCK_MONOTONIC) on stderr at each step of a start, for bench/.
 * Off, it costs one test of a flag. Async-signal-safe once initialized. */
KPA_PUBLIC void kpa_trace(const char *step); /* kpa/process.h */

/* Where a start with a new network namespace (root, not rootless) takes
 * one made ahead of time: FN returns an fd of it (O_CLOEXEC, loopback up,
 * never used before), which the sandbox owns from then on and the child
 * enters, or -1 (the child makes one itself). kpa-execd's pool; NULL: none. */
typedef int (*kpa_netns_source)(void *userdata);
void kpa_sandbox_set_netns_source(kpa_netns_source fn, void *userdata);
/* Make a network namespace with loopback up and return an fd of it, the
 * calling thread staying in (returning to) HOME_FD's namespace: -errno, or
 * -ENOTRECOVERABLE when the thread could not return (it is in the new one:
 * the caller must exit). */
int kpa_sandbox_netns_new(int home_fd);

/* Clone the init, then (while it makes its namespaces and mounts on
 * another CPU) make its root (but rootless), build the seccomp filter and
 * create the cgroup, hand them to it, and return (state Created); the
 * caller then reads reports from SB->report_fd. On failure the init is
 * killed and reaped, and nothing is left behind. DEATH_FD: the read end of
 * a pipe whose write end only the caller holds; the instance kills itself
 * when it sees EOF there (-1: none). */
int kpa_sandbox_spawn(const kpa_instance_spec *spec, int death_fd, kpa_sandbox *sb,
                      kpa_error *err);
/* Read one report; 0 and *OUT filled, -EAGAIN when none is ready (non-blocking
 * fd), -EPIPE at EOF. */
int kpa_sandbox_read_report(kpa_sandbox *sb, kpa_report *out);
/* After init has exited: reap it, remove the cgroup, close fds. */
int kpa_sandbox_release(kpa_sandbox *sb, kpa_error *err);

#endif
