/* manifest-cache.c: a store's cache of the installed manifests its starts
 * read (kpa-execd turns it on: store_cache_manifests). A start then
 * skips the read of manifest.json and its locales, the strict JSON scan and
 * the parse, which are most of what a start costs in user space before the
 * clone.
 *
 * An entry is served only while the files it was parsed from are the same:
 * manifest.json and every manifestLocale component, each by device, inode,
 * size, mtime and ctime (one fstatat each per start). An upgrade publishes
 * a new tree, so new inodes; a file rewritten in place gets a new ctime,
 * which no caller can set back. A file whose ctime is within
 * RACY_MS of the read is not cached (its next change could fall into the
 * same timestamp tick, as git's "racily clean" index entries), and a file
 * that changed while it was read is not either. kpa-install's
 * PackageInstalled notice forgets the package's entry at once
 * (store_forget_manifest), so a notified upgrade is never even
 * compared. Without the cache each call loads the manifest afresh.
 *
 * Entries are counted references: a start holds its manifest while it
 * plans, and a start made meanwhile (a usesServices service of the same
 * package) that finds the files changed replaces the entry without freeing
 * the one still held. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kpa/manifest.h"
#include "store-internal.h"
#include "util.h"

#define CACHE_MAX 128 /* packages; past it the least recently used goes */
#define RACY_MS 100

typedef struct file_id {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtim, ctim;
} file_id;

struct manifest_ref {
        kpa_manifest *m;
        unsigned refs;
};

typedef struct cache_entry {
        char *app_id;
        manifest_ref *ref;
        file_id *ids; /* manifest.json, then each manifestLocale component */
        size_t n_ids;
        struct cache_entry *next;
} cache_entry;

struct manifest_cache {
        cache_entry *list; /* most recently used first */
        size_t n;
        unsigned long hits, misses; /* store_manifest_cache_stats */
};

void manifest_ref_put(manifest_ref *ref)
{
        if (!ref || --ref->refs > 0)
                return;
        kpa_manifest_free(ref->m);
        free(ref);
}

static manifest_ref *ref_new(kpa_manifest *m)
{
        manifest_ref *ref = kpa_xcalloc(1, sizeof(*ref));
        ref->m = m;
        ref->refs = 1;
        return ref;
}

static void entry_free(cache_entry *e)
{
        manifest_ref_put(e->ref);
        free(e->app_id);
        free(e->ids);
        free(e);
}

