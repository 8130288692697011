#!/usr/bin/env python3
"""Turn the raw numbers of tests/bench/bench.sh into RESULTS.md and
results.json (the same numbers), and print the tables.

    report.py RAWDIR OUTDIR

Medians, min-max and spread ((max - min) / median) of the repeated rounds;
ratios are fenced / unfenced medians, with the per-round (paired) ratios'
range beside them. Targets are the ones of issue 8; a missed one says so.
Exit 0 when every section measured, 1 otherwise.
"""
import json
import os
import re
import statistics
import sys

RAW, OUT = sys.argv[1], sys.argv[2]


def lines(name):
    path = os.path.join(RAW, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l.rstrip("\n").split() for l in f if l.strip()]


def kv(name):
    out = {}
    for parts in lines(name):
        out[parts[0]] = " ".join(parts[1:])
    return out


def stats(xs):
    xs = sorted(xs)
    if not xs:
        return None
    m = statistics.median(xs)
    return {
        "n": len(xs),
        "median": m,
        "min": xs[0],
        "max": xs[-1],
        "spread_pct": round((xs[-1] - xs[0]) * 100.0 / m, 1) if m else None,
        "samples": xs,
    }


meta = kv("meta")
status = kv("status")
notes = {}
for parts in lines("notes"):
    tag, sect = parts[0], parts[0].split("-")[0]
    notes.setdefault(sect, []).append((f"{tag}: " if tag != sect else "") + " ".join(parts[1:]))
load = [(p[0], p[1:]) for p in lines("load")]

results = {
    "schema": "depfence.bench/v1",
    "machine": {
        "nproc": int(meta.get("nproc", "0")),
        "kernel": meta.get("kernel"),
        "cpu": meta.get("cpu"),
        "mem_mib": int(meta.get("mem_mib", "0")),
    },
    "date": meta.get("date"),
    "duration_s": int(meta.get("duration_s", "0")),
    "depfence": meta.get("depfence"),
    "load_average": {k: v for k, v in load},
    "busy_at_start": meta.get("busy", ""),
    "sections": {},
}
md = []
targets = []  # (section, text, met: True/False/None)


def target(section, text, met):
    targets.append({"section": section, "target": text, "met": met})
    return "met" if met else ("**MISSED**" if met is False else "not measured")


def fmt(x, unit=""):
    if x is None:
        return "-"
    if abs(x) >= 100:
        s = f"{x:,.0f}"
    elif abs(x) >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.2f}"
    return s + unit


def pct(r):
    return "-" if r is None else f"{r * 100:.1f}%"


def paired(rows, cond, base):
    """per-round ratios cond/base, rounds where both ran"""
    by = {}
    for c, r, v in rows:
        by.setdefault(c, {})[r] = v
    out = []
    for r, v in by.get(cond, {}).items():
        b = by.get(base, {}).get(r)
        if b:
            out.append(v / b)
    return sorted(out)


def ratio_target(section, text, cond, floor):
    """a ratio target judged on the ratio of medians; says so when the
    per-round (paired) median falls on the other side of the line"""
    r = cond["ratio"] if cond else None
    out = f"{pct(r)}, " + target(section, text, None if r is None else r >= floor)
    pm = cond.get("paired_ratio_median") if cond else None
    if r is not None and pm is not None and (r >= floor) != (pm >= floor):
        out += (f" (but the median of the per-round ratios, {pct(pm)}, is on the other side of "
                f"{pct(floor)}: within this run's noise)")
    return out


def section_notes(name):
    """notes, the same ones (but for ids and temp paths) once with a count"""
    seen = {}
    for n in notes.get(name, []):
        n = re.sub(r"run-\d+-[0-9a-f]+", "run-ID", n)
        n = re.sub(r"/tmp/depfence-bench\.\w+", "TMP", n)
        seen[n] = seen.get(n, 0) + 1
    return [f"- note{f' ({c} times)' if c > 1 else ''}: {n}" for n, c in seen.items()]


