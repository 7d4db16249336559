"""The probe's failure reasons: the true cause from BCC's stderr and the process's privileges.

The stderr texts are what BCC 0.26 printed here (the map EPERM line was
captured from the agent container under podman's default seccomp profile).
"""

from __future__ import annotations

import os
import sys

import pytest

from agent.probe_errors import (
    ProcessFacts,
    capture_stderr,
    classify,
    process_facts,
)
from agent.probe_logic import CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN

BPF_PAIR = 1 << CAP_BPF | 1 << CAP_PERFMON
COMPILE_FAILED = "Failed to compile BPF module b'<text>'"
MAP_EPERM = "could not open bpf map: probe_stats, error: Operation not permitted\n"
PROG_EPERM = "bpf: Failed to load program: Operation not permitted\n"
PERF_EPERM = (
    "perf_event_open(/sys/kernel/tracing/events/tcp/tcp_retransmit_skb/id): "
    "Operation not permitted\n"
)
VERIFIER = (
    "bpf: Failed to load program: Permission denied\n"
    "0: (79) r6 = *(u64 *)(r1 +8)\nR1 invalid mem access 'scalar'\n"
    "processed 12 insns (limit 1000000)\n"
)
NO_HEADERS = (
    "chdir(/lib/modules/6.18.0/build): No such file or directory\n"
    "Unable to find kernel headers. Try rebuilding kernel with CONFIG_IKHEADERS=m\n"
)
HEADER_MISSING = "<built-in>:1:10: fatal error: './include/linux/kconfig.h' file not found\n"
NO_TRACEFS = (
    "open(/sys/kernel/debug/tracing/events/tcp/tcp_retransmit_skb/id): No such file or directory\n"
)
STATUS = "Name:\tpython3\nCapEff:\t000000c000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n"


def reason(log: str, facts: ProcessFacts, stage: str = "load", error: str = COMPILE_FAILED) -> str:
    return classify(
        error, log, stage=stage, variant="tracepoint", headers="/lib/modules/x/build", facts=facts
    )


def test_process_facts_from_status() -> None:
    facts = process_facts(STATUS)
    assert facts.cap_eff == BPF_PAIR
    assert facts.has(CAP_BPF) and facts.has(CAP_PERFMON) and not facts.has(CAP_SYS_ADMIN)
    assert facts.filtered
    assert process_facts("Name:\tx\n") == ProcessFacts()


def test_map_eperm_with_cap_bpf_under_seccomp_names_seccomp() -> None:
    text = reason(MAP_EPERM, ProcessFacts(cap_eff=BPF_PAIR, seccomp_mode=2))
    assert "bpf()" in text and "denied by seccomp" in text
    assert "seccompProfile" in text and "Unconfined" in text
    assert "probe_stats" in text  # the line it came from
    assert "headers" not in text  # the old, wrong reason


def test_map_eperm_without_cap_bpf_names_the_capability() -> None:
    text = reason(MAP_EPERM, ProcessFacts(cap_eff=1 << CAP_PERFMON, seccomp_mode=2))
    assert "lacks CAP_BPF" in text and "seccomp" not in text


def test_prog_eperm_without_perfmon_names_perfmon() -> None:
    # measured here: CAP_BPF alone creates the maps, then the tracing program's load fails
    text = reason(PROG_EPERM, ProcessFacts(cap_eff=1 << CAP_BPF, seccomp_mode=0))
    assert "lacks CAP_PERFMON" in text and "CAP_BPF" not in text.split("lacks")[1]


def test_prog_eperm_with_sys_admin_unfiltered_is_a_policy() -> None:
    text = reason(PROG_EPERM, ProcessFacts(cap_eff=1 << CAP_SYS_ADMIN, seccomp_mode=0))
    assert "without a seccomp filter" in text and "LSM" in text


def test_perf_event_open_eperm() -> None:
    seccomp = reason(PERF_EPERM, ProcessFacts(cap_eff=BPF_PAIR, seccomp_mode=2))
    assert "perf_event_open()" in seccomp and "denied by seccomp" in seccomp
    missing = reason(PERF_EPERM, ProcessFacts(cap_eff=1 << CAP_BPF, seccomp_mode=2))
    assert "lacks CAP_PERFMON" in missing


def test_attach_eperm_is_perf_event_open() -> None:
    text = reason(
        "",
        ProcessFacts(cap_eff=1 << CAP_BPF, seccomp_mode=0),
        stage="attach",
        error="Failed to attach BPF program: Operation not permitted",
    )
    assert "perf_event_open()" in text and "lacks CAP_PERFMON" in text


def test_verifier_rejection() -> None:
    text = reason(VERIFIER, ProcessFacts(cap_eff=BPF_PAIR, seccomp_mode=0))
    assert "verifier rejected" in text and "seccomp" not in text


@pytest.mark.parametrize("log", [NO_HEADERS, HEADER_MISSING])
def test_missing_headers(log: str) -> None:
    text = reason(log, ProcessFacts(cap_eff=BPF_PAIR))
    assert "kernel headers missing" in text and "linux-headers" in text


def test_missing_tracefs() -> None:
    text = reason(NO_TRACEFS, ProcessFacts(cap_eff=BPF_PAIR), stage="attach")
    assert "tracefs is missing" in text and "mount tracefs" in text


def test_other_compile_error_keeps_the_compiler_line() -> None:
    text = reason("/virtual/main.c:7:3: error: use of undeclared identifier 'x'\n", ProcessFacts())
    assert "BPF compile failed" in text and "undeclared identifier" in text


def test_unknown_failure_keeps_the_exception() -> None:
    assert "boom" in reason("", ProcessFacts(), error="boom")


def test_capture_stderr_collects_c_level_writes_and_replays_them(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(RuntimeError), capture_stderr() as err:
        os.write(2, b"from C: Operation not permitted\n")
        sys.stderr.flush()
        raise RuntimeError("load failed")
    assert err == ["from C: Operation not permitted\n"]
    assert "from C: Operation not permitted" in capfd.readouterr().err
