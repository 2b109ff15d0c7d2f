"""The keyring wire format's pseudonym key: minted with the first key, round-tripped, optional for old keyrings."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from memory_client import Keyring as LibraryKeyring
from memory_operator.builders.keyring import Keyring, KeyringError, KeyringKey


def _key(material: bytes = bytes(range(32)), key_id: str = "k1") -> KeyringKey:
    return KeyringKey(id=key_id, material=material, created_at=datetime(2026, 1, 1, tzinfo=UTC))


def test_a_new_keyring_carries_a_256_bit_pseudonym_key_apart_from_its_aes_keys() -> None:
    ring = Keyring.first(_key())
    assert ring.pseudonym is not None and len(ring.pseudonym) == 32
    assert all(ring.pseudonym != k.material for k in ring.keys)
    assert "pseudonym" in json.loads(ring.to_json())


def test_a_given_pseudonym_key_is_used_as_is() -> None:
    assert Keyring.first(_key(), pseudonym=b"\x07" * 32).pseudonym == b"\x07" * 32


def test_the_pseudonym_key_round_trips_and_survives_a_rotation() -> None:
    ring = Keyring.from_json(Keyring.first(_key()).to_json())
    rotated = Keyring(active="k2", keys=(*ring.keys, _key(bytes(32), "k2")), pseudonym=ring.pseudonym)
    assert Keyring.from_json(rotated.to_json()).pseudonym == Keyring.first(_key()).pseudonym


def test_a_keyring_without_a_pseudonym_key_reads_and_is_written_back_unchanged() -> None:
    keys = json.loads(Keyring.first(_key()).to_json())["keys"]
    old = json.dumps({"version": 1, "active": "k1", "keys": keys}, sort_keys=True, separators=(",", ":"))
    ring = Keyring.from_json(old)
    assert ring.pseudonym is None and ring.to_json() == old  # the operator writes nothing new for it


def test_the_library_reads_the_operators_pseudonym_key() -> None:
    ring = Keyring.first(_key())
    assert LibraryKeyring.from_json(ring.to_json()).pseudonym == ring.pseudonym


@pytest.mark.parametrize("value", [base64.b64encode(b"short").decode(), "not base64!", 5])
def test_a_bad_pseudonym_key_is_refused_without_echoing_it(value: object) -> None:
    doc = json.loads(Keyring.first(_key()).to_json())
    doc["pseudonym"] = value
    with pytest.raises(KeyringError) as caught:
        Keyring.from_json(json.dumps(doc))
    assert str(value) not in str(caught.value)
