"""Debian's docker-registry (distribution 2.8) on loopback, in three variants.

- plain:     HTTP, anonymous push and pull.
- tls-basic: HTTPS with a certificate from the cluster's CA, htpasswd (bcrypt) basic auth.
- token:     HTTP with Docker token auth, served by tokenserver.py in its own process.

Every variant can post push notifications to an endpoint URL.
"""

from __future__ import annotations

import json
import secrets
import ssl
import sys
import urllib.request
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import bcrypt
import yaml

from imagestreams.localcluster.certs import CertificateAuthority, loopback_server_pair
from imagestreams.localcluster.processes import ManagedProcess, free_port
from imagestreams.localcluster.records import ProcessRecord

READY_TIMEOUT_SECONDS = 15.0
TOKEN_SERVICE = "imagestreams-local-registry"
TOKEN_ISSUER = "imagestreams-local-token-server"
# The Go garbage collector's target for the registries. docker-registry 2.8 allocates a 4 MiB read buffer for every
# blob it serves (distribution's registry/storage/filereader.go, fileReaderBufferSize), so on its small heap the
# default of 100 collects every few blob reads: an import's GETs cost it about 40 % less CPU at 400
# (bench/registry_gc.py). The registry stands for one on another host; here it shares two cores with the rest.
REGISTRY_GOGC = "400"


class RegistryKind(StrEnum):
    PLAIN = "plain"
    TLS_BASIC = "tls-basic"
    TOKEN = "token"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass
class Registry:
    """A running registry: where it is, how to trust it, who may use it."""

    kind: RegistryKind
    host: str  # "127.0.0.1:PORT", the form image references use
    scheme: str
    ca_file: Path | None
    pusher: Credentials | None  # may push and pull
    reader: Credentials | None  # may only pull
    notifications_url: str | None
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def _registry_config(
    root: Path,
    *,
    tls: tuple[Path, Path] | None,
    htpasswd: Path | None,
    token: tuple[str, Path] | None,
    notifications_url: str | None,
) -> dict[str, object]:
    http: dict[str, object] = {"addr": "127.0.0.1:0", "secret": secrets.token_hex(16)}
    if tls:
        http["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "warn", "fields": {"service": "registry"}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "delete": {"enabled": True},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
    }
    if htpasswd:
        config["auth"] = {"htpasswd": {"realm": "imagestreams-local", "path": str(htpasswd)}}
    elif token:
        realm, bundle = token
        config["auth"] = {
            "token": {
                "realm": realm,
                "service": TOKEN_SERVICE,
                "issuer": TOKEN_ISSUER,
                "rootcertbundle": str(bundle),
            }
        }
    if notifications_url:
        config["notifications"] = {
            "events": {"includereferences": True},
            "endpoints": [
                {
                    "name": "local",
                    "url": notifications_url,
                    "timeout": "2s",
                    "threshold": 5,
                    "backoff": "1s",
                    # Manifest pushes are what an image stream cares about; blob and pull events are noise.
                    "ignore": {"mediatypes": ["application/octet-stream"], "actions": ["pull"]},
                }
            ],
        }
    return config


