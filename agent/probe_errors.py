"""Why the BPF probe did not load: the true cause, in words an operator can act on.

BCC reports most failures as one Python exception ("Failed to compile BPF
module", "Failed to attach BPF program ...") and writes the real cause to the
process's stderr from C++ (``could not open bpf map: ..., error: Operation not
permitted``, ``bpf: Failed to load program: Permission denied`` followed by the
verifier log, ``fatal error: 'linux/...' file not found``). ``classify`` turns
that text plus two facts about the process -- its effective capabilities
(``CapEff:``) and its seccomp mode (``Seccomp:``, both from /proc/self/status)
-- into one reason:

- EPERM from ``bpf()`` or ``perf_event_open()`` while the process holds the
  capability the kernel asks for and runs under a seccomp filter: the runtime's
  default seccomp profile denied the call (containers-common's profile, used by
  podman and CRI-O, allows ``bpf()`` only to CAP_SYS_ADMIN);
- the same EPERM without the capability: which capability is missing;
- compile errors about missing files: kernel headers;
- a missing tracepoint ``id`` or tracefs: tracefs/debugfs not mounted;
- the verifier's refusal (EACCES/EINVAL with a log): a verifier rejection.

``capture_stderr`` (the one piece of I/O here) collects what the C++ side
writes to file descriptor 2 during a call and writes it back to the real
stderr afterwards, so nothing is lost and the text can be classified.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from agent.probe_logic import CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN

SECCOMP_MODE_FILTER = 2

SECCOMP_HINT = (
    "run the agent container with seccompProfile type Unconfined (the shipped manifests "
    "do), or a Localhost profile that allows bpf() and perf_event_open()"
)
HEADERS_HINT = (
    "install the node's linux-headers-$(uname -r) (mounted from /lib/modules and /usr/src) "
    "or load CONFIG_IKHEADERS (modprobe kheaders)"
)
TRACEFS_HINT = (
    "mount tracefs at /sys/kernel/tracing (or debugfs at /sys/kernel/debug) on the node "
    "and into the agent container"
)

_EPERM = re.compile(r"operation not permitted|\bEPERM\b", re.IGNORECASE)
_MAP = re.compile(r"could not open bpf map|failed to create map|map create", re.IGNORECASE)
_PROG = re.compile(r"failed to load program|bpf_prog_load|prog load", re.IGNORECASE)
_PERF = re.compile(r"perf_event_open", re.IGNORECASE)
_VERIFIER = re.compile(
    r"permission denied|invalid argument|verifier|processed \d+ insns|"
    r"invalid (?:mem|indirect|access)|R\d+ ",
    re.IGNORECASE,
)
_HEADERS = re.compile(
    r"file not found|unable to find kernel headers|no such file or directory.*(?:/build|/source)"
    r"|chdir\(/lib/modules",
    re.IGNORECASE,
)
_TRACEFS = re.compile(
    r"(?:tracing|debug)/events/\S*/id|(?:tracefs|debugfs)\S* .*(?:not|no such)",
    re.IGNORECASE,
)
_COMPILE = re.compile(r"\berror:", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class ProcessFacts:
    """What /proc/self/status says about this process's privileges."""

    cap_eff: int = 0
    seccomp_mode: int = 0  # 0 none, 1 strict, 2 filter

    @property
    def filtered(self) -> bool:
        return self.seccomp_mode == SECCOMP_MODE_FILTER

    def has(self, cap: int) -> bool:
        return bool(self.cap_eff >> cap & 1)


def process_facts(status_text: str) -> ProcessFacts:
    """CapEff and Seccomp from a /proc/<pid>/status text (missing fields read as 0)."""
    cap_eff = seccomp = 0
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        with contextlib.suppress(ValueError):
            if key == "CapEff":
                cap_eff = int(value.strip(), 16)
            elif key == "Seccomp":
                seccomp = int(value.strip())
    return ProcessFacts(cap_eff=cap_eff, seccomp_mode=seccomp)


def read_process_facts(path: str = "/proc/self/status") -> ProcessFacts:
    try:
        with open(path) as f:
            return process_facts(f.read())
    except OSError:
        return ProcessFacts()


def _eperm(syscall: str, needed: tuple[tuple[str, int], ...], facts: ProcessFacts) -> str:
    """EPERM from ``syscall``: a missing capability if one is missing, else seccomp (or policy)."""
    names = "+".join(name for name, _ in needed)
    missing = [name for name, cap in needed if not facts.has(cap)]
    if missing and not facts.has(CAP_SYS_ADMIN):
        return (
            f"{syscall} returned EPERM: the agent lacks {' and '.join(missing)} (effective "
            f"capabilities 0x{facts.cap_eff:x}); add it to the container's capabilities"
        )
    if facts.filtered:
        return (
            f"{syscall} returned EPERM although the agent holds {names}: denied by seccomp "
            f"(the runtime's default profile allows it only to CAP_SYS_ADMIN); {SECCOMP_HINT}"
        )
    return (
        f"{syscall} returned EPERM although the agent holds {names} and runs without a "
        "seccomp filter: a security module (LSM) or kernel.unprivileged_bpf_disabled/"
        "perf_event_paranoid policy refused it"
    )


def classify(
    error: str, log: str, *, stage: str, variant: str, headers: str, facts: ProcessFacts
) -> str:
    """One reason for a failed ``stage`` ("load" or "attach") of the ``variant`` program.

    ``error`` is the exception's text, ``log`` what BCC wrote to stderr meanwhile.
    """
    text = f"{error}\n{log}"
    first = _first_line(log) or error
    if _EPERM.search(text):
        if _PERF.search(text) or stage == "attach":
            why = _eperm("perf_event_open()", (("CAP_PERFMON", CAP_PERFMON),), facts)
        elif _PROG.search(text):  # loading a tracing program takes both
            why = _eperm("bpf()", (("CAP_BPF", CAP_BPF), ("CAP_PERFMON", CAP_PERFMON)), facts)
        else:
            why = _eperm("bpf()", (("CAP_BPF", CAP_BPF),), facts)
        return f"{variant}: {why} [{first}]"
    if _TRACEFS.search(text):
        return f"{variant}: tracefs is missing ({first}); {TRACEFS_HINT}"
    if stage == "attach":
        return f"{variant}: attach failed: {first}"
    if _PROG.search(text) and _VERIFIER.search(text):
        return (
            f"{variant}: the BPF verifier rejected the program ({first}); the kernel's "
            "verifier log is on stderr (probe_print_source shows the C)"
        )
    if _HEADERS.search(text):
        return (
            f"{variant}: BPF compile failed, kernel headers missing or incomplete ({first}); "
            f"headers used: {headers}; {HEADERS_HINT}"
        )
    if _COMPILE.search(log):
        return (
            f"{variant}: BPF compile failed ({first}); headers used: {headers} (they must "
            "match the running kernel; the compiler's errors are on stderr)"
        )
    return f"{variant}: BPF load failed ({error}); headers used: {headers}; details on stderr"


def _first_line(log: str) -> str:
    """The most telling line of BCC's stderr: the first error, else the first line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    for line in lines:
        if _EPERM.search(line) or _COMPILE.search(line) or "failed" in line.lower():
            return line[:200]
    return lines[0][:200] if lines else ""


@contextlib.contextmanager
def capture_stderr() -> Iterator[list[str]]:
    """Collect what is written to fd 2 inside the block (by C code too); replay it after.

    Yields a list that holds the captured text once the block has ended.
    """
    out: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            data = tmp.read()
            if data:
                os.write(2, data)
            out.append(data.decode(errors="replace"))
