#!/bin/bash
# The kernel matrix: the freshly built depfence on each kernel of
# tests/kernels/kernels.list, booted under qemu (TCG: no KVM needed) with a
# busybox initramfs, or, for "host", on this machine's kernel in private
# namespaces. tests/kernels/guest.sh is the run on each kernel.
#
#   tests/kernels/check.sh [ID]...      (make check-kernels; BUILD as for make)
#
# Prints "ok - kernel ID: ..." / "not ok - kernel ID: ...", the matrix, and
# "N passed, N failed"; exits 1 on any failure.
#
# Kernels are fetched once with apt-get download, through a private sources
# list and apt state (the archive address comes from this machine's own apt
# sources), and cached in $DF_KERNEL_CACHE (default /var/cache/depfence-kernels);
# DF_KERNEL_REFRESH=1 looks for newer packages. Per-kernel logs (serial
# console, results) stay in $BUILD/kernels/ID/.
#
# Environment: DF_KERNEL_TIMEOUT (per VM, seconds, default 300),
# DF_KERNEL_JOBS (VMs at once, default: the number of CPUs),
# DF_KERNEL_MEM (default 1G), DF_KERNEL_CPU (qemu -cpu, default max,cx16=off).
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
B=${BUILD:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
LIST=$ROOT/tests/kernels/kernels.list
CACHE=${DF_KERNEL_CACHE:-/var/cache/depfence-kernels}
TIMEOUT=${DF_KERNEL_TIMEOUT:-300}
JOBS=${DF_KERNEL_JOBS:-$(nproc)}
MEM=${DF_KERNEL_MEM:-1G}
# cx16 off: qemu 7.2's TCG corrupts EFLAGS on CMPXCHG16B now and then, and
# 6.12's SLUB oopses on it (double fault in kmem_cache_alloc; seen here in
# about half the boots); without CX16 the kernel takes its fallback paths.
CPU=${DF_KERNEL_CPU:-max,cx16=off}
OUT=$B/kernels
# modules the in-VM tests need (their dependencies are found and added)
MODULES=(veth)
# host programs copied into the initramfs, with their shared libraries
HOST_PROGS=(ip jq dnsmasq)

pass=0 fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
notok() { echo "not ok - $1: $2"; fail=$((fail + 1)); }
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit
}
t0=$(date +%s)

# --- what is needed ---
need=()
for f in depfence tests/dfclient tests/dfserver tests/dfdns tests/dfkload tests/test_bpf_dns; do
	[ -x "$B/$f" ] || need+=("$B/$f (make BUILD=$B all tests check-kernels builds it)")
done
for p in qemu-system-x86_64 busybox apt-get dpkg-deb xz "${HOST_PROGS[@]}"; do
	command -v "$p" >/dev/null || need+=("$p (make deps installs it)")
