"""What the trigger controller keeps of watched workloads (controller.triggers.TriggerController.observe): the slim
body of those with a trigger annotation, the newest generation of each, and an index re-read only when the
annotation changes."""

from __future__ import annotations

import json
from typing import Any

from imagestreams.controller.reconciler import StreamCache
from imagestreams.controller.triggers import TriggerController
from imagestreams.core.triggers import TRIGGERS_ANNOTATION
from imagestreams.core.workloadkinds import WorkloadKind

KEY = (WorkloadKind.DEPLOYMENT, "ns", "web")


def follow(stream: str) -> str:
    return json.dumps(
        [
            {
                "from": {"kind": "ImageStreamTag", "name": f"{stream}:v1"},
                "fieldPath": 'spec.template.spec.containers[?(@.name=="web")].image',
            }
        ]
    )


def deployment(generation: int, *, image: str = "a:1", stream: str = "app", uid: str = "u1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "namespace": "ns",
            "name": "web",
            "uid": uid,
            "generation": generation,
            "annotations": {TRIGGERS_ANNOTATION: follow(stream)},
        },
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
        "status": {"observedGeneration": generation - 1},
    }


def controller() -> TriggerController:
    return TriggerController(kube=None, streams=StreamCache(), access=None, post_event=None)  # type: ignore[arg-type]


def test_only_the_slim_body_is_kept() -> None:
    triggers = controller()
    assert triggers.observe(WorkloadKind.DEPLOYMENT, "ADDED", deployment(1)) == KEY
    kept = triggers.workloads[KEY]
    assert "status" not in kept and kept["spec"] == deployment(1)["spec"]


def test_an_event_of_an_older_generation_than_known_is_not_taken() -> None:
    """The operator's own write is known from its answer (generation 2); the controller manager's status update of
    generation 1, delivered after it, must not bring the old image back (the next pass would write it again)."""
    triggers = controller()
    triggers.observe(WorkloadKind.DEPLOYMENT, "ADDED", deployment(1))
    triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", deployment(2, image="b:2"))
    assert triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", deployment(1)) is None
    assert triggers.workloads[KEY]["spec"]["template"]["spec"]["containers"][0]["image"] == "b:2"
    assert triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", deployment(2, image="b:2")) is None  # the same one


def test_an_event_of_the_same_spec_and_triggers_asks_for_no_pass_but_is_kept() -> None:
    """A status update, or the watch delivering the operator's own write: nothing to decide again."""
    triggers = controller()
    assert triggers.observe(WorkloadKind.DEPLOYMENT, "ADDED", deployment(1)) == KEY
    status_update = deployment(1)
    status_update["metadata"]["resourceVersion"] = "42"
    assert triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", status_update) is None
    assert triggers.workloads[KEY]["metadata"]["resourceVersion"] == "42"  # kept: resyncs compare versions
    assert triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", deployment(2, image="edited:9")) == KEY  # spec
    assert triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", deployment(2, image="edited:9", stream="b")) == KEY
    assert controller().observe(WorkloadKind.DEPLOYMENT, "ADDED", deployment(2)) == KEY  # a restart decides afresh


def test_a_new_object_of_the_same_name_starts_afresh() -> None:
    triggers = controller()
    triggers.observe(WorkloadKind.DEPLOYMENT, "ADDED", deployment(7))
    assert triggers.observe(WorkloadKind.DEPLOYMENT, "ADDED", deployment(1, uid="u2", image="c:3")) == KEY
    assert triggers.workloads[KEY]["metadata"]["uid"] == "u2"


def test_the_index_follows_the_annotation() -> None:
    triggers = controller()
    triggers.observe(WorkloadKind.DEPLOYMENT, "ADDED", deployment(1))
    assert triggers.workloads_for("ns", "app") == {KEY}
    triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", deployment(1, stream="other"))
    assert (triggers.workloads_for("ns", "app"), triggers.workloads_for("ns", "other")) == (set(), {KEY})
    unannotated = deployment(2)
    del unannotated["metadata"]["annotations"]
    assert triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", unannotated) is None
    assert triggers.workloads_for("ns", "other") == set() and KEY not in triggers.workloads
    assert triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", deployment(3)) == KEY  # annotated again
    assert triggers.workloads_for("ns", "app") == {KEY}


def image(triggers: TriggerController) -> str:
    return str(triggers.workloads[KEY]["spec"]["template"]["spec"]["containers"][0]["image"])


def test_a_write_is_kept_as_answered_unless_a_newer_event_came_meanwhile() -> None:
    """A pass read generation 1 and wrote generation 2: the answer is kept, also after a status update of generation 1
    came meanwhile, but not after an edit (generation 3)."""
    triggers = controller()
    triggers.observe(WorkloadKind.DEPLOYMENT, "ADDED", deployment(1))
    raw = triggers.workloads.raw(KEY)
    assert raw is not None
    triggers.keep_written(KEY, raw, deployment(2, image="b:2"))
    assert image(triggers) == "b:2" and "status" not in triggers.workloads[KEY]

    triggers = controller()
    triggers.observe(WorkloadKind.DEPLOYMENT, "ADDED", deployment(1))
    raw = triggers.workloads.raw(KEY)
    assert raw is not None
    status_update = deployment(1)
    status_update["metadata"]["resourceVersion"] = "42"
    triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", status_update)
    triggers.keep_written(KEY, raw, deployment(2, image="b:2"))
    assert image(triggers) == "b:2"

    triggers = controller()
    triggers.observe(WorkloadKind.DEPLOYMENT, "ADDED", deployment(1))
    raw = triggers.workloads.raw(KEY)
    assert raw is not None
    triggers.observe(WorkloadKind.DEPLOYMENT, "MODIFIED", deployment(3, image="edited:3"))
    triggers.keep_written(KEY, raw, deployment(2, image="b:2"))
    assert image(triggers) == "edited:3"
