/* pack.c: building a KPA package (kpa-pack). It finds each component of a
 * manifest among the vendor's files and directories, fills in missing
 * digests, checks given ones, and writes a deterministic pax archive
 * (manifest.json first, then the components sorted by install path) into a
 * temporary file that is renamed over the output only when all went well.
 * Reading and installing packages is archive-read.c and store.c; the rules
 * of the manifest itself are manifest.c. */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <locale.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>
#include <json-c/json.h>

#include "kpa/digest.h"
#include "kpa/package.h"
#include "sign.h"
#include "util.h"

/* The longest path component an installer can create; the other limits are
 * kpa_package_limits_init()'s, the ones kpa-install applies. */
#define PACK_MAX_NAME 255
#define PACK_BUFFER_SIZE (128 * 1024)
#define PACK_JSON_DEPTH 512

/* Fixed compression settings: the same input must give the same bytes, so
 * nothing may depend on the machine (levels, thread counts, timestamps). */
#define PACK_ZSTD_LEVEL "15"
#define PACK_XZ_LEVEL "6"
#define PACK_GZIP_LEVEL "9"

/* A regular file found among the inputs. */
typedef struct pack_file {
        char *path;      /* for messages and for opening: INPUT or INPUT/REL */
        const char *rel; /* into PATH: below a directory input, or the basename */
        bool in_dir;     /* found by walking: opened without following symlinks */
        dev_t dev;
        ino_t ino;
        uint64_t size;
        bool claimed; /* supplies a component */
        bool exempt;  /* the manifest or the output itself */
        bool hashed;
        char digest[KPA_DIGEST_HEX_LEN + 1];
} pack_file;

typedef struct pack_input {
        const char *arg;
        bool is_dir;
        pack_file *files; /* a directory's files sorted by REL; one for a file */
        size_t n_files;
} pack_input;

typedef struct pack_member {
        const kpa_component *component;
        size_t index;      /* in the manifest's (and the JSON's) components */
        pack_file *source; /* points into an input */
        bool digest_given;
        char digest[KPA_DIGEST_HEX_LEN + 1]; /* expected content */
} pack_member;

typedef struct pack_ctx {
        const kpa_pack_options *opts;
        kpa_manifest *manifest;
        char *manifest_text;
        size_t manifest_len;
        struct stat manifest_st;
        bool have_output_st;
        struct stat output_st;
        pack_input *inputs;
        size_t n_inputs;
        pack_member *members; /* sorted by install path */
        size_t n_members;
        int64_t mtime;
        kpa_package_limits limits;
        uint64_t total_bytes; /* of all members */
        char *buf;            /* PACK_BUFFER_SIZE bytes for streaming */
        sign_key *key;        /* --sign: the secret key (sign.c) */
} pack_ctx;

/* The output file while it is being written: an unnamed O_TMPFILE, or (on
 * file systems without it) a named temporary removed on failure. */
typedef struct pack_output {
        int dirfd;
        int fd;
        char *base;    /* the output's name in its directory */
        char *tmpname; /* a named temporary that exists, below DIRFD */
} pack_output;

void kpa_pack_options_init(kpa_pack_options *opts)
{
        memset(opts, 0, sizeof(*opts));
        opts->struct_size = sizeof(*opts);
        opts->compression = KPA_COMPRESS_ZSTD;
        opts->mtime = -1;
}

int kpa_compression_from_string(const char *s, kpa_compression *out)
{
        static const struct {
                const char *name;
                kpa_compression value;
        } table[] = {
                { "zstd", KPA_COMPRESS_ZSTD },
                { "xz", KPA_COMPRESS_XZ },
                { "gzip", KPA_COMPRESS_GZIP },
                { "none", KPA_COMPRESS_NONE },
        };
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (streq(s, table[i].name)) {
                        *out = table[i].value;
                        return 0;
                }
        return -EINVAL;
}

static void pack_ctx_done(pack_ctx *ctx)
{
        kpa_manifest_free(ctx->manifest);
        free(ctx->manifest_text);
        for (size_t i = 0; i < ctx->n_inputs; i++) {
                for (size_t j = 0; j < ctx->inputs[i].n_files; j++)
                        free(ctx->inputs[i].files[j].path);
                free(ctx->inputs[i].files);
        }
        free(ctx->inputs);
        free(ctx->members);
        free(ctx->buf);
        kpa_sign_key_free(ctx->key);
}

static void pack_output_done(pack_output *out)
{
        if (out->fd >= 0)
                close(out->fd);
        if (out->tmpname)
                (void)unlinkat(out->dirfd, out->tmpname, 0);
        if (out->dirfd >= 0)
                close(out->dirfd);
        free(out->base);
        free(out->tmpname);
}

static bool same_file(const struct stat *st, dev_t dev, ino_t ino)
{
        return st->st_dev == dev && st->st_ino == ino;
}

