"""What the caches keep of watched objects (core.slimbodies): the fields decisions read, as compact JSON."""

from __future__ import annotations

import json
from typing import Any

from imagestreams.controller.reconciler import StreamCache
from imagestreams.core.fieldowners import image_owners
from imagestreams.core.slimbodies import CompactMap, slim_stream, slim_workload, without_managed_fields
from imagestreams.core.statusbudget import status_budget

SPEC_ENTRY = {
    "manager": "kubectl",
    "operation": "Apply",
    "fieldsV1": {
        "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}, "f:name": {}}}}}}
    },
}
STATUS_ENTRY = {
    "manager": "kube-controller-manager",
    "operation": "Update",
    "subresource": "status",
    "fieldsV1": {"f:status": {"f:conditions": {}, "f:observedGeneration": {}}},
}


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "team",
            "uid": "u1",
            "resourceVersion": "7",
            "annotations": {"image.openshift.io/triggers": "[]"},
            "managedFields": [SPEC_ENTRY, STATUS_ENTRY],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "a:1"}]}}},
        "status": {"observedGeneration": 3, "conditions": [{"type": "Available", "status": "True"}]},
    }


def stream() -> dict[str, Any]:
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {
            "name": "app",
            "namespace": "team",
            "managedFields": [SPEC_ENTRY, {**STATUS_ENTRY, "manager": "imagestream-operator"}],
        },
        "spec": {"tags": [{"name": "v1"}]},
        "status": {
            "tags": [
                {
                    "tag": "v1",
                    "items": [
                        {
                            "created": "2026-11-30T12:00:00Z",
                            "dockerImageReference": "registry.example/team/app@sha256:" + "a" * 64,
                            "image": "sha256:" + "a" * 64,
                            "generation": 1,
                        }
                    ],
                }
            ]
        },
    }


def test_a_workload_is_kept_without_its_status_and_the_status_field_records() -> None:
    body = deployment()
    slim = slim_workload(body)
    assert "status" not in slim
    assert slim["metadata"]["managedFields"] == [SPEC_ENTRY]
    assert {key: value for key, value in slim.items() if key != "metadata"} == {
        key: value for key, value in body.items() if key not in ("metadata", "status")
    }
    assert body["metadata"]["managedFields"] == [SPEC_ENTRY, STATUS_ENTRY]  # the original is left as it was


def test_what_decisions_read_of_a_workload_is_kept() -> None:
    slim = slim_workload(deployment())
    path = ["spec", "template", "spec"]
    kept, whole = slim["metadata"]["managedFields"], deployment()["metadata"]["managedFields"]
    assert image_owners(kept, path, "containers", "web") == ["kubectl"]
    assert image_owners(whole, path, "containers", "web") == ["kubectl"]


def test_a_stream_keeps_its_status_and_its_size_budget() -> None:
    body = stream()
    slim = slim_stream(body)
    assert slim["status"] == body["status"] and slim["spec"] == body["spec"]
    assert [entry["manager"] for entry in slim["metadata"]["managedFields"]] == ["kubectl"]
    assert status_budget(slim) == status_budget(body)  # it never counted the status records


def test_parsed_copies_do_without_managed_fields() -> None:
    body = stream()
    view = without_managed_fields(body)
    assert "managedFields" not in view["metadata"] and view["metadata"]["name"] == "app"
    assert "managedFields" in body["metadata"]


def test_compact_map_keeps_json_and_hands_out_fresh_copies() -> None:
    bodies: CompactMap[tuple[str, str]] = CompactMap()
    bodies[("team", "web")] = deployment()
    first = bodies[("team", "web")]
    first["metadata"]["name"] = "changed"
    assert bodies[("team", "web")] == deployment()
    assert bodies.raw(("team", "web")) == json.dumps(deployment(), separators=(",", ":")).encode()
    assert bodies.size() == len(bodies.raw(("team", "web")) or b"")
    assert len(bodies) == 1 and ("team", "web") in bodies and list(bodies) == [("team", "web")]
    assert bodies.get(("team", "other")) is None and bodies.raw(("team", "other")) is None
    del bodies[("team", "web")]
    assert not bodies


def test_a_replaced_entry_has_new_raw_bytes() -> None:
    bodies: CompactMap[str] = CompactMap()
    bodies["a"] = {"v": 1}
    before = bodies.raw("a")
    bodies["a"] = {"v": 1}
    assert bodies.raw("a") is not before and bodies.raw("a") == before


def test_unicode_survives() -> None:
    bodies: CompactMap[str] = CompactMap()
    bodies["a"] = {"message": "déjà vu ✓"}
    assert bodies["a"] == {"message": "déjà vu ✓"}


def test_the_stream_cache_keeps_specs_parsed_and_parses_whole_streams_when_asked() -> None:
    cache = StreamCache()
    cache.put(("team", "app"), slim_stream(stream()))
    assert cache.parsed[("team", "app")].status is None  # the schedule reads specs only
    assert cache.parsed[("team", "app")].spec.tags[0].name == "v1"
    whole = cache.stream("team", "app")
    assert whole is not None and whole.status is not None and whole.status.tags[0].tag == "v1"
    assert cache.stream("team", "app") is whole  # kept for the next caller (a fan-out asks a thousand times)
    changed = stream()
    changed["status"]["tags"][0]["items"][0]["image"] = "sha256:" + "b" * 64
    cache.put(("team", "app"), changed)
    again = cache.stream("team", "app")
    assert again is not None and again.status is not None and again.status.tags[0].items[0].image.endswith("b" * 64)
    cache.remove(("team", "app"))
    assert cache.stream("team", "app") is None and cache.bodies.get(("team", "app")) is None
