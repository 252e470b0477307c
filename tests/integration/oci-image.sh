#!/bin/bash
# oci-image.sh: KPA packages as OCI images. kpa-pack --oci-image turns a
# .kpa into an image layout, the same package always into the same digest;
# kpa-install oci:DIR[:TAG] takes it back (plain and signed) and kpa-run
# runs it; hostile images (no index.json, bad JSON, a tampered blob, a
# layer member outside /APP_ID or with "..", links, no manifest label, a
# manifest that differs from the files, a stripped signature) are refused
# naming the cause, with the store unchanged. Then the image goes through
# Debian's tools: umoci unpack (and kpa-oci run of its bundle), skopeo
# inspect and copy, podman run.
. "$(dirname "$0")/lib.sh"

PROBE="$top_builddir/tests/probe/probe"
KPA_RUN="$top_builddir/src/tools/kpa-run"
[ -x "$PROBE" ] || skip_all "tests/probe/probe not built (make check builds it)"
command -v bsdtar >/dev/null || skip_all "bsdtar (libarchive-tools) not installed"

STORE=$T/store KEYS=$T/keys OTHER=$T/other-keys
mkdir -m 0700 "$KEYS" "$OTHER" "$T/no-keys"
APP=org.example.ociimage
# run CMD..., and put its exit code into $rc and its output into $out
run() {
    out=$("$@" 2>&1)
    rc=$?
}
inst() { "$KPA_INSTALL" --root "$STORE" --trusted-keys "$T/no-keys" "$@"; } # none trusted
# the blob of index.json's first image, or a field of it: blob [config|layer]
blob() {
    "$PYTHON3" - "$1" "${2:-}" <<'PY'
import json, sys
d, what = sys.argv[1], sys.argv[2]
def load(digest):
    return open(f"{d}/blobs/sha256/{digest[7:]}", "rb").read()
m = json.loads(open(f"{d}/index.json").read())["manifests"][0]["digest"]
man = json.loads(load(m))
print(f"{d}/blobs/sha256/" + {"": m, "config": man["config"]["digest"],
                              "layer": man["layers"][0]["digest"]}[what][7:])
PY
}
# oci_edit DIR ACTION ARGS...: change the image's layer or config, then write
# every digest again (as a forger would), so that only kpa's own checks of
# the content can refuse it
oci_edit() {
    "$PYTHON3" - "$@" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
d, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
def path(digest): return f"{d}/blobs/sha256/{digest[7:]}"
def put(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    open(path(digest), "wb").write(data)
    return digest, len(data)
index = json.load(open(f"{d}/index.json"))
man = json.load(open(path(index["manifests"][0]["digest"])))
config = json.load(open(path(man["config"]["digest"])))
layer = tarfile.open(fileobj=io.BytesIO(gzip.decompress(open(path(man["layers"][0]["digest"]), "rb").read())))
members = [(m, layer.extractfile(m).read() if m.isfile() else None) for m in layer.getmembers()]
def entry(name, kind=tarfile.REGTYPE, data=b"", link=""):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.linkname, ti.mode = kind, len(data), link, 0o644
    return (ti, data if kind == tarfile.REGTYPE else None)
if action == "add-file":
    members.append(entry(args[0], data=b"x\n"))
elif action == "add-symlink":
    members.append(entry(args[0], tarfile.SYMTYPE, link=args[1]))
elif action == "add-hardlink":
    members.append(entry(args[0], tarfile.LNKTYPE, link=args[1]))
elif action == "set-file":
    members = [(m, args[1].encode() if m.name == args[0] else data) for m, data in members]
    for m, data in members:
        if data is not None: m.size = len(data)
elif action == "drop-member":
    members = [(m, data) for m, data in members if m.name != args[0]]
elif action == "add-dir":
    ti = tarfile.TarInfo(args[0])
    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
    members.insert(0, (ti, None))
elif action == "two-layers":
    man["layers"].append(man["layers"][0])
elif action == "add-zeros":
    members.append(entry(args[0], data=bytes(int(args[1]) << 20)))
elif action in ("plain-layer", "bad-diff-id", "zeros-after-end"):
    pass
elif action == "drop-label":
    del config["config"]["Labels"][args[0]]
else:
    sys.exit("oci_edit: unknown action " + action)
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
    for m, data in members:
        t.addfile(m, io.BytesIO(data) if data is not None else None)
if action == "zeros-after-end":
    raw.write(bytes(64 << 20))
if action == "plain-layer":
    digest, size = put(raw.getvalue())
    man["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
else:
    digest, size = put(gzip.compress(raw.getvalue(), mtime=0))
man["layers"][0].update(digest=digest, size=size)
config["rootfs"]["diff_ids"] = ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()] * len(man["layers"])
if action == "bad-diff-id":
    config["rootfs"]["diff_ids"] = ["sha256:" + hashlib.sha256(b"other").hexdigest()]
man["config"]["digest"], man["config"]["size"] = put(json.dumps(config).encode())
index["manifests"][0]["digest"], index["manifests"][0]["size"] = put(json.dumps(man).encode())
json.dump(index, open(f"{d}/index.json", "w"))
PY
}

# ---- a package: the static probe, a resource, args and env ----
PKG=$T/pkg
mkdir -p "$PKG/bin" "$PKG/res/data"
cp "$PROBE" "$PKG/bin/probe"
echo "hello from an OCI image" >"$PKG/res/data/greeting.txt"
cat >"$T/manifest.json" <<EOF
{
  "version": "2.0",
  "application": { "id": "$APP", "name": "OCI image", "version": "1.0~rc1",
                   "buildNumber": "7", "systemApplication": false },
  "platform": { "id": "linux",
                "sdk": { "buildSdkName": "kpa", "buildSdkVersion": "1", "targetApiLevel": 1 },
                "hwSpecification": { "arch": "$(uname -m)", "cpu": "" } },
  "components": [ { "name": "probe", "componentType": "bin" },
                  { "name": "greeting.txt", "componentType": "res", "directoryPath": "data" } ],
  "runConfigurations": [ { "id": "main", "name": "Main", "type": "service",
                           "args": ["cat", "/$APP/res/data/greeting.txt"],
                           "envVariables": [ { "name": "GREETING", "value": "hi there" } ],
                           "path": "bin/probe", "primary": true } ]
}
EOF
"$KPA_PACK" -q -o "$T/app.kpa" --manifest "$T/manifest.json" "$PKG" ||
    { echo "Bail out! cannot pack"; exit 1; }

# ---- the image, and determinism ----
run "$KPA_PACK" --oci-image "$T/img" "$T/app.kpa"
check_eq "kpa-pack --oci-image succeeds" "$rc" 0
check "it says the tag (the version, '~' made '_') and the digest" \
    grep -q "tag 1.0_rc1, sha256:[0-9a-f]\{64\}" <<<"$out"
"$KPA_PACK" -q --oci-image "$T/img2" "$T/app.kpa"
touch -d 2001-01-01 "$T/app.kpa" # another mtime, the same bytes
"$KPA_PACK" -q --oci-image "$T/img3/" "$T/app.kpa"
check_eq "the same package gives the same image digest" \
    "$(cat "$T/img2/index.json")" "$(cat "$T/img/index.json")"
check "... and the same bytes in every file (a second run, the package's mtime changed)" \
    diff -r "$T/img" "$T/img3"
check_eq "oci-layout is image-spec 1.0.0" "$(cat "$T/img/oci-layout")" '{"imageLayoutVersion":"1.0.0"}'
check_eq "three blobs: manifest, config, layer" "$(find "$T/img/blobs/sha256" -type f | wc -l)" 3
for f in "$T"/img/blobs/sha256/*; do
    check_eq "blob ${f##*/} is named by its sha256" "$(sha256sum <"$f" | cut -d' ' -f1)" "${f##*/}"
done
LAYER=$(blob "$T/img" layer)
check_eq "the layer's gzip header has no time stamp" "$(od -An -tx1 -j4 -N4 "$LAYER" | tr -d ' ')" 00000000
bsdtar -tvf "$LAYER" >"$T/listing"
check_eq "the layer: the base directories, then the package at /$APP, sorted" \
    "$(awk '{print $NF}' "$T/listing" | paste -sd' ' -)" \
    "dev/ etc/ $APP/ $APP/bin/ $APP/bin/probe $APP/manifest.json $APP/res/ $APP/res/data/ $APP/res/data/greeting.txt proc/ run/ sys/ tmp/"
check_eq "every member is owned by 0:0 with mtime 0" \
    "$(awk '{print $3 ":" $4 " " $6 " " $7 " " $8}' "$T/listing" | sort -u)" "0:0 Jan 1 1970"
check_eq "the layer's manifest.json is the package's, byte for byte" \
    "$(bsdtar -xOf "$LAYER" "$APP/manifest.json" | sha256sum)" \
    "$(bsdtar -xOf "$T/app.kpa" manifest.json | sha256sum)"
CONFIG=$(blob "$T/img" config)
cfg() { "$PYTHON3" -c 'import json, sys; c = json.load(open(sys.argv[1]))["config"]; print(eval(sys.argv[2]))' "$CONFIG" "$1"; }
check_eq "Entrypoint: /APP_ID/PATH and the primary run configuration's args" \
    "$(cfg '" ".join(c["Entrypoint"])')" "/$APP/bin/probe cat /$APP/res/data/greeting.txt"
check_eq "Env: PATH and envVariables" "$(cfg '" ".join(c["Env"])')" \
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin GREETING=hi there"
check_eq "WorkingDir is /" "$(cfg 'c["WorkingDir"]')" /
check_eq "the label org.kpa.manifest is the package's manifest.json in base64" \
    "$(cfg 'c["Labels"]["org.kpa.manifest"]' | base64 -d | sha256sum)" \
    "$(bsdtar -xOf "$T/app.kpa" manifest.json | sha256sum)"

# ---- bad command lines ----
check_exit_output "--oci-image with -o is a usage error" 2 "give it the package alone" \
    "$KPA_PACK" --oci-image "$T/x" -o "$T/x.kpa" "$T/app.kpa"
check_exit_output "--oci-image with --compress is a usage error" 2 "give it the package alone" \
    "$KPA_PACK" --oci-image "$T/x" --compress xz "$T/app.kpa"
check_exit_output "--tag without --oci-image is a usage error" 2 "--tag names the image of --oci-image" \
    "$KPA_PACK" -o "$T/x.kpa" --manifest "$T/manifest.json" --tag v1 "$PKG"
check_exit_output "--oci-image takes exactly one package" 2 "one PACKAGE.kpa" \
    "$KPA_PACK" --oci-image "$T/x"
check_output "an existing non-empty directory is refused" "exists and is not empty" \
    "$KPA_PACK" --oci-image "$T/img" "$T/app.kpa"
check_output "a bad tag is refused" 'tag "-bad"' \
    "$KPA_PACK" --oci-image "$T/x" --tag=-bad "$T/app.kpa"
check_output "a missing package is named" "$T/none.kpa" \
    "$KPA_PACK" --oci-image "$T/x" "$T/none.kpa"
check "nothing is left of a refused image" test ! -e "$T/x"
check_eq "no temporary directory is left beside" "$(find "$T" -maxdepth 1 -name '*.tmp-*' | wc -l)" 0

# ---- round trip: install the image, run it ----
run inst oci:"$T/img"
check_eq "kpa-install oci:DIR installs the image" "$rc" 0
check "it says what it installed" grep -q "Installed $APP 1.0~rc1" <<<"$out"
check_eq "the installed manifest.json is the package's" \
    "$(sha256sum <"$STORE/apps/$APP/manifest.json")" "$(bsdtar -xOf "$T/app.kpa" manifest.json | sha256sum)"
check "kpa-install --verify passes" "$KPA_INSTALL" --root "$STORE" --verify "$APP"
if [ "$(id -u)" -eq 0 ] && [ -x "$KPA_RUN" ]; then
    check_eq "kpa-run runs it" "$("$KPA_RUN" --root "$STORE" "$APP" 2>&1)" "hello from an OCI image"
else
    skip "kpa-run runs it" "needs root"
fi
run inst --reinstall oci:"$T/img:1.0_rc1"
check_eq "oci:DIR:TAG picks the image by tag" "$rc" 0
"$KPA_PACK" -q --oci-image "$T/tagged" --tag stable "$T/app.kpa"
check_eq "--tag names the image" "$("$PYTHON3" -c 'import json, sys; print(json.load(open(sys.argv[1]))["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])' "$T/tagged/index.json")" stable
check_output "a tag that is not there is refused, naming those that are" 'no image tagged "1.0" (tags: stable)' \
    inst --reinstall oci:"$T/tagged:1.0"

