/* process-priv.h: what process.c (the controller: starts, states, stops,
 * the event loop) and supervise.c (kpa-execd's supervision: records,
 * adoption, logs, restarts, retention) share: the controller and instance
 * structures and the few helpers each calls in the other; uses.c
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
        bool starting;               /* in supervise_do_restart: a failed start is told
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
void process_instance_free(instance *i);
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

/* ---- in supervise.c ---- */

/* Write I's record when CTL supervises (else nothing), atomically. A
 * failure is kept for kpa_control_take_record_error() and returned. */
int supervise_record_write(kpa_control *ctl, instance *i);
/* Read the init's exit record into I (exited, wait_status); false without one. */
bool supervise_read_exit_record(instance *i);
/* When PID started, in clock ticks (field 22 of /proc/PID/stat); 0 if unknown. */
unsigned long long supervise_proc_start_time(pid_t pid);
/* Give SPEC the exit record and, without caller stdout/stderr, the log pipe. */
int supervise_prepare_spawn(kpa_control *ctl, instance *i, kpa_instance_spec *spec);
/* Add I's log pipe to the epoll set. */
void supervise_watch_log(kpa_control *ctl, instance *i);
/* Move what is in I's log pipe to its log file; EOF closes the pipe. */
void supervise_drain_log(kpa_control *ctl, instance *i);
/* Take I's log pipe out of the epoll set and close it. */
void supervise_close_log_pipe(kpa_control *ctl, instance *i);
/* What a restart of the request needs, with copies of the handles. */
restart_info *supervise_restart_new(const char *pkg_id, const char *rc_id,
                                    const kpa_start_options *opts);
/* Free R and close its handles' fds; R may be NULL. */
void supervise_restart_free(restart_info *r);
/* Plan I's restart after it ended, with backoff, if its policy wants one. */
void supervise_schedule_restart(kpa_control *ctl, instance *i);
/* Drop I's restart information unless a restart is pending. */
void supervise_forget_restart(instance *i);
/* Start I again now (its pending restart is due). */
void supervise_do_restart(kpa_control *ctl, instance *i);
/* Drop the oldest ended contexts beyond the limits (every controller): the
 * count and age limits hold for each owner on its own. */
void supervise_prune(kpa_control *ctl);

#endif
