"""LeaderElection against the real apiserver: acquiring, and releasing the Lease as client-go's ReleaseOnCancel does.

The two-replica hand-over through SIGTERM is in test_rbac.py, under the shipped ServiceAccount.
"""

from __future__ import annotations

from lightkube import Client
from lightkube.resources.coordination_v1 import Lease

from imagestreams.kube.leader import RELEASED_LEASE_SECONDS, LeaderElection


def test_release_clears_the_holder_as_client_go_does_and_a_standby_takes_over_at_once(
    admin: Client, namespace: str
) -> None:
    leader = LeaderElection(admin, namespace, "lease", "replica-a", lease_seconds=15)
    standby = LeaderElection(admin, namespace, "lease", "replica-b", lease_seconds=15)
    assert leader.try_acquire_or_renew()
    assert not standby.try_acquire_or_renew()  # held, and 15 s from expiring

    assert leader.release()
    lease = admin.get(Lease, "lease", namespace=namespace)
    assert lease.spec is not None
    assert not lease.spec.holderIdentity  # "" as client-go writes it
    assert lease.spec.leaseDurationSeconds == RELEASED_LEASE_SECONDS == 1
    assert lease.spec.acquireTime is not None and lease.spec.acquireTime == lease.spec.renewTime
    assert lease.spec.leaseTransitions == 0  # the next holder counts the transition
    assert not leader.try_acquire_or_renew()  # released for good: no renewal takes it back

    assert standby.try_acquire_or_renew()  # at once, without waiting for the 15 s
    lease = admin.get(Lease, "lease", namespace=namespace)
    assert lease.spec is not None
    assert (lease.spec.holderIdentity, lease.spec.leaseDurationSeconds, lease.spec.leaseTransitions) == (
        "replica-b",
        15,
        1,
    )
    assert not leader.release()  # not its Lease any more: left alone
    lease = admin.get(Lease, "lease", namespace=namespace)
    assert lease.spec is not None and lease.spec.holderIdentity == "replica-b"


def test_release_without_a_lease_does_nothing(admin: Client, namespace: str) -> None:
    assert not LeaderElection(admin, namespace, "absent", "replica-a").release()
