#!/bin/bash
# depfence doctor: this host passes with depfence installed into a temp tree;
# each missing piece (hooks.d, a writable dir, capabilities, the config) is a
# failing check with a fix and exit 1.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/doctor"
df_setup

B=$(dirname "$DF_BIN")
I=$DF_T/inst
HD=$I/usr/share/containers/oci/hooks.d
make -C "$DF_ROOT" --no-print-directory -s BUILD="$B" PREFIX="$I/usr" SYSCONFDIR="$I/etc" install >/dev/null 2>&1
check "setup: installed into a temp tree" "1" "$([ -x "$I/usr/libexec/oci/hooks.d/depfence" ] && [ -s "$HD/depfence-poststop.json" ] && echo 1)"

# config DIR... : the test's config with hooks_dirs set to the arguments
config() {
	local dirs
	dirs=$(jq -nc '$ARGS.positional' --args "$@")
	jq -n --arg r "$DF_REPORTS" --arg s "$DF_STATE" --arg b "$DF_PINS" --argjson h "$dirs" \
		'{report_dir: $r, state_dir: $s, bpffs_root: $b, hooks_dirs: $h, attribution_linger: 0}' >"$DEPFENCE_CONFIG"
}

# doctor ARGS...: run it, stdout in $DF_T/out, stderr in $DF_T/err, exit status in $rc
doctor() { "$DF_BIN" doctor "$@" >"$DF_T/out" 2>"$DF_T/err"; rc=$?; }

# field NAME KEY [PATH]: a key of the check named NAME (the one about PATH, if given)
field() {
	jq -r --arg n "$1" --arg k "$2" --arg p "${3:-}" \
		'[.checks[] | select(.name == $n and ($p == "" or .path == $p))][0][$k] | tostring' "$DF_T/out" 2>/dev/null
}

CG2=$(df_cg2root)

# ---- this host, installed: ok ----
config "$HD" "$DF_T/nohooks"
doctor
check "host: exit 0" "0" "$rc"
check "host: says it can run fences" "depfence doctor: this host can run fences" "$(head -1 "$DF_T/out" | sed 's/ (kernel.*//')"
check "host: no failing line" "" "$(grep -E '^  (FAIL|warn) ' "$DF_T/out")"
check "host: cgroup2 line names the mount" "1" "$(grep -qE "^  ok +cgroup2 +mounted at $CG2( |,|$)" "$DF_T/out" && echo 1)"

doctor --json
check "json: exit 0" "0" "$rc"
check "json: parses, schema and ok" "depfence.doctor/v1 true" "$(jq -r '"\(.schema) \(.ok)"' "$DF_T/out" 2>/dev/null)"
want="bpf_link bpffs btf capabilities cgroup2 config fence_programs hooks.d oci_hooks prog_cgroup_skb prog_connect4 prog_connect6 prog_sendmsg4 prog_sendmsg6 report_dir state_dir"
check "json: has the checks" "$want" \
	"$(jq -r '[.checks[].name] | map(select(test("^(bpf_link|bpffs|btf|capabilities|cgroup2|config|fence_programs|hooks.d|oci_hooks|prog_.*|report_dir|state_dir)$"))) | unique | join(" ")' "$DF_T/out" 2>/dev/null)"
check "json: every check has name, ok, required, detail, fix" "0" \
	"$(jq '[.checks[] | select((has("name") and (.ok | type) == "boolean" and (.required | type) == "boolean" and (.detail | type) == "string" and has("fix")) | not)] | length' "$DF_T/out" 2>/dev/null)"
check "json: cgroup2 path is the mount" "$CG2" "$(field cgroup2 path)"
check "json: cgroup2 ok" "true" "$(field cgroup2 ok)"
check "json: bpffs ok" "true" "$(field bpffs ok)"
for p in connect4 connect6 sendmsg4 sendmsg6 cgroup_skb; do
	check "json: prog_$p supported" "true" "$(field prog_$p ok)"
