/* Unit tests for the public instance plan (kpa/instance.h): the
 * constructors from an installed package and from an OCI bundle and their
 * errors, the JSON form (version, key order, content), the getters, each
 * setter's validation (an error leaves the plan as it was), and the
 * refusals of kpa_process_start_spec that come before any start (a
 * connected controller, a plan started already). The starts themselves are
 * tests/integration/instance-spec.sh's. Root and rootless alike; the
 * binds, which only root may add, are checked for the refusal otherwise. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "control-priv.h"
#include "kpa/instance.h"
#include "kpa/package.h"
#include "sandbox.h"
#include "tap.h"
#include "test-files.h"
#include "util.h"

#define APP "org.example.instspec"

/* clang-format off */
static const char MANIFEST[] =
        "{'version': '2.0',"
        " 'application': {'id': '" APP "', 'name': 'S', 'version': '1.0', 'buildNumber': '1',"
        "   'systemApplication': false},"
        " 'platform': {'id': 'linux', 'sdk': {'buildSdkName': 's', 'buildSdkVersion': '1',"
        "   'targetApiLevel': 1}, 'hwSpecification': {'arch': '@ARCH@', 'cpu': ''}},"
        " 'components': [{'name': 'app', 'componentType': 'bin', 'digest': ''}],"
        " 'runConfigurations': ["
        "   {'id': 'main', 'name': 'Main', 'type': 'service', 'path': 'bin/app', 'primary': true,"
        "    'eiid': 'inst.Main', 'args': ['--port', '80'],"
        "    'envVariables': [{'name': 'MODE', 'value': 'prod'}]},"
        "   {'id': 'aux', 'name': 'Aux', 'type': 'gui', 'path': 'bin/app', 'primary': false}],"
        " 'extensions': {'KPA_limits': {'memory': '64M', 'pids': 32, 'cpuWeight': 500}}}";
/* clang-format on */

static char tmp[] = "/tmp/kpa-test-instance-spec-XXXXXX";

static char *path_of(const char *rel)
{
        return kpa_xasprintf("%s/%s", tmp, rel);
}

static int count_fds(void)
{
        _cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
        int n = 0;
        for (struct dirent *de; d && (de = readdir(d));)
                n += de->d_name[0] != '.';
        return n;
}

/* Pack MANIFEST with bin/app and install it into TMP/store. */
static bool install(kpa_error *err)
{
        _cleanup_free_ char *src = path_of("src");
        _cleanup_free_ char *app = path_of("src/app");
        _cleanup_free_ char *manifest = path_of("manifest.json");
        _cleanup_free_ char *pkg = path_of("p.kpa");
        _cleanup_free_ char *store_root = path_of("store");
        _cleanup_free_ char *policy = path_of("policy.d");
        const char *at = strstr(MANIFEST, "@ARCH@");
        _cleanup_free_ char *text =
                kpa_xasprintf("%.*s%s%s", (int)(at - MANIFEST), MANIFEST, host_arch(), at + 6);
        for (char *p = text; *p; p++)
                if (*p == '\'')
                        *p = '"';
        (void)mkdir(src, 0755);
        (void)mkdir(policy, 0755);
        write_file(manifest, text);
        write_file(app, "#!/bin/sh\n");
        chmod(app, 0755);
        if (pack_one(manifest, src, pkg, err) < 0)
                return false;
        _cleanup_(kpa_store_closep) kpa_store *s = NULL;
        if (kpa_store_open(store_root, KPA_STORE_CREATE, &s, err) < 0)
                return false;
        kpa_install_options io;
        kpa_install_options_init(&io);
        io.grant = "all";
        io.policy_dir = policy;
        return kpa_store_install(s, pkg, &io, NULL, err) == 0;
}

static json_object *parse(const kpa_instance_spec *spec)
{
        _cleanup_free_ char *text = kpa_instance_spec_to_json(spec);
        return json_tokener_parse(text);
}

