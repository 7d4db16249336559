"""Collector settings: flags, NETMESH_ environment, validation with clear messages."""

from __future__ import annotations

import pytest

from collector.__main__ import main
from collector.judging import Criteria
from collector.settings import CollectorSettings, rca_criteria
from netmesh.config import SettingsError, load, settings_table


def test_defaults() -> None:
    s = load(CollectorSettings, [], {})
    assert s.mode == "static"
    assert s.port == 9100
    assert s.report_ttl == 60.0
    assert s.stale_after == 30.0
    assert s.max_series_per_agent == 30_000
    assert s.max_retransmit_series_per_agent == 500
    assert s.max_report_bytes == 8 * 1024 * 1024
    assert s.exclude_not_ready_nodes and s.exclude_unschedulable_nodes


def test_env_and_flags() -> None:
    s = load(
        CollectorSettings,
        ["--report-ttl", "20"],
        {
            "NETMESH_REPORT_TTL": "90",
            "NETMESH_STALE_AFTER": "10",
            "NETMESH_MODE": "kubernetes",
            "NETMESH_EXCLUDE_UNSCHEDULABLE_NODES": "false",
        },
    )
    assert s.report_ttl == 20
    assert s.stale_after == 10
    assert s.mode == "kubernetes"
    assert not s.exclude_unschedulable_nodes


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"NETMESH_MODE": "swarm"}, "mode 'swarm'"),
        ({"NETMESH_PORT": "0"}, "port 0"),
        ({"NETMESH_REPORT_TTL": "100", "NETMESH_STALE_AFTER": "200"}, "stale_after 200"),
        ({"NETMESH_MAX_REPORT_BYTES": "10"}, "max_report_bytes"),
        ({"NETMESH_MAX_RETRANSMIT_SERIES_PER_AGENT": "0"}, "'other' bucket"),
        ({"NETMESH_BIND_ADDRESS": "localhost"}, "not an IP address"),
        ({"NETMESH_REPORT_TTL": "soon"}, "NETMESH_REPORT_TTL='soon'"),
        ({"NETMESH_MODE": "kubernetes", "NETMESH_AGENT_SELECTOR": ""}, "agent_selector"),
        ({"NETMESH_WATCH_BACKOFF": "60"}, "watch_backoff"),
        ({"NETMESH_GC_FULL_INTERVAL": "0.5"}, "gc_full_interval 0.5"),
    ],
)
def test_invalid_settings_are_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as err:
        load(CollectorSettings, [], env)
    assert needle in str(err.value)


def test_main_rejects_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "70000", "--mode", "x"]) == 2
    err = capsys.readouterr().err
    assert "port 70000" in err and "mode 'x'" in err


def test_every_field_documented() -> None:
    table = settings_table(CollectorSettings)
    assert "`NETMESH_REPORT_TTL`" in table
    assert "|  |" not in table


def test_main_kubernetes_mode_without_config_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--mode", "kubernetes", "--kubeconfig", "/nonexistent/kubeconfig"]) == 2
    assert "cannot configure the Kubernetes client from /nonexistent" in capsys.readouterr().err


def test_rca_criteria_from_settings() -> None:
    s = load(
        CollectorSettings,
        ["--rca-loss-ratio", "0.1", "--rca-min-peers", "3", "--rca-baseline-samples", "20"],
        {"NETMESH_RCA_BASELINE_MIN_SAMPLES": "5", "NETMESH_RCA_MIN_LIFT": "1.5"},
    )
    assert rca_criteria(s) == Criteria(
        loss_ratio=0.1,
        retransmit_ratio=0.02,
        mss_bytes=1448,
        bandwidth_fraction=0.5,
        baseline_min_samples=5,
        ebpf_retransmits_per_second=10.0,
        min_failing_paths=2,
        min_peers=3,
        min_confidence=0.5,
        min_lift=1.5,
        max_suspects=3,
        cluster_wide_ratio=0.5,
    )
