/* Unit tests for spec.c, the instance planner: kpa_instance_spec_build()
 * over packages built with kpa_pack() and installed into a temporary store,
 * checked field by field: argv, the clean environment and its order,
 * exec_path, the hostname, the mount plan, network none or host (request,
 * grant and the start's wish), uid and gid, limits, handles, the seccomp
 * relaxations, cgroup parent, stdio, a run configuration that is not
 * primary, and the error paths (with no fd left behind). Works as root (the
 * package's own uid, fds for the mounts) and rootless (a user namespace,
 * uid 0 inside); the parts that need root are skipped otherwise. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "kpa/package.h"
#include "kpa/process.h"
#include "spec.h"
#include "tap.h"
#include "test-files.h"
#include "util.h"

#define APP "org.example.spec"
#define PLAIN "org.example.plain"
/* 72 characters: more than a hostname holds (64) */
#define LONG "org.example.longxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
#define BASE_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define MISSING_RO "/kpa-test-spec-no-such-path"

/* clang-format off */
#define HEAD(ID)                                                                            \
        "{'version': '2.0',"                                                                \
        " 'application': {'id': '" ID "', 'name': 'S', 'version': '1.0', 'buildNumber': '1',"\
        "   'systemApplication': false},"                                                   \
        " 'platform': {'id': 'linux', 'sdk': {'buildSdkName': 's', 'buildSdkVersion': '1',"  \
        "   'targetApiLevel': 1}, 'hwSpecification': {'arch': '@ARCH@', 'cpu': ''}},"

/* what the last failed call of kpa/process.h said */
static kpa_error call_err;

static const char FULL[] = HEAD(APP)
        " 'components': ["
        "   {'name': 'app', 'componentType': 'bin', 'digest': ''},"
        "   {'name': 'tool', 'componentType': 'bin', 'digest': ''}],"
        " 'runConfigurations': ["
        "   {'id': 'main', 'name': 'Main', 'type': 'service', 'path': 'bin/app', 'primary': true,"
        "    'eiid': 'spec.Main', 'args': ['--port', '80', ''],"
        "    'envVariables': [{'name': 'MODE', 'value': 'prod'}, {'name': 'EMPTY', 'value': ''},"
        "                     {'name': 'HOME', 'value': '/data'}]},"
        "   {'id': 'aux', 'name': 'Aux', 'type': 'gui', 'path': 'bin/tool', 'primary': false,"
        "    'args': ['x'], 'envVariables': [{'name': 'AUX', 'value': '1'}]}],"
        " 'extensions': {"
        "   'KPA_limits': {'memory': '64M', 'pids': 32, 'cpuWeight': 500},"
        "   'KPA_sandbox': {'network': 'host',"
        "     'readOnlyPaths': ['/usr/share', '/usr/lib', '" MISSING_RO "'],"
        "     'allowPtrace': true, 'allowBpf': true, 'allowKeyring': true}}}";

static const char LONG_MANIFEST[] = HEAD(LONG)
        " 'components': [{'name': 'app', 'componentType': 'bin', 'digest': ''}],"
        " 'runConfigurations': ["
        "   {'id': 'run', 'name': 'Run', 'type': 'service', 'path': 'bin/app', 'primary': true}]}";

static const char PLAIN_MANIFEST[] = HEAD(PLAIN)
        " 'components': [{'name': 'app', 'componentType': 'bin', 'digest': ''}],"
        " 'runConfigurations': ["
        "   {'id': 'run', 'name': 'Run', 'type': 'service', 'path': 'bin/app', 'primary': true}]}";
/* clang-format on */

static char tmp[] = "/tmp/kpa-test-spec-XXXXXX";
static bool root;

static char *path_of(const char *rel)
{
        return kpa_xasprintf("%s/%s", tmp, rel);
}

/* TEXT (with ' for ", and @ARCH@ for the architecture) as JSON; a new string. */
static char *manifest_text(const char *text)
{
        const char *at = strstr(text, "@ARCH@");
        if (!at)
                abort();
        char *r = kpa_xasprintf("%.*s%s%s", (int)(at - text), text, host_arch(), at + 6);
        for (char *p = r; *p; p++)
                if (*p == '\'')
                        *p = '"';
        return r;
}

static size_t strv_len(char *const *v)
{
        size_t n = 0;
        while (v && v[n])
                n++;
        return n;
}

/* Pack the manifest TEXT with bin/app (and bin/tool if it lists it) into TMP/NAME. */
static char *make_package(const char *name, const char *manifest_fmt)
{
        _cleanup_free_ char *src = path_of("src");
        _cleanup_free_ char *manifest = path_of("manifest.json");
        _cleanup_free_ char *app = path_of("src/app");
        _cleanup_free_ char *tool = path_of("src/tool");
        _cleanup_free_ char *text = manifest_text(manifest_fmt);
        (void)mkdir(src, 0755);
        write_file(manifest, text);
        write_file(app, "#!/bin/sh\n");
        chmod(app, 0755);
        if (strstr(manifest_fmt, "'tool'")) {
                write_file(tool, "#!/bin/sh\n");
                chmod(tool, 0755);
        } else {
                unlink(tool);
        }
        char *out = path_of(name);
        kpa_error err;
        if (pack_one(manifest, src, out, &err) < 0) {
                printf("# kpa_pack: %s\n", err.message);
                abort();
        }
        return out;
}

