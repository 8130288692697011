#!/bin/bash
# Faults: the hook killed (SIGKILL, injected by strace) at every bpf(),
# openat() and rename of createRuntime; the report writer killed at every
# write, fsync and rename of poststop; a full and a read-only report dir.
# Real cgroups, the fenced process in a network namespace made here (test
# hosts on its lo), so no packet leaves.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/faults"
df_setup

command -v strace >/dev/null || { notok "strace" "not installed (tests/deps.sh installs it)"; exit 1; }
# no servers: a refused call is EPERM at connect, an allowed one a UDP datagram
NS=$(df_netns faults) || { notok "create netns" "ip netns add failed"; exit 1; }
SCHEMA=$DF_ROOT/tests/fixtures/report.schema.json
CG2=$(df_cg2root)
[ -d "$CG2" ] || { notok "cgroup2 mount" "not found in /proc/self/mountinfo"; exit 1; }
CG=$CG2/df$$-faults
ID=faults-$$
ANN='{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443", "depfence.io/label": "faults"}'

# alive PID: running, not a zombie waiting for us
alive() { local s; s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1); [ -n "$s" ] && [ "$s" != Z ]; }
# reap PID: bounded wait for it to end, then the cgroup goes (as the runtime removes it)
reap() {
	local i
	for i in $(seq 100); do alive "$1" || break; sleep 0.05; done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	for i in $(seq 50); do rmdir "$CG" 2>/dev/null && return 0; [ -d "$CG" ] || return 0; sleep 0.1; done
	return 1
}
# stop_waiter NAME: end a waiter that never ran its script, and its cgroup
stop_waiter() { kill -9 "$W_PID" 2>/dev/null; reap "$W_PID"; }
state() {
	jq -nc --arg id "$1" --argjson pid "$2" --argjson ann "$ANN" --arg bundle "$DF_T" \
		'{ociVersion: "1.0.2", id: $id, status: "creating", bundle: $bundle, pid: $pid, annotations: $ann}'
}
hook() { "$DF_BIN" hook "$@" 2>>"$DF_T/err"; }
oneline() { tr '\n' ' ' | cut -c1-400; }
# left: everything of a fence that should not be there (pins, the host-wide
# attribution pins included, state files)
left() { find "$DF_PINS" -mindepth 1 2>/dev/null; find "$DF_STATE" -name '*.json' ! -name '.*' 2>/dev/null; }
# leftovers: what a killed hook left, as one line: files, slots taken, cgroups registered
leftovers() {
	local f=$DF_PINS/@attrib
	echo "$(cd "$DF_PINS" 2>/dev/null && find . -mindepth 1 | sort | tr '\n' ' ')" \
		"$(cd "$DF_STATE" 2>/dev/null && find . -name '*.json' | sed 's/tmp\.[0-9]*$/tmp/' | sort | tr '\n' ' ')" \
		"slots=$(bpftool -j map dump pinned "$f/slots" 2>/dev/null | jq '[.[] | select(.formatted.value.gen != 0)] | length')" \
		"fenced=$(bpftool -j map dump pinned "$f/fenced" 2>/dev/null | jq length)"
}
temps() { find "$DF_STATE" "$DF_REPORTS" -name '.*.tmp.*' 2>/dev/null; }
schema_valid() { python3 "$DF_ROOT/tests/tools/schema_check.py" "$SCHEMA" "$1" >/dev/null 2>&1; }

# killed SYSCALLS N: createRuntime for $ID with SIGKILL injected on the
# Nth of SYSCALLS; the exit status
killed() {
	# in a subshell: the shell's own "Killed" notice goes to the log, not the output
	(state "$ID" "$W_PID" | timeout 60 strace -f -qq -o /dev/null -e trace="$1" \
		-e inject="$1":signal=SIGKILL:when="$2" "$DF_BIN" hook createRuntime) 2>>"$DF_T/err"
}

