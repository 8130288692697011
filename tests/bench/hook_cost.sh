#!/bin/bash
# What the hook adds to a container start and stop: `runc run` of a trivial
# container without hooks and with depfence's createRuntime + poststop hooks,
# N runs each, interleaved so noise hits both sides. Prints medians and the
# difference. A measurement, not a test: it asserts nothing.
set -eu
cd "$(dirname "$0")/../.."
N=${N:-20}
BIN=$PWD/build/depfence
T=$(mktemp -d /tmp/depfence-bench.XXXXXX)
PINS=/sys/fs/bpf/depfence-bench-$$
cleanup() {
	runc delete -f dfb-plain >/dev/null 2>&1 || true
	runc delete -f dfb-hook >/dev/null 2>&1 || true
	rm -rf "$PINS" "$T"
}
trap cleanup EXIT
mkdir -p "$T/plain/rootfs/bin" "$T/reports" "$T/state"
cp /bin/busybox "$T/plain/rootfs/bin/"
ln -s busybox "$T/plain/rootfs/bin/true"
cat >"$T/config.json" <<EOC
{ "report_dir": "$T/reports", "state_dir": "$T/state", "bpffs_root": "$PINS" }
EOC
(cd "$T/plain" && runc spec)
jq '.process.terminal = false | .process.args = ["/bin/true"] | .linux.cgroupsPath = "/depfence-bench/plain"' \
	"$T/plain/config.json" >"$T/c.json" && mv "$T/c.json" "$T/plain/config.json"
mkdir -p "$T/hook"
cp -a "$T/plain/rootfs" "$T/hook/"
jq --arg bin "$BIN" --arg cfg "DEPFENCE_CONFIG=$T/config.json" '
	.linux.cgroupsPath = "/depfence-bench/hook" |
	.annotations = {"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.0/24, github.com"} |
	.hooks = {
		createRuntime: [{path: $bin, args: ["depfence", "hook", "createRuntime"], env: [$cfg]}],
		poststop: [{path: $bin, args: ["depfence", "hook", "poststop"], env: [$cfg]}]
	}' "$T/plain/config.json" >"$T/hook/config.json"

ms() { echo $(( ($(date +%s%N) - $1) / 1000 )); }
for i in $(seq "$N"); do
	s=$(date +%s%N); runc run --bundle "$T/plain" dfb-plain >/dev/null; echo "plain $(ms "$s")"
	s=$(date +%s%N); runc run --bundle "$T/hook" dfb-hook >/dev/null; echo "hook $(ms "$s")"
done >"$T/times"
for d in /sys/fs/cgroup/*/depfence-bench /sys/fs/cgroup/unified/depfence-bench; do rmdir "$d" 2>/dev/null || true; done
median() { grep "^$1 " "$T/times" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
p=$(median plain); h=$(median hook)
awk -v p="$p" -v h="$h" -v n="$N" 'BEGIN {
	printf "runc run of /bin/true, %d runs each, interleaved, medians:\n", n
	printf "  without hooks:                %8.1f ms\n", p / 1000
	printf "  with depfence (create+stop):  %8.1f ms\n", h / 1000
	printf "  added by the hook:            %8.1f ms (%+.0f%%)\n", (h - p) / 1000, (h - p) * 100 / p
}'
