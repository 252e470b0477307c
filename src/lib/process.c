/* process.c: the in-process ExecutionManager behind kpa/process.h. It owns
 * tokens, the state machine of each instance (Created, Prepared, Running,
 * Finished or Failed, NotExisting), how an end is classified (Normal,
 * Terminated, Unexpected), stop policies with their grace period, and the
 * parent/child tree. The sandbox itself is sandbox.c's. */
#include "config.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#include "kpa/package.h"
#include "kpa/process.h"
#include "process-internal.h"
#include "sandbox.h"
#include "spec.h"
#include "util.h"

#define KEEP_ENDED_MAX 1000

typedef struct instance {
        kpa_token token;
        kpa_token parent;
        bool has_parent;
        kpa_process_context ctx;
        kpa_sandbox sb;
        bool live;          /* the sandbox exists and is not released yet */
        int death_fd;       /* write end: closing it ends the instance */
        bool exited;        /* the init reported the application's end */
        int wait_status;
        bool stop_normal;   /* a Normal stop was asked for */
        bool forced;        /* a Forced stop was asked for */
        bool escalated;     /* a Normal stop ran out of time */
        bool term_pending;  /* a Normal stop waits for the descendants to end first */
        uint64_t deadline_ms;
        unsigned stop_timeout_ms;
        struct instance *next;
} instance;

struct kpa_control {
        kpa_store *store;
        instance *list;
        int epfd;
        int timerfd;
        kpa_error last_error;
};

/* ---- names and tokens ---- */

const char *kpa_process_state_name(kpa_process_state s)
{
        static const char *const names[] = {"None",    "Created",  "Prepared",   "Running",
                                            "Failed",  "Finished", "NotExisting"};
        return (unsigned)s < ELEMENTSOF(names) ? names[s] : "Unknown";
}

const char *kpa_exit_status_name(kpa_exit_status s)
{
        static const char *const names[] = {"Uninitialized", "Unexpected", "Normal", "Terminated"};
        return (unsigned)s < ELEMENTSOF(names) ? names[s] : "Unknown";
}

void kpa_token_to_string(const kpa_token *t, char out[KPA_TOKEN_STRING_MAX])
{
        for (size_t i = 0; i < sizeof(t->bytes); i++)
                snprintf(out + 2 * i, 3, "%02x", t->bytes[i]);
}

int kpa_token_from_string(const char *s, kpa_token *out)
{
        if (!s || strlen(s) != 2 * sizeof(out->bytes))
                return -EINVAL;
        for (size_t i = 0; i < sizeof(out->bytes); i++) {
                unsigned v;
                char hex[3] = {s[2 * i], s[2 * i + 1], 0};
                if (!strchr("0123456789abcdef", hex[0]) || !strchr("0123456789abcdef", hex[1]) ||
                    sscanf(hex, "%02x", &v) != 1)
                        return -EINVAL;
                out->bytes[i] = (uint8_t)v;
        }
        return 0;
}

bool kpa_token_is_null(const kpa_token *t)
{
        static const kpa_token zero;
        return memcmp(t, &zero, sizeof(zero)) == 0;
}

void kpa_start_options_init(kpa_start_options *opts)
{
        memset(opts, 0, sizeof(*opts));
        opts->uid = (uid_t)-1;
        opts->gid = (gid_t)-1;
        opts->stdin_fd = opts->stdout_fd = opts->stderr_fd = -1;
        opts->stop_timeout_ms = 10000;
}

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *signal_name(int sig)
{
        static char buf[32];
        const char *abbrev = sigabbrev_np(sig);
        if (abbrev)
                snprintf(buf, sizeof(buf), "SIG%s", abbrev);
        else
                snprintf(buf, sizeof(buf), "signal %d", sig);
        return buf;
}

/* ---- the control ---- */

int kpa_control_open_local(const char *store_root, kpa_control **out, kpa_error *err)
{
        kpa_store *store = NULL;
        int q = kpa_store_open(store_root, 0, &store, err);
        if (q < 0)
                return q;
        kpa_control *ctl = kpa_xcalloc(1, sizeof(*ctl));
        ctl->store = store;
        ctl->epfd = epoll_create1(EPOLL_CLOEXEC);
        ctl->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (ctl->epfd < 0 || ctl->timerfd < 0) {
                q = kpa_error_set_errno(err, errno, "epoll/timerfd");
                kpa_control_close(ctl);
                return q;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, ctl->timerfd, &ev);
        *out = ctl;
        return 0;
}

