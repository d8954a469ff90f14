"""The operator's API client: lightkube, over aiohttp rather than httpx2's own connections.

Every write the operator makes (a fan-out's applies, status writes, Events) and most of its reads go through one
lightkube AsyncClient. With httpx2's default transport (httpcore over anyio's TLS stream, which runs TLS through a
memory BIO in Python) a request costs the operator about 1.6 ms of CPU; over aiohttp's connections (asyncio's own
TLS transport and aiohttp's C HTTP parser) it costs about 0.9 ms. The operator shares the machine's cores with the
API server, so that CPU is the fan-out's and the import's time (docs/benchmarks.md has the figures).

Only the socket-level exchange changes: lightkube still builds each request and reads each answer, httpx2 still runs
the authentication flow (a bearer token re-read from its file on 401), and the TLS context is the one lightkube
builds from the configuration (its CA, its client certificate, insecure-skip-tls-verify only when the configuration
says so). A proxy from the environment keeps httpx2's own transport for the hosts it covers.

The watches of streams and workloads (kube/watch.py) use a plain httpx2 client set up the same way (`watch_client`).
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx2
from httpx_aiohttp.httpx2 import AiohttpTransport
from lightkube import AsyncClient, ConfigError
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig, SingleConfig


def api_config() -> SingleConfig:
    """The configuration lightkube finds by itself: in a pod its service account, else KUBECONFIG or ~/.kube/config."""
    config = KubeConfig.from_env().get()
    if config is None:  # a config without a user is refused where its TLS context is built (`_tls`)
        raise ConfigError("no Kubernetes configuration: no service account, KUBECONFIG or ~/.kube/config")
    return config


def operator_client(field_manager: str, config: SingleConfig | None = None) -> AsyncClient:
    """A lightkube AsyncClient for `config` (by default `api_config()`) whose requests travel over aiohttp."""
    single = config or api_config()
    return AsyncClient(config=single, field_manager=field_manager, transport=AiohttpTransport(verify=_tls(single)))


def watch_client(config: SingleConfig | None = None) -> httpx2.AsyncClient:
    """A plain httpx2 client for the API server of `config` (by default `api_config()`), over aiohttp, for the
    watches (kube/watch.py): the server's address, TLS and authentication as lightkube sets them up, and no limit on
    connections, since each watch holds one for as long as it lasts."""
    single = config or api_config()
    tls = _tls(single)
    transport = AiohttpTransport(client=lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, limit=0)))
    # lightkube annotates `transport` with httpx2's synchronous base class, yet hands it to an httpx2.AsyncClient here.
    params = client_adapter.ConnectionParams(transport=transport)  # type: ignore[arg-type]
    return client_adapter.AsyncClient(single, params)


def _tls(config: SingleConfig) -> ssl.SSLContext:
    if config.user is None:
        raise ConfigError("the Kubernetes configuration names no user to connect as")
    return client_adapter.verify_cluster(config.cluster, config.user, config.abs_file)
