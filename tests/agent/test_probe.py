"""The retransmission probe without a kernel: port range, filter, checks, draining, loop, metrics.

The real BPF program runs in tests/e2e/test_probe.py.
"""

from __future__ import annotations

import ipaddress
import json
import pathlib
import re
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest

from agent.metrics import make_registry
from agent.probe import Probe, probe_config
from agent.probe_logic import (
    SOURCE_PATH,
    STAT_COUNT,
    STAT_INSERTS,
    Drainer,
    Entry,
    KernelFeatures,
    ProbeConfig,
    ProbeUnavailable,
    capabilities,
    choose_variant,
    decode_key,
    filter_macros,
    find_kernel_headers,
    parse_cidrs,
    parse_port_range,
    privilege_problem,
    render_source,
    skb_segs_offset,
)
from agent.settings import AgentSettings
from agent.state import AgentState
from netmesh.config import SettingsError, load
from netmesh.wire import Member, ProbeStatus, RetransmitFlow, parse_report

A, B = ("10.203.0.1", "10.203.0.2")


# --------------------------------------------------------------------------- port range


def test_parse_port_range() -> None:
    assert parse_port_range("32768\t60999\n") == (32768, 60999)
    with pytest.raises(ValueError, match="not a port range"):
        parse_port_range("60999")
    with pytest.raises(ValueError, match="not a port range"):
        parse_port_range("9 1")


# --------------------------------------------------------------------------- filter


def _eval_macro(macro: str, **values: int) -> bool:
    """Evaluate a generated C filter macro in Python (the same integer semantics)."""
    _, body = re.match(r"#define \w+\(([^)]*)\) (.*)", macro).groups()  # type: ignore[union-attr]
    expr = re.sub(r"(0x[0-9a-f]+)u(ll)?", r"\1", body).replace("&&", " and ").replace("||", " or ")
    return bool(eval(expr, {}, values))


def _v6_halves(addr: ipaddress.IPv6Address) -> dict[str, int]:
    n = int(addr)
    return {"hi": n >> 64, "lo": n & (2**64 - 1)}


@given(
    st.lists(
        st.one_of(
            st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
                lambda t: ipaddress.ip_network((t[0], t[1]), strict=False)
            ),
            st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
                lambda t: ipaddress.ip_network((t[0], t[1]), strict=False)
            ),
        ),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**128 - 1),
)
def test_filter_macros_match_python_membership(
    cidrs: list[ipaddress.IPv4Network | ipaddress.IPv6Network], v4: int, v6: int
) -> None:
    v4_macro, v6_macro = filter_macros(cidrs)
    a4 = ipaddress.IPv4Address(v4)
    a6 = ipaddress.IPv6Address(v6)
    # also probe an address inside the first network
    inside = cidrs[0].network_address
    for addr in (a4, a6, inside):
        expected = any(addr in c for c in cidrs if c.version == addr.version)
        if addr.version == 4:
            got = _eval_macro(v4_macro, a=int(addr))
        else:
            got = _eval_macro(v6_macro, **_v6_halves(addr))  # type: ignore[arg-type]
        assert got == expected, (addr, cidrs)


def test_no_cidrs_no_filter() -> None:
    assert filter_macros([]) == []


def test_parse_cidrs_accepts_addresses_and_host_bits() -> None:
    assert parse_cidrs(["10.203.0.1", "10.203.1.7/24", "fd00::1/64"]) == (
        ipaddress.ip_network("10.203.0.1/32"),
        ipaddress.ip_network("10.203.1.0/24"),
        ipaddress.ip_network("fd00::/64"),
    )


# --------------------------------------------------------------------------- source


def test_render_source_tracepoint() -> None:
    cfg = ProbeConfig(map_size=64, local_cidrs=parse_cidrs(["10.203.0.0/16"]))
    src = render_source(SOURCE_PATH.read_text(), cfg, variant="tracepoint", tracepoint_has_err=True)
    prelude = src.split("/* netmesh:", 1)[0]
    assert "#define NETMESH_TRACEPOINT 1" in prelude
    assert "#define NETMESH_MAP_SIZE 64" in prelude
    assert "#define NETMESH_TP_HAS_ERR 1" in prelude
    assert "0xffff0000u) == 0x0acb0000u" in prelude
    assert "NETMESH_KPROBE" not in prelude


