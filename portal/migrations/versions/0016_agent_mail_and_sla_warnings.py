"""agents choose which e-mail notifications they get (agent_mail_preferences); SLA warnings recorded once per
ticket and target (sla_warnings)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 05:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent_mail_preferences',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('assigned', sa.Boolean(), nullable=False),
    sa.Column('escalated', sa.Boolean(), nullable=False),
    sa.Column('customer_replied', sa.Boolean(), nullable=False),
    sa.Column('reopened', sa.Boolean(), nullable=False),
    sa.Column('sla_warning', sa.Boolean(), nullable=False),
    sa.Column('language', sa.String(length=5), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('sla_warnings',
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=12), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ticket_id', 'target')
    )


def downgrade() -> None:
    op.drop_table('sla_warnings')
    op.drop_table('agent_mail_preferences')
