#!/bin/bash
# Concurrency: 100 `depfence run` fences started together, held at once, and
# stopped together, with overlapping policies; every report must hold its own
# job's events and nothing of the others', and nothing may be left after.
# Then the host's 256 attribution slots all taken: a fence without a slot
# holds and keeps only a one-entry attribution map.
# All jobs run inside a network namespace made here (test hosts on its lo).
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/parallel"
df_setup

NS=$(df_netns par) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 80 443 || { notok "test servers" "did not come up"; exit 1; }
SCHEMA=$DF_ROOT/tests/fixtures/report.schema.json
JOBS=${DF_PARALLEL_JOBS:-100}
oneline() { tr '\n' ' ' | cut -c1-400; }
left() { find "$DF_PINS" -mindepth 1 2>/dev/null; find "$DF_STATE" -name '*.json' ! -name '.*' 2>/dev/null; }
# fully_pinned: pin directories holding all six links (an attached fence)
fully_pinned() {
	local d n=0
	for d in "$DF_PINS"/run-*; do
		[ -e "$d/connect4" ] && [ -e "$d/connect6" ] && [ -e "$d/sendmsg4" ] &&
			[ -e "$d/sendmsg6" ] && [ -e "$d/egress" ] && [ -e "$d/ingress" ] && n=$((n + 1))
	done
	echo $n
}

# job I: every third in audit, the others in enforce; all deny 203.0.113.10:443
# (the overlap) and each its own UDP port on 198.51.100.10; each waits for
# $DF_T/go so that all fences are held at once, then makes three calls:
# the shared denied one, its own denied one, an allowed one.
# The jobs wait on a fifo the test holds open read-write (so opening it never
# blocks): `read` takes one line, and the test writes one line per job to
# release them all at once. No polling: a job forks nothing while it waits.
mkfifo "$DF_T/go"
exec 3<>"$DF_T/go"
df_on_exit "exec 3>&-"
job() {
	local i=$1 mode=enforce port=$((20000 + $1))
	[ $((i % 3)) = 0 ] && mode=audit
	nsenter --net="/run/netns/$NS" -- timeout 300 "$DF_BIN" run --mode "$mode" --label "job $i" \
		--deny "203.0.113.10:443, udp/198.51.100.10:$port" --report "$DF_T/rep-$i.json" -- \
		sh -c "read go <'$DF_T/go'
			$DF_TOOLS/dfclient tcp 203.0.113.10 443; $DF_TOOLS/dfclient udp-sendto 198.51.100.10 $port
			$DF_TOOLS/dfclient tcp 203.0.113.20 80" >"$DF_T/out-$i" 2>"$DF_T/err-$i"
}

start=$(date +%s)
pids=()
for i in $(seq "$JOBS"); do
	job "$i" &
	pids+=($!)
	df_track_pid $!
done
# bounded: until every fence is attached (or 240 s)
held=0
for t in $(seq 1200); do
	held=$(fully_pinned)
	[ "$held" -ge "$JOBS" ] && break
	sleep 0.2
done
states=$(find "$DF_STATE" -name 'run-*.json' | wc -l)
cgroups=$(for f in "$DF_STATE"/run-*.json; do jqr "$f" .cgroup; done | sort -u)
check "all $JOBS fences attached at once" "$JOBS $JOBS" "$held $states"
check "every fence in its own cgroup" "$JOBS" "$(echo "$cgroups" | grep -c .)"
check "one attribution slot per fence" "$JOBS" \
	"$(bpftool -j map dump pinned "$DF_PINS/@attrib/slots" 2>/dev/null | jq '[.[] | select(.formatted.value.gen != 0)] | length')"
for i in $(seq "$JOBS"); do echo go; done >&3
for p in "${pids[@]}"; do wait "$p"; done
secs=$(( $(date +%s) - start ))
echo "# $JOBS fences held at once; started, held and stopped in ${secs}s"

# every report: its own job's events, no other job's
bad=0
for i in $(seq "$JOBS"); do
	port=$((20000 + i))
	if [ $((i % 3)) = 0 ]; then mode=audit v=would-block out="ok ok ok"; else mode=enforce v=blocked out="EPERM EPERM ok"; fi
	want="job $i|$mode|3|2|$v connect4 tcp 203.0.113.10 443 203.0.113.10:443 dfclient 1,$v sendmsg4 udp 198.51.100.10 $port udp/198.51.100.10:$port dfclient 1|$out"
	got="$(jqr "$DF_T/rep-$i.json" '[.label, .mode, (.summary.connections | tostring), (.events | length | tostring),
		([.events[] | "\(.verdict) \(.hook) \(.proto) \(.daddr) \(.dport) \(.rule) \(.process.comm) \(.count)"] | sort | join(","))] | join("|")')|$(echo $(cat "$DF_T/out-$i" 2>/dev/null))"
	if [ "$got" != "$want" ]; then
		bad=$((bad + 1))
		notok "job $i: report" "expected '$want', got '$got'; stderr: $(oneline <"$DF_T/err-$i")"
	fi
