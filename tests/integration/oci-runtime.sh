#!/bin/bash
# oci-runtime.sh: kpa-oci, the OCI runtime. A bundle made of a static
# busybox and a config.json (kpa-oci spec, then edited) goes through
# create/state/start/exec/kill/delete and run; the effects are read from outside:
# the state JSON, the init waiting before start, /proc/PID/ns, the cgroup
# files of the memory and pids limits, a joined network namespace (ip netns),
# the masked and read-only paths, a terminal through --console-socket, the
# hooks' stdin, the capabilities kept as process.capabilities asks
# (/proc/PID/status of the application, a uid 1000 binding port 80 with an
# ambient CAP_NET_BIND_SERVICE). Refused fields name their
# JSON path. Then the real engines, each skipped with its reason when
# missing: podman (--runtime kpa-oci, storage in $T) with --network none and
# with its default network, ps/inspect/exec/stop, -t; containerd (started here with
# its own root, state and socket, killed by pid) driven by ctr with
# --runc-binary kpa-oci.
# This host's rlimits: podman's defaults (nofile and nproc 1048576) exceed
# the hard limits root may set here (no CAP_SYS_RESOURCE in the bounding
# set), so the podman runs pass --ulimit nofile=1024:1024 --ulimit
# nproc=1024:1024. podman's default seccomp profile is the container's
# filter (kpa-oci builds it with libseccomp).
. "$(dirname "$0")/lib.sh"
# no_new_privs that this test inherited (under bwrap, as in tests/fresh-root.sh)
# cannot be cleared below it: "off" checks then expect it on
NNP=$(awk '/^NoNewPrivs:/ {print $2}' /proc/self/status)
need_root

KPA_OCI="$top_builddir/src/tools/kpa-oci"
[ -x "$KPA_OCI" ] || skip_all "kpa-oci not built"
BUSYBOX=/bin/busybox
if [ ! -x $BUSYBOX ] || ldd $BUSYBOX >/dev/null 2>&1; then
    skip_all "needs a static /bin/busybox (Debian package busybox-static)"
fi

R="$T/state"
oci() { "$KPA_OCI" --root "$R" "$@"; }
B="$T/bundle"
mkdir -p "$B/rootfs/bin"
cp $BUSYBOX "$B/rootfs/bin/busybox"
for x in sh ls cat sleep echo true id pwd touch ip readlink grep hostname mkdir nc; do
    ln -s busybox "$B/rootfs/bin/$x"
done
check "kpa-oci spec writes a config.json" oci spec -b "$B"
cp "$B/config.json" "$T/config.orig"
# edit KEY=JSON... into the bundle's config.json, from the original
config() {
    "$PYTHON3" - "$T/config.orig" "$B/config.json" "$@" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
for kv in sys.argv[3:]:
    key, val = kv.split("=", 1)
    parts = key.split(".")
    o = c
    for p in parts[:-1]:
        o = o.setdefault(p, {})
    if val == "DELETE":
        o.pop(parts[-1], None)
    else:
        o[parts[-1]] = json.loads(val)
json.dump(c, open(sys.argv[2], "w"), indent=1)
EOF
}
field() { "$PYTHON3" -c 'import json,sys; v=json.load(sys.stdin); print(v.get(sys.argv[1], ""))' "$1"; }
wait_for() { # wait_for SECONDS CMD...: poll until CMD succeeds
    local end=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt "$end" ] || return 1
        sleep 0.05
    done
}
# create: the container inherits the caller's stdio (as with runc), so
# that its output never goes to a pipe that a check waits on
create() { oci create "$@" </dev/null >>"$T/create.out" 2>&1 || { tail -5 "$T/create.out"; return 1; }; }
started=()
# the groups kpa.slice/oci that kpa keeps for the next start, where empty
cleanup_add 'for d in $(app_cgroups oci); do rmdir "$d" 2>/dev/null; done'
cleanup_add 'for c in "${started[@]}"; do oci delete --force "$c" >/dev/null 2>&1; done'

# ---- run ----
config 'process.args=["sh","-c","echo hello from $(hostname); exit 3"]'
out=$(oci run -b "$B" r1 2>&1)
rc=$?
check_eq "run prints the application's output" "$out" "hello from kpa-oci"
check_eq "run exits with the application's status" "$rc" 3
check_fails "run leaves no state behind" test -e "$R/r1"

config 'process.args=["sh","-c","pwd; id -u; id -g; echo $FOO; touch /x 2>/dev/null || echo ro-root; cat /proc/timer_list | wc -c; echo 1 2>/dev/null >/proc/sys/kernel/shmmax || echo ro-sys"]' \
    'process.cwd="/tmp"' 'process.user={"uid":1000,"gid":1000}' \
    'process.env=["PATH=/bin","FOO=bar"]'
out=$(oci run -b "$B" r2 2>&1)
check_eq "process.cwd, user, env; a read-only root; a masked /proc/timer_list; a read-only /proc/sys" \
    "$(tr '\n' ' ' <<<"$out")" "/tmp 1000 1000 bar ro-root 0 ro-sys "
