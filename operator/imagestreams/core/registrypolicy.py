"""Which registries the operator may contact: an allow list and a deny list over host names and addresses."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

# Loopback reaches the operator's own pod (its health and metrics ports, a sidecar): never a registry in a
# cluster. 0.0.0.0 connects to loopback on Linux.
LOOPBACK = ("127.0.0.0/8", "::1/128", "0.0.0.0/8", "::/128", "localhost", "*.localhost")
PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
# Names that only ever mean the Kubernetes API server inside a cluster.
API_SERVER_NAMES = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class RegistryPolicy:
    """Who may be contacted. Besides the configured lists, by default: never loopback (unless
    `loopback_allowed`), never the API server (`api_server`: its host or host:port, and its service names),
    and, with `private_denied`, no private address unless it matches `private_allowed`."""

    allowed: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    loopback_allowed: bool = False
    api_server: tuple[str, ...] = ()
    private_denied: bool = False
    private_allowed: tuple[str, ...] = ()

    def refusal(self, registry: str) -> str | None:
        """None when `registry` (host[:port]) may be contacted, else a message saying why not."""
        return self.refusal_for_names([registry])

    def denial(self, host: str) -> str | None:
        """The deny rules alone, for every host a lookup contacts (redirect targets, token realms); the allow
        list names image registries, and a registry's token service may live on another host."""
        for pattern in self.denied:
            if _matches(pattern, host):
                return f"host {host} is denied by the operator's registry policy ({pattern})"
        return self._builtin(host, "host")

    def refusal_for_names(self, names: Sequence[str]) -> str | None:
        """Like refusal() for a registry known by several names (docker.io is contacted as
        registry-1.docker.io): denied if any name is denied, allowed if any name is allowed."""
        for name in names:
            for pattern in self.denied:
                if _matches(pattern, name):
                    return f"registry {name} is denied by the operator's registry policy ({pattern})"
            refused = self._builtin(name, "registry")
            if refused:
                return refused
        if self.allowed and not any(_matches(p, name) for p in self.allowed for name in names):
            return f"registry {names[0]} is not in the operator's allowed registries ({', '.join(self.allowed)})"
        return None

    def address_refusal(self, registry: str, addresses: Sequence[str]) -> str | None:
        """Like refusal(), for the addresses the registry name resolved to (a name may point inside)."""
        _, port = split_host_port(registry)
        for address in addresses:
            for pattern in self.denied:
                if _matches(pattern, address):
                    return f"registry {registry} resolves to {address}, denied by the registry policy ({pattern})"
            literal = f"[{address}]" if ":" in address else address
            target = f"{literal}:{port}" if port else literal
            refused = self._builtin(target, f"registry {registry} resolving to", exempt_as=registry)
            if refused:
                return refused
        return None

    def _builtin(self, name: str, what: str, exempt_as: str | None = None) -> str | None:
        if not self.loopback_allowed and any(_matches(pattern, name) for pattern in LOOPBACK):
            return (
                f"{what} {name} is a loopback address, refused unless the operator allows loopback registries "
                "(IMAGESTREAMS_LOOPBACK_REGISTRIES, for a local cluster only)"
            )
        if any(_matches(pattern, name) for pattern in (*self.api_server, *API_SERVER_NAMES)):
            return f"{what} {name} is the Kubernetes API server, never contacted as a registry"
        if (
            self.private_denied
            and any(_matches(pattern, name) for pattern in PRIVATE)
            and not self._private_exempt(name)
            and not (exempt_as and self._private_exempt(exempt_as))
        ):
            return (
                f"{what} {name} is a private address, refused unless listed in the operator's private "
                "registries (IMAGESTREAMS_PRIVATE_REGISTRIES)"
            )
        return None

    def _private_exempt(self, name: str) -> bool:
        return any(_matches(pattern, name) for pattern in self.private_allowed)


def split_host_port(registry: str) -> tuple[str, str | None]:
    """("host", "port") from "host:port", "[v6]:port", "host" or a bare IPv6 address."""
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        return host.lower(), rest[1:] if rest.startswith(":") else None
    if registry.count(":") > 1:  # bare IPv6
        return registry.lower(), None
    host, sep, port = registry.partition(":")
    return host.lower(), port if sep else None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address, with IPv4 addresses embedded in IPv6 (::ffff:a.b.c.d, 6to4) unwrapped."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour or address
    return address


@functools.lru_cache(maxsize=4096)  # checked at every registry request: 9 % of the CPU of 1,000 imports uncached
def _matches(pattern: str, registry: str) -> bool:
    host, port = split_host_port(registry)
    pattern = pattern.strip().lower()
    address = _address(host)
    if "/" in pattern:
        try:
            network = ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
        return address is not None and address.version == network.version and address in network
    pattern_host, pattern_port = split_host_port(pattern)
    if pattern_port is not None and pattern_port != port:
        return False
    if pattern_host.startswith("*."):
        return host.endswith(pattern_host[1:]) and host != pattern_host[2:]
    pattern_address = _address(pattern_host)
    if pattern_address is not None:
        return pattern_address == address
    return pattern_host == host
