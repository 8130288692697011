// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * depfence doctor: can this host run fences, and what to do about each
 * missing piece. Loads and drops a few programs; attaches, pins and writes
 * nothing.
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../oci/json.h"
#include "caps.h"
#include "cgroup.h"
#include "cli.h"

#define DOCTOR_CHECKS_MAX 48
#define HOOKS_DIR_ENTRIES_MAX 1024
#define HOOK_FILE_MAX (64 * 1024)

struct check {
	const char *name;
	char path[PATH_MAX]; /* what the check is about, when it is a file or
				directory */
	int ok;
	int required; /* a failure means this host cannot run fences */
	char detail[1024];
	char fix[1024];
};

struct doctor {
	struct check c[DOCTOR_CHECKS_MAX];
	size_t n;
};

static struct check *add(struct doctor *d, const char *name, int required)
{
	struct check *c = &d->c[d->n < DOCTOR_CHECKS_MAX - 1 ? d->n++ : d->n];

	memset(c, 0, sizeof(*c));
	c->name = name;
	c->required = required;
	return c;
}

#define SET(buf, ...) snprintf((buf), sizeof(buf), __VA_ARGS__)

static void doctor_usage(FILE *f)
{
	fprintf(f,
		"Usage: depfence doctor [--json]\n"
		"\n"
		"Say whether this host can run fences and what to do about each missing piece:\n"
		"the configuration, the caller's capabilities and user namespace, the cgroup2\n"
		"mount, bpffs, the BPF program types and bpf_link support (probed by loading\n"
		"small programs and the fence's own, then dropping them), BTF, the report and\n"
		"state dirs, and the hooks.d directories of hooks_dirs with depfence's two\n"
		"files. Run it as the user the hooks run as (root). Nothing is attached, pinned\n"
		"or written.\n"
		"\n"
		"  --json      machine output: {\"schema\": \"depfence.doctor/v1\", \"ok\": BOOL,\n"
		"              \"checks\": [{\"name\", \"ok\", \"required\", \"detail\", \"fix\"}]}\n"
		"  -h, --help  this text\n"
		"\n"
		"Exit status: 0 when this host can run fences (every required check passed),\n"
		"1 otherwise, 2 usage.\n");
}

/* ---- the caller ---- */

static void check_perfmon(struct doctor *d, const struct df_caps *caps)
{
	struct check *c;

	if (!df_caps_can_fence(caps))
		return; /* said with the capabilities */
	c = add(d, "cap_perfmon", 0);
	c->ok = df_caps_has(caps, DF_CAP_PERFMON) || df_caps_has(caps, DF_CAP_SYS_ADMIN);
	if (c->ok) {
		SET(c->detail, "process attribution's tracing programs can load");
	} else {
		SET(c->detail,
		    "no CAP_PERFMON or CAP_SYS_ADMIN: the fence holds, but reports name only pid and comm (no cmdline, exe, ancestry)");
		SET(c->fix, "run as root, or grant CAP_PERFMON as well");
	}
}

/* ---- the kernel ---- */

static void check_cgroup2(struct doctor *d)
{
	struct check *c = add(d, "cgroup2", 1);
	char mnt[PATH_MAX], rel[PATH_MAX];
	struct statfs sf;
	int r = cg2_mount(mnt, sizeof(mnt));

	if (r < 0) {
		SET(c->detail, "no cgroup2 mount in /proc/self/mountinfo%s%s",
		    r == -ENOENT ? "" : ": ", r == -ENOENT ? "" : strerror(-r));
		SET(c->fix,
		    "mount the unified hierarchy: boot with systemd.unified_cgroup_hierarchy=1, or mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified on a hybrid host");
		return;
	}
	SET(c->path, "%s", mnt);
	r = cg2_path_of(0, rel, sizeof(rel));
	if (r < 0) {
		SET(c->detail, "mounted at %s, but this process's cgroup v2 path is unknown: %s",
		    mnt, strerror(-r));
		SET(c->fix,
		    "check /proc/self/cgroup has a \"0::\" line (cgroup v2 enabled in the kernel)");
		return;
	}
	c->ok = 1;
	if (strcmp(mnt, "/sys/fs/cgroup") && statfs("/sys/fs/cgroup", &sf) == 0 &&
	    sf.f_type != CGROUP2_SUPER_MAGIC)
		SET(c->detail,
		    "mounted at %s (hybrid host: cgroup v1 controllers at /sys/fs/cgroup; depfence finds the v2 hierarchy there)%s",
		    mnt, cg2_nsdelegate() ? ", nsdelegate" : "");
	else
		SET(c->detail, "mounted at %s%s", mnt, cg2_nsdelegate() ? ", nsdelegate" : "");
}

