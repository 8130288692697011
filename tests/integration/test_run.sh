#!/bin/bash
# depfence run with real sockets in real cgroups, inside a network namespace
# made here (test hosts 203.0.113.0/24 and 2001:db8::/32 on its lo), with the
# fenced client inside the namespace too: no packet can leave the machine.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/run"
df_setup

NS=$(df_netns run) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 80 443 5432 8080 || { notok "test servers" "did not come up"; exit 1; }

# (a v6 socket sending to a mapped address goes through the kernel's IPv4 path: sendmsg4)
# name | mode | default | deny | allow | client | addr | port | client says | event verdict | hook | rule
CASES='
enforce denies tcp4          |enforce|allow|203.0.113.10:443|-|tcp|203.0.113.10|443|EPERM|blocked|connect4|203.0.113.10:443
enforce lets other ports     |enforce|allow|203.0.113.10:443|-|tcp|203.0.113.10|80|ok|-|-|-
enforce lets other hosts     |enforce|allow|203.0.113.10:443|-|tcp|203.0.113.20|443|ok|-|-|-
audit records would-block    |audit|allow|203.0.113.10:443|-|tcp|203.0.113.10|443|ok|would-block|connect4|203.0.113.10:443
observe records allowed      |observe|allow|-|-|tcp|203.0.113.20|80|ok|allowed|connect4|default
observe records would-block  |observe|allow|203.0.113.0/24|-|tcp|203.0.113.20|80|ok|would-block|connect4|203.0.113.0/24
enforce denies tcp6          |enforce|allow|[2001:db8::10]|-|tcp|2001:db8::10|443|EPERM|blocked|connect6|[2001:db8::10]
enforce v6 prefix            |enforce|allow|[2001:db8::/32]:80|-|tcp|2001:db8::20|80|EPERM|blocked|connect6|[2001:db8::/32]:80
v6 rule spares other v6      |enforce|allow|[2001:db8::10]|-|tcp|2001:db8::20|443|ok|-|-|-
v4-mapped judged as v4       |enforce|allow|203.0.113.10|-|tcp|::ffff:203.0.113.10|443|EPERM|blocked|connect6|203.0.113.10
mapped rule is a v4 rule     |enforce|allow|[::ffff:203.0.113.0/120]|-|tcp|203.0.113.20|80|EPERM|blocked|connect4|203.0.113.0/24
udp sendto denied            |enforce|allow|udp/203.0.113.10:53|-|udp-sendto|203.0.113.10|53|EPERM|blocked|sendmsg4|udp/203.0.113.10:53
udp sendmsg v6 denied        |enforce|allow|udp/[2001:db8::/32]|-|udp-sendmsg|2001:db8::10|5353|EPERM|blocked|sendmsg6|udp/[2001:db8::/32]
udp sendto mapped denied     |enforce|allow|udp/203.0.113.10|-|udp-sendto|::ffff:203.0.113.10|53|EPERM|blocked|sendmsg4|udp/203.0.113.10
connected udp denied         |enforce|allow|203.0.113.10:5432|-|udp-connect|203.0.113.10|5432|EPERM|blocked|connect4|203.0.113.10:5432
udp sendto audit             |audit|allow|udp/203.0.113.10:53|-|udp-sendto|203.0.113.10|53|ok|would-block|sendmsg4|udp/203.0.113.10:53
port range denies inside     |enforce|allow|203.0.113.10:8000-8100|-|tcp|203.0.113.10|8080|EPERM|blocked|connect4|203.0.113.10:8000-8100
port range spares outside    |enforce|allow|203.0.113.10:8000-8100|-|tcp|203.0.113.10|443|ok|-|-|-
port range holds its low end |enforce|allow|203.0.113.10:8080-8100|-|tcp|203.0.113.10|8080|EPERM|blocked|connect4|203.0.113.10:8080-8100
port range holds its high end|enforce|allow|203.0.113.10:7000-8080|-|tcp|203.0.113.10|8080|EPERM|blocked|connect4|203.0.113.10:7000-8080
port range spares one below  |enforce|allow|203.0.113.10:8081-8100|-|tcp|203.0.113.10|8080|ok|-|-|-
port range spares one above  |enforce|allow|203.0.113.10:7000-8079|-|tcp|203.0.113.10|8080|ok|-|-|-
udp range holds its high end|enforce|allow|udp/203.0.113.10:53-5432|-|udp-sendto|203.0.113.10|5432|EPERM|blocked|sendmsg4|udp/203.0.113.10:53-5432
tcp rule spares udp          |enforce|allow|tcp/203.0.113.10|-|udp-sendto|203.0.113.10|443|ok|-|-|-
tcp rule denies tcp          |enforce|allow|tcp/203.0.113.10|-|tcp|203.0.113.10|443|EPERM|blocked|connect4|tcp/203.0.113.10
udp rule spares tcp          |enforce|allow|udp/203.0.113.10|-|tcp|203.0.113.10|443|ok|-|-|-
default deny allows exception|enforce|deny|-|203.0.113.10:80|tcp|203.0.113.10|80|ok|-|-|-
default deny refuses the rest|enforce|deny|-|203.0.113.10:80|tcp|203.0.113.10|443|EPERM|blocked|connect4|default
default deny other host      |enforce|deny|-|203.0.113.10:80|tcp|203.0.113.20|80|EPERM|blocked|connect4|default
default deny v6              |enforce|deny|-|203.0.113.10:80|tcp|2001:db8::10|80|EPERM|blocked|connect6|default
default deny loopback too    |enforce|deny|-|203.0.113.10|tcp|127.0.0.1|80|EPERM|blocked|connect4|default
longest prefix allows        |enforce|allow|203.0.113.0/24|203.0.113.20|tcp|203.0.113.20|80|ok|-|-|-
longest prefix denies        |enforce|allow|203.0.113.0/24|203.0.113.20|tcp|203.0.113.10|80|EPERM|blocked|connect4|203.0.113.0/24
port rule beats bare rule    |enforce|allow|203.0.113.10|203.0.113.10:80|tcp|203.0.113.10|80|ok|-|-|-
bare rule holds elsewhere    |enforce|allow|203.0.113.10|203.0.113.10:80|tcp|203.0.113.10|443|EPERM|blocked|connect4|203.0.113.10
deny wins a tie              |enforce|allow|203.0.113.10:80|203.0.113.10:80|tcp|203.0.113.10|80|EPERM|blocked|connect4|203.0.113.10:80
prefix over many /16s        |enforce|allow|202.0.0.0/7|-|tcp|203.0.113.10|443|EPERM|blocked|connect4|202.0.0.0/7
a /8, not its first /16      |enforce|allow|198.0.0.0/8|-|tcp|198.51.100.7|443|EPERM|blocked|connect4|198.0.0.0/8
v6 /12, not its first group  |enforce|allow|[2000::/12]|-|tcp|2001:db8::10|443|EPERM|blocked|connect6|[2000::/12]
half the addresses           |enforce|allow|128.0.0.0/1|-|udp-sendto|203.0.113.10|53|EPERM|blocked|sendmsg4|128.0.0.0/1
every address                |enforce|allow|0.0.0.0/0|-|tcp|203.0.113.20|80|EPERM|blocked|connect4|0.0.0.0/0
one /16                      |enforce|allow|203.0.0.0/16|-|tcp|203.0.113.20|80|EPERM|blocked|connect4|203.0.0.0/16
the next /16 spared          |enforce|allow|203.1.0.0/16|-|tcp|203.0.113.20|80|ok|-|-|-
v4-mapped, prefix over /16s  |enforce|allow|202.0.0.0/7|-|tcp|::ffff:203.0.113.10|443|EPERM|blocked|connect6|202.0.0.0/7
v6 prefix over many groups   |enforce|allow|[2000::/3]|-|tcp|2001:db8::10|443|EPERM|blocked|connect6|[2000::/3]
v6 every address             |enforce|allow|[::/0]|-|udp-sendmsg|2001:db8::10|5353|EPERM|blocked|sendmsg6|[::/0]
v6 prefix past 16 bits       |enforce|allow|[2001:d00::/24]|-|tcp|2001:db8::20|80|EPERM|blocked|connect6|[2001:d00::/24]
default deny, wide allow     |enforce|deny|-|200.0.0.0/5|tcp|203.0.113.10|80|ok|-|-|-
default deny, wide v6 allow  |enforce|deny|-|[2000::/3]|tcp|2001:db8::10|80|ok|-|-|-
'

