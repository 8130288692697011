#!/bin/bash
# Rootless and missing capabilities are refused up front: depfence run and the
# hook's createRuntime exit 1 with a message that says what is needed, before
# creating a cgroup, pinning or writing anything, and the job never runs.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/rootless"
df_setup
# nobody must read the config to get as far as the check
chmod 0755 "$DF_T"
chmod 0644 "$DEPFENCE_CONFIG"

NEED='needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN) in the initial user namespace'
CG2=$(df_cg2root)
[ -d "$CG2" ] || { notok "cgroup2 mount" "not found in /proc/self/mountinfo"; exit 1; }
# the commands run in a cgroup of the test's own, where a run would make its cgroup
RUNCG=$CG2/df$$-runner
mkdir "$RUNCG" && df_track_cgroup "$RUNCG"

# nothing of a fence or a run left anywhere
left() {
	find "$DF_PINS" "$DF_STATE" "$DF_REPORTS" -mindepth 1 2>/dev/null
	find "$RUNCG" -mindepth 1 -maxdepth 1 -type d 2>/dev/null
	[ -e "$DF_T/ran" ] && echo "the job ran"
}

# as NAME CMD...: the way each case drops privileges
as() {
	local how=$1 drop; shift
	case $how in
	nocaps) drop=(setpriv --inh-caps=-all --bounding-set=-all) ;;
	nobody) drop=(setpriv --reuid=nobody --regid=nogroup --clear-groups) ;;
	userns) drop=(unshare --user --map-root-user) ;;
	esac
	# into the test's cgroup first (as root), then drop privileges
	sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$RUNCG" "${drop[@]}" "$@"
}

# ---- depfence run ----
for how in nocaps nobody userns; do
	as "$how" "$DF_BIN" run --mode enforce --deny github.com -- sh -c ": >'$DF_T/ran'" \
		>"$DF_T/out" 2>"$DF_T/err"
	rc=$?
	check "run $how: exit 1" "1" "$rc"
	check "run $how: says what is needed" "1" "$(grep -qF "depfence: run: $NEED" "$DF_T/err" && echo 1)"
	check "run $how: nothing created, the job did not run" "" "$(left)"
done
check "run nocaps: names the missing capabilities" "1" \
	"$(as nocaps "$DF_BIN" run -- true 2>&1 | grep -q 'lacks CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN' && echo 1)"
check "run nobody: names the uid" "1" \
	"$(as nobody "$DF_BIN" run -- true 2>&1 | grep -q "(uid $(id -u nobody))" && echo 1)"
check "run userns: says it is a user namespace" "1" \
	"$(as userns "$DF_BIN" run -- true 2>&1 | grep -q 'runs in a user namespace (rootless' && echo 1)"
check "run: usage errors still come first (exit 2)" "2" "$(as nocaps "$DF_BIN" run --mode nope -- true >/dev/null 2>&1; echo $?)"

# ---- the hook ----
# a process of its own in a cgroup of its own: were the check missing, this is
# what the hook would fence
W_CG=$CG2/df$$-rootless
mkdir "$W_CG" && df_track_cgroup "$W_CG"
sleep 300 &
W_PID=$!
df_track_pid "$W_PID"
echo "$W_PID" >"$W_CG/cgroup.procs"

state() {
	jq -nc --arg id "$1" --argjson pid "$W_PID" --argjson ann "$2" --arg b "$DF_T" \
		'{ociVersion: "1.0.2", id: $id, status: "creating", bundle: $b, pid: $pid, annotations: $ann}'
}
ANN='{"depfence.io/mode": "enforce", "depfence.io/deny": "github.com"}'

for how in nocaps nobody userns; do
	state "rl-$how" "$ANN" | as "$how" "$DF_BIN" hook createRuntime >"$DF_T/out" 2>"$DF_T/err"
	rc=$?
	check "hook $how: createRuntime exits 1 (the container does not start)" "1" "$rc"
	check "hook $how: says what is needed" "1" "$(grep -qF "container rl-$how: $NEED" "$DF_T/err" && echo 1)"
	check "hook $how: nothing pinned or written" "" "$(left)"
	check "hook $how: the cgroup has no programs" "" "$(bpftool cgroup show "$W_CG" 2>/dev/null | sed 1d)"
done
check "hook userns: tells rootless podman users what to do" "1" \
	"$(state rl-u "$ANN" | as userns "$DF_BIN" hook createRuntime 2>&1 | grep -q 'rootless podman cannot fence containers: run this container with rootful podman' && echo 1)"
check "hook prestart: refused the same way" "1" \
	"$(state rl-p "$ANN" | as nocaps "$DF_BIN" hook prestart >/dev/null 2>&1; echo $?)"
check "hook: a container without depfence annotations needs nothing (exit 0)" "0" \
	"$(state rl-none '{"other.io/x": "y"}' | as userns "$DF_BIN" hook createRuntime >/dev/null 2>&1; echo $?)"
check "hook: poststop with no fence is fine without privileges (exit 0)" "0" \
	"$(state rl-nocaps null | as nocaps "$DF_BIN" hook poststop >/dev/null 2>&1; echo $?)"

# the same hook as root fences it: the refusals above were about privileges
state rl-root "$ANN" | "$DF_BIN" hook createRuntime >"$DF_T/out" 2>"$DF_T/err"
check "hook as root: createRuntime attaches" "0 1" \
	"$? $([ -e "$DF_PINS/rl-root/connect4" ] && echo 1)"
state rl-root "$ANN" | "$DF_BIN" hook poststop >/dev/null 2>&1
check "hook as root: poststop writes the report" "1" "$([ -s "$DF_REPORTS/rl-root.json" ] && echo 1)"
df_check_clean "hook as root"
