#!/bin/bash
# pack.sh: kpa-pack builds packages that hold exactly the manifest's components,
# fills in digests, is deterministic, and refuses bad input naming the cause,
# leaving no output behind.
. "$(dirname "$0")/lib.sh"

command -v bsdtar >/dev/null || skip_all "bsdtar (libarchive-tools) not installed"

pack() { "$KPA_PACK" "$@"; }

# ---- a small application, laid out as the package will be ----
ARCH=$(uname -m)
write_manifest() { # write_manifest FILE [DIGEST-OF-BIN]
    cat >"$1" <<EOF
{
  "version": "2.0",
  "application": {
    "id": "org.example.hello",
    "name": "@app_name@",
    "version": "1.0.0",
    "buildNumber": "7",
    "systemApplication": false
  },
  "platform": {
    "id": "linux",
    "sdk": { "buildSdkName": "kpa", "buildSdkVersion": "1.0", "targetApiLevel": 1 },
    "hwSpecification": { "arch": "$ARCH", "cpu": "" }
  },
  "components": [
    { "name": "hello", "componentType": "bin", "digest": "${2:-}" },
    { "name": "libgreet.so", "componentType": "lib" },
    { "name": "logo.png", "componentType": "res", "directoryPath": "img" },
    { "name": "en.json", "componentType": "manifestLocale", "digest": "" }
  ],
  "runConfigurations": [
    { "id": "main", "name": "@app_name@", "type": "service", "primary": true,
      "path": "bin/hello", "args": ["--greet", "a/b"] }
  ]
}
EOF
}

APP=$T/app
mkdir -p "$APP/bin" "$APP/lib" "$APP/res/img" "$APP/manifest_locales"
printf '#!/bin/sh\necho hello\n' >"$APP/bin/hello"
chmod 0700 "$APP/bin/hello"
head -c 100000 /dev/urandom >"$APP/lib/libgreet.so"
printf '\x89PNG fake logo\n' >"$APP/res/img/logo.png"
printf '{"en": {"app_name": "Hello"}}\n' >"$APP/manifest_locales/en.json"
write_manifest "$APP/manifest.json"
SRC_BIN=$APP/bin/hello SRC_LIB=$APP/lib/libgreet.so SRC_RES=$APP/res/img/logo.png
SRC_LOC=$APP/manifest_locales/en.json
OUT=$T/out
mkdir -p "$OUT"

# The members of a package as "MODE UID GID NAME" lines, in archive order.
members() { bsdtar -tvf "$1" | awk '{ print $1, $3, $4, $NF }'; }
EXPECTED_MEMBERS="-rw-r--r-- 0 0 manifest.json
-rwxr-xr-x 0 0 bin/hello
-rw-r--r-- 0 0 lib/libgreet.so
-rw-r--r-- 0 0 manifest_locales/en.json
-rw-r--r-- 0 0 res/img/logo.png"

