/* client.c: the client end of the kpa-execd protocol (protocol.h). A
 * kpa_remote is one SOCK_SEQPACKET connection carrying one request at a
 * time: send a request, wait for the reply whose id matches, hand over the
 * fds that came with it. process.c forwards the calls of a controller made
 * by kpa_control_connect() here, so that a C program and kpa-run use the
 * daemon through kpa/process.h as they would an in-process controller.
 * What a request does is the daemon's business; who may do it too
 * (SO_PEERCRED), so nothing here claims an identity. */
#include "config.h"

#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "client.h"
#include "json-fields.h"
#include "control-priv.h"
#include "protocol.h"
#include "util.h"

/* A reply to anything but WaitProcess is due within this time; a daemon
 * that takes longer is stuck, and the connection is given up. */
#define REPLY_TIMEOUT_MS 120000
/* WaitProcess: the daemon answers ETIMEDOUT at the timeout; this is the
 * margin for its reply to arrive after that. */
#define WAIT_MARGIN_MS 10000

struct kpa_remote {
        int fd; /* -1 once the connection is broken */
        int64_t next_id;
        char *path;
};

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t kpa_remote_next_id(kpa_remote *r) { return ++r->next_id; }

/* The connection is out of step (a reply lost or late): close it, so that
 * no later call takes an old reply for its own. */
static void broken(kpa_remote *r)
{
        if (r->fd >= 0)
                close(r->fd);
        r->fd = -1;
}

/* Wait until R's socket is readable, for at most TIMEOUT_MS (-1: forever). */
static int wait_readable(kpa_remote *r, int timeout_ms, kpa_error *err)
{
        uint64_t deadline = timeout_ms >= 0 ? now_ms() + (uint64_t)timeout_ms : 0;
        for (;;) {
                int left = -1;
                if (timeout_ms >= 0) {
                        uint64_t now = now_ms();
                        left = now >= deadline ? 0 : (int)(deadline - now);
                }
                struct pollfd p = {.fd = r->fd, .events = POLLIN};
                int n = poll(&p, 1, left);
                if (n > 0)
                        return 0;
                if (n == 0)
                        return kpa_error_set(err, ETIMEDOUT,
                                             "kpa-execd at %s did not reply within %d s", r->path,
                                             timeout_ms / 1000);
                if (errno != EINTR)
                        return kpa_error_set_errno(err, errno, "poll on %s", r->path);
        }
}

/* Receive the reply to request ID: events in between are skipped; a reply
 * to another request breaks the connection. */
static int recv_reply(kpa_remote *r, int64_t id, int timeout_ms, json_object **reply, int *fds,
                      size_t max_fds, size_t *n_fds, kpa_error *err)
{
        for (;;) {
                int q = wait_readable(r, timeout_ms, err);
                if (q < 0)
                        return q;
                json_object *o = NULL;
                q = kpa_msg_recv_json(r->fd, &o, fds, max_fds, n_fds, err);
                if (q < 0)
                        return kpa_error_prefix(err, "reply from kpa-execd at %s", r->path);
                if (q == 0)
                        return kpa_error_set(err, ECONNRESET,
                                             "kpa-execd at %s closed the connection", r->path);
                if (json_member(o, "event")) {
                        kpa_close_fds(fds, *n_fds);
                        json_object_put(o);
                        continue;
                }
                json_object *rid = json_member(o, "id");
                json_object *rerr = json_member(o, "error");
                /* id 0 with an error: the daemon answers what it could not
                 * tie to a request (it refused the connection) */
                if (json_object_is_type(rid, json_type_int) && json_object_get_int64(rid) == 0 &&
                    json_object_is_type(rerr, json_type_int) && json_object_get_int64(rerr) != 0) {
                        *reply = o;
                        return 0;
                }
                if (!json_object_is_type(rid, json_type_int) || json_object_get_int64(rid) != id) {
                        kpa_close_fds(fds, *n_fds);
                        json_object_put(o);
                        return kpa_error_set(err, EPROTO,
                                             "kpa-execd at %s replied to another request than "
                                             "request %lld",
                                             r->path, (long long)id);
                }
                *reply = o;
                return 0;
        }
}

