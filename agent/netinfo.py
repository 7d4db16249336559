"""This node's interfaces: which one carries an address, its MTU and speed (sysfs, ioctl).

Read once at start-up (or when asked); every function takes the sysfs root
so tests can point it at a fake tree.
"""

from __future__ import annotations

import fcntl
import ipaddress
import pathlib
import socket
import struct

SYS_CLASS_NET = pathlib.Path("/sys/class/net")
_SIOCGIFADDR = 0x8915


def _ipv4_of(ifname: str) -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(
                s.fileno(), _SIOCGIFADDR, struct.pack("256s", ifname[:15].encode())
            )
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def _ipv6_of(ifname: str) -> set[str]:
    out: set[str] = set()
    try:
        lines = pathlib.Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[5] == ifname:
            out.add(str(ipaddress.IPv6Address(bytes.fromhex(parts[0]))))
    return out


def interface_of(address: str) -> str | None:
    """The interface that has ``address`` (IPv4 or IPv6), or None."""
    ip = ipaddress.ip_address(address)
    for _, name in socket.if_nameindex():
        if ip.version == 4 and _ipv4_of(name) == str(ip):
            return name
        if ip.version == 6 and str(ip) in _ipv6_of(name):
            return name
    return None


def _read_int(path: pathlib.Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def interface_mtu(ifname: str, sys_class_net: pathlib.Path = SYS_CLASS_NET) -> int | None:
    return _read_int(sys_class_net / ifname / "mtu")


# Interfaces without a device of their own whose speed still means something: the
# speed of a bond or team is its members', a VLAN's its parent's.
_AGGREGATES = frozenset({"bond", "team", "vlan"})


def _devtype(path: pathlib.Path) -> str:
    try:
        lines = (path / "uevent").read_text().splitlines()
    except OSError:
        return ""
    return next((ln.partition("=")[2] for ln in lines if ln.startswith("DEVTYPE=")), "")


def interface_speed(ifname: str, sys_class_net: pathlib.Path = SYS_CLASS_NET) -> int | None:
    """The link speed in bits/s from sysfs (Mbit/s there), or None when unknown.

    Links that are down (and virtio NICs) say -1 or fail to read. Virtual
    interfaces (veth, bridge, dummy, tun: no ``device`` link and no bond, team
    or VLAN) report a made-up speed — a veth says 10000 whatever shapes it — so
    theirs counts as unknown: set the agent's link_speed there.
    """
    path = sys_class_net / ifname
    if not (path / "device").exists() and _devtype(path) not in _AGGREGATES:
        return None
    mbit = _read_int(path / "speed")
    return mbit * 1_000_000 if mbit is not None and mbit > 0 else None


def link_speed_of(address: str, sys_class_net: pathlib.Path = SYS_CLASS_NET) -> int | None:
    """The speed of the interface that has ``address``, or None."""
    ifname = interface_of(address)
    return interface_speed(ifname, sys_class_net) if ifname else None