config 'process.args=["pwd"]' 'process.cwd="/made/here"'
check_eq "a missing process.cwd is made, as runc does" "$(oci run -b "$B" r3 2>/dev/null)" /made/here
mkdir -m 700 "$B/rootfs/root"
config 'process.args=["pwd"]' 'process.cwd="/root"' 'process.user={"uid":1000,"gid":1000}'
check_exit_output "a process that fails after start says why, on the container's stderr" 127 \
    "the container's process: change to the working directory: Permission denied" oci run -b "$B" r4

# ---- create, state, start, kill, delete ----
config 'process.args=["sleep","1000"]' \
    'linux.resources={"memory":{"limit":67108864},"pids":{"limit":42}}' \
    'annotations={"org.example.note":"kept"}'
check "create" create -b "$B" --pid-file "$T/c1.pid" c1
started+=(c1)
st=$(oci state c1)
pid=$(field pid <<<"$st")
check_eq "state: status created" "$(field status <<<"$st")" created
check_eq "state: id" "$(field id <<<"$st")" c1
check_eq "state: ociVersion" "$(field ociVersion <<<"$st")" 1.0.2
check_eq "state: bundle" "$(field bundle <<<"$st")" "$B"
check_eq "state: annotations" "$(field annotations <<<"$st")" "{'org.example.note': 'kept'}"
check_eq "state: pid is the --pid-file's" "$pid" "$(cat "$T/c1.pid")"
check_eq "created: the init waits, the application has not started" \
    "$(cat /proc/"$pid"/task/*/children 2>/dev/null | wc -w)" 0
for ns in pid mnt ipc uts net cgroup; do
    check "created: a new $ns namespace" test "$(readlink /proc/"$pid"/ns/$ns)" != "$(readlink /proc/self/ns/$ns)"
done
cgfile() { # cgfile PID CONTROLLER FILE...: the first of FILE... in PID's group
    local path mnt f
    while IFS=: read -r _ ctrl path; do
        case ",$ctrl," in
        *,"$2",*) mnt=/sys/fs/cgroup/$2 ;;
        ,,) mnt=/sys/fs/cgroup; [ -d /sys/fs/cgroup/unified ] && mnt=/sys/fs/cgroup/unified ;;
        *) continue ;;
        esac
        for f in "${@:3}"; do
            [ -e "$mnt$path/$f" ] && { echo "$mnt$path/$f"; return 0; }
        done
    done <"/proc/$1/cgroup"
    return 1
}
memfile=$(cgfile "$pid" memory memory.max memory.limit_in_bytes)
check_eq "linux.resources.memory.limit: the cgroup's memory limit" "$(cat "$memfile")" 67108864
pidsfile=$(cgfile "$pid" pids pids.max)
check_eq "linux.resources.pids.limit: the cgroup's pids.max" "$(cat "$pidsfile")" 42
check_output "kill of an unknown signal" "unknown" oci kill c1 SIGNOPE
check "start" oci start c1
# at once, with no wait: start returns once the process has executed, so
# that a kill or a poststart hook that follows finds it
check_eq "start returns once the process has executed (the init's child is sleep)" \
    "$(cat "/proc/$(awk '{print $1}' /proc/"$pid"/task/"$pid"/children)/comm" 2>/dev/null)" sleep
check_eq "state: running" "$(oci state c1 | field status)" running
check "started: the application runs under the init" \
    wait_for 10 grep -qx sleep "/proc/$(awk '{print $1}' /proc/"$pid"/task/"$pid"/children)/comm"
check_output "a second start is refused" "not created" oci start c1
out=$(oci exec c1 sh -c 'for n in pid mnt net; do readlink /proc/self/ns/$n; done; grep CapEff /proc/self/status; exit 5' 2>/dev/null)
check_eq "exec: its exit status" "$?" 5
check_eq "exec: in the container's pid, mount and network namespaces, no capabilities" \
    "$(tr '\n\t' '  ' <<<"$out")" "$(readlink /proc/"$pid"/ns/pid /proc/"$pid"/ns/mnt /proc/"$pid"/ns/net | tr '\n' ' ')CapEff: 0000000000000000 "
check_eq "exec in the container's cgroup" "$(oci exec c1 cat /proc/self/cgroup 2>/dev/null | grep -c ':/$')" \
    "$(grep -c . /proc/"$pid"/cgroup)"
out=$(oci exec -u 1000:1000 --cwd /tmp -e X=1 c1 sh -c 'pwd; id; echo $X' 2>/dev/null)
check_eq "exec --user, --cwd, --env" "$(tr '\n' ' ' <<<"$out")" "/tmp uid=1000 gid=1000 1 "
echo '{"args":["sh","-c","echo from --process"],"cwd":"/","env":["PATH=/bin"]}' >"$T/process.json"
check_eq "exec --process" "$(oci exec --process "$T/process.json" c1 2>/dev/null)" "from --process"
echo '{"args":["true"],"cwd":"/","env":["PATH=/bin"],"x-extra":1}' >"$T/process-x.json"
check_exit_output "exec --process: a key the specification lacks is ignored, with a warning" 0 \
    "warning: config.json: process.x-extra: not in the runtime specification" \
    oci exec --process "$T/process-x.json" c1
