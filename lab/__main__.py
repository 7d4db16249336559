"""``netmesh-lab``: the whole mesh on one machine — up, down, status, inject, clear, experiment."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from lab import state
from lab.experiment import run_experiment
from lab.fabric import DIRECTIONS, UplinkFault
from lab.faults import (
    NODE_FAULT_OPTIONS,
    Fault,
    FaultError,
    parse_fault,
    parse_loss,
    parse_rate,
)
from lab.lab import Lab, LabError
from lab.podfaults import parse_overlay_mtu
from lab.settings import LabSettings
from lab.shell import CommandError
from netmesh.config import SettingsError, add_arguments, build


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netmesh-lab",
        description="Run the netmesh mesh in network namespaces on this machine (root).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "create the lab and start collector, agents and traffic"),
        ("down", "stop everything and remove the lab (idempotent)"),
        ("status", "show what runs and which faults are injected"),
        ("inject", "inject a fault on one node, a rack's uplink or one node pair's link"),
        ("clear", "remove faults (one node, uplink or link; all without one)"),
        ("experiment", "baseline -> fault -> recovery, with a live view and a summary"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        add_arguments(p, LabSettings)
        if name in ("inject", "clear"):
            where = p.add_mutually_exclusive_group(required=name == "inject")
            where.add_argument("--node", help="node-N, N or its address")
            where.add_argument("--uplink", help="a rack's uplink to the core: rack-N or N")
            where.add_argument(
                "--link", help="the path between two nodes, both ways: node-2,node-5"
            )
            where.add_argument("--pod", help="one pod (a lab with --pods): node-2/pod-1")
        if name == "inject":
            p.add_argument(
                "--direction",
                choices=DIRECTIONS,
                default="both",
                help="uplink faults: into the rack, out of it, or both (default)",
            )
        if name == "up":
            p.add_argument(
                "--node",
                help="put the fault (--loss/--rate/--delay/--mtu/--dns/--service) on this node "
                "before the agents start",
            )
        if name in ("inject", "experiment", "up"):
            p.add_argument("--loss", help="loss into the node (or on the uplink/link): 5%% or 0.05")
            p.add_argument("--rate", help="node egress (or uplink) rate: 200mbit")
            p.add_argument("--delay", help="delay into the node: 50ms (needs netem)")
            p.add_argument("--mtu", help="the node's link MTU, lower than the lab's 1500: 1400")
            p.add_argument(
                "--dns",
                help="down: DNS answers into the node and its pods are dropped; pod-down: "
                "into its pods only",
            )
            p.add_argument(
                "--service",
                help="down: the node's and its pods' connects to the lab's Service are dropped; "
                "pod-down: its pods' only",
            )
            p.add_argument(
                "--overlay-mtu",
                help="the node's VXLAN and pod MTU (lab: 1450); 1500 = the encapsulation mismatch",
            )
        if name == "experiment":
            p.add_argument("--fault-node", default="", help="node to fault (default: random)")
            p.add_argument(
                "--pod-fault",
                default="",
                help="the seed's experiment: loss (default 20%%) into one pod, node-2/pod-1 "
                "(a lab with --pods; implies --pods 1 when the experiment starts the lab)",
            )
            p.add_argument(
                "--fault-uplink",
                default="",
                help="fault a rack's uplink instead (rack-N; a lab with --racks): loss/rate",
            )
            p.add_argument(
                "--baseline",
                type=float,
                default=0.0,
                help="baseline phase seconds (default: one sweep)",
            )
            p.add_argument(
                "--fault", type=float, default=0.0, help="fault phase seconds (default: two sweeps)"
            )
            p.add_argument(
                "--recovery",
                type=float,
                default=0.0,
                help="recovery phase seconds (default: one sweep)",
            )
            p.add_argument("--config", help="JSON file with any of the experiment's options")
            p.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
            p.add_argument("--json", dest="json_out", help="write the summary as JSON here")
            p.add_argument(
                "--plain", action="store_true", help="no live screen: one progress line per refresh"
            )
    return parser


def fault_from(args: argparse.Namespace) -> Fault:
    return parse_fault({k: getattr(args, k) for k in NODE_FAULT_OPTIONS})


def inject(lab: Lab, args: argparse.Namespace) -> str:
    """Inject what ``args`` asks for; a line saying what was done."""
    if args.node:
        fault = fault_from(args)
        lines = []
        if args.overlay_mtu:
            mtu = parse_overlay_mtu(args.overlay_mtu)
            if fault.empty():
                node = lab.inject_overlay_mtu(args.node, mtu)
                return f"injected on {node.name}: overlay (VXLAN and pod) MTU {mtu}"
            lines.append(f"overlay (VXLAN and pod) MTU {mtu}")
        node = lab.inject(args.node, fault)
        if args.overlay_mtu:
            lab.inject_overlay_mtu(args.node, parse_overlay_mtu(args.overlay_mtu))
        return f"injected on {node.name} ({node.address}): " + ", ".join([fault.describe(), *lines])
    if args.delay or args.mtu or args.dns or args.service or args.overlay_mtu:
        raise FaultError(
            "--delay, --mtu, --dns, --service and --overlay-mtu are node faults (use --node)"
        )
    loss = parse_loss(args.loss) if args.loss else 0.0
    if args.pod:
        if args.rate or not loss:
            raise FaultError("a pod fault takes --loss only (loss into the pod)")
        pod = lab.inject_pod(args.pod, loss)
        return f"injected on pod {pod.name} ({pod.address}): {loss * 100:g}% loss into the pod"
    if args.uplink:
        uplink = UplinkFault(
            loss=loss,
            rate_bps=parse_rate(args.rate) if args.rate else 0,
            direction=args.direction,
        )
        rack = lab.inject_uplink(args.uplink, uplink)
        return f"injected on the uplink of {rack}: {uplink.describe()}"
    if args.rate or not loss:
        raise FaultError("a link fault takes --loss only (rates are per node or per uplink)")
    key = lab.inject_link(args.link, loss)
    return f"injected on link {key.replace('|', ' <-> ')}: {loss * 100:g}% loss both ways"


def clear(lab: Lab, args: argparse.Namespace) -> list[str]:
    if args.uplink:
        return [f"uplink of {lab.clear_uplink(args.uplink)}"]
    if args.link:
        return [f"link {lab.clear_link(args.link)}"]
    if args.pod:
        return [f"pod {lab.clear_pod(args.pod)}"]
    return lab.clear(args.node)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = build(LabSettings, vars(args), dict(os.environ))
        if args.command != "up":
            # Act on the running lab: its state file has the settings `up` got.
            settings, _found = state.locate(settings, state.given_fields(vars(args), os.environ))
    except SettingsError as exc:
        print(f"netmesh-lab: {exc}", file=sys.stderr)
        return 2
    except LabError as exc:
        print(f"netmesh-lab: {exc}", file=sys.stderr)
        return 2
    if args.command == "experiment" and args.pod_fault and not settings.pods:
        if state.read(state.state_path(settings.state_dir, settings.prefix)):
            print("netmesh-lab: --pod-fault needs a lab with pods (up --pods P)", file=sys.stderr)
            return 2
        settings = dataclasses.replace(settings, pods=1)
    lab = Lab(settings)
    # SIGTERM cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    say = print
    try:
        if args.command == "up":
            lab.up(progress=say, faults={args.node: fault_from(args)} if args.node else None)
            say(f"collector: {lab.collector_url}/metrics  (netmesh-lab down to remove)")
        elif args.command == "down":
            removed = lab.down()
            say("removed: " + (", ".join(removed) if removed else "nothing (no lab was up)"))
        elif args.command == "status":
            say(json.dumps(lab.status(), indent=2, sort_keys=True))
        elif args.command == "inject":
            say(inject(lab, args))
        elif args.command == "clear":
            say("cleared: " + ", ".join(clear(lab, args)))
        elif args.command == "experiment":
            given = any(getattr(args, k) for k in NODE_FAULT_OPTIONS)
            return run_experiment(lab, args, fault_from(args) if given else None)
    except (LabError, FaultError, CommandError) as exc:
        print(f"netmesh-lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command == "up":
            lab.down()
        print("netmesh-lab: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
