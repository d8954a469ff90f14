"""The flags several verbs share, as argparse arguments (stdlib only, so every verb's `-h` stays light).

kubectl's spellings are kept: `-o FORMAT[=TEMPLATE]`, `--template`, `--dry-run[=none|client|server]`,
`-l/--selector`, and the connection flags. The values are checked here, before anything is read or written.
"""

from __future__ import annotations

import argparse
import enum
import json
import re
from typing import NamedTuple, NoReturn

from imagestreams.cli.errors import CliError, UsageError

PROG = "kubectl imagestream"


class Parser(argparse.ArgumentParser):
    """argparse with kubectl's way of reporting usage mistakes: `error: ...`, a pointer to -h, exit status 1."""

    def error(self, message: str) -> NoReturn:
        verb = self.prog.removeprefix(PROG).strip()
        unknown = re.match(r"argument COMMAND: invalid choice: '([^']*)'", message)
        if unknown:
            message = f'unknown command "{unknown.group(1)}" for "{PROG}"'
        raise UsageError(message, verb)


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (as kubectl)")
    group.add_argument("--kubeconfig", default=argparse.SUPPRESS, help="path to a kubeconfig file")
    group.add_argument("--context", default=argparse.SUPPRESS, help="the kubeconfig context to use")
    group.add_argument(
        "-n", "--namespace", default=argparse.SUPPRESS, help="the namespace (default: the context's, else default)"
    )


# Global flags that take a value, so the verb can be found in argv before the verb's parser exists.
VALUE_FLAGS = frozenset({"--kubeconfig", "--context", "-n", "--namespace"})


# --- -o / --output -------------------------------------------------------------------------------------------------

OBJECT_FORMATS = ("yaml", "json", "name")
JSONPATH_FORMATS = ("jsonpath", "jsonpath-file", "jsonpath-as-json")
GO_TEMPLATE_FORMATS = ("go-template", "go-template-file", "template", "templatefile")
TEMPLATE_FORMATS = (*JSONPATH_FORMATS, *GO_TEMPLATE_FORMATS)
# The name each template format is printed with, and those whose value is a file to read the template from.
_TEMPLATE_PRINTERS = {
    "jsonpath": "jsonpath",
    "jsonpath-file": "jsonpath",
    "jsonpath-as-json": "jsonpath-as-json",
    "go-template": "go-template",
    "go-template-file": "go-template",
    "template": "go-template",
    "templatefile": "go-template",
}
_TEMPLATE_FILES = frozenset({"jsonpath-file", "go-template-file", "templatefile"})


class OutputFormat(NamedTuple):
    """A parsed `-o`: a format name and, for the template formats, the template text."""

    name: str
    template: str = ""

    @property
    def is_template(self) -> bool:
        return self.name in _TEMPLATE_PRINTERS


