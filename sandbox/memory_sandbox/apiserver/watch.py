"""Watch streams: newline-delimited JSON events from a resourceVersion, live until timeout or disconnect.

A watch first replays what the client missed (events after `resourceVersion`, or synthetic ADDED events
for the current state when it is absent or "0", or when `sendInitialEvents=true`), then forwards live
events. A `resourceVersion` older than the bounded event log yields one ERROR event with a 410 Status,
as kube-apiserver does after etcd compaction. The stream waits on a queue with a short timeout so a
vanished client is noticed even when nothing happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import ApiError
from .resources import ResourceType
from .selectors import Selector
from .storage import Store, WatchEvent

__all__ = ["WatchRequest", "serve_watch"]

JsonObj = dict[str, Any]
Render = Callable[[JsonObj], JsonObj]
DEFAULT_TIMEOUT = 1800.0
POLL_INTERVAL = 1.0
BOOKMARK_INTERVAL = 10.0


@dataclass
class WatchRequest:
    rtype: ResourceType
    namespace: str | None
    selectors: list[Selector]
    resource_version: str
    timeout: float
    bookmarks: bool
    initial_events: bool
    render: Render

    def matches(self, obj: JsonObj | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace", "") != self.namespace:
            return False
        return all(select(obj) for select in self.selectors)

    def translate(self, event: WatchEvent) -> tuple[str, JsonObj] | None:
        """The event this client sees: selector changes turn MODIFIED into ADDED or DELETED."""
        now_matches = self.matches(event.obj)
        if event.type == "DELETED":
            return ("DELETED", event.obj) if self.matches(event.old or event.obj) else None
        if event.type == "ADDED":
            return ("ADDED", event.obj) if now_matches else None
        was_matching = self.matches(event.old)
        if now_matches:
            return ("MODIFIED" if was_matching else "ADDED", event.obj)
        return ("DELETED", event.obj) if was_matching else None


def _line(kind: str, obj: JsonObj) -> bytes:
    return json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _backlog(store: Store, req: WatchRequest) -> list[WatchEvent]:
    if req.initial_events or req.resource_version in ("", "0"):
        rv = store.resource_version
        return [WatchEvent(rv, "ADDED", obj) for obj in store.items(req.rtype.key, req.namespace)]
    try:
        rv = int(req.resource_version)
    except ValueError:
        raise ApiError(400, "BadRequest", f"invalid resource version {req.resource_version!r}") from None
    return store.events_since(req.rtype.key, rv)


def _backlog_or_gone(store: Store, req: WatchRequest) -> tuple[list[WatchEvent], ApiError | None]:
    """410 Gone is reported inside the stream (an ERROR event), as clients such as kopf expect."""
    try:
        return _backlog(store, req), None
    except ApiError as exc:
        if exc.code != 410:
            raise
        return [], exc


def _bookmark(req: WatchRequest, rv: int, *, initial_end: bool = False) -> bytes:
    meta: JsonObj = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    version = req.rtype.versions[0].name
    return _line("BOOKMARK", {"kind": req.rtype.kind, "apiVersion": req.rtype.api_version(version), "metadata": meta})


async def serve_watch(request: web.Request, store: Store, req: WatchRequest) -> web.StreamResponse:
    # Subscribing before reading the backlog, with no await in between, loses and repeats nothing.
    watcher = store.subscribe(req.rtype.key)
    try:
        backlog, error = _backlog_or_gone(store, req)
        replayed_rv = store.resource_version
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if error is not None:
            await response.write(_line("ERROR", error.status()))
            return response
        with contextlib.suppress(ConnectionResetError):  # the client left mid-write: nothing to tell it
            await _replay(response, req, backlog, replayed_rv)
            await _follow(request, response, store, req, watcher.queue)
        return response
    finally:
        store.unsubscribe(watcher)


async def _replay(response: web.StreamResponse, req: WatchRequest, backlog: list[WatchEvent], rv: int) -> None:
    for past in backlog:
        await _send(response, req, past)
    if req.initial_events and req.bookmarks:
        await response.write(_bookmark(req, rv, initial_end=True))


async def _follow(
    request: web.Request,
    response: web.StreamResponse,
    store: Store,
    req: WatchRequest,
    queue: asyncio.Queue[WatchEvent | None],
) -> None:
    """Forward live events until the deadline, the end of the resource, or the client's departure."""
    deadline = time.monotonic() + req.timeout
    next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
    while (remaining := deadline - time.monotonic()) > 0:
        if request.transport is None or request.transport.is_closing():
            return
        try:
            event: WatchEvent | None = await asyncio.wait_for(queue.get(), min(remaining, POLL_INTERVAL))
        except TimeoutError:
            if req.bookmarks and time.monotonic() >= next_bookmark:
                await response.write(_bookmark(req, store.resource_version))
                next_bookmark = time.monotonic() + BOOKMARK_INTERVAL
            continue
        if event is None:
            return
        await _send(response, req, event)


async def _send(response: web.StreamResponse, req: WatchRequest, event: WatchEvent) -> None:
    seen = req.translate(event)
    if seen is not None:
        await response.write(_line(seen[0], req.render(seen[1])))
