"""The length a direct upload's early copies declare: the body's, or none where the header's
length is not the body's (a Content-Encoding the node decodes, a form's file) or the body is
empty."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from storage_node.direct import _plain_length


@pytest.mark.parametrize(
    ("encodings", "declared", "expected"),
    [
        ([], 1000, 1000),
        (["gzip"], 1000, None),
        ([], 0, None),
        ([], None, None),  # a form's file: the header is the whole form's length
    ],
)
def test_plain_length(encodings: list[str], declared: int | None, expected: int | None) -> None:
    headers = CIMultiDict(
        [("Content-Encoding", encoding) for encoding in encodings] + [("Content-Length", "1000")]
    )
    if declared is not None:
        headers["Content-Length"] = str(declared)
    request = make_mocked_request("PUT", "/x", headers=headers)
    assert _plain_length(request, declared) == expected
