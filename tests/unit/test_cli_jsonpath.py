"""kubectl's JSONPath templates (`-o jsonpath=...`): the examples of kubectl's own reference, and its edges."""

from __future__ import annotations

import json

import pytest

from imagestreams.cli.errors import CliError
from imagestreams.cli.jsonpath import execute, go_float, go_json, parse, unquote

# The input of kubectl's JSONPath reference page (kubernetes.io, "JSONPath Support").
REFERENCE_INPUT = {
    "kind": "List",
    "items": [
        {
            "kind": "None",
            "metadata": {"name": "127.0.0.1", "labels": {"kubernetes.io/hostname": "127.0.0.1"}},
            "status": {
                "capacity": {"cpu": "4"},
                "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}],
            },
        },
        {
            "kind": "None",
            "metadata": {"name": "127.0.0.2"},
            "status": {
                "capacity": {"cpu": "8"},
                "addresses": [
                    {"type": "LegacyHostIP", "address": "127.0.0.2"},
                    {"type": "another", "address": "127.0.0.3"},
                ],
            },
        },
    ],
    "users": [{"name": "myself", "user": {}}, {"name": "e2e", "user": {"username": "admin", "password": "secret"}}],
}


def jsonpath(template: str, data: object = REFERENCE_INPUT, **flags: bool) -> str:
    return execute(parse(template), data, **flags)


@pytest.mark.parametrize(
    ("template", "printed"),
    [
        ("kind is {.kind}", "kind is List"),
        ("{.kind}", "List"),
        ("{['kind']}", "List"),
        ("{..name}", "127.0.0.1 127.0.0.2 myself e2e"),
        ("{.items[*].metadata.name}", "127.0.0.1 127.0.0.2"),
        ("{.users[0].name}", "myself"),
        ("{.items[*]['metadata.name', 'status.capacity']}", '127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}'),
        ('{.users[?(@.name=="e2e")].user.password}', "secret"),
        (
            "{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}",
            '[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] ',
        ),
        ("{range .items[*]}{.metadata.name}{'\\t'}{end}", "127.0.0.1\t127.0.0.2\t"),
        ("{.items[0].metadata.labels.kubernetes\\.io/hostname}", "127.0.0.1"),
    ],
)
def test_the_examples_of_kubectls_reference_print_what_kubectl_prints(template: str, printed: str) -> None:
    # The page shows Go's old map[cpu:4] form; kubectl prints maps as JSON since 1.11, as here.
    assert jsonpath(template) == printed


def test_the_current_object_is_the_input() -> None:
    assert json.loads(jsonpath("{@}")) == REFERENCE_INPUT
    assert json.loads(jsonpath("{.}")) == REFERENCE_INPUT


@pytest.mark.parametrize(
    ("template", "printed"),
    [
        ("{.items[-1].metadata.name}", "127.0.0.2"),
        ("{.items[0:1].metadata.name}", "127.0.0.1"),
        ("{.items[1:].metadata.name}", "127.0.0.2"),
        ("{.items[::2].metadata.name}", "127.0.0.1"),
        ("{.items[0,1].metadata.name}", "127.0.0.1 127.0.0.2"),
        ("{.items[1].status.addresses[*].address}", "127.0.0.2 127.0.0.3"),
        ("{.items[?(@.status.capacity.cpu=='8')].metadata.name}", "127.0.0.2"),
        ("{.items[?(@.metadata.labels)].metadata.name}", "127.0.0.1"),
        ('{.users[?(@.name!="e2e")].name}', "myself"),
        ('{.users[?(@.name=~"^e2")].name}', "e2e"),
        ("{.items[0].status.capacity.*}", "4"),
        (
            '{range .items[*]}{range .status.addresses[*]}{.type}={.address};{end}{"\\n"}{end}',
            "LegacyHostIP=127.0.0.1;\nLegacyHostIP=127.0.0.2;another=127.0.0.3;\n",
        ),
        ("{.nothing}", ""),
        ("{range .nothing[*]}x{end}done", "done"),
        ("plain text", "plain text"),
        ('{"a\\u00e9\\x41"}', "aéA"),
    ],
)
def test_slices_unions_filters_and_nested_ranges(template: str, printed: str) -> None:
    assert jsonpath(template) == printed


