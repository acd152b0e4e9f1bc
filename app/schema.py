"""Creating and upgrading the database with Alembic."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from app.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    command.upgrade(alembic_config(db.url), revision)
