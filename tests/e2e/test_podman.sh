#!/bin/bash
# podman with --hooks-dir and --annotation, as an operator sets it up: the
# hooks.d files and the binary exactly as `make install` puts them (into a
# tree under the test's temp dir: PREFIX=<tmp>/usr, SYSCONFDIR=<tmp>/etc), a
# busybox rootfs with the static dfclient, the container joined to a network
# namespace made here. The installed hooks carry no "env", so the hook reads
# /etc/depfence/depfence.json like an installed one does: the file runs in a
# private mount namespace where the installed etc tree is layered over /etc
# (overlay, writes to the test's temp dir), and its depfence.json points at
# this test's private config. podman keeps its storage, run and tmp dirs under the test's temp dir,
# and its cgroups under a parent of this test's own.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "e2e/podman"
command -v podman >/dev/null || { notok "podman" "not installed"; exit 1; }
command -v runc >/dev/null || { notok "runc" "not installed"; exit 1; }
df_private_mountns
df_setup

NS=$(df_netns podman) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 53 80 443 || { notok "test servers" "did not come up"; exit 1; }

INST=$DF_T/inst
LIBEXEC=$INST/usr/libexec/oci/hooks.d
HOOKS=$INST/usr/share/containers/oci/hooks.d
make -s -C "$DF_ROOT" BUILD="$(dirname "$DF_BIN")" PREFIX="$INST/usr" SYSCONFDIR="$INST/etc" install \
	>"$DF_T/install.log" 2>&1 || { notok "make install" "$(tr '\n' ' ' <"$DF_T/install.log")"; exit 1; }
check "install: the hook binary is build/depfence, executable" "1" \
	"$([ -x "$LIBEXEC/depfence" ] && cmp -s "$LIBEXEC/depfence" "$DF_BIN" && echo 1)"
check "install: hooks.d files point at the installed binary" "$LIBEXEC/depfence $LIBEXEC/depfence" \
	"$(echo $(jq -r .hook.path "$HOOKS"/*.json 2>/dev/null))"
check "install: hooks.d files differ from examples/hooks.d only in the path" "" \
	"$(for f in "$DF_ROOT"/examples/hooks.d/*.json; do
		diff <(jq -S 'del(.hook.path)' "$f") <(jq -S 'del(.hook.path)' "$HOOKS/$(basename "$f")") 2>&1
	done)"
check "install: the hooks carry no env (the hook reads /etc/depfence/depfence.json)" "null null" \
	"$(echo $(jq -c .hook.env "$HOOKS"/*.json 2>/dev/null))"
check "install: the config is in place" "1" "$([ -s "$INST/etc/depfence/depfence.json" ] && echo 1)"

# /etc with the installed tree over it, here only; its depfence.json is this
# test's config. Writes (podman's netavark.lock) go to an upper dir in $DF_T.
ln -sf "$DEPFENCE_CONFIG" "$INST/etc/depfence/depfence.json"
mkdir -p "$DF_T/etc.upper" "$DF_T/etc.work"
mount -t overlay df-etc -o "lowerdir=$INST/etc:/etc,upperdir=$DF_T/etc.upper,workdir=$DF_T/etc.work" /etc ||
	{ notok "overlay on /etc" "mount failed"; exit 1; }
check "/etc/depfence/depfence.json (in this namespace) is the test's config" "$DEPFENCE_CONFIG" \
	"$(readlink -f /etc/depfence/depfence.json)"
# what podman starts sees no DEPFENCE_CONFIG: only the installed path leads to the config
unset DEPFENCE_CONFIG
CONFIG=$DF_T/config.json

ROOTFS=$DF_T/rootfs
df_rootfs "$ROOTFS" || { notok "rootfs" "could not build it (busybox-static, dfclient)"; exit 1; }

CGPARENT=df$$-podman
PODMAN=(podman --root "$DF_T/p/root" --runroot "$DF_T/p/run" --tmpdir "$DF_T/p/tmp"
	--storage-driver vfs --cgroup-manager cgroupfs --runtime runc --events-backend none)
# --rootfs is a switch that makes the first argument a rootfs: it goes last, as
# every option after that argument would be taken as the container's command
RUNFLAGS=(--rm --hooks-dir "$HOOKS" --network "ns:/run/netns/$NS"
	--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --cgroup-parent "/$CGPARENT")

podman_cleanup() {
	local d
	timeout 30 "${PODMAN[@]}" rm -f -a -t 0 >/dev/null 2>&1
	# anything podman left mounted under our dirs
	grep -o " $DF_T/p/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
	for d in /sys/fs/cgroup/*/"$CGPARENT" /sys/fs/cgroup/"$CGPARENT"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
}
df_on_exit podman_cleanup
df_on_exit "umount /etc"

# prun NAME [ARGS]... -- SCRIPT: podman run, bounded; $DF_T/NAME.mnt is at /mnt;
# stdout in $DF_T/NAME.out, stderr in $DF_T/NAME.err, the container id in $DF_T/NAME.cid
prun() {
	local name=$1; shift
	local args=()
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	mkdir -p "$DF_T/$name.mnt"
	timeout --kill-after=5 45 "${PODMAN[@]}" run "${RUNFLAGS[@]}" --name "df$$-$name" \
		--cidfile "$DF_T/$name.cid" -v "$DF_T/$name.mnt:/mnt" "${args[@]}" --rootfs "$ROOTFS" sh -c "$1" \
		</dev/null >"$DF_T/$name.out" 2>"$DF_T/$name.err"
}

CLIENT='dfclient tcp 203.0.113.10 443; dfclient tcp 203.0.113.10 80; dfclient udp-sendto 2001:db8::10 53; dfclient udp-sendto 2001:db8::20 53; touch /mnt/ran'
# podman 4 splits --annotation values at commas (a CSV string slice): separate
# rules with whitespace, or quote the whole KEY=VALUE as one CSV field
DENY='203.0.113.10:443 udp/[2001:db8::10]'

# --- enforce ---
prun enforce --annotation depfence.io/mode=enforce --annotation "depfence.io/deny=$DENY" \
	--annotation "depfence.io/label=podman e2e" -- "$CLIENT"
df_check_exit "enforce: podman run exit 0" $? "$DF_T/enforce.err"
check "enforce: denied calls EPERM, allowed calls ok" "EPERM ok EPERM ok" "$(echo $(cat "$DF_T/enforce.out"))"
check "enforce: the container ran to the end" "1" "$([ -e "$DF_T/enforce.mnt/ran" ] && echo 1)"
CID=$(cat "$DF_T/enforce.cid" 2>/dev/null)
REP=$DF_REPORTS/$CID.json
check "enforce: report named by the container id" "1" "$([ -n "$CID" ] && [ -s "$REP" ] && echo 1)"
check "enforce: report id, label, mode" "$CID|podman e2e|enforce" "$(jqr "$REP" '[.id, .label, .mode] | join("|")')"
check "enforce: tcp event" "blocked connect4 tcp 203.0.113.10:443 dfclient 1" "$(df_event "$REP" 203.0.113.10 443)"
check "enforce: udp v6 event" "blocked sendmsg6 udp udp/[2001:db8::10] dfclient 1" "$(df_event "$REP" 2001:db8::10 53)"
check "enforce: only the refusals recorded" "2 2" "$(jqr "$REP" '"\(.events | length) \(.summary.blocked)"')"
check "enforce: the fence was on the container's cgroup" "1" "$(jqr "$REP" .cgroup | grep -c "$CGPARENT/.*$CID")"
check "enforce: --rm removed the container" "" "$("${PODMAN[@]}" ps -a -q 2>/dev/null)"
df_check_clean "enforce"

# --- audit ---
prun audit --annotation depfence.io/mode=audit --annotation '"depfence.io/deny=203.0.113.10:443, udp/[2001:db8::10]"' -- "$CLIENT"
df_check_exit "audit: podman run exit 0" $? "$DF_T/audit.err"
check "audit: every call succeeds" "ok ok ok ok" "$(echo $(cat "$DF_T/audit.out"))"
REP=$DF_REPORTS/$(cat "$DF_T/audit.cid" 2>/dev/null).json
check "audit: report has would-block" "audit would-block connect4 tcp 203.0.113.10:443 dfclient 1" \
	"$(jqr "$REP" .mode) $(df_event "$REP" 203.0.113.10 443)"
check "audit: a comma-separated list survives podman's CSV quoting" "203.0.113.10:443 udp/[2001:db8::10]" \
	"$(jqr "$REP" '.policy.deny | join(" ")')"
df_check_clean "audit"

# --- no depfence.io/ annotations: when.annotations does not match, no hook runs ---
# the hook's config is broken meanwhile: a hook that ran would fail the container
cp "$CONFIG" "$DF_T/config.good"
echo '{"not_a_key": 1}' >"$CONFIG"
prun plain --annotation org.example/deny=203.0.113.10 -- "$CLIENT"
rc=$?
cp "$DF_T/config.good" "$CONFIG"
df_check_exit "no annotations: podman run exit 0, the hook was never called" $rc "$DF_T/plain.err"
check "no annotations: every call succeeds, the denied host too" "ok ok ok ok" "$(echo $(cat "$DF_T/plain.out"))"
CID=$(cat "$DF_T/plain.cid" 2>/dev/null)
check "no annotations: container ran" "1" "$([ -n "$CID" ] && [ -e "$DF_T/plain.mnt/ran" ] && echo 1)"
check "no annotations: no report" "0" "$(ls "$DF_REPORTS" 2>/dev/null | grep -c "^$CID")"
df_check_clean "no annotations"

# --- a policy that does not parse: the container never runs ---
prun bad --annotation depfence.io/mode=enforce --annotation 'depfence.io/deny=git*hub.com' -- "touch /mnt/ran; $CLIENT"
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ]; then ok "bad policy: podman run fails"; else
	notok "bad policy: podman run fails" "exit $rc"; fi
check "bad policy: the container's process never ran" "0" "$(ls -A "$DF_T/bad.mnt" | wc -l)"
check "bad policy: no output from the container" "" "$(cat "$DF_T/bad.out")"
if grep -q 'depfence.io/deny.*git\*hub.com' "$DF_T/bad.err"; then ok "bad policy: podman's error carries the hook's message"; else
	notok "bad policy: podman's error carries the hook's message" "$(tr '\n' ' ' <"$DF_T/bad.err")"; fi
check "bad policy: no report" "" "$(ls "$DF_REPORTS" 2>/dev/null | grep -v -F -e "$(cat "$DF_T/enforce.cid")" -e "$(cat "$DF_T/audit.cid")")"
df_check_clean "bad policy"

check "podman left no container" "" "$("${PODMAN[@]}" ps -a -q 2>/dev/null)"
