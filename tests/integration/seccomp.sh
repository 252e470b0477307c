#!/bin/bash
# seccomp.sh: the default seccomp filter of a sandboxed application. A probe
# inside the sandbox calls every refused system call with harmless
# arguments: each fails with EPERM (clone3 with ENOSYS), while ordinary calls
# (files, memory, fork, threads, posix_spawn, sockets) still work. The same
# probe outside the sandbox shows that the arguments alone would not give
# EPERM. KPA_sandbox "allowPtrace", once granted, lets ptrace through, and
# only ptrace. socket() for the address families that a network namespace
# does not isolate (AF_VSOCK, AF_BLUETOOTH, ...) fails with EAFNOSUPPORT; the
# probe only creates the socket, it never connects.
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
R="$T/store"
APP=org.example.seccomp$$
APP_PT=org.example.seccomp-ptrace$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
$MKPKG "$T/probe-pt.kpa" --id $APP_PT --bin "$PROBE" --set 'runConfigurations[0].args=[]' \
    --set 'extensions={"KPA_sandbox":{"allowPtrace":true,"network":"host"}}'
for p in probe probe-pt; do
    "$KPA_INSTALL" --root "$R" -q --grant all "$T/$p.kpa" || { echo "Bail out! cannot install $p.kpa"; exit 1; }
done

run() { "$KPA_RUN" --root "$R" "$@"; }
val() { sed -n "s|^$1=||p" <<<"$2" | head -1; }

refused=(mount umount2 pivot_root chroot fsopen fsconfig fsmount fspick move_mount open_tree
    mount_setattr unshare setns clone_newns clone_newuts clone_newipc clone_newuser clone_newpid
    clone_newnet clone_newcgroup clone_newtime ioctl_tiocsti ioctl_tiocsti_high ioctl_tioclinux
    kexec_load kexec_file_load init_module finit_module delete_module acct swapon swapoff reboot
    settimeofday clock_settime bpf perf_event_open userfaultfd keyctl add_key request_key ptrace
    process_vm_readv process_vm_writev io_uring_setup personality_addr_no_randomize)
ordinary=(open_write_read mmap fork pthread_create posix_spawn socketpair_ioctl socket
    personality_query personality_linux personality_linux32 clone_plain)

out=$(run $APP -- seccomp)
check_eq "the probe ran every check" "$(grep -c '^\(sc\|ok\)\.' <<<"$out")" \
    $((${#refused[@]} + 1 + ${#ordinary[@]}))
check "/proc/self/status shows a seccomp filter (mode 2)" \
    grep -qx 'Seccomp=2' <<<"$(run $APP -- info)"
for c in "${refused[@]}"; do
    check_eq "$c is refused with EPERM" "$(val "sc.$c" "$out")" EPERM
done
check_eq "clone3 fails with ENOSYS (libc falls back to clone)" "$(val sc.clone3 "$out")" ENOSYS
for c in "${ordinary[@]}"; do
    check_eq "$c still works" "$(val "ok.$c" "$out")" ok
done

# the same calls outside any sandbox: the arguments are harmless and would
# not give EPERM by themselves, so the EPERM above is the filter's
host=$(PATH=/nonexistent "$PROBE" seccomp)
uring_off=$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)
for c in "${refused[@]}" clone3; do
    v=$(val "sc.$c" "$host")
    check "outside the sandbox, $c gives $v, not EPERM or ok" test -n "$v" -a "$v" != EPERM -a "$v" != ok -o \
        "$c" = personality_addr_no_randomize -a "$v" = ok -o \
        "$c" = io_uring_setup -a "$uring_off" = 2
done

# allowPtrace relaxes ptrace and process_vm_*, nothing else
out=$(run $APP_PT -- seccomp)
check_eq "allowPtrace: ptrace reaches the kernel (no such pid)" "$(val sc.ptrace "$out")" ESRCH
check_eq "allowPtrace: process_vm_readv reaches the kernel" "$(val sc.process_vm_readv "$out")" EINVAL
check_eq "allowPtrace: mount is still refused" "$(val sc.mount "$out")" EPERM
check_eq "allowPtrace: keyctl is still refused" "$(val sc.keyctl "$out")" EPERM

# address families that a network namespace does not isolate: refused
# inside, with or without the network permission (socket creation only)
for f in vsock bluetooth nfc 34 42 37; do
    check_eq "socket($f) is refused with EAFNOSUPPORT" "$(val "socket.$f" "$(run $APP -- socket $f)")" \
        EAFNOSUPPORT
done
check_eq "socket(vsock) is refused with the network granted too" \
    "$(val socket.vsock "$(run $APP_PT -- socket vsock)")" EAFNOSUPPORT
for f in inet inet6 unix netlink; do
    check_eq "socket($f) still works" "$(val "socket.$f" "$(run $APP -- socket $f)")" ok
done
host=$(PATH=/nonexistent "$PROBE" socket vsock)
check "outside the sandbox, socket(vsock) is not refused by a filter ($host)" \
    test "$(val socket.vsock "$host")" != EPERM

# ---- a second ABI: a system call through i386's int $0x80 kills the process ----
outside=$("$PROBE" int80 2>&1)
if [ "$(uname -m)" = x86_64 ] && [[ $(val int80.getpid "$outside") =~ ^[0-9]+$ ]]; then
    out=$(run $APP -- int80 2>&1)
    check_eq "an i386 system call kills the process (128 + SIGSYS)" "$?" 159
    check "... kpa-run says killed by SIGSYS" grep -q "killed by SIGSYS" <<<"$out"
    check_eq "... the call never returned" "$(val int80.getpid "$out")" ""
else
    skip "an i386 system call kills the process" \
        "this machine runs no i386 system calls (not x86_64, or no IA32 emulation)"
fi

done_testing
