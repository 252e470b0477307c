/* archive-read.c: placeholder, being written. */
#include "config.h"
