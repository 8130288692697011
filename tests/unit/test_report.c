// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The report (DESIGN.md, "The report"): built from a hand-made fence state and
 * records, read back with yajl_tree; written atomically; and the state file
 * that carries the policy from attach to report.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "../../hook/report.h"
#include "../../oci/json.h"
#include "unit.h"

#define T0 1700000000123000000ULL /* 2023-11-14T22:13:20.123Z */

/* ---- reading JSON back ---- */

static const char *jstr(yajl_val o, const char *k)
{
	const char *s;

	return json_get_string(o, k, &s, NULL) == 0 ? s : NULL;
}

static long long jint(yajl_val o, const char *k)
{
	long long n;

	return json_get_int(o, k, &n, NULL) == 0 ? n : -999;
}

static int jnull(yajl_val o, const char *k)
{
	yajl_val v = json_get(o, k);

	return v && YAJL_IS_NULL(v);
}

static yajl_val jobj(yajl_val o, const char *k)
{
	yajl_val v;

	return json_get_object(o, k, &v, NULL) == 0 ? v : NULL;
}

static yajl_val jarr(yajl_val o, const char *k)
{
	yajl_val v;

	return json_get_array(o, k, &v, NULL) == 0 ? v : NULL;
}

/* The strings of an array joined with '|', "(missing)" when it is not an array of strings. */
static const char *jjoin(yajl_val arr, char *buf, size_t len)
{
	size_t off = 0;

	if (!arr || !YAJL_IS_ARRAY(arr))
		return "(missing)";
	buf[0] = '\0';
	for (size_t i = 0; i < json_array_len(arr); i++) {
		const char *s = json_string(json_array_at(arr, i));

		if (!s)
			return "(not a string)";
		off += snprintf(buf + off, len - off, "%s%s", i ? "|" : "", s);
		if (off >= len)
			break;
	}
	return buf;
}

static int is_rfc3339(const char *s)
{
	/* 2023-11-14T22:13:20.123Z */
	return s && strlen(s) == 24 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
	       s[16] == ':' && s[19] == '.' && s[23] == 'Z';
}

/* ---- a hand-made fence ---- */

static int make_state(struct fence_state *st, const char *deny, const char *allow,
		      const char *label)
{
	struct df_error e = { "" };
	int err;

	memset(st, 0, sizeof(*st));
	snprintf(st->id, sizeof(st->id), "job-7");
	snprintf(st->kind, sizeof(st->kind), DF_KIND_HOOK);
	snprintf(st->cgroup, sizeof(st->cgroup), "/sys/fs/cgroup/machine.slice/libpod-job7.scope");
	st->started_ns = T0;
	df_policy_init(&st->policy);
	st->policy.mode = DF_MODE_ENFORCE;
	st->policy.default_verdict = DF_ALLOW;
	err = df_policy_add_list(&st->policy, deny, DF_DENY, "annotation depfence.io/deny", 100,
				 &e);
	if (!err)
		err = df_policy_add_list(&st->policy, allow, DF_ALLOW,
					 "annotation depfence.io/allow", 100, &e);
	if (err)
		fprintf(stderr, "make_state: %s\n", e.msg);
	if (!err && label && !(st->policy.label = strdup(label)))
		err = -ENOMEM;
	return err;
}

static void set_rec(struct fence_record *r, int verdict, int hook, int proto, const char *daddr,
		    int dport, uint32_t rule_id, uint32_t tgid, uint64_t count, const char *comm)
{
	memset(r, 0, sizeof(*r));
	r->k.verdict = (uint8_t)verdict;
	r->k.hook = (uint8_t)hook;
	r->k.proto = (uint8_t)proto;
	r->k.family = strchr(daddr, ':') ? 6 : 4;
	inet_pton(r->k.family == 4 ? AF_INET : AF_INET6, daddr, r->k.daddr);
	r->k.dport = (uint16_t)dport;
	r->k.rule_id = rule_id;
	r->k.tgid = tgid;
	r->v.count = count;
	r->v.first_ns = 1000000000ULL * tgid;
	r->v.last_ns = r->v.first_ns + 5000000000ULL;
	r->v.pid = tgid + 1;
	r->v.uid = 1000;
	memcpy(r->v.comm, comm, strnlen(comm, DF_COMM_LEN));
}

/* rules: 1 140.82.112.0/20 (deny), 2 **.github.com (deny), 3 tcp/10.0.0.0/8:443, 4 [2001:db8::/32] */
#define DENY_LIST "140.82.112.0/20 **.github.com"
#define ALLOW_LIST "tcp/10.0.0.0/8:443, [2001:db8::/32]"