# --- how many calls a createRuntime makes (the first fence of the host: it loads attribution too) ---
# strace counts the calls of each thread on its own (when=N: the Nth of any
# one thread), and the hook verifies on two threads: the steps are the calls
# of the busiest thread; every N still kills it, wherever one thread gets there first
per_task() { grep -E "$1" "$DF_T/trace" | grep -v 'resumed>' | awk '{print $1}' | sort | uniq -c | sort -rn | awk 'NR == 1 {print $1} END {if (!NR) print 0}'; }
min() { echo $(($1 < $2 ? $1 : $2)); }
# counted twice, the smaller count kept: a call one run made and another did
# not (a CI run once counted 142 bpf calls where its killed runs made 141) is
# past the last step, which every run then reaches
n_bpf=1000000 n_open=1000000 n_ren=1000000 counts=
for count in 1 2; do
	: >"$DF_T/err"
	df_waiter "$NS" count "true" "$CG"
	state "$ID" "$W_PID" | strace -f -qq -o "$DF_T/trace" -e trace=bpf,openat,rename,renameat,renameat2,mount \
		"$DF_BIN" hook createRuntime 2>>"$DF_T/err"
	check "count $count: createRuntime under strace exit 0" "0" "$?"
	counts+=" $(per_task ' bpf\(')/$(per_task ' openat\(')/$(per_task ' rename(at2?)?\(')"
	n_bpf=$(min "$n_bpf" "$(per_task ' bpf\(')")
	n_open=$(min "$n_open" "$(per_task ' openat\(')")
	n_ren=$(min "$n_ren" "$(per_task ' rename(at2?)?\(')")
	stop_waiter
	echo "$(state "$ID" 0)" | hook poststop
	check "count $count: cleaned after" "" "$(left)"
	rm -f "$DF_REPORTS/$ID.json"
done
[ "$n_bpf" -gt 20 ] && [ "$n_open" -gt 5 ] && [ "$n_ren" -ge 1 ] &&
	ok "count: $n_bpf bpf, $n_open openat, $n_ren rename calls (bpf/openat/rename per run:$counts)" ||
	notok "count: calls" "bpf $n_bpf, openat $n_open, rename $n_ren: $(oneline <"$DF_T/err")"

# --- killed at each step; a later createRuntime for the same id and cgroup works ---
# Per step: (a) kill, then at once createRuntime again in the same cgroup: it
# must hold (denied EPERM, other ok) and its poststop report it and leave
# nothing; (b) kill, the runtime removes the cgroup, then poststop (odd N) or
# gc (even N) must leave nothing.
fails=0 steps=0 kinds=0 sigs=
for sc in bpf openat rename,renameat,renameat2; do
	case $sc in bpf) n=$n_bpf ;; openat) n=$n_open ;; *) n=$n_ren ;; esac
	for N in $(seq "$n"); do
		steps=$((steps + 1))
		what="$sc call $N of $n"
		: >"$DF_T/err"
		df_waiter "$NS" a "dfclient tcp 203.0.113.10 443; dfclient udp-sendto 203.0.113.20 53" "$CG"
		killed "$sc" "$N"
		rc=$?
		if [ $rc != 137 ]; then
			notok "kill at $what: hook killed" "exit $rc, want 137 (SIGKILL): $(oneline <"$DF_T/err")"
			fails=$((fails + 1))
		fi
		sig=$(leftovers)
		case $sigs in
		*"|$sig|"*)
			# leftovers of a kind already retried: the runtime removes the cgroup, poststop cleans
			stop_waiter
			state "$ID" 0 | hook poststop
			rc=$?
			if [ "$rc $(left | oneline)" != "0 " ]; then
				notok "kill at $what, then poststop" "expected exit 0 and nothing left, got exit $rc, left: $(left | oneline); stderr: $(oneline <"$DF_T/err")"
				fails=$((fails + 1))
			fi
			continue ;;
		esac
		sigs="$sigs|$sig|"
		kinds=$((kinds + 1))
		# (a) a new kind of leftovers: createRuntime again at once, same id and cgroup
		state "$ID" "$W_PID" | hook createRuntime
		rc=$?
		df_release a
		reap "$W_PID"
		state "$ID" 0 | hook poststop
		rc2=$?
		got="$rc $rc2 $(echo $(cat "$DF_T/a.out")) $(jqr "$DF_REPORTS/$ID.json" '[.summary.blocked, .summary.allowed, (.events | length), .events[0].daddr, .events[0].dport] | map(tostring) | join(" ")')"
		want="0 0 EPERM ok 1 1 1 203.0.113.10 443"
		if [ "$got" != "$want" ] || [ -n "$(left)" ]; then
			notok "kill at $what, then createRuntime again" "expected '$want' and nothing left, got '$got', left: $(left | oneline); stderr: $(oneline <"$DF_T/err")"
			fails=$((fails + 1))
		fi
		rm -f "$DF_REPORTS/$ID.json"
		# (b) the same kill again; the runtime removes the cgroup; gc cleans
		: >"$DF_T/err"
		df_waiter "$NS" b "true" "$CG"
		killed "$sc" "$N"
		rc=$?
		held=no
		[ "$(ls "$DF_PINS/$ID" 2>/dev/null | grep -cE '^(connect[46]|sendmsg[46]|egress|ingress)$')" = 6 ] && held=yes
		stop_waiter
		"$DF_BIN" gc --grace 0 >/dev/null 2>>"$DF_T/err"
		rc2=$?
		got="$rc $rc2 $(left | oneline)$(temps | oneline)"
		if [ "$got" != "137 0 " ]; then
			notok "kill at $what, then gc" "expected '137 0 ' (killed, gc ok, nothing left), got '$got'; stderr: $(oneline <"$DF_T/err")"
			fails=$((fails + 1))
		fi
		# a fence that never held has no report; one whose six links were pinned held and has one
		check "kill at $what: a report only for a fence that held (held: $held)" "$held" "$([ -e "$DF_REPORTS/$ID.json" ] && echo yes || echo no)"
		rm -f "$DF_REPORTS/$ID.json"
	done
