// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* depfence status: the fences on this host, read from state files and pins, changing nothing. */
#include <getopt.h>
#include <sys/stat.h>

#include "../oci/json.h"
#include "cli.h"
#include "livefence.h"
#include "pool.h"
#include "report_doc.h"

static void status_usage(FILE *f)
{
	fprintf(f, "Usage: depfence status [--json]\n"
		   "\n"
		   "List the fences on this host: one per state file in the state dir, with its\n"
		   "id, kind, label, mode, age, cgroup and the counters so far, read from the\n"
		   "pinned maps without changing them. Pin directories without a state file are\n"
		   "listed as orphans (depfence gc reports and removes them), and the verified\n"
		   "program sets kept for the next fence like theirs (fence_pool) are counted.\n"
		   "\n"
		   "  --json      machine output\n"
		   "  -h, --help  this text\n"
		   "\n"
		   "Exit status: 0 ok, 1 error (the configuration, the state dir, or a fence's\n"
		   "counters could not be read; the others are still listed), 2 usage.\n");
}

struct fence_row {
	char id[130];
	struct fence_state st;
	int have_state;
	int cgroup_exists;
	struct df_counters c;
	int have_counters;
	int live_mode; /* the mode its pinned config holds now (break-glass: audit); -1 unread */
	long long records;
	char err[DF_ERRBUF];
};

static void gen_counters(yajl_gen g, const struct df_counters *c, int *r)
{
	*r |= jg_str(g, "counters");
	yajl_gen_map_open(g);
	*r |= jg_key_int(g, "connections", (long long)c->connections);
	*r |= jg_key_int(g, "allowed", (long long)c->allowed);
	*r |= jg_key_int(g, "would_block", (long long)c->would_block);
	*r |= jg_key_int(g, "blocked", (long long)c->blocked);
	*r |= jg_key_int(g, "dns_queries", (long long)c->dns_queries);
	*r |= jg_key_int(g, "dns_blocked", (long long)c->dns_blocked);
	*r |= jg_key_int(g, "dns_answers", (long long)c->dns_answers);
	*r |= jg_key_int(g, "dns_untrusted", (long long)c->dns_untrusted);
	*r |= jg_key_int(g, "dns_unparsable", (long long)c->dns_unparsable);
	*r |= jg_key_int(g, "dropped_records", (long long)c->dropped_records);
	yajl_gen_map_close(g);
}

static int print_json(const struct fence_row *rows, size_t n, const struct live_ids *orphans,
		      const struct df_host_config *hc, unsigned long long now)
{
	_cleanup_yajl_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	size_t len;
	int r = 0, kept;

	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	yajl_gen_map_open(g);
	r |= jg_key_str(g, "state_dir", hc->state_dir);
	r |= jg_key_str(g, "bpffs_root", hc->bpffs_root);
	/* verified program sets kept for the next fence like theirs (pool.h) */
	kept = pool_count(hc);
	r |= jg_key_int(g, "kept_program_sets", kept > 0 ? kept : 0);
	r |= jg_str(g, "fences");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		const struct fence_row *f = &rows[i];
		char ts[40];

		yajl_gen_map_open(g);
		r |= jg_key_str(g, "id", f->id);
		if (f->have_state) {
			const struct fence_state *st = &f->st;

			format_rfc3339(st->started_ns, ts, sizeof(ts));
			r |= jg_key_str(g, "kind", st->kind);
			r |= jg_key_str(g, "label", st->policy.label);
			r |= jg_key_str(g, "mode", df_mode_name(st->policy.mode));
			r |= jg_key_str(g, "live_mode",
					f->live_mode >= 0 ? df_mode_name(f->live_mode) : NULL);
			r |= jg_key_str(g, "default", df_verdict_name(st->policy.default_verdict));
			r |= jg_key_int(g, "rules", (long long)st->policy.n_rules);
			r |= jg_key_str(g, "cgroup", st->cgroup);
			r |= jg_key_bool(g, "cgroup_exists", f->cgroup_exists);
			r |= jg_key_str(g, "command", st->command[0] ? st->command : NULL);
			r |= jg_key_str(g, "started_at", ts);
			r |= jg_key_int(g, "age_seconds",
					now > st->started_ns ? (long long)((now - st->started_ns) /
									   1000000000ULL)
							     : 0);
		}
		if (f->have_counters) {
			gen_counters(g, &f->c, &r);
			if (f->records >= 0)
				r |= jg_key_int(g, "records", f->records);
			else
				r |= jg_key_str(g, "records", NULL);
		} else {
			r |= jg_key_str(g, "counters", NULL);
		}
		r |= jg_key_str(g, "error", f->err[0] ? f->err : NULL);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	r |= jg_str(g, "orphans");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < orphans->n; i++) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", hc->bpffs_root, orphans->ids[i]);
		yajl_gen_map_open(g);
		r |= jg_key_str(g, "id", orphans->ids[i]);
		r |= jg_key_str(g, "pins", path);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	if (yajl_gen_map_close(g) != yajl_gen_status_ok || r)
		return -EINVAL;
	yajl_gen_get_buf(g, &buf, &len);
	fwrite(buf, 1, len, stdout);
	return 0;
}

