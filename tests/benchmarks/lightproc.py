"""Light-tier processes for bench_light.py: real ``LightTier`` objects in a process of their own.

lightproc.py tier --me A=10.0.0.1 --peer B=10.0.0.2 --port P --seconds D [--rate R ...]
    probe the peers for D seconds with a window of D seconds, then print the
    final status (the whole run as one window) as JSON and exit;
lightproc.py responders --prober 127.77.0.1 --first 127.77.1.1 --count 500 --port P
    500 tiers that only answer (the real ``_answer``; they never probe), until killed;
lightproc.py prober --me 127.77.0.1 --first 127.77.1.1 --count 500 --port P
    one tier probing all of them with the agent's default rate budget; its
    status is taken every ``--status-every`` s (as the agent does per report),
    a line of counters printed each time, until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import sys
import time

from benchlib import ROOT  # noqa: F401  (puts the repository on sys.path)

from agent.light import LightOptions, LightTier
from netmesh.wire import Member, MemberList


def member(spec: str) -> Member:
    name, _, address = spec.partition("=")
    return Member(name=name, address=address)


def addresses(first: str, count: int) -> list[str]:
    start = ipaddress.ip_address(first)
    return [str(start + i) for i in range(count)]


async def tier(args: argparse.Namespace) -> None:
    me = member(args.me)
    members = MemberList(epoch=1, members=(me, *(member(p) for p in args.peer)))
    opts = LightOptions(
        port=args.port,
        rate=args.rate,
        max_pair_rate=args.max_pair_rate,
        window=args.seconds,
        mtu=args.mtu,
        mtu_interval=args.mtu_interval,
    )
    light = LightTier(opts, me, lambda: members)
    task = asyncio.create_task(light.run())
    await asyncio.sleep(args.seconds + opts.grace + 0.3)
    status = light.status()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    print(json.dumps(dataclasses.asdict(status)))


async def responders(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    prober = Member(name="prober", address=args.prober)
    opts = LightOptions(port=args.port)
    for i, address in enumerate(addresses(args.first, args.count)):
        me = Member(name=f"peer-{i:04d}", address=address)
        members = MemberList(epoch=1, members=(prober, me))
        light = LightTier(opts, me, lambda m=members: m)  # type: ignore[misc]
        light.allowed = frozenset({args.prober})  # answer the prober; never probe (no run())
        light.listen(loop)
    print(f"{args.count} responders up", flush=True)
    await asyncio.Event().wait()


async def prober(args: argparse.Namespace) -> None:
    me = Member(name="prober", address=args.me)
    others = tuple(
        Member(name=f"peer-{i:04d}", address=a)
        for i, a in enumerate(addresses(args.first, args.count))
    )
    members = MemberList(epoch=1, members=(me, *others))
    # Every peer probed (the agent's default full_mesh_max is 100, ring peers beyond).
    opts = LightOptions(port=args.port, full_mesh_max=args.count + 1)
    light = LightTier(opts, me, lambda: members)
    task = asyncio.create_task(light.run())
    while not task.done():
        await asyncio.sleep(args.status_every)
        status = light.status()
        losses = [p.loss_ratio for p in status.paths]
        print(
            json.dumps(
                {
                    "t": time.time(),
                    "up": status.up,
                    "peers": status.peers,
                    "paths": len(status.paths),
                    "probes_sent": status.probes_sent,
                    "echoes_received": status.echoes_received,
                    "send_errors": status.send_errors,
                    "mean_loss": sum(losses) / len(losses) if losses else None,
                }
            ),
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tier")
    t.add_argument("--me", required=True)
    t.add_argument("--peer", action="append", default=[])
    t.add_argument("--port", type=int, required=True)
    t.add_argument("--seconds", type=float, required=True)
    t.add_argument("--rate", type=float, default=100.0)
    t.add_argument("--max-pair-rate", type=float, default=10.0)
    t.add_argument("--mtu", type=int, default=1500)
    t.add_argument("--mtu-interval", type=float, default=10.0)
    r = sub.add_parser("responders")
    r.add_argument("--prober", required=True)
    r.add_argument("--first", required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--port", type=int, required=True)
    p = sub.add_parser("prober")
    p.add_argument("--me", required=True)
    p.add_argument("--first", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--status-every", type=float, default=10.0)
    args = parser.parse_args()
    run = {"tier": tier, "responders": responders, "prober": prober}[args.cmd]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