/* The mount point holding dir: the topmost ancestor on the same device. */
static void mount_point_of(const char *dir, char *ret, size_t len)
{
	char cur[PATH_MAX];
	struct stat st, up;

	snprintf(cur, sizeof(cur), "%s", dir);
	for (int i = 0; i < 256; i++) {
		char *slash = strrchr(cur, '/');
		char parent[PATH_MAX];

		if (!slash || slash == cur || stat(cur, &st) < 0)
			break;
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - cur), cur);
		if (stat(parent, &up) < 0 || up.st_dev != st.st_dev)
			break;
		*slash = '\0';
	}
	snprintf(ret, len, "%s", cur);
}

static void check_bpffs(struct doctor *d, const struct df_host_config *hc,
			const struct df_caps *caps)
{
	struct check *c = add(d, "bpffs", 1);
	struct df_error e = {};
	char dir[PATH_MAX], mp[PATH_MAX];
	int r = fence_bpffs_where(hc->bpffs_root, dir, sizeof(dir), &e);

	SET(c->path, "%s", hc->bpffs_root);
	if (r < 0) {
		SET(c->detail, "%s", e.msg);
		SET(c->fix, "set bpffs_root to a directory under /sys/fs/bpf");
		return;
	}
	if (r == 1) {
		mount_point_of(dir, mp, sizeof(mp));
		c->ok = 1;
		SET(c->detail, "bpffs_root %s: bpffs mounted at %s", hc->bpffs_root, mp);
		return;
	}
	if (!strcmp(dir, "/sys/fs/bpf")) {
		c->ok = df_caps_has(caps, DF_CAP_SYS_ADMIN);
		SET(c->detail,
		    "bpffs_root %s: /sys/fs/bpf is not mounted; depfence mounts bpffs there at the first fence%s",
		    hc->bpffs_root, c->ok ? "" : ", which needs CAP_SYS_ADMIN this process lacks");
		if (!c->ok)
			SET(c->fix,
			    "mount -t bpf bpf /sys/fs/bpf (or in /etc/fstab: bpf /sys/fs/bpf bpf defaults 0 0)");
		return;
	}
	SET(c->detail,
	    "bpffs_root %s: %s is not on a bpf filesystem, and depfence mounts bpffs only on /sys/fs/bpf",
	    hc->bpffs_root, dir);
	SET(c->fix, "mount -t bpf bpf %s, or set bpffs_root to a directory under /sys/fs/bpf", dir);
}