static int count_fds(void)
{
        _cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
        int n = 0;
        for (struct dirent *de; d && (de = readdir(d));)
                n += de->d_name[0] != '.';
        return n;
}

static int env_index(const kpa_instance_spec *s, const char *assignment)
{
        for (int i = 0; s->envp[i]; i++)
                if (streq(s->envp[i], assignment))
                        return i;
        return -1;
}

static bool env_has_name(const kpa_instance_spec *s, const char *name)
{
        size_t len = strlen(name);
        for (int i = 0; s->envp[i]; i++)
                if (strncmp(s->envp[i], name, len) == 0 && s->envp[i][len] == '=')
                        return true;
        return false;
}

static const kpa_mount_op *find_mount(const kpa_instance_spec *s, const char *target)
{
        for (size_t i = 0; i < s->n_mounts; i++)
                if (streq(s->mounts[i].target, target))
                        return &s->mounts[i];
        return NULL;
}

static size_t count_mounts(const kpa_instance_spec *s, const char *target)
{
        size_t n = 0;
        for (size_t i = 0; i < s->n_mounts; i++)
                n += streq(s->mounts[i].target, target);
        return n;
}

/* Build the spec of run configuration RC_ID (NULL: the primary one) of the
 * installed APP_ID; 0 or the negative errno, ERR filled. */
static int build(kpa_store *s, const char *app_id, const char *rc_id, const kpa_start_options *opts,
                 kpa_instance_spec **out, kpa_error *err)
{
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_error_clear(err);
        int q = kpa_store_load_manifest(s, app_id, &m, err);
        if (q < 0)
                return q;
        const kpa_run_config *rc =
                rc_id ? kpa_manifest_find_run_config(m, rc_id) : kpa_manifest_primary_run_config(m);
        if (!rc)
                return kpa_error_set(err, ENOENT, "no run configuration");
        *out = NULL;
        return kpa_instance_spec_build(s, m, rc, opts, "inst-1", out, err);
}

/* A build expected to fail: what it built, if it did not, is freed. */
static int build_err(kpa_store *s, const char *app_id, const char *rc_id,
                     const kpa_start_options *opts, kpa_error *err)
{
        kpa_instance_spec *spec = NULL;
        int q = build(s, app_id, rc_id, opts, &spec, err);
        if (q == 0)
                kpa_instance_spec_free(spec);
        return q;
}

