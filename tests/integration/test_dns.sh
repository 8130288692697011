#!/bin/bash
# Names through DNS, with a real resolver (dnsmasq) in a network namespace made
# here and real clients in the fence: dfdns asks the way musl (unconnected
# sendto) and glibc (connected UDP, TCP) do; getent and curl go through glibc
# itself; dig (BIND) asks over UDP and TCP.
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
tcp question refused           |enforce|allow|github.com|-|tcp|github.com|EACCES|blocked|github.com
tcp question split from prefix |enforce|allow|github.com|-|tcp-split|github.com|EACCES|blocked|github.com
tcp question allowed           |enforce|allow|github.com|-|tcp|mirror.internal|ok 198.51.100.10|-|-
tcp audit lets it through      |audit|allow|github.com|-|tcp|github.com|ok 203.0.113.10|would-block|github.com
tcp default deny refuses       |enforce|deny|-|tcp/203.0.113.53:53|tcp|github.com|EACCES|blocked|default
tcp allow-list lets its names  |enforce|deny|-|tcp/203.0.113.53:53 **.pkg.example.com|tcp|a.pkg.example.com|ok 203.0.113.20|-|-
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

# --- a kernel with bpf_loop whose verifier refuses the loop build (the shim
# libdfnoloop.so fails its loads as such a kernel would): the hook loads the
# unrolled build and the fence judges names the same ---
NOLOOP=$DF_T/noloop.log
nl_fenced() {
	rep=$DF_T/r-$RANDOM.json
	out=$(DFNOLOOP_LOG=$NOLOOP LD_PRELOAD="$DF_TOOLS/libdfnoloop.so" \
		nsenter --net="/run/netns/$NS" -- "$DF_BIN" run --report "$rep" "$@" 2>"$DF_T/stderr")
}
nl_fenced --mode enforce --deny github.com -- "$Q" -m sendto $R 53 github.com
check "loop build refused: the question is still refused" "EPERM" "$out"
check "loop build refused: its event" "blocked github.com" \
	"$(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name)"')"
check "loop build refused: the shim refused the loop build's egress" "1" \
	"$(grep -c '^refused df_egress$' "$NOLOOP" | awk '{print ($1 > 0)}')"
check "loop build refused: the hook says it loads the unrolled build" "1" \
	"$(grep -c 'bpf_loop build of the fence.s programs did not load.*loading the unrolled build' "$DF_T/stderr")"
nl_fenced --mode enforce --deny github.com -- "$Q" -m sendto $R 53 mirror.internal
check "loop build refused: other names are answered" "ok 198.51.100.10" "$out"

# --- DNS over TCP: the write that carries a refused question fails at once ---
fenced --mode enforce --deny github.com -- "$Q" -m tcp $R 53 github.com
check "tcp refusal: counted once (no retransmits into a drop)" "1 1" \
	"$(ev '"\(.summary.dns_queries) \(.summary.dns_blocked)"')"
check "tcp refusal: the process that wrote it" "dfdns" \
	"$(ev '[.events[] | select(.hook == "dns")][0].process.comm')"
fenced --mode enforce --deny github.com -- "$Q" -m tcp 2001:db8::53 53 github.com
check "tcp over IPv6: refused" "EACCES" "$out"
check "tcp over IPv6: event names the resolver" "blocked github.com 2001:db8::53 53" \
	"$(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name) \(.daddr) \(.dport)"')"
fenced --mode enforce --deny github.com -- "$Q" -m tcp 2001:db8::53 53 mirror.internal
check "tcp over IPv6: allowed" "ok 198.51.100.10" "$out"
# the reader is loaded only where a question can be refused
pins_of_run() { echo "ls $DF_PINS/\$(ls $DF_PINS | grep '^run-' | head -n 1) | grep -c '^dns_' ; $Q -m tcp $R 53 github.com"; }
fenced --mode enforce --deny github.com -- sh -c "$(pins_of_run)"
check "tcp reader: loaded for an enforce fence with name rules" "2 EACCES" "$(echo $out)"
fenced --mode enforce --default deny --allow "tcp/$R:53" -- sh -c "$(pins_of_run)"
check "tcp reader: loaded for default deny" "2 EACCES" "$(echo $out)"
fenced --mode enforce --deny 10.0.0.0/8 -- sh -c "$(pins_of_run)"
check "tcp reader: not loaded when no question can be refused" "0 ok 203.0.113.10" "$(echo $out)"
fenced --mode audit --deny github.com -- sh -c "$(pins_of_run)"
check "tcp reader: not loaded in audit" "0 ok 203.0.113.10" "$(echo $out)"
# several questions in one write, as pipelining clients send them: each is
# judged where it starts; the allowed one goes out and is answered, the write
# fails where the refused one begins
cat >"$DF_T/pipeline.py" <<'PY'
import socket, struct, sys
def q(i, name):
    m = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0)
    m += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\0\1\0\1"
    return struct.pack(">H", len(m)) + m
