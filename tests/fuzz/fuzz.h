/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Fuzz targets. Each tests/fuzz/fuzz_NAME.c defines its entry point with
 * DF_FUZZ_TARGET(NAME); built for libFuzzer (make fuzz, -DDF_LIBFUZZER) the
 * entry point is LLVMFuzzerTestOneInput, otherwise df_fuzz_NAME, which
 * replay.c (build/tests/test_fuzz_replay) calls for every file of the
 * corpora and regression dirs.
 *
 * A target returns 0. A broken invariant is a crash: DF_FUZZ_ASSERT prints
 * what broke and aborts, so libFuzzer keeps the input.
 */
#ifndef DEPFENCE_FUZZ_H
#define DEPFENCE_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef DF_LIBFUZZER
#define DF_FUZZ_TARGET(name)                                                                       \
	int df_fuzz_##name(const uint8_t *data, size_t size);                                      \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                               \
	{                                                                                          \
		return df_fuzz_##name(data, size);                                                 \
	}                                                                                          \
	int df_fuzz_##name(const uint8_t *data, size_t size)
#else
#define DF_FUZZ_TARGET(name) int df_fuzz_##name(const uint8_t *data, size_t size)
#endif

#define DF_FUZZ_ASSERT(cond, ...)                                                                  \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__,       \
				#cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The input as a C string (what the readers get from read_file_capped). */
static inline char *df_fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* An error message is one line of text a person can read. */
static inline void df_fuzz_check_msg(const char *msg)
{
	DF_FUZZ_ASSERT(msg[0] != '\0', "an error without a message");
	DF_FUZZ_ASSERT(strlen(msg) < 512, "message not terminated");
}

#endif
