#!/bin/bash
# schema.sh: the JSON Schema of the manifest and the C parser agree.
#   manifests/examples/*.json        both accept
#   manifests/bad/schema-*.json      both reject (the schema can express the rule)
#   manifests/bad/semantic-*.json    the parser rejects; JSON Schema cannot
#                                    express the rule (cross-references,
#                                    duplicate keys...), so the schema's verdict
#                                    is only recorded as a comment
# The Python side reads bytes and counts a file that is not UTF-8 or not JSON
# as rejected. Needs python3-jsonschema; skipped without it.
. "$(dirname "$0")/lib.sh"

SCHEMA=$top_srcdir/manifests/schema/manifest.schema.json
CHECK=$top_builddir/tests/unit/manifest-check

"$PYTHON3" -c 'import jsonschema' 2>/dev/null ||
    skip_all "python3 jsonschema module missing (Debian: apt-get install python3-jsonschema)"

examples=("$top_srcdir"/manifests/examples/*.json)
bad=("$top_srcdir"/manifests/bad/*.json)
files=("${examples[@]}" "${bad[@]}")

# Each side prints one line per file, in argument order: "FILE: ok" or
# "FILE: error: WHY".
validate() {
    "$PYTHON3" - "$SCHEMA" "$@" <<'EOF'
import json, sys
import jsonschema

schema = json.load(open(sys.argv[1], encoding="utf-8"))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
validator = cls(schema)
for path in sys.argv[2:]:
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        print("%s: error: not UTF-8 JSON: %s" % (path, str(e).splitlines()[0]))
        continue
    err = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if err is None:
        print("%s: ok" % path)
    else:
        where = "".join("[%d]" % p if isinstance(p, int) else ".%s" % p
                        for p in err.absolute_path) or "(top level)"
        print("%s: error: %s: %s" % (path, where, err.message.replace("\n", " ")[:300]))
EOF
}

check "the schema is a valid JSON Schema" validate
check "there are example manifests" test ${#examples[@]} -ge 3
check "there are bad manifests" test ${#bad[@]} -ge 20

validate "${files[@]}" >"$T/schema.out" 2>"$T/schema.err"
"$CHECK" "${files[@]}" >"$T/parser.out" 2>"$T/parser.err"
mapfile -t schema_lines <"$T/schema.out"
mapfile -t parser_lines <"$T/parser.out"
check_eq "the schema answered for every file" "${#schema_lines[@]}" "${#files[@]}"
check_eq "the parser answered for every file" "${#parser_lines[@]}" "${#files[@]}"
[ -s "$T/schema.err" ] && sed 's/^/# schema: /' "$T/schema.err" | head -20

# verdict LINE FILE: "ok", "error" or "garbled"
verdict() {
    case "$1" in
    "$2: ok") echo ok ;;
    "$2: error: "*) echo error ;;
    *) echo garbled ;;
    esac
}

# expect NAME WANT LINE FILE [NEEDLE]: one TAP line
expect() {
    local got
    got=$(verdict "$3" "$4")
    if [ "$got" = "$2" ] && { [ -z "${5:-}" ] || [[ "$3" == *"$5"* ]]; }; then
        _result 0 "$1"
    else
        _result 1 "$1"
        echo "#   wanted $2${5:+ (mentioning '$5')}, got: ${3:-(nothing)}"
    fi
}

for i in "${!files[@]}"; do
    f=${files[$i]}
    name=${f#"$top_srcdir"/manifests/}
    s=${schema_lines[$i]:-}
    p=${parser_lines[$i]:-}
    case "$name" in
    examples/*)
        expect "$name: schema accepts" ok "$s" "$f"
        expect "$name: parser accepts" ok "$p" "$f"
        ;;
    bad/schema-*)
        expect "$name: schema rejects" error "$s" "$f"
        expect "$name: parser rejects" error "$p" "$f" "error: manifest.json: "
        ;;
    bad/semantic-*)
        expect "$name: parser rejects" error "$p" "$f" "error: manifest.json: "
        echo "# $name: schema says: $(verdict "$s" "$f") (not checked: beyond JSON Schema)"
        ;;
    *)
        _result 1 "$name: named schema-* or semantic-*"
        ;;
    esac
done

done_testing
