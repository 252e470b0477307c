/* kpa/oci.h: an OCI runtime (runtime-spec 1.x) over kpa's sandbox, the
 * operations of runc's command line as calls (kpa-oci is their command
 * line, as crun is libcrun's).
 *
 * A container is a state directory ROOT/ID (state.json, and exec.fifo while
 * it is created and not started). create plans the bundle's config.json
 * (the plan of kpa_instance_spec_new_oci, plus what a runtime does around
 * it: hooks, rlimits, oomScoreAdj, umask, sysctl, cgroupsPath's parent),
 * starts the sandbox and leaves its init waiting at the FIFO; start
 * releases it. Every call returns 0 or a negative errno and fills ERR (may
 * be NULL) with a message naming the cause (the container id, the
 * config.json key, the path). */
#ifndef KPA_OCI_H
#define KPA_OCI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <kpa/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The state directory that a NULL root means. */
#define KPA_OCI_DEFAULT_ROOT "/run/kpa-oci"

/* A message that does not fail the call, MSG (one line) at LEVEL:
 * "warning" (a config.json key the runtime specification does not have) or
 * "error" (a poststart or poststop hook that failed; a clean-up that failed
 * after the failure that ERR names). */
typedef void (*kpa_oci_log_fn)(const char *level, const char *msg, void *userdata);

typedef struct kpa_oci_options {
        size_t struct_size;         /* sizeof, set by kpa_oci_options_init() (see kpa/error.h) */
        const char *root;           /* state directory; NULL: KPA_OCI_DEFAULT_ROOT */
        const char *bundle;         /* create, run: the bundle; NULL: "." */
        const char *pid_file;       /* create, run, exec: the pid is written there */
        const char *console_socket; /* create, run, exec: a terminal's master goes there */
        const char *program;        /* the name that children print messages with;
                                       NULL: "kpa-oci" */
        kpa_oci_log_fn log;         /* NULL: such messages are dropped */
        void *log_userdata;
} kpa_oci_options;

KPA_PUBLIC void kpa_oci_options_init(kpa_oci_options *opts);

/* Create container ID from OPTS->bundle: its init waits for kpa_oci_start.
 * The init stays (whoever reaps the caller's children reaps it). */
KPA_PUBLIC int kpa_oci_create(const kpa_oci_options *opts, const char *id, kpa_error *err);
/* Start the process of created container ID (the poststart hooks run). */
KPA_PUBLIC int kpa_oci_start(const kpa_oci_options *opts, const char *id, kpa_error *err);
/* create, start; unless DETACH, wait for the process, delete the container
 * and put the process's exit code (128 + signal) in *EXIT_CODE. */
KPA_PUBLIC int kpa_oci_run(const kpa_oci_options *opts, const char *id, bool detach, int *exit_code,
                           kpa_error *err);
/* The state JSON of the runtime specification, pretty-printed, in *OUT
 * (free() it). */
KPA_PUBLIC int kpa_oci_state(const kpa_oci_options *opts, const char *id, char **out,
                             kpa_error *err);
/* Send SIG to the init of ID; ALL: SIGKILL kills the container's cgroup too. */
KPA_PUBLIC int kpa_oci_kill(const kpa_oci_options *opts, const char *id, int sig, bool all,
                            kpa_error *err);
/* Remove stopped container ID; FORCE: kill it first if it runs, and an ID
 * that does not exist is no error. */
KPA_PUBLIC int kpa_oci_delete(const kpa_oci_options *opts, const char *id, bool force,
                              kpa_error *err);
/* A signal's number from its name (TERM, SIGTERM) or number; -1 unknown. */
KPA_PUBLIC int kpa_oci_signal_parse(const char *s);

/* A further process in a running container. */
typedef struct kpa_oci_exec_options {
        size_t struct_size;       /* sizeof, set by kpa_oci_exec_options_init() */
        const char *process_file; /* a process object (JSON); else the container's own
                                     process with the fields below */
        const char *const *args;  /* NULL-terminated; needed without process_file */
        const char *const *env;   /* NULL-terminated "NAME=VALUE", before the process's */
        const char *cwd;          /* NULL: the process's */
        const char *user;         /* UID[:GID]; NULL: the process's */
        bool no_new_privs;
        bool tty;
} kpa_oci_exec_options;

KPA_PUBLIC void kpa_oci_exec_options_init(kpa_oci_exec_options *exec);

/* Start the process EXEC describes in running container ID (OPTS:
 * root, pid_file, console_socket); *PID: the process, the caller's child. */
KPA_PUBLIC int kpa_oci_exec(const kpa_oci_options *opts, const char *id,
                            const kpa_oci_exec_options *exec, pid_t *pid, kpa_error *err);

/* What this runtime supports, the features JSON of the runtime
 * specification, in *OUT (free() it). */
KPA_PUBLIC int kpa_oci_features(char **out, kpa_error *err);
/* Write a config.json to start from to BUNDLE (NULL: ".") as runc spec does;
 * an existing one is left alone (-EEXIST). */
KPA_PUBLIC int kpa_oci_spec(const char *bundle, kpa_error *err);

#ifdef __cplusplus
}
#endif
#endif
