"""The Helm chart (charts/netmesh), rendered and linted by the real helm.

- ``helm lint --strict`` passes;
- with the values of each kustomize render (default, each component, full)
  ``helm template`` renders the same objects as ``kubectl kustomize``, object
  by object, ignoring only Helm's own labels and the generated ConfigMaps'
  hash suffixes (``IGNORED``, below);
- every toggle renders objects valid for Kubernetes 1.32 and the newest schema,
  the PrometheusRule passes promtool, and the settings in the ConfigMaps pass
  the services' own parsing and validation;
- values.schema.json (scripts/gen_chart.py) rejects wrong types, values out of
  the settings' bounds and unknown keys, and its bounds agree with the settings;
- ``helm package`` writes netmesh-<setup.cfg version>.tgz with appVersion the same;
- the generated chart files are current.

helm is the one scripts/install-deps.sh builds (NETMESH_HELM overrides the
path). It is missing only when the install script has not run: that fails.
"""

from __future__ import annotations

import configparser
import copy
import json
import os
import pathlib
import re
import subprocess
import sys
import tarfile
from typing import Any

import pytest
import yaml

from agent.settings import AgentSettings
from collector.settings import CollectorSettings
from netmesh.config import SettingsError, default_of, env_name, fields_of, load
from tests.manifests.conftest import RENDERS, ROOT, Render, Renderer
from tests.manifests.test_render import (
    K8S_VERSIONS,
    OPERATOR_KINDS,
    _env_of,
    _structural_operator_check,
    schema_problems,
    test_prometheus_rule_passes_promtool,
)

sys.path.insert(0, str(ROOT / "scripts"))
import gen_chart

CHART = ROOT / "charts" / "netmesh"
HELM = os.environ.get("NETMESH_HELM", "/usr/local/lib/netmesh/bin/helm")

# What may differ between `helm template` and `kubectl kustomize`, and nothing else:
# Helm's own labels on object metadata, and the 10-character hash suffix of
# the two generated ConfigMaps (kustomize hashes its own encoding; the chart
# hashes the rendered data; both roll the pods when a value changes).
HELM_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
)
GENERATED_CONFIGMAPS = ("netmesh-agent", "netmesh-collector", "netmesh-pod-endpoint")
IGNORED = {"labels": HELM_LABELS, "hash suffix of": GENERATED_CONFIGMAPS}

# values for each kustomize render of tests/manifests/conftest.py
TOGGLES: dict[str, dict[str, Any]] = {
    "default": {},
    "prometheus-operator": {"prometheusOperator": {"enabled": True}},
    "network-policy": {"networkPolicy": {"enabled": True}},
    "agent-podmonitor": {"agent": {"podMonitor": {"enabled": True}}},
    "privileged-agent": {"agent": {"privileged": True}},
    "pod-network": {"podNetwork": {"enabled": True}},
    "pod-network-policy": {"podNetwork": {"enabled": True}, "networkPolicy": {"enabled": True}},
    "full": {"prometheusOperator": {"enabled": True}, "networkPolicy": {"enabled": True}},
}
# toggles with no kustomize counterpart: rendered and validated only
EXTRA: dict[str, dict[str, Any]] = {
    "no-rbac-own-accounts": {
        "rbac": {"create": False},
        "namespace": {"create": False, "name": "monitoring"},
        "agent": {"serviceAccount": {"create": False, "name": "my-agent"}},
        "collector": {"serviceAccount": {"create": False, "name": "my-collector"}},
    },
    "other-ports": {
        "agent": {"httpPort": 9201, "iperf3Port": 5301, "lightPort": 5302},
        "collector": {"port": 9200},
        "networkPolicy": {"enabled": True},
    },
}


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if not os.access(HELM, os.X_OK):
        pytest.fail(f"helm is not installed at {HELM}: run bash scripts/install-deps.sh --helm")
    proc = subprocess.run(
        [HELM, *args], capture_output=True, text=True, check=False, timeout=120, cwd=ROOT
    )
    if check:
        assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stderr}"
    return proc


def template(values: dict[str, Any], tmp_path: pathlib.Path, name: str = "values") -> Render:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    text = helm("template", "netmesh", str(CHART), "--values", str(path)).stdout
    return Render(name=name, text=text, docs=[d for d in yaml.safe_load_all(text) if d])


