/* oci-image-read.c: kpa-install oci:DIR[:TAG]. It owns reading an OCI image
 * layout back: index.json, the image manifest, the config and the layer,
 * each blob's size and digest, and what the layer may hold. It checks
 * nothing of the package itself: the image becomes the package stream
 * (manifest.json, manifest.sig, the components) that install.c installs
 * through the one path every .kpa takes, digests and signature included. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>
#include <json-c/json.h>
#include <nettle/base64.h>

#include "archive-read.h"
#include "json-fields.h"
#include "json-strict.h"
#include "kpa/digest.h"
#include "kpa/oci-image.h"
#include "oci-image.h"
#include "store-internal.h"
#include "util.h"

/* ---- Reading: an image layout, checked, back into a package stream ---- */

/* Canonical base64 only: what oci_b64_encode() gives for the decoded bytes. */
static int b64_decode(const char *text, char **out, size_t *out_len)
{
        size_t tlen = strlen(text);
        _cleanup_free_ char *buf = kpa_xmalloc(BASE64_DECODE_LENGTH(tlen) + 1);
        struct base64_decode_ctx ctx;
        size_t len = BASE64_DECODE_LENGTH(tlen);
        base64_decode_init(&ctx);
        if (!base64_decode_update(&ctx, &len, (uint8_t *)buf, tlen, text) ||
            !base64_decode_final(&ctx))
                return -EINVAL;
        _cleanup_free_ char *again = oci_b64_encode(buf, len);
        if (!streq(again, text))
                return -EINVAL;
        buf[len] = '\0';
        *out_len = len;
        *out = TAKE_PTR(buf);
        return 0;
}

typedef struct image {
        const char *name; /* "oci:REF", for messages */
        int dirfd;
        const kpa_package_limits *limits;
} image;

static bool is_sha256_digest(const char *s)
{
        if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != KPA_OCI_DIGEST_LEN)
                return false;
        for (const char *p = s + 7; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

static int parse_json(const image *img, const char *what, const char *text, size_t len,
                      json_object **out, kpa_error *err)
{
        int q = json_strict_check(text, len, JSON_MAX, err);
        if (q < 0)
                return kpa_error_prefix(err, "%s: %s", img->name, what);
        json_object *o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return kpa_error_set(err, EINVAL, "%s: %s: not a JSON object", img->name, what);
        }
        *out = o;
        return 0;
}

/* OBJ.KEY of TYPE; NULL (and ERR) when missing or of another type. */
static json_object *field(const image *img, const char *what, json_object *obj, const char *key,
                          json_type type, kpa_error *err)
{
        json_object *v = NULL;
        if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type)) {
                kpa_error_set(err, EINVAL, "%s: %s: \"%s\" is %s (%s expected)", img->name, what,
                              key, v ? "of another type" : "missing", json_type_to_name(type));
                return NULL;
        }
        return v;
}

typedef struct descriptor {
        const char *media_type;
        const char *digest;
        int64_t size;
} descriptor;

static int read_descriptor(const image *img, const char *what, json_object *o, descriptor *d,
                           kpa_error *err)
{
        if (!json_object_is_type(o, json_type_object))
                return kpa_error_set(err, EINVAL, "%s: %s: not a JSON object", img->name, what);
        json_object *mt = field(img, what, o, "mediaType", json_type_string, err);
        json_object *dg = mt ? field(img, what, o, "digest", json_type_string, err) : NULL;
        json_object *sz = dg ? field(img, what, o, "size", json_type_int, err) : NULL;
        if (!sz)
                return -EINVAL;
        d->media_type = json_object_get_string(mt);
        d->digest = json_object_get_string(dg);
        d->size = json_object_get_int64(sz);
        if (!is_sha256_digest(d->digest))
                return kpa_error_set(err, EINVAL,
                                     "%s: %s: digest \"%.80s\" is not sha256:<64 lowercase hex "
                                     "digits> (kpa reads sha256 digests only)",
                                     img->name, what, d->digest);
        if (d->size < 0)
                return kpa_error_set(err, EINVAL, "%s: %s: negative size", img->name, what);
        return 0;
}

