/* Unit tests for protocol.c and client.c: requests of every op written and
 * parsed again, every kind of malformed request (and that none leaks an
 * fd), datagrams with fds over a socketpair, replies and process contexts,
 * and the client against a small fake kpa-execd in a child process. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "client.h"
#include "protocol.h"
#include "tap.h"
#include "util.h"

/* what the last failed call of kpa/process.h said */
static kpa_error call_err;

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;
        if (!d)
                return -1;
        while (readdir(d))
                n++;
        closedir(d);
        return n - 3; /* ., .. and the DIR's own fd */
}

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

static int parse_str(const char *s, int *fds, size_t n_fds, kpa_request *req, kpa_error *err)
{
        return kpa_request_parse(s, strlen(s), fds, n_fds, req, err);
}

static int parse_obj(json_object *o, int *fds, size_t n_fds, kpa_request *req, kpa_error *err)
{
        int r = parse_str(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), fds, n_fds,
                          req, err);
        json_object_put(o);
        return r;
}

static void tok(kpa_token *t, uint8_t b)
{
        memset(t->bytes, b, sizeof(t->bytes));
}

/* ---- round trips ---- */

static void test_simple_ops(void)
{
        static const kpa_request_op ops[] = {KPA_OP_VERSION, KPA_OP_LIST, KPA_OP_SUBSCRIBE,
                                             KPA_OP_STOP_ALL};
        for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                kpa_request req;
                kpa_error err;
                int r = parse_obj(kpa_request_new(ops[i], 100 + (int64_t)i), NULL, 0, &req, &err);
                is(r, 0, "%s round trip", kpa_request_op_name(ops[i]));
                is(req.op, ops[i], "%s: op", kpa_request_op_name(ops[i]));
                is(req.id, 100 + (int64_t)i, "%s: id", kpa_request_op_name(ops[i]));
                kpa_request_free(&req);
        }

        kpa_token t;
        char ts[KPA_TOKEN_STRING_MAX];
        tok(&t, 0xab);
        kpa_token_to_string(&t, ts);
        kpa_request req;
        kpa_error err;

        json_object *o = kpa_request_new(KPA_OP_STOP, -5);
        json_object_object_add(o, "token", json_object_new_string(ts));
        json_object_object_add(o, "policy", json_object_new_string("Forced"));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "StopProcess round trip");
        ok(req.has_token && memcmp(&req.token, &t, sizeof(t)) == 0, "StopProcess: token");
        is(req.policy, KPA_STOP_FORCED, "StopProcess: policy");
        is(req.id, -5, "StopProcess: a negative id");
        kpa_request_free(&req);

        o = kpa_request_new(KPA_OP_STOP, 1);
        json_object_object_add(o, "token", json_object_new_string(ts));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "StopProcess without a policy");
        is(req.policy, KPA_STOP_NORMAL, "the default policy is Normal");
        kpa_request_free(&req);

        o = kpa_request_new(KPA_OP_GET_STATE, 2);
        json_object_object_add(o, "token", json_object_new_string(ts));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "GetProcessState round trip");
        ok(req.has_token && memcmp(&req.token, &t, sizeof(t)) == 0, "GetProcessState: token");
        kpa_request_free(&req);

        o = kpa_request_new(KPA_OP_WAIT, 3);
        json_object_object_add(o, "token", json_object_new_string(ts));
        json_object_object_add(o, "timeoutMs", json_object_new_int(1500));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "WaitProcess round trip");
        is(req.timeout_ms, 1500, "WaitProcess: timeoutMs");
        kpa_request_free(&req);

        o = kpa_request_new(KPA_OP_WAIT, 3);
        json_object_object_add(o, "token", json_object_new_string(ts));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "WaitProcess without a timeout");
        is(req.timeout_ms, -1, "no timeout is forever");
        kpa_request_free(&req);

        o = kpa_request_new(KPA_OP_STOP_ALL, 4);
        json_object_object_add(o, "policy", json_object_new_string("Forced"));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "StopAll with a policy");
        is(req.policy, KPA_STOP_FORCED, "StopAll: policy");
        kpa_request_free(&req);

        o = kpa_request_new(KPA_OP_OPEN_LOG, 5);
        json_object_object_add(o, "token", json_object_new_string(ts));
        json_object_object_add(o, "rotated", json_object_new_boolean(1));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "OpenLog round trip");
        ok(req.rotated, "OpenLog: rotated");
        kpa_request_free(&req);

        o = kpa_request_new(KPA_OP_LIST, 7);
        is(parse_obj(o, NULL, 0, &req, &err), 0, "ListProcesses: the first page");
        ok(!req.list_continue, "ListProcesses: not a continuation");
        kpa_request_free(&req);
        o = kpa_request_new(KPA_OP_LIST, 8);
        json_object_object_add(o, "continue", json_object_new_boolean(1));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "ListProcesses: the next page");
        ok(req.list_continue, "ListProcesses: continue");
        kpa_request_free(&req);

        o = kpa_request_new(KPA_OP_FIND, 9);
        json_object_object_add(o, "package", json_object_new_string("org.example.app"));
        json_object_object_add(o, "runConfig", json_object_new_string("main"));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "FindProcesses with a run configuration");
        is_str(req.package, "org.example.app", "FindProcesses: package");
        is_str(req.run_config, "main", "FindProcesses: runConfig");
        kpa_request_free(&req);
        o = kpa_request_new(KPA_OP_FIND, 10);
        is(parse_obj(o, NULL, 0, &req, &err), -EINVAL, "FindProcesses without a package: refused");
        kpa_request_free(&req);

        o = kpa_request_new(KPA_OP_PACKAGE_INSTALLED, 6);
        json_object_object_add(o, "package", json_object_new_string("org.example.app"));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "PackageInstalled round trip");
        is_str(req.package, "org.example.app", "PackageInstalled: package");
        kpa_request_free(&req);

        is(parse_str("{\"op\":\"Version\"}", NULL, 0, &req, &err), 0, "id is optional");
        is(req.id, 0, "the default id is 0");
        kpa_request_free(&req);
}

