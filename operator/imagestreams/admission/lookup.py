"""Image lookup at admission (to be written): see core/lookup.py."""

from __future__ import annotations

from lightkube import Client

from imagestreams.admission.review import Request, Response


class ImageLookup:
    def __init__(self, kube: Client) -> None:
        self.kube = kube

    def admit(self, request: Request) -> Response:
        return Response()