static int open_blob(const image *img, const descriptor *d, kpa_error *err)
{
        _cleanup_free_ char *path = kpa_xasprintf("blobs/sha256/%s", d->digest + 7);
        _cleanup_close_ int fd = kpa_open_beneath(img->dirfd, path, O_RDONLY | O_NOCTTY, 0);
        if (fd < 0)
                return kpa_error_set(err, -fd, "%s: blob %s: %s", img->name, d->digest,
                                     fd == -ENOENT ? "missing" : strerror(-fd));
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kpa_error_set_errno(err, errno, "%s: blob %s", img->name, d->digest);
        if (!S_ISREG(st.st_mode))
                return kpa_error_set(err, EINVAL, "%s: blob %s: not a regular file", img->name,
                                     d->digest);
        if ((uint64_t)st.st_size != (uint64_t)d->size)
                return kpa_error_set(err, EBADMSG,
                                     "%s: blob %s: size mismatch: the descriptor says %lld "
                                     "bytes, the file has %lld",
                                     img->name, d->digest, (long long)d->size,
                                     (long long)st.st_size);
        return TAKE_FD(fd);
}

static int digest_mismatch(const image *img, const char *want, const char *have, kpa_error *err)
{
        return kpa_error_set(err, EBADMSG,
                             "%s: blob %s: digest mismatch: its content has %s (tampered with?)",
                             img->name, want, have);
}

/* A JSON blob, its size and digest checked, parsed. */
static int read_json_blob(const image *img, const char *what, const descriptor *d,
                          json_object **out, kpa_error *err)
{
        if (d->size > (int64_t)JSON_MAX)
                return kpa_error_set(err, EFBIG, "%s: %s: %lld bytes (at most %u)", img->name, what,
                                     (long long)d->size, JSON_MAX);
        _cleanup_close_ int fd = open_blob(img, d, err);
        if (fd < 0)
                return fd;
        _cleanup_free_ char *text = NULL;
        size_t len;
        int q = kpa_read_fd(fd, JSON_MAX, &text, &len);
        if (q < 0)
                return kpa_error_set(err, -q, "%s: blob %s: %s", img->name, d->digest,
                                     strerror(-q));
        char have[KPA_OCI_DIGEST_LEN + 1];
        oci_sha256_text(text, len, have);
        if (len != (size_t)d->size || !streq(have, d->digest))
                return digest_mismatch(img, d->digest, have, err);
        return parse_json(img, what, text, len, out, err);
}

static int read_small_file(const image *img, const char *name, char **text, size_t *len,
                           kpa_error *err)
{
        int q = kpa_read_file_at(img->dirfd, name, JSON_MAX, text, len);
        if (q == -ENOENT)
                return kpa_error_set(err, ENOENT,
                                     "%s: no %s: not an OCI image layout (image-spec 1.x)",
                                     img->name, name);
        if (q < 0)
                return kpa_error_set(err, -q, "%s: %s: %s", img->name, name, strerror(-q));
        return 0;
}

static const char *ref_name_of(json_object *desc)
{
        json_object *ann, *name;
        if (json_object_object_get_ex(desc, "annotations", &ann) &&
            json_object_is_type(ann, json_type_object) &&
            json_object_object_get_ex(ann, ANN_REF_NAME, &name) &&
            json_object_is_type(name, json_type_string))
                return json_object_get_string(name);
        return NULL;
}

