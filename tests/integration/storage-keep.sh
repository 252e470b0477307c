#!/bin/bash
# A sized private storage's file system stays mounted for KPA_STORAGE_LINGER
# seconds (default 30) after its last instance (storage-keep.c, issue 15):
# a "kpa-keep" process holds a detached mount of it, so the next start
# neither mounts nor unmounts ext4. Checked from outside: the keeper's
# process (its name, privileges, fds, session, lock), the file system's
# presence in /sys/fs/ext4, the host's mount table, and the data in the image.
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
command -v mke2fs >/dev/null || skip_all "no mke2fs (e2fsprogs)"
command -v debugfs >/dev/null || skip_all "no debugfs (e2fsprogs)"
[ -e /dev/loop-control ] || skip_all "no loop devices here (/dev/loop-control)"
APP=org.example.keep$$
R="$T/store"
IMG="$R/images/$APP.img"
cat >"$T/app" <<'EOF'
#!/bin/sh
case $1 in
write) echo "$2" >/storage/note ;;
read) cat /storage/note ;;
sleep) echo ready; sleep "$2" ;;
dev) stat -c %d /storage ;;
esac
EOF
chmod 755 "$T/app"
$MKPKG "$T/app.kpa" --id $APP --bin "$T/app" --set 'runConfigurations[0].args=[]' \
    --set 'privateStorage={"size":"16","fsType":"ext4"}'