def comparison(name, title, unit, rows, conds, base, describe):
    """a table of conditions vs the base: median, min-max, spread, ratio"""
    sec = {"conditions": [], "notes": notes.get(name, [])}
    md.append(f"## {title}\n")
    md.extend(describe)
    md.append("")
    md.append(f"| condition | median {unit} | min - max | spread | vs unfenced (ratio of medians) | per-round ratios: median (min - max) |")
    md.append("|---|---:|---:|---:|---:|---:|")
    bst = stats([v for c, r, v in rows if c == base])
    for c in conds:
        st = stats([v for cc, r, v in rows if cc == c])
        if not st:
            md.append(f"| {c} | not measured | | | | |")
            sec["conditions"].append({"name": c, "measured": False})
            continue
        ratio = st["median"] / bst["median"] if bst and bst["median"] and c != base else (1.0 if c == base else None)
        pr = paired(rows, c, base) if c != base else []
        d = dict(name=c, measured=True, unit=unit, **st, ratio=ratio,
                 paired_ratio_median=statistics.median(pr) if pr else None,
                 paired_ratio_min=pr[0] if pr else None, paired_ratio_max=pr[-1] if pr else None)
        sec["conditions"].append(d)
        md.append(f"| {c} | {fmt(st['median'])} | {fmt(st['min'])} - {fmt(st['max'])} | {st['spread_pct']}% | "
                  f"{pct(ratio) if c != base else '100%'} | "
                  f"{(pct(statistics.median(pr)) + ' (' + pct(pr[0]) + ' - ' + pct(pr[-1]) + ')') if pr else ''} |")
    return sec


def prog_costs(name, sec, unit, ops_prog=None, ops_fixed=None, ops_text=None, base_ns=None, base_text=None,
               what="the fenced condition", key="program_costs"):
    """the fence's programs in the extra round bench.sh's prog_cost ran with kernel.bpf_stats_enabled"""
    rows = [p for p in lines("progcost.tsv") if p[0] == name and len(p) >= 6 and p[3].isdigit()]
    if not rows:
        return
    progs = [(p[2], int(p[3]), int(p[4])) for p in rows if int(p[3]) > 0]
    ops = ops_fixed
    if ops_prog:
        ops = next((r for n, r, t in progs if n == ops_prog), None)
    if not progs or not ops:
        return
    total = sum(t for n, r, t in progs)
    md.append("")
    md.append(f"The fence's programs in one more round of {what} (not counted above), with "
              f"`kernel.bpf_stats_enabled` on: the kernel's own count and time of their runs, which the noise "
              f"that moves the rates above does not reach (the stats add two clock reads to each run). "
              f"Operations: {'the runs of ' + ops_prog if ops_prog else ops_text}.")
    md.append("")
    md.append(f"| program | runs | ns per run | runs per {unit} | ns per {unit} |")
    md.append("|---|---:|---:|---:|---:|")
    out = []
    for n, r, t in sorted(progs, key=lambda x: -x[2]):
        per_op = f"{r / ops:,.2f}" if r / ops < 100 else f"{r / ops:,.0f}"
        md.append(f"| {n} | {r:,} | {t / r:,.0f} | {per_op} | {t / ops:,.0f} |")
        out.append({"program": n, "runs": r, "ns": t, "ns_per_run": round(t / r, 1),
                    "ns_per_op": round(t / ops, 1)})
    md.append("")
    line = f"- the programs' own time: {total / ops:,.0f} ns per {unit}"
    if base_ns:
        line += f", {100.0 * total / ops / base_ns:.1f}% " + (
            base_text or f"of an unfenced {unit} ({base_ns / 1000:.1f} us at its median rate)")
    md.append(line)
    sec[key] = {"unit": unit, "operations": ops, "programs": out,
                            "ns_per_op": round(total / ops, 1),
                            "share_of_unfenced": round(total / ops / base_ns, 4) if base_ns else None}


def unfenced_ns(sec):
    """ns per operation of the unfenced condition at its median rate, or None"""
    u = get(sec, "unfenced")
    return 1e9 / u["median"] if u else None


def get(sec, name):
    for c in sec["conditions"]:
        if c["name"] == name and c.get("measured"):
            return c
    return None


