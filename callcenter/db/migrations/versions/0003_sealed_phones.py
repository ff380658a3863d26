"""sealed phone numbers: blind index, ciphertext and masked form instead of the number

``customer_phones.number``/``raw`` become ``number_index``/``number_enc``/``masked``;
``calls.caller_number``/``caller_raw`` become ``caller_index``/``caller_enc``/``caller_masked``.
Existing rows are converted in batches with the keys handed over by
``callcenter.db.engine.migrate(engine, vault=...)`` (``cfg.attributes["vault"]``; the alembic
command line builds it from the settings). The number as originally typed (``raw``) is not kept:
only the normalised number is sealed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00.000000
"""
from __future__ import annotations

from typing import NamedTuple

from alembic import context, op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

_BATCH = 1000


def _vault(conn, *tables: tuple[str, str]):  # type: ignore[no-untyped-def]
    """The vault handed over by migrate(); None is fine only when no table holds a number."""
    vault = context.config.attributes.get("vault")
    if vault is None:
        for table, column in tables:
            if conn.execute(sa.text(f"SELECT 1 FROM {table} WHERE {column} <> '' LIMIT 1")).first():
                raise RuntimeError(
                    f"migration 0003 seals the phone numbers in {table} and needs the keys: "
                    "start the server (callcenter serve), or call callcenter.db.engine."
                    "migrate(engine, vault=settings.phone_vault())")
    return vault


def _convert(conn, table: str, src: str, dst: dict[str, str], fn) -> None:  # type: ignore[no-untyped-def]
    """For every row with a non-empty ``src``, set the ``dst`` columns from ``fn(value)`` (a dict
    keyed like ``dst``), in batches by id so a large table is never held in memory."""
    sets = ", ".join(f"{col} = :{key}" for key, col in dst.items())
    update = sa.text(f"UPDATE {table} SET {sets} WHERE id = :id")
    select = sa.text(f"SELECT id, {src} FROM {table} WHERE id > :after AND {src} <> '' "
                     f"ORDER BY id LIMIT {_BATCH}")
    after = 0
    while True:
        rows = conn.execute(select, {"after": after}).all()
        if not rows:
            return
        conn.execute(update, [{"id": r[0], **fn(r[1])} for r in rows])
        after = rows[-1][0]


class _Sealing(NamedTuple):
    table: str
    number: str  # the old normalised column (String(32)) …
    raw: str  # … and the old as-received column (String(64))
    index: str  # the new columns
    enc: str
    masked: str
    old_index: tuple[str, list[str], bool]  # (name, columns, unique)
    new_index: tuple[str, list[str], bool]


_SEALINGS = (
    _Sealing("customer_phones", "number", "raw", "number_index", "number_enc", "masked",
             ("ix_customer_phones_number", ["number"], True),
             ("ix_customer_phones_number_index", ["number_index"], True)),
    _Sealing("calls", "caller_number", "caller_raw", "caller_index", "caller_enc", "caller_masked",
             ("ix_calls_caller_started", ["caller_number", "started_at"], False),
             ("ix_calls_caller_started", ["caller_index", "started_at"], False)),
)


def _text_column(name: str, length: int | None) -> sa.Column:
    return sa.Column(name, sa.String(length=length) if length else sa.Text(), nullable=False,
                     server_default=sa.text("''"))


def upgrade() -> None:
    conn = op.get_bind()
    vault = _vault(conn, *((t.table, t.number) for t in _SEALINGS))

    def sealed(number: str) -> dict[str, str]:
        s = vault.seal(number)
        return {"index": s.index, "enc": s.enc, "masked": s.masked}

    for t in _SEALINGS:
        with op.batch_alter_table(t.table, schema=None) as batch_op:
            for name, length in ((t.index, 64), (t.enc, None), (t.masked, 32)):
                batch_op.add_column(_text_column(name, length))
        _convert(conn, t.table, t.number, {"index": t.index, "enc": t.enc, "masked": t.masked}, sealed)
        with op.batch_alter_table(t.table, schema=None) as batch_op:
            batch_op.drop_index(t.old_index[0])
            batch_op.drop_column(t.number)
            batch_op.drop_column(t.raw)
            batch_op.create_index(t.new_index[0], t.new_index[1], unique=t.new_index[2])


def downgrade() -> None:
    conn = op.get_bind()
    vault = _vault(conn, *((t.table, t.enc) for t in _SEALINGS))

    def opened(token: str) -> dict[str, str]:
        number = vault.decrypt(token)
        return {"number": number, "raw": number}

    for t in reversed(_SEALINGS):
        with op.batch_alter_table(t.table, schema=None) as batch_op:
            batch_op.add_column(_text_column(t.number, 32))
            batch_op.add_column(_text_column(t.raw, 64))
        _convert(conn, t.table, t.enc, {"number": t.number, "raw": t.raw}, opened)
        with op.batch_alter_table(t.table, schema=None) as batch_op:
            batch_op.drop_index(t.new_index[0])
            for name in (t.masked, t.enc, t.index):
                batch_op.drop_column(name)
            batch_op.create_index(t.old_index[0], t.old_index[1], unique=t.old_index[2])