echo '{"args":["sh","-c","grep -E \"^(CapEff|CapBnd|NoNewPrivs)\" /proc/self/status"],"cwd":"/","env":["PATH=/bin"],
 "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],"permitted":["CAP_KILL"]}}' >"$T/process-caps.json"
check_eq "exec --process: the process object's capabilities, no no_new_privs unasked" \
    "$(oci exec --process "$T/process-caps.json" c1 2>/dev/null | tr -s '\t\n' '  ')" \
    "CapEff: 0000000000000020 CapBnd: 0000000000000020 NoNewPrivs: ${NNP:-0} "
check_eq "exec --no-new-privs" \
    "$(oci exec --no-new-privs --process "$T/process-caps.json" c1 2>/dev/null | grep NoNewPrivs | tr -s '\t' ' ')" \
    "NoNewPrivs: 1"
exec_d() { oci exec -d "$@" </dev/null >/dev/null 2>&1; } # its stdio, as create's
check "exec -d --pid-file" exec_d --pid-file "$T/exec.pid" c1 sleep 1000
check_eq "the detached process is in the container's pid namespace" \
    "$(readlink /proc/"$(cat "$T/exec.pid")"/ns/pid)" "$(readlink /proc/"$pid"/ns/pid)"
check_output "exec of a program missing in the container" 'process.args[0]: "nosuch": no such executable' \
    oci exec c1 nosuch
check_output "delete of a running container is refused" "delete --force" oci delete c1
check "kill TERM" oci kill c1 TERM
check "stopped after the signal" wait_for 10 sh -c "'$KPA_OCI' --root '$R' state c1 | grep -q '\"stopped\"'"
check_eq "stopped: pid 0 in the state" "$(oci state c1 | field pid)" 0
cgdir=$(dirname "$pidsfile")
check "delete" oci delete c1
check_fails "delete removes the cgroup" test -d "$cgdir"
check_output "state of a deleted container" "does not exist" oci state c1

# a relative linux.cgroupsPath: kpa's own place, below kpa-oci's cgroup
config 'process.args=["sleep","1000"]' 'linux.cgroupsPath="some/relative/group"'
check "create with a relative linux.cgroupsPath" create -b "$B" rel
started+=(rel)
check "its cgroup is kpa.slice/oci/ID, not the path" \
    grep -qE ':(/.*)?/kpa\.slice/oci/rel$' "/proc/$(oci state rel | field pid)/cgroup"
oci delete --force rel >/dev/null 2>&1
config 'process.args=["sleep","1000"]' 'linux.cgroupsPath="system.slice:kpa:rel"'
check_output "a systemd slice:prefix:name linux.cgroupsPath" "needs --systemd-cgroup" \
    oci create -b "$B" bad
config 'process.args=["sleep","1000"]'
check "create another" create -b "$B" c2
started+=(c2)
check "delete --force of a created container" oci delete --force c2
check_output "it is gone" "does not exist" oci state c2

# ---- a joined network namespace (CNI's way) ----
NS=kpa-oci-test$$
if ip netns add $NS 2>/dev/null; then
    cleanup_add "ip netns del $NS"
    config 'process.args=["sleep","1000"]' \
        "linux.namespaces=[{\"type\":\"pid\"},{\"type\":\"network\",\"path\":\"/run/netns/$NS\"},{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"mount\"}]" \
        'linux.sysctl={"net.ipv4.ping_group_range":"0 0"}'
    check "create with linux.namespaces network path" create -b "$B" n1
    started+=(n1)
    pid=$(oci state n1 | field pid)
    check_eq "the init is in the named netns" "$(stat -L -c %i /proc/"$pid"/ns/net)" \
        "$(stat -L -c %i /run/netns/$NS)"
    check_eq "linux.sysctl is written in the container's netns" \
        "$(ip netns exec $NS cat /proc/sys/net/ipv4/ping_group_range | tr -s '\t ' ' ')" "0 0"
    check "delete --force" oci delete --force n1
else
    skip "a joined network namespace" "ip netns add failed"
fi

# ---- a pod: a second container joins the first one's network, IPC and UTS ----
config 'process.args=["sleep","1000"]' 'hostname="kpa-pod"'
check "create the pod's first container" create -b "$B" p1
started+=(p1)
ppid=$(oci state p1 | field pid)
config 'process.args=["sleep","1000"]' \
    "linux.namespaces=[{\"type\":\"pid\"},{\"type\":\"network\",\"path\":\"/proc/$ppid/ns/net\"},{\"type\":\"ipc\",\"path\":\"/proc/$ppid/ns/ipc\"},{\"type\":\"uts\",\"path\":\"/proc/$ppid/ns/uts\"},{\"type\":\"mount\"}]" \
    'hostname=DELETE'
