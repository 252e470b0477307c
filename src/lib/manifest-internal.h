/* manifest-internal.h: what manifest.c and manifest-locale.c share: the
 * private data behind kpa_manifest.priv. Not installed. */
#pragma once

#include <stddef.h>

struct locale_table; /* manifest-locale.c */

struct manifest_priv {
        char *linux_arch; /* NULL: the arch as written, or a static alias */
        struct locale_table *tables;
        size_t n_tables;
        char **sources; /* the component names that added locale data */
        size_t n_sources;
};

/* Free PRIV and everything in it; NULL is fine. */
void manifest_priv_free(struct manifest_priv *priv);
