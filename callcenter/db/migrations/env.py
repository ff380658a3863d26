"""Alembic environment: runs on the connection handed over by callcenter.db.engine.migrate,
or, from the alembic command line, on CALLCENTER_DATABASE_URL."""

from __future__ import annotations

import asyncio

from alembic import context

from callcenter.db.models import Base

target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from callcenter.db.engine import make_engine
    from callcenter.settings import Settings

    async def _main() -> None:
        settings = Settings.from_env()
        # Revisions that seal existing phone numbers (0003) need the keys.
        context.config.attributes.setdefault("vault", settings.phone_vault())
        engine = make_engine(settings.database_url)
        async with engine.begin() as conn:
            await conn.run_sync(_run)
        await engine.dispose()

    asyncio.run(_main())
