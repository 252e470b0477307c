#!/bin/bash
# tests/vm/tests.sh: the test run in the guest (tests/vm/init runs it in the
# plain guest, kpa-test.service in the systemd guest), and its report to the
# host through the results directory kpa_vm_dir (mounted read-write):
#   DIR/boot    the guest: kernel, CPUs, memory, cgroup controllers,
#               interfaces, boot and test times
#   DIR/log     what the tests printed (also on the console)
#   DIR/status  the exit status of the tests
#   DIR/journal the systemd guest's journal
# It runs, in the built tree VM_BUILDDIR, the shell command VM_COMMAND if
# there is one, else make check with TESTS=VM_TESTS ("all": all of them),
# and in the plain guest first the tests that only such a guest can run
# (VM_ONLY_TESTS: pure cgroup v2 without systemd), unless VM_TESTS names them.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LANG=C.UTF-8 HOME=/root TERM=dumb
: "${kpa_vm_dir:?no kpa_vm_dir}"
# shellcheck source=/dev/null
. "$kpa_vm_dir/config"

{
    echo "kernel: $(uname -r), $(nproc) CPU, $(sed -n 's/MemTotal: *//p' /proc/meminfo)"
    echo "cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
    echo "subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
    echo "test cgroup: $(sed -n 's/^0:://p' /proc/self/cgroup)"
    echo "interfaces: $(cd /sys/class/net && echo *)"
    if [ "$VM_MODE" = systemd ]; then
        t=$(systemctl show -P ActiveEnterTimestampMonotonic basic.target)
        echo "basic.target after: $(awk -v t="$t" 'BEGIN { printf "%.1f", t / 1e6 }') s"
        echo "systemd: $(systemctl --version | head -1), state $(systemctl is-system-running)"
    fi
    echo "uptime at test start: $(cut -d' ' -f1 /proc/uptime) s"
} >"$kpa_vm_dir/boot" 2>&1
echo "kpa-vm: booted: $(paste -sd';' "$kpa_vm_dir/boot")"

cd "$VM_BUILDDIR" || { echo "kpa-vm: no build tree $VM_BUILDDIR"; echo 2 >"$kpa_vm_dir/status"; exit 2; }
VM_ONLY_TESTS="tests/vm/supervisor.sh"
run_tests() {
    local rc=0 only=
    if [ -n "${VM_COMMAND:-}" ]; then
        bash -c "$VM_COMMAND"
        return
    fi
    if [ "$VM_MODE" = plain ]; then
        for t in $VM_ONLY_TESTS; do
            [[ " $VM_TESTS " == *" $t "* ]] || only="$only $t"
        done
    fi
    # (their own suite log: the run below writes test-suite.log)
    if [ -n "$only" ]; then
        make check AM_COLOR_TESTS=no TESTS="${only# }" TEST_SUITE_LOG=tests/vm/test-suite.log || rc=1
    fi
    if [ "$VM_TESTS" = all ]; then
        make check AM_COLOR_TESTS=no || rc=1
    else
        make check AM_COLOR_TESTS=no TESTS="$VM_TESTS" || rc=1
    fi
    return $rc
}
start=$(cut -d' ' -f1 /proc/uptime)
run_tests </dev/null 2>&1 | tee "$kpa_vm_dir/log"
status=${PIPESTATUS[0]}
echo "test time: $(awk -v s="$start" '{ printf "%.1f", $1 - s }' /proc/uptime) s" >>"$kpa_vm_dir/boot"
# the systemd guest's journal and failed units, for a post-mortem
if [ "$VM_MODE" = systemd ]; then
    systemctl --failed --no-legend --plain | sed 's/^/failed unit: /' >>"$kpa_vm_dir/boot"
    journalctl -b -o short-monotonic --no-pager >"$kpa_vm_dir/journal" 2>&1
fi
echo "$status" >"$kpa_vm_dir/status"
sync
exit "$status"
