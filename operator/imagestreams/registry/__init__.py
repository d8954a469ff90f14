"""Async registry client: auth challenges and tokens, manifests and platforms, HEAD-first digests, retries,
429 handling and per-registry limits shared fairly by namespaces. client.py sits on auth.py (credentials, challenges,
tokens), which sits on transport.py (HTTP, TLS, redirects, limits); shared work in flights.py."""

from imagestreams.registry.client import RegistryClient
from imagestreams.registry.errors import Reason, RegistryError
from imagestreams.registry.flights import SingleFlight, on_behalf_of
from imagestreams.registry.models import (
    ClientSettings,
    Credentials,
    ImageMetadata,
    ImportMode,
    Layer,
    ManifestChild,
    Platform,
    ResolvedImage,
)

__all__ = [
    "ClientSettings",
    "Credentials",
    "ImageMetadata",
    "ImportMode",
    "Layer",
    "ManifestChild",
    "Platform",
    "Reason",
    "RegistryClient",
    "RegistryError",
    "ResolvedImage",
    "SingleFlight",
    "on_behalf_of",
]