/* index.json's descriptor of the image tagged TAG (or the only one). */
static int pick_image(const image *img, json_object *index, const char *tag, descriptor *d,
                      kpa_error *err)
{
        json_object *list = field(img, "index.json", index, "manifests", json_type_array, err);
        if (!list)
                return -EINVAL;
        size_t n = json_object_array_length(list);
        json_object *found = NULL;
        char tags[512] = "";
        for (size_t i = 0; i < n; i++) {
                json_object *desc = json_object_array_get_idx(list, i);
                const char *name = ref_name_of(desc);
                size_t used = strlen(tags);
                snprintf(tags + used, sizeof(tags) - used, "%s%s", used ? ", " : "",
                         name ? name : "(untagged)");
                if (tag ? name && streq(name, tag) : n == 1)
                        found = desc;
        }
        if (n == 0)
                return kpa_error_set(err, EINVAL, "%s: index.json lists no image", img->name);
        if (!found && tag)
                return kpa_error_set(err, ENOENT, "%s: no image tagged \"%s\" (tags: %s)",
                                     img->name, tag, tags);
        if (!found)
                return kpa_error_set(err, EINVAL,
                                     "%s: index.json lists %zu images: name one as "
                                     "oci:DIR:TAG (tags: %s)",
                                     img->name, n, tags);
        int q = read_descriptor(img, "index.json: manifests[]", found, d, err);
        if (q < 0)
                return q;
        if (!streq(d->media_type, MT_MANIFEST))
                return kpa_error_set(err, EINVAL,
                                     "%s: index.json: the image is a \"%s\", not an image "
                                     "manifest (%s)",
                                     img->name, d->media_type, MT_MANIFEST);
        return 0;
}

/* What the image says about the package: the manifest's exact bytes (and
 * signature), from the config labels. */
typedef struct kpa_labels {
        char *raw;
        size_t raw_len;
        char *sig;
        size_t sig_len;
} kpa_labels;

static void kpa_labels_clear(kpa_labels *l)
{
        free(l->raw);
        free(l->sig);
}

static int read_labels(const image *img, json_object *config, kpa_labels *out, kpa_error *err)
{
        json_object *cfg, *labels, *v;
        if (!json_object_object_get_ex(config, "config", &cfg) ||
            !json_object_object_get_ex(cfg, "Labels", &labels) ||
            !json_object_object_get_ex(labels, KPA_OCI_LABEL_MANIFEST, &v))
                return kpa_error_set(err, ENOMSG,
                                     "%s: not a KPA image: its config has no label %s (the "
                                     "package's manifest.json)",
                                     img->name, KPA_OCI_LABEL_MANIFEST);
        if (!json_object_is_type(v, json_type_string) ||
            b64_decode(json_object_get_string(v), &out->raw, &out->raw_len) < 0)
                return kpa_error_set(err, EINVAL, "%s: config label %s: not canonical base64",
                                     img->name, KPA_OCI_LABEL_MANIFEST);
        if (!json_object_object_get_ex(labels, KPA_OCI_LABEL_SIGNATURE, &v))
                return 0;
        if (!json_object_is_type(v, json_type_string) ||
            b64_decode(json_object_get_string(v), &out->sig, &out->sig_len) < 0)
                return kpa_error_set(err, EINVAL, "%s: config label %s: not canonical base64",
                                     img->name, KPA_OCI_LABEL_SIGNATURE);
        return 0;
}

/* The layer blob, hashed as libarchive reads it. */
typedef struct layer_src {
        int fd;
        kpa_sha256 sha;
        uint64_t bytes;
        char buf[65536];
} layer_src;

static la_ssize_t layer_read(struct archive *a, void *userdata, const void **buf)
{
        layer_src *src = userdata;
        ssize_t n;
        do
                n = read(src->fd, src->buf, sizeof(src->buf));
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                archive_set_error(a, errno, "read: %s", strerror(errno));
                return -1;
        }
        kpa_sha256_update(&src->sha, src->buf, (size_t)n);
        src->bytes += (uint64_t)n;
        *buf = src->buf;
        return n;
}

/* The uncompressed layer (the tar), taken from the decompressor RAW and
 * hashed for the config's diff_id as the tar reader takes it; bounded, so
 * that what follows the tar's end is no decompression bomb either. */
typedef struct tar_src {
        struct archive *raw;
        const kpa_package_limits *limits;
        uint64_t layer_size;
        kpa_sha256 sha;
        uint64_t bytes;
        char buf[65536];
} tar_src;

