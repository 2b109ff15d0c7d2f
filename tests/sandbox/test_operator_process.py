"""`Sandbox.start_operator`: the operator comes up live even when its liveness port is taken before kopf binds it."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_sandbox.engine import free_port
from memory_sandbox.sandbox import Sandbox, SandboxError


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process holds (listening, never answering) from before the operator starts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_operator_comes_up_on_a_fresh_port_when_the_chosen_one_is_taken(tmp_path: Path, taken_port: int) -> None:
    picked: list[int] = []

    def pick() -> int:  # the race, made certain: the first port offered is already in use when kopf binds it
        picked.append(taken_port if not picked else free_port())
        return picked[-1]

    with Sandbox(tmp_path, pick_port=pick) as box:
        assert box.operator is not None and box.operator.poll() is None
        assert picked[0] == taken_port and box.health_port == picked[-1] != taken_port
        assert "address already in use" in box.operator_log_text()
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(box.liveness_url, timeout=5) as live:
            assert live.status == 200
        box.kubectl("wait", "--for=condition=Ready", "memorystore/sandbox", "--timeout=60s")


def test_an_operator_that_exits_for_another_reason_fails_start_naming_its_log(tmp_path: Path) -> None:
    box = Sandbox(tmp_path, operator_args=("--log-format=nonsense",))
    with pytest.raises(SandboxError, match="exited with code 2") as caught:
        box.start()
    assert str(box.operator_log) in str(caught.value)
    assert box.operator is None
