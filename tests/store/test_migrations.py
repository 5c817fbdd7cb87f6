"""The schema through Alembic on SQLite and PostgreSQL: from an empty database, from one an
earlier release made (its tables by ``create_all``, no ``alembic_version``), and again."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from earmark.store.db import METADATA, migrate, open_database
from earmark.store.jobs import JobStore

TABLES = {"api_keys", "conversations", "job_results", "jobs", "key_settings", "stream_tasks",
          "tag_collections", "tagging_sessions", "webhook_attempts", "webhook_deliveries"}


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
    METADATA.create_all(old)  # what releases before migrations did at start
    job = JobStore(old).create_job(owner="o", conversation_id=None, name="kept",
                                   audio_path="/nowhere", duration_s=1.0, channels=1,
                                   options={}, webhook_url=None, max_active=5)
    old.dispose()
    db = open_database(tmp_path, database_url)
    try:
        assert "alembic_version" in inspect(db).get_table_names()
        assert JobStore(db).get_job("o", job.id).id == job.id
    finally:
        db.dispose()
