#!/bin/bash
# The public instance plan (kpa/instance.h, issue 16): kpa-run --print-spec
# prints the plan of a start as versioned JSON and starts nothing; a plan
# made and adjusted through the public calls (tests/probe/start-spec) and
# started with kpa_process_start_spec has the effect seen from outside:
# /proc/PID/cmdline, environ and mountinfo, the cgroup file of a limit; so
# has an OCI bundle's plan (kpa_instance_spec_new_oci).
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
START_SPEC="$top_builddir/tests/probe/start-spec"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
[ -x "$START_SPEC" ] || skip_all "tests/probe/start-spec not built (make check builds it)"
R="$T/store"
APP=org.example.plan$$
$MKPKG "$T/plan.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=["info"]' \
    --set 'extensions={"KPA_limits":{"memory":"64M","pids":40}}'
"$KPA_INSTALL" --root "$R" -q "$T/plan.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }
uid=$(cat "$R/users/$APP")
cleanup_add 'for d in $(app_cgroups "$APP"); do find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; ; rmdir "$d" 2>/dev/null; done'
# the instances' cgroups (one name in every hierarchy)
instances() {
    local d
    for d in $(app_cgroups "$APP"); do find "$d" -mindepth 1 -maxdepth 1 -type d -printf '%f\n'; done |
        sort -u
}

