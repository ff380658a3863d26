"""HTTP handlers for customers: register one, read one with its history, look up by number.

Every answer is masked (name, numbers, address to the district, numbers inside free text);
the unmasked reveal is a separate, audited endpoint. Errors are DomainErrors, turned into JSON
by the error middleware: 401 not logged in, 403 wrong role, 404, 409 number taken, 422 field.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from callcenter.appkeys import CUSTOMER_SERVICE
from callcenter.customers.phones import normalise
from callcenter.errors import NotFound, ValidationFailed
from callcenter.web.middleware import current_user, json_body

routes = web.RouteTableDef()

CREATE_ROLES = ("admin", "agent")
READ_ROLES = ("agent", "supervisor", "admin", "dispatcher")


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


@routes.post("/api/customers")
async def create_customer(request: web.Request) -> web.Response:
    """201 ``{"id", "name", "level", "phones", "address", "remarks", "appliances"}``, masked."""
    user = current_user(request, *CREATE_ROLES)
    data = await json_body(request)
    service = request.app[CUSTOMER_SERVICE]
    customer = await service.create(data, user)
    context = (await service.customer_context(customer.id)).to_json(masked=True)
    return _json({**context["customer"], "appliances": context["history"]["appliances"]}, status=201)


@routes.get(r"/api/customers/{id:\d{1,18}}")
async def get_customer(request: web.Request) -> web.Response:
    """``{"customer": ..., "history": ...}`` as on the screen-pop, masked; 404 if absent."""
    current_user(request, *READ_ROLES)
    customer_id = int(request.match_info["id"])
    context = await request.app[CUSTOMER_SERVICE].customer_context(customer_id)
    if context.customer_id is None:
        raise NotFound("客户不存在 (no such customer)", id=customer_id)
    return _json(context.to_json(masked=True))


@routes.get("/api/customers")
async def lookup_customer(request: web.Request) -> web.Response:
    """``?phone=`` in any spelling → ``{"customer_id", "customer", "history"}``, masked.

    An unknown number answers 200 with ``customer_id`` null and ``history.new_caller`` true,
    so the screen can offer quick-create; a missing or unusable number is a 422.
    """
    current_user(request, *READ_ROLES)
    service = request.app[CUSTOMER_SERVICE]
    phone = request.query.get("phone", "")
    if not phone.strip():
        raise ValidationFailed("phone", "required")
    if len(phone) > 64 or normalise(phone, service.settings.local_area_code) is None:
        raise ValidationFailed("phone", "not a phone number")
    context = await service.caller_context(phone)
    return _json({"customer_id": context.customer_id, **context.to_json(masked=True)})
