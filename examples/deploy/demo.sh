#!/bin/bash
# depfence demo: why a deploy for github.com must not need github.com.
#
#   examples/deploy/demo.sh [--quiet]      (as root; `make demo` builds and runs it)
#
# Builds a small simulated world in two network namespaces made here (nothing
# is added to the host's interfaces or routes, no packet leaves the machine),
# runs a deploy job inside it three times under depfence, shows each report,
# checks that every step behaved as described, and removes everything it made.
#
#   world netns: github.com 203.0.113.10, updates.example.net 203.0.113.20,
#                api.internal 203.0.113.30, mirror.internal 203.0.113.40,
#                dnsmasq 203.0.113.53 answering for all of them
#   job netns:   the deploy job, 198.51.100.2, linked to the world (198.51.100.1)
#                by a veth pair whose ends are made inside the two namespaces
#
# --quiet prints one line per step ("stepN ok: ..." or "stepN FAIL: ...") and
# the final "demo: PASS" or "demo: FAIL" line. Exit 0 only when all steps held.
#
# Environment: DF_BIN (default build/depfence), DEMO_REPORT_DIR (default
# build/demo-reports), DEPFENCE_CONFIG (default: a private one made here, with
# its state and bpffs pins in places this script removes).
set -u

# ---------------------------------------------------------------------------
# The policy of steps 2 and 3, in one place.
# What the deploy must not need on the day github.com is down:
DENY_NAMES='github.com,**.github.com,updates.example.net'
# The same as this world's addresses, for comparison: names are what a team
# writes, and the fence learns their addresses from the job's own DNS answers.
DENY_ADDRS='203.0.113.10,203.0.113.20'
DENY_RULES=$DENY_NAMES
# ---------------------------------------------------------------------------

GITHUB=203.0.113.10 UPDATES=203.0.113.20 API=203.0.113.30 MIRROR=203.0.113.40 DNS=203.0.113.53
WORLD_LINK=198.51.100.1 JOB_LINK=198.51.100.2
STEP_LIMIT=10 # seconds step 2 may take: refused means refused now, not a timeout

QUIET=0
case ${1:-} in
--quiet | -q) QUIET=1 ;;
"") ;;
-h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) echo "usage: $0 [--quiet]" >&2; exit 2 ;;
esac

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
DF_BIN=${DF_BIN:-$ROOT/build/depfence}
REPORTS=${DEMO_REPORT_DIR:-$ROOT/build/demo-reports}
T0=$(date +%s%N)

# --- output -----------------------------------------------------------------
if [ -t 1 ] && [ $QUIET = 0 ]; then B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else B='' D='' G='' R='' N=''; fi
say() { [ $QUIET = 1 ] || printf '%s\n' "$@"; }
title() { say "" "${B}== $* ==${N}"; }
# step results: always printed, machine-checkable
FAILED=0
step_ok() { echo "${G}$1 ok${N}: $2"; }
step_fail() { echo "${R}$1 FAIL${N}: $2"; FAILED=1; }
die() { echo "${R}demo: FAIL${N}: $*"; exit 1; }

# --- preconditions ------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (network namespaces, cgroups and BPF need it)"
[ -x "$DF_BIN" ] || die "no depfence binary at $DF_BIN (run make, or set DF_BIN)"
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
for c in ip nsenter unshare mount timeout python3 curl jq tar sha256sum awk "$DNSMASQ"; do
	command -v "$c" >/dev/null || die "missing command $c (Debian: tests/deps.sh installs what the demo needs)"
done
grep -q ' - cgroup2 ' /proc/self/mountinfo || die "no cgroup2 mount"