/* How long the reply to REQ may take: WaitProcess as long as it asks for. */
static int reply_timeout(json_object *req)
{
        json_object *op = json_member(req, "op");
        if (!op || !streq(json_object_get_string(op), kpa_request_op_name(KPA_OP_WAIT)))
                return REPLY_TIMEOUT_MS;
        json_object *t = json_member(req, "timeoutMs");
        int64_t ms = t ? json_object_get_int64(t) : -1;
        if (ms < 0 || ms > INT32_MAX - WAIT_MARGIN_MS)
                return -1;
        return (int)ms + WAIT_MARGIN_MS;
}

int kpa_remote_call(kpa_remote *r, json_object *req, const int *fds, size_t n_fds,
                    json_object **reply, int *fds_out, size_t max_fds, size_t *n_fds_out,
                    kpa_error *err)
{
        _cleanup_(json_object_putp) json_object *request = req;
        *reply = NULL;
        if (n_fds_out)
                *n_fds_out = 0;
        kpa_error_clear(err);
        if (r->fd < 0)
                return kpa_error_set(err, ENOTCONN,
                                     "the connection to kpa-execd at %s was lost; reconnect",
                                     r->path);
        json_object *idv = json_member(request, "id");
        int64_t id = idv ? json_object_get_int64(idv) : 0;
        int q = kpa_msg_send(r->fd, request, fds, n_fds);
        if (q == -EMSGSIZE)
                return kpa_error_set(err, EMSGSIZE,
                                     "request to kpa-execd too large (at most %d bytes and %d "
                                     "file descriptors)",
                                     KPA_MSG_MAX, KPA_MSG_FDS_MAX);
        if (q < 0) {
                /* a daemon that refused the connection said why before it
                 * closed it: that answer is waiting to be read */
                json_object *refusal = NULL;
                int tmp_fds[1];
                size_t n_tmp = 0;
                kpa_error e;
                if ((q == -EPIPE || q == -ECONNRESET) &&
                    recv_reply(r, id, 0, &refusal, tmp_fds, 0, &n_tmp, &e) == 0) {
                        broken(r);
                        q = kpa_reply_error(refusal, err);
                        json_object_put(refusal);
                        if (q < 0)
                                return kpa_error_prefix(err, "kpa-execd at %s", r->path);
                        return kpa_error_set(err, EPROTO, "kpa-execd at %s closed the connection",
                                             r->path);
                }
                broken(r);
                return kpa_error_set_errno(err, -q, "sending to kpa-execd at %s", r->path);
        }
        int tmp[KPA_MSG_FDS_MAX];
        size_t n_got = 0;
        size_t cap = max_fds < ELEMENTSOF(tmp) ? max_fds : ELEMENTSOF(tmp);
        json_object *o = NULL;
        /* receive into our own array: extra fds beyond MAX_FDS are closed */
        q = recv_reply(r, id, reply_timeout(request), &o, tmp, ELEMENTSOF(tmp), &n_got, err);
        if (q < 0) {
                broken(r);
                return q;
        }
        q = kpa_reply_error(o, err);
        if (q < 0) {
                /* a refusal carries no fds worth keeping */
                kpa_close_fds(tmp, n_got);
                n_got = 0;
        } else if (n_got > cap) {
                kpa_close_fds(tmp + cap, n_got - cap);
                n_got = cap;
        }
        if (n_got)
                memcpy(fds_out, tmp, n_got * sizeof(int));
        if (n_fds_out)
                *n_fds_out = n_got;
        *reply = o;
        return q;
}

/* ---- connecting ---- */

static int connect_error(const char *path, int e, kpa_error *err)
{
        if (e == ENOENT || e == ECONNREFUSED)
                return kpa_error_set(err, e,
                                     "cannot reach kpa-execd at %s: %s (is kpa-execd running? "
                                     "start it with \"systemctl start kpa-execd\")",
                                     path, strerror(e));
        if (e == EACCES || e == EPERM)
                return kpa_error_set(err, e,
                                     "cannot reach kpa-execd at %s: %s (only root and members of "
                                     "the kpa group may use kpa-execd)",
                                     path, strerror(e));
        return kpa_error_set(err, e, "cannot reach kpa-execd at %s: %s", path, strerror(e));
}

