/* oci-config.h: an OCI bundle's config.json (runtime-spec 1.x) turned into
 * the kpa_instance_spec the sandbox executes, plus what the runtime itself
 * does around the sandbox (hooks, rlimits, sysctls, the state's
 * annotations). Every field is either honoured or refused with its JSON
 * path ("linux.intelRdt: not supported"); none is ignored silently.
 * No side effects: it reads the config and looks up the program in the
 * rootfs, so it can be tested without root. */
#ifndef KPA_OCI_CONFIG_H
#define KPA_OCI_CONFIG_H

#include <json-c/json.h>
#include <sys/resource.h>

#include "sandbox.h"

typedef struct kpa_oci_rlimit {
        int resource; /* RLIMIT_* */
        struct rlimit value;
} kpa_oci_rlimit;

typedef struct kpa_oci_config {
        kpa_instance_spec *spec;
        char *oci_version;
        json_object *hooks;       /* the "hooks" object, or NULL */
        json_object *annotations; /* the "annotations" object, or NULL */
        kpa_oci_rlimit *rlimits;  /* set by the runtime before the clone: inherited */
        size_t n_rlimits;
        json_object *sysctl; /* linux.sysctl, or NULL: written in the namespaces */
        bool has_oom_score_adj;
        int oom_score_adj;
        bool has_umask;
        mode_t umask;
        char *cgroups_path; /* linux.cgroupsPath, or NULL */
        /* linux.resources.devices, in order; the policy that the container
         * gets is spec->limits.devices (the default list, linux.devices'
         * nodes, then these) */
        kpa_cgroup_device_rule *device_rules;
        size_t n_device_rules;
        /* keys that the runtime specification does not have: ignored, as it
         * asks, and named here for the caller to warn about */
        char **ignored;
        size_t n_ignored;
} kpa_oci_config;

/* Read BUNDLE/config.json for container ID. 0, or -errno with ERR naming
 * the JSON path and the rule. */
int kpa_oci_config_load(const char *bundle, const char *id, kpa_oci_config **out, kpa_error *err);
void kpa_oci_config_free(kpa_oci_config *c);
static inline void kpa_oci_config_freep(kpa_oci_config **c)
{
        if (*c)
                kpa_oci_config_free(*c);
}

/* Replace C's process (args, env, cwd, user, rlimits...) with P, an OCI
 * process object (kpa-oci exec --process); the program is looked up below
 * ROOTFD, the container's root. */
int kpa_oci_process_parse(kpa_oci_config *c, json_object *p, int rootfd, kpa_error *err);

/* Start SPEC's process (argv, envp, cwd, uid, gid, seccomp) in the running
 * container whose init is INIT_PID: in its cgroup CG (NULL: none), all its
 * namespaces, with the capabilities SPEC keeps and the filter installed
 * (oci-exec.c). With SPEC->tty, a pty of the container's devpts is its
 * controlling terminal and its master goes over CONSOLE_FD (a connected
 * --console-socket, runc's protocol). The process is a child of the
 * caller; *PID its pid. 0, or -errno with ERR naming the step. */
int kpa_oci_exec_spawn(pid_t init_pid, kpa_cgroup *cg, const kpa_instance_spec *spec,
                       int console_fd, pid_t *pid, kpa_error *err);

/* linux.seccomp (SECCOMP) as a BPF program in *OUT (free with
 * kpa_seccomp_prog_free); oci-seccomp.c. 0, or -errno with ERR naming the
 * JSON path. */
int kpa_oci_seccomp_build(json_object *seccomp, kpa_seccomp_prog *out, kpa_error *err);

/* A container id as runc accepts it: [A-Za-z0-9_.+-], 1-1024 chars, not
 * starting with a dot. */
bool kpa_oci_id_valid(const char *id);

#endif
