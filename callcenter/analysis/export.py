"""The monthly report as tables (one layout for the page, CSV and XLSX) and the two files.

A :class:`Table` holds raw values and a *kind* per column; :func:`display` formats a value the
way the page shows it (rates as 66.7%, fen as yuan 38.00, "—" for no data). CSV carries the
displayed text (what a person reads); XLSX carries numbers with a number format, so a
spreadsheet can compute with them. Every cell of both goes through
:func:`callcenter.spreadsheets.safe_cell`: text typed by people (a model name, a region) never
reaches a spreadsheet as a formula.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from callcenter.analysis.monthly import MonthlyReport
from callcenter.spreadsheets import SafeCsvWriter, safe_row

# Column kinds: text, int, rate (0…1), min, h, fen (money), permille (per 1,000), score (of 5),
# mixed (a (value, kind) pair per cell: the summary's value column).
NONE = "—"
BREAKDOWN_TITLES = {"model": "按产品型号", "region": "按地区", "engineer": "按工程师"}


@dataclass(frozen=True, slots=True)
class Table:
    key: str
    title: str
    columns: tuple[tuple[str, str], ...]  # (header, kind)
    rows: list[list[Any]]


def display(value: Any, kind: str) -> str:
    if value is None:
        return NONE
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "fen":
        return f"{value / 100:,.2f}"
    if kind in ("min", "h", "permille"):
        return f"{value:.1f}"
    if kind == "score":
        return f"{value:.2f}"
    if kind == "int":
        return str(int(value))
    return str(value)


def summary(report: MonthlyReport) -> Table:
    """The SA-DA-006 form itself: section, item, value, unit, and how it is counted."""
    f, c = report.total.figures(), report.total.counts()
    days = report.repeat_days
    rows = [
        ["效率", "平均响应时长", f["avg_response_min"], "min", "分钟",
         f"受理→给出方案（planned_at），{c['responded']} 单"],
        ["效率", "平均到场时长", f["avg_to_site_h"], "h", "小时", f"受理→开始上门服务，{c['reached']} 单（上门类）"],
        ["效率", "工单完成率", f["completion_rate"], "rate", "",
         f"{c['completed_of_created']} / ({c['created']} 受理 − {c['cancelled']} 取消)"],
        ["质量", "一次修复率", f["first_time_fix_rate"], "rate", "", f"{c['ftf']} / {c['ftf_base']} 单上门维修完工（仅一次上门）"],
        ["质量", "返修率", f["repeat_repair_rate"], "rate", "", f"{c['repeats']} / {c['repairs']} 单维修（{days} 天内同一机器再修）"],
        ["质量", "平均满意度（满分5分）", f["avg_satisfaction"], "score", "分",
         f"{c['scored']} 份回访调查表（SA-CS-005）六项评分的均值" if c["scored"]
         else "本月无回访评分记录（回访调查表 SA-CS-005）"],
        ["质量", "回访满意率", f["satisfied_rate"], "rate", "",
         f"{c['surveyed'] - c['dissatisfied']} / {c['surveyed']} 单回访无不满意"],
        ["成本", "单均配件成本", f["avg_parts_fen"], "fen", "元", f"配件按目录价 {c['parts_fen'] / 100:,.2f} 元 / {c['completed']} 单完工"],
        ["成本", "单均上门成本", f["avg_onsite_fen"], "fen", "元", f"上门费+工时费按价目表 {c['onsite_fen'] / 100:,.2f} 元 / {c['completed']} 单完工"],
        ["成本", "单均投诉处理成本", f["complaint_fen_per_order"], "fen", "元",
         f"投诉后复查上门 {c['complaint_fen'] / 100:,.2f} 元（{c['complaints']} 起投诉）/ {c['completed']} 单完工"],
        ["效率", "平均维修时长", f["avg_repair_h"], "h", "小时", f"受理→完工，{c['repaired']} 单维修完工"],
    ]
    return Table("summary", "售后数据统计分析表 SA-DA-006",
                 (("类别", "text"), ("指标", "text"), ("数值", "mixed"), ("单位", "text"), ("口径", "text")),
                 [[r[0], r[1], (r[2], r[3]), r[4], r[5]] for r in rows])


def tables(report: MonthlyReport) -> list[Table]:
    """Every table of the report, in page order."""
    out = [summary(report)]
    out.append(Table("problems", "问题TOP3", (("问题类别", "text"), ("单量", "int"), ("占比", "rate")),
                     [[p.problem, p.orders, p.share] for p in report.top_problems]))
    cols = (("", "text"), ("受理单量", "int"), ("完工单量", "int"), ("完成率", "rate"), ("平均响应(分钟)", "min"),
            ("平均到场(小时)", "h"), ("一次修复率", "rate"), ("返修率", "rate"), ("平均满意度", "score"),
            ("回访满意率", "rate"),
            ("平均维修时长(小时)", "h"), ("单均配件成本(元)", "fen"), ("单均上门成本(元)", "fen"))
    first = {"model": "产品型号", "region": "地区", "engineer": "工程师"}
    for key, groups in report.breakdowns.items():
        rows = []
        for g in groups:
            f = g.figures()
            rows.append([g.label, g.created, g.completed, f["completion_rate"], f["avg_response_min"],
                         f["avg_to_site_h"], f["first_time_fix_rate"], f["repeat_repair_rate"], f["avg_satisfaction"],
                         f["satisfied_rate"],
                         f["avg_repair_h"], f["avg_parts_fen"], f["avg_onsite_fen"]])
        out.append(Table(key, BREAKDOWN_TITLES[key], ((first[key], "text"),) + cols[1:], rows))
    out.append(Table("failure", "型号故障率（本月维修单 / 登记台数）",
                     (("产品型号", "text"), ("维修单量", "int"), ("登记台数", "int"), ("每千台维修单", "permille")),
                     [[r["model"], r["repairs"], r["registered"], r["per_thousand"]] for r in report.failure_by_model]))
    out.append(Table("brands", "各品牌季度维修量",
                     (("品牌", "text"),) + tuple((q, "int") for q in report.quarters),
                     [[b["brand"], *b["counts"]] for b in report.brand_quarters]))
    out.append(Table("trend", "平均维修时长（近12个月）",
                     (("月份", "text"), ("维修完工单量", "int"), ("平均维修时长(小时)", "h")),
                     [[t["month"], t["repaired"], t["avg_repair_h"]] for t in report.trend]))
    return out


def cell_text(value: Any, kind: str) -> str:
    return display(*value) if kind == "mixed" else display(value, kind)


def to_csv(report: MonthlyReport) -> bytes:
    """UTF-8 with a BOM (Excel opens it as UTF-8), one block per table, a blank line between."""
    buf = io.StringIO()
    w = SafeCsvWriter(buf)
    w.writerow(["售后数据统计分析表 SA-DA-006", report.period.label, f"时区 {report.timezone}",
                f"生成于 {report.generated_at.astimezone(ZoneInfo(report.timezone)).isoformat(timespec='minutes')}"])
    for t in tables(report):
        w.writerow([])
        w.writerow([t.title])
        w.writerow([h for h, _ in t.columns])
        for row in t.rows:
            w.writerow([cell_text(v, k) for v, (_, k) in zip(row, t.columns)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


_XLSX_FORMATS = {"rate": "0.0%", "fen": "#,##0.00", "min": "0.0", "h": "0.0", "permille": "0.0", "int": "0",
                 "score": "0.00"}


def _xlsx_value(value: Any, kind: str) -> tuple[Any, str | None]:
    if kind == "mixed":
        value, kind = value
    if value is None:
        return NONE, None
    if kind == "fen":
        return round(value / 100, 2), _XLSX_FORMATS["fen"]
    return value, _XLSX_FORMATS.get(kind)


def to_xlsx(report: MonthlyReport) -> bytes:
    """One sheet per table (汇总 first); money in yuan, rates as fractions formatted as %."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    sheet_names = {"summary": "汇总", "problems": "问题TOP3", "model": "按型号", "region": "按地区",
                   "engineer": "按工程师", "failure": "型号故障率", "brands": "品牌季度维修量", "trend": "平均维修时长"}
    for i, t in enumerate(tables(report)):
        ws = wb.active if i == 0 else wb.create_sheet()
        ws.title = sheet_names[t.key]
        ws.append(safe_row([t.title, report.period.label]))
        ws["A1"].font = Font(bold=True)
        ws.append(safe_row(h for h, _ in t.columns))
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in t.rows:
            values = [_xlsx_value(v, k) for v, (_, k) in zip(row, t.columns)]
            ws.append(safe_row(v for v, _ in values))
            for cell, (_, fmt) in zip(ws[ws.max_row], values):
                if fmt:
                    cell.number_format = fmt
        for col, width in zip("ABCDEFGHIJKLM", (18, 22, 14, 12, 14, 14, 12, 12, 12, 12, 16, 16, 16)):
            ws.column_dimensions[col].width = width
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
