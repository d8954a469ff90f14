"""kubectl's JSONPath templates (`-o jsonpath=...`), written by hand after client-go's util/jsonpath. Pure.

Why not a library: kubectl's JSONPath is a template language, not a query. Text outside `{}` is printed,
`{range ...}{end}` loops, `{"\\n"}` quotes text, results are printed space-separated with maps and lists as
compact JSON, and paths have kubectl's own grammar (`.kubernetes\\.io/name` escapes, `['a.b']` splitting on
dots, `[*]` only on lists, `=~` filters, `exists` filters). jsonpath-ng (checked, 1.8) evaluates standard
JSONPath queries only: it has no template, `range` or printing rules, rejects `/` in a bare field name, reads
`[*]` on a map as the map itself, and orders recursive descent differently. So the template parser and the
evaluator below follow client-go's parser.go and jsonpath.go, node for node, with the same error messages.
Deliberate differences: map keys are visited in sorted order (Go's map order is random), and `[n]` on lists of
different lengths is computed per list (client-go reuses the first list's normalised index).
"""

from __future__ import annotations

import decimal
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imagestreams.cli.errors import CliError


class JSONPathError(Exception):
    """A template that does not parse, or one that fails on the data."""


# --- nodes ------------------------------------------------------------------------------------------------------


@dataclass
class ListNode:
    nodes: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class TextNode:
    text: str


@dataclass(frozen=True)
class FieldNode:
    name: str


@dataclass(frozen=True)
class SliceParam:
    known: bool
    value: int
    derived: bool = False


@dataclass(frozen=True)
class ArrayNode:
    params: tuple[SliceParam, SliceParam, SliceParam]


@dataclass(frozen=True)
class FilterNode:
    left: ListNode
    right: ListNode
    operator: str


@dataclass(frozen=True)
class ConstantNode:
    """An int, float or bool literal (client-go's IntNode, FloatNode, BoolNode)."""

    value: int | float | bool


@dataclass(frozen=True)
class WildcardNode:
    pass


@dataclass(frozen=True)
class RecursiveNode:
    pass


@dataclass(frozen=True)
class UnionNode:
    branches: tuple[ListNode, ...]


@dataclass(frozen=True)
class IdentifierNode:
    name: str


# --- the parser (client-go's parser.go) ---------------------------------------------------------------------------

_DICT_KEY = re.compile(r"'([^']*)'")
_SLICE = re.compile(r"(-?\d*)(:-?\d*)?(:-?\d*)?")
_FILTER = re.compile(r"([^!<>=]+)([!<>=~]+)(.+?)", re.DOTALL)
_TERMINATORS = frozenset(" \t\r\n.,[]$@{}")


def _is_alphanumeric(char: str) -> bool:
    return char == "_" or char.isalpha() or char.isdigit()


