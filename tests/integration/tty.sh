#!/bin/bash
# Interactive programs and the file system they expect (issue 18): kpa-run
# --tty gives the application a pseudo-terminal of its sandbox's own devpts
# (bash -i with job control, tty, the window size, Ctrl-C as SIGINT inside,
# TIOCSTI refused), driven through a terminal by tests/integration/
# tty-drive.py (python3's pty module); the host terminal's settings come back
# after a normal end and after SIGTERM; --no-tty gives pipes. Then /var
# (tmpfs /var/tmp, /var/lib, /var/cache, /var/run -> /run), --workdir, and
# root's --bind and --bind-ro (refused to others, and through kpa-execd).
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
DRIVE="$PYTHON3 $top_srcdir/tests/integration/tty-drive.py"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
[ -x "$PROBE" ] || skip_all "the probe is not built"
BASH_BIN=$(readlink -f "$(command -v bash)")
R="$T/store"
SH=org.example.tty$$
PR=org.example.ttyprobe$$
# bash itself as the package's program: its libraries come from /usr
$MKPKG "$T/sh.kpa" --id $SH --bin "$BASH_BIN" --set 'runConfigurations[0].args=[]'
$MKPKG "$T/probe.kpa" --id $PR --bin "$PROBE" --set 'runConfigurations[0].args=[]'
RS=org.example.ttyrestart$$
$MKPKG "$T/restart.kpa" --id $RS --bin "$BASH_BIN" --set 'runConfigurations[0].args=[]' \
    --set 'extensions={"KPA_restart":{"policy":"on-failure","maxRetries":1,"delayMs":50}}'
for p in sh probe restart; do
    "$KPA_INSTALL" --root "$R" -q "$T/$p.kpa" || { echo "Bail out! cannot install $p.kpa"; exit 1; }
done

# drive ARGS...: run kpa-run ARGS on a terminal of its own, with the steps
# on stdin (tty-drive.py); its report in $drv (the output of a pty has \r\n
# line ends, and bash's readline puts escapes before a command's output)
drive() {
    local opts=()
    while [ "$1" = --rows ] || [ "$1" = --cols ] || [ "$1" = --job-control ]; do
        if [ "$1" = --job-control ]; then opts+=("$1"); shift; else opts+=("$1" "$2"); shift 2; fi
    done
    drv=$($DRIVE "${opts[@]}" -- "$KPA_RUN" --root "$R" "$@" 2>&1)
}
# show_drive: the driver's report, as TAP comments (after a failed check)
show_drive() {
    while IFS= read -r l; do echo "#   drive: $l"; done <<<"$drv" | tail -40
    return 0
}
# the same settings before and after (stty -g of the driver's terminal)
same_stty() {
    local before after
    before=$(sed -n 's/^stty-before=//p' <<<"$drv")
    after=$(sed -n 's/^stty-after=//p' <<<"$drv")
    test -n "$before" -a "$before" = "$after"
}

# ---- bash -i: job control, tty, window size ----
drive --rows 30 --cols 90 $SH -- -i <<'EOF'
expect [$] $
send bind 'set enable-bracketed-paste off'\r
expect [$] $
send sleep 100 &\r
expect \[1\] [0-9]+
send jobs\r
expect Running +sleep 100
send fg\r
expect sleep 100
retry \x1a Stopped +sleep 100
send kill %1\r
send tty\r
expect /dev/pts/[0-9]+\r
send stty size\r
expect 30 90
winsize 40 100
send stty size\r
expect 40 100
raw
send exit\r
wait
EOF
check "bash -i under --tty: a background job shows in jobs as Running" grep -q 'Running  *sleep 100' <<<"$drv"
check "bash -i: fg, then Ctrl-Z stops the job (job control)" grep -q 'Stopped  *sleep 100' <<<"$drv"
check "tty names a device of the sandbox's devpts" grep -Eq $'^/dev/pts/[0-9]+\r$' <<<"$drv"
check "stty size: the host terminal's size at the start" grep -q $'^30 90\r$' <<<"$drv"
# (typed at once after the resize: kpa-run passes the new size on before
# the line, whose poll() sees both; it relayed the line first before, and a
# loaded CI machine showed the old size once)
check "stty size follows a resize of the host terminal (SIGWINCH)" grep -q $'^40 100\r$' <<<"$drv" ||
    show_drive
