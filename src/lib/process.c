/* process.c: the in-process ExecutionManager behind kpa/process.h. It owns
 * tokens, the state machine of each instance (Created, Prepared, Running,
 * Finished or Failed, NotExisting), how an end is classified (Normal,
 * Terminated, Unexpected), stop policies with their grace period, the
 * parent/child tree, the retention of ended contexts, and the event loop
 * that drives them. Supervision (records, adoption, logs, restarts) is
 * supervise.c's, reached through the hooks in ctl->supervision only; the
 * sandbox itself is sandbox.c's. */
#include "config.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#include <json-c/json.h>

#include "kpa/package.h"
#include "kpa/process.h"
#include "process-internal.h"
#include "process-priv.h"
#include "sandbox.h"
#include "sockets.h"
#include "spec.h"
#include "store-internal.h"
#include "util.h"

#define KEEP_ENDED_MAX 1000
#define KEEP_ENDED_MS (3600 * 1000ULL)

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

/* ---- supervision hooks (process-priv.h): nothing when CTL does not supervise ---- */

/* I's state or its stop changed: its record. */
static void changed(kpa_control *ctl, instance *i)
{
        if (ctl->supervision)
                ctl->supervision->on_changed(ctl, i);
}

/* I ended: its failure noted, its restart planned. */
static void ended(kpa_control *ctl, instance *i)
{
        process_note_failure(i);
        if (ctl->supervision)
                ctl->supervision->on_ended(ctl, i);
}

/* I's end is dealt with: what a restart needs goes unless one is due. */
static void settled(kpa_control *ctl, instance *i)
{
        if (ctl->supervision)
                ctl->supervision->on_settled(i);
}

/* ---- the control ---- */

static void local_close(kpa_control *ctl);

int kpa_control_open_local(const char *store_root, kpa_control **out, kpa_error *err)
{
        kpa_store *store = NULL;
        int q = kpa_store_open(store_root, 0, &store, err);
        if (q < 0)
                return q;
        kpa_trace("start: store opened");
        kpa_control *ctl = kpa_xcalloc(1, sizeof(*ctl));
        ctl->ops = &process_local_ops;
        ctl->store = store;
        ctl->owner = getuid();
        ctl->keep_ended_max = KEEP_ENDED_MAX;
        ctl->keep_ended_ms = KEEP_ENDED_MS;
        ctl->state_fd = -1;
        ctl->services_fd = -1;
        ctl->epfd = epoll_create1(EPOLL_CLOEXEC);
        ctl->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        if (ctl->epfd < 0 || ctl->timerfd < 0) {
                q = kpa_error_set_errno(err, errno, "epoll/timerfd");
                local_close(ctl);
                return q;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, ctl->timerfd, &ev);
        *out = ctl;
        return 0;
}

static int local_get_fd(kpa_control *ctl)
{
        return ctl->epfd;
}
void kpa_control_set_owner(kpa_control *ctl, uid_t owner) { ctl->owner = owner; }

void kpa_control_set_observer(kpa_control *ctl, kpa_state_observer fn, void *userdata)
{
        ctl->observer = fn;
        ctl->observer_data = userdata;
}

static size_t token_hash(const kpa_token *t)
{
        uint32_t h;
        memcpy(&h, t->bytes, sizeof(h)); /* tokens are random */
        return h % ELEMENTSOF(((kpa_control *)0)->by_token);
}

instance *process_find(kpa_control *ctl, const kpa_token *t)
{
        for (instance *i = ctl->by_token[token_hash(t)]; i; i = i->hnext)
                if (memcmp(&i->token, t, sizeof(*t)) == 0)
                        return i;
        return NULL;
}

/* Put I (its token set) at the head of the list: the newest first. */
void process_list_add(kpa_control *ctl, instance *i)
{
        i->next = ctl->list;
        ctl->list = i;
        size_t h = token_hash(&i->token);
        i->hnext = ctl->by_token[h];
        ctl->by_token[h] = i;
        ctl->n_instances++;
}

void process_hash_remove(kpa_control *ctl, instance *i)
{
        for (instance **pp = &ctl->by_token[token_hash(&i->token)]; *pp; pp = &(*pp)->hnext)
                if (*pp == i) {
                        *pp = i->hnext;
                        break;
                }
        ctl->n_instances--;
}

int kpa_control_get_owner(kpa_control *ctl, const kpa_token *t, uid_t *owner)
{
        instance *i = process_find(ctl, t);
        if (!i)
                return -ESRCH;
        *owner = i->owner;
        return 0;
}

/* Instances live in their own pages, which a fork does not copy
 * (MADV_DONTFORK): every instance's init is a fork of its starter, and a
 * supervisor keeps up to 1000 ended contexts, so without this each start
 * would copy their page tables into the new init, and each later write to
 * one of them would fault to copy the page (about 10% of kpa-execd's start
 * throughput, bench/daemon.sh). Nothing after clone in the child touches
 * an instance. */
#define POOL_CHUNK 64
static instance *pool_free_list;
/* the part of the newest chunk never handed out: taken in order, so that
 * a process that starts one instance touches one instance's pages, not
 * the whole chunk's (each first touch is a page fault: 5-10 us on a VM) */
static instance *pool_next, *pool_end;

