/* supervise.c: the supervisor mode of the controller, what kpa-execd runs
 * on (kpa_control_supervise), plugged into the local controller as its
 * hooks (supervision_hooks, process-priv.h). It owns the records of
 * supervised instances in STATE_DIR/instances (TOKEN.json in its own small
 * versioned format, replaced atomically, and TOKEN.exit,
 * which the instance's init completes with its wait status), the adoption
 * of instances that outlived an earlier supervisor (pid and start time,
 * pidfd, the log pipe taken back with pidfd_getfd, the cgroup reopened),
 * output capture in STATE_DIR/logs with rotation, and KPA_restart with
 * its backoff. Starting, stopping, the state machine and the retention of
 * ended contexts (every controller's) are process.c's. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <json-c/json.h>

#include "cgroup.h"
#include "json-fields.h"
#include "kpa/process.h"
#include "process-internal.h"
#include "process-priv.h"
#include "sockets.h"
#include "util.h"

#define LOG_MAX_BYTES (1024 * 1024ULL)
#define RECORD_MAX (256 * 1024)
/* the version of the records supervise_record_new() writes; a record
 * without "record" is of the format before (the protocol's context) */
#define RECORD_VERSION 1

/* ---- records of supervised instances (STATE_DIR/instances) ---- */

static void token_name(const instance *i, const char *suffix, char *buf, size_t len)
{
        char t[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&i->token, t);
        snprintf(buf, len, "%s%s", t, suffix);
}

static json_object *strv_to_json(char **v)
{
        json_object *a = json_object_new_array();
        for (size_t k = 0; v && v[k]; k++)
                json_object_array_add(a, json_object_new_string(v[k]));
        return a;
}

static void add_str(json_object *o, const char *key, const char *v)
{
        json_object_object_add(o, key, json_object_new_string(v ? v : ""));
}

static void add_int(json_object *o, const char *key, int64_t v)
{
        json_object_object_add(o, key, json_object_new_int64(v));
}

/* How a run ended, in a record: {status, code, reason, cause}. */
static json_object *end_to_json(kpa_exit_status status, int code, int reason, const char *cause)
{
        json_object *e = json_object_new_object();
        add_str(e, "status", kpa_exit_status_name(status));
        add_int(e, "code", code);
        add_int(e, "reason", reason);
        add_str(e, "cause", cause);
        return e;
}

/* I's record, in supervise.c's own format (RECORD_VERSION): its context as
 * a restarted supervisor shows it, and what it needs to adopt or restart
 * the instance. Not the protocol's wire format, which may change on its
 * own; supervise_record_load() reads both. */
json_object *supervise_record_new(const instance *i)
{
        json_object *o = json_object_new_object();
        char tok[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&i->token, tok);
        const kpa_process_context *c = &i->ctx;
        add_int(o, "record", RECORD_VERSION);
        add_str(o, "token", tok);
        add_int(o, "owner", (int64_t)i->owner);
        add_str(o, "package", c->app_id);
        add_str(o, "runConfig", c->run_config_id);
        add_str(o, "state", kpa_process_state_name(c->state));
        add_int(o, "pid", c->pid);
        add_int(o, "startedAt", c->started_at);
        add_int(o, "restarts", c->restarts);
        add_int(o, "restartInMs", c->restart_in_ms);
        add_str(o, "message", c->message);
        add_int(o, "cleanupError", c->cleanup_error);
        json_object_object_add(o, "exit", end_to_json(c->exit_status, c->exit_code, c->exit_reason,
                                                      c->exit_cause));
        if (c->last_failure.state != KPA_PROCESS_NONE) {
                json_object *e = end_to_json(c->last_failure.exit_status, c->last_failure.exit_code,
                                             c->last_failure.exit_reason,
                                             c->last_failure.exit_cause);
                add_str(e, "state", kpa_process_state_name(c->last_failure.state));
                add_str(e, "message", c->last_failure.message);
                add_int(e, "at", c->last_failure.at);
                json_object_object_add(o, "lastFailure", e);
        }
        if (i->has_parent) {
                char t[KPA_TOKEN_STRING_MAX];
                kpa_token_to_string(&i->parent, t);
                add_str(o, "parent", t);
        }
        /* usesServices: whom it stops before, what ends with it */
        if (i->n_services > 0) {
                json_object *a = json_object_new_array();
                for (size_t k = 0; k < i->n_services; k++) {
                        char t[KPA_TOKEN_STRING_MAX];
                        kpa_token_to_string(&i->services[k], t);
                        json_object_array_add(a, json_object_new_string(t));
                }
                json_object_object_add(o, "services", a);
        }
        if (i->has_bound) {
                char t[KPA_TOKEN_STRING_MAX];
                kpa_token_to_string(&i->bound_to, t);
                add_str(o, "boundTo", t);
        }
        add_int(o, "startTime", (int64_t)i->start_time);
        add_int(o, "logFd", i->log_pipe_in_init);
        if (i->cgroup_parent)
                add_str(o, "cgroupParent", i->cgroup_parent);
        add_int(o, "stopTimeoutMs", i->stop_timeout_ms);
        add_int(o, "stopNormal", i->stop_normal);
        add_int(o, "forced", i->forced);
        add_int(o, "escalated", i->escalated);
        add_int(o, "deadlineMs", (int64_t)i->deadline_ms);
        add_int(o, "endedMs", (int64_t)i->ended_ms);
        if (i->restart) {
                restart_info *r = i->restart;
                json_object *ro = json_object_new_object();
                add_str(ro, "package", r->pkg_id);
                if (r->rc_id)
                        add_str(ro, "runConfig", r->rc_id);
                json_object_object_add(ro, "args", strv_to_json(r->args));
                json_object_object_add(ro, "env", strv_to_json(r->env));
                add_int(ro, "handles", (int64_t)r->n_handles);
                add_int(ro, "memory", (int64_t)r->opts.memory_bytes);
                add_int(ro, "pids", (int64_t)r->opts.pids);
                add_int(ro, "cpuWeight", (int64_t)r->opts.cpu_weight);
                add_int(ro, "network", r->opts.network);
                add_int(ro, "uid", r->opts.uid == (uid_t)-1 ? -1 : (int64_t)r->opts.uid);
                add_int(ro, "gid", r->opts.gid == (gid_t)-1 ? -1 : (int64_t)r->opts.gid);
                if (r->opts.cwd)
                        add_str(ro, "cwd", r->opts.cwd);
                json_object *binds = json_object_new_array();
                for (size_t k = 0; k < r->opts.n_binds; k++) {
                        json_object *b = json_object_new_object();
                        add_str(b, "host", r->opts.binds[k].host);
                        add_str(b, "inside", r->opts.binds[k].inside);
                        add_int(b, "writable", r->opts.binds[k].writable);
                        json_object_array_add(binds, b);
                }
                json_object_object_add(ro, "binds", binds);
                add_int(ro, "mode", r->policy.mode);
                add_int(ro, "maxRetries", r->policy.max_retries);
                add_int(ro, "delayMs", r->policy.delay_ms);
                add_int(ro, "maxDelayMs", r->policy.max_delay_ms);
                add_int(ro, "restarts", r->restarts);
                add_int(ro, "resetAfterS", r->policy.reset_after_s);
                /* a restart that is due (monotonic ms, as deadlineMs): a
                 * restarted supervisor keeps the appointment */
                add_int(ro, "atMs", (int64_t)r->at_ms);
                json_object_object_add(o, "restart", ro);
        }
        if (i->sockets_json)
                json_object_object_add(o, "sockets", json_object_get(i->sockets_json));
        return o;
}