static la_ssize_t tar_read(struct archive *a, void *userdata, const void **buf)
{
        tar_src *t = userdata;
        la_ssize_t n = archive_read_data(t->raw, t->buf, sizeof(t->buf));
        if (n < 0) {
                archive_set_error(a, archive_errno(t->raw) > 0 ? archive_errno(t->raw) : EIO, "%s",
                                  archive_error_string(t->raw) ?: "decompression failed");
                return -1;
        }
        t->bytes += (uint64_t)n;
        const kpa_package_limits *l = t->limits;
        /* member sizes are checked one by one; this bounds the headers too */
        if (t->bytes > l->max_total_bytes + (l->max_members + 2) * 3 * 512 ||
            (l->max_ratio && t->bytes >= l->ratio_min_bytes && t->layer_size > 0 &&
             t->bytes / t->layer_size > l->max_ratio)) {
                archive_set_error(a, EFBIG,
                                  "unpacks to more than the limits allow "
                                  "(a decompression bomb?)");
                return -1;
        }
        kpa_sha256_update(&t->sha, t->buf, (size_t)n);
        *buf = t->buf;
        return n;
}

typedef struct rebuild {
        const image *img;
        const char *app_id;
        const kpa_labels *labels;
        struct archive *out; /* the package stream */
        bool saw_manifest, saw_sig;
        uint64_t members, bytes, layer_size;
} rebuild;

static int stream_header(struct archive *out, const char *name, uint64_t size, kpa_error *err)
{
        _cleanup_(oci_entry_freep) struct archive_entry *e = archive_entry_new();
        if (!e)
                return kpa_error_set(err, ENOMEM, "out of memory");
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)size);
        archive_entry_set_mtime(e, 0, 0);
        if (archive_write_header(out, e) != ARCHIVE_OK)
                return oci_archive_fail(out, name, err);
        return 0;
}

/* The layer's manifest.json or manifest.sig: must be the label's bytes. */
static int check_same(rebuild *rb, struct archive *in, const char *rel, const char *want,
                      size_t want_len, uint64_t size, kpa_error *err)
{
        const char *label =
                streq(rel, "manifest.json") ? KPA_OCI_LABEL_MANIFEST : KPA_OCI_LABEL_SIGNATURE;
        if (!want)
                return kpa_error_set(err, EBADMSG,
                                     "%s: the layer has %s/%s but the config has no label %s",
                                     rb->img->name, rb->app_id, rel, label);
        bool same = size == want_len;
        _cleanup_free_ char *buf = same ? kpa_xmalloc(want_len + 1) : NULL;
        if (same) {
                la_ssize_t n = archive_read_data(in, buf, want_len + 1);
                if (n < 0)
                        return oci_archive_fail(in, rb->img->name, err);
                same = (size_t)n == want_len && memcmp(buf, want, want_len) == 0;
        }
        if (!same)
                return kpa_error_set(err, EBADMSG,
                                     "%s: the layer's %s/%s differs from the config label %s",
                                     rb->img->name, rb->app_id, rel, label);
        return 0;
}

static int copy_member(rebuild *rb, struct archive *in, const char *rel, uint64_t size,
                       kpa_error *err)
{
        int q = stream_header(rb->out, rel, size, err);
        if (q < 0)
                return q;
        char buf[65536];
        uint64_t done = 0;
        for (;;) {
                la_ssize_t n = archive_read_data(in, buf, sizeof(buf));
                if (n < 0)
                        return oci_archive_fail(in, rb->img->name, err);
                if (n == 0)
                        break;
                done += (uint64_t)n;
                if (done > size)
                        break;
                if ((q = oci_write_all_data(rb->out, buf, (size_t)n, rel, err)) < 0)
                        return q;
        }
        if (done != size)
                return kpa_error_set(err, EBADMSG, "%s: layer member %s/%s: size mismatch",
                                     rb->img->name, rb->app_id, rel);
        return 0;
}

