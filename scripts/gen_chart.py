"""Generate the Helm chart's values, schema, settings templates and files (one source, no copies).

    python scripts/gen_chart.py          write them into charts/netmesh/
    python scripts/gen_chart.py --check  exit 1 if any is stale

Sources and what they drive:

- the settings dataclasses (``agent.settings.AgentSettings``,
  ``collector.settings.CollectorSettings``): one values key per field
  (``test_duration`` → ``agent.testDuration``), its comment (the field's help),
  its JSON-schema type (from the type hint) and the template line that puts it
  into the ConfigMap as ``NETMESH_<FIELD>``. A new field is a new values key
  the next time this runs, and the stale check fails until it does;
- ``manifests/agent.env`` and ``manifests/collector.env``: the values the
  kustomize install sets (the chart's defaults); every other setting defaults
  to ``null`` = not set, the service's own default applies (quoted in the
  comment from the dataclass);
- ``manifests/*.yaml`` and ``manifests/components/``: resources, tolerations,
  monitor intervals and labels, the policies' node CIDRs;
- ``manifests/components/prometheus-operator/generated/`` (itself generated
  from ``dashboards/``): the rule groups and the dashboard, copied into
  ``charts/netmesh/files/`` because a chart can read only its own files;
- ``setup.cfg``: the chart's version and appVersion (= the image tag).

Bounds and choices in the schema are the ones the settings' ``__post_init__``
enforces; ``BOUNDS`` lists them and tests/manifests/test_helm.py checks each
against the service's own validation, so the two cannot drift apart.
The chart's templates are written by hand; tests/manifests/test_helm.py
proves that ``helm template`` renders the kustomize objects.
"""

from __future__ import annotations

import configparser
import json
import pathlib
import sys
import typing
from dataclasses import Field, dataclass
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gen_manifests import stale  # noqa: E402  (same check: file missing or different)

from agent.probe_logic import MAX_LOCAL_CIDRS  # noqa: E402
from agent.probe_logic import MODES as PROBE_MODES  # noqa: E402
from agent.settings import AgentSettings  # noqa: E402
from collector.settings import MODES as COLLECTOR_MODES  # noqa: E402
from collector.settings import CollectorSettings  # noqa: E402
from netmesh.config import default_of, env_name, fields_of  # noqa: E402
from netmesh.wire import MAX_RETRANSMIT_FLOWS, PROTOCOLS  # noqa: E402

CHART = ROOT / "charts" / "netmesh"
MANIFESTS = ROOT / "manifests"
COMPONENTS = MANIFESTS / "components"
OPERATOR_GENERATED = COMPONENTS / "prometheus-operator" / "generated"

LOG_LEVELS = ["debug", "info", "warning", "error"]

# Settings the chart sets per pod from the Downward API, not from values.
FROM_POD = {
    "agent": {"node_name": "spec.nodeName", "advertise_address": "status.hostIP"},
    "collector": {},
}

# Settings whose value, when null, the chart derives from other values
# (template expression) instead of leaving them to the service's default.
DERIVED = {
    "agent": {
        "collector_url": 'include "netmesh.collectorUrl" $',
        "service_target": 'include "netmesh.collectorServiceTarget" $',
    },
    "collector": {
        "agent_namespace": 'include "netmesh.namespace" $',
        "agent_iperf3_port": 'include "netmesh.agentIperf3Port" $',
    },
}