struct want_event {
	const char *verdict, *hook, *proto, *daddr;
	int dport;
	const char *rule;
	long long count, pid;
	const char *comm;
};

/* Most severe first, then the busiest. */
static const struct want_event want_events[] = {
	{ "blocked", "connect4", "tcp", "140.82.112.9", 22, "140.82.112.0/20", 7, 600, "ssh" },
	{ "blocked", "connect4", "tcp", "140.82.112.4", 443, "140.82.112.0/20", 2, 200, "git?x" },
	{ "would-block", "sendmsg4", "udp", "140.82.113.1", 53, "140.82.112.0/20", 1, 300, "dig" },
	{ "allowed", "sendmsg6", "udp", "2001:db8::53", 53, "[2001:db8::/32]", 9, 400,
	  "resolver-thread1" },
	{ "allowed", "connect4", "tcp", "10.1.2.3", 443, "tcp/10.0.0.0/8:443", 5, 100, "curl" },
	{ "allowed", "connect4", "tcp", "10.9.9.9", 80, "unknown", 3, 700, "x" },
	{ "allowed", "connect6", "tcp", "2001:db9::1", 80, "default", 1, 500, "wget" },
};

static void describe_event(yajl_val ev, char *buf, size_t len)
{
	yajl_val proc = jobj(ev, "process");

	snprintf(buf, len, "%s %s %s %s:%lld rule=%s count=%lld pid=%lld comm=%s",
		 jstr(ev, "verdict"), jstr(ev, "hook"), jstr(ev, "proto"), jstr(ev, "daddr"),
		 jint(ev, "dport"), jstr(ev, "rule"), jint(ev, "count"), jint(proc, "pid"),
		 jstr(proc, "comm"));
}

