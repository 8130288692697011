#!/bin/bash
# crun with the depfence hooks in config.json (createRuntime and poststop, as
# for runc): the rootfs of the runc test, the container joined to a network
# namespace made here, the hooks pointed at build/depfence with a private
# config through the hook's "env".
#
# crun needs a unified cgroup v2 host: on a hybrid one (cgroup v1 controllers
# and cgroup2 on /sys/fs/cgroup/unified) it refuses every container ("cgroups
# in hybrid mode not supported"). On such a host this file runs in a private
# mount namespace with the cgroup2 hierarchy mounted on /sys/fs/cgroup, so
# crun sees a unified host: the same hierarchy, the same cgroups, bpffs as it
# is. Nothing outside the namespace sees that mount.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "e2e/crun"
command -v crun >/dev/null || { notok "crun" "not installed"; exit 1; }
if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ]; then
	df_private_mountns
	# the v1 hierarchies and the tmpfs under them go (here only), so the one
	# cgroup2 mount in this namespace's mountinfo is the one on /sys/fs/cgroup
	umount -R /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup ||
		{ notok "unified view" "could not mount cgroup2 alone on /sys/fs/cgroup"; exit 1; }
fi
check "crun sees a unified cgroup v2 host" "cgroup2fs /sys/fs/cgroup" \
	"$(stat -f -c %T /sys/fs/cgroup 2>/dev/null) $(grep ' - cgroup2 ' /proc/self/mountinfo | cut -d' ' -f5 | tr '\n' ' ' | sed 's/ $//')"
df_setup

NS=$(df_netns crun) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 53 80 443 || { notok "test servers" "did not come up"; exit 1; }

# a private crun state root: `crun list` of the host is not touched
CRUN=(crun --root "$DF_T/crun")
# the containers' cgroups go under a parent of this test's own
CGPARENT=df$$-crun
df_track_cgroup "/sys/fs/cgroup/$CGPARENT"

ROOTFS=$DF_T/rootfs
df_rootfs "$ROOTFS" || { notok "rootfs" "could not build it (busybox-static, dfclient)"; exit 1; }
mkdir "$DF_T/spec" && (cd "$DF_T/spec" && crun spec) || { notok "crun spec" "failed"; exit 1; }

# crun 1.8 raises RLIMIT_MEMLOCK to infinity before it loads its device
# program, and fails the container when it may not (no CAP_SYS_RESOURCE),
# unless no device rule denies. Where the limit cannot be raised, the
# bundles leave out crun spec's deny-all device rule; the fence does not care.
NODEVRULES=false
(ulimit -H -l unlimited) 2>/dev/null || NODEVRULES=true

# bundle NAME STAGE ANNOTATIONS-JSON SCRIPT: a bundle at $DF_T/NAME for
# container df$$-NAME in cgroup /$CGPARENT/NAME; $DF_T/NAME.mnt is bind-mounted at /mnt.
# crun drops its hooks' stderr unless the annotation run.oci.hooks.stderr names
# a file for it: $DF_T/NAME.hookerr.
bundle() {
	df_bundle "$DF_T/spec/config.json" "$NS" "$@" '
		.linux.cgroupsPath = $cg
		| if $nodev then del(.linux.resources.devices) else . end
		| .annotations += {"run.oci.hooks.stderr": $herr}' \
		--arg cg "/$CGPARENT/$1" --argjson nodev "$NODEVRULES" --arg herr "$DF_T/$1.hookerr"
	df_on_exit "timeout 20 ${CRUN[*]} delete -f df$$-$1"
}

# run NAME: crun run in the foreground, bounded; stdout in $DF_T/NAME.out, stderr in $DF_T/NAME.err
run() {
	timeout --kill-after=5 30 "${CRUN[@]}" run --bundle "$DF_T/$1" "df$$-$1" \
		</dev/null >"$DF_T/$1.out" 2>"$DF_T/$1.err"
}

# gone NAME: crun removed the container and its cgroup
gone() {
	check "$1: crun removed the container" "" "$("${CRUN[@]}" list -q 2>/dev/null | grep -x "df$$-$2")"
	check "$1: no cgroup left" "" "$(ls -d "/sys/fs/cgroup/$CGPARENT/$2" 2>/dev/null)"
}

CLIENT='dfclient tcp 203.0.113.10 443; dfclient tcp 203.0.113.10 80; dfclient udp-sendto 2001:db8::10 53; dfclient udp-sendto 2001:db8::20 53; touch /mnt/ran'
POLICY='{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10:443, udp/[2001:db8::10]", "depfence.io/label": "crun e2e", "org.example/other": "x"}'

