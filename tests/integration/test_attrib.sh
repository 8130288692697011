#!/bin/bash
# Process attribution: which process made each call, and the chain of
# processes above it, from real jobs in real cgroups, inside a network
# namespace made here (test hosts on its lo), so no packet leaves.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/attrib"
df_setup

NS=$(df_netns attrib) || { notok "create netns" "ip netns add failed"; exit 1; }
df_dns "$NS" || { notok "dnsmasq" "did not answer"; exit 1; }
df_servers "$NS" 80 443 || { notok "test servers" "did not come up"; exit 1; }
C=$DF_TOOLS/dfclient
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
ARROW=$(printf ' \342\206\222 ')

# fenced ARGS... -- CMD: depfence run in the namespace; report in $rep, stderr in $DF_T/stderr
fenced() {
	rep=$DF_T/r-$RANDOM$RANDOM.json
	nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --report "$rep" "$@" >/dev/null 2>"$DF_T/stderr"
}
ev() { jqr "$rep" "$1"; }

# script NAME BODY: an executable /bin/sh script in $DF_T
script() {
	printf '#!/bin/sh\n%s\n' "$2" >"$DF_T/$1"
	chmod +x "$DF_T/$1"
}

# --- a tool forks a short-lived child that connects and exits at once ---
script deploy.sh "echo \$\$ >$DF_T/deploy.pid
$DF_T/servicectl upgrade --now
sleep 1"
script servicectl "$C tcp 203.0.113.10 443 >$DF_T/chain.out &
wait"
fenced --mode enforce --deny 203.0.113.10:443 -- "$DF_T/deploy.sh"
check "chain: the child was refused" "EPERM" "$(cat "$DF_T/chain.out" 2>/dev/null)"
check "chain: one event" "1" "$(ev '.events | length')"
check "chain: the child's cmdline" "$C tcp 203.0.113.10 443" "$(ev '.events[0].process.cmdline')"
check "chain: the child's exe" "$C" "$(ev '.events[0].process.exe')"
check "chain: not truncated" "false" "$(ev '.events[0].process.truncated')"
check "chain: text" "deploy.sh${ARROW}servicectl${ARROW}dfclient" "$(ev '.events[0].process.chain')"
check "chain: ancestry from the first process to the caller" "deploy.sh servicectl dfclient" \
	"$(ev '[.events[0].process.ancestry[].comm] | join(" ")')"
check "chain: ancestry starts at the fence's first process" "$(cat "$DF_T/deploy.pid" 2>/dev/null)" \
	"$(ev '.events[0].process.ancestry[0].pid')"
check "chain: ancestry ends at the caller" "$(ev '.events[0].process.pid')" \
	"$(ev '.events[0].process.ancestry[-1].pid')"
check "chain: ancestors' cmdlines" "/bin/sh $DF_T/deploy.sh|/bin/sh $DF_T/servicectl upgrade --now" \
	"$(ev '[.events[0].process.ancestry[0:2][].cmdline] | join("|")')"
check "chain: complete, not reparented, not forked" "true false false" \
	"$(ev '.events[0].process | "\(.ancestry_complete) \(.reparented) \(.forked)"')"
check "chain: nothing lost" "0" "$(ev '.summary.attribution_lost')"
check "chain: the summary line names the chain" "1" \
	"$(grep -c "blocked 203.0.113.10:443 by deploy.sh${ARROW}servicectl${ARROW}dfclient" "$DF_T/stderr")"

# --- a script run through env ("#!/usr/bin/env sh") is named as the script ---
printf '#!/usr/bin/env sh\n%s\n' "$C tcp 203.0.113.10 443 >/dev/null; true" >"$DF_T/envtool.sh"
chmod +x "$DF_T/envtool.sh"
fenced --mode enforce --deny 203.0.113.10:443 -- "$DF_T/envtool.sh"
check "env script: the chain names the script" "envtool.sh${ARROW}dfclient" "$(ev '.events[0].process.chain')"
check "env script: the ancestry keeps comm, and the name" "sh envtool.sh sh $DF_T/envtool.sh" \
	"$(ev '.events[0].process.ancestry[0] | "\(.comm) \(.name) \(.cmdline)"')"

