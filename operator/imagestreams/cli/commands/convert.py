"""`convert -f FILE|DIR|-`: OpenShift exports of image streams as objects ready for `kubectl apply` or Git."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imagestreams.cli.context import Context
from imagestreams.cli.convert import convert_documents, render_streams
from imagestreams.cli.errors import CliError, UsageError

USAGE = "convert -f FILE|DIR|- [-f ...] [-R] [-o yaml|json]"
DESCRIPTION = (
    "Rewrite `oc get is -o yaml` exports and catalog files (legacy apiVersion v1, List and ImageStreamList "
    "wrappers) as clean image.openshift.io/v1 ImageStreams, one document per stream: the server's fields "
    "(uid, resourceVersion, status, managedFields, ...) are dropped, nothing else changes. Reads files only; "
    "never contacts a cluster. docs/migration.md has the whole migration."
)
EXAMPLES = """\
Examples:
  # On OpenShift: export every stream of a project; here: convert and apply
  oc get imagestreams -n team -o yaml > exported.yaml
  kubectl imagestream convert -f exported.yaml > imagestreams.yaml
  kubectl apply -f imagestreams.yaml
  # A directory of catalog files, as JSON, from standard input
  kubectl imagestream convert -f catalog/ -R -o json
  cat exported.yaml | kubectl imagestream convert -f -"""

_EXTENSIONS = (".yaml", ".yml", ".json")  # the files kubectl reads from a directory


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--filename", action="append", default=[], help="a file, a directory of .yaml/.yml/.json files, or -"
    )
    parser.add_argument("-R", "--recursive", action="store_true", help="read directories recursively")
    parser.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml", help="yaml (default) or json")


def run(ctx: Context) -> int:
    if not ctx.args.filename:
        raise UsageError("must specify one of -f and -k (here: -f FILE, DIR or -)", "convert")
    streams = []
    for name in ctx.args.filename:
        for source, text in _inputs(name, ctx.args.recursive):
            streams += convert_documents(text, source)
    ctx.out(render_streams(streams, ctx.args.output))
    return 0


def _inputs(name: str, recursive: bool) -> list[tuple[str, str]]:
    """(name for messages, text) of every input `-f name` stands for, directories in name order."""
    if name == "-":
        return [("<stdin>", sys.stdin.read())]
    path = Path(name)
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        files = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix in _EXTENSIONS)
        return [(str(file), _read(file)) for file in files]
    return [(name, _read(path))]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f'the path "{path}" does not exist') from None
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f'cannot read "{path}": {getattr(error, "strerror", None) or error}') from None
