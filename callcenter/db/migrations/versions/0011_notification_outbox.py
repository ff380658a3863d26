"""notification outbox: messages to customers, queued with the change that calls for them

The ``notifications`` table of ``callcenter.db.notify`` (``callcenter.notify``): the SA-AP-003
confirmation and the visit reminder now, the survey link later. Partial indexes on the two
queues the sender reads (due queued rows; claimed rows whose lease may have run out).

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'notifications',
        sa.Column('id', BigId, nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('recipient_index', sa.String(length=64), nullable=False),
        sa.Column('recipient_enc', sa.Text(), nullable=False),
        sa.Column('recipient_masked', sa.String(length=32), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('order_id', BigId, nullable=True),
        sa.Column('appointment_id', BigId, nullable=True),
        sa.Column('dedupe_key', sa.String(length=128), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=200), nullable=False),
        sa.Column('gateway_id', sa.String(length=64), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['order_id'], ['work_orders.id'], ondelete='CASCADE',
                                name='fk_notifications_order'),
        sa.ForeignKeyConstraint(['appointment_id'], ['appointments.id'], ondelete='CASCADE',
                                name='fk_notifications_appointment'),
        sa.PrimaryKeyConstraint('id', name='pk_notifications'),
        sa.UniqueConstraint('dedupe_key', name='uq_notifications_dedupe_key'),
    )
    queued, sending = sa.text("status = 'queued'"), sa.text("status = 'sending'")
    op.create_index('ix_notifications_due', 'notifications', ['due_at'],
                    postgresql_where=queued, sqlite_where=queued)
    op.create_index('ix_notifications_lease', 'notifications', ['lease_until'],
                    postgresql_where=sending, sqlite_where=sending)
    op.create_index('ix_notifications_order_created', 'notifications', ['order_id', 'created_at'])
    op.create_index('ix_notifications_status_created', 'notifications', ['status', 'created_at'])
    op.create_index('ix_notifications_appointment', 'notifications', ['appointment_id'])


def downgrade() -> None:
    for name in ('ix_notifications_appointment', 'ix_notifications_status_created',
                 'ix_notifications_order_created', 'ix_notifications_lease', 'ix_notifications_due'):
        op.drop_index(name, table_name='notifications')
    op.drop_table('notifications')
