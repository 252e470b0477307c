/* manifest.c: the KasperskyOS manifest (version "2.0") read into kpa_manifest.
 *
 * The text passes json-strict.c (syntax, UTF-8, NUL, duplicate keys, depth,
 * size) and json-c; this file then walks the tree with the field tables of
 * json-fields.c and checks every rule of DESIGN.md section 3: keys, types,
 * required keys, defaults, spelling variants, naming rules and the
 * cross-references (run configuration paths, service uses, the one primary,
 * install paths). Every refusal names the JSON path. It also maps
 * hwSpecification.arch to the Linux machine name. Locale tables live in
 * manifest-locale.c. It never touches the file system: reading the files is
 * the caller's job. */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/un.h>
#include <sys/utsname.h>

#include <json-c/json.h>

#include "json-fields.h"
#include "json-strict.h"
#include "kpa/handle.h"
#include "kpa/manifest.h"
#include "manifest-internal.h"
#include "util.h"

#define APP_ID_MAX 128
#define RUN_CONFIG_ID_MAX 128
#define NAME_MAX_BYTES 255 /* one file name */
#define DIRECTORY_PATH_MAX 1024
#define CPU_WEIGHT_MAX 10000
#define RESTART_MAX_RETRIES_MAX 1000000
#define RESTART_DELAY_MS_MAX 3600000 /* one hour */
#define RESTART_RESET_AFTER_MAX 86400 /* a day, in seconds */

/* What can grow is reached through a pointer (kpa/manifest.h): an array of
 * N pointers to new zeroed elements, each with its struct_size set; one
 * pointer when there are none. */
static void *new_element(size_t size)
{
        void *e = kpa_xcalloc(1, size);
        memcpy(e, &size, sizeof(size));
        return e;
}
#define NEW_ELEMENTS(array, n)                                                                     \
        do {                                                                                       \
                /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */             \
                (array) = kpa_xcalloc((n) ? (n) : 1, sizeof(*(array)));                            \
                for (size_t i_ = 0; i_ < (n); i_++)                                                \
                        (array)[i_] = new_element(sizeof(**(array)));                              \
        } while (0)

/* ---- small string rules ---- */

static bool is_dot_or_dotdot(const char *s) { return streq(s, ".") || streq(s, ".."); }

