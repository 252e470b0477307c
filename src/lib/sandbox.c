/* sandbox.c: turns a kpa_instance_spec into an isolated process. The
 * sandbox (sandbox*.c) owns the clone into new namespaces, the parent's
 * share of the setup done while the child runs (the new root and /dev as
 * detached mounts, the seccomp filter, the cgroup: see "the setup
 * messages"), the instance's init (PID 1: it attaches and binds the
 * private root, forks the application as PID 2, reaps zombies, forwards
 * signals and reports), and the application's last steps before exec.
 * Nothing in the child allocates. It reads no manifest and knows nothing
 * of tokens or states: process.c does.
 * This file is the parent's side (the description, tracing, the clone, the
 * setup messages it sends, the cgroup, the reports); the new root is made
 * in sandbox-root.c, and what the child does after the clone, the init and
 * the application included, is sandbox-init.c (see sandbox-priv.h).
 *
 * The child reports which step failed as a step id plus errno (kpa_report)
 * through a pipe; a start that fails at any step leaves no process, mount
 * (they live in the instance's own mount namespace) or cgroup behind. */
#include "config.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "caps.h"
#include "handles.h"
#include "sandbox-priv.h"
#include "sandbox.h"
#include "util.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

static const char *const step_names[KPA_STEP_MAX] = {
        [KPA_STEP_NONE] = "start",
        [KPA_STEP_CLONE] = "clone into new namespaces",
        [KPA_STEP_CGROUP] = "join the cgroup",
        [KPA_STEP_CGROUP_NS] = "new cgroup namespace",
        [KPA_STEP_HOSTNAME] = "set the hostname",
        [KPA_STEP_MOUNT_PRIVATE] = "make mounts private",
        [KPA_STEP_ROOT] = "create the private root",
        [KPA_STEP_MOUNTS] = "mount the package, storage and host paths",
        [KPA_STEP_PROC] = "mount /proc, /tmp, /run and /var",
        [KPA_STEP_DEV] = "create /dev",
        [KPA_STEP_PIVOT_ROOT] = "pivot_root",
        [KPA_STEP_LOOPBACK] = "bring up the loopback interface",
        [KPA_STEP_INIT] = "start the init",
        [KPA_STEP_FORK] = "fork the application",
        [KPA_STEP_SETSID] = "setsid",
        [KPA_STEP_STDIO] = "set up stdin, stdout and stderr",
        [KPA_STEP_HANDLES] = "pass the handles",
        [KPA_STEP_PRIVILEGES] = "drop privileges",
        [KPA_STEP_EXEC] = "exec",
        [KPA_STEP_SECCOMP] = "install the seccomp filter",
        [KPA_STEP_KEYRING] = "join a new session keyring",
        [KPA_STEP_TTY] = "open the pseudo-terminal (/dev/ptmx)",
        [KPA_STEP_CWD] = "change to the working directory",
        [KPA_STEP_NETNS] = "join a namespace",
        [KPA_STEP_START_WAIT] = "wait for the start",
};

const char *kpa_sandbox_step_name(kpa_sandbox_step step)
{
        if (step < 0 || step >= KPA_STEP_MAX || !step_names[step])
                return "unknown step";
        return step_names[step];
}

/* ---- tracing (bench/) ---- */

static int trace_enabled = -1;
/* a copy of the stderr the caller had: the sandbox closes or reuses fd 2
 * before the application's stdio is set up, and this copy is kept open
 * there (so that a trace never lands in another fd that got number 2) */
static int trace_fd = -1;

void kpa_trace(const char *step)
{
        trace_to(-1, step);
}