cleanup_add '"$KPA_INSTALL" --root "$R" -q --remove --purge '$APP' 2>/dev/null'
check "a package with a sized private storage installs" "$KPA_INSTALL" --root "$R" -q "$T/app.kpa"
run() { "$KPA_RUN" --root "$R" "$@"; }
keepers() { storage_keepers "$R"; }
has_keeper() { [ -n "$(keepers)" ]; }
loopdev() { local f; f=$(grep -l "^$IMG\$" /sys/block/loop*/loop/backing_file 2>/dev/null | head -1); f=${f#/sys/block/}; echo "${f%%/*}"; }
# the file system is mounted somewhere (a superblock on its loop device)
fs_alive() { local d; d=$(loopdev); [ -n "$d" ] && [ -e "/sys/fs/ext4/$d" ]; }
wait_gone() { # wait_gone CMD...: until CMD fails, 5 s at most
    for _ in $(seq 250); do "$@" || return 0; sleep 0.02; done
    return 1
}
host_mounts() { awk -v d="$(loopdev)" '$0 ~ ("/dev/" d " ") {print $5}' /proc/self/mountinfo; }

traced() { KPA_TRACE_START=1 "$KPA_RUN" --root "$R" "$@" 2>&1 >/dev/null | grep -c 'storage: kept mount cloned'; }
check_eq "the first start works, and mounts the file system itself (no keeper to take it from)" \
    "$(traced $APP -- write one)" 0
k=$(keepers)
check "after it, one kpa-keep process keeps the file system (${k:-none})" test "$(wc -w <<<"$k")" -eq 1
check "... which is mounted still" fs_alive
check_eq "... though not on the host" "$(host_mounts)" ""
if [ -n "$k" ]; then
    st=/proc/$k/status
    check_eq "... the keeper has no capabilities" "$(awk '/^Cap(Inh|Prm|Eff|Bnd|Amb)/ {print $2}' "$st" | sort -u)" 0000000000000000
    check_eq "... and no_new_privs" "$(awk '/^NoNewPrivs/ {print $2}' "$st")" 1
    fds=$(for f in /proc/"$k"/fd/*; do echo "${f##*/}=$(readlink "$f")"; done | sort | paste -sd' ' -)
    check_eq "... its fds: /dev/null as stdio, its mount, the image, inotify" "$fds" \
        "0=/dev/null 1=/dev/null 2=/dev/null 3=/ 4=$IMG 5=anon_inode:inotify"
    check_eq "... ps shows it as kpa-keep APP_ID, not as the command that started it" \
        "$(tr '\0' '\n' <"/proc/$k/cmdline" | head -1)" "kpa-keep $APP"
    check_eq "... its directory is /" "$(readlink "/proc/$k/cwd")" /
    check "... in a session of its own, not the caller's" test "$(proc_sid "$k")" != "$(proc_sid $$)"
    check_eq "... with no terminal" "$(awk '{print $7}' "/proc/$k/stat")" 0
    check "... and is nobody's child here" test "$(awk '/^PPid/ {print $2}' "$st")" != $$
    check_eq "... its lock on the image is a read lock" \
        "$(awk -v p="$k" '$5 == p {print $2, $4}' /proc/locks)" "POSIX READ"
fi
check_eq "the next start reads what the first wrote" "$(run $APP -- read)" one
check_eq "... and the same keeper goes on (no second one)" "$(keepers)" "$k"
check_eq "... the next start takes the keeper's mount, mounting nothing" "$(traced $APP -- read)" 1
check_eq "... whose storage is the image's file system" \
    "$(run $APP -- dev)" "$(($(stat -c '0x%t' "/dev/$(loopdev)") * 256 + $(stat -c '0x%T' "/dev/$(loopdev)")))"

# two at once: still one keeper
run $APP -- sleep 2 >"$T/a.out" &
a=$!
cleanup_add "kill $a 2>/dev/null; wait $a 2>/dev/null"
check "a second instance runs beside a first" run $APP -- write two
wait $a
check_eq "... one keeper for both" "$(keepers)" "$k"

# released: the file system is unmounted, and the data is in the image
check "kpa-install --release-storage ends the keeper" "$KPA_INSTALL" --root "$R" --release-storage $APP
check_eq "... which is gone at once" "$(keepers)" ""
check "... and the file system is unmounted" wait_gone fs_alive
check_eq "... with the data written in the image itself" \
    "$(debugfs -R 'cat /note' "$IMG" 2>/dev/null)" two
check "a second --release-storage has nothing to do, and says nothing" \
    test -z "$("$KPA_INSTALL" --root "$R" --release-storage $APP 2>&1)"
check_exit_output "--release-storage of a package that is not installed fails" 1 \
    "org.example.nosuch is not installed" "$KPA_INSTALL" --root "$R" --release-storage org.example.nosuch
check_exit_output "--release-storage of a bad id fails" 1 "../x" \
    "$KPA_INSTALL" --root "$R" --release-storage ../x

# KPA_STORAGE_LINGER
check "with KPA_STORAGE_LINGER=0 a start works" env KPA_STORAGE_LINGER=0 "$KPA_RUN" --root "$R" $APP -- read
check_eq "... and no keeper stays" "$(keepers)" ""
check "... nor the file system, unmounted with the instance" wait_gone fs_alive
check_exit_output "KPA_STORAGE_LINGER=abc fails the start, naming it" 1 "KPA_STORAGE_LINGER=abc" \
    env KPA_STORAGE_LINGER=abc "$KPA_RUN" --root "$R" $APP -- read
check_exit_output "KPA_STORAGE_LINGER=100000 fails too (at most 86400)" 1 "at most 86400" \
    env KPA_STORAGE_LINGER=100000 "$KPA_RUN" --root "$R" $APP -- read
check_eq "... and those leave nothing mounted" "$(keepers)" ""
check "... at all" wait_gone fs_alive

t0=$(date +%s%N)
check "with KPA_STORAGE_LINGER=1 a start works" env KPA_STORAGE_LINGER=1 "$KPA_RUN" --root "$R" $APP -- read
k=$(keepers)
check "... and has a keeper" test -n "$k"
check "... that ends by itself after a second" wait_gone has_keeper
t1=$(date +%s%N)
check "... not before ($(((t1 - t0) / 1000000)) ms)" test $(((t1 - t0) / 1000000)) -ge 900
check "... and the file system with it" wait_gone fs_alive

# each start extends the linger: a keeper of 4 s, a start after 2 s, still
# there after 4.5 s (it would have ended at 4 without the second start)
env KPA_STORAGE_LINGER=4 "$KPA_RUN" --root "$R" $APP -- read >/dev/null
k=$(keepers)
sleep 2
env KPA_STORAGE_LINGER=4 "$KPA_RUN" --root "$R" $APP -- read >/dev/null
sleep 2.5
check_eq "a start during the linger extends it (same keeper after 4.5 s)" "$(keepers)" "$k"
"$KPA_INSTALL" --root "$R" --release-storage $APP

# a keeper killed hard: the next start mounts anew and gets a new keeper
run $APP -- read >/dev/null
k=$(keepers)
[ -n "$k" ] && kill -9 "$k"
check "after a keeper is killed (kill -9) the next start works" wait_gone test -d "/proc/$k"
out=$(KPA_TRACE_START=1 "$KPA_RUN" --root "$R" $APP -- read 2>"$T/trace")
check_eq "... and reads the data" "$out" two
check_eq "... having mounted the file system itself (no keeper to take it from)" \
    "$(grep -c 'storage: kept mount cloned' "$T/trace")" 0
k2=$(keepers)
check "... with a new keeper (${k2:-none})" test -n "$k2" -a "$k2" != "$k"

# removal ends the keeper; purge detaches the loop device
check "kpa-install --remove (storage kept) works while a keeper runs" \
    "$KPA_INSTALL" --root "$R" -q --remove $APP
check_eq "... and ends the keeper" "$(keepers)" ""
check "... and unmounts the file system" wait_gone fs_alive
check "--purge then detaches its loop device" "$KPA_INSTALL" --root "$R" -q --remove --purge $APP
check_eq "... none left" "$(loopdev)" ""

# an image removed behind kpa's back: its keeper ends by itself
check "reinstalled, it starts" sh -c '"$0" --root "$1" -q "$2" && "$3" --root "$1" '$APP' -- write three' \
    "$KPA_INSTALL" "$R" "$T/app.kpa" "$KPA_RUN"
k=$(keepers)
check "... with a keeper" test -n "$k"
rm -f "$IMG"
check "an image deleted by hand ends its keeper" wait_gone test -d "/proc/$k"
done_testing
