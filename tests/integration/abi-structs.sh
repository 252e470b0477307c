#!/bin/bash
# The public structs can grow (issue 16): every struct that include/kpa
# declares, named or nested, either starts with `size_t struct_size` (the
# library reads and writes only the part it covers, see kpa/error.h) or
# carries a comment "ABI: fixed" on its opening line or the comment just
# before it (a layout that never changes, e.g. 128 token bits). And where
# a growable struct is used, nothing computes its size but the library:
# - no struct embeds a versioned one by value (a field added to it would
#   move the members after it);
# - an array of versioned structs in a struct (T *NAME with a size_t
#   n_NAME) is an array of pointers (T **NAME), or the struct carries its
#   element size (NAME without the "s", "_size": handle_size for handles).
# Read from the headers as text, so a new struct is checked the day it is
# added.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || skip_all "no python3"

report=$(python3 - "$top_srcdir"/include/kpa/*.h <<'PY'
import os, re, sys

structs = []  # (header, name, versioned, fixed, members)
for path in sys.argv[1:]:
    header = "kpa/" + os.path.basename(path)
    lines = open(path).read().split("\n")
    stack = []  # the structs open at this line
    comment_before = ""  # the last comment that ended on the previous line
    in_comment, comment = False, ""
    for n, line in enumerate(lines, 1):
        code = line
        # collect comments (for the marker), drop them from the code
        out, i = "", 0
        this_comment = ""
        while i < len(code):
            if in_comment:
                j = code.find("*/", i)
                if j < 0:
                    comment += code[i:] + " "
                    i = len(code)
                else:
                    comment += code[i:j]
                    this_comment += comment
                    in_comment, i = False, j + 2
            elif code.startswith("/*", i):
                in_comment, comment, i = True, "", i + 2
            else:
                out += code[i]
                i += 1
        if in_comment:
            this_comment += comment
        code = out
        m = re.search(r"\b(?:typedef\s+)?struct\s*(\w*)\s*\{", code)
        if m:
            marker = "ABI: fixed" in (this_comment + " " + comment_before)
            stack.append({"name": m.group(1) or None, "line": n, "fixed": marker,
                          "members": [], "header": header, "depth": 0})
        elif stack and "}" in code:
            s = stack.pop()
            t = re.search(r"\}\s*(\w+)\s*;", code)
            if s["name"] is None:
                s["name"] = (stack[-1]["name"] + "." if stack else "") + (t.group(1) if t else "?")
            structs.append(s)
            if stack:
                stack[-1]["members"].append(("struct", s["name"]))
        elif stack and code.strip().endswith(";"):
            stack[-1]["members"].append(("field", code.strip()))
        # a comment ending on a line without code marks the line after it
        comment_before = this_comment if not in_comment and not code.strip() else ""

versioned = set()
for s in structs:
    first = next((m[1] for m in s["members"]), "")
    s["versioned"] = first == "size_t struct_size;"
    if s["versioned"]:
        versioned.add(s["name"])
known = {s["name"]: s for s in structs}

def member_names(s):
    names = set()
    for kind, f in s["members"]:
        if kind == "field":
            names.update(re.findall(r"(\w+)\s*(?:\[[^]]*\])?\s*[;,]", f))
    return names

# typed arrays: (owner, element type, stars, name, has n_NAME, has its element size)
arrays, sized = [], set()
for s in structs:
    names = member_names(s)
    for kind, f in s["members"]:
        d = re.match(r"(?:const\s+)?(kpa_\w+)\s+(?:const\s+)?(\**)\s*(\w+)\s*;", f)
        if kind != "field" or not d or d.group(1) not in known:
            continue
        t, stars, name = d.groups()
        elem_size = name.rstrip("s") + "_size"
        arrays.append((s, t, stars, name, "n_" + name in names, elem_size, elem_size in names))
        if stars == "*" and "n_" + name in names and elem_size in names:
            sized.add(t)

problems = []
for s in structs:
    if not s["versioned"] and not s["fixed"] and s["name"] not in sized:
        problems.append("%s:%d %s: neither size_t struct_size first, nor an \"ABI: fixed\" "
                        "comment, nor the element of an array with its element size"
                        % (s["header"], s["line"], s["name"]))
for s, t, stars, name, counted, elem_size, has_size in arrays:
    if known[t]["fixed"]:
        continue
    where = "%s:%d %s" % (s["header"], s["line"], s["name"])
    if stars == "":
        problems.append("%s: embeds the growable %s by value (%s)" % (where, t, name))
    elif stars == "*" and counted and not has_size:
        problems.append("%s: %s is an array of the growable %s: neither of pointers nor "
                        "with its element size (%s)" % (where, name, t, elem_size))
print("structs %d versioned %d" % (len(structs), len(versioned)))
for p in problems:
    print(p)
PY
)
count=$(head -n1 <<<"$report")
problems=$(tail -n +2 <<<"$report")
check "the headers' structs were read ($count)" test "$(awk '{print $2}' <<<"$count")" -ge 30
check_eq "every public struct can grow or is marked fixed, and only the library sizes it" \
    "$problems" ""
done_testing
