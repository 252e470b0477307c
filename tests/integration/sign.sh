#!/bin/bash
# sign.sh: signed packages. kpa-pack --new-key makes a key pair and never
# overwrites one, --sign adds manifest.sig right after manifest.json and
# stays deterministic; with a trusted key, kpa-install refuses every package
# that is not signed by one (tampered component, manifest or signature, a
# second key, a signature moved from another package, a misplaced or
# doubled signature, a truncated archive, no signature) naming the cause,
# with the store unchanged; --allow-unsigned lets one through, loudly and
# recorded; --info and --verify show and re-check the signature.
. "$(dirname "$0")/lib.sh"

command -v bsdtar >/dev/null || skip_all "bsdtar (libarchive-tools) not installed"

STORE=$T/store KEYS=$T/keys
mkdir -m 0700 "$KEYS" "$T/nokeys"
inst() { "$KPA_INSTALL" --root "$STORE" --trusted-keys "$KEYS" "$@"; }
store() { "$KPA_INSTALL" --root "$STORE" "$@"; }
info() { "$KPA_INSTALL" --root "$STORE" --trusted-keys "$KEYS" --info "$@"; }
# the text form of a .pub's fingerprint: SHA-256 of the raw key, 16 bytes
fingerprint() {
    "$PYTHON3" -c '
import base64, hashlib, sys
h = hashlib.sha256(base64.b64decode(open(sys.argv[1]).read().split()[1])).hexdigest()[:32]
print(":".join(h[i:i + 4] for i in range(0, 32, 4)))' "$1"
}
# run CMD..., and put its exit code into $rc and its output into $out
run() {
    out=$("$@" 2>&1)
    rc=$?
}

# ---- an application ----
APP=$T/app
mkdir -p "$APP/bin" "$APP/res/data"
printf '#!/bin/sh\necho hello\n' >"$APP/bin/hello"
chmod 755 "$APP/bin/hello"
head -c 20000 /dev/urandom >"$APP/res/data/blob.bin"
write_manifest() { # FILE VERSION
    cat >"$1" <<EOF
{
  "version": "2.0",
  "application": { "id": "org.example.signed", "name": "Signed", "version": "$2",
                   "buildNumber": "1", "systemApplication": false },
  "platform": { "id": "linux",
                "sdk": { "buildSdkName": "kpa", "buildSdkVersion": "1", "targetApiLevel": 1 },
                "hwSpecification": { "arch": "$(uname -m)", "cpu": "" } },
  "components": [ { "name": "hello", "componentType": "bin" },
                  { "name": "blob.bin", "componentType": "res", "directoryPath": "data" } ],
  "runConfigurations": [ { "id": "main", "name": "Main", "type": "service",
                           "path": "bin/hello", "primary": true } ]
}
EOF
}
write_manifest "$T/manifest.json" 1.0
write_manifest "$T/manifest-2.json" 2.0
pack() { "$KPA_PACK" -q --compress none "$@"; }

# ---- keys ----
run "$KPA_PACK" --new-key "$T/vendor"
check_eq "--new-key succeeds" "$rc" 0
check_eq "... and writes a secret key of mode 0600" "$(stat -c %a "$T/vendor.key")" 600
check_eq "... and a public key of mode 0644" "$(stat -c %a "$T/vendor.pub")" 644
check "... each one line of kpa's key format" \
    grep -qE '^kpa-ed25519-public [A-Za-z0-9+/]{43}= vendor$' "$T/vendor.pub"
check "... the secret one too" grep -qE '^kpa-ed25519-secret [A-Za-z0-9+/]{43}= vendor$' "$T/vendor.key"
FP=$(fingerprint "$T/vendor.pub")
check "... and it shows the fingerprint: the SHA-256 of the public key" \
    grep -qF "vendor.pub: the public key, fingerprint $FP" <<<"$out"
