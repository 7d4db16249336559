"""A clean lab with and without its veths' flow steering (RPS): reordering and TCP retransmits.

A 4-node lab with the lab's defaults (HTTP traffic, eBPF probe, back-to-back
iperf3 sweeps); no fault. Phases of ``--seconds`` alternate between the lab as
built (every veth end spreads received packets over all CPUs by flow hash) and
the kernel's default for a veth (RPS off: a packet goes to the backlog of the
CPU that sent it). Per phase, summed over the nodes' namespaces: TCP
retransmitted segments, reordering events the senders detected
(TCPSACKReorder + TCPTSReorder), DSACKs received (retransmissions the receiver
already had); the iperf3 TCP tests' retransmits and bandwidth; RCA polls with
a finding. ``--hogs N`` runs N busy-loop processes throughout (CPU contention).

    PYTHONPATH=$PWD python tests/benchmarks/bench_steering.py [--seconds S] [--rounds R] [--hogs N]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

from benchlib import (
    Row,
    arguments,
    hogs,
    load_average,
    load_row,
    report,
    skipped_without_root,
)

from lab.lab import Lab, get_json
from lab.netns import cpu_mask, steer_flows
from lab.settings import LabSettings
from lab.shell import in_ns, run
from tests.e2e.labup import lab_up
from tests.e2e.rca_lab import rca_deadline, verdict, wait_clean

PREFIX = f"nmst{os.getpid() % 1000}"
SUBNET = f"10.34.{os.getpid() % 250}.0/24"
COUNTERS = ("RetransSegs", "TCPSACKReorder", "TCPTSReorder", "TCPDSACKRecv")


def tcp_counters(netns: str) -> dict[str, int]:
    """The namespace's Tcp/TcpExt counters named in COUNTERS."""
    text = run(in_ns(netns, ["cat", "/proc/net/snmp", "/proc/net/netstat"]))
    lines = text.splitlines()
    out: dict[str, int] = {}
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        if head.split(":")[0] in ("Tcp", "TcpExt"):
            for key, value in zip(head.split()[1:], values.split()[1:], strict=True):
                if key in COUNTERS:
                    out[key] = int(value)
    return out


def set_steering(lab: Lab, on: bool) -> None:
    mask = None if on else "0"
    for node in lab.topo.nodes:
        run(steer_flows(node.host_veth, mask=mask))
        run(steer_flows("eth0", node.netns, mask=mask))


def phase(lab: Lab, seconds: float) -> dict[str, Any]:
    """Counters' deltas, the TCP tests that started in the phase, polls with a finding."""
    before = {n.netns: tcp_counters(n.netns) for n in lab.topo.nodes}
    start = time.time()
    tests: dict[tuple[str, str, float], dict[str, Any]] = {}
    polls = bad = 0
    named: set[str] = set()
    while time.time() < start + seconds:
        for p in get_json(lab.collector_url + "/api/v1/matrix", timeout=5)["paths"]:
            if p["protocol"] == "tcp" and p["success"] and p["started_at"] >= start:
                tests[(p["source"], p["destination"], p["started_at"])] = p
        body = verdict(lab)
        polls += 1
        bad += bool(body.get("findings") or body.get("suspects"))
        named |= {f"{f['kind']} {f['subject']}" for f in body.get("findings", [])}
        named |= {f"suspect {s['node']}" for s in body.get("suspects", [])}
        time.sleep(2)
    after = {n.netns: tcp_counters(n.netns) for n in lab.topo.nodes}
    delta = {k: sum(after[ns][k] - before[ns][k] for ns in after) for k in COUNTERS}
    return {
        "seconds": time.time() - start,
        "retrans": delta["RetransSegs"],
        "reorder": delta["TCPSACKReorder"] + delta["TCPTSReorder"],
        "dsack": delta["TCPDSACKRecv"],
        "tests": len(tests),
        "test_retrans": [t["retransmits"] for t in tests.values()],
        "mbit": [t["bandwidth_bits_per_second"] / 1e6 for t in tests.values()],
        "polls": polls,
        "bad": bad,
        "named": sorted(named),
    }


def summary(phases: list[dict[str, Any]]) -> dict[str, Any]:
    minutes = sum(p["seconds"] for p in phases) / 60
    retr = [r for p in phases for r in p["test_retrans"]]
    mbit = [m for p in phases for m in p["mbit"]]
    return {
        "minutes": minutes,
        "retrans_per_min": sum(p["retrans"] for p in phases) / minutes,
        "reorder_per_min": sum(p["reorder"] for p in phases) / minutes,
        "dsack_per_min": sum(p["dsack"] for p in phases) / minutes,
        "tests": len(retr),
        "tests_with_retrans": sum(r > 0 for r in retr),
        "median_test_retrans": statistics.median(retr) if retr else 0.0,
        "max_test_retrans": max(retr, default=0),
        "median_mbit": statistics.median(mbit) if mbit else 0.0,
        "polls": sum(p["polls"] for p in phases),
        "bad_polls": sum(p["bad"] for p in phases),
        "named": sorted({n for p in phases for n in p["named"]}),
    }


def main() -> None:
    parser = arguments(__doc__, quick="one round of 60 s phases")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="on/off pairs of phases")
    parser.add_argument("--hogs", type=int, default=0, help="busy-loop processes throughout")
    args = parser.parse_args()
    if skipped_without_root("bench_steering"):
        return
    seconds, rounds = (60.0, 1) if args.quick else (args.seconds, args.rounds)
    settings = LabSettings(
        nodes=4, prefix=PREFIX, subnet=SUBNET, state_dir=tempfile.mkdtemp(prefix="nmst-")
    )
    results: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    load_start = Row("load average at the start", load_average())
    with lab_up(settings) as lab, hogs(args.hogs):
        wait_clean(lab, rca_deadline(lab, 3))
        for r in range(rounds):
            for on in (True, False) if r % 2 == 0 else (False, True):
                set_steering(lab, on)
                results[on].append(phase(lab, seconds))
                print(f"round {r + 1}, steering {'on' if on else 'off'}: {results[on][-1]}")
        set_steering(lab, True)
    rows = [load_start]
    for on in (True, False):
        s = summary(results[on])
        rows.append(
            Row(
                f"steering {'on (as the lab builds it)' if on else 'off (kernel default)'}, "
                f"{s['minutes']:.1f} min, {args.hogs} hogs",
                f"{s['retrans_per_min']:.0f} retransmitted segments/min, "
                f"{s['reorder_per_min']:.0f} reorderings/min, {s['dsack_per_min']:.0f} DSACKs/min; "
                f"iperf3 TCP: {s['tests_with_retrans']}/{s['tests']} tests with retransmits "
                f"(median {s['median_test_retrans']:g}, max {s['max_test_retrans']:g}), "
                f"median {s['median_mbit']:.0f} Mbit/s; {s['bad_polls']}/{s['polls']} "
                f"RCA polls with a finding {s['named'] or ''}",
                value=s["retrans_per_min"],
                unit="segments/min",
                extra=s,
            )
        )
    rows.append(load_row())
    report(
        "steering",
        rows,
        params={
            "seconds": seconds,
            "rounds": rounds,
            "hogs": args.hogs,
            "cpus": cpu_mask(os.cpu_count() or 1),
        },
    )


if __name__ == "__main__":
    main()
