/* archive-read.c: the one streaming pass over a package that install and
 * inspect share. It owns every check of the archive's content: member paths,
 * member types and modes, manifest.json first, the signature manifest.sig
 * right after it or nowhere, the exact set of components, their digests, and
 * the limits that stop decompression bombs. Where the bytes go, and whether
 * the signature is good, is the sink's business (see archive-read.h; sign.c
 * checks signatures). */
#include "config.h"

#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "archive-read.h"
#include "kpa/digest.h"
#include "util.h"

void kpa_package_limits_init(kpa_package_limits *limits)
{
        limits->struct_size = sizeof(*limits);
        limits->max_total_bytes = 4ull << 30; /* 4 GiB */
        limits->max_members = 100000;
        limits->max_path_len = 1024;
        limits->max_ratio = 100;
        limits->ratio_min_bytes = 16ull << 20; /* 16 MiB */
}

static void archive_freep(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}

typedef struct locale_data {
        const kpa_component *component;
        char *data;
        size_t len;
} locale_data;

typedef struct reader {
        struct archive *a;
        const char *path;
        const kpa_package_limits *limits;
        const kpa_package_sink *sink;
        kpa_manifest *manifest;
        bool *seen;
        uint64_t file_size; /* 0 when not a regular file */
        kpa_package_stats stats;
        locale_data *locales;
        size_t n_locales;
        struct archive_entry *pending; /* read after manifest.json, not yet handled */
        bool at_eof;                   /* ... or the archive ended there */
} reader;

static void reader_done(reader *r)
{
        archive_freep(&r->a);
        kpa_manifest_free(r->manifest);
        free(r->seen);
        for (size_t i = 0; i < r->n_locales; i++)
                free(r->locales[i].data);
        free(r->locales);
}

char *kpa_member_path_normalize(const char *path, size_t max_len, kpa_error *err)
{
        if (!path || !*path)
                return kpa_error_set(err, EINVAL, "member with an empty path refused"), NULL;
        if (strlen(path) > max_len)
                return kpa_error_set(err, ENAMETOOLONG,
                                     "member path of %zu bytes refused (the limit is %zu)",
                                     strlen(path), max_len),
                       NULL;
        if (path[0] == '/')
                return kpa_error_set(err, EINVAL, "member \"%s\": absolute path refused", path),
                       NULL;
        const char *p = path;
        while (p[0] == '.' && p[1] == '/')
                p += 2;
        _cleanup_free_ char *copy = kpa_xstrdup(p);
        size_t len = strlen(copy);
        if (len > 0 && copy[len - 1] == '/')
                copy[--len] = '\0';
        if (len == 0)
                return kpa_error_set(err, EINVAL, "member \"%s\": empty path refused", path), NULL;
        for (const char *s = copy; *s;) {
                const char *e = strchrnul(s, '/');
                size_t n = (size_t)(e - s);
                if (n == 0 || (n == 1 && s[0] == '.'))
                        return kpa_error_set(err, EINVAL,
                                             "member \"%s\": empty or \".\" path component refused",
                                             path),
                               NULL;
                if (n == 2 && s[0] == '.' && s[1] == '.')
                        return kpa_error_set(err, EINVAL,
                                             "member \"%s\": \"..\" path component refused", path),
                               NULL;
                s = *e ? e + 1 : e;
        }
        return TAKE_PTR(copy);
}

static const char *entry_type_name(mode_t type)
{
        switch (type) {
        case AE_IFLNK: return "a symbolic link";
        case AE_IFCHR: return "a character device";
        case AE_IFBLK: return "a block device";
        case AE_IFIFO: return "a FIFO";
        case AE_IFSOCK: return "a socket";
        case AE_IFDIR: return "a directory";
        default: return "an unknown file type";
        }
}

static int archive_fail(reader *r, kpa_error *err, const char *what)
{
        const char *msg = archive_error_string(r->a);
        int code = archive_errno(r->a);
        if (code <= 0 || code == EINVAL || code == EILSEQ)
                code = EBADMSG;
        return kpa_error_set(err, code, "%s: %s: %s", r->path, what,
                             msg ? msg : "unreadable archive");
}

static void report_progress(reader *r)
{
        if (r->sink->progress)
                r->sink->progress((uint64_t)archive_filter_bytes(r->a, -1), r->file_size,
                                  r->sink->progress_userdata);
}

/* Stop a decompression bomb early: too many bytes in all, or too many bytes
 * per byte actually read from the file. */
