"""HTTP handlers for customers: register one, read one with its history, look up by number.

Every answer is masked (name, numbers, address to the district, numbers inside free text);
the unmasked reveal is a separate, audited endpoint. Errors are DomainErrors, turned into JSON
by the error middleware: 401 not logged in, 403 wrong role, 404, 409 number taken, 422 field.
The request models take the shape; the rules are ``customers.validation`` (shared with the
importer).
"""

from __future__ import annotations

from aiohttp import web

from callcenter.appkeys import CUSTOMER_SERVICE
from callcenter.auth.identity import CurrentUser
from callcenter.customers.phones import normalise
from callcenter.customers.schemas import (
    CallerLookupOut, CreatedCustomerOut, CustomerContextOut, CustomerIn, PhoneLookupQuery,
)
from callcenter.errors import NotFound, ValidationFailed
from callcenter.web.api import endpoint, json_response

routes = web.RouteTableDef()

CREATE_ROLES = ("admin", "agent")
READ_ROLES = ("agent", "supervisor", "admin", "dispatcher")
TAG = "customers"


@routes.post("/api/customers")
@endpoint("新建客户 Register a customer with numbers, address and appliances (409: number taken)",
          roles=CREATE_ROLES, body=CustomerIn, response=CreatedCustomerOut, status=201, tag=TAG)
async def create_customer(request: web.Request, user: CurrentUser, body: CustomerIn) -> web.Response:
    """201 ``{"id", "name", "level", "phones", "address", "remarks", "appliances"}``, masked."""
    service = request.app[CUSTOMER_SERVICE]
    customer = await service.create(body.model_dump(), user)
    context = (await service.customer_context(customer.id)).to_json(masked=True)
    return json_response({**context["customer"], "appliances": context["history"]["appliances"]}, status=201)


@routes.get(r"/api/customers/{id:\d{1,18}}")
@endpoint("客户及其历史 A customer with their history, as on the screen-pop", roles=READ_ROLES,
          response=CustomerContextOut, tag=TAG)
async def get_customer(request: web.Request, user: CurrentUser) -> web.Response:
    """``{"customer": ..., "history": ...}`` as on the screen-pop, masked; 404 if absent."""
    customer_id = int(request.match_info["id"])
    context = await request.app[CUSTOMER_SERVICE].customer_context(customer_id)
    if context.customer_id is None:
        raise NotFound("客户不存在 (no such customer)", id=customer_id)
    return json_response(context.to_json(masked=True))


@routes.get("/api/customers")
@endpoint("按号码查客户 Look a caller up by number (unknown: customer_id null, new_caller)",
          roles=READ_ROLES, query=PhoneLookupQuery, response=CallerLookupOut, tag=TAG)
async def lookup_customer(request: web.Request, user: CurrentUser, query: PhoneLookupQuery) -> web.Response:
    """``?phone=`` in any spelling → ``{"customer_id", "customer", "history"}``, masked.

    An unknown number answers 200 with ``customer_id`` null and ``history.new_caller`` true,
    so the screen can offer quick-create; a missing or unusable number is a 422.
    """
    service = request.app[CUSTOMER_SERVICE]
    if normalise(query.phone, service.settings.local_area_code) is None:
        raise ValidationFailed("phone", "not a phone number")
    context = await service.caller_context(query.phone)
    return json_response({"customer_id": context.customer_id, **context.to_json(masked=True)})