s = socket.create_connection((sys.argv[1], 53), timeout=3)
data = b"".join(q(i + 1, n) for i, n in enumerate(sys.argv[2:]))
try:
    s.sendall(data)
    print("sent", end=" ")
except OSError as e:
    print(__import__("errno").errorcode[e.errno], end=" ")
try:
    n = struct.unpack(">H", s.recv(2))[0]
    r = s.recv(n)
    print("answer %d" % struct.unpack(">H", r[:2])[0])
except OSError as e:
    print("no answer")
PY
fenced --mode enforce --deny github.com -- python3 "$DF_T/pipeline.py" $R mirror.internal github.com
check "tcp pipeline: first answered, write fails at the refused one" "EACCES answer 1" "$out"
check "tcp pipeline: the refused one recorded" "blocked github.com" \
	"$(ev '[.events[] | select(.hook == "dns" and .verdict == "blocked")] | map("\(.verdict) \(.name)") | join(",")')"
fenced --mode enforce --deny github.com -- python3 "$DF_T/pipeline.py" $R mirror.internal api.github.com
check "tcp pipeline: both allowed, both go" "sent answer 1" "$out"
# one write of [len][id 0x8001, flags 0x0001: NAME][len][mirror.internal]:
# qdcount reads 1 with the first length and without it, so the framing is a
# guess, and read without the length the id is flags with QR set (an answer);
# the question the resolver reads is judged all the same
cat >"$DF_T/ambig.py" <<'PY'
import errno, socket, struct, sys
def q(i, flags, name):
    m = struct.pack(">HHHHHH", i, flags, 1, 0, 0, 0)
    m += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0\0\1\0\1"
    return struct.pack(">H", len(m)) + m
s = socket.create_connection((sys.argv[1], 53), timeout=3)
try:
    s.send(q(0x8001, 0x0001, sys.argv[2]) + q(0x7777, 0x0100, "mirror.internal"))
except OSError as e:
    print(errno.errorcode[e.errno])
    sys.exit(0)
n = struct.unpack(">H", s.recv(2))[0]
print("sent answer %#x" % struct.unpack(">H", s.recv(n)[:2])[0])
PY
fenced --mode enforce --deny github.com -- python3 "$DF_T/ambig.py" $R github.com
check "tcp flags 0x0001, id 0x8001: the write is refused" "EACCES" "$out"
check "tcp flags 0x0001, id 0x8001: the refused question recorded" "1 1 blocked github.com github.com" \
	"$(ev '"\(.summary.dns_queries) \(.summary.dns_blocked) " + ([.events[] | select(.hook == "dns")] | map("\(.verdict) \(.name) \(.rule)") | join(","))')"
fenced --mode enforce --default deny --allow "tcp/$R:53 mirror.internal" -- python3 "$DF_T/ambig.py" $R github.com
check "tcp flags 0x0001, id 0x8001, default deny: refused" "EACCES blocked github.com default" \
	"$out $(ev '[.events[] | select(.hook == "dns")] | map("\(.verdict) \(.name) \(.rule)") | join(",")')"
fenced --mode enforce --deny github.com -- python3 "$DF_T/ambig.py" $R mirror.internal
check "tcp flags 0x0001, id 0x8001: an allowed question goes and is answered" "sent answer 0x8001" "$out"
# the same write in audit, where no sk_msg reader is loaded: egress reads it
fenced --mode audit --deny github.com -- python3 "$DF_T/ambig.py" $R github.com
check "tcp flags 0x0001, id 0x8001, audit: egress records the question" "sent answer 0x8001 would-block github.com" \
	"$out $(ev '[.events[] | select(.hook == "dns")] | map("\(.verdict) \(.name)") | join(",")')"

