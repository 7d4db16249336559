"""A lab for one test module: built, handed out, and always removed (also on failure); the
``python -m lab`` CLI run on it."""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from lab.faults import Fault
from lab.lab import Lab
from lab.netns import has_nft_table, leftovers
from lab.settings import LabSettings
from tests.e2e.conftest import need_root
from tests.e2e.labup import lab_up

ROOT = pathlib.Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def running_lab(
    state_dir: pathlib.Path, *, faults: Mapping[str, Fault] | None = None, **settings: Any
) -> Iterator[Lab]:
    """``LabSettings(**settings)`` up for the duration; nothing of it left afterwards.
    ``faults`` are on their nodes before the agents start (``Lab.up(faults=...)``)."""
    need_root()
    with lab_up(LabSettings(state_dir=str(state_dir), **settings), faults=faults) as lab:
        yield lab
    ns, links = leftovers(lab.settings.prefix)
    assert not ns and not links, f"lab left {ns} {links}"
    assert not has_nft_table(lab.settings.prefix), "lab left its nftables table"


def need_nft(why: str) -> None:
    if shutil.which("nft") is None:
        pytest.skip(f"needs nft ({why}; scripts/install-deps.sh installs nftables)")


def lab_fixture(*, nft_for: str = "", **settings: Any) -> Callable[..., Iterator[Lab]]:
    """A module-scoped fixture: ``running_lab(**settings)`` in a temporary state dir.
    ``nft_for``: why the lab needs nft (skipped without it). Use as ``lab = lab_fixture(...)``."""

    @pytest.fixture(scope="module")
    def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
        if nft_for:
            need_nft(nft_for)
        with running_lab(tmp_path_factory.mktemp("lab"), **settings) as running:
            yield running

    return lab


def lab_cli(lab: Lab, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m lab ARGS`` with only --state-dir: no flag of ``up`` repeated."""
    return subprocess.run(
        [sys.executable, "-m", "lab", *args, "--state-dir", lab.settings.state_dir],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )


def lab_ok(lab: Lab, *args: str, timeout: float = 60) -> str:
    """``lab_cli`` that must exit 0: its standard output."""
    proc = lab_cli(lab, *args, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