static int check_limits(rebuild *rb, uint64_t size, kpa_error *err)
{
        const kpa_package_limits *l = rb->img->limits;
        if (++rb->members > l->max_members)
                return kpa_error_set(err, EFBIG, "%s: the layer has more than %llu members",
                                     rb->img->name, (unsigned long long)l->max_members);
        rb->bytes += size;
        if (rb->bytes > l->max_total_bytes)
                return kpa_error_set(err, EFBIG, "%s: the layer unpacks to more than %llu bytes",
                                     rb->img->name, (unsigned long long)l->max_total_bytes);
        if (l->max_ratio && rb->bytes >= l->ratio_min_bytes && rb->layer_size > 0 &&
            rb->bytes / rb->layer_size > l->max_ratio)
                return kpa_error_set(err, EFBIG,
                                     "%s: the layer unpacks to more than %llu bytes per packed "
                                     "byte (a decompression bomb?)",
                                     rb->img->name, (unsigned long long)l->max_ratio);
        return 0;
}

static const char *type_name(mode_t type)
{
        switch (type) {
        case AE_IFLNK: return "a symbolic link";
        case AE_IFCHR: return "a character device";
        case AE_IFBLK: return "a block device";
        case AE_IFIFO: return "a FIFO";
        case AE_IFSOCK: return "a socket";
        default: return "not a regular file or directory";
        }
}

/* One layer member: directories are the tree's shape (the base, the
 * package's directories); files belong under APP_ID/ and go on into the
 * package stream. */
static int layer_member(rebuild *rb, struct archive *in, struct archive_entry *e, kpa_error *err)
{
        const image *img = rb->img;
        const char *raw_path = archive_entry_pathname(e);
        /* the root itself, as "tar -C DIR -c ." writes it */
        if (archive_entry_filetype(e) == AE_IFDIR && raw_path &&
            (streq(raw_path, ".") || streq(raw_path, "./")))
                return check_limits(rb, 0, err);
        _cleanup_free_ char *path =
                kpa_member_path_normalize(raw_path ? raw_path : "", img->limits->max_path_len, err);
        if (!path)
                return kpa_error_prefix(err, "%s: layer", img->name);
        mode_t type = archive_entry_filetype(e);
        if (archive_entry_hardlink(e))
                return kpa_error_set(err, EPERM,
                                     "%s: layer member %s is a hard link (a KPA image holds "
                                     "regular files and directories only)",
                                     img->name, path);
        if (type == AE_IFLNK)
                return kpa_error_set(err, EPERM,
                                     "%s: layer member %s is a symbolic link to \"%.200s\" (a "
                                     "KPA image holds regular files and directories only)",
                                     img->name, path, archive_entry_symlink(e) ?: "");
        if (type != AE_IFDIR && type != AE_IFREG)
                return kpa_error_set(err, EPERM,
                                     "%s: layer member %s is %s (a KPA image holds regular "
                                     "files and directories only)",
                                     img->name, path, type_name(type));
        uint64_t size = type == AE_IFREG ? (uint64_t)archive_entry_size(e) : 0;
        int q = check_limits(rb, size, err);
        if (q < 0 || type == AE_IFDIR)
                return q;
        size_t id_len = strlen(rb->app_id);
        if (strncmp(path, rb->app_id, id_len) != 0 || path[id_len] != '/')
                return kpa_error_set(err, EPERM,
                                     "%s: layer member %s is outside /%s (a KPA image has "
                                     "files only in its package's tree)",
                                     img->name, path, rb->app_id);
        const char *rel = path + id_len + 1;
        if (streq(rel, "manifest.json")) {
                rb->saw_manifest = true;
                return check_same(rb, in, rel, rb->labels->raw, rb->labels->raw_len, size, err);
        }
        if (streq(rel, "manifest.sig")) {
                rb->saw_sig = true;
                return check_same(rb, in, rel, rb->labels->sig, rb->labels->sig_len, size, err);
        }
        return copy_member(rb, in, rel, size, err);
}

