/* fuzz-manifest: kpa_manifest_parse() with and without
 * KPA_MANIFEST_ALLOW_MISSING_DIGESTS, and kpa_manifest_add_locale().
 *
 * Input: MANIFEST, or MANIFEST '\0' LOCALE. A manifest never holds a raw NUL
 * (the parser refuses it), so the split costs nothing. The locale part is
 * added to the parsed manifest, or, when there is none or it does not parse,
 * to a fixed valid manifest; every "@key@" value is then localized. Without
 * a NUL the whole input is also tried as a locale, so that the manifest seeds
 * (JSON objects) exercise the locale parser too. */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "kpa/manifest.h"
#include "util.h"

static const char fixed_manifest[] =
        "{\"version\": \"2.0\","
        " \"application\": {\"id\": \"org.example.fuzz\", \"name\": \"@app_name@\","
        "  \"version\": \"1.0\", \"buildNumber\": \"1\", \"systemApplication\": false,"
        "  \"description\": \"@app_desc@\"},"
        " \"platform\": {\"id\": \"kpa-linux\","
        "  \"sdk\": {\"buildSdkName\": \"kpa\", \"buildSdkVersion\": \"0.1\", \"targetApiLevel\": 1},"
        "  \"hwSpecification\": {\"arch\": \"x86_64\", \"cpu\": \"\"}},"
        " \"components\": [{\"name\": \"app\", \"componentType\": \"bin\", \"digest\": "
        "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}],"
        " \"runConfigurations\": [{\"id\": \"main\", \"name\": \"@rc_name@\", \"type\": \"gui\","
        "  \"path\": \"bin/app\", \"primary\": true}]}";

static const char *const locales[] = {"ru_RU.UTF-8", "en", "de-DE", "C", "", "x@y.z"};

static void localize_all(const kpa_manifest *m)
{
        for (size_t l = 0; l < ELEMENTSOF(locales); l++) {
                (void)kpa_manifest_localize(m, m->application.name, locales[l]);
                (void)kpa_manifest_localize(m, m->application.description, locales[l]);
                for (size_t i = 0; i < m->n_run_configs; i++)
                        (void)kpa_manifest_localize(m, m->run_configs[i]->name, locales[l]);
        }
}

static void add_locale(kpa_manifest *m, const char *json, size_t len)
{
        kpa_error err = {0}; /* so that an unfilled error shows */
        if (kpa_manifest_add_locale(m, "fuzz.json", json, len, &err) == 0)
                localize_all(m);
        else if (strncmp(err.message, "fuzz.json", 9) != 0)
                __builtin_trap(); /* a refusal must name the component */
}

static kpa_manifest *parse(const char *json, size_t len, unsigned flags)
{
        kpa_manifest *m = NULL;
        kpa_error err = {0};
        int r = kpa_manifest_parse(json, len, flags, &m, &err);
        if ((r == 0) != (m != NULL))
                __builtin_trap(); /* a result and the return value must agree */
        if (r < 0 && strncmp(err.message, "manifest.json: ", 15) != 0)
                __builtin_trap(); /* documented prefix of every refusal */
        if (m) {
                (void)kpa_manifest_primary_run_config(m);
                (void)kpa_manifest_linux_arch(m);
                for (size_t i = 0; i < m->n_components; i++)
                        if (kpa_manifest_find_component(m, m->components[i]->install_path) !=
                            m->components[i])
                                __builtin_trap(); /* install paths are unique */
        }
        return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *json = (const char *)data;
        const char *nul = memchr(json, '\0', size);
        size_t mlen = nul ? (size_t)(nul - json) : size;

        _cleanup_(kpa_manifest_freep) kpa_manifest *strict = parse(json, mlen, 0);
        _cleanup_(kpa_manifest_freep) kpa_manifest *lax =
                parse(json, mlen, KPA_MANIFEST_ALLOW_MISSING_DIGESTS);
        if (strict && !lax)
                __builtin_trap(); /* the flag only ever accepts more */

        const char *loc = nul ? nul + 1 : json;
        size_t loc_len = nul ? size - mlen - 1 : size;
        _cleanup_(kpa_manifest_freep) kpa_manifest *fixed = NULL;
        if (!lax) {
                fixed = parse(fixed_manifest, sizeof(fixed_manifest) - 1, 0);
                if (!fixed)
                        __builtin_trap();
        }
        add_locale(lax ? lax : fixed, loc, loc_len);
        return 0;
}
