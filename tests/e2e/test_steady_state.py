"""e2e: what a periodic pass of a converged tenant costs the Kubernetes API, counted in the sandbox's request log.

The operator runs with a 2 s timer; once the tenant is Ready, the requests it makes over a window of whole tenant
passes are counted by method and resource. The window opens and closes half an interval after a pass ended (its
"Timer 'tenant_resync' succeeded" line), so each pass, its status patch included, falls wholly inside or outside.
A converged pass writes nothing and reads only what no watch keeps the operator told of (READS_PER_PASS).
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from memory_sandbox.apiserver.requestlog import ENV_VAR as REQUEST_LOG_ENV
from memory_sandbox.sandbox import Sandbox
from tests.e2e.conftest import apply, secret, tenant_manifest, wait_condition, wait_until

pytestmark = pytest.mark.e2e

RESYNC = 2.0
PASSES = 3
NAMESPACE = "steady"
PASS_DONE = "Timer 'tenant_resync' succeeded"
#: the test's own tools and the sandbox's probes, not the operator
NOT_OPERATOR = ("kubectl/", "Python-urllib/", "kubelet/")
WRITES = ("POST", "PUT", "PATCH", "DELETE")
#: the reads a converged pass cannot avoid, none of them watched: the MemoryStore by name (its URL, its
#: deletion), the report ConfigMap (a foreign one at our name is refused before a report is published) and the
#: namespace's job ServiceAccount (recreated when deleted). The store connection's read of its admin Secret, in
#: the operator's namespace, is the store's and is left out of the count.
READS_PER_PASS = {"GET memorystores/sandbox", "GET configmaps/calm-compliance-report",
                  "GET serviceaccounts/agent-memory-job"}  # fmt: skip
#: under --no-watch-secrets nothing tells of an edited Secret, so each pass reads the tenant's three
SECRET_READS = {f"GET secrets/calm-memory-{suffix}" for suffix in ("credentials", "keys", "job-credentials")}


@contextmanager
def _logged_sandbox(workdir: Path, *operator_args: str) -> Iterator[tuple[Sandbox, Path]]:
    log = workdir / "requests.jsonl"
    box = Sandbox(workdir, resync_seconds=RESYNC, operator_args=operator_args)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(REQUEST_LOG_ENV, str(log))  # inherited by the sandbox API process only at start
        box.start()
    try:
        box.kubectl("create", "namespace", NAMESPACE)
        yield box, log
    finally:
        box.stop()


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    with _logged_sandbox(tmp_path_factory.mktemp("steady-state")) as logged:
        yield logged


@pytest.fixture(scope="module")
def by_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    with _logged_sandbox(tmp_path_factory.mktemp("steady-by-name"), "--no-watch-secrets") as logged:
        yield logged


def _requests(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _passes_done(box: Sandbox) -> int:
    return box.operator_log_text().count(PASS_DONE)


def _between_passes(box: Sandbox, log: Path, after: int) -> int:
    """Once pass `after` has ended, half an interval on (the next has not begun): how many requests were logged."""
    wait_until(lambda: _passes_done(box) >= after, timeout=10 * RESYNC, what=f"tenant pass {after}")
    time.sleep(RESYNC / 2)  # a phase, not a wait for a condition: between two passes nothing of the tenant runs
    return len(_requests(log))


def _resource(r: dict[str, Any]) -> str:
    """`secrets/calm-memory-keys`, `memorytenants/calm/status`, ...: the path after the group, version, namespace."""
    parts = [p for p in r["path"].split("/") if p]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    return "/".join(rest)


def _tenant_requests(box: Sandbox, log: Path) -> tuple[Counter[str], int]:
    """The operator's requests over PASSES converged passes of the one tenant (the MemoryStore's own timer and the
    watches left out), as "METHOD resource" counts, and the number of passes counted."""
    first = _passes_done(box) + 1
    start = _between_passes(box, log, first)
    end = _between_passes(box, log, first + PASSES)
    counted: Counter[str] = Counter()
    for r in _requests(log)[start:end]:
        if r["userAgent"].startswith(NOT_OPERATOR) or r["query"].get("watch"):
            continue
        resource = _resource(r)
        store_side = resource.startswith("memorystores/") and r["method"] != "GET"  # the store's own status
        admin_secret = r["path"].startswith("/api/v1/namespaces/memory-system/")  # read by every store connection
        if store_side or (admin_secret and r["method"] == "GET"):
            continue
        counted[f"{r['method']} {resource}"] += 1
    return counted, PASSES


def _report(counted: Counter[str], passes: int) -> None:
    per_pass = ", ".join(f"{n / passes:g} {what}" for what, n in sorted(counted.items()))
    sys.stdout.write(f"\nper converged pass: {sum(counted.values()) / passes:g} requests ({per_pass})\n")


def _converged(box: Sandbox, log: Path) -> tuple[Counter[str], int]:
    apply(box, tenant_manifest(NAMESPACE, "calm"))
    wait_condition(box, NAMESPACE, "calm", "True")
    _between_passes(box, log, _passes_done(box) + 1)  # one whole pass after Ready: converged
    counted, passes = _tenant_requests(box, log)
    _report(counted, passes)
    return counted, passes


def test_a_converged_pass_writes_nothing_and_reads_only_what_no_watch_tells(logged: tuple[Sandbox, Path]) -> None:
    counted, passes = _converged(*logged)

    # before: 11 a pass (8 GET: store, 3 Secrets, 2 CronJobs, ConfigMap, ServiceAccount; 2 CronJob applies; status)
    assert {what: n for what, n in counted.items() if what.startswith(WRITES)} == {}
    assert set(counted) <= READS_PER_PASS
    assert sum(counted.values()) <= len(READS_PER_PASS) * passes


def test_without_the_secret_watch_a_pass_also_reads_the_secrets_and_repairs_an_edit(
    by_name: tuple[Sandbox, Path],
) -> None:
    box, log = by_name
    counted, passes = _converged(box, log)
    assert {what: n for what, n in counted.items() if what.startswith(WRITES)} == {}
    assert set(counted) <= READS_PER_PASS | SECRET_READS
    assert all(counted[read] == passes for read in SECRET_READS)

    prefix = secret(box, NAMESPACE, "calm-memory-credentials")["MEMORY_KEY_PREFIX"]
    evil = base64.b64encode(b"someone-else:").decode()
    box.kubectl("patch", "secret", "calm-memory-credentials", "-n", NAMESPACE, "--type=merge",
                "-p", f'{{"data": {{"MEMORY_KEY_PREFIX": "{evil}"}}}}')  # fmt: skip
    wait_until(
        lambda: secret(box, NAMESPACE, "calm-memory-credentials")["MEMORY_KEY_PREFIX"] == prefix,
        timeout=5 * RESYNC,
        what="the periodic pass to repair the edited Secret",
    )
