"""The report response's member list as JSON bytes, serialised once per list."""

from __future__ import annotations

import json

from netmesh.wire import MemberList


class MemberListBody:
    """The report response as JSON bytes, serialised once per member list, not per report.

    Membership hands out the same MemberList object until the members change,
    so identity is the cache key. (At 5,000 members, serialising per report
    was ~14 ms of a ~15 ms report handler.) An agent that already plans with
    the current epoch gets the short "unchanged" answer instead of ~320 KB.
    """

    def __init__(self) -> None:
        self._list: MemberList | None = None
        self._body = b""
        self._unchanged = b""

    def body(
        self, members: MemberList, agent_epoch: int | None = None, sweeps: bytes | None = None
    ) -> bytes:
        """The answer; ``sweeps`` (a JSON list, collector/sweeps.py) is spliced in when given."""
        if members is not self._list:
            self._body = json.dumps(members.to_json(), separators=(",", ":")).encode()
            self._unchanged = json.dumps({"epoch": members.epoch, "unchanged": True}).encode()
            self._list = members
        body = self._unchanged if agent_epoch == members.epoch else self._body
        if sweeps is None:
            return body
        return body[:-1] + b',"sweeps":' + sweeps + b"}"