/* FD -1: the saved copy of stderr */
void trace_to(int fd, const char *step)
{
        if (trace_enabled < 0) {
                trace_enabled = getenv("KPA_TRACE_START") != NULL;
                if (trace_enabled)
                        trace_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        }
        if (fd < 0)
                fd = trace_fd;
        if (!trace_enabled || fd < 0)
                return;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        char buf[160];
        int n = snprintf(buf, sizeof(buf), "kpa-trace %lld %d %s\n",
                         (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, (int)getpid(), step);
        if (n > 0)
                (void)!write(fd, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* ---- the description ---- */

void kpa_instance_spec_free(kpa_instance_spec *spec)
{
        if (!spec)
                return;
        free(spec->app_id);
        free(spec->instance_id);
        free(spec->hostname);
        free(spec->exec_path);
        kpa_strv_free(spec->argv);
        kpa_strv_free(spec->envp);
        for (size_t i = 0; i < spec->n_mounts; i++) {
                free(spec->mounts[i].source);
                free(spec->mounts[i].target);
                closep(&spec->mounts[i].source_fd);
                free(spec->mounts[i].fstype);
                free(spec->mounts[i].data);
        }
        free(spec->mounts);
        for (size_t i = 0; i < spec->n_handles; i++)
                closep(&spec->handle_fds[i]);
        free(spec->handle_fds);
        free(spec->cgroup_parent);
        free(spec->limits.devices);
        free(spec->init_name);
        free(spec->cwd);
        free(spec->rootfs);
        free(spec->netns_path);
        free(spec->start_fifo);
        free(spec->ipcns_path);
        free(spec->utsns_path);
        free(spec->pidns_path);
        free(spec->keep_caps);
        free(spec->run_config_id);
        if (spec->seccomp_prog) {
                kpa_seccomp_prog_free(spec->seccomp_prog);
                free(spec->seccomp_prog);
        }
        free(spec);
}

void kpa_instance_spec_add_mount(kpa_instance_spec *spec, kpa_mount_kind kind, const char *source,
                                 int source_fd, const char *target, bool optional)
{
        spec->mounts = kpa_xrealloc(spec->mounts, (spec->n_mounts + 1) * sizeof(*spec->mounts));
        spec->mounts[spec->n_mounts++] = (kpa_mount_op){
                .kind = kind,
                .source = source ? kpa_xstrdup(source) : NULL,
                .source_fd = source_fd,
                .target = kpa_xstrdup(target),
                .optional = optional,
        };
}

/* The first message (but rootless): the new root and its /dev, made by
 * the parent as detached mounts (hand_over_root). */
int send_root(int sock, int root, int dev)
{
        setup_hdr h = {.kind = SETUP_ROOT, .n_fds = 2};
        struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
        int fds[2] = {root, dev};
        ssize_t w = kpa_send_fds(sock, &iov, 1, fds, 2);
        return w < 0 ? (int)w : 0;
}

/* The last message: the seccomp filter, the cgroup's attach files, and
 * (OOM_FD >= 0) its OOM counters for the init to read at the end. */
static int send_setup(int sock, const kpa_seccomp_prog *prog, const int *attach, size_t n,
                      int oom_fd)
{
        if (n + 1 > SETUP_MAX_FDS)
                return -E2BIG;
        int fds[SETUP_MAX_FDS];
        if (n > 0) /* ATTACH may be NULL then */
                memcpy(fds, attach, n * sizeof(int));
        if (oom_fd >= 0)
                fds[n++] = oom_fd;
        setup_hdr h = {.kind = SETUP_CGROUP,
                       .n_fds = (uint32_t)n,
                       .filter_len = prog->len,
                       .oom_fd = oom_fd >= 0};
        struct iovec iov[2] = {{.iov_base = &h, .iov_len = sizeof(h)},
                               {.iov_base = prog->filter,
                                .iov_len = prog->len * sizeof(struct sock_filter)}};
        ssize_t w = kpa_send_fds(sock, iov, 2, fds, n);
        return w < 0 ? (int)w : 0;
}

/* The parent's side of open_tty: the master into *OUT; -1 there when the
 * child failed before (its report says why). */
static int receive_tty(int sock, int *out)
{
        setup_hdr h = {0};
        struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
        int fd = -1;
        size_t n_fds = 0;
        *out = -1;
        ssize_t n = kpa_recv_fds(sock, &iov, 1, &fd, 1, &n_fds);
        if (n <= 0)
                return n == 0 || n == -ECONNRESET ? 0 : (int)n;
        if ((size_t)n != sizeof(h) || h.kind != SETUP_TTY || n_fds != 1) {
                kpa_close_fds(&fd, n_fds);
                return -EBADMSG;
        }
        *out = fd;
        return 0;
}

int loopback_up(void)
{
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -1;
        struct ifreq ifr = {0};
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        int r = ioctl(fd, SIOCGIFFLAGS, &ifr);
        if (r == 0) {
                ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
                r = ioctl(fd, SIOCSIFFLAGS, &ifr);
        }
        int saved = errno;
        close(fd);
        errno = saved;
        return r;
}

static kpa_netns_source netns_source;
static void *netns_source_data;

void kpa_sandbox_set_netns_source(kpa_netns_source fn, void *userdata)
{
        netns_source = fn;
        netns_source_data = userdata;
}

int kpa_sandbox_netns_new(int home_fd)
{
        if (unshare(CLONE_NEWNET) < 0)
                return -errno;
        int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        int e = fd < 0 ? errno : loopback_up() < 0 ? errno : 0;
        if (setns(home_fd, CLONE_NEWNET) < 0) {
                closep(&fd);
                return -ENOTRECOVERABLE;
        }
        if (e) {
                closep(&fd);
                return -e;
        }
        return fd;
}

/* Close every fd but those in KEEP (sorted here). */
static void close_all_except(int *keep, size_t n)
{
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
                        int t = keep[j];
                        keep[j] = keep[j - 1];
                        keep[j - 1] = t;
                }
        unsigned from = 0;
        for (size_t i = 0; i < n; i++) {
                if (keep[i] < 0)
                        continue;
                if ((unsigned)keep[i] > from)
                        close_range(from, (unsigned)keep[i] - 1, 0);
                from = (unsigned)keep[i] + 1;
        }
        close_range(from, ~0U, 0);
}

/* ---- the parent's side ---- */

static _Noreturn void child_start(const kpa_instance_spec *spec, const int *trees, int report_fd,
                                  int death_fd, int sync_fd, int setup_fd, const cpu_set_t *cpus,
                                  int netns_fd)
{
        const int fixed[] = {report_fd, death_fd, spec->exit_record_fd, spec->init_keep_fd,
                             trace_fd, sync_fd, setup_fd, netns_fd,
                             spec->stdio[0], spec->stdio[1], spec->stdio[2]};
        size_t n = ELEMENTSOF(fixed);
        int keep[ELEMENTSOF(fixed) + spec->n_mounts + spec->n_handles];
        memcpy(keep, fixed, sizeof(fixed));
        for (size_t i = 0; i < spec->n_mounts; i++)
                keep[n++] = trees[i];
        for (size_t i = 0; i < spec->n_handles; i++)
                keep[n++] = spec->handle_fds[i];
        close_all_except(keep, n);
        child_ctx c = {.spec = spec, .trees = trees, .report_fd = report_fd, .death_fd = death_fd,
                       .sync_fd = sync_fd, .setup_fd = setup_fd, .root_fd = -1, .dev_fd = -1,
                       .cpus = cpus, .tty_slave = -1, .netns_fd = netns_fd, .start_fd = -1};
        child_main(&c);
}

static void close_trees(int *trees, size_t n)
{
        for (size_t i = 0; i < n; i++)
                closep(&trees[i]);
}

/* Detached copies of the mounts behind the spec's source fds, made here in
 * the caller's mount namespace, where they live; the child attaches them. */
static int clone_trees(const kpa_instance_spec *spec, int *trees, kpa_error *err)
{
        for (size_t i = 0; i < spec->n_mounts; i++)
                trees[i] = -1;
        for (size_t i = 0; i < spec->n_mounts; i++) {
                const kpa_mount_op *op = &spec->mounts[i];
                bool by_fd = op->source_fd >= 0;
                if ((op->kind != KPA_MOUNT_BIND_RO && op->kind != KPA_MOUNT_BIND_RW) ||
                    (!by_fd && !op->source))
                        continue;
                trees[i] = detached_copy(op, by_fd);
                if (trees[i] < 0 && !(op->optional && errno == ENOENT))
                        return by_fd ? kpa_error_set_errno(err, errno, "cannot copy the mount for %s",
                                                           op->target)
                                     : kpa_error_set_errno(err, errno, "cannot bind the host path %s",
                                                           op->source);
        }
        return 0;
}

/* Rootless: map uid and gid 0 of the child's new user namespace to the
 * caller's own (the one mapping an unprivileged process may write). */
static int write_id_maps(pid_t pid, kpa_error *err)
{
        char path[64], line[64];
        static const char *const files[] = {"setgroups", "uid_map", "gid_map"};
        for (size_t k = 0; k < ELEMENTSOF(files); k++) {
                snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, files[k]);
                if (k == 0)
                        snprintf(line, sizeof(line), "deny");
                else
                        snprintf(line, sizeof(line), "0 %u 1", (unsigned)(k == 1 ? getuid() : getgid()));
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
                int r = fd < 0 ? -errno : kpa_write_all(fd, line, strlen(line));
                if (r < 0)
                        return kpa_error_set_errno(err, -r, "user namespace: cannot write %s", path);
        }
        return 0;
}

/* Rootless without limits or a parent: no cgroup (an unprivileged user can
 * make one only where one was delegated to it). */
static bool wants_cgroup(const kpa_instance_spec *spec)
{
        return !spec->userns || spec->cgroup_parent || spec->limits.memory_bytes ||
               spec->limits.pids || spec->limits.cpu_weight || spec->limits.n_devices;
}

/* Keep the child PID off the CPU this thread runs on (CPUS: the CPUs it
 * may use), until it has the setup message. Without this the scheduler
 * queues a new child on its parent's CPU and runs it only when the parent
 * blocks, so that nothing would run in parallel (bench/start.sh: 1.3 ms
 * later for each start). The child restores CPUS itself. */
static void run_apart(pid_t pid, const cpu_set_t *cpus)
{
        int here = sched_getcpu();
        cpu_set_t others = *cpus;
        if (here >= 0 && here < CPU_SETSIZE)
                CPU_CLR(here, &others);
        if (here >= 0 && CPU_COUNT(&others) > 0)
                (void)sched_setaffinity(pid, sizeof(others), &others);
}

/* OCI (a pod that shares its process namespace): this thread's children
 * are born in the PID namespace at PATH; *OWN is the one to set back. */
static int enter_pidns(const char *path, int *own, kpa_error *err)
{
        _cleanup_close_ int ns = open(path, O_RDONLY | O_CLOEXEC);
        if (ns < 0)
                return kpa_error_set_errno(err, errno, "the PID namespace %s", path);
        *own = open("/proc/thread-self/ns/pid_for_children", O_RDONLY | O_CLOEXEC);
        if (*own < 0)
                return kpa_error_set_errno(err, errno, "this thread's PID namespace");
        if (setns(ns, CLONE_NEWPID) < 0) {
                int e = errno;
                closep(own);
                return kpa_error_set_errno(err, e, "cannot join the PID namespace %s", path);
        }
        return 0;
}

static void leave_pidns(int *own)
{
        if (*own >= 0)
                (void)setns(*own, CLONE_NEWPID);
        closep(own);
}

/* The instance's cgroup by the cgroupfs driver: below SPEC's parent, or
 * this process's own cgroup. */
static int make_cgroup(const kpa_instance_spec *spec, kpa_cgroup **cg, kpa_error *err)
{
        int q = kpa_cgroup_create(spec->cgroup_parent, spec->app_id, spec->instance_id,
                                  &spec->limits, cg, err);
        if (q < 0 && spec->userns && (q == -EACCES || q == -EPERM || q == -EROFS))
                kpa_error_prefix(err, "not root, kpa runs the application "
                                      "rootless, and its limits need a cgroup that "
                                      "this user may create (run kpa-run in a "
                                      "delegated cgroup, e.g. with \"systemd-run "
                                      "--user --scope -p Delegate=yes\", or as root)");
        return q;
}

/* Which driver makes SPEC's cgroup, if it has one: an explicit parent is
 * cgroupfs'. */
static int spec_driver(const kpa_instance_spec *spec, kpa_cgroup_driver *driver, kpa_error *err)
{
        *driver = KPA_CGROUP_DRIVER_CGROUPFS;
        return !wants_cgroup(spec) || spec->cgroup_parent ? 0 : kpa_cgroup_driver_get(driver, err);
}

/* On a pure v2 host (cgroupfs driver) the cgroup is made before the clone,
 * and the child starts in it with CLONE_INTO_CGROUP: no attach step, and
 * no write into cgroup.procs, which on v2 takes the kernel's threadgroup
 * lock even for "0" (PERF-NOTES.md). Elsewhere the child joins by itself
 * (v1: it writes "0" into each "tasks") or systemd moves it (a scope can
 * only be made for a process that exists). *CG stays NULL then. */
static int cgroup_before_clone(const kpa_instance_spec *spec, kpa_cgroup_driver driver,
                               kpa_cgroup **cg, kpa_error *err)
{
        if (!wants_cgroup(spec) || driver != KPA_CGROUP_DRIVER_CGROUPFS || !kpa_cgroup_pure_v2())
                return 0;
        int q = make_cgroup(spec, cg, err);
        if (q == 0 && !kpa_cgroup_v2_only(*cg)) { /* cannot be: in case */
                kpa_cgroup_destroy(*cg, NULL);
                *cg = NULL;
        }
        return q;
}

/* The parent's half of the setup, done while the child builds its root:
 * the seccomp filter, the cgroup (unless the child was cloned into it:
 * *CG set already, IN_CGROUP) and its attach files, sent to the child in
 * one message. A child that has failed already (and reported why) is not
 * an error here. Returns 0 or -errno with ERR set; *CG is the cgroup. */
static int setup_child(const kpa_instance_spec *spec, kpa_cgroup_driver driver, pid_t pid,
                       int setup_fd, kpa_cgroup **cg, bool in_cgroup, kpa_scope_request **scope_rq,
                       kpa_error *err)
{
        _cleanup_(kpa_seccomp_prog_free) kpa_seccomp_prog seccomp = {0};
        int q = spec->seccomp_prog ? 0 : kpa_seccomp_build(&spec->seccomp, &seccomp, err);
        if (q < 0)
                return q;
        const kpa_seccomp_prog *prog = spec->seccomp_prog ? spec->seccomp_prog : &seccomp;
        kpa_trace("spawn: seccomp filter built");
        if (!*cg && wants_cgroup(spec) && driver == KPA_CGROUP_DRIVER_SYSTEMD) {
                /* systemd moves the child, which waits for this message;
                 * the scope was asked for right after the clone */
                q = *scope_rq ? kpa_cgroup_scope_end(*scope_rq, cg, err)
                              : kpa_cgroup_create_scope(spec->app_id, spec->instance_id,
                                                        &spec->limits, pid, cg, err);
                *scope_rq = NULL;
                if (q == -ESRCH)
                        return 0; /* the child is gone; its report says why */
                if (q < 0)
                        return q;
        } else if (!*cg && wants_cgroup(spec) && (q = make_cgroup(spec, cg, err)) < 0) {
                return q;
        }
        kpa_trace("spawn: cgroup created");
        const int *attach = NULL;
        size_t n_attach = 0;
        if (*cg && !in_cgroup && (q = kpa_cgroup_attach_fds(*cg, &attach, &n_attach, err)) < 0)
                return q;
        _cleanup_close_ int oom_fd = *cg && spec->limits.memory_bytes ? kpa_cgroup_oom_fd(*cg) : -1;
        q = send_setup(setup_fd, prog, attach, n_attach, oom_fd);
        if (*cg)
                kpa_cgroup_close_attach_fds(*cg);
        if (q == -EPIPE || q == -ECONNRESET)
                q = 0; /* the child is gone; its report says why */
        if (q < 0)
                return kpa_error_set_errno(err, -q, "cannot send the setup to the child");
        return 0;
}

int kpa_sandbox_spawn(const kpa_instance_spec *spec, int death_fd, kpa_sandbox *sb, kpa_error *err)
{
        *sb = (kpa_sandbox){.pid = 0, .pidfd = -1, .report_fd = -1, .tty_fd = -1};
        int trees[spec->n_mounts + 1];
        kpa_trace("spawn");
        /* what the child needs from the heap, made here: it must not
         * allocate (a thread of the caller may hold malloc's lock at the
         * clone, and the child would wait for it forever) */
        int q = kpa_privileges_prepare();
        if (q < 0)
                return kpa_error_set_errno(err, -q, "cannot prepare the capability sets");
        if (spec->rootfs && spec->userns)
                return kpa_error_set_errno(err, ENOTSUP, "a container root needs root (no rootless mode)");
        if (spec->userns) { /* open_tree() needs privileges: the child binds paths */
                for (size_t i = 0; i < spec->n_mounts; i++)
                        trees[i] = -1;
        } else {
                q = clone_trees(spec, trees, err);
        }
        kpa_trace("spawn: trees cloned");
        int rep[2] = {-1, -1}, sync[2] = {-1, -1}, setup[2] = {-1, -1};
        if (q >= 0 && pipe2(rep, O_CLOEXEC) < 0)
                q = kpa_error_set_errno(err, errno, "pipe");
        if (q >= 0 && spec->userns && pipe2(sync, O_CLOEXEC) < 0)
                q = kpa_error_set_errno(err, errno, "pipe");
        if (q >= 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, setup) < 0)
                q = kpa_error_set_errno(err, errno, "socketpair");
        kpa_cgroup *cg = NULL;
        kpa_cgroup_driver driver = KPA_CGROUP_DRIVER_CGROUPFS;
        if (q >= 0)
                q = spec_driver(spec, &driver, err);
        if (q >= 0)
                q = cgroup_before_clone(spec, driver, &cg, err);
        int cgroup_fd = cg ? kpa_cgroup_v2_fd(cg) : -1;
        int own_pidns = -1;
        if (q >= 0 && spec->pidns_path)
                q = enter_pidns(spec->pidns_path, &own_pidns, err);
        if (q < 0) {
                close_trees(trees, spec->n_mounts);
                kpa_close_fds(rep, 2);
                kpa_close_fds(sync, 2);
                kpa_close_fds(setup, 2);
                kpa_cgroup_destroy(cg, NULL);
                return q;
        }
        cpu_set_t cpus;
        bool have_cpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0;
        if (spec->init_name)
                kpa_proc_title_prepare(); /* threads may start at once */
        int pidfd = -1;
        /* a network namespace made ahead of time (kpa-execd's pool): the
         * child enters it instead of making one; used once, closed here */
        int netns_fd =
                spec->new_net && !spec->userns && netns_source ? netns_source(netns_source_data) : -1;
        struct clone_args args = {
                .flags = CLONE_PIDFD | (spec->pidns_path ? 0 : CLONE_NEWPID) | CLONE_NEWNS |
                         CLONE_NEWIPC | CLONE_NEWUTS | (spec->userns ? CLONE_NEWUSER : 0),
                .pidfd = (uint64_t)(uintptr_t)&pidfd,
                .exit_signal = SIGCHLD,
        };
        if (cgroup_fd >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t)cgroup_fd;
        }
        /* The init of a PID namespace drops a signal that it has neither a
         * handler for nor blocked: it is born with the signals it forwards
         * blocked (they wait, pending, for its signalfd), so that a stop
         * asked for while it is still Created is not lost when the caller has
         * them unblocked. */
        sigset_t fwd, caller_mask;
        sigemptyset(&fwd);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                sigaddset(&fwd, forwarded_signals[i]);
        pthread_sigmask(SIG_BLOCK, &fwd, &caller_mask);
        pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
        if (pid < 0 && cgroup_fd >= 0 && (errno == EINVAL || errno == E2BIG)) {
                /* a kernel before 5.7: the child joins by itself */
                args.flags &= ~(uint64_t)CLONE_INTO_CGROUP;
                args.cgroup = 0;
                cgroup_fd = -1;
                pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
        }
        int saved = errno;
        if (pid != 0) {
                pthread_sigmask(SIG_SETMASK, &caller_mask, NULL);
                leave_pidns(&own_pidns);
        }
        errno = saved;
        if (pid == 0) {
                close(rep[0]);
                closep(&sync[1]);
                close(setup[0]);
                child_start(spec, trees, rep[1], death_fd, sync[0], setup[1],
                            have_cpus ? &cpus : NULL, netns_fd);
        }
        saved = errno;
        closep(&netns_fd);
        if (pid > 0 && have_cpus)
                run_apart(pid, &cpus);
        kpa_trace("spawn: cloned");
        close(rep[1]);
        closep(&sync[0]);
        closep(&setup[1]);
        close_trees(trees, spec->n_mounts);
        if (pid < 0) {
                close(rep[0]);
                closep(&sync[1]);
                close(setup[0]);
                kpa_cgroup_destroy(cg, NULL);
                return kpa_error_set_errno(err, saved, "clone into new namespaces");
        }
        if (spec->userns) {
                /* the child waits for its ids before it does anything */
                q = write_id_maps(pid, err);
                if (q == 0 && kpa_write_all(sync[1], "1", 1) < 0)
                        q = kpa_error_set_errno(err, errno, "user namespace: cannot release the child");
                closep(&sync[1]);
        }
        /* systemd driver: the scope is asked for now, and systemd makes it
         * while this process builds the child's root (D-Bus round trip and
         * job off the start path, as far as the root takes) */
        kpa_scope_request *scope_rq = NULL;
        if (q == 0 && !cg && wants_cgroup(spec) && driver == KPA_CGROUP_DRIVER_SYSTEMD)
                q = kpa_cgroup_scope_begin(spec->app_id, spec->instance_id, &spec->limits, pid,
                                           &scope_rq, err);
        if (q == 0 && !spec->userns && !spec->rootfs)
                q = hand_over_root(spec, setup[0], err);
        if (q == 0)
                q = setup_child(spec, driver, pid, setup[0], &cg, cgroup_fd >= 0, &scope_rq, err);
        kpa_systemd_scope_cancel(scope_rq); /* NULL: answered, or none asked */
        if (q == 0 && spec->tty && (q = receive_tty(setup[0], &sb->tty_fd)) < 0)
                kpa_error_set_errno(err, -q, "cannot receive the pseudo-terminal from the child");
        close(setup[0]);
        if (q < 0) {
                (void)syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
                siginfo_t info;
                while (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR)
                        ;
                close(pidfd);
                close(rep[0]);
                kpa_cgroup_destroy(cg, NULL); /* NULL: nothing */
                return q;
        }
        sb->pid = pid;
        sb->pidfd = pidfd;
        sb->report_fd = rep[0];
        sb->cgroup = cg;
        return 0;
}

int kpa_sandbox_read_report(kpa_sandbox *sb, kpa_report *out)
{
        for (;;) {
                ssize_t n = read(sb->report_fd, out, sizeof(*out));
                if (n == (ssize_t)sizeof(*out))
                        return 0;
                if (n == 0)
                        return -EPIPE;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                return -EBADMSG; /* records are written whole: cannot happen */
        }
}

int kpa_sandbox_release(kpa_sandbox *sb, kpa_error *err)
{
        if (sb->pidfd >= 0) {
                siginfo_t info;
                while (waitid(P_PIDFD, (id_t)sb->pidfd, &info, WEXITED) < 0 && errno == EINTR)
                        ;
        }
        closep(&sb->pidfd);
        closep(&sb->report_fd);
        sb->pidfd = sb->report_fd = -1;
        kpa_trace("release: reaped");
        int q = 0;
        if (sb->cgroup) {
                q = kpa_cgroup_destroy(sb->cgroup, err);
                sb->cgroup = NULL;
        }
        kpa_trace("release: cgroup removed");
        return q;
}
