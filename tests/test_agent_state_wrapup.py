"""The automatic wrap-up (话后处理) on the leader, against a stand-in connector that answers like
Asterisk: a pause after each call, its end after CALLCENTER_WRAPUP_SECONDS, an agent's own
pause left alone, and a wrap-up started by a previous leader ended on time after a takeover."""

from __future__ import annotations

import datetime as dt
import time

from callcenter.agentstate.rules import DEFAULT_REASONS, WRAPUP_REASON
from callcenter.agentstate.services import AgentStateService
from callcenter.agentstate.store import LocalLiveStore
from callcenter.calls.agents import AgentDirectory
from callcenter.wallboard.metrics import Thresholds
from tests.waiting import wait_for

IFACE = "PJSIP/8001"


def member_event(event: str, paused: bool, reason: str = "", last_pause: float = 0) -> dict[str, str]:
    return {"Event": event, "Queue": "aftersales", "MemberName": "8001", "Interface": IFACE,
            "Membership": "static", "Status": "1", "InCall": "0", "Paused": "1" if paused else "0",
            "PausedReason": reason, "LastPause": str(int(last_pause)), "LoginTime": "0"}


class FakeConnector:
    """Answers QueuePause as Asterisk does: Success, then QueueMemberPause on the read path."""

    state = "connected"
    connected = True

    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []
        self.service: AgentStateService | None = None

    async def send_action(self, action: str, headers: dict[str, object], timeout: float = 10) -> dict:
        self.sent.append({"Action": action, **headers})
        if action == "QueuePause" and self.service is not None:
            paused = headers["Paused"] == "true"
            self.service.on_ami_event(member_event("QueueMemberPause", paused, str(headers.get("Reason", "")) if paused else "",
                                                   time.time()))
        return {"Response": "Success"}


class NoMail:
    async def post(self, user_id: int, message: dict) -> dict:
        return message


def service(wrapup_s: int) -> tuple[AgentStateService, FakeConnector]:
    svc = AgentStateService(agents=AgentDirectory(None), store=LocalLiveStore(), mailbox=NoMail(),  # type: ignore[arg-type]
                            engine=None, tz=dt.UTC, reasons=DEFAULT_REASONS, wrapup_s=wrapup_s,  # type: ignore[arg-type]
                            interface_template="PJSIP/{extension}", thresholds=Thresholds())
    conn = FakeConnector()
    conn.service = svc
    svc.connector = conn  # type: ignore[assignment]
    return svc, conn


def pauses(conn: FakeConnector) -> list[tuple[object, object]]:
    return [(a["Paused"], a.get("Reason")) for a in conn.sent if a["Action"] == "QueuePause"]


async def test_wrap_up_after_each_call() -> None:
    svc, conn = service(wrapup_s=1)
    svc.on_ami_event(member_event("QueueMemberStatus", False))
    svc.on_ami_event({"Event": "AgentComplete", "Queue": "aftersales", "Interface": IFACE, "MemberName": "8001",
                      "Linkedid": "L1", "HoldTime": "3", "TalkTime": "40"})
    await wait_for(lambda: pauses(conn) == [("true", WRAPUP_REASON)], 2)
    assert svc.agent_row(IFACE)["state"] == "paused" and svc.agent_row(IFACE)["reason"] == WRAPUP_REASON
    await wait_for(lambda: pauses(conn) == [("true", WRAPUP_REASON), ("false", None)], 3)
    assert svc.agent_row(IFACE)["state"] == "available"
    await svc.close()


async def test_an_agents_own_pause_is_not_overridden() -> None:
    svc, conn = service(wrapup_s=1)
    svc.on_ami_event(member_event("QueueMemberStatus", True, "午餐", time.time()))
    svc.on_ami_event({"Event": "AgentComplete", "Queue": "aftersales", "Interface": IFACE, "MemberName": "8001",
                      "Linkedid": "L1", "HoldTime": "3", "TalkTime": "40"})
    svc._resume_wrapups(time.time())
    assert pauses(conn) == []
    await svc.close()


async def test_a_wrap_up_started_by_the_previous_leader_ends_on_time() -> None:
    svc, conn = service(wrapup_s=2)
    started = time.time() - 1.5
    svc.on_ami_event(member_event("QueueMemberStatus", True, WRAPUP_REASON, started))
    t0 = time.monotonic()
    svc._resume_wrapups(time.time())
    await wait_for(lambda: pauses(conn) == [("false", None)], 3)
    assert time.monotonic() - t0 < 1.5  # ~0.5 s left of the 2 s, not a fresh 2 s
    await svc.close()