static void test_start_round_trip(void)
{
        int p1[2], p2[2];
        if (pipe2(p1, O_CLOEXEC) < 0 || pipe2(p2, O_CLOEXEC) < 0)
                return;
        int before = count_fds();
        kpa_token parent;
        tok(&parent, 0x11);
        const char *args[] = {"--flag", "two words", "caf\xc3\xa9"};
        const char *env[] = {"A=1", "B=", "C=x=y"};
        kpa_user_handle handles[] = {{"in", p1[0]}, {"log sink", p2[1]}};
        kpa_start_options o;
        kpa_start_options_init(&o);
        o.parent = &parent;
        o.handles = handles;
        o.n_handles = 2;
        o.extra_args = args;
        o.n_extra_args = 3;
        o.extra_env = env;
        o.n_extra_env = 3;
        o.memory_bytes = 256u << 20;
        o.pids = 64;
        o.cpu_weight = 500;
        o.network = KPA_START_NETWORK_HOST;
        o.uid = 1234;
        o.gid = 5678;
        o.stop_timeout_ms = 2500;
        const kpa_start_bind binds[] = {{"/srv/data", "/data", true}, {"/etc/x:y", "/mnt/x", false}};
        o.binds = binds;
        o.n_binds = 2;
        o.cwd = "/storage/work";
        json_object *j = kpa_request_start(9, "org.example.app", "worker", &o);
        ok(json_object_object_get_ex(j, "handles", NULL), "the handle names are in the JSON");
        int fds[] = {p1[0], p2[1]};
        kpa_request req;
        kpa_error err;
        int r = parse_obj(j, fds, 2, &req, &err);
        is(r, 0, "StartProcess round trip");
        if (r < 0) {
                printf("# %s\n", err.message);
                return;
        }
        is(req.op, KPA_OP_START, "op");
        is(req.id, 9, "id");
        is_str(req.package, "org.example.app", "package");
        is_str(req.run_config, "worker", "runConfig");
        ok(req.opts.parent && memcmp(req.opts.parent, &parent, sizeof(parent)) == 0, "parent");
        is(req.opts.n_handles, 2, "two handles");
        is_str(req.opts.handles[1].name, "log sink", "handle names, in order");
        is(req.opts.handles[0].fd, p1[0], "the first fd goes with the first name");
        is(req.opts.handles[1].fd, p2[1], "the second fd with the second");
        is(fds[0], -1, "the request took the caller's fds");
        is(req.opts.n_extra_args, 3, "args");
        is_str(req.opts.extra_args[2], "caf\xc3\xa9", "UTF-8 arguments arrive as they were");
        is(req.opts.n_extra_env, 3, "env");
        is_str(req.opts.extra_env[2], "C=x=y", "env entries");
        is(req.opts.memory_bytes, 256u << 20, "memory");
        is(req.opts.pids, 64, "pids");
        is(req.opts.cpu_weight, 500, "cpuWeight");
        is(req.opts.network, KPA_START_NETWORK_HOST, "network");
        is(req.opts.uid, 1234, "uid");
        is(req.opts.gid, 5678, "gid");
        is(req.opts.stop_timeout_ms, 2500, "stopTimeoutMs");
        is(req.opts.stdin_fd, -1, "stdio stays -1");
        is_str(req.opts.cwd, "/storage/work", "cwd");
        is(req.opts.n_binds, 2, "two binds");
        if (req.opts.n_binds == 2) {
                is_str(req.opts.binds[0].host, "/srv/data", "a bind's host path");
                is_str(req.opts.binds[0].inside, "/data", "... and inside path");
                ok(req.opts.binds[0].writable && !req.opts.binds[1].writable, "... and mode");
                is_str(req.opts.binds[1].host, "/etc/x:y", "a host path with ':' as it was");
        }
        kpa_request_free(&req);
        ok(!fd_open(p1[0]) && !fd_open(p2[1]), "kpa_request_free closes the handles' fds");
        close(p1[1]);
        close(p2[0]);
        is(count_fds(), before - 4, "no fd left behind");

        /* the defaults */
        r = parse_obj(kpa_request_start(1, "org.example.app", NULL, NULL), NULL, 0, &req, &err);
        is(r, 0, "a StartProcess with only a package");
        ok(req.run_config == NULL, "no runConfig: the primary one");
        ok(req.opts.parent == NULL, "no parent");
        is(req.opts.uid, (uid_t)-1, "uid -1: the package's own");
        is(req.opts.stop_timeout_ms, 10000, "the default stop timeout");
        is(req.opts.network, KPA_START_NETWORK_DEFAULT, "the default network");
        kpa_request_free(&req);
}

/* ---- malformed requests ---- */

struct bad {
        const char *json;
        size_t n_fds;
        int code;
        const char *needle;
};

