"""The report page (memory_cli.html) and the report history (builders.cronjobs.report_history), pure."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from memory_cli.html import CHECKS, render_html
from memory_operator.builders.cronjobs import REPORT_HISTORY, report_history


def report(score: int = 80, at: str = "2026-12-04T06:00:00Z", **extra: Any) -> dict[str, Any]:
    return {
        "tenant": "ns/t",
        "generatedAt": at,
        "score": score,
        "violations": [{"check": "ttl"}] if score < 100 else [],
        "checks": [{"name": name, "passed": name != "ttl" or score == 100, "count": 0} for name in CHECKS],
        "frameworks": {"GDPR": {"checks": ["retention", "ttl"], "status": "violations"}},
        "audit": {"events": 2, "byAction": {"save": 2}, "integrity": {"ok": True, "checked": 2}},
        **extra,
    }


def test_history_keeps_the_last_reports_once_each_newest_last() -> None:
    history = report_history(None, report(at="t0"))
    assert report_history(history, report(at="t0")) == history  # the same report on the next pass: unchanged
    for i in range(1, REPORT_HISTORY + 3):
        history = report_history(history, report(score=100 - i, at=f"t{i}"))
    runs = json.loads(history)
    assert len(runs) == REPORT_HISTORY and runs[-1] == {"generatedAt": f"t{REPORT_HISTORY + 2}", "score": 88,
                                                         "failed": ["ttl"]}  # fmt: skip
    assert json.loads(report_history("not json", report(at="x"))) == [
        {"generatedAt": "x", "score": 80, "failed": ["ttl"]}
    ]


def test_every_check_is_explained_with_the_frameworks_that_rely_on_it() -> None:
    page = render_html(report(), [])
    for name, meaning in CHECKS.items():
        assert f'data-check="{name}"' in page and escape(meaning) in page
    assert "<td><b>ttl</b></td>" in page and "<td>GDPR</td></tr>" in page
    assert 'data-chart="score-history" data-empty="true"' in page  # no history yet: said, not a broken chart


def test_what_a_tenant_wrote_into_its_trail_is_shown_as_text_never_as_markup() -> None:
    """Audit actions come from events a tenant's credentials can write: a hostile one must not become script."""
    hostile = {"events": 1, "byAction": {'<script>alert("x")</script>': 1}, "integrity": {"ok": False}}
    page = render_html(report(audit=hostile, tenant="<img src=x onerror=alert(1)>"), [])
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page and "does NOT hold to the operator" in page
