"""ObjectMeta limits a real API server enforces: per-kind name rules, label keys and values, annotation size.

Each limit is refused with a 422 naming the field the way kube-apiserver does, and its boundary is accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .manifests import GROUP, PLURAL, VERSION, widget

Create = Callable[[dict[str, Any]], Any]


def cronjob(name: str, *, job_labels: dict[str, str] | None = None, pod_labels: dict[str, str] | None = None) -> Any:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {
                "metadata": {"labels": job_labels or {}},
                "spec": {
                    "template": {
                        "metadata": {"labels": pod_labels or {}},
                        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
                    }
                },
            },
        },
    }


def job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}
        },
    }


def config_map(name: str = "c", labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> Any:
    return {"metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}}}


def refusal(create: Create, body: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(ApiException) as caught:
        create(body)
    assert caught.value.status == 422
    status: dict[str, Any] = json.loads(caught.value.body)
    assert status["reason"] == "Invalid"
    return status


def causes(status: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in status["details"]["causes"]]


@pytest.fixture
def batch(kube: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(kube)


@pytest.fixture
def create_cronjob(batch: client.BatchV1Api) -> Create:
    return lambda body: batch.create_namespaced_cron_job("default", body)


@pytest.fixture
def create_config_map(core: client.CoreV1Api) -> Create:
    return lambda body: core.create_namespaced_config_map("default", body)


# -- names -------------------------------------------------------------------------------------------------
def test_cronjob_name_over_52_characters_is_refused(create_cronjob: Create) -> None:
    name = "c" * 53
    status = refusal(create_cronjob, cronjob(name))
    assert causes(status) == [("metadata.name", f'Invalid value: "{name}": must be no more than 52 characters')]
    assert status["message"] == (
        f'CronJob.batch "{name}" is invalid: metadata.name: Invalid value: "{name}": must be no more than 52 characters'
    )


def test_cronjob_name_of_52_characters_is_accepted(create_cronjob: Create) -> None:
    assert create_cronjob(cronjob("c" * 52)).metadata.name == "c" * 52


def test_job_name_over_63_characters_is_refused_on_the_pod_template_label(batch: client.BatchV1Api) -> None:
    name = "j" * 64
    status = refusal(lambda body: batch.create_namespaced_job("default", body), job(name))
    assert causes(status) == [("spec.template.labels", f'Invalid value: "{name}": must be no more than 63 characters')]


def test_job_name_of_63_characters_is_accepted(batch: client.BatchV1Api) -> None:
    assert batch.create_namespaced_job("default", job("j" * 63)).metadata.name == "j" * 63


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("1st-service", "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an"),
        ("with.dot", "a DNS-1035 label must consist of"),
        ("s" * 64, "must be no more than 63 characters"),
    ],
)
def test_service_name_must_be_a_dns_1035_label(core: client.CoreV1Api, name: str, why: str) -> None:
    body = {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}
    status = refusal(lambda b: core.create_namespaced_service("default", b), body)
    assert [field for field, _ in causes(status)] == ["metadata.name"]
    assert causes(status)[0][1].startswith(f'Invalid value: "{name}": {why}')


def test_service_name_of_63_characters_is_accepted(core: client.CoreV1Api) -> None:
    body = {"metadata": {"name": "s" * 63}, "spec": {"ports": [{"port": 80}]}}
    assert core.create_namespaced_service("default", body).metadata.name == "s" * 63


def test_namespace_name_over_63_characters_is_refused(core: client.CoreV1Api) -> None:
    name = "n" * 64
    status = refusal(core.create_namespace, {"metadata": {"name": name}})
    assert ("metadata.name", f'Invalid value: "{name}": must be no more than 63 characters') in causes(status)
    assert core.create_namespace({"metadata": {"name": "n" * 63}}).metadata.name == "n" * 63


def test_config_map_name_over_253_characters_is_refused(create_config_map: Create) -> None:
    name = "c" * 254
    status = refusal(create_config_map, config_map(name))
    assert causes(status) == [("metadata.name", f'Invalid value: "{name}": must be no more than 253 characters')]
    assert create_config_map(config_map("c" * 253)).metadata.name == "c" * 253


def test_name_format_message_is_the_real_servers(create_config_map: Create) -> None:
    status = refusal(create_config_map, config_map("Upper"))
    assert causes(status) == [
        (
            "metadata.name",
            'Invalid value: "Upper": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric '
            "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
            r"regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )
    ]


# -- labels ------------------------------------------------------------------------------------------------
def test_label_value_over_63_characters_is_refused(create_config_map: Create) -> None:
    value = "v" * 64
    status = refusal(create_config_map, config_map(labels={"app": value}))
    assert causes(status) == [("metadata.labels", f'Invalid value: "{value}": must be no more than 63 characters')]


def test_label_value_of_63_characters_or_empty_is_accepted(create_config_map: Create) -> None:
    created = create_config_map(config_map(labels={"app": "v" * 63, "empty": ""}))
    assert created.metadata.labels == {"app": "v" * 63, "empty": ""}


def test_label_value_must_start_and_end_alphanumeric(create_config_map: Create) -> None:
    status = refusal(create_config_map, config_map(labels={"app": "-bad"}))
    assert causes(status) == [
        (
            "metadata.labels",
            'Invalid value: "-bad": a valid label must be an empty string or consist of alphanumeric characters, '
            "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
            "'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
        )
    ]


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("k" * 64, "name part must be no more than 63 characters"),
        ("Example.com/app", "prefix part a lowercase RFC 1123 subdomain must consist of"),
        ("/app", "prefix part must be non-empty"),
        ("a/b/c", "a qualified name must consist of"),
        ("bad key", "name part must consist of alphanumeric characters"),
    ],
)
def test_label_key_must_be_a_qualified_name(create_config_map: Create, key: str, why: str) -> None:
    status = refusal(create_config_map, config_map(labels={key: "v"}))
    assert [field for field, _ in causes(status)] == ["metadata.labels"]
    assert causes(status)[0][1].startswith(f"Invalid value: {json.dumps(key)}: {why}")


def test_label_key_with_a_253_character_prefix_and_63_character_name_is_accepted(create_config_map: Create) -> None:
    key = "p" * 253 + "/" + "N" * 63
    assert key in create_config_map(config_map(labels={key: "v"})).metadata.labels


def test_labels_are_checked_on_update_too(core: client.CoreV1Api, create_config_map: Create) -> None:
    create_config_map(config_map())
    patch = {"metadata": {"labels": {"app": "v" * 64}}}
    status = refusal(lambda body: core.patch_namespaced_config_map("c", "default", body), patch)
    assert [field for field, _ in causes(status)] == ["metadata.labels"]


def test_labels_of_custom_resources_are_checked(custom: client.CustomObjectsApi, widgets: dict[str, Any]) -> None:
    body = {**widget("w"), "metadata": {"name": "w", "labels": {"app": "v" * 64}}}
    status = refusal(lambda b: custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, b), body)
    assert [field for field, _ in causes(status)] == ["metadata.labels"]


def test_cronjob_pod_template_labels_are_checked(create_cronjob: Create) -> None:
    status = refusal(create_cronjob, cronjob("sweep", pod_labels={"app": "v" * 64}))
    assert [field for field, _ in causes(status)] == ["spec.jobTemplate.spec.template.labels"]


def test_cronjob_job_template_labels_are_checked(create_cronjob: Create) -> None:
    status = refusal(create_cronjob, cronjob("sweep", job_labels={"app": "v" * 64}))
    assert [field for field, _ in causes(status)] == ["spec.jobTemplate.metadata.labels"]


def test_cronjob_template_labels_at_the_limit_are_accepted(create_cronjob: Create) -> None:
    created = create_cronjob(cronjob("sweep", job_labels={"app": "v" * 63}, pod_labels={"app": "v" * 63}))
    assert created.spec.job_template.metadata.labels == {"app": "v" * 63}


# -- annotations -------------------------------------------------------------------------------------------
def test_annotations_over_256_kib_in_total_are_refused(create_config_map: Create) -> None:
    status = refusal(create_config_map, config_map(annotations={"a": "x" * 262_144}))
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueTooLong",
            "message": "Too long: may not be more than 262144 bytes",
            "field": "metadata.annotations",
        }
    ]


def test_annotations_of_exactly_256_kib_are_accepted(create_config_map: Create) -> None:
    created = create_config_map(config_map(annotations={"a": "x" * 262_143}))
    assert len(created.metadata.annotations["a"]) == 262_143
