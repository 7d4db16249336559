"""The lab's DNS: a real DNS server (dnsmasq) on the bridge that every node's resolver uses.

``up`` starts dnsmasq on the bridge address (port 53, that address only, no
upstream, no /etc/hosts, no DHCP) answering one name of the lab's own,
``collector.<prefix>.netmesh.test`` → the bridge address (``.test`` is
reserved for testing: it never leaks to a real resolver). Every node gets a
resolver configuration of its own naming that server, and its agent's DNS
check resolves the name through it. The fault ``--dns down`` drops the DNS
answers into one node (lab/faults.py), so its lookups time out while every
other node's keep working.
"""

from __future__ import annotations

import pathlib
import shutil

from lab import processes

DNSMASQ = "dnsmasq"


class DnsUnavailable(RuntimeError):
    """dnsmasq is not installed."""


def lab_name(prefix: str) -> str:
    """The name the lab's DNS serves (and its agents resolve)."""
    return f"collector.{prefix}.netmesh.test"


def dnsmasq_argv(binary: str, address: str, name: str) -> list[str]:
    return [
        binary,
        "--keep-in-foreground",
        "--conf-file=/dev/null",  # not the host's /etc/dnsmasq.conf
        "--no-resolv",  # no upstream: the lab's one name, NXDOMAIN for the rest
        "--no-hosts",
        "--bind-interfaces",
        f"--listen-address={address}",
        "--except-interface=lo",
        "--port=53",
        f"--host-record={name},{address}",
        "--pid-file=",  # none: the lab tracks its processes itself
        "--user=root",
        "--log-facility=-",
    ]


def start(*, prefix: str, address: str, log_path: pathlib.Path) -> int:
    """Start the lab's DNS server on ``address``; return its pid."""
    binary = shutil.which(DNSMASQ)
    if binary is None:
        raise DnsUnavailable("dnsmasq is not installed (apt-get install dnsmasq-base)")
    return processes.spawn(
        dnsmasq_argv(binary, address, lab_name(prefix)), lab_id=prefix, env={}, log_path=log_path
    )


def write_resolv_conf(path: pathlib.Path, server: str) -> None:
    """A node's resolver configuration: the lab's DNS server and nothing else."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# netmesh lab\nnameserver {server}\noptions timeout:1 attempts:1\n")
