"""the search index lives in the database: generations, documents with their chunks, vectors, change numbers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 23:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'search_generations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uid', sa.String(length=32), nullable=False),
        sa.Column('ranking', sa.String(length=40), nullable=False),
        sa.Column('signature', sa.String(length=500), nullable=False),
        sa.Column('fields', sa.JSON(), nullable=False),
        sa.Column('max_chars', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('build_seconds', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('uid'),
    )
    state = op.create_table(
        'search_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('last_change', sa.BigInteger(), nullable=False),
        sa.Column('active_generation_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['active_generation_id'], ['search_generations.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(state, [{'id': 1, 'last_change': 0, 'active_generation_id': None}])
    op.create_table(
        'search_documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('generation_id', sa.Integer(), nullable=False),
        sa.Column('slug', sa.String(length=200), nullable=False),
        sa.Column('change', sa.BigInteger(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('article', sa.JSON(), nullable=True),
        sa.Column('chunks', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['generation_id'], ['search_generations.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('generation_id', 'slug'),
    )
    op.create_index('ix_search_documents_changes', 'search_documents', ['generation_id', 'change'], unique=False)
    op.create_table(
        'search_vectors',
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('backend', sa.String(length=40), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('owners', sa.LargeBinary(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['document_id'], ['search_documents.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('document_id', 'backend'),
    )


def downgrade() -> None:
    op.drop_table('search_vectors')
    op.drop_index('ix_search_documents_changes', table_name='search_documents')
    op.drop_table('search_documents')
    op.drop_table('search_state')
    op.drop_table('search_generations')
