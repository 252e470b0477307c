/* Unit tests for manifest.c and json-strict.c: a good manifest with every key,
 * then every rule broken in turn, each refusal checked for its JSON path. */
#include "config.h"

#include <string.h>
#include <sys/utsname.h>

#include <json-c/json.h>

#include "kpa/manifest.h"
#include "tap.h"
#include "util.h"

#define D1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "2222222222222222222222222222222222222222222222222222222222222222"
#define D3 "3333333333333333333333333333333333333333333333333333333333333333"
#define DA "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

/* Written with ' for ", to stay readable; q() turns them back. */
/* clang-format off */
static const char FULL[] =
        "{'version': '2.0', 'digestType': '2.16.840.1.101.3.4.2.1',"
        " 'application': {'id': 'org.example.full', 'name': '@app_name@', 'version': '1.2.3',"
        "   'buildNumber': '42', 'systemApplication': true, 'description': '@app_desc@'},"
        " 'platform': {'id': 'kpa-linux',"
        "   'sdk': {'buildSdkName': 'KasperskyOS CE', 'buildSdkVersion': '1.3.0', 'targetApiLevel': 7},"
        "   'hwSpecification': {'arch': 'aarch64-kos', 'cpu': ''}},"
        " 'components': ["
        "   {'name': 'app', 'digest': '" D1 "', 'componentType': 'bin'},"
        "   {'name': 'helper', 'digest': '" D2 "', 'componentType': 'bin'},"
        "   {'name': 'libx.so.1', 'digest': '" D3 "', 'componentType': 'lib'},"
        "   {'name': 'logo.png', 'digest': '" DA "', 'componentType': 'res', 'directoryPath': './img//icons/'},"
        "   {'name': 'data.bin', 'digest': '" DA "', 'componentType': 'res'},"
        "   {'name': 'en.json', 'digest': '" DA "', 'componentType': 'manifestLocale'}],"
        " 'runConfigurations': ["
        "   {'id': 'main', 'name': '@main_name@', 'type': 'service', 'path': 'bin/app',"
        "    'primary': true, 'autorun': true, 'eiid': 'app.Main',"
        "    'args': ['--port', '80', ''],"
        "    'envVariables': [{'name': 'MODE', 'value': 'prod'}, {'name': 'EMPTY', 'value': ''}],"
        "    'usesServices': [{'name': 'helper', 'useType': 'child'},"
        "                     {'name': 'org.example.other/server', 'useType': 'serviceCanUse'},"
        "                     {'name': 'org.example.full/helper', 'useType': 'serviceActive'}]},"
        "   {'id': 'helper', 'name': 'Helper', 'type': 'gui', 'path': 'bin/helper', 'primary': false}],"
        " 'privateStorage': {'size': '64', 'fsType': 'ext4'},"
        " 'extensions': {"
        "   'KPA_limits': {'memory': '64M', 'pids': 32, 'cpuWeight': 500},"
        "   'KPA_sandbox': {'network': 'host', 'readOnlyPaths': ['/usr/share/zoneinfo/', '//etc/./ssl']},"
        "   'VENDOR_thing': {'a/b': [1, 2.50, 'x'], 'deep': {'k': null}}}}";

static const char MINIMAL[] =
        "{'version': '2.0',"
        " 'application': {'id': 'm', 'name': 'M', 'version': '1', 'buildNumber': '1',"
        "   'systemApplication': false},"
        " 'platform': {'id': 'p', 'sdk': {'buildSdkName': 's', 'buildSdkVersion': '1',"
        "   'targetApiLevel': 0}, 'hwSpecification': {'arch': 'x86_64', 'cpu': ''}}}";
/* clang-format on */

/* S with every ' turned into "; a new string. */
static char *q(const char *s)
{
        char *r = kpa_xstrdup(s);
        for (char *p = r; *p; p++)
                if (*p == '\'')
                        *p = '"';
        return r;
}

static int parse(const char *json, unsigned flags, kpa_manifest **m, kpa_error *err)
{
        kpa_error_clear(err);
        return kpa_manifest_parse(json, strlen(json), flags, m, err);
}

/* json-c's own parser, deeper than its default of 32 levels. */
static json_object *tree(const char *text)
{
        struct json_tokener *tok = json_tokener_new_ex(128);
        json_object *o = json_tokener_parse_ex(tok, text, (int)strlen(text) + 1);
        json_tokener_free(tok);
        return o;
}

/* Set the value at POINTER; an index one past the end of an array appends. */
static void pointer_set(json_object **root, const char *pointer, json_object *value)
{
        if (json_pointer_set(root, pointer, value) == 0)
                return;
        _cleanup_free_ char *parent = kpa_xstrdup(pointer);
        *strrchr(parent, '/') = '\0';
        json_object *arr = NULL;
        if (json_pointer_get(*root, parent, &arr) == 0 && json_object_is_type(arr, json_type_array))
                json_object_array_add(arr, value);
        else
                printf("# mutate: cannot set %s\n", pointer);
}

/* BASE (in ' form) with the value at POINTER (RFC 6901) set to VALUE (JSON
 * in ' form), or removed when VALUE is NULL; a new string. */
