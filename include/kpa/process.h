/* kpa/process.h: starting, watching and stopping sandboxed processes, in
 * the form of KasperskyOS's IProcessControl, so that client code ports line
 * by line. A kpa_control is either in-process (kpa_control_open_local: this
 * process is the parent of every instance it starts) or a connection
 * to kpa-execd (kpa_control_connect) with the same calls and semantics.
 * Every fallible call returns 0 (or a count, an fd) or a negative errno,
 * and then fills its last argument, a kpa_error (may be NULL), with a
 * message that names what failed, as in kpa/package.h. */
#ifndef KPA_PROCESS_H
#define KPA_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <kpa/error.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kpa_process_state {
        KPA_PROCESS_NONE = 0,
        KPA_PROCESS_CREATED,
        KPA_PROCESS_PREPARED,
        KPA_PROCESS_RUNNING,
        KPA_PROCESS_FAILED,
        KPA_PROCESS_FINISHED,
        KPA_PROCESS_NOT_EXISTING,
} kpa_process_state;

typedef enum kpa_exit_status {
        KPA_EXIT_UNINITIALIZED = 0,
        KPA_EXIT_UNEXPECTED,
        KPA_EXIT_NORMAL,
        KPA_EXIT_TERMINATED,
} kpa_exit_status;

typedef enum kpa_stop_policy {
        KPA_STOP_NORMAL = 0,
        KPA_STOP_FORCED,
} kpa_stop_policy;

typedef enum kpa_network_mode_opt {
        KPA_START_NETWORK_DEFAULT = 0, /* the manifest's KPA_sandbox.network, else none */
        KPA_START_NETWORK_NONE,
        KPA_START_NETWORK_HOST,
} kpa_network_mode_opt;

/* 128 random bits, unguessable; printed as 32 lowercase hex chars.
 * ABI: fixed (a token is these 16 bytes, in the protocol too). */
typedef struct kpa_token {
        uint8_t bytes[16];
} kpa_token;

#define KPA_TOKEN_STRING_MAX 33
KPA_PUBLIC void kpa_token_to_string(const kpa_token *t, char out[KPA_TOKEN_STRING_MAX]);
KPA_PUBLIC int kpa_token_from_string(const char *s, kpa_token *out);
KPA_PUBLIC bool kpa_token_is_null(const kpa_token *t);

typedef struct kpa_process_context {
        size_t struct_size; /* sizeof, set by kpa_process_context_init() (see kpa/error.h) */
        kpa_process_state state;
        kpa_exit_status exit_status;
        int exit_code;      /* the exit status, or the signal number (Unexpected) */
        int exit_reason;    /* 0 on a good start, else the errno of the failed step */
        char message[512];  /* why it failed / how it ended, e.g. "killed by SIGSEGV" */
        pid_t pid;          /* host pid of the instance's init (0 when none) */
        char app_id[129];
        char run_config_id[129];
        int cleanup_error;  /* errno when the instance's cgroup could not be removed
                               after it ended (the next start collects it), else 0 */
        /* What happened to it over its restarts (kpa-execd's KPA_restart). */
        int64_t started_at;  /* Unix time (s) of its latest start; 0: not started */
        unsigned restarts;   /* how often it was started again after it ended */
        unsigned restart_in_ms; /* it ended and a restart is due in this many ms; 0: none */
        char exit_cause[16]; /* how it ended, in a word: "exited", "stopped", "signal",
                                "oom", "start-failed", "lost"; "" while it runs */
        /* its latest failure (an end a restart counts as one). ABI: fixed:
         * what a later libkpa tells of it goes at the end of the context */
        struct {
                kpa_process_state state;   /* KPA_PROCESS_NONE: none so far */
                kpa_exit_status exit_status;
                int exit_code;
                int exit_reason;
                char exit_cause[16];
                char message[256];
                int64_t at;              /* Unix time (s) */
        } last_failure;
        pid_t app_pid;       /* host pid of the application (the init's child); 0: none */
        uid_t owner;         /* who started it: kpa-execd's caller (SO_PEERCRED), else the
                                controller's user; (uid_t)-1 when unknown */
} kpa_process_context;