/* Write I's record: atomically (a temporary file renamed over the old one),
 * so that a supervisor killed in the middle leaves the old record whole. */
static int supervise_record_write(kpa_control *ctl, instance *i)
{
        if (ctl->state_fd < 0)
                return 0;
        _cleanup_(json_object_putp) json_object *o = supervise_record_new(i);
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        char name[64], tmp[80];
        token_name(i, ".json", name, sizeof(name));
        token_name(i, ".json.tmp", tmp, sizeof(tmp));
        _cleanup_close_ int fd = openat(ctl->state_fd, tmp,
                                        O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        int q = fd < 0 ? -errno : kpa_write_all(fd, text, strlen(text));
        if (q == 0)
                q = kpa_write_all(fd, "\n", 1);
        if (q == 0 && renameat(ctl->state_fd, tmp, ctl->state_fd, name) < 0)
                q = -errno;
        if (q == 0)
                return 0;
        (void)unlinkat(ctl->state_fd, tmp, 0); /* the old record stays */
        ctl->record_failures++;
        return kpa_error_set_errno(&ctl->record_error, -q,
                                   "cannot write the record of %s (%s, %s) in %s/instances; a "
                                   "restarted kpa-execd would not know its latest state",
                                   name, i->ctx.app_id, kpa_process_state_name(i->ctx.state),
                                   ctl->state_dir);
}

unsigned kpa_control_take_record_error(kpa_control *ctl, kpa_error *out)
{
        unsigned n = ctl->record_failures;
        *out = ctl->record_error;
        ctl->record_failures = 0;
        return n;
}

static void record_remove(kpa_control *ctl, instance *i)
{
        if (ctl->state_fd < 0)
                return;
        static const char *const suffixes[] = {".json", ".exit"};
        for (size_t k = 0; k < ELEMENTSOF(suffixes); k++) {
                char name[64];
                token_name(i, suffixes[k], name, sizeof(name));
                (void)unlinkat(ctl->state_fd, name, 0);
        }
        static const char *const logs[] = {".log", ".log.1"};
        for (size_t k = 0; k < ELEMENTSOF(logs); k++) {
                char t[KPA_TOKEN_STRING_MAX], name[96];
                kpa_token_to_string(&i->token, t);
                snprintf(name, sizeof(name), "../logs/%s%s", t, logs[k]);
                (void)unlinkat(ctl->state_fd, name, 0);
        }
}

/* The init's exit record: "exited STATUS". */
static bool supervise_read_exit_record(instance *i)
{
        char buf[64] = "";
        if (i->exit_fd < 0)
                return false;
        ssize_t n = pread(i->exit_fd, buf, sizeof(buf) - 1, 0);
        int status;
        if (n <= 0 || sscanf(buf, "exited %d", &status) != 1)
                return false;
        i->exited = true;
        i->wait_status = status;
        i->exit_oom = strstr(buf, " oom\n") != NULL;
        return true;
}

/* When PID started (kpa_proc_start_time): a zombie init counts, it is
 * adopted and ends as Running. */
static unsigned long long supervise_proc_start_time(pid_t pid)
{
        return kpa_proc_start_time(pid, NULL);
}

/* ---- output capture of supervised instances (STATE_DIR/logs) ---- */

static int open_log_file(kpa_control *ctl, instance *i)
{
        char t[KPA_TOKEN_STRING_MAX], name[96];
        kpa_token_to_string(&i->token, t);
        snprintf(name, sizeof(name), "../logs/%s.log", t);
        closep(&i->log_file);
        i->log_file = openat(ctl->state_fd, name,
                             O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0640);
        struct stat st;
        i->log_size = i->log_file >= 0 && fstat(i->log_file, &st) == 0 ? (uint64_t)st.st_size : 0;
        return i->log_file >= 0 ? 0 : -errno;
}

static void rotate_log(kpa_control *ctl, instance *i)
{
        char t[KPA_TOKEN_STRING_MAX], cur[96], old[96];
        kpa_token_to_string(&i->token, t);
        snprintf(cur, sizeof(cur), "../logs/%s.log", t);
        snprintf(old, sizeof(old), "../logs/%s.log.1", t);
        (void)renameat(ctl->state_fd, cur, ctl->state_fd, old);
        open_log_file(ctl, i);
}

static void supervise_close_log_pipe(kpa_control *ctl, instance *i)
{
        if (i->log_pipe < 0)
                return;
        epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, i->log_pipe, NULL);
        closep(&i->log_pipe);
        i->log_pipe = -1;
}

