/* kpa/instance.h: the instance plan, a public and versioned type.
 *
 * A kpa_instance_spec is everything one start does and the only thing the
 * sandbox reads: the program, argv, environment, mounts, namespaces, uid
 * and gid, cgroup limits, handles, seccomp relaxations, working directory
 * and terminal. It is built from an installed package's run configuration
 * and start options (what kpa_process_start does), or from an OCI bundle's
 * config.json. An integrator reads it (kpa_instance_spec_to_json, the form
 * that kpa-run --print-spec prints), adjusts it with the setters below, and
 * starts it on a local controller with kpa_process_start_spec.
 *
 * The type is opaque: its layout is libkpa's and may change. Its JSON form
 * says "kpaInstanceSpecVersion": KPA_INSTANCE_SPEC_VERSION first, and a key
 * changes its meaning or goes away only with a new version (new keys may
 * appear within one). docs/instance-spec.md describes every key. */
#ifndef KPA_INSTANCE_H
#define KPA_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kpa/error.h>
#include <kpa/process.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KPA_INSTANCE_SPEC_VERSION 1

typedef struct kpa_instance_spec kpa_instance_spec;

/* The plan of starting run configuration RUN_CONFIG_ID (NULL: the primary
 * one) of the package PKG_ID installed in the store at STORE_ROOT (NULL:
 * $KPA_ROOT, else the default) with OPTS (NULL: the defaults), as
 * kpa_process_start would make it: the options are checked and applied
 * (limits, handles, binds, uid, network, cwd, tty) and the package's grants
 * read. The plan holds duplicates of the handles and fds of the paths it
 * binds; the stdio fds in OPTS stay the caller's and must stay open until
 * the start. The sockets that the manifest declares (extensions.KPA_sockets)
 * and the services it uses (usesServices) are not part of the plan: those
 * handles are made by kpa_process_start. 0, or -errno with ERR naming the
 * cause (unknown package or run configuration, a refused option). */
KPA_PUBLIC int kpa_instance_spec_new_package(const char *store_root, const char *pkg_id,
                                             const char *run_config_id,
                                             const kpa_start_options *opts, kpa_instance_spec **out,
                                             kpa_error *err);
/* The plan of container CONTAINER_ID from the OCI bundle BUNDLE_DIR (its
 * config.json, runtime-spec 1.x; its root.path relative to BUNDLE_DIR), as
 * kpa-oci reads it. What the runtime does around the sandbox rather than in
 * it (hooks, process.rlimits, process.oomScoreAdj, linux.sysctl,
 * linux.cgroupsPath) has no place in a plan: a config that asks for any of
 * them is refused, naming the key (kpa-oci runs such bundles). The
 * process's stdio is the caller's 0, 1 and 2. 0, or -errno with ERR naming
 * the JSON path and the rule. (Not in kpa-run's libkpa-core: link libkpa.) */
KPA_PUBLIC int kpa_instance_spec_new_oci(const char *bundle_dir, const char *container_id,
                                         kpa_instance_spec **out, kpa_error *err);
/* Free SPEC, closing the fds it holds. SPEC may be NULL. */
KPA_PUBLIC void kpa_instance_spec_free(kpa_instance_spec *spec);
static inline void kpa_instance_spec_freep(kpa_instance_spec **s)
{
        if (*s)
                kpa_instance_spec_free(*s);
}

/* SPEC as a JSON object in a new string (free() it), pretty-printed with a
 * stable key order, "kpaInstanceSpecVersion" first. */
KPA_PUBLIC char *kpa_instance_spec_to_json(const kpa_instance_spec *spec);

/* ---- reading and adjusting a plan ----
 * Each setter checks its input and leaves SPEC as it was on an error:
 * -EINVAL (or -EPERM) with ERR naming the cause. */

/* The package's id ("oci" for an OCI bundle's plan). */
KPA_PUBLIC const char *kpa_instance_spec_app_id(const kpa_instance_spec *spec);
/* The program started, a path inside the sandbox. */
KPA_PUBLIC const char *kpa_instance_spec_exec_path(const kpa_instance_spec *spec);

/* The application's argv, NULL-terminated (argv[0] is the name it sees). */
KPA_PUBLIC const char *const *kpa_instance_spec_get_argv(const kpa_instance_spec *spec);
/* Replace argv with the N strings of ARGV (copied); N >= 1, no NULL. */
KPA_PUBLIC int kpa_instance_spec_set_argv(kpa_instance_spec *spec, const char *const *argv,
                                          size_t n, kpa_error *err);

/* The value of environment variable NAME, or NULL when it is not set. */
KPA_PUBLIC const char *kpa_instance_spec_get_env(const kpa_instance_spec *spec, const char *name);
/* Set NAME to VALUE (NULL: unset it). NAME is not empty and has no '=';
 * LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID are kpa's (they describe the
 * handles) and cannot be set. */
KPA_PUBLIC int kpa_instance_spec_set_env(kpa_instance_spec *spec, const char *name,
                                         const char *value, kpa_error *err);

/* Bind the host path HOST at INSIDE, read-only or WRITABLE, as kpa-run
 * --bind-ro and --bind do: root only (-EPERM), both paths absolute and
 * without "..", INSIDE not /, HOST existing (-ENOENT). */
KPA_PUBLIC int kpa_instance_spec_add_bind(kpa_instance_spec *spec, const char *host,
                                          const char *inside, bool writable, kpa_error *err);

typedef enum kpa_instance_limit {
        KPA_INSTANCE_LIMIT_MEMORY = 0, /* bytes; 0: none */
        KPA_INSTANCE_LIMIT_PIDS,       /* tasks, up to 4294967295; 0: none */
        KPA_INSTANCE_LIMIT_CPU_WEIGHT, /* 1..10000; 0: the kernel's default */
} kpa_instance_limit;
/* The cgroup limit WHICH into *VALUE; -EINVAL for an unknown WHICH. */
KPA_PUBLIC int kpa_instance_spec_get_limit(const kpa_instance_spec *spec, kpa_instance_limit which,
                                           uint64_t *value);
KPA_PUBLIC int kpa_instance_spec_set_limit(kpa_instance_spec *spec, kpa_instance_limit which,
                                           uint64_t value, kpa_error *err);

/* The working directory inside the sandbox (NULL: /). */
KPA_PUBLIC const char *kpa_instance_spec_get_cwd(const kpa_instance_spec *spec);
/* Set it: an absolute path (NULL: /); the init checks that it exists, as
 * the application's uid, at the start. */
KPA_PUBLIC int kpa_instance_spec_set_cwd(kpa_instance_spec *spec, const char *cwd, kpa_error *err);

/* ---- starting a plan ----
 * Start SPEC on CTL, which must be a local controller
 * (kpa_control_open_local; a connection to kpa-execd refuses with
 * -EOPNOTSUPP: the daemon starts packages by id). It returns once the
 * instance is Running, as kpa_process_start does, with *OUT_TOKEN set; the
 * instance is then watched, stopped and waited for like any other (its
 * grace period is the default 10 s). A plan is for one start (a second one
 * is refused with -EALREADY); SPEC stays the caller's to free. On a failed
 * start, a negative errno, ERR says why, and the token (when OUT_TOKEN is
 * not NULL) names the Failed context. */
KPA_PUBLIC int kpa_process_start_spec(kpa_control *ctl, kpa_instance_spec *spec,
                                      kpa_token *out_token, kpa_error *err);

#ifdef __cplusplus
}
#endif
#endif