# ---- 1. connect ----
rows = [(p[0], int(p[1]), float(p[2])) for p in lines("connect.tsv")]
if "connect" in status:
    conds = ["unfenced"] + [f"depfence-{n}" for n in (10, 1000, 10000, 100000)] + \
            [f"nftables-{n}" for n in (10, 1000, 10000, 100000)] + ["depfence-10000-noskb", "depfence-10000-hook", "depfence-10000-marked"]
    judged = {p[0]: (int(p[1]), int(p[2])) for p in lines("connect_judged.tsv") if len(p) > 2 and p[1].isdigit()}
    sec = comparison("connect", "1. Connect cost", "connects/s", rows, conds, "unfenced", [
        f"Loopback TCP connect + close (SO_LINGER 0) to a listener on 127.0.0.1 in a private network "
        f"namespace, from a process in its own cgroup, {meta.get('connect_rounds')} rounds of {meta.get('connect_secs')} s "
        "(after 0.1 s not counted) per condition, the conditions' rounds interleaved in a rotating order. Each "
        "condition is one long-lived loop process, set up once (its fence loaded, its nft table filled) "
        "and told over a pipe when to run a round, so nothing is set up between rounds. "
        "depfence: `depfence run --mode enforce --deny ...` with N CIDR deny rules (/24, /28, /32 "
        "prefixes spread over the address space, none matching 127.0.0.1, passed as several --deny "
        "arguments of under 100 KB), so every connect is judged by a full LPM lookup and every packet "
        "passes the skb programs. nftables: the same N prefixes as an interval set in an output "
        "chain of a table in the loop's own namespace (one namespace per size, so the table "
        "cannot slow the other conditions), rule `" + meta.get("nft_rule", "?") + "`. "
        "depfence-10000-noskb is a diagnostic, not a product configuration: the 10,000-rule fence "
        "with its cgroup_skb egress and ingress links detached by the bench (`bpftool link detach`), "
        "so only the connect/sendmsg programs remain: the difference to depfence-10000 is what the "
        "skb programs cost on every packet of a connection. depfence-10000-hook: the same rules on a "
        "container's fence (`depfence hook createRuntime` on the loop's own cgroup, the loop already in "
        "it, as a container's init is); the loop holds no TCP socket then, so the fence is fresh, as "
        "`depfence run`'s are, and passes TCP stream sockets unmarked (README, \"The egress backstop\"). "
        "depfence-10000-marked: the same, but the loop holds a TCP socket (never connected) when the hook "
        "runs, so the fence marks every TCP socket connect judges (socket storage).",
    ])
    sec["judged_connections"] = {c: {"connections": v[0], "allowed": v[1]} for c, v in judged.items()}
    md.append("")
    md.append("- target: depfence at 10,000 rules keeps >= 98% of the unfenced rate: "
              + ratio_target("connect", "depfence-10000 >= 98% of unfenced", get(sec, "depfence-10000"), 0.98))
    for n in (10, 1000, 10000, 100000):
        d, f = get(sec, f"depfence-{n}"), get(sec, f"nftables-{n}")
        met = None if not (d and f) else d["median"] > f["median"]
        md.append(f"- target: depfence ahead of nftables at {n:,} rules: "
                  f"{fmt(d['median']) if d else '-'} vs {fmt(f['median']) if f else '-'} connects/s, "
                  + target("connect", f"depfence-{n} ahead of nftables-{n}", met))
    if judged:
        md.append("- the fences judged the connects: over all rounds (warm-ups included) depfence's reports counted "
                  + ", ".join(f"{c}: {v[0]:,} connections, {v[1]:,} allowed" for c, v in judged.items()))
    ns_, full = get(sec, "depfence-10000-noskb"), get(sec, "depfence-10000")
    if ns_ and full:
        md.append(f"- where the cost is: with only the connect/sendmsg programs the 10,000-rule fence keeps "
                  f"{pct(ns_['ratio'])} of the unfenced rate (per-round median {pct(ns_['paired_ratio_median'])}), "
                  f"with the skb programs too {pct(full['ratio'])} ({pct(full['paired_ratio_median'])})")
    for c, what in (("hook", "a container's fence (fresh)"),
                    ("marked", "a container's fence that marks the sockets it judges")):
        hk = get(sec, f"depfence-10000-{c}")
        if hk and full:
            md.append(f"- {what}: {pct(hk['ratio'])} of the unfenced rate "
                      f"(per-round median {pct(hk['paired_ratio_median'])}), against {pct(full['ratio'])} "
                      f"({pct(full['paired_ratio_median'])}) for `depfence run`'s fence")
    prog_costs("connect", sec, "connect", ops_prog="df_connect4", base_ns=unfenced_ns(sec),
               what="depfence-10000")
    prog_costs("connect-hook", sec, "connect", ops_prog="df_connect4", base_ns=unfenced_ns(sec),
               what="depfence-10000-hook", key="program_costs_hook")
    prog_costs("connect-marked", sec, "connect", ops_prog="df_connect4", base_ns=unfenced_ns(sec),
               what="depfence-10000-marked", key="program_costs_marked")
    md.extend(section_notes("connect"))
    md.append("")
    results["sections"]["connect"] = sec