static int check_budget(reader *r, uint64_t unpacked, const char *member, kpa_error *err)
{
        const kpa_package_limits *l = r->limits;
        if (unpacked > l->max_total_bytes)
                return kpa_error_set(err, EFBIG,
                                     "%s: member \"%s\": the package unpacks to more than %llu "
                                     "bytes (the limit); refused",
                                     r->path, member, (unsigned long long)l->max_total_bytes);
        if (l->max_ratio && unpacked >= l->ratio_min_bytes) {
                int64_t packed = archive_filter_bytes(r->a, -1);
                if (packed > 0 && unpacked / (uint64_t)packed > l->max_ratio)
                        return kpa_error_set(err, EFBIG,
                                             "%s: member \"%s\": compression ratio above %llu:1 "
                                             "(%llu bytes from %lld); refused as a "
                                             "decompression bomb",
                                             r->path, member, (unsigned long long)l->max_ratio,
                                             (unsigned long long)unpacked, (long long)packed);
        }
        return 0;
}

static int open_archive(reader *r, int fd, kpa_error *err)
{
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kpa_error_set_errno(err, errno, "%s", r->path);
        if (S_ISDIR(st.st_mode))
                return kpa_error_set(err, EISDIR, "%s: is a directory, not a package", r->path);
        if (S_ISREG(st.st_mode)) {
                if (st.st_size == 0)
                        return kpa_error_set(err, EBADMSG,
                                             "%s: empty file (0 bytes), not a package", r->path);
                r->file_size = (uint64_t)st.st_size;
        }
        r->a = archive_read_new();
        if (!r->a)
                return kpa_error_set(err, ENOMEM, "%s: out of memory", r->path);
        archive_read_support_filter_zstd(r->a);
        archive_read_support_filter_xz(r->a);
        archive_read_support_filter_gzip(r->a);
        archive_read_support_format_tar(r->a);
        if (archive_read_open_fd(r->a, fd, 128 * 1024) != ARCHIVE_OK)
                return archive_fail(r, err, "not a readable package");
        return 0;
}

/* Read the current member, at most MAX bytes, into memory. */
static int read_member_into_memory(reader *r, const char *member, size_t max, char **out,
                                   size_t *out_len, kpa_error *err)
{
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = kpa_xmalloc(cap + 1);
        for (;;) {
                if (len == cap) {
                        if (cap >= max + 1)
                                return kpa_error_set(err, EFBIG,
                                                     "%s: member \"%s\" is larger than %zu bytes",
                                                     r->path, member, max);
                        cap *= 2;
                        buf = kpa_xrealloc(buf, cap + 1);
                }
                la_ssize_t n = archive_read_data(r->a, buf + len, cap - len);
                if (n < 0)
                        return archive_fail(r, err, member);
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max)
                        return kpa_error_set(err, EFBIG, "%s: member \"%s\" is larger than %zu bytes",
                                             r->path, member, max);
        }
        buf[len] = '\0';
        *out = TAKE_PTR(buf);
        *out_len = len;
        return 0;
}

/* The member after manifest.json: the signature manifest.sig, which goes to
 * the sink with the manifest's bytes, or the first component, kept for the
 * member loop (PENDING). */
static int read_signature(reader *r, const char *raw, size_t len, kpa_error *err)
{
        struct archive_entry *e;
        int ar = archive_read_next_header(r->a, &e);
        if (ar < ARCHIVE_WARN)
                return archive_fail(r, err, "corrupt or truncated package");
        _cleanup_free_ char *sig = NULL;
        size_t sig_len = 0;
        if (ar == ARCHIVE_EOF)
                r->at_eof = true;
        else {
                _cleanup_free_ char *name = kpa_member_path_normalize(archive_entry_pathname(e),
                                                                      r->limits->max_path_len, err);
                if (!name)
                        return kpa_error_prefix(err, "%s", r->path);
                if (!streq(name, SIGN_MEMBER))
                        r->pending = e;
                else {
                        r->stats.members++;
                        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
                                return kpa_error_set(err, EBADMSG,
                                                     "%s: %s is not a regular file", r->path,
                                                     SIGN_MEMBER);
                        int q = read_member_into_memory(r, SIGN_MEMBER, SIGN_MEMBER_MAX, &sig,
                                                        &sig_len, err);
                        if (q < 0)
                                return q;
                }
        }
        if (r->sink->signature)
                return r->sink->signature(r->sink->userdata, raw, len, sig, sig_len, err);
        return 0;
}

