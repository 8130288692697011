#!/bin/bash
# The whole test suite: unit, integration (real cgroups, netns), e2e (runc, podman).
# Every test prints "ok - NAME", "not ok - NAME: why" or "skip - NAME: why".
# Closes with one line: "N passed, N failed, N skipped".
# Under CI=true a skip counts as a failure: the privileged tiers must run there.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
# BUILD as for make: a separate build tree tests its own binaries
B=${BUILD:-build}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
export DF_BIN="$B/depfence" DF_TOOLS="$B/tests" DF_ROOT="$ROOT"
LOG_DIR=${DF_TEST_LOGS:-$B/test-logs}
mkdir -p "$LOG_DIR"

# What this suite mounts it unmounts: bpffs on /sys/fs/bpf is mounted by the
# product when missing; put the machine back as it was.
bpffs_before=0
grep -q ' /sys/fs/bpf bpf ' /proc/mounts && bpffs_before=1

pass=0 fail=0 skip=0
declare -a failures=()

run_one() {
	local name=$1; shift
	local log="$LOG_DIR/$name.log" rc line got=0
	mkdir -p "$(dirname "$log")"
	timeout --kill-after=10 "${DF_TEST_TIMEOUT:-600}" "$@" >"$log" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		"ok - "*) pass=$((pass + 1)); got=1 ;;
		"not ok - "*) fail=$((fail + 1)); failures+=("$name: ${line#not ok - }"); got=1 ;;
		"skip - "*)
			got=1
			if [ "${CI:-}" = true ]; then
				fail=$((fail + 1)); failures+=("$name: skipped under CI: ${line#skip - }")
			else
				skip=$((skip + 1))
			fi ;;
		esac
	done <"$log"
	if [ $rc -ne 0 ] && ! grep -q '^not ok - ' "$log"; then
		fail=$((fail + 1)); failures+=("$name: exited $rc without a failing check (see $log)")
	elif [ $got = 0 ]; then
		fail=$((fail + 1)); failures+=("$name: ran no check (see $log)")
	fi
	printf '%-40s %s\n' "$name" "$(grep -c '^ok - ' "$log") ok, $(grep -c '^not ok - ' "$log") failed, $(grep -c '^skip - ' "$log") skipped (rc $rc)"
}

# arguments: run only the tests whose name contains one of them
selected() {
	[ $# -eq 1 ] && return 0
	local n=$1 p; shift
	for p; do [[ $n == *$p* ]] && return 0; done
	return 1
}
for t in "$B"/tests/test_*; do
	[ -x "$t" ] || continue
	n=unit/$(basename "$t")
	[ -z "${SAN_ONLY:-}" ] && selected "$n" "$@" || continue
	run_one "$n" "$t"
done
for t in tests/integration/test_*.sh tests/e2e/test_*.sh tests/examples/test_*.sh; do
	[ -f "$t" ] || continue
	n=${t#tests/}; n=${n%.sh}
	[ -z "${SAN_ONLY:-}" ] && selected "$n" "$@" || continue
	run_one "$n" bash "$t"
done

# The sanitizer tier (make check): SAN_BUILD is a tree built with ASan and
# UBSan; the tests named by SAN_TESTS (name fragments) run again from it, as
# san/NAME, with leaks and undefined behaviour fatal.
san_selected() {
	local p
	for p in ${SAN_TESTS:-unit/}; do [[ $1 == *$p* ]] && return 0; done
	return 1
}
if [ -n "${SAN_BUILD:-}" ]; then
	SB=$SAN_BUILD
	case $SB in /*) ;; *) SB=$ROOT/$SB ;; esac
	SAN_ENV=(env DF_BIN="$SB/depfence" DF_TOOLS="$SB/tests"
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1)
	[ -x "$SB/depfence" ] || { fail=$((fail + 1)); failures+=("san: no sanitizer build in $SB"); }
	for t in "$SB"/tests/test_*; do
		[ -x "$t" ] || continue
		n=unit/$(basename "$t")
		san_selected "$n" && selected "$n" "$@" || continue
		run_one "san/$n" "${SAN_ENV[@]}" "$t"
	done
	for t in tests/integration/test_*.sh tests/e2e/test_*.sh tests/examples/test_*.sh; do
		n=${t#tests/}; n=${n%.sh}
		san_selected "$n" && selected "$n" "$@" || continue
		run_one "san/$n" "${SAN_ENV[@]}" bash "$t"
	done
fi

if [ $bpffs_before = 0 ] && grep -q ' /sys/fs/bpf bpf ' /proc/mounts; then
	rmdir /sys/fs/bpf/depfence 2>/dev/null
	# the kernel's own preloaded iterators (maps.debug, progs.debug) do not count
	[ -z "$(ls -A /sys/fs/bpf 2>/dev/null | grep -v '\.debug$')" ] && umount /sys/fs/bpf
fi

for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
