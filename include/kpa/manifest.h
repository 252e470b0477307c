/* kpa/manifest.h: the KasperskyOS application manifest (version "2.0") as C
 * structures. Parsing is strict: every rule of DESIGN.md section 3 is
 * checked, and every refusal names the JSON path and the rule, e.g.
 *   manifest.json: runConfigurations[1].path: "bin/../x" must name a bin component
 * This module reads JSON only; it never touches the file system. */
#ifndef KPA_MANIFEST_H
#define KPA_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kpa/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KPA_MANIFEST_MAX_SIZE (1024 * 1024) /* bytes */
#define KPA_DIGEST_TYPE_SHA256 "2.16.840.1.101.3.4.2.1"
#define KPA_DIGEST_HEX_LEN 64

typedef enum kpa_component_type {
        KPA_COMPONENT_BIN = 0,
        KPA_COMPONENT_LIB,
        KPA_COMPONENT_RES,
        KPA_COMPONENT_MANIFEST_LOCALE,
} kpa_component_type;

typedef struct kpa_component {
        size_t struct_size;   /* sizeof, set by the library (see kpa/error.h) */
        char *name;           /* one path component */
        char *digest;         /* 64 lowercase hex chars; "" when absent (only with
                                 KPA_MANIFEST_ALLOW_MISSING_DIGESTS) */
        kpa_component_type type;
        char *directory_path; /* NULL when absent; normalized, no leading or trailing '/' */
        char *install_path;   /* where it lives in the package: bin/NAME, lib/NAME,
                                 res/[DIR/]NAME, manifest_locales/NAME */
} kpa_component;

/* ABI: fixed (an environment variable is a name and a value). */
typedef struct kpa_env_var {
        char *name;
        char *value; /* may be "" */
} kpa_env_var;

typedef enum kpa_use_type {
        KPA_USE_CHILD = 0,
        KPA_USE_SERVICE_CAN_USE,
        KPA_USE_SERVICE_ACTIVE,
} kpa_use_type;

typedef struct kpa_service_use {
        size_t struct_size; /* sizeof, set by the library (see kpa/error.h) */
        char *name; /* "RUNCONFIG" or "PACKAGE/RUNCONFIG" */
        kpa_use_type use_type;
} kpa_service_use;

typedef enum kpa_run_type {
        KPA_RUN_GUI = 0,
        KPA_RUN_SERVICE,
} kpa_run_type;

/* extensions.KPA_sockets.RUNCONFIG_ID[]: a listening socket that the
 * launcher (kpa-execd, or kpa-run in direct mode) creates and passes as the
 * named handle NAME. "tcp:ADDRESS:PORT" (a numeric IPv4 address or an IPv6
 * one in brackets, PORT 1-65535) or "unix:PATH" (relative, below
 * KPA_SOCKETS_DIR/APP_ID/). */
typedef enum kpa_socket_kind {
        KPA_SOCKET_TCP = 0,
        KPA_SOCKET_UNIX,
} kpa_socket_kind;

#define KPA_SOCKETS_DIR "/run/kpa/sockets" /* unix sockets: KPA_SOCKETS_DIR/APP_ID/PATH */

typedef struct kpa_socket_decl {
        size_t struct_size; /* sizeof, set by the library (see kpa/error.h) */
        char *name;    /* the handle name */
        char *listen;  /* as written: "tcp:127.0.0.1:8080", "unix:ctl.sock" */
        kpa_socket_kind kind;
        char *address; /* tcp: the address without brackets ("::1"); unix: the relative path */
        uint16_t port; /* tcp only */
        bool activate; /* start the instance on the first connection (kpa-execd) */
} kpa_socket_decl;

typedef struct kpa_run_config {
        size_t struct_size; /* sizeof, set by the library (see kpa/error.h) */
        char *id;
        char *name; /* as written; may be "@key@" (see kpa_manifest_localize) */
        kpa_run_type type;
        char **args;                /* NULL-terminated; never NULL */
        size_t n_args;
        kpa_env_var *env;
        size_t n_env;
        bool primary;
        bool autorun;               /* default false */
        char *eiid;                 /* NULL when absent */
        char *path;                 /* e.g. "bin/app"; names a bin component */
        kpa_service_use **uses;
        size_t n_uses;
        kpa_socket_decl **sockets; /* extensions.KPA_sockets[id]; NULL when none */
        size_t n_sockets;
} kpa_run_config;

