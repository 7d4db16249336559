"""Which interface has an address, its MTU (the light tier's MTU probe size) and speed."""

from __future__ import annotations

import pathlib

from agent.netinfo import interface_mtu, interface_of, interface_speed, link_speed_of


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


def test_link_speed_from_sysfs(tmp_path: pathlib.Path) -> None:
    """sysfs says Mbit/s; virtual and down links say -1 (or cannot be read): unknown."""
    for name, text in (("eth0", "10000\n"), ("veth0", "-1\n"), ("down", "")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "speed").write_text(text)
    assert interface_speed("eth0", tmp_path) == 10_000_000_000
    assert interface_speed("veth0", tmp_path) is None
    assert interface_speed("down", tmp_path) is None
    assert interface_speed("missing", tmp_path) is None
    assert link_speed_of("192.0.2.123") is None  # on no interface here
    assert link_speed_of("127.0.0.1") is None  # lo has no speed
