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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#include <json-c/json.h>

#include "kpa/package.h"
#include "client.h"
#include "json-fields.h"
#include "kpa/process.h"
#include "process-internal.h"
#include "protocol.h"
#include "sandbox.h"
#include "spec.h"
#include "util.h"

#define KEEP_ENDED_MAX 1000
#define KEEP_ENDED_MS (3600 * 1000ULL)
#define LOG_MAX_BYTES (1024 * 1024ULL)
#define RECORD_MAX (256 * 1024)

/* What epoll reports: which fd of which instance (NULL: the timerfd). */
typedef enum watch_kind { WATCH_REPORT = 1, WATCH_PIDFD, WATCH_LOG } watch_kind;
struct instance;
typedef struct watch {
        watch_kind kind;
        struct instance *i;
} watch;

/* What a supervised instance needs to be started again (KPA_restart). */
typedef struct restart_info {
        char *pkg_id;
        char *rc_id;
        char **args, **env;          /* NULL-terminated copies */
        size_t n_args, n_env;
        kpa_user_handle *handles;    /* names and fds owned */
        size_t n_handles;
        bool handles_lost;           /* adopted: the handles' fds are gone */
        kpa_start_options opts;      /* limits, network, ids, stop timeout */
        kpa_restart_policy policy;
        unsigned restarts;           /* consecutive restarts so far */
        uint64_t at_ms;              /* when the pending restart is due; 0: none */
        uint64_t running_since_ms;
} restart_info;

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
        uid_t owner;
        uint64_t ended_ms;  /* CLOCK_MONOTONIC when it ended */
        /* supervised only */
        bool adopted;       /* taken over after a restart: no report pipe, not our child */
        bool pidfd_watched; /* its pidfd is in the epoll set (adopted, or init exiting) */
        int exit_fd;        /* the exit record its init writes */
        int log_pipe;       /* read end of the stdout/stderr pipe, or -1 */
        int log_pipe_in_init; /* the same pipe's fd number in the init */
        int log_file;       /* the current log file (append), or -1 */
        uint64_t log_size;
        char *cgroup_parent;
        unsigned long long start_time; /* of the init, from /proc/PID/stat */
        restart_info *restart;
        char exec_path[256]; /* names the binary in an exec failure message */
        watch w_report, w_pidfd, w_log;
        struct instance *next;
        struct instance *hnext; /* in kpa_control.by_token */
} instance;

struct kpa_control {
        kpa_remote *remote; /* a connection to kpa-execd; then nothing below is used */
        kpa_store *store;
        instance *list;
        int epfd;
        int timerfd;
        kpa_error last_error;
        uid_t owner;
        size_t keep_ended_max;
        uint64_t keep_ended_ms;
        /* supervision */
        int state_fd;       /* STATE_DIR, or -1 when not a supervisor */
        char *state_dir;
        uint64_t log_max_bytes;
        kpa_state_observer observer;
        void *observer_data;
        bool start_async;   /* kpa_control_start_async(): do not wait for Running */
        /* a supervisor holds up to keep_ended_max ended contexts: find them
         * by token in O(1), and walk the list to prune at most once a
         * second or when it has grown past the limit */
        instance *by_token[1024];
        size_t n_instances;
        uint64_t last_prune_ms;
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
        ctl->owner = getuid();
        ctl->keep_ended_max = KEEP_ENDED_MAX;
        ctl->keep_ended_ms = KEEP_ENDED_MS;
        ctl->state_fd = -1;
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

int kpa_control_connect(const char *socket_path, kpa_control **out, kpa_error *err)
{
        kpa_remote *r = NULL;
        int q = kpa_remote_connect(socket_path, &r, err);
        if (q < 0)
                return q;
        kpa_control *ctl = kpa_xcalloc(1, sizeof(*ctl));
        ctl->remote = r;
        ctl->epfd = ctl->timerfd = ctl->state_fd = -1;
        *out = ctl;
        return 0;
}

kpa_remote *kpa_control_remote(kpa_control *ctl) { return ctl->remote; }
const kpa_error *kpa_control_last_error(const kpa_control *ctl) { return &ctl->last_error; }
int kpa_control_get_fd(kpa_control *ctl) { return ctl->remote ? -EOPNOTSUPP : ctl->epfd; }
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

static instance *find(kpa_control *ctl, const kpa_token *t)
{
        for (instance *i = ctl->by_token[token_hash(t)]; i; i = i->hnext)
                if (memcmp(&i->token, t, sizeof(*t)) == 0)
                        return i;
        return NULL;
}

/* Put I (its token set) at the head of the list: the newest first. */
static void list_add(kpa_control *ctl, instance *i)
{
        i->next = ctl->list;
        ctl->list = i;
        size_t h = token_hash(&i->token);
        i->hnext = ctl->by_token[h];
        ctl->by_token[h] = i;
        ctl->n_instances++;
}

static void hash_remove(kpa_control *ctl, instance *i)
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
        instance *i = find(ctl, t);
        if (!i)
                return -ESRCH;
        *owner = i->owner;
        return 0;
}

