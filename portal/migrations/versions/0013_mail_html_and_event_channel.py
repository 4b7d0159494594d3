"""e-mails carry an HTML part (outbox.html_body, "" = plain text only); funnel events say their channel
(portal_events.channel: 'portal' or 'email'), so deflections by e-mail are counted apart

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 05:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('html_body', sa.Text(), server_default='', nullable=False))
    with op.batch_alter_table('portal_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel', sa.String(length=10), server_default='portal', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('portal_events', schema=None) as batch_op:
        batch_op.drop_column('channel')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('html_body')
