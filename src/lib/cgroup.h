/* cgroup.h: one instance's control group, on cgroup v1/hybrid hosts and on
 * pure cgroup v2: libcgroup discovers the hierarchies (once per boot, then
 * cached in /run/kpa/cgroup-discovery) and administers (listing, leftovers);
 * the per-start creation, attach and removal are raw (see cgroup.c).
 * kpa creates its groups only below the cgroup it runs in (or
 * below an explicit parent): PARENT/kpa.slice/APP/INST in every hierarchy it
 * uses, and removes only what it created (kpa.slice/APP below its own
 * cgroup are kept for the next start). Creating an instance removes the
 * empty instance groups of APP that a kpa killed by SIGKILL left behind.
 *
 * Attaching is done by the child itself, before it unshares its cgroup
 * namespace: the parent opens the attach files first (kpa_cgroup_attach_fds),
 * and the child writes "0" into each one (cheap on v1: no threadgroup lock);
 * on v2 the parent may instead use clone3(CLONE_INTO_CGROUP) with
 * kpa_cgroup_v2_fd(). */
#ifndef KPA_CGROUP_H
#define KPA_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kpa/error.h"

/* One rule of a device policy, in the v1 devices controller's terms:
 * TYPE 'a' (any), 'c' or 'b'; MAJOR and MINOR, -1 for any (*); ACCESS a
 * non-empty subset of "rwm" (read, write, mknod). */
typedef struct kpa_cgroup_device_rule {
        bool allow;
        char type;
        int64_t major;
        int64_t minor;
        char access[4];
} kpa_cgroup_device_rule;

typedef struct kpa_cgroup_limits {
        uint64_t memory_bytes; /* 0: none */
        uint64_t pids;         /* 0: none */
        uint64_t cpu_weight;   /* 0: default; 1..10000 (v1: mapped to cpu.shares) */
        /* A device policy: every device denied, then DEVICES[0..N_DEVICES)
         * in order, a later rule over an earlier one (v1: "a" into
         * devices.deny, then each rule into devices.allow or devices.deny;
         * v2: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the group),
         * set before the process joins. NULL: no policy, the parent's.
         * Owned by whoever holds the limits (kpa_instance_spec: freed with
         * it). */
        kpa_cgroup_device_rule *devices;
        size_t n_devices;
} kpa_cgroup_limits;

/* Parse "c 1:3 rwm", "b *:* m", "a" (the v1 devices.allow form) into
 * *OUT with ALLOW; -EINVAL on anything else (ERR names it). */
int kpa_cgroup_device_rule_parse(const char *text, bool allow, kpa_cgroup_device_rule *out,
                                 kpa_error *err);
/* Check a rule's fields; -EINVAL with ERR naming the bad one. */
int kpa_cgroup_device_rule_check(const kpa_cgroup_device_rule *r, kpa_error *err);
/* The rule as devices.allow takes it ("c 1:3 rwm"), in BUF of SIZE. */
void kpa_cgroup_device_rule_format(const kpa_cgroup_device_rule *r, char *buf, size_t size);

typedef struct kpa_cgroup kpa_cgroup;

/* Who makes an instance's cgroup. CGROUPFS: kpa itself, in the cgroup
 * file system, below its own cgroup or an explicit parent (v1, hybrid, v2).
 * SYSTEMD: systemd, as a transient scope unit kpa-APP-INST.scope in the
 * slice kpa-APP.slice below kpa.slice, asked over systemd's private bus
 * (pure cgroup v2 under systemd as PID 1; cgroup-systemd.c). */
typedef enum kpa_cgroup_driver {
        KPA_CGROUP_DRIVER_AUTO = 0,
        KPA_CGROUP_DRIVER_CGROUPFS,
        KPA_CGROUP_DRIVER_SYSTEMD,
} kpa_cgroup_driver;

/* Choose the driver for this process by NAME: "auto", "cgroupfs" or
 * "systemd" (-EINVAL naming the choices otherwise). Until it is called the
 * choice is the environment variable KPA_CGROUP_DRIVER, else "auto". */
KPA_PUBLIC int kpa_cgroup_driver_set(const char *name, kpa_error *err); /* kpa/process.h */
/* The driver in use, never AUTO: auto is SYSTEMD when systemd is PID 1
 * (/run/systemd/system exists), cgroup v2 is mounted at /sys/fs/cgroup and
 * systemd's private bus socket is there for this user; CGROUPFS otherwise.
 * -EINVAL with ERR set when KPA_CGROUP_DRIVER holds another word. */
int kpa_cgroup_driver_get(kpa_cgroup_driver *out, kpa_error *err);
const char *kpa_cgroup_driver_name(kpa_cgroup_driver d);
/* systemd's private bus socket for this user (root: the system manager). */
char *kpa_systemd_private_socket(void);
/* The names of APP_ID's slice and of INSTANCE's scope (systemd driver). */
int kpa_systemd_unit_names(const char *app_id, const char *instance, char **slice, char **scope,
                           kpa_error *err);