# a question written a few bytes a write (TCP_NODELAY: each its own segment):
# held back until it can be judged whole, then refused or sent
cat >"$DF_T/pieces.py" <<'PY'
import errno, socket, struct, sys, time
m = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
m += b"".join(bytes([len(l)]) + l.encode() for l in sys.argv[2].split(".")) + b"\0\0\1\0\1"
m = struct.pack(">H", len(m)) + m
s = socket.create_connection((sys.argv[1], 53), timeout=3)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
try:
    for i in range(0, len(m), int(sys.argv[3])):
        s.send(m[i:i + int(sys.argv[3])])
        time.sleep(0.02)
except OSError as e:
    print(errno.errorcode[e.errno])
    sys.exit(0)
n = struct.unpack(">H", s.recv(2))[0]
print("answered %d bytes" % len(s.recv(n)))
PY
for step in 1 5 13; do
	fenced --mode enforce --deny github.com -- python3 "$DF_T/pieces.py" $R github.com $step
	check "tcp question in writes of $step bytes: refused, recorded" "EACCES blocked github.com" \
		"$out $(ev '[.events[] | select(.hook == "dns")] | map("\(.verdict) \(.name)") | join(",")')"
	fenced --mode enforce --deny github.com -- python3 "$DF_T/pieces.py" $R mirror.internal $step
	check "tcp question in writes of $step bytes: an allowed one is answered" "answered 49 bytes" "$out"
done

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

# an address a port-specific refusal holds is not taken over by another name resolving to it
# (www.github.com has no rule; dnsmasq answers 203.0.113.10 for both)
fenced --mode enforce --deny tcp/api.github.com:443 -- sh -c \
	"$Q $R 53 api.github.com; $C tcp 203.0.113.10 443; $Q $R 53 www.github.com; $C tcp 203.0.113.10 443; $C tcp 203.0.113.10 80"
check "port-specific name rule: another name's answer does not free its address" "ok 203.0.113.10
EPERM
ok 203.0.113.10
EPERM
ok" "$out"
check "port-specific name rule: both refusals name the refused name" "api.github.com api.github.com" \
	"$(ev '[.events[] | select(.hook == "connect4" and .verdict == "blocked")] | map(.name) | join(" ")')"

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

# the same over TCP: the fake server's accepted connection answers from port
# 53, so egress reads its answer even on a connection the fence judged (the
# quiet-TCP fast path is for connections with no DNS port at either end)
cat >"$DF_T/fake_dns_tcp.py" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 53))
s.listen(1)
open(sys.argv[1], "w").close()
s.settimeout(10)
c, _ = s.accept()
c.settimeout(10)
buf = b""
while len(buf) < 2 or len(buf) < 2 + struct.unpack("!H", buf[:2])[0]:
    buf += c.recv(512)
q = buf[2:]
end = q.index(b"\0", 12) + 5
ans = q[:2] + b"\x81\x80" + q[4:6] + b"\x00\x01\x00\x00\x00\x00" + q[12:end]
ans += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04" + socket.inet_aton("203.0.113.10")
c.sendall(struct.pack("!H", len(ans)) + ans)
c.close()
PY
fenced --mode enforce --default deny --allow "127.0.0.0/8 tcp/$R:53 **.pkg.example.com" -- \
	sh -c "python3 $DF_T/fake_dns_tcp.py $DF_T/faketcp.ready & for i in \$(seq 100); do [ -e $DF_T/faketcp.ready ] && break; sleep 0.1; done; $Q -m tcp 127.0.0.1 53 evil.pkg.example.com; $C tcp 203.0.113.10 80; wait"
check "fake answer from inside over TCP: the client got it" "ok 203.0.113.10" "$(echo "$out" | head -1)"
check "fake answer from inside over TCP: it teaches nothing" "EPERM" "$(echo "$out" | tail -1)"
check "fake answer from inside over TCP: counted untrusted" "1" "$(ev '.summary.dns_untrusted')"

