"""Kubernetes Events about an object, posted by the operator (never with credentials in them)."""

from __future__ import annotations

import datetime
import logging
import socket
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

logger = logging.getLogger(__name__)
COMPONENT = "imagestream-operator"
MAX_MESSAGE = 1024  # the API server refuses messages over 1 KiB on events.k8s.io; stay within it here too


async def post_event(client: AsyncClient, body: dict[str, Any], event_type: str, reason: str, message: str) -> None:
    """Post an Event about `body`; a failure is logged, never raised: events are advisory."""
    metadata = body.get("metadata") or {}
    now = datetime.datetime.now(datetime.UTC)
    event = Event(
        metadata=ObjectMeta(generateName=f"{metadata.get('name', 'object')}.", namespace=metadata.get("namespace")),
        involvedObject=ObjectReference(
            apiVersion=body.get("apiVersion"),
            kind=body.get("kind"),
            name=metadata.get("name"),
            namespace=metadata.get("namespace"),
            uid=metadata.get("uid"),
            resourceVersion=metadata.get("resourceVersion"),
        ),
        type=event_type,
        reason=reason,
        message=message[:MAX_MESSAGE],
        source=EventSource(component=COMPONENT),
        reportingComponent=COMPONENT,
        reportingInstance=socket.gethostname(),
        firstTimestamp=now,
        lastTimestamp=now,
        count=1,
    )
    try:
        await client.create(event)
    except ApiError as error:
        logger.warning("could not post %s event %s: %s", event_type, reason, error.status.message)