# ---- signed round trip ----
"$KPA_PACK" -q --new-key "$T/vendor"
"$KPA_PACK" -q --new-key "$T/intruder"
cp "$T/vendor.pub" "$KEYS/"
cp "$T/intruder.pub" "$OTHER/"
"$KPA_PACK" -q -o "$T/signed.kpa" --manifest "$T/manifest.json" --sign "$T/vendor.key" "$PKG"
run "$KPA_PACK" --oci-image "$T/simg" "$T/signed.kpa"
check "a signed package's image says the signature is kept" grep -q "signature kept" <<<"$out"
CONFIG=$(blob "$T/simg" config)
check_eq "the label org.kpa.manifest.sig is the package's manifest.sig" \
    "$(cfg 'c["Labels"]["org.kpa.manifest.sig"]' | base64 -d | sha256sum)" \
    "$(bsdtar -xOf "$T/signed.kpa" manifest.sig | sha256sum)"
SSTORE=$T/sstore
run "$KPA_INSTALL" --root "$SSTORE" --trusted-keys "$KEYS" oci:"$T/simg"
check_eq "the signed image installs with the vendor's key trusted" "$rc" 0
check_eq "the store keeps its manifest.sig" "$(sha256sum <"$SSTORE/apps/$APP/manifest.sig")" \
    "$(bsdtar -xOf "$T/signed.kpa" manifest.sig | sha256sum)"