/* The package stream begins as a .kpa does: manifest.json, manifest.sig. */
static int stream_begin(struct archive *out, int out_fd, const image *img, const kpa_labels *labels,
                        kpa_error *err)
{
        if (archive_write_set_format_pax_restricted(out) != ARCHIVE_OK ||
            archive_write_add_filter_none(out) != ARCHIVE_OK ||
            archive_write_open_fd(out, out_fd) != ARCHIVE_OK)
                return oci_archive_fail(out, img->name, err);
        int q = stream_header(out, "manifest.json", labels->raw_len, err);
        if (q >= 0)
                q = oci_write_all_data(out, labels->raw, labels->raw_len, img->name, err);
        if (q >= 0 && labels->sig) {
                q = stream_header(out, "manifest.sig", labels->sig_len, err);
                if (q >= 0)
                        q = oci_write_all_data(out, labels->sig, labels->sig_len, img->name, err);
        }
        return q;
}

/* Every member of the layer, then what follows the tar's end (hashed and
 * bounded all the same); the first error in Q. */
static int read_members(rebuild *rb, struct archive *raw, struct archive *in, layer_src *src,
                        tar_src *tar, const descriptor *d, kpa_error *err)
{
        const image *img = rb->img;
        if (streq(d->media_type, MT_LAYER_GZIP))
                archive_read_support_filter_gzip(raw);
        else if (streq(d->media_type, MT_LAYER_ZSTD))
                archive_read_support_filter_zstd(raw);
        archive_read_support_format_raw(raw);
        archive_read_support_format_tar(in);
        struct archive_entry *e;
        if (archive_read_open(raw, src, NULL, layer_read, NULL) != ARCHIVE_OK ||
            archive_read_next_header(raw, &e) != ARCHIVE_OK)
                return kpa_error_set(err, EBADMSG, "%s: layer %s: %s", img->name, d->digest,
                                     archive_error_string(raw) ?: "cannot decompress");
        if (archive_read_open(in, tar, NULL, tar_read, NULL) != ARCHIVE_OK)
                return kpa_error_set(err, EBADMSG, "%s: layer %s: %s", img->name, d->digest,
                                     archive_error_string(in) ?: "not a tar archive");
        int r, q;
        while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK)
                if ((q = layer_member(rb, in, e, err)) < 0)
                        return q;
        if (r != ARCHIVE_EOF)
                return kpa_error_set(err, EBADMSG, "%s: layer %s: %s", img->name, d->digest,
                                     archive_error_string(in) ?: "not a tar archive");
        const void *rest;
        la_ssize_t n;
        while ((n = tar_read(in, tar, &rest)) > 0)
                ;
        if (n < 0)
                return kpa_error_set(err, EBADMSG, "%s: layer %s: %s", img->name, d->digest,
                                     archive_error_string(in) ?: "cannot decompress");
        return 0;
}

/* Read the layer in FD (its descriptor D) once, checking its digest and
 * DIFF_ID as it streams, into the package stream written to OUT_FD. */
