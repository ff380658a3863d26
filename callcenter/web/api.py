"""Declared JSON endpoints: validation with pydantic, roles, and the OpenAPI document.

A handler declares what it takes and who may call it::

    @routes.post("/api/intakes")
    @endpoint("新建受理 Create an intake record", roles=("agent",), body=IntakeIn,
              response=IntakeOut, status=201, tag="orders")
    async def create_intake(request: web.Request, user: CurrentUser, body: IntakeIn) -> web.Response:
        ...

The wrapper checks the login and role (401/403), parses ``?query`` into ``query=`` and the JSON
body into ``body=`` models (422 with the field's dotted path and the reason, nothing else
touched), and passes ``user``. Object-level checks stay in the services (``callcenter.access``).
:func:`build_openapi` turns every declared route into ``/api/openapi.json``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from callcenter.auth.identity import USER
from callcenter.errors import ValidationFailed
from callcenter.web.middleware import current_user, json_body


class ApiModel(BaseModel):
    """Base for request models: unknown fields are refused, strings are stripped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PatchModel(ApiModel):
    """Base for PATCH bodies: only the fields sent change, and ``null`` is refused (422 naming
    the field) unless the field is in ``NULLABLE`` — where null means "none" (a record's end
    time not known yet, a profile with no base position). A null slipped into a required
    column used to be stored and break every later read of the record."""

    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # The document says what the validator does: null only where NULLABLE allows it.
        schema = handler(core_schema)
        schema = handler.resolve_ref_schema(schema)
        for name, prop in schema.get("properties", {}).items():
            options = prop.get("anyOf")
            if name in cls.NULLABLE:
                continue
            if not options:
                if prop.get("default", 0) is None:
                    del prop["default"]
                continue
            kept = [o for o in options if o != {"type": "null"}]
            if len(kept) != len(options):
                del prop["anyOf"]
                if prop.get("default", 0) is None:
                    del prop["default"]  # "not sent", not a value the field takes
                if len(kept) == 1:
                    prop.update(kept[0])
                else:
                    prop["anyOf"] = kept
        return schema

    @field_validator("*", mode="before")
    @classmethod
    def _null_only_where_allowed(cls, v: object, info: ValidationInfo) -> object:
        if v is None and info.field_name not in cls.NULLABLE:
            raise PydanticCustomError("null_not_allowed", "不能为空：不修改请省略该字段")
        return v


class PageQuery(ApiModel):
    """A list's query string: 1-based ``page`` of ``page_size`` rows, and the subclass's filters,
    where an empty value (``?kind=``, what a form's "any" option sends) means any."""

    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(50, ge=1, le=200)

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_any(cls, v: object) -> object:
        return None if v == "" else v


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    summary: str
    roles: tuple[str, ...]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    tag: str
    description: str
    # No login needed (the login itself, logout): the handler gets ``user=None`` then.
    public: bool = False
    # Other media types the 200 answer may have besides JSON (a file export: text/csv, XLSX).
    produces: tuple[str, ...] = ()


def _default(o: object) -> object:
    if isinstance(o, (dt.datetime, dt.date)):
        return o.isoformat()
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json")
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def json_response(body: object, status: int = 200) -> web.Response:
    """JSON with Chinese kept readable and datetimes as ISO 8601."""
    return web.json_response(body, status=status,
                             dumps=lambda o: json.dumps(o, ensure_ascii=False, default=_default))


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def validation_failed(e: ValidationError, prefix: str = "") -> ValidationFailed:
    """The first error as the field and reason; all of them in ``details.errors``. Input values
    are never echoed (they may be personal)."""
    errors = [{"field": prefix + _path(err["loc"]), "reason": err["msg"]} for err in e.errors()]
    first = errors[0]
    return ValidationFailed(first["field"], first["reason"], errors=errors)


# Every integer the API takes must fit the database's BIGINT: a larger one was a 500 from the
# driver (asyncpg, SQLite) instead of a 422.
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def check_int64(value: object, path: str = "") -> None:
    """ValidationFailed (422, the field's dotted path) for an int beyond 64 bits anywhere in a
    parsed model, list or dict. Pure."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationFailed(path or "body", "数值超出范围（64 位整数）")
    elif isinstance(value, BaseModel):
        for k, v in value.__dict__.items():
            check_int64(v, f"{path}.{k}" if path else k)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_int64(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_int64(v, f"{path}.{k}" if path else str(k))


def parse_model(model: type[BaseModel], data: object, prefix: str = "") -> Any:
    try:
        parsed = model.model_validate(data)
    except ValidationError as e:
        raise validation_failed(e, prefix) from None
    check_int64(parsed, prefix.rstrip("."))
    return parsed


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    return parse_model(model, await json_body(request))


def _query(request: web.Request, model: type[BaseModel]) -> Any:
    data: dict[str, object] = {}
    for key in request.query.keys():
        values = request.query.getall(key)
        data[key] = values if len(values) > 1 else values[0]
    return parse_model(model, data)


Handler = Callable[..., Awaitable[web.StreamResponse]]


def endpoint(summary: str, *, roles: tuple[str, ...] = (), body: type[BaseModel] | None = None,
             query: type[BaseModel] | None = None, response: type[BaseModel] | None = None,
             status: int = 200, tag: str = "", description: str = "",
             public: bool = False, produces: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Declare a JSON endpoint (see the module docstring). ``roles=()`` means any logged-in user;
    ``public=True`` (no roles) lets anyone in and passes ``user`` as the session's user or None."""
    if public and roles:
        raise ValueError("a public endpoint has no roles")
    spec = EndpointSpec(summary, roles, body, query, response, status, tag, description, public, produces)

    def deco(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request) -> web.StreamResponse:
            kwargs: dict[str, Any] = {"user": request.get(USER) if public else current_user(request, *roles)}
            if query is not None:
                kwargs["query"] = _query(request, query)
            if body is not None:
                kwargs["body"] = await _body(request, body)
            return await handler(request, **kwargs)

        wrapper.__api__ = spec  # type: ignore[attr-defined]
        return wrapper

    return deco


