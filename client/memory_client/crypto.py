"""The tenant keyring and AES-256-GCM envelopes bound to the Redis key and the place they are stored in.

The keyring is the operator's wire format (Secret `<tenant>-memory-keys`, key `MEMORY_KEYRING`), parsed here
again so the library stands alone. An envelope (format 2) is
``0x02 | len(key id) | key id | len(place) | place | 12-byte nonce | ciphertext``: the key id travels with the
value (rotation can add keys and still read old values), and the associated data is
``tenant id NUL redis key NUL place``, so a ciphertext copied to another key or tenant fails to decrypt, and the
place (a shared context's version and writer, a message's write time) is authenticated too: the reader compares
it with where the value is found, so a value rolled back under a newer version, or copied later into a stream,
is refused (`DecryptionError`). The nonce is the value's unique id (a message seen twice is a replay).

Format 1 (``0x01 | len(key id) | key id | nonce | ciphertext``, associated data ``tenant NUL key``) is what earlier
versions wrote: it still opens unless `legacy` is off, with the weaker binding (key only: no place). Plain
values are ``0x00 | bytes``; they are refused on read where encryption is required.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from memory_client.errors import ConfigError, DecryptionError

__all__ = ["SKEW_MS", "Cipher", "Keyring", "KeyringKey", "Opened", "is_sealed"]

#: How far a stored message's stream entry time may lie from the time sealed inside it (writers' clocks differ
#: from the server's; a copy made later than this is a replay).
SKEW_MS: Final = 60_000
_KEY_BYTES = 32
_NONCE_BYTES = 12
_PLACED = 2
_ENCRYPTED = 1
_PLAIN = 0
_LENGTHS: Final = tuple(bytes((n,)) for n in range(256))  # a place's one-byte length
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
    #: The HMAC key of subject pseudonyms (JSON `pseudonym`, base64 of 32 bytes); None in keyrings minted before it.
    pseudonym: bytes | None = field(default=None, repr=False)

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
            raw = doc.get("pseudonym")
            pseudonym = base64.b64decode(raw, validate=True) if raw is not None else None
            ring = cls(active=str(doc["active"]), keys=keys, pseudonym=pseudonym)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise ConfigError(f"keyring is not valid JSON of the documented shape ({type(exc).__name__})") from None
        if any(len(k.material) != _KEY_BYTES for k in keys):
            raise ConfigError("keyring holds a key that is not 256 bits")
        if pseudonym is not None and len(pseudonym) != _KEY_BYTES:
            raise ConfigError("keyring's pseudonym key is not 256 bits")
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

    def pseudonymize(self, tenant_id: str, subject: str) -> str | None:
        """HMAC-SHA256 of tenant id NUL subject under the pseudonym key (None without one), as 32 hex digits."""
        if self.pseudonym is None:
            return None
        return hmac.new(self.pseudonym, f"{tenant_id}\x00{subject}".encode(), hashlib.sha256).hexdigest()[:32]


def is_sealed(value: bytes) -> bool:
    """Whether a stored value is an envelope (format 1 or 2) rather than plain: the one test for evidence checks."""
    return value[:1] in (b"\x01", b"\x02")


class Opened(NamedTuple):
    """An opened envelope: the plaintext, the place it was sealed for (b"" for format 1), and its nonce (its id)."""

    plain: bytes
    place: bytes
    nonce: bytes


class Cipher:
    """Seals and opens stored values.

    With `encrypt` off (only where the policy allows it) new values are stored plain; values encrypted earlier
    still open as long as the keyring is given. `require` (default: `encrypt`) refuses plain values on read:
    where encryption is required, a plain value can only have been written around the library. `legacy` accepts
    format-1 envelopes (bound to their key only).
    """

    def __init__(
        self,
        tenant_id: str,
        keyring: Keyring | None,
        *,
        encrypt: bool = True,
        require: bool | None = None,
        legacy: bool = True,
    ) -> None:
        self._tenant = tenant_id.encode()
        self._aad_head = self._tenant + b"\x00"
        self._keyring = keyring if encrypt else None
        self._aead = {k.id: AESGCM(k.material) for k in keyring.keys} if keyring else {}
        self.requires = encrypt if require is None else require
        self._legacy = legacy
        if self._keyring is not None:  # what every new envelope starts with, and the key it is sealed with
            kid = self._keyring.active.encode()
            self._header = bytes([_PLACED, len(kid)]) + kid
            self._active = self._aead[self._keyring.active]

    @property
    def encrypting(self) -> bool:
        return self._keyring is not None

    def seal(self, plaintext: bytes, redis_key: str, place: bytes = b"") -> bytes:
        """Seal `plaintext` for `redis_key` and `place` (at most 255 bytes: a version, a write time)."""
        if self._keyring is None:
            return bytes([_PLAIN]) + plaintext
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._active.encrypt(nonce, plaintext, self._aad_head + redis_key.encode() + b"\x00" + place)
        return b"".join((self._header, _LENGTHS[len(place)], place, nonce, sealed))

    def open(self, envelope: bytes, redis_key: str, place: bytes | None = b"") -> bytes:
        """The plaintext of a value stored under `redis_key`, sealed for `place` (None: any place)."""
        opened = self.unseal(envelope, redis_key)
        if place is not None and opened.place != place and envelope[0] == _PLACED:
            raise DecryptionError(
                f"value under {redis_key} was sealed for another place (rolled back or moved)", "misplaced"
            )
        return opened.plain

    def unseal(self, envelope: bytes, redis_key: str) -> Opened:
        """Open an envelope; the caller checks the place it was sealed for against where it was found."""
        if not envelope:
            raise DecryptionError(f"empty value under {redis_key}", "format")
        version = envelope[0]
        if version == _PLAIN:
            if self.requires:
                raise DecryptionError(f"plain value under {redis_key} where encryption is required", "plaintext")
            return Opened(envelope[1:], b"", b"")
        if version not in (_PLACED, _ENCRYPTED) or len(envelope) < 2 or (version == _ENCRYPTED and not self._legacy):
            raise DecryptionError(f"value under {redis_key} has an unknown format", "format")
        end = 2 + envelope[1]
        kid = envelope[2:end].decode(errors="replace")
        aead = self._aead.get(kid)
        if aead is None:
            raise DecryptionError(
                f"value under {redis_key} is encrypted with key {kid!r}, not in this keyring", "unknown-key"
            )
        if version == _PLACED:
            if len(envelope) <= end:
                raise DecryptionError(f"value under {redis_key} is truncated", "format")
            place = envelope[end + 1 : end + 1 + envelope[end]]
            end += 1 + envelope[end]
            aad = self._aad_head + redis_key.encode() + b"\x00" + place
        else:
            place, aad = b"", self._tenant + b"\x00" + redis_key.encode()
        nonce, sealed = envelope[end : end + _NONCE_BYTES], envelope[end + _NONCE_BYTES :]
        try:
            return Opened(aead.decrypt(nonce, sealed, aad), place, nonce)
        except (InvalidTag, ValueError):
            raise DecryptionError(f"value under {redis_key} failed authentication (tampered or moved)") from None
