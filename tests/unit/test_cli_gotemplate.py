"""kubectl's Go templates (`-o go-template=...`): Go's text/template through gotpl, with what kubectl adds (its data
conversion, `exists`, `base64decode`, missing keys, its messages). tests/integration/test_cli_gotemplate.py checks
the same against the real kubectl."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagestreams.cli.app import run
from imagestreams.cli.errors import CliError, PrintedError
from imagestreams.cli.flags import OutputFormat
from imagestreams.cli.gotemplate import base64decode, execute, exists, parse
from imagestreams.cli.output import check_template, render

STREAM: dict[str, Any] = {
    "apiVersion": "image.openshift.io/v1",
    "kind": "ImageStream",
    "metadata": {
        "name": "app",
        "generation": 1000000,
        "labels": {"tier": "front", "team": "web"},
        "annotations": {"note": "aGVsbG8gd29ybGQ="},
    },
    "spec": {
        "lookupPolicy": {"local": True},
        "tags": [
            {"name": "v1", "from": {"kind": "DockerImage", "name": "quay.io/team/app:v1"}, "generation": 3},
            {"name": "latest", "from": {"kind": "ImageStreamTag", "name": "app:v1"}, "reference": None},
        ],
    },
    "status": {"ratio": 1.5, "huge": 1e21, "million": 1e6},
}


def go(template: str, data: Any = STREAM, *, allow_missing_keys: bool = True) -> str:
    return execute(parse(template, allow_missing_keys=allow_missing_keys), data)


def test_fields_ranges_conditions_and_variables() -> None:
    assert go("{{.metadata.name}} {{.spec.lookupPolicy.local}}") == "app true"
    assert go('{{range .spec.tags}}{{.name}}<-{{.from.name}}{{"\\n"}}{{end}}') == (
        "v1<-quay.io/team/app:v1\nlatest<-app:v1\n"
    )
    assert go("{{range $i, $tag := .spec.tags}}{{$i}}={{$tag.name}};{{end}}") == "0=v1;1=latest;"
    assert go("{{range .spec.nope}}x{{else}}none{{end}}") == "none"
    assert go("{{if .spec.lookupPolicy.local}}local{{else}}remote{{end}}") == "local"
    assert go("{{if .spec.nope}}yes{{else if .metadata.name}}name{{end}}") == "name"
    assert go("{{with .metadata}}{{.name}}{{end}} {{with .spec.nope}}x{{else}}none{{end}}") == "app none"
    assert go("{{$name := .metadata.name}}{{range .spec.tags}}{{$name}}:{{.name}} {{end}}") == "app:v1 app:latest "
    assert go("{{- range .spec.tags -}}\n  {{ .name }}\n{{- end }}{{/* a comment */}}") == "v1latest"


def test_functions_of_text_template() -> None:
    assert go('{{len .spec.tags}} {{(index .spec.tags 1).name}} {{index .metadata.labels "team"}}') == "2 latest web"
    assert go('{{printf "%s has %d tags, %q" .metadata.name (len .spec.tags) "x"}}') == 'app has 2 tags, "x"'
    assert go('{{eq .metadata.name "app"}} {{ne 1 2}} {{lt 1 2}} {{and 1 0}} {{or 0 "x"}} {{not .spec}}') == (
        "true true true 0 x false"
    )
    assert go('{{slice .metadata.name 1 3}} {{print 1 2 "x"}} {{js "<a>"}} {{html "<a&b>"}} {{urlquery "a b"}}') == (
        "pp 1 2x \\u003Ca\\u003E &lt;a&amp;b&gt; a+b"
    )


def test_values_print_as_go_prints_them() -> None:
    # Maps with sorted keys, lists, nil; whole numbers stay int64 (as apimachinery's json.Unmarshal keeps them),
    # other numbers are float64 and print in Go's %v form.
    assert go("{{.metadata.labels}} {{.spec.lookupPolicy}}") == "map[team:web tier:front] map[local:true]"
    assert go('{{printf "%v" .spec.tags}}') == (
        "[map[from:map[kind:DockerImage name:quay.io/team/app:v1] generation:3 name:v1] "
        "map[from:map[kind:ImageStreamTag name:app:v1] name:latest reference:<nil>]]"
    )
    assert go("{{.metadata.generation}} {{(index .spec.tags 0).generation}}") == "1000000 3"
    assert go("{{.status.ratio}} {{.status.huge}} {{.status.million}}") == "1.5 1e+21 1e+06"
    assert go("{{.n}}", {"n": 2**63}) == "9.223372036854776e+18"  # beyond int64: a float64
    assert go("{{.n}} {{.m}}", {"n": -(2**63), "m": 2**63 - 1}) == "-9223372036854775808 9223372036854775807"
    assert go("{{.}}", {"b": [1, "x", None, True], "a": {}}) == "map[a:map[] b:[1 x <nil> true]]"
    assert go("{{(index .spec.tags 1).reference}}") == "<no value>"  # a JSON null


def test_exists_is_kubectls() -> None:
    assert go('{{exists . "spec" "tags" 0 "name"}} {{exists . "spec" "tags" 2}} {{exists .metadata "nope"}}') == (
        "true false false"
    )
    data = {"list": [None, "x"], "text": "héllo", "map": {"key": None, "": 1}, "number": 1.5}
    assert exists(data, "list", 1) and not exists(data, "list", 0)  # a nil element does not exist
    assert not exists(data, "list", -1) and not exists(data, "list", 1.0) and not exists(data, "list", True)
    assert exists(data, "text", 5) and not exists(data, "text", 6)  # strings are indexed by bytes (é is two)
    assert not exists(data, "map", "key") and exists(data, "map", None)  # nil value; a nil key is Go's ""
    assert not exists(data, "map", 0) and not exists(data, "number", 0) and not exists(None, "a")
    assert exists(None) and exists(data)  # without indices: true, as in kubectl


def test_base64decode_is_kubectls() -> None:
    assert go("{{base64decode .metadata.annotations.note}} {{.metadata.annotations.note | base64decode}}") == (
        "hello world hello world"
    )
    assert base64decode("YWJj\r\nZA==\n") == "abcd"  # line breaks are skipped, as Go's decoder skips them
    assert base64decode("") == ""
    # The offsets Go reports (these are the cases the integration test checks against kubectl).
    for encoded, offset in [("abc", 0), ("YW!j", 2), ("YWJj\nZA", 5), ("YQ=x", 2), ("YWJj\r\nZA==\nx", 11)]:
        with pytest.raises(ValueError, match=f"^base64 decode failed: illegal base64 data at input byte {offset}$"):
            base64decode(encoded)


def test_missing_keys_print_no_value_or_fail() -> None:
    assert go('{{.metadata.nope}}|{{.spec.nope.deeper}}|{{index .metadata.labels "nope"}}') == (
        "<no value>|<no value>|<no value>"
    )
    assert go("{{.metadata.name}}", allow_missing_keys=False) == "app"
    with pytest.raises(PrintedError) as failed:
        go("{{.metadata.name}} {{.spec.nope.deeper}}", allow_missing_keys=False)
    assert str(failed.value) == (
        'error executing template "{{.metadata.name}} {{.spec.nope.deeper}}": template: output:1:26: '
        'executing "output" at <.spec.nope.deeper>: map has no entry for key "nope"'
    )


def test_a_failure_prints_what_kubectl_prints_for_debugging() -> None:
    data = {"a": {"b": "<x>"}, "n": 1}
    with pytest.raises(PrintedError) as failed:
        go("{{.a.b}} {{.n.x}}", data)
    message = 'template: output:1:13: executing "output" at <.n.x>: can\'t evaluate field x in type interface {}'
    assert str(failed.value) == f'error executing template "{{{{.a.b}}}} {{{{.n.x}}}}": {message}'
    assert failed.value.printed == (
        "<x> "  # what was written before the failure
        f"Error executing template: {message}. Printing more information for debugging the template:\n"
        "\ttemplate was:\n\t\t{{.a.b}} {{.n.x}}\n"
        '\traw data was:\n\t\t{"a":{"b":"\\u003cx\\u003e"},"n":1}\n'
        "\tobject given to template engine was:\n\t\tmap[a:map[b:<x>] n:1]\n\n"
    )


def test_execution_errors_in_gos_words() -> None:
    cases = [
        ("{{.metadata.name.upper}}", "1:11", ".metadata.name.upper", "can't evaluate field upper in type interface {}"),
        ("{{base64decode .metadata.generation}}", "1:24", ".metadata.generation", "wrong type for value; "),
        ('{{base64decode "abc"}}', "1:2", 'base64decode "abc"', "error calling base64decode: base64 decode failed"),
    ]
    for template, location, node, words in cases:
        with pytest.raises(PrintedError, match=r"^error executing template ") as failed:
            go(template)
        assert f': template: output:{location}: executing "output" at <{node}>: {words}' in str(failed.value)
    # Only map keys are fields: nothing of Python's is reachable from a template.
    with pytest.raises(PrintedError, match="can't evaluate field count"):
        go("{{.spec.tags.count}}")


def test_parse_errors_in_kubectls_words() -> None:
    cases = [
        ("{{.metadata.name", "template: output:1: unclosed action"),
        ("{{nofunc .x}}", 'template: output:1: function "nofunc" not defined'),
        ("{{if .x}}", "template: output:1: unexpected EOF"),
        ("line\n{{$x}}", 'template: output:2: undefined variable "$x"'),
    ]
    for template, message in cases:
        with pytest.raises(CliError) as failed:
            parse(template)
        assert str(failed.value) == f"error parsing template {template}, {message}"
        assert not isinstance(failed.value, PrintedError)


def test_templates_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    check_template(OutputFormat("go-template", "{{.a}}"))
    with pytest.raises(CliError, match="error parsing template"):
        check_template(OutputFormat("go-template", "{{.a"))
    with pytest.raises(CliError, match="error parsing jsonpath"):
        check_template(OutputFormat("jsonpath", "{.a"))
    # A write verb with a bad template fails before the kubeconfig is read or the server (unreachable) is called.
    kubeconfig = tmp_path / "config"
    cluster = {"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}
    context = {"name": "c", "context": {"cluster": "c"}}
    kubeconfig.write_text(yaml.safe_dump({"clusters": [cluster], "contexts": [context], "current-context": "c"}))
    for output in (["-o", "go-template={{.a"], ["--template={{.a"], ["-o", "template", "--template={{.a"]):
        out, err = io.StringIO(), io.StringIO()
        assert run(["tag", "app:v1", "app:copy", f"--kubeconfig={kubeconfig}", *output], out, err) == 1
        assert out.getvalue() == ""
        assert err.getvalue() == "error: error parsing template {{.a, template: output:1: unclosed action\n"


def test_objects_are_rendered_one_alone_several_as_a_list_with_managed_fields() -> None:
    body = {"kind": "ImageStream", "metadata": {"name": "app", "managedFields": [{"manager": "kubectl"}]}}
    template = OutputFormat("go-template", "{{.kind}}:{{range .items}}{{.metadata.name}},{{end}}")
    assert render([body, body], template) == "List:app,app,"
    # As in kubectl, only -o json and -o yaml leave managedFields out; templates see them.
    managers = OutputFormat("go-template", "{{range .metadata.managedFields}}{{.manager}}{{end}}")
    assert render([body], managers) == "kubectl"
