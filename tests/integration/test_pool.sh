#!/bin/bash
# The pool (host config fence_pool): a finished fence's verified programs
# wait, detached and emptied, for the next fence with the same rules, which
# takes them instead of loading (and verifying) its own. Real containers'
# fences through the hook path, real jobs under depfence run, inside a
# network namespace made here (test hosts on its lo), so no packet leaves.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/pool"
df_setup

NS=$(df_netns pool) || { notok "create netns" "ip netns add failed"; exit 1; }
df_dns "$NS" || { notok "dnsmasq" "did not answer"; exit 1; }
df_servers "$NS" 80 443 || { notok "test servers" "did not come up"; exit 1; }
C=$DF_TOOLS/dfclient
Q=$DF_TOOLS/dfdns
POOL=$DF_PINS/@pool
# the pool is on with attribution_linger (the sets idle out with the attribution programs)
jq '.attribution_linger = 60' "$DEPFENCE_CONFIG" >"$DF_T/pool.json" && mv "$DF_T/pool.json" "$DEPFENCE_CONFIG"

sets() { find "$POOL" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort; }
nsets() { sets | grep -c .; }
# the program id of a kept set's egress program, or of a live fence's egress link
set_prog() { bpftool -j prog show pinned "$1/pool_p_egress" 2>/dev/null | jq -r .id; }
live_prog() { bpftool -j link show pinned "$DF_PINS/$1/egress" 2>/dev/null | jq -r .prog_id; }
bases() { bpftool -j map lookup pinned "$DF_PINS/$1/config" key 0 0 0 0 2>/dev/null | jq -c '[.formatted.value.hash_b1, .formatted.value.hash_b2]'; }
# a fence of the rules A, and what its job does: a refused connect, an
# allowed one, a refused name, an allowed name
A='{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443, github.com"}'
OUT="EPERM ok EPERM ok 203.0.113.20"

# --- the first fence loads its programs; its end keeps them ---
check "no pool before the first fence" "0" "$(nsets)"
df_hook_hold p1 "$A" sh -c "$C tcp 203.0.113.10 443; $C tcp 203.0.113.10 80; $Q 203.0.113.53 53 github.com; $Q 203.0.113.53 53 pkg.example.com"
check "first: the state file names its set" "true" "$(jq -r '.pool | test("^[0-9a-f]{32}$")' "$DF_STATE/p1.json")"
b1=$(bases p1)
df_release p1
df_hook_detach p1
check "first: the fence held" "$OUT" "$HOOK_OUT"
check "first: its report" "4 1 1 1" "$(jqr "$HOOK_REP" '"\(.summary.connections) \(.summary.blocked) \(.summary.dns_queries - .summary.dns_blocked) \(.summary.dns_blocked)"')"
check "first: its set is kept" "1" "$(nsets)"
check "first: status counts it" "1" "$("$DF_BIN" status --json 2>/dev/null | jq .kept_program_sets)"
check "first: status says so" "1 verified program set kept for the next fence like theirs in $POOL (fence_pool)" \
	"$("$DF_BIN" status 2>/dev/null | grep 'verified program set')"
S1=$(sets)
X=$(set_prog "$S1")
check "first: the set holds its programs" "1" "$([ -n "$X" ] && [ "$X" != null ] && echo 1)"
check "first: the set is only the pool's pins (no fence links, no fence pins)" "" \
	"$(ls "$S1" | grep -v '^pool_[mpl]_')"
HOLD=$(df_cg2root)/depfence.pool
check "first: the set is held on the hold cgroup, a link for each program" \
	"7 $(stat -c %i "$HOLD" 2>/dev/null)" \
	"$(ls "$S1" | grep -c '^pool_l_') $(bpftool -j link show pinned "$S1/pool_l_egress" 2>/dev/null | jq -r .cgroup_id)"
check "first: the hold cgroup is empty and frozen" "0 1" \
	"$(grep -c . "$HOLD/cgroup.procs") $(awk '$1 == "frozen" {print $2}' "$HOLD/cgroup.events")"
