/* json-fields.c: strict reading of JSON documents into C structures.
 *
 * A document first passes json-strict.c and then json-c; the reader of a
 * format (manifest.c, and any other strict JSON of libkpa) then describes
 * each object with a table of fields and calls json_read_fields(), which
 * refuses unknown keys, missing required keys, wrong types, empty or
 * control-character strings, and stores what it read. Every refusal is
 * "FILE: PATH: what is wrong". What the values mean is not this file's
 * business. */
#include "config.h"

#include <string.h>

#include "json-fields.h"
#include "json-strict.h"
#include "util.h"

int json_bad(const struct json_ctx *c, const char *path, const char *fmt, ...)
{
        char what[KPA_ERROR_MESSAGE_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        if (path && *path)
                return kpa_error_set(c->err, EINVAL, "%s: %s: %s", c->file, path, what);
        return kpa_error_set(c->err, EINVAL, "%s: %s", c->file, what);
}

const char *json_type_name(json_object *v)
{
        switch (json_object_get_type(v)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "a boolean";
        case json_type_double:
                return "a number with a fraction or exponent";
        case json_type_int:
                return "an integer";
        case json_type_object:
                return "an object";
        case json_type_array:
                return "an array";
        case json_type_string:
                return "a string";
        }
        return "something else";
}

int json_wrong_type(const struct json_ctx *c, const char *path, const char *want, json_object *v)
{
        return json_bad(c, path, "must be %s, not %s", want, json_type_name(v));
}

int json_want_type(const struct json_ctx *c, const char *path, json_object *v, json_type type)
{
        static const char *const names[] = {
                [json_type_boolean] = "a boolean", [json_type_int] = "an integer",
                [json_type_object] = "an object",  [json_type_array] = "an array",
                [json_type_string] = "a string",
        };
        if (json_object_is_type(v, type))
                return 0;
        return json_wrong_type(c, path, names[type], v);
}

bool json_has_control(const char *s)
{
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* Index of S in NAMES, or -1. */
static int lookup_name(const char *const *names, size_t n, const char *s)
{
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], s))
                        return (int)i;
        return -1;
}

int json_want_enum(const struct json_ctx *c, const char *path, const char *value,
                   const char *const *names, size_t n, int *out)
{
        int i = lookup_name(names, n, value);
        if (i >= 0) {
                *out = i;
                return 0;
        }
        char list[256] = "";
        for (size_t j = 0; j < n; j++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"",
                         j == 0       ? ""
                         : j + 1 == n ? " or "
                                      : ", ",
                         names[j]);
        _cleanup_free_ char *q = json_strict_quote(value, JSON_QUOTE_MAX);
        return json_bad(c, path, "must be %s, not %s", list, q);
}

int json_check_unknown_keys(const struct json_ctx *c, json_object *obj, const char *path,
                            const struct json_field *fields, size_t n)
{
        json_object_object_foreach (obj, key, value) {
                (void)value;
                bool known = false;
                for (size_t i = 0; i < n && !known; i++)
                        known = streq(fields[i].key, key);
                if (known)
                        continue;
                char list[512] = "";
                for (size_t i = 0; i < n; i++)
                        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                                 i ? ", " : "", fields[i].key);
                _cleanup_free_ char *p = json_strict_path_key(path, key);
                return json_bad(c, p, "unknown key (known keys here: %s)", list);
        }
        return 0;
}

static int read_string_field(const struct json_ctx *c, const struct json_field *f, json_object *v,
                             const char *path, void *base)
{
        int r = json_want_type(c, path, v, json_type_string);
        if (r < 0)
                return r;
        const char *s = json_object_get_string(v);
        if ((f->flags & JF_NONEMPTY) && !*s)
                return json_bad(c, path, "must not be empty");
        if (!(f->flags & JF_TEXT) && json_has_control(s)) {
                _cleanup_free_ char *q = json_strict_quote(s, JSON_QUOTE_MAX);
                return json_bad(c, path, "%s must not contain control characters", q);
        }
        if (f->check && (r = f->check(c, path, s)) < 0)
                return r;
        if (f->offset != JF_NO_STORE)
                *(char **)((char *)base + f->offset) = kpa_xstrdup(s);
        return 0;
}

