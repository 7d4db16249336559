"""State: TTL expiry, and re-rendering only the retransmit fragments whose pods changed."""

from __future__ import annotations

from collector.podmap import PodMap, parse_pod
from collector.state import CollectorState, Limits
from tests.collector.conftest import FakeClock
from tests.collector.fakekube import pod
from tests.collector.reports import flow, report


def test_only_agents_naming_a_changed_ip_are_rerendered() -> None:
    pod_map = PodMap()
    state = CollectorState(Limits(), pod_map=pod_map, clock=FakeClock())
    state.accept(report("a", "10.0.0.1", retransmits=(flow("10.0.0.1", "10.1.0.5"),)))
    state.accept(report("b", "10.0.0.2", retransmits=(flow("10.0.0.2", "10.1.0.6"),)))
    state.refresh_identities()
    renders = state.stats.block_renders["retransmit"]
    web = parse_pod(pod("web", "10.1.0.5", namespace="shop"))
    assert web is not None
    pod_map.upsert_pod(web)
    assert state.refresh_identities() == 1  # only a names 10.1.0.5
    assert state.stats.block_renders["retransmit"] == renders + 1
    assert b'dst_pod="web"' in state.agents["a"].retransmits.fragment
    assert state.refresh_identities() == 0
    pod_map.delete_pod(web.key)
    state.refresh_identities()
    assert b'dst_pod="10.1.0.5"' in state.agents["a"].retransmits.fragment


def test_static_addresses_name_nodes_until_they_expire() -> None:
    clock = FakeClock()
    state = CollectorState(Limits(report_ttl=10), clock=clock)
    state.accept(report("a", "10.0.0.1", retransmits=(flow("10.0.0.1", "10.0.0.2"),)))
    assert b'dst_pod="10.0.0.2"' in state.agents["a"].retransmits.fragment
    clock.advance(5)
    state.accept(report("b", "10.0.0.2"))
    state.refresh_identities()
    assert b'dst_pod="b"' in state.agents["a"].retransmits.fragment
    clock.advance(6)
    assert state.expire() == ["a"]
    clock.advance(5)
    state.accept(report("a", "10.0.0.1", retransmits=(flow("10.0.0.1", "10.0.0.2"),)))
    clock.advance(6)
    assert state.expire() == ["b"]
    state.refresh_identities()
    assert b'dst_pod="10.0.0.2"' in state.agents["a"].retransmits.fragment
    assert list(state.latest_results()) == []
