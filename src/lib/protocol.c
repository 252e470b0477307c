/* protocol.c: the kpa-execd wire protocol (see protocol.h for the format):
 * parsing requests strictly, building requests, replies and process
 * contexts, and moving one JSON datagram with its SCM_RIGHTS fds over a
 * SOCK_SEQPACKET socket. Requests come from peers the daemon does not trust,
 * so their parser refuses anything it does not know (unknown keys, wrong
 * types, control characters, oversized arrays) and never leaks an attached
 * fd. Replies and contexts come from the daemon, which a client trusts: their
 * readers check types but ignore keys they do not know, so that a newer
 * daemon may add fields without a protocol bump. What a request means (who
 * may do it, what it does) is the daemon's business, not this file's. */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "json-fields.h"
#include "json-strict.h"
#include "kpa/handle.h"
#include "protocol.h"
#include "util.h"

#define ARRAY_MAX 1024    /* args, env */
#define CPU_WEIGHT_MAX 10000
#define ERRNO_MAX 4095    /* the largest errno a reply may carry */

const char *kpa_execd_socket_path(const char *explicit_path)
{
        if (explicit_path)
                return explicit_path;
        const char *env = getenv(KPA_EXECD_SOCKET_ENV);
        return env && *env ? env : KPA_EXECD_SOCKET_DEFAULT;
}

static const char *const op_names[] = {
        [KPA_OP_INVALID] = "Invalid",
        [KPA_OP_VERSION] = "Version",
        [KPA_OP_START] = "StartProcess",
        [KPA_OP_STOP] = "StopProcess",
        [KPA_OP_GET_STATE] = "GetProcessState",
        [KPA_OP_WAIT] = "WaitProcess",
        [KPA_OP_LIST] = "ListProcesses",
        [KPA_OP_STOP_ALL] = "StopAll",
        [KPA_OP_SUBSCRIBE] = "Subscribe",
        [KPA_OP_OPEN_LOG] = "OpenLog",
        [KPA_OP_PACKAGE_INSTALLED] = "PackageInstalled",
        [KPA_OP_STOP_PACKAGE] = "StopPackage",
        [KPA_OP_FIND] = "FindProcesses",
};

const char *kpa_request_op_name(kpa_request_op op)
{
        return (unsigned)op < ELEMENTSOF(op_names) ? op_names[op] : "Invalid";
}

static const char *const policy_names[] = {[KPA_STOP_NORMAL] = "Normal",
                                           [KPA_STOP_FORCED] = "Forced"};
static const char *const network_names[] = {[KPA_START_NETWORK_DEFAULT] = "default",
                                            [KPA_START_NETWORK_NONE] = "none",
                                            [KPA_START_NETWORK_HOST] = "host"};

/* ---- parsing requests ---- */

/* Every field a request may have, read by json_read_fields() into this. */
struct request_fields {
        char *token, *policy, *package, *run_config, *parent, *network, *cwd;
        int64_t timeout_ms, memory, pids, cpu_weight, uid, gid, stop_timeout_ms;
        bool rotated, list_continue, restart;
};

static void request_fields_free(struct request_fields *f)
{
        free(f->token);
        free(f->policy);
        free(f->package);
        free(f->run_config);
        free(f->parent);
        free(f->network);
        free(f->cwd);
}

#define OP(x) (1u << (x))
#define OPS_WITH_TOKEN (OP(KPA_OP_STOP) | OP(KPA_OP_GET_STATE) | OP(KPA_OP_WAIT) | OP(KPA_OP_OPEN_LOG))
#define FIELD(k, kind, flags, member) \
        {k, kind, flags, offsetof(struct request_fields, member), NULL}
#define UNSTORED(k, kind) {k, kind, 0, JF_NO_STORE, NULL}

