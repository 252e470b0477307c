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

#define KPA_ERROR_MESSAGE_MAX 1024

typedef struct kpa_error {
        int code;                            /* positive errno; 0 when no error */
        char message[KPA_ERROR_MESSAGE_MAX]; /* one line, no trailing newline */
} kpa_error;

/* Reset ERR to "no error". ERR may be NULL. */
void kpa_error_clear(kpa_error *err);

#ifdef __cplusplus
}
#endif
#endif