static const struct bpf_insn allow_insns[] = {
	{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
	{ .code = BPF_JMP | BPF_EXIT },
};

static const struct {
	const char *name, *what;
	enum bpf_prog_type type;
	enum bpf_attach_type attach;
} prog_types[] = {
	{ "prog_connect4", "cgroup/connect4 (TCP and connected UDP over IPv4)",
	  BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT },
	{ "prog_connect6", "cgroup/connect6 (TCP and connected UDP over IPv6)",
	  BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_CONNECT },
	{ "prog_sendmsg4", "cgroup/sendmsg4 (unconnected UDP over IPv4)",
	  BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_SENDMSG },
	{ "prog_sendmsg6", "cgroup/sendmsg6 (unconnected UDP over IPv6)",
	  BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP6_SENDMSG },
	{ "prog_cgroup_skb", "cgroup_skb egress and ingress (DNS questions and answers)",
	  BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS },
};

static const char *no_probe =
	"not probed: this process may not load BPF programs (see capabilities)";
static const char *fix_probe =
	"depfence needs Linux 5.10 or later with CONFIG_BPF_SYSCALL and CONFIG_CGROUP_BPF";
static const char *fix_caps = "see capabilities";

/* Load each program type, then try a bpf_link on a file that is no cgroup
 * (nothing attaches). */
static void check_programs(struct doctor *d, const struct df_caps *caps)
{
	int can = df_caps_can_fence(caps), link_prog = -1;
	struct check *c;
	struct df_error e = {};

	for (size_t i = 0; i < ARRAY_SIZE(prog_types); i++) {
		LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = prog_types[i].attach);
		int fd;

		c = add(d, prog_types[i].name, 1);
		if (!can) {
			SET(c->detail, "%s: %s", prog_types[i].what, no_probe);
			SET(c->fix, "%s", fix_caps);
			continue;
		}
		fd = bpf_prog_load(prog_types[i].type, NULL, "GPL", allow_insns,
				   ARRAY_SIZE(allow_insns), &o);
		if (fd < 0) {
			SET(c->detail, "%s: the kernel refused a program of this type: %s",
			    prog_types[i].what, strerror(errno));
			SET(c->fix, "%s", fix_probe);
			continue;
		}
		c->ok = 1;
		SET(c->detail, "%s: supported", prog_types[i].what);
		if (link_prog < 0)
			link_prog = fd;
		else
			close(fd);
	}

	c = add(d, "bpf_link", 1);
	if (link_prog < 0) {
		SET(c->detail, "cgroup bpf_link: %s",
		    can ? "not probed: no program type loaded" : no_probe);
		SET(c->fix, "%s", can ? fix_probe : fix_caps);
	} else {
		_cleanup_close_ int notcg = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		int lfd = bpf_link_create(link_prog, notcg, BPF_CGROUP_INET4_CONNECT, NULL);

		/* EBADF: the kernel knows cgroup links and looked for the cgroup */
		if (lfd < 0 && errno == EBADF) {
			c->ok = 1;
			SET(c->detail,
			    "cgroup bpf_link (BPF_LINK_CREATE): supported; fences stay attached through pinned links");
		} else if (lfd >= 0) {
			close(lfd);
			SET(c->detail,
			    "cgroup bpf_link: the kernel attached to a directory that is not a cgroup");
			SET(c->fix, "report this kernel to depfence's maintainers");
		} else {
			SET(c->detail, "cgroup bpf_link (BPF_LINK_CREATE): not supported: %s",
			    strerror(errno));
			SET(c->fix, "use Linux 5.10 or later (bpf_link for cgroups came in 5.7)");
		}
		close(link_prog);
	}

	c = add(d, "fence_programs", 1);
	if (!can) {
		SET(c->detail, "the fence's six programs: %s", no_probe);
		SET(c->fix, "%s", fix_caps);
	} else if (fence_probe_load(&e) < 0) {
		SET(c->detail, "the fence's programs do not load here: %s", e.msg);
		SET(c->fix,
		    "depfence doctor --verbose shows the verifier log; depfence supports Linux 5.10 and later");
	} else {
		c->ok = 1;
		SET(c->detail,
		    "the fence's six programs pass this kernel's verifier (loaded and dropped)");
	}

	c = add(d, "skb_task_helpers", 0);
	c->ok = 1;
	if (!can)
		SET(c->detail, "%s", no_probe);
	else if (fence_probe_skb_task_helpers() > 0)
		SET(c->detail,
		    "cgroup_skb programs may name the current task: DNS questions are attributed in the kernel");
	else
		SET(c->detail,
		    "cgroup_skb programs may not name the current task (kernels before 6.18): DNS questions are attributed through their socket; events are the same");

	c = add(d, "bpf_loop", 0);
	c->ok = 1;
	if (!can)
		SET(c->detail, "%s", no_probe);
	else if (fence_probe_bpf_loop())
		SET(c->detail,
		    "bpf_loop: yes; fences load the loop build, whose DNS name parser costs the verifier ~20k fewer instructions a program");
	else
		SET(c->detail,
		    "bpf_loop: no (kernels before 5.17); fences load the unrolled build, the same behaviour verified at more cost");
}