const kpa_error *kpa_control_last_error(const kpa_control *ctl) { return &ctl->last_error; }
int kpa_control_get_fd(kpa_control *ctl) { return ctl->epfd; }

static instance *find(kpa_control *ctl, const kpa_token *t)
{
        for (instance *i = ctl->list; i; i = i->next)
                if (memcmp(&i->token, t, sizeof(*t)) == 0)
                        return i;
        return NULL;
}

static bool ended(const instance *i)
{
        return i->ctx.state == KPA_PROCESS_FINISHED || i->ctx.state == KPA_PROCESS_FAILED;
}

/* ---- how an instance ended ---- */

static void set_end(instance *i, kpa_process_state state, kpa_exit_status status, int code,
                    const char *fmt, ...) _printf_(5, 6);
static void set_end(instance *i, kpa_process_state state, kpa_exit_status status, int code,
                    const char *fmt, ...)
{
        i->ctx.state = state;
        i->ctx.exit_status = status;
        i->ctx.exit_code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(i->ctx.message, sizeof(i->ctx.message), fmt, ap);
        va_end(ap);
}

static void classify_exit(instance *i, bool oom)
{
        int st = i->wait_status;
        if (WIFEXITED(st)) {
                set_end(i, KPA_PROCESS_FINISHED, KPA_EXIT_NORMAL, WEXITSTATUS(st), "exited with code %d",
                        WEXITSTATUS(st));
                return;
        }
        int sig = WTERMSIG(st);
        if (i->stop_normal && !i->escalated && !i->forced && sig == SIGTERM) {
                set_end(i, KPA_PROCESS_FINISHED, KPA_EXIT_NORMAL, sig, "stopped by SIGTERM");
                return;
        }
        if ((i->forced || i->escalated) && sig == SIGKILL) {
                set_end(i, KPA_PROCESS_FINISHED, KPA_EXIT_TERMINATED, sig, "killed by SIGKILL (%s)",
                        i->forced ? "forced stop" : "the stop timeout ran out");
                return;
        }
        set_end(i, KPA_PROCESS_FAILED, KPA_EXIT_UNEXPECTED, sig, "killed by %s%s", signal_name(sig),
                oom ? " (out of memory: the memory limit was reached)" : "");
}

/* The init is gone (its report pipe hit EOF): classify, clean up. */
static void finalize(kpa_control *ctl, instance *i)
{
        if (!i->live)
                return;
        bool oom = i->sb.cgroup && kpa_cgroup_oom_killed(i->sb.cgroup);
        epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, i->sb.report_fd, NULL);
        pid_t init_pid = i->sb.pid;
        siginfo_t info = {0};
        if (i->sb.pidfd >= 0)
                while (waitid(P_PIDFD, (id_t)i->sb.pidfd, &info, WEXITED) < 0 && errno == EINTR)
                        ;
        close(i->sb.pidfd);
        i->sb.pidfd = -1;
        kpa_error err;
        if (kpa_sandbox_release(&i->sb, &err) < 0)
                i->ctx.cleanup_error = err.code;
        closep(&i->death_fd);
        i->death_fd = -1;
        i->live = false;
        i->ctx.pid = 0;
        if (ended(i)) /* a failed start */
                return;
        if (i->exited) {
                classify_exit(i, oom);
        } else if (i->forced || i->escalated) {
                set_end(i, KPA_PROCESS_FINISHED, KPA_EXIT_TERMINATED, SIGKILL, "killed by SIGKILL (%s)",
                        i->forced ? "forced stop" : "the stop timeout ran out");
        } else {
                int sig = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED ? info.si_status : 0;
                set_end(i, KPA_PROCESS_FAILED, KPA_EXIT_UNEXPECTED, sig,
                        "the instance's init (pid %d) ended unexpectedly%s%s", (int)init_pid,
                        sig ? ": killed by " : "", sig ? signal_name(sig) : "");
        }
}

/* Drop the oldest ended contexts beyond the limit: they are NotExisting now.
 * New instances are added at the head, so the oldest are at the tail. */
static void prune(kpa_control *ctl)
{
        size_t kept = 0;
        for (instance **pp = &ctl->list; *pp;) {
                instance *i = *pp;
                if (ended(i) && !i->live && ++kept > KEEP_ENDED_MAX) {
                        *pp = i->next;
                        free(i);
                        continue;
                }
                pp = &i->next;
        }
}

static void release_pending_stops(kpa_control *ctl);