check "the host terminal is in raw mode while the application runs" grep -q '^raw=yes' <<<"$drv"
check "bash's exit ends kpa-run with its code" grep -q '^exit=0$' <<<"$drv" || show_drive
check "the host terminal's settings are restored after a normal end" same_stty

# ---- Ctrl-C: SIGINT inside, through the pty's line discipline ----
# (NOFLSH: the line discipline sends SIGINT, then flushes what the pty has
# not passed on yet. Python may print its KeyboardInterrupt in between,
# and the flush then drops it, as at any terminal: seen 1 run in ~8 here.
# NOFLSH leaves the output alone; the signal is the same.)
drive $SH -- -c 'exec python3 -iq' <<'EOF'
expect >>> $
send import termios, time; a = termios.tcgetattr(0); a[3] |= termios.NOFLSH; termios.tcsetattr(0, termios.TCSANOW, a)\r
expect >>> $
send print("sle" + "eping"); time.sleep(100)\r
expect \nsleeping\r\n
send \x03
expect KeyboardInterrupt
send print(6*7)\r
expect 42
send exit()\r
wait
EOF
check "Ctrl-C reaches python3 -i as KeyboardInterrupt" grep -q '^KeyboardInterrupt' <<<"$drv" ||
    show_drive
check "and the instance keeps running (it answers, then exits 0)" \
    grep -Pzq 'exit=0\n(.*\n)*KeyboardInterrupt\r\n(.*\n)*42\r\n' <<<"$drv"

# ---- SIGTSTP to kpa-run: the terminal back while it is stopped ----
# ---- SIGTERM to kpa-run: a Normal stop, and the terminal restored ----
# (kpa-run as a shell's foreground job: a stop signal to an orphaned
# process group is discarded)
drive --job-control $SH -- -c 'echo ready; exec sleep 100' <<'EOF'
expect ready
until-raw yes
signal TSTP
until-raw no
signal CONT
until-raw yes
signal TERM
wait
EOF
check "SIGTSTP to kpa-run --tty: the host terminal as it was while it is stopped, raw again after" \
    grep -Pzq '\nraw=yes\nraw=no\nraw=yes\n' <<<"$drv" || show_drive
check "SIGTERM to kpa-run --tty stops the application (exit 143)" \
    grep -Pzq '\nraw=yes\n(.*\n)*exit=143\n' <<<"$drv" || show_drive
check "the host terminal's settings are restored after SIGTERM" same_stty || show_drive

# ---- TIOCSTI stays refused on the pty ----
drive $PR -- tiocsti <<'EOF'
wait
EOF
check "TIOCSTI on the sandbox's pty is refused (EPERM)" grep -q '^tiocsti=EPERM' <<<"$drv"
check "TIOCSTI on /dev/tty is refused (EPERM)" grep -q '^tiocsti.tty=EPERM' <<<"$drv"

# ---- --no-tty: pipes, even at a terminal ----
drive --no-tty $SH -- -c 'test -t 0; echo in=$?; test -t 1; echo out=$?; readlink /proc/self/fd/0' <<'EOF'
wait
EOF
check "--no-tty at a terminal: stdin is no terminal" grep -q '^in=1' <<<"$drv"
check "--no-tty at a terminal: stdout is no terminal" grep -q '^out=1' <<<"$drv"
check "--no-tty at a terminal: stdin is a pipe" grep -q '^pipe:' <<<"$drv"
check_eq "no terminal at all: no pty by default" \
    "$("$KPA_RUN" --root "$R" $SH -- -c 'test -t 0 || echo notty' </dev/null 2>&1)" notty
check_eq "--tty without a terminal: the application still gets a pty" \
    "$("$KPA_RUN" --root "$R" --tty $SH -- -c 'tty' </dev/null 2>&1 | tr -d '\r')" /dev/pts/0
check_exit_output "--tty with --detach is refused" 2 "--tty does not go with --detach" \
    "$KPA_RUN" --detach --tty $SH

# ---- /var as programs expect it ----
run() { "$KPA_RUN" --root "$R" "$@"; }
for d in /var/tmp /var/lib /var/cache; do
    check "the application can write to $d" run $SH -- -c "echo x > $d/f && test -s $d/f"
done
check "/var is one tmpfs mount for the three" \
    run $SH -- -c "grep -Eq '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ /var rw,.* - tmpfs ' /proc/self/mountinfo"
