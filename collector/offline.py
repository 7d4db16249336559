"""``netmesh-rca``: root-cause analysis over a time window, offline (retrieve, then analyse).

::

    netmesh-rca --prometheus http://prometheus:9090 --since 2h     # query, save JSONL, mine
    netmesh-rca --input netmesh-rca-20240101-120000.jsonl          # re-analyse a saved file

Retrieve: one range query per path gauge (``netmesh_path_*``, the collector's
series) over the window; every series is saved as one JSON line, exactly as
Prometheus returns it (``{"metric": {...}, "values": [[t, "v"], ...]}``), so
``curl .../query_range | jq -c '.data.result[]'`` makes a valid input too.

Analyse: each distinct value of a path's ``netmesh_path_last_test_timestamp_seconds``
is one test (without that series, every sample of ``netmesh_path_success`` is
one); its measurements are the other gauges at that instant. Every test is
judged with the live criteria (collector/judging.py; bandwidth against the
path's own median of its previous tests in the window) and the rules are
mined over all tests of the window. eBPF retransmission counters are not
used offline (their pod labels need the cluster's pod → node map).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO, cast

from collector.judging import Baselines, Criteria, PathOutcome, judge_all
from collector.mining import Rule
from collector.verdict import Analysis, analyse
from netmesh import catalogue as cat
from netmesh.wire import PROTOCOLS, TestResult, Transport

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
LABELS = cat.PATH_LABELS
MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series


class OfflineError(Exception):
    """Something the user must fix; the message says what."""


# --------------------------------------------------------------------------- retrieve


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``7d`` → seconds."""
    m = _DURATION.match(text.strip())
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a duration like 30s, 15m, 2h or 7d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def query_range(
    base: str, query: str, *, start: float, end: float, step: float, timeout: float
) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": step})
    url = base.rstrip("/") + "/api/v1/query_range?" + params
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(json.loads(detail).get("error", detail))
        raise OfflineError(f"Prometheus at {base} rejected {query!r}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OfflineError(f"cannot reach Prometheus at {base}: {reason}") from None
    try:
        body = json.loads(raw)
        result = body["data"]["result"]
        if body.get("status") != "success" or not isinstance(result, list):
            raise ValueError(body.get("error", "not a success"))
    except (ValueError, KeyError, TypeError) as exc:
        raise OfflineError(
            f"{base} did not answer like Prometheus' query_range API ({exc}); is it Prometheus?"
        ) from None
    return [dict(series) for series in result]


def retrieve(
    base: str, since: float, *, step: float | None, selector: str, timeout: float, now: float
) -> list[dict[str, Any]]:
    """Every netmesh path gauge over the last ``since`` seconds, one series per item."""
    if not base.startswith(("http://", "https://")):
        raise OfflineError(f"--prometheus {base!r}: give a URL like http://prometheus:9090")
    step = step or max(1.0, math.ceil(since / MAX_POINTS))
    if since / step > MAX_POINTS:
        raise OfflineError(
            f"--step {step:g}s gives {since / step:.0f} points per series over --since "
            f"{since:g}s; Prometheus allows about 11000: use a larger --step"
        )
    out: list[dict[str, Any]] = []
    for name in METRICS:
        out += query_range(
            base, f"{name}{{{selector}}}", start=now - since, end=now, step=step, timeout=timeout
        )
    if not any(s.get("metric", {}).get("__name__") == SUCCESS for s in out):
        raise OfflineError(
            f"Prometheus at {base} has no {SUCCESS}{{{selector}}} samples in the last "
            f"{since:g}s: is it scraping the netmesh collector (and is the selector right)?"
        )
    return out


def save(series: Iterable[dict[str, Any]], path: str) -> int:
    n = 0
    with open(path, "w") as fh:
        for s in series:
            fh.write(json.dumps(s, separators=(",", ":")) + "\n")
            n += 1
    return n


def load(path: str) -> list[dict[str, Any]]:
    """Read a JSONL file of series; a malformed line is an error naming it."""
    try:
        fh = open(path)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise OfflineError(f"cannot read {path}: {exc.strerror or exc}") from None
    out: list[dict[str, Any]] = []
    with fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise OfflineError(f"{where}: not JSON ({exc})") from None
            out.append(check_series(obj, where))
    if not out:
        raise OfflineError(f"{path}: no series (the file is empty)")
    if not any(s["metric"].get("__name__") == SUCCESS for s in out):
        raise OfflineError(f"{path}: no {SUCCESS} series; nothing to analyse")
    return out


def check_series(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise OfflineError(f"{where}: expected an object with 'metric' and 'values'")
    metric, values = obj.get("metric"), obj.get("values")
    if not isinstance(metric, dict) or not isinstance(metric.get("__name__"), str):
        raise OfflineError(f"{where}: 'metric' must be an object with a '__name__'")
    if metric["__name__"] in METRICS:
        missing = [label for label in LABELS if not isinstance(metric.get(label), str)]
        if missing:
            raise OfflineError(f"{where}: {metric['__name__']} without label(s) {missing}")
        if metric["protocol"] not in PROTOCOLS:
            raise OfflineError(f"{where}: unknown protocol {metric['protocol']!r}")
    if not isinstance(values, list):
        raise OfflineError(f"{where}: 'values' must be a list of [time, \"value\"] pairs")
    for i, pair in enumerate(values):
        try:
            t, v = pair
            t, v = float(t), float(v)
        except (TypeError, ValueError):
            raise OfflineError(
                f'{where}: values[{i}] = {pair!r} is not a [time, "value"] pair'
            ) from None
        if not math.isfinite(t):
            raise OfflineError(f"{where}: values[{i}] has a time that is not a number")
    return {"metric": metric, "values": values}


# --------------------------------------------------------------------------- analyse


@dataclass(frozen=True)
class Window:
    series: int
    samples: int
    tests: int
    paths: int
    start: float | None
    end: float | None


def tests_from_series(series: Sequence[dict[str, Any]]) -> list[TestResult]:
    """Reconstruct the path tests of the window from the gauges' samples."""
    by_path: dict[tuple[str, str, str], dict[str, dict[float, float]]] = defaultdict(dict)
    for s in series:
        m = s["metric"]
        name = m["__name__"]
        if name not in METRICS:
            continue
        key = (m["source_node"], m["destination_node"], m["protocol"])
        points = by_path[key].setdefault(name, {})
        for t, v in s["values"]:
            points[float(t)] = float(v)
    tests: list[TestResult] = []
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
            bw, sent = (
                at(cat.PATH_BANDWIDTH.name),
                at(cat.PATH_SENT.name),
            )
            retx = at(cat.PATH_RETRANSMITS.name)
            tests.append(
                TestResult(
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
            )
    tests.sort(key=lambda r: (r.started_at, r.source, r.destination, r.protocol))
    return tests


def analyse_series(
    series: Sequence[dict[str, Any]], criteria: Criteria
) -> tuple[Analysis, Window, list[PathOutcome]]:
    tests = tests_from_series(series)
    if not tests:
        raise OfflineError(f"the samples hold no path tests (no {SUCCESS} values)")
    baselines = Baselines()
    outcomes: list[PathOutcome] = []
    for r in tests:  # in time order: each test against the path's earlier tests
        outcomes += judge_all([r], criteria, baselines, prune=False)
    window = Window(
        series=len(series),
        samples=sum(len(s["values"]) for s in series),
        tests=len(tests),
        paths=len({(r.source, r.destination, r.protocol) for r in tests}),
        start=tests[0].started_at,
        end=tests[-1].started_at,
    )
    return analyse(outcomes, criteria), window, outcomes


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def table(analysis: Analysis, window: Window, outcomes: Sequence[PathOutcome]) -> str:
    """The ranked report printed to the terminal."""
    lines = [
        f"window: {_when(window.start)} .. {_when(window.end)}; {window.tests} tests on "
        f"{window.paths} paths ({window.series} series, {window.samples} samples)",
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


# --------------------------------------------------------------------------- CLI


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netmesh-rca",
        description="netmesh root-cause analysis over a time window: which node is the "
        "common denominator of the failing paths?",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prometheus", metavar="URL", help="Prometheus base URL to query")
    src.add_argument("--input", metavar="FILE", help="re-analyse a saved JSONL file")
    p.add_argument(
        "--since",
        type=parse_duration,
        default=7200.0,
        metavar="DURATION",
        help="window ending now (default 2h)",
    )
    p.add_argument(
        "--step",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="range-query resolution (default: window/10000, at least 1s); "
        "keep it at or below the scrape interval",
    )
    p.add_argument(
        "--selector",
        default="",
        metavar="MATCHERS",
        help='extra label matchers, e.g. job="netmesh-collector"',
    )
    p.add_argument(
        "--save",
        metavar="FILE",
        help="where to save the samples (default netmesh-rca-<time>.jsonl)",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per query (default 30)")
    p.add_argument("--json", action="store_true", help="print the analysis as JSON")
    c = Criteria()
    p.add_argument("--loss-ratio", type=float, default=c.loss_ratio)
    p.add_argument("--retransmit-ratio", type=float, default=c.retransmit_ratio)
    p.add_argument("--bandwidth-fraction", type=float, default=c.bandwidth_fraction)
    p.add_argument("--min-failing-paths", type=int, default=c.min_failing_paths)
    p.add_argument("--min-confidence", type=float, default=c.min_confidence)
    p.add_argument("--max-suspects", type=int, default=c.max_suspects)
    p.add_argument("--cluster-wide-ratio", type=float, default=c.cluster_wide_ratio)
    return p  # fmt: skip


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)
    criteria = Criteria(
        loss_ratio=args.loss_ratio,
        retransmit_ratio=args.retransmit_ratio,
        bandwidth_fraction=args.bandwidth_fraction,
        min_failing_paths=args.min_failing_paths,
        min_confidence=args.min_confidence,
        max_suspects=args.max_suspects,
        cluster_wide_ratio=args.cluster_wide_ratio,
    )
    try:
        if args.prometheus:
            series = retrieve(
                args.prometheus,
                args.since,
                step=args.step,
                selector=args.selector,
                timeout=args.timeout,
                now=time.time(),
            )
            path = args.save or time.strftime("netmesh-rca-%Y%m%d-%H%M%S.jsonl")
            n = save(series, path)
            print(f"saved {n} series to {path} (re-analyse: netmesh-rca --input {path})",
                  file=sys.stderr)  # fmt: skip
        else:
            series = load(args.input)
        analysis, window, outcomes = analyse_series(series, criteria)
    except OfflineError as exc:
        print(f"netmesh-rca: {exc}", file=sys.stderr)
        return 1
    if args.json:
        body = analysis.to_json(limit=200)
        body["window"] = window.__dict__
        json.dump(body, out, indent=2)
        out.write("\n")
    else:
        print(table(analysis, window, outcomes), file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
