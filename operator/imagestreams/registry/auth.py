# Written here, with the transport, because no maintained async registry client fits (see client.py): the Docker
# token protocol and the order of credential attempts are the operator's own rules to keep.
"""Authentication for the registry client: which credentials to try in which order, what a registry's ping taught
(scheme, TLS, auth challenge), and the Authorization each request carries (Basic, or a cached Bearer token).

The order of attempts is pure and table-tested: `credential_attempts` lists them (each credential in the keyring's
order, then anonymous access last, as OpenShift's importer retries anonymously after refused credentials) and
`after_attempt` decides after each outcome whether to try the next or stop; `each_credential` runs them.

Security rules kept here: credentials go only to the registry that challenged for them or its token realm (the
transport drops them on redirects to another origin); a challenge, and so a token realm, is learned only from an
answer of the registry's own origin, never from where a redirect led; a registry reached over https gets an https
token realm; credentials never appear in logs or exception messages.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, TypeVar, cast

from yarl import URL

from imagestreams.core.caches import TTLCache
from imagestreams.core.jsonlimits import load_json
from imagestreams.registry import errors
from imagestreams.registry.challenges import Challenge, pick_challenge
from imagestreams.registry.errors import Operation, RegistryError
from imagestreams.registry.flights import SingleFlight
from imagestreams.registry.models import ClientSettings, Credentials
from imagestreams.registry.retry import is_retryable_status, parse_retry_after
from imagestreams.registry.transport import MAX_ERROR_BODY, Response, SSLParam, Transport, TransportError, safe_url

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_TOKEN_BODY = 1024 * 1024
DEFAULT_TOKEN_LIFETIME = 60.0  # seconds, when the token server gives no expires_in (token spec default)

# Answers after which the next credential is tried (the kubelet moves on after any failed pull; here a not-found, a
# timeout or a server error would be the same with other credentials, so only a refusal moves on).
REFUSED_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class Call:
    """One public call's context: where, what, as whom (`credentials` None: anonymously)."""

    registry: str
    repository: str
    image: str  # how messages name the image
    credentials: Credentials | None
    insecure: bool

    @property
    def identity(self) -> str:
        return self.credentials.identity if self.credentials else ""


# --- the order of credential attempts (pure) -------------------------------------------------------------------------


class Outcome(Enum):
    """How one attempt ended."""

    ACCEPTED = "accepted"  # the operation succeeded
    REFUSED = "refused"  # the registry or its token server answered 401 or 403
    FAILED = "failed"  # any other error


class Next(Enum):
    """What to do after an attempt."""

    RETURN = "return"  # the answer stands
    TRY_NEXT = "try next"
    RAISE = "raise"  # this attempt's error is the answer
    RAISE_ALL_REFUSED = "raise all refused"  # the last refusal of a credential, naming how many were tried


def credential_attempts(credentials: Credentials | Sequence[Credentials] | None) -> list[Credentials | None]:
    """Who to try, in order: the credentials given (without repeats, in the kubelet's order), then anonymous.

    Anonymous comes last even when credentials match: OpenShift's import retries anonymously after the registry
    refused the credentials (openshift-apiserver imagestreamimport rest.go, the retry on a 401 "username or
    password"), so a public image behind a stale pull secret still imports. The kubelet would not retry, but a
    workload that pulls by digest never depends on this operator's credentials.
    """
    if credentials is None:
        return [None]
    given: list[Credentials | None] = (
        [credentials] if isinstance(credentials, Credentials) else list(dict.fromkeys(credentials))
    )
    return [*given, None]


def outcome_of(error: RegistryError | None) -> Outcome:
    if error is None:
        return Outcome.ACCEPTED
    return Outcome.REFUSED if error.status in REFUSED_STATUSES else Outcome.FAILED


def after_attempt(outcome: Outcome, number: int, total: int) -> Next:
    """After attempt `number` (from 1) of `total` (`credential_attempts`, anonymous last) ended with `outcome`.

    Only a refusal moves on. When the last attempt (anonymous) is refused too, the answer is what the credentials
    got, if any were tried; anonymous alone refused is its own answer.
    """
    if outcome is Outcome.ACCEPTED:
        return Next.RETURN
    if outcome is Outcome.FAILED:
        return Next.RAISE
    if number < total:
        return Next.TRY_NEXT
    return Next.RAISE_ALL_REFUSED if number > 1 else Next.RAISE