static void check_btf(struct doctor *d)
{
	struct check *c = add(d, "btf", 0);

	SET(c->path, "/sys/kernel/btf/vmlinux");
	c->ok = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	if (c->ok) {
		SET(c->detail, "/sys/kernel/btf/vmlinux: present; process attribution can load");
	} else {
		SET(c->detail,
		    "/sys/kernel/btf/vmlinux: %s; the fence holds, but reports carry no cmdline, exe or ancestry",
		    strerror(errno));
		SET(c->fix, "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's are)");
	}
}

/* ---- the files ---- */

/*
 * A directory depfence writes to: writable when it exists, else its deepest
 * existing ancestor must be a writable directory (depfence creates the rest).
 */
static void check_dir(struct doctor *d, const char *name, const char *key, const char *dir,
		      int required)
{
	struct check *c = add(d, name, required);
	char cur[PATH_MAX];
	struct stat st;

	SET(c->path, "%s", dir);
	snprintf(cur, sizeof(cur), "%s", dir);
	for (int i = 0; stat(cur, &st) < 0; i++) {
		char *slash = strrchr(cur, '/');

		if (errno != ENOENT && errno != ENOTDIR) {
			SET(c->detail, "%s %s: %s", key, cur, strerror(errno));
			SET(c->fix,
			    "make %s a directory depfence can write, or set %s in the config", dir,
			    key);
			return;
		}
		if (!slash || i >= PATH_MAX / 2) {
			SET(c->detail, "%s %s: no existing ancestor", key, dir);
			SET(c->fix, "set %s in the config to an absolute path", key);
			return;
		}
		if (slash == cur)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	if (!S_ISDIR(st.st_mode)) {
		SET(c->detail, "%s %s: %s is not a directory", key, dir, cur);
		SET(c->fix, "set %s in the config to a directory path", key);
		return;
	}
	if (faccessat(AT_FDCWD, cur, W_OK | X_OK, AT_EACCESS) < 0) {
		SET(c->detail, "%s %s: %s is not writable: %s", key, dir, cur, strerror(errno));
		SET(c->fix,
		    "make %s writable for the user the hooks run as (root), or set %s in the config to one that is",
		    cur, key);
		return;
	}
	c->ok = 1;
	if (!strcmp(cur, dir))
		SET(c->detail, "%s %s: writable", key, dir);
	else
		SET(c->detail, "%s %s: not there yet, depfence creates it (%s is writable)", key,
		    dir, cur);
}

static void check_profiles(struct doctor *d, const char *dir)
{
	struct check *c = add(d, "profiles_dir", 0);
	DIR *dh = opendir(dir);
	struct dirent *de;
	int n = 0;

	SET(c->path, "%s", dir);
	c->ok = 1;
	if (!dh) {
		c->ok = errno == ENOENT;
		SET(c->detail, "profiles_dir %s: %s%s", dir, strerror(errno),
		    errno == ENOENT ? " (jobs that ask for a profile fail)" : "");
		SET(c->fix,
		    "mkdir -p %s and put NAME.json profiles there, if jobs use depfence.io/profile",
		    dir);
		return;
	}
	for (int i = 0; i < HOOKS_DIR_ENTRIES_MAX && (de = readdir(dh)); i++) {
		size_t l = strlen(de->d_name);

		if (l > 5 && !strcmp(de->d_name + l - 5, ".json"))
			n++;
	}
	closedir(dh);
	SET(c->detail, "profiles_dir %s: %d profile%s", dir, n, n == 1 ? "" : "s");
}

#define STAGE_CREATE 1
#define STAGE_POSTSTOP 2

/*
 * One hooks.d file that names depfence: its stages (STAGE_* bits) when it is
 * sound, else -1 with why in err.
 */
static int hook_file(int dfd, const char *fname, int *ret_ours, char *err, size_t errlen)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_yajl_ yajl_val root = NULL;
	struct df_error e = {};
	const char *path = NULL, *base;
	yajl_val hook, stages, args;
	struct stat st;
	int stage = 0, r;

	*ret_ours = 0;
	r = read_file_capped(dfd, fname, HOOK_FILE_MAX, &buf, NULL);
	if (r < 0) {
		/* only a file named for depfence is ours when it cannot be read */
		*ret_ours = !strncmp(fname, "depfence", 8);
		snprintf(err, errlen, "%s: %s", fname, strerror(-r));
		return -1;
	}
	if (json_parse(buf, fname, &root, &e) < 0) {
		*ret_ours = !strncmp(fname, "depfence", 8);
		snprintf(err, errlen, "%s", e.msg);
		return -1;
	}
	hook = json_get(root, "hook");
	if (json_get_string(hook, "path", &path, NULL) < 0)
		path = NULL;
	base = path ? strrchr(path, '/') : NULL;
	*ret_ours = !strncmp(fname, "depfence", 8) || (base && !strcmp(base, "/depfence"));
	if (!*ret_ours)
		return 0;
	if (!path || path[0] != '/') {
		snprintf(err, errlen, "%s: \"hook.path\" is missing or not absolute", fname);
		return -1;
	}
	errno = 0;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
	    faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0) {
		snprintf(err, errlen, "%s: hook.path %s is not an executable file%s%s", fname, path,
			 errno ? ": " : "", errno ? strerror(errno) : "");
		return -1;
	}
	if (json_get_array(root, "stages", &stages, NULL) < 0) {
		snprintf(err, errlen, "%s: no \"stages\" array", fname);
		return -1;
	}
	if (json_get_array(hook, "args", &args, NULL) < 0) {
		snprintf(err, errlen,
			 "%s: no \"hook.args\": depfence needs [\"depfence\", \"hook\", STAGE]",
			 fname);
		return -1;
	}
	for (size_t i = 0; i < json_array_len(stages); i++) {
		const char *s = json_string(json_array_at(stages, i));
		const char *a = json_string(json_array_at(args, 2));
		const char *h = json_string(json_array_at(args, 1));
		int bit = !s							  ? 0
			  : !strcmp(s, "createRuntime") || !strcmp(s, "prestart") ? STAGE_CREATE
			  : !strcmp(s, "poststop")				  ? STAGE_POSTSTOP
										  : 0;

		if (!bit) {
			snprintf(
				err, errlen,
				"%s: stage \"%s\" is not one depfence runs at (createRuntime, prestart, poststop)",
				fname, s ? s : "?");
			return -1;
		}
		if (!h || strcmp(h, "hook") || !a || strcmp(a, s)) {
			snprintf(
				err, errlen,
				"%s: hook.args must be [\"depfence\", \"hook\", \"%s\"] for stage %s",
				fname, s, s);
			return -1;
		}
		stage |= bit;
	}
	if (!json_get(root, "when")) {
		snprintf(
			err, errlen,
			"%s: no \"when\": the engine would not run it (podman wants a condition, e.g. the depfence.io/ annotation)",
			fname);
		return -1;
	}
	return stage;
}