check_output "--info shows the signature as trusted" "vendor" \
    sh -c "'$KPA_INSTALL' --root '$SSTORE' --trusted-keys '$KEYS' --info $APP; exit 1"
before=$(snapshot "$SSTORE")
check_output "with another key trusted, the signed image is refused" "signed by an unknown key" \
    "$KPA_INSTALL" --root "$SSTORE" --trusted-keys "$OTHER" --reinstall oci:"$T/simg"
check_output "an unsigned image is refused when a key is trusted" "not signed" \
    "$KPA_INSTALL" --root "$SSTORE" --trusted-keys "$KEYS" --reinstall oci:"$T/img"
cp -a "$T/simg" "$T/stripped"
oci_edit "$T/stripped" drop-label org.kpa.manifest.sig
oci_edit "$T/stripped" drop-member "$APP/manifest.sig"
check_output "an image whose signature was stripped is refused as unsigned" "not signed" \
    "$KPA_INSTALL" --root "$SSTORE" --trusted-keys "$KEYS" --reinstall oci:"$T/stripped"
cp -a "$T/simg" "$T/halfsig"
oci_edit "$T/halfsig" drop-label org.kpa.manifest.sig
check_output "a layer manifest.sig without the label is refused" "config has no label org.kpa.manifest.sig" \
    "$KPA_INSTALL" --root "$SSTORE" --trusted-keys "$KEYS" --reinstall oci:"$T/halfsig"