def test_render_source_kprobe_has_no_err_and_rejects_unknown_variants() -> None:
    src = render_source("", ProbeConfig(), variant="kprobe", tracepoint_has_err=True)
    assert "#define NETMESH_KPROBE 1" in src
    assert "TP_HAS_ERR" not in src
    assert "LOCAL_V4" not in src
    with pytest.raises(ValueError, match="variant"):
        render_source("", ProbeConfig(), variant="fentry", tracepoint_has_err=False)


def test_probe_config_validation() -> None:
    with pytest.raises(ValueError, match="mode"):
        ProbeConfig(mode="uprobe")
    with pytest.raises(ValueError, match="map size"):
        ProbeConfig(map_size=0)
    with pytest.raises(ValueError, match="ephemeral"):
        ProbeConfig(ephemeral_ports=(5000, 10))


# --------------------------------------------------------------------------- BTF

BTF_RAW = """\
[873] STRUCT 'sk_buff' size=224 vlen=28
\t'(anon)' type_id=874 bits_offset=0
\t'(anon)' type_id=880 bits_offset=192
\t'cb' type_id=1606 bits_offset=320
[874] UNION '(anon)' size=24 vlen=1
\t'next' type_id=875 bits_offset=0
[36841] STRUCT '(anon)' size=4 vlen=2
\t'tcp_gso_segs' type_id=32 bits_offset=0
\t'tcp_gso_size' type_id=32 bits_offset=16
[36842] UNION '(anon)' size=4 vlen=2
\t'tcp_tw_isn' type_id=35 bits_offset=0
\t'(anon)' type_id=36841 bits_offset=0
[36845] STRUCT 'tcp_skb_cb' size=48 vlen=12
\t'seq' type_id=23 bits_offset=0
\t'end_seq' type_id=23 bits_offset=32
\t'(anon)' type_id=36842 bits_offset=64
[36846] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED
"""


def test_skb_segs_offset_from_btf_through_anonymous_members() -> None:
    assert skb_segs_offset(BTF_RAW.splitlines()) == 40 + 8


def test_skb_segs_offset_unknown_without_the_types() -> None:
    assert skb_segs_offset([]) is None
    no_cb = [line for line in BTF_RAW.splitlines() if "'cb'" not in line]
    assert skb_segs_offset(no_cb) is None


def test_render_source_counts_segments_when_the_offset_is_known() -> None:
    src = render_source("", ProbeConfig(), variant="tracepoint", tracepoint_has_err=False,
                        skb_segs_offset=48)  # fmt: skip
    assert "#define NETMESH_SKB_SEGS_OFFSET 48" in src
    assert "SEGS_OFFSET" not in render_source(
        "", ProbeConfig(), variant="tracepoint", tracepoint_has_err=False
    )


# --------------------------------------------------------------------------- checks


def test_privileges() -> None:
    assert privilege_problem(capabilities("Name:\tx\nCapEff:\t000001ffffffffff\n")) is None
    assert privilege_problem(1 << 21) is None  # CAP_SYS_ADMIN
    assert privilege_problem((1 << 39) | (1 << 38)) is None  # CAP_BPF + CAP_PERFMON
    problem = privilege_problem(1 << 39)
    assert problem is not None
    assert "CAP_BPF+CAP_PERFMON" in problem
    assert "root" in (privilege_problem(capabilities("CapEff:\t0000000000000000")) or "")


def test_headers_found_like_bcc() -> None:
    rel = "6.1.0-test"
    build = f"/lib/modules/{rel}/build"
    assert find_kernel_headers(rel, {}, lambda p: p == f"{build}/include") == build
    assert (
        find_kernel_headers(rel, {}, lambda p: p == "/sys/kernel/kheaders.tar.xz")
        == "/sys/kernel/kheaders.tar.xz"
    )
    assert find_kernel_headers(rel, {"BCC_KERNEL_SOURCE": "/k"}, lambda p: p == "/k/include") == (
        "/k"
    )
    with pytest.raises(ProbeUnavailable, match="BCC_KERNEL_SOURCE=/k has no include"):
        find_kernel_headers(rel, {"BCC_KERNEL_SOURCE": "/k"}, lambda p: False)


def test_no_headers_says_what_to_install_or_mount() -> None:
    with pytest.raises(ProbeUnavailable) as exc:
        find_kernel_headers("6.9.9-x", {}, lambda p: False)
    msg = str(exc.value)
    assert "linux-headers-6.9.9-x" in msg
    assert "/lib/modules" in msg
    assert "modprobe kheaders" in msg
    assert "BCC_KERNEL_SOURCE" in msg