# --- a UDP socket's repeated sends: sendmsg caches an allowed verdict on the
# socket (no provenance for the address, same mode, nothing learnt since); a
# name learnt for the address afterwards spoils it, and cached sends count ---
cat >"$DF_T/sendcache.py" <<'PY'
import errno, socket, subprocess, sys
q, r = sys.argv[1], sys.argv[2]
def send(s, a, p):
    try:
        s.sendto(b"x", (a, p))
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
s4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
out = [send(s4, "203.0.113.10", 9999), send(s4, "203.0.113.10", 9999),
       send(s6, "2001:db8::10", 9999), send(s6, "2001:db8::10", 9999)]
# learn github.com's addresses (A and AAAA) from the resolver
subprocess.run([q, r, "53", "github.com"], stdout=subprocess.DEVNULL)
subprocess.run([q, "-t", "AAAA", r, "53", "github.com"], stdout=subprocess.DEVNULL)
out += [send(s4, "203.0.113.10", 9999), send(s6, "2001:db8::10", 9999), send(s4, "203.0.113.10", 9998)]
print(" ".join(out))
PY
fenced --mode enforce --deny "udp/github.com:9999" -- python3 "$DF_T/sendcache.py" "$Q" "$R"
check "send cache: allowed twice before the name, refused once it is learnt (v4 and v6)" \
	"ok ok ok ok EPERM EPERM ok" "$out"
check "send cache: the refusals name github.com" "2" \
	"$(jqr "$rep" '[.events[] | select(.verdict == "blocked" and .name == "github.com")] | length')"
# a cached destination allows only itself: 203.0.113.42:9998 differs from
# 203.0.113.10:9999 in the bits a linear hash of the two would cancel
cat >"$DF_T/sendnear.py" <<'PY'
import errno, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
out = []
for a, p in (("203.0.113.10", 9999), ("203.0.113.10", 9999), ("203.0.113.42", 9998), ("203.0.113.10", 9998)):
    try:
        s.sendto(b"x", (a, p))
        out.append("ok")
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e.errno)))
print(" ".join(out))
PY
fenced --mode enforce --deny "203.0.113.42, udp/203.0.113.10:9998" -- python3 "$DF_T/sendnear.py"
check "send cache: only the cached destination itself" "ok ok EPERM EPERM" "$out"
cat >"$DF_T/sendcount.py" <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5):
    s.sendto(b"x", ("203.0.113.20", 9999))
print("sent")
PY
fenced --mode enforce --deny 198.51.100.0/24 -- python3 "$DF_T/sendcount.py"
check "send cache: five sends, five counted" "sent 5 5" "$out $(ev '.summary.connections') $(ev '.summary.allowed')"

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
# glibc over TCP (options use-vc): its A and AAAA questions in one writev
sed 's/^options .*/& use-vc/' "$DF_T/resolv.conf" >"$DF_T/resolv-vc.conf"
vc() { echo "mount --bind $DF_T/resolv-vc.conf /etc/resolv.conf && getent ahosts $1"; }
fenced --no-confine --mode enforce --deny github.com -- unshare --mount strace -f -e trace=writev,write,sendmsg,sendto -o "$DF_T/vc.strace" sh -c "$(vc github.com)"
check "getent use-vc: refused name fails" "" "$out"
check "getent use-vc: its writev is refused with EACCES" "1" "$(grep 'writev' "$DF_T/vc.strace" | grep -c EACCES | awk '{print ($1 >= 1)}')"
check "getent use-vc: report names the question" "blocked github.com tcp" \
	"$(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name) \(.proto)"')"
fenced --mode enforce --deny github.com -- unshare --mount sh -c "$(vc mirror.internal)"
check "getent use-vc: allowed name resolves" "198.51.100.10" "$(echo "$out" | awk 'NR==1{print $1}')"

# --- dig (BIND 9), UDP and TCP, in each mode ---
# dig ignores a send error and waits out its +time, so the refusal is proven
# by the EPERM its sendmmsg gets, not by how soon it gives up.
D="dig +tries=1 +time=2 @$R"
fenced --no-confine --mode enforce --deny github.com -- strace -f -e trace=sendmmsg,sendmsg,sendto -o "$DF_T/dig.strace" $D github.com A
check "dig: refused name gets no answer" "" "$(echo "$out" | grep -A1 'ANSWER SECTION' | tail -n +2)"
check "dig: its send is refused with EPERM" "1" "$(grep -c 'EPERM' "$DF_T/dig.strace" | awk '{print ($1 >= 1)}')"
check "dig: report names the question" "blocked github.com A" \
	"$(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name) \(.qtype)"')"
