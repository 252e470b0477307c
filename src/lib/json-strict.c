/* json-strict.c: placeholder, being written. */
#include "config.h"