def test_numbers_and_booleans_print_as_go_prints_them() -> None:
    data = {"i": 3, "f": 1.5, "big": 1e21, "whole": 100000000.0, "b": True, "n": None, "list": [1, "<a&b>"]}
    assert (
        jsonpath("{.i} {.f} {.big} {.whole} {.b} {.n} {.list}", data)
        == '3 1.5 1e+21 100000000 true <nil> [1,"\\u003ca\\u0026b\\u003e"]'
    )
    assert jsonpath("{.items[?(@.n>2)].n}", {"items": [{"n": 1}, {"n": 3}]}) == "3"
    assert (go_float(0.0001), go_float(0.00001), go_float(-2.5e-7)) == ("0.0001", "1e-05", "-2.5e-07")
    assert go_json({"b": 1, "a": [True]}) == '{"a":[true],"b":1}'


def test_jsonpath_as_json_prints_each_result_list_as_an_indented_array() -> None:
    assert jsonpath("{.items[*].metadata.name}", as_json=True) == '[\n    "127.0.0.1",\n    "127.0.0.2"\n]\n'


def test_missing_keys_fail_only_when_not_allowed() -> None:
    assert jsonpath("{.nope}") == ""
    with pytest.raises(CliError) as failed:
        jsonpath("{.nope}", allow_missing_keys=False)
    assert str(failed.value).startswith(
        'error executing jsonpath "{.nope}": Error executing template: nope is not found. Printing more information'
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{.items[*].metadata.name", "error parsing jsonpath {.items[*].metadata.name, unclosed action"),
        ("{.items[x]}", "error parsing jsonpath {.items[x]}, invalid array index x"),
        ("{.a[?(@.b==1}", "error parsing jsonpath {.a[?(@.b==1}, unterminated filter"),
        ("{end}", "error parsing jsonpath {end}, not in range, nothing to end"),
        ("{....a}", "error parsing jsonpath {....a}, invalid multiple recursive descent"),
        ("{!}", "error parsing jsonpath {!}, unrecognized character in action: U+0021 '!'"),
        ("{'x}", "error parsing jsonpath {'x}, unterminated quoted string"),
    ],
)
def test_templates_that_do_not_parse_have_kubectls_messages(template: str, message: str) -> None:
    with pytest.raises(CliError) as failed:
        parse(template)
    assert str(failed.value) == message


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{.items[5]}", "array index out of bounds: index 5, length 2"),
        ("{.kind[0]}", "string is not array or slice"),
        ("{.users[?(@.name>1)]}", "incompatible types for comparison"),
        ("{.kind[?(@.x)]}", "is not array or slice and cannot be filtered"),
        ("{.items[*].status.addresses[?(@.type==@.address)].x}", ""),
        ("{foo}", "unrecognized identifier foo"),
    ],
)
def test_templates_that_fail_on_the_data_say_why(template: str, problem: str) -> None:
    if not problem:
        assert jsonpath(template) == ""
        return
    with pytest.raises(CliError, match="Error executing template: .*" + problem.replace("[", r"\[")):
        jsonpath(template)


def test_quoted_text_is_unquoted_as_go_does() -> None:
    assert unquote("'a\\'b'") == "a'b"
    assert unquote('"tab\\there\\n"') == "tab\there\n"
    for bad in ('"a"b"', "'x", '"\\q"', '"\\x4"'):
        with pytest.raises(ValueError, match="invalid syntax"):
            unquote(bad)


def test_a_long_template_parses_in_linear_time() -> None:
    template = "{.a}" * 20000 + "{range .items[*]}" + "{.x}" * 20000 + "{end}"
    assert jsonpath(template, {"a": 1, "items": [{"x": 2}]}) == "1" * 20000 + "2" * 20000


