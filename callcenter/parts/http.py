"""HTTP handlers for the on-site record (SA-OS-004), its parts and fees, stock and the catalogue.

All JSON, declared with ``@endpoint`` (roles, pydantic bodies → 422 naming the field, OpenAPI).
Object checks are in the services: an engineer reaches only the records of their own orders
(404 for anyone else's, like an id that does not exist); roles that may read but not write get
403. Every answer is masked (names 张*, numbers in free text).
"""

from __future__ import annotations

from aiohttp import web

from callcenter.access import ACTIONS
from callcenter.appkeys import MAILBOX, SESSIONMAKER, SETTINGS
from callcenter.auth.identity import CurrentUser
from callcenter.clock import utcnow
from callcenter.parts import schemas as sc
from callcenter.parts.catalogue import CatalogueService
from callcenter.parts.inventory import StockAlerts
from callcenter.parts.onsite import OnsiteService
from callcenter.parts.warehouse import StockService
from callcenter.web.api import endpoint, json_response

routes = web.RouteTableDef()

ID = r"{id:\d{1,18}}"
LINE = r"{line_id:\d{1,18}}"
WRITE = ACTIONS["onsite.write"]
STOCK_READ = ACTIONS["stock.read"]
STOCK_WRITE = ACTIONS["stock.write"]
CATALOGUE_WRITE = ACTIONS["catalogue.write"]
TAG_ONSITE, TAG_STOCK, TAG_CATALOGUE = "onsite", "stock", "catalogue"


def _alerts(request: web.Request) -> StockAlerts:
    return StockAlerts(request.app[SESSIONMAKER], request.app.get(MAILBOX))


def _onsite(request: web.Request) -> OnsiteService:
    return OnsiteService(request.app[SESSIONMAKER], request.app[SETTINGS], _alerts(request))


def _stock(request: web.Request) -> StockService:
    return StockService(request.app[SESSIONMAKER], _alerts(request))


def _catalogue(request: web.Request) -> CatalogueService:
    return CatalogueService(request.app[SESSIONMAKER])


def _id(request: web.Request, name: str = "id") -> int:
    return int(request.match_info[name])


# ---- on-site record ---------------------------------------------------------------------------

@routes.post(f"/api/orders/{ID}/onsite")
@endpoint("新建上门服务记录 Create the on-site record (SA-OS-004) of an order", roles=WRITE,
          body=sc.OnsiteCreate, response=sc.OnsiteOut, status=201, tag=TAG_ONSITE,
          description="The order's engineer (or a supervisor) while the order is 服务中 or 待件; 409 if "
                      "it is not, has no engineer, or already has an unsigned record.")
async def create_onsite(request: web.Request, user: CurrentUser, body: sc.OnsiteCreate) -> web.Response:
    return json_response(await _onsite(request).create(user, _id(request), body, utcnow()), 201)


@routes.get(f"/api/orders/{ID}/onsite")
@endpoint("工单的上门记录 The on-site records of an order", response=sc.OnsiteList, tag=TAG_ONSITE)
async def list_onsite(request: web.Request, user: CurrentUser) -> web.Response:
    return json_response({"items": await _onsite(request).list_for_order(user, _id(request))})


@routes.get(f"/api/onsite/{ID}")
@endpoint("上门服务记录 An on-site record", response=sc.OnsiteOut, tag=TAG_ONSITE)
async def get_onsite(request: web.Request, user: CurrentUser) -> web.Response:
    return json_response(await _onsite(request).get(user, _id(request)))


@routes.patch(f"/api/onsite/{ID}")
@endpoint("修改上门服务记录 Update an on-site record", roles=WRITE, body=sc.OnsiteUpdate,
          response=sc.OnsiteOut, tag=TAG_ONSITE,
          description="Only the fields sent change; totals are computed, never accepted. 409 if the "
                      "version is stale or the record is signed.")
async def update_onsite(request: web.Request, user: CurrentUser, body: sc.OnsiteUpdate) -> web.Response:
    return json_response(await _onsite(request).update(user, _id(request), body, utcnow()))


@routes.post(f"/api/onsite/{ID}/parts")
@endpoint("领用配件 Issue a part to the record", roles=WRITE, body=sc.PartIssue, response=sc.OnsiteOut,
          status=201, tag=TAG_ONSITE,
          description="From a 配件库 or the order engineer's van; stock decremented in the same "
                      "transaction; 409 insufficient_stock and nothing written if too few.")
