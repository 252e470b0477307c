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

/* ABI: fixed (every call takes it; a new field would move nothing only
 * at the end, and a caller's would be too short). */
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
 * -EINVAL and a message that names the struct. */

/* Reset ERR to "no error". ERR may be NULL. */
KPA_PUBLIC void kpa_error_clear(kpa_error *err);

#ifdef __cplusplus
}
#endif
#endif
