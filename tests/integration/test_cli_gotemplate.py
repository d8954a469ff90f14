"""`-o go-template` checked against the real kubectl: the same stream, printed through the same template by
`kubectl get imagestream NAME -o go-template=T` and by the plugin, must come out byte for byte the same.

The plugin prints the stream with `set-image-lookup NAME --dry-run=client` on a stream whose lookup is already on:
the stream as read, unchanged, and nothing written."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from imagestreams.localcluster import LocalCluster, Registry
from tests.conftest import kubectl
from tests.helpers import OperatorProcess
from tests.integration.test_cli import Cli
from tests.streams import apply_stream, insecure_tag, wait_for_tag

NOTE = "hello from the oracle: <&> é"

# Each exercises something kubectl's printer does on top of, or through, Go's text/template.
TEMPLATES = [
    # whole numbers stay int64 through kubectl's JSON round trip: 1000000 prints as 1000000, not 1e+06
    "{{.metadata.name}} {{.metadata.generation}} {{.spec.tags}}",
    '{{range .spec.tags}}{{.name}} gen={{.generation}} {{.from.kind}} {{.importPolicy}}{{"\\n"}}{{end}}',
    '{{range .status.tags}}{{.tag}}:{{range .items}} {{.image}} {{.generation}}{{end}}{{"\\n"}}{{end}}',
    "{{range $i, $tag := .status.tags}}{{$i}}={{$tag.tag}} {{len $tag.items}};{{end}}",
    # missing keys print <no value> (default --allow-missing-template-keys=true), also through index
    '{{.metadata.nope}}|{{.spec.nope.deeper}}|{{index .metadata.labels "nope"}}|{{.metadata.labels.nope}}',
    # kubectl's own functions
    '{{exists . "spec" "tags" 0 "name"}} {{exists . "spec" "tags" 9}} {{exists .metadata "annotations" "nope"}} '
    '{{exists .metadata "name" 0}} {{exists . "metadata" "generation" 0}} {{exists .spec.tags 0 "from" "kind"}}',
    "{{base64decode .metadata.annotations.note}}|{{.metadata.annotations.note | base64decode}}",
    '{{base64decode "YWJj\\r\\nZA==\\n"}}|{{base64decode ""}}',  # line breaks in the data are skipped
    # maps (keys sorted) and lists as fmt prints them
    '{{printf "%v" .spec.lookupPolicy}} {{printf "%v" .metadata.labels}}',
    '{{printf "%v" .spec.tags}}|{{printf "%v" (index .status.tags 0).items}}',
    "{{.metadata.annotations}} {{.metadata.labels}}",
    "{{.}}",
    # control flow, variables, comparisons
    "{{if .spec.lookupPolicy.local}}local{{else}}remote{{end}} {{with .spec.nope}}x{{else}}none{{end}} "
    "{{with .metadata}}{{.name}}{{end}}",
    "{{range $key, $value := .metadata.labels}}{{$key}}={{$value}},{{end}} {{range .spec.nope}}x{{else}}empty{{end}}",
    "{{eq .metadata.generation 1}} {{gt (len .status.tags) 0}} {{and .spec .metadata.name}} {{not .spec.nope}} "
    '{{or .spec.nope "fallback"}} {{ne .metadata.name "other"}}',
    # fmt verbs, including a wrong one, which Go prints as %!d(string=app)
    '{{printf "%s/%s gen=%v %d %x %q %5s %T %d|" .metadata.namespace .metadata.name .metadata.generation '
    ".metadata.generation .metadata.generation .metadata.name .metadata.name .metadata.name .metadata.name}}",
    '{{printf "%T %T %T %v %+v" .metadata.labels .spec.tags .spec.lookupPolicy.local .spec.lookupPolicy .}}',
    '{{printf "%#v" .metadata.labels}}',
    '{{print 1 2 "x" .metadata.generation}} {{println "line"}}{{len .metadata.name}} {{slice .metadata.name 1 3}} '
    '{{js "<a \'b\'>"}} {{html "<a&b>"}} {{urlquery "a b&c"}}',
    # whitespace trimming and comments
    "{{- range .spec.tags -}}\n  {{ .name }}\n{{- end }}{{/* a comment */}} [{{- .metadata.name -}} ]",
]


# Failures: kubectl writes the text up to the failure and its debugging output (the template, the raw JSON, the
# data) to stdout, and the error to stderr; a template that does not parse fails before anything is read.
FAILING = [
    ("--allow-missing-template-keys=false", "-o", "go-template={{.metadata.name}} {{.spec.nope.deeper}}"),
    ("-o", "go-template={{.metadata.name}}/{{.metadata.name.upper}}"),
    ("-o", 'go-template={{.metadata.name}} {{base64decode "YWJj"}} {{base64decode "abc"}}'),
    ("-o", 'go-template={{base64decode "YW!j"}}'),
    ("-o", 'go-template={{base64decode "YWJj\\nZA"}}'),  # Go's "\n": a line break in the data
    ("-o", 'go-template={{base64decode "YQ=x"}}'),
    ("-o", 'go-template={{base64decode "YWJj\\r\\nZA==\\nx"}}'),
    ("-o", "go-template={{base64decode .metadata.generation}}"),
    ("-o", "go-template={{.metadata.name"),
    ("-o", "go-template={{nofunc .metadata.name}}"),
    ("-o", "go-template={{if .spec}}"),
    ("-o", "go-template={{$x}}"),
    ("-o", "go-template="),
]


@pytest.fixture
def cli(
    crds: LocalCluster, namespace: str, operator: OperatorProcess, plain_registry: Registry, repository: str
) -> Cli:
    return Cli(crds, namespace, plain_registry, repository)


def kubectl_get(cli: Cli, names: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    assert cli.cluster.binaries is not None
    command = [str(cli.cluster.binaries.kubectl), f"--kubeconfig={cli.cluster.admin_kubeconfig}", "-n", cli.namespace]
    return subprocess.run(
        [*command, "get", "imagestream", *names, *args], capture_output=True, text=True, timeout=60, check=False
    )


def difference(cli: Cli, *printing: str, names: tuple[str, ...] = ("app",), status: int = 0) -> str | None:
    """How the plugin's output differs from kubectl's for the same printing flags (None: byte for byte the same).
    kubectl must exit with `status`, so that a case meant to fail (or not) does."""
    expected = kubectl_get(cli, list(names), *printing)
    assert expected.returncode == status, f"kubectl {printing}: exit {expected.returncode}: {expected.stderr}"
    ours = cli("set-image-lookup", *names, "--dry-run=client", *printing)
    theirs = f"exit {expected.returncode}\nstdout: {expected.stdout}\nstderr: {expected.stderr}"
    mine = f"exit {ours.status}\nstdout: {ours.out}\nstderr: {ours.err}"
    if mine == theirs:
        return None
    at = next((index for index, (a, b) in enumerate(zip(theirs, mine, strict=False)) if a != b), len(theirs))
    start = max(0, at - 150)
    return f"{printing} differ at {at}:\n  kubectl: {theirs[start : at + 150]!r}\n  plugin:  {mine[start : at + 150]!r}"


def oracle_stream(cli: Cli) -> None:
    """`app`: two imported tags (one with generation 1000000), labels, annotations (base64, <&>), lookup on; and
    `other`, with lookup on and nothing else."""
    first = cli.push("v1")
    note = base64.b64encode(NOTE.encode()).decode()
    apply_stream(
        cli.cluster,
        cli.namespace,
        "app",
        [insecure_tag("v1", cli.pull_spec("v1")), insecure_tag("big", cli.pull_spec("v1"), generation=1000000)],
        annotations={"note": note, "text": NOTE},  # <&> are escaped in the raw JSON kubectl shows, é is not
        lookupPolicy={"local": True},
    )
    apply_stream(cli.cluster, cli.namespace, "other", [], lookupPolicy={"local": True})
    kubectl(cli.cluster, "label", "-n", cli.namespace, "imagestream", "app", "team=web", "tier=front")
    wait_for_tag(cli.cluster, cli.namespace, "app", "v1", image=first)
    wait_for_tag(cli.cluster, cli.namespace, "app", "big", image=first)


def test_go_templates_print_what_kubectl_prints(cli: Cli, tmp_path: Path) -> None:
    oracle_stream(cli)
    differences = [difference(cli, "-o", f"go-template={template}") for template in TEMPLATES]
    template_file = tmp_path / "template"
    template_file.write_text('{{range .status.tags}}{{.tag}}{{"\\n"}}{{end}}\n')  # a file ends in a line break
    spellings = [
        ("-o", "template={{.metadata.name}}"),
        ("-o", "go-template", "--template={{.metadata.name}}"),
        ("--template={{.metadata.name}}",),  # --template alone means -o go-template
        ("-o", f"go-template-file={template_file}"),
        ("-o", f"templatefile={template_file}"),
        ("--allow-missing-template-keys=false", "-o", "go-template={{.metadata.name}} {{len .spec.tags}}"),
    ]
    differences += [difference(cli, *printing) for printing in spellings]
    # Several objects: a List (whose own metadata kubectl fills in and the plugin does not, so only its items).
    several = "go-template={{.kind}} {{.apiVersion}}:{{range .items}} {{.metadata.name}}={{len .spec.tags}}{{end}}"
    differences.append(difference(cli, "-o", several, names=("app", "other")))
    shown = "\n".join(text for text in differences if text)
    assert not shown, shown


def test_go_template_failures_are_reported_as_kubectl_reports_them(cli: Cli) -> None:
    oracle_stream(cli)
    differences = [difference(cli, *printing, status=1) for printing in FAILING]
    shown = "\n".join(text for text in differences if text)
    assert not shown, shown