# --- threads: a call from a thread is the process's ---
cat >"$DF_T/threads.py" <<EOF
import os, socket, threading
def call():
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect(("203.0.113.10", 443)); r = "ok"
    except OSError as e:
        r = "EPERM" if e.errno == 1 else str(e)
    open("$DF_T/threads.out", "w").write("%d %d %s" % (os.getpid(), threading.get_native_id(), r))
t = threading.Thread(target=call); t.start(); t.join()
EOF
fenced --mode enforce --deny 203.0.113.10:443 -- "$PY" "$DF_T/threads.py"
read -r tpid ttid tout <"$DF_T/threads.out"
check "threads: the thread was refused" "EPERM" "$tout"
check "threads: pid is the process, tid the thread" "$tpid $tpid $ttid" \
	"$(ev '.events[0].process | "\(.pid) \(.tgid) \(.tid)"')"
check "threads: the thread is not the process" "1" "$([ "$tpid" != "$ttid" ] && echo 1)"
check "threads: the process's cmdline" "$PY $DF_T/threads.py" "$(ev '.events[0].process.cmdline')"

# --- re-exec: each call carries the program that made it ---
cat >"$DF_T/reexec.py" <<EOF
import os, socket
s = socket.socket()
try:
    s.connect(("203.0.113.10", 443))
except OSError:
    pass
open("$DF_T/reexec.pid", "w").write(str(os.getpid()))
os.execv("$C", ["dfclient", "tcp", "203.0.113.10", "443"])
EOF
fenced --mode enforce --deny 203.0.113.10:443 -- sh -c "$PY $DF_T/reexec.py; true"
rpid=$(cat "$DF_T/reexec.pid" 2>/dev/null)
check "re-exec: two events, one process" "2 $rpid" "$(ev '"\(.events | length) " + ([.events[].process.pid] | unique | map(tostring) | join(" "))')"
check "re-exec: each event has the cmdline of its time" "$PY $DF_T/reexec.py|dfclient tcp 203.0.113.10 443" \
	"$(ev '[.events[].process.cmdline] | sort | join("|")')"
check "re-exec: exe follows the exec" "$(printf '%s\n' "$PY" "$C" | sort | paste -sd'|')" \
	"$(ev '[.events[].process.exe] | sort | join("|")')"
check "re-exec: both under the shell" "sh${ARROW}dfclient|sh${ARROW}python3" \
	"$(ev '[.events[].process.chain] | sort | join("|")')"

# --- a double-forked daemon: setsid, fork, the middle process exits ---
cat >"$DF_T/daemon.py" <<EOF
import os, socket, sys, time
if os.fork() > 0:
    sys.exit(0)
os.setsid()
if os.fork() > 0:
    os._exit(0)
time.sleep(0.3)
s = socket.socket()
try:
    s.connect(("203.0.113.10", 443)); r = "ok"
except OSError as e:
    r = "EPERM" if e.errno == 1 else str(e)
open("$DF_T/daemon.out", "w").write("%d %d %s" % (os.getpid(), os.getppid(), r))
EOF
script daemon.sh "$PY $DF_T/daemon.py
for i in \$(seq 50); do [ -s $DF_T/daemon.out ] && break; sleep 0.1; done"
fenced --mode enforce --deny 203.0.113.10:443 -- "$DF_T/daemon.sh"
read -r dpid dppid dout <"$DF_T/daemon.out"
check "daemon: refused" "EPERM" "$dout"
check "daemon: the event is the daemon's" "$dpid" "$(ev '.events[0].process.pid')"
check "daemon: the kernel reparented it" "1" "$([ -n "$dppid" ] && [ "$dppid" != "$(ev '.events[0].process.ppid')" ] && echo 1)"
check "daemon: the report says it was reparented" "true" "$(ev '.events[0].process.reparented')"
check "daemon: forked without exec, runs the program it was forked from" "true $PY $DF_T/daemon.py" \
	"$(ev '.events[0].process | "\(.forked) \(.cmdline)"')"
check "daemon: chain from the fence's first process" "daemon.sh${ARROW}python3${ARROW}python3${ARROW}python3" \
	"$(ev '.events[0].process.chain')"
check "daemon: its ancestors had exited" "false true true false" \
	"$(ev '[.events[0].process.ancestry[].exited] | map(tostring) | join(" ")')"
check "daemon: ancestry complete" "true" "$(ev '.events[0].process.ancestry_complete')"

