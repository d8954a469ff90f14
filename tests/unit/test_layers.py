"""The package's layers stay apart (ARCHITECTURE.md): decisions in core/ do no I/O and know no framework,
only controller/ knows Kopf, and the CLI never imports the controller."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "imagestreams"

# layer -> prefixes of modules it must not import
FORBIDDEN = {
    "core": (
        "imagestreams.kube",
        "imagestreams.controller",
        "imagestreams.registry",
        "imagestreams.cli",
        "imagestreams.localcluster",
        "kopf",
        "lightkube",
        "aiohttp",
        "httpx2",
        "socket",
        "subprocess",
    ),
    "api": (
        "imagestreams.kube",
        "imagestreams.controller",
        "imagestreams.registry",
        "imagestreams.cli",
        "kopf",
        "lightkube",
        "aiohttp",
    ),
    "registry": ("imagestreams.kube", "imagestreams.controller", "imagestreams.cli", "kopf", "lightkube"),
    "kube": ("imagestreams.controller", "imagestreams.cli", "kopf"),
    "cli": ("imagestreams.controller", "kopf"),
    "localcluster": ("imagestreams.controller", "kopf"),
}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    violations = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for name in sorted(imports(path))
        if any(name == bad or name.startswith(f"{bad}.") for bad in FORBIDDEN[layer])
    ]
    assert violations == []


def test_every_layer_exists() -> None:
    assert all((PACKAGE / layer).is_dir() for layer in FORBIDDEN)
