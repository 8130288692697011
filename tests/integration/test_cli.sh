#!/bin/bash
# depfence report, check, status and gc.
#
# Without privileges: golden files for every report format from the fixed
# fixtures in tests/fixtures (DF_UPDATE_GOLDEN=1 rewrites them), --fail-on exit
# codes, bad input, the report JSON Schema (tests/tools/schema_check.py), and
# depfence check with --explain.
# With root, cgroup2 and BPF: a policy learned from an observe run replayed in
# enforce with zero violations, status of a live fence, and gc of stale fences
# made with the hook on cgroups made here (clients in a netns made here).
. "$(dirname "$0")/../lib.sh"
df_setup
cd "$DF_ROOT" || exit 1
FX=tests/fixtures
SCHEMA=$FX/report.schema.json
VER=$("$DF_BIN" version | awk '{ print $2 }')

# one line for a message
oneline() { tr '\n' '|' | cut -c1-${1:-400}; }

# golden NAME CMD...: stdout of CMD must equal $FX/NAME.golden (the version normalized)
golden() {
	local name=$1 out=$DF_T/golden.out; shift
	"$@" 2>"$DF_T/golden.err" | sed "s/\"$VER\"/\"@VERSION@\"/g" >"$out"
	if [ "${DF_UPDATE_GOLDEN:-}" = 1 ]; then
		cp "$out" "$FX/$name.golden"
		ok "golden $name (rewritten)"
		return
	fi
	if [ ! -f "$FX/$name.golden" ]; then
		notok "golden $name" "no $FX/$name.golden (DF_UPDATE_GOLDEN=1 writes it)"
	elif cmp -s "$FX/$name.golden" "$out"; then
		ok "golden $name"
	else
		notok "golden $name" "expected $FX/$name.golden, got a difference: $(diff "$FX/$name.golden" "$out" | head -8 | oneline)"
	fi
}

# check_rc NAME WANT CMD...: exit status of CMD (stdout dropped, stderr kept in $DF_T/err)
check_rc() {
	local name=$1 want=$2 rc; shift 2
	"$@" >/dev/null 2>"$DF_T/err"
	rc=$?
	if [ "$rc" = "$want" ]; then ok "$name"; else notok "$name" "expected exit $want, got $rc; stderr: $(oneline <"$DF_T/err")"; fi
}

# check_err NAME PATTERN: the last check_rc's stderr contains PATTERN (fixed string)
check_err() {
	if grep -qF -- "$2" "$DF_T/err"; then ok "$1"; else notok "$1" "expected stderr with '$2', got: $(oneline <"$DF_T/err")"; fi
}

# schema_ok NAME FILE...: the files validate against the report schema
schema_ok() {
	local name=$1 out; shift
	if out=$(python3 tests/tools/schema_check.py "$SCHEMA" "$@" 2>&1); then ok "$name"
	else notok "$name" "expected valid, got: $(echo "$out" | grep -v '^valid ' | oneline)"; fi
}

# ---- golden files: every format of every fixture ----
for fx in observe enforce partial; do
	for fmt in text json junit sarif policy; do
		golden "report-$fx.$fmt" env NO_COLOR= "$DF_BIN" report --format "$fmt" "$FX/report-$fx.json"
	done
done
golden "report-observe.policy-prefixes" "$DF_BIN" report --format policy --group-prefixes "$FX/report-observe.json"

# the same, checked by meaning rather than by bytes
for fx in observe enforce partial; do
	f=$FX/report-$fx.json
	check "json of $fx: the report itself" "$(jq -S . "$f")" "$("$DF_BIN" report -f json "$f" | jq -S .)"
	nviol=$(jq '[.events[] | select(.verdict == "blocked" or .verdict == "would-block")] | length' "$f")
	"$DF_BIN" report -f junit "$f" >"$DF_T/junit.xml"
	check "junit of $fx: well-formed, a test case per event, violations fail" \
		"$(jq '.events | length' "$f") $nviol" \
		"$(python3 -c 'import sys, xml.etree.ElementTree as E
t = E.parse(sys.argv[1]).getroot()
print(len(list(t.iter("testcase"))), len(list(t.iter("failure"))))' "$DF_T/junit.xml" 2>&1)"
	"$DF_BIN" report -f sarif "$f" >"$DF_T/sarif.json"
	check "sarif of $fx: 2.1.0, a result per violation, each naming its rule by id and index" \
		"2.1.0 $nviol true" \
		"$(jq -r '.version as $v | .runs[0] | .tool.driver.rules as $r
			| "\($v) \(.results | length) \([.results[] | $r[.ruleIndex].id == .ruleId] | all)"' "$DF_T/sarif.json")"
done
check "sarif: blocked is an error, would-block a warning" "error warning" \
	"$("$DF_BIN" report -f sarif $FX/report-enforce.json | jq -r '.runs[0].results[0].level') $("$DF_BIN" report -f sarif $FX/report-partial.json | jq -r '.runs[0].results[0].level')"
check "text: control characters from the job do not reach the terminal" "0" \
	"$("$DF_BIN" report $FX/report-enforce.json | grep -c $'\e')"
check "text: the process chain" "1" "$("$DF_BIN" report $FX/report-enforce.json | grep -c 'deploy.sh → servicectl → curl (5001)')"
check "junit: markup in the label is escaped" "1" "$("$DF_BIN" report -f junit $FX/report-enforce.json | grep -c 'deploy &lt;api&gt; &amp; &quot;v2&quot; &apos;prod&apos;')"

