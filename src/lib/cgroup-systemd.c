/* cgroup-systemd.c: the systemd cgroup driver. On a host where systemd is
 * PID 1 and owns the cgroup v2 tree, a program that makes cgroups of its
 * own below its own unit fights systemd's rules (no processes in inner
 * groups, a restart puts the new main process back into the unit's group).
 * So kpa asks systemd for each instance's group instead, as runc and crun
 * do with --systemd-cgroup: a transient scope unit that holds the
 * instance's init, with the limits as unit properties.
 *
 * This file holds the choice of driver and the talk with systemd: one
 * StartTransientUnit call per instance, on systemd's private socket, for
 * the scope kpa-APP-INST.scope in kpa-APP.slice (whose parent, by systemd's
 * naming, is kpa.slice) with Delegate=yes, CollectMode=inactive-or-failed
 * and the limits as MemoryMax, MemorySwapMax, TasksMax and CPUWeight. The
 * scope is made for the instance's init, which waits (see sandbox.c) until
 * systemd has moved it in; the scope's group is then treated as kpa's own
 * are (listing, cgroup.kill, memory.events: its kpa_cgroup, at the end of
 * this file), but never removed: systemd does, once it is empty. */
#include "config.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include "cgroup-priv.h"
#include "cgroup.h"
#include "util.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

static pthread_mutex_t driver_lock = PTHREAD_MUTEX_INITIALIZER;
static kpa_cgroup_driver chosen = KPA_CGROUP_DRIVER_AUTO;
static bool chosen_set;
static kpa_cgroup_driver detected = KPA_CGROUP_DRIVER_AUTO;

static int parse_driver(const char *name, kpa_cgroup_driver *out)
{
        if (streq(name, "auto"))
                *out = KPA_CGROUP_DRIVER_AUTO;
        else if (streq(name, "cgroupfs"))
                *out = KPA_CGROUP_DRIVER_CGROUPFS;
        else if (streq(name, "systemd"))
                *out = KPA_CGROUP_DRIVER_SYSTEMD;
        else
                return -EINVAL;
        return 0;
}

const char *kpa_cgroup_driver_name(kpa_cgroup_driver d)
{
        switch (d) {
        case KPA_CGROUP_DRIVER_CGROUPFS: return "cgroupfs";
        case KPA_CGROUP_DRIVER_SYSTEMD: return "systemd";
        case KPA_CGROUP_DRIVER_AUTO: break;
        }
        return "auto";
}

int kpa_cgroup_driver_set(const char *name, kpa_error *err)
{
        kpa_cgroup_driver d;
        if (!name || parse_driver(name, &d) < 0)
                return kpa_error_set(err, EINVAL,
                                     "unknown cgroup driver \"%s\" (auto, cgroupfs or systemd)",
                                     name ? name : "");
        pthread_mutex_lock(&driver_lock);
        chosen = d;
        chosen_set = true;
        pthread_mutex_unlock(&driver_lock);
        return 0;
}

/* The socket on which the systemd instance that manages this user's
 * cgroups answers directly, without a D-Bus daemon: the system manager's
 * for root, the user manager's otherwise. */
char *kpa_systemd_private_socket(void)
{
        if (geteuid() == 0)
                return kpa_xstrdup("/run/systemd/private");
        const char *rt = getenv("XDG_RUNTIME_DIR");
        if (rt && rt[0] == '/')
                return kpa_xasprintf("%s/systemd/private", rt);
        return kpa_xasprintf("/run/user/%u/systemd/private", (unsigned)geteuid());
}

bool kpa_systemd_booted(void)
{
        return access("/run/systemd/system", F_OK) == 0;
}

static kpa_cgroup_driver detect(void)
{
        struct statfs fs;
        if (!kpa_systemd_booted() || statfs(CGROUP_ROOT, &fs) < 0 ||
            fs.f_type != CGROUP2_SUPER_MAGIC)
                return KPA_CGROUP_DRIVER_CGROUPFS;
        _cleanup_free_ char *sock = kpa_systemd_private_socket();
        struct stat st;
        if (stat(sock, &st) < 0 || !S_ISSOCK(st.st_mode))
                return KPA_CGROUP_DRIVER_CGROUPFS;
        return KPA_CGROUP_DRIVER_SYSTEMD;
}

