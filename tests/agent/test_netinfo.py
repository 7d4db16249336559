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
    """sysfs says Mbit/s; down links say -1 (or cannot be read): unknown; virtual
    interfaces (no device) say a made-up 10000: unknown, but bonds and VLANs count."""
    for name, text, device, devtype in (
        ("eth0", "10000\n", True, ""),
        ("down", "-1\n", True, ""),
        ("gone", "", True, ""),
        ("veth0", "10000\n", False, ""),
        ("br0", "10000\n", False, "bridge"),
        ("bond0", "20000\n", False, "bond"),
        ("eth0.7", "10000\n", False, "vlan"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "speed").write_text(text)
        if device:
            (tmp_path / name / "device").mkdir()
        (tmp_path / name / "uevent").write_text(f"INTERFACE={name}\nDEVTYPE={devtype}\n")
    assert interface_speed("eth0", tmp_path) == 10_000_000_000
    assert interface_speed("down", tmp_path) is None
    assert interface_speed("gone", tmp_path) is None
    assert interface_speed("veth0", tmp_path) is None
    assert interface_speed("br0", tmp_path) is None
    assert interface_speed("bond0", tmp_path) == 20_000_000_000
    assert interface_speed("eth0.7", tmp_path) == 10_000_000_000
    assert interface_speed("missing", tmp_path) is None
    assert link_speed_of("192.0.2.123") is None  # on no interface here
    assert link_speed_of("127.0.0.1") is None  # lo has no speed
