"""Settings from the environment (LUYUE_*), with overrides for tests."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path


def _default_database_url(instance_path: Path) -> str:
    return f"sqlite:///{instance_path / 'luyue.db'}"


@dataclass
class Settings:
    database_url: str = ""
    secret_key: str = "dev-only-change-me"
    # Business day for node capacity and SLA reports.
    timezone: str = "Asia/Shanghai"
    # A shift: how long a handheld login lasts.
    session_hours: float = 10.0
    gs1_company_prefix: str = "6901234"
    sql_echo: bool = False
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, instance_path: Path, **overrides) -> "Settings":
        values: dict = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = os.environ.get(f"LUYUE_{f.name.upper()}")
            if raw is None:
                continue
            if f.type in ("bool", bool):
                values[f.name] = raw.lower() in ("1", "true", "yes", "on")
            elif f.type in ("float", float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        values.update(overrides)
        settings = cls(**values)
        if not settings.database_url:
            settings.database_url = _default_database_url(instance_path)
        return settings
