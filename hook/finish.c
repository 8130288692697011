// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The end of a fence, shared by the poststop hook, depfence run and gc. */
#include <sys/stat.h>

#include <bpf/libbpf.h>

#include "breakglass.h"
#include "cli.h"
#include "pool.h"
#include "report.h"

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && df_verbose < 2)
		return 0;
	if (!df_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void df_libbpf_logging(void)
{
	libbpf_set_print(libbpf_print);
}

int fence_finish(const struct df_host_config *hc, const char *id, const char *report_path,
		 struct fence_data *ret_data)
{
	_cleanup_close_ int lock = fence_lock(hc, id);

	if (lock < 0) {
		df_err("poststop %s: lock %s/%s: %s", id, hc->state_dir, FENCE_LOCKS, strerror(-lock));
		return lock;
	}
	return fence_finish_locked(hc, id, report_path, ret_data);
}

int fence_finish_container(const struct df_host_config *hc, const char *id, const char *bundle)
{
	_cleanup_close_ int lock = fence_lock(hc, id);
	struct fence_state st = {};
	int r;

	if (lock < 0) {
		df_err("poststop %s: lock %s/%s: %s", id, hc->state_dir, FENCE_LOCKS, strerror(-lock));
		return lock;
	}
	/* a state file that cannot be read: fence_finish_locked says why */
	r = fence_load_state(hc, id, &st, NULL);
	if (r > 0 && bundle && st.bundle[0] && strcmp(st.bundle, bundle)) {
		df_err("poststop %s: the fence with this id belongs to the container of bundle %s, not to this one (bundle %s): container ids are unique per runtime root only; that fence is left alone",
		       id, st.bundle, bundle);
		fence_state_free(&st);
		return 0;
	}
	fence_state_free(&st);
	return fence_finish_locked(hc, id, NULL, NULL);
}

int fence_finish_locked(const struct df_host_config *hc, const char *id, const char *report_path,
			struct fence_data *ret_data)
{
	struct fence_state st = {};
	struct fence_data d = {};
	struct df_error e = {};
	_cleanup_free_ char *json = NULL;
	char path[PATH_MAX], line[1024];
	size_t len;
	int r, lost_links = 0;

	r = fence_load_state(hc, id, &st, &e);
	if (r < 0) {
		df_err("poststop %s: %s", id, e.msg);
		return r;
	}
	if (r == 0) {
		char dir[PATH_MAX];
		struct stat sb;

		snprintf(dir, sizeof(dir), "%s/%s", hc->bpffs_root, id);
		if (stat(dir, &sb) == 0) {
			df_err("poststop %s: pins at %s but no state file in %s; leaving them for depfence gc",
			       id, dir, hc->state_dir);
			return -ENOENT;
		}
		df_debug("poststop %s: no fence, nothing to do", id);
		/* a first fence killed before its state file may have left the attribution programs */
		if (attrib_gc(hc) > 0)
			df_info("poststop %s: removed attribution programs no fence uses", id);
		return 0;
	}
	r = fence_held(hc, id, st.attached);
	/* it held, then its link pins went: report what the maps still hold, as not whole */
	lost_links = r == FENCE_LINKS_LOST;
	if (r == FENCE_NEVER_HELD) {
		/* its fence_start never finished (killed): it never held, nothing to report */
		r = fence_discard(hc, id);
		if (r < 0)
			df_err("poststop %s: remove what an unfinished fence left in %s/%s and %s: %s",
			       id, hc->bpffs_root, id, hc->state_dir, strerror(-r));
		else
			df_info("fence %s was never completely attached (its hook did not finish); removed what it left, no report",
				id);
		goto out;
	}
	r = fence_collect(hc, id, &d, &e);
	if (r < 0) {
		df_err("poststop %s: %s", id, e.msg);
		goto out;
	}
	if (lost_links)
		d.lost[d.n_lost++] = "links";
	r = attrib_collect(hc, &st.attrib, &d);
	if (r < 0) {
		df_err("poststop %s: read process attribution: %s", id, strerror(-r));
		goto out;
	}
	/* the report says when break-glass lifted the fence, and why */
	df_breakglass_periods(hc, st.started_ns, d.stopped_ns, &d.breakglass, &d.n_breakglass);
	r = report_build(&st, &d, &json, &len);
	if (r < 0) {
		df_err("poststop %s: build report: %s", id, strerror(-r));
		goto out;
	}
	if (report_path)
		snprintf(path, sizeof(path), "%s", report_path);
	else
		snprintf(path, sizeof(path), "%s/%s.json", hc->report_dir, id);
	r = report_write(path, json, len, &e);
	if (r < 0) {
		df_err("poststop %s: %s; the records stay pinned in %s/%s", id, e.msg,
		       hc->bpffs_root, id);
		goto out;
	}
	report_summary_line(&st, &d, path, line, sizeof(line));
	df_info("%s", line);
	if (d.n_lost) {
		char what[64] = "";

		for (size_t i = 0; i < d.n_lost; i++)
			snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%s",
				 i ? ", " : "", d.lost[i]);
		df_err("fence %s: its pinned %s were removed before the report: %s is incomplete (records_lost)",
		       id, what, path);
	}
	/* before the state file goes: a crash in between leaves the slot to gc */
	r = attrib_detach(hc, &st.attrib);
	if (r < 0)
		df_err("poststop %s: release process attribution: %s", id, strerror(-r));
	/*
	 * The verified programs may wait in the pool for the next fence like
	 * this one: not those of a fence whose pins someone changed, nor of one
	 * with more records than are quickly emptied
	 */
	r = fence_retire(hc, &st, !d.n_lost && d.n_recs <= POOL_MAX_RECORDS);
	if (r < 0)
		df_err("poststop %s: remove pins and state: %s", id, strerror(-r));
	/* written and cleaned, but not whole: the caller fails (run exits 1, gc counts it) */
	r = r < 0 ? r : d.n_lost ? -EUCLEAN : 1;
	if (ret_data) {
		*ret_data = d;
		memset(&d, 0, sizeof(d));
	}
out:
	fence_data_free(&d);
	fence_state_free(&st);
	return r;
}

