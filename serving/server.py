"""`python -m serving`: build the app and serve it on host:port with waitress (default) or Flask's server.

The URL is logged once the socket listens (port=0 picks a free port, and the log says which), so scripts and
tests can wait for that line.
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from adventure.errors import GamioError
from serving.app import create_app

log = logging.getLogger("serving")


def serve(cfg: DictConfig) -> None:
    app = create_app(cfg)
    service = app.extensions["gamio"]
    host, port, backend = str(cfg.host), int(cfg.port), str(cfg.server)
    try:
        if backend == "waitress":
            from waitress import create_server

            # Long-polls hold a thread each; waitress' connection limit must cover them too.
            threads = int(cfg.threads)
            server = create_server(app, host=host, port=port, threads=threads, connection_limit=max(100, 4 * threads),
                                   channel_timeout=60)
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
    log.info("gamio is serving %s on http://%s:%d/ (%s)", service.choice.name, host, url_port, backend)
    try:
        server.run() if backend == "waitress" else server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        service.close()