static int stat_id(kpa_store *s, const char *path, file_id *out)
{
        struct stat st;
        if (fstatat(s->root_fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        *out = (file_id){st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
        return 0;
}

static bool same_id(const file_id *a, const file_id *b)
{
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
               a->mtim.tv_sec == b->mtim.tv_sec && a->mtim.tv_nsec == b->mtim.tv_nsec &&
               a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* The identities of APP_ID's manifest files as M names them (M NULL: only
 * manifest.json's, into ids[0]); *N of them. */
static int stat_ids(kpa_store *s, const char *app_id, const kpa_manifest *m, file_id **ids,
                    size_t *n)
{
        size_t max = 1;
        for (size_t k = 0; m && k < m->n_components; k++)
                max += m->components[k]->type == KPA_COMPONENT_MANIFEST_LOCALE;
        _cleanup_free_ file_id *v = kpa_xcalloc(max, sizeof(*v));
        _cleanup_free_ char *path = kpa_xasprintf("apps/%s/manifest.json", app_id);
        int q = stat_id(s, path, &v[0]);
        size_t count = 1;
        for (size_t k = 0; q == 0 && m && k < m->n_components; k++) {
                const kpa_component *c = m->components[k];
                if (c->type != KPA_COMPONENT_MANIFEST_LOCALE)
                        continue;
                free(path);
                path = kpa_xasprintf("apps/%s/%s", app_id, c->install_path);
                q = stat_id(s, path, &v[count]);
                if (q == -ENOENT) { /* a missing locale is no error (load_locales) */
                        v[count] = (file_id){0};
                        q = 0;
                }
                count++;
        }
        if (q < 0)
                return q;
        *ids = TAKE_PTR(v);
        *n = count;
        return 0;
}

static bool ids_equal(const file_id *a, const file_id *b, size_t n)
{
        for (size_t k = 0; k < n; k++)
                if (!same_id(&a[k], &b[k]))
                        return false;
        return true;
}

/* Too recent to trust a later comparison: changed within RACY_MS of now. */
static bool ids_racy(const file_id *ids, size_t n)
{
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        for (size_t k = 0; k < n; k++) {
                int64_t c = (int64_t)ids[k].ctim.tv_sec * 1000 + ids[k].ctim.tv_nsec / 1000000;
                int64_t mt = (int64_t)ids[k].mtim.tv_sec * 1000 + ids[k].mtim.tv_nsec / 1000000;
                if (c > now_ms - RACY_MS || mt > now_ms - RACY_MS)
                        return true;
        }
        return false;
}

void store_cache_manifests(kpa_store *s, bool on)
{
        if (on && !s->manifests) {
                s->manifests = kpa_xcalloc(1, sizeof(*s->manifests));
        } else if (!on && s->manifests) {
                store_forget_manifest(s, NULL);
                free(s->manifests);
                s->manifests = NULL;
        }
}

void store_forget_manifest(kpa_store *s, const char *app_id)
{
        if (!s->manifests)
                return;
        for (cache_entry **pp = &s->manifests->list; *pp;) {
                cache_entry *e = *pp;
                if (app_id && !streq(e->app_id, app_id)) {
                        pp = &e->next;
                        continue;
                }
                *pp = e->next;
                s->manifests->n--;
                entry_free(e);
        }
}

void store_manifest_cache_stats(kpa_store *s, unsigned long *hits, unsigned long *misses)
{
        *hits = s->manifests ? s->manifests->hits : 0;
        *misses = s->manifests ? s->manifests->misses : 0;
}

/* The entry of APP_ID, moved to the front; NULL: none. */
static cache_entry *find_entry(manifest_cache *c, const char *app_id)
{
        for (cache_entry **pp = &c->list; *pp; pp = &(*pp)->next) {
                cache_entry *e = *pp;
                if (!streq(e->app_id, app_id))
                        continue;
                *pp = e->next;
                e->next = c->list;
                c->list = e;
                return e;
        }
        return NULL;
}

static void add_entry(manifest_cache *c, const char *app_id, manifest_ref *ref, file_id *ids,
                      size_t n_ids)
{
        cache_entry *e = kpa_xcalloc(1, sizeof(*e));
        e->app_id = kpa_xstrdup(app_id);
        e->ref = ref;
        ref->refs++;
        e->ids = ids;
        e->n_ids = n_ids;
        e->next = c->list;
        c->list = e;
        if (++c->n <= CACHE_MAX)
                return;
        cache_entry **pp = &c->list;
        while ((*pp)->next)
                pp = &(*pp)->next;
        entry_free(*pp);
        *pp = NULL;
        c->n--;
}

int store_manifest_ref(kpa_store *s, const char *app_id, const kpa_manifest **m, manifest_ref **out,
                       kpa_error *err)
{
        manifest_cache *c = s->manifests;
        if (c) {
                int q = store_check_app_id(app_id, err);
                if (q < 0)
                        return q;
                cache_entry *e = find_entry(c, app_id);
                _cleanup_free_ file_id *now = NULL;
                size_t n = 0;
                if (e && stat_ids(s, app_id, e->ref->m, &now, &n) == 0 && n == e->n_ids &&
                    ids_equal(now, e->ids, n)) {
                        c->hits++;
                        e->ref->refs++;
                        *m = e->ref->m;
                        *out = e->ref;
                        return 0;
                }
                if (e) /* changed behind the cache's back: parsed again below */
                        store_forget_manifest(s, app_id);
                c->misses++;
        }
        _cleanup_free_ file_id *before = NULL;
        size_t n_before = 0;
        bool stable = c && stat_ids(s, app_id, NULL, &before, &n_before) == 0;
        kpa_manifest *loaded = NULL;
        int q = kpa_store_load_manifest(s, app_id, &loaded, err);
        if (q < 0)
                return q;
        manifest_ref *ref = ref_new(loaded);
        /* cached only when manifest.json did not change while it was read,
         * and its files are old enough for a later change to show */
        _cleanup_free_ file_id *after = NULL;
        size_t n_after = 0;
        if (stable && stat_ids(s, app_id, loaded, &after, &n_after) == 0 &&
            same_id(&before[0], &after[0]) && !ids_racy(after, n_after))
                add_entry(c, app_id, ref, TAKE_PTR(after), n_after);
        *m = loaded;
        *out = ref;
        return 0;
}
