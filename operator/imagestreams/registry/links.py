"""Parse the Link header (RFC 8288) that registries use to paginate tag lists.

The header comes from the registry, so reading is linear and bounded: the patterns are anchored and
possessive (no text is scanned twice), and reading stops after `MAX_LINKS` links or `MAX_PARAMETERS`
parameters of one link. Registries send one link; RFC 5988 examples have four.
"""

from __future__ import annotations

import re

MAX_LINKS = 16
MAX_PARAMETERS = 32

# Possessive quantifiers (*+, ++) are safe here: each is followed by a character it cannot match.
_TARGET = re.compile(r"\s*+<([^>]*+)>")
_PARAM = re.compile(r'\s*+;\s*+([^\s;=,]++)\s*+(?:=\s*+("[^"\\]*+(?:\\.[^"\\]*+)*+"|[^\s;,]*+))?')
_SEPARATOR = re.compile(r"\s*+,")


def parse_link_next(header: str | None) -> str | None:
    """The target of the rel="next" link, as written (possibly relative); None when there is none.

    None too when the next link comes after MAX_LINKS links, or after MAX_PARAMETERS parameters of one link.
    """
    if not header:
        return None
    position = 0
    for _ in range(MAX_LINKS):
        target = _TARGET.match(header, position)
        if not target:
            return None
        position = target.end()
        relations: list[str] = []
        read = 0
        while read < MAX_PARAMETERS and (param := _PARAM.match(header, position)):
            position = param.end()
            read += 1
            if param.group(1).lower() == "rel":
                relations.extend((param.group(2) or "").strip('"').lower().split())
        if "next" in relations:
            return target.group(1).strip()
        separator = _SEPARATOR.match(header, position)
        if not separator:
            return None
        position = separator.end()
    return None
