/* manifest-locale.c: the locale tables of a manifest and the lookup of
 * "@key@" values in them (the manifestLocale components, files shaped
 * {"LOCALE": {"KEY": "TEXT"}}). The caller reads the files; this file checks
 * them as strictly as the manifest, keeps their texts in the manifest's
 * private data, and picks the best text for a locale. */
#include "config.h"

#include <string.h>

#include "json-fields.h"
#include "json-strict.h"
#include "kpa/manifest.h"
#include "manifest-internal.h"
#include "util.h"

#define LOCALE_NAME_MAX 64

struct locale_entry {
        char *key, *text;
        size_t source; /* index into manifest_priv.sources */
};

struct locale_table {
        char *locale;
        struct locale_entry *entries;
        size_t n_entries;
};

void manifest_priv_free(struct manifest_priv *priv)
{
        if (!priv)
                return;
        free(priv->linux_arch);
        for (size_t i = 0; i < priv->n_tables; i++) {
                for (size_t j = 0; j < priv->tables[i].n_entries; j++) {
                        free(priv->tables[i].entries[j].key);
                        free(priv->tables[i].entries[j].text);
                }
                free(priv->tables[i].entries);
                free(priv->tables[i].locale);
        }
        free(priv->tables);
        for (size_t i = 0; i < priv->n_sources; i++)
                free(priv->sources[i]);
        free(priv->sources);
        free(priv);
}

static bool ascii_caseeq(const char *a, const char *b)
{
        for (; *a && *b; a++, b++) {
                char x = *a, y = *b;
                if (x >= 'A' && x <= 'Z')
                        x = (char)(x + 32);
                if (y >= 'A' && y <= 'Z')
                        y = (char)(y + 32);
                if (x != y)
                        return false;
        }
        return *a == *b;
}

