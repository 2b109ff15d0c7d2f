"""Pieces shared by the v1alpha1 kinds: the group, object metadata as the operator sees it, name patterns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import Field

from memory_operator.api.base import WireModel
from memory_operator.api.conditions import Condition

GROUP = "agentmemory.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "agentmemory"
DEFAULT_STORE_ANNOTATION = f"{GROUP}/default-store"

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

DnsLabel = Annotated[str, Field(pattern=DNS_LABEL, min_length=1, max_length=63)]
DnsSubdomain = Annotated[str, Field(pattern=DNS_SUBDOMAIN, min_length=1, max_length=253)]
Region = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="A residency region label, e.g. eu-west-1 or eu.",
    ),
]


class ObjectMeta(WireModel):
    """The parts of metadata the reconcilers use; everything else in the body is ignored on purpose."""

    name: str
    namespace: str | None = None
    uid: str = ""
    generation: int = 0
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    deletion_timestamp: datetime | None = Field(default=None, alias="deletionTimestamp")

    @classmethod
    def from_body(cls, metadata: Any) -> ObjectMeta:
        fields = {k: metadata.get(k) for k in ("name", "namespace", "uid", "generation", "annotations", "labels")}
        fields["deletionTimestamp"] = metadata.get("deletionTimestamp")
        return cls.model_validate({k: v for k, v in fields.items() if v is not None})


class StatusBase(WireModel):
    """What every status carries: the generation it reflects and its conditions (Ready is the summary)."""

    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", description="The .metadata.generation the status reflects."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Current state; Ready summarizes it. Reasons are documented in the README.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


S = TypeVar("S", bound=StatusBase)


def unique_items(values: list[str]) -> list[str]:
    """For list validators: a value listed twice is an error that names the value."""
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise ValueError(f"listed more than once: {', '.join(twice)}")
    return values


def lenient_status(model: type[S], raw: Any) -> S:
    """The status as last written; one the operator cannot read starts afresh rather than failing the spec."""
    try:
        return model.model_validate(raw or {})
    except ValueError:
        return model()


READY_COLUMNS: tuple[dict[str, str], ...] = (
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
)
AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def cel_rules(*rules: dict[str, str]) -> dict[str, Any]:
    """A model's `json_schema_extra`: CEL `x-kubernetes-validations` the API server checks at admission.

    Each rule is mirrored by a pydantic validator (the operator checks again what a server without the rule, or
    an object stored before it, lets through); tests/unit/test_cel_rules.py runs both on the same cases.
    """
    return {"x-kubernetes-validations": [dict(rule) for rule in rules]}


class CustomObject(WireModel):
    """What both kinds share: CRD facts as class variables, metadata, and parsing from a kopf body.

    Subclasses declare `spec` and `status` fields; `status_model` is the status class (read leniently).
    `root_rules` are CEL rules on the whole object (the only place `self.metadata.name` can be checked).
    """

    root_rules: ClassVar[tuple[dict[str, str], ...]] = ()

    plural: ClassVar[str]
    kind: ClassVar[str]
    short_names: ClassVar[tuple[str, ...]]
    namespaced: ClassVar[bool]
    description: ClassVar[str]
    printer_columns: ClassVar[tuple[dict[str, str], ...]]
    status_model: ClassVar[type[StatusBase]]

    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @classmethod
    def from_body(cls, body: Any) -> Self:
        """Parse a kopf body or API dict; raises pydantic.ValidationError (with `spec.` paths) when invalid."""
        return cls.model_validate(
            {
                "metadata": ObjectMeta.from_body(body["metadata"]),
                "spec": body.get("spec") or {},
                "status": lenient_status(cls.status_model, body.get("status")),
            }
        )
