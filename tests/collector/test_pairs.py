"""Pair evidence (collector/pairs.py): label schemes, counter increase with resets, pod and
node endpoints, and clear errors on input the seed method cannot use."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from collector.offline import main
from collector.pairs import find_evidence, increase
from collector.rangequery import OfflineError
from netmesh import catalogue as cat

NAME = cat.RETRANSMITS.name


def series(values: list[float], t0: float = 1000.0, **labels: str) -> dict[str, Any]:
    return {"metric": labels, "values": [[t0 + 30 * i, str(v)] for i, v in enumerate(values)]}


def netmesh(node: str, src: str, dst: str, values: list[float], **extra: str) -> dict[str, Any]:
    """A collector series: ``ns/pod`` for pods, a bare name for nodes."""
    sns, _, spod = src.rpartition("/")
    dns, _, dpod = dst.rpartition("/")
    labels = {"__name__": NAME, "node": node, "src_namespace": sns, "src_pod": spod,
              "dst_namespace": dns, "dst_pod": dpod, "port": "5201", **extra}  # fmt: skip
    return series(values, **labels)


def test_increase_counts_resets_like_prometheus() -> None:
    pts = tuple((float(i), v) for i, v in enumerate([5, 7, 7, 2, 4, 0, 1]))
    assert increase(pts) == 2 + 0 + 2 + 2 + 0 + 1
    assert increase(((0.0, 3.0),)) == 0.0
    assert increase(()) == 0.0


def test_design_labels_and_counters() -> None:
    found = find_evidence(
        [
            series([1, 1, 1], src_ip="10.0.0.1", dst_ip="10.0.0.2"),
            series([1, 3, 1], src_ip="10.0.0.2", dst_ip="10.0.0.3"),
        ]
    )
    assert found is not None and found.kind == "counter"
    assert found.amounts() == {("10.0.0.1", "10.0.0.2"): 0.0, ("10.0.0.2", "10.0.0.3"): 3.0}
    assert "labels src_ip -> dst_ip" in found.describe()
    assert found.endpoints == ("10.0.0.1", "10.0.0.2", "10.0.0.3")


def test_gauge_evidence_is_its_largest_value() -> None:
    found = find_evidence([series([0, 4, 1], __name__="retx_rate", src="a", dst="b")])
    assert found is not None and found.kind == "gauge" and found.amount(("a", "b")) == 4.0
    forced = find_evidence([series([0, 4, 1], src="a", dst="b")], kind="gauge")
    assert forced is not None and forced.kind == "gauge"


def test_agent_family_local_is_the_source() -> None:
    local, remote, port = cat.FLOW_RETRANSMITS.labels
    found = find_evidence(
        [
            series(
                [0, 2],
                __name__=cat.FLOW_RETRANSMITS.name,
                **{local: "10.0.0.1", remote: "10.0.0.9", port: "80"},
            )
        ]
    )
    assert found is not None and found.amounts() == {("10.0.0.1", "10.0.0.9"): 2.0}


def test_netmesh_pods_and_nodes() -> None:
    rows = [
        netmesh("n1", "shop/web-1", "shop/db-0", [0, 10, 20]),  # pod → pod
        netmesh("n1", "shop/web-1", "shop/db-0", [5, 6], port="5432"),  # a second port: summed
        netmesh("n2", "shop/db-0", "shop/web-1", [0, 0]),  # db-0 sends from n2
        netmesh("n1", "n1", "n3", [0, 4]),  # hostNetwork → node
        netmesh("n1", "shop/web-1", "ghost/x", [0, 9]),  # a pod never seen sending
        netmesh("n1", "other", "other", [0, 99], port="other"),  # the overflow bucket
    ]
    pods = find_evidence(rows)
    assert pods is not None
    assert pods.amounts() == {
        ("shop/web-1", "shop/db-0"): 21.0,
        ("shop/db-0", "shop/web-1"): 0.0,
        ("n1", "n3"): 4.0,
        ("shop/web-1", "ghost/x"): 9.0,
    }
    assert pods.left_out == 1
    assert "labels src_namespace/src_pod -> dst_namespace/dst_pod; pod endpoints" in (
        pods.describe()
    )
    nodes = find_evidence(rows, level="node")
    assert nodes is not None
    assert nodes.amounts() == {("n1", "n2"): 21.0, ("n2", "n1"): 0.0, ("n1", "n3"): 4.0}
    assert nodes.left_out == 2  # the unresolved pod and the overflow bucket
    # the live collector's rate: over the window before ``at`` (at least two samples)
    assert nodes.rate_at(("n1", "n2"), 1060.0, 30.0) == pytest.approx(10 / 30 + 1 / 30)
    assert nodes.rate_at(("n1", "n2"), 1000.0, 30.0) is None


def test_errors() -> None:
    assert find_evidence([series([1], __name__="up", job="x")]) is None
    with pytest.raises(OfflineError, match="several metrics"):
        find_evidence([series([1], __name__="a_total", src="a", dst="b"),
                       series([1], __name__="b_total", src="a", dst="b")])  # fmt: skip
    with pytest.raises(OfflineError, match="window holds no samples"):
        find_evidence([{"metric": {"src_ip": "a", "dst_ip": "b"}, "values": []}])
    with pytest.raises(OfflineError, match="node endpoints need netmesh_tcp_retransmits_total"):
        find_evidence([series([1, 2], src_ip="a", dst_ip="b")], level="node")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("src_ip,dst_ip\n10.0.0.1,10.0.0.2\n", ":1: not JSON"),
        ("", "no series (the file is empty)"),
        ('{"metric": {"job": "x"}, "values": [[1, "1"]]}\n', "no series names a source and a"),
        ('{"metric": {"src_ip": "a", "dst_ip": "b"}, "values": []}\n', "no samples"),
        ('{"metric": {"src_ip": 1}, "values": []}\n', "'metric' must be an object of label"),
    ],
)
def test_seed_command_errors(
    tmp_path: pathlib.Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    assert main(["--input", str(path), "--method", "seed"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("netmesh-rca: ") and message in err and "Traceback" not in err, err
