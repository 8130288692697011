#!/bin/bash
# depfence hook driven by hand, as a runtime drives it: state JSON on stdin,
# a real cgroup v2 directory made here holding one process, that process in a
# network namespace made here (test hosts on its lo), so no packet leaves.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/hook"
df_setup

NS=$(df_netns hook) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 53 80 443 || { notok "test servers" "did not come up"; exit 1; }

# the cgroup2 hierarchy root: fstype after the " - " separator, mount root "/"
CG2=$(df_cg2root)
[ -d "$CG2" ] || { notok "cgroup2 mount" "not found in /proc/self/mountinfo"; exit 1; }




# state ID PID ANNOTATIONS-JSON|null [BUNDLE] [STATUS]: runc's shape of the state
state() {
	jq -nc --arg id "$1" --argjson pid "$2" --argjson ann "$3" --arg bundle "${4:-$DF_T}" \
		--arg status "${5:-creating}" \
		'{ociVersion: "1.0.2-dev", id: $id, status: $status, bundle: $bundle}
		 + (if $pid == null then {} else {pid: $pid} end)
		 + (if $ann == null then {} else {annotations: $ann} end)'
}

# hook STAGE: run the hook with stdin as given; stderr kept in $DF_T/err
hook() { "$DF_BIN" hook "$@" 2>"$DF_T/err"; }

# check_rc NAME WANT RC: an exit status, with the hook's stderr when it is not the one wanted
check_rc() {
	if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "exit $3, want $2; stderr: $(tr '\n' ' ' <"$DF_T/err")"; fi
}

# check_err NAME PATTERN: the hook's stderr matches the grep pattern
check_err() {
	if grep -q -- "$2" "$DF_T/err"; then ok "$1"; else notok "$1" "stderr: $(tr '\n' ' ' <"$DF_T/err")"; fi
}

has_pins() { [ -n "$(find "$DF_PINS/$1" -mindepth 1 2>/dev/null)" ]; }

# --- createRuntime, runc's state, enforce ---
ID=hook-enforce
df_waiter "$NS" enforce "dfclient tcp 203.0.113.10 443; dfclient tcp 203.0.113.10 80"
ANN='{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443", "depfence.io/label": "job 7", "org.example/other": "x"}'
state "$ID" "$W_PID" "$ANN" | hook createRuntime
check_rc "createRuntime: exit 0" 0 $?
has_pins "$ID" && ok "createRuntime: links and maps pinned" || notok "createRuntime: links and maps pinned" "nothing under $DF_PINS/$ID"
check "createRuntime: state file written" "1" "$([ -s "$DF_STATE/$ID.json" ] && echo 1)"
check "createRuntime: fence attached to the cgroup" "$W_CG" "$(jqr "$DF_STATE/$ID.json" .cgroup)"
df_release enforce
df_reap "$W_PID"
check "enforce: denied call fails with EPERM, allowed call works" "EPERM ok" "$(echo $(cat "$DF_T/enforce.out"))"
check "enforce: a process outside the cgroup is not fenced" "ok" "$(in_ns "$NS" "$DF_TOOLS/dfclient" tcp 203.0.113.10 443)"
# runc and crun remove the cgroup before poststop: so do we
rmdir "$W_CG"
state "$ID" 0 "$ANN" "$DF_T" stopped | hook poststop
check_rc "poststop (pid 0, cgroup gone): exit 0" 0 $?
REP=$DF_REPORTS/$ID.json
check "poststop: report id, label, mode" "$ID|job 7|enforce|allow" "$(jqr "$REP" '[.id, .label, .mode, .default] | join("|")')"
check "poststop: report has the blocked event only" "1 blocked connect4 tcp 203.0.113.10 443 203.0.113.10:443 dfclient 1" \
	"$(jqr "$REP" '"\(.events | length) " + (.events[0] | "\(.verdict) \(.hook) \(.proto) \(.daddr) \(.dport) \(.rule) \(.process.comm) \(.count)")')"