FULL = KernelFeatures(tracefs=True, tracepoint=True, tracepoint_has_err=False, kprobes=True)
NO_KPROBES = KernelFeatures(tracefs=True, tracepoint=True, tracepoint_has_err=True, kprobes=False)
NO_TP = KernelFeatures(tracefs=True, tracepoint=False, tracepoint_has_err=False, kprobes=True)
NO_TRACEFS = KernelFeatures(tracefs=False, tracepoint=False, tracepoint_has_err=False, kprobes=True)
NOTHING = KernelFeatures(tracefs=False, tracepoint=False, tracepoint_has_err=False, kprobes=False)


@pytest.mark.parametrize(
    ("mode", "features", "expected"),
    [
        ("auto", FULL, "tracepoint"),
        ("auto", NO_KPROBES, "tracepoint"),
        ("auto", NO_TP, "kprobe"),
        ("auto", NO_TRACEFS, "kprobe"),
        ("kprobe", FULL, "kprobe"),
        ("tracepoint", FULL, "tracepoint"),
    ],
)
def test_choose_variant(mode: str, features: KernelFeatures, expected: str) -> None:
    assert choose_variant(mode, features) == expected


@pytest.mark.parametrize(
    ("mode", "features", "needle"),
    [
        ("kprobe", NO_KPROBES, "mode kprobe: the kernel has no kprobes (CONFIG_KPROBES off"),
        ("tracepoint", NO_TP, "mode tracepoint: the kernel has no tracepoint"),
        ("tracepoint", NO_TRACEFS, "mount -t tracefs"),
        ("auto", NOTHING, "mode auto: tracefs is not mounted"),
        ("off", FULL, "not a probe mode"),
    ],
)
def test_choose_variant_failures_say_why(mode: str, features: KernelFeatures, needle: str) -> None:
    with pytest.raises(ProbeUnavailable) as exc:
        choose_variant(mode, features)
    assert needle in str(exc.value)


# --------------------------------------------------------------------------- keys


def test_decode_key() -> None:
    local = bytes([10, 203, 0, 1]) + bytes(12)
    remote = bytes([10, 203, 0, 2]) + bytes(12)
    assert decode_key(socket.AF_INET, 5201, local, remote) == (A, B, 5201)
    v6l = ipaddress.IPv6Address("fd00::1").packed
    v6r = ipaddress.IPv6Address("fd00::2").packed
    assert decode_key(socket.AF_INET6, 443, v6l, v6r) == ("fd00::1", "fd00::2", 443)
    assert decode_key(99, 1, local, remote) is None


# --------------------------------------------------------------------------- draining


def test_drain_adds_differences_and_restarts_on_a_new_entry() -> None:
    d = Drainer(series_cap=10)
    f = (A, B, 5201)
    d.drain([Entry(f, 1, 5)], now=0)
    d.drain([Entry(f, 1, 5)], now=1)  # nothing new: no double counting
    d.drain([Entry(f, 1, 12)], now=2)
    assert d.totals[f] == 12
    # evicted and re-inserted (new born_ns) with a count above the old one
    d.drain([Entry(f, 2, 20)], now=3)
    assert d.totals[f] == 32
    # gone from the map: the exported counter stays
    d.drain([], now=4)
    assert d.flows() == (RetransmitFlow(local=A, remote=B, port=5201, count=32),)
    d.drain([Entry(f, 3, 1)], now=5)
    assert d.totals[f] == 33


def test_series_cap_overflows_into_other() -> None:
    d = Drainer(series_cap=2)
    flows = [(A, B, p) for p in (1, 2, 3, 4)]
    d.drain([Entry(f, 1, 10) for f in flows], now=0)
    assert len(d.totals) == 2
    assert d.other == 20
    out = d.flows()
    assert out[-1] == RetransmitFlow(local="other", remote="other", port=0, count=20)
    # flows already exported keep counting in their own series
    d.drain([Entry(f, 1, 11) for f in flows], now=1)
    assert sum(d.totals.values()) == 22
    assert d.other == 22


def test_idle_series_expire_and_free_their_place() -> None:
    d = Drainer(series_cap=1, series_ttl=60)
    f1, f2 = (A, B, 1), (A, B, 2)
    d.drain([Entry(f1, 1, 1)], now=0)
    d.drain([Entry(f1, 1, 1), Entry(f2, 1, 1)], now=30)
    assert d.other == 1  # f2 over the cap
    d.drain([Entry(f1, 1, 1), Entry(f2, 1, 1)], now=61)  # f1 idle > 60 s
    assert f1 not in d.totals
    d.drain([Entry(f1, 1, 1), Entry(f2, 1, 4)], now=62)
    assert d.totals == {f2: 3}


