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
# The deploy job is a container: runc runs it with depfence's hooks in the
# bundle's config.json, its policy in the config's annotations, and its
# network namespace set to the job namespace below. Where runc is missing the
# job runs under `depfence run` instead; DEMO_RUNTIME=runc or run chooses.
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
# its reports, state and bpffs pins in places this script removes), TMPDIR
# (where its temporary directory goes, default /tmp),
# DEMO_RUNTIME (runc, or run for `depfence run`; default runc when installed).
set -u

# ---------------------------------------------------------------------------
# The policy of steps 2 and 3, in one place.
# What the deploy must not need on the day github.com is down:
DENY_NAMES='github.com,**.github.com,updates.example.net'
# The same as this world's addresses, for comparison: names are what a team
# writes, and the fence learns their addresses from the job's own DNS answers.
# shellcheck disable=SC2034 # the alternative to DENY_NAMES (README: The policy)
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
-h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
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
# the route: a runc container, or `depfence run` where no runtime is installed
RUNTIME=${DEMO_RUNTIME:-}
if [ -z "$RUNTIME" ]; then
	RUNTIME=run
	command -v runc >/dev/null && RUNTIME=runc
fi
case $RUNTIME in
runc) command -v runc >/dev/null || die "DEMO_RUNTIME=runc: runc is not installed (Debian: package runc)" ;;
run) ;;
*) die "DEMO_RUNTIME=$RUNTIME: not a route the demo knows (runc or run)" ;;
esac

# --- what this run makes, and its removal on every exit path ------------------
T=$(mktemp -d "${TMPDIR:-/tmp}/depfence-demo.XXXXXX") || die "mktemp in ${TMPDIR:-/tmp}"
WNS=dfdemo-$$-world
JNS=dfdemo-$$-job
PINS=
PIDS=()
NETNS_MADE=()
CONTAINERS=() # runc container ids, state under $T/runc
runnetns_was_mount=0 runnetns_existed=0
[ -d /run/netns ] && runnetns_existed=1
mountpoint -q /run/netns 2>/dev/null && runnetns_was_mount=1