check "first: its maps are emptied" "0 0" \
	"$(echo "$(bpftool -j map dump pinned "$S1/pool_m_records" | jq length) $(bpftool -j map dump pinned "$S1/pool_m_names" | jq length)")"
check "first: no pins or state of the fence left" "" "$(ls "$DF_PINS/p1" "$DF_STATE/p1.json" 2>/dev/null)"

# --- the next fence with the same rules takes the set: same programs ---
df_hook_hold p2 "$A" sh -c "$C tcp 203.0.113.10 443; $C tcp 203.0.113.10 80; $Q 203.0.113.53 53 github.com; $Q 203.0.113.53 53 pkg.example.com"
check "next: it took the kept set (the same programs, no load)" "$X" "$(live_prog p2)"
check "next: the pool is empty while it holds them" "0" "$(nsets)"
check "next: its links are its cgroup's; the hold links went" "" "$(ls "$DF_PINS/p2" | grep '^pool_l_')"
b2=$(bases p2)
check "next: its name hashes are keyed anew" "1" "$([ -n "$b2" ] && [ "$b1" != "$b2" ] && echo 1)"
check "next: its records start empty" "0" "$(bpftool -j map dump pinned "$DF_PINS/p2/records" | jq length)"
df_release p2
df_hook_detach p2
check "next: the fence held, names too (under the new keys)" "$OUT" "$HOOK_OUT"
check "next: its report has its own events only" "4 1 1 1" "$(jqr "$HOOK_REP" '"\(.summary.connections) \(.summary.blocked) \(.summary.dns_queries - .summary.dns_blocked) \(.summary.dns_blocked)"')"
check "next: ... the refused connect and the refused name" "blocked 443 blocked github.com" \
	"$(jqr "$HOOK_REP" '[.events[] | select(.verdict == "blocked") | if .hook == "dns" then "\(.verdict) \(.name)" else "\(.verdict) \(.dport)" end] | sort | join(" ")')"
check "next: the set goes back to the pool" "$X" "$(set_prog "$(sets)")"

# --- a kept set that ran while kept (the hold cgroup thawed and used by
# hand) is not taken: it would bring that into the next fence's report ---
echo 0 >"$HOLD/cgroup.freeze"
(echo "$BASHPID" >"$HOLD/cgroup.procs" && exec nsenter --net="/run/netns/$NS" "$C" tcp 203.0.113.10 443) >"$DF_T/thawed.out" 2>&1
echo 1 >"$HOLD/cgroup.freeze"
check "thawed: the kept programs judged a process put in the hold cgroup" "EPERM" "$(cat "$DF_T/thawed.out")"
# not_taken WHAT ID OLD CMD...: a fence of the rules A running CMD loads its
# own programs, not the set of programs OLD, which is unloaded; X its programs
not_taken() {
	local what=$1 id=$2 old=$3 x
	shift 3
	df_hook_hold "$id" "$A" "$@"
	x=$(live_prog "$id")
	check "$what: the fence loads its own programs" "1" "$([ -n "$x" ] && [ "$x" != null ] && [ "$x" != "$old" ] && echo 1)"
	check "$what: ... and the kept set is unloaded" "" "$(bpftool prog show id "$old" 2>/dev/null)"
	df_release "$id"
	df_hook_detach "$id"
	X=$x
}
not_taken thawed p5 "$X" "$C" tcp 203.0.113.10 80
check "thawed: its report has its own connect only" "1 0" "$(jqr "$HOOK_REP" '"\(.summary.connections) \(.summary.blocked)"')"

# --- a fence whose link pins someone removed is not kept ---
df_hook_hold p6 "$A" "$C" tcp 203.0.113.10 80
X6=$(live_prog p6)
rm -f "$DF_PINS/p6/connect4"
df_release p6
df_hook_detach p6
check "links removed: reported as lost" '["links"]' "$(jq -c .records_lost "$HOOK_REP" 2>/dev/null)"
check "links removed: its programs are not kept, but unloaded" "0 " \
	"$(sets | while read -r s; do set_prog "$s"; done | grep -cx "$X6") $(bpftool prog show id "$X6" 2>/dev/null)"