int kpa_cgroup_driver_get(kpa_cgroup_driver *out, kpa_error *err)
{
        pthread_mutex_lock(&driver_lock);
        kpa_cgroup_driver d = chosen;
        bool set = chosen_set;
        pthread_mutex_unlock(&driver_lock);
        if (!set) {
                const char *env = getenv("KPA_CGROUP_DRIVER");
                if (env && *env && parse_driver(env, &d) < 0)
                        return kpa_error_set(err, EINVAL,
                                             "KPA_CGROUP_DRIVER=%s: unknown cgroup driver "
                                             "(auto, cgroupfs or systemd)",
                                             env);
        }
        if (d == KPA_CGROUP_DRIVER_AUTO) {
                pthread_mutex_lock(&driver_lock);
                if (detected == KPA_CGROUP_DRIVER_AUTO)
                        detected = detect();
                d = detected;
                pthread_mutex_unlock(&driver_lock);
        }
        *out = d;
        return 0;
}

/* ---- sd-bus, loaded when first needed ----
 * libsystemd is opened with dlopen() rather than linked: kpa-run is linked
 * for a fast start (its libraries are static where Debian ships archives),
 * and a host without systemd, or a start with the cgroupfs driver, should
 * not pay for loading libsystemd and the five libraries it needs. The
 * declarations come from <systemd/sd-bus.h>; the symbols from the library
 * the running system has (libsystemd0). */
#define SD_SYMBOLS(X)                                                                              \
        X(sd_bus_new)                                                                              \
        X(sd_bus_set_address)                                                                      \
        X(sd_bus_start)                                                                            \
        X(sd_bus_flush_close_unref)                                                                \
        X(sd_bus_message_new_method_call)                                                          \
        X(sd_bus_message_append)                                                                   \
        X(sd_bus_message_open_container)                                                           \
        X(sd_bus_message_close_container)                                                          \
        X(sd_bus_message_unref)                                                                    \
        X(sd_bus_call)                                                                             \
        X(sd_bus_call_async)                                                                       \
        X(sd_bus_process)                                                                          \
        X(sd_bus_wait)                                                                             \
        X(sd_bus_slot_unref)                                                                       \
        X(sd_bus_message_ref)                                                                      \
        X(sd_bus_message_get_error)                                                                \
        X(sd_bus_message_get_errno)                                                                \
        X(sd_bus_error_free)

static struct {
/* (NAME is a declarator: it cannot be parenthesized) */
#define SD_FIELD(name) __typeof__(&name) name; /* NOLINT(bugprone-macro-parentheses) */
        SD_SYMBOLS(SD_FIELD)
#undef SD_FIELD
} sd;

static pthread_once_t sd_once = PTHREAD_ONCE_INIT;
static char sd_load_error[256];

static void sd_load(void)
{
        void *lib = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!lib) {
                snprintf(sd_load_error, sizeof(sd_load_error), "%s", dlerror());
                return;
        }
