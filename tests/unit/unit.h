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
/* put before every check's name, for a table run more than once */
static __attribute__((unused)) const char *unit_prefix = "";

#define CHECK(name, cond, ...)                                                                     \
	do {                                                                                       \
		if (cond) {                                                                        \
			printf("ok - %s%s\n", unit_prefix, name);                                  \
		} else {                                                                           \
			unit_failed++;                                                             \
			printf("not ok - %s%s: ", unit_prefix, name);                              \
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

/* Test names are one line: show control bytes in inputs as \xNN. */
static __attribute__((unused)) const char *esc(const char *s)
{
	static char bufs[4][512];
	static int next;
	char *b = bufs[next++ % 4];
	size_t o = 0;

	for (; *s && o < sizeof(bufs[0]) - 5; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f)
			o += snprintf(b + o, sizeof(bufs[0]) - o, "\\x%02x", c);
		else
			b[o++] = (char)c;
	}
	b[o] = '\0';
	return b;
}

static inline int unit_done(void)
{
	fflush(stdout);
	return unit_failed ? 1 : 0;
}

#endif
