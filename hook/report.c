// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <arpa/inet.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>

#include "../oci/json.h"
#include "report.h"

static const char *ev_name(int ev)
{
	switch (ev) {
	case DF_EV_BLOCKED:
		return "blocked";
	case DF_EV_WOULD_BLOCK:
		return "would-block";
	}
	return "allowed";
}

static const char *hook_name(int hook)
{
	switch (hook) {
	case DF_HOOK_CONNECT4:
		return "connect4";
	case DF_HOOK_CONNECT6:
		return "connect6";
	case DF_HOOK_SENDMSG4:
		return "sendmsg4";
	case DF_HOOK_SENDMSG6:
		return "sendmsg6";
	case DF_HOOK_DNS:
		return "dns";
	case DF_HOOK_EGRESS:
		return "egress";
	}
	return "unknown";
}

static const char *proto_name(int proto, char *buf, size_t len)
{
	if (proto == 6)
		return "tcp";
	if (proto == 17)
		return "udp";
	if (proto == 1)
		return "icmp";
	if (proto == 58)
		return "icmpv6";
	snprintf(buf, len, "%d", proto);
	return buf;
}

static const char *qtype_name(int t, char *buf, size_t len)
{
	switch (t) {
	case 1:
		return "A";
	case 5:
		return "CNAME";
	case 12:
		return "PTR";
	case 15:
		return "MX";
	case 16:
		return "TXT";
	case 28:
		return "AAAA";
	case 33:
		return "SRV";
	case 65:
		return "HTTPS";
	}
	snprintf(buf, len, "%d", t);
	return buf;
}

static void format_addr(const struct df_rec_key *k, char *buf, size_t len)
{
	inet_ntop(k->family == 4 ? AF_INET : AF_INET6, k->daddr, buf, (socklen_t)len);
}

/* Most severe first, then the busiest. */
static int cmp_records(const void *a, const void *b)
{
	const struct fence_record *x = a, *y = b;

	if (x->k.verdict != y->k.verdict)
		return x->k.verdict > y->k.verdict ? -1 : 1;
	if (x->v.count != y->v.count)
		return x->v.count > y->v.count ? -1 : 1;
	return x->v.first_ns < y->v.first_ns ? -1 : x->v.first_ns > y->v.first_ns;
}

static int same_dest(const struct fence_record *a, const struct fence_record *b)
{
	return a->k.family == b->k.family && a->k.proto == b->k.proto &&
	       a->k.dport == b->k.dport && !memcmp(a->k.daddr, b->k.daddr, 16);
}

static size_t count_destinations(const struct fence_record *r, size_t n)
{
	size_t d = 0;

	for (size_t i = 0; i < n; i++) {
		size_t j;

		for (j = 0; j < i; j++)
			if (same_dest(&r[i], &r[j]))
				break;
		d += j == i;
	}
	return d;
}

static void gen_time(yajl_gen g, const char *key, unsigned long long ns, int *r)
{
	char buf[40];

	if (!ns) {
		*r |= jg_key_str(g, key, NULL);
		return;
	}
	format_rfc3339(ns, buf, sizeof(buf));
	*r |= jg_key_str(g, key, buf);
}

static void gen_comm(yajl_gen g, const char *comm, int *r)
{
	char buf[DF_COMM_LEN + 1];
	size_t n = 0;

	/* comm is whatever the process set: keep printable ASCII so the JSON stays valid */
	for (size_t i = 0; i < DF_COMM_LEN && comm[i]; i++)
		buf[n++] = (comm[i] >= 0x20 && comm[i] < 0x7f) ? comm[i] : '?';
	buf[n] = '\0';
	*r |= jg_key_str(g, "comm", buf);
}

static void gen_rules(yajl_gen g, const struct df_policy *p, int verdict, int *r)
{
	yajl_gen_array_open(g);
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].verdict == verdict)
			*r |= jg_str(g, p->rules[i].text);
	yajl_gen_array_close(g);
}

