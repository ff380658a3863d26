"""The work side of the wallboard: SLA alerts by urgency, the dispatch backlog, today's
completions, open complaints — a few counting queries on the records.

- overdue 已超时 / at risk 即将超时: work orders with an open SLA alert (``sla_alerts``,
  ``cleared_at IS NULL``) at level ``breach`` / ``warning`` (an order with both counts as
  overdue), by the order's urgency;
- dispatch backlog 待派单: on-site orders (上门维修/安装) 待处理 with no engineer and no partner
  shop;
- completed today 今日完工: ``completed_at`` within the centre's day;
- open complaints 未处理投诉: orders whose customer was dissatisfied (``dissatisfied_at``) and
  that are not escalated yet (until complaints are their own records).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from callcenter.db.models import WorkOrder
from callcenter.db.oversight import SlaAlert
from callcenter.sla.rules import URGENCIES

ON_SITE = ("上门维修", "安装")

WORK_FORMULAS = {
    "overdue": "已超时 = 有未解除的超时预警 (breach) 的工单数，按紧急程度",
    "at_risk": "即将超时 = 只有未解除的临近预警 (warning) 的工单数，按紧急程度",
    "backlog": "待派单 = 上门类工单中状态为待处理、未指派工程师或网点的数量",
    "completed_today": "今日完工 = 完工时间在今天的工单数",
    "complaints": "未处理投诉 = 客户不满意且尚未升级处理的工单数",
}


async def work_side(conn: AsyncConnection, now: dt.datetime, tz: dt.tzinfo) -> dict[str, Any]:
    wo, al = WorkOrder.__table__.c, SlaAlert.__table__.c
    rows = (await conn.execute(
        select(wo.urgency, al.order_id, func.count().filter(al.level == "breach"))
        .join(WorkOrder.__table__, wo.id == al.order_id)
        .where(al.cleared_at.is_(None))
        .group_by(wo.urgency, al.order_id))).all()
    by_urgency = {u: {"overdue": 0, "at_risk": 0} for u in URGENCIES}
    for urgency, _order_id, n_breach in rows:
        slot = by_urgency.setdefault(urgency if urgency in by_urgency else "普通", {"overdue": 0, "at_risk": 0})
        slot["overdue" if n_breach else "at_risk"] += 1
    local = now.astimezone(tz).date()
    start = dt.datetime.combine(local, dt.time(0), tz).astimezone(dt.UTC)
    end = start + dt.timedelta(days=1)
    backlog = (await conn.execute(select(func.count()).select_from(WorkOrder.__table__).where(
        wo.status == "待处理", wo.service_type.in_(ON_SITE), wo.engineer_id.is_(None),
        wo.shop_id.is_(None)))).scalar_one()
    completed = (await conn.execute(select(func.count()).select_from(WorkOrder.__table__).where(
        and_(wo.completed_at >= start, wo.completed_at < end)))).scalar_one()
    complaints = (await conn.execute(select(func.count()).select_from(WorkOrder.__table__).where(
        wo.dissatisfied_at.is_not(None), wo.escalated_at.is_(None)))).scalar_one()
    return {
        "type": "wallboard.work", "at_ms": int(now.timestamp() * 1000),
        "by_urgency": [{"urgency": u, **v} for u, v in by_urgency.items()],
        "overdue": sum(v["overdue"] for v in by_urgency.values()),
        "at_risk": sum(v["at_risk"] for v in by_urgency.values()),
        "backlog": backlog, "completed_today": completed, "complaints": complaints,
    }