static instance *instance_alloc(void)
{
        instance *i = pool_free_list;
        if (i) {
                pool_free_list = i->next;
        } else {
                if (pool_next == pool_end) {
                        size_t len = POOL_CHUNK * sizeof(instance);
                        instance *chunk = mmap(NULL, len, PROT_READ | PROT_WRITE,
                                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                        if (chunk == MAP_FAILED) /* (freed to the pool later: fine) */
                                return kpa_xcalloc(1, sizeof(instance));
                        (void)madvise(chunk, len, MADV_DONTFORK);
                        pool_next = chunk;
                        pool_end = chunk + POOL_CHUNK;
                }
                i = pool_next++;
        }
        memset(i, 0, sizeof(*i));
        return i;
}

static void instance_release(instance *i)
{
        i->next = pool_free_list;
        pool_free_list = i;
}

instance *process_instance_new(kpa_control *ctl)
{
        instance *i = instance_alloc();
        i->death_fd = i->exit_fd = i->log_pipe = i->log_file = -1;
        i->log_pipe_in_init = -1;
        i->service_fd = -1;
        i->sb.pidfd = i->sb.report_fd = i->sb.tty_fd = -1;
        i->owner = ctl->owner;
        i->w_report = (watch){WATCH_REPORT, i};
        i->w_pidfd = (watch){WATCH_PIDFD, i};
        i->w_log = (watch){WATCH_LOG, i};
        return i;
}

void process_instance_free(kpa_control *ctl, instance *i)
{
        closep(&i->exit_fd);
        closep(&i->log_pipe);
        closep(&i->log_file);
        closep(&i->service_fd);
        free(i->services);
        closep(&i->sb.tty_fd);
        free(i->cgroup_parent);
        if (ctl->supervision)
                ctl->supervision->on_freed(i);
        json_object_put(i->sockets_json);
        instance_release(i);
}

/* ---- how an instance ended ---- */

static void set_end(instance *i, kpa_process_state state, kpa_exit_status status, int code,
                    const char *cause, const char *fmt, ...) _printf_(6, 7);
static void set_end(instance *i, kpa_process_state state, kpa_exit_status status, int code,
                    const char *cause, const char *fmt, ...)
{
        snprintf(i->ctx.exit_cause, sizeof(i->ctx.exit_cause), "%s", cause);
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
                set_end(i, KPA_PROCESS_FINISHED, KPA_EXIT_NORMAL, WEXITSTATUS(st), "exited",
                        "exited with code %d",
                        WEXITSTATUS(st));
                return;
        }
        int sig = WTERMSIG(st);
        if (i->stop_normal && !i->escalated && !i->forced && sig == SIGTERM) {
                set_end(i, KPA_PROCESS_FINISHED, KPA_EXIT_NORMAL, sig, "stopped", "stopped by SIGTERM");
                return;
        }
        if ((i->forced || i->escalated) && sig == SIGKILL) {
                set_end(i, KPA_PROCESS_FINISHED, KPA_EXIT_TERMINATED, sig, "stopped",
                        "killed by SIGKILL (%s)",
                        i->forced ? "forced stop" : "the stop timeout ran out");
                return;
        }
        set_end(i, KPA_PROCESS_FAILED, KPA_EXIT_UNEXPECTED, sig, oom ? "oom" : "signal",
                "killed by %s%s", signal_name(sig),
                oom ? " (out of memory: the memory limit was reached)" : "");
}

/* Keep how I's run ended when that was a failure (what on-failure counts as
 * one): a restart replaces the context, not this. */
void process_note_failure(instance *i)
{
        kpa_process_context *c = &i->ctx;
        if (!process_ended(i) || i->stop_normal || i->forced)
                return;
        if (c->state != KPA_PROCESS_FAILED && c->exit_code == 0)
                return;
        c->last_failure.state = c->state;
        c->last_failure.exit_status = c->exit_status;
        c->last_failure.exit_code = c->exit_code;
        c->last_failure.exit_reason = c->exit_reason;
        memcpy(c->last_failure.exit_cause, c->exit_cause, sizeof(c->exit_cause));
        size_t len = strnlen(c->message, sizeof(c->last_failure.message) - 1);
        memcpy(c->last_failure.message, c->message, len);
        c->last_failure.message[len] = '\0';
        c->last_failure.at = (int64_t)time(NULL);
}

/* The init is gone (its report pipe hit EOF, or, adopted, its pidfd said
 * so): classify, clean up. */