#define SD_LOAD(name)                                                                              \
        sd.name = (__typeof__(&name))dlsym(lib, #name); /* NOLINT(bugprone-macro-parentheses) */   \
        if (!sd.name) {                                                                            \
                snprintf(sd_load_error, sizeof(sd_load_error), "libsystemd.so.0 has no %s",        \
                         #name);                                                                   \
                return;                                                                            \
        }
        SD_SYMBOLS(SD_LOAD)
#undef SD_LOAD
}

static int sd_ready(kpa_error *err)
{
        pthread_once(&sd_once, sd_load);
        if (sd_load_error[0])
                return kpa_error_set(err, ENOSYS, "the systemd cgroup driver needs libsystemd: %s",
                                     sd_load_error);
        return 0;
}

/* One connection per process, to systemd's private socket (no D-Bus
 * daemon needed: systemctl does the same as root), made at the first
 * scope and kept; a lock serializes its users (sd-bus is not
 * thread-safe), and a connection that broke (systemd re-executed) or
 * belongs to the parent of a fork is replaced once. */
static pthread_mutex_t bus_lock = PTHREAD_MUTEX_INITIALIZER;
static sd_bus *bus;
static pid_t bus_pid;

static int bus_connect(kpa_error *err)
{
        if (bus && bus_pid == getpid())
                return 0;
        bus = NULL; /* a fork's copy belongs to the parent: leave it */
        _cleanup_free_ char *sock = kpa_systemd_private_socket();
        _cleanup_free_ char *addr = kpa_xasprintf("unix:path=%s", sock);
        sd_bus *b = NULL;
        int r = sd.sd_bus_new(&b);
        if (r >= 0)
                r = sd.sd_bus_set_address(b, addr);
        if (r >= 0)
                r = sd.sd_bus_start(b);
        if (r < 0) {
                if (b)
                        sd.sd_bus_flush_close_unref(b);
                return kpa_error_set_errno(err, -r, "cannot connect to systemd at %s", sock);
        }
        bus = b;
        bus_pid = getpid();
        return 0;
}

static void bus_drop(void)
{
        if (bus && bus_pid == getpid())
                sd.sd_bus_flush_close_unref(bus);
        bus = NULL;
}

/* ---- scopes ---- */

/* systemd's unit name escaping for the application id: '-' separates the
 * levels of a slice name, so it (and anything else outside [A-Za-z0-9:_.],
 * and a leading '.') becomes \xNN. */
static char *unit_escape(const char *s)
{
        char *out = kpa_xmalloc(strlen(s) * 4 + 1), *o = out;
        for (const char *p = s; *p; p++) {
                unsigned char c = (unsigned char)*p;
                bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == ':' || c == '_' || (c == '.' && p != s);
                if (plain)
                        *o++ = (char)c;
                else
                        o += sprintf(o, "\\x%02x", c);
        }
        *o = '\0';
        return out;
}

#define UNIT_NAME_MAX 255

int kpa_systemd_unit_names(const char *app_id, const char *instance, char **slice, char **scope,
                           kpa_error *err)
{
        _cleanup_free_ char *app = unit_escape(app_id);
        _cleanup_free_ char *sc = kpa_xasprintf("kpa-%s-%s.scope", app, instance);
        if (strlen(sc) > UNIT_NAME_MAX)
                return kpa_error_set(err, ENAMETOOLONG,
                                     "application id \"%s\": too long for a systemd unit name "
                                     "(%zu characters escaped, at most %d)",
                                     app_id, strlen(sc), UNIT_NAME_MAX);
        *slice = kpa_xasprintf("kpa-%s.slice", app);
        *scope = TAKE_PTR(sc);
        return 0;
}

/* Is GROUP ("a/b/c") the group WANT ("b/c") or below a parent of it:
 * the system manager's scopes are at the root, a user manager's below
 * user@UID.service. */
static bool is_group(const char *group, const char *want)
{
        size_t n = strlen(group), m = strlen(want);
        return n >= m && streq(group + n - m, want) && (n == m || group[n - m - 1] == '/');
}

static void sleep_us(long us)
{
        struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
        nanosleep(&ts, NULL);
}

#define SCOPE_WAIT_MS 10000
#define BUS_TIMEOUT_US (25ULL * 1000000)

static int append_props(sd_bus_message *m, const char *app_id, const char *instance,
                        const char *slice, const kpa_cgroup_limits *lim, pid_t pid)
{
        _cleanup_free_ char *desc = kpa_xasprintf("kpa: %s, instance %s", app_id, instance);
        int r = sd.sd_bus_message_open_container(m, 'a', "(sv)");
        if (r >= 0)
                r = sd.sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)", "Description", "s", desc,
                                             "Slice", "s", slice, "PIDs", "au", 1, (uint32_t)pid,
                                             "Delegate", "b", 1, "CollectMode", "s",
                                             "inactive-or-failed");
        if (r >= 0 && lim->memory_bytes)
                r = sd.sd_bus_message_append(m, "(sv)(sv)", "MemoryMax", "t", lim->memory_bytes,
                                             "MemorySwapMax", "t", (uint64_t)0);
        if (r >= 0 && lim->pids)
                r = sd.sd_bus_message_append(m, "(sv)", "TasksMax", "t", lim->pids);
        if (r >= 0 && lim->cpu_weight)
                r = sd.sd_bus_message_append(m, "(sv)", "CPUWeight", "t", lim->cpu_weight);
        if (r >= 0)
                r = sd.sd_bus_message_close_container(m);
        if (r >= 0) /* no auxiliary units */
                r = sd.sd_bus_message_append(m, "a(sa(sv))", 0);
        return r;
}

