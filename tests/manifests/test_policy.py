"""Security and operability policy, checked on the rendered objects.

The agent: no API token and no RBAC, only a short-lived pod-bound token for
the collector's audience; host network, every node, the two BPF capabilities
and nothing else, read-only mounts. The collector: non-root, read-only root
filesystem, no capabilities, RuntimeDefault seccomp. RBAC: read-only on pods
and nodes, plus create on tokenreviews. Everywhere: resources, probes, a
pinned image tag.
"""

from __future__ import annotations

import pathlib
from typing import Any

from agent.settings import AgentSettings
from collector.settings import CollectorSettings
from netmesh.config import load
from tests.manifests.conftest import Render, Renderer, containers, workloads

# What the agent's eBPF probe needs (measured by test_least_privilege.py).
AGENT_CAPABILITIES = {"BPF", "PERFMON"}


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc["spec"]["template"]["spec"])


def test_agent_has_no_token_and_no_api_access(default: Render) -> None:
    ds = default.one("DaemonSet", "netmesh-agent")
    pod = _pod(ds)
    assert pod["automountServiceAccountToken"] is False
    sa = default.one("ServiceAccount", pod["serviceAccountName"])
    assert sa["automountServiceAccountToken"] is False
    for binding in default.kind("ClusterRoleBinding") + default.kind("RoleBinding"):
        names = {s["name"] for s in binding["subjects"]}
        assert pod["serviceAccountName"] not in names, binding["metadata"]["name"]


def test_agent_token_is_short_lived_and_only_for_the_collector(default: Render) -> None:
    pod = _pod(default.one("DaemonSet", "netmesh-agent"))
    (c,) = pod["containers"]
    projected = [v for v in pod["volumes"] if "projected" in v]
    (volume,) = projected
    (source,) = volume["projected"]["sources"]
    token = source["serviceAccountToken"]
    collector = load(CollectorSettings, [], default.configmap_data("netmesh-collector"))
    assert collector.auth_mode == "tokenreview"
    # Audience-bound: the API server (audience of its own) refuses this token.
    assert token["audience"] == collector.auth_audience
    assert 600 <= token["expirationSeconds"] <= 3600  # short-lived (600 s is the API minimum)
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    env = {
        **default.configmap_data("netmesh-agent"),
        "NETMESH_NODE_NAME": "node-a",
        "NETMESH_ADVERTISE_ADDRESS": "192.0.2.10",
    }
    agent = load(AgentSettings, [], env)
    assert pathlib.PurePosixPath(agent.auth_token_file) == (
        pathlib.PurePosixPath(mount["mountPath"]) / token["path"]
    )
    # The projected volume holds nothing else (no CA bundle, no namespace, no API token).
    assert set(source) == {"serviceAccountToken"}


def test_agent_runs_on_every_node_on_the_host_network(default: Render) -> None:
    ds = default.one("DaemonSet", "netmesh-agent")
    pod = _pod(ds)
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert {"operator": "Exists"} in pod["tolerations"]
    assert "nodeSelector" not in pod and "affinity" not in pod
    default.one("PriorityClass", pod["priorityClassName"])
    update = ds["spec"]["updateStrategy"]
    assert update["type"] == "RollingUpdate" and update["rollingUpdate"]["maxUnavailable"]


def test_agent_capabilities_are_exactly_the_bpf_pair(default: Render) -> None:
    (c,) = _pod(default.one("DaemonSet", "netmesh-agent"))["containers"]
    sc = c["securityContext"]
    assert sc["privileged"] is False
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) == AGENT_CAPABILITIES
    assert "SYS_ADMIN" not in sc["capabilities"]["add"]


def test_agent_seccomp_is_unconfined_for_the_agent_container_only(default: Render) -> None:
    """containers-common's default profile (podman, CRI-O) allows bpf() only to CAP_SYS_ADMIN:
    the agent container runs Unconfined (README "Privileges"; tests/image measures both);
    the pod's default stays RuntimeDefault for anything else in it."""
    pod = _pod(default.one("DaemonSet", "netmesh-agent"))
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    assert c["securityContext"]["seccompProfile"] == {"type": "Unconfined"}


def test_agent_host_mounts_are_read_only(default: Render) -> None:
    pod = _pod(default.one("DaemonSet", "netmesh-agent"))
    (c,) = pod["containers"]
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert set(host.values()) == {
        "/lib/modules",
        "/usr/src",
        "/sys/kernel/tracing",
        "/sys/kernel/debug",
    }
    for mount in c["volumeMounts"]:
        if mount["name"] in host:
            assert mount.get("readOnly") is True, mount
            assert mount["mountPath"] == host[mount["name"]]


