/* oci-image.c: KPA packages as OCI image layouts (kpa/oci-image.h). It owns
 * writing an image from a package file (kpa-pack --oci-image) and reading
 * one back (kpa-install oci:DIR): the layout's JSON, the blobs and their
 * digests, and the layer's tar. It checks nothing of the package itself: the
 * package file is read through archive-read.c, and an image becomes the
 * package stream (manifest.json, manifest.sig, the components) that
 * install.c installs through the one path every .kpa takes, digests and
 * signature included. */
#include "config.h"

#include <fcntl.h>
#include <libgen.h>
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
#include "store-internal.h"
#include "util.h"

#define MT_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_LAYER_GZIP MT_LAYER_TAR "+gzip"
#define MT_LAYER_ZSTD MT_LAYER_TAR "+zstd"
#define ANN_REF_NAME "org.opencontainers.image.ref.name"
#define JSON_MAX (4u << 20) /* index.json, an image manifest, a config */
#define EPOCH_TEXT "1970-01-01T00:00:00Z"
#define IMAGE_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* the base: empty directories an engine mounts over or a program expects */
static const char *const base_dirs[] = {"dev", "etc", "proc", "run", "sys", "tmp"};

static void archive_write_freep(struct archive **a)
{
        if (*a)
                archive_write_free(*a);
}

static void archive_read_freep(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}

static void entry_freep(struct archive_entry **e)
{
        if (*e)
                archive_entry_free(*e);
}

static int archive_fail(struct archive *a, const char *what, kpa_error *err)
{
        int code = archive_errno(a) > 0 ? archive_errno(a) : EIO;
        const char *msg = archive_error_string(a);
        return kpa_error_set(err, code, "%s: %s", what, msg ? msg : strerror(code));
}

static char *b64_encode(const char *data, size_t n)
{
        char *out = kpa_xmalloc(BASE64_ENCODE_RAW_LENGTH(n) + 1);
        base64_encode_raw(out, n, (const uint8_t *)data);
        out[BASE64_ENCODE_RAW_LENGTH(n)] = '\0';
        return out;
}

/* Canonical base64 only: what b64_encode() gives for the decoded bytes. */
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
        _cleanup_free_ char *again = b64_encode(buf, len);
        if (!streq(again, text))
                return -EINVAL;
        buf[len] = '\0';
        *out_len = len;
        *out = TAKE_PTR(buf);
        return 0;
}

static void sha256_text(const void *data, size_t len, char digest[KPA_OCI_DIGEST_LEN + 1])
{
        kpa_sha256 h;
        char hex[65];
        kpa_sha256_init(&h);
        kpa_sha256_update(&h, data, len);
        kpa_sha256_final_hex(&h, hex);
        snprintf(digest, KPA_OCI_DIGEST_LEN + 1, "sha256:%s", hex);
}

static int fd_sha256(int fd, char digest[KPA_OCI_DIGEST_LEN + 1], uint64_t *size, const char *what,
                     kpa_error *err)
{
        kpa_sha256 h;
        char hex[65], buf[65536];
        uint64_t n = 0;
        kpa_sha256_init(&h);
        for (off_t off = 0;;) {
                ssize_t r = pread(fd, buf, sizeof(buf), off);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return kpa_error_set_errno(err, errno, "%s: read", what);
                if (r == 0)
                        break;
                kpa_sha256_update(&h, buf, (size_t)r);
                off += r;
                n += (uint64_t)r;
        }
        kpa_sha256_final_hex(&h, hex);
        snprintf(digest, KPA_OCI_DIGEST_LEN + 1, "sha256:%s", hex);
        *size = n;
        return 0;
}

/* ---- Writing: the package file, collected ---- */

typedef struct member {
        char *path;      /* in the layer: APP_ID/bin/app, tmp */
        bool dir;
        mode_t perm;
        const char *mem; /* bytes in memory (manifest.json, manifest.sig), or */
        off_t offset;    /* ... at OFFSET in the collector's data fd */
        uint64_t size;
} member;

typedef struct collector {
        int data_fd; /* every component's bytes, one after the other */
        char *raw;
        size_t raw_len;
        char *sig;
        size_t sig_len;
        member *members;
        size_t n_members;
        off_t next_offset;
} collector;

