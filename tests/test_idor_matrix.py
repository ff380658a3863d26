"""The global IDOR matrix: every route of the real application whose path takes an id, called by
another engineer with engineer A's ids (404 or 403, never 2xx), by every role its declaration
does not allow (403/404) and without a login (401) — and nothing changes on a refused call.

The routes come from the app's router, so a new id-bearing route fails
``test_every_id_route_is_in_the_table`` until it is added to ``ROUTES`` with how to call it.
The per-slice IDOR tests (``test_orders_idor.py``, ``test_onsite_http.py``) run on PostgreSQL
too; this one checks the whole surface on SQLite.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from callcenter.access import ALL
from callcenter.appkeys import SESSIONMAKER
from callcenter.db.models import WorkOrder
from callcenter.db.oversight import AuditEntry
from callcenter.db.records import Appointment, OnsiteRecord, OrderEvent
from callcenter.db.stock import OnsitePartLine, Part, PriceItem, StockLevel, StockMovement
from tests import apphelpers as h
from tests.fullflow import ROLE_USER, Centre, drive_order, seed_centre
from tests.services import free_port

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")

# What a call may need: the ids of one engineer's order (``ids``), the caller's own (``mine``:
# their van, their order …) and the centre's (catalogue ids).
Ids = dict[str, int]
Body = Callable[[Ids, Ids], Any]


@dataclass(frozen=True)
class Case:
    """How to call one route: which of the order's ids fills each path parameter, and the
    body (valid, so that only the object check can refuse it — a 422 would prove nothing)."""

    params: dict[str, str]
    body: Body | None = None
    # A page shell: answers without data (redirect, 403 or the empty page); checked for that.
    page: bool = False


def _appointment(ids: Ids, mine: Ids) -> dict[str, Any]:
    return {"window_start": mine["window_start"], "window_end": mine["window_end"],
            "service_content": "检修", "customer_confirmed": False}


# (method, path) → how to call it. A route with an id in its path that is missing here fails.
ROUTES: dict[tuple[str, str], Case] = {
    ("GET", "/api/customers/{id}"): Case({"id": "customer"}),
    ("GET", "/api/intakes/{id}"): Case({"id": "intake"}),
    ("GET", "/api/orders/{id}"): Case({"id": "order"}),
    ("POST", "/api/orders/{id}/transitions"): Case(
        {"id": "order"}, lambda ids, mine: {"to": "已取消", "reason": "测试越权", "version": ids["version"]}),
    ("POST", "/api/orders/{id}/assign"): Case(
        {"id": "order"}, lambda ids, mine: {"engineer_id": mine["user"], "version": ids["version"]}),
    ("POST", "/api/orders/{id}/accept"): Case({"id": "order"}, lambda ids, mine: {}),
    ("POST", "/api/orders/{id}/contacted"): Case({"id": "order"}, lambda ids, mine: {}),
    ("POST", "/api/orders/{id}/appointments"): Case({"id": "order"}, _appointment),
    ("GET", "/api/appointments/{id}"): Case({"id": "appointment"}),
    ("POST", "/api/appointments/{id}/confirm"): Case({"id": "appointment"}, lambda ids, mine: {}),
    ("POST", "/api/orders/{id}/onsite"): Case({"id": "order"}, lambda ids, mine: {}),
    ("GET", "/api/orders/{id}/onsite"): Case({"id": "order"}),
    ("GET", "/api/onsite/{id}"): Case({"id": "onsite"}),
    ("PATCH", "/api/onsite/{id}"): Case(
        {"id": "onsite"}, lambda ids, mine: {"version": ids["onsite_version"], "root_cause": "越权修改"}),
    ("POST", "/api/onsite/{id}/parts"): Case(
        {"id": "onsite"}, lambda ids, mine: {"part_id": mine["part"], "location_id": mine["van"], "quantity": 1}),
    ("PATCH", "/api/onsite/{id}/parts/{line_id}"): Case(
        {"id": "onsite", "line_id": "line"}, lambda ids, mine: {"quantity": 2}),
    ("DELETE", "/api/onsite/{id}/parts/{line_id}"): Case({"id": "onsite", "line_id": "line"}),
    ("POST", "/api/onsite/{id}/sign"): Case({"id": "onsite"}, lambda ids, mine: {
        "version": ids["onsite_version"], "customer_confirmed": True, "customer_signature": "张三",
        "engineer_signature": "李四"}),
    ("POST", "/api/onsite/{id}/reopen"): Case(
        {"id": "onsite"}, lambda ids, mine: {"version": ids["onsite_version"], "reason": "测试重开"}),
    # The catalogue: not anyone's object, admin-only writes.
    ("PATCH", "/api/parts/{id}"): Case({"id": "part"}, lambda ids, mine: {"name": "改名"}),
    ("PATCH", "/api/price-items/{id}"): Case({"id": "price_item"}, lambda ids, mine: {"name": "改名"}),
    # Not an object id (customers | appliances | orders); admin only, refused before the upload.
    ("POST", "/api/imports/{kind}"): Case({"kind": "import_kind"}),
    # Dispatch profiles (dispatchers and admins only): A's engineer's profile and leave; the
    # leave entry and shop ids need not exist, the role is refused before the lookup.
    ("GET", "/api/dispatch/engineers/{id}"): Case({"id": "engineer"}),
    ("PATCH", "/api/dispatch/engineers/{id}"): Case({"id": "engineer"}, lambda ids, mine: {"region": "南山"}),
    ("PUT", "/api/dispatch/engineers/{id}/skills"): Case({"id": "engineer"}, lambda ids, mine: {"skills": []}),
    ("GET", "/api/dispatch/engineers/{id}/leave"): Case({"id": "engineer"}),
    ("POST", "/api/dispatch/engineers/{id}/leave"): Case({"id": "engineer"}, lambda ids, mine: {
        "start_date": mine["window_start"][:10], "end_date": mine["window_start"][:10]}),
    ("DELETE", "/api/dispatch/leave/{id}"): Case({"id": "leave"}),
    ("GET", "/api/dispatch/shops/{id}"): Case({"id": "shop"}),
    ("PATCH", "/api/dispatch/shops/{id}"): Case({"id": "shop"}, lambda ids, mine: {"name": "改名"}),
    ("GET", "/api/orders/{id}/dispatch/preview"): Case({"id": "order"}),
    ("GET", "/api/orders/{id}/dispatch/decisions"): Case({"id": "order"}),
    ("POST", "/api/orders/{id}/dispatch"): Case(
        {"id": "order"}, lambda ids, mine: {"engineer_id": mine["user"], "reason": "越权改派", "version": ids["version"]}),
    ("POST", "/api/orders/{id}/dispatch/auto"): Case({"id": "order"}),
    ("POST", "/api/orders/{id}/refuse"): Case(
        {"id": "order"}, lambda ids, mine: {"reason": "时间冲突", "version": ids["version"]}),
    ("GET", "/api/orders/{id}/appointment/slots"): Case({"id": "order"}),
    # The survey (SA-CS-005) of A's order; complaint follow-ups (supervisors only: refused by
    # role before the lookup, so the id need not exist).
    ("POST", "/api/orders/{id}/survey"): Case({"id": "order"}, lambda ids, mine: {"answers": dict.fromkeys(
        ("response_speed", "professionalism", "attitude", "resolution", "overall", "recommend"), 2)}),
    ("GET", "/api/orders/{id}/survey"): Case({"id": "order"}),
    ("POST", "/api/complaints/{id}/assign"): Case({"id": "complaint"}, lambda ids, mine: {"owner_id": mine["user"]}),
    ("POST", "/api/complaints/{id}/resolve"): Case({"id": "complaint"}, lambda ids, mine: {"resolution": "越权结案"}),
    # Outbound jobs and the do-not-call list (supervisors and admins only: refused by role).
    ("POST", "/api/outbound/jobs/{id}/cancel"): Case({"id": "outbound_job"}, lambda ids, mine: {"reason": "越权取消"}),
    ("POST", "/api/outbound/jobs/{id}/redial"): Case({"id": "outbound_job"}, lambda ids, mine: {"reason": "越权重拨"}),
    ("DELETE", "/api/outbound/dnc/{id}"): Case({"id": "dnc"}),
    # Pages are shells: the data comes from the JSON API above.
    ("GET", "/orders/{order_id}"): Case({"order_id": "order"}, page=True),
    ("GET", "/m/orders/{order_id}"): Case({"order_id": "order"}, page=True),
}


def _id_routes(app) -> dict[tuple[str, str], Any]:  # type: ignore[no-untyped-def]
    """(method, path) → the declared spec (or None) of every route with a path parameter."""
    out = {}
    for route in app.router.routes():
        if route.resource is None or route.method in ("HEAD", "*"):
            continue
        canonical = route.resource.canonical
        if _PARAM.search(canonical):
            out[(route.method, _PARAM.sub(r"{\1}", canonical))] = getattr(route.handler, "__api__", None)
    return out


def _url(path: str, case: Case, ids: Ids | dict[str, Any]) -> str:
    return _PARAM.sub(lambda m: str(ids[case.params[m.group(1)]]), path)


@dataclass
class World:
    centre: Centre
    a: dict[str, Any]  # engineer A's order and what hangs off it
    b: dict[str, Any]
    mine: dict[str, Ids]  # per username: what a call as them uses as "theirs"


@pytest.fixture
async def world(aiohttp_client, sqlite_only_url):  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(sqlite_only_url, free_port(), sla_interval=0.0))
    centre = await seed_centre(client)
    try:
        a = await drive_order(centre, "zhang", "eng1", complete=False, sign=False)
        b = await drive_order(centre, "li", "eng2", complete=False, sign=False)
        async with client.server.app[SESSIONMAKER]() as s:
            part = await s.scalar(select(Part.id).where(Part.category == "空调").order_by(Part.id).limit(1))
            price = await s.scalar(select(PriceItem.id).order_by(PriceItem.id).limit(1))
            for ids in (a, b):
                ids["version"] = (await s.get(WorkOrder, ids["order"])).version  # type: ignore[union-attr]
                ids["onsite_version"] = (await s.get(OnsiteRecord, ids["onsite"])).version  # type: ignore[union-attr]
                ids.update(part=part, price_item=price, import_kind="customers", leave=1, shop=1, complaint=1,
                           outbound_job=1, dnc=1)
            a["engineer"], b["engineer"] = centre.users["eng1"], centre.users["eng2"]
        window = await _window(centre)
        mine = {u: {"user": centre.users[u], "van": centre.vans.get(u, centre.vans["eng2"]), "part": part, **window}
                for u in centre.users}
        yield World(centre, a, b, mine)
    finally:
        await centre.close()


async def _window(centre: Centre) -> dict[str, str]:
    from tests.fullflow import _tomorrow_at

    return {"window_start": _tomorrow_at(centre, 9), "window_end": _tomorrow_at(centre, 11)}


async def _snapshot(centre: Centre) -> tuple[int, ...]:
    """Everything a successful write would change."""
    async with centre.client.server.app[SESSIONMAKER]() as s:
        counts = []
        for model in (OrderEvent, AuditEntry, StockMovement, Appointment, OnsiteRecord, OnsitePartLine):
            counts.append(await s.scalar(select(func.count()).select_from(model)) or 0)
        counts.append(await s.scalar(select(func.sum(WorkOrder.version))) or 0)
        counts.append(await s.scalar(select(func.sum(OnsiteRecord.version))) or 0)
        counts.append(await s.scalar(select(func.sum(StockLevel.quantity))) or 0)
        counts.append(await s.scalar(select(func.sum(OnsitePartLine.quantity))) or 0)
    return tuple(counts)


async def _request(centre: Centre, username: str | None, method: str, url: str, body: Any) -> tuple[int, str]:
    if username is None:
        r = await centre.client.request(method, url, json=body, allow_redirects=False)
    else:
        session = await centre.as_(username)
        r = await session.request(method, centre.client.make_url(url), json=body, allow_redirects=False)
    return r.status, await r.text()


def _assert_page_shell(status: int, text: str, what: str, secrets: list[str]) -> None:
    assert status in (200, 302, 403), f"{what}: {status}"
    for s in secrets:
        assert s not in text, f"{what}: the page shell carries {s!r}"


async def _order_secrets(centre: Centre, ids: Ids) -> list[str]:
    async with centre.client.server.app[SESSIONMAKER]() as s:
        order = await s.get(WorkOrder, ids["order"])
        record = await s.get(OnsiteRecord, ids["onsite"])
    assert order is not None and record is not None
    return [order.number, record.number, order.problem]


async def test_every_id_route_is_in_the_table(world: World) -> None:
    routes = _id_routes(world.centre.client.server.app)
    missing = sorted(set(routes) - set(ROUTES))
    assert not missing, (f"id-bearing routes not in the IDOR matrix: {missing} — add each to "
                         "ROUTES in tests/test_idor_matrix.py with how to call it")
    gone = sorted(set(ROUTES) - set(routes))
    assert not gone, f"ROUTES lists routes the app no longer has: {gone}"


async def test_another_engineer_gets_404_or_403_and_nothing_changes(world: World) -> None:
    centre, a = world.centre, world.a
    secrets = await _order_secrets(centre, a)
    before = await _snapshot(centre)
    for (method, path), case in ROUTES.items():
        url = _url(path, case, a)
        body = case.body(a, world.mine["eng2"]) if case.body else None
        status, text = await _request(centre, "eng2", method, url, body)
        if case.page:
            _assert_page_shell(status, text, f"eng2 {method} {url}", secrets)
            continue
        assert status in (403, 404), f"eng2 {method} {url} with eng1's ids: {status} {text[:300]}"
        for s in secrets:
            assert s not in text, f"eng2 {method} {url}: the refusal names {s!r}"
    # A line of A's record under B's own record id is no line of B's.
    for method, body in (("PATCH", {"quantity": 2}), ("DELETE", None)):
        url = f"/api/onsite/{world.b['onsite']}/parts/{a['line']}"
        status, text = await _request(centre, "eng2", method, url, body)
        assert status in (403, 404), f"eng2 {method} {url}: {status} {text[:300]}"
    assert await _snapshot(centre) == before, "a refused call changed something"


async def test_roles_not_allowed_and_anonymous_are_refused(world: World) -> None:
    centre, a = world.centre, world.a
    specs = _id_routes(centre.client.server.app)
    secrets = await _order_secrets(centre, a)
    before = await _snapshot(centre)
    for (method, path), case in ROUTES.items():
        url = _url(path, case, a)
        spec = specs[(method, path)]
        status, text = await _request(centre, None, method, url, None)
        if case.page:
            _assert_page_shell(status, text, f"anonymous {method} {url}", secrets)
            continue
        assert status == 401, f"anonymous {method} {url}: {status}"
        assert spec is not None, f"{method} {path} is not declared with @endpoint"
        for role in ALL:
            if not spec.roles or role in spec.roles:
                continue
            username = ROLE_USER[role]
            body = case.body(a, world.mine[username]) if case.body else None
            status, text = await _request(centre, username, method, url, body)
            assert status in (403, 404), f"{role} {method} {url}: {status} {text[:300]}"
    assert await _snapshot(centre) == before, "a refused call changed something"


async def test_ids_inside_requests_are_checked_too(world: World) -> None:
    centre, a, b = world.centre, world.a, world.b
    before = await _snapshot(centre)
    # Issuing a part to B's record from A's van.
    status, text = await _request(centre, "eng2", "POST", f"/api/onsite/{b['onsite']}/parts",
                                  {"part_id": world.mine["eng2"]["part"], "location_id": centre.vans["eng1"],
                                   "quantity": 1})
    assert 400 <= status < 500, f"a part from another engineer's van: {status} {text[:300]}"
    # The audited reveal of A's records.
    for entity, key in (("order", "order"), ("intake", "intake"), ("appointment", "appointment"),
                        ("customer", "customer")):
        for field in ("name", "phone", "address"):
            status, text = await _request(centre, "eng2", "POST", "/api/reveal",
                                          {"entity": entity, "id": a[key], "field": field, "reason": "越权查看"})
            assert status in (403, 404, 422), f"eng2 reveals {entity} {field} of eng1's: {status} {text[:300]}"
            assert "13800138000" not in text
    # Search: another engineer's orders are not found, whatever the filter says.
    number_a = (await _order_secrets(centre, a))[0]
    for query in (f"?engineer={centre.users['eng1']}", f"?number={number_a}", ""):
        status, text = await _request(centre, "eng2", "GET", "/api/orders" + query, None)
        assert status in (200, 422), f"eng2 GET /api/orders{query}: {status} {text[:300]}"
        if status == 200:
            assert number_a not in {o["number"] for o in json.loads(text)["items"]}, query
    # An intake for one customer with another customer's phone or appliance.
    for field in ("phone_id", "appliance_id"):
        body = {"customer_id": b["customer"], "phone_id": None, "appliance_id": None, "request_type": "维修",
                "problem": "越权", "read_back": True}
        prefill_a = await centre.call("agent8001", "GET", f"/api/intakes/prefill?customer_id={a['customer']}")
        prefill_b = await centre.call("agent8001", "GET", f"/api/intakes/prefill?customer_id={b['customer']}")
        body["phone_id"] = prefill_b["phones"][0]["phone_id"]
        body["appliance_id"] = prefill_b["appliances"][0]["id"]
        body[field] = (prefill_a["phones"][0]["phone_id"] if field == "phone_id"
                       else prefill_a["appliances"][0]["id"])
        status, text = await _request(centre, "agent8001", "POST", "/api/intakes", body)
        assert status in (403, 404, 422), f"intake with another customer's {field}: {status} {text[:300]}"
    assert await _snapshot(centre) == before, "a refused call changed something"


async def test_the_owner_reaches_every_route_the_matrix_refuses(world: World) -> None:
    """The control: with their own ids an engineer gets past the object check (so the 404s above
    are about ownership, not a wrong URL or body)."""
    centre, b = world.centre, world.b
    specs = _id_routes(centre.client.server.app)
    for (method, path), case in ROUTES.items():
        spec = specs[(method, path)]
        if case.page or spec is None or (spec.roles and "engineer" not in spec.roles):
            continue
        url = _url(path, case, b)
        body = case.body(b, world.mine["eng2"]) if case.body else None
        status, text = await _request(centre, "eng2", method, url, body)
        assert status not in (401, 404, 405, 422), f"eng2 on their own {method} {url}: {status} {text[:300]}"
        if status == 403:
            # The role may not take this step (e.g. an engineer cannot cancel): not an object question.
            assert '"forbidden"' in text
