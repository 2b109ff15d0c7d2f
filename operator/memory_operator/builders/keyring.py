"""The tenant keyring: random 256-bit AES keys with ids, stored in the `<tenant>-memory-keys` Secret.

The wire format (JSON under the Secret key `MEMORY_KEYRING`) is the contract's (`memory_client.contract`:
`KeyringDocument`, its one parser and serializer, shared with the agent library). Key material comes only from the
OS CSPRNG (the reconciler mints it); nothing here derives a key from a name.

`pseudonym` is the HMAC key of subject pseudonyms (key names and audit events), kept apart from the AES keys so
it stays the same when they rotate. Keyrings minted before it have none and are left so (adding one would move
every subject's keys); the library then keeps the unkeyed pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from memory_client.contract import (
    KEY_BYTES,
    KEYRING_ALGORITHM,
    ContractError,
    Env,
    KeyringDocument,
    WireKey,
    parse_keyring,
    serialize_keyring,
)

__all__ = ["KEYRING_KEY", "KEY_BYTES", "Keyring", "KeyringError", "KeyringKey"]

KEYRING_KEY: Final = Env.KEYRING
ALGORITHM: Final = KEYRING_ALGORITHM
_PSEUDONYM_INFO = b"agentmemory pseudonym key v1"

#: The stored keyring cannot be read; the message never includes key material (the contract's parser's error).
KeyringError = ContractError


@dataclass(frozen=True)
class KeyringKey:
    id: str
    material: bytes = field(repr=False)
    created_at: datetime | None
    algorithm: str = ALGORITHM  # another algorithm's key (a later version's) is carried, never used


@dataclass(frozen=True)
class Keyring:
    active: str
    keys: tuple[KeyringKey, ...]
    pseudonym: bytes | None = field(default=None, repr=False)

    def to_json(self) -> str:
        """The wire format, by the contract's one serializer."""
        keys = tuple(WireKey(k.id, k.material, k.algorithm, k.created_at) for k in self.keys)
        return serialize_keyring(KeyringDocument(self.active, keys, self.pseudonym))

    @classmethod
    def from_json(cls, text: str | bytes) -> Keyring:
        """By the contract's one parser (the library's too); KeyringError when it is not the documented shape."""
        doc = parse_keyring(text)
        keys = tuple(KeyringKey(k.id, k.material, k.created_at, k.algorithm) for k in doc.keys)
        return cls(active=doc.active, keys=keys, pseudonym=doc.pseudonym)

    @classmethod
    def first(cls, key: KeyringKey, pseudonym: bytes | None = None) -> Keyring:
        """A new tenant's keyring. `pseudonym`: fresh random bytes; when not given it is derived (HMAC-SHA256) from
        the first key's random material, one way, and stored: later rotations of the AES keys do not change it."""
        if pseudonym is None:
            pseudonym = hmac.new(key.material, _PSEUDONYM_INFO, hashlib.sha256).digest()
        return cls(active=key.id, keys=(key,), pseudonym=pseudonym)
