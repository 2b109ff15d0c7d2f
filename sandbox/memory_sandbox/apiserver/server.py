"""`ApiServer`: the emulated API on a loopback port, in the caller's event loop or in a thread of its own."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType

from aiohttp import web

from .cluster import Cluster
from .handlers import build_app
from .kubeconfig import write_kubeconfig
from .requestlog import RequestLog

__all__ = ["ApiServer"]

STOP_TIMEOUT = 10.0


class ApiServer:
    """The sandbox API server.

    Use `await start()`/`await stop()` inside a running event loop, or `start_in_thread()`/`stop_thread()`
    (also `with ApiServer() as server:`) from synchronous code: the loop then runs in one daemon thread,
    and the server keeps aiohttp's single-threaded model either way.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        validate_schemas: bool = True,
        history: int = 10_000,
        request_log: str | Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.cluster = Cluster(validate_schemas=validate_schemas, history=history)
        self.request_log = RequestLog(request_log) if request_log else None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_kubeconfig(self, path: str | Path) -> Path:
        return write_kubeconfig(path, self.url)

    async def start(self) -> None:
        # handler_cancellation: a watch handler is cancelled as soon as its client disconnects.
        runner = web.AppRunner(
            build_app(self.cluster, self.request_log), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self.port = int(runner.addresses[0][1])  # the real port when 0 was asked for
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is None:
            return
        self.cluster.store.close_watchers()
        await self._runner.cleanup()
        self._runner = None

    # -- thread mode -------------------------------------------------------------------------------
    def start_in_thread(self) -> ApiServer:
        """Run the server's loop in a daemon thread; returns once the port is listening."""
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run_thread, args=(ready, failure), name="sandbox-apiserver", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def _run_thread(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self.start())
        except BaseException as exc:  # handed to the starting thread
            failure.append(exc)
            ready.set()
            loop.close()
            return
        self._stopped = asyncio.Event()
        ready.set()
        loop.run_until_complete(self._stopped.wait())
        loop.run_until_complete(self.stop())
        loop.close()

    def stop_thread(self) -> None:
        if self._thread is None or self._loop is None or self._stopped is None:
            return
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(STOP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> ApiServer:
        return self.start_in_thread()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop_thread()