while IFS='|' read -r name mode def deny allow client addr port want verdict hook rule; do
	name=$(echo "$name" | sed 's/ *$//')
	[ -z "$name" ] && continue
	args=(--mode "$mode" --default "$def")
	[ "$deny" != - ] && args+=(--deny "$deny")
	[ "$allow" != - ] && args+=(--allow "$allow")
	rep=$DF_T/run-$RANDOM.json
	out=$(in_ns "$NS" "$DF_BIN" run "${args[@]}" --report "$rep" -- "$DF_TOOLS/dfclient" "$client" "$addr" "$port" 2>"$DF_T/stderr")
	check "$name: client" "$want" "$out"
	if [ ! -s "$rep" ]; then
		notok "$name: report" "no report at $rep: $(cat "$DF_T/stderr")"
		continue
	fi
	if [ "$verdict" = - ]; then
		check "$name: no event" "0" "$(jqr "$rep" '.events | length')"
	else
		# the address as the kernel reported it: mapped addresses are judged as IPv4
		daddr=${addr#::ffff:}
		ev=$(jqr "$rep" ".events[] | select(.daddr == \"$daddr\" and .dport == $port) | [.verdict, .hook, .rule, .process.comm, .count] | join(\" \")")
		check "$name: event" "$verdict $hook $rule dfclient 1" "$ev"
	fi
done <<<"$CASES"
df_check_clean "table"

# --- the report ---
rep=$DF_T/full.json
in_ns "$NS" "$DF_BIN" run --mode enforce --deny 203.0.113.10:443 --label "job 42" --report "$rep" -- \
	sh -c "$DF_TOOLS/dfclient tcp 203.0.113.10 443; $DF_TOOLS/dfclient tcp 203.0.113.10 443; $DF_TOOLS/dfclient tcp 203.0.113.10 80" >/dev/null 2>&1
check "report: schema" "depfence.report/v1" "$(jqr "$rep" .schema)"
check "report: label" "job 42" "$(jqr "$rep" .label)"
check "report: mode and default" "enforce allow" "$(jqr "$rep" '.mode + " " + .default')"
check "report: summary" "3 1 2 0" "$(jqr "$rep" '.summary | "\(.connections) \(.allowed) \(.blocked) \(.would_block)"')"
check "report: two blocked attempts, two processes, two events" "2" "$(jqr "$rep" '[.events[] | select(.verdict == "blocked")] | length')"
check "report: policy lists the deny rule" "203.0.113.10:443" "$(jqr "$rep" '.policy.deny[0]')"
check "report: rule source" "--deny" "$(jqr "$rep" '.policy.rules[0].source')"
check "report: times in RFC 3339" "1" "$(jqr "$rep" '[.started_at, .stopped_at, .events[0].first_seen] | map(test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")) | all | if . then 1 else 0 end')"
check "report: mode 0640" "640" "$(stat -c %a "$rep")"
nsdel=false; grep -q ' cgroup2 .*nsdelegate' /proc/self/mounts && nsdel=true
check "report: integrity of a root job: its capabilities are risks" "true process true true $([ $nsdel = true ] && echo false || echo true)" \
	"$(jqr "$rep" '.integrity | "\(.checked) \(.source) \(.cap_net_raw) \(.cap_sys_admin) \(.writable_cgroupfs)"')"
