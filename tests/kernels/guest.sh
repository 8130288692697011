#!/bin/sh
# The kernel matrix's test run, on one kernel: inside a qemu VM booted by
# tests/kernels/check.sh (busybox initramfs), or on the host itself inside
# private mount and network namespaces. POSIX sh: busybox runs it in the VM.
#
# Needs: DF_BIN (depfence), DF_TOOLS (dfclient, dfserver, dfdns, dfkload,
# test_bpf_dns), jq, ip (iproute2), dnsmasq, and cgroup2 and bpffs mounted.
# No network leaves the machine: loopback, and a veth pair into a namespace
# made here (198.51.100.0/24).
#
# Output, read by check.sh:
#   prog NAME SECTION loaded insns=N | failed errno=E    (dfkload)
#   log NAME: LINE                                       (the verifier's words)
#   ok - AREA: NAME | not ok - AREA: NAME: why           (AREA: load, connect,
#                                                         sendmsg, dns, report)
#   begin test_bpf_dns / its own ok lines / end test_bpf_dns rc=N seconds=N
#   info ...
set -u
: "${DF_BIN:?}" "${DF_TOOLS:?}"
# iproute2 by path: busybox's shell runs its own applets (ip, nsenter) first
IP=${DF_IP:-ip}
T=$(mktemp -d /tmp/dfk.XXXXXX)
NSPID=
cleanup() {
	for p in $(cat "$T/pids" 2>/dev/null) $NSPID; do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

ok() { echo "ok - $1"; }
notok() { echo "not ok - $1: $2"; }
check() {
	if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "expected '$2', got '$3'"; fi
}
bg() { "$@" >/dev/null 2>&1 & echo $! >>"$T/pids"; }
phase() { echo "info at $(cut -d' ' -f1 /proc/uptime) s: $1"; }

echo "info kernel $(uname -r)"

# --- which programs load, and what the verifier spent on them ---
phase "programs"
"$DF_TOOLS/dfkload" >"$T/verify" 2>&1
vrc=$?
cat "$T/verify"
grep '^prog ' "$T/verify" | while read -r _ name sec result rest; do
	if [ "$result" = loaded ]; then
		ok "load: $name ($sec), ${rest%% *}"
	else
		# the verifier's complaint: its last words before the statistics
		why=$(grep "^log $name: " "$T/verify" | sed "s/^log $name: //" |
			grep -v '^processed [0-9]* insns\|^verification time\|^stack depth' | tail -n 1)
		notok "load: $name ($sec)" "${rest#errno=}: ${why:-no verifier message}"
	fi
done | tee "$T/checks"
grep -q '^prog ' "$T/verify" || notok "load: dfkload" "no result (exit $vrc): $(tail -n 3 "$T/verify")"

# --- depfence run: real cgroups, real sockets ---
phase "setup"
cat >"$T/config.json" <<EOC
{ "report_dir": "$T/reports", "state_dir": "$T/state", "bpffs_root": "/sys/fs/bpf/dfk", "attribution_linger": 0 }
EOC
export DEPFENCE_CONFIG=$T/config.json
"$IP" link set lo up 2>/dev/null
C=$DF_TOOLS/dfclient
bg "$DF_TOOLS/dfserver" -t 600 0.0.0.0 80 443 5353
bg "$DF_TOOLS/dfserver" -t 600 :: 80 443 5353

# veth into a namespace: packets through a real device, not only loopback
NS=
unshare -n sleep 600 &
NSPID=$!
# until it is in its own namespace (TCG is slow)
i=0
while [ $i -lt 50 ] && [ "$(readlink /proc/$NSPID/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do
	sleep 0.1
	i=$((i + 1))
done
if { "$IP" link add dfk0 type veth peer name dfk1 &&
	"$IP" link set dfk1 netns "$NSPID" &&
	"$IP" addr add 198.51.100.1/24 dev dfk0 && "$IP" link set dfk0 up &&
	nsenter -t "$NSPID" -n "$IP" link set lo up &&
	nsenter -t "$NSPID" -n "$IP" addr add 198.51.100.2/24 dev dfk1 &&
	nsenter -t "$NSPID" -n "$IP" link set dfk1 up; } 2>"$T/veth.err"; then
	NS=ok
	bg nsenter -t "$NSPID" -n "$DF_TOOLS/dfserver" -t 600 198.51.100.2 80 443
	# github.com and below -> the server across the veth
	bg nsenter -t "$NSPID" -n dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv \
		--no-hosts --listen-address=198.51.100.2 --bind-interfaces --port=53 --user=root \
		--pid-file="$T/dnsmasq.pid" --address=/github.com/198.51.100.2 \
		--host-record=mirror.internal,198.51.100.10 --local-ttl=300
fi
i=0
while [ $i -lt 100 ]; do
	"$C" tcp 127.0.0.1 80 >/dev/null 2>&1 && "$C" tcp ::1 80 >/dev/null 2>&1 &&
		{ [ -z "$NS" ] || { "$C" tcp 198.51.100.2 80 >/dev/null 2>&1 &&
			[ "$("$DF_TOOLS/dfdns" 198.51.100.2 53 mirror.internal 2>/dev/null)" = "ok 198.51.100.10" ]; }; } && break
	sleep 0.2
	i=$((i + 1))
done
[ $i -lt 100 ] || echo "info test servers did not all come up"

phase "depfence run"
n=0
# fenced ARGS... -- CMD: depfence run; $out the command's output, $rep the report, $err depfence's words
fenced() {
	n=$((n + 1))
	rep=$T/r$n.json
	out=$("$DF_BIN" run --report "$rep" "$@" 2>"$T/err$n")
	err=$(grep -v '^depfence: .*report' "$T/err$n" | head -c 300 | tr '\n' ' ')
}
# event NAME EXPECTED JQ-SELECT: one event matches, shown as "verdict hook rule [name]"
event() {
	nofence && return
	if [ ! -s "$rep" ]; then
		notok "$1: report" "no report: $err"
		return
	fi
	check "$1: event" "$2" "$(jq -r "[.events[] | select($3)][0] | \"\(.verdict) \(.hook) \(.rule)\" + (if .name then \" \" + .name else \"\" end)" "$rep" 2>&1)"
}
# outcome NAME EXPECTED: the fenced command's output (depfence's words when it differs)
outcome() {
	if [ "$2" = "$out" ]; then ok "$1"; else notok "$1" "expected '$2', got '$out'${err:+ ($err)}"; fi
}
# no fence, no report: the outcome's failure already says why
nofence() { [ ! -s "$rep" ] && [ -z "$out" ] && [ -n "$err" ]; }
noevent() {
	nofence && return
	if [ ! -s "$rep" ]; then
		notok "$1: report" "no report: $err"
		return
	fi
	check "$1: no event" 0 "$(jq -r '.events | length' "$rep" 2>&1)"
}

fenced --mode enforce --deny 127.0.0.2:80 -- "$C" tcp 127.0.0.2 80
outcome "connect: tcp4 refused" EPERM
event "connect: tcp4 refused" "blocked connect4 127.0.0.2:80" '.daddr == "127.0.0.2"'
fenced --mode enforce --deny 127.0.0.2:80 -- "$C" tcp 127.0.0.1 80
outcome "connect: tcp4 allowed" ok
noevent "connect: tcp4 allowed"
fenced --mode enforce --deny '[::1]:443' -- "$C" tcp ::1 443
outcome "connect: tcp6 refused" EPERM
event "connect: tcp6 refused" "blocked connect6 [::1]:443" '.daddr == "::1"'
fenced --mode enforce --deny '[::1]:443' -- "$C" tcp ::1 80
outcome "connect: tcp6 allowed" ok
fenced --mode audit --deny 127.0.0.2:80 -- "$C" tcp 127.0.0.2 80
outcome "connect: audit lets it through" ok
event "connect: audit lets it through" "would-block connect4 127.0.0.2:80" '.daddr == "127.0.0.2"'
fenced --mode enforce --deny udp/127.0.0.1:5353 -- "$C" udp-sendto 127.0.0.1 5353
outcome "sendmsg: udp4 sendto refused" EPERM
event "sendmsg: udp4 sendto refused" "blocked sendmsg4 udp/127.0.0.1:5353" '.hook == "sendmsg4"'
fenced --mode enforce --deny 'udp/[::1]:5353' -- "$C" udp-sendmsg ::1 5353
outcome "sendmsg: udp6 sendmsg refused" EPERM
event "sendmsg: udp6 sendmsg refused" "blocked sendmsg6 udp/[::1]:5353" '.hook == "sendmsg6"'
fenced --mode enforce --deny 'udp/[::1]:5353' -- "$C" udp-sendto ::1 443
outcome "sendmsg: udp6 other port allowed" ok

if [ -n "$NS" ]; then
	R=198.51.100.2
	fenced --mode enforce --deny $R:443 -- "$C" tcp $R 443
	outcome "connect: over veth refused" EPERM
	fenced --mode enforce --deny $R:443 -- "$C" tcp $R 80
	outcome "connect: over veth allowed" ok
	fenced --mode enforce --deny '**.github.com' -- "$DF_TOOLS/dfdns" $R 53 api.github.com
	outcome "dns: question refused" EPERM
	event "dns: question refused" "blocked dns **.github.com api.github.com" '.hook == "dns"'
	fenced --mode enforce --deny '**.github.com' -- "$DF_TOOLS/dfdns" $R 53 mirror.internal
	outcome "dns: question allowed" "ok 198.51.100.10"
	# over TCP the sk_msg reader fails the write that carries a refused question
	fenced --mode enforce --deny '**.github.com' -- "$DF_TOOLS/dfdns" -m tcp $R 53 api.github.com
	outcome "dns: tcp question refused" EACCES
	event "dns: tcp question refused" "blocked dns **.github.com api.github.com" '.hook == "dns" and .proto == "tcp"'
	fenced --mode enforce --deny '**.github.com' -- "$DF_TOOLS/dfdns" -m tcp-split $R 53 api.github.com
	# the write that completes a question held back (corked) gets the verdict;
	# 5.10's sk_msg fails it with ENOENT rather than EACCES: refused all the same
	case $(uname -r) in
	5.10.*) outcome "dns: tcp question split from its prefix refused" ENOENT ;;
	*) outcome "dns: tcp question split from its prefix refused" EACCES ;;
	esac
	event "dns: tcp question split from its prefix refused" "blocked dns **.github.com api.github.com" '.hook == "dns" and .proto == "tcp"'
	fenced --mode enforce --deny '**.github.com' -- "$DF_TOOLS/dfdns" -m tcp-split $R 53 mirror.internal
	outcome "dns: tcp question split from its prefix allowed" "ok 198.51.100.10"
	fenced --mode enforce --deny '**.github.com' -- "$DF_TOOLS/dfdns" -m tcp $R 53 mirror.internal
	outcome "dns: tcp question allowed" "ok 198.51.100.10"
	# the answer teaches the fence github.com -> 198.51.100.2; the connect is judged by name
	fenced --mode enforce --deny tcp/github.com:443 -- sh -c "'$DF_TOOLS/dfdns' $R 53 github.com && '$C' tcp $R 443"
	out=$(echo $out)
	outcome "dns: provenance refuses the answer's address" "ok $R EPERM"
	event "dns: provenance refuses the answer's address" "blocked connect4 tcp/github.com:443 github.com" '.hook == "connect4"'
