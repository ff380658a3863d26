"""The monthly analysis (SA-DA-006) over a seeded month, on SQLite and PostgreSQL: every figure
against the hand-computed values in ``tests/reportworld.py``, the breakdowns, the SQL problem
classes against the Python ones, the exports read back, and the API's roles and errors."""

from __future__ import annotations

import csv
import io

import aiohttp
import pytest
from aiohttp import web
from openapi_spec_validator import validate
from openpyxl import load_workbook
from sqlalchemy import text

from callcenter.analysis import metrics as m
from callcenter.analysis.export import to_csv, to_xlsx
from callcenter.analysis.http import MonthlyReportOut
from callcenter.analysis.http import routes as report_routes
from callcenter.analysis.monthly import monthly_report, problem_class_sql
from callcenter.appkeys import AUTH, ENGINE
from callcenter.settings import Settings
from callcenter.web.api import build_openapi
from tests import apphelpers as h
from tests.reportworld import (
    EXPECTED,
    EXPECTED_BRANDS,
    EXPECTED_COUNTS,
    EXPECTED_FAILURE,
    EXPECTED_QUARTERS,
    EXPECTED_TOP,
    EXPECTED_TREND,
    MONTH,
    NOW,
    seed_month,
)
from tests.services import free_port


def _approx(v):  # type: ignore[no-untyped-def]
    return None if v is None else pytest.approx(v, rel=1e-6)


