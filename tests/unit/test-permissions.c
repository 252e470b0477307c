/* Unit tests for permissions.c: a manifest's requests, the list helpers,
 * the JSON form of grants and policy files and its refusals, policy files
 * (a path covers the paths below it, not its siblings; a file others may
 * write is refused), and the checks of a read-only host path (kpa stores,
 * /proc, /sys, /dev, sockets, FIFOs, modes for another uid). No root needed:
 * the uid checked is chosen, not switched to (tests/integration/
 * permissions.sh drives the same through kpa-install and kpa-run). */
#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "kpa/package.h"
#include "tap.h"
#include "util.h"

static char tmp[] = "/tmp/kpa-test-permissions-XXXXXX";

static char *path_of(const char *rel)
{
        return kpa_xasprintf("%s/%s", tmp, rel);
}

static void write_file(const char *rel, const char *content, mode_t mode)
{
        _cleanup_free_ char *p = path_of(rel);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || kpa_write_all(fd, content, strlen(content)) < 0 || fchmod(fd, mode) < 0)
                abort();
}

/* "a b c": the list joined by blanks */
static char *joined(char **v)
{
        char *s = kpa_xstrdup("");
        for (size_t i = 0; v && v[i]; i++) {
                char *n = kpa_xasprintf("%s%s%s", s, i ? " " : "", v[i]);
                free(s);
                s = n;
        }
        return s;
}

#define MANIFEST                                                                                   \
        "{\"version\": \"2.0\", \"application\": {\"id\": \"org.example.p\", \"name\": \"P\", "    \
        "\"version\": \"1\", \"buildNumber\": \"1\", \"systemApplication\": false}, "              \
        "\"platform\": {\"id\": \"linux\", \"sdk\": {\"buildSdkName\": \"s\", "                    \
        "\"buildSdkVersion\": \"1\", \"targetApiLevel\": 1}, \"hwSpecification\": {\"arch\": "     \
        "\"x86_64\", \"cpu\": \"\"}}, \"components\": [], \"extensions\": {\"KPA_sandbox\": "      \
        "{\"network\": \"host\", \"readOnlyPaths\": [\"/srv/data/\", \"/etc/ssl\"], "              \
        "\"allowPtrace\": true, \"allowBpf\": false}}}"

static void test_requests(void)
{
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_error err;
        is(kpa_manifest_parse(MANIFEST, strlen(MANIFEST), 0, &m, &err), 0, "the manifest parses");
        if (!m)
                return;
        _cleanup_strv_free_ char **req = kpa_permissions_requested(m);
        _cleanup_free_ char *s = joined(req);
        is_str(s, "allowPtrace network readOnlyPaths:/etc/ssl readOnlyPaths:/srv/data",
               "each request is an item, sorted; a false switch requests nothing");
        _cleanup_strv_free_ char **sel = NULL;
        is(kpa_permissions_select(req, "readOnlyPaths", &sel, &err), 0, "select readOnlyPaths");
        _cleanup_free_ char *s2 = joined(sel);
        is_str(s2, "readOnlyPaths:/etc/ssl readOnlyPaths:/srv/data", "... gives every path");
        kpa_strv_free(sel);
        sel = NULL;
        is(kpa_permissions_select(req, "network,allowBpf", &sel, &err), 0, "select a list");
        _cleanup_free_ char *s3 = joined(sel);
        is_str(s3, "network", "... gives only what is requested");
        kpa_strv_free(sel);
        sel = NULL;
        is(kpa_permissions_select(req, "all", &sel, &err), 0, "select all");
        is((int)(sel[0] && sel[1] && sel[2] && sel[3] && !sel[4]), 1, "... gives every request");
        kpa_strv_free(sel);
        sel = NULL;
        is(kpa_permissions_select(req, "network,nettwork", &sel, &err), -EINVAL,
           "an unknown name is refused");
        has_str(err.message, "\"nettwork\" is not a permission", "... and named");
        _cleanup_strv_free_ char **one = kpa_xcalloc(2, sizeof(char *));
        one[0] = kpa_xstrdup("network");
        _cleanup_strv_free_ char **without = kpa_permissions_filter(req, one, false);
        _cleanup_strv_free_ char **with = kpa_permissions_filter(req, one, true);
        _cleanup_free_ char *s4 = joined(without), *s5 = joined(with);
        is_str(s4, "allowPtrace readOnlyPaths:/etc/ssl readOnlyPaths:/srv/data", "filter out");
        is_str(s5, "network", "filter in");
        _cleanup_free_ char *d = kpa_permission_describe("readOnlyPaths:/etc/ssl");
        has_str(d, "readOnlyPaths /etc/ssl (", "a path's description names it");
}