cp -p "$T/vendor.key" "$T/vendor.key.orig"
run "$KPA_PACK" --new-key "$T/vendor"
check_eq "--new-key refuses to overwrite a key pair (exit 1)" "$rc" 1
check_eq "... saying so" "$out" "kpa-pack: $T/vendor.key already exists; refusing to overwrite it"
check "... and the secret key is untouched" cmp -s "$T/vendor.key" "$T/vendor.key.orig"
echo "not mine" >"$T/lone.pub"
run "$KPA_PACK" --new-key "$T/lone"
check_eq "--new-key refuses when only NAME.pub exists" "$out" \
    "kpa-pack: $T/lone.pub already exists; refusing to overwrite it"
check "... and writes no secret key" test ! -e "$T/lone.key"
run "$KPA_PACK" --new-key "$T/.hidden"
check_eq "a key name starting with '.' is refused (exit 1)" "$rc" 1
check "... naming the rule" grep -qF "not starting with '.'" <<<"$out"
run "$KPA_PACK" --new-key "$T/x" -o "$T/x.kpa"
check_eq "--new-key with a package to build is a usage error (exit 2)" "$rc" 2
"$KPA_PACK" -q --new-key "$T/other"
FP2=$(fingerprint "$T/other.pub")

# ---- signing ----
run pack -o "$T/signed.kpa" --manifest "$T/manifest.json" --sign "$T/vendor.key" "$APP"
check_eq "--sign packs" "$rc" 0
check_eq "the signature is the member right after manifest.json" \
    "$(bsdtar -tf "$T/signed.kpa" | tr '\n' ' ')" "manifest.json manifest.sig bin/hello res/data/blob.bin "
sig=$(bsdtar -xOf "$T/signed.kpa" manifest.sig)
check "manifest.sig names the algorithm, the key's full fingerprint and the signature" \
    "$PYTHON3" -c '
import base64, hashlib, json, sys
s = json.loads(sys.argv[1])
pub = base64.b64decode(open(sys.argv[2]).read().split()[1])
assert sorted(s) == ["algorithm", "key", "signature"], s
assert s["algorithm"] == "ed25519" and s["key"] == hashlib.sha256(pub).hexdigest()
assert len(base64.b64decode(s["signature"])) == 64' "$sig" "$T/vendor.pub"
pack -o "$T/signed-again.kpa" --manifest "$T/manifest.json" --sign "$T/vendor.key" "$APP"
check "a signed package is deterministic (pack twice, same bytes)" cmp "$T/signed.kpa" "$T/signed-again.kpa"
"$KPA_PACK" -q -o "$T/signed.zst.kpa" --manifest "$T/manifest.json" --sign "$T/vendor.key" "$APP"
"$KPA_PACK" -q -o "$T/signed.zst2.kpa" --manifest "$T/manifest.json" --sign "$T/vendor.key" "$APP"
check "... compressed too" cmp "$T/signed.zst.kpa" "$T/signed.zst2.kpa"
run "$KPA_PACK" -o "$T/said.kpa" --manifest "$T/manifest.json" --sign "$T/vendor.key" "$APP"
check "kpa-pack says who signed it" grep -qF "signed by vendor (fingerprint $FP)" <<<"$out"
pack -o "$T/unsigned.kpa" --manifest "$T/manifest.json" "$APP"
pack -o "$T/by-other.kpa" --manifest "$T/manifest.json" --sign "$T/other.key" "$APP"
pack -o "$T/signed-2.kpa" --manifest "$T/manifest-2.json" --sign "$T/vendor.key" "$APP"

# bad secret keys
cp "$T/vendor.key" "$T/open.key" && chmod 0644 "$T/open.key"
run pack -o "$T/x.kpa" --manifest "$T/manifest.json" --sign "$T/open.key" "$APP"
check_eq "a secret key readable by others is refused" "$out" \
    "kpa-pack: $T/open.key: mode 0644 lets others read or write the secret key; refused (chmod 600 it, and make a new key if others may have read it)"
