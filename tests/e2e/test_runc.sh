#!/bin/bash
# runc with the depfence hooks in config.json, as examples/runc/config-hooks.json
# shows: a busybox rootfs with the static dfclient, the container joined to a
# network namespace made here (test hosts on its lo), the hooks pointed at
# build/depfence with a private config through the hook's "env".
. "$(dirname "$0")/../lib.sh"
df_require_privileges "e2e/runc"
command -v runc >/dev/null || { notok "runc" "not installed"; exit 1; }
df_setup

NS=$(df_netns runc) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 53 80 443 || { notok "test servers" "did not come up"; exit 1; }

# a private runc state root: `runc list` of the host is not touched
RUNC=(runc --root "$DF_T/runc")

ROOTFS=$DF_T/rootfs
df_rootfs "$ROOTFS" || { notok "rootfs" "could not build it (busybox-static, dfclient)"; exit 1; }
mkdir "$DF_T/spec" && (cd "$DF_T/spec" && runc spec) || { notok "runc spec" "failed"; exit 1; }

# bundle NAME STAGE ANNOTATIONS-JSON SCRIPT: a bundle at $DF_T/NAME for
# container df$$-NAME; $DF_T/NAME.mnt is bind-mounted at /mnt.
bundle() {
	df_bundle "$DF_T/spec/config.json" "$NS" "$@"
	df_on_exit "timeout 20 ${RUNC[*]} delete -f df$$-$1"
}

# run NAME: runc run in the foreground, bounded; stdout in $DF_T/NAME.out, stderr in $DF_T/NAME.err
run() {
	timeout --kill-after=5 30 "${RUNC[@]}" run --bundle "$DF_T/$1" "df$$-$1" \
		</dev/null >"$DF_T/$1.out" 2>"$DF_T/$1.err"
}

CLIENT='dfclient tcp 203.0.113.10 443; dfclient tcp 203.0.113.10 80; dfclient udp-sendto 2001:db8::10 53; dfclient udp-sendto 2001:db8::20 53; touch /mnt/ran'
POLICY='{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443, udp/[2001:db8::10]", "depfence.io/label": "runc e2e", "org.example/other": "x"}'

# --- createRuntime, enforce ---
ID=df$$-enforce
bundle enforce createRuntime "$POLICY" "$CLIENT"
run enforce
df_check_exit "enforce: runc run exit 0" $? "$DF_T/enforce.err"
check "enforce: denied calls EPERM, allowed calls ok" "EPERM ok EPERM ok" "$(echo $(cat "$DF_T/enforce.out"))"
check "enforce: the container ran to the end" "1" "$([ -e "$DF_T/enforce.mnt/ran" ] && echo 1)"
REP=$DF_REPORTS/$ID.json
check "enforce: report written by poststop" "1" "$([ -s "$REP" ] && echo 1)"
check "enforce: report id, label, mode" "$ID|runc e2e|enforce" "$(jqr "$REP" '[.id, .label, .mode] | join("|")')"
check "enforce: tcp event" "blocked connect4 tcp 203.0.113.10:443 dfclient 1" "$(df_event "$REP" 203.0.113.10 443)"
check "enforce: udp v6 event" "blocked sendmsg6 udp udp/[2001:db8::10] dfclient 1" "$(df_event "$REP" 2001:db8::10 53)"
check "enforce: only the refusals recorded" "2 2" "$(jqr "$REP" '"\(.events | length) \(.summary.blocked)"')"
check "enforce: the fence was on the container's own cgroup" "1" \
	"$(jqr "$REP" '.cgroup' | grep -c "$ID")"
check "enforce: integrity read from config.json (runc spec caps: no NET_RAW, own netns and pidns, ro cgroupfs)" \
	"true config.json false false false false false 0" \
	"$(jqr "$REP" '.integrity | "\(.checked) \(.source) \(.cap_net_raw) \(.cap_sys_admin) \(.host_network) \(.host_pid) \(.writable_cgroupfs) \(.risks | length)"')"
check "enforce: the report names the container's command (config.json process.args)" "1" \
	"$(jqr "$REP" '.command' | grep -c dfclient)"
check "enforce: runc removed the container" "" "$("${RUNC[@]}" list -q 2>/dev/null | grep -x "$ID")"
df_check_clean "enforce"

# --- prestart instead of createRuntime ---
ID=df$$-prestart
bundle prestart prestart "$POLICY" "$CLIENT"
run prestart
df_check_exit "prestart: runc run exit 0" $? "$DF_T/prestart.err"
check "prestart: denied calls EPERM, allowed calls ok" "EPERM ok EPERM ok" "$(echo $(cat "$DF_T/prestart.out"))"
check "prestart: report event" "blocked connect4 tcp 203.0.113.10:443 dfclient 1" "$(df_event "$DF_REPORTS/$ID.json" 203.0.113.10 443)"
df_check_clean "prestart"

# --- audit: nothing refused, would-block recorded ---
ID=df$$-audit
bundle audit createRuntime '{"depfence.io/mode": "audit", "depfence.io/deny": "203.0.113.10:443"}' "$CLIENT"
run audit
df_check_exit "audit: runc run exit 0" $? "$DF_T/audit.err"
check "audit: every call succeeds" "ok ok ok ok" "$(echo $(cat "$DF_T/audit.out"))"
check "audit: report has would-block" "audit would-block connect4 tcp 203.0.113.10:443 dfclient 1" \
	"$(jqr "$DF_REPORTS/$ID.json" .mode) $(df_event "$DF_REPORTS/$ID.json" 203.0.113.10 443)"
check "audit: nothing blocked" "0" "$(jqr "$DF_REPORTS/$ID.json" .summary.blocked)"
df_check_clean "audit"

