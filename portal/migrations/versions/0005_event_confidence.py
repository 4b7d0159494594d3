"""search events say whether the best result answered (its confidence), and when the question settled

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 21:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('portal_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answered', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('confidence', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('portal_events', schema=None) as batch_op:
        batch_op.drop_column('settled_at')
        batch_op.drop_column('confidence')
        batch_op.drop_column('answered')
