"""The operator↔library↔jobs contract: what the operator's builders write, the library and the jobs read back alike."""

from __future__ import annotations

import base64
import json
import typing
from datetime import UTC, datetime
from typing import Any

import pytest

from memory_client import ConfigError, MemoryConfig, contract
from memory_client import Keyring as LibraryKeyring
from memory_client.contract import Env
from memory_jobs.env import JobEnv, JobEnvError
from memory_operator.api.v1alpha1 import MemoryTenant, Requirements
from memory_operator.api.v1alpha1.compliancepolicy import Detector, Masking
from memory_operator.api.v1alpha1.memorytenant import Isolation
from memory_operator.builders import acl
from memory_operator.builders.keyring import Keyring, KeyringError, KeyringKey
from memory_operator.builders.secrets import (
    Credentials,
    Endpoint,
    credentials_secret,
    job_credentials_secret,
    keys_secret,
)

NS, NAME = "team-a", "support"
ENDPOINT = Endpoint.parse("redis://cache.svc:6380")
POLICY = Requirements(
    message_retention_days=30,
    audit_retention_days=2555,
    access_logging=True,
    masking=Masking(detectors=["email", "iban"], mode="hash"),
    frameworks=["GDPR", "HIPAA"],
)


def tenant(**spec: Any) -> MemoryTenant:
    meta = {"name": NAME, "namespace": NS, "uid": "uid-1", "generation": 1}
    return MemoryTenant.from_body({"metadata": meta, "spec": {"quota": {"keys": 100, "memory": "1Mi"}, **spec}})


def keyring() -> Keyring:
    first = KeyringKey(id="k1", material=bytes(range(32)), created_at=datetime(2026, 1, 1, tzinfo=UTC))
    return Keyring.first(first, pseudonym=bytes(range(32, 64)))


