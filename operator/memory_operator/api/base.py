"""The base of every API model: camelCase on the wire, snake_case in Python, strict about unknown fields."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A model that reads and writes Kubernetes JSON.

    Unknown fields are rejected: a real API server prunes them with the structural schema, so one that
    reaches the operator means the schema was bypassed, and silently ignoring it would hide a typo.
    """

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    @classmethod
    def from_wire(cls, data: Any) -> Self:
        return cls.model_validate(data)

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready, camelCase, without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
