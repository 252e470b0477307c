/* fuzz-protocol: kpa_request_parse(), the daemon's parser of what untrusted
 * clients send, with attached fds.
 *
 * Input: DATAGRAM, or DATAGRAM '\0' N: N % 4 fds (each a /dev/null) come
 * with the datagram. A request never holds a raw NUL (the parser refuses
 * it), so the split costs nothing. Checked: a refusal has a message and
 * closes every fd; an accepted request owns exactly the fds given, and
 * frees them; an accepted StartProcess, written out again with
 * kpa_request_start(), parses to the same request. */
#include "config.h"

#include <fcntl.h>
#include <string.h>

#include "fuzz.h"
#include "protocol.h"
#include "util.h"

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static void same_start(const kpa_request *a, const kpa_request *b)
{
        const kpa_start_options *x = &a->opts, *y = &b->opts;
        if (!streq(a->package, b->package) || !a->run_config != !b->run_config ||
            (a->run_config && !streq(a->run_config, b->run_config)) ||
            x->n_handles != y->n_handles || x->n_extra_args != y->n_extra_args ||
            x->n_extra_env != y->n_extra_env || x->memory_bytes != y->memory_bytes ||
            x->pids != y->pids || x->cpu_weight != y->cpu_weight || x->network != y->network ||
            x->uid != y->uid || x->gid != y->gid || x->stop_timeout_ms != y->stop_timeout_ms ||
            !x->parent != !y->parent)
                __builtin_trap();
        for (size_t i = 0; i < x->n_handles; i++)
                if (!streq(x->handles[i].name, y->handles[i].name))
                        __builtin_trap();
        for (size_t i = 0; i < x->n_extra_args; i++)
                if (!streq(x->extra_args[i], y->extra_args[i]))
                        __builtin_trap();
        for (size_t i = 0; i < x->n_extra_env; i++)
                if (!streq(x->extra_env[i], y->extra_env[i]))
                        __builtin_trap();
}

/* Write START out again and parse it (with as many fresh fds). */
static void round_trip(const kpa_request *start)
{
        json_object *o = kpa_request_start(start->id, start->package, start->run_config,
                                           &start->opts);
        size_t len = 0;
        const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
        int fds[KPA_MSG_FDS_MAX];
        size_t n = start->opts.n_handles;
        for (size_t i = 0; i < n; i++)
                fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        kpa_request again;
        kpa_error err = {0};
        /* written out, it may pass KPA_MSG_MAX (escapes grow) */
        int r = kpa_request_parse(s, len, fds, n, &again, &err);
        if (r < 0 && !(r == -EMSGSIZE && len > KPA_MSG_MAX))
                __builtin_trap();
        if (r == 0) {
                same_start(start, &again);
                kpa_request_free(&again);
        }
        json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *buf = (const char *)data;
        const char *nul = memchr(buf, '\0', size);
        size_t len = nul ? (size_t)(nul - buf) : size;
        size_t n_fds = nul && len + 1 < size ? (unsigned char)nul[1] % 4 : 0;
        int fds[4], copy[4];
        for (size_t i = 0; i < n_fds; i++)
                copy[i] = fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);

        kpa_request req;
        kpa_error err = {0};
        int r = kpa_request_parse(buf, len, fds, n_fds, &req, &err);
        for (size_t i = 0; i < n_fds; i++)
                if (fds[i] != -1)
                        __builtin_trap(); /* the parser took or closed every fd */
        if (r < 0) {
                if (!err.message[0] || err.code != -r || req.opts.n_handles || req.package)
                        __builtin_trap();
                for (size_t i = 0; i < n_fds; i++)
                        if (fd_open(copy[i]))
                                __builtin_trap(); /* a refusal closes the fds */
                return 0;
        }
        if (req.op == KPA_OP_INVALID || strcmp(kpa_request_op_name(req.op), "Invalid") == 0)
                __builtin_trap();
        if (req.opts.n_handles != n_fds)
                __builtin_trap();
        for (size_t i = 0; i < n_fds; i++)
                if (req.opts.handles[i].fd != copy[i] || !fd_open(copy[i]))
                        __builtin_trap();
        if (req.op == KPA_OP_START)
                round_trip(&req);
        kpa_request_free(&req);
        for (size_t i = 0; i < n_fds; i++)
                if (fd_open(copy[i]))
                        __builtin_trap(); /* freeing the request closes its fds */
        return 0;
}
