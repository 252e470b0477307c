/* cli.c: shared behaviour of the kpa command-line tools. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const char *program = "kpa";

void cli_init(const char *program_name)
{
        const char *slash = strrchr(program_name, '/');
        program = slash ? slash + 1 : program_name;
        /* libtool's uninstalled wrappers run "lt-NAME" */
        if (strncmp(program, "lt-", 3) == 0)
                program += 3;
}

const char *cli_program(void) { return program; }

void cli_error(const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "%s: ", program);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

void cli_report(const kpa_error *err)
{
        if (err->message[0])
                fprintf(stderr, "%s: %s\n", program, err->message);
        else
                fprintf(stderr, "%s: %s\n", program, strerror(err->code ? err->code : EIO));
}

int cli_usage_error(const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "%s: ", program);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry '%s --help' for more information.\n", program);
        return EXIT_USAGE;
}

int cli_parse_options(int argc, char **argv, const char *shortopts,
                      const struct option *longopts, cli_option_fn handle)
{
        char spec[128];
        bool plus = shortopts[0] == '+';
        snprintf(spec, sizeof(spec), "%s:%s", plus ? "+" : "", shortopts + plus);
        opterr = 0;
        int c;
        while ((c = getopt_long(argc, argv, spec, longopts, NULL)) != -1) {
                if (c == ':')
                        return cli_usage_error("%s needs an argument", argv[optind - 1]);
                if (c == '?') {
                        if (optopt)
                                return cli_usage_error("unknown option -%c", optopt);
                        return cli_usage_error("unknown or incomplete option %s",
                                               argv[optind - 1]);
                }
                int r = handle(c, optarg);
                if (r)
                        return r;
        }
        return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
        if (!s || !*s || *s == '-')
                return -EINVAL;
        errno = 0;
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s)
                return -EINVAL;
        unsigned shift = 0;
        if (*end) {
                switch (*end) {
                case 'k': case 'K': shift = 10; break;
                case 'm': case 'M': shift = 20; break;
                case 'g': case 'G': shift = 30; break;
                case 't': case 'T': shift = 40; break;
                default: return -EINVAL;
                }
                end++;
                if (*end == 'i' || *end == 'B')
                        end++;
                if (*end == 'B')
                        end++;
                if (*end)
                        return -EINVAL;
        }
        if (shift && v > (UINT64_MAX >> shift))
                return -ERANGE;
        *out = (uint64_t)v << shift;
        return 0;
}

void cli_progress_init(cli_progress *p, const char *label, bool quiet)
{
        p->enabled = !quiet && isatty(STDERR_FILENO);
        p->label = label;
        p->last_permille = -1;
        p->last_done = 0;
}

static void human(uint64_t n, char *buf, size_t len)
{
        if (n >= (1ull << 30))
                snprintf(buf, len, "%.1f GiB", (double)n / (1ull << 30));
        else if (n >= (1ull << 20))
                snprintf(buf, len, "%.1f MiB", (double)n / (1ull << 20));
        else
                snprintf(buf, len, "%.1f KiB", (double)n / 1024);
}

void cli_progress_update(uint64_t done, uint64_t total, void *userdata)
{
        cli_progress *p = userdata;
        if (!p || !p->enabled)
                return;
        char d[32], t[32];
        human(done, d, sizeof(d));
        if (total == 0) {
                if (done - p->last_done < (1u << 20))
                        return;
                p->last_done = done;
                fprintf(stderr, "\r%s %s", p->label, d);
                return;
        }
        int permille = (int)(done >= total ? 1000 : done * 1000 / total);
        if (permille == p->last_permille)
                return;
        p->last_permille = permille;
        human(total, t, sizeof(t));
        const int width = 30;
        int filled = permille * width / 1000;
        char bar[64];
        for (int i = 0; i < width; i++)
                bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r%s [%s] %s / %s %3d%%", p->label, bar, d, t, permille / 10);
}

void cli_progress_end(cli_progress *p)
{
        if (p->enabled && (p->last_permille >= 0 || p->last_done > 0))
                fputs("\r\033[K", stderr);
}

/* A tool cannot go on without the memory it asks for: say so and exit. */
static void *cli_checked(void *p)
{
        if (!p) {
                cli_error("out of memory");
                exit(EXIT_FAILURE);
        }
        return p;
}

void *cli_xcalloc(size_t n, size_t size)
{
        return cli_checked(calloc(n ? n : 1, size ? size : 1));
}

void *cli_xrealloc(void *p, size_t n)
{
        return cli_checked(realloc(p, n ? n : 1));
}

char *cli_xstrndup(const char *s, size_t n)
{
        return cli_checked(strndup(s, n));
}

void cli_close_fds(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0) {
                        close(fds[i]);
                        fds[i] = -1;
                }
}

int cli_write_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}
