// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * depfence run: a fresh cgroup, the fence on it, the command in it; wait,
 * end what the command left behind, write the report, remove it all, and
 * exit with the command's status.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <sched.h>
#include <sys/wait.h>
#include <time.h>

#include "../oci/integrity.h"
#include "caps.h"
#include "cgroup.h"
#include "cli.h"
#include "confine.h"
#include "profiles.h"
#include "report.h"

#define RUN_RULES_MAX 1000000

static volatile sig_atomic_t child_pid;
/* SIGPIPE as this process got it: run ignores it, the job gets it back */
static struct sigaction job_sigpipe;

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

static void run_usage(FILE *f)
{
	fprintf(f,
		"Usage: depfence run [OPTIONS] -- CMD [ARG]...\n"
		"\n"
		"Run CMD in a new cgroup fenced by the policy, wait for it, write the report,\n"
		"remove the cgroup and the fence, and exit with CMD's status.\n"
		"\n"
		"  --mode observe|audit|enforce   default audit\n"
		"  --default allow|deny           verdict when no rule matches; default allow\n"
		"  --deny RULES                   rules, comma or space separated; repeatable\n"
		"  --allow RULES                  rules, comma or space separated; repeatable\n"
		"  --profile NAMES                host profiles (<profiles_dir>/NAME.json) to add\n"
		"  --label TEXT                   free text shown in the report\n"
		"  --report FILE                  where the report goes (default: the report dir);\n"
		"                                 a regular file or none yet (a link: its target)\n"
		"  --no-confine                   let the job use bpf(), perf_event_open() and\n"
		"                                 leave its cgroup namespace (noted in the report)\n"
		"\n"
		"RULE = [tcp/|udp/]TARGET[:PORT[-PORT]], TARGET = IPV4[/LEN] | [IPV6[/LEN]] | NAME\n"
		"The host config's admin policy (mode, default, deny, allow) applies under the\n"
		"flags: they may tighten it, and loosen it only with annotations_may_loosen.\n"
		"Exit status: CMD's (128+N when killed by signal N); 1 when the fence could not\n"
		"be set up or the report not written; 2 on usage errors.\n");
}

static int join_argv(char **argv, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; argv[i]; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? " " : "", argv[i]);

		if (n < 0 || (size_t)n >= len - off) {
			if (len > 4)
				memcpy(buf + len - 4, "...", 4);
			return 0;
		}
		off += (size_t)n;
	}
	/* keep the state and report valid JSON text: no control characters */
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return 0;
}

static int spawn_in_cgroup(const char *cgdir, char **argv, int confine, pid_t *ret_pid)
{
	_cleanup_close_ int procs = -1;
	int pfd[2], child_err = 0;
	char path[PATH_MAX];
	ssize_t n;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cgdir);
	procs = open(path, O_WRONLY | O_CLOEXEC);
	if (procs < 0)
		return -errno;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		int r = -errno;

		close(pfd[0]);
		close(pfd[1]);
		return r;
	}
	if (pid == 0) {
		int err;

		close(pfd[0]);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		sigaction(SIGPIPE, &job_sigpipe, NULL);
		if (write(procs, "0", 1) != 1) {
			err = errno;
			(void)!write(pfd[1], &err, sizeof(err));
			_exit(127);
		}
		/*
		 * A cgroup namespace rooted at the fence: the job cannot move itself
		 * to a cgroup outside it; and no bpf() and friends to detach it.
		 */
		if (confine && (unshare(CLONE_NEWCGROUP) < 0 || df_confine_job() < 0)) {
			err = errno ? errno : EPERM;
			(void)!write(pfd[1], &err, sizeof(err));
			_exit(127);
		}
		execvp(argv[0], argv);
		err = errno;
		(void)!write(pfd[1], &err, sizeof(err));
		_exit(127);
	}
	close(pfd[1]);
	do
		n = read(pfd[0], &child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	*ret_pid = pid;
	if (n == sizeof(child_err)) {
		waitpid(pid, NULL, 0);
		return -child_err;
	}
	return 0;
}

