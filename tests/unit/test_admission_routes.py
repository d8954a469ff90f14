"""A stream webhook whose handler fails refuses the write (its failure policy is Fail); lookup lets it through."""

from __future__ import annotations

from imagestreams.admission.review import Request, Response, UserInfo
from imagestreams.admission.routes import refusing_on_error

REQUEST = Request(
    uid="1", group="image.openshift.io", resource="imagestreams", subresource="", kind="ImageStream",
    namespace="ns", name="app", operation="CREATE", user=UserInfo(), object={}, old_object=None, dry_run=False,
)  # fmt: skip


def test_a_failing_stream_handler_refuses_the_write() -> None:
    def broken(request: Request) -> Response:
        raise KeyError("spec")

    response = refusing_on_error(broken)(REQUEST)
    assert not response.allowed
    assert response.code == 500
    assert "could not check this write (KeyError)" in response.message


def test_a_working_stream_handler_answers_as_itself() -> None:
    answer = Response(patch=({"op": "add", "path": "/x", "value": 1},))
    assert refusing_on_error(lambda request: answer)(REQUEST) is answer
