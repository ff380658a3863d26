"""survey results (SA-CS-005) and complaint follow-ups

The ``survey_results`` and ``complaint_followups`` tables of ``callcenter.db.survey``
(``callcenter.survey``): one survey per work order with its six 1–5 scores, and the follow-up a
score ≤ 3 opens (problem class, owner, deadline, resolution). A partial index on the follow-ups
not yet pushed to supervisors.

Revision ID: 0015
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SCORES = ("response_speed", "professionalism", "attitude", "resolution", "overall", "recommend")


def upgrade() -> None:
    op.create_table(
        'survey_results',
        sa.Column('id', BigId, nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('order_id', BigId, nullable=False),
        sa.Column('engineer_id', BigId, nullable=True),
        sa.Column('customer_id', BigId, nullable=False),
        sa.Column('channel', sa.String(length=12), nullable=False),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in SCORES],
        sa.Column('comment', sa.Text(), nullable=False),
        sa.Column('job_id', BigId, nullable=True),
        sa.Column('recorded_by', BigId, nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['work_orders.id'], ondelete='CASCADE',
                                name='fk_survey_results_order'),
        sa.ForeignKeyConstraint(['engineer_id'], ['users.id'], ondelete='SET NULL',
                                name='fk_survey_results_engineer'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE',
                                name='fk_survey_results_customer'),
        sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], ondelete='SET NULL',
                                name='fk_survey_results_recorded_by'),
        sa.PrimaryKeyConstraint('id', name='pk_survey_results'),
        sa.UniqueConstraint('order_id', name='uq_survey_results_order'),
        sa.UniqueConstraint('number', name='uq_survey_results_number'),
        *[sa.CheckConstraint(f"{name} BETWEEN 1 AND 5", name=f"ck_survey_results_{name}") for name in SCORES],
    )
    op.create_index('ix_survey_results_engineer_answered', 'survey_results', ['engineer_id', 'answered_at'])
    op.create_index('ix_survey_results_answered', 'survey_results', ['answered_at'])
    op.create_index('ix_survey_results_customer_id', 'survey_results', ['customer_id'])

    op.create_table(
        'complaint_followups',
        sa.Column('id', BigId, nullable=False),
        sa.Column('order_id', BigId, nullable=False),
        sa.Column('survey_id', BigId, nullable=True),
        sa.Column('engineer_id', BigId, nullable=True),
        sa.Column('problem_class', sa.String(length=8), nullable=False),
        sa.Column('low_scores', sa.String(length=128), nullable=False),
        sa.Column('action', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=12), nullable=False),
        sa.Column('owner_id', BigId, nullable=True),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('taken_by', BigId, nullable=True),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolution', sa.Text(), nullable=False),
        sa.Column('alerted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['work_orders.id'], ondelete='CASCADE',
                                name='fk_complaint_followups_order'),
        sa.ForeignKeyConstraint(['survey_id'], ['survey_results.id'], ondelete='SET NULL',
                                name='fk_complaint_followups_survey'),
        sa.ForeignKeyConstraint(['engineer_id'], ['users.id'], ondelete='SET NULL',
                                name='fk_complaint_followups_engineer'),
        sa.ForeignKeyConstraint(['owner_id'], ['users.id'], ondelete='SET NULL',
                                name='fk_complaint_followups_owner'),
        sa.ForeignKeyConstraint(['taken_by'], ['users.id'], ondelete='SET NULL',
                                name='fk_complaint_followups_taken_by'),
        sa.PrimaryKeyConstraint('id', name='pk_complaint_followups'),
        sa.UniqueConstraint('order_id', name='uq_complaint_followups_order'),
    )
    op.create_index('ix_complaint_followups_status_opened', 'complaint_followups', ['status', 'opened_at'])
    op.create_index('ix_complaint_followups_owner_status', 'complaint_followups', ['owner_id', 'status'])
    unalerted = sa.text("alerted_at IS NULL")
    op.create_index('ix_complaint_followups_unalerted', 'complaint_followups', ['opened_at'],
                    postgresql_where=unalerted, sqlite_where=unalerted)


def downgrade() -> None:
    for name in ('ix_complaint_followups_unalerted', 'ix_complaint_followups_owner_status',
                 'ix_complaint_followups_status_opened'):
        op.drop_index(name, table_name='complaint_followups')
    op.drop_table('complaint_followups')
    for name in ('ix_survey_results_customer_id', 'ix_survey_results_answered',
                 'ix_survey_results_engineer_answered'):
        op.drop_index(name, table_name='survey_results')
    op.drop_table('survey_results')
