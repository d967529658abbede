#!/usr/bin/env python3
"""Turns one bench/results/<timestamp>/ directory into summary.md and latency-cdf.svg.

Every figure in the summary is the median over rounds with [min-max] beside it; ratios are
taken between medians measured in the same run. Usage: bench/report.py DIR
"""
import json
import math
import os
import sys

d = sys.argv[1]


def load(name):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) else None


def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if xs else float("nan")


def spread(xs, fmt):
    return f"{fmt % med(xs)} [{fmt % min(xs)}-{fmt % max(xs)}]" if len(xs) > 1 else fmt % med(xs)


meta = load("meta.json") or {}
out = [f"# vcpe benchmark report, {meta.get('date', '?')}", ""]
out.append(f"Machine: {meta.get('cpu', '?')}, {meta.get('cpus', '?')} CPUs, {meta.get('memory_gib', '?')} GiB; kernel {meta.get('kernel', '?')}; "
           f"commit {meta.get('commit', '?')}; mode {meta.get('mode', '?')}; build {meta.get('build', '?')}.")
out.append("Figures: median over rounds, [min-max] beside; ratios between medians of the same run.")


def noise(xs):
    return (max(xs) - min(xs)) / med(xs) * 100 if len(xs) > 1 and med(xs) else None


# The run's own noise: how much figures that should not move did move between rounds.
probes = []
lat0, ctl0 = load("latency.json"), load("controller.json")
if lat0 and "floor" in lat0["variants"]:
    fl = lat0["variants"]["floor"]["rounds"]
    probes.append(("the floor's UDP p50", noise([r["udp_rr"]["us"]["p50"] for r in fl])))
    probes.append(("its TCP p50", noise([r["tcp_rr"]["us"]["p50"] for r in fl])))
    probes.append(("its TCP throughput", noise([r["tcp_gbit_s"] for r in fl])))
if ctl0:
    runs = ctl0 if isinstance(ctl0, list) else [ctl0]
    big = max(runs, key=lambda r: r["customers"])
    probes.append((f"the script's build of {big['customers']} customers", noise([r["script_create_s"] for r in big["rounds"]])))
said = [f"{what} spread {n:.0f} %" for what, n in probes if n is not None]
out.append("This run's noise (max-min over median, between rounds): " + "; ".join(said) + "." if said
           else "One round only: this run does not measure its own noise; read differences under about 20 % as noise.")
out.append("")

