"""The key schema beneath the operator's prefixes (documented in the package docstring)."""

from __future__ import annotations

import hashlib
import re
from typing import Final

from memory_client.config import MemoryConfig

__all__ = ["KeySchema", "check_name", "plain_by_design"]

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_name(value: str, what: str) -> str:
    """Agent, conversation and context names become parts of key names: no ':' and no glob characters."""
    if not _NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit")
    return value


def plain_by_design(key: str, shared_prefix: str) -> bool:
    """The library's bookkeeping keys, never encrypted: counters, the size index, activity, subject index sets and
    shared-context access logs (names and counts, no content). Everything else it writes is an envelope."""
    if key in (f"{shared_prefix}usage", f"{shared_prefix}sizes", f"{shared_prefix}activity"):
        return True
    if key.startswith(f"{shared_prefix}subject:"):
        return True
    return key.startswith(f"{shared_prefix}ctx:") and key.endswith(":log")


class KeySchema:
    def __init__(self, config: MemoryConfig) -> None:
        self._config = config
        self.shared = config.shared_prefix
        self.usage = f"{self.shared}usage"
        self.sizes = f"{self.shared}sizes"
        self.activity = f"{self.shared}activity"
        self.audit = config.audit_key

    def subject_token(self, subject: str) -> str:
        """The subject's pseudonym in key names and audit events, so user ids (often e-mail addresses) never appear.

        HMAC-SHA256 of tenant id NUL subject under the keyring's pseudonym key, so nobody without the keyring can
        recompute it from a guessed id. Keyrings minted before that key existed (and tenants without a keyring)
        keep the unkeyed SHA-256 their data is already stored under: weaker, anyone who guesses the id links it.
        """
        ring = self._config.keyring
        keyed = ring.pseudonymize(self._config.tenant_id, subject) if ring is not None else None
        if keyed is not None:
            return keyed
        return hashlib.sha256(f"{self._config.tenant_id}\x00{subject}".encode()).hexdigest()[:32]

    def conversation(self, agent: str, conversation: str, subject: str) -> str:
        area = self._config.agent_area(check_name(agent, "agent"))
        return f"{area}conv:{check_name(conversation, 'conversation')}:{self.subject_token(subject)}"

    @staticmethod
    def summary(conversation_key: str) -> str:
        return f"{conversation_key}:summary"

    def subject_index(self, subject: str) -> str:
        return f"{self.shared}subject:{self.subject_token(subject)}"

    def is_context(self, key: str) -> bool:
        return key.startswith(f"{self.shared}ctx:")

    def context(self, name: str) -> str:
        return f"{self.shared}ctx:{check_name(name, 'context name')}"

    @staticmethod
    def context_log(context_key: str) -> str:
        return f"{context_key}:log"
