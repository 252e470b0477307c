/* sign.c: Ed25519 signatures of packages (nettle). It owns the key files
 * (making, reading and checking them), the trusted keys directory, the
 * text of the member manifest.sig, the check of a signature over
 * manifest.json, and the policy an install applies (kpa/package.h,
 * "Signatures", has the formats). Where the member sits in the archive is
 * archive-read.c's and pack.c's business; the digests of the components,
 * which the signed manifest carries, are checked by archive-read.c. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>
#include <nettle/base64.h>
#include <nettle/eddsa.h>

#include "archive-read.h"
#include "json-strict.h"
#include "kpa/digest.h"
#include "sign.h"
#include "store-internal.h"
#include "util.h"

#define SECRET_TAG "kpa-ed25519-secret"
#define PUBLIC_TAG "kpa-ed25519-public"
#define KEY_FILE_MAX 1024
#define TRUSTED_MAX 1000
/* what is signed: this, then manifest.json (a key signs nothing else of kpa,
 * but a signature made for one purpose must never pass for another) */
#define SIGN_CONTEXT "kpa-manifest-signature-v1\n"

const char *kpa_trusted_keys_default_dir(void)
{
        return KPA_SYSCONFDIR "/kpa/trusted.d";
}

/* ---- encodings ---- */

static char *b64_encode(const uint8_t *data, size_t n)
{
        char *out = kpa_xmalloc(BASE64_ENCODE_RAW_LENGTH(n) + 1);
        base64_encode_raw(out, n, data);
        out[BASE64_ENCODE_RAW_LENGTH(n)] = '\0';
        return out;
}

/* Exactly N bytes in canonical base64 (padding, no whitespace). */
static int b64_decode_exact(const char *text, uint8_t *out, size_t n)
{
        if (strlen(text) != BASE64_ENCODE_RAW_LENGTH(n))
                return -EINVAL;
        uint8_t buf[BASE64_DECODE_LENGTH(BASE64_ENCODE_RAW_LENGTH(64))];
        if (BASE64_DECODE_LENGTH(strlen(text)) > sizeof(buf))
                return -EINVAL;
        struct base64_decode_ctx ctx;
        size_t len = sizeof(buf);
        base64_decode_init(&ctx);
        if (!base64_decode_update(&ctx, &len, buf, strlen(text), text) ||
            !base64_decode_final(&ctx) || len != n)
                return -EINVAL;
        _cleanup_free_ char *again = b64_encode(buf, n);
        if (!streq(again, text))
                return -EINVAL;
        memcpy(out, buf, n);
        explicit_bzero(buf, sizeof(buf));
        return 0;
}

static void fingerprint_hex(const uint8_t pub[ED25519_KEY_SIZE], char hex[65])
{
        kpa_sha256 h;
        kpa_sha256_init(&h);
        kpa_sha256_update(&h, pub, ED25519_KEY_SIZE);
        kpa_sha256_final_hex(&h, hex);
}

/* "1a2b:3c4d:...": the first 16 bytes of the hex form, in groups of 4 */
static void fingerprint_text(const char *hex, char out[KPA_FINGERPRINT_TEXT_LEN + 1])
{
        size_t o = 0;
        for (size_t i = 0; i < 32; i++) {
                if (i && i % 4 == 0)
                        out[o++] = ':';
                out[o++] = hex[i];
        }
        out[o] = '\0';
}

