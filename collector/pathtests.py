"""Offline RCA, the netmesh method: the window's path tests judged and mined (no I/O here).

Each distinct value of a path's ``netmesh_path_last_test_timestamp_seconds``
is one test (without that series, every sample of ``netmesh_path_success`` is
one); its measurements are the other gauges at that instant. Every test is
judged with the live criteria (``collector/judging.py``; bandwidth against the
path's own median of its previous tests in the window), including the eBPF
evidence when the window holds ``netmesh_tcp_retransmits_total``: a TCP test
FAILs when its source node retransmitted to its destination node faster than
``ebpf_retransmits_per_second`` over the ``ebpf_window`` seconds before the
test showed up (the live collector's rate, ``collector/pairs.py``). The rules
are mined over all tests of the window (``collector/verdict.py``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from collector.judging import Baselines, Criteria, PathOutcome, judge_all
from collector.mining import Rule
from collector.pairs import Evidence
from collector.rangequery import OfflineError, Series
from collector.verdict import Analysis, analyse
from netmesh import catalogue as cat
from netmesh.wire import TestResult, Transport

SUCCESS = cat.PATH_SUCCESS.name
TIMESTAMP = cat.PATH_TIMESTAMP.name
METRICS = tuple(
    f.name
    for f in (
        cat.PATH_SUCCESS,
        cat.PATH_TIMESTAMP,
        cat.PATH_LOSS,
        cat.PATH_BANDWIDTH,
        cat.PATH_SENT,
        cat.PATH_RETRANSMITS,
        cat.PATH_DURATION,
    )
)


@dataclass(frozen=True)
class Window:
    series: int
    samples: int
    tests: int
    paths: int
    start: float | None
    end: float | None
    ebpf_series: int = 0
    ebpf_failing: int = 0  # tests with an eBPF reason


def tests_from_series(series: Sequence[Series]) -> list[tuple[float, TestResult]]:
    """Reconstruct the path tests of the window: (when Prometheus first saw it, the test)."""
    by_path: dict[tuple[str, str, str], dict[str, dict[float, float]]] = defaultdict(dict)
    for s in series:
        m = s["metric"]
        name = m.get("__name__")
        if name not in METRICS:
            continue
        key = (m["source_node"], m["destination_node"], m["protocol"])
        points = by_path[key].setdefault(name, {})
        for t, v in s["values"]:
            points[float(t)] = float(v)
    tests: list[tuple[float, TestResult]] = []
    for (src, dst, proto), metrics in sorted(by_path.items()):
        success = metrics.get(SUCCESS)
        if not success:
            continue
        stamps = metrics.get(TIMESTAMP)
        instants: list[tuple[float, float]] = []  # (sample time, test start)
        if stamps:
            seen: set[float] = set()
            for t in sorted(stamps):
                if stamps[t] not in seen and t in success:
                    seen.add(stamps[t])
                    instants.append((t, stamps[t]))
        else:
            instants = [(t, t) for t in sorted(success)]
        for t, started in instants:

            def at(
                name: str, t: float = t, m: dict[str, dict[float, float]] = metrics
            ) -> float | None:
                return m.get(name, {}).get(t)

            ok = success[t] == 1.0
            bw, sent = at(cat.PATH_BANDWIDTH.name), at(cat.PATH_SENT.name)
            retx = at(cat.PATH_RETRANSMITS.name)
            result = TestResult(
                source=src,
                destination=dst,
                protocol=cast(Transport, proto),  # checked in check_series
                result="ok" if ok else "error",
                message="" if ok else f"failed ({SUCCESS} 0)",
                started_at=started,
                duration_seconds=at(cat.PATH_DURATION.name) or 0.0,
                sent_bits_per_second=None if sent is None or not ok else sent * 8,
                received_bits_per_second=None if bw is None or not ok else bw * 8,
                retransmits=None if retx is None or not ok else int(retx),
                loss_ratio=at(cat.PATH_LOSS.name) if ok else None,
            )
            tests.append((t, result))
    tests.sort(key=lambda tr: (tr[1].started_at, tr[1].source, tr[1].destination, tr[1].protocol))
    return tests


def analyse_series(
    series: Sequence[Series],
    criteria: Criteria,
    evidence: Evidence | None = None,
    ebpf_window: float = 30.0,
) -> tuple[Analysis, Window, list[PathOutcome]]:
    """Judge and mine the window's tests; ``evidence``: node-level eBPF pairs, if any."""
    tests = tests_from_series(series)
    if not tests:
        raise OfflineError(
            f"the samples hold no path tests (no {SUCCESS} values); the netmesh method needs "
            "them (--method seed mines retransmission counters alone)"
        )
    baselines = Baselines()
    outcomes: list[PathOutcome] = []
    use_ebpf = evidence is not None and criteria.ebpf_retransmits_per_second > 0
    for seen_at, r in tests:  # in time order: each test against the path's earlier tests
        rates: dict[tuple[str, str], float] = {}
        if use_ebpf and evidence is not None and r.protocol == "tcp":
            rate = evidence.rate_at((r.source, r.destination), seen_at, ebpf_window)
            if rate is not None:
                rates[(r.source, r.destination)] = rate
        outcomes += judge_all([r], criteria, baselines, rates, prune=False)
    window = Window(
        series=len(series),
        samples=sum(len(s["values"]) for s in series),
        tests=len(tests),
        paths=len({(r.source, r.destination, r.protocol) for _, r in tests}),
        start=tests[0][1].started_at,
        end=tests[-1][1].started_at,
        ebpf_series=sum(len(p) for p in evidence.series.values()) if evidence else 0,
        ebpf_failing=sum(any(x.startswith("eBPF") for x in o.reasons) for o in outcomes),
    )
    return analyse(outcomes, criteria), window, outcomes


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def table(analysis: Analysis, window: Window, outcomes: Sequence[PathOutcome]) -> str:
    """The ranked report printed to the terminal."""
    lines = [
        f"window: {_when(window.start)} .. {_when(window.end)}; {window.tests} tests on "
        f"{window.paths} paths ({window.series} series, {window.samples} samples)",
    ]
    if window.ebpf_series:
        lines.append(
            f"eBPF: {window.ebpf_series} {cat.RETRANSMITS.name} series by node pair; "
            f"{window.ebpf_failing} TCP tests over "
            f"{analysis.criteria.ebpf_retransmits_per_second:g} retransmissions/s"
        )
    lines += [
        f"failing tests: {len(analysis.failing)} of {analysis.transactions} "
        f"({analysis.failing_ratio:.1%})",
        f"verdict: {analysis.verdict}" + (f" — {analysis.summary}" if analysis.summary else ""),
    ]
    if analysis.verdict in ("ok", "no-data"):
        return "\n".join(lines)
    involved: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for o in outcomes:
        for node in (o.source, o.destination):
            involved[node][0] += 1
            involved[node][1] += o.failed
    best: dict[str, Rule] = {}
    for rule in analysis.rules:  # ranked: the first {role=node} -> {FAIL} is the best
        (item,) = rule.antecedent if len(rule.antecedent) == 1 else ("",)
        if rule.consequent == frozenset({"FAIL"}) and "=" in item:
            best.setdefault(item.split("=", 1)[1], rule)
    named = {s.node: i for i, s in enumerate(analysis.suspects, 1)}
    head = (
        f"{'rank':>4}  {'node':<24}{'score':>7}{'failing/tests':>15}  "
        f"{'best rule':<34}{'conf':>6}{'lift':>7}"
    )
    lines += ["", head, "-" * len(head)]
    for rank, (node, score) in enumerate(analysis.ranking(), 1):
        top = best.get(node)
        fail, total = involved[node][1], involved[node][0]
        mark = " <- suspect" if node in named else ""
        lines.append(
            f"{rank:>4}  {node:<24}{score:>7.2f}{f'{fail}/{total}':>15}  "
            f"{(top.text() if top else '-'):<34}"
            f"{(f'{top.confidence:.2f}' if top else '-'):>6}"
            f"{(f'{top.lift:.2f}' if top else '-'):>7}{mark}"
        )
    return "\n".join(lines)


def to_json(analysis: Analysis, window: Window) -> dict[str, Any]:
    body = analysis.to_json(limit=200)
    body["method"] = "netmesh"
    body["window"] = window.__dict__
    return body
