"""AES-256-GCM envelopes: round trip, binding to the key name, tamper and wrong-key detection, on the server."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from memory_client import Cipher, DecryptionError, Keyring
from memory_client.contract import ENVELOPE_PLACED, ENVELOPE_PLAIN, ContractError, envelope_header, is_sealed
from memory_sandbox.engine import Engine

from .conftest import Tenant, keyring_json


@pytest.fixture
def cipher() -> Cipher:
    return Cipher("ns/t", Keyring.from_json(keyring_json()))


def test_round_trip(cipher: Cipher) -> None:
    assert cipher.open(cipher.seal(b"hello", "k"), "k") == b"hello"


def test_key_id_and_place_travel_with_the_value() -> None:
    """The header as the contract's parser reads it: what a reader after a rotation picks its key by."""
    ring = Keyring.from_json(keyring_json("k7"))
    header = envelope_header(Cipher("ns/t", ring).seal(b"hello", "k", b"1700000000000"))
    assert (header.format, header.key_id, header.place) == (ENVELOPE_PLACED, "k7", b"1700000000000")
    assert envelope_header(Cipher("ns/t", ring, encrypt=False).seal(b"hello", "k")) == (ENVELOPE_PLAIN, "", b"", 1)


def test_a_value_sealed_before_a_rotation_opens_with_the_key_its_header_names() -> None:
    old, new = json.loads(keyring_json("k1")), json.loads(keyring_json("k2"))
    rotated = Keyring.from_json(json.dumps({**new, "keys": [*old["keys"], *new["keys"]]}))
    sealed = Cipher("ns/t", Keyring.from_json(json.dumps(old))).seal(b"hello", "k")
    assert envelope_header(sealed).key_id == "k1" and rotated.active == "k2"
    assert Cipher("ns/t", rotated).open(sealed, "k") == b"hello"


@pytest.mark.parametrize("value", [b"", b"\x07abc", b"\x02", b"\x02\x02k1"], ids=["empty", "unknown", "short", "cut"])
def test_a_header_that_is_not_the_format_is_refused(cipher: Cipher, value: bytes) -> None:
    with pytest.raises(ContractError):
        envelope_header(value)
    with pytest.raises(DecryptionError) as caught:
        cipher.open(value, "k")
    assert caught.value.reason == "format"


def test_a_flipped_bit_is_a_decryption_error(cipher: Cipher) -> None:
    sealed = bytearray(cipher.seal(b"hello", "k"))
    sealed[-1] ^= 1
    with pytest.raises(DecryptionError, match="failed authentication"):
        cipher.open(bytes(sealed), "k")


def test_a_value_moved_to_another_key_does_not_decrypt(cipher: Cipher) -> None:
    with pytest.raises(DecryptionError):
        cipher.open(cipher.seal(b"hello", "mem:ns:t:a"), "mem:ns:t:b")


def test_another_tenants_keyring_does_not_decrypt(cipher: Cipher) -> None:
    stranger = Cipher("ns/t", Keyring.from_json(keyring_json()))  # same key id, other material
    with pytest.raises(DecryptionError):
        stranger.open(cipher.seal(b"hello", "k"), "k")


def test_an_unknown_key_id_is_named_in_the_error(cipher: Cipher) -> None:
    stranger = Cipher("ns/t", Keyring.from_json(keyring_json("k9")))
    with pytest.raises(DecryptionError, match="k9"):
        cipher.open(stranger.seal(b"hello", "k"), "k")


def test_stored_messages_are_ciphertext_on_the_server(tenant: Tenant, engine: Engine) -> None:
    chat = tenant.memory("alpha").conversation("c", "u1")
    chat.append("human", "the launch code is swordfish")
    with engine.admin_client() as admin:
        raw = admin.xrange(chat.key)[0][1][b"m"]
    assert b"swordfish" not in raw and raw[0] == 2  # format 2: bound to its key and its write time


def test_tampering_on_the_server_is_skipped_and_reported(tenant: Tenant, engine: Engine) -> None:
    """One bad entry used to make the whole read fail with DecryptionError; now it is skipped and reported."""
    chat = tenant.memory("alpha").conversation("c", "u1")
    chat.append("human", "hello")
    with engine.admin_client() as admin:
        entry_id, fields = admin.xrange(chat.key)[0]
        forged = bytearray(fields[b"m"])
        forged[-3] ^= 0x40
        admin.delete(chat.key)
        admin.xadd(chat.key, {"m": bytes(forged)}, id=entry_id)
    assert chat.last(1) == []
    assert [(r.id, r.reason) for r in chat.rejected] == [(entry_id.decode(), "authentication")]


def test_a_value_sealed_for_another_place_does_not_open_there(cipher: Cipher) -> None:
    with pytest.raises(DecryptionError) as caught:
        cipher.open(cipher.seal(b"v3", "k", b"3"), "k", b"5")
    assert caught.value.reason == "misplaced"


def test_format_1_envelopes_still_open_unless_legacy_is_off() -> None:
    ring = Keyring.from_json(keyring_json())
    aead = AESGCM(ring.active_key.material)
    nonce = bytes(12)
    legacy = b"\x01\x02k1" + nonce + aead.encrypt(nonce, b"old", b"ns/t\x00k")
    assert Cipher("ns/t", ring).open(legacy, "k") == b"old"
    with pytest.raises(DecryptionError) as caught:
        Cipher("ns/t", ring, legacy=False).open(legacy, "k")
    assert caught.value.reason == "format"


def test_plain_values_are_refused_where_encryption_is_required(cipher: Cipher) -> None:
    with pytest.raises(DecryptionError) as caught:
        cipher.open(b"\x00hello", "k")
    assert caught.value.reason == "plaintext"
    assert Cipher("ns/t", None, encrypt=False).open(b"\x00hello", "k") == b"hello"


def test_encryption_disabled_stores_plain_values_that_still_read_back(tenant: Tenant, engine: Engine) -> None:
    chat = tenant.memory("alpha", MEMORY_ENCRYPTION="disabled").conversation("c", "u1")
    chat.append("human", "plain words")
    with engine.admin_client() as admin:
        assert b"plain words" in admin.xrange(chat.key)[0][1][b"m"]
    assert chat.last(1)[0].content == "plain words"


def test_is_sealed_tells_envelopes_of_both_formats_from_plain_values(cipher: Cipher) -> None:
    assert is_sealed(cipher.seal(b"x", "k", b"1")) and is_sealed(b"\x01\x02k1") and not is_sealed(b"\x00x")
