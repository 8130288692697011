#!/bin/bash
# make install into a DESTDIR: the tree operators get, and uninstall.
. "$(dirname "$0")/../lib.sh"
df_setup
D=$DF_T/dest
B=$(dirname "$DF_BIN")
out=$(make -C "$DF_ROOT" --no-print-directory -s BUILD="$B" DESTDIR="$D" install 2>&1)
check "install: succeeds" "0" "$?"
for f in usr/bin/depfence usr/libexec/oci/hooks.d/depfence; do
	check "install: $f executable" "1" "$([ -x "$D/$f" ] && echo 1)"
done
for st in createruntime poststop; do
	f=$D/usr/share/containers/oci/hooks.d/depfence-$st.json
	check "install: hooks.d $st file" "1" "$([ -s "$f" ] && echo 1)"
	check "install: $st hook runs the libexec binary" "/usr/libexec/oci/hooks.d/depfence" "$(jqr "$f" .hook.path)"
	# one pattern: podman ANDs the entries of when.annotations
	check "install: $st hook anchored on depfence.io/ (pod and container keys)" \
		'^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)?depfence\.io/' "$(jqr "$f" '.when.annotations | keys | join(" ")')"
	check "install: $st hook has a timeout" "1" "$(jqr "$f" '.hook.timeout > 0 | if . then 1 else 0 end')"
done
check "install: createRuntime stage" "createRuntime createRuntime" \
	"$(jqr "$D/usr/share/containers/oci/hooks.d/depfence-createruntime.json" '"\(.stages[0]) \(.hook.args[2])"')"
check "install: poststop stage" "poststop poststop" \
	"$(jqr "$D/usr/share/containers/oci/hooks.d/depfence-poststop.json" '"\(.stages[0]) \(.hook.args[2])"')"
for m in man1/depfence.1 man5/depfence-policy.5; do
	f=$D/usr/share/man/$m
	check "install: man page $m" "1" "$([ -s "$f" ] && echo 1)"
	# man -l through groff with every warning on: nothing on stderr, a NAME section out
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=all -E UTF-8 -l "$f" 2>"$DF_T/man.err")
	check "install: man -l renders $m without warnings" "" "$(cat "$DF_T/man.err")"
	check "install: $m renders NAME, DESCRIPTION and SEE ALSO" "3" \
		"$(grep -cE '^(NAME|DESCRIPTION|SEE ALSO)$' <<<"$out")"
done
# the man pages stay true to the binary: every command of depfence help is in depfence(1)
cmds=$("$DF_BIN" help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
page=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -E UTF-8 -l "$D/usr/share/man/man1/depfence.1" 2>/dev/null)
missing=""
for c in $cmds; do
	[ "$c" = help ] && continue
	grep -qE "^ +depfence $c( |$)" <<<"$page" || missing="$missing $c"
done
check "install: depfence(1) documents every command" "" "$missing"
# and every host configuration key the parser knows is in depfence-policy(5)
page5=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -E UTF-8 -l "$D/usr/share/man/man5/depfence-policy.5" 2>/dev/null)
missing=""
for k in $(sed -n '/known_keys\[\] = {/,/};/p' "$DF_ROOT/hook/config.c" | grep -o '"[a-z_]*"' | tr -d '"'); do
	grep -qE "^ +$k$" <<<"$page5" || missing="$missing $k"
done
check "install: depfence-policy(5) documents every config key" "" "$missing"
check "install: profiles dir" "1" "$([ -d "$D/etc/depfence/profiles" ] && echo 1)"
cfg=$D/etc/depfence/depfence.json
check "install: config with its commented defaults is accepted" "0" \
	"$(DEPFENCE_CONFIG=$cfg "$DF_BIN" run --help >/dev/null 2>&1; DEPFENCE_CONFIG=$cfg "$D/usr/bin/depfence" hook poststop <<<'{"id":"install-test"}' 2>/dev/null; echo $?)"
echo '{ "report_dir": "/srv/mine" }' >"$cfg"
make -C "$DF_ROOT" --no-print-directory -s BUILD="$B" DESTDIR="$D" install >/dev/null 2>&1
check "install: an existing config is never overwritten" '{ "report_dir": "/srv/mine" }' "$(cat "$cfg")"
make -C "$DF_ROOT" --no-print-directory -s BUILD="$B" DESTDIR="$D" uninstall >/dev/null 2>&1
check "uninstall: binaries and hooks removed, config kept" "etc/depfence/depfence.json" \
	"$(cd "$D" && find . -type f | sed 's|^\./||' | sort | tr '\n' ' ' | sed 's/ $//')"