static int check_version(kpa_remote *r, kpa_error *err)
{
        json_object *reply = NULL;
        int q = kpa_remote_call(r, kpa_request_new(KPA_OP_VERSION, kpa_remote_next_id(r)), NULL,
                                0, &reply, NULL, 0, NULL, err);
        _cleanup_(json_object_putp) json_object *o = reply;
        if (q == -EACCES || q == -EPERM)
                return kpa_error_prefix(err, "kpa-execd at %s refused this client", r->path);
        if (q < 0)
                return q;
        json_object *p = json_member(o, "protocol");
        if (!json_object_is_type(p, json_type_int))
                return kpa_error_set(err, EPROTO,
                                     "kpa-execd at %s did not say which protocol it speaks",
                                     r->path);
        int64_t v = json_object_get_int64(p);
        if (v != KPA_PROTOCOL_VERSION)
                return kpa_error_set(err, EPROTO,
                                     "kpa-execd at %s speaks protocol %lld, this client protocol "
                                     "%d; use a kpa-run of the same version as kpa-execd",
                                     r->path, (long long)v, KPA_PROTOCOL_VERSION);
        return 0;
}

int kpa_remote_connect(const char *socket_path, kpa_remote **out, kpa_error *err)
{
        const char *path = kpa_execd_socket_path(socket_path);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        *out = NULL;
        kpa_error_clear(err);
        if (!*path || strlen(path) >= sizeof(sa.sun_path))
                return kpa_error_set(err, ENAMETOOLONG,
                                     "socket path \"%.200s\" is empty or longer than %zu bytes",
                                     path, sizeof(sa.sun_path) - 1);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
        int q;
        do
                q = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        while (q < 0 && errno == EINTR);
        if (q < 0)
                return connect_error(path, errno, err);
        kpa_remote *r = kpa_xcalloc(1, sizeof(*r));
        r->fd = TAKE_FD(fd);
        r->path = kpa_xstrdup(path);
        q = check_version(r, err);
        if (q < 0) {
                kpa_remote_close(r);
                return q;
        }
        *out = r;
        return 0;
}

void kpa_remote_close(kpa_remote *r)
{
        if (!r)
                return;
        if (r->fd >= 0)
                close(r->fd);
        free(r->path);
        free(r);
}

/* ---- the calls of kpa/process.h ---- */

