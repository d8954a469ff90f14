"""Which registries the operator may contact: an allow list and a deny list over host names and addresses."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RegistryPolicy:
    allowed: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()

    def refusal(self, registry: str) -> str | None:
        """None when `registry` (host[:port]) may be contacted, else a message saying why not."""
        for pattern in self.denied:
            if _matches(pattern, registry):
                return f"registry {registry} is denied by the operator's registry policy ({pattern})"
        if self.allowed and not any(_matches(pattern, registry) for pattern in self.allowed):
            return f"registry {registry} is not in the operator's allowed registries ({', '.join(self.allowed)})"
        return None

    def denial(self, host: str) -> str | None:
        """The deny list alone, for every host a lookup contacts (redirect targets, token realms); the allow
        list names image registries, and a registry's token service may live on another host."""
        for pattern in self.denied:
            if _matches(pattern, host):
                return f"host {host} is denied by the operator's registry policy ({pattern})"
        return None

    def refusal_for_names(self, names: Sequence[str]) -> str | None:
        """Like refusal() for a registry known by several names (docker.io is contacted as
        registry-1.docker.io): denied if any name is denied, allowed if any name is allowed."""
        for name in names:
            for pattern in self.denied:
                if _matches(pattern, name):
                    return f"registry {name} is denied by the operator's registry policy ({pattern})"
        if self.allowed and not any(_matches(p, name) for p in self.allowed for name in names):
            return f"registry {names[0]} is not in the operator's allowed registries ({', '.join(self.allowed)})"
        return None

    def address_refusal(self, registry: str, addresses: Sequence[str]) -> str | None:
        """Like refusal(), for the addresses the registry name resolved to (a name may point inside)."""
        for address in addresses:
            for pattern in self.denied:
                if _matches(pattern, address):
                    return f"registry {registry} resolves to {address}, denied by the registry policy ({pattern})"
        return None


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
