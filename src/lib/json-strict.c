/* json-strict.c: a strict pre-scan of JSON text before json-c parses it.
 *
 * json-c is lenient where kpa must not be: it keeps the last of duplicate
 * keys, saturates integers that do not fit, and cannot say where in the
 * document a problem is. This scanner walks the text once, in a small
 * recursive descent bounded by JSON_STRICT_MAX_DEPTH, and refuses, naming the
 * JSON path, line and column: invalid syntax, invalid UTF-8, NUL in strings,
 * lone surrogate escapes, duplicate keys, excessive nesting, out-of-range
 * integers. It builds no tree and knows nothing about manifests; it also owns
 * the path notation ("runConfigurations[1].args[0]") that manifest.c uses. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "json-strict.h"
#include "util.h"

/* Keys longer than this are cut in paths, so that paths stay short. */
#define PATH_KEY_MAX 64

/* ---- a growable string ---- */

struct buf {
        char *s;
        size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t extra)
{
        if (b->len + extra + 1 <= b->cap)
                return;
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + extra + 1)
                cap *= 2;
        b->s = kpa_xrealloc(b->s, cap);
        b->cap = cap;
}

static void buf_append(struct buf *b, const void *p, size_t n)
{
        buf_reserve(b, n);
        memcpy(b->s + b->len, p, n);
        b->len += n;
        b->s[b->len] = '\0';
}

static void buf_putc(struct buf *b, char c) { buf_append(b, &c, 1); }
static void buf_puts(struct buf *b, const char *s) { buf_append(b, s, strlen(s)); }

static void buf_truncate(struct buf *b, size_t len)
{
        b->len = len;
        if (b->s)
                b->s[len] = '\0';
}

static void buf_done(struct buf *b) { free(b->s); }

/* ---- path notation and quoting ---- */

static bool is_identifier(const char *s)
{
        if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
                return false;
        for (; *s; s++)
                if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                      (*s >= '0' && *s <= '9')))
                        return false;
        return true;
}

/* Append S quoted and escaped, cut after about MAX bytes (at a character
 * boundary) with "..." inside the quotes. */
static void buf_append_quoted(struct buf *b, const char *s, size_t max)
{
        size_t len = strlen(s), cut = len;
        if (len > max) {
                cut = max;
                while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
                        cut--;
        }
        buf_putc(b, '"');
        for (size_t i = 0; i < cut; i++) {
                unsigned char c = (unsigned char)s[i];
                char esc[8];
                if (c == '"' || c == '\\') {
                        buf_putc(b, '\\');
                        buf_putc(b, (char)c);
                } else if (c == '\n') {
                        buf_puts(b, "\\n");
                } else if (c == '\t') {
                        buf_puts(b, "\\t");
                } else if (c < 0x20 || c == 0x7f) {
                        snprintf(esc, sizeof(esc), "\\u%04x", c);
                        buf_puts(b, esc);
                } else {
                        buf_putc(b, (char)c);
                }
        }
        if (cut < len)
                buf_puts(b, "...");
        buf_putc(b, '"');
}

static void buf_append_path_key(struct buf *b, const char *key)
{
        if (is_identifier(key) && strlen(key) <= PATH_KEY_MAX) {
                if (b->len > 0)
                        buf_putc(b, '.');
                buf_puts(b, key);
        } else {
                buf_putc(b, '[');
                buf_append_quoted(b, key, PATH_KEY_MAX);
                buf_putc(b, ']');
        }
}

static void buf_append_path_index(struct buf *b, size_t index)
{
        char tmp[32];
        snprintf(tmp, sizeof(tmp), "[%zu]", index);
        buf_puts(b, tmp);
}

char *json_strict_path_key(const char *parent, const char *key)
{
        struct buf b = {0};
        buf_puts(&b, parent ? parent : "");
        buf_append_path_key(&b, key);
        return b.s;
}

char *json_strict_path_index(const char *parent, size_t index)
{
        struct buf b = {0};
        buf_puts(&b, parent ? parent : "");
        buf_append_path_index(&b, index);
        return b.s;
}

