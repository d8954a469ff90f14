"""Where the webhook's certificates live: a Secret in the operator's namespace, and the CA bundle of the webhook
configurations. Every replica runs the same loop; writes are guarded by resourceVersion, so replicas that rotate at
the same moment agree on one result (the loser reads the winner's).

With cert-manager instead (`FileCertificates`), the serving certificate is a mounted Secret that the kubelet
refreshes, and cert-manager's CA injector fills the configurations' CA bundle.
"""

from __future__ import annotations

import base64
import datetime
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.admissionregistration_v1 import (
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
)
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from imagestreams.admission.certs import CA_PUBLISH_SECONDS, Bundle, plan

logger = logging.getLogger(__name__)

TRUSTED_SINCE_ANNOTATION = "imagestreams.dev/ca-trusted-since"
_KEYS = {"ca_cert": "ca.crt", "ca_key": "ca.key", "cert": "tls.crt", "key": "tls.key", "trusted": "trusted-ca.crt"}
Clock = Callable[[], datetime.datetime]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def bundle_from_secret(secret: Secret) -> Bundle | None:
    data = secret.data or {}
    annotations = (secret.metadata.annotations if secret.metadata else None) or {}
    try:
        values = {field: base64.b64decode(data[key]) for field, key in _KEYS.items()}
        since = datetime.datetime.fromisoformat(annotations[TRUSTED_SINCE_ANNOTATION])
    except (KeyError, ValueError):
        return None
    return Bundle(ca_trusted_since=since, **values)


def _secret_body(namespace: str, name: str, bundle: Bundle, resource_version: str | None) -> Secret:
    return Secret(
        metadata=ObjectMeta(
            name=name,
            namespace=namespace,
            resourceVersion=resource_version,
            labels={"app.kubernetes.io/managed-by": "imagestream-operator"},
            annotations={TRUSTED_SINCE_ANNOTATION: bundle.ca_trusted_since.isoformat()},
        ),
        type="kubernetes.io/tls",
        data={key: base64.b64encode(getattr(bundle, field)).decode() for field, key in _KEYS.items()},
    )


class CertificateStore:
    """The operator-managed certificates: issued, kept in a Secret, rotated, and trusted by the webhooks."""

    def __init__(
        self,
        kube: Client,
        *,
        namespace: str,
        secret: str,
        configuration: str,
        hosts: Sequence[str],
        ca_lifetime: datetime.timedelta,
        serving_lifetime: datetime.timedelta,
        check_seconds: float,
        ca_publish_seconds: float = CA_PUBLISH_SECONDS,
        clock: Clock = _utc_now,
    ) -> None:
        self.kube, self.namespace, self.secret, self.configuration = kube, namespace, secret, configuration
        self.hosts = tuple(hosts)
        self.ca_lifetime, self.serving_lifetime = ca_lifetime, serving_lifetime
        self.ca_publish_seconds = ca_publish_seconds
        self.check_seconds = check_seconds
        self.clock = clock
        self._bundle: Bundle | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._missing_configurations: set[str] = set()

    def serving_pair(self) -> tuple[bytes, bytes]:
        assert self._bundle is not None, "sync() first"
        return self._bundle.serving_pair

    def sync(self) -> Bundle:
        """Read the Secret, rotate what is due, store it, and make the webhook configurations trust it."""
        for _ in range(5):  # a conflict means another replica wrote meanwhile: read its result and plan again
            try:
                stored = self.kube.get(Secret, self.secret, namespace=self.namespace)
            except ApiError as error:
                if error.status.code != 404:
                    raise
                stored = None
            current = bundle_from_secret(stored) if stored is not None else None
            wanted = plan(
                current,
                self.hosts,
                self.clock(),
                ca_lifetime=self.ca_lifetime,
                serving_lifetime=self.serving_lifetime,
                ca_publish_seconds=self.ca_publish_seconds,
            )
            if wanted is None:
                assert current is not None
                self._bundle = current
                break
            try:
                if stored is None:
                    self.kube.create(_secret_body(self.namespace, self.secret, wanted, None))
                else:
                    version = stored.metadata.resourceVersion if stored.metadata else None
                    self.kube.replace(_secret_body(self.namespace, self.secret, wanted, version))
            except ApiError as error:
                if error.status.code == 409:
                    continue
                raise
            logger.info("write: webhook certificates in secret %s/%s", self.namespace, self.secret)
            self._bundle = wanted
            break
        else:
            raise RuntimeError(f"secret {self.namespace}/{self.secret} kept changing while it was being rotated")
        self._trust(self._bundle.trusted)
        return self._bundle

    def _trust(self, trusted: bytes) -> None:
        """Put the CA bundle into every webhook of both configurations that does not carry it yet (none named: the
        configurations' CA bundle is someone else's to keep)."""
        if not self.configuration:
            return
        encoded = base64.b64encode(trusted).decode()
        resources: tuple[type[MutatingWebhookConfiguration] | type[ValidatingWebhookConfiguration], ...] = (
            MutatingWebhookConfiguration,
            ValidatingWebhookConfiguration,
        )
        for resource in resources:
            kind = resource.__name__
            try:
                configuration = self.kube.get(resource, self.configuration)
            except ApiError as error:
                if error.status.code != 404:
                    raise
                if kind not in self._missing_configurations:
                    logger.info("no %s %s: its CA bundle is not managed", kind, self.configuration)
                    self._missing_configurations.add(kind)
                continue
            self._missing_configurations.discard(kind)
            webhooks = configuration.to_dict().get("webhooks") or []
            patch: list[dict[str, Any]] = [
                {"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": encoded}
                for index, webhook in enumerate(webhooks)
                if (webhook.get("clientConfig") or {}).get("caBundle") != encoded
            ]
            if patch:
                self.kube.patch(resource, self.configuration, patch, patch_type=PatchType.JSON)
                logger.info("write: CA bundle of %s %s (%d webhooks)", kind, self.configuration, len(patch))

    def start(self) -> CertificateStore:
        """Sync once (raising if that fails: nothing can be served without a certificate), then keep checking."""
        self.sync()
        self._thread = threading.Thread(target=self._loop, name="webhook-certificates", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.check_seconds):
            try:
                self.sync()
            except Exception as error:  # logged; the next check tries again
                logger.warning("webhook certificates: %s (trying again in %.0f s)", error, self.check_seconds)

    def stop(self) -> None:
        self._stop.set()


class FileCertificates:
    """A serving certificate mounted from a Secret (cert-manager): tls.crt and tls.key, read again when changed."""

    def __init__(self, directory: str) -> None:
        self.cert, self.key = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        self._seen: tuple[float, float] | None = None
        self._pair: tuple[bytes, bytes] = (b"", b"")
        self._lock = threading.Lock()

    def serving_pair(self) -> tuple[bytes, bytes]:
        with self._lock:
            stamp = (self.cert.stat().st_mtime, self.key.stat().st_mtime)
            if stamp != self._seen:
                self._pair, self._seen = (self.cert.read_bytes(), self.key.read_bytes()), stamp
            return self._pair
