"""The one table of workload kinds feeds the operator's watches, its writes, the CLI and the RBAC rules."""

from __future__ import annotations

from imagestreams.api.rbac import OPERATOR_RULES
from imagestreams.cli.output import QUALIFIED
from imagestreams.cli.workloads import SUPPORTED, parse_workload
from imagestreams.core.triggers import POD_SPEC_PATHS
from imagestreams.core.workloadkinds import KIND_OF_RESOURCE, WORKLOAD_TYPES, TriggerWrite, WorkloadKind
from imagestreams.kube.workloads import RESOURCE_MODELS, image_apply_body


def test_every_kind_has_an_entry_a_model_and_a_pod_spec_path() -> None:
    assert set(WORKLOAD_TYPES) == set(WorkloadKind)
    assert set(RESOURCE_MODELS) == set(WorkloadKind)
    assert set(POD_SPEC_PATHS) == set(WorkloadKind)
    for kind, model in RESOURCE_MODELS.items():
        info = model._api_info  # lightkube's own record of the resource
        assert (info.resource.group, info.resource.version, info.plural) == (
            WORKLOAD_TYPES[kind].group,
            WORKLOAD_TYPES[kind].version,
            WORKLOAD_TYPES[kind].plural,
        )


def test_the_operator_watches_every_kind() -> None:
    assert sorted(KIND_OF_RESOURCE.values()) == sorted(WorkloadKind)


def test_rbac_grants_what_each_kind_is_written_with() -> None:
    for workload in WORKLOAD_TYPES.values():
        verbs = {
            verb
            for rule in OPERATOR_RULES
            if workload.group in rule["apiGroups"] and workload.plural in rule["resources"]
            for verb in rule["verbs"]
        }
        written = {"patch"} if workload.write is TriggerWrite.APPLY else {"create", "delete"}
        assert verbs == {"list", "watch"} | written, workload.kind


def test_the_cli_knows_every_kind_by_each_of_its_names() -> None:
    for workload in WORKLOAD_TYPES.values():
        for name in (workload.kind.value.lower(), workload.plural, *workload.short_names):
            for spelled in (name, f"{name}.{workload.group}"):
                assert parse_workload(f"{spelled}/x", "set triggers").kind is workload.kind
        assert workload.plural in SUPPORTED
        assert QUALIFIED[workload.kind.value] == f"{workload.kind.value.lower()}.{workload.group}"


def test_an_apply_body_names_the_kinds_api_version() -> None:
    body = image_apply_body(WorkloadKind.CRONJOB, "ns", "nightly", {("containers", "app"): "img@sha256:" + "a" * 64})
    assert body["apiVersion"] == "batch/v1"
    template = body["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert template["containers"] == [{"name": "app", "image": "img@sha256:" + "a" * 64}]
