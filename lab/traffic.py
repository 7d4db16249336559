"""Application traffic between lab "pods": a small HTTP server and a client loop per node.

Run inside a node's namespace as ``python -m lab.traffic --listen ADDR --peers A,B``.
The server answers ``GET /bytes/N`` with N bytes; the client fetches a chunk
from every peer in turn, forever, so the retransmission probe sees real
application flows (port 8080) and not only iperf3.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

import aiohttp
from aiohttp import web

log = logging.getLogger("lab.traffic")

MAX_BYTES = 16 * 1024 * 1024
_CHUNK = b"x" * 65536


async def send_bytes(request: web.Request) -> web.StreamResponse:
    try:
        n = int(request.match_info["n"])
    except ValueError:
        raise web.HTTPBadRequest(text="N must be an integer") from None
    if not 0 <= n <= MAX_BYTES:
        raise web.HTTPBadRequest(text=f"N must be 0..{MAX_BYTES}")
    resp = web.StreamResponse(headers={"Content-Length": str(n)})
    await resp.prepare(request)
    while n > 0:
        piece = _CHUNK[: min(n, len(_CHUNK))]
        await resp.write(piece)
        n -= len(piece)
    await resp.write_eof()
    return resp


async def client_loop(peers: list[str], port: int, size: int, pause: float) -> None:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            for peer in peers:
                try:
                    async with session.get(f"http://{peer}:{port}/bytes/{size}") as resp:
                        await resp.read()
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.debug("fetch from %s failed: %s", peer, exc)
            await asyncio.sleep(pause)


async def serve(listen: str, port: int, peers: list[str], size: int, pause: float) -> None:
    app = web.Application()
    app.router.add_get("/bytes/{n}", send_bytes)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, listen, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = asyncio.create_task(client_loop(peers, port, size, pause))
    try:
        await stop.wait()
    finally:
        client.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await client
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m lab.traffic")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--peers", default="")
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--pause", type=float, default=1.0)
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    logging.basicConfig(level=logging.INFO)
    asyncio.run(serve(args.listen, args.port, peers, args.size, args.pause))


if __name__ == "__main__":
    main()
