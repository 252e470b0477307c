/* oci-config.c: config.json (OCI runtime-spec 1.x) to kpa_instance_spec.
 * It owns the mapping of each field onto the one plan the sandbox runs
 * (sandbox.h) and the refusal of every field kpa cannot honour, with its
 * JSON path. It does not run anything: kpa-oci does (hooks, rlimits,
 * sysctls, the state). */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>

#include "oci-config.h"
#include "util.h"

#define CONFIG_MAX (4 * 1024 * 1024)
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void kpa_oci_config_free(kpa_oci_config *c)
{
        if (!c)
                return;
        kpa_instance_spec_free(c->spec);
        free(c->oci_version);
        json_object_put(c->hooks);
        json_object_put(c->annotations);
        json_object_put(c->sysctl);
        free(c->rlimits);
        free(c->cgroups_path);
        free(c->device_rules);
        for (size_t i = 0; i < c->n_ignored; i++)
                free(c->ignored[i]);
        free(c->ignored);
        free(c);
}

bool kpa_oci_id_valid(const char *id)
{
        size_t n = strlen(id);
        if (n == 0 || n > 1024 || id[0] == '.')
                return false;
        return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-") ==
               n;
}

static int refuse(kpa_error *err, const char *path, const char *fmt, ...) _printf_(3, 4);
static int refuse(kpa_error *err, const char *path, const char *fmt, ...)
{
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return kpa_error_set(err, EINVAL, "config.json: %s: %s", path, msg);
}

/* The keys that the runtime specification (1.2) gives each object that
 * kpa-oci reads, by JSON path with its indexes as []. A key that kpa-oci
 * does not honour is refused when the specification has it; one that it
 * does not have is ignored, as the specification asks ("MUST ignore
 * unknown properties"), and named in c->ignored for a warning. */
static const struct {
        const char *path;
        const char *keys[20];
} spec_keys[] = {
        {"(top level)",
         {"ociVersion", "process", "root", "hostname", "domainname", "mounts", "hooks",
          "annotations", "linux", "solaris", "windows", "vm", "zos"}},
        {"root", {"path", "readonly"}},
        {"mounts[]", {"destination", "source", "options", "type", "uidMappings", "gidMappings"}},
        {"process",
         {"terminal", "consoleSize", "cwd", "env", "args", "commandLine", "rlimits",
          "apparmorProfile", "capabilities", "noNewPrivileges", "oomScoreAdj", "scheduler",
          "selinuxLabel", "ioPriority", "execCPUAffinity", "user"}},
        {"process.consoleSize", {"height", "width"}},
        {"process.user", {"uid", "gid", "umask", "additionalGids", "username"}},
        {"process.capabilities", {"bounding", "effective", "inheritable", "permitted", "ambient"}},
        {"process.rlimits[]", {"type", "soft", "hard"}},
        {"hooks",
         {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
          "poststop"}},
        {"hooks.*[]", {"path", "args", "env", "timeout"}},
        {"linux",
         {"namespaces", "uidMappings", "gidMappings", "timeOffsets", "devices", "netDevices",
          "cgroupsPath", "rootfsPropagation", "seccomp", "sysctl", "resources", "intelRdt",
          "personality", "maskedPaths", "readonlyPaths", "mountLabel", "memoryPolicy"}},
        {"linux.namespaces[]", {"type", "path"}},
        {"linux.devices[]", {"path", "type", "major", "minor", "fileMode", "uid", "gid"}},
        {"linux.resources.devices[]", {"allow", "type", "major", "minor", "access"}},
        {"linux.resources",
         {"devices", "memory", "cpu", "blockIO", "hugepageLimits", "network", "pids", "rdma",
          "unified"}},
        {"linux.resources.memory",
         {"limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness", "disableOOMKiller",
          "useHierarchy", "checkBeforeUpdate"}},
        {"linux.resources.cpu",
         {"shares", "quota", "burst", "period", "realtimeRuntime", "realtimePeriod", "cpus", "mems",
          "idle"}},
        {"linux.resources.pids", {"limit"}},
};

/* Whether the specification has KEY in the object at PATH; true for an
 * object not in the table (kpa-oci refuses what it does not know there). */
static bool spec_has(const char *path, const char *key)
{
        char norm[128];
        size_t n = 0;
        for (const char *p = path; *p && n + 3 < sizeof(norm); p++) {
                norm[n++] = *p;
                if (*p == '[') { /* an index: [] */
                        while (p[1] && p[1] != ']')
                                p++;
                }
        }
        norm[n] = '\0';
        if (strncmp(norm, "hooks.", 6) == 0 && strchr(norm, '['))
                snprintf(norm, sizeof(norm), "hooks.*[]");
        for (size_t i = 0; i < ELEMENTSOF(spec_keys); i++) {
                if (strcmp(spec_keys[i].path, norm) != 0)
                        continue;
                for (size_t k = 0; spec_keys[i].keys[k]; k++)
                        if (strcmp(spec_keys[i].keys[k], key) == 0)
                                return true;
                return false;
        }
        return true;
}

/* Every key of OBJ must be in KNOWN (NULL-terminated), or be one that the
 * specification does not have (then ignored, and named in c->ignored). */
static int known_keys(kpa_oci_config *c, json_object *obj, const char *path,
                      const char *const *known, kpa_error *err)
{
        json_object_object_foreach (obj, key, val) {
                (void)val;
                bool ok = false;
                for (size_t i = 0; known[i] && !ok; i++)
                        ok = strcmp(known[i], key) == 0;
                if (ok)
                        continue;
                _cleanup_free_ char *name =
                        path[0] == '(' ? kpa_xstrdup(key) : kpa_xasprintf("%s.%s", path, key);
                if (spec_has(path, key))
                        return kpa_error_set(err, EINVAL, "config.json: %s: not supported", name);
                c->ignored = kpa_xrealloc(c->ignored, (c->n_ignored + 1) * sizeof(char *));
                c->ignored[c->n_ignored++] = TAKE_PTR(name);
        }
        return 0;
}

static int want(json_object *v, json_type t, const char *path, kpa_error *err)
{
        if (v && json_object_is_type(v, t))
                return 0;
        static const char *const names[] = {
                [json_type_null] = "null",        [json_type_boolean] = "a boolean",
                [json_type_double] = "a number",  [json_type_int] = "an integer",
                [json_type_object] = "an object", [json_type_array] = "an array",
                [json_type_string] = "a string"};
        return refuse(err, path, "must be %s", names[t]);
}

