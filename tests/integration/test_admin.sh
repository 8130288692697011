#!/bin/bash
# Admin controls: the host config's policy (mode, default, deny, allow) is under
# every fence the hook and run make; annotations and run flags may tighten it
# and loosen it only with annotations_may_loosen; the depfence.io/break-glass
# annotation puts one container in audit only with annotations_may_break_glass.
# The hook is driven as a runtime drives it (state JSON on stdin, a real cgroup
# holding one process in a network namespace made here).
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/admin"
df_setup

NS=$(df_netns admin) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 80 || { notok "test servers" "did not come up"; exit 1; }
C=$DF_TOOLS/dfclient

CG2=$(df_cg2root)
[ -d "$CG2" ] || { notok "cgroup2 mount" "not found in /proc/self/mountinfo"; exit 1; }

# config NAME JSON-MEMBERS: a config with this test's dirs and the admin's keys
config() {
	printf '{ "attribution_linger": 0, "report_dir": "%s", "state_dir": "%s", "bpffs_root": "%s", %s }\n' \
		"$DF_REPORTS" "$DF_STATE" "$DF_PINS" "$2" >"$DF_T/$1.json"
}
mkdir -p "$DF_T/profiles"
echo '{ "description": "lets the API through", "allow": ["tcp/203.0.113.10:80"] }' >"$DF_T/profiles/api-through.json"
config strict '"mode": "enforce", "deny": ["203.0.113.10"], "profiles_dir": "'"$DF_T/profiles"'"'
config loosen '"mode": "enforce", "deny": ["203.0.113.10"], "annotations_may_loosen": true'
config glass '"mode": "enforce", "deny": ["203.0.113.10"], "annotations_may_break_glass": true'
config plain '"max_records": 4096'

# wait_lines FILE N: bounded wait until FILE has N lines
wait_lines() {
	local i
	for i in $(seq 100); do [ "$(wc -l <"$1" 2>/dev/null)" -ge "$2" ] && return 0; sleep 0.05; done
	return 1
}

# state ID PID ANNOTATIONS-JSON [STATUS]
state() {
	jq -nc --arg id "$1" --argjson pid "$2" --argjson ann "$3" --arg b "$DF_T" --arg s "${4:-creating}" \
		'{ociVersion: "1.0.2", id: $id, status: $s, bundle: $b, pid: $pid, annotations: $ann}'
}
# hook CONFIG STAGE: stderr in $DF_T/err
hook() { DEPFENCE_CONFIG=$DF_T/$1.json "$DF_BIN" hook "$2" 2>"$DF_T/err"; }
stop() { rmdir "$W_CG" 2>/dev/null; state "$1" 0 '{}' stopped | hook "$2" poststop; }
errline() { tr '\n' ' ' <"$DF_T/err"; }
# err_has NAME FRAGMENT...: the hook's stderr holds every fragment
err_has() {
	local name=$1 f; shift
	for f in "$@"; do
		grep -qF -- "$f" "$DF_T/err" || { notok "$name" "no '$f' in: $(errline)"; return; }
	done
	ok "$name"
}
# nothing_of ID: no pins, no state file, no report for the container
nothing_of() {
	check "$2: no pins, state or report" "" \
		"$(ls -d "$DF_PINS/$1" "$DF_STATE/$1.json" "$DF_REPORTS/$1.json" 2>/dev/null)"
}

# --- the admin's deny applies with no depfence annotation at all ---
df_waiter "$NS" none "dfclient tcp 203.0.113.10 80; dfclient tcp 203.0.113.20 80"
state adm-none "$W_PID" '{"org.example/team": "deploy"}' | hook strict createRuntime
check "no annotation: createRuntime exit 0" "0" "$?"
check "no annotation: the fence is there" "1" "$([ -s "$DF_STATE/adm-none.json" ] && [ -d "$DF_PINS/adm-none" ] && echo 1)"
df_release none
df_reap "$W_PID"
check "no annotation: admin deny refused, the rest allowed" "EPERM ok" "$(echo $(cat "$DF_T/none.out"))"
stop adm-none strict
R=$DF_REPORTS/adm-none.json
check "no annotation: report mode and the admin's rule" "enforce 203.0.113.10 admin deny" \
	"$(jqr "$R" '"\(.mode) " + (.policy.rules[] | "\(.rule) \(.source)")')"
