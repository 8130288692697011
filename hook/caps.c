// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "caps.h"
#include "util.h"

/* The kernel's fixed inode number of the initial user namespace
 * (PROC_USER_INIT_INO). */
#define DF_USER_INIT_INO 0xEFFFFFFDULL

/* The host uid that uid `inner` maps to, from /proc/self/uid_map; -1 when not
 * mapped. */
static long long outer_uid_of(unsigned int inner, int *ret_identity)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/uid_map", "re");
	unsigned long long in, out, count;
	long long r = -1;
	int lines = 0;

	*ret_identity = 0;
	if (!f)
		return -1;
	while (lines < 340 && fscanf(f, "%llu %llu %llu", &in, &out, &count) == 3) {
		lines++;
		if (in == 0 && out == 0 && count == 4294967295ULL)
			*ret_identity = 1;
		if (inner >= in && inner - in < count && r < 0)
			r = (long long)(out + (inner - in));
	}
	return r;
}

int df_caps_self(struct df_caps *ret)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
	struct df_caps c = {};
	struct stat st;
	int identity;

	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	c.eff = (unsigned long long)data[0].effective |
		((unsigned long long)data[1].effective << 32);
	c.euid = (unsigned int)geteuid();
	c.outer_uid = outer_uid_of(c.euid, &identity);
	if (stat("/proc/self/ns/user", &st) == 0)
		c.init_userns = st.st_ino == DF_USER_INIT_INO;
	else if (access("/proc/self/status", F_OK) == 0 && access("/proc/self/uid_map", F_OK) < 0 &&
		 errno == ENOENT)
		c.init_userns = 1; /* /proc is there but no user namespaces: a kernel without them */
	else
		c.init_userns = identity; /* no /proc/self/ns: the full identity map */
	*ret = c;
	return 0;
}

int df_caps_can_fence(const struct df_caps *c)
{
	if (c->init_userns != 1)
		return 0;
	if (df_caps_has(c, DF_CAP_SYS_ADMIN))
		return 1;
	return df_caps_has(c, DF_CAP_BPF) && df_caps_has(c, DF_CAP_NET_ADMIN);
}

void df_caps_explain(const struct df_caps *c, int for_hook, char *buf, size_t len)
{
	const char *need =
		"needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN) in the initial user namespace";

	if (df_caps_can_fence(c)) {
		snprintf(buf, len, "has what it needs (%s)",
			 df_caps_has(c, DF_CAP_SYS_ADMIN) ? "CAP_SYS_ADMIN"
							  : "CAP_BPF, CAP_NET_ADMIN");
		return;
	}
	if (c->init_userns != 1) {
		char outer[64] = "";

		if (c->outer_uid >= 0)
			snprintf(outer, sizeof(outer), ", uid %u here is uid %lld outside", c->euid,
				 c->outer_uid);
		snprintf(
			buf, len,
			"%s, and this process runs in a user namespace (rootless%s), where capabilities do not count for loading cgroup BPF programs; %s",
			need, outer,
			for_hook
				? "rootless podman cannot fence containers: run this container with rootful podman (sudo podman run ...) or another runtime running as root, or remove its depfence.io/ annotations"
				: "run depfence as root on the host (sudo depfence ...), not inside a user namespace");
		return;
	}
	{
		char miss[96] = "";

		if (!df_caps_has(c, DF_CAP_BPF))
			strcat(miss, "CAP_BPF");
		if (!df_caps_has(c, DF_CAP_NET_ADMIN))
			strcat(miss, miss[0] ? ", CAP_NET_ADMIN" : "CAP_NET_ADMIN");
		strcat(miss, ", CAP_SYS_ADMIN");
		snprintf(
			buf, len, "%s; this process (uid %u) lacks %s: %s", need, c->euid, miss,
			for_hook
				? "the runtime runs hooks with its own privileges: run the container engine as root (rootful podman, runc or CRI-O as root)"
				: "run it as root (sudo depfence ...) or give it those capabilities (e.g. systemd AmbientCapabilities=CAP_BPF CAP_NET_ADMIN)");
	}
}