/* 1 when the directory holds sound createRuntime and poststop files for
 * depfence. */
static int check_hooks_dir(struct doctor *d, const char *dir)
{
	struct check *c = add(d, "hooks.d", 1);
	_cleanup_close_ int dfd = -1;
	char files[512] = "";
	int stages = 0, found = 0;
	DIR *dh;
	struct dirent *de;

	SET(c->path, "%s", dir);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		c->ok = errno == ENOENT;
		SET(c->detail, "%s: %s", dir, c->ok ? "not there" : strerror(errno));
		if (!c->ok)
			SET(c->fix, "make %s a readable directory", dir);
		return 0;
	}
	dh = fdopendir(dup(dfd));
	if (!dh) {
		SET(c->detail, "%s: %s", dir, strerror(errno));
		return 0;
	}
	for (int i = 0; i < HOOKS_DIR_ENTRIES_MAX && (de = readdir(dh)); i++) {
		size_t l = strlen(de->d_name);
		char err[768];
		int ours, r;

		if (l <= 5 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		r = hook_file(dfd, de->d_name, &ours, err, sizeof(err));
		if (!ours)
			continue;
		found++;
		if (r < 0) {
			closedir(dh);
			SET(c->detail, "%s: %s", dir, err);
			SET(c->fix,
			    "reinstall depfence's hooks.d files (make install PREFIX=/usr, or copy examples/hooks.d/ and install the binary at their hook.path)");
			return 0;
		}
		stages |= r;
		if (strlen(files) + l + 3 < sizeof(files))
			snprintf(files + strlen(files), sizeof(files) - strlen(files), "%s%s",
				 files[0] ? ", " : "", de->d_name);
	}
	closedir(dh);
	if (!found) {
		c->ok = 1;
		SET(c->detail, "%s: no depfence hooks here", dir);
		return 0;
	}
	if (stages != (STAGE_CREATE | STAGE_POSTSTOP)) {
		SET(c->detail, "%s: %s without a %s hook: %s", dir, files,
		    stages & STAGE_CREATE ? "poststop" : "createRuntime",
		    stages & STAGE_CREATE
			    ? "fences would stay until depfence gc and reports would not be written"
			    : "no container gets a fence");
		SET(c->fix, "install both files of examples/hooks.d/ in %s", dir);
		return 0;
	}
	c->ok = 1;
	SET(c->detail, "%s: %s (createRuntime and poststop, binary present)", dir, files);
	return 1;
}