check "poststop: summary" "2 1 1" "$(jqr "$REP" '.summary | "\(.connections) \(.allowed) \(.blocked)"')"
check "poststop: rules from the annotation" "annotation depfence.io/deny" "$(jqr "$REP" '.policy.rules[0].source')"
df_check_clean "poststop"
sum=$({ md5sum <"$REP"; } 2>/dev/null)
state "$ID" 0 "$ANN" "$DF_T" stopped | hook poststop
check_rc "poststop twice: exit 0" 0 $?
check "poststop twice: report left as it was" "1 $sum" "$([ -s "$REP" ] && echo 1) $({ md5sum <"$REP"; } 2>/dev/null)"
echo '{"id": "never-fenced"}' | hook poststop
check "poststop without a fence: exit 0, no report" "0 0" "$? $(ls "$DF_REPORTS" 2>/dev/null | grep -c never-fenced)"

# --- annotations absent from the state, present in <bundle>/config.json ---
ID=hook-bundle
mkdir -p "$DF_T/bundle"
jq -n '{ociVersion: "1.0.2", annotations: {"org.example/x": "y", "depfence.io/mode": "enforce",
	"depfence.io/deny": "[2001:db8::10]", "depfence.io/label": "from config.json"}}' >"$DF_T/bundle/config.json"
df_waiter "$NS" bundle "dfclient tcp 2001:db8::10 443; dfclient tcp 2001:db8::20 443"
state "$ID" "$W_PID" null "$DF_T/bundle" | hook createRuntime
check_rc "bundle config.json annotations: createRuntime exit 0" 0 $?
df_release bundle
df_reap "$W_PID"
check "bundle config.json annotations: denied v6 call EPERM, other ok" "EPERM ok" "$(echo $(cat "$DF_T/bundle.out"))"
rmdir "$W_CG"
echo "{\"id\": \"$ID\"}" | hook poststop
check_rc "poststop (no pid at all): exit 0" 0 $?
check "bundle config.json annotations: report" "from config.json enforce blocked connect6 2001:db8::10 443" \
	"$(jqr "$DF_REPORTS/$ID.json" '"\(.label) \(.mode) " + (.events[] | "\(.verdict) \(.hook) \(.daddr) \(.dport)")')"
df_check_clean "bundle"

# --- prestart does the same work ---
ID=hook-prestart
df_waiter "$NS" prestart "dfclient udp-sendto 203.0.113.20 53; dfclient tcp 203.0.113.20 443"
state "$ID" "$W_PID" '{"depfence.io/mode": "enforce", "depfence.io/deny": "udp/203.0.113.20"}' | hook prestart
check_rc "prestart: exit 0" 0 $?
df_release prestart
df_reap "$W_PID"
check "prestart: denied UDP datagram EPERM, TCP to the same host ok" "EPERM ok" "$(echo $(cat "$DF_T/prestart.out"))"
echo "{\"id\": \"$ID\", \"pid\": 0}" | hook poststop
check_rc "prestart: poststop exit 0" 0 $?
check "prestart: report event" "blocked sendmsg4 udp 203.0.113.20 53 dfclient" \
	"$(jqr "$DF_REPORTS/$ID.json" '.events[] | "\(.verdict) \(.hook) \(.proto) \(.daddr) \(.dport) \(.process.comm)"')"
df_check_clean "prestart"

# --- audit: nothing refused, the would-be refusal recorded ---
ID=hook-audit
df_waiter "$NS" audit "dfclient tcp 203.0.113.10 443"
state "$ID" "$W_PID" '{"depfence.io/mode": "audit", "depfence.io/deny": "203.0.113.0/24"}' | hook createRuntime
check_rc "audit: createRuntime exit 0" 0 $?
df_release audit
df_reap "$W_PID"
check "audit: the call succeeds" "ok" "$(cat "$DF_T/audit.out")"
echo "{\"id\": \"$ID\"}" | hook poststop
check "audit: report has would-block" "audit would-block 203.0.113.0/24" \
	"$(jqr "$DF_REPORTS/$ID.json" '"\(.mode) " + (.events[] | "\(.verdict) \(.rule)")')"
df_check_clean "audit"

# --- a policy that does not parse: no fence, an error naming key and value ---
df_waiter "$NS" bad "true"
BAD_CG=$W_CG BAD_PID=$W_PID
while IFS='|' read -r name key value want; do
	[ -z "$name" ] && continue
	ann=$(jq -nc --arg k "$key" --arg v "$value" '{"depfence.io/mode": "enforce", ($k): $v}')
	state "bad-$RANDOM" "$BAD_PID" "$ann" | hook createRuntime
	check_rc "$name: createRuntime exit 1" 1 $?
	case $(cat "$DF_T/err") in
	*"$key"*"$want"*) ok "$name: message names key and value" ;;
	*) notok "$name: message names key and value" "stderr: $(cat "$DF_T/err")" ;;
	esac
	df_check_clean "$name"