lat = load("latency.json")
if lat:
    vs = lat["variants"]
    out += ["## Latency and throughput through a chain", "",
            f"Request/response, 64 B, {lat['samples']:,} samples per variant and round after {lat['warmup']:,} warm-up round trips, "
            f"{lat['rounds_run']} round(s), recorded with HdrHistogram (vcpe-bench-rr); round trip in microseconds. "
            f"Throughput: iperf3, {lat['seconds']} s per figure (TCP; UDP with 64-byte datagrams, packets received per second).", ""]
    def col(v, proto, k):
        return [r[proto]["us"][k] for r in vs[v]["rounds"]]
    floor = {p: med(col("floor", p, "p50")) for p in ("udp_rr", "tcp_rr")}
    base = {p: med(col("script", p, "p50")) for p in ("udp_rr", "tcp_rr")} if "script" in vs else floor
    out.append("| variant | shape | UDP p50 | p90 | p99 | p99.9 | max | UDP p50 vs floor / script | TCP p50 | p99 | p99.9 | TCP p50 vs floor / script | TCP Gbit/s | UDP 64 B kpps |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for v, x in vs.items():
        u50 = med(col(v, "udp_rr", "p50")); t50 = med(col(v, "tcp_rr", "p50"))
        out.append("| %s | %s | %s | %.1f | %.1f | %.1f | %.0f | %.2fx / %.2fx | %s | %.1f | %.1f | %.2fx / %.2fx | %s | %s |" % (
            v, x["shape"], spread(col(v, "udp_rr", "p50"), "%.1f"), med(col(v, "udp_rr", "p90")), med(col(v, "udp_rr", "p99")),
            med(col(v, "udp_rr", "p99_9")), med(col(v, "udp_rr", "max")), u50 / floor["udp_rr"], u50 / base["udp_rr"],
            spread(col(v, "tcp_rr", "p50"), "%.1f"), med(col(v, "tcp_rr", "p99")), med(col(v, "tcp_rr", "p99_9")),
            t50 / floor["tcp_rr"], t50 / base["tcp_rr"],
            spread([r["tcp_gbit_s"] for r in x["rounds"]], "%.2f"), spread([r["udp64_pps"] / 1000 for r in x["rounds"]], "%.0f")))
    sp = lat.get("sockperf_vcpe_udp_us") or {}
    if sp.get("p50"):
        out += ["", f"Cross-check with sockperf (ping-pong, 64 B, its half round trips doubled) on the vcpe variant: UDP p50 {sp['p50']:.1f} us, "
                f"p99 {sp['p99']:.1f} us, against {med(col('vcpe', 'udp_rr', 'p50')):.1f} / {med(col('vcpe', 'udp_rr', 'p99')):.1f} us from vcpe-bench-rr."]
    out += ["", "![latency CDF](latency-cdf.svg)", ""]

    # CDF plot: one line per variant and protocol, log-scale latency, tail-stretched percentile axis.
    W, H, L, B = 900, 460, 70, 50
    pts = [(v, p, x["rounds"][-1][p]["cdf"]) for v, x in vs.items() for p in ("udp_rr", "tcp_rr")]
    lo = min(c[0] for _, _, cs in pts for c in cs if c[0] > 0)
    hi = max(c[0] for _, _, cs in pts for c in cs)
    lx = lambda us: L + (W - L - 20) * (math.log10(max(us, lo)) - math.log10(lo)) / max(1e-9, math.log10(hi) - math.log10(lo))
    ty = lambda pct: -math.log10(max(1e-4, 1 - min(pct, 99.999) / 100))  # 0 .. 5 (p99.999)
    ly = lambda pct: H - B - (H - B - 20) * ty(pct) / 5
    colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W/2}" y="15" text-anchor="middle">Round trip latency through each variant (last round; solid UDP, dashed TCP)</text>']
    for pct, label in [(0, "p0"), (50, "p50"), (90, "p90"), (99, "p99"), (99.9, "p99.9"), (99.99, "p99.99")]:
        y = ly(pct)
        svg.append(f'<line x1="{L}" x2="{W-20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/><text x="{L-5}" y="{y+4:.1f}" text-anchor="end">{label}</text>')
    e = math.floor(math.log10(lo))
    while 10 ** e <= hi * 1.01:
        for m in (1, 2, 5):
            v = m * 10 ** e
            if lo <= v <= hi:
                x = lx(v)
                svg.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="20" y2="{H-B}" stroke="#eee"/><text x="{x:.1f}" y="{H-B+15}" text-anchor="middle">{v:g}</text>')
        e += 1
    svg.append(f'<text x="{(W+L)/2}" y="{H-10}" text-anchor="middle">microseconds (log scale)</text>')
    for i, (v, p, cs) in enumerate(pts):
        c = colors[(i // 2) % len(colors)]
        path = " ".join(f"{lx(us):.1f},{ly(pct):.1f}" for us, pct in cs)
        dash = "" if p == "udp_rr" else ' stroke-dasharray="6,3"'
        svg.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.6"{dash} points="{path}"/>')
        if p == "udp_rr":
            svg.append(f'<rect x="{L+10}" y="{30 + 16*(i//2)}" width="14" height="3" fill="{c}"/><text x="{L+30}" y="{35 + 16*(i//2)}">{v}</text>')
    svg.append("</svg>")
    open(os.path.join(d, "latency-cdf.svg"), "w").write("\n".join(svg))

st = load("steering.json")
if st:
    vs = st["variants"]
    out += ["## The classifier hop (issues #8, #11)", "",
            f"{st['shape']}. The forwarder classifies against {st['rules']:,} rules (none matches: every search is a full one); "
            "`cache` is the default: its tc eBPF flow cache forwards every packet of a flow after the first in the kernel; "
            "`forwarder` and `forwarder-busy` have the cache off (every packet through userspace). "
            f"Request/response as above ({st['samples']:,} samples); TCP: iperf3; 64-byte UDP: bench/steering/blast.c (sendmmsg, one flow), "
            f"counted and dropped by an nft counter at the server's ingress, at full offered load and at {st['fixed_rate_pps']:,} pps. "
            "CPU per packet: the forwarder's own (its process) and the whole machine's (sender included); forwarding cost is the "
            "machine's less the sender's own (the same blast dropped at the middle's ingress), and one core's packets per second is its inverse. "
            f"forwarder-busy busy-polls on CPU {st['busy_cpu']}, which the client and server share on this 2-CPU machine.", "",
            "| variant | UDP p50 | p99 | vs kernel | TCP RR p50 | TCP Gbit/s | vs kernel | 64 B kpps (offered) | loss | forwarder us/pkt | machine us/pkt | forwarding us/pkt | kpps per core | vs kernel | loss at fixed rate |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    def g(v, f):
        return [f(r) for r in vs[v]["rounds"]]
    sender = med([x["machine_us_per_packet"] for x in st.get("sender", [])]) if st.get("sender") else None
    def forwarding(v):
        m = med(g(v, lambda r: r["udp64_max"]["machine_us_per_packet"]))
        return None if sender is None else max(0.01, m - sender)
    k_u = med(g("kernel", lambda r: r["udp_rr"]["us"]["p50"])); k_t = med(g("kernel", lambda r: r["tcp_gbit_s"]))
    k_f = forwarding("kernel")
    for v in vs:
        u = g(v, lambda r: r["udp_rr"]["us"]["p50"]); t = g(v, lambda r: r["tcp_gbit_s"]); p = g(v, lambda r: r["udp64_max"]["pps"] / 1000)
        fw = g(v, lambda r: r["udp64_max"]["forwarder_us_per_packet"]); f = forwarding(v)
        out.append("| %s | %s | %.1f | %.2fx | %.1f | %s | %.2fx | %s (%.0f) | %.2f %% | %s | %.2f | %s | %s | %s | %.2f %% |" % (
            v, spread(u, "%.1f"), med(g(v, lambda r: r["udp_rr"]["us"]["p99"])), med(u) / k_u, med(g(v, lambda r: r["tcp_rr"]["us"]["p50"])),
            spread(t, "%.2f"), med(t) / k_t, spread(p, "%.0f"), med(g(v, lambda r: r["udp64_max"]["offered_pps"] / 1000)),
            med(g(v, lambda r: r["udp64_max"]["loss_pct"])),
            "-" if fw[0] is None else "%.2f" % med(fw), med(g(v, lambda r: r["udp64_max"]["machine_us_per_packet"])),
            "-" if f is None else "%.2f" % f, "-" if f is None else "%.0f" % (1000 / f), "-" if f is None else "%.2fx" % (k_f / f),
            med(g(v, lambda r: r["udp64_fixed"]["loss_pct"]))))
    lp = st.get("latency_pairs")
    if lp:
        r50 = [x["cache"]["p50"] / x["kernel"]["p50"] for x in lp]
        r99 = [x["cache"]["p99"] / x["kernel"]["p99"] for x in lp]
        out += ["", f"UDP request/response in {len(lp)} alternating pairs of short runs ({st['samples'] // 4:,} samples each), "
                f"cache against kernel: p50 ratio {spread(r50, '%.2f')}x, p99 ratio {spread(r99, '%.2f')}x (median of the pairs' ratios [min-max]); "
                f"kernel p50 {med([x['kernel']['p50'] for x in lp]):.1f} us, cache {med([x['cache']['p50'] for x in lp]):.1f} us."]
    tp = st.get("throughput_pairs")
    if tp:
        rt = [x["cache"]["tcp_gbit_s"] / x["kernel"]["tcp_gbit_s"] for x in tp]
        line = (f"TCP throughput and 64-byte packets in {len(tp)} alternating pairs: TCP ratio {spread(rt, '%.2f')}x "
                f"(kernel {med([x['kernel']['tcp_gbit_s'] for x in tp]):.1f}, cache {med([x['cache']['tcp_gbit_s'] for x in tp]):.1f} Gbit/s)")
        if sender is not None:
            fk = [max(0.01, x["kernel"]["udp64"]["machine_us_per_packet"] - sender) for x in tp]
            fc = [max(0.01, x["cache"]["udp64"]["machine_us_per_packet"] - sender) for x in tp]
            rp = [k / c for k, c in zip(fk, fc)]
            line += (f"; packets per core, cache over kernel, {spread(rp, '%.2f')}x (forwarding cost kernel {med(fk):.2f} us, "
                     f"cache {med(fc):.2f} us a packet: {1000 / med(fk):.0f} and {1000 / med(fc):.0f} kpps per core)")
        out += ["", line + "."]
    if sender is not None:
        out.append("")
        out.append(f"The sender alone (dropped at the middle's ingress): {sender:.2f} us of machine CPU per packet, "
                   f"{med([x['pps'] for x in st['sender']]) / 1000:.0f} kpps.")
    nf = st.get("new_flows")
    if nf:
        out += ["", "New flows: every 64-byte datagram opens a flow (a new port pair), at full offered load; with the cache each is a miss "
                "classified by the vector engine in userspace, which installs both directions in the kernel's map. "
                "The kernel row is plain forwarding (no flow state) for scale.", "",
                "| rules | variant | new flows/s forwarded (offered) | loss | forwarder us/flow | vs kernel |", "|---|---|---|---|---|---|"]
        k = med([x["pps"] for x in nf["kernel"]])
        out.append("| - | kernel | %s (%.0f) | %.2f %% | - | 1.00x |" % (
            spread([x["pps"] / 1000 for x in nf["kernel"]], "%.0fk"), med([x["offered_pps"] / 1000 for x in nf["kernel"]]) ,
            med([x["loss_pct"] for x in nf["kernel"]])))
        for n, row in nf.items():
            if n == "kernel":
                continue
            for v in ("cache", "forwarder"):
                xs = row[v]
                out.append("| %s | %s | %s (%.0f) | %.2f %% | %.2f | %.2fx |" % (
                    f"{int(n):,}", v, spread([x["pps"] / 1000 for x in xs], "%.0fk"), med([x["offered_pps"] / 1000 for x in xs]),
                    med([x["loss_pct"] for x in xs]), med([x["forwarder_us_per_packet"] for x in xs]), med([x["pps"] for x in xs]) / k))
    out.append("")

ctl = load("controller.json")
if ctl:
    out += ["## Control plane", "", "Firewall + router customers applied from scratch, re-applied unchanged, deleted; "
            "the baseline is a script of ip and nft commands building the same chains. Peak memory: /usr/bin/time. "
            "Kernel memory per customer: MemAvailable before and after the apply, divided by the customers.", "",
            "| customers | apply | script | speed-up | re-apply | delete (command) | all bridges gone | script delete | vcpe peak RSS | kernel memory per customer |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for run in ctl if isinstance(ctl, list) else [ctl]:
        rs = run["rounds"]
        g = lambda k: [r[k] for r in rs]
        out.append("| %d | %s s | %s s | %.1fx | %s s | %s s | %s s | %s s | %d MiB | %s |" % (
            run["customers"], spread(g("vcpe_apply_s"), "%.2f"), spread(g("script_create_s"), "%.2f"),
            med(g("script_create_s")) / med(g("vcpe_apply_s")), spread(g("vcpe_reapply_s"), "%.3f"), spread(g("vcpe_delete_s"), "%.2f"),
            spread(g("vcpe_delete_all_gone_s"), "%.2f"), spread(g("script_delete_s"), "%.2f"), med(g("vcpe_peak_rss_kib")) // 1024,
            ("%.0f KiB" % med(g("kernel_kib_per_customer"))) if run["customers"] >= 10 else "(too few to tell from noise)"))
    out.append("")

agt = load("agent.json")
if agt:
    out += ["## Agent: a scrape against `vcpe status --json`", "",
            "N firewall + router customers (one in 20 steered); the agent's CPU (all its threads, /proc, minus what it spends idle for as long) "
            "and wall time per GET /metrics, against `vcpe status --json` for the same host (its own rusage). "
            "Goal: a scrape of 1,000 customers under 1 s of wall and CPU time.", "",
            "| customers | series | scrape wall | scrape CPU | status wall | status CPU | wall ratio | CPU ratio |", "|---|---|---|---|---|---|---|---|"]
    for run in agt if isinstance(agt, list) else [agt]:
        cpu = spread(run["scrape_cpu_s"], "%.3f") + " s" if run["scrape_cpu_resolved"] else "below %.0f ms: not resolved" % (2 * run["cpu_tick_s"] * 1000 / run["scrapes_per_round"])
        cratio = "%.0fx less" % (med(run["status_cpu_s"]) / med(run["scrape_cpu_s"])) if run["scrape_cpu_resolved"] and med(run["scrape_cpu_s"]) > 0 else "-"
        out.append("| %d | %d | %s s | %s | %s s | %s s | %.0fx less | %s |" % (
            run["customers"], run["series"], spread(run["scrape_wall_s"], "%.3f"), cpu, spread(run["status_wall_s"], "%.2f"),
            spread(run["status_cpu_s"], "%.2f"), med(run["status_wall_s"]) / med(run["scrape_wall_s"]), cratio))
    out.append("")

cls = load("classifier.json")
if cls:
    out += ["## Packet classifier", "", "One core (taskset), generated ClassBench-like sets, vector kernel against the scalar C build "
            "of the same structures and the Swift linear oracle.", "",
            "| set | rules | engine | ns/packet | scalar C | oracle | memory | tables |", "|---|---|---|---|---|---|---|---|"]
    groups = {}
    for s in cls["sets"]:
        groups.setdefault((s["kind"], s["rules"]), []).append(s)
    for (kind, n), runs in groups.items():
        out.append("| %s | %d | %s | %s | %.1f | %.0f | %.2f MB | %d |" % (
            kind, n, runs[0]["vector"]["engine"], spread([x["vector"]["nsPerPacket"] for x in runs], "%.1f"),
            med([x["scalar"]["nsPerPacket"] for x in runs]), med([x["oracle"]["nsPerPacket"] for x in runs]),
            runs[0]["vector"]["memoryBytes"] / 1e6, runs[0]["vector"]["tables"]))
    out.append("")

nl, nf = load("netlink.json"), load("nftables.json")
if nl or nf:
    out += ["## Kernel layers", "", "| what | vcpe | baseline in the same run | ratio |", "|---|---|---|---|"]
if nl:
    m = nl["median"]
    out.append("| create %s namespaces, each with a veth to a bridge, 2 addresses, a route | %.2f s | `ip` script %.2f s | %.1fx faster |" % (
        nl.get("namespaces", "the"), m["netlink_create_s"], m["script_create_s"], m["create_speedup"]))
    out.append("| delete them | %.0f ms (interfaces gone after %.2f s) | `ip netns del` script %.2f s | |" % (
        m["netlink_delete_s"] * 1000, m["netlink_delete_until_gone_s"], m["script_delete_s"]))
if nf:
    for k, label in (("rules_table", "install a %s-rule table in one transaction"), ("interval_set", "install a %s-element interval set")):
        x = nf[k]
        out.append("| %s | %.2f s | `nft -f` %.2f s | %.1fx faster |" % (label % f"{nf.get('rules', '?'):,}" if isinstance(nf.get('rules'), int) else label % "N",
                   med(x["vcpe_s"]), med(x["nft_s"]), x["speedup"]))
    r = nf["replace_100_rules"]
    out.append("| replace a customer's 100-rule table | %.1f ms median, %.1f ms max | | |" % (r["median_s"] * 1000, r["max_s"] * 1000))
if nl or nf:
    out.append("")
open(os.path.join(d, "summary.md"), "w").write("\n".join(out) + "\n")
print("\n".join(out))