# client-go's own tests (util/jsonpath/jsonpath_test.go), with its Go structs written as the JSON kubectl reads.
STORE = {
    "Name": "jsonpath",
    "Book": [
        {"Category": "reference", "Author": "Nigel Rees", "Title": "Sayings of the Centurey", "Price": 8.95},
        {"Category": "fiction", "Author": "Evelyn Waugh", "Title": "Sword of Honour", "Price": 12.99},
        {"Category": "fiction", "Author": "Herman Melville", "Title": "Moby Dick", "Price": 8.99},
    ],
    "Bicycle": [{"Color": "red", "Price": 19.95, "IsNew": True}, {"Color": "green", "Price": 20.01, "IsNew": False}],
    "Labels": {"engieer": 10, "web/html": 15, "k8s-app": 20},
    "Employees": {"jason": "manager", "dan": "clerk"},
}
POINTS = [
    {"id": "i1", "x": 4, "y": -5},
    {"id": "i2", "x": -2, "y": -5, "z": 1},
    {"id": "i3", "x": 8, "y": 3},
    {"id": "i4", "x": -6, "y": -1},
    {"id": "i5", "x": 0, "y": 2, "z": 1},
    {"id": "i6", "x": 1, "y": 4},
]
CONTAINERS = {"spec": {"containers": [{"name": f"fake{n}"} for n in range(6)]}}
PODS = {
    "items": [
        {"metadata": {"name": "pod1"}, "spec": {"containers": [{"name": "foo"}, {"name": "bar"}]}},
        {"metadata": {"name": "pod2"}, "spec": {"containers": [{"name": "baz"}]}},
    ]
}
RUNNING = {
    "kind": "List",
    "items": [
        *({"kind": "Pod", "metadata": {"name": f"pod{n}"}, "status": {"phase": "Running"}} for n in (1, 2, 3)),
        {"resourceVersion": ""},
    ],
}


@pytest.mark.parametrize(
    ("template", "data", "printed"),
    [
        ("hello jsonpath", None, "hello jsonpath"),
        ("{..}", [1, 2, 3], "[1,2,3]"),
        ("{[?(@<5)]}", [2, 6, 3, 7], "2 3"),
        ('{"{"}', None, "{"),
        ("{[1,3,4]}", [0, 1, 2, 3, 4], "1 3 4"),
        ("{[0:2]}", ["Monday", "Tudesday"], "Monday Tudesday"),
        ("hello {.Name}", STORE, "hello jsonpath"),
        ("{$.Labels.web/html}", STORE, "15"),
        ("{$.Employees.jason}", STORE, "manager"),
        ("{.Labels.k8s-app}", STORE, "20"),
        ("{.Bicycle[*].Color}", STORE, "red green"),
        ("{.Book[*].Author}", STORE, "Nigel Rees Evelyn Waugh Herman Melville"),
        ("{..Price}", STORE, "19.95 20.01 8.95 12.99 8.99"),  # client-go compares these sorted (map order)
        ("{...Price}", STORE, "19.95 20.01 8.95 12.99 8.99"),
        ("{.Book[-1:].Title}", STORE, "Moby Dick"),
        ("{..Book[2].Author}", STORE, "Herman Melville"),
        ("{.Bicycle[?(@.IsNew==true)].Color}", STORE, "red"),
        ("{.Bicycle[?(@.Color=~'.*ed.*')].Color}", STORE, "red"),
        ("{.Bicycle[?(@.Color=~'^g.*en.*')].Color}", STORE, "green"),
        ("{.Bicycle[?(@.Color=~'.*e.*')].Color}", STORE, "red green"),
        ("{[?(@.z)].id}", POINTS, "i2 i5"),
        ("{[0]['id']}", POINTS, "i1"),
        ("{.spec.containers[0:0].name}", CONTAINERS, ""),
        ("{.spec.containers[0:-1].name}", CONTAINERS, "fake0 fake1 fake2 fake3 fake4"),
        ("{.spec.containers[-1].name}", CONTAINERS, "fake5"),
        ("{.spec.containers[-2:].name}", CONTAINERS, "fake4 fake5"),
        ("{.spec.containers[-6].name}", CONTAINERS, "fake0"),
        ("{.spec.containers[7:7].name}", CONTAINERS, ""),
        ("{.spec.containers[-7:-7].name}", CONTAINERS, ""),
        ("{.spec.containers[0:6:].name}", CONTAINERS, "fake0 fake1 fake2 fake3 fake4 fake5"),
        ("{.spec.containers[1:4:2].name}", CONTAINERS, "fake1 fake3"),
        ("{.spec.containers[0:6:5].name}", CONTAINERS, "fake0 fake5"),
        (
            '{range .items[*]}{.metadata.name}{":"}{range @.spec.containers[*]}{.name}{","}{end}{"+"}{end}',
            PODS,
            "pod1:foo,bar,+pod2:baz,+",
        ),
        (
            '{range .items[?(.status.phase=="Running")]}{.metadata.name}{" is Running\\n"}{end}',
            RUNNING,
            "pod1 is Running\npod2 is Running\npod3 is Running\n",
        ),
        ('{.items[?(@.metadata.labels.kubernetes\\.io/hostname=="127.0.0.1")].kind}', REFERENCE_INPUT, "None"),
        ("{range .items[*]}{.metadata.name}, {end}{.kind}", REFERENCE_INPUT, "127.0.0.1, 127.0.0.2, List"),
        ("{range .items[*]}{.metadata.name}{end}", {"items": []}, ""),
    ],
)
def test_client_gos_own_cases(template: str, data: object, printed: str) -> None:
    assert jsonpath(template, data) == printed


