/* fuzz.h: the one entry point every fuzz target defines. libFuzzer calls it
 * (make fuzz, tests/fuzz/run.sh); replay.c calls it on saved inputs in
 * make check, so that every crash once found stays a regression test. */
#ifndef KPA_FUZZ_H
#define KPA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
