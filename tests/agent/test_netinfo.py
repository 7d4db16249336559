"""Which interface has an address, and its MTU (the light tier's default MTU probe size)."""

from __future__ import annotations

import pathlib

from agent.netinfo import interface_mtu, interface_of


def test_loopback_addresses_are_on_lo() -> None:
    assert interface_of("127.0.0.1") == "lo"
    assert interface_of("192.0.2.123") is None  # TEST-NET-1: on no interface here


def test_mtu_from_sysfs(tmp_path: pathlib.Path) -> None:
    (tmp_path / "eth0").mkdir()
    (tmp_path / "eth0" / "mtu").write_text("1450\n")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "mtu").write_text("n/a\n")
    assert interface_mtu("eth0", tmp_path) == 1450
    assert interface_mtu("bad", tmp_path) is None
    assert interface_mtu("missing", tmp_path) is None
    assert interface_mtu("lo") == int(pathlib.Path("/sys/class/net/lo/mtu").read_text())