class OutputAction(argparse.Action):
    """`-o FORMAT[=TEMPLATE]`, the format name checked as argparse checks choices (templates are read later)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | object,
        option_string: str | None = None,
    ) -> None:
        value = str(values)
        choices = (*namespace.output_formats, *TEMPLATE_FORMATS)
        if value.partition("=")[0] not in choices:
            shown = ", ".join(repr(choice) for choice in choices)
            raise argparse.ArgumentError(self, f"invalid choice: {value!r} (choose from {shown})")
        setattr(namespace, self.dest, value)


def add_output_flag(
    parser: argparse.ArgumentParser,
    help_text: str = "print the result",
    formats: tuple[str, ...] = OBJECT_FORMATS,
) -> None:
    shown = "|".join(formats)
    parser.add_argument(
        "-o",
        "--output",
        action=OutputAction,
        default=None,
        metavar="FORMAT",
        help=f"{help_text}: {shown}, jsonpath=TEMPLATE, jsonpath-file=FILE, jsonpath-as-json=TEMPLATE, "
        "go-template=TEMPLATE or go-template-file=FILE (template=, templatefile= the same)",
    )
    parser.add_argument(
        "--template",
        default=None,
        help="the template for a bare -o jsonpath or -o go-template; alone, a go-template (as kubectl's --template)",
    )
    parser.add_argument(
        "--allow-missing-template-keys",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ignore missing fields in templates (default true, as kubectl)",
    )
    parser.set_defaults(output_formats=formats)


def parse_output(value: str | None, template: str | None, formats: tuple[str, ...]) -> OutputFormat | None:
    """`-o` as kubectl reads it: `yaml`, `jsonpath={.x}`, `go-template={{.x}}`, `jsonpath` or `go-template` with
    `--template`, `jsonpath-file=PATH`; `--template` without `-o` is a go-template. The templates are parsed later
    (output.check_template), since parsing a go-template loads gotpl."""
    if value is None:
        return OutputFormat("go-template", template) if template else None
    name, equals, text = value.partition("=")
    if name in formats and not equals:
        return OutputFormat(name)
    if name in _TEMPLATE_PRINTERS:
        if not equals:
            text = template or ""
        if not text:
            raise CliError("template format specified but no template given")
        if name in _TEMPLATE_FILES:
            try:
                with open(text, encoding="utf-8") as file:
                    text = file.read()
            except OSError as error:
                raise CliError(f"error reading --template {text}, {error.strerror}") from None
        return OutputFormat(_TEMPLATE_PRINTERS[name], text)
    allowed = ", ".join((*formats, *TEMPLATE_FORMATS))
    raise CliError(f"unable to match a printer suitable for the output format {json.dumps(value)}, allowed: {allowed}")


# --- --dry-run -----------------------------------------------------------------------------------------------------


class DryRun(enum.Enum):
    """kubectl's dry-run strategies: write for real, only show what would be sent, or let the server check it."""

    NONE = "none"
    CLIENT = "client"
    SERVER = "server"

    def note(self) -> str:
        """The suffix kubectl adds to a success message."""
        return {DryRun.NONE: "", DryRun.CLIENT: " (dry run)", DryRun.SERVER: " (server dry run)"}[self]

    def mark(self, message: str) -> str:
        """The message's first line with the note, before its final full stop: `Tag app:v1 set to x (dry run).`"""
        first, newline, rest = message.partition("\n")
        stop = "." if first.endswith(".") else ""
        return f"{first.removesuffix(stop)}{self.note()}{stop}{newline}{rest}"


BARE_DRY_RUN = "unchanged"  # what kubectl's flag holds when given without a value (cobra's NoOptDefVal)


class DryRunAction(argparse.Action):
    """`--dry-run=VALUE`; a bare `--dry-run` is rewritten to `--dry-run=unchanged` before parsing, as cobra reads
    it, so the next word is never taken as its value. `bare` is the strategy a bare flag means for the verb."""

    def __init__(self, option_strings: list[str], dest: str, bare: DryRun = DryRun.CLIENT, **kwargs: object) -> None:
        self.bare = bare
        super().__init__(option_strings, dest, **kwargs)  # type: ignore[arg-type]

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | object,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, dry_run_strategy(str(values), self.bare))


def dry_run_strategy(value: str, bare: DryRun) -> DryRun:
    """kubectl's GetDryRunStrategy: none, client or server; a bare flag or `true` means `bare`, `false` none."""
    lowered = value.lower()
    if value == BARE_DRY_RUN or lowered == "true":
        return bare
    if lowered == "false":
        return DryRun.NONE
    try:
        return DryRun(value)
    except ValueError:
        raise CliError(f'Invalid dry-run value ({value}). Must be "none", "server", or "client".') from None


def add_dry_run_flag(parser: argparse.ArgumentParser, help_text: str, bare: DryRun = DryRun.CLIENT) -> None:
    parser.add_argument(
        "--dry-run",
        action=DryRunAction,
        bare=bare,
        default=DryRun.NONE,
        metavar="none|client|server",
        help=help_text,
    )


# --- -l / --selector -----------------------------------------------------------------------------------------------


def add_selector_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "-l",
        "--selector",
        default="",
        help=f"a label selector ({what}), e.g. -l app=web or -l 'tier in (web,api),!legacy'",
    )