void process_finalize(kpa_control *ctl, instance *i)
{
        if (!i->live)
                return;
        bool ran = i->ctx.state == KPA_PROCESS_RUNNING;
        /* the init's own verdict, read while the group still held it; the
         * group's counters for an init that could not (adopted, older) */
        bool oom = i->exit_oom || (i->sb.cgroup && kpa_cgroup_oom_killed(i->sb.cgroup));
        if (i->sb.report_fd >= 0)
                epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, i->sb.report_fd, NULL);
        if ((i->adopted || i->pidfd_watched) && i->sb.pidfd >= 0)
                epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, i->sb.pidfd, NULL);
        i->pidfd_watched = false;
        pid_t init_pid = i->sb.pid;
        siginfo_t info = {0};
        if (i->sb.pidfd >= 0 && !i->adopted)
                while (waitid(P_PIDFD, (id_t)i->sb.pidfd, &info, WEXITED) < 0 && errno == EINTR)
                        ;
        close(i->sb.pidfd);
        i->sb.pidfd = -1;
        if (i->sb.cgroup && i->adopted) {
                /* not our child: its init may be gone while what it left is not */
                kpa_error kerr;
                (void)kpa_cgroup_kill(i->sb.cgroup, &kerr);
        }
        kpa_error err;
        if (kpa_sandbox_release(&i->sb, &err) < 0)
                i->ctx.cleanup_error = err.code;
        closep(&i->death_fd);
        i->death_fd = -1;
        if (ctl->supervision)
                ctl->supervision->on_init_gone(ctl, i); /* the log drained, the exit record read */
        closep(&i->log_file);
        i->log_file = -1;
        i->live = false;
        i->ctx.pid = 0;
        i->ended_ms = process_now_ms();
        oom = oom || i->exit_oom;
        closep(&i->exit_fd);
        i->exit_fd = -1;
        if (process_ended(i)) { /* a failed start: its step said why */
                ended(ctl, i);
                changed(ctl, i);
                uses_ended(ctl, i);
                settled(ctl, i);
                process_notify(ctl, i);
                return;
        }
        if (i->exited) {
                classify_exit(i, oom);
        } else if (i->forced || i->escalated) {
                set_end(i, KPA_PROCESS_FINISHED, KPA_EXIT_TERMINATED, SIGKILL, "stopped",
                        "killed by SIGKILL (%s)",
                        i->forced ? "forced stop" : "the stop timeout ran out");
        } else if (i->adopted) {
                set_end(i, KPA_PROCESS_FAILED, KPA_EXIT_UNEXPECTED, 0, "lost",
                        "the instance's init (pid %d) ended without recording an exit status",
                        (int)init_pid);
        } else {
                int sig = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED ? info.si_status : 0;
                set_end(i, KPA_PROCESS_FAILED, KPA_EXIT_UNEXPECTED, sig, "lost",
                        "the instance's init (pid %d) ended unexpectedly%s%s", (int)init_pid,
                        sig ? ": killed by " : "", sig ? signal_name(sig) : "");
        }
        if (!ran) {
                /* it ended before the application ran, with no failed step
                 * reported: a failed start all the same */
                char why[sizeof(i->ctx.message)];
                memcpy(why, i->ctx.message, sizeof(why));
                i->ctx.state = KPA_PROCESS_CREATED; /* not ended yet, for process_fail_start */
                process_fail_start(ctl, i, EIO,
                                   "start of %s failed: the instance's init ended before the "
                                   "application ran (%s)",
                                   i->ctx.app_id, why);
                ended(ctl, i);
                changed(ctl, i);
                uses_ended(ctl, i);
                return;
        }
        ended(ctl, i);
        changed(ctl, i);
        uses_ended(ctl, i);
        settled(ctl, i);
        process_notify(ctl, i);
}

static void release_pending_stops(kpa_control *ctl);

static void apply_report(kpa_control *ctl, instance *i, const kpa_report *r);

/* The init closed its end of the report pipe. It is not a zombie yet while
 * the kernel tears its namespaces down (the mounts above all: 0.2-0.6 ms),
 * so rather than block in waitid(), watch its pidfd and finalize when that
 * says the init is gone. True when it is watched now. */
static bool init_still_exiting(kpa_control *ctl, instance *i)
{
        if (i->adopted || i->pidfd_watched || i->sb.pidfd < 0)
                return false;
        siginfo_t info = {0};
        if (waitid(P_PIDFD, (id_t)i->sb.pidfd, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            info.si_pid != 0)
                return false; /* already a zombie: finalize now */
        epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, i->sb.report_fd, NULL);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &i->w_pidfd};
        if (epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, i->sb.pidfd, &ev) < 0)
                return false;
        i->pidfd_watched = true;
        return true;
}

/* Read what an instance's init reported. */
static void handle_reports(kpa_control *ctl, instance *i)
{
        for (;;) {
                kpa_report r;
                int q = kpa_sandbox_read_report(&i->sb, &r);
                if (q == -EAGAIN)
                        return;
                if (q < 0) {
                        if (init_still_exiting(ctl, i))
                                return; /* finalize when its pidfd says it is gone */
                        process_finalize(ctl, i);
                        release_pending_stops(ctl);
                        return;
                }
                apply_report(ctl, i, &r);
        }
}