# colors: only on a terminal, and not with NO_COLOR (util-linux script gives a pty)
if command -v script >/dev/null; then
	esc() { grep -c $'\e\[' "$1"; }
	script -qec "env -u NO_COLOR $DF_BIN report $FX/report-enforce.json" /dev/null >"$DF_T/tty.out" </dev/null
	check "text on a terminal: colors" "1" "$([ "$(esc "$DF_T/tty.out")" -gt 0 ] && echo 1 || echo 0)"
	script -qec "env NO_COLOR=1 $DF_BIN report $FX/report-enforce.json" /dev/null >"$DF_T/tty.out" </dev/null
	check "text on a terminal with NO_COLOR: no colors" "0" "$(esc "$DF_T/tty.out")"
	check "text --color always off a terminal: colors" "3" \
		"$("$DF_BIN" report --color always $FX/report-enforce.json | grep -c $'\e\[1;31mblocked')"
else
	skip "colors on a terminal" "no script(1)"
fi

# ---- reading: ids, stdin, bad input ----
mkdir -p "$DF_REPORTS"
cp $FX/report-observe.json "$DF_REPORTS/ci-1234-deploy.json"
check "an id is read from the report dir" "$("$DF_BIN" report $FX/report-observe.json)" "$("$DF_BIN" report ci-1234-deploy)"
check "- reads stdin" "$("$DF_BIN" report $FX/report-observe.json)" "$("$DF_BIN" report - <$FX/report-observe.json)"
check_rc "an unknown id: error" 1 "$DF_BIN" report no-such-report
check_err "an unknown id: the message names the file looked for" "$DF_REPORTS/no-such-report.json"
check_rc "not a file and not an id: error" 1 "$DF_BIN" report 'bad id!'
check_err "not a file and not an id: the message names it" '"bad id!"'
check_rc "a missing path: error" 1 "$DF_BIN" report "$DF_T/nope/r.json"
check_err "a missing path: the message names it" "$DF_T/nope/r.json"
echo '{"a": 1}' >"$DF_T/x.json"
check_rc "not a report: error" 1 "$DF_BIN" report "$DF_T/x.json"
check_err "not a report: the message says so" 'key "schema" is missing'
jq '.schema = "depfence.report/v9"' $FX/report-observe.json >"$DF_T/x.json"
check_rc "another schema: error" 1 "$DF_BIN" report "$DF_T/x.json"
check_err "another schema: the message names it" '"depfence.report/v9" is not depfence.report/v1'
jq '.events[1].count = "2"' $FX/report-observe.json >"$DF_T/x.json"
check_rc "a mistyped key: error" 1 "$DF_BIN" report "$DF_T/x.json"
check_err "a mistyped key: the message names the event and the key" 'events[1]: key "count": expected an integer'
jq '.events[0].process.ancestry = [3]' $FX/report-observe.json >"$DF_T/x.json"
check_rc "a mistyped ancestry: error" 1 "$DF_BIN" report "$DF_T/x.json"
check_err "a mistyped ancestry: the message names it" 'ancestry[0]'
printf '{"schema": "depfence.report/v1", "events": [' >"$DF_T/x.json"
check_rc "truncated JSON: error" 1 "$DF_BIN" report "$DF_T/x.json"
check_err "truncated JSON: the message says so" "not valid JSON"
truncate -s 65M "$DF_T/big.json"
check_rc "a report over the size cap: error" 1 "$DF_BIN" report "$DF_T/big.json"
check_err "a report over the size cap: the message says so" "larger than"
rm -f "$DF_T/big.json"

# ---- usage and --fail-on ----
check_rc "report --help: exit 0" 0 "$DF_BIN" report --help
for c in status check gc; do check_rc "$c --help: exit 0" 0 "$DF_BIN" "$c" --help; done
check_rc "report without a file: usage" 2 "$DF_BIN" report
check_rc "report --format xml: usage" 2 "$DF_BIN" report --format xml $FX/report-observe.json
check_err "report --format xml: the message names it" '"xml"'
check_rc "report --fail-on sometimes: usage" 2 "$DF_BIN" report --fail-on sometimes $FX/report-observe.json
check_err "report --fail-on sometimes: the message names it" '"sometimes"'
check_rc "report --group-prefixes without --format policy: usage" 2 "$DF_BIN" report --group-prefixes $FX/report-observe.json

# fixture | --fail-on | format | exit
FAILON='
observe|would-block|text|0
observe|blocked|text|0
observe|any|text|0
enforce|would-block|text|0
enforce|blocked|text|3
enforce|any|junit|3
partial|would-block|sarif|3
partial|blocked|text|0
partial|any|json|3
'
while IFS='|' read -r fx on fmt want; do
	[ -z "$fx" ] && continue
	check_rc "--fail-on $on, $fx report ($fmt): exit $want" "$want" "$DF_BIN" report -f "$fmt" --fail-on "$on" "$FX/report-$fx.json"
done <<<"$FAILON"
"$DF_BIN" report -f sarif --fail-on blocked $FX/report-enforce.json >"$DF_T/sarif.json"
check "--fail-on still prints the report" "3 3" "$? $(jq '.runs[0].results | length' "$DF_T/sarif.json")"

