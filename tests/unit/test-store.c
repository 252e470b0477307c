/* Unit tests for store.c and install.c through the public API: opening a
 * store and its refusals, install, reinstall, upgrade over a damaged
 * install, the clean-up of .staging, lookups of what is not installed,
 * corrupt uid records, verify's findings, remove and purge; and the error
 * paths of util.c's file helpers and of hashing a file (digest.c); versioned
 * structs (an older caller's shorter one, struct_size 0). Packages are
 * built with kpa_pack(). No root needed (tests/integration/install.sh drives the same through
 * kpa-install, and inject.sh the failures of the system calls). */
#include "config.h"

#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "kpa/digest.h"
#include "kpa/package.h"
#include "tap.h"
#include "test-files.h"
#include "util.h"

#define MANIFEST_FMT                                                                        \
        "{\"version\": \"2.0\",\n"                                                          \
        " \"application\": {\"id\": \"org.example.store\", \"name\": \"S\", \"version\": "  \
        "\"%s\", \"buildNumber\": \"1\", \"systemApplication\": false},\n"                  \
        " \"platform\": {\"id\": \"linux\", \"sdk\": {\"buildSdkName\": \"s\", "            \
        "\"buildSdkVersion\": \"1\", \"targetApiLevel\": 1}, \"hwSpecification\": "         \
        "{\"arch\": \"%s\", \"cpu\": \"\"}},\n"                                             \
        " \"components\": [\n"                                                              \
        "  {\"name\": \"z.txt\", \"componentType\": \"res\", \"directoryPath\": \"d\"},\n"  \
        "  {\"name\": \"app\", \"componentType\": \"bin\", \"digest\": \"\"}]}\n"
#define APP "org.example.store"

static char tmp[] = "/tmp/kpa-test-store-XXXXXX";

static char *path_of(const char *rel) { return kpa_xasprintf("%s/%s", tmp, rel); }

/* Pack version VERSION for ARCH into TMP/NAME; the package's path. */
static char *make_package(const char *name, const char *version, const char *arch)
{
        _cleanup_free_ char *src = path_of("src");
        _cleanup_free_ char *manifest = path_of("manifest.json");
        _cleanup_free_ char *app = path_of("src/app");
        _cleanup_free_ char *res = path_of("src/z.txt");
        _cleanup_free_ char *text = kpa_xasprintf(MANIFEST_FMT, version, arch);
        (void)mkdir(src, 0755);
        write_file(manifest, text);
        write_file(app, "#!/bin/sh\n");
        write_file(res, version);
        char *out = path_of(name);
        kpa_error err;
        if (pack_one(manifest, src, out, &err) < 0) {
                printf("# kpa_pack: %s\n", err.message);
                abort();
        }
        return out;
}

static void test_open(void)
{
        kpa_store *s = NULL;
        kpa_error err;
        _cleanup_free_ char *missing = path_of("no/such/store");
        ok(kpa_store_open(missing, 0, &s, &err) == -ENOENT, "a missing store is refused");
        has_str(err.message, "cannot open the store", "... and named");
        ok(kpa_store_open(missing, KPA_STORE_CREATE, &s, &err) == -ENOENT,
           "a store whose parent is missing is not created");
        has_str(err.message, "cannot create the store", "... and named");
        _cleanup_free_ char *file = path_of("file");
        write_file(file, "x");
        ok(kpa_store_open(file, 0, &s, &err) == -ENOTDIR, "a file is not a store");
        _cleanup_free_ char *bad = path_of("bad");
        _cleanup_free_ char *apps = path_of("bad/apps");
        (void)mkdir(bad, 0755);
        write_file(apps, "x");
        /* (as root, the check that nobody but root can change the store
         * finds it first) */
        int r = kpa_store_open(bad, KPA_STORE_CREATE, &s, &err);
        ok(r == (geteuid() == 0 ? -EPERM : -ENOTDIR), "a store whose apps/ is a file is refused");
        has_str(err.message, geteuid() == 0 ? "apps/ is not a directory" : "cannot create apps/",
                "... naming apps/");

        is_str(kpa_store_default_root("/r"), "/r", "an explicit root wins");
        setenv("KPA_ROOT", "/from-env", 1);
        is_str(kpa_store_default_root(NULL), "/from-env", "then KPA_ROOT");
        unsetenv("KPA_ROOT");
        ok(strstr(kpa_store_default_root(""), "/lib/kpa") != NULL, "then the default");
}