# shellcheck disable=SC2317 # run by the EXIT trap
# cgroup_dirs NAME: the directories called NAME at the top of each cgroup
# hierarchy, where runc puts a container that has no cgroupsPath
cgroup_dirs() {
	local mp
	for mp in $(awk '{ split($0, f, " - "); split(f[2], t, " ") } t[1] ~ /^cgroup2?$/ { print $5 }' /proc/self/mountinfo); do
		[ -d "$mp/$1" ] && echo "$mp/$1"
	done
}

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
	# runc's delete -f stops what is left of a container and removes its cgroups
	for n in "${CONTAINERS[@]}"; do timeout 20 runc --root "$T/runc" delete -f "$n" >/dev/null 2>&1; done
	if [ ${#CONTAINERS[@]} -gt 0 ]; then
		for n in $(timeout 10 runc --root "$T/runc" list -q 2>/dev/null); do left+=" container $n"; done
		for n in "${CONTAINERS[@]}"; do
			for p in $(cgroup_dirs "$n"); do left+=" cgroup $p"; rmdir "$p" 2>/dev/null; done
		done
	fi
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
	# the containers' mounts live in their own mount namespaces: none is on $T
	for p in $(awk -v t="$T" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo); do
		left+=" mount $p"; umount -l "$p" 2>/dev/null
	done
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
	# the demo removes all it made: the attribution programs go with its last fence
	cat >"$T/config.json" <<EOF
{ "report_dir": "$T/reports", "state_dir": "$T/state", "bpffs_root": "$PINS", "attribution_linger": 0 }
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

# --- the deploy container's image and bundle (runc route) ------------------------
# The image is the host's /usr, read-only (sh, curl, tar: what the scripts
# use), with an /etc of its own whose resolv.conf names the world's dnsmasq.
# The scripts are bind-mounted read-only at /demo, the job's work directory
# read-write at /job. runc makes every mount inside the container's own mount
# namespace: the host sees none of them.
if [ "$RUNTIME" = runc ]; then
	ROOTFS=$T/rootfs
	mkdir -p "$ROOTFS"/{proc,dev,sys,tmp,etc,demo,job} "$T/runc" "$T/spec" || die "mkdir $ROOTFS"
	BINDS='[]'
	for d in usr bin sbin lib lib32 lib64 libx32; do
		if [ -L "/$d" ]; then
			ln -s "$(readlink "/$d")" "$ROOTFS/$d" || die "ln $ROOTFS/$d"
		elif [ -d "/$d" ]; then
			mkdir -p "$ROOTFS/$d"
			BINDS=$(jq -c --arg d "/$d" '. + [{destination: $d, type: "bind", source: $d,
				options: ["rbind", "ro", "nosuid", "nodev"]}]' <<<"$BINDS") || die "jq"
		fi
	done
	cp "$T/etc/resolv.conf" "$T/etc/hosts" "$T/etc/nsswitch.conf" "$ROOTFS/etc/" || die "cp $ROOTFS/etc"
	printf 'root:x:0:0:root:/job:/bin/sh\n' >"$ROOTFS/etc/passwd"
	printf 'root:x:0:\n' >"$ROOTFS/etc/group"
	[ -f /etc/ld.so.cache ] && cp /etc/ld.so.cache "$ROOTFS/etc/"
	[ -d /etc/alternatives ] && cp -a /etc/alternatives "$ROOTFS/etc/"
	(cd "$T/spec" && runc spec) || die "runc spec failed"
fi

# bundle N SCRIPT MODE LABEL DENY: the bundle $T/bundleN for /demo/SCRIPT, the
# fence's policy as annotations (DENY may be empty), depfence as its
# createRuntime and poststop hooks, and the job's network namespace
bundle() {
	local n=$1 script=$2 mode=$3 label=$4 deny=$5
	mkdir -p "$T/bundle$n" || return 1
	jq --arg bin "$DF_BIN" --arg env "DEPFENCE_CONFIG=$DEPFENCE_CONFIG" \
		--arg rootfs "$ROOTFS" --arg ns "/run/netns/$JNS" --argjson binds "$BINDS" \
		--arg here "$HERE" --arg job "$T/job$n" --arg script "$script" \
		--arg mode "$mode" --arg lbl "$label" --arg deny "$deny" '
		.process.terminal = false
		| .process.args = ["/demo/" + $script]
		| .process.cwd = "/job"
		| .process.env += ["HOME=/job"]
		| .hostname = "deploy"
		| .root = {path: $rootfs, readonly: true}
		| .linux.namespaces |= map(if .type == "network" then .path = $ns else . end)
		| .mounts += $binds + [
			{destination: "/demo", type: "bind", source: $here, options: ["rbind", "ro", "nosuid", "nodev"]},
			{destination: "/job", type: "bind", source: $job, options: ["rbind", "rw", "nosuid", "nodev"]},
			{destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777", "size=16m"]}]
		| .annotations = {"depfence.io/mode": $mode, "depfence.io/label": $lbl}
			+ (if $deny == "" then {} else {"depfence.io/deny": $deny} end)
		| .hooks = {
			createRuntime: [{path: $bin, args: ["depfence", "hook", "createRuntime"], env: [$env], timeout: 10}],
			poststop: [{path: $bin, args: ["depfence", "hook", "poststop"], env: [$env], timeout: 30}]
		}' "$T/spec/config.json" >"$T/bundle$n/config.json"
}

# --- running a job and reading its report ------------------------------------------
# job N NAME SCRIPT MODE [DENY]: runs SCRIPT as the deploy job, in a runc
# container (its id is CID) or under depfence run; sets RC, SECS, REP, LOG, CID
job() {
	local n=$1 name=$2 script=$3 mode=$4 deny=${5:-} label t1 t2
	label="demo step $n: $script"
	REP=$REPORTS/$n-$name.json LOG=$REPORTS/$n-$name.log CID=
	mkdir -p "$T/job$n"
	t1=$(date +%s%N)
	if [ "$RUNTIME" = runc ]; then
		CID=dfdemo-$$-$n-$name
		CONTAINERS+=("$CID")
		if bundle "$n" "$script" "$mode" "$label" "$deny"; then
			timeout -k 5 60 runc --root "$T/runc" run --bundle "$T/bundle$n" "$CID" </dev/null >"$LOG" 2>&1
			RC=$?
		else
			echo "demo: cannot write the bundle $T/bundle$n" >"$LOG"
			RC=125
		fi
		t2=$(date +%s%N)
		# poststop wrote the report to the host configuration's report_dir
		"$DF_BIN" report --format json "$CID" >"$REP" 2>>"$LOG" || rm -f "$REP"
	else
		(cd "$T/job$n" && in_demo "$JNS" timeout -k 5 60 \
			"$DF_BIN" run --mode "$mode" --label "$label" --report "$REP" ${deny:+--deny "$deny"} -- "$HERE/$script") \
			>"$LOG" 2>&1
		RC=$?
		t2=$(date +%s%N)
	fi
	SECS=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	[ $QUIET = 1 ] && return
	if [ "$RUNTIME" = runc ]; then
		say "${D}\$ runc run --bundle bundle$n $CID${N}" \
			"  ${D}the container runs /demo/$script in the job's network namespace; config.json has${N}" \
			"  ${D}  annotations  depfence.io/mode: $mode${deny:+, depfence.io/deny: $deny}${N}" \
			"  ${D}  hooks        createRuntime and poststop: $DF_BIN hook ...${N}"
	else
		say "${D}\$ depfence run --mode $mode${deny:+ --deny $deny} -- ./$script${N}"
	fi
	sed 's/^/  | /' "$LOG"
	say "  ${D}exit status $RC after $SECS s; report: $REP${N}"
}

# show: the current report as a person reads it, depfence's own text rendering
# (by its id from the report_dir for a container, from its file for run)
show() {
	[ $QUIET = 1 ] && return
	[ -s "$REP" ] || { say "  (no report)"; return; }
	"$DF_BIN" report --format text --color never "${CID:-$REP}" 2>&1 | sed 's/^/  /'
}

# --- checking a step ---------------------------------------------------------------
# A step collects what went wrong in $why; step_end prints its outcome line.
# The destinations the policy of steps 2 and 3 is about, as NAME=ADDRESS:
DENIED=("github.com=$GITHUB" "updates.example.net=$UPDATES")

# jq helpers on the current report
q() { jq -r "$1" "$REP" 2>/dev/null; }
has_event() { # has_event VERDICT ADDR NAME: an event of that verdict (any: "") for the address or the name
	[ "$(jq --arg v "$1" --arg a "$2" --arg n "$3" \
		'[.events[] | select((.verdict == $v or $v == "") and (.daddr == $a or .name == $n))] | length' "$REP" 2>/dev/null)" -gt 0 ] 2>/dev/null
}

# check_job ok|fail SCRIPT MODE: starts $why with the job's exit status (0, or
# not 0) and the report: its mode, and the route that ran the job. A container's
# report was written by its hooks, under its id, for its own cgroup, and names
# its command; depfence run's says so. Returns 1 when there is no report.
check_job() {
	local want=$1 script=$2 mode=$3
	why=""
	case $want in
	ok) [ "$RC" = 0 ] || why+="$script exited $RC, not 0; " ;;
	fail) [ "$RC" != 0 ] || why+="$script exited 0, it should have failed; " ;;
	esac
	[ -s "$REP" ] || { why+="no report at $REP; "; return 1; }
	[ "$(q .mode)" = "$mode" ] || why+="report mode is $(q .mode), not $mode; "
	if [ "$RUNTIME" = runc ]; then
		[ "$(q .kind)" = hook ] || why+="report kind is $(q .kind), not hook: not the container's hooks; "
		[ "$(q .id)" = "$CID" ] || why+="report id is $(q .id), not the container's $CID; "
		case $(q .cgroup) in */"$CID") ;; *) why+="the fence's cgroup $(q .cgroup) is not the container's; " ;; esac
		case $(q .command) in "/demo/$script"*) ;; *) why+="report command is $(q .command), not /demo/$script; " ;; esac
	else
		[ "$(q .kind)" = run ] || why+="report kind is $(q .kind), not run; "
	fi
	return 0
}

