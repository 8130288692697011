#!/bin/bash
# Names through DNS, with a real resolver (dnsmasq) in a network namespace made
# here and real clients in the fence: dfdns asks the way musl (unconnected
# sendto) and glibc (connected UDP, TCP) do; getent goes through glibc itself.
. "$(dirname "$0")/../lib.sh"
df_require_privileges "integration/dns"
df_setup

NS=$(df_netns dns) || { notok "create netns" "ip netns add failed"; exit 1; }
df_dns "$NS" || { notok "dnsmasq" "did not answer"; exit 1; }
df_servers "$NS" 80 443 || { notok "test servers" "did not come up"; exit 1; }
R=203.0.113.53
Q="$DF_TOOLS/dfdns"
C="$DF_TOOLS/dfclient"

# run NAME ARGS... -- CMD: depfence run in the namespace, report in $rep, output in $out
fenced() {
	rep=$DF_T/r-$RANDOM.json
	out=$(nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --report "$rep" "$@" 2>"$DF_T/stderr")
}
ev() { jqr "$rep" "$1"; }

# name | mode | default | deny | allow | how | qname | client says | event verdict | rule
CASES='
exact name refused             |enforce|allow|github.com|-|sendto|github.com|EPERM|blocked|github.com
connected udp refused          |enforce|allow|github.com|-|connect|github.com|EPERM|blocked|github.com
case-insensitive               |enforce|allow|github.com|-|sendto|GitHub.COM|EPERM|blocked|github.com
trailing dot ignored           |enforce|allow|github.com.|-|sendto|github.com|EPERM|blocked|github.com
exact spares subdomains        |enforce|allow|github.com|-|sendto|api.github.com|ok 203.0.113.10|-|-
double star one label down     |enforce|allow|**.github.com|-|sendto|api.github.com|EPERM|blocked|**.github.com
double star deeper             |enforce|allow|**.github.com|-|sendto|a.b.c.github.com|EPERM|blocked|**.github.com
double star spares apex        |enforce|allow|**.github.com|-|sendto|github.com|ok 203.0.113.10|-|-
star one label                 |enforce|allow|*.github.com|-|sendto|api.github.com|EPERM|blocked|*.github.com
star not two labels            |enforce|allow|*.github.com|-|sendto|a.b.github.com|ok 203.0.113.10|-|-
star spares apex               |enforce|allow|*.github.com|-|sendto|github.com|ok 203.0.113.10|-|-
other names pass               |enforce|allow|github.com|-|sendto|mirror.internal|ok 198.51.100.10|-|-
audit lets it through          |audit|allow|github.com|-|sendto|github.com|ok 203.0.113.10|would-block|github.com
observe records it             |observe|allow|-|-|sendto|mirror.internal|ok 198.51.100.10|allowed|default
default deny refuses questions |enforce|deny|-|udp/203.0.113.53:53|sendto|github.com|EPERM|blocked|default
allow-list lets its names      |enforce|deny|-|udp/203.0.113.53:53 **.pkg.example.com|sendto|a.pkg.example.com|ok 203.0.113.20|-|-
exact beats double star        |enforce|allow|**.github.com|api.github.com|sendto|api.github.com|ok 203.0.113.10|-|-
deny wins a name tie           |enforce|allow|api.github.com|api.github.com|sendto|api.github.com|EPERM|blocked|api.github.com
tcp question refused           |enforce|allow|github.com|-|tcp|github.com|timeout|blocked|github.com
tcp question split from prefix |enforce|allow|github.com|-|tcp-split|github.com|timeout|blocked|github.com
tcp question allowed           |enforce|allow|github.com|-|tcp|mirror.internal|ok 198.51.100.10|-|-
'
while IFS='|' read -r name mode def deny allow how qname want verdict rule; do
	name=$(echo "$name" | sed 's/ *$//')
	[ -z "$name" ] && continue
	args=(--mode "$mode" --default "$def")
	[ "$deny" != - ] && args+=(--deny "$deny")
	[ "$allow" != - ] && args+=(--allow "$allow")
	fenced "${args[@]}" -- "$Q" -m "$how" $R 53 "$qname"
	check "$name: client" "$want" "$out"
	if [ "$verdict" = - ]; then
		check "$name: no dns event" "0" "$(ev '[.events[] | select(.hook == "dns")] | length')"
	else
		lname=$(echo "$qname" | tr A-Z a-z)
		check "$name: event" "$verdict $lname $rule A $R 53" \
			"$(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name) \(.rule) \(.qtype) \(.daddr) \(.dport)"')"
	fi
done <<<"$CASES"