check "report: one risk sentence per finding" "1" \
	"$(jqr "$rep" '.integrity | ([.cap_net_raw, .cap_net_admin, .cap_sys_admin, .cap_bpf, .host_network, .host_pid, .writable_cgroupfs, .foreign_sockets] | map(select(.)) | length) == (.risks | length) | if . then 1 else 0 end')"
check "report: pid is a process id" "1" "$(jqr "$rep" '.events[0].process.pid > 1 | if . then 1 else 0 end')"

# same process, same destination: one event, counted
rep=$DF_T/agg.json
in_ns "$NS" "$DF_BIN" run --mode audit --deny 203.0.113.10 --report "$rep" -- \
	python3 -c '
import socket
for i in range(5):
    s = socket.socket(); s.settimeout(2); s.connect(("203.0.113.10", 80)); s.close()
' >/dev/null 2>&1
check "aggregation: one event per process and destination" "1 5" "$(jqr "$rep" '"\(.events | length) \(.events[0].count)"')"

# name rules are enforced through DNS (tests/integration/test_dns.sh); the report says how
rep=$DF_T/names.json
in_ns "$NS" "$DF_BIN" run --mode enforce --deny 'github.com,**.github.com' --report "$rep" -- true 2>"$DF_T/stderr"
check "names: report says names are enforced" "true" "$(jqr "$rep" '.policy.names_enforced')"
check "names: a note says what names cover" "1" "$(jqr "$rep" '[.notes[] | select(test("DNS over HTTPS"))] | length')"

