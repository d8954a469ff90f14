"""The webhook certificate plan: issue, renew from the same CA, and replace the CA without a moment untrusted."""

from __future__ import annotations

import datetime

from cryptography import x509

from imagestreams.admission.certs import CA_PUBLISH_SECONDS, Bundle, plan
from imagestreams.api.settings import OperatorSettings

T0 = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
CA_LIFE = datetime.timedelta(hours=3)
SERVING_LIFE = datetime.timedelta(hours=1)
HOSTS = ("webhook.imagestream-operator.svc", "127.0.0.1")


def at(bundle: Bundle | None, now: datetime.datetime, hosts: tuple[str, ...] = HOSTS) -> Bundle | None:
    return plan(bundle, hosts, now, ca_lifetime=CA_LIFE, serving_lifetime=SERVING_LIFE)


def certs(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def signer(bundle: Bundle) -> x509.Name:
    return certs(bundle.cert)[0].issuer


def served_is_trusted(bundle: Bundle) -> bool:
    leaf = certs(bundle.cert)[0]
    for ca in certs(bundle.trusted):
        try:
            leaf.verify_directly_issued_by(ca)
        except Exception:  # noqa: S112 - not this CA
            continue
        return True
    return False


def test_first_plan_issues_a_ca_and_a_serving_certificate_for_the_hosts() -> None:
    bundle = at(None, T0)
    assert bundle is not None
    leaf = certs(bundle.cert)[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(name.value) for name in names} == set(HOSTS)
    assert served_is_trusted(bundle)
    assert bundle.trusted == bundle.ca_cert
    assert at(bundle, T0 + datetime.timedelta(minutes=30)) is None  # nothing to do mid-life


def test_serving_certificate_is_renewed_by_the_same_ca_after_two_thirds_of_its_life() -> None:
    bundle = at(None, T0)
    assert bundle is not None
    renewed = at(bundle, T0 + datetime.timedelta(minutes=41))
    assert renewed is not None
    assert renewed.cert != bundle.cert
    assert (renewed.ca_cert, renewed.trusted) == (bundle.ca_cert, bundle.trusted)
    assert served_is_trusted(renewed)


def test_changed_hosts_get_a_new_serving_certificate() -> None:
    bundle = at(None, T0)
    assert bundle is not None
    moved = at(bundle, T0 + datetime.timedelta(minutes=1), hosts=("other.svc",))
    assert moved is not None and moved.ca_cert == bundle.ca_cert and moved.cert != bundle.cert


def test_ca_rotation_trusts_the_new_ca_before_serving_its_certificate() -> None:
    bundle = at(at(None, T0), T0 + datetime.timedelta(hours=1, minutes=50))  # the serving certificate renewed once
    assert bundle is not None
    now = T0 + datetime.timedelta(hours=2, minutes=1)  # two thirds of the CA's 3 hours
    step_one = at(bundle, now)
    assert step_one is not None
    assert step_one.ca_cert != bundle.ca_cert
    assert certs(step_one.trusted)[0] == certs(step_one.ca_cert)[0]  # new CA first, old still trusted
    assert certs(bundle.ca_cert)[0] in certs(step_one.trusted)
    assert step_one.cert == bundle.cert and served_is_trusted(step_one)  # still the old CA's certificate
    assert at(step_one, now + datetime.timedelta(seconds=CA_PUBLISH_SECONDS - 1)) is None  # not yet
    step_two = at(step_one, now + datetime.timedelta(seconds=CA_PUBLISH_SECONDS))
    assert step_two is not None
    assert signer(step_two) == certs(step_two.ca_cert)[0].subject
    assert served_is_trusted(step_two)
    assert len(certs(step_two.trusted)) == 2  # the old CA stays until it expires
    later = at(step_two, T0 + CA_LIFE + datetime.timedelta(seconds=1))
    assert later is not None and certs(later.trusted) == [certs(step_two.ca_cert)[0]]


def test_unreadable_or_expired_state_starts_over() -> None:
    bundle = at(None, T0)
    assert bundle is not None
    broken = Bundle(b"junk", b"junk", b"junk", b"junk", b"", T0)
    fresh = at(broken, T0)
    assert fresh is not None and served_is_trusted(fresh)
    expired = at(bundle, T0 + CA_LIFE + datetime.timedelta(minutes=10))
    assert expired is not None and expired.ca_cert != bundle.ca_cert and served_is_trusted(expired)


def test_short_lifetimes_are_counted_from_issue_not_from_the_backdated_start() -> None:
    """Certificates are backdated by minutes (clock skew); a 30 s certificate must still last its 20 s before
    renewal, not be due at once (the rotation test runs with lifetimes this short)."""

    def short(bundle: Bundle | None, now: datetime.datetime) -> Bundle | None:
        return plan(
            bundle,
            HOSTS,
            now,
            ca_lifetime=datetime.timedelta(seconds=60),
            serving_lifetime=datetime.timedelta(seconds=30),
            ca_publish_seconds=5,
        )

    bundle = short(None, T0)
    assert bundle is not None
    assert short(bundle, T0 + datetime.timedelta(seconds=19)) is None
    renewed = short(bundle, T0 + datetime.timedelta(seconds=20))
    assert renewed is not None and renewed.ca_cert == bundle.ca_cert and renewed.cert != bundle.cert
    assert short(renewed, T0 + datetime.timedelta(seconds=39)) is None
    step_one = short(renewed, T0 + datetime.timedelta(seconds=40))  # two thirds of the CA's minute
    assert step_one is not None and step_one.ca_cert != bundle.ca_cert and step_one.cert == renewed.cert
    assert short(step_one, T0 + datetime.timedelta(seconds=44)) is None  # the publish delay is the one given
    step_two = short(step_one, T0 + datetime.timedelta(seconds=45))
    assert step_two is not None and signer(step_two) == certs(step_two.ca_cert)[0].subject
    assert served_is_trusted(step_two)


def test_the_default_publish_delay_is_the_operators_setting() -> None:
    assert OperatorSettings().webhook_ca_publish_seconds == CA_PUBLISH_SECONDS == 30