static void test_primary(kpa_store *s)
{
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        const char *args[] = {"--extra", "two words"};
        const char *env[] = {"MODE=dev", "NEW=1", "X=a=b", "EMPTY=now"};
        opts.extra_args = args;
        opts.n_extra_args = ELEMENTSOF(args);
        opts.extra_env = env;
        opts.n_extra_env = ELEMENTSOF(env);
        opts.stdin_fd = 0;
        opts.stdout_fd = 1;
        opts.stderr_fd = -1;
        setenv("TERM", "xterm-test", 1);
        setenv("LANG", "de_DE.UTF-8", 1);
        setenv("KPA_TEST_SPEC_LEAK", "1", 1);
        kpa_instance_spec *spec = NULL;
        kpa_error err;
        int q = build(s, APP, NULL, &opts, &spec, &err);
        if (!ok(q == 0, "build the primary run configuration")) {
                printf("# %s\n", err.message);
                return;
        }
        is_str(spec->app_id, APP, "app_id");
        is_str(spec->instance_id, "inst-1", "instance_id");
        is_str(spec->hostname, APP, "hostname: the application id");
        is_str(spec->exec_path, "/" APP "/bin/app", "exec_path: the package's bin/app at /APP_ID");

        /* argv: the eiid as argv[0], the manifest's args (an empty one kept), then the extra */
        static const char *const want_argv[] = {"spec.Main", "--port",  "80",
                                                "",          "--extra", "two words"};
        size_t n = strv_len(spec->argv);
        is(n, ELEMENTSOF(want_argv), "argv: %zu items", ELEMENTSOF(want_argv));
        for (size_t i = 0; i < n && i < ELEMENTSOF(want_argv); i++)
                is_str(spec->argv[i], want_argv[i], "argv[%zu]", i);

        /* the environment: the clean base, the manifest's, then the extra
         * ones; a later value replaces an earlier in its place */
        static const char *const want_env[] = {
                BASE_PATH,  "HOME=/data", "TERM=xterm-test", "LANG=de_DE.UTF-8",
                "MODE=dev", "EMPTY=now",  "NEW=1",           "X=a=b"};
        n = strv_len(spec->envp);
        is(n, ELEMENTSOF(want_env), "envp: %zu entries", ELEMENTSOF(want_env));
        for (size_t i = 0; i < n && i < ELEMENTSOF(want_env); i++)
                is_str(spec->envp[i], want_env[i], "envp[%zu]", i);
        ok(!env_has_name(spec, "KPA_TEST_SPEC_LEAK"), "the caller's other variables do not leak");
        ok(!env_has_name(spec, "LISTEN_FDS"), "no LISTEN_FDS without handles");

        /* the mount plan */
        const kpa_mount_op *mo = find_mount(spec, "/usr");
        ok(mo && mo->kind == KPA_MOUNT_BIND_RO && streq(mo->source, "/usr") && !mo->optional,
           "/usr bound read-only");
        ok(spec->mounts[0].kind == KPA_MOUNT_BIND_RO && streq(spec->mounts[0].target, "/usr"),
           "... first");
        static const char *const merged[] = {"/bin", "/sbin", "/lib"};
        for (size_t i = 0; i < ELEMENTSOF(merged); i++) {
                char target[PATH_MAX];
                ssize_t len = readlink(merged[i], target, sizeof(target) - 1);
                mo = find_mount(spec, merged[i]);
                if (len > 0) {
                        target[len] = '\0';
                        ok(mo && mo->kind == KPA_MOUNT_SYMLINK && streq(mo->source, target),
                           "%s: a link to %s as on the host", merged[i], target);
                } else {
                        ok(mo && mo->kind == KPA_MOUNT_BIND_RO && mo->optional,
                           "%s: a directory on the host, bound read-only", merged[i]);
                }
        }
        static const char *const etc[] = {"/etc/ld.so.cache",   "/etc/passwd", "/etc/group",
                                          "/etc/nsswitch.conf", "/etc/hosts",  "/etc/resolv.conf",
                                          "/etc/host.conf"};
        size_t copies = 0;
        for (size_t i = 0; i < ELEMENTSOF(etc); i++) {
                mo = find_mount(spec, etc[i]);
                copies += mo && mo->kind == KPA_MOUNT_COPY && streq(mo->source, etc[i]) &&
                          mo->optional && mo->source_fd < 0;
        }
        is(copies, ELEMENTSOF(etc), "/etc: optional copies of the %zu small files",
           ELEMENTSOF(etc));
        mo = find_mount(spec, "/etc/localtime");
        ok(mo && (mo->kind == KPA_MOUNT_SYMLINK || mo->kind == KPA_MOUNT_COPY),
           "/etc/localtime: a link or a copy");
        mo = find_mount(spec, "/etc/ssl");
        ok(mo && mo->kind == KPA_MOUNT_BIND_RO && mo->optional, "/etc/ssl bound, optional");
        mo = find_mount(spec, "/etc/alternatives");
        ok(mo && mo->kind == KPA_MOUNT_BIND_RO && mo->optional,
           "/etc/alternatives bound, optional");
        ok(!find_mount(spec, "/etc/shadow") && !find_mount(spec, "/etc"),
           "nothing else of /etc (not /etc/shadow, not /etc itself)");

        _cleanup_free_ char *app_dir = path_of("store/apps/" APP);
        _cleanup_free_ char *storage_dir = path_of("store/storage/" APP);
        mo = find_mount(spec, "/" APP);
        ok(mo && mo->kind == KPA_MOUNT_BIND_RO && !mo->optional,
           "the package at /APP_ID, read-only");
        ok(mo && streq(mo->source, app_dir), "... from STORE/apps/APP_ID");
        struct stat a, b;
        ok(mo && mo->source_fd >= 0 && fstat(mo->source_fd, &a) == 0 && stat(app_dir, &b) == 0 &&
                   a.st_ino == b.st_ino && a.st_dev == b.st_dev,
           "... and an fd of that directory");
        mo = find_mount(spec, "/storage");
        ok(mo && mo->kind == KPA_MOUNT_BIND_RW && !mo->optional && !mo->detached,
           "/storage read-write (a directory: not detached)");
        ok(mo && streq(mo->source, storage_dir), "... from STORE/storage/APP_ID");
        ok(mo && mo->source_fd >= 0 && fstat(mo->source_fd, &a) == 0 &&
                   stat(storage_dir, &b) == 0 && a.st_ino == b.st_ino,
           "... and an fd of that directory");
        ok(!find_mount(spec, "/usr/share") && !find_mount(spec, "/usr/lib"),
           "no readOnlyPaths without a grant");

        /* the network: requested, not granted */
        ok(spec->new_net, "network host requested but not granted: a new network namespace");

        /* ids */
        ok(spec->userns == !root, "a user namespace exactly when not root");
        if (root) {
                uid_t uid;
                gid_t gid;
                ok(kpa_store_get_app_uid(s, APP, &uid, &gid, &err) == 0 && spec->uid == uid &&
                           spec->gid == gid,
                   "as root: the package's own uid and gid (%u:%u)", (unsigned)spec->uid,
                   (unsigned)spec->gid);
                ok(spec->uid >= KPA_UID_RANGE_FIRST && spec->uid <= KPA_UID_RANGE_LAST,
                   "... in kpa's range");
        } else {
                ok(spec->uid == 0 && spec->gid == 0, "rootless: uid and gid 0 (the caller's own)");
        }

        /* limits from KPA_limits */
        is(spec->limits.memory_bytes, 64ull << 20, "memory from KPA_limits");
        is(spec->limits.pids, 32, "pids from KPA_limits");
        is(spec->limits.cpu_weight, 500, "cpuWeight from KPA_limits");

        /* nothing relaxed without grants */
        ok(!spec->seccomp.allow_ptrace && !spec->seccomp.allow_bpf &&
                   !spec->seccomp.allow_keyring && !spec->seccomp.allow_perf_events &&
                   !spec->seccomp.allow_userfaultfd && !spec->seccomp.allow_personality,
           "no seccomp relaxation without a grant");

        ok(spec->stdio[0] == 0 && spec->stdio[1] == 1 && spec->stdio[2] == -1,
           "stdio: the fds given, -1 kept");
        ok(spec->cgroup_parent == NULL, "no cgroup parent: NULL");
        ok(spec->n_handles == 0, "no handles");
        ok(!spec->detached && spec->exit_record_fd == -1 && spec->init_keep_fd == -1,
           "not detached, no exit record or kept fd (the caller's to set)");
        kpa_instance_spec_free(spec);

        /* TERM unset: none; LANG unset or empty: C.UTF-8 */
        unsetenv("TERM");
        setenv("LANG", "", 1);
        kpa_start_options_init(&opts);
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                ok(!env_has_name(spec, "TERM"), "no TERM when the caller has none");
                ok(env_index(spec, "LANG=C.UTF-8") == 2, "LANG=C.UTF-8 when the caller's is empty");
                ok(env_index(spec, "MODE=prod") == 3 && env_index(spec, "HOME=/data") == 1,
                   "the manifest's values without extra ones");
                is(strv_len(spec->argv), 4, "argv without extra args: eiid and the 3 args");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build without TERM: %s", err.message);
        }
        unsetenv("LANG");
        unsetenv("KPA_TEST_SPEC_LEAK");
}

