// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * depfence gc: fences whose poststop never came. A fence whose cgroup is gone
 * is reported and removed as poststop would; pins without a state file are
 * reported from what the pins still hold, then removed. Records stay pinned
 * whenever their report could not be written. Safe to run from a timer: a
 * fence whose cgroup exists, a depfence run still finishing, pins still
 * attached to a cgroup and pins younger than the grace time are left alone.
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "../oci/json_emit.h"
#include "pool.h"
#include "cgroup.h"
#include "cli.h"
#include "livefence.h"
#include "report.h"

#define GC_GRACE_DEFAULT 60
/* a hook of the id holds its lock while it attaches or reports: wait that long, then skip it */
#define GC_LOCK_WAIT_MS 3000

static void gc_usage(FILE *f)
{
	fprintf(f,
		"Usage: depfence gc [--dry-run] [--grace SECONDS]\n"
		"\n"
		"Report and remove fences whose poststop never came (a runtime crash, a\n"
		"container removed without its hooks):\n"
		"- a state file whose cgroup directory no longer exists: the report is written\n"
		"  to <report_dir>/<id>.json and pins and state are removed, as poststop does;\n"
		"- a pin directory without a state file, no longer attached to any cgroup and\n"
		"  older than the grace time: its records are reported (mode and default from\n"
		"  the pins; rule texts, label and start time are lost) to <report_dir>/<id>.json\n"
		"  (<id>.gc.json when that exists), then the pins are removed. Directories\n"
		"  without depfence's config map are another tool's: skipped (said).\n"
		"- a state file that cannot be read (not JSON, not depfence's) and is older\n"
		"  than the grace time: moved aside to <id>.json.unreadable; the fence's pins\n"
		"  are then pins without a state file (above).\n"
		"Records stay pinned when their report cannot be written. A fence whose id is\n"
		"locked by a hook for more than 3 s is skipped (said). One line per fence\n"
		"handled on stdout; nothing when there is nothing to do. Safe to run from a\n"
		"timer.\n"
		"\n"
		"  -n, --dry-run        say what would be done, change nothing\n"
		"      --grace SECONDS  leave pins without a state file, and state files that\n"
		"                       cannot be read, alone while they are younger than\n"
		"                       this (a fence being set up); default %d\n"
		"  -h, --help           this text\n"
		"\n"
		"Exit status: 0 ok (also when nothing was to be done), 1 a fence could not be\n"
		"handled (the others still are), 2 usage.\n",
		GC_GRACE_DEFAULT);
}

