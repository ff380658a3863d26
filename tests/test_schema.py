"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL.

Features developed side by side add Alembic revisions; a column added to a model without its
migration (or the reverse) would only show up on a customer's database. This compares the
migrated database with the models, as ``alembic revision --autogenerate`` would."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from callcenter.db.models import Base

# Indexes that exist only in migrations on purpose: partial or operator-class indexes the
# models cannot state portably (0005 SLA watch index, 0007 prefix-search indexes, 0013 monthly report).
MIGRATION_ONLY_INDEXES = {
    "ix_work_orders_unescalated",
    "ix_work_orders_number_pattern",
    "ix_work_orders_product_model_pattern",
    "ix_customers_name_pattern",
    # 0013: the monthly report's partial (and, on PostgreSQL, covering) indexes.
    "ix_work_orders_completed", "ix_work_orders_surveyed", "ix_work_orders_dissatisfied",
}


def _differences(conn) -> list:  # type: ignore[no-untyped-def]
    diffs = []
    for d in compare_metadata(MigrationContext.configure(conn), Base.metadata):
        item = d[0] if isinstance(d, list) else d
        if item[0] == "remove_index" and item[1].name in MIGRATION_ONLY_INDEXES:
            continue
        diffs.append(d)
    return diffs


async def test_migrations_match_the_models(engine):
    async with engine.connect() as conn:
        diffs = await conn.run_sync(_differences)
    assert diffs == [], f"models and migrations differ: {diffs}"


async def test_one_head():
    """Branches are merged before a release: a new revision must build on the single head."""
    from alembic.script import ScriptDirectory

    from callcenter.db.engine import _alembic_config

    heads = ScriptDirectory.from_config(_alembic_config()).get_heads()
    assert len(heads) == 1, f"several migration heads, add a merge revision: {heads}"
