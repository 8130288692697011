#!/bin/bash
# Install the Debian packages depfence needs to build and to run its tests,
# only those missing. Idempotent; quiet when nothing is missing.
# `deps.sh bench` adds what `make bench` compares against.
set -eu
PKGS=(
	# build
	make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libyajl-dev libseccomp-dev
	pkg-config
	# tests: netns, clients and servers, JSON, container runtimes
	iproute2 util-linux procps jq curl python3 python3-yaml busybox-static dnsmasq-base runc podman
	crun bind9-dnsutils strace nftables
	# man pages rendered and checked for warnings (test_install)
	man-db groff-base
	# sanitizer and leak runs (make check), fuzzing (make fuzz: clang's libFuzzer)
	valgrind
	# static test tools
	libc6-dev
	# kernel matrix (make check-kernels): other kernels under qemu, busybox initramfs
	qemu-system-x86 xz-utils
)
if [ "${1:-}" = bench ]; then
	# make bench: bulk throughput, and the other eBPF OCI hook it compares against
	PKGS+=(iperf3 oci-seccomp-bpf-hook)
fi

# The peer compiles its BCC program against the running kernel's headers at
# every start. A kernel that ships none (this machine's) gets Debian 12's
# cloud kernel headers, the release the peer's BCC comes from, unpacked once
# into a cache (never installed: their package would pull a kernel image in);
# tests/bench/hook_cost.sh points BCC_KERNEL_SOURCE at them.
BENCH_HEADERS=/var/cache/depfence-bench/kernel-headers
bench_headers() {
	local pkg common t
	[ -f "$BENCH_HEADERS/.complete" ] && return 0
	[ -d "/lib/modules/$(uname -r)/build" ] && return 0
	pkg=$(apt-cache depends linux-headers-cloud-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-headers-/ {print $2; exit}')
	common=$(apt-cache depends "$pkg" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /-common$/ {print $2; exit}')
	if [ -z "$pkg" ] || [ -z "$common" ]; then
		echo "deps: no Debian kernel headers to give the peer hook (apt-cache depends linux-headers-cloud-amd64)" >&2
		return 1
	fi
	t=$(mktemp -d /tmp/depfence-headers.XXXXXX)
	if ! (cd "$t" && apt-get download -q "$pkg" "$common" >/dev/null 2>&1) ||
		! dpkg-deb -x "$t/${pkg}_"*.deb "$t/x" || ! dpkg-deb -x "$t/${common}_"*.deb "$t/x"; then
		echo "deps: could not fetch $pkg and $common" >&2
		rm -rf "$t"
		return 1
	fi
	rm -rf "$BENCH_HEADERS"
	mkdir -p "$BENCH_HEADERS"
	# the common tree, then the kernel flavour's generated headers over it
	cp -a "$t/x/usr/src/$common/." "$BENCH_HEADERS/"
	cp -a --remove-destination "$t/x/usr/src/$pkg/." "$BENCH_HEADERS/"
	echo "$pkg" >"$BENCH_HEADERS/.complete"
	rm -rf "$t"
}
missing=()
for p in "${PKGS[@]}"; do
	case $p in \#*) continue ;; esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	if [ "${1:-}" = bench ] && [ "$(id -u)" = 0 ]; then bench_headers || true; fi
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q "${missing[@]}" >/dev/null
if [ "${1:-}" = bench ]; then bench_headers || true; fi
