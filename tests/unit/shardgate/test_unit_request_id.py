"""Request ids: a client's well-formed id is kept, anything else replaced; the current id goes
out on internal calls only while a request is being served."""

from __future__ import annotations

import re

import pytest

from shardgate import request_id

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("offered", ["abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "x" * 128])
def test_well_formed_ids_are_kept(offered: str) -> None:
    assert request_id.accept(offered) == offered


@pytest.mark.parametrize("offered", [None, "", "x" * 129, "has space", "new\nline", 'q"uote'])
def test_other_ids_are_replaced_by_a_random_one(offered: str | None) -> None:
    replaced = request_id.accept(offered)
    assert GENERATED.fullmatch(replaced) and replaced != offered


def test_outgoing_header_only_while_bound() -> None:
    assert request_id.outgoing_headers() == {}
    token = request_id.bind("req-1")
    try:
        assert request_id.outgoing_headers() == {"X-Request-Id": "req-1"}
        assert request_id.current() == "req-1"
    finally:
        request_id.unbind(token)
    assert request_id.current() is None