check "no annotation: the blocked event names the admin's rule" "blocked 203.0.113.10" \
	"$(jqr "$R" '.events[] | select(.verdict == "blocked") | "\(.verdict) \(.rule)"')"
df_check_clean "no annotation"

# without an admin policy an unannotated container is left alone, as before
state adm-plain "$$" '{"org.example/team": "deploy"}' | hook plain createRuntime
check "no admin policy, no annotation: exit 0" "0" "$?"
nothing_of adm-plain "no admin policy, no annotation"

# --- an annotation tightens: its deny rules add to the admin's ---
df_waiter "$NS" tight "dfclient tcp 203.0.113.10 80; dfclient tcp 203.0.113.20 80; dfclient tcp 198.51.100.10 80"
state adm-tight "$W_PID" '{"depfence.io/deny": "203.0.113.20", "depfence.io/allow": "198.51.100.0/24"}' |
	hook strict createRuntime
check "tighten: createRuntime exit 0" "0" "$?"
df_release tight
df_reap "$W_PID"
check "tighten: admin deny and annotation deny refused, other allowed" "EPERM EPERM ok" \
	"$(echo $(cat "$DF_T/tight.out"))"
stop adm-tight strict
check "tighten: report rules, admin's first" "203.0.113.10=admin deny,203.0.113.20=annotation depfence.io/deny,198.51.100.0/24=annotation depfence.io/allow" \
	"$(jqr "$DF_REPORTS/adm-tight.json" '[.policy.rules[] | "\(.rule)=\(.source)"] | join(",")')"
df_check_clean "tighten"

# --- loosening is refused: exit 1, a message that says so, nothing left ---
df_waiter "$NS" loose "true"
LOOSE_PID=$W_PID LOOSE_CG=$W_CG
while IFS='|' read -r name key value frags; do
	[ -z "$name" ] && continue
	id=adm-$RANDOM
	state "$id" "$LOOSE_PID" "$(jq -nc --arg k "$key" --arg v "$value" '{"io.kubernetes.container.name": "job", ($k): $v}')" | hook strict createRuntime
	check "$name: createRuntime exit 1" "1" "$?"
	IFS=';' read -ra want <<<"$frags"
	err_has "$name: message names the key, the value and the admin rule" "$key" "${want[@]}"
	nothing_of "$id" "$name"
done <<'EOF'
loosen mode|depfence.io/mode|audit|"audit" would loosen the admin mode "enforce";annotations_may_loosen
loosen allow|depfence.io/allow|198.51.100.10, 203.0.113.10:80|allow rule "203.0.113.10:80" would loosen the admin deny rule "203.0.113.10";strict.json;annotations_may_loosen
loosen scoped allow|job.depfence.io/allow|tcp/203.0.113.10|allow rule "tcp/203.0.113.10" would loosen the admin deny rule "203.0.113.10"
loosen by profile|depfence.io/profile|api-through|(profile api-through): allow rule "tcp/203.0.113.10:80" would loosen the admin deny rule "203.0.113.10"
forbidden break-glass|depfence.io/break-glass|INC-42 github outage|break-glass for one container is forbidden;"annotations_may_break_glass" is not true
EOF
check "loosening refused: nothing attached to the cgroup" "" "$(bpftool cgroup show "$LOOSE_CG" 2>/dev/null | grep -v '^ID')"
df_release loose
df_reap "$LOOSE_PID"

# --- with annotations_may_loosen the same annotations are accepted ---
df_waiter "$NS" mayl "dfclient tcp 203.0.113.10 80; dfclient tcp 203.0.113.20 80"
state adm-mayl "$W_PID" '{"depfence.io/allow": "203.0.113.10:80", "depfence.io/default": "deny", "depfence.io/mode": "enforce"}' |
	hook loosen createRuntime
