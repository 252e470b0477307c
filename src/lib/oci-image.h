/* oci-image.h: what oci-image.c (writing images, and the helpers below)
 * and oci-image-read.c (reading them back) share. Not exported. */
#ifndef KPA_OCI_IMAGE_INTERNAL_H
#define KPA_OCI_IMAGE_INTERNAL_H

#include <stddef.h>

#include <archive.h>
#include <archive_entry.h>

#include "kpa/oci-image.h"

#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_LAYER_GZIP MT_LAYER_TAR "+gzip"
#define MT_LAYER_ZSTD MT_LAYER_TAR "+zstd"
#define ANN_REF_NAME "org.opencontainers.image.ref.name"
#define JSON_MAX (4u << 20) /* index.json, an image manifest, a config */

void oci_archive_write_freep(struct archive **a);
void oci_archive_read_freep(struct archive **a);
void oci_entry_freep(struct archive_entry **e);
/* ERR from libarchive's last error on A, WHAT in front */
int oci_archive_fail(struct archive *a, const char *what, kpa_error *err);
/* base64 (with padding) of N bytes of DATA; free() it */
char *oci_b64_encode(const char *data, size_t n);
/* "sha256:HEX" of LEN bytes of DATA */
void oci_sha256_text(const void *data, size_t len, char digest[KPA_OCI_DIGEST_LEN + 1]);
/* all of DATA into the archive entry being written */
int oci_write_all_data(struct archive *a, const char *data, size_t len, const char *what,
                       kpa_error *err);

#endif
