"""The month's figures (SA-DA-006) as SQL aggregates over the records, on SQLite and PostgreSQL.

Each cohort query returns counts and sums per (product model, region, engineer) — one pass
serves the month's total and the three breakdowns, rolled up in Python by plain addition — and
the ratios are the pure functions of :mod:`callcenter.analysis.metrics`. Definitions (numerator, denominator, time basis, exclusions)
are in ``docs/metrics.md`` and the docstrings below; the two must agree.

Queries (``w`` is ``work_orders``; ``[start, end)`` the month in UTC):

* **created** — orders created in the month: counts, response and time-to-site seconds,
  repeat repairs (an ``EXISTS`` on the same appliance); **problems** — their fault classes;
* **completed** — orders completed in the month: first-time fix (on-site records per order),
  repair time, parts and on-site cost at list price;
* **survey** — orders surveyed or found dissatisfied in the month: satisfied share, complaints
  and the cost of the visits made after a complaint; **scores** — the SA-CS-005 surveys answered
  in the month (the average satisfaction);
* **repairs** — repair orders completed in the last 12 months per month and brand (the line,
  and the bars of the 4 quarters within them), bucketed by the centre's calendar (bucket bounds
  computed here, so no time-zone SQL);
* **registered** — appliances per model (the failure rate's population).

Only three fragments differ between the databases (:class:`_Dialect`): a duration in seconds, a
time shifted by whole days, and the list value of an on-site record's fee items (JSON). On
PostgreSQL the report's transaction runs with ``jit = off`` (see ``monthly_report``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import DateTime, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from callcenter.analysis import metrics as m
from callcenter.db.survey import SCORE_COLUMNS, SurveyResult
from callcenter.privacy import mask_name
from callcenter.settings import Settings

# The breakdowns (SA-DA-006 asks for model, region and engineer) and their group keys.
BREAKDOWNS = ("model", "region", "engineer")
TREND_MONTHS = 12
BRAND_QUARTERS = 4
UNKNOWN = "（未登记）"


@dataclass(frozen=True, slots=True)
class _Dialect:
    name: str

    def seconds(self, start: str, end: str) -> str:
        """Seconds from ``start`` to ``end`` (two timestamp expressions)."""
        if self.name == "postgresql":
            return f"EXTRACT(EPOCH FROM ({end} - {start}))"
        # julianday() is a float of days: rounded to the millisecond it is exact again.
        return f"ROUND((julianday({end}) - julianday({start})) * 86400.0, 3)"

    def days_before(self, ts: str, days: int) -> str:
        """``ts`` minus whole ``days`` (an int from the settings, never user input)."""
        days = int(days)
        if self.name == "postgresql":
            return f"({ts} - interval '{days} days')"
        # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff'; datetime() answers the same layout
        # without the fraction, which still compares correctly as text.
        return f"datetime({ts}, '-{days} days')"

    def fee_value(self) -> tuple[str, str]:
        """(FROM item, value expression): one row per fee item of ``o.fee_items`` and its list
        value ``amount_fen × quantity``."""
        if self.name == "postgresql":
            return ("json_array_elements(CAST(o.fee_items AS json)) AS e",
                    ("COALESCE(CAST(e.value ->> 'amount_fen' AS bigint), 0)"
                     " * COALESCE(CAST(e.value ->> 'quantity' AS bigint), 1)"))
        return ("json_each(o.fee_items) AS e",
                ("COALESCE(json_extract(e.value, '$.amount_fen'), 0)"
                 " * COALESCE(json_extract(e.value, '$.quantity'), 1)"))


def _in(values: tuple[str, ...]) -> str:
    # Constants of this module only (service types), quoted for SQL.
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


_ONSITE = _in(m.ONSITE_KINDS)
_REPAIR = _in(m.REPAIR_TYPES)
_CANCELLED = "'" + m.CANCELLED + "'"


def problem_class_sql(column: str = "w.problem") -> str:
    """``metrics.PROBLEM_CLASSES`` as a CASE (first match wins, like ``classify_problem``)."""
    arms = []
    for label, words in m.PROBLEM_CLASSES:
        cond = " OR ".join(f"{column} LIKE '%{w}%'" for w in words)
        arms.append(f"WHEN {cond} THEN '{label}'")
    return f"CASE {' '.join(arms)} ELSE '{m.OTHER_PROBLEM}' END"


# The breakdowns' keys, grouped by together (one pass per cohort; rolled up in Python).
_GROUP_COLUMNS = ("w.product_model AS gm, COALESCE(NULLIF(a.city, ''), a.province, '') AS gr,"
                  " COALESCE(CAST(w.engineer_id AS VARCHAR(20)), '') AS ge")
_GROUP_BY = "gm, gr, ge"
_ADDRESS_JOIN = "LEFT JOIN addresses a ON a.id = w.address_id"


def _times(**names: dt.datetime) -> list[Any]:
    """Typed bind parameters, so SQLite gets the stored text layout."""
    return [bindparam(k, v, type_=DateTime(timezone=True)) for k, v in names.items()]


def _visit_cost_sql(d: _Dialect, onsite_filter: str) -> tuple[str, str]:
    """Scalar subqueries: list value of parts, and of visit + labour fees, of the on-site
    records of ``w`` matching ``onsite_filter`` (SQL on ``o``)."""
    fee_from, fee_value = d.fee_value()
    parts = ("(SELECT COALESCE(SUM(l.quantity * l.unit_price_fen), 0) FROM onsite_part_lines l"
             f" JOIN onsite_records o ON o.id = l.onsite_id WHERE o.order_id = w.id AND {onsite_filter})")
    fees = (f"(SELECT COALESCE(SUM({fee_value}), 0) FROM onsite_records o, {fee_from}"
            f" WHERE o.order_id = w.id AND {onsite_filter})")
    return parts, fees


def created_sql(d: _Dialect, repeat_days: int) -> str:
    """Orders created in ``[start, end)`` per (model, region, engineer)."""
    earlier = (f"p.id <> w.id AND p.service_type IN {_REPAIR} AND p.status <> {_CANCELLED}"
               " AND (p.created_at < w.created_at OR (p.created_at = w.created_at AND p.id < w.id))"
               f" AND p.created_at >= {d.days_before('w.created_at', repeat_days)}")
    repeat = (f"((w.appliance_id IS NOT NULL AND EXISTS (SELECT 1 FROM work_orders p WHERE {earlier}"
              " AND p.appliance_id = w.appliance_id))"
              f" OR (w.appliance_id IS NULL AND w.serial <> '' AND EXISTS (SELECT 1 FROM work_orders p"
              f" WHERE {earlier} AND p.serial = w.serial)))")
    repair = f"w.service_type IN {_REPAIR} AND w.status <> {_CANCELLED}"
    reached = f"w.service_type IN {_ONSITE} AND w.service_started_at IS NOT NULL"
    return f"""
