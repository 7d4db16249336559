"""IP address and network checks shared by the services' settings and parsers."""

from __future__ import annotations

import ipaddress


def is_ip(text: str) -> bool:
    """True for an IPv4 or IPv6 address (no prefix length, no port)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_network(text: str) -> bool:
    """True for a CIDR (``10.0.0.0/8``) or a bare address; host bits are allowed."""
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True
