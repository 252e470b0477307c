/* protocol.h: the kpa-execd wire protocol, shared by the daemon
 * (src/daemon/kpa-execd.c) and the client (client.c, kpa_control_connect).
 *
 * Transport: a SOCK_SEQPACKET Unix socket. One JSON object per datagram, at
 * most KPA_MSG_MAX bytes; user handles travel as SCM_RIGHTS with the
 * StartProcess request (at most KPA_MSG_FDS_MAX), and a log fd with the
 * reply to OpenLog.
 *
 * Request:  {"op": "StartProcess", "id": 7, ...fields of the op...}
 *   "id" is any integer the client chooses (default 0); the reply echoes it.
 * Reply:    {"id": 7, "error": 0, "message": "", ...result fields...}
 *   "error" is 0 or a positive errno; "errorName" its symbolic name
 *   ("EACCES"); "message" names the cause in words. A reply with id 0 and an
 *   error that came unasked answers whatever the client sent first: the
 *   daemon refused the connection (too many of them) or could not read
 *   the message; the daemon closes the connection after a refusal.
 * Event:    {"event": "StateChanged", "process": CONTEXT} (after Subscribe)
 *
 * Ops and their fields (all optional unless marked *):
 *   Version            -> "version" (package version), "protocol" (integer)
 *   StartProcess       "package"*, "runConfig", "parent" (token),
 *                      "handles" (array of names, one per attached fd, in order),
 *                      "args" (array of strings), "env" (array of "NAME=VALUE"),
 *                      "memory", "pids", "cpuWeight" (integers, 0: manifest's),
 *                      "network" ("default"|"none"|"host"),
 *                      "uid", "gid" (integers, -1: the package's own),
 *                      "stopTimeoutMs" (integer)
 *                      -> "token", "process" (CONTEXT); on a failed start the
 *                         reply has the error AND, when a context was made,
 *                         "token" and "process" (state Failed)
 *   StopProcess        "token"*, "policy" ("Normal"|"Forced", default Normal)
 *   GetProcessState    "token"*                  -> "process"
 *   WaitProcess        "token"*, "timeoutMs" (-1 or absent: forever)
 *                      -> "process"; error ETIMEDOUT (with "process") on timeout
 *   ListProcesses      "continue" (bool: the next page of this listing)
 *                      -> "processes": [CONTEXT, ...], "more" (bool)
 *                      A listing comes in pages of one message each: the
 *                      first request takes a snapshot of the processes the
 *                      client may see; while "more" is true, the client asks
 *                      for the next page with "continue": true.
 *   StopAll            "policy" -> "stopped" (count)     (root only)
 *   Subscribe          -> then a stream of events on this connection
 *   OpenLog            "token"*, "rotated" (bool: the previous file)
 *                      -> one fd attached (read-only), "path"
 *   PackageInstalled   "package"*, "restart" (bool) (kpa-install: autorun its run
 *                      configurations; with "restart", an upgrade: stop its
 *                      running instances Normal and start them again on the
 *                      new version) -> "started", "restarted" (counts),
 *                      "pids": [host pids of the inits restarted]
 *   StopPackage        "package"* -> "stopped" (count), "pids" (root only;
 *                      kpa-install --remove --stop: a Normal stop of each)
 *
 * CONTEXT: {"token": "32 hex", "state": "Running", "exitStatus": "Normal",
 *           "exitCode": 0, "exitReason": 0, "message": "...", "pid": 123,
 *           "package": "org.example.app", "runConfig": "main",
 *           "cleanupError": 0, "owner": 0}
 *   state and exitStatus use the names of kpa_process_state_name() and
 *   kpa_exit_status_name().
 */
#ifndef KPA_PROTOCOL_H
#define KPA_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "kpa/error.h"
#include "kpa/process.h"

#define KPA_PROTOCOL_VERSION 1
#define KPA_MSG_MAX (64 * 1024)
#define KPA_MSG_FDS_MAX 64
/* KPA_EXECD_SOCKET_DEFAULT, KPA_EXECD_SOCKET_ENV and KPA_NO_SUCH_INSTANCE
 * are public: kpa/process.h */

/* The socket path: EXPLICIT if not NULL, else $KPA_EXECD_SOCKET if set and
 * not empty, else KPA_EXECD_SOCKET_DEFAULT. */
const char *kpa_execd_socket_path(const char *explicit_path);

