/* tap.h: a tiny TAP producer for the C unit tests (one header, no library).
 *   ok(cond, "name %d", i);  is(a, b, "name");  is_str(a, b, "name");
 *   return tap_done();        prints the plan and returns the exit code. */
#ifndef KPA_TAP_H
#define KPA_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

__attribute__((format(printf, 2, 3), unused)) static int ok(int cond, const char *fmt, ...)
{
        va_list ap;
        tap_n++;
        printf("%sok %d - ", cond ? "" : "not ", tap_n);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        if (!cond)
                tap_failed++;
        fflush(stdout);
        return cond;
}

#define is(a, b, ...)                                                                  \
        do {                                                                           \
                long long _a = (long long)(a), _b = (long long)(b);                   \
                if (!ok(_a == _b, __VA_ARGS__))                                        \
                        printf("#   got %lld, expected %lld (%s:%d)\n", _a, _b,       \
                               __FILE__, __LINE__);                                    \
        } while (0)

#define is_str(a, b, ...)                                                              \
        do {                                                                           \
                const char *_a = (a), *_b = (b);                                       \
                if (!ok(_a && _b && strcmp(_a, _b) == 0, __VA_ARGS__))                 \
                        printf("#   got \"%s\", expected \"%s\" (%s:%d)\n",             \
                               _a ? _a : "(null)", _b ? _b : "(null)", __FILE__,       \
                               __LINE__);                                              \
        } while (0)

/* Like is_str, but B need only occur in A. */
#define has_str(a, b, ...)                                                             \
        do {                                                                           \
                const char *_a = (a), *_b = (b);                                       \
                if (!ok(_a && _b && strstr(_a, _b) != NULL, __VA_ARGS__))              \
                        printf("#   \"%s\" does not contain \"%s\" (%s:%d)\n",          \
                               _a ? _a : "(null)", _b ? _b : "(null)", __FILE__,       \
                               __LINE__);                                              \
        } while (0)

__attribute__((unused)) static int tap_done(void)
{
        printf("1..%d\n", tap_n);
        return tap_failed ? 1 : 0;
}

#endif