static void collector_clear(collector *c)
{
        closep(&c->data_fd);
        free(c->raw);
        free(c->sig);
        for (size_t i = 0; i < c->n_members; i++)
                free(c->members[i].path);
        free(c->members);
}

static member *add_member(collector *c, char *path)
{
        c->members = kpa_xrealloc(c->members, (c->n_members + 1) * sizeof(*c->members));
        member *m = &c->members[c->n_members++];
        *m = (member){.path = path, .perm = 0644};
        return m;
}

static int on_signature(void *userdata, const char *raw, size_t len, const char *sig,
                        size_t sig_len, kpa_error *err)
{
        collector *c = userdata;
        (void)err;
        free(c->raw);
        c->raw = kpa_xstrndup(raw, len);
        c->raw_len = len;
        if (sig) {
                c->sig = kpa_xstrndup(sig, sig_len);
                c->sig_len = sig_len;
        }
        return 0;
}

static int on_manifest(void *userdata, const kpa_manifest *m, const char *raw, size_t len,
                       kpa_error *err)
{
        (void)m;
        collector *c = userdata;
        if (!c->raw)
                return on_signature(userdata, raw, len, NULL, 0, err);
        return 0;
}

static int on_open(void *userdata, const kpa_component *comp, int *out_fd, kpa_error *err)
{
        collector *c = userdata;
        (void)comp;
        c->next_offset = lseek(c->data_fd, 0, SEEK_END);
        int fd = fcntl(c->data_fd, F_DUPFD_CLOEXEC, 3);
        if (c->next_offset < 0 || fd < 0)
                return kpa_error_set_errno(err, errno, "%s: temporary file", comp->install_path);
        *out_fd = fd;
        return 0;
}

static int on_close(void *userdata, const kpa_component *comp, int fd, uint64_t size,
                    kpa_error *err)
{
        collector *c = userdata;
        (void)fd, (void)err;
        member *m = add_member(c, kpa_xstrdup(comp->install_path));
        m->perm = comp->type == KPA_COMPONENT_BIN ? 0755 : 0644;
        m->offset = c->next_offset;
        m->size = size;
        return 0;
}

static int member_cmp(const void *a, const void *b)
{
        return strcmp(((const member *)a)->path, ((const member *)b)->path);
}

/* The layer's members, sorted: the base, APP_ID and its directories,
 * manifest.json, manifest.sig, the components (their paths prefixed). */
static void layer_members(collector *c, const char *app_id)
{
        size_t n_components = c->n_members;
        for (size_t i = 0; i < n_components; i++) {
                char *p = c->members[i].path;
                c->members[i].path = kpa_xasprintf("%s/%s", app_id, p);
                for (char *slash = strchr(p, '/'); slash; slash = strchr(slash + 1, '/')) {
                        member *d = add_member(
                                c, kpa_xasprintf("%s/%.*s", app_id, (int)(slash - p), p));
                        d->dir = true, d->perm = 0755;
                }
                free(p);
        }
        for (size_t i = 0; i < sizeof(base_dirs) / sizeof(*base_dirs); i++) {
                member *d = add_member(c, kpa_xstrdup(base_dirs[i]));
                d->dir = true, d->perm = streq(base_dirs[i], "tmp") ? 01777 : 0755;
        }
        member *d = add_member(c, kpa_xstrdup(app_id));
        d->dir = true, d->perm = 0755;
        member *m = add_member(c, kpa_xasprintf("%s/manifest.json", app_id));
        m->mem = c->raw, m->size = c->raw_len;
        if (c->sig) {
                m = add_member(c, kpa_xasprintf("%s/manifest.sig", app_id));
                m->mem = c->sig, m->size = c->sig_len;
        }
        qsort(c->members, c->n_members, sizeof(*c->members), member_cmp);
        size_t out = 0; /* one entry per directory */
        for (size_t i = 0; i < c->n_members; i++) {
                if (out > 0 && streq(c->members[out - 1].path, c->members[i].path)) {
                        free(c->members[i].path);
                        continue;
                }
                c->members[out++] = c->members[i];
        }
        c->n_members = out;
}

