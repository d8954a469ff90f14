"""Operator settings, read from IMAGESTREAMS_* environment variables (the Helm chart sets them)."""

from __future__ import annotations

import fnmatch
import ipaddress
import os
from collections.abc import Mapping

from pydantic import BaseModel, Field, ValidationError, field_validator

ENV_PREFIX = "IMAGESTREAMS_"

# Cloud instance-metadata endpoints: an import from these would let anyone who can create an
# ImageStream read the node's credentials through the operator.
DEFAULT_DENIED_REGISTRIES = (
    "169.254.169.254",
    "169.254.170.2",
    "metadata.google.internal",
    "metadata.goog",
    "100.100.100.200",
    "fd00:ec2::254",
    "169.254.0.0/16",
    "fe80::/10",
)


class SettingsError(ValueError):
    """An environment variable holds a value the operator cannot use."""


class OperatorSettings(BaseModel):
    history_limit: int = Field(10, ge=1, le=100, description="Entries kept per tag, newest first.")
    scheduled_interval_seconds: float = Field(
        900.0, ge=1, description="How often scheduled tags are re-imported (OpenShift: 15 minutes)."
    )
    max_scheduled_imports_per_minute: int = Field(
        60,
        description="Budget for scheduled imports across all streams, shared fairly by namespaces; 0 or less means "
        "unlimited.",
    )
    max_repository_tags: int = Field(
        50, description="Tags imported from spec.dockerImageRepository; the rest are reported (OpenShift: 50)."
    )
    import_workers: int = Field(
        4,
        ge=1,
        le=64,
        description="Streams decided and written at the same time; a stream waiting on a registry holds no worker.",
    )
    trigger_workers: int = Field(
        16,
        ge=1,
        le=64,
        description="Workloads whose image triggers are applied at the same time (each a server-side apply); their "
        "Events are posted after the writes. 16 keeps the API server busy while the operator prepares the next "
        "writes: a fan-out to 1,000 Deployments took 7.6 s with 16, 9.3 s with 4 (bench/fanout.py).",
    )
    resync_interval_seconds: float = Field(
        600.0,
        ge=0,
        description="How often every stream and triggered workload is checked again, as a safety net; 0: never.",
    )
    registry_concurrency: int = Field(
        16,
        ge=1,
        description="Most concurrent requests per registry, shared fairly by the namespaces waiting; halved on a 429 "
        "and lowered on errors, climbing back over 30 s.",
    )
    registry_rate: float = Field(
        500.0,
        gt=0,
        description="Most requests per second per registry, shared fairly by the namespaces waiting; where the "
        "adaptive limit starts, halved on a 429 and lowered on errors, climbing back over 30 s.",
    )
    registry_rate_min: float = Field(
        1.0, gt=0, description="The adaptive limit never goes below this many requests per second per registry."
    )
    platform_os: str = Field("linux", description="Preferred OS when a tag's source is multi-arch.")
    platform_architecture: str = Field("amd64", description="Preferred architecture for multi-arch sources.")
    extra_ca_file: str | None = Field(None, description="A PEM bundle trusted for registries besides the system CAs.")
    allowed_registries: tuple[str, ...] = Field(
        (), description="If set, only these registries (host, host:port, *.domain or CIDR) may be imported from."
    )
    denied_registries: tuple[str, ...] = Field(
        DEFAULT_DENIED_REGISTRIES, description="Registries never contacted (host, host:port, *.domain or CIDR)."
    )
    loopback_registries: bool = Field(
        False,
        description="Allow registries on loopback addresses (127.0.0.0/8, ::1, localhost): for a local cluster "
        "only, since in a pod they reach the operator's own pod.",
    )
    deny_private_registries: bool = Field(
        False,
        description="Refuse registries on private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) "
        "unless listed in private_registries.",
    )
    private_registries: tuple[str, ...] = Field(
        (),
        description="With deny_private_registries: private registries that may still be contacted "
        "(host, host:port, *.domain or CIDR).",
    )
    namespaces: tuple[str, ...] = Field((), description="Watch only these namespaces; empty means all.")
    excluded_namespaces: tuple[str, ...] = Field(
        (), description="Namespaces (glob patterns such as kube-*) whose streams and workloads are ignored."
    )

    leader_election: bool = Field(
        False, description="Run several replicas: only the holder of a coordination.k8s.io Lease acts."
    )
    leader_election_namespace: str = Field(
        "default", description="Namespace of the Lease (the chart sets the operator's own namespace)."
    )
    leader_election_lease_seconds: int = Field(15, ge=5, le=300, description="How long a Lease lasts unrenewed.")

    health_address: str = Field(
        "0.0.0.0",
        description="IP address the /healthz, /readyz and /metrics server listens on (0.0.0.0: every IPv4 "
        "address, :: every address).",
    )
    health_port: int = Field(
        0, ge=0, le=65535, description="Port of the /healthz, /readyz and /metrics server; 0: no server."
    )

    webhook_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the HTTPS admission webhook server (image lookup, stream write rules); 0: no server.",
    )
    webhook_address: str = Field("0.0.0.0", description="IP address the admission webhook server listens on.")
    webhook_cert_dir: str | None = Field(
        None,
        description="A directory with tls.crt and tls.key (a Secret mounted from cert-manager); unset: the operator "
        "issues and rotates its own CA and certificate in webhook_secret.",
    )
    webhook_namespace: str = Field(
        "default", description="Namespace of webhook_secret (the chart sets the operator's own namespace)."
    )
    webhook_secret: str = Field(
        "imagestream-operator-webhook-tls", description="Secret holding the operator's own webhook CA and certificate."
    )
    webhook_configuration: str = Field(
        "imagestream-operator",
        description="Name of the Mutating- and ValidatingWebhookConfiguration whose CA bundle the operator keeps "
        "current; empty: leave the CA bundle alone.",
    )
    webhook_hosts: tuple[str, ...] = Field(
        ("127.0.0.1",),
        min_length=1,
        description="DNS names and IP addresses the webhook certificate is issued for (the chart sets the Service's "
        "names).",
    )
    webhook_ca_seconds: float = Field(
        5 * 365 * 86400.0, ge=60, description="Lifetime of the operator's webhook CA; replaced after two thirds."
    )
    webhook_cert_seconds: float = Field(
        90 * 86400.0, ge=30, description="Lifetime of the webhook serving certificate; renewed after two thirds."
    )
    webhook_check_seconds: float = Field(
        300.0, gt=0, description="How often the webhook certificates are checked for rotation."
    )
    webhook_ca_publish_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a new webhook CA is trusted in the configurations' CA bundle before a certificate it "
        "issued is served (time for every API server to read the new bundle).",
    )

    notifications_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the plain-HTTP registry push notification endpoint (POST /notifications/<format>); "
        "0: none.",
    )
    notifications_address: str = Field("0.0.0.0", description="IP address the push notification endpoint listens on.")
    notifications_namespace: str = Field(
        "default", description="Namespace of notifications_secret (the chart sets the operator's own namespace)."
    )
    notifications_secret: str = Field(
        "imagestream-operator-notifications",
        description="Secret whose values are the tokens a push notification must present (each value one token of "
        "at least 16 bytes).",
    )
    notifications_rate: float = Field(
        5.0, gt=0, description="Push notifications per second accepted from one source (address and format)."
    )
    notifications_burst: int = Field(
        50, ge=1, description="Push notifications one source may send at once before notifications_rate applies."
    )

    def ignores(self, namespace: str) -> bool:
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.excluded_namespaces)

    @field_validator(
        "allowed_registries",
        "denied_registries",
        "private_registries",
        "namespaces",
        "excluded_namespaces",
        "webhook_hosts",
        mode="before",
    )
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("health_address", "webhook_address", "notifications_address")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        """Settings from IMAGESTREAMS_<FIELD> variables, e.g. IMAGESTREAMS_HISTORY_LIMIT=20."""
        environ = os.environ if environ is None else environ
        values = {
            name: environ[f"{ENV_PREFIX}{name.upper()}"]
            for name in cls.model_fields
            if f"{ENV_PREFIX}{name.upper()}" in environ
        }
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            problems = "; ".join(
                f"{ENV_PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()
            )
            raise SettingsError(f"invalid operator settings: {problems}") from None