done
check "killed at each of $steps steps: always killed; poststop left nothing; for each of the $kinds kinds of leftovers createRuntime again held and gc left nothing" "0 failures" "$fails failures"

# --- bpffs not mounted: killed at mount(), in a private mount namespace ---
mkdir "$CG"; df_track_cgroup "$CG"
sleep 60 &
MP=$!
df_track_pid $MP
echo $MP >"$CG/cgroup.procs"
printf '{ "attribution_linger": 0, "report_dir": "%s", "state_dir": "%s", "bpffs_root": "/sys/fs/bpf/depfence-test-%s-m" }\n' \
	"$DF_REPORTS" "$DF_STATE" "$$" >"$DF_T/mnt.json"
out=$(unshare -m --propagation private sh -c '
	umount /sys/fs/bpf 2>/dev/null
	grep -q " /sys/fs/bpf bpf " /proc/self/mounts && { echo still-mounted; exit 0; }
	(echo "$1" | DEPFENCE_CONFIG=$2 timeout 60 strace -f -qq -o /dev/null -e trace=mount \
		-e inject=mount:signal=SIGKILL:when=1 "$3" hook createRuntime) 2>/dev/null
	echo "killed=$?"
	grep -q " /sys/fs/bpf bpf " /proc/self/mounts && echo mounted-after-kill
	echo "$1" | DEPFENCE_CONFIG=$2 "$3" hook createRuntime 2>/dev/null
	echo "again=$?"
	grep -q " /sys/fs/bpf bpf " /proc/self/mounts && echo mounted
	echo "$4" | DEPFENCE_CONFIG=$2 "$3" hook poststop 2>/dev/null
	echo "poststop=$?"
	find /sys/fs/bpf/depfence-test-$5-m -mindepth 1 2>/dev/null
' _ "$(state "$ID-m" "$MP")" "$DF_T/mnt.json" "$DF_BIN" "$(state "$ID-m" 0)" "$$" 2>&1)
stop_waiter_pid() { kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null; rmdir "$CG" 2>/dev/null; }
stop_waiter_pid $MP
check "killed at mount(bpffs): killed, nothing mounted; again: mounted and attached; poststop left no pins" \
	"killed=137 again=0 mounted poststop=0" "$(echo $out)"
check "killed at mount(bpffs): nothing left in the state dir" "" "$(left)"

# --- the report writer killed at each write, fsync and rename ---
# One fence with records; its poststop is killed at call N of the writes,
# over an old report of the same id. The final path holds the old report or
# a whole new one, never a part; the records stay until a poststop finishes.
: >"$DF_T/err"
df_waiter "$NS" w "dfclient tcp 203.0.113.10 443; dfclient udp-sendto 203.0.113.20 53" "$CG"
state "$ID" "$W_PID" | hook createRuntime
check "writer: createRuntime exit 0" "0" "$?"
df_release w
reap "$W_PID"
REP=$DF_REPORTS/$ID.json
mkdir -p "$DF_REPORTS"
# this poststop only counts the calls; the kills go to a second fence's
state "$ID" 0 | strace -f -qq -o "$DF_T/wtrace" -e trace=write,fsync,fdatasync,rename,renameat,renameat2 \
	"$DF_BIN" hook poststop 2>/dev/null >/dev/null
n_wr=$(grep -c ' write(' "$DF_T/wtrace")
n_fs=$(grep -cE ' f(data)?sync\(' "$DF_T/wtrace")
n_rn=$(grep -cE ' rename(at2?)?\(' "$DF_T/wtrace")
check "writer: counted calls (report and stderr writes, fsyncs, rename)" "1" \
	"$([ "$n_wr" -ge 1 ] && [ "$n_fs" -ge 1 ] && [ "$n_rn" -ge 1 ] && echo 1)"
df_waiter "$NS" w2 "dfclient tcp 203.0.113.10 443; dfclient udp-sendto 203.0.113.20 53" "$CG"
state "$ID" "$W_PID" | hook createRuntime
df_release w2
reap "$W_PID"
printf '{"schema": "depfence.report/v1", "old": true}\n' >"$REP"
old_sum=$(md5sum <"$REP")
bad=0 kills=0 calls=0
# strace counts each syscall on its own: when=N is the Nth write, the Nth fsync, ...
for sc in write fsync,fdatasync rename,renameat,renameat2; do
	case $sc in write) n=$n_wr ;; fsync*) n=$n_fs ;; *) n=$n_rn ;; esac
	for N in $(seq "$n"); do
		calls=$((calls + 1))
		(state "$ID" 0 | timeout 60 strace -f -qq -o /dev/null -e trace="$sc" \
			-e inject="$sc":signal=SIGKILL:when="$N" "$DF_BIN" hook poststop) 2>/dev/null
		rc=$?
		[ $rc = 137 ] && kills=$((kills + 1))
		if [ "$(md5sum <"$REP")" = "$old_sum" ]; then
			:
		elif schema_valid "$REP" && [ "$(jqr "$REP" '.events | length')" = 1 ]; then
			# a whole new report: renamed before the kill; the old one back for the next kill
			printf '{"schema": "depfence.report/v1", "old": true}\n' >"$REP"
		else
			bad=$((bad + 1))
			notok "writer killed at $sc call $N of $n" "the report is neither the old one nor whole: $(head -c 200 "$REP" | oneline)"
			printf '{"schema": "depfence.report/v1", "old": true}\n' >"$REP"
		fi
		[ -d "$DF_PINS/$ID" ] || { notok "writer killed at $sc call $N" "the pins went with a killed poststop (exit $rc)"; break 2; }
	done