/* Ask systemd for the scope of INSTANCE, holding PID, with LIMITS; return
 * once PID is in it, with *CGROUP_PATH its v2 path ("kpa.slice/..."). */
int kpa_systemd_start_scope(const char *app_id, const char *instance, const kpa_cgroup_limits *lim,
                            pid_t pid, char **cgroup_path, kpa_error *err);
/* The same in two halves, so that systemd makes the scope while the caller
 * does other work: send the request (holding the bus until the request is
 * finished or cancelled: the same thread must do either), then wait for
 * the answer and for PID in the scope. */
typedef struct kpa_scope_request kpa_scope_request;
int kpa_systemd_scope_send(const char *app_id, const char *instance, const kpa_cgroup_limits *lim,
                           pid_t pid, kpa_scope_request **out, kpa_error *err);
int kpa_systemd_scope_finish(kpa_scope_request *rq, char **cgroup_path, kpa_error *err);
void kpa_systemd_scope_cancel(kpa_scope_request *rq);

/* The cgroup v2 path of PID (0: this process), from the "0::" line of
 * /proc/PID/cgroup, which libcgroup 2.0.2 cannot parse: "a/b", no outer
 * '/' ("" for the root). -ENOENT without such a line. */
int kpa_cgroup_v2_path(pid_t pid, char **out);
/* Is systemd PID 1 (sd_booted(3)'s test: /run/systemd/system exists)? */
bool kpa_systemd_booted(void);

/* The systemd driver's kpa_cgroup_create(): the scope of INSTANCE, made by
 * systemd for PID (the instance's init, waiting to be moved: it joins no
 * group itself, kpa_cgroup_attach_fds() gives no fds). */
int kpa_cgroup_create_scope(const char *app_id, const char *instance,
                            const kpa_cgroup_limits *limits, pid_t pid, kpa_cgroup **out,
                            kpa_error *err);
/* kpa_cgroup_create_scope() in two halves (see kpa_systemd_scope_send):
 * the request, right after the clone; the group, when it is needed.
 * A request not ended is cancelled with kpa_systemd_scope_cancel(). */
int kpa_cgroup_scope_begin(const char *app_id, const char *instance,
                           const kpa_cgroup_limits *limits, pid_t pid, kpa_scope_request **out,
                           kpa_error *err);
int kpa_cgroup_scope_end(kpa_scope_request *rq, kpa_cgroup **out, kpa_error *err);

/* For a supervisor (kpa-execd) with the cgroupfs driver on cgroup v2,
 * where only groups without processes can have controllers below them:
 * move this process, all its threads, from its cgroup PARENT into the leaf
 * PARENT/supervisor (made when missing), enable memory, pids, cpu and io,
 * those PARENT's cgroup.controllers offers, in PARENT's
 * cgroup.subtree_control, and set *PARENT_OUT to PARENT ("/a/b"): the
 * parent to create the instances below (PARENT/kpa.slice/APP/INST, beside
 * the leaf), and to open them again with after a restart. kpa.slice there
 * counts as kpa's own, as in a kpa's own cgroup. While other processes
 * remain in PARENT (the one that started the supervisor, waiting for it to
 * be ready), enabling is left to the first kpa_cgroup_create() below it.
 * A process that is in a leaf named supervisor already (a supervisor
 * restarted where the last one went: PARENT takes no process once it has
 * controllers enabled; or systemd's DelegateSubgroup=supervisor) stays
 * there, with the leaf's parent as PARENT.
 * Does nothing, *PARENT_OUT NULL, with the systemd driver, on v1 and
 * hybrid hosts (pids and memory not on v2) and in the root cgroup, which
 * the rule exempts. -errno with a message naming the cgroup and the cause
 * when the leaf cannot be made or joined or a controller cannot be enabled
 * (e.g. a group this process may not write); the process is then back in
 * PARENT and nothing is left. Call it early: the children this process
 * made before stay in PARENT. */
int kpa_cgroup_become_supervisor(char **parent_out, kpa_error *err);
/* The PARENT of the last kpa_cgroup_become_supervisor() that moved this
 * process ("/a/b", to free), or NULL. */
char *kpa_cgroup_supervisor_parent(void);

/* Create PARENT/kpa.slice/APP_ID/INSTANCE (PARENT NULL: this process's own
 * cgroup, per hierarchy) with LIMITS. -errno with a message naming the
 * cgroup path on failure; nothing is left behind then.
 * PARENT is a group path as /proc/PID/cgroup shows it, the same in every
 * hierarchy, and must exist; the directory of the group in the cgroup file
 * system (/sys/fs/cgroup/PATH on v2, /sys/fs/cgroup/unified/PATH or
 * /sys/fs/cgroup/CONTROLLER/PATH on hybrid and v1 hosts) names it too, and
 * any other path in /sys/fs/cgroup is refused (ENOENT). On cgroup v2 the
 * parent must already enable the controllers in cgroup.subtree_control
 * (EBUSY when it holds processes and does not), except an explicit, empty,
 * non-root PARENT, where kpa enables them. An INSTANCE that exists already
 * is -EEXIST. LIMITS may be NULL. */
