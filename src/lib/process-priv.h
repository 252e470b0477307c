/* process-priv.h: what process.c (the controller: starts, states, stops,
 * the event loop) and supervise.c (kpa-execd's supervision: records,
 * adoption, logs, restarts, retention) share: the controller and instance
 * structures, the few helpers supervise.c calls in process.c, and the
 * hooks (supervision_hooks) through which process.c calls supervision; uses.c
 * (usesServices) works on the same instances. Private to those three
 * files; the names carry no kpa_ prefix, so libkpa does not export them. */
#ifndef KPA_PROCESS_PRIV_H
#define KPA_PROCESS_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "control-priv.h"
#include "kpa/manifest.h"
#include "kpa/process.h"
#include "process-internal.h"
#include "sandbox.h"
#include "util.h"

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
        bool starting;               /* in a restart (on_restart_due): a failed start is told
                                      * (notify_pending) once its next restart is planned */
        bool notify_pending;
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
        bool exit_oom;      /* and that the kernel OOM-killed in its group */
        int wait_status;
        bool stop_normal;   /* a Normal stop was asked for */
        bool forced;        /* a Forced stop was asked for */
        bool escalated;     /* a Normal stop ran out of time */
        bool term_pending;  /* a Normal stop waits for the descendants to end first */
        bool restart_after_stop; /* an upgrade: start it again once the stop ends it */
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
        void *sockets_json; /* json_object: [{name, listen, fd}] of its declared sockets
                               (KPA_sockets), fd as numbered in its init; NULL: none */
        char exec_path[256]; /* names the binary in an exec failure message */
        watch w_report, w_pidfd, w_log;
        /* usesServices (uses.c) */
        int service_fd;     /* a service's listening socket, kept across restarts; or -1 */
        bool is_service;    /* it has a listening socket in the services directory */
        kpa_token *services; /* the service instances this client was connected to */
        size_t n_services;
        kpa_token bound_to; /* started for that client alone: stopped when it ends */
        bool has_bound;
        bool stop_visiting; /* stop_one() is on its way through it */
        struct instance *next;
        struct instance *hnext; /* in kpa_control.by_token */
} instance;

/* CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t process_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Finished or Failed. */
static inline bool process_ended(const instance *i)
{
        return i->ctx.state == KPA_PROCESS_FINISHED || i->ctx.state == KPA_PROCESS_FAILED;
}

/* Tell the observer (if any) about I's new state. */
static inline void process_notify(kpa_control *ctl, instance *i)
{
        if (ctl->observer)
                ctl->observer(ctl->observer_data, &i->token, &i->ctx);
}

/* ---- in process.c ---- */

/* The instance with token T, or NULL. */
instance *process_find(kpa_control *ctl, const kpa_token *t);
/* Put I (its token set) at the head of the list: the newest first. */
void process_list_add(kpa_control *ctl, instance *i);
/* Take I out of the by-token index (the caller unlinks it from the list). */
void process_hash_remove(kpa_control *ctl, instance *i);
/* A blank instance of CTL's current owner, every fd -1. */
instance *process_instance_new(kpa_control *ctl);
/* Close what I holds and give it back to the pool. */
void process_instance_free(kpa_control *ctl, instance *i);
/* The init is gone (its report pipe hit EOF, or, adopted, its pidfd said
 * so): classify, clean up. */
void process_finalize(kpa_control *ctl, instance *i);
/* Mark I's start Failed with ERR and the message; returns -ERR. */
int process_fail_start(kpa_control *ctl, instance *i, int err, const char *fmt, ...) _printf_(4, 5);
/* Start RC of manifest M (or of PKG_ID's manifest, loaded) into I. */
int process_launch_into(kpa_control *ctl, instance *i, const char *pkg_id, const kpa_manifest *m,
                        const kpa_run_config *rc, const char *run_config_id,
                        const kpa_start_options *opts);
/* Set the timerfd to the next stop deadline or pending restart. */
void process_arm_timer(kpa_control *ctl);
/* Stop I, and first what depends on it: its descendants and its clients. */
void process_stop_one(kpa_control *ctl, instance *i, kpa_stop_policy policy);
/* I ended: keep how, when that was a failure (what on-failure counts as
 * one), in its context's last failure; a restart replaces the rest. */