else
	notok "connect: veth namespace" "$(cat "$T/veth.err")"
	notok "dns: veth namespace" "no namespace, no resolver"
fi

# --- the pool: a fence with the same rules as a finished one takes its
# verified programs (renamed on bpffs, emptied maps, links made anew) ---
phase "pool"
P=/sys/fs/bpf/dfkp
sed "s|\"bpffs_root\": \"/sys/fs/bpf/dfk\", \"attribution_linger\": 0|\"bpffs_root\": \"$P\", \"attribution_linger\": 60|" \
	"$T/config.json" >"$T/pool.json"
sed "s|\"attribution_linger\": 60|\"attribution_linger\": 0, \"fence_pool\": 0|" "$T/pool.json" >"$T/pool-off.json"
DEPFENCE_CONFIG=$T/pool.json
PR="--mode enforce --deny 127.0.0.2:80 --deny **.github.com"
# shellcheck disable=SC2086
fenced $PR -- "$C" tcp 127.0.0.2 80
outcome "pool: the first fence holds" EPERM
check "pool: its programs are kept" 1 "$(ls "$P/@pool" 2>/dev/null | wc -l)"
# shellcheck disable=SC2086
fenced $PR -- sh -c "ls '$P/@pool' | wc -l; '$C' tcp 127.0.0.2 80; '$C' tcp 127.0.0.1 80"
out=$(echo $out)
outcome "pool: the next fence took them (the pool empty meanwhile) and holds" "0 EPERM ok"
check "pool: its report has its own event only" "1 blocked" "$(jq -r '"\(.events | length) \(.events[0].verdict)"' "$rep" 2>&1)"
check "pool: kept again" 1 "$(ls "$P/@pool" 2>/dev/null | wc -l)"
if [ -n "$NS" ]; then
	# shellcheck disable=SC2086
	fenced $PR -- sh -c "ls '$P/@pool' | wc -l; '$DF_TOOLS/dfdns' $R 53 api.github.com; '$DF_TOOLS/dfdns' $R 53 mirror.internal"
	out=$(echo $out)
	outcome "pool: names judged by taken programs (keyed anew)" "0 EPERM ok 198.51.100.10"
	event "pool: names judged by taken programs (keyed anew)" "blocked dns **.github.com api.github.com" '.hook == "dns"'
