"""Alembic's environment for Earmark's schema: run by ``store.db.migrate`` with an open
connection (``config.attributes["connection"]``), never from an ini file."""

from __future__ import annotations

from alembic import context

from earmark.store.db import METADATA

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=METADATA,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite's ALTER
with context.begin_transaction():
    context.run_migrations()
