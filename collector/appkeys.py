"""The collector app's typed keys: what ``create_app`` puts in the app for handlers and tasks.

Apart from collector/app.py so that handlers, watches and background work
can read them without importing the composition root (which imports them).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from collector.auth import Authenticator
from collector.gcpolicy import GcPolicy
from collector.kube import Informer
from collector.layers import LayerJudge
from collector.live import LiveRca
from collector.memberbody import MemberListBody
from collector.membership import Membership
from collector.ratelimit import RejectLimiter
from collector.settings import CollectorSettings
from collector.state import CollectorState
from collector.sweeps import SweepBook

SETTINGS = web.AppKey("settings", CollectorSettings)
STATE = web.AppKey("state", CollectorState)
MEMBERSHIP: web.AppKey[Membership] = web.AppKey("membership")
MEMBER_BODY: web.AppKey[MemberListBody] = web.AppKey("member_body")
# The pod-network endpoints' member list (the ones that reported within the TTL, in
# every mode) and its serialised body: pod endpoints plan and probe among themselves.
POD_MEMBERSHIP: web.AppKey[Membership] = web.AppKey("pod_membership")
POD_MEMBER_BODY: web.AppKey[MemberListBody] = web.AppKey("pod_member_body")
INFORMERS: web.AppKey[list[Informer[Any]]] = web.AppKey("informers")
PROCESS = web.AppKey("process", CollectorRegistry)
GC = web.AppKey("gc", GcPolicy)
RCA = web.AppKey("rca", LiveRca)
# Layer findings: a node's pod network (overlay/CNI) failing while its host paths are fine.
LAYERS = web.AppKey("layers", LayerJudge)
AUTH: web.AppKey[Authenticator] = web.AppKey("auth")
REJECT_LIMITER = web.AppKey("reject_limiter", RejectLimiter)
SWEEPS = web.AppKey("sweeps", SweepBook)
