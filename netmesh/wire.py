"""The agent ↔ collector wire format: reports (agent → collector) and member lists (back).

This module is the one part of the agent the collector may import. It holds
plain frozen dataclasses, their JSON forms, and strict parsers that turn
untrusted JSON into them or raise ``WireError`` with a reason a human can act
on. Nothing here does I/O.

Schema version 1::

    report = {
      "schema": 1, "node": str, "network": "host"|"pod",   # absent = host (older agents)
      "address": str, "iperf3_port": int,
      "http_port": int, "generated_at": float, "started_at": float,
      "results": [test_result, ...],          # latest per (peer, protocol)
      "tests": [{"destination", "protocol", "result", "count"}, ...],  # counters
      "agent": {"iperf3_server_up": 0|1, "iperf3_server_restarts": int,
                "scheduler_lag_seconds": float, "skipped_tests": int,
                "members": int, "epoch": int, "slot_seconds": float,
                "report_interval": float},
      "probe": {"mode": str, "up": 0|1, "reason": str, ...} | null,
      "retransmits": [{"local", "remote", "port", "count"}, ...],
      "light": {"up": 0|1, "reason": str, "port": int, "peers": int,
                "probes_sent": int, "echoes_received": int, "dropped_strangers": int,
                "dropped_malformed": int, "send_errors": int,
                "paths": [light_path, ...]} | null,   # absent from older agents
      "labels": {str: str},                   # topology (zone=, rack=); absent: none
      "link_speed_bits_per_second": int | null, # the advertise interface's speed
      "dns": {"up": 0|1, "reason": str, "name": str, "lookups": {result: int},
              "window_lookups": int, "window_failures": int, ...} | null,
                                              # netmesh/dnsreport.py; absent from older agents
      "service": {"up": 0|1, "reason": str, "target": "host:port", "address": str,
                  "connects": {result: int}, "window_connects": int, "window_failures": int,
                  ...} | null,                 # netmesh/servicereport.py; absent: no check
      "drops": {...} | null   # kernel drop reasons, netmesh/dropreport.py; absent from older agents
    }
    members_response = ({"epoch": int, "members": [{"name", "address", "iperf3_port"}]}
                     | {"epoch": int, "unchanged": true})
                     + {"sweeps": [sweep, ...]}   # on-demand sweeps (netmesh/ondemand.py)

A test result carries ``"sweep": id`` when an on-demand sweep ran it; the
agent block carries ``slot_seconds`` and ``report_interval`` (the collector
places sweeps on the agents' slot grid and starts them a few reports ahead).

The short "unchanged" answer comes when the report's ``agent.epoch`` is the
collector's current epoch: the agent already plans with that list (at 5,000
members the full list is ~320 KB per report, sent 500 times a second).
Epochs start from the collector's wall clock in milliseconds, so an epoch
from an earlier collector never matches by accident.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from netmesh.dnsreport import DnsStatus, dns_to_json, parse_dns
from netmesh.dropreport import DropFlow, DropReason, DropStatus, parse_drops
from netmesh.jsonreader import JsonReader, WireError, kind
from netmesh.labels import MAX_LABELS, Labels, check_labels
from netmesh.lightreport import LightPath, LightStatus, parse_light
from netmesh.ondemand import Sweep, parse_sweeps
from netmesh.servicereport import ServiceStatus, parse_service, service_to_json

__all__ = [  # WireError is the wire format's error, raised by the reader
    "NETWORKS",
    "PROTOCOLS",
    "RESULTS",
    "SCHEMA_VERSION",
    "AgentHealth",
    "DnsStatus",
    "DropFlow",
    "DropReason",
    "DropStatus",
    "LightPath",
    "LightStatus",
    "Member",
    "MemberList",
    "Network",
    "ProbeStatus",
    "Report",
    "RetransmitFlow",
    "ServiceStatus",
    "TestCount",
    "TestResult",
    "Transport",
    "WireError",
    "parse_member_list",
    "parse_member_response",
    "parse_report",
    "parse_report_answer",
    "parse_test_result",
    "sorted_members",
]

SCHEMA_VERSION = 1

Transport = Literal["tcp", "udp"]
PROTOCOLS: tuple[Transport, ...] = ("tcp", "udp")

# Which network an endpoint measures on: the node's (hostNetwork agents) or the
# pod network (pod-network endpoints). The same node has one endpoint of each.
Network = Literal["host", "pod"]
NETWORKS: tuple[Network, ...] = ("host", "pod")

# Why a test did not succeed. "ok" is the success value.
RESULTS: tuple[str, ...] = (
    "ok",
    "busy",  # the peer's iperf3 server was running another test
    "refused",  # nothing listens on the peer's port
    "unreachable",  # no route / host unreachable
    "timeout",  # the test hit its deadline and was killed
    "garbage",  # iperf3 printed something that is not its JSON
    "error",  # any other iperf3 error (message says which)
)

MAX_MESSAGE = 512
MAX_RESULTS = 4096
MAX_TEST_COUNTERS = 4096 * len(RESULTS)
MAX_RETRANSMIT_FLOWS = 4096
MAX_MEMBERS = 100_000
MAX_SWEEP_ID = 64


@dataclass(frozen=True, kw_only=True, order=True)
class Member:
    """One node of the mesh as every agent sees it."""

    name: str
    address: str
    iperf3_port: int = 5201

    def sort_key(self) -> tuple[str, str, int]:
        return (self.name, self.address, self.iperf3_port)


def sorted_members(members: Iterable[Member]) -> tuple[Member, ...]:
    """Members in their canonical order (by name), as every agent must see them.

    Same order as the dataclass ordering, ~3x faster than comparing dataclasses
    (at 5,000 members: 1.6 ms instead of 4.7 ms).
    """
    return tuple(sorted(members, key=Member.sort_key))


@dataclass(frozen=True, kw_only=True)
class TestResult:
    """The outcome of one iperf3 client test from ``source`` to ``destination``.

    Rates are bits per second; times are seconds. Measurements that a test did
    not produce (a failed test, UDP fields of a TCP test) are None.
    """

    __test__ = False  # not a pytest test class

    source: str
    destination: str
    protocol: Transport
    result: str
    message: str = ""
    started_at: float = 0.0
    duration_seconds: float = 0.0
    sent_bits_per_second: float | None = None
    received_bits_per_second: float | None = None
    retransmits: int | None = None
    rtt_min_seconds: float | None = None
    rtt_mean_seconds: float | None = None
    rtt_max_seconds: float | None = None
    jitter_seconds: float | None = None
    lost_packets: int | None = None
    packets: int | None = None
    loss_ratio: float | None = None
    sweep: str = ""  # the on-demand sweep that ran the test (netmesh/ondemand.py); "" = the plan

    @property
    def ok(self) -> bool:
        return self.result == "ok"


@dataclass(frozen=True, kw_only=True)
class TestCount:
    __test__ = False  # not a pytest test class
    destination: str
    protocol: Transport
    result: str
    count: int


@dataclass(frozen=True, kw_only=True)
class RetransmitFlow:
    """Kernel-counted TCP retransmissions of one endpoint pair (ephemeral port folded)."""

    local: str
    remote: str
    port: int
    count: int


@dataclass(frozen=True, kw_only=True)
class AgentHealth:
    iperf3_server_up: int = 0
    iperf3_server_restarts: int = 0
    scheduler_lag_seconds: float = 0.0
    skipped_tests: int = 0
    members: int = 0
    epoch: int = 0
    slot_seconds: float = 0.0  # the test plan's slot (on-demand sweeps use the same grid)
    report_interval: float = 0.0  # seconds between reports (how soon a sweep reaches it)


@dataclass(frozen=True, kw_only=True)
class ProbeStatus:
    mode: str = "none"
    up: int = 0
    reason: str = ""
    map_entries: int = 0
    map_capacity: int = 0
    evictions: int = 0


@dataclass(frozen=True, kw_only=True)
class Report:
    node: str
    address: str
    iperf3_port: int
    http_port: int
    generated_at: float
    started_at: float
    results: tuple[TestResult, ...] = ()
    tests: tuple[TestCount, ...] = ()
    agent: AgentHealth = field(default_factory=AgentHealth)
    probe: ProbeStatus | None = None
    retransmits: tuple[RetransmitFlow, ...] = ()
    light: LightStatus | None = None
    labels: Labels = ()  # sorted (key, value) pairs (netmesh/labels.py)
    link_speed_bits_per_second: int | None = None
    drops: DropStatus | None = None
    dns: DnsStatus | None = None
    service: ServiceStatus | None = None
    network: Network = "host"
    schema: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["labels"] = dict(self.labels)
        if self.dns is not None:
            out["dns"] = dns_to_json(self.dns)
        if self.service is not None:
            out["service"] = service_to_json(self.service)
        return out


@dataclass(frozen=True, kw_only=True)
class MemberList:
    epoch: int
    members: tuple[Member, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "members": [
                {"name": m.name, "address": m.address, "iperf3_port": m.iperf3_port}
                for m in self.members
            ],
        }


# --------------------------------------------------------------------------- parsing


def _protocol(reader: JsonReader, key: str = "protocol") -> Transport:
    value = reader.string(key, max_len=8)
    if value not in PROTOCOLS:
        raise WireError(f"{reader.child(key)}: unknown protocol {value!r} (tcp or udp)")
    return value


def _network(reader: JsonReader, key: str = "network") -> Network:
    value = reader.get(key, "host")
    if value not in NETWORKS:
        raise WireError(f"{reader.child(key)}: unknown network {value!r} (host or pod)")
    return "pod" if value == "pod" else "host"


def _result_name(reader: JsonReader, key: str = "result") -> str:
    value = reader.string(key, max_len=16)
    if value not in RESULTS:
        raise WireError(f"{reader.child(key)}: unknown result {value!r}")
    return value


def _address(reader: JsonReader, key: str) -> str:
    value = reader.string(key, max_len=64)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise WireError(f"{reader.child(key)}: {value!r} is not an IP address") from None
    return value


def parse_test_result(obj: Any, path: str = "result") -> TestResult:
    r = JsonReader(obj, path)
    return TestResult(
        source=r.string("source"),
        destination=r.string("destination"),
        protocol=_protocol(r),
        result=_result_name(r),
        message=r.string("message", max_len=MAX_MESSAGE, allow_empty=True),
        started_at=r.number("started_at"),
        duration_seconds=r.number("duration_seconds", high=86400),
        sent_bits_per_second=r.optional_number("sent_bits_per_second"),
        received_bits_per_second=r.optional_number("received_bits_per_second"),
        retransmits=r.optional_integer("retransmits"),
        rtt_min_seconds=r.optional_number("rtt_min_seconds", high=3600),
        rtt_mean_seconds=r.optional_number("rtt_mean_seconds", high=3600),
        rtt_max_seconds=r.optional_number("rtt_max_seconds", high=3600),
        jitter_seconds=r.optional_number("jitter_seconds", high=3600),
        lost_packets=r.optional_integer("lost_packets"),
        packets=r.optional_integer("packets"),
        loss_ratio=r.optional_number("loss_ratio", high=1.0),
        sweep=r.string("sweep", max_len=MAX_SWEEP_ID, allow_empty=True) if "sweep" in obj else "",
    )


def parse_report(obj: Any) -> Report:
    """Validate an agent report from untrusted JSON; raise WireError on any problem.

    Every check lives here: types and bounds, encodable strings (every string is
    read with ``JsonReader.string``, which checks it: a walk over the whole object
    first cost a third of the parse at 20 light-tier paths), results of the
    reporting node only, one result per path and one counter per path and result.
    """
    r = JsonReader(obj, "")
    schema = r.get("schema")
    if schema != SCHEMA_VERSION:
        raise WireError(
            f"schema: version {schema!r} is not supported (this side speaks {SCHEMA_VERSION})"
        )
    node = r.string("node")
    results = tuple(
        parse_test_result(item, r.child("results", i))
        for i, item in enumerate(r.items("results", limit=MAX_RESULTS))
    )
    for i, res in enumerate(results):
        if res.source != node:
            raise WireError(
                f"results[{i}].source: {res.source!r} is not the reporting node {node!r}"
            )
    tests = []
    for i, item in enumerate(r.items("tests", limit=MAX_TEST_COUNTERS, default=[])):
        t = JsonReader(item, r.child("tests", i))
        tests.append(
            TestCount(
                destination=t.string("destination"),
                protocol=_protocol(t),
                result=_result_name(t),
                count=t.integer("count"),
            )
        )
    flows = []
    for i, item in enumerate(r.items("retransmits", limit=MAX_RETRANSMIT_FLOWS, default=[])):
        f = JsonReader(item, r.child("retransmits", i))
        local = f.string("local", max_len=64)
        remote = f.string("remote", max_len=64)
        if local != "other":
            _address(f, "local")
            _address(f, "remote")
        flows.append(
            RetransmitFlow(
                local=local,
                remote=remote,
                port=f.integer("port", high=65535),
                count=f.integer("count"),
            )
        )
    agent_obj = r.get("agent", None)
    agent = AgentHealth()
    if agent_obj is not None:
        a = JsonReader(agent_obj, "agent")
        agent = AgentHealth(
            iperf3_server_up=a.integer("iperf3_server_up", high=1, default=0),
            iperf3_server_restarts=a.integer("iperf3_server_restarts", default=0),
            scheduler_lag_seconds=a.number("scheduler_lag_seconds", default=0.0),
            skipped_tests=a.integer("skipped_tests", default=0),
            members=a.integer("members", default=0),
            epoch=a.integer("epoch", default=0),
            slot_seconds=a.number("slot_seconds", high=86400, default=0.0),
            report_interval=a.number("report_interval", high=86400, default=0.0),
        )
    probe_obj = r.get("probe", None)
    probe = None
    if probe_obj is not None:
        p = JsonReader(probe_obj, "probe")
        probe = ProbeStatus(
            mode=p.string("mode", max_len=16),
            up=p.integer("up", high=1),
            reason=p.string("reason", max_len=MAX_MESSAGE, allow_empty=True),
            map_entries=p.integer("map_entries", default=0),
            map_capacity=p.integer("map_capacity", default=0),
            evictions=p.integer("evictions", default=0),
        )
    light = parse_light(r.get("light", None), node)
    labels = _labels(r)
    speed = r.get("link_speed_bits_per_second", None)
    link_speed = (
        None if speed is None else r.integer("link_speed_bits_per_second", low=1, high=10**13)
    )
    report = Report(
        node=node,
        address=_address(r, "address"),
        iperf3_port=r.integer("iperf3_port", low=1, high=65535),
        http_port=r.integer("http_port", low=1, high=65535),
        generated_at=r.number("generated_at"),
        started_at=r.number("started_at"),
        results=results,
        tests=tuple(tests),
        agent=agent,
        probe=probe,
        retransmits=tuple(flows),
        light=light,
        labels=labels,
        link_speed_bits_per_second=link_speed,
        drops=parse_drops(r.get("drops", None)),
        dns=parse_dns(r.get("dns", None)),
        service=parse_service(r.get("service", None)),
        network=_network(r),
    )
    _check_unique(report)
    return report


def _labels(reader: JsonReader) -> Labels:
    obj = reader.get("labels", None)
    if obj is None:
        return ()
    if not isinstance(obj, dict):
        raise WireError(f"labels: expected an object, got {kind(obj)}")
    if len(obj) > MAX_LABELS:
        raise WireError(f"labels: {len(obj)} labels, at most {MAX_LABELS}")
    for key, value in obj.items():
        if not isinstance(value, str):
            raise WireError(f"labels.{key}: expected a string, got {kind(value)}")
    try:
        return check_labels(obj.items())
    except ValueError as exc:
        raise WireError(f"labels: {exc}") from None


def _check_unique(report: Report) -> None:
    """One latest result per path and one counter per path and result (else duplicate series)."""
    paths: set[tuple[str, str]] = set()
    for i, r in enumerate(report.results):
        if (r.destination, r.protocol) in paths:
            raise WireError(f"results[{i}]: a second result for {r.destination!r} {r.protocol}")
        paths.add((r.destination, r.protocol))
    counters: set[tuple[str, str, str]] = set()
    for i, t in enumerate(report.tests):
        if (t.destination, t.protocol, t.result) in counters:
            raise WireError(
                f"tests[{i}]: a second counter for {t.destination!r} {t.protocol} {t.result}"
            )
        counters.add((t.destination, t.protocol, t.result))


def parse_member_response(obj: Any, current: MemberList) -> MemberList:
    """The member list a report's response gives: a new list, or ``current`` when unchanged."""
    if isinstance(obj, dict) and "unchanged" in obj:
        r = JsonReader(obj, "")
        if obj["unchanged"] is not True:
            raise WireError("unchanged: expected true")
        epoch = r.integer("epoch")
        if epoch != current.epoch:
            raise WireError(f"unchanged: epoch {epoch} is not the agent's epoch {current.epoch}")
        return current
    return parse_member_list(obj)


def parse_report_answer(obj: Any, current: MemberList) -> tuple[MemberList, tuple[Sweep, ...]]:
    """A report's whole answer: the member list (or ``current``) and the on-demand sweeps."""
    return parse_member_response(obj, current), parse_sweeps(obj)


def parse_member_list(obj: Any) -> MemberList:
    """Validate a full member list (the collector's response to a report)."""
    r = JsonReader(obj, "")
    members = []
    for i, item in enumerate(r.items("members", limit=MAX_MEMBERS)):
        m = JsonReader(item, r.child("members", i))
        members.append(
            Member(
                name=m.string("name"),
                address=_address(m, "address"),
                iperf3_port=m.integer("iperf3_port", low=1, high=65535),
            )
        )
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise WireError("members: duplicate node names")
    return MemberList(epoch=r.integer("epoch"), members=sorted_members(members))