check "create a second container in its namespaces" create -b "$B" p2
started+=(p2)
pid=$(oci state p2 | field pid)
for ns in net ipc uts; do
    check_eq "the second container shares the first one's $ns namespace" \
        "$(readlink /proc/"$pid"/ns/$ns)" "$(readlink /proc/"$ppid"/ns/$ns)"
done
check "but has a pid namespace of its own" test "$(readlink /proc/"$pid"/ns/pid)" != "$(readlink /proc/"$ppid"/ns/pid)"
check_eq "a joined UTS namespace keeps its hostname" "$(nsenter -t "$pid" -u hostname)" kpa-pod
# a pod with shareProcessNamespace: a third container joins the first one's
# PID namespace; a signal reaches its own process, not the pod's others
check "start the first container" oci start p1
config 'process.args=["sh","-c","trap \"exit 7\" TERM; sleep 1000 & wait"]' \
    "linux.namespaces=[{\"type\":\"pid\",\"path\":\"/proc/$ppid/ns/pid\"},{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"mount\"}]"
check "create a container in the first one's PID namespace" create -b "$B" p3
started+=(p3)
check "start" oci start p3
p3pid=$(oci state p3 | field pid)
check_eq "it is in that PID namespace" "$(readlink /proc/"$p3pid"/ns/pid 2>&1)" "$(readlink /proc/"$ppid"/ns/pid)"
check_eq "it sees the pod's processes: both containers' inits in its /proc" \
    "$(oci exec p3 sh -c 'cat /proc/[0-9]*/comm' 2>/dev/null | grep -c kpa-init)" 2
check "kill TERM" oci kill p3 TERM
check "ends it" wait_for 10 sh -c "'$KPA_OCI' --root '$R' state p3 | grep -q '\"stopped\"'"
check_eq "and not the pod's other container" "$(oci state p1 | field status)" running
check "delete all three" sh -c "'$KPA_OCI' --root '$R' delete --force p3 && '$KPA_OCI' --root '$R' delete --force p2 && '$KPA_OCI' --root '$R' delete --force p1"

# ---- linux.seccomp: the config's filter instead of kpa's ----
config 'process.args=["sh","-c","mkdir /tmp/a 2>&1; echo $?; grep Seccomp: /proc/self/status"]' \
    'linux.seccomp={"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}'
# (a coverage build's init, a fork of kpa-oci, says on stderr that it cannot
# write its counters from inside the container: those lines are not the
# application's)
out=$(oci run -b "$B" s1 2>&1 | grep -v '^profiling:')
check_eq "linux.seccomp: mkdir fails with the profile's errno (EACCES)" "$(tr '\n' ' ' <<<"$out" | tr -s '\t' ' ')" \
    "mkdir: can't create directory '/tmp/a': Permission denied 1 Seccomp: 2 "

# ---- process.capabilities and noNewPrivileges: kept as asked, read from
# outside in /proc/PID/status of the container's application ----
app_of() { awk '{print $1}' "/proc/$1/task/$1/children" 2>/dev/null; } # app_of INIT_PID
app_is() { # app_is INIT_PID COMM: its application runs COMM
    local a
    a=$(app_of "$1") && [ -n "$a" ] && grep -qx "$2" "/proc/$a/comm"
}
capsof() { # capsof PID: its five sets and NoNewPrivs, on one line
    grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' "/proc/$1/status" | tr -s '\t' ' ' | tr '\n' ' '
}
capmask() { # capmask CAP_NAME...: the set as /proc/PID/status shows it
    "$PYTHON3" - "$@" <<'EOF2'
import re, sys
bits = {m[0]: int(m[1]) for m in re.findall(r"#define (CAP_[A-Z_]+)\s+(\d+)\s*$",
        open("/usr/include/linux/capability.h").read(), re.M)}
print("%016x" % sum(1 << bits[n] for n in sys.argv[1:]))
EOF2
}
two='["CAP_NET_BIND_SERVICE","CAP_CHOWN"]'
config 'process.args=["sleep","1000"]' 'process.noNewPrivileges=true' \
    "process.capabilities={\"bounding\":$two,\"effective\":$two,\"permitted\":$two,\"inheritable\":$two,\"ambient\":$two}"
check "create with CAP_NET_BIND_SERVICE and CAP_CHOWN kept" create -b "$B" k1
started+=(k1)
pid=$(oci state k1 | field pid)
check "start" oci start k1
check "the application runs" wait_for 10 app_is "$pid" sleep
m=$(capmask CAP_NET_BIND_SERVICE CAP_CHOWN)
check_eq "every set holds exactly the two kept capabilities; noNewPrivileges true: no_new_privs" \
    "$(capsof "$(app_of "$pid")")" \
    "CapInh: $m CapPrm: $m CapEff: $m CapBnd: $m CapAmb: $m NoNewPrivs: 1 "
check "delete --force" oci delete --force k1
bind='"CAP_NET_BIND_SERVICE"'
config 'process.args=["nc","-l","-p","80"]' 'process.user={"uid":1000,"gid":1000}' \
    'process.noNewPrivileges=DELETE' "process.capabilities={\"bounding\":[$bind],\"permitted\":[$bind],\"inheritable\":[$bind],\"ambient\":[$bind]}"