static void check_hooks(struct doctor *d, const struct df_host_config *hc)
{
	struct check *c;
	int installed = 0;

	for (size_t i = 0; i < hc->n_hooks_dirs; i++)
		installed += check_hooks_dir(d, hc->hooks_dirs[i]);
	c = add(d, "oci_hooks", 1);
	if (!hc->n_hooks_dirs) {
		c->ok = 1;
		SET(c->detail,
		    "hooks_dirs is empty in the config: no container engine here, only depfence run");
		return;
	}
	c->ok = installed > 0;
	if (c->ok) {
		SET(c->detail,
		    "podman and CRI-O reading these hooks.d directories run depfence for containers with depfence.io/ annotations");
		return;
	}
	SET(c->detail,
	    "no hooks.d directory of hooks_dirs holds depfence's createRuntime and poststop files: annotated containers get no fence");
	SET(c->fix,
	    "make install PREFIX=/usr (puts them in /usr/share/containers/oci/hooks.d), or copy examples/hooks.d/*.json into /etc/containers/oci/hooks.d with the binary at /usr/libexec/oci/hooks.d/depfence; set hooks_dirs to [] on hosts that use only depfence run");
}

/* ---- output ---- */

static int all_ok(const struct doctor *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->c[i].required && !d->c[i].ok)
			return 0;
	return 1;
}

static int print_json(const struct doctor *d, const char *config, const char *kernel)
{
	_cleanup_yajl_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	size_t len;
	int r = 0;

	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	yajl_gen_map_open(g);
	r |= jg_key_str(g, "schema", "depfence.doctor/v1");
	r |= jg_key_bool(g, "ok", all_ok(d));
	r |= jg_key_str(g, "kernel", kernel);
	r |= jg_key_str(g, "config", config);
	r |= jg_str(g, "checks");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < d->n; i++) {
		const struct check *c = &d->c[i];

		yajl_gen_map_open(g);
		r |= jg_key_str(g, "name", c->name);
		r |= jg_key_bool(g, "ok", c->ok);
		r |= jg_key_bool(g, "required", c->required);
		r |= jg_key_str(g, "path", c->path[0] ? c->path : NULL);
		r |= jg_key_str(g, "detail", c->detail);
		r |= jg_key_str(g, "fix", c->ok || !c->fix[0] ? NULL : c->fix);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	if (yajl_gen_map_close(g) != yajl_gen_status_ok || r)
		return -EINVAL;
	yajl_gen_get_buf(g, &buf, &len);
	fwrite(buf, 1, len, stdout);
	return 0;
}