df_hook_job p6b "$A" true

# --- a kept set missing a pin is not taken: the fence loads its own ---
S=$(sets | head -n 1)
rm -f "$S/pool_m_names"
not_taken "broken set" p7 "$(set_prog "$S")" "$C" tcp 203.0.113.10 443
check "broken set: the fence held" "EPERM" "$HOOK_OUT"

# --- other rules: programs of their own ---
df_hook_job p3 '{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.20:443"}' \
	sh -c "$C tcp 203.0.113.20 443; $C tcp 203.0.113.10 443"
check "other rules: the fence held" "EPERM ok" "$HOOK_OUT"
check "other rules: a second set is kept, the first is still there" "2" "$(nsets)"
check "other rules: its programs are its own" "1" "$(sets | while read -r s; do set_prog "$s"; done | grep -cx "$X")"

# --- audit: the same programs, another mode ---
df_hook_job p4 '{"depfence.io/mode": "audit", "depfence.io/deny": "203.0.113.10:443, github.com"}' \
	sh -c "$C tcp 203.0.113.10 443"
check "another mode, same rules: the mode is the config's, not the programs'" "ok" "$HOOK_OUT"
check "another mode: would-block" "1 0" "$(jqr "$HOOK_REP" '"\(.summary.would_block) \(.summary.blocked)"')"

# --- depfence run takes sets too ---
run1() { nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --mode enforce --deny 203.0.113.10:80 --report "$1" -- "$C" tcp 203.0.113.10 80 2>/dev/null; }
before=$(nsets)
check "run: the fence held" "EPERM" "$(run1 "$DF_T/r1.json")"
check "run: its set is kept" "$((before + 1))" "$(nsets)"
r1=$(sets | while read -r s; do set_prog "$s"; done | sort -n | tr '\n' ' ')
check "run: a second run takes it and holds" "EPERM" "$(run1 "$DF_T/r2.json")"
check "run: ... and gives it back (the same sets, no new one)" "$r1" "$(sets | while read -r s; do set_prog "$s"; done | sort -n | tr '\n' ' ')"
check "run: ... with a report of its own" "1 1" "$(jqr "$DF_T/r2.json" '"\(.summary.connections) \(.summary.blocked)"')"

# --- never the cgroup a set last served: its sockets carry that fence's marks ---
CG=$(df_cg2root)/df$$-same
mkdir "$CG" && df_track_cgroup "$CG"
(echo "$BASHPID" >"$CG/cgroup.procs" && exec sleep 120) &
SL=$!
df_track_pid $SL
state() { jq -nc --arg id "$1" --arg st "$2" --argjson pid "$SL" --arg b "$DF_T" --argjson a "$A" \
	'{ociVersion: "1.0.2", id: $id, status: $st, bundle: $b, pid: $pid, annotations: $a}'; }
for n in 1 2 3 4 5 6 7 8 9 10; do [ "$(cat "$CG/cgroup.procs")" = "$SL" ] && break; sleep 0.1; done
state same1 creating | "$DF_BIN" hook createRuntime 2>/dev/null
g1=$(live_prog same1)
check "same cgroup: the first fence there took the kept set" "$X" "$g1"
state same1 stopped | "$DF_BIN" hook poststop 2>/dev/null
state same2 creating | "$DF_BIN" hook createRuntime 2>/dev/null
g2=$(live_prog same2)
check "same cgroup: the next fence on that very cgroup loads its own" "1" "$([ -n "$g2" ] && [ "$g2" != null ] && [ "$g2" != "$g1" ] && echo 1)"
state same2 stopped | "$DF_BIN" hook poststop 2>/dev/null

# --- a hook killed after attaching a taken set, before it let go of the hold
# cgroup (its first unlinkat): the retry for the same id and cgroup finishes
# that fence and holds, the hold links not taken for another cgroup's ---
CGK=$(df_cg2root)/df$$-killed
mkdir "$CGK" && df_track_cgroup "$CGK"
echo "$SL" >"$CGK/cgroup.procs"
(state killed creating | strace -f -qq -o /dev/null -e trace=unlinkat -e inject=unlinkat:signal=SIGKILL:when=1 \
	"$DF_BIN" hook createRuntime) 2>/dev/null