static const struct bad bad_requests[] = {
        {"{\"op\":\"Version\"", 0, EBADMSG, "invalid JSON"},
        {"", 0, EBADMSG, "invalid JSON"},
        {"{\"op\":\"Version\",\"op\":\"Version\"}", 0, EBADMSG, "op"},
        {"{\"op\":\"Version\"}x", 1, EBADMSG, "invalid JSON"},
        {"[{\"op\":\"Version\"}]", 1, EINVAL, "must be a JSON object, not an array"},
        {"\"Version\"", 0, EINVAL, "must be a JSON object"},
        {"42", 0, EINVAL, "must be a JSON object"},
        {"null", 0, EINVAL, "must be a JSON object"},
        {"{}", 0, EINVAL, "missing required key \"op\""},
        {"{\"op\":\"Format\"}", 0, EINVAL, "op: must be \"Version\""},
        {"{\"op\":7}", 0, EINVAL, "op: must be a string"},
        {"{\"op\":\"Version\",\"id\":\"7\"}", 0, EINVAL, "id: must be an integer"},
        {"{\"op\":\"Version\",\"id\":1.5}", 0, EINVAL, "id: must be an integer"},
        {"{\"op\":\"Version\",\"continue\":true}", 0, EINVAL, "continue"},
        {"{\"op\":\"ListProcesses\",\"continue\":1}", 0, EINVAL, "continue: must be a boolean"},
        {"{\"op\":\"Version\",\"extra\":1}", 0, EINVAL, "extra: unknown key"},
        {"{\"op\":\"Version\",\"token\":\"00000000000000000000000000000000\"}", 0, EINVAL,
         "token: unknown key"},
        {"{\"op\":\"Version\"}", 2, EINVAL, "only StartProcess takes any"},
        {"{\"op\":\"StopProcess\"}", 0, EINVAL, "missing required key \"token\""},
        {"{\"op\":\"StopProcess\",\"token\":5}", 0, EINVAL, "token: must be a string"},
        {"{\"op\":\"StopProcess\",\"token\":\"xyz\"}", 0, EINVAL, "token: \"xyz\" is not a token"},
        {"{\"op\":\"StopProcess\",\"token\":\"ABABABABABABABABABABABABABABABAB\"}", 0, EINVAL,
         "is not a token"},
        {"{\"op\":\"StopProcess\",\"token\":\"abababababababababababababababab\",\"policy\":"
         "\"Gentle\"}",
         0, EINVAL, "policy: must be \"Normal\" or \"Forced\""},
        {"{\"op\":\"WaitProcess\",\"token\":\"abababababababababababababababab\",\"timeoutMs\":"
         "\"1\"}",
         0, EINVAL, "timeoutMs: must be an integer"},
        {"{\"op\":\"WaitProcess\",\"token\":\"abababababababababababababababab\",\"timeoutMs\":-2}",
         0, EINVAL, "timeoutMs: -2 is out of range"},
        {"{\"op\":\"OpenLog\",\"token\":\"abababababababababababababababab\",\"rotated\":1}", 0,
         EINVAL, "rotated: must be a boolean"},
        {"{\"op\":\"StartProcess\"}", 0, EINVAL, "missing required key \"package\""},
        {"{\"op\":\"StartProcess\",\"package\":\"\"}", 0, EINVAL, "package: must not be empty"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\\nb\"}", 0, EINVAL,
         "package: \"a\\nb\" must not contain control characters"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"runConfig\":[]}", 0, EINVAL,
         "runConfig: must be a string"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"args\":\"-v\"}", 0, EINVAL,
         "args: must be an array"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"args\":[\"ok\",3]}", 0, EINVAL,
         "args[1]: must be a string"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"args\":[\"\\u001b[2J\"]}", 0, EINVAL,
         "args[0]: \"\\u001b[2J\" must not contain control characters"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"env\":[\"NOEQUALS\"]}", 0, EINVAL,
         "env[0]: \"NOEQUALS\" is not NAME=VALUE"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"env\":[\"=x\"]}", 0, EINVAL,
         "env[0]: \"=x\" is not NAME=VALUE"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"handles\":[\"a:b\"]}", 1, EINVAL,
         "handles[0]: \"a:b\" is not a handle name"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"handles\":[\"ok\",\"\"]}", 2, EINVAL,
         "handles[1]: \"\" is not a handle name"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"handles\":[\"tab\\there\"]}", 1, EINVAL,
         "handles[0]"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"handles\":[\"caf\\u00e9\"]}", 1, EINVAL,
         "handles[0]"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"handles\":[7]}", 1, EINVAL,
         "handles[0]: must be a string"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"handles\":[\"x\"]}", 2, EINVAL,
         "handles: 1 names for 2 attached file descriptors"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"handles\":[\"x\",\"y\"]}", 1, EINVAL,
         "handles: 2 names for 1 attached"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\"}", 3, EINVAL,
         "handles: 0 names for 3 attached"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"memory\":-1}", 0, EINVAL,
         "memory: -1 is out of range"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"memory\":\"1G\"}", 0, EINVAL,
         "memory: must be an integer"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"cpuWeight\":10001}", 0, EINVAL,
         "cpuWeight: 10001 is out of range"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"uid\":-2}", 0, EINVAL,
         "uid: -2 is out of range"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"gid\":4294967295}", 0, EINVAL,
         "gid: 4294967295 is out of range"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"binds\":[\"/a:/b\"]}", 0, EINVAL,
         "binds[0]: must be an object"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"binds\":[{\"host\":\"/a\"}]}", 0, EINVAL,
         "binds[0]: missing required key \"inside\""},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"binds\":[{\"host\":\"/a\",\"inside\":\"/b\","
         "\"rw\":true}]}",
         0, EINVAL, "rw: unknown key"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"cwd\":\"\"}", 0, EINVAL, "cwd"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"network\":\"bridge\"}", 0, EINVAL,
         "network: must be \"default\", \"none\" or \"host\""},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"parent\":\"nope\"}", 0, EINVAL,
         "parent: \"nope\" is not a token"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"stopTimeoutMs\":true}", 0, EINVAL,
         "stopTimeoutMs: must be an integer"},
        {"{\"op\":\"StartProcess\",\"package\":\"a\",\"timeoutMs\":5}", 0, EINVAL,
         "timeoutMs: unknown key"},
        {"{\"op\":\"PackageInstalled\",\"package\":\"a\",\"handles\":[]}", 0, EINVAL,
         "handles: unknown key"},
};