# --- the job cannot detach or blind its fence ---
BPFCALL="import ctypes, os; l = ctypes.CDLL(None, use_errno=True); r = l.syscall(321, 0, 0, 0); print(os.strerror(ctypes.get_errno()) if r < 0 else 'ok')"
rep=$DF_T/confine.json
out=$(in_ns "$NS" "$DF_BIN" run --report "$rep" -- sh -c "python3 -c '$BPFCALL'; grep '^0::' /proc/self/cgroup" 2>/dev/null)
check "confine: bpf() refused to the job" "Operation not permitted" "$(echo "$out" | head -1)"
check "confine: the job's cgroup namespace is rooted at its fence" "0::/" "$(echo "$out" | tail -1)"
check "confine: report says confined" "false" "$(jqr "$rep" .integrity.unconfined)"
# the filter stays across exec by itself: no no_new_privs, so setuid and file capabilities work in the job
out=$(in_ns "$NS" "$DF_BIN" run --report "$rep" -- sh -c "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status" 2>/dev/null)
check "confine: a seccomp filter, without no_new_privs" "NoNewPrivs: 0 Seccomp: 2" "$(echo $out | tr -s '\t ' '  ')"
out=$(in_ns "$NS" "$DF_BIN" run --no-confine --report "$rep" -- python3 -c "$BPFCALL" 2>/dev/null)
check "--no-confine: bpf() reaches the kernel (EINVAL for a null attr)" "Invalid argument" "$out"
check "--no-confine: the report says so" "true 1" \
	"$(jqr "$rep" '.integrity | "\(.unconfined) \([.risks[] | select(test("no-confine"))] | length)"')"