static int read_field(const struct json_ctx *c, const struct json_field *f, json_object *v,
                      const char *path, void *base)
{
        static const json_type types[] = {
                [JF_BOOL] = json_type_boolean,
                [JF_INT] = json_type_int,
                [JF_OBJECT] = json_type_object,
                [JF_ARRAY] = json_type_array,
        };
        if (f->kind == JF_STRING)
                return read_string_field(c, f, v, path, base);
        int r = json_want_type(c, path, v, types[f->kind]);
        if (r < 0 || f->offset == JF_NO_STORE)
                return r;
        if (f->kind == JF_BOOL)
                *(bool *)((char *)base + f->offset) = json_object_get_boolean(v);
        else if (f->kind == JF_INT)
                *(int64_t *)((char *)base + f->offset) = json_object_get_int64(v);
        return 0;
}

int json_read_fields(const struct json_ctx *c, json_object *obj, const char *path,
                     const struct json_field *fields, size_t n, void *base)
{
        int r = json_check_unknown_keys(c, obj, path, fields, n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                json_object *v;
                if (!json_object_object_get_ex(obj, fields[i].key, &v)) {
                        if (fields[i].flags & JF_REQUIRED)
                                return json_bad(c, path, "missing required key \"%s\"",
                                                fields[i].key);
                        continue;
                }
                _cleanup_free_ char *p = json_strict_path_key(path, fields[i].key);
                r = read_field(c, &fields[i], v, p, base);
                if (r < 0)
                        return r;
        }
        return 0;
}

json_object *json_member(json_object *obj, const char *key)
{
        json_object *v = NULL;
        return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

int json_pick_spelling(const struct json_ctx *c, json_object *obj, const char *path,
                       const char *key, const char *variant, const char **out)
{
        bool a = json_object_object_get_ex(obj, key, NULL);
        bool b = json_object_object_get_ex(obj, variant, NULL);
        if (a && b) {
                _cleanup_free_ char *p = json_strict_path_key(path, variant);
                return json_bad(c, p,
                                "\"%s\" and \"%s\" are two spellings of one key; use only one", key,
                                variant);
        }
        *out = a ? key : b ? variant : NULL;
        return 0;
}

/* What the valid JSON scalar at the start of JSON is, for a message. */
static const char *scalar_type_name(const char *json, size_t len)
{
        size_t i = 0;
        while (i < len && (json[i] == ' ' || json[i] == '\t' || json[i] == '\r' || json[i] == '\n'))
                i++;
        switch (i < len ? json[i] : 0) {
        case 'n':
                return "null";
        case 't':
        case 'f':
                return "a boolean";
        case '"':
                return "a string";
        default:
                return "a number";
        }
}

int json_parse_tree(const struct json_ctx *c, const char *json, size_t len, size_t max_size,
                    json_object **out)
{
        int r = json_strict_check(json, len, max_size, c->err);
        if (r < 0) {
                if (c->err)
                        kpa_error_prefix(c->err, "%s", c->file);
                return r;
        }
        struct json_tokener *tok = json_tokener_new_ex(JSON_STRICT_MAX_DEPTH + 1);
        if (!tok)
                return kpa_error_set(c->err, ENOMEM, "%s: out of memory", c->file);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        json_object *tree = json_tokener_parse_ex(tok, json, (int)len);
        enum json_tokener_error e = json_tokener_get_error(tok);
        json_tokener_free(tok);
        if (e != json_tokener_success) {
                json_object_put(tree);
                if (e == json_tokener_continue) /* a bare scalar: json-c waits for more */
                        return json_bad(c, "", "must be an object, not %s",
                                        scalar_type_name(json, len));
                return json_bad(c, "", "invalid JSON: %s", json_tokener_error_desc(e));
        }
        *out = tree;
        return 0;
}
