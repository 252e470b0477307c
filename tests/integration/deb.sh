#!/bin/bash
# The Debian packages: pkg/build-deb.sh builds kpa, libkpa0 and libkpa-dev
# (lintian must report no errors), then they are installed on this machine
# with apt-get and checked from their installed paths: tools, man pages,
# units, completion, the kpa group, /var/lib/kpa, libkpa from C, and a
# package packed, installed and run with /usr/bin/kpa-pack,
# /usr/sbin/kpa-install and /usr/bin/kpa-run (and kpa-execd --foreground
# when the package has it). Everything is purged afterwards.
# Slow (a full package build). Skipped in a make distcheck tree, where the
# sources are a read-only copy and the machine is not ours to change twice.
. "$(dirname "$0")/lib.sh"
need_root
case $top_builddir in */_build/sub*) skip_all "in a make distcheck tree" ;; esac
[ "${KPA_SKIP_DEB:-}" = 1 ] &&
    skip_all "KPA_SKIP_DEB=1: the packages are built and checked in another tree (tests/gates.sh)"
command -v apt-get >/dev/null || skip_all "not a Debian system (no apt-get)"
for p in kpa libkpa0 libkpa-dev; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        skip_all "$p is already installed on this machine; not touching it"
    fi
done

# ---- build ----
check "pkg/build-deb.sh builds the packages and lintian reports no errors" \
    env DEB_BUILD_OPTIONS="parallel=$(nproc)" bash "$top_srcdir/pkg/build-deb.sh" "$T/debs" ||
    { done_testing; exit 1; }
for p in kpa libkpa0 libkpa-dev; do
    check "$p.deb was built" test -f "$(echo "$T"/debs/"${p}"_*.deb)"
done

# ---- install, with the clean-up registered first ----
had_group=$(getent group kpa >/dev/null && echo yes)
had_store=$([ -e /var/lib/kpa ] && echo yes)
cleanup_add 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq kpa libkpa0 libkpa-dev >/dev/null 2>&1'
[ -n "$had_group" ] || cleanup_add 'getent group kpa >/dev/null && groupdel kpa'
[ -n "$had_store" ] || cleanup_add 'rmdir /var/lib/kpa 2>/dev/null'
debs=("$T"/debs/kpa_*.deb "$T"/debs/libkpa0_*.deb "$T"/debs/libkpa-dev_*.deb)
check "apt-get installs the three packages" \
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" ||
    { done_testing; exit 1; }

for f in /usr/bin/kpa-pack /usr/sbin/kpa-install /usr/bin/kpa-run; do
    check "$f is installed and runs" "$f" --version
done
for m in "$top_srcdir"/man/*.[158]; do
    name=${m##*/}
    check "man page $name is installed" test -f "/usr/share/man/man${name##*.}/$name.gz"
done
for c in kpa-pack kpa-install kpa-run; do
    check "bash completion for $c is installed" test -e "/usr/share/bash-completion/completions/$c"
done
units=$(cd "$top_srcdir/pkg" && find systemd -maxdepth 1 \( -name '*.service*' -o -name '*.socket*' \) \
    -printf '%f\n' 2>/dev/null | sed 's/\.in$//' | sort -u)
if [ -n "$units" ]; then
    for u in $units; do
        check "unit $u is installed" test -f "/lib/systemd/system/$u"
    done
else
    skip "the systemd units are installed" "no units in this source tree yet"
fi
check "postinst created the kpa system group" getent group kpa
gid=$(getent group kpa | cut -d: -f3)
check "...a system group (gid below 1000)" test "${gid:-1000}" -lt 1000
check "/var/lib/kpa exists" test -d /var/lib/kpa
check "the tools' default store is /var/lib/kpa" grep -q /var/lib/kpa <<<"$(/usr/sbin/kpa-install --help)"

# ---- libkpa-dev: a C program built with pkg-config against the installed library ----
cat >"$T/uses-libkpa.c" <<'C'
#include <stdio.h>
#include <kpa/package.h>
int main(void) { puts(kpa_store_default_root(NULL)); return 0; }
C
check "a program builds against libkpa with pkg-config" \
    bash -c 'cc -o "$1/uses-libkpa" "$1/uses-libkpa.c" $(pkg-config --cflags --libs kpa)' _ "$T"
check_eq "...and runs with the installed libkpa.so.0" "$("$T/uses-libkpa")" /var/lib/kpa