check "killed take: the hook was killed" "137" "$?"
check "killed take: it left its links and the hold links" "1" \
	"$([ -e "$DF_PINS/killed/egress" ] && [ -e "$DF_PINS/killed/pool_l_egress" ] && echo 1)"
state killed creating | "$DF_BIN" hook createRuntime 2>"$DF_T/killed.err"
check "killed take: the retry holds" "0" "$?"
check "killed take: ... on this cgroup" "$(stat -c %i "$CGK")" \
	"$(bpftool -j link show pinned "$DF_PINS/killed/egress" 2>/dev/null | jq -r .cgroup_id)"
state killed stopped | "$DF_BIN" hook poststop 2>/dev/null
kill $SL; wait $SL 2>/dev/null

# --- a full pool: the set is unloaded ---
jq '.fence_pool = 1' "$DEPFENCE_CONFIG" >"$DF_T/one.json"
n0=$(nsets)
DEPFENCE_CONFIG=$DF_T/one.json nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --mode observe --deny 198.51.100.99 -- true 2>/dev/null
check "full pool: nothing more is kept" "$n0" "$(nsets)"

# --- what a killed park leaves, and sets idle past attribution_linger, go at gc ---
mkdir "$POOL/stage-x" && bpftool map create "$POOL/stage-x/pool_m_config" type array key 4 value 4 entries 1 name dft
DEPFENCE_CONFIG=$DF_T/one.json "$DF_BIN" gc --grace 0 >"$DF_T/gc1.out" 2>&1
check "gc: a park that did not finish is removed" "" "$(ls -d "$POOL/stage-x" 2>/dev/null)"
check "gc: sets not idle long are kept" "$n0" "$(nsets)"
jq '.attribution_linger = 1' "$DEPFENCE_CONFIG" >"$DF_T/short.json"
sleep 2
DEPFENCE_CONFIG=$DF_T/short.json "$DF_BIN" gc --grace 0 >"$DF_T/gc2.out" 2>&1
check "gc: idle sets are removed" "0" "$(nsets)"
check "gc: ... says so" "1" "$(grep -c "program sets\? the pool kept" "$DF_T/gc2.out")"
check "gc: ... their programs are unloaded" "" "$(bpftool prog show id "$X" 2>/dev/null)"
check "gc: ... and the pool's directory" "" "$(ls -d "$POOL" 2>/dev/null)"
check "gc: ... and the hold cgroup" "" "$(ls -d "$HOLD" 2>/dev/null)"

# --- fence_pool 0: nothing kept, and gc empties a pool left from before ---
jq '.fence_pool = 0' "$DEPFENCE_CONFIG" >"$DF_T/off.json"
nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --mode observe -- true 2>/dev/null
check "pool on: kept" "1" "$(nsets)"
DEPFENCE_CONFIG=$DF_T/off.json nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --report "$DF_T/off.json.rep" --mode observe -- sh -c "cat $DF_STATE/run-*.json" >"$DF_T/off.state" 2>/dev/null
check "pool off: the state names no set" "null" "$(jq -r .pool "$DF_T/off.state")"
check "pool off: nothing more kept" "1" "$(nsets)"
DEPFENCE_CONFIG=$DF_T/off.json "$DF_BIN" gc --grace 0 >/dev/null 2>&1
check "pool off: gc removes what was kept" "0" "$(nsets)"
check "bad fence_pool: refused, named" "1" "$(jq '.fence_pool = 65' "$DEPFENCE_CONFIG" >"$DF_T/bad.json"; DEPFENCE_CONFIG=$DF_T/bad.json "$DF_BIN" gc 2>&1 | grep -c 'fence_pool')"

# the attribution programs go once idle too: nothing is left
sleep 2
DEPFENCE_CONFIG=$DF_T/short.json "$DF_BIN" gc --grace 0 >/dev/null 2>&1
df_check_clean "end"
