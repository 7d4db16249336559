"""Real agents, real iperf3, on loopback addresses (no root needed)."""

from __future__ import annotations

import math
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.agents import AgentProcess, promtool_check, sample
from tests.helpers import free_port, wait_for

SLOT = 2.0  # FAST settings: 1 s test + 0 s omit + 1 s guard


@pytest.fixture
def pair(tmp_path: pathlib.Path) -> Iterator[tuple[AgentProcess, AgentProcess]]:
    a = AgentProcess("node-a", "127.0.0.2", tmp_path)
    b = AgentProcess("node-b", "127.0.0.3", tmp_path)
    a.env["NETMESH_STATIC_PEERS"] = b.env["NETMESH_STATIC_PEERS"] = ",".join(
        f"{n}={addr}:{port}" for n, addr, port in (a.peer, b.peer)
    )
    try:
        yield a.start(), b.start()
    finally:
        a.stop()
        b.stop()


def _measured(agent: AgentProcess, peer: str) -> str | None:
    text = agent.metrics()
    for proto in ("tcp", "udp"):
        labels = {"source_node": agent.name, "destination_node": peer, "protocol": proto}
        if sample(text, "netmesh_path_success", **labels) != 1.0:
            return None
        bw = sample(text, "netmesh_path_bandwidth_bytes_per_second", **labels)
        if not bw or bw <= 0:
            return None
    return text


def test_two_agents_measure_each_other(pair: tuple[AgentProcess, AgentProcess]) -> None:
    a, b = pair
    texts = {}
    for agent, peer in ((a, b), (b, a)):
        texts[agent.name] = wait_for(
            lambda agent=agent, peer=peer: _measured(agent, peer.name),
            30,
            interval=0.5,
            what=f"{agent.name} to measure {peer.name}",
        )
    for agent, peer in ((a, b), (b, a)):
        text = texts[agent.name]
        tcp = {"source_node": agent.name, "destination_node": peer.name, "protocol": "tcp"}
        udp = {**tcp, "protocol": "udp"}
        rtt = sample(text, "netmesh_path_rtt_seconds", **tcp)
        assert rtt is not None and 0 < rtt < 0.1
        assert sample(text, "netmesh_path_retransmits", **tcp) is not None
        jitter = sample(text, "netmesh_path_jitter_seconds", **udp)
        assert jitter is not None and math.isfinite(jitter)
        loss = sample(text, "netmesh_path_loss_ratio", **udp)
        # Loopback drops a few datagrams when the 2 cores are busy; a broken
        # loss computation gives 1.0 or nothing.
        assert loss is not None and 0.0 <= loss < 0.2
        assert sample(text, "netmesh_path_tests_total", result="ok", **tcp) >= 1  # type: ignore[operator]
        assert sample(text, "netmesh_agent_iperf3_server_up") == 1.0
        assert sample(text, "netmesh_path_success", destination_node=agent.name) is None
        problems = promtool_check(text)
        assert problems == "", problems
    report = a.report()
    assert report["schema"] == 1 and report["node"] == "node-a"
    assert {(r["destination"], r["protocol"]) for r in report["results"]} == {
        ("node-b", "tcp"),
        ("node-b", "udp"),
    }
    udp_result = next(r for r in report["results"] if r["protocol"] == "udp")
    assert udp_result["packets"] > 0


def _server_pid(agent: AgentProcess) -> int | None:
    out = subprocess.run(
        ["pgrep", "-f", f"iperf3 -s -B {agent.address} -p {agent.iperf3_port}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return int(out[0]) if len(out) == 1 else None


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "stopped"])
def test_iperf3_server_restarts_within_5s(tmp_path: pathlib.Path, sig: signal.Signals) -> None:
    agent = AgentProcess("solo", "127.0.0.4", tmp_path).start()
    try:
        wait_for(
            lambda: sample(agent.metrics(), "netmesh_agent_iperf3_server_up") == 1.0,
            10,
            what="server up",
        )
        old = wait_for(lambda: _server_pid(agent), 5, what="server pid")
        os.kill(old, sig)
        hit = time.monotonic()
        new = wait_for(
            lambda: (
                (p := _server_pid(agent)) is not None
                and p != old
                and sample(agent.metrics(), "netmesh_agent_iperf3_server_up") == 1.0
                and p
            ),
            10,
            interval=0.05,
            what="a new, answering server",
        )
        restart_seconds = time.monotonic() - hit
        print(f"iperf3 server {sig.name}: restarted and answering after {restart_seconds:.2f}s")
        assert restart_seconds < 5.0
        assert new != old
        assert sample(agent.metrics(), "netmesh_agent_iperf3_server_restarts_total") == 1.0
    finally:
        agent.stop()
    assert _server_pid(agent) is None, "the agent left its iperf3 server behind"


def test_stopped_peer_fails_within_deadline_and_next_slot_is_on_time(
    tmp_path: pathlib.Path,
) -> None:
    port = free_port("127.0.0.6")
    peer = subprocess.Popen(
        ["iperf3", "-s", "-B", "127.0.0.6", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    agent = AgentProcess("client", "127.0.0.5", tmp_path, peers=[("frozen", "127.0.0.6", port)])
    agent.start()
    try:
        wait_for(
            lambda: any(r["result"] == "ok" for r in agent.report()["results"]),
            15,
            interval=0.2,
            what="a first successful test",
        )
        peer.send_signal(signal.SIGSTOP)
        frozen_at = time.time()

        def failed_after_freeze() -> list[dict[str, object]]:
            return [
                r
                for r in agent.report()["results"]
                if r["result"] != "ok" and float(r["started_at"]) > frozen_at
            ]  # type: ignore[arg-type]

        failures = wait_for(
            lambda: len(failed_after_freeze()) >= 2 and failed_after_freeze(),
            15,
            interval=0.2,
            what="two failed tests after the freeze",
        )
        for r in failures:
            assert r["result"] == "timeout", r
            assert "no result within" in str(r["message"])
            started, took = float(r["started_at"]), float(r["duration_seconds"])  # type: ignore[arg-type]
            slot_start = math.floor(started / SLOT) * SLOT
            print(
                f"failed test gave up after {took:.2f}s, started {started - slot_start:.3f}s "
                "into its slot"
            )
            assert started + took <= slot_start + SLOT, "the test overran its slot"
            assert started - slot_start < 0.5, "the slot after a failure started late"
        assert {r["protocol"] for r in failures} == {"tcp", "udp"}
    finally:
        peer.send_signal(signal.SIGCONT)
        peer.kill()
        peer.wait()
        agent.stop()
