"""Machine-readable output (-o yaml|json|name|jsonpath|jsonpath-as-json|go-template) as kubectl prints it."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from imagestreams.cli.errors import CliError
from imagestreams.cli.flags import OBJECT_FORMATS, TEMPLATE_FORMATS, OutputFormat
from imagestreams.core.workloadkinds import WORKLOAD_TYPES

FORMATS = OBJECT_FORMATS
# kind -> the resource name kubectl prints with -o name
QUALIFIED = {
    "ImageStream": "imagestream.image.openshift.io",
    **{workload.kind.value: workload.qualified for workload in WORKLOAD_TYPES.values()},
}


def without_managed_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """kubectl leaves metadata.managedFields out of -o json and -o yaml unless asked (templates see them)."""
    result = copy.deepcopy(dict(body))
    (result.get("metadata") or {}).pop("managedFields", None)
    return result


def qualified_name(body: Mapping[str, Any], kind: str | None = None) -> str:
    kind = kind or str(body.get("kind", ""))
    return f"{QUALIFIED.get(kind, kind.lower())}/{body['metadata']['name']}"


def _format(output: OutputFormat | str) -> OutputFormat:
    return output if isinstance(output, OutputFormat) else OutputFormat(output)


def render(
    objects: Sequence[Mapping[str, Any]],
    output: OutputFormat | str,
    *,
    kind: str | None = None,
    allow_missing_keys: bool = True,
) -> str:
    """Objects as kubectl -o prints them: one object alone, several as a List."""
    output = _format(output)
    if output.name == "name":
        return "".join(qualified_name(body, kind) + "\n" for body in objects)
    # As kubectl's printers: only JSON and YAML omit managedFields; jsonpath and go-template see the whole object.
    bodies = [without_managed_fields(body) if output.name in ("json", "yaml") else dict(body) for body in objects]
    document: Any = bodies[0] if len(bodies) == 1 else {"apiVersion": "v1", "kind": "List", "items": bodies}
    return render_document(document, output, allow_missing_keys=allow_missing_keys)


def render_document(document: Any, output: OutputFormat | str, *, allow_missing_keys: bool = True) -> str:
    """Any data as JSON (4-space indent), YAML (sorted keys) or through a template, as kubectl writes them."""
    output = _format(output)
    if output.name == "json":
        return json.dumps(document, indent=4) + "\n"
    if output.name == "yaml":
        import yaml  # noqa: PLC0415 - PyYAML costs 30 ms at start-up; only -o yaml needs it

        return str(yaml.safe_dump(document, default_flow_style=False, sort_keys=True))
    if output.name in ("jsonpath", "jsonpath-as-json"):
        from imagestreams.cli import jsonpath  # noqa: PLC0415

        template = jsonpath.parse(output.template)
        return jsonpath.execute(
            template, document, allow_missing_keys=allow_missing_keys, as_json=output.name == "jsonpath-as-json"
        )
    if output.name == "go-template":
        from imagestreams.cli import gotemplate  # noqa: PLC0415 - it loads gotpl

        return gotemplate.execute(gotemplate.parse(output.template, allow_missing_keys=allow_missing_keys), document)
    allowed = ", ".join((*FORMATS, *TEMPLATE_FORMATS))
    raise CliError(
        f"unable to match a printer suitable for the output format {json.dumps(output.name)}, allowed: {allowed}"
    )


def check_template(output: OutputFormat | None) -> None:
    """Parse -o's template now, so that one that does not parse fails before anything is read or written (kubectl
    builds its printer first); CliError with kubectl's message."""
    if output is None:
        return
    if output.name in ("jsonpath", "jsonpath-as-json"):
        from imagestreams.cli import jsonpath  # noqa: PLC0415

        jsonpath.parse(output.template)
    elif output.name == "go-template":
        from imagestreams.cli import gotemplate  # noqa: PLC0415 - it loads gotpl

        gotemplate.parse(output.template)
