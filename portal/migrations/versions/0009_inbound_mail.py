"""mail in: every fetched e-mail recorded once with what it became (ticket, reply, refused, quarantined...)
and its original message; outgoing e-mails record their Message-ID so replies find their ticket

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 02:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

DISPOSITION = sa.Enum('ticket', 'reply', 'refused', 'duplicate', 'quarantined', 'discarded',
                      name='maildisposition', native_enum=False, length=20)


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.String(length=250), server_default='', nullable=False))
        batch_op.create_index('ix_outbox_message_id', ['message_id'], unique=False)

    op.create_table('inbound_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mailbox', sa.String(length=200), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.String(length=250), nullable=False),
    sa.Column('sender', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('disposition', DISPOSITION, nullable=False),
    sa.Column('reason', sa.String(length=300), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('mailbox', 'uidvalidity', 'uid')
    )
    with op.batch_alter_table('inbound_mail', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_mail_disposition', ['disposition'], unique=False)
        batch_op.create_index('ix_inbound_mail_message_id', ['message_id'], unique=False)
        batch_op.create_index('ix_inbound_mail_ticket_id', ['ticket_id'], unique=False)
        batch_op.create_index('ix_inbound_mail_sender_received_at', ['sender', 'received_at'], unique=False)


def downgrade() -> None:
    op.drop_table('inbound_mail')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_message_id')
        batch_op.drop_column('message_id')
