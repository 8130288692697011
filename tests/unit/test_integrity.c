// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* What could get around the fence, read from a bundle's config.json. */
#include "../../oci/integrity.h"
#include "unit.h"

static const struct {
	const char *name;
	const char *config;
	int raw, admin, sys, bpf, hostnet, hostpid, cgrw;
} cases[] = {
	{ "runc spec defaults",
	  "{\"process\":{\"capabilities\":{\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
	  "\"effective\":[\"CAP_KILL\"]}},"
	  "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"mount\"}]},"
	  "\"mounts\":[{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"options\":[\"nosuid\",\"ro\"]}]}",
	  0, 0, 0, 0, 0, 0, 0 },
	{ "podman default caps include NET_RAW",
	  "{\"process\":{\"capabilities\":{\"bounding\":[\"CAP_NET_RAW\",\"CAP_CHOWN\"]}},"
	  "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\",\"path\":\"/run/netns/x\"}]}}",
	  1, 0, 0, 0, 0, 0, 0 },
	{ "privileged",
	  "{\"process\":{\"capabilities\":{\"effective\":[\"CAP_NET_RAW\",\"CAP_NET_ADMIN\",\"CAP_SYS_ADMIN\",\"CAP_BPF\"]}},"
	  "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"}]},"
	  "\"mounts\":[{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup2\",\"options\":[\"rw\"]}]}",
	  1, 1, 1, 1, 0, 0, 1 },
	{ "host network and pid (no namespaces listed)",
	  "{\"process\":{},\"linux\":{\"namespaces\":[{\"type\":\"mount\"}]}}", 0, 0, 0, 0, 1, 1, 0 },
	{ "ambient capability counts", "{\"process\":{\"capabilities\":{\"ambient\":[\"CAP_BPF\"]}},"
	  "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"}]}}", 0, 0, 0, 1, 0, 0, 0 },
	{ "cgroupfs mounted without ro", "{\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"}]},"
	  "\"mounts\":[{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\"}]}", 0, 0, 0, 0, 0, 0, 1 },
	{ "mistyped parts are not findings", "{\"process\":{\"capabilities\":7},\"linux\":{\"namespaces\":"
	  "[{\"type\":\"pid\"},{\"type\":\"network\"}]},\"mounts\":{}}", 0, 0, 0, 0, 0, 0, 0 },
};

int main(void)
{
	char name[256];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct df_integrity in;
		struct df_error e = {};
		int r = oci_integrity_from_config(cases[i].config, &in, &e);

		snprintf(name, sizeof(name), "integrity %s: parses", cases[i].name);
		CHECK(name, r == 0, "error %d: %s", r, e.msg);
		if (r)
			continue;
#define FIELD(f, want)                                                                             \
	snprintf(name, sizeof(name), "integrity %s: " #f, cases[i].name);                          \
	CHECK_INT(name, want, in.f)
		FIELD(checked, 1);
		FIELD(cap_net_raw, cases[i].raw);
		FIELD(cap_net_admin, cases[i].admin);
		FIELD(cap_sys_admin, cases[i].sys);
		FIELD(cap_bpf, cases[i].bpf);
		FIELD(host_network, cases[i].hostnet);
		FIELD(host_pid, cases[i].hostpid);
		FIELD(writable_cgroupfs, cases[i].cgrw);
#undef FIELD
		CHECK_STR("integrity source", "config.json", in.source);
	}
	{
		struct df_integrity in;
		struct df_error e = {};

		CHECK("integrity: not JSON is an error", oci_integrity_from_config("{", &in, &e) < 0,
		      "accepted");
		CHECK_MSG("integrity: the error names the file", e.msg, "config.json");
		CHECK("integrity: relative bundle refused",
		      oci_integrity_from_bundle("rel/dir", &in, &e) < 0, "accepted");
	}
	return unit_done();
}