done
if [ ${#need[@]} -gt 0 ]; then
	for n in "${need[@]}"; do notok "kernel matrix: requirements" "missing $n"; done
	finish
fi
if [ "$(id -u)" != 0 ]; then
	notok "kernel matrix: requirements" "needs root (apt cache, BPF, namespaces)"
	finish
fi

# --- the list ---
ids=() suites=() pats=() stands=()
while read -r id suite pat rest; do
	case $id in '' | \#*) continue ;; esac
	if [ $# -gt 0 ]; then
		want=0
		for a in "$@"; do [ "$a" = "$id" ] && want=1; done
		[ $want = 1 ] || continue
	fi
	ids+=("$id") suites+=("$suite") pats+=("$pat") stands+=("$rest")
done <"$LIST"
if [ ${#ids[@]} -eq 0 ]; then
	notok "kernel matrix: list" "no kernel in $LIST${1:+ matches $*}"
	finish
fi
rm -rf "$OUT"
mkdir -p "$OUT" "$CACHE"

# --- fetch: a private apt configuration, the archive this machine uses ---
archive_uri() {
	# the first non-security "deb" source, deb822 (*.sources) or one-line (*.list)
	{
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			awk 'BEGIN { RS = ""; FS = "\n" }
			{ t = ""; u = ""
			  for (i = 1; i <= NF; i++) {
				if ($i ~ /^Types:/) t = $i
				if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) }
			  }
			  if (t ~ /[ \t]deb([ \t]|$)/ && u != "") print u }' "$f"
		done
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			sed -n 's/^deb[ \t]\+\(\[[^]]*\][ \t]\+\)\?\([^ \t]\+\).*/\2/p'
	} | grep -v -- '-security' | grep -v '^cdrom:' | head -n 1
}

APT=$CACHE/apt
aptc() {
	"$@" -q -o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State="$APT/state" -o Dir::State::status=/dev/null -o Dir::Cache="$APT/cache" \
		-o APT::Architecture=amd64 -o APT::Sandbox::User=root
}

# find_module ROOT VERSION NAME: the module's file in an extracted package
find_module() {
	local alt=${3//-/_}
	find "$1/lib/modules/$2" \( -name "$3.ko" -o -name "$3.ko.xz" -o -name "$alt.ko" -o -name "$alt.ko.xz" \
		-o -name "${3//_/-}.ko" -o -name "${3//_/-}.ko.xz" \) | head -n 1
}

# add_module ROOT VERSION NAME DEST: NAME and what it depends on, decompressed, in load order
add_module() {
	local f base dep
	grep -qx "$3" "$4/.seen" 2>/dev/null && return 0
	echo "$3" >>"$4/.seen"
	f=$(find_module "$1" "$2" "$3")
	[ -n "$f" ] || { echo "module $3 not in the package" >&2; return 1; }
	base=$(basename "$f")
	base=${base%.xz}
	case $f in
	*.xz) xz -dc "$f" >"$4/$base" || return 1 ;;
	*) cp "$f" "$4/$base" || return 1 ;;
	esac
	for dep in $(tr '\0' '\n' <"$4/$base" | sed -n 's/^depends=//p' | tr ',' ' '); do
		add_module "$1" "$2" "$dep" "$4" || return 1
	done
	echo "$base" >>"$4/order"
}

# extract ID DEB: vmlinuz and the needed modules into the cache
extract() {
	local d=$CACHE/$1 x ver
	x=$(mktemp -d "$CACHE/x.XXXXXX")
	dpkg-deb -x "$2" "$x" || { rm -rf "$x"; return 1; }
	ver=$(ls "$x/lib/modules" | head -n 1)
	rm -rf "$d/modules" "$d/vmlinuz"
	mkdir -p "$d/modules"
	for m in "${MODULES[@]}"; do
		add_module "$x" "$ver" "$m" "$d/modules" || { rm -rf "$x"; return 1; }
	done
	rm -f "$d/modules/.seen"
	cp "$x/boot/vmlinuz-$ver" "$d/vmlinuz"
	echo "$ver" >"$d/version"
	echo "${MODULES[*]}" >"$d/modules.wanted"
	rm -rf "$x"
}

fetch_all() {
	local i id d todo=() uri want=() s names name deb n
	for i in "${!ids[@]}"; do
		id=${ids[$i]}
		[ "$id" = host ] && continue
		d=$CACHE/$id
		if [ "${DF_KERNEL_REFRESH:-}" != 1 ] && [ -s "$d/vmlinuz" ] && [ -f "$d/package.deb" ]; then
			# the module list changed: extract again from the cached package
			if [ "$(cat "$d/modules.wanted" 2>/dev/null)" != "${MODULES[*]}" ]; then
				extract "$id" "$d/package.deb" || echo "fetch $id: extracting modules failed" >>"$OUT/fetch.err"
			fi
			continue
		fi
		todo+=("$i")
	done
	[ ${#todo[@]} -eq 0 ] && return 0
	uri=$(archive_uri)
	if [ -z "$uri" ]; then
		echo "no Debian archive in this machine's apt sources" >>"$OUT/fetch.err"
		return 1
	fi
	mkdir -p "$APT/state/lists/partial" "$APT/cache/archives/partial"
	for i in "${todo[@]}"; do
		[[ " ${want[*]:-} " == *" ${suites[$i]} "* ]] || want+=("${suites[$i]}")
	done
	: >"$APT/sources.list"
	local kr=
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] &&
		kr="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
	for s in "${want[@]}"; do echo "deb $kr$uri $s main" >>"$APT/sources.list"; done
	echo "fetch: apt-get update (${want[*]}) from this machine's archive" >&2
	if ! aptc apt-get update >"$OUT/apt-update.log" 2>&1; then
		echo "apt-get update failed: $(tail -n 3 "$OUT/apt-update.log" | tr '\n' ' ')" >>"$OUT/fetch.err"
		return 1
	fi
	for i in "${todo[@]}"; do
		id=${ids[$i]}
		d=$CACHE/$id
		# the highest version of a name that matches the pattern and the suite has
		names=$(aptc apt-cache pkgnames linux-image- 2>/dev/null | sort -V -r)
		name=
		for n in $names; do
			# shellcheck disable=SC2254
			case $n in ${pats[$i]}) ;; *) continue ;; esac
			aptc apt-cache policy "$n" 2>/dev/null | grep -q "Candidate: [0-9]" || continue
			aptc apt-cache madison "$n" 2>/dev/null | grep -q " ${suites[$i]}/main " || continue
			name=$n
			break
		done
		if [ -z "$name" ]; then
			echo "fetch $id: no package matches ${pats[$i]} in ${suites[$i]}" >>"$OUT/fetch.err"
			continue
		fi
		echo "fetch: $name" >&2
		rm -rf "$d"
		mkdir -p "$d"
		if ! (cd "$d" && aptc apt-get download "$name" >"$OUT/apt-download-$id.log" 2>&1); then
			echo "fetch $id: apt-get download $name failed: $(tail -n 2 "$OUT/apt-download-$id.log" | tr '\n' ' ')" >>"$OUT/fetch.err"
			continue
		fi
		deb=$(ls "$d"/*.deb | head -n 1)
		mv "$deb" "$d/package.deb"
		basename "$deb" >"$d/package.name"
		extract "$id" "$d/package.deb" || echo "fetch $id: extracting $name failed" >>"$OUT/fetch.err"
	done
}

# --- the initramfs: busybox, depfence, the test programs, their libraries ---
build_common() {
	local r=$OUT/initramfs f l p a
	rm -rf "$r"
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,df/tests,lib/modules/df}
	cp "$(command -v busybox)" "$r/bin/busybox"
	if ! file -L "$r/bin/busybox" 2>/dev/null | grep -q 'statically linked' &&
		ldd "$r/bin/busybox" >/dev/null 2>&1; then
		echo "busybox is not static (install busybox-static)" >&2
		return 1
	fi
	for a in $(busybox --list); do
		[ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
	done
	cp "$B/depfence" "$r/df/"
	for f in dfclient dfserver dfdns dfkload test_bpf_dns; do cp "$B/tests/$f" "$r/df/tests/"; done
	cp "$ROOT/tests/kernels/guest.sh" "$r/df/"
	for p in "${HOST_PROGS[@]}"; do cp "$(command -v "$p")" "$r/usr/sbin/$p"; done
	for f in "$r"/df/depfence "$r"/df/tests/* "$r"/usr/sbin/*; do
		ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]+ \(/ { print $1 }'
	done | sort -u | while read -r l; do
		mkdir -p "$r$(dirname "$l")"
		cp -L "$l" "$r$l"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
	echo 'root:x:0:' >"$r/etc/group"
	cat >"$r/init" <<'EOF'
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
out=/dev/ttyS1
[ -c $out ] || out=/dev/console
{
	echo "info booted after $(cut -d' ' -f1 /proc/uptime) s"
	while read -r m; do
		insmod "/lib/modules/df/$m" || echo "info insmod $m failed"
	done </lib/modules/df/order
	DF_BIN=/df/depfence DF_TOOLS=/df/tests DF_IP=/usr/sbin/ip sh /df/guest.sh
	echo "info done after $(cut -d' ' -f1 /proc/uptime) s"
	echo DFK-DONE
} >$out 2>&1
sync
poweroff -f
EOF
	chmod 755 "$r/init"
	(cd "$r" && find . | busybox cpio -o -H newc 2>/dev/null) >"$OUT/common.cpio"
}

# --- one kernel ---
# run_vm ID: boot it; results in $OUT/ID/results.log, console in console.log
run_vm() {
	local id=$1 k=$OUT/$1 c=$CACHE/$1
	mkdir -p "$k/root/lib/modules/df"
	cp "$c"/modules/*.ko "$c/modules/order" "$k/root/lib/modules/df/"
	(cd "$k/root" && find . | busybox cpio -o -H newc 2>/dev/null) >"$k/modules.cpio"
	cat "$OUT/common.cpio" "$k/modules.cpio" >"$k/initrd.cpio"
	rm -rf "$k/root" "$k/modules.cpio"
	local s
	s=$(date +%s)
	timeout -k 5 "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu "$CPU" -smp 1 -m "$MEM" \
		-nographic -no-reboot -monitor none -nic none \
		-serial "file:$k/console.log" -serial "file:$k/results.log" \
		-kernel "$c/vmlinuz" -initrd "$k/initrd.cpio" \
		-append "console=ttyS0 panic=-1 loglevel=4 random.trust_cpu=on" </dev/null >"$k/qemu.log" 2>&1
	echo $? >"$k/qemu.rc"
	echo $(($(date +%s) - s)) >"$k/seconds"
	rm -f "$k/initrd.cpio"
}

run_host() {
	local k=$OUT/host s
	s=$(date +%s)
	mkdir -p "$k"
	# private mounts (a bpffs of its own) and network: nothing is left on the host
	timeout -k 5 "$TIMEOUT" unshare --mount --net --propagation private sh -c '
		mount -t bpf bpf /sys/fs/bpf || exit 1
		uname -r >"$0/version"
		DF_BIN=$1/depfence DF_TOOLS=$1/tests sh "$2"
		echo DFK-DONE' "$k" "$B" "$ROOT/tests/kernels/guest.sh" >"$k/results.log" 2>&1
	echo $? >"$k/qemu.rc"
	echo $(($(date +%s) - s)) >"$k/seconds"
}

# --- results ---
# report ID STANDS-FOR: ok/not ok lines for it, and its row of the matrix
declare -a rows=()
report() {
	local id=$1 what=$2 k=$OUT/$1 res ver secs rc line in_dns=0 dp=0 df=0 dfirst=() dend=
	local all_p=0 all_f=0 cs="" dns="" cs_bad=0 dns_bad=0 cs_n=0 dns_n=0 insns="" loadbad=""
	ver=$(cat "$k/version" 2>/dev/null || cat "$CACHE/$id/version" 2>/dev/null || echo "?")
	secs=$(cat "$k/seconds" 2>/dev/null || echo "?")
	rc=$(cat "$k/qemu.rc" 2>/dev/null || echo "?")
	res=$k/results.txt
	tr -d '\r' <"$k/results.log" >"$res" 2>/dev/null
	if ! grep -q '^DFK-DONE' "$res"; then
		local why="exit $rc"
		[ "$rc" = 124 ] && why="timed out after $TIMEOUT s"
		notok "kernel $id: run finished" "$why; serial log $k/console.log, results $k/results.log: $(tail -n 3 "$k/console.log" "$res" 2>/dev/null | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' |
			tr -cd '[:print:]\n' | grep -v '^$\|^==>' | tail -n 2 | tr '\n' ' ')"
		all_f=$((all_f + 1))
	fi
	while IFS= read -r line; do
		case $line in
		"begin test_bpf_dns") in_dns=1 ;;
		"end test_bpf_dns "*) in_dns=0 dend=${line#end test_bpf_dns } ;;
		"prog "*)
			set -- $line
			if [ "$4" = loaded ]; then
				insns+="${2#df_}=${5#insns=} "
			else
				insns+="${2#df_}=refused "
				loadbad+="${2#df_} "
			fi ;;
		"ok - "* | "not ok - "* | "skip - "*)
			if [ $in_dns = 1 ]; then
				case $line in
				"ok - "*) dp=$((dp + 1)) ;;
				*) df=$((df + 1)); [ ${#dfirst[@]} -lt 3 ] && dfirst+=("${line#*- }") ;;
				esac
				continue
			fi
			local body=${line#ok - }
			body=${body#not ok - }
			body=${body#skip - }
			case $body in
			connect:* | sendmsg:*) cs_n=$((cs_n + 1)) ;;
			dns:*) dns_n=$((dns_n + 1)) ;;
			esac
			case $line in
			"ok - "*) ok "kernel $id: $body"; all_p=$((all_p + 1)) ;;
			*)
				echo "not ok - kernel $id: $body"
				fail=$((fail + 1)) all_f=$((all_f + 1))
				case $body in
				connect:* | sendmsg:*) cs_bad=1 ;;
				dns:*) dns_bad=1 ;;
				esac ;;
			esac ;;
		esac
	done <"$res"
	if [ -n "$dend" ] || [ $((dp + df)) -gt 0 ]; then
		local drc=${dend#rc=} ds=${dend##*seconds=}
		drc=${drc%% *}
		if [ "$df" = 0 ] && [ "$dp" -gt 0 ] && [ "$drc" = 0 ]; then
			ok "kernel $id: test_bpf_dns: $dp checks passed (${ds}s)"
		else
			notok "kernel $id: test_bpf_dns" "$df of $((dp + df)) checks failed, exit ${drc:-none}: ${dfirst[*]:-no check ran}"
			dns_bad=1
		fi
	else
		notok "kernel $id: test_bpf_dns" "did not run"
		dns_bad=1
	fi
	all_p=$((all_p + dp)) all_f=$((all_f + df))
	case " $loadbad" in *" connect"* | *" sendmsg"*) cs_bad=1 ;; esac
	case " $loadbad" in *" egress"* | *" ingress"*) dns_bad=1 ;; esac
	[ $cs_n = 0 ] && cs_bad=1
	[ $dns_n = 0 ] && dns_bad=1
	[ $cs_bad = 0 ] && cs=yes || cs=no
	[ $dns_bad = 0 ] && dns=yes || dns=no
	rows+=("$id|$ver|$what|$cs|$dns|$all_p|$all_f|${insns% }|$secs")
}

# --- run it all ---
fetch_all
[ -s "$OUT/fetch.err" ] && while IFS= read -r l; do notok "kernel matrix: fetch" "$l"; done <"$OUT/fetch.err"
build_common || { notok "kernel matrix: initramfs" "could not build it"; finish; }

vms=()
for i in "${!ids[@]}"; do
	id=${ids[$i]}
	[ "$id" = host ] && continue
	if [ ! -s "$CACHE/$id/vmlinuz" ]; then
		notok "kernel $id: fetch" "no kernel for ${pats[$i]} in ${suites[$i]}"
		continue
	fi
	vms+=("$id")
done
echo "kernel matrix: ${#vms[@]} VMs ($JOBS at once, ${TIMEOUT}s each at most)" >&2
running=0
for id in "${vms[@]}"; do
	if [ $running -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_vm "$id" &
	running=$((running + 1))
done
for i in "${!ids[@]}"; do
	[ "${ids[$i]}" = host ] && run_host
done
wait

for i in "${!ids[@]}"; do
	id=${ids[$i]}
	[ -d "$OUT/$id" ] || continue
	report "$id" "${stands[$i]}"
done

# --- the matrix ---
{
	printf '\n%-6s %-28s %-7s %-4s %6s %6s %5s  %s\n' kernel version conn/udp dns passed failed secs "verified instructions per program"
	for r in "${rows[@]}"; do
		IFS='|' read -r id ver sf cs dns p f insns secs <<<"$r"
		printf '%-6s %-28s %-7s %-4s %6s %6s %5s  %s\n' "$id" "$ver" "$cs" "$dns" "$p" "$f" "$secs" "$insns"
	done
	echo
} | tee "$OUT/matrix.txt"
{
	echo "| kernel | stands for | connect/sendmsg | DNS | checks passed | verified instructions |"
	echo "|---|---|---|---|---|---|"
	for r in "${rows[@]}"; do
		IFS='|' read -r id ver sf cs dns p f insns secs <<<"$r"
		echo "| $ver | $sf | $cs | $dns | $p of $((p + f)) | $insns |"
	done
} >"$OUT/matrix.md"
echo "kernel matrix: $(($(date +%s) - t0)) s; logs in $OUT" >&2
finish