async def test_every_figure_of_the_seeded_month(engine) -> None:  # type: ignore[no-untyped-def]
    staff = await seed_month(engine)
    async with engine.connect() as c:
        report = await monthly_report(c, Settings(), MONTH, NOW)
    got = report.total.figures()
    assert got == {k: _approx(v) for k, v in EXPECTED.items()}
    counts = report.total.counts()
    assert {k: counts[k] for k in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert [(p.problem, p.orders, pytest.approx(p.share)) for p in report.top_problems] == EXPECTED_TOP
    assert [(r["model"], r["repairs"], r["registered"], r["per_thousand"]) for r in report.failure_by_model] == EXPECTED_FAILURE
    assert report.quarters == EXPECTED_QUARTERS
    assert [(b["brand"], b["counts"]) for b in report.brand_quarters] == EXPECTED_BRANDS
    trend = {t["month"]: (t["repaired"], t["avg_repair_h"]) for t in report.trend}
    assert len(report.trend) == 12 and report.trend[-1]["month"] == "2026-11"
    for month, (n, avg) in EXPECTED_TREND.items():
        assert trend[month] == (n, _approx(avg))
    assert report.hints == ["一次修复率 66.7% 低于目标 90%", "返修率 40.0% 高于 5%", "回访满意率 50.0% 低于 90%"]

    # Breakdowns: by engineer (masked name + staff number), by region, by model.
    eng = {g.label: g for g in report.breakdowns["engineer"]}
    assert set(eng) == {"王** GY2026101", "李* GY2026102", "未指派工程师"}
    e1, e2 = eng["王** GY2026101"], eng["李* GY2026102"]
    assert (e1.key, e1.created, e1.completed, e1.ftf, e1.ftf_base, e1.repeats) == (str(staff["GY2026101"]), 2, 2, 2, 2, 1)
    assert e1.figures()["first_time_fix_rate"] == 1.0 and e1.figures()["avg_parts_fen"] == 7500.0
    assert e1.figures()["avg_satisfaction"] == pytest.approx(29 / 6)
    assert eng["李* GY2026102"].figures()["avg_satisfaction"] == pytest.approx(14 / 6)
    assert (e2.created, e2.completed, e2.ftf, e2.ftf_base, e2.dissatisfied, e2.complaint_fen) == (2, 2, 0, 1, 1, 5000)
    region = {g.label: (g.created, g.completed) for g in report.breakdowns["region"]}
    assert region == {"深圳市": (3, 3), "北京市": (3, 2), "（未登记）": (1, 0)}
    model = {g.label: (g.created, g.repairs, g.repeats) for g in report.breakdowns["model"]}
    assert model == {"KFR-35GW/BP3DN8Y": (3, 3, 2), "BCD-470WDPG": (3, 1, 0), "（未登记）": (1, 1, 0)}
    # Every breakdown adds up to the month.
    for groups in report.breakdowns.values():
        assert sum(g.created for g in groups) == report.total.created
        assert sum(g.completed for g in groups) == report.total.completed


async def test_an_empty_month_has_no_figures_rather_than_zeros(engine) -> None:  # type: ignore[no-untyped-def]
    await seed_month(engine)
    async with engine.connect() as c:
        report = await monthly_report(c, Settings(), "2025-03", NOW)
    assert set(report.total.figures().values()) == {None}
    assert report.top_problems == [] and report.failure_by_model == []
    assert all(g == [] for g in report.breakdowns.values())
    assert [b["counts"] for b in report.brand_quarters] == []
    assert report.to_json()["satisfaction_source"] == "milestones"
    # August: O10's survey form only — scored, with no surveyed milestone in the month.
    async with engine.connect() as c:
        august = await monthly_report(c, Settings(), "2026-08", NOW)
    assert august.to_json()["satisfaction_source"] == "scores"
    assert (august.total.scored, august.total.figures()["avg_satisfaction"]) == (1, 4.0)


async def test_sql_problem_classes_agree_with_the_python_rule(engine) -> None:  # type: ignore[no-untyped-def]
    samples = ["不制冷，外机不转", "有异响还有燃气味", "插头冒烟", "门关不严", "按键失灵", "显示E4", "100%漏水_x", "",
               "水温上不去", "移机"]
    async with engine.connect() as c:
        for s in samples:
            got = (await c.execute(text(f"SELECT {problem_class_sql(':p')}"), {"p": s})).scalar_one()
            assert got == m.classify_problem(s), s


async def test_the_exports_read_back(engine) -> None:  # type: ignore[no-untyped-def]
    await seed_month(engine)
    async with engine.connect() as c:
        report = await monthly_report(c, Settings(), MONTH, NOW)
    raw = to_csv(report)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:2] == ["售后数据统计分析表 SA-DA-006", MONTH]
    figures = {r[1]: r[2] for r in rows if len(r) == 5 and r[0] in ("效率", "质量", "成本")}
    assert figures == {"平均响应时长": "62.0", "平均到场时长": "32.7", "工单完成率": "66.7%", "一次修复率": "66.7%",
                       "返修率": "40.0%", "平均满意度（满分5分）": "3.58", "回访满意率": "50.0%", "单均配件成本": "38.00",
                       "单均上门成本": "68.00", "单均投诉处理成本": "10.00", "平均维修时长": "103.5"}
    assert ["不制冷/制冷差", "2", "28.6%"] in rows
    assert ["格力", "0", "0", "0", "3"] in rows and ["海尔", "0", "0", "2", "2"] in rows

    wb = load_workbook(io.BytesIO(to_xlsx(report)))
    assert wb.sheetnames == ["汇总", "问题TOP3", "按型号", "按地区", "按工程师", "型号故障率", "品牌季度维修量", "平均维修时长"]
    summary = {r[1]: r[2] for r in wb["汇总"].iter_rows(min_row=3, values_only=True)}
    assert summary["工单完成率"] == pytest.approx(4 / 6) and summary["单均配件成本"] == 38.0
    assert summary["平均满意度（满分5分）"] == pytest.approx(43 / 12)
    cell = next(c for c in wb["汇总"]["C"] if c.value == pytest.approx(4 / 6))
    assert cell.number_format == "0.0%"
    brands = list(wb["品牌季度维修量"].iter_rows(values_only=True))
    assert brands[1] == ("品牌", *EXPECTED_QUARTERS) and brands[2] == ("海尔", 0, 0, 2, 2)
    failure = list(wb["型号故障率"].iter_rows(min_row=3, values_only=True))
    assert failure == [tuple(r) for r in EXPECTED_FAILURE]