# The digests in a package's manifest, as "INSTALL-PATH DIGEST" lines.
digests_in() {
    bsdtar -xOf "$1" manifest.json | "$PYTHON3" -c '
import json, sys
m = json.load(sys.stdin)
dirs = {"bin": "bin", "lib": "lib", "res": "res", "manifestLocale": "manifest_locales"}
for c in m["components"]:
    d = dirs[c["componentType"]]
    if c["componentType"] == "res" and c.get("directoryPath"):
        d += "/" + c["directoryPath"]
    print(d + "/" + c["name"], c["digest"])' | LC_ALL=C sort
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
EXPECTED_DIGESTS="bin/hello $(sha "$SRC_BIN")
lib/libgreet.so $(sha "$SRC_LIB")
manifest_locales/en.json $(sha "$SRC_LOC")
res/img/logo.png $(sha "$SRC_RES")"

# Every member: a regular file, uid/gid 0, no names, mtime $2, no atime/ctime.
check_headers() { # check_headers PKG MTIME (uncompressed, gzip or xz; zstd through bsdcat)
    "$PYTHON3" - "$1" "$2" <<'EOF'
import sys, tarfile
path, mtime = sys.argv[1], int(sys.argv[2])
with tarfile.open(path) as t:
    for m in t.getmembers():
        want = 0o755 if m.name.startswith("bin/") else 0o644
        bad = []
        if not m.isreg(): bad.append("type")
        if m.uid or m.gid: bad.append("owner")
        if m.uname or m.gname: bad.append("names")
        if m.mtime != mtime: bad.append("mtime %s" % m.mtime)
        if m.mode != want: bad.append("mode %o" % m.mode)
        if set(m.pax_headers) & {"atime", "ctime", "LIBARCHIVE.creationtime"}: bad.append("times")
        if bad:
            sys.exit("%s: %s" % (m.name, ", ".join(bad)))
EOF
}

# ---- help, version, usage errors ----
check "--help exits 0" pack --help
check "--help explains the inputs" bash -c '"$0" --help | grep -q "DIR/INSTALL-PATH"' "$KPA_PACK"
check "--version prints the version" bash -c '"$0" --version | grep -Eq "^kpa-pack [0-9]"' "$KPA_PACK"
for opt in $(pack --help | grep -oE -- '--[a-z]+' | sort -u); do
    check "man page documents $opt" grep -q -- "${opt//-/\\\\-}" "$top_srcdir/man/kpa-pack.1"
done

usage_rc() { # usage_rc NAME NEEDLE ARGS...: exit code 2 and NEEDLE in the message
    local name=$1 needle=$2
    shift 2
    local out rc
    out=$(pack "$@" 2>&1)
    rc=$?
    check_eq "$name: exit 2" "$rc" 2
    [[ "$out" == *"$needle"* ]]
    _result $? "$name: message mentions '$needle'"
}
usage_rc "no arguments" "-o"
usage_rc "missing -o" "no output" --manifest "$APP/manifest.json" "$APP"
usage_rc "missing --manifest" "no manifest" -o "$OUT/x.kpa" "$APP"
usage_rc "unknown --compress" "bzip9" -o "$OUT/x.kpa" --manifest "$APP/manifest.json" \
    --compress bzip9 "$APP"
usage_rc "bad --mtime" "yesterday" -o "$OUT/x.kpa" --manifest "$APP/manifest.json" \
    --mtime yesterday "$APP"
usage_rc "unknown option" "--frobnicate" --frobnicate
usage_rc "option without its argument" "--output" --output
check_eq "usage errors leave no output" "$(ls -A "$OUT")" ""

# ---- a directory laid out as the package, with each compression ----
declare -A MAGIC=([zstd]=28b52ffd [xz]=fd377a58 [gzip]=1f8b0800 [none]="")
for comp in zstd xz gzip none; do
    pkg=$OUT/hello-$comp.kpa
    check "pack --compress $comp" pack -q -o "$pkg" --manifest "$APP/manifest.json" \
        --compress "$comp" "$APP"
    check_eq "$comp: members, order, owners and modes" "$(members "$pkg")" "$EXPECTED_MEMBERS"
    check_eq "$comp: digests filled in" "$(digests_in "$pkg")" "$EXPECTED_DIGESTS"
    if [ -n "${MAGIC[$comp]}" ]; then
        check_eq "$comp: compressed with $comp" "$(head -c 4 "$pkg" | od -An -tx1 | tr -d ' \n')" \
            "${MAGIC[$comp]}"
    else
        check_eq "none: plain tar" "$(dd if="$pkg" bs=1 skip=257 count=5 2>/dev/null)" "ustar"
    fi
    check "$comp: bin content intact" cmp <(bsdtar -xOf "$pkg" bin/hello) "$SRC_BIN"
    check "$comp: lib content intact" cmp <(bsdtar -xOf "$pkg" lib/libgreet.so) "$SRC_LIB"
    if [ "$comp" = zstd ]; then # (Python's tarfile reads no zstd: bsdcat decompresses it)
        bsdcat "$pkg" >"$T/zstd.tar"
        check "$comp: headers are canonical" check_headers "$T/zstd.tar" 0
    else
        check "$comp: headers are canonical" check_headers "$pkg" 0
    fi
    check "$comp: kpa-install --info verifies the package" "$KPA_INSTALL" --info "$pkg"
done
check "default compression is zstd" pack -q -o "$OUT/default.kpa" --manifest "$APP/manifest.json" "$APP"
check "default equals --compress zstd" cmp "$OUT/default.kpa" "$OUT/hello-zstd.kpa"
check_eq "gzip header carries no time stamp" \
    "$(head -c 8 "$OUT/hello-gzip.kpa" | tail -c 4 | od -An -tx1 | tr -d ' \n')" 00000000
check "packed manifest keeps the vendor's data" bash -c '
    bsdtar -xOf "$0" manifest.json | "$PYTHON3" -c "
import json, sys
m = json.load(sys.stdin)
assert m[\"application\"][\"id\"] == \"org.example.hello\"
assert m[\"runConfigurations\"][0][\"args\"] == [\"--greet\", \"a/b\"]
assert list(m) == [\"version\", \"application\", \"platform\", \"components\", \"runConfigurations\"]
"' "$OUT/hello-none.kpa"
check "packed manifest does not escape slashes" bash -c \
    'bsdtar -xOf "$0" manifest.json | grep -qF "\"a/b\""' "$OUT/hello-none.kpa"
check "packed manifest ends with a newline" bash -c \
    '[ "$(bsdtar -xOf "$0" manifest.json | tail -c 1 | od -An -tx1 | tr -d " ")" = 0a ]' \
    "$OUT/hello-none.kpa"

# ---- verbose and quiet ----
out=$(pack -v -o "$OUT/v.kpa" --manifest "$APP/manifest.json" "$APP" 2>&1)
check_eq "-v lists every member" "$(echo "$out" | grep -c ' <- ')" 5
[[ "$out" == *"res/img/logo.png <- $APP/res/img/logo.png"* ]]
_result $? "-v names where each member came from"
out=$(pack -q -o "$OUT/q.kpa" --manifest "$APP/manifest.json" "$APP" 2>&1)
check_eq "-q prints nothing" "$out" ""
out=$(pack -o "$OUT/s.kpa" --manifest "$APP/manifest.json" "$APP" 2>&1)
[[ "$out" == *"4 components"* ]]
_result $? "default prints a one-line summary ($out)"
rm -f "$OUT/v.kpa" "$OUT/q.kpa" "$OUT/s.kpa"

# ---- determinism ----
REF=$OUT/hello-zstd.kpa
check "same inputs, same bytes" pack -q -o "$OUT/again.kpa" --manifest "$APP/manifest.json" "$APP"
check "identical to the first package" cmp "$REF" "$OUT/again.kpa"
touch -d '2001-02-03 04:05:06' "$SRC_BIN" "$SRC_RES"
touch "$SRC_LIB"
chmod 0600 "$SRC_LIB"
chmod 0755 "$SRC_RES"
check "pack after touching and chmod'ing inputs" \
    pack -q -o "$OUT/touched.kpa" --manifest "$APP/manifest.json" "$APP"
check "input mtimes and modes do not matter" cmp "$REF" "$OUT/touched.kpa"
sleep 1
check "gzip: pack again a second later" pack -q -o "$OUT/later.kpa" --compress gzip \
    --manifest "$APP/manifest.json" "$APP"
check "gzip: time of day does not matter" cmp "$OUT/hello-gzip.kpa" "$OUT/later.kpa"
check "xz: pack again" pack -q -o "$OUT/later-xz.kpa" --compress xz \
    --manifest "$APP/manifest.json" "$APP"
check "xz: identical" cmp "$OUT/hello-xz.kpa" "$OUT/later-xz.kpa"

FLAT=$T/flat
mkdir -p "$FLAT"
cp "$SRC_BIN" "$SRC_LIB" "$SRC_RES" "$SRC_LOC" "$FLAT/"
check "pack from single files" pack -q -o "$OUT/files1.kpa" --manifest "$APP/manifest.json" \
    "$FLAT/hello" "$FLAT/libgreet.so" "$FLAT/logo.png" "$FLAT/en.json"
check "pack from single files, another order" pack -q -o "$OUT/files2.kpa" \
    --manifest "$APP/manifest.json" "$FLAT/en.json" "$FLAT/logo.png" "$FLAT/hello" "$FLAT/libgreet.so"
check "single files: same package as the directory" cmp "$REF" "$OUT/files1.kpa"
check "input order does not matter" cmp "$OUT/files1.kpa" "$OUT/files2.kpa"
cp "$APP/manifest.json" "$FLAT/"
check "a flat directory (DIR/NAME) works" pack -q -o "$OUT/flat.kpa" --manifest "$FLAT/manifest.json" "$FLAT"
check "flat directory: same package" cmp "$REF" "$OUT/flat.kpa"
rm "$FLAT/manifest.json"
DP=$T/dirpath
mkdir -p "$DP/img"
cp "$SRC_RES" "$DP/img/"
check "res found at DIR/DIRECTORYPATH/NAME" pack -q -o "$OUT/dp.kpa" --manifest "$APP/manifest.json" \
    "$DP" "$FLAT/hello" "$FLAT/libgreet.so" "$FLAT/en.json"
check "directoryPath layout: same package" cmp "$REF" "$OUT/dp.kpa"
check "the same file given twice is fine" pack -q -o "$OUT/twice.kpa" --manifest "$APP/manifest.json" \
    "$APP" "$SRC_BIN" "$FLAT/hello"
check "duplicate inputs: same package" cmp "$REF" "$OUT/twice.kpa"

check "SOURCE_DATE_EPOCH sets the member mtime" \
    env SOURCE_DATE_EPOCH=1700000000 "$KPA_PACK" -q -o "$OUT/sde1.kpa" --compress none \
    --manifest "$APP/manifest.json" "$APP"
check "SOURCE_DATE_EPOCH: headers" check_headers "$OUT/sde1.kpa" 1700000000
check "SOURCE_DATE_EPOCH: pack again" \
    env SOURCE_DATE_EPOCH=1700000000 "$KPA_PACK" -q -o "$OUT/sde2.kpa" --compress none \
    --manifest "$APP/manifest.json" "$APP"
check "SOURCE_DATE_EPOCH: identical" cmp "$OUT/sde1.kpa" "$OUT/sde2.kpa"
check "--mtime wins over SOURCE_DATE_EPOCH" \
    env SOURCE_DATE_EPOCH=1700000000 "$KPA_PACK" -q -o "$OUT/mt.kpa" --compress none \
    --mtime 86400 --manifest "$APP/manifest.json" "$APP"
check "--mtime: headers" check_headers "$OUT/mt.kpa" 86400
out=$(env SOURCE_DATE_EPOCH=soon "$KPA_PACK" -o "$OUT/bad-sde.kpa" --compress none \
    --manifest "$APP/manifest.json" "$APP" 2>&1)
check_eq "invalid SOURCE_DATE_EPOCH: still packs" "$?" 0
[[ "$out" == *"SOURCE_DATE_EPOCH"* ]]
_result $? "invalid SOURCE_DATE_EPOCH: warned"
check "invalid SOURCE_DATE_EPOCH: mtime 0" check_headers "$OUT/bad-sde.kpa" 0
check "locale does not matter" env LC_ALL=C.UTF-8 "$KPA_PACK" -q -o "$OUT/utf8.kpa" \
    --manifest "$APP/manifest.json" "$APP"
check "locale: identical" cmp "$REF" "$OUT/utf8.kpa"

# A given digest that matches is kept and accepted.
write_manifest "$T/given.json" "$(sha "$SRC_BIN")"
check "a correct given digest is accepted" pack -q -o "$OUT/given.kpa" --manifest "$T/given.json" "$FLAT"
check_eq "given digest: digests" "$(digests_in "$OUT/given.kpa")" "$EXPECTED_DIGESTS"

# The output replaces an older package in the input directory; it is not an extra file.
check "an older output inside the input directory is not an extra file" \
    pack -q -o "$APP/hello.kpa" --manifest "$APP/manifest.json" "$APP"
check "... and packing again replaces it" \
    pack -q -o "$APP/hello.kpa" --manifest "$APP/manifest.json" "$APP"
check "... with the same package" cmp "$REF" "$APP/hello.kpa"
rm -f "$APP/hello.kpa"

# Non-ASCII names are stored as UTF-8 whatever the locale.
U=$T/utf
mkdir -p "$U/res/données"
cp "$SRC_BIN" "$SRC_LIB" "$SRC_LOC" "$U/"
cp "$SRC_RES" "$U/res/données/логотип.png"
sed -e 's/"name": "logo.png"/"name": "логотип.png"/' -e 's/"directoryPath": "img"/"directoryPath": "données"/' \
    "$APP/manifest.json" >"$T/utf.json"
check "non-ASCII names: pack in the C locale" env LC_ALL=C "$KPA_PACK" -q -o "$OUT/u1.kpa" \
    --manifest "$T/utf.json" "$U"
check "non-ASCII names: pack in a UTF-8 locale" env LC_ALL=C.UTF-8 "$KPA_PACK" -q -o "$OUT/u2.kpa" \
    --manifest "$T/utf.json" "$U"
check "non-ASCII names: identical" cmp "$OUT/u1.kpa" "$OUT/u2.kpa"
check "non-ASCII names: stored as UTF-8" bash -c \
    'LC_ALL=C.UTF-8 bsdtar -tf "$0" | grep -qx "res/données/логотип.png"' "$OUT/u1.kpa"

cp "$REF" "$T/ref.kpa"
REF=$T/ref.kpa
rm -f "$OUT"/*.kpa

# ---- refusals: each names the cause and leaves no output ----
BAD=$T/bad
fresh() { rm -rf "$BAD"; cp -a "$APP" "$BAD"; }
no_output() { # no_output NAME: the output directory is as empty as before
    check_eq "$1: no output left" "$(ls -A "$OUT")" ""
}

fresh
rm "$BAD/lib/libgreet.so"
check_exit_output "missing component" 1 "missing component lib/libgreet.so" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
check_exit_output "missing component: names where it looked" 1 "$BAD/lib/libgreet.so" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
no_output "missing component"

fresh
echo junk >"$BAD/res/img/notes.txt"
check_exit_output "extra file in a directory" 1 "$BAD/res/img/notes.txt: extra file not listed" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
no_output "extra file"
check_exit_output "extra file given directly" 1 "notes.txt: extra file" \
    pack -o "$OUT/x.kpa" --manifest "$APP/manifest.json" "$APP" "$BAD/res/img/notes.txt"
no_output "extra file given directly"

fresh
rm "$BAD/lib/libgreet.so"
ln -s "$SRC_LIB" "$BAD/lib/libgreet.so"
check_exit_output "symlink inside a directory is refused" 1 "$BAD/lib/libgreet.so: symbolic link" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
no_output "symlink in a directory"
rm "$BAD/lib/libgreet.so"
ln -s "$SRC_LIB" "$T/libgreet.so"
check "symlink given on the command line is followed" \
    pack -q -o "$OUT/link.kpa" --manifest "$BAD/manifest.json" "$BAD" "$T/libgreet.so"
check "symlink followed: same package" cmp "$REF" "$OUT/link.kpa"
rm -f "$OUT/link.kpa"
mkfifo "$BAD/lib/fifo"
check_exit_output "FIFO inside a directory is refused" 1 "$BAD/lib/fifo: FIFO" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD" "$T/libgreet.so"
check_exit_output "FIFO on the command line is refused" 1 "fifo: FIFO" \
    pack -o "$OUT/x.kpa" --manifest "$APP/manifest.json" "$APP" "$BAD/lib/fifo"
no_output "special files"

fresh
echo "tampered" >>"$BAD/bin/hello"
write_manifest "$BAD/manifest.json" "$(sha "$SRC_BIN")"
check_exit_output "digest mismatch names the file" 1 "$BAD/bin/hello: digest mismatch" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
check_exit_output "digest mismatch names both digests" 1 "$(sha "$SRC_BIN")" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
check_exit_output "digest mismatch names the file's digest" 1 "$(sha "$BAD/bin/hello")" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
no_output "digest mismatch"

fresh
echo "other" >"$T/hello"
check_exit_output "ambiguous component names both files" 1 "$BAD/bin/hello and $T/hello differ" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD" "$T/hello"
no_output "ambiguous component"

fresh
sed -i 's/"componentType": "lib"/"componentType": "library"/' "$BAD/manifest.json"
check_exit_output "bad manifest: error names the JSON path" 1 "components[1].componentType" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
check_exit_output "bad manifest: error names the file" 1 "kpa-pack: $BAD/manifest.json: " \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
echo '{"version": "2.0",' >"$BAD/manifest.json"
check_exit_output "truncated manifest" 1 "$BAD/manifest.json: line " \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
check_exit_output "missing manifest" 1 "$T/nope.json: No such file or directory" \
    pack -o "$OUT/x.kpa" --manifest "$T/nope.json" "$APP"
no_output "bad manifest"

check_exit_output "missing input" 1 "$T/nowhere: No such file or directory" \
    pack -o "$OUT/x.kpa" --manifest "$APP/manifest.json" "$APP" "$T/nowhere"
check_exit_output "output directory missing" 1 "directory $T/nodir: No such file or directory" \
    pack -o "$T/nodir/x.kpa" --manifest "$APP/manifest.json" "$APP"
check_exit_output "output is a directory" 1 "$OUT: exists and is a directory" \
    pack -o "$OUT" --manifest "$APP/manifest.json" "$APP"
no_output "bad paths"

fresh
long=$(printf 'd%.0s' $(seq 200))/$(printf 'e%.0s' $(seq 200))/$(printf 'f%.0s' $(seq 200))
long=$long/$long
mkdir -p "$BAD/res/$long"
mv "$BAD/res/img/logo.png" "$BAD/res/$long/logo.png"
rmdir "$BAD/res/img"
sed -i "s|\"directoryPath\": \"img\"|\"directoryPath\": \"$long\"|" "$BAD/manifest.json"
check_exit_output "a path longer than an installer accepts" 1 "is longer than 1024 bytes" \
    pack -o "$OUT/x.kpa" --manifest "$BAD/manifest.json" "$BAD"
no_output "long path"

# A failed pack keeps an older package at the output path untouched.
check "an older package" pack -q -o "$OUT/keep.kpa" --manifest "$APP/manifest.json" "$APP"
cp "$OUT/keep.kpa" "$T/keep.orig"
fresh
rm "$BAD/bin/hello"
check_exit_output "a failing pack over it" 1 "missing component bin/hello" \
    pack -o "$OUT/keep.kpa" --manifest "$BAD/manifest.json" "$BAD"
check "the older package is untouched" cmp "$OUT/keep.kpa" "$T/keep.orig"
check_eq "nothing else in the output directory" "$(ls -A "$OUT")" "keep.kpa"

done_testing
