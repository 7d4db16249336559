"""The pod-network component: a second, unprivileged DaemonSet of the same image in
network=pod mode; its settings are real and valid; the network policies admit it."""

from __future__ import annotations

from typing import Any

from agent.settings import AgentSettings
from collector.settings import CollectorSettings
from netmesh.config import load
from tests.manifests.conftest import COMPONENTS, MANIFESTS, Render, Renderer

NAME = "netmesh-pod-endpoint"


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["spec"]["template"]["spec"])


def _env(container: dict[str, Any], r: Render) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        env.update(r.one("ConfigMap", source["configMapRef"]["name"])["data"])
    samples = {"spec.nodeName": "node-a", "status.podIP": "10.244.1.7"}
    for var in container["env"]:
        env[var["name"]] = var.get("value") or samples[var["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def test_pod_endpoint_is_unprivileged_on_the_pod_network(renderer: Renderer) -> None:
    r = renderer("pod-network")
    pod = _pod(r.one("DaemonSet", NAME))
    assert "hostNetwork" not in pod and "hostPID" not in pod
    assert not any("hostPath" in v for v in pod["volumes"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert {"operator": "Exists"} in pod["tolerations"]
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    # Same image as the agent.
    (agent,) = _pod(r.one("DaemonSet", "netmesh-agent"))["containers"]
    assert c["image"] == agent["image"]
    # No RBAC for its ServiceAccount.
    for binding in r.kind("ClusterRoleBinding") + r.kind("RoleBinding"):
        assert pod["serviceAccountName"] not in {s["name"] for s in binding["subjects"]}


def test_pod_endpoint_settings_are_valid_and_pod_mode(renderer: Renderer) -> None:
    r = renderer("pod-network")
    pod = _pod(r.one("DaemonSet", NAME))
    (c,) = pod["containers"]
    settings = load(AgentSettings, [], _env(c, r))
    assert settings.network == "pod" and not settings.runs_probe
    assert settings.address == "10.244.1.7"  # the pod IP (downward API status.podIP)
    assert settings.node_name == "node-a"  # spec.nodeName
    ports = {(p["containerPort"], p["protocol"]) for p in c["ports"]}
    assert ports == {
        (settings.http_port, "TCP"),
        (settings.iperf3_port, "TCP"),
        (settings.iperf3_port, "UDP"),
        (settings.light_port, "UDP"),
    }
    # Reports to the collector's Service, with a token for the collector's audience.
    collector = load(CollectorSettings, [], r.configmap_data("netmesh-collector"))
    service = r.one("Service", "netmesh-collector")
    assert settings.collector_url == (
        f"http://netmesh-collector.netmesh.svc:{service['spec']['ports'][0]['port']}"
    )
    (volume,) = [v for v in pod["volumes"] if "projected" in v]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == collector.auth_audience


def test_network_policies_admit_pod_endpoints(renderer: Renderer) -> None:
    r = renderer("pod-network-policy")
    policies = {p["metadata"]["name"]: p for p in r.kind("NetworkPolicy")}
    ds = r.one("DaemonSet", NAME)
    policy = policies[NAME]["spec"]
    labels = ds["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    allowed = {(p["port"], p["protocol"]) for rule in policy["ingress"] for p in rule["ports"]}
    (c,) = _pod(ds)["containers"]
    assert allowed == {(p["containerPort"], p["protocol"]) for p in c["ports"]}
    probe_rule = next(rule for rule in policy["ingress"] if rule["ports"][0]["port"] == 5201)
    assert [p["podSelector"]["matchLabels"] for p in probe_rule["from"]] == [
        {"app.kubernetes.io/name": NAME}
    ]
    collector_from = policies["netmesh-collector"]["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": NAME}}} in collector_from


def test_pod_endpoint_env_is_the_agents_on_the_pod_network() -> None:
    # The Helm chart derives it the same way (templates/_helpers.tpl netmesh.podEndpointEnv).
    agent = (MANIFESTS / "agent.env").read_text().splitlines()
    pod = (COMPONENTS / "pod-network" / "pod-endpoint.env").read_text().splitlines()
    assert sorted(pod) == sorted([*agent, "NETMESH_NETWORK=pod"])
