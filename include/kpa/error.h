/* kpa/error.h: the error record every fallible libkpa call can fill.
 *
 * A fallible function returns 0 on success or a negative errno, and, where a
 * person will read the failure, fills a kpa_error with a message that names
 * the object (path, JSON key, application id, system call). */
#ifndef KPA_ERROR_H
#define KPA_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Marks what libkpa exports: everything else in it is hidden (built with
 * -fvisibility=hidden and the version script src/lib/libkpa.sym). */
#define KPA_PUBLIC __attribute__((visibility("default")))

#define KPA_ERROR_MESSAGE_MAX 1024

/* ABI: fixed: every call fills one that its caller sized, so its size is
 * part of every call (a longer message would need a new call). */
typedef struct kpa_error {
        int code;                            /* positive errno; 0 when no error */
        char message[KPA_ERROR_MESSAGE_MAX]; /* one line, no trailing newline */
} kpa_error;

/* Versioned structs. Every options or result struct of the public API
 * (kpa_start_options, kpa_install_result, kpa_process_context, ...) starts
 * with `size_t struct_size`, which its _init function (kpa_X_init()) sets
 * to sizeof. Call it before filling the struct or passing it to be filled:
 * a program built against older headers then keeps working with a newer
 * libkpa, which reads and writes only the part of the struct that
 * struct_size covers and takes the defaults for the rest. A struct_size of
 * 0 (never initialized), or larger than the library knows, is refused with
 * -EINVAL and a message that names the struct.
 *
 * Fields are only ever appended, and nothing but the library computes the
 * size of a struct that can grow:
 * - what the library makes (kpa_manifest and everything it points to,
 *   kpa_package_info, kpa_app_process, kpa_verify_entry, the contexts of
 *   kpa_process_list_contexts) carries struct_size too, set by the
 *   library: a caller of newer headers tests
 *   `offsetof(T, field) < x->struct_size` before it reads a field that an
 *   older libkpa may not have. Such structs are never embedded by value in
 *   another and never laid out in an array the caller strides: they come
 *   through a pointer, and arrays of them are arrays of pointers
 *   (m->components[i]->name).
 * - an array the caller makes carries its element size next to it
 *   (kpa_start_options.handle_size and bind_size, set by
 *   kpa_start_options_init()), so that its elements can grow too.
 * - a struct whose layout never changes (kpa_error, kpa_token, kpa_sha256,
 *   kpa_env_var) says "ABI: fixed" in its comment.
 * tests/integration/abi-structs.sh checks these rules on every header. */

/* Reset ERR to "no error". ERR may be NULL. */
KPA_PUBLIC void kpa_error_clear(kpa_error *err);

#ifdef __cplusplus
}
#endif
#endif