/* A depfence run that is still alive owns its fence, even after its cgroup is gone. */
static int run_owner_alive(const struct fence_state *st, int *ret_pid)
{
	int pid = 0;

	if (strcmp(st->kind, DF_KIND_RUN) || sscanf(st->id, "run-%d-", &pid) != 1 || pid <= 0)
		return 0;
	*ret_pid = pid;
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* The cgroup depfence run made for id: <parent>/depfence-<id>. */
static int is_run_cgroup(const struct fence_state *st)
{
	const char *base = strrchr(st->cgroup, '/');

	return base && !strncmp(base + 1, "depfence-", 9) && !strcmp(base + 10, st->id);
}

/* The report again, with one more note. */
static int add_note(const char *json, const char *note, char **ret, size_t *ret_len)
{
	_cleanup_yajl_ yajl_val root = NULL;
	_cleanup_yajl_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	int r = 0, had_notes = 0;

	if (!g)
		return -ENOMEM;
	r = json_parse(json, "report", &root, NULL);
	if (r < 0)
		return r;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	yajl_gen_map_open(g);
	for (size_t i = 0; i < json_object_len(root); i++) {
		const char *k = json_object_key(root, i);
		yajl_val v = json_object_value(root, i);

		r |= jg_str(g, k);
		if (strcmp(k, "notes")) {
			r |= json_emit_value(g, v);
			continue;
		}
		had_notes = 1;
		yajl_gen_array_open(g);
		for (size_t j = 0; j < json_array_len(v); j++)
			r |= json_emit_value(g, json_array_at(v, j));
		r |= jg_str(g, note);
		yajl_gen_array_close(g);
	}
	if (!had_notes) {
		r |= jg_str(g, "notes");
		yajl_gen_array_open(g);
		r |= jg_str(g, note);
		yajl_gen_array_close(g);
	}
	return jg_finish(g, r, ret, ret_len);
}

/*
 * The id's lock, so that what gc decides from the state file still holds when
 * it acts (a createRuntime of the id may be finishing a stale fence and
 * starting a new one meanwhile). Bounded: a hook that holds it longer is
 * said and skipped. 1 and the lock's fd, 0 skipped (said), < 0 failed (logged).
 */
static int gc_lock(const struct df_host_config *hc, const char *id, int *ret_lock)
{
	int lock = fence_lock_wait(hc, id, GC_LOCK_WAIT_MS);

	if (lock == -ETIMEDOUT) {
		printf("skipped %s: another depfence (a hook of this id, attaching or reporting) held its lock %s/%s for %d ms; left for the next gc\n",
		       id, hc->state_dir, FENCE_LOCKS, GC_LOCK_WAIT_MS);
		fflush(stdout);
		return 0;
	}
	if (lock < 0) {
		df_err("gc %s: lock %s/%s: %s; left as it is", id, hc->state_dir, FENCE_LOCKS,
		       strerror(-lock));
		return lock;
	}
	*ret_lock = lock;
	return 1;
}

/*
 * A state file that does not parse (a power cut before its data reached the
 * disk, a hand edit, another depfence's format) would stop poststop and gc on
 * its id for good: once older than the grace time it is moved aside, to
 * <id>.json.unreadable, and the id is free again. The fence's pins, if any,
 * are then pins without a state file: reported from what they hold and
 * removed once attached to no cgroup (gc_orphan, in the same run).
 * 1 handled, 0 left alone, < 0 failed (logged).
 */
static int gc_unreadable(const struct df_host_config *hc, const char *id, const char *why,
			 unsigned int grace, int dry_run)
{
	char from[PATH_MAX], to[PATH_MAX + 16];
	struct stat sb;

	snprintf(from, sizeof(from), "%s/%s.json", hc->state_dir, id);
	snprintf(to, sizeof(to), "%s.unreadable", from);
	if (lstat(from, &sb) < 0) {
		int r = -errno;

		if (r == -ENOENT)
			return 0;
		df_err("gc %s: stat %s: %s; left as it is", id, from, strerror(-r));
		return r;
	}
	if (grace && time(NULL) - sb.st_mtime < (time_t)grace) {
		printf("skipped %s: its state file %s cannot be read (%s); it is moved aside once older than %us\n",
		       id, from, why, grace);
		return 0;
	}
	if (!dry_run && rename(from, to) < 0) {
		int r = -errno;

		df_err("gc %s: move %s aside to %s: %s; left as it is", id, from, to, strerror(-r));
		return r;
	}
	/*
	 * The attribution slot the fence held, if any, was named in that file
	 * only: it stays taken (one of 256) until the host restarts
	 */
	printf("%s %s: its state file cannot be read (%s); %s to %s (an attribution slot it held stays taken)\n",
	       dry_run ? "would free" : "freed", id, why, dry_run ? "would move it" : "moved it", to);
	return 1;
}

/* 1 handled, 0 left alone, < 0 failed (logged). */
static int gc_stale(const struct df_host_config *hc, const char *id, unsigned int grace,
		    int dry_run)
{
	struct fence_state st = {};
	struct df_error e = {};
	struct stat sb;
	char report[PATH_MAX];
	_cleanup_close_ int lock = -1;
	int r, pid = 0, owner;

	/* a dry run changes nothing: it judges without the lock */
	if (!dry_run) {
		r = gc_lock(hc, id, &lock);
		if (r <= 0)
			return r;
	}
	r = fence_load_state(hc, id, &st, &e);
	/* its content, not the reading of it (EACCES, EIO: left, said) */
	if (r == -EINVAL || r == -E2BIG || r == -EFBIG)
		return gc_unreadable(hc, id, e.msg, grace, dry_run);
	if (r <= 0) {
		if (r < 0)
			df_err("gc %s: %s; left as it is", id, e.msg);
		return r;
	}
	owner = run_owner_alive(&st, &pid);
	snprintf(report, sizeof(report), "%s/%s.json", hc->report_dir, id);
	if (stat(st.cgroup, &sb) == 0) {
		/* a depfence run that died (SIGKILL) leaves its own cgroup behind, empty */
		if (owner || !is_run_cgroup(&st)) {
			r = 0;
			goto out;
		}
		/* processes left in it or in cgroups the job made below it: the job still runs */
		if (cg2_populated(st.cgroup) != 0 || (!dry_run && cg2_remove_tree(st.cgroup) < 0)) {
			r = 0;
			goto out;
		}
		if (fence_held(hc, id, st.attached) == FENCE_NEVER_HELD)
			printf("%s %s: depfence run (pid %d) is gone; %s its empty cgroup %s; the fence was never completely attached: no report\n",
			       dry_run ? "would remove" : "removed", id, pid,
			       dry_run ? "would remove" : "removed", st.cgroup);
		else
			printf("%s %s: depfence run (pid %d) is gone; %s its empty cgroup %s and %s the report to %s\n",
			       dry_run ? "would report" : "reported", id, pid,
			       dry_run ? "would remove" : "removed", st.cgroup,
			       dry_run ? "would write" : "wrote", report);
	} else if (errno != ENOENT) {
		r = -errno;
		df_err("gc %s: stat cgroup %s: %s; left as it is", id, st.cgroup, strerror(errno));
		goto out;
	} else if (owner) {
		printf("skipped %s: cgroup %s is gone, but depfence run (pid %d) is still finishing\n",
		       id, st.cgroup, pid);
		r = 0;
		goto out;
	} else if (fence_held(hc, id, st.attached) == FENCE_NEVER_HELD) {
		/* its hook was killed while attaching: it never held, there is nothing to report */
		printf("%s %s: cgroup %s is gone and the fence was never completely attached; no report\n",
		       dry_run ? "would remove" : "removed", id, st.cgroup);
	} else {
		printf("%s %s: cgroup %s is gone; report %s\n",
		       dry_run ? "would report" : "reported", id, st.cgroup, report);
	}
	fflush(stdout);
	r = dry_run ? 1 : fence_finish_locked(hc, id, NULL, NULL);
out:
	fence_state_free(&st);
	return r;
}

static int gc_orphan(const struct df_host_config *hc, const char *id, unsigned int grace,
		     int dry_run)
{
	struct fence_state st = {};
	struct fence_data d = {};
	struct df_config cfg = {};
	struct df_error e = {};
	_cleanup_free_ char *json = NULL, *noted = NULL;
	char dir[PATH_MAX], report[PATH_MAX];
	unsigned long long cgid = 0;
	_cleanup_close_ int lock = -1;
	struct stat sb;
	size_t len;
	int r;

	snprintf(dir, sizeof(dir), "%s/%s", hc->bpffs_root, id);
	if (stat(dir, &sb) < 0)
		return 0; /* removed meanwhile */
	if (!dry_run) {
		/* a createRuntime of the id writes its state file first, then pins: under its lock */
		r = gc_lock(hc, id, &lock);
		if (r <= 0)
			return r;
		if (fence_load_state(hc, id, &st, NULL) != 0) {
			fence_state_free(&st);
			printf("skipped %s: pins %s have a state file now (a hook of this id started meanwhile)\n",
			       id, dir);
			return 0;
		}
		if (stat(dir, &sb) < 0)
			return 0;
	}
	/* bpffs_root may be a bpffs mount's root (/sys/fs/bpf) that other tools pin under too */
	r = live_pins_are_fence(hc, id);
	if (r < 0) {
		df_err("gc %s: read %s/config: %s; left as it is", id, dir, strerror(-r));
		return r;
	}
	if (r == 0) {
		printf("skipped %s: %s is not a depfence fence (no depfence config map pinned in it); left as it is\n",
		       id, dir);
		return 0;
	}
	if (grace && time(NULL) - sb.st_mtime < (time_t)grace) {
		printf("skipped %s: pins %s without a state file are younger than %us (a fence being set up?)\n",
		       id, dir, grace);
		return 0;
	}
	r = live_links_attached(hc, id, &cgid);
	if (r < 0) {
		df_err("gc %s: read the links in %s: %s; left as they are", id, dir, strerror(-r));
		return r;
	}
	if (r > 0) {
		printf("kept %s: pins %s have no state file but are still attached to cgroup id %llu\n",
		       id, dir, cgid);
		return 0;
	}
	r = fence_collect(hc, id, &d, &e);
	if (r == 0 && d.n_lost == 2) {
		/* no counters and no records pinned: nothing that could be reported */
		printf("%s %s: pins %s without a state file and without records\n",
		       dry_run ? "would remove" : "removed", id, dir);
		fence_data_free(&d);
		if (dry_run)
			return 1;
		r = fence_remove(hc, id);
		if (r < 0)
			df_err("gc %s: remove %s: %s", id, dir, strerror(-r));
		return r < 0 ? r : 1;
	}
	if (r < 0) {
		df_err("gc %s: %s; the pins stay in %s", id, e.msg, dir);
		return r;
	}
	df_policy_init(&st.policy);
	snprintf(st.id, sizeof(st.id), "%s", id);
	snprintf(st.kind, sizeof(st.kind), "unknown");
	if (live_read_config(hc, id, &cfg, NULL) == 0) {
		st.policy.mode = (int)cfg.mode;
		st.policy.default_verdict = cfg.default_verdict == DF_DENY ? DF_DENY : DF_ALLOW;
	}
	snprintf(report, sizeof(report), "%s/%s.json", hc->report_dir, id);
	if (access(report, F_OK) == 0)
		snprintf(report, sizeof(report), "%s/%s.gc.json", hc->report_dir, id);
	if (dry_run) {
		printf("would recover %s: pins %s without a state file, %zu record%s; report %s\n",
		       id, dir, d.n_recs, d.n_recs == 1 ? "" : "s", report);
		r = 1;
		goto out;
	}
	r = report_build(&st, &d, &json, &len);
	if (r == 0)
		r = add_note(
			json,
			"recovered by depfence gc from pins without a state file: the policy's rules (shown as \"unknown\"), the label, the cgroup, the command and the start time were lost",
			&noted, &len);
	if (r < 0) {
		df_err("gc %s: build the report: %s; the records stay pinned in %s", id,
		       strerror(-r), dir);
		goto out;
	}
	r = report_write(report, noted, len, &e);
	if (r < 0) {
		df_err("gc %s: %s; the records stay pinned in %s", id, e.msg, dir);
		goto out;
	}
	printf("recovered %s: pins %s without a state file, %zu record%s; report %s\n", id, dir,
	       d.n_recs, d.n_recs == 1 ? "" : "s", report);
	r = fence_remove(hc, id);
	if (r < 0)
		df_err("gc %s: remove %s: %s", id, dir, strerror(-r));
	r = r < 0 ? r : 1;
out:
	fence_data_free(&d);
	fence_state_free(&st);
	return r;
}

/*
 * Temp files of atomic writes (".<name>.tmp.<pid>") whose writer is gone: it
 * was killed between creating and renaming them. The final files are whole.
 */
static int gc_temp_files(const char *dir, unsigned int grace, int dry_run)
{
	_cleanup_close_ int dfd = -1;
	struct dirent *de;
	DIR *d;
	int fd, failed = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d))) {
		const char *t = strstr(de->d_name, ".tmp.");
		unsigned int pid;
		struct stat sb;

		if (de->d_name[0] != '.' || !t || t == de->d_name ||
		    parse_u32(t + 5, 1u << 22, &pid) < 0 || pid == 0)
			continue;
		if ((kill((pid_t)pid, 0) == 0 || errno == EPERM) ||
		    fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode) ||
		    (grace && time(NULL) - sb.st_mtime < (time_t)grace))
			continue;
		printf("%s %s/%s: a temp file whose writer (pid %u) is gone\n",
		       dry_run ? "would remove" : "removed", dir, de->d_name, pid);
		if (!dry_run && unlinkat(dfd, de->d_name, 0) < 0 && errno != ENOENT) {
			df_err("gc: remove %s/%s: %s", dir, de->d_name, strerror(errno));
			failed = 1;
		}
	}
	closedir(d);
	return failed ? -EIO : 0;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "grace", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct df_host_config hc;
	struct live_ids ids = {}, pins = {};
	struct df_error e = {};
	unsigned int grace = GC_GRACE_DEFAULT;
	int c, r, dry_run = 0, failed = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "nh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			dry_run = 1;
			break;
		case 'g':
			if (parse_u32(optarg, 7 * 86400, &grace) < 0) {
				df_err("gc: --grace \"%s\": not a number of seconds in 0..604800",
				       optarg);
				goto usage;
			}
			break;
		case 'h':
			gc_usage(stdout);
			return DF_EXIT_OK;
		default:
			df_err("gc: unknown or incomplete option \"%s\"", argv[optind - 1]);
			goto usage;
		}
	}
	if (optind < argc) {
		df_err("gc: unexpected argument \"%s\"", argv[optind]);
		goto usage;
	}
	df_log_init("depfence", 1);
	df_libbpf_logging();
	r = df_config_load(&hc, &e);
	if (r < 0) {
		df_err("gc: %s", e.msg);
		return DF_EXIT_ERROR;
	}
	r = live_state_ids(&hc, &ids);
	if (r < 0) {
		df_err("gc: list %s: %s", hc.state_dir, strerror(-r));
		return DF_EXIT_ERROR;
	}
	for (size_t i = 0; i < ids.n; i++)
		failed |= gc_stale(&hc, ids.ids[i], grace, dry_run) < 0;
	live_ids_free(&ids);

	/* pins without a state file, after the stale fences above are gone */
	r = live_state_ids(&hc, &ids);
	if (r == 0)
		r = live_pin_ids(&hc, &pins);
	if (r < 0) {
		df_err("gc: list %s and %s: %s", hc.state_dir, hc.bpffs_root, strerror(-r));
		failed = 1;
	}
	for (size_t i = 0; r == 0 && i < pins.n; i++)
		if (!live_ids_has(&ids, pins.ids[i]))
			failed |= gc_orphan(&hc, pins.ids[i], grace, dry_run) < 0;
	live_ids_free(&ids);
	live_ids_free(&pins);

	/* the host-wide attribution programs: left by a killed first fence, or idle past attribution_linger */
	if (!dry_run) {
		r = attrib_gc(&hc);
		if (r < 0) {
			df_err("gc: %s/%s: %s", hc.bpffs_root, DF_ATTRIB_DIR, strerror(-r));
			failed = 1;
		} else if (r > 0) {
			printf("removed %s/%s: attribution programs no fence uses\n", hc.bpffs_root,
			       DF_ATTRIB_DIR);
		}
		/* verified program sets idle past attribution_linger (all, with the pool off) */
		r = pool_gc(&hc, !pool_enabled(&hc));
		if (r < 0) {
			df_err("gc: %s/%s: %s", hc.bpffs_root, POOL_DIR, strerror(-r));
			failed = 1;
		} else if (r > 0) {
			printf("removed %d program set%s the pool kept in %s/%s\n", r, r > 1 ? "s" : "",
			       hc.bpffs_root, POOL_DIR);
		}
	}
	failed |= gc_temp_files(hc.state_dir, grace, dry_run) < 0;
	failed |= gc_temp_files(hc.report_dir, grace, dry_run) < 0;
	fflush(stdout);
	return failed ? DF_EXIT_ERROR : DF_EXIT_OK;

usage:
	fprintf(stderr, "Try 'depfence gc --help'.\n");
	return DF_EXIT_USAGE;
}