class _Parser:
    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.root = ListNode()

    def consume(self) -> str:
        value = self.input[self.start : self.pos]
        self.start = self.pos
        return value

    def next(self) -> str:
        """The next character, or "" at the end."""
        if self.pos >= len(self.input):
            return ""
        char = self.input[self.pos]
        self.pos += 1
        return char

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def parse(self) -> ListNode:
        """Text up to each `{`, then the action up to its `}` (client-go's parseText)."""
        while True:
            brace = self.input.find("{", self.pos)
            self.pos = len(self.input) if brace < 0 else brace
            if self.pos > self.start:
                self.root.nodes.append(TextNode(self.consume()))
            if brace < 0:
                return self.root
            self.pos += 1
            self.consume()
            action = ListNode()
            self.root.nodes.append(action)
            self.parse_action(action)

    def parse_action(self, cur: ListNode) -> None:
        """The inside of one `{...}`, up to and including its `}`."""
        while True:
            if self.input.startswith("}", self.pos):
                self.pos += 1
                self.consume()
                return
            if self.input.startswith("[?(", self.pos):
                self.parse_filter(cur)
                continue
            if self.input.startswith("..", self.pos):
                self.parse_recursive(cur)
                continue
            char = self.next()
            if char in ("", "\r", "\n"):
                raise JSONPathError("unclosed action")
            if char in (" ", "@", "$"):
                self.consume()
            elif char == "[":
                self.parse_array(cur)
            elif char in ('"', "'"):
                self.parse_quote(cur, char)
            elif char == ".":
                self.parse_field(cur)
            elif char in "+-" or char.isdigit():
                self.pos -= 1
                self.parse_number(cur)
            elif _is_alphanumeric(char):
                self.pos -= 1
                self.parse_identifier(cur)
            else:
                raise JSONPathError(f"unrecognized character in action: U+{ord(char):04X} {char!r}")

    def parse_identifier(self, cur: ListNode) -> None:
        while (char := self.next()) and char not in _TERMINATORS:
            pass
        if char:
            self.pos -= 1
        value = self.consume()
        cur.nodes.append(ConstantNode(value == "true") if value in ("true", "false") else IdentifierNode(value))

    def parse_recursive(self, cur: ListNode) -> None:
        if cur.nodes and isinstance(cur.nodes[-1], RecursiveNode):
            raise JSONPathError("invalid multiple recursive descent")
        self.pos += 2
        self.consume()
        cur.nodes.append(RecursiveNode())
        if _is_alphanumeric(self.peek()):
            self.parse_field(cur)

    def parse_number(self, cur: ListNode) -> None:
        if self.peek() in ("+", "-"):
            self.next()
        while (char := self.next()) and (char == "." or char.isdigit()):
            pass
        if char:
            self.pos -= 1
        value = self.consume()
        try:
            cur.nodes.append(ConstantNode(int(value)))
            return
        except ValueError:
            pass
        try:
            cur.nodes.append(ConstantNode(float(value)))
        except ValueError:
            raise JSONPathError(f"cannot parse number {value}") from None

    def parse_array(self, cur: ListNode) -> None:
        while True:
            char = self.next()
            if char in ("", "\n"):
                raise JSONPathError("unterminated array")
            if char == "]":
                break
        text = self.consume()[1:-1]
        if text == "*":
            text = ":"
        parts = text.split(",")
        if len(parts) > 1:
            cur.nodes.append(UnionNode(tuple(_parse_inner(f"[{part.strip(' ')}]") for part in parts)))
            return
        key = _DICT_KEY.fullmatch(text)
        if key:
            cur.nodes.extend(_parse_inner(f".{key.group(1)}").nodes)
            return
        cur.nodes.append(ArrayNode(_slice_params(text)))

    def parse_filter(self, cur: ListNode) -> None:
        self.pos += 3
        self.consume()
        begin = end = False
        pair = ""
        while True:
            char = self.next()
            if char in ("", "\n"):
                raise JSONPathError("unterminated filter")
            if char in ('"', "'"):
                if not begin:
                    begin, pair = True, char
                    continue
                if self.input[self.pos - 2] != "\\" and char == pair:
                    end = True
            elif char == ")" and begin == end:
                break
        if self.next() != "]":
            raise JSONPathError("unclosed array expect ]")
        text = self.consume()[:-2]
        parts = _FILTER.fullmatch(text)
        if parts is None:
            cur.nodes.append(FilterNode(_parse_inner(text), ListNode(), "exists"))
        else:
            cur.nodes.append(FilterNode(_parse_inner(parts.group(1)), _parse_inner(parts.group(3)), parts.group(2)))

    def parse_quote(self, cur: ListNode, quote: str) -> None:
        while True:
            char = self.next()
            if char in ("", "\n"):
                raise JSONPathError("unterminated quoted string")
            if char == quote and self.input[self.pos - 2] != "\\":
                break
        value = self.consume()
        try:
            cur.nodes.append(TextNode(unquote(value)))
        except ValueError as error:
            raise JSONPathError(f"unquote string {value} error {error}") from None

    def parse_field(self, cur: ListNode) -> None:
        self.consume()
        while char := self.next():
            if char == "\\":
                self.next()
            elif char in _TERMINATORS:
                self.pos -= 1
                break
        value = self.consume()
        cur.nodes.append(WildcardNode() if value == "*" else FieldNode(value.replace("\\", "")))


