"""The iperf3 client command line (what the runner asks iperf3 to do)."""

from __future__ import annotations

from agent.runner import ClientOptions, client_command
from netmesh.wire import Member

PEER = Member(name="b", address="10.0.0.2", iperf3_port=5301)
OPTS = ClientOptions(
    duration=5, omit=1, udp_bitrate=50_000_000, connect_timeout=1.5, bind_address="10.0.0.1"
)


def test_tcp_command_omits_slow_start() -> None:
    cmd = client_command(PEER, "tcp", OPTS)
    assert cmd[:6] == ["iperf3", "-c", "10.0.0.2", "-p", "5301", "--json"]
    assert cmd[cmd.index("-t") + 1] == "5" and cmd[cmd.index("-O") + 1] == "1"
    assert cmd[cmd.index("--connect-timeout") + 1] == "1500"
    assert cmd[cmd.index("-B") + 1] == "10.0.0.1"
    assert "-u" not in cmd


def test_udp_command_never_omits() -> None:
    cmd = client_command(PEER, "udp", OPTS)
    assert "-u" in cmd and cmd[cmd.index("-b") + 1] == "50000000"
    assert "-O" not in cmd  # iperf3 3.12 would count the omitted packets as lost