/* the value at KEY (a.b.c; a number for an array index) as JSON text */
static const char *at(json_object *o, const char *key)
{
        static char buf[4096];
        _cleanup_free_ char *k = kpa_xstrdup(key);
        for (char *save = NULL, *t = strtok_r(k, ".", &save); t && o;
             t = strtok_r(NULL, ".", &save))
                o = json_object_is_type(o, json_type_array)
                            ? json_object_array_get_idx(o, (size_t)atoi(t))
                            : json_object_object_get(o, t);
        snprintf(buf, sizeof(buf), "%s",
                 o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE)
                   : "null");
        return buf;
}

static void test_package_json(const char *store)
{
        kpa_error err;
        kpa_instance_spec *spec = NULL;
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        const char *extra[] = {"x"};
        const char *env[] = {"EXTRA=1"};
        opts.extra_args = extra;
        opts.n_extra_args = 1;
        opts.extra_env = env;
        opts.n_extra_env = 1;
        opts.pids = 7;
        opts.cwd = "/storage";
        if (!ok(kpa_instance_spec_new_package(store, APP, NULL, &opts, &spec, &err) == 0,
                "a plan of the primary run configuration")) {
                printf("# %s\n", err.message);
                return;
        }
        is_str(kpa_instance_spec_app_id(spec), APP, "kpa_instance_spec_app_id");
        is_str(kpa_instance_spec_exec_path(spec), "/" APP "/bin/app",
               "kpa_instance_spec_exec_path");
        const char *const *argv = kpa_instance_spec_get_argv(spec);
        ok(argv && streq(argv[0], "inst.Main") && streq(argv[1], "--port") &&
                   streq(argv[2], "80") && streq(argv[3], "x") && !argv[4],
           "argv: eiid, the manifest's args, the extra one");
        is_str(kpa_instance_spec_get_env(spec, "MODE"), "prod", "env: the manifest's MODE");
        is_str(kpa_instance_spec_get_env(spec, "EXTRA"), "1", "env: the extra one");
        ok(kpa_instance_spec_get_env(spec, "MOD") == NULL, "env: a prefix of a name is no name");
        uint64_t v = 0;
        ok(kpa_instance_spec_get_limit(spec, KPA_INSTANCE_LIMIT_PIDS, &v) == 0 && v == 7,
           "limit: the start's pids");
        ok(kpa_instance_spec_get_limit(spec, KPA_INSTANCE_LIMIT_MEMORY, &v) == 0 && v == 64 << 20,
           "limit: KPA_limits' memory");
        ok(kpa_instance_spec_get_limit(spec, (kpa_instance_limit)99, &v) == -EINVAL,
           "limit: an unknown one is -EINVAL");
        is_str(kpa_instance_spec_get_cwd(spec), "/storage", "cwd");

        json_object *o = parse(spec);
        ok(o != NULL, "the JSON form parses");
        struct json_object_iterator it = json_object_iter_begin(o);
        is_str(json_object_iter_peek_name(&it), "kpaInstanceSpecVersion", "its first key");
        is(json_object_get_int(json_object_object_get(o, "kpaInstanceSpecVersion")),
           KPA_INSTANCE_SPEC_VERSION, "... is KPA_INSTANCE_SPEC_VERSION (%d)",
           KPA_INSTANCE_SPEC_VERSION);
        char keys[1024] = "";
        json_object_object_foreach (o, key, val) {
                (void)val;
                size_t len = strlen(keys);
                snprintf(keys + len, sizeof(keys) - len, "%s%s", len ? " " : "", key);
        }
        is_str(keys,
               "kpaInstanceSpecVersion appId runConfig execPath argv env cwd user hostname "
               "namespaces rootfs mounts limits cgroupParent handles stdio tty seccomp "
               "capabilities noNewPrivileges startFifo",
               "every key, in the documented order");
        is_str(at(o, "runConfig"), "\"main\"", "runConfig");
        is_str(at(o, "argv"), "[\"inst.Main\",\"--port\",\"80\",\"x\"]", "argv");
        is_str(at(o, "limits"), "{\"memoryBytes\":67108864,\"pids\":7,\"cpuWeight\":500}",
               "limits");
        is_str(at(o, "cwd"), "\"/storage\"", "cwd");
        is_str(at(o, "namespaces.pid"), "\"new\"", "namespaces.pid");
        is_str(at(o, "namespaces.user"), geteuid() == 0 ? "\"host\"" : "\"new\"",
               "namespaces.user: new exactly when rootless");
        is_str(at(o, "mounts.0"),
               "{\"kind\":\"bind-ro\",\"source\":\"/usr\",\"target\":\"/usr\",\"optional\":false,"
               "\"sourceOpen\":false,\"detachedMount\":false,"
               "\"flags\":[\"ro\",\"nosuid\",\"nodev\",\"bind\",\"rec\"],\"fstype\":null,"
               "\"data\":null}",
               "mounts[0]: /usr, read-only, every field");
        is_str(at(o, "handles"), "[]", "no handles");
        is_str(at(o, "rootfs"), "null", "rootfs: kpa's own root");
        is_str(at(o, "seccomp.filter"), "\"kpa-default\"", "seccomp: kpa's filter");
        json_object_put(o);
        kpa_instance_spec_free(spec);

        spec = NULL;
        ok(kpa_instance_spec_new_package(store, APP, "aux", NULL, &spec, &err) == 0,
           "a plan of run configuration \"aux\", default options");
        if (spec) {
                o = parse(spec);
                is_str(at(o, "runConfig"), "\"aux\"", "... runConfig");
                is_str(at(o, "argv"), "[\"/" APP "/bin/app\"]", "... argv: no eiid, no args");
                is_str(at(o, "stdio"), "[null,null,null]", "... stdio: /dev/null");
                json_object_put(o);
        }
        kpa_instance_spec_free(spec);
        kpa_instance_spec_free(NULL); /* may be NULL */
}