static int write_all_data(struct archive *a, const char *data, size_t len, const char *what,
                          kpa_error *err)
{
        while (len > 0) {
                la_ssize_t n = archive_write_data(a, data, len);
                if (n <= 0)
                        return archive_fail(a, what, err);
                data += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Copy SIZE bytes at OFFSET of FD into the archive entry being written. */
static int copy_fd_data(struct archive *a, int fd, off_t offset, uint64_t size, const char *what,
                        kpa_error *err)
{
        char buf[65536];
        while (size > 0) {
                ssize_t r = pread(fd, buf, size < sizeof(buf) ? size : sizeof(buf), offset);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return kpa_error_set_errno(err, r < 0 ? errno : EIO, "%s: read", what);
                int q = write_all_data(a, buf, (size_t)r, what, err);
                if (q < 0)
                        return q;
                offset += r;
                size -= (uint64_t)r;
        }
        return 0;
}

static int write_layer_tar(collector *c, int tar_fd, kpa_error *err)
{
        _cleanup_(archive_write_freep) struct archive *a = archive_write_new();
        if (!a)
                return kpa_error_set(err, ENOMEM, "layer: out of memory");
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_add_filter_none(a) != ARCHIVE_OK ||
            archive_write_open_fd(a, tar_fd) != ARCHIVE_OK)
                return archive_fail(a, "layer", err);
        for (size_t i = 0; i < c->n_members; i++) {
                const member *m = &c->members[i];
                _cleanup_(entry_freep) struct archive_entry *e = archive_entry_new();
                if (!e)
                        return kpa_error_set(err, ENOMEM, "layer: out of memory");
                archive_entry_set_pathname(e, m->path);
                archive_entry_set_filetype(e, m->dir ? AE_IFDIR : AE_IFREG);
                archive_entry_set_perm(e, m->perm);
                archive_entry_set_size(e, m->dir ? 0 : (la_int64_t)m->size);
                archive_entry_set_uid(e, 0);
                archive_entry_set_gid(e, 0);
                archive_entry_set_mtime(e, 0, 0);
                if (archive_write_header(a, e) != ARCHIVE_OK)
                        return archive_fail(a, m->path, err);
                int q = 0;
                if (m->mem)
                        q = write_all_data(a, m->mem, m->size, m->path, err);
                else if (!m->dir)
                        q = copy_fd_data(a, c->data_fd, m->offset, m->size, m->path, err);
                if (q < 0)
                        return q;
        }
        if (archive_write_close(a) != ARCHIVE_OK)
                return archive_fail(a, "layer", err);
        return 0;
}

/* gzip the tar in TAR_FD into OUT_FD: no name, no time stamp. */
static int gzip_layer(int tar_fd, uint64_t tar_size, int out_fd, kpa_error *err)
{
        _cleanup_(archive_write_freep) struct archive *a = archive_write_new();
        _cleanup_(entry_freep) struct archive_entry *e = archive_entry_new();
        if (!a || !e)
                return kpa_error_set(err, ENOMEM, "layer: out of memory");
        if (archive_write_set_format_raw(a) != ARCHIVE_OK ||
            archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
            archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK)
                return archive_fail(a, "layer", err);
        archive_write_set_bytes_in_last_block(a, 1);
        if (archive_write_open_fd(a, out_fd) != ARCHIVE_OK)
                return archive_fail(a, "layer", err);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, (la_int64_t)tar_size);
        if (archive_write_header(a, e) != ARCHIVE_OK)
                return archive_fail(a, "layer", err);
        int q = copy_fd_data(a, tar_fd, 0, tar_size, "layer", err);
        if (q < 0)
                return q;
        if (archive_write_close(a) != ARCHIVE_OK)
                return archive_fail(a, "layer", err);
        return 0;
}

static int write_file_at(int dirfd, const char *name, const char *data, size_t len,
                         kpa_error *err)
{
        _cleanup_close_ int fd =
                openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || kpa_write_all(fd, data, len) < 0)
                return kpa_error_set_errno(err, errno, "%s", name);
        return 0;
}