/* A field, the ops that take it and the ops that require it. */
static const struct request_field {
        struct json_field f;
        unsigned ops, required;
} request_fields[] = {
        {UNSTORED("op", JF_STRING), ~0u, 0},
        {UNSTORED("id", JF_INT), ~0u, 0},
        {FIELD("token", JF_STRING, 0, token), OPS_WITH_TOKEN, OPS_WITH_TOKEN},
        {FIELD("policy", JF_STRING, 0, policy), OP(KPA_OP_STOP) | OP(KPA_OP_STOP_ALL), 0},
        {FIELD("timeoutMs", JF_INT, 0, timeout_ms), OP(KPA_OP_WAIT), 0},
        {FIELD("rotated", JF_BOOL, 0, rotated), OP(KPA_OP_OPEN_LOG), 0},
        {FIELD("continue", JF_BOOL, 0, list_continue), OP(KPA_OP_LIST), 0},
        {FIELD("package", JF_STRING, JF_NONEMPTY, package),
         OP(KPA_OP_START) | OP(KPA_OP_PACKAGE_INSTALLED) | OP(KPA_OP_STOP_PACKAGE) |
                 OP(KPA_OP_FIND),
         OP(KPA_OP_START) | OP(KPA_OP_PACKAGE_INSTALLED) | OP(KPA_OP_STOP_PACKAGE) |
                 OP(KPA_OP_FIND)},
        {FIELD("restart", JF_BOOL, 0, restart), OP(KPA_OP_PACKAGE_INSTALLED), 0},
        {FIELD("runConfig", JF_STRING, JF_NONEMPTY, run_config), OP(KPA_OP_START) | OP(KPA_OP_FIND),
         0},
        {FIELD("parent", JF_STRING, 0, parent), OP(KPA_OP_START), 0},
        {UNSTORED("handles", JF_ARRAY), OP(KPA_OP_START), 0},
        {UNSTORED("args", JF_ARRAY), OP(KPA_OP_START), 0},
        {UNSTORED("env", JF_ARRAY), OP(KPA_OP_START), 0},
        {FIELD("memory", JF_INT, 0, memory), OP(KPA_OP_START), 0},
        {FIELD("pids", JF_INT, 0, pids), OP(KPA_OP_START), 0},
        {FIELD("cpuWeight", JF_INT, 0, cpu_weight), OP(KPA_OP_START), 0},
        {FIELD("network", JF_STRING, 0, network), OP(KPA_OP_START), 0},
        {FIELD("uid", JF_INT, 0, uid), OP(KPA_OP_START), 0},
        {FIELD("gid", JF_INT, 0, gid), OP(KPA_OP_START), 0},
        {FIELD("stopTimeoutMs", JF_INT, 0, stop_timeout_ms), OP(KPA_OP_START), 0},
        {FIELD("cwd", JF_STRING, JF_NONEMPTY, cwd), OP(KPA_OP_START), 0},
        {UNSTORED("binds", JF_ARRAY), OP(KPA_OP_START), 0},
};

/* The field table of OP into OUT (room for every field); returns its size. */
static size_t op_fields(kpa_request_op op, struct json_field *out)
{
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(request_fields); i++) {
                const struct request_field *rf = &request_fields[i];
                if (!(rf->ops & OP(op)))
                        continue;
                out[n] = rf->f;
                if (rf->required & OP(op))
                        out[n].flags |= JF_REQUIRED;
                n++;
        }
        return n;
}

static int parse_token(const struct json_ctx *c, const char *key, const char *s, kpa_token *out)
{
        if (kpa_token_from_string(s, out) == 0)
                return 0;
        _cleanup_free_ char *q = json_strict_quote(s, JSON_QUOTE_MAX);
        return json_bad(c, key, "%s is not a token (32 lowercase hexadecimal characters)", q);
}

static int int_in_range(const struct json_ctx *c, const char *key, int64_t v, int64_t min,
                        int64_t max)
{
        if (v >= min && v <= max)
                return 0;
        return json_bad(c, key, "%lld is out of range (%lld to %lld)", (long long)v,
                        (long long)min, (long long)max);
}

/* The JSON array KEY of OBJ (absent: 0 entries) as new strings in *OUT; each
 * passes CHECK. */
typedef int (*entry_check)(const struct json_ctx *c, const char *path, const char *s);

static int read_string_array(const struct json_ctx *c, json_object *obj, const char *key,
                             size_t max, entry_check check, char ***out, size_t *n_out)
{
        json_object *a = json_member(obj, key);
        *out = NULL;
        *n_out = 0;
        if (!a)
                return 0;
        size_t n = json_object_array_length(a);
        if (n > max)
                return json_bad(c, key, "has %zu entries; at most %zu are allowed", n, max);
        char **v = kpa_xcalloc(n + 1, sizeof(*v));
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(a, i);
                _cleanup_free_ char *path = json_strict_path_index(key, i);
                int r = json_want_type(c, path, e, json_type_string);
                if (r >= 0)
                        r = check(c, path, json_object_get_string(e));
                if (r < 0) {
                        kpa_strv_free(v);
                        return r;
                }
                v[i] = kpa_xstrdup(json_object_get_string(e));
        }
        *out = v;
        *n_out = n;
        return 0;
}

static int check_text(const struct json_ctx *c, const char *path, const char *s)
{
        if (!json_has_control(s))
                return 0;
        _cleanup_free_ char *q = json_strict_quote(s, JSON_QUOTE_MAX);
        return json_bad(c, path, "%s must not contain control characters", q);
}

static int check_env(const struct json_ctx *c, const char *path, const char *s)
{
        int r = check_text(c, path, s);
        if (r < 0)
                return r;
        const char *eq = strchr(s, '=');
        if (eq && eq != s)
                return 0;
        _cleanup_free_ char *q = json_strict_quote(s, JSON_QUOTE_MAX);
        return json_bad(c, path, "%s is not NAME=VALUE", q);
}

