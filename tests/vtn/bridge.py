"""A tiny TCP <-> unix-socket forwarder (standard library only), to reach a server that
runs in a network namespace of its own from the host's loopback.

openleadr-vtn always binds 0.0.0.0, so the tests run it only inside a network namespace
they made (``unshare -n``, loopback up, no other interface). A unix socket *file* is
shared across network namespaces, so two of these bridge the gap::

    host netns                                     the VTN's netns
    client -> 127.0.0.1:<port>  --tcp-to-unix-->   <dir>/vtn.sock  --unix-to-tcp-->  127.0.0.1:3000 (the VTN)

    python bridge.py unix-to-tcp --unix <dir>/vtn.sock --connect 127.0.0.1:3000      # inside the namespace
    python bridge.py tcp-to-unix --listen 127.0.0.1:<port> --unix <dir>/vtn.sock      # on the host

Each prints ``BRIDGE READY <mode> <listening address>`` on stdout once it listens, and
stops on SIGTERM or SIGINT (with ``--exit-with-parent`` also when its parent exits). A
connection whose far side cannot be reached is closed at once (the client sees the
server hang up). ``--listen`` accepts loopback addresses only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import sys

CHUNK = 64 * 1024


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until EOF, then half-close ``writer``."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def forward(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                  connect: tuple[str, str | int]) -> None:
    """Connect to the far side and copy both ways until both directions are done."""
    kind, where = connect
    try:
        if kind == "unix":
            reader, writer = await asyncio.open_unix_connection(str(where))
        else:
            host, port = str(where).rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))
    finally:
        for w in (writer, client_writer):
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()


async def watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once this process's parent is gone (it was re-parented)."""
    while os.getppid() == parent:
        await asyncio.sleep(0.2)
    stop.set()


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


async def main_async(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    if args.mode == "tcp-to-unix":
        host, port = args.listen
        if not ipaddress.ip_address(host).is_loopback:
            raise SystemExit(f"bridge: refusing to listen on {host}: loopback addresses only")

        async def on_tcp(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await forward(r, w, ("unix", args.unix))

        server = await asyncio.start_server(on_tcp, host, port, reuse_address=True)
        where = f"{host}:{port}"
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.unix)  # a stale socket file of an earlier run

        async def on_unix(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await forward(r, w, ("tcp", f"{args.connect[0]}:{args.connect[1]}"))

        server = await asyncio.start_unix_server(on_unix, args.unix)
        where = args.unix
    if args.exit_with_parent:
        loop.create_task(watch_parent(os.getppid(), stop))
    print(f"BRIDGE READY {args.mode} {where}", flush=True)
    async with server:
        await stop.wait()
        server.close()
    if args.mode == "unix-to-tcp":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(args.unix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    t2u = sub.add_parser("tcp-to-unix", help="listen on a loopback TCP port, forward to a unix socket")
    t2u.add_argument("--listen", type=host_port, required=True, metavar="127.0.0.1:PORT")
    t2u.add_argument("--unix", required=True, metavar="PATH")
    u2t = sub.add_parser("unix-to-tcp", help="listen on a unix socket, forward to a TCP address")
    u2t.add_argument("--unix", required=True, metavar="PATH")
    u2t.add_argument("--connect", type=host_port, required=True, metavar="HOST:PORT")
    for p in (t2u, u2t):
        p.add_argument("--exit-with-parent", action="store_true",
                       help="stop when the parent process exits (so that a killed test leaves no bridge behind)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(main_async(args))
    except OSError as exc:
        print(f"bridge: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
