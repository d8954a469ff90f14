"""Hostile input is bounded: every parser of user or registry text answers any input with its own error type.

For each parser: arbitrary text (or bytes) raises nothing but the parser's documented error, a round trip or
an invariant holds where one exists, and the most hostile 256 KiB inputs found (bench/parse_worst.py times
them) are rejected or parsed correctly. The assertions are on results, never on time.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagestreams.cli.errors import CliError
from imagestreams.cli.history import resume_spec_tag
from imagestreams.cli.importing import format_timeout, parse_timeout
from imagestreams.cli.tagging import ROLLED_BACK_ANNOTATION
from imagestreams.core.jsonlimits import MAX_JSON_DEPTH, JSONNestingError, load_json
from imagestreams.core.keyring import InvalidDockerConfig, lookup, parse_dockercfg, parse_dockerconfigjson
from imagestreams.core.references import REFERENCE_MAX_LENGTH, InvalidReference, parse_reference
from imagestreams.core.tagorder import prioritize_tags
from imagestreams.core.tags import repository_tags_to_import
from imagestreams.core.triggers import (
    TRIGGERS_ANNOTATION_MAX_LENGTH,
    FieldPath,
    TriggerAnnotation,
    TriggerError,
    parse_field_path,
    parse_triggers,
)
from imagestreams.core.workloadkinds import WorkloadKind
from imagestreams.registry.challenges import MAX_CHALLENGES, MAX_PARAMETERS, Challenge, parse_challenges
from imagestreams.registry.errors import ErrorDetail, parse_error_body
from imagestreams.registry.links import MAX_LINKS, parse_link_next
from imagestreams.registry.manifests import (
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestError,
    ParsedImage,
    ParsedIndex,
    image_metadata,
    parse_manifest,
    validate_reference,
    validate_registry,
    validate_repository,
)
from imagestreams.registry.retry import parse_retry_after

SIZE = 256 * 1024
FUZZ = settings(max_examples=100, deadline=None)
DEPLOYMENT = WorkloadKind.DEPLOYMENT
CONTAINERS = "spec.template.spec.containers"
DIGEST = "sha256:" + "a" * 64

# Text made of the pieces the parsers care about, so that short examples reach deep into each grammar.
FRAGMENTS = [" ", "  ", "\t", ",", ";", "=", "==", '"', "'", "\\", "(", ")", "[", "]", "{", "}", "<", ">", ":", "/"]
FRAGMENTS += ["@", ".", "-", "_", "*", "a", "Z", "0", "12", "é", "\u00a0", "\x00", "latest", "sha256:"]


def fragments(*extra: str) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(FRAGMENTS + list(extra)), max_size=24).map("".join)


def texts(*extra: str) -> st.SearchStrategy[str]:
    return st.text(max_size=80) | fragments(*extra)


def repeat(unit: str, size: int = SIZE, head: str = "", tail: str = "") -> str:
    """`head`, `unit` repeated, then `tail`: about `size` characters in all."""
    return head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


# --- JSON with a nesting limit (core/jsonlimits.py), under every JSON parser below -------------------------------


@FUZZ
@given(texts("true", "null", "1e5"))
def test_load_json_answers_any_text_as_json_loads_does_or_with_a_value_error(text: str) -> None:
    try:
        expected: Any = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError, match=r"."):
            load_json(text)
    else:
        assert load_json(text) == expected


@FUZZ
@given(st.binary(max_size=80))
def test_load_json_answers_any_bytes_with_a_value_or_a_value_error(data: bytes) -> None:
    # JSONDecodeError and UnicodeDecodeError are ValueErrors, as JSONNestingError is.
    with contextlib.suppress(ValueError):
        load_json(data)


@FUZZ
@given(json_values)
def test_load_json_round_trips_json_values(value: Any) -> None:
    assert load_json(json.dumps(value)) == value
    assert load_json(json.dumps(value).encode("utf-16")) == value


def test_nesting_up_to_the_limit_parses_and_one_more_level_is_refused() -> None:
    assert load_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    with pytest.raises(JSONNestingError, match=rf"deeper than {MAX_JSON_DEPTH} levels"):
        load_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(JSONNestingError):
        load_json('{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1))


def test_brackets_inside_strings_do_not_nest() -> None:
    text = json.dumps(["[" * 1000, "{" * 1000, '\\"[[[' * 100])
    assert load_json(text) == json.loads(text)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param("[" * SIZE, JSONNestingError, id="[[[["),
        pytest.param('{"a":' * (SIZE // 5), JSONNestingError, id="objects"),
        pytest.param("[" * 100 + '"' + 'a\\"' * (SIZE // 3), json.JSONDecodeError, id="unterminated-string"),
        pytest.param("[" * 100 + "]" * (SIZE // 2), json.JSONDecodeError, id="extra-closers"),
    ],
)
def test_hostile_json_is_refused(text: str, error: type[ValueError]) -> None:
    with pytest.raises(error):
        load_json(text)


def test_many_shallow_lists_parse() -> None:
    assert len(load_json(repeat("[],", head="[", tail="[]]"))) == SIZE // 3


# --- trigger annotations and fieldPaths (core/triggers.py) ------------------------------------------------------


@FUZZ
@given(texts())
def test_any_annotation_text_is_triggers_or_a_trigger_error(text: str) -> None:
    with contextlib.suppress(TriggerError):
        assert isinstance(parse_triggers(text, DEPLOYMENT, "ns"), TriggerAnnotation)


@FUZZ
@given(json_values)
def test_any_annotation_json_is_triggers_or_a_trigger_error(value: Any) -> None:
    for document in (value, [value], [{"from": value, "fieldPath": value, "paused": value}]):
        with contextlib.suppress(TriggerError):
            parse_triggers(json.dumps(document), DEPLOYMENT, "ns")


@FUZZ
@given(texts("?(", "@.name", "spec.template.spec.", "containers[", "].image"))
def test_any_field_path_is_a_field_path_or_a_trigger_error(text: str) -> None:
    for raw in (text, f"{CONTAINERS}[{text}].image", f"spec.jobTemplate.spec.template.spec.containers[{text}].image"):
        with contextlib.suppress(TriggerError):
            assert parse_field_path(raw, DEPLOYMENT).render(DEPLOYMENT).startswith(CONTAINERS)


# The regex the hand-written reader replaced: correct, but quadratic in a run of spaces. Short inputs only.
QUADRATIC_LOOSE_SELECTOR = re.compile(r"""\?\(\s*@\.name\s*==?\s*['"]?\s*([^'"\s)]+)\s*['"]?\s*\)""")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["?(", "@.name", "=", "==", " ", "\t", "'", '"', ")", "web", "=x", "("]), max_size=12))
def test_the_fix_suggested_for_a_loose_selector_is_the_one_the_old_regex_found(pieces: list[str]) -> None:
    selector = "".join(pieces)
    try:
        parse_field_path(f"{CONTAINERS}[{selector}].image", DEPLOYMENT)
    except TriggerError as error:
        message = str(error)
    else:
        return  # the strict ?(@.name=="web"): nothing to suggest
    old = QUADRATIC_LOOSE_SELECTOR.fullmatch(selector)
    suggestion = f'; write {CONTAINERS}[?(@.name=="{old.group(1)}")].image' if old else "; write "
    assert (suggestion in message) == bool(old)


# The strict grammar has no quotes or whitespace in a name; a "]" would end the selector.
container_names = st.text(st.characters(blacklist_characters='"]'), min_size=1).filter(
    lambda name: not any(character.isspace() for character in name)
)
field_paths = st.builds(
    FieldPath,
    st.sampled_from(["containers", "initContainers"]),
    st.none(),
    container_names,
) | st.builds(FieldPath, st.sampled_from(["containers", "initContainers"]), st.integers(0, 10**18 - 1), st.none())


@FUZZ
@given(field_paths, st.sampled_from(list(WorkloadKind)))
def test_a_rendered_field_path_parses_back(field_path: FieldPath, kind: WorkloadKind) -> None:
    assert parse_field_path(field_path.render(kind), kind) == field_path


LOWER_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
ALNUM = LOWER_ALNUM + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def joined(separators: str | list[str], word: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[str]:
    """Words of lowercase letters and digits, joined by one of `separators` (cheaper than st.from_regex)."""
    words = st.lists(word or st.text(LOWER_ALNUM, min_size=1, max_size=6), min_size=1, max_size=3)
    return st.builds(lambda parts, separator: separator.join(parts), words, st.sampled_from(list(separators)))


stream_names = joined("._-")
tag_names = st.text(st.characters(blacklist_characters=":@", blacklist_categories=("Cs",)), min_size=1, max_size=20)


@FUZZ
@given(
    st.lists(st.tuples(stream_names, tag_names, st.sampled_from(["", "other"]), st.booleans()), max_size=5),
    st.sampled_from(list(WorkloadKind)),
)
def test_triggers_written_as_json_parse_back(entries: list[tuple[str, str, str, bool]], kind: WorkloadKind) -> None:
    document = [
        {
            "from": {"kind": "ImageStreamTag", "name": f"{stream}:{tag}", "namespace": namespace},
            "fieldPath": FieldPath("containers", index, None).render(kind),
            "paused": paused,
        }
        for index, (stream, tag, namespace, paused) in enumerate(entries)
    ]
    triggers = parse_triggers(json.dumps(document), kind, "ns").triggers
    assert [(t.stream, t.tag, t.namespace, t.field_path and t.field_path.index, t.paused) for t in triggers] == [
        (stream, tag, namespace or "ns", index, paused)
        for index, (stream, tag, namespace, paused) in enumerate(entries)
    ]


def annotation(field_path: str, name: str = "app:latest") -> str:
    return json.dumps([{"from": {"kind": "ImageStreamTag", "name": name}, "fieldPath": field_path}])


@pytest.mark.parametrize(
    "selector",
    [
        pytest.param(repeat(" ", head="?(@.name=="), id="spaces-after-=="),
        pytest.param(repeat(" ", head="?(@.name==web"), id="name-then-spaces"),
        pytest.param(repeat(" ", head="?(") + "@.name" + " " * 1000, id="spaces-around-@.name"),
        pytest.param(repeat("'", head="?(@.name=="), id="quotes"),
    ],
)
def test_hostile_selectors_are_refused_without_a_suggestion(selector: str) -> None:
    with pytest.raises(TriggerError, match="must be a decimal index") as raised:
        parse_field_path(f"{CONTAINERS}[{selector}].image", DEPLOYMENT)
    assert "; write" not in str(raised.value)
    assert len(str(raised.value)) < 1000  # the 256 KiB path is cut in the message


def test_a_loose_selector_padded_with_256_kib_of_spaces_gets_its_fix() -> None:
    selector = "?(" + " " * (SIZE // 2) + "@.name = 'web'" + " " * (SIZE // 2) + ")"
    with pytest.raises(TriggerError, match=re.escape(f'; write {CONTAINERS}[?(@.name=="web")].image')):
        parse_field_path(f"{CONTAINERS}[{selector}].image", DEPLOYMENT)


def test_an_index_of_256_kib_digits_is_refused() -> None:
    with pytest.raises(TriggerError, match=r"container index 1111.* is too large"):
        parse_field_path(f"{CONTAINERS}[{repeat('1')}].image", DEPLOYMENT)
    assert parse_field_path(f"{CONTAINERS}[{'0' * 100}7].image", DEPLOYMENT).index == 7


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param("[" * SIZE, "characters long; the limit is 65536", id="[[[[-256KiB"),
        pytest.param("[" * TRIGGERS_ANNOTATION_MAX_LENGTH, "nested deeper than 64 levels", id="[[[[-64KiB"),
        pytest.param('{"a":' * (TRIGGERS_ANNOTATION_MAX_LENGTH // 5), "nested deeper than 64 levels", id="{{{{"),
        pytest.param("[" * 10_000, "nested deeper than 64 levels", id="[[[[-10KB"),
        pytest.param(repeat("[],", TRIGGERS_ANNOTATION_MAX_LENGTH, "[", "[]]"), "trigger 1: each trigger", id="[],[]"),
        pytest.param(repeat("{},", TRIGGERS_ANNOTATION_MAX_LENGTH, "[", "{}]"), "triggers 1 and 2 both", id="{},{}"),
        pytest.param('["' + "\\" * 60_000, "not valid JSON", id="backslashes"),
    ],
)
def test_hostile_annotations_are_trigger_errors(text: str, words: str) -> None:
    with pytest.raises(TriggerError, match=words) as raised:
        parse_triggers(text, DEPLOYMENT, "ns")
    assert len(str(raised.value)) < 2000


def test_a_hostile_name_is_ignored_with_a_short_reason() -> None:
    [ignored] = parse_triggers(annotation("x", repeat("A", 60_000, tail=":x")), DEPLOYMENT, "ns").ignored
    assert re.search(r'"AAAA.*\.\.\." is not a valid', ignored.reason)
    assert len(ignored.message) < 2000


def test_an_annotation_at_the_limit_still_parses() -> None:
    trigger = json.loads(annotation(f'{CONTAINERS}[?(@.name=="web")].image'))[0]
    padded = json.dumps([trigger]).replace("[", "[" + " " * (TRIGGERS_ANNOTATION_MAX_LENGTH - 200), 1)
    padded += " " * (TRIGGERS_ANNOTATION_MAX_LENGTH - len(padded))
    assert len(padded) == TRIGGERS_ANNOTATION_MAX_LENGTH
    assert [t.field_path and t.field_path.name for t in parse_triggers(padded, DEPLOYMENT, "ns").triggers] == ["web"]


# --- image references (core/references.py) ----------------------------------------------------------------------


@FUZZ
@given(texts())
def test_any_text_is_a_reference_or_an_invalid_reference(text: str) -> None:
    try:
        reference = parse_reference(text)
    except InvalidReference:
        return
    assert parse_reference(reference.exact()) == reference


registries = st.sampled_from(["", "quay.io/", "localhost/", "localhost:5000/", "127.0.0.1:5000/", "[::1]:5000/"])
components = joined([".", "_", "__", "-", "--"])
# Without a registry, a first component with a "." would name one (distribution's rule), so it has none.
first_components = joined(["_", "__", "-", "--"])
tags = st.builds(str.__add__, st.sampled_from(ALNUM + "_"), st.text(ALNUM + "_.-", max_size=20))
digests = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda hex_digits: f"sha256:{hex_digits}")


@FUZZ
@given(registries, st.lists(components, max_size=2), first_components, st.none() | tags, st.none() | digests)
def test_a_reference_re_serialises_to_itself(
    registry: str, rest: list[str], first: str, tag: str | None, digest: str | None
) -> None:
    text = registry + "/".join([first, *rest]) + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    reference = parse_reference(text)
    assert reference.exact() == text
    assert parse_reference(str(reference)) == reference
    assert (reference.tag, reference.digest) == (tag, digest)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(repeat("a", tail="-"), id="aaaa-"),
        pytest.param(repeat("a-", tail="!.x/y"), id="registry"),
        pytest.param(repeat("a/", tail="A"), id="a/a/A"),
        pytest.param(repeat("a-", head="x@"), id="digest"),
        pytest.param(repeat("a_"), id="a_a_"),
    ],
)
def test_hostile_references_are_refused_by_length(text: str) -> None:
    with pytest.raises(InvalidReference, match=f"longer than {REFERENCE_MAX_LENGTH} characters") as raised:
        parse_reference(text)
    assert len(str(raised.value)) < 1000


# --- pull secrets (core/keyring.py) -----------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=80) | texts().map(str.encode))
def test_any_pull_secret_bytes_are_entries_or_invalid_docker_config(data: bytes) -> None:
    for parse in (parse_dockerconfigjson, parse_dockercfg):
        with contextlib.suppress(InvalidDockerConfig):
            assert isinstance(parse(data), list)


ascii_text = st.text(st.characters(max_codepoint=127), max_size=20)


@FUZZ
@given(st.dictionaries(ascii_text, st.dictionaries(st.sampled_from(["username", "password", "auth"]), ascii_text)))
def test_any_docker_config_shape_is_entries_or_invalid_docker_config(auths: dict[str, dict[str, str]]) -> None:
    try:
        entries = parse_dockerconfigjson(json.dumps({"auths": auths}).encode())
    except InvalidDockerConfig:
        return
    assert {entry.pattern for entry in entries} <= set(auths)


@FUZZ
@given(st.dictionaries(ascii_text, st.tuples(ascii_text.filter(lambda user: ":" not in user), ascii_text), max_size=5))
def test_pull_secret_credentials_round_trip(credentials: dict[str, tuple[str, str]]) -> None:
    auths = {
        key: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        for key, (user, password) in credentials.items()
    }
    entries = parse_dockerconfigjson(json.dumps({"auths": auths}).encode())
    assert {(e.pattern, e.credentials.username, e.credentials.password) for e in entries} == {
        (key, user, password) for key, (user, password) in credentials.items() if user or password
    }


def test_a_pull_secret_auth_of_256_kib_of_spaces_is_refused() -> None:
    with pytest.raises(InvalidDockerConfig, match="must be base64 of 'username:password'"):
        parse_dockerconfigjson(json.dumps({"auths": {"r": {"auth": repeat(" ")}}}).encode())


def test_a_deeply_nested_pull_secret_is_invalid_docker_config() -> None:
    with pytest.raises(InvalidDockerConfig):
        parse_dockerconfigjson(b"[" * SIZE)


def test_a_non_ascii_auth_is_invalid_docker_config() -> None:
    with pytest.raises(InvalidDockerConfig, match="is not valid base64"):
        parse_dockerconfigjson(json.dumps({"auths": {"r": {"auth": "é"}}}).encode())


def test_a_wildcard_key_with_many_stars_matches_in_linear_time() -> None:
    """`*a*a*a*a*a*a*a*a*b` against a long label: a regular expression of ".*" backtracks for minutes."""
    hostile = "*a" * 8 + "*b"
    label = "a" * 60
    keyring = parse_dockerconfigjson(json.dumps({"auths": {f"{hostile}.example.com": {"auth": "dTpw"}}}).encode())
    assert lookup(keyring, f"{label}.example.com", "app") == []
    assert lookup(keyring, f"{label}b.example.com", "app") != []


@settings(max_examples=300, deadline=None)
@given(
    glob=st.text(alphabet="ab*", min_size=0, max_size=12),
    label=st.text(alphabet="ab", min_size=0, max_size=12),
)
def test_wildcard_labels_match_as_a_glob_of_stars_does(glob: str, label: str) -> None:
    """Against fnmatch (for "*" alone the same as Go's filepath.Match on one label), on inputs small enough
    for its backtracking."""
    keyring = parse_dockerconfigjson(json.dumps({"auths": {f"{glob or 'x'}.example.com": {"auth": "dTpw"}}}).encode())
    found = lookup(keyring, f"{label or 'y'}.example.com", "app") != []
    assert found == fnmatch.fnmatchcase(label or "y", glob or "x")


# --- WWW-Authenticate (registry/challenges.py) ------------------------------------------------------------------


@FUZZ
@given(texts("Bearer", "Basic", "realm", 'realm="x"'))
def test_any_header_is_a_bounded_list_of_challenges(header: str) -> None:
    challenges = parse_challenges(header)
    assert len(challenges) <= MAX_CHALLENGES
    assert all(len(challenge.params) <= MAX_PARAMETERS for challenge in challenges)


def quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


schemes = st.text(ALNUM, min_size=1, max_size=8)
param_names = st.text(LOWER_ALNUM + "_", min_size=1, max_size=8)
param_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)


@FUZZ
@given(st.lists(st.tuples(schemes, st.dictionaries(param_names, param_values, max_size=5)), min_size=1, max_size=4))
def test_challenges_written_out_parse_back(written: list[tuple[str, dict[str, str]]]) -> None:
    header = ", ".join(
        scheme + (" " + ", ".join(f"{name}={quoted(value)}" for name, value in params.items()) if params else "")
        for scheme, params in written
    )
    assert parse_challenges(header) == [Challenge(scheme.lower(), params) for scheme, params in written]


def test_hostile_challenges_stop_at_the_limits() -> None:
    assert len(parse_challenges(repeat("a "))) == MAX_CHALLENGES
    assert len(parse_challenges(repeat(" b", head="B", tail="="))) == MAX_CHALLENGES
    [many_params] = parse_challenges(repeat(",a=b", head="Bearer x=y"))
    assert many_params.params == {"x": "y", "a": "b"}
    # What follows the parameter limit is ignored, even what would read as another challenge.
    few = "Bearer " + "a=b, " * (MAX_PARAMETERS - 1) + "Basic realm=x"
    assert parse_challenges(few) == [Challenge("bearer", {"a": "b"}), Challenge("basic", {"realm": "x"})]
    too_many = "Bearer " + "a=b, " * MAX_PARAMETERS + "Basic realm=x"
    assert parse_challenges(too_many) == [Challenge("bearer", {"a": "b"})]
    assert parse_challenges(repeat(" ", head="Bearer", tail="!")) == [Challenge("bearer"), Challenge("!")]


def test_a_256_kib_quoted_realm_parses_and_an_unterminated_one_is_ignored() -> None:
    realm = repeat('\\"', SIZE - 100)
    [challenge] = parse_challenges(f'Bearer realm="{realm}",service="s"')
    assert challenge.realm == realm.replace('\\"', '"')
    assert challenge.service == "s"
    assert parse_challenges(f'Bearer realm="{realm}') == [Challenge("bearer")]


# --- Link (registry/links.py) -----------------------------------------------------------------------------------


@FUZZ
@given(texts("<", ">", "rel", "next", '"next"'))
def test_any_link_header_is_a_target_or_none(header: str) -> None:
    target = parse_link_next(header)
    assert target is None or target in header


targets = st.text(st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="<>"), min_size=1)


@FUZZ
@given(st.lists(st.tuples(targets, st.sampled_from(["prev", "last", "first", "next", "prev next"])), max_size=6))
def test_the_next_link_written_out_is_found(links: list[tuple[str, str]]) -> None:
    header = ", ".join(f'<{target}>; title="a, b"; rel="{rel}"' for target, rel in links)
    nexts = [target for target, rel in links if "next" in rel.split()]
    assert parse_link_next(header) == (nexts[0] if nexts else None)


def test_hostile_link_headers() -> None:
    assert parse_link_next(repeat("<a>,", tail='</n>; rel="next"')) is None  # past MAX_LINKS
    assert parse_link_next("<a>," * (MAX_LINKS - 1) + '</n>; rel="next"') == "/n"
    assert parse_link_next(repeat("; a", head="<a>", tail='; rel="next"')) is None  # past MAX_PARAMETERS
    assert parse_link_next(repeat('\\"', head='<a>;rel="')) is None
    assert parse_link_next(repeat(" ", head="<" + "a" * 1000, tail='>; rel="next"')) == "a" * 1000


# --- manifests, image configs and names (registry/manifests.py) -------------------------------------------------


@FUZZ
@given(st.binary(max_size=80) | texts("{", '"manifests"', '"config"', '"layers"').map(str.encode), st.none() | texts())
def test_any_manifest_body_is_a_manifest_or_a_manifest_error(body: bytes, content_type: str | None) -> None:
    with contextlib.suppress(ManifestError):
        assert isinstance(parse_manifest(body, content_type, DIGEST), ParsedImage | ParsedIndex)


@FUZZ
@given(json_values)
def test_any_json_manifest_or_config_is_parsed_or_a_manifest_error(value: Any) -> None:
    shapes = [value, {"manifests": [value]}, {"config": value, "layers": [value]}, {"config": {"Labels": value}}]
    image = parse_manifest(json.dumps({"config": descriptor(), "layers": []}).encode(), OCI_MANIFEST, DIGEST)
    assert isinstance(image, ParsedImage)
    for shape in shapes:
        body = json.dumps(shape).encode()
        with contextlib.suppress(ManifestError):
            parse_manifest(body, OCI_MANIFEST, DIGEST)
        with contextlib.suppress(ManifestError):
            image_metadata(image, body)


def descriptor(size: int = 1, media_type: str = "application/vnd.oci.image.layer.v1.tar+gzip") -> dict[str, Any]:
    return {"mediaType": media_type, "digest": DIGEST, "size": size}


@FUZZ
@given(
    st.lists(st.integers(0, 2**40), max_size=8),
    st.lists(st.tuples(st.sampled_from(["linux", "windows"]), st.text(max_size=8)), max_size=8),
)
def test_manifests_written_as_json_parse_back(layer_sizes: list[int], platforms: list[tuple[str, str]]) -> None:
    image = parse_manifest(
        json.dumps({"config": descriptor(), "layers": [descriptor(size) for size in layer_sizes]}).encode(),
        None,
        DIGEST,
    )
    assert isinstance(image, ParsedImage)
    assert [layer.size for layer in image.layers] == layer_sizes
    children = [descriptor(1, OCI_MANIFEST) | {"platform": {"os": os, "architecture": arch}} for os, arch in platforms]
    index = parse_manifest(json.dumps({"mediaType": OCI_INDEX, "manifests": children}).encode(), None, DIGEST)
    assert isinstance(index, ParsedIndex)
    assert [(child.os, child.architecture) for child in index.children] == platforms


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * SIZE, id="[[[["),
        pytest.param(b'{"config":' * (SIZE // 10), id="config-in-config"),
        pytest.param(b'{"manifests": [' + b"[" * SIZE, id="manifests"),
    ],
)
def test_deeply_nested_manifests_are_manifest_errors(body: bytes) -> None:
    with pytest.raises(ManifestError, match="nested deeper than 64 levels"):
        parse_manifest(body, None, DIGEST)


def test_an_index_of_256_kib_parses_every_child() -> None:
    child = json.dumps(descriptor(1, OCI_MANIFEST) | {"platform": {"os": "linux", "architecture": "amd64"}})
    body = repeat(child + ",", head=f'{{"mediaType": "{OCI_INDEX}", "manifests": [', tail=child + "]}")
    index = parse_manifest(body.encode(), None, DIGEST)
    assert isinstance(index, ParsedIndex)
    assert len(index.children) == body.count('"platform"')


@FUZZ
@given(texts("::1", "localhost", "__", "--"))
def test_any_name_validates_or_raises_value_error(text: str) -> None:
    for validate in (validate_registry, validate_repository, validate_reference):
        with contextlib.suppress(ValueError):
            validate(text)


@pytest.mark.parametrize(
    ("validate", "text"),
    [
        (validate_registry, repeat("a-", tail="!")),
        (validate_registry, repeat("a.", tail="!")),
        (validate_repository, repeat("a_", tail="!")),
        (validate_repository, repeat("a", tail="-")),
        (validate_reference, repeat("a.", tail="!")),
    ],
)
def test_hostile_names_are_refused(validate: Any, text: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        validate(text)


def test_a_long_valid_host_is_accepted() -> None:
    validate_registry(repeat("a-a.", tail="a:5000"))


# --- registry error bodies (registry/errors.py) -----------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=80) | json_values.map(lambda value: json.dumps({"errors": value}).encode()))
def test_any_error_body_is_a_tuple_of_details(body: bytes) -> None:
    assert isinstance(parse_error_body(body), tuple)


@FUZZ
@given(st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=5))
def test_error_details_round_trip(details: list[tuple[str, str]]) -> None:
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": [[{}]]} for code, message in details]})
    assert parse_error_body(body.encode()) == tuple(ErrorDetail(code, message) for code, message in details)


def test_a_deeply_nested_error_body_has_no_details() -> None:
    assert parse_error_body(b'{"errors": [' + b"[" * SIZE) == ()
    assert parse_error_body(b'{"errors": [{"code": "DENIED", "detail": ' + b"[" * 100 + b"]" * 100 + b"}]}") == ()


# --- tag lists (core/tagorder.py, core/tags.py; the JSON itself is read in registry/client.py) --------------------


tag_like = st.text(max_size=12) | fragments("1", "v", ".", "-rc", "+b", "latest", "18446744073709551616")


@FUZZ
@given(st.lists(tag_like, max_size=20), st.randoms(use_true_random=False))
def test_any_tag_list_is_reordered_without_loss_whatever_its_order(tags: list[str], random: Any) -> None:
    ordered = prioritize_tags(tags)
    assert sorted(ordered) == sorted(tags)
    shuffled = list(tags)
    random.shuffle(shuffled)
    assert prioritize_tags(shuffled) == ordered
    if "latest" in tags:
        assert ordered[0] == "latest"


@FUZZ
@given(st.sets(st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)), max_size=20))
def test_release_versions_come_newest_first(versions: set[tuple[int, int, int]]) -> None:
    tags = [".".join(map(str, version)) for version in versions]
    assert prioritize_tags(tags) == [".".join(map(str, v)) for v in sorted(versions, reverse=True)]


def test_a_tag_list_of_huge_numbers_sorts_them_with_the_other_tags() -> None:
    huge = ["1" * 5000 + ".0.0", "2" * 5000 + ".1", "9" * 21 + ".0.0", "v" + "3" * 5000 + ".0.0"]
    assert prioritize_tags([*huge, "1.0", "zz"]) == ["1.0", *sorted([*huge, "zz"])]


def test_a_256_kib_tag_list_is_ordered_newest_first_and_split_for_import() -> None:
    tags = [f"1.{n}.{n}-rc.{n}" for n in range(SIZE // 16)]
    ordered = prioritize_tags(load_json(json.dumps({"tags": tags}))["tags"])
    assert ordered[:2] == [tags[-1], tags[-2]]
    chosen, rest = repository_tags_to_import(ordered, [tags[-1]], 10)
    assert chosen == ordered[1:11]
    assert len(rest) == len(tags) - 11


# --- Retry-After (registry/retry.py) and the plugin's --timeout (cli/importing.py) --------------------------------


@FUZZ
@given(texts("Sun, 06 Nov 1994 08:49:37 GMT", "²", "1e999", "nan"))
def test_any_retry_after_is_a_delay_or_none(value: str) -> None:
    delay = parse_retry_after(value)
    assert delay is None or delay >= 0


@FUZZ
@given(st.integers(0, 10**12))
def test_retry_after_seconds_round_trip(seconds: int) -> None:
    assert parse_retry_after(str(seconds)) == seconds


@pytest.mark.parametrize("value", [repeat("1"), "1" * 5000, "1" * 400, "²", "0" * 5000 + "x"])
def test_hostile_retry_after_values_are_none(value: str) -> None:
    assert parse_retry_after(value) is None


@FUZZ
@given(texts("ms", "s", "m", "h", "1.5"))
def test_any_timeout_is_seconds_or_a_cli_error(text: str) -> None:
    with contextlib.suppress(CliError):
        assert parse_timeout(text) >= 0


@FUZZ
@given(st.integers(1, 10**7))
def test_a_formatted_timeout_parses_back(seconds: int) -> None:
    assert parse_timeout(format_timeout(seconds)) == seconds


@pytest.mark.parametrize("text", [repeat("1", tail="x"), repeat("1.", tail="s"), repeat("1s") + "x"])
def test_hostile_timeouts_are_cli_errors(text: str) -> None:
    with pytest.raises(CliError, match="invalid --timeout"):
        parse_timeout(text)


def test_a_256_kib_duration_of_valid_parts_parses() -> None:
    assert parse_timeout(repeat("1s")) == SIZE // 2


# --- rollback annotations (cli/history.py) ----------------------------------------------------------------------


def test_a_deeply_nested_rollback_annotation_is_a_cli_error() -> None:
    raw = {"name": "latest", "annotations": {ROLLED_BACK_ANNOTATION: "[" * SIZE}}
    with pytest.raises(CliError, match="is not a JSON object"):
        resume_spec_tag(raw, "app")