/* Read what an instance's init reported. */
static void handle_reports(kpa_control *ctl, instance *i)
{
        for (;;) {
                kpa_report r;
                int q = kpa_sandbox_read_report(&i->sb, &r);
                if (q == -EAGAIN)
                        return;
                if (q < 0) {
                        finalize(ctl, i);
                        release_pending_stops(ctl);
                        return;
                }
                if (r.type == KPA_REPORT_EXITED) {
                        i->exited = true;
                        i->wait_status = r.value;
                }
        }
}

static void arm_timer(kpa_control *ctl)
{
        uint64_t next = 0;
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live && i->deadline_ms && (!next || i->deadline_ms < next))
                        next = i->deadline_ms;
        struct itimerspec its = {0};
        if (next) {
                uint64_t now = now_ms(), delta = next > now ? next - now : 1;
                its.it_value.tv_sec = (time_t)(delta / 1000);
                its.it_value.tv_nsec = (long)(delta % 1000) * 1000000;
        }
        timerfd_settime(ctl->timerfd, 0, &its, NULL);
}

static void send_signal(instance *i, int sig)
{
        if (i->live && i->sb.pidfd >= 0)
                (void)syscall(SYS_pidfd_send_signal, i->sb.pidfd, sig, NULL, 0);
}

static void handle_timeouts(kpa_control *ctl)
{
        uint64_t expirations;
        (void)!read(ctl->timerfd, &expirations, sizeof(expirations));
        uint64_t now = now_ms();
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live && i->deadline_ms && i->deadline_ms <= now) {
                        i->deadline_ms = 0;
                        i->escalated = true;
                        send_signal(i, SIGKILL); /* PID 1 dies: its whole namespace dies */
                }
        arm_timer(ctl);
}

int kpa_control_dispatch(kpa_control *ctl)
{
        struct epoll_event evs[16];
        int n;
        while ((n = epoll_wait(ctl->epfd, evs, ELEMENTSOF(evs), 0)) > 0) {
                for (int k = 0; k < n; k++) {
                        if (!evs[k].data.ptr)
                                handle_timeouts(ctl);
                        else
                                handle_reports(ctl, evs[k].data.ptr);
                }
                if (n < (int)ELEMENTSOF(evs))
                        break;
        }
        prune(ctl);
        return n < 0 && errno != EINTR ? -errno : 0;
}

/* ---- start ---- */

static int fail_start(kpa_control *ctl, instance *i, int err, const char *fmt, ...) _printf_(4, 5);
static int fail_start(kpa_control *ctl, instance *i, int err, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(i->ctx.message, sizeof(i->ctx.message), fmt, ap);
        va_end(ap);
        i->ctx.state = KPA_PROCESS_FAILED;
        i->ctx.exit_status = KPA_EXIT_UNINITIALIZED;
        i->ctx.exit_reason = err;
        kpa_error_set(&ctl->last_error, err, "%s", i->ctx.message);
        return -err;
}

static int resolve(kpa_control *ctl, instance *i, const char *pkg_id, const char *rc_id,
                   kpa_manifest **m, const kpa_run_config **rc)
{
        kpa_error err;
        int q = kpa_store_load_manifest(ctl->store, pkg_id, m, &err);
        if (q < 0)
                return fail_start(ctl, i, -q, "%s", err.message);
        *rc = rc_id ? kpa_manifest_find_run_config(*m, rc_id) : kpa_manifest_primary_run_config(*m);
        if (*rc)
                return 0;
        char list[200] = "";
        for (size_t k = 0; k < (*m)->n_run_configs; k++) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof(list) - len, "%s%s", k ? ", " : "", (*m)->run_configs[k].id);
        }
        if (!rc_id)
                return fail_start(ctl, i, ENOENT, "%s has no run configuration to start", pkg_id);
        return fail_start(ctl, i, ENOENT, "%s has no run configuration \"%s\" (it has: %s)", pkg_id,
                          rc_id, list[0] ? list : "none");
}