static void test_report_build(void)
{
	struct fence_record recs[7];
	struct fence_state st;
	struct fence_data d = {};
	_cleanup_yajl_ yajl_val root = NULL;
	_cleanup_free_ char *json = NULL;
	struct df_error e = { "" };
	yajl_val pol, sum, evs, notes, rules;
	char buf[1024], name[200], line[1024];
	size_t len = 0;
	int err;

	err = make_state(&st, DENY_LIST, ALLOW_LIST, "ci job 7");
	CHECK_INT("report_build: make the fence state", 0, err);

	/* in no particular order: report_build sorts */
	set_rec(&recs[0], DF_EV_ALLOWED, DF_HOOK_CONNECT4, 6, "10.1.2.3", 443, 3, 100, 5, "curl");
	set_rec(&recs[1], DF_EV_BLOCKED, DF_HOOK_CONNECT4, 6, "140.82.112.4", 443, 1, 200, 2,
		"git\x01x");
	set_rec(&recs[2], DF_EV_ALLOWED, DF_HOOK_CONNECT6, 6, "2001:db9::1", 80, DF_RULE_DEFAULT,
		500, 1, "wget");
	set_rec(&recs[3], DF_EV_WOULD_BLOCK, DF_HOOK_SENDMSG4, 17, "140.82.113.1", 53, 1, 300, 1,
		"dig");
	/* a comm of the full 16 bytes has no NUL */
	set_rec(&recs[4], DF_EV_ALLOWED, DF_HOOK_SENDMSG6, 17, "2001:db8::53", 53, 4, 400, 9,
		"resolver-thread1");
	set_rec(&recs[5], DF_EV_BLOCKED, DF_HOOK_CONNECT4, 6, "140.82.112.9", 22, 1, 600, 7, "ssh");
	set_rec(&recs[6], DF_EV_ALLOWED, DF_HOOK_CONNECT4, 6, "10.9.9.9", 80, 99, 700, 3, "x");
	d.recs = recs;
	d.n_recs = ARRAY_SIZE(recs);
	d.counters = (struct df_counters){ .connections = 28,
					   .allowed = 18,
					   .would_block = 1,
					   .blocked = 9,
					   .dropped_records = 0,
					   .dns_queries = 4,
					   .dns_blocked = 1 };
	d.stopped_ns = T0 + 60000000000ULL;

	err = report_build(&st, &d, &json, &len);
	CHECK_INT("report_build: builds", 0, err);
	if (err) {
		fence_state_free(&st);
		return;
	}
	CHECK("report_build: length matches", len == strlen(json), "len %zu strlen %zu", len,
	      strlen(json));
	CHECK("report_build: ends with a newline", len && json[len - 1] == '\n', "last byte %#x",
	      len ? json[len - 1] : 0);
	CHECK("report_build: records left in their order",
	      recs[0].k.rule_id == 3 && recs[5].k.tgid == 600,
	      "the caller's records were reordered");
	err = json_parse(json, "report", &root, &e);
	CHECK("report_build: output is JSON", err == 0, "%s", e.msg);
	if (err) {
		fence_state_free(&st);
		return;
	}

	CHECK_STR("report: schema", "depfence.report/v1", jstr(root, "schema"));
	CHECK_STR("report: id", "job-7", jstr(root, "id"));
	CHECK_STR("report: label", "ci job 7", jstr(root, "label"));
	CHECK_STR("report: kind", "hook", jstr(root, "kind"));
	CHECK("report: command is null for a hook", jnull(root, "command"), "not null");
	CHECK_STR("report: cgroup", "/sys/fs/cgroup/machine.slice/libpod-job7.scope",
		  jstr(root, "cgroup"));
	CHECK_STR("report: mode", "enforce", jstr(root, "mode"));
	CHECK_STR("report: default", "allow", jstr(root, "default"));
	CHECK_STR("report: started_at", "2023-11-14T22:13:20.123Z", jstr(root, "started_at"));
	CHECK_STR("report: stopped_at", "2023-11-14T22:14:20.123Z", jstr(root, "stopped_at"));

	pol = jobj(root, "policy");
	CHECK_STR("report: policy.deny", "140.82.112.0/20|**.github.com",
		  jjoin(jarr(pol, "deny"), buf, sizeof(buf)));
	CHECK_STR("report: policy.allow", "tcp/10.0.0.0/8:443|[2001:db8::/32]",
		  jjoin(jarr(pol, "allow"), buf, sizeof(buf)));
	CHECK_STR("report: policy.profiles", "", jjoin(jarr(pol, "profiles"), buf, sizeof(buf)));
	rules = jarr(pol, "rules");
	CHECK_INT("report: policy.rules count", 4, json_array_len(rules));
	if (json_array_len(rules) == 4) {
		yajl_val r1 = json_array_at(rules, 1), r2 = json_array_at(rules, 2);

		snprintf(buf, sizeof(buf), "%s %s %s / %s %s %s", jstr(r1, "rule"),
			 jstr(r1, "verdict"), jstr(r1, "source"), jstr(r2, "rule"),
			 jstr(r2, "verdict"), jstr(r2, "source"));
		CHECK_STR(
			"report: policy.rules carry verdict and source",
			"**.github.com deny annotation depfence.io/deny / tcp/10.0.0.0/8:443 allow annotation depfence.io/allow",
			buf);
	}

	sum = jobj(root, "summary");
	snprintf(
		buf, sizeof(buf),
		"connections=%lld allowed=%lld would_block=%lld blocked=%lld dns_queries=%lld dns_blocked=%lld dropped_records=%lld destinations=%lld",
		jint(sum, "connections"), jint(sum, "allowed"), jint(sum, "would_block"),
		jint(sum, "blocked"), jint(sum, "dns_queries"), jint(sum, "dns_blocked"),
		jint(sum, "dropped_records"), jint(sum, "destinations"));
	CHECK_STR(
		"report: summary counters",
		"connections=28 allowed=18 would_block=1 blocked=9 dns_queries=4 dns_blocked=1 dropped_records=0 destinations=7",
		buf);

	evs = jarr(root, "events");
	CHECK_INT("report: one event per record", ARRAY_SIZE(want_events), json_array_len(evs));
	for (size_t i = 0; i < ARRAY_SIZE(want_events) && i < json_array_len(evs); i++) {
		const struct want_event *w = &want_events[i];
		yajl_val ev = json_array_at(evs, i);
		char want[300], got[300];

		snprintf(want, sizeof(want), "%s %s %s %s:%d rule=%s count=%lld pid=%lld comm=%s",
			 w->verdict, w->hook, w->proto, w->daddr, w->dport, w->rule, w->count,
			 w->pid, w->comm);
		describe_event(ev, got, sizeof(got));
		snprintf(name, sizeof(name),
			 "report: event %zu (sorted: blocked, would-block, allowed; busiest first)",
			 i);
		CHECK_STR(name, want, got);
		snprintf(name, sizeof(name), "report: event %zu name is null", i);
		CHECK(name, jnull(ev, "name"), "not null");
		snprintf(name, sizeof(name),
			 "report: event %zu first_seen and last_seen are RFC 3339", i);
		CHECK(name, is_rfc3339(jstr(ev, "first_seen")) && is_rfc3339(jstr(ev, "last_seen")),
		      "first_seen %s last_seen %s", jstr(ev, "first_seen"), jstr(ev, "last_seen"));
	}

	notes = jarr(root, "notes");
	jjoin(notes, buf, sizeof(buf));
	CHECK_MSG("report: notes mention name rules when the policy has one", buf, "name rules");
	CHECK("report: no note about dropped records when none were dropped",
	      !strstr(buf, "dropped_records"), "notes: %s", buf);
	CHECK("report: integrity section present", jobj(root, "integrity") != NULL, "missing");

	report_summary_line(&st, &d, "/var/lib/depfence/reports/job-7.json", line, sizeof(line));
	CHECK_MSG("report_summary_line: id and label", line, "fence job-7 (ci job 7)");
	CHECK_MSG("report_summary_line: mode", line, "mode=enforce");
	CHECK_MSG("report_summary_line: counters", line,
		  "28 connections, 18 allowed, 1 would-block, 9 blocked; 4 dns questions, 1 refused; 0 dropped records");
	CHECK_MSG("report_summary_line: path", line, "report /var/lib/depfence/reports/job-7.json");

	fence_state_free(&st);
}