# /tmp, /run and /var are binds of directories of the root's own tmpfs (one
# file system to make and tear down, not four): the same device, their
# mounts writable, the root's read-only
mi=$(run $SH -- -c 'cat /proc/self/mountinfo')
dev_of() { awk -v m="$1" '$5 == m {print $3}' <<<"$mi"; }
opts_of() { awk -v m="$1" '$5 == m {print $6}' <<<"$mi" | cut -d, -f1; }
check_eq "/tmp, /run and /var lie on the root's file system" \
    "$(dev_of /tmp) $(dev_of /run) $(dev_of /var)" "$(dev_of /) $(dev_of /) $(dev_of /)"
check_eq "... whose mount is read-only, theirs writable" \
    "$(opts_of /) $(opts_of /tmp) $(opts_of /run) $(opts_of /var)" "ro rw rw rw"
check "... and the application cannot write to / itself" \
    run $SH -- -c '! touch /x 2>/dev/null && ! mkdir /y 2>/dev/null'
check_eq "/dev/shm is writable, on /dev's file system, not noexec" \
    "$(run $SH -- -c 'echo x >/dev/shm/f && cat /dev/shm/f'),$(dev_of /dev/shm),$(awk '$5 == "/dev/shm" {print $6}' <<<"$mi" | grep -c noexec)" \
    "x,$(dev_of /dev),0"
check_eq "/var/tmp is as /tmp is (1777, root's); /var/lib and /var/cache are the application's" \
    "$(run $SH -- -c 'stat -c "%a %u" /tmp /var/tmp /var/lib /var/cache' | paste -sd, -)" \
    "1777 0,1777 0,755 $(cat "$R/users/$SH"),755 $(cat "$R/users/$SH")"
check_eq "/var/run is a link to /run" "$(run $SH -- -c 'readlink /var/run')" /run

# ---- --workdir ----
check_eq "--workdir DIR: the application starts in DIR" "$(run --workdir /storage $SH -- -c pwd)" /storage
check_exit_output "--workdir that does not exist inside: a clear error" 1 \
    'step "change to the working directory": No such file or directory' \
    run --workdir /nowhere $SH -- -c pwd
check_exit_output "--workdir must be absolute" 2 'is not an absolute path' run --workdir tmp $SH

# ---- --bind and --bind-ro (root) ----
mkdir -p "$T/host/dir"
echo from-host >"$T/host/dir/file"
# what the root holds has its own modes, not the caller's umask
check_eq "under umask 077 the application still reads /etc and reaches /run, /var and a bind" \
    "$(umask 077 && run --bind-ro "$T/host/dir:/mnt/in/x" $SH -- -c \
        'stat -c %a /etc /etc/passwd /run /var /dev/pts /mnt /mnt/in | paste -sd, -; cat /mnt/in/x/file')" \
    "755,644,755,755,755,755,755
from-host"
check_eq "--bind-ro: the host file is there inside" \
    "$(run --bind-ro "$T/host/dir:/mnt/in" $SH -- -c 'cat /mnt/in/file')" from-host
check_output "--bind-ro: writing is refused (EROFS)" "Read-only file system" \
    run --bind-ro "$T/host/dir:/mnt/in" $SH -- -c 'echo x >/mnt/in/file'
chmod 0777 "$T/host/dir"
run --bind "$T/host/dir:/srv/rw" $SH -- -c 'echo written >/srv/rw/new' 2>/dev/null
check_eq "--bind: what the application writes lands on the host" "$(cat "$T/host/dir/new" 2>&1)" written
check_exit_output "--bind of a missing host path is named" 1 "host path $T/nowhere" \
    run --bind "$T/nowhere:/mnt" $SH -- true
check_exit_output "--bind with a relative inside path is refused" 1 "must be absolute" \
    run --bind "$T/host/dir:mnt" $SH -- true
check_exit_output "--bind without HOST:INSIDE is a usage error" 2 "expected HOST:INSIDE" \
    run --bind "$T/host/dir" $SH -- true