static json_object *member(json_object *o, const char *key)
{
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* A string member that is absent or empty. */
static int want_empty_string(json_object *o, const char *key, const char *path, kpa_error *err)
{
        json_object *v = member(o, key);
        if (!v)
                return 0;
        if (want(v, json_type_string, path, err) < 0)
                return -EINVAL;
        if (json_object_get_string_len(v) > 0)
                return refuse(err, path, "not supported (kpa has no %s)", key);
        return 0;
}

static int want_empty_array(json_object *o, const char *key, const char *path, kpa_error *err)
{
        json_object *v = member(o, key);
        if (!v || (json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0))
                return 0;
        if (json_object_is_type(v, json_type_object) && json_object_object_length(v) == 0)
                return 0;
        return refuse(err, path, "not supported");
}

static char **strv_from(json_object *arr, const char *path, kpa_error *err, int *r)
{
        *r = want(arr, json_type_array, path, err);
        if (*r < 0)
                return NULL;
        size_t n = json_object_array_length(arr);
        char **v = kpa_xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                json_object *s = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(s, json_type_string)) {
                        kpa_strv_free(v);
                        *r = refuse(err, path, "item %zu must be a string", i);
                        return NULL;
                }
                v[i] = kpa_xstrdup(json_object_get_string(s));
        }
        return v;
}

/* ---- process ---- */

static int parse_process(kpa_oci_config *c, json_object *p, int rootfd, kpa_error *err);

