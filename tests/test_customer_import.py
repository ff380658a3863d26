"""Customer import from CSV (UTF-8, BOM, GBK) and XLSX into a real database."""

from __future__ import annotations

import csv
import datetime as dt
import re
import time

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from callcenter.customers.importer import ImportReport, import_customers
from callcenter.customers.services import CustomerService
from callcenter.db.engine import make_engine, make_sessionmaker, migrate
from callcenter.db.models import Address, Appliance, Customer, CustomerPhone
from callcenter.settings import Settings
from tests.apphelpers import keyed_settings

NOW = dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC)

HEADER_ZH = ["姓名", "电话", "备用电话", "省", "市", "区", "详细地址", "品类", "品牌", "型号", "序列号",
             "购买日期", "保修月数"]
ROWS = [
    ["张三", "138-0013-8000", "", "广东省", "深圳市", "南山区", "科技园1号", "空调", "格力", "KFR-35GW", "AC1",
     "2023-05-01", "36"],
    ["李四", "13900001111;010-88886666", "", "北京市", "北京市", "朝阳区", "建国路8号", "", "", "", "", "", ""],
    # Same number as 张三 (another spelling): merged, appliance added to 张三.
    ["张三", "+86 13800138000", "", "", "", "", "", "冰箱", "海尔", "BCD-470", "FR9", "2024/1/10", ""],
    # Bad number: rejected with the number masked.
    ["王五", "1380013800", "", "", "", "", "", "", "", "", "", "", ""],
    # No name.
    ["", "13700001111", "", "", "", "", "", "", "", "", "", "", ""],
    # Appliance without model.
    ["赵六", "13600001111", "", "", "", "", "", "洗衣机", "小天鹅", "", "", "", ""],
    # Bad date, bad months.
    ["钱七", "13500001111", "", "", "", "", "", "热水器", "A", "M1", "", "2024-02-30", ""],
    ["孙八", "13400001111", "", "", "", "", "", "热水器", "A", "M1", "", "", "200"],
    # Numbers of two different customers.
    ["周九", "13800138000", "13900001111", "", "", "", "", "", "", "", "", "", ""],
    # Second number new: merged into 李四, 13300001111 added to him.
    ["李四", "010 8888 6666", "13300001111", "", "", "", "", "", "", "", "", "", ""],
    # Numbers in the phone2 column only, several separators.
    ["吴十", "", "13200001111、0755-88886666", "", "", "", "", "", "", "A", "", "", ""],
]


@pytest.fixture
def settings() -> Settings:
    return keyed_settings()


def _write_csv(path, header, rows, encoding="utf-8", delimiter=","):  # noqa: ANN001, ANN202
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


async def _count(sessionmaker, table) -> int:  # noqa: ANN001
    async with sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(table))).scalar_one()


def _check_report(report: ImportReport) -> None:
    assert report.loaded == 3 and report.merged == 2, report
    assert [r for r, _ in report.rejected] == [5, 6, 7, 8, 9, 10]
    reasons = dict(report.rejected)
    assert reasons[5].startswith("phone[0]: ") and "(****3800)" in reasons[5]
    assert reasons[6] == "name: required"
    assert reasons[7] == "appliance.model: required"
    assert reasons[8].startswith("appliance.purchase_date")
    assert reasons[9].startswith("appliance.warranty_months")
    assert reasons[10] == "phone: numbers belong to different customers"
    assert not any(re.search(r"\d{7}", reason) for _, reason in report.rejected)
    assert report.summary() == "导入 3 条，合并 2 条，拒绝 6 条 / loaded 3, merged 2, rejected 6"


@pytest.mark.parametrize(("encoding", "delimiter"), [("utf-8", ","), ("utf-8-sig", ","), ("gbk", ","),
                                                     ("utf-8", "\t")])