check_eq "the signed store is unchanged by the refusals" "$(snapshot "$SSTORE")" "$before"

# ---- hostile images: each refused, naming the cause, the store unchanged ----
before=$(snapshot "$STORE")
hostile() { # NAME NEEDLE EDIT...: a copy of the image, edited, must be refused
    local name=$1 needle=$2 dir
    shift 2
    dir=$T/h$((++n_hostile))
    cp -a "$T/img" "$dir"
    "$@" "$dir"
    check_exit_output "$name" 1 "$needle" inst --reinstall oci:"$dir"
}
n_hostile=0
rm_index() { rm "$1/index.json"; }
bad_json() { printf '{"schemaVersion": 2, "manifests": [' >"$1/index.json"; }
tamper_layer() { printf 'X' | dd of="$(blob "$1" layer)" bs=1 seek=40 conv=notrunc status=none; }
tamper_config() { printf 'X' | dd of="$(blob "$1" config)" bs=1 seek=10 conv=notrunc status=none; }
grow_config() { echo >>"$(blob "$1" config)"; }
rm_layer() { rm "$(blob "$1" layer)"; }
link_layer() { local l; l=$(blob "$1" layer); mv "$l" "$1/moved"; ln -s ../../moved "$l"; }
dotdot() { oci_edit "$1" add-file "$APP/../etc/evil"; }
outside() { oci_edit "$1" add-file "etc/passwd"; }
symlink() { oci_edit "$1" add-symlink "$APP/res/data/link" /etc/shadow; }
symlink_dir() { oci_edit "$1" add-symlink "$APP/lib" ../../etc; }
hardlink() { oci_edit "$1" add-hardlink "$APP/bin/again" "$APP/bin/probe"; }
no_label() { oci_edit "$1" drop-label org.kpa.manifest; }
changed_file() { oci_edit "$1" set-file "$APP/res/data/greeting.txt" "something else"; }
changed_manifest() { oci_edit "$1" set-file "$APP/manifest.json" '{}'; }
no_manifest() { oci_edit "$1" drop-member "$APP/manifest.json"; }
missing_file() { oci_edit "$1" drop-member "$APP/res/data/greeting.txt"; }
extra_file() { oci_edit "$1" add-file "$APP/bin/extra"; }
two_images() {
    "$PYTHON3" - "$1/index.json" <<'PY'
import json, sys
i = json.load(open(sys.argv[1])); i["manifests"] *= 2
i["manifests"][1] = dict(i["manifests"][1], annotations={"org.opencontainers.image.ref.name": "other"})
json.dump(i, open(sys.argv[1], "w"))
PY
}
two_layers() { oci_edit "$1" two-layers; }
bad_diff_id() { oci_edit "$1" bad-diff-id; }
bomb() { oci_edit "$1" add-zeros "$APP/res/data/zeros" 64; }
bomb_after_end() { oci_edit "$1" zeros-after-end; }
nested_index() { sed -i 's/image.manifest.v1+json/image.index.v1+json/' "$1/index.json"; }
hostile "a layout without index.json is refused" "no index.json: not an OCI image layout" rm_index
hostile "a bad index.json is refused, naming the place" "index.json: manifests[0]: line 1, column 36" bad_json
layer_digest=sha256:$(basename "$(blob "$T/img" layer)")
hostile "a tampered layer is refused, naming its digest" "blob $layer_digest: digest mismatch" tamper_layer
config_digest=sha256:$(basename "$(blob "$T/img" config)")
hostile "a tampered config is refused, naming its digest" "blob $config_digest: digest mismatch" tamper_config
hostile "a blob whose size differs from its descriptor is refused" "size mismatch" grow_config
hostile "a missing layer blob is refused" "blob $layer_digest: missing" rm_layer
hostile "a blob that is a symlink is not followed" "blob $layer_digest" link_layer
hostile "a layer path with .. is refused" '".." path component refused' dotdot
hostile "a file outside /APP_ID is refused" "etc/passwd is outside /$APP" outside
hostile "a symlink is refused, naming its target" 'symbolic link to "/etc/shadow"' symlink
hostile "a symlink escaping the tree is refused" 'symbolic link to "../../etc"' symlink_dir
hostile "a hard link is refused" "is a hard link" hardlink
hostile "an image without the manifest label is refused" "not a KPA image: its config has no label org.kpa.manifest" no_label
hostile "a file that differs from the manifest's digest is refused" "digest mismatch" changed_file
hostile "a layer manifest.json that differs from the label is refused" "differs from the config label org.kpa.manifest" changed_manifest
hostile "a layer without manifest.json is refused" "the layer has no $APP/manifest.json" no_manifest
hostile "a component missing from the layer is refused" "missing from the package" missing_file
hostile "a file the manifest does not list is refused" "bin/extra" extra_file
hostile "two images and no tag: refused, naming the tags" "name one as oci:DIR:TAG (tags: 1.0_rc1, other)" two_images
hostile "a layer whose tar is not the config's diff_id is refused" "but the config's rootfs.diff_ids[0] says" bad_diff_id
hostile "a layer that unpacks to 1000 times its size is refused" "decompression bomb" bomb
hostile "... also with the zeros after the tar's end" "decompression bomb" bomb_after_end
hostile "an image of two layers is refused" "2 layers (a KPA image has one)" two_layers
hostile "an index that points to another index is refused" 'not an image manifest' nested_index
check_output "a missing directory is named" "oci:$T/none" inst oci:"$T/none"
check_eq "the store is unchanged by every refusal" "$(snapshot "$STORE")" "$before"
check_eq "no staging is left" "$(find "$STORE/.staging" -mindepth 1 | wc -l)" 0