done <<'EOF'
bad mode|depfence.io/mode|enforcing|"enforcing"
bad default|depfence.io/default|block|"block"
bad deny rule|depfence.io/deny|203.0.113.10, git*hub.com|git*hub.com
bad allow rule|depfence.io/allow|203.0.113.0/33|203.0.113.0/33
unknown key|depfence.io/denny|203.0.113.10|unknown key
EOF
# a NUL (\u0000) in a value would cut the rest of the policy off where it is read as a C string
state "bad-$RANDOM" "$BAD_PID" '{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10\u0000, github.com"}' |
	hook createRuntime
check_rc "NUL in a value: createRuntime exit 1" 1 $?
check_err "NUL in a value: the message shows the string and why" 'the string "203.0.113.10.u0000, github.com" holds .u0000 (a NUL byte)'
df_check_clean "NUL in a value"
check "bad policy: nothing attached to the cgroup" "" "$(bpftool cgroup show "$BAD_CG" 2>/dev/null | grep -v '^ID')"
df_release bad
df_reap "$BAD_PID"

# --- container ids are file names: checked before any path is built ---
printf '{ "attribution_linger": 0, "report_dir": "%s", "state_dir": "%s", "bpffs_root": "%s" }\n' \
	"$DF_T/id/reports" "$DF_T/id/state" "$DF_PINS/id" >"$DF_T/id.json"
mkdir -p "$DF_T/id"
for bad_id in '../x' 'a/../../x' '.hidden' ''; do
	state "$bad_id" "$$" '{"depfence.io/mode": "enforce"}' | DEPFENCE_CONFIG=$DF_T/id.json hook createRuntime
	check_rc "id '$bad_id': createRuntime refused" 1 $?
	check_err "id '$bad_id': message says why" 'not a safe container id'
	state "$bad_id" 0 null | DEPFENCE_CONFIG=$DF_T/id.json hook poststop
	check_rc "id '$bad_id': poststop refused" 1 $?
done
check "unsafe ids: no directory or file made" "" "$(ls -A "$DF_T/id"; ls -d "$DF_PINS/id" 2>/dev/null)"

# --- the root cgroup is refused ---
if grep -qx '0::/' /proc/self/cgroup; then
	ROOT_PID=$$ how="this test's shell"
else
	sleep 30 &
	ROOT_PID=$!
	df_track_pid "$ROOT_PID"
	echo "$ROOT_PID" 2>/dev/null >"$CG2/cgroup.procs"
	how="a sleep moved to $CG2"
fi
if grep -qx '0::/' "/proc/$ROOT_PID/cgroup"; then
	state root-cg "$ROOT_PID" '{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443"}' | hook createRuntime
	check_rc "root cgroup ($how): refused" 1 $?
	check_err "root cgroup: message says so" 'in the root cgroup'
	df_check_clean "root cgroup"
else
	notok "root cgroup" "could not get a process into the root cgroup: $(cat "/proc/$ROOT_PID/cgroup")"
fi

# --- a cgroup shared with a process that is not the container's ---
W_CG=$CG2/df$$-shared
mkdir "$W_CG" && df_track_cgroup "$W_CG"
sleep 30 &
P1=$!
sleep 30 &
P2=$!
df_track_pid "$P1"
df_track_pid "$P2"
echo "$P1" >"$W_CG/cgroup.procs"
echo "$P2" >"$W_CG/cgroup.procs"
state shared "$P1" '{"depfence.io/mode": "enforce"}' | hook createRuntime
check_rc "shared cgroup: refused" 1 $?
check_err "shared cgroup: message names the other pid" "also holds pid $P2,"
df_check_clean "shared cgroup"
kill "$P1" "$P2"
df_reap "$P1"
df_reap "$P2"