async def _session(client, username: str, role: str) -> aiohttp.ClientSession:  # type: ignore[no-untyped-def]
    await client.server.app[AUTH].add_user(username, role=role, password=h.PASSWORD)
    s = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    r = await s.post(client.make_url("/api/session"), json={"username": username, "password": h.PASSWORD})
    assert r.status == 200
    return s


async def test_the_api_json_csv_xlsx_and_who_may_read_it(aiohttp_client, db_url) -> None:  # type: ignore[no-untyped-def]
    client = await h.start(aiohttp_client, h.settings_for(db_url, free_port(), sla_interval=0.0))
    await seed_month(client.server.app[ENGINE])
    boss = await _session(client, "boss", "supervisor")
    agent = await _session(client, "agent7", "agent")
    try:
        url = client.make_url("/api/reports/monthly")
        r = await boss.get(url, params={"month": MONTH})
        assert r.status == 200 and r.content_type == "application/json"
        body = await r.json()
        MonthlyReportOut.model_validate(body)  # the answer is what the OpenAPI document says
        assert body["period"] == {"month": MONTH, "start": "2026-10-31T16:00:00+00:00",
                                  "end": "2026-11-30T16:00:00+00:00", "timezone": "Asia/Shanghai"}
        assert body["figures"]["completion_rate"] == pytest.approx(4 / 6)
        assert body["satisfaction_source"] == "scores"
        assert body["figures"]["avg_satisfaction"] == pytest.approx(43 / 12)
        assert {g["label"] for g in body["breakdowns"]["engineer"]} == {"王** GY2026101", "李* GY2026102", "未指派工程师"}
        assert "王建国" not in await r.text()

        r = await boss.get(url, params={"month": MONTH, "format": "csv"})
        assert r.status == 200 and r.content_type == "text/csv"
        assert 'filename="SA-DA-006_2026-11.csv"' in r.headers["Content-Disposition"]
        assert "工单完成率,66.7%" in (await r.read()).decode("utf-8-sig")
        r = await boss.get(url, params={"month": MONTH, "format": "xlsx"})
        assert r.status == 200 and r.content_type.endswith("spreadsheetml.sheet")
        assert load_workbook(io.BytesIO(await r.read())).sheetnames[0] == "汇总"

        for params, field in (({"month": "2026-13"}, "month"), ({"month": "11/2026"}, "month"),
                              ({"month": MONTH, "format": "pdf"}, "format")):
            r = await boss.get(url, params=params)
            assert r.status == 422 and (await r.json())["details"]["field"] == field
        r = await agent.get(url, params={"month": MONTH})
        assert r.status == 403
        r = await client.get("/api/reports/monthly")
        assert r.status == 401
        # The page: supervisors only; others get 403, strangers the login.
        r = await boss.get(client.make_url("/reports/monthly"), params={"month": MONTH})
        assert r.status == 200 and "售后数据统计分析表" in await r.text()
        r = await agent.get(client.make_url("/reports/monthly"))
        assert r.status == 403
        r = await client.get("/reports/monthly", allow_redirects=False)
        assert r.status == 302 and r.headers["Location"].startswith("/login")
    finally:
        await boss.close()
        await agent.close()


def test_the_openapi_document_names_the_export_formats() -> None:
    app = web.Application()
    app.add_routes(report_routes)
    spec = build_openapi(app, title="t", version="0")
    validate(spec)
    op = spec["paths"]["/api/reports/monthly"]["get"]
    assert set(op["responses"]["200"]["content"]) == {
        "application/json", "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
    assert {p["name"] for p in op["parameters"]} == {"month", "format"}
    assert op["x-roles"] == ["supervisor", "admin"] and "422" in op["responses"]