def _slice_params(text: str) -> tuple[SliceParam, SliceParam, SliceParam]:
    """`[start:end:step]`, `[i]` (end derived: i+1) or `[:]` (client-go's sliceOperatorRex and its params)."""
    match = _SLICE.fullmatch(text)
    if match is None:
        raise JSONPathError(f"invalid array index {text}")
    groups = [match.group(1), match.group(2) or "", match.group(3) or ""]
    params: list[SliceParam] = []
    for index, part in enumerate(groups):
        digits = part[1:] if index > 0 else part
        if part and (index == 0 or digits):
            try:
                params.append(SliceParam(True, int(digits)))
            except ValueError:
                raise JSONPathError(f"array index {digits} is not a number") from None
        elif index == 1 and not part:
            params.append(SliceParam(True, params[0].value + 1, derived=True))
        else:
            params.append(SliceParam(False, 0))
    return params[0], params[1], params[2]


def _parse_inner(text: str) -> ListNode:
    """One action's nodes, parsed from its text without braces (client-go's parseAction)."""
    parser = _Parser("{" + text + "}")
    root = parser.parse()
    node = root.nodes[0]
    assert isinstance(node, ListNode)
    return node


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def unquote(text: str) -> str:
    """Go's strconv.Unquote, with single quotes allowed around a string too (client-go's UnquoteExtend)."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"'":
        raise ValueError("invalid syntax")
    quote, body = text[0], text[1:-1]
    result: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == quote:
            raise ValueError("invalid syntax")
        if char != "\\":
            result.append(char)
            index += 1
            continue
        if index + 1 >= len(body):
            raise ValueError("invalid syntax")
        escape = body[index + 1]
        index += 2
        if escape in _ESCAPES:
            result.append(_ESCAPES[escape])
        elif escape == quote:
            result.append(quote)
        elif escape in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[escape]
            digits = body[index : index + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            result.append(chr(int(digits, 16)))
            index += width
        elif escape in "01234567":
            digits = body[index - 1 : index + 2]
            if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
                raise ValueError("invalid syntax")
            result.append(chr(int(digits, 8)))
            index += 2
        else:
            raise ValueError("invalid syntax")
    return "".join(result)


# --- the template: text and actions, with range blocks -------------------------------------------------------------


@dataclass
class Block:
    """A `{range ...}` action and what is printed for each of its results, up to its `{end}`."""

    action: ListNode | None  # None for the whole template
    body: list[Any] = field(default_factory=list)  # TextNode, ListNode or Block


@dataclass(frozen=True)
class Template:
    text: str
    root: Block


def _identifiers(action: ListNode) -> set[str]:
    return {node.name for node in action.nodes if isinstance(node, IdentifierNode)}


def parse(text: str) -> Template:
    """Parse a kubectl JSONPath template; CliError with kubectl's message when it does not parse."""
    try:
        nodes = _Parser(text).parse().nodes
        root = Block(None)
        stack = [root]
        for node in nodes:
            names = _identifiers(node) if isinstance(node, ListNode) else set()
            if "range" in names:
                block = Block(node)
                stack[-1].body.append(block)
                stack.append(block)
            elif "end" in names:
                if len(stack) == 1:
                    raise JSONPathError("not in range, nothing to end")
                stack.pop()
            else:
                stack[-1].body.append(node)
    except JSONPathError as error:
        raise CliError(f"error parsing jsonpath {text}, {error}") from None
    return Template(text, root)


# --- evaluation (client-go's jsonpath.go) ------------------------------------------------------------------------