/* A JSON blob: its bytes, written under blobs/sha256/, and its descriptor. */
static json_object *write_json_blob(int dirfd, const char *media_type, json_object *o,
                                    kpa_error *err)
{
        const char *text = json_object_to_json_string_ext(
                o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        size_t len = strlen(text);
        char digest[KPA_OCI_DIGEST_LEN + 1];
        sha256_text(text, len, digest);
        _cleanup_free_ char *name = kpa_xasprintf("blobs/sha256/%s", digest + 7);
        if (write_file_at(dirfd, name, text, len, err) < 0)
                return NULL;
        json_object *d = json_object_new_object();
        json_object_object_add(d, "mediaType", json_object_new_string(media_type));
        json_object_object_add(d, "digest", json_object_new_string(digest));
        json_object_object_add(d, "size", json_object_new_int64((int64_t)len));
        return d;
}

static const char *oci_arch(const char *linux_arch)
{
        static const char *const map[][2] = {
                {"x86_64", "amd64"}, {"aarch64", "arm64"}, {"i686", "386"},
                {"i386", "386"},     {"armv7l", "arm"},    {"ppc64le", "ppc64le"},
                {"s390x", "s390x"},  {"riscv64", "riscv64"},
        };
        for (size_t i = 0; i < sizeof(map) / sizeof(*map); i++)
                if (streq(linux_arch, map[i][0]))
                        return map[i][1];
        return linux_arch;
}

static json_object *image_config(const collector *c, const kpa_manifest *m, const char *diff_id)
{
        json_object *cfg = json_object_new_object();
        json_object *env = json_object_new_array();
        json_object_array_add(env, json_object_new_string(IMAGE_PATH));
        const kpa_run_config *rc = kpa_manifest_primary_run_config(m);
        if (rc) {
                json_object *ep = json_object_new_array();
                _cleanup_free_ char *prog = kpa_xasprintf("/%s/%s", m->application.id, rc->path);
                json_object_array_add(ep, json_object_new_string(prog));
                for (size_t i = 0; i < rc->n_args; i++)
                        json_object_array_add(ep, json_object_new_string(rc->args[i]));
                for (size_t i = 0; i < rc->n_env; i++) {
                        _cleanup_free_ char *kv =
                                kpa_xasprintf("%s=%s", rc->env[i].name, rc->env[i].value);
                        json_object_array_add(env, json_object_new_string(kv));
                }
                json_object_object_add(cfg, "Entrypoint", ep);
        }
        json_object_object_add(cfg, "Env", env);
        json_object_object_add(cfg, "WorkingDir", json_object_new_string("/"));
        json_object *labels = json_object_new_object();
        _cleanup_free_ char *raw64 = b64_encode(c->raw, c->raw_len);
        json_object_object_add(labels, KPA_OCI_LABEL_MANIFEST, json_object_new_string(raw64));
        if (c->sig) {
                _cleanup_free_ char *sig64 = b64_encode(c->sig, c->sig_len);
                json_object_object_add(labels, KPA_OCI_LABEL_SIGNATURE,
                                       json_object_new_string(sig64));
        }
        json_object_object_add(labels, "org.opencontainers.image.title",
                               json_object_new_string(m->application.id));
        json_object_object_add(labels, "org.opencontainers.image.version",
                               json_object_new_string(m->application.version));
        json_object_object_add(cfg, "Labels", labels);

        json_object *o = json_object_new_object();
        json_object_object_add(o, "created", json_object_new_string(EPOCH_TEXT));
        json_object_object_add(o, "architecture",
                               json_object_new_string(oci_arch(kpa_manifest_linux_arch(m))));
        json_object_object_add(o, "os", json_object_new_string("linux"));
        json_object_object_add(o, "config", cfg);
        json_object *rootfs = json_object_new_object();
        json_object_object_add(rootfs, "type", json_object_new_string("layers"));
        json_object *ids = json_object_new_array();
        json_object_array_add(ids, json_object_new_string(diff_id));
        json_object_object_add(rootfs, "diff_ids", ids);
        json_object_object_add(o, "rootfs", rootfs);
        json_object *hist = json_object_new_object();
        json_object_object_add(hist, "created", json_object_new_string(EPOCH_TEXT));
        _cleanup_free_ char *by = kpa_xasprintf("kpa-pack --oci-image (%s %s)",
                                                m->application.id, m->application.version);
        json_object_object_add(hist, "created_by", json_object_new_string(by));
        json_object *history = json_object_new_array();
        json_object_array_add(history, hist);
        json_object_object_add(o, "history", history);
        return o;
}

static bool tag_char(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
               ch == '.' || ch == '_' || ch == '-';
}

static int pick_tag(const char *tag, const kpa_manifest *m, char out[129], kpa_error *err)
{
        if (tag) {
                size_t len = strlen(tag);
                bool ok = len > 0 && len <= 128 && tag[0] != '.' && tag[0] != '-';
                for (size_t i = 0; ok && i < len; i++)
                        ok = tag_char(tag[i]);
                if (!ok)
                        return kpa_error_set(err, EINVAL,
                                             "tag \"%s\": 1 to 128 letters, digits, '.', '_' or "
                                             "'-', not starting with '.' or '-'",
                                             tag);
                snprintf(out, 129, "%s", tag);
                return 0;
        }
        snprintf(out, 129, "%s", m->application.version);
        for (char *p = out; *p; p++)
                if (!tag_char(*p))
                        *p = '_';
        if (out[0] == '.' || out[0] == '-')
                out[0] = '_';
        return 0;
}

/* The layout, written into the directory DIRFD (empty). */
static int write_layout(int dirfd, collector *c, const kpa_manifest *m, const char *tag,
                        kpa_oci_image_result *result, kpa_error *err)
{
        if (mkdirat(dirfd, "blobs", 0755) < 0 || mkdirat(dirfd, "blobs/sha256", 0755) < 0)
                return kpa_error_set_errno(err, errno, "blobs/sha256");
        _cleanup_close_ int tar_fd = memfd_create("kpa-oci-layer", MFD_CLOEXEC);
        if (tar_fd < 0)
                return kpa_error_set_errno(err, errno, "memfd_create");
        int q = write_layer_tar(c, tar_fd, err);
        if (q < 0)
                return q;
        char diff_id[KPA_OCI_DIGEST_LEN + 1], layer_digest[KPA_OCI_DIGEST_LEN + 1];
        uint64_t tar_size, layer_size;
        if ((q = fd_sha256(tar_fd, diff_id, &tar_size, "layer", err)) < 0)
                return q;
        _cleanup_close_ int gz_fd = openat(dirfd, "blobs/sha256/layer.tmp",
                                           O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                           0644);
        if (gz_fd < 0)
                return kpa_error_set_errno(err, errno, "blobs/sha256/layer.tmp");
        if ((q = gzip_layer(tar_fd, tar_size, gz_fd, err)) < 0 ||
            (q = fd_sha256(gz_fd, layer_digest, &layer_size, "layer", err)) < 0)
                return q;
        _cleanup_free_ char *layer_name = kpa_xasprintf("blobs/sha256/%s", layer_digest + 7);
        if (renameat(dirfd, "blobs/sha256/layer.tmp", dirfd, layer_name) < 0)
                return kpa_error_set_errno(err, errno, "%s", layer_name);

        _cleanup_(json_object_putp) json_object *config = image_config(c, m, diff_id);
        json_object *config_desc = write_json_blob(dirfd, MT_CONFIG, config, err);
        if (!config_desc)
                return -err->code;
        _cleanup_(json_object_putp) json_object *man = json_object_new_object();
        json_object_object_add(man, "schemaVersion", json_object_new_int(2));
        json_object_object_add(man, "mediaType", json_object_new_string(MT_MANIFEST));
        json_object_object_add(man, "config", config_desc);
        json_object *layer = json_object_new_object();
        json_object_object_add(layer, "mediaType", json_object_new_string(MT_LAYER_GZIP));
        json_object_object_add(layer, "digest", json_object_new_string(layer_digest));
        json_object_object_add(layer, "size", json_object_new_int64((int64_t)layer_size));
        json_object *layers = json_object_new_array();
        json_object_array_add(layers, layer);
        json_object_object_add(man, "layers", layers);
        json_object *ann = json_object_new_object();
        json_object_object_add(ann, "org.opencontainers.image.title",
                               json_object_new_string(m->application.id));
        json_object_object_add(ann, "org.opencontainers.image.version",
                               json_object_new_string(m->application.version));
        json_object_object_add(man, "annotations", ann);
        json_object *man_desc = write_json_blob(dirfd, MT_MANIFEST, man, err);
        if (!man_desc)
                return -err->code;
        snprintf(result->digest, sizeof(result->digest), "%s",
                 json_object_get_string(json_object_object_get(man_desc, "digest")));
        result->layer_size = layer_size;

        _cleanup_(json_object_putp) json_object *index = json_object_new_object();
        json_object_object_add(index, "schemaVersion", json_object_new_int(2));
        json_object_object_add(index, "mediaType", json_object_new_string(MT_INDEX));
        json_object *platform = json_object_new_object();
        json_object_object_add(platform, "architecture",
                               json_object_new_string(oci_arch(kpa_manifest_linux_arch(m))));
        json_object_object_add(platform, "os", json_object_new_string("linux"));
        json_object_object_add(man_desc, "platform", platform);
        json_object *ref = json_object_new_object();
        json_object_object_add(ref, ANN_REF_NAME, json_object_new_string(tag));
        json_object_object_add(man_desc, "annotations", ref);
        json_object *manifests = json_object_new_array();
        json_object_array_add(manifests, man_desc);
        json_object_object_add(index, "manifests", manifests);
        const char *text = json_object_to_json_string_ext(
                index, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        if ((q = write_file_at(dirfd, "oci-layout", layout, sizeof(layout) - 1, err)) < 0 ||
            (q = write_file_at(dirfd, "index.json", text, strlen(text), err)) < 0)
                return q;
        return 0;
}

/* DIR may be missing or an empty directory (rename(2) replaces that). */
static int check_target(const char *dir, kpa_error *err)
{
        struct stat st;
        if (lstat(dir, &st) < 0)
                return errno == ENOENT ? 0 : kpa_error_set_errno(err, errno, "%s", dir);
        if (!S_ISDIR(st.st_mode))
                return kpa_error_set(err, EEXIST, "%s: exists and is not a directory", dir);
        _cleanup_closedir_ DIR *d = opendir(dir);
        if (!d)
                return kpa_error_set_errno(err, errno, "%s", dir);
        struct dirent *de;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        return kpa_error_set(err, ENOTEMPTY,
                                             "%s: exists and is not empty (an image is written "
                                             "into a new directory)",
                                             dir);
        return 0;
}

int kpa_oci_image_write(const char *package, const char *dir, const char *tag,
                        kpa_oci_image_result *result, kpa_error *err)
{
        kpa_oci_image_result ignored;
        if (!result)
                result = &ignored;
        memset(result, 0, sizeof(*result));
        int q = check_target(dir, err);
        if (q < 0)
                return q;
        _cleanup_close_ int pkg_fd = open(package, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (pkg_fd < 0)
                return kpa_error_set_errno(err, errno, "%s", package);
        _cleanup_(collector_clear) collector c = {.data_fd = -1};
        c.data_fd = memfd_create("kpa-oci-data", MFD_CLOEXEC);
        if (c.data_fd < 0)
                return kpa_error_set_errno(err, errno, "memfd_create");
        kpa_package_sink sink = {
                .manifest = on_manifest,
                .open = on_open,
                .close = on_close,
                .signature = on_signature,
                .userdata = &c,
        };
        kpa_package_limits limits;
        kpa_package_limits_init(&limits);
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        q = kpa_package_read(pkg_fd, package, &limits, &sink, &m, NULL, err);
        if (q < 0)
                return q;
        if ((q = pick_tag(tag, m, result->tag, err)) < 0)
                return q;
        result->signed_package = c.sig != NULL;
        layer_members(&c, m->application.id);

        _cleanup_free_ char *target = kpa_xstrdup(dir);
        for (size_t len = strlen(target); len > 1 && target[len - 1] == '/'; len--)
                target[len - 1] = '\0'; /* "DIR/" */
        _cleanup_free_ char *tmp = kpa_xasprintf("%s.tmp-XXXXXX", target);
        if (!mkdtemp(tmp))
                return kpa_error_set_errno(err, errno, "%s: cannot make a directory beside it",
                                           dir);
        _cleanup_close_ int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                q = kpa_error_set_errno(err, errno, "%s", tmp);
        else if (fchmod(dfd, 0755) < 0)
                q = kpa_error_set_errno(err, errno, "%s", tmp);
        else
                q = write_layout(dfd, &c, m, result->tag, result, err);
        if (q < 0)
                kpa_error_prefix(err, "%s", dir);
        else if (rename(tmp, target) < 0)
                q = errno == ENOTEMPTY || errno == EEXIST
                            ? kpa_error_set(err, ENOTEMPTY, "%s: exists and is not empty", dir)
                            : kpa_error_set_errno(err, errno, "%s", dir);
        if (q < 0)
                (void)kpa_rm_rf_at(AT_FDCWD, tmp);
        return q;
}

/* ---- Reading: an image layout, checked, back into a package stream ---- */

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
                              key, v ? "of another type" : "missing",
                              json_type_to_name(type));
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
                return kpa_error_set(err, EFBIG, "%s: %s: %lld bytes (at most %u)", img->name,
                                     what, (long long)d->size, JSON_MAX);
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
        sha256_text(text, len, have);
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
        _cleanup_(entry_freep) struct archive_entry *e = archive_entry_new();
        if (!e)
                return kpa_error_set(err, ENOMEM, "out of memory");
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)size);
        archive_entry_set_mtime(e, 0, 0);
        if (archive_write_header(out, e) != ARCHIVE_OK)
                return archive_fail(out, name, err);
        return 0;
}

