"""The retransmission probe for real: BPF in this kernel, iperf3 across two namespaces.

Root only (CI runs tests/e2e as root). The program is compiled once per
module (``probe`` fixture); tests that need another build (a tiny map, a
different filter) load their own. Traffic stays inside the namespaces of
``netpair`` (tests/e2e/conftest.py) and on loopback.
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.probe import LoadedProbe, Probe, kernel_features, load_probe
from agent.probe_logic import (
    KPROBE_FN_NAME,
    SOURCE_PATH,
    STAT_EVENTS,
    STAT_FILTERED,
    ProbeConfig,
    ProbeUnavailable,
    parse_cidrs,
    render_source,
)
from agent.state import AgentState
from netmesh.wire import Member
from tests.e2e.conftest import NetPair, need_root
from tests.helpers import free_port, wait_for

pytestmark = pytest.mark.e2e

ROOT = pathlib.Path(__file__).resolve().parents[2]
LOSSY, CLEAN = 5201, 5202


class Kept:
    """A module-wide loaded probe handed to ``Probe`` without letting it detach."""

    def __init__(self, loaded: LoadedProbe) -> None:
        self.loaded = loaded
        self.mode = loaded.mode
        self.capacity = loaded.capacity

    def read(self) -> Any:
        return self.loaded.read()

    def close(self) -> None:
        pass


def _load(**config: Any) -> LoadedProbe:
    try:
        return load_probe(ProbeConfig(**config))
    except ProbeUnavailable as exc:
        pytest.fail(f"probe did not load as root: {exc}")


@pytest.fixture(scope="module")
def probe(netpair: NetPair) -> Iterator[LoadedProbe]:
    """auto mode, counting only this module's namespaces (10.203.0.0/16)."""
    loaded = _load(local_cidrs=parse_cidrs(["10.203.0.0/16", "fd00:203::/32"]))
    try:
        yield loaded
    finally:
        loaded.close()


def _drainer(loaded: LoadedProbe) -> tuple[Probe, AgentState]:
    state = AgentState(me=Member(name="t", address="10.203.0.1"), http_port=9101)
    p = Probe(ProbeConfig(map_size=loaded.capacity), state)
    p.maps = Kept(loaded)
    return p, state


def _drain(p: Probe) -> dict[tuple[str, str, int], int]:
    maps = p.maps
    assert maps is not None
    p.apply(maps, *maps.read())
    return {(f.local, f.remote, f.port): f.count for f in p.state.retransmits}


def _iperf3(pair: NetPair, port: int, *args: str) -> dict[str, Any]:
    proc = pair.run(pair.a, "iperf3", "-c", pair.addr_b, "-p", str(port), "-J", *args, timeout=60)
    result: dict[str, Any] = json.loads(proc.stdout)
    assert "error" not in result, result["error"]
    return result


def _servers(pair: NetPair) -> None:
    for port in (LOSSY, CLEAN):
        pair.iperf3_server(port)
    for port in (LOSSY, CLEAN):
        wait_for(
            lambda port=port: pair.run(pair.b, "ss", "-Hltn", f"sport = :{port}").stdout.strip(),
            10,
            what=f"iperf3 server on port {port}",
        )