static bool is_alnum(char ch)
{
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static bool valid_locale_name(const char *s)
{
        size_t n = strlen(s);
        if (n < 1 || n > LOCALE_NAME_MAX)
                return false;
        for (; *s; s++)
                if (!is_alnum(*s) && !strchr("_-.@", *s))
                        return false;
        return true;
}

static struct locale_table *find_table(const struct manifest_priv *priv, const char *locale,
                                       bool ignore_case)
{
        for (size_t i = 0; i < priv->n_tables; i++)
                if (ignore_case ? ascii_caseeq(priv->tables[i].locale, locale)
                                : streq(priv->tables[i].locale, locale))
                        return &priv->tables[i];
        return NULL;
}

static const struct locale_entry *find_entry(const struct locale_table *t, const char *key)
{
        for (size_t i = 0; t && i < t->n_entries; i++)
                if (streq(t->entries[i].key, key))
                        return &t->entries[i];
        return NULL;
}

/* Check a whole locale document before anything is added, so that a bad
 * one changes nothing. */
static int check_locale_doc(const struct json_ctx *c, const struct manifest_priv *priv,
                            json_object *root)
{
        json_object_object_foreach (root, locale, table) {
                _cleanup_free_ char *lp = json_strict_path_key("", locale);
                if (!valid_locale_name(locale))
                        return json_bad(c, lp,
                                        "is not a locale name (1-%d letters, digits, '_', "
                                        "'-', '.' or '@', e.g. \"en\" or \"ru_RU\")",
                                        LOCALE_NAME_MAX);
                int r = json_want_type(c, lp, table, json_type_object);
                if (r < 0)
                        return r;
                const struct locale_table *t = find_table(priv, locale, false);
                json_object_object_foreach (table, key, text) {
                        _cleanup_free_ char *p = json_strict_path_key(lp, key);
                        r = json_want_type(c, p, text, json_type_string);
                        if (r < 0)
                                return r;
                        const struct locale_entry *e = find_entry(t, key);
                        if (e)
                                return json_bad(c, p, "is already defined by %s",
                                                priv->sources[e->source]);
                }
        }
        return 0;
}

static void add_entry(struct locale_table *t, const char *key, const char *text, size_t source)
{
        t->entries = kpa_xrealloc(t->entries, (t->n_entries + 1) * sizeof(*t->entries));
        t->entries[t->n_entries++] = (struct locale_entry){
                kpa_xstrdup(key),
                kpa_xstrdup(text),
                source,
        };
}

static void merge_locale_doc(struct manifest_priv *priv, json_object *root, size_t source)
{
        json_object_object_foreach (root, locale, table) {
                struct locale_table *t = find_table(priv, locale, false);
                if (!t) {
                        priv->tables = kpa_xrealloc(priv->tables,
                                                    (priv->n_tables + 1) * sizeof(*priv->tables));
                        t = &priv->tables[priv->n_tables++];
                        *t = (struct locale_table){.locale = kpa_xstrdup(locale)};
                }
                json_object_object_foreach (table, key, text)
                        add_entry(t, key, json_object_get_string(text), source);
        }
}

int kpa_manifest_add_locale(kpa_manifest *m, const char *component_name, const char *json,
                            size_t len, kpa_error *err)
{
        const struct json_ctx c = {component_name ? component_name : "manifestLocale", 0, err};
        _cleanup_(json_object_putp) json_object *root = NULL;
        int r = json_parse_tree(&c, json, len, KPA_MANIFEST_MAX_SIZE, &root);
        if (r < 0)
                return r;
        if (!json_object_is_type(root, json_type_object))
                return json_bad(&c, "",
                                "must be an object of the form {\"LOCALE\": {\"KEY\": \"TEXT\"}}, "
                                "not %s",
                                json_type_name(root));
        if (!m->priv)
                m->priv = kpa_xcalloc(1, sizeof(struct manifest_priv));
        struct manifest_priv *priv = m->priv;
        r = check_locale_doc(&c, priv, root);
        if (r < 0)
                return r;
        priv->sources = kpa_xrealloc(priv->sources, (priv->n_sources + 1) * sizeof(char *));
        priv->sources[priv->n_sources] = kpa_xstrdup(c.file);
        merge_locale_doc(priv, root, priv->n_sources++);
        return 0;
}

static const char *lookup_text(const struct manifest_priv *priv, const char *locale,
                               const char *key)
{
        const struct locale_entry *e = find_entry(find_table(priv, locale, true), key);
        return e ? e->text : NULL;
}

/* The locale asked for, as a list of names to try: "ru_RU.UTF-8" gives
 * "ru_RU", "ru-RU", "ru". Fills CAND (3 buffers), returns how many. */
static size_t locale_candidates(const char *locale, char cand[3][LOCALE_NAME_MAX + 1])
{
        size_t n = strcspn(locale, ".@");
        if (n == 0 || n > LOCALE_NAME_MAX)
                return 0;
        memcpy(cand[0], locale, n);
        cand[0][n] = '\0';
        if (streq(cand[0], "C") || streq(cand[0], "POSIX"))
                return 0;
        memcpy(cand[1], cand[0], n + 1);
        for (char *p = cand[1]; *p; p++)
                *p = (char)(*p == '_' ? '-' : *p == '-' ? '_' : *p);
        size_t lang = strcspn(cand[0], "_-");
        memcpy(cand[2], cand[0], lang);
        cand[2][lang] = '\0';
        return 3;
}

static const char *locale_from_env(void)
{
        static const char *const vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};
        for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
                const char *v = getenv(vars[i]);
                if (v && *v)
                        return v;
        }
        return "";
}

const char *kpa_manifest_localize(const kpa_manifest *m, const char *value, const char *locale)
{
        if (!value)
                return NULL;
        size_t len = strlen(value);
        const struct manifest_priv *priv = m ? m->priv : NULL;
        if (len < 3 || value[0] != '@' || value[len - 1] != '@' || !priv || !priv->n_tables)
                return value;
        _cleanup_free_ char *key = kpa_xasprintf("%.*s", (int)(len - 2), value + 1);
        char cand[3][LOCALE_NAME_MAX + 1];
        size_t n = locale_candidates(locale ? locale : locale_from_env(), cand);
        for (size_t i = 0; i < n; i++) {
                const char *text = lookup_text(priv, cand[i], key);
                if (text)
                        return text;
        }
        const char *text = lookup_text(priv, "en", key);
        for (size_t i = 0; !text && i < priv->n_tables; i++) {
                const struct locale_entry *e = find_entry(&priv->tables[i], key);
                text = e ? e->text : NULL;
        }
        return text ? text : value;
}