def as_env(*secrets: dict[str, Any]) -> dict[str, str]:
    """What `envFrom` gives a container: every key of every Secret, decoded, as a variable."""
    env: dict[str, str] = {}
    for secret in secrets:
        env |= {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
        env |= secret.get("stringData", {})
    return env


def agent_creds(t: MemoryTenant, agent: str | None) -> Credentials:
    """As the tenant reconciler fills them (strict agents get their own area and the shared one)."""
    strict = agent is not None and t.spec.isolation == "strict"
    return Credentials(
        username=acl.agent_username(NS, NAME, agent) if agent else acl.tenant_username(NS, NAME),
        password="pw:with/reserved?chars",
        agent=agent,
        key_prefix=acl.tenant_prefix(NS, NAME),
        audit_key=acl.audit_key(NS, NAME),
        agent_prefix=acl.agent_prefix(NS, NAME, agent) if strict and agent else None,
        shared_prefix=acl.shared_prefix(NS, NAME) if strict else None,
    )


def job_creds() -> Credentials:
    return Credentials(
        username=acl.job_username(NS, NAME),
        password="pw",
        agent=None,
        key_prefix=acl.tenant_prefix(NS, NAME),
        audit_key=acl.audit_key(NS, NAME),
        shared_prefix=acl.shared_prefix(NS, NAME),
        seal_key=acl.seal_key(NS, NAME),
        results_prefix=acl.results_prefix(NS, NAME),
    )


@pytest.mark.parametrize(("isolation", "agent"), [("moderate", None), ("moderate", "planner"), ("strict", "planner")])
def test_the_library_reads_the_credentials_and_keys_secrets_as_the_operator_wrote_them(
    isolation: str, agent: str | None
) -> None:
    t = tenant(isolation=isolation, agents=["planner"])
    ring = keyring()
    env = as_env(credentials_secret(t, agent_creds(t, agent), ENDPOINT, POLICY), keys_secret(t, ring))
    config = MemoryConfig.from_env(env)
    assert config.tenant_id == f"{NS}/{NAME}"
    assert config.key_prefix == contract.tenant_prefix(NS, NAME) == acl.tenant_prefix(NS, NAME)
    assert config.shared_prefix == contract.shared_prefix(config.key_prefix)
    assert config.audit_key == contract.audit_key(NS, NAME)
    assert config.isolation == isolation and config.agent_id == agent
    assert config.agent_area("planner") == acl.agent_prefix(NS, NAME, "planner")
    assert (config.retention_days, config.audit_retention_days) == (30, 2555)
    assert (config.quota_keys, config.quota_bytes) == (100, 1048576)
    assert (config.masking, config.masking_mode, config.access_logging) == (("email", "iban"), "hash", True)
    assert config.encryption is True
    assert config.keyring is not None
    assert config.keyring.active == ring.active
    assert [(k.id, k.material) for k in config.keyring.keys] == [(k.id, k.material) for k in ring.keys]
    assert config.keyring.pseudonym == ring.pseudonym


def test_the_jobs_read_the_job_credentials_secret_as_the_operator_wrote_it() -> None:
    t = tenant()
    env = as_env(job_credentials_secret(t, job_creds(), ENDPOINT, POLICY))
    job = JobEnv.from_env(env)
    assert job.tenant_id == f"{NS}/{NAME}"
    assert job.key_prefix == acl.tenant_prefix(NS, NAME)
    assert job.shared_prefix == acl.shared_prefix(NS, NAME)
    assert job.audit_key == acl.audit_key(NS, NAME)
    assert job.seal_key == acl.seal_key(NS, NAME)
    assert job.result_key(contract.JOB_REPORT) == f"{acl.results_prefix(NS, NAME)}report"
    assert job.sizes_key == f"{acl.shared_prefix(NS, NAME)}{contract.SIZES}"
    assert (job.retention_days, job.audit_retention_days, job.encryption_required) == (30, 2555, True)
    assert job.frameworks == ("GDPR", "HIPAA")


def test_the_library_and_the_jobs_read_one_secret_alike() -> None:
    """The two readers are one reader: the same Secret gives both the same layout and policy."""
    t = tenant()
    env = as_env(job_credentials_secret(t, job_creds(), ENDPOINT, POLICY), keys_secret(t, keyring()))
    config, job = MemoryConfig.from_env(env), JobEnv.from_env(env)
    assert (config.tenant_id, config.key_prefix, config.shared_prefix, config.audit_key) == (
        job.tenant_id,
        job.key_prefix,
        job.shared_prefix,
        job.audit_key,
    )
    assert (config.retention_days, config.audit_retention_days, config.encryption) == (
        job.retention_days,
        job.audit_retention_days,
        job.encryption_required,
    )


def test_every_variable_the_operator_writes_is_one_the_contract_names() -> None:
    t = tenant(isolation="strict", agents=["planner"])
    written = as_env(
        credentials_secret(t, agent_creds(t, "planner"), ENDPOINT, POLICY),
        job_credentials_secret(t, job_creds(), ENDPOINT, POLICY),
        keys_secret(t, keyring()),
    )
    named = {v for k, v in vars(Env).items() if k.isupper() and not k.startswith("ENCRYPTION_")}
    assert set(written) <= named


def test_a_job_without_its_results_prefix_is_refused_by_name() -> None:
    env = as_env(credentials_secret(tenant(), agent_creds(tenant(), None), ENDPOINT, POLICY))
    with pytest.raises(JobEnvError, match=Env.RESULTS_PREFIX):
        JobEnv.from_env(env)


def test_the_operator_and_the_library_parse_the_keyring_with_the_one_parser() -> None:
    ring = keyring()
    text = ring.to_json()
    assert contract.serialize_keyring(contract.parse_keyring(text)) == text
    assert Keyring.from_json(text) == ring


@pytest.mark.parametrize(
    "doc",
    [
        {"active": "k2", "keys": [{"id": "k1", "key": base64.b64encode(bytes(32)).decode()}]},
        {"active": "k1", "keys": [{"id": "k1", "key": "AAAA"}]},
        {"active": "k1", "keys": [{"id": "k" * 256, "key": base64.b64encode(bytes(32)).decode()}]},
        {"active": "k1", "keys": [{"id": "k1", "key": base64.b64encode(bytes(32)).decode()}] * 2},
    ],
    ids=["active-missing", "short-key", "long-id", "duplicate-id"],
)
def test_a_keyring_one_reader_refuses_the_other_refuses_too(doc: dict[str, Any]) -> None:
    text = json.dumps(doc)
    with pytest.raises(KeyringError):
        Keyring.from_json(text)
    with pytest.raises(ConfigError):
        LibraryKeyring.from_json(text)


def test_the_api_offers_exactly_the_isolation_levels_and_detectors_of_the_contract() -> None:
    assert set(typing.get_args(Isolation)) == set(contract.ISOLATION_LEVELS)
    assert set(typing.get_args(Detector)) == set(contract.MASKING_DETECTORS)


def test_bookkeeping_keys_do_not_count_toward_the_key_quota() -> None:
    shared = contract.shared_prefix(contract.tenant_prefix(NS, NAME))
    bookkeeping = [f"{shared}usage", f"{shared}sizes", f"{shared}activity", f"{shared}subject:ab", f"{shared}ctx:c:log"]
    data = [f"{contract.agent_prefix(contract.tenant_prefix(NS, NAME), 'a')}conv:c:ab", f"{shared}ctx:c"]
    assert not any(contract.counts_toward_key_quota(k, shared) for k in bookkeeping)
    assert all(contract.counts_toward_key_quota(k, shared) for k in data)