check "... and no package is written" test ! -e "$T/x.kpa"
printf 'garbage\n' >"$T/garbage.key" && chmod 600 "$T/garbage.key"
run pack -o "$T/x.kpa" --manifest "$T/manifest.json" --sign "$T/garbage.key" "$APP"
check_eq "a file that is no key is refused" "$out" \
    "kpa-pack: $T/garbage.key: not a kpa key file (it must start with \"kpa-ed25519-secret\")"
printf 'kpa-ed25519-secret AAAA vendor\n' >"$T/short.key" && chmod 600 "$T/short.key"
run pack -o "$T/x.kpa" --manifest "$T/manifest.json" --sign "$T/short.key" "$APP"
check_eq "a key of the wrong length is refused" "$out" \
    "kpa-pack: $T/short.key: the key is not 32 bytes of base64 after \"kpa-ed25519-secret \""
run pack -o "$T/x.kpa" --manifest "$T/manifest.json" --sign "$T/vendor.pub" "$APP"
check_eq "a public key cannot sign" "$out" \
    "kpa-pack: $T/vendor.pub: a public key cannot sign; give the secret key, NAME.key"
check_eq "... exit 1" "$rc" 1

# ---- hostile packages, built from the signed one ----
# tamper SRC DEST MEMBER OLD NEW: replace OLD by NEW (same length) in MEMBER's data
tamper() {
    cp "$1" "$2"
    "$PYTHON3" - "$2" "$3" "$4" "$5" <<'PY'
import sys, tarfile
path, member, old, new = sys.argv[1:5]
with tarfile.open(path) as t:
    m = t.getmember(member)
with open(path, "r+b") as f:
    f.seek(m.offset_data)
    data = f.read(m.size)
    i = data.find(old.encode())
    assert i >= 0 and len(old) == len(new), (member, old)
    f.seek(m.offset_data + i)
    f.write(new.encode())
PY
}
# rebuild SRC DEST SPEC: the members of SRC in another order or with others'
# data; SPEC is Python: a list of (name, data-or-None for a directory)
rebuild() {
    "$PYTHON3" - "$1" "$2" "$3" <<'PY'
import io, sys, tarfile
src, dest, spec = sys.argv[1:4]
with tarfile.open(src) as t:
    data = {m.name: t.extractfile(m).read() for m in t.getmembers()}
order = eval(spec, {"sys": sys, "data": data, "other": lambda p, n: tarfile.open(p).extractfile(n).read()})
with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as out:
    for name, body in order:
        ti = tarfile.TarInfo(name)
        if body is None:
            ti.type = tarfile.DIRTYPE
            out.addfile(ti)
        elif isinstance(body, tuple):
            ti.type, ti.linkname = tarfile.SYMTYPE, body[1]
            out.addfile(ti)
        else:
            ti.size, ti.mode = len(body), 0o755 if name.startswith("bin/") else 0o644
            out.addfile(ti, io.BytesIO(body))
PY
}
sigdata=$(bsdtar -xOf "$T/signed.kpa" manifest.sig)
sigchar=$(sed -E 's/.*"signature": "(.).*/\1/' <<<"$sigdata")
newchar=A
[ "$sigchar" = A ] && newchar=B
tamper "$T/signed.kpa" "$T/t-component.kpa" bin/hello "echo hello" "echo jello"
tamper "$T/signed.kpa" "$T/t-manifest.kpa" manifest.json '"Signed"' '"Sighed"'
tamper "$T/signed.kpa" "$T/t-signature.kpa" manifest.sig "\"signature\": \"$sigchar" "\"signature\": \"$newchar"
tamper "$T/signed.kpa" "$T/t-sigjson.kpa" manifest.sig '"algorithm"' '"algorithX"'
rebuild "$T/signed.kpa" "$T/moved.kpa" \
    '[("manifest.json", data["manifest.json"]), ("manifest.sig", other(sys.argv[1].replace("signed.kpa", "signed-2.kpa"), "manifest.sig")), ("bin/hello", data["bin/hello"]), ("res/data/blob.bin", data["res/data/blob.bin"])]'
