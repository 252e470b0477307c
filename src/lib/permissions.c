/* permissions.c: what a package asks for and what the administrator gave it.
 * Every setting of extensions.KPA_sandbox that widens the sandbox is a
 * permission request; this file turns a manifest into its list of requests,
 * reads and writes the grants (the record ROOT/grants/APP_ID in the store,
 * and the administrator's policy files, both a KPA_sandbox-shaped JSON
 * object), and checks a read-only host path before kpa binds it. It does not
 * decide when a grant is asked for (install.c) nor apply one (spec.c).
 *
 * A permission list is a sorted, NULL-terminated list of items: a name
 * ("network", "allowKeyring", ...) or, for readOnlyPaths, one item per path,
 * "readOnlyPaths:/the/path". A grant of readOnlyPaths is a grant of those
 * paths: an upgrade that asks for another path asks anew. The sockets that
 * extensions.KPA_sockets declares are items too, "sockets:tcp:127.0.0.1:80",
 * one per address, granted like paths. */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "kpa/package.h"
#include "store-internal.h"
#include "util.h"

#ifndef KPA_LOCALSTATEDIR
#define KPA_LOCALSTATEDIR "/var"
#endif
#ifndef KPA_SYSCONFDIR
#define KPA_SYSCONFDIR "/etc"
#endif

#define RO_PREFIX "readOnlyPaths:"
#define SOCKETS_PREFIX "sockets:"
#define GRANTS_MAX_SIZE (256 * 1024)

static const struct {
        const char *name;
        const char *what;
} permissions[] = {
        {"network", "the host's network instead of an empty network namespace"},
        {"readOnlyPaths", "a read-only view of a host path"},
        {"allowPtrace", "ptrace, process_vm_readv and process_vm_writev"},
        {"allowPerfEvents", "perf_event_open"},
        {"allowBpf", "bpf"},
        {"allowKeyring", "keyctl, add_key and request_key, on a keyring of its own"},
        {"allowUserfaultfd", "userfaultfd"},
        {"allowPersonality", "personality with any persona"},
        {"sockets", "a listening socket that kpa binds and passes to it"},
};
#define SOCKETS_INDEX 8 /* in permissions[] */

bool kpa_permission_known(const char *name)
{
        for (size_t i = 0; i < ELEMENTSOF(permissions); i++)
                if (streq(name, permissions[i].name))
                        return true;
        return false;
}

/* "readOnlyPaths:/x" -> "readOnlyPaths" (into BUF) */
static const char *item_name(const char *item, char buf[32])
{
        if (strncmp(item, RO_PREFIX, strlen(RO_PREFIX)) == 0)
                return "readOnlyPaths";
        if (strncmp(item, SOCKETS_PREFIX, strlen(SOCKETS_PREFIX)) == 0)
                return "sockets";
        snprintf(buf, 32, "%s", item);
        return buf;
}

char *kpa_permission_describe(const char *item)
{
        if (strncmp(item, RO_PREFIX, strlen(RO_PREFIX)) == 0)
                return kpa_xasprintf("readOnlyPaths %s (%s)", item + strlen(RO_PREFIX),
                                     permissions[1].what);
        if (strncmp(item, SOCKETS_PREFIX, strlen(SOCKETS_PREFIX)) == 0)
                return kpa_xasprintf("sockets %s (%s)", item + strlen(SOCKETS_PREFIX),
                                     permissions[SOCKETS_INDEX].what);
        for (size_t i = 0; i < ELEMENTSOF(permissions); i++)
                if (streq(item, permissions[i].name))
                        return kpa_xasprintf("%s (%s)", item, permissions[i].what);
        return kpa_xstrdup(item);
}

/* ---- lists ---- */