/* Wait, blocking, for the init to say Running or why not. */
static int await_running(kpa_control *ctl, instance *i)
{
        for (;;) {
                kpa_report r;
                int q = kpa_sandbox_read_report(&i->sb, &r);
                if (q < 0) {
                        finalize(ctl, i);
                        if (!ended(i) || i->ctx.state != KPA_PROCESS_FAILED || !i->ctx.exit_reason) {
                                char why[sizeof(i->ctx.message)];
                                memcpy(why, i->ctx.message, sizeof(why));
                                fail_start(ctl, i, EIO, "start of %s failed: the instance's init ended "
                                           "before the application ran (%s)", i->ctx.app_id, why);
                        }
                        return -i->ctx.exit_reason;
                }
                if (r.type == KPA_REPORT_PREPARED) {
                        i->ctx.state = KPA_PROCESS_PREPARED;
                } else if (r.type == KPA_REPORT_RUNNING) {
                        i->ctx.state = KPA_PROCESS_RUNNING;
                        return 0;
                } else if (r.type == KPA_REPORT_FAILED) {
                        /* the message holds the exec path until now (see spawn) */
                        char exec_path[sizeof(i->ctx.message)];
                        memcpy(exec_path, i->ctx.message, sizeof(exec_path));
                        fail_start(ctl, i, r.err ? r.err : EIO, "start of %s/%s failed at step \"%s\"%s%s: %s",
                                   i->ctx.app_id, i->ctx.run_config_id,
                                   kpa_sandbox_step_name((kpa_sandbox_step)r.step),
                                   r.step == KPA_STEP_EXEC ? " of " : "",
                                   r.step == KPA_STEP_EXEC ? exec_path : "", strerror(r.err));
                }
        }
}

static int spawn(kpa_control *ctl, instance *i, const kpa_instance_spec *spec)
{
        int death[2];
        if (pipe2(death, O_CLOEXEC) < 0)
                return fail_start(ctl, i, errno, "pipe: %s", strerror(errno));
        kpa_error err;
        int q = kpa_sandbox_spawn(spec, death[0], &i->sb, &err);
        close(death[0]);
        if (q < 0) {
                close(death[1]);
                return fail_start(ctl, i, -q, "start of %s failed: %s", i->ctx.app_id, err.message);
        }
        i->death_fd = death[1];
        i->live = true;
        i->ctx.pid = i->sb.pid;
        i->ctx.state = KPA_PROCESS_CREATED;
        /* the exec path names the binary in an exec failure message */
        snprintf(i->ctx.message, sizeof(i->ctx.message), "%s", spec->exec_path);
        q = await_running(ctl, i);
        if (q < 0)
                return q;
        i->ctx.message[0] = '\0';
        fcntl(i->sb.report_fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = i};
        epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, i->sb.report_fd, &ev);
        return 0;
}

/* Start RC of manifest M (both NULL: load PKG_ID's manifest and find
 * RUN_CONFIG_ID or the primary one). The one way every instance starts:
 * kpa_process_start() and kpa_task_run() both come here. */
int kpa_control_launch(kpa_control *ctl, const char *pkg_id, const kpa_manifest *m,
                       const kpa_run_config *rc, const char *run_config_id,
                       const kpa_start_options *opts, kpa_token *out_token)
{
        kpa_start_options defaults;
        if (!opts) {
                kpa_start_options_init(&defaults);
                opts = &defaults;
        }
        kpa_error_clear(&ctl->last_error);
        instance *i = kpa_xcalloc(1, sizeof(*i));
        i->death_fd = -1;
        i->sb.pidfd = i->sb.report_fd = -1;
        i->stop_timeout_ms = opts->stop_timeout_ms ? opts->stop_timeout_ms : 10000;
        if (getrandom(i->token.bytes, sizeof(i->token.bytes), 0) != sizeof(i->token.bytes)) {
                free(i);
                return kpa_error_set_errno(&ctl->last_error, errno, "getrandom");
        }
        snprintf(i->ctx.app_id, sizeof(i->ctx.app_id), "%s", pkg_id ? pkg_id : "");
        i->next = ctl->list;
        ctl->list = i;
        if (out_token)
                *out_token = i->token;
        if (opts->parent) {
                instance *p = find(ctl, opts->parent);
                if (!p || ended(p))
                        return fail_start(ctl, i, ESRCH, "parent token is unknown or has ended");
                i->parent = *opts->parent;
                i->has_parent = true;
        }
        _cleanup_(kpa_manifest_freep) kpa_manifest *loaded = NULL;
        if (!m) {
                int q = resolve(ctl, i, pkg_id, run_config_id, &loaded, &rc);
                if (q < 0)
                        return q;
                m = loaded;
        }
        if (!rc)
                return fail_start(ctl, i, EINVAL, "start of %s: no run configuration", pkg_id);
        snprintf(i->ctx.run_config_id, sizeof(i->ctx.run_config_id), "%s", rc->id);
        char instance_id[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&i->token, instance_id);
        _cleanup_(kpa_instance_spec_freep) kpa_instance_spec *spec = NULL;
        kpa_error err;
        int q = kpa_instance_spec_build(ctl->store, m, rc, opts, instance_id, &spec, &err);
        if (q < 0)
                return fail_start(ctl, i, -q, "start of %s: %s", pkg_id, err.message);
        return spawn(ctl, i, spec);
}

