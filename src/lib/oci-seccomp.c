/* oci-seccomp.c: an OCI config's linux.seccomp (the runtime-spec's form,
 * which podman and containerd write) built into a BPF program with
 * libseccomp, in the parent; the sandbox installs it instead of kpa's
 * default filter, last before exec, as it installs that one. Fields it
 * cannot honour (a notify listener, filter flags) are refused with their
 * JSON path. System call names this libseccomp does not know on these
 * architectures are left out, as runc and crun do: no process can make a
 * call its kernel lacks. */
#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "oci-config.h"
#include "util.h"

#define PROG_MAX_BYTES (BPF_MAXINSNS * sizeof(struct sock_filter))

static void ctx_releasep(scmp_filter_ctx *ctx)
{
        if (*ctx)
                seccomp_release(*ctx);
}

static int bad(kpa_error *err, const char *path, const char *what, const char *value)
{
        return kpa_error_set(err, EINVAL, "config.json: %s: %s%s%s%s", path, what,
                             value ? " \"" : "", value ? value : "", value ? "\"" : "");
}

static json_object *get(json_object *o, const char *key)
{
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* An action name (and its errno) as libseccomp's; 0 or -EINVAL. */
static int action_of(const char *name, json_object *errno_ret, uint32_t *out)
{
        int e = errno_ret ? json_object_get_int(errno_ret) : EPERM;
        static const struct {
                const char *name;
                uint32_t act;
        } acts[] = {{"SCMP_ACT_KILL", SCMP_ACT_KILL},
                    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL},
                    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS},
                    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP},
                    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW},
                    {"SCMP_ACT_LOG", SCMP_ACT_LOG}};
        if (strcmp(name, "SCMP_ACT_ERRNO") == 0) {
                *out = SCMP_ACT_ERRNO((uint32_t)e);
                return 0;
        }
        if (strcmp(name, "SCMP_ACT_TRACE") == 0) {
                *out = SCMP_ACT_TRACE((uint32_t)e);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(acts); i++)
                if (strcmp(acts[i].name, name) == 0) {
                        *out = acts[i].act;
                        return 0;
                }
        return -EINVAL;
}