static size_t strv_len(char *const *v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

static int cmp_item(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_add(char ***v, size_t *n, const char *item)
{
        for (size_t i = 0; i < *n; i++)
                if (streq((*v)[i], item))
                        return;
        *v = kpa_xrealloc(*v, (*n + 2) * sizeof(char *));
        (*v)[(*n)++] = kpa_xstrdup(item);
        (*v)[*n] = NULL;
}

static char **list_done(char **v, size_t n)
{
        if (!v)
                return kpa_xcalloc(1, sizeof(char *));
        qsort(v, n, sizeof(char *), cmp_item);
        return v;
}

bool kpa_permissions_contain(char *const *list, const char *item)
{
        for (size_t i = 0; list && list[i]; i++)
                if (streq(list[i], item))
                        return true;
        return false;
}

/* The items of A that B does (KEEP) or does not (!KEEP) hold. */
char **kpa_permissions_filter(char *const *a, char *const *b, bool keep)
{
        char **v = NULL;
        size_t n = 0;
        for (size_t i = 0; a && a[i]; i++)
                if (kpa_permissions_contain(b, a[i]) == keep)
                        list_add(&v, &n, a[i]);
        return list_done(v, n);
}

static void add_sandbox_items(const kpa_sandbox_settings *sb, char ***v, size_t *n)
{
        if (sb->network == KPA_NETWORK_HOST)
                list_add(v, n, "network");
        for (size_t i = 0; i < sb->n_read_only_paths; i++) {
                _cleanup_free_ char *item = kpa_xasprintf(RO_PREFIX "%s", sb->read_only_paths[i]);
                list_add(v, n, item);
        }
        const bool flags[] = {sb->allow_ptrace,  sb->allow_perf_events, sb->allow_bpf,
                              sb->allow_keyring, sb->allow_userfaultfd, sb->allow_personality};
        for (size_t i = 0; i < ELEMENTSOF(flags); i++)
                if (flags[i])
                        list_add(v, n, permissions[2 + i].name);
}

char **kpa_permissions_requested(const kpa_manifest *m)
{
        char **v = NULL;
        size_t n = 0;
        add_sandbox_items(m->sandbox, &v, &n);
        for (size_t i = 0; i < m->n_run_configs; i++)
                for (size_t k = 0; k < m->run_configs[i]->n_sockets; k++) {
                        _cleanup_free_ char *item = kpa_xasprintf(
                                SOCKETS_PREFIX "%s", m->run_configs[i]->sockets[k]->listen);
                        list_add(&v, &n, item);
                }
        return list_done(v, n);
}

int kpa_permissions_select(char *const *requested, const char *names, char ***out, kpa_error *err)
{
        char **v = NULL;
        size_t n = 0;
        _cleanup_free_ char *copy = kpa_xstrdup(names);
        char *save = NULL;
        for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
                if (!streq(name, "all") && !kpa_permission_known(name)) {
                        kpa_strv_free(v);
                        return kpa_error_set(err, EINVAL,
                                             "\"%s\" is not a permission (kpa knows network, "
                                             "readOnlyPaths, allowPtrace, allowPerfEvents, "
                                             "allowBpf, allowKeyring, allowUserfaultfd, "
                                             "allowPersonality, sockets, and all)",
                                             name);
                }
                for (size_t i = 0; requested && requested[i]; i++) {
                        char buf[32];
                        if (streq(name, "all") || streq(name, item_name(requested[i], buf)))
                                list_add(&v, &n, requested[i]);
                }
        }
        *out = list_done(v, n);
        return 0;
}

/* ---- the JSON form: a KPA_sandbox-shaped object ---- */

/* "WHAT: KEY RULE" */
static int json_bad(kpa_error *err, const char *what, const char *key, const char *rule)
{
        return kpa_error_set(err, EINVAL, "%s: %s %s", what, key, rule);
}

static int parse_paths(json_object *arr, const char *what, char ***v, size_t *n, kpa_error *err)
{
        if (!json_object_is_type(arr, json_type_array))
                return json_bad(err, what, "readOnlyPaths", "must be an array of absolute paths");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *p = json_object_array_get_idx(arr, i);
                const char *s =
                        json_object_is_type(p, json_type_string) ? json_object_get_string(p) : NULL;
                if (!s || s[0] != '/' || strstr(s, "/../") || strlen(s) >= PATH_MAX ||
                    (strlen(s) >= 3 && streq(s + strlen(s) - 3, "/..")))
                        return json_bad(err, what, "readOnlyPaths",
                                        "must be an array of absolute paths");
                _cleanup_free_ char *item = kpa_xasprintf(RO_PREFIX "%s", s);
                /* one spelling: no trailing slash (as the manifest's) */
                size_t len = strlen(item);
                while (len > strlen(RO_PREFIX) + 1 && item[len - 1] == '/')
                        item[--len] = '\0';
                list_add(v, n, item);
        }
        return 0;
}

