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
import socket
import threading
import time

from omegaconf import DictConfig

from adventure.config import ConfigError
from adventure.errors import GamioError
from serving.app import SECURITY_HEADERS, create_app
from serving.compat.common import error_body
from serving.limits import _in

log = logging.getLogger("serving")
DISCARD_BODY_BYTES = 32 * 2**20  # a refused body is read and dropped up to this size before the socket closes


def _json_error_channel(limits, proxies):
    """A waitress channel whose own error responses are `{"error": ...}` JSON like the app's, and that bounds what
    one client holds: `limits.max_connections_per_client` (not the trusted proxies: every player comes through
    them), `limits.header_timeout_s` (see `_close_slow_headers`)."""
    from waitress.channel import HTTPChannel
    from waitress.task import ErrorTask

    class JsonErrorTask(ErrorTask):
        def execute(self):
            error = self.request.error
            message = f"{error.reason}: {error.body}".strip(": ")
            path = getattr(self.request, "path", None) or ""
            if error.code == 413:  # name the limit, as the app does
                key = "max_import_bytes" if path.rstrip("/") == "/api/games/import" else "max_body_bytes"
                message = f"the request body is over the limit of {getattr(limits, key)} bytes (limits.{key})"
                self.channel.discard_left = min(self.request.content_length, DISCARD_BODY_BYTES)
            shaped = error_body(path, error.code, message)
            body = json.dumps(shaped or {"error": message}).encode("utf-8")
            self.status = f"{error.code} {error.reason}"
            self.response_headers.append(("Content-Type", "application/json"))
            self.response_headers.extend(SECURITY_HEADERS.items())
            self.set_close_on_finish()
            self.content_length = len(body)
            self.write(body)

    class JsonErrorChannel(HTTPChannel):
        """After a 413, the refused body is read and dropped before the socket closes. waitress answers a
        Content-Length over its limit at once and closes; a client that sends the whole body before reading
        (Python's urllib, most scripts) still has bytes in flight, and closing a socket with unread data sends a
        reset, which throws away the 413 the client has not read yet. So the 413 goes out, the connection is
        half-closed (the client reads the answer and an end), and what the client still sends is read, up to
        the body's length (at most DISCARD_BODY_BYTES) or until it closes; a silent client is closed by
        waitress' channel_timeout."""
        error_task_class = JsonErrorTask
        header_started = 0.0  # when the request whose headers are awaited began (its first byte, or the connect)

        def __init__(self, server, sock, addr, adj, map=None):
            super().__init__(server, sock, addr, adj, map=map)
            self.header_started = self.creation_time
            peer = addr[0] if isinstance(addr, tuple) else str(addr)
            held = sum(1 for channel in list(server.active_channels.values())
                       if channel.addr and channel.addr[0] == peer)
            if held > limits.max_connections_per_client and not _in(peer, proxies):
                self.will_close = True  # closed at the loop's next turn, before a byte is read

        def received(self, data):
            if self.request is None:  # the first bytes of a request: its headers must follow within the limit
                self.header_started = time.time()
            return super().received(data)

        discard_left = 0  # bytes of a refused body still to read before closing
        discarding = False

        def handle_close(self):
            if self.discard_left > 0 and not self.discarding and self.connected and not self.total_outbufs_len:
                try:
                    self.socket.shutdown(socket.SHUT_WR)  # the 413 is sent; the client sees the end of it
                except OSError:
                    return super().handle_close()
                self.discarding, self.will_close, self.close_when_flushed = True, False, False
                return None
            return super().handle_close()

        def readable(self):
            return self.discarding or super().readable()

        def handle_read(self):
            if not self.discarding:
                return super().handle_read()
            try:
                data = self.socket.recv(65536)
            except OSError:
                data = b""
            self.discard_left -= len(data)
            if not data or self.discard_left <= 0:
                self.discard_left = 0
                super().handle_close()
            return None

    return JsonErrorChannel


def create_waitress_server(app, host: str, port: int, threads: int):
    """waitress for the gamio app: long-polls hold a thread each, so the connection limit covers them too."""
    from waitress import create_server

    # waitress drops X-Forwarded-For from peers it does not trust, and its own `trusted_proxy` is one address:
    # with `limits.trusted_proxies` set, the header is passed through and the app believes it only from those
    # proxies (serving/limits.py), so each player behind the proxy is a client of its own.
    behind_proxies = bool(app.extensions["gamio"].clients.trusted_proxies)
    limits = app.extensions["gamio"].limits
    body_limit = max(limits.max_body_bytes, limits.max_import_bytes) + 1  # waitress refuses at >= its size
    server = create_server(app, host=host, port=port, threads=threads, connection_limit=max(100, 4 * threads),
                           channel_timeout=60, max_request_body_size=body_limit,
                           clear_untrusted_proxy_headers=not behind_proxies, ident="gamio")
    server.channel_class = _json_error_channel(limits, app.extensions["gamio"].clients.trusted_proxies)
    _close_slow_headers(server, limits.header_timeout_s)
    return server


def _close_slow_headers(server, timeout_s: float) -> None:
    """waitress' channel_timeout counts silence, so a client that sends a header line now and then holds its
    connection for ever (270 such connections took every slot). Once a second, a connection still waiting for
    the headers of a request begun (or, silent, connected) more than `timeout_s` ago is closed."""
    inactive = server.maintenance
    server.adj.cleanup_interval = 1

    def maintenance(now: float) -> None:
        inactive(now)
        for channel in list(server.active_channels.values()):
            parser = getattr(channel, "request", None)
            awaiting = parser is not None and not parser.headers_finished or \
                parser is None and channel.last_activity == channel.creation_time  # connected, never a byte
            if awaiting and not channel.requests and now - channel.header_started > timeout_s:
                channel.will_close = True

    server.maintenance = maintenance


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
