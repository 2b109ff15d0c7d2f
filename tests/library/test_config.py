"""Configuration from the credentials Secret's env and the keyring, as the operator writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memory_client import ConfigError, MemoryConfig

from .conftest import keyring_json

BASE = {
    "REDIS_URL": "redis://mt_ns_t:s3cret-pw@127.0.0.1:6379/0",
    "REDIS_USERNAME": "mt_ns_t",
    "REDIS_PASSWORD": "s3cret-pw",
    "MEMORY_TENANT_ID": "ns/t",
    "MEMORY_KEY_PREFIX": "mem:ns:t:",
    "MEMORY_ISOLATION": "moderate",
    "MEMORY_ENCRYPTION": "required",
}


def test_defaults_are_derived_from_the_tenant_id_and_prefix() -> None:
    config = MemoryConfig.from_env({**BASE, "MEMORY_KEYRING": keyring_json()})
    assert config.audit_key == "audit:ns:t"
    assert config.shared_prefix == "mem:ns:t:shared:"
    assert config.access_logging is True
    assert config.masking == () and config.masking_mode == "redact"
    assert config.agent_area("triage") == "mem:ns:t:agent:triage:"


def test_policy_variables_are_read() -> None:
    env = {
        **BASE,
        "MEMORY_KEYRING": keyring_json(),
        "MEMORY_AUDIT_KEY": "audit:other",
        "MEMORY_RETENTION_DAYS": "30",
        "MEMORY_QUOTA_KEYS": "10",
        "MEMORY_QUOTA_BYTES": "4096",
        "MEMORY_MASKING": "email, iban",
        "MEMORY_MASKING_MODE": "hash",
        "MEMORY_ACCESS_LOGGING": "false",
    }
    config = MemoryConfig.from_env(env)
    assert (config.audit_key, config.retention_days, config.quota_keys, config.quota_bytes) == (
        "audit:other",
        30,
        10,
        4096,
    )
    assert config.masking == ("email", "iban") and config.masking_mode == "hash"
    assert config.access_logging is False


def test_keyring_file_is_read_when_given(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(keyring_json("k7"))
    assert MemoryConfig.from_env(BASE, keyring_file=path).keyring.active == "k7"  # type: ignore[union-attr]
    assert MemoryConfig.from_env({**BASE, "MEMORY_KEYRING_FILE": str(path)}).keyring is not None


@pytest.mark.parametrize("missing", ["REDIS_URL", "MEMORY_TENANT_ID", "MEMORY_KEY_PREFIX"])
def test_a_missing_required_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        MemoryConfig.from_env({**env, "MEMORY_KEYRING": keyring_json()})


def test_required_encryption_without_a_keyring_is_refused() -> None:
    with pytest.raises(ConfigError, match="keyring"):
        MemoryConfig.from_env(BASE)


def test_strict_isolation_forces_encryption_even_if_the_secret_says_disabled() -> None:
    with pytest.raises(ConfigError, match="keyring"):
        MemoryConfig.from_env({**BASE, "MEMORY_ISOLATION": "strict", "MEMORY_ENCRYPTION": "disabled"})


def test_unknown_masking_detector_is_refused() -> None:
    with pytest.raises(ConfigError, match="passport"):
        MemoryConfig.from_env({**BASE, "MEMORY_KEYRING": keyring_json(), "MEMORY_MASKING": "email,passport"})


def test_a_broken_keyring_error_never_echoes_key_material() -> None:
    doc = json.loads(keyring_json())
    material = doc["keys"][0]["key"]
    doc["keys"][0]["key"] = material[:-4]  # no longer 32 bytes
    with pytest.raises(ConfigError) as caught:
        MemoryConfig.from_env({**BASE, "MEMORY_KEYRING": json.dumps(doc)})
    assert material[:-4] not in str(caught.value)


def test_config_repr_hides_the_url_with_the_password() -> None:
    config = MemoryConfig.from_env({**BASE, "MEMORY_KEYRING": keyring_json()})
    assert "s3cret-pw" not in repr(config)