static int parse_sockets(json_object *arr, const char *what, char ***v, size_t *n, kpa_error *err)
{
        if (!json_object_is_type(arr, json_type_array))
                return json_bad(err, what, "sockets",
                                "must be an array of addresses (\"tcp:127.0.0.1:8080\", "
                                "\"unix:ctl.sock\")");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *p = json_object_array_get_idx(arr, i);
                const char *s =
                        json_object_is_type(p, json_type_string) ? json_object_get_string(p) : NULL;
                if (!s || (strncmp(s, "tcp:", 4) != 0 && strncmp(s, "unix:", 5) != 0))
                        return json_bad(err, what, "sockets",
                                        "must be an array of addresses (\"tcp:127.0.0.1:8080\", "
                                        "\"unix:ctl.sock\")");
                _cleanup_free_ char *item = kpa_xasprintf(SOCKETS_PREFIX "%s", s);
                list_add(v, n, item);
        }
        return 0;
}

int kpa_permissions_from_json(const char *text, const char *what, char ***out, kpa_error *err)
{
        json_object *o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return kpa_error_set(err, EINVAL,
                                     "%s: not a JSON object like {\"network\": \"host\", "
                                     "\"readOnlyPaths\": [\"/srv/data\"], \"allowKeyring\": true}",
                                     what);
        }
        char **v = NULL;
        size_t n = 0;
        int r = 0;
        json_object_object_foreach (o, key, val) {
                if (streq(key, "network")) {
                        const char *s = json_object_is_type(val, json_type_string)
                                                ? json_object_get_string(val)
                                                : "";
                        if (streq(s, "host"))
                                list_add(&v, &n, "network");
                        else if (!streq(s, "none"))
                                r = json_bad(err, what, key, "must be \"host\" or \"none\"");
                } else if (streq(key, "readOnlyPaths")) {
                        r = parse_paths(val, what, &v, &n, err);
                } else if (streq(key, "sockets")) {
                        r = parse_sockets(val, what, &v, &n, err);
                } else if (kpa_permission_known(key)) {
                        if (!json_object_is_type(val, json_type_boolean))
                                r = json_bad(err, what, key, "must be true or false");
                        else if (json_object_get_boolean(val))
                                list_add(&v, &n, key);
                } else {
                        r = json_bad(err, what, key, "is not a permission");
                }
                if (r < 0)
                        break;
        }
        json_object_put(o);
        if (r < 0) {
                kpa_strv_free(v);
                return r;
        }
        *out = list_done(v, n);
        return 0;
}

