"""Root-only fixtures: two network namespaces joined by a veth, always cleaned up.

Namespaces are named ``nmtest-<pid>-<n>-{a,b}`` so that concurrent runs do
not collide and leftovers of a crashed run (a pid that no longer exists) are
removed at the next start. Everything a test adds (processes, iptables rules,
offload changes) is undone in the fixture's teardown, also when the test
fails. Traffic stays inside these namespaces, on 10.203.<k>.0/24.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

PREFIX = "nmtest-"
_counter = itertools.count()


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, iptables, BPF); CI runs tests/e2e as root")
    for tool in ("ip", "iptables", "iperf3", "ethtool"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool} (scripts/install-deps.sh installs it)")


def sh(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


def _remove_stale_namespaces() -> None:
    """Delete nmtest-<pid>-* namespaces whose pid is gone (a crashed earlier run)."""
    out = sh("ip", "netns", "list", check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(rf"{PREFIX}(\d+)-", name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            sh("ip", "netns", "del", name, check=False)


@dataclass
class NetPair:
    """Namespaces ``a`` (sender) and ``b`` (receiver) joined by veth ``va``/``vb``."""

    a: str
    b: str
    addr_a: str
    addr_b: str
    addr6_a: str
    addr6_b: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    rules: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def run(
        self, ns: str, *cmd: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)

    def spawn(self, ns: str, *cmd: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *cmd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def iptables(self, ns: str, rule: Sequence[str], binary: str = "iptables") -> None:
        """Append an iptables (or ip6tables) rule in ``ns``; removed again at teardown."""
        self.run(ns, binary, "-A", *rule)
        self.rules.append((ns, binary, list(rule)))

    def remove_rules(self) -> None:
        for ns, binary, rule in reversed(self.rules):
            self.run(ns, binary, "-D", *rule, check=False)
        self.rules.clear()

    def drop_tcp(self, port_spec: str, probability: float) -> None:
        """Drop a random share of TCP to ``port_spec`` on the receiver's INPUT.

        The receiver, not the sender: a drop in the sender's OUTPUT returns
        an error to the socket and causes no retransmission.
        """
        self.iptables(
            self.b,
            ["INPUT", "-p", "tcp", "--dport", port_spec, "-m", "statistic", "--mode", "random",
             "--probability", f"{probability}", "-j", "DROP"],
        )  # fmt: skip

    def offloads(self, on: bool) -> None:
        state = "on" if on else "off"
        for ns, dev in ((self.a, "va"), (self.b, "vb")):
            self.run(ns, "ethtool", "-K", dev, "tso", state, "gso", state, "gro", state)

    def iperf3_server(self, port: int, bind: str | None = "") -> subprocess.Popen[str]:
        """An iperf3 server in ``b`` on ``bind`` (default: addr_b; None: dual-stack ::)."""
        address = self.addr_b if bind == "" else bind
        return self.spawn(
            self.b, "iperf3", "-s", "-p", str(port), *(["-B", address] if address else [])
        )

    def stop_processes(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
        self.procs.clear()

    def cleanup(self) -> None:
        self.stop_processes()
        self.remove_rules()
        for ns in (self.a, self.b):
            sh("ip", "netns", "del", ns, check=False)


def make_pair() -> NetPair:
    need_root()
    _remove_stale_namespaces()
    n = next(_counter)
    k = (os.getpid() + n) % 250 + 1
    base = f"{PREFIX}{os.getpid()}-{n}"
    pair = NetPair(
        a=f"{base}-a",
        b=f"{base}-b",
        addr_a=f"10.203.{k}.1",
        addr_b=f"10.203.{k}.2",
        addr6_a=f"fd00:203:{k:x}::1",
        addr6_b=f"fd00:203:{k:x}::2",
    )
    try:
        sh("ip", "netns", "add", pair.a)
        sh("ip", "netns", "add", pair.b)
        sh(
            "ip",
            "link",
            "add",
            "va",
            "netns",
            pair.a,
            "type",
            "veth",
            "peer",
            "vb",
            "netns",
            pair.b,
        )
        for ns, dev, addr, addr6 in (
            (pair.a, "va", pair.addr_a, pair.addr6_a),
            (pair.b, "vb", pair.addr_b, pair.addr6_b),
        ):
            pair.run(ns, "ip", "addr", "add", f"{addr}/24", "dev", dev)
            pair.run(ns, "ip", "-6", "addr", "add", f"{addr6}/64", "dev", dev, "nodad")
            pair.run(ns, "ip", "link", "set", dev, "up")
            pair.run(ns, "ip", "link", "set", "lo", "up")
            # No tail loss probes in these namespaces: a TLP is a retransmission
            # without a loss (a delayed ACK at the end of a control message is
            # enough), which would make a clean flow's count nondeterministic.
            pair.run(ns, "sysctl", "-qw", "net.ipv4.tcp_early_retrans=0")
    except BaseException:
        pair.cleanup()
        raise
    return pair


@pytest.fixture(scope="module")
def netpair() -> Iterator[NetPair]:
    pair = make_pair()
    try:
        yield pair
    finally:
        pair.cleanup()


@pytest.fixture
def clean_pair(netpair: NetPair) -> Iterator[NetPair]:
    """The module's pair, with this test's processes and rules removed afterwards."""
    try:
        yield netpair
    finally:
        netpair.stop_processes()
        netpair.remove_rules()
        with contextlib.suppress(subprocess.SubprocessError):
            netpair.offloads(True)