static void test_report_build_plain(void)
{
	struct fence_state st;
	struct fence_data d = {};
	_cleanup_yajl_ yajl_val root = NULL;
	_cleanup_free_ char *json = NULL;
	struct df_error e = { "" };
	char buf[1024];
	size_t len;
	int err;

	/* no label, no name rules, no records, some dropped */
	err = make_state(&st, "10.0.0.0/8", "", NULL);
	st.policy.mode = DF_MODE_AUDIT;
	st.policy.default_verdict = DF_DENY;
	snprintf(st.kind, sizeof(st.kind), DF_KIND_RUN);
	snprintf(st.command, sizeof(st.command), "./deploy.sh --prod");
	d.counters.dropped_records = 3;
	err = err ?: report_build(&st, &d, &json, &len);
	err = err ?: json_parse(json, "report", &root, &e);
	CHECK("report_build: an empty fence builds", err == 0, "got %d (%s)", err, e.msg);
	if (err) {
		fence_state_free(&st);
		return;
	}
	CHECK("report: label is null without one", jnull(root, "label"), "not null");
	CHECK_STR("report: command for run", "./deploy.sh --prod", jstr(root, "command"));
	CHECK_STR("report: mode audit", "audit", jstr(root, "mode"));
	CHECK_STR("report: default deny", "deny", jstr(root, "default"));
	CHECK("report: stopped_at null when unknown", jnull(root, "stopped_at"), "not null");
	CHECK_STR("report: empty allow list", "",
		  jjoin(jarr(jobj(root, "policy"), "allow"), buf, sizeof(buf)));
	CHECK("report: no events", jarr(root, "events") && !json_array_len(jarr(root, "events")),
	      "events missing or not empty");
	CHECK_INT("report: dropped_records counted", 3,
		  jint(jobj(root, "summary"), "dropped_records"));
	jjoin(jarr(root, "notes"), buf, sizeof(buf));
	CHECK("report: no name-rule note without name rules", !strstr(buf, "name rule"),
	      "notes: %s", buf);
	CHECK_MSG("report: dropped records are noted, never silent", buf, "dropped_records");
	fence_state_free(&st);
}

/* Text from argv and --label is bytes, not UTF-8: the report must still be written. */
static void test_report_not_utf8(void)
{
	static const struct {
		const char *in, *out;
	} texts[] = {
		{ "deploy caf\xe9", "deploy caf?" }, /* Latin-1 */
		{ "deploy \xff\xfe", "deploy ??" },  /* never UTF-8 */
		{ "deploy \xe2\x9c",
		  "deploy ??" }, /* a character cut short, as a length cap cuts it */
		{ "\xc0\xaf overlong", "?? overlong" },
		{ "\xed\xa0\x80 surrogate", "??? surrogate" },
		{ "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80 ok",
		  "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x9a\x80 ok" }, /* valid: kept */
	};
	char name[200];

	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		struct fence_state st;
		struct fence_data d = {};
		_cleanup_yajl_ yajl_val root = NULL;
		_cleanup_free_ char *json = NULL, *state = NULL;
		struct df_error e = { "" };
		size_t len;
		int err;

		err = make_state(&st, "10.0.0.0/8", "", texts[i].in);
		snprintf(st.kind, sizeof(st.kind), DF_KIND_RUN);
		snprintf(st.command, sizeof(st.command), "%s", texts[i].in);
		err = err ?: report_build(&st, &d, &json, &len);
		err = err ?: json_parse(json, "report", &root, &e);
		snprintf(name, sizeof(name), "report_build: command text %zu still gives a report",
			 i);
		CHECK(name, err == 0, "got %d (%s)", err, e.msg);
		snprintf(name, sizeof(name), "report_build: command text %zu", i);
		CHECK_STR(name, texts[i].out, err ? NULL : jstr(root, "command"));
		snprintf(name, sizeof(name), "report_build: label text %zu", i);
		CHECK_STR(name, texts[i].out, err ? NULL : jstr(root, "label"));

		err = fence_state_to_json(&st, &state, &len);
		snprintf(name, sizeof(name), "fence_state_to_json: command and label text %zu", i);
		CHECK_INT(name, 0, err);
		fence_state_free(&st);
	}
}