# --- createRuntime, enforce: crun run ---
ID=df$$-enforce
bundle enforce createRuntime "$POLICY" "$CLIENT"
run enforce
df_check_exit "enforce: crun run exit 0" $? "$DF_T/enforce.err"
check "enforce: denied calls EPERM, allowed calls ok" "EPERM ok EPERM ok" "$(echo $(cat "$DF_T/enforce.out"))"
check "enforce: the container ran to the end" "1" "$([ -e "$DF_T/enforce.mnt/ran" ] && echo 1)"
REP=$DF_REPORTS/$ID.json
check "enforce: report written by poststop" "1" "$([ -s "$REP" ] && echo 1)"
check "enforce: report id, label, mode" "$ID|crun e2e|enforce" "$(jqr "$REP" '[.id, .label, .mode] | join("|")')"
check "enforce: tcp event" "blocked connect4 tcp 203.0.113.10:443 dfclient 1" "$(df_event "$REP" 203.0.113.10 443)"
check "enforce: udp v6 event" "blocked sendmsg6 udp udp/[2001:db8::10] dfclient 1" "$(df_event "$REP" 2001:db8::10 53)"
check "enforce: only the refusals recorded" "2 2" "$(jqr "$REP" '"\(.events | length) \(.summary.blocked)"')"
check "enforce: the fence was on the container's cgroup" "/$CGPARENT/enforce" "$(jqr "$REP" '.cgroup' | grep -o "/$CGPARENT/enforce\$")"
check "enforce: integrity read from config.json (crun spec caps: no NET_RAW, own netns and pidns, ro cgroupfs)" \
	"true config.json false false false false false 0" \
	"$(jqr "$REP" '.integrity | "\(.checked) \(.source) \(.cap_net_raw) \(.cap_sys_admin) \(.host_network) \(.host_pid) \(.writable_cgroupfs) \(.risks | length)"')"
check "enforce: the report names the container's command" "1" "$(jqr "$REP" '.command' | grep -c dfclient)"
check "enforce: the hook said where it attached and where the report went" "1 1" \
	"$(grep -c "fence $ID (crun e2e) attached to /sys/fs/cgroup/$CGPARENT/enforce:" "$DF_T/enforce.hookerr") $(grep -c "report $REP" "$DF_T/enforce.hookerr")"
gone "enforce" enforce
df_check_clean "enforce"

# --- create, start, delete: poststop comes with delete ---
ID=df$$-detached
bundle detached createRuntime "$POLICY" "$CLIENT"
timeout 30 "${CRUN[@]}" create --bundle "$DF_T/detached" "$ID" </dev/null >"$DF_T/detached.out" 2>"$DF_T/detached.err"
df_check_exit "detached: crun create exit 0" $? "$DF_T/detached.err"
check "detached: fence pinned before start" "1" "$([ -n "$(find "$DF_PINS/$ID" -mindepth 1 2>/dev/null)" ] && echo 1)"
check "detached: the hook's state file names the container's cgroup" "1" \
	"$(grep -l "$CGPARENT/detached" "$DF_STATE"/*.json 2>/dev/null | wc -l)"
timeout 30 "${CRUN[@]}" start "$ID" 2>>"$DF_T/detached.err"
check "detached: crun start exit 0" "0" "$?"
for i in $(seq 100); do
	[ "$("${CRUN[@]}" state "$ID" 2>/dev/null | jq -r .status)" = stopped ] && break
	sleep 0.1
done
check "detached: container stopped" "stopped" "$("${CRUN[@]}" state "$ID" 2>/dev/null | jq -r .status)"
check "detached: no report before delete" "0" "$(ls "$DF_REPORTS" 2>/dev/null | grep -c "^$ID")"
timeout 30 "${CRUN[@]}" delete "$ID" 2>>"$DF_T/detached.err"
check "detached: crun delete exit 0" "0" "$?"
check "detached: denied calls EPERM, allowed calls ok" "EPERM ok EPERM ok" "$(echo $(cat "$DF_T/detached.out"))"
check "detached: report after delete" "blocked connect4 tcp 203.0.113.10:443 dfclient 1" "$(df_event "$DF_REPORTS/$ID.json" 203.0.113.10 443)"
check "detached: report id" "$ID" "$(jqr "$DF_REPORTS/$ID.json" .id)"
gone "detached" detached
df_check_clean "detached"

# --- hooks in config.json but no depfence.io/ annotations: no fence ---
ID=df$$-plain
bundle plain createRuntime '{"org.example/other": "x"}' "$CLIENT"
run plain
df_check_exit "no annotations: crun run exit 0" $? "$DF_T/plain.err"
check "no annotations: every call succeeds" "ok ok ok ok" "$(echo $(cat "$DF_T/plain.out"))"
check "no annotations: no report" "0" "$(ls "$DF_REPORTS" 2>/dev/null | grep -c "^$ID")"
gone "no annotations" plain
df_check_clean "no annotations"

# --- a policy that does not parse: the container never runs ---
ID=df$$-bad
bundle bad createRuntime '{"depfence.io/mode": "enforce", "depfence.io/deny": "203.0.113.10, git*hub.com"}' \
	"touch /mnt/ran; $CLIENT"
run bad
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ]; then ok "bad policy: crun run fails"; else
	notok "bad policy: crun run fails" "exit $rc"; fi
check "bad policy: the container's process never ran" "0" "$(ls -A "$DF_T/bad.mnt" | wc -l)"
check "bad policy: no output from the container" "" "$(cat "$DF_T/bad.out")"
check "bad policy: crun's error names the hook" "1" "$(grep -c "error executing hook .$DF_BIN" "$DF_T/bad.err")"
if grep -q 'depfence.io/deny.*git\*hub.com' "$DF_T/bad.hookerr"; then ok "bad policy: the hook's message names key and rule"; else
	notok "bad policy: the hook's message names key and rule" "$(tr '\n' ' ' <"$DF_T/bad.hookerr" 2>&1)"; fi
check "bad policy: no report" "0" "$(ls "$DF_REPORTS" 2>/dev/null | grep -c "^$ID")"
gone "bad policy" bad
df_check_clean "bad policy"
