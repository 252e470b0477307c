#!/bin/bash
# oci-validation.sh: kpa-oci under the OCI runtime-tools validation suite:
# its validation programs and runtimetest at runtime-tools 0105384 (Debian
# 12's snapshot of the library), built offline with Debian's golang-go
# against golang-github-opencontainers-runtime-tools-dev.
#
# The suite's programs are not kpa's code and Debian ships only its library
# (no validation/, no cmd/runtimetest, no tap-go), so they are not in this
# tree: KPA_OCI_VALIDATION_SRC names a GOPATH-style directory that has
#   src/github.com/opencontainers/runtime-tools/{validation,cmd/runtimetest}
#   src/github.com/mndrix/tap-go
# (a checkout of runtime-tools at 0105384, and tap-go as it vendors it), and
# the go packages are installed with
#   apt-get install golang-go golang-github-opencontainers-runtime-tools-dev \
#       golang-github-google-uuid-dev
# Without them the test skips, saying which is missing.
#
# Each program drives kpa-oci (RUNTIME) through create/start/state/kill/
# delete on a bundle made from a static busybox, mostly with runtimetest
# checking the container from inside; each program is one TAP line here.
# A check that tests what kpa-oci does otherwise by design (kpa-oci(8),
# CONFORMANCE) or where the suite itself is wrong is a SKIP with the reason
# (a known gap would be a TODO); any other failure fails. A program whose
# config kpa-oci refuses as a whole is not run (SKIP, with the field). Then,
# from outside, what the suite cannot see here (the soft RLIMIT_NOFILE,
# which Go raises in runtimetest itself).
# Time on 2 busy cores: the build, once per build tree and source state
# (BUILD/tests/oci-validation.build, go's cache there), 40 s; the programs,
# three at a time (they mostly poll the state once a second), 25 s. So it
# runs in the plain tree only: it skips in the ASan and coverage trees of
# tests/gates.sh (the same kpa-oci, rebuilt) and when KPA_SKIP_SLOW is set.
. "$(dirname "$0")/lib.sh"
need_root

KPA_OCI="$top_builddir/src/tools/kpa-oci"
[ -x "$KPA_OCI" ] || skip_all "kpa-oci not built"
[ -z "${KPA_SKIP_SLOW:-}" ] || skip_all "KPA_SKIP_SLOW is set (the suite takes 25 s, its build 40 s)"
if grep -qE '^SANITIZER_CFLAGS = .*(-fsanitize|--coverage)' "$top_builddir/Makefile" 2>/dev/null; then
    skip_all "a sanitizer or coverage tree: the suite runs in the plain tree only (25 s, its build 40 s)"
fi
BUSYBOX=/bin/busybox
if [ ! -x $BUSYBOX ] || ldd $BUSYBOX >/dev/null 2>&1; then
    skip_all "needs a static /bin/busybox (Debian package busybox-static)"
fi
[ -n "${KPA_OCI_VALIDATION_SRC:-}" ] ||
    skip_all "KPA_OCI_VALIDATION_SRC is not set: the suite's programs are not in Debian (see this test's header)"
SRC=$(cd "$KPA_OCI_VALIDATION_SRC" 2>/dev/null && pwd) ||
    skip_all "KPA_OCI_VALIDATION_SRC ($KPA_OCI_VALIDATION_SRC) is not a directory"
RT=github.com/opencontainers/runtime-tools
VDIR="$SRC/src/$RT/validation"
if [ ! -d "$VDIR/util" ] || [ ! -d "$SRC/src/github.com/mndrix/tap-go" ]; then
    skip_all "KPA_OCI_VALIDATION_SRC ($SRC) has no src/$RT/validation or src/github.com/mndrix/tap-go"
fi
GO=$(command -v go) || skip_all "needs go (Debian package golang-go)"
GOCODE=/usr/share/gocode
[ -d $GOCODE/src/github.com/opencontainers/runtime-tools/generate ] ||
    skip_all "needs Debian's golang-github-opencontainers-runtime-tools-dev"
[ -d $GOCODE/src/github.com/google/uuid ] || skip_all "needs Debian's golang-github-google-uuid-dev"

# ---- what kpa-oci refuses by design: programs not run ----
# PROGRAM|REASON (their configs are refused at create, with the field named)
declare -A NOT_RUN
while IFS='|' read -r p reason; do
    [ -n "$p" ] && NOT_RUN[$p]=$reason