check "create: uid 1000 with an ambient CAP_NET_BIND_SERVICE" create -b "$B" k2
started+=(k2)
pid=$(oci state k2 | field pid)
check "start" oci start k2
check "uid 1000 listens on port 80 in the container's network namespace" \
    wait_for 10 grep -qE '^ *[0-9]+: 0+:0050 0+:0000 0A' "/proc/$pid/net/tcp" "/proc/$pid/net/tcp6"
m=$(capmask CAP_NET_BIND_SERVICE)
app=$(app_of "$pid")
check_eq "its sets after exec: the ambient capability; no noNewPrivileges: no_new_privs off" \
    "$(capsof "$app")" "CapInh: $m CapPrm: $m CapEff: $m CapBnd: $m CapAmb: $m NoNewPrivs: ${NNP:-0} "
check_eq "as uid 1000" "$(awk '/^Uid:/ {print $2 $3 $4 $5}' "/proc/$app/status")" 1000100010001000
check "delete --force" oci delete --force k2
config 'process.args=["nc","-l","-p","80"]' 'process.user={"uid":1000,"gid":1000}'
check_output "without it, uid 1000 cannot bind port 80" "Permission denied" oci run -b "$B" k3
config 'process.args=["sh","-c","grep -E \"^(CapEff|CapBnd|NoNewPrivs)\" /proc/self/status | tr -s \"\\t\" \" \" | tr \"\\n\" \" \""]' \
    'process.noNewPrivileges=false'
check_eq "no process.capabilities: no capability kept; noNewPrivileges false: no_new_privs off" \
    "$(oci run -b "$B" k4 2>&1)" "CapEff: 0000000000000000 CapBnd: 0000000000000000 NoNewPrivs: ${NNP:-0} "

# ---- process.terminal: a pty of the container's devpts, its master sent to
# --console-socket (runc's protocol), read here by a small receiver ----
cat >"$T/console.py" <<'EOF'
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(1)
c, _ = s.accept()
msg, anc, flags, addr = c.recvmsg(64, socket.CMSG_LEN(4))
fds = array.array("i")
for level, kind, data in anc:
    fds.frombytes(data[:4])
out = b""
while True:
    try:
        d = os.read(fds[0], 4096)
    except OSError:
        break
    if not d:
        break
    out += d
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
EOF
config 'process.terminal=true' 'process.consoleSize={"height":33,"width":99}' \
    'process.args=["sh","-c","tty; test -t 0 && echo isatty; stty size"]'
"$PYTHON3" "$T/console.py" "$T/console.sock" >"$T/console.out" &
cpid=$!
cleanup_add "kill $cpid 2>/dev/null"
wait_for 10 test -S "$T/console.sock"
check "create with --console-socket" create -b "$B" --console-socket "$T/console.sock" t1
started+=(t1)
check "start" oci start t1
wait $cpid
check_eq "the process has the pty as its terminal, of consoleSize" "$(tr '\n' ' ' <"$T/console.out")" \
    "/dev/pts/0 isatty 33 99 "
check "delete" oci delete --force t1
# exec -t: a pty of the running container's devpts, its master sent the same way
config 'process.args=["sleep","1000"]'
check "create for exec -t" create -b "$B" t2
started+=(t2)
check "start" oci start t2
rm -f "$T/console.sock"
"$PYTHON3" "$T/console.py" "$T/console.sock" >"$T/console.out" &
cpid=$!
cleanup_add "kill $cpid 2>/dev/null"
wait_for 10 test -S "$T/console.sock"
echo '{"args":["sh","-c","tty; test -t 0 && echo isatty; stty size"],"cwd":"/","env":["PATH=/bin"],
 "terminal":true,"consoleSize":{"height":20,"width":70}}' >"$T/process-tty.json"
check "exec --process with terminal: true, --console-socket" \
    oci exec --process "$T/process-tty.json" --console-socket "$T/console.sock" t2
wait $cpid
check_eq "the exec'd process has the pty as its terminal, of consoleSize" "$(tr '\n' ' ' <"$T/console.out")" \
    "/dev/pts/0 isatty 20 70 "
check_output "exec --console-socket without a terminal" "only for a terminal" \
    oci exec --console-socket "$T/console.sock" t2 true
check_output "exec -t without --console-socket" "a terminal needs --console-socket" oci exec -t t2 true
check "delete" oci delete --force t2

# ---- linux.devices: nodes made in the container's /dev, read from outside ----
config 'process.args=["sleep","1000"]' \
    'linux.devices=[{"path":"/dev/kpa-null","type":"c","major":1,"minor":3,"fileMode":384,"uid":1000,"gid":1000},{"path":"/dev/sub/fifo","type":"p"}]'
check "create with linux.devices" create -b "$B" dv
started+=(dv)
dpid=$(oci state dv | field pid)
check_eq "linux.devices: the node, its numbers, mode and owner" \
    "$(stat -c '%F %t:%T %a %u:%g' "/proc/$dpid/root/dev/kpa-null" 2>&1)" "character special file 1:3 600 1000:1000"
