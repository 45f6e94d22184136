"""Published ports, as kind's `extraPortMappings`: listeners on 127.0.0.1 in the root namespace
whose connections are made inside the node namespace.

    python -m localkube.portmap --netns NAME --state PATH HOSTPORT=IP:PORT ...

All listeners are bound first, in the root namespace; then the process enters the node namespace
(setns through libc) and every connection it opens from then on lives there. Host port 0 picks a
free port; the ports actually bound are written to the state file (JSON) once listening.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import socket
from pathlib import Path

CLONE_NEWNET = 0x40000000


def enter_netns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


def _handler(target_host: str, target_port: int):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(target_host, target_port), 5)
        except (TimeoutError, OSError):
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    return handle


async def serve(mappings: list[tuple[socket.socket, str, int]]) -> None:
    servers = [await asyncio.start_server(_handler(h, p), sock=s) for s, h, p in mappings]
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localkube.portmap")
    parser.add_argument("--netns", required=True)
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("mappings", nargs="+", help="HOSTPORT=IP:PORT")
    args = parser.parse_args(argv)
    bound: list[tuple[socket.socket, str, int]] = []
    ports: dict[str, int] = {}
    for spec in args.mappings:
        host_port, target = spec.split("=", 1)
        t_host, t_port = target.rsplit(":", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(host_port)))
        s.listen(128)
        s.setblocking(False)
        bound.append((s, t_host, int(t_port)))
        ports[target] = s.getsockname()[1]
    enter_netns(f"/run/netns/{args.netns}")
    tmp = args.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(ports))
    tmp.rename(args.state)
    asyncio.run(serve(bound))


if __name__ == "__main__":
    main()
