"""How long kopf waits before retrying a failed reconcile: each error's own first delay, grown by backoff."""

from __future__ import annotations

import pytest

from memory_operator.deps import RETRY_SCALE_ENV, retry_scale
from memory_operator.errors import KeyringUnreadable, PolicyInUse, StoreUnavailable, UnsupportedServer
from memory_operator.handlers.sync import MAX_RETRY_DELAY, retry_delay


def test_backoff_doubles_from_the_errors_own_first_delay() -> None:
    err = StoreUnavailable("down")
    assert [retry_delay(err, n) for n in range(4)] == [5.0, 10.0, 20.0, 40.0]


def test_backoff_stops_growing_at_the_cap() -> None:
    assert retry_delay(StoreUnavailable("down"), 4) == MAX_RETRY_DELAY
    assert retry_delay(StoreUnavailable("down"), 1_000) == MAX_RETRY_DELAY


@pytest.mark.parametrize("err", [UnsupportedServer("old"), KeyringUnreadable("garbled")])
def test_an_error_that_asks_for_longer_than_the_cap_waits_that_long(err: UnsupportedServer) -> None:
    assert err.retry_after == 300.0
    assert retry_delay(err, 0) == 300.0
    assert retry_delay(err, 5) == 300.0


def test_the_scale_multiplies_every_delay() -> None:
    assert retry_delay(PolicyInUse("held"), 0, scale=0.1) == pytest.approx(3.0)
    assert retry_delay(UnsupportedServer("old"), 3, scale=0.1) == pytest.approx(30.0)


def test_the_scale_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RETRY_SCALE_ENV, raising=False)
    assert retry_scale() == 1.0
    monkeypatch.setenv(RETRY_SCALE_ENV, "0.25")
    assert retry_scale() == 0.25


@pytest.mark.parametrize("raw", ["0", "-1", "fast", "inf", "nan"])
def test_a_scale_that_is_not_a_positive_number_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv(RETRY_SCALE_ENV, raw)
    with pytest.raises(ValueError, match=RETRY_SCALE_ENV):
        retry_scale()