# ---- 2. bulk ----
if "bulk" in status:
    rows = [(p[0], int(p[1]), float(p[2]) / 1e9) for p in lines("bulk.tsv")]
    sec = comparison("bulk", "2. Bulk throughput", "Gbit/s", rows, ["unfenced", "depfence"], "unfenced", [
        f"iperf3, one TCP stream over loopback in the private namespace, {meta.get('bulk_secs')} s per round after "
        f"1 s omitted, {meta.get('bulk_rounds')} rounds per condition, interleaved; the client in a plain cgroup or "
        "fenced by `depfence run --mode enforce` with 10,000 CIDR deny rules and two name rules (none "
        "matching), each condition a loop set up once that starts one client per round; the server "
        "outside both.",
    ])
    md.append("")
    md.append("- target: within 1% of unfenced: "
              + ratio_target("bulk", "bulk throughput fenced >= 99% of unfenced", get(sec, "depfence"), 0.99))
    if meta.get("bulk_secs"):
        # iperf3 -t SECS -O 1: SECS + 1 s of stream; per second of it, as a share of one CPU
        prog_costs("bulk", sec, "second of stream", ops_fixed=int(meta["bulk_secs"]) + 1,
                   ops_text=f"{int(meta['bulk_secs']) + 1} s of stream (iperf3 -t {meta['bulk_secs']} -O 1)", base_ns=1e9,
                   base_text="of one CPU")
    md.extend(section_notes("bulk"))
    md.append("")
    results["sections"]["bulk"] = sec

# ---- 3. dns ----
if "dns" in status:
    rows = [(p[0], int(p[1]), float(p[2])) for p in lines("dns.tsv")]
    sec = comparison("dns", "3. DNS", "queries/s", rows, ["unfenced", "depfence"], "unfenced", [
        f"`dfdns -r -n {meta.get('dns_count')}`: rounds of {meta.get('dns_count')} times the same A question "
        "for pkg.example.com on one unconnected UDP socket (sendto, a fresh id each, "
        "waiting for each answer) to dnsmasq on 203.0.113.53 in the private namespace; "
        f"{meta.get('dns_rounds')} rounds per condition after one not counted, interleaved; each condition "
        "one long-lived process (its fence loaded once) told over a pipe when to run a round. Fenced: `depfence run --mode enforce` with 10,000 CIDR "
        "deny rules and the name rules `blocked.example.org`, `**.evil.example` (no match), so "
        "sendmsg4 judges every question and the skb programs parse every question and answer.",
    ])
    md.append("")
    md.append("- target: within 5% of unfenced: "
              + ratio_target("dns", "DNS queries fenced >= 95% of unfenced", get(sec, "depfence"), 0.95))
    dj = lines("dns_judged.tsv")
    if dj and len(dj[0]) > 3:
        sec["judged"] = {"questions": dj[0][1], "answers": dj[0][2], "refused": dj[0][3]}
        md.append(f"- the fence parsed them: its report counted {int(dj[0][1]):,} questions and {int(dj[0][2]):,} answers "
                  f"({dj[0][3]} refused) over all rounds")
    prog_costs("dns", sec, "query", ops_prog="df_sendmsg4", base_ns=unfenced_ns(sec))
    md.extend(section_notes("dns"))
    md.append("")
    results["sections"]["dns"] = sec

def signed(v, unit, digits=None):
    """+1.5 ms, -6 ms: the sign always shown (fmt's rounding otherwise)."""
    body = fmt(abs(v)) if digits is None else f"{abs(v):.{digits}f}"
    return ("-" if v < 0 else "+") + body + unit


