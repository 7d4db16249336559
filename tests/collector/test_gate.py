"""netmesh-check's judgement (collector/gate.py): parsing, freshness, exit codes, the matrix."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from collector import gate
from netmesh import catalogue as cat
from netmesh.jsonreader import WireError

T0 = 1_700_000_000.0
NAMES = ("node-1", "node-2", "node-3")


def values(loss: float = 0.0, rtt: float | None = 0.00021) -> dict[str, float | None]:
    return {
        cat.LIGHT_PROBES.name: 100.0,
        cat.LIGHT_LOSS.name: loss,
        cat.LIGHT_FORWARD_LOSS.name: loss,
        cat.LIGHT_RETURN_LOSS.name: 0.0,
        cat.LIGHT_RTT_MEDIAN.name: rtt,
        cat.LIGHT_RTT_P99.name: None if rtt is None else 2 * rtt,
        cat.LIGHT_MTU_LOSS.name: 0.0,
    }


def nodes_body(reported: float = T0 + 3, up: bool = True) -> dict[str, Any]:
    return {
        "epoch": 4,
        "nodes": [{"name": n, "member": True, "up": up, "last_report_at": reported} for n in NAMES]
        # an agent that reports but is no member (a cordoned node): not required
        + [{"name": "x-9", "member": False, "up": False, "last_report_at": None}],
    }


def light_body(now: float = T0, skip: tuple[str, str] | None = None) -> dict[str, Any]:
    paths = [
        {"source": a, "destination": b, "reported_at": T0 + 3, "values": values()}
        for a in NAMES
        for b in NAMES
        if a != b and (a, b) != skip
    ]
    agents = [{"node": n, "up": True, "light_up": True, "light_reason": ""} for n in NAMES]
    return {"now": now, "nodes": list(NAMES), "agents": agents, "paths": paths}


def rca_body(verdict: str = "ok", **kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "verdict": verdict,
        "summary": "",
        "transactions": 18,
        "failing": 0,
        "suspects": [],
        "failing_paths": [],
        "computed_at": T0 + 5,
    }
    body.update(kw)
    return body


SUSPECT = {
    "node": "node-2",
    "score": 1.0,
    "explains": 4,
    "failing_paths": 4,
    "peers": 2,
    "direction": "inbound",
    "confidence": 1.0,
    "lift": 3.0,
    "rule": "{dst=node-2} -> {FAIL}",
}
FAILING = [
    {
        "source": a,
        "destination": "node-2",
        "protocol": "light",
        "result": "ok",
        "started_at": T0,
        "reasons": ["light loss 30/100 into node-2"],
    }
    for a in ("node-1", "node-3")
]


# ---------------------------------------------------------------- freshness


def test_fresh_when_every_member_reported_since_the_start_and_every_pair_has_data() -> None:
    snap = gate.parse_snapshot(nodes_body(), light_body())
    assert snap.names == list(NAMES) and snap.now == T0
    assert gate.freshness(snap, since=T0) == []
    assert gate.rca_due(snap) == T0 + 3


def test_reports_from_before_the_start_are_not_fresh() -> None:
    snap = gate.parse_snapshot(nodes_body(reported=T0 - 1), light_body())
    assert gate.freshness(snap, since=T0) == [
        "no report since the check started: node-1, node-2, node-3"
    ]


def test_down_members_missing_pairs_and_a_down_light_tier_are_named() -> None:
    light = light_body(skip=("node-3", "node-1"))
    light["agents"][1].update(light_up=False, light_reason="bind: address in use")
    nodes = nodes_body()
    nodes["nodes"][0].update(up=False)
    problems = gate.freshness(gate.parse_snapshot(nodes, light), since=T0)
    assert problems == [
        "agents not up (stale or never reported): node-1",
        "light tier down: node-2 (bind: address in use)",
        "1 pairs without light-tier data: node-3 -> node-1",
    ]


def test_no_members_is_not_fresh_and_long_lists_are_cut() -> None:
    empty = gate.parse_snapshot({"nodes": []}, {"now": T0, "paths": []})
    assert gate.freshness(empty, since=T0) == ["no members: no agent has reported"]
    many = [
        {"name": f"n{i:02}", "member": True, "up": True, "last_report_at": T0} for i in range(8)
    ]
    snap = gate.parse_snapshot({"nodes": many}, {"now": T0, "paths": []})
    (problem,) = gate.freshness(snap, since=T0)
    assert problem == "56 pairs without light-tier data: n00 -> n01, n00 -> n02, n00 -> n03, " + (
        "n00 -> n04, n00 -> n05, ... (56 in all)"
    )


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda n, g: n.update(nodes="x"), "/api/v1/nodes.nodes: expected a list"),
        (lambda n, g: n["nodes"][0].update(up="yes"), "/api/v1/nodes.nodes[0].up"),
        (lambda n, g: n["nodes"][1].pop("name"), "/api/v1/nodes.nodes[1].name: missing"),
        (lambda n, g: g.pop("now"), "/api/v1/light.now: missing"),
        (lambda n, g: g["paths"][2].pop("values"), "/api/v1/light.paths[2].values"),
        (
            lambda n, g: g["paths"][0]["values"].update({cat.LIGHT_LOSS.name: "0"}),
            f"/api/v1/light.paths[0].values.{cat.LIGHT_LOSS.name}",
        ),
        (lambda n, g: g["paths"][0].update(reported_at=-1), "/api/v1/light.paths[0].reported_at"),
    ],
)
def test_malformed_answers_name_the_field(mutate: Any, where: str) -> None:
    n, g = copy.deepcopy(nodes_body()), copy.deepcopy(light_body())
    mutate(n, g)
    with pytest.raises(WireError, match=r"^" + where.replace("[", r"\[").replace(".", r"\.")):
        gate.parse_snapshot(n, g)
    with pytest.raises(WireError, match="expected an object"):
        gate.parse_snapshot([], light_body())


# ---------------------------------------------------------------- exit codes


def decide(body: dict[str, Any], stale: tuple[str, ...] = ()) -> gate.Decision:
    return gate.decide(stale, gate.parse_rca(body))


def test_healthy_is_verdict_ok_without_suspects_or_failing_paths() -> None:
    d = decide(rca_body())
    assert d.code == gate.HEALTHY == 0
    assert d.reasons == ("verdict ok: no suspects, no failing paths",)


def test_suspects_and_failing_paths_are_unhealthy() -> None:
    summary = "suspect: node-2 (4 of 4 failing paths, inbound, confidence 1.00, lift 3.00)"
    d = decide(
        rca_body("suspects", summary=summary, suspects=[SUSPECT], failing=4, failing_paths=FAILING)
    )
    assert d.code == gate.UNHEALTHY == 1
    assert d.reasons == (f"RCA verdict suspects: {summary}", "4 failing paths")
    assert decide(rca_body("isolated", failing=1, failing_paths=FAILING[:1])).code == 1
    assert decide(rca_body("cluster-wide", summary="most paths fail")).reasons == (
        "RCA verdict cluster-wide: most paths fail",
    )
    # a verdict "ok" that still lists failing paths or suspects is not healthy
    assert decide(rca_body(failing=2, failing_paths=FAILING)).reasons == ("2 failing paths",)
    assert decide(rca_body(suspects=[SUSPECT])).reasons == ("suspects: node-2",)


def test_a_dns_finding_is_unhealthy_even_when_every_path_passes() -> None:
    finding = {
        "node": "node-3",
        "scope": "node",
        "layer": "dns",
        "kind": "failing",
        "summary": "DNS on node-3: 6 of 6 lookups of x.test failed in 30 s (mostly timeout)",
        "evidence": {},
    }
    d = decide({**rca_body(), "dns_findings": [finding]})
    assert d == gate.Decision(code=gate.UNHEALTHY, reasons=(finding["summary"],))
    with pytest.raises(WireError, match=r"dns_findings\[0\].summary"):
        decide({**rca_body(), "dns_findings": [{"kind": "failing", "summary": 3}]})


def test_a_service_finding_is_unhealthy_even_before_any_path_has_data() -> None:
    finding = {
        "node": "node-2",
        "layer": "service",
        "kind": "failing",
        "networks": ["host", "pod"],
        "summary": "Service on node-2: 5 of 5 connects to 10.96.0.9:9100 failed in 6 s",
    }
    body = {**rca_body("no-data"), "summary": "", "service_findings": [finding]}
    d = decide(body)
    assert d.code == gate.UNHEALTHY
    assert d.reasons == (finding["summary"], "RCA verdict no-data: the collector has no analysis")
    assert decide(rca_body("no-data")).code == gate.UNKNOWN  # nothing known: cannot tell


def test_a_layer_finding_is_unhealthy_even_when_every_host_path_passes() -> None:
    finding = {
        "node": "node-2",
        "scope": "node",
        "layer": "overlay",
        "network": "pod",
        "kind": "overlay-mtu",
        "summary": "overlay MTU on node node-2: don't-fragment probes of 1500 bytes ...",
        "evidence": {},
    }
    d = decide({**rca_body(), "layer_findings": [finding]})
    assert d == gate.Decision(code=gate.UNHEALTHY, reasons=(finding["summary"],))
    with pytest.raises(WireError, match=r"layer_findings\[0\].kind"):
        decide({**rca_body(), "layer_findings": [{"summary": "x"}]})


def test_cannot_tell_when_stale_rca_off_no_data_or_unknown() -> None:
    assert decide(rca_body(), stale=("no fresh data after 5s",)) == gate.Decision(
        code=gate.UNKNOWN, reasons=("no fresh data after 5s",)
    )
    off = {"verdict": "off", "summary": "RCA is off (rca_interval 0)"}
    assert decide(off).reasons == ("RCA verdict off: RCA is off (rca_interval 0)",)
    assert decide(rca_body("no-data")).code == 2
    assert decide(rca_body("maybe")).reasons == ("unknown RCA verdict 'maybe'",)
    assert gate.decide((), None).code == 2


def test_malformed_rca_answers() -> None:
    with pytest.raises(WireError, match=r"^/api/v1/rca\.verdict: missing"):
        gate.parse_rca({"summary": ""})
    with pytest.raises(WireError, match=r"suspects\[0\]\.direction: missing"):
        gate.parse_rca(rca_body(suspects=[{"node": "a"}]))
    with pytest.raises(WireError, match=r"failing_paths\[0\]\.protocol"):
        gate.parse_rca(rca_body(failing_paths=[{"source": "a", "destination": "b"}]))


# ---------------------------------------------------------------- output


def test_matrix_has_sources_as_rows_destinations_as_columns_and_a_dash_diagonal() -> None:
    light = light_body(skip=("node-3", "node-1"))
    light["paths"][2]["values"] = values(loss=0.3, rtt=0.0105)  # node-2 -> node-1
    light["paths"][3]["values"] = values(loss=1.0, rtt=None)  # node-2 -> node-3
    snap = gate.parse_snapshot(nodes_body(), light)
    assert gate.matrix_text(snap.names, snap.cells).splitlines() == [
        "light tier, latest window per pair: loss % and RTT median ms (? = no data)",
        "from \\ to       node-1     node-2     node-3",
        "node-1               -  0.0% 0.21  0.0% 0.21",
        "node-2     30.0% 10.50          -   100.0% -",
        "node-3               ?  0.0% 0.21          -",
    ]


def test_matrix_stays_narrow_for_a_few_nodes() -> None:
    snap = gate.parse_snapshot(nodes_body(), light_body())
    width = max(len(line) for line in gate.matrix_text(snap.names, snap.cells).splitlines()[1:])
    assert width < 80


def test_text_report_shows_matrix_verdict_suspects_failing_paths_and_exit_code() -> None:
    snap = gate.parse_snapshot(nodes_body(), light_body())
    rca = gate.parse_rca(
        rca_body(
            "suspects", summary="suspect: node-2", suspects=[SUSPECT], failing=12,
            failing_paths=FAILING * 6,
        )
    )  # fmt: skip
    decision = gate.decide((), rca)
    text = gate.report_text("http://c:9100", snap, rca, decision, 3.25)
    lines = text.splitlines()
    assert lines[0] == "collector: http://c:9100 (waited 3.2s for fresh data)"
    assert "verdict: suspects - suspect: node-2" in lines
    assert "  suspect node-2: inbound, score 1.00, 4 failing paths with 2 peers" in lines
    assert "failing paths: 12" in lines
    assert "  node-1 -> node-2 light: light loss 30/100 into node-2" in lines
    assert "  ... (2 more)" in lines
    assert (
        lines[-1] == "exit 1 (unhealthy): RCA verdict suspects: suspect: node-2; 12 failing paths"
    )


def test_json_report_is_one_object_with_matrix_verdict_and_exit_code() -> None:
    snap = gate.parse_snapshot(nodes_body(), light_body())
    rca = gate.parse_rca(rca_body())
    body = gate.report_json("http://c:9100", snap, rca, gate.decide((), rca), 1.0)
    assert body["exit_code"] == 0 and body["status"] == "healthy" and body["verdict"] == "ok"
    assert body["nodes"] == list(NAMES) and len(body["matrix"]) == 6
    first = body["matrix"][0]
    assert (first["source"], first["destination"]) == ("node-1", "node-2")
    assert first[cat.LIGHT_RTT_MEDIAN.name] == 0.00021
    unknown = gate.Decision(code=2, reasons=("collector unreachable",))
    empty = gate.report_json("http://c:9100", None, None, unknown, 0.0)
    assert empty["exit_code"] == 2 and empty["matrix"] == [] and empty["verdict"] is None
    assert empty["reasons"] == ["collector unreachable"]
