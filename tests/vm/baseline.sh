#!/bin/bash
# tests/vm/baseline.sh: what kpa-run does with cgroups on this machine, as
# an administrator meets it (issue 14's baseline). Not a test: it prints each
# command, its exit status and output, and the cgroup files it set, for the
# record. Run it in a guest (the plain guest mounts pure cgroup v2):
#   bash tests/vm/run.sh --builddir BUILD --command "bash $PWD/tests/vm/baseline.sh"
# It needs the built tree with the examples (make examples) and root; it
# installs into the default store, so it refuses to run outside a guest
# (kpa_vm_dir set by tests/vm/init) unless KPA_BASELINE_HOST=1.
set -u
top_builddir=${top_builddir:-$PWD}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
KPA_RUN=$top_builddir/src/tools/kpa-run
KPA_INSTALL=$top_builddir/src/tools/kpa-install
PROBE=$top_builddir/tests/probe/probe
[ -n "${kpa_vm_dir:-}" ] || [ "${KPA_BASELINE_HOST:-}" = 1 ] ||
    { echo "baseline.sh: run it in a guest (tests/vm/run.sh --command ...)" >&2; exit 2; }
[ -f "$top_builddir/manifests/examples/hello.kpa" ] ||
    { echo "baseline.sh: no $top_builddir/manifests/examples/hello.kpa (make examples)" >&2; exit 2; }
T=$(mktemp -d /tmp/kpa-baseline.XXXXXX)
cg=/sys/fs/cgroup

# show CMD...: the command, its output (indented) and exit status
show() {
    local out rc
    echo "\$ $*"
    out=$("$@" 2>&1)
    rc=$?
    [ -n "$out" ] && while IFS= read -r line; do echo "    $line"; done <<<"$out"
    echo "    [exit $rc]"
}

echo "== the machine"
echo "kernel $(uname -r); $(stat -fc %T $cg) at $cg"
echo "root controllers: $(cat $cg/cgroup.controllers); enabled below the root: $(cat $cg/cgroup.subtree_control)"
echo "this shell's cgroup: $(sed -n 's/^0:://p' /proc/self/cgroup)"

echo "== install the demo package and a probe package into the default store"
show "$KPA_INSTALL" -q "$top_builddir/manifests/examples/hello.kpa"
APP=org.example.baseline
"${PYTHON3:-python3}" "$top_srcdir/tests/integration/mkpkg.py" "$T/probe.kpa" --id $APP --bin "$PROBE" \
    --set 'runConfigurations[0].args=[]' >/dev/null
show "$KPA_INSTALL" -q "$T/probe.kpa"

echo "== from this shell's cgroup (the root in the plain guest, as the integration tests run there)"
show "$KPA_RUN" org.example.hello
echo "--- --memory 64M: memory.max of a running instance, then a memory hog"
"$KPA_RUN" --memory 64M $APP -- sleep 3 >/dev/null 2>&1 &
runner=$!
sleep 1.5
for f in "$cg/kpa.slice/$APP"/*/memory.max; do [ -f "$f" ] && echo "    $f: $(cat "$f")"; done
wait $runner
echo "    [exit $?]"
show "$KPA_RUN" --json --memory 64M $APP -- memhog 256
show "$KPA_RUN" --json --pids 20 $APP -- forkbomb

echo "== from a session-like cgroup that holds processes, memory and pids delegated to it"
mkdir -p $cg/user.slice/session-1.scope $cg/user.slice/kpa-parent
echo "+memory +pids" >$cg/user.slice/cgroup.subtree_control
echo "+memory +pids" >$cg/user.slice/kpa-parent/cgroup.subtree_control
in_session() { bash -c 'echo $$ >'"$cg"'/user.slice/session-1.scope/cgroup.procs && exec "$@"' - "$@"; }
echo "user.slice/session-1.scope: subtree_control '$(cat $cg/user.slice/session-1.scope/cgroup.subtree_control)'"
show in_session "$KPA_RUN" org.example.hello
show in_session "$KPA_RUN" --pids 20 org.example.hello
show in_session "$KPA_RUN" --memory 64M org.example.hello
echo "--- --cgroup-parent to an empty delegated cgroup (user.slice/kpa-parent)"
# (PATH is a cgroup path, as in /proc/self/cgroup, or its directory below /sys/fs/cgroup)
show in_session "$KPA_RUN" --cgroup-parent $cg/user.slice/kpa-parent org.example.hello
show in_session "$KPA_RUN" --cgroup-parent /user.slice/kpa-parent org.example.hello
show in_session "$KPA_RUN" --cgroup-parent /user.slice/kpa-parent --json --memory 64M $APP -- memhog 256
"$KPA_RUN" --cgroup-parent /user.slice/kpa-parent --memory 64M --pids 20 $APP -- sleep 3 >/dev/null 2>&1 &
runner=$!
sleep 1.5
for f in "$cg/user.slice/kpa-parent/kpa.slice/$APP"/*/{memory,pids}.max; do [ -f "$f" ] && echo "    $f: $(cat "$f")"; done
wait $runner
echo "    [exit $?]"
show in_session "$KPA_RUN" --cgroup-parent /user.slice/kpa-parent --json --pids 20 $APP -- forkbomb
echo "--- what is left below user.slice"
find $cg/user.slice -name cgroup.procs -printf '    %h\n'
# (the guest is thrown away; still, leave the cgroups as they were)
find $cg/user.slice/kpa-parent -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null
rm -rf "$T"