# ---- 4. hook ----
if "hook" in status:
    rows = [(p[0], i, int(p[1]) / 1000.0) for i, p in enumerate(lines("hook.tsv"))]
    # rounds: the i-th plain and the i-th hook run
    cnt = {}
    rr = []
    for c, _, v in rows:
        cnt[c] = cnt.get(c, 0) + 1
        rr.append((c, cnt[c], v))
    sec = {"conditions": [], "notes": notes.get("hook", [])}
    md.append("## 4. Hook cost on container start\n")
    md.append(f"`tests/bench/hook_cost.sh`: `runc run` of a busybox container running `/bin/true`, "
              f"{cnt.get('plain', 0)} runs without hooks, {cnt.get('hook', 0)} with depfence's "
              "createRuntime + poststop hooks (enforce, `203.0.113.0/24, github.com`) and the default "
              "config (`attribution_linger` 300 s and `fence_pool` 4: the attribution programs loaded by the "
              "first run, and each finished fence's verified programs, stay for the next), "
              f"{cnt.get('first', 0)} with `attribution_linger` 0 (every start a host's first fence, "
              "loading and verifying everything again)"
              + (f", {cnt['noop']} with `/bin/true` as both hooks (what runc's running two hook "
                 "processes costs here, whatever they do)" if cnt.get("noop") else "")
              + (f", and {cnt['peer']} with oci-seccomp-bpf-hook as its hooks.d file registers it "
                 "(prestart, `-s`: it traces the container's syscalls with a BCC program it compiles at "
                 "start, and writes them as a seccomp profile)" if cnt.get("peer") else "")
              + ", interleaved, one run of each a round in an order rotated every round; wall time of `runc run` including "
              "the hooks.\n")
    md.append("| condition | median ms | min - max | spread | added to the start |")
    md.append("|---|---:|---:|---:|---:|")
    base = stats([v for c, _, v in rr if c == "plain"])
    for c, label in (("plain", "no hooks"), ("hook", "depfence"),
                     ("first", "depfence, every start a first fence"),
                     ("noop", "hooks that do nothing (`/bin/true`)"),
                     ("peer", "oci-seccomp-bpf-hook")):
        st = stats([v for cc, _, v in rr if cc == c])
        if not st:
            continue
        added = (st["median"] - base["median"]) / base["median"] if base and c != "plain" else None
        sec["conditions"].append(dict(name=c, unit="ms", **st, added_pct=None if added is None else round(added * 100, 1),
                                      added_ms=None if added is None else st["median"] - base["median"]))
        md.append(f"| {label} | {fmt(st['median'])} | {fmt(st['min'])} - {fmt(st['max'])} | {st['spread_pct']}% | "
                  f"{'' if added is None else signed(st['median'] - base['median'], ' ms') + ' (' + signed(added * 100, '%', 0) + ')'} |")
    peer = kv("hook.tsv.peer")
    sec["peer"] = peer
    md.append("")
    h = [c for c in sec["conditions"] if c["name"] == "hook"]
    added = h[0]["added_pct"] / 100 if h else None
    added_txt = "-" if added is None else f"+{added * 100:.0f}% (+{h[0]['added_ms']:.0f} ms)"
    md.append("- target: depfence adds at most 5% to the container start: " + added_txt + ", "
              + target("hook", "depfence adds <= 5% to runc run", None if added is None else added <= 0.05)
              + (" - the programs are verified once, by the first fence (see 6. for what that costs), and "
                 "taken from the pool by the others: what is left is the hooks' own work "
                 "(README, \"What the hook costs\")" if added is not None and added > 0.05 else ""))
    z = [c for c in sec["conditions"] if c["name"] == "noop"]
    if z and h:
        md.append(f"- of depfence's {signed(h[0]['added_ms'], ' ms', 0)}, {signed(z[0]['added_ms'], ' ms', 0)} "
                  f"({signed(z[0]['added_pct'], '%', 0)} of the start) is what two hooks that do nothing add: runc "
                  "starting a hook process at createRuntime and one at poststop on this machine; depfence's own "
                  f"work is the other {h[0]['added_ms'] - z[0]['added_ms']:.0f} ms")
    st = peer.get("status", "not-installed")
    if st == "ok":
        p = [c for c in sec["conditions"] if c["name"] == "peer"]
        ratio = p[0]["added_ms"] / h[0]["added_ms"] if p and h and h[0]["added_ms"] > 0 else None
        md.append(f"- target: at least 10x cheaper than oci-seccomp-bpf-hook: the peer adds {fmt(ratio)}x "
                  "what depfence adds, " + target("hook", "10x cheaper than the peer", None if ratio is None else ratio >= 10))
    elif st == "failed":
        md.append(f"- target: at least 10x cheaper than oci-seccomp-bpf-hook: "
                  + target("hook", "10x cheaper than the peer", None)
                  + f". The peer was tried once and the container failed to start after {peer.get('ms')} ms "
                  f"(runc exit {peer.get('exit')}); it compiles BCC programs at start and needs kernel headers, "
                  "which this kernel does not ship. Its last messages:")
        for l in lines("hook.tsv.peer")[3:]:
            md.append(f"  - `{' '.join(l)[:300]}`")
        md.append("  Timing 30 failures would measure its 10 s timeout, not its cost, so it was not repeated.")
    else:
        md.append("- target: at least 10x cheaper than oci-seccomp-bpf-hook: not measured (not installed)")
        targets.append({"section": "hook", "target": "10x cheaper than the peer", "met": None})
    md.extend(section_notes("hook"))
    md.append("")
    results["sections"]["hook"] = sec