# --- exit status and bad input ---
in_ns "$NS" "$DF_BIN" run --report "$DF_T/x.json" -- sh -c 'exit 7' 2>/dev/null
check "exit status is the command's" "7" "$?"
in_ns "$NS" "$DF_BIN" run --report "$DF_T/x.json" -- /nonexistent/cmd 2>/dev/null
check "missing command exits 127" "127" "$?"
in_ns "$NS" "$DF_BIN" run --report "$DF_T/x.json" -- sh -c 'kill -TERM $$' 2>/dev/null
check "killed command exits 128+signal" "143" "$?"
# badrun ARGS...: depfence run with bad input, output in $DF_T/bad.out; its pid
# is kept, since its cgroup would be named after it (other runs may be live)
badrun() {
	"$DF_BIN" run "$@" >"$DF_T/bad.out" 2>&1 &
	local p=$!
	echo "$p" >>"$DF_T/bad.pids"
	wait "$p"
}
badrun --deny 'git*hub.com' -- true
check "bad rule: usage exit" "2" "$?"
err=$(cat "$DF_T/bad.out")
case $err in *"--deny"*"git*hub.com"*) ok "bad rule: message names flag and rule" ;;
*) notok "bad rule: message names flag and rule" "got: $err" ;; esac
badrun --mode enforcing -- true
check "bad mode: usage exit" "2" "$?"
badrun --mode enforce
check "no command: usage exit" "2" "$?"
echo '{"report_dir": "/tmp", "bogus": 1}' >"$DF_T/bad.json"
DEPFENCE_CONFIG=$DF_T/bad.json badrun -- true
check "bad config: error exit" "1" "$?"
err=$(cat "$DF_T/bad.out")
case $err in *bogus*) ok "bad config: names the key" ;; *) notok "bad config: names the key" "got: $err" ;; esac
# --report naming what is no regular file: refused before anything starts, left as it was
# (nodes made here, never the host's own /dev/null)
mkdir "$DF_T/nodes"
mkfifo "$DF_T/nodes/fifo"
mknod "$DF_T/nodes/null" c 1 3
mkdir "$DF_T/nodes/dir"
ln -s null "$DF_T/nodes/link-to-null"
# name | path under nodes | what the message says | its type afterwards (stat -c %F)
NODES='
a FIFO                |fifo        |a FIFO|fifo
a character device    |null        |a character device|character special file
a directory           |dir         |a directory|directory
a link to a device    |link-to-null|a symbolic link to a character device|symbolic link
'
while IFS='|' read -r name node says kind; do
	name=$(echo "$name" | sed 's/ *$//')
	node=$(echo "$node" | sed 's/ *$//')
	[ -z "$name" ] && continue
	rm -f "$DF_T/nodes.ran"
	badrun --report "$DF_T/nodes/$node" -- touch "$DF_T/nodes.ran"
	check "--report $name: usage exit" "2" "$?"
	err=$(head -1 "$DF_T/bad.out")
	case $err in *"--report $DF_T/nodes/$node: $says, not a regular file"*) ok "--report $name: the message names option, path and problem" ;;
	*) notok "--report $name: the message names option, path and problem" "got: $err" ;; esac
	check "--report $name: left as it was" "$kind" "$(stat -c %F "$DF_T/nodes/$node")"
	check "--report $name: the job did not run" "no" "$([ -e "$DF_T/nodes.ran" ] && echo yes || echo no)"
done <<<"$NODES"
check "--report a character device: still the null device" "1,3" "$(stat -c '%t,%T' "$DF_T/nodes/null")"
# a link to a regular file: the report goes to the file, the link stays
echo old >"$DF_T/nodes/real.json"
ln -s real.json "$DF_T/nodes/link.json"
"$DF_BIN" run --report "$DF_T/nodes/link.json" -- true 2>/dev/null
check "--report a link to a file: exit 0" "0" "$?"
check "--report a link to a file: the link stays" "symbolic link" "$(stat -c %F "$DF_T/nodes/link.json")"
check "--report a link to a file: the file has the report" "depfence.report/v1" "$(jqr "$DF_T/nodes/real.json" .schema)"
left=""
while read -r p; do
	left="$left$(find /sys/fs/cgroup -maxdepth 3 -name "depfence-run-$p-*" 2>/dev/null)"
done <"$DF_T/bad.pids"
check "bad input leaves no cgroup" "" "$left"

# --- processes outside the fence are not affected ---
nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --mode enforce --deny 203.0.113.10 --report "$DF_T/bg.json" -- sleep 3 2>/dev/null &
bg=$!
df_track_pid $bg
for i in $(seq 50); do [ -n "$(find "$DF_PINS" -mindepth 1 -maxdepth 1 2>/dev/null)" ] && break; sleep 0.1; done
check "outside the fence: connect allowed while a fence is live" "ok" "$(in_ns "$NS" "$DF_TOOLS/dfclient" tcp 203.0.113.10 80)"
wait $bg
check "outside the fence: report has no event" "0" "$(jqr "$DF_T/bg.json" '.events | length')"