#define SCOLS 11

static int print_text(const struct fence_row *rows, size_t n, const struct live_ids *orphans,
		      const struct df_host_config *hc, unsigned long long now)
{
	static const char *const head[SCOLS] = { "ID",		"KIND",	       "MODE",
						 "AGE",		"CONNECTIONS", "ALLOWED",
						 "WOULD-BLOCK", "BLOCKED",     "DNS",
						 "DNS-REFUSED", "LABEL" };
	char *(*cells)[SCOLS + 1] = calloc(n + 1, sizeof(*cells));
	size_t width[SCOLS] = {};
	int r = 0, kept;

	if (!cells)
		return -ENOMEM;
	if (!n)
		printf("no fences (state dir %s)\n", hc->state_dir);
	for (int c = 0; c < SCOLS; c++)
		width[c] = strlen(head[c]);
	for (size_t i = 0; i < n; i++) {
		const struct fence_row *f = &rows[i];
		const struct fence_state *st = &f->st;
		char age[32] = "?";
		int k = 0;

		if (f->have_state && now > st->started_ns)
			live_format_age((now - st->started_ns) / 1000000000ULL, age, sizeof(age));
		cells[i][k++] = strdup(f->id);
		cells[i][k++] = strdup(f->have_state ? st->kind : "?");
		if (!f->have_state) {
			cells[i][k++] = strdup("?");
		} else if (f->live_mode >= 0 && f->live_mode != (int)st->policy.mode) {
			if (asprintf(&cells[i][k++], "%s (now %s: break-glass)",
				     df_mode_name(st->policy.mode), df_mode_name(f->live_mode)) < 0)
				cells[i][k - 1] = NULL;
		} else {
			cells[i][k++] = strdup(df_mode_name(st->policy.mode));
		}
		cells[i][k++] = strdup(age);
		if (f->have_counters) {
			const struct df_counters *c = &f->c;
			unsigned long long v[] = { c->connections, c->allowed,	   c->would_block,
						   c->blocked,	   c->dns_queries, c->dns_blocked };

			for (size_t j = 0; j < ARRAY_SIZE(v); j++)
				if (asprintf(&cells[i][k++], "%llu", v[j]) < 0)
					cells[i][k - 1] = NULL;
		} else {
			for (int j = 0; j < 6; j++)
				cells[i][k++] = strdup("?");
		}
		cells[i][k++] =
			rdoc_clean(f->have_state && st->policy.label ? st->policy.label : "-");
		for (int c = 0; c < SCOLS; c++) {
			if (!cells[i][c]) {
				r = -ENOMEM;
				goto out;
			}
			if (strlen(cells[i][c]) > width[c])
				width[c] = strlen(cells[i][c]);
		}
	}
	if (n) {
		for (int c = 0; c < SCOLS; c++)
			printf(c >= 4 && c <= 9 ? "%*s  " : "%-*s  ", (int)width[c], head[c]);
		printf("CGROUP\n");
	}
	for (size_t i = 0; i < n; i++) {
		const struct fence_row *f = &rows[i];
		_cleanup_free_ char *cg = rdoc_clean(f->have_state ? f->st.cgroup : "?");

		for (int c = 0; c < SCOLS; c++)
			printf(c >= 4 && c <= 9 ? "%*s  " : "%-*s  ", (int)width[c], cells[i][c]);
		printf("%s%s\n", cg ? cg : "?",
		       f->have_state && !f->cgroup_exists ? " (gone: depfence gc reports it)" : "");
		if (f->err[0]) {
			_cleanup_free_ char *e = rdoc_clean(f->err);

			printf("  %s\n", e ? e : "?");
		}
	}
	for (size_t i = 0; i < orphans->n; i++)
		printf("orphan pins %s/%s: no state file (depfence gc reports and removes them)\n",
		       hc->bpffs_root, orphans->ids[i]);
	kept = pool_count(hc);
	if (kept > 0)
		printf("%d verified program set%s kept for the next fence like theirs in %s/%s (fence_pool)\n",
		       kept, kept > 1 ? "s" : "", hc->bpffs_root, POOL_DIR);
out:
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < SCOLS; c++)
			free(cells[i][c]);
	free(cells);
	return r;
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct df_host_config hc;
	struct live_ids ids = {}, pins = {}, orphans = {};
	struct fence_row *rows = NULL;
	struct df_error e = {};
	size_t n = 0;
	unsigned long long now;
	int c, r, json = 0, rc = DF_EXIT_OK;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'h':
			status_usage(stdout);
			return DF_EXIT_OK;
		default:
			df_err("status: unknown or incomplete option \"%s\"", argv[optind - 1]);
			fprintf(stderr, "Try 'depfence status --help'.\n");
			return DF_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		df_err("status: unexpected argument \"%s\"", argv[optind]);
		fprintf(stderr, "Try 'depfence status --help'.\n");
		return DF_EXIT_USAGE;
	}
	r = df_config_load(&hc, &e);
	if (r < 0) {
		df_err("status: %s", e.msg);
		return DF_EXIT_ERROR;
	}
	r = live_state_ids(&hc, &ids);
	if (r < 0) {
		df_err("status: list %s: %s", hc.state_dir, strerror(-r));
		return DF_EXIT_ERROR;
	}
	r = live_pin_ids(&hc, &pins);
	if (r < 0) {
		df_err("status: list %s: %s", hc.bpffs_root, strerror(-r));
		rc = DF_EXIT_ERROR;
	}
	orphans.ids = calloc(pins.n + 1, sizeof(*orphans.ids));
	rows = calloc(ids.n + 1, sizeof(*rows));
	if (!rows || !orphans.ids) {
		df_err("status: out of memory");
		rc = DF_EXIT_ERROR;
		goto out;
	}
	/* directories of other tools (bpffs_root a bpffs mount's root) are not orphans */
	for (size_t i = 0; i < pins.n; i++)
		if (!live_ids_has(&ids, pins.ids[i]) && live_pins_are_fence(&hc, pins.ids[i]) != 0 &&
		    (orphans.ids[orphans.n] = strdup(pins.ids[i])))
			orphans.n++;
	now = now_realtime_ns();
	for (size_t i = 0; i < ids.n; i++) {
		struct fence_row *f = &rows[n];
		struct stat sb;

		snprintf(f->id, sizeof(f->id), "%s", ids.ids[i]);
		f->live_mode = -1;
		r = fence_load_state(&hc, f->id, &f->st, &e);
		if (r == 0)
			continue; /* stopped meanwhile */
		n++;
		if (r < 0) {
			snprintf(f->err, sizeof(f->err), "%s", e.msg);
			rc = DF_EXIT_ERROR;
			continue;
		}
		f->have_state = 1;
		f->cgroup_exists = stat(f->st.cgroup, &sb) == 0;
		r = live_read_counters(&hc, f->id, &f->c, &f->records, &e);
		if (r < 0) {
			snprintf(f->err, sizeof(f->err), "%s", e.msg);
			rc = DF_EXIT_ERROR;
			continue;
		}
		f->have_counters = 1;
		{
			struct df_config cfg;

			/* what it does now: break-glass holds an enforce fence in audit */
			if (live_read_config(&hc, f->id, &cfg, NULL) == 0 && cfg.mode <= DF_MODE_ENFORCE)
				f->live_mode = (int)cfg.mode;
		}
	}
	r = json ? print_json(rows, n, &orphans, &hc, now)
		 : print_text(rows, n, &orphans, &hc, now);
	if (r >= 0 && fflush(stdout) != 0)
		r = -errno;
	if (r < 0) {
		df_err("status: %s", strerror(-r));
		rc = DF_EXIT_ERROR;
	}
out:
	for (size_t i = 0; i < n; i++)
		fence_state_free(&rows[i].st);
	free(rows);
	live_ids_free(&ids);
	live_ids_free(&pins);
	live_ids_free(&orphans);
	return rc;
}
