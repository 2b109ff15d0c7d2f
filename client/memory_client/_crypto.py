"""The tenant keyring and AES-256-GCM envelopes bound to the Redis key and the place they are stored in.

The keyring is the operator's wire format (Secret `<tenant>-memory-keys`, key `MEMORY_KEYRING`), parsed by
`memory_client.contract.parse_keyring`, the one parser the operator uses too. An envelope (format 2) is
``0x02 | len(key id) | key id | len(place) | place | 12-byte nonce | ciphertext``: the key id travels with the
value (rotation can add keys and still read old values), and the associated data is
``tenant id NUL redis key NUL place``, so a ciphertext copied to another key or tenant fails to decrypt, and the
place (a shared context's version and writer, a message's write time) is authenticated too: the reader compares
it with where the value is found, so a value rolled back under a newer version, or copied later into a stream,
is refused (`DecryptionError`). The nonce is the value's unique id (a message seen twice is a replay).

Format 1 (``0x01 | len(key id) | key id | nonce | ciphertext``, associated data ``tenant NUL key``) is what earlier
versions wrote: it still opens unless `legacy` is off, with the weaker binding (key only: no place). Plain
values are ``0x00 | bytes``; they are refused on read where encryption is required. Headers are parsed by
`memory_client.contract.envelope_header`, the one parser of the format.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from memory_client.contract import (
    ENVELOPE_BOUND,
    ENVELOPE_PLACED,
    ENVELOPE_PLAIN,
    KEYRING_ALGORITHM,
    ContractError,
    envelope_header,
    parse_keyring,
)
from memory_client.errors import ConfigError, DecryptionError

__all__ = ["Cipher", "Keyring", "KeyringKey", "Opened"]

_NONCE_BYTES = 12
_PLACED = ENVELOPE_PLACED
_ENCRYPTED = ENVELOPE_BOUND
_PLAIN = ENVELOPE_PLAIN
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
        """Parse the keyring JSON (`memory_client.contract.parse_keyring`); ConfigError (never echoing key material)
        when it is not the documented shape. Keys of another algorithm than AES-256-GCM are left out."""
        try:
            doc = parse_keyring(text)
        except ContractError as exc:
            raise ConfigError(str(exc)) from None
        keys = tuple(KeyringKey(k.id, k.material) for k in doc.keys if k.algorithm == KEYRING_ALGORITHM)
        return cls(active=doc.active, keys=keys, pseudonym=doc.pseudonym)

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
        try:
            version, kid, place, end = envelope_header(envelope)
        except ContractError as exc:
            raise DecryptionError(f"value under {redis_key}: {exc}", "format") from None
        if version == _PLAIN:
            if self.requires:
                raise DecryptionError(f"plain value under {redis_key} where encryption is required", "plaintext")
            return Opened(envelope[1:], b"", b"")
        if version == _ENCRYPTED and not self._legacy:
            raise DecryptionError(f"value under {redis_key} has an unknown format", "format")
        aead = self._aead.get(kid)
        if aead is None:
            raise DecryptionError(
                f"value under {redis_key} is encrypted with key {kid!r}, not in this keyring", "unknown-key"
            )
        if version == _PLACED:
            aad = self._aad_head + redis_key.encode() + b"\x00" + place
        else:
            aad = self._tenant + b"\x00" + redis_key.encode()
        nonce, sealed = envelope[end : end + _NONCE_BYTES], envelope[end + _NONCE_BYTES :]
        try:
            return Opened(aead.decrypt(nonce, sealed, aad), place, nonce)
        except (InvalidTag, ValueError):
            raise DecryptionError(f"value under {redis_key} failed authentication (tampered or moved)") from None
