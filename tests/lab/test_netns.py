"""The lab's RPS mask (pure) — the veths' steering itself is checked on a live lab in
tests/e2e/test_lab.py."""

from __future__ import annotations

import pytest

from lab.netns import cpu_mask, steer_flows


@pytest.mark.parametrize(
    ("cpus", "mask"),
    [
        (1, "00000001"),
        (2, "00000003"),
        (31, "7fffffff"),
        (32, "ffffffff"),
        (33, "00000001,ffffffff"),
        (70, "0000003f,ffffffff,ffffffff"),
    ],
)
def test_cpu_mask_words_of_32_cpus(cpus: int, mask: str) -> None:
    assert cpu_mask(cpus) == mask


def test_cpu_mask_refuses_no_cpus() -> None:
    with pytest.raises(ValueError, match="cpus"):
        cpu_mask(0)


def test_steering_runs_in_the_devices_namespace() -> None:
    assert steer_flows("eth0", "lab-node-1")[:4] == ["ip", "netns", "exec", "lab-node-1"]
    root = steer_flows("lab1h")
    assert root[:2] == ["sh", "-c"] and "/sys/class/net/lab1h/queues/rx-*/rps_cpus" in root[2]
