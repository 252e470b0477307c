#!/bin/bash
# privateStorage.size is enforced (issue "Trust boundaries", 5): as root,
# a package that gives a size gets a file system image of that size as its
# /storage; writing past it fails with ENOSPC inside, the host's disk is
# untouched, nothing stays mounted on the host, and the data survives runs
# and upgrades. Rootless, the size is not enforced, and kpa says so.
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
command -v mke2fs >/dev/null || skip_all "no mke2fs (e2fsprogs)"
[ -e /dev/loop-control ] || skip_all "no loop devices here (/dev/loop-control)"
APP=org.example.sized$$
R="$T/store"
cat >"$T/app" <<'EOF'
#!/bin/sh
case $1 in
df) df -k /storage | awk 'NR == 2 {print "total_kb=" $2}' ;;
fill) dd if=/dev/zero of=/storage/big bs=1M count=40 2>&1 | grep -o 'No space left on device' | head -1
      echo "big_bytes=$(wc -c </storage/big)" ;;
write) echo "$2" >/storage/note ;;
read) cat /storage/note ;;
ls) ls -A /storage | paste -sd, - ;;
owner) stat -c 'owner=%u mode=%a' /storage ;;
sleep) echo ready; sleep "$2" ;;
esac
EOF
chmod 755 "$T/app"
mkpkg() { # mkpkg FILE VERSION
    $MKPKG "$1" --id $APP --version "$2" --bin "$T/app" --set 'runConfigurations[0].args=[]' \
        --set 'privateStorage={"size":"16","fsType":"ext4"}'
}
mkpkg "$T/v1.kpa" 1.0
mkpkg "$T/v2.kpa" 2.0
mounts_below() { awk -v t="$T/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo; }
img_loops() { grep -l "$R/images/$APP.img" /sys/block/loop*/loop/backing_file 2>/dev/null | wc -l; }
cleanup_add '"$KPA_INSTALL" --root "$R" -q --remove --purge '$APP' 2>/dev/null'

check "a package with privateStorage.size installs" "$KPA_INSTALL" --root "$R" -q "$T/v1.kpa"
check_eq "its storage is a 16 MiB image" "$(stat -c %s "$R/images/$APP.img")" $((16 << 20))
check "... whose space is reserved on the host" test "$(stat -c %b "$R/images/$APP.img")" -ge $((16 << 11))
run() { "$KPA_RUN" --root "$R" "$@"; }
total=$(run $APP -- df | sed -n 's/^total_kb=//p')
check "/storage inside is that file system (${total:-?} KiB)" test "${total:-0}" -gt 12000 -a "${total:-0}" -le 16384
uid=$(cat "$R/users/$APP")
check_eq "its root is the package's, mode 0700" "$(run $APP -- owner)" "owner=$uid mode=700"
# (the exit code too: a start that failed would list nothing either; its
# standard output alone: in a coverage build the sandbox's init reports on
# stderr that it cannot write its .gcda files where the tree is, e.g. below
# /root, which the sandbox does not have)
out=$(run $APP -- ls 2>"$T/ls.err")
check_eq "it holds nothing but what the application writes (no lost+found)" "$?:$out" "0:"
out=$(run $APP -- fill)
check "writing 40 MB into it fails with ENOSPC inside" grep -q 'No space left on device' <<<"$out"
big=$(sed -n 's/^big_bytes=//p' <<<"$out")
check "... after at most 16 MiB (${big:-?} bytes)" test "${big:-999999999}" -le $((16 << 20))
check "the host's disk holds no more than the image" test "$(du -sk "$R" | cut -f1)" -le $((17 << 10))
check_eq "nothing of it stays mounted on the host" "$(mounts_below)" ""
check_eq "... only its loop device stays, for the next start" "$(img_loops)" 1
# the image names that loop device (trusted.kpa.loop), so that the next
# start finds it without probing every loop device; a wrong name costs a
# probe and is put right (by a start that mounts the file system: the
# keeper of the one before is ended first, or the start takes its mount)
release() { "$KPA_INSTALL" --root "$R" -q --release-storage $APP; }
img_loop() { local f; f=$(grep -l "$R/images/$APP.img" /sys/block/loop*/loop/backing_file | head -1); f=${f#/sys/block/}; echo "${f%%/*}"; }
hint() { /usr/bin/python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "trusted.kpa.loop").decode())' "$R/images/$APP.img" 2>/dev/null; }
set_hint() { /usr/bin/python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.kpa.loop", sys.argv[2].encode())' "$R/images/$APP.img" "$1"; }
if [ -n "$(hint)" ]; then
    check_eq "the image names its loop device for the next start" "loop$(hint)" "$(img_loop)"
    release
    set_hint 99999
    check "a start where the image names a loop device that is not its own works" run $APP -- ls
    check_eq "... on its own loop device (no second one)" "$(img_loops)" 1
    check_eq "... and the image names it again" "loop$(hint)" "$(img_loop)"
    release
    set_hint garbage
    check "a start where the name is garbage works" run $APP -- ls
    check_eq "... and the image names its loop device again" "loop$(hint)" "$(img_loop)"
else
    skip "the image names its loop device for the next start" "no trusted.* attributes on $T's file system"
fi

run $APP -- write kept
check_eq "the data stays across runs" "$(run $APP -- read)" kept
check "an upgrade goes through" "$KPA_INSTALL" --root "$R" -q "$T/v2.kpa"
check_eq "the data stays across an upgrade" "$(run $APP -- read)" kept

# two instances at once share one loop device (one superblock)
# (not through run(): $! would be a subshell's pid, not kpa-run's)
"$KPA_RUN" --root "$R" $APP -- sleep 30 >"$T/first.out" &
first=$!
cleanup_add "kill $first 2>/dev/null; wait $first 2>/dev/null"
for _ in $(seq 100); do grep -q ready "$T/first.out" && break; sleep 0.05; done
check "a second instance runs while the first does" run $APP -- write second
check_eq "... both on one loop device" "$(img_loops)" 1
check_eq "... which the first sees at once" "$(run $APP -- read)" second
kill $first 2>/dev/null
wait $first 2>/dev/null

# an image that cannot be mounted fails the start: never the plain
# directory instead, whose size nothing limits
# (its file system unmounted first: a kept one would serve the start)
check "--release-storage unmounts the kept file system" "$KPA_INSTALL" --root "$R" --release-storage $APP
cp "$R/images/$APP.img" "$T/img.kept"
dd if=/dev/zero of="$R/images/$APP.img" bs=64k count=1 conv=notrunc status=none
check_exit_output "a private storage image that cannot be mounted fails the start" 1 \
    "cannot mount its private storage" run $APP -- read
cp "$T/img.kept" "$R/images/$APP.img"
check_eq "... and the start works again with the image back" "$(run $APP -- read)" second

info=$("$KPA_INSTALL" --root "$R" --info $APP)
check "--info says the size is enforced" grep -q 'Storage: *16 MB, ext4 (enforced' <<<"$info"
check "--info --json says so too" grep -q '"storageEnforced": *true' <<<"$("$KPA_INSTALL" --root "$R" --info --json $APP)"

check "--purge removes the image" "$KPA_INSTALL" --root "$R" -q --remove --purge $APP
check "... which is gone" test ! -e "$R/images/$APP.img"
check_eq "... and detaches its loop device" "$(img_loops)" 0

# rootless: no image, and kpa says so
USERID=65534
nobody() { setpriv --reuid $USERID --regid $USERID --clear-groups "$@"; }
mkdir "$T/home" && chown $USERID:$USERID "$T/home"
out=$(nobody "$(reachable "$KPA_INSTALL")" --root "$T/home/store" "$T/v1.kpa" 2>&1)
check "rootless, the package installs" test $? -eq 0
check "... with a note that its 16 MB are not enforced" grep -q 'asks for 16 MB of private storage; the size is not enforced' <<<"$out"
check "... and no image" test ! -e "$T/home/store/images/$APP.img"
check "--info says it is not enforced" grep -q 'Storage: *16 MB, ext4 (not enforced' \
    <<<"$(nobody "$(reachable "$KPA_INSTALL")" --root "$T/home/store" --info $APP)"
done_testing
