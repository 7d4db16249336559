"""Exposition: escaping, numbers, per-agent caps, the 'other' bucket, merged output."""

from __future__ import annotations

import dataclasses

from prometheus_client.parser import text_string_to_metric_families

from collector import exposition as ex
from collector.membership import StaticMembership
from collector.metrics import render_metrics
from collector.podmap import Identity
from collector.state import CollectorState, Limits
from netmesh import catalogue as cat
from netmesh.wire import ProbeStatus
from tests.collector.conftest import FakeClock, promtool_check
from tests.collector.reports import flow, light_path, light_status, report


def _ip(ip: str) -> Identity:
    return Identity("", ip, "ip")


def test_escape_and_numbers() -> None:
    assert ex.labels(("a",), ('x"y\\z\nw',)) == '{a="x\\"y\\\\z\\nw"}'
    assert ex.number(3.0) == "3"
    assert ex.number(0.25) == "0.25"
    assert ex.number(1e20) == "1e+20"


def test_path_cap_drops_whole_paths_and_counts() -> None:
    r = report("a", peers=("b", "c", "d"))
    full = ex.render_agent(r, max_series=10**6)
    capped = ex.render_agent(r, max_series=20)
    assert full.dropped == 0
    assert capped.series <= 20 and capped.series + capped.dropped == full.series
    assert b'destination_node="b"' in b"".join(capped.fragments)
    assert b'destination_node="d"' not in b"".join(capped.fragments)


def test_retransmit_cap_folds_into_other_and_keeps_shown_pairs() -> None:
    flows = [flow("10.0.0.1", f"10.0.0.{i}", count=i) for i in range(2, 8)]
    block = ex.render_retransmits("a", flows, _ip, cap=3)
    text = block.fragment.decode()
    assert block.series == 3 and block.folded == 4
    assert 'dst_pod="10.0.0.7"' in text and 'dst_pod="10.0.0.6"' in text
    assert 'dst_pod="other",port="other"} 14' in text  # 2 + 3 + 4 + 5
    # Next time the small flow 10.0.0.2 grows; the shown pairs stay (continuous counters).
    flows.append(flow("10.0.0.1", "10.0.0.2", count=100))
    again = ex.render_retransmits("a", flows, _ip, cap=3, previous=block.keys)
    assert again.keys == block.keys


def test_ports_fold_per_pair_and_agent_other_bucket() -> None:
    flows = [
        flow("10.0.0.1", "10.0.0.2", 80, 1),
        flow("10.0.0.1", "10.0.0.2", 80, 2),
        flow("other", "other", 0, 9),
    ]
    text = ex.render_retransmits("a", flows, _ip, cap=10).fragment.decode()
    assert 'dst_pod="10.0.0.2",port="80"} 3' in text
    assert 'dst_pod="other",port="other"} 9' in text


def test_merged_output_groups_families_and_is_promtool_clean() -> None:
    clock = FakeClock()
    state = CollectorState(Limits(max_series_per_agent=30), clock=clock)
    probe = ProbeStatus(mode="tracepoint", up=1)
    state.accept(report("a", "10.0.0.1", ("b", "c"), probe=probe))
    state.accept(report("b", "10.0.0.2", ("a",), retransmits=(flow("10.0.0.2", "10.0.0.1"),)))
    text = render_metrics(state, StaticMembership(state, clock=clock).current()).decode()
    promtool_check(text)
    names = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")]
    assert len(names) == len(set(names))  # one header per family
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["netmesh_path_success"].type == "gauge"
    assert families["netmesh_tcp_retransmits"].type == "counter"
    assert 'netmesh_agent_series_dropped{node="a",kind="path"}' in text


def test_the_rtt_histogram_per_path_and_the_switch_that_leaves_it_out() -> None:
    r = dataclasses.replace(
        report("a", "10.0.0.1", ()), light=light_status(light_path("b"), light_path("c"))
    )
    on = ex.render_agent(r, max_series=1000)
    text = b"".join(on.fragments).decode()
    buckets = [line for line in text.splitlines() if line.startswith(f"{cat.LIGHT_RTT.name}_")]
    assert len(buckets) == 2 * cat.LIGHT_RTT_SERIES_PER_PATH == 26
    assert (
        'netmesh_light_rtt_seconds_bucket{source_node="a",destination_node="b",network="host",'
        'le="0.0001"} 100' in buckets
    )
    assert (
        'netmesh_light_rtt_seconds_bucket{source_node="a",destination_node="c",network="host",'
        'le="+Inf"} 1000' in buckets
    )
    assert (
        'netmesh_light_rtt_seconds_sum{source_node="a",destination_node="b",network="host"} 0.25'
        in buckets
    )
    off = ex.render_agent(r, max_series=1000, light_histogram=False)
    assert cat.LIGHT_RTT.name not in b"".join(off.fragments).decode()
    assert on.series - off.series == 26
    # the histogram counts against the cap: a path whose gauges fit but not it is dropped
    capped = ex.render_agent(r, max_series=9 + 13 + 5, light_histogram=True)
    assert capped.series == 22 and capped.dropped == 22
