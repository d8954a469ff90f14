"""A small Docker token server (the registry "token" auth spec) for the token-auth registry.

Written by hand because it is test infrastructure of about a hundred lines: no
maintained package serves Docker registry tokens from Python. It answers
GET /token?service=...&scope=repository:NAME:ACTIONS with an ES256 JWT whose
x5c header carries the signing certificate that the registry trusts via its
`rootcertbundle`. Users come from a JSON file: {user: {"bcrypt": hash, "actions": [...]}}.
Anonymous callers get a token that grants nothing; a wrong password gets 401.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import secrets
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

TOKEN_LIFETIME_SECONDS = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def granted_access(scopes: list[str], allowed_actions: set[str]) -> list[dict[str, Any]]:
    """The access claim for the requested scopes, limited to the user's actions."""
    access = []
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) < 3 or parts[0] != "repository":
            continue
        # Repository names never hold ':' but a registry host in the scope could; actions are last.
        name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
        allowed = [action for action in actions if action in allowed_actions or "*" in allowed_actions]
        if allowed:
            access.append({"type": "repository", "name": name, "actions": allowed})
    return access


class TokenIssuer:
    def __init__(self, issuer: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.issuer = issuer
        self._key = key
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    def token(self, subject: str, audience: str, access: list[dict[str, Any]]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [self._x5c]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input}.{_b64url(signature)}"


def make_handler(issuer: TokenIssuer, users: dict[str, dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # The default access log line (request line and status, never headers or credentials)
        # stays on: benchmarks count token requests with it.

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authenticate(self) -> str | None:
            """The user name, '' for anonymous, None for bad credentials."""
            header = self.headers.get("Authorization", "")
            if not header.startswith("Basic "):
                return ""
            try:
                username, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            user = users.get(username)
            if user is None or not bcrypt.checkpw(password.encode(), user["bcrypt"].encode()):
                return None
            return username

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/token":
                self._reply(404, {"errors": [{"code": "NOT_FOUND", "message": "only /token is served"}]})
                return
            query = parse_qs(url.query)
            username = self._authenticate()
            if username is None:
                self._reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid username/password"}]})
                return
            actions = set(users[username]["actions"]) if username else set()
            access = granted_access(query.get("scope", []), actions)
            token = issuer.token(username, query.get("service", [""])[0], access)
            self._reply(
                200,
                {
                    "token": token,
                    "access_token": token,
                    "expires_in": TOKEN_LIFETIME_SECONDS,
                    "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                },
            )

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--signer-cert", type=Path, required=True)
    parser.add_argument("--signer-key", type=Path, required=True)
    parser.add_argument("--users", type=Path, required=True)
    args = parser.parse_args()
    key = serialization.load_pem_private_key(args.signer_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SystemExit("tokenserver: the signer key must be an EC P-256 key")
    cert = x509.load_pem_x509_certificate(args.signer_cert.read_bytes())
    users = json.loads(args.users.read_text())
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(TokenIssuer(args.issuer, key, cert), users))
    print(f"token server listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
