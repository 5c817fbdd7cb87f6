"""The database: SQLAlchemy Core over a SQLite file by default.

Every table lives in ``METADATA``; code talks SQL through SQLAlchemy so that a PostgreSQL URL
can replace the SQLite file later without touching the queries.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Column,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)

METADATA = MetaData()

tag_collections = Table(
    "tag_collections",
    METADATA,
    Column("owner", String(64), primary_key=True),  # sha256 of the API key, or "local"
    Column("name", String(64), primary_key=True),
    Column("description", Text, nullable=False, default=""),
    Column("tags_json", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)


def open_database(data_dir: str | Path) -> Engine:
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path / 'earmark.db'}")

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _record) -> None:  # noqa: ANN001
        # WAL: readers never block the writer; a crash never leaves a half-written row.
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    METADATA.create_all(engine)
    return engine
