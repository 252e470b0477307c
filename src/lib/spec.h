/* spec.h: from a manifest, a run configuration and start options to the
 * plain kpa_instance_spec that the sandbox executes. No side effects other
 * than opening the fds the spec holds, so it can be tested without root. */
#ifndef KPA_SPEC_H
#define KPA_SPEC_H

#include "kpa/manifest.h"
#include "kpa/package.h"
#include "kpa/process.h"
#include "sandbox.h"

int kpa_instance_spec_build(kpa_store *store, const kpa_manifest *m, const kpa_run_config *rc,
                            const kpa_start_options *opts, const char *instance_id,
                            kpa_instance_spec **out, kpa_error *err);

#endif
