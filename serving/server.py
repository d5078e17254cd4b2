"""`python -m serving`: build the app and serve it on host:port with waitress (default) or Flask's server.

The URL is logged once the socket listens (port=0 picks a free port, and the log says which), so scripts and
tests can wait for that line. SIGTERM (what service managers and `ServerProcess.stop()` send) stops the server
like Ctrl-C: the worker finishes its batch, the WAL is checkpointed and the database closed, exit status 0.
Errors that waitress answers itself (a malformed request, a body over the limit) come in the API's JSON shape
(under the OpenAI / Kobold routes, in theirs).
"""
from __future__ import annotations

import json
import logging
import signal
import threading

from omegaconf import DictConfig

from adventure.config import ConfigError
from adventure.errors import GamioError
from serving.app import SECURITY_HEADERS, create_app
from serving.compat.common import error_body

log = logging.getLogger("serving")


def _json_error_channel():
    """A waitress channel whose own error responses are `{"error": ...}` JSON like the app's."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self):
            error = self.request.error
            message = f"{error.reason}: {error.body}".strip(": ")
            shaped = error_body(getattr(self.request, "path", None) or "", error.code, message)
            body = json.dumps(shaped or {"error": message}).encode("utf-8")
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.response_headers.extend(SECURITY_HEADERS.items())
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):
        error_task_class = JsonErrorTask

    return JsonErrorChannel


def create_waitress_server(app, host: str, port: int, threads: int):
    """waitress for the gamio app: long-polls hold a thread each, so the connection limit covers them too."""
    from waitress import create_server

    # waitress drops X-Forwarded-For from peers it does not trust, and its own `trusted_proxy` is one address:
    # with `limits.trusted_proxies` set, the header is passed through and the app believes it only from those
    # proxies (serving/limits.py), so each player behind the proxy is a client of its own.
    behind_proxies = bool(app.extensions["gamio"].clients.trusted_proxies)
    server = create_server(app, host=host, port=port, threads=threads, connection_limit=max(100, 4 * threads),
                           channel_timeout=60, max_request_body_size=app.config["MAX_CONTENT_LENGTH"],
                           clear_untrusted_proxy_headers=not behind_proxies, ident="gamio")
    server.channel_class = _json_error_channel()
    return server


def check_thread_budget(cfg: DictConfig) -> None:
    """Long-polls must leave request threads free for /healthz and the page."""
    polls, threads = int(cfg.limits.max_long_polls), int(cfg.threads)
    if str(cfg.server) == "waitress" and polls >= threads:
        raise ConfigError(f"limits.max_long_polls={polls}: must be below threads={threads}, so that /healthz and "
                          f"the page always find a free request thread")


def _stop_on_sigterm() -> None:
    def stop(signum, frame):
        log.info("SIGTERM: stopping")
        raise SystemExit(0)  # ends server.run() / serve_forever(); the finally below closes the store

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


def serve(cfg: DictConfig) -> None:
    check_thread_budget(cfg)
    app = create_app(cfg)
    service = app.extensions["gamio"]
    host, port, backend = str(cfg.host), int(cfg.port), str(cfg.server)
    try:
        if backend == "waitress":
            server = create_waitress_server(app, host, port, int(cfg.threads))
            url_port = int(server.effective_port)
        elif backend == "flask":
            from werkzeug.serving import make_server

            server = make_server(host, port, app, threaded=True)
            url_port = server.server_port
        else:
            raise GamioError(f"server must be waitress or flask, got {backend!r}")
    except OSError as exc:
        service.close()
        raise GamioError(f"cannot listen on {host}:{port}: {exc}") from None
    _stop_on_sigterm()
    log.info("gamio is serving %s on http://%s:%d/ (%s)", service.choice.name, host, url_port, backend)
    try:
        server.run() if backend == "waitress" else server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        log.info("stopping")
    finally:
        service.close()
        log.info("stopped; the database is closed")