async def add_part(request: web.Request, user: CurrentUser, body: sc.PartIssue) -> web.Response:
    return json_response(await _onsite(request).add_part(user, _id(request), body, utcnow()), 201)


@routes.patch(f"/api/onsite/{ID}/parts/{LINE}")
@endpoint("修改配件数量 Change a part line's quantity", roles=WRITE, body=sc.PartLineUpdate,
          response=sc.OnsiteOut, tag=TAG_ONSITE)
async def update_part(request: web.Request, user: CurrentUser, body: sc.PartLineUpdate) -> web.Response:
    return json_response(await _onsite(request).update_part(user, _id(request), _id(request, "line_id"),
                                                             body, utcnow()))


@routes.delete(f"/api/onsite/{ID}/parts/{LINE}")
@endpoint("退回配件 Remove a part line (stock put back)", roles=WRITE, response=sc.OnsiteOut, tag=TAG_ONSITE)
async def remove_part(request: web.Request, user: CurrentUser) -> web.Response:
    return json_response(await _onsite(request).remove_part(user, _id(request), _id(request, "line_id"),
                                                             utcnow()))


@routes.post(f"/api/onsite/{ID}/sign")
@endpoint("客户确认签字 Customer confirmation and signatures", roles=WRITE, body=sc.SignOff,
          response=sc.OnsiteOut, tag=TAG_ONSITE,
          description="Needs root_cause, solution and started_at; sets signed_at on the record and the "
                      "work order (and service_finished_at if unset); the record is locked afterwards.")
async def sign_onsite(request: web.Request, user: CurrentUser, body: sc.SignOff) -> web.Response:
    return json_response(await _onsite(request).sign(user, _id(request), body, utcnow()))


@routes.post(f"/api/onsite/{ID}/reopen")
@endpoint("重新打开 Reopen a signed record (supervisor)", roles=ACTIONS["onsite.reopen"], body=sc.Reopen,
          response=sc.OnsiteOut, tag=TAG_ONSITE)
async def reopen_onsite(request: web.Request, user: CurrentUser, body: sc.Reopen) -> web.Response:
    return json_response(await _onsite(request).reopen(user, _id(request), body, utcnow()))


# ---- catalogue ----------------------------------------------------------------------------------

@routes.get("/api/parts")
@endpoint("配件目录 Parts catalogue", query=sc.PartsQuery, response=sc.PartList, tag=TAG_CATALOGUE)
async def list_parts(request: web.Request, user: CurrentUser, query: sc.PartsQuery) -> web.Response:
    return json_response({"items": await _catalogue(request).parts(query)})


@routes.post("/api/parts")
@endpoint("新建配件 Add a catalogue part", roles=CATALOGUE_WRITE, body=sc.PartIn, response=sc.PartOut,
          status=201, tag=TAG_CATALOGUE)
async def create_part(request: web.Request, user: CurrentUser, body: sc.PartIn) -> web.Response:
    return json_response(await _catalogue(request).create_part(user, body, utcnow()), 201)


@routes.patch(f"/api/parts/{ID}")
@endpoint("修改配件 Update a catalogue part", roles=CATALOGUE_WRITE, body=sc.PartPatch, response=sc.PartOut,
          tag=TAG_CATALOGUE)
async def update_catalogue_part(request: web.Request, user: CurrentUser, body: sc.PartPatch) -> web.Response:
    return json_response(await _catalogue(request).update_part(user, _id(request), body, utcnow()))


@routes.get("/api/price-items")
@endpoint("价目表 Price list (visit fee, labour)", query=sc.PriceItemsQuery, response=sc.PriceItemList,
          tag=TAG_CATALOGUE)
async def list_price_items(request: web.Request, user: CurrentUser, query: sc.PriceItemsQuery) -> web.Response:
    return json_response({"items": await _catalogue(request).price_items(query)})


@routes.post("/api/price-items")
@endpoint("新建价目 Add a price-list item", roles=CATALOGUE_WRITE, body=sc.PriceItemIn,
          response=sc.PriceItemOut, status=201, tag=TAG_CATALOGUE)
