"""A TCP proxy on 127.0.0.1 in front of DynamoDB Local that can go down, stall or slow down.

Faults botocore hooks cannot play because they live below the client: a refused connection
(the store is down), a connection that never answers (a read timeout), a slow answer.

    proxy = FaultProxy(upstream_port).start()
    client = boto3.client("dynamodb", endpoint_url=proxy.endpoint, ...)
    proxy.mode = "down"      # new connections refused, open ones cut
    proxy.mode = "stall"     # requests swallowed, nothing answered
    proxy.mode = "slow"      # every answer delayed by `proxy.delay` seconds
    proxy.mode = "pass"      # back to normal
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from typing import Literal

Mode = Literal["pass", "down", "stall", "slow"]


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode: Mode = "pass"
        self.delay = 0.0
        self.port = 0
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def go_down(self) -> None:
        """Refuse connections (nothing listens on the port) and cut the open ones."""
        self.mode = "down"
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._cut_all()

    def come_back(self) -> None:
        """Listen again on the same port, passing traffic through."""
        self.mode = "pass"
        if self._listener is None:
            self._listen()

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        self._cut_all()

    def _cut_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for c in conns:
            with contextlib.suppress(OSError):
                c.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed: the proxy went down
            self.accepted += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        with self._lock:
            self._conns |= {client, upstream}
        try:
            self._pump(client, upstream)
        finally:
            for s in (client, upstream):
                with contextlib.suppress(OSError):
                    s.close()
            with self._lock:
                self._conns -= {client, upstream}

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([client, upstream], [], [], 0.1)
            except (OSError, ValueError):
                return
            for src in ready:
                try:
                    data = src.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if src is client:
                    if self.mode == "stall":
                        continue  # swallowed: the store never sees it, nothing answers
                    upstream.sendall(data)
                else:
                    if self.mode == "slow":
                        time.sleep(self.delay)
                    if self.mode == "stall":
                        continue
                    client.sendall(data)