async def each_credential(
    anonymous: Call,
    credentials: Credentials | Sequence[Credentials] | None,
    operation: Callable[[Call], Awaitable[T]],
) -> T:
    """Run `operation` (raising RegistryError) as each attempt of `credential_attempts` in turn, as long as
    `after_attempt` says so. The caller matched the credentials to this registry; each is sent only where
    `Authenticator.request` sends credentials."""
    attempts = credential_attempts(credentials)
    refused: RegistryError | None = None  # the last credential's refusal
    for number, identity in enumerate(attempts, start=1):
        call = replace(anonymous, credentials=identity)
        try:
            return await operation(call)
        except RegistryError as error:
            step = after_attempt(outcome_of(error), number, len(attempts))
            if step is Next.TRY_NEXT:
                refused = error
                log.info(
                    "%s refused credential %d of %d for %s (%d); trying the next",
                    call.registry,
                    number,
                    len(attempts) - 1,  # the credentials; anonymous comes last
                    call.image,
                    error.status,
                )
                continue
            if step is Next.RAISE_ALL_REFUSED and refused is not None:
                raise errors.all_refused(refused, number - 1, call.registry) from error
            raise
    raise AssertionError("unreachable")  # pragma: no cover


# --- challenges and tokens -------------------------------------------------------------------------------------------


class _CredentialsRejected(Exception):
    """The token server refused the given credentials."""


@dataclass
class Endpoint:
    """What a ping taught about a registry: the scheme that works, TLS settings, and its auth challenge."""

    base: URL
    ssl: SSLParam
    challenge: Challenge | None


# (registry, realm, service, scope, identity): whom a token was issued to, for what.
_TokenKey = tuple[str, str, str, str, str]


def basic_authorization(credentials: Credentials) -> str:
    raw = f"{credentials.username}:{credentials.password}".encode()
    return f"Basic {base64.b64encode(raw).decode()}"


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


