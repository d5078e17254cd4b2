"""A TCP relay between gamio and a real inference server, so a test can kill the server at a moment it chooses
instead of after a guessed delay: `hold_streams()` makes the relay pass a streamed answer's headers and first
chunk (the first token, as the server wrote it), then hold the rest back and set `first_token`. A test that then
kills the server and `close()`s the relay has a remote that provably died mid-turn, on any machine: whatever the
server wrote after that first chunk (on a fast machine, the whole reply) never reaches gamio.

While closed, the relay does not listen, so gamio sees what a dead server gives (connection refused); `listen()`
opens the same port again. Bytes otherwise pass through unchanged in both directions."""
from __future__ import annotations

import socket
import threading

HEADERS_END = b"\r\n\r\n"


class Relay:
    def __init__(self, upstream_port: int):
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = 0  # chosen by the first listen(), kept by the next ones
        self.first_token = threading.Event()
        self._holding = False
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port, self._listener = listener.getsockname()[1], listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="relay-accept").start()

    def hold_streams(self) -> None:
        """From now on, a new connection's streamed answer stops after its first chunk. Connections already open
        (kept alive by gamio's HTTP pool) are closed first, so the next request surely opens one that is watched."""
        self.first_token.clear()
        self._holding = True
        self._close_connections()

    def close(self) -> None:
        """Stop listening and cut every connection; nothing held back is ever passed on."""
        self._holding = False
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._close_connections()

    def _close_connections(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            watch = self._holding
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, watch), daemon=True).start()

    def _answers(self, upstream: socket.socket, client: socket.socket, watch: bool) -> None:
        """Server to gamio. Watched: the first answer is read up to its first chunk; a stream (text/event-stream,
        chunked) is held there; any other answer passes on, and so does all that follows it."""
        if watch:
            data = b""
            while (first := _first_chunk(data)) is None:
                more = _recv(upstream)
                if not more:
                    _send(client, data)
                    return _shut(client)
                data += more
            head, is_stream = first
            if is_stream:
                _send(client, head)
                self.first_token.set()
                return  # the rest stays unread until close() cuts both sides
            _send(client, data)
        _pump(upstream, client)


def _first_chunk(data: bytes) -> tuple[bytes, bool] | None:
    """(the bytes up to the end of the answer's first chunk, True) for a chunked event stream; (b"", False) for
    another answer; None while more bytes are needed to tell."""
    end = data.find(HEADERS_END)
    if end < 0:
        return None
    headers = data[:end].lower()
    if b"text/event-stream" not in headers or b"transfer-encoding: chunked" not in headers:
        return b"", False
    body = end + len(HEADERS_END)
    size_end = data.find(b"\r\n", body)
    if size_end < 0:
        return None
    chunk_end = size_end + 2 + int(data[body:size_end].split(b";")[0], 16) + 2
    return (data[:chunk_end], True) if len(data) >= chunk_end else None


def _pump(source: socket.socket, target: socket.socket) -> None:
    while data := _recv(source):
        if not _send(target, data):
            break
    _shut(target)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