void process_arm_timer(kpa_control *ctl)
{
        uint64_t next = 0;
        for (instance *i = ctl->list; i; i = i->next) {
                if (i->live && i->deadline_ms && (!next || i->deadline_ms < next))
                        next = i->deadline_ms;
                if (i->restart && i->restart->at_ms && (!next || i->restart->at_ms < next))
                        next = i->restart->at_ms;
        }
        struct itimerspec its = {0};
        if (next) {
                uint64_t now = process_now_ms(), delta = next > now ? next - now : 1;
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

/* A Forced stop, or a Normal one out of time: SIGKILL to the init, whose
 * PID namespace dies with it, and on cgroup v2 one write of cgroup.kill,
 * which takes everything in the group at once. */
static void kill_instance(instance *i)
{
        send_signal(i, SIGKILL);
        if (i->live && i->sb.cgroup)
                (void)kpa_cgroup_kill_now(i->sb.cgroup);
}

static void handle_timeouts(kpa_control *ctl)
{
        uint64_t expirations;
        (void)!read(ctl->timerfd, &expirations, sizeof(expirations));
        uint64_t now = process_now_ms();
        for (instance *i = ctl->list; i; i = i->next) {
                if (i->live && i->deadline_ms && i->deadline_ms <= now) {
                        i->deadline_ms = 0;
                        i->escalated = true;
                        changed(ctl, i);
                        kill_instance(i);
                }
                if (i->restart && i->restart->at_ms && i->restart->at_ms <= now &&
                    ctl->supervision)
                        ctl->supervision->on_restart_due(ctl, i);
        }
        process_arm_timer(ctl);
}

/* ---- retention of ended contexts ---- */

/* The ended contexts of OWNER counted so far in a prune: one counter per
 * owner, in a small array grown on demand (owners are root and a few
 * members of group kpa). */
typedef struct owner_count {
        uid_t owner;
        size_t kept;
} owner_count;

static size_t *owner_kept(owner_count **v, size_t *n, uid_t owner)
{
        for (size_t k = 0; k < *n; k++)
                if ((*v)[k].owner == owner)
                        return &(*v)[k].kept;
        *v = kpa_xrealloc(*v, (*n + 1) * sizeof(**v));
        (*v)[*n] = (owner_count){.owner = owner};
        return &(*v)[(*n)++].kept;
}

/* Drop the oldest ended contexts beyond the limits (count and age), each
 * owner's on their own, so that one user's many ended starts cannot evict
 * another's: they are NotExisting now. New instances are added at the
 * head, so the oldest are at the tail. */
static void prune(kpa_control *ctl)
{
        uint64_t now = process_now_ms();
        if (ctl->n_instances <= ctl->n_after_prune + 64 && now - ctl->last_prune_ms < 1000)
                return;
        ctl->last_prune_ms = now;
        _cleanup_free_ owner_count *counts = NULL;
        size_t n_counts = 0;
        for (instance **pp = &ctl->list; *pp;) {
                instance *i = *pp;
                bool pending = i->restart && i->restart->at_ms;
                if (process_ended(i) && !i->live && !pending &&
                    (++*owner_kept(&counts, &n_counts, i->owner) > ctl->keep_ended_max ||
                     now - i->ended_ms > ctl->keep_ended_ms)) {
                        *pp = i->next;
                        process_hash_remove(ctl, i);
                        if (ctl->supervision)
                                ctl->supervision->on_dropped(ctl, i);
                        i->ctx.state = KPA_PROCESS_NOT_EXISTING;
                        process_notify(ctl, i);
                        process_instance_free(ctl, i);
                        continue;
                }
                pp = &i->next;
        }
        ctl->n_after_prune = ctl->n_instances;
}

static int local_dispatch(kpa_control *ctl)
{
        struct epoll_event evs[16];
        int n;
        while ((n = epoll_wait(ctl->epfd, evs, ELEMENTSOF(evs), 0)) > 0) {
                for (int k = 0; k < n; k++) {
                        watch *w = evs[k].data.ptr;
                        if (!w)
                                handle_timeouts(ctl);
                        else if (w->kind == WATCH_REPORT)
                                handle_reports(ctl, w->i);
                        else if (w->kind == WATCH_LOG && ctl->supervision)
                                ctl->supervision->on_output(ctl, w->i);
                        else if (w->kind == WATCH_PIDFD) {
                                process_finalize(ctl, w->i);
                                release_pending_stops(ctl);
                        }
                }
                if (n < (int)ELEMENTSOF(evs))
                        break;
        }
        prune(ctl);
        return n < 0 && errno != EINTR ? -errno : 0;
}

/* ---- start ---- */

int process_fail_start(kpa_control *ctl, instance *i, int err, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(i->ctx.message, sizeof(i->ctx.message), fmt, ap);
        va_end(ap);
        i->ctx.state = KPA_PROCESS_FAILED;
        i->ctx.exit_status = KPA_EXIT_UNINITIALIZED;
        i->ctx.exit_reason = err;
        snprintf(i->ctx.exit_cause, sizeof(i->ctx.exit_cause), "start-failed");
        i->ended_ms = process_now_ms();
        kpa_error_set(&ctl->last_error, err, "%s", i->ctx.message);
        if (!i->live && i->restart && i->restart->starting) {
                i->restart->notify_pending = true;
        } else if (!i->live) {
                changed(ctl, i);
                uses_ended(ctl, i);
                process_notify(ctl, i);
        }
        return -err;
}

/* PKG_ID's manifest (held by *REF: kpa-execd's cache, manifest-cache.c,
 * or loaded now) and the run configuration RC_ID of it, or its primary. */
static int resolve(kpa_control *ctl, instance *i, const char *pkg_id, const char *rc_id,
                   const kpa_manifest **m, manifest_ref **ref, const kpa_run_config **rc)
{
        kpa_error err;
        int q = store_manifest_ref(ctl->store, pkg_id, m, ref, &err);
        if (q < 0)
                return process_fail_start(ctl, i, -q, "%s", err.message);
        *rc = rc_id ? kpa_manifest_find_run_config(*m, rc_id) : kpa_manifest_primary_run_config(*m);
        if (*rc)
                return 0;
        char list[200] = "";
        for (size_t k = 0; k < (*m)->n_run_configs; k++) {
                size_t len = strlen(list);
                snprintf(list + len, sizeof(list) - len, "%s%s", k ? ", " : "",
                         (*m)->run_configs[k]->id);
        }
        if (!rc_id)
                return process_fail_start(ctl, i, ENOENT, "%s has no run configuration to start",
                                          pkg_id);
        return process_fail_start(ctl, i, ENOENT, "%s has no run configuration \"%s\" (it has: %s)",
                                  pkg_id, rc_id, list[0] ? list : "none");
}

static void became_running(kpa_control *ctl, instance *i)
{
        i->ctx.state = KPA_PROCESS_RUNNING;
        if (i->log_pipe >= 0 && ctl->supervision)
                ctl->supervision->on_running(ctl, i);
        if (i->restart)
                i->restart->running_since_ms = process_now_ms();
        /* no record written here (on_changed): the record made at Created holds all that
         * re-adoption needs, and a live instance recorded as Created is
         * adopted as Running (one file write less per start) */
        process_notify(ctl, i);
}

static void apply_report(kpa_control *ctl, instance *i, const kpa_report *r)
{
        switch ((kpa_report_type)r->type) {
        case KPA_REPORT_PREPARED:
                i->ctx.state = KPA_PROCESS_PREPARED;
                process_notify(ctl, i);
                break;
        case KPA_REPORT_RUNNING:
                became_running(ctl, i);
                break;
        case KPA_REPORT_FAILED:
                process_fail_start(ctl, i, r->err ? r->err : EIO,
                                   "start of %s/%s failed at step \"%s\"%s%s: %s", i->ctx.app_id,
                                   i->ctx.run_config_id,
                                   kpa_sandbox_step_name((kpa_sandbox_step)r->step),
                                   r->step == KPA_STEP_EXEC ? " of " : "",
                                   r->step == KPA_STEP_EXEC ? i->exec_path : "", strerror(r->err));
                break;
        case KPA_REPORT_EXITED:
                i->exited = true;
                i->wait_status = r->value;
                i->exit_oom = r->err == KPA_EXIT_OOM;
                break;
        }
}

/* Wait, blocking, for the init to say Running or why not. */
static int await_running(kpa_control *ctl, instance *i)
{
        for (;;) {
                kpa_report r;
                int q = kpa_sandbox_read_report(&i->sb, &r);
                if (q < 0) {
                        process_finalize(ctl, i); /* a failed start, with the reason */
                        return -i->ctx.exit_reason;
                }
                apply_report(ctl, i, &r);
                if (i->ctx.state == KPA_PROCESS_RUNNING)
                        return 0;
        }
}

static int spawn(kpa_control *ctl, instance *i, kpa_instance_spec *spec)
{
        int death[2] = {-1, -1};
        const supervision_hooks *sv = ctl->supervision;
        if (sv) {
                int q = sv->on_spawning(ctl, i, spec);
                if (q < 0)
                        return q;
        } else if (pipe2(death, O_CLOEXEC) < 0) {
                return process_fail_start(ctl, i, errno, "pipe: %s", strerror(errno));
        }
        kpa_error err;
        int q = kpa_sandbox_spawn(spec, death[0], &i->sb, &err);
        closep(&death[0]);
        if (spec->init_keep_fd >= 0) { /* the write end: the instance's alone now */
                close(spec->stdio[1]);
                spec->stdio[1] = spec->stdio[2] = -1;
        }
        if (q < 0) {
                closep(&death[1]);
                return process_fail_start(ctl, i, -q, "start of %s failed: %s", i->ctx.app_id,
                                          err.message);
        }
        i->death_fd = death[1];
        i->live = true;
        i->ctx.pid = i->sb.pid;
        i->ctx.state = KPA_PROCESS_CREATED;
        if (sv)
                sv->on_created(ctl, i);
        process_notify(ctl, i);
        snprintf(i->exec_path, sizeof(i->exec_path), "%s", spec->exec_path);
        if (!ctl->start_async) {
                q = await_running(ctl, i);
                if (q < 0)
                        return q;
        }
        /* from now on the init's reports arrive through the event loop */
        fcntl(i->sb.report_fd, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &i->w_report};
        epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, i->sb.report_fd, &ev);
        return 0;
}

/* Start RC of manifest M (or of PKG_ID's manifest, loaded) into I. */
int process_launch_into(kpa_control *ctl, instance *i, const char *pkg_id, const kpa_manifest *m,
                        const kpa_run_config *rc, const char *run_config_id,
                        const kpa_start_options *opts)
{
        _cleanup_(manifest_ref_putp) manifest_ref *loaded = NULL;
        if (!m) {
                int q = resolve(ctl, i, pkg_id, run_config_id, &m, &loaded, &rc);
                if (q < 0)
                        return q;
                kpa_trace("start: manifest loaded");
        }
        if (!rc)
                return process_fail_start(ctl, i, EINVAL, "start of %s: no run configuration",
                                          pkg_id);
        snprintf(i->ctx.run_config_id, sizeof(i->ctx.run_config_id), "%s", rc->id);
        i->ctx.started_at = (int64_t)time(NULL);
        if (i->restart)
                i->restart->policy = *m->restart;
        char instance_id[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&i->token, instance_id);
        _cleanup_(kpa_instance_spec_freep) kpa_instance_spec *spec = NULL;
        kpa_error err;
        /* the sockets the manifest declares come first (sockets.c) */
        kpa_start_options with_sockets;
        _cleanup_free_ kpa_user_handle *handles = NULL;
        size_t n_declared = 0;
        int q = sockets_for_start(ctl, m, rc, opts, &with_sockets, &handles, &n_declared, &err);
        if (q < 0)
                return process_fail_start(ctl, i, -q, "start of %s: %s", pkg_id, err.message);
        /* usesServices: the services first, and the handles that join them
         * (after the ones given, so the declared sockets stay first) */
        kpa_start_options with_uses;
        uses_handles uh;
        q = uses_prepare(ctl, i, m, rc, &with_sockets, &with_uses, &uh);
        if (q < 0)
                return q;
        q = kpa_instance_spec_build(ctl->store, m, rc, &with_uses, instance_id, &spec, &err);
        uses_handles_free(&uh); /* the spec holds duplicates */
        if (q < 0)
                return process_fail_start(ctl, i, -q, "start of %s: %s", pkg_id, err.message);
        spec->init_name = kpa_xasprintf("kpa-init %s/%s", spec->app_id, rc->id);
        kpa_trace("start: spec built");
        json_object_put(i->sockets_json); /* a restart records its own */
        i->sockets_json = NULL;
        if (ctl->state_fd >= 0 && n_declared) {
                spec->n_init_kept_handles = n_declared;
                json_object *a = json_object_new_array();
                for (size_t k = 0; k < n_declared; k++) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "name",
                                               json_object_new_string(rc->sockets[k]->name));
                        json_object_object_add(o, "listen",
                                               json_object_new_string(rc->sockets[k]->listen));
                        json_object_object_add(o, "fd", json_object_new_int(spec->handle_fds[k]));
                        json_object_array_add(a, o);
                }
                i->sockets_json = a;
        }
        return spawn(ctl, i, spec);
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
        if (ctl->ops != &process_local_ops)
                return kpa_error_set(&ctl->last_error, EOPNOTSUPP,
                                     "tasks cannot be started through kpa-execd");
        instance *i = process_instance_new(ctl);
        i->stop_timeout_ms = opts->stop_timeout_ms ? opts->stop_timeout_ms : 10000;
        if (getrandom(i->token.bytes, sizeof(i->token.bytes), 0) != sizeof(i->token.bytes)) {
                process_instance_free(ctl, i);
                return kpa_error_set_errno(&ctl->last_error, errno, "getrandom");
        }
        snprintf(i->ctx.app_id, sizeof(i->ctx.app_id), "%s", pkg_id ? pkg_id : "");
        /* a supervisor's own parent is recorded like an explicit one, so
         * that a restarted supervisor opens the group where it was made */
        const char *cgroup_parent = opts->cgroup_parent ? opts->cgroup_parent : ctl->cgroup_parent;
        if (cgroup_parent)
                i->cgroup_parent = kpa_xstrdup(cgroup_parent);
        kpa_start_options with_parent = *opts;
        with_parent.cgroup_parent = i->cgroup_parent;
        opts = &with_parent;
        process_list_add(ctl, i);
        if (out_token)
                *out_token = i->token;
        if (opts->parent) {
                instance *p = process_find(ctl, opts->parent);
                if (!p || process_ended(p))
                        return process_fail_start(ctl, i, ESRCH,
                                                  "parent token is unknown or has ended");
                i->parent = *opts->parent;
                i->has_parent = true;
        }
        if (ctl->supervision && !m && pkg_id)
                i->restart = ctl->supervision->on_requested(pkg_id, run_config_id, opts);
        return process_launch_into(ctl, i, pkg_id, m, rc, run_config_id, opts);
}

