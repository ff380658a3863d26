"""dispatch flow: the automatic dispatch and acceptance queues, dispatch to a partner shop

Three columns on ``work_orders`` (``callcenter.dispatch.engine``): ``auto_dispatch_due_at`` (the
rules are to choose an engineer from then on), ``accept_due_at`` (the engineer must accept by
then) and ``shop_id`` (dispatched to a partner shop), with a partial index on each due time so
the dispatch loop reads only the few orders waiting.

Pending orders already in the database are not queued for automatic dispatch: they stay on the
dispatcher's board, as before.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("auto_dispatch_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("accept_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("shop_id", BigId, nullable=True))
        batch.create_foreign_key("fk_work_orders_shop", "service_shops", ["shop_id"], ["id"],
                                 ondelete="SET NULL")
    for name, column in (("ix_work_orders_auto_dispatch_due", "auto_dispatch_due_at"),
                         ("ix_work_orders_accept_due", "accept_due_at")):
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, "work_orders", [column], postgresql_where=where, sqlite_where=where)


def downgrade() -> None:
    op.drop_index("ix_work_orders_accept_due", table_name="work_orders")
    op.drop_index("ix_work_orders_auto_dispatch_due", table_name="work_orders")
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_constraint("fk_work_orders_shop", type_="foreignkey")
        batch.drop_column("shop_id")
        batch.drop_column("accept_due_at")
        batch.drop_column("auto_dispatch_due_at")
