"""The workload kinds that follow image stream tags, in one table.

The operator's watches and writes, the CLI's names for them, the generated RBAC rules and `-o name` output all read
this table, so a kind is added or changed in one place. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class WorkloadKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFULSET = "StatefulSet"
    DAEMONSET = "DaemonSet"
    CRONJOB = "CronJob"
    JOB = "Job"


class TriggerWrite(StrEnum):
    """How a new image reaches a workload of the kind."""

    APPLY = "apply"  # the image fields of its pod template are written (server-side apply: the patch verb)
    RUN = "run"  # a Job is a build definition: a new run is created from it (and old runs pruned)


@dataclass(frozen=True)
class WorkloadType:
    kind: WorkloadKind
    group: str
    version: str
    plural: str
    short_names: tuple[str, ...]
    pod_spec_path: tuple[str, ...]  # where the pod spec sits in an object of the kind
    write: TriggerWrite

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def qualified(self) -> str:
        """`deployment.apps`, as kubectl names the kind in `-o name` output."""
        return f"{self.kind.value.lower()}.{self.group}"


_TEMPLATE_POD_SPEC = ("spec", "template", "spec")

WORKLOAD_TYPES: dict[WorkloadKind, WorkloadType] = {
    workload.kind: workload
    for workload in (
        WorkloadType(
            WorkloadKind.DEPLOYMENT, "apps", "v1", "deployments", ("deploy",), _TEMPLATE_POD_SPEC, TriggerWrite.APPLY
        ),
        WorkloadType(
            WorkloadKind.STATEFULSET, "apps", "v1", "statefulsets", ("sts",), _TEMPLATE_POD_SPEC, TriggerWrite.APPLY
        ),
        WorkloadType(
            WorkloadKind.DAEMONSET, "apps", "v1", "daemonsets", ("ds",), _TEMPLATE_POD_SPEC, TriggerWrite.APPLY
        ),
        WorkloadType(
            WorkloadKind.CRONJOB,
            "batch",
            "v1",
            "cronjobs",
            ("cj",),
            ("spec", "jobTemplate", "spec", "template", "spec"),
            TriggerWrite.APPLY,
        ),
        WorkloadType(WorkloadKind.JOB, "batch", "v1", "jobs", (), _TEMPLATE_POD_SPEC, TriggerWrite.RUN),
    )
}

# (group, version, plural) -> kind, for watch events that name their resource.
KIND_OF_RESOURCE: dict[tuple[str, str, str], WorkloadKind] = {
    (workload.group, workload.version, workload.plural): workload.kind for workload in WORKLOAD_TYPES.values()
}