fi
DEPFENCE_CONFIG=$T/pool-off.json
"$DF_BIN" gc >/dev/null 2>&1
check "pool: gc with the pool off leaves nothing" "" "$(ls -A "$P" 2>&1)"
rmdir "$P" 2>/dev/null
DEPFENCE_CONFIG=$T/config.json

# A kernel that lacks what a program needs: depfence must say what, not dump or crash.
if grep -q ' failed ' "$T/verify"; then
	fenced --mode enforce -- true
	echo "info depfence on this kernel: $(cat "$T/err$n" | head -c 400 | tr '\n' ' ')"
	missing=$(grep '^not ok - load: ' "$T/checks" | grep -o 'bpf_[a-z0-9_]*#[0-9]*' | head -n 1)
	missing=${missing%#*}
	if [ -n "$missing" ] && grep -q "$missing" "$T/err$n"; then
		ok "load: depfence names what the kernel lacks ($missing)"
	else
		notok "load: depfence names what the kernel lacks" "the verifier refused ${missing:-a program}; depfence said: $(head -c 200 "$T/err$n" | tr '\n' ' ')"
	fi
fi
[ -z "$(ls -A /sys/fs/bpf/dfk 2>/dev/null)" ] && ok "report: no pins left" || notok "report: no pins left" "$(ls /sys/fs/bpf/dfk)"

# --- BPF_PROG_TEST_RUN table of the DNS programs ---
phase "test_bpf_dns"
echo "begin test_bpf_dns"
s=$(date +%s)
# (libbpf's verifier dump on stderr: only its end, the serial console is slow)
"$DF_TOOLS/test_bpf_dns" 2>"$T/dns.err"
rc=$?
tail -n 5 "$T/dns.err" | sed 's/^/info test_bpf_dns stderr: /' 
echo "end test_bpf_dns rc=$rc seconds=$(($(date +%s) - s))"