static void test_not_primary(kpa_store *s)
{
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        kpa_instance_spec *spec = NULL;
        kpa_error err;
        if (!ok(build(s, APP, "aux", &opts, &spec, &err) == 0,
                "build the run configuration \"aux\" (not primary)")) {
                printf("# %s\n", err.message);
                return;
        }
        is_str(spec->exec_path, "/" APP "/bin/tool", "its exec_path: bin/tool");
        is_str(spec->argv[0], "/" APP "/bin/tool", "no eiid: argv[0] is the exec path");
        ok(strv_len(spec->argv) == 2 && streq(spec->argv[1], "x"), "... then its own args");
        ok(env_index(spec, "AUX=1") >= 0 && !env_has_name(spec, "MODE") &&
                   env_index(spec, "HOME=/storage") == 1,
           "its own environment, not the primary's (HOME=/storage)");
        is(spec->limits.pids, 32, "the package's KPA_limits apply to it too");
        kpa_instance_spec_free(spec);

        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        ok(kpa_store_load_manifest(s, APP, &m, &err) == 0 &&
                   kpa_manifest_find_run_config(m, "nope") == NULL,
           "an unknown run configuration is not found");
        /* the caller (process.c) turns that into an error listing them */
        _cleanup_(kpa_control_closep) kpa_control *ctl = NULL;
        _cleanup_free_ char *store_root = path_of("store");
        if (kpa_control_open_local(store_root, &ctl, &err) == 0) {
                kpa_token tok;
                is(kpa_process_start(ctl, APP, "nope", NULL, &tok, &call_err), -ENOENT,
                   "starting an unknown run configuration: ENOENT");
                has_str(call_err.message,
                        "has no run configuration \"nope\" (it has: main, aux)",
                        "... naming it and the ones there are");
        } else {
                ok(false, "kpa_control_open_local: %s", err.message);
        }
}