static void test_bad_requests(void)
{
        int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int before = count_fds();
        for (size_t i = 0; i < ELEMENTSOF(bad_requests); i++) {
                const struct bad *b = &bad_requests[i];
                int fds[4];
                for (size_t k = 0; k < b->n_fds; k++)
                        fds[k] = fcntl(devnull, F_DUPFD_CLOEXEC, 0);
                kpa_request req;
                kpa_error err;
                int r = parse_str(b->json, fds, b->n_fds, &req, &err);
                if (!ok(r == -b->code, "refused (%s): %s", strerror(b->code), b->json))
                        printf("#   got %d: %s\n", r, err.message);
                has_str(err.message, b->needle, "  the message names the cause");
                bool closed = true;
                for (size_t k = 0; k < b->n_fds; k++)
                        closed = closed && fds[k] == -1;
                if (b->n_fds)
                        ok(closed, "  every attached fd was closed");
                ok(req.package == NULL && req.opts.n_handles == 0, "  nothing is kept");
        }
        is(count_fds(), before, "no fd leaked by any refusal");

        kpa_request req;
        kpa_error err;
        is(parse_str("{\"id\":42,\"op\":\"Nope\"}", NULL, 0, &req, &err), -EINVAL,
           "an unknown op is refused");
        is(req.id, 42, "the id is kept for the error reply");
        parse_str("{\"op\":\"Nope\",\"id\":43}", NULL, 0, &req, &err);
        is(req.id, 43, "wherever it stands");

        static const char nul[] = "{\"op\":\"Ver\0sion\"}";
        is(kpa_request_parse(nul, sizeof(nul) - 1, NULL, 0, &req, &err), -EBADMSG,
           "a raw NUL is refused");
        is(parse_str("{\"op\":\"Version\",\"x\":\"\\u0000\"}", NULL, 0, &req, &err), -EBADMSG,
           "an escaped NUL is refused");
        is(parse_str("{\"op\":\"Ver\xc0\xafsion\"}", NULL, 0, &req, &err), -EBADMSG,
           "bad UTF-8 is refused");

        /* more than 1024 args */
        json_object *o = kpa_request_new(KPA_OP_START, 1);
        json_object_object_add(o, "package", json_object_new_string("a"));
        json_object *a = json_object_new_array();
        for (int i = 0; i < 1025; i++)
                json_object_array_add(a, json_object_new_string("x"));
        json_object_object_add(o, "args", a);
        is(parse_obj(o, NULL, 0, &req, &err), -EINVAL, "1025 args are refused");
        has_str(err.message, "args: has 1025 entries; at most 1024", "  saying how many");
        o = kpa_request_new(KPA_OP_START, 1);
        json_object_object_add(o, "package", json_object_new_string("a"));
        a = json_object_new_array();
        for (int i = 0; i < 1024; i++)
                json_object_array_add(a, json_object_new_string("x"));
        json_object_object_add(o, "env", json_object_get(a));
        json_object_object_add(o, "args", a);
        for (int i = 0; i < 1024; i++)
                json_object_array_put_idx(a, (size_t)i, json_object_new_string("X=1"));
        is(parse_obj(o, NULL, 0, &req, &err), 0, "1024 args and env entries are fine");
        kpa_request_free(&req);

        /* a handle name of 255 characters passes, 256 do not */
        char name[300];
        memset(name, 'n', 256);
        name[256] = '\0';
        int fd = fcntl(devnull, F_DUPFD_CLOEXEC, 0);
        o = kpa_request_new(KPA_OP_START, 1);
        json_object_object_add(o, "package", json_object_new_string("a"));
        a = json_object_new_array();
        json_object_array_add(a, json_object_new_string(name));
        json_object_object_add(o, "handles", a);
        is(parse_obj(o, &fd, 1, &req, &err), -EINVAL, "a 256-character handle name is refused");
        name[255] = '\0';
        fd = fcntl(devnull, F_DUPFD_CLOEXEC, 0);
        o = kpa_request_new(KPA_OP_START, 1);
        json_object_object_add(o, "package", json_object_new_string("a"));
        a = json_object_new_array();
        json_object_array_add(a, json_object_new_string(name));
        json_object_object_add(o, "handles", a);
        is(parse_obj(o, &fd, 1, &req, &err), 0, "a 255-character one is fine");
        kpa_request_free(&req);

        /* larger than a datagram */
        size_t big = KPA_MSG_MAX + 100;
        char *s = kpa_xmalloc(big + 1);
        int n = snprintf(s, big, "{\"op\":\"Version\",\"x\":\"");
        memset(s + n, 'a', big - (size_t)n - 2);
        memcpy(s + big - 2, "\"}", 3);
        fd = fcntl(devnull, F_DUPFD_CLOEXEC, 0);
        is(kpa_request_parse(s, big, &fd, 1, &req, &err), -EMSGSIZE,
           "a request over KPA_MSG_MAX is refused");
        free(s);
        close(devnull);
        is(count_fds(), before - 1, "no fd leaked");
}

/* ---- replies and contexts ---- */

static void test_replies(void)
{
        kpa_error err;
        json_object *o = kpa_reply_new(7, ENOENT, "org.example.x is not installed");
        is(kpa_reply_error(o, &err), -ENOENT, "an error reply gives -errno");
        is(err.code, ENOENT, "  in the error record");
        is_str(err.message, "org.example.x is not installed", "  with the daemon's message");
        json_object *name;
        ok(json_object_object_get_ex(o, "errorName", &name) &&
                   streq(json_object_get_string(name), "ENOENT"),
           "  errorName is the symbolic name");
        json_object_put(o);

        o = kpa_reply_new(8, 0, NULL);
        is(kpa_reply_error(o, &err), 0, "a good reply gives 0");
        is(err.code, 0, "  and no error");
        ok(!json_object_object_get_ex(o, "errorName", NULL), "  and no errorName");
        json_object_put(o);

        o = kpa_reply_new(9, EACCES, "");
        is(kpa_reply_error(o, &err), -EACCES, "an error without a message");
        is_str(err.message, strerror(EACCES), "  is described by strerror");
        json_object_put(o);

        o = json_tokener_parse("{\"id\":1,\"error\":\"EIO\"}");
        is(kpa_reply_error(o, &err), -EBADMSG, "a malformed error field");
        json_object_put(o);
        o = json_tokener_parse("{\"id\":1,\"error\":-5}");
        is(kpa_reply_error(o, &err), -EBADMSG, "a negative error");
        json_object_put(o);
        is(kpa_reply_error(NULL, &err), -EBADMSG, "no reply at all");
}

