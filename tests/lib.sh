# Helpers for the shell test tiers. Source it; call df_setup first.
# Output lines: "ok - NAME", "not ok - NAME: why", "skip - NAME: why".
# shellcheck shell=bash

DF_BIN=${DF_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/depfence}
DF_TOOLS=${DF_TOOLS:-$(dirname "$DF_BIN")/tests}
DF_ROOT=${DF_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

ok() { echo "ok - $1"; }
notok() { echo "not ok - $1: $2"; }
skip() { echo "skip - $1: $2"; }
# a test calling a command or function that does not exist fails, where bash
# would say so on stderr and go on (a helper one test file has and another
# lacks): tests/run.sh counts stderr's lines too, also from inside $(...)
command_not_found_handle() {
	echo "not ok - command not found: $1" >&2
	return 127
}

# check NAME EXPECTED ACTUAL
check() {
	if [ "$2" = "$3" ]; then ok "$1"; else notok "$1" "expected '$2', got '$3'"; fi
}

# check_cmd NAME CMD...: the command succeeds
check_cmd() {
	local name=$1; shift
	local out
	if out=$("$@" 2>&1); then ok "$name"; else notok "$name" "command failed: $* -> $out"; fi
}

# The privileged tiers need root, cgroup2 and BPF. Anything else is a skip
# (which tests/run.sh turns into a failure under CI=true).
df_require_privileges() {
	local why=""
	[ "$(id -u)" = 0 ] || why="not root"
	[ -z "$why" ] && ! grep -q ' - cgroup2 ' /proc/self/mountinfo && why="no cgroup2 mount"
	[ -z "$why" ] && ! command -v ip >/dev/null && why="no iproute2"
	if [ -n "$why" ]; then
		skip "${1:-privileged tier}" "$why"
		exit 0
	fi
}

_df_pids=()
_df_cgroups=()
_df_cleanups=()

df_cleanup() {
	local p n c
	for c in "${_df_cleanups[@]}"; do eval "$c" >/dev/null 2>&1; done
	for p in "${_df_pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${_df_pids[@]}"; do wait "$p" 2>/dev/null; done
	for c in "${_df_cgroups[@]}"; do
		[ -d "$c" ] || continue
		# end what a failed test left in its own cgroups, bounded
		for n in 1 2 3 4 5; do
			[ -s "$c/cgroup.procs" ] || break
			xargs -r kill -9 <"$c/cgroup.procs" 2>/dev/null; sleep 0.1
		done
		rmdir "$c" 2>/dev/null
	done
	# netns are registered in a file: df_netns often runs in a $(...) subshell
	if [ -n "${DF_T:-}" ] && [ -f "$DF_T/netns.list" ]; then
		while read -r n; do ip netns del "$n" 2>/dev/null; done <"$DF_T/netns.list"
	fi
	if [ -n "${DF_PINS:-}" ] && [ -d "$DF_PINS" ]; then
		find "$DF_PINS" -mindepth 1 -depth -exec rm -rf {} + 2>/dev/null
		rmdir "$DF_PINS" 2>/dev/null
	fi
	# cgroups depfence run made under ours and left behind by a failure
	[ -n "${DF_T:-}" ] && rm -rf "$DF_T"
}

# A private config, report dir, state dir and bpffs root for this test file.
df_setup() {
	DF_T=$(mktemp -d /tmp/depfence-test.XXXXXX)
	DF_PINS=/sys/fs/bpf/depfence-test-$$
	DF_REPORTS=$DF_T/reports
	DF_STATE=$DF_T/state
	cat >"$DF_T/config.json" <<EOC
{ "report_dir": "$DF_REPORTS", "state_dir": "$DF_STATE", "bpffs_root": "$DF_PINS", "attribution_linger": 0 }
EOC
	export DEPFENCE_CONFIG=$DF_T/config.json
	trap df_cleanup EXIT
	trap 'exit 130' INT TERM
}

df_on_exit() { _df_cleanups+=("$*"); }
df_track_pid() { _df_pids+=("$1"); }
df_track_cgroup() { _df_cgroups+=("$1"); }

# df_netns NAME: a network namespace with lo up and the test hosts on lo.
df_netns() {
	local ns=df$$-$1
	ip netns add "$ns" || return 1
	echo "$ns" >>"$DF_T/netns.list"
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add 203.0.113.10/32 dev lo
	ip -n "$ns" addr add 203.0.113.20/32 dev lo
	ip -n "$ns" addr add 198.51.100.10/32 dev lo
	ip -n "$ns" addr add 2001:db8::10/128 dev lo nodad
	ip -n "$ns" addr add 2001:db8::20/128 dev lo nodad
	echo "$ns"
}

# in_ns NS CMD...: run inside the namespace without remounting /sys (unlike ip netns exec)
in_ns() {
	local ns=$1; shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

# df_servers NS PORT...: TCP+UDP listeners on every v4 and v6 address of NS
df_servers() {
	local ns=$1; shift
	# nsenter execs the server, so $! is the server's own pid (a function would fork)
	nsenter --net="/run/netns/$ns" -- "$DF_TOOLS/dfserver" -t 300 0.0.0.0 "$@" >/dev/null 2>&1 &
	df_track_pid $!
	nsenter --net="/run/netns/$ns" -- "$DF_TOOLS/dfserver" -t 300 :: "$@" >/dev/null 2>&1 &
	df_track_pid $!
	# bounded wait until a port answers
	local i
	for i in $(seq 50); do
		in_ns "$ns" "$DF_TOOLS/dfclient" tcp 203.0.113.10 "$1" >/dev/null 2>&1 &&
			in_ns "$ns" "$DF_TOOLS/dfclient" tcp 2001:db8::10 "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# df_rootfs DIR: a container rootfs for the engine tests: static busybox and
# its applets the tests use, and the static dfclient.
df_rootfs() {
	local r=$1 c
	mkdir -p "$r"/bin "$r"/proc "$r"/dev "$r"/sys "$r"/tmp "$r"/mnt "$r"/etc || return 1
	cp /bin/busybox "$r/bin/" || return 1
	for c in sh cat echo touch sleep true false ls; do ln -s busybox "$r/bin/$c" || return 1; done
	cp "$DF_TOOLS/dfclient" "$r/bin/"
}

# df_private_mountns: run the rest of this test file in a private mount
# namespace (propagation private): what it mounts there (a cgroup2 hierarchy
# on /sys/fs/cgroup, a layer over /etc) is seen by nothing else and goes when
# the file ends. Call before df_setup; the file is run again from the start.
df_private_mountns() {
	[ "${DF_PRIVATE_MOUNTNS:-}" = "$$" ] && return 0
	DF_PRIVATE_MOUNTNS=$$ exec unshare --mount --propagation private -- bash "$0"
}

# df_cg2root: the cgroup2 hierarchy's mount point (fstype after " - ", mount root "/")
df_cg2root() {
	awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2" && $4 == "/") { print $5; exit } break } }' /proc/self/mountinfo
}

# df_waiter NS NAME SCRIPT [CGROUP]: a shell in netns NS and in a fresh cgroup
# (CGROUP, or one of its own under $CG2), blocked on a fifo until
# `df_release NAME` (once per `read go <$DF_T/NAME.fifo` in SCRIPT), then
# running SCRIPT (the test tools on PATH) with its output in $DF_T/NAME.out.
# Sets W_PID and W_CG.
df_waiter() {
	local ns=$1 name=$2 script=$3
	W_CG=${4:-$CG2/df$$-$name}
	mkdir "$W_CG" || return 1
	df_track_cgroup "$W_CG"
	rm -f "$DF_T/$name.fifo"
	mkfifo "$DF_T/$name.fifo" || return 1
	PATH=$DF_TOOLS:$PATH nsenter --net="/run/netns/$ns" -- \
		sh -c "read go <'$DF_T/$name.fifo'; $script" >"$DF_T/$name.out" 2>&1 &
	W_PID=$!
	df_track_pid "$W_PID"
	echo "$W_PID" >"$W_CG/cgroup.procs"
}

df_release() { timeout 5 sh -c 'echo go >"$1"' _ "$DF_T/$1.fifo"; }
# df_hold_lock ID SECONDS: hold fence ID's lock (a byte of state_dir/.fences.lock,
# by FNV-1a of the id) for SECONDS from a process of its own; returns once held.
# ID '*': every fence's lock (any fence starting meanwhile waits). LOCK_PID: that process.
df_hold_lock() {
	local i
	rm -f "$DF_T/$1.held"
	python3 - "$DF_STATE/.fences.lock" "$1" "$DF_T/$1.held" "$2" <<'PY' &
import fcntl, os, struct, sys, time
h = 2166136261
for c in sys.argv[2].encode():
    h = ((h ^ c) * 16777619) & 0xffffffff
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
start, n = (0, 65536) if sys.argv[2] == "*" else (h & 0xffff, 1)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, start, n, 0))
open(sys.argv[3], "w").close()
time.sleep(float(sys.argv[4]))
PY
	LOCK_PID=$!
	df_track_pid "$LOCK_PID"
	for i in $(seq 50); do [ -e "$DF_T/$1.held" ] && return 0; sleep 0.1; done
	return 1
}

# df_reap PID: bounded wait for the process to end, then it is ended
df_reap() {
	local i
	for i in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

# df_bundle SPEC NS NAME STAGE ANNOTATIONS-JSON SCRIPT [JQ-FILTER JQ-ARGS...]:
# an OCI bundle at $DF_T/NAME from the runtime's own `spec` output SPEC, on
# the rootfs $ROOTFS, running `sh -c SCRIPT` in netns NS with $DF_T/NAME.mnt
# bound at /mnt, the depfence hooks (STAGE and poststop) pointed at $DF_BIN
# with this test's config; JQ-FILTER adds what one runtime needs.
df_bundle() {
	local spec=$1 ns=$2 name=$3 stage=$4 ann=$5 script=$6 extra=${7:-.}
	shift $(($# < 7 ? $# : 7))
	mkdir -p "$DF_T/$name" "$DF_T/$name.mnt"
	jq --arg bin "$DF_BIN" --arg env "DEPFENCE_CONFIG=$DEPFENCE_CONFIG" --arg stage "$stage" \
		--arg rootfs "$ROOTFS" --arg ns "/run/netns/$ns" --arg mnt "$DF_T/$name.mnt" \
		--arg script "$script" --argjson ann "$ann" "$@" '
		.process.terminal = false
		| .process.args = ["sh", "-c", $script]
		| .root = {path: $rootfs, readonly: true}
		| .linux.namespaces |= map(if .type == "network" then .path = $ns else . end)
		| .mounts += [{destination: "/mnt", type: "bind", source: $mnt, options: ["rbind", "rw"]}]
		| .annotations = $ann
		| .hooks = {
			($stage): [{path: $bin, args: ["depfence", "hook", $stage], env: [$env], timeout: 10}],
			poststop: [{path: $bin, args: ["depfence", "hook", "poststop"], env: [$env], timeout: 30}]
		}
		| '"$extra" "$spec" >"$DF_T/$name/config.json"
}

# df_check_exit NAME RC ERRFILE: exit 0, or the failure with the runtime's stderr
df_check_exit() {
	if [ "$2" = 0 ]; then ok "$1"; else notok "$1" "exit $2: $(tr '\n' ' ' <"$3")"; fi
}

# df_event REPORT DADDR DPORT: the event for that destination, as "verdict hook proto rule comm count"
df_event() {
	jqr "$1" ".events[] | select(.daddr == \"$2\" and .dport == $3) | \"\\(.verdict) \\(.hook) \\(.proto) \\(.rule) \\(.process.comm) \\(.count)\""
}

# jqr FILE EXPR: raw jq output, "" on error
jqr() { jq -r "$2" "$1" 2>/dev/null; }

# Nothing of the fence is left: no pins, no state files.
df_check_clean() {
	local name=$1 left
	left=$(find "$DF_PINS" -mindepth 1 2>/dev/null; find "$DF_STATE" -name '*.json' ! -name '.*' 2>/dev/null)
	check "$name: no pins or state left" "" "$left"
}

# df_dns NS [ADDR PORT]: dnsmasq in NS answering the test zones, on
# 203.0.113.53 and 2001:db8::53 port 53, or (a second one) on ADDR PORT alone:
#   github.com and below -> 203.0.113.10 / 2001:db8::10
#   pkg.example.com and below -> 203.0.113.20 / 2001:db8::20
#   api.example.com CNAME x.cdn.example.net -> 203.0.113.30
#   mirror.internal -> 198.51.100.10
df_dns() {
	local ns=$1 addr=${2:-} port=${3:-53} i
	local -a listen
	if [ -n "$addr" ]; then
		listen=(--listen-address="$addr")
	else
		addr=203.0.113.53
		ip -n "$ns" addr add 203.0.113.53/32 dev lo
		ip -n "$ns" addr add 203.0.113.30/32 dev lo
		ip -n "$ns" addr add 2001:db8::53/128 dev lo nodad
		listen=(--listen-address=203.0.113.53 --listen-address=2001:db8::53)
	fi
	nsenter --net="/run/netns/$ns" -- timeout 300 /usr/sbin/dnsmasq --keep-in-foreground \
		--conf-file=/dev/null --no-resolv --no-hosts --no-dhcp-interface=lo \
		"${listen[@]}" --bind-interfaces --port="$port" --user=root \
		--pid-file="$DF_T/dnsmasq-$addr-$port.pid" \
		--address=/github.com/203.0.113.10 --address=/github.com/2001:db8::10 \
		--address=/pkg.example.com/203.0.113.20 --address=/pkg.example.com/2001:db8::20 \
		--host-record=x.cdn.example.net,203.0.113.30 --cname=api.example.com,x.cdn.example.net \
		--host-record=mirror.internal,198.51.100.10 --local-ttl=300 >/dev/null 2>&1 &
	df_track_pid $!
	for i in $(seq 50); do
		[ "$(in_ns "$ns" "$DF_TOOLS/dfdns" "$addr" "$port" mirror.internal 2>/dev/null)" = "ok 198.51.100.10" ] && return 0
		sleep 0.1
	done
	return 1
}

# --- the OCI hook path by hand: a process already in its cgroup when
# createRuntime attaches the fence, as a container's init is ---
# df_hook_attach ID ANNOTATIONS CMD...: CMD in the network namespace $NS and in a cgroup of its own,
# fenced by createRuntime once it has printed "ready"; then "$DF_T/ID.go" is
# made (CMD may wait for it). HOOK_PID: its pid.
df_hook_attach() {
	local id=$1 annot=$2 cg i
	cg=$(df_cg2root)/df$$-$1
	shift 2
	mkdir "$cg" && df_track_cgroup "$cg"
	mkfifo "$DF_T/$id.gate"
	nsenter --net="/run/netns/$NS" -- sh -c 'read go <"$0"; exec "$@"' "$DF_T/$id.gate" "$@" >"$DF_T/$id.out" 2>&1 &
	HOOK_PID=$!
	df_track_pid $HOOK_PID
	echo $HOOK_PID >"$cg/cgroup.procs"
	timeout 5 sh -c 'echo go >"$1"' _ "$DF_T/$id.gate"
	for i in $(seq 50); do grep -q ready "$DF_T/$id.out" && break; sleep 0.1; done
	jq -nc --arg id "$id" --argjson pid "$HOOK_PID" --arg b "$DF_T" --argjson a "$annot" \
		'{ociVersion: "1.0.2", id: $id, status: "creating", bundle: $b, pid: $pid, annotations: $a}' |
		"$DF_BIN" hook createRuntime 2>"$DF_T/stderr" || notok "$id: createRuntime" "$(cat "$DF_T/stderr")"
	touch "$DF_T/$id.go"
}
# df_hook_detach ID: waits (10 s at most) for the process, removes its cgroup, runs
# poststop. HOOK_OUT: its output after "ready"; HOOK_REP: the report.
df_hook_detach() {
	local id=$1 i
	for i in $(seq 100); do kill -0 $HOOK_PID 2>/dev/null || break; sleep 0.1; done
	wait $HOOK_PID 2>/dev/null
	rmdir "$(df_cg2root)/df$$-$id"
	jq -nc --arg id "$id" --arg b "$DF_T" '{ociVersion: "1.0.2", id: $id, status: "stopped", bundle: $b, pid: 0}' |
		"$DF_BIN" hook poststop 2>>"$DF_T/stderr"
	HOOK_OUT=$(sed '0,/ready/d' "$DF_T/$id.out" | tr '\n' ' ' | sed 's/ *$//')
	HOOK_REP=$DF_REPORTS/$id.json
}
# the fence's config flags (DF_CFG_FRESH = 1), read from its pinned config map
df_cfg_flags() { bpftool --json map lookup pinned "$DF_PINS/$1/config" key 0 0 0 0 2>/dev/null | jq -r '.formatted.value.flags // empty'; }
# df_hook_hold ID ANNOTATIONS CMD...: the fence holds and CMD waits to start
# until df_release ID (then df_hook_detach ID)
df_hook_hold() {
	local id=$1 annot=$2
	shift 2
	# a fifo, not a polled file: a process the wait started would be in the cgroup too
	mkfifo "$DF_T/$id.fifo"
	df_hook_attach "$id" "$annot" sh -c 'echo ready; read go <"$0"; exec "$@"' "$DF_T/$id.fifo" "$@"
}
# df_hook_job ID ANNOTATIONS CMD...: CMD started once the fence holds, to its end
df_hook_job() {
	df_hook_hold "$@"
	df_release "$1"
	df_hook_detach "$1"
}