# --- a long argv is cut at the documented limit, and says so ---
long=$(head -c 700 /dev/zero | tr '\0' x)
cat >"$DF_T/conn.py" <<EOF
import socket
s = socket.socket()
try:
    s.connect(("203.0.113.10", 443))
except OSError:
    pass
EOF
fenced --mode enforce --deny 203.0.113.10:443 -- "$PY" "$DF_T/conn.py" "$long"
check "truncated: marked" "true" "$(ev '.events[0].process.truncated')"
check "truncated: cmdline keeps the start" "1" \
	"$(ev ".events[0].process.cmdline | startswith(\"$PY $DF_T/conn.py xxxx\") | if . then 1 else 0 end")"
check "truncated: at most 512 bytes of argv" "1" "$(ev '.events[0].process.cmdline | length <= 512 | if . then 1 else 0 end')"

# --- DNS questions are attributed the same way ---
script ask.sh "$DF_TOOLS/dfdns 203.0.113.53 53 github.com >$DF_T/dns.out 2>&1; true"
fenced --mode enforce --deny github.com -- "$DF_T/ask.sh"
check "dns: the question was refused" "dns github.com ask.sh${ARROW}dfdns" \
	"$(ev '.events[] | select(.hook == "dns") | "\(.hook) \(.name) \(.process.chain)"' | head -n 1)"
check "dns: the asker's cmdline" "$DF_TOOLS/dfdns 203.0.113.53 53 github.com" \
	"$(ev '[.events[] | select(.hook == "dns")][0].process.cmdline')"

# --- two fences side by side: each report holds only its own processes ---
for s in a b; do
	script "side$s.sh" "$C tcp 203.0.113.10 443 >/dev/null
sleep 1.5
$C tcp 203.0.113.10 443 >/dev/null"
done
repa=$DF_T/side-a.json repb=$DF_T/side-b.json
nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --mode enforce --deny 203.0.113.10:443 --report "$repa" -- "$DF_T/sidea.sh" 2>/dev/null &
pa=$!
nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --mode enforce --deny 203.0.113.10:443 --report "$repb" -- "$DF_T/sideb.sh" 2>/dev/null &
pb=$!
df_track_pid $pa
df_track_pid $pb
sleep 0.7
check "side by side: one set of attribution programs on the host" "1" \
	"$(find "$DF_PINS" -mindepth 1 -maxdepth 1 -name '@attrib' | wc -l)"
check "side by side: two slots in use" "2" \
	"$(bpftool -j map dump pinned "$DF_PINS/@attrib/slots" 2>/dev/null | jq '[.[] | select(.formatted.value.gen != 0)] | length')"
wait $pa
wait $pb
for s in a b; do
	o=$([ $s = a ] && echo b || echo a)
	r=$DF_T/side-$s.json
	check "side by side $s: its two calls" "2" "$(jqr "$r" '.events | length')"
	check "side by side $s: only its own chains" "side$s.sh${ARROW}dfclient side$s.sh${ARROW}dfclient" \
		"$(jqr "$r" '[.events[].process.chain] | join(" ")')"
	check "side by side $s: nothing of the other job" "0" "$(grep -c "side$o" "$r")"
done
df_check_clean "side by side: the last fence removed the attribution programs"

# --- processes outside fences are not followed ---
script inside.sh "sleep 3"
nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --mode enforce --deny 203.0.113.10 --report "$DF_T/in.json" -- "$DF_T/inside.sh" 2>/dev/null &
pin=$!
df_track_pid $pin
for i in $(seq 50); do [ -e "$DF_PINS/@attrib/procs" ] && break; sleep 0.1; done
sleep 0.3
sleep 5 &
outside=$!
df_track_pid $outside
in_ns "$NS" "$C" tcp 203.0.113.10 80 >/dev/null
sh -c 'true'
procs=$(bpftool -j map dump pinned "$DF_PINS/@attrib/procs" 2>/dev/null | jq -r '.[].formatted.key' | sort -n | tr '\n' ' ')
imgs=$(bpftool -j map dump pinned "$DF_PINS/@attrib/images" 2>/dev/null | jq -r '.[].formatted.key.tgid' | sort -n | tr '\n' ' ')
cg=$(jqr "$DF_STATE/$(ls "$DF_STATE" | grep '^run-.*\.json$' | head -n 1)" .cgroup)
inside=$(sort -n "$cg/cgroup.procs" 2>/dev/null | tr '\n' ' ')
check "outside: the host map holds the fenced processes" "$inside" "$procs"
check "outside: a process outside the fence is not in the host map" "0" \
	"$(echo " $procs $imgs " | grep -c " $outside ")"
