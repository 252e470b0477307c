/* json-strict.h: a strict pre-scan of JSON text, run before json-c builds a
 * tree, and the JSON path notation shared by every libkpa error message. */
#pragma once

#include <stddef.h>

#include "kpa/error.h"

/* Containers (objects and arrays) may nest this deep, the outermost being 1. */
#define JSON_STRICT_MAX_DEPTH 64

/* Check that the LEN bytes at TEXT (need not be NUL-terminated) are one JSON
 * value per RFC 8259 and more: valid UTF-8 (no overlongs, surrogates or code
 * points above U+10FFFF), no NUL in strings (raw or as \u0000), no lone
 * surrogate escapes, no duplicate object keys, no nesting deeper than
 * JSON_STRICT_MAX_DEPTH, integers within 64-bit signed range.
 * More than MAX_SIZE bytes gives -EFBIG, anything else wrong -EINVAL; ERR then
 * says "PATH: line L, column C: what is wrong" (PATH left out at the top
 * level); callers put the file name in front. */
int json_strict_check(const char *text, size_t len, size_t max_size, kpa_error *err);

/* JSON path notation: "a.b[2].c", keys that are not identifiers written as
 * a["x.y"]; the top level is "". Both return a new string. */
char *json_strict_path_key(const char *parent, const char *key);
char *json_strict_path_index(const char *parent, size_t index);

/* S as a JSON string literal for a message: quoted, control characters
 * escaped, cut after about MAX bytes with "...". Returns a new string. */
char *json_strict_quote(const char *s, size_t max);
