"""Agent settings: flags, NETMESH_ environment, validation with clear messages."""

from __future__ import annotations

import pytest

from agent.settings import AgentSettings, parse_peers
from netmesh.config import SettingsError, load
from netmesh.units import parse_bitrate
from netmesh.wire import Member

BASE = {"NETMESH_NODE_NAME": "node-1", "NETMESH_BIND_ADDRESS": "10.0.0.1"}


def test_defaults_and_env() -> None:
    s = load(AgentSettings, [], {**BASE, "NETMESH_TEST_DURATION": "7", "NETMESH_PROTOCOLS": "udp"})
    assert s.test_duration == 7
    assert s.protocol_list == ("udp",)
    assert s.address == "10.0.0.1"
    assert s.iperf3_port == 5201


def test_flag_beats_env() -> None:
    s = load(AgentSettings, ["--test-duration", "3"], {**BASE, "NETMESH_TEST_DURATION": "7"})
    assert s.test_duration == 3


def test_static_peers_and_bitrate() -> None:
    s = load(
        AgentSettings,
        ["--static-peers", "a=10.0.0.2,b=10.0.0.3:5301,c=[fd00::1]:5202", "--udp-bitrate", "1.5G"],
        BASE,
    )
    assert s.static_peers == (
        Member(name="a", address="10.0.0.2", iperf3_port=5201),
        Member(name="b", address="10.0.0.3", iperf3_port=5301),
        Member(name="c", address="fd00::1", iperf3_port=5202),
    )
    assert s.udp_bitrate == 1_500_000_000
    assert parse_bitrate("500k") == 500_000


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"NETMESH_IPERF3_PORT": "70000"}, "iperf3_port 70000"),
        ({"NETMESH_HTTP_PORT": "5201"}, "must differ"),
        ({"NETMESH_PROTOCOLS": "tcp,sctp"}, "unknown protocol 'sctp'"),
        ({"NETMESH_TEST_DURATION": "0"}, "test_duration"),
        ({"NETMESH_TEST_DURATION": "five"}, "NETMESH_TEST_DURATION='five'"),
        ({"NETMESH_REPORT_TIMEOUT": "30"}, "report_timeout"),
        ({"NETMESH_BIND_ADDRESS": "0.0.0.0"}, "advertise_address: required"),
        ({"NETMESH_BIND_ADDRESS": "not-an-ip"}, "not an IP address"),
        ({"NETMESH_COLLECTOR_URL": "collector:9100"}, "must start with http"),
        ({"NETMESH_STATIC_PEERS": "a=1.2.3"}, "NETMESH_STATIC_PEERS"),
        ({"NETMESH_STATIC_PEERS": "a=10.0.0.1,a=10.0.0.2"}, "duplicate"),
        ({"NETMESH_GUARD_SECONDS": "0.1"}, "guard_seconds"),
        ({"NETMESH_NODE_NAME": "bad name!"}, "node_name"),
        ({"NETMESH_CONCURRENCY": "-1"}, "concurrency"),
        ({"NETMESH_UDP_BITRATE": "fast"}, "not a rate"),
    ],
)
def test_invalid_settings_are_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        load(AgentSettings, [], {**BASE, **env})
    assert needle in str(err.value)


def test_all_problems_in_one_message() -> None:
    with pytest.raises(SettingsError) as err:
        load(AgentSettings, [], {**BASE, "NETMESH_HTTP_PORT": "0", "NETMESH_PROTOCOLS": "icmp"})
    assert "http_port 0" in str(err.value) and "icmp" in str(err.value)


def test_missing_node_name() -> None:
    with pytest.raises(SettingsError, match="NETMESH_NODE_NAME"):
        load(AgentSettings, [], {"NETMESH_BIND_ADDRESS": "10.0.0.1"})


def test_parse_peers_rejects_hostnames() -> None:
    with pytest.raises(ValueError):
        parse_peers("a=example.com")


def test_labels_and_link_speed() -> None:
    s = load(
        AgentSettings,
        ["--labels", "zone=eu-1a, rack=r1"],
        {**BASE, "NETMESH_LINK_SPEED": "10G"},
    )
    assert s.labels == (("rack", "r1"), ("zone", "eu-1a"))
    assert s.link_speed == 10_000_000_000
    assert load(AgentSettings, [], BASE).link_speed == 0  # 0 = from sysfs


@pytest.mark.parametrize(
    ("labels", "needle"),
    [
        ("zone", "'zone' is not key=value"),
        ("zone=a b", "label zone='a b': value must be"),
        ("-x=a", "label key '-x'"),
        ("zone=a,zone=b", "label 'zone' given twice"),
    ],
)
def test_bad_labels_are_named(labels: str, needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        load(AgentSettings, [], {**BASE, "NETMESH_LABELS": labels})
    assert "NETMESH_LABELS=" in str(err.value) and needle in str(err.value)


def test_bad_link_speed_is_named() -> None:
    with pytest.raises(SettingsError, match="NETMESH_LINK_SPEED='fast'"):
        load(AgentSettings, [], {**BASE, "NETMESH_LINK_SPEED": "fast"})
