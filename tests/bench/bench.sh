#!/bin/bash
# make bench: what the fence costs, side by side with no fence and with what
# an operator would use instead, in one run. Every comparison is interleaved
# (A, B, A, B...) so noise from other work on the machine hits both sides;
# results are medians, spreads and ratios. Writes tests/bench/RESULTS.md and
# tests/bench/results.json (through tests/bench/report.py) and prints the
# tables. A measurement, not a test: it asserts no timing. Exit 0 when every
# section measured, 1 when one could not (the reason is in the results), 2
# when nothing could run (not root, no cgroup2, not built).
#
#   1 connect: loopback TCP connect+close rate, unfenced vs depfence (enforce,
#     10..100,000 CIDR deny rules that do not match) vs nftables (the same
#     prefixes, an interval set, `socket cgroupv2`), all in private netns
#   2 bulk: iperf3 over loopback, fenced vs unfenced
#   3 dns: dfdns -n against dnsmasq, fenced (name rules that do not match) vs not
#   4 hook: tests/bench/hook_cost.sh (runc run /bin/true, 30 runs each)
#   6 verifier: load time and verified instructions per program (dfverify)
#   5 scale: N fences at once through `depfence hook createRuntime` (last: it
#     gets the time that is left)
#
# In 1-3 each condition is one long-lived process (a "round agent"), set up
# once -- its fence loaded, its nft table filled -- and told over a FIFO when
# to run a round; the rounds of all conditions alternate in a rotating order
# with nothing set up in between, after one warm-up round each.
#
# Environment: BUILD (default build/); CONNECT_ROUNDS (10) of CONNECT_SECS (1);
# ROUNDS (5) of SECS (2, whole seconds) for bulk; DNS_ROUNDS (8) of DNS_COUNT
# (20000) questions; HOOK_N (30); SCALE_N (1000); TOTAL_BUDGET (570 s: the scale
# section stops creating fences when the rest would not fit); SECTIONS (default
# "connect bulk dns hook verifier scale"); OUT (default tests/bench); KEEP_RAW
# (a directory that receives the raw numbers, for debugging the report).
set -u
cd "$(dirname "$0")/../.." || exit 2
SRC=$PWD
BUILD=${BUILD:-build}
BUILD=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "bench: build dir not found; run make bench" >&2; exit 2; }
BIN=$BUILD/depfence
TOOLS=$BUILD/tests
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-2}
SCALE_N=${SCALE_N:-1000}
TOTAL_BUDGET=${TOTAL_BUDGET:-570}
HOOK_N=${HOOK_N:-30}
SECTIONS=${SECTIONS:-connect bulk dns hook verifier scale}
SIZES=(10 1000 10000 100000)
OUT=${OUT:-$SRC/tests/bench}
START=$EPOCHSECONDS