char *kpa_permissions_to_json(char *const *items)
{
        json_object *o = json_object_new_object();
        json_object *paths = NULL, *sockets = NULL;
        for (size_t i = 0; items && items[i]; i++) {
                if (strncmp(items[i], SOCKETS_PREFIX, strlen(SOCKETS_PREFIX)) == 0) {
                        if (!sockets)
                                sockets = json_object_new_array();
                        json_object_array_add(
                                sockets, json_object_new_string(items[i] + strlen(SOCKETS_PREFIX)));
                } else if (strncmp(items[i], RO_PREFIX, strlen(RO_PREFIX)) == 0) {
                        if (!paths)
                                paths = json_object_new_array();
                        json_object_array_add(paths,
                                              json_object_new_string(items[i] + strlen(RO_PREFIX)));
                } else if (streq(items[i], "network")) {
                        json_object_object_add(o, "network", json_object_new_string("host"));
                } else {
                        json_object_object_add(o, items[i], json_object_new_boolean(true));
                }
        }
        if (paths)
                json_object_object_add(o, "readOnlyPaths", paths);
        if (sockets)
                json_object_object_add(o, "sockets", sockets);
        char *s = kpa_xasprintf(
                "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return s;
}

/* ---- policy files ---- */

const char *kpa_policy_default_dir(void)
{
        return KPA_SYSCONFDIR "/kpa/policy.d";
}

/* Is ITEM covered by the policy POLICY? A policy path covers itself and
 * everything below it. */
static bool policy_covers(char *const *policy, const char *item)
{
        if (kpa_permissions_contain(policy, item))
                return true;
        if (strncmp(item, RO_PREFIX, strlen(RO_PREFIX)) != 0)
                return false;
        for (size_t i = 0; policy && policy[i]; i++) {
                size_t len = strlen(policy[i]);
                if (strncmp(policy[i], RO_PREFIX, strlen(RO_PREFIX)) == 0 &&
                    strncmp(item, policy[i], len) == 0 && item[len] == '/')
                        return true;
        }
        return false;
}

int kpa_policy_grants(const char *dir, const char *app_id, char *const *requested, char ***out,
                      char **path_out, kpa_error *err)
{
        *out = NULL;
        if (path_out)
                *path_out = NULL;
        _cleanup_free_ char *path =
                kpa_xasprintf("%s/%s.json", dir ? dir : kpa_policy_default_dir(), app_id);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        /* none; or, for a user's own kpa-install, an administrator's policy
         * directory that the user may not read (a --policy DIR given on
         * purpose that cannot be read stays an error) */
        if (fd < 0 && (errno == ENOENT || (errno == EACCES && !dir && geteuid() != 0))) {
                *out = kpa_xcalloc(1, sizeof(char *));
                return 0;
        }
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return kpa_error_set_errno(err, errno, "policy file %s", path);
        /* a grant is the administrator's word: nobody else may have written it */
        if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
            (st.st_mode & 0022))
                return kpa_error_set(err, EPERM,
                                     "policy file %s is not a regular file owned by root (or by "
                                     "you) and writable by its owner only; it is ignored until "
                                     "it is",
                                     path);
        _cleanup_free_ char *text = NULL;
        int q = kpa_read_fd(fd, GRANTS_MAX_SIZE, &text, NULL);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "policy file %s", path);
        _cleanup_strv_free_ char **policy = NULL;
        _cleanup_free_ char *what = kpa_xasprintf("policy file %s", path);
        q = kpa_permissions_from_json(text, what, &policy, err);
        if (q < 0)
                return q;
        char **v = NULL;
        size_t n = 0;
        for (size_t i = 0; requested && requested[i]; i++)
                if (policy_covers(policy, requested[i]))
                        list_add(&v, &n, requested[i]);
        *out = list_done(v, n);
        if (path_out)
                *path_out = TAKE_PTR(path);
        return 0;
}

/* ---- the grant record: ROOT/grants/APP_ID ---- */

int kpa_store_get_grants(kpa_store *s, const char *app_id, char ***out, kpa_error *err)
{
        int q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        _cleanup_free_ char *path = kpa_xasprintf("grants/%s", app_id);
        _cleanup_free_ char *text = NULL;
        q = kpa_read_file_at(s->root_fd, path, GRANTS_MAX_SIZE, &text, NULL);
        if (q == -ENOENT) { /* nothing granted */
                *out = kpa_xcalloc(1, sizeof(char *));
                return 0;
        }
        if (q < 0)
                return kpa_error_set_errno(err, -q, "%s: cannot read %s/%s", app_id, s->root, path);
        _cleanup_free_ char *what = kpa_xasprintf("%s/%s", s->root, path);
        return kpa_permissions_from_json(text, what, out, err);
}