def _ping(url: str, context: ssl.SSLContext | None) -> bool:
    request = urllib.request.Request(f"{url}/v2/", method="GET")
    try:
        with urllib.request.urlopen(request, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as error:
        return error.code == 401  # up, and asking for credentials
    except OSError:
        return False


def start_registry(
    kind: RegistryKind,
    workdir: Path,
    binary: Path,
    ca: CertificateAuthority,
    notifications_url: str | None = None,
    *,
    record: ProcessRecord | None = None,
    gogc: str = REGISTRY_GOGC,
) -> Registry:
    """Write the config for one registry variant, start it (and its token server) and wait until it answers."""
    port = free_port()
    name = f"registry-{kind.value}-{port}"
    root = workdir / name
    root.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    processes: list[ManagedProcess] = []
    pusher = reader = None
    tls_files = htpasswd = token = None
    scheme = "http"
    ca_file = None

    if kind is not RegistryKind.PLAIN:
        pusher = Credentials("pusher", secrets.token_urlsafe(12))
        reader = Credentials("reader", secrets.token_urlsafe(12))
    if kind is RegistryKind.TLS_BASIC:
        scheme = "https"
        tls_files = loopback_server_pair(ca, "imagestreams-local-registry").write(root, "server")
        ca_file = root / "ca.crt"
        ca_file.write_bytes(ca.cert_pem)
        htpasswd = root / "htpasswd"
        assert pusher and reader
        htpasswd.write_text("".join(f"{c.username}:{_bcrypt(c.password)}\n" for c in (pusher, reader)))
    elif kind is RegistryKind.TOKEN:
        assert pusher and reader
        token_server, realm, bundle = _start_token_server(root, logs, name, pusher, reader, record=record)
        processes.append(token_server)
        token = (realm, bundle)

    config_path = root / "config.yml"
    config_path.write_text(
        yaml.safe_dump(
            _registry_config(root, tls=tls_files, htpasswd=htpasswd, token=token, notifications_url=notifications_url)
        )
    )
    process = ManagedProcess(
        name,
        [str(binary), "serve", str(config_path)],
        logs,
        env={"REGISTRY_HTTP_ADDR": f"127.0.0.1:{port}", "GOGC": gogc},
        record=record,
    )
    process.start()
    processes.append(process)
    registry = Registry(
        kind=kind,
        host=f"127.0.0.1:{port}",
        scheme=scheme,
        ca_file=ca_file,
        pusher=pusher,
        reader=reader,
        notifications_url=notifications_url,
        processes=processes,
    )
    context = registry.ssl_context() if scheme == "https" else None
    try:
        process.wait_until(lambda: _ping(registry.url, context), READY_TIMEOUT_SECONDS, "GET /v2/ answering")
    except BaseException:
        registry.stop()
        raise
    return registry


def _start_token_server(
    root: Path, logs: Path, name: str, pusher: Credentials, reader: Credentials, *, record: ProcessRecord | None
) -> tuple[ManagedProcess, str, Path]:
    """Start the token server for a token-auth registry; returns it, its realm URL and the signer CA bundle."""
    # The signer chain must exist before the registry starts: the registry reads the bundle once.
    signer_ca = CertificateAuthority("imagestreams-local-token-ca")
    bundle = root / "token-ca.crt"
    bundle.write_bytes(signer_ca.cert_pem)
    signer_cert, signer_key = signer_ca.issue("imagestreams-local-token-signer").write(root, "token-signer")
    users_file = root / "token-users.json"
    grants = ((pusher, ["pull", "push", "delete"]), (reader, ["pull"]))
    users = {who.username: {"bcrypt": _bcrypt(who.password), "actions": actions} for who, actions in grants}
    users_file.write_text(json.dumps(users))
    users_file.chmod(0o600)
    port = free_port()
    server = ManagedProcess(
        f"{name}-tokenserver",
        [
            sys.executable,
            "-m",
            "imagestreams.localcluster.tokenserver",
            f"--port={port}",
            f"--issuer={TOKEN_ISSUER}",
            f"--signer-cert={signer_cert}",
            f"--signer-key={signer_key}",
            f"--users={users_file}",
        ],
        logs,
        record=record,
    )
    server.start()
    realm = f"http://127.0.0.1:{port}/token"
    try:
        server.wait_until(lambda: _token_server_up(realm), READY_TIMEOUT_SECONDS, "token server answering")
    except BaseException:
        server.stop()
        raise
    return server, realm, bundle


def _bcrypt(password: str) -> str:
    # distribution accepts only bcrypt in htpasswd; a low cost keeps start-up fast for throw-away secrets.
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()


def _token_server_up(realm: str) -> bool:
    with urllib.request.urlopen(f"{realm}?service={TOKEN_SERVICE}", timeout=2) as response:
        return bool(response.status == 200)
