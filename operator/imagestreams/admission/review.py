"""AdmissionReview (admission.k8s.io/v1) in and out: the request a webhook handler sees and the answer it gives.

Pure: decoding a review body and encoding a response. Handlers take a `Request` and return a `Response`; the server
(admission/server.py) does the HTTP.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

API_VERSION = "admission.k8s.io/v1"
# The API server sends at most its request size limit (3 MiB) plus the old object; a review above this is refused
# before it is parsed.
MAX_REVIEW_BYTES = 8 * 1024 * 1024


class BadReview(ValueError):
    """The body is not an AdmissionReview this server can answer."""


@dataclass(frozen=True)
class UserInfo:
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    uid: str
    group: str  # of the resource, "" for core
    resource: str  # plural, e.g. "deployments"
    subresource: str
    kind: str  # e.g. "Deployment"
    namespace: str
    name: str
    operation: str  # CREATE, UPDATE, DELETE, CONNECT
    user: UserInfo
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None
    dry_run: bool


@dataclass(frozen=True)
class Response:
    allowed: bool = True
    patch: tuple[dict[str, Any], ...] = ()  # JSON Patch operations (RFC 6902)
    code: int = 0  # with allowed=False: the HTTP status the API server returns to the client
    reason: str = ""  # with allowed=False: a machine-readable reason, e.g. "Invalid"
    message: str = ""  # with allowed=False: what the client is told
    warnings: tuple[str, ...] = ()  # shown by kubectl as "Warning: ..."


def _user(raw: object) -> UserInfo:
    if not isinstance(raw, dict):
        return UserInfo()
    extra = raw.get("extra") or {}
    return UserInfo(
        username=str(raw.get("username") or ""),
        uid=str(raw.get("uid") or ""),
        groups=tuple(str(group) for group in raw.get("groups") or []),
        extra={str(key): tuple(str(v) for v in values or []) for key, values in extra.items()}
        if isinstance(extra, dict)
        else {},
    )


def parse_review(body: bytes) -> Request:
    """The request of an AdmissionReview body; raises BadReview."""
    if len(body) > MAX_REVIEW_BYTES:
        raise BadReview(f"the review has {len(body)} bytes, more than {MAX_REVIEW_BYTES}")
    try:
        review = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadReview(f"the review is not JSON: {error}") from None
    if not isinstance(review, dict) or review.get("apiVersion") != API_VERSION:
        raise BadReview(f"expected an AdmissionReview of {API_VERSION}")
    request = review.get("request")
    if not isinstance(request, dict) or not request.get("uid"):
        raise BadReview("the review has no request uid")
    resource = request.get("resource") or {}
    kind = request.get("kind") or {}
    obj, old = request.get("object"), request.get("oldObject")
    return Request(
        uid=str(request["uid"]),
        group=str(resource.get("group") or ""),
        resource=str(resource.get("resource") or ""),
        subresource=str(request.get("subResource") or ""),
        kind=str(kind.get("kind") or ""),
        namespace=str(request.get("namespace") or ""),
        name=str(request.get("name") or ""),
        operation=str(request.get("operation") or ""),
        user=_user(request.get("userInfo")),
        object=obj if isinstance(obj, dict) else None,
        old_object=old if isinstance(old, dict) else None,
        dry_run=bool(request.get("dryRun")),
    )


def render_response(uid: str, response: Response) -> bytes:
    """The AdmissionReview the API server expects back."""
    answer: dict[str, Any] = {"uid": uid, "allowed": response.allowed}
    if response.patch:
        answer["patchType"] = "JSONPatch"
        answer["patch"] = base64.b64encode(json.dumps(list(response.patch)).encode()).decode()
    if not response.allowed:
        status: dict[str, Any] = {"message": response.message, "code": response.code or 403}
        if response.reason:
            status["reason"] = response.reason
        answer["status"] = status
    if response.warnings:
        answer["warnings"] = list(response.warnings)
    return json.dumps({"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": answer}).encode()


def json_pointer(*parts: str | int) -> str:
    """An RFC 6901 pointer, e.g. json_pointer("spec", "tags", 0, "generation") -> "/spec/tags/0/generation"."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)
