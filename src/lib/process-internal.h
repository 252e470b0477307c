/* process-internal.h: the controller's calls beyond kpa/process.h, for
 * task.c, kpa-run and kpa-execd: defined in process.c, and the supervision
 * ones (kpa_control_supervise, kpa_control_log_path) in supervise.c. The
 * structures those two files share are in process-priv.h. */
#ifndef KPA_PROCESS_INTERNAL_H
#define KPA_PROCESS_INTERNAL_H

#include "kpa/manifest.h"
#include "kpa/package.h"
#include "control-priv.h"
#include "kpa/process.h"

#include <stdbool.h>
#include <stdint.h>

int kpa_control_launch(kpa_control *ctl, const char *pkg_id, const kpa_manifest *m,
                       const kpa_run_config *rc, const char *run_config_id,
                       const kpa_start_options *opts, kpa_token *out_token);
kpa_store *kpa_control_store(kpa_control *ctl);
/* The details of CTL's last failure, which its backends fill (the public
 * calls hand them to their caller's kpa_error). */
kpa_error *kpa_control_error(kpa_control *ctl);

/* kpa_process_find() of a local controller for APP (RC: NULL for any)
 * among the instances of OWNER ((uid_t)-1: all): kpa-execd answers a
 * FindProcesses request with it. */
int kpa_control_find(kpa_control *ctl, const char *app, const char *rc, uid_t owner,
                     kpa_token **out, size_t *n);

/* ---- supervision: what kpa-execd builds on ---- */

typedef struct kpa_supervisor_config {
        const char *state_dir;  /* records, exit statuses and logs, e.g. /run/kpa */
        size_t keep_ended_max;  /* ended contexts kept; 0: 1000 */
        unsigned keep_ended_s;  /* and for at most this long; 0: 3600 */
        uint64_t log_max_bytes; /* per log file before it rotates; 0: 1 MiB */
} kpa_supervisor_config;

/* Make CTL a supervisor. From now on its instances outlive this process
 * (no death pipe, no PDEATHSIG); each has a record in STATE_DIR/instances
 * that its init completes with the final wait status; stdout and stderr of
 * an instance started without stdio fds go to STATE_DIR/logs/TOKEN.log,
 * rotated to TOKEN.log.1 at LOG_MAX_BYTES. Records already in STATE_DIR
 * are taken over: instances still running are adopted again (state, stop,
 * wait and logs work on their old tokens), and those that ended while no
 * supervisor ran are reported with their real exit. After a
 * kpa_cgroup_become_supervisor() that moved this process (cgroup v2), the
 * instances started without a cgroup parent, and those of records without
 * one, have their groups below the cgroup it left. Returns the number of
 * instances adopted, or -errno. */
int kpa_control_supervise(kpa_control *ctl, const kpa_supervisor_config *cfg, kpa_error *err);

/* The uid recorded as the owner of instances started from now on (default:
 * getuid()). kpa-execd sets it from SO_PEERCRED before each start. */
void kpa_control_set_owner(kpa_control *ctl, uid_t owner);
/* The owner of T's instance; -ESRCH when unknown. */
int kpa_control_get_owner(kpa_control *ctl, const kpa_token *t, uid_t *owner);

/* FN (kpa_state_observer, control-priv.h) is called after every state
 * change of an instance. */
void kpa_control_set_observer(kpa_control *ctl, kpa_state_observer fn, void *userdata);

/* Paths of T's current and previous log files (supervised instances with
 * captured output); -ENOENT when T has none. */
int kpa_control_log_path(kpa_control *ctl, const kpa_token *t, bool rotated, char *buf, size_t len);

/* How many records of the state directory could not be written since the
 * last call (0: none), with the latest failure in OUT. A record that is
 * not written leaves the previous one, so a restarted supervisor would not
 * know the latest state: the daemon logs it. */
unsigned kpa_control_take_record_error(kpa_control *ctl, kpa_error *out);

/* kpa_process_start() that returns once the instance is Created (the
 * sandbox is being set up) instead of Running: the observer then sees it
 * become Running, or Failed with the reason. A start that fails before
 * there is a process fails here, as kpa_process_start() does. For an event
 * loop that must not wait (kpa-execd). */
int kpa_control_start_async(kpa_control *ctl, const char *pkg_id, const char *run_config_id,
                            const kpa_start_options *opts, kpa_token *out_token);

/* Stop every live instance with POLICY; returns how many. */
int kpa_control_stop_all(kpa_control *ctl, kpa_stop_policy policy);
/* Normal stop of every live instance of PKG_ID; with RESTART, those that
 * a restart can start again (supervised) are started again once ended, on
 * what is installed then (an upgrade). The hosts pids of their inits go to
 * PIDS (at most MAX_PIDS). Returns how many were stopped. Without
 * RESTART, an ended instance's restart that is due is cancelled too
 * (not counted). */
int kpa_control_stop_package(kpa_control *ctl, const char *pkg_id, bool restart, pid_t *pids,
                             size_t max_pids);
/* PKG_ID was removed: the cgroups kept for its next start below this
 * controller's parent go (kpa_cgroup_forget_app). */
void kpa_control_forget_package(kpa_control *ctl, const char *pkg_id);
/* How many instances are still live (not yet ended and cleaned up). */
size_t kpa_control_live_count(kpa_control *ctl);

#endif