static void test_package_errors(const char *store)
{
        kpa_error err;
        kpa_instance_spec *spec = (kpa_instance_spec *)&err; /* reset on failure */
        ok(kpa_instance_spec_new_package(store, "", NULL, NULL, &spec, &err) == -EINVAL &&
                   spec == NULL && strstr(err.message, "no package id"),
           "an empty package id: -EINVAL, *OUT NULL");
        ok(kpa_instance_spec_new_package(store, "org.example.absent", NULL, NULL, &spec, &err) <
                           0 &&
                   strstr(err.message, "org.example.absent"),
           "a package not installed: refused, naming it");
        ok(kpa_instance_spec_new_package(store, APP, "nope", NULL, &spec, &err) == -ENOENT &&
                   strstr(err.message, "no run configuration \"nope\" (it has: main, aux)"),
           "an unknown run configuration: -ENOENT, naming it and the ones there are");
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        const char *env[] = {"NOEQUALS"};
        opts.extra_env = env;
        opts.n_extra_env = 1;
        ok(kpa_instance_spec_new_package(store, APP, NULL, &opts, &spec, &err) == -EINVAL &&
                   strstr(err.message, "\"NOEQUALS\" is not NAME=VALUE"),
           "a bad start option: refused as kpa_process_start refuses it");
        _cleanup_free_ char *missing = path_of("no-store");
        ok(kpa_instance_spec_new_package(missing, APP, NULL, NULL, &spec, &err) < 0 &&
                   strstr(err.message, "no-store"),
           "a store that does not exist: refused, naming it");
}

static kpa_instance_spec *plan(const char *store)
{
        kpa_error err;
        kpa_instance_spec *spec = NULL;
        if (kpa_instance_spec_new_package(store, APP, NULL, NULL, &spec, &err) < 0)
                abort();
        return spec;
}