/* Write the record atomically (a new file renamed over the old, both
 * synced); an empty list removes it. Everything happens relative to an fd
 * of grants/, opened without following a symlink. The caller holds the
 * store's lock. */
int store_write_grants(kpa_store *s, const char *app_id, char *const *items, kpa_error *err)
{
        _cleanup_free_ char *tmp = kpa_xasprintf(".%s.tmp", app_id);
        if (mkdirat(s->root_fd, "grants", 0755) < 0 && errno != EEXIST)
                return kpa_error_set_errno(err, errno, "store %s: cannot create grants/", s->root);
        _cleanup_close_ int dir = kpa_open_beneath(s->root_fd, "grants", O_RDONLY | O_DIRECTORY, 0);
        if (dir < 0)
                return kpa_error_set_errno(err, -dir, "store %s: cannot open grants/", s->root);
        if (strv_len(items) == 0) {
                if (unlinkat(dir, app_id, 0) < 0 && errno != ENOENT)
                        return kpa_error_set_errno(err, errno, "store %s: cannot remove grants/%s",
                                                   s->root, app_id);
                (void)fsync(dir);
                return 0;
        }
        _cleanup_free_ char *text = kpa_permissions_to_json(items);
        _cleanup_close_ int fd =
                openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "store %s: cannot write grants/%s", s->root,
                                           tmp);
        int q = kpa_write_all(fd, text, strlen(text));
        if (q >= 0 && fsync(fd) < 0)
                q = -errno;
        if (q >= 0 && renameat(dir, tmp, dir, app_id) < 0)
                q = -errno;
        if (q >= 0 && fsync(dir) < 0) /* the rename is what makes the grant last */
                q = -errno;
        if (q < 0) {
                (void)unlinkat(dir, tmp, 0);
                return kpa_error_set_errno(err, -q, "store %s: cannot write grants/%s", s->root,
                                           app_id);
        }
        return 0;
}

/* ---- read-only host paths ---- */

/* May UID/GID (no supplementary groups: a package has none) do WANT
 * (r=4, x=1, in the "other" position) on ST? Mode bits only. */
static bool may(const struct stat *st, uid_t uid, gid_t gid, unsigned want)
{
        unsigned bits = st->st_uid == uid   ? (st->st_mode >> 6) & 7
                        : st->st_gid == gid ? (st->st_mode >> 3) & 7
                                            : st->st_mode & 7;
        return (bits & want) == want;
}

/* Is A equal to or below B (both absolute, normalized)? */
static bool path_within(const char *a, const char *b)
{
        size_t len = strlen(b);
        if (streq(b, "/"))
                return true;
        return strncmp(a, b, len) == 0 && (a[len] == '\0' || a[len] == '/');
}

/* PATH may not show anything of a kpa store, the daemon's state, or the
 * kernel's interfaces. */
static int check_forbidden(const char *path, const char *resolved, const char *store_root,
                           kpa_error *err)
{
        const char *env_root = getenv("KPA_ROOT");
        const struct {
                const char *dir;
                const char *what;
        } places[] = {
                {store_root, "the kpa store"},
                {KPA_LOCALSTATEDIR "/lib/kpa", "the kpa store"},
                {"/var/lib/kpa", "the kpa store"}, /* the system store of a distribution */
                {env_root && *env_root == '/' ? env_root : NULL, "the kpa store"},
                {"/run/kpa", "kpa's run-time directory"},
                {"/proc", "/proc"},
                {"/sys", "/sys"},
                {"/dev", "/dev"},
        };
        for (size_t i = 0; i < ELEMENTSOF(places); i++) {
                if (!places[i].dir)
                        continue;
                char real[PATH_MAX];
                const char *dir = realpath(places[i].dir, real) ? real : places[i].dir;
                const char *both[] = {path, resolved};
                for (size_t j = 0; j < ELEMENTSOF(both); j++) {
                        const char *sep = streq(places[i].what, dir) ? "" : " ";
                        const char *name = streq(places[i].what, dir) ? "" : dir;
                        if (path_within(both[j], dir) || path_within(both[j], places[i].dir))
                                return kpa_error_set(err, EPERM,
                                                     "read-only path %s: it is inside %s%s%s; "
                                                     "kpa does not bind that",
                                                     path, places[i].what, sep, name);
                        if (path_within(dir, both[j]))
                                return kpa_error_set(err, EPERM,
                                                     "read-only path %s: it contains %s%s%s; "
                                                     "kpa does not bind that",
                                                     path, places[i].what, sep, name);
                }
        }
        return 0;
}

