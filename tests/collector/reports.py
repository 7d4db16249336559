"""Builders of agent reports for collector tests (the wire types from netmesh.wire)."""

from __future__ import annotations

from typing import Any

from netmesh.wire import (
    AgentHealth,
    ProbeStatus,
    Report,
    RetransmitFlow,
    TestCount,
    TestResult,
    Transport,
)


def result(
    source: str, destination: str, protocol: Transport = "tcp", *, ok: bool = True, **kw: Any
) -> TestResult:
    values: dict[str, Any] = {
        "source": source,
        "destination": destination,
        "protocol": protocol,
        "result": "ok" if ok else "refused",
        "message": "" if ok else "connection refused",
        "started_at": 1_700_000_000.0,
        "duration_seconds": 1.2,
    }
    if ok and protocol == "tcp":
        values.update(
            sent_bits_per_second=9.5e9,
            received_bits_per_second=9.4e9,
            retransmits=3,
            rtt_min_seconds=0.00001,
            rtt_mean_seconds=0.00002,
            rtt_max_seconds=0.00005,
        )
    elif ok:
        values.update(
            sent_bits_per_second=1e8,
            received_bits_per_second=0.99e8,
            jitter_seconds=0.00001,
            lost_packets=1,
            packets=1000,
            loss_ratio=0.001,
        )
    values.update(kw)
    return TestResult(**values)


def report(
    node: str,
    address: str = "10.0.0.1",
    peers: tuple[str, ...] = (),
    *,
    iperf3_port: int = 5201,
    retransmits: tuple[RetransmitFlow, ...] = (),
    probe: ProbeStatus | None = None,
    protocols: tuple[Transport, ...] = ("tcp", "udp"),
    failing: tuple[str, ...] = (),
) -> Report:
    results = tuple(
        result(node, peer, proto, ok=peer not in failing) for peer in peers for proto in protocols
    )
    tests = tuple(
        TestCount(destination=r.destination, protocol=r.protocol, result=r.result, count=2)
        for r in results
    )
    return Report(
        node=node,
        address=address,
        iperf3_port=iperf3_port,
        http_port=9101,
        generated_at=1_700_000_010.0,
        started_at=1_699_999_000.0,
        results=results,
        tests=tests,
        agent=AgentHealth(iperf3_server_up=1, members=len(peers) + 1, epoch=7),
        probe=probe,
        retransmits=retransmits,
    )


def flow(local: str, remote: str, port: int = 5201, count: int = 5) -> RetransmitFlow:
    return RetransmitFlow(local=local, remote=remote, port=port, count=count)