/* Move what the instance wrote into its log file. EOF (every writer gone)
 * closes the pipe. */
static void supervise_drain_log(kpa_control *ctl, instance *i)
{
        char buf[65536];
        while (i->log_pipe >= 0) {
                ssize_t n = read(i->log_pipe, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        supervise_close_log_pipe(ctl, i);
                        return;
                }
                size_t off = 0;
                while (off < (size_t)n) {
                        if (i->log_size >= ctl->log_max_bytes)
                                rotate_log(ctl, i);
                        size_t room = ctl->log_max_bytes - i->log_size;
                        size_t chunk = (size_t)n - off < room ? (size_t)n - off : room;
                        if (i->log_file >= 0)
                                (void)kpa_write_all(i->log_file, buf + off, chunk);
                        i->log_size += chunk;
                        off += chunk;
                }
        }
}

static void supervise_watch_log(kpa_control *ctl, instance *i)
{
        fcntl(i->log_pipe, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &i->w_log};
        epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, i->log_pipe, &ev);
}

int kpa_control_log_path(kpa_control *ctl, const kpa_token *t, bool rotated, char *buf, size_t len)
{
        instance *i = process_find(ctl, t);
        if (!i || !ctl->state_dir || i->log_pipe_in_init < 0)
                return -ENOENT;
        char s[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(t, s);
        snprintf(buf, len, "%s/logs/%s.log%s", ctl->state_dir, s, rotated ? ".1" : "");
        return 0;
}

/* ---- starting a supervised instance ---- */

/* Supervised: the exit record the init writes, and (when the caller gave
 * no stdout/stderr) the pipe that captures its output. */
static int supervise_prepare_spawn(kpa_control *ctl, instance *i, kpa_instance_spec *spec)
{
        char name[64];
        token_name(i, ".exit", name, sizeof(name));
        i->exit_fd = openat(ctl->state_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                            0600);
        if (i->exit_fd < 0)
                return process_fail_start(ctl, i, errno,
                                          "start of %s: cannot create %s/instances/%s: %s",
                                          i->ctx.app_id, ctl->state_dir, name, strerror(errno));
        spec->detached = true;
        spec->exit_record_fd = i->exit_fd;
        if (spec->stdio[1] >= 0 || spec->stdio[2] >= 0)
                return 0;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return process_fail_start(ctl, i, errno, "start of %s: pipe: %s", i->ctx.app_id,
                                          strerror(errno));
        if (open_log_file(ctl, i) < 0) {
                int e = errno;
                close(p[0]);
                close(p[1]);
                return process_fail_start(ctl, i, e,
                                          "start of %s: cannot create its log file in %s/logs: %s",
                                          i->ctx.app_id, ctl->state_dir, strerror(e));
        }
        spec->stdio[1] = spec->stdio[2] = p[1];
        spec->init_keep_fd = p[0];
        i->log_pipe = p[0];
        i->log_pipe_in_init = p[0];
        return 0;
}

/* ---- restarts (KPA_restart; supervised instances only) ---- */

static void supervise_restart_free(restart_info *r)
{
        if (!r)
                return;
        free(r->pkg_id);
        free(r->rc_id);
        kpa_strv_free(r->args);
        kpa_strv_free(r->env);
        for (size_t k = 0; k < r->n_handles; k++) {
                free((char *)r->handles[k].name);
                closep((int *)&r->handles[k].fd);
        }
        free(r->handles);
        for (size_t k = 0; k < r->opts.n_binds; k++) {
                free((char *)r->opts.binds[k].host);
                free((char *)r->opts.binds[k].inside);
        }
        free((kpa_start_bind *)r->opts.binds);
        free((char *)r->opts.cwd);
        free(r);
}

static char **strv_dup_n(const char *const *v, size_t n)
{
        char **copy = kpa_xcalloc(n + 1, sizeof(char *));
        for (size_t k = 0; k < n; k++)
                copy[k] = kpa_xstrdup(v[k]);
        return copy;
}

static kpa_start_bind *binds_dup(const kpa_start_bind *b, size_t n)
{
        kpa_start_bind *copy = kpa_xcalloc(n ? n : 1, sizeof(*copy));
        for (size_t k = 0; k < n; k++)
                copy[k] = (kpa_start_bind){.host = kpa_xstrdup(b[k].host),
                                           .inside = kpa_xstrdup(b[k].inside),
                                           .writable = b[k].writable};
        return copy;
}

/* Keep what a restart needs: the request, with copies of the handles. */
static restart_info *supervise_restart_new(const char *pkg_id, const char *rc_id,
                                           const kpa_start_options *opts)
{
        restart_info *r = kpa_xcalloc(1, sizeof(*r));
        r->pkg_id = kpa_xstrdup(pkg_id);
        r->rc_id = rc_id ? kpa_xstrdup(rc_id) : NULL;
        r->args = strv_dup_n(opts->extra_args, opts->n_extra_args);
        r->n_args = opts->n_extra_args;
        r->env = strv_dup_n(opts->extra_env, opts->n_extra_env);
        r->n_env = opts->n_extra_env;
        r->handles = kpa_xcalloc(opts->n_handles ? opts->n_handles : 1, sizeof(*r->handles));
        for (size_t k = 0; k < opts->n_handles; k++) {
                r->handles[k].name = kpa_xstrdup(opts->handles[k].name);
                r->handles[k].fd = fcntl(opts->handles[k].fd, F_DUPFD_CLOEXEC, 3);
                if (r->handles[k].fd < 0)
                        r->handles_lost = true;
        }
        r->n_handles = opts->n_handles;
        r->opts = *opts;
        r->opts.parent = NULL;
        r->opts.handles = NULL;
        r->opts.extra_args = r->opts.extra_env = NULL;
        r->opts.cgroup_parent = NULL;
        r->opts.cwd = opts->cwd ? kpa_xstrdup(opts->cwd) : NULL;
        r->opts.binds = binds_dup(opts->binds, opts->n_binds);
        r->opts.tty = false;
        r->opts.stdin_fd = r->opts.stdout_fd = r->opts.stderr_fd = -1; /* a restart logs */
        return r;
}

/* An instance that ended for good keeps only its context: what a restart
 * would need goes (a supervisor keeps many ended contexts, and every
 * start forks it). */
static void supervise_forget_restart(instance *i)
{
        if (i->restart && !i->restart->at_ms) {
                supervise_restart_free(i->restart);
                i->restart = NULL;
        }
}

static void supervise_schedule_restart(kpa_control *ctl, instance *i)
{
        restart_info *r = i->restart;
        if (r && i->restart_after_stop && !r->handles_lost && !r->at_ms) {
                /* stopped for an upgrade: at once, whatever the policy */
                i->restart_after_stop = false;
                r->restarts = 0;
                r->at_ms = process_now_ms();
                process_arm_timer(ctl);
                return;
        }
        if (!r || r->at_ms || r->policy.mode == KPA_RESTART_NO || i->stop_normal || i->forced)
                return;
        bool failed = i->ctx.state == KPA_PROCESS_FAILED || i->ctx.exit_code != 0;
        if (r->policy.mode == KPA_RESTART_ON_FAILURE && !failed)
                return;
        if (r->handles_lost) {
                snprintf(i->ctx.message + strlen(i->ctx.message),
                         sizeof(i->ctx.message) - strlen(i->ctx.message),
                         "; not restarted: its handles did not survive a restart of the supervisor");
                return;
        }
        uint64_t now = process_now_ms();
        /* a healthy run of resetAfter seconds starts the backoff over */
        if (r->running_since_ms &&
            now - r->running_since_ms >=
                    (uint64_t)(r->policy.reset_after_s ? r->policy.reset_after_s : 60) * 1000)
                r->restarts = 0;
        if (r->policy.max_retries && r->restarts >= r->policy.max_retries) {
                snprintf(i->ctx.message + strlen(i->ctx.message),
                         sizeof(i->ctx.message) - strlen(i->ctx.message),
                         "; not restarted: %u restarts in a row", r->restarts);
                return;
        }
        uint64_t delay = r->policy.delay_ms ? r->policy.delay_ms : 100;
        for (unsigned k = 0; k < r->restarts && delay < r->policy.max_delay_ms; k++)
                delay *= 2;
        if (r->policy.max_delay_ms && delay > r->policy.max_delay_ms)
                delay = r->policy.max_delay_ms;
        r->at_ms = now + delay;
        i->ctx.restart_in_ms = (unsigned)delay; /* the observer logs it */
        process_arm_timer(ctl);
}

static void supervise_do_restart(kpa_control *ctl, instance *i)
{
        restart_info *r = i->restart;
        r->at_ms = 0;
        r->restarts++;
        r->running_since_ms = 0; /* until it runs again */
        kpa_process_context old = i->ctx;
        memset(&i->ctx, 0, sizeof(i->ctx));
        memcpy(i->ctx.app_id, old.app_id, sizeof(old.app_id));
        i->ctx.restarts = old.restarts + 1;
        i->ctx.last_failure = old.last_failure;
        i->exited = i->exit_oom = i->stop_normal = i->forced = i->escalated = i->term_pending =
                i->restart_after_stop = false;
        i->deadline_ms = 0;
        i->adopted = false;
        kpa_start_options o = r->opts;
        o.extra_args = (const char *const *)r->args;
        o.n_extra_args = r->n_args;
        o.extra_env = (const char *const *)r->env;
        o.n_extra_env = r->n_env;
        o.handles = r->handles;
        o.n_handles = r->n_handles;
        o.cgroup_parent = i->cgroup_parent;
        r->starting = true;
        r->notify_pending = false;
        (void)process_launch_into(ctl, i, r->pkg_id, NULL, NULL, r->rc_id, &o);
        r->starting = false;
        if (process_ended(i)) { /* a failed start counts as a failure too */
                process_note_failure(i);
                supervise_schedule_restart(ctl, i);
        }
        if (r->notify_pending) { /* told now, with the next restart's delay */
                r->notify_pending = false;
                supervise_record_write(ctl, i);
                process_notify(ctl, i);
        }
}

/* ---- supervision: taking over the records of an earlier supervisor ---- */

static int64_t jint(json_object *o, const char *key, int64_t dflt)
{
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)
                       ? json_object_get_int64(v)
                       : dflt;
}