static void progress(uint64_t done, uint64_t total, void *userdata) { ++*(int *)userdata; }

static void test_install(kpa_store *s, const char *v1, const char *v2, const char *other_arch)
{
        kpa_error err;
        kpa_install_result res;
        kpa_install_result_init(&res);
        _cleanup_free_ char *junk = path_of("store/.staging/install-junk");
        _cleanup_free_ char *junk_file = path_of("store/.staging/install-junk/f");
        (void)mkdir(junk, 0755);
        write_file(junk_file, "left by a crash");

        kpa_install_options opts;
        kpa_install_options_init(&opts);
        int calls = 0;
        opts.progress = progress;
        opts.userdata = &calls;
        is(kpa_store_install(s, v1, &opts, &res, &err), 0, "install 1.0");
        is(res.action, KPA_INSTALL_ACTION_NEW, "... as a new package");
        ok(calls > 0, "... reporting progress");
        struct stat st;
        ok(stat(junk, &st) < 0 && errno == ENOENT, "what a crashed writer left in .staging is gone");

        is(kpa_store_install(s, v1, NULL, NULL, &err), -EEXIST, "the same version again is refused");
        has_str(err.message, "--reinstall", "... pointing at --reinstall");
        opts.flags = KPA_INSTALL_REINSTALL;
        is(kpa_store_install(s, v1, &opts, &res, &err), 0, "reinstall");
        is(res.action, KPA_INSTALL_ACTION_REINSTALL, "... says so");

        _cleanup_free_ char *missing = path_of("none.kpa");
        is(kpa_store_install(s, missing, NULL, NULL, &err), -ENOENT, "a missing package file");
        has_str(err.message, "none.kpa", "... is named");

        is(kpa_store_install(s, other_arch, NULL, NULL, &err), -ENOEXEC,
           "a package for another architecture is refused");
        has_str(err.message, "--force-arch", "... pointing at --force-arch");

        /* a damaged install is replaced as an upgrade */
        _cleanup_free_ char *m = path_of("store/apps/" APP "/manifest.json");
        write_file(m, "{ not json");
        kpa_manifest *bad = NULL;
        ok(kpa_store_load_manifest(s, APP, &bad, &err) < 0, "a damaged manifest does not load");
        has_str(err.message, "installed manifest", "... and says which");
        is(kpa_store_install(s, v2, NULL, &res, &err), 0, "install 2.0 over the damaged 1.0");
        is(res.action, KPA_INSTALL_ACTION_UPGRADE, "... as an upgrade");
        is_str(res.old_version, "", "... of an unknown version");
}

/* Versioned structs (issue 16): a caller built against older headers
 * passes a shorter struct; the library takes the defaults for what it
 * does not cover and writes nothing past it. 0 or a struct_size larger
 * than the library knows is refused, naming the struct. */
