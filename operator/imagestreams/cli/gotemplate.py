"""kubectl's Go templates (`-o go-template=...`), as k8s.io/cli-runtime's GoTemplatePrinter runs them. Pure.

Why gotpl: kubectl's go-template is Go's text/template itself (actions, pipelines, variables, the built-in
functions, fmt's printing of values), and gotpl (PyPI, Apache-2.0) reproduces text/template in pure Python; a
hand-written copy of Go's template language would only drift from it. Added here, as kubectl adds it: the
template's name `output`; the functions `exists` and `base64decode`; the data as kubectl hands it over (the object
marshalled to JSON and read back with apimachinery's json.Unmarshal, which keeps whole numbers as int64 and makes
the others float64: 1000000 prints as 1000000, 1.5 as 1.5, 1e21 as 1e+21); `missingkey=error` for
--allow-missing-template-keys=false; and kubectl's messages and debugging output when a template fails, with
gotpl's error words replaced by Go's where they differ. gotpl runs sandboxed so that only map keys are fields, as
with Go's JSON maps (without it `.metadata.name.upper` would call Python's str.upper). gotpl takes about 0.13 s to
import, so it is imported only when a go-template is parsed.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagestreams.cli.errors import CliError, PrintedError
from imagestreams.cli.jsonpath import go_json

if TYPE_CHECKING:
    import gotpl

NAME = "output"  # the name kubectl gives the template; it appears in error messages

_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_NEWLINES = frozenset(b"\r\n")


# --- kubectl's functions (k8s.io/cli-runtime printers) --------------------------------------------------------------


def exists(item: object, *indices: object) -> bool:
    """Whether `index item indices...` would find a value that is not nil (kubectl's `exists`): lists and strings
    take an integer index in range, maps a string key; anything else, or a nil on the way, is false."""
    value = item
    for index in indices:
        if isinstance(value, str):
            value = value.encode()  # Go indexes a string by bytes
        if isinstance(value, (list, bytes)):
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(value):
                return False
            value = value[index]
        elif isinstance(value, dict):
            key = "" if index is None or _is_invalid(index) else index  # Go indexes with the key type's zero value
            if not isinstance(key, str):
                return False
            value = value.get(key)
        else:
            return False
    return not indices or not (value is None or _is_invalid(value))


def base64decode(value: object) -> str:
    """kubectl's `base64decode`: standard padded base64 (line breaks skipped), decoded to text."""
    if not isinstance(value, str):
        import gotpl  # noqa: PLC0415 - loaded already: a template is running

        # Go checks the argument before the call, so its message has no `error calling base64decode:`.
        if _is_invalid(value):
            raise gotpl.TemplateExecutionError("invalid value; expected string")
        raise gotpl.TemplateExecutionError(f"wrong type for value; expected string; got {_go_type(value)}")
    encoded = value.encode()
    offset = _base64_error_offset(encoded)
    if offset is not None:
        raise ValueError(f"base64 decode failed: illegal base64 data at input byte {offset}")
    try:
        decoded = base64.b64decode(bytes(byte for byte in encoded if byte not in _NEWLINES), validate=True)
    except binascii.Error as error:  # not expected after the check above
        raise ValueError(f"base64 decode failed: {error}") from None
    return decoded.decode("utf-8", errors="replace")  # Go writes the bytes as they are; text output needs text


def _base64_error_offset(data: bytes) -> int | None:
    """Where Go's base64.StdEncoding gives up on `data` (the byte offset it reports), or None when it decodes.

    Groups of four alphabet characters; `\\r` and `\\n` are skipped anywhere; a group may end in `==` after two
    characters or `=` after three, and then only line breaks may follow; an unfinished group is an error."""
    position, length = 0, len(data)
    while True:
        count = 0  # characters of the current group
        while count < 4:
            if position == length:
                return None if count == 0 else length - count
            byte = data[position]
            position += 1
            if byte in _BASE64:
                count += 1
            elif byte in _NEWLINES:
                continue
            elif byte != ord("=") or count < 2:
                return position - 1
            else:
                if count == 2:  # a second `=` must follow, line breaks aside
                    while position < length and data[position] in _NEWLINES:
                        position += 1
                    if position == length:
                        return length
                    if data[position] != ord("="):
                        return position - 1
                    position += 1
                while position < length and data[position] in _NEWLINES:
                    position += 1
                return position if position < length else None


FUNCTIONS: dict[str, Callable[..., object]] = {"exists": exists, "base64decode": base64decode}


def _is_invalid(value: object) -> bool:
    """gotpl's marker for a missing value (Go's invalid reflect.Value), without importing gotpl for it."""
    return type(value).__name__ == "_InvalidValue"


def _go_type(value: object) -> str:
    """The Go type of a value decoded from JSON, as Go's messages name it."""
    if value is None:
        return "interface {}"  # a JSON null: a nil interface{}
    return {bool: "bool", float: "float64", int: "int64", str: "string", list: "[]interface {}"}.get(
        type(value), "map[string]interface {}"
    )


# --- parsing and running ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GoTemplate:
    text: str
    compiled: gotpl.Template


def parse(text: str, *, allow_missing_keys: bool = True) -> GoTemplate:
    """Parse a go-template as kubectl does; CliError with kubectl's message when it does not parse."""
    import gotpl  # noqa: PLC0415 - 0.13 s to import: only for go-templates

    # Only the two functions may be added; no execution limits (kubectl sets none). The sandbox also drops the
    # built-in `call`, which has nothing to call in JSON data.
    sandbox = gotpl.SandboxPolicy(
        allow_functions=FUNCTIONS, default_budget=gotpl.ExecutionBudget(), max_template_chars=len(text)
    )
    try:
        compiled = gotpl.Template(
            text,
            name=NAME,
            functions=FUNCTIONS,
            missing_key="default" if allow_missing_keys else "error",
            sandbox=sandbox,
        )
    except (gotpl.TemplateError, ValueError, RecursionError) as error:
        raise CliError(f"error parsing template {text}, {_parse_message(error)}") from None
    return GoTemplate(text, compiled)


def execute(template: GoTemplate, document: Any) -> str:
    """The template's text for `document`. When it fails: PrintedError carrying what kubectl writes to the output
    (the text up to the failure, then the template, the raw JSON and the data) and kubectl's error message."""
    import gotpl  # noqa: PLC0415 - already imported by parse

    raw = go_json(document)  # json.Marshal: compact, keys sorted
    data = json.loads(raw, parse_int=_go_integer)
    out = io.StringIO()
    try:
        template.compiled.render_to(out, data)
    except (gotpl.TemplateError, RecursionError) as error:
        message = _execution_message(error, template.text)
        shown = gotpl.render('{{printf "%+v" .}}', data)
        printed = (
            f"Error executing template: {message}. Printing more information for debugging the template:\n"
            f"\ttemplate was:\n\t\t{template.text}\n"
            f"\traw data was:\n\t\t{raw}\n"
            f"\tobject given to template engine was:\n\t\t{shown}\n\n"
        )
        quoted = json.dumps(template.text, ensure_ascii=False)  # Go's %q, for printable text
        raise PrintedError(f"error executing template {quoted}: {message}", out.getvalue() + printed) from None
    return out.getvalue()


def _go_integer(text: str) -> int | float:
    """A JSON number without fraction or exponent as apimachinery's json.Unmarshal decodes it into interface{}:
    an int64 when it fits, else a float64 (a number with a fraction or an exponent is always a float64)."""
    value = int(text)
    return value if -(2**63) <= value < 2**63 else float(value)


# --- messages in Go's shape ---------------------------------------------------------------------------------------

_GOTPL_LOCATION = re.compile(r"template:\d+:\d+: ")
_MISSING_KEY = re.compile(r"missing key or attribute '((?:[^'\\]|\\.)*)'")
_NOT_A_MAP = re.compile(r"(?:attribute|method|property) '((?:[^'\\]|\\.)*)' is not allowed")
_FUNCTION_FAILED = re.compile(r"function '(\w+)' failed: ")
_QUOTED_NAME = re.compile(r"(function|variable) '([^']*)'")  # Go quotes names with "


def _parse_message(error: Exception) -> str:
    """Go's `template: output:LINE: MESSAGE` (gotpl writes `template:LINE:COLUMN: MESSAGE`)."""
    message = str(error)
    line = getattr(error, "line", None)
    if line is None or not _GOTPL_LOCATION.match(message):
        return message
    message = _GOTPL_LOCATION.sub("", message, count=1)
    return f"template: {NAME}:{line}: {_QUOTED_NAME.sub(lambda match: f'{match[1]} {json.dumps(match[2])}', message)}"


def _execution_message(error: Exception, text: str) -> str:
    """Go's `template: output:LINE:COLUMN: executing "output" at <NODE>: MESSAGE`, with the node Go names and its
    position as Go counts it (a byte offset from 0 on its line), and gotpl's words for a missing key, a field of
    something that is not a map and a failed function replaced by Go's."""
    message = getattr(error, "message", None)
    position = getattr(error, "position", None)
    if not isinstance(message, str) or not isinstance(position, int):
        return str(error)
    message = _MISSING_KEY.sub(lambda match: f"map has no entry for key {json.dumps(match[1])}", message)
    message = _NOT_A_MAP.sub(lambda match: f"can't evaluate field {match[1]} in type interface {{}}", message)
    message = _FUNCTION_FAILED.sub(r"error calling \1: ", message)
    source = text.encode()
    offset, node = _failing_node(source[position:].decode(errors="replace"), message)
    before = source[: position + offset]
    line = before.count(b"\n") + 1
    column = len(before) - (before.rfind(b"\n") + 1)
    return f'template: {NAME}:{line}:{column}: executing "{NAME}" at <{node}>: {message}'


_OPERAND = re.compile(r"[^\s|()}]+")
_SEGMENT = re.compile(r"[.$][^.]*")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`|\'(?:[^\'\\]|\\.)*\'')


def _failing_node(rest: str, message: str) -> tuple[int, str]:
    """The node Go names in an execution error, read from the template text where gotpl says it failed (`rest`),
    and its byte offset from there: a field chain or variable, at its second element as Go positions chains
    (`.spec.nope` is at `.nope`); else the whole command (`index .spec.tags 4`), or, when an argument has the
    wrong type, that argument (Go checks arguments before the call)."""
    if rest[:1] in (".", "$"):
        operand = _OPERAND.match(rest)
        chain = operand[0] if operand else rest[:1]
        segments = _SEGMENT.findall(chain)
        return (len(segments[0].encode()) if len(segments) > 1 else 0), chain
    command = _command(rest)
    name, _, argument = command.partition(" ")
    if argument and message.startswith(("wrong type for value;", "invalid value;")):
        start = rest.index(argument.split(" ")[0], len(name))
        offset, node = _failing_node(rest[start:], "")
        return len(rest[:start].encode()) + offset, node
    return 0, command


def _command(rest: str) -> str:
    """The command at the start of `rest`, up to its pipe, closing parenthesis or delimiter, spaced as Go prints it."""
    parts, depth, index = [], 0, 0
    while index < len(rest):
        quoted = _QUOTED.match(rest, index)
        if quoted:
            parts.append(quoted[0])
            index = quoted.end()
            continue
        char = rest[index]
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and (char == "|" or rest.startswith("}}", index) or rest.startswith(" -}}", index)):
            break
        parts.append(char)
        index += 1
    return " ".join("".join(parts).split())