static int start_scope_call(const char *scope, const char *app_id, const char *instance,
                            const char *slice, const kpa_cgroup_limits *lim, pid_t pid,
                            kpa_error *err)
{
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd.sd_bus_message_new_method_call(
                bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager", "StartTransientUnit");
        if (r >= 0)
                r = sd.sd_bus_message_append(m, "ss", scope, "fail");
        if (r >= 0)
                r = append_props(m, app_id, instance, slice, lim, pid);
        if (r < 0) {
                sd.sd_bus_message_unref(m);
                return kpa_error_set_errno(err, -r, "systemd scope %s: cannot build the request",
                                           scope);
        }
        r = sd.sd_bus_call(bus, m, BUS_TIMEOUT_US, &e, &reply);
        if (r < 0)
                kpa_error_set_errno(err, -r, "systemd scope %s: systemd refused to start it: %s",
                                    scope, e.message ? e.message : strerror(-r));
        sd.sd_bus_error_free(&e);
        sd.sd_bus_message_unref(reply);
        sd.sd_bus_message_unref(m);
        return r < 0 ? r : 0;
}

/* A scope asked for and not answered yet (kpa_systemd_scope_send): the
 * request goes out right after the clone, and its answer is awaited only
 * when the parent has built the child's root, so systemd's work on the job
 * overlaps the parent's. It holds bus_lock until it is finished or
 * cancelled. */
struct kpa_scope_request {
        char *app_id, *instance, *slice, *scope;
        kpa_cgroup_limits lim;
        pid_t pid;
        sd_bus_slot *slot;
        sd_bus_message *reply; /* set by scope_reply() */
        bool answered;
};

static int scope_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        kpa_scope_request *rq = userdata;
        rq->reply = sd.sd_bus_message_ref(m);
        rq->answered = true;
        return 0;
}

static void request_free(kpa_scope_request *rq)
{
        free(rq->app_id);
        free(rq->instance);
        free(rq->slice);
        free(rq->scope);
        free(rq);
}

