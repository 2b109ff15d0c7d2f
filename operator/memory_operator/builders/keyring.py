"""The tenant keyring: random 256-bit AES keys with ids, stored in the `<tenant>-memory-keys` Secret.

Wire format (the contract with the agent library), JSON under the Secret key `MEMORY_KEYRING`:
`{"version": 1, "active": "k1", "keys": [{"id": "k1", "algorithm": "AES-256-GCM", "key": "<base64>",
"createdAt": "2026-01-01T00:00:00Z"}], "pseudonym": "<base64 of 32 bytes>"}`. Key material comes only from the
OS CSPRNG (the reconciler mints it); nothing here derives a key from a name.

`pseudonym` is the HMAC key of subject pseudonyms (key names and audit events), kept apart from the AES keys so
it stays the same when they rotate. Keyrings minted before it have none and are left so (adding one would move
every subject's keys); the library then keeps the unkeyed pseudonym.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["KEYRING_KEY", "KEY_BYTES", "Keyring", "KeyringError", "KeyringKey"]

KEYRING_KEY = "MEMORY_KEYRING"
KEY_BYTES = 32
ALGORITHM = "AES-256-GCM"
_PSEUDONYM_INFO = b"agentmemory pseudonym key v1"


class KeyringError(ValueError):
    """The stored keyring cannot be read; the message never includes key material."""


@dataclass(frozen=True)
class KeyringKey:
    id: str
    material: bytes = field(repr=False)
    created_at: datetime

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "algorithm": ALGORITHM,
            "key": base64.b64encode(self.material).decode(),
            "createdAt": self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


@dataclass(frozen=True)
class Keyring:
    active: str
    keys: tuple[KeyringKey, ...]
    pseudonym: bytes | None = field(default=None, repr=False)

    def to_json(self) -> str:
        doc: dict[str, object] = {"version": 1, "active": self.active, "keys": [k.to_json() for k in self.keys]}
        if self.pseudonym is not None:
            doc["pseudonym"] = base64.b64encode(self.pseudonym).decode()
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Keyring:
        try:
            doc = json.loads(text)
            keys = tuple(
                KeyringKey(
                    id=str(k["id"]),
                    material=base64.b64decode(k["key"], validate=True),
                    created_at=datetime.fromisoformat(str(k["createdAt"]).replace("Z", "+00:00")),
                )
                for k in doc["keys"]
            )
            raw = doc.get("pseudonym")
            pseudonym = base64.b64decode(raw, validate=True) if raw is not None else None
            ring = cls(active=str(doc["active"]), keys=keys, pseudonym=pseudonym)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise KeyringError(f"keyring is not valid JSON of the documented shape ({type(exc).__name__})") from None
        if not any(k.id == ring.active for k in keys):
            raise KeyringError(f"keyring's active key {ring.active!r} is not among its keys")
        if any(len(k.material) != KEY_BYTES for k in keys):
            raise KeyringError("keyring holds a key that is not 256 bits")
        if pseudonym is not None and len(pseudonym) != KEY_BYTES:
            raise KeyringError("keyring's pseudonym key is not 256 bits")
        return ring

    @classmethod
    def first(cls, key: KeyringKey, pseudonym: bytes | None = None) -> Keyring:
        """A new tenant's keyring. `pseudonym`: fresh random bytes; when not given it is derived (HMAC-SHA256) from
        the first key's random material, one way, and stored: later rotations of the AES keys do not change it."""
        if pseudonym is None:
            pseudonym = hmac.new(key.material, _PSEUDONYM_INFO, hashlib.sha256).digest()
        return cls(active=key.id, keys=(key,), pseudonym=pseudonym)
