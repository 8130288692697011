// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* depfence: the CLI and OCI hook entry points. */
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>

#include <bpf/libbpf.h>

#include "../oci/integrity.h"
#include "../oci/state.h"
#include "cgroup.h"
#include "cli.h"
#include "breakglass.h"
#include "caps.h"
#include "confine.h"
#include "profiles.h"
#include "report.h"

static int hook_create(const struct df_host_config *hc, struct oci_state *s,
		       const struct df_caps *caps)
{
	struct fence_state st = {};
	struct df_error e = {};
	char cg[PATH_MAX];
	int r, other = 0;

	if (!s->has_annotations) {
		r = oci_config_annotations(s, &e);
		if (r < 0) {
			df_err("container %s: %s", s->id, e.msg);
			return r;
		}
	}
	/* the admin's policy applies to every container the hook is called for */
	if (s->n_ann == 0 && !df_admin_has_policy(hc)) {
		df_debug("container %s: no depfence.io/ annotations, no fence", s->id);
		return 0;
	}
	if (caps && !df_caps_can_fence(caps)) {
		/* a rootless engine runs hooks without what attaching needs: say so before anything */
		char why[768];

		df_caps_explain(caps, 1, why, sizeof(why));
		df_err("container %s: %s", s->id, why);
		return -EPERM;
	}
	df_policy_init(&st.policy);
	r = oci_policy_from_annotations(s->ann, s->n_ann, &st.policy, &e);
	if (r == 0)
		r = df_profiles_apply(hc->profiles_dir, &st.policy, &e);
	if (r == 0)
		r = df_admin_apply(hc, &st.policy, &e);
	if (r < 0) {
		df_err("container %s: %s", s->id, e.msg);
		goto out;
	}
	if (s->pid <= 0) {
		df_err("container %s: the state has no \"pid\": cannot find the container's cgroup (is this hook registered for createRuntime or prestart?)",
		       s->id);
		r = -EINVAL;
		goto out;
	}
	r = cg2_dir_of(s->pid, cg, sizeof(cg));
	if (r == -EPERM) {
		df_err("container %s: pid %d is in the root cgroup; refusing to fence the whole host",
		       s->id, s->pid);
		goto out;
	}
	if (r < 0) {
		df_err("container %s: find the cgroup v2 directory of pid %d: %s", s->id, s->pid,
		       strerror(-r));
		goto out;
	}
	r = cg2_only_pid(cg, s->pid, &other);
	if (r < 0) {
		df_err("container %s: read %s/cgroup.procs: %s", s->id, cg, strerror(-r));
		goto out;
	}
	if (r == 0) {
		df_err("container %s: cgroup %s also holds pid %d, which is not the container's; refusing to fence processes outside the container",
		       s->id, cg, other);
		r = -EBUSY;
		goto out;
	}
	snprintf(st.id, sizeof(st.id), "%s", s->id);
	snprintf(st.kind, sizeof(st.kind), DF_KIND_HOOK);
	snprintf(st.cgroup, sizeof(st.cgroup), "%s", cg);
	/* what poststop compares: another runtime root may run a container of the same id */
	if (s->bundle && snprintf(st.bundle, sizeof(st.bundle), "%s", s->bundle) >=
				 (int)sizeof(st.bundle)) {
		df_err("container %s: the state's \"bundle\" is longer than %zu bytes", s->id,
		       sizeof(st.bundle) - 1);
		r = -ENAMETOOLONG;
		goto out;
	}
	st.started_ns = now_realtime_ns();
	/* the container's command, for the report: what ran in the fence */
	if (oci_command_from_bundle(s->bundle, st.command, sizeof(st.command)) < 0)
		st.command[0] = '\0';
	r = oci_integrity_from_bundle(s->bundle, &st.integrity, &e);
	if (r < 0) {
		/* the fence still holds; the report says what was not checked */
		df_info("container %s: integrity not checked: %s", s->id, e.msg);
		memset(&st.integrity, 0, sizeof(st.integrity));
	}
	r = fence_start(hc, &st, &e);
	if (r < 0) {
		df_err("container %s: %s", s->id, e.msg);
		goto out;
	}
	fence_log_attached(df_info, &st, cg);
out:
	fence_state_free(&st);
	return r;
}

static void hook_usage(FILE *f)
{
	fprintf(f, "Usage: depfence hook createRuntime|prestart|poststop < state.json\n"
		   "\n"
		   "OCI hook: reads the container state JSON on stdin. createRuntime and prestart\n"
		   "attach the fence built from the depfence.io/ annotations; poststop writes the\n"
		   "report to the report dir and removes the fence. Exit 0 on success, 1 on error\n"
		   "(the runtime then does not start the container), 2 on usage errors.\n");
}

