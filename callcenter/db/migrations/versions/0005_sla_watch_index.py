"""index for the SLA scheduler: dissatisfied orders not yet escalated

The scheduler (``callcenter.sla.scheduler``) reads, every pass, the orders whose clocks may
run: open statuses and 已完成 through ``ix_work_orders_status_urgency``, plus orders of any
status with a dissatisfaction not yet escalated (mostly 已回访, the largest status of all). This
partial index keeps that second part a lookup of the few rows concerned instead of a scan of
every surveyed order.

Not declared in the models: a partial index (``WHERE``) is written per dialect here; the model
does not need it.

Revision ID: 0005
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0002'
branch_labels = None
depends_on = None

_WHERE = "dissatisfied_at IS NOT NULL AND escalated_at IS NULL"


def upgrade() -> None:
    op.create_index("ix_work_orders_unescalated", "work_orders", ["dissatisfied_at"],
                    postgresql_where=sa.text(_WHERE), sqlite_where=sa.text(_WHERE))


def downgrade() -> None:
    op.drop_index("ix_work_orders_unescalated", table_name="work_orders")