fenced --mode enforce --deny github.com -- $D +short mirror.internal
check "dig: allowed name resolves" "198.51.100.10" "$out"
fenced --no-confine --mode enforce --deny github.com -- strace -f -e trace=write,writev,sendmsg,sendto -o "$DF_T/digtcp.strace" $D +tcp github.com
check "dig +tcp: refused name gets no answer" "" "$(echo "$out" | grep -A1 'ANSWER SECTION' | tail -n +2)"
check "dig +tcp: its write is refused with EACCES" "1" "$(grep -c 'EACCES' "$DF_T/digtcp.strace" | awk '{print ($1 >= 1)}')"
check "dig +tcp: report names the question" "blocked github.com tcp" \
	"$(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name) \(.proto)"')"
fenced --mode enforce --deny github.com -- $D +tcp +short mirror.internal
check "dig +tcp: allowed name resolves" "198.51.100.10" "$out"
# --- a resolver behind a NAT rule in the client's own namespace: the
# question leaves for the service address, a DNAT rule sends it elsewhere
# after connect or sendmsg judged it, and the answer comes back from the
# service address, the rule undone. Two: the service address rewritten
# (198.51.100.53:53 -> 203.0.113.53:53), and the port as Docker's embedded DNS
# has it (127.0.0.11:53 -> 127.0.0.11:5353, where the port is no DNS port).
# The fence reads the question where the socket meant it to go, records that
# resolver, and learns from the answer ---
ip -n "$NS" route add local 198.51.100.53/32 dev lo
df_dns "$NS" 127.0.0.11 5353 || notok "dnsmasq on 127.0.0.11:5353" "did not answer"
nsenter --net="/run/netns/$NS" -- nft -f - <<NFT
table ip dfdnsnat {
	chain out {
		type nat hook output priority -100;
		ip daddr 198.51.100.53 meta l4proto { tcp, udp } th dport 53 counter dnat to $R
		ip daddr 127.0.0.11 meta l4proto { tcp, udp } th dport 53 counter dnat to 127.0.0.11:5353
	}
}
NFT
# refusal HOW: what dfdns says when its question is refused (EACCES: sk_msg's SK_DROP)
refusal() { [ "$1" = tcp ] && echo EACCES || echo EPERM; }
# nat_case SVC ALLOW QTYPE NAME ADDR: through the resolver at SVC port 53, over
# musl's sendto, glibc's connect and TCP: an allowed name is answered, a denied
# one refused with SVC in its event, and NAME's QTYPE answer teaches ADDR
# (reached on port 80 under default deny allowing ALLOW and NAME)
nat_case() {
	local svc=$1 allow=$2 qt=$3 name=$4 addr=$5 how refused
	for how in sendto connect tcp; do
		refused=$(refusal $how)
		fenced --mode enforce --deny github.com -- "$Q" -m $how $svc 53 mirror.internal
		check "nat'd resolver $svc, $how: an allowed name is answered" "ok 198.51.100.10" "$out"
		fenced --mode enforce --deny github.com -- "$Q" -t $qt -m $how $svc 53 github.com
		check "nat'd resolver $svc, $how: a denied name is refused" "$refused" "$out"
		check "nat'd resolver $svc, $how: its event names the resolver asked" "blocked github.com $svc 53" \
			"$(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name) \(.daddr) \(.dport)"')"
		fenced --mode enforce --default deny --allow "$allow $name" -- \
			sh -c "$Q -t $qt -m $how $svc 53 $name >/dev/null; $C tcp $addr 80"
		check "nat'd resolver $svc, $how: an allowed name's address is learnt" "ok" "$out"
		check "nat'd resolver $svc, $how: the answer trusted" "1 0" \
			"$(ev '"\(.summary.dns_answers) \(.summary.dns_untrusted)"')"
	done
}
for svc in 198.51.100.53 127.0.0.11; do
	nat_case $svc "$svc:53" A a.pkg.example.com 203.0.113.20
	for proto in tcp udp; do
		fenced --mode enforce --default deny --allow "$svc:53 mirror.internal" -- \
			dig +tries=1 +time=2 @$svc "+$([ $proto = tcp ] || echo no)tcp" +short mirror.internal
		check "nat'd resolver $svc, dig $proto: the allowed question is answered" "198.51.100.10" "$out"
		check "nat'd resolver $svc, dig $proto: judged, nothing refused, the answer trusted" "1 0 0 0 1" \
			"$(ev '"\(.summary.dns_queries) \(.summary.blocked) \(.summary.dns_blocked) \(.events | length) \(.summary.dns_answers)"')"
	done