# --- what this run makes, and its removal on every exit path ------------------
T=$(mktemp -d /tmp/depfence-demo.XXXXXX) || die "mktemp"
WNS=dfdemo-$$-world
JNS=dfdemo-$$-job
PINS=
PIDS=()
NETNS_MADE=()
runnetns_was_mount=0 runnetns_existed=0
[ -d /run/netns ] && runnetns_existed=1
mountpoint -q /run/netns 2>/dev/null && runnetns_was_mount=1

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local rc=$? p n left=""
	set +e
	trap - INT TERM HUP
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do
		# timeout forwards the TERM to its server and exits with it: bounded
		for n in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# anything still running from this run names $T on its command line
	for p in $(pgrep -f -- "$T" 2>/dev/null); do
		left+=" process $p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-60))"
		kill -KILL "$p" 2>/dev/null
	done
	for n in "${NETNS_MADE[@]}"; do ip netns del "$n" 2>/dev/null; done
	# ip netns made /run/netns a mount point (and maybe the directory): undo if empty
	if [ $runnetns_was_mount = 0 ] && mountpoint -q /run/netns 2>/dev/null &&
		[ -z "$(ls -A /run/netns 2>/dev/null)" ]; then
		umount /run/netns 2>/dev/null
	fi
	[ $runnetns_existed = 0 ] && rmdir /run/netns 2>/dev/null
	if [ -n "$PINS" ] && [ -d "$PINS" ]; then
		[ -n "$(find "$PINS" -mindepth 1 2>/dev/null)" ] && left+=" pins under $PINS"
		find "$PINS" -mindepth 1 -depth -exec rm -rf {} + 2>/dev/null
		rmdir "$PINS" 2>/dev/null
	fi
	if [ -d "$T/state" ] && [ -n "$(find "$T/state" -name '*.json' 2>/dev/null)" ]; then
		left+=" fence state files"
	fi
	rm -rf "$T"
	# verify
	for n in "${NETNS_MADE[@]}"; do [ -e "/run/netns/$n" ] && left+=" netns $n"; done
	[ -n "$PINS" ] && [ -e "$PINS" ] && left+=" $PINS"
	[ -e "$T" ] && left+=" $T"
	if [ -n "$left" ]; then
		echo "${R}demo: cleanup${N}: left behind (now removed where possible):$left"
		[ $rc = 0 ] && rc=1
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# The host's configuration for the demo's fences: private unless given.
if [ -z "${DEPFENCE_CONFIG:-}" ]; then
	PINS=/sys/fs/bpf/depfence-demo-$$
	mkdir -p "$T/state" "$T/reports"
	cat >"$T/config.json" <<EOF
{ "report_dir": "$T/reports", "state_dir": "$T/state", "bpffs_root": "$PINS" }
EOF
	export DEPFENCE_CONFIG=$T/config.json
fi

mkdir -p "$REPORTS" || die "cannot create $REPORTS"
rm -f "$REPORTS"/[123]-*.json "$REPORTS"/[123]-*.log "$REPORTS"/world.log

# The files the job and the API see as /etc/resolv.conf, /etc/hosts and
# /etc/nsswitch.conf, bind-mounted in private mount namespaces only: the host's
# own files are never touched, and names resolve through the world's dnsmasq.
mkdir -p "$T/etc"
printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$DNS" >"$T/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$T/etc/hosts"
printf 'hosts: files dns\n' >"$T/etc/nsswitch.conf"

# in_demo NETNS CMD...: exec CMD in NETNS with the demo's resolver files.
# It execs: call it in a subshell, (in_demo ...), whose pid becomes CMD's.
in_demo() {
	local ns=$1; shift
	exec nsenter --net="/run/netns/$ns" -- unshare --mount --propagation private -- sh -c '
		mount --bind "$1/resolv.conf" /etc/resolv.conf &&
		mount --bind "$1/hosts" /etc/hosts &&
		mount --bind "$1/nsswitch.conf" /etc/nsswitch.conf || exit 125
		# a running nscd would answer from the host: hide its socket
		if [ -d /run/nscd ]; then mount -t tmpfs -o size=64k demo /run/nscd || exit 125; fi
		shift; exec "$@"' sh "$T/etc" "$@"
}

# --- the world ------------------------------------------------------------------
title "Setting up a small world in network namespaces"
say "  github.com           $GITHUB   the release of acme/tool" \
	"  updates.example.net  $UPDATES   where servicectl checks for updates" \
	"  api.internal         $API   the internal deployment API (checks releases on github.com)" \
	"  mirror.internal      $MIRROR   an internal mirror with the same release" \
	"  dnsmasq              $DNS   answers for all of them" \
	"  the deploy job runs in its own namespace, $JOB_LINK, routed only to the world."