static int op_of(const char *name, enum scmp_compare *out)
{
        static const struct {
                const char *name;
                enum scmp_compare op;
        } ops[] = {{"SCMP_CMP_NE", SCMP_CMP_NE},
                   {"SCMP_CMP_LT", SCMP_CMP_LT},
                   {"SCMP_CMP_LE", SCMP_CMP_LE},
                   {"SCMP_CMP_EQ", SCMP_CMP_EQ},
                   {"SCMP_CMP_GE", SCMP_CMP_GE},
                   {"SCMP_CMP_GT", SCMP_CMP_GT},
                   {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
        for (size_t i = 0; i < ELEMENTSOF(ops); i++)
                if (strcmp(ops[i].name, name) == 0) {
                        *out = ops[i].op;
                        return 0;
                }
        return -EINVAL;
}

static int add_arches(scmp_filter_ctx ctx, json_object *arches, kpa_error *err)
{
        for (size_t i = 0; arches && i < json_object_array_length(arches); i++) {
                const char *name = json_object_get_string(json_object_array_get_idx(arches, i));
                char lower[32];
                const char *s = name && strncmp(name, "SCMP_ARCH_", 10) == 0 ? name + 10 : "";
                size_t n = 0;
                for (; n < sizeof(lower) - 1 && s[n]; n++)
                        lower[n] = (char)tolower((unsigned char)s[n]);
                lower[n] = '\0';
                uint32_t arch = n ? seccomp_arch_resolve_name(lower) : 0;
                if (!arch)
                        return bad(err, "linux.seccomp.architectures", "unknown architecture",
                                   name);
                int r = seccomp_arch_add(ctx, arch);
                if (r < 0 && r != -EEXIST)
                        return kpa_error_set_errno(
                                err, -r, "config.json: linux.seccomp.architectures: %s", name);
        }
        return 0;
}

/* One syscalls[] entry: a rule per name (per argument, when two compare
 * the same argument: libseccomp takes one comparison per argument in a
 * rule, and the spec means them as alternatives then). */
static int add_entry(scmp_filter_ctx ctx, json_object *e, size_t idx, uint32_t def, kpa_error *err)
{
        char path[64];
        snprintf(path, sizeof(path), "linux.seccomp.syscalls[%zu]", idx);
        json_object *names = get(e, "names"), *action = get(e, "action"), *args = get(e, "args");
        json_object_object_foreach (e, key, val) {
                (void)val;
                if (!streq(key, "names") && !streq(key, "action") && !streq(key, "errnoRet") &&
                    !streq(key, "args") && !streq(key, "comment"))
                        return bad(err, path, "not supported:", key);
        }
        if (!json_object_is_type(names, json_type_array) ||
            !json_object_is_type(action, json_type_string))
                return bad(err, path, "needs names (an array) and an action", NULL);
        uint32_t act;
        if (action_of(json_object_get_string(action), get(e, "errnoRet"), &act) < 0)
                return bad(err, path, "action not supported:", json_object_get_string(action));
        if (act == def)
                return 0; /* what the default does already */
        size_t n_args = args ? json_object_array_length(args) : 0;
        if (n_args > 6)
                return bad(err, path, "more than 6 args", NULL);
        struct scmp_arg_cmp cmp[6];
        bool same_index = false;
        for (size_t i = 0; i < n_args; i++) {
                json_object *a = json_object_array_get_idx(args, i);
                enum scmp_compare op;
                if (op_of(json_object_get_string(get(a, "op")), &op) < 0)
                        return bad(err, path,
                                   "args: op not supported:", json_object_get_string(get(a, "op")));
                cmp[i] = (struct scmp_arg_cmp){
                        .arg = (unsigned)json_object_get_int(get(a, "index")),
                        .op = op,
                        .datum_a = json_object_get_uint64(get(a, "value")),
                        .datum_b = json_object_get_uint64(get(a, "valueTwo")),
                };
                if (cmp[i].arg > 5)
                        return bad(err, path, "args: index above 5", NULL);
                for (size_t j = 0; j < i; j++)
                        same_index |= cmp[j].arg == cmp[i].arg;
        }
        for (size_t k = 0; k < json_object_array_length(names); k++) {
                const char *name = json_object_get_string(json_object_array_get_idx(names, k));
                int nr = name ? seccomp_syscall_resolve_name(name) : __NR_SCMP_ERROR;
                if (nr == __NR_SCMP_ERROR)
                        continue; /* unknown here: nothing can call it */
                int r = 0;
                if (same_index)
                        for (size_t i = 0; i < n_args && r >= 0; i++)
                                r = seccomp_rule_add_array(ctx, act, nr, 1, &cmp[i]);
                else
                        r = seccomp_rule_add_array(ctx, act, nr, (unsigned)n_args, cmp);
                if (r < 0)
                        return kpa_error_set_errno(
                                err, -r, "config.json: %s: %s: cannot add the rule", path, name);
        }
        return 0;
}

static int export_prog(scmp_filter_ctx ctx, kpa_seccomp_prog *out, kpa_error *err)
{
        char *bpf = NULL;
        size_t len = 0;
        int r = kpa_seccomp_export(ctx, PROG_MAX_BYTES, &bpf, &len, err);
        if (r < 0)
                return kpa_error_prefix(err, "config.json: linux.seccomp");
        if (len == 0 || len % sizeof(struct sock_filter)) {
                free(bpf);
                return kpa_error_set(err, EINVAL, "seccomp filter of %zu bytes is malformed", len);
        }
        out->len = (unsigned short)(len / sizeof(struct sock_filter));
        out->filter = bpf;
        return 0;
}

int kpa_oci_seccomp_build(json_object *sc, kpa_seccomp_prog *out, kpa_error *err)
{
        *out = (kpa_seccomp_prog){0};
        if (!json_object_is_type(sc, json_type_object))
                return bad(err, "linux.seccomp", "must be an object", NULL);
        json_object_object_foreach (sc, key, val) {
                if (!streq(key, "defaultAction") && !streq(key, "defaultErrnoRet") &&
                    !streq(key, "architectures") && !streq(key, "syscalls") &&
                    !(streq(key, "flags") && json_object_is_type(val, json_type_array) &&
                      json_object_array_length(val) == 0))
                        return kpa_error_set(err, EINVAL,
                                             "config.json: linux.seccomp.%s: not supported", key);
        }
        json_object *def = get(sc, "defaultAction");
        uint32_t def_act;
        if (!def ||
            action_of(json_object_get_string(def), get(sc, "defaultErrnoRet"), &def_act) < 0)
                return bad(err, "linux.seccomp.defaultAction",
                           "missing or not supported:", def ? json_object_get_string(def) : NULL);
        _cleanup_(ctx_releasep) scmp_filter_ctx ctx = seccomp_init(def_act);
        if (!ctx)
                return kpa_error_set(err, ENOMEM, "seccomp_init failed");
        /* no_new_privs: the sandbox sets it itself, before the filter */
        int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
        if (r < 0)
                return kpa_error_set_errno(err, -r, "seccomp_attr_set");
        if ((r = add_arches(ctx, get(sc, "architectures"), err)) < 0)
                return r;
        json_object *calls = get(sc, "syscalls");
        if (calls && !json_object_is_type(calls, json_type_array))
                return bad(err, "linux.seccomp.syscalls", "must be an array", NULL);
        for (size_t i = 0; calls && i < json_object_array_length(calls); i++)
                if ((r = add_entry(ctx, json_object_array_get_idx(calls, i), i, def_act, err)) < 0)
                        return r;
        return export_prog(ctx, out, err);
}
