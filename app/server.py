"""gunicorn as the production server, with threads that carry websockets.

gunicorn refuses a request it cannot read (a line or header over its
limits, a malformed request) before the app sees it; `ContractWorker` makes
that answer the contract's JSON error body instead of gunicorn's HTML page."""
from __future__ import annotations

import json

from gunicorn import util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

# What gunicorn reads of a request before the app: the request line (a URL
# of about 4 KB), how many headers and how long each. Over them, 414 or 431.
LIMIT_REQUEST_LINE = 4094
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190

# gunicorn's status -> the contract's code and message.
_ERRORS = {
    400: ("bad_request", "The request could not be read as HTTP: {detail}"),
    403: ("forbidden", "This request is not accepted: {detail}"),
    414: ("uri_too_long", "The address is over {line} bytes. Send what it carries in the body instead."),
    417: ("bad_request", "The request could not be read as HTTP: {detail}"),
    431: ("headers_too_large", "The request's headers are over the limit ({fields} headers of at most {size} "
                               "bytes each)."),
    500: ("internal_error", "Something went wrong on our side; nothing was written. Retry, and tell the operator "
                            "if it persists."),
    501: ("bad_request", "The request could not be read as HTTP: {detail}"),
}


def contract_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's `util.write_error`, answering the contract's body."""
    code, template = _ERRORS.get(status_int, ("bad_request", "The request could not be read as HTTP: {detail}"))
    message = template.format(detail=mesg[:200], line=LIMIT_REQUEST_LINE, fields=LIMIT_REQUEST_FIELDS,
                              size=LIMIT_REQUEST_FIELD_SIZE)
    body = json.dumps({"error": {"code": code, "message": message, "details": {}}}, ensure_ascii=False).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class ContractWorker(ThreadWorker):
    """gthread, whose own error answers are the contract's JSON body."""

    def init_process(self) -> None:
        # This worker process only: gunicorn's workers call util.write_error.
        util.write_error = contract_error
        super().init_process()


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
        "worker_class": "app.server.ContractWorker",
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
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