def normalise(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    labels = doc["metadata"].get("labels", {})
    for label in HELM_LABELS:
        labels.pop(label, None)
    text = json.dumps(doc)
    for name in GENERATED_CONFIGMAPS:
        text = re.sub(rf'"{name}-[a-z0-9]{{10}}"', f'"{name}-<hash>"', text)
    return dict(json.loads(text))


def by_object(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for doc in map(normalise, docs):
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in out, f"{key} twice"
        out[key] = doc
    return out


def test_toggles_cover_every_kustomize_render() -> None:
    assert set(TOGGLES) == set(RENDERS)


def test_lint_strict() -> None:
    proc = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in proc.stdout


@pytest.mark.parametrize("name", sorted(TOGGLES))
def test_helm_renders_the_kustomize_objects(
    name: str, renderer: Renderer, tmp_path: pathlib.Path
) -> None:
    kustomized = by_object(renderer(name).docs)
    helmed = by_object(template(TOGGLES[name], tmp_path, name).docs)
    assert sorted(helmed) == sorted(kustomized), "different objects"
    differ = [key for key in kustomized if kustomized[key] != helmed[key]]
    detail = "\n".join(
        f"{k}:\n kustomize: {kustomized[k]}\n helm:      {helmed[k]}" for k in differ[:2]
    )
    assert not differ, f"{name}: objects differ (ignoring {IGNORED}): {differ}\n{detail}"


@pytest.fixture(params=sorted({**TOGGLES, **EXTRA}))
def helm_render(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Render:
    name = str(request.param)
    return template({**TOGGLES, **EXTRA}[name], tmp_path, name)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_toggle_is_valid_kubernetes(helm_render: Render, version: str) -> None:
    for doc in helm_render.docs:
        if doc["kind"] in OPERATOR_KINDS:
            _structural_operator_check(doc)
    problems = schema_problems(helm_render.docs, version)
    assert not problems, "\n".join(problems)


def test_every_toggle_passes_the_services_validation(helm_render: Render) -> None:
    for kind, name, cls in (
        ("DaemonSet", "netmesh-agent", AgentSettings),
        ("Deployment", "netmesh-collector", CollectorSettings),
    ):
        (container,) = helm_render.one(kind, name)["spec"]["template"]["spec"]["containers"]
        load(cls, [], _env_of(container, helm_render))


def test_rule_passes_promtool(tmp_path: pathlib.Path) -> None:
    r = template(TOGGLES["prometheus-operator"], tmp_path)

    class One:
        def __call__(self, name: str) -> Render:
            return r

    test_prometheus_rule_passes_promtool(One(), tmp_path)  # type: ignore[arg-type]


def test_ports_and_names_follow_the_values(tmp_path: pathlib.Path) -> None:
    r = template(EXTRA["other-ports"], tmp_path)
    (agent,) = r.one("DaemonSet", "netmesh-agent")["spec"]["template"]["spec"]["containers"]
    assert {p["name"]: p["containerPort"] for p in agent["ports"]} == {
        "http": 9201,
        "iperf3": 5301,
        "iperf3-udp": 5301,
        "light": 5302,
    }
    collector = r.configmap_data("netmesh-collector")
    assert collector["NETMESH_AGENT_IPERF3_PORT"] == "5301"
    agent = r.configmap_data("netmesh-agent")
    assert agent["NETMESH_COLLECTOR_URL"] == "http://netmesh-collector.netmesh.svc:9200"
    assert agent["NETMESH_SERVICE_TARGET"] == "netmesh-collector.netmesh.svc:9200"
    assert r.one("Service", "netmesh-collector")["spec"]["ports"][0]["port"] == 9200
    r = template(EXTRA["no-rbac-own-accounts"], tmp_path)
    kinds = {d["kind"] for d in r.docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "ServiceAccount", "Namespace"}
    dep = r.one("Deployment", "netmesh-collector")
    assert dep["metadata"]["namespace"] == "monitoring"
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "my-collector"
    assert r.configmap_data("netmesh-collector")["NETMESH_AGENT_NAMESPACE"] == "monitoring"
    # the agents' Service check follows the collector's Service into its namespace
    target = r.configmap_data("netmesh-agent")["NETMESH_SERVICE_TARGET"]
    assert target == "netmesh-collector.monitoring.svc:9100", target


def _all_settings(value_of: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for component in gen_chart.SETTINGS:
        values[component] = {s.key: value_of(s) for s in gen_chart.settings(component)}
    return values


def _as_value(s: gen_chart.Setting) -> Any:
    value = default_of(s.field)
    if isinstance(value, tuple):
        return [str(v) for v in value]
    return value


def test_every_setting_reaches_its_variable(tmp_path: pathlib.Path) -> None:
    """Each setting, set in values, arrives as its NETMESH_ variable and parses back."""
    r = template(_all_settings(_as_value), tmp_path)
    for component, cls in gen_chart.SETTINGS.items():
        data = r.configmap_data(f"netmesh-{component}")
        pod = set(gen_chart.FROM_POD[component])
        expected = {env_name(f.name) for f in fields_of(cls) if f.name not in pod}
        assert set(data) == expected
        env = {**data, "NETMESH_NODE_NAME": "node-a", "NETMESH_ADVERTISE_ADDRESS": "192.0.2.10"}
        settings = load(cls, [], env)
        for f in fields_of(cls):
            if f.name not in pod:
                assert getattr(settings, f.name) == default_of(f), f.name


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("agent.testDuration=abc", "at '/agent/testDuration': got string, want null or integer"),
        ("agent.testDuration=0", "/agent/testDuration"),
        ("agent.probeMode=fast", "/agent/probeMode"),
        ("agent.protocols={tcp,icmp}", "/agent/protocols/1"),
        ("agent.udpBitrate=fast", "/agent/udpBitrate"),
        ("collector.rcaLossRatio=2", "/collector/rcaLossRatio"),
        ("collector.excludeDeletingNodes=maybe", "/collector/excludeDeletingNodes"),
        ("agent.bogus=1", "additional properties 'bogus' not allowed"),
        ("bogus=1", "additional properties 'bogus' not allowed"),
        ("prometheusOperator.enabled=yes", "/prometheusOperator/enabled"),
    ],
)
def test_schema_rejects(setting: str, message: str) -> None:
    proc = helm("template", "netmesh", str(CHART), "--set", setting, check=False)
    assert proc.returncode != 0, f"{setting} was accepted"
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert message in proc.stderr, proc.stderr


def _outside(bound: str, limit: Any, kind: str) -> Any:
    step = 1 if kind == "integer" else 0.01
    return {
        "minimum": limit - step,
        "exclusiveMinimum": limit,
        "maximum": limit + step,
        "exclusiveMaximum": limit,
    }[bound]


def test_schema_bounds_are_the_settings_bounds() -> None:
    """Every bound in the schema: a value just outside it fails the service's validation too."""
    base = {"NETMESH_NODE_NAME": "node-a", "NETMESH_ADVERTISE_ADDRESS": "192.0.2.10"}
    for component, cls in gen_chart.SETTINGS.items():
        by_name = {s.field.name: s for s in gen_chart.settings(component)}
        assert set(gen_chart.BOUNDS[component]) <= set(by_name)
        for name, bounds in gen_chart.BOUNDS[component].items():
            s = by_name[name]
            cases: list[Any] = []
            for bound, limit in bounds.items():
                if bound in {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"}:
                    cases.append(_outside(bound, limit, s.kind))
                elif bound == "enum":
                    cases.append("bogus")
                    for member in limit:
                        load(cls, [], base, overrides={name: member})
                elif bound == "items":
                    cases.append(("bogus",))
                elif bound == "minItems":
                    cases.append(())
                elif bound == "maxItems":
                    cases.append(tuple(f"10.{i}.0.0/16" for i in range(limit + 1)))
            for value in cases:
                with pytest.raises(SettingsError):
                    load(cls, [], base, overrides={name: value})


def _setup_version() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg["metadata"]["version"]


def test_package_version_is_the_app_version(tmp_path: pathlib.Path) -> None:
    version = _setup_version()
    helm("package", str(CHART), "--destination", str(tmp_path))
    archive = tmp_path / f"netmesh-{version}.tgz"
    assert archive.is_file(), list(tmp_path.iterdir())
    with tarfile.open(archive) as tar:
        member = tar.extractfile("netmesh/Chart.yaml")
        assert member is not None
        chart = yaml.safe_load(member.read())
        names = set(tar.getnames())
    assert chart["version"] == version and chart["appVersion"] == version
    assert {"netmesh/values.schema.json", "netmesh/files/netmesh.json"} <= names


def test_image_defaults_to_the_app_version(tmp_path: pathlib.Path) -> None:
    r = template({}, tmp_path)
    for kind in ("DaemonSet", "Deployment"):
        for doc in r.kind(kind):
            for c in doc["spec"]["template"]["spec"]["containers"]:
                assert c["image"] == f"docker.io/netmesh/netmesh:{_setup_version()}"


def test_generated_chart_files_are_current() -> None:
    stale = gen_chart.stale(gen_chart.render())
    assert not stale, f"stale: {stale}: run python scripts/gen_chart.py"
