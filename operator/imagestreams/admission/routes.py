"""Which handler serves which webhook path (the paths are those of api/webhooks.py)."""

from __future__ import annotations

import logging

from lightkube import Client

from imagestreams.admission.lookup import ImageLookup, LookupObserver
from imagestreams.admission.review import Request, Response
from imagestreams.admission.server import Handler
from imagestreams.admission.streams import StreamWrites
from imagestreams.api.webhooks import LOOKUP_PATH, STREAM_MUTATE_PATH, STREAM_VALIDATE_PATH

logger = logging.getLogger(__name__)
INTERNAL_ERROR = 500


def refusing_on_error(handler: Handler) -> Handler:
    """For the stream webhooks (failure policy Fail): a handler that raises refuses the write, as the API server
    would if the webhook could not be called, instead of letting it through without OpenShift's rules (the
    server lets a failed lookup through: its policy is Ignore)."""

    def guarded(request: Request) -> Response:
        try:
            return handler(request)
        except Exception as error:
            logger.exception("admission: %s %s/%s failed", request.kind, request.namespace, request.name)
            message = f"the image stream operator could not check this write ({type(error).__name__}); try again"
            return Response(allowed=False, code=INTERNAL_ERROR, reason="InternalError", message=message)

    return guarded


def handlers(kube: Client, observe_lookup: LookupObserver | None = None) -> dict[str, Handler]:
    """Every webhook path's handler; `observe_lookup` is told each container's lookup result (for metrics)."""
    lookup = ImageLookup(kube, observe_lookup)
    writes = StreamWrites(kube)
    return {
        LOOKUP_PATH: lookup.admit,
        STREAM_MUTATE_PATH: refusing_on_error(writes.mutate),
        STREAM_VALIDATE_PATH: refusing_on_error(writes.validate),
    }