static int check_handle_name(const struct json_ctx *c, const char *path, const char *s)
{
        if (kpa_handle_name_valid(s))
                return 0;
        _cleanup_free_ char *q = json_strict_quote(s, JSON_QUOTE_MAX);
        return json_bad(c, path,
                        "%s is not a handle name (1-255 printable ASCII characters, no ':')", q);
}

/* "binds": [{"host": PATH, "inside": PATH, "writable": BOOL}, ...] into O
 * (kpa-execd lets root alone ask for them). */
struct bind_fields {
        char *host, *inside;
        bool writable;
};

static int parse_binds(const struct json_ctx *c, json_object *obj, kpa_start_options *o)
{
        static const struct json_field fields[] = {
                {"host", JF_STRING, JF_REQUIRED | JF_NONEMPTY, offsetof(struct bind_fields, host), NULL},
                {"inside", JF_STRING, JF_REQUIRED | JF_NONEMPTY,
                 offsetof(struct bind_fields, inside), NULL},
                {"writable", JF_BOOL, 0, offsetof(struct bind_fields, writable), NULL},
        };
        json_object *a = json_member(obj, "binds");
        if (!a)
                return 0;
        size_t n = json_object_array_length(a);
        if (n > ARRAY_MAX)
                return json_bad(c, "binds", "has %zu entries; at most %d are allowed", n, ARRAY_MAX);
        kpa_start_bind *b = kpa_xcalloc(n ? n : 1, sizeof(*b));
        o->binds = b; /* owned by the request from now on */
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(a, i);
                _cleanup_free_ char *path = json_strict_path_index("binds", i);
                struct bind_fields bf = {0};
                int r = json_want_type(c, path, e, json_type_object);
                if (r >= 0)
                        r = json_read_fields(c, e, path, fields, ELEMENTSOF(fields), &bf);
                if (r < 0) {
                        free(bf.host);
                        free(bf.inside);
                        return r;
                }
                b[i] = (kpa_start_bind){.host = bf.host, .inside = bf.inside, .writable = bf.writable};
                o->n_binds = i + 1;
        }
        return 0;
}

/* The StartProcess fields that go into OUT->opts (the scalars are in F). */
static int parse_start(const struct json_ctx *c, json_object *obj, struct request_fields *f,
                       size_t n_fds, kpa_request *out)
{
        kpa_start_options *o = &out->opts;
        int r;
        if (f->parent) {
                if ((r = parse_token(c, "parent", f->parent, &out->parent)) < 0)
                        return r;
                o->parent = &out->parent;
        }
        char **v;
        size_t n;
        if ((r = read_string_array(c, obj, "args", ARRAY_MAX, check_text, &v, &n)) < 0)
                return r;
        o->extra_args = (const char *const *)v;
        o->n_extra_args = n;
        if ((r = read_string_array(c, obj, "env", ARRAY_MAX, check_env, &v, &n)) < 0)
                return r;
        o->extra_env = (const char *const *)v;
        o->n_extra_env = n;
        if ((r = parse_binds(c, obj, o)) < 0)
                return r;
        o->cwd = TAKE_PTR(f->cwd);
        if ((r = read_string_array(c, obj, "handles", KPA_MSG_FDS_MAX, check_handle_name, &v,
                                   &n)) < 0)
                return r;
        if (n != n_fds) {
                kpa_strv_free(v);
                return json_bad(c, "handles", "%zu names for %zu attached file descriptors", n,
                                n_fds);
        }
        kpa_user_handle *h = kpa_xcalloc(n ? n : 1, sizeof(*h));
        for (size_t i = 0; i < n; i++) {
                h[i].name = v[i]; /* owned by the request from now on */
                h[i].fd = -1;     /* set once nothing can fail any more */
        }
        free(v);
        o->handles = h;
        o->n_handles = n;

        if ((r = int_in_range(c, "memory", f->memory, 0, INT64_MAX)) < 0 ||
            (r = int_in_range(c, "pids", f->pids, 0, INT64_MAX)) < 0 ||
            (r = int_in_range(c, "cpuWeight", f->cpu_weight, 0, CPU_WEIGHT_MAX)) < 0 ||
            (r = int_in_range(c, "uid", f->uid, -1, (int64_t)UINT32_MAX - 1)) < 0 ||
            (r = int_in_range(c, "gid", f->gid, -1, (int64_t)UINT32_MAX - 1)) < 0 ||
            (r = int_in_range(c, "stopTimeoutMs", f->stop_timeout_ms, 0, UINT_MAX)) < 0)
                return r;
        o->memory_bytes = (uint64_t)f->memory;
        o->pids = (uint64_t)f->pids;
        o->cpu_weight = (uint64_t)f->cpu_weight;
        o->uid = f->uid < 0 ? (uid_t)-1 : (uid_t)f->uid;
        o->gid = f->gid < 0 ? (gid_t)-1 : (gid_t)f->gid;
        o->stop_timeout_ms = (unsigned)f->stop_timeout_ms;
        if (f->network) {
                int i;
                if ((r = json_want_enum(c, "network", f->network, network_names,
                                        ELEMENTSOF(network_names), &i)) < 0)
                        return r;
                o->network = (kpa_network_mode_opt)i;
        }
        out->package = TAKE_PTR(f->package);
        out->run_config = TAKE_PTR(f->run_config);
        return 0;
}

