"""The key schema beneath the operator's prefixes (documented in the package docstring)."""

from __future__ import annotations

import hashlib
import re
from typing import Final

from memory_client import contract
from memory_client._config import MemoryConfig

__all__ = ["KeySchema", "check_name"]

_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_name(value: str, what: str) -> str:
    """Agent, conversation and context names become parts of key names: no ':' and no glob characters."""
    if not _NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit")
    return value


class KeySchema:
    def __init__(self, config: MemoryConfig) -> None:
        self._config = config
        self.shared = config.shared_prefix
        self.usage = f"{self.shared}{contract.USAGE}"
        self.sizes = f"{self.shared}{contract.SIZES}"
        self.activity = f"{self.shared}{contract.ACTIVITY}"
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
        return contract.subject_index(self.shared, self.subject_token(subject))

    def is_context(self, key: str) -> bool:
        return contract.is_context(key, self.shared)

    def context(self, name: str) -> str:
        return contract.context_key(self.shared, check_name(name, "context name"))

    @staticmethod
    def context_log(context_key: str) -> str:
        return contract.context_log(context_key)
