#!/bin/bash
# Host profiles: named rule sets in the admin's profiles dir, asked for by
# annotation or flag, found among the dir's entries (never a path built from
# what a pod spec wrote).
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/profiles"
df_setup
P=$DF_T/profiles
mkdir -p "$P"
cat >"$DF_T/config.json" <<EOC
{ "report_dir": "$DF_REPORTS", "state_dir": "$DF_STATE", "bpffs_root": "$DF_PINS", "profiles_dir": "$P", "attribution_linger": 0 }
EOC
cat >"$P/github-outage.json" <<'EOJ'
{ "description": "no dependency on github.com",
  "deny": ["github.com", "**.github.com", "203.0.113.10"] }
EOJ
cat >"$P/bad-rule.json" <<'EOJ'
{ "deny": ["git*hub.com"] }
EOJ
cat >"$P/bad-key.json" <<'EOJ'
{ "deny": [], "alow": ["x.example"] }
EOJ
echo '{ "deny": ["198.51.100.10"] }' >"$DF_T/outside.json"

NS=$(df_netns prof) || { notok "create netns" "ip netns add failed"; exit 1; }
df_servers "$NS" 80 || { notok "test servers" "did not come up"; exit 1; }

rep=$DF_T/p1.json
out=$(in_ns "$NS" "$DF_BIN" run --mode enforce --profile github-outage --report "$rep" -- \
	sh -c "$DF_TOOLS/dfclient tcp 203.0.113.10 80; $DF_TOOLS/dfclient tcp 203.0.113.20 80" 2>/dev/null)
check "profile: its rules apply" "EPERM
ok" "$out"
check "profile: report lists it" "github-outage" "$(jqr "$rep" '.policy.profiles | join(",")')"
check "profile: rule source names it" "profile github-outage" "$(jqr "$rep" '.policy.rules[0].source')"
check "profile: event rule from the profile" "203.0.113.10" "$(jqr "$rep" '.events[0].rule')"

err=$("$DF_BIN" run --profile nosuch -- true 2>&1)
check "profile: unknown name fails" "1" "$?"
case $err in *nosuch*"$P"*) ok "profile: unknown name: message names it and the dir" ;;
*) notok "profile: unknown name: message names it and the dir" "$err" ;; esac
err=$("$DF_BIN" run --profile bad-rule -- true 2>&1)
check "profile: bad rule fails" "1" "$?"
case $err in *"git*hub.com"*bad-rule.json*) ok "profile: bad rule: message names file and rule" ;;
*) notok "profile: bad rule: message names file and rule" "$err" ;; esac
err=$("$DF_BIN" run --profile bad-key -- true 2>&1)
case $err in *bad-key.json*alow*) ok "profile: unknown key named" ;; *) notok "profile: unknown key named" "$err" ;; esac
for name in ../outside /etc/passwd 'a/b' .hidden 'UPPER'; do
	err=$("$DF_BIN" run --profile "$name" -- true 2>&1)
	rc=$?
	check "profile: name \"$name\" refused as usage error" "2" "$rc"
done
check "profile: nothing outside the dir was read" "0" "$(grep -c 198.51.100.10 "$DF_REPORTS"/*.json 2>/dev/null | awk -F: '{s+=$2} END {print s+0}')"

# the annotation, through the hook
cg_root=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
CG=$cg_root/df$$-prof
mkdir "$CG" && df_track_cgroup "$CG"
sleep 30 &
sp=$!
df_track_pid $sp
echo $sp >"$CG/cgroup.procs"
state() { printf '{"ociVersion":"1.0.2","id":"prof-%s","status":"creating","pid":%d,"bundle":"/nonexistent","annotations":{"depfence.io/mode":"enforce","depfence.io/profile":"%s"}}' "$1" "$sp" "$2"; }
state a "nosuch" | "$DF_BIN" hook createRuntime 2>"$DF_T/err"
check "annotation profile: unknown name stops the container" "1" "$?"
check "annotation profile: message names the annotation" "1" "$(grep -c 'depfence.io/profile\|nosuch' "$DF_T/err" | awk '{print ($1 > 0)}')"
state b "../outside" | "$DF_BIN" hook createRuntime 2>"$DF_T/err"
check "annotation profile: path-like name refused" "1" "$?"
case $(cat "$DF_T/err") in *"depfence.io/profile"*"not a profile name"*) ok "annotation profile: says why" ;;
*) notok "annotation profile: says why" "$(cat "$DF_T/err")" ;; esac
state c "github-outage" | "$DF_BIN" hook createRuntime 2>"$DF_T/err"
check "annotation profile: attaches" "0" "$?"
printf '{"id":"prof-c","status":"stopped"}' | "$DF_BIN" hook poststop 2>/dev/null
check "annotation profile: report lists it" "github-outage 3" \
	"$(jqr "$DF_REPORTS/prof-c.json" '"\(.policy.profiles[0]) \(.policy.deny | length)"')"
df_check_clean "profiles"