def _lossy_and_clean_run(pair: NetPair, p: Probe, *, offloads: bool) -> dict[str, float]:
    """One lossy and one clean iperf3 test at the same time; counts before and after."""
    pair.offloads(offloads)
    before = _drain(p)
    events_before = p.stats[STAT_EVENTS]
    clean = pair.spawn(
        pair.a, "iperf3", "-c", pair.addr_b, "-p", str(CLEAN), "-J", "-t", "3", "-b", "50M"
    )
    lossy = _iperf3(pair, LOSSY, "-t", "3")
    clean_out, _ = clean.communicate(timeout=30)
    clean_result = json.loads(clean_out)
    after = _drain(p)
    events = p.stats[STAT_EVENTS] - events_before
    flow = (pair.addr_a, pair.addr_b, LOSSY)
    counted = after.get(flow, 0) - before.get(flow, 0)
    iperf_retransmits = lossy["end"]["sum_sent"]["retransmits"]
    changed = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    # The sender's retransmissions: exactly the lossy flow (sender → receiver, server
    # port), nothing for the clean flow that ran at the same time.
    sent = {k: v for k, v in changed.items() if k[0] == pair.addr_a}
    assert set(sent) == {flow}, changed
    assert clean_result["end"]["sum_sent"]["retransmits"] == 0, "the clean flow was not clean"
    # The receiver sends only iperf3's control messages; the kernel may retransmit a few
    # of those (its ACKs to port 5201 are dropped too, and tail loss probes at close are
    # retransmissions). They belong to the receiver's own flows (local = receiver).
    received = {k: v for k, v in changed.items() if k[0] == pair.addr_b}
    assert all(k[1] == pair.addr_a for k in received), changed
    assert sum(received.values()) <= 20, changed
    assert iperf_retransmits > 100, "too few losses to compare"
    ratio = counted / iperf_retransmits
    skb_ratio = events / iperf_retransmits
    print(
        f"\noffloads {'on' if offloads else 'off'}: iperf3 retransmits {iperf_retransmits}, "
        f"probe segments {counted} (ratio {ratio:.4f}), probe skbs {events} "
        f"(ratio {skb_ratio:.4f})"
    )
    return {"ratio": ratio, "skb_ratio": skb_ratio}


# --------------------------------------------------------------------------- modes


def test_auto_picks_the_tracepoint(probe: LoadedProbe) -> None:
    if not kernel_features().tracepoint:
        pytest.skip("this kernel has no tracepoint tcp:tcp_retransmit_skb")
    assert probe.mode == "tracepoint"
    assert "#define NETMESH_TRACEPOINT 1" in probe.source
    # this kernel's BTF gives the segment count offset (else we would count skbs)
    if os.path.exists("/sys/kernel/btf/vmlinux") and shutil.which("bpftool"):
        assert "#define NETMESH_SKB_SEGS_OFFSET" in probe.source


def test_forced_kprobe_fails_with_a_clear_reason_or_attaches(netpair: NetPair) -> None:
    if kernel_features().kprobes:
        loaded = _load(mode="kprobe", local_cidrs=parse_cidrs(["10.203.0.0/16"]))
        try:
            assert loaded.mode == "kprobe"
        finally:
            loaded.close()
        return
    with pytest.raises(ProbeUnavailable) as exc:
        load_probe(ProbeConfig(mode="kprobe"))
    assert "mode kprobe: the kernel has no kprobes (CONFIG_KPROBES off" in str(exc.value)


def test_kprobe_variant_compiles_against_these_headers() -> None:
    """The kprobe C cannot attach here, but it must compile (and pass the verifier)."""
    need_root()
    from bcc import BPF  # noqa: PLC0415

    source = render_source(
        SOURCE_PATH.read_text(), ProbeConfig(), variant="kprobe", tracepoint_has_err=False
    )
    bpf = BPF(text=source.encode())
    try:
        fn = bpf.load_func(KPROBE_FN_NAME.encode(), BPF.KPROBE)
        assert fn.fd > 0
    finally:
        bpf.cleanup()


# --------------------------------------------------------------------------- counting


def test_attributes_retransmissions_to_exactly_the_lossy_flow_offloads_off(
    clean_pair: NetPair, probe: LoadedProbe
) -> None:
    pair = clean_pair
    pair.drop_tcp(str(LOSSY), 0.03)
    _servers(pair)
    p, state = _drainer(probe)
    measured = _lossy_and_clean_run(pair, p, offloads=False)
    assert abs(measured["ratio"] - 1) <= 0.05, measured
    assert state.probe is not None
    assert state.probe.up == 1
    assert state.probe.mode == probe.mode


def test_count_with_offloads_on(clean_pair: NetPair, probe: LoadedProbe) -> None:
    """With TSO/GSO/GRO one skb carries many segments: segments still match, skbs do not."""
    pair = clean_pair
    pair.drop_tcp(str(LOSSY), 0.03)
    _servers(pair)
    p, _ = _drainer(probe)
    measured = _lossy_and_clean_run(pair, p, offloads=True)
    if "NETMESH_SKB_SEGS_OFFSET" in probe.source:
        assert abs(measured["ratio"] - 1) <= 0.10, measured
    else:
        assert measured["ratio"] > 0, measured