static int local_start(kpa_control *ctl, const char *pkg_id, const char *run_config_id,
                       const kpa_start_options *opts, kpa_token *out_token)
{
        return kpa_control_launch(ctl, pkg_id, NULL, NULL, run_config_id, opts, out_token);
}

int kpa_control_start_async(kpa_control *ctl, const char *pkg_id, const char *run_config_id,
                            const kpa_start_options *opts, kpa_token *out_token)
{
        if (ctl->ops != &process_local_ops)
                return kpa_error_set(&ctl->last_error, EOPNOTSUPP, "not for a connected control");
        ctl->start_async = true;
        int q = kpa_control_launch(ctl, pkg_id, NULL, NULL, run_config_id, opts, out_token);
        ctl->start_async = false;
        return q;
}

/* A plan made (and maybe adjusted) by the caller (kpa/instance.h): the
 * same instance as kpa_control_launch makes, with no manifest behind it. */
static int process_start_spec(kpa_control *ctl, kpa_instance_spec *spec, kpa_token *out_token);

int kpa_process_start_spec(kpa_control *ctl, kpa_instance_spec *spec, kpa_token *out_token,
                           kpa_error *err)
{
        kpa_error_clear(&ctl->last_error);
        return kpa_control_error_out(ctl, process_start_spec(ctl, spec, out_token), "start",
                                     err);
}

