#!/bin/bash
# Hostile and broken packages: each is refused with a message naming the
# cause, and the store is byte-for-byte what it was before.
. "$(dirname "$0")/lib.sh"
need_root

R="$T/store"
$MKPKG "$T/base.kpa" --id org.example.base
"$KPA_INSTALL" --root "$R" -q "$T/base.kpa" || { echo "Bail out! cannot install the base package"; exit 1; }
# the target package is installed at 1.0, so a refused 2.0 must leave 1.0 as it was
$MKPKG "$T/hello-1.kpa"
"$KPA_INSTALL" --root "$R" -q "$T/hello-1.kpa" || { echo "Bail out! cannot install hello 1.0"; exit 1; }
before=$(snapshot "$R")

# refused NAME NEEDLE CMD...: one check: CMD (an install) exits 1 with a
# message that contains NEEDLE, and the store is what it was before.
refused() {
    local name=$1 needle=$2 out rc after
    shift 2
    out=$("$@" 2>&1)
    rc=$?
    after=$(snapshot "$R")
    if [ $rc -eq 1 ] && [[ $out == *"$needle"* ]] && [ "$after" = "$before" ]; then
        _result 0 "$name is refused, the store unchanged"
    else
        _result 1 "$name is refused, the store unchanged"
        echo "$out" | sed 's/^/#   /' | head -20
        echo "#   (exit $rc; wanted exit 1 and a message mentioning '$needle')"
        [ "$after" = "$before" ] || diff <(echo "$before") <(echo "$after") | sed 's/^/#   /' | head -20
    fi
}

# refuse NAME NEEDLE MKPKG-ARGS...: build the package, install it as an
# upgrade: refused, with a message that contains NEEDLE, and an unchanged store.
refuse() {
    local name=$1 needle=$2
    shift 2
    $MKPKG "$T/bad.kpa" --version 2.0 "$@" || { _result 1 "$name: build package"; return; }
    refused "$name" "$needle" "$KPA_INSTALL" --root "$R" "$T/bad.kpa"
}

# archive members
refuse "absolute path" "absolute path" --scenario absolute
check "nothing written outside the store" test ! -e /tmp/kpa-evil
refuse "'..' component" '".." path component' --scenario dotdot
check "nothing written above the store" test ! -e "$T/kpa-evil" -a ! -e "$R/kpa-evil"
refuse "symlink member" "symbolic link" --scenario symlink
refuse "hardlink member" "hard link" --scenario hardlink
refuse "device member" "character device" --scenario device
refuse "FIFO member" "FIFO" --scenario fifo
refuse "setuid bit" "setuid" --scenario setuid
refuse "member not in the manifest" "not a component listed in the manifest" --scenario extra-member
refuse "missing component" '"res/data/conf.txt" is listed in the manifest but missing' --scenario missing-component
refuse "digest mismatch" "digest mismatch" --scenario digest-mismatch
refuse "manifest.json not first" "must be manifest.json" --scenario manifest-not-first
refuse "no manifest at all" "must be manifest.json" --scenario no-manifest
refuse "duplicate member" "appears twice" --scenario duplicate-member
refuse "second manifest.json" "second manifest.json" --scenario second-manifest

# the archive as a whole
refuse "truncated compression" "bad.kpa: not a readable package" --scenario truncated --files 20 --file-size 4000
refuse "corrupt compression" "bad.kpa: not a readable package" --scenario corrupt --files 20 --file-size 4000
refuse "decompression bomb" "decompression bomb" --scenario bomb
refuse "too many members" "more than 100000 members" --scenario too-many-members --compress gzip
refuse "overlong path" "member path of" --scenario long-path
refuse "zero-byte file" "empty file" --scenario empty
refuse "not an archive" "bad.kpa: not a readable package" --scenario not-archive
refused "a directory" "is a directory" "$KPA_INSTALL" --root "$R" "$T"

# limits can be tightened by the administrator
$MKPKG "$T/big.kpa" --id org.example.big --files 10 --file-size 100000
refused "a package over --max-size" "unpacks to more than" "$KPA_INSTALL" --root "$R" --max-size 500K "$T/big.kpa"
refused "a package over --max-members" "more than 5 members" "$KPA_INSTALL" --root "$R" --max-members 5 "$T/big.kpa"