rebuild "$T/signed.kpa" "$T/sig-last.kpa" \
    '[("manifest.json", data["manifest.json"]), ("bin/hello", data["bin/hello"]), ("res/data/blob.bin", data["res/data/blob.bin"]), ("manifest.sig", data["manifest.sig"])]'
rebuild "$T/signed.kpa" "$T/sig-twice.kpa" \
    '[("manifest.json", data["manifest.json"]), ("manifest.sig", data["manifest.sig"]), ("manifest.sig", data["manifest.sig"]), ("bin/hello", data["bin/hello"]), ("res/data/blob.bin", data["res/data/blob.bin"])]'
rebuild "$T/signed.kpa" "$T/sig-dir.kpa" \
    '[("manifest.json", data["manifest.json"]), ("manifest.sig", None), ("bin/hello", data["bin/hello"]), ("res/data/blob.bin", data["res/data/blob.bin"])]'
rebuild "$T/signed.kpa" "$T/sig-link.kpa" \
    '[("manifest.json", data["manifest.json"]), ("manifest.sig", ("link", "/etc/passwd")), ("bin/hello", data["bin/hello"]), ("res/data/blob.bin", data["res/data/blob.bin"])]'
size=$(stat -c %s "$T/signed.kpa")
head -c $((size - 8000)) "$T/signed.kpa" >"$T/truncated.kpa"

# ---- with a trusted key ----
cp "$T/vendor.pub" "$KEYS/vendor.pub"
# the store holds the signed version 1.0 before every refusal below
run inst "$T/signed.kpa"
check_eq "a package signed by a trusted key installs" "$rc" 0
check "... saying who signed it" grep -qxF "  signed by vendor (fingerprint $FP)" <<<"$out"
check "the store keeps the signature beside the manifest" \
    cmp "$STORE/apps/org.example.signed/manifest.sig" <(printf '%s\n' "$sigdata")
check "... and no unsigned.json" test ! -e "$STORE/apps/org.example.signed/unsigned.json"
check_eq "--info shows the signer" "$(info org.example.signed | grep '^Signature:')" \
    "Signature:    signed by vendor (fingerprint $FP)"
check_eq "--info of the package file too" "$(info "$T/signed.kpa" | grep '^Signature:')" \
    "Signature:    signed by vendor (fingerprint $FP)"
check_eq "--info --json" "$(info --json org.example.signed | "$PYTHON3" -c '
import json, sys; s = json.load(sys.stdin)["signature"]
print(s["status"], s["key"], s["fingerprint"], s["allowUnsigned"])')" "signed vendor $FP False"
run inst --verify org.example.signed
check_eq "--verify passes (manifest.sig is no extra file)" "$out" "org.example.signed: OK (2 files checked)"

before=$(snapshot "$STORE")
list_before=$(store --list)
# refused NAME PACKAGE EXPECTED-MESSAGE [OPTIONS]
refused() {
    local name=$1 pkg=$2 msg=$3
    shift 3
    run inst --reinstall "$@" "$pkg"
    check_eq "$name: refused (exit 1)" "$rc" 1
    check_eq "$name: the message" "$out" "$msg"
    check_eq "$name: the store is unchanged" "$(snapshot "$STORE")" "$before"
    check_eq "$name: --list is unchanged" "$(store --list)" "$list_before"
    check "$name: nothing is left in .staging" test -z "$(ls -A "$STORE/.staging")"
}
BADSIG="the signature by key vendor (fingerprint $FP) does not match manifest.json: the package was changed after it was signed; refused"
refused "one byte of a component changed" "$T/t-component.kpa" \
    "kpa-install: $T/t-component.kpa: member \"bin/hello\": digest mismatch: the manifest says $(sha256sum "$APP/bin/hello" | cut -d' ' -f1), the content is $(printf '#!/bin/sh\necho jello\n' | sha256sum | cut -d' ' -f1)"
