"""Bulk import of past work orders from CSV or XLSX (a centre moving off its old system).

Columns
-------
Read by ``callcenter.imports.tabular`` (CSV in UTF-8/BOM/GBK, comma or tab; XLSX; Chinese or
English headers, see ``COLUMNS``). Required: phone/电话, created/创建时间, status/状态.

* 工单号 the old order number (optional; see *Numbers*).
* 创建时间 / 完成时间: a date cell, an Excel serial, or ``2024-05-20 14:30[:00]`` in the centre's
  time zone (a date alone is its midnight); not in the future, completed not before created.
* 电话 (several numbers per cell allowed, 备用电话 adds more), 姓名, 省/市/区/详细地址.
* 品类/品牌/型号/序列号/购买日期/保修月数: the appliance (型号 required when any is given).
* 服务类型 (上门维修 default, 远程支持, 安装, 退换货, 送修; also 维修, 远程, 寄修 …), 紧急程度
  (普通 default / 紧急 / 特急), 保修类型 (保内/保外/理赔机; default computed from the purchase
  date and warranty months on the created day), 故障描述, 工程师工号, 取消原因.
* 故障原因 / 解决方案 and the fees 上门费 / 工时费 / 配件费 / 合计: yuan with at most two
  decimals (``128.50``, ``¥1,280``), or whole fen in columns named ``…(分)`` / ``…_fen``.

What a row does
---------------
* **Customer**: its numbers are matched through the blind index (every index key). An unknown
  customer is created from 姓名 + the numbers (+ the address); without a name the row is
  rejected. Numbers of two customers: rejected. A known customer's name, numbers and addresses
  are left as they are, except that the row's service address is added when it is new.
* **Appliance**: the customer's appliance with the same serial, else the same model and purchase
  date, else it is added (``callcenter.imports.matching``).
* **Status**: history is what an import is for, so the closed statuses are taken as they are:
  已完成, 已回访, 已取消 and (送修) 已取, with the old systems' words for them (完成, 完工, 结单,
  作废, 已取机 …; 已完成 of a 送修 order becomes 已取). An open status is accepted only where it
  maps to the **start** of our process — 待处理 (送修: 待修), also spelt 待派单, 未处理, 新建 — so
  the order is worked here from the beginning (its engineer is not carried over). Any other open
  status (已派单, 已预约, 服务中, 待件, 修理中, 难修, 待取) is rejected: its appointment and visit
  records are not in the file, so our process could not continue it; finish it in the old system
  or import it as 待处理. Imported orders carry ``source = "import"``: the SLA clocks ignore them
  (``callcenter.sla.rules``).
* **Engineer**: 工程师工号 is matched to ``users.staff_no`` (case-insensitive); not found, the
  order is imported without an engineer and the row is noted.
* **On-site record**: a closed-and-done order (已完成 / 已回访 / 已取) with a cause, a solution or a
  fee gets an ``OS…`` record numbered for its completed day, holding cause, solution and the fees
  as charged (上门费 and 工时费 as fee items, 配件费 as the parts total — there are no part lines),
  counted as confirmed and signed at the completed time (the old system closed it; the signature
  fields stay empty). ``in_warranty`` (free) only when the order is 保内 and nothing was charged.
  A 合计 must equal the sum of the parts given; a 合计 alone is recorded as 工时费 (noted). Fees
  of an order that was not done are ignored (noted).

Numbers
-------
The old number becomes the order's ``number`` when it is free and looks like one of ours or the
old system's:

* ours: ``WO`` + a real date + ``-`` + a serial of 3+ digits (a file exported from another
  installation of this system). Before keeping it, the day's counter (``number_counters``) is
  raised to at least its serial, in the row's transaction and before checking that the number is
  free: the counter row's lock orders us after any agent saving an order for that day, and no
  later :func:`~callcenter.orders.numbering.next_number` can hand out that serial again. The
  serials below it that the file does not hold stay unused: a gap that mirrors the source, not
  one this system made.
* the old system's: 2–32 letters, digits and ``- _ / . #``, not starting like one of our numbers
  (``CR2…``, ``OS2…``: confusable) and not holding a mobile phone number (it would be shown
  unmasked on every screen). Such numbers can never equal one we generate.

Otherwise, or when the number is taken by an order that was not imported, a ``WO`` number is
generated for the order's **created** day through ``callcenter.orders.numbering``: it continues
that day's counter, so it cannot collide with the day's live orders and stays gap-free; the row
is noted with both numbers. The old number is always kept in the order's ``imported`` timeline
event (``旧系统导入，原单号 …``).

Idempotency: a row whose old number is already on an imported order (as its number or in its
timeline) is skipped; a row without an old number is skipped when an imported order of the same
customer has the same created time and model. So importing the same file twice adds nothing the
second time. Batches, transactions, dry runs and the audit: ``callcenter.imports.tabular``.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.crypto import PhoneVault
from callcenter.customers import validation
from callcenter.customers.validation import AddressInput, ApplianceInput, PhoneInput
from callcenter.customers.warranty import warranty_kind, warranty_status
from callcenter.db.models import (
    NumberCounter,
    OnsiteRecord,
    OrderEvent,
    User,
    WorkOrder,
)
from callcenter.errors import ValidationFailed
from callcenter.imports import matching, tabular
from callcenter.imports.appliances import TWO_CUSTOMERS, parse_appliance
from callcenter.orders import states
from callcenter.orders.numbering import next_number
from callcenter.parts.fees import LABOUR, VISIT_FEE, is_free
from callcenter.privacy import mask_numbers_in_text
from callcenter.settings import Settings

SOURCE = "import"
EVENT = "imported"
LEGACY_NOTE = "旧系统导入，原单号 "
PLAIN_NOTE = "旧系统导入"
DEFAULT_CANCEL_REASON = "旧系统已取消（导入）"


def _money(key: str, en: tuple[str, ...], zh: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Yuan and fen spellings of one fee column."""
    return {key: en + zh + tuple(f"{z}{u}" for z in zh for u in ("(元)", "（元）")),
            f"{key}_fen": tuple(f"{e}fen" for e in en) + tuple(f"{z}{u}" for z in zh for u in ("(分)", "（分）"))}