static void test_context(void)
{
        kpa_token t, back;
        tok(&t, 0x5a);
        kpa_process_context c = {
                .state = KPA_PROCESS_FAILED,
                .exit_status = KPA_EXIT_UNEXPECTED,
                .exit_code = 11,
                .exit_reason = 0,
                .pid = 4242,
                .cleanup_error = EBUSY,
        };
        snprintf(c.message, sizeof(c.message), "killed by SIGSEGV \"quoted\"\nline");
        snprintf(c.app_id, sizeof(c.app_id), "org.example.app");
        snprintf(c.run_config_id, sizeof(c.run_config_id), "main");
        c.started_at = 1796552273;
        c.restarts = 3;
        c.restart_in_ms = 400;
        c.app_pid = 4243;
        snprintf(c.exit_cause, sizeof(c.exit_cause), "signal");
        c.last_failure.state = KPA_PROCESS_FAILED;
        c.last_failure.exit_status = KPA_EXIT_UNEXPECTED;
        c.last_failure.exit_code = 9;
        snprintf(c.last_failure.exit_cause, sizeof(c.last_failure.exit_cause), "oom");
        snprintf(c.last_failure.message, sizeof(c.last_failure.message), "killed by SIGKILL");
        c.last_failure.at = 1796552270;
        json_object *o = kpa_context_to_json(&t, &c, 1000);
        json_object *owner;
        ok(json_object_object_get_ex(o, "owner", &owner) && json_object_get_int(owner) == 1000,
           "the context names its owner");
        /* through text, as on the wire */
        json_object *wire = json_tokener_parse(json_object_to_json_string(o));
        json_object_put(o);
        kpa_process_context d;
        kpa_process_context_init(&d);
        kpa_error err;
        is(kpa_context_from_json(wire, &back, &d, &err), 0, "a context round trip");
        json_object_put(wire);
        ok(memcmp(&t, &back, sizeof(t)) == 0, "  token");
        is(d.state, KPA_PROCESS_FAILED, "  state");
        is(d.exit_status, KPA_EXIT_UNEXPECTED, "  exitStatus");
        is(d.exit_code, 11, "  exitCode");
        is(d.pid, 4242, "  pid");
        is(d.cleanup_error, EBUSY, "  cleanupError");
        is_str(d.message, c.message, "  message");
        is_str(d.app_id, "org.example.app", "  package");
        is_str(d.run_config_id, "main", "  runConfig");
        ok(d.started_at == 1796552273 && d.restarts == 3 && d.restart_in_ms == 400 &&
                   d.app_pid == 4243,
           "  startedAt, restarts, restartInMs, appPid");
        is_str(d.exit_cause, "signal", "  exitCause");
        ok(d.last_failure.state == KPA_PROCESS_FAILED &&
                   d.last_failure.exit_status == KPA_EXIT_UNEXPECTED &&
                   d.last_failure.exit_code == 9 && d.last_failure.at == 1796552270,
           "  lastFailure: state, exitStatus, exitCode, at");
        is_str(d.last_failure.exit_cause, "oom", "  lastFailure.exitCause");
        is_str(d.last_failure.message, "killed by SIGKILL", "  lastFailure.message");
        c.last_failure.state = KPA_PROCESS_NONE;
        o = kpa_context_to_json(&t, &c, 0);
        ok(!json_object_object_get_ex(o, "lastFailure", NULL), "no failure: no lastFailure");
        json_object_put(o);

        for (int s = KPA_PROCESS_NONE; s <= KPA_PROCESS_NOT_EXISTING; s++) {
                c.state = (kpa_process_state)s;
                o = kpa_context_to_json(&t, &c, 0);
                int r = kpa_context_from_json(o, NULL, &d, &err);
                ok(r == 0 && d.state == c.state, "state %s survives", kpa_process_state_name(c.state));
                json_object_put(o);
        }

        static const char *const bad[] = {
                "{\"state\":\"Running\"}",
                "{\"token\":\"abababababababababababababababab\"}",
                "{\"token\":\"abababababababababababababababab\",\"state\":\"Sleeping\"}",
                "{\"token\":\"abababababababababababababababab\",\"state\":\"Running\","
                "\"pid\":\"1\"}",
                "{\"token\":\"abababababababababababababababab\",\"state\":\"Running\","
                "\"exitStatus\":2}",
                "{\"token\":\"xx\",\"state\":\"Running\"}",
                "{\"token\":\"abababababababababababababababab\",\"state\":\"Running\","
                "\"lastFailure\":[]}",
                "{\"token\":\"abababababababababababababababab\",\"state\":\"Running\","
                "\"lastFailure\":{\"state\":\"Broken\"}}",
                "{\"token\":\"abababababababababababababababab\",\"state\":\"Running\","
                "\"startedAt\":\"now\"}",
                "[]",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                o = json_tokener_parse(bad[i]);
                is(kpa_context_from_json(o, NULL, &d, &err), -EINVAL, "refused context %s",
                   bad[i]);
                json_object_put(o);
        }
        o = json_tokener_parse("{\"token\":\"abababababababababababababababab\",\"state\":"
                               "\"Running\",\"later\":{\"field\":1}}");
        is(kpa_context_from_json(o, NULL, &d, &err), 0,
           "a key added by a newer daemon is ignored");
        json_object_put(o);
}

static void test_socket_path(void)
{
        unsetenv(KPA_EXECD_SOCKET_ENV);
        is_str(kpa_execd_socket_path(NULL), "/run/kpa/execd.sock", "the default socket");
        setenv(KPA_EXECD_SOCKET_ENV, "/tmp/x.sock", 1);
        is_str(kpa_execd_socket_path(NULL), "/tmp/x.sock", "$KPA_EXECD_SOCKET");
        is_str(kpa_execd_socket_path("/a.sock"), "/a.sock", "an explicit path wins");
        setenv(KPA_EXECD_SOCKET_ENV, "", 1);
        is_str(kpa_execd_socket_path(NULL), "/run/kpa/execd.sock", "an empty variable is unset");
        unsetenv(KPA_EXECD_SOCKET_ENV);
}

/* ---- datagrams ---- */

static int send_raw(int sock, const void *buf, size_t len, const int *fds, size_t n_fds)
{
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        ssize_t n = kpa_send_fds(sock, &iov, 1, fds, n_fds);
        return n < 0 ? (int)n : 0;
}

static bool same_file(int a, int b)
{
        struct stat x, y;
        return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_dev == y.st_dev &&
               x.st_ino == y.st_ino;
}