int cmd_hook(int argc, char **argv)
{
	struct df_host_config hc;
	struct oci_state s = {};
	struct df_error e = {};
	_cleanup_free_ char *buf = NULL;
	struct df_caps caps = {};
	const char *stage;
	int r, caps_known = 1;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		hook_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? DF_EXIT_USAGE : DF_EXIT_OK;
	}
	stage = argv[1];
	if (strcmp(stage, "createRuntime") && strcmp(stage, "prestart") &&
	    strcmp(stage, "poststop")) {
		df_err("hook: unknown stage \"%s\" (createRuntime, prestart, poststop)", stage);
		return DF_EXIT_USAGE;
	}
	df_log_init("depfence", 1);
	r = df_config_load(&hc, &e);
	if (r < 0) {
		df_err("%s", e.msg);
		return DF_EXIT_ERROR;
	}
	r = read_fd_capped(STDIN_FILENO, OCI_STATE_MAX, &buf, NULL);
	if (r == -E2BIG) {
		df_err("hook %s: container state on stdin is larger than %d bytes", stage,
		       OCI_STATE_MAX);
		return DF_EXIT_ERROR;
	}
	if (r < 0) {
		df_err("hook %s: read container state from stdin: %s", stage, strerror(-r));
		return DF_EXIT_ERROR;
	}
	r = oci_state_parse(buf, &s, &e);
	if (r < 0) {
		df_err("hook %s: %s", stage, e.msg);
		return DF_EXIT_ERROR;
	}
	df_libbpf_logging();
	/* read before seccomp: hook_create judges them once it knows there is a fence to make */
	if (df_caps_self(&caps) < 0)
		caps_known = 0;
	/* from here on the hook acts on what it parsed: only the syscalls that needs */
	r = df_confine_self();
	if (r < 0) {
		df_err("hook %s: container %s: confine the hook with seccomp: %s", stage, s.id,
		       strerror(-r));
		oci_state_free(&s);
		return DF_EXIT_ERROR;
	}
	if (!strcmp(stage, "poststop"))
		r = fence_finish_container(&hc, s.id, s.bundle);
	else
		r = hook_create(&hc, &s, caps_known ? &caps : NULL);
	oci_state_free(&s);
	df_config_free(&hc);
	return r < 0 ? DF_EXIT_ERROR : DF_EXIT_OK;
}

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("depfence %s (libbpf %s)\n", DF_VERSION, libbpf_version_string());
	return DF_EXIT_OK;
}

static int cmd_help(int argc, char **argv);

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{ "hook", cmd_hook, "OCI hook: createRuntime|prestart|poststop, state JSON on stdin" },
	{ "run", cmd_run, "run a command inside a fence: depfence run [OPTIONS] -- CMD [ARG]..." },
	{ "report", cmd_report, "render a report: text, json, junit, sarif, or the policy it implies" },
	{ "status", cmd_status, "the live fences on this host, with their counters so far" },
	{ "check", cmd_check, "validate a policy, print it normalized, explain a verdict" },
	{ "gc", cmd_gc, "report and remove fences whose cgroup is gone" },
	{ "break-glass", cmd_break_glass,
	  "every live fence to audit at once, and back: on --reason TEXT | off | status" },
	{ "doctor", cmd_doctor, "can this host run fences? what to do about each missing piece" },
	{ "version", cmd_version, "print the version" },
	{ "help", cmd_help, "this text" },
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: depfence [--verbose] COMMAND [ARGS]\n\nCommands:\n");
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'depfence COMMAND --help' describes each command.\n"
		   "Exit status: 0 ok, 1 error, 2 usage, 3 violations found (report --fail-on);\n"
		   "run exits with the command's status.\n"
		   "Configuration: /etc/depfence/depfence.json or $DEPFENCE_CONFIG.\n");
}

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return DF_EXIT_OK;
}

int main(int argc, char **argv)
{
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
			df_verbose++;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return cmd_help(0, NULL);
		else if (!strcmp(argv[i], "--version"))
			return cmd_version(0, NULL);
		else {
			fprintf(stderr, "depfence: unknown option %s\n", argv[i]);
			usage(stderr);
			return DF_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return DF_EXIT_USAGE;
	}
	for (size_t c = 0; c < ARRAY_SIZE(commands); c++)
		if (!strcmp(argv[i], commands[c].name))
			return commands[c].fn(argc - i, argv + i);
	fprintf(stderr, "depfence: unknown command \"%s\"\n", argv[i]);
	usage(stderr);
	return DF_EXIT_USAGE;
}