# --- provenance: names decide for addresses learned from answers ---
ALLOWLIST=(--mode enforce --default deny --allow "udp/$R:53 **.pkg.example.com api.example.com")
fenced "${ALLOWLIST[@]}" -- sh -c "$Q $R 53 a.pkg.example.com >/dev/null; $C tcp 203.0.113.20 80"
check "allow-list: address from an allowed name's answer is reachable" "ok" "$out"
check "allow-list: its event-free report counts the answer" "1" "$(ev .summary.dns_answers)"
fenced "${ALLOWLIST[@]}" -- "$C" tcp 203.0.113.20 80
check "allow-list: same address without the answer is refused" "EPERM" "$out"
fenced "${ALLOWLIST[@]}" -- sh -c "$Q -t AAAA $R 53 b.pkg.example.com >/dev/null; $C tcp 2001:db8::20 80"
check "allow-list: AAAA provenance" "ok" "$out"
fenced "${ALLOWLIST[@]}" -- sh -c "$Q $R 53 api.example.com >/dev/null; $C tcp 203.0.113.30 80"
check "allow-list: CNAME chain gives provenance to the asked name" "ok" "$out"
fenced "${ALLOWLIST[@]}" -- sh -c "$Q $R 53 github.com; $C tcp 203.0.113.10 443"
check "allow-list: other names and their addresses refused" "EPERM
EPERM" "$out"

fenced --mode observe -- sh -c "$Q $R 53 api.example.com >/dev/null; $C tcp 203.0.113.30 80"
check "observe: connect event carries the name" "api.example.com" \
	"$(ev '[.events[] | select(.hook == "connect4" and .daddr == "203.0.113.30")][0].name')"
check "observe: resolver datagram has no name" "null" \
	"$(ev '[.events[] | select(.hook == "sendmsg4")][0].name')"

fenced --mode enforce --deny tcp/github.com:443 -- sh -c "$Q $R 53 github.com; $C tcp 203.0.113.10 443; $C tcp 203.0.113.10 80"
check "port-specific name rule: question allowed, that port refused, others pass" "ok 203.0.113.10
EPERM
ok" "$out"
check "port-specific name rule: event names the name and rule" "blocked connect4 github.com tcp/github.com:443" \
	"$(ev '[.events[] | select(.hook == "connect4")][0] | "\(.verdict) \(.hook) \(.name) \(.rule)"')"

fenced --mode enforce --deny '**.github.com' -- sh -c "$Q $R 53 api.github.com; $C tcp 203.0.113.10 80"
check "deny by name: address from a refused question is not learned (judged by address)" "EPERM
ok" "$out"

# --- a process in the fence cannot teach the fence a name ---
cat >"$DF_T/fake_dns.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
open(sys.argv[1], "w").close()
s.settimeout(10)
q, a = s.recvfrom(512)
end = q.index(b"\0", 12) + 5
ans = q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x01\x00\x00\x00\x00" + q[12:end]
ans += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04" + socket.inet_aton("203.0.113.10")
s.sendto(ans, a)
PY
fenced --mode enforce --default deny --allow "127.0.0.0/8 udp/$R:53 **.pkg.example.com" -- \
	sh -c "python3 $DF_T/fake_dns.py $DF_T/fake.ready & for i in \$(seq 100); do [ -e $DF_T/fake.ready ] && break; sleep 0.1; done; $Q 127.0.0.1 53 evil.pkg.example.com; $C tcp 203.0.113.10 80; wait"
check "fake answer from inside: the client got it" "ok 203.0.113.10" "$(echo "$out" | head -1)"
check "fake answer from inside: it teaches nothing" "EPERM" "$(echo "$out" | tail -1)"
check "fake answer from inside: counted untrusted" "1" "$(ev '.summary.dns_untrusted')"

# --- glibc's resolver, the one most deploy tools use ---
cat >"$DF_T/resolv.conf" <<EOC
nameserver $R
options timeout:1 attempts:1
EOC
glibc() { echo "mount --bind $DF_T/resolv.conf /etc/resolv.conf && getent ahostsv4 $1"; }
fenced --mode enforce --deny github.com -- unshare --mount sh -c "$(glibc github.com)"
check "getent: refused name fails" "" "$out"
check "getent: ... and fast, through EPERM (no resolver timeout)" "1" "$(ev '.summary.dns_blocked >= 1 | if . then 1 else 0 end')"
fenced --mode enforce --deny github.com -- unshare --mount sh -c "$(glibc mirror.internal)"
check "getent: allowed name resolves" "198.51.100.10" "$(echo "$out" | awk 'NR==1{print $1}')"
fenced --mode enforce --default deny --allow "udp/$R:53 **.pkg.example.com" -- \
	unshare --mount sh -c "$(glibc www.pkg.example.com) >/dev/null && $C tcp 203.0.113.20 443"
check "getent then connect: allow-list by name" "ok" "$out"

df_check_clean "dns"
