"""The apiserver calls admission webhooks served on 127.0.0.1, as the operator's will be."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.models.admissionregistration_v1 import (
    RuleWithOperations,
    ValidatingWebhook,
    WebhookClientConfig,
)
from lightkube.models.meta_v1 import LabelSelector, ObjectMeta
from lightkube.resources.admissionregistration_v1 import ValidatingWebhookConfiguration
from lightkube.resources.core_v1 import ConfigMap

from imagestreams.localcluster import LocalCluster


class DenyForbiddenLabel(BaseHTTPRequestHandler):
    """Refuses any object labelled forbidden=yes; allows the rest."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        labels = (request.get("object") or {}).get("metadata", {}).get("labels") or {}
        allowed = labels.get("forbidden") != "yes"
        response: dict[str, Any] = {"uid": request["uid"], "allowed": allowed}
        if not allowed:
            response["status"] = {"code": 403, "message": "the test webhook refuses forbidden=yes"}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture
def webhook_url(cluster: LocalCluster, tmp_path: Any) -> Iterator[str]:
    cert, key = cluster.issue_loopback_certificate("test-webhook").write(tmp_path, "webhook")
    server = ThreadingHTTPServer(("127.0.0.1", 0), DenyForbiddenLabel)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/validate"
    server.shutdown()
    server.server_close()


def test_a_validating_webhook_on_loopback_refuses_and_allows(
    admin: Client, cluster: LocalCluster, namespace: str, webhook_url: str
) -> None:
    name = f"deny-forbidden-{namespace}"
    admin.create(
        ValidatingWebhookConfiguration(
            metadata=ObjectMeta(name=name),
            webhooks=[
                ValidatingWebhook(
                    name="deny-forbidden.imagestreams.test",
                    admissionReviewVersions=["v1"],
                    sideEffects="None",
                    failurePolicy="Fail",
                    clientConfig=WebhookClientConfig(
                        url=webhook_url, caBundle=base64.b64encode(cluster.ca_file.read_bytes()).decode()
                    ),
                    # Only this test's namespace, so no other test meets the webhook.
                    namespaceSelector=LabelSelector(matchLabels={"kubernetes.io/metadata.name": namespace}),
                    rules=[
                        RuleWithOperations(
                            apiGroups=[""], apiVersions=["v1"], operations=["CREATE"], resources=["configmaps"]
                        )
                    ],
                )
            ],
        )
    )
    try:
        # The apiserver learns of new webhook configurations through a watch: allow it a moment.
        deadline = time.monotonic() + 10
        refusal = None
        attempt = 0
        while refusal is None and time.monotonic() < deadline:
            attempt += 1
            try:
                admin.create(
                    ConfigMap(
                        metadata=ObjectMeta(name=f"bad-{attempt}", namespace=namespace, labels={"forbidden": "yes"})
                    )
                )
                time.sleep(0.2)
            except ApiError as error:
                refusal = error
        assert refusal is not None, "the webhook never refused a forbidden ConfigMap"
        assert refusal.status.code == 403
        assert "the test webhook refuses forbidden=yes" in (refusal.status.message or "")
        admin.create(ConfigMap(metadata=ObjectMeta(name="good", namespace=namespace, labels={"forbidden": "no"})))
    finally:
        admin.delete(ValidatingWebhookConfiguration, name)