FEES = ("visit_fee", "labour_fee", "parts_fee", "total_fee")
COLUMNS: dict[str, tuple[str, ...]] = {
    "order_no": ("orderno", "ordernumber", "number", "oldnumber", "workorder", "workorderno",
                 "工单号", "工单编号", "原工单号", "旧单号", "单号", "服务单号"),
    "created": ("created", "createdat", "createdtime", "createtime", "创建时间", "建单时间", "受理时间",
                "报修时间", "下单时间"),
    **tabular.PERSON_COLUMNS,
    **tabular.APPLIANCE_COLUMNS,
    "service_type": ("servicetype", "服务类型", "服务方式", "工单类型"),
    "status": ("status", "状态", "工单状态"),
    "urgency": ("urgency", "priority", "紧急程度", "紧急度", "优先级"),
    "warranty_kind": ("warrantykind", "warrantytype", "保修类型", "保修属性", "保内保外"),
    "problem": ("problem", "fault", "description", "故障描述", "问题描述", "报修内容", "故障现象"),
    "engineer": ("engineer", "staffno", "engineerno", "工程师工号", "工号", "工程师编号", "维修工号"),
    "completed": ("completed", "completedat", "completedtime", "finishedat", "完成时间", "完工时间",
                  "结单时间"),
    "cause": ("cause", "rootcause", "故障原因", "原因"),
    "solution": ("solution", "fix", "解决方案", "处理措施", "维修措施", "处理方法"),
    "cancel_reason": ("cancelreason", "取消原因"),
    **_money("visit_fee", ("visitfee",), ("上门费",)),
    **_money("labour_fee", ("labourfee", "laborfee"), ("工时费", "人工费", "维修费")),
    **_money("parts_fee", ("partsfee",), ("配件费", "材料费")),
    **_money("total_fee", ("totalfee", "total"), ("合计", "总费用", "费用合计", "收费金额")),
}
REQUIRED = {"phone": "phone/电话", "created": "created/创建时间", "status": "status/状态"}


def _spelling(value: str) -> str:
    return re.sub(r"[\s_\-]+", "", value).lower()