wait $pin
kill $outside 2>/dev/null

# --- a job that enters the fence after createRuntime (runc exec) is attributed ---
CG2=$(df_cg2root)
HCG=$CG2/df$$-attrib
mkdir "$HCG" && df_track_cgroup "$HCG"
mkfifo "$DF_T/go"
script hookjob.sh "$C tcp 203.0.113.10 443 >/dev/null"
nsenter --net="/run/netns/$NS" -- sh -c "read go <$DF_T/go; exec $DF_T/hookjob.sh" &
hpid=$!
df_track_pid $hpid
echo $hpid >"$HCG/cgroup.procs"
jq -nc --argjson pid $hpid '{ociVersion: "1.0.2", id: "attrib-hook", status: "creating", bundle: "/nonexistent",
	pid: $pid, annotations: {"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443"}}' |
	"$DF_BIN" hook createRuntime 2>"$DF_T/err"
check "hook: createRuntime" "0" "$?"
timeout 5 sh -c "echo go >$DF_T/go"
wait $hpid
nsenter --net="/run/netns/$NS" -- sh -c "echo \$\$ >$HCG/cgroup.procs; exec $C tcp 203.0.113.10 443" >/dev/null
rmdir "$HCG"
echo '{"id": "attrib-hook"}' | "$DF_BIN" hook poststop 2>>"$DF_T/err"
rep=$DF_REPORTS/attrib-hook.json
check "hook: the container's process, exec'd after createRuntime" "hookjob.sh${ARROW}dfclient" \
	"$(ev '[.events[].process.chain] | map(select(contains("hookjob"))) | .[0]')"
check "hook: a process that joined the cgroup later" "dfclient|$C tcp 203.0.113.10 443|true" \
	"$(ev '[.events[].process | select(.chain == "dfclient")][0] | "\(.chain)|\(.cmdline)|\(.ancestry_complete)"')"
df_check_clean "hook"

# --- bounded: past the fence's share, calls are still reported, the loss counted ---
# The share (4096 programs at once) is lowered for this fence through the
# pinned slots map while its job waits, so a few processes cross it.
mkfifo "$DF_T/many.go"
cat >"$DF_T/many.py" <<EOF
import os, socket
open("$DF_T/many.ready", "w").write("1")
open("$DF_T/many.go").read()
for i in range(20):
    pid = os.fork()
    if pid == 0:
        s = socket.socket()
        try:
            s.connect(("203.0.113.10", 443))
        except OSError:
            pass
        os._exit(0)
    os.waitpid(pid, 0)
EOF
rep=$DF_T/many.json
nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --mode enforce --deny 203.0.113.10:443 --report "$rep" -- \
	"$PY" "$DF_T/many.py" 2>/dev/null &
pm=$!
df_track_pid $pm
for i in $(seq 100); do [ -s "$DF_T/many.ready" ] && break; sleep 0.1; done
slot=$(jqr "$DF_STATE/$(ls "$DF_STATE" | grep '^run-.*\.json$' | head -n 1)" .attrib.slot)
cur=$(bpftool -j map lookup pinned "$DF_PINS/@attrib/slots" key "$slot" 0 0 0 2>/dev/null)
held=$(echo "$cur" | jq '.formatted.value.images')
# images_max is the third __u32 of struct df_slot: bytes 8..11, little endian
val=$(echo "$cur" | jq -r --argjson m $((held + 3)) \
	'.value | .[8] = ($m % 256 | tostring) | .[9] = ($m / 256 | floor | tostring) | .[10] = "0" | .[11] = "0" | join(" ")')
bpftool map update pinned "$DF_PINS/@attrib/slots" key "$slot" 0 0 0 value $val
check "bound: share lowered to 3 more programs" "$((held + 3))" \
	"$(bpftool -j map lookup pinned "$DF_PINS/@attrib/slots" key "$slot" 0 0 0 2>/dev/null | jq '.formatted.value.images_max')"