static bool ended(const instance *i)
{
        return i->ctx.state == KPA_PROCESS_FINISHED || i->ctx.state == KPA_PROCESS_FAILED;
}

static void notify(kpa_control *ctl, instance *i)
{
        if (ctl->observer)
                ctl->observer(ctl->observer_data, &i->token, &i->ctx);
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

static instance *instance_alloc(void)
{
        if (!pool_free_list) {
                size_t len = POOL_CHUNK * sizeof(instance);
                instance *chunk = mmap(NULL, len, PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (chunk == MAP_FAILED)
                        return kpa_xcalloc(1, sizeof(instance)); /* (freed to the pool later: fine) */
                (void)madvise(chunk, len, MADV_DONTFORK);
                for (size_t k = 0; k < POOL_CHUNK; k++) {
                        chunk[k].next = pool_free_list;
                        pool_free_list = &chunk[k];
                }
        }
        instance *i = pool_free_list;
        pool_free_list = i->next;
        memset(i, 0, sizeof(*i));
        return i;
}

static void instance_release(instance *i)
{
        i->next = pool_free_list;
        pool_free_list = i;
}

static instance *instance_new(kpa_control *ctl)
{
        instance *i = instance_alloc();
        i->death_fd = i->exit_fd = i->log_pipe = i->log_file = -1;
        i->log_pipe_in_init = -1;
        i->sb.pidfd = i->sb.report_fd = -1;
        i->owner = ctl->owner;
        i->w_report = (watch){WATCH_REPORT, i};
        i->w_pidfd = (watch){WATCH_PIDFD, i};
        i->w_log = (watch){WATCH_LOG, i};
        return i;
}

static void restart_info_free(restart_info *r)
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
        free(r);
}

static void instance_free(instance *i)
{
        closep(&i->exit_fd);
        closep(&i->log_pipe);
        closep(&i->log_file);
        free(i->cgroup_parent);
        restart_info_free(i->restart);
        instance_release(i);
}

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

/* Write I's record: atomically (a temporary file renamed over the old one),
 * so that a supervisor killed in the middle leaves the old record whole. */
static void record_write(kpa_control *ctl, instance *i)
{
        if (ctl->state_fd < 0)
                return;
        /* the context as the protocol writes it (token, state, exit,
         * package, owner...), plus what supervision needs */
        _cleanup_(json_object_putp) json_object *o = kpa_context_to_json(&i->token, &i->ctx, i->owner);
        if (i->has_parent) {
                char t[KPA_TOKEN_STRING_MAX];
                kpa_token_to_string(&i->parent, t);
                add_str(o, "parent", t);
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
                add_int(ro, "mode", r->policy.mode);
                add_int(ro, "maxRetries", r->policy.max_retries);
                add_int(ro, "delayMs", r->policy.delay_ms);
                add_int(ro, "maxDelayMs", r->policy.max_delay_ms);
                add_int(ro, "restarts", r->restarts);
                json_object_object_add(o, "restart", ro);
        }
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        char name[64], tmp[80];
        token_name(i, ".json", name, sizeof(name));
        token_name(i, ".json.tmp", tmp, sizeof(tmp));
        _cleanup_close_ int fd = openat(ctl->state_fd, tmp,
                                        O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || kpa_write_all(fd, text, strlen(text)) < 0 || kpa_write_all(fd, "\n", 1) < 0 ||
            renameat(ctl->state_fd, tmp, ctl->state_fd, name) < 0)
                (void)unlinkat(ctl->state_fd, tmp, 0); /* the old record stays */
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
static bool read_exit_record(instance *i)
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
        return true;
}

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks.
 * With the pid it names one process for good (pids are reused). */
static unsigned long long proc_start_time(pid_t pid)
{
        char path[32];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *buf = NULL;
        if (kpa_read_file_at(AT_FDCWD, path, 4096, &buf, NULL) < 0)
                return 0;
        char *p = strrchr(buf, ')'); /* the command may hold spaces and parens */
        if (!p)
                return 0;
        unsigned long long v = 0;
        /* after ')': state is field 3, so starttime is the 20th from there */
        for (int field = 3; field <= 22 && p; field++)
                p = strchr(p + 1, ' ');
        if (p)
                v = strtoull(p + 1, NULL, 10);
        return v;
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

static void close_log_pipe(kpa_control *ctl, instance *i)
{
        if (i->log_pipe < 0)
                return;
        epoll_ctl(ctl->epfd, EPOLL_CTL_DEL, i->log_pipe, NULL);
        closep(&i->log_pipe);
        i->log_pipe = -1;
}

/* Move what the instance wrote into its log file. EOF (every writer gone)
 * closes the pipe. */
static void drain_log(kpa_control *ctl, instance *i)
{
        char buf[65536];
        while (i->log_pipe >= 0) {
                ssize_t n = read(i->log_pipe, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        close_log_pipe(ctl, i);
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

static void watch_log(kpa_control *ctl, instance *i)
{
        fcntl(i->log_pipe, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &i->w_log};
        epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, i->log_pipe, &ev);
}

int kpa_control_log_path(kpa_control *ctl, const kpa_token *t, bool rotated, char *buf, size_t len)
{
        instance *i = find(ctl, t);
        if (!i || !ctl->state_dir || i->log_pipe_in_init < 0)
                return -ENOENT;
        char s[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(t, s);
        snprintf(buf, len, "%s/logs/%s.log%s", ctl->state_dir, s, rotated ? ".1" : "");
        return 0;
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

static void schedule_restart(kpa_control *ctl, instance *i);

/* An instance that ended for good keeps only its context: what a restart
 * would need goes (a supervisor keeps many ended contexts, and every
 * start forks it). */
static void forget_restart(instance *i)
{
        if (i->restart && !i->restart->at_ms) {
                restart_info_free(i->restart);
                i->restart = NULL;
        }
}

/* The init is gone (its report pipe hit EOF, or, adopted, its pidfd said
 * so): classify, clean up. */
static int fail_start(kpa_control *ctl, instance *i, int err, const char *fmt, ...) _printf_(4, 5);

static void finalize(kpa_control *ctl, instance *i)
{
        if (!i->live)
                return;
        bool ran = i->ctx.state == KPA_PROCESS_RUNNING;
        bool oom = i->sb.cgroup && kpa_cgroup_oom_killed(i->sb.cgroup);
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
        drain_log(ctl, i);
        close_log_pipe(ctl, i);
        closep(&i->log_file);
        i->log_file = -1;
        i->live = false;
        i->ctx.pid = 0;
        i->ended_ms = now_ms();
        if (!i->exited)
                read_exit_record(i);
        closep(&i->exit_fd);
        i->exit_fd = -1;
        if (ended(i)) { /* a failed start: its step said why */
                schedule_restart(ctl, i);
                record_write(ctl, i);
                forget_restart(i);
                notify(ctl, i);
                return;
        }
        if (i->exited) {
                classify_exit(i, oom);
        } else if (i->forced || i->escalated) {
                set_end(i, KPA_PROCESS_FINISHED, KPA_EXIT_TERMINATED, SIGKILL, "killed by SIGKILL (%s)",
                        i->forced ? "forced stop" : "the stop timeout ran out");
        } else if (i->adopted) {
                set_end(i, KPA_PROCESS_FAILED, KPA_EXIT_UNEXPECTED, 0,
                        "the instance's init (pid %d) ended without recording an exit status",
                        (int)init_pid);
        } else {
                int sig = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED ? info.si_status : 0;
                set_end(i, KPA_PROCESS_FAILED, KPA_EXIT_UNEXPECTED, sig,
                        "the instance's init (pid %d) ended unexpectedly%s%s", (int)init_pid,
                        sig ? ": killed by " : "", sig ? signal_name(sig) : "");
        }
        if (!ran) {
                /* it ended before the application ran, with no failed step
                 * reported: a failed start all the same */
                char why[sizeof(i->ctx.message)];
                memcpy(why, i->ctx.message, sizeof(why));
                i->ctx.state = KPA_PROCESS_CREATED; /* not ended yet, for fail_start */
                fail_start(ctl, i, EIO, "start of %s failed: the instance's init ended before the "
                           "application ran (%s)", i->ctx.app_id, why);
                schedule_restart(ctl, i);
                record_write(ctl, i);
                return;
        }
        schedule_restart(ctl, i);
        record_write(ctl, i);
        forget_restart(i);
        notify(ctl, i);
}

/* Drop the oldest ended contexts beyond the limits (count and age): they
 * are NotExisting now. New instances are added at the head, so the oldest
 * are at the tail. */
static void prune(kpa_control *ctl)
{
        size_t kept = 0;
        uint64_t now = now_ms();
        if (ctl->n_instances <= ctl->keep_ended_max + 64 && now - ctl->last_prune_ms < 1000)
                return;
        ctl->last_prune_ms = now;
        for (instance **pp = &ctl->list; *pp;) {
                instance *i = *pp;
                bool pending = i->restart && i->restart->at_ms;
                if (ended(i) && !i->live && !pending &&
                    (++kept > ctl->keep_ended_max || now - i->ended_ms > ctl->keep_ended_ms)) {
                        *pp = i->next;
                        hash_remove(ctl, i);
                        record_remove(ctl, i);
                        i->ctx.state = KPA_PROCESS_NOT_EXISTING;
                        notify(ctl, i);
                        instance_free(i);
                        continue;
                }
                pp = &i->next;
        }
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
                        finalize(ctl, i);
                        release_pending_stops(ctl);
                        return;
                }
                apply_report(ctl, i, &r);
        }
}

static void arm_timer(kpa_control *ctl)
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

static void do_restart(kpa_control *ctl, instance *i);

static void handle_timeouts(kpa_control *ctl)
{
        uint64_t expirations;
        (void)!read(ctl->timerfd, &expirations, sizeof(expirations));
        uint64_t now = now_ms();
        for (instance *i = ctl->list; i; i = i->next) {
                if (i->live && i->deadline_ms && i->deadline_ms <= now) {
                        i->deadline_ms = 0;
                        i->escalated = true;
                        record_write(ctl, i);
                        send_signal(i, SIGKILL); /* PID 1 dies: its whole namespace dies */
                }
                if (i->restart && i->restart->at_ms && i->restart->at_ms <= now)
                        do_restart(ctl, i);
        }
        arm_timer(ctl);
}

int kpa_control_dispatch(kpa_control *ctl)
{
        if (ctl->remote)
                return 0;
        struct epoll_event evs[16];
        int n;
        while ((n = epoll_wait(ctl->epfd, evs, ELEMENTSOF(evs), 0)) > 0) {
                for (int k = 0; k < n; k++) {
                        watch *w = evs[k].data.ptr;
                        if (!w)
                                handle_timeouts(ctl);
                        else if (w->kind == WATCH_REPORT)
                                handle_reports(ctl, w->i);
                        else if (w->kind == WATCH_LOG)
                                drain_log(ctl, w->i);
                        else if (w->kind == WATCH_PIDFD) {
                                finalize(ctl, w->i);
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
        i->ended_ms = now_ms();
        kpa_error_set(&ctl->last_error, err, "%s", i->ctx.message);
        if (!i->live) {
                record_write(ctl, i);
                notify(ctl, i);
        }
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

static void became_running(kpa_control *ctl, instance *i)
{
        i->ctx.state = KPA_PROCESS_RUNNING;
        if (i->log_pipe >= 0)
                watch_log(ctl, i);
        if (i->restart)
                i->restart->running_since_ms = now_ms();
        /* no record_write here: the record made at Created holds all that
         * re-adoption needs, and a live instance recorded as Created is
         * adopted as Running (one file write less per start) */
        notify(ctl, i);
}

static void apply_report(kpa_control *ctl, instance *i, const kpa_report *r)
{
        switch ((kpa_report_type)r->type) {
        case KPA_REPORT_PREPARED:
                i->ctx.state = KPA_PROCESS_PREPARED;
                notify(ctl, i);
                break;
        case KPA_REPORT_RUNNING:
                became_running(ctl, i);
                break;
        case KPA_REPORT_FAILED:
                fail_start(ctl, i, r->err ? r->err : EIO, "start of %s/%s failed at step \"%s\"%s%s: %s",
                           i->ctx.app_id, i->ctx.run_config_id,
                           kpa_sandbox_step_name((kpa_sandbox_step)r->step),
                           r->step == KPA_STEP_EXEC ? " of " : "",
                           r->step == KPA_STEP_EXEC ? i->exec_path : "", strerror(r->err));
                break;
        case KPA_REPORT_EXITED:
                i->exited = true;
                i->wait_status = r->value;
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
                        finalize(ctl, i); /* a failed start, with the reason */
                        return -i->ctx.exit_reason;
                }
                apply_report(ctl, i, &r);
                if (i->ctx.state == KPA_PROCESS_RUNNING)
                        return 0;
        }
}

/* Supervised: the exit record the init writes, and (when the caller gave
 * no stdout/stderr) the pipe that captures its output. */
static int prepare_supervised(kpa_control *ctl, instance *i, kpa_instance_spec *spec)
{
        char name[64];
        token_name(i, ".exit", name, sizeof(name));
        i->exit_fd = openat(ctl->state_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                            0600);
        if (i->exit_fd < 0)
                return fail_start(ctl, i, errno, "start of %s: cannot create %s/instances/%s: %s",
                                  i->ctx.app_id, ctl->state_dir, name, strerror(errno));
        spec->detached = true;
        spec->exit_record_fd = i->exit_fd;
        if (spec->stdio[1] >= 0 || spec->stdio[2] >= 0)
                return 0;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return fail_start(ctl, i, errno, "start of %s: pipe: %s", i->ctx.app_id, strerror(errno));
        if (open_log_file(ctl, i) < 0) {
                int e = errno;
                close(p[0]);
                close(p[1]);
                return fail_start(ctl, i, e, "start of %s: cannot create its log file in %s/logs: %s",
                                  i->ctx.app_id, ctl->state_dir, strerror(e));
        }
        spec->stdio[1] = spec->stdio[2] = p[1];
        spec->init_keep_fd = p[0];
        i->log_pipe = p[0];
        i->log_pipe_in_init = p[0];
        return 0;
}

static int spawn(kpa_control *ctl, instance *i, kpa_instance_spec *spec)
{
        int death[2] = {-1, -1};
        bool supervised = ctl->state_fd >= 0;
        if (supervised) {
                int q = prepare_supervised(ctl, i, spec);
                if (q < 0)
                        return q;
        } else if (pipe2(death, O_CLOEXEC) < 0) {
                return fail_start(ctl, i, errno, "pipe: %s", strerror(errno));
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
                return fail_start(ctl, i, -q, "start of %s failed: %s", i->ctx.app_id, err.message);
        }
        i->death_fd = death[1];
        i->live = true;
        i->ctx.pid = i->sb.pid;
        i->ctx.state = KPA_PROCESS_CREATED;
        if (supervised) {
                i->start_time = proc_start_time(i->sb.pid);
                record_write(ctl, i);
        }
        notify(ctl, i);
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
static int launch_into(kpa_control *ctl, instance *i, const char *pkg_id, const kpa_manifest *m,
                       const kpa_run_config *rc, const char *run_config_id,
                       const kpa_start_options *opts)
{
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
        if (i->restart)
                i->restart->policy = m->restart;
        char instance_id[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&i->token, instance_id);
        _cleanup_(kpa_instance_spec_freep) kpa_instance_spec *spec = NULL;
        kpa_error err;
        int q = kpa_instance_spec_build(ctl->store, m, rc, opts, instance_id, &spec, &err);
        if (q < 0)
                return fail_start(ctl, i, -q, "start of %s: %s", pkg_id, err.message);
        return spawn(ctl, i, spec);
}

static char **strv_dup_n(const char *const *v, size_t n)
{
        char **copy = kpa_xcalloc(n + 1, sizeof(char *));
        for (size_t k = 0; k < n; k++)
                copy[k] = kpa_xstrdup(v[k]);
        return copy;
}

/* Keep what a restart needs: the request, with copies of the handles. */
static restart_info *restart_info_new(const char *pkg_id, const char *rc_id,
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
        r->opts.stdin_fd = r->opts.stdout_fd = r->opts.stderr_fd = -1; /* a restart logs */
        return r;
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
        if (ctl->remote) {
                if (m)
                        return kpa_error_set(&ctl->last_error, EOPNOTSUPP,
                                             "tasks cannot be started through kpa-execd");
                return kpa_remote_start(ctl->remote, pkg_id, run_config_id, opts, out_token,
                                        &ctl->last_error);
        }
        instance *i = instance_new(ctl);
        i->stop_timeout_ms = opts->stop_timeout_ms ? opts->stop_timeout_ms : 10000;
        if (getrandom(i->token.bytes, sizeof(i->token.bytes), 0) != sizeof(i->token.bytes)) {
                instance_free(i);
                return kpa_error_set_errno(&ctl->last_error, errno, "getrandom");
        }
        snprintf(i->ctx.app_id, sizeof(i->ctx.app_id), "%s", pkg_id ? pkg_id : "");
        if (opts->cgroup_parent)
                i->cgroup_parent = kpa_xstrdup(opts->cgroup_parent);
        list_add(ctl, i);
        if (out_token)
                *out_token = i->token;
        if (opts->parent) {
                instance *p = find(ctl, opts->parent);
                if (!p || ended(p))
                        return fail_start(ctl, i, ESRCH, "parent token is unknown or has ended");
                i->parent = *opts->parent;
                i->has_parent = true;
        }
        if (ctl->state_fd >= 0 && !m && pkg_id)
                i->restart = restart_info_new(pkg_id, run_config_id, opts);
        return launch_into(ctl, i, pkg_id, m, rc, run_config_id, opts);
}

int kpa_process_start(kpa_control *ctl, const char *pkg_id, const char *run_config_id,
                      const kpa_start_options *opts, kpa_token *out_token)
{
        return kpa_control_launch(ctl, pkg_id, NULL, NULL, run_config_id, opts, out_token);
}

int kpa_control_start_async(kpa_control *ctl, const char *pkg_id, const char *run_config_id,
                            const kpa_start_options *opts, kpa_token *out_token)
{
        if (ctl->remote)
                return kpa_error_set(&ctl->last_error, EOPNOTSUPP, "not for a connected control");
        ctl->start_async = true;
        int q = kpa_control_launch(ctl, pkg_id, NULL, NULL, run_config_id, opts, out_token);
        ctl->start_async = false;
        return q;
}

kpa_store *kpa_control_store(kpa_control *ctl) { return ctl->store; }
kpa_error *kpa_control_error(kpa_control *ctl) { return &ctl->last_error; }

/* ---- restarts (KPA_restart; supervised instances only) ---- */

static void schedule_restart(kpa_control *ctl, instance *i)
{
        restart_info *r = i->restart;
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
        uint64_t now = now_ms();
        /* a run longer than the longest backoff counts as a success */
        if (r->running_since_ms && now - r->running_since_ms > r->policy.max_delay_ms)
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
        arm_timer(ctl);
}

static void do_restart(kpa_control *ctl, instance *i)
{
        restart_info *r = i->restart;
        r->at_ms = 0;
        r->restarts++;
        kpa_process_context old = i->ctx;
        memset(&i->ctx, 0, sizeof(i->ctx));
        memcpy(i->ctx.app_id, old.app_id, sizeof(old.app_id));
        i->exited = i->stop_normal = i->forced = i->escalated = i->term_pending = false;
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
        (void)launch_into(ctl, i, r->pkg_id, NULL, NULL, r->rc_id, &o);
        if (ended(i))
                schedule_restart(ctl, i); /* a failed start counts as a failure too */
}

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
        if (i->restart && i->restart->at_ms) {
                /* a stop cancels a pending restart: it stays ended */
                i->restart->at_ms = 0;
                i->stop_normal = true;
                record_write(ctl, i);
        }
        if (!i->live)
                return;
        if (policy == KPA_STOP_FORCED) {
                i->forced = true;
                i->term_pending = false;
                i->deadline_ms = 0;
                record_write(ctl, i);
                send_signal(i, SIGKILL); /* PID 1 dies: its whole namespace dies */
                return;
        }
        if (i->stop_normal)
                return; /* already stopping; the deadline stands */
        i->stop_normal = true;
        i->deadline_ms = now_ms() + i->stop_timeout_ms;
        record_write(ctl, i);
        if (has_live_descendants(ctl, i))
                i->term_pending = true; /* SIGTERM once they have ended */
        else
                send_signal(i, SIGTERM); /* the init passes it to every process of the instance */
}

int kpa_process_stop(kpa_control *ctl, const kpa_token *token, kpa_stop_policy policy)
{
        if (ctl->remote)
                return kpa_remote_stop(ctl->remote, token, policy, &ctl->last_error);
        kpa_control_dispatch(ctl);
        instance *i = find(ctl, token);
        if (!i)
                return kpa_error_set(&ctl->last_error, ESRCH, "no such process (unknown token)");
        stop_one(ctl, i, policy);
        arm_timer(ctl);
        return 0;
}

int kpa_control_stop_all(kpa_control *ctl, kpa_stop_policy policy)
{
        int n = 0;
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live || (i->restart && i->restart->at_ms)) {
                        stop_one(ctl, i, policy);
                        n++;
                }
        arm_timer(ctl);
        return n;
}

size_t kpa_control_live_count(kpa_control *ctl)
{
        size_t n = 0;
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live)
                        n++;
        return n;
}

int kpa_process_get_state(kpa_control *ctl, const kpa_token *token, kpa_process_context *out)
{
        if (ctl->remote)
                return kpa_remote_get_state(ctl->remote, token, out, &ctl->last_error);
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
        if (ctl->remote)
                return kpa_remote_wait(ctl->remote, token, timeout_ms, out, &ctl->last_error);
        uint64_t deadline = timeout_ms >= 0 ? now_ms() + (uint64_t)timeout_ms : 0;
        for (;;) {
                kpa_process_get_state(ctl, token, out);
                instance *i = find(ctl, token);
                bool restarting = i && i->restart && i->restart->at_ms;
                if (out->state != KPA_PROCESS_CREATED && out->state != KPA_PROCESS_PREPARED &&
                    out->state != KPA_PROCESS_RUNNING && !restarting)
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

int kpa_process_list(kpa_control *ctl, kpa_token **out, size_t *n)
{
        if (ctl->remote)
                return kpa_remote_list(ctl->remote, out, n, &ctl->last_error);
        kpa_control_dispatch(ctl);
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
        r->policy.mode = (kpa_restart_mode)jint(ro, "mode", 0);
        r->policy.max_retries = (uint32_t)jint(ro, "maxRetries", 5);
        r->policy.delay_ms = (uint32_t)jint(ro, "delayMs", 100);
        r->policy.max_delay_ms = (uint32_t)jint(ro, "maxDelayMs", 30000);
        r->restarts = (unsigned)jint(ro, "restarts", 0);
        return r;
}

/* Rebuild an instance from its record. */
static instance *instance_from_record(kpa_control *ctl, json_object *o)
{
        kpa_process_context ctx;
        kpa_token t;
        if (kpa_context_from_json(o, &t, &ctx, NULL) < 0 || find(ctl, &t))
                return NULL;
        instance *i = instance_new(ctl);
        i->token = t;
        i->ctx = ctx;
        /* written from Created on: anything else is not a state to resume */
        if (ctx.state < KPA_PROCESS_CREATED || ctx.state > KPA_PROCESS_FINISHED)
                i->ctx.state = KPA_PROCESS_FAILED;
        const char *parent = jstr(o, "parent");
        if (parent && kpa_token_from_string(parent, &i->parent) == 0)
                i->has_parent = true;
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
        return i;
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
        if (kpa_cgroup_open(i->cgroup_parent, i->ctx.app_id, inst, &i->sb.cgroup, &err) < 0)
                i->sb.cgroup = NULL; /* gone with the instance (or collected) */
        i->sb.pid = i->ctx.pid;
        i->sb.pidfd = i->ctx.pid > 0 ? (int)syscall(SYS_pidfd_open, i->ctx.pid, 0) : -1;
        /* the pid must still name the same process: check after the pidfd
         * holds it, so that it cannot be reused in between */
        if (i->sb.pidfd >= 0 && (!i->start_time || proc_start_time(i->ctx.pid) != i->start_time))
                closep(&i->sb.pidfd), i->sb.pidfd = -1;
        i->adopted = true;
        i->live = true;
        if (i->log_pipe_in_init >= 0 && i->sb.pidfd >= 0) {
                i->log_pipe = (int)syscall(SYS_pidfd_getfd, i->sb.pidfd, i->log_pipe_in_init, 0);
                if (i->log_pipe >= 0 && open_log_file(ctl, i) == 0)
                        watch_log(ctl, i);
                else
                        closep(&i->log_pipe), i->log_pipe = -1;
        }
        if (i->sb.pidfd < 0) {
                finalize(ctl, i); /* it ended while no supervisor ran */
                return;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &i->w_pidfd};
        epoll_ctl(ctl->epfd, EPOLL_CTL_ADD, i->sb.pidfd, &ev);
        /* its init still runs: the start got past the sandbox (a failed
         * step ends the init at once), and the record is not rewritten
         * when the application reports Running */
        i->ctx.state = KPA_PROCESS_RUNNING;
        if (i->restart)
                i->restart->running_since_ms = now_ms();
}

static int mkdir_at(int dirfd, const char *name, mode_t mode)
{
        return mkdirat(dirfd, name, mode) == 0 || errno == EEXIST ? 0 : -errno;
}

int kpa_control_supervise(kpa_control *ctl, const kpa_supervisor_config *cfg, kpa_error *err)
{
        if (ctl->remote || ctl->state_fd >= 0)
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
        if (cfg->keep_ended_max)
                ctl->keep_ended_max = cfg->keep_ended_max;
        if (cfg->keep_ended_s)
                ctl->keep_ended_ms = (uint64_t)cfg->keep_ended_s * 1000;
        ctl->log_max_bytes = cfg->log_max_bytes ? cfg->log_max_bytes : LOG_MAX_BYTES;

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
                list_add(ctl, i);
                if (!ended(i)) {
                        adopt(ctl, i);
                        if (i->live)
                                adopted++;
                }
        }
        /* ended in another boot (monotonic times of then mean nothing now):
         * retention counts from now */
        for (instance *i = ctl->list; i; i = i->next)
                if (ended(i) && !i->live && i->ended_ms > now_ms())
                        i->ended_ms = now_ms();
        arm_timer(ctl);
        return adopted;
}

void kpa_control_close(kpa_control *ctl)
{
        if (!ctl)
                return;
        if (ctl->remote) {
                kpa_remote_close(ctl->remote);
                free(ctl);
                return;
        }
        for (instance *i = ctl->list; i; i = i->next)
                if (i->live)
                        stop_one(ctl, i, KPA_STOP_FORCED);
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
                        finalize(ctl, i);
                }
        while (ctl->list) {
                instance *next = ctl->list->next;
                instance_free(ctl->list);
                ctl->list = next;
        }
        closep(&ctl->epfd);
        closep(&ctl->timerfd);
        closep(&ctl->state_fd);
        free(ctl->state_dir);
        kpa_store_close(ctl->store);
        free(ctl);
}
