"""HTTP answers and transport failures map to OpenShift-style reasons and actionable messages."""

from __future__ import annotations

import json

import pytest

from imagestreams.registry.errors import (
    ErrorDetail,
    Operation,
    Reason,
    TransportKind,
    all_refused,
    error_for_status,
    integrity_error,
    not_v2_registry,
    parse_error_body,
    transport_failure,
    unauthorized,
)

IMAGE = "127.0.0.1:5000/team/app:v1"
REGISTRY = "127.0.0.1:5000"


def body(*errors: tuple[str, str]) -> bytes:
    return json.dumps(
        {"errors": [{"code": code, "message": message, "detail": {}} for code, message in errors]}
    ).encode()


def test_unauthorized_message_names_image_and_secret() -> None:
    error = error_for_status(401, operation=Operation.MANIFEST, image=IMAGE, registry=REGISTRY)
    assert error.reason == Reason.UNAUTHORIZED == "Unauthorized"
    assert error.status == 401
    assert error.message.startswith(f'you may not have access to the container image "{IMAGE}"')
    assert error.message.endswith(f"check the pull secret for {REGISTRY}")
    assert "none were given" in error.message
    refused = unauthorized(IMAGE, REGISTRY, credentials_given=True)
    assert "the registry refused the credentials and anonymous access;" in refused.message


def test_all_refused_keeps_reason_and_status_and_counts_the_attempts() -> None:
    last = error_for_status(403, operation=Operation.MANIFEST, image=IMAGE, registry=REGISTRY)
    every = all_refused(last, 3, REGISTRY)
    assert (every.reason, every.status) == (Reason.FORBIDDEN, 403)
    assert every.message == (
        f"{last.message} (each of the 3 credentials that match {REGISTRY} was tried in turn, then anonymous access)"
    )
    assert all_refused(last, 1, REGISTRY) is last  # one credential: its own answer says it all


@pytest.mark.parametrize(
    ("status", "operation", "errors", "reason", "words"),
    [
        (404, Operation.MANIFEST, [("MANIFEST_UNKNOWN", "manifest unknown")], Reason.NOT_FOUND, "no manifest"),
        (404, Operation.MANIFEST, [("NAME_UNKNOWN", "repository name not known")], Reason.NOT_FOUND, "repository"),
        (404, Operation.MANIFEST, [], Reason.NOT_FOUND, "not found"),  # HEAD answers have no body
        (404, Operation.TAGS, [], Reason.NOT_FOUND, "repository"),
        (404, Operation.BLOB, [], Reason.NOT_FOUND, "config blob"),
        (404, Operation.PING, [], Reason.NOT_V2_REGISTRY, "does not serve the registry API v2"),
        (
            403,
            Operation.MANIFEST,
            [("DENIED", "requested access to the resource is denied")],
            Reason.FORBIDDEN,
            "DENIED",
        ),
        (503, Operation.MANIFEST, [], Reason.INTERNAL_ERROR, "503 Service Unavailable after 3 attempts"),
        (400, Operation.MANIFEST, [("MANIFEST_INVALID", "bad")], Reason.INTERNAL_ERROR, "400 Bad Request"),
        (599, Operation.MANIFEST, [], Reason.INTERNAL_ERROR, "599"),
    ],
)
def test_status_mapping(
    status: int, operation: Operation, errors: list[tuple[str, str]], reason: Reason, words: str
) -> None:
    error = error_for_status(
        status, operation=operation, image=IMAGE, registry=REGISTRY, body=body(*errors), attempts=3
    )
    assert error.reason == reason
    assert words in error.message
    assert error.status == status


def test_too_many_requests_carries_retry_after() -> None:
    error = error_for_status(429, operation=Operation.MANIFEST, image=IMAGE, registry=REGISTRY, retry_after=120)
    assert error.reason == Reason.TOO_MANY_REQUESTS
    assert error.retry_after == 120
    assert "retry after 120 s" in error.message
    unknown = error_for_status(429, operation=Operation.MANIFEST, image=IMAGE, registry=REGISTRY)
    assert unknown.retry_after is None
    assert "try again later" in unknown.message


def test_not_v2_registry() -> None:
    error = not_v2_registry("example.com", 404)
    assert error.reason == Reason.NOT_V2_REGISTRY
    assert "example.com" in error.message


@pytest.mark.parametrize(
    ("kind", "reason", "words"),
    [
        (TransportKind.TIMEOUT, Reason.TIMEOUT, "timed out talking to 127.0.0.1:5000 after 3 attempts"),
        (TransportKind.HTTP_ONLY, Reason.INTERNAL_ERROR, "is HTTP only and requires the insecure flag"),
        (TransportKind.TLS_VERIFY, Reason.INTERNAL_ERROR, "trust the registry's CA"),
        (TransportKind.TLS, Reason.INTERNAL_ERROR, "TLS connection"),
        (TransportKind.REDIRECT, Reason.INTERNAL_ERROR, "refused a redirect"),
        (TransportKind.TOO_LARGE, Reason.INTERNAL_ERROR, "oversized"),
        (TransportKind.NETWORK, Reason.INTERNAL_ERROR, "cannot reach 127.0.0.1:5000 after 3 attempts"),
    ],
)
def test_transport_mapping(kind: TransportKind, reason: Reason, words: str) -> None:
    error = transport_failure(kind, "detail", image=IMAGE, registry=REGISTRY, attempts=3)
    assert error.reason == reason
    assert words in error.message
    assert error.status is None


def test_integrity_error_wording() -> None:
    error = integrity_error(IMAGE, "sha256:aa", "sha256:bb")
    assert "content integrity error" in error.message
    assert error.reason == Reason.INTERNAL_ERROR


def test_error_bodies_are_parsed_defensively() -> None:
    assert parse_error_body(body(("A", "b"))) == (ErrorDetail("A", "b"),)
    assert parse_error_body(b"<html>") == ()
    assert parse_error_body(b'{"errors": "nope"}') == ()
    assert parse_error_body(b'{"errors": [1, {"code": "X"}]}') == (ErrorDetail("X", ""),)


def test_long_registry_messages_are_truncated() -> None:
    error = error_for_status(
        400, operation=Operation.MANIFEST, image=IMAGE, registry=REGISTRY, body=body(("X", "y" * 5000))
    )
    assert len(error.message) < 400