done
# the same on a container's fence (hook createRuntime on a process already in
# its cgroup: its sockets are marked), Docker's rule, musl's way and TCP
for how in sendto tcp; do
	refused=$(refusal $how)
	df_hook_job "natdns-deny-$how" '{"depfence.io/mode": "enforce", "depfence.io/deny": "github.com"}' \
		"$Q" -m $how 127.0.0.11 53 github.com
	check "nat'd resolver 127.0.0.11, $how, container's fence: a denied name is refused" "$refused" "$HOOK_OUT"
	check "nat'd resolver 127.0.0.11, $how, container's fence: its event names the resolver asked" \
		"blocked github.com 127.0.0.11 53" \
		"$(jqr "$HOOK_REP" '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name) \(.daddr) \(.dport)"')"
	df_hook_job "natdns-prov-$how" \
		'{"depfence.io/mode": "enforce", "depfence.io/default": "deny", "depfence.io/allow": "127.0.0.11:53, **.pkg.example.com"}' \
		sh -c "$Q -m $how 127.0.0.11 53 a.pkg.example.com >/dev/null; $C tcp 203.0.113.20 80"
	check "nat'd resolver 127.0.0.11, $how, container's fence: an allowed name's address is learnt" "ok" "$HOOK_OUT"
	check "nat'd resolver 127.0.0.11, $how, container's fence: the answer trusted" "1 0" \
		"$(jqr "$HOOK_REP" '"\(.summary.dns_answers) \(.summary.dns_untrusted)"')"
done

# a socket load balancer in an ancestor cgroup (dflb, as Cilium's kube-proxy
# replacement): its connect4/sendmsg4 programs run after the fence's and send
# the service address 198.51.100.77:53 to the resolver; no NAT rule undoes it,
# so the answer's packet comes from the resolver's own address. The fence
# judges and records the address asked, and learns from the answer.
LBCG=$(df_cg2root)/df$$-lb
mkdir "$LBCG" && df_track_cgroup "$LBCG"
lb_fenced() {
	rep=$DF_T/r-$RANDOM.json
	out=$(nsenter --net="/run/netns/$NS" -- "$DF_TOOLS/dflb" "$LBCG" 198.51.100.77 $R 53 \
		"$DF_BIN" run --report "$rep" "$@" 2>"$DF_T/stderr")
}
for how in sendto connect; do
	lb_fenced --mode enforce --default deny --allow "198.51.100.77:53 **.pkg.example.com" -- \
		sh -c "$Q -m $how 198.51.100.77 53 a.pkg.example.com; $C tcp 203.0.113.20 80"
	check "load-balanced resolver, $how: answered, the address learnt" "ok 203.0.113.20
ok" "$out"
	check "load-balanced resolver, $how: the answer trusted" "1 1 0" \
		"$(ev '"\(.summary.dns_queries) \(.summary.dns_answers) \(.summary.dns_untrusted)"')"
done
lb_fenced --mode enforce --deny github.com -- "$Q" -m sendto 198.51.100.77 53 github.com
check "load-balanced resolver, sendto: a denied name is refused, the service address recorded" \
	"EPERM blocked github.com 198.51.100.77 53" \
	"$out $(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name) \(.daddr) \(.dport)"')"

# a UDP socket connected to the resolver that sends elsewhere with sendto:
# that datagram goes where sendto says, and is no question to the resolver
# (sixteen zero bytes read as a DNS header: a question without a name, which
# default deny would refuse)
cat >"$DF_T/connsendto.py" <<'PY'
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], 53))
try:
    s.sendto(b"\0" * 16, ("203.0.113.20", 9999))
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
fenced --mode enforce --default deny --allow "udp/$R:53 udp/203.0.113.20:9999" -- python3 "$DF_T/connsendto.py" $R
check "connected to the resolver, sendto elsewhere: sent, no question" "ok 0" "$out $(ev .summary.dns_queries)"
fenced --mode enforce --default deny --allow "udp/198.51.100.53:53 udp/203.0.113.20:9999" -- python3 "$DF_T/connsendto.py" 198.51.100.53
check "connected to a nat'd resolver, sendto elsewhere: sent, no question" "ok 0" "$out $(ev .summary.dns_queries)"

