#!/bin/bash
# Break-glass: every live fence on the host to audit at once, and back, with
# the reason in every report that covers the period.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/break-glass"
df_setup
NS=$(df_netns bg) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 80 || { notok "test servers" "did not come up"; exit 1; }
C="$DF_TOOLS/dfclient"

# a live fence whose job connects when told to, three times
FIFO=$DF_T/go
mkfifo "$FIFO"
rep=$DF_T/long.json
nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --mode enforce --deny 203.0.113.10 --report "$rep" -- \
	sh -c "for i in 1 2 3; do read x <$FIFO; $C tcp 203.0.113.10 80 >>$DF_T/out; done" 2>/dev/null &
job=$!
df_track_pid $job
for i in $(seq 50); do [ -n "$(find "$DF_PINS" -mindepth 1 -maxdepth 1 2>/dev/null)" ] && break; sleep 0.1; done

echo go >"$FIFO"
for i in $(seq 50); do [ -s "$DF_T/out" ] && break; sleep 0.1; done
check "before: enforce refuses" "EPERM" "$(sed -n 1p "$DF_T/out")"

# a fence starting holds its id's lock until its config is pinned: break-glass
# waits for it (here the test holds the live fence's lock for 1 s)
LIVE=$(basename "$(find "$DF_PINS" -mindepth 1 -maxdepth 1 -type d | head -1)")
df_hold_lock "$LIVE" 1 || notok "hold the live fence's lock" "not held"
t0=$(date +%s%N)
check "on: accepted" "0" "$("$DF_BIN" break-glass on --reason "github outage INC-42" >/dev/null 2>&1; echo $?)"
check "on: it waited for the fence's lock (>= 0.8 s)" "1" "$(( ($(date +%s%N) - t0) >= 800000000 ))"
wait "$LOCK_PID" 2>/dev/null
check "status: on with the reason" "1" "$("$DF_BIN" break-glass status | grep -c 'INC-42')"
echo go >"$FIFO"
for i in $(seq 50); do [ "$(wc -l <"$DF_T/out")" -ge 2 ] && break; sleep 0.1; done
check "on: the live fence lets it through" "ok" "$(sed -n 2p "$DF_T/out")"
out=$(in_ns "$NS" "$DF_BIN" run --mode enforce --deny 203.0.113.10 --report "$DF_T/new.json" -- "$C" tcp 203.0.113.10 80 2>/dev/null)
check "on: a fence started now starts in audit" "ok" "$out"
check "on: its report records the period" "github outage INC-42 null" \
	"$(jqr "$DF_T/new.json" '.break_glass[0] | "\(.reason) \(.to)"')"
check "on: its event is would-block, not blocked" "would-block" "$(jqr "$DF_T/new.json" '.events[0].verdict')"

# a fence still starting when the wait for its lock runs out (3 s): named, exit 1
jq '.id = "bg-starting" | .attached = false' "$DF_STATE/$LIVE.json" >"$DF_STATE/bg-starting.json"
df_hold_lock bg-starting 5 || notok "hold a starting fence's lock" "not held"
out=$("$DF_BIN" break-glass off 2>&1)
check "off: a fence that stays starting is named, exit 1" "1 1" \
	"$? $(echo "$out" | grep -c 'fence bg-starting is starting')"
wait "$LOCK_PID" 2>/dev/null
rm -f "$DF_STATE/bg-starting.json"
check "status: off" "off" "$("$DF_BIN" break-glass status)"
"$DF_BIN" break-glass on --reason "again" >/dev/null 2>&1
check "off: accepted" "0" "$("$DF_BIN" break-glass off >/dev/null 2>&1; echo $?)"
check "status: off" "off" "$("$DF_BIN" break-glass status)"
echo go >"$FIFO"
wait $job
check "off: the live fence refuses again" "EPERM" "$(sed -n 3p "$DF_T/out")"
check "report: the period with its end" "github outage INC-42 1" \
	"$(jqr "$rep" '.break_glass[0] | "\(.reason) \(.to != null | if . then 1 else 0 end)"')"
check "report: blocked before and after, would-block during" "2 1" \
	"$(jqr "$rep" '"\(.summary.blocked) \(.summary.would_block)"')"
check "report: configured mode stays enforce" "enforce" "$(jqr "$rep" .mode)"

# live_job NAME: a live enforce fence whose job connects to 203.0.113.10:80
# once for each next_connect, twice in all; JOB: its pid
live_job() {
	mkfifo "$DF_T/$1.go"
	nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --mode enforce --deny 203.0.113.10 --report "$DF_T/$1.json" -- \
		sh -c "for i in 1 2; do read x <$DF_T/$1.go; $C tcp 203.0.113.10 80 >>$DF_T/$1.out; done" 2>/dev/null &
	JOB=$!
	df_track_pid $JOB
	for i in $(seq 50); do [ -n "$(find "$DF_PINS" -mindepth 2 -maxdepth 2 -name config 2>/dev/null)" ] && break; sleep 0.1; done
}
# next_connect NAME N: let the job connect once more; its Nth result
next_connect() {
	echo go >"$DF_T/$1.go"
	for i in $(seq 50); do [ "$(wc -l <"$DF_T/$1.out" 2>/dev/null || echo 0)" -ge "$2" ] && break; sleep 0.1; done
	sed -n "${2}p" "$DF_T/$1.out"
}

# an 'on' cut short once its file was written (killed, or a fence it could not
# switch): running 'on' again switches the live fences, not just "already on"
live_job retry
printf '{"periods":[{"reason":"cut short","from_ns":%s,"to_ns":0}]}\n' "$(date +%s%N)" >"$DF_STATE/.break-glass.json"
check "cut short: status says on" "1" "$("$DF_BIN" break-glass status | grep -c 'cut short')"
check "cut short: the live fence was not switched" "EPERM" "$(next_connect retry 1)"
check "on again: exit 0" "0" "$("$DF_BIN" break-glass on --reason "cut short" >/dev/null 2>&1; echo $?)"
check "on again: the live fence lets it through" "ok" "$(next_connect retry 2)"
wait $JOB
check "off after it: exit 0" "0" "$("$DF_BIN" break-glass off >/dev/null 2>&1; echo $?)"
# the same for off: cut short once its file was gone, the fences stay in audit until it runs again
"$DF_BIN" break-glass on --reason "again" >/dev/null 2>&1
live_job retry-off
rm -f "$DF_STATE/.break-glass.json"
check "off cut short: the live fence still lets it through" "ok" "$(next_connect retry-off 1)"
check "off again: exit 0" "0" "$("$DF_BIN" break-glass off >/dev/null 2>&1; echo $?)"
check "off again: the live fence refuses again" "EPERM" "$(next_connect retry-off 2)"
wait $JOB

check "on: reason required" "2" "$("$DF_BIN" break-glass on >/dev/null 2>&1; echo $?)"
check "unknown action" "2" "$("$DF_BIN" break-glass maybe >/dev/null 2>&1; echo $?)"
out=$(in_ns "$NS" "$DF_BIN" run --mode enforce --deny 203.0.113.10 --report "$DF_T/after.json" -- "$C" tcp 203.0.113.10 80 2>/dev/null)
check "after: new fences enforce" "EPERM" "$out"
check "after: their reports list no period" "0" "$(jqr "$DF_T/after.json" '.break_glass | length')"
df_check_clean "break-glass"