static void test_setters(const char *store)
{
        kpa_error err;
        _cleanup_(kpa_instance_spec_freep) kpa_instance_spec *spec = plan(store);
        _cleanup_free_ char *before = kpa_instance_spec_to_json(spec);

        /* argv */
        ok(kpa_instance_spec_set_argv(spec, NULL, 0, &err) == -EINVAL &&
                   strstr(err.message, "argv[0]"),
           "set_argv: none is refused");
        const char *holey[] = {"a", NULL, "c"};
        ok(kpa_instance_spec_set_argv(spec, holey, 3, &err) == -EINVAL &&
                   strstr(err.message, "argv[1] is NULL"),
           "set_argv: a NULL entry is refused, naming it");
        /* env */
        ok(kpa_instance_spec_set_env(spec, "", "x", &err) == -EINVAL, "set_env: an empty name");
        ok(kpa_instance_spec_set_env(spec, "A=B", "x", &err) == -EINVAL &&
                   strstr(err.message, "\"A=B\""),
           "set_env: a name with '=', named");
        ok(kpa_instance_spec_set_env(spec, "LISTEN_FDNAMES", "x", &err) == -EINVAL &&
                   strstr(err.message, "LISTEN_FDNAMES describes the plan's handles"),
           "set_env: LISTEN_FDNAMES is kpa's");
        ok(kpa_instance_spec_set_env(spec, "LISTEN_PID", NULL, &err) == -EINVAL,
           "set_env: ... nor can LISTEN_PID be unset");
        /* limits */
        ok(kpa_instance_spec_set_limit(spec, KPA_INSTANCE_LIMIT_PIDS, 1ULL << 32, &err) ==
                           -EINVAL &&
                   strstr(err.message, "pids limit 4294967296"),
           "set_limit: pids above 2^32-1");
        ok(kpa_instance_spec_set_limit(spec, KPA_INSTANCE_LIMIT_CPU_WEIGHT, 10001, &err) ==
                           -EINVAL &&
                   strstr(err.message, "cpu weight 10001"),
           "set_limit: a cpu weight above 10000");
        ok(kpa_instance_spec_set_limit(spec, KPA_INSTANCE_LIMIT_MEMORY, UINT64_MAX, &err) ==
                   -EINVAL,
           "set_limit: memory above INT64_MAX");
        ok(kpa_instance_spec_set_limit(spec, (kpa_instance_limit)7, 1, &err) == -EINVAL &&
                   strstr(err.message, "unknown limit 7"),
           "set_limit: an unknown limit");
        /* cwd */
        ok(kpa_instance_spec_set_cwd(spec, "tmp", &err) == -EINVAL &&
                   strstr(err.message, "\"tmp\" is not an absolute path"),
           "set_cwd: a relative path");
        /* binds */
        if (geteuid() == 0) {
                ok(kpa_instance_spec_add_bind(spec, "tmp", "/mnt", false, &err) == -EINVAL &&
                           strstr(err.message, "must be absolute"),
                   "add_bind: a relative host path");
                ok(kpa_instance_spec_add_bind(spec, "/tmp", "/", true, &err) == -EINVAL,
                   "add_bind: at /");
                ok(kpa_instance_spec_add_bind(spec, "/tmp/../etc", "/mnt", false, &err) == -EINVAL,
                   "add_bind: with ..");
                ok(kpa_instance_spec_add_bind(spec, "/kpa-no-such-path", "/mnt", false, &err) ==
                                   -ENOENT &&
                           strstr(err.message, "/kpa-no-such-path"),
                   "add_bind: a missing host path, named");
        } else {
                ok(kpa_instance_spec_add_bind(spec, "/tmp", "/mnt", false, &err) == -EPERM &&
                           strstr(err.message, "only root"),
                   "add_bind: only root may bind");
        }
        _cleanup_free_ char *after = kpa_instance_spec_to_json(spec);
        is_str(after, before, "every refused setter left the plan as it was");

        const char *argv[] = {"name", "sleep", "5"};
        ok(kpa_instance_spec_set_argv(spec, argv, 3, &err) == 0, "set_argv");
        ok(kpa_instance_spec_set_env(spec, "MODE", "test", &err) == 0 &&
                   kpa_instance_spec_set_env(spec, "NEW", "", &err) == 0 &&
                   kpa_instance_spec_set_env(spec, "HOME", NULL, &err) == 0 &&
                   kpa_instance_spec_set_env(spec, "NEVER_SET", NULL, &err) == 0,
           "set_env: replace, add (an empty value), unset, unset what is not set");
        ok(kpa_instance_spec_set_limit(spec, KPA_INSTANCE_LIMIT_MEMORY, 0, &err) == 0 &&
                   kpa_instance_spec_set_limit(spec, KPA_INSTANCE_LIMIT_PIDS, 9, &err) == 0 &&
                   kpa_instance_spec_set_limit(spec, KPA_INSTANCE_LIMIT_CPU_WEIGHT, 10000, &err) ==
                           0,
           "set_limit: none, 9, 10000");
        ok(kpa_instance_spec_set_cwd(spec, "/tmp", &err) == 0, "set_cwd");
        if (geteuid() == 0)
                ok(kpa_instance_spec_add_bind(spec, "/tmp", "/host-tmp", true, &err) == 0,
                   "add_bind: /tmp read-write at /host-tmp");
        json_object *o = parse(spec);
        is_str(at(o, "argv"), "[\"name\",\"sleep\",\"5\"]", "argv, in the JSON");
        const char *env = at(o, "env");
        ok(strstr(env, "\"MODE=test\"") && strstr(env, "\"NEW=\"") && !strstr(env, "HOME=") &&
                   strstr(env, "\"PATH="),
           "env, in the JSON: replaced, added, unset, the rest kept");
        is_str(at(o, "limits"), "{\"memoryBytes\":null,\"pids\":9,\"cpuWeight\":10000}",
               "limits, in the JSON (0: null)");
        is_str(at(o, "cwd"), "\"/tmp\"", "cwd, in the JSON");
        if (geteuid() == 0) {
                size_t n = json_object_array_length(json_object_object_get(o, "mounts"));
                char key[32];
                snprintf(key, sizeof(key), "mounts.%zu", n - 1);
                is_str(at(o, key),
                       "{\"kind\":\"bind-rw\",\"source\":\"/tmp\",\"target\":\"/host-tmp\","
                       "\"optional\":false,\"sourceOpen\":false,\"detachedMount\":false,"
                       "\"flags\":[\"nosuid\",\"nodev\",\"bind\",\"rec\"],\"fstype\":null,"
                       "\"data\":null}",
                       "the bind, last in the mounts");
        }
        json_object_put(o);
        ok(kpa_instance_spec_set_cwd(spec, NULL, &err) == 0 && !kpa_instance_spec_get_cwd(spec),
           "set_cwd NULL: back to /");
}