/* What could get around the fence, as facts and as sentences a person acts on. */
static void gen_integrity(yajl_gen g, const struct df_integrity *in, int *r)
{
	static const struct {
		size_t off;
		const char *key, *risk;
	} items[] = {
		{ offsetof(struct df_integrity, cap_net_raw), "cap_net_raw",
		  "CAP_NET_RAW: packet (AF_PACKET) sockets send frames no cgroup program sees (raw IP sockets meet the egress backstop)" },
		{ offsetof(struct df_integrity, cap_net_admin), "cap_net_admin",
		  "CAP_NET_ADMIN: can change routes, addresses and packet filters of its namespace" },
		{ offsetof(struct df_integrity, cap_sys_admin), "cap_sys_admin",
		  "CAP_SYS_ADMIN: can detach the fence's programs, move out of its cgroup or enter other namespaces" },
		{ offsetof(struct df_integrity, cap_bpf), "cap_bpf",
		  "CAP_BPF: can load programs of its own and read or change the fence's maps" },
		{ offsetof(struct df_integrity, host_network), "host_network",
		  "host network namespace: its traffic and the host's share addresses and routes" },
		{ offsetof(struct df_integrity, host_pid), "host_pid",
		  "host pid namespace: can see and signal the host's processes" },
		{ offsetof(struct df_integrity, writable_cgroupfs), "writable_cgroupfs",
		  "writable cgroupfs: can move its processes out of the fenced cgroup" },
		{ offsetof(struct df_integrity, unconfined), "unconfined",
		  "run --no-confine: the job may use bpf() and perf_event_open() and is not in a cgroup namespace rooted at its fence" },
		{ offsetof(struct df_integrity, foreign_sockets), "foreign_sockets",
		  "sockets made outside the fence (inherited, or passed over a Unix socket) are not fenced: cgroup programs judge a socket by the cgroup it was made in" },
	};

	*r |= jg_str(g, "integrity");
	yajl_gen_map_open(g);
	*r |= jg_key_bool(g, "checked", in->checked);
	if (in->checked) {
		*r |= jg_key_str(g, "source", in->source);
		for (size_t i = 0; i < ARRAY_SIZE(items); i++)
			*r |= jg_key_bool(g, items[i].key,
					  *(const int *)((const char *)in + items[i].off));
		*r |= jg_str(g, "risks");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < ARRAY_SIZE(items); i++)
			if (*(const int *)((const char *)in + items[i].off))
				*r |= jg_str(g, items[i].risk);
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
}

