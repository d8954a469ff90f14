"""OpenShift's write-time rules for image streams at admission (to be written): see core/streamwrite.py."""

from __future__ import annotations

from lightkube import Client

from imagestreams.admission.review import Request, Response


class StreamWrites:
    def __init__(self, kube: Client) -> None:
        self.kube = kube

    def mutate(self, request: Request) -> Response:
        return Response()

    def validate(self, request: Request) -> Response:
        return Response()
