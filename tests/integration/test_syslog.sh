#!/bin/bash
# One syslog line per fence at attach and one at report, with the id, label,
# mode, counts and report path; errors with their context. The host has no
# syslog daemon to ask, so /dev/log is this test's own datagram socket, bound
# over /dev/log in a private mount namespace (the host's /dev is untouched).
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/syslog"
df_setup

NS=$(df_netns syslog) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 80 443 || { notok "test servers" "did not come up"; exit 1; }

cat >"$DF_T/syslogd.py" <<'PY'
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
s.settimeout(0.5)
end = time.time() + 300
with open(sys.argv[2], "a", buffering=1) as out:
    while time.time() < end:
        try:
            out.write(s.recv(65536).decode(errors="replace").rstrip("\n") + "\n")
        except socket.timeout:
            pass
PY
python3 "$DF_T/syslogd.py" "$DF_T/log.sock" "$DF_T/syslog" &
df_track_pid $!
for i in $(seq 50); do [ -S "$DF_T/log.sock" ] && break; sleep 0.1; done

# in_logged CMD...: CMD in the test netns, in a mount namespace whose /dev/log is ours
in_logged() {
	unshare -m --propagation private -- sh -c '
		d=$1; shift
		mkdir -p "$d/dev" && mount --rbind /dev "$d/dev" && mount -t tmpfs -o size=64k none /dev &&
		for n in null zero full random urandom; do
			touch "/dev/$n" && mount --bind "$d/dev/$n" "/dev/$n" || exit 99
		done
		touch /dev/log && mount --bind "$d/log.sock" /dev/log || exit 99
		exec nsenter --net="/run/netns/$0" -- "$@"' "$NS" "$DF_T" "$@"
}

# lines PATTERN: how many syslog lines match (bounded wait for the datagrams)
lines() {
	local i n=0
	for i in $(seq 20); do
		n=$(grep -c -- "$1" "$DF_T/syslog" 2>/dev/null)
		[ "${n:-0}" -ge 1 ] && break
		sleep 0.1
	done
	echo "${n:-0}"
}

REP=$DF_T/run.json
in_logged "$DF_BIN" run --mode enforce --label "deploy 7" --deny 203.0.113.10:443 --report "$REP" -- \
	sh -c "$DF_TOOLS/dfclient tcp 203.0.113.10 443; $DF_TOOLS/dfclient tcp 203.0.113.10 80" >"$DF_T/out" 2>&1
check "run: the job ran fenced" "EPERM ok" "$(grep -E '^(ok|EPERM)' "$DF_T/out" | tr '\n' ' ' | sed 's/ $//')"
ID=$(jqr "$REP" .id)
check "run: report written" "1" "$([ -n "$ID" ] && [ "$ID" != null ] && echo 1)"
check "syslog: one line at attach, with id, label and mode" "1" \
	"$(lines "depfence\[[0-9]*\]: fence $ID (deploy 7) attached to .*mode=enforce")"
check "syslog: one line at report, with counts and the report path" "1" \
	"$(lines "depfence\[[0-9]*\]: fence $ID .*mode=enforce: .*1 blocked.* report $REP")"
check "syslog: two lines for the fence in all" "2" "$(grep -c "fence $ID" "$DF_T/syslog")"
check "syslog: daemon facility (priority <30> info, <27> err)" "1" \
	"$(grep "fence $ID" "$DF_T/syslog" | grep -c '^<30>' | awk '{print ($1 == 2)}')"

# an error says what and where: a report path that cannot be written
in_logged "$DF_BIN" run --mode enforce --deny 203.0.113.10:443 --report /proc/nonexistent/r.json -- \
	"$DF_TOOLS/dfclient" tcp 203.0.113.10 443 >"$DF_T/out2" 2>&1
check "syslog: a failed report is an error naming the path" "1" \
	"$(lines "^<27>.*depfence\[[0-9]*\]: .*/proc/nonexistent/r.json.*the records stay pinned")"
# the records were kept for gc, which writes them where the hook would
ID2=$(sed -n 's/.*depfence\[[0-9]*\]: poststop \([^:]*\): .*nonexistent.*/\1/p' "$DF_T/syslog" | head -1)
in_logged "$DF_BIN" gc >"$DF_T/gc.out" 2>&1
check "gc: writes the kept records" "1 blocked" "$(jqr "$DF_REPORTS/$ID2.json" '"\(.summary.blocked) blocked"')"
check "syslog: gc's report line" "1" "$(lines "depfence\[[0-9]*\]: fence $ID2 .* report $DF_REPORTS/$ID2.json")"

df_check_clean "syslog"
