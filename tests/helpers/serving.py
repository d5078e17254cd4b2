"""Driving the game API in-process (Flask test client, or real HTTP in a thread): new games, waiting for jobs,
holding the worker."""
from __future__ import annotations

import contextlib
import threading
import time
from contextlib import contextmanager


def new_game(client, world=None):
    """(game_id, auth headers, the 201 body)."""
    response = client.post("/api/games", json={} if world is None else {"world": world})
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    return data["game_id"], {"Authorization": f"Bearer {data['token']}"}, data


def wait_done(client, job_id, timeout_s=300):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}?wait=10").get_json()
        if job["status"] in ("done", "failed"):
            return job
    raise AssertionError(f"job {job_id} not finished in {timeout_s} s")


class Gate:
    """Holds the worker inside its next batch until opened (the real pipeline runs once it is); records the
    batches the worker formed (their sizes, and their rows: TurnInputs). `close()` opens it and takes it away
    (for a server shared by a module)."""

    def __init__(self, worker):
        self.entered, self.opened = threading.Event(), threading.Event()
        self.batches: list[int] = []
        self.rows: list[list] = []
        self.pipeline = worker.pipeline
        original = worker.pipeline.run

        def gated(turns, **kwargs):
            self.batches.append(len(turns))
            self.rows.append(list(turns))
            self.entered.set()
            assert self.opened.wait(120)
            return original(turns, **kwargs)

        worker.pipeline.run = gated

    def close(self) -> None:
        self.opened.set()
        vars(self.pipeline).pop("run", None)  # the class's own run again


class AppFactory:
    """`make(*overrides) -> (flask test client, service)` on the tiny model; every app gets its own artifacts and
    database, and all are closed by `close()` (use one factory per test module: the model loads per app)."""

    def __init__(self, model_dir, tmp_path_factory, base_overrides=(), max_new_tokens: int = 6):
        self.model_dir, self.tmp_path_factory = model_dir, tmp_path_factory
        self.base = [f"model={model_dir}", f"generation.max_new_tokens={max_new_tokens}", *base_overrides]
        self.services = []

    def __call__(self, *overrides: str):
        from serving.app import create_app
        from serving.config import compose_serving_config
        from serving.service import build_service

        artifacts = self.tmp_path_factory.mktemp("serving")
        cfg = compose_serving_config([f"paths.artifacts={artifacts}", *self.base, *overrides])
        service = build_service(cfg)
        self.services.append(service)
        return create_app(cfg, service).test_client(), service

    def close(self) -> None:
        for service in self.services:
            service.close()  # idempotent: a test may have closed it already


@contextmanager
def live_server(overrides: list[str], threads: int = 32):
    """(base url, service) of a waitress server in this process over real HTTP (ServerThread), for a module;
    closed (server, then worker and database) on exit."""
    from serving.app import create_app
    from serving.config import compose_serving_config
    from serving.launch import ServerThread
    from serving.service import build_service

    cfg = compose_serving_config(overrides)
    service = build_service(cfg)
    server = ServerThread(create_app(cfg, service), threads=threads)
    try:
        yield server.url, service
    finally:
        server.stop()
        service.close()


@contextlib.contextmanager
def poisoned_prompts(pipeline, word: str = "яд"):
    """A pipeline whose prompt building fails ("poisoned prompt") for any turn whose action holds `word`: a bad
    row, to see that it fails alone."""
    original = pipeline.prompt

    def poisoned(turn):
        if word in turn.action:
            raise ValueError("poisoned prompt")
        return original(turn)

    pipeline.prompt = poisoned
    try:
        yield pipeline
    finally:
        del pipeline.prompt