static json_object *token_request(kpa_remote *r, kpa_request_op op, const kpa_token *t)
{
        char tok[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(t, tok);
        json_object *o = kpa_request_new(op, kpa_remote_next_id(r));
        json_object_object_add(o, "token", json_object_new_string(tok));
        return o;
}

/* The reply's "process" into T and CTX (when present; REQUIRED: must be). */
static int reply_context(kpa_remote *r, json_object *reply, bool required, kpa_token *t,
                         kpa_process_context *ctx, kpa_error *err)
{
        json_object *p = json_member(reply, "process");
        if (!p) {
                if (!required)
                        return 0;
                return kpa_error_set(err, EPROTO, "kpa-execd at %s sent no process context",
                                     r->path);
        }
        kpa_error e;
        kpa_process_context tmp;
        if (kpa_context_from_json(p, t, ctx ? ctx : &tmp, &e) < 0)
                return kpa_error_set(err, EPROTO, "kpa-execd at %s sent a malformed reply: %s",
                                     r->path, e.message);
        return 0;
}

int kpa_remote_start(kpa_remote *r, const char *pkg_id, const char *run_config_id,
                     const kpa_start_options *opts, kpa_token *out_token, kpa_error *err)
{
        if (out_token)
                memset(out_token, 0, sizeof(*out_token));
        size_t n = opts ? opts->n_handles : 0;
        if (n > KPA_MSG_FDS_MAX)
                return kpa_error_set(err, E2BIG, "%zu handles; kpa-execd takes at most %d", n,
                                     KPA_MSG_FDS_MAX);
        if (opts && opts->cgroup_parent)
                return kpa_error_set(err, EOPNOTSUPP,
                                     "kpa-execd chooses the cgroup of its instances; a cgroup "
                                     "parent cannot be given through it");
        if (opts && opts->tty)
                return kpa_error_set(err, EOPNOTSUPP,
                                     "kpa-execd logs the output of its instances: a "
                                     "pseudo-terminal is for direct mode only");
        int fds[KPA_MSG_FDS_MAX];
        for (size_t i = 0; i < n; i++) {
                fds[i] = opts->handles[i].fd;
                /* as the local controller says it; and a bad fd must not
                 * cost the connection (sendmsg would refuse the whole
                 * datagram) */
                if (fds[i] < 0 || fcntl(fds[i], F_GETFD) < 0)
                        return kpa_error_set_errno(err, EBADF, "handle \"%s\" (fd %d)",
                                                   opts->handles[i].name ? opts->handles[i].name : "",
                                                   fds[i]);
        }
        json_object *reply = NULL;
        int q = kpa_remote_call(r, kpa_request_start(kpa_remote_next_id(r), pkg_id, run_config_id,
                                                     opts),
                                fds, n, &reply, NULL, 0, NULL, err);
        _cleanup_(json_object_putp) json_object *o = reply;
        if (!o)
                return q;
        kpa_token t = {{0}};
        json_object *tok = json_member(o, "token");
        if (tok && (!json_object_is_type(tok, json_type_string) ||
                    kpa_token_from_string(json_object_get_string(tok), &t) < 0))
                return kpa_error_set(err, EPROTO, "kpa-execd at %s sent a malformed token",
                                     r->path);
        if (q < 0) {
                /* a failed start: the message is the reply's, else the context's */
                json_object *m = json_member(o, "message");
                kpa_process_context ctx = {.state = KPA_PROCESS_NONE};
                if ((!m || !*json_object_get_string(m)) &&
                    reply_context(r, o, false, NULL, &ctx, NULL) == 0 && ctx.message[0])
                        kpa_error_set(err, -q, "%s: %s", pkg_id, ctx.message);
                if (out_token)
                        *out_token = t;
                return q;
        }
        if (!tok)
                return kpa_error_set(err, EPROTO, "kpa-execd at %s sent no token", r->path);
        if (out_token)
                *out_token = t;
        return 0;
}

int kpa_remote_stop(kpa_remote *r, const kpa_token *t, kpa_stop_policy policy, kpa_error *err)
{
        json_object *req = token_request(r, KPA_OP_STOP, t);
        json_object_object_add(req, "policy",
                               json_object_new_string(policy == KPA_STOP_FORCED ? "Forced"
                                                                                : "Normal"));
        json_object *reply = NULL;
        int q = kpa_remote_call(r, req, NULL, 0, &reply, NULL, 0, NULL, err);
        json_object_put(reply);
        return q;
}

int kpa_remote_package(kpa_remote *r, kpa_request_op op, const char *pkg_id, bool restart,
                       kpa_package_notice *out, kpa_error *err)
{
        memset(out, 0, sizeof(*out));
        json_object *req = kpa_request_new(op, kpa_remote_next_id(r));
        json_object_object_add(req, "package", json_object_new_string(pkg_id));
        if (restart)
                json_object_object_add(req, "restart", json_object_new_boolean(true));
        json_object *reply = NULL;
        int q = kpa_remote_call(r, req, NULL, 0, &reply, NULL, 0, NULL, err);
        _cleanup_(json_object_putp) json_object *o = reply;
        if (q < 0)
                return q;
        out->started = json_object_get_int(json_object_object_get(o, "started"));
        out->affected = json_object_get_int(
                json_object_object_get(o, op == KPA_OP_STOP_PACKAGE ? "stopped" : "restarted"));
        json_object *pids = json_object_object_get(o, "pids");
        size_t n = json_object_is_type(pids, json_type_array) ? json_object_array_length(pids) : 0;
        for (size_t k = 0; k < n && k < KPA_PACKAGE_NOTICE_PIDS; k++)
                out->pids[k] = (pid_t)json_object_get_int(json_object_array_get_idx(pids, k));
        return 0;
}

int kpa_remote_get_state(kpa_remote *r, const kpa_token *t, kpa_process_context *out,
                         kpa_error *err)
{
        json_object *reply = NULL;
        memset(out, 0, sizeof(*out));
        int q = kpa_remote_call(r, token_request(r, KPA_OP_GET_STATE, t), NULL, 0, &reply, NULL,
                                0, NULL, err);
        _cleanup_(json_object_putp) json_object *o = reply;
        if (q < 0)
                return q;
        return reply_context(r, o, true, NULL, out, err);
}

int kpa_remote_wait(kpa_remote *r, const kpa_token *t, int timeout_ms, kpa_process_context *out,
                    kpa_error *err)
{
        kpa_error local;
        if (!err)
                err = &local;
        json_object *req = token_request(r, KPA_OP_WAIT, t);
        memset(out, 0, sizeof(*out));
        if (timeout_ms >= 0)
                json_object_object_add(req, "timeoutMs", json_object_new_int(timeout_ms));
        json_object *reply = NULL;
        int q = kpa_remote_call(r, req, NULL, 0, &reply, NULL, 0, NULL, err);
        _cleanup_(json_object_putp) json_object *o = reply;
        if (q < 0 && q != -ETIMEDOUT)
                return q;
        if (!o)
                return q; /* our own timeout: no reply came */
        kpa_error saved = *err;
        int c = reply_context(r, o, q == 0, NULL, out, err);
        if (c < 0)
                return c;
        if (q < 0)
                *err = saved;
        return q;
}

int kpa_remote_list_contexts(kpa_remote *r, json_object **out, kpa_error *err)
{
        *out = NULL;
        _cleanup_(json_object_putp) json_object *all = json_object_new_array();
        for (bool more = true, first = true; more; first = false) {
                json_object *req = kpa_request_new(KPA_OP_LIST, kpa_remote_next_id(r));
                if (!first)
                        json_object_object_add(req, "continue", json_object_new_boolean(true));
                json_object *reply = NULL;
                int q = kpa_remote_call(r, req, NULL, 0, &reply, NULL, 0, NULL, err);
                _cleanup_(json_object_putp) json_object *o = reply;
                if (q < 0)
                        return q;
                json_object *a = json_member(o, "processes");
                json_object *m = json_member(o, "more");
                if (!json_object_is_type(a, json_type_array))
                        return kpa_error_set(err, EPROTO,
                                             "kpa-execd at %s sent no list of processes", r->path);
                size_t n = json_object_array_length(a);
                more = json_object_is_type(m, json_type_boolean) && json_object_get_boolean(m);
                if (more && n == 0) /* a page must move on, or this would never end */
                        return kpa_error_set(err, EPROTO,
                                             "kpa-execd at %s sent an empty page of processes",
                                             r->path);
                for (size_t k = 0; k < n; k++)
                        json_object_array_add(all,
                                              json_object_get(json_object_array_get_idx(a, k)));
        }
        *out = TAKE_PTR(all);
        return 0;
}

/* The daemon's instances with their contexts (CTXS may be NULL). */
static int remote_list_parsed(kpa_remote *r, kpa_token **tokens, kpa_process_context **ctxs,
                              size_t *n, kpa_error *err)
{
        *tokens = NULL;
        *n = 0;
        json_object *list = NULL;
        int q = kpa_remote_list_contexts(r, &list, err);
        _cleanup_(json_object_putp) json_object *a = list;
        if (q < 0)
                return q;
        size_t count = json_object_array_length(a);
        _cleanup_free_ kpa_token *v = kpa_xcalloc(count ? count : 1, sizeof(*v));
        _cleanup_free_ kpa_process_context *c = kpa_xcalloc(count ? count : 1, sizeof(*c));
        for (size_t i = 0; i < count; i++) {
                kpa_error e;
                if (kpa_context_from_json(json_object_array_get_idx(a, i), &v[i], &c[i], &e) < 0)
                        return kpa_error_set(err, EPROTO,
                                             "kpa-execd at %s sent a malformed reply: "
                                             "processes[%zu]: %s",
                                             r->path, i, e.message);
        }
        *tokens = TAKE_PTR(v);
        if (ctxs)
                *ctxs = TAKE_PTR(c);
        *n = count;
        return 0;
}

int kpa_remote_list(kpa_remote *r, kpa_token **out, size_t *n, kpa_error *err)
{
        return remote_list_parsed(r, out, NULL, n, err);
}

/* StopAll (root only: the daemon decides, by SO_PEERCRED). */
static int remote_stop_all_call(kpa_remote *r, kpa_stop_policy policy, size_t *stopped,
                                kpa_error *err)
{
        json_object *req = kpa_request_new(KPA_OP_STOP_ALL, kpa_remote_next_id(r));
        json_object_object_add(
                req, "policy",
                json_object_new_string(policy == KPA_STOP_FORCED ? "Forced" : "Normal"));
        json_object *reply = NULL;
        int q = kpa_remote_call(r, req, NULL, 0, &reply, NULL, 0, NULL, err);
        _cleanup_(json_object_putp) json_object *o = reply;
        if (q < 0)
                return q;
        json_object *count = json_member(o, "stopped");
        if (!json_object_is_type(count, json_type_int) || json_object_get_int64(count) < 0)
                return kpa_error_set(err, EPROTO,
                                     "kpa-execd at %s sent a malformed reply: no \"stopped\" count",
                                     r->path);
        *stopped = (size_t)json_object_get_int64(count);
        return 0;
}

/* OpenLog: the log file comes as an fd. */
static int remote_open_log_call(kpa_remote *r, const kpa_token *t, bool rotated, int *out_fd,
                                kpa_error *err)
{
        char s[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(t, s);
        json_object *req = kpa_request_new(KPA_OP_OPEN_LOG, kpa_remote_next_id(r));
        json_object_object_add(req, "token", json_object_new_string(s));
        if (rotated)
                json_object_object_add(req, "rotated", json_object_new_boolean(1));
        json_object *reply = NULL;
        int fds[1];
        size_t n = 0;
        int q = kpa_remote_call(r, req, NULL, 0, &reply, fds, 1, &n, err);
        json_object_put(reply);
        if (q < 0)
                return q;
        if (n != 1)
                return kpa_error_set(err, EPROTO, "kpa-execd at %s sent no log file", r->path);
        *out_fd = fds[0];
        return 0;
}

int kpa_remote_find(kpa_remote *r, const char *app, const char *rc, kpa_token **out, size_t *n,
                    kpa_error *err)
{
        *out = NULL;
        *n = 0;
        json_object *req = kpa_request_new(KPA_OP_FIND, kpa_remote_next_id(r));
        json_object_object_add(req, "package", json_object_new_string(app));
        if (rc)
                json_object_object_add(req, "runConfig", json_object_new_string(rc));
        json_object *reply = NULL;
        int q = kpa_remote_call(r, req, NULL, 0, &reply, NULL, 0, NULL, err);
        _cleanup_(json_object_putp) json_object *o = reply;
        if (q < 0)
                return q;
        json_object *a = json_member(o, "tokens");
        if (!json_object_is_type(a, json_type_array))
                return kpa_error_set(err, EPROTO, "kpa-execd at %s sent no list of tokens",
                                     r->path);
        size_t count = json_object_array_length(a);
        _cleanup_free_ kpa_token *v = kpa_xcalloc(count ? count : 1, sizeof(*v));
        for (size_t i = 0; i < count; i++) {
                json_object *t = json_object_array_get_idx(a, i);
                if (!json_object_is_type(t, json_type_string) ||
                    kpa_token_from_string(json_object_get_string(t), &v[i]) < 0)
                        return kpa_error_set(err, EPROTO,
                                             "kpa-execd at %s sent a malformed reply: "
                                             "tokens[%zu] is not a token",
                                             r->path, i);
        }
        *out = TAKE_PTR(v);
        *n = count;
        return 0;
}

/* ---- the remote backend of kpa_control ---- */

static int remote_start(kpa_control *ctl, const char *pkg_id, const char *run_config_id,
                        const kpa_start_options *opts, kpa_token *out_token)
{
        return kpa_remote_start(ctl->remote, pkg_id, run_config_id, opts, out_token,
                                &ctl->last_error);
}

static int remote_stop(kpa_control *ctl, const kpa_token *token, kpa_stop_policy policy)
{
        return kpa_remote_stop(ctl->remote, token, policy, &ctl->last_error);
}

static int remote_get_state(kpa_control *ctl, const kpa_token *token, kpa_process_context *out)
{
        return kpa_remote_get_state(ctl->remote, token, out, &ctl->last_error);
}

static int remote_wait(kpa_control *ctl, const kpa_token *token, int timeout_ms,
                       kpa_process_context *out)
{
        return kpa_remote_wait(ctl->remote, token, timeout_ms, out, &ctl->last_error);
}

static int remote_list(kpa_control *ctl, kpa_token **out, size_t *n)
{
        return kpa_remote_list(ctl->remote, out, n, &ctl->last_error);
}

static int remote_list_contexts(kpa_control *ctl, kpa_token **tokens, kpa_process_context **ctxs,
                                size_t *n)
{
        return remote_list_parsed(ctl->remote, tokens, ctxs, n, &ctl->last_error);
}

static int remote_stop_all(kpa_control *ctl, kpa_stop_policy policy, size_t *stopped)
{
        return remote_stop_all_call(ctl->remote, policy, stopped, &ctl->last_error);
}

static int remote_open_log(kpa_control *ctl, const kpa_token *token, bool rotated, int *out_fd)
{
        return remote_open_log_call(ctl->remote, token, rotated, out_fd, &ctl->last_error);
}

static int remote_find(kpa_control *ctl, const char *app, const char *rc, kpa_token **out,
                       size_t *n)
{
        return kpa_remote_find(ctl->remote, app, rc, out, n, &ctl->last_error);
}

static int remote_package(kpa_control *ctl, const char *pkg_id, bool stop, bool restart,
                          kpa_package_notice *out)
{
        return kpa_remote_package(ctl->remote,
                                  stop ? KPA_OP_STOP_PACKAGE : KPA_OP_PACKAGE_INSTALLED, pkg_id,
                                  restart && !stop, out, &ctl->last_error);
}

/* a connection has no event loop of its own to offer */
static int remote_get_fd(kpa_control *ctl)
{
        return -EOPNOTSUPP;
}
static int remote_dispatch(kpa_control *ctl)
{
        return 0;
}

static void remote_close(kpa_control *ctl)
{
        kpa_remote_close(ctl->remote);
        free(ctl);
}

const control_ops client_remote_ops = {
        .start = remote_start,
        .stop = remote_stop,
        .get_state = remote_get_state,
        .wait = remote_wait,
        .list = remote_list,
        .list_contexts = remote_list_contexts,
        .stop_all = remote_stop_all,
        .open_log = remote_open_log,
        .find = remote_find,
        .package = remote_package,
        .get_fd = remote_get_fd,
        .dispatch = remote_dispatch,
        .close = remote_close,
};

kpa_remote *kpa_control_remote(kpa_control *ctl)
{
        return ctl->remote;
}

int kpa_control_connect(const char *socket_path, kpa_control **out, kpa_error *err)
{
        kpa_remote *r = NULL;
        int q = kpa_remote_connect(socket_path, &r, err);
        if (q < 0)
                return q;
        kpa_control *ctl = kpa_xcalloc(1, sizeof(*ctl));
        ctl->ops = &client_remote_ops;
        ctl->remote = r;
        ctl->epfd = ctl->timerfd = ctl->state_fd = -1;
        *out = ctl;
        return 0;
}
