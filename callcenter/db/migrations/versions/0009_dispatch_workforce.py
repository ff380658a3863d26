"""dispatch workforce: engineer profiles, skills, leave, partner shops, decisions, refusals

New tables of ``callcenter.db.workforce`` and two indexes on ``work_orders`` the candidate loader
reads (an engineer's recent completed orders; the last order dispatched to them).

Revision ID: 0009
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'engineer_profiles',
        sa.Column('user_id', BigId, nullable=False),
        sa.Column('region', sa.String(length=32), nullable=False),
        sa.Column('base_lat', sa.Float(), nullable=True),
        sa.Column('base_lon', sa.Float(), nullable=True),
        sa.Column('last_lat', sa.Float(), nullable=True),
        sa.Column('last_lon', sa.Float(), nullable=True),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('load_cap', sa.Integer(), nullable=False),
        sa.Column('working_hours', sa.JSON(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint('load_cap >= 1', name='ck_engineer_profiles_load_cap'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                name='fk_engineer_profiles_user'),
        sa.PrimaryKeyConstraint('user_id', name='pk_engineer_profiles'),
    )
    op.create_index('ix_engineer_profiles_base', 'engineer_profiles', ['base_lat', 'base_lon'])
    op.create_index('ix_engineer_profiles_last', 'engineer_profiles', ['last_lat', 'last_lon'])
    op.create_index('ix_engineer_profiles_region', 'engineer_profiles', ['region'])

    op.create_table(
        'engineer_skills',
        sa.Column('id', BigId, nullable=False),
        sa.Column('engineer_id', BigId, nullable=False),
        sa.Column('category', sa.String(length=32), nullable=False),
        sa.Column('certificate', sa.String(length=64), nullable=False),
        sa.Column('certificate_no', sa.String(length=64), nullable=False),
        sa.Column('certificate_expires', sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(['engineer_id'], ['users.id'], ondelete='CASCADE',
                                name='fk_engineer_skills_engineer'),
        sa.PrimaryKeyConstraint('id', name='pk_engineer_skills'),
        sa.UniqueConstraint('engineer_id', 'category', name='uq_engineer_skills_engineer_category'),
    )
    op.create_index('ix_engineer_skills_category', 'engineer_skills', ['category', 'engineer_id'])

    op.create_table(
        'engineer_leave',
        sa.Column('id', BigId, nullable=False),
        sa.Column('engineer_id', BigId, nullable=False),
        sa.Column('start_date', sa.Date(), nullable=False),
        sa.Column('end_date', sa.Date(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('created_by', BigId, nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('end_date >= start_date', name='ck_engineer_leave_dates'),
        sa.ForeignKeyConstraint(['engineer_id'], ['users.id'], ondelete='CASCADE',
                                name='fk_engineer_leave_engineer'),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL',
                                name='fk_engineer_leave_created_by'),
        sa.PrimaryKeyConstraint('id', name='pk_engineer_leave'),
    )
    op.create_index('ix_engineer_leave_engineer_end', 'engineer_leave', ['engineer_id', 'end_date'])

    op.create_table(
        'service_shops',
        sa.Column('id', BigId, nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('region', sa.String(length=32), nullable=False),
        sa.Column('lat', sa.Float(), nullable=True),
        sa.Column('lon', sa.Float(), nullable=True),
        sa.Column('categories', sa.JSON(), nullable=False),
        sa.Column('capacity', sa.Integer(), nullable=False),
        sa.Column('contact_name', sa.String(length=64), nullable=False),
        sa.Column('contact_phone_enc', sa.Text(), nullable=False),
        sa.Column('contact_phone_masked', sa.String(length=32), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint('capacity >= 0', name='ck_service_shops_capacity'),
        sa.PrimaryKeyConstraint('id', name='pk_service_shops'),
        sa.UniqueConstraint('name', name='uq_service_shops_name'),
    )
    op.create_index('ix_service_shops_position', 'service_shops', ['lat', 'lon'])
    op.create_index('ix_service_shops_region', 'service_shops', ['region'])

    op.create_table(
        'dispatch_decisions',
        sa.Column('id', BigId, nullable=False),
        sa.Column('order_id', BigId, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('mode', sa.String(length=8), nullable=False),
        sa.Column('engineer_id', BigId, nullable=True),
        sa.Column('shop_id', BigId, nullable=True),
        sa.Column('candidates', sa.JSON(), nullable=False),
        sa.Column('score', sa.JSON(), nullable=False),
        sa.Column('rule_version', sa.String(length=32), nullable=False),
        sa.Column('weights', sa.JSON(), nullable=False),
        sa.Column('decided_by', BigId, nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.CheckConstraint("mode IN ('auto', 'manual')", name='ck_dispatch_decisions_mode'),
        sa.ForeignKeyConstraint(['order_id'], ['work_orders.id'], ondelete='CASCADE',
                                name='fk_dispatch_decisions_order'),
        sa.ForeignKeyConstraint(['engineer_id'], ['users.id'], ondelete='SET NULL',
                                name='fk_dispatch_decisions_engineer'),
        sa.ForeignKeyConstraint(['shop_id'], ['service_shops.id'], ondelete='SET NULL',
                                name='fk_dispatch_decisions_shop'),
        sa.ForeignKeyConstraint(['decided_by'], ['users.id'], ondelete='SET NULL',
                                name='fk_dispatch_decisions_decided_by'),
        sa.PrimaryKeyConstraint('id', name='pk_dispatch_decisions'),
    )
    op.create_index('ix_dispatch_decisions_order_at', 'dispatch_decisions', ['order_id', 'at'])
    op.create_index('ix_dispatch_decisions_shop', 'dispatch_decisions', ['shop_id'])
    op.create_index('ix_dispatch_decisions_engineer_id', 'dispatch_decisions', ['engineer_id'])

    op.create_table(
        'dispatch_refusals',
        sa.Column('id', BigId, nullable=False),
        sa.Column('order_id', BigId, nullable=False),
        sa.Column('engineer_id', BigId, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('reason', sa.String(length=8), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('timed_out', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['work_orders.id'], ondelete='CASCADE',
                                name='fk_dispatch_refusals_order'),
        sa.ForeignKeyConstraint(['engineer_id'], ['users.id'], ondelete='CASCADE',
                                name='fk_dispatch_refusals_engineer'),
        sa.PrimaryKeyConstraint('id', name='pk_dispatch_refusals'),
    )
    op.create_index('ix_dispatch_refusals_order', 'dispatch_refusals', ['order_id'])
    op.create_index('ix_dispatch_refusals_engineer_at', 'dispatch_refusals', ['engineer_id', 'at'])

    op.create_index('ix_work_orders_engineer_completed', 'work_orders', ['engineer_id', 'completed_at'])
    op.create_index('ix_work_orders_engineer_dispatched', 'work_orders', ['engineer_id', 'dispatched_at'])


def downgrade() -> None:
    op.drop_index('ix_work_orders_engineer_dispatched', table_name='work_orders')
    op.drop_index('ix_work_orders_engineer_completed', table_name='work_orders')
    op.drop_table('dispatch_refusals')
    op.drop_table('dispatch_decisions')
    op.drop_table('service_shops')
    op.drop_table('engineer_leave')
    op.drop_table('engineer_skills')
    op.drop_table('engineer_profiles')