char *json_strict_quote(const char *s, size_t max)
{
        struct buf b = {0};
        buf_append_quoted(&b, s, max);
        return b.s;
}

/* ---- the set of keys of one object ---- */

struct key_entry {
        char *key;
        const unsigned char *pos;
};

struct key_set {
        struct key_entry *slots;
        size_t n, cap;
};

static uint64_t hash_key(const char *s)
{
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return h;
}

static struct key_entry *key_set_slot(struct key_entry *slots, size_t cap, const char *key)
{
        size_t i = (size_t)hash_key(key) & (cap - 1);
        while (slots[i].key && !streq(slots[i].key, key))
                i = (i + 1) & (cap - 1);
        return &slots[i];
}

static void key_set_grow(struct key_set *set)
{
        size_t cap = set->cap ? set->cap * 2 : 16;
        struct key_entry *slots = kpa_xcalloc(cap, sizeof(*slots));
        for (size_t i = 0; i < set->cap; i++)
                if (set->slots[i].key)
                        *key_set_slot(slots, cap, set->slots[i].key) = set->slots[i];
        free(set->slots);
        set->slots = slots;
        set->cap = cap;
}

/* Add KEY seen at POS; when it is there already, return where it was first. */
static const unsigned char *key_set_add(struct key_set *set, const char *key,
                                        const unsigned char *pos)
{
        if ((set->n + 1) * 2 > set->cap)
                key_set_grow(set);
        struct key_entry *e = key_set_slot(set->slots, set->cap, key);
        if (e->key)
                return e->pos;
        e->key = kpa_xstrdup(key);
        e->pos = pos;
        set->n++;
        return NULL;
}

static void key_set_done(struct key_set *set)
{
        for (size_t i = 0; i < set->cap; i++)
                free(set->slots[i].key);
        free(set->slots);
}

/* ---- the scanner ---- */

struct scanner {
        const unsigned char *start, *p, *end;
        unsigned depth;
        struct buf path; /* of the value being scanned */
        struct buf str;  /* the string scanned last, decoded */
        kpa_error *err;
};

static void position(const struct scanner *s, const unsigned char *at, size_t *line, size_t *column)
{
        *line = 1;
        *column = 1;
        for (const unsigned char *q = s->start; q < at && q < s->end; q++) {
                if (*q == '\n') {
                        (*line)++;
                        *column = 1;
                } else if ((*q & 0xC0) != 0x80) {
                        (*column)++;
                }
        }
}