static const char *file_type_name(mode_t mode)
{
        switch (mode & S_IFMT) {
        case S_IFLNK: return "symbolic link";
        case S_IFIFO: return "FIFO";
        case S_IFSOCK: return "socket";
        case S_IFCHR: return "character device";
        case S_IFBLK: return "block device";
        case S_IFDIR: return "directory";
        default: return "special file";
        }
}

/* ---- The member mtime ---- */

static int64_t pack_mtime(const kpa_pack_options *opts)
{
        if (opts->mtime >= 0)
                return opts->mtime;
        const char *s = getenv("SOURCE_DATE_EPOCH");
        if (!s || !*s)
                return 0;
        int64_t v = 0;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
                        return 0; /* not a valid timestamp: ignored */
                v = v * 10 + (*p - '0');
        }
        return v;
}

/* ---- Reading the manifest ---- */

static int load_manifest(pack_ctx *ctx, kpa_error *err)
{
        const char *path = ctx->opts->manifest_path;
        struct stat st;
        if (stat(path, &st) < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        if (!S_ISREG(st.st_mode))
                return kpa_error_set(err, EINVAL, "%s: not a regular file (%s)", path,
                                     file_type_name(st.st_mode));
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        if (fstat(fd, &ctx->manifest_st) < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        if (!S_ISREG(ctx->manifest_st.st_mode))
                return kpa_error_set(err, EAGAIN, "%s: replaced while packing", path);
        int r = kpa_read_fd(fd, KPA_MANIFEST_MAX_SIZE, &ctx->manifest_text, &ctx->manifest_len);
        if (r == -EFBIG)
                return kpa_error_set(err, EFBIG, "%s: larger than %d bytes", path,
                                     KPA_MANIFEST_MAX_SIZE);
        if (r < 0)
                return kpa_error_set_errno(err, -r, "read %s", path);
        r = kpa_manifest_parse(ctx->manifest_text, ctx->manifest_len,
                               KPA_MANIFEST_ALLOW_MISSING_DIGESTS, &ctx->manifest, err);
        if (r < 0) {
                /* The parser names "manifest.json"; name the file the vendor gave. */
                static const char prefix[] = "manifest.json: ";
                if (!err)
                        return r;
                if (strncmp(err->message, prefix, sizeof(prefix) - 1) == 0) {
                        _cleanup_free_ char *rest = kpa_xstrdup(err->message + sizeof(prefix) - 1);
                        return kpa_error_set(err, -r, "%s: %s", path, rest);
                }
                return kpa_error_prefix(err, "%s", path);
        }
        return 0;
}

/* ---- Scanning the inputs ---- */

static pack_file *input_add_file(pack_input *in, size_t *cap)
{
        if (in->n_files == *cap) {
                *cap = *cap ? *cap * 2 : 16;
                in->files = kpa_xrealloc(in->files, *cap * sizeof(*in->files));
        }
        pack_file *f = &in->files[in->n_files++];
        memset(f, 0, sizeof(*f));
        return f;
}

static bool is_exempt(const pack_ctx *ctx, const struct stat *st)
{
        if (same_file(&ctx->manifest_st, st->st_dev, st->st_ino))
                return true;
        return ctx->have_output_st && same_file(&ctx->output_st, st->st_dev, st->st_ino);
}

static void set_file_stat(pack_file *f, const struct stat *st)
{
        f->dev = st->st_dev;
        f->ino = st->st_ino;
        f->size = (uint64_t)st->st_size;
}

/* Collect the regular files below the directory DFD (taken over), which is
 * PREFIX in messages. Links and special files are refused: a package holds
 * regular files only, and a vendor's tree is read as it is. */
static int walk_dir(pack_ctx *ctx, pack_input *in, size_t *cap, int dfd, const char *prefix,
                    size_t skip, kpa_error *err)
{
        DIR *d = fdopendir(dfd);
        if (!d) {
                int r = kpa_error_set_errno(err, errno, "%s", prefix);
                close(dfd);
                return r;
        }
        _cleanup_closedir_ DIR *dir = d;
        struct dirent *de;
        while ((errno = 0, de = readdir(dir))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                _cleanup_free_ char *path = kpa_xasprintf("%s/%s", prefix, de->d_name);
                if (strlen(path) - skip > PATH_MAX)
                        return kpa_error_set(err, ENAMETOOLONG, "%s: path too long", path);
                struct stat st;
                if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return kpa_error_set_errno(err, errno, "%s", path);
                if (S_ISDIR(st.st_mode)) {
                        int cfd = openat(dirfd(dir), de->d_name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (cfd < 0)
                                return kpa_error_set_errno(err, errno, "%s", path);
                        int r = walk_dir(ctx, in, cap, cfd, path, skip, err);
                        if (r < 0)
                                return r;
                } else if (S_ISREG(st.st_mode)) {
                        pack_file *f = input_add_file(in, cap);
                        f->path = TAKE_PTR(path);
                        f->rel = f->path + skip;
                        f->in_dir = true;
                        f->exempt = is_exempt(ctx, &st);
                        set_file_stat(f, &st);
                } else {
                        return kpa_error_set(err, EINVAL,
                                             "%s: %s; a package holds regular files only",
                                             path, file_type_name(st.st_mode));
                }
        }
        if (errno)
                return kpa_error_set_errno(err, errno, "%s", prefix);
        return 0;
}

static int cmp_file_rel(const void *a, const void *b)
{
        return strcmp(((const pack_file *)a)->rel, ((const pack_file *)b)->rel);
}

/* One command-line input: a symlink there is followed (the vendor named it). */
static int scan_input(pack_ctx *ctx, pack_input *in, kpa_error *err)
{
        const char *arg = in->arg;
        size_t cap = 0;
        struct stat st;
        if (stat(arg, &st) < 0)
                return kpa_error_set_errno(err, errno, "%s", arg);
        if (S_ISDIR(st.st_mode)) {
                int fd = open(arg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return kpa_error_set_errno(err, errno, "%s", arg);
                in->is_dir = true;
                /* "dir/" and "dir" name the same files in messages */
                size_t len = strlen(arg);
                while (len > 1 && arg[len - 1] == '/')
                        len--;
                _cleanup_free_ char *prefix = kpa_xasprintf("%.*s", (int)len, arg);
                size_t skip = streq(prefix, "/") ? 1 : len + 1;
                if (streq(prefix, "/"))
                        prefix[0] = '\0';
                int r = walk_dir(ctx, in, &cap, fd, prefix, skip, err);
                if (r < 0)
                        return r;
                if (in->n_files > 0)
                        qsort(in->files, in->n_files, sizeof(*in->files), cmp_file_rel);
                return 0;
        }
        if (!S_ISREG(st.st_mode))
                return kpa_error_set(err, EINVAL, "%s: %s; a package holds regular files only",
                                     arg, file_type_name(st.st_mode));
        pack_file *f = input_add_file(in, &cap);
        f->path = kpa_xstrdup(arg);
        const char *slash = strrchr(f->path, '/');
        f->rel = slash ? slash + 1 : f->path;
        f->exempt = is_exempt(ctx, &st);
        set_file_stat(f, &st);
        return 0;
}

static pack_file *find_in_dir(const pack_input *in, const char *rel)
{
        pack_file key = { .rel = rel };
        if (in->n_files == 0)
                return NULL;
        return bsearch(&key, in->files, in->n_files, sizeof(*in->files), cmp_file_rel);
}

/* ---- Hashing ---- */

/* Open F for reading and make sure it is still the file that was scanned. */
static int open_source(pack_file *f, kpa_error *err)
{
        int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | (f->in_dir ? O_NOFOLLOW : 0);
        _cleanup_close_ int fd = open(f->path, flags);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "%s", f->path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kpa_error_set_errno(err, errno, "%s", f->path);
        if (!S_ISREG(st.st_mode) || !same_file(&st, f->dev, f->ino))
                return kpa_error_set(err, EAGAIN, "%s: replaced while packing", f->path);
        if ((uint64_t)st.st_size != f->size)
                return kpa_error_set(err, EAGAIN, "%s: changed while packing", f->path);
        (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        return TAKE_FD(fd);
}

/* Read the next piece of F (FD) into BUF; *DONE counts what was read. Reading
 * past the size seen at scan time, or hitting the end early, means the file
 * changed under us. Returns the piece's length, 0 at the end, or an error. */
static ssize_t read_piece(pack_file *f, int fd, char *buf, uint64_t *done, kpa_error *err)
{
        uint64_t left = f->size - *done;
        size_t want = left > PACK_BUFFER_SIZE ? PACK_BUFFER_SIZE : (size_t)left;
        if (want == 0)
                want = 1; /* probe for growth */
        ssize_t n;
        do
                n = read(fd, buf, want);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return kpa_error_set_errno(err, errno, "read %s", f->path);
        if ((n == 0 && left > 0) || (n > 0 && left == 0))
                return kpa_error_set(err, EAGAIN, "%s: changed while packing", f->path);
        *done += (uint64_t)n;
        return n;
}

static int hash_file(pack_ctx *ctx, pack_file *f, kpa_error *err)
{
        if (f->hashed)
                return 0;
        _cleanup_close_ int fd = open_source(f, err);
        if (fd < 0)
                return fd;
        kpa_sha256 sha;
        kpa_sha256_init(&sha);
        uint64_t done = 0;
        for (;;) {
                ssize_t n = read_piece(f, fd, ctx->buf, &done, err);
                if (n < 0)
                        return (int)n;
                if (n == 0)
                        break;
                kpa_sha256_update(&sha, ctx->buf, (size_t)n);
        }
        kpa_sha256_final_hex(&sha, f->digest);
        f->hashed = true;
        return 0;
}

/* ---- Finding the components ---- */

static char *join_path(const char *dir, const char *rel)
{
        size_t len = strlen(dir);
        return kpa_xasprintf("%s%s%s", dir, len > 0 && dir[len - 1] == '/' ? "" : "/", rel);
}

/* The places resolve_member() tried, for the message of a missing component. */
static char *where_looked(const pack_ctx *ctx, const kpa_component *c, const char *alt)
{
        _cleanup_free_ char *places = NULL;
        for (size_t i = 0; i < ctx->n_inputs; i++) {
                const pack_input *in = &ctx->inputs[i];
                const char *cands[] = { c->install_path, alt, c->name };
                for (size_t j = 0; in->is_dir && j < ELEMENTSOF(cands); j++) {
                        if (!cands[j])
                                continue;
                        _cleanup_free_ char *p = join_path(in->arg, cands[j]);
                        char *s = kpa_xasprintf("%s%s%s", places ? places : "",
                                                places ? ", " : "", p);
                        free(places);
                        places = s;
                }
        }
        if (places)
                return kpa_xasprintf("no input file is named \"%s\", and none found at %s",
                                     c->name, places);
        return kpa_xasprintf("no input file is named \"%s\"", c->name);
}

/* Note that input F supplies member MB; two different files are an error. */
static int supply(pack_ctx *ctx, pack_member *mb, pack_file *f, kpa_error *err)
{
        f->claimed = true;
        if (!mb->source) {
                mb->source = f;
                return 0;
        }
        if (mb->source->dev == f->dev && mb->source->ino == f->ino)
                return 0;
        int r = hash_file(ctx, mb->source, err);
        if (r < 0)
                return r;
        r = hash_file(ctx, f, err);
        if (r < 0)
                return r;
        if (!streq(mb->source->digest, f->digest))
                return kpa_error_set(err, EEXIST,
                                     "ambiguous component %s: %s and %s differ",
                                     mb->component->install_path, mb->source->path, f->path);
        return 0;
}

static int resolve_member(pack_ctx *ctx, pack_member *mb, kpa_error *err)
{
        const kpa_component *c = mb->component;
        _cleanup_free_ char *alt = NULL;
        if (c->type == KPA_COMPONENT_RES && c->directory_path && c->directory_path[0])
                alt = kpa_xasprintf("%s/%s", c->directory_path, c->name);
        const char *cands[] = { c->install_path, alt, c->name };

        for (size_t i = 0; i < ctx->n_inputs; i++) {
                pack_input *in = &ctx->inputs[i];
                pack_file *f = NULL;
                if (!in->is_dir) {
                        if (streq(in->files[0].rel, c->name))
                                f = &in->files[0];
                } else {
                        for (size_t j = 0; j < ELEMENTSOF(cands) && !f; j++)
                                if (cands[j])
                                        f = find_in_dir(in, cands[j]);
                }
                if (!f)
                        continue;
                int r = supply(ctx, mb, f, err);
                if (r < 0)
                        return r;
        }
        if (!mb->source) {
                _cleanup_free_ char *looked = where_looked(ctx, c, alt);
                return kpa_error_set(err, ENOENT, "missing component %s: %s", c->install_path,
                                     looked);
        }
        return 0;
}

static int check_extra_files(const pack_ctx *ctx, kpa_error *err)
{
        for (size_t i = 0; i < ctx->n_inputs; i++) {
                const pack_input *in = &ctx->inputs[i];
                for (size_t j = 0; j < in->n_files; j++) {
                        const pack_file *f = &in->files[j];
                        if (f->claimed || f->exempt)
                                continue;
                        if (in->is_dir)
                                return kpa_error_set(err, EINVAL,
                                                     "%s: extra file not listed in the manifest",
                                                     f->path);
                        return kpa_error_set(err, EINVAL,
                                             "%s: extra file not listed in the manifest "
                                             "(no component is named \"%s\")",
                                             f->path, f->rel);
                }
        }
        return 0;
}

static int cmp_member(const void *a, const void *b)
{
        return strcmp(((const pack_member *)a)->component->install_path,
                      ((const pack_member *)b)->component->install_path);
}

static pack_member *find_member(const pack_ctx *ctx, const char *install_path)
{
        kpa_component c = { .install_path = (char *)install_path };
        pack_member key = { .component = &c };
        if (ctx->n_members == 0)
                return NULL;
        return bsearch(&key, ctx->members, ctx->n_members, sizeof(*ctx->members), cmp_member);
}

/* Refuse what an installer could not unpack: long paths and names, two
 * components at one path, a file where another needs a directory. */
static int check_member_path(const pack_ctx *ctx, size_t i, kpa_error *err)
{
        const char *p = ctx->members[i].component->install_path;
        size_t len = strlen(p);
        if (len > ctx->limits.max_path_len)
                return kpa_error_set(err, ENAMETOOLONG,
                                     "component %.64s...: its path is %zu bytes, more than "
                                     "the %zu an installer accepts",
                                     p, len, ctx->limits.max_path_len);
        if (i > 0 && streq(p, ctx->members[i - 1].component->install_path))
                return kpa_error_set(err, EEXIST, "component %s: listed twice", p);
        for (const char *s = p; *s;) {
                size_t seg = strcspn(s, "/");
                if (seg > PACK_MAX_NAME)
                        return kpa_error_set(err, ENAMETOOLONG,
                                             "component %s: a name in its path is %zu bytes, "
                                             "more than the %d an installer accepts",
                                             p, seg, PACK_MAX_NAME);
                if (!s[seg])
                        break;
                _cleanup_free_ char *dir = kpa_xasprintf("%.*s", (int)(s + seg - p), p);
                if (find_member(ctx, dir))
                        return kpa_error_set(err, EEXIST,
                                             "component %s: %s is a component too, not a "
                                             "directory", p, dir);
                s += seg + 1;
        }
        return 0;
}

static int plan_members(pack_ctx *ctx, kpa_error *err)
{
        const kpa_manifest *m = ctx->manifest;
        ctx->n_members = m->n_components;
        ctx->members = kpa_xcalloc(m->n_components, sizeof(*ctx->members));
        for (size_t i = 0; i < m->n_components; i++) {
                pack_member *mb = &ctx->members[i];
                mb->component = m->components[i];
                mb->index = i;
                mb->digest_given = mb->component->digest && mb->component->digest[0];
                if (mb->digest_given)
                        snprintf(mb->digest, sizeof(mb->digest), "%s", mb->component->digest);
        }
        if (ctx->n_members > 0)
                qsort(ctx->members, ctx->n_members, sizeof(*ctx->members), cmp_member);
        for (size_t i = 0; i < ctx->n_members; i++) {
                int r = check_member_path(ctx, i, err);
                if (r < 0)
                        return r;
        }
        if (ctx->n_members + 1 > ctx->limits.max_members)
                return kpa_error_set(err, EFBIG,
                                     "%zu components: more than the %llu an installer accepts",
                                     ctx->n_members,
                                     (unsigned long long)ctx->limits.max_members - 1);
        for (size_t i = 0; i < ctx->n_members; i++) {
                int r = resolve_member(ctx, &ctx->members[i], err);
                if (r < 0)
                        return r;
                ctx->total_bytes += ctx->members[i].source->size;
        }
        if (ctx->total_bytes > ctx->limits.max_total_bytes)
                return kpa_error_set(err, EFBIG,
                                     "the components add up to %llu bytes, more than the %llu "
                                     "an installer accepts",
                                     (unsigned long long)ctx->total_bytes,
                                     (unsigned long long)ctx->limits.max_total_bytes);
        return check_extra_files(ctx, err);
}

/* A first pass only over files whose digest the manifest leaves empty: the
 * manifest, which carries the digests, is the first member. */
static int fill_digests(pack_ctx *ctx, kpa_error *err)
{
        for (size_t i = 0; i < ctx->n_members; i++) {
                pack_member *mb = &ctx->members[i];
                if (mb->digest_given)
                        continue;
                int r = hash_file(ctx, mb->source, err);
                if (r < 0)
                        return r;
                memcpy(mb->digest, mb->source->digest, sizeof(mb->digest));
        }
        return 0;
}

/* ---- The packed manifest ---- */

static void json_putp(json_object **o)
{
        if (*o)
                json_object_put(*o);
}

static void tokener_freep(json_tokener **t)
{
        if (*t)
                json_tokener_free(*t);
}

/* The vendor's manifest with every digest filled in, pretty-printed. */
static int packed_manifest(const pack_ctx *ctx, char **out, size_t *out_len, kpa_error *err)
{
        const char *path = ctx->opts->manifest_path;
        _cleanup_(tokener_freep) json_tokener *tok = json_tokener_new_ex(PACK_JSON_DEPTH);
        if (!tok)
                return kpa_error_set(err, ENOMEM, "%s: out of memory", path);
        _cleanup_(json_putp) json_object *root =
                json_tokener_parse_ex(tok, ctx->manifest_text, (int)ctx->manifest_len);
        if (!root || json_tokener_get_error(tok) != json_tokener_success)
                return kpa_error_set(err, EINVAL, "%s: %s", path,
                                     json_tokener_error_desc(json_tokener_get_error(tok)));

        json_object *components = NULL;
        size_t n = 0;
        if (json_object_object_get_ex(root, "components", &components))
                n = json_object_array_length(components);
        if (n != ctx->n_members)
                return kpa_error_set(err, EPROTO, "%s: components: %zu in JSON, %zu parsed",
                                     path, n, ctx->n_members);
        for (size_t i = 0; i < ctx->n_members; i++) {
                const pack_member *mb = &ctx->members[i];
                json_object *c = json_object_array_get_idx(components, mb->index);
                json_object *d = NULL;
                if (!json_object_is_type(c, json_type_object))
                        return kpa_error_set(err, EPROTO, "%s: components[%zu]: not an object",
                                             path, mb->index);
                if (json_object_object_get_ex(c, "digest", &d) &&
                    json_object_is_type(d, json_type_string) && json_object_get_string_len(d) > 0)
                        continue;
                json_object_object_add(c, "digest", json_object_new_string(mb->digest));
        }
        const char *s = json_object_to_json_string_ext(
                root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return kpa_error_set(err, ENOMEM, "%s: cannot serialize", path);
        *out = kpa_xasprintf("%s\n", s);
        *out_len = strlen(*out);
        return 0;
}

/* ---- The output file ---- */

/* Give the output a temporary name in its directory: link the unnamed
 * O_TMPFILE there, or (FD < 0) create a new file under that name. */
static int output_name_temp(pack_output *out, const char *path, kpa_error *err)
{
        _cleanup_free_ char *proc = out->fd >= 0 ? kpa_xasprintf("/proc/self/fd/%d", out->fd) : NULL;
        for (uint32_t tries = 0; tries < 100; tries++) {
                uint32_t rnd;
                if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
                        rnd = (uint32_t)getpid() * 2654435761u + tries;
                _cleanup_free_ char *name = kpa_xasprintf(".%s.%08x.tmp", out->base, rnd);
                int r = proc ? linkat(AT_FDCWD, proc, out->dirfd, name, AT_SYMLINK_FOLLOW)
                             : (out->fd = openat(out->dirfd, name,
                                                 O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
                                                         O_NOFOLLOW,
                                                 0666));
                if (r >= 0) {
                        out->tmpname = TAKE_PTR(name);
                        return 0;
                }
                if (errno != EEXIST)
                        return kpa_error_set_errno(err, errno, "%s: a temporary file beside it",
                                                   path);
        }
        return kpa_error_set(err, EEXIST, "%s: no free temporary name beside it", path);
}

static int output_open(const char *path, pack_output *out, kpa_error *err)
{
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *dir = slash ? kpa_xasprintf("%.*s", (int)(slash - path), path) : NULL;
        out->base = kpa_xstrdup(slash ? slash + 1 : path);
        if (!out->base[0] || streq(out->base, ".") || streq(out->base, ".."))
                return kpa_error_set(err, EISDIR, "%s: not a file name", path);
        const char *dpath = dir ? (dir[0] ? dir : "/") : ".";
        out->dirfd = open(dpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (out->dirfd < 0)
                return kpa_error_set_errno(err, errno, "%s: directory %s", path, dpath);
        out->fd = openat(out->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
        if (out->fd >= 0)
                return 0;
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
                return kpa_error_set_errno(err, errno, "%s: a temporary file in %s", path, dpath);
        /* no O_TMPFILE here: a named temporary, removed on every failure */
        return output_name_temp(out, path, err);
}

/* Publish the finished file under its name, replacing an older one. */
static int output_commit(pack_output *out, const char *path, kpa_error *err)
{
        if (fsync(out->fd) < 0)
                return kpa_error_set_errno(err, errno, "%s: fsync", path);
        if (!out->tmpname) {
                int r = output_name_temp(out, path, err);
                if (r < 0)
                        return r;
        }
        if (renameat(out->dirfd, out->tmpname, out->dirfd, out->base) < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        free(out->tmpname);
        out->tmpname = NULL;
        (void)fsync(out->dirfd);
        return 0;
}

/* ---- Writing the archive ---- */

static void archive_freep(struct archive **a)
{
        if (*a)
                archive_write_free(*a);
}

static void entry_freep(struct archive_entry **e)
{
        if (*e)
                archive_entry_free(*e);
}

static int archive_fail(struct archive *a, const char *path, kpa_error *err)
{
        int code = archive_errno(a) > 0 ? archive_errno(a) : EIO;
        const char *msg = archive_error_string(a);
        /* libarchive says "Write error" for a failed write(2): add the cause */
        if (msg && archive_errno(a) > 0 && !strstr(msg, strerror(code)))
                return kpa_error_set(err, code, "%s: %s: %s", path, msg, strerror(code));
        return kpa_error_set(err, code, "%s: %s", path, msg ? msg : strerror(code));
}

static int set_filter(struct archive *a, kpa_compression compression, const char *path,
                      kpa_error *err)
{
        int r;
        switch (compression) {
        case KPA_COMPRESS_ZSTD:
                r = archive_write_add_filter_zstd(a);
                if (r == ARCHIVE_OK)
                        r = archive_write_set_filter_option(a, "zstd", "compression-level",
                                                            PACK_ZSTD_LEVEL);
                if (r == ARCHIVE_OK) /* one thread: a worker split changes the output */
                        r = archive_write_set_filter_option(a, "zstd", "threads", "0");
                break;
        case KPA_COMPRESS_XZ:
                r = archive_write_add_filter_xz(a);
                if (r == ARCHIVE_OK)
                        r = archive_write_set_filter_option(a, "xz", "compression-level",
                                                            PACK_XZ_LEVEL);
                if (r == ARCHIVE_OK)
                        r = archive_write_set_filter_option(a, "xz", "threads", "1");
                break;
        case KPA_COMPRESS_GZIP:
                r = archive_write_add_filter_gzip(a);
                if (r == ARCHIVE_OK)
                        r = archive_write_set_filter_option(a, "gzip", "compression-level",
                                                            PACK_GZIP_LEVEL);
                if (r == ARCHIVE_OK) /* no time of day in the gzip header */
                        r = archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
                break;
        case KPA_COMPRESS_NONE:
                r = archive_write_add_filter_none(a);
                break;
        default:
                return kpa_error_set(err, EINVAL, "%s: unknown compression %d", path,
                                     (int)compression);
        }
        if (r != ARCHIVE_OK)
                return archive_fail(a, path, err);
        return 0;
}

static int write_header(pack_ctx *ctx, struct archive *a, const char *member, uint64_t size,
                        mode_t perm, kpa_error *err)
{
        _cleanup_(entry_freep) struct archive_entry *e = archive_entry_new();
        if (!e)
                return kpa_error_set(err, ENOMEM, "%s: out of memory", member);
        archive_entry_set_pathname(e, member);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, perm);
        archive_entry_set_size(e, (la_int64_t)size);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        archive_entry_set_mtime(e, (time_t)ctx->mtime, 0);
        if (archive_write_header(a, e) != ARCHIVE_OK)
                return archive_fail(a, ctx->opts->output_path, err);
        return 0;
}

static int write_data(pack_ctx *ctx, struct archive *a, const char *data, size_t len,
                      kpa_error *err)
{
        while (len > 0) {
                la_ssize_t n = archive_write_data(a, data, len);
                if (n <= 0)
                        return archive_fail(a, ctx->opts->output_path, err);
                data += n;
                len -= (size_t)n;
        }
        return 0;
}

static int write_manifest(pack_ctx *ctx, struct archive *a, kpa_error *err)
{
        _cleanup_free_ char *json = NULL;
        size_t len = 0;
        int r = packed_manifest(ctx, &json, &len, err);
        if (r < 0)
                return r;
        r = write_header(ctx, a, "manifest.json", len, 0644, err);
        if (r < 0)
                return r;
        r = write_data(ctx, a, json, len, err);
        if (r < 0)
                return r;
        if (ctx->key) { /* the signature of exactly these bytes, right after them */
                size_t sig_len;
                _cleanup_free_ char *sig = kpa_sign_manifest(ctx->key, json, len, &sig_len);
                r = write_header(ctx, a, SIGN_MEMBER, sig_len, 0644, err);
                if (r >= 0)
                        r = write_data(ctx, a, sig, sig_len, err);
                if (r < 0)
                        return r;
        }
        if (ctx->opts->on_member) {
                kpa_sha256 sha;
                char hex[KPA_DIGEST_HEX_LEN + 1];
                kpa_sha256_init(&sha);
                kpa_sha256_update(&sha, json, len);
                kpa_sha256_final_hex(&sha, hex);
                ctx->opts->on_member("manifest.json", ctx->opts->manifest_path, len, hex,
                                     ctx->opts->userdata);
        }
        return 0;
}

/* Stream one component into the archive, hashing it on the way. */
static int write_member(pack_ctx *ctx, struct archive *a, const pack_member *mb, kpa_error *err)
{
        pack_file *f = mb->source;
        const kpa_component *c = mb->component;
        _cleanup_close_ int fd = open_source(f, err);
        if (fd < 0)
                return fd;
        int r = write_header(ctx, a, c->install_path, f->size,
                             c->type == KPA_COMPONENT_BIN ? 0755 : 0644, err);
        if (r < 0)
                return r;
        kpa_sha256 sha;
        kpa_sha256_init(&sha);
        uint64_t done = 0;
        for (;;) {
                ssize_t n = read_piece(f, fd, ctx->buf, &done, err);
                if (n < 0)
                        return (int)n;
                if (n == 0)
                        break;
                kpa_sha256_update(&sha, ctx->buf, (size_t)n);
                r = write_data(ctx, a, ctx->buf, (size_t)n, err);
                if (r < 0)
                        return r;
        }
        char hex[KPA_DIGEST_HEX_LEN + 1];
        kpa_sha256_final_hex(&sha, hex);
        if (!streq(hex, mb->digest)) {
                if (mb->digest_given)
                        return kpa_error_set(err, EBADMSG,
                                             "%s: digest mismatch for component %s: the "
                                             "manifest says %s, the file has %s",
                                             f->path, c->install_path, mb->digest, hex);
                return kpa_error_set(err, EAGAIN, "%s: changed while packing", f->path);
        }
        if (ctx->opts->on_member)
                ctx->opts->on_member(c->install_path, f->path, f->size, hex,
                                     ctx->opts->userdata);
        return 0;
}

static int write_archive(pack_ctx *ctx, int fd, kpa_error *err)
{
        const char *path = ctx->opts->output_path;
        _cleanup_(archive_freep) struct archive *a = archive_write_new();
        if (!a)
                return kpa_error_set(err, ENOMEM, "%s: out of memory", path);
        if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK)
                return archive_fail(a, path, err);
        int r = set_filter(a, ctx->opts->compression, path, err);
        if (r < 0)
                return r;
        /* no padding to a tape block: the file ends where the data ends */
        archive_write_set_bytes_in_last_block(a, 1);
        if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
                return archive_fail(a, path, err);
        r = write_manifest(ctx, a, err);
        for (size_t i = 0; r >= 0 && i < ctx->n_members; i++)
                r = write_member(ctx, a, &ctx->members[i], err);
        if (r < 0)
                return r;
        if (archive_write_close(a) != ARCHIVE_OK)
                return archive_fail(a, path, err);
        return 0;
}

/* An installer takes a package that unpacks to far more than its size for a
 * decompression bomb; refuse to build one rather than ship it. */
static int check_ratio(const pack_ctx *ctx, int fd, kpa_error *err)
{
        const kpa_package_limits *l = &ctx->limits;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kpa_error_set_errno(err, errno, "%s", ctx->opts->output_path);
        if (l->max_ratio == 0 || ctx->total_bytes < l->ratio_min_bytes || st.st_size <= 0)
                return 0;
        uint64_t ratio = ctx->total_bytes / (uint64_t)st.st_size;
        if (ratio > l->max_ratio)
                return kpa_error_set(err, EFBIG,
                                     "%s: %llu bytes compress to %lld, a ratio above the "
                                     "%llu:1 that an installer accepts; use --compress none",
                                     ctx->opts->output_path,
                                     (unsigned long long)ctx->total_bytes,
                                     (long long)st.st_size, (unsigned long long)l->max_ratio);
        return 0;
}

static void freelocalep(locale_t *l)
{
        if (*l != (locale_t)0)
                freelocale(*l);
}

/* Member names are UTF-8 whatever the caller's locale: libarchive converts
 * names through the current locale, so pin a UTF-8 one for this thread. */
static int write_package(pack_ctx *ctx, kpa_error *err)
{
        const char *path = ctx->opts->output_path;
        _cleanup_(freelocalep) locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
        if (utf8 == (locale_t)0)
                for (size_t i = 0; i < ctx->n_members; i++)
                        for (const char *p = ctx->members[i].component->install_path; *p; p++)
                                if ((unsigned char)*p >= 0x80)
                                        return kpa_error_set(
                                                err, ENOTSUP,
                                                "component %s: a non-ASCII name needs the "
                                                "C.UTF-8 locale, which is not available",
                                                ctx->members[i].component->install_path);

        _cleanup_(pack_output_done) pack_output out = { .dirfd = -1, .fd = -1 };
        int r = output_open(path, &out, err);
        if (r < 0)
                return r;
        locale_t old = utf8 != (locale_t)0 ? uselocale(utf8) : (locale_t)0;
        r = write_archive(ctx, out.fd, err);
        if (old != (locale_t)0)
                uselocale(old);
        if (r < 0)
                return r;
        r = check_ratio(ctx, out.fd, err);
        if (r < 0)
                return r;
        return output_commit(&out, path, err);
}

/* ---- The whole ---- */

static int check_options(const kpa_pack_options *opts, kpa_error *err)
{
        if (!opts || !opts->manifest_path || !opts->output_path)
                return kpa_error_set(err, EINVAL, "pack: a manifest and an output are needed");
        if (opts->n_inputs > 0 && !opts->inputs)
                return kpa_error_set(err, EINVAL, "pack: inputs missing");
        if ((unsigned)opts->compression > KPA_COMPRESS_NONE)
                return kpa_error_set(err, EINVAL, "pack: unknown compression %d",
                                     (int)opts->compression);
        return 0;
}

int kpa_pack(const kpa_pack_options *opts, kpa_error *err)
{
        kpa_error_clear(err);
        kpa_pack_options full;
        kpa_pack_options_init(&full);
        int r = kpa_struct_in(&full, opts, sizeof(full), "kpa_pack_options", err);
        if (r < 0)
                return r;
        opts = &full;
        r = check_options(opts, err);
        if (r < 0)
                return r;
        _cleanup_(pack_ctx_done) pack_ctx ctx = { .opts = opts };
        ctx.mtime = pack_mtime(opts);
        kpa_package_limits_init(&ctx.limits);
        ctx.buf = kpa_xmalloc(PACK_BUFFER_SIZE);
        if (opts->sign_key && (r = kpa_sign_key_load(opts->sign_key, &ctx.key, err)) < 0)
                return r;

        r = load_manifest(&ctx, err);
        if (r < 0)
                return r;
        struct stat st;
        if (stat(opts->output_path, &st) == 0) {
                if (!S_ISREG(st.st_mode))
                        return kpa_error_set(err, EEXIST, "%s: exists and is a %s",
                                             opts->output_path, file_type_name(st.st_mode));
                ctx.output_st = st;
                ctx.have_output_st = true;
        }
        ctx.n_inputs = opts->n_inputs;
        ctx.inputs = kpa_xcalloc(opts->n_inputs, sizeof(*ctx.inputs));
        for (size_t i = 0; i < opts->n_inputs; i++) {
                ctx.inputs[i].arg = opts->inputs[i];
                r = scan_input(&ctx, &ctx.inputs[i], err);
                if (r < 0)
                        return r;
        }
        r = plan_members(&ctx, err);
        if (r < 0)
                return r;
        r = fill_digests(&ctx, err);
        if (r < 0)
                return r;
        return write_package(&ctx, err);
}