SELECT {_GROUP_COLUMNS},
  COUNT(*) AS created,
  SUM(CASE WHEN w.status = {_CANCELLED} THEN 1 ELSE 0 END) AS cancelled,
  SUM(CASE WHEN w.completed_at IS NOT NULL AND w.status <> {_CANCELLED} THEN 1 ELSE 0 END) AS completed,
  SUM(CASE WHEN w.planned_at IS NOT NULL THEN 1 ELSE 0 END) AS responded,
  SUM(CASE WHEN w.planned_at IS NOT NULL THEN {d.seconds('w.created_at', 'w.planned_at')} ELSE 0 END) AS response_s,
  SUM(CASE WHEN {reached} THEN 1 ELSE 0 END) AS reached,
  SUM(CASE WHEN {reached} THEN {d.seconds('w.created_at', 'w.service_started_at')} ELSE 0 END) AS to_site_s,
  SUM(CASE WHEN {repair} THEN 1 ELSE 0 END) AS repairs,
  SUM(CASE WHEN {repair} AND {repeat} THEN 1 ELSE 0 END) AS repeats
FROM work_orders w {_ADDRESS_JOIN}
WHERE w.created_at >= :start AND w.created_at < :end
GROUP BY {_GROUP_BY}"""


def completed_sql(d: _Dialect) -> str:
    """Orders completed in ``[start, end)`` (not cancelled) per (model, region, engineer)."""
    parts, fees = _visit_cost_sql(d, "1 = 1")
    return f"""
