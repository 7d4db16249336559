"""A lab for one test module: built, handed out, and always removed (also on failure)."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any

from lab.faults import Fault
from lab.lab import Lab
from lab.netns import has_nft_table, leftovers
from lab.settings import LabSettings
from tests.e2e.conftest import need_root


@contextlib.contextmanager
def running_lab(
    state_dir: pathlib.Path, *, faults: Mapping[str, Fault] | None = None, **settings: Any
) -> Iterator[Lab]:
    """``LabSettings(**settings)`` up for the duration; nothing of it left afterwards.
    ``faults`` are on their nodes before the agents start (``Lab.up(faults=...)``)."""
    need_root()
    lab = Lab(LabSettings(state_dir=str(state_dir), **settings))
    try:
        lab.up(faults=faults)
        yield lab
    finally:
        lab.down()
    ns, links = leftovers(lab.settings.prefix)
    assert not ns and not links, f"lab left {ns} {links}"
    assert not has_nft_table(lab.settings.prefix), "lab left its nftables table"


def light_lab(
    state_dir: pathlib.Path, prefix: str, subnet: str
) -> contextlib.AbstractContextManager[Lab]:
    """Three nodes probing each other with the light tier's defaults; iperf3 spaced by a small
    budget so the light tier is what measures; no HTTP traffic, no eBPF probe."""
    return running_lab(
        state_dir,
        nodes=3,
        prefix=prefix,
        subnet=subnet,
        traffic=False,
        probe_mode="off",
        bandwidth_budget=0.05,
    )
