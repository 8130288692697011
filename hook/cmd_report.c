// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* depfence report: render a report for people (text), CI (junit, sarif) or a new policy. */
#include <getopt.h>

#include "cli.h"
#include "report_doc.h"

enum fmt { FMT_TEXT, FMT_JSON, FMT_JUNIT, FMT_SARIF, FMT_POLICY };

static const char *const fmt_names[] = {
	[FMT_TEXT] = "text",   [FMT_JSON] = "json",	[FMT_JUNIT] = "junit",
	[FMT_SARIF] = "sarif", [FMT_POLICY] = "policy",
};

enum fail_on { FAIL_NEVER, FAIL_WOULD_BLOCK, FAIL_BLOCKED, FAIL_ANY };

static void report_usage(FILE *f)
{
	fprintf(f,
		"Usage: depfence report [OPTIONS] FILE|ID\n"
		"\n"
		"Render a depfence.report/v1 report: FILE is a path (\"-\" for stdin), ID a\n"
		"report id looked up as <report_dir>/ID.json in the host configuration.\n"
		"\n"
		"  -f, --format FORMAT     text (default), json, junit, sarif, policy\n"
		"      --fail-on WHAT      exit 3 when the report has events of this kind:\n"
		"                          would-block, blocked, any (either); always when\n"
		"                          the report says records were lost (records_lost)\n"
		"      --color WHEN        auto (default: on a terminal, unless NO_COLOR is set),\n"
		"                          always, never; text only\n"
		"      --group-prefixes    policy: allow /24 (IPv4) and /64 (IPv6) prefixes\n"
		"                          instead of single addresses\n"
		"  -h, --help              this text\n"
		"\n"
		"Formats: text is a summary and a table for people; json the report itself;\n"
		"junit a test suite with one test case per event, violations as failures;\n"
		"sarif SARIF 2.1.0 for code-scanning dashboards; policy the allow-list\n"
		"(default deny) that lets through exactly what an observe-mode run did, as\n"
		"annotations and as depfence run flags.\n"
		"\n"
		"Exit status: 0 ok, 1 error (unreadable or invalid report), 2 usage,\n"
		"3 violations found (with --fail-on). Reports over %d MiB are refused.\n",
		RDOC_MAX / (1024 * 1024));
}

/* Events of the kind asked for, or counters that say there were some (records may be dropped). */
static int has_violations(const struct rdoc *d, enum fail_on on)
{
	int want_blocked = on == FAIL_BLOCKED || on == FAIL_ANY;
	int want_would = on == FAIL_WOULD_BLOCK || on == FAIL_ANY;

	/* a report whose records were lost cannot show there were none */
	if (d->records_lost)
		return 1;

	for (size_t i = 0; i < d->n_events; i++) {
		const char *v = d->events[i].verdict;

		if ((want_blocked && !strcmp(v, "blocked")) ||
		    (want_would && !strcmp(v, "would-block")))
			return 1;
	}
	if (want_blocked && (d->sum.blocked > 0 || d->sum.dns_blocked > 0))
		return 1;
	if (want_would && d->sum.would_block > 0)
		return 1;
	return 0;
}

static int use_color(const char *when)
{
	const char *nc = getenv("NO_COLOR");

	if (!strcmp(when, "always"))
		return 1;
	if (!strcmp(when, "never"))
		return 0;
	/* no-color.org: NO_COLOR set to anything but "" turns color off */
	return isatty(STDOUT_FILENO) && !(nc && nc[0]);
}

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "fail-on", required_argument, NULL, 'F' },
		{ "color", required_argument, NULL, 'c' },
		{ "group-prefixes", no_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct rdoc d = {};
	struct df_error e = {};
	enum fmt fmt = FMT_TEXT;
	enum fail_on fail_on = FAIL_NEVER;
	const char *color = "auto";
	int c, r, prefixes = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': {
			size_t i;

			for (i = 0; i < ARRAY_SIZE(fmt_names); i++)
				if (!strcmp(optarg, fmt_names[i]))
					break;
			if (i == ARRAY_SIZE(fmt_names)) {
				df_err("report: --format \"%s\": not a format (text, json, junit, sarif, policy)",
				       optarg);
				goto usage;
			}
			fmt = (enum fmt)i;
			break;
		}
		case 'F':
			if (!strcmp(optarg, "would-block"))
				fail_on = FAIL_WOULD_BLOCK;
			else if (!strcmp(optarg, "blocked"))
				fail_on = FAIL_BLOCKED;
			else if (!strcmp(optarg, "any"))
				fail_on = FAIL_ANY;
			else {
				df_err("report: --fail-on \"%s\": not one of would-block, blocked, any",
				       optarg);
				goto usage;
			}
			break;
		case 'c':
			if (strcmp(optarg, "auto") && strcmp(optarg, "always") &&
			    strcmp(optarg, "never")) {
				df_err("report: --color \"%s\": not one of auto, always, never",
				       optarg);
				goto usage;
			}
			color = optarg;
			break;
		case 'g':
			prefixes = 1;
			break;
		case 'h':
			report_usage(stdout);
			return DF_EXIT_OK;
		default:
			df_err("report: unknown or incomplete option \"%s\"", argv[optind - 1]);
			goto usage;
		}
	}
	if (optind >= argc) {
		df_err("report: no report given (a FILE or an ID)");
		goto usage;
	}
	if (optind + 1 < argc) {
		df_err("report: one report at a time; \"%s\" is one too many", argv[optind + 1]);
		goto usage;
	}
	if (prefixes && fmt != FMT_POLICY) {
		df_err("report: --group-prefixes applies to --format policy only");
		goto usage;
	}

	r = rdoc_load(argv[optind], &d, &e);
	if (r < 0) {
		df_err("report: %s", e.msg);
		return DF_EXIT_ERROR;
	}
	switch (fmt) {
	case FMT_TEXT:
		r = rdoc_print_text(stdout, &d, use_color(color));
		break;
	case FMT_JSON:
		r = rdoc_print_json(stdout, &d);
		break;
	case FMT_JUNIT:
		r = rdoc_print_junit(stdout, &d);
		break;
	case FMT_SARIF:
		r = rdoc_print_sarif(stdout, &d);
		break;
	case FMT_POLICY:
		r = rdoc_print_policy(stdout, &d, prefixes);
		break;
	}
	if (r >= 0 && fflush(stdout) != 0)
		r = -errno;
	if (r < 0) {
		df_err("report: %s: %s output: %s", d.path, fmt_names[fmt], strerror(-r));
		rdoc_free(&d);
		return DF_EXIT_ERROR;
	}
	r = fail_on != FAIL_NEVER && has_violations(&d, fail_on);
	rdoc_free(&d);
	return r ? DF_EXIT_VIOLATIONS : DF_EXIT_OK;

usage:
	fprintf(stderr, "Try 'depfence report --help'.\n");
	return DF_EXIT_USAGE;
}