typedef enum kpa_request_op {
        KPA_OP_INVALID = 0,
        KPA_OP_VERSION,
        KPA_OP_START,
        KPA_OP_STOP,
        KPA_OP_GET_STATE,
        KPA_OP_WAIT,
        KPA_OP_LIST,
        KPA_OP_STOP_ALL,
        KPA_OP_SUBSCRIBE,
        KPA_OP_OPEN_LOG,
        KPA_OP_PACKAGE_INSTALLED,
        KPA_OP_STOP_PACKAGE,
        KPA_OP_FIND, /* "FindProcesses": package, runConfig -> tokens */
} kpa_request_op;

const char *kpa_request_op_name(kpa_request_op op); /* "StartProcess", ... */

/* A parsed request. Everything is owned by the request. */
typedef struct kpa_request {
        kpa_request_op op;
        int64_t id;
        kpa_token token;        /* Stop, GetState, Wait, OpenLog */
        bool has_token;
        kpa_stop_policy policy; /* Stop, StopAll */
        int timeout_ms;         /* Wait; -1 forever */
        bool rotated;           /* OpenLog */
        bool list_continue;     /* ListProcesses: the next page */
        bool restart;           /* PackageInstalled: restart its running instances */
        char *package;          /* Start, PackageInstalled, StopPackage, Find */
        char *run_config;       /* Start; NULL: the primary one. Find: NULL for any */
        kpa_token parent;       /* Start */
        /* Start: ready to hand to kpa_process_start(); its pointers point
         * into this request. The handles' fds are the attached fds, owned by
         * the request (kpa_request_free closes them). stdio stays -1. */
        kpa_start_options opts;
} kpa_request;

/* Parse one datagram (BUF, LEN bytes; need not be NUL-terminated) with the
 * N_FDS fds FDS that came with it. Strict: malformed JSON, a non-object, an
 * unknown op, a field of the wrong type, an unknown field, a string with
 * control characters, a handle name that is not 1-255 printable ASCII
 * without ':', more than 1024 args or env entries, or a handle count that
 * differs from N_FDS, each give -EINVAL (or -EBADMSG for bad JSON) with a
 * message naming the field. On success the request takes the fds; on
 * failure it closes them (so the caller never leaks one) and OUT->id holds
 * the request's id when it could be read (else 0), for the error reply. */
int kpa_request_parse(const char *buf, size_t len, int *fds, size_t n_fds, kpa_request *out,
                      kpa_error *err);
void kpa_request_free(kpa_request *r);

/* Requests, built by the client. The caller puts them. */
json_object *kpa_request_new(kpa_request_op op, int64_t id);
/* StartProcess: fields from OPTS; the handles' fds are not in the JSON (the
 * caller attaches OPTS->handles[k].fd in order). */
json_object *kpa_request_start(int64_t id, const char *package, const char *run_config,
                               const kpa_start_options *opts);

/* Replies. ERR is 0 or a positive errno. */
json_object *kpa_reply_new(int64_t id, int err, const char *message);
/* Read a reply's "error" and "message" into ERR (code 0 when none);
 * returns -code. */
int kpa_reply_error(json_object *reply, kpa_error *err);

json_object *kpa_context_to_json(const kpa_token *t, const kpa_process_context *ctx, uid_t owner);
int kpa_context_from_json(json_object *o, kpa_token *t, kpa_process_context *ctx, kpa_error *err);

/* Send MSG as one datagram with N_FDS fds (MSG_NOSIGNAL). 0 or -errno;
 * -EMSGSIZE when the JSON is longer than KPA_MSG_MAX. */
int kpa_msg_send(int sock, json_object *msg, const int *fds, size_t n_fds);
/* Receive one datagram into BUF (at least KPA_MSG_MAX + 1 bytes), NUL-
 * terminated, with up to MAX_FDS fds (O_CLOEXEC). Returns the length (> 0),
 * 0 at end of stream, -EMSGSIZE for a datagram longer than KPA_MSG_MAX or
 * with more fds than MAX_FDS (every fd that came is closed then), -EBADMSG
 * for an empty datagram, or -errno. */
ssize_t kpa_msg_recv(int sock, char *buf, int *fds, size_t max_fds, size_t *n_fds);
/* Receive and parse one JSON object (replies and events, on the client). */
int kpa_msg_recv_json(int sock, json_object **out, int *fds, size_t max_fds, size_t *n_fds,
                      kpa_error *err);

#endif