static void test_plain(kpa_store *s)
{
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        kpa_instance_spec *spec = NULL;
        kpa_error err;
        int q = build(s, PLAIN, NULL, &opts, &spec, &err);
        if (!ok(q == 0, "build a package without extensions")) {
                printf("# %s\n", err.message);
                return;
        }
        ok(strv_len(spec->argv) == 1 && streq(spec->argv[0], "/" PLAIN "/bin/app"),
           "argv: the exec path alone");
        ok(spec->limits.memory_bytes == 0 && spec->limits.pids == 0 && spec->limits.cpu_weight == 0,
           "no limits");
        ok(spec->new_net, "network: none");
        kpa_instance_spec_free(spec);

        opts.pids = 7;
        opts.network = KPA_START_NETWORK_NONE;
        if (build(s, PLAIN, NULL, &opts, &spec, &err) == 0) {
                ok(spec->limits.pids == 7 && spec->limits.memory_bytes == 0,
                   "a start's pids limit alone");
                ok(spec->new_net, "--network none: a new network namespace");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with pids: %s", err.message);
        }

        /* --network host: a start's wish, which needs the grant even when
         * the manifest does not request it; the grant can be given anyway
         * (install.c's grant_items: "a switch it does not request") */
        kpa_start_options_init(&opts);
        opts.network = KPA_START_NETWORK_HOST;
        int fds = count_fds();
        q = build(s, PLAIN, NULL, &opts, &spec, &err);
        is(q, -EPERM, "--network host, not requested, not granted: EPERM");
        has_str(err.message, PLAIN ": the network permission is not granted", "... saying so");
        has_str(err.message, "kpa-install --grant network " PLAIN, "... and how to grant it");
        if (q == 0)
                kpa_instance_spec_free(spec);
        is(count_fds(), fds, "... no fd left behind");
        char **changed = NULL;
        is(kpa_store_set_grants(s, PLAIN, "network,allowPtrace", false, &changed, &err), 0,
           "grant network and allowPtrace to a package that requests neither");
        ok(strv_len(changed) == 2, "... both recorded");
        kpa_strv_free(changed);
        if (build(s, PLAIN, NULL, &opts, &spec, &err) == 0) {
                ok(!spec->new_net, "--network host, granted: the host's network");
                ok(!spec->seccomp.allow_ptrace,
                   "allowPtrace granted but not requested: not relaxed");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with --network host granted: %s", err.message);
        }
        kpa_start_options_init(&opts);
        if (build(s, PLAIN, NULL, &opts, &spec, &err) == 0) {
                ok(spec->new_net, "granted but not requested, the start asks nothing: none");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build: %s", err.message);
        }
}

static void test_long_id(kpa_store *s)
{
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        kpa_instance_spec *spec = NULL;
        kpa_error err;
        if (!ok(build(s, LONG, NULL, &opts, &spec, &err) == 0,
                "build a package whose id has 72 characters")) {
                printf("# %s\n", err.message);
                return;
        }
        ok(strlen(spec->hostname) == 64 && strncmp(spec->hostname, LONG, 64) == 0,
           "its hostname: the first 64 characters of the id");
        is_str(spec->app_id, LONG, "its app_id: the whole id");
        is_str(spec->exec_path, "/" LONG "/bin/app", "its exec_path: below the whole id");
        ok(find_mount(spec, "/" LONG) != NULL, "the package at /APP_ID, the whole id");
        kpa_instance_spec_free(spec);
}

static void test_options(kpa_store *s)
{
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.memory_bytes = 128ull << 20;
        opts.cpu_weight = 50;
        opts.cgroup_parent = "/kpa-test/parent";
        opts.stop_timeout_ms = 1234;
        kpa_instance_spec *spec = NULL;
        kpa_error err;
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                is(spec->limits.memory_bytes, 128ull << 20,
                   "a start's memory wins over KPA_limits");
                is(spec->limits.cpu_weight, 50, "a start's cpu weight wins");
                is(spec->limits.pids, 32, "KPA_limits' pids where the start sets none");
                is_str(spec->cgroup_parent, "/kpa-test/parent", "the cgroup parent, copied");
                ok(spec->cgroup_parent != opts.cgroup_parent, "... not borrowed");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with limits: %s", err.message);
        }
        /* stop_timeout_ms is no field of the spec: process.c keeps it */

        /* out-of-range limits pass through: cgroup.c refuses them when it
         * creates the group ("cpu weight N is not in 1..10000"), and the
         * manifest parser refuses them in KPA_limits */
        opts.cpu_weight = 20000;
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                is(spec->limits.cpu_weight, 20000,
                   "a start's cpu weight of 20000 is passed on as it is");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with cpu weight 20000: %s", err.message);
        }
        static const struct {
                const char *from, *to, *what;
        } bad[] = {
                {"'cpuWeight': 500", "'cpuWeight': 20000", "extensions.KPA_limits.cpuWeight"},
                {"'cpuWeight': 500", "'cpuWeight': 0", "extensions.KPA_limits.cpuWeight"},
                {"'memory': '64M'", "'memory': '64Q'", "extensions.KPA_limits.memory"},
                {"'pids': 32", "'pids': -1", "extensions.KPA_limits.pids"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = manifest_text(FULL);
                _cleanup_free_ char *from = kpa_xstrdup(bad[i].from);
                _cleanup_free_ char *to = kpa_xstrdup(bad[i].to);
                for (char *p = from; *p; p++)
                        *p = *p == '\'' ? '"' : *p;
                for (char *p = to; *p; p++)
                        *p = *p == '\'' ? '"' : *p;
                char *at = strstr(text, from);
                if (!at)
                        abort();
                _cleanup_free_ char *edited =
                        kpa_xasprintf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
                kpa_manifest *m = NULL;
                is(kpa_manifest_parse(edited, strlen(edited), KPA_MANIFEST_ALLOW_MISSING_DIGESTS,
                                      &m, &err),
                   -EINVAL, "bad limits (%s) are refused by the manifest parser", bad[i].to);
                has_str(err.message, bad[i].what, "... naming the setting");
                kpa_manifest_free(m);
        }

        /* bad extra environment entries */
        static const char *const bad_env[] = {"NOEQUALS", "=value"};
        for (size_t i = 0; i < ELEMENTSOF(bad_env); i++) {
                kpa_start_options_init(&opts);
                opts.extra_env = &bad_env[i];
                opts.n_extra_env = 1;
                int fds = count_fds();
                is(build_err(s, APP, NULL, &opts, &err), -EINVAL, "extra env \"%s\" is refused",
                   bad_env[i]);
                has_str(err.message, "is not NAME=VALUE", "... saying why");
                has_str(err.message, bad_env[i], "... naming it");
                is(count_fds(), fds, "... no fd left behind");
        }
}