SELECT {_GROUP_BY}, COUNT(*) AS completed,
  SUM(CASE WHEN service_type = '{m.ONSITE_REPAIR}' THEN 1 ELSE 0 END) AS ftf_base,
  SUM(CASE WHEN service_type = '{m.ONSITE_REPAIR}' AND visits = 1 THEN 1 ELSE 0 END) AS ftf,
  SUM(CASE WHEN service_type IN {_REPAIR} THEN 1 ELSE 0 END) AS repaired,
  SUM(CASE WHEN service_type IN {_REPAIR} THEN repair_s ELSE 0 END) AS repair_s,
  SUM(parts_fen) AS parts_fen, SUM(fees_fen) AS onsite_fen
FROM (SELECT {_GROUP_COLUMNS}, w.service_type,
        {d.seconds('w.created_at', 'w.completed_at')} AS repair_s,
        (SELECT COUNT(*) FROM onsite_records o WHERE o.order_id = w.id) AS visits,
        {parts} AS parts_fen, {fees} AS fees_fen
      FROM work_orders w {_ADDRESS_JOIN}
      WHERE w.completed_at >= :start AND w.completed_at < :end AND w.status <> {_CANCELLED}) AS c
GROUP BY {_GROUP_BY}"""


def survey_sql(d: _Dialect) -> str:
    """Orders surveyed, or found dissatisfied, in ``[start, end)`` per (model, region, engineer)."""
    after = "o.started_at IS NOT NULL AND o.started_at >= w.dissatisfied_at"
    parts, fees = _visit_cost_sql(d, after)
    in_month = "{c} IS NOT NULL AND {c} >= :start AND {c} < :end"
    surveyed, complained = in_month.format(c="surveyed_at"), in_month.format(c="dissatisfied_at")
    return f"""
SELECT {_GROUP_BY},
  SUM(CASE WHEN {surveyed} THEN 1 ELSE 0 END) AS surveyed,
  SUM(CASE WHEN {surveyed} AND dissatisfied_at IS NOT NULL THEN 1 ELSE 0 END) AS dissatisfied,
  SUM(CASE WHEN {complained} THEN 1 ELSE 0 END) AS complaints,
  SUM(CASE WHEN {complained} THEN recheck_fen ELSE 0 END) AS complaint_fen
FROM (SELECT {_GROUP_COLUMNS}, w.surveyed_at, w.dissatisfied_at,
        CASE WHEN w.dissatisfied_at IS NULL THEN 0 ELSE {parts} + {fees} END AS recheck_fen
      FROM work_orders w {_ADDRESS_JOIN}
      WHERE (w.surveyed_at >= :start AND w.surveyed_at < :end)
         OR (w.dissatisfied_at >= :start AND w.dissatisfied_at < :end)) AS s
GROUP BY {_GROUP_BY}"""


def scores_sql() -> str:
    """Surveys (SA-CS-005) answered in ``[start, end)`` per (model, region, engineer of the
    order): how many, and the sum of their per-survey mean scores."""
    mean = "(" + " + ".join(f"s.{c}" for c in SCORE_COLUMNS) + f") / {float(len(SCORE_COLUMNS))}"
    return f"""
