"""When a store's survey walks its keyspace, and for whom (memory_operator.surveys, no server needed)."""

from __future__ import annotations

from memory_operator.surveys import SURVEY_INTERVAL_MS, Surveys, SurveyTarget

HOUR = SURVEY_INTERVAL_MS
NOW = 10 * HOUR


def _target(name: str, retention_days: int | None = None) -> SurveyTarget:
    prefix = f"mem:ns:{name}:"
    return SurveyTarget(prefix, f"{prefix}shared:", f"jobs:ns:{name}:facts", retention_days, encrypted=True)


def _due(surveys: Surveys, store: str = "s") -> list[str]:
    return sorted(t.prefix for t in surveys.due(store, NOW))


def test_nothing_is_walked_while_no_tenant_is_due() -> None:
    surveys = Surveys()
    surveys.note("s", _target("a"), NOW - HOUR + 1)
    surveys.note("s", _target("b"), NOW - 10)
    assert _due(surveys) == []


def test_a_never_surveyed_tenant_is_due_and_takes_the_half_due_along() -> None:
    surveys = Surveys()
    surveys.note("s", _target("new"), None)
    surveys.note("s", _target("half"), NOW - HOUR // 2)
    surveys.note("s", _target("fresh"), NOW - HOUR // 2 + 1)
    assert _due(surveys) == ["mem:ns:half:", "mem:ns:new:"]


def test_an_hour_old_survey_is_due() -> None:
    surveys = Surveys()
    surveys.note("s", _target("old"), NOW - HOUR)
    assert _due(surveys) == ["mem:ns:old:"]


def test_a_pass_that_read_older_facts_than_the_last_walk_does_not_make_the_tenant_due() -> None:
    surveys = Surveys()
    surveys.note("s", _target("a"), NOW - 5)  # as the walk records it
    surveys.note("s", _target("a"), NOW - 2 * HOUR)  # a pass that read the facts just before the walk rewrote them
    assert _due(surveys) == []


def test_the_latest_note_of_what_to_look_for_wins() -> None:
    surveys = Surveys()
    surveys.note("s", _target("a"), None)
    surveys.note("s", _target("a", retention_days=1), None)
    (target,) = surveys.due("s", NOW)
    assert target.scope(NOW).cutoff_ms == NOW - 86_400_000


def test_a_tenant_is_surveyed_on_one_store_only_and_forgotten_when_gone() -> None:
    surveys = Surveys()
    surveys.note("s", _target("a"), None)
    surveys.note("t", _target("a"), None)
    assert _due(surveys, "s") == [] and _due(surveys, "t") == ["mem:ns:a:"]
    surveys.forget("mem:ns:a:")
    assert _due(surveys, "t") == []
