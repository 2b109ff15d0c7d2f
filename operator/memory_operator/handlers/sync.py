"""The one path every handler takes: run a reconcile, write the whole status, post Events, pick a retry.

Handlers stay thin: parse the body, call `run`, done. A ReconcileError becomes Ready=False with its reason
and message, one Event when Ready changes, and kopf's PermanentError (fix the spec) or TemporaryError
(retry with backoff). Events are posted on transitions, not on every pass of the timer.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import kopf
from pydantic import ValidationError

from memory_operator.api.conditions import Condition, find_condition
from memory_operator.api.v1alpha1.common import CustomObject, StatusBase, lenient_status
from memory_operator.clients.kube import KubeError
from memory_operator.deps import Deps
from memory_operator.errors import (
    DeletionInProgress,
    InvalidSpec,
    KubernetesApiError,
    ReconcileError,
    StoreBusy,
    UnexpectedError,
    describe_validation_error,
)
from memory_operator.metrics import Metrics
from memory_operator.reconcilers.common import Event, Outcome, condition, with_conditions

__all__ = [
    "MAX_RETRY_DELAY",
    "RESYNC_SECONDS",
    "Logger",
    "kube_errors",
    "reconcile_body",
    "retry_delay",
    "run",
    "run_finalizer",
]

S = TypeVar("S", bound=StatusBase)
M = TypeVar("M", bound=CustomObject)
Logger = logging.Logger | logging.LoggerAdapter[Any]
#: backoff grows up to here, so recovery is noticed within a minute; an error that asks for longer gets its own
MAX_RETRY_DELAY = 60.0
#: the periodic pass of every kind (drift repair, usage, health), read once at import: kopf timers are declared then
RESYNC_SECONDS = float(os.environ.get("AGENTMEMORY_RESYNC_SECONDS", "60"))


@contextmanager
def kube_errors() -> Iterator[None]:
    """A refused or failed Kubernetes API call is a temporary reconcile error like any other."""
    try:
        yield
    except KubeError as exc:
        raise KubernetesApiError(str(exc)) from None


def retry_delay(err: ReconcileError, retry: int, scale: float = 1.0) -> float:
    """Exponential backoff from the error's own first delay, capped at MAX_RETRY_DELAY, or at that first delay
    when it is longer (an error that asks for 300 s gets 300 s), all times `scale` (Deps.retry_scale)."""
    first = err.retry_after or MAX_RETRY_DELAY
    return min(first * 2.0 ** min(retry, 8), max(first, MAX_RETRY_DELAY)) * scale


def reconcile_body(
    model: type[M],
    reconcile: Callable[[M, Deps], Outcome[Any]],
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    logger: Logger,
    *,
    periodic: bool = False,
) -> None:
    """Parse `body` as `model` (an invalid spec is InvalidSpec, naming the field) and `run` its reconcile.

    `periodic` (a timer): a generation already judged InvalidSpec is not looked at again; only a new spec can
    change the verdict, and re-judging it every pass would only repeat the same warning.
    """

    def attempt() -> Outcome[Any]:
        try:
            obj = model.from_body(body)
        except ValidationError as exc:
            raise InvalidSpec(describe_validation_error(exc)) from None
        return reconcile(obj, memo.deps)

    old_status = lenient_status(model.status_model, body.get("status"))
    generation = int(body.get("metadata", {}).get("generation") or 0)
    if periodic and _judged_invalid(old_status, generation):
        return
    run(body, patch, memo.deps, old_status, attempt, retry, logger, metrics=memo.get("metrics"))


def run(
    body: kopf.Body,
    patch: kopf.Patch,
    deps: Deps,
    old_status: S,
    reconcile: Callable[[], Outcome[S]],
    retry: int,
    logger: Logger,
    *,
    metrics: Metrics | None = None,
) -> None:
    """Reconcile, write the whole status, post Events and record metrics (from the status just written)."""
    generation = int(body.get("metadata", {}).get("generation") or 0)
    kind = str(body.get("kind") or "")
    try:
        with _timed(metrics, kind), kube_errors():
            outcome = reconcile()
    except DeletionInProgress as err:
        logger.info("reconcile stopped: %s", err.message)  # the finalizer owns the object now: write nothing
        return
    except StoreBusy as err:  # put off before it began: nothing to report, only to retry (with some spread)
        logger.debug("%s: %s", err.reason, err.message)
        delay = retry_delay(err, retry, deps.retry_scale) * random.uniform(1.0, 1.5)  # noqa: S311 - not a secret
        raise kopf.TemporaryError(f"{err.reason}: {err.message}", delay=delay) from None
    except ReconcileError as err:
        written = _fail(body, patch, deps, old_status, err, generation, logger)
        _observe(metrics, body, written, err.reason)
        if err.retry_after is None:
            return  # handled: the verdict is in status and an Event; only a new spec is worth another look
        delay = retry_delay(err, retry, deps.retry_scale)
        raise kopf.TemporaryError(f"{err.reason}: {err.message}", delay=delay) from None
    except Exception as exc:
        # A bug or an unforeseen fault: say so without echoing the exception text (it could carry data)
        # into status, Events or kopf's annotations; the traceback goes to the operator log only.
        logger.exception("reconcile failed unexpectedly")
        unexpected = UnexpectedError(f"unexpected {type(exc).__name__}; see the operator log")
        written = _fail(body, patch, deps, old_status, unexpected, generation, logger)
        _observe(metrics, body, written, unexpected.reason)
        raise kopf.TemporaryError(unexpected.message, delay=retry_delay(unexpected, retry, deps.retry_scale)) from None
    done = with_conditions(outcome.status, generation, *_kstatus(None, generation, deps.clock()))
    _write(body, patch, old_status, done, outcome.events)
    _observe(metrics, body, done, None)
    for event in outcome.events:
        logger.info("%s: %s", event.reason, event.message)


def _fail(
    body: kopf.Body, patch: kopf.Patch, deps: Deps, old_status: S, err: ReconcileError, generation: int, logger: Logger
) -> S:
    now = deps.clock()
    failed = condition("Ready", "False", err.reason, err.message, generation, now)
    written = with_conditions(old_status, generation, failed, *_kstatus(err, generation, now))
    _write(body, patch, old_status, written, [])
    logger.warning("%s: %s", err.reason, err.message)
    return written


def _kstatus(err: ReconcileError | None, generation: int, now: datetime) -> tuple[Condition, Condition]:
    """kstatus' abnormal-true pair, so Flux, kpt and Argo CD tell "still working" from "needs a human":
    Reconciling=True while a retry is pending, Stalled=True when none can succeed until an object changes."""
    if err is None:
        return (
            condition("Reconciling", "False", "Reconciled", "the desired state is in place", generation, now),
            condition("Stalled", "False", "Reconciled", "the desired state is in place", generation, now),
        )
    if err.stalled:
        return (
            condition("Reconciling", "False", err.reason, "not retried until an object changes", generation, now),
            condition("Stalled", "True", err.reason, err.message, generation, now),
        )
    return (
        condition("Reconciling", "True", err.reason, f"retrying: {err.message}", generation, now),
        condition("Stalled", "False", err.reason, "retrying by itself", generation, now),
    )


def _judged_invalid(status: StatusBase, generation: int) -> bool:
    ready = find_condition(status.conditions, "Ready")
    return (
        status.observed_generation == generation
        and ready is not None
        and ready.status == "False"
        and ready.reason == InvalidSpec.reason
    )


@contextmanager
def _timed(metrics: Metrics | None, kind: str) -> Iterator[None]:
    if metrics is None:
        yield
        return
    with metrics.timed(kind):
        yield


def _observe(metrics: Metrics | None, body: kopf.Body, status: StatusBase, error_reason: str | None) -> None:
    if metrics is None:
        return
    meta = body.get("metadata", {})
    metrics.observe(
        str(body.get("kind") or ""),
        meta.get("namespace"),
        str(meta.get("name") or ""),
        status.to_wire(),
        body.get("spec"),
        error_reason,
    )


def run_finalizer(body: kopf.Body, deps: Deps, finalize: Callable[[], list[Event]], retry: int, logger: Logger) -> None:
    """Run a deletion step; while it cannot finish, the object stays (finalizer held) and an Event says why."""
    try:
        with kube_errors():
            events = finalize()
    except ReconcileError as err:
        kopf.event(body, type="Warning", reason=err.reason, message=f"deletion waits: {err.message}")
        logger.warning("deletion waits: %s: %s", err.reason, err.message)
        raise kopf.TemporaryError(err.message, delay=retry_delay(err, retry, deps.retry_scale)) from None
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        logger.info("%s: %s", event.reason, event.message)


def _write(body: kopf.Body, patch: kopf.Patch, old: S, new: S, events: list[Event]) -> None:
    old_wire, new_wire = old.to_wire(), new.to_wire()
    # A merge patch keeps fields it does not mention: clear what the new status no longer has. Only fields that
    # moved are sent, so a converged pass leaves the patch empty and kopf sends none.
    changed = {key: value for key, value in new_wire.items() if old_wire.get(key) != value}
    patch.status.update({**dict.fromkeys(old_wire.keys() - new_wire.keys()), **changed})
    transition = _ready_transition(find_condition(old.conditions, "Ready"), find_condition(new.conditions, "Ready"))
    for event in [*events, *transition]:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _ready_transition(old: Condition | None, new: Condition | None) -> list[Event]:
    if new is None or (old is not None and (old.status, old.reason) == (new.status, new.reason)):
        return []
    return [Event(new.reason, new.message, "Normal" if new.status == "True" else "Warning")]