cp -a "$T/img" "$T/dotroot"
oci_edit "$T/dotroot" add-dir ./
run inst --reinstall oci:"$T/dotroot"
check_eq "a layer whose root is written as ./ (tar -C DIR -c .) installs" "$rc" 0
cp -a "$T/img" "$T/plain"
oci_edit "$T/plain" plain-layer
run inst --reinstall oci:"$T/plain"
check_eq "an uncompressed tar layer installs" "$rc" 0

# ---- umoci ----
if command -v umoci >/dev/null; then
    run umoci unpack --image "$T/img:1.0_rc1" "$T/bundle"
    check_eq "umoci unpacks the image" "$rc" 0
    check "the bundle's rootfs has /$APP/bin/probe, executable" test -x "$T/bundle/rootfs/$APP/bin/probe"
    check_eq "... and the package's greeting" "$(cat "$T/bundle/rootfs/$APP/res/data/greeting.txt")" \
        "hello from an OCI image"
    check_eq "config.json's process.args is the entrypoint" \
        "$("$PYTHON3" -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["process"]["args"]))' "$T/bundle/config.json")" \
        "/$APP/bin/probe cat /$APP/res/data/greeting.txt"
    # kpa-oci runs umoci's bundle (its own --root in $T); umoci writes
    # process.terminal true (for runc run -t), set false here: no console
    # socket. Its config.json keeps CAP_AUDIT_WRITE, CAP_KILL and
    # CAP_NET_BIND_SERVICE in every set, and sets noNewPrivileges.
    KPA_OCI="$top_builddir/src/tools/kpa-oci"
    if [ "$(id -u)" -ne 0 ] || [ ! -x "$KPA_OCI" ]; then
        skip "kpa-oci runs umoci's bundle" "needs root and kpa-oci"
    else
        cleanup_add 'for d in $(app_cgroups oci); do rmdir "$d" 2>/dev/null; done'
        cp "$T/bundle/config.json" "$T/umoci-config.json"
        bundle_args() { # bundle_args ARG...: umoci's config.json, terminal off, these args
            "$PYTHON3" - "$T/umoci-config.json" "$T/bundle/config.json" "$@" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
if sys.argv[3:]:
    c["process"]["args"] = sys.argv[3:]
json.dump(c, open(sys.argv[2], "w"))
PY
        }
        bundle_args
        run "$KPA_OCI" --root "$T/kpa-oci" run -b "$T/bundle" kpa-image-1 </dev/null
        check_eq "kpa-oci runs umoci's bundle: the image's entrypoint" "$out" "hello from an OCI image"
        bundle_args "/$APP/bin/probe" cat /proc/self/status
        run "$KPA_OCI" --root "$T/kpa-oci" run -b "$T/bundle" kpa-image-2 </dev/null
        check_eq "with the capabilities umoci's config.json keeps, in every set, and no_new_privs" \
            "$(grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' <<<"$out" | tr -s '\t\n' '  ')" \
            "CapInh: 0000000020000420 CapPrm: 0000000020000420 CapEff: 0000000020000420 CapBnd: 0000000020000420 CapAmb: 0000000020000420 NoNewPrivs: 1 "
        check_eq "kpa-oci run leaves no state" "$(find "$T/kpa-oci" -mindepth 1 | wc -l)" 0
        cp "$T/umoci-config.json" "$T/bundle/config.json"
    fi
