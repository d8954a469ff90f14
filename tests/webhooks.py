"""The operator's admission webhooks served in the test process, registered with the test cluster's API server.

The server, the handlers and the webhook configurations are the operator's own (admission/, api/webhooks.py); only
the certificate comes from a test CA and the configurations reach the server by URL on 127.0.0.1 and match only the
namespaces a test labels, so other tests in the same cluster never see these webhooks.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from lightkube import Client

from imagestreams.admission.routes import handlers as operator_handlers
from imagestreams.admission.server import Handler, WebhookServer
from imagestreams.api.webhooks import url_client_config, webhook_configurations
from imagestreams.localcluster import LocalCluster
from imagestreams.localcluster.certs import CertificateAuthority, loopback_server_pair
from tests.conftest import kubectl


@dataclass
class StaticCertificate:
    cert: bytes
    key: bytes

    def serving_pair(self) -> tuple[bytes, bytes]:
        return self.cert, self.key


@dataclass
class ServedWebhooks:
    server: WebhookServer
    label: str  # namespaces labelled with this (key=value) are matched
    name: str  # of the two webhook configurations
    calls: Counter[str] = field(default_factory=Counter)  # path -> requests answered
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, path: str, result: str, seconds: float) -> None:
        with self._lock:
            self.calls[path] += 1

    def enroll(self, cluster: LocalCluster, namespace: str) -> None:
        """Let the webhooks see `namespace`."""
        kubectl(cluster, "label", "namespace", namespace, self.label, "--overwrite")


@contextmanager
def served_webhooks(
    cluster: LocalCluster, kube: Client, handlers: Mapping[str, Handler] | None = None
) -> Iterator[ServedWebhooks]:
    """The operator's webhooks (or `handlers`) served on 127.0.0.1 and registered for namespaces that `enroll`."""
    ca = CertificateAuthority("imagestreams-test-webhooks")
    pair = loopback_server_pair(ca, "127.0.0.1")
    token = uuid.uuid4().hex[:8]
    key, value = "imagestreams.test/admission", token
    served = ServedWebhooks(
        server=WebhookServer(StaticCertificate(pair.cert, pair.key), {}, "127.0.0.1", 0),
        label=f"{key}={value}",
        name=f"imagestreams-test-{token}",
    )
    served.server.handlers = dict(handlers if handlers is not None else operator_handlers(kube))
    served.server.observe = served.observe
    served.server.start()
    client_config = url_client_config(f"https://127.0.0.1:{served.server.port}", base64.b64encode(ca.cert_pem).decode())
    selector = {"matchLabels": {key: value}}
    configurations = webhook_configurations(client_config, selector, name=served.name)
    try:
        for configuration in configurations:
            kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=json.dumps(configuration))
        yield served
    finally:
        kubectl(cluster, "delete", "mutatingwebhookconfiguration,validatingwebhookconfiguration", served.name)
        served.server.stop()


def wait_until_called(served: ServedWebhooks, cluster: LocalCluster, namespace: str, timeout: float = 10.0) -> None:
    """Block until the API server calls the webhooks for `namespace` (it picks up new configurations within a
    second or so): server-side dry runs of a stream create until the stream webhooks answer one."""
    probe = json.dumps(
        {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": f"probe-{uuid.uuid4().hex[:6]}", "namespace": namespace},
        }
    )
    deadline = time.monotonic() + timeout
    before = sum(served.calls.values())
    while sum(served.calls.values()) == before:
        assert time.monotonic() < deadline, "the API server did not call the test webhooks"
        kubectl(cluster, "create", "--dry-run=server", "-f", "-", stdin=probe, check=False)
        time.sleep(0.2)
