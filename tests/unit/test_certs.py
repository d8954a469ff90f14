"""Certificates for the local cluster carry the names and identities the servers check."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from imagestreams.localcluster.certs import CertificateAuthority, loopback_server_pair


def test_serving_certificate_names_loopback_and_chains_to_the_ca() -> None:
    ca = CertificateAuthority("ca")
    cert = x509.load_pem_x509_certificate(loopback_server_pair(ca, "server").cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_pem))


def test_client_certificate_carries_user_and_groups() -> None:
    pair = CertificateAuthority("ca").issue("alice", organizations=("system:masters", "team"), client=True)
    subject = x509.load_pem_x509_certificate(pair.cert).subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == ["alice"]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters", "team"]