done
check "json: bpf_link supported" "true" "$(field bpf_link ok)"
check "json: the fence's programs load" "true" "$(field fence_programs ok)"
# a kernel with bpf_loop that refuses the loop build (test_dns's shim):
# the programs load in the unrolled build, as a fence's would
LD_PRELOAD="$DF_TOOLS/libdfnoloop.so" "$DF_BIN" doctor --json >"$DF_T/noloop" 2>/dev/null
check "json: loop build refused: the fence's programs still load" "true" \
	"$(jq -r '[.checks[] | select(.name == "fence_programs")][0].ok' "$DF_T/noloop")"
# bpf_loop came in 5.17: the build doctor names follows the kernel's version
kv=$(uname -r | awk -F'[.-]' '{print $1 * 1000 + $2}')
check "json: bpf_loop names the build this kernel loads" "$([ "$kv" -ge 5017 ] && echo loop || echo unrolled)" \
	"$(field bpf_loop detail | grep -oE 'the (loop|unrolled) build' | awk '{print $2}')"
check "json: installed hooks.d found with both files" "true 2" \
	"$(field hooks.d ok "$HD") $(field hooks.d detail "$HD" | grep -oE 'depfence-(createruntime|poststop)\.json' | sort -u | wc -l)"
check "json: a missing hooks.d dir is not a failure" "true" "$(field hooks.d ok "$DF_T/nohooks")"
check "json: a passing check has no fix" "null" "$(field cgroup2 fix)"
check "doctor changed nothing: no pins" "" "$(find "$DF_PINS" -mindepth 1 2>/dev/null)"

# ---- hooks.d missing ----
config "$DF_T/nohooks"
doctor --json
check "no hooks.d: exit 1" "1" "$rc"
check "no hooks.d: ok false" "false" "$(jq -r .ok "$DF_T/out" 2>/dev/null)"
check "no hooks.d: oci_hooks fails" "false" "$(field oci_hooks ok)"
check "no hooks.d: with a fix" "1" "$(field oci_hooks fix | grep -q 'make install PREFIX=/usr' && echo 1)"
doctor
check "no hooks.d text: FAIL line and fix" "2" \
	"$(grep -cE '^  FAIL +oci_hooks |^ +fix: make install PREFIX=/usr' "$DF_T/out")"

# ---- hooks.d files that point at a missing binary, or only one stage ----
mkdir -p "$DF_T/broken" "$DF_T/half"
for f in "$HD"/*.json; do
	jq --arg p "$DF_T/gone/depfence" '.hook.path = $p' "$f" >"$DF_T/broken/$(basename "$f")"
done
cp "$HD/depfence-createruntime.json" "$DF_T/half/"
config "$DF_T/broken"
doctor --json
check "missing binary: exit 1" "1" "$rc"
check "missing binary: hooks.d fails naming the path" "false 1" \
	"$(field hooks.d ok "$DF_T/broken") $(field hooks.d detail "$DF_T/broken" | grep -qF "$DF_T/gone/depfence is not an executable file" && echo 1)"
check "missing binary: with a fix" "1" "$(field hooks.d fix "$DF_T/broken" | grep -q reinstall && echo 1)"
config "$DF_T/half"
doctor --json
check "createRuntime without poststop: exit 1" "1" "$rc"
check "createRuntime without poststop: says so" "false 1" \
	"$(field hooks.d ok "$DF_T/half") $(field hooks.d detail "$DF_T/half" | grep -q 'without a poststop hook' && echo 1)"
config
doctor --json
check "hooks_dirs []: only depfence run, exit 0" "0 true" "$rc $(field oci_hooks ok)"

# ---- bpffs ----
config "$HD"
# /sys/fs/bpf unmounted in a private mount namespace: depfence mounts it, still ok
unshare -m --propagation private sh -c 'for i in 1 2 3 4; do umount /sys/fs/bpf 2>/dev/null || break; done; exec "$0" doctor --json' \
	"$DF_BIN" >"$DF_T/out" 2>"$DF_T/err"
rc=$?
check "bpffs not mounted: still ok, exit 0" "0 true" "$rc $(field bpffs ok)"
check "bpffs not mounted: says depfence mounts it" "1" \
	"$(field bpffs detail | grep -q 'not mounted; depfence mounts bpffs there' && echo 1)"
check "bpffs stays mounted outside" "1" "$(grep -q ' /sys/fs/bpf bpf ' /proc/mounts && echo 1)"
jq --arg b "$DF_T/pins" '.bpffs_root = $b' "$DEPFENCE_CONFIG" >"$DF_T/c2" && mv "$DF_T/c2" "$DEPFENCE_CONFIG"
doctor --json
check "bpffs_root not on bpffs: exit 1, bpffs fails" "1 false" "$rc $(field bpffs ok)"
check "bpffs_root not on bpffs: says why, with a fix" "1 1" \
	"$(field bpffs detail | grep -q 'is not on a bpf filesystem' && echo 1) $(field bpffs fix | grep -q 'mount -t bpf bpf' && echo 1)"

# ---- report and state dirs ----
config "$HD"
mkdir -p "$DF_T/ro"
: >"$DF_T/afile"
jq --arg r "$DF_T/ro/reports" --arg s "$DF_T/afile/state" '.report_dir = $r | .state_dir = $s' \
	"$DEPFENCE_CONFIG" >"$DF_T/c2" && mv "$DF_T/c2" "$DEPFENCE_CONFIG"
# read-only for root too: a read-only bind mount in a private mount namespace
unshare -m --propagation private sh -c 'mount --bind -o ro "$1" "$1" && exec "$2" doctor --json' _ \
	"$DF_T/ro" "$DF_BIN" >"$DF_T/out" 2>"$DF_T/err"
rc=$?
check "read-only report_dir: exit 1" "1" "$rc"
check "read-only report_dir: fails, names why" "false 1" \
	"$(field report_dir ok) $(field report_dir detail | grep -q 'not writable: Read-only file system' && echo 1)"
check "read-only report_dir: with a fix" "1" "$(field report_dir fix | grep -q 'set report_dir' && echo 1)"
check "state_dir under a file: fails" "false 1" \
	"$(field state_dir ok) $(field state_dir detail | grep -q 'is not a directory' && echo 1)"
check "state_dir under a file: with a fix" "1" "$(field state_dir fix | grep -q 'set state_dir' && echo 1)"

# ---- without the capabilities ----
config "$HD"
setpriv --inh-caps=-all --bounding-set=-all "$DF_BIN" doctor --json >"$DF_T/out" 2>"$DF_T/err"
rc=$?
check "no caps: exit 1" "1" "$rc"
check "no caps: capabilities fails, names them" "false 1" \
	"$(field capabilities ok) $(field capabilities detail | grep -q 'needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN)' && echo 1)"
check "no caps: with a fix" "1" "$(field capabilities fix | grep -q root && echo 1)"
check "no caps: probes say why they did not run" "false 1" \
	"$(field prog_connect4 ok) $(field prog_connect4 detail | grep -q 'not probed' && echo 1)"
chmod 0755 "$DF_T"
chmod 0644 "$DEPFENCE_CONFIG"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$DF_BIN" doctor --json >"$DF_T/out" 2>"$DF_T/err"
rc=$?
check "as nobody: exit 1, capabilities fail" "1 false" "$rc $(field capabilities ok)"
check "as nobody: names the uid" "1" "$(field capabilities detail | grep -q "uid $(id -u nobody)" && echo 1)"
unshare --user --map-root-user "$DF_BIN" doctor --json >"$DF_T/out" 2>"$DF_T/err"
rc=$?
check "user namespace: exit 1, capabilities fail" "1 false" "$rc $(field capabilities ok)"
check "user namespace: says rootless" "1" "$(field capabilities detail | grep -q 'runs in a user namespace (rootless' && echo 1)"

# ---- a config that does not parse: said, and the rest still checked ----
echo '{ "report_dir": "/tmp", "colour": "blue" }' >"$DEPFENCE_CONFIG"
doctor --json
check "bad config: exit 1" "1" "$rc"
check "bad config: config fails naming the key" "false 1" \
	"$(field config ok) $(field config detail | grep -q 'unknown key "colour"' && echo 1)"
check "bad config: the other checks still run" "true" "$(field cgroup2 ok)"

# ---- usage ----
"$DF_BIN" doctor --frobnicate >/dev/null 2>&1
check "usage: unknown option exits 2" "2" "$?"
"$DF_BIN" doctor --help >"$DF_T/out" 2>&1
check "usage: --help exits 0 and documents --json" "0 1" "$? $(grep -q -- '--json' "$DF_T/out" && echo 1)"