def test_collector_is_unprivileged(default: Render) -> None:
    pod = _pod(default.one("Deployment", "netmesh-collector"))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert not any("hostPath" in v for v in pod.get("volumes", []))
    for c in containers(pod):
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["privileged"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}


TOKEN_REVIEW_RULE = {
    "apiGroups": ["authentication.k8s.io"],
    "resources": ["tokenreviews"],
    "verbs": ["create"],
}


def test_rbac_reads_pods_and_nodes_and_reviews_tokens_only(default: Render) -> None:
    roles = default.kind("ClusterRole") + default.kind("Role")
    assert [r["metadata"]["name"] for r in roles] == ["netmesh-collector"]
    for role in roles:
        reads = [r for r in role["rules"] if r != TOKEN_REVIEW_RULE]
        assert len(reads) == len(role["rules"]) - 1, "create on tokenreviews, exactly once"
        for rule in reads:
            assert rule["apiGroups"] == [""]
            assert set(rule["resources"]) <= {"pods", "nodes"}
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
            assert "resourceNames" not in rule or rule["resourceNames"]
    for binding in default.kind("ClusterRoleBinding") + default.kind("RoleBinding"):
        assert binding["roleRef"]["name"] == "netmesh-collector"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "netmesh-collector", "namespace": "netmesh"}
        ]
    dep = default.one("Deployment", "netmesh-collector")
    assert _pod(dep)["serviceAccountName"] == "netmesh-collector"


def test_namespace_pod_security(default: Render) -> None:
    labels = default.one("Namespace", "netmesh")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"


def test_every_container_has_resources_probes_and_a_pinned_image(any_render: Render) -> None:
    for doc in workloads(any_render):
        for c in containers(_pod(doc)):
            where = f"{any_render.name}: {doc['kind']}/{doc['metadata']['name']}/{c['name']}"
            req = c["resources"]["requests"]
            assert {"cpu", "memory"} <= req.keys(), where
            assert "memory" in c["resources"]["limits"], where
            assert "livenessProbe" in c and "readinessProbe" in c, where
            image = c["image"]
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag and tag not in {"", "latest"}, where
            assert c.get("imagePullPolicy") == "IfNotPresent", where
            for probe in ("livenessProbe", "readinessProbe"):
                port = c[probe]["httpGet"]["port"]
                assert port in {p["name"] for p in c["ports"]}, where


def test_privileged_fallback_only_touches_the_agent(renderer: Renderer) -> None:
    default, priv = renderer("default"), renderer("privileged-agent")
    (c,) = _pod(priv.one("DaemonSet", "netmesh-agent"))["containers"]
    assert c["securityContext"]["privileged"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is True
    assert priv.one("Deployment", "netmesh-collector") == default.one(
        "Deployment", "netmesh-collector"
    )


def test_network_policies_cover_every_port(renderer: Renderer) -> None:
    r = renderer("network-policy")
    policies = {p["metadata"]["name"]: p for p in r.kind("NetworkPolicy")}
    for kind, name in (("DaemonSet", "netmesh-agent"), ("Deployment", "netmesh-collector")):
        doc = r.one(kind, name)
        labels = doc["spec"]["template"]["metadata"]["labels"]
        policy = policies[name]
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        allowed = {
            (p["port"], p["protocol"]) for rule in policy["spec"]["ingress"] for p in rule["ports"]
        }
        exposed = {
            (p["containerPort"], p.get("protocol", "TCP"))
            for c in containers(_pod(doc))
            for p in c["ports"]
        }
        assert allowed == exposed, name
        for rule in policy["spec"]["ingress"]:
            for peer in rule["from"]:
                # Never "from anywhere": every peer names pods or private node ranges.
                assert peer.get("podSelector", {}).get("matchLabels") or peer.get("ipBlock")
                if "ipBlock" in peer:
                    assert peer["ipBlock"]["cidr"] != "0.0.0.0/0"
    # iperf3 only from agents (and node addresses); HTTP also from collector and Prometheus.
    agent = policies["netmesh-agent"]["spec"]["ingress"]
    iperf3_rule = next(rule for rule in agent if rule["ports"][0]["port"] == 5201)
    selected = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in iperf3_rule["from"]
        if "podSelector" in p
    }
    assert selected == {"netmesh-agent"}
