/* Unit tests for oci-image.c and oci-image-read.c through the C API of
 * kpa/oci-image.h: a package becomes the same image twice, tagged as asked
 * or after its version, a target that is not empty and a bad tag are
 * refused leaving nothing, and the image installs into a store as the
 * package would. tests/integration/oci-image.sh covers hostile images and
 * the Debian tools. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "kpa/oci-image.h"
#include "kpa/package.h"
#include "tap.h"
#include "util.h"

static char dir[] = "/tmp/kpa-test-oci-XXXXXX";

static char *path_of(const char *name)
{
        return kpa_xasprintf("%s/%s", dir, name);
}

static void write_file(const char *name, const char *text, mode_t mode)
{
        _cleanup_free_ char *p = path_of(name);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || kpa_write_all(fd, text, strlen(text)) < 0)
                abort();
}

static void make_package(void)
{
        struct utsname u;
        if (uname(&u) < 0)
                abort();
        _cleanup_free_ char *bin = path_of("app/bin");
        _cleanup_free_ char *app = path_of("app");
        if (mkdir(app, 0755) < 0 || mkdir(bin, 0755) < 0)
                abort();
        write_file("app/bin/hello", "#!/bin/sh\necho hello\n", 0755);
        _cleanup_free_ char *manifest = kpa_xasprintf(
                "{\"version\": \"2.0\",\n"
                " \"application\": {\"id\": \"org.example.ociunit\", \"name\": \"U\",\n"
                "   \"version\": \"2.0+b1\", \"buildNumber\": \"1\", \"systemApplication\": "
                "false},\n"
                " \"platform\": {\"id\": \"linux\", \"sdk\": {\"buildSdkName\": \"kpa\",\n"
                "   \"buildSdkVersion\": \"1\", \"targetApiLevel\": 1},\n"
                "   \"hwSpecification\": {\"arch\": \"%s\", \"cpu\": \"\"}},\n"
                " \"components\": [{\"name\": \"hello\", \"componentType\": \"bin\"}],\n"
                " \"runConfigurations\": [{\"id\": \"main\", \"name\": \"Main\", \"type\": "
                "\"service\",\n"
                "   \"path\": \"bin/hello\", \"primary\": true}]}\n",
                u.machine);
        write_file("manifest.json", manifest, 0644);
        kpa_pack_options opts;
        kpa_pack_options_init(&opts);
        _cleanup_free_ char *mpath = path_of("manifest.json");
        _cleanup_free_ char *out = path_of("app.kpa");
        const char *inputs[] = {app};
        opts.manifest_path = mpath;
        opts.output_path = out;
        opts.inputs = inputs;
        opts.n_inputs = 1;
        kpa_error err;
        if (kpa_pack(&opts, &err) < 0) {
                printf("# %s\n", err.message);
                abort();
        }
}

int main(void)
{
        if (!mkdtemp(dir))
                abort();
        make_package();
        _cleanup_free_ char *pkg = path_of("app.kpa");
        _cleanup_free_ char *img1 = path_of("img1"), *img2 = path_of("img2/");
        _cleanup_free_ char *img3 = path_of("img3"), *bad = path_of("bad");
        kpa_oci_image_result r1, r2, r3;
        kpa_oci_image_result_init(&r1);
        kpa_oci_image_result_init(&r2);
        kpa_oci_image_result_init(&r3);
        kpa_error err;

        is(kpa_oci_image_write(pkg, img1, NULL, &r1, &err), 0, "an image is written");
        is_str(r1.tag, "2.0_b1", "its default tag is the version, '+' made '_'");
        ok(strncmp(r1.digest, "sha256:", 7) == 0 && strlen(r1.digest) == KPA_OCI_DIGEST_LEN,
           "its digest is sha256:HEX");
        ok(!r1.signed_package, "an unsigned package gives an unsigned image");
        ok(r1.layer_size > 0, "the layer size is told");
        if (mkdir(img2, 0755) < 0)
                abort();
        is(kpa_oci_image_write(pkg, img2, NULL, &r2, &err), 0,
           "an image is written into an empty directory");
        is_str(r2.digest, r1.digest, "the same package gives the same digest");
        is(kpa_oci_image_write(pkg, img3, "stable", &r3, &err), 0, "a tag can be given");
        is_str(r3.tag, "stable", "the given tag is used");
        ok(strcmp(r3.digest, r1.digest) == 0, "the tag is in index.json, not in the image");

        is(kpa_oci_image_write(pkg, img1, NULL, NULL, &err), -ENOTEMPTY,
           "a directory that is not empty is refused");
        has_str(err.message, "exists and is not empty", "... saying so");
        is(kpa_oci_image_write(pkg, bad, "a/b", NULL, &err), -EINVAL, "a bad tag is refused");
        has_str(err.message, "tag \"a/b\"", "... naming it");
        struct stat st;
        ok(stat(bad, &st) < 0 && errno == ENOENT, "... and leaves nothing");
        _cleanup_free_ char *none = path_of("none.kpa");
        is(kpa_oci_image_write(none, bad, NULL, NULL, &err), -ENOENT, "a missing package");
        has_str(err.message, none, "... is named");

        _cleanup_free_ char *root = path_of("store");
        _cleanup_free_ char *keys = path_of("keys");
        if (mkdir(keys, 0700) < 0)
                abort();
        _cleanup_(kpa_store_closep) kpa_store *store = NULL;
        if (kpa_store_open(root, KPA_STORE_CREATE, &store, &err) < 0)
                abort();
        kpa_install_options opts;
        kpa_install_options_init(&opts);
        opts.trusted_keys_dir = keys;
        kpa_install_result res;
        kpa_install_result_init(&res);
        is(kpa_store_install_oci(store, img1, &opts, &res, &err), 0, "the image installs");
        is_str(res.app_id, "org.example.ociunit", "... as its package");
        is(res.action, KPA_INSTALL_ACTION_NEW, "... a new install");
        _cleanup_free_ char *ref = kpa_xasprintf("%s:stable", img3);
        opts.flags |= KPA_INSTALL_REINSTALL;
        is(kpa_store_install_oci(store, ref, &opts, &res, &err), 0, "DIR:TAG installs");
        is(res.action, KPA_INSTALL_ACTION_REINSTALL, "... a reinstall");
        _cleanup_free_ char *wrong = kpa_xasprintf("%s:1.0", img3);
        is(kpa_store_install_oci(store, wrong, &opts, &res, &err), -ENOENT,
           "a tag that is not there is refused");
        has_str(err.message, "(tags: stable)", "... naming those that are");
        is(kpa_store_install_oci(store, dir, &opts, &res, &err), -ENOENT,
           "a directory that is no layout is refused");
        has_str(err.message, "no oci-layout", "... saying so");
        is(kpa_store_install_oci(store, pkg, &opts, &res, &err), -ENOTDIR,
           "a package file is no layout");

        kpa_store_close(TAKE_PTR(store));
        (void)kpa_rm_rf_at(AT_FDCWD, dir);
        return tap_done();
}
