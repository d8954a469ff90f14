"""Which handler serves which webhook path (the paths are those of api/webhooks.py)."""

from __future__ import annotations

from lightkube import Client

from imagestreams.admission.lookup import ImageLookup
from imagestreams.admission.server import Handler
from imagestreams.admission.streams import StreamWrites
from imagestreams.api.webhooks import LOOKUP_PATH, STREAM_MUTATE_PATH, STREAM_VALIDATE_PATH


def handlers(kube: Client) -> dict[str, Handler]:
    lookup = ImageLookup(kube)
    writes = StreamWrites(kube)
    return {LOOKUP_PATH: lookup.admit, STREAM_MUTATE_PATH: writes.mutate, STREAM_VALIDATE_PATH: writes.validate}
