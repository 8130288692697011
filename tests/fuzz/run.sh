#!/bin/bash
# make fuzz: each libFuzzer target for FUZZ_SECONDS, from its seed corpus.
# New inputs go to $FUZZ_BUILD/corpus/TARGET (not into git), crashes to
# $FUZZ_BUILD/crashes/TARGET/. Prints the executions per target; exits 1 when
# a target crashed (copy the input to tests/fuzz/regress/TARGET/ once fixed).
set -u
cd "$(dirname "$0")/../.."
B=${FUZZ_BUILD:-build/fuzz}
S=${FUZZ_SECONDS:-60}
fail=0
printf '%-8s %12s %10s %8s  %s\n' target executions exec/s corpus result
for t in "$@"; do
	corpus=$B/corpus/$t crashes=$B/crashes/$t log=$B/logs/$t.log
	mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
	extra=()
	# the DNS target hands each input to BPF_PROG_TEST_RUN inside a UDP packet
	[ "$t" = dns ] && extra=(-max_len=1400)
	# -timeout: one input taking seconds is a hang; -rss_limit_mb: the readers cap their input
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		timeout --kill-after=10 $((S + 60)) \
		"$B/fuzz_$t" -max_total_time="$S" -print_final_stats=1 -timeout=10 \
		-rss_limit_mb=2048 -artifact_prefix="$crashes/" "${extra[@]}" \
		"$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	n=$(find "$corpus" -type f | wc -l)
	if [ $rc -eq 0 ]; then
		res=ok
	else
		res="CRASH (rc $rc): $(ls -t "$crashes" | head -1), see $log"
		fail=1
	fi
	printf '%-8s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$n" "$res"
done
exit $fail
