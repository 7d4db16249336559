"""The collector's page in headless Chromium (Debian's chromium; scripts/install-deps.sh)."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(tmp_path: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh profile under ``tmp_path`` (e.g. ``--dump-dom URL``)."""
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=4000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