done
check "writer killed at each of $calls calls: always killed, the final path old or whole" "$calls 0" "$kills $bad"
state "$ID" 0 | hook poststop
check "writer: poststop after the kills: exit 0" "0" "$?"
schema_valid "$REP" && ok "writer: the report is schema-valid" || notok "writer: the report is schema-valid" "$(python3 "$DF_ROOT/tests/tools/schema_check.py" "$SCHEMA" "$REP" 2>&1 | oneline)"
check "writer: the report has the refused call" "1 blocked 203.0.113.10 443" \
	"$(jqr "$REP" '"\(.events | length) \(.events[0].verdict) \(.events[0].daddr) \(.events[0].dport)"')"
check "writer: nothing left of the fence" "" "$(left)"
n_tmp=$(temps | wc -l)
out=$("$DF_BIN" gc --grace 0 2>&1)
check "writer: gc removes the temp files the killed writers left" "$n_tmp 0" "$(echo "$out" | grep -c 'a temp file whose writer') $(temps | wc -l)"

# --- full disk and read-only report dir ---
# mnt_dir NAME SIZE: a tmpfs of SIZE on $DF_T/NAME, unmounted on exit
mnt_dir() {
	mkdir -p "$DF_T/$1" && mount -t tmpfs -o "size=$2,mode=0755" "df-faults" "$DF_T/$1" || return 1
	df_on_exit "umount -l '$DF_T/$1'"
}
# fence_with_records: a fence for $ID whose job made one refused and one allowed call; cgroup gone
fence_with_records() {
	df_waiter "$NS" "$1" "dfclient tcp 203.0.113.10 443; dfclient udp-sendto 203.0.113.20 53" "$CG"
	state "$ID" "$W_PID" | hook createRuntime || return 1
	df_release "$1"
	reap "$W_PID"
}
cfg() {
	printf '{ "attribution_linger": 0, "report_dir": "%s", "state_dir": "%s", "bpffs_root": "%s" }\n' "$1" "$DF_STATE" "$DF_PINS" >"$DF_T/cfg-$2.json"
	echo "$DF_T/cfg-$2.json"
}

