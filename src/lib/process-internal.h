/* process-internal.h: what task.c needs from the controller in process.c. */
#ifndef KPA_PROCESS_INTERNAL_H
#define KPA_PROCESS_INTERNAL_H

#include "kpa/manifest.h"
#include "kpa/package.h"
#include "kpa/process.h"

int kpa_control_launch(kpa_control *ctl, const char *pkg_id, const kpa_manifest *m,
                       const kpa_run_config *rc, const char *run_config_id,
                       const kpa_start_options *opts, kpa_token *out_token);
kpa_store *kpa_control_store(kpa_control *ctl);
kpa_error *kpa_control_error(kpa_control *ctl);

#endif
