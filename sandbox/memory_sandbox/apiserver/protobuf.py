"""Decoding of the protobuf request bodies kubectl's imperative commands send, for a few kinds.

kubectl (client-go clientsets) POSTs `application/vnd.kubernetes.protobuf` for `kubectl create namespace`,
`create secret`, `create configmap` and `create serviceaccount`, and does not retry with JSON on 415.
The body is the `k8s\\x00` magic, then a `runtime.Unknown` envelope holding the type and the object's own
protobuf. Only the fields those commands set are mapped (from k8s.io/api's generated.proto); other kinds
still get 415, so use `kubectl apply -f` or JSON clients for them.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

from .errors import unsupported_media_type

__all__ = ["PROTOBUF", "decode_object"]

PROTOBUF = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
JsonObj = dict[str, Any]
# field number -> (json name, how to decode); nested message schemas are given by name.
Fields = dict[int, tuple[str, str]]

SCHEMAS: dict[str, Fields] = {
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "Unknown": {
        1: ("typeMeta", "msg:TypeMeta"),
        2: ("raw", "bytes"),
        3: ("contentEncoding", "string"),
        4: ("contentType", "string"),
    },
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        11: ("labels", "map:string"),
        12: ("annotations", "map:string"),
        13: ("ownerReferences", "list:OwnerReference"),
        14: ("finalizers", "list:string"),
    },
    "OwnerReference": {
        1: ("kind", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("controller", "bool"),
        7: ("blockOwnerDeletion", "bool"),
    },
    "LocalObjectReference": {1: ("name", "string")},
    "ObjectReference": {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string")},
    "NamespaceSpec": {1: ("finalizers", "list:string")},
    "Namespace": {1: ("metadata", "msg:ObjectMeta"), 2: ("spec", "msg:NamespaceSpec")},
    "Secret": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("data", "map:base64"),
        3: ("type", "string"),
        4: ("stringData", "map:string"),
        5: ("immutable", "bool"),
    },
    "ConfigMap": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("data", "map:string"),
        3: ("binaryData", "map:base64"),
        4: ("immutable", "bool"),
    },
    "ServiceAccount": {
        1: ("metadata", "msg:ObjectMeta"),
        2: ("secrets", "list:ObjectReference"),
        3: ("imagePullSecrets", "list:LocalObjectReference"),
        4: ("automountServiceAccountToken", "bool"),
    },
}
KINDS = frozenset({"Namespace", "Secret", "ConfigMap", "ServiceAccount"})


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: varints as int, length-delimited as bytes; fixed widths skipped."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            yield number, data[pos : pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _decode(data: bytes, schema: str) -> JsonObj:
    fields = SCHEMAS[schema]
    result: JsonObj = {}
    for number, value in _fields(data):
        if number not in fields:
            continue
        name, kind = fields[number]
        decoded = _value(value, kind)
        if kind.startswith("map:"):
            result.setdefault(name, {}).update(decoded)
        elif kind.startswith("list:"):
            result.setdefault(name, []).append(decoded)
        elif decoded != "":  # Go's JSON drops empty strings (omitempty); so do we
            result[name] = decoded
    return result


def _value(value: int | bytes, kind: str) -> Any:
    if kind == "bool":
        return bool(value)
    if isinstance(value, int):
        return value
    if kind in ("string", "list:string"):
        return value.decode()
    if kind == "bytes":
        return value
    if kind.startswith("map:"):
        entry = {n: v for n, v in _fields(value)}
        raw_value = entry.get(2, b"")
        assert isinstance(raw_value, bytes)
        text = base64.b64encode(raw_value).decode() if kind == "map:base64" else raw_value.decode()
        key = entry.get(1, b"")
        return {key.decode() if isinstance(key, bytes) else str(key): text}
    _, _, schema = kind.partition(":")
    return _decode(value, schema)


def decode_object(body: bytes) -> JsonObj:
    """The JSON form of a protobuf-encoded object; 415 for kinds this module does not map."""
    if not body.startswith(MAGIC):
        raise unsupported_media_type(PROTOBUF)
    try:
        envelope = _decode(body[len(MAGIC) :], "Unknown")
        type_meta = envelope.get("typeMeta", {})
        kind = type_meta.get("kind", "")
        if kind not in KINDS:
            raise unsupported_media_type(f"{PROTOBUF} ({kind or 'unknown kind'})")
        obj = _decode(envelope.get("raw", b""), kind)
    except (ValueError, UnicodeDecodeError):
        raise unsupported_media_type(f"{PROTOBUF} (undecodable)") from None
    return {"apiVersion": type_meta.get("apiVersion", "v1"), "kind": kind, **obj}
