/* oci-image.c: KPA packages as OCI image layouts (kpa/oci-image.h), the
 * writing side (kpa-pack --oci-image): the package file, read and checked
 * through archive-read.c, becomes one deterministic layer, a config, an
 * image manifest and index.json. Reading an image back is
 * oci-image-read.c's; the helpers both use are here (oci-image.h). */
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
#include "util.h"

#define EPOCH_TEXT "1970-01-01T00:00:00Z"
#define IMAGE_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* the base: empty directories an engine mounts over or a program expects */
static const char *const base_dirs[] = {"dev", "etc", "proc", "run", "sys", "tmp"};

void oci_archive_write_freep(struct archive **a)
{
        if (*a)
                archive_write_free(*a);
}

void oci_archive_read_freep(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}

void oci_entry_freep(struct archive_entry **e)
{
        if (*e)
                archive_entry_free(*e);
}

int oci_archive_fail(struct archive *a, const char *what, kpa_error *err)
{
        int code = archive_errno(a) > 0 ? archive_errno(a) : EIO;
        const char *msg = archive_error_string(a);
        return kpa_error_set(err, code, "%s: %s", what, msg ? msg : strerror(code));
}

char *oci_b64_encode(const char *data, size_t n)
{
        char *out = kpa_xmalloc(BASE64_ENCODE_RAW_LENGTH(n) + 1);
        base64_encode_raw(out, n, (const uint8_t *)data);
        out[BASE64_ENCODE_RAW_LENGTH(n)] = '\0';
        return out;
}

void oci_sha256_text(const void *data, size_t len, char digest[KPA_OCI_DIGEST_LEN + 1])
{
        kpa_sha256 h;
        char hex[65];
        kpa_sha256_init(&h);
        kpa_sha256_update(&h, data, len);
        kpa_sha256_final_hex(&h, hex);
        snprintf(digest, KPA_OCI_DIGEST_LEN + 1, "sha256:%s", hex);
}

int oci_write_all_data(struct archive *a, const char *data, size_t len, const char *what,
                       kpa_error *err)
{
        while (len > 0) {
                la_ssize_t n = archive_write_data(a, data, len);
                if (n <= 0)
                        return oci_archive_fail(a, what, err);
                data += n;
                len -= (size_t)n;
        }
        return 0;
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
        char *path; /* in the layer: APP_ID/bin/app, tmp */
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
                int q = oci_write_all_data(a, buf, (size_t)r, what, err);
                if (q < 0)
                        return q;
                offset += r;
                size -= (uint64_t)r;
        }
        return 0;
}

static int write_layer_tar(collector *c, int tar_fd, kpa_error *err)
{
        _cleanup_(oci_archive_write_freep) struct archive *a = archive_write_new();
        if (!a)
                return kpa_error_set(err, ENOMEM, "layer: out of memory");
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
            archive_write_add_filter_none(a) != ARCHIVE_OK ||
            archive_write_open_fd(a, tar_fd) != ARCHIVE_OK)
                return oci_archive_fail(a, "layer", err);
        for (size_t i = 0; i < c->n_members; i++) {
                const member *m = &c->members[i];
                _cleanup_(oci_entry_freep) struct archive_entry *e = archive_entry_new();
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
                        return oci_archive_fail(a, m->path, err);
                int q = 0;
                if (m->mem)
                        q = oci_write_all_data(a, m->mem, m->size, m->path, err);
                else if (!m->dir)
                        q = copy_fd_data(a, c->data_fd, m->offset, m->size, m->path, err);
                if (q < 0)
                        return q;
        }
        if (archive_write_close(a) != ARCHIVE_OK)
                return oci_archive_fail(a, "layer", err);
        return 0;
}

/* gzip the tar in TAR_FD into OUT_FD: no name, no time stamp. */
static int gzip_layer(int tar_fd, uint64_t tar_size, int out_fd, kpa_error *err)
{
        _cleanup_(oci_archive_write_freep) struct archive *a = archive_write_new();
        _cleanup_(oci_entry_freep) struct archive_entry *e = archive_entry_new();
        if (!a || !e)
                return kpa_error_set(err, ENOMEM, "layer: out of memory");
        if (archive_write_set_format_raw(a) != ARCHIVE_OK ||
            archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
            archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK)
                return oci_archive_fail(a, "layer", err);
        archive_write_set_bytes_in_last_block(a, 1);
        if (archive_write_open_fd(a, out_fd) != ARCHIVE_OK)
                return oci_archive_fail(a, "layer", err);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_size(e, (la_int64_t)tar_size);
        if (archive_write_header(a, e) != ARCHIVE_OK)
                return oci_archive_fail(a, "layer", err);
        int q = copy_fd_data(a, tar_fd, 0, tar_size, "layer", err);
        if (q < 0)
                return q;
        if (archive_write_close(a) != ARCHIVE_OK)
                return oci_archive_fail(a, "layer", err);
        return 0;
}

static int write_file_at(int dirfd, const char *name, const char *data, size_t len, kpa_error *err)
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
        oci_sha256_text(text, len, digest);
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
                {"x86_64", "amd64"}, {"aarch64", "arm64"},   {"i686", "386"},
                {"i386", "386"},     {"armv7l", "arm"},      {"ppc64le", "ppc64le"},
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
        _cleanup_free_ char *raw64 = oci_b64_encode(c->raw, c->raw_len);
        json_object_object_add(labels, KPA_OCI_LABEL_MANIFEST, json_object_new_string(raw64));
        if (c->sig) {
                _cleanup_free_ char *sig64 = oci_b64_encode(c->sig, c->sig_len);
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
        _cleanup_free_ char *by = kpa_xasprintf("kpa-pack --oci-image (%s %s)", m->application.id,
                                                m->application.version);
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
        _cleanup_close_ int gz_fd =
                openat(dirfd, "blobs/sha256/layer.tmp",
                       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
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

void kpa_oci_image_result_init(kpa_oci_image_result *result)
{
        memset(result, 0, sizeof(*result));
        result->struct_size = sizeof(*result);
}

static int oci_image_write(const char *package, const char *dir, const char *tag,
                           kpa_oci_image_result *result, kpa_error *err);

int kpa_oci_image_write(const char *package, const char *dir, const char *tag,
                        kpa_oci_image_result *result, kpa_error *err)
{
        kpa_oci_image_result full;
        int q;
        if (result && (q = kpa_struct_check(result, sizeof(full), "kpa_oci_image_result", err)) < 0)
                return q;
        kpa_oci_image_result_init(&full);
        q = oci_image_write(package, dir, tag, &full, err);
        if (result)
                kpa_struct_out(result, &full);
        return q;
}

static int oci_image_write(const char *package, const char *dir, const char *tag,
                           kpa_oci_image_result *result, kpa_error *err)
{
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
        if (dfd < 0 || fchmod(dfd, 0755) < 0) /* mkdtemp() makes it 0700 */
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
