"""The compliance report as one self-contained HTML page (inline CSS and SVG, no script, nothing fetched): what
`kubectl agentmemory report TENANT --html FILE` writes. Pure: the report JSON and its history in, text out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["CHECKS", "render_html"]

#: what each check of the report proves, in the words a compliance officer reads
CHECKS: dict[str, str] = {
    "retention": "No conversation entry is older than the effective maximum retention of the tenant's policies: "
    "data is not kept longer than the policy allows.",
    "ttl": "Every data key expires: nothing stored (by the library or around it) escapes the retention job.",
    "encryption": "Where the policy requires encryption, no stored value is plaintext (values sampled across "
    "every key under the tenant's prefix, whoever wrote them).",
    "acl": "The tenant's access rules were not changed behind the operator's back: each time the operator had to "
    "restore an ACL user, it recorded it in the audit trail, and any such record fails this check.",
    "audit_integrity": "The audit trail holds to the operator's seal: no sealed event was removed, reordered or "
    "changed, and the count of events only grew except by the operator's own trims.",
}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:960px;color:#1d2733}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d8dee4}
.muted{color:#57606a} .score{font-size:2.4rem;font-weight:700}
.pass{color:#1a7f37} .fail{color:#cf222e}
table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #e5e9ee;padding:.4rem;text-align:left}
svg text{font-size:12px;fill:#1d2733}
"""


def _bars(chart: str, rows: Sequence[tuple[str, float, str]], unit: str) -> str:
    """A horizontal bar chart: one (label, value, colour) per bar, the value written beside it."""
    if not rows:
        return f'<p class="muted" data-chart="{chart}" data-empty="true">Nothing to show.</p>'
    top = max(value for _, value, _ in rows) or 1
    height, width, label_width = 26 * len(rows) + 8, 760, 170
    bars = []
    for index, (label, value, colour) in enumerate(rows):
        y, length = 4 + 26 * index, (width - label_width - 80) * value / top
        bars.append(
            f'<g data-label="{escape(label)}" data-value="{value:g}">'
            f'<text x="0" y="{y + 15}">{escape(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="20" fill="{colour}"/>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 15}">{value:g}{unit}</text></g>'
        )
    return (
        f'<svg class="chart" data-chart="{chart}" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">{"".join(bars)}</svg>'
    )


def render_html(report: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> str:
    """The page: the verdict, the checks with what each proves and for which frameworks, how the score is made,
    and three charts: audit events by action, each check's findings, and the score of the last reports."""
    checks = list(report.get("checks") or ())
    frameworks = dict(report.get("frameworks") or {})
    audit = dict(report.get("audit") or {})
    integrity = dict(audit.get("integrity") or {})
    score, violations = report.get("score"), list(report.get("violations") or ())
    tenant = escape(str(report.get("tenant", "")))
    period = report.get("period") or {}

    rows = []
    for check in checks:
        name = str(check.get("name"))
        under = ", ".join(sorted(f for f, v in frameworks.items() if name in (v.get("checks") or ()))) or "-"
        verdict = '<span class="pass">pass</span>' if check.get("passed") else '<span class="fail">FAIL</span>'
        rows.append(
            f'<tr data-check="{escape(name)}" data-passed="{str(bool(check.get("passed"))).lower()}">'
            f"<td><b>{escape(name)}</b></td><td>{verdict}</td><td>{check.get('count', 0)}</td>"
            f"<td>{escape(CHECKS.get(name, str(check.get('message', ''))))}</td><td>{escape(under)}</td></tr>"
        )
    framework_rows = "".join(
        f'<tr data-framework="{escape(f)}"><td>{escape(f)}</td><td>{escape(str(v.get("status")))}</td>'
        f"<td>{escape(', '.join(v.get('checks') or ()))}</td></tr>"
        for f, v in sorted(frameworks.items())
    )
    by_action = sorted((dict(audit.get("byAction") or {})).items(), key=lambda item: (-item[1], item[0]))
    audit_chart = _bars("audit-by-action", [(a, float(n), "#0969da") for a, n in by_action], "")
    check_chart = _bars(
        "checks",
        [(str(c.get("name")), float(c.get("count") or 0), "#1a7f37" if c.get("passed") else "#cf222e") for c in checks],
        " found",
    )
    runs = [(str(r.get("generatedAt")), float(r.get("score") or 0), "#8250df") for r in history]
    history_chart = _bars("score-history", runs, "/100")
    recommendations = "".join(f"<li>{escape(str(r))}</li>" for r in report.get("recommendations") or ())
    held = "holds to the operator's seal" if integrity.get("ok") else "does NOT hold to the operator's seal"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Compliance report: {tenant}</title>
<style>{_STYLE}</style></head>
<body>
<h1>Compliance report: {tenant}</h1>
<p class="muted">Generated {escape(str(report.get("generatedAt")))} for the period {escape(str(period.get("from")))}
to {escape(str(period.get("to")))}. Frameworks: {escape(", ".join(sorted(frameworks)) or "none")}.</p>
<p><span class="score" data-score="{score}">{score}/100</span> &nbsp; {len(violations)} violation(s).
The score is the share of the report's checks that passed, in percent (each check counts the same); a framework
is compliant when every check it relies on passed.</p>

<h2>Checks: what each proves</h2>
<table><tr><th>check</th><th>result</th><th>found</th><th>what it proves</th><th>for</th></tr>{"".join(rows)}</table>
<h2>Findings per check</h2>{check_chart}

<h2>Frameworks</h2>
<table><tr><th>framework</th><th>status</th><th>checks it relies on</th></tr>{framework_rows}</table>

<h2>Audit trail</h2>
<p data-audit-events="{audit.get("events", 0)}">{audit.get("events", 0)} events by {audit.get("uniqueActors", 0)}
actor(s) about {audit.get("uniqueSubjects", 0)} subject(s); the trail {held}
({integrity.get("checked", 0)} entries checked).</p>
{audit_chart}

<h2>Score of the last {len(history)} report(s)</h2>{history_chart}

<h2>Recommendations</h2><ul>{recommendations or "<li>None.</li>"}</ul>
</body></html>
"""