else
    skip "umoci unpacks the image" "umoci not installed"
fi

# ---- skopeo ----
if command -v skopeo >/dev/null; then
    run skopeo inspect oci:"$T/img:1.0_rc1"
    check_eq "skopeo inspects the image" "$rc" 0
    check "it shows the label org.kpa.manifest" grep -q '"org.kpa.manifest":' <<<"$out"
    check "it shows the image digest" grep -q "\"Digest\": \"sha256:$(basename "$(blob "$T/img")")\"" <<<"$out"
    run skopeo copy -q oci:"$T/img:1.0_rc1" oci-archive:"$T/img.tar:localhost/kpa-test/$APP:1.0"
    check_eq "skopeo copies it into an oci-archive" "$rc" 0
    run skopeo copy -q oci:"$T/img:1.0_rc1" oci:"$T/copied:v1"
    check_eq "skopeo copies it into another layout" "$rc" 0
    run "$KPA_INSTALL" --root "$T/store-copied" --trusted-keys "$T/no-keys" oci:"$T/copied:v1"
    check_eq "kpa-install takes the copy back" "$rc" 0
else
    skip "skopeo inspects and copies the image" "skopeo not installed"
fi

# ---- podman (its own storage in $T; rlimits lowered: podman's default
# nofile and nproc are above what runc may set on this host) ----
if ! command -v podman >/dev/null; then
    skip "podman runs the image" "podman not installed"