int kpa_cgroup_create(const char *parent, const char *app_id, const char *instance,
                      const kpa_cgroup_limits *limits, kpa_cgroup **out, kpa_error *err);

/* Take hold of the existing group PARENT/kpa.slice/APP_ID/INSTANCE that an
 * earlier kpa process created (re-adoption by a restarted supervisor), so
 * that it can be listed, killed and destroyed. -ENOENT when it is gone. */
int kpa_cgroup_open(const char *parent, const char *app_id, const char *instance,
                    kpa_cgroup **out, kpa_error *err);

/* O_WRONLY|O_CLOEXEC fds of the files the child writes "0" into to join
 * (v1 "tasks" of each hierarchy, v2 "cgroup.procs"). Owned by the cgroup;
 * valid until kpa_cgroup_close_attach_fds() or destroy. */
int kpa_cgroup_attach_fds(kpa_cgroup *cg, const int **fds, size_t *n, kpa_error *err);
void kpa_cgroup_close_attach_fds(kpa_cgroup *cg);
/* In the child, after fork/clone, before exec: join by writing "0" to each
 * fd. Async-signal-safe. Returns 0 or -errno. */
int kpa_cgroup_join_self(const int *fds, size_t n);
/* Join PID from the outside (slow path, e.g. re-adoption). */
int kpa_cgroup_attach_pid(kpa_cgroup *cg, pid_t pid, kpa_error *err);

/* An O_DIRECTORY fd of the v2 group (for CLONE_INTO_CGROUP), or -1. */
int kpa_cgroup_v2_fd(kpa_cgroup *cg);
/* Is the group in one v2 hierarchy only (a pure v2 host, cgroupfs driver)?
 * Then a child cloned into kpa_cgroup_v2_fd() is in all of it. */
bool kpa_cgroup_v2_only(const kpa_cgroup *cg);
/* Is every controller kpa uses that is mounted on a cgroup v2 hierarchy
 * (and at least one mounted)? A pure v2 host, not v1 or hybrid. */
bool kpa_cgroup_pure_v2(void);

/* Pids in the group (from the hierarchy that has them all); free(*pids). */
int kpa_cgroup_pids(kpa_cgroup *cg, pid_t **pids, size_t *n, kpa_error *err);
/* SIGKILL every process in the group and wait (bounded) until it is empty. */
int kpa_cgroup_kill(kpa_cgroup *cg, kpa_error *err);
/* On cgroup v2 (Linux 5.14): one write of "1" into cgroup.kill, which kills
 * every process in the group at once, forks under way included; no wait.
 * False where there is none (v1, hybrid, an older kernel). */
bool kpa_cgroup_kill_now(kpa_cgroup *cg);
/* An O_RDONLY|O_CLOEXEC fd of the group's OOM counters (v2 memory.events,
 * v1 memory.oom_control) for the instance's init to read before it leaves
 * (kpa_oom_fd_killed), when the group may be gone by the time its parent
 * looks; -1 without a memory hierarchy. The caller closes it. */
int kpa_cgroup_oom_fd(kpa_cgroup *cg);
/* Does the OOM counter file open at FD say "oom_kill N" with N > 0? No
 * allocation: safe in the init. */
bool kpa_oom_fd_killed(int fd);
/* Did the kernel OOM-kill something in this group? (memory.events oom_kill
 * on v2, memory.oom_control oom_kill on v1.) */
bool kpa_cgroup_oom_killed(kpa_cgroup *cg);

/* Host path of the group in the hierarchy of CONTROLLER ("memory", "pids",
 * "cpu"; on v2 any of them gives the one group), e.g.
 * "/sys/fs/cgroup/memory/x/kpa.slice/APP/INST"; NULL if not used. */
const char *kpa_cgroup_path(const kpa_cgroup *cg, const char *controller);

/* Remove the instance group (waiting briefly for it to empty), and below
 * an explicit parent the APP_ID and kpa.slice parents this instance made,
 * if they are empty (below kpa's own cgroup they are kept). Frees CG. It kills nothing: -EBUSY if processes remain (kill first). */
int kpa_cgroup_destroy(kpa_cgroup *cg, kpa_error *err);
/* Free CG and leave the group as it is (kpa-oci create: the group
 * outlives the process that made it; delete opens and destroys it). */
void kpa_cgroup_forget(kpa_cgroup *cg);
/* A package is gone: remove the APP_ID groups kept for its next start
 * (kpa.slice/APP_ID below PARENT, NULL: this process's own groups, in each
 * hierarchy), where no instance uses them; the empty instance groups that a
 * killed kpa left there go first. Nothing is reported: a group in use stays. */
void kpa_cgroup_forget_app(const char *parent, const char *app_id);

#endif