# --- no depfence.io/ annotations: no fence, no report ---
df_waiter "$NS" none "dfclient tcp 203.0.113.10 443"
state none "$W_PID" '{"org.example/x": "y"}' | hook createRuntime
check_rc "no depfence.io annotations: exit 0" 0 $?
mkdir -p "$DF_T/plain"
echo '{"ociVersion": "1.0.2", "annotations": {"org.example/x": "y"}}' >"$DF_T/plain/config.json"
state none "$W_PID" null "$DF_T/plain" | hook createRuntime
check_rc "no depfence.io annotations in config.json: exit 0" 0 $?
df_release none
df_reap "$W_PID"
check "no annotations: the call is not fenced" "ok" "$(cat "$DF_T/none.out")"
state none 0 null | hook poststop
check "no annotations: poststop exit 0, no report" "0 0" "$? $(ls "$DF_REPORTS" 2>/dev/null | grep -c '^none')"
df_check_clean "no annotations"

# --- bad state input ---
{
	printf '{"id": "big", "pid": %d, "annotations": {"depfence.io/mode": "enforce", "org.example/pad": "' "$$"
	head -c $((1024 * 1024)) /dev/zero | tr '\0' a
	printf '"}}'
} >"$DF_T/big.json"
hook createRuntime <"$DF_T/big.json"
check_rc "state over 1 MiB: refused" 1 $?
check_err "state over 1 MiB: message says so" 'larger than 1048576 bytes'
df_check_clean "oversized state"
echo '{"id": "x", "pid": ' | hook createRuntime
check_rc "truncated state JSON: refused" 1 $?
echo '[1, 2]' | hook createRuntime
check_rc "state not an object: refused" 1 $?
state poststart 0 null | hook poststart
check_rc "unknown stage: usage exit" 2 $?
check_err "unknown stage: message names it" 'unknown stage "poststart"'
hook </dev/null
check_rc "no stage: usage exit" 2 $?
df_check_clean "bad input"

# --- the report cannot be written: the records stay, a later poststop delivers ---
ID=hook-noreport
df_waiter "$NS" noreport "dfclient tcp 203.0.113.10 443"
state "$ID" "$W_PID" '{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10"}' | hook createRuntime
check_rc "unwritable report dir: createRuntime exit 0" 0 $?
df_release noreport
df_reap "$W_PID"
check "unwritable report dir: call refused" "EPERM" "$(cat "$DF_T/noreport.out")"
rmdir "$W_CG"
: >"$DF_T/afile"
printf '{ "attribution_linger": 0, "report_dir": "%s", "state_dir": "%s", "bpffs_root": "%s" }\n' \
	"$DF_T/afile/reports" "$DF_STATE" "$DF_PINS" >"$DF_T/broken.json"
state "$ID" 0 null | DEPFENCE_CONFIG=$DF_T/broken.json hook poststop
check_rc "unwritable report dir: poststop fails" 1 $?
check_err "unwritable report dir: message says the records stay" 'stay pinned'
has_pins "$ID" && ok "unwritable report dir: pins kept" || notok "unwritable report dir: pins kept" "pins removed"
check "unwritable report dir: state kept" "1" "$([ -s "$DF_STATE/$ID.json" ] && echo 1)"
state "$ID" 0 null | hook poststop
check_rc "after fixing the config: poststop exit 0" 0 $?
check "after fixing the config: report has the event" "blocked 203.0.113.10 443 dfclient" \
	"$(jqr "$DF_REPORTS/$ID.json" '.events[] | "\(.verdict) \(.daddr) \(.dport) \(.process.comm)"')"
df_check_clean "after fixing the config"

# --- the link pins removed while the container runs: its fence is lifted from
# then on; poststop reports what the maps hold, marked not whole, and fails ---
ID=hook-unlinked
df_waiter "$NS" unlinked "dfclient tcp 203.0.113.10 443; read go <'$DF_T/unlinked.fifo'; dfclient tcp 203.0.113.10 443"
state "$ID" "$W_PID" '{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443"}' | hook createRuntime
check_rc "unlinked: createRuntime exit 0" 0 $?
check "unlinked: the state file says the fence is attached" "true" "$(jqr "$DF_STATE/$ID.json" .attached)"
df_release unlinked
for i in $(seq 50); do [ -s "$DF_T/unlinked.out" ] && break; sleep 0.05; done
rm -f "$DF_PINS/$ID"/connect4 "$DF_PINS/$ID"/connect6 "$DF_PINS/$ID"/sendmsg4 \
	"$DF_PINS/$ID"/sendmsg6 "$DF_PINS/$ID"/egress "$DF_PINS/$ID"/ingress
