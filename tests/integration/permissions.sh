#!/bin/bash
# permissions.sh: extensions.KPA_sandbox is a request, not a grant (issue 13,
# finding 1). kpa-install prints each request and refuses a package whose
# requests are not granted, with the store unchanged; --grant, a policy file
# and a later --grant/--revoke grant them; an upgrade's new requests are
# refused until granted; kpa-run and kpa-execd apply only the granted set;
# readOnlyPaths never reach a kpa store, /proc, /sys, /dev, a socket or a
# device, nor anything the package's uid could not open itself, at install
# and at start; every instance has a fresh session keyring.
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
EXECD="$top_builddir/src/daemon/kpa-execd"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
chmod 755 "$T" # the packages' uids must reach the host paths below $T
R="$T/store"
inst() { "$KPA_INSTALL" --root "$R" "$@"; }
run() { "$KPA_RUN" --root "$R" "$@"; }
val() { sed -n "s|^$1=||p" <<<"$2" | head -1; }
sb() { echo "extensions={\"KPA_sandbox\":$1}"; }
mk() { # mk OUT ID VERSION SANDBOX
    $MKPKG "$1" --id "$2" --version "$3" --bin "$PROBE" --set 'runConfigurations[0].args=[]' --set "$(sb "$4")"
}

# a store with one package already in it
BASE=org.example.base$$
$MKPKG "$T/base.kpa" --id $BASE --bin "$PROBE" --set 'runConfigurations[0].args=[]'
inst -q "$T/base.kpa" || { echo "Bail out! cannot install the base package"; exit 1; }
mkdir -p "$T/data/sub" && echo "shared data" >"$T/data/sub/f" && chmod -R a+rX "$T/data"

# ---- install: requests are printed; without a grant, refused ----
APP=org.example.perm$$
mk "$T/v1.kpa" $APP 1 "{\"network\":\"host\",\"allowKeyring\":true,\"readOnlyPaths\":[\"$T/data/sub\"]}"
before=$(snapshot "$R")
out=$(inst "$T/v1.kpa" 2>&1)
check_eq "a package with ungranted requests is refused (exit 1)" "$?" 1
check "each request is printed on a line of its own: network" \
    grep -qx "$APP requests network (the host's network instead of an empty network namespace): NOT GRANTED" <<<"$out"
check "... allowKeyring" grep -q "^$APP requests allowKeyring (.*): NOT GRANTED$" <<<"$out"
check "... readOnlyPaths, with the path" grep -q "^$APP requests readOnlyPaths $T/data/sub (.*): NOT GRANTED$" <<<"$out"
check "the refusal says what is missing and how to grant it" grep -qF \
    "$APP 1 requests permissions that are not granted: allowKeyring, network, readOnlyPaths $T/data/sub. Nothing was installed. Grant them with --grant allowKeyring,network,readOnlyPaths (or --grant all), or in the policy file" \
    <<<"$out"
check_eq "the store is unchanged" "$(snapshot "$R")" "$before"
check_exit_output "a partial --grant is refused too" 1 "requests permissions that are not granted: readOnlyPaths $T/data/sub" \
    inst --grant network,allowKeyring "$T/v1.kpa"
check_eq "... and the store is unchanged" "$(snapshot "$R")" "$before"
check_exit_output "an unknown permission name is refused" 1 '"netwrk" is not a permission' inst --grant netwrk "$T/v1.kpa"
check_eq "... and the store is unchanged" "$(snapshot "$R")" "$before"

# ---- --grant all ----
out=$(inst --grant all "$T/v1.kpa" 2>&1)
check_eq "--grant all installs it" "$?" 0
check "... printing each request as granted" grep -qx "$APP requests network (the host's network instead of an empty network namespace): granted" <<<"$out"
check "the grant is recorded beside the package" test -f "$R/grants/$APP"
check_eq "... as a KPA_sandbox-shaped object" \
    "$("$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["network"], d["allowKeyring"], d["readOnlyPaths"])' "$R/grants/$APP")" \
    "host True ['$T/data/sub']"
info=$(inst --info $APP)
check "--info shows requested and granted side by side" \
    grep -qx "  network (the host's network instead of an empty network namespace): requested, granted" <<<"$info"
check_eq "--info --json lists both" \
    "$(inst --info --json $APP | "$PYTHON3" -c 'import json,sys; p=json.load(sys.stdin)["permissions"]; print(len(p["requested"]), len(p["granted"]))')" "3 3"
