"""``netmesh-rca``: root-cause analysis over a time window, offline (retrieve, then analyse).

::

    netmesh-rca --prometheus http://prometheus:9090 --since 2h     # query, save JSONL, mine
    netmesh-rca --input netmesh-rca-20240101-120000.jsonl          # re-analyse a saved file
    netmesh-rca --input retransmissions.jsonl --method seed        # the source design's method

Two methods over the same window:

- ``netmesh`` (default): the path tests judged by the live criteria, with the
  eBPF retransmissions per node pair as one more criterion, mined into node
  rules and a verdict (``collector/pathtests.py``);
- ``seed``: the source design's method on the eBPF retransmission counters
  alone: ordered endpoint pairs as transactions, apriori, association rules
  (``collector/seed.py``).

Retrieval and the JSONL files: ``collector/rangequery.py``; which series are
retransmission evidence, and how a pair counts: ``collector/pairs.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO, cast

from collector.judging import Criteria
from collector.pairs import LABEL_HELP, Evidence, Kind, Level, find_evidence
from collector.pathtests import METRICS, SUCCESS, analyse_series, table, to_json
from collector.rangequery import OfflineError, Series, load, parse_duration, retrieve, save
from collector.seed import SeedCriteria, analyse_seed, seed_table
from netmesh import catalogue as cat

RETRANSMITS = cat.RETRANSMITS.name


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
        "--method",
        choices=("netmesh", "seed"),
        default="netmesh",
        help="netmesh: path tests + eBPF evidence, node verdict (default); seed: the "
        "source design's rules over eBPF retransmissions alone",
    )
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
    p.add_argument(
        "--ebpf-retransmits-per-second",
        type=float,
        default=c.ebpf_retransmits_per_second,
        help="netmesh method: a TCP test FAILs when its node pair retransmitted "
        "faster (collector setting rca_ebpf_retransmits_per_second); 0 = off",
    )
    p.add_argument(
        "--ebpf-window",
        type=parse_duration,
        default=30.0,
        metavar="DURATION",
        help="netmesh method: window of that rate (rca_ebpf_window, default 30s)",
    )
    p.add_argument("--min-failing-paths", type=int, default=c.min_failing_paths)
    p.add_argument(
        "--min-confidence",
        type=float,
        default=None,
        help=f"rules' least confidence (default {c.min_confidence:g}; "
        f"seed: {SeedCriteria().min_confidence:g})",
    )
    p.add_argument("--max-suspects", type=int, default=c.max_suspects)
    p.add_argument("--cluster-wide-ratio", type=float, default=c.cluster_wide_ratio)
    s = SeedCriteria()
    g = p.add_argument_group("seed method", f"pair series: labels {LABEL_HELP}")
    g.add_argument(
        "--endpoints",
        choices=("pod", "node"),
        default="pod",
        help="pair retransmissions per pod (default) or per node",
    )
    g.add_argument(
        "--retransmits-above",
        type=float,
        default=s.threshold,
        metavar="N",
        help="a pair FAILs when its retransmissions in the window exceed N (default 0: any)",
    )
    g.add_argument(
        "--values",
        choices=("auto", "counter", "gauge"),
        default="auto",
        help="pair series are counters (increase in the window) or gauges (largest "
        "value); auto: counter when the name ends in _total or there is none",
    )
    g.add_argument("--min-support", type=float, default=s.min_support)
    g.add_argument("--max-len", type=int, default=s.max_len, help="largest itemset (default 2)")
    g.add_argument("--top", type=int, default=10, help="itemsets printed (default 10)")
    return p


def _series(args: argparse.Namespace) -> list[Series]:
    if not args.prometheus:
        return load(args.input)
    seed = args.method == "seed"
    series = retrieve(
        args.prometheus,
        args.since,
        (RETRANSMITS,) if seed else (*METRICS, RETRANSMITS),
        required=RETRANSMITS if seed else SUCCESS,
        step=args.step,
        selector=args.selector,
        timeout=args.timeout,
        now=time.time(),
    )
    path = args.save or time.strftime("netmesh-rca-%Y%m%d-%H%M%S.jsonl")
    n = save(series, path)
    print(
        f"saved {n} series to {path} (re-analyse: netmesh-rca --input {path}"
        + (" --method seed)" if seed else ")"),
        file=sys.stderr,
    )
    return series


def _evidence(series: Sequence[Series], args: argparse.Namespace, level: str) -> Evidence | None:
    kind = None if args.values == "auto" else cast(Kind, args.values)
    return find_evidence(series, level=cast(Level, level), kind=kind)


def _given(value: float | None, default: float) -> float:
    """A flag whose default depends on the method (None: not given)."""
    return default if value is None else value


def _seed(args: argparse.Namespace, series: Sequence[Series]) -> tuple[str, dict[str, Any]]:
    evidence = _evidence(series, args, args.endpoints)
    if evidence is None:
        raise OfflineError(f"no series names a source and a destination (labels: {LABEL_HELP})")
    criteria = SeedCriteria(
        threshold=args.retransmits_above,
        min_support=args.min_support,
        min_confidence=_given(args.min_confidence, SeedCriteria().min_confidence),
        max_len=args.max_len,
    )
    result = analyse_seed(evidence, criteria)
    return seed_table(result, args.top), result.to_json()


def _netmesh(args: argparse.Namespace, series: Sequence[Series]) -> tuple[str, dict[str, Any]]:
    criteria = Criteria(
        loss_ratio=args.loss_ratio,
        retransmit_ratio=args.retransmit_ratio,
        bandwidth_fraction=args.bandwidth_fraction,
        ebpf_retransmits_per_second=args.ebpf_retransmits_per_second,
        min_failing_paths=args.min_failing_paths,
        min_confidence=_given(args.min_confidence, Criteria().min_confidence),
        max_suspects=args.max_suspects,
        cluster_wide_ratio=args.cluster_wide_ratio,
    )
    # The host network's paths: pod-network series (network="pod") are not in the
    # offline analysis (series from before the label have none: host).
    series = [s for s in series if s["metric"].get("network", "host") == "host"]
    ebpf = [s for s in series if s["metric"].get("__name__") == RETRANSMITS]
    evidence = _evidence(ebpf, args, "node") if ebpf else None
    analysis, window, outcomes = analyse_series(series, criteria, evidence, args.ebpf_window)
    return table(analysis, window, outcomes), to_json(analysis, window)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    out = out or sys.stdout
    try:
        series = _series(args)
        text, body = (_seed if args.method == "seed" else _netmesh)(args, series)
    except OfflineError as exc:
        print(f"netmesh-rca: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(body, out, indent=2)
        out.write("\n")
    else:
        print(text, file=out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