def test_evictions_from_inserts_and_entries_never_go_down() -> None:
    d = Drainer(series_cap=10)
    d.note_map(inserts=10, entries=4)
    assert d.evictions == 6
    d.note_map(inserts=10, entries=5)  # an insert raced the read: never decrease
    assert d.evictions == 6


@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.booleans()), max_size=8),
        max_size=12,
    ),
    st.integers(1, 4),
)
def test_drained_counters_only_go_up_and_lose_nothing_without_evictions(
    steps: list[list[tuple[int, int, bool]]], cap: int
) -> None:
    """Simulate the kernel map (increments, evictions) between drains."""
    kernel: dict[int, list[int]] = {}  # flow → [born, count]
    born = 0
    evicted_uncounted = 0
    d = Drainer(series_cap=cap)
    drained_counts: dict[int, int] = {}  # count per flow as of its last drain
    before: dict[tuple[str, str, int], int] = {}
    total_in = 0
    for step in steps:
        for flow, inc, evict in step:
            total_in += inc
            if evict and flow in kernel:
                evicted_uncounted += kernel[flow][1] - drained_counts.get(flow, 0)
                del kernel[flow]
                drained_counts.pop(flow, None)
            if flow not in kernel:
                born += 1
                kernel[flow] = [born, 0]
            kernel[flow][1] += inc
        d.drain([Entry((A, B, f), b, c) for f, (b, c) in kernel.items()], now=0)
        drained_counts = {f: c for f, (_, c) in kernel.items()}
        now = {(fl.local, fl.remote, fl.port): fl.count for fl in d.flows()}
        for k, v in before.items():
            assert now.get(k, 0) >= v
        before = now
        assert sum(now.values()) == total_in - evicted_uncounted


# --------------------------------------------------------------------------- the loop


class FakeMaps:
    mode = "tracepoint"
    capacity = 4

    def __init__(self, reads: list[list[Entry]], inserts: list[int] | None = None) -> None:
        self.reads = reads
        self.inserts = inserts or [len(r) for r in reads]
        self.i = 0
        self.closed = False

    def read(self) -> tuple[list[Entry], list[int]]:
        entries = self.reads[min(self.i, len(self.reads) - 1)]
        stats = [0] * STAT_COUNT
        stats[STAT_INSERTS] = self.inserts[min(self.i, len(self.inserts) - 1)]
        self.i += 1
        return entries, stats

    def close(self) -> None:
        self.closed = True


def _state() -> AgentState:
    return AgentState(me=Member(name="n1", address=A), http_port=9101)


async def _no_sleep(_: float) -> None:
    return None


async def test_probe_unavailable_reports_reason_and_returns() -> None:
    state = _state()

    def loader(_: ProbeConfig) -> FakeMaps:
        raise ProbeUnavailable("not privileged: loading the BPF probe needs root")

    await Probe(ProbeConfig(), state, loader=loader, sleep=_no_sleep).run()
    assert state.probe == ProbeStatus(
        mode="none", up=0, reason="not privileged: loading the BPF probe needs root",
        map_capacity=8192,
    )  # fmt: skip
    assert state.retransmits == ()


async def test_probe_drains_into_state_and_closes() -> None:
    state = _state()
    f = (A, B, 5201)
    maps = FakeMaps([[Entry(f, 1, 3)], [Entry(f, 1, 7)], [Entry(f, 1, 7), Entry((A, B, 22), 2, 1)]])
    maps.inserts = [1, 1, 9]
    probe = Probe(ProbeConfig(map_size=4), state, loader=lambda _: maps, sleep=_no_sleep)
    await probe.run(iterations=3)
    assert maps.closed
    assert state.probe == ProbeStatus(
        mode="tracepoint", up=1, reason="", map_entries=2, map_capacity=4, evictions=7
    )
    assert state.retransmits == (
        RetransmitFlow(local=A, remote=B, port=22, count=1),
        RetransmitFlow(local=A, remote=B, port=5201, count=7),
    )
    # the report carries it and round-trips through the wire parser
    report = parse_report(json.loads(json.dumps(state.report(now=1.0).to_json())))
    assert report.probe == state.probe
    assert report.retransmits == state.retransmits


