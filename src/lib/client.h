/* client.h: the kpa-execd end of a kpa_control (client.c). process.c
 * forwards each kpa/process.h call of a connected controller here; kpa-run
 * uses kpa_remote_call() for what process.h has no call for (OpenLog,
 * ListProcesses with contexts, StopAll). */
#ifndef KPA_CLIENT_H
#define KPA_CLIENT_H

#include <json-c/json.h>

#include "kpa/error.h"
#include "kpa/process.h"
#include "protocol.h"

typedef struct kpa_remote kpa_remote;

/* Connect to the daemon at SOCKET_PATH (NULL: kpa_execd_socket_path(NULL))
 * and check its protocol version. When nothing listens there, the message
 * says that kpa-execd is not running and names the socket path. */
int kpa_remote_connect(const char *socket_path, kpa_remote **out, kpa_error *err);
/* The daemon connection of a controller made by kpa_control_connect(), else
 * NULL. */
kpa_remote *kpa_control_remote(kpa_control *ctl);
void kpa_remote_close(kpa_remote *r);

int kpa_remote_start(kpa_remote *r, const char *pkg_id, const char *run_config_id,
                     const kpa_start_options *opts, kpa_token *out_token, kpa_error *err);
int kpa_remote_stop(kpa_remote *r, const kpa_token *t, kpa_stop_policy policy, kpa_error *err);
/* PackageInstalled (with RESTART) or StopPackage for PKG_ID. */
int kpa_remote_package(kpa_remote *r, kpa_request_op op, const char *pkg_id, bool restart,
                       kpa_package_notice *out, kpa_error *err);
int kpa_remote_get_state(kpa_remote *r, const kpa_token *t, kpa_process_context *out,
                         kpa_error *err);
int kpa_remote_wait(kpa_remote *r, const kpa_token *t, int timeout_ms, kpa_process_context *out,
                    kpa_error *err);
/* FindProcesses: the tokens of APP's (RC: NULL for any) instances that
 * kpa_process_find() means, as kpa-execd matches them. */
int kpa_remote_find(kpa_remote *r, const char *app, const char *rc, kpa_token **out, size_t *n,
                    kpa_error *err);
int kpa_remote_list(kpa_remote *r, kpa_token **out, size_t *n, kpa_error *err);
/* Every context R's user may see, as a new JSON array of CONTEXT objects
 * (protocol.h), fetched page by page. */
int kpa_remote_list_contexts(kpa_remote *r, json_object **out, kpa_error *err);

/* One request/reply round trip. REQ is put by the call. Attached fds of the
 * reply (up to MAX_FDS) go to FDS_OUT (may be NULL when MAX_FDS is 0; extra
 * ones are closed). Returns -code of the reply's error (with *REPLY still
 * set, for its "process" field) or of a transport failure (*REPLY NULL). */
int kpa_remote_call(kpa_remote *r, json_object *req, const int *fds, size_t n_fds,
                    json_object **reply, int *fds_out, size_t max_fds, size_t *n_fds_out,
                    kpa_error *err);
/* The next request id of R. */
int64_t kpa_remote_next_id(kpa_remote *r);

#endif