/* ---- report_write and write_file_atomic ---- */

static int read_all(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return (int)n;
}

/* Names in dir joined with '|', sorted, without . and .. */
static void list_dir(const char *dir, char *buf, size_t len)
{
	struct dirent **ents;
	size_t off = 0;
	int n = scandir(dir, &ents, NULL, alphasort);

	buf[0] = '\0';
	if (n < 0) {
		snprintf(buf, len, "(scandir: %s)", strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, ".."))
			off += snprintf(buf + off, off < len ? len - off : 0, "%s%s",
					off ? "|" : "", ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
}

static void rm_rf(const char *path)
{
	char cmd[4200];

	/* only ever our own mkdtemp directory */
	if (strncmp(path, "/tmp/depfence-unit-", 19))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", path);
}

static void test_report_write(void)
{
	char dir[] = "/tmp/depfence-unit-XXXXXX", path[4200], sub[4200], buf[4096], ls[1024];
	const char *json = "{\"schema\":\"depfence.report/v1\"}\n";
	struct df_error e = { "" };
	struct stat sb;
	mode_t old_umask;
	int err;

	if (!mkdtemp(dir)) {
		CHECK("report_write: mkdtemp", 0, "%s", strerror(errno));
		return;
	}
	old_umask = umask(077);

	snprintf(sub, sizeof(sub), "%s/reports/nested", dir);
	snprintf(path, sizeof(path), "%s/job-7.json", sub);
	err = report_write(path, json, strlen(json), &e);
	CHECK("report_write: writes, creating the directories", err == 0, "got %d (%s)", err,
	      e.msg);
	CHECK_INT("report_write: content equals the input", (int)strlen(json),
		  read_all(path, buf, sizeof(buf)));
	CHECK_STR("report_write: content", json, buf);
	CHECK("report_write: mode 0640 whatever the umask",
	      stat(path, &sb) == 0 && (sb.st_mode & 07777) == 0640 && S_ISREG(sb.st_mode),
	      "mode %o", (unsigned int)sb.st_mode);
	list_dir(sub, ls, sizeof(ls));
	CHECK_STR("report_write: no temp file left", "job-7.json", ls);

	err = report_write(path, "{}\n", 3, &e);
	CHECK("report_write: replaces an earlier report",
	      err == 0 && read_all(path, buf, sizeof(buf)) == 3 && !strcmp(buf, "{}\n"),
	      "got %d (%s), content \"%s\"", err, e.msg, buf);
	list_dir(sub, ls, sizeof(ls));
	CHECK_STR("report_write: still no temp file", "job-7.json", ls);

	/* a directory that cannot be created: a file is in the way */
	snprintf(path, sizeof(path), "%s/file", dir);
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

		if (fd >= 0)
			close(fd);
	}
	snprintf(path, sizeof(path), "%s/file/reports/job-7.json", dir);
	err = report_write(path, json, strlen(json), &e);
	CHECK_INT("report_write: a directory that cannot be created", -ENOTDIR, err);
	CHECK_MSG("report_write: the error names the report", e.msg, path);
	CHECK_MSG("report_write: the error says why", e.msg, strerror(ENOTDIR));

	/* the report name is taken by a directory: fails, leaves no temp file */
	snprintf(path, sizeof(path), "%s/reports/nested", dir);
	err = report_write(path, json, strlen(json), &e);
	CHECK("report_write: the name is a directory", err < 0, "got %d", err);
	CHECK_MSG("report_write: that error names the report", e.msg, path);
	snprintf(path, sizeof(path), "%s/reports", dir);
	list_dir(path, ls, sizeof(ls));
	CHECK_STR("report_write: failed write leaves no temp file", "nested", ls);

	/* a FIFO (as /dev/null would be a device) and a link are not replaced */
	snprintf(sub, sizeof(sub), "%s/special", dir);
	snprintf(path, sizeof(path), "%s/fifo", sub);
	if (mkdir(sub, 0700) < 0 || mkfifo(path, 0600) < 0)
		CHECK("report_write: make a FIFO", 0, "%s", strerror(errno));
	err = report_write(path, json, strlen(json), &e);
	CHECK_INT("report_write: over a FIFO: refused", -EINVAL, err);
	CHECK_MSG("report_write: over a FIFO: the error names the report", e.msg, path);
	CHECK_MSG("report_write: over a FIFO: the error says what it is", e.msg,
		  "a FIFO, not a regular file");
	CHECK("report_write: the FIFO is still a FIFO", lstat(path, &sb) == 0 && S_ISFIFO(sb.st_mode),
	      "mode %o", (unsigned int)sb.st_mode);
	snprintf(path, sizeof(path), "%s/link", sub);
	if (symlink("fifo", path) < 0)
		CHECK("report_write: make a link", 0, "%s", strerror(errno));
	err = report_write(path, json, strlen(json), &e);
	CHECK_INT("report_write: over a symbolic link: refused", -EINVAL, err);
	CHECK("report_write: the link is still a link", lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode),
	      "mode %o", (unsigned int)sb.st_mode);
	list_dir(sub, ls, sizeof(ls));
	CHECK_STR("report_write: refused writes leave no temp file", "fifo|link", ls);

	umask(old_umask);
	rm_rf(dir);
}

