/* Unit tests for sign.c: key files (made, read, refused), fingerprints, the
 * text of manifest.sig, a sign/verify round trip over manifest bytes, and
 * what a changed byte, another key, an unknown key or a malformed member
 * give. tests/integration/sign.sh covers packages and the store through the
 * tools. No root needed. */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <nettle/base64.h>

#include "kpa/digest.h"
#include "kpa/package.h"
#include "sign.h"
#include "tap.h"
#include "util.h"

static char dir[] = "/tmp/kpa-test-sign-XXXXXX";

static char *path_of(const char *name)
{
        return kpa_xasprintf("%s/%s", dir, name);
}

static void write_file(const char *name, const char *text, mode_t mode)
{
        _cleanup_free_ char *p = path_of(name);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || kpa_write_all(fd, text, strlen(text)) < 0 || fchmod(fd, mode) < 0)
                abort();
}

static char *read_text(const char *name)
{
        _cleanup_free_ char *p = path_of(name);
        char *text = NULL;
        if (kpa_read_file_at(AT_FDCWD, p, 4096, &text, NULL) < 0)
                abort();
        return text;
}

/* The text fingerprint of a .pub, computed here from its base64. */
static void expected_fingerprint(const char *pub_text, char out[KPA_FINGERPRINT_TEXT_LEN + 1])
{
        const char *b64 = strchr(pub_text, ' ') + 1;
        uint8_t raw[64];
        size_t n = sizeof(raw);
        struct base64_decode_ctx ctx;
        base64_decode_init(&ctx);
        base64_decode_update(&ctx, &n, raw, 44, b64);
        kpa_sha256 h;
        char hex[65];
        kpa_sha256_init(&h);
        kpa_sha256_update(&h, raw, n);
        kpa_sha256_final_hex(&h, hex);
        size_t o = 0;
        for (size_t i = 0; i < 32; i++) {
                if (i && i % 4 == 0)
                        out[o++] = ':';
                out[o++] = hex[i];
        }
        out[o] = '\0';
}

static void test_generate(void)
{
        kpa_error err;
        char fp[KPA_FINGERPRINT_TEXT_LEN + 1], fp2[KPA_FINGERPRINT_TEXT_LEN + 1];
        char name[KPA_KEY_NAME_MAX + 1];
        _cleanup_free_ char *base = path_of("vendor");
        is(kpa_key_generate(base, fp, &err), 0, "a key pair is made");
        struct stat st;
        _cleanup_free_ char *key = path_of("vendor.key"), *pub = path_of("vendor.pub");
        ok(stat(key, &st) == 0 && (st.st_mode & 07777) == 0600, "the secret key is mode 0600");
        ok(stat(pub, &st) == 0 && (st.st_mode & 07777) == 0644, "the public key is mode 0644");
        _cleanup_free_ char *pub_text = read_text("vendor.pub");
        ok(strncmp(pub_text, "kpa-ed25519-public ", 19) == 0 && strlen(pub_text) == 19 + 44 + 8,
           "the public key is one line: tag, base64, name");
        char want[KPA_FINGERPRINT_TEXT_LEN + 1];
        expected_fingerprint(pub_text, want);
        is_str(fp, want, "the fingerprint is the SHA-256 of the raw public key");
        is(strlen(fp), KPA_FINGERPRINT_TEXT_LEN, "... in 8 groups of 4 hex digits");
        is(kpa_key_describe(pub, name, fp2, &err), 0, "the public key is read back");
        is_str(name, "vendor", "its name is the file name without .pub");
        is_str(fp2, fp, "... with the same fingerprint");
        is(kpa_key_describe(key, name, fp2, &err), 0, "the secret key is read back");
        is_str(fp2, fp, "... and gives the same public key");
        is(kpa_key_generate(base, NULL, &err), -EEXIST, "a second key of the same name is refused");
        ok(strstr(err.message, "already exists; refusing to overwrite it") != NULL,
           "... saying it would overwrite");
        _cleanup_free_ char *dot = path_of(".x"), *slash = path_of("a b"), *ext = path_of("k.key");
        is(kpa_key_generate(dot, NULL, &err), -EINVAL, "a name starting with '.' is refused");
        is(kpa_key_generate(slash, NULL, &err), -EINVAL, "a name with a space is refused");
        is(kpa_key_generate(ext, NULL, &err), -EINVAL, "a name ending in .key is refused");
}