ip netns add "$WNS" || die "ip netns add $WNS"
NETNS_MADE+=("$WNS")
ip netns add "$JNS" || die "ip netns add $JNS"
NETNS_MADE+=("$JNS")
{
	ip -n "$WNS" link set lo up &&
		ip -n "$JNS" link set lo up &&
		for a in $GITHUB $UPDATES $API $MIRROR $DNS; do ip -n "$WNS" addr add "$a/32" dev lo || exit 1; done &&
		ip -n "$WNS" link add veth0 type veth peer name veth0 netns "$JNS" &&
		ip -n "$WNS" addr add "$WORLD_LINK/24" dev veth0 &&
		ip -n "$JNS" addr add "$JOB_LINK/24" dev veth0 &&
		ip -n "$WNS" link set veth0 up &&
		ip -n "$JNS" link set veth0 up &&
		ip -n "$JNS" route add 203.0.113.0/24 via "$WORLD_LINK"
} || die "network setup failed"

# the release: a tiny tarball, the same bytes on github.com and on the mirror
mkdir -p "$T/www/github/acme/tool/releases/download/v1.2.3" "$T/rel" || die "mkdir"
echo "1.2.3" >"$T/rel/VERSION"
printf '#!/bin/sh\necho "acme tool 1.2.3"\n' >"$T/rel/tool"
tar -czf "$T/www/github/acme/tool/releases/download/v1.2.3/tool-1.2.3.tar.gz" -C "$T/rel" VERSION tool || die "tar"
echo "v1.2.3" >"$T/www/github/acme/tool/releases/latest"
cp -a "$T/www/github" "$T/www/mirror"

WLOG=$REPORTS/world.log
: >"$WLOG"
# Servers: bounded lifetimes; $! is timeout's pid (nsenter, unshare and sh exec)
nsenter --net="/run/netns/$WNS" -- timeout 300 "$DNSMASQ" --keep-in-foreground \
	--conf-file=/dev/null --no-resolv --no-hosts --no-dhcp-interface=lo \
	--listen-address="$DNS" --bind-interfaces --port=53 --user=root \
	--pid-file="$T/dnsmasq.pid" --log-facility="$T/dnsmasq.log" --local-ttl=60 \
	--address=/github.com/$GITHUB --address=/updates.example.net/$UPDATES \
	--address=/api.internal/$API --address=/mirror.internal/$MIRROR >>"$WLOG" 2>&1 &
PIDS+=($!)
for role in github:$GITHUB updates:$UPDATES mirror:$MIRROR; do
	nsenter --net="/run/netns/$WNS" -- timeout 300 python3 -u "$HERE/world.py" "${role%%:*}" "${role#*:}" "$T/www" >>"$WLOG" 2>&1 &
	PIDS+=($!)
done
# the API resolves github.com itself, so it gets the demo's resolver too
(in_demo "$WNS" timeout 300 python3 -u "$HERE/world.py" api "$API" "$T/www") >>"$WLOG" 2>&1 &
PIDS+=($!)