class _Evaluator:
    def __init__(self, allow_missing_keys: bool) -> None:
        self.allow_missing_keys = allow_missing_keys

    def walk(self, values: list[Any], node: Any) -> list[Any]:  # noqa: PLR0911 - one case per node type
        if isinstance(node, ListNode):
            return self.evaluate(values, node)
        if isinstance(node, TextNode):
            return [node.text]
        if isinstance(node, FieldNode):
            return self.field(values, node)
        if isinstance(node, ArrayNode):
            return self.array(values, node)
        if isinstance(node, FilterNode):
            return self.filter(values, node)
        if isinstance(node, ConstantNode):
            return [node.value for _ in values]
        if isinstance(node, WildcardNode):
            return [child for value in values if value is not None for child in _children(value)]
        if isinstance(node, RecursiveNode):
            return self.recursive(values)
        if isinstance(node, UnionNode):
            return [item for branch in node.branches for item in self.evaluate(values, branch)]
        if isinstance(node, IdentifierNode):
            if node.name in ("range", "end"):
                return values
            raise JSONPathError(f"unrecognized identifier {node.name}")
        raise JSONPathError(f"unexpected Node {node}")

    def render(self, block: Block, value: Any, out: list[str], as_json: bool) -> None:
        """The block's text and actions for `value`; a range block once for each of its action's results."""
        for node in block.body:
            if isinstance(node, Block):
                assert node.action is not None
                for item in self.evaluate([value], node.action):
                    self.render(node, item, out, as_json)
            elif isinstance(node, TextNode):
                out.append(_print([node.text], as_json))
            else:
                out.append(_print(self.evaluate([value], node), as_json))

    def evaluate(self, values: list[Any], action: ListNode) -> list[Any]:
        for node in action.nodes:
            values = self.walk(values, node)
        return values

    def field(self, values: list[Any], node: FieldNode) -> list[Any]:
        if not values:
            return []
        if not node.name:
            return [value for value in values if value is not None]  # `{.}`: the object itself
        results = [value[node.name] for value in values if isinstance(value, Mapping) and node.name in value]
        if not results and not self.allow_missing_keys:
            raise JSONPathError(f"{node.name} is not found")
        return results

    def array(self, values: list[Any], node: ArrayNode) -> list[Any]:
        results: list[Any] = []
        for value in values:
            if value is None:
                continue
            if not isinstance(value, list):
                raise JSONPathError(f"{_go_type(value)} is not array or slice")
            length = len(value)
            first, last, step = node.params
            start = first.value if first.known else 0
            if start < 0:
                start += length
            end = last.value if last.known else length
            if end < 0 or (end == 0 and last.derived):
                end += length
            if end == start:
                continue
            if start >= length or start < 0:
                raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
            if end > length or end < 0:
                raise JSONPathError(f"array index out of bounds: index {end - 1}, length {length}")
            if start > end:
                raise JSONPathError(f"starting index {start} is greater than ending index {end}")
            if step.known and step.value <= 0:
                raise JSONPathError("step must be > 0")
            results += value[start : end : step.value if step.known else 1]
        return results

    def recursive(self, values: list[Any]) -> list[Any]:
        results: list[Any] = []
        pending = [value for value in reversed(values) if value is not None]
        while pending:  # depth first, parents before children, as client-go's evalRecursive
            value = pending.pop()
            children = _children(value)
            if children:
                results.append(value)
                pending += reversed(children)
        return results

    def filter(self, values: list[Any], node: FilterNode) -> list[Any]:
        results: list[Any] = []
        for value in values:
            if not isinstance(value, list):
                raise JSONPathError(f"{_go_text(value)} is not array or slice and cannot be filtered")
            for item in value:
                if node.operator == "exists":
                    try:
                        if self.evaluate([item], node.left):
                            results.append(item)
                    except JSONPathError:
                        pass
                    continue
                lefts = self.evaluate([item], node.left)
                if not lefts:
                    continue
                if len(lefts) > 1:
                    raise JSONPathError("can only compare one element at a time")
                rights = self.evaluate([item], node.right)
                if not rights:
                    continue
                if len(rights) > 1:
                    raise JSONPathError("can only compare one element at a time")
                if _compare(node.operator, lefts[0], rights[0]):
                    results.append(item)
        return results