# ---- the report schema ----
schema_ok "schema: the observe and enforce fixtures validate" $FX/report-observe.json $FX/report-enforce.json
out=$(python3 tests/tools/schema_check.py "$SCHEMA" $FX/report-partial.json)
check "schema: the partial fixture (no summary, events without times and process) does not" \
	"/: required key 'summary' is missing|/events/0: required key 'process' is missing" \
	"$(echo "$out" | grep -oE "/(events/0)?: required key '(summary|process)' is missing" | oneline | sed 's/|$//')"
# mutation | what the validator must say
MUTATIONS='
.events[0].verdict = "maybe"|/events/0/verdict: "maybe" is not one of
.events[0].dport = 70000|/events/0/dport: 70000 is above 65535
.started_at = "yesterday"|/started_at: matches none of anyOf
.summary.blocked = -1|/summary/blocked: -1 is below 0
.events[2].process.pid = "4242"|/events/2/process/pid: expected integer
del(.events)|/: required key '"'"'events'"'"' is missing
.mode = "strict"|/mode: "strict" is not one of
.events[0].process.ancestry = [{"pid": 1}]|/events/0/process/ancestry/0: matches none of anyOf
'
while IFS='|' read -r mut want; do
	[ -z "$mut" ] && continue
	jq "$mut" $FX/report-observe.json >"$DF_T/m.json"
	out=$(python3 tests/tools/schema_check.py "$SCHEMA" "$DF_T/m.json")
	case $out in *"$want"*) ok "schema refuses: $mut" ;; *) notok "schema refuses: $mut" "expected '$want', got: $(echo "$out" | oneline)" ;; esac
done <<<"$MUTATIONS"
echo '{"oneOf": []}' >"$DF_T/s.json"
out=$(python3 tests/tools/schema_check.py "$DF_T/s.json" $FX/report-observe.json 2>&1)
check "schema checker: a keyword it does not check is refused, not ignored" "1" "$(echo "$out" | grep -c "keyword 'oneOf' is not supported")"

# ---- depfence check ----
P=(--mode enforce --default deny --deny '140.82.112.0/20 github.com' --allow '140.82.112.3:443 **.github.com:443 udp/10.0.0.2:53')
"$DF_BIN" check "${P[@]}" >"$DF_T/check.out" 2>"$DF_T/err"
check "check: a valid policy exits 0" "0" "$?"
check "check: rules in the order precedence tries them" \
	"allow udp/10.0.0.2:53|allow 140.82.112.3:443|deny 140.82.112.0/20|deny github.com|allow **.github.com:443" \
	"$(awk '$1 == "allow" || $1 == "deny" { print $1, $2 }' "$DF_T/check.out" | oneline | sed 's/|$//')"
check "check: where each rule came from" "--allow" "$(awk '$2 == "140.82.112.3:443" { print $3 }' "$DF_T/check.out")"
# destination | verdicts as "what|verdict|rule", joined by ";"
EXPLAIN='
tcp/140.82.112.3:443|tcp to 140.82.112.3:443|allow|140.82.112.3:443
140.82.112.4:443|tcp to 140.82.112.4:443|deny|140.82.112.0/20;udp to 140.82.112.4:443|deny|140.82.112.0/20
udp/10.0.0.2:53|udp to 10.0.0.2:53|allow|udp/10.0.0.2:53
tcp/10.0.0.2:53|tcp to 10.0.0.2:53|deny|default
tcp/[::ffff:140.82.112.3]:443|tcp to 140.82.112.3:443|allow|140.82.112.3:443
tcp/github.com:443|DNS question for github.com|deny|github.com;tcp to addresses of github.com, port 443|deny|github.com
tcp/api.github.com:443|DNS question for api.github.com|allow|**.github.com:443;tcp to addresses of api.github.com, port 443|allow|**.github.com:443
tcp/api.github.com:80|DNS question for api.github.com|allow|**.github.com:443;tcp to addresses of api.github.com, port 80|deny|default
example.org|DNS question for example.org|deny|default
'
while IFS='|' read -r dest want; do
	[ -z "$dest" ] && continue
	got=$("$DF_BIN" check "${P[@]}" --json --explain "$dest" | jq -r '[.explain[0].verdicts[] | "\(.what)|\(.verdict)|\(.rule)"] | join(";")')
	check "check --explain $dest" "$want" "$got"
done <<<"$EXPLAIN"
"$DF_BIN" check "${P[@]}" --explain tcp/140.82.112.3:443 >"$DF_T/check.out" 2>&1
check "check --explain: why (text)" "1" "$(grep -c 'the longest prefix decides (/32 over /20 of 140.82.112.0/20)' "$DF_T/check.out")"
check_rc "check: a bad rule is invalid (exit 1)" 1 "$DF_BIN" check --deny 'git*hub.com'
check_err "check: the message names the flag and the rule" '--deny: rule "git*hub.com"'
check_rc "check: a bad mode is invalid (exit 1)" 1 "$DF_BIN" check --mode enforcing
check_err "check: the message names the mode" '--mode "enforcing"'
check_rc "check --explain without a port: usage" 2 "$DF_BIN" check --explain 140.82.112.3
check_err "check --explain without a port: the message names it" '"140.82.112.3"'
check_rc "check --explain of an unbracketed IPv6: usage" 2 "$DF_BIN" check --explain 2001:db8::1:443
cat >"$DF_T/pod.json" <<'EOF'
{ "metadata": { "name": "deploy", "annotations": {
    "depfence.io/mode": "enforce", "depfence.io/default": "deny",
    "depfence.io/allow": "udp/10.0.0.2:53, **.pkg.example.com", "depfence.io/deny": "github.com",
    "depfence.io/label": "pod deploy", "other.io/x": "ignored" } } }