static bool is_hex64(const char *s)
{
        if (strlen(s) != 64)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

/* ---- key files ---- */

/* A key's name: the file name without its .key or .pub. */
static int key_name_check(const char *name, kpa_error *err)
{
        size_t n = strlen(name);
        if (n == 0 || n > KPA_KEY_NAME_MAX || name[0] == '.')
                return kpa_error_set(err, EINVAL,
                                     "key name \"%s\": it must be 1 to %d characters, not starting "
                                     "with '.'",
                                     name, KPA_KEY_NAME_MAX);
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
                        return kpa_error_set(err, EINVAL,
                                             "key name \"%s\": only letters, digits, '.', '_' "
                                             "and '-' are allowed",
                                             name);
        return 0;
}

static void name_from_path(const char *path, const char *suffix, char out[KPA_KEY_NAME_MAX + 1])
{
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        size_t n = strlen(base), s = strlen(suffix);
        if (n > s && streq(base + n - s, suffix))
                n -= s;
        snprintf(out, KPA_KEY_NAME_MAX + 1, "%.*s", (int)n, base);
}

static bool has_suffix(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);
        return n >= m && streq(s + n - m, suffix);
}

/* One line "TAG BASE64 [COMMENT]" of the key file PATH (TEXT) into KEY. */
static int parse_key_text(const char *path, const char *text, const char *tag,
                          uint8_t key[ED25519_KEY_SIZE], kpa_error *err)
{
        /* TEXT is what read_key_file() read: it sets it whenever it returns 0.
         * (clang's analyzer, inlining kpa_store_signature() -> ... ->
         * load_trusted_key(), takes an error return of it for a success.) */
        const char *nl = strchr(text, '\n'); // NOLINT(clang-analyzer-core.NonNullParamChecker)
        if (!nl || nl[1] != '\0')
                return kpa_error_set(err, EINVAL, "%s: not a kpa key file (it must be one line)",
                                     path);
        _cleanup_free_ char *line = kpa_xstrndup(text, (size_t)(nl - text));
        char *save = NULL;
        const char *t = strtok_r(line, " ", &save);
        const char *b64 = t ? strtok_r(NULL, " ", &save) : NULL;
        if (!t || !streq(t, tag)) {
                bool other = t && (streq(t, SECRET_TAG) || streq(t, PUBLIC_TAG));
                return kpa_error_set(err, EINVAL, "%s: %s (it must start with \"%s\")", path,
                                     other ? (streq(tag, SECRET_TAG)
                                                      ? "a public key, not a secret key"
                                                      : "a secret key, not a public key")
                                           : "not a kpa key file",
                                     tag);
        }
        if (!b64 || b64_decode_exact(b64, key, ED25519_KEY_SIZE) < 0)
                return kpa_error_set(err, EINVAL,
                                     "%s: the key is not %d bytes of base64 after \"%s \"", path,
                                     ED25519_KEY_SIZE, tag);
        return 0;
}

/* Read the key file PATH (or NAME below DIRFD when DIRFD >= 0), a regular
 * file that nobody else may write to; SECRET: nobody else may read it. */
static int read_key_file(int dirfd, const char *name, const char *path, bool secret, bool trusted,
                         char **text, kpa_error *err)
{
        _cleanup_close_ int fd =
                dirfd >= 0 ? openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
                           : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        if (!S_ISREG(st.st_mode))
                return kpa_error_set(err, EINVAL, "%s: not a regular file", path);
        if (secret && (st.st_mode & 077))
                return kpa_error_set(err, EPERM,
                                     "%s: mode %04o lets others %s the secret key; refused "
                                     "(chmod 600 it, and make a new key if others may have "
                                     "read it)",
                                     path, (unsigned)(st.st_mode & 07777),
                                     st.st_mode & 066 ? "read or write" : "use");
        if (trusted && ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022)))
                return kpa_error_set(err, EPERM,
                                     "trusted key %s is not owned by root (or by you) and "
                                     "writable by its owner only (owner %u, mode %04o); refused",
                                     path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        int q = kpa_read_fd(fd, KEY_FILE_MAX, text, NULL);
        if (q == -EFBIG)
                return kpa_error_set(err, EFBIG, "%s: over %d bytes, not a kpa key file", path,
                                     KEY_FILE_MAX);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "%s", path);
        return 0;
}

struct sign_key {
        uint8_t seed[ED25519_KEY_SIZE];
        uint8_t pub[ED25519_KEY_SIZE];
        char name[KPA_KEY_NAME_MAX + 1];
        char fingerprint[65];
};

