#!/bin/bash
# bash completion (pkg/completion/kpa) of kpa-pack, kpa-install and kpa-run,
# driven the way bash drives it (COMP_LINE, COMP_POINT, COMP_WORDS,
# COMP_CWORD), against a throwaway store.
. "$(dirname "$0")/lib.sh"

COMPLETION=$top_srcdir/pkg/completion/kpa
command -v bash >/dev/null || skip_all "no bash"
R="$T/store"
# two packages: one with two run configurations
$MKPKG "$T/a.kpa" --id org.example.alpha \
    --set 'runConfigurations=[{"id":"main","name":"Main","type":"service","path":"bin/hello","primary":true},{"id":"worker","name":"Worker","type":"service","path":"bin/hello","primary":false}]'
$MKPKG "$T/b.kpa" --id org.example.beta
"$KPA_INSTALL" --root "$R" -q "$T/a.kpa" "$T/b.kpa" || { echo "Bail out! cannot install"; exit 1; }
mkdir -p "$T/files/sub.d"
touch "$T/files/app.kpa" "$T/files/manifest.json" "$T/files/notes.txt" "$T/files/acme.key"

# complete LINE: what bash would offer at the end of LINE (sorted, one line)
complete_line() {
    (cd "$T/files" && PATH="$top_builddir/src/tools:$PATH" KPA_ROOT=${COMP_KPA_ROOT-} bash -c '
        source "$1" || exit 1
        COMP_LINE=$2
        COMP_POINT=${#COMP_LINE}
        # bash splits at blanks and at the characters of COMP_WORDBREAKS
        read -r -a COMP_WORDS <<<"$(sed -E "s/([=:])/ \1 /g" <<<"$COMP_LINE")"
        [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        fn=$(complete -p "${COMP_WORDS[0]##*/}" | sed -E "s/.*-F ([^ ]+) .*/\1/")
        "$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}" | LC_ALL=C sort | paste -sd " " -
    ' _ "$COMPLETION" "$1")
}
comp_eq() { check_eq "$1: '$2'" "$(complete_line "$2")" "$3"; }

check "the completion file is valid bash" bash -n "$COMPLETION"
if command -v shellcheck >/dev/null; then
    check "shellcheck finds nothing in it" shellcheck -s bash "$COMPLETION"
else
    skip "shellcheck finds nothing in it" "shellcheck is not installed"
fi
check "it registers kpa-pack, kpa-install and kpa-run" bash -c \
    'source "$1" && complete -p kpa-pack && complete -p kpa-install && complete -p kpa-run' _ "$COMPLETION"

# options come from --help
comp_eq "kpa-pack options" "kpa-pack --c" "--compress="
comp_eq "kpa-pack values of --compress" "kpa-pack --compress " "gzip none xz zstd"
comp_eq "kpa-pack values of --compress=" "kpa-pack --compress=z" "zstd"
comp_eq "kpa-pack --manifest offers JSON files and directories" "kpa-pack --manifest " "manifest.json sub.d"
comp_eq "kpa-pack operands are files" "kpa-pack -o x.kpa --manifest manifest.json no" "notes.txt"
comp_eq "kpa-install options" "kpa-install --re" "--reinstall --release-storage --remove --revoke"
comp_eq "kpa-install --grant offers permission names" "kpa-install --grant allowP" \
    "allowPerfEvents allowPersonality allowPtrace"
comp_eq "... and the next name of a list" "kpa-install --grant network,read" "network,readOnlyPaths"
comp_eq "kpa-install --policy offers directories" "kpa-install --policy s" "sub.d"
comp_eq "kpa-install operands are packages" "kpa-install " "app.kpa sub.d"
comp_eq "kpa-install --root offers directories" "kpa-install --root s" "sub.d"
comp_eq "kpa-pack --sign offers secret keys and directories" "kpa-pack --sign " "acme.key sub.d"
comp_eq "kpa-install --trusted-keys offers directories" "kpa-install --trusted-keys s" "sub.d"
comp_eq "kpa-run options" "kpa-run --net" "--network="
comp_eq "kpa-run --network values" "kpa-run --network " "host none"

# application ids and run configurations, from the store named on the line
comp_eq "kpa-install --remove offers installed applications" \
    "kpa-install --root $R --remove " "org.example.alpha org.example.beta"
comp_eq "kpa-install --release-storage offers installed applications" \
    "kpa-install --root $R --release-storage org.example.a" "org.example.alpha"
comp_eq "kpa-install --revoke NAME offers installed applications" \
    "kpa-install --root $R --revoke network org.example.b" "org.example.beta"
comp_eq "kpa-install --grant NAME offers applications and packages" \
    "kpa-install --root $R --grant all " "app.kpa org.example.alpha org.example.beta sub.d"
comp_eq "kpa-install --verify, with --root=DIR" \
    "kpa-install --root=$R --verify org.example.a" "org.example.alpha"
comp_eq "kpa-install --info offers applications and packages" \
    "kpa-install -r $R --info " "app.kpa org.example.alpha org.example.beta sub.d"
comp_eq "kpa-run offers installed applications" "kpa-run --root $R org.ex" \
    "org.example.alpha org.example.beta"
comp_eq "kpa-run skips options and their values" \
    "kpa-run --root $R --memory 64M --handle a=fd:1 org.example.b" "org.example.beta"
comp_eq "kpa-run offers the application's run configurations" \
    "kpa-run --root $R org.example.alpha " "main worker"
comp_eq "kpa-run: run configurations of the other application" \
    "kpa-run --root $R org.example.beta " "main"
comp_eq "kpa-run: nothing after the run configuration but options" \
    "kpa-run --root $R org.example.alpha main x" ""
comp_eq "kpa-run: files after --" "kpa-run --root $R org.example.alpha main -- no" "notes.txt"
comp_eq "an empty store offers nothing" "kpa-run --root $T/nostore " ""
comp_eq "kpa-run --status offers installed applications (an instance by name)" \
    "kpa-run --root $R --status org.example.a" "org.example.alpha"
comp_eq "kpa-run --logs too" "kpa-run --root $R --logs " "org.example.alpha org.example.beta"
COMP_KPA_ROOT=$R comp_eq "\$KPA_ROOT is the store when no --root is given" \
    "kpa-install --remove org.example.al" "org.example.alpha"

# handle specs: NAME=KIND:..., completed across '=' and ':'
comp_eq "kpa-run --handle kinds" "kpa-run --handle cfg=li" "listen:tcp: listen:unix:"
comp_eq "kpa-run --handle file: paths" "kpa-run --handle cfg=file:no" "notes.txt"
done_testing