# step_end STEP WHAT TEXT: "STEP ok: WHAT: TEXT", or the failure with its reasons
step_end() {
	if [ -z "$why" ]; then
		step_ok "$1" "$2: $3"
	else
		step_fail "$1" "$2: ${why%; }"
		[ $QUIET = 1 ] && sed 's/^/  | /' "$LOG"
	fi
}

if [ "$RUNTIME" = runc ]; then
	ROUTE="in runc container"
	say "" "The deploy job runs as a runc container: depfence fences it from the hooks in" \
		"its config.json, with the policy in its annotations."
else
	ROUTE="under depfence run"
	say "" "The deploy job runs under depfence run (DEMO_RUNTIME=run, or no runc here)."
fi

# --- step 1 ---------------------------------------------------------------------
title "Step 1: observe. What does deploy.sh reach for?"
say "deploy.sh installs acme/tool: it runs servicectl, downloads the release from" \
	"github.com and records the deployment with api.internal. Observe mode refuses" \
	"nothing and records every destination and the process that reached for it." ""
job 1 observe deploy.sh observe
show
if check_job ok deploy.sh observe; then
	for d in "${DENIED[@]}" "api.internal=$API"; do
		has_event allowed "${d#*=}" "${d%=*}" || why+="no event for ${d%=*} (${d#*=}); "
	done
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
fi
step_end step1 "observe" "deploy.sh succeeded $ROUTE; the report lists github.com, updates.example.net and api.internal with their processes"
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
[ "$DENY_RULES" = "$DENY_NAMES" ] || say "(as this world's addresses for now: deny $DENY_RULES)"
say "A refused call fails at once with EPERM: the job fails fast, not after a timeout." ""
job 2 enforce deploy.sh enforce "$DENY_RULES"
show
if check_job fail deploy.sh enforce; then
	awk -v s="$SECS" -v l=$STEP_LIMIT 'BEGIN { exit !(s < l) }' || why+="took $SECS s (limit $STEP_LIMIT s): a timeout, not a refusal; "
	# each refused call, with the command line that made it, which names the host
	for d in "${DENIED[@]}"; do
		cmd=$(jq -r --arg a "${d#*=}" --arg n "${d%=*}" 'first(.events[] | select(.verdict == "blocked"
			and (.daddr == $a or .name == $n)) | .process.cmdline // "-") // ""' "$REP" 2>/dev/null)
		case $cmd in
		"") why+="no blocked event for ${d%=*} (${d#*=}); " ;;
		*"${d%=*}"*) ;;
		*) why+="the refusal of ${d%=*} names the command line '$cmd'; " ;;
		esac
	done
