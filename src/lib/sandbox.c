/* sandbox.c: turns a kpa_instance_spec into an isolated process. It owns
 * the clone into new namespaces, the parent's share of the setup done while
 * the child runs (the new root and /dev as detached mounts, the seccomp
 * filter, the cgroup: see "the setup messages"), the instance's init (PID
 * 1: it attaches and binds the private root, forks the application as PID
 * 2, reaps zombies, forwards signals and reports), and the application's
 * last steps before exec. Nothing in the child allocates. It reads no
 * manifest and knows nothing of tokens or states: process.c does.
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
#include "sandbox.h"
#include "util.h"

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/* The new root is built on a tmpfs mounted here, inside the instance's own
 * mount namespace (the host's /tmp is not touched). */
#define NEWROOT "/tmp"

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

static void trace_to(int fd, const char *step);

void kpa_trace(const char *step)
{
        trace_to(-1, step);
}

/* FD -1: the saved copy of stderr */
static void trace_to(int fd, const char *step)
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
        free(spec->init_name);
        free(spec->cwd);
        free(spec->rootfs);
        free(spec->netns_path);
        free(spec->start_fifo);
        free(spec->ipcns_path);
        free(spec->utsns_path);
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

/* ---- child helpers (run after clone; report failures, never print) ---- */

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

static void report(int fd, kpa_report_type type, int step, int err, int value)
{
        kpa_report r = {.type = type, .step = step, .err = err, .value = value};
        (void)!write(fd, &r, sizeof(r));
}

static _Noreturn void child_fail(const child_ctx *c, kpa_sandbox_step step, int err)
{
        report(c->report_fd, KPA_REPORT_FAILED, step, err < 0 ? -err : err, 0);
        _exit(127);
}

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

/* The first message (but rootless): the new root and its /dev, made by
 * the parent as detached mounts (hand_over_root). */
static int send_root(int sock, int root, int dev)
{
        setup_hdr h = {.kind = SETUP_ROOT, .n_fds = 2};
        struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
        int fds[2] = {root, dev};
        ssize_t w = kpa_send_fds(sock, &iov, 1, fds, 2);
        return w < 0 ? (int)w : 0;
}

