"""The plugin's connection to the API server: lightkube's client on an httpx transport that connects as kubectl does.

Written by hand: lightkube (1.0.1) builds its httpx client from the kubeconfig itself, and there it takes exec
plugins only as v1alpha1/v1beta1 tokens, ignores `expirationTimestamp`, never sets KUBERNETES_EXEC_INFO, and
ignores `tls-server-name` and `proxy-url`; the official Python client does these for its own urllib3 stack only.
lightkube does accept an httpx transport, so it is given one that owns what client-go's transport owns: the TLS
context (trust, client certificate, and the name the server's certificate is checked against), the proxy, and the
credentials. lightkube sees only the server URL and an anonymous user; its kubeconfig code is not used.

An exec plugin runs before the first request and again once its credential has expired, or after a 401 (for the
next request, as client-go: the refused request is not repeated). A client certificate from a plugin needs a new
TLS context, so a new certificate replaces the connection pool. Credentials are never logged or put in a message.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2

from imagestreams.cli.clientconfig import (
    ClusterSettings,
    Connection,
    UserSettings,
    environment_proxy,
    exec_cluster,
    redact_url,
    request_headers,
)
from imagestreams.cli.errors import CliError
from imagestreams.cli.execcredential import (
    CredentialError,
    ExecCredential,
    ExecPlugin,
    exec_info,
    is_expired,
    is_interactive,
    parse_exec_output,
)

if TYPE_CHECKING:
    from lightkube import Client

    from imagestreams.cli.kubeconfig import Target

Clock = Callable[[], datetime.datetime]
EXEC_INFO = "KUBERNETES_EXEC_INFO"
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


# --- TLS ---------------------------------------------------------------------------------------------------------


def _read(path: str, what: str, owner: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CliError(f"unable to read {what} {path} for {owner} due to {error.strerror or error}") from None


def certificate_authority(cluster: ClusterSettings) -> bytes | None:
    """The cluster's CA bundle, from its data or its file."""
    if cluster.certificate_authority_data:
        return cluster.certificate_authority_data
    if cluster.certificate_authority:
        return _read(cluster.certificate_authority, "certificate-authority", cluster.name)
    return None


