#!/bin/bash
# The shipped examples parse, and what they configure is what depfence accepts:
# the pod's annotations through the hook (pod and container-scoped keys), the
# DaemonSet's config and profile, the containerd and CI snippets.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "examples/manifests"
df_setup
E=$DF_ROOT/examples
PY=/usr/bin/python3

for f in "$E"/kubernetes/*.yaml "$E"/ci/*.yml; do
	check "yaml parses: ${f#$E/}" "0" "$($PY -c 'import sys, yaml; list(yaml.safe_load_all(open(sys.argv[1])))' "$f" >/dev/null 2>&1; echo $?)"
done
check "containerd: pod annotations pass depfence keys" "1" \
	"$($PY -c 'import sys, tomllib; c = tomllib.load(open(sys.argv[1], "rb")); r = c["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]["runc"]; print(int("depfence.io/*" in r["pod_annotations"] and "*.depfence.io/*" in r["pod_annotations"]))' "$E/containerd/config.toml" 2>&1)"
for f in "$E"/ci/*.yml; do
	check "ci: ${f#$E/} gates on the report" "1" "$(grep -c 'depfence report --fail-on' "$f")"
done

# the pod: each container's state as CRI-O hands it to the hook
$PY - "$E/kubernetes/deploy-pod.yaml" >"$DF_T/pod.json" <<'PY'
import json, sys, yaml
pod = yaml.safe_load(open(sys.argv[1]))
print(json.dumps({"annotations": pod["metadata"]["annotations"],
                  "containers": [c["name"] for c in pod["spec"]["containers"]]}))
PY
cg_root=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
for c in $(jq -r '.containers[]' "$DF_T/pod.json"); do
	CG=$cg_root/df$$-$c
	mkdir "$CG" && df_track_cgroup "$CG"
	sleep 30 &
	sp=$!
	df_track_pid $sp
	echo $sp >"$CG/cgroup.procs"
	jq -c --arg c "$c" --argjson pid $sp \
		'{ociVersion: "1.0.2", id: ("pod-" + $c), status: "created", pid: $pid, bundle: "/nonexistent",
		  annotations: (.annotations + {"io.kubernetes.container.name": $c})}' "$DF_T/pod.json" |
		"$DF_BIN" hook createRuntime 2>"$DF_T/err"
	check "pod: $c: the hook accepts the annotations" "0" "$?"
	printf '{"id":"pod-%s","status":"stopped"}' "$c" | "$DF_BIN" hook poststop 2>/dev/null
	kill $sp 2>/dev/null
done
check "pod: deploy enforces the pod's deny list" "enforce 3 deploy of api v2, pipeline 4242" \
	"$(jqr "$DF_REPORTS/pod-deploy.json" '"\(.mode) \(.policy.deny | length) \(.label)"')"
check "pod: the sidecar's own key wins: observe" "observe" "$(jqr "$DF_REPORTS/pod-log-shipper.json" .mode)"

# the DaemonSet's config and profile
$PY - "$E/kubernetes/daemonset.yaml" "$DF_T" <<'PY'
import os, sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d["kind"] == "ConfigMap":
        os.makedirs(os.path.join(sys.argv[2], d["metadata"]["name"]), exist_ok=True)
        for k, v in d["data"].items():
            open(os.path.join(sys.argv[2], d["metadata"]["name"], k), "w").write(v)
PY
jq --arg p "$DF_T/depfence-profiles" --arg r "$DF_REPORTS" --arg s "$DF_STATE" --arg b "$DF_PINS" \
	'. + {profiles_dir: $p, report_dir: $r, state_dir: $s, bpffs_root: $b, attribution_linger: 0}' \
	"$DF_T/depfence-config/depfence.json" >"$DF_T/ds-config.json"
check "daemonset: its config and profile work" "0" \
	"$(DEPFENCE_CONFIG=$DF_T/ds-config.json "$DF_BIN" run --profile github-outage --report "$DF_T/ds.json" -- true 2>/dev/null; echo $?)"
check "daemonset: the profile's rules apply" "3" "$(jqr "$DF_T/ds.json" '.policy.deny | length')"
df_check_clean "manifests"