static void test_versioned(kpa_store *s, const char *v2)
{
        kpa_error err;
        kpa_install_options opts;
        kpa_install_options_init(&opts);
        kpa_package_limits limits;
        kpa_package_limits_init(&limits);
        opts.flags = KPA_INSTALL_REINSTALL;
        opts.limits = &limits;
        limits.max_members = 1; /* would refuse the package */
        is(kpa_store_install(s, v2, &opts, NULL, &err), -EFBIG,
           "a whole kpa_install_options is read, limits included");
        opts.struct_size = offsetof(kpa_install_options, limits);
        is(kpa_store_install(s, v2, &opts, NULL, &err), 0,
           "an older, shorter kpa_install_options gets the default limits");

        union {
                kpa_install_result r;
                unsigned char bytes[sizeof(kpa_install_result)];
        } old;
        memset(&old, 0xaa, sizeof(old));
        old.r.struct_size = offsetof(kpa_install_result, action);
        opts.struct_size = sizeof(opts);
        limits.max_members = 100000;
        is(kpa_store_install(s, v2, &opts, &old.r, &err), 0, "install into an older result");
        is_str(old.r.app_id, APP, "... which gets the fields it has");
        bool untouched = true;
        for (size_t i = offsetof(kpa_install_result, action); i < sizeof(old); i++)
                untouched = untouched && old.bytes[i] == 0xaa;
        ok(untouched, "... and nothing written past its struct_size");
        is(old.r.struct_size, offsetof(kpa_install_result, action), "... whose struct_size stays");

        opts.struct_size = 0;
        is(kpa_store_install(s, v2, &opts, NULL, &err), -EINVAL, "struct_size 0 is refused");
        has_str(err.message, "kpa_install_options.struct_size is 0", "... naming the struct");
        opts.struct_size = sizeof(opts) + 8;
        is(kpa_store_install(s, v2, &opts, NULL, &err), -EINVAL,
           "a struct_size larger than the library knows is refused");
        has_str(err.message, "kpa_install_options.struct_size", "... naming the struct");
        kpa_install_options_init(&opts);
        opts.limits = &limits;
        limits.struct_size = 0;
        is(kpa_store_install(s, v2, &opts, NULL, &err), -EINVAL, "so is its limits' 0");
        has_str(err.message, "kpa_package_limits.struct_size is 0",
                "... naming kpa_package_limits");
        kpa_install_result res = {0};
        is(kpa_store_install(s, v2, NULL, &res, &err), -EINVAL, "a result never initialized");
        has_str(err.message, "kpa_install_result_init()", "... saying what to call");
        kpa_verify_report report = {0};
        is(kpa_store_verify(s, APP, &report, &err), -EINVAL, "a verify report never initialized");
        has_str(err.message, "kpa_verify_report", "... naming the struct");
}

