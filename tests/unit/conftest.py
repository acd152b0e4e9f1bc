"""Unit tests work on the domain functions: a database, no Flask app."""
from __future__ import annotations

import pytest

from app.db import Database


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    yield database
    database.dispose()