static const struct {
        const char *name;
        int resource;
} rlimit_names[] = {
        {"RLIMIT_AS", RLIMIT_AS},
        {"RLIMIT_CORE", RLIMIT_CORE},
        {"RLIMIT_CPU", RLIMIT_CPU},
        {"RLIMIT_DATA", RLIMIT_DATA},
        {"RLIMIT_FSIZE", RLIMIT_FSIZE},
        {"RLIMIT_LOCKS", RLIMIT_LOCKS},
        {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
        {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
        {"RLIMIT_NICE", RLIMIT_NICE},
        {"RLIMIT_NOFILE", RLIMIT_NOFILE},
        {"RLIMIT_NPROC", RLIMIT_NPROC},
        {"RLIMIT_RSS", RLIMIT_RSS},
        {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
        {"RLIMIT_RTTIME", RLIMIT_RTTIME},
        {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
        {"RLIMIT_STACK", RLIMIT_STACK},
};

static int parse_rlimits(kpa_oci_config *c, json_object *arr, kpa_error *err)
{
        if (want(arr, json_type_array, "process.rlimits", err) < 0)
                return -EINVAL;
        size_t n = json_object_array_length(arr);
        c->rlimits = kpa_xcalloc(n + 1, sizeof(*c->rlimits));
        for (size_t i = 0; i < n; i++) {
                char path[64];
                snprintf(path, sizeof(path), "process.rlimits[%zu]", i);
                json_object *o = json_object_array_get_idx(arr, i);
                static const char *const keys[] = {"type", "soft", "hard", NULL};
                if (want(o, json_type_object, path, err) < 0 ||
                    known_keys(c, o, path, keys, err) < 0)
                        return -EINVAL;
                json_object *t = member(o, "type"), *soft = member(o, "soft"),
                            *hard = member(o, "hard");
                if (want(t, json_type_string, path, err) < 0 ||
                    want(soft, json_type_int, path, err) < 0 ||
                    want(hard, json_type_int, path, err) < 0)
                        return -EINVAL;
                int res = -1;
                for (size_t k = 0; k < ELEMENTSOF(rlimit_names); k++)
                        if (strcmp(rlimit_names[k].name, json_object_get_string(t)) == 0)
                                res = rlimit_names[k].resource;
                if (res < 0)
                        return refuse(err, path, "type \"%s\": unknown", json_object_get_string(t));
                c->rlimits[c->n_rlimits++] = (kpa_oci_rlimit){
                        .resource = res,
                        .value = {.rlim_cur = (rlim_t)json_object_get_uint64(soft),
                                  .rlim_max = (rlim_t)json_object_get_uint64(hard)}};
        }
        return 0;
}

/* The five sets, each kept as asked (the orchestrator's grant; none asked:
 * none kept), once the kernel can give them as they are: a capability that
 * a set cannot hold (not in the bounding set, an effective one that is not
 * permitted, an ambient one that is not permitted and inheritable) is
 * refused here rather than failing in the container's child. */
static int parse_capabilities(kpa_oci_config *c, json_object *caps, kpa_error *err)
{
        static const char *const keys[] = {"bounding",  "effective", "inheritable",
                                           "permitted", "ambient",   NULL};
        if (want(caps, json_type_object, "process.capabilities", err) < 0 ||
            known_keys(c, caps, "process.capabilities", keys, err) < 0)
                return -EINVAL;
        kpa_caps_keep *k = c->spec->keep_caps;
        uint64_t *const sets[] = {&k->bounding, &k->effective, &k->inheritable, &k->permitted,
                                  &k->ambient};
        const char *names[64] = {0}; /* as the config spells them, for the messages */
        json_object_object_foreach (caps, set, arr) {
                char path[64];
                snprintf(path, sizeof(path), "process.capabilities.%s", set);
                size_t si = 0;
                while (keys[si] && strcmp(keys[si], set) != 0)
                        si++;
                if (!keys[si])
                        continue; /* not the specification's: ignored (known_keys) */
                if (want(arr, json_type_array, path, err) < 0)
                        return -EINVAL;
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        json_object *v = json_object_array_get_idx(arr, i);
                        char ipath[96];
                        snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
                        if (want(v, json_type_string, ipath, err) < 0)
                                return -EINVAL;
                        int cap = kpa_cap_from_name(json_object_get_string(v));
                        if (cap < 0)
                                return refuse(err, ipath,
                                              "\"%s\": not a capability this kernel knows",
                                              json_object_get_string(v));
                        /* one that kpa-oci lacks (a host that withholds it,
                         * as a container does): the container's process
                         * could not get it, and would fail after start */
                        if (prctl(PR_CAPBSET_READ, (unsigned long)cap, 0, 0, 0) == 0)
                                return refuse(err, ipath,
                                              "\"%s\": kpa-oci does not hold it (not in its "
                                              "own bounding set), so it cannot grant it",
                                              json_object_get_string(v));
                        *sets[si] |= UINT64_C(1) << cap;
                        names[cap] = json_object_get_string(v);
                }
        }
        const char *bad = NULL;
        int cap = 0;
        if (kpa_caps_keep_check(k, &bad, &cap) == 0)
                return 0;
        char path[64];
        snprintf(path, sizeof(path), "process.capabilities.%s", bad);
        const char *within = strcmp(bad, "effective") == 0 ? "the bounding and permitted sets"
                             : strcmp(bad, "ambient") == 0
                                     ? "the bounding, permitted and inheritable sets"
                                     : "the bounding set";
        return refuse(err, path, "%s is not in %s", names[cap], within);
}

static int parse_user(kpa_oci_config *c, json_object *user, kpa_error *err)
{
        static const char *const keys[] = {"uid",      "gid", "umask", "additionalGids",
                                           "username", NULL};
        if (want(user, json_type_object, "process.user", err) < 0 ||
            known_keys(c, user, "process.user", keys, err) < 0)
                return -EINVAL;
        json_object *uid = member(user, "uid"), *gid = member(user, "gid"),
                    *umask_v = member(user, "umask"), *groups = member(user, "additionalGids");
        if (want(uid, json_type_int, "process.user.uid", err) < 0 ||
            want(gid, json_type_int, "process.user.gid", err) < 0)
                return -EINVAL;
        c->spec->uid = (uid_t)json_object_get_int64(uid);
        c->spec->gid = (gid_t)json_object_get_int64(gid);
        if (umask_v) {
                if (want(umask_v, json_type_int, "process.user.umask", err) < 0)
                        return -EINVAL;
                c->has_umask = true;
                c->umask = (mode_t)json_object_get_int(umask_v) & 0777;
        }
        if (want_empty_string(user, "username", "process.user.username", err) < 0)
                return -EINVAL;
        if (!groups)
                return 0;
        if (want(groups, json_type_array, "process.user.additionalGids", err) < 0)
                return -EINVAL;
        /* kpa drops supplementary groups; the primary group is kept anyway */
        for (size_t i = 0; i < json_object_array_length(groups); i++)
                if ((gid_t)json_object_get_int64(json_object_array_get_idx(groups, i)) !=
                    c->spec->gid)
                        return refuse(err, "process.user.additionalGids",
                                      "supplementary groups are not supported (kpa drops them)");
        return 0;
}

/* PATH resolved inside the directory ROOTFD as if it were /, following
 * symbolic links there (an absolute target starts again at ROOTFD, ".."
 * stops at it), into *ST: openat2's RESOLVE_IN_ROOT, for kernels (and
 * valgrind) without it. 0 or -errno. */
static int stat_in_root(int rootfd, const char *path, struct stat *st)
{
        char done[PATH_MAX] = "."; /* resolved so far, relative to ROOTFD, no links */
        char todo[PATH_MAX];
        snprintf(todo, sizeof(todo), "%s", path);
        int hops = 0;
        char *rest = todo;
        while (*rest) {
                while (*rest == '/')
                        rest++;
                if (!*rest)
                        break;
                char *slash = strchr(rest, '/');
                size_t len = slash ? (size_t)(slash - rest) : strlen(rest);
                char name[NAME_MAX + 1];
                if (len > NAME_MAX)
                        return -ENAMETOOLONG;
                memcpy(name, rest, len);
                name[len] = '\0';
                rest += len;
                if (strcmp(name, ".") == 0)
                        continue;
                if (strcmp(name, "..") == 0) {
                        char *last = strrchr(done, '/');
                        if (last)
                                *last = '\0';
                        continue;
                }
                size_t dl = strlen(done);
                if (dl + 1 + len >= sizeof(done))
                        return -ENAMETOOLONG;
                snprintf(done + dl, sizeof(done) - dl, "/%s", name);
                if (fstatat(rootfd, done, st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (!S_ISLNK(st->st_mode))
                        continue;
                if (++hops > 40)
                        return -ELOOP;
                char target[PATH_MAX];
                ssize_t n = readlinkat(rootfd, done, target, sizeof(target) - 1);
                if (n < 0)
                        return -errno;
                target[n] = '\0';
                done[dl] = '\0'; /* the link's directory */
                if (target[0] == '/')
                        snprintf(done, sizeof(done), ".");
                char next[PATH_MAX];
                if ((size_t)snprintf(next, sizeof(next), "%s%s", target, rest) >= sizeof(next))
                        return -ENAMETOOLONG;
                memcpy(todo, next, sizeof(next));
                rest = todo;
        }
        return fstatat(rootfd, done, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* ARGV[0] inside the rootfs, looked up in PATH from ENVP as execvp would;
 * resolved with RESOLVE_IN_ROOT, so that the image's symlinks stay in it. */
static int find_program(int rootfd, char **envp, const char *prog, char **out, kpa_error *err)
{
        const char *path = DEFAULT_PATH;
        for (size_t i = 0; envp && envp[i]; i++)
                if (strncmp(envp[i], "PATH=", 5) == 0)
                        path = envp[i] + 5;
        _cleanup_free_ char *dirs = kpa_xstrdup(strchr(prog, '/') ? "" : path);
        char *save = NULL;
        for (char *d = strtok_r(dirs, ":", &save); d || strchr(prog, '/');
             d = strtok_r(NULL, ":", &save)) {
                _cleanup_free_ char *cand =
                        strchr(prog, '/') ? kpa_xstrdup(prog) : kpa_xasprintf("%s/%s", d, prog);
                struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
                _cleanup_close_ int fd = (int)syscall(SYS_openat2, rootfd, cand, &how, sizeof(how));
                struct stat st;
                bool found = fd >= 0 ? fstat(fd, &st) == 0
                                     : (errno == ENOSYS || errno == EPERM) &&
                                               stat_in_root(rootfd, cand, &st) == 0;
                if (found && S_ISREG(st.st_mode) && (st.st_mode & 0111)) {
                        *out = TAKE_PTR(cand);
                        return 0;
                }
                if (strchr(prog, '/'))
                        break;
        }
        return kpa_error_set(err, ENOENT,
                             "config.json: process.args[0]: \"%s\": no such executable in the "
                             "container's root%s",
                             prog, strchr(prog, '/') ? "" : " (looked up in its PATH)");
}

int kpa_oci_process_parse(kpa_oci_config *c, json_object *p, int rootfd, kpa_error *err)
{
        kpa_instance_spec *s = c->spec;
        kpa_strv_free(s->argv);
        kpa_strv_free(s->envp);
        free(s->cwd);
        free(s->exec_path);
        free(c->rlimits);
        s->argv = s->envp = NULL;
        s->cwd = s->exec_path = NULL;
        c->rlimits = NULL;
        c->n_rlimits = 0;
        *s->keep_caps = (kpa_caps_keep){0};
        s->uid = 0;
        s->gid = 0;
        c->has_umask = c->has_oom_score_adj = false;
        return parse_process(c, p, rootfd, err);
}

static int parse_process(kpa_oci_config *c, json_object *p, int rootfd, kpa_error *err)
{
        static const char *const keys[] = {"terminal",
                                           "consoleSize",
                                           "user",
                                           "args",
                                           "env",
                                           "cwd",
                                           "capabilities",
                                           "rlimits",
                                           "noNewPrivileges",
                                           "apparmorProfile",
                                           "oomScoreAdj",
                                           "selinuxLabel",
                                           NULL};
        if (want(p, json_type_object, "process", err) < 0 ||
            known_keys(c, p, "process", keys, err) < 0)
                return -EINVAL;
        kpa_instance_spec *spec = c->spec;
        json_object *term = member(p, "terminal"), *size = member(p, "consoleSize");
        if (term && want(term, json_type_boolean, "process.terminal", err) < 0)
                return -EINVAL;
        /* a pty of the container's own devpts (its /dev/ptmx), whose
         * master kpa-oci sends to the console socket */
        spec->tty = term && json_object_get_boolean(term);
        if (size) {
                static const char *const sk[] = {"height", "width", NULL};
                if (want(size, json_type_object, "process.consoleSize", err) < 0 ||
                    known_keys(c, size, "process.consoleSize", sk, err) < 0)
                        return -EINVAL;
                spec->tty_rows = (unsigned short)json_object_get_int(member(size, "height"));
                spec->tty_cols = (unsigned short)json_object_get_int(member(size, "width"));
        }
        int r;
        json_object *args = member(p, "args");
        if (!args)
                return refuse(err, "process.args", "required");
        spec->argv = strv_from(args, "process.args", err, &r);
        if (r < 0)
                return r;
        if (!spec->argv[0])
                return refuse(err, "process.args", "must not be empty");
        if (member(p, "env")) {
                spec->envp = strv_from(member(p, "env"), "process.env", err, &r);
                if (r < 0)
                        return r;
        } else {
                spec->envp = kpa_xcalloc(1, sizeof(char *));
        }
        json_object *cwd = member(p, "cwd");
        if (!cwd)
                return refuse(err, "process.cwd", "required");
        if (want(cwd, json_type_string, "process.cwd", err) < 0)
                return -EINVAL;
        if (json_object_get_string(cwd)[0] != '/')
                return refuse(err, "process.cwd", "must be an absolute path");
        spec->cwd = kpa_xstrdup(json_object_get_string(cwd));
        if (member(p, "user") && parse_user(c, member(p, "user"), err) < 0)
                return -EINVAL;
        if (member(p, "capabilities") && parse_capabilities(c, member(p, "capabilities"), err) < 0)
                return -EINVAL;
        if (member(p, "rlimits") && parse_rlimits(c, member(p, "rlimits"), err) < 0)
                return -EINVAL;
        json_object *nnp = member(p, "noNewPrivileges");
        if (nnp && want(nnp, json_type_boolean, "process.noNewPrivileges", err) < 0)
                return -EINVAL;
        spec->keep_caps->no_new_privs = nnp && json_object_get_boolean(nnp);
        json_object *oom = member(p, "oomScoreAdj");
        if (oom) {
                if (want(oom, json_type_int, "process.oomScoreAdj", err) < 0)
                        return -EINVAL;
                c->has_oom_score_adj = true;
                c->oom_score_adj = json_object_get_int(oom);
        }
        if (want_empty_string(p, "apparmorProfile", "process.apparmorProfile", err) < 0 ||
            want_empty_string(p, "selinuxLabel", "process.selinuxLabel", err) < 0)
                return -EINVAL;
        return find_program(rootfd, spec->envp, spec->argv[0], &spec->exec_path, err);
}

/* ---- mounts ---- */

static const struct {
        const char *name;
        unsigned long flag;
} mount_flags[] = {
        {"ro", MS_RDONLY},
        {"rw", 0},
        {"nosuid", MS_NOSUID},
        {"nodev", MS_NODEV},
        {"noexec", MS_NOEXEC},
        {"relatime", MS_RELATIME},
        {"strictatime", MS_STRICTATIME},
        {"noatime", MS_NOATIME},
        {"nodiratime", MS_NODIRATIME},
        {"private", 0},
        {"rprivate", 0},
        {"bind", 0},
        {"rbind", 0},
};

static const char *const fs_types[] = {"proc",   "tmpfs",  "sysfs",   "devpts",
                                       "mqueue", "cgroup", "cgroup2", NULL};

static int parse_mount(kpa_oci_config *c, json_object *m, size_t idx, const char *bundle,
                       kpa_error *err)
{
        char path[64];
        snprintf(path, sizeof(path), "mounts[%zu]", idx);
        static const char *const keys[] = {"destination", "type", "source", "options", NULL};
        if (want(m, json_type_object, path, err) < 0 || known_keys(c, m, path, keys, err) < 0)
                return -EINVAL;
        json_object *dst = member(m, "destination"), *type = member(m, "type"),
                    *src = member(m, "source"), *opts = member(m, "options");
        char p2[96];
        snprintf(p2, sizeof(p2), "%s.destination", path);
        if (want(dst, json_type_string, p2, err) < 0)
                return -EINVAL;
        const char *target = json_object_get_string(dst);
        if (target[0] != '/' || strstr(target, "/../") ||
            (strlen(target) >= 3 && strcmp(target + strlen(target) - 3, "/..") == 0))
                return refuse(err, p2, "\"%s\" must be an absolute path without \"..\"", target);
        const char *t = type ? json_object_get_string(type) : "";
        unsigned long flags = 0;
        bool bind = strcmp(t, "bind") == 0;
        _cleanup_free_ char *data = kpa_xstrdup("");
        snprintf(p2, sizeof(p2), "%s.options", path);
        int r;
        _cleanup_strv_free_ char **ov =
                opts ? strv_from(opts, p2, err, &r) : kpa_xcalloc(1, sizeof(char *));
        if (opts && r < 0)
                return r;
        for (size_t i = 0; ov[i]; i++) {
                bool known = false;
                for (size_t k = 0; k < ELEMENTSOF(mount_flags) && !known; k++)
                        if (strcmp(mount_flags[k].name, ov[i]) == 0) {
                                known = true;
                                flags |= mount_flags[k].flag;
                        }
                if (strcmp(ov[i], "bind") == 0 || strcmp(ov[i], "rbind") == 0)
                        bind = true;
                if (known)
                        continue;
                if (strcmp(ov[i], "shared") == 0 || strcmp(ov[i], "rshared") == 0 ||
                    strcmp(ov[i], "slave") == 0 || strcmp(ov[i], "rslave") == 0 ||
                    strcmp(ov[i], "unbindable") == 0 || strcmp(ov[i], "runbindable") == 0)
                        return refuse(err, p2, "\"%s\": only private propagation is supported",
                                      ov[i]);
                if (strcmp(ov[i], "suid") == 0 || strcmp(ov[i], "dev") == 0 ||
                    strcmp(ov[i], "exec") == 0 || strcmp(ov[i], "tmpcopyup") == 0 ||
                    strncmp(ov[i], "idmap", 5) == 0 || strncmp(ov[i], "rro", 3) == 0)
                        return refuse(err, p2, "\"%s\": not supported", ov[i]);
                /* file system data (mode=, size=, newinstance...) */
                size_t len = strlen(data);
                data = kpa_xrealloc(data, len + strlen(ov[i]) + 2);
                sprintf(data + len, "%s%s", len ? "," : "", ov[i]);
        }
        snprintf(p2, sizeof(p2), "%s.source", path);
        if (bind) {
                if (data[0])
                        return refuse(err, p2, "bind mount option \"%s\": not supported", data);
                if (want(src, json_type_string, p2, err) < 0)
                        return -EINVAL;
                const char *s = json_object_get_string(src);
                _cleanup_free_ char *host =
                        s[0] == '/' ? kpa_xstrdup(s) : kpa_xasprintf("%s/%s", bundle, s);
                kpa_instance_spec_add_mount(
                        c->spec, flags & MS_RDONLY ? KPA_MOUNT_BIND_RO : KPA_MOUNT_BIND_RW, host,
                        -1, target, false);
                c->spec->mounts[c->spec->n_mounts - 1].flags = flags & MS_NOEXEC;
                return 0;
        }
        bool ok = false;
        for (size_t k = 0; fs_types[k] && !ok; k++)
                ok = strcmp(fs_types[k], t) == 0;
        snprintf(p2, sizeof(p2), "%s.type", path);
        if (!ok)
                return refuse(err, p2, "\"%s\": not supported (bind, %s)", t,
                              "proc, tmpfs, sysfs, devpts, mqueue, cgroup, cgroup2");
        const char *source =
                src && json_object_is_type(src, json_type_string) ? json_object_get_string(src) : t;
        /* the cgroup file system is the unified (v2) hierarchy, read-only,
         * seen from the instance's cgroup namespace */
        bool cg = strncmp(t, "cgroup", 6) == 0;
        kpa_instance_spec_add_mount(c->spec, KPA_MOUNT_FS, cg ? "cgroup2" : source, -1, target,
                                    false);
        kpa_mount_op *op = &c->spec->mounts[c->spec->n_mounts - 1];
        op->fstype = kpa_xstrdup(cg ? "cgroup2" : t);
        op->flags = flags | (cg ? MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC : 0);
        op->data = cg || !data[0] ? NULL : TAKE_PTR(data);
        return 0;
}

static int parse_paths(kpa_oci_config *c, json_object *arr, const char *path, kpa_mount_kind kind,
                       kpa_error *err)
{
        int r;
        _cleanup_strv_free_ char **v = strv_from(arr, path, err, &r);
        if (r < 0)
                return r;
        for (size_t i = 0; v[i]; i++) {
                if (v[i][0] != '/')
                        return refuse(err, path, "\"%s\" must be an absolute path", v[i]);
                kpa_instance_spec_add_mount(c->spec, kind, NULL, -1, v[i], true);
        }
        return 0;
}

/* ---- linux ---- */

static int parse_namespaces(kpa_oci_config *c, json_object *arr, kpa_error *err)
{
        if (want(arr, json_type_array, "linux.namespaces", err) < 0)
                return -EINVAL;
        bool seen_pid = false, seen_mnt = false, seen_ipc = false, seen_uts = false;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                char path[64];
                snprintf(path, sizeof(path), "linux.namespaces[%zu]", i);
                json_object *o = json_object_array_get_idx(arr, i);
                static const char *const keys[] = {"type", "path", NULL};
                if (want(o, json_type_object, path, err) < 0 ||
                    known_keys(c, o, path, keys, err) < 0 ||
                    want(member(o, "type"), json_type_string, path, err) < 0)
                        return -EINVAL;
                const char *t = json_object_get_string(member(o, "type"));
                json_object *p = member(o, "path");
                const char *ns_path = p ? json_object_get_string(p) : "";
                if (strcmp(t, "network") == 0) {
                        if (ns_path[0] && ns_path[0] != '/')
                                return refuse(err, path, "path \"%s\" must be absolute", ns_path);
                        c->spec->new_net = !ns_path[0];
                        if (ns_path[0])
                                c->spec->netns_path = kpa_xstrdup(ns_path);
                        continue;
                }
                bool *seen = strcmp(t, "pid") == 0     ? &seen_pid
                             : strcmp(t, "mount") == 0 ? &seen_mnt
                             : strcmp(t, "ipc") == 0   ? &seen_ipc
                             : strcmp(t, "uts") == 0   ? &seen_uts
                                                       : NULL;
                if (!seen && strcmp(t, "cgroup") != 0)
                        return refuse(err, path, "type \"%s\": not supported", t);
                if (ns_path[0] && ns_path[0] != '/')
                        return refuse(err, path, "path \"%s\" must be absolute", ns_path);
                if (ns_path[0] && seen == &seen_ipc)
                        c->spec->ipcns_path = kpa_xstrdup(ns_path);
                else if (ns_path[0] && seen == &seen_uts)
                        c->spec->utsns_path = kpa_xstrdup(ns_path);
                else if (ns_path[0] && seen == &seen_pid)
                        c->spec->pidns_path = kpa_xstrdup(ns_path);
                else if (ns_path[0])
                        return refuse(err, path,
                                      "joining a %s namespace is not supported "
                                      "(network, pid, ipc and uts only)",
                                      t);
                if (seen)
                        *seen = true;
        }
        if (!seen_pid || !seen_mnt || !seen_ipc || !seen_uts)
                return refuse(err, "linux.namespaces",
                              "kpa always makes new pid, mount, ipc and uts namespaces; "
                              "sharing the host's is not supported");
        return 0;
}

/* A device rule's major or minor: a number, or absent or -1 for any. */
static int rule_number(json_object *o, const char *key, const char *path, int64_t *out,
                       kpa_error *err)
{
        json_object *v = member(o, key);
        *out = v ? json_object_get_int64(v) : -1;
        if (v && (!json_object_is_type(v, json_type_int) || *out < -1 || *out > INT32_MAX))
                return refuse(err, path, "%s must be a number (-1 or absent: any)", key);
        return 0;
}

/* linux.resources.devices: the rules, in order, kept in the config's
 * policy after the default list and the linux.devices nodes (see
 * device_policy()). */
static int parse_device_rules(kpa_oci_config *c, json_object *arr, kpa_error *err)
{
        if (want(arr, json_type_array, "linux.resources.devices", err) < 0)
                return -EINVAL;
        size_t n = json_object_array_length(arr);
        c->device_rules = kpa_xcalloc(n + 1, sizeof(*c->device_rules));
        for (size_t i = 0; i < n; i++) {
                char path[64];
                snprintf(path, sizeof(path), "linux.resources.devices[%zu]", i);
                json_object *o = json_object_array_get_idx(arr, i);
                static const char *const keys[] = {"allow", "type",   "major",
                                                   "minor", "access", NULL};
                if (want(o, json_type_object, path, err) < 0 ||
                    known_keys(c, o, path, keys, err) < 0)
                        return -EINVAL;
                if (!json_object_is_type(member(o, "allow"), json_type_boolean))
                        return refuse(err, path, "allow must be true or false");
                json_object *type = member(o, "type"), *access = member(o, "access");
                if ((type && want(type, json_type_string, path, err) < 0) ||
                    (access && want(access, json_type_string, path, err) < 0))
                        return -EINVAL;
                const char *t = type ? json_object_get_string(type) : "a";
                const char *a = access ? json_object_get_string(access) : "rwm";
                kpa_cgroup_device_rule r = {.allow = json_object_get_boolean(member(o, "allow")),
                                            .type = (char)(strlen(t) == 1 ? t[0] : '?')};
                if (strlen(a) >= sizeof(r.access))
                        return refuse(err, path, "access \"%s\" is not made of r, w and m", a);
                snprintf(r.access, sizeof(r.access), "%s", a[0] ? a : "rwm");
                if (rule_number(o, "major", path, &r.major, err) < 0 ||
                    rule_number(o, "minor", path, &r.minor, err) < 0)
                        return -EINVAL;
                kpa_error e = {0};
                if (kpa_cgroup_device_rule_check(&r, &e) < 0)
                        return refuse(err, path, "%s (type \"%s\")", e.message, t);
                c->device_rules[c->n_device_rules++] = r;
        }
        return 0;
}

/* The runtime's default device list, as runc's and crun's: mknod of any
 * node, and null, zero, full, random, urandom, tty, console, ptmx and the
 * pseudo-terminals. */
static const char *const default_devices[] = {"c *:* m",   "b *:* m",   "c 1:3 rwm",  "c 1:5 rwm",
                                              "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",  "c 5:0 rwm",
                                              "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"};

/* The container's device policy: every device denied, then the default
 * list, an allow rule for each linux.devices node, and the rules of
 * linux.resources.devices in order, without their leading deny-all rules
 * (containerd's and docker's specs begin with one: the policy's start
 * already says it, and after the default list it would take that away). */
static void device_policy(kpa_oci_config *c)
{
        kpa_cgroup_limits *lim = &c->spec->limits;
        size_t n = ELEMENTSOF(default_devices) + c->spec->n_mounts + c->n_device_rules;
        lim->devices = kpa_xcalloc(n, sizeof(*lim->devices));
        for (size_t i = 0; i < ELEMENTSOF(default_devices); i++)
                (void)kpa_cgroup_device_rule_parse(default_devices[i], true,
                                                   &lim->devices[lim->n_devices++], NULL);
        for (size_t i = 0; i < c->spec->n_mounts; i++) {
                const kpa_mount_op *op = &c->spec->mounts[i];
                if (op->kind != KPA_MOUNT_DEVICE || S_ISFIFO(op->mode))
                        continue;
                lim->devices[lim->n_devices++] = (kpa_cgroup_device_rule){
                        .allow = true,
                        .type = S_ISBLK(op->mode) ? 'b' : 'c',
                        .major = major(op->rdev),
                        .minor = minor(op->rdev),
                        .access = "rwm",
                };
        }
        size_t first = 0;
        while (first < c->n_device_rules && !c->device_rules[first].allow &&
               c->device_rules[first].type == 'a' && c->device_rules[first].major < 0 &&
               c->device_rules[first].minor < 0 && streq(c->device_rules[first].access, "rwm"))
                first++;
        for (size_t i = first; i < c->n_device_rules; i++)
                lim->devices[lim->n_devices++] = c->device_rules[i];
}

static int parse_resources(kpa_oci_config *c, json_object *res, kpa_error *err)
{
        static const char *const keys[] = {
                "memory",         "pids",    "cpu",  "devices", "blockIO",
                "hugepageLimits", "network", "rdma", "unified", NULL};
        if (want(res, json_type_object, "linux.resources", err) < 0 ||
            known_keys(c, res, "linux.resources", keys, err) < 0)
                return -EINVAL;
        kpa_cgroup_limits *lim = &c->spec->limits;
        json_object *mem = member(res, "memory");
        if (mem) {
                static const char *const mk[] = {"limit", "swap", "reservation", "disableOOMKiller",
                                                 NULL};
                if (want(mem, json_type_object, "linux.resources.memory", err) < 0 ||
                    known_keys(c, mem, "linux.resources.memory", mk, err) < 0)
                        return -EINVAL;
                int64_t limit = json_object_get_int64(member(mem, "limit"));
                if (limit > 0)
                        lim->memory_bytes = (uint64_t)limit;
                json_object *swap = member(mem, "swap");
                if (swap && json_object_get_int64(swap) != -1 &&
                    json_object_get_int64(swap) != limit)
                        return refuse(
                                err, "linux.resources.memory.swap",
                                "a swap limit other than the memory limit or -1 is not supported");
                if (json_object_get_int64(member(mem, "reservation")) > 0)
                        return refuse(err, "linux.resources.memory.reservation", "not supported");
                if (json_object_get_boolean(member(mem, "disableOOMKiller")))
                        return refuse(err, "linux.resources.memory.disableOOMKiller",
                                      "not supported");
        }
        json_object *pids = member(res, "pids");
        if (pids) {
                static const char *const pk[] = {"limit", NULL};
                if (want(pids, json_type_object, "linux.resources.pids", err) < 0 ||
                    known_keys(c, pids, "linux.resources.pids", pk, err) < 0)
                        return -EINVAL;
                int64_t limit = json_object_get_int64(member(pids, "limit"));
                if (limit > 0)
                        lim->pids = (uint64_t)limit;
        }
        json_object *cpu = member(res, "cpu");
        if (cpu) {
                static const char *const ck[] = {"shares", "quota", "period", "cpus", "mems", NULL};
                if (want(cpu, json_type_object, "linux.resources.cpu", err) < 0 ||
                    known_keys(c, cpu, "linux.resources.cpu", ck, err) < 0)
                        return -EINVAL;
                uint64_t shares = json_object_get_uint64(member(cpu, "shares"));
                if (shares)
                        /* runc's and crun's mapping of shares (2..262144) to weight */
                        lim->cpu_weight = shares <= 2        ? 1
                                          : shares >= 262144 ? 10000
                                                             : 1 + ((shares - 2) * 9999) / 262142;
                if (json_object_get_int64(member(cpu, "quota")) > 0)
                        return refuse(err, "linux.resources.cpu.quota",
                                      "not supported (shares only)");
                if (want_empty_string(cpu, "cpus", "linux.resources.cpu.cpus", err) < 0 ||
                    want_empty_string(cpu, "mems", "linux.resources.cpu.mems", err) < 0)
                        return -EINVAL;
        }
        json_object *dev = member(res, "devices");
        if (dev && parse_device_rules(c, dev, err) < 0)
                return -EINVAL;
        if (want_empty_array(res, "blockIO", "linux.resources.blockIO", err) < 0 ||
            want_empty_array(res, "hugepageLimits", "linux.resources.hugepageLimits", err) < 0 ||
            want_empty_array(res, "network", "linux.resources.network", err) < 0 ||
            want_empty_array(res, "rdma", "linux.resources.rdma", err) < 0 ||
            want_empty_array(res, "unified", "linux.resources.unified", err) < 0)
                return -EINVAL;
        return 0;
}

static int parse_linux(kpa_oci_config *c, json_object *l, kpa_error *err)
{
        static const char *const keys[] = {
                "namespaces",        "uidMappings", "gidMappings", "sysctl",        "resources",
                "cgroupsPath",       "seccomp",     "maskedPaths", "readonlyPaths", "devices",
                "rootfsPropagation", "mountLabel",  NULL};
        if (want(l, json_type_object, "linux", err) < 0 || known_keys(c, l, "linux", keys, err) < 0)
                return -EINVAL;
        if (!member(l, "namespaces"))
                return refuse(err, "linux.namespaces", "required");
        if (parse_namespaces(c, member(l, "namespaces"), err) < 0)
                return -EINVAL;
        if (want_empty_array(l, "uidMappings", "linux.uidMappings", err) < 0 ||
            want_empty_array(l, "gidMappings", "linux.gidMappings", err) < 0 ||
            want_empty_string(l, "mountLabel", "linux.mountLabel", err) < 0)
                return -EINVAL;
        if (member(l, "seccomp")) {
                c->spec->seccomp_prog = kpa_xcalloc(1, sizeof(kpa_seccomp_prog));
                int r = kpa_oci_seccomp_build(member(l, "seccomp"), c->spec->seccomp_prog, err);
                if (r < 0)
                        return r;
        }
        json_object *sysctl = member(l, "sysctl");
        if (sysctl) {
                if (want(sysctl, json_type_object, "linux.sysctl", err) < 0)
                        return -EINVAL;
                json_object_object_foreach (sysctl, key, val) {
                        if (!json_object_is_type(val, json_type_string) || strstr(key, "..") ||
                            strchr(key, '/'))
                                return refuse(err, "linux.sysctl", "\"%s\": bad entry", key);
                        /* the namespaced ones only: net.* and IPC's */
                        if (strncmp(key, "net.", 4) != 0 && strncmp(key, "kernel.msg", 10) != 0 &&
                            strncmp(key, "kernel.sem", 10) != 0 &&
                            strncmp(key, "kernel.shm", 10) != 0 && strcmp(key, "fs.mqueue") != 0 &&
                            strncmp(key, "fs.mqueue.", 10) != 0)
                                return refuse(err, "linux.sysctl",
                                              "\"%s\": not a namespaced sysctl", key);
                        if (strncmp(key, "net.", 4) == 0 && !c->spec->new_net &&
                            !c->spec->netns_path)
                                return refuse(err, "linux.sysctl",
                                              "\"%s\": the container shares the host's network",
                                              key);
                }
                c->sysctl = json_object_get(sysctl);
        }
        json_object *prop = member(l, "rootfsPropagation");
        if (prop && strcmp(json_object_get_string(prop), "private") != 0 &&
            strcmp(json_object_get_string(prop), "rprivate") != 0 &&
            json_object_get_string_len(prop) > 0)
                return refuse(err, "linux.rootfsPropagation", "only private is supported");
        if (member(l, "resources") && parse_resources(c, member(l, "resources"), err) < 0)
                return -EINVAL;
        json_object *cgp = member(l, "cgroupsPath");
        if (cgp) {
                if (want(cgp, json_type_string, "linux.cgroupsPath", err) < 0)
                        return -EINVAL;
                const char *s = json_object_get_string(cgp);
                if (strstr(s, ".."))
                        return refuse(err, "linux.cgroupsPath", "must not contain \"..\"");
                /* relative: "relative to the runtime-determined location",
                 * which is kpa's own (kpa.slice/oci/ID below kpa-oci's
                 * cgroup), as for an absolute one whose parent is missing */
                if (s[0] && s[0] != '/' && strchr(s, ':'))
                        return refuse(err, "linux.cgroupsPath",
                                      "\"%s\": a systemd slice:prefix:name path needs "
                                      "--systemd-cgroup, which is not supported (use cgroupfs)",
                                      s);
                c->cgroups_path = kpa_xstrdup(s);
        }
        if (member(l, "maskedPaths") &&
            parse_paths(c, member(l, "maskedPaths"), "linux.maskedPaths", KPA_MOUNT_MASK, err) < 0)
                return -EINVAL;
        if (member(l, "readonlyPaths") &&
            parse_paths(c, member(l, "readonlyPaths"), "linux.readonlyPaths", KPA_MOUNT_READONLY,
                        err) < 0)
                return -EINVAL;
        return 0;
}

/* linux.devices: a node each, made in the container's root after the
 * mounts (so in its /dev tmpfs), as runc does */
static int parse_devices(kpa_oci_config *c, json_object *arr, kpa_error *err)
{
        if (want(arr, json_type_array, "linux.devices", err) < 0)
                return -EINVAL;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                char path[64];
                snprintf(path, sizeof(path), "linux.devices[%zu]", i);
                json_object *o = json_object_array_get_idx(arr, i);
                static const char *const keys[] = {"path",     "type", "major", "minor",
                                                   "fileMode", "uid",  "gid",   NULL};
                if (want(o, json_type_object, path, err) < 0 ||
                    known_keys(c, o, path, keys, err) < 0 ||
                    want(member(o, "path"), json_type_string, path, err) < 0 ||
                    want(member(o, "type"), json_type_string, path, err) < 0)
                        return -EINVAL;
                const char *target = json_object_get_string(member(o, "path"));
                if (target[0] != '/' || strstr(target, "/../") ||
                    (strlen(target) >= 3 && strcmp(target + strlen(target) - 3, "/..") == 0))
                        return refuse(err, path, "\"%s\" must be an absolute path without \"..\"",
                                      target);
                const char *type = json_object_get_string(member(o, "type"));
                mode_t fmt = strcmp(type, "c") == 0 || strcmp(type, "u") == 0 ? S_IFCHR
                             : strcmp(type, "b") == 0                         ? S_IFBLK
                             : strcmp(type, "p") == 0                         ? S_IFIFO
                                                                              : 0;
                if (!fmt)
                        return refuse(err, path, "type \"%s\": not c, b, u or p", type);
                json_object *major = member(o, "major"), *minor = member(o, "minor");
                if (fmt != S_IFIFO &&
                    (!json_object_is_type(major, json_type_int) ||
                     !json_object_is_type(minor, json_type_int) ||
                     json_object_get_int64(major) < 0 || json_object_get_int64(minor) < 0))
                        return refuse(err, path, "a %s device needs major and minor numbers", type);
                static const char *const ints[] = {"fileMode", "uid", "gid"};
                for (size_t k = 0; k < ELEMENTSOF(ints); k++) {
                        json_object *v = member(o, ints[k]);
                        if (v &&
                            (!json_object_is_type(v, json_type_int) ||
                             json_object_get_int64(v) < 0 || json_object_get_int64(v) > UINT32_MAX))
                                return refuse(err, path, "%s must be a number", ints[k]);
                }
                json_object *mode = member(o, "fileMode");
                kpa_instance_spec_add_mount(c->spec, KPA_MOUNT_DEVICE, NULL, -1, target, false);
                kpa_mount_op *op = &c->spec->mounts[c->spec->n_mounts - 1];
                op->mode = fmt | (mode ? (mode_t)json_object_get_int64(mode) & 07777 : 0666);
                op->rdev = fmt == S_IFIFO ? 0
                                          : makedev((unsigned)json_object_get_int64(major),
                                                    (unsigned)json_object_get_int64(minor));
                op->uid = (uid_t)json_object_get_int64(member(o, "uid"));
                op->gid = (gid_t)json_object_get_int64(member(o, "gid"));
        }
        return 0;
}

static int parse_hooks(kpa_oci_config *c, json_object *h, kpa_error *err)
{
        static const char *const keys[] = {"prestart", "createRuntime", "poststart", "poststop",
                                           NULL};
        if (want(h, json_type_object, "hooks", err) < 0 || known_keys(c, h, "hooks", keys, err) < 0)
                return -EINVAL;
        json_object_object_foreach (h, kind, arr) {
                bool honoured = false;
                for (size_t k = 0; keys[k] && !honoured; k++)
                        honoured = strcmp(keys[k], kind) == 0;
                if (!honoured)
                        continue; /* not the specification's: ignored (known_keys) */
                char path[64];
                snprintf(path, sizeof(path), "hooks.%s", kind);
                if (want(arr, json_type_array, path, err) < 0)
                        return -EINVAL;
                for (size_t i = 0; i < json_object_array_length(arr); i++) {
                        snprintf(path, sizeof(path), "hooks.%s[%zu]", kind, i);
                        json_object *o = json_object_array_get_idx(arr, i);
                        static const char *const hk[] = {"path", "args", "env", "timeout", NULL};
                        if (want(o, json_type_object, path, err) < 0 ||
                            known_keys(c, o, path, hk, err) < 0 ||
                            want(member(o, "path"), json_type_string, path, err) < 0)
                                return -EINVAL;
                        if (json_object_get_string(member(o, "path"))[0] != '/')
                                return refuse(err, path, "path must be absolute");
                }
        }
        c->hooks = json_object_get(h);
        return 0;
}

static int parse_root(kpa_oci_config *c, json_object *root, const char *bundle, int *rootfd,
                      kpa_error *err)
{
        static const char *const keys[] = {"path", "readonly", NULL};
        if (want(root, json_type_object, "root", err) < 0 ||
            known_keys(c, root, "root", keys, err) < 0 ||
            want(member(root, "path"), json_type_string, "root.path", err) < 0)
                return -EINVAL;
        const char *p = json_object_get_string(member(root, "path"));
        c->spec->rootfs = p[0] == '/' ? kpa_xstrdup(p) : kpa_xasprintf("%s/%s", bundle, p);
        c->spec->rootfs_readonly = json_object_get_boolean(member(root, "readonly"));
        *rootfd = open(c->spec->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (*rootfd < 0)
                return kpa_error_set_errno(err, errno, "config.json: root.path: %s",
                                           c->spec->rootfs);
        return 0;
}

static int parse_config(kpa_oci_config *c, json_object *cfg, const char *bundle, kpa_error *err)
{
        static const char *const keys[] = {"ociVersion", "root",   "process", "hostname",
                                           "domainname", "mounts", "hooks",   "annotations",
                                           "linux",      NULL};
        if (want(cfg, json_type_object, "(top level)", err) < 0 ||
            known_keys(c, cfg, "(top level)", keys, err) < 0)
                return -EINVAL;
        json_object *ver = member(cfg, "ociVersion");
        if (want(ver, json_type_string, "ociVersion", err) < 0)
                return -EINVAL;
        if (strncmp(json_object_get_string(ver), "1.", 2) != 0)
                return refuse(err, "ociVersion", "\"%s\": only 1.x is supported",
                              json_object_get_string(ver));
        c->oci_version = kpa_xstrdup(json_object_get_string(ver));
        if (!member(cfg, "root"))
                return refuse(err, "root", "required");
        _cleanup_close_ int rootfd = -1;
        if (parse_root(c, member(cfg, "root"), bundle, &rootfd, err) < 0)
                return -EINVAL;
        if (!member(cfg, "process"))
                return refuse(err, "process", "required (kpa-oci runs one process)");
        if (!member(cfg, "linux"))
                return refuse(err, "linux", "required");
        /* linux first: the sysctl check needs the network namespace */
        if (parse_linux(c, member(cfg, "linux"), err) < 0)
                return -EINVAL;
        int r = parse_process(c, member(cfg, "process"), rootfd, err);
        if (r < 0)
                return r;
        json_object *host = member(cfg, "hostname");
        if (host && want(host, json_type_string, "hostname", err) < 0)
                return -EINVAL;
        if (host && json_object_get_string_len(host) > 0)
                c->spec->hostname = kpa_xstrdup(json_object_get_string(host));
        if (want_empty_string(cfg, "domainname", "domainname", err) < 0)
                return -EINVAL;
        json_object *mounts = member(cfg, "mounts");
        if (mounts) {
                if (want(mounts, json_type_array, "mounts", err) < 0)
                        return -EINVAL;
                /* the masks and read-only paths came first; the sandbox
                 * makes them after the mounts all the same */
                for (size_t i = 0; i < json_object_array_length(mounts); i++)
                        if (parse_mount(c, json_object_array_get_idx(mounts, i), i, bundle, err) <
                            0)
                                return -EINVAL;
        }
        json_object *devices = member(member(cfg, "linux"), "devices");
        if (devices && parse_devices(c, devices, err) < 0)
                return -EINVAL;
        device_policy(c);
        if (member(cfg, "hooks") && parse_hooks(c, member(cfg, "hooks"), err) < 0)
                return -EINVAL;
        json_object *ann = member(cfg, "annotations");
        if (ann) {
                if (want(ann, json_type_object, "annotations", err) < 0)
                        return -EINVAL;
                json_object_object_foreach (ann, key, val) {
                        if (!json_object_is_type(val, json_type_string))
                                return refuse(err, "annotations", "\"%s\" must be a string", key);
                }
                c->annotations = json_object_get(ann);
        }
        return 0;
}

int kpa_oci_config_load(const char *bundle, const char *id, kpa_oci_config **out, kpa_error *err)
{
        _cleanup_free_ char *path = kpa_xasprintf("%s/config.json", bundle);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = kpa_read_fd(fd, CONFIG_MAX, &text, &len);
        if (r < 0)
                return kpa_error_set_errno(err, -r, "%s", path);
        json_tokener *tok = json_tokener_new();
        json_object *cfg = json_tokener_parse_ex(tok, text, (int)len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        json_tokener_free(tok);
        if (!cfg || jerr != json_tokener_success) {
                json_object_put(cfg);
                return kpa_error_set(err, EINVAL, "%s: not valid JSON: %s", path,
                                     json_tokener_error_desc(jerr));
        }
        kpa_oci_config *c = kpa_xcalloc(1, sizeof(*c));
        kpa_instance_spec *spec = c->spec = kpa_xcalloc(1, sizeof(*spec));
        spec->app_id = kpa_xstrdup("oci");
        spec->instance_id = kpa_xstrdup(id);
        spec->init_name = kpa_xasprintf("kpa-init oci/%s", id); /* for ps */
        spec->stdio[0] = 0;
        spec->stdio[1] = 1;
        spec->stdio[2] = 2;
        spec->exit_record_fd = spec->init_keep_fd = -1;
        spec->detached = true;
        /* what process.capabilities asks for, and no more */
        spec->keep_caps = kpa_xcalloc(1, sizeof(*spec->keep_caps));
        r = parse_config(c, cfg, bundle, err);
        json_object_put(cfg);
        if (r < 0) {
                kpa_oci_config_free(c);
                return r;
        }
        if (!spec->hostname && !spec->utsns_path)
                spec->hostname = kpa_xstrdup(id);
        *out = c;
        return 0;
}