# full: a 64 KiB tmpfs, filled
mnt_dir full 64k || { notok "full disk: mount a tmpfs" "mount failed"; exit 1; }
mkdir "$DF_T/full/reports"
dd if=/dev/zero of="$DF_T/full/filler" bs=4k count=64 2>/dev/null
FULL=$(cfg "$DF_T/full/reports" full)
fence_with_records full || notok "full disk: createRuntime" "$(oneline <"$DF_T/err")"
: >"$DF_T/err"
state "$ID" 0 | DEPFENCE_CONFIG=$FULL hook poststop
check "full disk: poststop fails" "1" "$?"
check_err() { if grep -q -- "$2" "$DF_T/err"; then ok "$1"; else notok "$1" "stderr: $(oneline <"$DF_T/err")"; fi; }
check_err "full disk: the message names the report path" "$DF_T/full/reports/$ID.json"
check_err "full disk: the message names the error" "No space left on device"
check_err "full disk: the message says the records stay" "stay pinned"
check "full disk: no report, no temp file" "" "$(ls -A "$DF_T/full/reports")"
check "full disk: pins and state kept" "1 1" "$([ -d "$DF_PINS/$ID" ] && echo 1) $([ -f "$DF_STATE/$ID.json" ] && echo 1)"
state "$ID" 0 | DEPFENCE_CONFIG=$FULL hook poststop
check "full disk: a second poststop fails the same way" "1" "$?"
rm -f "$DF_T/full/filler"
state "$ID" 0 | DEPFENCE_CONFIG=$FULL hook poststop
check "full disk: with space again, poststop writes the report" "0" "$?"
check "full disk: the report has the records" "2 1 blocked 203.0.113.10" \
	"$(jqr "$DF_T/full/reports/$ID.json" '"\(.summary.connections) \(.summary.blocked) \(.events[0].verdict) \(.events[0].daddr)"')"
schema_valid "$DF_T/full/reports/$ID.json" && ok "full disk: the report is schema-valid" || notok "full disk: the report is schema-valid" "invalid"
check "full disk: nothing left" "" "$(left)"

# read-only: a tmpfs remounted read-only; gc delivers once it is writable
mnt_dir ro 1m || { notok "read-only: mount a tmpfs" "mount failed"; exit 1; }
mkdir "$DF_T/ro/reports"
mount -o remount,ro "$DF_T/ro"
RO=$(cfg "$DF_T/ro/reports" ro)
fence_with_records ro || notok "read-only: createRuntime" "$(oneline <"$DF_T/err")"
: >"$DF_T/err"
state "$ID" 0 | DEPFENCE_CONFIG=$RO hook poststop
check "read-only: poststop fails" "1" "$?"
check_err "read-only: the message names the report path" "$DF_T/ro/reports/$ID.json"
check_err "read-only: the message names the error" "Read-only file system"
check "read-only: pins and state kept" "1 1" "$([ -d "$DF_PINS/$ID" ] && echo 1) $([ -f "$DF_STATE/$ID.json" ] && echo 1)"
: >"$DF_T/err"
DEPFENCE_CONFIG=$RO "$DF_BIN" gc >/dev/null 2>>"$DF_T/err"
check "read-only: gc fails too, loudly" "1" "$?"
check_err "read-only: gc names the path and the error" "$DF_T/ro/reports/$ID.json.*Read-only file system"
check "read-only: the records are still pinned" "1" "$([ -d "$DF_PINS/$ID" ] && echo 1)"
mount -o remount,rw "$DF_T/ro"
out=$(DEPFENCE_CONFIG=$RO "$DF_BIN" gc 2>>"$DF_T/err")
check "read-only: writable again, gc writes the report" "0 reported $ID" "$? $(echo "$out" | grep -o "^reported $ID")"
check "read-only: the report has the records" "2 1" "$(jqr "$DF_T/ro/reports/$ID.json" '"\(.summary.connections) \(.summary.blocked)"')"
schema_valid "$DF_T/ro/reports/$ID.json" && ok "read-only: the report is schema-valid" || notok "read-only: the report is schema-valid" "invalid"
check "read-only: nothing left" "" "$(left)"
