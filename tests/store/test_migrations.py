"""The schema through Alembic on SQLite and PostgreSQL: from an empty database, from one an
earlier release made (its tables by ``create_all``, no ``alembic_version``), and again."""

from __future__ import annotations

from sqlalchemy import create_engine, insert, inspect

from earmark.store.db import BASELINE, METADATA, migrate, open_database, tagging_sessions
from earmark.store.live_jobs import LiveJobStore

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
    # What releases before migrations made at start: the baseline's tables, no version row.
    migrate(old, BASELINE)
    with old.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
    assert set(inspect(old).get_table_names()) == BASELINE_TABLES
    with old.begin() as conn:
        conn.execute(insert(tagging_sessions).values(
            owner="o", convo_id="kept", run_id="r", state="listening", reason=None,
            request_json="{}", created=1.0, finished=None, result_json=None))
    old.dispose()
    db = open_database(tmp_path, database_url)
    try:
        assert TABLES | {"alembic_version"} <= set(inspect(db).get_table_names())
        kept = LiveJobStore(db).listening_tag_sessions()
        assert [s.convo_id for s in kept] == ["kept"]  # its row, now with a null node
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
