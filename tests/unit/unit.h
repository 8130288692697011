/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A tiny unit-test harness. Each check prints one line:
 *   ok - NAME
 *   not ok - NAME: expected X, got Y
 * tests/run.sh counts the lines; unit_done() makes the exit status match.
 */
#ifndef DEPFENCE_UNIT_H
#define DEPFENCE_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_failed;

#define CHECK(name, cond, ...)                                                                     \
	do {                                                                                       \
		if (cond) {                                                                        \
			printf("ok - %s\n", name);                                                 \
		} else {                                                                           \
			unit_failed++;                                                             \
			printf("not ok - %s: ", name);                                             \
			printf(__VA_ARGS__);                                                       \
			printf("\n");                                                              \
		}                                                                                  \
	} while (0)

#define CHECK_INT(name, expected, actual)                                                          \
	do {                                                                                       \
		long long _e = (long long)(expected), _a = (long long)(actual);                    \
		CHECK(name, _e == _a, "expected %lld, got %lld", _e, _a);                          \
	} while (0)

#define CHECK_STR(name, expected, actual)                                                          \
	do {                                                                                       \
		const char *_e = (expected), *_a = (actual);                                       \
		CHECK(name, _e && _a && !strcmp(_e, _a), "expected \"%s\", got \"%s\"",            \
		      _e ? _e : "(null)", _a ? _a : "(null)");                                     \
	} while (0)

/* The error text must mention every listed fragment. */
#define CHECK_MSG(name, msg, fragment)                                                             \
	CHECK(name, strstr((msg), (fragment)) != NULL, "message \"%s\" lacks \"%s\"", (msg),      \
	      (fragment))

static inline int unit_done(void)
{
	fflush(stdout);
	return unit_failed ? 1 : 0;
}

#endif