int report_build(const struct fence_state *st, const struct fence_data *d, char **ret,
		 size_t *ret_len)
{
	_cleanup_yajl_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ struct fence_record *recs = NULL;
	const struct df_policy *p = &st->policy;
	size_t names = df_policy_count_names(p);
	int r = 0;

	if (!g)
		return -ENOMEM;
	if (d->n_recs) {
		recs = malloc(d->n_recs * sizeof(*recs));
		if (!recs)
			return -ENOMEM;
		memcpy(recs, d->recs, d->n_recs * sizeof(*recs));
		qsort(recs, d->n_recs, sizeof(*recs), cmp_records);
	}
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);

	yajl_gen_map_open(g);
	r |= jg_key_str(g, "schema", DF_REPORT_SCHEMA);
	r |= jg_key_str(g, "id", st->id);
	r |= jg_key_str(g, "label", p->label);
	r |= jg_key_str(g, "kind", st->kind);
	r |= jg_key_str(g, "command", st->command[0] ? st->command : NULL);
	r |= jg_key_str(g, "cgroup", st->cgroup);
	r |= jg_key_str(g, "mode", df_mode_name(p->mode));
	r |= jg_key_str(g, "default", df_verdict_name(p->default_verdict));
	gen_time(g, "started_at", st->started_ns, &r);
	gen_time(g, "stopped_at", d->stopped_ns, &r);

	r |= jg_str(g, "policy");
	yajl_gen_map_open(g);
	r |= jg_str(g, "deny");
	gen_rules(g, p, DF_DENY, &r);
	r |= jg_str(g, "allow");
	gen_rules(g, p, DF_ALLOW, &r);
	r |= jg_str(g, "profiles");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < p->n_profiles; i++)
		r |= jg_str(g, p->profiles[i]);
	yajl_gen_array_close(g);
	r |= jg_str(g, "rules");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < p->n_rules; i++) {
		yajl_gen_map_open(g);
		r |= jg_key_str(g, "rule", p->rules[i].text);
		r |= jg_key_str(g, "verdict", df_verdict_name(p->rules[i].verdict));
		r |= jg_key_str(g, "source", p->rules[i].source);
		r |= jg_key_bool(g, "enforced", 1);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	r |= jg_key_bool(g, "names_enforced", 1);
	yajl_gen_map_close(g);

	r |= jg_str(g, "summary");
	yajl_gen_map_open(g);
	r |= jg_key_int(g, "connections", (long long)d->counters.connections);
	r |= jg_key_int(g, "allowed", (long long)d->counters.allowed);
	r |= jg_key_int(g, "would_block", (long long)d->counters.would_block);
	r |= jg_key_int(g, "blocked", (long long)d->counters.blocked);
	r |= jg_key_int(g, "dns_queries", (long long)d->counters.dns_queries);
	r |= jg_key_int(g, "dns_blocked", (long long)d->counters.dns_blocked);
	r |= jg_key_int(g, "dns_answers", (long long)d->counters.dns_answers);
	r |= jg_key_int(g, "dns_untrusted", (long long)d->counters.dns_untrusted);
	r |= jg_key_int(g, "dns_unparsable", (long long)d->counters.dns_unparsable);
	r |= jg_key_int(g, "dropped_records", (long long)d->counters.dropped_records);
	r |= jg_key_int(g, "attribution_lost", (long long)(d->attrib.slot.lost + d->attrib.missing));
	r |= jg_key_int(g, "destinations", (long long)count_destinations(recs, d->n_recs));
	yajl_gen_map_close(g);

	r |= jg_str(g, "events");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < d->n_recs; i++) {
		const struct df_rec_key *k = &recs[i].k;
		const struct df_rec_val *v = &recs[i].v;
		char addr[INET6_ADDRSTRLEN], pb[16];
		const char *rule = "default";

		if (k->rule_id > 0 && k->rule_id <= p->n_rules)
			rule = p->rules[k->rule_id - 1].text;
		else if (k->rule_id == DF_RULE_UNPARSABLE)
			rule = "default";
		else if (k->rule_id == DF_RULE_SOURCE_ROUTE)
			rule = "source-route"; /* no rule: egress refuses every source route */
		else if (k->rule_id > 0)
			rule = "unknown";
		format_addr(k, addr, sizeof(addr));
		yajl_gen_map_open(g);
		r |= jg_key_str(g, "verdict", ev_name(k->verdict));
		r |= jg_key_str(g, "hook", hook_name(k->hook));
		r |= jg_key_str(g, "proto", proto_name(k->proto, pb, sizeof(pb)));
		r |= jg_key_str(g, "daddr", addr);
		r |= jg_key_int(g, "dport", k->dport);
		r |= jg_key_str(g, "name", recs[i].name[0] ? recs[i].name : NULL);
		r |= jg_key_str(g, "rule", rule);
		if (k->hook == DF_HOOK_DNS) {
			r |= jg_key_str(g, "qtype", qtype_name(k->qtype, pb, sizeof(pb)));
			r |= jg_key_bool(g, "unparsable", k->rule_id == DF_RULE_UNPARSABLE);
		}
		r |= jg_key_int(g, "count", (long long)v->count);
		gen_time(g, "first_seen", mono_to_realtime_ns(v->first_ns), &r);
		gen_time(g, "last_seen", mono_to_realtime_ns(v->last_ns), &r);
		r |= jg_str(g, "process");
		yajl_gen_map_open(g);
		r |= jg_key_int(g, "pid", k->tgid);
		r |= jg_key_int(g, "tgid", k->tgid);
		r |= jg_key_int(g, "tid", v->pid);
		r |= jg_key_int(g, "uid", v->uid);
		gen_comm(g, v->comm, &r);
		attrib_gen_process(g, &d->attrib, &recs[i], &r);
		yajl_gen_map_close(g);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);

	gen_integrity(g, &st->integrity, &r);

	r |= jg_str(g, "break_glass");
	yajl_gen_array_open(g);
	if (p->break_glass) {
		/* this container's own (depfence.io/break-glass): its whole life */
		yajl_gen_map_open(g);
		r |= jg_key_str(g, "reason", p->break_glass);
		gen_time(g, "from", st->started_ns, &r);
		gen_time(g, "to", d->stopped_ns, &r);
		r |= jg_key_str(g, "scope", "container");
		r |= jg_key_str(g, "source", p->break_glass_source);
		yajl_gen_map_close(g);
	}
	for (size_t i = 0; i < d->n_breakglass; i++) {
		yajl_gen_map_open(g);
		r |= jg_key_str(g, "reason", d->breakglass[i].reason);
		gen_time(g, "from", d->breakglass[i].from_ns, &r);
		gen_time(g, "to", d->breakglass[i].to_ns, &r);
		r |= jg_key_str(g, "scope", "host");
		r |= jg_key_str(g, "source", "depfence break-glass on");
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);

	if (d->n_lost) {
		r |= jg_str(g, "records_lost");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < d->n_lost; i++)
			r |= jg_str(g, d->lost[i]);
		yajl_gen_array_close(g);
	}

	r |= jg_str(g, "notes");
	yajl_gen_array_open(g);
	if (d->n_lost)
		r |= jg_str(g, "INCOMPLETE: pins named in records_lost were removed before this report (by a process with CAP_SYS_ADMIN in the fence, or by hand): without \"links\" the fence kept refusing but its counts and events are missing here; with \"links\" the fence of a container was lifted from then on (depfence run holds its links: its fence held)");
	if (names)
		r |= jg_str(g, "name rules apply to DNS questions and to addresses learned from answers to this fence's own questions; a name resolved another way (DNS over HTTPS, a hosts file, a hard-coded address) is judged by address rules only");
	if (p->break_glass)
		r |= jg_str(g, "break-glass for this container (depfence.io/break-glass): nothing was refused, what enforce would have refused is would-block (see break_glass)");
	else if (d->n_breakglass)
		r |= jg_str(g, "break-glass was on during this fence: nothing was refused then (see break_glass)");
	if (d->counters.dropped_records)
		r |= jg_str(g, "the record map was full: some events were counted but not recorded (dropped_records)");
	r |= attrib_gen_notes(g, &d->attrib);
	yajl_gen_array_close(g);

	return jg_finish(g, r, ret, ret_len);
}