# KEY of the JSON document on stdin, as Python prints it (json.dumps)
jq_() { python3 -c 'import json, sys
d = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    d = d[int(k)] if isinstance(d, list) else d[k]
print(json.dumps(d))' "$1"; }

# ---- kpa-run --print-spec ----
mkdir -p "$T/ro"
echo 11 >"$T/ro/file"
out=$("$KPA_RUN" --root "$R" --print-spec --memory 32M --env SPEC_TEST=1 --workdir /tmp \
    --bind-ro "$T/ro:/data" --handle log=fd:2 $APP -- extra 2>"$T/err")
check_eq "--print-spec exits 0 and prints nothing on stderr" "$?:$(cat "$T/err")" "0:"
check_eq "its first key is kpaInstanceSpecVersion" \
    "$(python3 -c 'import json, sys; print(next(iter(json.load(sys.stdin).items())))' <<<"$out")" \
    "('kpaInstanceSpecVersion', 1)"
check_eq "the keys, in their order" \
    "$(python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)))' <<<"$out")" \
    "kpaInstanceSpecVersion appId runConfig execPath argv env cwd user hostname namespaces rootfs mounts limits cgroupParent handles stdio tty seccomp capabilities noNewPrivileges startFifo"
check_eq "the package and run configuration" "$(jq_ appId <<<"$out") $(jq_ runConfig <<<"$out")" \
    "\"$APP\" \"main\""
check_eq "the program at /APP_ID" "$(jq_ execPath <<<"$out")" "\"/$APP/bin/hello\""
check_eq "argv: the manifest's args, then the extra ones" "$(jq_ argv <<<"$out")" \
    "[\"/$APP/bin/hello\", \"info\", \"extra\"]"
env=$(jq_ env <<<"$out")
check "env: --env applied" grep -qF '"SPEC_TEST=1"' <<<"$env"
check "env: the handle's LISTEN_FDNAMES" grep -qF '"LISTEN_FDNAMES=log"' <<<"$env"
check_eq "handles: log at fd 3" "$(jq_ handles <<<"$out")" '[{"name": "log", "fd": 3}]'
check_eq "the package's own uid" "$(jq_ user <<<"$out")" "{\"uid\": $uid, \"gid\": $uid}"
check_eq "cwd: --workdir" "$(jq_ cwd <<<"$out")" '"/tmp"'
check_eq "limits: --memory over KPA_limits, KPA_limits' pids" "$(jq_ limits <<<"$out")" \
    '{"memoryBytes": 33554432, "pids": 40, "cpuWeight": null}'
check_eq "network: a new namespace" "$(jq_ namespaces.network <<<"$out")" '"new"'
mounts=$(python3 -c 'import json, sys
for m in json.load(sys.stdin)["mounts"]:
    print(m["kind"], m["source"], m["target"], ",".join(m["flags"]))' <<<"$out")
check "mounts: /usr read-only" grep -qxF "bind-ro /usr /usr ro,nosuid,nodev,bind,rec" <<<"$mounts"
check "mounts: the package read-only at /APP_ID" \
    grep -qxF "bind-ro $R/apps/$APP /$APP ro,nosuid,nodev,bind,rec" <<<"$mounts"
check "mounts: its private storage read-write" grep -qE "^bind-rw $R/.* /storage nosuid,nodev,bind,rec\$" <<<"$mounts"
check_eq "mounts: --bind-ro last" "$(tail -1 <<<"$mounts")" "bind-ro $T/ro /data ro,nosuid,nodev,bind,rec"
check_eq "seccomp: kpa's filter, no relaxation" "$(jq_ seccomp <<<"$out")" \
    '{"filter": "kpa-default", "relaxations": []}'
check_eq "... no capability kept, no_new_privs" \
    "$(jq_ capabilities.permitted <<<"$out") $(jq_ noNewPrivileges <<<"$out")" "[] true"
# (no start of APP came before: a start would leave kpa.slice/APP behind)
check_eq "--print-spec started nothing: no cgroup of APP was made" "$(app_cgroups "$APP")" ""
out=$("$KPA_RUN" --root "$R" --print-spec --tty $APP)
check_eq "--tty: a terminal, no stdio" "$(jq_ tty.rows <<<"$out") $(jq_ stdio <<<"$out")" \
    "0 [null, null, null]"

check_exit_output "--print-spec of an unknown run configuration: exit 1, naming it" 1 \
    "has no run configuration \"nope\" (it has: main)" "$KPA_RUN" --root "$R" --print-spec $APP nope
check_exit_output "--print-spec of a package not installed: exit 1" 1 "org.example.absent" \
    "$KPA_RUN" --root "$R" --print-spec org.example.absent
check_exit_output "--print-spec with --detach: a usage error" 2 \
    "--print-spec does not go with --detach" "$KPA_RUN" --print-spec --detach $APP
check_exit_output "--print-spec with a bind not absolute: exit 1, naming it" 1 \
    "--bind-ro data:/data: both paths must be absolute" \
    "$KPA_RUN" --root "$R" --print-spec --bind-ro data:/data $APP

# ---- a plan adjusted through the public calls, started ----
# start_spec ARGS...: start-spec in the background, keeping its instance
# until its stdin (a FIFO, held open on fd 3) closes; waits until it has
# started the plan (and tried a second start), or ended; sets pid and spid
start_spec() {
    rm -f "$T/in" "$T/out"
    mkfifo "$T/in"
    "$START_SPEC" "$@" <"$T/in" >"$T/out" 2>"$T/start.err" &
    spid=$!
    exec 3>"$T/in"
    cleanup_add "exec 3>&-; kill $spid 2>/dev/null; wait $spid 2>/dev/null"
    for _ in $(seq 400); do
        grep -q '^again=' "$T/out" 2>/dev/null && break
        kill -0 $spid 2>/dev/null || break
        sleep 0.05
    done
    pid=$(sed -n 's/^pid=//p' "$T/out")
    [ -n "$pid" ] || sed 's/^/# /' "$T/start.err"
    # Running is reported when the exec closed the start pipe, a moment
    # before the kernel has set up the new image's argv: wait for it
    for _ in $(seq 200); do
        [ -z "$pid" ] || [ -n "$(head -c1 "/proc/$pid/cmdline" 2>/dev/null)" ] ||
            [ ! -d "/proc/$pid" ] && break
        sleep 0.01
    done
}
start_spec --env SPEC_TEST=2 --unset MODE --bind-ro "$T/ro:/data-ro" --pids 23 \
    --memory $((48 << 20)) --cwd /data-ro "$R" $APP -- spec-probe sleep 60
check "the adjusted plan started (start-spec printed the application's pid)" \
    test -n "$pid" -a -d "/proc/${pid:-none}"
check_eq "/proc/PID/cmdline: the argv set" "$(tr '\0' ' ' <"/proc/$pid/cmdline")" "spec-probe sleep 60 "
environ=$(tr '\0' '\n' <"/proc/$pid/environ")
check "/proc/PID/environ: the variable set" grep -qx "SPEC_TEST=2" <<<"$environ"
check_exit "/proc/PID/environ: the manifest's MODE unset" 1 grep -q '^MODE=' <<<"$environ"
check "/proc/PID/mountinfo: the bind added, read-only at /data-ro" \
    awk '$5 == "/data-ro" && $6 ~ /(^|,)ro(,|$)/ {found = 1} END {exit !found}' "/proc/$pid/mountinfo"
check_eq "its working directory: the one set" "$(readlink "/proc/$pid/cwd")" "/data-ro"
# the limit, in the cgroup file of the application's own cgroup
cg_file() { # cg_file V1_CONTROLLER V1_FILE V2_FILE
    local p
    p=$(sed -n "s/^[0-9]*:$1:\(.*\)/\1/p" "/proc/$pid/cgroup")
    if [ -n "$p" ] && [ "$p" != / ]; then
        cat "/sys/fs/cgroup/$1$p/$2"
    else
        p=$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
        cat "/sys/fs/cgroup$p/$3"
    fi
}
check_eq "one instance runs" "$(instances | wc -l)" 1
check_eq "pids.max: the limit set" "$(cg_file pids pids.max pids.max)" 23
check_eq "the memory limit set" "$(cg_file memory memory.limit_in_bytes memory.max)" $((48 << 20))
check "a second start of the same plan is refused (EALREADY)" \
    grep -qF "again=114 this plan of $APP was started already" "$T/out"
exec 3>&-
wait $spid
check_eq "start-spec stopped it and exited 0" "$?" 0
check "... a Normal stop" grep -qx "end=stopped by SIGTERM" "$T/out"
check_eq "... its cgroup removed" "$(instances | wc -l)" 0

# ---- an OCI bundle's plan, started the same way ----
if ldd "$PROBE" >/dev/null 2>&1; then
    skip "an OCI bundle's plan starts" "tests/probe/probe is not static"
else
    B="$T/bundle"
    mkdir -p "$B/rootfs/bin"
    cp "$PROBE" "$B/rootfs/bin/probe"
    "$top_builddir/src/tools/kpa-oci" spec -b "$B"
    "$PYTHON3" - "$B/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["args"] = ["/bin/probe", "sleep", "60"]
c["linux"]["resources"] = {"pids": {"limit": 17}}
json.dump(c, open(sys.argv[1], "w"))
EOF
    start_spec --oci spec-c1 "$R" "$B" -- oci-probe sleep 60
    # kpa.slice/oci is shared with other OCI starts: only this instance's group is ours
    token=$(sed -n 's/^token=//p' "$T/out")
    cleanup_add "for d in \$(app_cgroups oci); do [ -n '$token' ] && rmdir \"\$d/$token\" 2>/dev/null; done"
    check "an OCI bundle's plan, adjusted, started" test -n "$pid" -a -d "/proc/${pid:-none}"
    check_eq "... /proc/PID/cmdline: the argv set" "$(tr '\0' ' ' <"/proc/$pid/cmdline")" \
        "oci-probe sleep 60 "
    check_eq "... its root is the bundle's rootfs" "$(stat -c %d:%i "/proc/$pid/root/")" \
        "$(stat -c %d:%i "$B/rootfs")"
    check_eq "... pids.max: linux.resources.pids.limit" "$(cg_file pids pids.max pids.max)" 17
    exec 3>&-
    wait $spid
    check_eq "... start-spec stopped it and exited 0" "$?" 0
    check "... its cgroup (kpa.slice/oci/TOKEN) removed" \
        test -n "$token" -a -z "$(for d in $(app_cgroups oci); do [ -d "$d/$token" ] && echo "$d"; done)"
fi

# a refused adjustment: start-spec says why, and nothing starts
check_exit_output "a relative working directory is refused by the setter" 1 \
    'working directory "tmp" is not an absolute path' "$START_SPEC" --cwd tmp "$R" $APP </dev/null
check_exit_output "LISTEN_FDS cannot be set" 1 "LISTEN_FDS describes the plan's handles" \
    "$START_SPEC" --env LISTEN_FDS=3 "$R" $APP </dev/null
check_eq "... nothing was started" "$(instances | wc -l)" 0

# the package's storage image's loop device: detached by the purge
"$KPA_INSTALL" --root "$R" -q --remove --purge $APP
done_testing