EOF
check "check --annotations (a pod manifest): rules with their annotation" \
	"deny github.com annotation depfence.io/deny|allow **.pkg.example.com annotation depfence.io/allow" \
	"$("$DF_BIN" check --annotations "$DF_T/pod.json" --json | jq -r '.rules[] | select(.kind == "name") | "\(.verdict) \(.rule) \(.source)"' | oneline | sed 's/|$//')"
check "check --annotations: mode and default" "enforce deny" "$("$DF_BIN" check --annotations "$DF_T/pod.json" --json | jq -r '"\(.mode) \(.default)"')"
jq '.metadata.annotations["depfence.io/allow"] = "udp/10.0.0.2:53 10.0.0.1/8"' "$DF_T/pod.json" >"$DF_T/bad.json"
check_rc "check --annotations: a bad rule is invalid (exit 1)" 1 "$DF_BIN" check --annotations "$DF_T/bad.json"
check_err "check --annotations: the message names the key and the rule" 'annotation depfence.io/allow: rule "10.0.0.1/8"'
jq '.metadata.annotations["depfence.io/mood"] = "x"' "$DF_T/pod.json" >"$DF_T/bad.json"
check_rc "check --annotations: an unknown key is invalid (exit 1)" 1 "$DF_BIN" check --annotations "$DF_T/bad.json"
check_err "check --annotations: the message names the key" "depfence.io/mood"
# a container's own keys (NAME.depfence.io/KEY): read for the container --container names
jq '.metadata.annotations["deploy.depfence.io/mode"] = "observe" | .metadata.annotations["deploy.depfence.io/deny"] = "203.0.113.9"' \
	"$DF_T/pod.json" >"$DF_T/scoped.json"
check_rc "check --annotations: a container's key without --container: invalid (exit 1)" 1 "$DF_BIN" check --annotations "$DF_T/scoped.json"
check_err "check --annotations: the message names the key and the option" 'annotation "deploy.depfence.io/mode" applies to container "deploy" only: name the container to check with --container'
check "check --container deploy: its keys apply, over the pod's" "observe 203.0.113.9" \
	"$("$DF_BIN" check --annotations "$DF_T/scoped.json" --container deploy --json | jq -r '"\(.mode) \([.rules[] | select(.source | test("deploy.depfence.io")) | .rule] | join(","))"')"
check "check --container other: the pod's keys alone" "enforce 0" \
	"$("$DF_BIN" check --annotations "$DF_T/scoped.json" --container other --json | jq -r '"\(.mode) \([.rules[] | select(.source | test("deploy.depfence.io"))] | length)"')"
jq '.metadata.annotations["deploy.depfence.io/bogus"] = "x"' "$DF_T/scoped.json" >"$DF_T/bad.json"
check_rc "check --container: that container's unknown key is invalid (exit 1)" 1 "$DF_BIN" check --annotations "$DF_T/bad.json" --container deploy
check_err "check --container: the message names it" "deploy.depfence.io/bogus"

# ---- with real fences ----
df_require_privileges "integration/cli (live fences)"

NS=$(df_netns cli) || { notok "create netns" "ip netns add failed"; exit 1; }
df_dns "$NS" || { notok "dnsmasq" "did not answer"; exit 1; }
df_servers "$NS" 80 443 || { notok "test servers" "did not come up"; exit 1; }
Q=$DF_TOOLS/dfdns
C=$DF_TOOLS/dfclient

# --- a policy learned from an observe run, replayed in enforce ---
JOB="$Q 203.0.113.53 53 a.pkg.example.com; $C tcp 203.0.113.20 80; $C tcp 203.0.113.10 80; $C tcp 2001:db8::10 443; $Q -m connect 203.0.113.53 53 mirror.internal; $C tcp 198.51.100.10 443"
JOB_OUT="ok 203.0.113.20|ok|ok|ok|ok 198.51.100.10|ok"
OBS=$DF_T/observe.json
out=$(in_ns "$NS" "$DF_BIN" run --mode observe --report "$OBS" -- sh -c "$JOB" 2>"$DF_T/err" | oneline | sed 's/|$//')
check "observe run: the job works" "$JOB_OUT" "$out"
schema_ok "observe run: the report validates against the schema" "$OBS"
"$DF_BIN" report -f policy "$OBS" >"$DF_T/policy.txt" 2>"$DF_T/err"
check "policy from the observe run: exit 0" "0" "$?"
ALLOW=$(sed -n "s/^depfence run --mode enforce --default deny --allow '\([^']*\)' -- .*/\1/p" "$DF_T/policy.txt")
ANN_ALLOW=$(sed -n 's/^depfence.io\/allow: "\(.*\)"$/\1/p' "$DF_T/policy.txt")
check "policy: the same rules as annotations and as flags" "$ALLOW" "$ANN_ALLOW"
for want in tcp/a.pkg.example.com:80 tcp/mirror.internal:443 tcp/203.0.113.10:80 'tcp/[2001:db8::10]:443' udp/203.0.113.53:53; do
	case " $ALLOW " in *" $want "*) ok "policy allows $want" ;; *) notok "policy allows $want" "expected it in '$ALLOW'" ;; esac
