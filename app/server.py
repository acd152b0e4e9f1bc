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
        from app import create_app, scheduler, secret_key, webhooks
        app = create_app()
        # Checked again in each worker: its environment is what it signs with.
        secret_key.check(app.config["SECRET_KEY"])
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
        "post_worker_init": _close_live_screens_on_stop,
    }).run()


def _close_live_screens_on_stop(worker) -> None:
    """gthread waits up to graceful_timeout for open requests, and a live
    screen's websocket is one that never ends: on SIGTERM, tell them to go
    (they reconnect elsewhere), then stop as gunicorn would."""
    import signal
    import threading

    from app import live

    def handle_exit(sig, frame):
        # Not in the handler itself: waking takes the hubs' locks.
        threading.Thread(target=live.stop_live_screens, daemon=True).start()
        worker.handle_exit(sig, frame)

    signal.signal(signal.SIGTERM, handle_exit)