/* The fields of OP (json_ctx C names it) from OBJ into OUT. */
static int parse_op_fields(const struct json_ctx *c, json_object *obj, size_t n_fds,
                           kpa_request *out)
{
        struct json_field fields[ELEMENTSOF(request_fields)];
        size_t n = op_fields(out->op, fields);
        _cleanup_(request_fields_free) struct request_fields f = {
                .timeout_ms = -1, .uid = -1, .gid = -1,
                .stop_timeout_ms = out->opts.stop_timeout_ms,
        };
        int r = json_read_fields(c, obj, "", fields, n, &f);
        if (r < 0)
                return r;
        if (out->op != KPA_OP_START && n_fds > 0)
                return json_bad(c, "", "%zu file descriptors attached; only StartProcess takes any",
                                n_fds);
        if (f.token) {
                if ((r = parse_token(c, "token", f.token, &out->token)) < 0)
                        return r;
                out->has_token = true;
        }
        if (f.policy) {
                int i;
                if ((r = json_want_enum(c, "policy", f.policy, policy_names,
                                        ELEMENTSOF(policy_names), &i)) < 0)
                        return r;
                out->policy = (kpa_stop_policy)i;
        }
        if ((r = int_in_range(c, "timeoutMs", f.timeout_ms, -1, INT_MAX)) < 0)
                return r;
        out->timeout_ms = (int)f.timeout_ms;
        out->rotated = f.rotated;
        out->list_continue = f.list_continue;
        out->restart = f.restart;
        if (out->op == KPA_OP_START)
                return parse_start(c, obj, &f, n_fds, out);
        out->package = TAKE_PTR(f.package);
        out->run_config = TAKE_PTR(f.run_config);
        return 0;
}

/* The JSON text into a tree: bad JSON is -EBADMSG, more than KPA_MSG_MAX
 * bytes -EMSGSIZE. */
static int parse_json(const char *buf, size_t len, const char *what, json_object **out,
                      kpa_error *err)
{
        *out = NULL;
        int r = json_strict_check(buf, len, KPA_MSG_MAX, err);
        if (r == -EFBIG)
                return kpa_error_set(err, EMSGSIZE, "%s: longer than %d bytes", what,
                                     KPA_MSG_MAX);
        if (r < 0) {
                if (err) {
                        err->code = EBADMSG;
                        kpa_error_prefix(err, "%s: invalid JSON", what);
                }
                return -EBADMSG;
        }
        struct json_tokener *tok = json_tokener_new_ex(JSON_STRICT_MAX_DEPTH + 1);
        if (!tok)
                return kpa_error_set(err, ENOMEM, "%s: out of memory", what);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        json_object *tree = json_tokener_parse_ex(tok, buf, (int)len);
        enum json_tokener_error e = json_tokener_get_error(tok);
        json_tokener_free(tok);
        if (e != json_tokener_success && e != json_tokener_continue) {
                json_object_put(tree);
                return kpa_error_set(err, EBADMSG, "%s: invalid JSON: %s", what,
                                     json_tokener_error_desc(e));
        }
        /* json_tokener_continue: a bare scalar, which json-c waits to see
         * the end of; json-strict has checked that it is whole */
        if (e != json_tokener_success || !json_object_is_type(tree, json_type_object)) {
                const char *type = e == json_tokener_success ? json_type_name(tree) : "a scalar";
                json_object_put(tree);
                return kpa_error_set(err, EINVAL, "%s: must be a JSON object, not %s", what,
                                     type);
        }
        *out = tree;
        return 0;
}

static int parse_request(const char *buf, size_t len, size_t n_fds, kpa_request *out,
                         kpa_error *err)
{
        _cleanup_(json_object_putp) json_object *obj = NULL;
        int r = parse_json(buf, len, "request", &obj, err);
        if (r < 0)
                return r;
        struct json_ctx c = {.file = "request", .err = err};
        json_object *id = json_member(obj, "id");
        if (id) {
                if ((r = json_want_type(&c, "id", id, json_type_int)) < 0)
                        return r;
                out->id = json_object_get_int64(id);
        }
        json_object *op = json_member(obj, "op");
        if (!op)
                return json_bad(&c, "", "missing required key \"op\"");
        if ((r = json_want_type(&c, "op", op, json_type_string)) < 0)
                return r;
        int i;
        if ((r = json_want_enum(&c, "op", json_object_get_string(op), op_names + 1,
                                ELEMENTSOF(op_names) - 1, &i)) < 0)
                return r;
        out->op = (kpa_request_op)(i + 1);
        c.file = op_names[out->op];
        return parse_op_fields(&c, obj, n_fds, out);
}

