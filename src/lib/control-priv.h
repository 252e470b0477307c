/* control-priv.h: the controller object (struct kpa_control) and the table
 * of operations that its two backends fill in: the local one (process.c,
 * with supervise.c) runs the instances itself, the remote one (client.c)
 * asks kpa-execd. control.c passes each public call of kpa/process.h to
 * ctl->ops. Both backends include this file and neither includes the other's
 * header, so the modules form no circle (tests/integration/include-graph.sh).
 * Private to libkpa. */
#ifndef KPA_CONTROL_PRIV_H
#define KPA_CONTROL_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kpa/error.h"
#include "kpa/package.h"
#include "kpa/process.h"

typedef struct kpa_remote kpa_remote; /* client.h */
typedef struct instance instance;     /* process-priv.h */
struct supervision_hooks;             /* process-priv.h */

/* Called after every state change of an instance (Created, Prepared,
 * Running, Finished, Failed; NotExisting when its context is dropped);
 * kpa_control_set_observer() (process-internal.h) sets it. */
typedef void (*kpa_state_observer)(void *userdata, const kpa_token *t,
                                   const kpa_process_context *ctx);

/* What a controller does, by backend: the local one (process.c) runs the
 * instances itself, the remote one (client.c) asks kpa-execd. The public
 * calls of kpa/process.h (control.c) go through these, so that neither
 * backend needs the other. */
typedef struct control_ops {
        int (*start)(kpa_control *ctl, const char *pkg_id, const char *run_config_id,
                     const kpa_start_options *opts, kpa_token *out_token);
        int (*stop)(kpa_control *ctl, const kpa_token *token, kpa_stop_policy policy);
        int (*get_state)(kpa_control *ctl, const kpa_token *token, kpa_process_context *out);
        int (*wait)(kpa_control *ctl, const kpa_token *token, int timeout_ms,
                    kpa_process_context *out);
        int (*list)(kpa_control *ctl, kpa_token **out, size_t *n);
        int (*list_contexts)(kpa_control *ctl, kpa_token **tokens, kpa_process_context **ctxs,
                             size_t *n);
        int (*stop_all)(kpa_control *ctl, kpa_stop_policy policy, size_t *stopped);
        int (*open_log)(kpa_control *ctl, const kpa_token *token, bool rotated, int *out_fd);
        /* the instances of APP (RC: NULL for any), as kpa_process_find() */
        int (*find)(kpa_control *ctl, const char *app, const char *rc, kpa_token **out,
                    size_t *n);
        /* STOP: a Normal stop of PKG_ID's instances; else an install notice
         * (RESTART: restart them on what is installed now) */
        int (*package)(kpa_control *ctl, const char *pkg_id, bool stop, bool restart,
                       kpa_package_notice *out);
        int (*get_fd)(kpa_control *ctl);
        int (*dispatch)(kpa_control *ctl);
        void (*close)(kpa_control *ctl); /* frees CTL */
} control_ops;
extern const control_ops process_local_ops;
extern const control_ops client_remote_ops;

/* R; when it is a failure, CTL's last error (or WHAT and strerror(-R) when
 * none was set) is copied to ERR (may be NULL). For the public calls
 * (control.c, task.c): the backends leave their errors in ctl->last_error. */
int kpa_control_error_out(kpa_control *ctl, int r, const char *what, kpa_error *err);

struct kpa_control {
        const control_ops *ops;
        kpa_remote *remote; /* the remote backend's connection to kpa-execd; then nothing
                             * below is used */
        kpa_store *store;
        instance *list;
        int epfd;
        int timerfd;
        kpa_error last_error;
        uid_t owner;
        size_t keep_ended_max;
        uint64_t keep_ended_ms;
        /* supervision */
        const struct supervision_hooks *supervision; /* supervise.c's, or NULL */
        int state_fd; /* STATE_DIR, or -1 when not a supervisor */
        char *state_dir;
        uint64_t log_max_bytes;
        char *cgroup_parent; /* for instances started without one (v2: the leaf's parent) */
        kpa_state_observer observer;
        void *observer_data;
        bool start_async; /* kpa_control_start_async(): do not wait for Running */
        /* a supervisor holds up to keep_ended_max ended contexts: find them
         * by token in O(1), and walk the list to prune at most once a
         * second or when it has grown past the limit */
        instance *by_token[1024];
        size_t n_instances;
        uint64_t last_prune_ms;
        size_t n_after_prune; /* instances the last prune left */
        /* records that could not be written (kpa_control_take_record_error) */
        kpa_error record_error;
        unsigned record_failures;
        /* usesServices (uses.c): the directory of the services' sockets */
        int services_fd;    /* or -1 until the first service */
        char *services_tmp; /* a direct-mode controller's own, removed at close */
        struct declared_socket *sockets; /* KPA_sockets kept for starts (sockets.c) */
};

#endif