done
case " $ALLOW " in *203.0.113.20*) notok "policy: a name, not its address" "expected no 203.0.113.20 in '$ALLOW'" ;;
*) ok "policy: a name, not its address" ;; esac
check_rc "policy: depfence check accepts it" 0 "$DF_BIN" check --mode enforce --default deny --allow "$ALLOW"
sed -n 's/^\(depfence\.io\/[a-z]*\): \(.*\)$/\1\t\2/p' "$DF_T/policy.txt" |
	jq -R 'split("\t") | {(.[0]): (.[1] | ltrimstr("\"") | rtrimstr("\""))}' | jq -s add >"$DF_T/ann.json"
check "policy: the annotations say the same as the flags" \
	"$("$DF_BIN" check --mode enforce --default deny --allow "$ALLOW" --json | jq -c '[.mode, .default, [.rules[] | .rule]]')" \
	"$("$DF_BIN" check --annotations "$DF_T/ann.json" --json | jq -c '[.mode, .default, [.rules[] | .rule]]')"

ENF=$DF_T/enforce.json
out=$(in_ns "$NS" "$DF_BIN" run --mode enforce --default deny --allow "$ALLOW" --report "$ENF" -- sh -c "$JOB" 2>"$DF_T/err" | oneline | sed 's/|$//')
check "replayed in enforce with the learned policy: the job works the same" "$JOB_OUT" "$out"
check "replayed in enforce: zero violations" "0 0 0" "$(jqr "$ENF" '.summary | "\(.blocked) \(.dns_blocked) \(.would_block)"')"
check "replayed in enforce: it was enforcing" "enforce deny" "$(jqr "$ENF" '"\(.mode) \(.default)"')"
check_rc "replayed in enforce: report --fail-on any exits 0" 0 "$DF_BIN" report --fail-on any "$ENF"
ENF2=$DF_T/enforce2.json
out=$(in_ns "$NS" "$DF_BIN" run --mode enforce --default deny --allow "$ALLOW" --report "$ENF2" -- \
	sh -c "$C tcp 203.0.113.10 443; $Q 203.0.113.53 53 github.com" 2>"$DF_T/err" | oneline | sed 's/|$//')
check "the learned policy refuses what was not seen" "EPERM|EPERM" "$out"
check_rc "and report --fail-on blocked exits 3" 3 "$DF_BIN" report --fail-on blocked "$ENF2"
schema_ok "enforce runs: the reports validate against the schema" "$ENF" "$ENF2"

# --- status of a live fence ---
LIVE=$DF_T/live.json
in_ns "$NS" "$DF_BIN" run --mode audit --deny 203.0.113.10 --label "live job $$" --report "$LIVE" -- \
	sh -c "$C tcp 203.0.113.10 80; $C tcp 203.0.113.20 80; sleep 3" >/dev/null 2>&1 &
LIVE_PID=$!
df_track_pid $LIVE_PID
got=""
for i in $(seq 50); do
	got=$("$DF_BIN" status --json 2>/dev/null | jq -c --arg l "live job $$" \
		'.fences[] | select(.label == $l and .counters.connections >= 2)
		 | [.kind, .mode, .cgroup_exists, .counters.connections, .counters.would_block, .counters.allowed, .records, (.age_seconds >= 0)]')
	[ -n "$got" ] && break
	sleep 0.1
done
check "status --json: the live fence with its counters so far" '["run","audit",true,2,1,1,1,true]' "$got"
LIVE_ID=$("$DF_BIN" status --json | jq -r --arg l "live job $$" '.fences[] | select(.label == $l) | .id')
"$DF_BIN" status >"$DF_T/status.out" 2>&1
check "status: a table row for it" "1" "$(grep -c "^$LIVE_ID  *run  *audit .*live job $$" "$DF_T/status.out")"
for i in $(seq 100); do kill -0 $LIVE_PID 2>/dev/null || break; sleep 0.1; done
wait $LIVE_PID
check "status changed nothing: the report has every connection" "2 1" "$(jqr "$LIVE" '"\(.summary.connections) \(.summary.would_block)"')"
check "status after the job: the fence is gone" "" "$("$DF_BIN" status --json | jq -r --arg i "$LIVE_ID" '.fences[] | select(.id == $i) | .id')"
schema_ok "status run: the report validates against the schema" "$LIVE"

# --- gc ---
CG2=$(df_cg2root)
[ -d "$CG2" ] || { notok "cgroup2 mount" "not found in /proc/self/mountinfo"; exit 1; }

# fence NAME ID SCRIPT: a process in the netns and in a cgroup of its own, fenced by
# the hook (enforce, deny 203.0.113.10:443), then running SCRIPT. Sets W_PID, W_CG.
fence() {
	local name=$1 id=$2 script=$3
	df_waiter "$NS" "$name" "$script" || return 1
	jq -nc --arg id "$id" --argjson pid "$W_PID" '{ociVersion: "1.0.2", id: $id, status: "creating",
		bundle: "/nonexistent", pid: $pid, annotations: {"depfence.io/mode": "enforce",
		"depfence.io/deny": "203.0.113.10:443", "depfence.io/label": "gc test"}}' |
		"$DF_BIN" hook createRuntime 2>"$DF_T/err" || return 1
	df_release "$name"
}
rm_cgroup() { local i; for i in $(seq 50); do rmdir "$1" 2>/dev/null && return 0; [ -d "$1" ] || return 0; sleep 0.1; done; return 1; }
# pinned ID: what is left of a fence: both (pins and state), pins, state, none
pinned() {
	local p=0 s=0
	[ -d "$DF_PINS/$1" ] && p=1
	[ -f "$DF_STATE/$1.json" ] && s=1
	case $p$s in 11) echo both ;; 10) echo pins ;; 01) echo state ;; *) echo none ;; esac
}