timeout 5 sh -c "echo go >$DF_T/many.go"
wait $pm
check "bound: every call reported" "20 0" "$(ev '"\(.events | length) \(.summary.dropped_records)"')"
check "bound: what did not fit is counted" "17" "$(ev '.summary.attribution_lost')"
check "bound: those events keep pid and comm, without cmdline" "17 17" \
	"$(ev '[.events[] | select(.process.cmdline == null)] | "\(length) \([.[] | select(.process.pid > 0 and .process.comm == "python3")] | length)"')"
check "bound: the others have their chain" "3" "$(ev "[.events[] | select(.process.chain == \"python3${ARROW}python3\")] | length")"
check "bound: a note says so" "1" "$(ev '[.notes[] | select(test("attribution_lost"))] | length')"

# --- attribution_linger: the programs outlive the last fence, for a host
# starting one container after another ---
jq '.attribution_linger = 2' "$DEPFENCE_CONFIG" >"$DF_T/linger.json"
lrun() { DEPFENCE_CONFIG=$DF_T/linger.json "$DF_BIN" "$@" 2>/dev/null; }
prog_of() { bpftool -j link show pinned "$DF_PINS/@attrib/exec" 2>/dev/null | jq -r .prog_id; }
lrun run --mode observe --report "$DF_T/l1.json" -- true
first=$(prog_of)
check "linger: kept after the last fence" "1" "$([ -n "$first" ] && [ "$first" != null ] && echo 1)"
check "linger: marked idle in the state dir" "1" "$([ -s "$DF_STATE/@attrib.idle" ] && echo 1)"
lrun run --mode observe --report "$DF_T/l2.json" -- "$C" tcp 127.0.0.1 9 >/dev/null
check "linger: the next fence uses the same programs (no second load)" "$first" "$(prog_of)"
check "linger: ... and they attribute its events" "$C tcp 127.0.0.1 9" \
	"$(jqr "$DF_T/l2.json" '.events[0].process.cmdline')"
# --- slots: read in one batch (scan_slots); a fence takes the first free
# one, and with none free it holds without attribution. No fence is live
# here: the slots written are the test's own, and are cleared after ---
slots_batch() { # FIRST LAST GEN: one bpftool batch for the slots FIRST..LAST
	local i
	for i in $(seq "$1" "$2"); do
		echo "map update pinned $DF_PINS/@attrib/slots key $((i % 256)) $((i / 256)) 0 0 value $3 0 0 0 $(printf '0 %.0s' $(seq 44))"
	done >"$DF_T/slots.batch"
	bpftool batch file "$DF_T/slots.batch" >/dev/null
}
taken() { bpftool -j map dump pinned "$DF_PINS/@attrib/slots" 2>/dev/null | jq '[.[] | select(.formatted.value.gen != 0)] | length'; }
slots_batch 0 2 7 && slots_batch 4 5 7
check "slots: five taken by hand" "5" "$(taken)"
lrun run --mode observe --report "$DF_T/s1.json" -- sh -c "cat $DF_STATE/run-*.json" >"$DF_T/s1.state"
check "slots: the fence took the first free one, behind taken ones" "3" "$(jq .attrib.slot "$DF_T/s1.state")"
check "slots: ... and gave it back" "5" "$(taken)"
slots_batch 0 255 7
check "slots: all 256 taken" "256" "$(taken)"
lrun run --mode enforce --deny 127.0.0.1:9 --report "$DF_T/s2.json" -- "$C" tcp 127.0.0.1 9 >"$DF_T/s2.out"
check "slots: none free: the fence still starts, and holds" "EPERM" "$(cat "$DF_T/s2.out")"
check "slots: ... its report has the refusal, named by pid and comm" "1 dfclient" \
	"$(jq -r '"\(.summary.blocked) \(.events[0].process.comm)"' "$DF_T/s2.json")"
check "slots: ... its report says why there is no attribution" "1" \
	"$(jq '[.notes[] | select(test("all taken"))] | length' "$DF_T/s2.json")"
slots_batch 0 255 0
check "slots: cleared again" "0" "$(taken)"
lrun gc >"$DF_T/gc1.out"
check "linger: gc leaves them while they linger" "$first" "$(prog_of)"
sleep 3
lrun gc >"$DF_T/gc2.out"
check "linger: gc removes them once idle longer" "1" "$(grep -c 'attribution programs no fence uses' "$DF_T/gc2.out")"
check "linger: ... pins and idle mark gone" "" "$(ls "$DF_PINS/@attrib" "$DF_STATE/@attrib.idle" 2>/dev/null)"
df_check_clean "end"