df_release unlinked
df_reap "$W_PID"
check "unlinked: refused while linked, through once the links went" "EPERM ok" "$(echo $(cat "$DF_T/unlinked.out"))"
rmdir "$W_CG"
state "$ID" 0 null | hook poststop
check_rc "unlinked: poststop fails" 1 $?
check_err "unlinked: the error says the report is incomplete" 'links were removed.*incomplete'
check "unlinked: the report says the links were lost" '["links"]' "$(jq -c .records_lost "$DF_REPORTS/$ID.json" 2>/dev/null)"
check "unlinked: the refusal made while linked is in it" "1" "$(jqr "$DF_REPORTS/$ID.json" .summary.blocked)"
df_check_clean "unlinked"

# --- one id at a time: createRuntime waits while another holds the id's lock
# (a byte of state_dir/.fences.lock, by FNV-1a of the id), then goes on ---
ID=hook-locked
df_waiter "$NS" locked "dfclient tcp 203.0.113.10 443"
state "$ID" "$W_PID" '{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443"}' >"$DF_T/locked.state"
df_hold_lock "$ID" 3
holder=$LOCK_PID
"$DF_BIN" hook createRuntime <"$DF_T/locked.state" 2>"$DF_T/locked.err" &
starter=$!
df_track_pid "$starter"
sleep 2
check "id lock: createRuntime waits while it is held" "running, no state" \
	"$(kill -0 "$starter" 2>/dev/null && echo running || echo ended), $([ -e "$DF_STATE/$ID.json" ] && echo state || echo no state)"
timeout 60 tail --pid="$starter" -f /dev/null
wait "$starter"
check "id lock: then goes on (exit 0, attached)" "0 true" "$? $(jqr "$DF_STATE/$ID.json" .attached)"
wait "$holder" 2>/dev/null
df_release locked
df_reap "$W_PID"
check "id lock: the fence refuses" "EPERM" "$(cat "$DF_T/locked.out")"
rmdir "$W_CG"
state "$ID" 0 null | hook poststop
check_rc "id lock: poststop exit 0" 0 $?
df_check_clean "id lock"

# --- two createRuntime for one id at once (a runtime retrying): the first is
# held 1.5 s at the mkdir of its pin directory so the second starts inside
# that window; they take turns, the second finds the first's fence, finishes
# it and starts afresh, and the fence that stands is whole ---
ID=hook-twice
df_waiter "$NS" twice "dfclient tcp 203.0.113.10 443"
state "$ID" "$W_PID" '{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443"}' >"$DF_T/twice.state"
# (LeakSanitizer cannot run under ptrace: the sanitizer tier's leak check is off for this one)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	strace -f -o /dev/null -P "$DF_PINS/$ID" -e trace=mkdir -e inject=mkdir:delay_enter=1500000:when=1 \
	"$DF_BIN" hook createRuntime <"$DF_T/twice.state" 2>"$DF_T/twice-a.err" &
first=$!
sleep 0.8
"$DF_BIN" hook createRuntime <"$DF_T/twice.state" 2>"$DF_T/twice-b.err"
second=$?
timeout 60 tail --pid="$first" -f /dev/null
wait "$first"
check "twice: both hooks exit 0" "0 0 " "$? $second $(grep -m1 -i 'sanitizer' "$DF_T/twice-a.err")"
check "twice: the fence that stands is whole" "6 true" \
	"$(ls "$DF_PINS/$ID" 2>/dev/null | grep -cE '^(connect[46]|sendmsg[46]|egress|ingress)$') $(jqr "$DF_STATE/$ID.json" .attached)"
df_release twice
df_reap "$W_PID"
check "twice: and it refuses" "EPERM" "$(cat "$DF_T/twice.out")"
rmdir "$W_CG"
state "$ID" 0 null | hook poststop
check_rc "twice: poststop exit 0" 0 $?
check "twice: its report has the refusal" "1" "$(jqr "$DF_REPORTS/$ID.json" .summary.blocked)"
df_check_clean "twice"

