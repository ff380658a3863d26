"""The published snapshot of 1,000 agents costs the changes, not the 1,000 rows: only the rows of
agents that changed are built again, and the text is byte for byte the snapshot's JSON."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from callcenter.agentstate.rules import DEFAULT_REASONS
from callcenter.agentstate.services import AgentStateService
from callcenter.agentstate.store import LocalLiveStore
from callcenter.wallboard.metrics import Thresholds

NOW = 1_790_000_000.0


class Directory:
    """Users 1…n behind members 8001…; ``refresh`` renames them (as a database refresh would)."""

    def __init__(self) -> None:
        self.generation = 1
        self.names: dict[int, str] = {}

    def resolve(self, member: str, interface: str = "") -> int | None:
        return int(member) - 8000 if member.isdigit() else None

    def refresh(self, names: dict[int, str]) -> None:
        self.names = dict(names)
        self.generation += 1


class Mail:
    def __init__(self) -> None:
        self.posted: list[tuple[int, dict[str, Any]]] = []

    async def post(self, user_id: int, message: dict[str, Any]) -> dict[str, Any]:
        self.posted.append((user_id, message))
        return message


def member(event: str, ext: int, *, paused: bool = False, reason: str = "") -> dict[str, str]:
    return {"Event": event, "Queue": "aftersales", "MemberName": str(ext), "Interface": f"PJSIP/{ext}",
            "Membership": "dynamic", "Status": "1", "InCall": "0", "Paused": "1" if paused else "0",
            "PausedReason": reason, "LastPause": "0", "LoginTime": "0"}


def service(agents: int) -> tuple[AgentStateService, LocalLiveStore, Mail, Directory]:
    store, mail, directory = LocalLiveStore(), Mail(), Directory()
    svc = AgentStateService(agents=directory, store=store, mailbox=mail, engine=None,  # type: ignore[arg-type]
                            tz=dt.UTC, reasons=DEFAULT_REASONS, wrapup_s=0,
                            interface_template="PJSIP/{extension}", thresholds=Thresholds(),
                            clock=lambda: NOW)
    for i in range(agents):
        svc.book.apply(member("QueueMemberAdded", 8001 + i), NOW)
    return svc, store, mail, directory


def built_rows(svc: AgentStateService) -> list[str]:
    """Wrap the row builder to list the interfaces whose rows are built from now on."""
    built: list[str] = []
    real = svc._build_row

    def counting(interface: str):  # type: ignore[no-untyped-def]
        built.append(interface)
        return real(interface)

    svc._build_row = counting  # type: ignore[method-assign]
    return built


async def test_a_change_rebuilds_only_that_agents_row_and_the_text_is_the_snapshots_json():
    svc, store, mail, _ = service(1000)
    first = svc.publish_now()
    await asyncio.sleep(0)
    assert store.latest() == json.dumps(first, ensure_ascii=False, separators=(",", ":"))
    assert len(first["agents"]) == 1000

    built = built_rows(svc)
    svc.book.apply(member("QueueMemberPause", 8500, paused=True, reason="午餐"), NOW + 1)
    svc.book.apply({"Event": "QueueCallerJoin", "Queue": "aftersales", "Uniqueid": "c1", "Linkedid": "c1"}, NOW + 1)
    svc.book.apply({"Event": "AgentConnect", "Queue": "aftersales", "Interface": "PJSIP/8007",
                    "MemberName": "8007", "Linkedid": "c1", "HoldTime": "3"}, NOW + 2)
    snap = svc.publish_now()
    await asyncio.sleep(0)
    assert sorted(built) == ["PJSIP/8007", "PJSIP/8500"]
    assert store.latest() == json.dumps(snap, ensure_ascii=False, separators=(",", ":"))
    rows = {r["interface"]: r for r in snap["agents"]}
    assert rows["PJSIP/8500"]["state"] == "paused" and rows["PJSIP/8500"]["reason"] == "午餐"
    assert rows["PJSIP/8007"]["state"] == "talking"
    # The pause is what the desk shows: that agent, and only that agent, is told.
    await asyncio.sleep(0)
    assert [(uid, m["agent"]["interface"]) for uid, m in mail.posted] == [(500, "PJSIP/8500")]


async def test_agents_leaving_and_joining_and_a_directory_refresh_show_in_the_next_snapshot():
    svc, store, mail, directory = service(5)
    svc.publish_now()
    built = built_rows(svc)
    svc.book.apply(member("QueueMemberRemoved", 8003), NOW + 1)
    svc.book.apply(member("QueueMemberAdded", 8009), NOW + 1)
    snap = svc.publish_now()
    await asyncio.sleep(0)
    assert [r["interface"] for r in snap["agents"]] == ["PJSIP/8001", "PJSIP/8002", "PJSIP/8004",
                                                         "PJSIP/8005", "PJSIP/8009"]
    assert built == ["PJSIP/8009"]
    assert store.latest() == json.dumps(snap, ensure_ascii=False, separators=(",", ":"))
    # Out of every queue: the desk is told so (agent: null).
    assert (3, {"type": "agent.state", "agent": None}) in mail.posted

    directory.refresh({1: "张三"})
    snap = svc.publish_now()
    assert snap["agents"][0]["name"] == "张三" and len(built) == 1 + 5
    assert svc.publish_now()["agents"] == snap["agents"] and len(built) == 6  # nothing changed
