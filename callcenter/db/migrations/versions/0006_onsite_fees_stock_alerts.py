"""on-site record fee items and category; safety-stock alert state

``onsite_records.category`` and ``fee_items`` (the visit fee and labour items chosen from the
price list, as charged); ``stock_levels.alert_raised_at`` (a safety-stock alert is pushed once
per crossing).

Revision ID: 0006
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('onsite_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category', sa.String(length=32), server_default='', nullable=False))
        batch_op.add_column(sa.Column('fee_items', sa.JSON(), server_default='[]', nullable=False))
    with op.batch_alter_table('stock_levels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_raised_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('stock_levels', schema=None) as batch_op:
        batch_op.drop_column('alert_raised_at')
    with op.batch_alter_table('onsite_records', schema=None) as batch_op:
        batch_op.drop_column('fee_items')
        batch_op.drop_column('category')
