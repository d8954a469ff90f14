"""What the operator keeps of each watched object, and in what form.

A watched body as decoded from JSON costs about seven times its JSON size in Python objects (a 2 KB image stream
takes 14 KiB, a 3.4 KB Deployment 22 KiB): every key is a string object of its own, every map a dict. The caches
keep instead only the fields the operator reads (`slim_stream`, `slim_workload`), as compact JSON (`CompactMap`),
decoded when a pass needs the object. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, TypeVar

K = TypeVar("K")

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
_DECODER = json.JSONDecoder()


def _without_status_field_records(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata without the managedFields entries of the status subresource. No decision reads them: the owners of
    a container's image are in spec entries, and the status size budget leaves them out (core.statusbudget)."""
    kept = dict(metadata)
    if "managedFields" in kept:
        kept["managedFields"] = [
            entry for entry in kept.get("managedFields") or [] if entry.get("subresource") != "status"
        ]
    return kept


def slim_stream(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator keeps of an image stream: all of it but the status subresource's managedFields entries
    (its status is what imports build on, its spec what they import)."""
    slim = dict(body)
    slim["metadata"] = _without_status_field_records(body.get("metadata") or {})
    return slim


def without_managed_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy without metadata.managedFields: for parsed copies, which no decision reads them from."""
    metadata = {key: value for key, value in (body.get("metadata") or {}).items() if key != "managedFields"}
    return {**body, "metadata": metadata}


def spec_view(body: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy with the metadata (without managedFields) and the spec only: for parsed copies that serve the
    schedule, which reads no status."""
    return {key: value for key, value in without_managed_fields(body).items() if key != "status"}


def slim_workload(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator keeps of a workload with triggers: no status (a trigger writes and reads only the spec)
    and no managedFields entries of the status subresource."""
    slim = {key: value for key, value in body.items() if key != "status"}
    slim["metadata"] = _without_status_field_records(body.get("metadata") or {})
    return slim


def encode(body: Mapping[str, Any]) -> bytes:
    return _ENCODER.encode(body).encode()


def decode(raw: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = _DECODER.decode(raw.decode())
    return decoded


class CompactMap(MutableMapping[K, dict[str, Any]]):
    """A mapping of keys to JSON objects kept as compact JSON bytes: each read decodes a fresh copy (the caller may
    change it), each write encodes. `raw(key)` is the stored bytes object itself, so a caller can tell whether the
    entry was replaced since it read it (`is`)."""

    def __init__(self) -> None:
        self._raw: dict[K, bytes] = {}

    def __getitem__(self, key: K) -> dict[str, Any]:
        return decode(self._raw[key])

    def __setitem__(self, key: K, body: Mapping[str, Any]) -> None:
        self._raw[key] = encode(body)

    def __delitem__(self, key: K) -> None:
        del self._raw[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    def raw(self, key: K) -> bytes | None:
        return self._raw.get(key)

    def put_raw(self, key: K, raw: bytes) -> None:
        self._raw[key] = raw

    def size(self) -> int:
        """Bytes of JSON held."""
        return sum(len(raw) for raw in self._raw.values())