# IPv6: 2001:db8::99 rewritten to the resolver's 2001:db8::53
ip -n "$NS" route add local 2001:db8::99/128 dev lo
nsenter --net="/run/netns/$NS" -- nft -f - <<NFT
table ip6 dfdnsnat6 {
	chain out {
		type nat hook output priority -100;
		ip6 daddr 2001:db8::99 meta l4proto { tcp, udp } th dport 53 counter dnat to [2001:db8::53]:53
	}
}
NFT
nat_case 2001:db8::99 "[2001:db8::99]:53" AAAA b.pkg.example.com 2001:db8::20
nat_hits() {
	nsenter --net="/run/netns/$NS" -- nft -j list table "$1" |
		jq -r '[.nftables[] | .rule? | select(.) | .expr[] | .counter? | select(.) | (.packets > 0 | if . then 1 else 0 end)] | join(" ")'
}
check "nat'd resolvers: the NAT rules rewrote the questions" "1 1 1" "$(nat_hits "ip dfdnsnat") $(nat_hits "ip6 dfdnsnat6")"
nsenter --net="/run/netns/$NS" -- nft delete table ip dfdnsnat
nsenter --net="/run/netns/$NS" -- nft delete table ip6 dfdnsnat6
ip -n "$NS" route del local 198.51.100.53/32 dev lo
ip -n "$NS" route del local 2001:db8::99/128 dev lo
fenced --mode audit --deny github.com -- $D +short github.com AAAA
check "dig audit: answered" "2001:db8::10" "$out"
check "dig audit: would-block AAAA" "would-block github.com AAAA" \
	"$(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name) \(.qtype)"')"
fenced --mode observe -- $D +short +tcp api.example.com
check "dig observe: CNAME chain answered" "x.cdn.example.net.
203.0.113.30" "$out"
check "dig observe: recorded" "allowed api.example.com" \
	"$(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name)"')"
check "dig observe: answer learned over TCP" "1" "$(ev '.summary.dns_answers')"

# --- curl, resolving through glibc, then fetching over HTTP ---
mkdir -p "$DF_T/www" && echo release-1.0 >"$DF_T/www/release.txt"
nsenter --net="/run/netns/$NS" -- timeout 300 python3 -m http.server --bind 203.0.113.20 \
	--directory "$DF_T/www" 8080 >/dev/null 2>&1 &
df_track_pid $!
for i in $(seq 50); do in_ns "$NS" "$C" tcp 203.0.113.20 8080 >/dev/null 2>&1 && break; sleep 0.1; done
curl_in() { echo "mount --bind $DF_T/resolv.conf /etc/resolv.conf && curl -sS --max-time 5 $1"; }
fenced --mode enforce --default deny --allow "udp/$R:53 **.pkg.example.com" -- \
	unshare --mount sh -c "$(curl_in http://dl.pkg.example.com:8080/release.txt)"
check "curl: allow-list by name fetches" "release-1.0" "$out"
fenced --mode enforce --deny "**.pkg.example.com" -- \
	unshare --mount sh -c "$(curl_in http://dl.pkg.example.com:8080/release.txt); echo rc=\$?"
check "curl: denied name cannot be resolved (curl exit 6)" "rc=6" "$out"
check "curl: the refused question is in the report" "blocked dl.pkg.example.com" \
	"$(ev '[.events[] | select(.hook == "dns")][0] | "\(.verdict) \(.name)"')"
fenced --mode audit --deny "**.pkg.example.com" -- \
	unshare --mount sh -c "$(curl_in http://dl.pkg.example.com:8080/release.txt)"
check "curl audit: fetches" "release-1.0" "$out"
check "curl audit: the connect carries the name" "would-block dl.pkg.example.com" \
	"$(ev '[.events[] | select(.hook == "connect4")][0] | "\(.verdict) \(.name)"')"

df_check_clean "dns"
