"""Several replicas, one reconciling: stand by until this replica holds the Lease, then run the operator.

While it stands by, a replica answers its liveness URL itself (kopf serves it only once running), so the
kubelet does not restart a healthy standby. Once it holds the Lease it stops answering, runs kopf, and renews
the Lease beside it; when kopf returns (SIGTERM), it releases the Lease so a standby takes over at once. A
leader that cannot renew in time exits immediately (`os._exit`), without finishing its handlers: another replica
may take over once the Lease expires, and two must never reconcile at once. Its Pod restarts as a standby;
what the handlers left half done is picked up again, as after any crash (every reconcile is idempotent).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from memory_operator.clients.lease import LeaderElector

__all__ = ["EXIT_LOST", "StandbyHealth", "candidate_identity", "run_elected"]

logger = logging.getLogger(__name__)

#: the exit code of a leader that could not renew its Lease in time
EXIT_LOST = 3


def candidate_identity() -> str:
    """The Pod's name (its hostname) and a random suffix: a restarted container is a new candidate."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class StandbyHealth:
    """A liveness endpoint answering 200 "standby" on the URL kopf will serve once this replica leads."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        path = parts.path or "/"

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the http.server API
                found = self.path.split("?", 1)[0] == path
                body = b"standby\n" if found else b"not found\n"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # probes are not logged
                pass

        self._server = ThreadingHTTPServer((parts.hostname or "0.0.0.0", parts.port or 80), Handler)  # noqa: S104
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="standby-health", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _exit_lost() -> None:
    logger.critical("Leadership lost: exiting at once, without finishing handlers; the Pod restarts as a standby")
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_LOST)


def run_elected(
    run: Callable[[], None],
    elector: LeaderElector,
    *,
    liveness_url: str | None,
    leading: Callable[[bool], None] = lambda _: None,
    lost: Callable[[], None] = _exit_lost,
    stop: threading.Event | None = None,
) -> bool:
    """Stand by until `elector` holds its Lease, then `run()` while renewing it; release it when `run` returns.

    `leading(True/False)` reports the change (a metric); `lost` is what happens when renewing fails (exit at once).
    False if `stop` was set before this replica ever led.
    """
    stop = stop or threading.Event()
    try:
        health = StandbyHealth(liveness_url) if liveness_url else None
    except OSError as exc:
        raise SystemExit(f"standby liveness endpoint {liveness_url}: {exc.strerror or exc}") from None
    leading(False)
    logger.info("Candidate %s for Lease %s/%s", elector.identity, elector.namespace, elector.name)
    try:
        if not elector.acquire(stop):
            return False
    finally:
        if health is not None:
            health.close()
    logger.info("Leading: %s holds Lease %s/%s", elector.identity, elector.namespace, elector.name)
    leading(True)
    done = threading.Event()
    renewer = threading.Thread(target=elector.hold, args=(done, lost), name="lease-renewer", daemon=True)
    renewer.start()
    try:
        run()
    finally:
        done.set()
        renewer.join(timeout=elector.timing.deadline)
        elector.release()
        leading(False)
    return True