static void request_init(kpa_request *r)
{
        memset(r, 0, sizeof(*r));
        r->timeout_ms = -1;
        kpa_start_options_init(&r->opts);
}

int kpa_request_parse(const char *buf, size_t len, int *fds, size_t n_fds, kpa_request *out,
                      kpa_error *err)
{
        kpa_error_clear(err);
        request_init(out);
        int r = parse_request(buf, len, n_fds, out, err);
        if (r < 0) {
                int64_t id = out->id;
                kpa_request_free(out);
                out->id = id;
                kpa_close_fds(fds, n_fds);
                return r;
        }
        /* nothing fails from here on: the request takes the fds */
        kpa_user_handle *h = (kpa_user_handle *)out->opts.handles;
        for (size_t i = 0; i < n_fds; i++) {
                h[i].fd = fds[i];
                fds[i] = -1;
        }
        return 0;
}

void kpa_request_free(kpa_request *r)
{
        if (!r)
                return;
        kpa_user_handle *h = (kpa_user_handle *)r->opts.handles;
        for (size_t i = 0; h && i < r->opts.n_handles; i++) {
                if (h[i].fd >= 0)
                        close(h[i].fd);
                free((char *)h[i].name);
        }
        free(h);
        kpa_strv_free((char **)r->opts.extra_args);
        kpa_strv_free((char **)r->opts.extra_env);
        for (size_t i = 0; i < r->opts.n_binds; i++) {
                free((char *)r->opts.binds[i].host);
                free((char *)r->opts.binds[i].inside);
        }
        free((kpa_start_bind *)r->opts.binds);
        free((char *)r->opts.cwd);
        free(r->package);
        free(r->run_config);
        request_init(r);
}

/* ---- building requests and replies ---- */

json_object *kpa_request_new(kpa_request_op op, int64_t id)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "op", json_object_new_string(kpa_request_op_name(op)));
        json_object_object_add(o, "id", json_object_new_int64(id));
        return o;
}

static json_object *string_array(const char *const *v, size_t n)
{
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_string(v[i] ? v[i] : ""));
        return a;
}

json_object *kpa_request_start(int64_t id, const char *package, const char *run_config,
                               const kpa_start_options *opts)
{
        json_object *o = kpa_request_new(KPA_OP_START, id);
        json_object_object_add(o, "package", json_object_new_string(package ? package : ""));
        if (run_config)
                json_object_object_add(o, "runConfig", json_object_new_string(run_config));
        if (!opts)
                return o;
        if (opts->parent) {
                char tok[KPA_TOKEN_STRING_MAX];
                kpa_token_to_string(opts->parent, tok);
                json_object_object_add(o, "parent", json_object_new_string(tok));
        }
        if (opts->n_handles) {
                json_object *a = json_object_new_array();
                for (size_t i = 0; i < opts->n_handles; i++) {
                        const char *name = opts->handles[i].name;
                        json_object_array_add(a, json_object_new_string(name ? name : ""));
                }
                json_object_object_add(o, "handles", a);
        }
        if (opts->n_extra_args)
                json_object_object_add(o, "args",
                                       string_array(opts->extra_args, opts->n_extra_args));
        if (opts->n_extra_env)
                json_object_object_add(o, "env", string_array(opts->extra_env, opts->n_extra_env));
        if (opts->memory_bytes)
                json_object_object_add(o, "memory",
                                       json_object_new_int64((int64_t)opts->memory_bytes));
        if (opts->pids)
                json_object_object_add(o, "pids", json_object_new_int64((int64_t)opts->pids));
        if (opts->cpu_weight)
                json_object_object_add(o, "cpuWeight",
                                       json_object_new_int64((int64_t)opts->cpu_weight));
        if (opts->network != KPA_START_NETWORK_DEFAULT &&
            (unsigned)opts->network < ELEMENTSOF(network_names))
                json_object_object_add(o, "network",
                                       json_object_new_string(network_names[opts->network]));
        if (opts->uid != (uid_t)-1)
                json_object_object_add(o, "uid", json_object_new_int64(opts->uid));
        if (opts->gid != (gid_t)-1)
                json_object_object_add(o, "gid", json_object_new_int64(opts->gid));
        json_object_object_add(o, "stopTimeoutMs", json_object_new_int64(opts->stop_timeout_ms));
        if (opts->cwd)
                json_object_object_add(o, "cwd", json_object_new_string(opts->cwd));
        if (opts->n_binds) {
                json_object *a = json_object_new_array();
                for (size_t i = 0; i < opts->n_binds; i++) {
                        const kpa_start_bind *b = &opts->binds[i];
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "host", json_object_new_string(b->host));
                        json_object_object_add(e, "inside", json_object_new_string(b->inside));
                        json_object_object_add(e, "writable", json_object_new_boolean(b->writable));
                        json_object_array_add(a, e);
                }
                json_object_object_add(o, "binds", a);
        }
        return o;
}

