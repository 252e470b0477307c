#!/bin/bash
# Every long option that a tool's --help prints is documented in its man
# page (man/TOOL.[158]); a failure names the tool, the option and the page.
# A tool that is not built is a SKIP.
. "$(dirname "$0")/lib.sh"

# the page as text: rendered by mandoc (man(7) and mdoc(7) alike, e.g. mdoc's
# "Fl \-root" is "--root"), else roff with \- as a hyphen and no font changes
man_text() {
    if command -v mandoc >/dev/null; then
        mandoc -Tascii "$1" | sed 's/.\x08//g'
    else
        sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' "$1"
    fi
}
options_of() { "$1" --help 2>&1 | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u; }

for tool in src/tools/kpa-pack src/tools/kpa-install src/tools/kpa-run src/tools/kpa-oci src/daemon/kpa-execd; do
    bin=$top_builddir/$tool
    name=${tool##*/}
    [ -x "$bin" ] || { skip "$name: its --help options are in its man page" "$tool is not built"; continue; }
    page=$(find "$top_srcdir/man" -maxdepth 1 -name "$name.[158]" | head -1)
    check "$name has a man page" test -n "$page" || continue
    text=$(man_text "$page")
    opts=$(options_of "$bin")
    check "$name --help lists options" test -n "$opts"
    for opt in $opts; do
        check "$name: $opt (from --help) is in ${page##*/}" \
            grep -qE -- "(^|[^a-z0-9-])$opt([^a-z0-9-]|\$)" <<<"$text"
    done
done
done_testing
