"""The schema through Alembic on SQLite and PostgreSQL: from an empty database, from one an
earlier release made (its tables by ``create_all``, no ``alembic_version``), and again."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from earmark.store.db import METADATA, migrate, open_database
from earmark.store.jobs import JobStore

BASELINE_TABLES = {"api_keys", "conversations", "job_results", "jobs", "key_settings",
                   "stream_tasks", "tag_collections", "tagging_sessions", "webhook_attempts",
                   "webhook_deliveries"}  # what releases before migrations created
TABLES = BASELINE_TABLES | {"nodes"}  # and what later revisions added


def test_an_empty_database_gets_the_whole_schema(tmp_path, database_url) -> None:
    db = open_database(tmp_path, database_url)
    try:
        assert TABLES | {"alembic_version"} <= set(inspect(db).get_table_names())
        assert migrate(db) == migrate(db)  # a second run changes nothing
    finally:
        db.dispose()


def test_a_database_of_the_previous_release_keeps_its_rows(tmp_path, database_url) -> None:
    url = database_url or f"sqlite:///{tmp_path}/earmark.db"
    old = create_engine(url)
    # What releases before migrations did at start.
    METADATA.create_all(old, tables=[t for t in METADATA.sorted_tables
                                     if t.name in BASELINE_TABLES])
    job = JobStore(old).create_job(owner="o", conversation_id=None, name="kept",
                                   audio_path="/nowhere", duration_s=1.0, channels=1,
                                   options={}, webhook_url=None, max_active=5)
    old.dispose()
    db = open_database(tmp_path, database_url)
    try:
        assert TABLES | {"alembic_version"} <= set(inspect(db).get_table_names())
        assert JobStore(db).get_job("o", job.id).id == job.id
    finally:
        db.dispose()


def test_the_migrations_build_exactly_the_tables_the_code_declares(tmp_path,
                                                                   database_url) -> None:
    """A column or table added to ``store/db.py`` without its migration fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    db = open_database(tmp_path, database_url)
    try:
        with db.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), METADATA) == []
    finally:
        db.dispose()