void kpa_sign_key_free(sign_key *k)
{
        if (!k)
                return;
        explicit_bzero(k, sizeof(*k));
        free(k);
}

const char *kpa_sign_key_name(const sign_key *k)
{
        return k->name;
}

int kpa_sign_key_load(const char *path, sign_key **out, kpa_error *err)
{
        if (has_suffix(path, ".pub"))
                return kpa_error_set(err, EINVAL,
                                     "%s: a public key cannot sign; give the secret key, NAME.key",
                                     path);
        _cleanup_free_ char *text = NULL;
        int q = read_key_file(-1, NULL, path, true, false, &text, err);
        if (q < 0)
                return q;
        _cleanup_(sign_key_freep) sign_key *k = kpa_xcalloc(1, sizeof(*k));
        q = parse_key_text(path, text, SECRET_TAG, k->seed, err);
        explicit_bzero(text, strlen(text));
        if (q < 0)
                return q;
        ed25519_sha512_public_key(k->pub, k->seed);
        fingerprint_hex(k->pub, k->fingerprint);
        name_from_path(path, ".key", k->name);
        *out = TAKE_PTR(k);
        return 0;
}

static int write_new_file(const char *path, mode_t mode, const char *text, kpa_error *err)
{
        _cleanup_close_ int fd =
                open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0 && errno == EEXIST)
                return kpa_error_set(err, EEXIST, "%s already exists; refusing to overwrite it",
                                     path);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "cannot create %s", path);
        int q = fchmod(fd, mode) < 0 ? -errno : 0; /* whatever the umask */
        if (q == 0)
                q = kpa_write_all(fd, text, strlen(text));
        if (q == 0 && fsync(fd) < 0)
                q = -errno;
        if (q < 0) {
                (void)unlink(path);
                return kpa_error_set_errno(err, -q, "cannot write %s", path);
        }
        return 0;
}

int kpa_key_generate(const char *path, char fingerprint[KPA_FINGERPRINT_TEXT_LEN + 1],
                     kpa_error *err)
{
        char name[KPA_KEY_NAME_MAX + 1];
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        if (strlen(base) > KPA_KEY_NAME_MAX)
                return kpa_error_set(err, EINVAL, "key name \"%s\" is longer than %d characters",
                                     base, KPA_KEY_NAME_MAX);
        snprintf(name, sizeof(name), "%s", base);
        int q = key_name_check(name, err);
        if (q < 0)
                return q;
        if (has_suffix(name, ".key") || has_suffix(name, ".pub"))
                return kpa_error_set(err, EINVAL,
                                     "key name \"%s\": give the name without .key or .pub "
                                     "(NAME makes NAME.key and NAME.pub)",
                                     name);
        sign_key k = {0};
        size_t got = 0;
        while (got < sizeof(k.seed)) {
                ssize_t n = getrandom(k.seed + got, sizeof(k.seed) - got, 0);
                if (n < 0 && errno != EINTR)
                        return kpa_error_set_errno(err, errno, "getrandom");
                if (n > 0)
                        got += (size_t)n;
        }
        ed25519_sha512_public_key(k.pub, k.seed);
        _cleanup_free_ char *seed64 = b64_encode(k.seed, sizeof(k.seed));
        _cleanup_free_ char *pub64 = b64_encode(k.pub, sizeof(k.pub));
        _cleanup_free_ char *secret = kpa_xasprintf("%s %s %s\n", SECRET_TAG, seed64, name);
        _cleanup_free_ char *public = kpa_xasprintf("%s %s %s\n", PUBLIC_TAG, pub64, name);
        explicit_bzero(&k.seed, sizeof(k.seed));
        explicit_bzero(seed64, strlen(seed64));
        _cleanup_free_ char *key_path = kpa_xasprintf("%s.key", path);
        _cleanup_free_ char *pub_path = kpa_xasprintf("%s.pub", path);
        struct stat st;
        const char *exists = lstat(key_path, &st) == 0   ? key_path
                             : lstat(pub_path, &st) == 0 ? pub_path /* before the key is written */
                                                         : NULL;
        if (exists)
                q = kpa_error_set(err, EEXIST, "%s already exists; refusing to overwrite it",
                                  exists);
        if (q >= 0)
                q = write_new_file(key_path, 0600, secret, err);
        explicit_bzero(secret, strlen(secret));
        if (q < 0)
                return q;
        q = write_new_file(pub_path, 0644, public, err);
        if (q < 0) {
                (void)unlink(key_path);
                return q;
        }
        if (fingerprint) {
                char hex[65];
                fingerprint_hex(k.pub, hex);
                fingerprint_text(hex, fingerprint);
        }
        return 0;
}