refused "one byte of the manifest changed" "$T/t-manifest.kpa" "kpa-install: $T/t-manifest.kpa: $BADSIG"
refused "one byte of the signature changed" "$T/t-signature.kpa" "kpa-install: $T/t-signature.kpa: $BADSIG"
refused "manifest.sig is not kpa's JSON" "$T/t-sigjson.kpa" \
    "kpa-install: $T/t-sigjson.kpa: manifest.sig: it must hold exactly the strings \"algorithm\", \"key\" and \"signature\""
refused "a signature moved from another package" "$T/moved.kpa" "kpa-install: $T/moved.kpa: $BADSIG"
refused "signed by a second, untrusted key" "$T/by-other.kpa" \
    "kpa-install: $T/by-other.kpa: signed by an unknown key (fingerprint $FP2), not one of the trusted keys in $KEYS; refused (trust its .pub there, or install with --allow-unsigned)"
refused "a package without a signature" "$T/unsigned.kpa" \
    "kpa-install: $T/unsigned.kpa: the package is not signed, and 1 key is trusted in $KEYS; refused (--allow-unsigned installs it anyway)"
refused "manifest.sig after the components" "$T/sig-last.kpa" \
    "kpa-install: $T/sig-last.kpa: the package is not signed, and 1 key is trusted in $KEYS; refused (--allow-unsigned installs it anyway)"
MISPLACED="member manifest.sig is refused here: a package's signature is the one member right after manifest.json"
refused "manifest.sig after the components, even with --allow-unsigned" "$T/sig-last.kpa" \
    "kpa-install: $T/sig-last.kpa: $MISPLACED" --allow-unsigned
refused "manifest.sig twice" "$T/sig-twice.kpa" "kpa-install: $T/sig-twice.kpa: $MISPLACED"
refused "manifest.sig a directory" "$T/sig-dir.kpa" "kpa-install: $T/sig-dir.kpa: manifest.sig is not a regular file"
refused "manifest.sig a symlink" "$T/sig-link.kpa" "kpa-install: $T/sig-link.kpa: manifest.sig is not a regular file"
run inst --reinstall "$T/truncated.kpa"
check_eq "a truncated signed package is refused (exit 1)" "$rc" 1
check "... as truncated" grep -qE "^kpa-install: $T/truncated.kpa: .*[Tt]runcated" <<<"$out"
check_eq "... the store is unchanged" "$(snapshot "$STORE")" "$before"
refused "a bad signature, even with --allow-unsigned" "$T/t-manifest.kpa" \
    "kpa-install: $T/t-manifest.kpa: $BADSIG" --allow-unsigned
check_eq "--info of a package with a bad signature says so (exit 1)" \
    "$(info "$T/t-manifest.kpa" | grep '^Signature:'; echo "exit ${PIPESTATUS[0]}")" \
    "Signature:    BAD: the signature by key vendor (fingerprint $FP) does not match manifest.json
exit 1"

# ---- trusted key files ----
cp "$T/other.pub" "$KEYS/other.pub" && chmod 0664 "$KEYS/other.pub"
refused "a trusted key writable by its group" "$T/signed.kpa" \
    "kpa-install: trusted key $KEYS/other.pub is not owned by root (or by you) and writable by its owner only (owner $(id -u), mode 0664); refused"
printf 'kpa-ed25519-public !!! x\n' >"$KEYS/other.pub" && chmod 0644 "$KEYS/other.pub"
refused "a trusted key that is garbage" "$T/signed.kpa" \
    "kpa-install: trusted key: $KEYS/other.pub: the key is not 32 bytes of base64 after \"kpa-ed25519-public \""
rm "$KEYS/other.pub"
chmod 0777 "$KEYS"
refused "a trusted keys directory that others may write to" "$T/signed.kpa" \
    "kpa-install: trusted keys directory $KEYS is not owned by root (or by you) and writable by its owner only (owner $(id -u), mode 0777); refused"
chmod 0700 "$KEYS"
run "$KPA_INSTALL" --root "$STORE" --trusted-keys "$T/missing" --reinstall "$T/signed.kpa"
check_eq "a --trusted-keys DIR that does not exist is an error" "$out" \
    "kpa-install: trusted keys directory $T/missing: No such file or directory"