class Authenticator:
    """Requests to a registry as a call's credentials: pings (cached for `ping_ttl`), challenges and tokens (cached
    until shortly before they expire), on top of the transport."""

    def __init__(self, settings: ClientSettings, transport: Transport, flights: SingleFlight[Hashable, Any]) -> None:
        self.settings = settings
        self._transport = transport
        self._flights = flights
        # Bounded like the client's other caches: one entry per registry (and insecure flag) contacted.
        self._endpoints: TTLCache[tuple[str, bool], Endpoint] = TTLCache(
            settings.cache_size, ttl=settings.ping_ttl, clock=_loop_time
        )
        # Each token lives as long as its server said (put(..., ttl=)), less the renewal margin.
        self._tokens: TTLCache[_TokenKey, str] = TTLCache(settings.cache_size, clock=_loop_time)

    async def endpoint(self, call: Call) -> Endpoint:
        endpoint = self._endpoints.get((call.registry, call.insecure))
        if endpoint is not None:
            return endpoint
        return cast(Endpoint, await self._flights.run(("ping", call.registry, call.insecure), lambda: self._ping(call)))

    async def request(
        self, call: Call, method: str, target: str | URL, headers: Mapping[str, str], *, max_body: int
    ) -> Response:
        """A request to the registry as `call.credentials` (anonymous when None), answering auth challenges.

        The cached or pre-fetched authorization first; on 401 a fresh token once (if the token came from the cache or
        the challenge changed). Whether other credentials (or none) are tried after a refusal is `each_credential`'s
        decision.
        """
        endpoint = await self.endpoint(call)
        url = endpoint.base.with_path(target, encoded=True) if isinstance(target, str) else target
        identity = call.credentials
        scope, fresh = f"repository:{call.repository}:pull", False
        for _ in range(2):
            challenge = endpoint.challenge
            try:
                authorization, cached = await self._authorization(
                    call, endpoint, challenge, scope, identity, fresh=fresh
                )
            except _CredentialsRejected:
                log.info("the token server for %s refused the credentials given for it", call.registry)
                break
            request_headers = dict(headers)
            if authorization:
                request_headers["Authorization"] = authorization
            response = await self._transport.fetch(
                call.registry,
                method,
                url,
                request_headers,
                insecure=call.insecure,
                ssl_param=endpoint.ssl,
                max_body=max_body,
            )
            if response.status != 401:
                return response
            new = None
            if response.url.origin() == endpoint.base.origin():  # a challenge from another host is not ours
                new = pick_challenge(response.headers.getall("WWW-Authenticate", ()))
            if new is not None:
                endpoint.challenge = new.without_request_params()
                if new.scheme == "bearer" and new.scope:
                    scope = new.scope
            if fresh or not (cached or (new is not None and not new.same_authority(challenge))):
                break
            fresh = True
        raise errors.unauthorized(call.image, call.registry, credentials_given=identity is not None)

    async def _ping(self, call: Call) -> Endpoint:
        """GET /v2/ over https (verified, or unverified when insecure), then plain http when insecure."""
        tls = self._transport.tls(insecure=call.insecure)
        schemes = [("https", tls), ("http", tls)] if call.insecure else [("https", tls)]
        for number, (scheme, ssl_param) in enumerate(schemes, start=1):
            last = number == len(schemes)
            base = URL.build(scheme=scheme, authority=call.registry)
            try:
                response = await self._transport.fetch(
                    call.registry, "GET", base.with_path("/v2/"), {}, insecure=call.insecure, ssl_param=ssl_param,
                    max_body=MAX_ERROR_BODY, attempts=None if last else 1,
                )  # fmt: skip
            except TransportError as exc:
                if last:
                    raise
                log.debug("ping %s over %s failed (%s); trying the next scheme", call.registry, scheme, exc.kind)
                continue
            return self._learn_endpoint(call, base, ssl_param, response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _learn_endpoint(self, call: Call, base: URL, ssl_param: SSLParam, response: Response) -> Endpoint:
        status = response.status
        speaks_v2 = "Docker-Distribution-API-Version" in response.headers
        if not (200 <= status < 300 or status in (401, 403) or speaks_v2):
            if status == 429 or is_retryable_status(status):
                raise errors.error_for_status(
                    status,
                    operation=Operation.PING,
                    image=call.registry,
                    registry=call.registry,
                    body=response.body,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    attempts=response.attempts,
                )
            raise errors.not_v2_registry(call.registry, status)
        challenge = None
        if status == 401:
            if response.url.origin() == base.origin():
                challenge = pick_challenge(response.headers.getall("WWW-Authenticate", ()))
            else:
                # A redirect led the ping to another origin: its challenge names that origin's token realm, and
                # adopting it would send this registry's credentials there. Only the registry's own answers count.
                log.warning(
                    "the ping of %s was redirected to %s; its auth challenge is ignored",
                    call.registry,
                    safe_url(response.url.origin()),
                )
        endpoint = Endpoint(
            base=base, ssl=ssl_param, challenge=challenge.without_request_params() if challenge else None
        )
        self._endpoints.put((call.registry, call.insecure), endpoint)
        return endpoint

    async def _authorization(
        self,
        call: Call,
        endpoint: Endpoint,
        challenge: Challenge | None,
        scope: str,
        identity: Credentials | None,
        *,
        fresh: bool,
    ) -> tuple[str | None, bool]:
        """The Authorization value answering `challenge` as `identity`, and whether it came from the token cache."""
        if challenge is None:
            return None, False
        if challenge.scheme == "basic":
            return (basic_authorization(identity) if identity else None), False
        if challenge.scheme != "bearer" or not challenge.realm:
            return None, False
        key = (call.registry, challenge.realm, challenge.service or "", scope, identity.identity if identity else "")
        if not fresh:
            token = self._tokens.get(key)
            if token is not None:
                return f"Bearer {token}", True
        self._tokens.pop(key)
        value = await self._flights.run(
            ("token", *key),
            lambda: self._fetch_token(
                call, endpoint=endpoint, challenge=challenge, scope=scope, identity=identity, key=key
            ),
        )
        return f"Bearer {cast(str, value)}", False

    async def _fetch_token(
        self,
        call: Call,
        *,
        endpoint: Endpoint,
        challenge: Challenge,
        scope: str,
        identity: Credentials | None,
        key: _TokenKey,
    ) -> str:
        where = f"{call.registry}/{call.repository}"
        realm = challenge.realm or ""
        try:
            url = URL(realm)
        except ValueError:
            raise errors.invalid_content(where, "the registry's token realm is not a URL") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise errors.invalid_content(where, f"the registry's token realm {realm!r} is not an http(s) URL")
        if url.scheme == "http" and not (call.insecure or endpoint.base.scheme == "http"):
            raise errors.invalid_content(
                where, f"refused the token realm {realm!r}: a registry reached over https must use an https realm"
            )
        query = {"scope": scope}
        if challenge.service:
            query["service"] = challenge.service
        url = url.with_user(None).update_query(query)
        headers = {"Accept": "application/json"}
        if identity is not None:
            headers["Authorization"] = basic_authorization(identity)
        response = await self._transport.fetch(
            call.registry,
            "GET",
            url,
            headers,
            insecure=call.insecure,
            ssl_param=self._transport.tls(insecure=call.insecure),
            max_body=MAX_TOKEN_BODY,
        )
        if response.status in (401, 403) and identity is not None:
            raise _CredentialsRejected
        if response.status != 200:
            raise errors.error_for_status(
                response.status,
                operation=Operation.TOKEN,
                image=where,
                registry=call.registry,
                body=response.body,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                attempts=response.attempts,
                credentials_given=call.credentials is not None,
            )
        try:
            document = load_json(response.body)
        except (ValueError, UnicodeDecodeError):
            raise errors.invalid_content(where, "the token server's answer is not JSON") from None
        token = document.get("token") or document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(token, str) or not token:
            raise errors.invalid_content(where, "the token server's answer holds no token")
        expires_in = document.get("expires_in")
        lifetime = DEFAULT_TOKEN_LIFETIME
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            lifetime = float(expires_in)
        margin = min(self.settings.token_expiry_margin, lifetime / 2)
        self._tokens.put(key, token, ttl=lifetime - margin)
        return token
