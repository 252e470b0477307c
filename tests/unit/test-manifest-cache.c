/* Unit tests for manifest-cache.c, kpa-execd's cache of installed
 * manifests: off, every call loads; on, a manifest is cached once its files
 * are RACY_MS old and served while they are the same files; a manifest
 * replaced by a new file, rewritten in place, forgotten (kpa-install's
 * notice) or removed is seen by the next call; a reference held across a
 * replacement stays valid. The package is packed and installed with the
 * public API. No root needed (tests/integration/daemon-manifest-cache.sh
 * checks the same through kpa-execd). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kpa/package.h"
#include "store-internal.h"
#include "tap.h"
#include "test-files.h"
#include "util.h"

#define APP "org.example.mcache"
#define MANIFEST_FMT                                                                               \
        "{\"version\": \"2.0\",\n"                                                                 \
        " \"application\": {\"id\": \"" APP "\", \"name\": \"M\", \"version\": "                   \
        "\"%s\", \"buildNumber\": \"1\", \"systemApplication\": false},\n"                         \
        " \"platform\": {\"id\": \"linux\", \"sdk\": {\"buildSdkName\": \"s\", "                   \
        "\"buildSdkVersion\": \"1\", \"targetApiLevel\": 1}, \"hwSpecification\": "                \
        "{\"arch\": \"%s\", \"cpu\": \"\"}},\n"                                                    \
        " \"components\": [{\"name\": \"app\", \"componentType\": \"bin\", \"digest\": \"\"}]}\n"

static char tmp[] = "/tmp/kpa-test-mcache-XXXXXX";

static char *path_of(const char *rel)
{
        return kpa_xasprintf("%s/%s", tmp, rel);
}

static char *manifest_text(const char *version)
{
        return kpa_xasprintf(MANIFEST_FMT, version, host_arch());
}

/* The installed manifest PATH with its version FROM (quoted) made TO. */
static char *installed_with(const char *path, const char *from, const char *to)
{
        char *text = NULL;
        if (kpa_read_file_at(AT_FDCWD, path, 1 << 20, &text, NULL) < 0)
                abort();
        char *at = strstr(text, from);
        if (!at || strlen(from) != strlen(to))
                abort();
        for (size_t k = 0; to[k]; k++) /* same length: the text stays terminated */
                at[k] = to[k];
        return text;
}

/* Version VERSION packed into TMP/pkg.kpa and installed into S. */
static void install(kpa_store *s, const char *version)
{
        _cleanup_free_ char *src = path_of("src");
        _cleanup_free_ char *manifest = path_of("manifest.json");
        _cleanup_free_ char *app = path_of("src/app");
        _cleanup_free_ char *out = path_of("pkg.kpa");
        _cleanup_free_ char *text = manifest_text(version);
        (void)mkdir(src, 0755);
        write_file(manifest, text);
        write_file(app, "#!/bin/sh\n");
        kpa_error err;
        if (pack_one(manifest, src, out, &err) < 0 ||
            kpa_store_install(s, out, NULL, NULL, &err) < 0) {
                printf("# %s\n", err.message);
                abort();
        }
}

static unsigned long hits(kpa_store *s)
{
        unsigned long h, m;
        store_manifest_cache_stats(s, &h, &m);
        return h;
}

/* The version of APP's manifest as the cache gives it ("" on an error). */
static char *version_of(kpa_store *s)
{
        const kpa_manifest *m = NULL;
        manifest_ref *ref = NULL;
        kpa_error err;
        if (store_manifest_ref(s, APP, &m, &ref, &err) < 0)
                return kpa_xstrdup("");
        char *v = kpa_xstrdup(m->application.version);
        manifest_ref_put(ref);
        return v;
}

/* Call until a call is served from the cache (the files are cached once
 * they are old enough): true, or false after 5 s. */
static bool served_from_cache(kpa_store *s)
{
        unsigned long before = hits(s);
        for (int k = 0; k < 500; k++) {
                free(version_of(s));
                if (hits(s) > before)
                        return true;
                nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        }
        return false;
}

int main(void)
{
        if (!mkdtemp(tmp))
                abort();
        _cleanup_free_ char *root = path_of("store");
        _cleanup_free_ char *installed = path_of("store/apps/" APP "/manifest.json");
        kpa_store *s = NULL;
        kpa_error err;
        if (kpa_store_open(root, KPA_STORE_CREATE, &s, &err) < 0) {
                printf("# %s\n", err.message);
                return 1;
        }
        install(s, "1.5");

        /* off: loaded each time, never counted */
        char *v = version_of(s);
        is_str(v, "1.5", "without the cache the manifest is loaded");
        free(v);
        free(version_of(s));
        is(hits(s), 0, "... and nothing is served from a cache");

        store_cache_manifests(s, true);
        ok(served_from_cache(s),
           "with the cache on, a call is served from it once the files are old enough");
        const kpa_manifest *m1 = NULL, *m2 = NULL;
        manifest_ref *r1 = NULL, *r2 = NULL;
        is(store_manifest_ref(s, APP, &m1, &r1, &err), 0, "a cached manifest is given");
        is(store_manifest_ref(s, APP, &m2, &r2, &err), 0, "... twice");
        ok(m1 == m2, "... the same parsed manifest both times");
        manifest_ref_put(r2);

        /* replaced by a new file (no notice) while R1 is held */
        _cleanup_free_ char *text2 = installed_with(installed, "\"1.5\"", "\"1.6\"");
        _cleanup_free_ char *next = path_of("next.json");
        write_file(next, text2);
        ok(rename(next, installed) == 0, "manifest.json is replaced by a new file");
        v = version_of(s);
        is_str(v, "1.6", "the next call sees the new manifest");
        free(v);
        is_str(m1->application.version, "1.5", "a reference held across the change is still valid");
        manifest_ref_put(r1);

        /* rewritten in place: the same inode and size */
        ok(served_from_cache(s), "the new manifest is served from the cache in turn");
        struct stat before, after;
        stat(installed, &before);
        _cleanup_free_ char *text3 = installed_with(installed, "\"1.6\"", "\"1.7\"");
        write_file(installed, text3);
        stat(installed, &after);
        ok(before.st_ino == after.st_ino && before.st_size == after.st_size,
           "manifest.json is rewritten in place (same inode and size)");
        v = version_of(s);
        is_str(v, "1.7", "the next call sees the rewritten manifest");
        free(v);

        /* kpa-install's notice */
        ok(served_from_cache(s), "cached again");
        unsigned long h = hits(s);
        store_forget_manifest(s, APP);
        free(version_of(s));
        is(hits(s), h, "after store_forget_manifest the next call reads the store");

        /* removed */
        ok(served_from_cache(s), "cached again");
        _cleanup_free_ char *gone = path_of("gone");
        _cleanup_free_ char *dir = path_of("store/apps/" APP);
        ok(rename(dir, gone) == 0, "the installed tree is moved away");
        const kpa_manifest *m3 = NULL;
        manifest_ref *r3 = NULL;
        is(store_manifest_ref(s, APP, &m3, &r3, &err), -ENOENT, "a call then fails");
        has_str(err.message, "is not installed", "... saying it is not installed");
        ok(rename(gone, dir) == 0, "the tree is back");

        is(store_manifest_ref(s, "../x", &m3, &r3, &err), -EINVAL, "a bad id is refused");

        store_cache_manifests(s, false);
        v = version_of(s);
        is_str(v, "1.7", "turned off, the cache is gone and the manifest loaded");
        free(v);
        kpa_store_close(s);
        (void)kpa_rm_rf_at(AT_FDCWD, tmp);
        return tap_done();
}
