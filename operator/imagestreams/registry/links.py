"""Parse the Link header (RFC 8288) that registries use to paginate tag lists."""

from __future__ import annotations

import re

_TARGET = re.compile(r"\s*<([^>]*)>")
_PARAM = re.compile(r'\s*;\s*([^\s;=,]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^\s;,]*))?')
_SEPARATOR = re.compile(r"\s*,")


def parse_link_next(header: str | None) -> str | None:
    """The target of the rel="next" link, as written (possibly relative); None when there is none."""
    if not header:
        return None
    position = 0
    while target := _TARGET.match(header, position):
        position = target.end()
        relations: list[str] = []
        while param := _PARAM.match(header, position):
            position = param.end()
            if param.group(1).lower() == "rel":
                relations.extend((param.group(2) or "").strip('"').lower().split())
        if "next" in relations:
            return target.group(1).strip()
        separator = _SEPARATOR.match(header, position)
        if not separator:
            return None
        position = separator.end()
    return None