typedef enum kpa_network_mode {
        KPA_NETWORK_NONE = 0, /* a new, empty network namespace (loopback only) */
        KPA_NETWORK_HOST,     /* the host's network */
} kpa_network_mode;

/* extensions.KPA_limits: {"memory": "64M" | bytes, "pids": N, "cpuWeight": 1..10000}.
 * 0 means "no limit set". */
typedef struct kpa_limits {
        size_t struct_size; /* sizeof, set by the library (see kpa/error.h) */
        uint64_t memory_bytes;
        uint64_t pids;
        uint64_t cpu_weight;
} kpa_limits;

/* extensions.KPA_sandbox: {"network": "none"|"host", "readOnlyPaths": ["/abs", ...],
 * "allowPtrace": true, ...}. The allow* booleans (default false) relax the
 * default seccomp filter, each for the calls named. */
typedef struct kpa_sandbox_settings {
        size_t struct_size; /* sizeof, set by the library or kpa_sandbox_settings_init() */
        kpa_network_mode network;
        char **read_only_paths; /* NULL-terminated; never NULL; absolute, normalized */
        size_t n_read_only_paths;
        bool allow_ptrace;      /* allowPtrace: ptrace, process_vm_readv, process_vm_writev */
        bool allow_perf_events; /* allowPerfEvents: perf_event_open */
        bool allow_bpf;         /* allowBpf: bpf */
        bool allow_keyring;     /* allowKeyring: keyctl, add_key, request_key */
        bool allow_userfaultfd; /* allowUserfaultfd: userfaultfd */
        bool allow_personality; /* allowPersonality: personality with any persona */
} kpa_sandbox_settings;
/* For kpa_store_effective_sandbox(): struct_size set, the rest zero. */
KPA_PUBLIC void kpa_sandbox_settings_init(kpa_sandbox_settings *sb);

/* extensions.KPA_restart: {"policy": "no"|"on-failure"|"always",
 * "maxRetries": N, "delayMs": N, "maxDelayMs": N, "resetAfter": S}. What kpa-execd does when
 * an instance it supervises ends: "no" (the default) nothing; "on-failure"
 * start it again when it ended Failed (killed by a signal nobody asked for)
 * or exited with a non-zero code, "always" whenever it ended without a stop
 * request. Retries wait delayMs (default 100), doubled after each retry up
 * to maxDelayMs (default 30000); after maxRetries (default 5; 0 = unlimited)
 * consecutive restarts it stays ended. A run of resetAfter seconds
 * (default 60) counts as healthy: the next failure starts from delayMs
 * again, with a fresh count of retries. */
typedef enum kpa_restart_mode {
        KPA_RESTART_NO = 0,
        KPA_RESTART_ON_FAILURE,
        KPA_RESTART_ALWAYS,
} kpa_restart_mode;

typedef struct kpa_restart_policy {
        size_t struct_size; /* sizeof, set by the library (see kpa/error.h) */
        kpa_restart_mode mode;
        uint32_t max_retries;
        uint32_t delay_ms;
        uint32_t max_delay_ms;
        uint32_t reset_after_s; /* resetAfter: a run this long starts the backoff over */
} kpa_restart_policy;

/* A manifest the library made (kpa_manifest_parse, kpa_store_load_manifest).
 * It and every struct it points to are versioned: struct_size, set by the
 * library, tells which fields a newer libkpa has (fields are only
 * appended), and what can grow is reached through a pointer, never
 * embedded or strided: the arrays are arrays of pointers. */