# ---- 5. scale ----
if "scale" in status:
    env = kv("scale.env")
    att = [(int(p[0]), int(p[1]) / 1000.0) for p in lines("scale_attach.tsv")]
    stp = [(int(p[0]), int(p[1]) / 1000.0) for p in lines("scale_stop.tsv")]
    sec = {"env": env, "notes": notes.get("scale", [])}
    reached = int(env.get("reached", "0"))
    md.append("## 5. Scale: many fences at once\n")
    md.append(f"`depfence hook createRuntime` with a state JSON for each fence (annotations "
              f"{env.get('annotations')}), each on its own cgroup holding one sleeping process, one after "
              f"the other until {env.get('target')} fences are live; then poststop for each, the sleepers "
              "killed, the cgroups removed. Kernel memory from bpftool's `bytes_memlock`: each fence's "
              "programs (found through its cgroup links) and the maps they use; a map used by several "
              "fences (host-wide) is counted once, apart.\n")
    if reached < int(env.get("target", "0")):
        md.append(f"- **only {reached} of {env.get('target')} fences** were created"
                  + (f" in {env.get('create_s')} s: more would not have fit, with their teardown, in the "
                     f"{env.get('budget_s')} s that `make bench` allows itself" if env.get("budget_hit") == "1" else "")
                  + "; the figures below are for that many.\n")
    md.append("| measure | value |")
    md.append("|---|---:|")
    md.append(f"| fences live at once | {reached:,} |")
    md.append(f"| time to create them all | {env.get('create_s')} s |")
    sa = stats([v for _, v in att])
    if sa:
        first, last = att[0][1], att[-1][1]
        w = max(1, min(50, len(att) // 10))
        mf = statistics.median([v for _, v in att[:w]])
        ml = statistics.median([v for _, v in att[-w:]])
        sec["attach_ms"] = sa
        sec["attach_first_ms"], sec["attach_last_ms"] = first, last
        sec["attach_ratio_last_first"] = last / first
        sec["attach_window"] = w
        sec["attach_ratio_windows"] = ml / mf
        md.append(f"| attach (createRuntime) median, min - max | {fmt(sa['median'])} ms, {fmt(sa['min'])} - {fmt(sa['max'])} ms |")
        md.append(f"| attach of the 1st / the {len(att):,}th | {fmt(first)} ms / {fmt(last)} ms |")
        md.append(f"| median attach of the first {w} / the last {w} | {fmt(mf)} ms / {fmt(ml)} ms |")
    ss = stats([v for _, v in stp])
    if ss:
        sec["poststop_ms"] = ss
        md.append(f"| poststop (report + removal) median, min - max | {fmt(ss['median'])} ms, {fmt(ss['min'])} - {fmt(ss['max'])} ms |")
    # memory from bpftool's memlock figures: links -> programs -> maps
    mem = []
    own = {}
    breakdown = None
    try:
        cg = {int(p[1]): int(p[0]) for p in lines("scale_cgids.tsv")}
        links = json.load(open(os.path.join(RAW, "scale_links.json")))
        progs = {p["id"]: p for p in json.load(open(os.path.join(RAW, "scale_progs.json")))}
        maps = {m["id"]: m for m in json.load(open(os.path.join(RAW, "scale_maps.json")))}
        per = {}
        for l in links:
            if l.get("cgroup_id") in cg:
                per.setdefault(cg[l["cgroup_id"]], set()).add(l["prog_id"])
        users = {}  # map id -> fences using it
        fmaps = {}
        for i in per:
            mids = set()
            for x in per[i]:
                mids.update(progs.get(x, {}).get("map_ids", []))
            fmaps[i] = mids
            for m in mids:
                users.setdefault(m, set()).add(i)
        shared = {m for m, u in users.items() if len(u) > 1}
        sec["shared_maps"] = {maps[m]["name"]: maps[m].get("bytes_memlock", 0) for m in shared if m in maps}
        for i in sorted(per):
            ps = [progs[x] for x in per[i] if x in progs]
            ms = [maps[x] for x in fmaps[i] - shared if x in maps]
            pb = sum(p.get("bytes_memlock", 0) for p in ps)
            mb = sum(m.get("bytes_memlock", 0) for m in ms)
            full = 0
            for m in ms:
                # hash maps made with BPF_F_NO_PREALLOC grow per element:
                # the kernel counts elem_size + 8 per element (htab_map_mem_usage)
                if m["type"] == "hash" and m.get("flags", 0) & 1:
                    r8 = lambda x: (x + 7) // 8 * 8
                    full += m["max_entries"] * (48 + r8(m["bytes_key"]) + r8(m["bytes_value"]) + 8)
            mem.append((i, pb, mb, len(ps), len(ms), full))
            own[i] = {m["name"]: m.get("bytes_memlock", 0) for m in ms}
            if breakdown is None:
                breakdown = {"programs": {p["name"]: p.get("bytes_memlock", 0) for p in ps},
                             "maps": {m["name"]: m.get("bytes_memlock", 0) for m in ms}}
    except (OSError, ValueError, KeyError) as e:
        sec["memory_error"] = str(e)
    if mem:
        tot = stats([pb + mb for _, pb, mb, _, _, _ in mem])
        sec["memlock_bytes_per_fence"] = tot
        sec["memlock_progs_bytes"] = statistics.median([pb for _, pb, _, _, _, _ in mem])
        sec["memlock_maps_bytes"] = statistics.median([mb for _, _, mb, _, _, _ in mem])
        sec["fences_measured"] = len(mem)
        sec["programs_per_fence"] = statistics.median([n for _, _, _, n, _, _ in mem])
        sec["maps_per_fence"] = statistics.median([n for _, _, _, _, n, _ in mem])
        sec["breakdown_first_fence"] = breakdown
        growth = statistics.median([f for *_, f in mem])
        sec["no_prealloc_full_estimate_bytes"] = growth
        md.append(f"| kernel memory per fence (bpftool memlock: {sec['programs_per_fence']:.0f} programs + "
                  f"{sec['maps_per_fence']:.0f} maps of its own), median over {len(mem):,} fences | "
                  f"{tot['median'] / 1024:,.0f} KiB ({sec['memlock_progs_bytes'] / 1024:,.0f} KiB programs, "
                  f"{sec['memlock_maps_bytes'] / 1024:,.0f} KiB maps), min - max {tot['min'] / 1024:,.0f} - {tot['max'] / 1024:,.0f} KiB |")
        md.append(f"| the same with its non-preallocated hash maps full (records, names...: an estimate) | "
                  f"{(tot['median'] + growth) / 1024:,.0f} KiB |")
        # fences do not all cost the same: group them by their total
        groups = {}
        for i, pb, mb, *_ in mem:
            groups.setdefault(round((pb + mb) / 1024), []).append(i)
        sec["groups"] = []
        if len(groups) > 1:
            small = min(groups)
            ref = own[groups[small][0]]
            for kib in sorted(groups):
                idx = groups[kib]
                ex = own[idx[0]]
                diff = {n: b for n, b in ex.items() if abs(b - ref.get(n, 0)) >= 1024}
                sec["groups"].append({"kib": kib, "fences": len(idx), "first": min(idx), "last": max(idx),
                                      "maps_beyond_smallest": diff})
                md.append(f"| fences {min(idx):,} to {max(idx):,} ({len(idx):,} of them) | {kib:,} KiB each"
                          + ("; beyond the smallest: " + ", ".join(f"their own {n} {b / 1024:,.0f} KiB" for n, b in diff.items())
                             if diff else "") + " |")
        if breakdown:
            md.append("| the first fence's maps, largest first | " + ", ".join(
                f"{n} {b / 1024:,.0f} KiB" for n, b in sorted(breakdown["maps"].items(), key=lambda x: -x[1]) if b >= 1024)
                + " (and smaller ones) |")
        if sec["shared_maps"]:
            md.append("| maps shared by all fences, once | " + ", ".join(
                f"{n} {b / 1024:,.0f} KiB" for n, b in sorted(sec["shared_maps"].items())) + " |")
    left = {k: env.get(k) for k in ("left_pins", "left_state", "left_cgroups", "left_progs")}
    clean = all(v == "0" for v in left.values())
    sec["teardown_left"] = left
    md.append(f"| left after teardown: pins, state files, cgroups, fence programs | "
              f"{left['left_pins']}, {left['left_state']}, {left['left_cgroups']}, {left['left_progs']} |")
    md.append(f"| reports written by poststop | {env.get('reports')} |")
    md.append(f"| programs loaded on the host before / after (others' too) | {env.get('progs_before')} / {env.get('progs_after')} |")
    md.append("")
    if sa:
        md.append(f"- target: attach of the {len(att):,}th fence at most 1.5x the 1st: "
                  f"{sec['attach_ratio_last_first']:.2f}x (single runs), {sec['attach_ratio_windows']:.2f}x "
                  f"(medians of the first and last {w}), "
                  + target("scale", "attach last/first <= 1.5", sec["attach_ratio_last_first"] <= 1.5 and sec["attach_ratio_windows"] <= 1.5))
    if mem:
        md.append(f"- target: kernel memory per fence under 1 MiB at default map sizes: "
                  f"{tot['median'] / 1024:,.0f} KiB as loaded (median"
                  + (f"; the largest {tot['max'] / 1024:,.0f} KiB, see above), " if tot["max"] - tot["min"] >= 1024 else "), ")
                  + target("scale", "memlock per fence < 1 MiB (as loaded; the records and names maps grow with use)", tot["max"] < 1024 * 1024)
                  + f"; about {(tot['median'] + growth) / 1024:,.0f} KiB once its non-preallocated maps are full "
                  + ("(would miss)" if tot["median"] + growth >= 1024 * 1024 else "(still under)"))
    md.append(f"- target: teardown leaves nothing behind: "
              + target("scale", "teardown leaves nothing", clean))
    if reached < int(env.get("target", "0")):
        md.append(f"- target: {env.get('target')} fences at once: only {reached} measured, "
                  + target("scale", f"{env.get('target')} fences live at once", False))
    md.extend(section_notes("scale"))
    md.append("")
    results["sections"]["scale"] = sec

# ---- 6. verifier ----
if "verifier" in status:
    rows = lines("verifier.tsv")
    sec = {"programs": []}
    md.append("## 6. Verifier\n")
    md.append("`dfverify`: the skeleton opened as `hook/fence.c` opens it (same map sizes), loaded with only "
              f"one program enabled, {meta.get('rounds')} rounds interleaved; load time is the whole "
              "`fence_bpf__load()` (maps, verification, JIT); `maps` loads no program, `all` the whole object "
              "as a fence does. Build: `unrolled` walks a DNS name's bytes in an unrolled loop, `loop` in a "
              "bpf_loop callback (kernels with bpf_loop); `*` marks the one the hook loads here.\n")
    md.append("| build | program | load median ms | min - max | verified insns | xlated bytes | jited bytes |")
    md.append("|---|---|---:|---:|---:|---:|---:|")
    order = []
    for p in rows:
        if (p[0], p[1]) not in order:
            order.append((p[0], p[1]))
    order.sort(key=lambda k: k[0])
    for build, name in order:
        rs = [p for p in rows if (p[0], p[1]) == (build, name)]
        st = stats([int(p[3]) / 1e6 for p in rs])
        vi, xl, ji = int(rs[0][4]), int(rs[0][5]), int(rs[0][6])
        sec["programs"].append(dict(build=build.rstrip("*"), loaded_by_hook=build.endswith("*"), name=name,
                                    load_ms=st, verified_insns=vi, xlated_bytes=xl, jited_bytes=ji))
        md.append(f"| {build} | {name} | {fmt(st['median'])} | {fmt(st['min'])} - {fmt(st['max'])} | "
                  f"{vi if vi else ''} | {xl if xl else ''} | {ji if ji else ''} |")
    md.extend(section_notes("verifier"))
    md.append("")
    results["sections"]["verifier"] = sec

# sections that could not run
failed = [s for s, v in status.items() if not v.startswith("ok")]
for s in failed:
    results["sections"].setdefault(s, {})["not_measured"] = notes.get(s, ["failed"])

# ---- header ----
ld = results["load_average"]
head = [
    "# depfence bench results\n",
    f"`make bench` on {meta.get('date')}: {meta.get('nproc')} CPUs ({meta.get('cpu')}), "
    f"{results['machine']['mem_mib']:,} MiB, kernel {meta.get('kernel')}, {meta.get('depfence')}; "
    f"took {results['duration_s']} s. Written by tests/bench/bench.sh; the same numbers are in results.json.\n",
    "Every comparison ran side by side in this run, interleaved, so noise from anything else on "
    "the machine hits both sides; read the ratios and the spreads, not the absolute figures. "
    "Spread = (max - min) / median of the rounds.\n",
]
start_load = ld.get("start", [None])[0]
# not the bench's own processes (older raw files listed them)
busy = ", ".join(b for b in results["busy_at_start"].split(", ")
                 if b and b.split(" ")[0] not in ("ps", "awk", "bench.sh", "make"))
results["busy_at_start"] = busy
if (start_load and float(start_load) >= 0.5) or busy:
    head.append(f"**Shared machine**: the 1-minute load average was {start_load} before the bench started"
                + (f", with {busy} busy" if busy else "")
                + "; at the start of each section (the bench's own client and server count for about 2): "
                + ", ".join(f"{k} {v[0]}" for k, v in ld.items()) + ". Expect wide spreads.\n")
if failed:
    head.append("**Not measured**: " + "; ".join(f"{s} ({' '.join(notes.get(s, ['failed']))})" for s in failed) + "\n")
head.append("## Targets\n")
head.append("| section | target | result |")
head.append("|---|---|---|")
for t in targets:
    head.append(f"| {t['section']} | {t['target']} | {'met' if t['met'] else ('**missed**' if t['met'] is False else 'not measured')} |")
head.append("")
results["targets"] = targets

text = "\n".join(head + md) + "\n"
os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "RESULTS.md"), "w") as f:
    f.write(text)
with open(os.path.join(OUT, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
    f.write("\n")
print(text)
sys.exit(1 if failed else 0)
