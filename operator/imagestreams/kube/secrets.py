"""Pull secrets of a namespace, as keyring entries for registry credentials."""

from __future__ import annotations

import base64
import logging

from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import Secret

from imagestreams.core.keyring import InvalidDockerConfig, KeyringEntry, parse_dockercfg, parse_dockerconfigjson

logger = logging.getLogger(__name__)

EXCLUDE_ANNOTATION = "openshift.io/image.excludeSecret"
DOCKER_CONFIG_JSON = ("kubernetes.io/dockerconfigjson", ".dockerconfigjson", parse_dockerconfigjson)
DOCKER_CFG = ("kubernetes.io/dockercfg", ".dockercfg", parse_dockercfg)


_forbidden_namespaces: set[str] = set()  # where reading secrets was refused, to say so once per namespace


async def pull_secret_entries(client: AsyncClient, namespace: str) -> list[KeyringEntry]:
    """Every registry credential in the namespace's pull secrets, except those marked excluded.

    None where the operator may not read secrets (cluster-wide installs read them only in namespaces that
    bind the pull-secrets ClusterRole): imports there are anonymous, as with no pull secret at all.
    """
    try:
        return await _entries(client, namespace)
    except ApiError as error:
        if error.status.code != 403:
            raise
        if namespace not in _forbidden_namespaces:
            _forbidden_namespaces.add(namespace)
            logger.info(
                "may not read pull secrets in namespace %s: its imports are anonymous until the operator's "
                "pull-secrets ClusterRole is bound there (docs/install.md, Pull secrets)",
                namespace,
            )
        return []


async def _entries(client: AsyncClient, namespace: str) -> list[KeyringEntry]:
    entries: list[KeyringEntry] = []
    for secret_type, key, parse in (DOCKER_CONFIG_JSON, DOCKER_CFG):
        async for secret in client.list(Secret, namespace=namespace, fields={"type": secret_type}):
            metadata = secret.metadata
            name = metadata.name if metadata else "?"
            annotations = (metadata.annotations if metadata else None) or {}
            if annotations.get(EXCLUDE_ANNOTATION) == "true":
                continue
            encoded = (secret.data or {}).get(key)
            if not encoded:
                continue
            try:
                entries.extend(parse(base64.b64decode(encoded)))
            except (InvalidDockerConfig, ValueError) as error:
                # The message says what is malformed, never the secret's content.
                logger.warning("ignoring pull secret %s/%s: %s", namespace, name, error)
    _forbidden_namespaces.discard(namespace)
    return entries