static char *mutate(const char *base, const char *pointer, const char *value)
{
        _cleanup_free_ char *text = q(base);
        json_object *root = tree(text);
        if (value) {
                _cleanup_free_ char *v = q(value);
                json_object *jv = tree(v);
                if (!jv && !streq(v, "null"))
                        printf("# mutate: bad value %s\n", v);
                pointer_set(&root, pointer, jv);
        } else {
                _cleanup_free_ char *parent = kpa_xstrdup(pointer);
                char *last = strrchr(parent, '/');
                *last = '\0';
                json_object *obj = NULL;
                if (json_pointer_get(root, parent, &obj) < 0)
                        printf("# mutate: no %s\n", parent);
                else if (json_object_is_type(obj, json_type_array))
                        json_object_array_del_idx(obj, (size_t)atoi(last + 1), 1);
                else
                        json_object_object_del(obj, last + 1);
        }
        char *out = kpa_xstrdup(json_object_to_json_string_ext(
                root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
        return out;
}

/* JSON must be refused with -EINVAL and a message that starts
 * "manifest.json: PATH: " (just "manifest.json: " when PATH is "") and
 * contains WHAT. */
static void refuse_text(const char *json, size_t len, const char *path, const char *what,
                        const char *name)
{
        kpa_manifest *m = NULL;
        kpa_error err;
        kpa_error_clear(&err);
        int r = kpa_manifest_parse(json, len, 0, &m, &err);
        _cleanup_free_ char *prefix =
                *path ? kpa_xasprintf("manifest.json: %s: ", path) : kpa_xstrdup("manifest.json: ");
        bool good = r == -EINVAL && m == NULL &&
                    strncmp(err.message, prefix, strlen(prefix)) == 0 &&
                    strstr(err.message, what) != NULL;
        if (!ok(good, "%s", name))
                printf("#   r=%d message: %s\n#   wanted prefix \"%s\" and \"%s\"\n", r,
                       err.message, prefix, what);
        kpa_manifest_free(m);
}

static void refuse(const char *json, const char *path, const char *what, const char *name)
{
        refuse_text(json, strlen(json), path, what, name);
}

/* Mutate FULL and expect a refusal. */
static void refuse_mut(const char *pointer, const char *value, const char *path, const char *what)
{
        _cleanup_free_ char *json = mutate(FULL, pointer, value);
        _cleanup_free_ char *name =
                kpa_xasprintf("%s = %s: refused at %s", pointer, value ? value : "(removed)", path);
        refuse(json, path, what, name);
}

/* Mutate FULL and expect it to be accepted; return the manifest. */
static kpa_manifest *accept_mut(const char *pointer, const char *value)
{
        _cleanup_free_ char *json = mutate(FULL, pointer, value);
        kpa_manifest *m = NULL;
        kpa_error err;
        int r = parse(json, 0, &m, &err);
        if (!ok(r == 0, "%s = %s: accepted", pointer, value ? value : "(removed)"))
                printf("#   %s\n", err.message);
        return m;
}

static void test_full(void)
{
        _cleanup_free_ char *json = q(FULL);
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_error err;
        int r = parse(json, 0, &m, &err);
        if (!ok(r == 0 && m, "full manifest parses"))
                printf("#   %s\n", err.message);
        if (!m)
                return;
        is_str(m->version, "2.0", "version");
        is_str(m->digest_type, KPA_DIGEST_TYPE_SHA256, "digestType");
        is_str(m->application.id, "org.example.full", "application.id");
        is_str(m->application.name, "@app_name@", "application.name kept as written");
        is_str(m->application.version, "1.2.3", "application.version");
        is_str(m->application.build_number, "42", "application.buildNumber");
        ok(m->application.system_application, "application.systemApplication");
        is_str(m->application.description, "@app_desc@", "application.description");
        is_str(m->platform.id, "kpa-linux", "platform.id");
        is_str(m->platform.build_sdk_name, "KasperskyOS CE", "sdk.buildSdkName");
        is_str(m->platform.build_sdk_version, "1.3.0", "sdk.buildSdkVersion");
        is(m->platform.target_api_level, 7, "sdk.targetApiLevel");
        is_str(m->platform.arch, "aarch64-kos", "arch as written");
        is_str(m->platform.cpu, "", "cpu may be empty");
        is_str(kpa_manifest_linux_arch(m), "aarch64", "aarch64-kos maps to aarch64");

        is(m->n_components, 6, "six components");
        is(m->components[0]->type, KPA_COMPONENT_BIN, "bin type");
        is_str(m->components[0]->install_path, "bin/app", "bin install path");
        is_str(m->components[0]->digest, D1, "digest");
        ok(m->components[0]->directory_path == NULL, "no directoryPath: NULL");
        is(m->components[2]->type, KPA_COMPONENT_LIB, "lib type");
        is_str(m->components[2]->install_path, "lib/libx.so.1", "lib install path");
        is(m->components[3]->type, KPA_COMPONENT_RES, "res type");
        is_str(m->components[3]->directory_path, "img/icons", "directoryPath normalized");
        is_str(m->components[3]->install_path, "res/img/icons/logo.png", "res install path");
        is_str(m->components[4]->install_path, "res/data.bin", "res install path without dir");
        is(m->components[5]->type, KPA_COMPONENT_MANIFEST_LOCALE, "manifestLocale type");
        is_str(m->components[5]->install_path, "manifest_locales/en.json", "locale install path");

        is(m->n_run_configs, 2, "two run configurations");
        const kpa_run_config *rc = m->run_configs[0];
        is_str(rc->id, "main", "rc id");
        is_str(rc->name, "@main_name@", "rc name");
        is(rc->type, KPA_RUN_SERVICE, "rc type service");
        is_str(rc->path, "bin/app", "rc path");
        ok(rc->primary && rc->autorun, "rc primary and autorun");
        is_str(rc->eiid, "app.Main", "rc eiid");
        is(rc->n_args, 3, "three args");
        is_str(rc->args[1], "80", "arg 1");
        is_str(rc->args[2], "", "empty arg kept");
        ok(rc->args[3] == NULL, "args NULL-terminated");
        is(rc->n_env, 2, "two env variables");
        is_str(rc->env[0].name, "MODE", "env name");
        is_str(rc->env[0].value, "prod", "env value");
        is_str(rc->env[1].value, "", "empty env value");
        is(rc->n_uses, 3, "three service uses");
        is_str(rc->uses[1]->name, "org.example.other/server", "use name");
        is(rc->uses[0]->use_type, KPA_USE_CHILD, "useType child");
        is(rc->uses[1]->use_type, KPA_USE_SERVICE_CAN_USE, "useType serviceCanUse");
        is(rc->uses[2]->use_type, KPA_USE_SERVICE_ACTIVE, "useType serviceActive");
        rc = m->run_configs[1];
        is(rc->type, KPA_RUN_GUI, "rc type gui");
        ok(!rc->primary && !rc->autorun, "autorun defaults to false");
        ok(rc->eiid == NULL, "eiid absent: NULL");
        ok(rc->args && rc->n_args == 0 && rc->args[0] == NULL, "args absent: empty, not NULL");
        ok(rc->n_env == 0 && rc->n_uses == 0, "no env, no uses");

        ok(m->has_private_storage, "private storage");
        is_str(m->storage_size, "64", "storage size as written");
        is(m->storage_size_mb, 64, "storage size in MB");
        is_str(m->storage_fs_type, "ext4", "fsType");
        is(m->limits->memory_bytes, 64ULL << 20, "memory 64M");
        is(m->limits->pids, 32, "pids");
        is(m->limits->cpu_weight, 500, "cpuWeight");
        is(m->sandbox->network, KPA_NETWORK_HOST, "network host");
        is(m->sandbox->n_read_only_paths, 2, "two read-only paths");
        is_str(m->sandbox->read_only_paths[0], "/usr/share/zoneinfo", "trailing / dropped");
        is_str(m->sandbox->read_only_paths[1], "/etc/ssl", "// and . dropped");
        ok(m->sandbox->read_only_paths[2] == NULL, "read-only paths NULL-terminated");

        ok(m->extensions_json && strstr(m->extensions_json, "\"VENDOR_thing\"") &&
                   strstr(m->extensions_json, "\"a/b\"") && strstr(m->extensions_json, "2.50"),
           "extensions re-serialized, vendor data kept as written");
        json_object *ext = m->extensions_json ? json_tokener_parse(m->extensions_json) : NULL;
        ok(json_object_is_type(ext, json_type_object) && json_object_object_length(ext) == 3,
           "extensions_json is a JSON object with three members");
        json_object_put(ext);
        ok(strchr(m->extensions_json, '\n') != NULL, "extensions_json is pretty");

        ok(kpa_manifest_primary_run_config(m) == m->run_configs[0], "primary lookup");
        ok(kpa_manifest_find_run_config(m, "helper") == m->run_configs[1], "run config lookup");
        ok(kpa_manifest_find_run_config(m, "nope") == NULL, "unknown run config: NULL");
        ok(kpa_manifest_find_component(m, "res/img/icons/logo.png") == m->components[3],
           "component lookup by install path");
        ok(kpa_manifest_find_component(m, "logo.png") == NULL, "lookup wants the install path");

        /* what the library made says its size: a caller of older headers
         * reads the fields it knows, a newer one tests struct_size first */
        ok(m->struct_size == sizeof(*m) && m->limits->struct_size == sizeof(kpa_limits) &&
                   m->sandbox->struct_size == sizeof(kpa_sandbox_settings) &&
                   m->restart->struct_size == sizeof(kpa_restart_policy),
           "the manifest and its limits, sandbox and restart policy carry struct_size");
        bool sized = true;
        for (size_t i = 0; i < m->n_components; i++)
                sized = sized && m->components[i]->struct_size == sizeof(kpa_component);
        for (size_t i = 0; i < m->n_run_configs; i++) {
                rc = m->run_configs[i];
                sized = sized && rc->struct_size == sizeof(kpa_run_config);
                for (size_t j = 0; j < rc->n_uses; j++)
                        sized = sized && rc->uses[j]->struct_size == sizeof(kpa_service_use);
        }
        ok(sized, "so does every component, run configuration and service use");
        kpa_sandbox_settings sb;
        memset(&sb, 0x55, sizeof(sb));
        kpa_sandbox_settings_init(&sb);
        ok(sb.struct_size == sizeof(sb) && sb.read_only_paths == NULL && !sb.allow_bpf,
           "kpa_sandbox_settings_init: struct_size, the rest zero");
}

static void test_minimal(void)
{
        _cleanup_free_ char *json = q(MINIMAL);
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_error err;
        int r = parse(json, 0, &m, &err);
        if (!ok(r == 0, "minimal manifest parses"))
                printf("#   %s\n", err.message);
        if (!m)
                return;
        is_str(m->digest_type, KPA_DIGEST_TYPE_SHA256, "absent digestType means SHA-256");
        ok(m->n_components == 0 && m->n_run_configs == 0, "no components, no run configs");
        ok(kpa_manifest_primary_run_config(m) == NULL, "no primary");
        ok(m->application.description == NULL, "no description");
        ok(!m->has_private_storage && m->storage_size == NULL && m->storage_fs_type == NULL,
           "no private storage");
        ok(m->extensions_json == NULL, "no extensions: NULL");
        ok(m->limits->memory_bytes == 0 && m->limits->pids == 0 && m->limits->cpu_weight == 0,
           "no limits");
        ok(m->sandbox->network == KPA_NETWORK_NONE, "network defaults to none");
        ok(m->sandbox->read_only_paths && m->sandbox->read_only_paths[0] == NULL,
           "read-only paths empty, not NULL");
        is_str(kpa_manifest_linux_arch(m), "x86_64", "x86_64 stays x86_64");

        kpa_manifest_free(NULL);
        ok(1, "kpa_manifest_free(NULL) is harmless");
        kpa_manifest *m2 = (kpa_manifest *)1;
        r = kpa_manifest_parse("{", 1, 0, &m2, NULL);
        ok(r == -EINVAL && m2 == NULL, "NULL error record allowed; *out is NULL on failure");
}

static void test_required(void)
{
        static const struct {
                const char *pointer, *path, *key;
        } keys[] = {
                {"/version", "", "version"},
                {"/application", "", "application"},
                {"/platform", "", "platform"},
                {"/application/id", "application", "id"},
                {"/application/name", "application", "name"},
                {"/application/version", "application", "version"},
                {"/application/buildNumber", "application", "buildNumber"},
                {"/application/systemApplication", "application", "systemApplication"},
                {"/platform/id", "platform", "id"},
                {"/platform/sdk", "platform", "sdk"},
                {"/platform/hwSpecification", "platform", "hwSpecification"},
                {"/platform/sdk/buildSdkName", "platform.sdk", "buildSdkName"},
                {"/platform/sdk/buildSdkVersion", "platform.sdk", "buildSdkVersion"},
                {"/platform/sdk/targetApiLevel", "platform.sdk", "targetApiLevel"},
                {"/platform/hwSpecification/arch", "platform.hwSpecification", "arch"},
                {"/platform/hwSpecification/cpu", "platform.hwSpecification", "cpu"},
                {"/components/2/name", "components[2]", "name"},
                {"/components/2/digest", "components[2]", "digest"},
                {"/components/2/componentType", "components[2]", "componentType"},
                {"/runConfigurations/1/id", "runConfigurations[1]", "id"},
                {"/runConfigurations/1/name", "runConfigurations[1]", "name"},
                {"/runConfigurations/1/type", "runConfigurations[1]", "type"},
                {"/runConfigurations/1/primary", "runConfigurations[1]", "primary"},
                {"/runConfigurations/1/path", "runConfigurations[1]", "path"},
                {"/runConfigurations/0/envVariables/1/name", "runConfigurations[0].envVariables[1]",
                 "name"},
                {"/runConfigurations/0/envVariables/1/value",
                 "runConfigurations[0].envVariables[1]", "value"},
                {"/runConfigurations/0/usesServices/2/name", "runConfigurations[0].usesServices[2]",
                 "name"},
                {"/runConfigurations/0/usesServices/2/useType",
                 "runConfigurations[0].usesServices[2]", "useType"},
                {"/privateStorage/size", "privateStorage", "size"},
        };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *what =
                        kpa_xasprintf("missing required key \"%s\"", keys[i].key);
                refuse_mut(keys[i].pointer, NULL, keys[i].path, what);
        }
        /* optional keys may go */
        static const char *const optional[] = {
                "/digestType",
                "/components",
                "/runConfigurations",
                "/privateStorage",
                "/extensions",
                "/application/description",
                "/components/3/directoryPath",
                "/runConfigurations/0/autorun",
                "/runConfigurations/0/eiid",
                "/runConfigurations/0/args",
                "/runConfigurations/0/envVariables",
                "/runConfigurations/0/usesServices",
                "/privateStorage/fsType",
                "/extensions/KPA_limits",
                "/extensions/KPA_sandbox",
                "/extensions/KPA_limits/memory",
                "/extensions/KPA_sandbox/readOnlyPaths",
        };
        for (size_t i = 0; i < ELEMENTSOF(optional); i++) {
                kpa_manifest *m = NULL;
                if (streq(optional[i], "/components")) /* run configs need their bin components */
                        continue;
                m = accept_mut(optional[i], NULL);
                kpa_manifest_free(m);
        }
}

static void test_types(void)
{
        static const struct {
                const char *pointer, *value, *path, *what;
        } cases[] = {
                {"/version", "2.0", "version", "must be a string, not a number"},
                {"/digestType", "1", "digestType", "must be a string, not an integer"},
                {"/application", "[]", "application", "must be an object, not an array"},
                {"/application/id", "42", "application.id", "must be a string, not an integer"},
                {"/application/name", "null", "application.name", "must be a string, not null"},
                {"/application/systemApplication", "'true'", "application.systemApplication",
                 "must be a boolean, not a string"},
                {"/application/systemApplication", "1", "application.systemApplication",
                 "must be a boolean"},
                {"/application/description", "{}", "application.description", "must be a string"},
                {"/platform/sdk", "'sdk'", "platform.sdk", "must be an object"},
                {"/platform/sdk/targetApiLevel", "'7'", "platform.sdk.targetApiLevel",
                 "must be an integer, not a string"},
                {"/platform/sdk/targetApiLevel", "7.0", "platform.sdk.targetApiLevel",
                 "must be an integer, not a number with a fraction"},
                {"/platform/hwSpecification/cpu", "false", "platform.hwSpecification.cpu",
                 "must be a string"},
                {"/components", "{}", "components", "must be an array, not an object"},
                {"/components/1", "'app'", "components[1]", "must be an object, not a string"},
                {"/components/1/digest", "1", "components[1].digest", "must be a string"},
                {"/runConfigurations", "{}", "runConfigurations", "must be an array"},
                {"/runConfigurations/0/primary", "'yes'", "runConfigurations[0].primary",
                 "must be a boolean"},
                {"/runConfigurations/0/autorun", "0", "runConfigurations[0].autorun",
                 "must be a boolean"},
                {"/runConfigurations/0/args", "'--x'", "runConfigurations[0].args",
                 "must be an array"},
                {"/runConfigurations/0/args/1", "80", "runConfigurations[0].args[1]",
                 "must be a string, not an integer"},
                {"/runConfigurations/0/envVariables/0", "'A=b'",
                 "runConfigurations[0].envVariables[0]", "must be an object"},
                {"/runConfigurations/0/envVariables/0/value", "1",
                 "runConfigurations[0].envVariables[0].value", "must be a string"},
                {"/runConfigurations/0/usesServices/0", "[]",
                 "runConfigurations[0].usesServices[0]", "must be an object"},
                {"/privateStorage/size", "64", "privateStorage.size",
                 "must be a string, not an integer"},
                {"/extensions", "[]", "extensions", "must be an object"},
                {"/extensions/KPA_limits", "'64M'", "extensions.KPA_limits", "must be an object"},
                {"/extensions/KPA_limits/pids", "'32'", "extensions.KPA_limits.pids",
                 "must be an integer"},
                {"/extensions/KPA_limits/memory", "true", "extensions.KPA_limits.memory",
                 "must be a string such as \"64M\" or an integer number of bytes, not a boolean"},
                {"/extensions/KPA_sandbox/network", "0", "extensions.KPA_sandbox.network",
                 "must be a string"},
                {"/extensions/KPA_sandbox/readOnlyPaths", "'/usr'",
                 "extensions.KPA_sandbox.readOnlyPaths", "must be an array"},
                {"/extensions/KPA_sandbox/readOnlyPaths/0", "1",
                 "extensions.KPA_sandbox.readOnlyPaths[0]", "must be a string"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                refuse_mut(cases[i].pointer, cases[i].value, cases[i].path, cases[i].what);
        _cleanup_free_ char *arr = q("["
                                     "{'version': '2.0'}"
                                     "]");
        refuse(arr, "", "must be an object, not an array", "top level must be an object");
        refuse("null", "", "must be an object, not null", "top level null");
        refuse("42", "", "must be an object, not a number", "top level number");
}

static void test_unknown_keys(void)
{
        static const struct {
                const char *pointer, *path;
        } cases[] = {
                {"/runConfigs", "runConfigs"},
                {"/application/vendor", "application.vendor"},
                {"/platform/os", "platform.os"},
                {"/platform/sdk/x", "platform.sdk.x"},
                {"/platform/hwSpecification/ram", "platform.hwSpecification.ram"},
                {"/components/0/mode", "components[0].mode"},
                {"/runConfigurations/1/user", "runConfigurations[1].user"},
                {"/runConfigurations/0/envVariables/0/export",
                 "runConfigurations[0].envVariables[0].export"},
                {"/runConfigurations/0/usesServices/0/optional",
                 "runConfigurations[0].usesServices[0].optional"},
                {"/privateStorage/path", "privateStorage.path"},
                {"/extensions/KPA_limits/swap", "extensions.KPA_limits.swap"},
                {"/extensions/KPA_sandbox/allowEverything", "extensions.KPA_sandbox.allowEverything"},
                {"/extensions/KPA_sandbox/allowptrace", "extensions.KPA_sandbox.allowptrace"},
                {"/extensions/KPA_sandbox/allowMount", "extensions.KPA_sandbox.allowMount"},
                {"/application/a.b", "application[\"a.b\"]"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                refuse_mut(cases[i].pointer, "true", cases[i].path, "unknown key");
        refuse_mut("/application/Id", "'x'", "application.Id",
                   "unknown key (known keys here: id, name, version, buildNumber, "
                   "systemApplication, description)");
        kpa_manifest_free(accept_mut("/extensions/VENDOR_thing/anything", "{'goes': [1, {}]}"));
}

static void test_values(void)
{
        refuse_mut("/version", "'1.0'", "version", "must be \"2.0\", not \"1.0\"");
        refuse_mut("/version", "'2'", "version", "must be \"2.0\"");
        kpa_manifest_free(accept_mut("/digestType", "''"));
        refuse_mut("/digestType", "'2.16.840.1.101.3.4.2.3'", "digestType", "is not supported");
        refuse_mut("/application/name", "''", "application.name", "must not be empty");
        refuse_mut("/application/version", "'1\\n2'", "application.version",
                   "must not contain control characters");
        kpa_manifest *m = accept_mut("/application/description", "'line 1\\nline 2\\ttab'");
        ok(m && streq(m->application.description, "line 1\nline 2\ttab"),
           "description may hold newlines and tabs");
        kpa_manifest_free(m);
        refuse_mut("/platform/id", "''", "platform.id", "must not be empty");
        refuse_mut("/platform/hwSpecification/arch", "''", "platform.hwSpecification.arch",
                   "must not be empty");
        refuse_mut("/platform/sdk/targetApiLevel", "-1", "platform.sdk.targetApiLevel",
                   "must not be negative");
        refuse_mut("/components/0/componentType", "'exe'", "components[0].componentType",
                   "must be \"bin\", \"lib\", \"res\" or \"manifestLocale\", not \"exe\"");
        refuse_mut("/runConfigurations/0/type", "'daemon'", "runConfigurations[0].type",
                   "must be \"gui\" or \"service\", not \"daemon\"");
        refuse_mut("/runConfigurations/0/usesServices/0/useType", "'client'",
                   "runConfigurations[0].usesServices[0].useType", "must be \"child\"");
        refuse_mut("/runConfigurations/0/eiid", "''", "runConfigurations[0].eiid",
                   "must not be empty");
        refuse_mut("/extensions/KPA_sandbox/network", "'bridge'", "extensions.KPA_sandbox.network",
                   "must be \"none\" or \"host\", not \"bridge\"");
}

static void test_app_ids(void)
{
        static const char *const good[] = {
                "a",
                "org.example.app",
                "A-b_c.9",
                "..a",
                "a..",
                ("0123456789012345678901234567890123456789012345678901234567890123"
                 "0123456789012345678901234567890123456789012345678901234567890123")};
        static const char *const bad[] = {
                "",
                ".",
                "..",
                "a b",
                "a/b",
                "é",
                "a:b",
                "a\\u0001",
                ("0123456789012345678901234567890123456789012345678901234567890123"
                 "01234567890123456789012345678901234567890123456789012345678901234")};
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *v = kpa_xasprintf("'%s'", good[i]);
                _cleanup_free_ char *json = mutate(FULL, "/application/id", v);
                /* usesServices names FULL's own id: keep them consistent */
                _cleanup_free_ char *json2 =
                        mutate(json, "/runConfigurations/0/usesServices/2", NULL);
                kpa_manifest *m = NULL;
                kpa_error err;
                int r = parse(json2, 0, &m, &err);
                if (!ok(r == 0, "application id %s accepted", v))
                        printf("#   %s\n", err.message);
                kpa_manifest_free(m);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *v = kpa_xasprintf("'%s'", bad[i]);
                refuse_mut("/application/id", v, "application.id",
                           i == 0   ? "must not be empty"
                           : i == 7 ? "control characters"
                                    : "is not a valid application id");
        }
}

static void test_components(void)
{
        static const char *const bad_names[] = {"a/b", ".", "..", "/app"};
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                _cleanup_free_ char *v = kpa_xasprintf("'%s'", bad_names[i]);
                refuse_mut("/components/2/name", v, "components[2].name",
                           strchr(bad_names[i], '/') ? "without '/'" : "is not a valid file name");
        }
        refuse_mut("/components/2/name", "''", "components[2].name", "must not be empty");
        refuse_mut("/components/2/name", "'a\\u001b[31mred'", "components[2].name",
                   "control characters");
        char long_name[300];
        memset(long_name, 'n', 256);
        long_name[256] = '\0';
        _cleanup_free_ char *lv = kpa_xasprintf("'%s'", long_name);
        refuse_mut("/components/2/name", lv, "components[2].name", "longer than 255 bytes");
        kpa_manifest_free(accept_mut("/components/2/name", "'lib x (1).so'"));

        refuse_mut("/components/0/digest", "'" D1 "1'", "components[0].digest",
                   "is not a SHA-256 digest");
        refuse_mut("/components/0/digest",
                   "'ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789'",
                   "components[0].digest", "64 lowercase hexadecimal");
        refuse_mut("/components/0/digest",
                   "'g111111111111111111111111111111111111111111111111111111111111111'",
                   "components[0].digest", "is not a SHA-256 digest");
        refuse_mut("/components/0/digest", "''", "components[0].digest", "is not a SHA-256 digest");

        refuse_mut("/components/3/directoryPath", "'../img'", "components[3].directoryPath",
                   "must not contain \"..\"");
        refuse_mut("/components/3/directoryPath", "'img/../../x'", "components[3].directoryPath",
                   "must not contain \"..\"");
        refuse_mut("/components/3/directoryPath", "'/img'", "components[3].directoryPath",
                   "must be a relative path (no leading '/')");
        refuse_mut("/components/3/directoryPath", "'./'", "components[3].directoryPath",
                   "names no directory");
        refuse_mut("/components/3/directoryPath", "''", "components[3].directoryPath",
                   "names no directory");
        refuse_mut("/components/0/directoryPath", "'x'", "components[0].directoryPath",
                   "is only allowed for res components, not for bin");
        refuse_mut("/components/5/directoryPath", "'x'", "components[5].directoryPath",
                   "only allowed for res components");
        kpa_manifest *m = accept_mut("/components/3/directoryPath", "'a..b/...'");
        ok(m && streq(m->components[3]->install_path, "res/a..b/.../logo.png"),
           "names that merely contain dots are fine");
        kpa_manifest_free(m);

        /* the same install path twice, and a file where a directory must be */
        refuse_mut("/components/6", "{'name': 'app', 'digest': '" D1 "', 'componentType': 'bin'}",
                   "components[6]", "installs to \"bin/app\", like components[0]");
        refuse_mut("/components/6",
                   "{'name': 'logo.png', 'digest': '" D1
                   "', 'componentType': 'res', 'directoryPath': 'img/icons'}",
                   "components[6]", "installs to \"res/img/icons/logo.png\", like components[3]");
        refuse_mut("/components/6", "{'name': 'img', 'digest': '" D1 "', 'componentType': 'res'}",
                   "components[3]",
                   "needs a directory \"res/img\", but components[6] is a file there");
        m = accept_mut("/components/6",
                       "{'name': 'app', 'digest': '" D1 "', 'componentType': 'lib'}");
        ok(m != NULL, "one name in bin/ and lib/ is fine");
        kpa_manifest_free(m);
}

static void test_missing_digests(void)
{
        _cleanup_free_ char *no_digest = mutate(FULL, "/components/0/digest", NULL);
        _cleanup_free_ char *empty_digest = mutate(FULL, "/components/1/digest", "''");
        _cleanup_free_ char *bad_digest = mutate(FULL, "/components/1/digest", "'xyz'");
        kpa_manifest *m = NULL;
        kpa_error err;
        int r = parse(no_digest, KPA_MANIFEST_ALLOW_MISSING_DIGESTS, &m, &err);
        ok(r == 0 && m && streq(m->components[0]->digest, ""),
           "ALLOW_MISSING_DIGESTS: absent digest becomes \"\"");
        kpa_manifest_free(m);
        r = parse(empty_digest, KPA_MANIFEST_ALLOW_MISSING_DIGESTS, &m, &err);
        ok(r == 0 && m && streq(m->components[1]->digest, ""), "ALLOW_MISSING_DIGESTS: \"\" kept");
        kpa_manifest_free(m);
        r = parse(bad_digest, KPA_MANIFEST_ALLOW_MISSING_DIGESTS, &m, &err);
        ok(r == -EINVAL && strstr(err.message, "components[1].digest: \"xyz\""),
           "ALLOW_MISSING_DIGESTS still checks a given digest");
        refuse(empty_digest, "components[1].digest", "is not a SHA-256 digest",
               "without the flag, \"\" is refused");
}

static void test_run_configs(void)
{
        refuse_mut("/runConfigurations/1/primary", "true", "runConfigurations[1].primary",
                   "only one run configuration may be primary, and runConfigurations[0] is primary "
                   "already");
        refuse_mut("/runConfigurations/0/primary", "false", "runConfigurations",
                   "no run configuration is primary");
        refuse_mut("/runConfigurations/1/path", "'lib/libx.so.1'", "runConfigurations[1].path",
                   "\"lib/libx.so.1\" must name a bin component (it names a lib component)");
        refuse_mut("/runConfigurations/1/path", "'res/data.bin'", "runConfigurations[1].path",
                   "must name a bin component (it names a res component)");
        refuse_mut("/runConfigurations/1/path", "'bin/../x'", "runConfigurations[1].path",
                   "\"bin/../x\" must name a bin component");
        refuse_mut("/runConfigurations/1/path", "'bin/nothere'", "runConfigurations[1].path",
                   "must name a bin component (no component is installed there");
        refuse_mut("/runConfigurations/1/path", "'/bin/helper'", "runConfigurations[1].path",
                   "must name a bin component");
        refuse_mut("/runConfigurations/1/id", "'main'", "runConfigurations[1].id",
                   "\"main\" is already the id of runConfigurations[0]");
        refuse_mut("/runConfigurations/1/id", "'a/b'", "runConfigurations[1].id",
                   "is not a valid run configuration id");
        refuse_mut("/runConfigurations/1/id", "'a b'", "runConfigurations[1].id",
                   "is not a valid run configuration id");
        refuse_mut("/runConfigurations/1/id", "'..'", "runConfigurations[1].id",
                   "is not a valid run configuration id");
        refuse_mut("/runConfigurations/0/envVariables/0/name", "''",
                   "runConfigurations[0].envVariables[0].name", "must not be empty");
        refuse_mut("/runConfigurations/0/envVariables/0/name", "'A=B'",
                   "runConfigurations[0].envVariables[0].name", "must not contain '='");
        refuse_mut("/runConfigurations/0/envVariables/1/name", "'MODE'",
                   "runConfigurations[0].envVariables[1].name",
                   "\"MODE\" is set twice (also by runConfigurations[0].envVariables[0])");
        kpa_manifest *m = accept_mut("/runConfigurations/0/envVariables/1/value", "'a=b\\nc'");
        ok(m && streq(m->run_configs[0]->env[1].value, "a=b\nc"), "env values are free text");
        kpa_manifest_free(m);
        refuse_mut("/runConfigurations/0/usesServices/0/name", "'a/b/c'",
                   "runConfigurations[0].usesServices[0].name",
                   "must be RUNCONFIG or PACKAGE/RUNCONFIG");
        refuse_mut("/runConfigurations/0/usesServices/0/name", "'bad id/x'",
                   "runConfigurations[0].usesServices[0].name",
                   "must be RUNCONFIG or PACKAGE/RUNCONFIG");
        refuse_mut("/runConfigurations/0/usesServices/0/name", "'nothere'",
                   "runConfigurations[0].usesServices[0].name",
                   "\"nothere\" names no run configuration of this package");
        refuse_mut("/runConfigurations/0/usesServices/2/name", "'org.example.full/nothere'",
                   "runConfigurations[0].usesServices[2].name",
                   "names no run configuration of this package");
        kpa_manifest_free(
                accept_mut("/runConfigurations/0/usesServices/0/name", "'org.example.x/nothere'"));
        refuse_mut("/runConfigurations/0/usesServices/2/name", "'main'",
                   "runConfigurations[0].usesServices[2].name",
                   "\"main\" makes a cycle of usesServices: main -> main");
        refuse_mut("/runConfigurations/1/usesServices", "[{'name': 'main', 'useType': 'child'}]",
                   "runConfigurations[1].usesServices[0].name",
                   "\"main\" makes a cycle of usesServices: main -> helper -> main");
}

/* A chain of uses as long as a manifest allows is walked without recursion,
 * and a cycle through all of it is named by its ends. */
static void test_uses_long_cycle(void)
{
        enum { N = 3000 };
        size_t cap = (size_t)N * 160, len = 0;
        _cleanup_free_ char *rcs = kpa_xcalloc(cap, 1);
        len += (size_t)snprintf(rcs + len, cap - len, "[");
        for (int k = 0; k < N; k++)
                len += (size_t)snprintf(rcs + len, cap - len,
                                        "%s{'id': 'r%d', 'name': 'R', 'type': 'service', "
                                        "'path': 'bin/app', 'primary': %s, 'usesServices': "
                                        "[{'name': 'r%d', 'useType': 'child'}]}",
                                        k ? ", " : "", k, k ? "false" : "true", (k + 1) % N);
        snprintf(rcs + len, cap - len, "]");
        _cleanup_free_ char *json = mutate(FULL, "/runConfigurations", rcs);
        refuse(json, "runConfigurations[2999].usesServices[0].name",
               "\"r0\" makes a cycle of usesServices: r0 -> r1 -> r2 -> ",
               "a cycle through 3000 run configurations is refused");
        kpa_manifest *m = NULL;
        kpa_error err;
        kpa_error_clear(&err);
        (void)parse(json, 0, &m, &err);
        ok(strstr(err.message, " -> ... -> r2999 -> r0") != NULL, "and named by its ends");
        kpa_manifest_free(m);
}

/* A used run configuration's id names the client's handle: no ':' in it. */
static void test_uses_handle_names(void)
{
        _cleanup_free_ char *a = mutate(FULL, "/runConfigurations/1/id", "'a:b'");
        _cleanup_free_ char *b = mutate(a, "/runConfigurations/0/usesServices/0/name", "'a:b'");
        _cleanup_free_ char *c = mutate(b, "/runConfigurations/0/usesServices/2", NULL);
        refuse(c, "runConfigurations[0].usesServices[0].name",
               "\"a:b\" cannot be a service: the handle that connects to it is named after it",
               "a used run configuration's id with ':' is refused");
        kpa_manifest_free(accept_mut("/runConfigurations", "[]"));
}

static void test_spellings(void)
{
        _cleanup_free_ char *full = q(FULL);
        /* "runConfigurations" -> "runConfiguration", "usesServices" -> "usesService" */
        _cleanup_free_ char *kos = kpa_xstrdup(full);
        char *p = strstr(kos, "\"runConfigurations\"");
        memmove(p + 17, p + 18, strlen(p + 18) + 1);
        p = strstr(kos, "\"usesServices\"");
        memmove(p + 12, p + 13, strlen(p + 13) + 1);
        kpa_manifest *m = NULL;
        kpa_error err;
        int r = parse(kos, 0, &m, &err);
        if (!ok(r == 0 && m && m->n_run_configs == 2 && m->run_configs[0]->n_uses == 3,
                "runConfiguration and usesService spellings accepted"))
                printf("#   %s\n", err.message);
        kpa_manifest_free(m);

        _cleanup_free_ char *both = mutate(FULL, "/runConfiguration", "[]");
        refuse(both, "runConfiguration",
               "\"runConfigurations\" and \"runConfiguration\" are two spellings of one key",
               "both runConfigurations and runConfiguration: refused");
        refuse_mut("/runConfigurations/0/usesService", "[]", "runConfigurations[0].usesService",
                   "\"usesServices\" and \"usesService\" are two spellings");
        _cleanup_free_ char *bad =
                mutate(kos, "/runConfiguration/0/usesService/0/name", "'nothere'");
        refuse(bad, "runConfiguration[0].usesService[0].name", "names no run configuration",
               "paths use the spelling of the manifest");
        _cleanup_free_ char *bad2 = mutate(kos, "/runConfiguration/1/primary", "true");
        refuse(bad2, "runConfiguration[1].primary", "only one", "primary error uses the spelling");
}

static void test_storage(void)
{
        kpa_manifest *m = accept_mut("/privateStorage/size", "'1024'");
        ok(m && m->storage_size_mb == 1024 && streq(m->storage_size, "1024"), "size 1024 MB");
        kpa_manifest_free(m);
        refuse_mut("/privateStorage/size", "'64M'", "privateStorage.size", "a string of digits");
        refuse_mut("/privateStorage/size", "'-1'", "privateStorage.size", "a string of digits");
        refuse_mut("/privateStorage/size", "' 64'", "privateStorage.size", "a string of digits");
        refuse_mut("/privateStorage/size", "'0'", "privateStorage.size", "out of range");
        refuse_mut("/privateStorage/size", "'99999999999999999999999'", "privateStorage.size",
                   "out of range");
        refuse_mut("/privateStorage/size", "''", "privateStorage.size", "must not be empty");
        refuse_mut("/privateStorage/fsType", "''", "privateStorage.fsType", "must not be empty");
}

/* KPA_sandbox allow*: booleans relaxing the seccomp filter, false when absent */
static void test_sandbox_allow(void)
{
        static const char *const keys[] = {"allowPtrace",      "allowPerfEvents",
                                           "allowBpf",         "allowKeyring",
                                           "allowUserfaultfd", "allowPersonality"};
        kpa_manifest *m = accept_mut("/extensions/KPA_sandbox/network", "'none'");
        ok(m && !m->sandbox->allow_ptrace && !m->sandbox->allow_perf_events &&
                   !m->sandbox->allow_bpf && !m->sandbox->allow_keyring &&
                   !m->sandbox->allow_userfaultfd && !m->sandbox->allow_personality,
           "every allow* defaults to false");
        kpa_manifest_free(m);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *ptr = kpa_xasprintf("/extensions/KPA_sandbox/%s", keys[i]);
                _cleanup_free_ char *path = kpa_xasprintf("extensions.KPA_sandbox.%s", keys[i]);
                m = accept_mut(ptr, "true");
                if (m) {
                        const kpa_sandbox_settings *sb = m->sandbox;
                        const bool got[] = {sb->allow_ptrace,  sb->allow_perf_events,
                                            sb->allow_bpf,     sb->allow_keyring,
                                            sb->allow_userfaultfd, sb->allow_personality};
                        size_t set = 0;
                        for (size_t j = 0; j < ELEMENTSOF(got); j++)
                                set += got[j];
                        ok(got[i] && set == 1, "%s: true sets its flag alone", keys[i]);
                }
                kpa_manifest_free(m);
                m = accept_mut(ptr, "false");
                ok(m && !m->sandbox->allow_ptrace && !m->sandbox->allow_personality,
                   "%s: false accepted", keys[i]);
                kpa_manifest_free(m);
                refuse_mut(ptr, "'true'", path, "must be a boolean, not a string");
                refuse_mut(ptr, "1", path, "must be a boolean, not an integer");
                refuse_mut(ptr, "null", path, "must be a boolean");
        }
}

/* FULL with extensions.KPA_restart set to VALUE: accepted, and its policy
 * equal to MODE, RETRIES, DELAY, MAX_DELAY. */
static void accept_restart(const char *value, kpa_restart_mode mode, uint32_t retries,
                           uint32_t delay, uint32_t max_delay)
{
        kpa_manifest *m = accept_mut("/extensions/KPA_restart", value);
        if (m) {
                const kpa_restart_policy *rp = m->restart;
                if (!ok(rp->mode == mode && rp->max_retries == retries && rp->delay_ms == delay &&
                                rp->max_delay_ms == max_delay,
                        "KPA_restart %s: read as mode %d, %u retries, %u..%u ms", value, mode,
                        retries, delay, max_delay))
                        printf("#   got mode %d, %u retries, %u..%u ms\n", rp->mode,
                               rp->max_retries, rp->delay_ms, rp->max_delay_ms);
        }
        kpa_manifest_free(m);
}

/* KPA_restart: what kpa-execd does when a supervised instance ends */
/* KPA_sockets: declared listening sockets per run configuration */
static void test_sockets(void)
{
        kpa_manifest *m = accept_mut("/extensions/KPA_sockets",
                                     "{'main': [{'name': 'http', 'listen': 'tcp:127.0.0.1:8080'},"
                                     " {'name': 'ctl', 'listen': 'unix:run/ctl.sock', 'activate': true}],"
                                     " 'helper': [{'name': 'v6', 'listen': 'tcp:[::1]:9'}]}");
        const kpa_run_config *rc = m ? kpa_manifest_find_run_config(m, "main") : NULL;
        ok(rc && rc->n_sockets == 2 && rc->sockets[0]->kind == KPA_SOCKET_TCP &&
                   streq(rc->sockets[0]->address, "127.0.0.1") && rc->sockets[0]->port == 8080 &&
                   !rc->sockets[0]->activate && rc->sockets[1]->kind == KPA_SOCKET_UNIX &&
                   streq(rc->sockets[1]->address, "run/ctl.sock") && rc->sockets[1]->activate &&
                   streq(rc->sockets[1]->name, "ctl"),
           "KPA_sockets: tcp and unix declarations read");
        ok(rc && rc->sockets[1]->struct_size == sizeof(kpa_socket_decl),
           "... each a versioned kpa_socket_decl behind a pointer");
        rc = m ? kpa_manifest_find_run_config(m, "helper") : NULL;
        ok(rc && rc->n_sockets == 1 && streq(rc->sockets[0]->address, "::1") &&
                   rc->sockets[0]->port == 9,
           "KPA_sockets: an IPv6 address in brackets");
        kpa_manifest_free(m);
        static const struct {
                const char *value, *path, *what;
        } bad[] = {
                {"[]", "extensions.KPA_sockets", "must be an object"},
                {"{'nope': []}", "extensions.KPA_sockets.nope", "is not the id of a run configuration"},
                {"{'main': {}}", "extensions.KPA_sockets.main", "must be an array"},
                {"{'main': [{'listen': 'tcp:127.0.0.1:1'}]}", "extensions.KPA_sockets.main[0]",
                 "missing required key \"name\""},
                {"{'main': [{'name': 'a:b', 'listen': 'tcp:127.0.0.1:1'}]}",
                 "extensions.KPA_sockets.main[0].name", "is not a valid handle name"},
                {"{'main': [{'name': 'h', 'listen': 'tcp:127.0.0.1:1', 'x': 1}]}",
                 "extensions.KPA_sockets.main[0].x", "unknown key"},
                {"{'main': [{'name': 'h', 'listen': 'udp:127.0.0.1:1'}]}",
                 "extensions.KPA_sockets.main[0].listen", "must be tcp:ADDRESS:PORT or unix:PATH"},
                {"{'main': [{'name': 'h', 'listen': 'tcp:localhost:80'}]}",
                 "extensions.KPA_sockets.main[0].listen", "is not a numeric IPv4 address"},
                {"{'main': [{'name': 'h', 'listen': 'tcp:127.0.0.1:0'}]}",
                 "extensions.KPA_sockets.main[0].listen", "port 0 is not a declared port"},
                {"{'main': [{'name': 'h', 'listen': 'tcp:127.0.0.1:65536'}]}",
                 "extensions.KPA_sockets.main[0].listen", "bad port"},
                {"{'main': [{'name': 'h', 'listen': 'tcp:::1:80'}]}",
                 "extensions.KPA_sockets.main[0].listen", "is not a numeric IPv4 address"},
                {"{'main': [{'name': 'h', 'listen': 'unix:../x.sock'}]}",
                 "extensions.KPA_sockets.main[0].listen", "must stay below /run/kpa/sockets/org.example.full/"},
                {"{'main': [{'name': 'h', 'listen': 'unix:/tmp/x.sock'}]}",
                 "extensions.KPA_sockets.main[0].listen", "must stay below"},
                {"{'main': [{'name': 'h', 'listen': 'unix:a/../../x'}]}",
                 "extensions.KPA_sockets.main[0].listen", "must stay below"},
                {"{'main': [{'name': 'h', 'listen': 'unix:'}]}",
                 "extensions.KPA_sockets.main[0].listen", "no socket path"},
                {"{'main': [{'name': 'h', 'listen': 'unix:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'}]}",
                 "extensions.KPA_sockets.main[0].listen", "longer than a socket address holds"},
                {"{'main': [{'name': 'h', 'listen': 'tcp:127.0.0.1:1'}, {'name': 'h', 'listen': 'tcp:127.0.0.1:2'}]}",
                 "extensions.KPA_sockets.main[1].name", "\"h\" is declared twice (also at extensions.KPA_sockets.main[0])"},
                {"{'main': [{'name': 'helper', 'listen': 'tcp:127.0.0.1:1'}]}",
                 "extensions.KPA_sockets.main[0].name", "clashes with the handle of the service it uses"},
                {"{'helper': [{'name': 'helper', 'listen': 'tcp:127.0.0.1:1'}]}",
                 "extensions.KPA_sockets.helper[0].name", "clashes with the handle of its own service socket"},
                {"{'main': [{'name': 'a', 'listen': 'tcp:127.0.0.1:1'}], 'helper': [{'name': 'b', 'listen': 'tcp:127.0.0.1:1'}]}",
                 "extensions.KPA_sockets.helper[0].listen", "is declared twice (also by run configuration \"main\", socket \"a\")"},
                {"{'main': [{'name': 'h', 'listen': 'tcp:127.0.0.1:1', 'activate': 'yes'}]}",
                 "extensions.KPA_sockets.main[0].activate", "must be a boolean"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                refuse_mut("/extensions/KPA_sockets", bad[i].value, bad[i].path, bad[i].what);
}

static void test_restart(void)
{
        _cleanup_free_ char *json = q(MINIMAL);
        kpa_manifest *m = NULL;
        kpa_error err;
        int r = parse(json, 0, &m, &err);
        ok(r == 0 && m && m->restart->mode == KPA_RESTART_NO && m->restart->max_retries == 5 &&
                   m->restart->delay_ms == 100 && m->restart->max_delay_ms == 30000,
           "no extensions: restart policy no, 5 retries, 100..30000 ms");
        kpa_manifest_free(m);
        m = accept_mut("/extensions/KPA_limits", NULL);
        ok(m && m->restart->mode == KPA_RESTART_NO && m->restart->max_retries == 5 &&
                   m->restart->delay_ms == 100 && m->restart->max_delay_ms == 30000,
           "extensions without KPA_restart: the defaults");
        kpa_manifest_free(m);

        accept_restart("{}", KPA_RESTART_NO, 5, 100, 30000);
        accept_restart("{'policy': 'no'}", KPA_RESTART_NO, 5, 100, 30000);
        accept_restart("{'policy': 'on-failure'}", KPA_RESTART_ON_FAILURE, 5, 100, 30000);
        accept_restart("{'policy': 'always'}", KPA_RESTART_ALWAYS, 5, 100, 30000);
        accept_restart("{'maxRetries': 0}", KPA_RESTART_NO, 0, 100, 30000);
        accept_restart("{'maxRetries': 1000000}", KPA_RESTART_NO, 1000000, 100, 30000);
        accept_restart("{'delayMs': 1}", KPA_RESTART_NO, 5, 1, 30000);
        accept_restart("{'delayMs': 30000}", KPA_RESTART_NO, 5, 30000, 30000);
        accept_restart("{'maxDelayMs': 100}", KPA_RESTART_NO, 5, 100, 100);
        accept_restart("{'maxDelayMs': 3600000}", KPA_RESTART_NO, 5, 100, 3600000);
        accept_restart("{'delayMs': 3600000, 'maxDelayMs': 3600000}", KPA_RESTART_NO, 5, 3600000,
                       3600000);
        accept_restart("{'policy': 'on-failure', 'maxRetries': 3, 'delayMs': 250, "
                       "'maxDelayMs': 8000}",
                       KPA_RESTART_ON_FAILURE, 3, 250, 8000);
        accept_restart("{'maxDelayMs': 50, 'delayMs': 50}", KPA_RESTART_NO, 5, 50, 50);

        /* resetAfter: seconds of a healthy run before the backoff starts over */
        m = accept_mut("/extensions/KPA_limits", NULL);
        ok(m && m->restart->reset_after_s == 60, "resetAfter: 60 s by default");
        kpa_manifest_free(m);
        m = accept_mut("/extensions/KPA_restart", "{'policy': 'always', 'resetAfter': 2}");
        ok(m && m->restart->reset_after_s == 2, "resetAfter: 2 read as 2 s");
        kpa_manifest_free(m);
        m = accept_mut("/extensions/KPA_restart", "{'resetAfter': 86400}");
        ok(m && m->restart->reset_after_s == 86400, "resetAfter: a day is the most");
        kpa_manifest_free(m);

        static const struct {
                const char *pointer, *value, *path, *what;
        } bad[] = {
                {"/extensions/KPA_restart", "'always'", "extensions.KPA_restart",
                 "must be an object, not a string"},
                {"/extensions/KPA_restart", "null", "extensions.KPA_restart",
                 "must be an object, not null"},
                {"/extensions/KPA_restart", "{'retries': 3}", "extensions.KPA_restart.retries",
                 "unknown key (known keys here: policy, maxRetries, delayMs, maxDelayMs, resetAfter)"},
                {"/extensions/KPA_restart", "{'Policy': 'always'}", "extensions.KPA_restart.Policy",
                 "unknown key"},
                {"/extensions/KPA_restart", "{'resetAfter': 0}", "extensions.KPA_restart.resetAfter",
                 "must be from 1 to 86400, not 0"},
                {"/extensions/KPA_restart", "{'resetAfter': 86401}",
                 "extensions.KPA_restart.resetAfter", "must be from 1 to 86400, not 86401"},
                {"/extensions/KPA_restart", "{'resetAfter': '60'}",
                 "extensions.KPA_restart.resetAfter", "must be an integer, not a string"},
                {"/extensions/KPA_restart", "{'max_retries': 1}",
                 "extensions.KPA_restart.max_retries", "unknown key"},
                {"/extensions/KPA_restart", "{'policy': 1}", "extensions.KPA_restart.policy",
                 "must be a string, not an integer"},
                {"/extensions/KPA_restart", "{'policy': null}", "extensions.KPA_restart.policy",
                 "must be a string, not null"},
                {"/extensions/KPA_restart", "{'policy': true}", "extensions.KPA_restart.policy",
                 "must be a string, not a boolean"},
                {"/extensions/KPA_restart", "{'policy': 'never'}", "extensions.KPA_restart.policy",
                 "must be \"no\", \"on-failure\" or \"always\", not \"never\""},
                {"/extensions/KPA_restart", "{'policy': 'On-Failure'}",
                 "extensions.KPA_restart.policy", "not \"On-Failure\""},
                {"/extensions/KPA_restart", "{'policy': 'on_failure'}",
                 "extensions.KPA_restart.policy", "not \"on_failure\""},
                {"/extensions/KPA_restart", "{'policy': ''}", "extensions.KPA_restart.policy",
                 "must be \"no\", \"on-failure\" or \"always\", not \"\""},
                {"/extensions/KPA_restart", "{'maxRetries': -1}",
                 "extensions.KPA_restart.maxRetries", "must be from 0 to 1000000, not -1"},
                {"/extensions/KPA_restart", "{'maxRetries': 1000001}",
                 "extensions.KPA_restart.maxRetries", "must be from 0 to 1000000, not 1000001"},
                {"/extensions/KPA_restart", "{'maxRetries': '5'}",
                 "extensions.KPA_restart.maxRetries", "must be an integer, not a string"},
                {"/extensions/KPA_restart", "{'maxRetries': 1.5}",
                 "extensions.KPA_restart.maxRetries",
                 "must be an integer, not a number with a fraction"},
                {"/extensions/KPA_restart", "{'maxRetries': true}",
                 "extensions.KPA_restart.maxRetries", "must be an integer, not a boolean"},
                {"/extensions/KPA_restart", "{'delayMs': 0}", "extensions.KPA_restart.delayMs",
                 "must be from 1 to 3600000, not 0"},
                {"/extensions/KPA_restart", "{'delayMs': -100}", "extensions.KPA_restart.delayMs",
                 "must be from 1 to 3600000, not -100"},
                {"/extensions/KPA_restart", "{'delayMs': 3600001, 'maxDelayMs': 3600000}",
                 "extensions.KPA_restart.delayMs", "must be from 1 to 3600000, not 3600001"},
                {"/extensions/KPA_restart", "{'delayMs': '100ms'}",
                 "extensions.KPA_restart.delayMs", "must be an integer, not a string"},
                {"/extensions/KPA_restart", "{'maxDelayMs': 0}",
                 "extensions.KPA_restart.maxDelayMs", "must be from 1 to 3600000, not 0"},
                {"/extensions/KPA_restart", "{'maxDelayMs': 3600001}",
                 "extensions.KPA_restart.maxDelayMs", "must be from 1 to 3600000, not 3600001"},
                {"/extensions/KPA_restart", "{'maxDelayMs': []}",
                 "extensions.KPA_restart.maxDelayMs", "must be an integer, not an array"},
                {"/extensions/KPA_restart", "{'delayMs': 500, 'maxDelayMs': 499}",
                 "extensions.KPA_restart.maxDelayMs", "499 is less than delayMs (500)"},
                {"/extensions/KPA_restart", "{'maxDelayMs': 50}",
                 "extensions.KPA_restart.maxDelayMs", "50 is less than delayMs (100, the default)"},
                {"/extensions/KPA_restart", "{'delayMs': 60000}", "extensions.KPA_restart.delayMs",
                 "60000 is more than maxDelayMs (30000, the default): set maxDelayMs too"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                refuse_mut(bad[i].pointer, bad[i].value, bad[i].path, bad[i].what);
}

static void test_extensions(void)
{
        static const struct {
                const char *memory;
                uint64_t bytes;
        } mem[] = {
                {"'64M'", 64ULL << 20}, {"'512K'", 512ULL << 10}, {"'2G'", 2ULL << 30},
                {"'1T'", 1ULL << 40},   {"'1000'", 1000},         {"134217728", 134217728},
        };
        for (size_t i = 0; i < ELEMENTSOF(mem); i++) {
                kpa_manifest *m = accept_mut("/extensions/KPA_limits/memory", mem[i].memory);
                is(m ? m->limits->memory_bytes : 0, mem[i].bytes, "memory %s", mem[i].memory);
                kpa_manifest_free(m);
        }
        static const char *const bad_mem[] = {"'64MB'", "'64m'", "'M'",    "''",
                                              "'0'",    "'-1M'", "'1.5G'", "'99999999999T'",
                                              "0",      "-5",    "1.5"};
        for (size_t i = 0; i < ELEMENTSOF(bad_mem); i++)
                refuse_mut("/extensions/KPA_limits/memory", bad_mem[i],
                           "extensions.KPA_limits.memory", "");
        refuse_mut("/extensions/KPA_limits/pids", "0", "extensions.KPA_limits.pids",
                   "must be from 1");
        refuse_mut("/extensions/KPA_limits/cpuWeight", "0", "extensions.KPA_limits.cpuWeight",
                   "must be from 1 to 10000, not 0");
        refuse_mut("/extensions/KPA_limits/cpuWeight", "10001", "extensions.KPA_limits.cpuWeight",
                   "must be from 1 to 10000, not 10001");
        kpa_manifest *m = accept_mut("/extensions/KPA_limits/cpuWeight", "10000");
        ok(m && m->limits->cpu_weight == 10000, "cpuWeight 10000 accepted");
        kpa_manifest_free(m);

        refuse_mut("/extensions/KPA_sandbox/readOnlyPaths/0", "'usr/share'",
                   "extensions.KPA_sandbox.readOnlyPaths[0]", "must be an absolute path");
        refuse_mut("/extensions/KPA_sandbox/readOnlyPaths/0", "'/usr/../etc'",
                   "extensions.KPA_sandbox.readOnlyPaths[0]", "must not contain \"..\"");
        refuse_mut("/extensions/KPA_sandbox/readOnlyPaths/0", "'/'",
                   "extensions.KPA_sandbox.readOnlyPaths[0]", "names no file or directory below /");
        refuse_mut("/extensions/KPA_sandbox/readOnlyPaths/1", "'/usr/share/zoneinfo'",
                   "extensions.KPA_sandbox.readOnlyPaths[1]", "is listed twice");
        refuse_mut("/extensions/KPA_sandbox/readOnlyPaths/1", "'/a\\nb'",
                   "extensions.KPA_sandbox.readOnlyPaths[1]", "control characters");

        static const char *const bad_names[] = {"vendor_x", "VENDOR", "VENDOR_", "_",
                                                "Vendor_x", "1A_b",   "A_\\nx"};
        static const char *const bad_paths[] = {"extensions.vendor_x",   "extensions.VENDOR",
                                                "extensions.VENDOR_",    "extensions._",
                                                "extensions.Vendor_x",   "extensions[\"1A_b\"]",
                                                "extensions[\"A_\\nx\"]"};
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                _cleanup_free_ char *json = mutate(FULL, "/extensions/X", "{}");
                /* json-c's pointer code cannot write "\n" in a key: edit the text */
                _cleanup_free_ char *key = kpa_xasprintf("\"%s\"", bad_names[i]);
                char *at = strstr(json, "\"X\"");
                _cleanup_free_ char *edited =
                        kpa_xasprintf("%.*s%s%s", (int)(at - json), json, key, at + 3);
                _cleanup_free_ char *name = kpa_xasprintf("extension name %s refused", key);
                refuse(edited, bad_paths[i], "extension names must match ^[A-Z_]+_.+", name);
        }
        static const char *const good_names[] = {"VENDOR_x", "A_B", "__x", "COM_EXAMPLE_thing.v2",
                                                 "X_ y"};
        for (size_t i = 0; i < ELEMENTSOF(good_names); i++) {
                _cleanup_free_ char *ptr = kpa_xasprintf("/extensions/%s", good_names[i]);
                kpa_manifest_free(accept_mut(ptr, "'v'"));
        }
        refuse_mut("/extensions/KPA_seccomp", "{}", "extensions.KPA_seccomp",
                   "unknown kpa extension (kpa knows KPA_limits, KPA_sandbox, KPA_restart and KPA_sockets)");
        refuse_mut("/extensions/KPA_Restart", "{}", "extensions.KPA_Restart",
                   "unknown kpa extension");
        refuse_mut("/extensions/KPA_restarts", "{}", "extensions.KPA_restarts",
                   "unknown kpa extension");
        test_sandbox_allow();
        test_restart();
        test_sockets();
}

static void test_duplicate_keys(void)
{
        _cleanup_free_ char *full = q(FULL);

        /* also when spelled with escapes */
        _cleanup_free_ char *dup =
                kpa_xasprintf("{\"version\": \"2.0\", \"version\": \"2.0\"%s", full + 1);
        refuse(dup, "version", "duplicate key (first at line 1, column 2)",
               "duplicate top-level key");
        char *p = strstr(full, "\"name\": \"@app_name@\"");
        _cleanup_free_ char *dup2 = kpa_xasprintf("%.*s\"\\u0069d\": \"x\"%s", (int)(p - full),
                                                  full, p + strlen("\"name\": \"@app_name@\""));
        refuse(dup2, "application.id", "duplicate key", "duplicate key written with an escape");
        refuse("{\"a\": {\"b\": 1, \"b\": 2}}", "a.b", "duplicate key", "duplicate nested key");
        refuse("{\"\": 1}", "[\"\"]", "unknown key", "an empty key first (a bug found by fuzzing)");
        refuse("{\"x\": [{\"k\": 1}, {\"k\": 1, \"k\": 2}]}", "x[1].k", "duplicate key",
               "duplicate key inside an array");
        refuse("{\"a\": 1, \"b\": {\"a\": 1}}", "a", "unknown key",
               "same key in two objects is fine");
}

static void test_utf8(void)
{
        _cleanup_free_ char *full = q(FULL);
        static const struct {
                const char *bytes, *what;
        } utf8[] = {
                {"\xC0\xAF", "overlong"},
                {"\xE0\x80\xAF", "overlong"},
                {"\xF0\x80\x80\xAF", "overlong"},
                {"\xED\xA0\x80", "surrogate"},
                {"\xF4\x90\x80\x80", "above U+10FFFF"},
                {"\xF5\x80\x80\x80", "above U+10FFFF"},
                {"\xFF", "never occurs"},
                {"\x80", "continuation byte without a lead byte"},
                {"\xE2\x82", "incomplete sequence"},
        };
        for (size_t i = 0; i < ELEMENTSOF(utf8); i++) {
                _cleanup_free_ char *json = kpa_xstrdup(full);
                char *v = strstr(json, "Helper");
                _cleanup_free_ char *bad =
                        kpa_xasprintf("%.*s%s%s", (int)(v - json), json, utf8[i].bytes, v);
                refuse(bad, "runConfigurations[1].name", utf8[i].what, utf8[i].what);
        }
        _cleanup_free_ char *trunc = kpa_xasprintf("{\"a\": \"\xE2\x82");
        refuse(trunc, "a", "incomplete sequence at the end", "UTF-8 cut by the end of input");
        _cleanup_free_ char *good_utf8 =
                mutate(FULL, "/runConfigurations/1/name",
                       "'\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80 \\u00e9\\ud83d\\ude00'");
        kpa_manifest *m = NULL;
        kpa_error err;
        ok(parse(good_utf8, 0, &m, &err) == 0 && m && streq(m->run_configs[1]->name, "é€😀 é😀"),
           "valid UTF-8 and surrogate pairs accepted");
        kpa_manifest_free(m);
}

static void test_nul(void)
{
        _cleanup_free_ char *full = q(FULL);
        size_t len = strlen(full);
        _cleanup_free_ char *nul = kpa_xstrdup(full);
        char *p = strstr(nul, "Helper");
        p[2] = '\0';
        refuse_text(nul, len, "runConfigurations[1].name", "NUL byte in a string",
                    "raw NUL in a string");
        refuse_mut("/runConfigurations/0/args/0", "'a\\u0000b'", "runConfigurations[0].args[0]",
                   "NUL character (\\u0000) in a string");
        refuse("{\"a\\u0000\": 1}", "", "NUL character", "\\u0000 in a key");
        refuse_text("{\"a\": 1}\0", 9, "", "unexpected NUL byte", "NUL after the document");
        refuse("{\"a\": \"\\ud800\"}", "a",
               "high surrogate \\uD800 is not followed by a low surrogate",
               "lone high surrogate escape");
        refuse("{\"a\": \"\\udc00\"}", "a", "lone low surrogate", "lone low surrogate escape");
        refuse("{\"a\": \"\\ud800\\u0041\"}", "a", "not followed by a low surrogate",
               "high surrogate then a non-surrogate");
}

/* Syntax errors, with line and column. */
static void test_syntax(void)
{
        refuse("", "", "line 1, column 1: empty document", "empty input");
        refuse("  \n ", "", "line 2, column 2: empty document", "whitespace only");
        refuse("{\"a\": 1,}", "a",
               "line 1, column 9: a ',' before '}': JSON allows no trailing commas",
               "trailing comma in object");
        refuse("{\"a\": [1,]}", "a[0]", "a ',' before ']'", "trailing comma in array");
        refuse("{\"a\": 1} x", "",
               "line 1, column 10: unexpected 'x', expected the end of the document",
               "trailing garbage");
        refuse("{\n  \"a\": tru }", "a", "line 2, column 8: invalid literal, expected true",
               "bad literal");
        refuse("{\"a\": 01}", "a", "leading zeros", "leading zero");
        refuse("{\"a\": 1.}", "a", "a digit must follow '.'", "bad fraction");
        refuse("{\"a\": -}", "a", "'-' must be followed by a digit", "lone minus");
        refuse("{\"a\": 1e}", "a", "a digit must follow the exponent", "bad exponent");
        refuse("{\"a\": 9223372036854775808}", "a", "out of range", "integer above int64");
        refuse("{\"a\": -9223372036854775809}", "a", "out of range", "integer below int64");
        refuse("{\"a\": -9223372036854775808}", "a", "unknown key",
               "int64 minimum passes the scan");
        refuse("{\"a\": \"x\\q\"}", "a", "invalid escape '\\q'", "bad escape");
        refuse("{\"a\": \"\\u12G4\"}", "a", "4 hexadecimal digits", "bad \\u escape");
        refuse("{\"a\": \"tab\there\"}", "a", "control character 0x09 in a string",
               "raw tab in a string");
        refuse("{\"a\": \"open", "a", "line 1, column 7: unterminated string",
               "unterminated string");
        refuse("{'a': 1}", "", "JSON strings take double quotes", "single quotes");
        refuse("{/* c */}", "", "JSON has no comments", "comments");
        refuse("{\"a\" 1}", "a", "expected ':' after an object key", "missing colon");
        refuse("{\"a\": 1 \"b\": 2}", "a", "expected ',' or '}' after an object member",
               "missing comma");
        refuse("\xEF\xBB\xBF{}", "", "byte order mark", "BOM");
        refuse("{\"a\": NaN}", "a", "unexpected 'N', expected a value", "NaN");
        refuse("{\"a\": \xC3\xA9}", "a", "unexpected character '\xC3\xA9'",
               "non-ASCII outside strings");
        refuse("{\"a\": \xC3}", "a", "invalid UTF-8", "invalid UTF-8 outside strings");
}

static void test_nesting(void)
{
        /* error message paths quote odd keys */
        refuse("{\"x y\": {\"k\": 1, \"k\": 2}}", "[\"x y\"].k", "duplicate key",
               "odd key quoted in path");

        /* nesting: 64 levels are fine, 65 are not */
        for (int depth = 64; depth <= 65; depth++) {
                /* top object, extensions, then arrays: DEPTH containers in all */
                int arrays = depth - 2;
                _cleanup_free_ char *value = kpa_xcalloc(1, 2 * (size_t)arrays + 1);
                memset(value, '[', (size_t)arrays);
                memset(value + arrays, ']', (size_t)arrays);
                if (depth == 64) {
                        kpa_manifest_free(accept_mut("/extensions/VENDOR_deep", value));
                        continue;
                }
                _cleanup_free_ char *json = mutate(FULL, "/extensions/VENDOR_deep", value);
                _cleanup_free_ char *path = kpa_xstrdup("extensions.VENDOR_deep");
                for (int i = 0; i < arrays - 1; i++) {
                        char *next = kpa_xasprintf("%s[0]", path);
                        free(path);
                        path = next;
                }
                refuse(json, path, "nesting deeper than 64 levels",
                       "65 levels refused, path named");
        }
}

static void test_size(void)
{
        _cleanup_free_ char *full = q(FULL);
        size_t len = strlen(full);
        _cleanup_free_ char *big = kpa_xmalloc(KPA_MANIFEST_MAX_SIZE + 2);
        memcpy(big, full, len);
        memset(big + len, ' ', KPA_MANIFEST_MAX_SIZE + 1 - len);
        kpa_manifest *m = NULL;
        kpa_error err;
        kpa_error_clear(&err);
        int r = kpa_manifest_parse(big, KPA_MANIFEST_MAX_SIZE, 0, &m, &err);
        if (!ok(r == 0, "exactly KPA_MANIFEST_MAX_SIZE bytes accepted"))
                printf("#   %s\n", err.message);
        kpa_manifest_free(m);
        m = NULL;
        r = kpa_manifest_parse(big, KPA_MANIFEST_MAX_SIZE + 1, 0, &m, &err);
        is(r, -EFBIG, "one byte more: -EFBIG");
        ok(m == NULL, "nothing returned");
        is(err.code, EFBIG, "error code EFBIG");
        has_str(err.message, "manifest.json: too large: 1048577 bytes, the limit is 1048576 bytes",
                "size error message");
}

static void test_messages(void)
{
        _cleanup_free_ char *json =
                mutate(FULL, "/components/2/name", "'a\\u001b]0;evil\\u0007/b'");
        kpa_manifest *m = NULL;
        kpa_error err;
        int r = parse(json, 0, &m, &err);
        bool clean = true;
        for (const char *p = err.message; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        clean = false;
        ok(r == -EINVAL && clean, "control characters are escaped in messages");
        has_str(err.message, "\\u001b", "escape shown as \\u001b");
        _cleanup_free_ char *long_val = kpa_xmalloc(5000);
        memset(long_val, 'x', 4998);
        long_val[0] = '\'';
        long_val[4997] = '\'';
        long_val[4998] = '\0';
        _cleanup_free_ char *json2 = mutate(FULL, "/application/id", long_val);
        r = parse(json2, 0, &m, &err);
        ok(r == -EINVAL && strlen(err.message) < 400 && strstr(err.message, "...\""),
           "long values are cut in messages");
        refuse("{\"a.b\": {\"\\\"q\\\"\": [0, {\"k\": 1, \"k\": 1}]}}",
               "[\"a.b\"][\"\\\"q\\\"\"][1].k", "duplicate key",
               "path notation: quoted keys, escaped quotes, indexes");
        char long_key[200];
        memset(long_key, 'k', 100);
        long_key[100] = '\0';
        _cleanup_free_ char *lk = kpa_xasprintf("{\"%s\": {\"a\": 1, \"a\": 1}}", long_key);
        _cleanup_free_ char *lk_path = kpa_xasprintf("[\"%.64s...\"].a", long_key);
        refuse(lk, lk_path, "duplicate key", "long keys are cut in paths");
}

static const char EN[] =
        "{'en': {'app_name': 'Weather', 'app_desc': 'Forecasts', 'main_name': 'Main'}}";
static const char RU[] = "{'ru': {'app_name': 'Pogoda'}, 'ru_UA': {'app_name': 'Pohoda'},"
                         " 'de': {'only_de': 'Nur deutsch'}}";

static kpa_manifest *parse_full(void)
{
        _cleanup_free_ char *json = q(FULL);
        kpa_manifest *m = NULL;
        kpa_error err;
        if (parse(json, 0, &m, &err) < 0)
                printf("# %s\n", err.message);
        return m;
}

static int add_locale(kpa_manifest *m, const char *name, const char *json_q, kpa_error *err)
{
        _cleanup_free_ char *json = q(json_q);
        kpa_error_clear(err);
        return kpa_manifest_add_locale(m, name, json, strlen(json), err);
}

static void test_locales(void)
{
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = parse_full();
        kpa_error err;
        if (!m)
                return;
        const char *app = m->application.name;
        ok(kpa_manifest_localize(m, app, "ru") == app, "no locale tables: value as written");
        is(add_locale(m, "en.json", EN, &err), 0, "add en.json");
        is(add_locale(m, "ru.json", RU, &err), 0, "add ru.json");
        is_str(kpa_manifest_localize(m, app, "ru_RU.UTF-8"), "Pogoda", "ru_RU.UTF-8 -> ru");
        is_str(kpa_manifest_localize(m, app, "ru-RU"), "Pogoda", "ru-RU -> ru");
        is_str(kpa_manifest_localize(m, app, "ru_UA.UTF-8@euro"), "Pohoda", "ru_UA exact match");
        is_str(kpa_manifest_localize(m, app, "ru-ua"), "Pohoda",
               "locale names ignore case and -/_");
        is_str(kpa_manifest_localize(m, app, "fr_FR.UTF-8"), "Weather", "unknown locale -> en");
        is_str(kpa_manifest_localize(m, app, "C"), "Weather", "C -> en");
        is_str(kpa_manifest_localize(m, app, ""), "Weather", "empty -> en");
        is_str(kpa_manifest_localize(m, "@only_de@", "ru"), "Nur deutsch",
               "any locale that has it");
        is_str(kpa_manifest_localize(m, "@missing@", "en"), "@missing@",
               "unresolved key as written");
        is_str(kpa_manifest_localize(m, "plain", "ru"), "plain", "plain value as written");
        is_str(kpa_manifest_localize(m, "@@", "ru"), "@@", "@@ is plain");
        is_str(kpa_manifest_localize(m, "@app_name", "ru"), "@app_name", "half-marked is plain");
        ok(kpa_manifest_localize(m, NULL, "ru") == NULL, "NULL stays NULL");
        is_str(kpa_manifest_localize(m, m->application.description, "de"), "Forecasts",
               "description localized");
        setenv("LC_ALL", "", 1);
        setenv("LC_MESSAGES", "ru_RU.UTF-8", 1);
        setenv("LANG", "en_US.UTF-8", 1);
        is_str(kpa_manifest_localize(m, app, NULL), "Pogoda",
               "NULL locale: LC_MESSAGES when LC_ALL empty");
        setenv("LC_ALL", "en_GB", 1);
        is_str(kpa_manifest_localize(m, app, NULL), "Weather", "NULL locale: LC_ALL first");
        unsetenv("LC_ALL");
        unsetenv("LC_MESSAGES");
        unsetenv("LANG");
        is_str(kpa_manifest_localize(m, app, NULL), "Weather", "no locale at all: en");

        /* refusals change nothing */
        int r = add_locale(m, "ru2.json", "{'ru': {'new_key': 'x', 'app_name': 'Again'}}", &err);
        ok(r == -EINVAL, "a key defined twice is refused");
        has_str(err.message, "ru2.json: ru.app_name: is already defined by ru.json", "and named");
        is_str(kpa_manifest_localize(m, "@new_key@", "ru"), "@new_key@",
               "refused file added nothing");
        r = add_locale(m, "bad.json", "{'en': {'k': 1}}", &err);
        ok(r == -EINVAL && strstr(err.message, "bad.json: en.k: must be a string, not an integer"),
           "locale text must be a string");
        r = add_locale(m, "bad.json", "['en']", &err);
        ok(r == -EINVAL && strstr(err.message, "bad.json: must be an object of the form"),
           "locale file must be an object");
        r = add_locale(m, "bad.json", "{'en': 'x'}", &err);
        ok(r == -EINVAL && strstr(err.message, "bad.json: en: must be an object, not a string"),
           "locale table must be an object");
        r = add_locale(m, "bad.json", "{'e n': {}}", &err);
        ok(r == -EINVAL && strstr(err.message, "is not a locale name"), "bad locale name");
        r = add_locale(m, "bad.json", "{'en': {'k': 'a', 'k': 'b'}}", &err);
        ok(r == -EINVAL && strstr(err.message, "bad.json: en.k: line 1, column 19: duplicate key"),
           "locale files are strict JSON too");
        const char *bad_utf8 = "{\"en\": {\"k\": \"\xC0\xAF\"}}";
        r = kpa_manifest_add_locale(m, "bad.json", bad_utf8, strlen(bad_utf8), &err);
        ok(r == -EINVAL && strstr(err.message, "bad.json: en.k: line 1, column 15: invalid UTF-8"),
           "locale files must be valid UTF-8");
        is(add_locale(m, "more.json", "{'ru': {'main_name': 'Glavnyi'}}", &err), 0,
           "a second file may add keys to a locale");
        is_str(kpa_manifest_localize(m, m->run_configs[0]->name, "ru"), "Glavnyi", "merged table");
}

static void test_arch(void)
{
        static const struct {
                const char *written, *machine;
        } map[] = {
                {"aarch64-kos", "aarch64"}, {"x86_64-kos", "x86_64"},   {"amd64", "x86_64"},
                {"arm64", "aarch64"},       {"riscv64-kos", "riscv64"}, {"x86_64", "x86_64"},
                {"aarch64", "aarch64"},     {"-kos", "-kos"},
        };
        for (size_t i = 0; i < ELEMENTSOF(map); i++) {
                _cleanup_free_ char *v = kpa_xasprintf("'%s'", map[i].written);
                kpa_manifest *m = accept_mut("/platform/hwSpecification/arch", v);
                is_str(m ? kpa_manifest_linux_arch(m) : NULL, map[i].machine, "arch %s -> %s",
                       map[i].written, map[i].machine);
                kpa_manifest_free(m);
        }
        struct utsname u;
        uname(&u);
        _cleanup_free_ char *same = kpa_xasprintf("'%s'", u.machine);
        kpa_manifest *m = accept_mut("/platform/hwSpecification/arch", same);
        kpa_error err;
        kpa_error_clear(&err);
        ok(m && kpa_manifest_check_arch(m, &err) == 0, "this machine's arch (%s) matches",
           u.machine);
        kpa_manifest_free(m);
        const char *other = streq(u.machine, "aarch64") ? "x86_64-kos" : "aarch64-kos";
        const char *other_linux = streq(u.machine, "aarch64") ? "x86_64" : "aarch64";
        _cleanup_free_ char *ov = kpa_xasprintf("'%s'", other);
        m = accept_mut("/platform/hwSpecification/arch", ov);
        int r = m ? kpa_manifest_check_arch(m, &err) : 0;
        is(r, -ENOEXEC, "another arch: -ENOEXEC");
        has_str(err.message, "manifest.json: platform.hwSpecification.arch:", "names the key");
        has_str(err.message, other_linux, "names the package's arch");
        has_str(err.message, u.machine, "names this machine");
        kpa_manifest_free(m);
        if (streq(u.machine, "x86_64")) {
                m = accept_mut("/platform/hwSpecification/arch", "'amd64'");
                ok(m && kpa_manifest_check_arch(m, &err) == 0, "amd64 runs on x86_64");
                kpa_manifest_free(m);
        }
}

int main(void)
{
        test_full();
        test_minimal();
        test_required();
        test_types();
        test_unknown_keys();
        test_values();
        test_app_ids();
        test_components();
        test_missing_digests();
        test_run_configs();
        test_uses_handle_names();
        test_uses_long_cycle();
        test_spellings();
        test_storage();
        test_extensions();
        test_duplicate_keys();
        test_utf8();
        test_nul();
        test_syntax();
        test_nesting();
        test_size();
        test_messages();
        test_locales();
        test_arch();
        return tap_done();
}
