"""The sandbox API's optional request log (what the RBAC test is built on)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from memory_sandbox.apiserver import ApiServer


def test_each_request_is_one_json_line_with_method_path_query_user_agent_and_content_type(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    with ApiServer(request_log=log) as api:
        request = urllib.request.Request(f"{api.url}/api/v1/namespaces?watch=false", headers={"User-Agent": "probe/1"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert entry == {
        "method": "GET",
        "path": "/api/v1/namespaces",
        "query": {"watch": "false"},
        "userAgent": "probe/1",
        "contentType": "",
    }


def test_without_a_path_nothing_is_recorded(tmp_path: Path) -> None:
    with ApiServer() as api:
        assert api.request_log is None
        with urllib.request.urlopen(f"{api.url}/version", timeout=5) as response:
            assert response.status == 200
    assert list(tmp_path.iterdir()) == []