done <<'EOF'
config_updates_without_affect|its config sets linux.rootfsPropagation shared: refused (private only)
hooks|the suite's own bug: it expects "post-start1" where its hooks write "post-start1 called" (prestart, poststart, poststop run below)
linux_cgroups_blkio|linux.resources.blockIO: refused
linux_cgroups_relative_blkio|linux.resources.blockIO: refused
linux_cgroups_cpus|linux.resources.cpu quota, period, cpus, mems: refused (shares only)
linux_cgroups_relative_cpus|linux.resources.cpu quota, period, cpus, mems: refused (shares only)
linux_cgroups_hugetlb|linux.resources.hugepageLimits: refused
linux_cgroups_relative_hugetlb|linux.resources.hugepageLimits: refused
linux_cgroups_memory|linux.resources.memory kernel, kernelTCP, reservation, swappiness: refused
linux_cgroups_relative_memory|linux.resources.memory kernel, kernelTCP, reservation, swappiness: refused
linux_cgroups_network|linux.resources.network: refused
linux_cgroups_relative_network|linux.resources.network: refused
linux_mount_label|linux.mountLabel: refused (no SELinux)
linux_process_apparmor_profile|process.apparmorProfile: refused (no AppArmor)
linux_uid_mappings|linux.uidMappings and the user namespace: refused
linux_ns_itype|it lists the user namespace: refused
linux_ns_nopath|it lists the user namespace: refused
mounts|the mount options shared, slave, unbindable: refused (private only)
process_user|process.user.additionalGids: refused (kpa drops supplementary groups)
EOF
# a host whose bounding set lacks a capability (a container, as CI's): the
# program asks for every one, which kpa-oci cannot grant
bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
last=$(cat /proc/sys/kernel/cap_last_cap)
if [ "$((16#$bnd))" -ne "$(((1 << (last + 1)) - 1))" ]; then
    NOT_RUN[process_capabilities]="it asks for every capability, and this host's bounding set ($bnd) lacks some: kpa-oci refuses one it does not hold"
fi