KPA_PUBLIC void kpa_process_context_init(kpa_process_context *ctx);

/* An element of kpa_start_options.handles, whose handle_size says its
 * size (fields are only appended). */
typedef struct kpa_user_handle {
        const char *name; /* 1-255 printable ASCII, no ':' */
        int fd;           /* duplicated by kpa_process_start; the caller keeps its own */
} kpa_user_handle;

/* A host path bound into the sandbox (kpa-run --bind, --bind-ro); an
 * element of kpa_start_options.binds, whose bind_size says its size. */
typedef struct kpa_start_bind {
        const char *host;   /* absolute path on the host */
        const char *inside; /* absolute path inside the sandbox */
        bool writable;
} kpa_start_bind;

typedef struct kpa_start_options {
        size_t struct_size; /* sizeof, set by kpa_start_options_init() (see kpa/error.h) */
        const kpa_token *parent;          /* NULL: no parent */
        const kpa_user_handle *handles;   /* arrive at fds 3, 4, ... in this order */
        size_t n_handles;
        const char *const *extra_args;    /* appended to the manifest's args */
        size_t n_extra_args;
        const char *const *extra_env;     /* "NAME=VALUE", applied last (later wins) */
        size_t n_extra_env;
        uint64_t memory_bytes;            /* 0: the manifest's KPA_limits, else none */
        uint64_t pids;                    /* 0: the manifest's KPA_limits, else none */
        uint64_t cpu_weight;              /* 0: the manifest's KPA_limits, else default */
        kpa_network_mode_opt network;
        uid_t uid;                        /* (uid_t)-1: the package's own uid */
        gid_t gid;                        /* (gid_t)-1: the package's own gid */
        int stdin_fd, stdout_fd, stderr_fd; /* -1: /dev/null */
        unsigned stop_timeout_ms;         /* grace period of a Normal stop; default 10000 */
        const char *cgroup_parent;        /* NULL: the caller's own cgroup */
        const char *cwd;                  /* working directory inside; NULL: / */
        const kpa_start_bind *binds;      /* extra binds; root only (-EPERM else) */
        size_t n_binds;
        /* A pseudo-terminal of the sandbox's own as stdin, stdout, stderr
         * and controlling terminal instead of the three fds above, of
         * TTY_ROWS x TTY_COLS (0: the kernel's default); in-process
         * controllers only. Its master: kpa_control_take_tty (internal). */
        bool tty;
        unsigned short tty_rows, tty_cols;
        /* The size of an element of HANDLES and BINDS as the caller's
         * headers lay it out: sizeof, set by kpa_start_options_init(). A
         * libkpa reads the fields that size covers and takes the defaults
         * for the rest; a size smaller than the first kpa_user_handle or
         * kpa_start_bind, or larger than this libkpa knows, is refused
         * with -EINVAL. */
        size_t handle_size;
        size_t bind_size;
} kpa_start_options;

KPA_PUBLIC void kpa_start_options_init(kpa_start_options *opts);

typedef struct kpa_control kpa_control;

/* An in-process controller over the store at STORE_ROOT (NULL: default). */
KPA_PUBLIC int kpa_control_open_local(const char *store_root, kpa_control **out, kpa_error *err);
/* A controller that is a connection to kpa-execd at SOCKET_PATH (NULL:
 * $KPA_EXECD_SOCKET, else /run/kpa/execd.sock). The same calls work with
 * the same semantics; instances belong to the daemon and outlive the
 * connection. -ECONNREFUSED or -ENOENT (with a message naming the socket)
 * when no daemon listens there. */
KPA_PUBLIC int kpa_control_connect(const char *socket_path, kpa_control **out, kpa_error *err);
/* kpa-execd's socket when neither the caller nor the environment names one,
 * and the variable that does. */
