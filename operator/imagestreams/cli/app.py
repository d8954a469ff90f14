"""The command line: find the verb, import its module (cli/commands/<verb>.py), parse its flags, run it.

Only the verb's own module is imported, so `--help` and a verb's mistakes cost argparse alone; each module
holds its usage, help, examples, flags and run function. Adding a verb is a new module and one line in VERBS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from imagestreams.cli.errors import CliError, UsageError
from imagestreams.cli.flags import BARE_DRY_RUN, PROG, VALUE_FLAGS, DryRunAction, Parser, add_connection_flags

if TYPE_CHECKING:
    from types import ModuleType

# verb -> (module under imagestreams.cli.commands, the line shown in the list of commands)
VERBS: dict[str, tuple[str, str]] = {
    "describe": ("describe", "show a stream, a tag's image or an image in oc describe's layout"),
    "tag": ("tag", "set a tag from an image, another tag or a container image; or delete tags"),
    "import-image": ("import_image", "ask the operator to import a tag (or all tags) now and show the result"),
    "set-triggers": ("set_triggers", "list or edit the image triggers of workloads"),
    "set-image-lookup": ("set_image_lookup", "resolve short image names through image streams"),
    "history": ("history", "a tag's images, newest first, and the workloads running each"),
    "rollback": ("rollback", "pin a tag to an earlier image of its history"),
    "resume": ("resume", "make a rolled-back tag follow its original source again"),
    "convert": ("convert", "rewrite OpenShift exports of image streams as clean image.openshift.io/v1 objects"),
}
_SET_VERBS = {"triggers": "set-triggers", "image-lookup": "set-image-lookup"}

_DESCRIPTION = """\
OpenShift-style image streams on any cluster: oc's image stream commands as a kubectl plugin.

The operator (imagestream-operator) imports tags and updates triggered workloads; this
plugin shows streams in oc's layouts and asks the operator for changes."""

_COMMANDS_EPILOG = """\
Examples:
  kubectl imagestream describe is app
  kubectl imagestream tag --source=docker quay.io/team/app:1.2 app:1.2 --scheduled
  kubectl imagestream import-image app:1.2 --from=quay.io/team/app:1.2 --confirm
  kubectl imagestream set-triggers deployment/web --from-image=app:1.2 -c web
  kubectl imagestream history app:1.2
  kubectl imagestream rollback app:1.2
  kubectl imagestream convert -f exported-imagestreams.yaml > imagestreams.yaml

Use "kubectl imagestream COMMAND -h" for the flags of a command. docs/cli.md has the full reference."""


def verb_module(verb: str) -> ModuleType:
    return importlib.import_module(f"imagestreams.cli.commands.{VERBS[verb][0]}")


def find_verb(argv: Sequence[str]) -> str | None:
    """The verb: the first word that is neither a flag nor a global flag's value (None when it is not a verb)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in VALUE_FLAGS:
            skip = True
        elif not word.startswith("-"):
            return word if word in VERBS else None
    return None


def _join_set_verbs(argv: Sequence[str]) -> list[str]:
    """`set triggers` -> `set-triggers`, `set image-lookup` -> `set-image-lookup` (only before the verb)."""
    args = list(argv)
    for index, word in enumerate(args[:-1]):
        if word in VERBS:
            break
        if word == "set" and args[index + 1] in _SET_VERBS:
            args[index : index + 2] = [_SET_VERBS[args[index + 1]]]
            break
    return args


def _cobra_spellings(argv: Sequence[str], parser: argparse.ArgumentParser | None) -> list[str]:
    """cobra's `--flag=true|false` for the verb's boolean flags, and a bare `--dry-run` kept from taking the next
    word as its value (argparse would; cobra does not). Which flags those are is read from the verb's parser."""
    booleans: set[str] = set()
    negatable: set[str] = set()
    optional_value: set[str] = set()
    for action in parser._actions if parser else ():  # argparse lists a parser's actions only privately
        names = {option for option in action.option_strings if option.startswith("--")}
        if isinstance(action, argparse.BooleanOptionalAction):
            negatable |= {name for name in names if not name.startswith("--no-")}
        elif isinstance(action, argparse._StoreTrueAction):
            booleans |= names
        elif isinstance(action, DryRunAction):
            optional_value |= names
    result = []
    for word in argv:
        name, equals, value = word.partition("=")
        if not equals and name in optional_value:
            result.append(f"{name}={BARE_DRY_RUN}")
        elif equals and value.lower() in ("true", "false") and name in booleans | negatable:
            if value.lower() == "true":
                result.append(name)
            elif name in negatable:
                result.append(f"--no-{name.removeprefix('--')}")
        else:
            result.append(word)
    return result


def _verb_parser(parser: argparse.ArgumentParser, verb: str | None) -> argparse.ArgumentParser | None:
    """The verb's own sub-parser (argparse keeps sub-parsers in a private action)."""
    if verb is None:
        return None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen: argparse.ArgumentParser = action.choices[verb]
            return chosen
    return None


def build_parser(load: Sequence[str] | None = None) -> Parser:
    """The parser with every verb listed; the flags only of the verbs in `load` (all when None)."""
    parser = Parser(
        prog=PROG,
        usage=f"{PROG} COMMAND [flags]",
        description=_DESCRIPTION,
        epilog=_COMMANDS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_flags(parser)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", title="commands", parser_class=Parser, prog=PROG)
    for verb, (_, summary) in VERBS.items():
        if load is not None and verb not in load:
            sub.add_parser(verb, help=summary, add_help=False)
            continue
        module = verb_module(verb)
        verb_parser = sub.add_parser(
            verb,
            help=summary,
            usage=f"{PROG} {module.USAGE}",
            description=module.DESCRIPTION,
            epilog=module.EXAMPLES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        add_connection_flags(verb_parser)
        module.add_arguments(verb_parser)
    return parser


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """`set triggers` -> `set-triggers`, and cobra's flag spellings for argparse (see _cobra_spellings)."""
    args = _join_set_verbs(argv)
    verb = find_verb(args)
    return _cobra_spellings(args, _verb_parser(build_parser([verb] if verb else []), verb))


def _api_error(error: Exception) -> CliError | None:
    """An API or connection failure as the error to print; None for anything else. Without a connection (the
    verb never opened one, or it failed on its arguments first) there is nothing to translate."""
    if "imagestreams.cli.kube" not in sys.modules:
        return None
    from imagestreams.cli.kube import api_error  # noqa: PLC0415 - already imported by the verb

    return api_error(error)


def run(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    """Parse and run one command; returns the exit status (0 success, 1 any error)."""
    try:
        args = _join_set_verbs(argv)
        verb = find_verb(args)
        parser = build_parser([verb] if verb else [])
        parsed = parser.parse_args(_cobra_spellings(args, _verb_parser(parser, verb)))
        if not parsed.verb:
            parser.print_help(stdout)
            return 0
        from imagestreams.cli.context import Context  # noqa: PLC0415 - a verb runs: its context, not for --help

        try:
            exit_status: int = verb_module(parsed.verb).run(Context(parsed, stdout, stderr))
        except Exception as error:
            raise _api_error(error) or error  # noqa: B904 - the API server's message is the whole story
        return exit_status
    except UsageError as error:
        named = f" {error.verb}" if error.verb else ""
        stderr.write(f"error: {error}\nSee '{PROG}{named} -h' for help and examples\n")
    except CliError as error:
        stderr.write(f"error: {error}\n")
    except KeyboardInterrupt:
        stderr.write("\n")
        return 130
    return 1