static void receive_root(child_ctx *c)
{
        setup_hdr h;
        struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
        int fds[2];
        size_t n_fds = 0;
        ssize_t n = kpa_recv_fds(c->setup_fd, &iov, 1, fds, 2, &n_fds);
        if (n == 0)
                _exit(127); /* the parent gave up the start: it reports why */
        if (n < 0)
                child_fail(c, KPA_STEP_ROOT, (int)-n);
        if ((size_t)n != sizeof(h) || h.kind != SETUP_ROOT || n_fds != 2) {
                kpa_close_fds(fds, n_fds);
                child_fail(c, KPA_STEP_ROOT, EBADMSG);
        }
        c->root_fd = fds[0];
        c->dev_fd = fds[1];
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

/* spec->tty: open a pseudo-terminal in the instance's own devpts (through
 * /dev/ptmx, so that the slave is /dev/pts/N inside), owned by the
 * application's ids, and send its master to the parent (SETUP_TTY); the
 * slave stays in C for the application. */
static void open_tty(child_ctx *c)
{
        const kpa_instance_spec *spec = c->spec;
        int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(c, KPA_STEP_TTY, master);
        int unlock = 0;
        CHECK(c, KPA_STEP_TTY, ioctl(master, TIOCSPTLCK, &unlock));
        if (spec->tty_rows && spec->tty_cols) {
                struct winsize ws = {.ws_row = spec->tty_rows, .ws_col = spec->tty_cols};
                CHECK(c, KPA_STEP_TTY, ioctl(master, TIOCSWINSZ, &ws));
        }
        int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        CHECK(c, KPA_STEP_TTY, slave);
        CHECK(c, KPA_STEP_TTY, fchown(slave, spec->uid, spec->gid));
        setup_hdr h = {.kind = SETUP_TTY, .n_fds = 1};
        struct iovec iov = {.iov_base = &h, .iov_len = sizeof(h)};
        ssize_t w = kpa_send_fds(c->setup_fd, &iov, 1, &master, 1);
        if (w < 0)
                child_fail(c, KPA_STEP_TTY, (int)-w);
        close(master);
        c->tty_slave = slave;
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

/* The init's fd of its group's OOM counters (-1: none). */
static int init_oom_fd = -1;

/* Where the child receives the filter: the init's own copy of the library's
 * memory, which its vfork'ed application shares until the exec. */
static struct sock_filter child_filter[BPF_MAXINSNS];

static void receive_setup(const child_ctx *c, kpa_seccomp_prog *prog)
{
        setup_hdr h;
        struct iovec iov[2] = {{.iov_base = &h, .iov_len = sizeof(h)},
                               {.iov_base = child_filter, .iov_len = sizeof(child_filter)}};
        int fds[SETUP_MAX_FDS];
        size_t n_fds = 0;
        ssize_t n = kpa_recv_fds(c->setup_fd, iov, 2, fds, SETUP_MAX_FDS, &n_fds);
        if (n == 0)
                _exit(127); /* the parent gave up the start: it reports why */
        if (n < 0)
                child_fail(c, KPA_STEP_CGROUP, (int)-n);
        if ((size_t)n < sizeof(h) || h.kind != SETUP_CGROUP || h.n_fds != n_fds ||
            h.filter_len > BPF_MAXINSNS ||
            (size_t)n != sizeof(h) + h.filter_len * sizeof(struct sock_filter)) {
                kpa_close_fds(fds, n_fds);
                child_fail(c, KPA_STEP_CGROUP, EBADMSG);
        }
        close(c->setup_fd);
        if (h.oom_fd && n_fds > 0)
                init_oom_fd = fds[--n_fds];
        int r = kpa_cgroup_join_self(fds, n_fds);
        kpa_close_fds(fds, n_fds);
        if (r < 0)
                child_fail(c, KPA_STEP_CGROUP, -r);
        prog->len = (unsigned short)h.filter_len;
        prog->filter = child_filter;
        /* the parent kept this child off its own CPU until now */
        if (c->cpus)
                (void)sched_setaffinity(0, sizeof(*c->cpus), c->cpus);
}

/* The file helpers below work on PATH relative to DIRFD: the parent fills
 * a detached tmpfs through its fd (relative paths), the child (rootless)
 * its new root by absolute paths (AT_FDCWD). */
static int mkdir_p_at(int dirfd, const char *path, mode_t mode)
{
        /* most parents exist already: one mkdir then */
        if (mkdirat(dirfd, path, mode) == 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -1;
        char buf[PATH_MAX];
        size_t len = strlen(path);
        if (len >= sizeof(buf))
                return errno = ENAMETOOLONG, -1;
        memcpy(buf, path, len + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdirat(dirfd, buf, mode) < 0 && errno != EEXIST)
                        return -1;
                *p = '/';
        }
        if (mkdirat(dirfd, buf, mode) < 0 && errno != EEXIST)
                return -1;
        return 0;
}

static int touch_at(int dirfd, const char *path)
{
        int fd = openat(dirfd, path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -1;
        close(fd);
        return 0;
}

/* The parent of PATH must exist before PATH itself is made. */
static int mkdir_parent_at(int dirfd, const char *path)
{
        char buf[PATH_MAX];
        snprintf(buf, sizeof(buf), "%s", path);
        char *slash = strrchr(buf, '/');
        if (!slash || slash == buf)
                return 0;
        *slash = '\0';
        return mkdir_p_at(dirfd, buf, 0755);
}

static int copy_file_at(const char *from, int dirfd, const char *to)
{
        char buf[16 * 1024];
        int in = open(from, O_RDONLY | O_CLOEXEC);
        if (in < 0)
                return -1;
        int out = -1;
        if (mkdir_parent_at(dirfd, to) == 0)
                out = openat(dirfd, to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                             0644);
        int r = out < 0 ? -1 : 0;
        while (r == 0) {
                ssize_t n = read(in, buf, sizeof(buf));
                if (n <= 0) {
                        r = n < 0 ? -1 : 0;
                        break;
                }
                int w = kpa_write_all(out, buf, (size_t)n);
                if (w < 0)
                        r = (errno = -w, -1);
        }
        int saved = errno;
        close(in);
        if (out >= 0)
                close(out);
        errno = saved;
        return r;
}

static int make_target_at(int dirfd, const char *target, bool dir)
{
        if (dir)
                return mkdir_p_at(dirfd, target, 0755);
        return mkdir_parent_at(dirfd, target) < 0 ? -1 : touch_at(dirfd, target);
}

/* What the new root holds below DIRFD (relative to it, PREFIX before each
 * path) besides its mounts: the directories /proc, /tmp, /run and /etc, the
 * symlinks and the copies. (The targets of the binds are made by the child,
 * as it binds: a target may lie below an earlier bind, /usr say.) */
static int fill_root_at(const kpa_instance_spec *spec, int dirfd, const char *prefix,
                        const char **failed)
{
        static const char *const dirs[] = {"/proc", "/tmp", "/run", "/etc", "/var",
                                           "/var/tmp", "/var/lib", "/var/cache"};
        char path[PATH_MAX];
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                snprintf(path, sizeof(path), "%s%s", prefix, dirs[i]);
                if (mkdirat(dirfd, path, 0755) < 0)
                        return *failed = dirs[i], -1;
        }
        snprintf(path, sizeof(path), "%s/var/run", prefix);
        if (symlinkat("/run", dirfd, path) < 0)
                return *failed = "/var/run", -1;
        for (size_t i = 0; i < spec->n_mounts; i++) {
                const kpa_mount_op *op = &spec->mounts[i];
                snprintf(path, sizeof(path), "%s%s", prefix, op->target);
                int r = 0;
                switch (op->kind) {
                case KPA_MOUNT_BIND_RO:
                case KPA_MOUNT_BIND_RW:
                case KPA_MOUNT_FS: /* the OCI kinds: build_oci_root() only */
                case KPA_MOUNT_MASK:
                case KPA_MOUNT_READONLY: break;
                case KPA_MOUNT_SYMLINK:
                        r = mkdir_parent_at(dirfd, path);
                        if (r == 0)
                                r = symlinkat(op->source, dirfd, path);
                        break;
                case KPA_MOUNT_COPY:
                        r = copy_file_at(op->source, dirfd, path);
                        if (r < 0 && op->optional && errno == ENOENT)
                                r = 0;
                        break;
                }
                if (r < 0)
                        return *failed = op->target, -1;
        }
        return 0;
}

/* Attach TREE, the detached copy of bind OP's source, at TARGET (made
 * here, a directory or a file as the source is). No TREE: an optional
 * source that is missing, skipped. */
static int bind_mount(int tree, const char *target)
{
        struct stat st;
        if (tree < 0)
                return 0;
        if (fstat(tree, &st) < 0 || make_target_at(AT_FDCWD, target, S_ISDIR(st.st_mode)) < 0)
                return -1;
        return move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
}

static const struct {
        const char *name;
        unsigned major, minor;
} dev_nodes[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7},
                 {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};

/* What /dev holds besides its mounts: the links, and the mount points of
 * /dev/pts and /dev/shm; below DIRFD, PREFIX before each name. */
static int fill_dev_links_at(int dirfd, const char *prefix)
{
        static const char *const links[][2] = {
                {"pts/ptmx", "ptmx"},         {"/proc/self/fd", "fd"},
                {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                {"/proc/self/fd/2", "stderr"}};
        char path[64];
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                snprintf(path, sizeof(path), "%s/%s", prefix, links[i][1]);
                if (symlinkat(links[i][0], dirfd, path) < 0)
                        return -1;
        }
        snprintf(path, sizeof(path), "%s/pts", prefix);
        if (mkdirat(dirfd, path, 0755) < 0)
                return -1;
        snprintf(path, sizeof(path), "%s/shm", prefix);
        return mkdirat(dirfd, path, 01777) < 0 || fchmodat(dirfd, path, 01777, 0) < 0 ? -1 : 0;
}

/* /dev/pts and /dev/shm, mounted on the /dev below NEWROOT. */
static int mount_dev_fs(void)
{
        if (mount("devpts", NEWROOT "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                  "newinstance,ptmxmode=0666,mode=0620") < 0)
                return -1;
        return mount("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
}

/* /dev made in the child (rootless): device nodes the user namespace may
 * not create are binds of the host's. */
static int make_dev(void)
{
        if (mkdir_p_at(AT_FDCWD, NEWROOT "/dev", 0755) < 0 ||
            mount("tmpfs", NEWROOT "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0)
                return -1;
        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
                char path[64];
                snprintf(path, sizeof(path), NEWROOT "/dev/%s", dev_nodes[i].name);
                dev_t nr = makedev(dev_nodes[i].major, dev_nodes[i].minor);
                if (mknod(path, S_IFCHR | 0666, nr) == 0) {
                        chmod(path, 0666); /* mknod honours the umask */
                        continue;
                }
                /* no CAP_MKNOD (e.g. a user namespace): bind the host's node */
                char host[32];
                snprintf(host, sizeof(host), "/dev/%s", dev_nodes[i].name);
                if (touch_at(AT_FDCWD, path) < 0 || mount(host, path, NULL, MS_BIND, NULL) < 0)
                        return -1;
        }
        if (fill_dev_links_at(AT_FDCWD, NEWROOT "/dev") < 0)
                return -1;
        return mount_dev_fs();
}

/* What ordinary programs expect below /var (lighttpd wants /var/tmp):
 * /var/tmp as /tmp is, /var/lib and /var/cache owned by the application's
 * uid; binds of the spec (made after this) may cover them. /var/run is a
 * link to /run (fill_root_at). */
static int mount_var(uid_t uid, gid_t gid)
{
        char opts[64];
        if (mount("tmpfs", NEWROOT "/var/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
                return -1;
        snprintf(opts, sizeof(opts), "mode=0755,uid=%u,gid=%u", (unsigned)uid, (unsigned)gid);
        if (mount("tmpfs", NEWROOT "/var/lib", "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
                return -1;
        return mount("tmpfs", NEWROOT "/var/cache", "tmpfs", MS_NOSUID | MS_NODEV, opts);
}

static void build_root(const child_ctx *c)
{
        const kpa_instance_spec *spec = c->spec;
        CHECK(c, KPA_STEP_MOUNT_PRIVATE, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        if (c->root_fd >= 0) { /* made by the parent (hand_over_root) */
                CHECK(c, KPA_STEP_ROOT, move_mount(c->root_fd, "", AT_FDCWD, NEWROOT,
                                                   MOVE_MOUNT_F_EMPTY_PATH));
        } else {
                CHECK(c, KPA_STEP_ROOT,
                      mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m"));
                const char *failed;
                CHECK(c, KPA_STEP_MOUNTS, fill_root_at(spec, AT_FDCWD, NEWROOT, &failed));
        }
        /* /tmp and /run before the binds: a host path may be bound below
         * them (a socket in /run, say) */
        CHECK(c, KPA_STEP_PROC,
              mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"));
        CHECK(c, KPA_STEP_PROC,
              mount("tmpfs", NEWROOT "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"));
        CHECK(c, KPA_STEP_PROC, mount_var(spec->uid, spec->gid));
        kpa_trace("child: root tmpfs");
        for (size_t i = 0; i < spec->n_mounts; i++) {
                const kpa_mount_op *op = &spec->mounts[i];
                if (op->kind != KPA_MOUNT_BIND_RO && op->kind != KPA_MOUNT_BIND_RW)
                        continue;
                char target[PATH_MAX];
                snprintf(target, sizeof(target), NEWROOT "%s", op->target);
                CHECK(c, KPA_STEP_MOUNTS, bind_mount(c->trees[i], target));
                kpa_trace(op->target);
        }
        if (c->dev_fd >= 0) {
                CHECK(c, KPA_STEP_DEV, move_mount(c->dev_fd, "", AT_FDCWD, NEWROOT "/dev",
                                                  MOVE_MOUNT_F_EMPTY_PATH));
                CHECK(c, KPA_STEP_DEV, mount_dev_fs());
        } else {
                CHECK(c, KPA_STEP_DEV, make_dev());
        }
        kpa_trace("child: /dev");
        /* /proc before the old root goes: in a user namespace (rootless)
         * the kernel allows a new proc mount only while a fully visible
         * one is still in the namespace */
        CHECK(c, KPA_STEP_PROC, mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
        /* pivot_root(".", ".") stacks the old root under the new one; then
         * detach it, so nothing of the host's tree stays reachable */
        CHECK(c, KPA_STEP_PIVOT_ROOT, chdir(NEWROOT));
        CHECK(c, KPA_STEP_PIVOT_ROOT, (int)syscall(SYS_pivot_root, ".", "."));
        CHECK(c, KPA_STEP_PIVOT_ROOT, umount2(".", MNT_DETACH));
        CHECK(c, KPA_STEP_PIVOT_ROOT, chdir("/"));
        kpa_trace("child: pivot_root");
        CHECK(c, KPA_STEP_ROOT,
              mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL));
}

/* ---- the OCI root (spec->rootfs) ----
 * The bundle's rootfs is bound as the new root and pivoted into first;
 * the mounts are then made in their order with paths inside it, so that a
 * symlink in the image resolves inside the image and never on the host.
 * The binds' sources are detached trees cloned by the parent before. */

static bool path_is_dir(const char *path, bool *exists)
{
        struct stat st;
        *exists = stat(path, &st) == 0;
        return *exists && S_ISDIR(st.st_mode);
}

/* the device nodes and links of kpa's /dev, those still missing */
static int fill_oci_dev(void)
{
        if (mkdir_p_at(AT_FDCWD, "/dev", 0755) < 0)
                return -1;
        int dev = open("/dev", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dev < 0)
                return -1;
        int r = 0;
        for (size_t i = 0; i < ELEMENTSOF(dev_nodes) && r == 0; i++) {
                dev_t nr = makedev(dev_nodes[i].major, dev_nodes[i].minor);
                if (mknodat(dev, dev_nodes[i].name, S_IFCHR | 0666, nr) == 0)
                        r = fchmodat(dev, dev_nodes[i].name, 0666, 0);
                else if (errno != EEXIST)
                        r = -1;
        }
        static const char *const links[][2] = {
                {"pts/ptmx", "ptmx"},         {"/proc/self/fd", "fd"},
                {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                {"/proc/self/fd/2", "stderr"}};
        for (size_t i = 0; i < ELEMENTSOF(links) && r == 0; i++)
                if (symlinkat(links[i][0], dev, links[i][1]) < 0 && errno != EEXIST)
                        r = -1;
        int saved = errno;
        close(dev);
        errno = saved;
        return r;
}

static int oci_mount(const child_ctx *c, size_t i)
{
        const kpa_mount_op *op = &c->spec->mounts[i];
        bool exists;
        switch (op->kind) {
        case KPA_MOUNT_BIND_RO:
        case KPA_MOUNT_BIND_RW: return bind_mount(c->trees[i], op->target);
        case KPA_MOUNT_FS:
                if (mkdir_p_at(AT_FDCWD, op->target, 0755) < 0)
                        return -1;
                return mount(op->source, op->target, op->fstype, op->flags, op->data);
        case KPA_MOUNT_MASK:
                if (path_is_dir(op->target, &exists))
                        return mount("tmpfs", op->target, "tmpfs", MS_RDONLY, "size=0");
                return exists ? mount("/dev/null", op->target, NULL, MS_BIND, NULL) : 0;
        case KPA_MOUNT_READONLY: {
                struct statvfs sv;
                (void)path_is_dir(op->target, &exists);
                if (!exists)
                        return 0;
                if (mount(op->target, op->target, NULL, MS_BIND | MS_REC, NULL) < 0 ||
                    statvfs(op->target, &sv) < 0)
                        return -1;
                unsigned long keep = (sv.f_flag & ST_NOSUID ? MS_NOSUID : 0) |
                                     (sv.f_flag & ST_NODEV ? MS_NODEV : 0) |
                                     (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0);
                return mount(NULL, op->target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | keep, NULL);
        }
        case KPA_MOUNT_SYMLINK:
                return mkdir_parent_at(AT_FDCWD, op->target) < 0
                               ? -1
                               : symlinkat(op->source, AT_FDCWD, op->target);
        case KPA_MOUNT_COPY: return errno = ENOTSUP, -1;
        }
        return 0;
}

static void build_oci_root(const child_ctx *c)
{
        const kpa_instance_spec *spec = c->spec;
        CHECK(c, KPA_STEP_MOUNT_PRIVATE, mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        CHECK(c, KPA_STEP_ROOT, mount(spec->rootfs, NEWROOT, NULL, MS_BIND | MS_REC, NULL));
        CHECK(c, KPA_STEP_PIVOT_ROOT, chdir(NEWROOT));
        CHECK(c, KPA_STEP_PIVOT_ROOT, (int)syscall(SYS_pivot_root, ".", "."));
        CHECK(c, KPA_STEP_PIVOT_ROOT, umount2(".", MNT_DETACH));
        CHECK(c, KPA_STEP_PIVOT_ROOT, chdir("/"));
        /* masks and read-only paths last: over what the mounts made */
        for (size_t i = 0; i < spec->n_mounts; i++)
                if (spec->mounts[i].kind != KPA_MOUNT_MASK &&
                    spec->mounts[i].kind != KPA_MOUNT_READONLY)
                        CHECK(c, KPA_STEP_MOUNTS, oci_mount(c, i));
        CHECK(c, KPA_STEP_DEV, fill_oci_dev());
        for (size_t i = 0; i < spec->n_mounts; i++)
                if (spec->mounts[i].kind == KPA_MOUNT_MASK ||
                    spec->mounts[i].kind == KPA_MOUNT_READONLY)
                        CHECK(c, KPA_STEP_MOUNTS, oci_mount(c, i));
        if (spec->rootfs_readonly)
                CHECK(c, KPA_STEP_ROOT,
                      mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
}

static int loopback_up(void)
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

/* ---- the application: PID 2 ---- */

static const int forwarded_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static _Noreturn void app_fail(int fd, kpa_sandbox_step step, int err)
{
        int32_t msg[2] = {step, err};
        (void)!write(fd, msg, sizeof(msg));
        _exit(127);
}

/* stdio: dup every source out of the way first, so that any order of
 * sources (e.g. stdout given as fd 0) ends up right. */
static int setup_stdio(const int stdio[3])
{
        int tmp[3];
        for (int i = 0; i < 3; i++) {
                int src = stdio[i] >= 0 ? stdio[i] : open("/dev/null", (i ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
                if (src < 0)
                        return -1;
                tmp[i] = fcntl(src, F_DUPFD_CLOEXEC, 10);
                if (tmp[i] < 0)
                        return -1;
        }
        for (int i = 0; i < 3; i++)
                if (dup2(tmp[i], i) < 0)
                        return -1;
        return 0;
}

/* A fresh, empty session keyring, owned by the package's uid: the
 * caller's (kpa-run's user, or the daemon's) is not the package's to see,
 * allowKeyring or not. Kernels without keys have nothing to hide (ENOSYS).
 * Before the filter, which may refuse keyctl (so, for an OCI process whose
 * filter comes first, before the ids change: owned by root then, as under
 * runc, and the process possesses it all the same). */
static void join_new_keyring(int err_fd)
{
        if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0L, 0L, 0L, 0L) < 0 && errno != ENOSYS)
                app_fail(err_fd, KPA_STEP_KEYRING, errno);
}

static _Noreturn void app_main(const child_ctx *c, int err_fd)
{
        const kpa_instance_spec *spec = c->spec;
        sigset_t all;
        sigemptyset(&all);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                signal(forwarded_signals[i], SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &all, NULL);
        kpa_trace("app: started");
        if (setsid() < 0)
                app_fail(err_fd, KPA_STEP_SETSID, errno);
        const int tty_stdio[3] = {c->tty_slave, c->tty_slave, c->tty_slave};
        if (setup_stdio(c->tty_slave >= 0 ? tty_stdio : spec->stdio) < 0)
                app_fail(err_fd, KPA_STEP_STDIO, errno);
        /* its controlling terminal: job control, and ^C as SIGINT */
        if (c->tty_slave >= 0 && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
                app_fail(err_fd, KPA_STEP_TTY, errno);
        /* the handles go to 3..3+n-1; the error pipe rides along at 3+n so
         * that it survives the closing of every other fd, then is CLOEXEC */
        int fds[spec->n_handles + 1];
        if (spec->n_handles) /* (an OCI spec has no handle array at all) */
                memcpy(fds, spec->handle_fds, spec->n_handles * sizeof(int));
        fds[spec->n_handles] = err_fd;
        int r = kpa_handles_install(fds, spec->n_handles + 1);
        if (r < 0)
                app_fail(err_fd, KPA_STEP_HANDLES, -r);
        err_fd = 3 + (int)spec->n_handles;
        fcntl(err_fd, F_SETFD, FD_CLOEXEC);
        /* the saved stderr is closed now (or a handle has its number) */
        trace_to(STDERR_FILENO, "app: stdio, handles");
        const char *failed = NULL;
        /* OCI without no_new_privs: the kernel installs a filter only with
         * no_new_privs or CAP_SYS_ADMIN, which the grant may not keep; so
         * the filter comes first (as under runc), and the keyring, which
         * the filter may refuse, before it */
        const bool filter_first = spec->keep_caps && !spec->keep_caps->no_new_privs;
        if (filter_first) {
                join_new_keyring(err_fd);
                if ((r = kpa_seccomp_apply(c->seccomp, &failed)) < 0)
                        app_fail(err_fd, KPA_STEP_SECCOMP, -r);
        }
        /* the limits are the init's */
        r = kpa_privileges_drop_ids_keep(spec->uid, spec->gid, spec->keep_caps, &failed);
        if (r < 0)
                app_fail(err_fd, KPA_STEP_PRIVILEGES, -r);
        if (!filter_first)
                join_new_keyring(err_fd);
        /* as the application's uid: a directory it cannot enter is refused */
        if (spec->cwd && chdir(spec->cwd) < 0)
                app_fail(err_fd, KPA_STEP_CWD, errno);
        /* last: the filter refuses mount, unshare... that the steps above may use */
        if (!filter_first && (r = kpa_seccomp_apply(c->seccomp, &failed)) < 0)
                app_fail(err_fd, KPA_STEP_SECCOMP, -r);
        trace_to(STDERR_FILENO, "app: privileges dropped, seccomp, exec");
        execve(spec->exec_path, spec->argv, spec->envp);
        app_fail(err_fd, KPA_STEP_EXEC, errno);
}

/* ---- the init: PID 1 ---- */

static int init_signalfd(void)
{
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                sigaddset(&mask, forwarded_signals[i]);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        return signalfd(-1, &mask, SFD_CLOEXEC);
}

static void noop_handler(int sig) { (void)sig; }

static _Noreturn void init_exit(const child_ctx *c, int status)
{
        kpa_trace("init: app ended");
        /* An OOM kill is read here, while this init keeps the group
         * populated: the parent may find it gone (systemd removes an empty
         * scope at once). */
        bool oom = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
                   kpa_oom_fd_killed(init_oom_fd);
        if (c->spec->exit_record_fd >= 0) {
                /* for a supervisor that may not be there to read the report */
                char line[40];
                int len = snprintf(line, sizeof(line), "exited %d%s\n", status, oom ? " oom" : "");
                (void)!pwrite(c->spec->exit_record_fd, line, (size_t)len, 0);
                fdatasync(c->spec->exit_record_fd);
        }
        report(c->report_fd, KPA_REPORT_EXITED, 0, oom ? KPA_EXIT_OOM : 0, status);
        /* leaving kills whatever the application left behind in the namespace */
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static _Noreturn void init_loop(const child_ctx *c, int sfd, pid_t app)
{
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = c->death_fd, .events = POLLIN}};
        for (;;) {
                if (poll(pfd, c->death_fd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(127);
                }
                if (c->death_fd >= 0 && pfd[1].revents) {
                        /* whoever started us is gone: so is the instance */
                        kill(-1, SIGKILL);
                        _exit(128 + SIGKILL);
                }
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof(si)) != sizeof(si))
                        continue;
                if (si.ssi_signo != SIGCHLD) {
                        kill(-1, (int)si.ssi_signo); /* everyone in the namespace but us */
                        continue;
                }
                int status;
                pid_t p;
                while ((p = waitpid(-1, &status, WNOHANG)) > 0)
                        if (p == app)
                                init_exit(c, status);
        }
}

/* The application is started with CLONE_VM|CLONE_VFORK, as posix_spawn()
 * does: no copy of the init's page tables, and the init sleeps until the
 * exec (or the application's failure) releases it, which saves 30-170 us
 * over fork() (PERF-NOTES.md). It runs on a stack of its own. What it does
 * before the exec is safe in a child that shares the init's memory: the
 * init is single-threaded and suspended, so the allocations libcap makes
 * see a consistent heap, and everything else is system calls on the
 * child's own fds, signal dispositions and ids (not shared without
 * CLONE_FILES, CLONE_SIGHAND or CLONE_THREAD). */
typedef struct app_args {
        const child_ctx *c;
        int err_fd;
} app_args;

static int app_entry(void *arg)
{
        const app_args *a = arg;
        app_main(a->c, a->err_fd);
}

#define APP_STACK_SIZE (256 * 1024)

static pid_t start_app(const child_ctx *c, int err_fd)
{
        /* only the init, a fresh copy of the caller, ever uses it */
        static char stack[APP_STACK_SIZE] __attribute__((aligned(16)));
        app_args a = {.c = c, .err_fd = err_fd};
        return clone(app_entry, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
}

/* OCI create/start: the sandbox is ready, the application waits for a
 * byte on the start FIFO (kpa-oci start writes it). A FIFO that no writer
 * opened yet polls as empty, so this sleeps until then. A signal meant for
 * the instance ends it before it started. */
static void wait_for_start(const child_ctx *c, int sfd)
{
        struct pollfd pfd[2] = {{.fd = c->start_fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        for (;;) {
                if (poll(pfd, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        child_fail(c, KPA_STEP_START_WAIT, errno);
                }
                if (pfd[1].revents) {
                        struct signalfd_siginfo si;
                        if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD)
                                _exit(128 + (int)si.ssi_signo);
                        continue;
                }
                char go;
                ssize_t n = read(c->start_fd, &go, 1);
                if (n == 1)
                        break;
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                _exit(127); /* the starter left without a word */
        }
        close(c->start_fd);
}

/* The argv area of this process (fields 48 and 49 of /proc/self/stat), read
 * once by the parent: every init is a copy of it, at the same addresses. */
static char *argv_area;
static size_t argv_area_len;

static pthread_once_t argv_area_once = PTHREAD_ONCE_INIT;

static void find_argv_area(void)
{
        char buf[1024];
        _cleanup_close_ int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return;
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        unsigned long long start = 0, end = 0;
        for (int field = 2; p && field < 49; field++) {
                p = strchr(p + 1, ' ');
                if (p && field + 1 == 48)
                        start = strtoull(p + 1, NULL, 10);
                if (p && field + 1 == 49)
                        end = strtoull(p + 1, NULL, 10);
        }
        if (start && end > start) {
                /* an address the kernel gave: no other way to reach it */
                argv_area = (char *)(uintptr_t)start; // NOLINT(performance-no-int-to-ptr)
                argv_area_len = (size_t)(end - start);
        }
}

/* ps shows NAME for this init, not the command line of the daemon or tool
 * it was cloned from: NAME goes over the argv area it inherited (its own
 * copy), NUL-terminated, and the area's last byte is made non-zero so that
 * /proc/PID/cmdline ends at that NUL (the kernel's setproctitle rule). The
 * comm is "kpa-init", all that fits its 16 bytes. */
static void name_init(const char *name)
{
        (void)prctl(PR_SET_NAME, "kpa-init", 0, 0, 0);
        if (!name || !argv_area || argv_area_len < 2)
                return;
        size_t len = strlen(name);
        if (len > argv_area_len - 1)
                len = argv_area_len - 1;
        memset(argv_area, 0, argv_area_len); /* so NAME ends in a NUL of the area */
        memcpy(argv_area, name, len); // NOLINT(bugprone-not-null-terminated-result)
        if (len + 1 < argv_area_len)
                argv_area[argv_area_len - 1] = ' ';
}

static _Noreturn void init_main(const child_ctx *c)
{
        name_init(c->spec->init_name);
        int sfd = init_signalfd();
        if (sfd < 0)
                child_fail(c, KPA_STEP_INIT, errno);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_signals); i++)
                signal(forwarded_signals[i], noop_handler); /* so that they reach PID 1 */
        /* a report to a supervisor that has died must not kill the instance */
        signal(SIGPIPE, SIG_IGN);
        if (c->start_fd >= 0)
                wait_for_start(c, sfd);
        int err_pipe[2];
        if (pipe2(err_pipe, O_CLOEXEC) < 0)
                child_fail(c, KPA_STEP_FORK, errno);
        kpa_trace("init: fork app");
        pid_t app = start_app(c, err_pipe[1]);
        if (app < 0)
                child_fail(c, KPA_STEP_FORK, errno);
        close(err_pipe[1]);
        if (c->tty_slave >= 0) /* the application's alone: its end closes the pty */
                close(c->tty_slave);
        for (size_t i = 0; i < c->spec->n_handles; i++)
                if (!c->spec->detached || i >= c->spec->n_init_kept_handles)
                        close(c->spec->handle_fds[i]);
        int32_t msg[2];
        ssize_t n;
        while ((n = read(err_pipe[0], msg, sizeof(msg))) < 0 && errno == EINTR)
                ;
        close(err_pipe[0]);
        if (n == sizeof(msg)) {
                waitpid(app, NULL, 0);
                child_fail(c, msg[0], msg[1]);
        }
        kpa_trace("init: app running");
        report(c->report_fd, KPA_REPORT_RUNNING, 0, 0, app);
        init_loop(c, sfd, app);
}

/* A detached copy of bind OP's source, with OP's mount flags set: of its
 * source fd (BY_FD), else of its path; -1 with errno (ENOENT: the source
 * is missing). Made before the new root is mounted over NEWROOT, which may
 * hide a source path below it. */
static int detached_copy(const kpa_mount_op *op, bool by_fd)
{
        /* a fresh detached mount is moved itself: kernels before 6.5 (this
         * guest's 6.1) refuse to clone one */
        if (by_fd && op->detached)
                return fcntl(op->source_fd, F_DUPFD_CLOEXEC, 3);
        int t = by_fd ? open_tree(op->source_fd, "",
                                  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE)
                      : open_tree(AT_FDCWD, op->source,
                                  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (t < 0)
                return -1;
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
        if (op->kind == KPA_MOUNT_BIND_RO)
                attr.attr_set |= MOUNT_ATTR_RDONLY;
        if (op->flags & MS_NOEXEC)
                attr.attr_set |= MOUNT_ATTR_NOEXEC;
        if (mount_setattr(t, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
                int e = errno;
                close(t);
                return errno = e, -1;
        }
        return t;
}

/* A detached copy of OP's source, for a bind (rootless), or -1. */
static int child_tree(const child_ctx *c, const kpa_mount_op *op)
{
        if ((op->kind != KPA_MOUNT_BIND_RO && op->kind != KPA_MOUNT_BIND_RW) || !op->source)
                return -1;
        int t = detached_copy(op, false);
        if (t < 0 && !(op->optional && errno == ENOENT))
                child_fail(c, KPA_STEP_MOUNTS, errno);
        return t;
}

/* OCI: join the namespace at PATH (NULL: keep the new one) */
static void join_ns(const child_ctx *c, const char *path, int type)
{
        if (!path)
                return;
        int ns = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(c, KPA_STEP_NETNS, ns);
        CHECK(c, KPA_STEP_NETNS, setns(ns, type));
        close(ns);
}

static _Noreturn void child_main(const child_ctx *c)
{
        const kpa_instance_spec *spec = c->spec;
        kpa_trace("child: started");
        if (c->sync_fd >= 0) {
                char go;
                ssize_t n;
                while ((n = read(c->sync_fd, &go, 1)) < 0 && errno == EINTR)
                        ;
                if (n != 1)
                        _exit(127); /* the parent could not map our ids */
                close(c->sync_fd);
        }
        /* No PR_SET_PDEATHSIG: it follows the thread that made us, and a
         * libkpa caller may start from a worker thread that ends long
         * before the instance should. The death pipe (held by the whole
         * starting process) ties the instance to its caller instead: the
         * init's loop ends the instance when it reads end-of-file there. */
        /* out of the caller's session and process group, so that a Ctrl-C
         * at the caller's terminal reaches the caller (which turns it into
         * a Normal stop) and not the instance */
        setsid();
        if (c->death_fd >= 0) {
                struct pollfd p = {.fd = c->death_fd, .events = POLLIN};
                if (poll(&p, 1, 0) > 0)
                        _exit(127); /* the caller is gone already */
        }
        /* The network namespace is made here rather than by clone3: making
         * one costs 300-500 us of CPU, and here it is the child's, spent in
         * parallel with its parent (a kpa-execd serving other clients)
         * instead of inside the parent's clone call. */
        if (spec->netns_path) { /* OCI: a given one */
                join_ns(c, spec->netns_path, CLONE_NEWNET);
        } else if (spec->new_net && c->netns_fd >= 0) { /* from kpa-execd's pool */
                CHECK(c, KPA_STEP_CLONE, setns(c->netns_fd, CLONE_NEWNET));
                close(c->netns_fd);
        } else if (spec->new_net) {
                CHECK(c, KPA_STEP_CLONE, unshare(CLONE_NEWNET));
        }
        join_ns(c, spec->ipcns_path, CLONE_NEWIPC);
        join_ns(c, spec->utsns_path, CLONE_NEWUTS);
        if (spec->hostname)
                CHECK(c, KPA_STEP_HOSTNAME, sethostname(spec->hostname, strlen(spec->hostname)));
        kpa_trace("child: netns, hostname");
        /* rootless: the parent could not clone the mounts to bind (that
         * needs privileges it lacks); this child can, in its own mount
         * namespace, and must before the new root's tmpfs hides them */
        int own_trees[spec->n_mounts + 1];
        child_ctx cc = *c;
        if (spec->start_fifo) { /* a host path: opened before the root changes */
                cc.start_fd = open(spec->start_fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
                CHECK(c, KPA_STEP_START_WAIT, cc.start_fd);
        }
        if (spec->rootfs) {
                build_oci_root(&cc);
        } else if (spec->userns) {
                for (size_t i = 0; i < spec->n_mounts; i++)
                        own_trees[i] = child_tree(c, &spec->mounts[i]);
                cc.trees = own_trees;
        } else {
                receive_root(&cc);
        }
        if (!spec->rootfs)
                build_root(&cc);
        for (size_t i = 0; i < spec->n_mounts; i++)
                if (cc.trees[i] >= 0)
                        close(cc.trees[i]);
        closep(&cc.root_fd);
        closep(&cc.dev_fd);
        kpa_trace("child: root done");
        if (spec->tty)
                open_tty(&cc);
        if (spec->new_net && c->netns_fd < 0)
                CHECK(c, KPA_STEP_LOOPBACK, loopback_up());
        kpa_trace("child: loopback");
        /* the capability limits, while the parent may still be making the
         * cgroup: the init keeps its effective capabilities, and the
         * application inherits the limits */
        const char *failed = NULL;
        int r = kpa_privileges_limit_keep(spec->keep_caps, &failed);
        if (r < 0)
                child_fail(c, KPA_STEP_PRIVILEGES, -r);
        kpa_seccomp_prog prog;
        receive_setup(c, &prog);
        cc.seccomp = &prog;
        kpa_trace("child: cgroup joined");
        CHECK(c, KPA_STEP_CGROUP_NS, unshare(CLONE_NEWCGROUP));
        report(c->report_fd, KPA_REPORT_PREPARED, 0, 0, 0);
        init_main(&cc);
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
               spec->limits.pids || spec->limits.cpu_weight;
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

/* A tmpfs with MODE and SIZE, as a detached mount with ATTRS, or -1. */
static int detached_tmpfs(const char *mode, const char *size, unsigned attrs)
{
        _cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs < 0 || fsconfig(fs, FSCONFIG_SET_STRING, "source", "tmpfs", 0) < 0 ||
            fsconfig(fs, FSCONFIG_SET_STRING, "mode", mode, 0) < 0 ||
            fsconfig(fs, FSCONFIG_SET_STRING, "size", size, 0) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return -1;
        return fsmount(fs, FSMOUNT_CLOEXEC, attrs);
}

/* Make the new root (a tmpfs with what fill_root_at puts there) and its
 * /dev (the device nodes and links) as detached mounts, and send them to
 * the child, which only attaches them. This is done here, while the child
 * makes its namespaces on another CPU, rather than in the child: about
 * 0.3 ms less before the application starts. Not rootless: outside a user
 * namespace of its own an unprivileged user cannot make a tmpfs. */
static int hand_over_root(const kpa_instance_spec *spec, int setup_fd, kpa_error *err)
{
        _cleanup_close_ int root =
                detached_tmpfs("0755", "1m", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (root < 0)
                return kpa_error_set_errno(err, errno, "the new root: cannot make a tmpfs");
        const char *failed = "/dev";
        if (mkdirat(root, "dev", 0755) < 0 || fill_root_at(spec, root, ".", &failed) < 0)
                return kpa_error_set_errno(err, errno, "the new root: cannot make %s", failed);
        _cleanup_close_ int dev =
                detached_tmpfs("0755", "64k", MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC);
        if (dev < 0)
                return kpa_error_set_errno(err, errno, "the new /dev: cannot make a tmpfs");
        for (size_t i = 0; i < ELEMENTSOF(dev_nodes); i++) {
                const char *name = dev_nodes[i].name;
                /* mknod honours the umask */
                dev_t nr = makedev(dev_nodes[i].major, dev_nodes[i].minor);
                if (mknodat(dev, name, S_IFCHR | 0666, nr) < 0 || fchmodat(dev, name, 0666, 0) < 0)
                        return kpa_error_set_errno(err, errno, "the new /dev: cannot make %s",
                                                   name);
        }
        if (fill_dev_links_at(dev, ".") < 0)
                return kpa_error_set_errno(err, errno, "the new /dev: cannot make its links");
        int q = send_root(setup_fd, root, dev);
        if (q == -EPIPE || q == -ECONNRESET)
                q = 0; /* the child is gone; its report says why */
        if (q < 0)
                return kpa_error_set_errno(err, -q, "cannot send the new root to the child");
        return 0;
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
                pthread_once(&argv_area_once, find_argv_area); /* threads may start at once */
        int pidfd = -1;
        /* a network namespace made ahead of time (kpa-execd's pool): the
         * child enters it instead of making one; used once, closed here */
        int netns_fd =
                spec->new_net && !spec->userns && netns_source ? netns_source(netns_source_data) : -1;
        struct clone_args args = {
                .flags = CLONE_PIDFD | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS |
                         (spec->userns ? CLONE_NEWUSER : 0),
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
        if (pid != 0)
                pthread_sigmask(SIG_SETMASK, &caller_mask, NULL);
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
