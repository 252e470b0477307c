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

typedef struct kpa_error {
        int code;                            /* positive errno; 0 when no error */
        char message[KPA_ERROR_MESSAGE_MAX]; /* one line, no trailing newline */
} kpa_error;

/* Reset ERR to "no error". ERR may be NULL. */
KPA_PUBLIC void kpa_error_clear(kpa_error *err);

#ifdef __cplusplus
}
#endif
#endif