/* Walk RESOLVED (a canonical path: no symlink, no "..") from / down, one
 * O_PATH|O_NOFOLLOW open at a time, and return an fd of its node: every
 * directory on the way must let UID search it, and each is checked by the
 * fd that the next step opens from, so what is checked is what is bound
 * even if the host changes meanwhile (a component that became a symlink
 * is not followed, and then is no directory). */
static int open_reachable(const char *path, const char *resolved, uid_t uid, gid_t gid,
                          kpa_error *err)
{
        _cleanup_close_ int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "read-only path %s: /", path);
        _cleanup_free_ char *copy = kpa_xstrdup(resolved);
        char *save = NULL;
        size_t done = 1; /* bytes of RESOLVED walked: "/" */
        for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return kpa_error_set_errno(err, errno, "read-only path %s", path);
                /* the directory's own name, for a message: RESOLVED up to it */
                _cleanup_free_ char *dir = kpa_xstrndup(resolved, done > 1 ? done - 1 : 1);
                if (!S_ISDIR(st.st_mode))
                        return kpa_error_set(err, ENOTDIR,
                                             "read-only path %s: %s changed while it was checked",
                                             path, dir);
                if (!may(&st, uid, gid, 1))
                        return kpa_error_set(err, EACCES,
                                             "read-only path %s: the package's uid %u cannot "
                                             "search the directory %s (mode %04o, owner %u); kpa "
                                             "binds only what the package could open itself",
                                             path, (unsigned)uid, dir,
                                             (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
                int next = openat(fd, c, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0)
                        return kpa_error_set_errno(err, errno, "cannot bind the host path %s",
                                                   path);
                close(fd);
                fd = next;
                done += strlen(c) + 1;
        }
        return TAKE_FD(fd);
}

