#!/bin/bash
# oci-devices.sh: kpa-oci's device cgroup. A container that keeps CAP_MKNOD
# (containerd's default spec has it) can make a node of a host device
# (loop-control, c 10:237) but not open it (EPERM); /dev/null, zero, full,
# urandom, the linux.devices nodes and what a linux.resources.devices allow
# rule adds open; a deny rule there closes a default one, for an exec'd
# process too; the policy is the
# cgroup's devices.list (v1; on v2 a device program: the same open checks).
# Bad rules are refused naming their JSON path.
. "$(dirname "$0")/lib.sh"
need_root

KPA_OCI="$top_builddir/src/tools/kpa-oci"
[ -x "$KPA_OCI" ] || skip_all "kpa-oci not built"
BUSYBOX=/bin/busybox
if [ ! -x $BUSYBOX ] || ldd $BUSYBOX >/dev/null 2>&1; then
    skip_all "needs a static /bin/busybox (Debian package busybox-static)"
fi
grep -qw loop-control /proc/misc || skip_all "no loop-control device (c 10:237) in this kernel"

R="$T/state"
oci() { "$KPA_OCI" --root "$R" "$@"; }
B="$T/bundle"
mkdir -p "$B/rootfs/bin"
cp $BUSYBOX "$B/rootfs/bin/busybox"
for x in sh mknod true echo sleep; do
    ln -s busybox "$B/rootfs/bin/$x"
done
check "kpa-oci spec writes a config.json" oci spec -b "$B"
cp "$B/config.json" "$T/config.orig"
config() { # config KEY=JSON...: the original config.json with these keys set
    "$PYTHON3" - "$T/config.orig" "$B/config.json" "$@" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
for kv in sys.argv[3:]:
    key, val = kv.split("=", 1)
    o = c
    for p in key.split(".")[:-1]:
        o = o.setdefault(p, {})
    o[key.split(".")[-1]] = json.loads(val)
json.dump(c, open(sys.argv[2], "w"), indent=1)
EOF
}
started=()
cleanup_add 'for d in $(app_cgroups oci); do rmdir "$d" 2>/dev/null; done'
cleanup_add 'for c in "${started[@]}"; do oci delete --force "$c" >/dev/null 2>&1; done'

MKNOD='{"bounding":["CAP_MKNOD"],"effective":["CAP_MKNOD"],"permitted":["CAP_MKNOD"]}'
# probe NODE...: "NODE ok", or "NODE" and the error of opening it to read and write
PROBE='probe() { for n; do if e=$( { true <>"$n"; } 2>&1); then echo "$n ok"; else echo "$n ${e##*: }"; fi; done; }'
# container ids of this run: other tests (and other runs) use c1, d1...,
# and kpa.slice/oci is shared in the root cgroup
P="devtest$$"
run() { # run NAME SCRIPT [KEY=JSON...]: the container's output, one line
    local name=$1 script=$2
    shift 2
    config "process.args=[\"sh\",\"-c\",$("$PYTHON3" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$PROBE; $script")]" \
        "process.capabilities=$MKNOD" "$@"
    oci run -b "$B" "$P-$name" </dev/null 2>&1 | tr '\n' ' '
}

out=$(run d1 'mknod /dev/lc c 10 237 && echo made; probe /dev/lc /dev/null /dev/zero /dev/full /dev/urandom')
check_eq "CAP_MKNOD makes a host device's node, which does not open (EPERM); the defaults open" \
    "$out" "made /dev/lc Operation not permitted /dev/null ok /dev/zero ok /dev/full ok /dev/urandom ok "

out=$(run d2 'probe /dev/lc' 'linux.devices=[{"path":"/dev/lc","type":"c","major":10,"minor":237}]')
check_eq "a linux.devices node opens" "$out" "/dev/lc ok "

out=$(run d3 'mknod /dev/lc c 10 237; probe /dev/lc /dev/zero /dev/null' \
    'linux.resources={"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":237,"access":"rw"},{"allow":false,"type":"c","major":1,"minor":5}]}')
