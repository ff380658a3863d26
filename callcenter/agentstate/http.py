"""The agent's own state: ``GET /api/agent-state``, ``POST /api/agent-state/queues`` (log in to
or out of queues), ``POST /api/agent-state/pause`` (with a configured reason),
``POST /api/agent-state/resume``.

Any instance answers: the state is read from the shared snapshot; the actions go to the AMI
leader (``CommandRelay``) which sends ``QueueAdd``/``QueueRemove``/``QueuePause`` — every value
checked against a strict pattern first (``rules.py``), so nothing is sent for bad input.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from callcenter.agentstate.rules import check_queue, check_reason
from callcenter.agentstate.store import NoLeader
from callcenter.appkeys import AGENT_RELAY, AGENT_STATE, AGENTS, LIVE_STORE
from callcenter.auth.identity import CurrentUser
from callcenter.errors import DomainError
from callcenter.web.api import ApiModel, endpoint, json_response

routes = web.RouteTableDef()
ROLES = ("agent", "supervisor", "admin")


class AgentQueuesIn(ApiModel):
    action: Literal["login", "logout"]
    queues: list[str] = Field(min_length=1, max_length=20, description="queue names")


class AgentPauseIn(ApiModel):
    reason: str = Field(description="one of the configured pause reasons")


class AgentMembershipOut(BaseModel):
    queue: str
    paused: bool
    reason: str
    dynamic: bool


class AgentRowOut(BaseModel):
    interface: str
    member: str
    user_id: int | None
    name: str
    state: str = Field(description="talking | ringing | paused | unavailable | available")
    reason: str
    since_ms: int | None
    queues: list[AgentMembershipOut]
    calls_today: int
    talk_s: int


class AgentStateOut(BaseModel):
    reasons: list[str]
    wrapup_s: int
    queues: list[str] = Field(description="the queues Asterisk reports")
    agent: AgentRowOut | None = Field(description="this user's state; null when in no queue")
    at_ms: int | None


class AgentActionOut(BaseModel):
    agent: AgentRowOut | None


def _latest(request: web.Request) -> dict[str, Any] | None:
    text = request.app[LIVE_STORE].latest()
    return json.loads(text) if text else None


@routes.get("/api/agent-state")
@endpoint("坐席状态 The user's queue memberships and pause state", roles=ROLES,
          response=AgentStateOut, tag="agent-state")
async def get_state(request: web.Request, user: CurrentUser) -> web.Response:
    svc = request.app[AGENT_STATE]
    snap = _latest(request) or {}
    # Resolved here, with this instance's directory: a binding made after the snapshot counts.
    directory = request.app[AGENTS]
    mine = [a for a in snap.get("agents", []) if directory.resolve(a["member"], a["interface"]) == user.id]
    return json_response({
        "reasons": list(svc.reasons), "wrapup_s": svc.wrapup_s,
        "queues": [q["name"] for q in snap.get("queues", [])],
        "agent": ({**mine[0], "user_id": user.id, "name": directory.names.get(user.id) or mine[0]["name"]}
                  if mine else None),
        "at_ms": snap.get("at_ms"),
    })


async def _run(request: web.Request, command: dict[str, Any]) -> web.Response:
    try:
        answer = await request.app[AGENT_RELAY].call(command)
    except (NoLeader, TimeoutError):
        raise DomainError("电话系统暂时不可用，请稍后再试", code="ami_unavailable", status=503) from None
    if not answer.get("ok"):
        err = answer.get("error") or {}
        raise DomainError(err.get("message", "failed"), code=err.get("error", "failed"),
                          status=int(answer.get("status", 400)), **(err.get("details") or {}))
    return json_response({"agent": answer.get("agent")})


@routes.post("/api/agent-state/queues")
@endpoint("登录/退出队列 Log in to or out of queues (QueueAdd / QueueRemove)", roles=ROLES,
          body=AgentQueuesIn, response=AgentActionOut, tag="agent-state",
          description="409 no extension bound, not in those queues, or a static member; 503 while "
                      "the telephony link is down (a logout is recorded and kept then).")
async def queues(request: web.Request, user: CurrentUser, body: AgentQueuesIn) -> web.Response:
    names = [check_queue(q, "queues") for q in body.queues]
    return await _run(request, {"op": body.action, "user_id": user.id, "queues": names})


@routes.post("/api/agent-state/pause")
@endpoint("暂停 Pause in every queue with a reason (QueuePause)", roles=ROLES, body=AgentPauseIn,
          response=AgentActionOut, tag="agent-state",
          description="409 when logged in to no queue. While the telephony link is down the pause is "
                      "recorded and restored with its reason when Asterisk is back.")
async def pause(request: web.Request, user: CurrentUser, body: AgentPauseIn) -> web.Response:
    reason = check_reason(body.reason, request.app[AGENT_STATE].reasons)
    return await _run(request, {"op": "pause", "user_id": user.id, "reason": reason})


@routes.post("/api/agent-state/resume")
@endpoint("恢复 Resume (QueuePause Paused: false)", roles=ROLES, response=AgentActionOut,
          tag="agent-state", description="409 when logged in to no queue.")
async def resume(request: web.Request, user: CurrentUser) -> web.Response:
    return await _run(request, {"op": "resume", "user_id": user.id})