static const char *errno_name(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
        return strerrorname_np(e);
#else
        (void)e;
        return NULL;
#endif
}

json_object *kpa_reply_new(int64_t id, int err, const char *message)
{
        if (err < 0)
                err = -err;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_int64(id));
        json_object_object_add(o, "error", json_object_new_int(err));
        const char *name = err ? errno_name(err) : NULL;
        if (name)
                json_object_object_add(o, "errorName", json_object_new_string(name));
        json_object_object_add(o, "message", json_object_new_string(message ? message : ""));
        return o;
}

int kpa_reply_error(json_object *reply, kpa_error *err)
{
        kpa_error_clear(err);
        if (!json_object_is_type(reply, json_type_object))
                return kpa_error_set(err, EBADMSG, "kpa-execd reply: not a JSON object");
        json_object *e = json_member(reply, "error");
        if (!e)
                return 0;
        if (!json_object_is_type(e, json_type_int))
                return kpa_error_set(err, EBADMSG, "kpa-execd reply: error: not an integer");
        int64_t code = json_object_get_int64(e);
        if (code == 0)
                return 0;
        if (code < 0 || code > ERRNO_MAX)
                return kpa_error_set(err, EBADMSG, "kpa-execd reply: error: %lld is not an errno",
                                     (long long)code);
        json_object *m = json_member(reply, "message");
        const char *msg = json_object_is_type(m, json_type_string) ? json_object_get_string(m) : "";
        return kpa_error_set(err, (int)code, "%s", *msg ? msg : strerror((int)code));
}

/* ---- process contexts ---- */

json_object *kpa_context_to_json(const kpa_token *t, const kpa_process_context *ctx, uid_t owner)
{
        char tok[KPA_TOKEN_STRING_MAX] = "";
        if (t)
                kpa_token_to_string(t, tok);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "token", json_object_new_string(tok));
        json_object_object_add(o, "state",
                               json_object_new_string(kpa_process_state_name(ctx->state)));
        json_object_object_add(o, "exitStatus",
                               json_object_new_string(kpa_exit_status_name(ctx->exit_status)));
        json_object_object_add(o, "exitCode", json_object_new_int(ctx->exit_code));
        json_object_object_add(o, "exitReason", json_object_new_int(ctx->exit_reason));
        json_object_object_add(o, "message", json_object_new_string(ctx->message));
        json_object_object_add(o, "pid", json_object_new_int(ctx->pid));
        json_object_object_add(o, "package", json_object_new_string(ctx->app_id));
        json_object_object_add(o, "runConfig", json_object_new_string(ctx->run_config_id));
        json_object_object_add(o, "cleanupError", json_object_new_int(ctx->cleanup_error));
        json_object_object_add(o, "owner", json_object_new_int64(owner));
        json_object_object_add(o, "appPid", json_object_new_int(ctx->app_pid));
        json_object_object_add(o, "startedAt", json_object_new_int64(ctx->started_at));
        json_object_object_add(o, "restarts", json_object_new_int64(ctx->restarts));
        json_object_object_add(o, "restartInMs", json_object_new_int64(ctx->restart_in_ms));
        json_object_object_add(o, "exitCause", json_object_new_string(ctx->exit_cause));
        if (ctx->last_failure.state != KPA_PROCESS_NONE) {
                json_object *f = json_object_new_object();
                json_object_object_add(
                        f, "state", json_object_new_string(kpa_process_state_name(ctx->last_failure.state)));
                json_object_object_add(f, "exitStatus",
                                       json_object_new_string(
                                               kpa_exit_status_name(ctx->last_failure.exit_status)));
                json_object_object_add(f, "exitCode", json_object_new_int(ctx->last_failure.exit_code));
                json_object_object_add(f, "exitReason",
                                       json_object_new_int(ctx->last_failure.exit_reason));
                json_object_object_add(f, "exitCause",
                                       json_object_new_string(ctx->last_failure.exit_cause));
                json_object_object_add(f, "message",
                                       json_object_new_string(ctx->last_failure.message));
                json_object_object_add(f, "at", json_object_new_int64(ctx->last_failure.at));
                json_object_object_add(o, "lastFailure", f);
        }
        return o;
}

/* The enum value of string KEY of O whose NAME_OF is the string; absent: 0. */
static int read_enum(const struct json_ctx *c, json_object *o, const char *key,
                     const char *(*name_of)(int), int n, int *out)
{
        json_object *v = json_member(o, key);
        *out = 0;
        if (!v)
                return 0;
        int r = json_want_type(c, key, v, json_type_string);
        if (r < 0)
                return r;
        for (int i = 0; i < n; i++)
                if (streq(name_of(i), json_object_get_string(v))) {
                        *out = i;
                        return 0;
                }
        _cleanup_free_ char *q = json_strict_quote(json_object_get_string(v), JSON_QUOTE_MAX);
        return json_bad(c, key, "%s is not a known name", q);
}

