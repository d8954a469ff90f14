"""The token server grants only what a user may do, and its JWTs verify with the signer's key."""

from __future__ import annotations

import base64
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from imagestreams.localcluster.certs import CertificateAuthority
from imagestreams.localcluster.tokenserver import TokenIssuer, granted_access


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_reader_gets_pull_only() -> None:
    access = granted_access(["repository:team/app:pull,push"], {"pull"})
    assert access == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]


def test_anonymous_gets_nothing() -> None:
    assert granted_access(["repository:team/app:pull"], set()) == []


def test_non_repository_scopes_are_ignored() -> None:
    assert granted_access(["registry:catalog:*", "garbage"], {"pull", "push"}) == []


def test_token_is_an_es256_jwt_with_the_signer_in_x5c() -> None:
    pair = CertificateAuthority("token-ca").issue("signer")
    key = serialization.load_pem_private_key(pair.key, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate(pair.cert)
    token = TokenIssuer("issuer", key, cert).token("alice", "svc", [{"type": "repository"}])

    header_b64, claims_b64, signature_b64 = token.split(".")
    header, claims = json.loads(_unb64(header_b64)), json.loads(_unb64(claims_b64))
    assert header["alg"] == "ES256"
    assert base64.b64decode(header["x5c"][0]) == cert.public_bytes(serialization.Encoding.DER)
    assert (claims["iss"], claims["sub"], claims["aud"]) == ("issuer", "alice", "svc")
    assert claims["exp"] > claims["nbf"]
    raw = _unb64(signature_b64)
    signature = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