static void test_datagrams(void)
{
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                ok(0, "socketpair: %s", strerror(errno));
                return;
        }
        /* room for a datagram of KPA_MSG_MAX bytes and more */
        int size = 4 * KPA_MSG_MAX;
        setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        setsockopt(sp[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        int before = count_fds();
        char *buf = kpa_xmalloc(KPA_MSG_MAX + 1);
        int fds[KPA_MSG_FDS_MAX];
        size_t n_fds = 99;

        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return;
        json_object *o = kpa_request_new(KPA_OP_VERSION, 77);
        is(kpa_msg_send(sp[0], o, p, 2), 0, "a message with two fds is sent");
        ssize_t n = kpa_msg_recv(sp[1], buf, fds, 4, &n_fds);
        is_str(n > 0 ? buf : "", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
               "the JSON arrives");
        is(n, (ssize_t)strlen(buf), "the length is returned");
        is(n_fds, 2, "two fds arrive");
        ok(n_fds == 2 && same_file(fds[0], p[0]) && same_file(fds[1], p[1]), "  in order");
        ok(n_fds == 2 && (fcntl(fds[0], F_GETFD) & FD_CLOEXEC) &&
                   (fcntl(fds[1], F_GETFD) & FD_CLOEXEC),
           "  close-on-exec");
        if (n_fds == 2) {
                close(fds[0]);
                close(fds[1]);
        }
        json_object_put(o);

        o = kpa_request_new(KPA_OP_LIST, 1);
        is(kpa_msg_send(sp[0], o, NULL, 0), 0, "a message without fds");
        n = kpa_msg_recv(sp[1], buf, NULL, 0, NULL);
        ok(n > 0, "is received with no room for fds");
        json_object_put(o);

        /* exactly KPA_MSG_MAX bytes pass; one more does not */
        char *big = kpa_xmalloc(KPA_MSG_MAX + 2);
        memset(big, ' ', KPA_MSG_MAX + 1);
        big[0] = '{';
        big[KPA_MSG_MAX - 1] = '}';
        is(send_raw(sp[0], big, KPA_MSG_MAX, NULL, 0), 0, "a datagram of KPA_MSG_MAX bytes");
        is(kpa_msg_recv(sp[1], buf, fds, 4, &n_fds), KPA_MSG_MAX, "  is received whole");
        is(send_raw(sp[0], big, KPA_MSG_MAX + 1, p, 2), 0, "a datagram one byte longer, with fds");
        is(kpa_msg_recv(sp[1], buf, fds, 4, &n_fds), -EMSGSIZE, "  gives -EMSGSIZE");
        is(n_fds, 0, "  and no fds");
        is(count_fds(), before + 2, "  whose copies were closed");

        o = json_object_new_object();
        memset(big, 'a', KPA_MSG_MAX + 1);
        big[KPA_MSG_MAX + 1] = '\0';
        json_object_object_add(o, "y", json_object_new_string(big));
        is(kpa_msg_send(sp[0], o, NULL, 0), -EMSGSIZE, "kpa_msg_send refuses a JSON that is too long");
        json_object_put(o);
        free(big);

        /* too many fds */
        for (size_t max = 0; max < 3; max++) {
                int three[3] = {p[0], p[1], p[0]};
                send_raw(sp[0], "{}", 2, three, 3);
                n = kpa_msg_recv(sp[1], buf, fds, max, &n_fds);
                is(n, -EMSGSIZE, "3 fds where %zu are allowed: -EMSGSIZE", max);
                is(count_fds(), before + 2, "  and none leaked");
        }
        int one = p[0];
        send_raw(sp[0], "{}", 2, &one, 1);
        is(kpa_msg_recv(sp[1], buf, NULL, 0, NULL), -EMSGSIZE, "1 fd where none are allowed");
        is(count_fds(), before + 2, "  leaks nothing");

        /* JSON that does not parse */
        send_raw(sp[0], "{\"a\":", 5, p, 1);
        json_object *j = NULL;
        kpa_error err;
        is(kpa_msg_recv_json(sp[1], &j, fds, 4, &n_fds, &err), -EBADMSG,
           "kpa_msg_recv_json: bad JSON is -EBADMSG");
        ok(j == NULL && n_fds == 0, "  with nothing returned");
        is(count_fds(), before + 2, "  and the fd closed");
        send_raw(sp[0], "[1]", 3, NULL, 0);
        is(kpa_msg_recv_json(sp[1], &j, fds, 4, &n_fds, &err), -EBADMSG, "  as is a non-object");
        send_raw(sp[0], "{\"a\":1}", 7, p, 1);
        ok(kpa_msg_recv_json(sp[1], &j, fds, 4, &n_fds, &err) == 7 && j && n_fds == 1,
           "kpa_msg_recv_json: an object with an fd");
        if (n_fds == 1)
                close(fds[0]);
        json_object_put(j);

        /* an empty datagram is not the end */
        send_raw(sp[0], "", 0, NULL, 0);
        is(kpa_msg_recv(sp[1], buf, fds, 4, &n_fds), -EBADMSG, "an empty datagram: -EBADMSG");
        close(sp[0]);
        is(kpa_msg_recv(sp[1], buf, fds, 4, &n_fds), 0, "the end of the stream: 0");
        is(kpa_msg_recv_json(sp[1], &j, fds, 4, &n_fds, &err), 0, "  for kpa_msg_recv_json too");
        close(sp[1]);
        close(p[0]);
        close(p[1]);
        free(buf);
        is(count_fds(), before - 2, "no fd left behind");
}

/* ---- the client against a fake daemon ---- */

static void serve_reply(int c, json_object *reply, const int *fds, size_t n)
{
        kpa_msg_send(c, reply, fds, n);
        json_object_put(reply);
}

static json_object *context(const kpa_token *t, kpa_process_state s, const char *msg)
{
        kpa_process_context ctx = {.state = s, .pid = s == KPA_PROCESS_RUNNING ? 99 : 0};
        snprintf(ctx.app_id, sizeof(ctx.app_id), "org.example.app");
        snprintf(ctx.run_config_id, sizeof(ctx.run_config_id), "main");
        snprintf(ctx.message, sizeof(ctx.message), "%s", msg);
        return kpa_context_to_json(t, &ctx, 0);
}

/* One request of the fake daemon. */
static void serve_one(int c, kpa_request *req, int protocol)
{
        kpa_token t;
        tok(&t, 0x77);
        char ts[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&t, ts);
        json_object *rep = kpa_reply_new(req->id, 0, "");
        switch (req->op) {
        case KPA_OP_VERSION:
                json_object_object_add(rep, "protocol", json_object_new_int(protocol));
                json_object_object_add(rep, "version", json_object_new_string("test"));
                break;
        case KPA_OP_START: {
                /* the handle "in" must be the pipe the client wrote "hello" to */
                char b[8] = "";
                bool good = req->opts.n_handles == 1 && streq(req->opts.handles[0].name, "in") &&
                            read(req->opts.handles[0].fd, b, 5) == 5 && memcmp(b, "hello", 5) == 0;
                if (streq(req->package, "broken")) {
                        json_object_put(rep);
                        rep = kpa_reply_new(req->id, ENOEXEC, "");
                        json_object_object_add(rep, "token", json_object_new_string(ts));
                        json_object_object_add(rep, "process",
                                               context(&t, KPA_PROCESS_FAILED, "bin/app: not an executable"));
                } else if (!good) {
                        json_object_put(rep);
                        rep = kpa_reply_new(req->id, EBADF, "the handle did not arrive");
                } else {
                        json_object_object_add(rep, "token", json_object_new_string(ts));
                        json_object_object_add(rep, "process", context(&t, KPA_PROCESS_RUNNING, ""));
                }
                break;
        }
        case KPA_OP_GET_STATE:
                if (memcmp(&req->token, &t, sizeof(t)) != 0) {
                        json_object_put(rep);
                        rep = kpa_reply_new(req->id, ESRCH, "no such instance");
                        break;
                }
                json_object_object_add(rep, "process", context(&t, KPA_PROCESS_RUNNING, ""));
                break;
        case KPA_OP_WAIT:
                if (req->timeout_ms >= 0) {
                        json_object_put(rep);
                        rep = kpa_reply_new(req->id, ETIMEDOUT, "still running");
                        json_object_object_add(rep, "process", context(&t, KPA_PROCESS_RUNNING, ""));
                } else {
                        json_object_object_add(rep, "process", context(&t, KPA_PROCESS_FINISHED, "exited with code 0"));
                }
                break;
        case KPA_OP_LIST: {
                /* an event first, which the client must skip */
                json_object *ev = json_object_new_object();
                json_object_object_add(ev, "event", json_object_new_string("StateChanged"));
                json_object_object_add(ev, "process", context(&t, KPA_PROCESS_RUNNING, ""));
                serve_reply(c, ev, NULL, 0);
                json_object *a = json_object_new_array();
                json_object_array_add(a, context(&t, KPA_PROCESS_RUNNING, ""));
                kpa_token u;
                tok(&u, 0x78);
                json_object_array_add(a, context(&u, KPA_PROCESS_FINISHED, ""));
                json_object_object_add(rep, "processes", a);
                break;
        }
        case KPA_OP_OPEN_LOG: {
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                json_object_object_add(rep, "path", json_object_new_string("/dev/null"));
                serve_reply(c, rep, &fd, 1);
                close(fd);
                return;
        }
        case KPA_OP_STOP_ALL: /* a reply to another request */
                json_object_object_add(rep, "id", json_object_new_int64(req->id + 1000));
                break;
        default:
                break;
        }
        serve_reply(c, rep, NULL, 0);
}

/* Serve connection C in a child of its own, so that connections may
 * overlap. */
static void serve_connection(int c, int protocol)
{
        pid_t pid = fork();
        if (pid != 0) {
                close(c);
                return;
        }
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (protocol < 0) {
                /* as kpa-execd refuses a connection: say why with id 0 (the
                 * client's first request may come before or after), close */
                serve_reply(c, kpa_reply_new(0, EAGAIN, "too many connections (a test)"), NULL, 0);
                usleep(50000);
                shutdown(c, SHUT_RD);
                char b;
                while (recv(c, &b, 1, MSG_DONTWAIT) > 0)
                        ;
                _exit(0);
        }
        char *buf = kpa_xmalloc(KPA_MSG_MAX + 1);
        int fds[KPA_MSG_FDS_MAX];
        size_t n_fds;
        ssize_t n;
        while ((n = kpa_msg_recv(c, buf, fds, KPA_MSG_FDS_MAX, &n_fds)) > 0) {
                kpa_request req;
                kpa_error err;
                if (kpa_request_parse(buf, (size_t)n, fds, n_fds, &req, &err) < 0) {
                        serve_reply(c, kpa_reply_new(req.id, err.code, err.message), NULL, 0);
                        continue;
                }
                serve_one(c, &req, protocol);
                kpa_request_free(&req);
        }
        free(buf);
        _exit(0);
}

static void fake_daemon(int listener, int protocol)
{
        /* never hold the TAP output open, and never outlive the test */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        dup2(null, STDOUT_FILENO);
        signal(SIGCHLD, SIG_IGN);
        for (;;) {
                int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        _exit(errno == EINTR ? 0 : 1);
                serve_connection(c, protocol);
        }
}

/* A fake daemon listening at PATH in a child; its pid. */
static pid_t start_fake(const char *path, int protocol)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        unlink(path);
        if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 8) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0)
                fake_daemon(l, protocol);
        close(l);
        return pid;
}