static const char *state_name(int s) { return kpa_process_state_name((kpa_process_state)s); }
static const char *status_name(int s) { return kpa_exit_status_name((kpa_exit_status)s); }

static int read_int(const struct json_ctx *c, json_object *o, const char *key, int min, int *out)
{
        json_object *v = json_member(o, key);
        *out = 0;
        if (!v)
                return 0;
        int r = json_want_type(c, key, v, json_type_int);
        if (r < 0)
                return r;
        int64_t x = json_object_get_int64(v);
        if ((r = int_in_range(c, key, x, min, INT_MAX)) < 0)
                return r;
        *out = (int)x;
        return 0;
}

static int read_int64(const struct json_ctx *c, json_object *o, const char *key, int64_t *out)
{
        json_object *v = json_member(o, key);
        *out = 0;
        if (!v)
                return 0;
        int r = json_want_type(c, key, v, json_type_int);
        if (r < 0)
                return r;
        *out = json_object_get_int64(v);
        return 0;
}

/* String KEY of O into BUF of SIZE bytes; TRUNCATE or refuse a longer one. */
static int read_string(const struct json_ctx *c, json_object *o, const char *key, char *buf,
                       size_t size, bool truncate)
{
        json_object *v = json_member(o, key);
        buf[0] = '\0';
        if (!v)
                return 0;
        int r = json_want_type(c, key, v, json_type_string);
        if (r < 0)
                return r;
        const char *s = json_object_get_string(v);
        if (strlen(s) >= size && !truncate)
                return json_bad(c, key, "longer than %zu bytes", size - 1);
        snprintf(buf, size, "%s", s);
        return 0;
}

int kpa_context_from_json(json_object *o, kpa_token *t, kpa_process_context *ctx, kpa_error *err)
{
        struct json_ctx c = {.file = "process context", .err = err};
        memset(ctx, 0, sizeof(*ctx));
        if (!json_object_is_type(o, json_type_object))
                return json_wrong_type(&c, "", "an object", o);
        json_object *tok = json_member(o, "token");
        int r, state, status;
        if (!tok)
                return json_bad(&c, "", "missing required key \"token\"");
        if ((r = json_want_type(&c, "token", tok, json_type_string)) < 0)
                return r;
        kpa_token parsed;
        if ((r = parse_token(&c, "token", json_object_get_string(tok), &parsed)) < 0)
                return r;
        if (!json_member(o, "state"))
                return json_bad(&c, "", "missing required key \"state\"");
        if ((r = read_enum(&c, o, "state", state_name, KPA_PROCESS_NOT_EXISTING + 1, &state)) < 0 ||
            (r = read_enum(&c, o, "exitStatus", status_name, KPA_EXIT_TERMINATED + 1, &status)) <
                    0 ||
            (r = read_int(&c, o, "exitCode", INT_MIN, &ctx->exit_code)) < 0 ||
            (r = read_int(&c, o, "exitReason", 0, &ctx->exit_reason)) < 0 ||
            (r = read_int(&c, o, "pid", 0, &ctx->pid)) < 0 ||
            (r = read_int(&c, o, "cleanupError", 0, &ctx->cleanup_error)) < 0 ||
            (r = read_string(&c, o, "message", ctx->message, sizeof(ctx->message), true)) < 0 ||
            (r = read_string(&c, o, "package", ctx->app_id, sizeof(ctx->app_id), false)) < 0 ||
            (r = read_string(&c, o, "runConfig", ctx->run_config_id, sizeof(ctx->run_config_id),
                             false)) < 0)
                return r;
        ctx->state = (kpa_process_state)state;
        ctx->exit_status = (kpa_exit_status)status;
        int restarts, restart_in;
        if ((r = read_int64(&c, o, "startedAt", &ctx->started_at)) < 0 ||
            (r = read_int(&c, o, "restarts", 0, &restarts)) < 0 ||
            (r = read_int(&c, o, "restartInMs", 0, &restart_in)) < 0 ||
            (r = read_int(&c, o, "appPid", 0, &ctx->app_pid)) < 0 ||
            (r = read_string(&c, o, "exitCause", ctx->exit_cause, sizeof(ctx->exit_cause), true)) <
                    0)
                return r;
        ctx->restarts = (unsigned)restarts;
        ctx->restart_in_ms = (unsigned)restart_in;
        int64_t owner = -1;
        if (json_member(o, "owner") && (r = read_int64(&c, o, "owner", &owner)) < 0)
                return r;
        ctx->owner = owner >= 0 && owner < (int64_t)UINT32_MAX ? (uid_t)owner : (uid_t)-1;
        json_object *f = json_member(o, "lastFailure");
        if (f) {
                struct json_ctx fc = {.file = "process context: lastFailure", .err = err};
                if (!json_object_is_type(f, json_type_object))
                        return json_wrong_type(&fc, "", "an object", f);
                if ((r = read_enum(&fc, f, "state", state_name, KPA_PROCESS_NOT_EXISTING + 1,
                                   &state)) < 0 ||
                    (r = read_enum(&fc, f, "exitStatus", status_name, KPA_EXIT_TERMINATED + 1,
                                   &status)) < 0 ||
                    (r = read_int(&fc, f, "exitCode", INT_MIN, &ctx->last_failure.exit_code)) < 0 ||
                    (r = read_int(&fc, f, "exitReason", 0, &ctx->last_failure.exit_reason)) < 0 ||
                    (r = read_string(&fc, f, "exitCause", ctx->last_failure.exit_cause,
                                     sizeof(ctx->last_failure.exit_cause), true)) < 0 ||
                    (r = read_string(&fc, f, "message", ctx->last_failure.message,
                                     sizeof(ctx->last_failure.message), true)) < 0 ||
                    (r = read_int64(&fc, f, "at", &ctx->last_failure.at)) < 0)
                        return r;
                ctx->last_failure.state = (kpa_process_state)state;
                ctx->last_failure.exit_status = (kpa_exit_status)status;
        }
        if (t)
                *t = parsed;
        return 0;
}