/* The layer's manifest.json or manifest.sig: must be the label's bytes. */
static int check_same(rebuild *rb, struct archive *in, const char *rel, const char *want,
                      size_t want_len, uint64_t size, kpa_error *err)
{
        const char *label = streq(rel, "manifest.json") ? KPA_OCI_LABEL_MANIFEST
                                                           : KPA_OCI_LABEL_SIGNATURE;
        if (!want)
                return kpa_error_set(err, EBADMSG,
                                     "%s: the layer has %s/%s but the config has no label %s",
                                     rb->img->name, rb->app_id, rel, label);
        bool same = size == want_len;
        _cleanup_free_ char *buf = same ? kpa_xmalloc(want_len + 1) : NULL;
        if (same) {
                la_ssize_t n = archive_read_data(in, buf, want_len + 1);
                if (n < 0)
                        return archive_fail(in, rb->img->name, err);
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
                        return archive_fail(in, rb->img->name, err);
                if (n == 0)
                        break;
                done += (uint64_t)n;
                if (done > size)
                        break;
                if ((q = write_all_data(rb->out, buf, (size_t)n, rel, err)) < 0)
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

/* Read the layer in FD (its descriptor D), checking its digest as it
 * streams, into the package stream written to OUT_FD. */
static int rebuild_package(const image *img, const descriptor *d, int fd, const char *app_id,
                           const kpa_labels *labels, int out_fd, kpa_error *err)
{
        _cleanup_(archive_write_freep) struct archive *out = archive_write_new();
        _cleanup_(archive_read_freep) struct archive *in = archive_read_new();
        if (!out || !in)
                return kpa_error_set(err, ENOMEM, "out of memory");
        if (archive_write_set_format_pax_restricted(out) != ARCHIVE_OK ||
            archive_write_add_filter_none(out) != ARCHIVE_OK ||
            archive_write_open_fd(out, out_fd) != ARCHIVE_OK)
                return archive_fail(out, img->name, err);
        rebuild rb = {.img = img, .app_id = app_id, .labels = labels, .out = out,
                      .layer_size = (uint64_t)d->size};
        int q = stream_header(out, "manifest.json", labels->raw_len, err);
        if (q >= 0)
                q = write_all_data(out, labels->raw, labels->raw_len, img->name, err);
        if (q >= 0 && labels->sig) {
                q = stream_header(out, "manifest.sig", labels->sig_len, err);
                if (q >= 0)
                        q = write_all_data(out, labels->sig, labels->sig_len, img->name, err);
        }
        if (q < 0)
                return q;

        layer_src *src = kpa_xcalloc(1, sizeof(*src));
        _cleanup_free_ layer_src *src_owned = src;
        src->fd = fd;
        kpa_sha256_init(&src->sha);
        if (streq(d->media_type, MT_LAYER_GZIP))
                archive_read_support_filter_gzip(in);
        else if (streq(d->media_type, MT_LAYER_ZSTD))
                archive_read_support_filter_zstd(in);
        archive_read_support_format_tar(in);
        struct archive_entry *e;
        int r = ARCHIVE_EOF;
        if (archive_read_open(in, src, NULL, layer_read, NULL) != ARCHIVE_OK)
                q = kpa_error_set(err, EBADMSG, "%s: layer %s: %s", img->name, d->digest,
                                  archive_error_string(in) ?: "not a tar archive");
        while (q >= 0 && (r = archive_read_next_header(in, &e)) == ARCHIVE_OK)
                if ((q = layer_member(&rb, in, e, err)) < 0)
                        break;
        if (q >= 0 && r != ARCHIVE_EOF)
                q = kpa_error_set(err, EBADMSG, "%s: layer %s: %s", img->name, d->digest,
                                  archive_error_string(in) ?: "not a tar archive");
        /* the digest covers the whole blob: read what the tar did not, and
         * tell a tampered blob as such, whatever it made the reader say */
        const void *rest;
        la_ssize_t n;
        while ((n = layer_read(in, src, &rest)) > 0)
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
        if (!rb.saw_manifest)
                return kpa_error_set(err, EBADMSG, "%s: the layer has no %s/manifest.json",
                                     img->name, app_id);
        if (labels->sig && !rb.saw_sig)
                return kpa_error_set(err, EBADMSG,
                                     "%s: the config has the label %s but the layer has no "
                                     "%s/manifest.sig",
                                     img->name, KPA_OCI_LABEL_SIGNATURE, app_id);
        if (archive_write_close(out) != ARCHIVE_OK)
                return archive_fail(out, img->name, err);
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
        json_object *layers = cd ? field(img, "image manifest", man, "layers", json_type_array,
                                         err)
                                 : NULL;
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
        q = read_descriptor(img, "image manifest: layers[0]",
                            json_object_array_get_idx(layers, 0), layer, err);
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
        kpa_install_options defaults;
        if (!opts) {
                kpa_install_options_init(&defaults);
                opts = &defaults;
        }
        _cleanup_free_ char *dir = NULL, *tag = NULL;
        split_ref(ref, &dir, &tag);
        _cleanup_free_ char *name = kpa_xasprintf("oci:%s", ref);
        _cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return kpa_error_set_errno(err, errno, "%s: %s", name, dir);
        image img = {.name = name, .dirfd = dirfd, .limits = &opts->limits};
        _cleanup_(json_object_putp) json_object *man = NULL, *config = NULL;
        descriptor layer;
        int q = read_image(&img, tag, &man, &config, &layer, err);
        if (q < 0)
                return q;
        _cleanup_(kpa_labels_clear) kpa_labels labels = {0};
        if ((q = read_labels(&img, config, &labels, err)) < 0)
                return q;
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        if ((q = kpa_manifest_parse(labels.raw, labels.raw_len, 0, &m, err)) < 0)
                return kpa_error_prefix(err, "%s: label %s", name, KPA_OCI_LABEL_MANIFEST);
        _cleanup_close_ int layer_fd = open_blob(&img, &layer, err);
        if (layer_fd < 0)
                return layer_fd;
        _cleanup_close_ int stream = memfd_create("kpa-oci-package", MFD_CLOEXEC);
        if (stream < 0)
                return kpa_error_set_errno(err, errno, "memfd_create");
        q = rebuild_package(&img, &layer, layer_fd, m->application.id, &labels, stream, err);
        if (q < 0)
                return q;
        if (lseek(stream, 0, SEEK_SET) < 0)
                return kpa_error_set_errno(err, errno, "%s: package stream", name);
        return store_install_fd(store, stream, name, opts, result, err);
}
