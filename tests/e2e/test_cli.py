"""e2e: `kubectl agentmemory` found by kubectl as a plugin on PATH, against the sandbox and the operator process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from memory_client import AgentMemory
from memory_sandbox.sandbox import Sandbox, kubectl_binary
from tests.e2e.conftest import apply, get_json, login, secret, tenant_manifest, wait_condition, wait_until

pytestmark = pytest.mark.e2e


def plugin(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl agentmemory ARGS` as a user runs it: kubectl finds kubectl-agentmemory on PATH."""
    path = os.pathsep.join([str(Path(sys.executable).parent), str(kubectl_binary().parent), os.environ["PATH"]])
    env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig), "PATH": path}
    command = [str(kubectl_binary()), "agentmemory", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)


def tenant_with_three_messages(sandbox: Sandbox, namespace: str, name: str) -> dict[str, str]:
    """A Ready tenant with agent `bot`, which appended three messages through the library; the agent's env."""
    apply(sandbox, tenant_manifest(namespace, name, agents=["bot"]))
    wait_condition(sandbox, namespace, name, "True")
    env = {
        **secret(sandbox, namespace, f"{name}-bot-memory-credentials"),
        **secret(sandbox, namespace, f"{name}-memory-keys"),
    }
    with AgentMemory.from_env(env) as memory:
        chat = memory.conversation("c1", subject="s1")
        for i in range(3):
            chat.append("human", f"message {i}")
    return env


def test_status_shows_a_tenant_as_a_tree_and_as_data(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "shop", agents=["cart"], quota={"keys": 500}))
    tenant = wait_condition(sandbox, namespace, "shop", "True")

    text = plugin(sandbox, "status", "shop", "-n", namespace)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"MemoryTenant {namespace}/shop (moderate): Ready True (Provisioned)")
    assert any(line.startswith("├─ MemoryStore sandbox (Standalone, valkey") for line in lines)
    for user in tenant["status"]["users"]:
        assert any(line.strip("│├└─ ").startswith(user["name"]) for line in lines), user
    for name in ("shop-memory-credentials", "shop-cart-memory-credentials", "shop-memory-job-credentials"):
        assert f"{name}: present" in text.stdout
    assert any("retention: '" in line and "UTC" in line for line in lines)
    assert any(line.strip("│├└─ ").startswith("keys ") and line.endswith(" of 500") for line in lines)

    data = json.loads(plugin(sandbox, "status", "shop", "-n", namespace, "-o", "json").stdout)
    assert data["ready"]["status"] == "True" and data["store"]["found"]
    assert [u["name"] for u in data["users"]] == [u["name"] for u in tenant["status"]["users"]]
    assert all(s["present"] for s in data["secrets"]) and len(data["secrets"]) == 4  # + keys: encryption on
    assert data["keyPrefix"] == tenant["status"]["keyPrefix"]
    as_yaml = yaml.safe_load(plugin(sandbox, "status", "shop", "-n", namespace, "-o", "yaml").stdout)
    assert as_yaml == data


def test_exit_codes_tell_scripts_what_happened(sandbox: Sandbox, namespace: str) -> None:
    missing = plugin(sandbox, "status", "nobody", "-n", namespace)
    assert missing.returncode == 3 and f"memorytenant {namespace}/nobody not found" in missing.stderr
    apply(sandbox, tenant_manifest(namespace, "fine"))
    try:
        _exit_codes(sandbox, namespace)
    finally:  # a tenant that is never Ready must not outlive this test in the shared sandbox (its log, waits)
        sandbox.kubectl("delete", "memorytenant", "stranded", "-n", namespace, "--ignore-not-found", "--timeout=30s")