check "may loosen: createRuntime exit 0" "0" "$?"
df_release mayl
df_reap "$W_PID"
check "may loosen: the allow wins over the admin deny, the default refuses" "ok EPERM" "$(echo $(cat "$DF_T/mayl.out"))"
stop adm-mayl loosen
check "may loosen: report has the annotation's allow after the admin's deny" "deny 203.0.113.10 admin deny,allow 203.0.113.10:80 annotation depfence.io/allow" \
	"$(jqr "$DF_REPORTS/adm-mayl.json" '[.policy.rules[] | "\(.verdict) \(.rule) \(.source)"] | join(",")')"
df_waiter "$NS" mayl2 "true"
state adm-mayl2 "$W_PID" '{"depfence.io/mode": "observe"}' | hook loosen createRuntime
check "may loosen: a weaker mode too" "0 observe" "$? $(jqr "$DF_STATE/adm-mayl2.json" .mode)"
df_release mayl2
df_reap "$W_PID"
stop adm-mayl2 loosen
df_check_clean "may loosen"

# --- break-glass where the admin permits it: this container alone in audit ---
df_waiter "$NS" glass "dfclient tcp 203.0.113.10 80; read go <'$DF_T/glass.fifo'; dfclient tcp 203.0.113.10 80"
GLASS_PID=$W_PID GLASS_CG=$W_CG
state adm-glass "$W_PID" '{"depfence.io/break-glass": "INC-42 github outage"}' | hook glass createRuntime
check "break-glass: createRuntime exit 0" "0" "$?"
err_has "break-glass: the attach line says so" "break-glass, in audit: INC-42 github outage"
# status shows the mode the fence is in, next to the configured one
out=$(DEPFENCE_CONFIG=$DF_T/glass.json "$DF_BIN" status --json 2>&1)
check "break-glass: status --json: configured mode and the mode now" "enforce audit" \
	"$(echo "$out" | jq -r '.fences[] | select(.id == "adm-glass") | "\(.mode) \(.live_mode)"')"
check "break-glass: status names it" "1" \
	"$(DEPFENCE_CONFIG=$DF_T/glass.json "$DF_BIN" status | grep '^adm-glass' | grep -c 'enforce (now audit: break-glass)')"
# check explains it as the fence runs: audit, nothing refused
echo '{"depfence.io/break-glass": "INC-42 github outage"}' >"$DF_T/glass-ann.json"
out=$(DEPFENCE_CONFIG=$DF_T/glass.json "$DF_BIN" check --annotations "$DF_T/glass-ann.json" --explain 203.0.113.10:80 2>&1)
case $out in
*"break-glass  INC-42 github outage"*"starts in audit"*"would-block (audit)"*) ok "break-glass: check explains audit, not enforce" ;;
*) notok "break-glass: check explains audit, not enforce" "$out" ;;
esac
check "break-glass: check --json names it" "INC-42 github outage|let through, recorded as would-block (audit)" \
	"$(DEPFENCE_CONFIG=$DF_T/glass.json "$DF_BIN" check --json --annotations "$DF_T/glass-ann.json" --explain 203.0.113.10:80 2>/dev/null |
		jq -r '"\(.break_glass)|\(.explain[0].verdicts[0].effect)"')"
# a fence of the same config next to it still enforces
df_waiter "$NS" other "dfclient tcp 203.0.113.10 80"
state adm-other "$W_PID" '{}' | hook glass createRuntime
OTHER_PID=$W_PID OTHER_CG=$W_CG
df_release other
df_reap "$OTHER_PID"
check "break-glass: another container still enforces" "EPERM" "$(cat "$DF_T/other.out")"
W_CG=$OTHER_CG stop adm-other glass
W_CG=$GLASS_CG
df_release glass
wait_lines "$DF_T/glass.out" 1
check "break-glass: the admin deny is not refused" "ok" "$(sed -n 1p "$DF_T/glass.out")"
# host-wide break-glass on and off leaves this container's own in place
DEPFENCE_CONFIG=$DF_T/glass.json "$DF_BIN" break-glass on --reason "host drill" >/dev/null 2>&1 &&
	DEPFENCE_CONFIG=$DF_T/glass.json "$DF_BIN" break-glass off >/dev/null 2>&1
