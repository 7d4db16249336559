"""The netmesh method offline (collector/pathtests.py) with eBPF evidence: node pairs that
retransmit faster than rca_ebpf_retransmits_per_second fail their TCP tests, as live."""

from __future__ import annotations

import io
import json
import pathlib
from typing import Any

import pytest

from collector.judging import Criteria
from collector.offline import main
from collector.pairs import find_evidence
from collector.pathtests import analyse_series
from netmesh import catalogue as cat

NODES = ("node-a", "node-b", "node-c")
T0, STEP, TESTS = 1_700_000_000.0, 10.0, 12


def _path(name: str, src: str, dst: str, values: list[float]) -> dict[str, Any]:
    labels = {"__name__": name, "source_node": src, "destination_node": dst, "protocol": "tcp"}
    return {"metric": labels, "values": [[T0 + STEP * i, str(v)] for i, v in enumerate(values)]}


def window(retransmitting: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """TCP tests every 10 s on every path, all fine by iperf3; eBPF counters per node pair,
    growing 50/s from every node into each of ``retransmitting``."""
    out: list[dict[str, Any]] = []
    for src in NODES:
        for dst in NODES:
            if src == dst:
                continue
            out.append(_path(cat.PATH_SUCCESS.name, src, dst, [1.0] * TESTS))
            out.append(_path(cat.PATH_TIMESTAMP.name, src, dst,
                             [T0 + STEP * i - 5 for i in range(TESTS)]))  # fmt: skip
            out.append(_path(cat.PATH_BANDWIDTH.name, src, dst, [1.2e8] * TESTS))
            rate = 50.0 if dst in retransmitting else 0.0
            labels = dict(zip(cat.RETRANSMITS.label_names(cat.COLLECTOR),
                              (src, "", src, "", dst, "5201"), strict=True))  # fmt: skip
            out.append({
                "metric": {"__name__": cat.RETRANSMITS.name, **labels},
                "values": [[T0 + STEP * i, str(rate * STEP * i)] for i in range(TESTS)],
            })  # fmt: skip
    return out


def test_ebpf_evidence_names_the_receiving_node() -> None:
    series = window(retransmitting=("node-b",))
    evidence = find_evidence(series, level="node")
    analysis, win, outcomes = analyse_series(series, Criteria(), evidence)
    assert [s.node for s in analysis.suspects] == ["node-b"]
    assert win.ebpf_series == 6 and win.ebpf_failing == 2 * (TESTS - 1)
    failing = {(o.source, o.destination) for o in outcomes if o.failed}
    assert failing == {("node-a", "node-b"), ("node-c", "node-b")}
    assert all(o.reasons == ("eBPF retransmissions 50/s > 10/s",) for o in outcomes if o.failed)
    # without the eBPF series, or with the criterion off, the same tests are all fine
    assert analyse_series(series, Criteria(), None)[0].verdict == "ok"
    off = Criteria(ebpf_retransmits_per_second=0)
    assert analyse_series(series, off, evidence)[0].verdict == "ok"
    # below the threshold: fine
    assert (
        analyse_series(window(), Criteria(), find_evidence(window(), level="node"))[0].verdict
        == "ok"
    )


def test_command_combines_both(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in window(retransmitting=("node-b",))))
    assert main(["--input", str(path)]) == 0
    text = capsys.readouterr().out
    assert "eBPF: 6 netmesh_tcp_retransmits_total series by node pair; 22 TCP tests over 10" in text
    ranked = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert ranked[0][:2] == ["1", "node-b"] and ranked[0][-1] == "suspect"
    out = io.StringIO()
    assert main(["--input", str(path), "--json", "--ebpf-retransmits-per-second", "60"], out) == 0
    body = json.loads(out.getvalue())
    assert body["method"] == "netmesh" and body["verdict"] == "ok"
    # the seed method on the same file, per node: node-b first
    assert main(["--input", str(path), "--method", "seed", "--endpoints", "node"]) == 0
    assert "named first: node-b " in capsys.readouterr().out