#define KPA_EXECD_SOCKET_DEFAULT "/run/kpa/execd.sock"
#define KPA_EXECD_SOCKET_ENV "KPA_EXECD_SOCKET"
/* Who makes the cgroups of the instances this process starts (local
 * controllers): NAME "systemd" (a transient scope per instance), "cgroupfs"
 * (kpa itself) or "auto" (systemd when it is PID 1 and its bus is there);
 * -EINVAL naming the choices otherwise. Until it is called the choice is
 * the environment variable KPA_CGROUP_DRIVER, else "auto". */
KPA_PUBLIC int kpa_cgroup_driver_set(const char *name, kpa_error *err);
/* With KPA_TRACE_START set in the environment: "kpa-trace MICROSECONDS PID
 * STEP" (CLOCK_MONOTONIC) on stderr, as each step of a start writes (the
 * benchmarks under bench/ read them). Off, it costs one test of a flag. */
KPA_PUBLIC void kpa_trace(const char *step);
/* What kpa-execd and kpa-run say of a token that no controller knows. */
#define KPA_NO_SUCH_INSTANCE \
        "no such instance (it never existed, or kpa-execd no longer keeps its context)"
/* Local: force-stops what is still running. Connected: only disconnects. */
KPA_PUBLIC void kpa_control_close(kpa_control *ctl);
static inline void kpa_control_closep(kpa_control **c)
{
        if (*c)
                kpa_control_close(*c);
}
/* Start a run configuration (NULL: the primary one) of an installed package.
 * Returns 0 once the instance is Running, with *OUT_TOKEN set; on a failed
 * start, a negative errno, and the token (if OUT_TOKEN is not NULL) still
 * names a Failed context whose exit_reason and message say why. */
KPA_PUBLIC int kpa_process_start(kpa_control *ctl, const char *pkg_id, const char *run_config_id,
                                 const kpa_start_options *opts, kpa_token *out_token,
                                 kpa_error *err);
KPA_PUBLIC int kpa_process_stop(kpa_control *ctl, const kpa_token *token, kpa_stop_policy policy,
                                kpa_error *err);
KPA_PUBLIC int kpa_process_get_state(kpa_control *ctl, const kpa_token *token,
                                     kpa_process_context *out, kpa_error *err);
/* Wait until the instance has ended (Finished or Failed) or TIMEOUT_MS has
 * passed (-1: forever); -ETIMEDOUT then, with the current context in OUT. */
KPA_PUBLIC int kpa_process_wait(kpa_control *ctl, const kpa_token *token, int timeout_ms,
                                kpa_process_context *out, kpa_error *err);

/* The tokens of every instance CTL knows: live ones and ended ones whose
 * context is still kept. free(*OUT). */
KPA_PUBLIC int kpa_process_list(kpa_control *ctl, kpa_token **out, size_t *n, kpa_error *err);
/* The same with each instance's context: *TOKENS and *CTXS (free() both)
 * hold *N entries, oldest first. *CTXS is an array of *N pointers and a
 * NULL, all in one block, each to a whole kpa_process_context of this
 * library (its struct_size says its size, see kpa/error.h). Connected, one
 * request to kpa-execd (which shows a user other than root only that
 * user's instances). */
KPA_PUBLIC int kpa_process_list_contexts(kpa_control *ctl, kpa_token **tokens,
                                         kpa_process_context ***ctxs, size_t *n, kpa_error *err);
/* Stop every live instance (connected: every instance of kpa-execd, which
 * allows it to root only) with POLICY, as kpa_process_stop() does, without
 * waiting for their ends; *STOPPED (may be NULL) says how many. */
KPA_PUBLIC int kpa_process_stop_all(kpa_control *ctl, kpa_stop_policy policy, size_t *stopped,
                                    kpa_error *err);
/* The captured output (stdout and stderr) of a supervised instance, open for
 * reading in *OUT_FD: its current log file, or with ROTATED the one before
 * it. -ENOENT when it has none (its output went where its starter said). */
KPA_PUBLIC int kpa_process_open_log(kpa_control *ctl, const kpa_token *token, bool rotated,
                                    int *out_fd, kpa_error *err);