check "break-glass: host-wide on and off accepted" "0" "$?"
df_release glass
wait_lines "$DF_T/glass.out" 2
check "break-glass: still audit after the host's break-glass ends" "ok" "$(sed -n 2p "$DF_T/glass.out")"
df_reap "$GLASS_PID"
stop adm-glass glass
R=$DF_REPORTS/adm-glass.json
check "break-glass: report keeps the configured mode" "enforce" "$(jqr "$R" .mode)"
check "break-glass: report records it with the reason" "INC-42 github outage|container|annotation depfence.io/break-glass" \
	"$(jqr "$R" '.break_glass[] | select(.scope == "container") | "\(.reason)|\(.scope)|\(.source)"')"
check "break-glass: the period is the container's life" "true" \
	"$(jqr "$R" '. as $r | .break_glass[] | select(.scope == "container") | .from == $r.started_at and .to == $r.stopped_at')"
check "break-glass: would-block, nothing blocked" "2 0" "$(jqr "$R" '"\(.summary.would_block) \(.summary.blocked)"')"
out=$(python3 "$DF_ROOT/tests/tools/schema_check.py" "$DF_ROOT/tests/fixtures/report.schema.json" "$R" 2>&1)
check "break-glass: the report is valid against the report schema" "valid $R" "$out"
check "break-glass: a note says so" "1" "$(jqr "$R" '[.notes[] | select(test("depfence.io/break-glass"))] | length')"
df_check_clean "break-glass"

# --- depfence run: the admin config applies, flags follow the same rules ---
# run CONFIG ARGS...: depfence run in the netns; its pid (it is exec'd) in $DF_T/run.pids
run() {
	DEPFENCE_CONFIG=$DF_T/$1.json bash -c 'echo $$ >>"$0"; exec "$@"' "$DF_T/run.pids" \
		nsenter --net="/run/netns/$NS" -- "$DF_BIN" run "${@:2}" 2>"$DF_T/err"
}
out=$(run strict --report "$DF_T/r1.json" -- sh -c "$C tcp 203.0.113.10 80; $C tcp 203.0.113.20 80")
check "run: the admin deny applies with no flags" "EPERM ok" "$(echo $out)"
check "run: report names the admin's rule" "enforce admin deny" "$(jqr "$DF_T/r1.json" '"\(.mode) \(.policy.rules[0].source)"')"
out=$(run strict --deny 203.0.113.20 --report "$DF_T/r2.json" -- sh -c "$C tcp 203.0.113.10 80; $C tcp 203.0.113.20 80")
check "run: --deny tightens" "EPERM EPERM" "$(echo $out)"
: >"$DF_T/run.pids"
run strict --allow 203.0.113.10 -- true
check "run: --allow over the admin deny exits 1" "1" "$?"
err_has "run: --allow message" '--allow: allow rule "203.0.113.10" would loosen the admin deny rule "203.0.113.10"' annotations_may_loosen
run strict --mode observe -- true
check "run: --mode observe exits 1" "1" "$?"
err_has "run: --mode message" '--mode: "observe" would loosen the admin mode "enforce"'
left=
while read -r pid; do
	left+=$(find "$CG2$(sed -n 's/^0:://p' /proc/self/cgroup)" -maxdepth 1 -name "depfence-run-$pid-*" 2>/dev/null)
done <"$DF_T/run.pids"
check "run: refusals made no cgroup ($(wc -l <"$DF_T/run.pids") runs)" "" "$left"
out=$(run loosen --allow 203.0.113.10 --report "$DF_T/r3.json" -- "$C" tcp 203.0.113.10 80)
check "run: with annotations_may_loosen an allow equal to the admin deny: accepted, deny wins the tie" "EPERM 0" \
	"$out $(grep -c 'would loosen' "$DF_T/err")"
out=$(run loosen --allow tcp/203.0.113.10:80 --report "$DF_T/r3.json" -- "$C" tcp 203.0.113.10 80)
check "run: with annotations_may_loosen a more specific --allow wins" "ok" "$out"
df_check_clean "run"