/* the report may go to path (a regular file or nothing yet), or to ret, the file a link names */
static int check_report(const char *opt, const char *path, char *ret, size_t len)
{
	char real[PATH_MAX];
	struct stat sb;
	int link;

	if (lstat(path, &sb) < 0) {
		if (errno == ENOENT)
			return 0;
		df_err("run: --report %s: %s", opt, strerror(errno));
		return -errno;
	}
	link = S_ISLNK(sb.st_mode);
	if (link && stat(path, &sb) < 0) {
		df_err("run: --report %s: a symbolic link to %s: %s", opt,
		       errno == ENOENT ? "nothing" : "what cannot be read", strerror(errno));
		return -errno;
	}
	if (!S_ISREG(sb.st_mode)) {
		df_err("run: --report %s: %s%s, not a regular file: the report would replace it; give the path of a regular file or of none yet",
		       opt, link ? "a symbolic link to " : "", df_file_kind(sb.st_mode));
		return -EINVAL;
	}
	if (!link)
		return 0;
	if (!realpath(path, real)) {
		df_err("run: --report %s: resolve the symbolic link: %s", opt, strerror(errno));
		return -errno;
	}
	if (strlen(real) >= len) {
		df_err("run: --report %s: path too long", opt);
		return -ENAMETOOLONG;
	}
	snprintf(ret, len, "%s", real);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "default", required_argument, NULL, 'd' },
		{ "deny", required_argument, NULL, 'D' },
		{ "allow", required_argument, NULL, 'A' },
		{ "label", required_argument, NULL, 'l' },
		{ "report", required_argument, NULL, 'r' },
		{ "profile", required_argument, NULL, 'p' },
		{ "no-confine", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct df_host_config hc;
	struct fence_state st = {};
	struct df_error e = {};
	const char *report = NULL;
	char parent[PATH_MAX], cg[PATH_MAX], mnt[PATH_MAX], rel[PATH_MAX], rpath[PATH_MAX];
	const char *what;
	pid_t pid = 0;
	int c, r, status = 0, rc = DF_EXIT_ERROR, no_confine = 0, loaded = 0;
	struct sigaction sa = {};

	df_policy_init(&st.policy);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (df_parse_mode(optarg, &st.policy.mode) < 0) {
				df_err("run: --mode \"%s\": not a mode (observe, audit, enforce)",
				       optarg);
				goto usage;
			}
			free(st.policy.mode_source);
			st.policy.mode_source = strdup("--mode");
			if (!st.policy.mode_source)
				goto fail;
			break;
		case 'd':
			if (df_parse_default(optarg, &st.policy.default_verdict) < 0) {
				df_err("run: --default \"%s\": not a verdict (allow, deny)", optarg);
				goto usage;
			}
			free(st.policy.default_source);
			st.policy.default_source = strdup("--default");
			if (!st.policy.default_source)
				goto fail;
			break;
		case 'D':
		case 'A':
			r = df_policy_add_list(&st.policy, optarg, c == 'D' ? DF_DENY : DF_ALLOW,
					       c == 'D' ? "--deny" : "--allow", RUN_RULES_MAX, &e);
			if (r < 0) {
				df_err("run: %s", e.msg);
				goto usage;
			}
			break;
		case 'l':
			if (strlen(optarg) > 1024) {
				df_err("run: --label: longer than 1024 bytes");
				goto usage;
			}
			free(st.policy.label);
			st.policy.label = strdup(optarg);
			if (!st.policy.label)
				goto fail;
			break;
		case 'r':
			report = optarg;
			break;
		case 'p':
			r = df_policy_add_profiles(&st.policy, optarg, "--profile", &e);
			if (r < 0) {
				df_err("run: %s", e.msg);
				goto usage;
			}
			break;
		case 'N':
			no_confine = 1;
			break;
		case 'h':
			run_usage(stdout);
			df_policy_free(&st.policy);
			return DF_EXIT_OK;
		default:
			df_err("run: unknown or incomplete option \"%s\"", argv[optind - 1]);
			goto usage;
		}
	}
	if (optind >= argc) {
		df_err("run: no command given");
		goto usage;
	}
	if (report) {
		char cwd[PATH_MAX];
		int n;

		/* only a relative path needs the current directory (which may be gone) */
		if (report[0] != '/' && !realpath(".", cwd)) {
			df_err("run: --report %s: find the current directory: %s", report,
			       strerror(errno));
			goto usage;
		}
		n = report[0] == '/' ? snprintf(rpath, sizeof(rpath), "%s", report) :
				       snprintf(rpath, sizeof(rpath), "%s/%s", cwd, report);
		if (n < 0 || (size_t)n >= sizeof(rpath)) {
			df_err("run: --report %s: path too long", report);
			goto usage;
		}
		/*
		 * The report replaces the file it names (renamed over it): a
		 * device, FIFO or directory there would be replaced for the
		 * whole host. A symbolic link to a regular file: its target.
		 */
		if (check_report(report, rpath, rpath, sizeof(rpath)) < 0)
			goto usage;
		report = rpath;
	}

	df_log_init("depfence", 1);
	{
		/* before anything is created: a fence needs privileges a user namespace lacks */
		struct df_caps caps;
		char why[768];

		if (df_caps_self(&caps) == 0 && !df_caps_can_fence(&caps)) {
			df_caps_explain(&caps, 0, why, sizeof(why));
			df_err("run: %s", why);
			goto fail;
		}
	}
	df_libbpf_logging();
	r = df_config_load(&hc, &e);
	if (r < 0) {
		df_err("run: %s", e.msg);
		goto fail;
	}
	loaded = 1;
	/* the admin's policy holds for run as for the hook: flags tighten it */
	r = df_profiles_apply(hc.profiles_dir, &st.policy, &e);
	if (r == 0)
		r = df_admin_apply(&hc, &st.policy, &e);
	if (r < 0) {
		df_err("run: %s", e.msg);
		goto fail;
	}

	r = cg2_mount(mnt, sizeof(mnt));
	if (r == 0)
		r = cg2_path_of(0, rel, sizeof(rel));
	if (r < 0) {
		df_err("run: find this process's cgroup v2 directory: %s (is cgroup2 mounted?)",
		       strerror(-r));
		goto fail;
	}
	snprintf(parent, sizeof(parent), "%s%s", !strcmp(mnt, "/") ? "" : mnt,
		 !strcmp(rel, "/") ? "" : rel);
	snprintf(st.id, sizeof(st.id), "run-%d-%llx", (int)getpid(),
		 (unsigned long long)(now_realtime_ns() & 0xffffffffffULL));
	snprintf(st.kind, sizeof(st.kind), DF_KIND_RUN);
	if ((size_t)snprintf(cg, sizeof(cg), "%s/depfence-%s", parent, st.id) >= sizeof(cg)) {
		df_err("run: cgroup path too long");
		goto fail;
	}
	snprintf(st.cgroup, sizeof(st.cgroup), "%s", cg);
	join_argv(argv + optind, st.command, sizeof(st.command));
	st.started_ns = now_realtime_ns();
	df_integrity_from_self(&st.integrity);
	st.integrity.unconfined = no_confine;
	/* the job shares this host's files and fds: a socket made outside can reach it */
	st.integrity.foreign_sockets = 1;
	/*
	 * In a cgroup namespace rooted at the fence the job cannot move out,
	 * but only where cgroup2 is mounted with nsdelegate.
	 */
	st.integrity.writable_cgroupfs = st.integrity.writable_cgroupfs &&
					 (no_confine || !cg2_nsdelegate());

	if (mkdir(cg, 0755) < 0) {
		df_err("run: create cgroup %s: %s", cg, strerror(errno));
		goto fail;
	}
	/* made here, empty: the job enters it once the fence holds (spawn_in_cgroup) */
	st.fresh = 1;
	r = fence_start(&hc, &st, &e);
	if (r < 0) {
		df_err("run: %s", e.msg);
		cg2_remove_tree(cg);
		goto fail;
	}
	/* the terminal has the job's own output; the attach line goes to syslog */
	fence_log_attached(df_note, &st, cg);

	sa.sa_handler = forward_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	/*
	 * A reader of stderr gone (`depfence run ... 2>&1 | head`) must not
	 * kill run between the report and the cleanup: writes fail instead.
	 */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &job_sigpipe);

	r = spawn_in_cgroup(cg, argv + optind, !no_confine, &pid);
	if (r < 0) {
		df_err("run: start %s: %s", argv[optind], strerror(-r));
		status = 127 << 8;
	} else {
		child_pid = pid;
		while (waitpid(pid, &status, 0) < 0) {
			if (errno != EINTR) {
				df_err("run: wait for %d: %s", (int)pid, strerror(errno));
				break;
			}
		}
		child_pid = 0;
	}

	/* whatever the job left running, in sub-cgroups too, goes with it: the fence ends now */
	what = "emptied";
	r = cg2_kill_all(cg);
	if (r >= 0) {
		what = "removed";
		r = cg2_remove_tree(cg);
	}
	if (r < 0) {
		/* what is left in it stays fenced: the fence outlives this run */
		df_err("run: cgroup %s could not be %s (%s); its fence %s stays attached and no report is written: end what is left in it and remove it, then `depfence gc` reports and removes the fence",
		       cg, what, strerror(-r), st.id);
		rc = DF_EXIT_ERROR;
		goto out;
	}

	r = fence_finish(&hc, st.id, report, NULL);
	if (WIFEXITED(status))
		rc = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		rc = 128 + WTERMSIG(status);
	if (r < 0 && rc == 0)
		rc = DF_EXIT_ERROR;
out:
	fence_state_free(&st);
	df_config_free(&hc);
	return rc;

usage:
	run_usage(stderr);
	fence_state_free(&st);
	return DF_EXIT_USAGE;
fail:
	fence_state_free(&st);
	if (loaded)
		df_config_free(&hc);
	return DF_EXIT_ERROR;
}
