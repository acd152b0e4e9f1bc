"""gunicorn as the production server, with threads that carry websockets."""
from __future__ import annotations

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from app import create_app, scheduler, webhooks
        app = create_app()
        scheduler.start(app)
        webhooks.start(app)
        return app


def run_gunicorn(host: str, port: int, workers: int, threads: int) -> None:
    _Server({
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        # Websockets stay open; the worker's heartbeat, not the request, is timed.
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "preload_app": False,
    }).run()