# ---- the installed tools at work, on a throwaway store ----
R="$T/store"
HELLO=$top_builddir/manifests/examples/hello/hello
if [ -x "$HELLO" ]; then
    sed "s/@ARCH@/$(uname -m)/" "$top_srcdir/manifests/examples/hello/manifest.json" >"$T/manifest.json"
    check "/usr/bin/kpa-pack packs the hello example" \
        /usr/bin/kpa-pack -q -o "$T/hello.kpa" --manifest "$T/manifest.json" "$HELLO"
    check "/usr/sbin/kpa-install installs it" /usr/sbin/kpa-install --root "$R" -q "$T/hello.kpa"
    out=$(/usr/bin/kpa-run --root "$R" org.example.hello -- --exit 3)
    check_eq "/usr/bin/kpa-run runs it and passes its exit code on" "$?" 3
    check "...in its sandbox, with its private storage" grep -qx 'storage: /storage is writable, run 1' <<<"$out"
else
    skip "the installed tools pack, install and run an example" "hello example not built"
fi

# ---- the daemon ----
if [ -x /usr/sbin/kpa-execd ]; then
    mkdir -p "$T/state"
    /usr/sbin/kpa-execd --foreground --on-exit stop --socket "$T/sock" --root "$R" --state-dir "$T/state" \
        >"$T/execd.log" 2>&1 &
    execd=$!
    cleanup_add "kill $execd 2>/dev/null; wait $execd 2>/dev/null"
    for _ in $(seq 100); do [ -S "$T/sock" ] && break; sleep 0.05; done
    check "kpa-execd --foreground listens on its socket" test -S "$T/sock"
    # a client built against the installed libkpa-dev: connect, list, and
    # start the hello example through the daemon
    cat >"$T/execd-client.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <kpa/process.h>
int main(int argc, char **argv)
{
        kpa_control *ctl;
        kpa_error err;
        if (argc < 2 || kpa_control_connect(argv[1], &ctl, &err) < 0)
                return fprintf(stderr, "connect: %s\n", argc < 2 ? "usage" : err.message), 1;
        kpa_token *tokens, token;
        size_t n;
        if (kpa_process_list(ctl, &tokens, &n, &err) < 0)
                return fprintf(stderr, "list: %s\n", err.message), 1;
        free(tokens);
        printf("listed=%zu\n", n);
        if (argc > 2) {
                const char *const args[] = {"--exit", "3"};
                kpa_start_options opts;
                kpa_start_options_init(&opts);
                opts.extra_args = args;
                opts.n_extra_args = 2;
                kpa_process_context pc;
                kpa_process_context_init(&pc);
                if (kpa_process_start(ctl, argv[2], NULL, &opts, &token, &err) < 0 ||
                    kpa_process_wait(ctl, &token, 20000, &pc, &err) < 0)
                        return fprintf(stderr, "start: %s\n", err.message), 1;
                printf("state=%s code=%d\n", kpa_process_state_name(pc.state), pc.exit_code);
        }
        kpa_control_close(ctl);
        return 0;
}
C
    check "a client builds against the installed libkpa" \
        bash -c 'cc -o "$1/execd-client" "$1/execd-client.c" $(pkg-config --cflags --libs kpa)' _ "$T"
    check "kpa-execd answers a client (kpa_control_connect, kpa_process_list)" \
        "$T/execd-client" "$T/sock"
    if [ -f "$T/hello.kpa" ]; then
        out=$("$T/execd-client" "$T/sock" org.example.hello 2>&1)
        check_eq "kpa-execd starts an installed application and reports its end" \
            "$(sed -n 's/^state=//p' <<<"$out")" "Finished code=3"
    else
        skip "kpa-execd starts an installed application and reports its end" "hello example not built"
    fi
    check "kpa-run --list talks to it" env KPA_EXECD_SOCKET="$T/sock" /usr/bin/kpa-run --list
    kill -TERM "$execd"
    wait "$execd"
    check_eq "kpa-execd ends cleanly on SIGTERM" "$?" 0
else
    _result 1 "the kpa package ships /usr/sbin/kpa-execd"
fi

# ---- purge ----
check "apt-get purge removes the packages" \
    env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq kpa libkpa0 libkpa-dev
check "no kpa file is left in /usr" test -z "$(find /usr/bin /usr/sbin /usr/include /usr/share/man \
    /usr/share/bash-completion -name 'kpa*' 2>/dev/null)"
if [ -z "$had_group" ]; then
    check "postrm removed the (empty) kpa group" test -z "$(getent group kpa)"
else
    skip "postrm removed the (empty) kpa group" "the group kpa was there before the install; it stays"
fi
done_testing