_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _schema(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
    for name, sub in (*schema.pop("$defs", {}).items(), (model.__name__, schema)):
        if components.get(name, sub) != sub:
            # Two models with one name would silently replace each other in the document.
            raise ValueError(f"two different API models are both named {name!r}: rename one")
        components[name] = sub
    return {"$ref": f"#/components/schemas/{model.__name__}"}


_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Statuses a route's description names ("409 when …", "404 unknown customer") are declared too.
_NAMED_STATUS = re.compile(r"(?<!\d)(4(?:0[0-9]|1[0-9]|2[0-9])|503)(?!\d)")
_STATUS_TEXT = {
    "400": "bad request", "404": "no such object (or not yours to see)",
    "409": "conflicts with the object's state: details say which", "413": "too large",
    "415": "the body must be application/json", "429": "too many attempts: Retry-After",
    "503": "the database or the telephony link is unavailable: Retry-After",
}


def _responses(spec: EndpointSpec, method: str, ok: dict[str, Any], error: dict[str, Any], *,
               has_params: bool, has_path_params: bool) -> dict[str, Any]:
    """Every status the route can answer: what the middlewares give any route (401, 403 for
    roles and for a request from off the origin allow-list, 415 for a body that is not JSON,
    422 for invalid input, 503 while the database is away), 404 for an id in the path or the
    body, 409 for any change, and any status its description names. The fuzz run
    (tests/security/test_api_fuzz.py) fails on an answer whose status is not declared."""
    unauthenticated = "wrong username or password" if spec.public else "not logged in"
    responses: dict[str, Any] = {str(spec.status): ok, "401": {"description": unauthenticated, **error}}
    if spec.roles or method in _UNSAFE:
        responses["403"] = {"description": "role or object not allowed, or a request from a page "
                                           "off the origin allow-list (csrf)", **error}
    query_ids = spec.query is not None and any(
        n == "id" or n.endswith("_id") or n == "linkedid" for n in spec.query.model_fields)
    if has_path_params or spec.body is not None or query_ids:
        # A path's id, or an id the body or the query refers to (customer_id, linkedid …).
        responses["404"] = {"description": _STATUS_TEXT["404"], **error}
    if method in _UNSAFE:
        # A change can always meet an object whose state forbids it (the state machine,
        # stock, a duplicate, a job already dialling …).
        responses["409"] = {"description": _STATUS_TEXT["409"], **error}
    if spec.body is not None:
        responses["415"] = {"description": _STATUS_TEXT["415"], **error}
    if has_params or spec.body is not None:
        responses["422"] = {"description": "invalid input: details.field and details.reason", **error}
    for code in _NAMED_STATUS.findall(spec.description):
        responses.setdefault(code, {"description": _STATUS_TEXT.get(code, "see the description"), **error})
    responses["503"] = {"description": _STATUS_TEXT["503"], **error}
    return dict(sorted(responses.items()))


def build_openapi(app: web.Application, *, title: str, version: str) -> dict[str, Any]:
    """OpenAPI 3.1 for every route declared with :func:`endpoint`."""
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error", "message", "details"], "properties": {
            "error": {"type": "string"}, "message": {"type": "string"},
            "details": {"type": "object"}}},
    }
    seen_ids: set[str] = set()
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for route in app.router.routes():
        spec: EndpointSpec | None = getattr(route.handler, "__api__", None)
        # aiohttp adds a HEAD route for every GET: one operation per path and method is enough.
        if spec is None or route.resource is None or route.method == "HEAD":
            continue
        raw = route.resource.canonical
        path = _PARAM.sub(r"{\1}", raw)
        # Unique operation ids even when two features both name a handler ``get_order``.
        op_id, n = route.handler.__name__, 2
        while op_id in seen_ids:
            op_id, n = f"{route.handler.__name__}_{n}", n + 1
        seen_ids.add(op_id)
        op: dict[str, Any] = {"summary": spec.summary, "tags": [spec.tag] if spec.tag else [],
                              "operationId": op_id}
        if spec.description:
            op["description"] = spec.description
        if spec.roles:
            op["x-roles"] = list(spec.roles)
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in _PARAM.findall(raw)]
        if spec.query is not None:
            qschema = spec.query.model_json_schema()
            required = set(qschema.get("required", ()))
            for name, prop in qschema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
        if params:
            op["parameters"] = params
        if spec.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": _schema(spec.body, components, "validation")}}}
        ok: dict[str, Any] = {"description": "OK"}
        if spec.response is not None:
            ok["content"] = {"application/json": {"schema": _schema(spec.response, components, "serialization")}}
        for media in spec.produces:
            ok.setdefault("content", {})[media] = {"schema": {"type": "string", "contentMediaType": media}}
        op["responses"] = _responses(spec, route.method, ok, error, has_params=bool(params),
                                     has_path_params=bool(_PARAM.findall(raw)))
        paths.setdefault(path, {})[route.method.lower()] = op
    return {"openapi": "3.1.0", "info": {"title": title, "version": version},
            "paths": dict(sorted(paths.items())), "components": {"schemas": components}}
