// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * depfence break-glass on --reason TEXT | off | status
 *
 * On: <state dir>/break-glass.json records the reason and the time, and the
 * pinned config map of every live fence is switched to audit (new fences
 * start in audit while it is on). Off: each live fence goes back to the mode
 * its state file holds, and the period moves to the history file. Reports
 * list every period that overlapped the fence's life.
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>

#include <bpf/bpf.h>

#include "../oci/json.h"
#include "breakglass.h"
#include "cli.h"
#include "fence.h"

#define HISTORY_FILE ".break-glass-history.json"
#define BG_MAX (1024 * 1024)

static int read_periods(const struct df_host_config *hc, const char *name,
			struct df_breakglass **ret, size_t *ret_n)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_yajl_ yajl_val root = NULL;
	_cleanup_close_ int dfd = -1;
	struct df_breakglass *v;
	yajl_val arr;
	size_t n;
	int r;

	*ret = NULL;
	*ret_n = 0;
	dfd = open(hc->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = read_file_capped(dfd, name, BG_MAX, &buf, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = json_parse(buf, name, &root, NULL);
	if (r < 0)
		return r;
	arr = json_is_object(root) ? json_get(root, "periods") : NULL;
	n = json_array_len(arr);
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yajl_val o = json_array_at(arr, i);
		const char *reason = NULL;
		long long f = 0, t = 0;

		json_get_string(o, "reason", &reason, NULL);
		json_get_int(o, "from_ns", &f, NULL);
		json_get_int(o, "to_ns", &t, NULL);
		snprintf(v[i].reason, sizeof(v[i].reason), "%s", reason ? reason : "");
		v[i].from_ns = (unsigned long long)f;
		v[i].to_ns = (unsigned long long)t;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int write_periods(const struct df_host_config *hc, const char *name,
			 const struct df_breakglass *v, size_t n)
{
	_cleanup_yajl_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *out;
	size_t len;
	int r = 0;

	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	yajl_gen_map_open(g);
	r |= jg_str(g, "periods");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		yajl_gen_map_open(g);
		r |= jg_key_str(g, "reason", v[i].reason);
		r |= jg_key_int(g, "from_ns", (long long)v[i].from_ns);
		r |= jg_key_int(g, "to_ns", (long long)v[i].to_ns);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	if (r)
		return -EINVAL;
	yajl_gen_get_buf(g, &out, &len);
	r = mkdir_p(hc->state_dir, 0700);
	if (r < 0)
		return r;
	return write_file_atomic(hc->state_dir, name, out, len, 0600);
}

int df_breakglass_current(const struct df_host_config *hc, struct df_breakglass *ret)
{
	_cleanup_free_ struct df_breakglass *v = NULL;
	size_t n;
	int r = read_periods(hc, DF_BREAKGLASS_FILE, &v, &n);

	if (r < 0 || n == 0)
		return r < 0 ? r : 0;
	*ret = v[0];
	return 1;
}

int df_breakglass_periods(const struct df_host_config *hc, unsigned long long from,
			  unsigned long long to, struct df_breakglass **ret, size_t *ret_n)
{
	_cleanup_free_ struct df_breakglass *hist = NULL;
	struct df_breakglass cur, *out;
	size_t n = 0, k = 0;
	int on, r;

	r = read_periods(hc, HISTORY_FILE, &hist, &n);
	if (r < 0)
		return r;
	on = df_breakglass_current(hc, &cur);
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (hist[i].from_ns <= to && hist[i].to_ns >= from)
			out[k++] = hist[i];
	if (on > 0 && cur.from_ns <= to)
		out[k++] = cur;
	*ret = out;
	*ret_n = k;
	return 0;
}

#define BG_LOCK_WAIT_MS 3000

/* Set the mode in every live fence's pinned config map: audit, or its own. */
static int switch_fences(const struct df_host_config *hc, int to_audit, int *ret_count)
{
	DIR *d = opendir(hc->state_dir);
	struct dirent *de;
	int r = 0, count = 0;

	*ret_count = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char id[160], path[PATH_MAX];
		_cleanup_close_ int lock = -1;
		struct fence_state st = {};
		struct df_config cfg;
		size_t l = strlen(de->d_name);
		__u32 zero = 0;
		int fd;

		if (l < 6 || l >= sizeof(id) || strcmp(de->d_name + l - 5, ".json"))
			continue;
		memcpy(id, de->d_name, l - 5);
		id[l - 5] = '\0';
		if (safe_id(id) < 0)
			continue;
		/*
		 * A fence starting now pins its config last, having read the
		 * break-glass state first: its lock orders the two. Bounded: a
		 * hook that hangs does not hold break-glass up (that fence is
		 * then switched if its config is pinned, else reported).
		 */
		lock = fence_lock_wait(hc, id, BG_LOCK_WAIT_MS);
		if (fence_load_state(hc, id, &st, NULL) <= 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s/config", hc->bpffs_root, id);
		fd = bpf_obj_get(path);
		if (fd < 0 && lock < 0 && !st.attached) {
			df_err("break-glass: fence %s is starting and held its lock for %d ms: not switched",
			       id, BG_LOCK_WAIT_MS);
			r = -ETIMEDOUT;
		}
		if (fd >= 0 && bpf_map_lookup_elem(fd, &zero, &cfg) == 0) {
			/* a container's own break-glass (its annotation) outlasts the host's */
			cfg.mode = (to_audit || st.policy.break_glass) &&
						   st.policy.mode == DF_MODE_ENFORCE ?
					   DF_MODE_AUDIT :
					   (__u32)st.policy.mode;
			if (bpf_map_update_elem(fd, &zero, &cfg, BPF_ANY) == 0)
				count++;
			else
				r = -errno;
		}
		if (fd >= 0)
			close(fd);
		fence_state_free(&st);
	}
	closedir(d);
	*ret_count = count;
	return r;
}

static void bg_usage(FILE *f)
{
	fprintf(f, "Usage: depfence break-glass on --reason TEXT | off | status\n"
		   "\n"
		   "on: every live fence on this host refuses nothing from now on (audit), and\n"
		   "new fences start in audit, until 'off'; reports record the period and the\n"
		   "reason. off: every live fence goes back to its own mode. status: says which.\n"
		   "Exit status: 0 ok, 1 error, 2 usage.\n");
}

int cmd_break_glass(int argc, char **argv)
{
	struct df_host_config hc;
	struct df_breakglass cur;
	struct df_error e = {};
	const char *reason = NULL;
	int r, on, count;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		bg_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? DF_EXIT_USAGE : DF_EXIT_OK;
	}
	if (!strcmp(argv[1], "on")) {
		if (argc != 4 || strcmp(argv[2], "--reason") || !argv[3][0]) {
			df_err("break-glass on: --reason TEXT is required");
			return DF_EXIT_USAGE;
		}
		reason = argv[3];
		if (strlen(reason) > DF_BREAKGLASS_REASON_MAX) {
			df_err("break-glass on: --reason is longer than %d bytes",
			       DF_BREAKGLASS_REASON_MAX);
			return DF_EXIT_USAGE;
		}
		for (const char *p = reason; *p; p++)
			if ((unsigned char)*p < 0x20) {
				df_err("break-glass on: --reason: control characters are not allowed");
				return DF_EXIT_USAGE;
			}
	} else if (strcmp(argv[1], "off") && strcmp(argv[1], "status")) {
		df_err("break-glass: unknown action \"%s\" (on, off, status)", argv[1]);
		return DF_EXIT_USAGE;
	}
	df_log_init("depfence", 1);
	r = df_config_load(&hc, &e);
	if (r < 0) {
		df_err("%s", e.msg);
		return DF_EXIT_ERROR;
	}
	on = df_breakglass_current(&hc, &cur);
	if (on < 0) {
		df_err("break-glass: read %s/%s: %s", hc.state_dir, DF_BREAKGLASS_FILE,
		       strerror(-on));
		return DF_EXIT_ERROR;
	}
	if (!strcmp(argv[1], "status")) {
		if (on)
			printf("on since %llu: %s\n", cur.from_ns / 1000000000ULL, cur.reason);
		else
			printf("off\n");
		return DF_EXIT_OK;
	}
	if (reason) {
		struct df_breakglass now = { .from_ns = now_realtime_ns() };

		if (on) {
			/*
			 * Switch the live fences again all the same: an 'on' that named a
			 * fence still starting (exit 1), or was killed after writing the
			 * file, is finished by running it again.
			 */
			r = switch_fences(&hc, 1, &count);
			df_info("break-glass is already on (%s): %d live fences in audit%s",
				cur.reason, count, r < 0 ? "; some could not be switched" : "");
			return r < 0 ? DF_EXIT_ERROR : DF_EXIT_OK;
		}
		snprintf(now.reason, sizeof(now.reason), "%s", reason);
		r = write_periods(&hc, DF_BREAKGLASS_FILE, &now, 1);
		if (r < 0) {
			df_err("break-glass on: write %s/%s: %s", hc.state_dir, DF_BREAKGLASS_FILE,
			       strerror(-r));
			return DF_EXIT_ERROR;
		}
		r = switch_fences(&hc, 1, &count);
		df_info("break-glass on (%s): %d live fences switched to audit%s", reason, count,
			r < 0 ? "; some could not be switched" : "");
		return r < 0 ? DF_EXIT_ERROR : DF_EXIT_OK;
	}
	/* off */
	if (!on) {
		/* as for 'on': an 'off' cut short before its fences were switched is finished here */
		r = switch_fences(&hc, 0, &count);
		df_info("break-glass is already off: %d live fences in their own mode%s", count,
			r < 0 ? "; some could not be switched" : "");
		return r < 0 ? DF_EXIT_ERROR : DF_EXIT_OK;
	}
	{
		_cleanup_free_ struct df_breakglass *hist = NULL;
		struct df_breakglass *all;
		size_t n = 0, skip;
		char path[PATH_MAX];

		r = read_periods(&hc, HISTORY_FILE, &hist, &n);
		if (r < 0) {
			df_err("break-glass off: read history: %s", strerror(-r));
			return DF_EXIT_ERROR;
		}
		all = calloc(n + 1, sizeof(*all));
		if (!all)
			return DF_EXIT_ERROR;
		/* bounded history: the oldest periods go first */
		skip = n >= DF_BREAKGLASS_HISTORY_MAX ? n - DF_BREAKGLASS_HISTORY_MAX + 1 : 0;
		memcpy(all, hist + skip, (n - skip) * sizeof(*all));
		cur.to_ns = now_realtime_ns();
		all[n - skip] = cur;
		r = write_periods(&hc, HISTORY_FILE, all, n - skip + 1);
		free(all);
		if (r < 0) {
			df_err("break-glass off: write history: %s", strerror(-r));
			return DF_EXIT_ERROR;
		}
		snprintf(path, sizeof(path), "%s/%s", hc.state_dir, DF_BREAKGLASS_FILE);
		if (unlink(path) < 0 && errno != ENOENT) {
			df_err("break-glass off: remove %s: %s", path, strerror(errno));
			return DF_EXIT_ERROR;
		}
	}
	r = switch_fences(&hc, 0, &count);
	df_info("break-glass off: %d live fences back to their own mode%s", count,
		r < 0 ? "; some could not be switched" : "");
	return r < 0 ? DF_EXIT_ERROR : DF_EXIT_OK;
}
