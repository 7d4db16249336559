"""Who is in the mesh: the sorted member list (and its epoch) every agent gets back.

- static mode: the agents that reported within the report TTL (the state's
  expiry sweep drops the others);
- kubernetes mode: agent pods (from their watch) that are Running, Ready, not
  being deleted and have an IP, on nodes that are Ready, schedulable and not
  being deleted (each node exclusion a setting).

Every agent must plan with the same list, so it is sorted and versioned by an
epoch. The epoch moves forward whenever the list changes and starts from the
wall clock in milliseconds, so it keeps increasing across collector restarts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from collector.podmap import NodeInfo, PodInfo, PodKey, PodMap
from collector.state import CollectorState
from netmesh.wire import Member, MemberList, sorted_members


class Membership(Protocol):
    def current(self) -> MemberList: ...


class Epochs:
    """Turns successive member tuples into MemberLists with a forward-moving epoch."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.list = MemberList(epoch=0, members=())

    def update(self, members: tuple[Member, ...]) -> MemberList:
        if members != self.list.members or self.list.epoch == 0:
            epoch = max(self.list.epoch + 1, int(self.clock() * 1000))
            self.list = MemberList(epoch=epoch, members=members)
        return self.list


class StaticMembership:
    def __init__(self, state: CollectorState, *, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.epochs = Epochs(clock)
        self._version = -1

    def current(self) -> MemberList:
        if self._version != self.state.agents_version:
            self._version = self.state.agents_version
            members = sorted_members(
                Member(
                    name=e.report.node,
                    address=e.report.address,
                    iperf3_port=e.report.iperf3_port,
                )
                for e in self.state.agents.values()
            )
            self.epochs.update(members)
        return self.epochs.list


@dataclass(frozen=True, kw_only=True)
class NodeRules:
    exclude_not_ready: bool = True
    exclude_unschedulable: bool = True
    exclude_deleting: bool = True

    def allows(self, node: NodeInfo | None) -> bool:
        if node is None:  # not (yet) seen by the node watch: nothing speaks against it
            return True
        if self.exclude_not_ready and not node.ready:
            return False
        if self.exclude_unschedulable and node.unschedulable:
            return False
        return not (self.exclude_deleting and node.deleting)


def select_members(
    agent_pods: Iterable[PodInfo],
    nodes: Mapping[str, NodeInfo],
    rules: NodeRules,
    port_of: Callable[[PodInfo], int],
) -> tuple[Member, ...]:
    """The member tuple (sorted, one per node) from agent pods and node health. Pure."""
    chosen: dict[str, PodInfo] = {}
    for pod in agent_pods:
        if pod.phase != "Running" or not pod.ready or pod.deleting or not pod.ips or not pod.node:
            continue
        if not rules.allows(nodes.get(pod.node)):
            continue
        best = chosen.get(pod.node)
        if best is None or pod.key < best.key:  # two agents on one node: a stable choice
            chosen[pod.node] = pod
    return sorted_members(
        Member(name=node, address=pod.ips[0], iperf3_port=port_of(pod))
        for node, pod in chosen.items()
    )


class KubernetesMembership:
    """Agent pods from their watch + node health from the pod map's node watch."""

    def __init__(
        self,
        state: CollectorState,
        pod_map: PodMap,
        *,
        rules: NodeRules,
        default_port: int = 5201,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.pod_map = pod_map
        self.rules = rules
        self.default_port = default_port
        self.epochs = Epochs(clock)
        self.agent_pods: dict[PodKey, PodInfo] = {}
        self.pods_version = 0
        self._seen: tuple[int, int, int] = (-1, -1, -1)

    # ---- fed by the agent-pod watch
    def replace_agents(self, pods: list[PodInfo]) -> None:
        self.agent_pods = {p.key: p for p in pods}
        self.pods_version += 1

    def upsert_agent(self, pod: PodInfo) -> None:
        if self.agent_pods.get(pod.key) != pod:
            self.agent_pods[pod.key] = pod
            self.pods_version += 1

    def delete_agent(self, key: PodKey) -> None:
        if self.agent_pods.pop(key, None) is not None:
            self.pods_version += 1

    def _port(self, pod: PodInfo) -> int:
        if pod.iperf3_port is not None:
            return pod.iperf3_port
        entry = self.state.agents.get(pod.node)
        return entry.report.iperf3_port if entry is not None else self.default_port

    def current(self) -> MemberList:
        seen = (self.pods_version, self.pod_map.nodes_version, self.state.agents_version)
        if seen != self._seen:
            self._seen = seen
            self.epochs.update(
                select_members(self.agent_pods.values(), self.pod_map.nodes, self.rules, self._port)
            )
        return self.epochs.list