int kpa_key_describe(const char *path, char name[KPA_KEY_NAME_MAX + 1],
                     char fingerprint[KPA_FINGERPRINT_TEXT_LEN + 1], kpa_error *err)
{
        uint8_t pub[ED25519_KEY_SIZE];
        if (has_suffix(path, ".pub")) {
                _cleanup_free_ char *text = NULL;
                int q = read_key_file(-1, NULL, path, false, false, &text, err);
                if (q < 0 || (q = parse_key_text(path, text, PUBLIC_TAG, pub, err)) < 0)
                        return q;
                if (name)
                        name_from_path(path, ".pub", name);
        } else {
                _cleanup_(sign_key_freep) sign_key *k = NULL;
                int q = kpa_sign_key_load(path, &k, err);
                if (q < 0)
                        return q;
                memcpy(pub, k->pub, sizeof(pub));
                if (name)
                        snprintf(name, KPA_KEY_NAME_MAX + 1, "%s", k->name);
        }
        char hex[65];
        fingerprint_hex(pub, hex);
        if (fingerprint)
                fingerprint_text(hex, fingerprint);
        return 0;
}

/* ---- signing ---- */

static uint8_t *signed_message(const char *raw, size_t len, size_t *out_len)
{
        /* the context without its NUL, then the manifest's bytes */
        static const char context[] = SIGN_CONTEXT;
        size_t c = sizeof(context) - 1;
        uint8_t *msg = kpa_xmalloc(c + len + 1);
        for (size_t k = 0; k < c; k++)
                msg[k] = (uint8_t)context[k];
        memcpy(msg + c, raw, len);
        *out_len = c + len;
        return msg;
}

char *kpa_sign_manifest(const sign_key *k, const char *raw, size_t len, size_t *out_len)
{
        size_t n;
        _cleanup_free_ uint8_t *msg = signed_message(raw, len, &n);
        uint8_t sig[ED25519_SIGNATURE_SIZE];
        ed25519_sha512_sign(k->pub, k->seed, n, msg, sig);
        _cleanup_free_ char *sig64 = b64_encode(sig, sizeof(sig));
        char *text = kpa_xasprintf("{\"algorithm\": \"ed25519\", \"key\": \"%s\", "
                                   "\"signature\": \"%s\"}\n",
                                   k->fingerprint, sig64);
        *out_len = strlen(text);
        return text;
}

/* ---- trusted keys ---- */

typedef struct trusted_key {
        char name[KPA_KEY_NAME_MAX + 1];
        char fingerprint[65];
        uint8_t pub[ED25519_KEY_SIZE];
} trusted_key;

struct sign_trusted {
        char *dir;
        trusted_key *keys;
        size_t n;
};

void kpa_sign_trusted_free(sign_trusted *t)
{
        if (!t)
                return;
        free(t->dir);
        free(t->keys);
        free(t);
}

size_t kpa_sign_trusted_count(const sign_trusted *t)
{
        return t->n;
}
const char *kpa_sign_trusted_dir(const sign_trusted *t)
{
        return t->dir;
}

