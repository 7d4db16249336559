"""Run system commands (ip, tc, iptables) with timeouts and clear errors."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 20.0


class CommandError(RuntimeError):
    """A system command failed; the message has the command and its stderr."""

    def __init__(self, cmd: Sequence[str], returncode: int, stderr: str) -> None:
        self.cmd = list(cmd)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"`{' '.join(cmd)}` failed ({returncode}): {self.stderr}")


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    stdin: str | None = None,
) -> str:
    """Run ``cmd`` (``stdin`` as its input); return stdout. Raises CommandError (check=True)
    or on timeout."""
    log.debug("run: %s", " ".join(cmd))
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False, input=stdin
        )
    except subprocess.TimeoutExpired:
        raise CommandError(cmd, -1, f"timed out after {timeout}s") from None
    except FileNotFoundError:
        raise CommandError(
            cmd, -1, f"{cmd[0]}: not installed (run scripts/install-deps.sh)"
        ) from None
    if check and proc.returncode != 0:
        raise CommandError(cmd, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout


def ok(cmd: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """True when ``cmd`` exits 0 (errors are expected and ignored)."""
    try:
        run(cmd, timeout=timeout)
    except CommandError:
        return False
    return True


def in_ns(ns: str, cmd: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]