/* --workdir, --tty and root's binds (kpa-run): passed on, or refused with
 * the reason. */
static void test_cwd_tty_binds(kpa_store *s)
{
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.cwd = "/storage";
        opts.tty = true;
        opts.tty_rows = 30;
        opts.tty_cols = 90;
        kpa_instance_spec *spec = NULL;
        kpa_error err;
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                is_str(spec->cwd, "/storage", "the working directory, copied");
                ok(spec->tty && spec->tty_rows == 30 && spec->tty_cols == 90,
                   "a pseudo-terminal of 30 x 90");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with a cwd and a tty: %s", err.message);
        }
        opts.cwd = "storage";
        is(build_err(s, APP, NULL, &opts, &err), -EINVAL, "a relative working directory is refused");
        has_str(err.message, "is not an absolute path", "... saying why");
        kpa_start_options_init(&opts);
        const kpa_start_bind ro[] = {{tmp, "/mnt/in", false}};
        opts.binds = ro;
        opts.n_binds = 1;
        if (!root) {
                is(build_err(s, APP, NULL, &opts, &err), -EPERM, "binds: root only");
                has_str(err.message, "only root can bind", "... saying so");
                return;
        }
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                const kpa_mount_op *op = &spec->mounts[spec->n_mounts - 1];
                ok(op->kind == KPA_MOUNT_BIND_RO && streq(op->source, tmp) &&
                           streq(op->target, "/mnt/in"),
                   "--bind-ro: a read-only bind, last in the plan");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with a bind: %s", err.message);
        }
        static const struct {
                const char *host, *inside, *why;
        } bad[] = {
                {"relative", "/mnt", "must be absolute"},
                {"/tmp", "mnt", "must be absolute"},
                {"/tmp", "/", "must be absolute"},
                {"/tmp/../etc", "/mnt", "must be absolute"},
                {"/tmp", "/mnt/../usr", "must be absolute"},
                {"/nonexistent-kpa-test", "/mnt", "host path /nonexistent-kpa-test"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const kpa_start_bind b = {bad[i].host, bad[i].inside, true};
                opts.binds = &b;
                int fds = count_fds();
                ok(build_err(s, APP, NULL, &opts, &err) < 0, "--bind %s:%s is refused", b.host,
                   b.inside);
                has_str(err.message, bad[i].why, "... saying why");
                is(count_fds(), fds, "... no fd left behind");
        }
}

static void test_handles(kpa_store *s)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                abort();
        kpa_user_handle h[] = {{"in", p[0]}, {"out", p[1]}};
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.handles = h;
        opts.n_handles = 2;
        const char *env[] = {"LISTEN_FDS=9"};
        opts.extra_env = env;
        opts.n_extra_env = 1;
        kpa_instance_spec *spec = NULL;
        kpa_error err;
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                is(spec->n_handles, 2, "two handles");
                bool dup_ok = true;
                for (size_t i = 0; i < 2; i++) {
                        struct stat a, b;
                        int fd = spec->handle_fds[i];
                        dup_ok &= fd >= 3 && fd != h[i].fd && fstat(fd, &a) == 0 &&
                                  fstat(h[i].fd, &b) == 0 && a.st_ino == b.st_ino &&
                                  (fcntl(fd, F_GETFD) & FD_CLOEXEC);
                }
                ok(dup_ok, "... duplicated (new fds, close-on-exec, the same pipes), in order");
                int n = (int)strv_len(spec->envp);
                ok(n >= 3 && streq(spec->envp[n - 3], "LISTEN_FDS=2") &&
                           streq(spec->envp[n - 2], "LISTEN_FDNAMES=in:out") &&
                           streq(spec->envp[n - 1], "LISTEN_PID=2"),
                   "LISTEN_FDS=2, LISTEN_FDNAMES=in:out, LISTEN_PID=2 last");
                ok(env_index(spec, "LISTEN_FDS=9") < 0, "... over the caller's LISTEN_FDS");
                int fd0 = spec->handle_fds[0];
                kpa_instance_spec_free(spec);
                ok(fcntl(fd0, F_GETFD) < 0 && fcntl(p[0], F_GETFD) >= 0,
                   "freeing the spec closes its copies, not the caller's");
        } else {
                ok(false, "build with handles: %s", err.message);
        }

        opts.extra_env = NULL;
        opts.n_extra_env = 0;
        static const struct {
                const char *name;
                int fd;
                int code;
                const char *msg;
        } bad[] = {
                {"a:b", 0, -EINVAL, "name \"a:b\" is invalid"},
                {"", 0, -EINVAL, "is invalid"},
                {"in", 0, -EINVAL, "name \"in\" is given twice"},
                {"closed", 1000, -EBADF, "handle \"closed\" (fd 1000)"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                kpa_user_handle hh[] = {{"in", p[0]}, {bad[i].name, bad[i].fd}};
                opts.handles = hh;
                opts.n_handles = 2;
                int fds = count_fds();
                is(build_err(s, APP, NULL, &opts, &err), bad[i].code, "a bad handle \"%s\"",
                   bad[i].name);
                has_str(err.message, bad[i].msg, "... named in the error");
                is(count_fds(), fds, "... no fd left behind");
        }
        close(p[0]);
        close(p[1]);
}

