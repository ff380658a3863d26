"""outbound attempts keep their channel's evidence; the service's record of queue logins

- ``outbound_attempts``: ``answered_at``, ``agent_member``, ``hangup_cause`` — what the
  attempt's own channel showed (``callcenter.outbound.evidence``), so an answered callback is
  never dialled again even when its ``OriginateResponse`` is lost.
- ``queue_logins``: who is logged in to which queue, paused and why
  (``callcenter.db.agentstate``), restored into Asterisk after it restarts.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("outbound_attempts") as b:
        b.add_column(sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("agent_member", sa.String(length=64), nullable=True))
        b.add_column(sa.Column("hangup_cause", sa.Integer(), nullable=True))
    op.create_table(
        "queue_logins",
        sa.Column("queue", sa.String(length=64), nullable=False),
        sa.Column("interface", sa.String(length=128), nullable=False),
        sa.Column("member_name", sa.String(length=64), nullable=False),
        sa.Column("state_interface", sa.String(length=128), nullable=False),
        sa.Column("penalty", sa.Integer(), nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("seen_boot", BigId, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL", name="fk_queue_logins_user"),
        sa.PrimaryKeyConstraint("queue", "interface"),
    )


def downgrade() -> None:
    op.drop_table("queue_logins")
    with op.batch_alter_table("outbound_attempts") as b:
        b.drop_column("hangup_cause")
        b.drop_column("agent_member")
        b.drop_column("answered_at")