def test_ipv6_and_ipv4_mapped_flows(clean_pair: NetPair, probe: LoadedProbe) -> None:
    """IPv6 keys; and a dual-stack server socket sending over IPv4 is keyed as IPv4."""
    pair = clean_pair
    pair.iptables(
        pair.b,
        ["INPUT", "-p", "tcp", "--dport", "5204", "-m", "statistic", "--mode", "random",
         "--probability", "0.03", "-j", "DROP"],
        binary="ip6tables",
    )  # fmt: skip
    # reverse test: the dual-stack server in b sends, so a (the receiver) drops
    pair.iptables(
        pair.a,
        ["INPUT", "-p", "tcp", "--sport", "5203", "-m", "statistic", "--mode", "random",
         "--probability", "0.03", "-j", "DROP"],
    )  # fmt: skip
    pair.iperf3_server(5204, bind=pair.addr6_b)
    pair.iperf3_server(5203, bind=None)
    for port in (5203, 5204):
        wait_for(
            lambda port=port: pair.run(pair.b, "ss", "-Hltn", f"sport = :{port}").stdout.strip(),
            10,
            what=f"iperf3 server on port {port}",
        )
    p, _ = _drainer(probe)
    before = _drain(p)
    v6 = json.loads(
        pair.run(pair.a, "iperf3", "-c", pair.addr6_b, "-p", "5204", "-J", "-t", "2").stdout
    )
    mapped = _iperf3(pair, 5203, "-t", "2", "-R")
    after = _drain(p)
    # within 5 % like the IPv4 test: the control connection shares the port (and the drops)
    v6_flow = (pair.addr6_a, pair.addr6_b, 5204)
    v6_iperf = v6["end"]["sum_sent"]["retransmits"]
    assert v6_iperf > 100
    assert abs((after.get(v6_flow, 0) - before.get(v6_flow, 0)) / v6_iperf - 1) <= 0.05, after
    mapped_flow = (pair.addr_b, pair.addr_a, 5203)  # local = the server in b
    mapped_iperf = mapped["end"]["sum_sent"]["retransmits"]
    assert mapped_iperf > 100
    counted = after.get(mapped_flow, 0) - before.get(mapped_flow, 0)
    assert abs(counted / mapped_iperf - 1) <= 0.05, after
    assert not [k for k in after if k[0].startswith("::ffff:")], after


def test_counters_only_go_up_across_drains(clean_pair: NetPair, probe: LoadedProbe) -> None:
    pair = clean_pair
    pair.drop_tcp(str(LOSSY), 0.03)
    _servers(pair)
    p, _ = _drainer(probe)
    client = pair.spawn(pair.a, "iperf3", "-c", pair.addr_b, "-p", str(LOSSY), "-t", "3", "-J")
    history: list[dict[tuple[str, str, int], int]] = [_drain(p)]

    def drained_while_running() -> bool:
        history.append(_drain(p))
        return client.poll() is not None

    wait_for(drained_while_running, 30, interval=0.2, what="iperf3 client to finish")
    history.append(_drain(p))
    for earlier, later in itertools.pairwise(history):
        for flow, count in earlier.items():
            assert later.get(flow, 0) >= count, (flow, earlier, later)
    flow = (pair.addr_a, pair.addr_b, LOSSY)
    distinct = sorted({h.get(flow, 0) for h in history})
    assert len(distinct) >= 3, f"expected the counter to grow over several drains: {distinct}"


def test_local_cidr_filter_runs_in_the_kernel(clean_pair: NetPair) -> None:
    """Counting only the receiver's address: the sender's retransmissions are filtered out."""
    pair = clean_pair
    pair.drop_tcp(str(LOSSY), 0.03)
    _servers(pair)
    only_b = _load(local_cidrs=parse_cidrs([pair.addr_b]))
    try:
        p, _ = _drainer(only_b)
        _iperf3(pair, LOSSY, "-t", "2")
        counts = _drain(p)
        assert (pair.addr_a, pair.addr_b, LOSSY) not in counts
        assert p.stats[STAT_FILTERED] > 0
    finally:
        only_b.close()