static int process_start_spec(kpa_control *ctl, kpa_instance_spec *spec, kpa_token *out_token)
{
        if (ctl->ops != &process_local_ops)
                return kpa_error_set(&ctl->last_error, EOPNOTSUPP,
                                     "an instance plan is started by a local controller "
                                     "(kpa_control_open_local); kpa-execd starts packages by id");
        if (!spec)
                return kpa_error_set(&ctl->last_error, EINVAL, "no instance plan given");
        if (spec->instance_id && spec->instance_id[0])
                return kpa_error_set(&ctl->last_error, EALREADY,
                                     "this plan of %s was started already (as %s): a plan is "
                                     "for one start, make a new one for the next",
                                     spec->app_id, spec->instance_id);
        instance *i = process_instance_new(ctl);
        i->stop_timeout_ms = 10000;
        if (getrandom(i->token.bytes, sizeof(i->token.bytes), 0) != sizeof(i->token.bytes)) {
                process_instance_free(ctl, i);
                return kpa_error_set_errno(&ctl->last_error, errno, "getrandom");
        }
        snprintf(i->ctx.app_id, sizeof(i->ctx.app_id), "%s", spec->app_id ? spec->app_id : "");
        snprintf(i->ctx.run_config_id, sizeof(i->ctx.run_config_id), "%s",
                 spec->run_config_id ? spec->run_config_id : "");
        if (!spec->cgroup_parent && ctl->cgroup_parent)
                spec->cgroup_parent = kpa_xstrdup(ctl->cgroup_parent);
        if (spec->cgroup_parent)
                i->cgroup_parent = kpa_xstrdup(spec->cgroup_parent);
        process_list_add(ctl, i);
        if (out_token)
                *out_token = i->token;
        i->ctx.started_at = (int64_t)time(NULL);
        char instance_id[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&i->token, instance_id);
        free(spec->instance_id);
        spec->instance_id = kpa_xstrdup(instance_id); /* names its cgroup */
        if (!spec->init_name)
                spec->init_name = kpa_xasprintf("kpa-init %s", i->ctx.app_id);
        return spawn(ctl, i, spec);
}

int kpa_process_take_tty(kpa_control *ctl, const kpa_token *t, kpa_error *err)
{
        instance *i = ctl->ops == &process_local_ops ? process_find(ctl, t) : NULL;
        if (!i || i->sb.tty_fd < 0)
                return kpa_error_set(err, ENOENT, "%s",
                                     !i ? "no such instance of this (local) controller"
                                        : "the instance has no pseudo-terminal (or it was taken)");
        return TAKE_FD(i->sb.tty_fd);
}

kpa_store *kpa_control_store(kpa_control *ctl) { return ctl->store; }
kpa_error *kpa_control_error(kpa_control *ctl) { return &ctl->last_error; }

/* ---- stop, state, wait ---- */

static bool is_child_of(const instance *c, const instance *parent)
{
        return c->has_parent && memcmp(&c->parent, &parent->token, sizeof(parent->token)) == 0;
}

/* Its descendants, and the clients of a service (which stop before it;
 * their own descendants stop before them). */