ID=gc-stale-$$
fence stale "$ID" "dfclient tcp 203.0.113.10 443; dfclient tcp 203.0.113.20 80" || { notok "gc: set up a fence" "$(oneline <"$DF_T/err")"; exit 1; }
df_reap "$W_PID"
check "gc fence: the client was fenced" "EPERM|ok|" "$(oneline <"$DF_T/stale.out")"
out=$("$DF_BIN" gc 2>&1)
check "gc while the cgroup exists: nothing to do, nothing said" "0 " "$? $out"
check "gc while the cgroup exists: the fence stays" "both" "$(pinned "$ID")"
rm_cgroup "$W_CG" || notok "gc: remove the cgroup" "rmdir $W_CG failed"
check "status: the cgroup is gone" "false" "$("$DF_BIN" status --json | jq -r --arg i "$ID" '.fences[] | select(.id == $i) | .cgroup_exists')"
out=$("$DF_BIN" gc --dry-run 2>&1)
check "gc --dry-run: says what it would do" "would report $ID: cgroup $W_CG is gone; report $DF_REPORTS/$ID.json" "$out"
check "gc --dry-run: changes nothing" "both" "$(pinned "$ID")"
# a report that cannot be written keeps the records
: >"$DF_T/notadir"
jq --arg r "$DF_T/notadir/reports" '.report_dir = $r' "$DEPFENCE_CONFIG" >"$DF_T/badreport.json"
DEPFENCE_CONFIG=$DF_T/badreport.json "$DF_BIN" gc >/dev/null 2>"$DF_T/err"
check "gc with an unwritable report dir: exit 1" "1" "$?"
check "gc with an unwritable report dir: the records stay" "both" "$(pinned "$ID")"
check_err "gc with an unwritable report dir: it says so" "the records stay pinned"
out=$("$DF_BIN" gc 2>"$DF_T/err")
check "gc: exit 0 and one line for the fence" "0 reported $ID: cgroup $W_CG is gone; report $DF_REPORTS/$ID.json" "$? $out"
check "gc: no pins or state left" "none" "$(pinned "$ID")"
check "gc: the report has the refused call" "enforce|gc test|blocked connect4 203.0.113.10 443 203.0.113.10:443 1" \
	"$(jqr "$DF_REPORTS/$ID.json" '"\(.mode)|\(.label)|" + (.events[] | select(.verdict == "blocked") | "\(.verdict) \(.hook) \(.daddr) \(.dport) \(.rule) \(.count)")')"
schema_ok "gc: the report validates against the schema" "$DF_REPORTS/$ID.json"
out=$("$DF_BIN" gc 2>&1)
check "gc again: nothing to do" "0 " "$? $out"

# a depfence run killed (SIGKILL) while its job, in a cgroup it made below its
# own, runs on: gc leaves it while the job runs, then removes the cgroups and reports
CG2=$(df_cg2root)
rm -f "$DF_T/killed.cg"
"$DF_BIN" run --no-confine --report "$DF_T/killed.json" -- sh -c \
	"c=$CG2\$(sed -n 's/^0:://p' /proc/self/cgroup); mkdir \$c/sub && echo \$\$ >\$c/sub/cgroup.procs && echo \$c >'$DF_T/killed.cg' && exec sleep 60" 2>/dev/null &
rpid=$!
for i in $(seq 100); do [ -s "$DF_T/killed.cg" ] && break; sleep 0.05; done
KCG=$(cat "$DF_T/killed.cg")
kill -9 "$rpid"
wait "$rpid" 2>/dev/null
jpid=$(cat "$KCG/sub/cgroup.procs")
df_track_pid "$jpid"
out=$("$DF_BIN" gc 2>&1)
check "gc, run killed, its job running below its cgroup: left as it is" "0 yes" "$? $([ -d "$KCG/sub" ] && ls "$DF_STATE" | grep -q "^run-$rpid-" && echo yes)"
kill -9 "$jpid"
for i in $(seq 100); do grep -q 'populated 0' "$KCG/cgroup.events" && break; sleep 0.05; done
out=$("$DF_BIN" gc 2>&1)
case $out in
*"depfence run (pid $rpid) is gone; removed its empty cgroup $KCG and wrote the report to $DF_REPORTS/run-$rpid-"*) ok "gc, the job ended: cgroups removed, report written" ;;
*) notok "gc, the job ended: cgroups removed, report written" "$out" ;;
esac
check "gc, the job ended: no cgroup left" "no" "$([ -d "$KCG" ] && echo yes || echo no)"