static void test_lookups(kpa_store *s)
{
        kpa_error err;
        kpa_manifest *m = NULL;
        is(kpa_store_load_manifest(s, "../x", &m, &err), -EINVAL, "\"../x\" is no application id");
        is(kpa_store_load_manifest(s, "", &m, &err), -EINVAL, "nor is \"\"");
        is(kpa_store_load_manifest(s, "org.example.none", &m, &err), -ENOENT,
           "an application that is not installed");
        has_str(err.message, "org.example.none is not installed", "... is named");
        is(kpa_store_open_app_dir(s, "org.example.none", &err), -ENOENT, "no package directory");
        is(kpa_store_open_storage_dir(s, "org.example.none", &err), -ENOENT,
           "no storage directory");
        is(kpa_store_open_storage_dir(s, "a/b", &err), -EINVAL, "a '/' in an id is refused");
        int fd = kpa_store_open_storage_dir(s, APP, &err);
        ok(fd >= 0, "the installed package has its storage");
        closep(&fd);

        uid_t uid;
        gid_t gid;
        is(kpa_store_get_app_uid(s, APP, &uid, &gid, &err), 0, "its uid is recorded");
        ok(uid >= KPA_UID_RANGE_FIRST && uid <= KPA_UID_RANGE_LAST && gid == uid,
           "... in the range, gid = uid");
        is(kpa_store_get_app_uid(s, "org.example.none", &uid, NULL, &err), -ENOENT,
           "no uid for what is not installed");
        _cleanup_free_ char *rec = path_of("store/users/org.example.corrupt");
        write_file(rec, "61184x\n");
        is(kpa_store_get_app_uid(s, "org.example.corrupt", &uid, NULL, &err), -EBADMSG,
           "a corrupt uid record is refused");
        write_file(rec, "0\n");
        is(kpa_store_get_app_uid(s, "org.example.corrupt", &uid, NULL, &err), -ERANGE,
           "a uid record outside kpa's range (root's) is refused");
        has_str(err.message, "outside kpa's range", "... and says so");
        unlink(rec);

        char **ids = NULL;
        size_t n = 0;
        is(kpa_store_list(s, &ids, &n, &err), 0, "list");
        ok(n == 1 && streq(ids[0], APP) && ids[1] == NULL, "... the one package");
        kpa_strv_free(ids);

        kpa_package_info *info = NULL;
        is(kpa_store_inspect(s, APP, &info, &err), 0, "inspect");
        ok(info && info->n_components == 2 && info->components[0]->present &&
                   info->uid >= KPA_UID_RANGE_FIRST,
           "... its components and uid");
        ok(info && info->struct_size == sizeof(*info) &&
                   info->components[1]->struct_size == sizeof(kpa_component_info) &&
                   info->components[1]->component == info->manifest->components[1],
           "... versioned results: struct_size set, components by pointer");
        kpa_package_info_free(info);

        /* the sandbox a start gets, into a caller's kpa_sandbox_settings */
        kpa_manifest *lm = NULL;
        is(kpa_store_load_manifest(s, APP, &lm, &err), 0, "load the manifest");
        kpa_sandbox_settings sb = {0};
        bool network = true;
        is(lm ? kpa_store_effective_sandbox(s, lm, &sb, &network, &err) : -1, -EINVAL,
           "an effective sandbox into settings never initialized: -EINVAL");
        has_str(err.message, "kpa_sandbox_settings.struct_size is 0", "... naming the struct");
        kpa_sandbox_settings_init(&sb);
        is(lm ? kpa_store_effective_sandbox(s, lm, &sb, &network, &err) : -1, 0,
           "the effective sandbox");
        ok(sb.struct_size == sizeof(sb) && sb.network == KPA_NETWORK_NONE && !network &&
                   sb.read_only_paths && !sb.read_only_paths[0],
           "... nothing granted: no network, no paths");
        kpa_strv_free(sb.read_only_paths);
        /* an older caller's struct ends before allow_personality */
        union {
                kpa_sandbox_settings sb;
                unsigned char bytes[sizeof(kpa_sandbox_settings)];
        } old;
        memset(&old, 0xaa, sizeof(old));
        old.sb.struct_size = offsetof(kpa_sandbox_settings, allow_personality);
        is(lm ? kpa_store_effective_sandbox(s, lm, &old.sb, &network, &err) : -1, 0,
           "into an older, shorter kpa_sandbox_settings");
        ok(old.sb.read_only_paths && !old.sb.allow_userfaultfd &&
                   old.bytes[offsetof(kpa_sandbox_settings, allow_personality)] == 0xaa &&
                   old.sb.struct_size == offsetof(kpa_sandbox_settings, allow_personality),
           "... which gets the fields it has, nothing past them, and keeps its struct_size");
        kpa_strv_free(old.sb.read_only_paths);
        kpa_manifest_free(lm);

        /* no process runs it: an empty array, still one block to free() */
        kpa_app_process **procs = NULL;
        n = 99;
        is(kpa_store_app_processes(s, APP, &procs, &n, &err), 0, "the processes of a package");
        ok(n == 0 && procs && procs[0] == NULL, "... none, a NULL-terminated array");
        free(procs);
        is(kpa_store_inspect(s, "org.example.none", &info, &err), -ENOENT,
           "inspect what is not installed");
        _cleanup_free_ char *missing = path_of("none.kpa");
        is(kpa_package_inspect(missing, NULL, &info, &err), -ENOENT, "inspect a missing file");
}

static bool report_has(const kpa_verify_report *r, kpa_verify_problem p, const char *path)
{
        for (size_t i = 0; i < r->n_entries; i++)
                if (r->entries[i]->problem == p && streq(r->entries[i]->path, path))
                        return true;
        return false;
}

static void test_verify(kpa_store *s)
{
        kpa_error err;
        kpa_verify_report r;
        kpa_verify_report_init(&r);
        is(kpa_store_verify(s, APP, &r, &err), 0, "verify");
        is(r.n_entries, 0, "... finds nothing wrong");
        is(r.files_checked, 2, "... in 2 files");
        kpa_verify_report_clear(&r);

        _cleanup_free_ char *res = path_of("store/apps/" APP "/res/d/z.txt");
        _cleanup_free_ char *bin = path_of("store/apps/" APP "/bin/app");
        _cleanup_free_ char *extra = path_of("store/apps/" APP "/res/d/extra");
        _cleanup_free_ char *extra_dir = path_of("store/apps/" APP "/junk");
        write_file(res, "changed");
        chmod(bin, 0777);
        write_file(extra, "x");
        (void)mkdir(extra_dir, 0755);
        is(kpa_store_verify(s, APP, &r, &err), 0, "verify a tampered package");
        ok(r.n_entries > 0 && r.entries[0]->struct_size == sizeof(kpa_verify_entry),
           "... its entries are versioned (struct_size set)");
        ok(report_has(&r, KPA_VERIFY_MODIFIED, "res/d/z.txt"), "... a changed file");
        ok(report_has(&r, KPA_VERIFY_WRONG_TYPE, "bin/app"), "... a wrong mode");
        ok(report_has(&r, KPA_VERIFY_EXTRA, "res/d/extra"), "... an extra file");
        ok(report_has(&r, KPA_VERIFY_EXTRA, "junk"), "... an extra directory");
        kpa_verify_report_clear(&r);
        unlink(res);
        is(kpa_store_verify(s, APP, &r, &err), 0, "verify with a file gone");
        ok(report_has(&r, KPA_VERIFY_MISSING, "res/d/z.txt"), "... a missing file");
        kpa_verify_report_clear(&r);
        is(kpa_store_verify(s, "org.example.none", &r, &err), -ENOENT,
           "verify what is not installed");
}