int report_write(const char *path, const char *json, size_t len, struct df_error *e)
{
	char d[PATH_MAX], b[PATH_MAX];
	struct stat sb;
	int r;

	if (strlen(path) >= sizeof(d))
		return df_fail(e, -ENAMETOOLONG, "report path too long");
	snprintf(d, sizeof(d), "%s", path);
	snprintf(b, sizeof(b), "%s", path);
	r = mkdir_p(dirname(d), 0750);
	if (r < 0)
		return df_fail(e, r, "report dir for %s: %s", path, strerror(-r));
	/* renamed over: a device, FIFO, directory or link there would be replaced, not written */
	if (lstat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
		return df_fail(e, -EINVAL, "write report %s: it is %s, not a regular file: not replaced",
			       path, df_file_kind(sb.st_mode));
	snprintf(d, sizeof(d), "%s", path);
	r = write_file_atomic(dirname(d), basename(b), json, len, 0640);
	if (r < 0)
		return df_fail(e, r, "write report %s: %s", path, strerror(-r));
	return 0;
}

void report_summary_line(const struct fence_state *st, const struct fence_data *d,
			 const char *path, char *buf, size_t len)
{
	snprintf(buf, len,
		 "fence %s%s%s%s mode=%s: %llu connections, %llu allowed, %llu would-block, %llu blocked; %llu dns questions, %llu refused; %llu dropped records; report %s",
		 st->id, st->policy.label ? " (" : "", st->policy.label ? st->policy.label : "",
		 st->policy.label ? ")" : "", df_mode_name(st->policy.mode),
		 (unsigned long long)d->counters.connections,
		 (unsigned long long)d->counters.allowed,
		 (unsigned long long)d->counters.would_block,
		 (unsigned long long)d->counters.blocked,
		 (unsigned long long)d->counters.dns_queries,
		 (unsigned long long)d->counters.dns_blocked,
		 (unsigned long long)d->counters.dropped_records, path);
	attrib_summary_refused(d, buf, len);
}