check_eq "linux.devices: a FIFO, its directory made, mode 0666 by default" \
    "$(stat -c '%F %a' "/proc/$dpid/root/dev/sub/fifo" 2>&1)" "fifo 666"
oci delete --force dv >/dev/null 2>&1
config 'linux.devices=[{"path":"/dev/x","type":"c"}]'
check_output "a device without its numbers" 'linux.devices[0]: a c device needs major and minor numbers' \
    oci create -b "$B" bad
config 'linux.devices=[{"path":"/dev/../x","type":"q"}]'
check_output "a device path with .." 'linux.devices[0]: "/dev/../x" must be an absolute path without ".."' \
    oci create -b "$B" bad
config 'linux.devices=[{"path":"/dev/x","type":"q"}]'
check_output "a device type that is not c, b, u or p" 'linux.devices[0]: type "q": not c, b, u or p' \
    oci create -b "$B" bad

# ---- hooks: the state JSON on stdin ----
hook() { echo "{\"path\":\"/bin/sh\",\"args\":[\"sh\",\"-c\",\"cat > $T/hook-$1.json\"]}"; }
config 'process.args=["true"]' \
    "hooks={\"createRuntime\":[$(hook createRuntime)],\"poststart\":[$(hook poststart)],\"poststop\":[$(hook poststop)]}"
oci run -b "$B" h1 >/dev/null 2>&1
check_eq "createRuntime hook: the state on stdin" "$(field status <"$T/hook-createRuntime.json")" created
check_eq "poststart hook: the state on stdin" "$(field id <"$T/hook-poststart.json")" h1
check_eq "poststop hook ran at delete" "$(field id <"$T/hook-poststop.json")" h1
config 'process.args=["true"]' 'hooks={"createRuntime":[{"path":"/bin/false"}]}'
check_output "a failing createRuntime hook fails the create" "createRuntime hook /bin/false: failed" \
    oci create -b "$B" h2
check_fails "and leaves no state" test -e "$R/h2"

# ---- refusals: the JSON path and the rule ----
config 'linux.intelRdt={"closID":"x"}'
check_output "an unsupported field names its path" "linux.intelRdt: not supported" oci create -b "$B" bad
config 'process.args=["true"]' 'process.x-engine-extra=1'
check_exit_output "a key the runtime specification lacks is ignored, with a warning" 0 \
    "warning: config.json: process.x-engine-extra: not in the runtime specification, ignored" \
    oci run -b "$B" unknown-key
config 'mounts=[{"destination":"/x","type":"overlay","source":"o"}]'
check_output "an unknown mount type" 'mounts[0].type: "overlay": not supported' oci create -b "$B" bad
config 'linux.namespaces=[{"type":"pid"},{"type":"user"},{"type":"ipc"},{"type":"uts"},{"type":"mount"}]'
check_output "a user namespace" 'linux.namespaces[1]: type "user": not supported' oci create -b "$B" bad
config 'linux.seccomp={"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/x"}'
check_output "a seccomp notify listener" "linux.seccomp.listenerPath: not supported" oci create -b "$B" bad
config 'linux.seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["x"],"action":"SCMP_ACT_NOTIFY"}]}'
check_output "a seccomp action kpa-oci lacks" 'linux.seccomp.syscalls[0]: action not supported: "SCMP_ACT_NOTIFY"' \
    oci create -b "$B" bad
config 'process.capabilities={"bounding":["CAP_CHOWN"],"permitted":["CAP_CHOWN"],"effective":["CAP_KILL"]}'
check_output "a capability outside the bounding set" \
    "process.capabilities.effective: CAP_KILL is not in the bounding and permitted sets" oci create -b "$B" bad
config 'process.capabilities={"bounding":["CAP_SYS_NICE"],"permitted":["CAP_SYS_NICE"]}'
check_output "a capability kpa-oci itself lacks (a host that withholds it)" \
    'process.capabilities.bounding[0]: "CAP_SYS_NICE": kpa-oci does not hold it' \
    setpriv --bounding-set -sys_nice "$KPA_OCI" --root "$R" create -b "$B" bad
config 'process.capabilities={"bounding":["CAP_CHOWN","CAP_NOPE"]}'
check_output "an unknown capability" \
    'process.capabilities.bounding[1]: "CAP_NOPE": not a capability this kernel knows' oci create -b "$B" bad
config 'process.terminal=true'
check_output "process.terminal without --console-socket" "a terminal needs --console-socket" \
    oci create -b "$B" bad
config 'process.args=["nosuchprogram"]'
check_output "a program missing from the rootfs" 'process.args[0]: "nosuchprogram": no such executable' \
    oci create -b "$B" bad
check_fails "refusals leave no state" test -e "$R/bad"
config
check_output "an invalid id" "not valid" oci create -b "$B" ../x
check_output "--systemd-cgroup" "not supported, use cgroupfs" oci --systemd-cgroup create -b "$B" x
check_output "--console-socket without a terminal" "only for a terminal" oci create -b "$B" --console-socket "$T/s" x
check_output "exec in a container that does not exist" "does not exist" oci exec x true
check_output "state of an unknown container" "does not exist" \
    oci --log "$T/log.json" --log-format json state nope
