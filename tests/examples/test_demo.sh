#!/bin/bash
# The demo (`make demo`) cannot rot: run examples/deploy/demo.sh --quiet with a
# private config (state in a temp dir, pins under /sys/fs/bpf/depfence-demo-PID)
# and check each step's outcome, the final line, and that nothing is left.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "examples/demo"
df_setup
# the demo's own names for what it leaves: pins under depfence-demo-*
DF_PINS=/sys/fs/bpf/depfence-demo-$$
cat >"$DF_T/config.json" <<EOC
{ "report_dir": "$DF_REPORTS", "state_dir": "$DF_STATE", "bpffs_root": "$DF_PINS" }
EOC
export DF_BIN DEPFENCE_CONFIG DEMO_REPORT_DIR=$DF_T/demo-reports

if [ ! -x "$DF_BIN" ]; then
	notok "demo" "no depfence binary at $DF_BIN"
	exit 1
fi

# in the background for its pid (its namespaces are dfdemo-PID-*), waited for at most 120 s
start=$(date +%s)
"$DF_ROOT/examples/deploy/demo.sh" --quiet >"$DF_T/demo.out" 2>&1 &
demo=$!
df_track_pid "$demo"
for _ in $(seq 1200); do kill -0 "$demo" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$demo" 2>/dev/null; then
	notok "demo: finishes within 120 s" "still running; ended with TERM (its trap cleans up)"
	kill "$demo"
fi
wait "$demo"
rc=$?
secs=$(($(date +%s) - start))
out=$(cat "$DF_T/demo.out")

for s in step1 step2 step3; do
	line=$(grep "^$s " <<<"$out" | head -n 1)
	case $line in
	"$s ok: "*) ok "demo: ${line#"$s ok: "}" ;;
	"") notok "demo: $s" "no outcome line; output: $(tr '\n' ' ' <<<"$out" | cut -c1-600)" ;;
	*) notok "demo: $s" "${line#"$s "}" ;;
	esac
done
check "demo: exits 0" "0" "$rc"
last=$(tail -n 1 <<<"$out")
case $last in
"demo: PASS"*) ok "demo: final line says PASS" ;;
*) notok "demo: final line says PASS" "got: $last" ;;
esac
extra=$(grep -v -e '^step[123] ok: ' -e '^demo: PASS' <<<"$out")
check "demo: --quiet prints only the outcome lines" "" "$extra"
if [ "$secs" -lt 60 ]; then ok "demo: ran in ${secs} s (under 60)"; else notok "demo: ran in under 60 s" "took $secs s"; fi
for r in 1-observe 2-enforce 3-fixed; do
	check "demo: report $r is a depfence report" "depfence.report/v1" "$(jqr "$DEMO_REPORT_DIR/$r.json" .schema)"
done

# left behind: namespaces, servers, pins, fence state, cgroups
check "demo: no network namespace left" "" "$(ip netns list 2>/dev/null | grep -o "^dfdemo-$demo-[a-z]*")"
# the demo's servers name its temp dir (/tmp/depfence-demo.*) on their command lines
check "demo: no server left" "" "$(pgrep -f -- '/tmp/depfence-demo\.' 2>/dev/null | while read -r p; do
	[ "$(cut -d' ' -f4 "/proc/$p/stat" 2>/dev/null)" = 1 ] && echo "$p"; done)"
df_check_clean "demo"
# each report names its fence's cgroup: none may be left (other jobs' cgroups
# on the same machine are none of this test's business)
left=""
for r in "$DEMO_REPORT_DIR"/*.json; do
	c=$(jq -r '.cgroup // empty' "$r" 2>/dev/null)
	[ -n "$c" ] && [ -e "$c" ] && left="$left $c"
done
check "demo: the reports name their fences' cgroups" "1" "$(cat "$DEMO_REPORT_DIR"/*.json 2>/dev/null | jq -r '.cgroup // empty' | grep -c depfence-run- | awk '{print ($1 >= 3)}')"
check "demo: no fence cgroup left" "" "$left"
