#!/bin/bash
# make install creates the system group kpa when it is missing (without it
# kpa-execd.socket fails to start: 216/GROUP), as the Debian package's
# postinst does; a staged install (DESTDIR) never touches the system.
# Checked in a mount namespace of its own over a copy of /etc, so that the
# host's groups stay as they are.
. "$(dirname "$0")/lib.sh"
need_root

command -v groupadd >/dev/null || skip_all "no groupadd (passwd)"
grep -q '^KPA_CREATE_GROUP = yes' "$top_builddir/Makefile" 2>/dev/null ||
    skip_all "configured --without-kpa-group (as make distcheck does)"
before=$(sha256sum /etc/group)
cp -a /etc "$T/etc"
# in_copy CMD...: CMD with the copy of /etc as /etc
in_copy() {
    unshare -m --propagation private sh -c 'mount --bind "$0" /etc && exec "$@"' "$T/etc" "$@"
}
# make, as a user types it (not as a child of make check's jobserver)
mk=(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -C "$top_builddir")
in_copy groupdel kpa 2>/dev/null
check "the copy of /etc has no group kpa" test -z "$(in_copy getent group kpa)"
check "a staged install (DESTDIR) makes no group" \
    in_copy "${mk[@]}" install-kpa-group DESTDIR="$T/stage"
check "... none" test -z "$(in_copy getent group kpa)"
out=$(in_copy "${mk[@]}" install-kpa-group 2>&1)
check "make install creates it, and says so" grep -q "creating the system group kpa" <<<"$out"
gid=$(in_copy getent group kpa | cut -d: -f3)
check "... a system group (gid $gid)" test -n "$gid" -a "${gid:-1000}" -lt 1000
out=$(in_copy "${mk[@]}" install-kpa-group 2>&1)
check_exit "a second install does not make it again" 1 grep -q "creating" <<<"$out"
check_eq "... and leaves it as it is" "$(in_copy getent group kpa | cut -d: -f3)" "$gid"
check_eq "the host's /etc/group is untouched" "$(sha256sum /etc/group)" "$before"
done_testing
