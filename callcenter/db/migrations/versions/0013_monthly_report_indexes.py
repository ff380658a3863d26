"""indexes for the monthly analysis (SA-DA-006): orders by completion, survey and complaint time

The monthly report (``callcenter.analysis.monthly``) reads the orders completed in a month, and
the repair orders completed over the last 12 months and 4 quarters (the repair-time line and the
brand bars), the orders surveyed in a month and those found dissatisfied in it. Orders by
creation already have ``ix_work_orders_created_at``; these three make the others range scans
too (``bench/monthly_report.py``: 3,000,000 orders on PostgreSQL).

- ``ix_work_orders_completed``: ``completed_at``, partial (only completed orders). On
  PostgreSQL it also carries (``INCLUDE``) the columns the 12-month queries read — created_at,
  service_type, status, appliance_id — so those are index-only scans instead of ~1,000,000 heap
  fetches;
- ``ix_work_orders_surveyed``, ``ix_work_orders_dissatisfied``: partial, on the survey outcome
  milestones.

Not declared in the models (like 0005 and 0007): partial and covering indexes are written per
dialect here; ``tests/test_schema.py`` lists them as migration-only.

Revision ID: 0013
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0010'
branch_labels = None
depends_on = None

_COVERED = ["created_at", "service_type", "status", "appliance_id"]


def _not_null(column: str) -> sa.TextClause:
    return sa.text(f"{column} IS NOT NULL")


def upgrade() -> None:
    where = _not_null("completed_at")
    op.create_index("ix_work_orders_completed", "work_orders", ["completed_at"],
                    postgresql_include=_COVERED, postgresql_where=where, sqlite_where=where)
    for name, column in (("ix_work_orders_surveyed", "surveyed_at"),
                         ("ix_work_orders_dissatisfied", "dissatisfied_at")):
        where = _not_null(column)
        op.create_index(name, "work_orders", [column], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    for name in ("ix_work_orders_dissatisfied", "ix_work_orders_surveyed", "ix_work_orders_completed"):
        op.drop_index(name, table_name="work_orders")