static bool has_live_descendants(kpa_control *ctl, const instance *i)
{
        for (instance *c = ctl->list; c; c = c->next) {
                if (is_child_of(c, i) && (c->live || has_live_descendants(ctl, c)))
                        return true;
                if (c->live && uses_is_client_of(c, i))
                        return true;
        }
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

void process_stop_one(kpa_control *ctl, instance *i, kpa_stop_policy policy)
{
        if (i->stop_visiting)
                return; /* a client that is also its service's parent */
        /* descendants first, and a service's clients */
        i->stop_visiting = true;
        for (instance *c = ctl->list; c; c = c->next)
                if (is_child_of(c, i) || (c->live && uses_is_client_of(c, i)))
                        process_stop_one(ctl, c, policy);
        i->stop_visiting = false;
        if (i->restart && i->restart->at_ms) {
                /* a stop cancels a pending restart: it stays ended */
                i->restart->at_ms = 0;
                i->stop_normal = true;
                changed(ctl, i);
        }
        if (!i->live)
                return;
        if (policy == KPA_STOP_FORCED) {
                i->forced = true;
                i->term_pending = false;
                i->deadline_ms = 0;
                changed(ctl, i);
                kill_instance(i);
                return;
        }
        if (i->stop_normal)
                return; /* already stopping; the deadline stands */
        i->stop_normal = true;
        i->deadline_ms = process_now_ms() + i->stop_timeout_ms;
        changed(ctl, i);
        if (has_live_descendants(ctl, i))
                i->term_pending = true; /* SIGTERM once they have ended */
        else
                send_signal(i, SIGTERM); /* the init passes it to every process of the instance */
}

static int local_stop(kpa_control *ctl, const kpa_token *token, kpa_stop_policy policy)
{
        local_dispatch(ctl);
        instance *i = process_find(ctl, token);
        if (!i)
                return kpa_error_set(&ctl->last_error, ESRCH, "no such instance (unknown token)");
        process_stop_one(ctl, i, policy);
        process_arm_timer(ctl);
        return 0;
}

int kpa_control_stop_all(kpa_control *ctl, kpa_stop_policy policy)
{
        int n = 0;
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live || (i->restart && i->restart->at_ms)) {
                        process_stop_one(ctl, i, policy);
                        n++;
                }
        process_arm_timer(ctl);
        return n;
}

int kpa_control_stop_package(kpa_control *ctl, const char *pkg_id, bool restart, pid_t *pids,
                             size_t max_pids)
{
        int n = 0;
        for (instance *i = ctl->list; i; i = i->next) {
                if (!streq(i->ctx.app_id, pkg_id))
                        continue;
                if (!i->live) {
                        /* ended, with a restart due: a stop of the package
                         * (its removal) cancels it; an upgrade lets it come,
                         * on the new version */
                        if (!restart && i->restart && i->restart->at_ms)
                                process_stop_one(ctl, i, KPA_STOP_NORMAL);
                        continue;
                }
                if ((size_t)n < max_pids)
                        pids[n] = i->sb.pid;
                n++;
                /* started again once it has ended: on_ended */
                if (restart && i->restart)
                        i->restart_after_stop = true;
                process_stop_one(ctl, i, KPA_STOP_NORMAL);
        }
        process_arm_timer(ctl);
        return n;
}

void kpa_control_forget_package(kpa_control *ctl, const char *pkg_id)
{
        kpa_cgroup_forget_app(ctl->cgroup_parent, pkg_id);
}

static void notice_from_local(kpa_control *ctl, const char *pkg_id, bool restart,
                              kpa_package_notice *out)
{
        memset(out, 0, sizeof(*out));
        out->affected =
                kpa_control_stop_package(ctl, pkg_id, restart, out->pids, KPA_PACKAGE_NOTICE_PIDS);
}

static int local_package(kpa_control *ctl, const char *pkg_id, bool stop, bool restart,
                         kpa_package_notice *out)
{
        memset(out, 0, sizeof(*out));
        if (stop || restart)
                notice_from_local(ctl, pkg_id, restart && !stop, out);
        return 0;
}

size_t kpa_control_live_count(kpa_control *ctl)
{
        size_t n = 0;
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live)
                        n++;
        return n;
}

/* The host pid of the application: the first child of the init INIT. */
static pid_t app_pid(pid_t init)
{
        char path[64], buf[32];
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)init, (int)init);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        return (pid_t)atoi(buf);
}

static int local_get_state(kpa_control *ctl, const kpa_token *token, kpa_process_context *out)
{
        local_dispatch(ctl);
        instance *i = process_find(ctl, token);
        if (!i) {
                memset(out, 0, sizeof(*out));
                out->state = KPA_PROCESS_NOT_EXISTING;
                out->owner = (uid_t)-1;
                return 0;
        }
        *out = i->ctx;
        out->owner = i->owner;
        out->app_pid = i->live && out->state == KPA_PROCESS_RUNNING ? app_pid(out->pid) : 0;
        if (i->restart && i->restart->at_ms) {
                uint64_t now = process_now_ms();
                out->restart_in_ms = i->restart->at_ms > now ? (unsigned)(i->restart->at_ms - now) : 1;
        } else {
                out->restart_in_ms = 0;
        }
        return 0;
}

