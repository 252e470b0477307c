/* cli.h: what every kpa tool does the same way: its name in messages,
 * error printing, and the exit codes (0 success, 1 failure, 2 usage). */
#ifndef KPA_CLI_H
#define KPA_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "kpa/error.h"

#define EXIT_USAGE 2

void cli_init(const char *program_name);
const char *cli_program(void);
/* "PROGRAM: MESSAGE" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "PROGRAM: ERR->message" on stderr. */
void cli_report(const kpa_error *err);
/* A usage error: message, then "Try 'PROGRAM --help'."; returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct option;
/* Handle one parsed option C with argument ARG (NULL if none); return 0 to
 * go on, or an exit code (e.g. the one cli_usage_error() returns) to stop. */
typedef int (*cli_option_fn)(int c, const char *arg);
/* getopt_long() over ARGV with one way of reporting unknown options and
 * missing arguments (usage errors). SHORTOPTS may start with '+'; a ':' is
 * added. Returns 0, or the exit code to stop with; optind is left at the
 * first operand. */
int cli_parse_options(int argc, char **argv, const char *shortopts,
                      const struct option *longopts, cli_option_fn handle);

/* Allocation that exits with "out of memory" instead of returning NULL. */
void *cli_xcalloc(size_t n, size_t size);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrndup(const char *s, size_t n);
/* Write all LEN bytes of BUF to FD (EINTR retried): 0 or -errno. */
int cli_write_all(int fd, const void *buf, size_t len);
/* Close the fds of FDS that are >= 0 and set them to -1. */
void cli_close_fds(int *fds, size_t n);

/* Parse a size with an optional K, M, G or T suffix (powers of 1024). */
int cli_parse_size(const char *s, uint64_t *out);

/* A progress bar on stderr, drawn only when stderr is a terminal. */
typedef struct cli_progress {
        bool enabled;
        const char *label;
        int last_permille;
        uint64_t last_done;
} cli_progress;
void cli_progress_init(cli_progress *p, const char *label, bool quiet);
void cli_progress_update(uint64_t done, uint64_t total, void *userdata); /* a kpa_progress_fn */
void cli_progress_end(cli_progress *p);

#endif
