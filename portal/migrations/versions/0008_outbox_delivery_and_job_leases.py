"""the outbox is delivered outside requests, with retries (status, attempts, next attempt, claim, last error);
job leases keep periodic jobs such as the desk sweep to one process at a time

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 23:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

STATUS = sa.Enum('pending', 'sent', 'failed', name='outboxstatus', native_enum=False, length=20)


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', STATUS, server_default='pending', nullable=False))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=80), server_default='', nullable=False))
        batch_op.alter_column('error', new_column_name='last_error', existing_type=sa.String(length=500),
                              existing_nullable=False, server_default='')
    # What the old columns said: sent, failed for good (an error was recorded), or still waiting.
    op.execute("UPDATE outbox SET status = 'sent', attempts = 1 WHERE sent_at IS NOT NULL")
    op.execute("UPDATE outbox SET status = 'failed', attempts = 1 WHERE sent_at IS NULL AND last_error <> ''")
    op.execute("UPDATE outbox SET next_attempt_at = created_at")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('next_attempt_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_index('ix_outbox_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)

    op.create_table('job_leases',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('holder', sa.String(length=120), server_default='', nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('job_leases')
    op.execute("UPDATE outbox SET last_error = 'not sent' WHERE status = 'failed' AND last_error = ''")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_status_next_attempt_at')
        batch_op.alter_column('last_error', new_column_name='error', existing_type=sa.String(length=500),
                              existing_nullable=False, server_default=None)
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('status')