elif [ ! -f "$T/img.tar" ] || [ "$(id -u)" -ne 0 ]; then
    skip "podman runs the image" "needs root and skopeo's oci-archive"
else
    podman_() {
        podman --root "$T/podman/root" --runroot "$T/podman/run" --storage-driver vfs \
            --cgroup-manager cgroupfs --events-backend file "$@"
    }
    cleanup_add 'podman --root "$T/podman/root" --runroot "$T/podman/run" --storage-driver vfs --cgroup-manager cgroupfs rm -a -f >/dev/null 2>&1'
    run podman_ info
    if [ "$rc" -ne 0 ]; then
        skip "podman runs the image" "podman cannot work here: $(grep -m1 . <<<"$out")"
        done_testing
        exit
    fi
    run podman_ load -q -i "$T/img.tar"
    check_eq "podman loads the oci-archive" "$rc" 0
    run podman_ run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
        "localhost/kpa-test/$APP:1.0"
    check_eq "podman runs the image's entrypoint" "$out" "hello from an OCI image"
    if [ -d "$T/bundle/rootfs" ]; then
        run podman_ run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
            --rootfs "$T/bundle/rootfs" "/$APP/bin/probe" cat "/$APP/res/data/greeting.txt"
        check_eq "podman runs umoci's rootfs (--rootfs)" "$out" "hello from an OCI image"
    else
        skip "podman runs umoci's rootfs (--rootfs)" "no umoci bundle"
    fi
fi

done_testing
