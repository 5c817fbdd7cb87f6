"""Baseline: the schema of the releases before migrations (made by ``create_all``).

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('revoked', sa.Float(), nullable=True),
    sa.Column('rpm', sa.Integer(), nullable=True),
    sa.Column('max_sessions', sa.Integer(), nullable=True),
    sa.Column('max_jobs', sa.Integer(), nullable=True),
    sa.Column('max_streams', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('key_hash'),
    sa.UniqueConstraint('key_id')
    )
    op.create_table('conversations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversations_owner'), ['owner'], unique=False)

    op.create_table('key_settings',
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('webhook_url', sa.Text(), nullable=True),
    sa.Column('updated', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('owner')
    )
    op.create_table('stream_tasks',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('request_json', sa.Text(), nullable=False),
    sa.Column('webhook_url', sa.Text(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('updated', sa.Float(), nullable=False),
    sa.Column('next_segment', sa.Integer(), nullable=False),
    sa.Column('stream_offset_s', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stream_tasks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stream_tasks_owner'), ['owner'], unique=False)

    op.create_table('tag_collections',
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('tags_json', sa.Text(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('updated', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('owner', 'name')
    )
    op.create_table('tagging_sessions',
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('convo_id', sa.String(length=200), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('request_json', sa.Text(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('finished', sa.Float(), nullable=True),
    sa.Column('result_json', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('owner', 'convo_id')
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.Float(), nullable=False),
    sa.Column('delivered_at', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_subject'),
            ['subject'], unique=False)
        batch_op.create_index('webhook_deliveries_due', ['state', 'next_attempt_at'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('conversation_id', sa.String(length=32), nullable=False),
    sa.Column('owner', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created', sa.Float(), nullable=False),
    sa.Column('updated', sa.Float(), nullable=False),
    sa.Column('finished', sa.Float(), nullable=True),
    sa.Column('audio_path', sa.Text(), nullable=True),
    sa.Column('offset_s', sa.Float(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('channels', sa.Integer(), nullable=False),
    sa.Column('options_json', sa.Text(), nullable=False),
    sa.Column('webhook_url', sa.Text(), nullable=True),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_conversation_id'),
            ['conversation_id'], unique=False)
        batch_op.create_index('jobs_owner_status', ['owner', 'status'], unique=False)
        batch_op.create_index('jobs_status_created', ['status', 'created'], unique=False)

    op.create_table('webhook_attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_attempts_delivery_id'),
            ['delivery_id'], unique=False)

    op.create_table('job_results',
    sa.Column('job_id', sa.String(length=36), nullable=False),
    sa.Column('conversation_id', sa.String(length=32), nullable=False),
    sa.Column('messages_json', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ),
    sa.PrimaryKeyConstraint('job_id')
    )
    with op.batch_alter_table('job_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_results_conversation_id'),
            ['conversation_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('job_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_results_conversation_id'))

    op.drop_table('job_results')
    with op.batch_alter_table('webhook_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_attempts_delivery_id'))

    op.drop_table('webhook_attempts')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index('jobs_status_created')
        batch_op.drop_index('jobs_owner_status')
        batch_op.drop_index(batch_op.f('ix_jobs_conversation_id'))

    op.drop_table('jobs')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('webhook_deliveries_due')
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_subject'))

    op.drop_table('webhook_deliveries')
    op.drop_table('tagging_sessions')
    op.drop_table('tag_collections')
    with op.batch_alter_table('stream_tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stream_tasks_owner'))

    op.drop_table('stream_tasks')
    op.drop_table('key_settings')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_owner'))

    op.drop_table('conversations')
    op.drop_table('api_keys')
