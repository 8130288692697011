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
missing=()
for p in "${PKGS[@]}"; do
	case $p in \#*) continue ;; esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q "${missing[@]}" >/dev/null