run "$KPA_INSTALL" --root "$STORE" --trusted-keys "$KEYS" --allow-unsigned --list
check_eq "--allow-unsigned without an install is a usage error (exit 2)" "$rc" 2

# ---- a second key trusted: its packages install too ----
cp "$T/other.pub" "$KEYS/other.pub"
run inst --reinstall "$T/by-other.kpa"
check_eq "once its key is trusted, the second vendor's package installs" "$rc" 0
check_eq "... and --info names that key" "$(info org.example.signed | grep '^Signature:')" \
    "Signature:    signed by other (fingerprint $FP2)"
rm "$KEYS/other.pub"
run inst --verify org.example.signed
check_eq "--verify fails once that key is no longer trusted" "$rc" 1
check_eq "... saying so" "$out" \
    "org.example.signed: signature: signed by an unknown key (fingerprint $FP2) (that key is not trusted)"

# ---- --allow-unsigned ----
run inst --allow-unsigned --reinstall "$T/unsigned.kpa"
check_eq "--allow-unsigned installs an unsigned package" "$rc" 0
check "... with a loud warning" grep -qF \
    "kpa-install: WARNING: org.example.signed 1.0 is not signed by a trusted key (it is unsigned, 1 key is trusted); it was installed only because of --allow-unsigned, and the store records that" <<<"$out"
check "... recorded in the installed tree" \
    grep -q '"allowUnsigned": true' "$STORE/apps/org.example.signed/unsigned.json"
check_eq "--info says so" "$(info org.example.signed | grep '^Signature:')" \
    "Signature:    unsigned, installed with --allow-unsigned"
check_eq "--info --json too" "$(info --json org.example.signed | "$PYTHON3" -c '
import json, sys; s = json.load(sys.stdin)["signature"]
print(s["status"], s["allowUnsigned"])')" "unsigned True"
run inst --verify org.example.signed
check_eq "--verify accepts it (unsigned.json is no extra file)" "$out" "org.example.signed: OK (2 files checked)"
run inst -q --allow-unsigned --reinstall "$T/unsigned.kpa"
check "the warning is printed even with --quiet" grep -qF "WARNING: org.example.signed 1.0 is not signed" <<<"$out"
run inst "$T/signed-2.kpa"
check_eq "a signed upgrade drops the record" "$(info org.example.signed | grep '^Signature:'; test -e "$STORE/apps/org.example.signed/unsigned.json" && echo kept)" \
    "Signature:    signed by vendor (fingerprint $FP)"

# ---- --verify re-checks the signature ----
store -q --remove org.example.signed
inst -q "$T/signed.kpa"
app=$STORE/apps/org.example.signed
cp "$app/manifest.json" "$T/saved.json"
sed -i 's/"Signed"/"Sighed"/' "$app/manifest.json"
run inst --verify org.example.signed
check_eq "--verify reports a modified manifest.json (exit 1)" "$rc" 1
check_eq "... as a bad signature" "$out" "org.example.signed: signature: BAD: the signature by key vendor (fingerprint $FP) does not match manifest.json"
cp "$T/saved.json" "$app/manifest.json"
cp "$app/manifest.sig" "$T/saved.sig"
printf '%s\n' "$(bsdtar -xOf "$T/signed-2.kpa" manifest.sig)" >"$app/manifest.sig"
run inst --verify org.example.signed
check_eq "--verify reports a modified manifest.sig" "$out" "org.example.signed: signature: BAD: the signature by key vendor (fingerprint $FP) does not match manifest.json"
echo garbage >"$app/manifest.sig"
run inst --verify org.example.signed
check "... and a damaged one" grep -qF "org.example.signed: signature: BAD: $app/manifest.sig:" <<<"$out"
rm "$app/manifest.sig"
run inst --verify org.example.signed
check_eq "... and a removed one" "$out" \
    "org.example.signed: signature: unsigned (a trusted key is required and it was not installed with --allow-unsigned)"