SELECT {_GROUP_COLUMNS}, COUNT(*) AS scored, SUM({mean}) AS score_sum
FROM {SurveyResult.__tablename__} s JOIN work_orders w ON w.id = s.order_id {_ADDRESS_JOIN}
WHERE s.answered_at >= :start AND s.answered_at < :end
GROUP BY {_GROUP_BY}"""


def _bucket_sql(column: str, n: int) -> str:
    """The index (0…n−1) of the bucket ``column`` falls in: bounds ``:b1 … :b{n-1}``."""
    arms = " ".join(f"WHEN {column} < :b{i} THEN {i - 1}" for i in range(1, n))
    return f"CASE {arms} ELSE {n - 1} END"


def repairs_sql(d: _Dialect, n: int) -> str:
    """Repair orders completed in ``[b0, end)`` per month bucket and appliance brand: count and
    repair seconds. Serves both charts (the four quarters lie within the twelve months)."""
    bucket = _bucket_sql("w.completed_at", n)
    return f"""
SELECT {bucket} AS b, COALESCE(ap.brand, '') AS brand_name, COUNT(*) AS repaired,
  SUM({d.seconds('w.created_at', 'w.completed_at')}) AS repair_s
FROM work_orders w LEFT JOIN appliances ap ON ap.id = w.appliance_id
WHERE w.completed_at >= :b0 AND w.completed_at < :end AND w.service_type IN {_REPAIR}
  AND w.status <> {_CANCELLED}
GROUP BY b, brand_name"""


def problems_sql() -> str:
    cls = problem_class_sql()
    return f"""
