"""The web layer: parse, call the pipeline, render. No business rules here."""
from __future__ import annotations

from flask import current_app

from app.db import Database


def database() -> Database:
    return current_app.extensions["luyue.db"]