/* The master side of T's pseudo-terminal (kpa_start_options.tty: local
 * controllers only), now the caller's to read the application's output from
 * and write its input to; -ENOENT when it has none (or it was taken). */
KPA_PUBLIC int kpa_process_take_tty(kpa_control *ctl, const kpa_token *t, kpa_error *err);
/* CTX (with token T, may be NULL) as one line of JSON in a new string
 * (free() it): the object kpa-execd's protocol, kpa-run --json and
 * kpa-run --status --json use, with the keys token, state, exitStatus,
 * exitCode, exitReason, message, pid, package, runConfig, cleanupError,
 * owner, appPid, startedAt, restarts, restartInMs, exitCause and, after a
 * failure, lastFailure. */
KPA_PUBLIC char *kpa_process_context_to_json(const kpa_token *t, const kpa_process_context *ctx);

/* The instances that NAME names, into *OUT (free() it), *N of them: NAME
 * is a token (that one, known or not) or APP_ID[/RUNCONFIG]. A name
 * matches the live instances of that package (and run configuration),
 * those waiting for a restart among them; when none is live, the one that
 * ended last. Connected, matching happens in kpa-execd, among the
 * instances the caller may see. *N is 0 when nothing matches; -EINVAL
 * when NAME is neither a token nor a valid name. */
KPA_PUBLIC int kpa_process_find(kpa_control *ctl, const char *name, kpa_token **out, size_t *n,
                                kpa_error *err);

/* For event loops: an fd that becomes readable when some instance of CTL
 * changes state; then call kpa_control_dispatch(). */
KPA_PUBLIC int kpa_control_get_fd(kpa_control *ctl);
KPA_PUBLIC int kpa_control_dispatch(kpa_control *ctl, kpa_error *err);

/* The listening sockets that a local CTL keeps for the run configurations
 * it started that declare them (extensions.KPA_sockets, passed to every
 * start of theirs): up to MAX of their fds (CTL's own: do not close them)
 * into FDS and their handle names into NAMES. Returns how many CTL keeps
 * (0 for a connected CTL: kpa-execd keeps those). */
KPA_PUBLIC size_t kpa_control_declared_sockets(kpa_control *ctl, int *fds, const char **names,
                                               size_t max);

/* ---- A package's instances, as kpa-install changes the package ---- */

#define KPA_PACKAGE_NOTICE_PIDS 64
typedef struct kpa_package_notice {
        size_t struct_size; /* sizeof, set by kpa_package_notice_init() (see kpa/error.h) */
        int started;  /* autorun instances started (kpa-execd) */
        int affected; /* instances restarted, or stopped */
        /* host pids of their inits: the first KPA_PACKAGE_NOTICE_PIDS */
        pid_t pids[KPA_PACKAGE_NOTICE_PIDS];
} kpa_package_notice;

KPA_PUBLIC void kpa_package_notice_init(kpa_package_notice *notice);

/* PKG_ID was installed, upgraded, downgraded, reinstalled or rolled back.
 * Connected to kpa-execd: it autoruns the package's autorun run
 * configurations that are not running, and with RESTART it stops each of
 * the package's running instances (Normal) and starts it again at once on
 * what is installed now, same token and options. Local: RESTART does the
 * latter for a supervising controller. Needs the right to start. */
KPA_PUBLIC int kpa_control_package_installed(kpa_control *ctl, const char *pkg_id, bool restart,
                                             kpa_package_notice *out, kpa_error *err);
/* A Normal stop of every running instance of PKG_ID, not restarted (before
 * its removal). Connected: root only. */
KPA_PUBLIC int kpa_control_package_stop(kpa_control *ctl, const char *pkg_id,
                                        kpa_package_notice *out, kpa_error *err);

KPA_PUBLIC const char *kpa_process_state_name(kpa_process_state s);
KPA_PUBLIC const char *kpa_exit_status_name(kpa_exit_status s);

#ifdef __cplusplus
}
#endif
#endif