static bool is_alnum(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static bool valid_app_id(const char *s, size_t len)
{
        if (len < 1 || len > APP_ID_MAX || (len == 1 && s[0] == '.') ||
            (len == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < len; i++)
                if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
                        return false;
        return true;
}

static bool valid_run_config_id(const char *s, size_t len)
{
        if (len < 1 || len > RUN_CONFIG_ID_MAX || (len == 1 && s[0] == '.') ||
            (len == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f || s[i] == '/')
                        return false;
        return true;
}

/* ---- string checks used by the field tables ---- */

static int check_version(const struct json_ctx *c, const char *path, const char *value)
{
        if (streq(value, "2.0"))
                return 0;
        _cleanup_free_ char *q = json_strict_quote(value, JSON_QUOTE_MAX);
        return json_bad(c, path, "must be \"2.0\", not %s (kpa reads manifests of version 2.0)", q);
}

static int check_digest_type(const struct json_ctx *c, const char *path, const char *value)
{
        if (!*value || streq(value, KPA_DIGEST_TYPE_SHA256))
                return 0;
        _cleanup_free_ char *q = json_strict_quote(value, JSON_QUOTE_MAX);
        return json_bad(c, path, "%s is not supported: the only digest type is \"%s\" (SHA-256)", q,
                        KPA_DIGEST_TYPE_SHA256);
}

static int check_app_id(const struct json_ctx *c, const char *path, const char *value)
{
        if (valid_app_id(value, strlen(value)))
                return 0;
        _cleanup_free_ char *q = json_strict_quote(value, JSON_QUOTE_MAX);
        return json_bad(c, path,
                        "%s is not a valid application id: use 1-%d letters, digits, '.', '_' or "
                        "'-', not \".\" or \"..\"",
                        q, APP_ID_MAX);
}

static int check_component_name(const struct json_ctx *c, const char *path, const char *value)
{
        _cleanup_free_ char *q = json_strict_quote(value, JSON_QUOTE_MAX);
        if (strchr(value, '/'))
                return json_bad(c, path, "%s must be a single file name, without '/'", q);
        if (is_dot_or_dotdot(value))
                return json_bad(c, path, "%s is not a valid file name", q);
        if (strlen(value) > NAME_MAX_BYTES)
                return json_bad(c, path, "%s is longer than %d bytes", q, NAME_MAX_BYTES);
        return 0;
}

static int check_run_config_id(const struct json_ctx *c, const char *path, const char *value)
{
        if (valid_run_config_id(value, strlen(value)))
                return 0;
        _cleanup_free_ char *q = json_strict_quote(value, JSON_QUOTE_MAX);
        return json_bad(c, path,
                        "%s is not a valid run configuration id: use 1-%d characters without '/', "
                        "spaces or control characters, not \".\" or \"..\"",
                        q, RUN_CONFIG_ID_MAX);
}

static int check_env_name(const struct json_ctx *c, const char *path, const char *value)
{
        if (!strchr(value, '='))
                return 0;
        _cleanup_free_ char *q = json_strict_quote(value, JSON_QUOTE_MAX);
        return json_bad(c, path, "%s must not contain '='", q);
}

static int check_digest(const struct json_ctx *c, const char *path, const char *value)
{
        size_t n = 0;
        for (; value[n]; n++)
                if (!((value[n] >= '0' && value[n] <= '9') || (value[n] >= 'a' && value[n] <= 'f')))
                        break;
        if (n == KPA_DIGEST_HEX_LEN && !value[n])
                return 0;
        _cleanup_free_ char *q = json_strict_quote(value, JSON_QUOTE_MAX);
        return json_bad(c, path,
                        "%s is not a SHA-256 digest: it must be %d lowercase hexadecimal "
                        "characters",
                        q, KPA_DIGEST_HEX_LEN);
}

/* ---- duplicates among names ---- */

struct named {
        const char *name;
        size_t index;
};

static int cmp_named(const void *a, const void *b)
{
        const struct named *x = a, *y = b;
        int r = strcmp(x->name, y->name);
        return r ? r : (x->index > y->index) - (x->index < y->index);
}

static int cmp_named_name(const void *a, const void *b)
{
        return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

/* NAMES sorted, each with its index; free() the result. */
static struct named *sort_names(const char *const *names, size_t n)
{
        struct named *v = kpa_xcalloc(n, sizeof(*v));
        for (size_t i = 0; i < n; i++)
                v[i] = (struct named){names[i], i};
        qsort(v, n, sizeof(*v), cmp_named);
        return v;
}

/* Whether two of NAMES are equal; then *FIRST < *SECOND, SECOND the
 * earliest second occurrence. */
static bool find_duplicate(const char *const *names, size_t n, size_t *first, size_t *second)
{
        _cleanup_free_ struct named *v = sort_names(names, n);
        bool found = false;
        for (size_t i = 1; i < n; i++)
                if (streq(v[i - 1].name, v[i].name) && (!found || v[i].index < *second)) {
                        *first = v[i - 1].index;
                        *second = v[i].index;
                        found = true;
                }
        return found;
}

/* ---- paths inside a package or on the host ---- */

/* Normalize VALUE, a '/'-separated path: drop empty and "." components,
 * refuse "..". ABSOLUTE says whether it must start with '/' or must not. */
static int normalize_path(const struct json_ctx *c, const char *path, const char *value,
                          bool absolute, char **out)
{
        _cleanup_free_ char *q = json_strict_quote(value, JSON_QUOTE_MAX);
        if (absolute && value[0] != '/')
                return json_bad(c, path, "%s must be an absolute path", q);
        if (!absolute && value[0] == '/')
                return json_bad(c, path, "%s must be a relative path (no leading '/')", q);
        _cleanup_free_ char *norm = kpa_xcalloc(1, strlen(value) + 2);
        size_t len = 0;
        for (const char *s = value; *s;) {
                size_t n = strcspn(s, "/");
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return json_bad(c, path, "%s must not contain \"..\"", q);
                if (n > NAME_MAX_BYTES)
                        return json_bad(c, path, "%s has a component longer than %d bytes", q,
                                        NAME_MAX_BYTES);
                if (n > 0 && !(n == 1 && s[0] == '.')) {
                        if (absolute || len > 0)
                                norm[len++] = '/';
                        memcpy(norm + len, s, n);
                        len += n;
                }
                s += n + (s[n] == '/');
        }
        if (len == 0)
                return json_bad(c, path, "%s names no %s", q,
                                absolute ? "file or directory below /" : "directory");
        *out = TAKE_PTR(norm);
        return 0;
}

/* ---- application and platform ---- */

static int parse_application(const struct json_ctx *c, json_object *obj, kpa_manifest *m)
{
#define A(member) offsetof(kpa_manifest, application.member)
        static const struct json_field fields[] = {
                {"id", JF_STRING, JF_REQUIRED | JF_NONEMPTY, A(id), check_app_id},
                {"name", JF_STRING, JF_REQUIRED | JF_NONEMPTY, A(name), NULL},
                {"version", JF_STRING, JF_REQUIRED | JF_NONEMPTY, A(version), NULL},
                {"buildNumber", JF_STRING, JF_REQUIRED | JF_NONEMPTY, A(build_number), NULL},
                {"systemApplication", JF_BOOL, JF_REQUIRED, A(system_application), NULL},
                {"description", JF_STRING, JF_TEXT, A(description), NULL},
        };
#undef A
        return json_read_fields(c, obj, "application", fields, ELEMENTSOF(fields), m);
}

static const struct {
        const char *written, *machine;
} arch_aliases[] = {
        {"aarch64-kos", "aarch64"},
        {"x86_64-kos", "x86_64"},
        {"amd64", "x86_64"},
        {"arm64", "aarch64"},
};

static const char *arch_alias(const char *arch)
{
        for (size_t i = 0; i < ELEMENTSOF(arch_aliases); i++)
                if (streq(arch, arch_aliases[i].written))
                        return arch_aliases[i].machine;
        return NULL;
}

static int parse_platform(const struct json_ctx *c, json_object *obj, kpa_manifest *m)
{
#define P(member) offsetof(kpa_manifest, platform.member)
        static const struct json_field fields[] = {
                {"id", JF_STRING, JF_REQUIRED | JF_NONEMPTY, P(id), NULL},
                {"sdk", JF_OBJECT, JF_REQUIRED, JF_NO_STORE, NULL},
                {"hwSpecification", JF_OBJECT, JF_REQUIRED, JF_NO_STORE, NULL},
        };
        static const struct json_field sdk_fields[] = {
                {"buildSdkName", JF_STRING, JF_REQUIRED | JF_NONEMPTY, P(build_sdk_name), NULL},
                {"buildSdkVersion", JF_STRING, JF_REQUIRED | JF_NONEMPTY, P(build_sdk_version),
                 NULL},
                {"targetApiLevel", JF_INT, JF_REQUIRED, P(target_api_level), NULL},
        };
        static const struct json_field hw_fields[] = {
                {"arch", JF_STRING, JF_REQUIRED | JF_NONEMPTY, P(arch), NULL},
                {"cpu", JF_STRING, JF_REQUIRED, P(cpu), NULL},
        };
#undef P
        int r = json_read_fields(c, obj, "platform", fields, ELEMENTSOF(fields), m);
        if (r >= 0)
                r = json_read_fields(c, json_member(obj, "sdk"), "platform.sdk", sdk_fields,
                                     ELEMENTSOF(sdk_fields), m);
        if (r >= 0 && m->platform.target_api_level < 0)
                r = json_bad(c, "platform.sdk.targetApiLevel", "must not be negative");
        if (r >= 0)
                r = json_read_fields(c, json_member(obj, "hwSpecification"),
                                     "platform.hwSpecification", hw_fields, ELEMENTSOF(hw_fields),
                                     m);
        if (r < 0)
                return r;
        /* KasperskyOS names end in "-kos" ("aarch64-kos"); Linux drops it. */
        struct manifest_priv *priv = m->priv;
        size_t len = strlen(m->platform.arch);
        if (!arch_alias(m->platform.arch) && len > 4 && streq(m->platform.arch + len - 4, "-kos"))
                priv->linux_arch = kpa_xasprintf("%.*s", (int)(len - 4), m->platform.arch);
        return 0;
}

/* ---- components ---- */

static const char *const component_types[] = {
        [KPA_COMPONENT_BIN] = "bin",
        [KPA_COMPONENT_LIB] = "lib",
        [KPA_COMPONENT_RES] = "res",
        [KPA_COMPONENT_MANIFEST_LOCALE] = "manifestLocale",
};

static const char *const component_dirs[] = {
        [KPA_COMPONENT_BIN] = "bin",
        [KPA_COMPONENT_LIB] = "lib",
        [KPA_COMPONENT_RES] = "res",
        [KPA_COMPONENT_MANIFEST_LOCALE] = "manifest_locales",
};

static int parse_component(const struct json_ctx *c, json_object *obj, const char *path,
                           kpa_component *comp)
{
        static const struct json_field fields[] = {
                {"name", JF_STRING, JF_REQUIRED | JF_NONEMPTY, offsetof(kpa_component, name),
                 check_component_name},
                {"digest", JF_STRING, 0, offsetof(kpa_component, digest), NULL},
                {"componentType", JF_STRING, JF_REQUIRED, JF_NO_STORE, NULL},
                {"directoryPath", JF_STRING, 0, JF_NO_STORE, NULL},
        };
        int r = json_read_fields(c, obj, path, fields, ELEMENTSOF(fields), comp);
        if (r < 0)
                return r;
        bool allow_missing = c->flags & KPA_MANIFEST_ALLOW_MISSING_DIGESTS;
        if (!comp->digest && !allow_missing)
                return json_bad(c, path, "missing required key \"digest\"");
        if (!comp->digest)
                comp->digest = kpa_xstrdup("");
        _cleanup_free_ char *digest_path = json_strict_path_key(path, "digest");
        if ((*comp->digest || !allow_missing) &&
            (r = check_digest(c, digest_path, comp->digest)) < 0)
                return r;

        _cleanup_free_ char *type_path = json_strict_path_key(path, "componentType");
        int type;
        r = json_want_enum(c, type_path, json_object_get_string(json_member(obj, "componentType")),
                           component_types, ELEMENTSOF(component_types), &type);
        if (r < 0)
                return r;
        comp->type = (kpa_component_type)type;

        json_object *dir = json_member(obj, "directoryPath");
        if (dir) {
                _cleanup_free_ char *p = json_strict_path_key(path, "directoryPath");
                if (comp->type != KPA_COMPONENT_RES)
                        return json_bad(c, p, "is only allowed for res components, not for %s",
                                        component_types[type]);
                if (json_object_get_string_len(dir) > DIRECTORY_PATH_MAX)
                        return json_bad(c, p, "is longer than %d bytes", DIRECTORY_PATH_MAX);
                r = normalize_path(c, p, json_object_get_string(dir), false, &comp->directory_path);
                if (r < 0)
                        return r;
        }
        comp->install_path = kpa_xasprintf("%s/%s%s%s", component_dirs[type],
                                           comp->directory_path ? comp->directory_path : "",
                                           comp->directory_path ? "/" : "", comp->name);
        return 0;
}

/* No two components at one install path, and none where another needs a
 * directory (res/img as a file and res/img/logo.png). */
static int check_install_paths(const struct json_ctx *c, const kpa_manifest *m, const char *path)
{
        size_t n = m->n_components, first, second;
        _cleanup_free_ const char **names = kpa_xcalloc(n, sizeof(*names));
        for (size_t i = 0; i < n; i++)
                names[i] = m->components[i]->install_path;
        if (find_duplicate(names, n, &first, &second)) {
                _cleanup_free_ char *p = json_strict_path_index(path, second);
                return json_bad(c, p, "installs to \"%s\", like %s[%zu]", names[second], path,
                                first);
        }
        _cleanup_free_ struct named *sorted = sort_names(names, n);
        for (size_t i = 0; i < n; i++) {
                const char *s = names[i];
                for (const char *slash = strchr(strchr(s, '/') + 1, '/'); slash;
                     slash = strchr(slash + 1, '/')) {
                        _cleanup_free_ char *dir = kpa_xasprintf("%.*s", (int)(slash - s), s);
                        struct named key = {dir, 0}, *hit;
                        hit = bsearch(&key, sorted, n, sizeof(key), cmp_named_name);
                        if (!hit)
                                continue;
                        _cleanup_free_ char *p = json_strict_path_index(path, i);
                        return json_bad(c, p,
                                        "installs to \"%s\", which needs a directory \"%s\", "
                                        "but %s[%zu] is a file there",
                                        s, dir, path, hit->index);
                }
        }
        return 0;
}

static int parse_components(const struct json_ctx *c, json_object *arr, kpa_manifest *m)
{
        size_t n = json_object_array_length(arr);
        if (n == 0)
                return 0;
        NEW_ELEMENTS(m->components, n);
        m->n_components = n;
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(arr, i);
                _cleanup_free_ char *p = json_strict_path_index("components", i);
                int r = json_want_type(c, p, v, json_type_object);
                if (r >= 0)
                        r = parse_component(c, v, p, m->components[i]);
                if (r < 0)
                        return r;
        }
        return check_install_paths(c, m, "components");
}

/* ---- run configurations ---- */

static const char *const run_types[] = {
        [KPA_RUN_GUI] = "gui",
        [KPA_RUN_SERVICE] = "service",
};

static const char *const use_types[] = {
        [KPA_USE_CHILD] = "child",
        [KPA_USE_SERVICE_CAN_USE] = "serviceCanUse",
        [KPA_USE_SERVICE_ACTIVE] = "serviceActive",
};

static int parse_args(const struct json_ctx *c, json_object *arr, const char *path,
                      kpa_run_config *rc)
{
        size_t n = arr ? json_object_array_length(arr) : 0;
        rc->args = kpa_xcalloc(n + 1, sizeof(*rc->args));
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(arr, i);
                _cleanup_free_ char *p = json_strict_path_index(path, i);
                int r = json_want_type(c, p, v, json_type_string);
                if (r < 0)
                        return r;
                rc->args[i] = kpa_xstrdup(json_object_get_string(v));
                rc->n_args = i + 1;
        }
        return 0;
}

static int parse_env(const struct json_ctx *c, json_object *arr, const char *path,
                     kpa_run_config *rc)
{
        static const struct json_field fields[] = {
                {"name", JF_STRING, JF_REQUIRED | JF_NONEMPTY, offsetof(kpa_env_var, name),
                 check_env_name},
                {"value", JF_STRING, JF_REQUIRED | JF_TEXT, offsetof(kpa_env_var, value), NULL},
        };
        size_t n = json_object_array_length(arr), first, second;
        if (n == 0)
                return 0;
        rc->env = kpa_xcalloc(n, sizeof(*rc->env));
        rc->n_env = n;
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(arr, i);
                _cleanup_free_ char *p = json_strict_path_index(path, i);
                int r = json_want_type(c, p, v, json_type_object);
                if (r >= 0)
                        r = json_read_fields(c, v, p, fields, ELEMENTSOF(fields), &rc->env[i]);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ const char **names = kpa_xcalloc(n, sizeof(*names));
        for (size_t i = 0; i < n; i++)
                names[i] = rc->env[i].name;
        if (!find_duplicate(names, n, &first, &second))
                return 0;
        _cleanup_free_ char *p = json_strict_path_index(path, second);
        _cleanup_free_ char *pn = json_strict_path_key(p, "name");
        _cleanup_free_ char *q = json_strict_quote(names[second], JSON_QUOTE_MAX);
        return json_bad(c, pn, "%s is set twice (also by %s[%zu])", q, path, first);
}

static int check_service_name(const struct json_ctx *c, const char *path, const char *value)
{
        const char *slash = strchr(value, '/');
        bool valid = slash ? valid_app_id(value, (size_t)(slash - value)) &&
                                     valid_run_config_id(slash + 1, strlen(slash + 1))
                           : valid_run_config_id(value, strlen(value));
        if (valid)
                return 0;
        _cleanup_free_ char *q = json_strict_quote(value, JSON_QUOTE_MAX);
        return json_bad(c, path,
                        "%s must be RUNCONFIG or PACKAGE/RUNCONFIG (a run configuration id, "
                        "optionally after an application id and '/')",
                        q);
}

static int parse_service_use(const struct json_ctx *c, json_object *obj, const char *path,
                             kpa_service_use *use)
{
        static const struct json_field fields[] = {
                {"name", JF_STRING, JF_REQUIRED | JF_NONEMPTY, offsetof(kpa_service_use, name),
                 check_service_name},
                {"useType", JF_STRING, JF_REQUIRED, JF_NO_STORE, NULL},
        };
        int r = json_want_type(c, path, obj, json_type_object);
        if (r >= 0)
                r = json_read_fields(c, obj, path, fields, ELEMENTSOF(fields), use);
        if (r < 0)
                return r;
        _cleanup_free_ char *p = json_strict_path_key(path, "useType");
        int type;
        r = json_want_enum(c, p, json_object_get_string(json_member(obj, "useType")), use_types,
                           ELEMENTSOF(use_types), &type);
        use->use_type = (kpa_use_type)type;
        return r;
}

static int parse_uses(const struct json_ctx *c, json_object *obj, const char *path,
                      kpa_run_config *rc)
{
        const char *key;
        int r = json_pick_spelling(c, obj, path, "usesServices", "usesService", &key);
        if (r < 0 || !key)
                return r;
        json_object *arr = json_member(obj, key);
        size_t n = json_object_array_length(arr);
        if (n == 0)
                return 0;
        _cleanup_free_ char *arr_path = json_strict_path_key(path, key);
        NEW_ELEMENTS(rc->uses, n);
        rc->n_uses = n;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = json_strict_path_index(arr_path, i);
                r = parse_service_use(c, json_object_array_get_idx(arr, i), p, rc->uses[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_run_path(const struct json_ctx *c, const kpa_manifest *m, const char *path,
                          const kpa_run_config *rc)
{
        const kpa_component *comp = kpa_manifest_find_component(m, rc->path);
        if (comp && comp->type == KPA_COMPONENT_BIN)
                return 0;
        _cleanup_free_ char *p = json_strict_path_key(path, "path");
        _cleanup_free_ char *q = json_strict_quote(rc->path, JSON_QUOTE_MAX);
        if (comp)
                return json_bad(c, p, "%s must name a bin component (it names a %s component)", q,
                                component_types[comp->type]);
        return json_bad(c, p,
                        "%s must name a bin component (no component is installed there; "
                        "write it as bin/NAME)",
                        q);
}

static int parse_run_config(const struct json_ctx *c, const kpa_manifest *m, json_object *obj,
                            const char *path, kpa_run_config *rc)
{
#define R(member) offsetof(kpa_run_config, member)
        static const struct json_field fields[] = {
                {"id", JF_STRING, JF_REQUIRED | JF_NONEMPTY, R(id), check_run_config_id},
                {"name", JF_STRING, JF_REQUIRED | JF_NONEMPTY, R(name), NULL},
                {"type", JF_STRING, JF_REQUIRED, JF_NO_STORE, NULL},
                {"path", JF_STRING, JF_REQUIRED | JF_NONEMPTY, R(path), NULL},
                {"primary", JF_BOOL, JF_REQUIRED, R(primary), NULL},
                {"autorun", JF_BOOL, 0, R(autorun), NULL},
                {"eiid", JF_STRING, JF_NONEMPTY, R(eiid), NULL},
                {"args", JF_ARRAY, 0, JF_NO_STORE, NULL},
                {"envVariables", JF_ARRAY, 0, JF_NO_STORE, NULL},
                {"usesServices", JF_ARRAY, 0, JF_NO_STORE, NULL},
                {"usesService", JF_ARRAY, 0, JF_NO_STORE, NULL},
        };
#undef R
        int r = json_want_type(c, path, obj, json_type_object);
        if (r >= 0)
                r = json_read_fields(c, obj, path, fields, ELEMENTSOF(fields), rc);
        if (r < 0)
                return r;
        _cleanup_free_ char *type_path = json_strict_path_key(path, "type");
        int type;
        r = json_want_enum(c, type_path, json_object_get_string(json_member(obj, "type")),
                           run_types, ELEMENTSOF(run_types), &type);
        if (r < 0)
                return r;
        rc->type = (kpa_run_type)type;
        _cleanup_free_ char *args_path = json_strict_path_key(path, "args");
        r = parse_args(c, json_member(obj, "args"), args_path, rc);
        if (r < 0)
                return r;
        if (json_member(obj, "envVariables")) {
                _cleanup_free_ char *p = json_strict_path_key(path, "envVariables");
                r = parse_env(c, json_member(obj, "envVariables"), p, rc);
                if (r < 0)
                        return r;
        }
        r = parse_uses(c, obj, path, rc);
        if (r < 0)
                return r;
        return check_run_path(c, m, path, rc);
}

/* Exactly one primary run configuration when there are any. */
static int check_primary(const struct json_ctx *c, const kpa_manifest *m, const char *key)
{
        size_t primary = SIZE_MAX;
        for (size_t i = 0; i < m->n_run_configs; i++) {
                if (!m->run_configs[i]->primary)
                        continue;
                if (primary != SIZE_MAX) {
                        _cleanup_free_ char *p = json_strict_path_index(key, i);
                        _cleanup_free_ char *pp = json_strict_path_key(p, "primary");
                        return json_bad(c, pp,
                                        "only one run configuration may be primary, and "
                                        "%s[%zu] is primary already",
                                        key, primary);
                }
                primary = i;
        }
        if (m->n_run_configs > 0 && primary == SIZE_MAX)
                return json_bad(c, key,
                                "no run configuration is primary: exactly one must have "
                                "\"primary\": true");
        return 0;
}

/* The run configuration of this package that usesServices[J] of RC names
 * ("RUNCONFIG" or "THISPACKAGE/RUNCONFIG"), or NULL for another package's. */
static const char *use_target(const kpa_manifest *m, const kpa_service_use *use)
{
        size_t id_len = strlen(m->application.id);
        const char *name = use->name;
        if (strncmp(name, m->application.id, id_len) == 0 && name[id_len] == '/')
                return name + id_len + 1;
        return strchr(name, '/') ? NULL : name;
}

/* The JSON path of usesServices[J].name of run configuration I. */
static char *use_path(json_object *arr, const char *key, size_t i, size_t j)
{
        json_object *obj = json_object_array_get_idx(arr, i);
        const char *spelling = json_member(obj, "usesServices") ? "usesServices" : "usesService";
        return kpa_xasprintf("%s[%zu].%s[%zu].name", key, i, spelling, j);
}

/* The cycle that the use J of run configuration STACK[DEPTH] closes, back
 * to run configuration K on the path STACK[0..DEPTH]: refused. */
static int refuse_cycle(const struct json_ctx *c, const kpa_manifest *m, json_object *arr,
                        const char *key, const size_t *stack, size_t depth, size_t j, size_t k)
{
        size_t from = depth;
        while (stack[from] != k)
                from--;
        _cleanup_free_ char *chain = kpa_xstrdup("");
        for (size_t d = from; d <= depth; d++) {
                bool cut = strlen(chain) > 160 && d + 1 < depth; /* a long one: its ends */
                char *longer = kpa_xasprintf("%s%s -> ", chain,
                                             cut ? "..." : m->run_configs[stack[d]]->id);
                free(chain);
                chain = longer;
                if (cut)
                        d = depth - 1;
        }
        const kpa_run_config *rc = m->run_configs[stack[depth]];
        _cleanup_free_ char *p = use_path(arr, key, stack[depth], j);
        _cleanup_free_ char *q = json_strict_quote(rc->uses[j]->name, JSON_QUOTE_MAX);
        return json_bad(c, p, "%s makes a cycle of usesServices: %s%s", q, chain,
                        m->run_configs[k]->id);
}

/* Depth-first walk from run configuration ROOT along the uses of this
 * package, without recursion (a chain may be as long as the manifest
 * allows); COLOR: 0 not seen, 1 on the current path STACK, 2 done; NEXT:
 * the next use to follow of each run configuration on the path. A use that
 * reaches a run configuration on the path closes a cycle. */
static int walk_uses(const struct json_ctx *c, const kpa_manifest *m, json_object *arr,
                     const char *key, size_t root, int *color, size_t *stack, size_t *next)
{
        size_t depth = 0;
        stack[0] = root;
        next[0] = 0;
        color[root] = 1;
        for (;;) {
                const kpa_run_config *rc = m->run_configs[stack[depth]];
                if (next[depth] == rc->n_uses) {
                        color[stack[depth]] = 2;
                        if (depth == 0)
                                return 0;
                        depth--;
                        continue;
                }
                size_t j = next[depth]++;
                const char *target = use_target(m, rc->uses[j]);
                const kpa_run_config *t = target ? kpa_manifest_find_run_config(m, target) : NULL;
                if (!t)
                        continue;
                size_t k = 0;
                while (m->run_configs[k] != t)
                        k++;
                if (color[k] == 1)
                        return refuse_cycle(c, m, arr, key, stack, depth, j, k);
                if (color[k] == 0) {
                        color[k] = 1;
                        stack[++depth] = k;
                        next[depth] = 0;
                }
        }
}

/* "RUNCONFIG" and "THISPACKAGE/RUNCONFIG" must name a run configuration of
 * this package whose id can name a handle, and the uses must not form a
 * cycle (kpa starts a service before its clients); another package's are
 * checked when it runs. ARR is the JSON array at KEY, for the spelling of
 * usesServices in each path. */
static int check_service_refs(const struct json_ctx *c, const kpa_manifest *m, json_object *arr,
                              const char *key)
{
        for (size_t i = 0; i < m->n_run_configs; i++) {
                const kpa_run_config *rc = m->run_configs[i];
                for (size_t j = 0; j < rc->n_uses; j++) {
                        const char *target = use_target(m, rc->uses[j]);
                        if (!target)
                                continue;
                        const kpa_run_config *t = kpa_manifest_find_run_config(m, target);
                        if (t && !strchr(target, ':'))
                                continue;
                        _cleanup_free_ char *p = use_path(arr, key, i, j);
                        _cleanup_free_ char *q =
                                json_strict_quote(rc->uses[j]->name, JSON_QUOTE_MAX);
                        if (!t)
                                return json_bad(c, p,
                                                "%s names no run configuration of this package", q);
                        return json_bad(c, p,
                                        "%s cannot be a service: the handle that connects "
                                        "to it is named after it, and a handle name has no ':'",
                                        q);
                }
        }
        _cleanup_free_ int *color = kpa_xcalloc(m->n_run_configs, sizeof(int));
        _cleanup_free_ size_t *stack = kpa_xcalloc(m->n_run_configs, sizeof(size_t));
        _cleanup_free_ size_t *next = kpa_xcalloc(m->n_run_configs, sizeof(size_t));
        for (size_t i = 0; i < m->n_run_configs; i++)
                if (color[i] == 0) {
                        int r = walk_uses(c, m, arr, key, i, color, stack, next);
                        if (r < 0)
                                return r;
                }
        return 0;
}

static int parse_run_configs(const struct json_ctx *c, json_object *root, kpa_manifest *m)
{
        const char *key;
        int r = json_pick_spelling(c, root, "", "runConfigurations", "runConfiguration", &key);
        if (r < 0 || !key)
                return r;
        json_object *arr = json_member(root, key);
        size_t n = json_object_array_length(arr), first, second;
        if (n == 0)
                return 0;
        NEW_ELEMENTS(m->run_configs, n);
        m->n_run_configs = n;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = json_strict_path_index(key, i);
                r = parse_run_config(c, m, json_object_array_get_idx(arr, i), p, m->run_configs[i]);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ const char **ids = kpa_xcalloc(n, sizeof(*ids));
        for (size_t i = 0; i < n; i++)
                ids[i] = m->run_configs[i]->id;
        if (find_duplicate(ids, n, &first, &second)) {
                _cleanup_free_ char *p = kpa_xasprintf("%s[%zu].id", key, second);
                _cleanup_free_ char *q = json_strict_quote(ids[second], JSON_QUOTE_MAX);
                return json_bad(c, p, "%s is already the id of %s[%zu]; ids must be unique", q, key,
                                first);
        }
        r = check_primary(c, m, key);
        if (r < 0)
                return r;
        return check_service_refs(c, m, arr, key);
}

/* ---- privateStorage and numbers written as strings ---- */

/* Parse N decimal digits at S; false when not digits or too large. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
        uint64_t v = 0;
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                unsigned d = (unsigned)(s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        *out = v;
        return true;
}

static int parse_private_storage(const struct json_ctx *c, json_object *obj, kpa_manifest *m)
{
        static const struct json_field fields[] = {
                {"size", JF_STRING, JF_REQUIRED | JF_NONEMPTY, offsetof(kpa_manifest, storage_size),
                 NULL},
                {"fsType", JF_STRING, JF_NONEMPTY, offsetof(kpa_manifest, storage_fs_type), NULL},
        };
        int r = json_read_fields(c, obj, "privateStorage", fields, ELEMENTSOF(fields), m);
        if (r < 0)
                return r;
        uint64_t mb;
        _cleanup_free_ char *q = json_strict_quote(m->storage_size, JSON_QUOTE_MAX);
        size_t len = strlen(m->storage_size);
        if (strspn(m->storage_size, "0123456789") != len)
                return json_bad(c, "privateStorage.size",
                                "%s must be a number of megabytes written "
                                "as a string of digits, e.g. \"64\"",
                                q);
        if (!parse_u64(m->storage_size, len, &mb))
                mb = UINT64_MAX;
        if (mb == 0 || mb > UINT64_MAX >> 20)
                return json_bad(c, "privateStorage.size",
                                "%s megabytes is out of range (1 to %llu)", q,
                                (unsigned long long)(UINT64_MAX >> 20));
        m->has_private_storage = true;
        m->storage_size_mb = mb;
        return 0;
}

/* ---- extensions ---- */

/* The JSON Schema pattern ^[A-Z_]+_.+ (ECMA-262: '.' is not a line terminator). */
static bool valid_extension_name(const char *s)
{
        size_t prefix = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
        for (size_t k = 1; k < prefix; k++) {
                const char *next = s + k + 1;
                if (s[k] != '_' || !*next || *next == '\n' || *next == '\r')
                        continue;
                if (strncmp(next, "\xE2\x80\xA8", 3) == 0 || strncmp(next, "\xE2\x80\xA9", 3) == 0)
                        continue;
                return true;
        }
        return false;
}

/* "64M" (K, M, G, T: powers of 1024) or digits (bytes), more than 0. */
static int parse_memory(const struct json_ctx *c, json_object *v, const char *path, uint64_t *out)
{
        static const char suffixes[] = "KMGT";
        if (json_object_is_type(v, json_type_int)) {
                if (json_object_get_int64(v) < 1)
                        return json_bad(c, path, "must be at least 1 byte");
                *out = (uint64_t)json_object_get_int64(v);
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return json_wrong_type(c, path,
                                       "a string such as \"64M\" or an integer number of bytes", v);
        const char *s = json_object_get_string(v);
        size_t n = strlen(s);
        unsigned shift = 0;
        const char *suffix = n > 0 ? strchr(suffixes, s[n - 1]) : NULL;
        if (suffix) {
                shift = 10u * (unsigned)(suffix - suffixes + 1);
                n--;
        }
        uint64_t value;
        _cleanup_free_ char *q = json_strict_quote(s, JSON_QUOTE_MAX);
        if (!parse_u64(s, n, &value))
                return json_bad(c, path,
                                "%s must be digits with an optional K, M, G or T suffix "
                                "(powers of 1024), e.g. \"64M\"",
                                q);
        if (value == 0)
                return json_bad(c, path, "%s must be more than 0", q);
        if (value > UINT64_MAX >> shift)
                return json_bad(c, path, "%s is too large", q);
        *out = value << shift;
        return 0;
}

/* An optional integer KEY of OBJ between MIN and MAX. */
static int read_int_range(const struct json_ctx *c, json_object *obj, const char *path,
                          const char *key, int64_t min, int64_t max, uint64_t *out)
{
        json_object *v;
        if (!json_object_object_get_ex(obj, key, &v))
                return 0;
        _cleanup_free_ char *p = json_strict_path_key(path, key);
        int r = json_want_type(c, p, v, json_type_int);
        if (r < 0)
                return r;
        int64_t x = json_object_get_int64(v);
        if (x < min || x > max)
                return json_bad(c, p, "must be from %lld to %lld, not %lld", (long long)min,
                                (long long)max, (long long)x);
        *out = (uint64_t)x;
        return 0;
}

static int parse_limits(const struct json_ctx *c, json_object *obj, const char *path,
                        kpa_manifest *m)
{
        static const struct json_field fields[] = {
                {"memory", JF_STRING, 0, JF_NO_STORE, NULL},
                {"pids", JF_INT, 0, JF_NO_STORE, NULL},
                {"cpuWeight", JF_INT, 0, JF_NO_STORE, NULL},
        };
        int r = json_want_type(c, path, obj, json_type_object);
        if (r >= 0)
                r = json_check_unknown_keys(c, obj, path, fields, ELEMENTSOF(fields));
        if (r < 0)
                return r;
        json_object *memory;
        if (json_object_object_get_ex(obj, "memory", &memory)) {
                _cleanup_free_ char *p = json_strict_path_key(path, "memory");
                r = parse_memory(c, memory, p, &m->limits->memory_bytes);
                if (r < 0)
                        return r;
        }
        r = read_int_range(c, obj, path, "pids", 1, INT64_MAX, &m->limits->pids);
        if (r < 0)
                return r;
        return read_int_range(c, obj, path, "cpuWeight", 1, CPU_WEIGHT_MAX, &m->limits->cpu_weight);
}

static int parse_read_only_paths(const struct json_ctx *c, json_object *arr, const char *path,
                                 kpa_sandbox_settings *sb)
{
        size_t n = json_object_array_length(arr), first, second;
        sb->read_only_paths = kpa_xcalloc(n + 1, sizeof(*sb->read_only_paths));
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(arr, i);
                _cleanup_free_ char *p = json_strict_path_index(path, i);
                int r = json_want_type(c, p, v, json_type_string);
                if (r >= 0 && json_has_control(json_object_get_string(v))) {
                        _cleanup_free_ char *q =
                                json_strict_quote(json_object_get_string(v), JSON_QUOTE_MAX);
                        r = json_bad(c, p, "%s must not contain control characters", q);
                }
                if (r >= 0)
                        r = normalize_path(c, p, json_object_get_string(v), true,
                                           &sb->read_only_paths[i]);
                if (r < 0)
                        return r;
                sb->n_read_only_paths = i + 1;
        }
        if (!find_duplicate((const char *const *)sb->read_only_paths, n, &first, &second))
                return 0;
        _cleanup_free_ char *p = json_strict_path_index(path, second);
        return json_bad(c, p, "\"%s\" is listed twice (also at %s[%zu])",
                        sb->read_only_paths[second], path, first);
}

static int parse_sandbox(const struct json_ctx *c, json_object *obj, const char *path,
                         kpa_manifest *m)
{
        static const char *const network_modes[] = {
                [KPA_NETWORK_NONE] = "none",
                [KPA_NETWORK_HOST] = "host",
        };
#define S(f) offsetof(kpa_sandbox_settings, f)
        static const struct json_field fields[] = {
                {"network", JF_STRING, 0, JF_NO_STORE, NULL},
                {"readOnlyPaths", JF_ARRAY, 0, JF_NO_STORE, NULL},
                {"allowPtrace", JF_BOOL, 0, S(allow_ptrace), NULL},
                {"allowPerfEvents", JF_BOOL, 0, S(allow_perf_events), NULL},
                {"allowBpf", JF_BOOL, 0, S(allow_bpf), NULL},
                {"allowKeyring", JF_BOOL, 0, S(allow_keyring), NULL},
                {"allowUserfaultfd", JF_BOOL, 0, S(allow_userfaultfd), NULL},
                {"allowPersonality", JF_BOOL, 0, S(allow_personality), NULL},
        };
#undef S
        int r = json_want_type(c, path, obj, json_type_object);
        if (r >= 0)
                r = json_read_fields(c, obj, path, fields, ELEMENTSOF(fields), m->sandbox);
        if (r < 0)
                return r;
        json_object *network = json_member(obj, "network");
        if (network) {
                _cleanup_free_ char *p = json_strict_path_key(path, "network");
                int mode;
                r = json_want_enum(c, p, json_object_get_string(network), network_modes,
                                   ELEMENTSOF(network_modes), &mode);
                if (r < 0)
                        return r;
                m->sandbox->network = (kpa_network_mode)mode;
        }
        json_object *paths = json_member(obj, "readOnlyPaths");
        if (!paths)
                return 0;
        _cleanup_free_ char *p = json_strict_path_key(path, "readOnlyPaths");
        return parse_read_only_paths(c, paths, p, m->sandbox);
}

/* What kpa_manifest.restart holds when KPA_restart does not say. */
static const kpa_restart_policy restart_defaults = {
        .struct_size = sizeof(kpa_restart_policy),
        .mode = KPA_RESTART_NO,
        .max_retries = 5,
        .delay_ms = 100,
        .max_delay_ms = 30000,
        .reset_after_s = 60,
};

static int parse_restart(const struct json_ctx *c, json_object *obj, const char *path,
                         kpa_manifest *m)
{
        static const char *const policies[] = {
                [KPA_RESTART_NO] = "no",
                [KPA_RESTART_ON_FAILURE] = "on-failure",
                [KPA_RESTART_ALWAYS] = "always",
        };
        static const struct json_field fields[] = {
                {"policy", JF_STRING, 0, JF_NO_STORE, NULL},
                {"maxRetries", JF_INT, 0, JF_NO_STORE, NULL},
                {"delayMs", JF_INT, 0, JF_NO_STORE, NULL},
                {"maxDelayMs", JF_INT, 0, JF_NO_STORE, NULL},
                {"resetAfter", JF_INT, 0, JF_NO_STORE, NULL},
        };
        kpa_restart_policy *rp = m->restart;
        uint64_t retries = rp->max_retries, delay = rp->delay_ms, max_delay = rp->max_delay_ms,
                 reset_after = rp->reset_after_s;
        int r = json_want_type(c, path, obj, json_type_object);
        if (r >= 0)
                r = json_read_fields(c, obj, path, fields, ELEMENTSOF(fields), NULL);
        if (r < 0)
                return r;
        json_object *policy = json_member(obj, "policy");
        if (policy) {
                _cleanup_free_ char *p = json_strict_path_key(path, "policy");
                int mode;
                r = json_want_enum(c, p, json_object_get_string(policy), policies,
                                   ELEMENTSOF(policies), &mode);
                if (r < 0)
                        return r;
                rp->mode = (kpa_restart_mode)mode;
        }
        r = read_int_range(c, obj, path, "maxRetries", 0, RESTART_MAX_RETRIES_MAX, &retries);
        if (r >= 0)
                r = read_int_range(c, obj, path, "delayMs", 1, RESTART_DELAY_MS_MAX, &delay);
        if (r >= 0)
                r = read_int_range(c, obj, path, "maxDelayMs", 1, RESTART_DELAY_MS_MAX, &max_delay);
        if (r >= 0)
                r = read_int_range(c, obj, path, "resetAfter", 1, RESTART_RESET_AFTER_MAX,
                                   &reset_after);
        if (r < 0)
                return r;
        /* The backoff grows from delayMs to maxDelayMs; either may be a default. */
        if (max_delay < delay) {
                bool max_set = json_member(obj, "maxDelayMs");
                _cleanup_free_ char *p =
                        json_strict_path_key(path, max_set ? "maxDelayMs" : "delayMs");
                if (max_set)
                        return json_bad(c, p, "%llu is less than delayMs (%llu%s)",
                                        (unsigned long long)max_delay, (unsigned long long)delay,
                                        json_member(obj, "delayMs") ? "" : ", the default");
                return json_bad(c, p,
                                "%llu is more than maxDelayMs (%llu, the default): set "
                                "maxDelayMs too",
                                (unsigned long long)delay, (unsigned long long)max_delay);
        }
        rp->max_retries = (uint32_t)retries;
        rp->delay_ms = (uint32_t)delay;
        rp->max_delay_ms = (uint32_t)max_delay;
        rp->reset_after_s = (uint32_t)reset_after;
        return 0;
}

/* KPA_sockets: {"RUNCONFIG_ID": [{"name": "http", "listen": "tcp:127.0.0.1:8080",
 * "activate": false}, ...]}. Addresses are numeric: a declaration is also a
 * permission item ("sockets:tcp:127.0.0.1:8080"), and a name would make
 * the grant depend on a resolver. */
static int parse_tcp_listen(const struct json_ctx *c, const char *path, const char *q,
                            const char *arg, kpa_socket_decl *d)
{
        const char *host = arg, *colon;
        size_t len;
        bool v6 = *arg == '[';
        if (v6) {
                const char *close_br = strchr(arg, ']');
                if (!close_br || close_br[1] != ':')
                        return json_bad(c, path, "%s: write an IPv6 address as [ADDRESS]:PORT", q);
                host = arg + 1;
                len = (size_t)(close_br - host);
                colon = close_br + 1;
        } else {
                colon = strrchr(arg, ':');
                if (!colon)
                        return json_bad(c, path, "%s must be tcp:ADDRESS:PORT", q);
                len = (size_t)(colon - arg);
        }
        char buf[INET6_ADDRSTRLEN + 1];
        unsigned char bin[sizeof(struct in6_addr)];
        if (len == 0 || len >= sizeof(buf))
                return json_bad(c, path, "%s: no numeric address before the port", q);
        memcpy(buf, host, len);
        buf[len] = '\0';
        if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, bin) != 1)
                return json_bad(c, path,
                                "%s: \"%s\" is not a numeric %s address (e.g. 127.0.0.1, "
                                "0.0.0.0, [::1])",
                                q, buf, v6 ? "IPv6" : "IPv4");
        const char *port = colon + 1;
        size_t plen = strlen(port);
        unsigned long n = plen > 0 && plen <= 5 && strspn(port, "0123456789") == plen
                                  ? strtoul(port, NULL, 10)
                                  : 70000;
        if (n == 0)
                return json_bad(c, path,
                                "%s: port 0 is not a declared port (a client could not find it); "
                                "pick a port from 1 to 65535",
                                q);
        if (n > 65535)
                return json_bad(c, path, "%s: bad port \"%s\" (a number from 1 to 65535)", q, port);
        d->kind = KPA_SOCKET_TCP;
        d->address = kpa_xstrdup(buf);
        d->port = (uint16_t)n;
        return 0;
}

static int parse_unix_listen(const struct json_ctx *c, const kpa_manifest *m, const char *path,
                             const char *q, const char *rel, kpa_socket_decl *d)
{
        size_t room = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
        size_t full = strlen(KPA_SOCKETS_DIR "/") + strlen(m->application.id) + 1 + strlen(rel);
        if (!*rel)
                return json_bad(c, path, "%s: no socket path after \"unix:\"", q);
        if (rel[0] == '/' || streq(rel, "..") || strncmp(rel, "../", 3) == 0 ||
            strstr(rel, "/../") || (strlen(rel) >= 3 && streq(rel + strlen(rel) - 3, "/..")))
                return json_bad(c, path,
                                "%s must stay below " KPA_SOCKETS_DIR "/%s/ (a relative path "
                                "without \"..\")",
                                q, m->application.id);
        if (json_has_control(rel) || rel[strlen(rel) - 1] == '/' || strstr(rel, "//") ||
            streq(rel, ".") || strncmp(rel, "./", 2) == 0 || strstr(rel, "/./"))
                return json_bad(c, path,
                                "%s: the path must be plain (no control characters, no \".\", "
                                "\"//\" or trailing \"/\")",
                                q);
        if (full > room)
                return json_bad(c, path,
                                "%s: " KPA_SOCKETS_DIR "/%s/%s is longer than a socket address "
                                "holds (%zu bytes)",
                                q, m->application.id, rel, room);
        d->kind = KPA_SOCKET_UNIX;
        d->address = kpa_xstrdup(rel);
        return 0;
}

static int parse_socket_decl(const struct json_ctx *c, const kpa_manifest *m, json_object *obj,
                             const char *path, kpa_socket_decl *d)
{
        static const struct json_field fields[] = {
                {"name", JF_STRING, JF_REQUIRED | JF_NONEMPTY, offsetof(kpa_socket_decl, name),
                 NULL},
                {"listen", JF_STRING, JF_REQUIRED | JF_NONEMPTY, offsetof(kpa_socket_decl, listen),
                 NULL},
                {"activate", JF_BOOL, 0, offsetof(kpa_socket_decl, activate), NULL},
        };
        int r = json_want_type(c, path, obj, json_type_object);
        if (r >= 0)
                r = json_read_fields(c, obj, path, fields, ELEMENTSOF(fields), d);
        if (r < 0)
                return r;
        if (!kpa_handle_name_valid(d->name)) {
                _cleanup_free_ char *p = json_strict_path_key(path, "name");
                _cleanup_free_ char *q = json_strict_quote(d->name, JSON_QUOTE_MAX);
                return json_bad(c, p,
                                "%s is not a valid handle name (1-255 printable ASCII "
                                "characters, no ':')",
                                q);
        }
        _cleanup_free_ char *p = json_strict_path_key(path, "listen");
        _cleanup_free_ char *q = json_strict_quote(d->listen, JSON_QUOTE_MAX);
        if (strncmp(d->listen, "tcp:", 4) == 0)
                return parse_tcp_listen(c, p, q, d->listen + 4, d);
        if (strncmp(d->listen, "unix:", 5) == 0)
                return parse_unix_listen(c, m, p, q, d->listen + 5, d);
        return json_bad(c, p, "%s must be tcp:ADDRESS:PORT or unix:PATH", q);
}

/* The run configuration of this package that USE names ("RC" or
 * "APP_ID/RC"), whose id is the name of the handle that joins them; NULL
 * for another package's. */
static const char *use_target_id(const kpa_manifest *m, const char *use)
{
        size_t len = strlen(m->application.id);
        if (strncmp(use, m->application.id, len) == 0 && use[len] == '/')
                return use + len + 1;
        return strchr(use, '/') ? NULL : use;
}

/* Whether a run configuration of M uses RC_ID as a service (then RC_ID's
 * instances get the handle RC_ID, their listening socket). */
static bool is_used_service(const kpa_manifest *m, const char *rc_id)
{
        for (size_t k = 0; k < m->n_run_configs; k++)
                for (size_t j = 0; j < m->run_configs[k]->n_uses; j++) {
                        const char *t = use_target_id(m, m->run_configs[k]->uses[j]->name);
                        if (t && streq(t, rc_id))
                                return true;
                }
        return false;
}

/* No two declarations of one run configuration share a name, none takes
 * the name of a handle that usesServices gives it (one per service it
 * uses, and its own when it is a service), and no two in the package
 * listen on the same address. */
static int check_socket_clashes(const struct json_ctx *c, const kpa_manifest *m,
                                const kpa_run_config *rc, const char *path)
{
        for (size_t i = 0; i < rc->n_sockets; i++) {
                const kpa_socket_decl *d = rc->sockets[i];
                _cleanup_free_ char *p = json_strict_path_index(path, i);
                _cleanup_free_ char *pn = json_strict_path_key(p, "name");
                for (size_t k = 0; k < i; k++)
                        if (streq(rc->sockets[k]->name, d->name))
                                return json_bad(c, pn, "\"%s\" is declared twice (also at %s[%zu])",
                                                d->name, path, k);
                for (size_t k = 0; k < rc->n_uses; k++) {
                        const char *t = use_target_id(m, rc->uses[k]->name);
                        if (streq(rc->uses[k]->name, d->name) || (t && streq(t, d->name)))
                                return json_bad(c, pn,
                                                "\"%s\" clashes with the handle of the service it "
                                                "uses (runConfigurations usesServices \"%s\")",
                                                d->name, rc->uses[k]->name);
                }
                if (streq(d->name, rc->id) && is_used_service(m, rc->id))
                        return json_bad(c, pn,
                                        "\"%s\" clashes with the handle of its own service "
                                        "socket (another run configuration usesServices it)",
                                        d->name);
                /* reported at the later of the two, in runConfigurations order */
                bool past = false;
                for (size_t o = 0; o < m->n_run_configs && !past; o++) {
                        const kpa_run_config *other = m->run_configs[o];
                        past = other == rc;
                        for (size_t k = 0; k < other->n_sockets; k++) {
                                if (other == rc && k >= i)
                                        break;
                                if (!streq(other->sockets[k]->listen, d->listen))
                                        continue;
                                _cleanup_free_ char *pl = json_strict_path_key(p, "listen");
                                return json_bad(c, pl,
                                                "\"%s\" is declared twice (also by run "
                                                "configuration \"%s\", socket \"%s\")",
                                                d->listen, other->id, other->sockets[k]->name);
                        }
                }
        }
        return 0;
}

static int parse_sockets(const struct json_ctx *c, json_object *obj, const char *path,
                         kpa_manifest *m)
{
        int r = json_want_type(c, path, obj, json_type_object);
        if (r < 0)
                return r;
        json_object_object_foreach (obj, id, arr) {
                _cleanup_free_ char *p = json_strict_path_key(path, id);
                kpa_run_config *rc = NULL;
                for (size_t k = 0; k < m->n_run_configs; k++)
                        if (streq(m->run_configs[k]->id, id))
                                rc = m->run_configs[k];
                if (!rc) {
                        _cleanup_free_ char *q = json_strict_quote(id, JSON_QUOTE_MAX);
                        return json_bad(c, p,
                                        "%s is not the id of a run configuration of this package",
                                        q);
                }
                r = json_want_type(c, p, arr, json_type_array);
                if (r < 0)
                        return r;
                size_t n = json_object_array_length(arr);
                /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
                rc->sockets = kpa_xcalloc(n ? n : 1, sizeof(*rc->sockets));
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *pi = json_strict_path_index(p, i);
                        rc->sockets[i] = new_element(sizeof(kpa_socket_decl));
                        rc->n_sockets = i + 1;
                        r = parse_socket_decl(c, m, json_object_array_get_idx(arr, i), pi,
                                              rc->sockets[i]);
                        if (r < 0)
                                return r;
                }
        }
        json_object_object_foreach (obj, id2, arr2) {
                (void)arr2;
                _cleanup_free_ char *p = json_strict_path_key(path, id2);
                r = check_socket_clashes(c, m, kpa_manifest_find_run_config(m, id2), p);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_extensions(const struct json_ctx *c, json_object *obj, kpa_manifest *m)
{
        json_object_object_foreach (obj, name, value) {
                _cleanup_free_ char *p = json_strict_path_key("extensions", name);
                int r = 0;
                if (!valid_extension_name(name))
                        r = json_bad(c, p,
                                     "extension names must match ^[A-Z_]+_.+ (an upper-case "
                                     "prefix, '_' and a name, e.g. \"VENDOR_settings\")");
                else if (streq(name, "KPA_limits"))
                        r = parse_limits(c, value, p, m);
                else if (streq(name, "KPA_sandbox"))
                        r = parse_sandbox(c, value, p, m);
                else if (streq(name, "KPA_restart"))
                        r = parse_restart(c, value, p, m);
                else if (streq(name, "KPA_sockets"))
                        r = parse_sockets(c, value, p, m);
                else if (strncmp(name, "KPA_", 4) == 0)
                        r = json_bad(c, p,
                                     "unknown kpa extension (kpa knows KPA_limits, KPA_sandbox, "
                                     "KPA_restart and KPA_sockets)");
                if (r < 0)
                        return r;
        }
        m->extensions_json = kpa_xstrdup(json_object_to_json_string_ext(
                obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        return 0;
}

/* ---- the whole manifest ---- */

static int parse_manifest(const struct json_ctx *c, json_object *root, kpa_manifest *m)
{
        static const struct json_field fields[] = {
                {"version", JF_STRING, JF_REQUIRED, offsetof(kpa_manifest, version), check_version},
                {"digestType", JF_STRING, 0, JF_NO_STORE, check_digest_type},
                {"application", JF_OBJECT, JF_REQUIRED, JF_NO_STORE, NULL},
                {"platform", JF_OBJECT, JF_REQUIRED, JF_NO_STORE, NULL},
                {"components", JF_ARRAY, 0, JF_NO_STORE, NULL},
                {"runConfigurations", JF_ARRAY, 0, JF_NO_STORE, NULL},
                {"runConfiguration", JF_ARRAY, 0, JF_NO_STORE, NULL},
                {"privateStorage", JF_OBJECT, 0, JF_NO_STORE, NULL},
                {"extensions", JF_OBJECT, 0, JF_NO_STORE, NULL},
        };
        int r = json_want_type(c, "", root, json_type_object);
        if (r >= 0)
                r = json_read_fields(c, root, "", fields, ELEMENTSOF(fields), m);
        if (r >= 0)
                r = parse_application(c, json_member(root, "application"), m);
        if (r >= 0)
                r = parse_platform(c, json_member(root, "platform"), m);
        if (r >= 0 && json_member(root, "components"))
                r = parse_components(c, json_member(root, "components"), m);
        if (r >= 0)
                r = parse_run_configs(c, root, m);
        if (r >= 0 && json_member(root, "privateStorage"))
                r = parse_private_storage(c, json_member(root, "privateStorage"), m);
        *m->restart = restart_defaults;
        if (r >= 0 && json_member(root, "extensions"))
                r = parse_extensions(c, json_member(root, "extensions"), m);
        if (r < 0)
                return r;
        m->digest_type = kpa_xstrdup(KPA_DIGEST_TYPE_SHA256);
        if (!m->sandbox->read_only_paths)
                m->sandbox->read_only_paths = kpa_xcalloc(1, sizeof(char *));
        return 0;
}

int kpa_manifest_parse(const char *json, size_t len, unsigned flags, kpa_manifest **out,
                       kpa_error *err)
{
        const struct json_ctx c = {"manifest.json", flags, err};
        _cleanup_(json_object_putp) json_object *root = NULL;
        *out = NULL;
        int r = json_parse_tree(&c, json, len, KPA_MANIFEST_MAX_SIZE, &root);
        if (r < 0)
                return r;
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = kpa_xcalloc(1, sizeof(*m));
        m->struct_size = sizeof(*m);
        m->priv = kpa_xcalloc(1, sizeof(struct manifest_priv));
        m->limits = kpa_xcalloc(1, sizeof(*m->limits));
        m->limits->struct_size = sizeof(*m->limits);
        m->sandbox = kpa_xcalloc(1, sizeof(*m->sandbox));
        kpa_sandbox_settings_init(m->sandbox);
        m->restart = kpa_xcalloc(1, sizeof(*m->restart));
        *m->restart = restart_defaults;
        r = parse_manifest(&c, root, m);
        if (r < 0)
                return r;
        *out = TAKE_PTR(m);
        return 0;
}

static void run_config_free(kpa_run_config *rc)
{
        if (!rc)
                return;
        free(rc->id);
        free(rc->name);
        kpa_strv_free(rc->args);
        for (size_t i = 0; i < rc->n_env; i++) {
                free(rc->env[i].name);
                free(rc->env[i].value);
        }
        free(rc->env);
        free(rc->eiid);
        free(rc->path);
        for (size_t i = 0; i < rc->n_uses; i++) {
                free(rc->uses[i]->name);
                free(rc->uses[i]);
        }
        free(rc->uses);
        for (size_t i = 0; i < rc->n_sockets; i++) {
                free(rc->sockets[i]->name);
                free(rc->sockets[i]->listen);
                free(rc->sockets[i]->address);
                free(rc->sockets[i]);
        }
        free(rc->sockets);
        free(rc);
}

void kpa_manifest_free(kpa_manifest *m)
{
        if (!m)
                return;
        free(m->version);
        free(m->digest_type);
        free(m->application.id);
        free(m->application.name);
        free(m->application.version);
        free(m->application.build_number);
        free(m->application.description);
        free(m->platform.id);
        free(m->platform.build_sdk_name);
        free(m->platform.build_sdk_version);
        free(m->platform.arch);
        free(m->platform.cpu);
        for (size_t i = 0; i < m->n_components; i++) {
                free(m->components[i]->name);
                free(m->components[i]->digest);
                free(m->components[i]->directory_path);
                free(m->components[i]->install_path);
                free(m->components[i]);
        }
        free(m->components);
        for (size_t i = 0; i < m->n_run_configs; i++)
                run_config_free(m->run_configs[i]);
        free(m->run_configs);
        free(m->storage_size);
        free(m->storage_fs_type);
        if (m->sandbox)
                kpa_strv_free(m->sandbox->read_only_paths);
        free(m->limits);
        free(m->sandbox);
        free(m->restart);
        free(m->extensions_json);
        manifest_priv_free(m->priv);
        free(m);
}

void kpa_sandbox_settings_init(kpa_sandbox_settings *sb)
{
        memset(sb, 0, sizeof(*sb));
        sb->struct_size = sizeof(*sb);
}

/* ---- lookups and the architecture ---- */

const kpa_run_config *kpa_manifest_primary_run_config(const kpa_manifest *m)
{
        for (size_t i = 0; i < m->n_run_configs; i++)
                if (m->run_configs[i]->primary)
                        return m->run_configs[i];
        return NULL;
}

const kpa_run_config *kpa_manifest_find_run_config(const kpa_manifest *m, const char *id)
{
        for (size_t i = 0; id && i < m->n_run_configs; i++)
                if (m->run_configs[i]->id && streq(m->run_configs[i]->id, id))
                        return m->run_configs[i];
        return NULL;
}

const kpa_component *kpa_manifest_find_component(const kpa_manifest *m, const char *install_path)
{
        for (size_t i = 0; install_path && i < m->n_components; i++)
                if (m->components[i]->install_path &&
                    streq(m->components[i]->install_path, install_path))
                        return m->components[i];
        return NULL;
}

const char *kpa_manifest_linux_arch(const kpa_manifest *m)
{
        const struct manifest_priv *priv = m->priv;
        if (priv && priv->linux_arch)
                return priv->linux_arch;
        const char *alias = arch_alias(m->platform.arch);
        return alias ? alias : m->platform.arch;
}

int kpa_manifest_check_arch(const kpa_manifest *m, kpa_error *err)
{
        struct utsname u;
        if (uname(&u) < 0)
                return kpa_error_set_errno(err, errno, "uname");
        const char *want = kpa_manifest_linux_arch(m);
        const char *machine = arch_alias(u.machine) ? arch_alias(u.machine) : u.machine;
        if (streq(want, machine))
                return 0;
        _cleanup_free_ char *q = json_strict_quote(m->platform.arch, JSON_QUOTE_MAX);
        if (streq(want, m->platform.arch))
                return kpa_error_set(err, ENOEXEC,
                                     "manifest.json: platform.hwSpecification.arch: the package "
                                     "is built for %s, this machine is %s",
                                     q, machine);
        return kpa_error_set(err, ENOEXEC,
                             "manifest.json: platform.hwSpecification.arch: the package is built "
                             "for %s (%s on Linux), this machine is %s",
                             q, want, machine);
}