char *kpa_process_context_to_json(const kpa_token *t, const kpa_process_context *ctx)
{
        kpa_process_context full;
        kpa_process_context_init(&full);
        if (kpa_struct_in(&full, ctx, sizeof(full), "kpa_process_context", NULL) < 0) {
                errno = EINVAL;
                return NULL;
        }
        ctx = &full;
        _cleanup_(json_object_putp) json_object *o = kpa_context_to_json(t, ctx, ctx->owner);
        return kpa_xstrdup(json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* ---- datagrams ---- */

_Static_assert(KPA_MSG_FDS_MAX <= KPA_FDS_MAX, "a request's fds fit one message");

int kpa_msg_send(int sock, json_object *msg, const int *fds, size_t n_fds)
{
        size_t len = 0;
        const char *s = json_object_to_json_string_length(
                msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!s)
                return -ENOMEM;
        if (len > KPA_MSG_MAX || n_fds > KPA_MSG_FDS_MAX)
                return -EMSGSIZE;
        struct iovec iov = {.iov_base = (void *)s, .iov_len = len};
        ssize_t n = kpa_send_fds(sock, &iov, 1, fds, n_fds);
        if (n < 0)
                return (int)n;
        return (size_t)n == len ? 0 : -EMSGSIZE;
}

/* After a read of 0 bytes: the peer is gone (end of stream), or it sent an
 * empty datagram, which SOCK_SEQPACKET reports the same way. */
static bool peer_gone(int sock)
{
        struct pollfd p = {.fd = sock, .events = POLLIN | POLLRDHUP};
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP));
}

ssize_t kpa_msg_recv(int sock, char *buf, int *fds, size_t max_fds, size_t *n_fds)
{
        if (max_fds > KPA_MSG_FDS_MAX)
                max_fds = KPA_MSG_FDS_MAX;
        struct iovec iov = {.iov_base = buf, .iov_len = KPA_MSG_MAX};
        size_t kept = 0;
        int got[KPA_MSG_FDS_MAX];
        ssize_t n = kpa_recv_fds(sock, &iov, 1, got, fds && n_fds ? max_fds : 0, &kept);
        if (n_fds)
                *n_fds = 0;
        if (n < 0)
                return n;
        if (n == 0) {
                kpa_close_fds(got, kept);
                return kept == 0 && peer_gone(sock) ? 0 : -EBADMSG;
        }
        buf[n] = '\0';
        if (fds && kept) /* (none came when FDS is NULL: no room was given) */
                memcpy(fds, got, kept * sizeof(int));
        if (n_fds)
                *n_fds = kept;
        return n;
}

int kpa_msg_recv_json(int sock, json_object **out, int *fds, size_t max_fds, size_t *n_fds,
                      kpa_error *err)
{
        *out = NULL;
        if (n_fds)
                *n_fds = 0;
        _cleanup_free_ char *buf = kpa_xmalloc(KPA_MSG_MAX + 1);
        size_t n_got = 0;
        ssize_t n = kpa_msg_recv(sock, buf, fds, max_fds, &n_got);
        if (n == -EMSGSIZE)
                return kpa_error_set(err, EMSGSIZE,
                                     "message longer than %d bytes or with more than %zu file "
                                     "descriptors",
                                     KPA_MSG_MAX, max_fds);
        if (n < 0)
                return kpa_error_set_errno(err, (int)-n, "receiving a message");
        if (n == 0)
                return 0;
        int r = parse_json(buf, (size_t)n, "message", out, err);
        if (r < 0) {
                kpa_close_fds(fds, n_got);
                if (r == -EINVAL && err) /* not an object: as malformed as bad JSON here */
                        err->code = EBADMSG;
                return r == -EINVAL ? -EBADMSG : r;
        }
        if (n_fds)
                *n_fds = n_got;
        return (int)n;
}