int kpa_process_start(kpa_control *ctl, const char *pkg_id, const char *run_config_id,
                      const kpa_start_options *opts, kpa_token *out_token)
{
        return kpa_control_launch(ctl, pkg_id, NULL, NULL, run_config_id, opts, out_token);
}

kpa_store *kpa_control_store(kpa_control *ctl) { return ctl->store; }
kpa_error *kpa_control_error(kpa_control *ctl) { return &ctl->last_error; }

/* ---- stop, state, wait ---- */

static bool is_child_of(const instance *c, const instance *parent)
{
        return c->has_parent && memcmp(&c->parent, &parent->token, sizeof(parent->token)) == 0;
}

static bool has_live_descendants(kpa_control *ctl, const instance *i)
{
        for (instance *c = ctl->list; c; c = c->next)
                if (is_child_of(c, i) && (c->live || has_live_descendants(ctl, c)))
                        return true;
        return false;
}

/* Parents whose Normal stop waited for their descendants: go on when those
 * have all ended. */
static void release_pending_stops(kpa_control *ctl)
{
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live && i->term_pending && !has_live_descendants(ctl, i)) {
                        i->term_pending = false;
                        send_signal(i, SIGTERM);
                }
}

static void stop_one(kpa_control *ctl, instance *i, kpa_stop_policy policy)
{
        /* descendants first */
        for (instance *c = ctl->list; c; c = c->next)
                if (is_child_of(c, i))
                        stop_one(ctl, c, policy);
        if (!i->live)
                return;
        if (policy == KPA_STOP_FORCED) {
                i->forced = true;
                i->term_pending = false;
                i->deadline_ms = 0;
                send_signal(i, SIGKILL); /* PID 1 dies: its whole namespace dies */
                return;
        }
        if (i->stop_normal)
                return; /* already stopping; the deadline stands */
        i->stop_normal = true;
        i->deadline_ms = now_ms() + i->stop_timeout_ms;
        if (has_live_descendants(ctl, i))
                i->term_pending = true; /* SIGTERM once they have ended */
        else
                send_signal(i, SIGTERM); /* the init passes it to every process of the instance */
}

int kpa_process_stop(kpa_control *ctl, const kpa_token *token, kpa_stop_policy policy)
{
        kpa_control_dispatch(ctl);
        instance *i = find(ctl, token);
        if (!i)
                return kpa_error_set(&ctl->last_error, ESRCH, "no such process (unknown token)");
        stop_one(ctl, i, policy);
        arm_timer(ctl);
        return 0;
}

int kpa_process_get_state(kpa_control *ctl, const kpa_token *token, kpa_process_context *out)
{
        kpa_control_dispatch(ctl);
        instance *i = find(ctl, token);
        if (!i) {
                memset(out, 0, sizeof(*out));
                out->state = KPA_PROCESS_NOT_EXISTING;
                return 0;
        }
        *out = i->ctx;
        return 0;
}

int kpa_process_wait(kpa_control *ctl, const kpa_token *token, int timeout_ms,
                     kpa_process_context *out)
{
        uint64_t deadline = timeout_ms >= 0 ? now_ms() + (uint64_t)timeout_ms : 0;
        for (;;) {
                kpa_process_get_state(ctl, token, out);
                if (out->state != KPA_PROCESS_CREATED && out->state != KPA_PROCESS_PREPARED &&
                    out->state != KPA_PROCESS_RUNNING)
                        return 0;
                int wait_ms = -1;
                if (timeout_ms >= 0) {
                        uint64_t now = now_ms();
                        if (now >= deadline)
                                return -ETIMEDOUT;
                        wait_ms = (int)(deadline - now);
                }
                struct pollfd p = {.fd = ctl->epfd, .events = POLLIN};
                if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
                        return -errno;
        }
}

void kpa_control_close(kpa_control *ctl)
{
        if (!ctl)
                return;
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live)
                        stop_one(ctl, i, KPA_STOP_FORCED);
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live) {
                        /* no more reports will be read: just end and clean up */
                        closep(&i->sb.report_fd);
                        i->sb.report_fd = -1;
                        finalize(ctl, i);
                }
        while (ctl->list) {
                instance *next = ctl->list->next;
                free(ctl->list);
                ctl->list = next;
        }
        closep(&ctl->epfd);
        closep(&ctl->timerfd);
        kpa_store_close(ctl->store);
        free(ctl);
}