# JSON-schema bounds and choices enforced by the settings' __post_init__
# (only the ones that do not depend on another field).
BOUNDS: dict[str, dict[str, dict[str, Any]]] = {
    "agent": {
        "http_port": {"minimum": 1, "maximum": 65535},
        "iperf3_port": {"minimum": 1, "maximum": 65535},
        "test_duration": {"minimum": 1, "maximum": 3600},
        "omit_seconds": {"minimum": 0, "maximum": 60},
        "protocols": {"items": {"enum": list(PROTOCOLS)}, "minItems": 1, "uniqueItems": True},
        "guard_seconds": {"minimum": 0.5, "maximum": 600},
        "concurrency": {"minimum": 0},
        "peers_k": {"minimum": 0},
        "report_interval": {"minimum": 0.5},
        "report_timeout": {"exclusiveMinimum": 0},
        "connect_timeout": {"exclusiveMinimum": 0},
        "server_check_interval": {"exclusiveMinimum": 0, "maximum": 2.0},
        "server_check_timeout": {"exclusiveMinimum": 0, "maximum": 2.0},
        "log_level": {"enum": LOG_LEVELS},
        "probe_mode": {"enum": list(PROBE_MODES)},
        "probe_map_size": {"minimum": 1, "maximum": 1 << 20},
        "probe_local_cidrs": {"maxItems": MAX_LOCAL_CIDRS},
        "probe_series_cap": {"minimum": 1, "maximum": MAX_RETRANSMIT_FLOWS - 1},
        "probe_interval": {"minimum": 0.5},
        "bandwidth_budget": {"exclusiveMinimum": 0, "maximum": 1},
        "light_port": {"minimum": 0, "maximum": 65535},
        "light_rate": {"exclusiveMinimum": 0, "maximum": 100_000},
        "light_max_pair_rate": {"exclusiveMinimum": 0, "maximum": 1000},
        "light_full_mesh_max": {"minimum": 1},
        "light_ring_peers": {"minimum": 1},
        "light_window": {"minimum": 1, "maximum": 3600},
        "light_mtu_interval": {"minimum": 0},
    },
    "collector": {
        "mode": {"enum": list(COLLECTOR_MODES)},
        "port": {"minimum": 1, "maximum": 65535},
        "report_ttl": {"minimum": 1},
        "stale_after": {"exclusiveMinimum": 0},
        "expiry_interval": {"exclusiveMinimum": 0},
        "max_report_bytes": {"minimum": 1024, "maximum": 256 * 1024 * 1024},
        "max_agents": {"minimum": 1},
        "max_series_per_agent": {"minimum": 1},
        "max_retransmit_series_per_agent": {"minimum": 1},
        "agent_iperf3_port": {"minimum": 1, "maximum": 65535},
        "watch_timeout": {"minimum": 1},
        "api_timeout": {"exclusiveMinimum": 0},
        "watch_backoff": {"exclusiveMinimum": 0},
        "log_level": {"enum": LOG_LEVELS},
        "gc_full_interval": {"minimum": 0},
        "rca_interval": {"minimum": 0},
        "rca_loss_ratio": {"minimum": 0, "maximum": 1},
        "rca_retransmit_ratio": {"minimum": 0, "maximum": 1},
        "rca_bandwidth_fraction": {"minimum": 0, "maximum": 1},
        "rca_min_confidence": {"exclusiveMinimum": 0, "maximum": 1},
        "rca_cluster_wide_ratio": {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "rca_mss_bytes": {"minimum": 64},
        "rca_baseline_min_samples": {"minimum": 1},
        "rca_ebpf_retransmits_per_second": {"minimum": 0},
        "rca_ebpf_window": {"exclusiveMinimum": 0},
        "rca_min_failing_paths": {"minimum": 1},
        "rca_min_peers": {"minimum": 1},
        "rca_min_lift": {"minimum": 0},
        "rca_max_suspects": {"minimum": 1},
        "rca_light_alpha": {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "rca_light_loss_floor": {"exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "rca_light_min_lost": {"minimum": 1},
        "rca_light_rtt_min_increase": {"minimum": 0},
        "rca_light_mtu_min_probes": {"minimum": 1},
    },
}

SETTINGS: dict[str, type[Any]] = {"agent": AgentSettings, "collector": CollectorSettings}
ENV_FILES = {"agent": MANIFESTS / "agent.env", "collector": MANIFESTS / "collector.env"}
# Helpers (in templates/_settings.tpl) for the ports other objects need.
PORTS = {
    ("agent", "http_port"): "netmesh.agentHttpPort",
    ("agent", "iperf3_port"): "netmesh.agentIperf3Port",
    ("agent", "light_port"): "netmesh.agentLightPort",
    ("collector", "port"): "netmesh.collectorPort",
}
BITRATE_PATTERN = r"^[0-9]+(\.[0-9]+)?[kKmMgG]?$"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def version() -> str:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg["metadata"]["version"]


def read_env(path: pathlib.Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def load_yaml(path: pathlib.Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


# ------------------------------------------------------------------ settings


@dataclass
class Setting:
    component: str
    field: Field[Any]
    hint: Any
    kind: str  # integer | number | boolean | string | list | bitrate

    @property
    def key(self) -> str:
        return camel(self.field.name)

    @property
    def env(self) -> str:
        return env_name(self.field.name)

    def schema(self) -> dict[str, Any]:
        base: dict[str, Any]
        if self.kind == "list":
            base = {"type": ["array", "null"], "items": {"type": "string"}}
        elif self.kind == "bitrate":
            base = {
                "type": ["integer", "string", "null"],
                "minimum": 1,
                "pattern": BITRATE_PATTERN,
            }
        else:
            base = {"type": [self.kind, "null"]}
        bounds = dict(BOUNDS[self.component].get(self.field.name, {}))
        if "items" in bounds:
            base["items"] = {**base["items"], **bounds.pop("items")}
        base.update(bounds)
        return {"description": self.help(), **base}

    def help(self) -> str:
        return str(self.field.metadata.get("help", "")).strip()

    def shown_default(self) -> str:
        value = default_of(self.field)
        if isinstance(value, tuple):
            return ",".join(str(getattr(v, "name", v)) for v in value) or '""'
        if isinstance(value, bool):
            return "true" if value else "false"
        return '""' if value == "" else str(value)

    def typed(self, text: str) -> Any:
        """A value of the env file as the values.yaml value."""
        if self.kind == "integer":
            return int(text)
        if self.kind == "number":
            number = float(text)
            return int(number) if number.is_integer() and "." not in text else number
        if self.kind == "boolean":
            return text.strip().lower() in {"1", "true", "yes", "on"}
        if self.kind == "list":
            return [part.strip() for part in text.split(",") if part.strip()]
        if self.kind == "bitrate":
            return int(text) if text.isdigit() else text
        return text


def kind_of(name: str, hint: Any) -> str:
    if name == "udp_bitrate":
        return "bitrate"
    if hint is bool:
        return "boolean"
    if hint is int:
        return "integer"
    if hint is float:
        return "number"
    if hint is str:
        return "string"
    if typing.get_origin(hint) is tuple:
        return "list"
    raise TypeError(f"settings field {name}: no values type for {hint!r}")


def settings(component: str) -> list[Setting]:
    cls = SETTINGS[component]
    hints = typing.get_type_hints(cls)
    return [
        Setting(component, f, hints[f.name], kind_of(f.name, hints[f.name]))
        for f in fields_of(cls)
        if f.name not in FROM_POD[component]
    ]


def env_value_expr(s: Setting, ref: str) -> str:
    """Template expression turning the values key into the variable's string."""
    if s.kind == "integer":
        return f"{ref} | int64 | toString"
    if s.kind == "list":
        return f'{ref} | join ","'
    if s.kind == "bitrate":
        return f'(ternary {ref} ({ref} | int64 | toString) (kindIs "string" {ref}))'
    return f"{ref} | toString"


def settings_tpl() -> str:
    out = [
        "{{/* Generated by scripts/gen_chart.py from the settings dataclasses: do not edit. */}}",
    ]
    for component in SETTINGS:
        name = f"netmesh.{component}Env"
        out.append("")
        out.append(f"{{{{/* NETMESH_ variables of the {component} (ConfigMap data). */}}}}")
        out.append(f'{{{{- define "{name}" -}}}}')
        out.append("{{- $v := .Values." + component + " }}")
        for s in settings(component):
            ref = f"$v.{s.key}"
            derived = DERIVED[component].get(s.field.name)
            out.append(f'{{{{- if not (kindIs "invalid" {ref}) }}}}')
            out.append(f"{s.env}: {{{{ {env_value_expr(s, ref)} | quote }}}}")
            if derived:
                out.append("{{- else }}")
                out.append(f"{s.env}: {{{{ {derived} | quote }}}}")
            out.append("{{- end }}")
        out.append("{{- end }}")
    for (component, field_name), helper in PORTS.items():
        (s,) = [x for x in settings(component) if x.field.name == field_name]
        out.append("")
        out.append(f'{{{{- define "{helper}" -}}}}')
        out.append(
            f'{{{{- if kindIs "invalid" .Values.{component}.{s.key} }}}}'
            f"{default_of(s.field)}{{{{ else }}}}"
            f"{{{{ .Values.{component}.{s.key} | int64 }}}}{{{{ end }}}}"
        )
        out.append("{{- end }}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------ values


@dataclass
class Key:
    """One values key: its value, comment, schema; or a nested group of keys."""

    name: str
    help: str
    value: Any = None
    schema: dict[str, Any] | None = None
    children: list[Key] | None = None


def obj_schema(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array"}
    return {"type": "object"}


def chart_keys() -> list[Key]:
    agent_docs = load_yaml(MANIFESTS / "agent.yaml")
    collector_docs = load_yaml(MANIFESTS / "collector.yaml")
    ds = find(agent_docs, "DaemonSet", "netmesh-agent")["spec"]["template"]["spec"]
    dep = find(collector_docs, "Deployment", "netmesh-collector")["spec"]["template"]["spec"]
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    (image,) = [i for i in kustomization["images"] if i["name"] == "netmesh"]
    (sm,) = load_yaml(COMPONENTS / "prometheus-operator" / "servicemonitor.yaml")
    (pm,) = load_yaml(COMPONENTS / "agent-podmonitor" / "podmonitor.yaml")
    policies = load_yaml(COMPONENTS / "network-policy" / "policies.yaml")
    collector_policy = find(policies, "NetworkPolicy", "netmesh-collector")
    peers = collector_policy["spec"]["ingress"][0]["from"]
    cidrs = [p["ipBlock"]["cidr"] for p in peers if "ipBlock" in p]
    release = {"release": sm["metadata"]["labels"]["release"]}

    def sa(name: str, what: str) -> Key:
        return Key(
            "serviceAccount",
            f"The {what}'s service account.",
            children=[
                Key("create", f"Create the {what}'s service account (else it must exist).", True),
                Key("name", f"Name of the {what}'s service account.", name),
            ],
        )

    def pod_keys(spec: dict[str, Any], what: str) -> list[Key]:
        (container,) = spec["containers"]
        return [
            Key("resources", f"The {what} container's resources.", container["resources"]),
            Key("nodeSelector", f"Node selector of the {what} pods.", {}),
            Key("tolerations", f"Tolerations of the {what} pods.", spec.get("tolerations", [])),
        ]

    agent = [
        sa("netmesh-agent", "agent"),
        Key(
            "privileged",
            "Run the agent privileged (kernels older than 5.8, without CAP_BPF): "
            "manifests/components/privileged-agent.",
            False,
        ),
        *pod_keys(ds, "agent"),
        Key(
            "podMonitor",
            "A PodMonitor for every agent's own /metrics (debugging one node; doubles the "
            "path series): manifests/components/agent-podmonitor.",
            children=[
                Key("enabled", "Create the agents' PodMonitor (needs the operator's CRDs).", False),
                Key(
                    "interval",
                    "Scrape interval of the agents.",
                    pm["spec"]["podMetricsEndpoints"][0]["interval"],
                ),
            ],
        ),
    ]
    collector = [sa("netmesh-collector", "collector"), *pod_keys(dep, "collector")]
    pod_docs = load_yaml(COMPONENTS / "pod-network" / "pod-network.yaml")
    pod_ds = find(pod_docs, "DaemonSet", "netmesh-pod-endpoint")["spec"]["template"]["spec"]
    pod_network = [
        Key(
            "enabled",
            "Run a pod-network endpoint on every node (unprivileged; the agent's settings "
            "with NETMESH_NETWORK=pod).",
            False,
        ),
        sa("netmesh-pod-endpoint", "pod-network endpoint"),
        *pod_keys(pod_ds, "pod-network endpoint"),
    ]
    reserved = {k.name for k in agent} | {k.name for k in collector}
    for component, keys in (("agent", agent), ("collector", collector)):
        env = read_env(ENV_FILES[component])
        known = {s.env for s in settings(component)} | {env_name(n) for n in FROM_POD[component]}
        unknown = sorted(set(env) - known)
        if unknown:
            raise SystemExit(f"{ENV_FILES[component].name}: not settings: {unknown}")
        for s in settings(component):
            if s.key in reserved:
                raise SystemExit(f"settings field {s.field.name} collides with a chart key")
            derived = s.field.name in DERIVED[component]
            value = None if derived or s.env not in env else s.typed(env[s.env])
            note = f"{s.env}; null = the service's default ({s.shown_default()})"
            if derived:
                note = f"{s.env}; null = derived from the chart's other values"
            keys.append(Key(s.key, f"{s.help()} ({note})", value, s.schema()))

    return [
        Key(
            "namespace",
            "The namespace every namespaced object goes to.",
            children=[
                Key(
                    "create",
                    "Create it, labelled Pod Security privileged (the agent needs "
                    "hostNetwork and hostPath). false: create and label it yourself.",
                    True,
                ),
                Key("name", "Namespace of every namespaced object.", "netmesh"),
            ],
        ),
        Key(
            "image",
            "The one image of the agent and the collector.",
            children=[
                Key("repository", "Image repository.", image["newName"]),
                Key("tag", "Image tag; empty = the chart's appVersion.", ""),
                Key("pullPolicy", "Image pull policy.", "IfNotPresent"),
            ],
        ),
        Key(
            "rbac",
            "The collector's read-only ClusterRole and binding (get, list, watch pods and nodes).",
            children=[
                Key(
                    "create",
                    "Create the ClusterRole and binding (else bind the collector yourself).",
                    True,
                )
            ],
        ),
        Key(
            "prometheusOperator",
            "For the Prometheus operator (kube-prometheus-stack): ServiceMonitor, "
            "PrometheusRule and the Grafana dashboard ConfigMap "
            "(manifests/components/prometheus-operator).",
            children=[
                Key(
                    "enabled",
                    "Create the ServiceMonitor, PrometheusRule and dashboard ConfigMap "
                    "(needs the operator's CRDs).",
                    False,
                ),
                Key(
                    "labels",
                    "Labels on the monitors and the rule: kube-prometheus-stack selects "
                    "them by release=<its Helm release>.",
                    release,
                ),
                Key(
                    "interval",
                    "Scrape interval of the collector.",
                    sm["spec"]["endpoints"][0]["interval"],
                ),
                Key(
                    "scrapeTimeout",
                    "Scrape timeout of the collector.",
                    sm["spec"]["endpoints"][0]["scrapeTimeout"],
                ),
            ],
        ),
        Key(
            "networkPolicy",
            "NetworkPolicies: ingress only from agents, collector and Prometheus "
            "(manifests/components/network-policy).",
            children=[
                Key("enabled", "Create the two NetworkPolicies.", False),
                Key(
                    "nodeCidrs",
                    "The node network (agents use the host network): narrow it to your nodes.",
                    cidrs,
                ),
            ],
        ),
        Key("agent", "The agent DaemonSet and its NETMESH_ settings.", children=agent),
        Key(
            "podNetwork",
            "Pod-network endpoints: a second, unprivileged DaemonSet measuring the pod network "
            '(paths with network="pod"): manifests/components/pod-network.',
            children=pod_network,
        ),
        Key("collector", "The collector Deployment and its NETMESH_ settings.", children=collector),
    ]


def _yaml_value(value: Any, indent: int) -> str:
    if value is None:
        return " null"
    if isinstance(value, (dict, list)) and value:
        text = yaml.safe_dump(value, sort_keys=False, default_flow_style=False).rstrip("\n")
        pad = " " * (indent + 2)
        return "\n" + "\n".join(pad + line for line in text.splitlines())
    return (
        " " + json.dumps(value)
        if isinstance(value, str)
        else " " + yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()
    )


def values_yaml(keys: list[Key]) -> str:
    out = [
        "# Generated by scripts/gen_chart.py from the settings dataclasses and manifests/:",
        "# do not edit; change the sources and run python scripts/gen_chart.py.",
        "# The defaults render the same objects as `kubectl kustomize manifests`.",
    ]

    def emit(key: Key, indent: int) -> None:
        pad = " " * indent
        out.append(f"{pad}# -- {key.help}")
        if key.children is not None:
            out.append(f"{pad}{key.name}:")
            for child in key.children:
                emit(child, indent + 2)
        else:
            out.append(f"{pad}{key.name}:{_yaml_value(key.value, indent)}")

    for i, key in enumerate(keys):
        if i:
            out.append("")
        emit(key, 0)
    return "\n".join(out) + "\n"


def schema(keys: list[Key]) -> dict[str, Any]:
    def node(key: Key) -> dict[str, Any]:
        if key.children is not None:
            return {
                "description": key.help,
                "type": "object",
                "additionalProperties": False,
                "properties": {c.name: node(c) for c in key.children},
            }
        if key.schema is not None:
            return key.schema
        return {"description": key.help, **obj_schema(key.value)}

    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "netmesh chart values (generated by scripts/gen_chart.py)",
        "type": "object",
        "additionalProperties": False,
        "properties": {k.name: node(k) for k in keys},
    }


def chart_yaml() -> str:
    v = version()
    return (
        "# Generated by scripts/gen_chart.py: version and appVersion are setup.cfg's version.\n"
        "apiVersion: v2\n"
        "name: netmesh\n"
        "description: Kubernetes-native network validation (iperf3 mesh tests, eBPF "
        "retransmissions, one Prometheus endpoint, fault localisation)\n"
        "type: application\n"
        f"version: {v}\n"
        f'appVersion: "{v}"\n'
        "home: https://github.com/netmesh/netmesh\n"
        "keywords: [network, iperf3, ebpf, prometheus]\n"
    )


def rule_spec() -> str:
    (rule,) = load_yaml(OPERATOR_GENERATED / "prometheusrule.yaml")
    return yaml.safe_dump(rule["spec"], sort_keys=False, width=1000, allow_unicode=True)


def dashboard() -> tuple[str, str]:
    (cm,) = load_yaml(OPERATOR_GENERATED / "grafana-dashboard.yaml")
    ((name, text),) = cm["data"].items()
    return name, text


def render() -> dict[pathlib.Path, str]:
    keys = chart_keys()
    dash_name, dash_text = dashboard()
    return {
        CHART / "Chart.yaml": chart_yaml(),
        CHART / "values.yaml": values_yaml(keys),
        CHART / "values.schema.json": json.dumps(schema(keys), indent=2) + "\n",
        CHART / "templates" / "_settings.tpl": settings_tpl(),
        CHART / "files" / "prometheusrule-spec.yaml": rule_spec(),
        CHART / "files" / dash_name: dash_text,
    }


def main(argv: list[str]) -> int:
    rendered = render()
    if "--check" in argv:
        out_of_date = stale(rendered)
        if out_of_date:
            print(
                f"stale: {', '.join(out_of_date)}: run python scripts/gen_chart.py", file=sys.stderr
            )
            return 1
        return 0
    for path, text in rendered.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