_printf_(3, 4) static int fail(struct scanner *s, const unsigned char *at, const char *fmt, ...)
{
        char what[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        size_t line, column;
        position(s, at, &line, &column);
        return kpa_error_set(s->err, EINVAL, "%s%sline %zu, column %zu: %s",
                             s->path.len ? s->path.s : "", s->path.len ? ": " : "", line, column,
                             what);
}

/* Why the UTF-8 sequence at P is invalid, or NULL with its length in *LEN. */
static const char *utf8_check(const unsigned char *p, const unsigned char *end, size_t *len)
{
        unsigned c = p[0], lo = 0x80, hi = 0xBF;
        size_t n;
        if (c < 0x80) {
                *len = 1;
                return NULL;
        }
        if (c < 0xC0)
                return "a continuation byte without a lead byte";
        if (c < 0xC2)
                return "overlong encoding";
        if (c < 0xE0) {
                n = 2;
        } else if (c < 0xF0) {
                n = 3;
                lo = c == 0xE0 ? 0xA0 : 0x80;
                hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c < 0xF5) {
                n = 4;
                lo = c == 0xF0 ? 0x90 : 0x80;
                hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
                return c < 0xF8 ? "code point above U+10FFFF" : "a byte that never occurs in UTF-8";
        }
        for (size_t i = 1; i < n; i++) {
                if (p + i >= end)
                        return "incomplete sequence at the end of the input";
                unsigned b = p[i];
                if (b < 0x80 || b > 0xBF)
                        return "incomplete sequence (too few continuation bytes)";
                if (i == 1 && (b < lo || b > hi)) {
                        if (c == 0xED)
                                return "UTF-16 surrogate code point";
                        if (c == 0xF4)
                                return "code point above U+10FFFF";
                        return "overlong encoding";
                }
        }
        *len = n;
        return NULL;
}

static int fail_utf8(struct scanner *s, const char *why)
{
        return fail(s, s->p, "invalid UTF-8 (byte 0x%02X): %s", *s->p, why);
}

/* The byte at s->p is not what the grammar wants here. */
static int fail_unexpected(struct scanner *s, const char *expected)
{
        if (s->p >= s->end)
                return fail(s, s->p, "unexpected end of input, expected %s", expected);
        unsigned c = *s->p;
        if (c == 0)
                return fail(s, s->p, "unexpected NUL byte, expected %s", expected);
        if (c >= 0x80) {
                size_t n;
                const char *why = utf8_check(s->p, s->end, &n);
                if (why)
                        return fail_utf8(s, why);
                return fail(s, s->p, "unexpected character '%.*s', expected %s", (int)n,
                            (const char *)s->p, expected);
        }
        if (c < 0x20 || c == 0x7f)
                return fail(s, s->p, "unexpected control character 0x%02X, expected %s", c,
                            expected);
        if (c == '/')
                return fail(s, s->p, "unexpected '/', expected %s (JSON has no comments)",
                            expected);
        if (c == '\'')
                return fail(s, s->p,
                            "unexpected \"'\", expected %s (JSON strings take double "
                            "quotes)",
                            expected);
        return fail(s, s->p, "unexpected '%c', expected %s", c, expected);
}

static void skip_ws(struct scanner *s)
{
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static bool at(const struct scanner *s, char c)
{
        return s->p < s->end && *s->p == (unsigned char)c;
}

static void buf_put_utf8(struct buf *b, uint32_t cp)
{
        char u[4];
        size_t n;
        if (cp < 0x80) {
                u[0] = (char)cp;
                n = 1;
        } else if (cp < 0x800) {
                u[0] = (char)(0xC0 | (cp >> 6));
                u[1] = (char)(0x80 | (cp & 0x3F));
                n = 2;
        } else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | (cp >> 12));
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F));
                n = 3;
        } else {
                u[0] = (char)(0xF0 | (cp >> 18));
                u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (char)(0x80 | (cp & 0x3F));
                n = 4;
        }
        buf_append(b, u, n);
}

