"""The monthly analysis on the web: ``/reports/monthly?month=YYYY-MM`` (the SA-DA-006 page,
rendered on the server with inline SVG charts, printable) and ``GET /api/reports/monthly``
(JSON, CSV or XLSX). Supervisors and admins only.

The figures carry no personal data: engineers appear as masked name + staff number, regions
as cities. A request reads; nothing is written.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import aiohttp_jinja2
from aiohttp import web
from markupsafe import Markup
from pydantic import BaseModel, Field

from callcenter.access import ACTIONS
from callcenter.analysis import charts
from callcenter.analysis.export import cell_text, display, tables, to_csv, to_xlsx
from callcenter.analysis.metrics import parse_month, previous_month
from callcenter.analysis.monthly import MonthlyReport, monthly_report
from callcenter.appkeys import ENGINE, SETTINGS
from callcenter.auth.identity import CurrentUser
from callcenter.web.api import ApiModel, endpoint, json_response
from callcenter.web.order_pages import page_context, page_user

routes = web.RouteTableDef()
ROLES = ACTIONS["report.monthly"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"


class MonthlyReportQuery(ApiModel):
    month: str | None = Field(None, pattern=r"^\d{4}-\d{2}$", description="YYYY-MM（中心时区）；默认上月")
    format: Literal["json", "csv", "xlsx"] = "json"


class ReportPeriodOut(BaseModel):
    month: str
    start: dt.datetime
    end: dt.datetime
    timezone: str


class ReportProblemOut(BaseModel):
    problem: str
    orders: int
    share: float


class ReportFailureOut(BaseModel):
    model: str
    repairs: int
    registered: int
    per_thousand: float | None


class ReportBrandOut(BaseModel):
    brand: str
    counts: list[int]


class ReportTrendOut(BaseModel):
    month: str
    repaired: int
    avg_repair_h: float | None


class ReportBreakdownRowOut(BaseModel):
    """One group of a breakdown: ``key`` (model, city, or engineer user id; "" unknown), the
    ``label`` shown (engineers: masked name + staff number), its order counts and figures."""

    key: str
    label: str
    created: int
    completed: int
    avg_response_min: float | None
    avg_to_site_h: float | None
    completion_rate: float | None
    first_time_fix_rate: float | None
    repeat_repair_rate: float | None
    satisfied_rate: float | None
    avg_satisfaction: float | None
    avg_parts_fen: float | None
    avg_onsite_fen: float | None
    complaint_fen_per_order: float | None
    avg_repair_h: float | None


class MonthlyReportOut(BaseModel):
    """SA-DA-006. ``figures``: avg_response_min, avg_to_site_h, completion_rate,
    first_time_fix_rate, repeat_repair_rate, satisfied_rate, avg_satisfaction (of 5; None when no
    survey of the month has scores: ``satisfaction_source``), avg_parts_fen, avg_onsite_fen,
    complaint_fen_per_order, avg_repair_h — null where the denominator is 0. ``counts``: the
    numerators and denominators. Definitions: docs/metrics.md."""

    period: ReportPeriodOut
    generated_at: dt.datetime
    figures: dict[str, float | None]
    counts: dict[str, float]
    satisfaction_source: Literal["milestones", "scores"]
    repeat_repair_days: int
    top_problems: list[ReportProblemOut]
    # "model", "region", "engineer"
    breakdowns: dict[str, list[ReportBreakdownRowOut]]
    failure_by_model: list[ReportFailureOut]
    quarters: list[str]
    brand_quarters: list[ReportBrandOut]
    repair_time_trend: list[ReportTrendOut]
    hints: list[str]


async def _report(request: web.Request, month: str | None) -> MonthlyReport:
    settings = request.app[SETTINGS]
    now = dt.datetime.now(dt.UTC)
    month = month or previous_month(now, settings.tz)
    parse_month(month, settings.tz)  # 422 before touching the database
    async with request.app[ENGINE].connect() as conn:
        return await monthly_report(conn, settings, month, now)


@routes.get("/api/reports/monthly")
@endpoint("售后数据统计分析表 Monthly analysis (SA-DA-006)", roles=ROLES, query=MonthlyReportQuery,
          response=MonthlyReportOut, tag="reports", produces=(CSV, XLSX),
          description="format=json (default), csv (UTF-8 with BOM) or xlsx (one sheet per table). "
                      "Every figure is computed from the records; definitions in docs/metrics.md.")
async def get_monthly(request: web.Request, user: CurrentUser, query: MonthlyReportQuery) -> web.Response:
    report = await _report(request, query.month)
    if query.format == "json":
        return json_response(report.to_json())
    name = f"SA-DA-006_{report.period.label}.{query.format}"
    body, ctype = (to_csv(report), CSV) if query.format == "csv" else (to_xlsx(report), XLSX)
    return web.Response(body=body, headers={
        "Content-Type": f"{ctype}; charset=utf-8" if ctype == CSV else ctype,
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store"})


def _charts(report: MonthlyReport) -> dict[str, Markup]:
    bars = charts.grouped_bars(report.quarters, [(b["brand"], b["counts"]) for b in report.brand_quarters[:8]],
                               title="各品牌季度维修量", unit="单", testid="chart-brands")
    trend = charts.line([t["month"] for t in report.trend], [t["avg_repair_h"] for t in report.trend],
                        title="平均维修时长（小时）", unit="小时", testid="chart-repair-time", label="平均维修时长")
    # Built from escaped text only (charts.py escapes every label).
    return {"brands": Markup(bars), "trend": Markup(trend)}


@routes.get("/reports/monthly")
@aiohttp_jinja2.template("report_monthly.html")
async def monthly_page(request: web.Request) -> dict[str, Any]:
    user = page_user(request, "report.monthly")
    report = await _report(request, request.query.get("month") or None)
    return page_context(request, user, "reports", report=report, data=report.to_json(), tables=tables(report),
                        charts=_charts(report), cell_text=cell_text, display=display,
                        tz=request.app[SETTINGS].tz, one_day=dt.timedelta(days=1))
