"""The CLI as a child process (`SandboxApiProcess`) and the protobuf decoding kubectl needs."""

from __future__ import annotations

import base64
import json
import urllib.request

from memory_sandbox.apiserver import SandboxApiProcess
from memory_sandbox.apiserver.protobuf import MAGIC, decode_object


def test_cli_process_serves_and_stops_by_pid() -> None:
    with SandboxApiProcess() as api:
        with urllib.request.urlopen(api.url + "/api/v1/namespaces/default") as response:
            assert json.loads(response.read())["metadata"]["name"] == "default"
        assert api.kubeconfig.exists()
        process = api.process
    assert process is not None and process.poll() is not None


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2, len(payload)]) + payload


def test_protobuf_secret_is_decoded() -> None:
    meta = _field(1, b"creds") + _field(11, _field(1, b"app") + _field(2, b"x"))
    secret = _field(1, meta) + _field(2, _field(1, b"pw") + _field(2, b"\x00\x01")) + _field(3, b"Opaque")
    envelope = _field(1, _field(1, b"v1") + _field(2, b"Secret")) + _field(2, secret)
    decoded = decode_object(MAGIC + envelope)
    assert decoded == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "labels": {"app": "x"}},
        "data": {"pw": base64.b64encode(b"\x00\x01").decode()},
        "type": "Opaque",
    }
