#!/bin/bash
# The per-boot cache of the cgroup discovery (/run/kpa/cgroup-discovery;
# here KPA_CGROUP_DISCOVERY names one in a directory of the test's own),
# from outside: a start writes it, root's, mode 0644, with this boot's id
# and the mount points /proc/self/mountinfo shows; the next start uses it
# as it is (the file is not rewritten); a corrupt, stale or hostile cache
# (a mount point that is no cgroup hierarchy, the wrong hierarchy, a file
# that others may write or that root does not own, a symbolic link, a
# directory that others may write) is never used: the start still works,
# makes nothing where the cache pointed, and the cache is written anew
# where root alone can write.
. "$(dirname "$0")/lib.sh"
need_root

KPA_RUN="$top_builddir/src/tools/kpa-run"
PROBE="$top_builddir/tests/probe/probe"
[ -x "$KPA_RUN" ] || skip_all "kpa-run not built"
R="$T/store"
APP=org.example.cgcache$$
$MKPKG "$T/probe.kpa" --id $APP --bin "$PROBE" --set 'runConfigurations[0].args=[]'
"$KPA_INSTALL" --root "$R" -q "$T/probe.kpa" || { echo "Bail out! cannot install the probe"; exit 1; }
export KPA_CGROUP_DRIVER=cgroupfs
C="$T/cache"
mkdir -m 0755 "$C"
export KPA_CGROUP_DISCOVERY="$C/cgroup-discovery"
F=$KPA_CGROUP_DISCOVERY
EVIL="$T/evil"
mkdir "$EVIL"
run() { "$KPA_RUN" --root "$R" "$APP" -- exit 0; }
cleanup_add 'for d in $(app_cgroups '$APP'); do find "$d" -mindepth 1 -maxdepth 1 -type d -exec rmdir {} \; ; rmdir "$d" 2>/dev/null; done'

# the mount point of controller $1 as mountinfo and cgroup.controllers say
mount_of() {
    local m
    m=$(awk -v c="$1" '{ for (i = 7; $i != "-"; i++); if ($(i+1) == "cgroup" && ("," $(i+3) ",") ~ ("," c ",")) print $5 }' /proc/self/mountinfo | head -1)
    if [ -z "$m" ]; then
        while read -r m; do
            grep -qw "$1" "$m/cgroup.controllers" 2>/dev/null && break
            m=
        done < <(awk '{ for (i = 7; $i != "-"; i++); if ($(i+1) == "cgroup2") print $5 }' /proc/self/mountinfo)
    fi
    echo "$m"
}
inode() { stat -c %i "$F"; }
nothing_in_evil() { [ -z "$(ls -A "$EVIL")" ]; }

# ---- written by a start ----
rm -f "$F"
check "a start works without a cache" run
check "... and writes one" test -f "$F"
check_eq "root's, mode 0644" "$(stat -c '%u %a' "$F")" "0 644"
check_eq "its first line (format 2: with the devices line)" "$(sed -n 1p "$F")" "kpa-cgroup-discovery 2"
check "a devices line: v1, or not mounted" grep -Eqx 'devices (v1 /.*|- -)' "$F"
check_eq "this boot's id" "$(sed -n 2p "$F")" "boot $(cat /proc/sys/kernel/random/boot_id)"
check "a hash of the cgroup mounts" grep -Eq '^mounts [0-9a-f]{16}$' <<<"$(sed -n 3p "$F")"
pids_mount=$(mount_of pids)
if [ -n "$pids_mount" ]; then
    check "the pids hierarchy where mountinfo has it ($pids_mount)" \
        grep -Eq "^pids v[12] $pids_mount\$" "$F"
else
    check "pids not mounted: said so" grep -qx 'pids - -' "$F"
fi
cp "$F" "$T/good"

# ---- used as it is ----
before=$(inode)
check "a second start works" run
check_eq "... and uses the cache as it is (not written again)" "$(inode)" "$before"
check "no temporary file is left beside it" test "$(ls -A "$C")" = cgroup-discovery

# rewritten NAME: the cache was not used, and is the good one again
rewritten() {
    check "$1: the start works" run
    check "$1: nothing is made where the cache pointed" nothing_in_evil
    check_eq "$1: the cache is written anew" "$(cat "$F" 2>/dev/null)" "$(cat "$T/good")"
    check_eq "$1: root's, mode 0644, a plain file" "$(stat -c '%u %a %F' "$F")" "0 644 regular file"
}
# hostile SED: the good cache edited by SED, as root, mode 0644
hostile() { sed "$1" "$T/good" >"$F.new" && chmod 0644 "$F.new" && mv "$F.new" "$F"; }

printf 'garbage\n\001\002' >"$F"
rewritten "a corrupt cache"
: >"$F"
rewritten "an empty cache"
head -c 100000 /dev/zero >"$F"
rewritten "a cache too large"
hostile 's/^boot .*/boot 00000000-0000-0000-0000-000000000000/'
rewritten "a cache of another boot"
hostile 's/^mounts .*/mounts 0123456789abcdef/'
rewritten "a cache of other mounts"
hostile '$d'
rewritten "a cache a line short"
hostile '$a extra line'
rewritten "a cache with a line more"
hostile '1s/ 2$/ 1/; /^devices /d'
rewritten "a cache of format 1, from before the devices line"
if [ -n "$pids_mount" ]; then
    hostile "s|^pids \(v[12]\) .*|pids \1 $EVIL|"
    rewritten "a cache that puts pids in a plain directory"
    other=$(awk '{ for (i = 7; $i != "-"; i++); if ($(i+1) ~ /^cgroup2?$/) print $5 }' /proc/self/mountinfo |
        grep -vxF "$pids_mount" | head -1)
    if [ -n "$other" ]; then
        hostile "s|^pids \(v[12]\) .*|pids \1 $other|"
        check "a cache that puts pids in another hierarchy ($other): the start works" run
        check_eq "... the cache is written anew" "$(cat "$F")" "$(cat "$T/good")"
    fi
    if grep -q '^pids v1 ' "$T/good"; then
        hostile 's/^pids v1 /pids v2 /'
    else
        hostile 's/^pids v2 /pids v1 /'
    fi
    rewritten "a cache with the wrong cgroup version"
    # not root's alone: never read, whatever it says
    hostile "s|^pids \(v[12]\) .*|pids \1 $EVIL|"
    chmod 0666 "$F"
    rewritten "a cache that others may write"
    hostile "s|^pids \(v[12]\) .*|pids \1 $EVIL|"
    chmod 0664 "$F"
    rewritten "a cache that its group may write"
    hostile "s|^pids \(v[12]\) .*|pids \1 $EVIL|"
    chown 65534 "$F"
    rewritten "a cache that root does not own"
    hostile "s|^pids \(v[12]\) .*|pids \1 $EVIL|"
    mv "$F" "$T/hostile"
    ln -s "$T/hostile" "$F"
    rewritten "a symbolic link to a cache"
    # a directory that others may write: neither read nor written
    hostile "s|^pids \(v[12]\) .*|pids \1 $EVIL|"
    cp "$F" "$T/hostile"
    chmod 0777 "$C"
    check "in a directory that others may write: the start works" run
    check "... nothing is made where the cache pointed" nothing_in_evil
    check_eq "... and the file is left as it was" "$(cat "$F")" "$(cat "$T/hostile")"
    chmod 0755 "$C"
fi

done_testing
