/* oci-runtime-spec.c: the two documents the OCI runtime (kpa/oci.h) hands
 * out without a container: the features JSON (what it supports, the
 * capabilities this kernel knows) and the config.json to start from (runc
 * spec). The operations on containers are oci-runtime.c's. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kpa/oci.h"
#include "caps.h"
#include "util.h"

int kpa_oci_features(char **out, kpa_error *err)
{
        static const char *const text =
                "{\n"
                "  \"ociVersionMin\": \"1.0.0\",\n"
                "  \"ociVersionMax\": \"1.2.0\",\n"
                "  \"hooks\": [\"prestart\", \"createRuntime\", \"poststart\", \"poststop\"],\n"
                "  \"mountOptions\": [\"ro\", \"rw\", \"nosuid\", \"nodev\", \"noexec\", "
                "\"relatime\", \"strictatime\", \"noatime\", \"nodiratime\", \"bind\", \"rbind\", "
                "\"private\", \"rprivate\"],\n"
                "  \"linux\": {\n"
                "    \"namespaces\": [\"pid\", \"network\", \"ipc\", \"uts\", \"mount\", "
                "\"cgroup\"],\n"
                "    \"capabilities\": [";
        static const char *const tail =
                "],\n"
                "    \"cgroup\": {\"v1\": true, \"v2\": true, \"systemd\": false, "
                "\"systemdUser\": false},\n"
                "    \"seccomp\": {\"enabled\": false},\n"
                "    \"apparmor\": {\"enabled\": false},\n"
                "    \"selinux\": {\"enabled\": false},\n"
                "    \"intelRdt\": {\"enabled\": false},\n"
                "    \"mountExtensions\": {\"idmap\": {\"enabled\": false}}\n"
                "  },\n"
                "  \"annotations\": {\"org.kpa.runtime\": \"kpa-oci\"}\n"
                "}\n";
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return kpa_error_set_errno(err, errno, "features");
        fputs(text, f);
        /* the capabilities config.json may keep: those this kernel knows */
        char name[32];
        for (int c = 0; kpa_cap_name(c, name, sizeof(name)) == 0; c++)
                fprintf(f, "%s\"%s\"", c ? ", " : "", name);
        fputs(tail, f);
        if (fclose(f) != 0) {
                free(buf);
                return kpa_error_set_errno(err, ENOMEM, "features");
        }
        *out = buf;
        return 0;
}

/* A config.json to start from, as `runc spec` writes (busybox-friendly). */
int kpa_oci_spec(const char *bundle, kpa_error *err)
{
        if (!bundle)
                bundle = ".";
        static const char *const text =
                "{\n"
                "  \"ociVersion\": \"1.0.2\",\n"
                "  \"process\": {\n"
                "    \"terminal\": false,\n"
                "    \"user\": {\"uid\": 0, \"gid\": 0},\n"
                "    \"args\": [\"sh\"],\n"
                "    \"env\": "
                "[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\n"
                "    \"cwd\": \"/\",\n"
                "    \"noNewPrivileges\": true\n"
                "  },\n"
                "  \"root\": {\"path\": \"rootfs\", \"readonly\": true},\n"
                "  \"hostname\": \"kpa-oci\",\n"
                "  \"mounts\": [\n"
                "    {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},\n"
                "    {\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
                "     \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},\n"
                "    {\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": "
                "\"devpts\",\n"
                "     \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", "
                "\"mode=0620\"]},\n"
                "    {\"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\",\n"
                "     \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", "
                "\"size=65536k\"]},\n"
                "    {\"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": "
                "\"mqueue\",\n"
                "     \"options\": [\"nosuid\", \"noexec\", \"nodev\"]},\n"
                "    {\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\",\n"
                "     \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"ro\"]},\n"
                "    {\"destination\": \"/tmp\", \"type\": \"tmpfs\", \"source\": \"tmpfs\",\n"
                "     \"options\": [\"nosuid\", \"nodev\", \"mode=1777\"]}\n"
                "  ],\n"
                "  \"linux\": {\n"
                "    \"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\"}, {\"type\": "
                "\"ipc\"},\n"
                "                   {\"type\": \"uts\"}, {\"type\": \"mount\"}, {\"type\": "
                "\"cgroup\"}],\n"
                "    \"maskedPaths\": [\"/proc/kcore\", \"/proc/keys\", \"/proc/timer_list\", "
                "\"/sys/firmware\"],\n"
                "    \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", "
                "\"/proc/sys\", "
                "\"/proc/sysrq-trigger\"]\n"
                "  }\n"
                "}\n";
        _cleanup_free_ char *path = kpa_xasprintf("%s/config.json", bundle);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return kpa_error_set(err, errno, "%s: %s", path, strerror(errno));
        int r = kpa_write_all(fd, text, strlen(text));
        close(fd);
        return r < 0 ? kpa_error_set(err, -r, "%s: %s", path, strerror(-r)) : 0;
}