static void test_remove(kpa_store *s)
{
        kpa_error err;
        is(kpa_store_remove(s, "a/b", false, &err), -EINVAL, "remove refuses a bad id");
        is(kpa_store_remove(s, "org.example.none", false, &err), -ENOENT,
           "remove refuses what is not installed");
        is(kpa_store_remove(s, APP, false, &err), 0, "remove");
        struct stat st;
        _cleanup_free_ char *storage = path_of("store/storage/" APP);
        _cleanup_free_ char *user = path_of("store/users/" APP);
        _cleanup_free_ char *app = path_of("store/apps/" APP);
        ok(stat(app, &st) < 0, "... the package is gone");
        ok(stat(storage, &st) == 0 && stat(user, &st) == 0, "... its storage and uid are kept");
        is(kpa_store_remove(s, APP, false, &err), -ENOENT, "a second remove is refused");
        is(kpa_store_remove(s, APP, true, &err), 0, "purge what only has storage left");
        ok(stat(storage, &st) < 0 && stat(user, &st) < 0, "... storage and uid are gone");
        _cleanup_free_ char *staging = path_of("store/.staging");
        _cleanup_closedir_ DIR *d = opendir(staging);
        int entries = 0;
        for (struct dirent *de; d && (de = readdir(d));)
                entries += de->d_name[0] != '.';
        is(entries, 0, ".staging is empty");
}

/* A store made by hand: apps/ names are listed sorted; a package directory
 * without manifest.json is reported; an apps/ that is a file is refused. */
static void test_hand_made(void)
{
        static const char *const dirs[] = {"hand", "hand/apps", "hand/apps/org.b",
                                           "hand/apps/org.a", "hand/apps/.hidden"};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *p = path_of(dirs[i]);
                (void)mkdir(p, 0755);
        }
        _cleanup_free_ char *root = path_of("hand");
        kpa_store *s = NULL;
        kpa_error err;
        if (!ok(kpa_store_open(root, 0, &s, &err) == 0, "open a hand-made store"))
                return;
        char **ids = NULL;
        size_t n = 0;
        is(kpa_store_list(s, &ids, &n, &err), 0, "list it");
        ok(n == 2 && streq(ids[0], "org.a") && streq(ids[1], "org.b"),
           "... sorted, without hidden entries");
        kpa_strv_free(ids);
        kpa_manifest *m = NULL;
        is(kpa_store_load_manifest(s, "org.a", &m, &err), -ENOENT,
           "a package directory without manifest.json");
        has_str(err.message, "cannot read", "... is reported");
        _cleanup_free_ char *apps = path_of("hand/apps");
        kpa_rm_rf_at(AT_FDCWD, apps);
        write_file(apps, "x");
        is(kpa_store_list(s, &ids, &n, &err), -ENOTDIR, "an apps/ that is a file is refused");
        kpa_store_close(s);
        kpa_store_close(NULL);
}

