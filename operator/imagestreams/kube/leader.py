"""Leader election with a coordination.k8s.io Lease, so several operator replicas can run and one acts.

Kopf's own peering is priority-based and pauses only Kopf's handlers, not the operator's import
workers and scheduler, so it cannot keep two replicas from acting at once. Instead the process
waits for the Lease before it starts Kopf at all, renews it in a thread, and ends itself when it
cannot renew in time: a replica that is not sure it leads never acts.

On a graceful stop (SIGTERM), once Kopf and the workers have stopped, the leader releases the Lease
as client-go's `ReleaseOnCancel` does: holderIdentity empty, leaseDurationSeconds 1, acquire and
renew times now. A standby checks the Lease every `retry_every` seconds and takes it over at once,
instead of waiting for it to expire.
"""

from __future__ import annotations

import datetime
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lightkube import ApiError, Client
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

logger = logging.getLogger(__name__)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# How often a standby looks at the Lease (client-go's RetryPeriod): a released Lease is taken over within this.
STANDBY_RETRY_SECONDS = 1.0
# The leaseDurationSeconds a released Lease is left with, as client-go leaves it.
RELEASED_LEASE_SECONDS = 1


@dataclass
class LeaderElection:
    client: Client
    namespace: str
    name: str
    identity: str
    lease_seconds: int = 15
    # Told of each attempt to acquire or renew, from whichever thread made it, for health and metrics: True when
    # this process holds the Lease afterwards, False when another does (or it was released), None when the attempt
    # failed (the API server did not answer, or refused).
    observer: Callable[[bool | None], None] | None = None
    # Serialises renewals with the release, so no renewal lands after it; set once released.
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _released: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    @property
    def renew_every(self) -> float:
        return self.lease_seconds / 3

    @property
    def retry_every(self) -> float:
        return min(STANDBY_RETRY_SECONDS, self.renew_every)

    def _expired(self, lease: Lease, now: datetime.datetime) -> bool:
        spec = lease.spec
        if spec is None or spec.renewTime is None or not spec.holderIdentity:
            return True
        duration = spec.leaseDurationSeconds or self.lease_seconds
        return spec.renewTime + datetime.timedelta(seconds=duration) < now

    def try_acquire_or_renew(self) -> bool:
        """One attempt: True when this process holds the Lease afterwards (never after `release`)."""
        with self._lock:
            if self._released.is_set():
                return False
            return self._try_acquire_or_renew()

    def _try_acquire_or_renew(self) -> bool:
        now = _now()
        try:
            lease = self.client.get(Lease, self.name, namespace=self.namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
            lease = Lease(
                metadata=ObjectMeta(name=self.name, namespace=self.namespace),
                spec=LeaseSpec(
                    holderIdentity=self.identity,
                    leaseDurationSeconds=self.lease_seconds,
                    acquireTime=now,
                    renewTime=now,
                    leaseTransitions=0,
                ),
            )
            try:
                self.client.create(lease)
            except ApiError as conflict:
                if conflict.status.code == 409:
                    return False  # another replica created it first
                raise
            return True
        spec = lease.spec or LeaseSpec()
        if spec.holderIdentity != self.identity:
            if not self._expired(lease, now):
                return False
            spec.leaseTransitions = (spec.leaseTransitions or 0) + 1
            spec.acquireTime = now
        spec.holderIdentity = self.identity
        spec.leaseDurationSeconds = self.lease_seconds
        spec.renewTime = now
        lease.spec = spec
        try:
            self.client.replace(lease)  # carries resourceVersion: a concurrent change makes this fail
        except ApiError as error:
            if error.status.code == 409:
                return False
            raise
        return True

    def wait_until_leader(self) -> None:
        logger.info("waiting to become the leader (Lease %s/%s) as %s", self.namespace, self.name, self.identity)
        while True:
            try:
                held = self.try_acquire_or_renew()
            except ApiError as error:
                self._observe(None)
                logger.warning("leader election: %s", error.status.message)
            else:
                self._observe(held)
                if held:
                    logger.info("became the leader (Lease %s/%s) as %s", self.namespace, self.name, self.identity)
                    return
            time.sleep(self.retry_every)

    def _observe(self, held: bool | None) -> None:
        if self.observer is not None:
            self.observer(held)

    def release(self) -> bool:
        """Give the Lease up at once, as client-go's ReleaseOnCancel does, so a standby need not wait for it to expire.

        Call it only once this process has stopped acting. No renewal happens afterwards. True when the Lease was
        released; False when it was not this process's (or is gone), or the API server could not be reached: the
        Lease then expires on its own.
        """
        with self._lock:
            self._released.set()
            self._observe(False)
            for _ in range(3):  # a conflict means the Lease changed meanwhile: look again
                try:
                    outcome = self._release_once()
                except Exception as error:  # API and network errors alike
                    logger.warning("could not release the Lease %s/%s: %s", self.namespace, self.name, error)
                    return False
                if outcome is not None:
                    return outcome
            return False

    def _release_once(self) -> bool | None:
        """True when released, False when there is nothing of ours to release, None on a write conflict."""
        try:
            lease = self.client.get(Lease, self.name, namespace=self.namespace)
        except ApiError as error:
            if error.status.code == 404:
                return False
            raise
        spec = lease.spec
        if spec is None or spec.holderIdentity != self.identity:
            return False
        now = _now()
        spec.holderIdentity = ""
        spec.leaseDurationSeconds = RELEASED_LEASE_SECONDS
        spec.acquireTime = now
        spec.renewTime = now  # leaseTransitions stays: the next holder counts the transition
        try:
            self.client.replace(lease)  # with its resourceVersion: never over another replica's write
        except ApiError as error:
            if error.status.code == 409:
                return None
            raise
        logger.info("released the Lease %s/%s as %s", self.namespace, self.name, self.identity)
        return True

    def keep_renewing(self) -> threading.Thread:
        """Renew in a daemon thread. The process stops itself when another replica holds the Lease, or when
        no renewal has succeeded for two thirds of the lease (checked by a watchdog, so a hanging request
        cannot keep a former leader acting past the Lease)."""
        deadline = 2 * self.renew_every
        state = {"last_success": time.monotonic(), "stopping": False}

        def stop(reason: str) -> None:
            if not state["stopping"]:
                state["stopping"] = True
                logger.error(
                    "%s (Lease %s/%s); stopping so another replica can lead", reason, self.namespace, self.name
                )
                self._stop_process()

        def renew() -> None:
            while not state["stopping"]:
                if self._released.wait(self.renew_every):
                    return  # a graceful stop gave the Lease up: nothing to renew
                try:
                    held = self.try_acquire_or_renew()
                except Exception as error:  # network errors as much as API errors
                    self._observe(None)
                    logger.warning("could not renew the Lease: %s", error)
                    continue
                if held:
                    state["last_success"] = time.monotonic()
                    self._observe(True)
                elif not self._released.is_set():
                    self._observe(False)
                    stop("another replica holds the Lease")

        def watchdog() -> None:
            while not state["stopping"]:
                if self._released.wait(1.0):
                    return
                if time.monotonic() - float(state["last_success"]) > deadline:
                    stop("could not renew the Lease in time")

        threading.Thread(target=watchdog, name="leader-watchdog", daemon=True).start()
        thread = threading.Thread(target=renew, name="leader-election", daemon=True)
        thread.start()
        return thread

    @staticmethod
    def _stop_process() -> None:
        # A graceful stop first (Kopf finishes), and a hard one if that takes longer than the lease margin.
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Timer(5.0, lambda: os._exit(1)).start()