# ---- through kpa-execd: root may, a member of its group may not ----
EXECD="$top_builddir/src/daemon/kpa-execd"
GROUP=$(getent group 65534 | cut -d: -f1)
if [ -x "$EXECD" ] && [ -n "$GROUP" ]; then
    S="$T/execd.sock"
    CLIENT_PY=$(reachable "$top_srcdir/tests/integration/execd-client.py")
    "$EXECD" --foreground --on-exit stop --no-autorun --socket "$S" --root "$R" \
        --state-dir "$T/state" --group "$GROUP" </dev/null >/dev/null 2>>"$T/execd.log" &
    dpid=$!
    cleanup_add "kill $dpid 2>/dev/null; wait $dpid 2>/dev/null"
    for _ in $(seq 200); do [ -S "$S" ] && break; sleep 0.05; done
    tok=$("$KPA_RUN" --socket "$S" --detach --bind-ro "$T/host/dir:/mnt/in" --workdir /mnt/in \
        $SH -- -c 'cat file; pwd' 2>&1)
    "$KPA_RUN" --socket "$S" --wait "$tok" >/dev/null 2>&1
    check_eq "root: --detach with --bind-ro and --workdir" \
        "$("$KPA_RUN" --socket "$S" --logs "$tok" 2>&1)" "from-host
/mnt/in"
    # a restart keeps them: the second run writes where the first did
    tok=$("$KPA_RUN" --socket "$S" --detach --bind "$T/host/dir:/srv/rw" --workdir /srv/rw \
        $RS -- -c 'pwd >>runs; exit 1' 2>&1)
    for _ in $(seq 200); do
        [ "$(wc -l <"$T/host/dir/runs" 2>/dev/null)" = 2 ] && break
        sleep 0.05
    done
    "$KPA_RUN" --socket "$S" --wait "$tok" >/dev/null 2>&1
    check_eq "a restart by kpa-execd keeps --bind and --workdir" "$(cat "$T/host/dir/runs" 2>&1)" \
        "/srv/rw
/srv/rw"
    req='{"op":"StartProcess","id":1,"package":"'$SH'","binds":[{"host":"/etc","inside":"/mnt"}]}'
    drv=$(setpriv --reuid 65534 --regid 65534 --clear-groups "$PYTHON3" "$CLIENT_PY" "$S" call "$req")
    check "a member of kpa-execd's group may not ask for binds (EPERM)" \
        grep -q '"EPERM".*only root may bind host paths' <<<"$drv"
else
    skip "--bind through kpa-execd" "kpa-execd is not built, or no group has gid 65534"
fi

# not root: refused, in direct mode and with --detach
USERID=65534
KR=$(reachable "$KPA_RUN")
KI=$(reachable "$KPA_INSTALL")
mkdir -p "$T/user" && chown $USERID "$T/user" && chmod 0755 "$T"
cp "$T/sh.kpa" "$T/user/" && chmod a+r "$T/user/sh.kpa"
nobody() { setpriv --reuid $USERID --regid $USERID --clear-groups "$@"; }
if nobody "$KI" --root "$T/user/store" -q "$T/user/sh.kpa" 2>/dev/null; then
    check_exit_output "--bind by a user that is not root is refused" 1 "only root can bind" \
        nobody "$KR" --root "$T/user/store" --bind "$T/host/dir:/mnt" $SH -- true
    # rootless (a user namespace, /dev made by the child): a pty too
    drv=$(echo wait | nobody "$PYTHON3" "$(reachable "$top_srcdir/tests/integration/tty-drive.py")" \
        -- "$KR" --root "$T/user/store" $SH -- -c 'tty; touch /var/lib/x && echo var-ok' 2>&1)
    check "rootless: --tty gives a pty of the sandbox's devpts, and /var/lib is writable" \
        grep -Pzq '\nexit=0\n(.*\n)*/dev/pts/0\r\nvar-ok\r\n' <<<"$drv"
    check_eq "rootless, under umask 077: /etc and /etc/passwd keep their modes" \
        "$(umask 077 && nobody "$KR" --root "$T/user/store" $SH -- -c 'stat -c %a /etc /etc/passwd' | paste -sd, -)" \
        "755,644"
else
    skip "--bind by a user that is not root is refused" "the user cannot install a package here"
    skip "rootless: --tty gives a pty of the sandbox's devpts" "the user cannot install a package here"
    skip "rootless, under umask 077: /etc and /etc/passwd keep their modes" "the user cannot install a package here"
fi
check_exit_output "--bind with --detach by a user that is not root is refused" 2 \
    "only root may bind host paths" nobody "$KR" --detach --bind "$T/host/dir:/mnt" $SH
done_testing