check "--log-format json writes runc's JSON lines" grep -q '^{"level":"error","msg":"container' "$T/log.json"
check "features prints JSON" sh -c "'$KPA_OCI' features | '$PYTHON3' -m json.tool"

# ---- podman ----
# the groups podman makes (--cgroup-parent, inside our own group in every
# hierarchy), removed afterwards with the parents that did not exist before
MYCG=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
[ -n "$MYCG" ] || MYCG=$(sed -n 's/^0:://p' /proc/self/cgroup)
CGP="${MYCG%/}/kpa-oci-test$$"
new_cgroups=()
for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
    [ -e "$h/cgroup.procs" ] || continue
    d=$h$CGP
    while [ "$d" != "$h" ] && [ ! -d "$d" ]; do
        new_cgroups+=("$d")
        d=$(dirname "$d")
    done
done
rm_new_cgroups() {
    local d
    for d in "${new_cgroups[@]}"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    return 0
}
# shellcheck disable=SC2034 # read by a cleanup
BRIDGE_EXISTED=$(ip link show cni-podman0 >/dev/null 2>&1 && echo yes)
# what the engines leave in /run (podman's IPAM database, the shims'
# sockets): removed when this test made it
for d in /run/containers /run/containerd /run/kpa-oci; do
    [ -e $d ] || cleanup_add "rm -rf $d"
done
if ! command -v podman >/dev/null; then
    skip "podman" "podman is not installed (Debian package podman)"
else
    # kpa-oci's state in its default --root, /run/kpa-oci: podman's exit
    # command (the cleanup after a container ends) does not pass a
    # --runtime-flag root=... on, and would delete in the default one
    P=(podman --root "$T/podman" --runroot "$T/podman-run" --runtime "$KPA_OCI"
        --cgroup-manager cgroupfs --events-backend file --storage-driver vfs)
    RUNOPTS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --cgroup-parent "$CGP")
    cleanup_add '"${P[@]}" rm -af -t 0 >/dev/null 2>&1; rm_new_cgroups;
        [ -n "$BRIDGE_EXISTED" ] || ip link del cni-podman0 2>/dev/null'
    tar -C "$B/rootfs" -cf "$T/rootfs.tar" .
    check "podman import of the busybox rootfs" "${P[@]}" import -q "$T/rootfs.tar" localhost/kpa-oci-busybox:test
    out=$("${P[@]}" run --rm --network none "${RUNOPTS[@]}" localhost/kpa-oci-busybox:test \
        sh -c 'echo hello; ip -o link | grep -c ": eth"' 2>&1)
    check_eq "podman run --network none: only loopback" "$(grep -v warning <<<"$out" | tr '\n' ' ')" "hello 0 "
    check_eq "podman run --rm leaves no kpa-oci state (nor cgroup)" \
        "$(find /run/kpa-oci -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)" 0
    out=$("${P[@]}" run --rm "${RUNOPTS[@]}" localhost/kpa-oci-busybox:test ip -o -4 addr show eth0 2>&1)
    check "podman run with the default network: eth0 has an address" grep -q "inet " <<<"$out"
    check "podman run -d" "${P[@]}" run -d --name kpa-oci-web --pids-limit 77 "${RUNOPTS[@]}" \
        localhost/kpa-oci-busybox:test sleep 1000
    check_eq "podman inspect: running" "$("${P[@]}" inspect -f '{{.State.Status}}' kpa-oci-web)" running
    check "podman ps lists it Up" sh -c "$(printf '%q ' "${P[@]}") ps | grep kpa-oci-web | grep -q Up"
    pid=$("${P[@]}" inspect -f '{{.State.Pid}}' kpa-oci-web)
    # podman's default capabilities (containers.conf), as podman inspect names them
    read -ra eff <<<"$("${P[@]}" inspect -f '{{join .EffectiveCaps " "}}' kpa-oci-web)"
    read -ra bnd <<<"$("${P[@]}" inspect -f '{{join .BoundingCaps " "}}' kpa-oci-web)"
    app=$(app_of "$pid")
    check_eq "podman run -d: the application's effective, permitted and bounding sets are podman's" \
        "$(capsof "$app" | cut -d' ' -f4,6,8)" "$(capmask "${eff[@]}") $(capmask "${eff[@]}") $(capmask "${bnd[@]}")"
    check_eq "with no inheritable nor ambient one" "$(capsof "$app" | cut -d' ' -f2,10)" \
        "0000000000000000 0000000000000000"
    out=$("${P[@]}" run --rm --network none "${RUNOPTS[@]}" localhost/kpa-oci-busybox:test \
        cat /proc/self/status 2>&1)
    check_eq "podman run ... cat /proc/self/status: podman's default set" \
        "$(grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' <<<"$out" | tr -s '\t\n' '  ')" \
        "CapInh: 0000000000000000 CapPrm: $(capmask "${eff[@]}") CapEff: $(capmask "${eff[@]}") CapBnd: $(capmask "${bnd[@]}") CapAmb: 0000000000000000 "
    read -ra want <<<"$(printf '%s\n' "${eff[@]}" CAP_NET_ADMIN | grep -vx CAP_CHOWN | tr '\n' ' ')"
    out=$("${P[@]}" run --rm --network none "${RUNOPTS[@]}" --cap-add NET_ADMIN --cap-drop CHOWN \
        localhost/kpa-oci-busybox:test grep CapEff /proc/self/status 2>/dev/null)
    check_eq "podman run --cap-add NET_ADMIN --cap-drop CHOWN" "$(tr -s '\t' ' ' <<<"$out")" \
        "CapEff: $(capmask "${want[@]}")"
    out=$("${P[@]}" run --rm --network none "${RUNOPTS[@]}" --user 1000:1000 --cap-add NET_BIND_SERVICE \
        localhost/kpa-oci-busybox:test grep -E '^Cap(Eff|Amb)' /proc/self/status 2>/dev/null)
    check_eq "podman run --user 1000:1000 --cap-add NET_BIND_SERVICE: ambient, so effective after exec" \
        "$(tr -s '\t\n' '  ' <<<"$out")" "CapEff: 0000000000000400 CapAmb: 0000000000000400 "
    check_eq "podman's --pids-limit in the container's cgroup" "$(cat "$(cgfile "$pid" pids pids.max)")" 77
    out=$("${P[@]}" exec kpa-oci-web sh -c 'echo hello from exec; exit 4' 2>/dev/null)
    check_eq "podman exec: its exit status" "$?" 4
    check_eq "podman exec: its output" "$out" "hello from exec"
    check_eq "podman exec -u" "$("${P[@]}" exec -u 1000:1000 kpa-oci-web id 2>/dev/null)" "uid=1000 gid=1000"
    out=$("${P[@]}" run --rm -t "${RUNOPTS[@]}" localhost/kpa-oci-busybox:test sh -c 'tty; test -t 1 && echo isatty' \
        </dev/null 2>/dev/null | tr -d '\r')
    check_eq "podman run -t: a terminal" "$(tr '\n' ' ' <<<"$out")" "/dev/pts/0 isatty "
    out=$("${P[@]}" exec -t kpa-oci-web sh -c 'tty; test -t 1 && echo isatty' </dev/null 2>/dev/null | tr -d '\r')
    check_eq "podman exec -t: a terminal of the container's devpts" "$(tr '\n' ' ' <<<"$out")" "/dev/pts/0 isatty "
    check "podman stop" "${P[@]}" stop -t 10 kpa-oci-web
    check_eq "podman inspect: exited" "$("${P[@]}" inspect -f '{{.State.Status}}' kpa-oci-web)" exited
    check "podman rm" "${P[@]}" rm kpa-oci-web
