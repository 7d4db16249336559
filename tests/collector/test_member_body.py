"""The report response's member list is serialised once per list and follows changes."""

from __future__ import annotations

import json

from agent.report import Member, MemberList, parse_member_list
from collector.app import MemberListBody

A = Member(name="a", address="10.0.0.1")
B = Member(name="b", address="10.0.0.2", iperf3_port=5301)


def test_body_is_cached_per_list_and_follows_changes() -> None:
    cache = MemberListBody()
    one = MemberList(epoch=1, members=(A,))
    first = cache.body(one)
    assert cache.body(one) is first  # not serialised again
    assert parse_member_list(json.loads(first)) == one
    two = MemberList(epoch=2, members=(A, B))
    assert parse_member_list(json.loads(cache.body(two))) == two
