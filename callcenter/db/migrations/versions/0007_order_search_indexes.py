"""indexes for the work-order search (prefix search on numbers, models and customer names)

Prefix search (``WO20261123``, ``KFR-35``, ``张``) must use an index on 3,000,000 orders and
1,000,000 customers. PostgreSQL uses a plain btree for ``LIKE 'p%'`` only under the "C"
collation, so it gets ``varchar_pattern_ops`` indexes (they serve ``LIKE`` whatever the
database's collation). SQLite answers a prefix ``GLOB`` from a plain index (BINARY collation):
``work_orders.number`` and ``product_model`` already have one; ``customers.name`` gets one.

Not declared in the models on purpose: the pattern indexes exist on PostgreSQL only (declared
there they would duplicate the unique index on SQLite), so autogenerate must skip them.

Revision ID: 0007
Revises: 0002
"""
from alembic import op


revision = '0007'
down_revision = '0002'
branch_labels = None
depends_on = None

_PATTERN = (
    ("ix_work_orders_number_pattern", "work_orders", "number"),
    ("ix_work_orders_product_model_pattern", "work_orders", "product_model"),
    ("ix_customers_name_pattern", "customers", "name"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table, column in _PATTERN:
            op.create_index(name, table, [column], postgresql_ops={column: "varchar_pattern_ops"})
    else:
        op.create_index("ix_customers_name_pattern", "customers", ["name"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table, _ in _PATTERN:
            op.drop_index(name, table_name=table)
    else:
        op.drop_index("ix_customers_name_pattern", table_name="customers")