async def test_drain_failure_is_visible_and_raised_for_guard() -> None:
    state = _state()

    class Broken(FakeMaps):
        def read(self) -> tuple[list[Entry], list[int]]:
            raise OSError("map fd gone")

    maps = Broken([[]])
    with pytest.raises(OSError, match="map fd gone"):
        await Probe(ProbeConfig(), state, loader=lambda _: maps, sleep=_no_sleep).run()
    assert state.probe is not None
    assert state.probe.up == 0
    assert "drain failed" in state.probe.reason
    assert maps.closed


async def test_reload_after_crash_keeps_counters_going_up() -> None:
    state = _state()
    f = (A, B, 5201)
    probe = Probe(
        ProbeConfig(), state, loader=lambda _: FakeMaps([[Entry(f, 1, 5)]]), sleep=_no_sleep
    )
    await probe.run(iterations=1)
    # a new program has a new map that starts from 0 again (same born_ns by chance)
    probe.loader = lambda _: FakeMaps([[Entry(f, 1, 2)]])
    await probe.run(iterations=1)
    assert state.retransmits == (RetransmitFlow(local=A, remote=B, port=5201, count=7),)


# --------------------------------------------------------------------------- metrics, settings


def test_metrics_expose_probe_health_and_flows() -> None:
    state = _state()
    state.probe = ProbeStatus(
        mode="tracepoint", up=1, map_entries=3, map_capacity=8192, evictions=2
    )
    state.retransmits = (
        RetransmitFlow(local=A, remote=B, port=5201, count=9),
        RetransmitFlow(local="other", remote="other", port=0, count=4),
    )
    text = generate_latest(make_registry(state)).decode()
    assert 'netmesh_agent_probe_up{mode="tracepoint",reason=""} 1.0' in text
    assert "netmesh_agent_probe_map_entries 3.0" in text
    assert "netmesh_agent_probe_map_capacity 8192.0" in text
    assert "netmesh_agent_probe_map_evictions_total 2.0" in text
    assert (
        "netmesh_tcp_flow_retransmits_total"
        f'{{local_address="{A}",port="5201",remote_address="{B}"}} 9.0' in text
    )
    assert (
        "netmesh_tcp_flow_retransmits_total"
        '{local_address="other",port="other",remote_address="other"} 4.0' in text
    )


def test_metrics_probe_down_with_reason() -> None:
    state = _state()
    state.probe = ProbeStatus(mode="none", up=0, reason="disabled (probe_mode=off)")
    text = generate_latest(make_registry(state)).decode()
    assert 'netmesh_agent_probe_up{mode="none",reason="disabled (probe_mode=off)"} 0.0' in text


BASE = {"NETMESH_NODE_NAME": "node-1", "NETMESH_BIND_ADDRESS": "10.0.0.1"}


def test_probe_settings(tmp_path: pathlib.Path) -> None:
    s = load(
        AgentSettings,
        ["--probe-mode", "tracepoint", "--probe-local-cidrs", "10.203.0.1,fd00::/64"],
        {**BASE, "NETMESH_PROBE_MAP_SIZE": "16", "NETMESH_PROBE_PRINT_SOURCE": "true"},
    )
    assert (s.probe_mode, s.probe_map_size, s.probe_print_source) == ("tracepoint", 16, True)
    rng = tmp_path / "range"
    rng.write_text("40000 50000\n")
    cfg = probe_config(s, port_range_file=str(rng))
    assert cfg == ProbeConfig(
        mode="tracepoint",
        map_size=16,
        local_cidrs=parse_cidrs(["10.203.0.1/32", "fd00::/64"]),
        series_cap=1000,
        interval=5.0,
        print_source=True,
        ephemeral_ports=(40000, 50000),
    )
    defaults = load(AgentSettings, [], BASE)
    assert (defaults.probe_mode, defaults.probe_map_size) == ("auto", 8192)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"NETMESH_PROBE_MODE": "fentry"}, "probe_mode: one of auto, kprobe, tracepoint, off"),
        ({"NETMESH_PROBE_MAP_SIZE": "0"}, "probe_map_size 0"),
        ({"NETMESH_PROBE_SERIES_CAP": "5000"}, "probe_series_cap 5000"),
        ({"NETMESH_PROBE_LOCAL_CIDRS": "10.0.0.0/33"}, "'10.0.0.0/33' is not an IP network"),
        ({"NETMESH_PROBE_INTERVAL": "0.1"}, "probe_interval"),
    ],
)
def test_probe_settings_errors(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as exc:
        load(AgentSettings, [], {**BASE, **env})
    assert needle in str(exc.value)