fi
if [ -z "$why" ]; then
	say "" "Each refused call, with the command line that made it (from the report):"
	[ $QUIET = 1 ] || q '.events[] | select(.verdict == "blocked")
		| "  \(.name // .daddr)  by \(.process.chain // .process.comm)\n      \(.process.cmdline)"'
fi
step_end step2 "enforce" "deploy.sh failed $ROUTE in $SECS s (exit $RC); the report shows github.com and updates.example.net refused, with the curl command lines that asked"
say "" "The update check was refused too, and servicectl said nothing: only the report" \
	"shows it. The job stopped at the download; had it gone on, api.internal would" \
	"have failed for it, reaching for github.com on its own, outside this fence."

# --- step 3 ---------------------------------------------------------------------
title "Step 3: the fixed deploy, same policy"
say "deploy-fixed.sh downloads the same release from mirror.internal, runs servicectl" \
	"with SERVICECTL_NO_UPDATE_CHECK=1, and records the deployment through" \
	"api.internal's /v2/deployments, which checks mirror.internal instead of" \
	"github.com (api.internal says which it checked in its answer)." ""
job 3 fixed deploy-fixed.sh enforce "$DENY_RULES"
show
if check_job ok deploy-fixed.sh enforce; then
	for f in blocked would_block dns_blocked; do
		[ "$(q ".summary.$f // 0")" = 0 ] || why+="summary.$f is $(q ".summary.$f"), not 0; "
	done
	for d in "${DENIED[@]}"; do
		has_event "" "${d#*=}" "${d%=*}" && why+="the fixed deploy still reached for ${d%=*}; "
	done
	grep -q '"checked_against": "mirror.internal"' "$LOG" || why+="api.internal did not check against mirror.internal; "
fi
step_end step3 "fixed" "deploy-fixed.sh passed $ROUTE under the same policy with zero violations"
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
