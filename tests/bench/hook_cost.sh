#!/bin/bash
# What the hook adds to a container start and stop: `runc run` of a trivial
# container without hooks and with depfence's createRuntime + poststop hooks,
# N runs each (default 30), interleaved so noise hits both sides. Prints
# medians and the difference. A measurement, not a test: it asserts nothing.
#
# The peer, oci-seccomp-bpf-hook (Debian's package, the other eBPF OCI hook),
# is tried once when installed; only if that run succeeds is it timed N times
# in the same interleaving. Its outcome goes to the summary either way.
#
# Environment: BUILD (default build/) holds the depfence binary; N;
# PEER_KERNEL_SOURCE, when set, the kernel headers the peer's BCC compiles
# against (BCC_KERNEL_SOURCE in its hook's environment); HOOK_RAW,
# when set, receives the raw times ("plain|hook|peer MICROSECONDS" lines) and
# HOOK_RAW.peer the peer's outcome ("status ok|failed", "ms N", "exit N",
# then its last messages).
set -eu
cd "$(dirname "$0")/../.."
N=${N:-30}
BUILD=${BUILD:-build}
BIN=$(cd "$BUILD" && pwd)/depfence
PEER=/usr/libexec/oci/hooks.d/oci-seccomp-bpf-hook
T=$(mktemp -d /tmp/depfence-bench.XXXXXX)
PINS=/sys/fs/bpf/depfence-bench-$$
CGP=depfence-bench-$$
ID=dfb$$
cleanup() {
	local c d
	for c in plain hook first noop peer; do runc delete -f "$ID-$c" >/dev/null 2>&1 || true; done
	# the kept program sets, and the hold cgroup once none is left
	if [ -f "$T/config.json" ]; then
		jq '.fence_pool = 0' "$T/config.json" >"$T/config-gc.json" &&
			DEPFENCE_CONFIG=$T/config-gc.json "$BIN" gc >/dev/null 2>&1
	fi
	for d in /sys/fs/cgroup/*/"$CGP" /sys/fs/cgroup/"$CGP"; do
		[ -d "$d" ] || continue
		for c in plain hook first noop peer; do rmdir "$d/$c" 2>/dev/null || true; done
		rmdir "$d" 2>/dev/null || true
	done
	[ -d "$PINS" ] && find "$PINS" -mindepth 1 -depth -delete 2>/dev/null
	rmdir "$PINS" 2>/dev/null || true
	[ -n "${TRACEFS_MOUNTED:-}" ] && umount /sys/kernel/tracing 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -x "$BIN" ] || { echo "hook_cost: $BIN not built" >&2; exit 1; }
mkdir -p "$T/plain/rootfs/bin" "$T/reports" "$T/state"
cp /bin/busybox "$T/plain/rootfs/bin/"
ln -s busybox "$T/plain/rootfs/bin/true"
# the product's defaults: attribution_linger keeps the attribution programs
# loaded between starts, and fence_pool the verified programs of a finished
# fence for the next like it; "first" sets attribution_linger to 0 (no pool
# then either), so every start is a host's first fence and loads them again
cat >"$T/config.json" <<EOC
{ "report_dir": "$T/reports", "state_dir": "$T/state", "bpffs_root": "$PINS" }
EOC
cat >"$T/config-first.json" <<EOC
{ "report_dir": "$T/reports", "state_dir": "$T/state-first", "bpffs_root": "$PINS/first", "attribution_linger": 0 }
EOC
mkdir -p "$T/state-first"
(cd "$T/plain" && runc spec)
jq --arg cg "/$CGP/plain" '.process.terminal = false | .process.args = ["/bin/true"] | .linux.cgroupsPath = $cg' \
	"$T/plain/config.json" >"$T/c.json" && mv "$T/c.json" "$T/plain/config.json"
mkdir -p "$T/hook"
cp -a "$T/plain/rootfs" "$T/hook/"
jq --arg bin "$BIN" --arg cfg "DEPFENCE_CONFIG=$T/config.json" --arg cg "/$CGP/hook" '
	.linux.cgroupsPath = $cg |
	.annotations = {"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.0/24, github.com"} |
	.hooks = {
		createRuntime: [{path: $bin, args: ["depfence", "hook", "createRuntime"], env: [$cfg]}],
		poststop: [{path: $bin, args: ["depfence", "hook", "poststop"], env: [$cfg]}]
	}' "$T/plain/config.json" >"$T/hook/config.json"
# the floor of any OCI hook: runc runs a process at createRuntime and one at
# poststop that do nothing (/bin/true), in the same places as depfence's
mkdir -p "$T/noop"
cp -a "$T/plain/rootfs" "$T/noop/"
jq --arg cg "/$CGP/noop" '
	.linux.cgroupsPath = $cg |
	.hooks.createRuntime = [{path: "/bin/true", args: ["true"]}] |
	.hooks.poststop = [{path: "/bin/true", args: ["true"]}]' \
	"$T/hook/config.json" >"$T/noop/config.json"
mkdir -p "$T/first"
cp -a "$T/plain/rootfs" "$T/first/"
jq --arg cfg "DEPFENCE_CONFIG=$T/config-first.json" --arg cg "/$CGP/first" '
	.linux.cgroupsPath = $cg |
	.hooks.createRuntime[0].env = [$cfg] | .hooks.poststop[0].env = [$cfg]' \
	"$T/hook/config.json" >"$T/first/config.json"

ms() { echo $(( ($(date +%s%N) - $1) / 1000 )); }

# The peer: as its hooks.d file registers it (prestart, "-s"), triggered by
# its annotation; it writes the traced syscalls as a seccomp profile.
peer=none
if [ -x "$PEER" ]; then
	# its BCC program reads syscall tracepoints, whose layout BCC takes from
	# tracefs: mounted on a host booted by systemd, not always on this VM
	if [ ! -d /sys/kernel/tracing/events ] && mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null; then
		TRACEFS_MOUNTED=1
	fi
	mkdir -p "$T/peer"
	cp -a "$T/plain/rootfs" "$T/peer/"
	jq --arg bin "$PEER" --arg cg "/$CGP/peer" --arg out "of:$T/peer-profile.json" \
		--argjson env "$(jq -n --arg src "${PEER_KERNEL_SOURCE:-}" 'if $src == "" then [] else ["BCC_KERNEL_SOURCE=" + $src] end')" '
		.linux.cgroupsPath = $cg |
		.annotations = {"io.containers.trace-syscall": $out} |
		.hooks = { prestart: [{path: $bin, args: ["oci-seccomp-bpf-hook", "-s"], env: $env}] }' \
		"$T/plain/config.json" >"$T/peer/config.json"
	s=$(date +%s%N)
	rc=0
	timeout 60 runc run --bundle "$T/peer" "$ID-peer" >"$T/peer.out" 2>&1 || rc=$?
	t=$(ms "$s")
	runc delete -f "$ID-peer" >/dev/null 2>&1 || true
	if [ "$rc" = 0 ] && [ -s "$T/peer-profile.json" ]; then
		peer=ok
	else
		peer=failed
	fi
	{
		echo "status $peer"
		echo "ms $((t / 1000))"
		echo "exit $rc"
		# runc quotes the hook's stderr; one message a line
		sed 's/\\n/\n/g; s/\\"/"/g' "$T/peer.out" | grep -o 'msg="[^"]*"\?.*' | tail -n 6
	} >"$T/peer.log"
fi

# one run of each condition a round, the order rotated every round so that
# no condition always follows the same one (the peer's compile leaves the
# machine busy for whatever runs next)
conds=(plain hook first noop)
[ "$peer" = ok ] && conds+=(peer)
for i in $(seq "$N"); do
	for k in $(seq 0 $((${#conds[@]} - 1))); do
		c=${conds[$(((i + k) % ${#conds[@]}))]}
		s=$(date +%s%N); runc run --bundle "$T/$c" "$ID-$c" >/dev/null; echo "$c $(ms "$s")"
	done
done >"$T/times"
if [ -n "${HOOK_RAW:-}" ]; then
	cp "$T/times" "$HOOK_RAW"
	if [ -f "$T/peer.log" ]; then cp "$T/peer.log" "$HOOK_RAW.peer"; else echo "status not-installed" >"$HOOK_RAW.peer"; fi
fi
median() { grep "^$1 " "$T/times" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
p=$(median plain); h=$(median hook); f=$(median first); z=$(median noop)
awk -v p="$p" -v h="$h" -v f="$f" -v z="$z" -v n="$N" 'BEGIN {
	printf "runc run of /bin/true, %d runs each, interleaved, medians:\n", n
	printf "  without hooks:                %8.1f ms\n", p / 1000
	printf "  with depfence (create+stop):  %8.1f ms\n", h / 1000
	printf "  added by the hook:            %8.1f ms (%+.0f%%)\n", (h - p) / 1000, (h - p) * 100 / p
	printf "  each start a first fence:     %8.1f ms (%+.0f%%)\n", (f - p) / 1000, (f - p) * 100 / p
	printf "  hooks that do nothing:        %8.1f ms (%+.0f%%)\n", (z - p) / 1000, (z - p) * 100 / p
}'
case $peer in
ok)
	awk -v p="$p" -v q="$(median peer)" 'BEGIN {
		printf "  with oci-seccomp-bpf-hook:    %8.1f ms (%+.0f%%)\n", q / 1000, (q - p) * 100 / p }' ;;
failed)
	echo "  oci-seccomp-bpf-hook: tried once, the container failed after $(awk '$1 == "ms" {print $2}' "$T/peer.log") ms:"
	sed -n '4,$p' "$T/peer.log" | sed 's/^/    /' ;;
none) echo "  oci-seccomp-bpf-hook: not installed (apt-get install oci-seccomp-bpf-hook)" ;;
esac