static int read_manifest(reader *r, kpa_error *err)
{
        struct archive_entry *e;
        int ar = archive_read_next_header(r->a, &e);
        if (ar == ARCHIVE_EOF)
                return kpa_error_set(err, EBADMSG, "%s: the package is empty (no manifest.json)",
                                     r->path);
        if (ar < ARCHIVE_WARN)
                return archive_fail(r, err, "not a readable package");
        r->stats.members++;
        _cleanup_free_ char *name =
                kpa_member_path_normalize(archive_entry_pathname(e), r->limits->max_path_len, err);
        if (!name)
                return kpa_error_prefix(err, "%s", r->path);
        if (!streq(name, "manifest.json"))
                return kpa_error_set(err, EBADMSG,
                                     "%s: the first member is \"%s\"; it must be manifest.json",
                                     r->path, name);
        if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
                return kpa_error_set(err, EBADMSG, "%s: manifest.json is not a regular file",
                                     r->path);
        _cleanup_free_ char *raw = NULL;
        size_t len = 0;
        int q = read_member_into_memory(r, "manifest.json", KPA_MANIFEST_MAX_SIZE, &raw, &len, err);
        if (q < 0)
                return q;
        q = kpa_manifest_parse(raw, len, 0, &r->manifest, err);
        if (q < 0)
                return kpa_error_prefix(err, "%s", r->path);
        r->seen = kpa_xcalloc(r->manifest->n_components, sizeof(bool));
        if ((q = read_signature(r, raw, len, err)) < 0)
                return q;
        if (r->sink->manifest) {
                q = r->sink->manifest(r->sink->userdata, r->manifest, raw, len, err);
                if (q < 0)
                        return q;
        }
        return 0;
}

static int hash_and_write(int fd, kpa_sha256 *h, const void *buf, size_t len, kpa_error *err,
                          const kpa_component *c)
{
        kpa_sha256_update(h, buf, len);
        if (fd < 0)
                return 0;
        int q = kpa_write_all(fd, buf, len);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "write %s", c->install_path);
        return 0;
}

/* Stream the current member into the sink while hashing it; keep a copy of
 * locale components for kpa_manifest_add_locale(). */
static int copy_member(reader *r, const kpa_component *c, int fd, uint64_t *size, kpa_error *err)
{
        static const char zeros[64 * 1024];
        locale_data *loc = NULL;
        if (c->type == KPA_COMPONENT_MANIFEST_LOCALE) {
                r->locales = kpa_xrealloc(r->locales, (r->n_locales + 1) * sizeof(*r->locales));
                loc = &r->locales[r->n_locales++];
                *loc = (locale_data){.component = c};
        }
        kpa_sha256 h;
        kpa_sha256_init(&h);
        uint64_t pos = 0;
        for (;;) {
                const void *buf;
                size_t len;
                la_int64_t offset;
                int ar = archive_read_data_block(r->a, &buf, &len, &offset);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN)
                        return archive_fail(r, err, c->install_path);
                /* the budget first: a sparse member's hole is written out as
                 * zeros, and a hole of many GB comes from a few bytes */
                uint64_t end = ((uint64_t)offset > pos ? (uint64_t)offset : pos) + len;
                int q = check_budget(r, r->stats.bytes + end, c->install_path, err);
                if (q < 0)
                        return q;
                while ((uint64_t)offset > pos) { /* a hole in a sparse member */
                        size_t n = (uint64_t)offset - pos > sizeof(zeros) ? sizeof(zeros)
                                                                         : (size_t)((uint64_t)offset - pos);
                        q = hash_and_write(fd, &h, zeros, n, err, c);
                        if (q < 0)
                                return q;
                        pos += n;
                }
                q = hash_and_write(fd, &h, buf, len, err, c);
                if (q < 0)
                        return q;
                if (loc) {
                        if (loc->len + len > KPA_MANIFEST_MAX_SIZE)
                                return kpa_error_set(err, EFBIG, "%s: locale \"%s\" is over %d bytes",
                                                     r->path, c->install_path, KPA_MANIFEST_MAX_SIZE);
                        loc->data = kpa_xrealloc(loc->data, loc->len + len + 1);
                        memcpy(loc->data + loc->len, buf, len);
                        loc->len += len;
                }
                pos += len;
                report_progress(r);
        }
        char hex[65];
        kpa_sha256_final_hex(&h, hex);
        if (!streq(hex, c->digest))
                return kpa_error_set(err, EBADMSG,
                                     "%s: member \"%s\": digest mismatch: the manifest says %s, "
                                     "the content is %s",
                                     r->path, c->install_path, c->digest, hex);
        *size = pos;
        return 0;
}