static int read_hex4(struct scanner *s, const unsigned char *esc, uint32_t *out)
{
        uint32_t v = 0;
        for (int i = 0; i < 4; i++, s->p++) {
                unsigned c = s->p < s->end ? *s->p : 0;
                if (c >= '0' && c <= '9')
                        v = v * 16 + (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v = v * 16 + (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v = v * 16 + (c - 'A' + 10);
                else
                        return fail(s, esc,
                                    "invalid escape: \\u must be followed by 4 hexadecimal digits");
        }
        *out = v;
        return 0;
}

/* s->p is just after "\u". */
static int scan_unicode_escape(struct scanner *s, const unsigned char *esc)
{
        uint32_t cp, low;
        int r = read_hex4(s, esc, &cp);
        if (r < 0)
                return r;
        if (cp == 0)
                return fail(s, esc, "NUL character (\\u0000) in a string");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail(s, esc, "invalid escape: \\u%04X is a lone low surrogate", cp);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (!(s->end - s->p >= 2 && s->p[0] == '\\' && s->p[1] == 'u'))
                        return fail(s, esc,
                                    "invalid escape: high surrogate \\u%04X is not followed by a "
                                    "low surrogate",
                                    cp);
                s->p += 2;
                r = read_hex4(s, esc, &low);
                if (r < 0)
                        return r;
                if (low < 0xDC00 || low > 0xDFFF)
                        return fail(s, esc,
                                    "invalid escape: high surrogate \\u%04X is not followed by a "
                                    "low surrogate",
                                    cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        buf_put_utf8(&s->str, cp);
        return 0;
}

/* s->p is at a backslash. */
static int scan_escape(struct scanner *s)
{
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const unsigned char *esc = s->p;
        if (s->end - s->p < 2)
                return fail(s, esc, "unterminated string");
        unsigned char c = s->p[1];
        s->p += 2;
        if (c == 'u')
                return scan_unicode_escape(s, esc);
        const char *hit = c ? strchr(from, c) : NULL;
        if (!hit) {
                if (c >= 0x20 && c < 0x7f)
                        return fail(s, esc, "invalid escape '\\%c'", c);
                return fail(s, esc, "invalid escape: '\\' followed by byte 0x%02X", c);
        }
        buf_putc(&s->str, to[hit - from]);
        return 0;
}

/* s->p is at the opening quote; the decoded text goes to s->str. */
static int scan_string(struct scanner *s)
{
        const unsigned char *open = s->p++;
        buf_reserve(&s->str, 0);
        buf_truncate(&s->str, 0);
        for (;;) {
                if (s->p >= s->end)
                        return fail(s, open, "unterminated string");
                unsigned c = *s->p;
                if (c == '"') {
                        s->p++;
                        return 0;
                }
                if (c == '\\') {
                        int r = scan_escape(s);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (c == 0)
                        return fail(s, s->p, "NUL byte in a string");
                if (c < 0x20)
                        return fail(
                                s, s->p,
                                "control character 0x%02X in a string must be written as an escape",
                                c);
                size_t n = 1;
                if (c >= 0x80) {
                        const char *why = utf8_check(s->p, s->end, &n);
                        if (why)
                                return fail_utf8(s, why);
                }
                buf_append(&s->str, s->p, n);
                s->p += n;
        }
}

static bool is_digit(const struct scanner *s)
{
        return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

/* An integer must fit in int64_t: json-c would silently saturate it. */
static int check_integer_range(struct scanner *s, const unsigned char *num,
                               const unsigned char *end)
{
        bool neg = *num == '-';
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
        for (const unsigned char *q = num + neg; q < end; q++) {
                unsigned d = *q - '0';
                if (v > (limit - d) / 10)
                        return fail(s, num, "integer %.*s%s is out of range (64-bit signed)",
                                    (int)(end - num > 40 ? 40 : end - num), (const char *)num,
                                    end - num > 40 ? "..." : "");
                v = v * 10 + d;
        }
        return 0;
}

static int scan_number(struct scanner *s)
{
        const unsigned char *num = s->p;
        bool integer = true;
        if (at(s, '-'))
                s->p++;
        if (!is_digit(s))
                return fail(s, num, "invalid number: '-' must be followed by a digit");
        if (at(s, '0')) {
                s->p++;
                if (is_digit(s))
                        return fail(s, num, "invalid number: leading zeros are not allowed");
        } else {
                while (is_digit(s))
                        s->p++;
        }
        const unsigned char *int_end = s->p;
        if (at(s, '.')) {
                s->p++;
                integer = false;
                if (!is_digit(s))
                        return fail(s, num, "invalid number: a digit must follow '.'");
                while (is_digit(s))
                        s->p++;
        }
        if (at(s, 'e') || at(s, 'E')) {
                s->p++;
                integer = false;
                if (at(s, '+') || at(s, '-'))
                        s->p++;
                if (!is_digit(s))
                        return fail(s, num, "invalid number: a digit must follow the exponent");
                while (is_digit(s))
                        s->p++;
        }
        return integer ? check_integer_range(s, num, int_end) : 0;
}

static int scan_literal(struct scanner *s, const char *word)
{
        size_t n = strlen(word);
        if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
                return fail(s, s->p, "invalid literal, expected %s", word);
        s->p += n;
        return 0;
}

static int scan_value(struct scanner *s);

/* After a ',': whether CLOSE comes next (s->p is left at it). */
static bool trailing_comma(struct scanner *s, char close)
{
        skip_ws(s);
        return at(s, close);
}

static int scan_member(struct scanner *s, struct key_set *keys)
{
        if (!at(s, '"'))
                return fail_unexpected(s, "a string (an object key)");
        const unsigned char *key_pos = s->p;
        int r = scan_string(s);
        if (r < 0)
                return r;
        buf_append_path_key(&s->path, s->str.s);
        const unsigned char *first = key_set_add(keys, s->str.s, key_pos);
        if (first) {
                size_t line, column;
                position(s, first, &line, &column);
                return fail(s, key_pos, "duplicate key (first at line %zu, column %zu)", line,
                            column);
        }
        skip_ws(s);
        if (!at(s, ':'))
                return fail_unexpected(s, "':' after an object key");
        s->p++;
        return scan_value(s);
}

static int scan_object(struct scanner *s)
{
        _cleanup_(key_set_done) struct key_set keys = {0};
        size_t base = s->path.len;
        s->p++;
        skip_ws(s);
        if (at(s, '}')) {
                s->p++;
                return 0;
        }
        for (;;) {
                skip_ws(s);
                int r = scan_member(s, &keys);
                if (r < 0)
                        return r;
                skip_ws(s);
                if (at(s, ',')) {
                        s->p++;
                        if (trailing_comma(s, '}'))
                                return fail(s, s->p,
                                            "a ',' before '}': JSON allows no trailing commas");
                } else if (at(s, '}')) {
                        s->p++;
                        buf_truncate(&s->path, base);
                        return 0;
                } else {
                        return fail_unexpected(s, "',' or '}' after an object member");
                }
                buf_truncate(&s->path, base);
        }
}

static int scan_array(struct scanner *s)
{
        size_t base = s->path.len;
        s->p++;
        skip_ws(s);
        if (at(s, ']')) {
                s->p++;
                return 0;
        }
        for (size_t i = 0;; i++) {
                buf_append_path_index(&s->path, i);
                int r = scan_value(s);
                if (r < 0)
                        return r;
                skip_ws(s);
                if (at(s, ',')) {
                        s->p++;
                        if (trailing_comma(s, ']'))
                                return fail(s, s->p,
                                            "a ',' before ']': JSON allows no trailing commas");
                } else if (at(s, ']')) {
                        s->p++;
                        buf_truncate(&s->path, base);
                        return 0;
                } else {
                        return fail_unexpected(s, "',' or ']' after an array element");
                }
                buf_truncate(&s->path, base);
        }
}

static int scan_container(struct scanner *s, bool object)
{
        if (s->depth >= JSON_STRICT_MAX_DEPTH)
                return fail(s, s->p, "nesting deeper than %d levels", JSON_STRICT_MAX_DEPTH);
        s->depth++;
        int r = object ? scan_object(s) : scan_array(s);
        s->depth--;
        return r;
}

static int scan_value(struct scanner *s)
{
        skip_ws(s);
        if (s->p >= s->end)
                return fail_unexpected(s, "a value");
        switch (*s->p) {
        case '{':
                return scan_container(s, true);
        case '[':
                return scan_container(s, false);
        case '"':
                return scan_string(s);
        case 't':
                return scan_literal(s, "true");
        case 'f':
                return scan_literal(s, "false");
        case 'n':
                return scan_literal(s, "null");
        case '-':
        case '0' ... '9':
                return scan_number(s);
        default:
                return fail_unexpected(s, "a value");
        }
}

static void scanner_done(struct scanner *s)
{
        buf_done(&s->path);
        buf_done(&s->str);
}

int json_strict_check(const char *text, size_t len, size_t max_size, kpa_error *err)
{
        if (len > max_size)
                return kpa_error_set(err, EFBIG, "too large: %zu bytes, the limit is %zu bytes",
                                     len, max_size);
        _cleanup_(scanner_done) struct scanner s = {
                .start = (const unsigned char *)text,
                .p = (const unsigned char *)text,
                .end = (const unsigned char *)text + len,
                .err = err,
        };
        if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
                return fail(&s, s.p,
                            "starts with a byte order mark (U+FEFF), which JSON does not allow");
        skip_ws(&s);
        if (s.p >= s.end)
                return fail(&s, s.p, "empty document, expected a JSON value");
        int r = scan_value(&s);
        if (r < 0)
                return r;
        skip_ws(&s);
        if (s.p < s.end)
                return fail_unexpected(&s, "the end of the document");
        return 0;
}