/* The names *.pub of the directory D, sorted. */
static int list_pub_files(DIR *d, const char *dir, char ***out, size_t *n, kpa_error *err)
{
        char **v = NULL;
        size_t count = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || !has_suffix(de->d_name, ".pub") ||
                    streq(de->d_name, ".pub"))
                        continue;
                if (count == TRUSTED_MAX) {
                        for (size_t i = 0; i < count; i++)
                                free(v[i]);
                        free(v);
                        return kpa_error_set(err, EFBIG, "%s: more than %d trusted keys", dir,
                                             TRUSTED_MAX);
                }
                v = kpa_xrealloc(v, (count + 2) * sizeof(char *));
                v[count++] = kpa_xstrdup(de->d_name);
                v[count] = NULL;
        }
        if (v)
                qsort(v, count, sizeof(char *), kpa_strcmp_ptr);
        *out = v ? v : kpa_xcalloc(1, sizeof(char *));
        *n = count;
        return 0;
}

static int load_trusted_key(sign_trusted *t, int dfd, const char *file, kpa_error *err)
{
        _cleanup_free_ char *path = kpa_xasprintf("%s/%s", t->dir, file);
        trusted_key *k = &t->keys[t->n];
        name_from_path(file, ".pub", k->name);
        int q = key_name_check(k->name, err);
        if (q < 0)
                return kpa_error_prefix(err, "trusted key %s", path);
        _cleanup_free_ char *text = NULL;
        q = read_key_file(dfd, file, path, false, true, &text, err);
        if (q < 0)
                return q;
        q = parse_key_text(path, text, PUBLIC_TAG, k->pub, err);
        if (q < 0)
                return kpa_error_prefix(err, "trusted key");
        fingerprint_hex(k->pub, k->fingerprint);
        t->n++;
        return 0;
}

int kpa_sign_trusted_load(const char *dir, sign_trusted **out, kpa_error *err)
{
        _cleanup_(sign_trusted_freep) sign_trusted *t = kpa_xcalloc(1, sizeof(*t));
        t->dir = kpa_xstrdup(dir ? dir : kpa_trusted_keys_default_dir());
        int fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && !dir) {
                *out = TAKE_PTR(t); /* no directory: no key trusted */
                return 0;
        }
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "trusted keys directory %s", t->dir);
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                close(fd);
                return kpa_error_set_errno(err, e, "trusted keys directory %s", t->dir);
        }
        struct stat st;
        if (fstat(dirfd(d), &st) < 0)
                return kpa_error_set_errno(err, errno, "trusted keys directory %s", t->dir);
        /* whoever may add a file there decides what is trusted */
        if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022))
                return kpa_error_set(err, EPERM,
                                     "trusted keys directory %s is not owned by root (or by you) "
                                     "and writable by its owner only (owner %u, mode %04o); "
                                     "refused",
                                     t->dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        _cleanup_strv_free_ char **files = NULL;
        size_t n = 0;
        int q = list_pub_files(d, t->dir, &files, &n, err);
        if (q < 0)
                return q;
        t->keys = kpa_xcalloc(n ? n : 1, sizeof(trusted_key));
        for (size_t i = 0; i < n; i++)
                if ((q = load_trusted_key(t, dirfd(d), files[i], err)) < 0)
                        return q;
        *out = TAKE_PTR(t);
        return 0;
}

/* ---- checking ---- */

typedef struct parsed_sig {
        char key[65];
        uint8_t sig[ED25519_SIGNATURE_SIZE];
} parsed_sig;