static void test_ids(kpa_store *s)
{
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        opts.uid = 1234;
        kpa_instance_spec *spec = NULL;
        kpa_error err;
        if (!root) {
                int fds = count_fds();
                is(build_err(s, APP, NULL, &opts, &err), -EPERM,
                   "rootless: an explicit uid is refused");
                has_str(err.message, "only root can choose the uid or gid", "... saying so");
                is(count_fds(), fds, "... no fd left behind");
                kpa_start_options_init(&opts);
                opts.gid = 1234;
                is(build_err(s, APP, NULL, &opts, &err), -EPERM, "... and an explicit gid");
                printf("ok %d # SKIP not root: an explicit uid and the package's uid record\n",
                       ++tap_n);
                return;
        }
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                ok(spec->uid == 1234 && spec->gid == 1234, "an explicit uid; the gid follows it");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with uid: %s", err.message);
        }
        opts.gid = 99;
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                ok(spec->uid == 1234 && spec->gid == 99, "an explicit uid and gid");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with uid and gid: %s", err.message);
        }
        opts.uid = (uid_t)-1;
        uid_t uid = 0;
        gid_t gid = 0;
        kpa_store_get_app_uid(s, APP, &uid, &gid, &err);
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                ok(spec->uid == uid && spec->gid == 99, "an explicit gid alone: the package's uid");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with gid: %s", err.message);
        }
        /* no uid record: an error, never a fallback to root */
        _cleanup_free_ char *rec = path_of("store/users/" APP);
        _cleanup_free_ char *aside = path_of("users-aside");
        if (rename(rec, aside) < 0)
                abort();
        kpa_start_options_init(&opts);
        int fds = count_fds();
        ok(build_err(s, APP, NULL, &opts, &err) < 0, "no uid record: the build fails");
        has_str(err.message, APP, "... naming the package");
        is(count_fds(), fds, "... no fd left behind");
        opts.uid = 4321;
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                ok(spec->uid == 4321, "an explicit uid needs no record");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with uid, no record: %s", err.message);
        }
        if (rename(aside, rec) < 0)
                abort();
}

static void write_grants(const char *json)
{
        _cleanup_free_ char *dir = path_of("store/grants");
        _cleanup_free_ char *path = path_of("store/grants/" APP);
        (void)mkdir(dir, 0755);
        write_file(path, json);
}