def _children(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return [value[key] for key in sorted(value)]
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):
        return list(value.encode())  # client-go walks a string's bytes (they have no children of their own)
    return []


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    raise JSONPathError("invalid type for comparison")


def _compare(operator: str, left: Any, right: Any) -> bool:  # noqa: PLR0911 - one case per operator
    """Go text/template's eq, ne, lt, le, gt, ge (as forked into client-go), and `=~` (a regular expression)."""
    if operator not in ("<", ">", "==", "!=", "<=", ">=", "=~"):
        raise JSONPathError(f"unrecognized filter operator {operator}")
    if operator == "=~":
        if not isinstance(left, str) or not isinstance(right, str):
            raise JSONPathError(
                f"regexp search only support string now but getting pattern: {_go_text(right)}, data: {_go_text(left)}"
            )
        try:
            return re.search(right, left) is not None
        except re.error as error:
            raise JSONPathError(f"error parsing regexp: {error}") from None
    kinds = (_kind(left), _kind(right))
    if kinds[0] != kinds[1]:
        raise JSONPathError("incompatible types for comparison")
    if operator == "==":
        return bool(left == right)
    if operator == "!=":
        return bool(left != right)
    if kinds[0] == "bool":
        raise JSONPathError("invalid type for comparison")
    if operator == "<":
        return bool(left < right)
    if operator == ">":
        return bool(left > right)
    if operator == "<=":
        return bool(left <= right)
    return bool(left >= right)


def _go_type(value: Any) -> str:
    """The Go type client-go names in its messages for a value of unstructured JSON."""
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    return "interface {}"


def go_json(value: Any, indent: int | None = None) -> str:
    """Go's encoding/json: map keys sorted, and <, >, & and the line separators escaped."""
    if indent is None:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    else:
        text = json.dumps(value, sort_keys=True, indent=indent, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        text = text.replace(char, escaped)
    return text.replace("\u2029", "\\u2029")


def go_float(value: float) -> str:
    """A float64 as Go's fmt %v prints it: the shortest digits, an exponent below 1e-4 or from 1e21."""
    if math.isnan(value) or math.isinf(value):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    exact = decimal.Decimal(repr(value))
    exponent = exact.adjusted()
    if -4 <= exponent < 21:
        text = format(exact, "f")
        return text.removesuffix(".0") if "." in text and text.rstrip("0").endswith(".") else text
    digits = exact.as_tuple().digits
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])).rstrip("0") if len(digits) > 1 else "")
    sign = "-" if value < 0 else ""
    return f"{sign}{mantissa.removesuffix('.')}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def _go_text(value: Any) -> str:
    """A scalar as Go's fmt.Fprint prints it (maps and lists are printed as JSON instead)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (Mapping, list)):
        return go_json(value)
    return str(value)


def _print(results: Sequence[Any], as_json: bool) -> str:
    if as_json:
        return go_json(list(results), indent=4) + "\n"
    return " ".join(_go_text(value) for value in results)


def execute(template: Template, data: Any, *, allow_missing_keys: bool = True, as_json: bool = False) -> str:
    """The template's text for `data`; CliError with kubectl's wording when it fails on it."""
    out: list[str] = []
    try:
        _Evaluator(allow_missing_keys).render(template.root, data, out, as_json)
    except JSONPathError as error:
        raise CliError(
            f'error executing jsonpath "{template.text}": Error executing template: {error}. Printing more '
            f"information for debugging the template:\n\ttemplate was:\n\t\t{template.text}"
        ) from None
    return "".join(out)
