/* version.c: the order of package versions, as dpkg orders Debian versions
 * ([EPOCH:]UPSTREAM[-REVISION]; '~' sorts before everything, even the end
 * of the string, so 1.0~rc1 < 1.0), then the build number in the same
 * order. Install uses it to tell an upgrade from a downgrade. Written from
 * deb-version(7)'s description of the algorithm. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "kpa/package.h"

/* The weight of one non-digit character: '~' below the end of the string,
 * letters next, then every other character. */
static int weight(char c)
{
        if (c == '~')
                return -1;
        if (c == '\0')
                return 0;
        if (isalpha((unsigned char)c))
                return (unsigned char)c;
        return (unsigned char)c + 256;
}

/* Compare two digit-free-then-digit runs alternately, as deb-version(7)
 * says: non-digit parts by weight, digit parts as numbers. A and B end at
 * their '\0' or at END_A/END_B. */
static int compare_part(const char *a, const char *end_a, const char *b, const char *end_b)
{
        while (a < end_a || b < end_b) {
                while ((a < end_a && !isdigit((unsigned char)*a)) ||
                       (b < end_b && !isdigit((unsigned char)*b))) {
                        int wa = a < end_a ? weight(*a) : weight('\0');
                        int wb = b < end_b ? weight(*b) : weight('\0');
                        if (wa != wb)
                                return wa < wb ? -1 : 1;
                        a++, b++;
                }
                while (a < end_a && *a == '0')
                        a++;
                while (b < end_b && *b == '0')
                        b++;
                int first_difference = 0;
                while (a < end_a && b < end_b && isdigit((unsigned char)*a) &&
                       isdigit((unsigned char)*b)) {
                        if (!first_difference)
                                first_difference = *a - *b;
                        a++, b++;
                }
                /* the longer number (without leading zeros) is the larger */
                if (a < end_a && isdigit((unsigned char)*a))
                        return 1;
                if (b < end_b && isdigit((unsigned char)*b))
                        return -1;
                if (first_difference)
                        return first_difference < 0 ? -1 : 1;
        }
        return 0;
}

typedef struct version_parts {
        unsigned long epoch;
        const char *upstream, *upstream_end, *revision, *revision_end;
} version_parts;

static void split(const char *v, version_parts *p)
{
        const char *colon = strchr(v, ':');
        p->epoch = 0;
        if (colon) {
                const char *d = v;
                while (d < colon && isdigit((unsigned char)*d))
                        d++;
                if (d == colon && d > v) { /* only digits before the ':': an epoch */
                        p->epoch = strtoul(v, NULL, 10);
                        v = colon + 1;
                }
        }
        const char *dash = strrchr(v, '-');
        p->upstream = v;
        p->upstream_end = dash ? dash : v + strlen(v);
        p->revision = dash ? dash + 1 : v + strlen(v);
        p->revision_end = p->revision + strlen(p->revision);
}

int kpa_version_compare(const char *a, const char *b)
{
        version_parts pa, pb;
        split(a ? a : "", &pa);
        split(b ? b : "", &pb);
        if (pa.epoch != pb.epoch)
                return pa.epoch < pb.epoch ? -1 : 1;
        int c = compare_part(pa.upstream, pa.upstream_end, pb.upstream, pb.upstream_end);
        if (c)
                return c;
        return compare_part(pa.revision, pa.revision_end, pb.revision, pb.revision_end);
}

int kpa_package_version_compare(const char *version_a, const char *build_a, const char *version_b,
                                const char *build_b)
{
        int c = kpa_version_compare(version_a, version_b);
        return c ? c : kpa_version_compare(build_a, build_b);
}