static void test_json(void)
{
        kpa_error err;
        _cleanup_strv_free_ char **v = NULL;
        is(kpa_permissions_from_json(
                   "{\"network\": \"host\", \"readOnlyPaths\": [\"/a/\", \"/b\"], "
                   "\"allowKeyring\": true, \"allowBpf\": false}",
                   "grant", &v, &err),
           0, "a KPA_sandbox-shaped object parses");
        _cleanup_free_ char *s = joined(v);
        is_str(s, "allowKeyring network readOnlyPaths:/a readOnlyPaths:/b",
               "... into items (trailing slash dropped, false switches left out)");
        _cleanup_free_ char *text = kpa_permissions_to_json(v);
        _cleanup_strv_free_ char **back = NULL;
        is(kpa_permissions_from_json(text, "again", &back, &err), 0, "its JSON form parses");
        _cleanup_free_ char *s2 = joined(back);
        is_str(s2, s, "... to the same items");
        static const struct {
                const char *json, *message;
        } bad[] = {
                {"[]", "x: not a JSON object"},
                {"{\"network\": \"bridge\"}", "x: network must be \"host\" or \"none\""},
                {"{\"allowPtrace\": 1}", "x: allowPtrace must be true or false"},
                {"{\"allowEverything\": true}", "x: allowEverything is not a permission"},
                {"{\"readOnlyPaths\": [\"etc\"]}", "x: readOnlyPaths must be an array of absolute"},
                {"{\"readOnlyPaths\": [\"/a/../etc\"]}", "x: readOnlyPaths must be an array"},
                {"{\"readOnlyPaths\": \"/etc\"}", "x: readOnlyPaths must be an array"},
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char **out = NULL;
                is(kpa_permissions_from_json(bad[i].json, "x", &out, &err), -EINVAL, "refused: %s",
                   bad[i].json);
                has_str(err.message, bad[i].message, "... saying so");
                kpa_strv_free(out);
        }
}

/* KPA_sockets: one item per declared address, "sockets" selects them all */
#define SOCKETS_MANIFEST                                                                           \
        "{\"version\": \"2.0\", \"application\": {\"id\": \"org.example.s\", \"name\": \"S\", "    \
        "\"version\": \"1\", \"buildNumber\": \"1\", \"systemApplication\": false}, "              \
        "\"platform\": {\"id\": \"linux\", \"sdk\": {\"buildSdkName\": \"s\", "                    \
        "\"buildSdkVersion\": \"1\", \"targetApiLevel\": 1}, \"hwSpecification\": {\"arch\": "     \
        "\"x86_64\", \"cpu\": \"\"}}, \"components\": [{\"name\": \"a\", \"digest\": \"" D64      \
        "\", \"componentType\": \"bin\"}], \"runConfigurations\": [{\"id\": \"main\", \"name\": "  \
        "\"M\", \"type\": \"service\", \"path\": \"bin/a\", \"primary\": true}], \"extensions\": " \
        "{\"KPA_sockets\": {\"main\": [{\"name\": \"http\", \"listen\": \"tcp:127.0.0.1:8080\"}, " \
        "{\"name\": \"ctl\", \"listen\": \"unix:ctl.sock\"}]}}}"