check_eq "linux.resources.devices: an allow rule opens a node, a deny rule closes a default one (after containerd's leading deny-all)" \
    "$out" "/dev/lc ok /dev/zero Operation not permitted /dev/null ok "

out=$(run d4 'mknod /dev/lc c 10 237; probe /dev/lc' \
    'linux.resources={"devices":[{"allow":true,"type":"c","major":10,"minor":237,"access":"r"}]}')
check_eq "an allow rule with access r does not allow read and write" "$out" "/dev/lc Operation not permitted "

out=$(run d5 'mknod /dev/b b 7 0 && echo made-block' \
    'linux.resources={"devices":[{"allow":false,"type":"b","access":"m"}]}')
check_eq "a deny rule with access m takes mknod away" "$out" "mknod: /dev/b: Operation not permitted "

# the policy, read from outside
config 'process.args=["sleep","1000"]' "process.capabilities=$MKNOD" \
    'linux.resources={"devices":[{"allow":true,"type":"c","major":10,"minor":237,"access":"rw"},{"allow":false,"type":"c","major":1,"minor":5}]}'
# the container inherits stdio: not a pipe that the check waits on
create() { oci create "$@" </dev/null >>"$T/create.out" 2>&1 || { tail -5 "$T/create.out"; return 1; }; }
check "create" create -b "$B" "$P-c1"
started+=("$P-c1")
pid=$(oci state "$P-c1" | "$PYTHON3" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
devgroup=$(awk -F: '$2 == "devices" {print $3}' "/proc/$pid/cgroup")
# which driver made the group (a systemd scope, or kpa's own kpa.slice/oci/ID)
echo "# the container's groups: $(tr '\n' ' ' <"/proc/$pid/cgroup")"
if [ -n "$devgroup" ] && [ -d /sys/fs/cgroup/devices ]; then
    check_eq "v1: the container's cgroup devices.list is the policy" \
        "$(tr '\n' ' ' </sys/fs/cgroup/devices"$devgroup"/devices.list)" \
        "c *:* m b *:* m c 1:3 rwm c 1:7 rwm c 1:8 rwm c 1:9 rwm c 5:0 rwm c 5:1 rwm c 5:2 rwm c 136:* rwm c 10:237 rw "
    check_eq "v1: the group is kpa.slice/oci/ID of the devices hierarchy" "${devgroup##*/kpa.slice/}" "oci/$P-c1"
elif command -v bpftool >/dev/null; then
    check_output "v2: a device program is attached to the container's group" device \
        bpftool cgroup show "/sys/fs/cgroup$(sed -n 's/^0:://p' "/proc/$pid/cgroup")"
else
    skip "v2: the attached device program" "no devices hierarchy, and no bpftool"
fi
check "start" oci start "$P-c1"
check_eq "exec: its process has the policy too (/dev/zero denied, /dev/null not)" \
    "$(oci exec "$P-c1" sh -c "$PROBE; probe /dev/zero /dev/null" 2>&1 | tr '\n' ' ')" \
    "/dev/zero Operation not permitted /dev/null ok "
check "delete --force removes the container and its groups" oci delete --force "$P-c1"
check_fails "no devices group is left" test -n "$devgroup" -a -d "/sys/fs/cgroup/devices$devgroup"

# ---- bad rules ----
bad() { # bad NAME RULE MESSAGE
    config 'process.args=["true"]' "linux.resources={\"devices\":$2}"
    check_exit_output "refused: $1" 1 "$3" oci run -b "$B" "$P-bad"
}
bad "a type" '[{"allow":true,"type":"x"}]' 'linux.resources.devices[0]: device rule: type'
bad "an access" '[{"allow":true,"type":"c","access":"rwx"}]' 'linux.resources.devices[0]: device rule: access "rwx" is not made of r, w and m'
bad "no allow" '[{"type":"c"}]' 'linux.resources.devices[0]: allow must be true or false'
bad "a major" '[{"allow":true,"type":"c","major":"1"}]' 'linux.resources.devices[0]: major must be a number'
bad "a rule that is no object" '["c 1:3 rwm"]' 'linux.resources.devices[0]: must be an object'
bad "rules that are no array" '{}' 'linux.resources.devices: must be an array'

done_testing