fi

# ---- containerd and ctr ----
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
    skip "ctr" "containerd is not installed (Debian package containerd)"
else
    C="$T/containerd"
    mkdir -p "$C"
    cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$C/sock"
[ttrpc]
  address = "$C/sock.ttrpc"
EOF
    containerd --config "$C/config.toml" --log-level warn >"$C/log" 2>&1 &
    CPID=$!
    cleanup_add "ctr --address '$C/sock' -n kpa-oci-test task kill -s KILL ct2 >/dev/null 2>&1;
        ctr --address '$C/sock' -n kpa-oci-test task delete -f ct2 >/dev/null 2>&1;
        ctr --address '$C/sock' -n kpa-oci-test container delete ct2 >/dev/null 2>&1;
        kill $CPID; wait $CPID"
    CTR=(ctr --address "$C/sock" -n kpa-oci-test)
    RT=(--runtime io.containerd.runc.v2 --runc-binary "$KPA_OCI" --runc-root "$T/ctr-oci"
        --fifo-dir "$T/ctr-fifo")
    if wait_for 30 test -S "$C/sock"; then
        out=$("${CTR[@]}" run --rm "${RT[@]}" --rootfs "$B/rootfs" ct1 sh -c 'echo hello from ctr; exit 0' 2>&1)
        check_eq "ctr run --runc-binary kpa-oci" "$(grep -v warning <<<"$out")" "hello from ctr"
        check "ctr run -d" "${CTR[@]}" run -d "${RT[@]}" --rootfs "$B/rootfs" ct2 sleep 1000
        check "ctr task ls: RUNNING" sh -c "$(printf '%q ' "${CTR[@]}") task ls | grep ct2 | grep -q RUNNING"
        check "ctr task kill" "${CTR[@]}" task kill -s TERM ct2
        check "ctr task ls: STOPPED" wait_for 10 sh -c "$(printf '%q ' "${CTR[@]}") task ls | grep ct2 | grep -q STOPPED"
        check "ctr task delete" "${CTR[@]}" task delete ct2
        check "ctr container delete" "${CTR[@]}" container delete ct2
    else
        skip "ctr" "containerd did not start: $(tail -3 "$C/log")"
    fi
fi

done_testing