# --- create, start, delete: the way podman and containerd drive runc ---
ID=df$$-detached
bundle detached createRuntime "$POLICY" "$CLIENT"
timeout 30 "${RUNC[@]}" create --bundle "$DF_T/detached" "$ID" </dev/null >"$DF_T/detached.out" 2>"$DF_T/detached.err"
df_check_exit "detached: runc create exit 0" $? "$DF_T/detached.err"
check "detached: fence pinned before start" "1" "$([ -n "$(find "$DF_PINS/$ID" -mindepth 1 2>/dev/null)" ] && echo 1)"
check "detached: fresh: runc's init held no TCP socket at createRuntime (config flags 1)" "1" "$(df_cfg_flags "$ID")"
timeout 30 "${RUNC[@]}" start "$ID" 2>>"$DF_T/detached.err"
check "detached: runc start exit 0" "0" "$?"
for i in $(seq 100); do
	[ "$("${RUNC[@]}" state "$ID" 2>/dev/null | jq -r .status)" = stopped ] && break
	sleep 0.1
done
check "detached: container stopped" "stopped" "$("${RUNC[@]}" state "$ID" 2>/dev/null | jq -r .status)"
check "detached: no report before delete" "0" "$(ls "$DF_REPORTS" 2>/dev/null | grep -c "^$ID")"
timeout 30 "${RUNC[@]}" delete "$ID" 2>>"$DF_T/detached.err"
check "detached: runc delete exit 0" "0" "$?"
check "detached: denied calls EPERM, allowed calls ok" "EPERM ok EPERM ok" "$(echo $(cat "$DF_T/detached.out"))"
check "detached: report after delete" "blocked connect4 tcp 203.0.113.10:443 dfclient 1" "$(df_event "$DF_REPORTS/$ID.json" 203.0.113.10 443)"
df_check_clean "detached"

# --- hooks in config.json but no depfence.io/ annotations: no fence ---
ID=df$$-plain
bundle plain createRuntime '{"org.example/other": "x"}' "$CLIENT"
run plain
df_check_exit "no annotations: runc run exit 0" $? "$DF_T/plain.err"
check "no annotations: every call succeeds" "ok ok ok ok" "$(echo $(cat "$DF_T/plain.out"))"
check "no annotations: no report" "0" "$(ls "$DF_REPORTS" 2>/dev/null | grep -c "^$ID")"
df_check_clean "no annotations"

# --- a policy that does not parse: the container never runs ---
for bad in 'mode|{"depfence.io/mode": "enforcing"}|depfence.io/mode.*enforcing' \
	'deny|{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10, git*hub.com"}|depfence.io/deny.*git\*hub.com'; do
	IFS='|' read -r what ann pattern <<<"$bad"
	ID=df$$-bad$what
	bundle "bad$what" createRuntime "$ann" "touch /mnt/ran; $CLIENT"
	run "bad$what"
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ]; then ok "bad $what: runc run fails"; else
		notok "bad $what: runc run fails" "exit $rc"; fi
	check "bad $what: the container's process never ran" "0" "$(ls -A "$DF_T/bad$what.mnt" | wc -l)"
	check "bad $what: no output from the container" "" "$(cat "$DF_T/bad$what.out")"
	if grep -q -- "$pattern" "$DF_T/bad$what.err"; then ok "bad $what: runc's error carries the hook's message"; else
		notok "bad $what: runc's error carries the hook's message" "$(tr '\n' ' ' <"$DF_T/bad$what.err")"; fi
	check "bad $what: no report" "0" "$(ls "$DF_REPORTS" 2>/dev/null | grep -c "^$ID")"
	check "bad $what: runc left no container" "" "$("${RUNC[@]}" list -q 2>/dev/null | grep -x "$ID")"
	df_check_clean "bad $what"
done

# --- the pool: containers one after another with the same policy (the
# default fence_pool, with attribution_linger on): the second takes the
# first's verified programs, and each report is its own ---
jq '.attribution_linger = 60' "$DEPFENCE_CONFIG" >"$DF_T/pool.json"
SAVED_CONFIG=$DEPFENCE_CONFIG
export DEPFENCE_CONFIG=$DF_T/pool.json
kept() { for s in "$DF_PINS"/@pool/*/; do [ -d "$s" ] && bpftool -j prog show pinned "${s}pool_p_egress" 2>/dev/null | jq -r .id; done | tr '\n' ' '; }
for n in 1 2; do
	ID=df$$-pool$n
	bundle pool$n createRuntime "$POLICY" "$CLIENT"
	run pool$n
	df_check_exit "pool $n: runc run exit 0" $? "$DF_T/pool$n.err"
	check "pool $n: denied calls EPERM, allowed calls ok" "EPERM ok EPERM ok" "$(echo $(cat "$DF_T/pool$n.out"))"
	check "pool $n: its report has its own two refusals" "2 2 4" \
		"$(jqr "$DF_REPORTS/$ID.json" '"\(.events | length) \(.summary.blocked) \(.summary.connections)"')"
	eval "kept$n=\$(kept)"
done
check "pool: the first container's programs were kept" "1" "$(echo $kept1 | wc -w)"
check "pool: the second took them and gave them back (no second set)" "$kept1" "$kept2"
export DEPFENCE_CONFIG=$SAVED_CONFIG
jq '.fence_pool = 0 | .attribution_linger = 0' "$DF_T/pool.json" >"$DF_T/pool-off.json"
DEPFENCE_CONFIG=$DF_T/pool-off.json "$DF_BIN" gc >/dev/null 2>&1
check "pool: gc with the pool off removes the kept set (and the attribution programs)" "" "$(kept)"
df_check_clean "pool"