static const char *sig_string(json_object *o, const char *key)
{
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static int parse_sig(const char *text, size_t len, const char *what, parsed_sig *out,
                     kpa_error *err)
{
        if (json_strict_check(text, len, SIGN_MEMBER_MAX, err) < 0) {
                if (err)
                        err->code = EBADMSG; /* a bad member, whatever JSON rule it broke */
                kpa_error_prefix(err, "%s", what);
                return -EBADMSG;
        }
        /* TEXT need not end in a NUL: parse exactly LEN bytes */
        json_tokener *tok = json_tokener_new();
        json_object *o = tok ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
        if (tok)
                json_tokener_free(tok);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return kpa_error_set(err, EBADMSG, "%s: not a JSON object", what);
        }
        int q = 0;
        const char *alg = sig_string(o, "algorithm"), *key = sig_string(o, "key");
        const char *sig = sig_string(o, "signature");
        if (json_object_object_length(o) != 3 || !alg || !key || !sig)
                q = kpa_error_set(err, EBADMSG,
                                  "%s: it must hold exactly the strings \"algorithm\", \"key\" "
                                  "and \"signature\"",
                                  what);
        else if (!streq(alg, "ed25519"))
                q = kpa_error_set(err, EBADMSG, "%s: unknown algorithm \"%.32s\" (only ed25519)",
                                  what, alg);
        else if (!is_hex64(key))
                q = kpa_error_set(err, EBADMSG,
                                  "%s: \"key\" is not a SHA-256 fingerprint (64 lowercase hex "
                                  "digits)",
                                  what);
        else if (b64_decode_exact(sig, out->sig, sizeof(out->sig)) < 0)
                q = kpa_error_set(err, EBADMSG, "%s: \"signature\" is not %d bytes of base64", what,
                                  ED25519_SIGNATURE_SIZE);
        else
                snprintf(out->key, sizeof(out->key), "%s", key);
        json_object_put(o);
        return q;
}

int kpa_sign_check(const sign_trusted *t, const char *raw, size_t len, const char *sig,
                   size_t sig_len, const char *what, kpa_signature_info *info, kpa_error *err)
{
        memset(info, 0, sizeof(*info));
        info->n_trusted = t->n;
        if (!sig)
                return 0;
        parsed_sig p;
        int q = parse_sig(sig, sig_len, what, &p, err);
        if (q < 0)
                return q;
        fingerprint_text(p.key, info->fingerprint);
        const trusted_key *k = NULL;
        for (size_t i = 0; i < t->n && !k; i++)
                if (streq(t->keys[i].fingerprint, p.key))
                        k = &t->keys[i];
        if (!k) {
                info->status = KPA_SIGNATURE_UNKNOWN_KEY;
                return 0;
        }
        snprintf(info->key_name, sizeof(info->key_name), "%s", k->name);
        size_t n;
        _cleanup_free_ uint8_t *msg = signed_message(raw, len, &n);
        if (ed25519_sha512_verify(k->pub, n, msg, p.sig)) {
                info->status = KPA_SIGNATURE_TRUSTED;
                return 0;
        }
        info->status = KPA_SIGNATURE_BAD;
        snprintf(info->problem, sizeof(info->problem),
                 "the signature by key %s (fingerprint %s) does not match manifest.json", k->name,
                 info->fingerprint);
        return 0;
}

/* ---- install ---- */

static const char *keys_are(size_t n)
{
        return n == 1 ? "key is" : "keys are";
}

int sign_install_check(sign_install *si, const kpa_install_options *opts, const char *path,
                       const char *raw, size_t len, const char *sig, size_t sig_len, kpa_error *err)
{
        _cleanup_(sign_trusted_freep) sign_trusted *t = NULL;
        int q = kpa_sign_trusted_load(opts->trusted_keys_dir, &t, err);
        if (q < 0)
                return q;
        _cleanup_free_ char *what = kpa_xasprintf("%s: %s", path, SIGN_MEMBER);
        kpa_signature_info info;
        q = kpa_sign_check(t, raw, len, sig, sig_len, what, &info, err);
        if (q < 0)
                return q;
        bool allow = opts->flags & KPA_INSTALL_ALLOW_UNSIGNED;
        switch (info.status) {
        case KPA_SIGNATURE_BAD:
                return kpa_error_set(err, EBADMSG,
                                     "%s: %s: the package was changed after it was signed; "
                                     "refused",
                                     path, info.problem);
        case KPA_SIGNATURE_UNKNOWN_KEY:
                if (t->n && !allow)
                        return kpa_error_set(err, EPERM,
                                             "%s: signed by an unknown key (fingerprint %s), "
                                             "not one of the trusted keys in %s; refused (trust "
                                             "its .pub there, or install with --allow-unsigned)",
                                             path, info.fingerprint, t->dir);
                break;
        case KPA_SIGNATURE_UNSIGNED:
                if (t->n && !allow)
                        return kpa_error_set(err, EPERM,
                                             "%s: the package is not signed, and %zu %s trusted "
                                             "in %s; refused (--allow-unsigned installs it "
                                             "anyway)",
                                             path, t->n, keys_are(t->n), t->dir);
                break;
        case KPA_SIGNATURE_TRUSTED: break;
        }
        si->allowed_unsigned = t->n && info.status != KPA_SIGNATURE_TRUSTED;
        if (sig) {
                si->sig = kpa_xmalloc(sig_len + 1);
                memcpy(si->sig, sig, sig_len);
                si->sig[sig_len] = '\0';
                si->sig_len = sig_len;
        }
        return 0;
}

