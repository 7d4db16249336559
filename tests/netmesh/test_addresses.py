"""IP address and network checks."""

from __future__ import annotations

import pytest

from netmesh.addresses import is_ip, is_network


@pytest.mark.parametrize("text", ["10.0.0.1", "0.0.0.0", "::", "fd00::1", "::ffff:10.0.0.1"])
def test_is_ip(text: str) -> None:
    assert is_ip(text)


@pytest.mark.parametrize(
    "text", ["", "node-1", "10.0.0", "10.0.0.256", "10.0.0.1/32", "10.0.0.1:80", "[::1]"]
)
def test_is_not_ip(text: str) -> None:
    assert not is_ip(text)


@pytest.mark.parametrize("text", ["10.0.0.0/8", "10.1.2.3/8", "10.0.0.1", "fd00::/64"])
def test_is_network(text: str) -> None:
    assert is_network(text)


@pytest.mark.parametrize("text", ["", "10.0.0.0/33", "fd00::/129", "net", "10.0.0.0/x"])
def test_is_not_network(text: str) -> None:
    assert not is_network(text)