static int rebuild_package(const image *img, const descriptor *d, const char *diff_id, int fd,
                           const char *app_id, const kpa_labels *labels, int out_fd, kpa_error *err)
{
        _cleanup_(oci_archive_write_freep) struct archive *out = archive_write_new();
        _cleanup_(oci_archive_read_freep) struct archive *raw = archive_read_new();
        _cleanup_(oci_archive_read_freep) struct archive *in = archive_read_new();
        if (!out || !raw || !in)
                return kpa_error_set(err, ENOMEM, "out of memory");
        int q = stream_begin(out, out_fd, img, labels, err);
        if (q < 0)
                return q;
        /* the blob (hashed: its digest) through the decompressor RAW
         * (hashed: the diff_id) into the tar reader IN */
        _cleanup_free_ layer_src *src = kpa_xcalloc(1, sizeof(*src));
        src->fd = fd;
        kpa_sha256_init(&src->sha);
        _cleanup_free_ tar_src *tar = kpa_xcalloc(1, sizeof(*tar));
        *tar = (tar_src){.raw = raw, .limits = img->limits, .layer_size = (uint64_t)d->size};
        kpa_sha256_init(&tar->sha);
        rebuild rb = {.img = img,
                      .app_id = app_id,
                      .labels = labels,
                      .out = out,
                      .layer_size = (uint64_t)d->size};
        q = read_members(&rb, raw, in, src, tar, d, err);
        /* the digest covers the whole blob: read what the tar did not, and
         * tell a tampered blob as such, whatever it made the reader say */
        const void *rest;
        la_ssize_t n;
        while ((n = layer_read(raw, src, &rest)) > 0)
                ;
        char hex[65], have[KPA_OCI_DIGEST_LEN + 1];
        kpa_sha256_final_hex(&src->sha, hex);
        snprintf(have, sizeof(have), "sha256:%s", hex);
        if (n == 0 && (src->bytes != (uint64_t)d->size || !streq(have, d->digest)))
                return digest_mismatch(img, d->digest, have, err);
        if (n < 0 && q >= 0)
                return kpa_error_set_errno(err, errno, "%s: layer %s: read", img->name, d->digest);
        if (q < 0)
                return q;
        kpa_sha256_final_hex(&tar->sha, hex);
        snprintf(have, sizeof(have), "sha256:%s", hex);
        if (!streq(have, diff_id))
                return kpa_error_set(err, EBADMSG,
                                     "%s: layer %s: its uncompressed content has %s, but the "
                                     "config's rootfs.diff_ids[0] says %s",
                                     img->name, d->digest, have, diff_id);
        if (!rb.saw_manifest)
                return kpa_error_set(err, EBADMSG, "%s: the layer has no %s/manifest.json",
                                     img->name, app_id);
        if (labels->sig && !rb.saw_sig)
                return kpa_error_set(err, EBADMSG,
                                     "%s: the config has the label %s but the layer has no "
                                     "%s/manifest.sig",
                                     img->name, KPA_OCI_LABEL_SIGNATURE, app_id);
        if (archive_write_close(out) != ARCHIVE_OK)
                return oci_archive_fail(out, img->name, err);
        return 0;
}

/* The config's rootfs.diff_ids: one sha256 digest, the layer's tar's. */
static int read_diff_id(const image *img, json_object *config, const char **out, kpa_error *err)
{
        json_object *rootfs, *ids, *id;
        if (!json_object_object_get_ex(config, "rootfs", &rootfs) ||
            !json_object_object_get_ex(rootfs, "diff_ids", &ids) ||
            !json_object_is_type(ids, json_type_array) || json_object_array_length(ids) != 1 ||
            !(id = json_object_array_get_idx(ids, 0)) ||
            !json_object_is_type(id, json_type_string) ||
            !is_sha256_digest(json_object_get_string(id)))
                return kpa_error_set(err, EINVAL,
                                     "%s: image config: rootfs.diff_ids must hold one sha256 "
                                     "digest (of the one layer)",
                                     img->name);
        *out = json_object_get_string(id);
        return 0;
}

/* "DIR:TAG" is split at its last ':' unless REF names a directory. */
static void split_ref(const char *ref, char **dir, char **tag)
{
        struct stat st;
        const char *colon = strrchr(ref, ':');
        if (!colon || strchr(colon, '/') || (stat(ref, &st) == 0 && S_ISDIR(st.st_mode))) {
                *dir = kpa_xstrdup(ref);
                *tag = NULL;
                return;
        }
        *dir = kpa_xstrndup(ref, (size_t)(colon - ref));
        *tag = kpa_xstrdup(colon + 1);
}

