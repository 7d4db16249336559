"""The manifests render, validate against the Kubernetes schema, and agree with the code.

- every render (default and each component) is valid for Kubernetes 1.32 and the
  newest release kubernetes-validate knows, strictly (no unknown fields);
- operator objects (no schema here) are checked for structure, and the
  PrometheusRule's groups with ``promtool check rules``;
- every ConfigMap key and container env var is a real NETMESH_ setting whose
  value passes the service's own validation, and ports, selectors, namespace
  and the collector URL agree across objects;
- the generated operator objects are the ones scripts/gen_manifests.py makes
  from dashboards/ today.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import urllib.parse
from typing import Any

import kubernetes_validate
import pytest
import yaml

from agent.settings import AgentSettings
from collector.settings import CollectorSettings
from netmesh.config import env_name, fields_of, load
from tests.manifests.conftest import (
    COMPONENTS,
    RENDERS,
    ROOT,
    Render,
    Renderer,
    containers,
    dashboards_missing,
    gen_manifests,
)

# The kubectl here, and the newest schema the package ships.
K8S_VERSIONS = ("1.32.0", kubernetes_validate.latest_version())
OPERATOR_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


def test_every_component_has_a_render() -> None:
    on_disk = {p.name for p in COMPONENTS.iterdir() if (p / "kustomization.yaml").is_file()}
    covered = {c for comps in RENDERS.values() for c in comps}
    assert on_disk == covered, f"components without a render test: {on_disk - covered}"


def test_renders(any_render: Render) -> None:
    kinds = {d["kind"] for d in any_render.docs}
    assert {"Namespace", "DaemonSet", "Deployment", "Service", "ClusterRole"} <= kinds
    for doc in any_render.docs:
        cluster_scoped = doc["kind"] in {
            "Namespace",
            "ClusterRole",
            "ClusterRoleBinding",
            "PriorityClass",
        }
        ns = doc["metadata"].get("namespace")
        assert ns == (None if cluster_scoped else "netmesh"), (doc["kind"], ns)
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "netmesh"


def schema_problems(docs: list[dict[str, Any]], version: str) -> list[str]:
    """Every object but the operator kinds, validated strictly against one Kubernetes version."""
    problems = []
    for doc in docs:
        if doc["kind"] in OPERATOR_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(p) for p in exc.path)
            problems.append(f"{doc['kind']}/{doc['metadata']['name']} {where}: {exc.message}")
    return problems


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_objects_match_the_kubernetes_schema(any_render: Render, version: str) -> None:
    problems = schema_problems(any_render.docs, version)
    assert not problems, "\n".join(problems)


def _structural_operator_check(doc: dict[str, Any]) -> None:
    """No CRD schema is available offline: check what the operator needs to act."""
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    spec = doc["spec"]
    if doc["kind"] == "ServiceMonitor":
        assert spec["selector"]["matchLabels"] and spec["endpoints"]
        assert all(isinstance(e["port"], str) for e in spec["endpoints"])
    elif doc["kind"] == "PodMonitor":
        assert spec["selector"]["matchLabels"] and spec["podMetricsEndpoints"]
        assert all(isinstance(e["port"], str) for e in spec["podMetricsEndpoints"])
    elif doc["kind"] == "PrometheusRule":
        assert spec["groups"]
        for group in spec["groups"]:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert rule["expr"] and (("alert" in rule) != ("record" in rule))


def test_operator_objects(renderer: Renderer) -> None:
    r = renderer("agent-podmonitor")
    for doc in r.kind("PodMonitor"):
        _structural_operator_check(doc)
    reason = dashboards_missing()
    if reason:
        pytest.skip(reason)
    r = renderer("prometheus-operator")
    kinds = {d["kind"] for d in r.docs if d["kind"] in OPERATOR_KINDS}
    assert kinds == {"ServiceMonitor", "PrometheusRule"}
    for doc in r.docs:
        if doc["kind"] in OPERATOR_KINDS:
            _structural_operator_check(doc)
            assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_monitors_select_existing_ports(renderer: Renderer) -> None:
    r = renderer("agent-podmonitor")
    (pm,) = r.kind("PodMonitor")
    agent = r.one("DaemonSet", "netmesh-agent")["spec"]["template"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= agent["metadata"]["labels"].items()
    ports = {p["name"] for c in containers(agent["spec"]) for p in c.get("ports", [])}
    assert {e["port"] for e in pm["spec"]["podMetricsEndpoints"]} <= ports
    if dashboards_missing():
        pytest.skip(str(dashboards_missing()))
    r = renderer("prometheus-operator")
    (sm,) = r.kind("ServiceMonitor")
    svc = r.one("Service", "netmesh-collector")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert {e["port"] for e in sm["spec"]["endpoints"]} <= {p["name"] for p in svc["spec"]["ports"]}


def test_prometheus_rule_passes_promtool(renderer: Renderer, tmp_path: Any) -> None:
    reason = dashboards_missing()
    if reason:
        pytest.skip(reason)
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing (scripts/install-deps.sh installs prometheus)")
    (rule,) = renderer("prometheus-operator").kind("PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    proc = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dashboard_configmap_is_the_dashboard(renderer: Renderer) -> None:
    reason = dashboards_missing()
    if reason:
        pytest.skip(reason)
    r = renderer("prometheus-operator")
    cm = r.one("ConfigMap", "netmesh-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["data"] == {"netmesh.json": gen_manifests.DASHBOARD.read_text()}


def test_generated_operator_objects_are_current() -> None:
    try:
        rendered = gen_manifests.render()
    except gen_manifests.MissingSources as exc:
        pytest.skip(f"dashboards/ is incomplete ({exc})")
    stale = gen_manifests.stale(rendered)
    assert not stale, f"stale: {stale}: run python scripts/gen_manifests.py"


# --------------------------------------------------------------------------- settings


def _env_of(container: dict[str, Any], r: Render) -> dict[str, str]:
    """The container's environment: its ConfigMaps, then env (downward API as samples)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(r.one("ConfigMap", source["configMapRef"]["name"])["data"])
    samples = {"spec.nodeName": "node-a", "status.hostIP": "192.0.2.10"}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            env[var["name"]] = samples[var["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


@pytest.mark.parametrize(
    ("kind", "name", "settings_cls"),
    [
        ("DaemonSet", "netmesh-agent", AgentSettings),
        ("Deployment", "netmesh-collector", CollectorSettings),
    ],
)
def test_every_setting_in_the_manifests_is_real_and_valid(
    default: Render, kind: str, name: str, settings_cls: type[Any]
) -> None:
    (container,) = default.one(kind, name)["spec"]["template"]["spec"]["containers"]
    env = _env_of(container, default)
    known = {env_name(f.name) for f in fields_of(settings_cls)}
    unknown = sorted(set(env) - known)
    assert not unknown, f"{name}: not settings of {settings_cls.__name__}: {unknown}"
    # The service's own parser and validation accept every value.
    load(settings_cls, [], env)


def test_configmap_keys_are_settings(default: Render) -> None:
    agent_keys = {env_name(f.name) for f in fields_of(AgentSettings)}
    collector_keys = {env_name(f.name) for f in fields_of(CollectorSettings)}
    assert set(default.configmap_data("netmesh-agent")) <= agent_keys
    assert set(default.configmap_data("netmesh-collector")) <= collector_keys


def _port(container: dict[str, Any], name: str, protocol: str = "TCP") -> int:
    (port,) = [
        p["containerPort"]
        for p in container["ports"]
        if p["name"] == name and p.get("protocol", "TCP") == protocol
    ]
    return int(port)


def test_ports_selectors_and_urls_agree(default: Render) -> None:
    ds = default.one("DaemonSet", "netmesh-agent")
    (agent,) = ds["spec"]["template"]["spec"]["containers"]
    a = load(AgentSettings, [], _env_of(agent, default))
    dep = default.one("Deployment", "netmesh-collector")
    (coll,) = dep["spec"]["template"]["spec"]["containers"]
    c = load(CollectorSettings, [], _env_of(coll, default))
    svc = default.one("Service", "netmesh-collector")

    assert _port(agent, "http") == a.http_port
    assert _port(agent, "iperf3") == a.iperf3_port == c.agent_iperf3_port
    assert _port(agent, "iperf3-udp", "UDP") == a.iperf3_port
    assert a.bind_address == "0.0.0.0"
    assert {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in agent["env"]} == {
        "NETMESH_NODE_NAME": "spec.nodeName",
        "NETMESH_ADVERTISE_ADDRESS": "status.hostIP",
    }

    assert c.mode == "kubernetes"
    assert _port(coll, "http") == c.port
    (svc_port,) = svc["spec"]["ports"]
    assert svc_port["targetPort"] == "http"
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert svc["metadata"]["annotations"]["prometheus.io/port"] == str(svc_port["port"])

    url = urllib.parse.urlsplit(a.collector_url)
    assert url.hostname == f"{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc"
    assert url.port == svc_port["port"]

    # The collector's membership watch finds exactly the agent pods.
    assert c.agent_namespace == ds["metadata"]["namespace"]
    key, _, value = c.agent_selector.partition("=")
    assert ds["spec"]["template"]["metadata"]["labels"][key] == value
    assert dep["spec"]["template"]["metadata"]["labels"].get(key) != value


def test_image_tag_is_the_package_version(any_render: Render) -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    version = cfg["metadata"]["version"]
    for doc in any_render.docs:
        if doc["kind"] in {"DaemonSet", "Deployment"}:
            for c in containers(doc["spec"]["template"]["spec"]):
                assert c["image"].rsplit(":", 1)[1] == version, c["image"]