async def test_import_csv(tmp_path, sessionmaker, settings, encoding, delimiter) -> None:
    path = _write_csv(tmp_path / "customers.csv", HEADER_ZH, ROWS, encoding, delimiter)
    report = await import_customers(sessionmaker, path, settings, now=NOW)
    _check_report(report)
    service = CustomerService(sessionmaker, settings)
    zhang = await service.find_by_number("13800138000")
    li = await service.find_by_number("13300001111")
    assert zhang is not None and li == await service.find_by_number("01088886666")
    assert await service.find_by_number("075588886666") == await service.find_by_number("13200001111")
    ctx = (await service.customer_context(zhang, now=NOW)).to_json()
    assert ctx["customer"]["name"] == "张*" and ctx["customer"]["address"] == "广东省深圳市南山区"
    models = [(a["model"], a["purchase_date"], a["warranty_months"]) for a in ctx["history"]["appliances"]]
    assert models == [("KFR-35GW", "2023-05-01", 36), ("BCD-470", "2024-01-10", 12)]
    li_ctx = (await service.customer_context(li, now=NOW)).to_json()
    assert li_ctx["customer"]["phones"] == ["139****1111", "010****6666", "133****1111"]
    assert await _count(sessionmaker, Customer) == 3
    assert await _count(sessionmaker, CustomerPhone) == 6
    assert await _count(sessionmaker, Address) == 2
    assert await _count(sessionmaker, Appliance) == 3
    async with sessionmaker() as s:  # placed at the district's centre for dispatch
        located = {r.district: (r.lat, r.lon) for r in (await s.execute(select(Address))).scalars()}
    assert located == {"南山区": (22.5330, 113.9304), "朝阳区": (39.9219, 116.4436)}

    again = await import_customers(sessionmaker, path, settings, now=NOW)
    assert (again.loaded, again.merged, len(again.rejected)) == (0, 5, 6)
    assert await _count(sessionmaker, Customer) == 3
    assert await _count(sessionmaker, CustomerPhone) == 6
    assert await _count(sessionmaker, Appliance) == 3  # nothing duplicated


async def test_import_xlsx_with_english_headers(tmp_path, sessionmaker, settings) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["Name", "Phone", "Phone 2", "Province", "City", "District", "Address", "Category",
                  "Brand", "Model", "Serial", "Purchase date", "Warranty months", "Unrelated"])
    sheet.append(["Zhang San", 13800138000, None, "Guangdong", "Shenzhen", "Nanshan", "1 Keji Rd",
                  "AC", "Gree", "KFR-35GW", "SN1", dt.datetime(2023, 5, 1), 24, "x"])
    sheet.append(["Li Si", 13900001111.0, "010-88886666", None, None, None, None, None, None, None,
                  None, None, None, None])
    sheet.append([None] * 14)  # blank row: skipped, not counted
    sheet.append(["Wang Wu", "abc", None, None, None, None, None, None, None, None, None, None, None, None])
    path = tmp_path / "customers.xlsx"
    book.save(path)
    report = await import_customers(sessionmaker, path, settings, now=NOW)
    assert (report.loaded, report.merged) == (2, 0)
    assert report.rejected == [(5, "phone[0]: not a phone number")]
    service = CustomerService(sessionmaker, settings)
    cid = await service.find_by_number("+86 138 0013 8000")
    ctx = (await service.customer_context(cid, now=NOW)).to_json()
    assert ctx["customer"]["name"] == "Z**** S**"
    assert ctx["history"]["appliances"][0]["warranty"] == {"status": "in", "expires": "2025-05-01",
                                                           "days_left": 334}


async def test_missing_columns_reject_the_file(tmp_path, sessionmaker, settings) -> None:
    path = _write_csv(tmp_path / "bad.csv", ["客户", "地址"], [["张三", "x"]])
    report = await import_customers(sessionmaker, path, settings, now=NOW)
    assert report.loaded == 0 and report.rejected == [(1, "header: missing column name/姓名, phone/电话")]
    assert await _count(sessionmaker, Customer) == 0


async def test_100k_rows_well_under_a_minute_on_sqlite(tmp_path, settings) -> None:
    rows = [[f"客户{i}", f"13{i % 10}{i:08d}", "", "广东省", "深圳市", "南山区", f"{i}号", "空调", "格力",
             f"KFR-{i % 50}", f"SN{i}", "2023-05-01", "24"] for i in range(100_000)]
    rows += [["重复", rows[0][1], "", "", "", "", "", "冰箱", "海尔", "BCD", "", "", ""]]
    path = _write_csv(tmp_path / "big.csv", HEADER_ZH, rows)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/big.sqlite3")
    await migrate(engine)
    try:
        sessionmaker = make_sessionmaker(engine)
        started = time.perf_counter()
        report = await import_customers(sessionmaker, path, settings, now=NOW)
        elapsed = time.perf_counter() - started
        assert (report.loaded, report.merged, report.rejected) == (100_000, 1, [])
        assert await _count(sessionmaker, Appliance) == 100_001
    finally:
        await engine.dispose()
    assert elapsed < 30, f"{elapsed:.1f} s"
