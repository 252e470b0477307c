/* Unit tests for version.c: the dpkg order of versions (deb-version(7)),
 * checked on the cases dpkg's own documentation and common packages give,
 * both ways round, and the package order (version, then buildNumber). */
#include "config.h"

#include "kpa/package.h"
#include "tap.h"

static int sign(int v)
{
        return v < 0 ? -1 : v > 0;
}

int main(void)
{
        static const struct {
                const char *a, *b;
                int order;
        } cases[] = {
                {"1.0", "1.0", 0},
                {"1.0", "2.0", -1},
                {"2.0", "10.0", -1},
                {"1.0~rc1", "1.0", -1},
                {"1.0~rc1", "1.0~rc2", -1},
                {"1.0~~", "1.0~", -1},
                {"1.0", "1.0a", -1},
                {"1.0a", "1.0b", -1},
                {"1.0a", "1.0+", -1},
                {"1.0+", "1.0.1", -1},
                {"1.2.3", "1.2.10", -1},
                {"001", "1", 0},
                {"1.0", "1.00", 0},
                {"1:1.0", "2.0", 1},
                {"0:2.0", "2.0", 0},
                {"2.0-1", "2.0-2", -1},
                {"2.0-1", "2.0", 1},
                {"2.0-10", "2.0-9", 1},
                {"1.0-1~bpo1", "1.0-1", -1},
                {"", "0", 0},
                {"", "a", -1},
                {"1.0.0", "1.0", 1},
                {"9", "10", -1},
                {"1.a", "1.1", -1},
                {"12345678901234567890", "12345678901234567891", -1},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                is(sign(kpa_version_compare(cases[i].a, cases[i].b)), cases[i].order,
                   "\"%s\" vs \"%s\"", cases[i].a, cases[i].b);
                is(sign(kpa_version_compare(cases[i].b, cases[i].a)), -cases[i].order,
                   "\"%s\" vs \"%s\" (the other way round)", cases[i].b, cases[i].a);
        }
        is(sign(kpa_version_compare(NULL, "")), 0, "NULL compares as the empty version");
        is(sign(kpa_package_version_compare("2.0", "1", "1.0", "9")), 1,
           "the version decides before the build number");
        is(sign(kpa_package_version_compare("1.0", "2", "1.0", "10")), -1,
           "an equal version: the build number decides, as a number");
        is(sign(kpa_package_version_compare("1.0", "7", "1.0", "7")), 0, "the same package");
        return tap_done();
}
