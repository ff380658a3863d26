"""/api/openapi.json and /api/docs on the real application: every declared endpoint is described,
the document is valid OpenAPI 3.1, and no new JSON route slips in undeclared."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from callcenter.appkeys import OPENAPI
from callcenter.crypto import new_key_spec
from callcenter.web.api import EndpointSpec
from callcenter.web.openapi_http import field_rows, notes, type_label
from tests import apphelpers as h
from tests.services import free_port

# Routes under /api/ that are NOT declared with @endpoint, on purpose. A new route must be
# declared (so it is validated and documented) or added here with the reason.
UNDECLARED = {
    # Public descriptions of the API itself.
    ("GET", "/api/openapi.json"), ("GET", "/api/docs"),
}
_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


async def _client(aiohttp_client, sqlite_only_url):  # type: ignore[no-untyped-def]
    settings = h.settings_for(sqlite_only_url, free_port(), data_keys=new_key_spec("k1"),
                              index_keys=new_key_spec("i1"))
    return await h.start(aiohttp_client, settings)


def _api_routes(app):  # type: ignore[no-untyped-def]
    """(method, path, declared spec or None) for every route under /api/ (HEAD left out)."""
    for route in app.router.routes():
        if route.resource is None or route.method in ("HEAD", "*"):
            continue
        path = _PARAM.sub(r"{\1}", route.resource.canonical)
        if path.startswith("/api/"):
            yield route.method, path, getattr(route.handler, "__api__", None)


async def test_every_declared_endpoint_is_in_a_valid_openapi_31_document(aiohttp_client, sqlite_only_url) -> None:  # type: ignore[no-untyped-def]
    client = await _client(aiohttp_client, sqlite_only_url)
    r = await client.get("/api/openapi.json")
    assert r.status == 200 and r.content_type == "application/json"
    spec = await r.json()
    validate(spec)  # raises on any structural error
    assert spec["openapi"].startswith("3.1")

    declared = [(m, p, s) for m, p, s in _api_routes(client.server.app) if s is not None]
    assert ("GET", "/api/orders") in {(m, p) for m, p, _ in declared}
    for method, path, endpoint in declared:
        assert isinstance(endpoint, EndpointSpec)
        op = spec["paths"].get(path, {}).get(method.lower())
        assert op is not None, f"{method} {path} is declared but not in openapi.json"
        assert op["summary"] == endpoint.summary
        assert op.get("x-roles", []) == list(endpoint.roles)
        assert str(endpoint.status) in op["responses"] and "401" in op["responses"]
        takes_input = bool(op.get("parameters")) or "requestBody" in op
        if takes_input:
            assert "422" in op["responses"], f"{method} {path}: 422 not documented"
        if endpoint.roles:
            assert "403" in op["responses"]
    # ... and nothing else is in it.
    described = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert described == {(m, p) for m, p, _ in declared}


async def test_no_undeclared_json_routes(aiohttp_client, sqlite_only_url) -> None:  # type: ignore[no-untyped-def]
    client = await _client(aiohttp_client, sqlite_only_url)
    undeclared = {(m, p) for m, p, s in _api_routes(client.server.app) if s is None}
    assert undeclared - UNDECLARED == set(), "declare these with @endpoint (callcenter.web.api)"


async def test_search_endpoint_is_described_with_its_parameters(aiohttp_client, sqlite_only_url) -> None:  # type: ignore[no-untyped-def]
    client = await _client(aiohttp_client, sqlite_only_url)
    spec = await (await client.get("/api/openapi.json")).json()
    op = spec["paths"]["/api/orders"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert set(params) == {"phone", "name", "number", "model", "serial", "engineer", "status",
                           "urgency", "from", "to", "page", "page_size"}
    assert all(p["in"] == "query" and not p["required"] for p in params.values())
    assert "engineer" in op["x-roles"] and "agent" in op["x-roles"]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/OrderSearchPage"}
    assert "OrderSummary" in spec["components"]["schemas"]


async def test_the_document_is_built_once(aiohttp_client, sqlite_only_url) -> None:  # type: ignore[no-untyped-def]
    client = await _client(aiohttp_client, sqlite_only_url)
    first = await (await client.get("/api/openapi.json")).read()
    spec = client.server.app[OPENAPI]["spec"]
    second = await (await client.get("/api/openapi.json")).read()
    assert first == second and client.server.app[OPENAPI]["spec"] is spec


async def test_docs_page_lists_every_endpoint_without_external_resources(aiohttp_client, sqlite_only_url) -> None:  # type: ignore[no-untyped-def]
    client = await _client(aiohttp_client, sqlite_only_url)
    spec = await (await client.get("/api/openapi.json")).json()
    r = await client.get("/api/docs")
    assert r.status == 200 and r.content_type == "text/html"
    html = await r.text()
    assert '<html lang="zh-CN">' in html and "接口文档" in html
    shown = set(re.findall(r'data-method="(\w+)" data-path="([^"]+)"', html))
    assert shown == {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    # The search's parameters, roles, enum values and response fields are on the page.
    for text in ("page_size", "可选值: 待处理", "items[].customer.phone", "dispatcher", "422"):
        assert text in html, text
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html), "no external resources"


def test_field_rows_flatten_nested_models_and_stop_at_cycles() -> None:
    components = {
        "Page": {"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}},
            "next": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}}},
        "Row": {"type": "object", "properties": {
            "who": {"$ref": "#/components/schemas/Who"},
            "parent": {"anyOf": [{"$ref": "#/components/schemas/Row"}, {"type": "null"}]}}},
        "Who": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8,
                                                          "description": "脱敏姓名"}}},
    }
    rows = field_rows({"$ref": "#/components/schemas/Page"}, components)
    assert [(r["name"], r["type"], r["required"]) for r in rows] == [
        ("items", "array<Row>", True), ("items[].who", "Who", False), ("items[].who.name", "string", False),
        ("items[].parent", "Row | null", False), ("next", "integer | null", False)]
    assert rows[2]["notes"] == "脱敏姓名；最长 8"
    assert type_label({"type": "string", "format": "date"}, {}) == "string (date)"
    assert notes({"type": "array", "items": {"enum": ["a", "b"]}}) == "可选值: a / b"


async def test_telephony_endpoints_are_declared_and_login_is_public(aiohttp_client, sqlite_only_url) -> None:  # type: ignore[no-untyped-def]
    client = await _client(aiohttp_client, sqlite_only_url)
    spec = await (await client.get("/api/openapi.json")).json()
    paths = spec["paths"]
    login = paths["/api/session"]["post"]
    assert "x-roles" not in login and "wrong username" in login["responses"]["401"]["description"]
    assert login["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/LoginIn"}
    assert "delete" in paths["/api/session"] and "get" in paths["/api/me"]
    assert paths["/api/customers"]["post"]["x-roles"] == ["admin", "agent"]
    assert {p["name"] for p in paths["/api/customers"]["get"]["parameters"]} == {"phone"}
    assert {p["name"] for p in paths["/api/calls"]["get"]["parameters"]} == {"date", "limit"}
    assert "CustomerCardOut" in spec["components"]["schemas"]
    # A malformed login is a 422 naming the field; the password is not trimmed.
    r = await client.post("/api/session", json={"username": "x"})
    assert r.status == 422 and (await r.json())["details"]["field"] == "password"
    r = await client.post("/api/session", json={"username": "nobody", "password": " pw "})
    assert r.status == 401
