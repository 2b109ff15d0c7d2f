"""Timestamps as the API writes them: RFC 3339, UTC, whole seconds."""

from __future__ import annotations

import datetime as dt

__all__ = ["now"]


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
