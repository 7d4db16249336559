"""Start lab processes (in namespaces or on the host) and find them again, even after a crash.

Every lab process gets ``NETMESH_LAB_ID=<prefix>`` in its environment; its
children (iperf3) inherit it. Cleanup scans ``/proc/*/environ`` for that
marker, so processes are found without trusting a state file that a crashed
run may not have written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import signal
import subprocess
import time
from collections.abc import Collection, Mapping, Sequence

log = logging.getLogger(__name__)

MARKER = "NETMESH_LAB_ID"


def spawn(
    cmd: Sequence[str],
    *,
    lab_id: str,
    env: Mapping[str, str],
    log_path: pathlib.Path,
    netns: str | None = None,
) -> int:
    """Start a detached process; return its pid."""
    full_env = {**os.environ, **env, MARKER: lab_id}
    argv = ["ip", "netns", "exec", netns, *cmd] if netns else list(cmd)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc.pid


def find(lab_id: str) -> list[int]:
    """Pids of every process carrying this lab's marker."""
    needle = f"{MARKER}={lab_id}".encode()
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return sorted(pids)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    with contextlib.suppress(OSError):
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def terminate(pids: Sequence[int], grace: float = 5.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL whatever is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            log.warning("pid %d ignored SIGTERM; killing it", pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    # Reap our own children so they do not linger as zombies.
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _parent(pid: int) -> int:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def split_own(roots: Collection[int], marked: Sequence[int]) -> tuple[list[int], list[int]]:
    """``marked`` pids split into (the lab's own: ``roots`` and their descendants, strays).

    A stray carries the lab's marker but descends from no process the lab
    recorded: left by an earlier run, or started by hand with the marker.
    """
    own: list[int] = []
    strays: list[int] = []
    for pid in marked:
        seen, cur = set(), pid
        while cur > 1 and cur not in roots and cur not in seen:
            seen.add(cur)
            cur = _parent(cur)
        (own if cur in roots else strays).append(pid)
    return own, strays
