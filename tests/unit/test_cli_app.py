"""The command line itself: argument spelling, usage errors, exit status, output formats, a light --help."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
import yaml

from imagestreams.cli.app import build_parser, normalize_argv, run
from imagestreams.cli.commands.import_image import Progress
from imagestreams.cli.errors import CliError
from imagestreams.cli.output import qualified_name, render, render_document


def invoke(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "normalized"),
    [
        (["set", "triggers", "deploy/web"], ["set-triggers", "deploy/web"]),
        (["-n", "demo", "set", "image-lookup", "app"], ["-n", "demo", "set-image-lookup", "app"]),
        (["tag", "set", "triggers"], ["tag", "set", "triggers"]),  # only before the verb
        (["import-image", "app", "--insecure=false"], ["import-image", "app", "--no-insecure"]),
        (["import-image", "app", "--insecure=true"], ["import-image", "app", "--insecure"]),
        (["tag", "a:b", "c:d", "--scheduled=false", "--alias=TRUE"], ["tag", "a:b", "c:d", "--alias"]),
        (["set-image-lookup", "app", "--enabled=false"], ["set-image-lookup", "app", "--no-enabled"]),
        (["tag", "--source=docker", "x", "a:b"], ["tag", "--source=docker", "x", "a:b"]),
    ],
)
def test_cobra_spellings_are_understood(argv: list[str], normalized: list[str]) -> None:
    assert normalize_argv(argv) == normalized


def test_help_lists_every_verb_and_exits_zero() -> None:
    out = build_parser().format_help()
    for verb in (
        "describe",
        "tag",
        "import-image",
        "set-triggers",
        "set-image-lookup",
        "history",
        "rollback",
        "resume",
    ):
        assert verb in out
    assert out.startswith("usage: kubectl imagestream COMMAND [flags]")
    status, out, err = invoke()
    assert (status, err) == (0, "")
    assert "commands:" in out


def test_verb_help_shows_examples() -> None:
    with pytest.raises(SystemExit) as exited:
        invoke("tag", "-h")
    assert exited.value.code == 0


def test_usage_errors_point_to_help_and_exit_one() -> None:
    status, out, err = invoke("bogus")
    assert (status, out) == (1, "")
    assert err == (
        'error: unknown command "bogus" for "kubectl imagestream"\n'
        "See 'kubectl imagestream -h' for help and examples\n"
    )
    status, _, err = invoke("import-image", "app", "--timeout")
    assert status == 1
    assert err.startswith("error: argument --timeout: expected one argument\nSee 'kubectl imagestream import-image -h'")
    status, _, err = invoke("tag", "-o", "wide")
    assert status == 1 and err.startswith("error: argument -o/--output: invalid choice: 'wide'")


def test_errors_found_before_connecting_are_reported_with_exit_one(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = {
        "apiVersion": "v1",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c"}}],
        "current-context": "c",
    }
    path = f"{tmp_path}/config"
    with open(path, "w") as file:
        file.write(yaml.safe_dump(kubeconfig))
    status, _, err = invoke("tag", "--alias", "app:v1", "other:latest", f"--kubeconfig={path}")
    assert (status, err) == (1, "error: cannot set alias across different Image Streams\n")
    status, _, err = invoke("tag", f"--kubeconfig={path}")
    assert status == 1
    assert err == (
        "error: you must specify a source and at least one destination or one or more tags to delete\n"
        "See 'kubectl imagestream tag -h' for help and examples\n"
    )
    status, _, err = invoke("set-triggers", "pod/x", "--manual", "--auto", f"--kubeconfig={path}")
    assert (status, err) == (1, "error: you must specify at most one of --auto or --manual\n")
    status, _, err = invoke("describe", "pods", "x", f"--kubeconfig={path}")
    assert status == 1 and 'use "kubectl describe pods"' in err
    # The API server cannot be reached: a connection error, not a traceback.
    status, _, err = invoke("describe", "is", "app", f"--kubeconfig={path}")
    assert status == 1 and err.startswith("error: unable to connect to the server: ")
    status, _, err = invoke("history", "app@sha256:abc", f"--kubeconfig={path}")
    assert (status, err) == (1, 'error: "app@sha256:abc" must be of the form <stream_name>:<tag>\n')
    status, _, err = invoke("tag", "x/y:1", "a:b", "--context=nope", f"--kubeconfig={path}")
    assert (status, err) == (1, "error: context was not found for specified context: nope\n")


def test_help_imports_neither_kopf_nor_the_controller_nor_heavy_libraries() -> None:
    code = (
        "import io, sys\n"
        "from imagestreams.cli.__main__ import main\n"
        "from imagestreams.cli.app import run\n"
        "try:\n"
        "    run(['--help'], io.StringIO(), io.StringIO())\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('kopf', 'lightkube', 'pydantic', 'yaml', 'aiohttp', 'gotpl')\n"
        "print('modules:', [m for m in sys.modules if m.split('.')[0] in heavy"
        " or m.startswith('imagestreams.controller')])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "modules: []"


def test_no_cli_module_imports_kopf_or_the_controller() -> None:
    code = (
        "import sys, pkgutil, importlib, imagestreams.cli as cli\n"
        "for module in pkgutil.iter_modules(cli.__path__):\n"
        "    importlib.import_module(f'imagestreams.cli.{module.name}')\n"
        "print([m for m in sys.modules if m.split('.')[0] == 'kopf' or m.startswith('imagestreams.controller')])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_output_formats() -> None:
    stream = {"kind": "ImageStream", "metadata": {"name": "app", "managedFields": [{"manager": "x"}]}, "spec": {}}
    assert render([stream], "name") == "imagestream.image.openshift.io/app\n"
    assert json.loads(render([stream], "json")) == {"kind": "ImageStream", "metadata": {"name": "app"}, "spec": {}}
    assert yaml.safe_load(render([stream, stream], "yaml"))["kind"] == "List"
    assert qualified_name({"metadata": {"name": "web"}}, "Deployment") == "deployment.apps/web"
    assert render_document({"b": 1, "a": 2}, "yaml") == "a: 2\nb: 1\n"
    with pytest.raises(CliError, match="unable to match a printer"):
        render_document({}, "wide")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_only_on_a_terminal() -> None:
    terminal = Terminal()
    progress = Progress(terminal, "waiting for the operator")
    progress.tick()
    progress.tick()
    progress.done()
    assert terminal.getvalue() == (
        "\r| waiting for the operator (0s)\033[K\r/ waiting for the operator (0s)\033[K\r\033[K"
    )
    redirected = io.StringIO()
    quiet = Progress(redirected, "waiting")
    quiet.tick()
    quiet.done()
    assert redirected.getvalue() == ""


def test_connection_flags_go_before_or_after_the_verb() -> None:
    parser = build_parser()
    assert parser.parse_args(normalize_argv(["-n", "x", "--context", "c", "describe", "is"])).namespace == "x"
    after = parser.parse_args(normalize_argv(["describe", "is", "-n", "y", "--kubeconfig", "/k"]))
    assert (after.namespace, after.kubeconfig) == ("y", "/k")
    assert not hasattr(parser.parse_args(["describe", "is"]), "namespace")