static void print_text(const struct doctor *d, const char *config, const char *kernel)
{
	printf("depfence doctor: %s (kernel %s, config %s)\n",
	       all_ok(d) ? "this host can run fences" : "this host cannot run fences yet", kernel,
	       config);
	for (size_t i = 0; i < d->n; i++) {
		const struct check *c = &d->c[i];

		printf("  %-5s %-17s %s\n",
		       c->ok	     ? "ok"
		       : c->required ? "FAIL"
				     : "warn",
		       c->name, c->detail);
		if (!c->ok && c->fix[0])
			printf("  %-5s %-17s fix: %s\n", "", "", c->fix);
	}
}

int cmd_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	static struct doctor d; /* 48 checks of 6 KiB: not on the stack */
	struct df_host_config hc;
	struct df_error e = {};
	struct df_caps caps = {};
	struct utsname un;
	char config[PATH_MAX + 64];
	struct check *c;
	int opt, json = 0, r;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			json = 1;
			break;
		case 'h':
			doctor_usage(stdout);
			return DF_EXIT_OK;
		default:
			df_err("doctor: unknown option \"%s\"", argv[optind - 1]);
			doctor_usage(stderr);
			return DF_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		df_err("doctor: unexpected argument \"%s\"", argv[optind]);
		doctor_usage(stderr);
		return DF_EXIT_USAGE;
	}
	df_libbpf_logging();
	memset(&d, 0, sizeof(d));

	c = add(&d, "config", 1);
	r = df_config_load(&hc, &e);
	if (r < 0) {
		/* the other checks go on with the defaults */
		df_config_defaults(&hc);
		SET(c->detail, "%s", e.msg);
		SET(c->fix,
		    "fix the file (every key is optional; an unknown key is an error), or point DEPFENCE_CONFIG at another");
		snprintf(config, sizeof(config), "%s (does not parse)",
			 getenv("DEPFENCE_CONFIG") && *getenv("DEPFENCE_CONFIG")
				 ? getenv("DEPFENCE_CONFIG")
				 : DF_CONFIG_DEFAULT);
	} else {
		c->ok = 1;
		if (hc.path[0]) {
			SET(c->path, "%s", hc.path);
			SET(c->detail, "%s: parsed", hc.path);
			snprintf(config, sizeof(config), "%s", hc.path);
		} else {
			SET(c->detail, "%s: not there, built-in defaults", DF_CONFIG_DEFAULT);
			snprintf(config, sizeof(config), "built-in defaults");
		}
	}

	if (df_caps_self(&caps) < 0)
		memset(&caps, 0, sizeof(caps)); /* nothing known: nothing held */
	c = add(&d, "capabilities", 1);
	{
		char why[768];

		df_caps_explain(&caps, 0, why, sizeof(why));
		c->ok = df_caps_can_fence(&caps);
		if (c->ok)
			SET(c->detail, "uid %u %s", caps.euid, why);
		else
			SET(c->detail, "%s", why);
		if (!c->ok)
			SET(c->fix, "%s",
			    caps.init_userns != 1
				    ? "run depfence (and the container engine that runs its hooks) as root on the host, outside any user namespace: rootful podman, not rootless"
				    : "run depfence doctor as the user the hooks run as (root: sudo depfence doctor); depfence run needs root or CAP_BPF and CAP_NET_ADMIN");
	}
	check_perfmon(&d, &caps);
	check_cgroup2(&d);
	check_bpffs(&d, &hc, &caps);
	check_programs(&d, &caps);
	check_btf(&d);
	check_dir(&d, "report_dir", "report_dir", hc.report_dir, 1);
	check_dir(&d, "state_dir", "state_dir", hc.state_dir, 1);
	check_profiles(&d, hc.profiles_dir);
	check_hooks(&d, &hc);

	if (uname(&un) < 0)
		snprintf(un.release, sizeof(un.release), "unknown");
	if (json) {
		if (print_json(&d, config, un.release) < 0) {
			df_err("doctor: JSON output failed");
			return DF_EXIT_ERROR;
		}
	} else {
		print_text(&d, config, un.release);
	}
	return all_ok(&d) ? DF_EXIT_OK : DF_EXIT_ERROR;
}
