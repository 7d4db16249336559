"""Builders of agent reports for collector tests (the wire types from netmesh.wire)."""

from __future__ import annotations

from typing import Any

from netmesh.dnsreport import RESULTS, DnsStatus
from netmesh.servicereport import RESULTS as SERVICE_RESULTS
from netmesh.servicereport import ServiceStatus
from netmesh.wire import (
    AgentHealth,
    LightPath,
    LightStatus,
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
    light: LightStatus | None = None,
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
        light=light,
    )


def light_path(destination: str, *, lost: int = 0, **kw: Any) -> LightPath:
    """A 10 s window of 100 probes to ``destination``; ``lost`` of them lost on the way there."""
    values: dict[str, Any] = {
        "destination": destination,
        "window_seconds": 10.0,
        "sent": 100,
        "received": 100 - lost,
        "loss_ratio": lost / 100,
        "forward_sent": 99,
        "forward_received": 99 - lost,
        "forward_loss_ratio": lost / 99,
        "return_sent": 99 - lost,
        "return_received": 99 - lost,
        "return_loss_ratio": 0.0,
        "rtt_min_seconds": 0.0001,
        "rtt_median_seconds": 0.0002,
        "rtt_p99_seconds": 0.0009,
        "rtt_mean_seconds": 0.00025,
        "jitter_seconds": 0.00003,
        "mtu_size": 1500,
        "mtu_sent": 1,
        "mtu_received": 1,
        # cumulative since probing began (1,000 RTTs, 10 buckets: RTT_BUCKETS)
        "rtt_bucket_counts": (0, 100, 700, 950, 990, 995, 998, 999, 1000, 1000),
        "rtt_count": 1000,
        "rtt_sum_seconds": 0.25,
    }
    values.update(kw)
    return LightPath(**values)


def light_status(*paths: LightPath, reason: str = "") -> LightStatus:
    return LightStatus(
        up=0 if reason else 1, reason=reason, port=5202, peers=len(paths), probes_sent=1000,
        echoes_received=990, paths=paths,
    )  # fmt: skip


def dns_status(
    *,
    lookups: int = 6,
    failures: int = 0,
    failure: str = "timeout",
    answers: tuple[str, ...] = ("10.96.0.1",),
    median: float | None = 0.002,
    name: str = "kubernetes.default.svc.cluster.local",
) -> DnsStatus:
    """A DNS check's status: ``lookups`` in the window, ``failures`` of them ``failure``."""
    window = [("ok", lookups - failures)] if lookups > failures else []
    if failures:
        window.append((failure, failures))
    return DnsStatus(
        up=1, name=name, servers=("10.96.0.10",),
        lookups=tuple((r, dict(window).get(r, 0) * 10) for r in RESULTS),
        window_seconds=30.0, window_lookups=lookups, window_failures=failures,
        window_results=tuple(window), latency_median_seconds=median,
        latency_p99_seconds=None if median is None else 2 * median,
        answers=answers if lookups > failures else (),
        last_error="The DNS operation timed out." if failures else "",
    )  # fmt: skip


def service_status(
    *,
    connects: int = 6,
    failures: int = 0,
    failure: str = "timeout",
    median: float | None = 0.001,
    target: str = "netmesh-collector.netmesh.svc.cluster.local:8080",
) -> ServiceStatus:
    """A Service check's status: ``connects`` in the window, ``failures`` of them ``failure``."""
    window = [("ok", connects - failures)] if connects > failures else []
    if failures:
        window.append((failure, failures))
    return ServiceStatus(
        up=1, target=target, address="10.96.12.34",
        connects=tuple((r, dict(window).get(r, 0) * 10) for r in SERVICE_RESULTS),
        window_seconds=30.0, window_connects=connects, window_failures=failures,
        window_results=tuple(window), latency_median_seconds=median,
        latency_p99_seconds=None if median is None else 2 * median,
        last_error="no answer to the connect (SYN) in time" if failures else "",
    )  # fmt: skip


def flow(local: str, remote: str, port: int = 5201, count: int = 5) -> RetransmitFlow:
    return RetransmitFlow(local=local, remote=remote, port=port, count=count)
