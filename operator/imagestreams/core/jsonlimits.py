# Written here rather than imported: orjson refuses nesting only past 1024 levels (beyond what Python code can
# walk afterwards, with its recursion limit of 1000), reads JSON differently (no NaN or Infinity) and is a compiled
# dependency; the check is a few lines over the standard json module.
"""JSON from users and registries, with a nesting limit instead of a RecursionError.

`json.loads` recurses once per array or object level, so `[[[[...` a few thousand levels deep
raises RecursionError, which no parser catches as bad input (RecursionError is not a ValueError),
and a document just under Python's recursion limit makes every later walk over it (json.dumps, repr)
fail the same way. `load_json` refuses such documents with `JSONNestingError`, a ValueError, so
every `except ValueError` that reports bad JSON reports this too. The check is one linear regex
pass, and is skipped when the text has too few brackets to nest that deep.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from typing import Any

# Every document this project reads (trigger annotations, manifests, image configs, docker configs, token
# answers, registry error bodies) nests fewer than 8 levels; 64 leaves room for anything legitimate.
MAX_JSON_DEPTH = 64

# A string (an unterminated one runs to the end, so no position is scanned twice), or text without
# brackets or quotes. Brackets inside strings do not nest.
_FILLER = r'(?:[^"\[\]{}]++|"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\\?\Z))*+'


class JSONNestingError(ValueError):
    """The document nests arrays and objects deeper than the limit."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels of arrays and objects")
        self.max_depth = max_depth


@functools.cache
def _nested_at_most(max_depth: int) -> re.Pattern[str]:
    # Brackets balanced to at most `max_depth` levels, written out level by level: a regex cannot count,
    # but it can spell out a fixed number of levels. Possessive quantifiers keep the match linear.
    level = _FILLER
    for _ in range(max_depth):
        level = rf"{_FILLER}(?:[\[{{]{level}[\]}}]{_FILLER})*+"
    return re.compile(level, re.DOTALL)


def _may_nest_deeper(text: str, max_depth: int) -> bool:
    if text.count("[") + text.count("{") <= max_depth:
        return False
    # Not balanced within the limit: too deep, or not JSON at all (json.loads then says what is wrong).
    return _nested_at_most(max_depth).fullmatch(text) is None


def load_json(
    document: str | bytes | bytearray, *, max_depth: int = MAX_JSON_DEPTH, decoder: json.JSONDecoder | None = None
) -> Any:
    """`json.loads`, raising JSONNestingError (a ValueError) for arrays and objects nested deeper than `max_depth`.

    Invalid JSON raises json.JSONDecodeError as json.loads does; bytes are decoded as json.loads decodes
    them (UTF-8, -16 or -32, told apart by their first bytes), so UnicodeDecodeError can come from them too.
    `decoder`, when given, reads the text instead of json.loads (for a caller with hooks of its own).
    """
    if isinstance(document, str):
        text = document
    elif isinstance(document, bytes | bytearray):
        text = bytes(document).decode(json.detect_encoding(document), "surrogatepass")
    else:
        raise TypeError(f"the JSON document must be str, bytes or bytearray, not {type(document).__name__}")
    if _may_nest_deeper(text, max_depth):
        with contextlib.suppress(RecursionError):
            json.loads(text)
        raise JSONNestingError(max_depth)
    return json.loads(text) if decoder is None else decoder.decode(text)