# the manifest
refuse "invalid JSON" "manifest.json: line 1, column" --scenario bad-json
for key in version application platform application.id application.name application.version \
    application.buildNumber application.systemApplication platform.id platform.sdk \
    platform.hwSpecification platform.sdk.buildSdkName platform.sdk.buildSdkVersion \
    platform.sdk.targetApiLevel platform.hwSpecification.arch platform.hwSpecification.cpu \
    'components[0].name' 'components[0].digest' 'components[0].componentType' \
    'runConfigurations[0].id' 'runConfigurations[0].name' 'runConfigurations[0].type' \
    'runConfigurations[0].primary' 'runConfigurations[0].path'; do
    # 'manifest.json: application: missing required key "id"'
    parent=manifest.json
    [[ $key == *.* ]] && parent=${key%.*}
    refuse "missing required key $key" "$parent: missing required key \"${key##*.}\"" --delete "$key"
done
refuse "number where a string belongs" "application.version: must be a string" --set 'application.version=2'
refuse "string where a boolean belongs" "application.systemApplication: must be a boolean" --set 'application.systemApplication="no"'
refuse "list where an object belongs" "platform: must be an object" --set 'platform=[]'
refuse "unknown top-level key" "surprise: unknown key" --set 'surprise=1'
refuse "two primary run configurations" "only one run configuration may be primary" \
    --set 'runConfigurations[1]={"id":"second","name":"Second","type":"gui","path":"bin/hello","primary":true}'
refuse "path naming a non-bin component" "must name a bin component" --set 'runConfigurations[0].path="lib/libx.so"'
refuse "wrong hwSpecification.arch" 'built for "riscv128"' --set 'platform.hwSpecification.arch="riscv128"'
refuse "bad application id" 'application.id: "../evil" is not a valid application id' --set 'application.id="../evil"'
refuse "bad component name" 'components[0].name: "a/b" must be a single file name' --set 'components[0].name="a/b"'
# a declared socket must stay in the package's own socket directory, on a real port
refuse "a unix socket escaping /run/kpa/sockets/APP_ID" \
    'extensions.KPA_sockets.main[0].listen: "unix:../other/ctl.sock" must stay below /run/kpa/sockets/org.example.hello/' \
    --set 'extensions={"KPA_sockets":{"main":[{"name":"ctl","listen":"unix:../other/ctl.sock"}]}}'
refuse "a unix socket at an absolute path" 'extensions.KPA_sockets.main[0].listen: "unix:/run/kpa/execd.sock" must stay below' \
    --set 'extensions={"KPA_sockets":{"main":[{"name":"ctl","listen":"unix:/run/kpa/execd.sock"}]}}'
refuse "a declared socket on port 0" 'extensions.KPA_sockets.main[0].listen: "tcp:0.0.0.0:0": port 0 is not a declared port' \
    --set 'extensions={"KPA_sockets":{"main":[{"name":"http","listen":"tcp:0.0.0.0:0"}]}}'
refuse "a declared socket named like a handle it already has" 'extensions.KPA_sockets.main[1].name: "http" is declared twice' \
    --set 'extensions={"KPA_sockets":{"main":[{"name":"http","listen":"tcp:127.0.0.1:1"},{"name":"http","listen":"tcp:127.0.0.1:2"}]}}'

# A sparse member: its size, holes included, is counted against the limits
# before anything of it is written out (archive-read.c also checks each
# data block's end before it fills a hole with zeros). Under a 64 MiB file
# size limit, a kpa-install that wrote the 8 GiB first would die of SIGXFSZ.
mkdir -p "$T/sparse/bin"
bsdtar -xOf "$T/hello-1.kpa" manifest.json >"$T/sparse/manifest.json"
truncate -s 8G "$T/sparse/bin/hello"
(cd "$T/sparse" && tar --format=pax --sparse -cf "$T/sparse.kpa" manifest.json bin/hello)
check "the sparse package was made" test -s "$T/sparse.kpa"
refused "a sparse member that unpacks to 8 GiB" "refused" \
    bash -c 'ulimit -f 65536 && exec "$0" --root "$1" --reinstall "$2"' "$KPA_INSTALL" "$R" "$T/sparse.kpa"

check_eq "nothing left in staging" "$(ls -A "$R/.staging")" ""
check "the installed version still verifies" "$KPA_INSTALL" --root "$R" --verify -q org.example.hello
done_testing