@pytest.mark.parametrize(
    ("template", "data", "problem"),
    [
        ("{............................................................Price}", STORE, "parse"),
        ("{.Bicycle[?(@.IsNew=~'.*ue')]}", STORE, "regexp search only support string"),
        ("{.Bicycle[?(@.Price=~'.*95')]}", STORE, "regexp search only support string"),
        ("{hello}", STORE, "unrecognized identifier hello"),
        ("{.Labels[0]}", STORE, "is not array or slice"),
        ("{.Book[?(@.Price<>10)]}", STORE, "unrecognized filter operator <>"),
        ("{range .Labels.*}{@}{end}{end}", STORE, "not in range, nothing to end"),
        ("{.spec.containers[-1:0].name}", CONTAINERS, "starting index 5 is greater than ending index 0"),
        ("{.spec.containers[-7].name}", CONTAINERS, "array index out of bounds"),
        ("{.spec.containers[3:1].name}", CONTAINERS, "starting index 3 is greater than ending index 1"),
        ("{.spec.containers[0:6:0].name}", CONTAINERS, "step must be > 0"),
        ("{.spec.containers[0:6:-1].name}", CONTAINERS, "step must be > 0"),
    ],
)
def test_client_gos_failing_cases(template: str, data: object, problem: str) -> None:
    with pytest.raises(CliError) as failed:
        jsonpath(template, data, allow_missing_keys=False)
    assert problem in str(failed.value) or (problem == "parse" and str(failed.value).startswith("error parsing"))


def test_a_filter_on_items_without_the_field_fails_only_when_missing_keys_are_errors() -> None:
    pods = {
        "items": [
            {"metadata": {"name": "pod1", "annotations": {"color": "blue"}}},
            {"metadata": {"name": "pod2"}},
            {"metadata": {"name": "pod4", "annotations": {"color": "blue"}}},
        ]
    }
    template = '{.items[?(@.metadata.annotations.color=="blue")].metadata.name}'
    assert jsonpath(template, pods) == "pod1 pod4"
    with pytest.raises(CliError, match="annotations is not found"):
        jsonpath(template, pods, allow_missing_keys=False)
