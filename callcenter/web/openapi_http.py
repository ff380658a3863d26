"""``GET /api/openapi.json`` (OpenAPI 3.1 of every endpoint declared with ``@endpoint``) and
``GET /api/docs`` (the same document as a readable page, rendered on the server: no script, no
CDN — the centre's PCs may have no internet).

Both are public: they describe the interface, never data. The document is built once, on the
first request after start-up (every route is registered by then), and kept in ``app[OPENAPI]``.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from callcenter.appkeys import OPENAPI
from callcenter.web.api import build_openapi

routes = web.RouteTableDef()

TITLE = "400 售后服务热线 API"
# Nested models deeper than this are shown by name only (and a model that contains itself stops).
MAX_DEPTH = 6
METHOD_ORDER = ("get", "post", "put", "patch", "delete")


def _version() -> str:
    try:
        return version("callcenter")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0.0.0"


def setup(app: web.Application) -> None:
    """Add the two routes and the (empty) cache: call from ``init_app``."""
    app[OPENAPI] = {}
    app.add_routes(routes)


def _spec(app: web.Application) -> tuple[dict[str, Any], bytes]:
    cache = app[OPENAPI]
    if "spec" not in cache:
        spec = build_openapi(app, title=TITLE, version=_version())
        cache["spec"] = spec
        cache["json"] = json.dumps(spec, ensure_ascii=False).encode()
    return cache["spec"], cache["json"]


@routes.get("/api/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    _, body = _spec(request.app)
    return web.Response(body=body, content_type="application/json", charset="utf-8")


# --------------------------------------------------------------------------------------------
# The page: the spec flattened into tables (pure)


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``schema`` with a top-level ``$ref`` followed; also the referenced model's name."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        name = ref.rsplit("/", 1)[1]
        return components.get(name, {}), name
    return schema, ""


def _alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return list(schema.get("anyOf") or schema.get("oneOf") or ())


def type_label(schema: dict[str, Any], components: dict[str, Any]) -> str:
    """``string``, ``integer | null``, ``array<OrderSummary>``, ``OrderSummary`` …"""
    alts = _alternatives(schema)
    if alts:
        return " | ".join(type_label(a, components) for a in alts)
    resolved, name = _resolve(schema, components)
    if name:
        return name
    t = resolved.get("type")
    if t == "array":
        return f"array<{type_label(resolved.get('items', {}), components)}>"
    if isinstance(t, list):
        return " | ".join(t)
    if "const" in resolved:
        return json.dumps(resolved["const"], ensure_ascii=False)
    fmt = resolved.get("format")
    return f"{t or 'any'}" + (f" ({fmt})" if fmt else "")


def notes(schema: dict[str, Any]) -> str:
    """Description, allowed values and limits, in one line."""
    parts: list[str] = []
    pool = [schema, *_alternatives(schema)]
    for s in pool:
        enum = s.get("enum") or (s.get("items", {}) or {}).get("enum")
        if enum:
            parts.append("可选值: " + " / ".join(str(e) for e in enum))
    for key, label in (("minLength", "最短"), ("maxLength", "最长"), ("minimum", "≥"), ("maximum", "≤"),
                       ("pattern", "格式"), ("default", "默认")):
        for s in pool:
            if key in s and s[key] is not None:
                value = s[key]
                parts.append(f"{label} {json.dumps(value, ensure_ascii=False) if key == 'default' else value}")
                break
    if schema.get("description"):
        parts.insert(0, str(schema["description"]))
    return "；".join(parts)


def _object_of(schema: dict[str, Any], components: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """The object model inside ``schema`` (through a ref, ``X | null`` or an array) and the
    suffix its fields' paths get (``[]`` for arrays)."""
    for alt in [schema, *_alternatives(schema)]:
        resolved, name = _resolve(alt, components)
        if resolved.get("type") == "array":
            inner, inner_name = _resolve(resolved.get("items", {}), components)
            if "properties" in inner:
                return inner, inner_name, "[]"
        if "properties" in resolved:
            return resolved, name, ""
    return {}, "", ""


def field_rows(schema: dict[str, Any], components: dict[str, Any], prefix: str = "",
               seen: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every field of a body schema, nested ones as dotted paths (``items[].customer.name``)."""
    obj, name, _ = _object_of(schema, components)
    if not obj or len(seen) >= MAX_DEPTH or (name and name in seen):
        return []
    required = set(obj.get("required", ()))
    rows: list[dict[str, Any]] = []
    for field, prop in obj.get("properties", {}).items():
        path = prefix + field
        rows.append({"name": path, "type": type_label(prop, components), "required": field in required,
                     "notes": notes(prop)})
        _, _, suffix = _object_of(prop, components)
        rows += field_rows(prop, components, path + suffix + ".", seen + ((name,) if name else ()))
    return rows


def _body_view(content: dict[str, Any] | None, components: dict[str, Any]) -> dict[str, Any] | None:
    if not content:
        return None
    schema = content.get("application/json", {}).get("schema", {})
    return {"type": type_label(schema, components), "fields": field_rows(schema, components)}


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's operations, grouped by tag (in order of appearance), ready for the template."""
    components = spec.get("components", {}).get("schemas", {})
    groups: dict[str, list[dict[str, Any]]] = {}
    for path, item in spec.get("paths", {}).items():
        for method in sorted(item, key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 99):
            op = item[method]
            params = [{"name": p["name"], "in": p["in"], "required": p.get("required", False),
                       "type": type_label(p.get("schema", {}), components), "notes": notes(p.get("schema", {}))}
                      for p in op.get("parameters", ())]
            responses = [{"status": status, "description": r.get("description", ""),
                          "body": _body_view(r.get("content"), components)}
                         for status, r in op.get("responses", {}).items()]
            tag = (op.get("tags") or ["其他"])[0]
            groups.setdefault(tag, []).append({
                "id": op.get("operationId", f"{method}-{path}"), "method": method.upper(), "path": path,
                "summary": op.get("summary", ""), "description": op.get("description", ""),
                "roles": op.get("x-roles", []), "parameters": params,
                "request": _body_view(op.get("requestBody", {}).get("content"), components),
                "responses": responses})
    return [{"tag": tag, "operations": ops} for tag, ops in groups.items()]


@routes.get("/api/docs")
@aiohttp_jinja2.template("api_docs.html")
async def api_docs(request: web.Request) -> dict[str, Any]:
    spec, _ = _spec(request.app)
    groups = operations(spec)
    return {"title": spec["info"]["title"], "version": spec["info"]["version"],
            "openapi": spec["openapi"], "groups": groups,
            "count": sum(len(g["operations"]) for g in groups)}
