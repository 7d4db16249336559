"""The Grafana dashboard model: portable, every panel with a unit, every query valid PromQL.

There is no Grafana server here; tests/e2e/test_prometheus.py runs every
query against a real Prometheus. This file checks what needs no server.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from tests.dashboards import files

DASH = files.load_dashboard()
PANELS = list(files.panels(DASH))
DS = {"type": "prometheus", "uid": "${datasource}"}
# Values for the dashboard's variables when only the syntax matters.
SAMPLE = {
    "datasource": "prom",
    "network": "host",
    "source_node": "a",
    "destination_node": "b",
    "protocol": "tcp",
}


def test_portable_model() -> None:
    assert DASH["id"] is None
    assert DASH["uid"] == "netmesh-overview"  # stable: links and provisioning rely on it
    assert "netmesh" in DASH["tags"]
    assert DASH["title"]
    assert isinstance(DASH["schemaVersion"], int)
    variables = DASH["templating"]["list"]
    ds = variables[0]
    assert (ds["name"], ds["type"], ds["query"]) == ("datasource", "datasource", "prometheus")


def test_every_panel_and_query_uses_the_datasource_variable() -> None:
    for panel in PANELS:
        assert panel["datasource"] == DS, panel["title"]
        assert panel["targets"], f"{panel['title']}: no queries"
        for target in panel["targets"]:
            assert target["datasource"] == DS, panel["title"]
    for var in files.query_variables(DASH):
        spec = next(v for v in DASH["templating"]["list"] if v["name"] == var.name)
        assert spec["datasource"] == DS, var.name


def test_every_panel_has_a_unit_title_and_description() -> None:
    for panel in PANELS:
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']}: no unit"
        assert panel["title"].strip()
        assert panel.get("description", "").strip(), f"{panel['title']}: no description"


def test_panel_ids_unique_and_layout_without_overlap() -> None:
    ids = [p["id"] for p in DASH["panels"]]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in DASH["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_drill_down_variables_cascade() -> None:
    """$network → $source_node → $destination_node → $protocol, each narrowed by the ones
    before (network: host or pod, the layer the paths are measured on)."""
    variables = files.query_variables(DASH)
    assert [(v.name, v.label) for v in variables] == [
        ("network", "network"),
        ("source_node", "source_node"),
        ("destination_node", "destination_node"),
        ("protocol", "protocol"),
    ]
    assert "$" not in variables[0].selector
    assert "$network" in variables[1].selector and "$source_node" not in variables[1].selector
    assert "$source_node" in variables[2].selector
    narrowed = set(variables[3].selector.split('"'))
    assert {"$network", "$source_node", "$destination_node"} <= narrowed
    for spec in DASH["templating"]["list"][1:]:
        assert spec["refresh"] == 2, f"{spec['name']}: refresh on time range change"


def _must_have(title_part: str) -> list[dict[str, Any]]:
    found = [p for p in PANELS if title_part.lower() in p["title"].lower()]
    assert found, f"no panel titled like {title_part!r}"
    return found


def test_the_panels_the_issue_asks_for() -> None:
    for part in (
        "Bandwidth matrix",
        "Loss matrix",
        "Average bandwidth",
        "Minimum bandwidth",
        "Maximum jitter",
        "Failing paths",
        "RTT (TCP)",
        "Jitter (UDP)",
        "Loss (UDP)",
        "Top pod pairs",
        "Agent up",
        "Report age",
        "eBPF probe",
        "iperf3 server restarts",
        "Busy collisions",
        "Suspect score",
    ):
        _must_have(part)
    for matrix in _must_have("matrix"):
        (transform,) = [t for t in matrix["transformations"] if t["id"] == "groupingToMatrix"]
        assert transform["options"]["rowField"] == "source_node"
        assert transform["options"]["columnField"] == "destination_node"
        assert all(t.get("instant") and t.get("format") == "table" for t in matrix["targets"])
    # the selected-path panels follow all three variables (or fix the protocol they need)
    for title in ("Bandwidth ($protocol)", "RTT (TCP)", "Jitter (UDP)", "Loss (UDP)"):
        (panel,) = [p for p in PANELS if p["title"] == title]
        for target in panel["targets"]:
            expr = target["expr"]
            assert '$source_node"' in expr and '$destination_node"' in expr, title
            assert 'protocol="' in expr, title
    # the RCA row reads the metric the RCA work will expose
    assert any("netmesh_rca_suspect_score" in q.expr for q in files.queries(DASH))
    # every path and light-tier query selects the network (host and pod series never mix)
    for q in files.queries(DASH):
        for name in files.metric_names(q.expr):
            if name.startswith(("netmesh_path_", "netmesh_light_", "netmesh:path_")):
                assert f'{name}{{network="$network"' in q.expr, q.name
    # the layer row: a finding count per layer
    (layers,) = _must_have("Findings by layer")
    legends = [t["legendFormat"] for t in layers["targets"]]
    assert legends == ["underlay", "overlay", "dns", "service"]


def test_queries_use_only_names_that_exist() -> None:
    known = files.exposed_metric_names() | files.recorded_names()
    for query in files.queries(DASH):
        used = files.metric_names(query.expr)
        assert used, f"{query.name}: mentions no netmesh metric"
        assert used <= known, f"{query.name}: unknown {used - known}"
    for var in files.query_variables(DASH):
        assert files.metric_names(var.selector) <= known, var.name


@pytest.mark.skipif(files.promtool() is None, reason="promtool is not installed")
def test_every_query_parses(tmp_path: pathlib.Path) -> None:
    """promtool parses each panel query and variable selector (as a recording rule)."""
    rules = [
        {
            "record": f"dashboard_panel_{q.panel_id}_{q.ref}",
            "expr": files.substitute(q.expr, SAMPLE),
        }
        for q in files.queries(DASH)
    ]
    rules += [
        {"record": f"dashboard_variable_{v.name}", "expr": files.substitute(v.selector, SAMPLE)}
        for v in files.query_variables(DASH)
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = files.run_promtool("check", "rules", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_substitute() -> None:
    assert files.substitute('x{a="$source_node"}[$__rate_interval]', SAMPLE) == 'x{a="a"}[1m]'
    assert files.substitute("${protocol}", SAMPLE) == "tcp"
    with pytest.raises(KeyError):
        files.substitute("$nope", SAMPLE)