def _exit_codes(sandbox: Sandbox, namespace: str) -> None:
    apply(sandbox, tenant_manifest(namespace, "stranded", storeRef={"name": "no-such-store"}))
    wait_condition(sandbox, namespace, "fine", "True")
    wait_condition(sandbox, namespace, "stranded", "False")
    assert plugin(sandbox, "status", "fine", "-n", namespace).returncode == 0
    stranded = plugin(sandbox, "status", "stranded", "-n", namespace)
    assert stranded.returncode == 1 and "MemoryStore no-such-store (Standalone): NOT FOUND" in stranded.stdout
    table = plugin(sandbox, "status", "-n", namespace)
    assert table.returncode == 1  # one of them is not Ready
    rows = {line.split()[1]: line.split() for line in table.stdout.splitlines()[1:]}
    assert rows["fine"][2] == "True" and rows["stranded"][2] == "False"
    assert plugin(sandbox, "report", "fine", "-n", namespace).returncode == 3  # no report yet
    usage = plugin(sandbox, "status", "fine", "-n", namespace, "-o", "xml")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_report_and_verify_audit_and_a_trail_rewritten_with_the_agents_own_credentials(
    sandbox: Sandbox, namespace: str
) -> None:
    env = tenant_with_three_messages(sandbox, namespace, "ledger")

    def sealed() -> bool:
        audit = get_json(sandbox, "memorytenant", "ledger", "-n", namespace)["status"].get("audit") or {}
        return int(audit.get("verified") or 0) >= 3

    wait_until(sealed, 30, "the operator to seal the three events")
    verified = plugin(sandbox, "verify-audit", "ledger", "-n", namespace)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "verifies" in verified.stdout.splitlines()[0] and "held to the operator's seal" in verified.stdout
    as_json = json.loads(plugin(sandbox, "verify-audit", "ledger", "-n", namespace, "-o", "json").stdout)
    assert as_json["integrity"]["ok"] and as_json["events"] == 3 and as_json["byAction"] == {"save": 3}

    run = sandbox.run_cronjob(namespace, "ledger-memory-report")
    assert run.succeeded, run.stderr
    wait_until(lambda: plugin(sandbox, "report", "ledger", "-n", namespace).returncode != 3, 30, "the report")
    report = plugin(sandbox, "report", "ledger", "-n", namespace, "-o", "json")
    published = json.loads(
        get_json(sandbox, "configmap", "ledger-compliance-report", "-n", namespace)["data"]["report.json"]
    )
    assert json.loads(report.stdout) == published
    assert report.returncode == (1 if published["violations"] else 0)
    text = plugin(sandbox, "report", "ledger", "-n", namespace)
    assert text.stdout.startswith(f"# Compliance report: {namespace}/ledger")

    # the attack of issue 7: the agent's own credentials replace the whole history with one forged event
    agent = login(sandbox, namespace, "ledger-bot-memory-credentials")
    audit_key = get_json(sandbox, "memorytenant", "ledger", "-n", namespace)["status"]["audit"]["stream"]
    agent.xadd(audit_key, {"action": "save", "actor": "forger", "prev": "0" * 64}, maxlen=1, approximate=False)
    broken = plugin(sandbox, "verify-audit", "ledger", "-n", namespace)
    assert broken.returncode == 1
    assert "DOES NOT VERIFY" in broken.stdout.splitlines()[0]
    assert env["REDIS_PASSWORD"] not in broken.stdout + broken.stderr


CHROMIUM = Path("/usr/bin/chromium")  # Debian's; .ci/run installs it
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")  # fmt: skip


class _DataElements(HTMLParser):
    """Every element of a rendered DOM that carries data-* attributes: (tag, {attribute: value})."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = {k: v or "" for k, v in attrs if k.startswith("data-")}
        if data:
            self.found.append((tag, data))


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM.exists(), "headless Chromium is needed (Debian: apt-get install chromium; .ci/run does)"
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    command = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_html_report_renders_its_charts_in_chromium(sandbox: Sandbox, namespace: str, tmp_path: Path) -> None:
    tenant_with_three_messages(sandbox, namespace, "charted")

    def history() -> list[dict[str, object]]:
        cm = sandbox.kubectl(
            "get", "configmap", "charted-compliance-report", "-n", namespace, "-o", "json", check=False
        )
        return json.loads(json.loads(cm.stdout)["data"].get("history.json") or "[]") if cm.returncode == 0 else []

    for run in (1, 2):  # two reports (a second apart: their times differ) -> two runs in the history
        assert sandbox.run_cronjob(namespace, "charted-memory-report").succeeded
        wait_until(lambda run=run: len(history()) == run, 30, f"report {run} in history.json")
        time.sleep(1.1)
    page = tmp_path / "report.html"
    written = plugin(sandbox, "report", "charted", "-n", namespace, "--html", str(page))
    assert written.returncode in (0, 1), written.stderr
    data = get_json(sandbox, "configmap", "charted-compliance-report", "-n", namespace)["data"]
    report, runs = json.loads(data["report.json"]), json.loads(data["history.json"])
    assert "http://" not in page.read_text().replace("http://www.w3.org/2000/svg", "")  # nothing fetched

    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    parser = _DataElements()
    parser.feed(dom.stdout)
    charts = {d["data-chart"] for tag, d in parser.found if tag == "svg" and "data-chart" in d}
    assert charts == {"audit-by-action", "checks", "score-history"}
    bars = [d for tag, d in parser.found if tag == "g"]
    labels = {d["data-label"]: float(d["data-value"]) for d in bars}
    for action, count in report["audit"]["byAction"].items():
        assert labels[action] == count
    for check in report["checks"]:
        assert labels[check["name"]] == check["count"]
    assert [float(d["data-value"]) for d in bars[-len(runs) :]] == [r["score"] for r in runs] and len(runs) == 2
    (score,) = [d["data-score"] for _, d in parser.found if "data-score" in d]
    assert int(score) == report["score"]
    assert {d["data-check"] for _, d in parser.found if "data-check" in d} == {c["name"] for c in report["checks"]}

    shot = tmp_path / "report.png"
    taken = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1000,2200", "--hide-scrollbars", page.as_uri())
    assert taken.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", taken.stderr
    assert shot.stat().st_size > 20_000  # a page with text and charts, not a blank one
