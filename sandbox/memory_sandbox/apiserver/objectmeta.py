"""ObjectMeta rules every write passes: per-kind name formats and limits, label keys and values, annotations.

Worded as k8s.io/apimachinery's validation words them (so clients and tests read the real messages), for
every kind; the per-kind part is the `NAME_RULES` table. Not covered: `generateName` prefixes are not checked
on their own (the generated name is), and neither are ownerReferences or finalizer names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import Cause
from .resources import NAMESPACE_KEY, ResourceKey, ResourceType

__all__ = ["NAME_RULES", "NameRule", "metadata_causes"]

JsonObj = dict[str, Any]
Check = Callable[[str], list[str]]

_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _LABEL_FMT + r"(\." + _LABEL_FMT + ")*"
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)
TOTAL_ANNOTATION_BYTES = 256 * 1024


def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError, down to its "'a',  or 'b'" spacing."""
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(limit: int) -> str:
    return f"must be no more than {limit} characters"


def _matcher(fmt: str, limit: int, message: str, *examples: str) -> Check:
    pattern = re.compile(fmt)

    def check(value: str) -> list[str]:
        errs = [_max_len(limit)] if len(value) > limit else []
        if not pattern.fullmatch(value):
            errs.append(_regex_error(message, fmt, *examples))
        return errs

    return check


dns1123_subdomain = _matcher(
    _SUBDOMAIN_FMT,
    253,
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character",
    "example.com",
)
dns1123_label = _matcher(
    _LABEL_FMT,
    63,
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character",
    "my-name",
    "123-abc",
)
dns1035_label = _matcher(
    _DNS1035_FMT,
    63,
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character",
    "my-name",
    "abc-123",
)
label_value = _matcher(
    _LABEL_VALUE_FMT,
    63,
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character",
    "MyValue",
    "my_value",
    "12345",
)
_QNAME = re.compile(_QNAME_FMT)


def qualified_name(value: str) -> list[str]:
    """Label keys and annotation keys: an optional DNS-subdomain prefix and '/', then a name of <= 63."""
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errs: list[str] = []
    if len(parts) == 2 and not parts[0]:
        errs.append("prefix part must be non-empty")
    elif len(parts) == 2:
        errs += ["prefix part " + m for m in dns1123_subdomain(parts[0])]
    name = parts[-1]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _QNAME.fullmatch(name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


@dataclass(frozen=True)
class NameRule:
    """A kind's name format, and a tighter length limit it adds (reported on `limit_field`, as the server does)."""

    check: Check = dns1123_subdomain
    limit: int = 0
    limit_field: str = "metadata.name"


NAME_RULES: dict[ResourceKey, NameRule] = {
    NAMESPACE_KEY: NameRule(dns1123_label),
    ("", "services"): NameRule(dns1035_label),
    # The Job strategy copies the name into the pod template's job-name labels: a label value, so <= 63.
    ("batch", "jobs"): NameRule(limit=63, limit_field="spec.template.labels"),
    # The CronJob controller names its Jobs `<name>-<11 characters>`, and a Job name is <= 63.
    ("batch", "cronjobs"): NameRule(limit=52),
}
"""Every other kind (custom resources included): a DNS-1123 subdomain of <= 253 characters."""

EMBEDDED_META: dict[ResourceKey, tuple[tuple[tuple[str, ...], str], ...]] = {
    ("batch", "jobs"): ((("spec", "template", "metadata"), "spec.template"),),
    ("batch", "cronjobs"): (
        # Stricter than kube-apiserver, which refuses these labels only on the Job its CronJob controller
        # creates later; the sandbox runs no such controller, so it refuses them at the source.
        (("spec", "jobTemplate", "metadata"), "spec.jobTemplate.metadata"),
        (("spec", "jobTemplate", "spec", "template", "metadata"), "spec.jobTemplate.spec.template"),
    ),
}
"""ObjectMeta nested in a kind's spec, with the path its labels and annotations are reported under."""


def metadata_causes(rtype: ResourceType, obj: JsonObj) -> list[Cause]:
    """Everything wrong with `obj`'s name, labels and annotations (and those of its templates); [] when valid."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    rule = NAME_RULES.get(rtype.key, NameRule())
    causes = [_invalid("metadata.name", name, m) for m in rule.check(name)] if name else []
    if name and rule.limit and len(name) > rule.limit:
        causes.append(_invalid(rule.limit_field, name, _max_len(rule.limit)))
    causes += _meta_causes(meta, "metadata")
    for path, field in EMBEDDED_META.get(rtype.key, ()):
        nested = _dig(obj, path)
        if isinstance(nested, dict):
            causes += _meta_causes(nested, field)
    return causes


def _meta_causes(meta: JsonObj, field: str) -> list[Cause]:
    causes: list[Cause] = []
    labels, annotations = _mapping(meta.get("labels")), _mapping(meta.get("annotations"))
    for key, value in labels.items():
        causes += [_invalid(f"{field}.labels", key, m) for m in qualified_name(key)]
        causes += [_invalid(f"{field}.labels", str(value), m) for m in label_value(str(value))]
    for key in annotations:
        causes += [_invalid(f"{field}.annotations", key, m) for m in qualified_name(key.lower())]
    size = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > TOTAL_ANNOTATION_BYTES:
        causes.append(
            {
                "reason": "FieldValueTooLong",
                "message": f"Too long: may not be more than {TOTAL_ANNOTATION_BYTES} bytes",
                "field": f"{field}.annotations",
            }
        )
    return causes


def _invalid(field: str, value: str, why: str) -> Cause:
    quoted = json.dumps(value, ensure_ascii=False)
    return {"reason": "FieldValueInvalid", "message": f"Invalid value: {quoted}: {why}", "field": field}


def _mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}


def _dig(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj
