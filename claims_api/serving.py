"""Running the HTTP service: one uvicorn process, or N worker processes that each own a
listening socket bound with ``SO_REUSEPORT``.

Why not ``uvicorn --workers N``: its workers share one listening socket, and whichever worker
wakes first accepts the next connection, so a handful of keep-alive clients (a gateway, a load
generator) can all end up on one worker while the others idle. With one socket per worker the
kernel spreads new connections over the workers by their address hash.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from fastapi import FastAPI

APP = "claims_api.serving:served_app"
_M_ARENA_MAX = -8  # glibc mallopt parameter


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """glibc gives threads that allocate at once their own malloc arenas (up to 8 per core);
    the request threads each allocate megabytes per photo, so the freed memory stays spread
    over many arenas and the RSS grows far past what is in use; two arenas keep it close to
    what is used, for no more CPU. An explicit ``MALLOC_ARENA_MAX`` in the environment wins.
    Returns whether the limit was set."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc
        return False


def served_app() -> FastAPI:
    """The application as ``freshclaim serve`` runs it: a long-lived process that freezes
    what it loaded at startup out of the garbage collector (see the lifespan)."""
    from claims_api.config import get_settings
    from claims_api.main import create_app
    from claims_api.observability import configure_logging

    configure_logging(get_settings().log_format)
    app = create_app()
    app.state.freeze_gc_after_startup = True
    return app


def server_config(host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        APP,
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        access_log=False,
    )


def reuseport_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket that other workers may bind to the same address as well."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def _worker_main(host: str, port: int) -> None:
    limit_malloc_arenas()
    sock = reuseport_socket(host, port)
    uvicorn.Server(server_config(host, port)).run(sockets=[sock])


def run(host: str, port: int, workers: int) -> int:
    """Serve until interrupted; returns the exit status."""
    if workers <= 1:
        limit_malloc_arenas()
        return _serve_in_this_process(host, port)
    return _supervise(host, port, workers)


def _serve_in_this_process(host: str, port: int) -> int:
    """Once it has shut down gracefully, uvicorn raises the signal that stopped it again, with
    the handlers it found restored, so that the process dies of it (status 143 after a
    SIGTERM). A graceful stop is a success here, as it is for ``--workers N``: the handlers it
    finds ignore the signal (uvicorn installs its own for the whole run, startup included)."""
    stopping = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in stopping}
    try:
        uvicorn.Server(server_config(host, port)).run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _supervise(host: str, port: int, workers: int) -> int:
    """Start ``workers`` processes; stop them all on SIGINT/SIGTERM or when one dies."""
    reuseport_socket(host, port).close()  # fail fast when the address is taken
    # the workers share the cores: each decodes its share of photos at once (memory)
    cores = os.cpu_count() or 1
    os.environ.setdefault("FRESHCLAIM_PHOTO_CONCURRENCY", str(max(1, cores // workers)))
    # fork: the supervisor is single-threaded and has not loaded the app, so the workers start
    # from a clean copy (no re-import, no resource-tracker process); spawn where fork is absent
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    processes: list[BaseProcess] = [
        context.Process(target=_worker_main, args=(host, port), name=f"freshclaim-worker-{i}")
        for i in range(workers)
    ]
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.start()
        while not stopping and all(p.is_alive() for p in processes):
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [p for p in processes if p.exitcode not in (0, -signal.SIGTERM)]
    if failed and not stopping:
        name, code = failed[0].name, failed[0].exitcode
        print(f"freshclaim: worker {name} exited with {code}", file=sys.stderr)
        return 1
    return 0
