/* kpa/oci-image.h: KPA packages as OCI images (image-spec 1.x image
 * layouts), so that ordinary registries and tools (skopeo, umoci, podman)
 * can carry them.
 *
 * The image has one layer (a gzip'd tar) holding the installed package tree
 * at /APP_ID (manifest.json, manifest.sig when signed, bin/, lib/, res/,
 * manifest_locales/) and a base of empty directories: /dev, /etc, /proc,
 * /run, /sys, /tmp (1777). Its config's Entrypoint is the primary run
 * configuration's /APP_ID/PATH and args, Env PATH and its envVariables,
 * WorkingDir "/". The exact bytes of manifest.json (and manifest.sig) travel
 * base64-encoded in the config labels org.kpa.manifest (and
 * org.kpa.manifest.sig). The same package always gives the same image:
 * sorted members, mtime 0, owner 0:0, no gzip time stamp. */
#ifndef KPA_OCI_IMAGE_H
#define KPA_OCI_IMAGE_H

#include <kpa/error.h>
#include <kpa/package.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KPA_OCI_LABEL_MANIFEST "org.kpa.manifest"
#define KPA_OCI_LABEL_SIGNATURE "org.kpa.manifest.sig"
/* "sha256:" and 64 hex digits */
#define KPA_OCI_DIGEST_LEN 71

typedef struct kpa_oci_image_result {
        size_t struct_size; /* sizeof, set by kpa_oci_image_result_init() (see kpa/error.h) */
        char tag[129];                       /* org.opencontainers.image.ref.name */
        char digest[KPA_OCI_DIGEST_LEN + 1]; /* of the image manifest */
        uint64_t layer_size;                 /* compressed */
        bool signed_package;
} kpa_oci_image_result;
KPA_PUBLIC void kpa_oci_image_result_init(kpa_oci_image_result *result);

/* Turn the package file PACKAGE (fully verified as kpa_package_inspect()
 * does) into a new OCI image layout DIR, tagged TAG (NULL: the
 * application's version, with characters outside [A-Za-z0-9._-] made '_').
 * DIR must not exist or be an empty directory; it is written elsewhere and
 * renamed into place, so nothing is left on failure. */
KPA_PUBLIC int kpa_oci_image_write(const char *package, const char *dir, const char *tag,
                                   kpa_oci_image_result *result, kpa_error *err);

/* Install the image in the OCI image layout REF, "DIR" or "DIR:TAG" (the
 * image whose org.opencontainers.image.ref.name is TAG; without TAG the
 * layout must hold one image). Every blob's size and SHA-256 is checked
 * against its descriptor, the layer may hold only the package tree under
 * /APP_ID and directories, and the package is then installed as
 * kpa_store_install() installs a .kpa: same digests, signature rules and
 * atomic publish. */
KPA_PUBLIC int kpa_store_install_oci(kpa_store *store, const char *ref,
                                     const kpa_install_options *opts, kpa_install_result *result,
                                     kpa_error *err);

#ifdef __cplusplus
}
#endif
#endif
