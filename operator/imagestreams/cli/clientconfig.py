"""What the chosen kubeconfig context says about reaching the API server, read as kubectl reads it (no I/O).

The rules are client-go's `tools/clientcmd` (DirectClientConfig.ClientConfig and ConfirmUsable's validation),
with its messages where it has one: the scheme a bare `host:port` gets, credentials only over HTTPS, token before
tokenFile, exec only when the kubeconfig gives no token, basic or certificate credentials, the cluster extension an
exec plugin receives, and the combinations kubectl refuses. Messages name clusters, users and fields, never
their values: a kubeconfig holds credentials.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from imagestreams.cli.errors import CliError
from imagestreams.cli.execcredential import ExecPlugin, parse_exec_plugin

EXEC_EXTENSION = "client.authentication.k8s.io/exec"
# client-go also accepts socks5; httpx would need the `socksio` package for it, which the plugin does not ship.
PROXY_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class ClusterSettings:
    name: str
    server: str
    certificate_authority: str | None = None  # a file
    certificate_authority_data: bytes | None = field(default=None, repr=False)
    insecure_skip_tls_verify: bool = False
    tls_server_name: str = ""
    proxy_url: str = field(default="", repr=False)  # may carry the proxy's password
    disable_compression: bool = False
    exec_config: Any = field(default=None, repr=False)  # the cluster's client.authentication.k8s.io/exec extension

    @property
    def uses_tls(self) -> bool:
        return self.server.startswith("https://")


@dataclass(frozen=True)
class Impersonation:
    user: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class UserSettings:
    name: str = ""
    token: str = field(default="", repr=False)
    token_file: str | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    client_certificate: str | None = None  # a file
    client_certificate_data: bytes | None = field(default=None, repr=False)
    client_key: str | None = None  # a file
    client_key_data: bytes | None = field(default=None, repr=False)
    exec_plugin: ExecPlugin | None = None
    impersonation: Impersonation | None = None

    @property
    def has_client_certificate(self) -> bool:
        return bool(self.client_certificate or self.client_certificate_data)

    @property
    def runs_exec_plugin(self) -> bool:
        """client-go runs the plugin only when nothing else in the kubeconfig identifies the user."""
        static = self.token or self.token_file or self.username or self.password or self.has_client_certificate
        return self.exec_plugin is not None and not static


@dataclass(frozen=True)
class Connection:
    """The context's cluster and user: everything the transport needs."""

    context: str
    cluster: ClusterSettings
    user: UserSettings


def _quoted(text: str) -> str:
    return json.dumps(text)