# gc and a createRuntime of the same id take turns on the id's lock: gc
# judges a fence stale only under it. Here the state file names a cgroup that
# is gone (a stale fence) while the test holds the lock, and is put back as a
# live fence's before the lock is let go, as a createRuntime holding the lock
# (finishing the stale fence, attaching a new one) would: gc must see the new
# fence and leave it
# gc_locked ID STATE OUT: gc --grace 0 while the id's lock is held (2.5 s),
# STATE put back as the id's state file meanwhile, as a hook holding the lock
# would write it; gc's output in OUT, GC_RC its exit status
gc_locked() {
	df_hold_lock "$1" 2.5 || notok "gc under a held lock: hold $1's lock" "not held after 5 s"
	"$DF_BIN" gc --grace 0 >"$3" 2>&1 &
	gc_pid=$!
	df_track_pid "$gc_pid"
	sleep 0.4
	cp "$2" "$DF_STATE/.locked.tmp" && mv "$DF_STATE/.locked.tmp" "$DF_STATE/$1.json"
	timeout 30 tail --pid="$gc_pid" -f /dev/null
	wait "$gc_pid"
	GC_RC=$?
}
ID=gc-race-$$
fence race "$ID" "exec sleep 300" || { notok "gc race: set up a fence" "$(oneline <"$DF_T/err")"; exit 1; }
RACE_CG=$W_CG RACE_PID=$W_PID
cp "$DF_STATE/$ID.json" "$DF_T/race.state"
jq -c --arg c "$RACE_CG-gone" '.cgroup = $c' "$DF_T/race.state" >"$DF_STATE/.race.tmp" &&
	mv "$DF_STATE/.race.tmp" "$DF_STATE/$ID.json"
gc_locked "$ID" "$DF_T/race.state" "$DF_T/race.out"
check "gc race: gc waits for the lock, then finds the live fence: exit 0, nothing done" "0 " "$GC_RC $(oneline <"$DF_T/race.out")"
check "gc race: the live fence's programs stay attached" "6" \
	"$(bpftool cgroup show "$RACE_CG" 2>/dev/null | grep -cE 'connect4|connect6|sendmsg4|sendmsg6|egress|ingress')"
check "gc race: its pins and state stay, no report" "both no report" \
	"$(pinned "$ID") $([ -e "$DF_REPORTS/$ID.json" ] && echo report || echo no report)"
wait "$LOCK_PID" 2>/dev/null
# a lock held past gc's bound: the fence is skipped, said so, and left
df_hold_lock "$ID" 5 || notok "gc race: hold the id's lock" "not held after 5 s"
out=$("$DF_BIN" gc --grace 0 2>&1)
check "gc, lock held longer than 3 s: exit 0, says it skipped the fence" \
	"0 skipped $ID: another depfence (a hook of this id, attaching or reporting) held its lock $DF_STATE/.fences.lock for 3000 ms; left for the next gc" "$? $out"
check "gc, lock held longer than 3 s: the fence stays" "both" "$(pinned "$ID")"
kill "$LOCK_PID" 2>/dev/null; wait "$LOCK_PID" 2>/dev/null
kill "$RACE_PID"; df_reap "$RACE_PID"
rm_cgroup "$RACE_CG" || notok "gc race: remove the cgroup" "rmdir $RACE_CG failed"
echo "{\"id\": \"$ID\"}" | "$DF_BIN" hook poststop 2>"$DF_T/err"
check "gc race: the fence's own poststop then finishes it" "0 none" "$? $(pinned "$ID")"

# pins without a state file
ID=gc-orphan-$$
fence orphan "$ID" "dfclient tcp 203.0.113.10 443; exec sleep 300" || { notok "gc: set up a second fence" "$(oneline <"$DF_T/err")"; exit 1; }
for i in $(seq 50); do [ -s "$DF_T/orphan.out" ] && break; sleep 0.1; done
mv "$DF_STATE/$ID.json" "$DF_T/orphan.state"
check "status: pins without a state file are listed" "$ID" "$("$DF_BIN" status --json | jq -r '.orphans[].id')"
out=$("$DF_BIN" gc 2>&1)
case $out in "skipped $ID: "*"younger than 60s"*) ok "gc: young pins without state are left alone" ;;
*) notok "gc: young pins without state are left alone" "expected 'skipped $ID: ... younger than 60s', got '$out'" ;; esac
out=$("$DF_BIN" gc --grace 0 2>&1)
case $out in "kept $ID: "*"still attached to cgroup id"*) ok "gc: pins still attached to a cgroup are kept" ;;
*) notok "gc: pins still attached to a cgroup are kept" "expected 'kept $ID: ... still attached', got '$out'" ;; esac
check "gc: the attached pins stay" "pins" "$(pinned "$ID")"
kill "$W_PID"; df_reap "$W_PID"
rm_cgroup "$W_CG" || notok "gc: remove the second cgroup" "rmdir $W_CG failed"
# the kernel detaches a removed cgroup's links when it frees the cgroup, a
# moment after rmdir: wait for that, bounded
for i in $(seq 50); do
	out=$("$DF_BIN" gc --grace 0 --dry-run 2>&1)
	case $out in *"still attached"*) sleep 0.1 ;; *) break ;; esac
