"""What one client can hold of a real waitress server (issue 24): 270 half-open connections from one address that
trickled header lines took every connection slot, /healthz included. Now one address holds at most
`limits.max_connections_per_client` connections, and a connection must finish its headers within
`limits.header_timeout_s`; other clients and /healthz are served meanwhile."""
from __future__ import annotations

import socket
import time

import pytest
import requests

from tests.helpers.serving import live_server

CAP, HEADER_TIMEOUT_S = 4, 2.0


@pytest.fixture(scope="module")
def served(tiny_untrained_dir, tmp_path_factory):
    overrides = [f"model={tiny_untrained_dir}", f"paths.artifacts={tmp_path_factory.mktemp('conns')}",
                 f"limits.max_connections_per_client={CAP}", f"limits.header_timeout_s={HEADER_TIMEOUT_S}"]
    with live_server(overrides, threads=4) as running:
        yield running


def healthz_from(url: str, source: str) -> int:
    host, port = url.split("//")[1].rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split()[1])


def test_trickled_headers_from_one_address_do_not_block_others(served):
    url, _ = served
    host, port = url.split("//")[1].rstrip("/").split(":")
    slow = [socket.create_connection((host, int(port)), timeout=5) for _ in range(20)]
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sock.setblocking(False)
    open_ = set(range(len(slow)))
    served_others = []
    deadline = time.monotonic() + 4 * HEADER_TIMEOUT_S + 5
    try:
        while open_ and time.monotonic() < deadline:
            for i in list(open_):  # a header line now and then: waitress' channel_timeout never fires
                try:
                    slow[i].sendall(b"X-Slow: 1\r\n")
                    if slow[i].recv(1024) == b"":
                        open_.discard(i)
                except BlockingIOError:
                    pass
                except OSError:
                    open_.discard(i)
            served_others.append(healthz_from(url, "127.0.0.2"))  # another client, while they trickle
            time.sleep(0.3)
    finally:
        for sock in slow:
            sock.close()
    assert not open_, f"{len(open_)} trickling connections still open"
    assert served_others and set(served_others) == {200}
    assert requests.get(url + "healthz", timeout=10).status_code == 200  # the address itself is welcome again


def test_the_cap_closes_only_connections_beyond_it(served):
    url, _ = served
    host, port = url.split("//")[1].rstrip("/").split(":")
    time.sleep(0.5)  # the server has seen the earlier test's connections end
    held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(CAP)]
    try:
        extra = socket.create_connection((host, int(port)), timeout=5)
        assert extra.recv(16) == b""  # closed at once, before it could send a byte
        extra.close()
        for sock in held:  # the ones within the cap are served
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):  # to its end: nothing is in flight when the server stops
                answer += chunk
            assert answer.split()[1] == b"200"
    finally:
        for sock in held:
            sock.close()