cp "$T/saved.sig" "$app/manifest.sig"
run inst --verify org.example.signed
check_eq "put back, it passes again" "$rc" 0

# ---- no key trusted: as before signatures ----
NOKEYS=(--root "$T/store2" --trusted-keys "$T/nokeys")
run "$KPA_INSTALL" "${NOKEYS[@]}" "$T/unsigned.kpa"
check_eq "with no key trusted, an unsigned package installs" "$rc" 0
check "... with no warning" test -z "$(grep WARNING <<<"$out")"
check_eq "... --info says unsigned" "$("$KPA_INSTALL" "${NOKEYS[@]}" --info org.example.signed | grep '^Signature:')" \
    "Signature:    unsigned"
check "... nothing recorded" test ! -e "$T/store2/apps/org.example.signed/unsigned.json"
run "$KPA_INSTALL" "${NOKEYS[@]}" "$T/by-other.kpa" --reinstall
check_eq "with no key trusted, a signed package installs" "$rc" 0
check_eq "... --info shows the key it does not know" "$("$KPA_INSTALL" "${NOKEYS[@]}" --info org.example.signed | grep '^Signature:')" \
    "Signature:    signed by an unknown key (fingerprint $FP2)"
run "$KPA_INSTALL" "${NOKEYS[@]}" --verify org.example.signed
check_eq "... and --verify has nothing to hold against it" "$rc" 0
run "$KPA_INSTALL" "${NOKEYS[@]}" --reinstall "$T/t-sigjson.kpa"
check_eq "a malformed manifest.sig is refused even with no key trusted" "$out" \
    "kpa-install: $T/t-sigjson.kpa: manifest.sig: it must hold exactly the strings \"algorithm\", \"key\" and \"signature\""
# ---- a rollback carries each version's signature along ----
STORE3=$T/store3
inst3() { "$KPA_INSTALL" --root "$STORE3" --trusted-keys "$KEYS" "$@"; }
inst3 -q "$T/signed.kpa" && inst3 -q "$T/signed-2.kpa"
sig2=$(cat "$STORE3/apps/org.example.signed/manifest.sig")
run inst3 --rollback org.example.signed
check_eq "rollback of a signed package" "$rc" 0
check "... the 1.0 tree has its own signature back" \
    test "$(cat "$STORE3/apps/org.example.signed/manifest.sig")" != "$sig2"
run inst3 --verify org.example.signed
check_eq "... which --verify accepts" "$rc" 0
check_eq "... and the 2.0 tree keeps its own" "$(cat "$STORE3/previous/org.example.signed/manifest.sig")" "$sig2"
prev3=$STORE3/previous/org.example.signed
cp "$prev3/manifest.sig" "$T/prev.sig"
printf '%s\n' "$(bsdtar -xOf "$T/signed.kpa" manifest.sig)" >"$prev3/manifest.sig"
before=$(snapshot "$STORE3")
run inst3 --rollback org.example.signed
check "a rollback to a version whose signature no longer matches is refused" \
    grep -q "the signature of the previous version 2.0 does not match" <<<"$out"
check_eq "... and changes nothing" "$(snapshot "$STORE3")" "$before"
cp "$T/prev.sig" "$prev3/manifest.sig"
# an unsigned version installed before any key was trusted
STORE4=$T/store4
"$KPA_INSTALL" --root "$STORE4" --trusted-keys "$T/nokeys" -q "$T/unsigned.kpa"
"$KPA_INSTALL" --root "$STORE4" --trusted-keys "$KEYS" -q "$T/signed-2.kpa"
run "$KPA_INSTALL" --root "$STORE4" --trusted-keys "$KEYS" --rollback org.example.signed
check_eq "a rollback to an unsigned version once keys are trusted is refused" "$out" \
    "kpa-install: rollback org.example.signed: the previous version 1.0 is not signed, and keys are trusted now; nothing was changed"
run "$KPA_INSTALL" --root "$STORE4" --trusted-keys "$T/nokeys" --rollback org.example.signed
check_eq "... and allowed where no key is trusted" "$rc" 0
done_testing