# bounded wait: every service answers by name from the job's namespace
ready=0
for _ in $(seq 100); do
	if (in_demo "$JNS" sh -c '
		curl -fsS --max-time 1 -o /dev/null http://github.com/acme/tool/releases/latest &&
		curl -fsS --max-time 1 -o /dev/null http://mirror.internal/acme/tool/releases/latest &&
		curl -fsS --max-time 1 -o /dev/null http://updates.example.net/check &&
		curl -fsS --max-time 1 -o /dev/null http://api.internal/healthz') >/dev/null 2>&1; then
		ready=1
		break
	fi
	sleep 0.1
done
[ $ready = 1 ] || die "the world did not come up in 10 s; see $WLOG: $(tail -n 5 "$WLOG" | tr '\n' ' ')"
say "  ${D}all five answer by name from the job's namespace${N}"

# --- running a job and reading its report ------------------------------------------
# job N NAME SCRIPT MODE [depfence options]: sets RC, SECS, REP, LOG
job() {
	local n=$1 name=$2 script=$3 mode=$4 t1 t2
	shift 4
	REP=$REPORTS/$n-$name.json LOG=$REPORTS/$n-$name.log
	mkdir -p "$T/job$n"
	t1=$(date +%s%N)
	(cd "$T/job$n" && in_demo "$JNS" timeout -k 5 60 \
		"$DF_BIN" run --mode "$mode" --label "demo step $n: $script" --report "$REP" "$@" -- "$HERE/$script") \
		>"$LOG" 2>&1
	RC=$?
	t2=$(date +%s%N)
	SECS=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	if [ $QUIET = 0 ]; then
		say "${D}\$ depfence run --mode $mode${*:+ $*} -- ./$script${N}"
		sed 's/^/  | /' "$LOG"
		say "  ${D}exit status $RC after $SECS s; report: $REP${N}"
	fi
}

# show REPORT: a short human summary of the report (no text renderer exists yet)
show() {
	[ $QUIET = 1 ] && return
	[ -s "$1" ] || { say "  (no report)"; return; }
	# the report as a person reads it: depfence's own text rendering
	"$DF_BIN" report --format text --color never "$1" 2>&1 | sed 's/^/  /'
}

# jq helpers on the current report
q() { jq -r "$1" "$REP" 2>/dev/null; }
has_event() { # has_event VERDICT ADDR NAME: an event of that verdict for the address or the name
	[ "$(jq --arg v "$1" --arg a "$2" --arg n "$3" \
		'[.events[] | select((.verdict == $v or $v == "") and (.daddr == $a or .name == $n))] | length' "$REP" 2>/dev/null)" -gt 0 ] 2>/dev/null
}

# --- step 1 ---------------------------------------------------------------------
title "Step 1: observe. What does deploy.sh reach for?"
say "deploy.sh installs acme/tool: it runs servicectl, downloads the release from" \
	"github.com and records the deployment with api.internal. Observe mode refuses" \
	"nothing and records every destination and the process that reached for it." ""
job 1 observe deploy.sh observe
show "$REP"
why=""
[ $RC = 0 ] || why+="the deploy exited $RC, not 0; "
[ -s "$REP" ] || why+="no report at $REP; "
if [ -s "$REP" ]; then
	[ "$(q .mode)" = observe ] || why+="report mode is $(q .mode); "
	has_event allowed $GITHUB github.com || why+="no event for github.com ($GITHUB); "
	has_event allowed $UPDATES updates.example.net || why+="no event for updates.example.net ($UPDATES); "
	has_event allowed $API api.internal || why+="no event for api.internal ($API); "
	[ "$(q '[.events[] | select(.verdict != "allowed")] | length')" = 0 ] || why+="observe mode recorded verdicts other than allowed; "
	[ "$(q '[.events[] | select((.process.comm // "") == "")] | length')" = 0 ] || why+="events without a process; "
	# what the job would need, as a policy depfence proposes from what it saw
	POLICY=$("$DF_BIN" report --format policy "$REP" 2>&1) || why+="report --format policy failed: $POLICY; "
	case $POLICY in *github.com*) ;; *) why+="the proposed policy does not name github.com; " ;; esac
fi
if [ -z "$why" ]; then
	say "" "What this deploy needs, as depfence proposes it from the observe report" \
		"(depfence report --format policy): an allow-list to review, not to adopt as is." ""
	[ $QUIET = 1 ] || printf '%s\n' "$POLICY" | sed 's/^/  /'
	step_ok step1 "observe: deploy.sh succeeded; the report lists github.com, updates.example.net and api.internal with their processes"
else
	step_fail step1 "observe: ${why%; }"
	[ $QUIET = 1 ] && sed 's/^/  | /' "$LOG"
fi
say "" "Three dependencies on the day github.com is down, where the job only ever" \
	"saw one name in its own script:" \
	"  direct     curl downloads the release from github.com" \
	"  hidden     a curl deploy.sh never runs itself: servicectl quietly asks" \
	"             updates.example.net for a newer servicectl (nothing in deploy.sh" \
	"             or its output says so)" \
	"  transient  api.internal is reached by the job; what api.internal needs, the" \
	"             fence cannot see. Every internal destination in the report is one" \
	"             to review: this one checks each release on github.com."

