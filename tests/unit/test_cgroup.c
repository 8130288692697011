// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Finding the cgroup2 hierarchy in mountinfo and a process's cgroup in /proc/PID/cgroup. */
#include <errno.h>

#include "../../hook/cgroup.h"
#include "unit.h"

#define TMPFS "22 1 0:20 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n"
#define CG2_UNIFIED                                                                                \
	"23 22 0:21 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
#define CG1_CPU "24 22 0:22 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu\n"

static void mount_case(const char *name, const char *mountinfo, int want_r, const char *want)
{
	char got[4096] = "", t[256];
	FILE *f = fmemopen((void *)mountinfo, strlen(mountinfo), "r");
	int r;

	if (!f) {
		CHECK(name, 0, "fmemopen failed");
		return;
	}
	r = cg2_mount_from(f, got, sizeof(got));
	fclose(f);
	snprintf(t, sizeof(t), "cg2_mount_from: %s: result", name);
	CHECK_INT(t, want_r, r);
	if (want_r == 0) {
		snprintf(t, sizeof(t), "cg2_mount_from: %s: mount point", name);
		CHECK_STR(t, want, got);
	}
}

static void test_mounts(void)
{
	mount_case("unified host",
		   "29 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", 0,
		   "/sys/fs/cgroup");
	mount_case("hybrid host", TMPFS CG2_UNIFIED CG1_CPU, 0, "/sys/fs/cgroup/unified");
	mount_case("no cgroup2", TMPFS CG1_CPU, -ENOENT, NULL);
	mount_case("a bind mount of a sub-tree is not the root",
		   "40 1 0:21 /user.slice /mnt/cg rw - cgroup2 cgroup2 rw\n", -ENOENT, NULL);
	mount_case("cgroup2 mounted over the hybrid tree hides the unified one",
		   TMPFS CG2_UNIFIED CG1_CPU
		   "50 1 0:21 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
		   0, "/sys/fs/cgroup");
	mount_case("a tmpfs mounted over the only cgroup2 hides it",
		   TMPFS CG2_UNIFIED "51 22 0:40 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n", -ENOENT,
		   NULL);
	mount_case("a later mount beside it does not hide it",
		   TMPFS CG2_UNIFIED "52 22 0:41 / /sys/fs/cgroup/unified2 rw - tmpfs tmpfs rw\n",
		   0, "/sys/fs/cgroup/unified");
	mount_case("escaped mount point",
		   "60 1 0:21 / /srv/cg\\040two rw - cgroup2 cgroup2 rw\n", 0, "/srv/cg two");
}

static void path_case(const char *name, const char *text, int want_r, const char *want)
{
	char got[4096] = "", t[256];
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int r;

	if (!f) {
		CHECK(name, 0, "fmemopen failed");
		return;
	}
	r = cg2_path_from(f, got, sizeof(got));
	fclose(f);
	snprintf(t, sizeof(t), "cg2_path_from: %s: result", name);
	CHECK_INT(t, want_r, r);
	if (want_r == 0) {
		snprintf(t, sizeof(t), "cg2_path_from: %s: path", name);
		CHECK_STR(t, want, got);
	}
}

static void test_paths(void)
{
	path_case("unified", "0::/machine/ctr-1\n", 0, "/machine/ctr-1");
	path_case("hybrid", "12:cpu:/x\n1:name=systemd:/y\n0::/df/job\n", 0, "/df/job");
	path_case("v1 only", "12:cpu:/x\n", -ENOENT, NULL);
	path_case("deleted cgroup", "0::/gone (deleted)\n", -ESTALE, NULL);
	path_case("relative path", "0::x\n", -EINVAL, NULL);
}

int main(void)
{
	test_mounts();
	test_paths();
	return unit_done();
}