static void stop_fake(pid_t pid)
{
        if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
}

static void test_client(void)
{
        char dir[] = "/tmp/kpa-test-protocol.XXXXXX";
        if (!mkdtemp(dir)) {
                ok(0, "mkdtemp");
                return;
        }
        _cleanup_free_ char *path = kpa_xasprintf("%s/execd.sock", dir);
        int before = count_fds();
        kpa_remote *r = NULL;
        kpa_error err;

        is(kpa_remote_connect(path, &r, &err), -ENOENT, "no socket: -ENOENT");
        has_str(err.message, path, "  the message names the socket");
        has_str(err.message, "is kpa-execd running?", "  and says the daemon is not running");

        /* a socket file nobody listens on */
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        bind(l, (struct sockaddr *)&sa, sizeof(sa));
        close(l);
        is(kpa_remote_connect(path, &r, &err), -ECONNREFUSED, "nobody listening: -ECONNREFUSED");
        has_str(err.message, "cannot reach kpa-execd at", "  with the same message");
        has_str(err.message, "systemctl start kpa-execd", "  saying how to start it");

        pid_t pid = start_fake(path, KPA_PROTOCOL_VERSION + 1);
        is(kpa_remote_connect(path, &r, &err), -EPROTO, "a daemon of another protocol");
        has_str(err.message, "speaks protocol 2", "  says which");
        stop_fake(pid);

        pid = start_fake(path, -1);
        is(kpa_remote_connect(path, &r, &err), -EAGAIN, "a daemon that refuses the connection");
        has_str(err.message, "too many connections (a test)", "  says why, in its words");
        stop_fake(pid);

        pid = start_fake(path, KPA_PROTOCOL_VERSION);
        setenv(KPA_EXECD_SOCKET_ENV, path, 1);
        kpa_control *ctl = NULL;
        int q = kpa_control_connect(NULL, &ctl, &err);
        unsetenv(KPA_EXECD_SOCKET_ENV);
        is(q, 0, "kpa_control_connect to $KPA_EXECD_SOCKET");
        if (q < 0) {
                printf("# %s\n", err.message);
                stop_fake(pid);
                return;
        }
        q = kpa_remote_connect(path, &r, &err);
        is(q, 0, "kpa_remote_connect");
        if (q < 0) {
                kpa_control_close(ctl);
                stop_fake(pid);
                return;
        }

        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0 || write(p[1], "hello", 5) != 5)
                return;
        kpa_user_handle h = {"in", p[0]};
        kpa_start_options o;
        kpa_start_options_init(&o);
        o.handles = &h;
        o.n_handles = 1;
        kpa_token t, want;
        tok(&want, 0x77);
        q = kpa_process_start(ctl, "org.example.app", NULL, &o, &t, &call_err);
        is(q, 0, "start through the daemon, with a handle");
        if (q < 0)
                printf("# %s\n", call_err.message);
        ok(memcmp(&t, &want, sizeof(t)) == 0, "  the token comes back");
        ok(fd_open(p[0]), "  the caller keeps its own fd");

        /* a caller built before handle_size: its struct_size ends before it,
         * and what lies beyond is not read */
        kpa_start_options old = o;
        old.struct_size = offsetof(kpa_start_options, handle_size);
        old.handle_size = old.bind_size = 12345;
        ok(write(p[1], "hello", 5) == 5, "(the pipe holds hello again)");
        q = kpa_process_start(ctl, "org.example.app", NULL, &old, &t, &call_err);
        is(q, 0, "a kpa_start_options of older headers: its handles have the first layout");
        if (q < 0)
                printf("# %s\n", call_err.message);
        old = o;
        old.handle_size = sizeof(kpa_user_handle) + 8;
        is(kpa_process_start(ctl, "org.example.app", NULL, &old, &t, &call_err), -EINVAL,
           "a handle_size larger than this libkpa knows: -EINVAL");
        has_str(call_err.message, "kpa_start_options.handle_size is", "  naming the field");
        has_str(call_err.message, "newer kpa headers", "  and why");
        old = o;
        old.bind_size = sizeof(void *) - 1;
        is(kpa_process_start(ctl, "org.example.app", NULL, &old, &t, &call_err), -EINVAL,
           "a bind_size smaller than any kpa_start_bind: -EINVAL");
        has_str(call_err.message, "kpa_start_options.bind_size is", "  naming the field");

        q = kpa_process_start(ctl, "broken", NULL, NULL, &t, &call_err);
        is(q, -ENOEXEC, "a failed start gives the daemon's error");
        has_str(call_err.message, "not an executable",
                "  with the context's message when the reply has none");
        ok(memcmp(&t, &want, sizeof(t)) == 0, "  and the Failed context's token");

        o.cgroup_parent = "/x";
        is(kpa_process_start(ctl, "org.example.app", NULL, &o, &t, &call_err), -EOPNOTSUPP,
           "no cgroup parent through the daemon");

        kpa_process_context ctx;
        kpa_process_context_init(&ctx);
        is(kpa_process_get_state(ctl, &want, &ctx, &call_err), 0, "GetProcessState");
        is(ctx.state, KPA_PROCESS_RUNNING, "  Running");
        is(ctx.pid, 99, "  with its pid");
        kpa_token other;
        tok(&other, 1);
        is(kpa_process_get_state(ctl, &other, &ctx, &call_err), -ESRCH, "an unknown token: the daemon's error");
        has_str(call_err.message, "no such instance", "  and message");

        is(kpa_process_wait(ctl, &want, 100, &ctx, &call_err), -ETIMEDOUT, "WaitProcess with a timeout");
        is(ctx.state, KPA_PROCESS_RUNNING, "  gives the current context");
        is(kpa_process_wait(ctl, &want, -1, &ctx, &call_err), 0, "WaitProcess forever");
        is(ctx.state, KPA_PROCESS_FINISHED, "  gives the end");
        is(kpa_process_stop(ctl, &want, KPA_STOP_FORCED, &call_err), 0, "StopProcess");

        kpa_token *list = NULL;
        size_t n = 0;
        is(kpa_process_list(ctl, &list, &n, &call_err), 0, "ListProcesses (an event before the reply)");
        is(n, 2, "  two tokens");
        ok(n == 2 && memcmp(&list[0], &want, sizeof(want)) == 0, "  in the daemon's order");
        free(list);

        json_object *reply = NULL;
        int fds[2];
        size_t n_fds = 0;
        json_object *req = kpa_request_new(KPA_OP_OPEN_LOG, kpa_remote_next_id(r));
        char ts[KPA_TOKEN_STRING_MAX];
        kpa_token_to_string(&want, ts);
        json_object_object_add(req, "token", json_object_new_string(ts));
        is(kpa_remote_call(r, req, NULL, 0, &reply, fds, 2, &n_fds, &err), 0,
           "kpa_remote_call: OpenLog");
        is(n_fds, 1, "  an fd comes with the reply");
        if (n_fds == 1)
                close(fds[0]);
        json_object_put(reply);
        req = kpa_request_new(KPA_OP_OPEN_LOG, kpa_remote_next_id(r));
        json_object_object_add(req, "token", json_object_new_string(ts));
        is(kpa_remote_call(r, req, NULL, 0, &reply, NULL, 0, &n_fds, &err), 0,
           "  with no room for it");
        is(n_fds, 0, "  it is closed");
        json_object_put(reply);

        req = kpa_request_new(KPA_OP_STOP_ALL, kpa_remote_next_id(r));
        is(kpa_remote_call(r, req, NULL, 0, &reply, NULL, 0, NULL, &err), -EPROTO,
           "a reply with another id is refused");
        ok(reply == NULL, "  and not returned");
        req = kpa_request_new(KPA_OP_VERSION, kpa_remote_next_id(r));
        is(kpa_remote_call(r, req, NULL, 0, &reply, NULL, 0, NULL, &err), -ENOTCONN,
           "  the connection is given up after it");

        kpa_remote_close(r);
        r = NULL;
        is(kpa_remote_connect(path, &r, &err), 0, "a new connection");
        req = json_object_new_object();
        json_object_object_add(req, "op", json_object_new_string("Bogus"));
        json_object_object_add(req, "id", json_object_new_int(5));
        is(kpa_remote_call(r, req, NULL, 0, &reply, NULL, 0, NULL, &err), -EINVAL,
           "a refusal of the daemon's parser");
        has_str(err.message, "op: must be", "  comes back with its message");
        ok(reply != NULL, "  and the reply");
        json_object_put(reply);

        kpa_remote_close(r);
        kpa_control_close(ctl);
        close(p[0]);
        close(p[1]);
        stop_fake(pid);
        is(count_fds(), before, "the client leaves no fd behind");
        unlink(path);
        rmdir(dir);
}

int main(void)
{
        signal(SIGPIPE, SIG_IGN);
        test_simple_ops();
        test_start_round_trip();
        test_bad_requests();
        test_replies();
        test_context();
        test_socket_path();
        test_datagrams();
        test_client();
        return tap_done();
}
