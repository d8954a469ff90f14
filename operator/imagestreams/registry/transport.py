# Written here on aiohttp because a registry needs more than aiohttp's own redirect following gives: the operator's
# host policy checked on every hop, no downgrade from https to plain http, Authorization dropped once the origin
# changes, bounded bodies, and each request waiting for its turn in its registry's budget.
"""The registry client's HTTP layer: one aiohttp session, requests under per-registry limits, redirects followed by
hand with host checks, retries with backoff and 429 pauses, and failures below HTTP as `TransportError`.

It knows nothing of images or credentials: `auth` decides what a request carries, `client` what it asks for.
Security rules kept here: TLS is verified unless the caller passes an unverified context; every host contacted
(registry, redirect hop, token realm) is checked against the operator's policy by name, and the addresses a name
resolves to are checked again when connecting; URLs in logs and messages carry no query or user info.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from imagestreams.core.adaptivelimit import AdaptiveLimit, LimitPolicy, PullBudget, counts_as_pull, parse_advertised
from imagestreams.core.fairness import Admission, Demand
from imagestreams.registry import errors
from imagestreams.registry.errors import RegistryError, TransportKind
from imagestreams.registry.flights import current_demand
from imagestreams.registry.models import ClientSettings
from imagestreams.registry.retry import backoff_delay, is_retryable_status, parse_retry_after

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_ERROR_BODY = 64 * 1024
# OpenSSL's words for "the server answered the TLS handshake with something else", i.e. plain HTTP.
_HTTP_ONLY_MARKERS = ("wrong_version_number", "wrong version number", "record layer failure", "http request")

# What a request is sent with: a verifying context, or False for an unverified (insecure) connection.
SSLParam = ssl.SSLContext | bool


class TransportError(Exception):
    """A failure below HTTP; turned into a RegistryError (with the caller's image name) at the client's boundary."""

    def __init__(self, kind: TransportKind, detail: str, *, retryable: bool) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.retryable = retryable
        self.attempts = 1


@dataclass(frozen=True)
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: URL  # after redirects
    attempts: int = 1


def verifying_context(extra_ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if extra_ca_file:
        context.load_verify_locations(cafile=extra_ca_file)
    return context


def safe_url(url: URL) -> str:
    """A URL for logs: no query (signed storage URLs carry secrets there) and no user info."""
    return str(url.with_query(None).with_user(None))


@dataclass(eq=False)
class _Ticket:
    """A request waiting for its turn at a registry."""

    granted: asyncio.Future[None]


class RegistryGate:
    """One registry's request budget: concurrency, rate and a pause after a 429 with Retry-After, with the turns
    shared fairly across namespaces (`core.fairness.Admission`; the pure rules live there, the waiting here).

    The rate and concurrency adapt to the registry's answers (`core.adaptivelimit.AdaptiveLimit`), and a registry
    that counts pulls against a quota gets no more manifest GETs than its quota allows (`PullBudget`).

    Nothing is booked ahead: a request that stops waiting (its lookup's deadline passed, its stream was deleted)
    simply leaves the queue, and one that got its turn but was cancelled before sending gives the token back.
    """

    def __init__(self, registry: str, settings: ClientSettings) -> None:
        self.registry = registry
        self._settings = settings
        self.limit = AdaptiveLimit(
            LimitPolicy(
                ceiling_rate=settings.per_registry_rate,
                ceiling_concurrency=settings.per_registry_concurrency,
                floor_rate=settings.per_registry_min_rate,
                recovery_seconds=settings.limit_recovery_seconds,
            )
        )
        known = settings.pull_limits.get(registry)
        self.pulls = PullBudget(*known) if known else None
        self._admission: Admission[_Ticket] = Admission(
            settings.per_registry_rate, settings.per_registry_burst, settings.per_registry_concurrency
        )
        self._limits = (self.limit.rate(0.0), self.limit.concurrency(0.0))
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")

    def pause(self, seconds: float) -> None:
        self._admission.pause_until(asyncio.get_running_loop().time() + seconds)

    def throttled(self) -> None:
        """The registry answered 429: slow down (its Retry-After, if any, is a `pause`)."""
        if self.limit.throttled(asyncio.get_running_loop().time()):
            log.info("%s answered 429: its request limit is now %s", self.registry, self._describe())

    def failed(self) -> None:
        """An answer or failure that may come from load (5xx, 408, a timeout, a dropped connection)."""
        if self.limit.failed(asyncio.get_running_loop().time()):
            log.info("%s failed a request: its request limit is now %s", self.registry, self._describe())

    def answered(self, method: str, path: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn the registry's pull quota from a manifest answer's RateLimit headers (or their absence)."""
        if self.pulls is None and "RateLimit-Limit" not in headers:
            return
        quota = parse_advertised(headers.get("RateLimit-Limit"), headers.get("RateLimit-Remaining"))
        if quota is not None:
            if self.pulls is None:
                self.pulls = PullBudget(quota.limit, quota.window)
            self.pulls.advertised(quota, asyncio.get_running_loop().time())
        elif self.pulls is not None and 200 <= status < 300 and "/manifests/" in path:
            self.pulls.none_advertised()

    async def pull_token(self, demand: Demand) -> None:
        """Wait until a pull (a manifest GET) may be sent under the registry's quota; a waiter that gives up has
        taken nothing. The wait counts as waiting for a turn (`Demand.waited`): it is this operator's budget."""
        loop = asyncio.get_running_loop()
        if self.pulls is None or self.pulls.try_take(loop.time()):
            return
        demand.queued(loop.time())
        try:
            while self.pulls is not None and not self.pulls.try_take(loop.time()):
                await asyncio.sleep(max(0.01, self.pulls.delay(loop.time())))
        finally:
            demand.unqueued(loop.time())

    def give_pull_back(self) -> None:
        if self.pulls is not None:
            self.pulls.give_back()

    def _describe(self) -> str:
        now = asyncio.get_running_loop().time()
        rate = self.limit.rate(now)
        shown = "no rate limit" if math.isinf(rate) else f"{rate:.3g} requests per second"
        return f"{shown}, {self.limit.concurrency(now)} at a time"

    def _sync_limits(self, now: float) -> None:
        """Give the admission the limits of now (they climb back over time after a push-back)."""
        limits = (self.limit.rate(now), self.limit.concurrency(now))
        if limits == self._limits:
            return
        self._limits = rate, concurrency = limits
        burst = max(self._settings.per_registry_burst, math.ceil(rate / 10) if math.isfinite(rate) else 1)
        self._admission.set_limits(now, rate, burst, concurrency)
        observer = self._settings.limit_observer
        if observer is not None:
            observer(self.registry, rate, concurrency)

    def namespaces_waiting(self) -> frozenset[str]:
        return self._admission.tenants_waiting()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, float("inf")

    @contextlib.asynccontextmanager
    async def turn(self, demand: Demand) -> AsyncIterator[None]:
        """Wait for this request's turn in the lanes of `demand`'s namespaces, then hold a slot while it runs."""
        loop = asyncio.get_running_loop()
        ticket = _Ticket(loop.create_future())
        self._admission.enqueue(ticket, demand.tenants)
        unfollow = demand.follow(lambda tenants: self._admission.also_for(ticket, tenants))
        demand.queued(loop.time())
        try:
            self._dispatch()
            await ticket.granted
        except asyncio.CancelledError:
            if ticket.granted.done() and not ticket.granted.cancelled():
                self._admission.refund()  # granted, but cancelled before it could be sent
                self._dispatch()
            else:
                self._admission.withdraw(ticket)
            raise
        finally:
            unfollow()
            demand.unqueued(loop.time())
        try:
            yield
        finally:
            self._admission.finished()
            self._dispatch()

    def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._sync_limits(now)
        while (ticket := self._admission.admit(now)) is not None:
            if ticket.granted.done():  # its waiter was cancelled and has not withdrawn yet
                self._admission.refund()
                continue
            ticket.granted.set_result(None)
        wake = self._admission.wake_at(now)
        if wake is not None and wake < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = wake
            self._timer = loop.call_at(wake, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        self._dispatch()


class _AddressRefused(OSError):
    """The registry policy refused the addresses a name resolved to."""


class _GuardedResolver(aiohttp.abc.AbstractResolver):
    """Resolves names as aiohttp does, then refuses addresses the operator's policy denies, at connect time
    (a name checked earlier could resolve differently now)."""

    def __init__(self, guard: Callable[[str, list[str]], str | None]) -> None:
        self._inner = aiohttp.DefaultResolver()
        self._guard = guard

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[aiohttp.abc.ResolveResult]:
        results = await self._inner.resolve(host, port, family)  # type: ignore[arg-type]
        refusal = self._guard(host, [str(result["host"]) for result in results])
        if refusal:
            raise _AddressRefused(refusal)
        return results

    async def close(self) -> None:
        await self._inner.close()


# Failures told apart by class alone, the most specific first: (class, kind, worth retrying).
_FAILURE_CLASSES: tuple[tuple[type[aiohttp.ClientError], TransportKind, bool], ...] = (
    (aiohttp.ClientPayloadError, TransportKind.CUT_SHORT, True),  # connected and answered, then the body stopped
    (aiohttp.ClientConnectionError, TransportKind.NETWORK, True),
    (aiohttp.ClientError, TransportKind.NETWORK, False),
)


def _failure_of(exc: TimeoutError | aiohttp.ClientError) -> TransportError | RegistryError:
    """What a failed exchange means."""
    if isinstance(exc, TimeoutError):
        return TransportError(TransportKind.TIMEOUT, "timed out", retryable=True)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TransportError(TransportKind.TLS_VERIFY, str(exc.certificate_error), retryable=False)
    if isinstance(exc, aiohttp.ClientSSLError):
        text = str(exc)
        plain = any(marker in text.lower() for marker in _HTTP_ONLY_MARKERS)
        return TransportError(TransportKind.HTTP_ONLY if plain else TransportKind.TLS, text, retryable=False)
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, _AddressRefused):
        return RegistryError(errors.Reason.FORBIDDEN, str(exc.os_error))
    kind, retryable = next((kind, retry) for cls, kind, retry in _FAILURE_CLASSES if isinstance(exc, cls))
    detail = _payload_detail(exc) if kind is TransportKind.CUT_SHORT else str(exc) or type(exc).__name__
    return TransportError(kind, detail, retryable=retryable)


def _payload_detail(error: aiohttp.ClientError) -> str:
    """aiohttp's wording of a body cut short, without its exception-class wrapping: the innermost cause's message
    (e.g. "Not enough data to satisfy content length header (received 200 of 802 bytes)")."""
    cause: BaseException = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    message = getattr(cause, "message", None) or str(cause) or type(cause).__name__
    return str(message)


async def _read_body(response: aiohttp.ClientResponse, limit: int, *, truncate: bool) -> bytes:
    length = response.content_length
    if not truncate and length is not None and length > limit:
        raise TransportError(TransportKind.TOO_LARGE, f"{length} bytes, more than {limit} allowed", retryable=False)
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        total += len(chunk)
        if total > limit:
            if truncate:
                chunks.append(chunk[: len(chunk) - (total - limit)])
                break
            raise TransportError(TransportKind.TOO_LARGE, f"more than {limit} bytes", retryable=False)
        chunks.append(chunk)
    return b"".join(chunks)


class Transport:
    """The HTTP side of one RegistryClient: its session, its registries' gates, and one logical request at a time
    (`fetch`). Requests are keyed by the registry they are made for, whose budget they use even when a redirect or
    a token realm leads to another host."""

    def __init__(self, settings: ClientSettings, trace_configs: Sequence[aiohttp.TraceConfig] = ()) -> None:
        self.settings = settings
        self._verify_context = verifying_context(settings.extra_ca_file)
        self._trace_configs = list(trace_configs)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._random = random.Random()  # noqa: S311 - jitter, not cryptography
        self._gates: dict[str, RegistryGate] = {}

    async def close(self) -> None:
        self._closed = True
        for gate in self._gates.values():
            gate.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def tls(self, *, insecure: bool) -> SSLParam:
        """What a connection is made with: the verifying context, or no verification when the caller says insecure."""
        return False if insecure else self._verify_context

    def counts_pulls(self, registry: str) -> bool:
        """Whether `registry` counts manifest GETs against a quota, as far as this client knows: a registry known to
        (Docker Hub), or one that advertised a quota in its answers."""
        gate = self._gates.get(registry)
        if gate is not None:
            return gate.pulls is not None
        return registry in self.settings.pull_limits

    def namespaces_waiting(self, registry: str) -> frozenset[str]:
        """The namespaces with requests waiting for a turn at `registry` now (see `flights.on_behalf_of`)."""
        gate = self._gates.get(registry)
        return gate.namespaces_waiting() if gate else frozenset()

    async def fetch(
        self,
        registry: str,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        *,
        insecure: bool,
        ssl_param: SSLParam,
        max_body: int,
        attempts: int | None = None,
    ) -> Response:
        """One logical request for `registry`: redirects followed by hand, retries on network errors, 5xx and 429.

        `insecure` allows a redirect from https to plain http; `attempts` overrides the settings' max_attempts.
        """
        settings = self.settings
        limit = attempts or settings.max_attempts
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._follow(
                    registry, method, url, headers, insecure=insecure, ssl_param=ssl_param, max_body=max_body
                )
            except TransportError as exc:
                exc.attempts = attempt
                if exc.retryable:
                    self._gate_for(registry).failed()
                if not exc.retryable or attempt >= limit:
                    raise
                delay = self._backoff(attempt)
                log.info("%s %s failed (%s); retry %d in %.2f s", method, safe_url(url), exc.kind, attempt, delay)
                await asyncio.sleep(delay)
                continue
            response = replace(response, attempts=attempt)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.status == 429:
                self._gate_for(registry).throttled()
                if attempt >= limit or (retry_after is not None and retry_after > settings.max_retry_after):
                    return response
                delay = retry_after if retry_after is not None else self._backoff(attempt)
                log.info("%s answered 429; pausing its requests for %.2f s", registry, delay)
                self._gate_for(registry).pause(delay)  # every request to this registry waits
                continue
            if is_retryable_status(response.status):
                self._gate_for(registry).failed()
            if is_retryable_status(response.status) and attempt < limit:
                if retry_after is not None and retry_after <= settings.max_retry_after:
                    delay = retry_after
                else:
                    delay = self._backoff(attempt)
                log.info("%s %s answered %d; retry in %.2f s", method, safe_url(url), response.status, delay)
                await asyncio.sleep(delay)
                continue
            return response

    def _session_for_requests(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the registry client is closed")
        if self._session is None:
            settings = self.settings
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
                ),
                connector=aiohttp.TCPConnector(
                    limit=100,
                    ttl_dns_cache=300,
                    resolver=_GuardedResolver(settings.address_guard) if settings.address_guard else None,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": settings.user_agent},
                trust_env=settings.trust_env,
                trace_configs=self._trace_configs or None,
            )
        return self._session

    def _gate_for(self, registry: str) -> RegistryGate:
        gate = self._gates.get(registry)
        if gate is None:
            gate = self._gates[registry] = RegistryGate(registry, self.settings)
        return gate

    def request_limits(self, registry: str) -> tuple[float, int]:
        """`registry`'s request limits now: requests per second (math.inf: none) and requests in flight."""
        gate = self._gate_for(registry)
        now = asyncio.get_running_loop().time()
        return gate.limit.rate(now), gate.limit.concurrency(now)

    def _backoff(self, attempt: int) -> float:
        settings = self.settings
        return backoff_delay(attempt, settings.backoff_base, settings.backoff_max, self._random.random())

    async def _follow(
        self,
        registry: str,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        *,
        insecure: bool,
        ssl_param: SSLParam,
        max_body: int,
    ) -> Response:
        """Send, following up to MAX_REDIRECTS redirects; Authorization is dropped once the origin changes."""
        origin = url.origin()
        current, current_method, current_headers = url, method, dict(headers)
        for hop in range(MAX_REDIRECTS + 1):
            response = await self._send(
                registry, current_method, current, current_headers, ssl_param=ssl_param, max_body=max_body
            )
            location = response.headers.get("Location")
            if response.status not in REDIRECT_STATUSES or not location:
                return response
            if hop == MAX_REDIRECTS:
                raise TransportError(TransportKind.REDIRECT, f"more than {MAX_REDIRECTS} redirects", retryable=False)
            try:
                target = current.join(URL(location, encoded=True))
            except ValueError:
                raise TransportError(TransportKind.REDIRECT, "the Location is not a URL", retryable=False) from None
            if target.scheme not in ("http", "https") or not target.host:
                raise TransportError(TransportKind.REDIRECT, "to a URL that is not http(s)", retryable=False)
            if current.scheme == "https" and target.scheme == "http" and not insecure:
                raise TransportError(TransportKind.REDIRECT, "from https to plain http", retryable=False)
            refusal = self._host_refusal(target)
            if refusal:  # said here, with where it came from and where it led, rather than as a bare refusal
                raise TransportError(
                    TransportKind.REDIRECT_DENIED, f"to {safe_url(target)}: {refusal}", retryable=False
                )
            if target.origin() != origin:
                current_headers.pop("Authorization", None)
            if response.status == 303 and current_method != "HEAD":
                current_method = "GET"
            log.debug("%s %s redirected to %s", current_method, safe_url(current), safe_url(target))
            current = target
        raise AssertionError("unreachable")  # pragma: no cover

    def _host_refusal(self, url: URL) -> str | None:
        guard = self.settings.host_guard
        return guard(f"{url.host}:{url.port}" if url.port else str(url.host)) if guard else None

    def _check_host(self, url: URL) -> None:
        """The operator's policy for every host contacted: a redirect or a token realm may name a host the
        registry itself would not be allowed to be."""
        refusal = self._host_refusal(url)
        if refusal:
            raise RegistryError(errors.Reason.FORBIDDEN, refusal)

    async def _send(
        self,
        registry: str,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        *,
        ssl_param: SSLParam,
        max_body: int,
    ) -> Response:
        """One HTTP exchange under the registry's limits; the body is read (bounded) before the limits are left."""
        self._check_host(url)
        gate = self._gate_for(registry)
        outcome = ""  # for the request observer: set once the request is sent (its turn came)
        pull = gate.pulls is not None and counts_as_pull(method, url.path)
        demand = current_demand()
        try:
            if pull:
                await gate.pull_token(demand)
            async with gate.turn(demand):
                outcome = "cancelled"
                pull = False  # about to be sent: the quota is spent
                async with self._session_for_requests().request(
                    method, url, headers=headers, ssl=ssl_param, allow_redirects=False
                ) as response:
                    if method == "HEAD" or response.status in REDIRECT_STATUSES:
                        body = b""
                    elif response.status >= 400:
                        body = await _read_body(response, MAX_ERROR_BODY, truncate=True)
                    else:
                        body = await _read_body(response, max_body, truncate=False)
                    log.debug("%s %s -> %d", method, safe_url(url), response.status)
                    outcome = str(response.status)
                    gate.answered(method, url.path, response.status, response.headers)
                    return Response(response.status, response.headers, body, url)
        except TransportError as exc:
            outcome = exc.kind.value
            raise
        except (TimeoutError, aiohttp.ClientError) as exc:
            failure = _failure_of(exc)
            outcome = failure.kind.value if isinstance(failure, TransportError) else "refused"
            # A refused address is the operator's own policy: no aiohttp detail to chain.
            raise failure from (None if isinstance(failure, RegistryError) else exc)
        finally:
            if pull:  # the quota was taken for a request never sent
                gate.give_pull_back()
            observer = self.settings.request_observer
            if outcome and observer is not None:
                observer(registry, method, outcome)