static void test_grants(kpa_store *s)
{
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        kpa_instance_spec *spec = NULL;
        kpa_error err;

        opts.network = KPA_START_NETWORK_HOST;
        int fds = count_fds();
        is(build_err(s, APP, NULL, &opts, &err), -EPERM, "--network host without the grant: EPERM");
        has_str(err.message,
                APP ": the network permission is not granted (an administrator grants it with: "
                    "kpa-install --grant network " APP ")",
                "... with the message and the command");
        is(count_fds(), fds, "... no fd left behind");

        is(kpa_store_set_grants(s, APP, "network,allowPtrace,allowKeyring", false, NULL, &err), 0,
           "grant network, allowPtrace and allowKeyring");
        kpa_start_options_init(&opts);
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                ok(!spec->new_net, "network host requested and granted: the host's network");
                ok(spec->seccomp.allow_ptrace && spec->seccomp.allow_keyring,
                   "allowPtrace and allowKeyring relaxed");
                ok(!spec->seccomp.allow_bpf, "allowBpf requested but not granted: not relaxed");
                ok(!spec->seccomp.allow_perf_events && !spec->seccomp.allow_userfaultfd &&
                           !spec->seccomp.allow_personality,
                   "nothing unrequested relaxed");
                ok(!find_mount(spec, "/usr/share"), "readOnlyPaths not granted: not bound");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with grants: %s", err.message);
        }
        opts.network = KPA_START_NETWORK_NONE;
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                ok(spec->new_net, "granted, but the start asks for none: a new namespace");
                kpa_instance_spec_free(spec);
        }
        opts.network = KPA_START_NETWORK_HOST;
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                ok(!spec->new_net, "granted, and the start asks for host: the host's");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with --network host: %s", err.message);
        }

        /* a grants record that names more than is requested: only what the
         * manifest requests applies */
        write_grants("{\"readOnlyPaths\": [\"/usr/share\", \"/usr/include\"], \"allowPerfEvents\": "
                     "true, \"allowBpf\": true}\n");
        kpa_start_options_init(&opts);
        if (build(s, APP, NULL, &opts, &spec, &err) == 0) {
                const kpa_mount_op *mo = find_mount(spec, "/usr/share");
                ok(mo && mo->kind == KPA_MOUNT_BIND_RO && streq(mo->source, "/usr/share") &&
                           !mo->optional,
                   "a granted readOnlyPath is bound read-only");
                ok(mo && (root ? mo->source_fd >= 0 : mo->source_fd < 0),
                   "... by an fd as root, by its path rootless");
                is(count_mounts(spec, "/usr/share"), 1, "... once");
                ok(!find_mount(spec, "/usr/lib"),
                   "a requested readOnlyPath not granted: not bound");
                ok(!find_mount(spec, "/usr/include"), "a granted path not requested: not bound");
                ok(spec->seccomp.allow_bpf && !spec->seccomp.allow_perf_events,
                   "allowBpf (requested) relaxed, allowPerfEvents (not requested) not");
                ok(!spec->seccomp.allow_ptrace, "allowPtrace no longer granted: not relaxed");
                ok(spec->new_net, "network no longer granted: a new namespace");
                kpa_instance_spec_free(spec);
        } else {
                ok(false, "build with a hand-written grant: %s", err.message);
        }

        /* a granted path that is gone now */
        is(kpa_store_set_grants(s, APP, "readOnlyPaths", false, NULL, &err), 0,
           "grant every readOnlyPath");
        fds = count_fds();
        is(build_err(s, APP, NULL, &opts, &err), -ENOENT,
           "a granted readOnlyPath that is missing: ENOENT");
        has_str(err.message, APP ": readOnlyPaths", "... naming the package and the setting");
        has_str(err.message, MISSING_RO, "... and the path");
        is(count_fds(), fds, "... no fd left behind");

        write_grants("{ not json");
        is(build_err(s, APP, NULL, &opts, &err), -EINVAL, "a corrupt grants record is refused");
        has_str(err.message, "grants/" APP, "... naming it");
        _cleanup_free_ char *g = path_of("store/grants/" APP);
        unlink(g);
}

static void test_missing_bin(kpa_store *s)
{
        _cleanup_free_ char *tool = path_of("store/apps/" APP "/bin/tool");
        if (unlink(tool) < 0)
                abort();
        kpa_start_options opts;
        kpa_start_options_init(&opts);
        kpa_instance_spec *spec = NULL;
        kpa_error err;
        int q = build(s, APP, "aux", &opts, &spec, &err);
        ok(q == -ENOENT && strstr(err.message, "its program bin/tool is missing"),
           "a run configuration whose bin file is missing: the build fails naming bin/tool");
        if (q == 0)
                kpa_instance_spec_free(spec);
}

int main(void)
{
        root = geteuid() == 0;
        printf("# running as %s\n", root ? "root" : "non-root (rootless)");
        if (!mkdtemp(tmp)) {
                printf("1..0 # SKIP mkdtemp: %s\n", strerror(errno));
                return 0;
        }
        unsetenv("KPA_TRACE_START");
        _cleanup_free_ char *full = make_package("full.kpa", FULL);
        _cleanup_free_ char *plain = make_package("plain.kpa", PLAIN_MANIFEST);
        _cleanup_free_ char *longp = make_package("long.kpa", LONG_MANIFEST);
        _cleanup_free_ char *store_root = path_of("store");
        kpa_store *s = NULL;
        kpa_error err;
        if (!ok(kpa_store_open(store_root, KPA_STORE_CREATE, &s, &err) == 0, "create a store")) {
                printf("# %s\n", err.message);
                kpa_rm_rf_at(AT_FDCWD, tmp);
                return tap_done();
        }
        /* an install needs every permission requested granted; the
         * grants are revoked below, and the tests grant them one by one */
        _cleanup_free_ char *policy = path_of("policy.d");
        (void)mkdir(policy, 0755);
        kpa_install_options io;
        kpa_install_options_init(&io);
        io.grant = "all";
        io.policy_dir = policy;
        int installed = ok(kpa_store_install(s, full, &io, NULL, &err) == 0, "install " APP);
        if (!installed)
                printf("# %s\n", err.message);
        installed &= ok(kpa_store_install(s, plain, &io, NULL, &err) == 0, "install " PLAIN);
        installed &= ok(kpa_store_install(s, longp, &io, NULL, &err) == 0, "install " LONG);
        installed &= ok(kpa_store_set_grants(s, APP, "all", true, NULL, &err) == 0,
                        "revoke every grant of " APP);
        if (installed) {
                int fds = count_fds();
                test_primary(s);
                test_not_primary(s);
                test_plain(s);
                test_long_id(s);
                test_options(s);
                test_cwd_tty_binds(s);
                test_handles(s);
                test_ids(s);
                test_grants(s);
                test_missing_bin(s);
                is(count_fds(), fds, "no fd left open by any build");
        } else {
                printf("# %s\n", err.message);
        }
        kpa_store_close(s);
        kpa_rm_rf_at(AT_FDCWD, tmp);
        return tap_done();
}