def test_evictions_are_counted_with_a_tiny_map(clean_pair: NetPair) -> None:
    """Twelve flows (SYNs to a black hole retransmit) into a map of two entries."""
    pair = clean_pair
    pair.iptables(pair.b, ["INPUT", "-p", "tcp", "--dport", "6001:6012", "-j", "DROP"])
    tiny = _load(map_size=2, local_cidrs=parse_cidrs(["10.203.0.0/16"]))
    try:
        p, state = _drainer(tiny)
        script = (
            "import socket, sys\n"
            "socks = []\n"
            "for port in range(6001, 6013):\n"
            "    s = socket.socket(); s.setblocking(False)\n"
            f"    s.connect_ex(({pair.addr_b!r}, port)); socks.append(s)\n"
            "sys.stdout.write('ready\\n'); sys.stdout.flush(); sys.stdin.read()\n"
        )
        holder = subprocess.Popen(
            ["ip", "netns", "exec", pair.a, sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        pair.procs.append(holder)  # type: ignore[arg-type]
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"

        def evicted() -> int:
            _drain(p)
            assert state.probe is not None
            return state.probe.evictions if state.probe.evictions >= 5 else 0

        wait_for(evicted, 15, interval=0.2, what="evictions from the tiny map")
        assert state.probe is not None
        assert state.probe.map_entries <= state.probe.map_capacity == 2
        holder.stdin.close()  # type: ignore[union-attr]
    finally:
        tiny.close()


# --------------------------------------------------------------------------- in the agent


def _http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return str(resp.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    ]


@pytest.mark.parametrize("privileged", [True, False], ids=["root", "nobody"])
def test_agent_probe_up_and_still_testing(tmp_path: pathlib.Path, privileged: bool) -> None:
    """As root the agent's probe is up; as nobody it is down with a reason, and tests go on."""
    need_root()
    if not privileged and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux)")
    peer_port, http_port, iperf_port = (free_port() for _ in range(3))
    server = subprocess.Popen(
        ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(peer_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NETMESH_NODE_NAME": "probe-e2e",
        "NETMESH_BIND_ADDRESS": "127.0.0.1",
        "NETMESH_HTTP_PORT": str(http_port),
        "NETMESH_IPERF3_PORT": str(iperf_port),
        "NETMESH_STATIC_PEERS": f"peer=127.0.0.1:{peer_port}",
        "NETMESH_PROTOCOLS": "tcp",
        "NETMESH_TEST_DURATION": "1",
        "NETMESH_OMIT_SECONDS": "0",
        "NETMESH_GUARD_SECONDS": "1",
        "NETMESH_BANDWIDTH_BUDGET": "1",
        "NETMESH_CONNECT_TIMEOUT": "1",
        "NETMESH_PROBE_LOCAL_CIDRS": "127.0.0.0/8",
        "NETMESH_PROBE_INTERVAL": "0.5",
    }
    prefix = (
        []
        if privileged
        else ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    )
    log_path = tmp_path / "agent.log"
    log_path.touch(mode=0o666)
    with log_path.open("ab") as log:
        agent = subprocess.Popen(
            [*prefix, sys.executable, "-m", "agent"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{http_port}/metrics"
    try:

        def probe_and_a_test() -> str | None:
            if agent.poll() is not None:
                raise AssertionError(f"agent exited: {log_path.read_text()[-3000:]}")
            text = _http_get(url)
            if not text or not _samples(text, "netmesh_agent_probe_up"):
                return None
            ok = [v for labels, v in _samples(text, "netmesh_path_tests_total")
                  if labels.get("result") == "ok"]  # fmt: skip
            return text if ok and ok[0] >= 1 else None

        text = wait_for(probe_and_a_test, 40, interval=0.3, what="probe status and one test")
        [(labels, up)] = _samples(text, "netmesh_agent_probe_up")
        if privileged:
            assert (up, labels["reason"]) == (1.0, "")
            assert labels["mode"] in ("tracepoint", "kprobe")
            assert _samples(text, "netmesh_agent_probe_map_capacity")[0][1] == 8192
        else:
            assert up == 0.0
            assert labels["mode"] == "none"
            assert labels["reason"].startswith("not privileged"), labels
        if shutil.which("promtool"):
            check = subprocess.run(
                ["promtool", "check", "metrics"],
                input=text,
                capture_output=True,
                text=True,
                check=False,
            )
            assert check.returncode == 0, check.stdout + check.stderr
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGTERM)
            try:
                agent.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(agent.pid, signal.SIGKILL)
                agent.wait(timeout=5)
        server.terminate()
        server.wait(timeout=5)