static int local_wait(kpa_control *ctl, const kpa_token *token, int timeout_ms,
                      kpa_process_context *out)
{
        uint64_t deadline = timeout_ms >= 0 ? process_now_ms() + (uint64_t)timeout_ms : 0;
        for (;;) {
                local_get_state(ctl, token, out);
                instance *i = process_find(ctl, token);
                bool restarting = i && i->restart && i->restart->at_ms;
                if (out->state != KPA_PROCESS_CREATED && out->state != KPA_PROCESS_PREPARED &&
                    out->state != KPA_PROCESS_RUNNING && !restarting)
                        return 0;
                int wait_ms = -1;
                if (timeout_ms >= 0) {
                        uint64_t now = process_now_ms();
                        if (now >= deadline)
                                return -ETIMEDOUT;
                        wait_ms = (int)(deadline - now);
                }
                struct pollfd p = {.fd = ctl->epfd, .events = POLLIN};
                if (poll(&p, 1, wait_ms) < 0 && errno != EINTR)
                        return -errno;
        }
}

static int local_list(kpa_control *ctl, kpa_token **out, size_t *n)
{
        local_dispatch(ctl);
        size_t count = 0;
        for (instance *i = ctl->list; i; i = i->next)
                count++;
        kpa_token *v = kpa_xcalloc(count ? count : 1, sizeof(*v));
        size_t k = count;
        for (instance *i = ctl->list; i; i = i->next)
                v[--k] = i->token; /* oldest first */
        *out = v;
        *n = count;
        return 0;
}

static int local_list_contexts(kpa_control *ctl, kpa_token **tokens, kpa_process_context **ctxs,
                               size_t *n)
{
        int r = local_list(ctl, tokens, n);
        if (r < 0)
                return r;
        *ctxs = kpa_xcalloc(*n ? *n : 1, sizeof(**ctxs));
        for (size_t k = 0; k < *n; k++)
                local_get_state(ctl, &(*tokens)[k], &(*ctxs)[k]);
        return 0;
}

static int local_stop_all(kpa_control *ctl, kpa_stop_policy policy, size_t *stopped)
{
        local_dispatch(ctl);
        *stopped = (size_t)kpa_control_stop_all(ctl, policy);
        return 0;
}

static int local_open_log(kpa_control *ctl, const kpa_token *token, bool rotated, int *out_fd)
{
        char path[PATH_MAX];
        if (!process_find(ctl, token))
                return kpa_error_set(&ctl->last_error, ESRCH, "no such instance (unknown token)");
        if (kpa_control_log_path(ctl, token, rotated, path, sizeof(path)) < 0)
                return kpa_error_set(&ctl->last_error, ENOENT,
                                     "the process has no captured output (its stdout and stderr "
                                     "were given by its starter)");
        *out_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (*out_fd < 0)
                return kpa_error_set_errno(&ctl->last_error, errno, "cannot open %s", path);
        return 0;
}

/* Live, or waiting for its restart: what a name means first. */
static bool is_current(const instance *i)
{
        return !process_ended(i) || (i->restart && i->restart->at_ms);
}

int kpa_control_find(kpa_control *ctl, const char *app, const char *rc, uid_t owner,
                     kpa_token **out, size_t *n)
{
        if (ctl->ops != &process_local_ops)
                return kpa_error_set(&ctl->last_error, EINVAL, "not a local controller");
        local_dispatch(ctl);
        size_t count = 0, current = 0;
        const instance *latest = NULL; /* the list is newest first */
        for (instance *i = ctl->list; i; i = i->next) {
                if (!streq(i->ctx.app_id, app) || (rc && !streq(i->ctx.run_config_id, rc)) ||
                    (owner != (uid_t)-1 && i->owner != owner))
                        continue;
                count++;
                if (is_current(i))
                        current++;
                else if (!latest || i->ended_ms > latest->ended_ms)
                        latest = i;
        }
        kpa_token *v = kpa_xcalloc(count ? count : 1, sizeof(*v));
        size_t k = current;
        for (instance *i = ctl->list; i && current; i = i->next)
                if (streq(i->ctx.app_id, app) && (!rc || streq(i->ctx.run_config_id, rc)) &&
                    (owner == (uid_t)-1 || i->owner == owner) && is_current(i))
                        v[--k] = i->token; /* oldest first */
        if (!current && latest)
                v[current++] = latest->token;
        *out = v;
        *n = current;
        return 0;
}

static int local_find(kpa_control *ctl, const char *app, const char *rc, kpa_token **out,
                      size_t *n)
{
        return kpa_control_find(ctl, app, rc, (uid_t)-1, out, n);
}

static void local_close(kpa_control *ctl)
{
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live)
                        process_stop_one(ctl, i, KPA_STOP_FORCED);
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live) {
                        /* no more reports will be read: just end and clean up */
                        if (i->sb.report_fd >= 0)
                                epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, i->sb.report_fd, NULL);
                        closep(&i->sb.report_fd);
                        i->sb.report_fd = -1;
                        if (i->adopted && i->sb.pidfd >= 0) {
                                struct pollfd p = {.fd = i->sb.pidfd, .events = POLLIN};
                                (void)poll(&p, 1, 2000); /* not our child: wait for its end */
                        }
                        process_finalize(ctl, i);
                }
        while (ctl->list) {
                instance *next = ctl->list->next;
                process_instance_free(ctl, ctl->list);
                ctl->list = next;
        }
        uses_close(ctl);
        closep(&ctl->epfd);
        closep(&ctl->timerfd);
        closep(&ctl->state_fd);
        free(ctl->state_dir);
        free(ctl->cgroup_parent);
        sockets_free_all(ctl);
        kpa_store_close(ctl->store);
        free(ctl);
}

/* The local backend of kpa_control (control.c dispatches the public calls
 * through it; client.c has the remote one). */
const control_ops process_local_ops = {
        .start = local_start,
        .stop = local_stop,
        .get_state = local_get_state,
        .wait = local_wait,
        .list = local_list,
        .list_contexts = local_list_contexts,
        .stop_all = local_stop_all,
        .open_log = local_open_log,
        .find = local_find,
        .package = local_package,
        .get_fd = local_get_fd,
        .dispatch = local_dispatch,
        .close = local_close,
};
