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

# refuse NAME EXPECTED-TEXT MKPKG-ARGS...: build the package, install it as an
# upgrade, expect a failure that mentions EXPECTED-TEXT and an unchanged store.
refuse() {
    local name=$1 needle=$2
    shift 2
    $MKPKG "$T/bad.kpa" --version 2.0 "$@" || { _result 1 "$name: build package"; return; }
    check_output "$name is refused" "$needle" "$KPA_INSTALL" --root "$R" "$T/bad.kpa"
    check_eq "$name leaves the store unchanged" "$(snapshot "$R")" "$before"
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
refuse "truncated compression" "bad.kpa" --scenario truncated --files 20 --file-size 4000
refuse "corrupt compression" "bad.kpa" --scenario corrupt --files 20 --file-size 4000
refuse "decompression bomb" "decompression bomb" --scenario bomb
refuse "too many members" "more than 100000 members" --scenario too-many-members --compress gzip
refuse "overlong path" "member path of" --scenario long-path
refuse "zero-byte file" "empty file" --scenario empty
refuse "not an archive" "bad.kpa" --scenario not-archive
check_output "a directory is not a package" "is a directory" "$KPA_INSTALL" --root "$R" "$T"
check_eq "a directory changes nothing" "$(snapshot "$R")" "$before"

# limits can be tightened by the administrator
$MKPKG "$T/big.kpa" --id org.example.big --files 10 --file-size 100000
check_output "--max-size" "unpacks to more than" "$KPA_INSTALL" --root "$R" --max-size 500K "$T/big.kpa"
check_output "--max-members" "more than 5 members" "$KPA_INSTALL" --root "$R" --max-members 5 "$T/big.kpa"
check_eq "limit refusals change nothing" "$(snapshot "$R")" "$before"

# the manifest
refuse "invalid JSON" "manifest.json" --scenario bad-json
for key in version application platform application.id application.name application.version \
    application.buildNumber application.systemApplication platform.id platform.sdk \
    platform.hwSpecification platform.sdk.buildSdkName platform.sdk.buildSdkVersion \
    platform.sdk.targetApiLevel platform.hwSpecification.arch platform.hwSpecification.cpu \
    'components[0].name' 'components[0].digest' 'components[0].componentType' \
    'runConfigurations[0].id' 'runConfigurations[0].name' 'runConfigurations[0].type' \
    'runConfigurations[0].primary' 'runConfigurations[0].path'; do
    refuse "missing required key $key" "${key##*.}" --delete "$key"
done
refuse "number where a string belongs" "application.version" --set 'application.version=2'
refuse "string where a boolean belongs" "application.systemApplication" --set 'application.systemApplication="no"'
refuse "list where an object belongs" "platform" --set 'platform=[]'
refuse "unknown top-level key" "surprise" --set 'surprise=1'
refuse "two primary run configurations" "primary" \
    --set 'runConfigurations[1]={"id":"second","name":"Second","type":"gui","path":"bin/hello","primary":true}'
refuse "path naming a non-bin component" "must name a bin component" --set 'runConfigurations[0].path="lib/libx.so"'
refuse "wrong hwSpecification.arch" "riscv128" --set 'platform.hwSpecification.arch="riscv128"'
refuse "bad application id" "application.id" --set 'application.id="../evil"'
refuse "bad component name" "components[0].name" --set 'components[0].name="a/b"'

# A sparse member: its size, holes included, is counted against the limits
# before anything of it is written out (archive-read.c also checks each
# data block's end before it fills a hole with zeros). Under a 64 MiB file
# size limit, a kpa-install that wrote the 8 GiB first would die of SIGXFSZ.
mkdir -p "$T/sparse/bin"
bsdtar -xOf "$T/hello-1.kpa" manifest.json >"$T/sparse/manifest.json"
truncate -s 8G "$T/sparse/bin/hello"
(cd "$T/sparse" && tar --format=pax --sparse -cf "$T/sparse.kpa" manifest.json bin/hello)
check "the sparse package was made" test -s "$T/sparse.kpa"
check_output "a sparse member that unpacks to 8 GiB is refused" "refused" \
    bash -c 'ulimit -f 65536 && exec "$0" --root "$1" --reinstall "$2"' "$KPA_INSTALL" "$R" "$T/sparse.kpa"
check_eq "... and leaves the store unchanged" "$(snapshot "$R")" "$before"

check_eq "nothing left in staging" "$(ls -A "$R/.staging")" ""
check "the installed version still verifies" "$KPA_INSTALL" --root "$R" --verify -q org.example.hello
done_testing