def _load_client_pair(context: ssl.SSLContext, certificate: bytes, key: bytes, owner: str) -> None:
    # The ssl module loads a certificate chain from files only: the pair lives in a private directory for the
    # moment it takes to load, and is deleted at once.
    directory = tempfile.mkdtemp(prefix="kubectl-imagestream-")
    try:
        certificate_path, key_path = Path(directory, "client.crt"), Path(directory, "client.key")
        for path, data in ((certificate_path, certificate), (key_path, key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
        context.load_cert_chain(certificate_path, key_path)
    except ssl.SSLError:
        raise CliError(f"the client certificate and key of {owner} are not a matching PEM pair") from None
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def tls_context(cluster: ClusterSettings, user: UserSettings, exec_pair: tuple[str, str] | None) -> ssl.SSLContext:
    """Trust as the cluster says (its CA, none with insecure-skip-tls-verify, else the system's), and the user's
    client certificate: the plugin's when it gave one, else the kubeconfig's."""
    owner = f'cluster "{cluster.name}"'
    if cluster.insecure_skip_tls_verify:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        bundle = certificate_authority(cluster)
        if bundle is None:
            context = httpx2.create_ssl_context()  # the system's trust, SSL_CERT_FILE and SSL_CERT_DIR honoured
        else:
            # As Go's AppendCertsFromPEM, only the PEM blocks count: bundles carry comments, not always ASCII.
            blocks = _PEM_CERTIFICATE.findall(bundle)
            try:
                context = ssl.create_default_context(cadata=b"\n".join(blocks).decode("ascii") if blocks else bundle)
            except (ssl.SSLError, UnicodeDecodeError, ValueError):
                raise CliError(f"the certificate authority of {owner} holds no usable certificate") from None
    user_owner = f'user "{user.name}"'
    if exec_pair is not None:
        _load_client_pair(context, exec_pair[0].encode(), exec_pair[1].encode(), f"the exec plugin of {user_owner}")
    elif user.has_client_certificate:
        certificate = user.client_certificate_data or _read(user.client_certificate or "", "client-cert", user.name)
        key = user.client_key_data or _read(user.client_key or "", "client-key", user.name)
        _load_client_pair(context, certificate, key, user_owner)
    return context


def _verification_failure(error: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


# --- exec credential plugins -------------------------------------------------------------------------------------


class ExecAuthenticator:
    """One exec plugin's credential, run on demand and kept until it expires (client-go's exec Authenticator)."""

    def __init__(
        self,
        plugin: ExecPlugin,
        cluster_info: Callable[[], Mapping[str, Any]],
        *,
        clock: Clock = utc_now,
        terminal: Callable[[], bool] = stdin_is_terminal,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.plugin = plugin
        self._cluster_info = cluster_info
        self._clock = clock
        self._terminal = terminal
        self._environ = environ
        self._lock = threading.Lock()  # an interactive plugin must run once, not once per thread
        self._credential: ExecCredential | None = None

    def credential(self) -> ExecCredential:
        with self._lock:
            if self._credential is None or is_expired(self._credential, self._clock()):
                self._credential = self._run()
            return self._credential

    def refused(self, credential: ExecCredential) -> None:
        """The server answered 401 to `credential`: the next request runs the plugin again."""
        with self._lock:
            if self._credential is credential:
                self._credential = None

    def _run(self) -> ExecCredential:
        plugin = self.plugin
        interactive = is_interactive(plugin.interactive_mode, self._terminal())
        cluster = self._cluster_info() if plugin.provide_cluster_info else None
        environment = {**(os.environ if self._environ is None else self._environ), **dict(plugin.env)}
        environment[EXEC_INFO] = exec_info(plugin, cluster, interactive)
        try:
            # stderr is the user's, as in kubectl: a plugin prints its prompts and complaints there.
            completed = subprocess.run(
                [plugin.command, *plugin.args],
                env=environment,
                stdin=None if interactive else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                check=False,
            )
        except OSError:
            # client-go prints the kubeconfig's installHint under the error; here it joins the one error line.
            hint = f": {' '.join(plugin.install_hint.split())}" if plugin.install_hint.strip() else ""
            raise CredentialError(f"exec: executable {plugin.command} not found{hint}") from None
        if completed.returncode < 0:
            raise CredentialError(f"exec: executable {plugin.command} was killed by signal {-completed.returncode}")
        if completed.returncode != 0:
            raise CredentialError(f"exec: executable {plugin.command} failed with exit code {completed.returncode}")
        return parse_exec_output(plugin.api_version, completed.stdout)


# --- the transport -----------------------------------------------------------------------------------------------


class KubeTransport(httpx2.BaseTransport):
    """TLS, proxy and credentials for one kubeconfig connection, in front of httpx's own connection pool."""

    def __init__(
        self,
        connection: Connection,
        *,
        clock: Clock = utc_now,
        terminal: Callable[[], bool] = stdin_is_terminal,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self.cluster, self.user = connection.cluster, connection.user
        self.proxy = self.cluster.proxy_url or environment_proxy(self.cluster.server, environ)
        self.authenticator: ExecAuthenticator | None = None
        if self.user.exec_plugin is not None and self.user.runs_exec_plugin:
            self.authenticator = ExecAuthenticator(
                self.user.exec_plugin, self._exec_cluster, clock=clock, terminal=terminal, environ=environ
            )
        self._token: str | None = None
        self._pool: httpx2.HTTPTransport | None = None
        self._pool_pair: tuple[str, str] | None = None
        self._lock = threading.Lock()

    def _exec_cluster(self) -> Mapping[str, Any]:
        try:
            bundle = certificate_authority(self.cluster)
        except CliError as error:
            raise CredentialError(f"failed to load CA bundle for execProvider: {error}") from None
        return exec_cluster(self.cluster, bundle)

    def _kubeconfig_token(self) -> str:
        """The kubeconfig's token, or its tokenFile's, read on first use."""
        if self._token is None:
            user = self.user
            self._token = user.token
            if not self._token and user.token_file:
                self._token = _read(user.token_file, "tokenFile", user.name).decode("utf-8", "replace").strip()
        return self._token

    def _pool_for(self, exec_pair: tuple[str, str] | None) -> httpx2.HTTPTransport:
        with self._lock:
            if self._pool is None or exec_pair != self._pool_pair:
                if self._pool is not None:
                    self._pool.close()  # connections made with the old certificate go with it
                context = tls_context(self.cluster, self.user, exec_pair)
                proxy = None
                if self.proxy:
                    # Go dials an https proxy with the cluster's TLS settings too: its CA, the client certificate.
                    https = self.proxy.lower().startswith("https://")
                    proxy = httpx2.Proxy(self.proxy, ssl_context=context if https else None)
                self._pool = httpx2.HTTPTransport(verify=context, proxy=proxy, trust_env=False)
                self._pool_pair = exec_pair
            return self._pool

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        credential = None
        if self.authenticator is not None:
            try:
                credential = self.authenticator.credential()
            except CredentialError as error:
                raise CliError(f"getting credentials: {error}") from None
        pool = self._pool_for(credential.client_pair if credential else None)
        token = credential.token if credential is not None else self._kubeconfig_token()
        added = request_headers(self.user, self.cluster, token)
        replaced = {name.lower() for name, _ in added}
        kept = [(name, value) for name, value in request.headers.multi_items() if name.lower() not in replaced]
        request.headers = httpx2.Headers([*kept, *added])
        if self.cluster.tls_server_name:
            # httpcore sends this name in SNI and verifies the certificate against it, also through a proxy.
            request.extensions = {**request.extensions, "sni_hostname": self.cluster.tls_server_name}
        try:
            response = pool.handle_request(request)
        except httpx2.ConnectError as error:
            failure = _verification_failure(error)
            if failure is None:
                raise
            checked = f" (checked as {self.cluster.tls_server_name})" if self.cluster.tls_server_name else ""
            whose = f"{self.cluster.server}{checked}"
            if self.proxy and self.proxy.lower().startswith("https://"):
                whose += f" or of the proxy {redact_url(self.proxy)}"  # the handshake that failed is not told
            message = f"tls: failed to verify the certificate of {whose}: {failure.verify_message}"
            raise httpx2.ConnectError(message, request=request) from None
        if response.status_code == 401 and credential is not None and self.authenticator is not None:
            self.authenticator.refused(credential)
        return response

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def connect(target: Target, *, field_manager: str, transport: KubeTransport | None = None) -> Client:
    """lightkube's client for the target, on a KubeTransport."""
    from lightkube import Client, KubeConfig  # noqa: PLC0415 - keeps `--help` from loading lightkube
    from lightkube.config.models import Cluster, User  # noqa: PLC0415

    connection = target.connection
    # lightkube still makes an SSL context of its own, which httpx leaves unused once it has a transport; the
    # insecure kind costs nothing to make, where the system trust store takes about 50 ms to load. Verification
    # is the transport's (see tls_context).
    placeholder = Cluster(server=connection.cluster.server, insecure=True)
    config = KubeConfig.from_one(
        cluster=placeholder, user=User(), context_name=connection.context, namespace=target.namespace
    )
    return Client(
        config=config,
        namespace=target.namespace,
        field_manager=field_manager,
        transport=transport or KubeTransport(connection),
        trust_env=False,  # the transport applies HTTPS_PROXY and NO_PROXY as client-go does
    )