die2() { echo "bench: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die2 "needs root (cgroups, BPF, network namespaces)"
CG2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
[ -n "$CG2" ] || die2 "no cgroup2 mount"
for f in "$BIN" "$TOOLS/dfconnloop" "$TOOLS/dfdns" "$TOOLS/dfverify"; do
	[ -x "$f" ] || die2 "$f is not built (make BUILD=$BUILD bench builds it)"
done
for c in ip nsenter jq python3 bpftool; do
	command -v "$c" >/dev/null || die2 "$c is missing (tests/deps.sh bench installs it)"
done

T=$(mktemp -d /tmp/depfence-bench.XXXXXX)
R=$T/raw
mkdir -p "$R" "$T/reports" "$T/state"
PINS=/sys/fs/bpf/depfence-bench-$$
CGB=$CG2/depfence-bench-$$
NS=dfb$$
PORT=7000
pids=()
netns=()

cleanup() {
	local p n d
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	for n in "${netns[@]}"; do ip netns del "$n" 2>/dev/null; done
	if [ -d "$CGB" ]; then
		# deepest first; end whatever is left in our own cgroups, bounded
		while read -r d; do
			for n in 1 2 3 4 5; do
				[ -s "$d/cgroup.procs" ] || break
				xargs -r kill -9 <"$d/cgroup.procs" 2>/dev/null
				sleep 0.1
			done
			rmdir "$d" 2>/dev/null
		done < <(find "$CGB" -mindepth 1 -depth -type d 2>/dev/null; echo "$CGB")
	fi
	# pins first (removing a link pin detaches its program), then the dirs
	[ -d "$PINS" ] && find "$PINS" -mindepth 1 -depth -delete 2>/dev/null
	rmdir "$PINS" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$T/config.json" <<EOC
{ "report_dir": "$T/reports", "state_dir": "$T/state", "bpffs_root": "$PINS/run", "attribution_linger": 0 }
EOC
export DEPFENCE_CONFIG=$T/config.json
mkdir -p "$CGB/plain" "$CGB/nft" || die2 "cannot create cgroups under $CG2"

status() { echo "$1 $2" >>"$R/status"; } # SECTION ok|failed|partial [why]
note() { echo "$1 $2" >>"$R/notes"; }       # SECTION free text
log() { printf '[%3ds] %s\n' $((EPOCHSECONDS - START)) "$*" >&2; }
has() { [[ " $SECTIONS " == *" $1 "* ]]; }

# Who else is using the machine: noise the interleaving has to absorb.
load_sample() { echo "$1 $(cut -d' ' -f1-3 /proc/loadavg)" >>"$R/load"; }
{
	echo "nproc $(nproc)"
	echo "kernel $(uname -r)"
	echo "cpu $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
	echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "mem_mib $(awk '/^MemTotal/ {print int($2 / 1024)}' /proc/meminfo)"
	# other processes using the CPUs (lifetime average), not the bench's own
	echo "busy $(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 20 && $2 !~ /^(ps|awk|bench\.sh|make)$/ {printf "%s%s (%s%%)", n++ ? ", " : "", $2, $1}')"
	echo "depfence $("$BIN" version 2>/dev/null)"
	echo "rounds $ROUNDS"
	echo "secs $SECS"
} >"$R/meta"
load_sample start

# ---- shared set-up: rules, namespaces, servers ----

# N CIDR rules that never match loopback: /24, /28 and /32 prefixes in
# distinct /24 blocks spread over the address space (no overlaps, so nft
# takes them as one interval set), never 0/8, 127/8 or 224/3.
gen_rules() {
	awk -v n="$1" 'BEGIN {
		for (i = 0; c < n; i++) {
			j = (i * 2654435761) % 16777216
			a = int(j / 65536)
			if (a == 0 || a == 127 || a >= 224)
				continue
			b = int(j / 256) % 256; d = j % 256; t = c % 4
			if (t == 0) print a "." b "." d ".0/24"
			else if (t == 1) print a "." b "." d "." (16 * (c % 16)) "/28"
			else print a "." b "." d "." (c % 256) "/32"
			c++
		}
	}'
}
# --deny arguments, one a line, each well under the kernel's 128 KiB limit
chunk_rules() { awk '{ if (len && len + length($0) > 100000) { printf "\n"; len = 0 } printf "%s%s", (len ? "," : ""), $0; len += length($0) + 1 } END { if (len) printf "\n" }'; }
for n in "${SIZES[@]}"; do
	gen_rules "$n" >"$T/rules.$n"
	chunk_rules <"$T/rules.$n" >"$T/deny.$n"
done
# the fenced policy for bulk and DNS: 10,000 CIDR rules and two name rules,
# none of which match what the job talks to
{ cat "$T/deny.10000"; echo "blocked.example.org,**.evil.example"; } >"$T/deny.policy"
deny_args() { local l; DENY=(); while read -r l; do DENY+=(--deny "$l"); done <"$1"; }

mk_netns() {
	ip netns add "$1" || return 1
	netns+=("$1")
	ip -n "$1" link set lo up
}
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" -- "$@"; }
# IN_CG CGDIR CMD...: (a command prefix) CMD with its process moved into CGDIR first
IN_CG=(sh -c 'echo 0 >"$0/cgroup.procs" && exec "$@"')
# start_server NS: the connect-loop listener on 127.0.0.1:$PORT in NS
start_server() {
	local i
	nsenter --net="/run/netns/$1" -- "$TOOLS/dfconnloop" -s -t 900 127.0.0.1 "$PORT" >"$T/srv.$1" 2>&1 &
	pids+=($!)
	for i in $(seq 50); do grep -q ready "$T/srv.$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
mk_netns "$NS" || die2 "ip netns add failed"
start_server "$NS" || die2 "connect server did not start"
# clean up what a depfence run that failed to finish left (pins, state)
df_leftovers() {
	local left
	left=$(find "$PINS/run" -mindepth 1 -type f 2>/dev/null | wc -l)
	[ -d "$PINS/run" ] && find "$PINS/run" -mindepth 1 -depth -delete 2>/dev/null
	rm -f "$T"/state/*.json
	echo "$left"
}
# ---- 1. connect cost ----
# One long-lived dfconnloop -r per condition (its fence or nft table set up
# once), driven through FIFOs: a line in starts a round, its rate comes out.
# Rounds of all conditions then alternate with nothing set up between them.
declare -A AW AR APID
# start_agent NAME CMD...: CMD (exec'd, so $! is its pid) on the FIFOs
start_agent() {
	local name=$1 w r
	shift
	mkfifo "$T/ag.$name.in" "$T/ag.$name.out" || return 1
	# the other agents' pipe ends stay out of it, or they would never see their end of input
	(
		for w in "${AW[@]}" "${AR[@]}"; do eval "exec $w>&-"; done
		exec "$@"
	) <"$T/ag.$name.in" >"$T/ag.$name.out" 2>"$T/ag.$name.err" &
	APID[$name]=$!
	pids+=($!)
	exec {w}>"$T/ag.$name.in"
	exec {r}<"$T/ag.$name.out"
	AW[$name]=$w
	AR[$name]=$r
}
# agent_round NAME: one round; prints the rate, or nothing when the agent is gone
agent_round() {
	local line
	(trap '' PIPE; echo go >&"${AW[$1]}") 2>/dev/null || return 1
	read -t 120 -r line <&"${AR[$1]}" || return 1
	# "connects/s N", "queries/s N", "bps N"
	case $line in
	*" "[0-9]*) echo "${line#* }" ;;
	*) echo "$line" >>"$T/ag.$1.err"; return 1 ;;
	esac
}
# stop_agent NAME: end of input, then its exit status (bounded: killed after 60 s)
stop_agent() {
	local w=${AW[$1]} r=${AR[$1]} i rc
	exec {w}>&-
	for i in $(seq 600); do kill -0 "${APID[$1]}" 2>/dev/null || break; sleep 0.1; done
	kill "${APID[$1]}" 2>/dev/null
	wait "${APID[$1]}" 2>/dev/null
	rc=$?
	exec {r}<&-
	unset "APID[$1]" "AW[$1]" "AR[$1]"
	return $rc
}

# agent_cgid AGENT: the id of the cgroup of AGENT's loop (for depfence run, its fence's)
agent_cgid() {
	local child cg
	# depfence run's child, or the agent itself (a loop the hook fenced)
	child=$(pgrep -P "${APID[$1]}" | head -n 1)
	[ -n "$child" ] || child=${APID[$1]}
	cg=$(awk -F: '$1 == "0" {print $3}' "/proc/$child/cgroup" 2>/dev/null)
	stat -c %i "$CG2$cg" 2>/dev/null
}

# detach_skb AGENT: detach the cgroup_skb links of the fence around AGENT's loop
detach_skb() {
	local id links x n=0
	id=$(agent_cgid "$1") || { note connect "$1: cannot find its cgroup"; return 1; }
	links=$(bpftool --json link show | jq --argjson c "$id" '.[] | select(.cgroup_id == $c and (.attach_type | test("egress|ingress"))) | .id')
	for x in $links; do bpftool link detach id "$x" && n=$((n + 1)); done
	[ "$n" = 2 ] || { note connect "$1: detached $n cgroup_skb links, not 2: row dropped"; return 1; }
}

# prog_cost SECTION AGENT: one more round of AGENT, not counted, with
# kernel.bpf_stats_enabled on, and what each program of its fence ran in it
# (the kernel's own count and time of its runs, noise from elsewhere left
# out): "SECTION AGENT PROGRAM RUNS NS ROUND_RESULT" lines in progcost.tsv.
# The stats add two clock reads to every run, so the counted rounds run
# without them.
prog_cost() {
	local id progs p rate before
	id=$(agent_cgid "$2") || { note "$1" "$2: cannot find its cgroup: no program costs"; return 1; }
	progs=$(bpftool --json link show | jq --argjson c "$id" '.[] | select(.cgroup_id == $c) | .prog_id')
	[ -n "$progs" ] || { note "$1" "$2: no links on its cgroup: no program costs"; return 1; }
	before=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null) || { note "$1" "kernel.bpf_stats_enabled: not on this kernel"; return 1; }
	sysctl -qw kernel.bpf_stats_enabled=1 || return 1
	rate=$(agent_round "$2")
	sysctl -qw kernel.bpf_stats_enabled="$before"
	[ -n "$rate" ] || { note "$1" "$2: the stats round gave no result"; return 1; }
	for p in $progs; do
		bpftool --json prog show id "$p" 2>/dev/null |
			jq -r --arg s "$1" --arg a "$2" --arg r "$rate" '"\($s) \($a) \(.name) \(.run_cnt // 0) \(.run_time_ns // 0) \($r)"'
	done >>"$R/progcost.tsv"
}

# hook_agent NAME [LOOP-OPTION]: a connect loop in a cgroup of its own, fenced
# by the OCI hook with the 10,000 rules (a host profile: an annotation holds
# 64 KiB at most) (hook_agent_stop ends it)
HOOKST=$T/hookst
hook_agent() {
	local i state opt=(${2:+"$2"})
	mkdir -p "$CGB/$1" "$HOOKST/reports" "$HOOKST/state" "$HOOKST/profiles" || return 1
	echo "{ \"report_dir\": \"$HOOKST/reports\", \"state_dir\": \"$HOOKST/state\", \"bpffs_root\": \"$PINS/hook\", \"profiles_dir\": \"$HOOKST/profiles\", \"attribution_linger\": 0 }" >"$HOOKST/config.json"
	jq -R . "$T/rules.10000" | jq -s '{description: "the bench connect rules", deny: .}' >"$HOOKST/profiles/rules10000.json" || return 1
	start_agent "$1" "${IN_CG[@]}" "$CGB/$1" nsenter --net="/run/netns/$NS" -- "$TOOLS/dfconnloop" -r "${opt[@]}" -w 0.1 -t "$secs" 127.0.0.1 "$PORT" || return 1
	for i in $(seq 50); do [ "$(cat "$CGB/$1/cgroup.procs" 2>/dev/null)" = "${APID[$1]}" ] && break; sleep 0.1; done
	state=$(jq -nc --arg id "dfb-$$-$1" --argjson pid "${APID[$1]}" --arg b "$HOOKST" \
		'{ociVersion: "1.0.2", id: $id, status: "creating", bundle: $b, pid: $pid,
		  annotations: {"depfence.io/mode": "enforce", "depfence.io/profile": "rules10000"}}')
	DEPFENCE_CONFIG=$HOOKST/config.json "$BIN" hook createRuntime <<<"$state" 2>"$T/hook.err" && return 0
	note connect "$1: createRuntime failed: $(head -c 300 "$T/hook.err") (row dropped)"
	return 1
}
# hook_agent_stop NAME: poststop once its loop has ended; its report as report.connect-10000-hook.json (-marked.json)
hook_agent_stop() {
	DEPFENCE_CONFIG=$HOOKST/config.json "$BIN" hook poststop \
		<<<"{\"ociVersion\":\"1.0.2\",\"id\":\"dfb-$$-$1\",\"status\":\"stopped\",\"bundle\":\"$HOOKST\"}" 2>"$T/hook.err" ||
		note connect "$1: poststop failed: $(head -c 300 "$T/hook.err")"
	cp "$HOOKST/reports/dfb-$$-$1.json" "$T/report.connect-${1#depfence-}.json" 2>/dev/null
	rmdir "$CGB/$1" 2>/dev/null
}
bench_connect() {
	local conds=() nfts=() n c r k rate nftpath lvl=2 rel rc conns left secs=${CONNECT_SECS:-1} rounds=${CONNECT_ROUNDS:-10}
	log "connect: rules, nft tables, servers, fences"
	rel=${CG2#/sys/fs/cgroup}
	rel=${rel#/}
	nftpath="${rel:+$rel/}depfence-bench-$$/nft"
	if ! command -v nft >/dev/null; then
		note connect "nft is missing: nftables rows not measured"
	elif [[ $CG2 != /sys/fs/cgroup* ]]; then
		note connect "cgroup2 is mounted at $CG2, outside /sys/fs/cgroup, where nft looks up cgroupv2 paths: nftables rows not measured"
	else
		for n in "${SIZES[@]}"; do
			mk_netns "$NS-n$n" || return 1
			{
				echo "table inet depfence_bench {"
				echo "  set deny4 { type ipv4_addr; flags interval; }"
				echo "  chain out {"
				echo "    type filter hook output priority filter; policy accept;"
				echo "    socket cgroupv2 level $lvl \"$nftpath\" ip daddr @deny4 drop"
				echo "  }"
				echo "}"
				split -l 10000 "$T/rules.$n" "$T/nftpart."
				for f in "$T"/nftpart.*; do echo "add element inet depfence_bench deny4 { $(paste -sd, "$f") }"; done
				rm -f "$T"/nftpart.*
			} >"$T/nft.$n"
			if ! in_ns "$NS-n$n" nft -f "$T/nft.$n" 2>"$T/nft.err"; then
				note connect "nft -f with $n prefixes failed: $(head -c 300 "$T/nft.err")"
				continue
			fi
			start_server "$NS-n$n" || return 1
			nfts+=("$n")
		done
	fi
	# agents last: every process started before them (servers) must not hold their pipes
	start_agent unfenced nsenter --net="/run/netns/$NS" -- "$TOOLS/dfconnloop" -r -w 0.1 -t "$secs" -c "$CGB/plain" 127.0.0.1 "$PORT" || return 1
	conds+=(unfenced)
	for n in "${SIZES[@]}"; do
		deny_args "$T/deny.$n"
		start_agent "depfence-$n" "$BIN" run --mode enforce "${DENY[@]}" --report "$T/report.connect-$n.json" -- \
			nsenter --net="/run/netns/$NS" -- "$TOOLS/dfconnloop" -r -w 0.1 -t "$secs" 127.0.0.1 "$PORT" || return 1
		conds+=("depfence-$n")
	done
	# diagnostic: the 10,000-rule fence again, its cgroup_skb links detached below
	deny_args "$T/deny.10000"
	start_agent depfence-10000-noskb "$BIN" run --mode enforce "${DENY[@]}" --report "$T/report.connect-10000-noskb.json" -- \
		nsenter --net="/run/netns/$NS" -- "$TOOLS/dfconnloop" -r -w 0.1 -t "$secs" 127.0.0.1 "$PORT" || return 1
	conds+=(depfence-10000-noskb)
	# the same 10,000 rules on a container's fence: the loop is in its cgroup
	# before `hook createRuntime` attaches it, as a container's init is; it
	# holds no TCP socket then, so the fence is fresh too. -marked: the loop
	# holds one (-k), so the fence marks the TCP sockets connect judges
	hook_agent depfence-10000-hook && conds+=(depfence-10000-hook)
	hook_agent depfence-10000-marked -k && conds+=(depfence-10000-marked)
	for n in "${nfts[@]}"; do
		start_agent "nftables-$n" nsenter --net="/run/netns/$NS-n$n" -- "$TOOLS/dfconnloop" -r -w 0.1 -t "$secs" -c "$CGB/nft" 127.0.0.1 "$PORT" || return 1
		conds+=("nftables-$n")
	done
	{
		echo "nft_rule socket cgroupv2 level $lvl \"$nftpath\" ip daddr @deny4 drop"
		echo "connect_rounds $rounds"
		echo "connect_secs $secs"
	} >>"$R/meta"
	# round 0, not counted: every fence is up and every loop warm before the first counted one
	for c in "${conds[@]}"; do agent_round "$c" >/dev/null || note connect "warm-up $c: no rate ($(tail -c 300 "$T/ag.$c.err" 2>/dev/null | tr '\n' ' '))"; done
	if ! detach_skb depfence-10000-noskb; then
		local keep=()
		for c in "${conds[@]}"; do [ "$c" = depfence-10000-noskb ] || keep+=("$c"); done
		conds=("${keep[@]}")
	fi
	log "connect: ${#conds[@]} conditions x $rounds rounds x ${secs}s"
	for r in $(seq "$rounds"); do
		for k in $(seq 0 $((${#conds[@]} - 1))); do
			c=${conds[$(((k + r) % ${#conds[@]}))]}
			if rate=$(agent_round "$c"); then
				echo "$c $r $rate" >>"$R/connect.tsv"
			else
				note connect "round $r $c: no rate ($(tail -c 300 "$T/ag.$c.err" 2>/dev/null | tr '\n' ' '))"
			fi
		done
	done
	prog_cost connect depfence-10000
	for c in hook marked; do
		[[ " ${conds[*]} " == *" depfence-10000-$c "* ]] && prog_cost "connect-$c" "depfence-10000-$c"
	done
	local -A rcs
	for c in "${!APID[@]}"; do
		stop_agent "$c"
		rcs[$c]=$?
	done
	for c in hook marked; do
		[[ " ${conds[*]} " == *" depfence-10000-$c "* ]] && hook_agent_stop "depfence-10000-$c"
	done
	left=$(df_leftovers)
	for c in "${conds[@]}"; do
		[[ $c == depfence-* ]] || continue
		n=${c#depfence-}
		conns=$(jq -r '"\(.summary.connections) \(.summary.allowed)"' "$T/report.connect-$n.json" 2>/dev/null)
		[ -n "$conns" ] && echo "$c $conns" >>"$R/connect_judged.tsv"
		[ "${rcs[$c]}" = 0 ] || note "connect-$n" "$([[ $c == depfence-10000-hook || $c == depfence-10000-marked ]] && echo "its loop" || echo "depfence run") exited ${rcs[$c]} ($(grep -v 'mode=enforce' "$T/ag.$c.err" | head -n 2 | tr '\n' ' '))"
	done
	[ "$left" = 0 ] || note connect "$left pinned objects of fences that depfence run could not remove were left behind (the bench removed them)"
	return 0
}

# ---- 2. bulk throughput ----
bench_bulk() {
	local r k c bps i secs
	secs=$(awk -v s="$SECS" 'BEGIN { s = int(s + 0.5); print s < 1 ? 1 : s }') # iperf3 -t: whole seconds, 0 = forever
	command -v iperf3 >/dev/null || { note bulk "iperf3 is missing (tests/deps.sh bench installs it)"; return 1; }
	# nsenter execs iperf3: $! is the server itself
	nsenter --net="/run/netns/$NS" -- iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null 2>&1 &
	pids+=($!)
	for i in $(seq 50); do in_ns "$NS" bash -c 'exec 3<>/dev/tcp/127.0.0.1/5201' 2>/dev/null && break; sleep 0.1; done
	# one agent per condition: a loop that runs one iperf3 client per line of input
	# (inside the fence or the plain cgroup, set up once) and prints "bps N"
	local loop='while read -r _; do timeout $(($1 + 30)) iperf3 -c 127.0.0.1 -p 5201 -t "$1" -O 1 -J >"$0" 2>&1; echo "bps $(jq -r ".end.sum_received.bits_per_second // \"none\"" "$0" 2>/dev/null)"; done'
	start_agent bulk-unfenced "${IN_CG[@]}" "$CGB/plain" \
		nsenter --net="/run/netns/$NS" -- bash -c "$loop" "$T/iperf.unfenced.json" "$secs" || return 1
	deny_args "$T/deny.policy"
	start_agent bulk-depfence "$BIN" run --mode enforce "${DENY[@]}" --report "$T/report.bulk.json" -- \
		nsenter --net="/run/netns/$NS" -- bash -c "$loop" "$T/iperf.depfence.json" "$secs" || return 1
	{
		echo "bulk_secs $secs"
		echo "bulk_rounds $ROUNDS"
	} >>"$R/meta"
	log "bulk: iperf3, 2 conditions x $ROUNDS rounds x ${secs}s (+1s omitted)"
	for r in $(seq "$ROUNDS"); do
		for k in 0 1; do
			c=$([ $(((k + r) % 2)) = 0 ] && echo unfenced || echo depfence)
			if bps=$(agent_round "bulk-$c"); then
				echo "$c $r $bps" >>"$R/bulk.tsv"
			else
				note bulk "round $r $c: no result ($(jq -r '.error // empty' "$T/iperf.$c.json" 2>/dev/null | head -c 200))"
			fi
		done
	done
	prog_cost bulk bulk-depfence
	stop_agent bulk-unfenced
	stop_agent bulk-depfence || note bulk "depfence run exited $? ($(grep -v 'mode=enforce' "$T/ag.bulk-depfence.err" | head -n 2 | tr '\n' ' '))"
	df_leftovers >/dev/null
	return 0
}

# ---- 3. DNS ----
bench_dns() {
	local r k c q i ok=0 count=${DNS_COUNT:-20000} rounds=${DNS_ROUNDS:-8}
	command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || { note dns "dnsmasq is missing"; return 1; }
	ip -n "$NS" addr add 203.0.113.53/32 dev lo
	nsenter --net="/run/netns/$NS" -- /usr/sbin/dnsmasq --keep-in-foreground \
		--conf-file=/dev/null --no-resolv --no-hosts --no-dhcp-interface=lo \
		--listen-address=203.0.113.53 --bind-interfaces --port=53 --user=root \
		--pid-file="$T/dnsmasq.pid" --address=/pkg.example.com/203.0.113.20 \
		--address=/pkg.example.com/2001:db8::20 --local-ttl=300 >/dev/null 2>&1 &
	pids+=($!)
	for i in $(seq 50); do
		[ "$(in_ns "$NS" "$TOOLS/dfdns" 203.0.113.53 53 pkg.example.com 2>/dev/null)" = "ok 203.0.113.20" ] && ok=1 && break
		sleep 0.1
	done
	[ "$ok" = 1 ] || { note dns "dnsmasq did not answer"; return 1; }
	# one dfdns -r per condition, set up once, driven like the connect loops
	start_agent dns-unfenced "${IN_CG[@]}" "$CGB/plain" \
		nsenter --net="/run/netns/$NS" -- "$TOOLS/dfdns" -r -n "$count" 203.0.113.53 53 pkg.example.com || return 1
	deny_args "$T/deny.policy"
	start_agent dns-depfence "$BIN" run --mode enforce "${DENY[@]}" --report "$T/report.dns.json" -- \
		nsenter --net="/run/netns/$NS" -- "$TOOLS/dfdns" -r -n "$count" 203.0.113.53 53 pkg.example.com || return 1
	{
		echo "dns_count $count"
		echo "dns_rounds $rounds"
	} >>"$R/meta"
	log "dns: 2 conditions x $rounds rounds x $count questions"
	for c in unfenced depfence; do agent_round "dns-$c" >/dev/null || note dns "warm-up $c: no rate ($(tail -c 300 "$T/ag.dns-$c.err" | tr '\n' ' '))"; done
	for r in $(seq "$rounds"); do
		for k in 0 1; do
			c=$([ $(((k + r) % 2)) = 0 ] && echo unfenced || echo depfence)
			if q=$(agent_round "dns-$c"); then
				echo "$c $r $q" >>"$R/dns.tsv"
			else
				note dns "round $r $c: no rate ($(tail -c 300 "$T/ag.dns-$c.err" | tr '\n' ' '))"
			fi
		done
	done
	prog_cost dns dns-depfence
	stop_agent dns-unfenced
	stop_agent dns-depfence || note dns "depfence run exited $? ($(grep -v 'mode=enforce' "$T/ag.dns-depfence.err" | head -n 2 | tr '\n' ' '))"
	df_leftovers >/dev/null
	jq -r '"depfence \(.summary.dns_queries) \(.summary.dns_answers) \(.summary.dns_blocked)"' "$T/report.dns.json" >"$R/dns_judged.tsv" 2>/dev/null
	return 0
}

# ---- 4. hook cost on container start ----
bench_hook() {
	command -v runc >/dev/null || { note hook "runc is missing"; return 1; }
	local headers=/var/cache/depfence-bench/kernel-headers src=""
	log "hook: runc run /bin/true, $HOOK_N runs each (hook_cost.sh)"
	# the peer compiles against kernel headers: the running kernel's, else those tests/deps.sh unpacked
	if [ ! -d "/lib/modules/$(uname -r)/build" ] && [ -f "$headers/.complete" ]; then
		src=$headers
		note hook "the peer's BCC compiled its program against $(cat "$headers/.complete")'s headers (BCC_KERNEL_SOURCE, unpacked by tests/deps.sh bench): kernel $(uname -r) ships none, and the peer's BCC (Debian 12's) is of that release; its program reads syscall tracepoints, whose layout the running kernel gives it"
	fi
	PEER_KERNEL_SOURCE=$src N=$HOOK_N BUILD=$BUILD HOOK_RAW=$R/hook.tsv "$SRC/tests/bench/hook_cost.sh" >"$T/hook.out" 2>&1 ||
		{ note hook "hook_cost.sh failed: $(tail -n 3 "$T/hook.out" | tr '\n' ' ')"; return 1; }
	cat "$T/hook.out" >&2
	return 0
}

# ---- 5. scale: N fences at once ----
bench_scale() {
	local SC=$CGB/scale ST=$T/scale i pid t0 t1 id state reached=0 budget_hit=0 n left
	local -a sleepers=()
	mkdir -p "$SC" "$ST/reports" "$ST/state" || return 1
	cat >"$ST/config.json" <<EOC
{ "report_dir": "$ST/reports", "state_dir": "$ST/state", "bpffs_root": "$PINS/scale", "attribution_linger": 0 }
EOC
	bpftool --json prog show >"$ST/progs.before.json" 2>/dev/null
	log "scale: creating up to $SCALE_N fences (make bench stays under ${TOTAL_BUDGET}s)"
	local tstart=$EPOCHSECONDS
	for i in $(seq "$SCALE_N"); do
		# teardown takes about a third of the creation time: keep half of it, and 20 s for the rest
		if [ $((EPOCHSECONDS - START + (EPOCHSECONDS - tstart) / 2 + 20)) -ge "$TOTAL_BUDGET" ]; then
			budget_hit=1
			break
		fi
		mkdir "$SC/f$i" || break
		# the sleeper joins its cgroup itself, so the cgroup never holds anything else
		(echo "$BASHPID" >"$SC/f$i/cgroup.procs" && exec sleep 1800) &
		pid=$!
		sleepers+=("$pid")
		pids+=("$pid")
		for n in 1 2 3 4 5 6 7 8 9 10; do read -r t0 <"$SC/f$i/cgroup.procs" && [ "$t0" = "$pid" ] && break; sleep 0.01; done
		id=dfb-$$-$i
		state="{\"ociVersion\":\"1.0.2\",\"id\":\"$id\",\"status\":\"creating\",\"pid\":$pid,\"bundle\":\"$ST\",\"annotations\":{\"depfence.io/mode\":\"enforce\",\"depfence.io/deny\":\"203.0.113.0/24, blocked.example.org\"}}"
		t0=$EPOCHREALTIME
		if ! DEPFENCE_CONFIG=$ST/config.json "$BIN" hook createRuntime <<<"$state" 2>"$T/err"; then
			note scale "fence $i: createRuntime failed: $(head -c 300 "$T/err")"
			break
		fi
		t1=$EPOCHREALTIME
		echo "$i $(((${t1/./} - ${t0/./})))" >>"$R/scale_attach.tsv"
		reached=$i
		[ $((i % 100)) = 0 ] && log "scale: $i fences"
	done
	{
		echo "target $SCALE_N"
		echo "reached $reached"
		echo "budget_hit $budget_hit"
		echo "budget_s $TOTAL_BUDGET"
		echo "create_s $((EPOCHSECONDS - tstart))"
		echo "annotations depfence.io/mode=enforce, depfence.io/deny=203.0.113.0/24, blocked.example.org"
	} >"$R/scale.env"
	# kernel memory: links -> programs (cgroup id = the cgroup's inode) -> maps
	bpftool --json link show >"$R/scale_links.json" 2>/dev/null
	bpftool --json prog show >"$R/scale_progs.json" 2>/dev/null
	bpftool --json map show >"$R/scale_maps.json" 2>/dev/null
	for i in $(seq "$reached"); do echo "$i $(stat -c %i "$SC/f$i")"; done >"$R/scale_cgids.tsv"
	echo "live_progs $(jq length "$R/scale_progs.json")" >>"$R/scale.env"
	echo "mem_avail_mib_with_fences $(awk '/^MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)" >>"$R/scale.env"

	log "scale: tearing down $reached fences"
	tstart=$EPOCHSECONDS
	for i in $(seq "$reached"); do
		id=dfb-$$-$i
		t0=$EPOCHREALTIME
		DEPFENCE_CONFIG=$ST/config.json "$BIN" hook poststop \
			<<<"{\"ociVersion\":\"1.0.2\",\"id\":\"$id\",\"status\":\"stopped\",\"bundle\":\"$ST\"}" 2>"$T/err" ||
			note scale "fence $i: poststop failed: $(head -c 300 "$T/err")"
		t1=$EPOCHREALTIME
		echo "$i $(((${t1/./} - ${t0/./})))" >>"$R/scale_stop.tsv"
	done
	echo "stop_s $((EPOCHSECONDS - tstart))" >>"$R/scale.env"
	for pid in "${sleepers[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${sleepers[@]}"; do wait "$pid" 2>/dev/null; done
	for i in $(seq "$SCALE_N"); do [ -d "$SC/f$i" ] && rmdir "$SC/f$i"; done
	rmdir "$SC"
	# nothing left: pins, state, cgroups, and none of the fences' programs,
	# maps or links (freed after an RCU grace period: wait for it, bounded)
	local ids
	for n in $(seq 50); do
		bpftool --json prog show >"$ST/progs.after.json" 2>/dev/null
		ids=$(python3 - "$R" "$ST/progs.after.json" <<'EOP'
import json, sys
r = sys.argv[1]
cg = {int(l.split()[1]) for l in open(f"{r}/scale_cgids.tsv")}
ours = {l["prog_id"] for l in json.load(open(f"{r}/scale_links.json")) if l.get("cgroup_id") in cg}
now = {p["id"] for p in json.load(open(sys.argv[2]))}
print(len(ours & now))
EOP
)
		[ "$ids" = 0 ] && break
		sleep 0.1
	done
	{
		echo "left_pins $(find "$PINS/scale" -mindepth 1 2>/dev/null | wc -l)"
		echo "left_state $(find "$ST/state" -name '*.json' | wc -l)"
		echo "left_cgroups $( [ -d "$SC" ] && find "$SC" -type d | wc -l || echo 0)"
		echo "left_progs $ids"
		echo "reports $(find "$ST/reports" -name '*.json' | wc -l)"
		echo "progs_before $(jq length "$ST/progs.before.json")"
		echo "progs_after $(jq length "$ST/progs.after.json")"
	} >>"$R/scale.env"
	rmdir "$PINS/scale" 2>/dev/null
	[ "$reached" -gt 0 ]
}

# ---- 6. verifier ----
bench_verifier() {
	log "verifier: dfverify, $ROUNDS rounds"
	"$TOOLS/dfverify" -r "$ROUNDS" >"$R/verifier.tsv" 2>"$T/err" ||
		{ note verifier "dfverify failed: $(head -c 300 "$T/err")"; return 1; }
}

for s in connect bulk dns hook verifier scale; do
	has "$s" || continue
	load_sample "$s"
	if "bench_$s"; then status "$s" ok; else status "$s" failed; fi
done
load_sample end
echo "duration_s $((EPOCHSECONDS - START))" >>"$R/meta"
[ -n "${KEEP_RAW:-}" ] && mkdir -p "$KEEP_RAW" && cp -a "$R/." "$KEEP_RAW/"
python3 "$SRC/tests/bench/report.py" "$R" "$OUT"
