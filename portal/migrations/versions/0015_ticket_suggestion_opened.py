"""the articles a customer opened before creating a ticket told apart from the ones only shown
(ticket_suggestions.opened; suggestions recorded before this revision count as only shown)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 06:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('ticket_suggestions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('opened', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('ticket_suggestions', schema=None) as batch_op:
        batch_op.drop_column('opened')
