/* types.h: reading a caller's kpa_start_options (types.c). */
#ifndef KPA_TYPES_H
#define KPA_TYPES_H

#include "kpa/error.h"
#include "kpa/process.h"

/* The copies kpa_start_options_in() makes of a caller's arrays. */
typedef struct kpa_start_arrays {
        kpa_user_handle *handles;
        kpa_start_bind *binds;
} kpa_start_arrays;

/* kpa_struct_in() for kpa_start_options, and its arrays HANDLES and BINDS
 * in this library's layout: when the caller's handle_size or bind_size
 * (older headers: the first layouts) is smaller, the array is copied into
 * COPIES (free them with kpa_start_arrays_free() once FULL is no longer
 * used), each element taking the defaults for the fields it lacks. FULL's
 * handle_size and bind_size are then this library's sizeof. -EINVAL with
 * ERR naming the field for a size no layout has. */
int kpa_start_options_in(kpa_start_options *full, const kpa_start_options *opts,
                         kpa_start_arrays *copies, kpa_error *err);
void kpa_start_arrays_free(kpa_start_arrays *copies);

#endif