SELECT {cls} AS pclass, COUNT(*) AS orders FROM work_orders w
WHERE w.created_at >= :start AND w.created_at < :end
GROUP BY pclass"""


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class Group:
    """The raw counts and sums of one group (or of the whole month: key ``""``)."""

    key: str
    label: str = ""
    created: int = 0
    cancelled: int = 0
    completed_of_created: int = 0
    responded: int = 0
    response_s: float = 0.0
    reached: int = 0
    to_site_s: float = 0.0
    repairs: int = 0
    repeats: int = 0
    completed: int = 0
    ftf_base: int = 0
    ftf: int = 0
    repaired: int = 0
    repair_s: float = 0.0
    parts_fen: int = 0
    onsite_fen: int = 0
    surveyed: int = 0
    dissatisfied: int = 0
    complaints: int = 0
    complaint_fen: int = 0
    scored: int = 0
    score_sum: float = 0.0

    def satisfaction(self) -> m.Satisfaction:
        return m.satisfaction(self.surveyed, self.dissatisfied, self.scored, self.score_sum)

    def figures(self) -> dict[str, Any]:
        """The SA-DA-006 figures of this group (None where a denominator is 0)."""
        sat = self.satisfaction()
        return {
            "avg_response_min": m.average(self.response_s, self.responded, 60),
            "avg_to_site_h": m.average(self.to_site_s, self.reached, 3600),
            "completion_rate": m.completion_rate(self.created, self.cancelled, self.completed_of_created),
            "first_time_fix_rate": m.rate(self.ftf, self.ftf_base),
            "repeat_repair_rate": m.rate(self.repeats, self.repairs),
            "satisfied_rate": sat.satisfied_rate,
            "avg_satisfaction": sat.average_score,
            "avg_parts_fen": m.per_order(self.parts_fen, self.completed),
            "avg_onsite_fen": m.per_order(self.onsite_fen, self.completed),
            "complaint_fen_per_order": m.per_order(self.complaint_fen, self.completed),
            "avg_repair_h": m.average(self.repair_s, self.repaired, 3600),
        }

    def counts(self) -> dict[str, Any]:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in self.__dict__.items()
                if k not in ("key", "label")}


@dataclass
class MonthlyReport:
    period: m.Period
    timezone: str
    generated_at: dt.datetime
    repeat_days: int
    total: Group
    top_problems: list[m.ProblemShare]
    problem_counts: dict[str, int]
    breakdowns: dict[str, list[Group]]
    failure_by_model: list[dict[str, Any]]
    quarters: list[str]
    brand_quarters: list[dict[str, Any]]
    trend: list[dict[str, Any]]
    hints: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "period": {"month": self.period.label, "start": self.period.start.isoformat(),
                       "end": self.period.end.isoformat(), "timezone": self.timezone},
            "generated_at": self.generated_at.isoformat(),
            "figures": self.total.figures(),
            "counts": self.total.counts(),
            "satisfaction_source": self.total.satisfaction().source,
            "repeat_repair_days": self.repeat_days,
            "top_problems": [{"problem": p.problem, "orders": p.orders, "share": p.share}
                             for p in self.top_problems],
            "breakdowns": {name: [{"key": g.key, "label": g.label, **g.figures(),
                                   "created": g.created, "completed": g.completed}
                                  for g in groups]
                           for name, groups in self.breakdowns.items()},
            "failure_by_model": self.failure_by_model,
            "quarters": self.quarters,
            "brand_quarters": self.brand_quarters,
            "repair_time_trend": self.trend,
            "hints": self.hints,
        }


_CREATED_FIELDS = ("created", "cancelled", "completed_of_created", "responded", "response_s", "reached",
                   "to_site_s", "repairs", "repeats")
_COMPLETED_FIELDS = ("completed", "ftf_base", "ftf", "repaired", "repair_s", "parts_fen", "onsite_fen")
_SURVEY_FIELDS = ("surveyed", "dissatisfied", "complaints", "complaint_fen")
_SCORE_FIELDS = ("scored", "score_sum")
_FLOAT_FIELDS = ("response_s", "to_site_s", "repair_s", "score_sum")


def _num(v: Any, kind: type = int) -> Any:
    return kind(v or 0)


async def _groups(conn: AsyncConnection, d: _Dialect, period: m.Period,
                  repeat_days: int) -> tuple[Group, dict[str, dict[str, Group]]]:
    """The month's total and its groups per breakdown: three cohort queries, each grouped by
    (model, region, engineer) at once, rolled up here (sums only, so the roll-up is exact)."""
    total = Group("", "全部")
    by: dict[str, dict[str, Group]] = {name: {} for name in BREAKDOWNS}
    bounds = _times(start=period.start, end=period.end)
    for sql, fields in ((created_sql(d, repeat_days), _CREATED_FIELDS), (completed_sql(d), _COMPLETED_FIELDS),
                        (survey_sql(d), _SURVEY_FIELDS), (scores_sql(), _SCORE_FIELDS)):
        for row in await conn.execute(text(sql).bindparams(*bounds)):
            values = [_num(v, float if name in _FLOAT_FIELDS else int) for name, v in zip(fields, row[3:])]
            targets = [total] + [by[name].setdefault(str(k or ""), Group(str(k or "")))
                                 for name, k in zip(BREAKDOWNS, row[:3])]
            for g in targets:
                for name, v in zip(fields, values):
                    setattr(g, name, getattr(g, name) + v)
    return total, by


async def _labels(conn: AsyncConnection, key: str, groups: list[Group]) -> None:
    if key == "engineer":
        ids = [int(g.key) for g in groups if g.key]
        names: dict[str, tuple[str, str | None]] = {}
        if ids:
            q = text("SELECT id, display_name, username, staff_no FROM users WHERE id IN :ids").bindparams(
                bindparam("ids", ids, expanding=True))
            for r in await conn.execute(q):
                names[str(r.id)] = (r.display_name or r.username, r.staff_no)
        for g in groups:
            name, staff = names.get(g.key, ("", None))
            g.label = (f"{mask_name(name)} {staff or ''}".strip() if g.key else "未指派工程师")
    else:
        for g in groups:
            g.label = g.key or UNKNOWN


def _hints(total: Group) -> list[str]:
    """Where the month missed the centre's targets (``shared/domain.md``), as prompts for the
    supervisor's improvement actions; computed, never typed."""
    f = total.figures()
    out = []
    if f["first_time_fix_rate"] is not None and f["first_time_fix_rate"] < 0.9:
        out.append(f"一次修复率 {f['first_time_fix_rate']:.1%} 低于目标 90%")
    if f["repeat_repair_rate"] is not None and f["repeat_repair_rate"] > 0.05:
        out.append(f"返修率 {f['repeat_repair_rate']:.1%} 高于 5%")
    if f["satisfied_rate"] is not None and f["satisfied_rate"] < 0.9:
        out.append(f"回访满意率 {f['satisfied_rate']:.1%} 低于 90%")
    return out