#define D64 "0000000000000000000000000000000000000000000000000000000000000000"

static void test_sockets(void)
{
        _cleanup_(kpa_manifest_freep) kpa_manifest *m = NULL;
        kpa_error err;
        if (!ok(kpa_manifest_parse(SOCKETS_MANIFEST, strlen(SOCKETS_MANIFEST), 0, &m, &err) == 0,
                "a manifest with KPA_sockets parses"))
                printf("#   %s\n", err.message);
        if (!m)
                return;
        _cleanup_strv_free_ char **req = kpa_permissions_requested(m);
        _cleanup_free_ char *s = joined(req);
        is_str(s, "sockets:tcp:127.0.0.1:8080 sockets:unix:ctl.sock",
               "each declared socket is a request of its own");
        _cleanup_strv_free_ char **sel = NULL;
        is(kpa_permissions_select(req, "sockets", &sel, &err), 0, "select sockets");
        _cleanup_free_ char *s2 = joined(sel);
        is_str(s2, s, "... gives every socket");
        _cleanup_free_ char *text = kpa_permissions_to_json(req);
        has_str(text, "\"sockets\"", "the JSON form lists them under \"sockets\"");
        _cleanup_strv_free_ char **back = NULL;
        is(kpa_permissions_from_json(text, "again", &back, &err), 0, "... and parses");
        _cleanup_free_ char *s3 = joined(back);
        is_str(s3, s, "... to the same items");
        _cleanup_free_ char *d = kpa_permission_describe("sockets:tcp:127.0.0.1:8080");
        has_str(d, "sockets tcp:127.0.0.1:8080 (", "a socket's description names its address");
        char **out = NULL;
        is(kpa_permissions_from_json("{\"sockets\": [\"udp:1\"]}", "x", &out, &err), -EINVAL,
           "a grant of a socket that is not tcp: or unix: is refused");
        kpa_strv_free(out);
}

static void test_policy(void)
{
        kpa_error err;
        _cleanup_strv_free_ char **req = kpa_xcalloc(5, sizeof(char *));
        req[0] = kpa_xstrdup("allowBpf");
        req[1] = kpa_xstrdup("network");
        req[2] = kpa_xstrdup("readOnlyPaths:/srv/data/sub");
        req[3] = kpa_xstrdup("readOnlyPaths:/srv/data2");
        _cleanup_strv_free_ char **got = NULL;
        _cleanup_free_ char *path = NULL;
        is(kpa_policy_grants(tmp, "org.example.none", req, &got, &path, &err), 0,
           "no policy file: no error");
        ok(got && !got[0] && !path, "... and nothing granted");
        write_file("org.example.p.json",
                   "{\"network\": \"host\", \"readOnlyPaths\": [\"/srv/data\"]}", 0644);
        kpa_strv_free(got);
        got = NULL;
        is(kpa_policy_grants(tmp, "org.example.p", req, &got, &path, &err), 0, "a policy file");
        _cleanup_free_ char *s = joined(got);
        is_str(s, "network readOnlyPaths:/srv/data/sub",
               "grants what it holds; a path covers those below it, not a sibling");
        has_str(path, "/org.example.p.json", "... and names the file it read");
        write_file("org.example.p.json", "{\"network\": \"host\"}", 0664);
        kpa_strv_free(got);
        got = NULL;
        is(kpa_policy_grants(tmp, "org.example.p", req, &got, NULL, &err), -EPERM,
           "a group-writable policy file is refused");
        has_str(err.message, "is not a regular file owned by root", "... saying why");
        write_file("org.example.p.json", "{\"network\": 1}", 0644);
        is(kpa_policy_grants(tmp, "org.example.p", req, &got, NULL, &err), -EINVAL,
           "a malformed policy file is refused");
        has_str(err.message, "org.example.p.json: network must be", "... naming it");
}