done
check "gc --dry-run on orphan pins: says what it would do" "would recover $ID: pins $DF_PINS/$ID without a state file, 1 record; report $DF_REPORTS/$ID.json" "$out"
# a hook of the id writes its state file (under the id's lock) while gc is
# at the pins: gc judges them under that lock, and leaves them
gc_locked "$ID" "$DF_T/orphan.state" "$DF_T/orace.out"
check "gc orphan race: pins that have a state file by the time gc holds the lock are left" \
	"0 skipped $ID: pins $DF_PINS/$ID have a state file now (a hook of this id started meanwhile) both" \
	"$GC_RC $(oneline <"$DF_T/orace.out" | sed 's/|$//') $(pinned "$ID")"
wait "$LOCK_PID" 2>/dev/null
rm -f "$DF_STATE/$ID.json"
out=$("$DF_BIN" gc --grace 0 2>"$DF_T/err")
check "gc on orphan pins: exit 0 and one line" "0 recovered $ID: pins $DF_PINS/$ID without a state file, 1 record; report $DF_REPORTS/$ID.json" "$? $out"
check "gc on orphan pins: nothing left" "none" "$(pinned "$ID")"
check "gc on orphan pins: the report keeps mode, default and the refused call" "enforce allow blocked 203.0.113.10 443 unknown" \
	"$(jqr "$DF_REPORTS/$ID.json" '"\(.mode) \(.default) " + (.events[0] | "\(.verdict) \(.daddr) \(.dport) \(.rule)")')"
check "gc on orphan pins: the report says what was lost" "1" "$(jqr "$DF_REPORTS/$ID.json" '[.notes[] | select(startswith("recovered by depfence gc"))] | length')"
schema_ok "gc on orphan pins: the report validates against the schema" "$DF_REPORTS/$ID.json"
# a state file that does not parse (a power cut, a hand edit) would stop
# poststop and gc on its id for good: once older than the grace time, gc
# moves it aside and the id is free again
ID=gc-unreadable-$$
printf '{"schema": "depfence.state/v1", "id": ' >"$DF_STATE/$ID.json"
echo "{\"id\": \"$ID\"}" | "$DF_BIN" hook poststop 2>/dev/null
check "unreadable state: poststop fails on it" "1" "$?"
out=$("$DF_BIN" gc 2>&1)
case $out in "skipped $ID: its state file $DF_STATE/$ID.json cannot be read (state file: not valid JSON"*"moved aside once older than 60s") ok "unreadable state: gc leaves a young one, and says why" ;;
*) notok "unreadable state: gc leaves a young one, and says why" "got '$out'" ;; esac
touch -d '-2 min' "$DF_STATE/$ID.json"
out=$("$DF_BIN" gc --dry-run 2>&1)
check "unreadable state: gc --dry-run says what it would do, changes nothing" "would free 1" \
	"$(echo "$out" | grep -o "^would free $ID" | sed "s/ $ID//") $(ls "$DF_STATE/$ID.json" | wc -l)"
out=$("$DF_BIN" gc 2>&1)
check "unreadable state: gc moves an old one aside, exit 0" "0 freed $ID: its state file cannot be read" "$? ${out%% (*}"
check "unreadable state: ... kept beside, the id free" "$ID.json.unreadable" "$(cd "$DF_STATE" && ls -d "$ID".json* 2>/dev/null)"
echo "{\"id\": \"$ID\"}" | "$DF_BIN" hook poststop 2>/dev/null
check "unreadable state: poststop of the id then finds no fence" "0" "$?"
rm -f "$DF_STATE/$ID.json.unreadable"
# what gc and poststop leave: no fence pins and no state files (host-wide pins, "@..."
# directories that are not fence ids, are not a fence's)
check "cli: no fence pins or state left" "" \
	"$(find "$DF_PINS" -mindepth 1 -maxdepth 1 ! -name '@*' 2>/dev/null; find "$DF_STATE" -name '*.json' 2>/dev/null)"

# bpffs_root at the root of a bpffs mount that other tools pin under too (as
# "/sys/fs/bpf" would be): a directory without depfence's config map is not a
# fence, and gc and status leave it alone. A bpffs of its own, mounted in a
# private mount namespace that ends with the command: nothing to clean up
mkdir -p "$DF_T/bpfroot"
jq --arg b "$DF_T/bpfroot" '.bpffs_root = $b' "$DEPFENCE_CONFIG" >"$DF_T/sharedroot.json"
out=$(DEPFENCE_CONFIG=$DF_T/sharedroot.json unshare --mount --propagation private sh -c '
	mount -t bpf none "$1" || { echo "mount failed"; exit; }
	mkdir "$1/foreign" &&
		bpftool map create "$1/foreign/m" type array key 4 value 4 entries 1 name foreign ||
		{ echo "map create failed"; exit; }
	echo "status: $("$2" status --json | jq -c .orphans)"
	echo "gc: $("$2" gc --grace 0 2>&1; echo "rc $?")"
	echo "left: $(ls "$1/foreign")"' _ "$DF_T/bpfroot" "$DF_BIN" 2>&1)
check "gc, bpffs_root shared with other tools: another tool's directory is skipped, said so" \
	"gc: skipped foreign: $DF_T/bpfroot/foreign is not a depfence fence (no depfence config map pinned in it); left as it is|rc 0" \
	"$(echo "$out" | sed -n '/^gc: /,/^rc /p' | tr '\n' '|' | sed 's/|$//')"
check "status, bpffs_root shared with other tools: not listed as an orphan" "status: []" "$(echo "$out" | grep '^status: ')"
check "gc, bpffs_root shared with other tools: the other tool's pin survives" "left: m" "$(echo "$out" | grep '^left: ')"