# --- children and daemons of the job are fenced, and ended with it ---
rep=$DF_T/kids.json
in_ns "$NS" "$DF_BIN" run --mode enforce --deny 203.0.113.10:443 --report "$rep" -- \
	sh -c "($DF_TOOLS/dfclient tcp 203.0.113.10 443 >$DF_T/child.out) & wait; setsid sleep 60 & exit 0" 2>/dev/null
check "child process is fenced" "EPERM" "$(cat "$DF_T/child.out")"
check "left-behind daemon ended with the job" "" "$(pgrep -f '^sleep 60$' | while read -r p; do grep -l depfence-run /proc/$p/cgroup 2>/dev/null; done)"
cg=$(jqr "$rep" .cgroup)
check "the job's cgroup is named in the report" "1" "$(case $cg in */depfence-run-*) echo 1 ;; *) echo 0 ;; esac)"
check "the job's cgroup is removed" "no" "$([ -e "$cg" ] && echo yes || echo no)"

# --- a sub-cgroup the job made, with a process in it: ended, removed, then the fence ---
# (the job is root in a cgroup namespace rooted at its cgroup: it may make cgroups below it)
parent=$(df_cg2root)$(sed -n 's/^0:://p' /proc/self/cgroup)
parent=${parent%/}
rep=$DF_T/sub.json
# on failure: the process by its pid, then the cgroups deepest first
df_on_exit 'p=$(cat "$DF_T/sub.pid"); [ -n "$p" ] && kill -9 "$p"; sleep 0.2; c=$(cat "$DF_T/sub.cg"); [ -n "$c" ] && rmdir "$c/sub/x" "$c/sub" "$c"'
"$DF_BIN" run --report "$rep" -- sh -c '
	CG=$(dirname "$(grep -l "^$$\$" '"$parent"'/depfence-run-*/cgroup.procs 2>/dev/null)")
	echo "$CG" >'"$DF_T"'/sub.cg
	mkdir "$CG/sub" "$CG/sub/x" || exit 9
	sh -c "echo \$\$ >$CG/sub/x/cgroup.procs && grep ^0:: /proc/self/cgroup >'"$DF_T"'/sub.where && echo \$\$ >'"$DF_T"'/sub.pid && exec sleep 1000" </dev/null >/dev/null 2>&1 &
	for i in $(seq 100); do [ -s '"$DF_T"'/sub.pid ] && break; sleep 0.05; done
	exit 3' 2>"$DF_T/sub.err"
check "sub-cgroup: exit status is the job's" "3" "$?"
subpid=$(cat "$DF_T/sub.pid" 2>/dev/null)
subcg=$(cat "$DF_T/sub.cg" 2>/dev/null)
check "sub-cgroup: the job's process was in its sub-cgroup" "0::/sub/x" "$(cat "$DF_T/sub.where" 2>/dev/null)"
# (ended: gone, or a zombie its new parent has not reaped yet; a moment for SIGKILL)
running() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" != Z ]; }
for i in $(seq 20); do running "$subpid" || break; sleep 0.05; done
check "sub-cgroup: the process left in it is ended" "ended" "$([ -n "$subpid" ] && ! running "$subpid" && echo ended || echo "running: '$subpid'")"
check "sub-cgroup: the run's cgroup and its sub-cgroups are removed" "no" "$([ -n "$subcg" ] && [ -e "$subcg" ] && echo yes || echo no)"
check "sub-cgroup: report written" "$subcg" "$(jqr "$rep" .cgroup)"
check "sub-cgroup: no error on stderr" "" "$(grep -v '^depfence: fence run-' "$DF_T/sub.err")"

# a tree of cgroups deeper than run removes (32): the cgroup stays, and its fence with it
df_on_exit 'c=$(cat "$DF_T/deep.cg"); [ -n "$c" ] && find "$c" -depth -type d -exec rmdir {} +'
"$DF_BIN" run --report "$DF_T/deep.json" -- sh -c '
	CG=$(dirname "$(grep -l "^$$\$" '"$parent"'/depfence-run-*/cgroup.procs 2>/dev/null)")
	echo "$CG" >'"$DF_T"'/deep.cg
	mkdir -p "$CG$(printf "/d%s" $(seq 34))"' 2>"$DF_T/deep.err"