check_eq "a granted path is bound" "$(run $APP -- cat "$T/data/sub/f")" "shared data"
n=$(val netifs "$(run $APP -- info)")
check "the granted network is the host's" test -n "$n" -a "$n" != lo

# ---- what a start applies is the grant, not the manifest ----
check "--revoke network" inst -q --revoke network $APP
check_eq "... the start has an empty network namespace again" "$(val netifs "$(run $APP -- info)")" lo
check "--info shows it requested, not granted" \
    grep -qx "  network (the host's network instead of an empty network namespace): requested, NOT GRANTED" <<<"$(inst --info $APP)"
check_exit_output "... and a start's --network host is refused" 1 "the network permission is not granted" \
    run --network host $APP -- exit 0
check "--revoke readOnlyPaths" inst -q --revoke readOnlyPaths $APP
# (the probe's cat exits 1 with this error: kpa-run passes both on)
check_exit_output "... the path is not bound any more" 1 "error=$T/data/sub/f: ENOENT" \
    run $APP -- cat "$T/data/sub/f"
v=$(val sc.keyctl "$(run $APP -- seccomp)")
check "allowKeyring granted: keyctl reaches the kernel" test -n "$v" -a "$v" != EPERM
check "--revoke allowKeyring" inst -q --revoke allowKeyring $APP
check_eq "... keyctl is refused by the filter again" "$(val sc.keyctl "$(run $APP -- seccomp)")" EPERM
check "nothing granted: the grant record is gone" test ! -e "$R/grants/$APP"
out=$(inst --grant network,allowKeyring $APP 2>&1)
check "--grant NAME,NAME APP_ID grants them again" grep -q "^Granted to $APP network" <<<"$out"
check_eq "... and the start has the host's network" "$(run $APP -- info | grep -c '^netifs=lo$')" 0
check_exit_output "--grant of an unknown name" 1 '"bogus" is not a permission' inst --grant bogus $APP
check_exit_output "--grant to a package that is not installed" 1 "org.example.nosuch is not installed" \
    inst --grant all org.example.nosuch

# a store written by an older kpa (or by hand): a manifest and no grant record
rm -f "$R/grants/$APP"
check_eq "a request without a grant record is not applied: no network" "$(val netifs "$(run $APP -- info)")" lo
check_eq "... no keyctl" "$(val sc.keyctl "$(run $APP -- seccomp)")" EPERM
inst -q --grant all $APP

# ---- upgrades: new requests are refused until granted; narrowing is free ----
mk "$T/v2.kpa" $APP 2 "{\"network\":\"host\",\"allowKeyring\":true,\"allowPtrace\":true,\"readOnlyPaths\":[\"$T/data/sub\",\"$T/data\"]}"
before=$(snapshot "$R")
out=$(inst "$T/v2.kpa" 2>&1)
check_eq "an upgrade with new requests is refused" "$?" 1
check "... the new ones are printed as new" grep -qx "$APP requests allowPtrace (ptrace, process_vm_readv and process_vm_writev): NOT GRANTED (new in this version)" <<<"$out"
check "... and the new path" grep -q "^$APP requests readOnlyPaths $T/data (.*): NOT GRANTED (new in this version)$" <<<"$out"
check "... the old ones as granted" grep -qx "$APP requests network (the host's network instead of an empty network namespace): granted" <<<"$out"
check "... and the refusal names only the new ones" grep -q "not granted: allowPtrace, readOnlyPaths $T/data\. Nothing was installed" <<<"$out"
check_eq "... the store is unchanged (still version 1)" "$(snapshot "$R")" "$before"
check "granted, the upgrade goes through" inst -q --grant allowPtrace,readOnlyPaths "$T/v2.kpa"
check_eq "... to version 2" "$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1]))["application"]["version"])' "$R/apps/$APP/manifest.json")" 2
mk "$T/v3.kpa" $APP 3 '{"allowKeyring":true}'
check "a narrower version installs without any grant" inst -q "$T/v3.kpa"
check_eq "... and the grant narrows with it" "$(tr -d ' \n' <"$R/grants/$APP")" '{"allowKeyring":true}'
mk "$T/v4.kpa" $APP 4 '{"allowKeyring":true,"network":"host"}'
check_exit_output "a permission that the previous version gave up is a new request again" 1 \
    "not granted: network. Nothing was installed" inst "$T/v4.kpa"

