"""An optional request log: one JSON line per request (method, path, query, user agent), for RBAC audits.

The sandbox authorizes nothing, so this is how a test learns which (verb, resource) pairs a client such
as the operator really needs: run it, then map the recorded requests to RBAC verbs. Off unless a path is given
(`ApiServer(request_log=...)`, `--request-log PATH` or the environment variable SANDBOX_API_REQUEST_LOG).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO

from aiohttp import web

__all__ = ["ENV_VAR", "RequestLog"]

ENV_VAR = "SANDBOX_API_REQUEST_LOG"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RequestLog:
    """Appends one line per request before it is served (a watch is recorded when it starts)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8", buffering=1)  # line-buffered: readable at once
        entry = {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "userAgent": request.headers.get("User-Agent", ""),
            "contentType": request.headers.get("Content-Type", ""),
        }
        self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        return await handler(request)

    async def close(self, _app: web.Application | None = None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
