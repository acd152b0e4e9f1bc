"""The migrations build exactly the schema app.models describes."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from app.db import Database
from app.models import Base, EventCounter
from app.schema import upgrade


def test_upgrade_head_on_an_empty_database_gives_the_models_schema(empty_database_url):
    db = Database(empty_database_url)
    try:
        upgrade(db)
        with db.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                           Base.metadata)
            assert differences == []
            assert set(Base.metadata.tables) <= set(inspect(conn).get_table_names())
            assert conn.execute(select(EventCounter.id, EventCounter.last_seq)).all() == [(1, 0)]
        upgrade(db)  # again: nothing to do
        with db.reading() as s:
            assert s.scalar(select(EventCounter.last_seq)) == 0
    finally:
        db.dispose()
