"""Link header pagination as registries send it."""

from __future__ import annotations

import pytest

from imagestreams.registry.links import parse_link_next


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('</v2/app/tags/list?last=b&n=2>; rel="next"', "/v2/app/tags/list?last=b&n=2"),
        ("</v2/app/tags/list?n=2&last=b>; rel=next", "/v2/app/tags/list?n=2&last=b"),
        ('<https://r.example/v2/x/tags/list?last=c>; rel="next"', "https://r.example/v2/x/tags/list?last=c"),
        ('</prev>; rel="prev", </next>; rel="next"', "/next"),
        ('</both>; rel="prev next"', "/both"),
        ('</a>; title="x, y"; rel="next"', "/a"),
        ('</a>; REL="Next"', "/a"),
        ('</a>; rel="prev"', None),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)
def test_next_link(header: str | None, expected: str | None) -> None:
    assert parse_link_next(header) == expected