# ---- policy files ----
POL=$T/policy
mkdir -p "$POL"
PAPP=org.example.policy$$
mk "$T/p.kpa" $PAPP 1 "{\"allowBpf\":true,\"readOnlyPaths\":[\"$T/data/sub\"]}"
before=$(snapshot "$R")
check_exit_output "no policy file: refused, naming the file to write" 1 "in the policy file $POL/$PAPP.json" \
    inst --policy "$POL" "$T/p.kpa"
echo '{"allowBpf": true}' >"$POL/$PAPP.json"
check_exit_output "a policy that grants only part: refused" 1 "not granted: readOnlyPaths $T/data/sub" \
    inst --policy "$POL" "$T/p.kpa"
echo "{\"allowBpf\": true, \"readOnlyPaths\": [\"$T/data\"]}" >"$POL/$PAPP.json"
chmod 664 "$POL/$PAPP.json"
check_exit_output "a group-writable policy file is refused" 1 "policy file $POL/$PAPP.json is not a regular file owned by root" \
    inst --policy "$POL" "$T/p.kpa"
chmod 644 "$POL/$PAPP.json"
echo '{"allowBpf": "yes"}' >"$T/bad.json" && chmod 644 "$T/bad.json" && cp "$T/bad.json" "$POL/$PAPP.json"
check_exit_output "a malformed policy file is refused, named" 1 "policy file $POL/$PAPP.json: allowBpf must be true or false" \
    inst --policy "$POL" "$T/p.kpa"
check_eq "... the store is unchanged after all these" "$(snapshot "$R")" "$before"
echo "{\"allowBpf\": true, \"readOnlyPaths\": [\"$T/data\"]}" >"$POL/$PAPP.json"
check "a policy that grants all (a path covers the paths below it) installs unattended" \
    inst -q --policy "$POL" "$T/p.kpa"
check_eq "... and its grant is recorded" "$(inst --info --json $PAPP | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)["permissions"]["granted"])')" \
    "['allowBpf', 'readOnlyPaths:$T/data/sub']"
check "--remove takes the grant with the package" inst -q --remove $PAPP
check "... no grant record left" test ! -e "$R/grants/$PAPP"

# ---- readOnlyPaths that are never bound, granted or not ----
RAPP=org.example.ro$$
mkdir -p "$T/secret/d" && echo "root only" >"$T/secret/d/f" && chmod 700 "$T/secret"
echo "for root" >"$T/rootfile" && chmod 600 "$T/rootfile"
"$PYTHON3" -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/sock"
mkfifo "$T/fifo"
ln -s "$R/storage/$BASE" "$T/to-storage"
refuse_path() { # refuse_path NAME PATH NEEDLE
    mk "$T/ro.kpa" $RAPP 1 "{\"readOnlyPaths\":[\"$2\"]}"
    before=$(snapshot "$R")
    check_exit_output "readOnlyPaths: $1 is refused at install, even granted" 1 "read-only path $2: $3" \
        inst --grant all "$T/ro.kpa"
    check_eq "... and the store is unchanged" "$(snapshot "$R")" "$before"
}
refuse_path "another package's private storage" "$R/storage/$BASE" "it is inside the kpa store $R"
refuse_path "a symlink into the store" "$T/to-storage" "it is inside the kpa store $R"
refuse_path "a directory that contains the store" "$T" "it contains the kpa store $R"
refuse_path "the system store" "/var/lib/kpa" "it is inside the kpa store"
refuse_path "/proc" "/proc/1/environ" "it is inside /proc; kpa does not bind that"
refuse_path "/sys" "/sys/kernel" "it is inside /sys"
refuse_path "/dev" "/dev/null" "it is inside /dev"
refuse_path "kpa's run-time directory" "/run/kpa/execd.sock" "it is inside kpa's run-time directory"
refuse_path "a socket" "$T/sock" "it is a socket; kpa binds only regular files and directories"
refuse_path "a FIFO" "$T/fifo" "it is a FIFO"
refuse_path "a file behind a 0700 directory" "$T/secret/d/f" "the package's uid 6"
check "... naming the directory and its mode" grep -q "cannot search the directory $T/secret (mode 0700, owner 0)" \
    <<<"$(inst --grant all "$T/ro.kpa" 2>&1)"