typedef struct kpa_manifest {
        size_t struct_size; /* sizeof, set by the library (see kpa/error.h) */
        char *version;     /* "2.0" */
        char *digest_type; /* always KPA_DIGEST_TYPE_SHA256 after parsing */

        /* ABI: fixed, as the application and platform objects of manifest
         * version 2.0: a key that a later version adds becomes a member at
         * the end of kpa_manifest. */
        struct {
                char *id;
                char *name;        /* may be "@key@" */
                char *version;
                char *build_number;
                bool system_application;
                char *description; /* NULL when absent; may be "@key@" */
        } application;

        /* ABI: fixed (see application) */
        struct {
                char *id;
                char *build_sdk_name;
                char *build_sdk_version;
                int64_t target_api_level;
                char *arch; /* as written, e.g. "aarch64-kos" */
                char *cpu;  /* may be "" */
        } platform;

        kpa_component **components;
        size_t n_components;

        kpa_run_config **run_configs;
        size_t n_run_configs;

        bool has_private_storage;
        char *storage_size;    /* as written (megabytes, a string), NULL when absent */
        uint64_t storage_size_mb;
        char *storage_fs_type; /* NULL when absent */

        kpa_limits *limits;            /* never NULL */
        kpa_sandbox_settings *sandbox; /* never NULL */
        kpa_restart_policy *restart;   /* never NULL */

        char *extensions_json; /* the "extensions" object re-serialized (pretty), NULL when absent */

        void *priv; /* the parser's own data (locale tables); do not touch */
} kpa_manifest;

/* Flags for kpa_manifest_parse(). */
enum {
        /* kpa-pack: a component's "digest" may be absent or "" (it fills it in). */
        KPA_MANIFEST_ALLOW_MISSING_DIGESTS = 1u << 0,
};

/* Parse and validate LEN bytes of manifest JSON (need not be NUL-terminated).
 * Refuses, naming the JSON path and rule: more than KPA_MANIFEST_MAX_SIZE
 * bytes, invalid JSON, invalid UTF-8, NUL bytes in strings, duplicate object
 * keys, wrong types (a number where a string belongs), missing required keys,
 * unknown keys, and every rule of DESIGN.md section 3. On success *OUT owns
 * a new manifest. Returns 0 or a negative errno (-EINVAL for a bad manifest,
 * -EFBIG for an oversized one). Error messages start with "manifest.json: ". */
KPA_PUBLIC int kpa_manifest_parse(const char *json, size_t len, unsigned flags, kpa_manifest **out,
                       kpa_error *err);
KPA_PUBLIC void kpa_manifest_free(kpa_manifest *m);
static inline void kpa_manifest_freep(kpa_manifest **m)
{
        if (*m)
                kpa_manifest_free(*m);
}

/* The machine architecture the manifest's hwSpecification.arch maps to on
 * Linux ("aarch64-kos" -> "aarch64"); a pointer into M or a static string. */
KPA_PUBLIC const char *kpa_manifest_linux_arch(const kpa_manifest *m);
/* 0 when hwSpecification.arch matches this machine (uname -m), else -ENOEXEC
 * with a message naming both architectures. */
KPA_PUBLIC int kpa_manifest_check_arch(const kpa_manifest *m, kpa_error *err);

/* Lookups; NULL when not found. */
KPA_PUBLIC const kpa_run_config *kpa_manifest_primary_run_config(const kpa_manifest *m);
KPA_PUBLIC const kpa_run_config *kpa_manifest_find_run_config(const kpa_manifest *m, const char *id);
/* Find a component by its install path ("bin/app", "res/img/logo.png"). */
KPA_PUBLIC const kpa_component *kpa_manifest_find_component(const kpa_manifest *m, const char *install_path);

/* Localization. Add the content of one manifestLocale component (JSON of the
 * shape {"LOCALE": {"key": "text", ...}, ...}, e.g. {"en": {...}, "ru": {...}})
 * to M's locale tables. COMPONENT_NAME is used in error messages. */
KPA_PUBLIC int kpa_manifest_add_locale(kpa_manifest *m, const char *component_name, const char *json,
                            size_t len, kpa_error *err);
/* Resolve VALUE: when it is written "@key@", return the text for KEY in the
 * best locale for LOCALE (e.g. "ru_RU.UTF-8" tries "ru_RU", "ru-RU", "ru";
 * then "en", then any locale that has the key); LOCALE NULL means $LC_ALL,
 * $LC_MESSAGES, $LANG in that order. Unresolved keys and plain values come
 * back as written. The result points into M (or is VALUE); NULL stays NULL. */
KPA_PUBLIC const char *kpa_manifest_localize(const kpa_manifest *m, const char *value, const char *locale);

#ifdef __cplusplus
}
#endif
#endif
