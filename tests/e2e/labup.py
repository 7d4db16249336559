"""A lab up for the length of a block, and the settings the e2e tests and benchmarks share.

No pytest here: the benchmarks (plain scripts) use it as well as ``tests/e2e/labs.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from lab.lab import Lab
from lab.settings import LabSettings

# No HTTP traffic generator, no eBPF probe: only the agents' own tests run.
QUIET: dict[str, Any] = {"traffic": False, "probe_mode": "off"}
# ... and iperf3 spaced by a small budget, so the light tier is what measures.
LIGHT_TIER: dict[str, Any] = {**QUIET, "bandwidth_budget": 0.05}


@contextlib.contextmanager
def lab_up(settings: LabSettings, **up: Any) -> Iterator[Lab]:
    """``Lab(settings)`` up (``Lab.up(**up)``) for the block; always down afterwards."""
    lab = Lab(settings)
    try:
        lab.up(**up)
        yield lab
    finally:
        lab.down()
