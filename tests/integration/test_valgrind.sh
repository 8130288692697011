#!/bin/bash
# The hook and the CLI under valgrind (memcheck): a whole createRuntime ->
# poststop cycle on a real cgroup with a process making a refused and an
# allowed connection, then depfence run and depfence report. Every run must
# end with no memcheck error and no definite or indirect leak.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/valgrind"
command -v valgrind >/dev/null || { notok "valgrind" "not installed (make deps)"; exit 1; }
df_setup

NS=$(df_netns vg) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 80 443 || { notok "test servers" "did not come up"; exit 1; }
CG2=$(df_cg2root)
[ -d "$CG2" ] || { notok "cgroup2 mount" "not found in /proc/self/mountinfo"; exit 1; }

VG_RC=99
SUPP=$DF_ROOT/tests/integration/valgrind.supp
# vg NAME ARGS...: depfence under memcheck; stdout to $DF_T/NAME.out, memcheck's log to $DF_T/NAME.vg
vg() {
	local name=$1; shift
	timeout --kill-after=10 300 valgrind -q --tool=memcheck --suppressions="$SUPP" --leak-check=full \
		--errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
		--error-exitcode=$VG_RC --log-file="$DF_T/$name.vg" "$DF_BIN" "$@" >"$DF_T/$name.out"
}

# vg_check NAME RC WANT: the exit status, and memcheck had nothing to say
vg_check() {
	local why=""
	[ "$2" = "$3" ] || why="exit $2, want $3"
	[ "$2" = $VG_RC ] && why="memcheck found errors or leaks"
	# valgrind 3.19 has no wrapper for seccomp() (317) and says so (libseccomp
	# then loads the same filter through prctl(PR_SET_SECCOMP)), nor for the
	# newer bpf() commands (link create, ...), and warns of each
	grep -v -e 'WARNING: unhandled amd64-linux syscall: 317$' -e 'WARNING: unhandled eBPF command [0-9]*$' -e 'You may be able to write your own handler' \
		-e 'Read the file README_MISSING_SYSCALL_OR_IOCTL' -e 'Nevertheless we consider this a bug' \
		-e 'it at http://valgrind.org/support/bug_reports.html' "$DF_T/$1.vg" >"$DF_T/$1.vg.left"
	if [ -s "$DF_T/$1.vg.left" ]; then
		why="${why:+$why; }memcheck: $(head -c 3000 "$DF_T/$1.vg.left" | tr '\n' ' ')"
	fi
	if [ -z "$why" ]; then ok "valgrind: $1"; else notok "valgrind: $1" "$why"; fi
}

# --- createRuntime -> poststop ---
ID=vg-hook
W_CG=$CG2/df$$-vg
mkdir "$W_CG" && df_track_cgroup "$W_CG"
mkfifo "$DF_T/go"
PATH=$DF_TOOLS:$PATH nsenter --net="/run/netns/$NS" -- \
	sh -c "read go <'$DF_T/go'; dfclient tcp 203.0.113.10 443; dfclient tcp 203.0.113.10 80" >"$DF_T/client.out" 2>&1 &
W_PID=$!
df_track_pid "$W_PID"
echo "$W_PID" >"$W_CG/cgroup.procs"
mkdir -p "$DF_T/bundle"
jq -n '{ociVersion: "1.0.2", process: {args: ["dfclient", "tcp"], capabilities: {bounding: ["CAP_NET_RAW"]}},
	linux: {namespaces: [{type: "pid"}, {type: "network"}]}}' >"$DF_T/bundle/config.json"
jq -nc --arg id "$ID" --argjson pid "$W_PID" --arg b "$DF_T/bundle" \
	'{ociVersion: "1.0.2", id: $id, status: "creating", pid: $pid, bundle: $b,
	  annotations: {"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443 github.com",
	  "depfence.io/label": "valgrind"}}' >"$DF_T/state.json"
vg createRuntime hook createRuntime <"$DF_T/state.json"
vg_check createRuntime $? 0
timeout 5 sh -c 'echo go >"$1"' _ "$DF_T/go"
for i in $(seq 100); do kill -0 "$W_PID" 2>/dev/null || break; sleep 0.05; done
wait "$W_PID" 2>/dev/null
check "fenced process: refused, then allowed" "EPERM ok" "$(echo $(cat "$DF_T/client.out"))"
rmdir "$W_CG"
jq -c '.status = "stopped" | del(.pid)' "$DF_T/state.json" >"$DF_T/stopped.json"
vg poststop hook poststop <"$DF_T/stopped.json"
vg_check poststop $? 0
check "poststop: the report holds the refused connection" "blocked 203.0.113.10" \
	"$(jqr "$DF_REPORTS/$ID.json" '.events[] | "\(.verdict) \(.daddr)"')"
df_check_clean "valgrind hook"

# --- depfence run ---
rep=$DF_T/run.json
nsenter --net="/run/netns/$NS" -- timeout --kill-after=10 300 valgrind -q --tool=memcheck --suppressions="$SUPP" \
	--leak-check=full --errors-for-leak-kinds=definite,indirect \
	--show-leak-kinds=definite,indirect --error-exitcode=$VG_RC --log-file="$DF_T/run.vg" \
	"$DF_BIN" run --mode enforce --deny 203.0.113.10:443 --label valgrind --report "$rep" -- \
	"$DF_TOOLS/dfclient" tcp 203.0.113.10 443 >"$DF_T/run.out" 2>"$DF_T/run.err"
vg_check run $? 1 # dfclient: 1 for EPERM, and run exits with its status
check "run: the report holds the refused connection" "blocked 203.0.113.10 443" \
	"$(jqr "$rep" '.events[] | "\(.verdict) \(.daddr) \(.dport)"')"

# --- depfence report, every format ---
for f in text json junit sarif policy; do
	vg "report-$f" report --format "$f" "$DF_REPORTS/$ID.json"
	vg_check "report-$f" $? 0
done
vg report-fail-on report --fail-on blocked "$rep"
vg_check report-fail-on $? 3