async def create_price_item(request: web.Request, user: CurrentUser, body: sc.PriceItemIn) -> web.Response:
    return json_response(await _catalogue(request).create_price_item(user, body, utcnow()), 201)


@routes.patch(f"/api/price-items/{ID}")
@endpoint("修改价目 Update a price-list item", roles=CATALOGUE_WRITE, body=sc.PriceItemPatch,
          response=sc.PriceItemOut, tag=TAG_CATALOGUE)
async def update_price_item(request: web.Request, user: CurrentUser, body: sc.PriceItemPatch) -> web.Response:
    return json_response(await _catalogue(request).update_price_item(user, _id(request), body, utcnow()))


# ---- stock --------------------------------------------------------------------------------------

@routes.get("/api/stock")
@endpoint("库存 Stock levels", roles=STOCK_READ, query=sc.StockQuery, response=sc.LevelList, tag=TAG_STOCK,
          description="Engineers see their own van and the 配件库 warehouses.")
async def list_stock(request: web.Request, user: CurrentUser, query: sc.StockQuery) -> web.Response:
    return json_response(await _stock(request).levels(user, query))


@routes.get("/api/stock/alerts")
@endpoint("安全库存预警 Levels below their safety stock", roles=STOCK_READ, query=sc.StockQuery,
          response=sc.LevelList, tag=TAG_STOCK)
async def stock_alerts(request: web.Request, user: CurrentUser, query: sc.StockQuery) -> web.Response:
    return json_response(await _stock(request).levels(user, query, alerts_only=True))


@routes.get("/api/stock/locations")
@endpoint("库位 Warehouses and vans", roles=STOCK_READ, response=sc.LocationList, tag=TAG_STOCK)
async def list_locations(request: web.Request, user: CurrentUser) -> web.Response:
    return json_response({"items": await _stock(request).locations(user)})


@routes.post("/api/stock/locations")
@endpoint("新建库位 Add a warehouse or a van", roles=STOCK_WRITE, body=sc.LocationIn, response=sc.LocationOut,
          status=201, tag=TAG_STOCK)
async def create_location(request: web.Request, user: CurrentUser, body: sc.LocationIn) -> web.Response:
    return json_response(await _stock(request).create_location(user, body, utcnow()), 201)


@routes.get("/api/stock/movements")
@endpoint("出入库记录 Stock movements", roles=STOCK_READ, query=sc.MovementsQuery, response=sc.MovementList,
          tag=TAG_STOCK)
async def list_movements(request: web.Request, user: CurrentUser, query: sc.MovementsQuery) -> web.Response:
    return json_response(await _stock(request).movements(user, query))


@routes.post("/api/stock/receipts")
@endpoint("入库 Receive stock into a warehouse", roles=STOCK_WRITE, body=sc.Receipt, response=sc.LevelsChanged,
          status=201, tag=TAG_STOCK)
async def receive_stock(request: web.Request, user: CurrentUser, body: sc.Receipt) -> web.Response:
    return json_response(await _stock(request).receive(user, body, utcnow()), 201)


@routes.post("/api/stock/transfers")
@endpoint("调拨 Transfer stock (e.g. 配件库 → a van)", roles=STOCK_WRITE, body=sc.Transfer,
          response=sc.LevelsChanged, status=201, tag=TAG_STOCK)
async def transfer_stock(request: web.Request, user: CurrentUser, body: sc.Transfer) -> web.Response:
    return json_response(await _stock(request).transfer(user, body, utcnow()), 201)


@routes.post("/api/stock/adjustments")
@endpoint("盘点调整 Adjust a level (signed, with a reason)", roles=STOCK_WRITE, body=sc.Adjustment,
          response=sc.LevelsChanged, status=201, tag=TAG_STOCK)
async def adjust_stock(request: web.Request, user: CurrentUser, body: sc.Adjustment) -> web.Response:
    return json_response(await _stock(request).adjust(user, body, utcnow()), 201)


@routes.put("/api/stock/safety")
@endpoint("安全库存 Set a level's safety stock", roles=STOCK_WRITE, body=sc.SafetyStock,
          response=sc.LevelsChanged, tag=TAG_STOCK)
async def set_safety_stock(request: web.Request, user: CurrentUser, body: sc.SafetyStock) -> web.Response:
    return json_response(await _stock(request).set_safety_stock(user, body, utcnow()))
