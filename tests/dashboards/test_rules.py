"""Alerting and recording rules: promtool-valid, tested both ways, documented, real names."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
import yaml

from tests.dashboards import files

needs_promtool = pytest.mark.skipif(
    files.promtool() is None, reason="promtool is not installed (scripts/install-deps.sh)"
)

RUNBOOK_BASE = "https://github.com/netmesh/netmesh/blob/main/README.md#"


@needs_promtool
def test_promtool_check_rules() -> None:
    proc = files.run_promtool("check", "rules", *map(str, files.RULE_FILES))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    assert files.RULE_TESTS, "no promtool rule tests under dashboards/tests/"
    proc = files.run_promtool("test", "rules", *map(str, files.RULE_TESTS), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    fires: dict[str, int] = defaultdict(int)
    quiet: dict[str, int] = defaultdict(int)
    for path in files.RULE_TESTS:
        doc = yaml.safe_load(path.read_text())
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    fires[case["alertname"]] += 1
                else:
                    quiet[case["alertname"]] += 1
    names = [a["alert"] for a in files.alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert not [n for n in names if not fires[n]], "alerts without a 'fires' case"
    assert not [n for n in names if not quiet[n]], "alerts without a 'does not fire' case"
    unknown = (set(fires) | set(quiet)) - set(names)
    assert not unknown, f"tests name alerts that do not exist: {unknown}"


def test_every_alert_is_documented_and_labelled() -> None:
    readme = files.README.read_text()
    for alert in files.alerts():
        name = alert["alert"]
        assert name.startswith("Netmesh"), name
        assert alert.get("for"), f"{name}: no for: duration"
        assert alert["labels"]["severity"] in ("critical", "warning", "info"), name
        notes = alert["annotations"]
        for key in ("summary", "description", "runbook_url"):
            assert notes.get(key, "").strip(), f"{name}: no {key}"
        assert notes["runbook_url"] == RUNBOOK_BASE + name.lower(), name
        # the runbook anchor is a README heading named after the alert
        assert re.search(rf"^#+ {name}\s*$", readme, re.M), f"README has no runbook for {name}"


def test_rules_use_only_names_that_exist() -> None:
    known = files.exposed_metric_names() | files.recorded_names()
    for rule in files.rules():
        used = files.metric_names(rule["expr"])
        assert used, f"{rule}: mentions no netmesh metric"
        assert used <= known, f"{rule.get('alert') or rule.get('record')}: {used - known}"


def test_recording_rule_names_follow_the_convention() -> None:
    # level:metric:operations (https://prometheus.io/docs/practices/rules/)
    for name in files.recorded_names():
        assert re.fullmatch(r"netmesh:[a-z0-9_]+:[a-z0-9_:]+", name), name


def test_recording_rules_are_used() -> None:
    """Every recording rule feeds an alert, another recording rule or a panel."""
    exprs = [r["expr"] for r in files.rules()]
    exprs += [q.expr for q in files.queries(files.load_dashboard())]
    used = set().union(*(files.metric_names(e) for e in exprs))
    assert files.recorded_names() <= used, files.recorded_names() - used


def test_short_copy_changes_only_durations() -> None:
    short = files.short_rules(for_="2s", interval="1s")
    assert set(short) == {p.name for p in files.RULE_FILES}
    for path in files.RULE_FILES:
        original = yaml.safe_load(path.read_text())["groups"]
        copy = yaml.safe_load(short[path.name])["groups"]
        assert [g["name"] for g in copy] == [g["name"] for g in original]
        for g_orig, g_copy in zip(original, copy, strict=True):
            assert g_copy["interval"] == "1s"
            for r_orig, r_copy in zip(g_orig["rules"], g_copy["rules"], strict=True):
                if "for" in r_orig:
                    assert r_copy.pop("for") == "2s"
                assert r_copy == {k: v for k, v in r_orig.items() if k != "for"}


@needs_promtool
def test_short_copy_is_valid(tmp_path: pytest.TempPathFactory) -> None:
    paths = []
    for name, text in files.short_rules().items():
        path = tmp_path / name  # type: ignore[operator]
        path.write_text(text)
        paths.append(str(path))
    proc = files.run_promtool("check", "rules", *paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr
