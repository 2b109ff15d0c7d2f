"""The tenant keyring and AES-256-GCM envelopes bound to the Redis key they are stored under.

The keyring is the operator's wire format (Secret `<tenant>-memory-keys`, key `MEMORY_KEYRING`), parsed here
again so the library stands alone. An envelope is ``0x01 | len(key id) | key id | 12-byte nonce | ciphertext``:
the key id travels with the value (rotation can add keys and still read old values) and the associated data is
``tenant id NUL redis key``, so a ciphertext copied to another key, or another tenant, fails to decrypt.
Plain values are ``0x00 | bytes`` so a reader knows which it holds.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from memory_client.errors import ConfigError, DecryptionError

__all__ = ["Cipher", "Keyring", "KeyringKey"]

_KEY_BYTES = 32
_NONCE_BYTES = 12
_ENCRYPTED = 1
_PLAIN = 0
_MASKING_INFO = b"agentmemory masking"


@dataclass(frozen=True)
class KeyringKey:
    id: str
    material: bytes = field(repr=False)


@dataclass(frozen=True)
class Keyring:
    """The tenant's keys; `active` is the one new values are encrypted with."""

    active: str
    keys: tuple[KeyringKey, ...]

    @classmethod
    def from_json(cls, text: str | bytes) -> Keyring:
        """Parse the keyring JSON; ConfigError (never echoing key material) when it is not the documented shape."""
        try:
            doc = json.loads(text)
            keys = tuple(
                KeyringKey(str(k["id"]), base64.b64decode(k["key"], validate=True))
                for k in doc["keys"]
                if k.get("algorithm", "AES-256-GCM") == "AES-256-GCM"
            )
            ring = cls(active=str(doc["active"]), keys=keys)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise ConfigError(f"keyring is not valid JSON of the documented shape ({type(exc).__name__})") from None
        if any(len(k.material) != _KEY_BYTES for k in keys):
            raise ConfigError("keyring holds a key that is not 256 bits")
        if any(len(k.id.encode()) > 255 for k in keys):
            raise ConfigError("keyring holds a key id longer than 255 bytes")
        if not any(k.id == ring.active for k in keys):
            raise ConfigError(f"keyring's active key {ring.active!r} is not among its keys")
        return ring

    def key(self, key_id: str) -> KeyringKey | None:
        return next((k for k in self.keys if k.id == key_id), None)

    @property
    def active_key(self) -> KeyringKey:
        found = self.key(self.active)
        assert found is not None  # checked in from_json
        return found

    def masking_key(self) -> bytes:
        """The HMAC key of keyed-hash masking, derived from the active key so it never equals an AES key."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_MASKING_INFO)
        return hkdf.derive(self.active_key.material)


class Cipher:
    """Seals and opens stored values.

    With `encrypt` off (only where the policy allows it) new values are stored plain; values encrypted earlier
    still open as long as the keyring is given.
    """

    def __init__(self, tenant_id: str, keyring: Keyring | None, *, encrypt: bool = True) -> None:
        self._tenant = tenant_id.encode()
        self._keyring = keyring if encrypt else None
        self._aead = {k.id: AESGCM(k.material) for k in keyring.keys} if keyring else {}
        if self._keyring is not None:  # what every new envelope starts with, and the key it is sealed with
            kid = self._keyring.active.encode()
            self._header = bytes([_ENCRYPTED, len(kid)]) + kid
            self._active = self._aead[self._keyring.active]

    @property
    def encrypting(self) -> bool:
        return self._keyring is not None

    def _aad(self, redis_key: str) -> bytes:
        return self._tenant + b"\x00" + redis_key.encode()

    def seal(self, plaintext: bytes, redis_key: str) -> bytes:
        if self._keyring is None:
            return bytes([_PLAIN]) + plaintext
        nonce = os.urandom(_NONCE_BYTES)
        return b"".join((self._header, nonce, self._active.encrypt(nonce, plaintext, self._aad(redis_key))))

    def open(self, envelope: bytes, redis_key: str) -> bytes:
        if not envelope:
            raise DecryptionError(f"empty value under {redis_key}")
        if envelope[0] == _PLAIN:
            return envelope[1:]
        if envelope[0] != _ENCRYPTED or len(envelope) < 2:
            raise DecryptionError(f"value under {redis_key} has an unknown format")
        end = 2 + envelope[1]
        kid = envelope[2:end].decode(errors="replace")
        aead = self._aead.get(kid)
        if aead is None:
            raise DecryptionError(f"value under {redis_key} is encrypted with key {kid!r}, not in this keyring")
        nonce, sealed = envelope[end : end + _NONCE_BYTES], envelope[end + _NONCE_BYTES :]
        try:
            return aead.decrypt(nonce, sealed, self._aad(redis_key))
        except (InvalidTag, ValueError):
            raise DecryptionError(f"value under {redis_key} failed authentication (tampered or moved)") from None