static void test_bad_keys(void)
{
        kpa_error err;
        sign_key *k = NULL;
        static const struct {
                const char *name, *text, *why;
                mode_t mode;
        } cases[] = {
                {"empty.key", "", "not a kpa key file", 0600},
                {"noline.key", "kpa-ed25519-secret AAAA", "it must be one line", 0600},
                {"two.key", "a\nb\n", "it must be one line", 0600},
                {"garbage.key", "hello world\n", "not a kpa key file", 0600},
                {"short.key", "kpa-ed25519-secret AAAA x\n", "not 32 bytes of base64", 0600},
                {"nopad.key", "kpa-ed25519-secret AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA x\n",
                 "not 32 bytes of base64", 0600},
                {"public.key",
                 "kpa-ed25519-public AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= x\n",
                 "a public key, not a secret key", 0600},
                {"open.key", "kpa-ed25519-secret AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= x\n",
                 "mode 0640 lets others read or write the secret key", 0640},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                write_file(cases[i].name, cases[i].text, cases[i].mode);
                _cleanup_free_ char *p = path_of(cases[i].name);
                int q = kpa_sign_key_load(p, &k, &err);
                ok(q < 0 && strstr(err.message, cases[i].why) && strstr(err.message, p),
                   "%s is refused: %s", cases[i].name, cases[i].why);
                if (q >= 0)
                        kpa_sign_key_free(TAKE_PTR(k));
                else if (!strstr(err.message, cases[i].why))
                        printf("#   %s\n", err.message);
        }
        _cleanup_free_ char *pub = path_of("vendor.pub");
        is(kpa_sign_key_load(pub, &k, &err), -EINVAL, "a .pub cannot sign");
}

/* Sign RAW with KEYNAME, check it against the keys of the directory TRUSTED. */
static int check(const char *keyname, const char *raw, const char *raw_checked, const char *trusted,
                 kpa_signature_info *info, char **sig_out)
{
        kpa_error err;
        _cleanup_free_ char *kp = path_of(keyname), *tp = path_of(trusted);
        _cleanup_(sign_key_freep) sign_key *k = NULL;
        _cleanup_(sign_trusted_freep) sign_trusted *t = NULL;
        if (kpa_sign_key_load(kp, &k, &err) < 0 || kpa_sign_trusted_load(tp, &t, &err) < 0) {
                printf("#   %s\n", err.message);
                return -1;
        }
        size_t len;
        _cleanup_free_ char *sig = kpa_sign_manifest(k, raw, strlen(raw), &len);
        int q = kpa_sign_check(t, raw_checked, strlen(raw_checked), sig, len, "test", info, &err);
        if (sig_out)
                *sig_out = TAKE_PTR(sig);
        return q;
}

