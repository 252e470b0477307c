/* instance-oci.c: the public constructor of an instance plan from an OCI
 * bundle (kpa/instance.h). oci-config.c reads config.json; this keeps only
 * the plan, refusing a config that asks for what the runtime (kpa-oci)
 * does around the sandbox, since a plan started with
 * kpa_process_start_spec would silently go without it. In libkpa, not in
 * kpa-run's libkpa-core. */
#include "config.h"

#include "oci-config.h"
#include "sandbox.h"
#include "util.h"

/* The first key of C that a plan cannot carry, or NULL. */
static const char *runtime_only_key(const kpa_oci_config *c)
{
        if (c->hooks)
                return "hooks";
        if (c->n_rlimits)
                return "process.rlimits";
        if (c->has_oom_score_adj)
                return "process.oomScoreAdj";
        if (c->has_umask)
                return "process.user.umask";
        if (c->sysctl)
                return "linux.sysctl";
        if (c->cgroups_path)
                return "linux.cgroupsPath";
        return NULL;
}

int kpa_instance_spec_new_oci(const char *bundle_dir, const char *container_id,
                              kpa_instance_spec **out, kpa_error *err)
{
        *out = NULL;
        if (!bundle_dir || !bundle_dir[0])
                return kpa_error_set(err, EINVAL, "no bundle directory given");
        if (!container_id || !kpa_oci_id_valid(container_id))
                return kpa_error_set(err, EINVAL,
                                     "container id \"%s\" is not 1-1024 of [A-Za-z0-9_.+-] not "
                                     "starting with a dot",
                                     container_id ? container_id : "");
        _cleanup_(kpa_oci_config_freep) kpa_oci_config *c = NULL;
        int q = kpa_oci_config_load(bundle_dir, container_id, &c, err);
        if (q < 0)
                return q;
        /* kpa-oci ignores them with a warning; a plan has nobody to warn */
        if (c->n_ignored)
                return kpa_error_set(err, EOPNOTSUPP,
                                     "%s/config.json: %s: not in the runtime specification "
                                     "(kpa-oci ignores it with a warning; a plan refuses it)",
                                     bundle_dir, c->ignored[0]);
        const char *key = runtime_only_key(c);
        if (key)
                return kpa_error_set(err, EOPNOTSUPP,
                                     "%s/config.json: %s: done by the runtime around the "
                                     "sandbox, not part of an instance plan (kpa-oci runs this "
                                     "bundle)",
                                     bundle_dir, key);
        kpa_instance_spec *spec = TAKE_PTR(c->spec);
        /* an instance of a local controller: it ends with the controller,
         * and its id (its cgroup's name) is the token of its start */
        spec->detached = false;
        free(spec->instance_id);
        spec->instance_id = NULL;
        *out = spec;
        return 0;
}