static void test_write_file_atomic(void)
{
	char dir[] = "/tmp/depfence-unit-XXXXXX", path[4200], victim[4200], buf[256], ls[1024];
	struct stat before, after;
	int err, fd;

	if (!mkdtemp(dir)) {
		CHECK("write_file_atomic: mkdtemp", 0, "%s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/state.json", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, "old content, longer than the new\n", 33) != 33)
			fprintf(stderr, "short write\n");
		close(fd);
	}
	stat(path, &before);

	err = write_file_atomic(dir, "state.json", "new\n", 4, 0644);
	CHECK_INT("write_file_atomic: replaces an existing file", 0, err);
	CHECK_INT("write_file_atomic: new length", 4, read_all(path, buf, sizeof(buf)));
	CHECK_STR("write_file_atomic: new content", "new\n", buf);
	stat(path, &after);
	CHECK("write_file_atomic: the mode asked for", (after.st_mode & 07777) == 0644, "mode %o",
	      (unsigned int)after.st_mode);
	CHECK("write_file_atomic: a new inode (renamed over, not rewritten)",
	      before.st_ino != after.st_ino, "same inode %lu", (unsigned long)after.st_ino);
	list_dir(dir, ls, sizeof(ls));
	CHECK_STR("write_file_atomic: no temp file left", "state.json", ls);

	err = write_file_atomic(dir, "empty", "", 0, 0600);
	CHECK_INT("write_file_atomic: an empty file", 0, err);
	snprintf(path, sizeof(path), "%s/empty", dir);
	CHECK_INT("write_file_atomic: empty file length", 0, read_all(path, buf, sizeof(buf)));
	unlink(path);

	/* a symlink at the name is replaced, its target untouched */
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(path, sizeof(path), "%s/link.json", dir);
	fd = open(victim, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, "precious\n", 9) != 9)
			fprintf(stderr, "short write\n");
		close(fd);
	}
	err = symlink("victim", path) < 0 ? -errno : 0;
	err = err ?: write_file_atomic(dir, "link.json", "new\n", 4, 0600);
	CHECK_INT("write_file_atomic: over a symlink", 0, err);
	CHECK_STR("write_file_atomic: the symlink's target is untouched",
		  read_all(victim, buf, sizeof(buf)) == 9 ? "precious\n" : "(unreadable)", buf);
	CHECK("write_file_atomic: the name is a regular file now",
	      lstat(path, &after) == 0 && S_ISREG(after.st_mode), "mode %o",
	      (unsigned int)after.st_mode);
	unlink(path);
	unlink(victim);

	snprintf(path, sizeof(path), "%s/absent", dir);
	CHECK_INT("write_file_atomic: a missing directory", -ENOENT,
		  write_file_atomic(path, "x", "x", 1, 0600));
	{
		char longname[300];

		memset(longname, 'n', 260);
		longname[260] = '\0';
		CHECK_INT("write_file_atomic: a name too long", -ENAMETOOLONG,
			  write_file_atomic(dir, longname, "x", 1, 0600));
	}
	snprintf(path, sizeof(path), "%s/state.json", dir);
	unlink(path);
	list_dir(dir, ls, sizeof(ls));
	CHECK_STR("write_file_atomic: nothing else left behind", "", ls);
	rmdir(dir);
}