static int check_node(const char *path, const struct stat *st, uid_t uid, gid_t gid, kpa_error *err)
{
        const char *kind = S_ISSOCK(st->st_mode)                          ? "a socket"
                           : S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "a device node"
                           : S_ISFIFO(st->st_mode)                        ? "a FIFO"
                           : S_ISDIR(st->st_mode) || S_ISREG(st->st_mode) ? NULL
                                                                          : "not a file";
        if (kind)
                return kpa_error_set(err, EPERM,
                                     "read-only path %s: it is %s; kpa binds only regular files "
                                     "and directories",
                                     path, kind);
        unsigned want = S_ISDIR(st->st_mode) ? 5 : 4;
        if (!may(st, uid, gid, want))
                return kpa_error_set(err, EACCES,
                                     "read-only path %s: the package's uid %u cannot %s it (mode "
                                     "%04o, owner %u); kpa binds only what the package could "
                                     "open itself",
                                     path, (unsigned)uid, S_ISDIR(st->st_mode) ? "list" : "read",
                                     (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid);
        return 0;
}

int kpa_permissions_check_path(const char *path, uid_t uid, gid_t gid, const char *store_root,
                               int *out_fd, kpa_error *err)
{
        if (out_fd)
                *out_fd = -1;
        char resolved[PATH_MAX];
        if (!realpath(path, resolved)) {
                int e = errno;
                int q = check_forbidden(path, path, store_root, err);
                if (q < 0)
                        return q;
                return kpa_error_set_errno(err, e, "cannot bind the host path %s", path);
        }
        int q = check_forbidden(path, resolved, store_root, err);
        if (q < 0)
                return q;
        /* the node checked is the node bound: opened once, checked by fd */
        _cleanup_close_ int fd = open_reachable(path, resolved, uid, gid, err);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kpa_error_set_errno(err, errno, "cannot bind the host path %s", path);
        q = check_node(path, &st, uid, gid, err);
        if (q < 0)
                return q;
        if (out_fd)
                *out_fd = TAKE_FD(fd);
        return 0;
}

/* ---- what a start gets ---- */

int kpa_store_effective_sandbox(kpa_store *s, const kpa_manifest *m, kpa_sandbox_settings *given,
                                bool *network_granted, kpa_error *err)
{
        int q = kpa_struct_check(given, sizeof(*given), "kpa_sandbox_settings", err);
        if (q < 0)
                return q;
        _cleanup_strv_free_ char **granted = NULL;
        q = kpa_store_get_grants(s, m->application.id, &granted, err);
        if (q < 0)
                return q;
        const kpa_sandbox_settings *req = m->sandbox;
        kpa_sandbox_settings full, *out = &full;
        kpa_sandbox_settings_init(out);
        *network_granted = kpa_permissions_contain(granted, "network");
        out->network = req->network == KPA_NETWORK_HOST && *network_granted ? KPA_NETWORK_HOST
                                                                            : KPA_NETWORK_NONE;
        out->read_only_paths = kpa_xcalloc(req->n_read_only_paths + 1, sizeof(char *));
        for (size_t i = 0; i < req->n_read_only_paths; i++) {
                _cleanup_free_ char *item = kpa_xasprintf(RO_PREFIX "%s", req->read_only_paths[i]);
                if (kpa_permissions_contain(granted, item))
                        out->read_only_paths[out->n_read_only_paths++] =
                                kpa_xstrdup(req->read_only_paths[i]);
        }
        out->allow_ptrace = req->allow_ptrace && kpa_permissions_contain(granted, "allowPtrace");
        out->allow_perf_events =
                req->allow_perf_events && kpa_permissions_contain(granted, "allowPerfEvents");
        out->allow_bpf = req->allow_bpf && kpa_permissions_contain(granted, "allowBpf");
        out->allow_keyring = req->allow_keyring && kpa_permissions_contain(granted, "allowKeyring");
        out->allow_userfaultfd =
                req->allow_userfaultfd && kpa_permissions_contain(granted, "allowUserfaultfd");
        out->allow_personality =
                req->allow_personality && kpa_permissions_contain(granted, "allowPersonality");
        kpa_struct_out(given, &full); /* read_only_paths is in every kpa_sandbox_settings */
        return 0;
}

/* Every socket that RC declares must be granted: a start without them
 * would leave the server without its port, so it is refused instead. */
int kpa_store_check_sockets(kpa_store *s, const kpa_manifest *m, const kpa_run_config *rc,
                            kpa_error *err)
{
        if (!rc || rc->n_sockets == 0)
                return 0;
        _cleanup_strv_free_ char **granted = NULL;
        int q = kpa_store_get_grants(s, m->application.id, &granted, err);
        if (q < 0)
                return q;
        for (size_t k = 0; k < rc->n_sockets; k++) {
                _cleanup_free_ char *item =
                        kpa_xasprintf(SOCKETS_PREFIX "%s", rc->sockets[k]->listen);
                if (!kpa_permissions_contain(granted, item))
                        return kpa_error_set(err, EPERM,
                                             "%s/%s: socket \"%s\" (%s): the permission %s is "
                                             "not granted (an administrator grants it with: "
                                             "kpa-install --grant sockets %s)",
                                             m->application.id, rc->id, rc->sockets[k]->name,
                                             rc->sockets[k]->listen, item, m->application.id);
        }
        return 0;
}
