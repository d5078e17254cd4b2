"""`make serve`: the game again on what `make demo` left (the model the newest eval report recommends), without
retraining; with nothing trained and evaluated yet, one `error:` line that says what to run, exit status 2.

make runs with `-o install` (its venv is this test's interpreter, `PY=`), so the test never builds `.venv`."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from adventure.paths import REPO_ROOT


def make_serve(artifacts, port: int) -> list[str]:
    return ["make", "--no-print-directory", "-o", "install", "serve", f"PY={sys.executable}",
            f"ARTIFACTS={artifacts}", f"PORT={port}"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_make_serve_without_a_trained_model_says_to_run_make_demo(tmp_path):
    proc = subprocess.run(make_serve(tmp_path / "artifacts", free_port()), cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "run make demo first" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "artifacts").exists()


@pytest.mark.slow
def test_make_serve_serves_the_recommended_model_without_training(tmp_path, tiny_untrained_dir):
    artifacts = tmp_path / "artifacts"
    report = artifacts / "reports" / "run-1" / "report.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"recommended": {"name": "my-model", "spec": str(tiny_untrained_dir),
                                                  "language": "ru"}}), encoding="utf-8")
    port = free_port()
    server = subprocess.Popen(make_serve(artifacts, port), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline, health = time.monotonic() + 300, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(1)
        assert health is not None and health.status_code == 200, server.poll()
        assert health.json()["model"] == "my-model"
        assert not (artifacts / "runs").exists() and not (artifacts / "models").exists()  # nothing was trained
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=60)[0]
    assert "model=best: my-model" in output, output[-3000:]