/* Decide what one archive member is; *COMPONENT is NULL for a directory. */
static int classify_member(reader *r, struct archive_entry *e, const char *name,
                           const kpa_component **component, size_t *index, kpa_error *err)
{
        mode_t type = archive_entry_filetype(e);
        *component = NULL;
        if (streq(name, SIGN_MEMBER))
                return kpa_error_set(err, EBADMSG,
                                     "%s: member %s is refused here: a package's signature is the "
                                     "one member right after manifest.json",
                                     r->path, SIGN_MEMBER);
        if (archive_entry_hardlink(e))
                return kpa_error_set(err, EBADMSG, "%s: member \"%s\": hard links are refused",
                                     r->path, name);
        if (type == AE_IFDIR)
                return 0;
        if (type != AE_IFREG)
                return kpa_error_set(err, EBADMSG,
                                     "%s: member \"%s\" is %s; only regular files are allowed",
                                     r->path, name, entry_type_name(type));
        mode_t mode = archive_entry_perm(e);
        if (mode & (S_ISUID | S_ISGID | S_ISVTX))
                return kpa_error_set(err, EBADMSG,
                                     "%s: member \"%s\" has the %s bit set; refused", r->path, name,
                                     mode & S_ISUID ? "setuid" : mode & S_ISGID ? "setgid" : "sticky");
        if (streq(name, "manifest.json"))
                return kpa_error_set(err, EBADMSG, "%s: a second manifest.json member", r->path);
        const kpa_component *c = kpa_manifest_find_component(r->manifest, name);
        if (!c)
                return kpa_error_set(err, EBADMSG,
                                     "%s: member \"%s\" is not a component listed in the manifest",
                                     r->path, name);
        size_t i = 0;
        while (r->manifest->components[i] != c)
                i++;
        if (r->seen[i])
                return kpa_error_set(err, EBADMSG, "%s: member \"%s\" appears twice", r->path, name);
        if (archive_entry_size_is_set(e)) {
                int q = check_budget(r, r->stats.bytes + (uint64_t)archive_entry_size(e), name, err);
                if (q < 0)
                        return q;
        }
        *component = c;
        *index = i;
        return 0;
}

static int read_member(reader *r, struct archive_entry *e, kpa_error *err)
{
        if (++r->stats.members > r->limits->max_members)
                return kpa_error_set(err, EFBIG, "%s: more than %llu members (the limit); refused",
                                     r->path, (unsigned long long)r->limits->max_members);
        _cleanup_free_ char *name =
                kpa_member_path_normalize(archive_entry_pathname(e), r->limits->max_path_len, err);
        if (!name)
                return kpa_error_prefix(err, "%s", r->path);
        const kpa_component *c;
        size_t index;
        int q = classify_member(r, e, name, &c, &index, err);
        if (q < 0 || !c)
                return q;
        _cleanup_close_ int fd = -1;
        if (r->sink->open && (q = r->sink->open(r->sink->userdata, c, &fd, err)) < 0)
                return q;
        uint64_t size = 0;
        q = copy_member(r, c, fd, &size, err);
        if (q < 0)
                return q;
        r->seen[index] = true;
        r->stats.bytes += size;
        r->stats.files++;
        if (r->sink->close)
                return r->sink->close(r->sink->userdata, c, fd, size, err);
        return 0;
}

static int check_complete(reader *r, kpa_error *err)
{
        for (size_t i = 0; i < r->manifest->n_components; i++)
                if (!r->seen[i])
                        return kpa_error_set(err, EBADMSG,
                                             "%s: component \"%s\" is listed in the manifest but "
                                             "missing from the package",
                                             r->path, r->manifest->components[i]->install_path);
        for (size_t i = 0; i < r->n_locales; i++) {
                locale_data *l = &r->locales[i];
                int q = kpa_manifest_add_locale(r->manifest, l->component->name, l->data, l->len, err);
                if (q < 0)
                        return kpa_error_prefix(err, "%s", r->path);
        }
        return 0;
}

int kpa_package_read(int fd, const char *path, const kpa_package_limits *limits,
                     const kpa_package_sink *sink, kpa_manifest **manifest,
                     kpa_package_stats *stats, kpa_error *err)
{
        kpa_package_limits defaults;
        if (!limits) {
                kpa_package_limits_init(&defaults);
                limits = &defaults;
        }
        reader r = {.path = path, .limits = limits, .sink = sink};
        int q = open_archive(&r, fd, err);
        if (q >= 0)
                q = read_manifest(&r, err);
        while (q >= 0) {
                struct archive_entry *e = TAKE_PTR(r.pending);
                int ar = e ? ARCHIVE_OK : r.at_eof ? ARCHIVE_EOF : archive_read_next_header(r.a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        q = archive_fail(&r, err, "corrupt or truncated package");
                        break;
                }
                q = read_member(&r, e, err);
        }
        if (q >= 0)
                q = check_complete(&r, err);
        if (q >= 0) {
                report_progress(&r);
                if (stats)
                        *stats = r.stats;
                if (manifest)
                        *manifest = TAKE_PTR(r.manifest);
        }
        reader_done(&r);
        return q;
}