refuse_path "a root-only file" "$T/rootfile" "the package's uid"
check "... naming the mode" grep -q "cannot read it (mode 0600, owner 0)" <<<"$(inst --grant all "$T/ro.kpa" 2>&1)"
refuse_path "/etc/shadow" "/etc/shadow" "the package's uid"

# checked again at start: the host changes
mk "$T/ro.kpa" $RAPP 1 "{\"readOnlyPaths\":[\"$T/data/sub\"]}"
inst -q --grant all "$T/ro.kpa"
check_eq "a reachable path is bound" "$(run $RAPP -- cat "$T/data/sub/f")" "shared data"
chmod 700 "$T/data"
check_exit_output "once its directory is closed to the package, the start is refused, naming the path" 1 \
    "$RAPP: readOnlyPaths: read-only path $T/data/sub: the package's uid" run $RAPP -- cat "$T/data/sub/f"
chmod 755 "$T/data"
rm -rf "$T/data/sub" && "$PYTHON3" -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/data/sub"
check_exit_output "a path that became a socket is refused at start" 1 "read-only path $T/data/sub: it is a socket" \
    run $RAPP -- exit 0
rm -f "$T/data/sub" && mkdir "$T/data/sub" && echo "shared data" >"$T/data/sub/f" && chmod -R a+rX "$T/data"
check "--grant of a path checks it too" inst -q --revoke readOnlyPaths $RAPP
chmod 700 "$T/data"
check_exit_output "... (refused when the uid cannot reach it)" 1 "cannot search the directory $T/data" \
    inst --grant readOnlyPaths $RAPP
chmod 755 "$T/data"

# a grant record that someone else could write is no grant: as root, kpa
# refuses a store whose grants/ is not root's alone (as for users/)
chmod g+w "$R/grants"
check_exit_output "a group-writable grants/ makes root refuse the store" 1 \
    "store $R: grants/ is writable by its group" run $APP -- exit 0
chmod g-w "$R/grants"

# ---- a fresh session keyring, whatever the grants ----
KAPP=org.example.keyring$$
mk "$T/k.kpa" $KAPP 1 '{"allowKeyring":true}'
inst -q --grant allowKeyring "$T/k.kpa"
desc=kpa-test-secret-$$
check_eq "outside: the key is in the caller's session keyring" \
    "$(val keyring.find "$("$PROBE" keyring-exec $desc "$PROBE" keyring-find $desc)")" ok
check_eq "inside, with allowKeyring granted: the caller's key is not found" \
    "$(val keyring.find "$("$PROBE" keyring-exec $desc "$KPA_RUN" --root "$R" $KAPP -- keyring-find $desc)")" ENOKEY

# ---- kpa-execd applies the grant too ----
if [ -x "$EXECD" ]; then
    S="$T/execd.sock"
    "$EXECD" --foreground --on-exit stop --socket "$S" --root "$R" --state-dir "$T/state" </dev/null >/dev/null 2>>"$T/execd.log" &
    dpid=$!
    cleanup_add "kill $dpid 2>/dev/null; wait $dpid 2>/dev/null"
    for _ in $(seq 200); do
        KPA_EXECD_SOCKET=$S "$KPA_RUN" --list >/dev/null 2>&1 && break
        sleep 0.05
    done
    drun() { KPA_EXECD_SOCKET=$S "$KPA_RUN" "$@"; }
    NAPP=org.example.net$$
    mk "$T/n.kpa" $NAPP 1 '{"network":"host"}'
    inst -q --grant all "$T/n.kpa"
    inst -q --revoke network $NAPP
    tok=$(drun --detach $NAPP -- info)
    drun --wait "$tok" >/dev/null
    check_eq "kpa-execd: a request that is not granted is not applied" "$(val netifs "$(drun --logs "$tok")")" lo
    check_exit_output "kpa-execd: --network host without the grant is refused" 1 "the network permission is not granted" \
        drun --detach --network host $NAPP -- exit 0
    inst -q --grant network $NAPP
    tok=$(drun --detach $NAPP -- info)
    drun --wait "$tok" >/dev/null
    n=$(val netifs "$(drun --logs "$tok")")
    check "kpa-execd: once granted, it is applied" test -n "$n" -a "$n" != lo
else
    skip "kpa-execd applies the grant too" "kpa-execd is not built"
fi

done_testing