static void test_util(void)
{
        char *buf = NULL;
        size_t len = 0;
        is(kpa_read_file_at(AT_FDCWD, tmp, 100, &buf, &len), -EINVAL,
           "kpa_read_file_at refuses a directory");
        _cleanup_free_ char *big = path_of("big");
        write_file(big, "0123456789");
        is(kpa_read_file_at(AT_FDCWD, big, 4, &buf, &len), -EFBIG, "and a file over the limit");
        int p[2];
        if (pipe(p) < 0)
                abort();
        char chunk[5000];
        memset(chunk, 'x', sizeof(chunk));
        is(kpa_write_all(p[1], chunk, sizeof(chunk)), 0, "kpa_write_all into a pipe");
        close(p[1]);
        is(kpa_read_fd(p[0], 4096, &buf, &len), -EFBIG, "kpa_read_fd stops at its limit");
        close(p[0]);
        if (pipe(p) < 0)
                abort();
        is(kpa_write_all(p[1], chunk, sizeof(chunk)), 0, "again");
        close(p[1]);
        is(kpa_read_fd(p[0], 100, &buf, &len), -EFBIG, "... with a small limit");
        close(p[0]);
        is(kpa_write_all(-1, "x", 1), -EBADF, "kpa_write_all to a bad fd");

        kpa_error err;
        is(kpa_error_set(&err, -EPERM, "negative"), -EPERM, "a negative code is made positive");
        is(kpa_error_set(&err, 0, "zero"), -EIO, "code 0 becomes EIO");
        is(kpa_error_prefix(NULL, "p"), -EIO, "a prefix on no record");
        kpa_error_clear(NULL);
        char longp[KPA_ERROR_MESSAGE_MAX + 10];
        memset(longp, 'p', sizeof(longp) - 1);
        longp[sizeof(longp) - 1] = '\0';
        kpa_error_set(&err, ENOENT, "the message");
        kpa_error_prefix(&err, "%s", longp);
        ok(strlen(err.message) < sizeof(err.message), "a prefix too long is cut");
        err.code = 0;
        is(kpa_error_prefix(&err, "p"), -EIO, "a prefix on a record without a code: EIO");

        _cleanup_free_ char *tree = path_of("tree/a/b");
        _cleanup_free_ char *top = path_of("tree");
        _cleanup_free_ char *a = path_of("tree/a");
        _cleanup_free_ char *f = path_of("tree/a/b/f");
        (void)mkdir(top, 0755);
        (void)mkdir(a, 0755);
        (void)mkdir(tree, 0755);
        write_file(f, "x");
        is(kpa_rm_rf_at(AT_FDCWD, top), 0, "kpa_rm_rf_at removes a tree");
        struct stat st;
        ok(stat(top, &st) < 0 && errno == ENOENT, "... all of it");
        is(kpa_rm_rf_at(AT_FDCWD, top), 0, "a missing tree is no error");

        char hex[65];
        is(kpa_sha256_file_at(AT_FDCWD, tmp, hex, NULL, &err), -EINVAL,
           "hashing a directory is refused");
        /* /proc/self/mem is a regular file whose first page cannot be read */
        is(kpa_sha256_file_at(AT_FDCWD, "/proc/self/mem", hex, NULL, &err), -EIO,
           "a read error while hashing is reported");
        has_str(err.message, "read /proc/self/mem", "... naming the file");
}

int main(void)
{
        if (!mkdtemp(tmp)) {
                printf("1..0 # SKIP mkdtemp: %s\n", strerror(errno));
                return 0;
        }
        _cleanup_free_ char *v1 = make_package("v1.kpa", "1.0", host_arch());
        _cleanup_free_ char *v2 = make_package("v2.kpa", "2.0", host_arch());
        _cleanup_free_ char *other = make_package(
                "other.kpa", "3.0", streq(host_arch(), "aarch64") ? "x86_64" : "aarch64");
        test_open();
        _cleanup_free_ char *root = path_of("store");
        kpa_store *s = NULL;
        kpa_error err;
        if (!ok(kpa_store_open(root, KPA_STORE_CREATE, &s, &err) == 0, "create a store")) {
                printf("# %s\n", err.message);
                return tap_done();
        }
        is_str(kpa_store_root(s), root, "its root");
        ok(kpa_store_root_fd(s) >= 0, "its fd");
        test_install(s, v1, v2, other);
        test_versioned(s, v2);
        test_lookups(s);
        test_verify(s);
        test_remove(s);
        kpa_store_close(s);
        test_hand_made();
        test_util();
        kpa_rm_rf_at(AT_FDCWD, tmp);
        return tap_done();
}