# --- container ids are unique per runtime root only (two runc --root dirs, two
# containerd namespaces): B, of A's id, is refused at createRuntime while A's
# fence holds; the runtime then runs B's poststop anyway (runc's destroy()
# does), which must leave A's fence alone: the state file keeps A's bundle ---
ID=hook-sameid
mkdir -p "$DF_T/bundle-a" "$DF_T/bundle-b"
ANN='{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443"}'
df_waiter "$NS" sameid-a "dfclient tcp 203.0.113.10 443"
A_CG=$W_CG A_PID=$W_PID
state "$ID" "$A_PID" "$ANN" "$DF_T/bundle-a" | hook createRuntime
check_rc "same id, other bundle: A's createRuntime exit 0" 0 $?
check "same id, other bundle: A's state file keeps its bundle" "$DF_T/bundle-a" "$(jqr "$DF_STATE/$ID.json" .bundle)"
progs_a=$(bpftool cgroup show "$A_CG" 2>/dev/null | grep -vc '^ID')
check "same id, other bundle: A's programs attached (at least 6)" "1" "$([ "$progs_a" -ge 6 ] && echo 1)"
df_waiter "$NS" sameid-b "true"
B_CG=$W_CG B_PID=$W_PID
state "$ID" "$B_PID" "$ANN" "$DF_T/bundle-b" | hook createRuntime
check_rc "same id, other bundle: B's createRuntime refused" 1 $?
check_err "same id, other bundle: B is told why" "a fence with id $ID is attached to another cgroup"
df_release sameid-b
df_reap "$B_PID"
rmdir "$B_CG"
state "$ID" 0 null "$DF_T/bundle-b" stopped | hook poststop
check_rc "same id, other bundle: B's poststop exit 0" 0 $?
check_err "same id, other bundle: B's poststop names the id and both bundles" \
	"poststop $ID: .*bundle $DF_T/bundle-a, not to this one (bundle $DF_T/bundle-b)"
check "same id, other bundle: A's programs still attached" "$progs_a" \
	"$(bpftool cgroup show "$A_CG" 2>/dev/null | grep -vc '^ID')"
check "same id, other bundle: A's pins and state stay, no report" "6 $DF_T/bundle-a no report" \
	"$(ls "$DF_PINS/$ID" 2>/dev/null | grep -cE '^(connect[46]|sendmsg[46]|egress|ingress)$') $(jqr "$DF_STATE/$ID.json" .bundle) $([ -e "$DF_REPORTS/$ID.json" ] && echo report || echo no report)"
df_release sameid-a
df_reap "$A_PID"
check "same id, other bundle: A is still fenced" "EPERM" "$(cat "$DF_T/sameid-a.out")"
rmdir "$A_CG"
state "$ID" 0 null "$DF_T/bundle-a" stopped | hook poststop
check_rc "same id, other bundle: A's own poststop exit 0" 0 $?
check "same id, other bundle: A's report has its refusal" "$ID 1" "$(jqr "$DF_REPORTS/$ID.json" '"\(.id) \(.summary.blocked)"')"
df_check_clean "same id, other bundle"

# --- the programs are verified on two threads at once (fence.c, fence_objs_load):
# the fence's eight program loads (the attribution's tracing programs aside)
# come from two tasks: three on the second thread (df_egress, df_connect6,
# df_sendmsg6: 27 ms by fence.c's verify_cost), five on the first (df_connect4,
# loaded with the maps before the threads start, df_dns_msg, df_ingress,
# df_sendmsg4, df_sockops: 28 ms), and the fence holds ---
ID=hook-threads
df_waiter "$NS" threads "dfclient tcp 203.0.113.10 443"
state "$ID" "$W_PID" '{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443, github.com"}' >"$DF_T/threads.state"
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
	strace -f -o "$DF_T/threads.strace" -e trace=bpf "$DF_BIN" hook createRuntime <"$DF_T/threads.state" 2>"$DF_T/threads.err"
check_rc "threads: createRuntime exit 0" 0 $?
loads=$(grep -E 'BPF_PROG_LOAD.*prog_name="df_' "$DF_T/threads.strace" | grep -Ev 'resumed|PROG_TYPE_TRACING' | awk '{print $1}' | sort | uniq -c | awk '{print $1}' | sort -n | tr '\n' ' ')
check "threads: the 8 programs verified by two tasks (loads per task)" "3 5 " "$loads"
df_release threads
df_reap "$W_PID"
check "threads: the fence refuses" "EPERM" "$(cat "$DF_T/threads.out")"
rmdir "$W_CG"
state "$ID" 0 null | hook poststop
check_rc "threads: poststop exit 0" 0 $?
df_check_clean "threads"
