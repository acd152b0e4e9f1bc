"""Creating and upgrading the database with Alembic."""
from __future__ import annotations

import logging
from pathlib import Path

# Alembic names each of its plugins at INFO when it is imported: noise before
# the demo's logins, not news. The migrations it runs are still logged.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from alembic import command  # noqa: E402 (after the line above)
from alembic.config import Config  # noqa: E402

from app.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    command.upgrade(alembic_config(db.url), revision)
