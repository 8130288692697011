#!/bin/bash
# The demo (`make demo`) cannot rot: run examples/deploy/demo.sh --quiet with a
# private config (reports and state in a temp dir, pins under
# /sys/fs/bpf/depfence-demo-PID) and check each step's outcome, the final line,
# the route that ran the deploy job, and that nothing is left. Twice: the
# container route (runc, what runs wherever runc is installed) and the
# `depfence run` fallback (DEMO_RUNTIME=run).
. "$(dirname "$0")/../lib.sh"
df_require_privileges "examples/demo"
command -v runc >/dev/null || { notok "demo" "runc is not installed (tests/deps.sh installs it)"; exit 1; }
df_setup
# the demo's own names for what it leaves: pins under depfence-demo-*
DF_PINS=/sys/fs/bpf/depfence-demo-$$
cat >"$DF_T/config.json" <<EOC
{ "report_dir": "$DF_REPORTS", "state_dir": "$DF_STATE", "bpffs_root": "$DF_PINS", "attribution_linger": 0 }
EOC
export DF_BIN DEPFENCE_CONFIG

if [ ! -x "$DF_BIN" ]; then
	notok "demo" "no depfence binary at $DF_BIN"
	exit 1
fi

# cgroup_left NAME-PREFIX: directories named NAME-PREFIX* at the top of any cgroup hierarchy
cgroup_left() {
	local mp
	for mp in $(awk '{ split($0, f, " - "); split(f[2], t, " ") } t[1] ~ /^cgroup2?$/ { print $5 }' /proc/self/mountinfo); do
		find "$mp" -maxdepth 1 -name "$1*" 2>/dev/null
	done
}

# demo ROUTE: run the demo with DEMO_RUNTIME=ROUTE (runc, or "" for its own
# choice, run) and check its outcome; sets DEMO (its pid) and REPS (its reports)
demo() {
	local route=$1 name=$2 rc start secs out line last extra s r
	REPS=$DF_T/$name-reports
	# its temp dir (rootfs, runc state, bundles) under a TMPDIR of its own, to check it is gone
	mkdir -p "$DF_T/$name-tmp"
	start=$(date +%s)
	# in the background for its pid (its namespaces are dfdemo-PID-*), waited for at most 120 s
	DEMO_RUNTIME=$route DEMO_REPORT_DIR=$REPS TMPDIR=$DF_T/$name-tmp \
		"$DF_ROOT/examples/deploy/demo.sh" --quiet >"$DF_T/$name.out" 2>&1 &
	DEMO=$!
	df_track_pid "$DEMO"
	for _ in $(seq 1200); do kill -0 "$DEMO" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$DEMO" 2>/dev/null; then
		notok "$name: finishes within 120 s" "still running; ended with TERM (its trap cleans up)"
		kill "$DEMO"
	fi
	wait "$DEMO"
	rc=$?
	secs=$(($(date +%s) - start))
	out=$(cat "$DF_T/$name.out")

	for s in step1 step2 step3; do
		line=$(grep "^$s " <<<"$out" | head -n 1)
		case $line in
		"$s ok: "*) ok "$name: ${line#"$s ok: "}" ;;
		"") notok "$name: $s" "no outcome line; output: $(tr '\n' ' ' <<<"$out" | cut -c1-600)" ;;
		*) notok "$name: $s" "${line#"$s "}" ;;
		esac
	done
	check "$name: exits 0" "0" "$rc"
	last=$(tail -n 1 <<<"$out")
	case $last in
	"demo: PASS"*) ok "$name: final line says PASS" ;;
	*) notok "$name: final line says PASS" "got: $last" ;;
	esac
	extra=$(grep -v -e '^step[123] ok: ' -e '^demo: PASS' <<<"$out")
	check "$name: --quiet prints only the outcome lines" "" "$extra"
	if [ "$secs" -lt 120 ]; then ok "$name: ran in ${secs} s (under 2 minutes)"; else
		notok "$name: ran in under 2 minutes" "took $secs s"; fi
	for r in 1-observe 2-enforce 3-fixed; do
		check "$name: report $r is a depfence report" "depfence.report/v1" "$(jqr "$REPS/$r.json" .schema)"
	done

	# left behind: namespaces, servers, temp dir, pins, fence state, cgroups
	check "$name: no network namespace left" "" "$(ip netns list 2>/dev/null | grep -o "^dfdemo-$DEMO-[a-z]*")"
	# the demo's servers name its temp dir on their command lines
	check "$name: no server left" "" "$(pgrep -f -- "$DF_T/$name-tmp/" 2>/dev/null)"
	check "$name: its temp dir (rootfs, runc state, bundles) is gone" "" "$(ls -A "$DF_T/$name-tmp")"
	check "$name: no mount left under its temp dir" "" \
		"$(awk -v t="$DF_T/$name-tmp/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo)"
	df_check_clean "$name"
	# each report names its fence's cgroup: none may be left (other jobs' cgroups
	# on the same machine are none of this test's business)
	left=""
	for r in "$REPS"/*.json; do
		c=$(jq -r '.cgroup // empty' "$r" 2>/dev/null)
		[ -n "$c" ] && [ -e "$c" ] && left="$left $c"
	done
	check "$name: no fence cgroup left" "" "$left"
}

# --- the container route: runc, with the hooks in config.json ---
demo "" demo
# the reports were written by the containers' hooks: kind hook, the container id,
# the fence on the container's own cgroup, the command from config.json
for r in 1-observe:deploy.sh 2-enforce:deploy.sh 3-fixed:deploy-fixed.sh; do
	id=dfdemo-$DEMO-${r%%:*}
	check "demo: report ${r%%:*} is from the hooks of runc container $id" \
		"hook $id $id /demo/${r#*:} demo step ${r:0:1}: ${r#*:}" \
		"$(jqr "$REPS/${r%%:*}.json" '"\(.kind) \(.id) \(.cgroup | sub(".*/"; "")) \(.command) \(.label)"')"
	check "demo: report ${r%%:*} is in the config's report_dir too" "$id" "$(jqr "$DF_REPORTS/$id.json" .id)"
done
check "demo: step 2's policy came from the container's annotations" \
	"github.com=annotation depfence.io/deny **.github.com=annotation depfence.io/deny updates.example.net=annotation depfence.io/deny" \
	"$(jqr "$REPS/2-enforce.json" '[.policy.rules[] | "\(.rule)=\(.source)"] | join(" ")')"
check "demo: step 2's refusals each name the curl command line that asked" "github.com updates.example.net|0" \
	"$(jqr "$REPS/2-enforce.json" '[.events[] | select(.verdict == "blocked") | .name as $n
		| select(.process.cmdline | startswith("curl ") and contains($n)) | $n] | unique | join(" ")')|$(jqr "$REPS/2-enforce.json" \
	'[.events[] | select(.verdict == "blocked") | select((.process.cmdline // "") | startswith("curl ") | not)] | length')"
check "demo: no runc container cgroup left" "" "$(cgroup_left "dfdemo-$DEMO-")"

# --- the fallback: depfence run ---
demo run demo-run
for r in 1-observe 2-enforce 3-fixed; do
	check "demo-run: report $r is from depfence run" "run depfence-run-" \
		"$(jqr "$REPS/$r.json" '"\(.kind) \(.cgroup | sub(".*/"; "") | .[0:13])"')"
done
