"""The drop-reason probe's pure parts and its drain loop (no root, no kernel).

The kfree_skb format file in tests/fixtures is this machine's (Linux 6.18);
the old one is what Linux 5.10 prints (no reason field). The e2e test
(tests/e2e/test_drops.py) runs the real program.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from agent.drops import Drops
from agent.drops_logic import (
    DSTAT_COUNT,
    SOURCE_PATH,
    DropsConfig,
    ReasonTotals,
    check_format,
    decode_flow,
    drop_flows,
    noise_max,
    parse_format,
    reason_counts,
    reason_name,
    reason_slots,
    render_source,
    skb_offsets,
    skb_span,
    split_reasons,
)
from agent.probe_logic import Drainer, Entry, Pending, ProbeUnavailable, merge_pending
from agent.state import AgentState
from netmesh.dropreport import DropFlow, DropReason
from netmesh.wire import Member
from tests.helpers import fixture_text

FORMAT = fixture_text("kfree_skb_format_6.18.txt")
OLD_FORMAT = """name: kfree_skb
ID: 1234
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:void * skbaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:void * location;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned short protocol;\toffset:24;\tsize:2;\tsigned:0;

print fmt: "skbaddr=%p protocol=%u location=%p", REC->skbaddr, REC->protocol, REC->location
"""

BTF_RAW = """[873] STRUCT 'sk_buff' size=224 vlen=4
\t'skb_iif' type_id=20 bits_offset=1152
\t'network_header' type_id=32 bits_offset=1440
\t'(anon)' type_id=900 bits_offset=1536
\t'len' type_id=20 bits_offset=896
[900] UNION '(anon)' size=8 vlen=1
\t'head' type_id=40 bits_offset=0
"""


def test_reason_names_come_from_the_kernels_format() -> None:
    fmt = parse_format(FORMAT)
    assert fmt.has_reason
    assert fmt.names[2] == "NOT_SPECIFIED"
    assert fmt.names[3] == "NO_SOCKET"
    assert fmt.names[12] == "NETFILTER_DROP"
    assert "MAX" not in fmt.names.values()  # the enum's end marker is no reason
    assert fmt.offsets == {"skbaddr": 8, "protocol": 32, "reason": 36}
    assert noise_max(fmt) == 2
    assert reason_slots(fmt) == 256
    assert reason_name(12, fmt, 256) == "NETFILTER_DROP"
    assert reason_name(200, fmt, 256) == "REASON_200"  # a number newer than the table
    assert reason_name(255, fmt, 256) == "other"


def test_old_kernel_without_reasons_is_off_with_the_reason_why() -> None:
    fmt = parse_format(OLD_FORMAT)
    assert not fmt.has_reason
    with pytest.raises(ProbeUnavailable, match=r"no reason field \(Linux < 5.17\)"):
        check_format(fmt, "auto")
    with pytest.raises(ProbeUnavailable, match="tracefs"):
        check_format(None, "auto")
    with pytest.raises(ProbeUnavailable, match="disabled"):
        check_format(parse_format(FORMAT), "off")
    check_format(parse_format(FORMAT), "auto")


def test_skb_window_from_btf() -> None:
    offsets = skb_offsets(BTF_RAW.splitlines())
    assert offsets == {"skb_iif": 144, "network_header": 180, "head": 192}
    span = skb_span(offsets)
    assert span is not None
    assert (span.start, span.length) == (144, 56)
    assert (span.iif, span.network_header, span.head) == (0, 36, 48)
    assert skb_span({"skb_iif": 0, "network_header": 180, "head": 192}) is None  # too wide
    assert skb_span({}) is None


def test_render_source() -> None:
    fmt = parse_format(FORMAT)
    span = skb_span(skb_offsets(BTF_RAW.splitlines()))
    src = render_source(SOURCE_PATH.read_text(), DropsConfig(map_size=64), fmt, span)
    for line in (
        "#define NETMESH_DROP_MAP_SIZE 64",
        "#define NETMESH_NOISE_MAX 2",
        "#define NETMESH_TP_REASON 36",
        "#define NETMESH_SKB_SPAN_LEN 56",
    ):
        assert line in src
    assert "NETMESH_LOCAL_V4(a) (" not in src
    cidrs = (ipaddress.ip_network("10.0.0.0/8"),)
    filtered = render_source("", DropsConfig(local_cidrs=cidrs), fmt, span)
    assert "#define NETMESH_LOCAL_V4(a)" in filtered
    with pytest.raises(ProbeUnavailable, match="BTF"):
        render_source("", DropsConfig(local_cidrs=cidrs), fmt, None)
    assert "SPAN" not in render_source("", DropsConfig(), fmt, None)


def test_decode_and_split() -> None:
    fmt = parse_format(FORMAT)
    remote = bytes([10, 0, 0, 2]) + bytes(12)
    assert decode_flow(12, 4, 17, remote, fmt=fmt, slots=256) == ("NETFILTER_DROP", "10.0.0.2", 17)
    six = ipaddress.IPv6Address("fd00::1").packed
    assert decode_flow(3, 6, 6, six, fmt=fmt, slots=256) == ("NO_SOCKET", "fd00::1", 6)
    assert decode_flow(3, 9, 6, six, fmt=fmt, slots=256) is None
    counts = reason_counts([0, 4, 100, 7, 0, 0, 0, 0, 0, 0, 0, 0, 3], fmt, 256)
    assert counts == {"CONSUMED": 4, "NOT_SPECIFIED": 100, "NO_SOCKET": 7, "NETFILTER_DROP": 3}
    losses, noise = split_reasons(counts)
    assert losses == (
        DropReason(reason="NETFILTER_DROP", count=3),
        DropReason(reason="NO_SOCKET", count=7),
    )
    assert noise == 104


def test_reason_totals_survive_a_reload() -> None:
    t = ReasonTotals()
    t.update({"NO_SOCKET": 5})
    t.reload()
    t.update({"NO_SOCKET": 2, "NETFILTER_DROP": 1})
    assert t.totals() == {"NO_SOCKET": 7, "NETFILTER_DROP": 1}


def test_flows_with_protocol_labels_and_other_bucket() -> None:
    d = Drainer(series_cap=2)
    d.drain(
        [
            Entry(("NO_SOCKET", "10.0.0.2", 17), 1, 5),
            Entry(("NETFILTER_DROP", "10.0.0.3", 6), 1, 2),
            Entry(("NETFILTER_DROP", "10.0.0.4", 47), 1, 9),
        ],
        now=0,
    )
    flows = drop_flows(d)
    assert DropFlow(reason="other", remote="other", protocol="other", count=9) in flows
    assert DropFlow(reason="NO_SOCKET", remote="10.0.0.2", protocol="udp", count=5) in flows
    assert DropFlow(reason="NETFILTER_DROP", remote="10.0.0.3", protocol="tcp", count=2) in flows


class FakeMaps:
    mode = "tracepoint"
    capacity = 64

    def __init__(self) -> None:
        self.reads = [
            ([Entry(("NETFILTER_DROP", "10.0.0.2", 17), 1, 3)], {"NETFILTER_DROP": 3}),
            (
                [Entry(("NETFILTER_DROP", "10.0.0.2", 17), 1, 10)],
                {"NETFILTER_DROP": 10, "NOT_SPECIFIED": 50},
            ),
        ]
        self.closed = False

    def read(self) -> tuple[list[Entry], dict[str, int], list[int]]:
        entries, reasons = self.reads.pop(0)
        return entries, reasons, [1] + [0] * (DSTAT_COUNT - 1)

    def close(self) -> None:
        self.closed = True


def test_drain_loop_fills_the_state_and_says_why_when_down() -> None:
    state = AgentState(me=Member(name="a", address="10.0.0.1"), http_port=9101)
    maps = FakeMaps()

    async def no_sleep(_s: float) -> None:
        return None

    drops = Drops(DropsConfig(), state, loader=lambda _c: maps, sleep=no_sleep)
    asyncio.run(drops.run(iterations=2))
    assert maps.closed
    d = state.drops
    assert d is not None and d.up == 1
    assert d.reasons == (DropReason(reason="NETFILTER_DROP", count=10),)
    assert d.unspecified == 50
    assert d.flows == (
        DropFlow(reason="NETFILTER_DROP", remote="10.0.0.2", protocol="udp", count=10),
    )
    assert state.report(0.0).drops == d

    def unavailable(_c: DropsConfig) -> FakeMaps:
        raise ProbeUnavailable("skb:kfree_skb has no reason field")

    down = Drops(DropsConfig(), state, loader=unavailable, sleep=no_sleep)
    asyncio.run(down.run(iterations=1))
    assert state.drops is not None
    assert state.drops.up == 0 and "no reason field" in state.drops.reason
    assert state.drops.reasons == d.reasons  # counters already exported stay


def test_pending_counts_join_the_map_without_double_counting() -> None:
    k1, k2 = ("NETFILTER_DROP", "10.0.0.2", 17), ("NO_SOCKET", "10.0.0.3", 17)
    # CPU 0 holds 5 of k1 not yet in the map; CPU 1 changed key while we read: left out.
    before = [Pending(k1, 1, 5), Pending(k1, 3, 7)]
    after = [Pending(k1, 1, 6), Pending(k2, 4, 1)]
    entries = merge_pending([Entry(k1, 99, 10)], before, after)
    assert entries == [Entry(k1, 99, 15)]
    only_pending = merge_pending([], [Pending(k2, 1, 4)], [Pending(k2, 1, 4)])
    assert only_pending == [Entry(k2, 0, 4)]
    # The Drainer continues a pending-only series when the map's entry appears.
    d = Drainer(series_cap=10)
    d.drain(only_pending, now=0)
    d.drain([Entry(k2, 77, 4)], now=1)  # flushed: the same 4 packets, now in the map
    d.drain([Entry(k2, 77, 9)], now=2)
    assert d.totals[k2] == 9