static void test_start_refusals(const char *store)
{
        _cleanup_(kpa_instance_spec_freep) kpa_instance_spec *spec = plan(store);
        /* a connected controller, without a daemon: the refusal comes first */
        kpa_control remote = {.ops = &client_remote_ops};
        kpa_token t;
        kpa_error call_err;
        ok(kpa_process_start_spec(&remote, spec, &t, &call_err) == -EOPNOTSUPP &&
                   strstr(call_err.message, "local controller"),
           "kpa_process_start_spec on a connected controller: -EOPNOTSUPP, saying why");
        kpa_control *ctl = NULL;
        kpa_error err;
        if (!ok(kpa_control_open_local(store, &ctl, &err) == 0, "a local controller"))
                return;
        ok(kpa_process_start_spec(ctl, NULL, &t, NULL) == -EINVAL, "no plan: -EINVAL");
        free(spec->instance_id); /* as a start leaves it */
        spec->instance_id = kpa_xstrdup("0123");
        ok(kpa_process_start_spec(ctl, spec, &t, &call_err) == -EALREADY &&
                   strstr(call_err.message, "was started already"),
           "a plan started already: -EALREADY, saying so");
        kpa_control_close(ctl);
}

static void test_oci(void)
{
        kpa_error err;
        kpa_instance_spec *spec = NULL;
        _cleanup_free_ char *bundle = path_of("bundle");
        _cleanup_free_ char *rootfs = path_of("bundle/rootfs");
        _cleanup_free_ char *bin = path_of("bundle/rootfs/bin");
        _cleanup_free_ char *sh = path_of("bundle/rootfs/bin/sh");
        _cleanup_free_ char *config = path_of("bundle/config.json");
        (void)mkdir(bundle, 0755);
        (void)mkdir(rootfs, 0755);
        (void)mkdir(bin, 0755);
        write_file(sh, "#!/bin/sh\n");
        chmod(sh, 0755);
        write_file(config,
                   "{\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\"},"
                   " \"process\": {\"args\": [\"sh\", \"-c\", \"true\"], \"cwd\": \"/\"},"
                   " \"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"},"
                   "  {\"type\": \"uts\"}, {\"type\": \"mount\"}, {\"type\": \"network\"}],"
                   "  \"devices\": [{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10,"
                   "   \"minor\": 229, \"fileMode\": 432}],"
                   "  \"resources\": {\"pids\": {\"limit\": 12}}}}");
        if (!ok(kpa_instance_spec_new_oci(bundle, "c1", &spec, &err) == 0,
                "a plan of an OCI bundle"))
                printf("# %s\n", err.message);
        if (spec) {
                json_object *o = parse(spec);
                is_str(at(o, "appId"), "\"oci\"", "... appId oci");
                is_str(at(o, "argv"), "[\"sh\",\"-c\",\"true\"]", "... its process.args");
                _cleanup_free_ char *want = kpa_xasprintf("\"%s\"", rootfs);
                is_str(at(o, "rootfs.path"), want, "... rootfs: the bundle's");
                is_str(at(o, "limits.pids"), "12", "... linux.resources.pids");
                is_str(at(o, "hostname"), "\"c1\"", "... hostname: the container id");
                is_str(at(o, "mounts.0.kind"), "\"device\"", "... linux.devices: a device entry");
                is_str(at(o, "mounts.0.device"),
                       "{\"type\":\"c\",\"major\":10,\"minor\":229,\"mode\":432,\"uid\":0,\"gid\":"
                       "0}",
                       "... its type, numbers, mode and owner");
                json_object_put(o);
                kpa_instance_spec_free(spec);
        }
        write_file(config, "{\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\"},"
                           " \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"rlimits\":"
                           " [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}]},"
                           " \"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"},"
                           "  {\"type\": \"uts\"}, {\"type\": \"mount\"}]}}");
        spec = NULL;
        ok(kpa_instance_spec_new_oci(bundle, "c1", &spec, &err) == -EOPNOTSUPP && !spec &&
                   strstr(err.message, "process.rlimits: done by the runtime"),
           "an OCI config with process.rlimits: refused, naming the key");
        write_file(config, "{\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rootfs\"},"
                           " \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"x-extra\": 1},"
                           " \"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"ipc\"},"
                           "  {\"type\": \"uts\"}, {\"type\": \"mount\"}]}}");
        spec = NULL;
        ok(kpa_instance_spec_new_oci(bundle, "c1", &spec, &err) == -EOPNOTSUPP && !spec &&
                   strstr(err.message, "process.x-extra: not in the runtime specification"),
           "an OCI config with a key the specification lacks: refused (kpa-oci warns), naming it");
        ok(kpa_instance_spec_new_oci(bundle, ".bad", &spec, &err) == -EINVAL &&
                   strstr(err.message, "\".bad\""),
           "a bad container id: -EINVAL, naming it");
        _cleanup_free_ char *none = path_of("no-bundle");
        ok(kpa_instance_spec_new_oci(none, "c1", &spec, &err) == -ENOENT &&
                   strstr(err.message, "no-bundle/config.json"),
           "a bundle without config.json: -ENOENT, naming the file");
}

int main(void)
{
        if (!mkdtemp(tmp)) {
                printf("1..0 # SKIP mkdtemp: %s\n", strerror(errno));
                return 0;
        }
        unsetenv("KPA_TRACE_START");
        kpa_error err;
        _cleanup_free_ char *store = path_of("store");
        if (ok(install(&err), "install " APP)) {
                int fds = count_fds();
                test_package_json(store);
                test_package_errors(store);
                test_setters(store);
                test_start_refusals(store);
                test_oci();
                is(count_fds(), fds, "no fd left open");
        } else {
                printf("# %s\n", err.message);
        }
        kpa_rm_rf_at(AT_FDCWD, tmp);
        return tap_done();
}