void process_note_failure(instance *i);

/* ---- in uses.c ---- */

/* The handles of one start: the caller's, then what usesServices adds. */
typedef struct uses_handles {
        kpa_user_handle *v;
        bool *owned; /* the fd is ours to close */
        size_t n;
} uses_handles;
/* Whether some run configuration of M lists RC_ID in usesServices. */
bool uses_is_service(const kpa_manifest *m, const char *rc_id);
/* Before I (RC of M) starts: its own listening socket when RC is a
 * service, and a connected socket for each service RC uses, started first
 * when the use says so. *OUT is OPTS with those handles added (in H). On
 * failure I is Failed with the reason, and -errno is returned. */
int uses_prepare(kpa_control *ctl, instance *i, const kpa_manifest *m, const kpa_run_config *rc,
                 const kpa_start_options *opts, kpa_start_options *out, uses_handles *h);
void uses_handles_free(uses_handles *h);
/* Whether client C was connected to service S. */
bool uses_is_client_of(const instance *c, const instance *s);
/* I has ended (and does not start again): remove its listening socket,
 * stop the services started for it alone. */
void uses_ended(kpa_control *ctl, instance *i);
/* At the controller's close: the services directory. */
void uses_close(kpa_control *ctl);

/* ---- supervision: hooks of the local controller ---- */

/* The events of an instance that supervision (supervise.c: records,
 * adoption, logs, restarts) hangs on, named by the event. A controller
 * that supervises holds supervise.c's table in ctl->supervision (set by
 * kpa_control_supervise, where the state directory is set up); NULL: no
 * supervision, and process.c does nothing at these events. process.c
 * calls these and never supervise.c's functions. */
typedef struct supervision_hooks {
        /* a start of PKG_ID (RC_ID: NULL for the primary) with OPTS is asked
         * for: what a restart of it needs (KPA_restart), or NULL */
        restart_info *(*on_requested)(const char *pkg_id, const char *rc_id,
                                      const kpa_start_options *opts);
        /* the sandbox is about to be made: give SPEC the exit record and,
         * without caller stdout/stderr, the log pipe; <0: I is Failed */
        int (*on_spawning)(kpa_control *ctl, instance *i, kpa_instance_spec *spec);
        /* the sandbox exists (Created): its start time, its first record */
        void (*on_created)(kpa_control *ctl, instance *i);
        /* the application runs: watch its log pipe */
        void (*on_running)(kpa_control *ctl, instance *i);
        /* its state or its stop changed: write its record (a failure is
         * kept for kpa_control_take_record_error) */
        void (*on_changed)(kpa_control *ctl, instance *i);
        /* its log pipe is readable: move what it holds to the log file */
        void (*on_output)(kpa_control *ctl, instance *i);
        /* its init is gone: drain and close the log pipe, and read the exit
         * record unless the init reported its end */
        void (*on_init_gone)(kpa_control *ctl, instance *i);
        /* it ended (classified, its failure noted): plan its restart */
        void (*on_ended)(kpa_control *ctl, instance *i);
        /* its end is dealt with: drop what a restart needs unless one is due */
        void (*on_settled)(instance *i);
        /* its pending restart is due: start it again now */
        void (*on_restart_due)(kpa_control *ctl, instance *i);
        /* its ended context is dropped (retention): its record and logs go */
        void (*on_dropped)(kpa_control *ctl, instance *i);
        /* it is freed: what a restart needed (I->restart) */
        void (*on_freed)(instance *i);
} supervision_hooks;

/* ---- in supervise.c ---- */

struct json_object;
/* supervise.c's hooks, which kpa_control_supervise installs. */
extern const supervision_hooks supervise_hooks;
/* I's record: {"record": 1, ...}, supervise.c's own small format (not the
 * protocol's wire format); the caller puts it. */
struct json_object *supervise_record_new(const instance *i);
/* Fill I (blank, from process_instance_new) from record O, of this format
 * or of the one before it (the protocol's context with the same extra
 * fields); -EINVAL when O is not a record, -EPROTONOSUPPORT when it is of
 * a newer format. */
int supervise_record_load(struct json_object *o, instance *i);

#endif