done
check "$JOBS reports: each has exactly its own job's calls" "0 wrong" "$bad wrong"
valid=$(python3 "$DF_ROOT/tests/tools/schema_check.py" "$SCHEMA" "$DF_T"/rep-*.json 2>&1 | grep -c '^valid ')
check "$JOBS reports: schema-valid" "$JOBS" "$valid"
check "after: no pins (attribution included) or state left" "" "$(left | oneline)"
check "after: no cgroup left" "" "$(for c in $cgroups; do [ -e "$c" ] && echo "$c"; done | oneline)"
check "after: no depfence left running" "" "$(for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && echo "$p"; done | oneline)"

# --- every attribution slot taken: the next fence holds, without the 1 MiB map ---
holder() {
	nsenter --net="/run/netns/$NS" -- timeout 120 "$DF_BIN" run --mode enforce --deny 203.0.113.10:443 \
		--report "$DF_T/slot-$1.json" -- sh -c "read go <'$DF_T/go'
			$DF_TOOLS/dfclient tcp 203.0.113.10 443" >"$DF_T/slot-$1.out" 2>"$DF_T/slot-$1.err"
}
# wait_states N: until N state files exist (bounded)
wait_states() {
	local t
	for t in $(seq 150); do [ "$(find "$DF_STATE" -name 'run-*.json' | wc -l)" -ge "$1" ] && [ "$(fully_pinned)" -ge "$1" ] && return 0; sleep 0.2; done
	return 1
}
# procs_max ID: max_entries of the process map the fence's connect4 program uses (its own
# attrib_procs, or the host-wide "procs" handed in)
procs_max() {
	local prog m
	prog=$(bpftool -j cgroup show "$(jqr "$DF_STATE/$1.json" .cgroup)" 2>/dev/null |
		jq -r '.[] | select(.name == "df_connect4") | .id' | head -n 1)
	for m in $(bpftool -j prog show id "$prog" 2>/dev/null | jq -r '.map_ids[]'); do
		bpftool -j map show id "$m" 2>/dev/null | jq -r 'select(.name == "attrib_procs" or .name == "procs") | .max_entries'
	done
}
holder a &
ha=$!
df_track_pid $ha
wait_states 1 || notok "slots: first fence" "not attached: $(oneline <"$DF_T/slot-a.err")"
ida=$(basename "$(ls "$DF_STATE"/run-*.json | head -n 1)" .json)
SLOTS=$DF_PINS/@attrib/slots
free=$(bpftool -j map dump pinned "$SLOTS" 2>/dev/null | jq -r '.[] | select(.formatted.value.gen == 0) | .formatted.key')
zeros=$(printf ' 0%.0s' $(seq 44))
for k in $free; do echo "map update pinned $SLOTS key $((k & 255)) $((k >> 8 & 255)) 0 0 value 1 0 0 0$zeros"; done >"$DF_T/fill.batch"
for k in $free; do echo "map update pinned $SLOTS key $((k & 255)) $((k >> 8 & 255)) 0 0 value 0 0 0 0$zeros"; done >"$DF_T/free.batch"
df_on_exit "bpftool batch file '$DF_T/free.batch'"
bpftool batch file "$DF_T/fill.batch" >/dev/null 2>&1
check "slots: all 256 taken (255 by the test)" "256 255" \
	"$(bpftool -j map dump pinned "$SLOTS" 2>/dev/null | jq '[.[] | select(.formatted.value.gen != 0)] | length') $(echo "$free" | grep -c .)"
holder b &
hb=$!
df_track_pid $hb
wait_states 2 || notok "slots: second fence" "not attached: $(oneline <"$DF_T/slot-b.err")"
idb=$(basename "$(ls "$DF_STATE"/run-*.json | grep -v "/$ida.json" | head -n 1)" .json)
check "slots: the fence with a slot shares the host-wide map" "65536" "$(procs_max "$ida")"
check "slots: the fence without a slot has a one-entry map" "1" "$(procs_max "$idb")"
check "slots: its state says why" "1" "$(jqr "$DF_STATE/$idb.json" '.attrib.error | test("all taken") | if . then 1 else 0 end')"
bpftool batch file "$DF_T/free.batch" >/dev/null 2>&1
echo go >&3
echo go >&3
wait $ha
wait $hb
check "slots: both fences held" "EPERM EPERM" "$(cat "$DF_T/slot-a.out" "$DF_T/slot-b.out" | oneline | sed 's/ $//')"
check "slots: the fence without a slot reports the refused call" "blocked 203.0.113.10 443 dfclient" \
	"$(jqr "$DF_T/slot-b.json" '.events[] | "\(.verdict) \(.daddr) \(.dport) \(.process.comm)"')"
check "slots: its report says why attribution is missing" "1" \
	"$(jqr "$DF_T/slot-b.json" '[.notes[] | select(test("all taken"))] | length')"
check "slots: after, nothing left" "" "$(left | oneline)"