# --- step 2 ---------------------------------------------------------------------
title "Step 2: enforce. The day github.com is down"
say "Deny what the deploy must not need: $DENY_NAMES"
[ "$DENY_RULES" = "$DENY_NAMES" ] || say "(as this world's addresses for now: --deny $DENY_RULES)"
say "A refused call fails at once with EPERM: the job fails fast, not after a timeout." ""
job 2 enforce deploy.sh enforce --deny "$DENY_RULES"
show "$REP"
why=""
[ $RC != 0 ] || why+="the deploy exited 0, it should have failed; "
awk -v s="$SECS" -v l=$STEP_LIMIT 'BEGIN { exit !(s < l) }' || why+="took $SECS s (limit $STEP_LIMIT s): a timeout, not a refusal; "
[ -s "$REP" ] || why+="no report at $REP; "
if [ -s "$REP" ]; then
	has_event blocked $GITHUB github.com || why+="no blocked event for github.com ($GITHUB); "
	has_event blocked $UPDATES updates.example.net || why+="no blocked event for updates.example.net ($UPDATES); "
fi
if [ -z "$why" ]; then
	step_ok step2 "enforce: deploy.sh failed in $SECS s (exit $RC); the report shows github.com and updates.example.net refused"
else
	step_fail step2 "enforce: ${why%; }"
	[ $QUIET = 1 ] && sed 's/^/  | /' "$LOG"
fi
say "" "The update check was refused too, and servicectl said nothing: only the report" \
	"shows it. The job stopped at the download; had it gone on, api.internal would" \
	"have failed for it, reaching for github.com on its own, outside this fence."

# --- step 3 ---------------------------------------------------------------------
title "Step 3: the fixed deploy, same policy"
say "deploy-fixed.sh downloads the same release from mirror.internal, runs servicectl" \
	"with SERVICECTL_NO_UPDATE_CHECK=1, and records the deployment through" \
	"api.internal's /v2/deployments, which checks mirror.internal instead of" \
	"github.com (api.internal says which it checked in its answer)." ""
job 3 fixed deploy-fixed.sh enforce --deny "$DENY_RULES"
show "$REP"
why=""
[ $RC = 0 ] || why+="the fixed deploy exited $RC, not 0; "
[ -s "$REP" ] || why+="no report at $REP; "
if [ -s "$REP" ]; then
	[ "$(q .summary.blocked)" = 0 ] || why+="summary.blocked is $(q .summary.blocked), not 0; "
	[ "$(q .summary.would_block)" = 0 ] || why+="summary.would_block is $(q .summary.would_block), not 0; "
	[ "$(q '.summary.dns_blocked // 0')" = 0 ] || why+="summary.dns_blocked is $(q .summary.dns_blocked), not 0; "
	has_event "" $GITHUB github.com && why+="the fixed deploy still reached for github.com; "
	has_event "" $UPDATES updates.example.net && why+="the fixed deploy still reached for updates.example.net; "
	grep -q '"checked_against": "mirror.internal"' "$LOG" || why+="api.internal did not check against mirror.internal; "
fi
if [ -z "$why" ]; then
	step_ok step3 "fixed: deploy-fixed.sh passed under the same policy with zero violations"
else
	step_fail step3 "fixed: ${why%; }"
	[ $QUIET = 1 ] && sed 's/^/  | /' "$LOG"
fi
say "" "Zero blocked, zero would-block: this deploy works on the day github.com is down." \
	"It still reaches api.internal (its answer is in the output above): the fence sees" \
	"only that first hop; the review of step 1's internal destinations found what" \
	"api.internal needs, and moved the deploy to /v2." \
	"Run it in CI as step 3 does, and a new dependency fails the job the day it appears."

# --- the end ----------------------------------------------------------------------
SECS=$(awk -v a="$T0" -v b="$(date +%s%N)" 'BEGIN { printf "%.0f", (b - a) / 1e9 }')
say "" "Reports and job logs: $REPORTS/ (1-observe, 2-enforce, 3-fixed; world.log)"
if [ $FAILED = 0 ]; then
	echo "${G}demo: PASS${N} (${SECS} s)"
	exit 0
fi
echo "${R}demo: FAIL${N} (${SECS} s; reports in $REPORTS/)"
exit 1
