"""Machine-readable output (-o yaml|json|name) as kubectl prints it."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from imagestreams.cli.errors import CliError
from imagestreams.core.workloadkinds import WORKLOAD_TYPES

FORMATS = ("yaml", "json", "name")
# kind -> the resource name kubectl prints with -o name
QUALIFIED = {
    "ImageStream": "imagestream.image.openshift.io",
    **{workload.kind.value: workload.qualified for workload in WORKLOAD_TYPES.values()},
}


def without_managed_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """kubectl leaves metadata.managedFields out unless asked."""
    result = copy.deepcopy(dict(body))
    (result.get("metadata") or {}).pop("managedFields", None)
    return result


def qualified_name(body: Mapping[str, Any], kind: str | None = None) -> str:
    kind = kind or str(body.get("kind", ""))
    return f"{QUALIFIED.get(kind, kind.lower())}/{body['metadata']['name']}"


def render(objects: Sequence[Mapping[str, Any]], output: str, *, kind: str | None = None) -> str:
    """Objects as kubectl -o prints them: one object alone, several as a List."""
    if output == "name":
        return "".join(qualified_name(body, kind) + "\n" for body in objects)
    bodies = [without_managed_fields(body) for body in objects]
    document: Any = bodies[0] if len(bodies) == 1 else {"apiVersion": "v1", "kind": "List", "items": bodies}
    return render_document(document, output)


def render_document(document: Any, output: str) -> str:
    """Any data as JSON (4-space indent) or YAML (sorted keys), as kubectl writes them."""
    if output == "json":
        return json.dumps(document, indent=4) + "\n"
    if output == "yaml":
        import yaml  # noqa: PLC0415

        return str(yaml.safe_dump(document, default_flow_style=False, sort_keys=True))
    allowed = ", ".join(FORMATS)
    raise CliError(f"unable to match a printer suitable for the output format {json.dumps(output)}, allowed: {allowed}")
