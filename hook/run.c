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
/* a stop signal that came before the job started: it does not start */
static volatile sig_atomic_t stop_sig;
/* the job has ended (or never will start): the report and the cleanup go on */
static volatile sig_atomic_t job_done;
/* SIGPIPE as this process got it: run ignores it, the job gets it back */
static struct sigaction job_sigpipe;
static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

/* "0::<the fence's cgroup>" as /proc/PID/cgroup says it here, for on_signal */
static char fence_line[PATH_MAX + 8];

/* Is pid in the fence's cgroup or below it (the job or one of its processes)? Async-signal-safe. */
static int in_fence(pid_t pid)
{
	char path[32] = "/proc/", digits[12], buf[PATH_MAX + 64];
	size_t n = 0, k = strlen(fence_line), p = 6;
	ssize_t got;
	int fd;

	do
		digits[n++] = (char)('0' + pid % 10);
	while ((pid /= 10) > 0 && n < sizeof(digits));
	while (n > 0)
		path[p++] = digits[--n];
	memcpy(path + p, "/cgroup", 8);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	got = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (got <= 0)
		return 0;
	buf[got] = '\0';
	/* the v2 line; a hybrid host lists the v1 hierarchies first */
	for (char *l = buf; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, fence_line, k) && (l[k] == '\n' || l[k] == '/' || l[k] == '\0'))
			return 1;
	return 0;
}

/*
 * The job is in run's process group, so what is sent to the group reaches
 * it without run: a terminal's ^C, ^\ and hangup (SI_KERNEL), and a kill of
 * the group from inside the job (its `kill 0`). Run passes on the rest, sent
 * by a process outside the fence, once. (A kill of the whole group from
 * outside the fence, as timeout(1) and some CI runners send, reaches the job
 * twice: once itself, once from run.) Before the job starts, a signal stops
 * the start; a second one ends run at once, as it would have. Once the job
 * has ended, run finishes its report and cleanup regardless.
 */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (job_done)
		return;
	if (child_pid <= 0) {
		if (stop_sig) {
			signal(sig, SIG_DFL);
			raise(sig);
		}
		stop_sig = sig;
		return;
	}
	if (si->si_code == SI_KERNEL)
		return;
	if (si->si_code == SI_USER && si->si_pid > 0 && in_fence(si->si_pid))
		return;
	kill((pid_t)child_pid, sig);
}

static void forwarded_set(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaddset(set, forwarded[i]);
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

/*
 * Start argv in cgdir (the job), with the forwarded signals blocked by the
 * caller: the child sets them back to their defaults, then takes them. 0,
 * or -errno with *ret_exec 1 when the command could not be run (exit 127),
 * 0 when the job could not be put in its fence (exit 1).
 */
static int spawn_in_cgroup(const char *cgdir, char **argv, int confine, const sigset_t *mask,
			   pid_t *ret_pid, int *ret_exec)
{
	_cleanup_close_ int procs = -1;
	int pfd[2], child_err[2] = { 0, 0 };
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
		int err[2] = { 0, 0 }; /* { stage (1: exec), errno } */

		close(pfd[0]);
		for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
			signal(forwarded[i], SIG_DFL);
		sigaction(SIGPIPE, &job_sigpipe, NULL);
		sigprocmask(SIG_SETMASK, mask, NULL);
		if (write(procs, "0", 1) != 1) {
			err[1] = errno;
			(void)!write(pfd[1], err, sizeof(err));
			_exit(127);
		}
		/*
		 * A cgroup namespace rooted at the fence: the job cannot move itself
		 * to a cgroup outside it; and no bpf() and friends to detach it.
		 */
		if (confine && (unshare(CLONE_NEWCGROUP) < 0 || df_confine_job() < 0)) {
			err[1] = errno ? errno : EPERM;
			(void)!write(pfd[1], err, sizeof(err));
			_exit(127);
		}
		execvp(argv[0], argv);
		err[0] = 1;
		err[1] = errno;
		(void)!write(pfd[1], err, sizeof(err));
		_exit(127);
	}
	*ret_pid = pid;
	/* from here on, signals for the job reach it */
	child_pid = pid;
	sigprocmask(SIG_SETMASK, mask, NULL);
	close(pfd[1]);
	do
		n = read(pfd[0], child_err, sizeof(child_err));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == sizeof(child_err)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		child_pid = 0;
		*ret_exec = child_err[0];
		return -child_err[1];
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

	snprintf(fence_line, sizeof(fence_line), "0::%s/depfence-%s", !strcmp(rel, "/") ? "" : rel,
		 st.id);
	/* from before anything is made: a stop now ends the start cleanly */
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(forwarded); i++)
		sigaction(forwarded[i], &sa, NULL);
	/*
	 * A reader of stderr gone (`depfence run ... 2>&1 | head`) must not
	 * kill run between the report and the cleanup: writes fail instead.
	 */
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGPIPE, &sa, &job_sigpipe);

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

	{
		sigset_t block, old;
		int exec_err = 0;

		/* a stop that came while the fence was set up, or comes now: no job */
		forwarded_set(&block);
		sigprocmask(SIG_BLOCK, &block, &old);
		r = stop_sig ? -EINTR : spawn_in_cgroup(cg, argv + optind, !no_confine, &old, &pid,
							&exec_err);
		if (r < 0)
			job_done = 1;
		sigprocmask(SIG_SETMASK, &old, NULL);
		if (r == -EINTR && stop_sig) {
			df_err("run: %s before %s started: not started", strsignal(stop_sig),
			       argv[optind]);
			status = stop_sig; /* as if killed by it: 128 + N */
		} else if (r < 0) {
			df_err("run: %s %s: %s", exec_err ? "start" : "put in its fence", argv[optind],
			       strerror(-r));
			status = exec_err ? 127 << 8 : DF_EXIT_ERROR << 8;
		}
	}
	if (r == 0) {
		siginfo_t si;

		/* ended but not reaped: its pid cannot be anyone else's while signals may still go to it */
		while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
			;
		job_done = 1;
		child_pid = 0;
		while (waitpid(pid, &status, 0) < 0) {
			if (errno != EINTR) {
				df_err("run: wait for %d: %s", (int)pid, strerror(errno));
				break;
			}
		}
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
	if (r == 0) {
		/* its state and pins went before run could report: someone else finished or removed it */
		df_err("run: the fence %s was gone before run could report it (state file and pins removed by something else): no report written",
		       st.id);
		r = -ENOENT;
	}
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
