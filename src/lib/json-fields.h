/* json-fields.h: strict reading of JSON documents into C structures, with
 * field tables and errors of the form "FILE: PATH: what is wrong" (PATH in
 * the notation of json-strict.h; left out at the top level). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util.h"

#define JSON_QUOTE_MAX 80 /* bytes of a value quoted in a message */

/* What a reader is about: the file named in messages, flags of the format's
 * own, and where errors go. */
struct json_ctx {
        const char *file;
        unsigned flags;
        kpa_error *err;
};

/* Strict scan (json-strict.c, at most MAX_SIZE bytes), then json-c. *OUT
 * owns the tree; NULL for a top-level JSON null. */
int json_parse_tree(const struct json_ctx *c, const char *json, size_t len, size_t max_size,
                    json_object **out);
static inline void json_object_putp(json_object **o)
{
        if (*o)
                json_object_put(*o);
}

/* Refuse: fill the error with "FILE: PATH: WHAT" and return -EINVAL. */
int json_bad(const struct json_ctx *c, const char *path, const char *fmt, ...) _printf_(3, 4);
/* "a string", "an integer", "null"... for messages. */
const char *json_type_name(json_object *v);
/* "PATH: must be WANT, not TYPE-OF-V". */
int json_wrong_type(const struct json_ctx *c, const char *path, const char *want, json_object *v);
/* Fail unless V has TYPE. */
int json_want_type(const struct json_ctx *c, const char *path, json_object *v, json_type type);
/* Fail unless VALUE is one of the N NAMES; its index goes to *OUT. */
int json_want_enum(const struct json_ctx *c, const char *path, const char *value,
                   const char *const *names, size_t n, int *out);
/* Whether S holds a control character (U+0001-U+001F, U+007F). */
bool json_has_control(const char *s);

/* ---- field tables ---- */

enum json_field_kind { JF_STRING, JF_BOOL, JF_INT, JF_OBJECT, JF_ARRAY };

enum {
        JF_REQUIRED = 1u << 0,
        JF_NONEMPTY = 1u << 1, /* strings: "" is refused */
        JF_TEXT = 1u << 2,     /* strings: control characters allowed (not NUL) */
};

#define JF_NO_STORE SIZE_MAX /* the caller reads this field itself */

/* An extra rule for a string field; PATH names it. */
typedef int (*json_string_check)(const struct json_ctx *c, const char *path, const char *value);

struct json_field {
        const char *key;
        enum json_field_kind kind;
        unsigned flags;
        size_t offset; /* of a char *, bool or int64_t in the target struct */
        json_string_check check;
};

/* Fail when OBJ (at PATH) has a key that FIELDS does not list. */
int json_check_unknown_keys(const struct json_ctx *c, json_object *obj, const char *path,
                            const struct json_field *fields, size_t n);
/* Check OBJ (at PATH) against FIELDS: no unknown keys, required keys
 * present, types right, strings as the flags say; store each field that has
 * an offset into BASE (strings are copied). */
int json_read_fields(const struct json_ctx *c, json_object *obj, const char *path,
                     const struct json_field *fields, size_t n, void *base);
/* The value of KEY in OBJ; NULL when absent (or a JSON null). */
json_object *json_member(json_object *obj, const char *key);
/* Of two spellings of one key, the one OBJ uses in *OUT (NULL: neither);
 * both at once are refused. */
int json_pick_spelling(const struct json_ctx *c, json_object *obj, const char *path,
                       const char *key, const char *variant, const char **out);