async def monthly_report(conn: AsyncConnection, settings: Settings, month: str,
                         now: dt.datetime) -> MonthlyReport:
    """Every SA-DA-006 figure of ``month`` (``YYYY-MM`` in ``settings.tz``) from the records.

    Raises ValidationFailed (422, field ``month``) for a malformed month. Read-only; a handful
    of aggregate queries on ``conn``.
    """
    tz = settings.tz
    period = m.parse_month(month, tz)
    d = _Dialect(conn.dialect.name)
    if d.name == "postgresql":
        # The per-order subqueries push the plans' estimated cost past jit_above_cost; compiling
        # them took ~1.3 s per statement and saved nothing (bench/monthly_report.py). For this
        # transaction only.
        await conn.execute(text("SET LOCAL jit = off"))
    days = settings.repeat_repair_days
    total, by = await _groups(conn, d, period, days)
    breakdowns: dict[str, list[Group]] = {}
    for key in BREAKDOWNS:
        groups = sorted(by[key].values(), key=lambda g: (-g.created, -g.completed, g.key))
        await _labels(conn, key, groups)
        breakdowns[key] = groups

    bounds = _times(start=period.start, end=period.end)
    problem_counts = {r.pclass: int(r.orders) for r in await conn.execute(text(problems_sql()).bindparams(*bounds))}
    tops = m.top_problems(problem_counts, total.created)

    # Failure rate by model: repair orders created in the month / appliances registered.
    models = [g for g in breakdowns["model"] if g.key and g.repairs]
    registered: dict[str, int] = {}
    if models:
        q = text("SELECT model, COUNT(*) AS n FROM appliances WHERE model IN :models GROUP BY model").bindparams(
            bindparam("models", [g.key for g in models], expanding=True))
        registered = {r.model: int(r.n) for r in await conn.execute(q)}
    failure = sorted(({"model": g.key, "repairs": g.repairs, "registered": registered.get(g.key, 0),
                       "per_thousand": m.per_thousand(g.repairs, registered.get(g.key, 0))} for g in models),
                     key=lambda r: (-(r["per_thousand"] or 0), -r["repairs"], r["model"]))

    months = m.trailing_months(period, TREND_MONTHS, tz)
    quarters = m.trailing_quarters(period, BRAND_QUARTERS, tz)
    # Each month's quarter (None: before the first quarter shown); quarters are whole months.
    quarter_of = [next((j for j, q in enumerate(quarters) if q.start <= p.start < q.end), None) for p in months]
    params = _times(end=period.end, **{f"b{i}": p.start for i, p in enumerate(months)})
    per_month = [[0, 0.0] for _ in months]
    by_brand: dict[str, list[int]] = {}
    for r in await conn.execute(text(repairs_sql(d, len(months))).bindparams(*params)):
        i, n = int(r.b), int(r.repaired)
        per_month[i][0] += n
        per_month[i][1] += float(r.repair_s or 0)
        if quarter_of[i] is not None:
            by_brand.setdefault(r.brand_name or UNKNOWN, [0] * len(quarters))[quarter_of[i]] += n
    brand_quarters = [{"brand": b, "counts": c}
                      for b, c in sorted(by_brand.items(), key=lambda kv: (-sum(kv[1]), kv[0]))]
    trend = [{"month": p.label, "repaired": n, "avg_repair_h": m.average(secs, n, 3600)}
             for p, (n, secs) in zip(months, per_month)]

    return MonthlyReport(period=period, timezone=settings.timezone, generated_at=now, repeat_days=days,
                         total=total, top_problems=tops, problem_counts=problem_counts,
                         breakdowns=breakdowns, failure_by_model=failure,
                         quarters=[q.label for q in quarters], brand_quarters=brand_quarters,
                         trend=trend, hints=_hints(total))
