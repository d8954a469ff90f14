"""Worst-case parse times: every parser of user or registry text on the most hostile input found for it.

Each input is about SIZE (256 KiB by default): long runs of spaces, repeated separators, deep nesting,
unterminated quotes, many commas. Each parse is timed RUNS times with time.perf_counter and the best is
printed, with what the parser answered: a result, or the exception it raised (any exception other than
the parser's own error type is a bug). Target: well under 50 ms for every row.

Usage: .venv/bin/python bench/parse_worst.py [RUNS] [SIZE_KIB]
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imagestreams.cli.importing import parse_timeout
from imagestreams.core.keyring import lookup, parse_dockerconfigjson
from imagestreams.core.references import parse_reference
from imagestreams.core.tagorder import prioritize_tags
from imagestreams.core.triggers import TRIGGERS_ANNOTATION_MAX_LENGTH, parse_field_path, parse_triggers
from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.registry.challenges import parse_challenges
from imagestreams.registry.errors import parse_error_body
from imagestreams.registry.links import parse_link_next
from imagestreams.registry.manifests import OCI_INDEX, OCI_MANIFEST, parse_manifest, validate_registry
from imagestreams.registry.retry import parse_retry_after

DIGEST = "sha256:" + "a" * 64
CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 1}
LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST, "size": 1}
CHILD = {"mediaType": OCI_MANIFEST, "digest": DIGEST, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}
FIELD_PATH_START = "spec.template.spec.containers["


def triggers(text: str) -> object:
    return parse_triggers(text, WorkloadKind.DEPLOYMENT, "ns")


@dataclass(frozen=True)
class Case:
    parser: str
    label: str
    text: str | bytes
    parse: Callable[[Any], object] = triggers


def repeat(unit: str, size: int, head: str = "", tail: str = "") -> str:
    """`head`, `unit` repeated, then `tail`: about `size` characters in all."""
    return head + unit * max(1, (size - len(head) - len(tail)) // len(unit)) + tail


def json_list(entry: object, size: int, head: str, tail: str) -> bytes:
    """`head`, a JSON list of copies of `entry` about `size` bytes long, then `tail`."""
    text = json.dumps(entry)
    return repeat(text + ",", size, head + "[", text + "]" + tail).encode()


def annotation(field_path: str, name: str = "app:latest") -> str:
    return json.dumps([{"from": {"kind": "ImageStreamTag", "name": name}, "fieldPath": field_path}])


def ignored_entries(size: int) -> str:
    """Entries OpenShift skips (no ':' in the name), each with its own fieldPath: every one is reported."""
    entries, length, n = [], 2, 0
    while True:
        entry = json.dumps({"from": {"kind": "ImageStreamTag", "name": f"a{n}"}, "fieldPath": f"x{n}"})
        if length + len(entry) + 1 > size:
            return "[" + ",".join(entries) + "]"
        entries.append(entry)
        length += len(entry) + 1
        n += 1


def selector(text: str) -> str:
    return f"{FIELD_PATH_START}{text}].image"


def field_path(text: str) -> object:
    return parse_field_path(text, WorkloadKind.DEPLOYMENT)


def manifest(body: bytes) -> object:
    return parse_manifest(body, None, DIGEST)


def tag_list(body: bytes) -> object:
    # What the registry client does with a /tags/list page (registry/client.py): json.loads, then the order.
    return prioritize_tags(json.loads(body)["tags"])


def tags_body(size: int, pattern: str) -> bytes:
    tags: list[str] = []
    length = 0
    while length < size:
        tags.append(pattern.format(n=len(tags)))
        length += len(tags[-1]) + 4  # quotes, comma, space
    return json.dumps({"name": "app", "tags": tags}).encode()


def auths_body(size: int) -> bytes:
    entry = {"auth": base64.b64encode(b"user:password").decode()}
    count = size // (len(json.dumps(entry)) + 30)
    return json.dumps({"auths": {f"registry{n}.example.com": entry for n in range(count)}}).encode()


def wildcard_lookup(key: str) -> object:
    # Not 256 KiB: every "*a" more in the key multiplies the time (nine of them take minutes).
    entries = parse_dockerconfigjson(json.dumps({"auths": {key: {"username": "u", "password": "p"}}}).encode())
    return lookup(entries, "a" * 60 + ".example.com", "app")


def cases(size: int) -> list[Case]:
    deep = repeat("[", size)
    limit = min(size, TRIGGERS_ANNOTATION_MAX_LENGTH)
    deep_objects = repeat('{"a":', size)
    return [
        Case("trigger fieldPath", "spaces after ?(@.name==", selector(repeat(" ", size, "?(@.name==")), field_path),
        Case("trigger fieldPath", "name, spaces, no )", selector(repeat(" ", size, "?(@.name==web")), field_path),
        Case(
            "trigger fieldPath", "spaces around 'web')", selector(repeat(" ", size, "?(@.name==", "'web')")), field_path
        ),
        Case("trigger fieldPath", "index of 256 Ki digits", selector(repeat("1", size)), field_path),
        Case("trigger annotation", "[[[[...", deep),
        Case("trigger annotation", '{"a":{"a":...', deep_objects),
        Case("trigger annotation", "[[],[],...", repeat("[],", size, "[", "[]]")),
        Case("trigger annotation", "[[],[],... under the limit", repeat("[],", limit, "[", "[]]")),
        Case("trigger annotation", "[{},{},... under the limit", repeat("{},", limit, "[", "{}]")),
        Case("trigger annotation", "from.name aaaa...:x", annotation("x", repeat("a", size, tail=":x"))),
        Case("trigger annotation", "distinct ignored entries, under the limit", ignored_entries(limit)),
        Case("image reference", "aaaa...a-", repeat("a", size, tail="-"), parse_reference),
        Case("image reference", "a-a-a-...!.x/y", repeat("a-", size, tail="!.x/y"), parse_reference),
        Case("image reference", "a/a/a/.../A", repeat("a/", size, tail="A"), parse_reference),
        Case("image reference", "x@a-a-a-...", repeat("a-", size, "x@"), parse_reference),
        Case("registry host", "a-a-a-...!", repeat("a-", size, tail="!"), validate_registry),
        Case("WWW-Authenticate", "a a a a ...", repeat("a ", size), parse_challenges),
        Case("WWW-Authenticate", "B b b b ... =", repeat(" b", size, "B", "="), parse_challenges),
        Case("WWW-Authenticate", "Bearer a=b,a=b,...", repeat("a=b,", size, "Bearer "), parse_challenges),
        Case(
            "WWW-Authenticate", 'Bearer a="\\"\\"... unterminated', repeat('\\"', size, 'Bearer a="'), parse_challenges
        ),
        Case("WWW-Authenticate", "Bearer, spaces, !", repeat(" ", size, "Bearer", "!"), parse_challenges),
        Case("Link", "<a>,<a>,...", repeat("<a>,", size), parse_link_next),
        Case("Link", "<a>; a; a; ...", repeat("; a", size, "<a>"), parse_link_next),
        Case("Link", '<a>;rel="\\"\\"... unterminated', repeat('\\"', size, '<a>;rel="'), parse_link_next),
        Case("manifest", "[[[[...", deep.encode(), manifest),
        Case("manifest", '{"a":{"a":...', deep_objects.encode(), manifest),
        Case(
            "manifest",
            "index, many children",
            json_list(CHILD, size, f'{{"mediaType": "{OCI_INDEX}", "manifests": ', "}"),
            manifest,
        ),
        Case(
            "manifest",
            "image, many layers",
            json_list(LAYER, size, f'{{"config": {json.dumps(CONFIG)}, "layers": ', "}"),
            manifest,
        ),
        Case("registry error body", "[[[[...", deep.encode(), parse_error_body),
        Case(
            "registry error body",
            "many errors",
            json_list({"code": "DENIED", "message": "no"}, size, '{"errors": ', "}"),
            parse_error_body,
        ),
        Case("tag list", "1.N.N-rc.N tags", tags_body(size, "1.{n}.{n}-rc.{n}"), tag_list),
        Case("tag list", "numeric tags", tags_body(size, "{n}"), tag_list),
        Case("tag list", "5000-digit versions", tags_body(size, "1" * 5000 + ".{n}.0"), tag_list),
        Case("tag list", "[[[[...", deep.encode(), tag_list),
        Case("pull secret", "[[[[...", deep.encode(), parse_dockerconfigjson),
        Case("pull secret", "many registries", auths_body(size), parse_dockerconfigjson),
        Case(
            "pull secret",
            "auth of spaces",
            json.dumps({"auths": {"r": {"auth": repeat(" ", size)}}}).encode(),
            parse_dockerconfigjson,
        ),
        Case("pull secret lookup", "key *a*a*a*a*a*b, 60-letter host", "*a" * 5 + "*b.example.com", wildcard_lookup),
        Case("Retry-After", "256 Ki digits", repeat("1", size), parse_retry_after),
        Case("kubectl plugin --timeout", "1111...x", repeat("1", size, tail="x"), parse_timeout),
    ]


def answer(case: Case) -> str:
    try:
        result = case.parse(case.text)
    except Exception as error:
        return type(error).__name__
    if isinstance(result, list | tuple):
        return f"{len(result)} items"
    return repr(result)[:40] if result is None or isinstance(result, str | float) else type(result).__name__


def best_ms(case: Case, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        with contextlib.suppress(Exception):  # an error is an answer too, and timed the same
            case.parse(case.text)
        best = min(best, time.perf_counter() - started)
    return best * 1000


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    size = (int(sys.argv[2]) if len(sys.argv) > 2 else 256) * 1024
    rows = [("parser", "input", "size", "ms", "answer")]
    for case in cases(size):
        rows.append((case.parser, case.label, str(len(case.text)), f"{best_ms(case, runs):.1f}", answer(case)))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    print(f"best of {runs} runs, inputs of about {size // 1024} KiB")
    for row in rows:
        cells = (
            cell.rjust(width) if column in (2, 3) else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        print("  ".join(cells).rstrip())


if __name__ == "__main__":
    main()