check "deep sub-cgroups: exit 1" "1" "$?"
deepcg=$(cat "$DF_T/deep.cg" 2>/dev/null)
id=${deepcg##*/depfence-}
err=$(cat "$DF_T/deep.err")
case $err in *"cgroup $deepcg could not be removed"*"fence $id stays attached"*"depfence gc"*) ok "deep sub-cgroups: the message names the cgroup, the fence and gc" ;;
*) notok "deep sub-cgroups: the message names the cgroup, the fence and gc" "got: $err" ;; esac
check "deep sub-cgroups: the fence stays (state and pins)" "yes yes" \
	"$([ -n "$id" ] && [ -e "$DF_STATE/$id.json" ] && echo yes || echo no) $([ -n "$id" ] && [ -d "$DF_PINS/$id" ] && echo yes || echo no)"
check "deep sub-cgroups: no report" "no" "$([ -e "$DF_T/deep.json" ] && echo yes || echo no)"
[ -n "$deepcg" ] && find "$deepcg" -depth -type d -exec rmdir {} + 2>/dev/null
out=$("$DF_BIN" gc 2>&1)
case $out in *"reported $id: cgroup $deepcg is gone"*) ok "deep sub-cgroups: gc reports the fence once the cgroup is gone" ;;
*) notok "deep sub-cgroups: gc reports the fence once the cgroup is gone" "got: $out" ;; esac

# --- the current directory removed: an absolute --report needs none, a relative one says why ---
mkdir "$DF_T/gone"
(cd "$DF_T/gone" && rmdir "$DF_T/gone" && exec "$DF_BIN" run --report "$DF_T/gone.json" -- true) 2>"$DF_T/gone.err"
check "cwd removed: absolute --report: exit 0" "0" "$?"
check "cwd removed: absolute --report: report written" "depfence.report/v1" "$(jqr "$DF_T/gone.json" .schema)"
mkdir "$DF_T/gone"
(cd "$DF_T/gone" && rmdir "$DF_T/gone" && exec "$DF_BIN" run --report gone.json -- touch "$DF_T/gone.ran") 2>"$DF_T/gone.err"
check "cwd removed: relative --report: usage exit" "2" "$?"
err=$(head -1 "$DF_T/gone.err")
check "cwd removed: relative --report: says why" "depfence: run: --report gone.json: find the current directory: $(python3 -c 'import os; print(os.strerror(2))')" "$err"
check "cwd removed: relative --report: the job did not run" "no" "$([ -e "$DF_T/gone.ran" ] && echo yes || echo no)"

# --- stderr's reader gone before run's last line: run still cleans up, with the job's status ---
"$DF_BIN" run --mode audit --report "$DF_T/pipe.json" -- sh -c 'sleep 0.5; exit 0' 2>&1 | true
rc=${PIPESTATUS[0]}
check "stderr closed: exit status is the job's" "0" "$rc"
check "stderr closed: report written" "depfence.report/v1" "$(jqr "$DF_T/pipe.json" .schema)"
df_check_clean "stderr closed"
# the job gets SIGPIPE as run got it (the default here), not run's own SIG_IGN
out=$("$DF_BIN" run --report "$DF_T/pipe.json" -- bash -c 'yes | head -c1 >/dev/null; echo ${PIPESTATUS[0]}' 2>/dev/null)
check "SIGPIPE: the job's writer is killed by it" "141" "$out"
# --- the fence finished under run by something else (a poststop for its id): run says so and fails, not a silent 0 ---
"$DF_BIN" run --no-confine --report "$DF_T/gone2.json" -- sh -c \
	"id=\$(basename '$DF_STATE'/run-*.json .json); echo '{\"ociVersion\":\"1.0.2\",\"id\":\"'\$id'\",\"status\":\"stopped\"}' | '$DF_BIN' hook poststop" 2>"$DF_T/gone2.err"
check "fence removed under run: exit 1" "1" "$?"
check "fence removed under run: says no report" "1" "$(grep -c 'was gone before run could report it' "$DF_T/gone2.err")"
df_check_clean "fence removed under run"

# --- signals: the job gets each one once ---
cat >"$DF_T/count.py" <<'PY'
import signal, sys, time
n = {signal.SIGINT: 0, signal.SIGTERM: 0}
def h(s, f): n[s] += 1
signal.signal(signal.SIGINT, h)
signal.signal(signal.SIGTERM, h)
open(sys.argv[1], "w").close()
if len(sys.argv) > 3:  # "group": the job kills its own process group (run is in it)
    import os
    os.kill(0, signal.SIGINT)
    os.kill(0, signal.SIGTERM)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    time.sleep(0.02)
print(n[signal.SIGINT], n[signal.SIGTERM])
PY
# wait_file F: bounded wait until F exists
wait_file() { local i; for i in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.05; done; return 1; }
# sent to run alone, from outside the fence: passed on once
rm -f "$DF_T/ready"
"$DF_BIN" run --report "$DF_T/sig.json" -- python3 "$DF_T/count.py" "$DF_T/ready" 1.5 >"$DF_T/sig.out" 2>/dev/null &
pid=$!
df_track_pid "$pid"
wait_file "$DF_T/ready"
kill -INT "$pid"
kill -TERM "$pid"
wait "$pid"
check "signals sent to run: the job gets each once" "1 1" "$(cat "$DF_T/sig.out")"
# the job's own kill of its process group (run is in it too): not passed on again
rm -f "$DF_T/ready"
setsid "$DF_BIN" run --report "$DF_T/sig.json" -- python3 "$DF_T/count.py" "$DF_T/ready" 1.5 group \
	>"$DF_T/sig.out" 2>/dev/null
check "a kill of the group from inside the fence: the job gets each once" "1 1" "$(cat "$DF_T/sig.out")"
# ^C at a terminal (script(1) gives run one): the terminal signals the job itself
rm -f "$DF_T/ready"
out=$( (wait_file "$DF_T/ready"; printf '\003'; sleep 2) |
	script -qec "'$DF_BIN' run --report '$DF_T/sig.json' -- python3 '$DF_T/count.py' '$DF_T/ready' 1.5" /dev/null |
	tr -d '\r' | grep -oE '^(\^C)?[0-9]+ [0-9]+$' | grep -oE '[0-9]+ [0-9]+')
check "^C at a terminal: the job gets it once" "1 0" "$out"
df_check_clean "signals"

# --- a stop while the fence is set up: the job does not start, nothing is left ---
df_hold_lock '*' 30 || notok "hold every fence's lock" "not held"
CGP=$(df_cg2root)$(sed -n 's/^0:://p' /proc/self/cgroup)
"$DF_BIN" run --report "$DF_T/early.json" -- touch "$DF_T/early.ran" 2>"$DF_T/early.err" &
pid=$!
df_track_pid "$pid"
for i in $(seq 100); do ls -d "$CGP"/depfence-run-"$pid"-* >/dev/null 2>&1 && break; sleep 0.05; done
sleep 0.2 # in fence_start, waiting for the lock
kill -TERM "$pid"
sleep 0.2
kill "$LOCK_PID" 2>/dev/null
wait "$LOCK_PID" 2>/dev/null
wait "$pid"
check "stop during set-up: exit 128+SIGTERM" "143" "$?"
check "stop during set-up: the job did not run" "no" "$([ -e "$DF_T/early.ran" ] && echo yes || echo no)"
check "stop during set-up: says so" "1" "$(grep -c 'before touch started: not started' "$DF_T/early.err")"
check "stop during set-up: its cgroup is gone" "" "$(ls -d "$CGP"/depfence-run-"$pid"-* 2>/dev/null)"
df_check_clean "stop during set-up"
df_check_clean "end"
