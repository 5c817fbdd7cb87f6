"""The database: SQLAlchemy Core over a SQLite file by default, or any SQLAlchemy URL
(``--database-url``; PostgreSQL through psycopg 3 for a cluster).

Every table lives in ``METADATA``; code talks SQL through SQLAlchemy, so the queries are the
same on both. The schema is Alembic's (``store/migrations``): ``open_database`` brings any
database to this release's head, so an empty database, one of an earlier release, and one
made before migrations existed (its tables, no ``alembic_version``) all work.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
)

logger = logging.getLogger(__name__)

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

conversations = Table(
    "conversations",
    METADATA,
    Column("id", String(32), primary_key=True),
    Column("owner", String(64), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("duration_s", Float, nullable=False, default=0.0),  # audio appended so far
)

# One job per uploaded file; a conversation has one or more (PUT appends).
jobs = Table(
    "jobs",
    METADATA,
    Column("id", String(36), primary_key=True),
    Column("conversation_id", String(32), ForeignKey("conversations.id"), nullable=False,
           index=True),
    Column("owner", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("finished", Float),
    Column("audio_path", Text),  # None once the audio retention has passed
    Column("offset_s", Float, nullable=False),  # where this audio starts in the conversation
    Column("duration_s", Float, nullable=False),
    Column("channels", Integer, nullable=False),
    Column("options_json", Text, nullable=False),
    Column("webhook_url", Text),
    Column("runs", Integer, nullable=False, default=0),  # starts, counting crash restarts
    Index("jobs_owner_status", "owner", "status"),
    Index("jobs_status_created", "status", "created"),
)

job_results = Table(
    "job_results",
    METADATA,
    Column("job_id", String(36), ForeignKey("jobs.id"), primary_key=True),
    Column("conversation_id", String(32), nullable=False, index=True),
    Column("messages_json", Text, nullable=False),
)

# The webhook outbox: a row is written in the same transaction as the change it reports.
webhook_deliveries = Table(
    "webhook_deliveries",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # "job" (signed headers)
    Column("subject", String(64), nullable=False, index=True),  # job id: order is per subject
    Column("owner", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),  # the exact bytes sent (and signed)
    Column("created", Float, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivered | abandoned
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("delivered_at", Float),
    Index("webhook_deliveries_due", "state", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("webhook_deliveries.id"), nullable=False,
           index=True),
    Column("at", Float, nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Float, nullable=False),
)

# Tagging sessions (seeds 000/001): one row per (owner, convoId); a new POST overwrites it.
tagging_sessions = Table(
    "tagging_sessions",
    METADATA,
    Column("owner", String(64), primary_key=True),
    Column("convo_id", String(200), primary_key=True),
    Column("run_id", String(36), nullable=False),  # changes on overwrite: stale runs lose
    Column("state", String(16), nullable=False),  # listening | completed | failed
    Column("reason", Text),
    Column("request_json", Text, nullable=False),  # url, webhook, seedSentence, authorization
    Column("created", Float, nullable=False),
    Column("finished", Float),
    Column("result_json", Text),  # tags, undocumented tags, transcript, speech seconds
    Column("node", String(200)),  # the node running it (a shared database); None: one node
)

# Stream jobs (seed 004).
stream_tasks = Table(
    "stream_tasks",
    METADATA,
    Column("id", String(36), primary_key=True),
    Column("owner", String(64), nullable=False, index=True),
    Column("state", String(16), nullable=False),  # running | stopped
    Column("status", Integer),  # the last callback status (14, 15, 16, -1) once stopped
    Column("reason", Text),
    Column("request_json", Text, nullable=False),
    Column("webhook_url", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("next_segment", Integer, nullable=False, default=0),
    # stream time all of whose words were sent: where a resumed run starts
    Column("stream_offset_s", Float, nullable=False, default=0.0),
    Column("node", String(200)),  # the node running it (a shared database); None: one node
)

# API keys, by the SHA-256 of the key: the key itself is shown once at creation, never stored.
api_keys = Table(
    "api_keys",
    METADATA,
    Column("key_hash", String(64), primary_key=True),
    Column("key_id", String(16), nullable=False, unique=True),  # public handle, for revoking
    Column("name", Text, nullable=False),
    Column("created", Float, nullable=False),
    Column("revoked", Float),
    Column("rpm", Integer),  # NULL: the server default
    Column("max_sessions", Integer),
    Column("max_jobs", Integer),
    Column("max_streams", Integer),
)

# Server processes sharing this database, by their heartbeats (``store/nodes.py``).
nodes = Table(
    "nodes",
    METADATA,
    Column("node_id", String(36), primary_key=True),
    Column("name", Text, nullable=False),
    Column("url", Text),
    Column("version", String(32), nullable=False),
    Column("started", Float, nullable=False),
    Column("heartbeat", Float, nullable=False),
    Column("ready", Boolean, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("sessions", Integer, nullable=False),
    Column("streams", Integer, nullable=False),
    Column("jobs_running", Integer, nullable=False),
    Column("owners_json", Text, nullable=False, server_default="{}"),  # sessions per key
)

# Per-key settings (the stream jobs' callback URL).
key_settings = Table(
    "key_settings",
    METADATA,
    Column("owner", String(64), primary_key=True),
    Column("webhook_url", Text),
    Column("updated", Float, nullable=False),
)


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema every database had before migrations existed


def open_database(data_dir: str | Path, url: str | None = None) -> Engine:
    """The database (created or migrated to this release's schema). ``url``: a SQLAlchemy
    URL (``postgresql+psycopg://user@host/db``); None: ``earmark.db`` in ``data_dir``."""
    path = Path(data_dir)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)  # uploads and results: owner only
    if url:
        engine = create_engine(url, pool_pre_ping=True)
    else:
        engine = _sqlite(path / "earmark.db")
    migrate(engine)
    return engine


def _sqlite(db_file: Path) -> Engine:
    # Owner-only before SQLite opens it: its -wal and -shm files copy these permissions.
    os.close(os.open(db_file, os.O_CREAT | os.O_RDWR, 0o600))
    db_file.chmod(0o600)
    engine = create_engine(f"sqlite:///{db_file}")

    @event.listens_for(engine, "connect")
    def _pragmas(conn, _record) -> None:  # noqa: ANN001
        # WAL: readers never block the writer; a crash never leaves a half-written row.
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=5000")
        cur.close()

    return engine


def migrate(engine: Engine, revision: str = "head") -> str:
    """Upgrades the schema to ``revision`` (the newest) and returns the revision it is at."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Alembic says which DDL mode it assumes at every start; only a change is news.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        if _made_before_migrations(conn):
            command.stamp(config, BASELINE)
            logger.info("database made before migrations: taken as revision %s", BASELINE)
        before = MigrationContext.configure(conn).get_current_revision()
        command.upgrade(config, revision)
        after = str(MigrationContext.configure(conn).get_current_revision())
    if before != after:
        logger.info("database schema migrated from %s to %s", before or "empty", after)
    return after


def _made_before_migrations(conn: Connection) -> bool:
    tables = set(inspect(conn).get_table_names())
    return "jobs" in tables and "alembic_version" not in tables