static int write_at(int dirfd, const char *name, const char *data, size_t len)
{
        _cleanup_close_ int fd =
                openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        return kpa_write_all(fd, data, len);
}

int sign_install_record(const sign_install *si, int dirfd, const char *app_id, kpa_error *err)
{
        int q;
        if (si->sig && (q = write_at(dirfd, SIGN_MEMBER, si->sig, si->sig_len)) < 0)
                return kpa_error_set_errno(err, -q, "install %s: write %s", app_id, SIGN_MEMBER);
        if (!si->allowed_unsigned)
                return 0;
        _cleanup_free_ char *text =
                kpa_xasprintf("{\"allowUnsigned\": true, \"uid\": %u, \"time\": %lld}\n",
                              (unsigned)getuid(), (long long)time(NULL));
        if ((q = write_at(dirfd, SIGN_UNSIGNED_RECORD, text, strlen(text))) < 0)
                return kpa_error_set_errno(err, -q, "install %s: write %s", app_id,
                                           SIGN_UNSIGNED_RECORD);
        return 0;
}

void sign_install_done(sign_install *si)
{
        free(si->sig);
        memset(si, 0, sizeof(*si));
}

/* ---- who signed a package file, an installed package ---- */

typedef struct head_ctx {
        char *raw;
        size_t len;
        char *sig;
        size_t sig_len;
        bool done;
} head_ctx;

static int head_on_signature(void *userdata, const char *raw, size_t len, const char *sig,
                             size_t sig_len, kpa_error *err)
{
        head_ctx *h = userdata;
        h->raw = kpa_xmalloc(len + 1);
        memcpy(h->raw, raw, len);
        h->raw[len] = '\0';
        h->len = len;
        if (sig) {
                h->sig = kpa_xmalloc(sig_len + 1);
                memcpy(h->sig, sig, sig_len);
                h->sig[sig_len] = '\0';
                h->sig_len = sig_len;
        }
        h->done = true;
        return kpa_error_set(err, ECANCELED,
                             "stop after the signature"); /* the rest is not needed */
}

void kpa_signature_info_init(kpa_signature_info *info)
{
        memset(info, 0, sizeof(*info));
        info->struct_size = sizeof(*info);
}

static int package_signature(const char *path, const char *trusted_keys_dir,
                             kpa_signature_info *out, kpa_error *err);

int kpa_package_signature(const char *path, const char *trusted_keys_dir, kpa_signature_info *out,
                          kpa_error *err)
{
        int q = kpa_struct_check(out, sizeof(kpa_signature_info), "kpa_signature_info", err);
        if (q < 0)
                return q;
        kpa_signature_info full;
        kpa_signature_info_init(&full);
        q = package_signature(path, trusted_keys_dir, &full, err);
        kpa_struct_out(out, &full);
        return q;
}