def _string(entry: Mapping[str, Any], key: str, owner: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CliError(f"{key} of {owner} must be a string")
    return value


def _flag(entry: Mapping[str, Any], key: str, owner: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise CliError(f"{key} of {owner} must be true or false")
    return value


def _data(entry: Mapping[str, Any], key: str, owner: str) -> bytes | None:
    text = _string(entry, key, owner)
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CliError(f"{key} of {owner} is not valid base64") from None


def _named(merged: Mapping[str, Any], section: str, key: str) -> dict[str, Any]:
    return {entry["name"]: entry.get(key) for entry in merged.get(section) or []}


def redact_url(url: str) -> str:
    """A URL fit for a message: any user name and password replaced."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="<redacted>@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def default_server_url(server: str, tls_configured: bool) -> str:
    """client-go's DefaultServerURL: a server given as host[:port] gets https when TLS is configured, else http."""
    if "://" in server:
        return server
    return ("https://" if tls_configured else "http://") + server


def parse_cluster(name: str, raw: Any) -> ClusterSettings:
    owner = f"cluster {_quoted(name)}"
    if not isinstance(raw, Mapping):
        raise CliError(f"{owner} must be a mapping")
    ca_file = _string(raw, "certificate-authority", owner) or None
    ca_data = _data(raw, "certificate-authority-data", owner)
    insecure = _flag(raw, "insecure-skip-tls-verify", owner)
    if ca_file and ca_data:
        raise CliError(f"certificate-authority-data and certificate-authority are both specified for {name}")
    if insecure and (ca_file or ca_data):
        raise CliError(f"{owner}: specifying a root certificates file with the insecure flag is not allowed")
    server = _string(raw, "server", owner)
    if not server:
        raise CliError(f"no server found for cluster {_quoted(name)}")
    server = default_server_url(server, bool(ca_file or ca_data or insecure))
    try:
        parts = urlsplit(server)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise CliError(f"the server of {owner} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"the server of {owner} must be an http or https URL")
    proxy_url = _string(raw, "proxy-url", owner)
    if proxy_url:
        check_proxy_url(proxy_url, name)
    extensions = raw.get("extensions") or []
    if not isinstance(extensions, list):
        raise CliError(f"extensions of {owner} must be a list")
    exec_config = next(
        (e.get("extension") for e in extensions if isinstance(e, Mapping) and e.get("name") == EXEC_EXTENSION), None
    )
    return ClusterSettings(
        name=name,
        server=server,
        certificate_authority=ca_file,
        certificate_authority_data=ca_data,
        insecure_skip_tls_verify=insecure,
        tls_server_name=_string(raw, "tls-server-name", owner),
        proxy_url=proxy_url,
        disable_compression=_flag(raw, "disable-compression", owner),
        exec_config=exec_config,
    )


def check_proxy_url(proxy_url: str, cluster: str) -> None:
    """client-go's parseProxyURL, less socks5 (see PROXY_SCHEMES)."""
    prefix = f"invalid 'proxy-url' {_quoted(redact_url(proxy_url))} for cluster {_quoted(cluster)}"
    try:
        parts = urlsplit(proxy_url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise CliError(f"{prefix}: could not parse it") from None
    if parts.scheme in ("socks5", "socks5h"):
        raise CliError(f"{prefix}: socks5 proxies are not supported by kubectl-imagestream; use an http(s) proxy")
    if parts.scheme not in PROXY_SCHEMES:
        raise CliError(f"{prefix}: unsupported scheme {_quoted(parts.scheme)}, must be http or https")
    if not parts.hostname:
        raise CliError(f"{prefix}: it names no host")


def _impersonation(raw: Mapping[str, Any], owner: str, name: str) -> Impersonation | None:
    user = _string(raw, "as", owner)
    uid = _string(raw, "as-uid", owner)
    groups = raw.get("as-groups") or []
    extra = raw.get("as-user-extra") or {}
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise CliError(f"as-groups of {owner} must be a list of strings")
    if not isinstance(extra, Mapping) or not all(
        isinstance(values, list) and all(isinstance(v, str) for v in values) for values in extra.values()
    ):
        raise CliError(f"as-user-extra of {owner} must map names to lists of strings")
    if not user:
        if uid or groups or extra:
            raise CliError(f"requesting uid, groups or user-extra for {name} without impersonating a user")
        return None
    return Impersonation(user, uid, tuple(groups), tuple((str(k), tuple(v)) for k, v in extra.items()))


def parse_user(name: str, raw: Any) -> UserSettings:
    owner = f"user {_quoted(name)}"
    if raw is None:
        return UserSettings(name)
    if not isinstance(raw, Mapping):
        raise CliError(f"{owner} must be a mapping")
    if raw.get("auth-provider"):
        provider = raw["auth-provider"].get("name") if isinstance(raw["auth-provider"], Mapping) else None
        raise CliError(
            f"the auth-provider {_quoted(str(provider or ''))} of {owner} is not supported by kubectl-imagestream: "
            "use an exec credential plugin (client.authentication.k8s.io/v1) instead"
        )
    token = _string(raw, "token", owner)
    username, password = _string(raw, "username", owner), _string(raw, "password", owner)
    methods = [method for method, used in (("token", token), ("basicAuth", username or password)) if used]
    if len(methods) > 1:
        raise CliError(
            f"more than one authentication method found for {name}; found [{' '.join(methods)}], only one is allowed"
        )
    settings = UserSettings(
        name=name,
        token=token,
        token_file=None if token else _string(raw, "tokenFile", owner) or None,
        username=username,
        password=password,
        client_certificate=_string(raw, "client-certificate", owner) or None,
        client_certificate_data=_data(raw, "client-certificate-data", owner),
        client_key=_string(raw, "client-key", owner) or None,
        client_key_data=_data(raw, "client-key-data", owner),
        exec_plugin=parse_exec_plugin(name, raw["exec"]) if raw.get("exec") is not None else None,
        impersonation=_impersonation(raw, owner, name),
    )
    if settings.has_client_certificate:
        if settings.client_certificate and settings.client_certificate_data:
            raise CliError(f"client-cert-data and client-cert are both specified for {name}")
        if settings.client_key and settings.client_key_data:
            raise CliError(f"client-key-data and client-key are both specified for {name}")
        if not (settings.client_key or settings.client_key_data):
            raise CliError(
                f"client-key-data or client-key must be specified for {name} "
                "to use the clientCert authentication method"
            )
    return settings


def connection_for(merged: Mapping[str, Any], context_name: str) -> Connection:
    """The connection of one context of a merged kubeconfig (see kubeconfig.merge_kubeconfigs)."""
    context = _named(merged, "contexts", "context").get(context_name)
    if not isinstance(context, Mapping):
        raise CliError(f"context was not found for specified context: {context_name}")
    cluster_name = context.get("cluster")
    if not isinstance(cluster_name, str) or not cluster_name:
        raise CliError(f"cluster was not specified for context {_quoted(context_name)}")
    clusters = _named(merged, "clusters", "cluster")
    if cluster_name not in clusters:
        raise CliError(f"cluster {_quoted(cluster_name)} was not found for context {_quoted(context_name)}")
    cluster = parse_cluster(cluster_name, clusters[cluster_name])
    # A context without a user, or naming one that is not defined, connects anonymously, as in kubectl.
    user_name = context.get("user") if isinstance(context.get("user"), str) else ""
    user = parse_user(user_name or "", _named(merged, "users", "user").get(user_name or ""))
    if not cluster.uses_tls:
        # client-go reads credentials only for a TLS transport: never send them in clear text.
        user = UserSettings(user.name, impersonation=user.impersonation)
    return Connection(context_name, cluster, user)


def exec_cluster(cluster: ClusterSettings, certificate_authority: bytes | None) -> dict[str, Any]:
    """The `spec.cluster` an exec plugin with provideClusterInfo receives (client-go's ConfigToExecCluster)."""
    info: dict[str, Any] = {"server": cluster.server}
    if cluster.tls_server_name:
        info["tls-server-name"] = cluster.tls_server_name
    if cluster.insecure_skip_tls_verify:
        info["insecure-skip-tls-verify"] = True
    if certificate_authority:
        info["certificate-authority-data"] = base64.b64encode(certificate_authority).decode("ascii")
    if cluster.proxy_url:
        info["proxy-url"] = cluster.proxy_url
    if cluster.disable_compression:
        info["disable-compression"] = True
    if cluster.exec_config is not None:
        info["config"] = cluster.exec_config
    return info


def request_headers(user: UserSettings, cluster: ClusterSettings, token: str) -> list[tuple[str, str]]:
    """The headers every request carries: the bearer `token` (the kubeconfig's, its file's or an exec plugin's),
    else basic credentials; impersonation; and no compression when the cluster disables it."""
    headers: list[tuple[str, str]] = []
    if token:
        headers.append(("Authorization", f"Bearer {token}"))
    elif user.username or user.password:
        pair = base64.b64encode(f"{user.username}:{user.password}".encode()).decode("ascii")
        headers.append(("Authorization", f"Basic {pair}"))
    who = user.impersonation
    if who is not None:
        headers.append(("Impersonate-User", who.user))
        if who.uid:
            headers.append(("Impersonate-Uid", who.uid))
        headers += [("Impersonate-Group", group) for group in who.groups]
        for key, values in who.extra:  # the key is escaped as client-go's url.PathEscape, which the server undoes
            headers += [(f"Impersonate-Extra-{quote(key, safe='')}", value) for value in values]
    if cluster.disable_compression:
        headers.append(("Accept-Encoding", "identity"))
    return headers


def _no_proxy_matches(host: str, port: str, no_proxy: str) -> bool:
    """Go's NO_PROXY rules: `*`; an IP or CIDR; a domain, which matches its subdomains too unless it starts with a
    dot; each with an optional port."""
    address = _ip(host)
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        if not entry:
            continue
        if "/" in entry:
            try:
                if address is not None and address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry_host, entry_port = entry, ""
        if entry.startswith("["):
            entry_host, _, rest = entry[1:].partition("]")
            entry_port = rest.removeprefix(":")
        elif entry.count(":") == 1:
            entry_host, entry_port = entry.split(":")
        if entry_port and entry_port != port:
            continue
        entry_address = _ip(entry_host)
        if entry_address is not None:
            if address == entry_address:
                return True
            continue
        suffix = entry_host.removeprefix("*")
        if host.endswith(suffix if suffix.startswith(".") else "." + suffix) or host == suffix:
            return True
    return False


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def environment_proxy(server: str, environ: Mapping[str, str]) -> str | None:
    """The proxy Go's ProxyFromEnvironment picks when the kubeconfig sets no proxy-url.

    HTTPS_PROXY for an https server, HTTP_PROXY for http (upper case first, as Go), unless NO_PROXY matches,
    and, as in Go, never a proxy for localhost or a loopback address.
    """
    parts = urlsplit(server)
    names = ("HTTPS_PROXY", "https_proxy") if parts.scheme == "https" else ("HTTP_PROXY", "http_proxy")
    proxy = next((environ[name] for name in names if environ.get(name)), "")
    host = (parts.hostname or "").lower()
    address = _ip(host)
    if not proxy or host == "localhost" or (address is not None and address.is_loopback):
        return None
    port = str(parts.port or (443 if parts.scheme == "https" else 80))
    if _no_proxy_matches(host, port, environ.get("NO_PROXY") or environ.get("no_proxy") or ""):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"
