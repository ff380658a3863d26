"""Import of past work orders and of appliances (CSV UTF-8/GBK, XLSX) into SQLite and PostgreSQL:
every rejection reason, idempotency, number collisions, engineers, OS records and fees, the HTTP
upload (admins only, audited) and the privacy scan of reports and logs."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys

import aiohttp
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select, update

from callcenter.appkeys import AUTH, SESSIONMAKER
from callcenter.auth.identity import CurrentUser
from callcenter.customers.services import CustomerService
from callcenter.db.models import (
    Appliance,
    AuditEntry,
    Customer,
    NumberCounter,
    OnsiteRecord,
    OrderEvent,
    User,
    WorkOrder,
)
from callcenter.imports.appliances import import_appliances
from callcenter.orders.importer import import_orders, number_policy, parse_row
from callcenter.orders.numbering import next_number
from callcenter.parts.views import record_json
from callcenter.settings import Settings
from tests import apphelpers as h
from tests.privacy_scan import LogScan, ScanningClient, assert_no_personal

NOW = dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
SECRETS = ["张三丰", "李四光", "王五郎", "科技园路8号", "建国路8号", "88886666"]

HEADER = ["工单号", "创建时间", "电话", "姓名", "省", "市", "区", "详细地址", "品类", "品牌", "型号", "序列号",
          "购买日期", "服务类型", "状态", "紧急程度", "故障描述", "工程师工号", "完成时间", "故障原因", "解决方案",
          "上门费", "工时费", "配件费", "合计"]
E = ""


def row(no=E, created="2024-05-20 09:00", phone="13800138000", name=E, addr=(E, E, E, E),
        appliance=(E, E, E, E, E), stype="上门维修", status="已完成", urgency=E, problem="不制冷",
        staff=E, completed=E, cause=E, solution=E, fees=(E, E, E, E)):
    return [no, created, phone, name, *addr, *appliance, stype, status, urgency, problem, staff, completed,
            cause, solution, *fees]


AC = ("空调", "格力", "KFR-35GW", "AC1", "2023-05-01")
ROWS = [
    # 2: known customer, appliance matched by serial, engineer matched, OS record with yuan fees.
    row("SH-0001", "2024-05-20 09:30", appliance=AC, urgency="紧急", staff="gy2024001",
        completed="2024-05-21 15:00", cause="电容容量为0", solution="更换电容", fees=("50.00", "80.5", "35", "165.50")),
    # 3: new customer 李四光 (address), a new appliance, our number format kept, engineer unknown.
    row("WO20240520-005", "2024-05-20 11:00", "13900001111", "李四光", ("北京市", "北京市", "朝阳区", "建国路8号"),
        ("冰箱", "海尔", "BCD-470", E, "2024/1/10"), "维修", "完成", staff="GY9999999",
        completed="2024-05-20 16:00"),
    # 4: our format but taken by a live order: a new number for that day.
    row("WO20240520-001", "2024-05-20 12:00", stype="安装", status="已取消"),
    # 5: no old number (natural key), 已回访, OS record.
    row(E, "2024/5/21 08:00", appliance=AC, status="已回访", completed="2024-05-21 10:00", cause="滤网堵",
        solution="清洗滤网"),
    # 6: an old number that is a phone number: not kept; open 待处理 accepted, engineer dropped.
    row("13700001111", "2024-05-22 09:00", "13700001111", "王五郎", status="待派单", staff="GY2024001"),
    # Rejections.
    row("R7", phone="13600001111"),                                    # 7 unknown, no name
    row("R8", status="服务中"),                                         # 8 open status
    row("R9", status="好了"),                                           # 9 unknown status
    row("R10", created=E),                                              # 10 no created time
    row("R11", created="2030-01-01 08:00"),                             # 11 future
    row("R12", completed="2024-05-19 08:00"),                           # 12 completed < created
    row("R13", phone="1380013800"),                                     # 13 bad number
    row("R14", phone=E),                                                # 14 no number
    row("R15", phone="13800138000;13900001111"),                        # 15 two customers
    row("R16", fees=("12.345", E, E, E)),                               # 16 three decimals
    row("R17", fees=("10", "20", E, "31")),                             # 17 total ≠ sum
    row("R18", appliance=("洗衣机", E, E, E, E)),                       # 18 appliance without model
    row("R19", status="已取"),                                          # 19 carry-in status on-site
    row("R20", stype="上天"),                                           # 20 unknown service type
    # 21: the same order as row 2 again: skipped.
    row("SH-0001", "2024-05-20 09:30", appliance=AC, completed="2024-05-21 15:00"),
]
REJECTED = {
    7: "name: required to create the customer: no customer with this number (136****1111)",
    8: "status: 服务中 is an open status: only closed orders (已完成/已回访/已取消/已取) or not yet started "
       "ones (待处理/待修) are imported",
    9: "status: unknown value",
    10: "created: required",
    11: "created: in the future",
    12: "completed: before the created time",
    13: "phone[0]: ",
    14: "phone: no phone number",
    15: "phone: numbers belong to different customers",
    16: "visit_fee: at most two decimals",
    17: "total_fee: does not equal 上门费 + 工时费 + 配件费",
    18: "appliance.model: required",
    19: "status: 已取 is not a status of 上门维修 orders",
    20: "service_type: unknown value",
}


@pytest.fixture
def settings() -> Settings:
    return h.keyed_settings()


def write_csv(path, rows, encoding="utf-8", header=HEADER):
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


async def _count(sm, table, *where) -> int:
    async with sm() as s:
        return (await s.execute(select(func.count()).select_from(table).where(*where))).scalar_one()


async def seed(sm, settings: Settings) -> dict[str, int]:
    """张三丰 (13800138000) with his air-conditioner, an engineer GY2024001, and one live order
    WO20240520-001 numbered by the counter."""
    from callcenter.auth.services import AuthService

    auth = AuthService(sm, ttl_s=3600)
    admin = await auth.add_user("admin1", role="admin", password=h.PASSWORD)
    engineer = await auth.add_user("eng1", role="engineer", password=h.PASSWORD)
    actor = CurrentUser(id=admin.id, username="admin1", role="admin")
    zhang = await CustomerService(sm, settings).create({
        "name": "张三丰", "phones": ["13800138000"],
        "address": {"province": "广东省", "city": "深圳市", "district": "南山区", "detail": "科技园路8号"},
        "appliances": [{"category": "空调", "brand": "格力", "model": "KFR-35GW", "serial": "AC1",
                        "purchase_date": "2023-05-01", "warranty_months": 36}]}, actor, now=NOW)
    async with sm.begin() as s:
        await s.execute(update(User).where(User.id == engineer.id).values(staff_no="GY2024001"))
        live = dt.datetime(2024, 5, 20, 1, 0, tzinfo=dt.UTC)
        s.add(WorkOrder(number=await next_number(s, "WO", live, settings.tz), customer_id=zhang.id,
                        created_at=live, status="待处理", source="hotline"))
    return {"admin": admin.id, "engineer": engineer.id, "zhang": zhang.id}


async def orders_by_number(sm) -> dict[str, WorkOrder]:
    async with sm() as s:
        return {o.number: o for o in (await s.execute(select(WorkOrder))).scalars()}


def check_report(report, *, first: bool = True) -> None:
    reasons = dict(report.rejected)
    assert sorted(reasons) == sorted(REJECTED), report.rejected
    for number, reason in REJECTED.items():
        assert reasons[number].startswith(reason), (number, reasons[number])
    assert "(****3800)" in reasons[13]
    text = json.dumps(report.to_json(), ensure_ascii=False) + "\n".join(report.lines())
    assert_no_personal(text, where="the report", secrets=SECRETS)
    if first:
        assert report.counts() == {"loaded": 5, "skipped": 1, "customers_created": 2,
                                   "appliances_added": 1, "onsite_records": 2}, report
    else:
        assert report.counts() == {"loaded": 0, "skipped": 6, "customers_created": 0,
                                   "appliances_added": 0, "onsite_records": 0}, report


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
async def test_import_orders_csv(tmp_path, sessionmaker, settings, encoding) -> None:
    ids = await seed(sessionmaker, settings)
    path = write_csv(tmp_path / "orders.csv", ROWS, encoding)
    with LogScan(secrets=SECRETS) as logs:
        report = await import_orders(sessionmaker, path, settings, now=NOW, actor_id=ids["admin"], via="cli")
    assert logs.lines  # the summary line was logged, and scanned
    check_report(report)
    notes = dict(report.notes)
    assert "GY9999999" in notes[3] and "engineer not found" in notes[3]
    assert "taken by another order" in notes[4] and "WO20240520-006" in notes[4]
    assert any("holds a phone number" in n for r, n in report.notes if r == 6)
    assert any("engineer not carried over" in n for r, n in report.notes if r == 6)

    orders = await orders_by_number(sessionmaker)
    # Kept: the old system's SH-0001 and our WO20240520-005; renumbered for their created days.
    assert set(orders) == {"WO20240520-001", "SH-0001", "WO20240520-005", "WO20240520-006",
                           "WO20240521-001", "WO20240522-001"}
    sh = orders["SH-0001"]
    assert (sh.source, sh.status, sh.urgency, sh.service_type, sh.warranty) == ("import", "已完成", "紧急", "上门维修", "保内")
    assert sh.engineer_id == ids["engineer"] and sh.customer_id == ids["zhang"]
    assert sh.created_at.replace(tzinfo=dt.UTC) == dt.datetime(2024, 5, 20, 1, 30, tzinfo=dt.UTC)
    assert sh.completed_at.replace(tzinfo=dt.UTC) == dt.datetime(2024, 5, 21, 7, 0, tzinfo=dt.UTC)
    assert sh.created_by == ids["admin"] and sh.address_id is not None
    li = orders["WO20240520-005"]
    assert li.engineer_id is None and li.status == "已完成" and li.product_model == "BCD-470"
    assert orders["WO20240520-006"].status == "已取消" and orders["WO20240520-006"].cancel_reason
    assert orders["WO20240521-001"].status == "已回访"
    wang = orders["WO20240522-001"]
    assert (wang.status, wang.engineer_id, wang.completed_at) == ("待处理", None, None)

    async with sessionmaker() as s:
        records = {r.order_id: r for r in (await s.execute(select(OnsiteRecord))).scalars()}
        counters = dict((await s.execute(select(NumberCounter.day, NumberCounter.last)
                                          .where(NumberCounter.prefix == "WO"))).all())
        event = (await s.execute(select(OrderEvent).where(OrderEvent.order_id == wang.id))).scalar_one()
        appliance_ids = (await s.execute(select(Appliance.id).where(Appliance.customer_id == ids["zhang"]))).scalars().all()
    assert event.action == "imported" and event.note == "旧系统导入，原单号 137****1111"
    assert set(records) == {sh.id, orders["WO20240521-001"].id}
    os1 = records[sh.id]
    assert os1.number == "OS20240521-001" and records[orders["WO20240521-001"].id].number == "OS20240521-002"
    assert (os1.root_cause, os1.solution, os1.engineer_id) == ("电容容量为0", "更换电容", ids["engineer"])
    assert (os1.visit_fee_fen, os1.labour_fee_fen, os1.parts_total_fen, os1.total_fen) == (5000, 8050, 3500, 16550)
    assert os1.in_warranty is False and os1.customer_confirmed and os1.signed_at is not None
    assert [(f["kind"], f["amount_fen"]) for f in os1.fee_items] == [("上门费", 5000), ("工时费", 8050)]
    # The record as every screen shows it: the old system's parts amount counts without lines.
    async with sessionmaker() as s:
        shown = await record_json(s, os1, await s.get(WorkOrder, sh.id))
    assert shown["totals"]["parts_fen"] == 3500 and shown["totals"]["total_fen"] == 16550
    assert records[orders["WO20240521-001"].id].in_warranty is True  # 保内 and nothing charged
    assert sh.appliance_id == appliance_ids[0] and len(appliance_ids) == 1  # matched by serial
    # The day's counter was raised past the kept serial: the next live order does not collide.
    assert counters["20240520"] == 6
    async with sessionmaker.begin() as s:
        assert await next_number(s, "WO", dt.datetime(2024, 5, 20, 8, tzinfo=dt.UTC), settings.tz) == "WO20240520-007"
    assert await _count(sessionmaker, Customer) == 3

    again = await import_orders(sessionmaker, path, settings, now=NOW)
    check_report(again, first=False)
    assert len(await orders_by_number(sessionmaker)) == 6
    assert await _count(sessionmaker, OnsiteRecord) == 2 and await _count(sessionmaker, Customer) == 3


async def test_dry_run_reports_and_saves_nothing(tmp_path, sessionmaker, settings) -> None:
    await seed(sessionmaker, settings)
    path = write_csv(tmp_path / "orders.csv", ROWS)
    report = await import_orders(sessionmaker, path, settings, now=NOW, dry_run=True)
    check_report(report)
    assert report.dry_run and "dry run" in report.summary()
    assert any("drawn on import" in n for _, n in report.notes)
    assert await _count(sessionmaker, WorkOrder) == 1 and await _count(sessionmaker, Customer) == 1
    async with sessionmaker() as s:
        assert (await s.execute(select(func.max(NumberCounter.last)))).scalar_one() == 1
        done = (await s.execute(select(AuditEntry).where(AuditEntry.action == "import.done"))).scalar_one()
    assert done.detail["dry_run"] is True and done.detail["loaded"] == 5
    real = await import_orders(sessionmaker, path, settings, now=NOW)
    assert real.counts() == report.counts() and real.rejected == report.rejected


async def test_xlsx_english_headers_excel_dates_and_fen(tmp_path, sessionmaker, settings) -> None:
    await seed(sessionmaker, settings)
    book = Workbook()
    sheet = book.active
    sheet.append(["Order No", "Created", "Phone", "Name", "Model", "Serial", "Purchase date", "Service type",
                  "Status", "Completed", "Cause", "Solution", "visit_fee_fen", "labour_fee_fen", "Total"])
    # Created as a datetime cell; completed as an Excel serial that lost its date format.
    serial = (dt.datetime(2024, 5, 21, 14, 30) - dt.datetime(1899, 12, 30)).total_seconds() / 86400
    sheet.append(["OLD/77", dt.datetime(2024, 5, 21, 9, 0), 13800138000, None, "KFR-35GW", "AC1", None,
                  "repair", "done", serial, "缺氟", "加氟", 3000, 12000, None])
    sheet.append(["OLD/78", dt.datetime(2024, 5, 21, 9, 0), 13800138000.0, None, "KFR-26GW", None,
                  dt.datetime(2024, 1, 2), "送修", "完成", serial, "主板坏", "换主板", None, None, "99.9"])
    sheet.append([None] * 15)
    sheet.append(["OLD/79", "yesterday", 13800138000, None, None, None, None, None, "done", None, None, None,
                  None, None, None])
    path = tmp_path / "orders.xlsx"
    book.save(path)
    report = await import_orders(sessionmaker, path, settings, now=NOW)
    assert (report.loaded, report.appliances_added, report.onsite_records) == (2, 1, 2), report
    assert report.rejected == [(5, "created: not a date and time (expected YYYY-MM-DD HH:MM)")]
    assert any(r == 3 and "已取" in n for r, n in report.notes)  # 完成 of a carry-in order → 已取
    assert any(r == 3 and "工时费" in n for r, n in report.notes)  # a total alone → labour
    orders = await orders_by_number(sessionmaker)
    async with sessionmaker() as s:
        records = {r.order_id: r for r in (await s.execute(select(OnsiteRecord))).scalars()}
    first, second = orders["OLD/77"], orders["OLD/78"]
    assert first.completed_at.replace(tzinfo=dt.UTC) == dt.datetime(2024, 5, 21, 6, 30, tzinfo=dt.UTC)
    assert (records[first.id].visit_fee_fen, records[first.id].labour_fee_fen, records[first.id].total_fen) == (3000, 12000, 15000)
    assert second.service_type == "送修" and second.status == "已取" and second.warranty == "保内"
    assert records[second.id].labour_fee_fen == 9990 and records[second.id].in_warranty is False


def test_number_policy() -> None:
    assert number_policy("WO20240520-005").serial == 5
    assert number_policy("SH-2023/001#2").number == "SH-2023/001#2"
    for bad, why in [("WO20241340-001", "date"), ("OS20240520-001", "this system"), ("WO2024-1", "this system"),
                     ("86-13800138000", "phone"), ("工单1", "letters"), ("x", "letters")]:
        assert why in number_policy(bad), bad


def test_parse_row_is_pure() -> None:
    r = parse_row(2, {"phone": "13800138000", "created": "2024-05-20", "status": "作废", "order_no": "A1"},
                  local_area_code="", tz=h.keyed_settings().tz, now=NOW)
    assert (r.status, r.cancel_reason, r.old_number) == ("已取消", "旧系统已取消（导入）", "A1")
    assert r.created == dt.datetime(2024, 5, 19, 16, 0, tzinfo=dt.UTC)  # midnight in Shanghai


async def test_missing_columns_reject_the_file(tmp_path, sessionmaker, settings) -> None:
    path = write_csv(tmp_path / "bad.csv", [["13800138000"]], header=["电话"])
    report = await import_orders(sessionmaker, path, settings, now=NOW)
    assert report.rejected == [(1, "header: missing column created/创建时间, status/状态")]


# --- appliances ------------------------------------------------------------------------------


async def test_import_appliances(tmp_path, sessionmaker, settings) -> None:
    ids = await seed(sessionmaker, settings)
    header = ["电话", "品类", "品牌", "型号", "序列号", "购买日期", "保修月数"]
    rows = [["13800138000", "冰箱", "海尔", "BCD-470", "FR9", "2024-01-10", "24"],   # 2 added
            ["+86 138 0013 8000", "空调", "格力", "KFR-35GW", "ac1", "", ""],       # 3 has it (serial)
            ["13800138000", "热水器", "A", "M1", "", "2024-02-01", ""],             # 4 added
            ["13800138000", "热水器", "A", "m1", "", "2024/2/1", ""],               # 5 same model+date
            ["13600001111", "冰箱", "海尔", "BCD", "", "", ""],                     # 6 unknown customer
            ["13800138000", "冰箱", "海尔", "", "", "", ""],                        # 7 no model
            ["13800138000", "冰箱", "海尔", "X", "", "2024-02-30", ""]]             # 8 bad date
    path = write_csv(tmp_path / "appliances.csv", rows, "gbk", header)
    with LogScan(secrets=SECRETS):
        report = await import_appliances(sessionmaker, path, settings, now=NOW)
    assert (report.loaded, report.skipped) == (2, 2), report
    reasons = dict(report.rejected)
    assert reasons == {6: "phone: no customer with this number (136****1111)", 7: "appliance.model: required",
                       8: reasons[8]} and reasons[8].startswith("appliance.purchase_date")
    assert_no_personal(json.dumps(report.to_json(), ensure_ascii=False), secrets=SECRETS)
    assert await _count(sessionmaker, Appliance, Appliance.customer_id == ids["zhang"]) == 3
    again = await import_appliances(sessionmaker, path, settings, now=NOW)
    assert (again.loaded, again.skipped, len(again.rejected)) == (0, 4, 3)
    assert await _count(sessionmaker, Appliance) == 3


# --- HTTP upload and CLI ---------------------------------------------------------------------


async def _login(client, username: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    r = await session.post(client.make_url("/api/session"), json={"username": username, "password": h.PASSWORD})
    assert r.status == 200, await r.text()
    return session


def _form(path, name=None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", path.read_bytes(), filename=name or path.name, content_type="text/csv")
    return form


async def test_http_upload(tmp_path, db_url, aiohttp_client) -> None:
    client = await h.start(aiohttp_client, h.settings_for(db_url, 1))
    app = client.server.app
    sm = app[SESSIONMAKER]
    await app[AUTH].add_user("boss", role="admin", password=h.PASSWORD)
    await app[AUTH].add_user("sup", role="supervisor", password=h.PASSWORD)
    path = write_csv(tmp_path / "orders.csv", ROWS)
    sessions = {u: await _login(client, u) for u in ("boss", "sup")}
    try:
        with LogScan(secrets=SECRETS) as logs:
            sup = ScanningClient(client, session=sessions["sup"], secrets=SECRETS)
            r = await sup.post("/api/imports/orders", data=_form(path))
            assert r.status == 403
            api = ScanningClient(client, session=sessions["boss"], secrets=SECRETS)
            r = await api.post("/api/imports/orders?dry_run=true", data=_form(path))
            assert r.status == 200, await r.text()
            body = await r.json()
            # No 张三丰 on file here: rows 2, 4, 5, 21 name nobody; 3, 6 and 15 (李四光's number) load.
            assert body["dry_run"] is True and body["counts"]["loaded"] == 3
            assert await _count(sm, WorkOrder) == 0
            r = await api.post("/api/imports/orders", data=_form(path))
            body = await r.json()
            assert r.status == 200 and body["kind"] == "orders" and body["counts"]["loaded"] == 3
            assert {x["row"] for x in body["rejected"]} >= {7, 8, 9}
            assert await _count(sm, WorkOrder, WorkOrder.source == "import") == 3
            r = await api.post("/api/imports/appliances", data=_form(write_csv(
                tmp_path / "a.csv", [["13900001111", "空调", "美的", "KFR-50", "M9", "", ""]],
                header=["电话", "品类", "品牌", "型号", "序列号", "购买日期", "保修月数"])))
            assert r.status == 200 and (await r.json())["counts"] == {"loaded": 1, "skipped": 0}
            r = await api.post("/api/imports/customers", data=_form(path, "x.exe"))
            assert r.status == 422 and (await r.json())["details"]["field"] == "file"
            r = await api.post("/api/imports/stock", data=_form(path))
            assert r.status == 404
            # (Not scanned: other features' schemas carry example numbers.)
            r = await sessions["boss"].get(client.make_url("/api/openapi.json"))
            assert "/api/imports/{kind}" in (await r.json())["paths"]
        assert logs.lines
        async with sm() as s:
            entries = (await s.execute(select(AuditEntry).where(AuditEntry.entity == "import")
                                       .order_by(AuditEntry.id))).scalars().all()
        boss = entries[0].user_id
        assert [(e.action, e.detail["kind"]) for e in entries] == [
            ("import.done", "orders"), ("import", "orders"), ("import.done", "orders"),
            ("import", "appliances"), ("import.done", "appliances")]
        assert all(e.user_id == boss for e in entries) and entries[1].detail["loaded"] == 3
        assert entries[1].detail["via"] == "http"
        for e in entries:
            assert_no_personal(json.dumps(e.detail, ensure_ascii=False), secrets=SECRETS)
    finally:
        for session in sessions.values():
            await session.close()


def test_cli_import_orders_and_appliances(tmp_path) -> None:
    env = {**os.environ, "CALLCENTER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.sqlite3",
           "CALLCENTER_KEY_FILE": str(tmp_path / "callcenter.keys")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "callcenter", "import", *args], check=False, env=env,
                              capture_output=True, text=True, timeout=60)

    path = write_csv(tmp_path / "orders.csv", ROWS)
    r = cli("orders", str(path), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "loaded 3" in r.stdout and "dry run" in r.stdout and "row 8: status" in r.stdout
    r = cli("orders", str(path))
    assert "loaded 3" in r.stdout and "rejected 17" in r.stdout, r.stdout + r.stderr
    assert_no_personal(r.stdout + r.stderr, secrets=SECRETS)
    r = cli("orders", str(path))
    assert "loaded 0" in r.stdout and "skipped 3" in r.stdout
    apps = write_csv(tmp_path / "a.csv", [["13600009999", "冰箱", "海尔", "B1", "", "", ""]],
                     header=["电话", "品类", "品牌", "型号", "序列号", "购买日期", "保修月数"])
    r = cli("appliances", str(apps))
    assert r.returncode == 1 and "row 2: phone: no customer with this number (136****9999)" in r.stdout
