"""The stores' surveys: one walk of a store's keyspace for all of its tenants, not one per tenant.

The survey is the report's and the quota's evidence over every key under a tenant's prefix, whoever wrote it:
keys written around the library's index, plaintext where encryption is required, keys without a TTL. Tenant
and job users may not SCAN, so only the operator can take it, and a SCAN walks the whole keyspace whatever it
matches. Taken per tenant, an hourly survey cost tenants times all keys; here each tenant's pass only notes what its
survey must look for (`note`), and the store's own pass (`run`) walks the keyspace once for every tenant that is
due, writing each one's facts to `jobs:<ns>:<tenant>:facts`, where its next pass and the report job read them.

When the walk happens: as soon as one noted tenant has never been surveyed or its facts are an interval old.
That walk also takes every tenant whose facts are half an interval old, so tenants provisioned at different
times fall into a few cohorts and a store is walked about twice an hour at most, plus once per store pass while
new tenants keep arriving. What is noted lives in this process only: after a restart, tenants note themselves
again on their first pass, and their facts (in the store) keep their age.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from memory_client import contract
from memory_operator.clients.redis_admin import RedisAdmin, SurveyScope

__all__ = ["SURVEY_INTERVAL_MS", "SurveyTarget", "Surveys"]

#: how often every tenant's prefix is surveyed (the facts' age at which a tenant is due)
SURVEY_INTERVAL_MS = 3_600_000


@dataclass(frozen=True)
class SurveyTarget:
    """One tenant's survey: its prefix and shared area, where its facts go, and what its policy requires."""

    prefix: str
    shared: str
    facts_key: str
    retention_days: int | None
    encrypted: bool

    def scope(self, now_ms: int) -> SurveyScope:
        cutoff = None if self.retention_days is None else now_ms - self.retention_days * contract.DAY_MS
        return SurveyScope(shared=self.shared, cutoff_ms=cutoff, encrypted=self.encrypted)


class Surveys:
    """What each store's survey covers, and when each tenant was last surveyed. Thread-safe; one per operator."""

    def __init__(self, interval_ms: int = SURVEY_INTERVAL_MS) -> None:
        self.interval_ms = interval_ms
        self._lock = threading.Lock()
        self._targets: dict[str, dict[str, tuple[SurveyTarget, int | None]]] = {}  # store -> prefix -> (t, at)
        self._running: set[str] = set()

    def note(self, store: str, target: SurveyTarget, surveyed_at: int | None) -> None:
        """A tenant's pass: survey `target` on `store`; its facts were last written at `surveyed_at` (epoch ms)."""
        with self._lock:
            for other, targets in self._targets.items():
                if other != store:
                    targets.pop(target.prefix, None)
            targets = self._targets.setdefault(store, {})
            known = targets.get(target.prefix, (target, None))[1]
            # a pass that read its facts just before a walk rewrote them does not make the tenant due again
            latest = known if surveyed_at is None or (known is not None and known > surveyed_at) else surveyed_at
            targets[target.prefix] = (target, latest)

    def forget(self, prefix: str) -> None:
        """The tenant is gone (or no longer provisioned): no survey writes its facts again."""
        with self._lock:
            for targets in self._targets.values():
                targets.pop(prefix, None)

    def _surveyed_at(self, store: str, prefix: str, at: int | None = None) -> tuple[SurveyTarget, int | None] | None:
        """What is noted for `prefix` on `store` (None: nothing, it was forgotten), its survey time set to `at`."""
        with self._lock:
            targets = self._targets.get(store, {})
            noted = targets.get(prefix)
            if noted is not None and at is not None:
                targets[prefix] = noted = (noted[0], at)
            return noted

    def due(self, store: str, now_ms: int) -> list[SurveyTarget]:
        """What a walk of `store` now would cover: nothing while no tenant is due, else every half-due tenant."""
        with self._lock:
            noted = list(self._targets.get(store, {}).values())
        ages = [None if at is None else now_ms - at for _, at in noted]
        if not any(age is None or age >= self.interval_ms for age in ages):
            return []
        return [t for (t, _), age in zip(noted, ages, strict=True) if age is None or age >= self.interval_ms // 2]

    def run(self, store: str, admin: RedisAdmin, now_ms: int) -> int:
        """Walk `store` once for every tenant `due` on it and write their facts; returns how many were surveyed.
        A walk already under way for the store (another thread) makes this one return 0 at once."""
        targets = self.due(store, now_ms)
        if not targets:
            return 0
        with self._lock:
            if store in self._running:
                return 0
            self._running.add(store)
        try:
            counts = admin.survey({t.prefix: t.scope(now_ms) for t in targets})
            for target in targets:
                if self._surveyed_at(store, target.prefix) is None:
                    continue  # forgotten meanwhile: its tenant is being deleted
                facts = {**{k: str(v) for k, v in counts[target.prefix].items()}, "at": str(now_ms)}
                admin.write_hash(target.facts_key, facts)
                self._surveyed_at(store, target.prefix, now_ms)
        finally:
            with self._lock:
                self._running.discard(store)
        return len(targets)