/* From the layout to the image's config and layer descriptor. */
static int read_image(const image *img, const char *tag, json_object **man_out,
                      json_object **config, descriptor *layer, kpa_error *err)
{
        _cleanup_free_ char *text = NULL;
        size_t len;
        _cleanup_(json_object_putp) json_object *layout = NULL, *index = NULL, *man = NULL;
        int q = read_small_file(img, "oci-layout", &text, &len, err);
        if (q < 0 || (q = parse_json(img, "oci-layout", text, len, &layout, err)) < 0)
                return q;
        if (!field(img, "oci-layout", layout, "imageLayoutVersion", json_type_string, err))
                return -EINVAL;
        free(TAKE_PTR(text));
        if ((q = read_small_file(img, "index.json", &text, &len, err)) < 0 ||
            (q = parse_json(img, "index.json", text, len, &index, err)) < 0)
                return q;
        descriptor md;
        if ((q = pick_image(img, index, tag, &md, err)) < 0 ||
            (q = read_json_blob(img, "image manifest", &md, &man, err)) < 0)
                return q;
        json_object *cd = field(img, "image manifest", man, "config", json_type_object, err);
        json_object *layers =
                cd ? field(img, "image manifest", man, "layers", json_type_array, err) : NULL;
        if (!layers)
                return -EINVAL;
        descriptor d;
        if ((q = read_descriptor(img, "image manifest: config", cd, &d, err)) < 0)
                return q;
        if (!streq(d.media_type, MT_CONFIG))
                return kpa_error_set(err, EINVAL, "%s: image manifest: config is a \"%s\", not %s",
                                     img->name, d.media_type, MT_CONFIG);
        if (json_object_array_length(layers) != 1)
                return kpa_error_set(err, EINVAL,
                                     "%s: image manifest: %zu layers (a KPA image has one)",
                                     img->name, json_object_array_length(layers));
        if ((q = read_json_blob(img, "image config", &d, config, err)) < 0)
                return q;
        q = read_descriptor(img, "image manifest: layers[0]", json_object_array_get_idx(layers, 0),
                            layer, err);
        if (q < 0)
                return q;
        if (!streq(layer->media_type, MT_LAYER_TAR) && !streq(layer->media_type, MT_LAYER_GZIP) &&
            !streq(layer->media_type, MT_LAYER_ZSTD))
                return kpa_error_set(err, EINVAL,
                                     "%s: image manifest: layers[0] is a \"%s\" (a tar layer, "
                                     "plain, gzip or zstd, expected)",
                                     img->name, layer->media_type);
        *man_out = TAKE_PTR(man); /* LAYER's strings point into it */
        return 0;
}

int kpa_store_install_oci(kpa_store *store, const char *ref, const kpa_install_options *opts,
                          kpa_install_result *result, kpa_error *err)
{
        kpa_install_options full;
        kpa_package_limits limits;
        int q = install_options_in(opts, &full, &limits, err);
        if (q < 0)
                return q;
        opts = &full;
        _cleanup_free_ char *dir = NULL, *tag = NULL;
        split_ref(ref, &dir, &tag);
        _cleanup_free_ char *name = kpa_xasprintf("oci:%s", ref);
        _cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return kpa_error_set_errno(err, errno, "%s: %s", name, dir);
        image img = {.name = name, .dirfd = dirfd, .limits = opts->limits};
        _cleanup_(json_object_putp) json_object *man = NULL, *config = NULL;
        descriptor layer;
        q = read_image(&img, tag, &man, &config, &layer, err);
        if (q < 0)
                return q;
        _cleanup_(kpa_labels_clear) kpa_labels labels = {0};
        if ((q = read_labels(&img, config, &labels, err)) < 0)
                return q;
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        if (kpa_manifest_parse(labels.raw, labels.raw_len, 0, &m, err) < 0)
                return kpa_error_prefix(err, "%s: label %s", name, KPA_OCI_LABEL_MANIFEST);
        const char *diff_id;
        if ((q = read_diff_id(&img, config, &diff_id, err)) < 0)
                return q;
        _cleanup_close_ int layer_fd = open_blob(&img, &layer, err);
        if (layer_fd < 0)
                return layer_fd;
        /* the package stream: an unnamed file on the store's disk, which
         * the files go to anyway (memory only where O_TMPFILE is not there) */
        _cleanup_close_ int stream =
                openat(store->root_fd, ".staging", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (stream < 0)
                stream = memfd_create("kpa-oci-package", MFD_CLOEXEC);
        if (stream < 0)
                return kpa_error_set_errno(err, errno, "%s: a file for the package stream", name);
        q = rebuild_package(&img, &layer, diff_id, layer_fd, m->application.id, &labels, stream,
                            err);
        if (q < 0)
                return q;
        if (lseek(stream, 0, SEEK_SET) < 0)
                return kpa_error_set_errno(err, errno, "%s: package stream", name);
        return store_install_fd(store, stream, name, opts, result, err);
}