def _aliases(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {_spelling(s): canonical for canonical, names in table.items() for s in (canonical, *names)}


SERVICE_TYPES = _aliases({
    states.ONSITE_REPAIR: ("维修", "上门", "上门服务", "repair", "onsite"),
    states.REMOTE: ("远程", "电话指导", "remote"),
    states.INSTALL: ("上门安装", "install", "installation"),
    states.RETURN: ("退货", "换货", "退换", "return", "exchange"),
    states.CARRY_IN: ("寄修", "到店维修", "carryin"),
})
START = "start"  # the beginning of the process: 待处理 (送修: 待修)
STATUSES = _aliases({
    states.DONE: ("完成", "已完工", "完工", "已结单", "结单", "done", "completed", "closed", "finished"),
    states.SURVEYED: ("回访完成", "已评价", "surveyed"),
    states.CANCELLED: ("取消", "作废", "已作废", "cancelled", "canceled"),
    states.COLLECTED: ("已取机", "已取件", "collected", "pickedup"),
    START: (states.PENDING, states.WAITING, "待派单", "待派工", "未处理", "新建", "pending", "new"),
})
# Open statuses past the start: their records (appointment, visit) are not in the file.
_OPEN_LATER = frozenset(_spelling(s) for s in (
    states.DISPATCHED, states.BOOKED, states.IN_SERVICE, states.WAITING_PARTS, states.REPAIRING,
    states.HARD_CASE, states.READY))
URGENCIES = _aliases({"普通": ("一般", "normal"), "紧急": ("urgent",), "特急": ("特别紧急", "critical")})
WARRANTIES = _aliases({"保内": ("在保", "in"), "保外": ("过保", "out"), "理赔机": ("理赔", "claim")})
DONE_STATUSES = (states.DONE, states.SURVEYED, states.COLLECTED)

_OURS = re.compile(r"WO(\d{8})-(\d{3,6})")
_LIKE_OURS = re.compile(r"(?:CR|WO|AP|OS|CS|DA)\d", re.IGNORECASE)
_OLD_SYSTEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-_/.#]{1,31}")
_MOBILE = re.compile(r"(?<!\d)(?:86|0086|0)?1[3-9]\d{9}(?!\d)")


@dataclass(frozen=True, slots=True)
class Kept:
    """An old number that may become the order's number: ``day``/``serial`` when it is ours."""

    number: str
    day: str | None = None
    serial: int | None = None


def number_policy(old: str) -> Kept | str:
    """Whether an old number can be kept (module text): a :class:`Kept`, or why not (pure)."""
    m = _OURS.fullmatch(old)
    if m:
        try:
            dt.datetime.strptime(m.group(1), "%Y%m%d")
        except ValueError:
            return "not a real date in it"
        return Kept(old, m.group(1), int(m.group(2)))
    if _LIKE_OURS.match(old):
        return "looks like one of this system's numbers"
    if _MOBILE.search(re.sub(r"[\s\-]", "", old)):
        return "holds a phone number"
    if not _OLD_SYSTEM.fullmatch(old):
        return "2–32 letters, digits or - _ / . # expected"
    return Kept(old)


@dataclass(frozen=True, slots=True)
class Fees:
    visit: int = 0
    labour: int = 0
    parts: int = 0

    @property
    def total(self) -> int:
        return self.visit + self.labour + self.parts


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One valid row (times aware UTC)."""

    row: int
    old_number: str
    created: dt.datetime
    completed: dt.datetime | None
    phones: tuple[PhoneInput, ...]
    name: str
    address: AddressInput | None
    appliance: ApplianceInput | None
    service_type: str
    status: str
    urgency: str
    warranty: str | None
    problem: str
    staff_no: str
    cause: str
    solution: str
    cancel_reason: str
    fees: Fees
    notes: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.status in DONE_STATUSES

    def key(self, customer_id: int) -> tuple[Any, ...]:
        """What makes this row's order the same order on a second import."""
        if self.old_number:
            return ("old", legacy_key(self.old_number))
        model = self.appliance.model.strip().lower() if self.appliance else ""
        return ("nat", customer_id, self.created, model)


def legacy_key(old: str) -> str:
    # The timeline shows the note, so a number-like run in it is masked (privacy), and matched so.
    return mask_numbers_in_text(old)


def _choice(cells: dict[str, object], key: str, table: dict[str, str], default: str | None) -> str | None:
    raw = tabular.text(cells, key, max_len=32)
    if not raw:
        return default
    found = table.get(_spelling(raw))
    if found is None:
        names = list(dict.fromkeys(table.values()))
        raise ValidationFailed(key, f"unknown value (expected {'/'.join(names)})")
    return found


def _status(cells: dict[str, object], service_type: str) -> tuple[str, list[str]]:
    raw = tabular.text(cells, "status", max_len=16, required=True)
    if _spelling(raw) in _OPEN_LATER:
        raise ValidationFailed(
            "status", f"{raw} is an open status: only closed orders (已完成/已回访/已取消/已取) or "
                      "not yet started ones (待处理/待修) are imported")
    status = _choice(cells, "status", STATUSES, None)
    assert status is not None
    notes = []
    if status == START:
        status = states.initial_status(service_type)
    elif service_type == states.CARRY_IN and status == states.DONE:
        status = states.COLLECTED
        notes.append(f"{raw} of a 送修 order imported as 已取")
    if status not in states.statuses(service_type):
        raise ValidationFailed("status", f"{status} is not a status of {service_type} orders")
    return status, notes


def _fees(cells: dict[str, object]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for key in FEES:
        fen = tabular.parse_fen(tabular.cell_text(cells.get(f"{key}_fen")), f"{key}_fen", in_fen=True)
        out[key] = fen if fen is not None else tabular.parse_fen(cells.get(key), key, in_fen=False)
    return out


def parse_row(row: int, cells: dict[str, object], *, local_area_code: str, tz: Any,
              now: dt.datetime) -> OrderRow:
    """Check one row (pure; ``now`` aware bounds the dates); raises ValidationFailed naming the
    column, never repeating a full phone number."""
    cells = tabular.excel_dates(cells, ("created", "completed", "purchase_date"))
    notes: list[str] = []
    created = tabular.parse_datetime(cells.get("created"), "created", tz, now=now, required=True)
    assert created is not None
    completed = tabular.parse_datetime(cells.get("completed"), "completed", tz, now=now)
    if completed is not None and completed < created:
        raise ValidationFailed("completed", "before the created time")
    service_type = _choice(cells, "service_type", SERVICE_TYPES, states.ONSITE_REPAIR)
    assert service_type is not None
    status, status_notes = _status(cells, service_type)
    notes += status_notes
    fees = _fees(cells)
    parts = {k: fees[k] for k in ("visit_fee", "labour_fee", "parts_fee")}
    total = fees["total_fee"]
    if total is not None and any(v is not None for v in parts.values()):
        if total != sum(v or 0 for v in parts.values()):
            raise ValidationFailed("total_fee", "does not equal 上门费 + 工时费 + 配件费")
        total = None
    charged = Fees(parts["visit_fee"] or 0, (parts["labour_fee"] or 0) + (total or 0), parts["parts_fee"] or 0)
    if total:
        notes.append("合计 without a breakdown recorded as 工时费")
    done = status in DONE_STATUSES
    if charged.total and not done:
        notes.append("fees ignored: the order was not completed")
        charged = Fees()
    if done and completed is None:
        notes.append("no completed time")
    staff_no = tabular.text(cells, "engineer", max_len=16)
    if staff_no and status == states.initial_status(service_type):
        notes.append("engineer not carried over: the order starts over here")
        staff_no = ""
    old = tabular.text(cells, "order_no", max_len=32)
    return OrderRow(
        row=row, old_number=old, created=created,
        completed=completed if done else None,
        phones=tabular.parse_phones(cells, local_area_code),
        name=tabular.text(cells, "name", max_len=64),
        address=validation.address({k: tabular.cell_text(cells.get(k)) or "" for k in tabular.ADDRESS_FIELDS},
                                   "address"),
        appliance=parse_appliance(cells, now.astimezone(tz).date())
        if tabular.has_any(cells, tabular.APPLIANCE_FIELDS) else None,
        service_type=service_type, status=status,
        urgency=_choice(cells, "urgency", URGENCIES, "普通") or "普通",
        warranty=_choice(cells, "warranty_kind", WARRANTIES, None),
        problem=tabular.text(cells, "problem", max_len=2000, multiline=True),
        staff_no=staff_no,
        cause=tabular.text(cells, "cause", max_len=2000, multiline=True) if done else "",
        solution=tabular.text(cells, "solution", max_len=2000, multiline=True) if done else "",
        cancel_reason=(tabular.text(cells, "cancel_reason", max_len=500, multiline=True)
                       or DEFAULT_CANCEL_REASON) if status == states.CANCELLED else "",
        fees=charged, notes=tuple(notes),
    )


@dataclass
class OrderImportReport(tabular.Report):
    KIND = "orders"
    COUNTS = (("loaded", "导入工单"), ("skipped", "已导入跳过"), ("customers_created", "新建客户"),
              ("appliances_added", "新增家电"), ("onsite_records", "上门记录"))

    loaded: int = 0  # orders created
    skipped: int = 0  # already imported (same old number, or customer + created + model)
    customers_created: int = 0
    appliances_added: int = 0
    onsite_records: int = 0


# ---------------------------------------------------------------------------------------------
# Saving


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def _imported_keys(session: AsyncSession, customer_ids: set[int]) -> set[tuple[Any, ...]]:
    """The keys (:meth:`OrderRow.key`) of the orders already imported for these customers."""
    keys: set[tuple[Any, ...]] = set()
    for chunk in matching.chunks(sorted(customer_ids)):
        rows = await session.execute(
            select(WorkOrder.customer_id, WorkOrder.created_at, WorkOrder.product_model, OrderEvent.note)
            .outerjoin(OrderEvent, (OrderEvent.order_id == WorkOrder.id) & (OrderEvent.action == EVENT))
            .where(WorkOrder.source == SOURCE, WorkOrder.customer_id.in_(chunk)))
        for cid, created, model, note in rows:
            keys.add(("nat", cid, _utc(created), model.strip().lower()))
            if note and note.startswith(LEGACY_NOTE):
                keys.add(("old", note[len(LEGACY_NOTE):]))
    return keys


async def _numbers_taken(session: AsyncSession, numbers: list[str]) -> dict[str, str]:
    """Number → the source of the order holding it."""
    out: dict[str, str] = {}
    for chunk in matching.chunks(sorted(set(numbers))):
        out.update((await session.execute(
            select(WorkOrder.number, WorkOrder.source).where(WorkOrder.number.in_(chunk)))).all())
    return out


async def raise_counter(session: AsyncSession, prefix: str, day: str, serial: int) -> None:
    """Make the counter of ``prefix``/``day`` at least ``serial`` (locks its row till commit)."""
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(NumberCounter).values(prefix=prefix, day=day, last=serial)
        .on_conflict_do_update(index_elements=["prefix", "day"], set_={
            "last": case((NumberCounter.last < serial, serial), else_=NumberCounter.last)}))


class _Batch:
    """One batch's lookups and writes (a fresh one per transaction)."""

    def __init__(self, session: AsyncSession, report: OrderImportReport, *, settings: Settings,
                 vault: PhoneVault, engineers: dict[str, int], now: dt.datetime,
                 actor_id: int | None) -> None:
        self.s, self.report, self.settings, self.vault = session, report, settings, vault
        self.engineers, self.now, self.actor_id = engineers, now, actor_id
        self.dry_run = report.dry_run

    async def save(self, rows: list[OrderRow]) -> None:
        s = self.s
        self.owners = await matching.customers_by_number(s, self.vault, (p.number for r in rows for p in r.phones))
        cids = set(self.owners.values())
        self.appliances = await matching.appliances_of(s, cids)
        self.addresses = await matching.addresses_of(s, cids)
        self.done = await _imported_keys(s, cids)
        self.taken = await _numbers_taken(s, [r.old_number for r in rows if r.old_number])
        for r in rows:
            await self.row(r)

    def note(self, r: OrderRow, text: str) -> None:
        self.report.notes.append((r.row, text))

    async def row(self, r: OrderRow) -> None:
        cids = matching.owner_of(r.phones, self.owners)
        if len(cids) > 1:
            self.report.rejected.append((r.row, TWO_CUSTOMERS))
            return
        cid = cids.pop() if cids else None
        if cid is None and not r.name:
            why = f"no customer with this number ({tabular.masked_numbers(r.phones)})"
            self.report.rejected.append((r.row, f"name: required to create the customer: {why}"))
            return
        keep, why = await self._kept_number(r) if r.old_number else (None, "")
        if r.old_number:  # the old number is the key, whichever customer the row names
            duplicate = (r.key(0) in self.done or self.taken.get(r.old_number) == SOURCE)
        else:
            duplicate = cid is not None and r.key(cid) in self.done
        if duplicate:
            self.report.skipped += 1
            return
        # Nothing is written for this row before this point (but a raised counter: harmless).
        if cid is None:
            cid = await self._new_customer(r)
        appliance = await self._appliance(cid, r)
        address_id = await self._address(cid, r)
        engineer_id = self._engineer(r)
        warranty = r.warranty or self._warranty(r, appliance)
        if self.dry_run:
            number = keep or f"~WO{r.row}"
        else:
            number = keep or await next_number(self.s, "WO", r.created, self.settings.tz)
        if why:
            self.note(r, f"原单号未沿用：{why}；" + ("导入时生成新单号 (a new number is drawn on import)"
                                               if self.dry_run else f"新单号 {number} (new number)"))
        for text in r.notes:
            self.note(r, text)
        order_id = await self._order(r, cid, number, appliance, address_id, engineer_id, warranty)
        if r.done and (r.cause or r.solution or r.fees.total):
            await self._onsite(r, order_id, engineer_id, appliance, warranty)
        self.done.add(r.key(cid))
        self.taken.setdefault(number, SOURCE)
        self.report.loaded += 1

    async def _kept_number(self, r: OrderRow) -> tuple[str | None, str]:
        """(the old number if it can stay the order's number, else None and why; module text)."""
        policy = number_policy(r.old_number)
        if isinstance(policy, str):
            return None, f"old number {policy}"
        if policy.serial is not None and not self.dry_run:
            # Lock the day's counter first: any agent's order for that day is committed by now.
            await raise_counter(self.s, "WO", policy.day or "", policy.serial)
            self.taken.update(await _numbers_taken(self.s, [policy.number]))
        if policy.number in self.taken:
            return None, "old number taken by another order"
        return policy.number, ""

    async def _new_customer(self, r: OrderRow) -> int:
        cid = await matching.add_customer(self.s, self.vault, name=r.name, phones=r.phones,
                                          created_at=self.now)
        self.owners.update({p.number: cid for p in r.phones})
        self.report.customers_created += 1
        return cid

    async def _appliance(self, cid: int, r: OrderRow) -> matching.StoredAppliance | None:
        if r.appliance is None:
            return None
        theirs = self.appliances.setdefault(cid, [])
        found = matching.match_appliance(theirs, r.appliance)
        if found is None:
            found = await matching.add_appliance(self.s, cid, r.appliance)
            theirs.append(found)
            self.report.appliances_added += 1
        return found

    async def _address(self, cid: int, r: OrderRow) -> int | None:
        theirs = self.addresses.setdefault(cid, [])
        if r.address is None:
            return theirs[0].id if len(theirs) == 1 else None
        parts = matching.address_parts(r.address)
        found = next((a for a in theirs if a.parts == parts), None)
        if found is None:
            found = await matching.add_address(self.s, cid, r.address)
            theirs.append(found)
        return found.id

    def _engineer(self, r: OrderRow) -> int | None:
        if not r.staff_no:
            return None
        found = self.engineers.get(r.staff_no.upper())
        if found is None:
            self.note(r, f"工程师工号 {r.staff_no} 未找到，工程师留空 (engineer not found, left empty)")
        return found

    def _warranty(self, r: OrderRow, appliance: matching.StoredAppliance | None) -> str:
        """From the appliance on file (its purchase date and warranty months are the record's),
        on the order's created day."""
        day = r.created.astimezone(self.settings.tz).date()
        if appliance is None:
            return warranty_kind(warranty_status(None, None, day))
        purchased = appliance.purchase_date or (r.appliance.purchase_date if r.appliance else None)
        return warranty_kind(warranty_status(purchased, appliance.warranty_months, day))

    async def _order(self, r: OrderRow, cid: int, number: str, appliance: matching.StoredAppliance | None,
                     address_id: int | None, engineer_id: int | None, warranty: str) -> int:
        a = r.appliance
        last = r.completed or r.created
        order_id = await matching.insert_id(self.s, WorkOrder.__table__, {
            "number": number,
            "customer_id": cid, "appliance_id": appliance.id if appliance else None,
            "intake_id": None, "address_id": address_id, "call_linkedid": "", "source": SOURCE,
            "product_model": a.model if a else "",
            "serial": (a.serial or (appliance.serial if appliance else "")) if a else "",
            "warranty": warranty, "service_type": r.service_type, "status": r.status,
            "urgency": r.urgency, "problem": r.problem, "engineer_id": engineer_id,
            "cancel_reason": r.cancel_reason, "created_by": self.actor_id, "created_at": r.created,
            "updated_at": last, "completed_at": r.completed, "version": 1})
        note = LEGACY_NOTE + legacy_key(r.old_number) if r.old_number else PLAIN_NOTE
        await matching.insert_id(self.s, OrderEvent.__table__, {
            "order_id": order_id, "at": r.created, "user_id": self.actor_id, "action": EVENT,
            "from_status": "", "to_status": r.status, "note": note})
        return order_id

    async def _onsite(self, r: OrderRow, order_id: int, engineer_id: int | None,
                      appliance: matching.StoredAppliance | None, warranty: str) -> None:
        at = r.completed or r.created
        fees = r.fees
        items = [{"price_item_id": None, "kind": kind, "name": f"{kind}（旧系统）", "amount_fen": fen,
                  "quantity": 1} for kind, fen in ((VISIT_FEE, fees.visit), (LABOUR, fees.labour)) if fen]
        number = (f"~OS{r.row}" if self.dry_run else await next_number(self.s, "OS", at, self.settings.tz))
        a = r.appliance
        await matching.insert_id(self.s, OnsiteRecord.__table__, {
            "number": number, "order_id": order_id, "engineer_id": engineer_id,
            "started_at": None, "ended_at": r.completed,
            "product_model": a.model if a else "", "serial": a.serial if a else "",
            "fault_observed": "", "root_cause": r.cause, "solution": r.solution, "test_result": "",
            "customer_feedback": "", "in_warranty": is_free(warranty) and fees.total == 0,
            "category": a.category if a else "", "fee_items": items,
            "visit_fee_fen": fees.visit, "labour_fee_fen": fees.labour,
            "parts_total_fen": fees.parts, "total_fen": fees.total, "customer_confirmed": True,
            "customer_signature": "", "engineer_signature": "", "signed_at": at, "created_at": at,
            "updated_at": None, "version": 1})
        self.report.onsite_records += 1


async def _engineers(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Staff number (upper-cased) → user id, for every user that has one."""
    async with sessionmaker() as s:
        rows = await s.execute(select(func.upper(User.staff_no), User.id).where(User.staff_no.is_not(None)))
        return dict(rows.all())


async def import_orders(sessionmaker: async_sessionmaker[AsyncSession], path: Path | str,
                        settings: Settings, *, vault: PhoneVault | None = None,
                        now: dt.datetime | None = None, batch_rows: int = tabular.BATCH_ROWS,
                        dry_run: bool = False, actor_id: int | None = None,
                        via: str = "") -> OrderImportReport:
    """Import past work orders from ``path`` (CSV or XLSX; module text).

    ``now`` (aware; default the current time) bounds the dates and stamps new customers.
    ``vault``: the phone keys (default ``settings.phone_vault()``). ``dry_run``: report what
    would happen (numbers are not drawn), save nothing. ``actor_id`` / ``via``: who imports, for
    the orders' ``created_by``, their timeline and the audit log. Cancelled: the batch being
    saved is rolled back; earlier batches stay."""
    now = now or dt.datetime.now(dt.UTC)
    vault = vault or settings.phone_vault()
    engineers = await _engineers(sessionmaker)
    source = tabular.Source(COLUMNS, REQUIRED, functools.partial(
        parse_row, local_area_code=settings.local_area_code, tz=settings.tz, now=now))

    async def save(session: AsyncSession, rows: list[OrderRow], report: OrderImportReport) -> None:
        await _Batch(session, report, settings=settings, vault=vault, engineers=engineers,
                     now=now.astimezone(dt.UTC), actor_id=actor_id).save(rows)

    return await tabular.run_import(sessionmaker, Path(path), source, save,
                                    OrderImportReport(dry_run=dry_run), now=now,
                                    batch_rows=batch_rows, actor_id=actor_id, via=via)


__all__ = ["COLUMNS", "OrderImportReport", "OrderRow", "import_orders", "number_policy", "parse_row"]
