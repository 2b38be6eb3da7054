"""The listening sockets of `automl serve --workers N`: one per HTTP process, balanced by the
kernel.

uvicorn's supervisor binds one socket and hands it to every HTTP process, so they all accept
from one queue; asyncio accepts every pending connection it finds at once, so a burst of new
keep-alive connections lands on whichever process woke first and stays there. Measured with 2
processes and 50 connections in flight: every connection on one process, and half the
throughput of 10 in flight (``benchmarks/load.py``). Here each HTTP process binds its own
socket in a SO_REUSEPORT group (Linux), and the kernel spreads new connections over them by
their addresses. The sockets are also made as TCP sockets (``IPPROTO_TCP``), so asyncio turns
Nagle's algorithm off on what they accept (uvicorn's shared socket is made with protocol 0,
which leaves it on).
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess


def reuse_port_supported() -> bool:
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_reuse_port(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket in the SO_REUSEPORT group of (host, port)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class ReusePortListener:
    """What uvicorn's supervisor passes to each HTTP process it starts (or restarts) in place
    of a shared socket: unpickled in that process, it is the process's own listening socket
    (``bind_reuse_port``). The parent holds no listening socket, so no connection waits in a
    queue nobody accepts from."""

    def __init__(self, host: str, port: int, backlog: int) -> None:
        self.host, self.port, self.backlog = host, port, backlog

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        return bind_reuse_port, (self.host, self.port, self.backlog)


def check_port_free(host: str, port: int) -> None:
    """Raise OSError when anything listens on (host, port) already, a SO_REUSEPORT socket
    included: a second `automl serve` on the same port must fail, not share the port's
    connections with the first."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        probe.bind((host, port))
    finally:
        probe.close()


def run_workers(app: str, workers: int, host: str, port: int, **options: Any) -> None:
    """``uvicorn.run(app, factory=True, workers=workers, ...)``, with a socket per process
    where the kernel can balance them (Linux), else uvicorn's shared socket. The caller has
    checked the port (``check_port_free``)."""
    if not reuse_port_supported():
        uvicorn.run(app, factory=True, workers=workers, host=host, port=port, **options)
        return
    config = uvicorn.Config(app, factory=True, workers=workers, host=host, port=port, **options)
    listener = ReusePortListener(host, port, config.backlog)
    # the supervisor only hands its sockets on to the processes it starts
    Multiprocess(config, sockets=[listener]).run()  # type: ignore[list-item]
