"""outbound calls: callback and survey jobs, their attempts, the do-not-call list

The tables of ``callcenter.db.outbound`` (``callcenter.outbound``). Partial indexes on the
dialler's queue (scheduled jobs by priority and due time), on jobs in flight and on attempts
whose outcome is still open (crash recovery reads them at start-up).

Revision ID: 0014
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'outbound_jobs',
        sa.Column('id', BigId, nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('order_id', BigId, nullable=True),
        sa.Column('customer_id', BigId, nullable=True),
        sa.Column('call_linkedid', sa.String(length=64), nullable=False),
        sa.Column('dedupe_key', sa.String(length=128), nullable=True),
        sa.Column('number_index', sa.String(length=64), nullable=False),
        sa.Column('number_enc', sa.Text(), nullable=False),
        sa.Column('number_masked', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_outcome', sa.String(length=20), nullable=False),
        sa.Column('agent_id', BigId, nullable=True),
        sa.Column('created_by', BigId, nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['work_orders.id'], ondelete='CASCADE',
                                name='fk_outbound_jobs_order'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE',
                                name='fk_outbound_jobs_customer'),
        sa.ForeignKeyConstraint(['agent_id'], ['users.id'], ondelete='SET NULL',
                                name='fk_outbound_jobs_agent'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL',
                                name='fk_outbound_jobs_created_by'),
        sa.PrimaryKeyConstraint('id', name='pk_outbound_jobs'),
        sa.UniqueConstraint('dedupe_key', name='uq_outbound_jobs_dedupe_key'),
    )
    scheduled, dialling = sa.text("status = 'scheduled'"), sa.text("status = 'dialling'")
    op.create_index('ix_outbound_jobs_due', 'outbound_jobs', ['priority', 'due_at'],
                    postgresql_where=scheduled, sqlite_where=scheduled)
    op.create_index('ix_outbound_jobs_dialling', 'outbound_jobs', ['updated_at'],
                    postgresql_where=dialling, sqlite_where=dialling)
    op.create_index('ix_outbound_jobs_status_updated', 'outbound_jobs', ['status', 'updated_at'])
    op.create_index('ix_outbound_jobs_order', 'outbound_jobs', ['order_id'])
    op.create_index('ix_outbound_jobs_customer', 'outbound_jobs', ['customer_id'])
    op.create_table(
        'outbound_attempts',
        sa.Column('id', sa.String(length=48), nullable=False),
        sa.Column('job_id', BigId, nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('outcome', sa.String(length=16), nullable=True),
        sa.Column('reason_code', sa.Integer(), nullable=True),
        sa.Column('channel', sa.String(length=128), nullable=False),
        sa.Column('answers', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['job_id'], ['outbound_jobs.id'], ondelete='CASCADE',
                                name='fk_outbound_attempts_job'),
        sa.PrimaryKeyConstraint('id', name='pk_outbound_attempts'),
        sa.UniqueConstraint('job_id', 'seq', name='uq_outbound_attempts_job_seq'),
    )
    open_ = sa.text("state <> 'done'")
    op.create_index('ix_outbound_attempts_open', 'outbound_attempts', ['started_at'],
                    postgresql_where=open_, sqlite_where=open_)
    op.create_table(
        'outbound_dnc',
        sa.Column('id', BigId, nullable=False),
        sa.Column('number_index', sa.String(length=64), nullable=False),
        sa.Column('number_enc', sa.Text(), nullable=False),
        sa.Column('number_masked', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('created_by', BigId, nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL',
                                name='fk_outbound_dnc_created_by'),
        sa.PrimaryKeyConstraint('id', name='pk_outbound_dnc'),
        sa.UniqueConstraint('number_index', name='uq_outbound_dnc_number_index'),
    )


def downgrade() -> None:
    op.drop_table('outbound_dnc')
    op.drop_index('ix_outbound_attempts_open', table_name='outbound_attempts')
    op.drop_table('outbound_attempts')
    for name in ('ix_outbound_jobs_customer', 'ix_outbound_jobs_order', 'ix_outbound_jobs_status_updated',
                 'ix_outbound_jobs_dialling', 'ix_outbound_jobs_due'):
        op.drop_index(name, table_name='outbound_jobs')
    op.drop_table('outbound_jobs')
