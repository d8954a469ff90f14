"""RegistryError and the pure mapping from registry answers and transport failures to reasons and messages.

Reasons follow OpenShift's import errors: NotFound, Unauthorized, Forbidden, NotV2Registry and InternalError, plus
TooManyRequests and Timeout. Messages name the image, say what failed and what to do. They never hold credentials:
nothing here ever receives them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus

from imagestreams.core.jsonlimits import load_json

MAX_DETAIL_CHARS = 200


class Reason(StrEnum):
    NOT_FOUND = "NotFound"
    UNAUTHORIZED = "Unauthorized"
    FORBIDDEN = "Forbidden"
    NOT_V2_REGISTRY = "NotV2Registry"
    INTERNAL_ERROR = "InternalError"
    TOO_MANY_REQUESTS = "TooManyRequests"
    TIMEOUT = "Timeout"


class RegistryError(Exception):
    """A registry lookup failed. `reason` is one of `Reason`; `message` is meant for a condition or an event."""

    def __init__(
        self, reason: str, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
        self.retry_after = retry_after  # seconds the registry asked to wait (429), when it said

    def __repr__(self) -> str:
        return f"RegistryError(reason={self.reason!r}, status={self.status!r}, message={self.message!r})"


class Operation(StrEnum):
    """What the failed request was for; it shapes the message."""

    PING = "ping"
    MANIFEST = "manifest"
    BLOB = "blob"
    TAGS = "tags"
    TOKEN = "token"


class TransportKind(StrEnum):
    TIMEOUT = "timeout"
    NETWORK = "network"
    TLS_VERIFY = "tls-verify"
    HTTP_ONLY = "http-only"
    TLS = "tls"
    REDIRECT = "redirect"
    REDIRECT_DENIED = "redirect-denied"  # to a host the operator's registry policy refuses
    CUT_SHORT = "cut-short"  # the connection ended before the whole answer arrived
    TOO_LARGE = "too-large"


@dataclass(frozen=True)
class ErrorDetail:
    code: str
    message: str


def parse_error_body(body: bytes) -> tuple[ErrorDetail, ...]:
    """The `errors` array of a registry error body ({"errors": [{"code", "message", "detail"}]}), if any."""
    try:
        document = load_json(body)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, JSONNestingError
        return ()
    if not isinstance(document, dict) or not isinstance(document.get("errors"), list):
        return ()
    details = []
    for entry in document["errors"]:
        if isinstance(entry, dict):
            details.append(ErrorDetail(str(entry.get("code", "")), str(entry.get("message", ""))))
    return tuple(details)


def _describe(details: Sequence[ErrorDetail]) -> str:
    text = "; ".join(f"{d.code}: {d.message}" if d.message else d.code for d in details if d.code or d.message)
    return text[:MAX_DETAIL_CHARS]


def _q(text: str) -> str:
    """Double-quoted like Go's %q, as OpenShift's messages quote image names."""
    return json.dumps(text)


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def unauthorized(image: str, registry: str, *, credentials_given: bool) -> RegistryError:
    if credentials_given:
        hint = "the registry refused the credentials and anonymous access"
    else:
        hint = "the registry requires credentials and none were given"
    return RegistryError(
        Reason.UNAUTHORIZED,
        f"you may not have access to the container image {_q(image)}: {hint}; check the pull secret for {registry}",
        status=401,
    )


def all_refused(last: RegistryError, tried: int, registry: str) -> RegistryError:
    """The answer to the last refused credential, saying that each was tried, and anonymous access after them."""
    if tried == 1:
        return last
    return RegistryError(
        last.reason,
        f"{last.message} (each of the {tried} credentials that match {registry} was tried in turn, "
        "then anonymous access)",
        status=last.status,
        retry_after=last.retry_after,
    )


def not_v2_registry(registry: str, status: int) -> RegistryError:
    return RegistryError(
        Reason.NOT_V2_REGISTRY,
        f"{registry} does not serve the registry API v2: GET /v2/ answered {_status_text(status)} without a "
        "Docker-Distribution-API-Version header; check the registry host name",
        status=status,
    )


def _not_found(operation: Operation, image: str, registry: str, codes: set[str], suffix: str) -> RegistryError:
    if operation is Operation.PING:
        return not_v2_registry(registry, 404)
    if operation is Operation.BLOB:
        what = f"the image {_q(image)} refers to a config blob the registry does not have"
    elif operation is Operation.TAGS or "NAME_UNKNOWN" in codes:
        what = f"repository of {_q(image)} not found on {registry}"
    else:
        what = f"image {_q(image)} not found: the registry has no manifest for it"
    return RegistryError(Reason.NOT_FOUND, f"{what}{suffix}; check the name, tag or digest", status=404)


def error_for_status(
    status: int,
    *,
    operation: Operation,
    image: str,
    registry: str,
    body: bytes = b"",
    retry_after: float | None = None,
    attempts: int = 1,
    credentials_given: bool = False,
) -> RegistryError:
    """Map a final, non-success HTTP answer to a RegistryError."""
    details = parse_error_body(body)
    described = _describe(details)
    suffix = f" ({described})" if described else ""
    if status == 401:
        return unauthorized(image, registry, credentials_given=credentials_given)
    if status == 403:
        return RegistryError(
            Reason.FORBIDDEN,
            f"access to the container image {_q(image)} is forbidden{suffix}; check that the pull secret for "
            f"{registry} may pull it",
            status=status,
        )
    if status == 404:
        return _not_found(operation, image, registry, {d.code for d in details}, suffix)
    if status == 429:
        wait = f"; retry after {retry_after:.0f} s" if retry_after is not None else "; try again later"
        return RegistryError(
            Reason.TOO_MANY_REQUESTS,
            f"{registry} is rate limiting requests for {_q(image)} (429 Too Many Requests){wait}",
            status=status,
            retry_after=retry_after,
        )
    if status >= 500:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        message = (
            f"{image}: {registry} failed with {_status_text(status)}{tries} while reading the {operation}{suffix}; "
            "try again later"
        )
    else:
        message = f"{image}: {registry} answered {_status_text(status)} while reading the {operation}{suffix}"
    return RegistryError(Reason.INTERNAL_ERROR, message, status=status)


_TRANSPORT_MESSAGES: dict[TransportKind, str] = {
    TransportKind.TIMEOUT: (
        "{image}: timed out talking to {registry}{tries}; the registry may be down, slow or unreachable"
    ),
    TransportKind.HTTP_ONLY: (
        "the repository {quoted} is HTTP only and requires the insecure flag to import "
        "({registry} answered plain HTTP to an HTTPS request)"
    ),
    TransportKind.TLS_VERIFY: (
        "{image}: the TLS certificate of {registry} could not be verified ({detail}); trust the registry's CA "
        "(extra CA file) or mark the import insecure"
    ),
    TransportKind.TLS: "{image}: TLS connection to {registry} failed: {detail}",
    TransportKind.REDIRECT: "{image}: refused a redirect from {registry}: {detail}",
    TransportKind.REDIRECT_DENIED: "{image}: refused a redirect from {registry}: {detail}",
    TransportKind.CUT_SHORT: (
        "{image}: {registry} broke off its answer{tries}: {detail}; the registry or a proxy in between may be failing"
    ),
    TransportKind.TOO_LARGE: "{image}: {registry} sent an oversized response: {detail}",
    TransportKind.NETWORK: "{image}: cannot reach {registry}{tries}: {detail}; check the host name, port and network",
}


def transport_failure(
    kind: TransportKind, detail: str, *, image: str, registry: str, attempts: int = 1
) -> RegistryError:
    """Map a failure below HTTP (timeouts, refused connections, TLS) to a RegistryError."""
    message = _TRANSPORT_MESSAGES[kind].format(
        image=image,
        quoted=_q(image),
        registry=registry,
        detail=detail[:MAX_DETAIL_CHARS],
        tries=f" after {attempts} attempts" if attempts > 1 else "",
    )
    return RegistryError(_TRANSPORT_REASONS.get(kind, Reason.INTERNAL_ERROR), message)


_TRANSPORT_REASONS = {TransportKind.TIMEOUT: Reason.TIMEOUT, TransportKind.REDIRECT_DENIED: Reason.FORBIDDEN}


def integrity_error(image: str, expected: str, actual: str) -> RegistryError:
    return RegistryError(
        Reason.INTERNAL_ERROR,
        f"{image}: content integrity error: the registry sent content with digest {actual}, expected {expected}",
    )


def invalid_content(image: str, detail: str) -> RegistryError:
    return RegistryError(Reason.INTERNAL_ERROR, f"{image}: {detail[:MAX_DETAIL_CHARS]}")