static void test_paths(void)
{
        kpa_error err;
        uid_t me = geteuid();
        gid_t my_gid = getegid();
        _cleanup_free_ char *store = path_of("store");
        _cleanup_free_ char *inside = path_of("store/storage");
        _cleanup_free_ char *open_dir = path_of("open");
        _cleanup_free_ char *file = path_of("open/f");
        _cleanup_free_ char *closed = path_of("closed");
        _cleanup_free_ char *hidden = path_of("closed/f");
        _cleanup_free_ char *sock = path_of("open/sock");
        _cleanup_free_ char *fifo = path_of("open/fifo");
        if (mkdir(store, 0755) < 0 || mkdir(inside, 0755) < 0 || mkdir(open_dir, 0755) < 0 ||
            mkdir(closed, 0700) < 0 || mkfifo(fifo, 0644) < 0)
                abort();
        write_file("open/f", "x", 0644);
        write_file("closed/f", "x", 0644);
        write_file("open/private", "x", 0600);
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                abort();
        close(s);
        uid_t other = me == 12345 ? 12346 : 12345; /* some uid that owns nothing here */
        int fd = -1;
        is(kpa_permissions_check_path(file, other, other, store, &fd, &err), 0,
           "a world-readable file on a searchable path passes");
        ok(fd >= 0, "... with an fd of the node checked");
        closep(&fd);
        is(kpa_permissions_check_path(inside, me, my_gid, store, NULL, &err), -EPERM,
           "a path inside the store is refused");
        has_str(err.message, "it is inside the kpa store", "... saying so");
        is(kpa_permissions_check_path(tmp, me, my_gid, store, NULL, &err), -EPERM,
           "a directory that contains the store is refused");
        has_str(err.message, "it contains the kpa store", "... saying so");
        is(kpa_permissions_check_path("/proc/self/environ", me, my_gid, store, NULL, &err), -EPERM,
           "/proc is refused");
        is(kpa_permissions_check_path("/sys/kernel", me, my_gid, store, NULL, &err), -EPERM,
           "/sys is refused");
        is(kpa_permissions_check_path("/dev/null", me, my_gid, store, NULL, &err), -EPERM,
           "/dev is refused");
        is(kpa_permissions_check_path("/run/kpa/x", me, my_gid, store, NULL, &err), -EPERM,
           "/run/kpa is refused, even where it does not exist");
        is(kpa_permissions_check_path(sock, me, my_gid, store, NULL, &err), -EPERM,
           "a socket is refused");
        has_str(err.message, "it is a socket", "... saying so");
        is(kpa_permissions_check_path(fifo, me, my_gid, store, NULL, &err), -EPERM,
           "a FIFO is refused");
        is(kpa_permissions_check_path(hidden, other, other, store, NULL, &err), -EACCES,
           "a file behind a 0700 directory is refused for another uid");
        has_str(err.message, "cannot search the directory", "... naming the directory");
        is(kpa_permissions_check_path(hidden, me, my_gid, store, NULL, &err), 0,
           "... and allowed for the directory's owner");
        _cleanup_free_ char *private_file = path_of("open/private");
        is(kpa_permissions_check_path(private_file, other, other, store, NULL, &err), -EACCES,
           "a 0600 file is refused for another uid");
        has_str(err.message, "cannot read it (mode 0600", "... with its mode");
        _cleanup_free_ char *missing = path_of("open/nothing");
        is(kpa_permissions_check_path(missing, me, my_gid, store, NULL, &err), -ENOENT,
           "a missing path is -ENOENT");
        has_str(err.message, "cannot bind the host path", "... saying so");
}

int main(void)
{
        if (!mkdtemp(tmp))
                return 1;
        chmod(tmp, 0755);
        test_requests();
        test_json();
        test_sockets();
        test_policy();
        test_paths();
        kpa_rm_rf_at(AT_FDCWD, tmp);
        return tap_done();
}