/* ---- the state file ---- */

static void test_state_round_trip(void)
{
	struct fence_state st, back;
	_cleanup_free_ char *json = NULL;
	struct df_error e = { "" };
	char name[200];
	size_t len;
	int err;

	memset(&st, 0, sizeof(st));
	snprintf(st.id, sizeof(st.id), "run-4242-1700000000");
	snprintf(st.kind, sizeof(st.kind), DF_KIND_RUN);
	snprintf(st.cgroup, sizeof(st.cgroup), "/sys/fs/cgroup/depfence/run-4242");
	snprintf(st.command, sizeof(st.command), "sh -c 'curl -fsS https://example.com/\"x\"'");
	st.started_ns = 1700000000123456789ULL;
	df_policy_init(&st.policy);
	st.policy.mode = DF_MODE_OBSERVE;
	st.policy.default_verdict = DF_DENY;
	st.policy.label = strdup("job \xc3\xa9 7");
	err = df_policy_add_list(&st.policy, "github.com [2001:db8::/32]:443", DF_DENY, "--deny",
				 10, &e);
	err = err
		      ?: df_policy_add_list(&st.policy, "udp/10.0.0.0/8:53-60", DF_ALLOW,
					    "annotation depfence.io/allow", 10, &e);
	err = err ?: fence_state_to_json(&st, &json, &len);
	CHECK("fence_state_to_json: serializes", err == 0, "got %d (%s)", err, e.msg);
	if (err) {
		fence_state_free(&st);
		return;
	}
	CHECK("fence_state_to_json: length matches", len == strlen(json), "len %zu strlen %zu", len,
	      strlen(json));

	err = fence_state_from_json(json, &back, &e);
	CHECK("fence_state_from_json: parses its own output", err == 0, "got %d (%s)", err, e.msg);
	if (!err) {
		CHECK_STR("state round trip: id", st.id, back.id);
		CHECK_STR("state round trip: kind", st.kind, back.kind);
		CHECK_STR("state round trip: cgroup", st.cgroup, back.cgroup);
		CHECK_STR("state round trip: command", st.command, back.command);
		CHECK("state round trip: started_ns", back.started_ns == st.started_ns,
		      "expected %llu, got %llu", st.started_ns, back.started_ns);
		CHECK_STR("state round trip: label", st.policy.label, back.policy.label);
		CHECK_INT("state round trip: mode", DF_MODE_OBSERVE, back.policy.mode);
		CHECK_INT("state round trip: default", DF_DENY, back.policy.default_verdict);
		CHECK_INT("state round trip: rule count", 3, back.policy.n_rules);
		for (size_t i = 0; i < 3 && i < back.policy.n_rules; i++) {
			const struct df_rule *a = &st.policy.rules[i], *b = &back.policy.rules[i];

			snprintf(name, sizeof(name), "state round trip: rule %zu", i + 1);
			CHECK(name,
			      !strcmp(a->text, b->text) && !strcmp(a->source, b->source) &&
				      a->verdict == b->verdict && a->port_lo == b->port_lo &&
				      a->port_hi == b->port_hi && a->proto_mask == b->proto_mask &&
				      a->prefixlen == b->prefixlen && !memcmp(a->addr, b->addr, 16),
			      "expected %s %s (%s), got %s %s (%s)", df_verdict_name(a->verdict),
			      a->text, a->source, df_verdict_name(b->verdict), b->text, b->source);
		}
		fence_state_free(&back);
	}
	fence_state_free(&st);

	/* a hook fence: no label, no command, no rules */
	memset(&st, 0, sizeof(st));
	snprintf(st.id, sizeof(st.id), "c1");
	snprintf(st.kind, sizeof(st.kind), DF_KIND_HOOK);
	snprintf(st.cgroup, sizeof(st.cgroup), "/sys/fs/cgroup/c1");
	snprintf(st.bundle, sizeof(st.bundle), "/run/containerd/io.containerd.runtime.v2.task/ns1/c1");
	df_policy_init(&st.policy);
	free(json);
	json = NULL;
	err = fence_state_to_json(&st, &json, &len);
	err = err ?: fence_state_from_json(json, &back, &e);
	CHECK("state round trip: a bare hook fence", err == 0, "got %d (%s)", err, e.msg);
	if (!err) {
		CHECK_STR("state round trip: bundle", st.bundle, back.bundle);
		CHECK("state round trip: no label, no command, no rules",
		      back.policy.label == NULL && back.command[0] == '\0' &&
			      back.policy.n_rules == 0 && back.started_ns == 0 &&
			      back.policy.mode == DF_MODE_AUDIT &&
			      back.policy.default_verdict == DF_ALLOW,
		      "label %s command \"%s\" rules %zu",
		      back.policy.label ? back.policy.label : "(null)", back.command,
		      back.policy.n_rules);
		fence_state_free(&back);
	}
	fence_state_free(&st);

	/* a state file of a depfence that did not keep the bundle: read, bundle "" */
	err = fence_state_from_json(
		"{\"schema\":\"depfence.state/v1\",\"id\":\"x\",\"kind\":\"hook\",\"cgroup\":\"/c\",\"started_at_ns\":0,\"mode\":\"audit\",\"default\":\"allow\",\"rules\":[]}",
		&back, &e);
	CHECK("fence_state_from_json: an older state file without bundle", err == 0 && !back.bundle[0],
	      "got %d (%s), bundle \"%s\"", err, e.msg, err ? "" : back.bundle);
	if (!err)
		fence_state_free(&back);

	/* state files this depfence did not write */
	static const struct {
		const char *what, *json, *frag;
	} bad[] = {
		{ "not JSON", "{", "state file: not valid JSON" },
		{ "another schema",
		  "{\"schema\":\"depfence.state/v2\",\"id\":\"x\",\"kind\":\"hook\",\"cgroup\":\"/c\",\"started_at_ns\":0,\"mode\":\"audit\",\"default\":\"allow\",\"rules\":[]}",
		  "state file: missing or mistyped keys" },
		{ "unsafe id",
		  "{\"schema\":\"depfence.state/v1\",\"id\":\"../x\",\"kind\":\"hook\",\"cgroup\":\"/c\",\"started_at_ns\":0,\"mode\":\"audit\",\"default\":\"allow\",\"rules\":[]}",
		  "state file: missing or mistyped keys" },
		{ "bad mode",
		  "{\"schema\":\"depfence.state/v1\",\"id\":\"x\",\"kind\":\"hook\",\"cgroup\":\"/c\",\"started_at_ns\":0,\"mode\":\"loud\",\"default\":\"allow\",\"rules\":[]}",
		  "state file: missing or mistyped keys" },
		{ "bad rule",
		  "{\"schema\":\"depfence.state/v1\",\"id\":\"x\",\"kind\":\"hook\",\"cgroup\":\"/c\",\"started_at_ns\":0,\"mode\":\"audit\",\"default\":\"allow\",\"rules\":[{\"rule\":\"git*hub.com\",\"verdict\":\"deny\",\"source\":\"--deny\"}]}",
		  "--deny: rule \"git*hub.com\"" },
		{ "two rules in one entry",
		  "{\"schema\":\"depfence.state/v1\",\"id\":\"x\",\"kind\":\"hook\",\"cgroup\":\"/c\",\"started_at_ns\":0,\"mode\":\"audit\",\"default\":\"allow\",\"rules\":[{\"rule\":\"a.com b.com\",\"verdict\":\"deny\",\"source\":\"--deny\"}]}",
		  "more than 1 rules" },
		{ "rule without source",
		  "{\"schema\":\"depfence.state/v1\",\"id\":\"x\",\"kind\":\"hook\",\"cgroup\":\"/c\",\"started_at_ns\":0,\"mode\":\"audit\",\"default\":\"allow\",\"rules\":[{\"rule\":\"a.com\",\"verdict\":\"deny\"}]}",
		  "state file: missing or mistyped keys" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		e.msg[0] = '\0';
		err = fence_state_from_json(bad[i].json, &back, &e);
		snprintf(name, sizeof(name), "fence_state_from_json %s: refused", bad[i].what);
		CHECK(name, err < 0, "accepted");
		if (!err) {
			fence_state_free(&back);
			continue;
		}
		snprintf(name, sizeof(name), "fence_state_from_json %s: message", bad[i].what);
		CHECK_MSG(name, e.msg, bad[i].frag);
	}
}

int main(void)
{
	test_report_build();
	test_report_build_plain();
	test_report_not_utf8();
	test_report_write();
	test_write_file_atomic();
	test_state_round_trip();
	return unit_done();
}