/* Send RQ's StartTransientUnit without waiting for the answer. */
static int scope_send_async(kpa_scope_request *rq)
{
        sd_bus_message *m = NULL;
        int r = sd.sd_bus_message_new_method_call(
                bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager", "StartTransientUnit");
        if (r >= 0)
                r = sd.sd_bus_message_append(m, "ss", rq->scope, "fail");
        if (r >= 0)
                r = append_props(m, rq->app_id, rq->instance, rq->slice, &rq->lim, rq->pid);
        if (r >= 0)
                r = sd.sd_bus_call_async(bus, &rq->slot, m, scope_reply, rq, BUS_TIMEOUT_US);
        sd.sd_bus_message_unref(m);
        return r;
}

int kpa_systemd_scope_send(const char *app_id, const char *instance, const kpa_cgroup_limits *lim,
                           pid_t pid, kpa_scope_request **out, kpa_error *err)
{
        int r = sd_ready(err);
        if (r < 0)
                return r;
        kpa_scope_request *rq = kpa_xcalloc(1, sizeof(*rq));
        r = kpa_systemd_unit_names(app_id, instance, &rq->slice, &rq->scope, err);
        if (r < 0) {
                request_free(rq);
                return r;
        }
        rq->app_id = kpa_xstrdup(app_id);
        rq->instance = kpa_xstrdup(instance);
        rq->lim = *lim;
        rq->pid = pid;
        pthread_mutex_lock(&bus_lock);
        r = bus_connect(err);
        if (r == 0 && (r = scope_send_async(rq)) < 0) {
                /* a connection that broke since the last scope: once more */
                bus_drop();
                r = bus_connect(err);
                if (r == 0 && (r = scope_send_async(rq)) < 0)
                        kpa_error_set_errno(err, -r, "systemd scope %s: cannot send the request",
                                            rq->scope);
        }
        if (r < 0) {
                pthread_mutex_unlock(&bus_lock);
                request_free(rq);
                return r;
        }
        *out = rq;
        return 0;
}

void kpa_systemd_scope_cancel(kpa_scope_request *rq)
{
        if (!rq)
                return;
        sd.sd_bus_slot_unref(rq->slot);
        sd.sd_bus_message_unref(rq->reply);
        pthread_mutex_unlock(&bus_lock);
        request_free(rq);
}

/* Wait for RQ's answer (bus_lock held); 0, or -errno with ERR set. */
static int scope_answer(kpa_scope_request *rq, kpa_error *err)
{
        int r = 0;
        while (!rq->answered && r >= 0) {
                r = sd.sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd.sd_bus_wait(bus, BUS_TIMEOUT_US);
        }
        if (!rq->answered) { /* the connection broke: ask again, and wait */
                bus_drop();
                r = bus_connect(err);
                if (r == 0)
                        r = start_scope_call(rq->scope, rq->app_id, rq->instance, rq->slice,
                                             &rq->lim, rq->pid, err);
                if (r == -ECONNRESET || r == -ENOTCONN || r == -EPIPE)
                        bus_drop();
                return r;
        }
        const sd_bus_error *e = sd.sd_bus_message_get_error(rq->reply);
        if (!e)
                return 0;
        r = sd.sd_bus_message_get_errno(rq->reply);
        r = r > 0 ? r : EIO;
        return kpa_error_set_errno(err, r, "systemd scope %s: systemd refused to start it: %s",
                                   rq->scope, e->message ? e->message : strerror(r));
}

int kpa_systemd_start_scope(const char *app_id, const char *instance, const kpa_cgroup_limits *lim,
                            pid_t pid, char **cgroup_path, kpa_error *err)
{
        kpa_scope_request *rq = NULL;
        int r = kpa_systemd_scope_send(app_id, instance, lim, pid, &rq, err);
        return r < 0 ? r : kpa_systemd_scope_finish(rq, cgroup_path, err);
}

int kpa_systemd_scope_finish(kpa_scope_request *rq, char **cgroup_path, kpa_error *err)
{
        int r = scope_answer(rq, err);
        sd.sd_bus_slot_unref(rq->slot);
        rq->slot = NULL;
        sd.sd_bus_message_unref(rq->reply);
        rq->reply = NULL;
        pthread_mutex_unlock(&bus_lock);
        pid_t pid = rq->pid;
        _cleanup_free_ char *slice = TAKE_PTR(rq->slice), *scope = TAKE_PTR(rq->scope);
        request_free(rq);
        if (r < 0)
                return r;
        /* The job that moves PID runs after the call returns: wait until
         * PID is in the scope's group, which is all a start needs. */
        _cleanup_free_ char *want = kpa_xasprintf("kpa.slice/%s/%s", slice, scope);
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (long delay = 50;; delay = delay < 5000 ? delay * 2 : delay) {
                char *path = NULL;
                if (kpa_cgroup_v2_path(pid, &path) == 0 && is_group(path, want)) {
                        *cgroup_path = path;
                        return 0;
                }
                free(path);
                siginfo_t si = {0}; /* PID is our child: a zombie is ended too */
                if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0
                            ? si.si_pid == pid
                            : kill(pid, 0) < 0 && errno == ESRCH)
                        return kpa_error_set(err, ESRCH,
                                             "systemd scope %s: process %d ended before "
                                             "systemd moved it into the scope",
                                             scope, (int)pid);
                clock_gettime(CLOCK_MONOTONIC, &now);
                long ms = (now.tv_sec - start.tv_sec) * 1000 +
                          (now.tv_nsec - start.tv_nsec) / 1000000;
                if (ms > SCOPE_WAIT_MS)
                        return kpa_error_set(err, ETIMEDOUT,
                                             "systemd scope %s: process %d is not in it %d s "
                                             "after its start (systemctl status %s may say why)",
                                             scope, (int)pid, SCOPE_WAIT_MS / 1000, scope);
                sleep_us(delay);
        }
}

/* ---- the systemd driver's groups ----
 * A scope's group is one v2 group that systemd made: kpa_cgroup holds it
 * as a single v2 hierarchy whose instance level is the scope's path, locks
 * it like its own, and lists, kills and reads it the same way; it never
 * removes it, nor anything above it (systemd does, once it is empty). */

/* The mount point of the v2 hierarchy with one of kpa's controllers, or
 * NULL (after lcg_init()). */
static const char *v2_mount(void)
{
        for (int c = 0; c < N_CTRL; c++)
                if (lcg_mount[c] && lcg_v2[c])
                        return lcg_mount[c];
        return NULL;
}