static const char *jstr(json_object *o, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static char **jstrv(json_object *o, const char *key, size_t *n)
{
        json_object *a;
        *n = 0;
        if (!json_object_object_get_ex(o, key, &a) || !json_object_is_type(a, json_type_array))
                return kpa_xcalloc(1, sizeof(char *));
        size_t len = json_object_array_length(a);
        char **v = kpa_xcalloc(len + 1, sizeof(char *));
        for (size_t k = 0; k < len; k++) {
                json_object *e = json_object_array_get_idx(a, k);
                if (json_object_is_type(e, json_type_string))
                        v[(*n)++] = kpa_xstrdup(json_object_get_string(e));
        }
        return v;
}

/* The binds of a restart record; entries that are not whole are skipped. */
static kpa_start_bind *jbinds(json_object *o, size_t *n)
{
        json_object *a;
        *n = 0;
        size_t len = json_object_object_get_ex(o, "binds", &a) &&
                                     json_object_is_type(a, json_type_array)
                             ? json_object_array_length(a)
                             : 0;
        kpa_start_bind *b = kpa_xcalloc(len ? len : 1, sizeof(*b));
        for (size_t k = 0; k < len; k++) {
                json_object *e = json_object_array_get_idx(a, k);
                const char *host = jstr(e, "host"), *inside = jstr(e, "inside");
                if (host && inside)
                        b[(*n)++] = (kpa_start_bind){.host = kpa_xstrdup(host),
                                                     .inside = kpa_xstrdup(inside),
                                                     .writable = jint(e, "writable", 0) != 0};
        }
        return b;
}

static restart_info *restart_from_record(json_object *ro)
{
        restart_info *r = kpa_xcalloc(1, sizeof(*r));
        const char *pkg = jstr(ro, "package"), *rc = jstr(ro, "runConfig");
        r->pkg_id = kpa_xstrdup(pkg ? pkg : "");
        r->rc_id = rc ? kpa_xstrdup(rc) : NULL;
        r->args = jstrv(ro, "args", &r->n_args);
        r->env = jstrv(ro, "env", &r->n_env);
        r->handles = kpa_xcalloc(1, sizeof(*r->handles));
        r->handles_lost = jint(ro, "handles", 0) > 0;
        kpa_start_options_init(&r->opts);
        r->opts.memory_bytes = (uint64_t)jint(ro, "memory", 0);
        r->opts.pids = (uint64_t)jint(ro, "pids", 0);
        r->opts.cpu_weight = (uint64_t)jint(ro, "cpuWeight", 0);
        r->opts.network = (kpa_network_mode_opt)jint(ro, "network", 0);
        r->opts.uid = (uid_t)jint(ro, "uid", -1);
        r->opts.gid = (gid_t)jint(ro, "gid", -1);
        const char *cwd = jstr(ro, "cwd");
        r->opts.cwd = cwd ? kpa_xstrdup(cwd) : NULL;
        r->opts.binds = jbinds(ro, &r->opts.n_binds);
        r->policy.mode = (kpa_restart_mode)jint(ro, "mode", 0);
        r->policy.max_retries = (uint32_t)jint(ro, "maxRetries", 5);
        r->policy.delay_ms = (uint32_t)jint(ro, "delayMs", 100);
        r->policy.max_delay_ms = (uint32_t)jint(ro, "maxDelayMs", 30000);
        r->restarts = (unsigned)jint(ro, "restarts", 0);
        r->policy.reset_after_s = (uint32_t)jint(ro, "resetAfterS", 60);
        r->at_ms = (uint64_t)jint(ro, "atMs", 0);
        return r;
}

/* The value of the state name S (KPA_PROCESS_NONE..NOT_EXISTING), or -1. */
static int state_from_name(const char *s)
{
        for (int k = KPA_PROCESS_NONE; s && k <= KPA_PROCESS_NOT_EXISTING; k++)
                if (streq(kpa_process_state_name((kpa_process_state)k), s))
                        return k;
        return -1;
}

static int status_from_name(const char *s)
{
        for (int k = 0; s && k <= KPA_EXIT_TERMINATED; k++)
                if (streq(kpa_exit_status_name((kpa_exit_status)k), s))
                        return k;
        return -1;
}

/* String KEY of O into BUF; a longer one is cut (TRUNCATE) or refused. */
static int jstr_to(json_object *o, const char *key, char *buf, size_t size, bool truncate)
{
        const char *v = jstr(o, key);
        buf[0] = '\0';
        if (!v)
                return 0;
        if (strlen(v) >= size && !truncate)
                return -EINVAL;
        snprintf(buf, size, "%s", v);
        return 0;
}

/* The keys of how a run ended: in a record (in "exit" and "lastFailure"),
 * and in the format before it (the protocol's context, flat). */
typedef struct end_keys {
        const char *status, *code, *reason, *cause;
} end_keys;
static const end_keys record_end_keys = {"status", "code", "reason", "cause"};
static const end_keys wire_end_keys = {"exitStatus", "exitCode", "exitReason", "exitCause"};

/* I's context from record O of version V (0: the format before records). */
static int context_from_record(json_object *o, int64_t v, instance *i)
{
        kpa_process_context *c = &i->ctx;
        memset(c, 0, sizeof(*c));
        const char *tok = jstr(o, "token");
        int state = state_from_name(jstr(o, "state"));
        if (!tok || kpa_token_from_string(tok, &i->token) < 0 || state < 0)
                return -EINVAL;
        c->state = (kpa_process_state)state;
        json_object *end = o;
        const end_keys *k = &wire_end_keys;
        if (v > 0) {
                k = &record_end_keys;
                if (!json_object_object_get_ex(o, "exit", &end) ||
                    !json_object_is_type(end, json_type_object))
                        end = NULL;
        }
        int status = end ? status_from_name(jstr(end, k->status)) : 0;
        c->exit_status = (kpa_exit_status)(status < 0 ? 0 : status);
        c->exit_code = end ? (int)jint(end, k->code, 0) : 0;
        c->exit_reason = end ? (int)jint(end, k->reason, 0) : 0;
        if (end)
                (void)jstr_to(end, k->cause, c->exit_cause, sizeof(c->exit_cause), true);
        if (jstr_to(o, "package", c->app_id, sizeof(c->app_id), false) < 0 ||
            jstr_to(o, "runConfig", c->run_config_id, sizeof(c->run_config_id), false) < 0)
                return -EINVAL;
        (void)jstr_to(o, "message", c->message, sizeof(c->message), true);
        c->pid = (pid_t)jint(o, "pid", 0);
        c->cleanup_error = (int)jint(o, "cleanupError", 0);
        c->started_at = jint(o, "startedAt", 0);
        c->restarts = (unsigned)jint(o, "restarts", 0);
        c->restart_in_ms = (unsigned)jint(o, "restartInMs", 0);
        int64_t owner = jint(o, "owner", -1);
        c->owner = owner >= 0 && owner < (int64_t)UINT32_MAX ? (uid_t)owner : (uid_t)-1;
        json_object *f;
        if (json_object_object_get_ex(o, "lastFailure", &f) &&
            json_object_is_type(f, json_type_object)) {
                state = state_from_name(jstr(f, "state"));
                status = status_from_name(jstr(f, k->status));
                c->last_failure.state = (kpa_process_state)(state < 0 ? 0 : state);
                c->last_failure.exit_status = (kpa_exit_status)(status < 0 ? 0 : status);
                c->last_failure.exit_code = (int)jint(f, k->code, 0);
                c->last_failure.exit_reason = (int)jint(f, k->reason, 0);
                (void)jstr_to(f, k->cause, c->last_failure.exit_cause,
                              sizeof(c->last_failure.exit_cause), true);
                (void)jstr_to(f, "message", c->last_failure.message,
                              sizeof(c->last_failure.message), true);
                c->last_failure.at = jint(f, "at", 0);
        }
        return 0;
}

/* Fill I (blank, from process_instance_new) from its record O: of this
 * format, or of the one before (a supervisor upgraded while its instances
 * run adopts them). */
int supervise_record_load(json_object *o, instance *i)
{
        if (!json_object_is_type(o, json_type_object))
                return -EINVAL;
        int64_t v = jint(o, "record", 0);
        if (v < 0 || v > RECORD_VERSION)
                return -EPROTONOSUPPORT; /* from a newer kpa: not ours to touch */
        int q = context_from_record(o, v, i);
        if (q < 0)
                return q;
        /* written from Created on: anything else is not a state to resume */
        if (i->ctx.state < KPA_PROCESS_CREATED || i->ctx.state > KPA_PROCESS_FINISHED)
                i->ctx.state = KPA_PROCESS_FAILED;
        const char *parent = jstr(o, "parent");
        if (parent && kpa_token_from_string(parent, &i->parent) == 0)
                i->has_parent = true;
        json_object *sv;
        if (json_object_object_get_ex(o, "services", &sv) && json_object_is_type(sv, json_type_array)) {
                size_t n = json_object_array_length(sv);
                i->services = kpa_xcalloc(n ? n : 1, sizeof(*i->services));
                for (size_t k = 0; k < n; k++) {
                        const char *st = json_object_get_string(json_object_array_get_idx(sv, k));
                        if (st && kpa_token_from_string(st, &i->services[i->n_services]) == 0)
                                i->n_services++;
                }
        }
        const char *bound = jstr(o, "boundTo");
        if (bound && kpa_token_from_string(bound, &i->bound_to) == 0)
                i->has_bound = true;
        i->owner = (uid_t)jint(o, "owner", 0);
        i->start_time = (unsigned long long)jint(o, "startTime", 0);
        i->log_pipe_in_init = (int)jint(o, "logFd", -1);
        const char *cgp = jstr(o, "cgroupParent");
        i->cgroup_parent = cgp ? kpa_xstrdup(cgp) : NULL;
        i->stop_timeout_ms = (unsigned)jint(o, "stopTimeoutMs", 10000);
        i->stop_normal = jint(o, "stopNormal", 0);
        i->forced = jint(o, "forced", 0);
        i->escalated = jint(o, "escalated", 0);
        i->deadline_ms = (uint64_t)jint(o, "deadlineMs", 0);
        i->ended_ms = (uint64_t)jint(o, "endedMs", 0);
        json_object *ro;
        if (json_object_object_get_ex(o, "restart", &ro) && json_object_is_type(ro, json_type_object))
                i->restart = restart_from_record(ro);
        json_object *so;
        if (json_object_object_get_ex(o, "sockets", &so) && json_object_is_type(so, json_type_array))
                i->sockets_json = json_object_get(so);
        return 0;
}

/* Rebuild an instance from its record; NULL when it is not one (or its
 * token is taken). */
static instance *instance_from_record(kpa_control *ctl, json_object *o)
{
        instance *i = process_instance_new(ctl);
        if (supervise_record_load(o, i) < 0 || process_find(ctl, &i->token)) {
                process_instance_free(ctl, i);
                return NULL;
        }
        return i;
}

/* The declared sockets that I's init keeps (KPA_sockets): taken back into
 * CTL's list, so that the next start or restart gets the same socket. */
static void adopt_sockets(kpa_control *ctl, instance *i)
{
        json_object *a = i->sockets_json;
        for (size_t k = 0; a && i->sb.pidfd >= 0 && k < json_object_array_length(a); k++) {
                json_object *s = json_object_array_get_idx(a, k);
                const char *name = jstr(s, "name"), *listen = jstr(s, "listen");
                int fd_in_init = (int)jint(s, "fd", -1);
                if (!name || !listen || fd_in_init < 0)
                        continue;
                int fd = (int)syscall(SYS_pidfd_getfd, i->sb.pidfd, fd_in_init, 0);
                int listening = 0;
                socklen_t len = sizeof(listening);
                if (fd >= 0 && (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 ||
                                !listening)) {
                        close(fd); /* not the socket any more */
                        continue;
                }
                if (fd >= 0)
                        sockets_adopt(ctl, i->ctx.app_id, i->ctx.run_config_id, name, listen, fd);
        }
}

/* An instance that was live when its supervisor went away: adopt it again
 * if its init still runs, else learn how it ended. */
static void adopt(kpa_control *ctl, instance *i)
{
        char name[64];
        token_name(i, ".exit", name, sizeof(name));
        i->exit_fd = openat(ctl->state_fd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        char inst[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&i->token, inst);
        kpa_error err;
        /* a record without a parent is from a supervisor that made its
         * instances below its own cgroup: the one this one was started in */
        const char *cgp = i->cgroup_parent ? i->cgroup_parent : ctl->cgroup_parent;
        if (kpa_cgroup_open(cgp, i->ctx.app_id, inst, &i->sb.cgroup, &err) < 0)
                i->sb.cgroup = NULL; /* gone with the instance (or collected) */
        i->sb.pid = i->ctx.pid;
        i->sb.pidfd = i->ctx.pid > 0 ? (int)syscall(SYS_pidfd_open, i->ctx.pid, 0) : -1;
        /* the pid must still name the same process: check after the pidfd
         * holds it, so that it cannot be reused in between */
        if (i->sb.pidfd >= 0 &&
            (!i->start_time || supervise_proc_start_time(i->ctx.pid) != i->start_time))
                closep(&i->sb.pidfd), i->sb.pidfd = -1;
        i->adopted = true;
        i->live = true;
        adopt_sockets(ctl, i);
        if (i->log_pipe_in_init >= 0 && i->sb.pidfd >= 0) {
                i->log_pipe = (int)syscall(SYS_pidfd_getfd, i->sb.pidfd, i->log_pipe_in_init, 0);
                if (i->log_pipe >= 0 && open_log_file(ctl, i) == 0)
                        supervise_watch_log(ctl, i);
                else
                        closep(&i->log_pipe), i->log_pipe = -1;
        }
        if (i->sb.pidfd < 0) {
                /* it ended while no supervisor ran, and its init is reaped
                 * (a zombie init is adopted above and ends as Running). Its
                 * record says Created: it is not rewritten for Running. An
                 * exit record means that the application ran, since the
                 * init writes it when the application ends */
                if (i->ctx.state < KPA_PROCESS_RUNNING && supervise_read_exit_record(i))
                        i->ctx.state = KPA_PROCESS_RUNNING;
                process_finalize(ctl, i);
                return;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &i->w_pidfd};
        epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, i->sb.pidfd, &ev);
        /* its init still runs: the start got past the sandbox (a failed
         * step ends the init at once), and the record is not rewritten
         * when the application reports Running */
        i->ctx.state = KPA_PROCESS_RUNNING;
        if (i->restart)
                i->restart->running_since_ms = process_now_ms();
}

/* A restart that was due when the supervisor went away (its record's
 * atMs) comes as planned; one due later than the policy's longest delay
 * is from another boot, and comes now. Without the handles it was
 * started with, it does not come (as supervise_schedule_restart says). */
static void restart_due_again(instance *i, uint64_t now)
{
        restart_info *r = i->restart;
        if (!r || !r->at_ms)
                return;
        if (i->live || !process_ended(i)) {
                r->at_ms = 0; /* adopted while it runs: planned when it ends */
                return;
        }
        if (r->handles_lost) {
                r->at_ms = 0;
                snprintf(i->ctx.message + strlen(i->ctx.message),
                         sizeof(i->ctx.message) - strlen(i->ctx.message),
                         "; not restarted: its handles did not survive a restart of the supervisor");
                return;
        }
        uint64_t longest = r->policy.max_delay_ms ? r->policy.max_delay_ms : 30000;
        if (r->at_ms > now + longest)
                r->at_ms = now;
}

/* ---- the hooks of the local controller (process-priv.h) ---- */

static void on_created(kpa_control *ctl, instance *i)
{
        i->start_time = supervise_proc_start_time(i->sb.pid);
        (void)supervise_record_write(ctl, i);
}

static void on_changed(kpa_control *ctl, instance *i)
{
        (void)supervise_record_write(ctl, i);
}

static void on_init_gone(kpa_control *ctl, instance *i)
{
        supervise_drain_log(ctl, i);
        supervise_close_log_pipe(ctl, i);
        if (!i->exited)
                (void)supervise_read_exit_record(i);
}

static void on_freed(instance *i)
{
        supervise_restart_free(i->restart);
}

const supervision_hooks supervise_hooks = {
        .on_requested = supervise_restart_new,
        .on_spawning = supervise_prepare_spawn,
        .on_created = on_created,
        .on_running = supervise_watch_log,
        .on_changed = on_changed,
        .on_output = supervise_drain_log,
        .on_init_gone = on_init_gone,
        .on_ended = supervise_schedule_restart,
        .on_settled = supervise_forget_restart,
        .on_restart_due = supervise_do_restart,
        .on_dropped = record_remove,
        .on_freed = on_freed,
};

static int mkdir_at(int dirfd, const char *name, mode_t mode)
{
        return mkdirat(dirfd, name, mode) == 0 || errno == EEXIST ? 0 : -errno;
}

int kpa_control_supervise(kpa_control *ctl, const kpa_supervisor_config *cfg, kpa_error *err)
{
        if (ctl->ops != &process_local_ops || ctl->state_fd >= 0)
                return kpa_error_set(err, EINVAL, "this controller cannot supervise");
        const char *dir = cfg->state_dir;
        int q = mkdir_at(AT_FDCWD, dir, 0755);
        _cleanup_close_ int dfd = q < 0 ? -1 : open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (q == 0 && dfd < 0)
                q = -errno;
        if (q == 0)
                q = mkdir_at(dfd, "instances", 0700);
        if (q == 0)
                q = mkdir_at(dfd, "logs", 0750);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "state directory %s", dir);
        ctl->state_fd = openat(dfd, "instances", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (ctl->state_fd < 0)
                return kpa_error_set_errno(err, errno, "state directory %s/instances", dir);
        ctl->state_dir = kpa_xstrdup(dir);
        ctl->supervision = &supervise_hooks;
        if (cfg->keep_ended_max)
                ctl->keep_ended_max = cfg->keep_ended_max;
        if (cfg->keep_ended_s)
                ctl->keep_ended_ms = (uint64_t)cfg->keep_ended_s * 1000;
        ctl->log_max_bytes = cfg->log_max_bytes ? cfg->log_max_bytes : LOG_MAX_BYTES;
        /* on cgroup v2, kpa_cgroup_become_supervisor() moved this process
         * into a leaf: its instances go beside it, below the group it left */
        ctl->cgroup_parent = kpa_cgroup_supervisor_parent();

        int fd = fcntl(ctl->state_fd, F_DUPFD_CLOEXEC, 3);
        _cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                closep(&fd);
                return kpa_error_set_errno(err, errno, "state directory %s/instances", dir);
        }
        int adopted = 0;
        for (struct dirent *de; (de = readdir(d));) {
                size_t len = strlen(de->d_name);
                if (len < 5 || !streq(de->d_name + len - 5, ".json"))
                        continue;
                _cleanup_free_ char *text = NULL;
                if (kpa_read_file_at(ctl->state_fd, de->d_name, RECORD_MAX, &text, NULL) < 0)
                        continue;
                _cleanup_(json_object_putp) json_object *o = json_tokener_parse(text);
                instance *i = o ? instance_from_record(ctl, o) : NULL;
                if (!i) {
                        /* not a record kpa wrote: leave it for the administrator */
                        continue;
                }
                process_list_add(ctl, i);
                if (!process_ended(i)) {
                        adopt(ctl, i);
                        if (i->live)
                                adopted++;
                }
        }
        /* ended in another boot (monotonic times of then mean nothing now):
         * retention counts from now */
        for (instance *i = ctl->list; i; i = i->next) {
                uint64_t now = process_now_ms();
                if (process_ended(i) && !i->live && i->ended_ms > now)
                        i->ended_ms = now;
                restart_due_again(i, now);
        }
        process_arm_timer(ctl);
        return adopted;
}
