"""The light tier (root): fabric share, time to name a lossy node, irtt comparison, scale.

Parts (``--part``, default all):

- ``share``: a 3-node lab (tbf 1 Gbit/s baseline, no HTTP traffic, agents'
  ``bandwidth_budget`` 0.01 = the agent's default), bytes through each node's
  egress tbf over ``--share-seconds`` divided by capacity x time. iptables
  counters in each node's OUTPUT split the bytes into the light tier (UDP
  port 5202), iperf3 (port 5201) and the rest (reports to the collector).
  Then the same lab at budget 1.0 (the old behaviour) for a shorter time.
- ``detect``: a 6-node lab, default light settings, budget 0.01: receiver-side
  loss (1 %, 5 %) injected on a random node; /api/v1/rca polled every 0.5 s
  until that node is the first suspect; cleared; repeated. Then a clean run
  counting every suspect named.
- ``irtt``: two namespaces joined by a tbf-shaped veth: irtt 0.9 (server in
  one, ``irtt client`` in the other) and two light tiers (tests/benchmarks/
  lightproc.py, one per namespace) on the same path at the same time, at 0, 1
  and 5 % iptables drop on one side's INPUT: RTT median, loss, and which
  direction the loss is attributed to.
- ``scale``: one light tier probing 500 responders on 127.77.x.y (one other
  process of answer-only light tiers) at the default rate budget: the prober's
  CPU over 30 s and RSS.

Asserts nothing; prints the table and writes bench-results/light[-part].json.

    .venv/bin/python tests/benchmarks/bench_light.py [--quick] [--part share|detect|irtt|scale|all]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from benchlib import (
    ROOT,
    MiB,
    Row,
    arguments,
    cpu_seconds,
    load_average,
    report,
    rss_bytes,
    skipped_without_root,
)

from lab.faults import Fault
from lab.lab import Lab, get_json
from lab.netns import tbf_args
from lab.settings import LabSettings
from lab.shell import in_ns, ok, run
from tests.e2e.labup import lab_up

# 10.180-10.199, like the other lab benchmarks; BENCH_PREFIX / BENCH_SUBNET_BYTE override
# them (someone else's labs may be using that range on a shared machine)
PREFIX = os.environ.get("BENCH_PREFIX", "nml") + str(os.getpid() % 10000)
SUBNET_BYTE = int(os.environ.get("BENCH_SUBNET_BYTE", 180 + os.getpid() % 20))
LIGHT_PORT = 5202
IPERF3_PORT = 5201
LINK_BPS = 1_000_000_000
ETH_HEADER = 14  # iptables counts IP bytes; tbf counts frames
ACCT = "NMBENCH-ACCT"
HERE = ROOT / "tests" / "benchmarks"
IRTT_PORT = 2112


def env_with_root() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}:{HERE}:{os.environ.get('PYTHONPATH', '')}"}


# =========================================================================== share


# The accounting rules, in order: what each counts (iptables OUTPUT). Each returns on a
# match, so a packet counts once (a light probe goes from port 5202 to port 5202).
ACCT_RULES: tuple[tuple[str, list[str]], ...] = (
    ("light", ["-p", "udp", "--sport", str(LIGHT_PORT)]),
    ("light", ["-p", "udp", "--dport", str(LIGHT_PORT)]),
    ("iperf3", ["-p", "tcp", "--sport", str(IPERF3_PORT)]),
    ("iperf3", ["-p", "tcp", "--dport", str(IPERF3_PORT)]),
    ("iperf3", ["-p", "udp", "--sport", str(IPERF3_PORT)]),
    ("iperf3", ["-p", "udp", "--dport", str(IPERF3_PORT)]),
)


def acct_setup(netns: str) -> None:
    ipt = ["iptables", "-w", "5"]
    run(in_ns(netns, [*ipt, "-N", ACCT]))
    run(in_ns(netns, [*ipt, "-I", "OUTPUT", "-o", "eth0", "-j", ACCT]))
    for _, match in ACCT_RULES:
        run(in_ns(netns, [*ipt, "-A", ACCT, *match, "-j", "RETURN"]))


def acct_read(netns: str) -> dict[str, int]:
    """Frame bytes (IP bytes + an Ethernet header per packet) per kind, since setup."""
    out = run(in_ns(netns, ["iptables", "-w", "5", "-L", ACCT, "-v", "-x", "-n"]))
    rows = [line.split() for line in out.splitlines()[2:] if line.strip()]
    totals: dict[str, int] = {}
    for (kind, _), cols in zip(ACCT_RULES, rows, strict=True):
        totals[kind] = totals.get(kind, 0) + int(cols[1]) + ETH_HEADER * int(cols[0])
    return totals


def tbf_sent_bytes(netns: str) -> int:
    out = run(in_ns(netns, ["tc", "-s", "qdisc", "show", "dev", "eth0"]))
    m = re.search(r"Sent (\d+) bytes", out)
    return int(m.group(1)) if m else 0


@dataclass
class NodeShare:
    node: str
    total: float  # share of LINK_BPS x seconds
    light: float
    iperf3: float


def measure_share(lab: Lab, seconds: float) -> list[NodeShare]:
    names = {n.name: n.netns for n in lab.topo.nodes}
    for ns in names.values():
        acct_setup(ns)
    sent0 = {n: tbf_sent_bytes(ns) for n, ns in names.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    capacity = LINK_BPS / 8 * wall
    out = []
    for name, ns in names.items():
        kinds = acct_read(ns)
        out.append(
            NodeShare(
                node=name,
                total=(tbf_sent_bytes(ns) - sent0[name]) / capacity,
                light=kinds.get("light", 0) / capacity,
                iperf3=kinds.get("iperf3", 0) / capacity,
            )
        )
    return out


def share_lab(budget: float, seconds: float, state_dir: str, tag: str) -> list[NodeShare]:
    settings = LabSettings(
        nodes=3,
        prefix=f"{PREFIX}{tag}",
        subnet=f"10.{SUBNET_BYTE}.{10 + len(tag)}.0/24",
        state_dir=state_dir,
        traffic=False,
        bandwidth_budget=budget,
    )
    with lab_up(
        settings, progress=lambda m: print(f"  share lab ({budget=}): {m}", flush=True)
    ) as lab:
        print(f"  measuring {seconds:.0f} s", flush=True)
        return measure_share(lab, seconds)


def share_row(budget: float, seconds: float, shares: list[NodeShare], goal: bool) -> Row:
    mean = statistics.mean(s.total for s in shares)
    light = statistics.mean(s.light for s in shares)
    iperf = statistics.mean(s.iperf3 for s in shares)
    per_node = ", ".join(f"{s.node} {s.total:.3%}" for s in shares)
    return Row(
        f"fabric share, 3 nodes, budget {budget:g}, {seconds / 60:.0f} min",
        f"mean {mean:.3%} (light {light:.4%}, iperf3 {iperf:.3%}, other "
        f"{max(0.0, mean - light - iperf):.4%}); per node {per_node}",
        goal="<= 2 % (defaults)" if goal else "",
        met=(mean <= 0.02) if goal else None,
        value=mean,
        extra={"nodes": [s.__dict__ for s in shares], "light": light, "iperf3": iperf},
    )


def part_share(args: argparse.Namespace, state_dir: str) -> list[Row]:
    long = 120.0 if args.quick else args.share_seconds
    short = 60.0 if args.quick else args.old_seconds
    rows = [share_row(0.01, long, share_lab(0.01, long, state_dir, "s"), goal=True)]
    rows.append(share_row(1.0, short, share_lab(1.0, short, state_dir, "o"), goal=False))
    return rows


# =========================================================================== detect


def suspects(lab: Lab) -> list[str]:
    try:
        body = get_json(lab.collector_url + "/api/v1/rca", timeout=2.0)
    except (OSError, ValueError):
        return []
    return [s["node"] for s in body.get("suspects", [])]


def wait_quiet(lab: Lab, timeout: float, hold: float = 3.0) -> bool:
    """Until no suspect has been named for ``hold`` seconds (or the timeout)."""
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if suspects(lab):
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= hold:
            return True
        time.sleep(0.5)
    return False


@dataclass
class Trial:
    loss: float
    victim: str
    seconds: float | None  # None: not named within the limit
    others: set[str] = field(default_factory=set)


def one_trial(lab: Lab, loss: float, victim: str, limit: float) -> Trial:
    trial = Trial(loss, victim, None)
    lab.inject(victim, Fault(loss=loss))
    t0 = time.monotonic()
    try:
        while (elapsed := time.monotonic() - t0) < limit:
            named = suspects(lab)
            trial.others |= {n for n in named if n != victim}
            if named and named[0] == victim:
                trial.seconds = elapsed
                break
            time.sleep(0.5)
    finally:
        lab.clear(victim)
    return trial


def clean_run(lab: Lab, seconds: float) -> dict[str, int]:
    """How many polls named each suspect in ``seconds`` of a clean lab."""
    named: dict[str, int] = {}
    start = time.monotonic()
    next_line = start + 60
    while (now := time.monotonic()) < start + seconds:
        for n in suspects(lab):
            named[n] = named.get(n, 0) + 1
        if now >= next_line:  # partial numbers, should the run be cut short
            print(f"  clean for {now - start:.0f} s: named {named or 'nobody'}", flush=True)
            next_line += 60
        time.sleep(0.5)
    return named


def trial_list(trials: list[Trial]) -> str:
    return ", ".join(
        f"{t.victim} {'-' if t.seconds is None else f'{t.seconds:.1f} s'}" for t in trials
    )


def trial_row(loss: float, goal: float, trials: list[Trial]) -> Row:
    times = [t.seconds for t in trials if t.seconds is not None]
    missed = len(trials) - len(times)
    worst = max(times) if times and not missed else None
    others = sorted(set().union(*(t.others for t in trials)))
    return Row(
        f"time to name a node with {loss:.0%} receiver loss (6 nodes, budget 0.01)",
        (
            f"median {statistics.median(times):.1f} s, worst "
            f"{'not named' if worst is None else f'{worst:.1f} s'}"
            if times
            else "never named"
        )
        + f" ({len(trials)} trials: {trial_list(trials)}; "
        f"also named: {', '.join(others) or 'nobody'})",
        goal=f"<= {goal:.0f} s",
        met=worst is not None and worst <= goal,
        value=worst,
        unit="s",
        extra={"trials": [t.__dict__ | {"others": sorted(t.others)} for t in trials]},
    )


def part_detect(args: argparse.Namespace, state_dir: str) -> list[Row]:
    settings = LabSettings(
        nodes=6,
        prefix=f"{PREFIX}d",
        subnet=f"10.{SUBNET_BYTE}.20.0/24",
        state_dir=state_dir,
        traffic=False,
        bandwidth_budget=0.01,
    )
    repeats = 1 if args.quick else args.repeats
    clean_seconds = 60.0 if args.quick else args.clean_seconds
    rows: list[Row] = []
    rng = random.Random()
    with lab_up(settings, progress=lambda m: print(f"  detect lab: {m}", flush=True)) as lab:
        time.sleep(15)  # a full light window (10 s) and a report
        for loss, goal in ((0.01, 15.0), (0.05, 10.0)):
            trials = []
            for _ in range(repeats):
                wait_quiet(lab, 60)
                victim = rng.choice(lab.topo.nodes).name
                trial = one_trial(lab, loss, victim, limit=90)
                print(
                    f"  {loss:.0%} into {victim}: {trial.seconds} s, others {trial.others}",
                    flush=True,
                )
                trials.append(trial)
            rows.append(trial_row(loss, goal, trials))
        wait_quiet(lab, 60)
        print(f"  clean run {clean_seconds:.0f} s", flush=True)
        named = clean_run(lab, clean_seconds)
        rows.append(
            Row(
                f"clean run, 6 nodes, {clean_seconds / 60:.0f} min (the goal is for 30)",
                f"suspects named: {named or 'none'} (polls every 0.5 s)",
                goal="0 suspects",
                met=not named,
                value=float(sum(named.values())),
            )
        )
    return rows


# =========================================================================== irtt


@dataclass(frozen=True)
class Pair:
    a: str  # namespace names
    b: str
    addr_a: str
    addr_b: str


def pair_up(tag: str) -> Pair:
    pair = Pair(
        f"{PREFIX}{tag}-a", f"{PREFIX}{tag}-b", f"10.{SUBNET_BYTE}.30.1", f"10.{SUBNET_BYTE}.30.2"
    )
    pair_down(pair)
    run(["ip", "netns", "add", pair.a])
    run(["ip", "netns", "add", pair.b])
    run(in_ns(pair.a, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"]))
    run(in_ns(pair.a, ["ip", "link", "set", "peer0", "netns", pair.b, "name", "eth0"]))
    for ns, addr in ((pair.a, pair.addr_a), (pair.b, pair.addr_b)):
        run(in_ns(ns, ["ip", "link", "set", "lo", "up"]))
        run(in_ns(ns, ["ip", "addr", "add", f"{addr}/24", "dev", "eth0"]))
        run(in_ns(ns, ["ip", "link", "set", "eth0", "up"]))
        run(in_ns(ns, ["tc", "qdisc", "replace", "dev", "eth0", "root", *tbf_args(LINK_BPS)]))
    return pair


def pair_down(pair: Pair) -> None:
    ok(["ip", "netns", "del", pair.a])  # the veth, qdiscs and rules go with it
    ok(["ip", "netns", "del", pair.b])


def set_drop(netns: str, loss: float) -> None:
    ipt = ["iptables", "-w", "5"]
    ok(in_ns(netns, [*ipt, "-F", "INPUT"]))
    if loss > 0:
        rule = ["-i", "eth0", "-p", "udp", "-m", "statistic", "--mode", "random"]
        run(
            in_ns(netns, [*ipt, "-A", "INPUT", *rule, "--probability", f"{loss:.6f}", "-j", "DROP"])
        )


def spawn(netns: str, argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        in_ns(netns, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env_with_root(),
    )  # fmt: skip


@dataclass
class Comparison:
    loss: float
    irtt: dict[str, float]
    light_a: dict[str, Any]  # a probing b: forward = a -> b (dropped)
    light_b: dict[str, Any]  # b probing a: return = a -> b (dropped)
    ping_median_s: float = float("nan")  # ICMP echo: answered by b's kernel, kernel-stamped


PING_TIME = re.compile(r"time=([0-9.]+) ms")


def ping_median(out: str) -> float:
    times = sorted(float(t) / 1000 for t in PING_TIME.findall(out))
    return times[len(times) // 2] if times else float("nan")


def light_tier_argv(me: str, peer: str, seconds: float, rate: float) -> list[str]:
    return [
        sys.executable, str(HERE / "lightproc.py"), "tier", "--me", me, "--peer", peer,
        "--port", str(LIGHT_PORT), "--seconds", str(seconds),
        "--rate", str(rate), "--max-pair-rate", str(rate),
    ]  # fmt: skip


def compare_once(pair: Pair, loss: float, seconds: float, rate: float) -> Comparison:
    set_drop(pair.b, loss)  # drops a -> b: irtt upstream, a's forward, b's return
    try:
        a, b = f"a={pair.addr_a}", f"b={pair.addr_b}"
        light_a = spawn(pair.a, light_tier_argv(a, b, seconds, rate))
        light_b = spawn(pair.b, light_tier_argv(b, a, seconds, rate))
        interval = f"{1000 / rate:g}ms"
        client = spawn(
            pair.a,
            ["irtt", "client", "-i", interval, "-d", f"{seconds:g}s", "-Q", "-o", "-",
             f"{pair.addr_b}:{IRTT_PORT}"],
        )  # fmt: skip
        # A third reference: ping answers in b's kernel and stamps the reply in a's
        # (SO_TIMESTAMP): no user space on the path at all. Not dropped (UDP only).
        pinger = spawn(
            pair.a,
            ["ping", "-n", "-i", f"{1 / rate:g}", "-c", str(int(seconds * rate)), pair.addr_b],
        )
        outs = [p.communicate(timeout=seconds + 60) for p in (client, light_a, light_b)]
        ping_out, _ = pinger.communicate(timeout=seconds + 60)
    finally:
        set_drop(pair.b, 0.0)
    for (out, err), name in zip(outs, ("irtt", "light a", "light b"), strict=True):
        if not out.strip():
            raise RuntimeError(f"{name} printed nothing: {err[-500:]}")
    stats = json.loads(outs[0][0])["stats"]
    irtt = {
        "rtt_median_s": stats["rtt"]["median"] / 1e9 if stats["rtt"].get("n") else float("nan"),
        "upstream_loss": stats["upstream_loss_percent"] / 100,
        "downstream_loss": stats["downstream_loss_percent"] / 100,
        "packets_sent": stats["packets_sent"],
    }
    path_a = json.loads(outs[1][0])["paths"][0]
    path_b = json.loads(outs[2][0])["paths"][0]
    return Comparison(loss, irtt, path_a, path_b, ping_median(ping_out))


def comparison_rows(c: Comparison) -> list[Row]:
    light_rtt = c.light_a["rtt_median_seconds"]
    irtt_rtt = c.irtt["rtt_median_s"]
    diff = abs(light_rtt - irtt_rtt)
    rtt_ok = diff <= max(0.1 * irtt_rtt, 50e-6)
    fwd = c.light_a["forward_loss_ratio"]  # a -> b, where the drop is
    ret_b = c.light_b["return_loss_ratio"]  # also a -> b
    clean = (c.light_a["return_loss_ratio"], c.light_b["forward_loss_ratio"])  # b -> a
    up, down = c.irtt["upstream_loss"], c.irtt["downstream_loss"]
    loss_err = max(abs(fwd - up), abs(fwd - c.loss))
    attributed = max(clean) <= 0.005 and down <= 0.005 and (c.loss == 0 or fwd > 0.5 * c.loss)
    ping = c.ping_median_s
    return [
        Row(
            f"RTT median vs ping (kernel ICMP echo), {c.loss:.0%} drop",
            f"light {light_rtt * 1e6:.0f} us, ping {ping * 1e6:.0f} us, irtt "
            f"{irtt_rtt * 1e6:.0f} us (light - ping {(light_rtt - ping) * 1e6:+.0f} us, "
            f"irtt - ping {(irtt_rtt - ping) * 1e6:+.0f} us)",
            goal="within 10 % or 50 us",
            met=abs(light_rtt - ping) <= max(0.1 * ping, 50e-6),
            value=light_rtt - ping,
            unit="s",
        ),
        Row(
            f"RTT median vs irtt, {c.loss:.0%} drop",
            f"light {light_rtt * 1e6:.0f} us, irtt {irtt_rtt * 1e6:.0f} us "
            f"(diff {diff * 1e6:.0f} us, {diff / irtt_rtt:.0%}); light p99 "
            f"{c.light_a['rtt_p99_seconds'] * 1e6:.0f} us",
            goal="within 10 % or 50 us",
            met=rtt_ok,
            value=diff,
            unit="s",
        ),
        Row(
            f"loss a->b vs irtt, {c.loss:.0%} drop on b's INPUT",
            f"light forward {fwd:.2%} ({c.light_a['forward_sent']} probes), b's return "
            f"{ret_b:.2%}; irtt upstream {up:.2%} ({c.irtt['packets_sent']} packets); "
            f"worst gap {loss_err * 100:.2f} pp",
            goal="within 0.5 pp",
            met=loss_err <= 0.005,
            value=loss_err,
        ),
        Row(
            f"direction, {c.loss:.0%} drop a->b only",
            f"b->a: light a's return {clean[0]:.2%}, b's forward {clean[1]:.2%}; "
            f"irtt downstream {down:.2%}",
            goal="loss on a->b only",
            met=attributed,
            extra={"irtt": c.irtt, "light_a": c.light_a, "light_b": c.light_b},
        ),
    ]


def part_irtt(args: argparse.Namespace) -> list[Row]:
    seconds = 20.0 if args.quick else args.irtt_seconds
    pair = pair_up("i")
    server = spawn(pair.b, ["irtt", "server", "-b", f"{pair.addr_b}:{IRTT_PORT}"])
    rows: list[Row] = []
    try:
        time.sleep(0.5)
        for loss in (0.0, 0.01, 0.05):
            print(f"  irtt vs light: {loss:.0%} drop, {seconds:.0f} s", flush=True)
            rows += comparison_rows(compare_once(pair, loss, seconds, args.irtt_rate))
    finally:
        server.terminate()
        server.communicate(timeout=10)
        pair_down(pair)
    return rows


# =========================================================================== scale


def part_scale(args: argparse.Namespace) -> list[Row]:
    count = args.peers
    port = 25000 + os.getpid() % 5000  # not the agents' 5202: other runs may use loopback
    base = f"127.77.{os.getpid() % 200}"
    me, first = f"{base}.1", f"127.78.{os.getpid() % 200}.1"
    procs = []
    try:
        resp = subprocess.Popen(
            [sys.executable, str(HERE / "lightproc.py"), "responders", "--prober", me,
             "--first", first, "--count", str(count), "--port", str(port)],
            stdout=subprocess.PIPE, text=True, env=env_with_root(),
        )  # fmt: skip
        procs.append(resp)
        assert resp.stdout is not None
        resp.stdout.readline()  # "N responders up"
        prober = subprocess.Popen(
            [sys.executable, str(HERE / "lightproc.py"), "prober", "--me", me,
             "--first", first, "--count", str(count), "--port", str(port)],
            stdout=subprocess.PIPE, text=True, env=env_with_root(),
        )  # fmt: skip
        procs.append(prober)
        time.sleep(args.warmup)
        cpu0, t0 = cpu_seconds(prober.pid), time.monotonic()
        time.sleep(args.scale_seconds)
        cpu = (cpu_seconds(prober.pid) - cpu0) / (time.monotonic() - t0)
        rss = rss_bytes(prober.pid)
        resp_cpu = cpu_seconds(resp.pid) / max(1e-9, time.monotonic() - t0 + args.warmup)
    finally:
        for p in procs:
            p.terminate()
        outs = [p.communicate(timeout=10)[0] for p in procs]
    lines = [json.loads(x) for x in outs[1].splitlines() if x.startswith("{")]
    last = lines[-1] if lines else {}
    return [
        Row(
            f"prober CPU, {count} peers, default rate (100 probes/s + MTU probes)",
            f"{cpu:.3f} of a core (responders' process {resp_cpu:.3f}); last status: "
            f"{last.get('paths')} paths, {last.get('probes_sent')} sent, "
            f"{last.get('echoes_received')} echoes, mean loss {last.get('mean_loss')}",
            goal="<= 5 % of a core",
            met=cpu <= 0.05,
            value=cpu,
            extra={"status": last},
        ),
        Row(
            f"prober RSS, {count} peers",
            f"{rss / MiB:.1f} MiB",
            goal="<= 100 MB",
            met=rss <= 100e6,
            value=rss,
            unit="bytes",
        ),
    ]


# =========================================================================== main


def main() -> int:
    parser = arguments(__doc__)
    parts = ("share", "detect", "irtt", "scale")
    parser.add_argument("--part", choices=(*parts, "all"), default="all")
    parser.add_argument("--share-seconds", type=float, default=600.0)
    parser.add_argument("--old-seconds", type=float, default=120.0, help="budget 1.0 run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clean-seconds", type=float, default=300.0)
    parser.add_argument("--irtt-seconds", type=float, default=60.0)
    parser.add_argument("--irtt-rate", type=float, default=100.0, help="packets/s, both tools")
    parser.add_argument("--peers", type=int, default=500)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--scale-seconds", type=float, default=30.0)
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so labs, namespaces and processes are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if skipped_without_root("bench_light"):
        return 0
    started = time.monotonic()
    chosen = parts if args.part == "all" else (args.part,)
    rows: list[Row] = []
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="bench-light-") as state_dir:
        for part in chosen:
            print(f"== {part} (load {load_average()})", flush=True)
            if part == "share":
                rows += part_share(args, state_dir)
            elif part == "detect":
                rows += part_detect(args, state_dir)
            elif part == "irtt":
                rows += part_irtt(args)
            else:
                rows += part_scale(args)
            loads.append(load_average())
    rows.append(Row("load average (1/5/15 min) before and after each part", " | ".join(loads)))
    report(
        "light" if args.part == "all" else f"light-{args.part}",
        rows,
        params={k: v for k, v in vars(args).items()},
        started=started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