/* CG for the scope group at PATH ("/kpa.slice/.../X.scope"), locked. */
static int scope_group(const char *path, kpa_cgroup **out, kpa_error *err)
{
        int r = disc_init(err);
        if (r < 0)
                return r;
        const char *mount = v2_mount();
        if (!mount)
                return kpa_error_set(err, ENODEV,
                                     "cgroup: the systemd driver needs cgroup v2 with the pids "
                                     "or memory controller");
        _cleanup_(group_freep) kpa_cgroup *cg = kpa_xcalloc(1, sizeof(*cg));
        cg->v2_fd = -1;
        cg->systemd = true;
        for (size_t i = 0; i < N_CTRL; i++)
                cg->h[i].lock_fd = -1; /* every one is cleared (closed) on free */
        cg->n = 1;
        hierarchy *h = &cg->h[0];
        h->v2 = true;
        h->ops = &cgroup_v2_ops;
        for (int c = 0; c < N_CTRL; c++)
                if (lcg_mount[c] && lcg_v2[c] && streq(lcg_mount[c], mount))
                        h->ctrls |= BIT(c);
        h->mount = kpa_xstrdup(mount);
        h->parent = kpa_xstrdup("");
        r = normalize_path(path, &h->names[LEVEL_INST]);
        if (r < 0)
                return kpa_error_set(err, EINVAL, "cgroup: invalid scope path \"%s\"", path);
        h->path = level_path(h, LEVEL_INST);
        r = lock_instance(h, err);
        if (r < 0)
                return r;
        *out = TAKE_PTR(cg);
        return 0;
}

int kpa_cgroup_scope_begin(const char *app_id, const char *instance,
                           const kpa_cgroup_limits *limits, pid_t pid, kpa_scope_request **out,
                           kpa_error *err)
{
        static const kpa_cgroup_limits none;
        const kpa_cgroup_limits *lim = limits ? limits : &none;
        int r = check_args(app_id, instance, lim, err);
        return r < 0 ? r : kpa_systemd_scope_send(app_id, instance, lim, pid, out, err);
}

int kpa_cgroup_scope_end(kpa_scope_request *rq, kpa_cgroup **out, kpa_error *err)
{
        _cleanup_free_ char *path = NULL;
        const kpa_cgroup_limits lim = rq->lim; /* its devices are the caller's */
        int r = kpa_systemd_scope_finish(rq, &path, err);
        if (r < 0 || (r = scope_group(path, out, err)) < 0 || lim.n_devices == 0)
                return r;
        /* the device program on the scope's group, before the process
         * (waiting for its setup) runs: systemd's own DeviceAllow= would
         * have to be told the same rules in its own terms */
        hierarchy *h = &(*out)->h[0];
        _cleanup_close_ int dfd = open(h->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = dfd < 0 ? kpa_error_set_errno(err, errno, "cgroup %s: cannot open", h->path)
                    : v2_device_policy(h, dfd, &lim, err);
        if (r < 0) {
                kpa_cgroup_forget(*out);
                *out = NULL;
        }
        return r;
}

int kpa_cgroup_create_scope(const char *app_id, const char *instance,
                            const kpa_cgroup_limits *limits, pid_t pid, kpa_cgroup **out,
                            kpa_error *err)
{
        kpa_scope_request *rq = NULL;
        int r = kpa_cgroup_scope_begin(app_id, instance, limits, pid, &rq, err);
        return r < 0 ? r : kpa_cgroup_scope_end(rq, out, err);
}

/* A scope of the system manager (a restarted kpa-execd adopting its
 * instances): /kpa.slice/kpa-APP.slice/kpa-APP-INST.scope. */
int open_scope(const char *app_id, const char *instance, kpa_cgroup **out, kpa_error *err)
{
        static const kpa_cgroup_limits none;
        int r = check_args(app_id, instance, &none, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *slice = NULL, *scope = NULL;
        r = kpa_systemd_unit_names(app_id, instance, &slice, &scope, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *path = kpa_xasprintf("/" SLICE "/%s/%s", slice, scope);
        if ((r = disc_init(err)) < 0)
                return r;
        const char *mount = v2_mount();
        _cleanup_free_ char *full = mount ? kpa_xasprintf("%s%s", mount, path) : NULL;
        if (!full || !is_dir(full))
                return -ENOENT; /* no message: the caller looks further */
        return scope_group(path, out, err);
}

/* systemd removes the scope once it is empty: wait (briefly) for that. */
int destroy_scope(kpa_cgroup *cg, kpa_error *err)
{
        hierarchy *h = &cg->h[0];
        int ret = 0;
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (unsigned delay = 1;; delay = delay < 32 ? delay * 2 : delay) {
                _cleanup_free_ pid_t *pids = NULL;
                size_t n = 0;
                if (list_pids(h, &pids, &n, NULL) < 0 || n == 0)
                        break; /* gone, or empty */
                if (elapsed_ms(&start) > EMPTY_TIMEOUT_MS) {
                        ret = kpa_error_set(err, EBUSY, "cgroup %s: it still holds processes",
                                            h->path);
                        break;
                }
                sleep_ms(delay);
        }
        group_free(cg);
        return ret;
}