static void test_round_trip(void)
{
        kpa_error err;
        _cleanup_free_ char *other = path_of("other"), *keys = path_of("keys"),
                            *none = path_of("none");
        if (kpa_key_generate(other, NULL, &err) < 0 || mkdir(keys, 0700) < 0 ||
            mkdir(none, 0700) < 0)
                abort();
        _cleanup_free_ char *pub_text = read_text("vendor.pub");
        write_file("keys/vendor.pub", pub_text, 0644);
        write_file("keys/README", "not a key: ignored\n", 0644);
        const char *raw = "{\"version\": \"2.0\"}\n";
        kpa_signature_info info;
        kpa_signature_info_init(&info);
        _cleanup_free_ char *sig = NULL, *sig2 = NULL;
        is(check("vendor.key", raw, raw, "keys", &info, &sig), 0, "a signature is checked");
        is(info.status, KPA_SIGNATURE_TRUSTED, "... and matches, by a trusted key");
        is_str(info.key_name, "vendor", "... named after its file");
        is(info.n_trusted, 1, "... the one trusted key (README is not a key)");
        char want[KPA_FINGERPRINT_TEXT_LEN + 1];
        expected_fingerprint(pub_text, want);
        is_str(info.fingerprint, want, "... with its fingerprint");
        static const char start[] = "{\"algorithm\": \"ed25519\", \"key\": \"";
        ok(strncmp(sig, start, strlen(start)) == 0 && strchr(sig, '\n') == sig + strlen(sig) - 1 &&
                   sig[strlen(sig) - 1] == '\n',
           "manifest.sig is one line of JSON");
        check("vendor.key", raw, raw, "keys", &info, &sig2);
        is_str(sig2, sig, "signing is deterministic");
        {
                /* the member as the archive reader may hand it over: LEN bytes, no NUL after */
                _cleanup_(sign_trusted_freep) sign_trusted *tk = NULL;
                size_t n = strlen(sig);
                _cleanup_free_ char *buf = kpa_xmalloc(n + 8);
                memcpy(buf, sig, n);
                memcpy(buf + n, "}}}}}}}}", 8);
                ok(kpa_sign_trusted_load(keys, &tk, &err) == 0 &&
                           kpa_sign_check(tk, raw, strlen(raw), buf, n, "m", &info, &err) == 0 &&
                           info.status == KPA_SIGNATURE_TRUSTED,
                   "a member without a NUL after it is read to its length only");
        }
        is(check("vendor.key", raw, "{\"version\": \"2.1\"}\n", "keys", &info, NULL), 0,
           "changed bytes are checked");
        is(info.status, KPA_SIGNATURE_BAD, "... and do not match");
        ok(strstr(info.problem, "does not match manifest.json") != NULL, "... saying so");
        is(check("other.key", raw, raw, "keys", &info, NULL), 0, "another key's signature");
        is(info.status, KPA_SIGNATURE_UNKNOWN_KEY, "... is by an unknown key");
        ok(info.fingerprint[0] && !info.key_name[0], "... with a fingerprint and no name");
        is(check("vendor.key", raw, raw, "none", &info, NULL), 0, "with no key trusted");
        ok(info.status == KPA_SIGNATURE_UNKNOWN_KEY && info.n_trusted == 0, "... it is unknown");

        /* malformed members */
        _cleanup_(sign_trusted_freep) sign_trusted *t = NULL;
        if (kpa_sign_trusted_load(keys, &t, &err) < 0)
                abort();
        static const char *const bad[] = {
                "",
                "[]",
                "{\"algorithm\": \"ed25519\"}",
                "{\"algorithm\": \"rsa\", \"key\": \"00\", \"signature\": \"\"}",
                "{\"algorithm\": \"ed25519\", \"key\": \"00\", \"signature\": \"\", \"x\": 1}",
                "{\"algorithm\": \"ed25519\", \"algorithm\": \"ed25519\", \"key\": \"00\"}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                is(kpa_sign_check(t, raw, strlen(raw), bad[i], strlen(bad[i]), "m.sig", &info,
                                  &err),
                   -EBADMSG, "malformed manifest.sig %zu is refused", i);
        is(kpa_sign_check(t, raw, strlen(raw), NULL, 0, "m.sig", &info, &err), 0, "no signature");
        is(info.status, KPA_SIGNATURE_UNSIGNED, "... is unsigned");

        /* trusted key files that are refused */
        write_file("keys/loose.pub", pub_text, 0666);
        sign_trusted *t2 = NULL;
        is(kpa_sign_trusted_load(keys, &t2, &err), -EPERM,
           "a trusted key others may write is refused");
        write_file("keys/loose.pub", "junk\n", 0644);
        is(kpa_sign_trusted_load(keys, &t2, &err), -EINVAL,
           "a trusted key that is no key is refused");
        _cleanup_free_ char *missing = path_of("missing");
        is(kpa_sign_trusted_load(missing, &t2, &err), -ENOENT,
           "a trusted keys directory given must exist");
}

int main(void)
{
        if (!mkdtemp(dir))
                return 1;
        test_generate();
        test_bad_keys();
        test_round_trip();
        (void)kpa_rm_rf_at(AT_FDCWD, dir);
        return tap_done();
}
