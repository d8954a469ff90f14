"""The webhook's own CA and serving certificate: when to issue, when to rotate, what the API server must trust.

No cluster I/O here (admission/certstore.py keeps the result in a Secret and the webhook configurations); the clock
is a parameter. The rotation never leaves the API server without a trusted certificate to talk to:

- the serving certificate is re-issued by the same CA once two thirds of its life have passed (the API server
  already trusts that CA, so the switch is invisible);
- the CA is replaced once two thirds of its life have passed, in two steps: the new CA is first added to the trusted
  bundle next to the old one, and only after CA_PUBLISH_SECONDS (for the configurations to reach every API server)
  does a serving certificate from the new CA replace the old one; the old CA leaves the bundle once it expires.

A certificate's life is counted from when it was issued, not from its backdated notBefore: with the five minutes of
backdating counted, a certificate that lives less than ten minutes would be due at once and re-issued at every check.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# How long a new CA is trusted before a certificate it issued is served. The API server reads webhook configurations
# from a watch, within a second; the margin covers several API servers and a slow watch.
CA_PUBLISH_SECONDS = 30.0
RENEW_AT_FRACTION = 2 / 3  # of a certificate's life
# Clocks of the API server and of the operator may differ a little.
BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class Bundle:
    """What the Secret holds (PEM), and since when the signing CA is in `trusted`."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes  # the serving certificate
    key: bytes
    trusted: bytes  # the CA bundle the webhook configurations carry: the signing CA, and the previous one for a while
    ca_trusted_since: datetime.datetime

    @property
    def serving_pair(self) -> tuple[bytes, bytes]:
        return self.cert, self.key


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def new_ca(now: datetime.datetime, lifetime: datetime.timedelta, common_name: str = "") -> tuple[bytes, bytes]:
    """A self-signed CA (PEM certificate and key) that may sign leaf certificates only."""
    key = _key()
    name = x509.Name(
        [
            x509.NameAttribute(
                NameOID.COMMON_NAME, common_name or f"imagestream-operator-webhook-ca@{int(now.timestamp())}"
            )
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _cert_pem(cert), _key_pem(key)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def new_serving(
    ca_cert_pem: bytes, ca_key_pem: bytes, hosts: Sequence[str], now: datetime.datetime, lifetime: datetime.timedelta
) -> tuple[bytes, bytes]:
    """A serving certificate for `hosts` (DNS names or IP addresses) from the CA, never outliving it."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _key()
    not_after = min(now + lifetime, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_san(host) for host in hosts]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _cert_pem(cert) + ca_cert_pem, _key_pem(key)


def _certificates(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem) if pem.strip() else []


def _due(cert: x509.Certificate, now: datetime.datetime) -> bool:
    """Two thirds of its life since it was issued are over (or it is not valid yet)."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    issued = min(start + BACKDATE, end)
    return now >= issued + (end - issued) * RENEW_AT_FRACTION or now < start


def _hosts(cert: x509.Certificate) -> set[str]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(name.value) for name in names}


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert.issuer != ca.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def plan(
    current: Bundle | None,
    hosts: Sequence[str],
    now: datetime.datetime,
    *,
    ca_lifetime: datetime.timedelta,
    serving_lifetime: datetime.timedelta,
    ca_publish_seconds: float = CA_PUBLISH_SECONDS,
) -> Bundle | None:
    """The bundle to store now, or None when `current` is good as it is. A new CA is served `ca_publish_seconds`
    after it was first trusted."""
    if current is None:
        return _fresh(hosts, now, ca_lifetime, serving_lifetime)
    try:
        ca = x509.load_pem_x509_certificate(current.ca_cert)
        serving = x509.load_pem_x509_certificate(current.cert)
        trusted = _certificates(current.trusted)
    except ValueError:
        return _fresh(hosts, now, ca_lifetime, serving_lifetime)
    if now >= ca.not_valid_after_utc:  # too late for a gentle rotation: start over
        return _fresh(hosts, now, ca_lifetime, serving_lifetime)
    # The signing CA first, then earlier CAs that have not expired (the serving certificate may still be theirs).
    kept = [cert for cert in trusted if cert.not_valid_after_utc > now and cert != ca]
    updated = replace(current, trusted=_cert_pem(ca) + b"".join(_cert_pem(cert) for cert in kept))
    if _due(ca, now):
        ca_cert, ca_key = new_ca(now, ca_lifetime)
        # Step one: trust the new CA next to the old; the old CA's serving certificate stays in use for now.
        return replace(updated, ca_cert=ca_cert, ca_key=ca_key, trusted=ca_cert + updated.trusted, ca_trusted_since=now)
    if _issued_by(serving, ca):
        reissue = _due(serving, now) or _hosts(serving) != set(hosts)
    else:
        # Step two: serve a certificate of the new CA once the API servers have had time to trust it (at once if the
        # old one has expired: nothing would be served otherwise).
        published = (now - current.ca_trusted_since).total_seconds() >= ca_publish_seconds
        reissue = published or now >= serving.not_valid_after_utc
    if reissue:
        cert, key = new_serving(updated.ca_cert, updated.ca_key, hosts, now, serving_lifetime)
        updated = replace(updated, cert=cert, key=key)
    return None if updated == current else updated


def _fresh(
    hosts: Sequence[str], now: datetime.datetime, ca_lifetime: datetime.timedelta, serving_lifetime: datetime.timedelta
) -> Bundle:
    ca_cert, ca_key = new_ca(now, ca_lifetime)
    cert, key = new_serving(ca_cert, ca_key, hosts, now, serving_lifetime)
    return Bundle(ca_cert, ca_key, cert, key, ca_cert, now)