static int package_signature(const char *path, const char *trusted_keys_dir,
                             kpa_signature_info *out, kpa_error *err)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return kpa_error_set_errno(err, errno, "%s", path);
        head_ctx h = {0};
        kpa_package_sink sink = {.signature = head_on_signature, .userdata = &h};
        int q = kpa_package_read(fd, path, NULL, &sink, NULL, NULL, err);
        _cleanup_free_ char *raw = h.raw, *sig = h.sig;
        if (!h.done)
                return q < 0 ? q : kpa_error_set(err, EBADMSG, "%s: no manifest", path);
        kpa_error_clear(err);
        _cleanup_(sign_trusted_freep) sign_trusted *t = NULL;
        if ((q = kpa_sign_trusted_load(trusted_keys_dir, &t, err)) < 0)
                return q;
        _cleanup_free_ char *what = kpa_xasprintf("%s: %s", path, SIGN_MEMBER);
        return kpa_sign_check(t, raw, h.len, sig, h.sig_len, what, out, err);
}

int kpa_store_signature(kpa_store *s, const char *app_id, const char *trusted_keys_dir,
                        kpa_signature_info *out, kpa_error *err)
{
        int q = kpa_struct_check(out, sizeof(kpa_signature_info), "kpa_signature_info", err);
        if (q < 0)
                return q;
        kpa_signature_info full;
        kpa_signature_info_init(&full);
        q = store_tree_signature(s, "apps", app_id, trusted_keys_dir, &full, err);
        kpa_struct_out(out, &full);
        return q;
}

int store_tree_signature(kpa_store *s, const char *top, const char *app_id,
                         const char *trusted_keys_dir, kpa_signature_info *out, kpa_error *err)
{
        int q = store_check_app_id(app_id, err);
        if (q < 0)
                return q;
        _cleanup_free_ char *mpath = kpa_xasprintf("%s/%s/manifest.json", top, app_id);
        _cleanup_free_ char *spath = kpa_xasprintf("%s/%s/%s", top, app_id, SIGN_MEMBER);
        _cleanup_free_ char *upath = kpa_xasprintf("%s/%s/%s", top, app_id, SIGN_UNSIGNED_RECORD);
        _cleanup_free_ char *raw = NULL, *sig = NULL;
        size_t len = 0, sig_len = 0;
        q = kpa_read_file_at(s->root_fd, mpath, KPA_MANIFEST_MAX_SIZE, &raw, &len);
        if (q == -ENOENT)
                return kpa_error_set(err, ENOENT, "%s is not installed in %s", app_id, s->root);
        if (q < 0)
                return kpa_error_set_errno(err, -q, "%s/%s", s->root, mpath);
        q = kpa_read_file_at(s->root_fd, spath, SIGN_MEMBER_MAX, &sig, &sig_len);
        if (q < 0 && q != -ENOENT && q != -EFBIG)
                return kpa_error_set_errno(err, -q, "%s/%s", s->root, spath);
        bool sig_too_big = q == -EFBIG;
        _cleanup_(sign_trusted_freep) sign_trusted *t = NULL;
        if ((q = kpa_sign_trusted_load(trusted_keys_dir, &t, err)) < 0)
                return q;
        struct stat st;
        bool allowed = fstatat(s->root_fd, upath, &st, AT_SYMLINK_NOFOLLOW) == 0;
        _cleanup_free_ char *what = kpa_xasprintf("%s/%s", s->root, spath);
        kpa_error why;
        if (sig_too_big)
                q = kpa_error_set(&why, EFBIG, "%s: larger than %d bytes", what, SIGN_MEMBER_MAX);
        else
                q = kpa_sign_check(t, raw, len, sig, sig_len, what, out, &why);
        if (q < 0) { /* damaged after the install, which checked it */
                memset(out, 0, sizeof(*out));
                out->status = KPA_SIGNATURE_BAD;
                out->n_trusted = t->n;
                size_t n = strnlen(why.message, sizeof(out->problem) - 1);
                memcpy(out->problem, why.message, n);
                out->problem[n] = '\0';
        }
        out->allowed_unsigned = allowed;
        return 0;
}