# ---- single checks: PROGRAM|REGEX on "N - description"|SKIP or TODO|REASON ----
KNOWN=$(
    cat <<'EOF'
delete|^2 - attempting to `delete` a container that is not `stopped` MUST generate an error|SKIP|kpa-oci deletes a created container, as runc does (containerd's shim deletes one without --force)
delete|^3 - attempting to `delete` a container that is not `stopped` MUST have no effect|SKIP|kpa-oci deletes a created container, as runc does (containerd's shim deletes one without --force)
delete_resources|^2 - get pids cgroup data|SKIP|the container's cgroup is PARENT/kpa.slice/oci/ID, not linux.cgroupsPath itself (kpa-oci(8))
linux_cgroups_pids|^2 - get pids cgroup data|SKIP|the container's cgroup is PARENT/kpa.slice/oci/ID, not linux.cgroupsPath itself (kpa-oci(8))
linux_cgroups_relative_pids|^2 - get pids cgroup data|SKIP|the container's cgroup is kpa.slice/oci/ID below kpa-oci's own, not linux.cgroupsPath itself (kpa-oci(8))
linux_cgroups_devices|^2 - get devices data|SKIP|the container's cgroup is PARENT/kpa.slice/oci/ID, not linux.cgroupsPath itself (kpa-oci(8))
linux_cgroups_relative_devices|^2 - get devices data|SKIP|the container's cgroup is kpa.slice/oci/ID below kpa-oci's own, not linux.cgroupsPath itself (kpa-oci(8))
linux_ns_path|^2 - set mnt namespace by path|SKIP|joining a mount namespace: refused (kpa builds the container's root)
linux_rootfs_propagation|^[124] - exit status 1$|SKIP|linux.rootfsPropagation shared, slave, unbindable: refused (private only)
misc_props|^1 - .*unknown annotation key|SKIP|the suite's bug: its config runs /runtimetest, which it does not put in the bundle; kpa-oci, as runc, refuses a missing program at create
process_rlimits|^13 - has expected soft RLIMIT_NOFILE$|SKIP|runtimetest, built with Go >= 1.19, raises its own soft RLIMIT_NOFILE to the hard limit at start-up; checked from /proc below
killsig|^[123] - `kill` operation MUST send the specified signal to the container process$|SKIP|the suite's race: it signals a shell some milliseconds after start, which may not have set its trap yet (kpa-oci's start returns once the process has executed: oci-runtime.sh)
pidfile|^1 - create with '--pid-file' option works$|SKIP|the suite's race: its process is `true`, which may have ended before its `kill`, which must then fail (runtime-spec: kill of a stopped container is an error)
poststart|^error: The post-start hooks MUST be called after the user-specified process is executed$|SKIP|the suite's race: kpa-oci runs the hook once the process has executed (oci-runtime.sh checks it), then which of the two shells writes its line first is the scheduler's
prestart|^error: Pre-start hooks MUST be called after the `start` operation is called|SKIP|kpa-oci runs prestart hooks at create, as runtime-spec 1.1 and runc do (this suite follows 1.0.2)
start|^7 - exit status 1$|SKIP|a config without process is refused at create, as runc does, not at start
EOF
)

W="$T/work"
OUT="$top_builddir/tests/oci-validation.build"
mkdir -p "$W" "$T/tmp" "$OUT"

# ---- build (once per build tree and source state) ----
progs=()
for d in "$VDIR"/*/; do
    p=$(basename "$d")
    [ "$p" != util ] && [ -z "${NOT_RUN[$p]:-}" ] && progs+=("$p")
done
stamp=$( (
    "$GO" version
    echo "${progs[*]}"
    cd "$SRC" && find . -name '*.go' | LC_ALL=C sort | xargs sha256sum
) | sha256sum)
t0=$SECONDS
if [ "$(cat "$OUT/stamp" 2>/dev/null)" != "$stamp" ]; then
    rm -f "$OUT/stamp"
    pkgs=("$RT/cmd/runtimetest")
    for p in "${progs[@]}"; do pkgs+=("$RT/validation/$p"); done
    if ! (cd "$SRC" && env GO111MODULE=off GOPATH="$SRC:$GOCODE" GOCACHE="$OUT/cache" \
        GOENV=off GOFLAGS= CGO_ENABLED=0 TMPDIR="$T/tmp" \
        "$GO" build -trimpath -ldflags='-s -w' -o "$OUT/bin/" "${pkgs[@]}") >"$T/build.log" 2>&1; then
        _result 1 "the validation programs build"
        sed 's/^/#   /' "$T/build.log" | head -30
        done_testing
        exit 1
    fi
    echo "$stamp" >"$OUT/stamp"
    echo "# built runtimetest and ${#progs[@]} validation programs in $((SECONDS - t0)) s"
fi

# ---- the bundle's root, as the suite's rootfs-amd64.tar.gz ----
mkdir -p "$W/rootfs/bin" "$W/rootfs/dev" "$W/rootfs/proc" "$W/rootfs/sys" "$W/rootfs/etc"
cp $BUSYBOX "$W/rootfs/bin/busybox"
for x in $($BUSYBOX --list); do
    [ -e "$W/rootfs/bin/$x" ] || ln -s busybox "$W/rootfs/bin/$x"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$W/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$W/rootfs/etc/group"
tar -czf "$W/rootfs-$(GOENV=off "$GO" env GOARCH).tar.gz" -C "$W/rootfs" .
cp "$OUT/bin/runtimetest" "$W/runtimetest"
# kpa-oci with a state directory of this test's own
cat >"$W/kpa-oci" <<EOF
#!/bin/sh
exec "$KPA_OCI" --root "$T/state" "\$@"
EOF
chmod +x "$W/kpa-oci"
cleanup_add 'for d in "$T"/state/*/; do [ -d "$d" ] && "$KPA_OCI" --root "$T/state" delete --force "$(basename "$d")" >/dev/null 2>&1; done'
# the groups kpa.slice/oci that kpa keeps for the next start, where empty
cleanup_add 'for d in $(app_cgroups oci); do rmdir "$d" 2>/dev/null; done'

# known P LINE: the kind and reason of a known deviation of program P at
# LINE ("N - description"); fails when there is none
known() {
    local p q kind reason
    while IFS='|' read -r p q kind reason; do
        if [ "$p" = "$1" ] && [[ "$2" =~ $q ]]; then
            echo "$kind|$reason"
            return 0
        fi
    done <<<"$KNOWN"
    return 1
}

# ---- run: three at a time (they mostly wait, polling the state each second);
# those that race a shell in the container against kpa-oci's next step, alone
# at the end ----
RACY=" killsig pidfile poststart "
run_one() {
    local s=$SECONDS
    (cd "$W" && RUNTIME="$W/kpa-oci" TMPDIR="$T/tmp" timeout -k 5 180 "$OUT/bin/$1") \
        >"$T/$1.tap" 2>"$T/$1.err"
    echo "$? $((SECONDS - s))" >"$T/$1.rc"
}
t0=$SECONDS
for p in "${progs[@]}"; do
    [[ $RACY == *" $p "* ]] && continue
    while [ "$(jobs -rp | wc -l)" -ge 3 ]; do wait -n; done
    run_one "$p" &
done
wait
for p in $RACY; do
    [ -z "${NOT_RUN[$p]:-}" ] && run_one "$p"
done
n_ok=0
for p in "${progs[@]}"; do
    read -r rc secs <"$T/$p.rc"
    passed=$(grep -cE '^ok [0-9]+' "$T/$p.tap")
    skipped=$(grep -cE '^ok [0-9]+.*# SKIP' "$T/$p.tap")
    bad=()
    # failed checks; and the programs that only report an error (the hook
    # programs: a plan of 1..0, and a YAML "error" when they fail)
    lines=$(sed -nE 's/^not ok ([0-9]+)( - )?(.*)/\1 - \3/p' "$T/$p.tap")
    if grep -qx '1\.\.0' "$T/$p.tap"; then
        lines+=$(sed -nE 's/^ *"error": "([^"\\]+).*/error: \1/p' "$T/$p.tap")
    fi
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        if k=$(known "$p" "$line"); then
            _tap_n=$((_tap_n + 1))
            if [ "${k%%|*}" = TODO ]; then
                echo "not ok $_tap_n - $p: $line # TODO ${k#*|}"
            else
                echo "ok $_tap_n - $p: $line # SKIP ${k#*|}"
            fi
        else
            bad+=("$line")
        fi
    done <<<"$lines"
    [ "$rc" -eq 0 ] || bad+=("exit status $rc")
    # a program must say something, except those that fail on purpose
    # (*_fail) and say nothing when the runtime refused as it should
    [[ $p == *_fail ]] || grep -qE '^1\.\.[0-9]+' "$T/$p.tap" || bad+=("no TAP plan")
    # the hook programs warn on stderr when a hook was not called
    grep -q '^WARNING' "$T/$p.err" && bad+=("$(grep -m1 '^WARNING' "$T/$p.err")")
    if [ ${#bad[@]} -eq 0 ]; then
        _result 0 "$p ($passed passed, $skipped of them skipped by the suite; $secs s)"
        n_ok=$((n_ok + 1))
    else
        _result 1 "$p"
        printf '#   %s\n' "${bad[@]}" | head -20
        sed 's/^/#   stderr: /' "$T/$p.err" | head -10
    fi
done
for p in $(printf '%s\n' "${!NOT_RUN[@]}" | LC_ALL=C sort); do
    skip "$p" "${NOT_RUN[$p]}"
done
echo "# ${#progs[@]} programs run in $((SECONDS - t0)) s, $n_ok passed; ${#NOT_RUN[@]} not run"

# ---- from outside: what runtimetest cannot see ----
# process.rlimits: the soft limit the container's process has (runtimetest
# reads its own after Go raised it)
B="$T/bundle"
mkdir -p "$B"
tar -xzf "$W"/rootfs-*.tar.gz -C "$B"
"$KPA_OCI" spec --bundle "$B" >/dev/null
"$PYTHON3" - "$B/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["root"] = {"path": "."}
c["process"]["args"] = ["sleep", "60"]
c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 4000, "soft": 3000}]
json.dump(c, open(sys.argv[1], "w"))
EOF
"$W/kpa-oci" create --bundle "$B" limits </dev/null >/dev/null 2>"$T/create.err"
"$W/kpa-oci" start limits 2>>"$T/create.err"
init=$("$W/kpa-oci" state limits 2>/dev/null | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
app=
for _ in $(seq 200); do # the init starts the process once start released it
    app=$(cat "/proc/$init/task/$init/children" 2>/dev/null) && [ -n "$app" ] && break
    sleep 0.05
done
got=$(awk '/^Max open files/ {print $4, $5}' "/proc/${app// /}/limits" 2>/dev/null)
check_eq "process.rlimits: the process's soft and hard RLIMIT_NOFILE (/proc/PID/limits)" "$got" "3000 4000"
[ "$got" = "3000 4000" ] || sed 's/^/#   /' "$T/create.err"
"$W/kpa-oci" delete --force limits >/dev/null 2>&1

done_testing
